// Package targets exports snapshots of the metrics on their own: on a
// schedule, after enough events, or both, to a file (written atomically,
// readable by node_exporter's textfile collector), to an HTTP endpoint, or
// to a Prometheus Pushgateway. Each target has its own timeout, retries with
// backoff, circuit breaker and self-metrics, and runs on its own goroutine:
// a slow or dead target never slows routing or the other targets.
package targets

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Target is one export target.
type Target struct {
	// Name identifies the target in logs, self-metrics, export events
	// (target=<name>) and the cluster-wide lock.
	Name string `yaml:"name"`
	// Format is the export format: prometheus, openmetrics, json, csv or a
	// plugin's. A file target for node_exporter's textfile collector
	// wants prometheus.
	Format string `yaml:"format"`
	// Match keeps the families whose Prometheus name matches one of these
	// globs; empty keeps all.
	Match []string `yaml:"match,omitempty"`
	// Labels keeps the series every matcher holds for, e.g.
	// namespace="rust_e2e_linear" or result!=error.
	Labels []string `yaml:"labels,omitempty"`

	// Every exports on a schedule. 0 means no schedule.
	Every time.Duration `yaml:"every,omitempty"`
	// AfterEvents exports once this many events were routed since the
	// last export; MaxDelay bounds how long such an export may wait for
	// them. 0 means no threshold.
	AfterEvents uint64        `yaml:"after_events,omitempty"`
	MaxDelay    time.Duration `yaml:"max_delay,omitempty"`

	// Exactly one destination.
	File        string       `yaml:"file,omitempty"`
	HTTP        *HTTP        `yaml:"http,omitempty"`
	Pushgateway *Pushgateway `yaml:"pushgateway,omitempty"`

	// Timeout bounds one attempt. 0 means 10s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a failed export is tried again, after
	// RetryBackoff doubling up to 30 s. 0 means none.
	Retries      int           `yaml:"retries,omitempty"`
	RetryBackoff time.Duration `yaml:"retry_backoff,omitempty"`
	// BreakerFailures opens the target's circuit after this many failed
	// exports in a row (0 means 5); while open, exports are skipped and
	// counted, and after BreakerOpenFor (0 means 1m) one is tried again.
	BreakerFailures int           `yaml:"breaker_failures,omitempty"`
	BreakerOpenFor  time.Duration `yaml:"breaker_open_for,omitempty"`
	// ClusterWide makes the target run once per interval across every
	// instance sharing the PostgreSQL bus, rather than on each.
	ClusterWide bool `yaml:"cluster_wide,omitempty"`
}

// HTTP sends each export as the body of a request.
type HTTP struct {
	URL string `yaml:"url"`
	// Method is POST (the default) or PUT.
	Method string `yaml:"method,omitempty"`
	// Headers are sent with every request. Keep secrets out of the file:
	// use BearerTokenFile.
	Headers map[string]string `yaml:"headers,omitempty"`
	// BearerTokenFile holds a token sent as Authorization: Bearer.
	BearerTokenFile string `yaml:"bearer_token_file,omitempty"`
}

// Pushgateway pushes each export (format prometheus) to a Prometheus
// Pushgateway, replacing the group's metrics (PUT).
type Pushgateway struct {
	URL string `yaml:"url"`
	// Job is the job grouping label. Empty means sextant.
	Job string `yaml:"job,omitempty"`
	// Grouping adds grouping labels; instance defaults to the exporting
	// instance's id.
	Grouping map[string]string `yaml:"grouping,omitempty"`
}

// List is the exporters.targets section of the configuration: the targets
// to run. The host builds their Runner with New; the List's factory only
// lets the configuration loader decode and validate it.
type List []Target

// Validate checks the list (see Validate).
func (l List) Validate() error { return Validate(l) }

// FieldError is a problem at a path below the list, such as [1].http.url.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldPath returns the path of the field at fault.
func (e *FieldError) FieldPath() string { return e.Path }

// Type is the key of the targets under exporters in the configuration.
const Type = "targets"

// Factory lets the configuration loader decode exporters.targets. The
// targets need what only the host has (the snapshot, the router's count,
// the bus), so it builds them with New rather than through Create.
type Factory struct{}

// Type returns "targets".
func (Factory) Type() string { return Type }

// NewDefaultConfig returns an empty *List.
func (Factory) NewDefaultConfig() exporters.Config { return &List{} }

// Create refuses: the host calls New with the decoded list.
func (Factory) Create(context.Context, exporters.Config, exporters.Settings) (exporters.Component, error) {
	return nil, errors.New("targets: built by the host with targets.New, not through the factory")
}

// Defaults.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultRetryBackoff    = time.Second
	MaxRetryBackoff        = 30 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = time.Minute
)

var (
	targetName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Validate checks a list of targets and returns every problem joined, each
// message starting with its YAML path below the list, e.g.
// "[1].pushgateway.url: ...".
func Validate(ts []Target) error {
	var errs []error
	seen := map[string]int{}
	for i, t := range ts {
		p := "[" + strconv.Itoa(i) + "]"
		add := func(field, format string, args ...any) {
			errs = append(errs, &FieldError{Path: p + "." + field, Err: fmt.Errorf(format, args...)})
		}
		if !targetName.MatchString(t.Name) {
			add("name", "must match %s, got %q", targetName, t.Name)
		} else if j, dup := seen[t.Name]; dup {
			add("name", "%q is also the name of target [%d]", t.Name, j)
		} else {
			seen[t.Name] = i
		}
		if t.Format == "" {
			add("format", "is required: prometheus, openmetrics, json, csv or a plugin's format")
		}
		if t.Every < 0 || t.MaxDelay < 0 || t.Timeout < 0 || t.RetryBackoff < 0 || t.BreakerOpenFor < 0 {
			add("every", "durations must not be negative")
		}
		if t.Every == 0 && t.AfterEvents == 0 {
			add("every", "set every (a schedule), after_events (a threshold) or both")
		}
		if t.MaxDelay > 0 && t.AfterEvents == 0 {
			add("max_delay", "goes with after_events")
		}
		if t.ClusterWide && t.Every == 0 && t.MaxDelay == 0 {
			add("cluster_wide", "needs every or max_delay: the interval that one instance of the cluster claims")
		}
		if t.Retries < 0 || t.Retries > 10 {
			add("retries", "must be from 0 to 10, got %d", t.Retries)
		}
		if t.BreakerFailures < 0 {
			add("breaker_failures", "must not be negative, got %d", t.BreakerFailures)
		}
		dests := 0
		if t.File != "" {
			dests++
			if !filepath.IsAbs(t.File) && !strings.HasPrefix(t.File, ".") {
				add("file", "write an absolute path or one starting with ./, got %q", t.File)
			}
		}
		if t.HTTP != nil {
			dests++
			if err := checkURL(t.HTTP.URL); err != nil {
				add("http.url", "%v", err)
			}
			if m := t.HTTP.Method; m != "" && m != "POST" && m != "PUT" {
				add("http.method", "must be POST or PUT, got %q", m)
			}
		}
		if pg := t.Pushgateway; pg != nil {
			dests++
			if err := checkURL(pg.URL); err != nil {
				add("pushgateway.url", "%v", err)
			}
			if !strings.EqualFold(t.Format, "prometheus") && t.Format != "" {
				add("format", "a Pushgateway takes prometheus, got %q", t.Format)
			}
			for k := range pg.Grouping {
				if !labelName.MatchString(k) || k == "job" {
					add("pushgateway.grouping."+k, "must be a label name other than job")
				}
			}
		}
		if dests != 1 {
			add("file", "set exactly one destination: file, http or pushgateway")
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want http://host:port/... or https://..., got %q", s)
	}
	if u.User != nil {
		return errors.New("credentials in the URL would reach logs: use bearer_token_file")
	}
	return nil
}

func (t Target) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultTimeout
}

func (t Target) backoff() time.Duration {
	if t.RetryBackoff > 0 {
		return t.RetryBackoff
	}
	return DefaultRetryBackoff
}

func (t Target) breakerFailures() int {
	if t.BreakerFailures > 0 {
		return t.BreakerFailures
	}
	return DefaultBreakerFailures
}

func (t Target) breakerOpenFor() time.Duration {
	if t.BreakerOpenFor > 0 {
		return t.BreakerOpenFor
	}
	return DefaultBreakerOpenFor
}

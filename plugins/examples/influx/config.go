package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

// config is the plugin's section of Sextant's YAML
// (plugins.instances[i].config). README.md documents every key.
type config struct {
	// Output is a file the line protocol is written to, replaced atomically
	// on every export. Empty or "-" writes no file: the export's data alone
	// carries the line protocol.
	Output string `json:"output"`
	// URL is an InfluxDB v2 write endpoint, e.g.
	// http://127.0.0.1:8086/api/v2/write. The plugin adds org, bucket and
	// precision as query parameters. Empty posts nowhere.
	URL string `json:"url"`
	// Org and Bucket say where InfluxDB stores the points; both are
	// required with URL.
	Org    string `json:"org"`
	Bucket string `json:"bucket"`
	// TokenEnv names the environment variable that holds the API token,
	// sent as "Authorization: Token <token>". The token itself never
	// appears in the configuration, in logs or in errors.
	TokenEnv string `json:"token_env"`
	// Precision is the timestamps' unit: ns (the default), us, ms or s.
	Precision precision `json:"precision"`
	// Timeout bounds one POST to URL; 10s by default. The export's own
	// deadline bounds it too.
	Timeout time.Duration `json:"timeout"`
	// Gzip compresses the POST body (Content-Encoding: gzip).
	Gzip bool `json:"gzip"`
	// Tags are added to every line. A series' own label of the same name
	// wins.
	Tags map[string]string `json:"tags"`
}

// defaultTimeout is config.Timeout's default.
const defaultTimeout = 10 * time.Second

// precision is the unit of line protocol timestamps.
type precision string

// The precisions InfluxDB knows.
const (
	precisionNS precision = "ns"
	precisionUS precision = "us"
	precisionMS precision = "ms"
	precisionS  precision = "s"
)

var precisions = []precision{precisionNS, precisionUS, precisionMS, precisionS}

// UnmarshalText accepts ns, us, ms and s.
func (p *precision) UnmarshalText(b []byte) error {
	if !slices.Contains(precisions, precision(b)) {
		return fmt.Errorf("want ns, us, ms or s; got %q", b)
	}
	*p = precision(b)
	return nil
}

// timestamp returns t in p's unit since the Unix epoch, rounded down.
func (p precision) timestamp(t time.Time) int64 {
	switch p {
	case precisionUS:
		return t.UnixMicro()
	case precisionMS:
		return t.UnixMilli()
	case precisionS:
		return t.Unix()
	}
	return t.UnixNano()
}

// settings is a checked config, ready for exports.
type settings struct {
	output    string   // "" for none
	writeURL  *url.URL // nil for none; with org, bucket and precision
	display   string   // writeURL without its query, for logs and errors
	token     string   // "" for none
	precision precision
	timeout   time.Duration
	gzip      bool
	tags      []exporters.Label // sorted by name
}

// defaultSettings is what the plugin does before, or without, a
// configuration: line protocol in nanoseconds, as data only.
func defaultSettings() settings {
	return settings{precision: precisionNS, timeout: defaultTimeout}
}

// envName is what a POSIX shell accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedTags are tag keys InfluxDB refuses.
var reservedTags = []string{"_field", "_measurement", "time"}

// settings checks c and returns what exports need, or every problem with
// its path.
func (c config) settings(getenv func(string) string) (settings, error) {
	var errs sdk.FieldErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, sdk.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	s := settings{precision: c.Precision, timeout: c.Timeout, gzip: c.Gzip}
	if s.precision == "" {
		s.precision = precisionNS
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if c.Timeout < 0 {
		add("timeout", "must be positive (leave it out for %s); got %s", defaultTimeout, c.Timeout)
	}

	if c.Output != "" && c.Output != "-" {
		s.output = filepath.Clean(c.Output)
		dir := filepath.Dir(s.output)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			add("output", "the directory %s does not exist", dir)
		} else if fi, err := os.Stat(s.output); err == nil && fi.IsDir() {
			add("output", "%s is a directory; want a file name", s.output)
		}
	}

	if c.URL == "" {
		for _, k := range []struct{ path, v string }{{"org", c.Org}, {"bucket", c.Bucket}, {"token_env", c.TokenEnv}} {
			if k.v != "" {
				add(k.path, "applies only with url; set url or remove it")
			}
		}
		if c.Gzip {
			add("gzip", "applies only with url; set url or remove it")
		}
	} else {
		s.writeURL, s.display = c.checkURL(add)
		if c.Org == "" {
			add("org", "required with url: the InfluxDB organization (name or ID)")
		}
		if c.Bucket == "" {
			add("bucket", "required with url: the InfluxDB bucket to write to")
		}
		if s.writeURL != nil {
			q := s.writeURL.Query()
			q.Set("org", c.Org)
			q.Set("bucket", c.Bucket)
			q.Set("precision", string(s.precision))
			s.writeURL.RawQuery = q.Encode()
		}
		if c.TokenEnv != "" {
			if !envName.MatchString(c.TokenEnv) {
				add("token_env", "want the name of an environment variable (letters, digits and _, not starting with a digit); got %q", c.TokenEnv)
			} else if s.token = getenv(c.TokenEnv); s.token == "" {
				add("token_env", "the environment variable %s is not set or is empty", c.TokenEnv)
			}
		}
	}

	for k, v := range c.Tags {
		p := sdk.KeyPath("tags", k)
		switch {
		case escapeTag(k) == "":
			add(p, "a tag key must not be empty")
		case slices.Contains(reservedTags, k):
			add(p, "InfluxDB reserves the tag key %q", k)
		case escapeTag(v) == "":
			add(p, "a tag value must not be empty")
		default:
			s.tags = append(s.tags, exporters.Label{Name: k, Value: v})
		}
	}
	slices.SortFunc(s.tags, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(errs, func(a, b sdk.FieldError) int { return strings.Compare(a.Path, b.Path) })
	if len(errs) > 0 {
		return settings{}, errs
	}
	return s, nil
}

// checkURL parses c.URL and returns it and its form for logs (no query).
func (c config) checkURL(add func(path, format string, args ...any)) (*url.URL, string) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		add("url", "not a URL: %v", err.(*url.Error).Err)
		return nil, ""
	case u.Scheme != "http" && u.Scheme != "https":
		add("url", "want an http or https URL such as http://127.0.0.1:8086/api/v2/write; got scheme %q", u.Scheme)
		return nil, ""
	case u.Host == "":
		add("url", "want an http or https URL with a host, such as http://127.0.0.1:8086/api/v2/write")
		return nil, ""
	case u.User != nil:
		add("url", "must not hold credentials; put the token in an environment variable named by token_env")
		return nil, ""
	case u.Fragment != "":
		add("url", "must not have a fragment (#...)")
		return nil, ""
	}
	for _, k := range []string{"org", "bucket", "precision"} {
		if u.Query().Has(k) {
			add("url", "must not set the query parameter %s; the plugin sets it from the %s key", k, k)
			return nil, ""
		}
	}
	d := *u
	d.RawQuery = ""
	return u, d.String()
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/internal/health"
	"github.com/sextant-telemetry/sextant/plugins/host"
	"github.com/sextant-telemetry/sextant/router"
)

// pluginJSON is one plugin as GET /plugins and `sextant plugins list
// --json` show it.
type pluginJSON struct {
	Name                string     `json:"name"`
	Version             string     `json:"version"`
	Description         string     `json:"description,omitempty"`
	Formats             []string   `json:"formats"`
	Capabilities        []string   `json:"capabilities"`
	Path                string     `json:"path,omitempty"`
	Address             string     `json:"address,omitempty"`
	SHA256              string     `json:"sha256,omitempty"`
	Source              string     `json:"source"`
	State               string     `json:"state"`
	Healthy             bool       `json:"healthy"`
	ProtocolVersion     int        `json:"protocol_version,omitempty"`
	PID                 int        `json:"pid,omitempty"`
	Restarts            int        `json:"restarts"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Exports             int64      `json:"exports"`
	Failures            int64      `json:"failures"`
	LastError           string     `json:"last_error,omitempty"`
	LastErrorAt         *time.Time `json:"last_error_at,omitempty"`
	StartedAt           *time.Time `json:"started_at,omitempty"`
	NextRestart         *time.Time `json:"next_restart,omitempty"`
}

func toPluginJSON(st []host.Status) []pluginJSON {
	out := make([]pluginJSON, 0, len(st))
	for _, s := range st {
		out = append(out, pluginJSON{
			Name: s.Name, Version: s.Version, Description: s.Description,
			Formats: nonNil(s.Formats), Capabilities: nonNil(s.Capabilities),
			Path: s.Path, Address: s.Address, SHA256: s.SHA256, Source: s.Source,
			State: s.State, Healthy: s.State == "running", ProtocolVersion: s.ProtocolVersion, PID: s.PID,
			Restarts: s.Restarts, ConsecutiveFailures: s.ConsecutiveFailures, Exports: s.Exports, Failures: s.Failures,
			LastError: s.LastError, LastErrorAt: timeOrNil(s.LastErrorAt), StartedAt: timeOrNil(s.StartedAt),
			NextRestart: timeOrNil(s.NextRestart),
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// newPluginHost builds the plugin host of cfg's plugins section, or returns
// nil when the section runs none.
func (s *service) newPluginHost(ctx context.Context) error {
	if !s.cfg.Plugins.Enabled() {
		return nil
	}
	h, err := host.New(s.cfg.Plugins, host.Settings{
		Logger: s.logger.With("component", "plugins"), MeterProvider: s.mp, Registry: s.exports, HostVersion: Version,
	})
	if err != nil {
		return fmt.Errorf("plugins: %w", err)
	}
	s.plugins = h
	if err := h.Start(ctx); err != nil {
		return pluginConfigError(err)
	}
	return nil
}

// pluginConfigError prefixes the host's field errors with the section, so
// that they read like the configuration loader's: plugins.instances[0].config.url: ...
func pluginConfigError(err error) error {
	var errs []error
	for _, e := range leavesOf(err) {
		var fe *host.FieldError
		if errors.As(e, &fe) {
			errs = append(errs, fmt.Errorf("plugins.%s: %w", fe.Path, fe.Err))
		} else {
			errs = append(errs, fmt.Errorf("plugins: %w", e))
		}
	}
	return errors.Join(errs...)
}

// leavesOf unwraps errors.Join recursively.
func leavesOf(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leavesOf(e)...)
	}
	return out
}

// subscribeCacheSync forwards telemetry.cache_synced to the plugins that
// asked for it.
func (s *service) subscribeCacheSync() error {
	if s.plugins == nil {
		return nil
	}
	_, err := s.router.Subscribe(router.Subscription{
		Name:   "plugins-cache-synced",
		Events: []string{events.TelemetryCacheSynced},
		Handler: func(ctx context.Context, e *events.Event) error {
			s.plugins.CacheSynced(ctx, *e)
			return nil
		},
	})
	return err
}

// pluginsHTTP is GET /plugins: every plugin's status as JSON.
func (s *service) pluginsHTTP(w http.ResponseWriter, _ *http.Request) {
	var st []host.Status
	if s.plugins != nil {
		st = s.plugins.Status()
	}
	writeJSON(w, http.StatusOK, toPluginJSON(st))
}

// pluginHealth is /health/detailed's plugins check: degraded while a
// plugin is not running (exports through it fail; routing goes on).
func (s *service) pluginHealth() health.Result {
	if s.plugins == nil {
		return health.Result{Status: health.StatusHealthy, Details: map[string]any{"count": 0, "plugins": map[string]any{}}}
	}
	ok, details := s.plugins.Health()
	status := health.StatusHealthy
	if !ok {
		status = health.StatusDegraded
	}
	return health.Result{Status: status, Details: map[string]any{"count": len(details), "plugins": details}}
}

const pluginsUsage = `Usage:
  sextant plugins list    [--config FILE | --url URL] [--json]
  sextant plugins inspect NAME [--config FILE | --url URL] [--json]

With --config (or neither flag: the embedded default), the plugins the
configuration names are launched, described, configured and stopped again:
a dry run that shows what sextant run would load. With --url, a running
instance is asked (GET /plugins) and its live state is shown: restarts,
failures, last error.

`

// pluginsCmd is `sextant plugins list|inspect`.
func pluginsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "inspect") {
		fmt.Fprint(stderr, pluginsUsage)
		return usageError{errors.New("plugins: want 'plugins list' or 'plugins inspect NAME'")}
	}
	sub := args[0]
	fs := flag.NewFlagSet("plugins "+sub, flag.ContinueOnError)
	path := fs.String("config", "", "configuration `FILE` whose plugins to launch (default: the embedded default)")
	base := fs.String("url", "", "base `URL` of a running sextant to ask instead, e.g. http://127.0.0.1:9464")
	asJSON := fs.Bool("json", false, "print JSON: an array for list, one object for inspect")
	tokenFile := fs.String("token-file", "", "with --url: read the bearer token from `FILE` (default: $"+tokenEnv+")")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after `D`")
	fs.Usage = func() { fmt.Fprint(fs.Output(), pluginsUsage); fs.PrintDefaults() }
	rest := args[1:]
	var name string
	if sub == "inspect" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usageError{errors.New("plugins inspect: NAME is required")}
		}
		name, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest, stderr); err != nil {
		return err
	}
	if *path != "" && *base != "" {
		return usageError{errors.New("plugins: give --config or --url, not both")}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var list []pluginJSON
	var loadErr error
	if *base != "" {
		token, err := exportToken(*tokenFile, os.Getenv)
		if err != nil {
			return err
		}
		if list, err = fetchPlugins(ctx, *base, token); err != nil {
			return err
		}
	} else {
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		list, loadErr = probePlugins(ctx, cfg, stderr)
	}
	if sub == "inspect" {
		i := slices.IndexFunc(list, func(p pluginJSON) bool { return p.Name == name })
		if i < 0 {
			names := make([]string, len(list))
			for j, p := range list {
				names[j] = p.Name
			}
			return errors.Join(loadErr, fmt.Errorf("plugins inspect: no plugin named %q (plugins: %s)", name, orNone(names)))
		}
		if *asJSON {
			return errors.Join(writeIndented(stdout, list[i]), loadErr)
		}
		printPlugin(stdout, list[i])
		return loadErr
	}
	if *asJSON {
		return errors.Join(writeIndented(stdout, list), loadErr)
	}
	printPluginTable(stdout, list)
	return loadErr
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// probePlugins launches cfg's plugins, reads their status and stops them.
// The error is the plugins' complaints about their sections.
// The plugins' warnings and errors go to stderr.
func probePlugins(ctx context.Context, cfg *config.Config, stderr io.Writer) ([]pluginJSON, error) {
	if !cfg.Plugins.Enabled() {
		return []pluginJSON{}, nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := host.New(cfg.Plugins, host.Settings{Logger: logger, HostVersion: Version, Once: true})
	if err != nil {
		return nil, err
	}
	startErr := h.Start(ctx)
	list := toPluginJSON(h.Status())
	for _, p := range list {
		if p.State == host.StateFailed {
			startErr = errors.Join(startErr, errors.New(p.LastError)) // it names the plugin
		}
	}
	if err := h.Shutdown(context.WithoutCancel(ctx)); err != nil {
		return list, errors.Join(pluginConfigError(startErr), err)
	}
	return list, pluginConfigError(startErr)
}

// fetchPlugins asks a running instance for GET /plugins.
func fetchPlugins(ctx context.Context, base, token string) ([]pluginJSON, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/plugins")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageError{fmt.Errorf("--url: want http://host:port, got %q", base)}
	}
	resp, err := getExport(ctx, u.String(), token)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list []pluginJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s: not a plugin list: %w", u, err)
	}
	return list, nil
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPluginTable(w io.Writer, list []pluginJSON) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no plugins configured (plugins.dir and plugins.instances are empty)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tFORMATS\tSTATE\tRESTARTS\tPATH\tSHA256\tLAST ERROR")
	for _, p := range list {
		where := p.Path
		if where == "" {
			where = p.Address
		}
		sum := p.SHA256
		if len(sum) > 12 {
			sum = sum[:12] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Name, dash(p.Version), dash(strings.Join(p.Formats, ",")),
			p.State, p.Restarts, dash(where), dash(sum), dash(oneLine(p.LastError, 80)))
	}
	tw.Flush()
}

func printPlugin(w io.Writer, p pluginJSON) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("name", p.Name)
	row("version", p.Version)
	row("description", p.Description)
	row("formats", strings.Join(p.Formats, ", "))
	row("capabilities", strings.Join(p.Capabilities, ", "))
	row("path", p.Path)
	row("address", p.Address)
	row("sha256", p.SHA256)
	row("source", p.Source)
	row("state", p.State)
	if p.ProtocolVersion > 0 {
		row("protocol", strconv.Itoa(p.ProtocolVersion))
	}
	if p.PID > 0 {
		row("pid", strconv.Itoa(p.PID))
	}
	row("restarts", strconv.Itoa(p.Restarts))
	row("exports", fmt.Sprintf("%d (%d failed, %d in a row)", p.Exports, p.Failures, p.ConsecutiveFailures))
	row("last error", p.LastError)
	if p.LastErrorAt != nil {
		row("last error at", p.LastErrorAt.Format(time.RFC3339))
	}
	if p.NextRestart != nil {
		row("next restart", p.NextRestart.Format(time.RFC3339))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// pluginNames lists the plugins for the start-up line.
func (s *service) pluginNames() []string {
	names := []string{}
	if s.plugins != nil {
		for _, st := range s.plugins.Status() {
			names = append(names, st.Name)
		}
	}
	return names
}

package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/internal/redact"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// errStopped is what a start that finishes after Shutdown returns.
var errStopped = exporters.ErrShutdown

// Settings carries what the host passes in code.
type Settings struct {
	// Logger receives the host's records and every line the plugins log,
	// each with plugin=<name>. Nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider receives the self-metrics (see MetricUp and the
	// others); nil means none.
	MeterProvider metric.MeterProvider
	// Registry is where the plugins are registered as exporters; nil
	// registers them nowhere (sextant plugins inspect).
	Registry *exporters.Registry
	// HostVersion is Sextant's version, told to every plugin in Describe.
	HostVersion string
	// Once launches the plugins once and neither supervises nor restarts
	// them: for a look at them (sextant check --plugins, sextant plugins
	// list) rather than a service. A plugin that cannot start is then
	// StateFailed.
	Once bool
	_    struct{}
}

// StateFailed is the state of a plugin that could not start under
// Settings.Once.
const StateFailed = "failed"

// Status is one plugin's identity and health.
type Status struct {
	// Name is what the plugin is registered and logged as.
	Name        string
	Version     string
	Description string
	// Formats are the formats it writes; its name alone while it has never
	// started.
	Formats []string
	// Capabilities are the optional parts of the protocol it implements:
	// configure, export_callbacks, cache_synced.
	Capabilities []string
	// Path is the executable (absolute), Address the host:port of a plugin
	// Sextant dials; one of them is set.
	Path, Address string
	// SHA256 is the checksum of Path as last launched.
	SHA256 string
	// Source is SourceConfig or SourceDir.
	Source string
	// State is StateStarting, StateRunning, StateRestarting,
	// StateCircuitOpen or StateStopped.
	State string
	// Breaker is the circuit breaker's state: closed, half_open or open.
	Breaker string
	// PID is the serving process's id; 0 when none (or for an address).
	PID int
	// Restarts counts restart attempts.
	Restarts int
	// ConsecutiveFailures counts failed exports since the last success.
	ConsecutiveFailures int
	// Exports and Failures count exports that reached the plugin and
	// succeeded or failed; Rejected those refused without calling it.
	Exports, Failures, Rejected int64
	// CallbacksDropped counts lifecycle callbacks not delivered.
	CallbacksDropped int64
	// LastError is the last failure of any kind (start, exit, export),
	// at LastErrorAt.
	LastError   string
	LastErrorAt time.Time
	// StartedAt is when the serving instance started; NextRestart when
	// the next restart is due (zero unless restarting).
	StartedAt, NextRestart time.Time
	// ProtocolVersion is the negotiated handshake protocol version.
	ProtocolVersion int
}

// Host runs the exporter plugins of one Config. Create it with New, call
// Start once, and Shutdown when done. All methods are safe for concurrent
// use.
type Host struct {
	cfg     Config
	set     Settings
	logger  *slog.Logger
	metrics *selfMetrics

	// life ends at Shutdown: starts and callbacks in progress give up.
	life       context.Context
	cancelLife context.CancelFunc
	stop       chan struct{}
	wg         sync.WaitGroup // supervisors, callback queues, connection watchers

	mu       sync.Mutex
	plugins  []*plugin
	taken    map[string]bool // names and formats in the registry before any plugin
	started  bool
	stopped  bool
	shutDown chan struct{} // closed when Shutdown has finished
}

// New checks cfg (every problem, as *FieldError with paths relative to
// the plugins section) and returns a Host that runs its plugins once
// started. It starts nothing.
func New(cfg Config, set Settings) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	life, cancel := context.WithCancel(context.Background())
	h := &Host{
		cfg: cfg, set: set, logger: set.Logger,
		life: life, cancelLife: cancel,
		stop: make(chan struct{}), shutDown: make(chan struct{}),
	}
	for i, inst := range cfg.Instances {
		name := inst.Name
		if inst.Path != "" {
			abs, err := filepath.Abs(inst.Path)
			if err != nil {
				cancel()
				return nil, &FieldError{Path: fmt.Sprintf("instances[%d].path", i), Err: err}
			}
			inst.Path = abs
			if name == "" {
				name = provisionalName(filepath.Base(abs))
			}
		} else if name == "" {
			name = provisionalName(inst.Address)
		}
		h.plugins = append(h.plugins, newPlugin(h, i, inst, SourceConfig, name))
	}
	m, err := newSelfMetrics(set.MeterProvider, h)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("plugins: self-metrics: %w", err)
	}
	h.metrics = m
	return h, nil
}

// provisionalName is a plugin's name until it describes itself: the file
// name without "sextant-" (or the address), made a valid name.
func provisionalName(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(s), "sextant-"), ".exe")
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	s = string(b)
	if s == "" || s[0] == '_' || s[0] == '-' {
		s = "plugin" + s
	}
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

func (h *Host) pluginList() []*plugin {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.plugins
}

// Start finds the plugins of plugins.dir and launches every plugin at
// once, each within start_timeout (and ctx): it handshakes, describes and
// configures each, registers each in the registry and supervises it from
// then on. Start waits for the launches.
//
// It returns the user's configuration errors, joined: every problem a
// plugin finds in its section (as *FieldError, path
// instances[i].config.<the plugin's path>), names used twice or taken by
// a built-in format, and a missing dir; the plugins are then stopped and
// nothing is registered. A plugin that fails to start for any other
// reason (no such file, wrong checksum, another protocol version, a
// crash, a timeout) does not fail Start: it is registered under its name
// as a format, so that exports of it explain why it is not running, and
// is retried with backoff.
//
// Start may be called once; after Shutdown it returns an error wrapping
// exporters.ErrShutdown.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	switch {
	case h.stopped:
		h.mu.Unlock()
		return fmt.Errorf("plugins: start: %w", exporters.ErrShutdown)
	case h.started:
		h.mu.Unlock()
		return errors.New("plugins: start: already started")
	}
	h.started = true
	h.mu.Unlock()

	found, err := h.discover()
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	if reg := h.set.Registry; reg != nil {
		for _, f := range reg.Formats() {
			taken[f] = true
		}
		for _, e := range reg.Exporters() {
			taken[e.Name()] = true
		}
	}
	h.mu.Lock()
	h.plugins = append(slices.Clip(h.plugins), found...)
	h.taken = taken
	all := h.plugins
	h.mu.Unlock()

	procs := make([]*proc, len(all))
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, p := range all {
		wg.Go(func() { procs[i], errs[i] = p.start(ctx) })
	}
	wg.Wait()

	if err := h.checkStart(ctx, all, procs, errs); err != nil {
		var closing sync.WaitGroup
		for _, pr := range procs {
			if pr != nil {
				closing.Go(func() { pr.close(true) })
			}
		}
		closing.Wait()
		h.mu.Lock()
		h.plugins = nil
		h.mu.Unlock()
		return err
	}

	for i, p := range all {
		if pr := procs[i]; pr != nil {
			if !p.attach(pr) { // Shutdown came first
				pr.close(true)
				procs[i] = nil
				continue
			}
			p.log().Info("plugin started", "pid", pr.pid, "version", pr.desc.GetVersion(),
				"formats", pr.desc.GetFormats(), "source", p.source)
		} else if h.set.Once {
			p.mu.Lock()
			p.state, p.lastErr, p.lastErrAt = StateFailed, errs[i].Error(), time.Now()
			p.mu.Unlock()
		} else {
			p.fail(errs[i])
		}
		if err := p.syncRegistry(); err != nil {
			// checkStart has ruled out every conflict it can see; this is
			// one the registry saw. The plugin runs, unregistered.
			p.log().Error("plugin not registered", "error", err)
		}
	}
	// Added under the lock that Shutdown takes before it waits, so that
	// it never waits for a group still growing.
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return fmt.Errorf("plugins: start: %w", exporters.ErrShutdown)
	}
	if h.set.Once {
		h.mu.Unlock()
		return nil
	}
	h.wg.Add(2 * len(all))
	h.mu.Unlock()
	for i, p := range all {
		go func() {
			defer h.wg.Done()
			p.supervise(procs[i])
		}()
		go func() {
			defer h.wg.Done()
			p.deliver(h.stop)
		}()
	}
	return nil
}

// checkStart finds the user's configuration errors among the launches'
// outcomes and settles every plugin's name.
func (h *Host) checkStart(ctx context.Context, all []*plugin, procs []*proc, errs []error) error {
	var problems []error
	names := map[string]*plugin{}
	final := make([]string, len(all))
	for i, p := range all {
		var cerr *configError
		if errors.As(errs[i], &cerr) {
			problems = append(problems, p.configErrors(cerr)...)
			continue
		}
		name := p.name
		if pr := procs[i]; pr != nil && !p.named {
			want := pr.desc.GetName()
			if !namePattern.MatchString(want) {
				problems = append(problems, p.nameError("%s describes itself as %q, which is not a usable name (lower-case letters, digits, _ and -)", p.what(), want))
				continue
			}
			name = want
		}
		if other, dup := names[name]; dup {
			problems = append(problems, p.nameError("plugin name %q is also the name of %s (%s)", name, other.configPath(), other.what()))
			continue
		}
		if h.taken[name] {
			problems = append(problems, p.nameError("plugin name %q is a built-in export format", name))
			continue
		}
		names[name] = p
		final[i] = name
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("plugins: start: %w", err)
	}
	for i, p := range all {
		if procs[i] != nil && !p.named {
			p.rename(final[i])
		}
	}
	return nil
}

// configErrors turns a plugin's verdict on its section into field errors.
func (p *plugin) configErrors(cerr *configError) []error {
	var out []error
	if p.idx < 0 {
		msgs := strings.TrimPrefix(cerr.Error(), "rejects its configuration: ")
		return []error{&FieldError{Path: "dir", Err: fmt.Errorf(
			"%s needs a configuration section (list it under instances with path and config): %s", p.inst.Path, msgs)}}
	}
	base := p.configPath() + ".config"
	for _, fe := range cerr.errs {
		path := base
		switch fp := fe.GetPath(); {
		case fp == "":
		case strings.HasPrefix(fp, "["):
			path += fp
		default:
			path += "." + fp
		}
		out = append(out, &FieldError{Path: path, Err: errors.New(fe.GetMessage())})
	}
	return out
}

// nameError is a naming problem, at the instance's name or at dir.
func (p *plugin) nameError(format string, args ...any) error {
	if p.idx < 0 {
		return &FieldError{Path: "dir", Err: fmt.Errorf(format+"; rename the file, or list it under instances with a name", args...)}
	}
	return &FieldError{Path: p.configPath() + ".name", Err: fmt.Errorf(format+"; set name to register it under another", args...)}
}

// checkName checks the name a plugin describes itself with when it first
// starts after Start.
func (h *Host) checkName(p *plugin, want string) error {
	if !namePattern.MatchString(want) {
		return fmt.Errorf("describes itself as %q, which is not a usable name (lower-case letters, digits, _ and -); set name in its instance", want)
	}
	h.mu.Lock()
	taken := h.taken[want]
	others := h.plugins
	h.mu.Unlock()
	if taken {
		return fmt.Errorf("describes itself as %q, a built-in export format; set name in its instance", want)
	}
	for _, o := range others {
		if o != p && o.currentName() == want {
			return fmt.Errorf("describes itself as %q, the name of %s (%s); set name in its instance", want, o.configPath(), o.what())
		}
	}
	return nil
}

// discover lists the plugins of plugins.dir: regular executable files
// named sextant-*, except those an instance names.
func (h *Host) discover() ([]*plugin, error) {
	if h.cfg.Dir == "" {
		return nil, nil
	}
	dir, err := filepath.Abs(h.cfg.Dir)
	if err != nil {
		return nil, &FieldError{Path: "dir", Err: err}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &FieldError{Path: "dir", Err: fmt.Errorf("%s: no such directory", h.cfg.Dir)}
	case err != nil:
		return nil, &FieldError{Path: "dir", Err: err}
	}
	named := map[string]bool{}
	for _, inst := range h.cfg.Instances {
		if inst.Path != "" {
			named[resolvePath(inst.Path)] = true
		}
	}
	var out []*plugin
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "sextant-") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			h.logger.Debug("plugins: dir: not a plugin (not a regular executable file)", "path", path)
			continue
		}
		if named[resolvePath(path)] {
			continue
		}
		out = append(out, newPlugin(h, -1, InstanceConfig{Path: path}, SourceDir, provisionalName(e.Name())))
	}
	return out, nil
}

// resolvePath is path made absolute with its symbolic links resolved, to
// compare two names of one file.
func resolvePath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path
}

// Status returns every plugin's status, sorted by name.
func (h *Host) Status() []Status {
	list := h.pluginList()
	out := make([]Status, len(list))
	for i, p := range list {
		out[i] = p.status()
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (p *plugin) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	state := p.state
	if state == StateCircuitOpen && p.br.current(now) != breakerOpen {
		state = StateRunning // its trial is due: the next export reaches it
	}
	return Status{
		Name:                p.name,
		Version:             p.desc.GetVersion(),
		Description:         p.desc.GetDescription(),
		Formats:             p.formatsLocked(),
		Capabilities:        capabilityNames(p.desc.GetCapabilities()),
		Path:                p.inst.Path,
		Address:             p.inst.Address,
		SHA256:              p.sha,
		Source:              p.source,
		State:               state,
		Breaker:             breakerStateNames[p.br.current(now)],
		PID:                 p.pid,
		Restarts:            p.restarts,
		ConsecutiveFailures: p.br.failures,
		Exports:             p.ok.Load(),
		Failures:            p.failed.Load(),
		Rejected:            p.rejected.Load(),
		CallbacksDropped:    p.dropped.Load(),
		LastError:           redact.Text(p.lastErr),
		LastErrorAt:         p.lastErrAt,
		StartedAt:           p.startedAt,
		NextRestart:         p.nextRestart,
		ProtocolVersion:     p.protocol,
	}
}

// counters is what the self-metrics observe of one plugin.
type counters struct {
	name                              string
	up, ok, failed, rejected, breaker int64
	dropped                           int64
	restarts                          [len(reasons)]int64
}

func (p *plugin) counters() counters {
	p.mu.Lock()
	c := counters{name: p.name, breaker: int64(p.br.current(time.Now()))}
	if p.cur != nil && !p.cur.over() {
		c.up = 1
	}
	p.mu.Unlock()
	c.ok, c.failed, c.rejected, c.dropped = p.ok.Load(), p.failed.Load(), p.rejected.Load(), p.dropped.Load()
	for i := range c.restarts {
		c.restarts[i] = p.restartsBy[i].Load()
	}
	return c
}

// Health reports whether every plugin is serving with its circuit not
// open, and per plugin (keyed by name) its state, pid, restarts,
// consecutive failures, breaker state, formats, version and last error
// with its time: what /health/detailed shows. No plugins is healthy.
func (h *Host) Health() (healthy bool, details map[string]any) {
	healthy = true
	details = map[string]any{}
	for _, s := range h.Status() {
		if s.State != StateRunning {
			healthy = false
		}
		d := map[string]any{
			"state":                s.State,
			"pid":                  s.PID,
			"restarts":             s.Restarts,
			"consecutive_failures": s.ConsecutiveFailures,
			"breaker":              s.Breaker,
			"formats":              s.Formats,
			"version":              s.Version,
			"source":               s.Source,
		}
		if s.LastError != "" {
			d["last_error"] = s.LastError
			d["last_error_at"] = s.LastErrorAt.UTC().Format(time.RFC3339Nano)
		}
		if !s.NextRestart.IsZero() && s.State == StateRestarting {
			d["next_restart"] = s.NextRestart.UTC().Format(time.RFC3339Nano)
		}
		details[s.Name] = d
	}
	return healthy, details
}

// CacheSynced forwards a telemetry.cache_synced event to every plugin
// that asked for it (CAPABILITY_CACHE_SYNCED), through each plugin's
// callback queue: it never blocks, and a full queue drops the call and
// counts it. Events of other names are ignored. ctx is not used: delivery
// is asynchronous and bounded by callback_timeout. Safe for concurrent
// use; after Shutdown it does nothing.
func (h *Host) CacheSynced(_ context.Context, e events.Event) {
	if e.Name != events.TelemetryCacheSynced || h.life.Err() != nil {
		return
	}
	m := &pluginv1.CacheSyncedRequest{EventId: e.ID.String(), CorrelationId: e.CorrelationID.String()}
	if !e.Time.IsZero() {
		m.TimeUnixNano = uint64(e.Time.UnixNano())
	}
	if v, ok := e.Attr("strategy"); ok {
		m.Strategy = v.Str()
	}
	if v, ok := e.Attr("metrics_count"); ok {
		m.MetricsCount = v.Int64()
	}
	if v, ok := e.Attr("success"); ok {
		m.Success = v.Bool()
	}
	if v, ok := e.Attr("duration_ms"); ok {
		m.DurationMs = v.Float64()
	}
	cb := callback{what: "CacheSynced", call: func(ctx context.Context, c pluginv1.ExporterClient) error {
		_, err := c.CacheSynced(ctx, m)
		return err
	}}
	for _, p := range h.pluginList() {
		if capability(p.caps.Load()).has(pluginv1.Capability_CAPABILITY_CACHE_SYNCED) {
			p.enqueue(cb)
		}
	}
}

// killWait bounds Shutdown's wait for killed plugins to be reaped.
const killWait = 5 * time.Second

// Shutdown stops restarting plugins and delivering callbacks, stops every
// plugin process (asking each to exit, killing it when it has not within
// 2s or when ctx ends first) and waits for them and for the host's
// goroutines: no plugin process is left. Exports after Shutdown return an
// error wrapping exporters.ErrShutdown; exports in flight fail. The
// plugins stay registered. Shutdown may be called more than once and
// concurrently; later calls wait for the first (within their ctx) and
// return nil.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		select {
		case <-h.shutDown:
		case <-ctx.Done():
		}
		return nil
	}
	h.stopped = true
	list := h.plugins
	h.mu.Unlock()
	defer close(h.shutDown)

	close(h.stop)
	h.cancelLife()
	var procs []*proc
	for _, p := range list {
		p.caps.Store(0)
		p.mu.Lock()
		p.state = StateStopped
		if p.cur != nil {
			procs = append(procs, p.cur)
			p.cur, p.pid = nil, 0
		}
		p.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, pr := range procs {
			wg.Go(func() { pr.close(false) })
		}
		wg.Wait()
		h.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, pr := range procs {
			pr.quiet.Store(true)
			pr.kill()
		}
		err = fmt.Errorf("plugins: shutdown: %w (plugins still running were killed)", ctx.Err())
		// A killed process is gone at once unless the kernel holds it
		// (uninterruptible sleep): then Sextant exits anyway, saying so.
		select {
		case <-done:
		case <-time.After(killWait):
			err = fmt.Errorf("plugins: shutdown: %w; some plugin processes had not exited %s after SIGKILL", ctx.Err(), killWait)
		}
	}
	return errors.Join(err, h.metrics.unregister())
}

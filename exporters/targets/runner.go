package targets

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sextant-telemetry/sextant/exporters"
)

// MeterName is the instrumentation scope of the targets' self-metrics.
const MeterName = "github.com/sextant-telemetry/sextant/exporters/targets"

// Request is one export a target asks the host for.
type Request struct {
	ID     string // the export's id, shared by its lifecycle events
	Target string // the target's name
	Format string
	Match  []string // family name globs
	Labels []string // label matchers
}

// ExportFunc writes one snapshot of the metrics, filtered, in req.Format to
// w: the host reads a snapshot and hands it to its exporter registry, which
// publishes the export's lifecycle events.
type ExportFunc func(ctx context.Context, req Request, w io.Writer) (exporters.ExportResult, error)

// Claimer decides, for a cluster-wide target, whether this instance runs
// the export of the current interval: it returns true for exactly one
// instance per interval across the cluster.
type Claimer interface {
	Claim(ctx context.Context, target string, interval time.Duration) (bool, error)
}

// Settings carries what the host passes in code.
type Settings struct {
	// Export is required.
	Export ExportFunc
	// Routed returns how many events the router has routed; required by
	// threshold targets (after_events).
	Routed func() uint64
	// Claimer coordinates cluster_wide targets; nil runs them on every
	// instance (with a warning at start).
	Claimer Claimer
	// Instance is this instance's id: the Pushgateway's default instance
	// grouping label.
	Instance string
	// MeterProvider receives the self-metrics; nil means none.
	MeterProvider metric.MeterProvider
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Client sends HTTP and Pushgateway exports; nil means a client
	// without a timeout of its own (each attempt has the target's).
	Client *http.Client
	// NewID makes export ids; nil means the host gives none (Request.ID
	// empty, the registry makes one).
	NewID func() string
	_     struct{}
}

// Breaker states, the values of sextant_targets_breaker_state.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// Runner runs every target on a goroutine of its own until Shutdown.
type Runner struct {
	set     Settings
	targets []*runner
	logger  *slog.Logger
	reg     metric.Registration

	stop  chan struct{}
	abort chan struct{} // closed when Shutdown gives up waiting
	wg    sync.WaitGroup
	once  sync.Once
}

// runner is one target's state. Counters are read by the self-metrics.
type runner struct {
	t      Target
	set    *Settings
	logger *slog.Logger
	abort  <-chan struct{} // closed when Shutdown's context ends first

	ok, failed, skipped, retries atomic.Uint64
	bytes                        atomic.Int64
	state                        atomic.Int32
	lastSuccess                  atomic.Int64 // unix nanoseconds
	lastErr                      atomic.Pointer[string]
	durations                    metric.Float64Histogram

	failures  int       // consecutive, owned by the goroutine
	openUntil time.Time // owned by the goroutine
}

// Stats is one target's counters.
type Stats struct {
	Name                       string
	Exports, Failures, Skipped uint64 // Skipped: while the breaker was open, or another instance's turn
	Retries                    uint64
	Bytes                      int64
	BreakerState               string // closed, half_open or open
	LastSuccess                time.Time
	LastError                  string
	Every, MaxDelay            time.Duration
	AfterEvents                uint64
	Destination                string
	ClusterWide                bool
	Format                     string
	_                          struct{}
}

// New validates the targets and builds a Runner; Start starts them.
func New(ts []Target, set Settings) (*Runner, error) {
	if err := Validate(ts); err != nil {
		return nil, err
	}
	if set.Export == nil {
		return nil, errors.New("targets: Settings.Export is required")
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.Client == nil {
		set.Client = &http.Client{}
	}
	r := &Runner{set: set, logger: set.Logger, stop: make(chan struct{}), abort: make(chan struct{})}
	for _, t := range ts {
		if t.AfterEvents > 0 && set.Routed == nil {
			return nil, fmt.Errorf("targets: target %q counts events, but Settings.Routed is nil", t.Name)
		}
		r.targets = append(r.targets, &runner{t: t, set: &r.set, logger: set.Logger.With("target", t.Name), abort: r.abort})
	}
	if set.MeterProvider != nil {
		if err := r.registerMetrics(set.MeterProvider.Meter(MeterName)); err != nil {
			return nil, fmt.Errorf("targets: self-metrics: %w", err)
		}
	}
	return r, nil
}

// Start starts every target's goroutine. A cluster-wide target without a
// Claimer runs on this instance, with a warning.
func (r *Runner) Start() {
	for _, tr := range r.targets {
		if tr.t.ClusterWide && r.set.Claimer == nil {
			tr.logger.Warn("target is cluster_wide but the bus is not shared (not postgres): it runs on this instance")
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			tr.run(r.stop)
		}()
	}
}

// Shutdown stops the targets, letting an export in progress finish within
// ctx, and unregisters the self-metrics. It does not export a last time:
// the process's metrics are flushed by the MeterProvider. Safe to call more
// than once.
func (r *Runner) Shutdown(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			close(r.abort) // exports in progress give up now
			<-done
			err = fmt.Errorf("targets: shutdown: %w", ctx.Err())
		}
		if r.reg != nil {
			err = errors.Join(err, r.reg.Unregister())
		}
	})
	return err
}

// Stats returns every target's counters, in configuration order.
func (r *Runner) Stats() []Stats {
	out := make([]Stats, 0, len(r.targets))
	for _, tr := range r.targets {
		s := Stats{Name: tr.t.Name, Exports: tr.ok.Load(), Failures: tr.failed.Load(), Skipped: tr.skipped.Load(),
			Retries: tr.retries.Load(), Bytes: tr.bytes.Load(), BreakerState: stateName(tr.state.Load()),
			Every: tr.t.Every, MaxDelay: tr.t.MaxDelay, AfterEvents: tr.t.AfterEvents, Destination: tr.t.destination(),
			ClusterWide: tr.t.ClusterWide, Format: tr.t.Format}
		if ns := tr.lastSuccess.Load(); ns > 0 {
			s.LastSuccess = time.Unix(0, ns)
		}
		if e := tr.lastErr.Load(); e != nil {
			s.LastError = *e
		}
		out = append(out, s)
	}
	return out
}

func stateName(s int32) string {
	return [...]string{"closed", "half_open", "open"}[s]
}

// destination describes where a target writes, without credentials.
func (t Target) destination() string {
	switch {
	case t.File != "":
		return "file " + t.File
	case t.HTTP != nil:
		return "http " + redact(t.HTTP.URL)
	case t.Pushgateway != nil:
		return "pushgateway " + redact(t.Pushgateway.URL)
	}
	return ""
}

// pollInterval is how often a threshold target looks at the routed count.
const pollInterval = 100 * time.Millisecond

// run waits for the target's triggers and exports until stop closes.
func (tr *runner) run(stop <-chan struct{}) {
	var every, poll <-chan time.Time
	if tr.t.Every > 0 {
		tk := time.NewTicker(tr.t.Every)
		defer tk.Stop()
		every = tk.C
	}
	var base uint64       // the routed count at the last export
	var waiting time.Time // when the first event since the last export was seen
	if tr.t.AfterEvents > 0 {
		base = tr.set.Routed()
		tk := time.NewTicker(pollInterval)
		defer tk.Stop()
		poll = tk.C
	}
	for {
		select {
		case <-stop:
			return
		case <-every:
			if tr.t.AfterEvents > 0 { // the scheduled export carries the waiting events too
				base, waiting = tr.set.Routed(), time.Time{}
			}
		case <-poll:
			n := tr.set.Routed()
			if n > base && waiting.IsZero() {
				waiting = time.Now()
			}
			due := n-base >= tr.t.AfterEvents ||
				(tr.t.MaxDelay > 0 && n > base && time.Since(waiting) >= tr.t.MaxDelay)
			if !due {
				continue
			}
			base, waiting = n, time.Time{}
		}
		tr.export(stop)
	}
}

// export runs one export through the breaker, with retries.
func (tr *runner) export(stop <-chan struct{}) {
	if tr.state.Load() == breakerOpen && time.Now().Before(tr.openUntil) {
		tr.skipped.Add(1)
		return
	}
	if tr.t.ClusterWide && tr.set.Claimer != nil {
		ctx, cancel := tr.attemptContext()
		mine, err := tr.set.Claimer.Claim(ctx, tr.t.Name, tr.interval())
		cancel()
		if err != nil {
			tr.fail(fmt.Errorf("claim the interval: %w", err))
			return
		}
		if !mine {
			tr.skipped.Add(1)
			return
		}
	}
	if tr.state.Load() == breakerOpen { // open_for has passed: one trial export
		tr.state.Store(breakerHalfOpen)
	}
	backoff := tr.t.backoff()
	for attempt := 0; ; attempt++ {
		err := tr.attempt()
		if err == nil {
			tr.succeed()
			return
		}
		if attempt >= tr.t.Retries || tr.state.Load() == breakerHalfOpen {
			tr.fail(err)
			return
		}
		tr.retries.Add(1)
		tr.logger.Debug("export failed; retrying", "attempt", attempt+1, "backoff", backoff, "error", err)
		select {
		case <-stop:
			tr.fail(err)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, MaxRetryBackoff)
	}
}

// attemptContext bounds one attempt by the target's timeout, and by
// Shutdown's context: an export in progress finishes unless that ends.
func (tr *runner) attemptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), tr.t.timeout())
	go func() {
		select {
		case <-tr.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// interval is the period a cluster-wide target claims.
func (tr *runner) interval() time.Duration {
	if tr.t.Every > 0 {
		return tr.t.Every
	}
	return tr.t.MaxDelay
}

func (tr *runner) succeed() {
	tr.ok.Add(1)
	tr.failures = 0
	tr.state.Store(breakerClosed)
	tr.lastSuccess.Store(time.Now().UnixNano())
}

func (tr *runner) fail(err error) {
	tr.failed.Add(1)
	msg := err.Error()
	tr.lastErr.Store(&msg)
	tr.failures++
	if tr.state.Load() == breakerHalfOpen || tr.failures >= tr.t.breakerFailures() {
		if tr.state.Swap(breakerOpen) != breakerOpen {
			tr.logger.Warn("export target failing: circuit open", "failures", tr.failures, "open_for", tr.t.breakerOpenFor(), "error", err)
		}
		tr.openUntil = time.Now().Add(tr.t.breakerOpenFor())
		return
	}
	tr.logger.Warn("export failed", "error", err)
}

// attempt exports once: the snapshot into memory, then to the destination,
// both within the target's timeout.
func (tr *runner) attempt() error {
	ctx, cancel := tr.attemptContext()
	defer cancel()
	start := time.Now()
	req := Request{Target: tr.t.Name, Format: tr.t.Format, Match: tr.t.Match, Labels: tr.t.Labels}
	if tr.set.NewID != nil {
		req.ID = tr.set.NewID()
	}
	var buf bytes.Buffer
	res, err := tr.set.Export(ctx, req, &buf)
	if err != nil {
		return fmt.Errorf("export %s: %w", tr.t.Format, err)
	}
	switch {
	case tr.t.File != "":
		err = writeAtomic(tr.t.File, buf.Bytes())
	case tr.t.HTTP != nil:
		err = tr.send(ctx, tr.t.HTTP.URL, tr.t.HTTP.method(), res.ContentType, tr.t.HTTP.Headers, tr.t.HTTP.BearerTokenFile, buf.Bytes())
	case tr.t.Pushgateway != nil:
		err = tr.send(ctx, tr.t.Pushgateway.groupURL(tr.set.Instance), http.MethodPut, res.ContentType, nil, "", buf.Bytes())
	}
	if err != nil {
		return err
	}
	tr.bytes.Add(int64(buf.Len()))
	if tr.durations != nil {
		tr.durations.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("target", tr.t.Name)))
	}
	return nil
}

func (h *HTTP) method() string {
	if h.Method == "" {
		return http.MethodPost
	}
	return h.Method
}

// groupURL is the Pushgateway URL of this instance's group:
// <url>/metrics/job/<job>[/<label>/<value>...], labels sorted. A value that
// is not a plain path segment (a slash, an empty value…) is written the
// Pushgateway's way: base64url after the label name suffixed @base64.
func (p *Pushgateway) groupURL(instance string) string {
	job := p.Job
	if job == "" {
		job = "sextant"
	}
	labels := map[string]string{}
	if instance != "" {
		labels["instance"] = instance
	}
	for k, v := range p.Grouping {
		labels[k] = v
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(p.URL, "/"))
	b.WriteString("/metrics")
	b.WriteString(pathPair("job", job))
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(pathPair(k, labels[k]))
	}
	return b.String()
}

func pathPair(name, value string) string {
	if value != "" && !strings.Contains(value, "/") && url.PathEscape(value) == value {
		return "/" + name + "/" + value
	}
	if value == "" {
		return "/" + name + "@base64/=" // the Pushgateway's spelling of an empty value
	}
	return "/" + name + "@base64/" + base64URL(value)
}

func base64URL(v string) string { return base64.URLEncoding.EncodeToString([]byte(v)) }

// send makes one HTTP request with body and fails on a non-2xx answer,
// quoting the start of its body.
func (tr *runner) send(ctx context.Context, u, method, contentType string, headers map[string]string, tokenFile string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile) // read each time: tokens rotate
		if err != nil {
			return fmt.Errorf("bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := tr.set.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // it quotes the URL, query included
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, redact(u), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection for the next export
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s: %s", method, redact(u), resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// redact drops a URL's query, which may carry a key.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// writeAtomic writes data to path through a temporary file in the same
// directory and a rename, so that a reader (node_exporter's textfile
// collector) never sees half a file.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("file: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // the rename itself survives a crash
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func (r *Runner) registerMetrics(m metric.Meter) error {
	exports, err1 := m.Int64ObservableCounter("sextant.targets.exports", metric.WithDescription("Exports by target and result: ok, error, or skipped (breaker open, or another instance's turn)"))
	retries, err2 := m.Int64ObservableCounter("sextant.targets.retries", metric.WithDescription("Export attempts retried after a failure"))
	sent, err3 := m.Int64ObservableCounter("sextant.targets.bytes", metric.WithUnit("By"), metric.WithDescription("Bytes exported by target"))
	state, err4 := m.Int64ObservableGauge("sextant.targets.breaker.state", metric.WithDescription("A target's circuit breaker: 0 closed, 1 half-open, 2 open"))
	lastOK, err5 := m.Float64ObservableGauge("sextant.targets.last_success", metric.WithUnit("s"), metric.WithDescription("Unix time of a target's last successful export"))
	durations, err6 := m.Float64Histogram("sextant.targets.export.duration", metric.WithUnit("s"), metric.WithDescription("Time taken by one successful export attempt, destination included"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	for _, tr := range r.targets {
		tr.durations = durations
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, tr := range r.targets {
			name := attribute.String("target", tr.t.Name)
			o.ObserveInt64(exports, int64(tr.ok.Load()), metric.WithAttributes(name, attribute.String("result", "ok")))
			o.ObserveInt64(exports, int64(tr.failed.Load()), metric.WithAttributes(name, attribute.String("result", "error")))
			o.ObserveInt64(exports, int64(tr.skipped.Load()), metric.WithAttributes(name, attribute.String("result", "skipped")))
			o.ObserveInt64(retries, int64(tr.retries.Load()), metric.WithAttributes(name))
			o.ObserveInt64(sent, tr.bytes.Load(), metric.WithAttributes(name))
			o.ObserveInt64(state, int64(tr.state.Load()), metric.WithAttributes(name))
			if ns := tr.lastSuccess.Load(); ns > 0 {
				o.ObserveFloat64(lastOK, float64(ns)/1e9, metric.WithAttributes(name))
			}
		}
		return nil
	}, exports, retries, sent, state, lastOK)
	if err != nil {
		return err
	}
	r.reg = reg
	return nil
}

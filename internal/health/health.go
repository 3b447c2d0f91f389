package health

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the verdict of a check or of a whole report.
type Status string

// The statuses, from best to worst.
const (
	// StatusHealthy: working as intended.
	StatusHealthy Status = "healthy"
	// StatusDegraded: serving, but something needs attention (an open
	// circuit, a plugin restarting, a recent export failure).
	StatusDegraded Status = "degraded"
	// StatusUnhealthy: not doing its job; on a critical check, the instance
	// is not ready for traffic.
	StatusUnhealthy Status = "unhealthy"
)

var statuses = []Status{StatusHealthy, StatusDegraded, StatusUnhealthy}

// rank orders statuses from best (0) to worst; anything unknown is worst.
func (s Status) rank() int {
	switch s {
	case StatusHealthy:
		return 0
	case StatusDegraded:
		return 1
	default:
		return 2
	}
}

// valid reports whether s is one of the three statuses.
func (s Status) valid() bool { return slices.Contains(statuses, s) }

// UnmarshalText accepts healthy, degraded or unhealthy.
func (s *Status) UnmarshalText(b []byte) error {
	v := Status(b)
	if !v.valid() {
		return fmt.Errorf("health: status %q: must be one of %s", b, strings.Join([]string{string(StatusHealthy), string(StatusDegraded), string(StatusUnhealthy)}, ", "))
	}
	*s = v
	return nil
}

// Worst returns the worst of ss; healthy when ss is empty. A status that is
// not one of the three counts as unhealthy.
func Worst(ss ...Status) Status {
	w := StatusHealthy
	for _, s := range ss {
		if s.rank() > w.rank() {
			w = s
			if !s.valid() {
				w = StatusUnhealthy
			}
		}
	}
	return w
}

// Result is what a check found.
type Result struct {
	// Status is the verdict. A Result whose Status is not one of the three
	// statuses (the zero value included) is reported as unhealthy.
	Status Status
	// Error says why the status is not healthy, in a few words; optional.
	Error string
	// Details are the check's numbers and states, shown under the check's
	// name in the report. The keys status, error, critical and duration_ms
	// are the report's own and take precedence. The map is read, never
	// modified, and must not be modified after Check returns.
	Details map[string]any
}

// Checker is one component's health check.
type Checker interface {
	// Check reports the component's health. It is called on the Registry's
	// goroutines, possibly concurrently with the component's own work, but
	// never concurrently with itself. ctx ends at the check's timeout and
	// when the Registry shuts down: Check must honour it and return soon
	// after, since a check that does not return is not started again (it
	// is reported as timed out) and its goroutine outlives the report.
	// Nobody retries a failed check; the next report runs it again.
	Check(ctx context.Context) Result
}

// CheckFunc adapts a function to Checker.
type CheckFunc func(ctx context.Context) Result

// Check calls f(ctx).
func (f CheckFunc) Check(ctx context.Context) Result { return f(ctx) }

var _ Checker = CheckFunc(nil)

// CheckResult is one check's outcome in a Report.
type CheckResult struct {
	Result
	// Critical checks decide readiness.
	Critical bool
	// TopLevel checks are also shown at the report's top level.
	TopLevel bool
	// Duration is how long the check took (its timeout when it timed out).
	Duration time.Duration
}

// Report is the outcome of one run of every check.
type Report struct {
	// Status is the worst of the checks' statuses, a non-critical check
	// counting at most as degraded: only a critical check makes the whole
	// unhealthy. It is unhealthy while the Registry is not serving.
	Status Status
	// Readiness is the worst of the critical checks' statuses; unhealthy
	// while not serving. Unhealthy means not ready for traffic.
	Readiness Status
	// Reason says why the instance is not serving; empty while it is.
	Reason string
	// Timestamp is when the checks ran.
	Timestamp time.Time
	// Uptime is the time from the Registry's creation to Timestamp.
	Uptime time.Duration
	// Checks holds each check's result by name. Reports share it: read it,
	// never modify it.
	Checks map[string]CheckResult
}

// Ready reports whether the instance is ready for traffic.
func (r Report) Ready() bool { return r.Readiness != StatusUnhealthy }

// ErrShutdown is returned by Run after Shutdown.
var ErrShutdown = errors.New("health: registry shut down")

// Defaults for New's options.
const (
	DefaultTimeout = 2 * time.Second
	DefaultTTL     = time.Second
)

// Option configures a Registry.
type Option interface{ apply(*Registry) }

type optionFunc func(*Registry)

func (f optionFunc) apply(r *Registry) { f(r) }

// WithTTL sets how long a report is served from the cache (DefaultTTL).
// Zero turns the cache off; concurrent callers still share one run.
func WithTTL(d time.Duration) Option { return optionFunc(func(r *Registry) { r.ttl = max(d, 0) }) }

// WithTimeout sets the timeout of checks registered without one
// (DefaultTimeout). Non-positive values keep the default.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(r *Registry) {
		if d > 0 {
			r.timeout = d
		}
	})
}

// WithClock sets the clock for the cache's age, timestamps, uptime and
// durations (time.Now). Check timeouts run on real timers.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(r *Registry) {
		if now != nil {
			r.now = now
		}
	})
}

// WithServing sets a gate asked on every report, never cached: while it
// returns false (starting, shutting down) the report is unhealthy and not
// ready whatever the checks say. It must be cheap (an atomic load) and
// safe for concurrent use.
func WithServing(serving func() bool) Option {
	return optionFunc(func(r *Registry) { r.serving = serving })
}

// CheckOption configures one registered check.
type CheckOption interface{ applyCheck(*check) }

type checkOptionFunc func(*check)

func (f checkOptionFunc) applyCheck(c *check) { f(c) }

// Timeout bounds the check (the Registry's default otherwise); a check
// that overruns it is unhealthy, "timed out after D". Non-positive values
// keep the default.
func Timeout(d time.Duration) CheckOption {
	return checkOptionFunc(func(c *check) {
		if d > 0 {
			c.timeout = d
		}
	})
}

// Critical makes the check decide readiness: while it is unhealthy, the
// instance is not ready and the report is unhealthy.
func Critical() CheckOption { return checkOptionFunc(func(c *check) { c.critical = true }) }

// TopLevel also shows the check, with its details, at the report's top
// level under its name: for clients of a body shape that predates checks.
func TopLevel() CheckOption { return checkOptionFunc(func(c *check) { c.topLevel = true }) }

// reserved are the report's own top-level keys, which a TopLevel check
// cannot take.
var reserved = []string{"status", "timestamp", "uptime_seconds", "checks", "reason"}

type check struct {
	name               string
	checker            Checker
	timeout            time.Duration
	critical, topLevel bool
	busy               atomic.Bool // Check has not returned yet
}

// flight is one run that concurrent callers share.
type flight struct {
	done chan struct{}
	rep  Report // written before done is closed
}

// Registry holds the checks and runs them. It is safe for concurrent use.
type Registry struct {
	now     func() time.Time
	ttl     time.Duration
	timeout time.Duration
	serving func() bool
	started time.Time

	ctx    context.Context // parent of every check's context; cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // runs and checks in progress

	mu       sync.Mutex
	checks   []*check
	cached   *Report
	cachedAt time.Time
	inflight *flight
	closed   bool
	runs     int // runs started, for tests
}

// New returns an empty Registry; uptime counts from now.
func New(opts ...Option) *Registry {
	r := &Registry{now: time.Now, ttl: DefaultTTL, timeout: DefaultTimeout}
	for _, o := range opts {
		o.apply(r)
	}
	r.started = r.now()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Register adds a check under name, a key of the report's checks. It fails
// on an empty or taken name, a nil checker, or a TopLevel check named like
// one of the report's own keys. A cached report is dropped. Safe for
// concurrent use, also while reports run.
func (r *Registry) Register(name string, c Checker, opts ...CheckOption) error {
	if name == "" {
		return errors.New("health: register: empty check name")
	}
	if c == nil {
		return fmt.Errorf("health: register %q: nil checker", name)
	}
	ck := &check{name: name, checker: c, timeout: r.timeout}
	for _, o := range opts {
		o.applyCheck(ck)
	}
	if ck.topLevel && slices.Contains(reserved, name) {
		return fmt.Errorf("health: register %q: a top-level check cannot be named like the report's keys (%s)", name, strings.Join(reserved, ", "))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.checks, func(o *check) bool { return o.name == name }) {
		return fmt.Errorf("health: register %q: already registered", name)
	}
	r.checks = append(r.checks, ck)
	r.cached = nil
	return nil
}

// Run returns a report: the cached one while younger than the TTL, else
// the one being made (concurrent callers share one run), else a new one.
// Every check runs concurrently, bounded by its timeout, so a run ends
// within the longest timeout even when a check hangs. ctx bounds only the
// wait: a run that a caller gave up on completes for the others and the
// cache. It returns ctx's error when ctx ends first and ErrShutdown after
// Shutdown.
func (r *Registry) Run(ctx context.Context) (Report, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Report{}, ErrShutdown
	}
	if r.cached != nil && r.now().Sub(r.cachedAt) < r.ttl {
		rep := *r.cached
		r.mu.Unlock()
		return r.gate(rep), nil
	}
	f := r.inflight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		r.inflight = f
		r.runs++
		r.wg.Add(1) // under mu, which Shutdown takes before it waits
		go r.run(f, slices.Clone(r.checks))
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return r.gate(f.rep), nil
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
}

// Shutdown cancels the checks in progress and waits, bounded by ctx, for
// them to return. Run returns ErrShutdown afterwards. It is safe to call
// more than once.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("health: shutdown: checks still running: %w", ctx.Err())
	}
}

// gate applies the serving gate to a copy of a report.
func (r *Registry) gate(rep Report) Report {
	if r.serving != nil && !r.serving() {
		rep.Status, rep.Readiness = StatusUnhealthy, StatusUnhealthy
		rep.Reason = "not serving: starting or shutting down"
	}
	return rep
}

func (r *Registry) run(f *flight, checks []*check) {
	defer r.wg.Done()
	start := r.now()
	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.runCheck(c)
		}()
	}
	wg.Wait()
	rep := Report{Status: StatusHealthy, Readiness: StatusHealthy, Timestamp: start, Uptime: start.Sub(r.started),
		Checks: make(map[string]CheckResult, len(checks))}
	for i, c := range checks {
		res := results[i]
		rep.Checks[c.name] = res
		s := res.Status
		if res.Critical {
			rep.Readiness = Worst(rep.Readiness, s)
		} else if s == StatusUnhealthy {
			s = StatusDegraded // only critical checks make the whole unhealthy
		}
		rep.Status = Worst(rep.Status, s)
	}
	r.mu.Lock()
	r.cached, r.cachedAt, r.inflight = &rep, r.now(), nil
	r.mu.Unlock()
	f.rep = rep
	close(f.done)
}

// runCheck runs one check on its own goroutine and waits for it at most
// until its timeout.
func (r *Registry) runCheck(c *check) (out CheckResult) {
	out = CheckResult{Critical: c.critical, TopLevel: c.topLevel}
	start := r.now()
	defer func() { out.Duration = r.now().Sub(start) }()
	if !c.busy.CompareAndSwap(false, true) {
		// A check that ignored its cancelled context: don't pile up another.
		out.Result = Result{Status: StatusUnhealthy, Error: fmt.Sprintf("timed out after %s (an earlier run has not returned yet)", c.timeout)}
		return out
	}
	ctx, cancel := context.WithTimeout(r.ctx, c.timeout)
	defer cancel()
	done := make(chan Result, 1)
	r.wg.Add(1) // the run holds a count, so this never races with Wait
	go func() {
		defer r.wg.Done()
		defer c.busy.Store(false)
		defer func() {
			if p := recover(); p != nil {
				done <- Result{Status: StatusUnhealthy, Error: fmt.Sprintf("check panicked: %v", p)}
			}
		}()
		done <- c.checker.Check(ctx)
	}()
	var res Result
	select {
	case res = <-done:
	case <-ctx.Done():
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Also when Check returned at its deadline: what it found then
		// is most likely its context's error.
		res = Result{Status: StatusUnhealthy, Error: fmt.Sprintf("timed out after %s", c.timeout)}
	case ctx.Err() != nil:
		res = Result{Status: StatusUnhealthy, Error: "health checks shut down"}
	case !res.Status.valid():
		res = Result{Status: StatusUnhealthy, Error: fmt.Sprintf("check returned status %q", res.Status), Details: res.Details}
	}
	out.Result = res
	return out
}

// runCount is how many runs have started; for tests.
func (r *Registry) runCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs
}

// view selects what a report body shows.
type view int

const (
	viewSummary  view = iota // each check's status, error and duration
	viewDetailed             // each check's details too
)

// body is the report's JSON object: status, timestamp, uptime_seconds,
// checks (by view), reason while not serving, and the TopLevel checks in
// full.
func (rep Report) body(v view, status Status) map[string]any {
	checks := make(map[string]any, len(rep.Checks))
	b := map[string]any{"status": status, "timestamp": rep.Timestamp.UTC(), "uptime_seconds": int64(rep.Uptime / time.Second), "checks": checks}
	if rep.Reason != "" {
		b["reason"] = rep.Reason
	}
	for name, cr := range rep.Checks {
		if v == viewDetailed {
			checks[name] = cr.full()
		} else {
			checks[name] = cr.summary()
		}
		if cr.TopLevel {
			b[name] = cr.full()
		}
	}
	return b
}

// MarshalJSON writes the detailed view: {"status", "timestamp",
// "uptime_seconds", "checks": {name: {"status", "error", "critical",
// "duration_ms", details...}}}, plus the TopLevel checks under their names.
func (rep Report) MarshalJSON() ([]byte, error) {
	return marshal(rep.body(viewDetailed, rep.Status))
}

func (cr CheckResult) summary() map[string]any {
	m := map[string]any{"status": cr.Status, "duration_ms": durationMS(cr.Duration)}
	if cr.Error != "" {
		m["error"] = cr.Error
	}
	return m
}

func (cr CheckResult) full() map[string]any {
	m := maps.Clone(cr.Details)
	if m == nil {
		m = map[string]any{}
	}
	maps.Copy(m, cr.summary())
	if cr.Error == "" {
		delete(m, "error") // the report's key, not a detail
	}
	m["critical"] = cr.Critical
	return m
}

// durationMS is d in milliseconds, to the microsecond.
func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

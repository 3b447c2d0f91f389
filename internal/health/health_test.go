package health

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixed returns a result with status s.
func fixed(s Status) Checker {
	return CheckFunc(func(context.Context) Result { return Result{Status: s} })
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func shutdown(t *testing.T, r *Registry) {
	t.Helper()
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestWorst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []Status
		want Status
	}{
		{name: "none", want: StatusHealthy},
		{name: "all healthy", in: []Status{StatusHealthy, StatusHealthy}, want: StatusHealthy},
		{name: "degraded wins over healthy", in: []Status{StatusHealthy, StatusDegraded, StatusHealthy}, want: StatusDegraded},
		{name: "unhealthy wins", in: []Status{StatusDegraded, StatusUnhealthy, StatusHealthy}, want: StatusUnhealthy},
		{name: "unknown counts as unhealthy", in: []Status{StatusHealthy, "meh"}, want: StatusUnhealthy},
		{name: "zero value counts as unhealthy", in: []Status{""}, want: StatusUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Worst(tt.in...))
		})
	}
}

func TestStatusUnmarshalText(t *testing.T) {
	t.Parallel()
	for _, s := range statuses {
		var got Status
		require.NoError(t, got.UnmarshalText([]byte(s)))
		require.Equal(t, s, got)
	}
	var got Status
	require.EqualError(t, got.UnmarshalText([]byte("Healthy")), `health: status "Healthy": must be one of healthy, degraded, unhealthy`)
	require.Empty(t, got)
}

func FuzzStatusUnmarshalText(f *testing.F) {
	for _, s := range []string{"healthy", "degraded", "unhealthy", "", "HEALTHY"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s Status
		if err := s.UnmarshalText([]byte(in)); err != nil {
			require.Empty(t, s)
			return
		}
		require.Equal(t, in, string(s))
		require.Equal(t, s, Worst(s), "a valid status is its own worst")
	})
}

func TestRunAggregates(t *testing.T) {
	t.Parallel()
	type reg struct {
		status   Status
		critical bool
	}
	tests := []struct {
		name          string
		checks        map[string]reg
		wantStatus    Status
		wantReadiness Status
	}{
		{name: "no checks", wantStatus: StatusHealthy, wantReadiness: StatusHealthy},
		{name: "all healthy", checks: map[string]reg{"a": {StatusHealthy, true}, "b": {StatusHealthy, false}},
			wantStatus: StatusHealthy, wantReadiness: StatusHealthy},
		{name: "non-critical unhealthy only degrades", checks: map[string]reg{"a": {StatusHealthy, true}, "b": {StatusUnhealthy, false}},
			wantStatus: StatusDegraded, wantReadiness: StatusHealthy},
		{name: "critical degraded stays ready", checks: map[string]reg{"a": {StatusDegraded, true}, "b": {StatusHealthy, false}},
			wantStatus: StatusDegraded, wantReadiness: StatusDegraded},
		{name: "critical unhealthy", checks: map[string]reg{"a": {StatusUnhealthy, true}, "b": {StatusHealthy, false}},
			wantStatus: StatusUnhealthy, wantReadiness: StatusUnhealthy},
		{name: "invalid status is unhealthy", checks: map[string]reg{"a": {"", true}},
			wantStatus: StatusUnhealthy, wantReadiness: StatusUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New()
			defer shutdown(t, r)
			for name, c := range tt.checks {
				var opts []CheckOption
				if c.critical {
					opts = append(opts, Critical())
				}
				require.NoError(t, r.Register(name, fixed(c.status), opts...))
			}
			rep, err := r.Run(context.Background())
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, rep.Status)
			require.Equal(t, tt.wantReadiness, rep.Readiness)
			require.Equal(t, tt.wantReadiness != StatusUnhealthy, rep.Ready())
			require.Len(t, rep.Checks, len(tt.checks))
			for name, c := range tt.checks {
				require.Equal(t, c.critical, rep.Checks[name].Critical, name)
			}
		})
	}
}

func TestRunNormalisesResults(t *testing.T) {
	t.Parallel()
	r := New()
	defer shutdown(t, r)
	require.NoError(t, r.Register("panics", CheckFunc(func(context.Context) Result { panic("boom") })))
	require.NoError(t, r.Register("no_status", CheckFunc(func(context.Context) Result {
		return Result{Details: map[string]any{"n": 1}}
	})))
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, Result{Status: StatusUnhealthy, Error: "check panicked: boom"}, rep.Checks["panics"].Result)
	require.Equal(t, Result{Status: StatusUnhealthy, Error: `check returned status ""`, Details: map[string]any{"n": 1}}, rep.Checks["no_status"].Result)
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		check   string
		checker Checker
		opts    []CheckOption
		wantErr string
	}{
		{name: "empty name", checker: fixed(StatusHealthy), wantErr: "health: register: empty check name"},
		{name: "nil checker", check: "x", wantErr: `health: register "x": nil checker`},
		{name: "taken", check: "taken", checker: fixed(StatusHealthy), wantErr: `health: register "taken": already registered`},
		{name: "reserved top-level", check: "status", checker: fixed(StatusHealthy), opts: []CheckOption{TopLevel()},
			wantErr: `health: register "status": a top-level check cannot be named like the report's keys (status, timestamp, uptime_seconds, checks, reason)`},
		{name: "reserved name is fine inside checks", check: "checks", checker: fixed(StatusHealthy)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New()
			defer shutdown(t, r)
			require.NoError(t, r.Register("taken", fixed(StatusHealthy)))
			err := r.Register(tt.check, tt.checker, tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// countingCheck counts its runs.
func countingCheck(n *atomic.Int64) Checker {
	return CheckFunc(func(context.Context) Result {
		n.Add(1)
		return Result{Status: StatusHealthy}
	})
}

func TestRunCachesForTTL(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := New(WithClock(clock.Now), WithTTL(time.Second))
	defer shutdown(t, r)
	var n atomic.Int64
	require.NoError(t, r.Register("c", countingCheck(&n)))
	run := func() Report {
		t.Helper()
		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		return rep
	}
	first := run()
	require.EqualValues(t, 1, n.Load())
	clock.Add(999 * time.Millisecond)
	require.Equal(t, first.Timestamp, run().Timestamp, "served from the cache")
	require.EqualValues(t, 1, n.Load())
	clock.Add(time.Millisecond)
	second := run()
	require.EqualValues(t, 2, n.Load(), "a report as old as the TTL is stale")
	require.Equal(t, first.Timestamp.Add(time.Second), second.Timestamp)
	require.Equal(t, time.Second, second.Uptime)

	// Registering drops the cache.
	require.NoError(t, r.Register("d", fixed(StatusHealthy)))
	require.Contains(t, run().Checks, "d")
	require.EqualValues(t, 3, n.Load())
}

// TestRunConcurrentSafe: 100 concurrent probes cost one run of the checks.
func TestRunConcurrentSafe(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(0, 0)}
	r := New(WithClock(clock.Now))
	defer shutdown(t, r)
	var n atomic.Int64
	require.NoError(t, r.Register("c", countingCheck(&n), Critical()))
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			rep, err := r.Run(context.Background())
			require.NoError(t, err)
			require.Equal(t, StatusHealthy, rep.Status)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, n.Load())
	require.Equal(t, 1, r.runCount())
}

// TestRunSharesOneFlight: without a cache, callers that arrive while a run
// is in progress wait for it instead of starting their own.
func TestRunSharesOneFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := New(WithTTL(0))
		defer shutdown(t, r)
		release := make(chan struct{})
		var n atomic.Int64
		require.NoError(t, r.Register("slow", CheckFunc(func(ctx context.Context) Result {
			n.Add(1)
			select {
			case <-release:
				return Result{Status: StatusDegraded}
			case <-ctx.Done():
				return Result{Status: StatusUnhealthy}
			}
		})))
		reports := make(chan Report, 100)
		for range 100 {
			go func() {
				rep, err := r.Run(context.Background())
				require.NoError(t, err)
				reports <- rep
			}()
		}
		synctest.Wait() // every caller waits on the one run
		require.EqualValues(t, 1, n.Load())
		close(release)
		for range 100 {
			require.Equal(t, StatusDegraded, (<-reports).Checks["slow"].Status)
		}
		require.Equal(t, 1, r.runCount())
		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, StatusDegraded, rep.Status)
		require.Equal(t, 2, r.runCount(), "with TTL 0 the next call runs again")
	})
}

func TestRunTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := New(WithTTL(0))
		defer shutdown(t, r)
		release := make(chan struct{})
		var stuckRuns atomic.Int64
		require.NoError(t, r.Register("honours_ctx", CheckFunc(func(ctx context.Context) Result {
			<-ctx.Done()
			return Result{Status: StatusHealthy} // too late: it timed out
		})))
		require.NoError(t, r.Register("ignores_ctx", CheckFunc(func(context.Context) Result {
			stuckRuns.Add(1)
			<-release
			return Result{Status: StatusHealthy}
		}), Timeout(50*time.Millisecond), Critical()))
		require.NoError(t, r.Register("fast", fixed(StatusHealthy)))

		start := time.Now()
		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, DefaultTimeout, time.Since(start), "the run ends at the longest timeout (fake time)")
		require.Equal(t, Result{Status: StatusUnhealthy, Error: "timed out after 2s"}, rep.Checks["honours_ctx"].Result)
		require.Equal(t, DefaultTimeout, rep.Checks["honours_ctx"].Duration)
		require.Equal(t, Result{Status: StatusUnhealthy, Error: "timed out after 50ms"}, rep.Checks["ignores_ctx"].Result)
		require.Equal(t, StatusHealthy, rep.Checks["fast"].Status)
		require.Equal(t, StatusUnhealthy, rep.Status)

		// The stuck check is not started again while it has not returned.
		rep, err = r.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, "timed out after 50ms (an earlier run has not returned yet)", rep.Checks["ignores_ctx"].Error)
		require.EqualValues(t, 1, stuckRuns.Load())

		close(release)
		synctest.Wait() // its goroutine ends
		rep, err = r.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, StatusHealthy, rep.Checks["ignores_ctx"].Status)
		require.EqualValues(t, 2, stuckRuns.Load())
	})
}

func TestRunCallerGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		clock := func() time.Time { return time.Now() }
		r := New(WithClock(clock))
		defer shutdown(t, r)
		require.NoError(t, r.Register("slow", CheckFunc(func(ctx context.Context) Result {
			select {
			case <-time.After(time.Second):
				return Result{Status: StatusHealthy}
			case <-ctx.Done():
				return Result{Status: StatusUnhealthy}
			}
		})))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := r.Run(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait() // the run goes on for the next caller and the cache
		time.Sleep(time.Second)
		synctest.Wait()
		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, StatusHealthy, rep.Status)
		require.Equal(t, 1, r.runCount(), "served from the cache the abandoned run filled")
	})
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := New()
		started := make(chan struct{})
		require.NoError(t, r.Register("waits", CheckFunc(func(ctx context.Context) Result {
			close(started)
			<-ctx.Done()
			return Result{Status: StatusHealthy}
		})))
		reports := make(chan Report, 1)
		go func() {
			rep, err := r.Run(context.Background())
			require.NoError(t, err)
			reports <- rep
		}()
		<-started
		require.NoError(t, r.Shutdown(context.Background()))
		require.Equal(t, Result{Status: StatusUnhealthy, Error: "health checks shut down"}, (<-reports).Checks["waits"].Result)
		_, err := r.Run(context.Background())
		require.ErrorIs(t, err, ErrShutdown)
		require.NoError(t, r.Shutdown(context.Background()), "twice")
	})
}

func TestShutdownBoundedByContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := New()
		release, started := make(chan struct{}), make(chan struct{})
		require.NoError(t, r.Register("stuck", CheckFunc(func(context.Context) Result {
			close(started)
			<-release
			return Result{Status: StatusHealthy}
		})))
		go func() { _, _ = r.Run(context.Background()) }()
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.EqualError(t, r.Shutdown(ctx), "health: shutdown: checks still running: context deadline exceeded")
		close(release)
		require.NoError(t, r.Shutdown(context.Background()))
	})
}

func TestServingGate(t *testing.T) {
	t.Parallel()
	var serving atomic.Bool
	r := New(WithServing(serving.Load))
	defer shutdown(t, r)
	require.NoError(t, r.Register("a", fixed(StatusHealthy), Critical()))
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, StatusUnhealthy, rep.Status)
	require.False(t, rep.Ready())
	require.Equal(t, "not serving: starting or shutting down", rep.Reason)
	require.Equal(t, StatusHealthy, rep.Checks["a"].Status, "the checks still show")

	serving.Store(true)
	rep, err = r.Run(context.Background()) // cached: the gate is not
	require.NoError(t, err)
	require.Equal(t, StatusHealthy, rep.Status)
	require.True(t, rep.Ready())
	require.Empty(t, rep.Reason)
	require.Equal(t, 1, r.runCount())
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		critical Status
		other    Status
		serving  bool
		// codes of live, ready, health, detailed
		want     [4]int
		wantBody [4]Status
	}{
		{name: "healthy", critical: StatusHealthy, other: StatusHealthy, serving: true,
			want: [4]int{200, 200, 200, 200}, wantBody: [4]Status{StatusHealthy, StatusHealthy, StatusHealthy, StatusHealthy}},
		{name: "non-critical unhealthy", critical: StatusHealthy, other: StatusUnhealthy, serving: true,
			want: [4]int{200, 200, 200, 200}, wantBody: [4]Status{StatusHealthy, StatusHealthy, StatusDegraded, StatusDegraded}},
		{name: "critical degraded", critical: StatusDegraded, other: StatusHealthy, serving: true,
			want: [4]int{200, 200, 200, 200}, wantBody: [4]Status{StatusHealthy, StatusDegraded, StatusDegraded, StatusDegraded}},
		{name: "critical unhealthy", critical: StatusUnhealthy, other: StatusHealthy, serving: true,
			want: [4]int{200, 503, 503, 503}, wantBody: [4]Status{StatusHealthy, StatusUnhealthy, StatusUnhealthy, StatusUnhealthy}},
		{name: "not serving", critical: StatusHealthy, other: StatusHealthy, serving: false,
			want: [4]int{200, 503, 503, 503}, wantBody: [4]Status{StatusHealthy, StatusUnhealthy, StatusUnhealthy, StatusUnhealthy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(WithServing(func() bool { return tt.serving }))
			defer shutdown(t, r)
			require.NoError(t, r.Register("core", CheckFunc(func(context.Context) Result {
				return Result{Status: tt.critical, Details: map[string]any{"consuming": true}}
			}), Critical(), TopLevel()))
			require.NoError(t, r.Register("extra", CheckFunc(func(context.Context) Result {
				return Result{Status: tt.other, Error: "why", Details: map[string]any{"n": 3}}
			})))
			for i, h := range []http.HandlerFunc{r.ServeLive, r.ServeReady, r.ServeHealth, r.ServeDetailed} {
				rec := httptest.NewRecorder()
				h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				require.Equal(t, tt.want[i], rec.Code, "handler %d", i)
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
				var body map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				require.Equal(t, string(tt.wantBody[i]), body["status"], "handler %d", i)
				require.Contains(t, body, "uptime_seconds")
				require.Contains(t, body, "timestamp")
				if i == 0 {
					require.NotContains(t, body, "checks", "live runs no check")
					require.Equal(t, 0, r.runCount())
					continue
				}
				checks := body["checks"].(map[string]any)
				extra := checks["extra"].(map[string]any)
				require.Equal(t, string(tt.other), extra["status"])
				require.Equal(t, "why", extra["error"])
				require.Contains(t, extra, "duration_ms")
				if i == 3 {
					require.EqualValues(t, 3, extra["n"], "details only in detailed")
					require.Equal(t, false, extra["critical"])
				} else {
					require.NotContains(t, extra, "n")
				}
				require.Equal(t, true, body["core"].(map[string]any)["consuming"], "top-level check in full")
			}
			require.Equal(t, 1, r.runCount(), "one run served three handlers")
		})
	}
}

func TestHandlerAfterShutdown(t *testing.T) {
	t.Parallel()
	r := New()
	require.NoError(t, r.Register("a", fixed(StatusHealthy)))
	shutdown(t, r)
	for _, h := range []http.HandlerFunc{r.ServeReady, r.ServeHealth, r.ServeDetailed} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Contains(t, rec.Body.String(), `"reason": "shutting down"`)
	}
	rec := httptest.NewRecorder()
	r.ServeLive(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

func TestHandlerUnencodableDetails(t *testing.T) {
	t.Parallel()
	r := New()
	defer shutdown(t, r)
	require.NoError(t, r.Register("bad", CheckFunc(func(context.Context) Result {
		return Result{Status: StatusHealthy, Details: map[string]any{"ch": make(chan int)}}
	})))
	rec := httptest.NewRecorder()
	r.ServeDetailed(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Contains(t, rec.Body.String(), "health: encoding the report: json: unsupported type: chan int")
}

// TestDetailedGolden pins the detailed body's format: seed 003's shape
// plus duration_ms, critical and the top-level copies.
func TestDetailedGolden(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	r := New(WithClock(clock.Now))
	defer shutdown(t, r)
	clock.Add(time.Hour)
	require.NoError(t, r.Register("database", CheckFunc(func(context.Context) Result {
		return Result{Status: StatusHealthy, Details: map[string]any{"connections_active": 5, "connections_idle": 15, "connections_max": 20}}
	})))
	require.NoError(t, r.Register("message_queue", CheckFunc(func(context.Context) Result {
		return Result{Status: StatusHealthy, Details: map[string]any{"queues_monitored": 3}}
	})))
	require.NoError(t, r.Register("circuit_breakers", CheckFunc(func(context.Context) Result {
		return Result{Status: StatusDegraded, Error: "1 breaker open", Details: map[string]any{"open_breakers": 1}}
	})))
	require.NoError(t, r.Register("bus", CheckFunc(func(context.Context) Result {
		return Result{Status: StatusHealthy, Details: map[string]any{"driver": "memory"}}
	}), Critical(), TopLevel()))
	rep, err := r.Run(context.Background())
	require.NoError(t, err)
	require.Zero(t, rep.Checks["bus"].Duration, "the clock stood still")
	got, err := json.Marshal(rep)
	require.NoError(t, err)
	var indented map[string]any
	require.NoError(t, json.Unmarshal(got, &indented))
	got, err = marshal(indented)
	require.NoError(t, err)
	path := filepath.Join("testdata", "detailed.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got)+"\n")
}

// BenchmarkServeHealthCached is one probe served from the cache: what a
// probe storm costs per request.
func BenchmarkServeHealthCached(b *testing.B) {
	r := New(WithTTL(time.Hour))
	defer func() { _ = r.Shutdown(context.Background()) }()
	for _, name := range []string{"router", "bus", "database", "message_queue", "circuit_breakers", "plugins"} {
		_ = r.Register(name, CheckFunc(func(context.Context) Result {
			return Result{Status: StatusHealthy, Details: map[string]any{"n": 1}}
		}))
	}
	req := httptest.NewRequest(http.MethodGet, "/health", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		r.ServeHealth(rec, req)
	}
	if r.runCount() != 1 {
		b.Fatalf("checks ran %d times", r.runCount())
	}
}

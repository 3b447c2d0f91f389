package targets_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/targets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeExport writes "sextant_exports_total N" in the prometheus text format,
// N counting its calls, and records the requests.
type fakeExport struct {
	mu    sync.Mutex
	reqs  []targets.Request
	calls atomic.Int64
	fail  atomic.Bool
	block chan struct{} // when set, waits for it or ctx
}

func (f *fakeExport) Export(ctx context.Context, req targets.Request, w io.Writer) (exporters.ExportResult, error) {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return exporters.ExportResult{}, ctx.Err()
		}
	}
	if f.fail.Load() {
		return exporters.ExportResult{}, errors.New("snapshot unavailable")
	}
	body := fmt.Sprintf("# TYPE sextant_exports_total counter\nsextant_exports_total %d\n", n)
	_, err := io.WriteString(w, body)
	return exporters.ExportResult{Format: req.Format, ContentType: "text/plain; version=0.0.4; charset=utf-8", Bytes: int64(len(body)), Series: 1}, err
}

func start(t *testing.T, ts []targets.Target, set targets.Settings) *targets.Runner {
	t.Helper()
	r, err := targets.New(ts, set)
	require.NoError(t, err)
	r.Start()
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := targets.Target{Name: "nightly", Format: "prometheus", Every: time.Minute, File: "/var/lib/node_exporter/sextant.prom"}
	with := func(f func(*targets.Target)) []targets.Target { t := ok; f(&t); return []targets.Target{t} }
	tests := []struct {
		name string
		ts   []targets.Target
		want []string
	}{
		{name: "valid", ts: []targets.Target{ok}},
		{name: "bad name", ts: with(func(t *targets.Target) { t.Name = "Bad Name" }), want: []string{"[0].name: must match"}},
		{name: "duplicate", ts: []targets.Target{ok, ok}, want: []string{`[1].name: "nightly" is also the name of target [0]`}},
		{name: "no trigger", ts: with(func(t *targets.Target) { t.Every = 0 }), want: []string{"[0].every: set every (a schedule), after_events (a threshold) or both"}},
		{name: "max_delay alone", ts: with(func(t *targets.Target) { t.MaxDelay = time.Second }), want: []string{"[0].max_delay: goes with after_events"}},
		{name: "two destinations", ts: with(func(t *targets.Target) { t.HTTP = &targets.HTTP{URL: "http://x:1/"} }), want: []string{"[0].file: set exactly one destination"}},
		{name: "no destination", ts: with(func(t *targets.Target) { t.File = "" }), want: []string{"[0].file: set exactly one destination"}},
		{name: "relative file", ts: with(func(t *targets.Target) { t.File = "x.prom" }), want: []string{`[0].file: write an absolute path or one starting with ./`}},
		{name: "bad url and method", ts: with(func(t *targets.Target) { t.File = ""; t.HTTP = &targets.HTTP{URL: "ftp://x", Method: "GET"} }),
			want: []string{"[0].http.url: want http://host:port/...", `[0].http.method: must be POST or PUT, got "GET"`}},
		{name: "credentials in url", ts: with(func(t *targets.Target) { t.File = ""; t.HTTP = &targets.HTTP{URL: "https://u:p@x/"} }),
			want: []string{"[0].http.url: credentials in the URL would reach logs"}},
		{name: "pushgateway wants prometheus", ts: with(func(t *targets.Target) {
			t.File, t.Format = "", "json"
			t.Pushgateway = &targets.Pushgateway{URL: "http://pg:9091", Grouping: map[string]string{"job": "x"}}
		}), want: []string{`[0].format: a Pushgateway takes prometheus, got "json"`, "[0].pushgateway.grouping.job: must be a label name other than job"}},
		{name: "retries", ts: with(func(t *targets.Target) { t.Retries = 11 }), want: []string{"[0].retries: must be from 0 to 10, got 11"}},
		{name: "no format", ts: with(func(t *targets.Target) { t.Format = "" }), want: []string{"[0].format: is required"}},
		{name: "cluster_wide without an interval", ts: with(func(t *targets.Target) { t.Every, t.AfterEvents, t.ClusterWide = 0, 100, true }),
			want: []string{"[0].cluster_wide: needs every or max_delay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := targets.Validate(tt.ts)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestFileTargetWritesAtomicallyOnSchedule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sextant.prom")
	fe := &fakeExport{}
	r := start(t, []targets.Target{{Name: "textfile", Format: "prometheus", Every: 10 * time.Millisecond, File: path,
		Match: []string{"tasker_*"}, Labels: []string{`namespace="ns"`}}}, targets.Settings{Export: fe.Export})
	require.Eventually(t, func() bool { return r.Stats()[0].Exports >= 3 }, 10*time.Second, 5*time.Millisecond)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Regexp(t, `^# TYPE sextant_exports_total counter\nsextant_exports_total \d+\n$`, string(b), "always a whole file")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	fe.mu.Lock()
	req := fe.reqs[0]
	fe.mu.Unlock()
	require.Equal(t, targets.Request{Target: "textfile", Format: "prometheus", Match: []string{"tasker_*"}, Labels: []string{`namespace="ns"`}}, req)
	require.NoError(t, r.Shutdown(context.Background()))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestThresholdTarget(t *testing.T) {
	t.Parallel()
	var routed atomic.Uint64
	fe := &fakeExport{}
	dir := t.TempDir()
	r := start(t, []targets.Target{
		{Name: "count", Format: "json", AfterEvents: 100, File: filepath.Join(dir, "a.json")},
		{Name: "delay", Format: "json", AfterEvents: 1_000_000, MaxDelay: 50 * time.Millisecond, File: filepath.Join(dir, "b.json")},
	}, targets.Settings{Export: fe.Export, Routed: routed.Load})
	time.Sleep(300 * time.Millisecond) // no event: neither exports
	require.Zero(t, r.Stats()[0].Exports)
	require.Zero(t, r.Stats()[1].Exports, "max_delay exports only when events are waiting")
	routed.Add(99)
	require.Eventually(t, func() bool { return r.Stats()[1].Exports == 1 }, 10*time.Second, 5*time.Millisecond, "max_delay passed with events waiting")
	require.Zero(t, r.Stats()[0].Exports, "99 < 100")
	routed.Add(1)
	require.Eventually(t, func() bool { return r.Stats()[0].Exports == 1 }, 10*time.Second, 5*time.Millisecond, "the 100th event")
}

func TestHTTPTargetRetriesAndBreaks(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		bodies  []string
		auth    []string
		ctypes  []string
		failing atomic.Bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, auth, ctypes = append(bodies, string(b)), append(auth, r.Header.Get("Authorization")), append(ctypes, r.Header.Get("Content-Type"))
		mu.Unlock()
		if failing.Load() {
			http.Error(w, "collector overloaded", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("s3cret\n"), 0o600))
	fe := &fakeExport{}
	failing.Store(true)
	r := start(t, []targets.Target{{Name: "collector", Format: "prometheus", Every: 5 * time.Millisecond,
		HTTP:    &targets.HTTP{URL: srv.URL + "/ingest", BearerTokenFile: tok, Headers: map[string]string{"X-Tenant": "acme"}},
		Retries: 2, RetryBackoff: time.Millisecond, BreakerFailures: 2, BreakerOpenFor: 200 * time.Millisecond}},
		targets.Settings{Export: fe.Export})
	require.Eventually(t, func() bool { return r.Stats()[0].BreakerState == "open" }, 10*time.Second, 2*time.Millisecond)
	st := r.Stats()[0]
	// Two failed exports open it; a slow test may see a failed half-open
	// trial too, which is not retried.
	require.GreaterOrEqual(t, st.Failures, uint64(2), "two failed exports open the breaker")
	require.Equal(t, uint64(4), st.Retries, "each of the two was tried 1 + 2 times; half-open trials are not retried")
	require.Contains(t, st.LastError, "503 Service Unavailable: collector overloaded")
	require.Eventually(t, func() bool { return r.Stats()[0].Skipped > 0 }, 10*time.Second, 2*time.Millisecond, "exports are skipped while open")
	failing.Store(false)
	require.Eventually(t, func() bool { s := r.Stats()[0]; return s.Exports > 0 && s.BreakerState == "closed" }, 10*time.Second, 5*time.Millisecond,
		"after open_for one export is tried, succeeds and closes the breaker")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "Bearer s3cret", auth[0])
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", ctypes[0])
	require.Contains(t, bodies[len(bodies)-1], "sextant_exports_total")
}

func TestSlowTargetDoesNotSlowOthers(t *testing.T) {
	t.Parallel()
	slow := &fakeExport{block: make(chan struct{})}
	fast := &fakeExport{}
	dir := t.TempDir()
	export := func(ctx context.Context, req targets.Request, w io.Writer) (exporters.ExportResult, error) {
		if req.Target == "slow" {
			return slow.Export(ctx, req, w)
		}
		return fast.Export(ctx, req, w)
	}
	r := start(t, []targets.Target{
		{Name: "slow", Format: "prometheus", Every: 5 * time.Millisecond, File: filepath.Join(dir, "slow.prom"), Timeout: time.Hour},
		{Name: "fast", Format: "prometheus", Every: 5 * time.Millisecond, File: filepath.Join(dir, "fast.prom")},
	}, targets.Settings{Export: export})
	require.Eventually(t, func() bool { return r.Stats()[1].Exports >= 20 }, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, r.Stats()[0].Exports, "the slow one is still in its first export")
	// Shutdown waits for the export in progress as long as its context
	// allows, then abandons it rather than waiting an hour.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Shutdown(ctx), context.DeadlineExceeded)
}

func TestShutdownLetsAnExportFinish(t *testing.T) {
	t.Parallel()
	fe := &fakeExport{block: make(chan struct{})}
	r := start(t, []targets.Target{{Name: "f", Format: "prometheus", Every: 5 * time.Millisecond, File: filepath.Join(t.TempDir(), "f.prom")}},
		targets.Settings{Export: fe.Export})
	require.Eventually(t, func() bool { return fe.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	go func() { time.Sleep(20 * time.Millisecond); close(fe.block) }()
	require.NoError(t, r.Shutdown(context.Background()))
	require.GreaterOrEqual(t, r.Stats()[0].Exports, uint64(1), "the export in progress finished")
	require.Zero(t, r.Stats()[0].Failures)
}

type claimer struct{ mine atomic.Bool }

func (c *claimer) Claim(context.Context, string, time.Duration) (bool, error) {
	return c.mine.Load(), nil
}

func TestClusterWideTargetRunsWhereClaimed(t *testing.T) {
	t.Parallel()
	fe := &fakeExport{}
	cl := &claimer{}
	r := start(t, []targets.Target{{Name: "cluster", Format: "prometheus", Every: 5 * time.Millisecond, ClusterWide: true,
		File: filepath.Join(t.TempDir(), "c.prom")}}, targets.Settings{Export: fe.Export, Claimer: cl})
	require.Eventually(t, func() bool { return r.Stats()[0].Skipped >= 3 }, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, fe.calls.Load(), "another instance's turn: no snapshot is even read")
	cl.mine.Store(true)
	require.Eventually(t, func() bool { return r.Stats()[0].Exports >= 1 }, 10*time.Second, 5*time.Millisecond)
}

func TestSelfMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	fe := &fakeExport{}
	r := start(t, []targets.Target{{Name: "m", Format: "prometheus", Every: 5 * time.Millisecond, File: filepath.Join(t.TempDir(), "m.prom")}},
		targets.Settings{Export: fe.Export, MeterProvider: mp})
	require.Eventually(t, func() bool { return r.Stats()[0].Exports >= 2 }, 10*time.Second, 5*time.Millisecond)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	for _, n := range []string{"sextant.targets.exports", "sextant.targets.retries", "sextant.targets.bytes", "sextant.targets.breaker.state", "sextant.targets.last_success", "sextant.targets.export.duration"} {
		require.True(t, names[n], "self-metric %s", n)
	}
}

// TestPushgateway pushes to a real Prometheus Pushgateway (Debian's
// prometheus-pushgateway package) and reads the pushed series back.
func TestPushgateway(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus-pushgateway")
	require.NoError(t, err, "prometheus-pushgateway not found: install Debian's prometheus-pushgateway package (apt-get install prometheus-pushgateway)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the pushgateway never became ready")

	fe := &fakeExport{}
	r := start(t, []targets.Target{{Name: "push", Format: "prometheus", Every: 10 * time.Millisecond,
		Pushgateway: &targets.Pushgateway{URL: base, Grouping: map[string]string{"region": "eu/west"}}}},
		targets.Settings{Export: fe.Export, Instance: "host-1:4242"})
	require.Eventually(t, func() bool { return r.Stats()[0].Exports >= 2 }, 10*time.Second, 5*time.Millisecond, "last error: %s", r.Stats()[0].LastError)
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "sextant_exports_total{") {
			line = l
		}
	}
	require.NotEmpty(t, line, "pushed series missing:\n%s", body)
	for _, want := range []string{`instance="host-1:4242"`, `job="sextant"`, `region="eu/west"`} {
		require.Contains(t, line, want)
	}
}

func TestURLQueryStaysOutOfErrorsAndHealth(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String() + "/ingest?token=s3cret"
	require.NoError(t, ln.Close()) // nothing listens: the dial fails
	fe := &fakeExport{}
	r := start(t, []targets.Target{{Name: "dead", Format: "json", Every: 5 * time.Millisecond, HTTP: &targets.HTTP{URL: dead}}},
		targets.Settings{Export: fe.Export})
	require.Eventually(t, func() bool { return r.Stats()[0].Failures > 0 }, 10*time.Second, 5*time.Millisecond)
	st := r.Stats()[0]
	require.NotContains(t, st.LastError, "s3cret")
	require.Contains(t, st.LastError, "connection refused")
	require.NotContains(t, st.Destination, "s3cret")
}

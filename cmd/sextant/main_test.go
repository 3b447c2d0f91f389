package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sextant-telemetry/sextant/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of run.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDemo runs `sextant demo ARGS --listen 127.0.0.1:0` until the test ends
// and returns the address it serves once the tasks are done.
func startDemo(t *testing.T, args ...string) string {
	t.Helper()
	return startDemoOn(t, "127.0.0.1:0", args...)
}

// startDemoOn is startDemo listening on listen.
func startDemoOn(t *testing.T, listen string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append(append([]string{"demo"}, args...), "--listen", listen), pw, stderr)
		_ = pw.Close()
	}()
	addr := make(chan string, 1)
	var out lockedBuffer
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`Metrics: http://([^/]+)/metrics`)
		for sc.Scan() {
			_, _ = out.Write(append(sc.Bytes(), '\n'))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	exited := false
	t.Cleanup(func() {
		cancel()
		if exited {
			return
		}
		select {
		case err := <-errc:
			require.NoError(t, err, "demo must exit cleanly on interrupt; stderr:\n%s", stderr.String())
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop within 30s of the interrupt")
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-errc:
		exited = true
		t.Fatalf("demo exited early: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("demo did not finish its tasks in 60s\nstdout:\n%s", out.String())
	}
	return ""
}

func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return families, body
}

// total sums a counter family's values, or a histogram family's counts.
func total(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "metric family %s missing from /metrics", name)
	sum := 0.0
	for _, m := range f.GetMetric() {
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		default:
			t.Fatalf("%s: unexpected type %s", name, f.GetType())
		}
	}
	return sum
}

// seedRow is one line of docs/seed-metrics.tsv, the reference documents'
// table of every metric they name (a copy of shared/seed-metrics.tsv).
type seedRow struct{ domain, otelName, promName, typ, unit, labels, status string }

func seedMetrics(t *testing.T) []seedRow {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "seed-metrics.tsv"))
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.Comment, r.FieldsPerRecord, r.LazyQuotes = '\t', '#', 7, true
	recs, err := r.ReadAll()
	require.NoError(t, err)
	var rows []seedRow
	for _, rec := range recs[1:] { // skip the header
		rows = append(rows, seedRow{rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6]})
	}
	return rows
}

// TestDemoReproducesSeedVerificationFlow runs the demo as a user would and
// checks /metrics against seed 002's flow and seed 001's names, types and labels.
func TestDemoReproducesSeedVerificationFlow(t *testing.T) {
	addr := startDemo(t, "--tasks", "26")
	fams, body := scrape(t, addr)

	flow := []struct {
		metric string
		want   float64
	}{
		{"tasker_tasks_requests_total", 26},
		{"tasker_steps_enqueued_total", 104},
		{"tasker_steps_claimed_total", 104},
		{"tasker_steps_executions_total", 104},
		{"tasker_steps_successes_total", 104},
		{"tasker_steps_results_submitted_total", 104},
		{"tasker_step_results_processed_total", 104},
		{"tasker_tasks_completions_total", 26},
		{"tasker_task_initialization_duration_milliseconds", 26},
		{"tasker_task_finalization_duration_milliseconds", 26},
		{"tasker_step_execution_duration_milliseconds", 104},
		{"tasker_step_claim_duration_milliseconds", 104},
		{"tasker_step_result_submission_duration_milliseconds", 104},
		{"tasker_step_result_processing_duration_milliseconds", 104},
	}
	for _, f := range flow {
		require.Equal(t, f.want, total(t, fams, f.metric), f.metric)
	}

	// Every instrumented orchestration and worker metric of the seeds that
	// the demo exercises has the seed's type and exactly its labels.
	checked := 0
	for _, row := range seedMetrics(t) {
		if row.status != "instrumented" || (row.domain != "orchestration" && row.domain != "worker") {
			continue
		}
		f, ok := fams[row.promName]
		if !ok {
			// Failures are not exercised by a fail-rate 0 run; the
			// fail-rate test covers them.
			require.Contains(t, []string{"tasker_tasks_failures_total", "tasker_steps_failures_total"}, row.promName)
			continue
		}
		checked++
		require.Equal(t, row.typ, strings.ToLower(f.GetType().String()), row.promName)
		want := strings.Split(row.labels, ",")
		slices.Sort(want)
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			require.Equal(t, want, got, "labels of %s", row.promName)
		}
	}
	require.Equal(t, 14, checked)

	// The namespace and task type are the seed's.
	for _, m := range fams["tasker_tasks_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		require.Equal(t, "rust_e2e_linear", labels["namespace"])
		require.Equal(t, "mathematical_sequence", labels["task_type"])
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, labels["correlation_id"])
	}
	promtoolCheck(t, body)

	// /health/detailed reports the breakers (seed 003's circuit_breakers
	// check) and the subscribers.
	resp, err := http.Get("http://" + addr + "/health/detailed")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var health struct {
		Status string `json:"status"`
		Checks struct {
			Breakers struct {
				Status   string `json:"status"`
				Open     *int   `json:"open_breakers"`
				Breakers []struct {
					Component string `json:"component"`
					State     string `json:"state"`
					StateCode *int   `json:"state_code"`
				} `json:"breakers"`
			} `json:"circuit_breakers"`
			Subscribers struct {
				Status string `json:"status"`
				Count  *int   `json:"count"`
			} `json:"subscribers"`
		} `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&health))
	require.Equal(t, "healthy", health.Status)
	require.Equal(t, "healthy", health.Checks.Breakers.Status)
	require.NotNil(t, health.Checks.Breakers.Open)
	require.Zero(t, *health.Checks.Breakers.Open)
	var components []string
	for _, b := range health.Checks.Breakers.Breakers {
		components = append(components, b.Component)
		require.Equal(t, "closed", b.State)
		require.NotNil(t, b.StateCode)
		require.Zero(t, *b.StateCode)
	}
	require.ElementsMatch(t, []string{"api", "ffi_completion"}, components)
	require.Equal(t, "healthy", health.Checks.Subscribers.Status)
	require.NotNil(t, health.Checks.Subscribers.Count)
}

// TestDemoInterruptedWhileRunning: Ctrl-C before the tasks are done is an
// orderly stop with exit code 0.
func TestDemoInterruptedWhileRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"demo", "--tasks", "50000000", "--listen", "127.0.0.1:0"}, out, io.Discard)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "progress:") }, 60*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
		require.Equal(t, 0, exitCode(err, io.Discard))
		require.Contains(t, out.String(), "interrupted after")
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of the interrupt")
	}
}

func TestDemoWithFailures(t *testing.T) {
	addr := startDemo(t, "--tasks", "20", "--fail-rate", "1", "--seed", "3")
	fams, _ := scrape(t, addr)
	require.Equal(t, 20.0, total(t, fams, "tasker_tasks_requests_total"))
	require.Equal(t, 20.0, total(t, fams, "tasker_tasks_failures_total"))
	// The first step of every task fails every attempt: up to 3 when the
	// error is retryable, 1 when it is a validation error; the rest never run.
	failures := total(t, fams, "tasker_steps_failures_total")
	require.GreaterOrEqual(t, failures, 20.0)
	require.LessOrEqual(t, failures, 60.0)
	require.NotContains(t, fams, "tasker_tasks_completions_total")
	types := map[string]bool{}
	for _, m := range fams["tasker_steps_failures_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "error_type" {
				types[l.GetValue()] = true
			}
		}
	}
	require.Subset(t, []string{"handler_error", "timeout", "validation_error"}, slices.Collect(maps.Keys(types)))
	require.Greater(t, len(types), 1, "failures have several error types")
}

// TestDemoSeedIsReproducible: the same --seed gives the same failures,
// retries and outcomes, and the summary reports them.
func TestDemoSeedIsReproducible(t *testing.T) {
	summary := func(args ...string) string {
		t.Helper()
		var out lockedBuffer
		err := run(context.Background(), append([]string{"demo", "--exit", "--listen", "127.0.0.1:0"}, args...), &out, io.Discard)
		require.NoError(t, err)
		s := out.String()
		i := strings.Index(s, "Sextant demo:")
		require.GreaterOrEqual(t, i, 0, s)
		var keep []string
		for _, line := range strings.Split(s[i:], "\n") {
			for _, p := range []string{"Sextant demo:", "tasks ", "step attempts", "retries"} {
				if strings.HasPrefix(line, p) {
					keep = append(keep, strings.Join(strings.Fields(line), " "))
				}
			}
		}
		return strings.Join(keep, "\n")
	}
	first := summary("--tasks", "30", "--fail-rate", "0.3", "--seed", "42")
	require.Contains(t, first, "seed 42")
	require.Regexp(t, `tasks submitted 30 completed \d+ failed \d+ cancelled 0`, first)
	require.Regexp(t, `retries [1-9]\d* max retries reached \d+`, first)
	require.Equal(t, first, summary("--tasks", "30", "--fail-rate", "0.3", "--seed", "42"))

	diamond := summary("--tasks", "5", "--workflow", "diamond_pattern")
	require.Contains(t, diamond, "tasks submitted 5 completed 5 failed 0 cancelled 0")
	require.Contains(t, diamond, "step attempts 20 succeeded 20 failed 0")
	require.Regexp(t, `Sextant demo: 5 × diamond_pattern, fail rate 0, seed [1-9]\d*,`, diamond)
}

// promtoolCheck runs `promtool check metrics` on an exposition; lint findings
// about the seeds' millisecond units are expected, anything else fails.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool not found: install Debian's prometheus package (apt-get install prometheus)")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 { // lint findings only
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			require.Contains(t, line, `use base unit "seconds" instead of "milliseconds"`, "unexpected promtool finding")
		}
		return
	}
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		wantErr []string // FILE:LINE:COL: path fragments
	}{
		{name: "valid", file: "testdata/only_bus.yaml"},
		{name: "unknown key", file: "testdata/unknown_key.yaml", wantErr: []string{"testdata/unknown_key.yaml:3:3: bus.batch_sise"}},
		{name: "wrong type", file: "testdata/wrong_type.yaml", wantErr: []string{"testdata/wrong_type.yaml:2:15: bus.batch_size"}},
		{name: "unknown event", file: "testdata/unknown_event.yaml", wantErr: []string{"testdata/unknown_event.yaml:3:14: router.routes[0].match", `unknown event "task.exploded"`}},
		{name: "unknown field", file: "testdata/unknown_field.yaml", wantErr: []string{"testdata/unknown_field.yaml:8:19: router.routes[0].metrics[0].labels.step", `has no field "step"`}},
		{name: "invalid yaml", file: "testdata/invalid.yaml", wantErr: []string{"testdata/invalid.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"check", "--config", tt.file}, &stdout, &stderr)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.Contains(t, stdout.String(), "OK")
				return
			}
			require.Error(t, err)
			require.Equal(t, 1, exitCode(err, io.Discard))
			for _, w := range tt.wantErr {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", "testdata/unknown_event.yaml", "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	require.ErrorContains(t, err, "testdata/unknown_event.yaml:3:14: router.routes[0].match")
	require.Empty(t, stdout.String(), "nothing started")
}

func TestConfigPrintRoundTrips(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"config", "print", "--config", "testdata/only_bus.yaml"}, &stdout, io.Discard))
	printed, err := config.Parse("printed.yaml", stdout.Bytes(), factories()...)
	require.NoError(t, err)
	loaded, err := config.Load("testdata/only_bus.yaml", factories()...)
	require.NoError(t, err)
	require.Equal(t, loaded, printed)
	require.Equal(t, 1024, printed.Bus.BatchSize)
	def, err := config.Default(factories()...)
	require.NoError(t, err)
	require.Equal(t, def.Router, printed.Router, "a file holding only bus: keeps the default routes")
}

func TestConfigPrintRedactsThePassword(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pg.yaml")
	require.NoError(t, os.WriteFile(path, []byte("bus:\n  driver: postgres\n  postgres:\n    url: postgres://sextant:s3cret@db:5432/events\n"), 0o600))
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"config", "print", "--config", path}, &stdout, io.Discard))
	require.NotContains(t, stdout.String(), "s3cret")
	require.Contains(t, stdout.String(), "postgres://sextant:xxxxx@db:5432/events")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"unknown flag", []string{"run", "--nope"}, 2},
		{"check without config", []string{"check"}, 2},
		{"stray argument", []string{"demo", "extra"}, 2},
		{"bad log level", []string{"run", "--log-level", "loud", "--listen", "127.0.0.1:0"}, 2},
		{"bad fail rate", []string{"demo", "--fail-rate", "2", "--listen", "127.0.0.1:0"}, 2},
		{"negative tasks", []string{"demo", "--tasks", "-1", "--listen", "127.0.0.1:0"}, 2},
		{"too many tasks", []string{"demo", "--tasks", "100000000000000", "--listen", "127.0.0.1:0"}, 2},
		{"unknown workflow", []string{"demo", "--workflow", "nope", "--listen", "127.0.0.1:0"}, 2},
		{"negative interval", []string{"demo", "--interval", "-1s", "--listen", "127.0.0.1:0"}, 2},
		{"version", []string{"version"}, 0},
		{"help", []string{"help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			require.Equal(t, tt.code, exitCode(err, io.Discard), "err: %v", err)
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	bounds := []float64{1, 2, 4}
	tests := []struct {
		name   string
		q      float64
		counts []uint64
		want   float64
	}{
		{"middle of first bucket", 0.5, []uint64{10, 0, 0, 0}, 0.5},
		{"interpolates in second bucket", 0.75, []uint64{5, 5, 0, 0}, 1.5},
		{"rank in +Inf returns highest bound", 0.99, []uint64{1, 0, 0, 9}, 4},
		{"skips empty buckets", 0.5, []uint64{0, 0, 4, 0}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tt.want, histogramQuantile(tt.q, bounds, tt.counts), 1e-9)
		})
	}
	require.True(t, isNaN(histogramQuantile(0.5, bounds, []uint64{0, 0, 0, 0})))
}

func isNaN(f float64) bool { return f != f }

// TestPublishReachesTheRouter: events sent with `sextant publish` to a
// running instance are validated, published on its bus and routed.
func TestPublishReachesTheRouter(t *testing.T) {
	addr := startDemo(t, "--tasks", "0")
	var body strings.Builder
	for i := range 5 {
		fmt.Fprintf(&body, `{"name":"task.initialize_requested","correlation_id":"0199c3e0-ccdb-7581-87ab-3f67daeaa4a%d","attrs":{"task_uuid":"t%d","task_type":"external_job","namespace":"billing"}}`+"\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(path, []byte(body.String()), 0o644))
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"publish", "--url", "http://" + addr, path}, &stdout, io.Discard))
	require.Contains(t, stdout.String(), "published 5 events")

	// The bus flushes within its flush interval; the router then counts them.
	require.Eventually(t, func() bool {
		fams, _ := scrape(t, addr)
		f, ok := fams["tasker_tasks_requests_total"]
		return ok && len(f.GetMetric()) == 5
	}, 10*time.Second, 20*time.Millisecond)
	fams, _ := scrape(t, addr)
	require.Equal(t, 5.0, total(t, fams, "tasker_tasks_requests_total"))

	// A bad event is refused whole, with its index and what is wrong.
	resp, err := http.Post("http://"+addr+"/events", "application/json",
		strings.NewReader(`[{"name":"task.initialize_requested","correlation_id":"0199c3e0-ccdb-7581-87ab-3f67daeaa4a9","attrs":{"task_uuid":"t"}}]`))
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, string(msg), `events[0]: task.initialize_requested: missing required field \"task_type\"`)
}

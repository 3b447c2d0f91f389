package prometheus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// seedMetricsPath is the reference documents' metric table, copied into docs/.
const seedMetricsPath = "../../docs/seed-metrics.tsv"

const (
	acceptText        = "text/plain;version=0.0.4"
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
)

// newExporter builds an exporter for cfg and a MeterProvider reading from
// it, with a fixed resource so that target_info is stable. Both are shut
// down when the test ends.
func newExporter(t *testing.T, cfg *prometheus.Config) (*prometheus.Exporter, *sdkmetric.MeterProvider) {
	t.Helper()
	exp, err := prometheus.New(*cfg, exporters.Settings{})
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp.Reader()),
		sdkmetric.WithCardinalityLimit(0),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "sextant-test"))),
	)
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, exp.Shutdown(context.Background()))
	})
	return exp, mp
}

// recordSeed creates exactly two seed instruments (see
// docs/seed-metrics.tsv) and records a few values with their labels.
func recordSeed(t *testing.T, mp metric.MeterProvider) {
	t.Helper()
	ctx := context.Background()
	meter := mp.Meter("github.com/sextant-telemetry/sextant/router", metric.WithInstrumentationVersion("v0.1.0"))

	requests, err := meter.Int64Counter("tasker.tasks.requests.total",
		metric.WithDescription("Task requests received by the orchestrator."))
	require.NoError(t, err)
	requests.Add(ctx, 3, metric.WithAttributes(
		attribute.String("correlation_id", "c-1"),
		attribute.String("task_type", "import"),
		attribute.String("namespace", "default")))
	requests.Add(ctx, 1, metric.WithAttributes(
		attribute.String("correlation_id", "c-2"),
		attribute.String("task_type", "export"),
		attribute.String("namespace", "billing")))

	duration, err := meter.Float64Histogram("tasker.step.execution.duration",
		metric.WithUnit("ms"),
		metric.WithDescription("Time a worker spent executing one step."))
	require.NoError(t, err)
	ok := metric.WithAttributes(
		attribute.String("correlation_id", "c-1"),
		attribute.String("namespace", "default"),
		attribute.String("result", "success"))
	duration.Record(ctx, 12.5, ok)
	duration.Record(ctx, 4, ok)
	duration.Record(ctx, 730, metric.WithAttributes(
		attribute.String("correlation_id", "c-2"),
		attribute.String("namespace", "billing"),
		attribute.String("result", "error")))
}

// scrape serves one request from h and returns the response and its body.
func scrape(t *testing.T, h http.Handler, accept string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	return res, body
}

// goldenCases are the configurations whose seed scrape is pinned in
// testdata/<name>.golden.
func goldenCases() []struct {
	name string
	cfg  func(*prometheus.Config)
} {
	return []struct {
		name string
		cfg  func(*prometheus.Config)
	}{
		{name: "default", cfg: func(*prometheus.Config) {}},
		{name: "without_suffixes", cfg: func(c *prometheus.Config) {
			c.TranslationStrategy = prometheus.TranslationStrategyUnderscoreEscapingWithoutSuffixes
		}},
		{name: "scope_info", cfg: func(c *prometheus.Config) { c.ScopeInfo = true }},
		{name: "without_target_info", cfg: func(c *prometheus.Config) { c.TargetInfo = false }},
	}
}

// seedScrape returns the text exposition of the seed instruments under the
// default config changed by modify.
func seedScrape(t *testing.T, modify func(*prometheus.Config)) (*prometheus.Exporter, []byte) {
	t.Helper()
	cfg := prometheus.NewDefaultConfig()
	modify(cfg)
	exp, mp := newExporter(t, cfg)
	recordSeed(t, mp)
	res, body := scrape(t, exp, acceptText)
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	return exp, body
}

func TestNamingGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range goldenCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp, body := seedScrape(t, tt.cfg)

			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, body, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -run TestNamingGolden -update to create it")
			require.Equal(t, string(want), string(body), "scrape differs from %s; rerun with -update if intended", golden)
			require.NoError(t, testutil.GatherAndCompare(exp.Gatherer(), bytes.NewReader(want)))
		})
	}

	t.Run("default names", func(t *testing.T) {
		t.Parallel()
		_, body := seedScrape(t, func(*prometheus.Config) {})
		s := string(body)
		require.Contains(t, s, "\ntasker_tasks_requests_total{")
		require.NotContains(t, s, "_total_total")
		for _, suffix := range []string{"_bucket{", "_sum{", "_count{"} {
			require.Contains(t, s, "\ntasker_step_execution_duration_milliseconds"+suffix)
		}
		require.NotContains(t, s, "otel_scope_")
	})
}

// seedRow is one row of docs/seed-metrics.tsv.
type seedRow struct {
	line           int
	otelName       string
	prometheusName string
	typ            string
	unit           string
	labels         []string
}

// readSeedMetrics parses docs/seed-metrics.tsv, locating columns by the
// header's names.
func readSeedMetrics(t *testing.T) []seedRow {
	t.Helper()
	f, err := os.Open(seedMetricsPath)
	if errors.Is(err, os.ErrNotExist) {
		abs, _ := filepath.Abs(seedMetricsPath)
		t.Fatalf("seed metrics not found at %s: docs/seed-metrics.tsv is part of the repository", abs)
	}
	require.NoError(t, err)
	defer f.Close()

	var (
		rows []seedRow
		col  map[string]int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if col == nil {
			col = make(map[string]int, len(fields))
			for i, name := range fields {
				col[name] = i
			}
			for _, name := range []string{"otel_name", "prometheus_name", "type", "unit", "labels"} {
				_, ok := col[name]
				require.True(t, ok, "%s: header has no %q column", seedMetricsPath, name)
			}
			continue
		}
		require.Len(t, fields, len(col), "%s:%d: wrong number of columns", seedMetricsPath, n)
		r := seedRow{
			line:           n,
			otelName:       fields[col["otel_name"]],
			prometheusName: fields[col["prometheus_name"]],
			typ:            fields[col["type"]],
			unit:           fields[col["unit"]],
		}
		if l := fields[col["labels"]]; l != "" && !strings.HasPrefix(l, "open") && !strings.HasPrefix(l, "(none)") {
			r.labels = strings.Split(l, ",")
		}
		rows = append(rows, r)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows, "%s has no rows", seedMetricsPath)
	return rows
}

// TestSeedMetricNames checks that every tasker.* instrument in the seed
// list, instrumented as the list says, scrapes under its Prometheus name
// with its type and exactly its labels.
func TestSeedMetricNames(t *testing.T) {
	t.Parallel()
	wantType := map[string]dto.MetricType{
		"counter":   dto.MetricType_COUNTER,
		"histogram": dto.MetricType_HISTOGRAM,
		"gauge":     dto.MetricType_GAUGE,
	}
	var tested int
	for _, row := range readSeedMetrics(t) {
		typ, ok := wantType[row.typ]
		if !strings.HasPrefix(row.otelName, "tasker.") || !ok {
			continue
		}
		tested++
		t.Run(row.otelName, func(t *testing.T) {
			t.Parallel()
			exp, mp := newExporter(t, prometheus.NewDefaultConfig())
			ctx := context.Background()
			meter := mp.Meter("seed")
			kvs := make([]attribute.KeyValue, len(row.labels))
			for i, l := range row.labels {
				kvs[i] = attribute.String(l, "v")
			}
			attrs := metric.WithAttributes(kvs...)

			switch row.typ {
			case "counter":
				c, err := meter.Int64Counter(row.otelName)
				require.NoError(t, err)
				c.Add(ctx, 1, attrs)
			case "histogram":
				var opts []metric.Float64HistogramOption
				if strings.HasPrefix(row.unit, "ms") {
					opts = append(opts, metric.WithUnit("ms"))
				}
				h, err := meter.Float64Histogram(row.otelName, opts...)
				require.NoError(t, err)
				h.Record(ctx, 1, attrs)
			case "gauge":
				g, err := meter.Int64Gauge(row.otelName)
				require.NoError(t, err)
				g.Record(ctx, 1, attrs)
			}

			families, err := exp.Gatherer().Gather()
			require.NoError(t, err)
			var names []string
			for _, mf := range families {
				names = append(names, mf.GetName())
				if mf.GetName() != row.prometheusName {
					continue
				}
				require.Equal(t, typ, mf.GetType(), "line %d: %s", row.line, row.prometheusName)
				require.Len(t, mf.GetMetric(), 1)
				var got []string
				for _, lp := range mf.GetMetric()[0].GetLabel() {
					got = append(got, lp.GetName())
				}
				require.ElementsMatch(t, row.labels, got, "line %d: labels of %s", row.line, row.prometheusName)
				return
			}
			t.Fatalf("%s line %d: %s %q scraped as %v, want family %q",
				seedMetricsPath, row.line, row.typ, row.otelName, names, row.prometheusName)
		})
	}
	require.Positive(t, tested, "no tasker.* counter, histogram or gauge rows in %s", seedMetricsPath)
}

// acceptedLints are the promtool lint problems the seed names cause on
// purpose.
var acceptedLints = []string{
	`use base unit "seconds" instead of "milliseconds"`,
}

// TestPromtoolCheckMetrics lints every golden configuration's scrape with
// promtool. The lint problems in acceptedLints (exit code 3) are printed and
// accepted; any other problem or failure fails the test.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found: install Debian's prometheus package (apt-get install prometheus): %v", err)
	}
	for _, tt := range goldenCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, body := seedScrape(t, tt.cfg)
			path := filepath.Join(t.TempDir(), "scrape.prom")
			require.NoError(t, os.WriteFile(path, body, 0o600))
			in, err := os.Open(path)
			require.NoError(t, err)
			defer in.Close()

			// promtool check metrics reads the exposition from stdin.
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = in
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var exitErr *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &exitErr) && exitErr.ExitCode() == 3:
				// Exit code 3: lint problems only, one per line. The seed
				// list fixes milliseconds as the unit, so that one is
				// expected; any other is a regression.
				for line := range strings.Lines(strings.TrimSpace(stderr.String())) {
					line = strings.TrimSpace(line)
					require.True(t, slices.ContainsFunc(acceptedLints, func(s string) bool { return strings.HasSuffix(line, s) }),
						"promtool lint problem not accepted: %s", line)
					t.Logf("promtool lint warning (accepted): %s", line)
				}
			default:
				t.Fatalf("promtool check metrics: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
		})
	}
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	exp, mp := newExporter(t, prometheus.NewDefaultConfig())
	recordSeed(t, mp)
	srv := httptest.NewServer(exp)
	defer srv.Close()

	get := func(t *testing.T, accept string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(body)
	}

	tests := []struct {
		name            string
		accept          string
		wantContentType string
		wantContains    []string
	}{
		{
			name:            "no accept header",
			wantContentType: "text/plain; version=0.0.4",
			wantContains:    []string{"# TYPE tasker_tasks_requests_total counter\n", "tasker_step_execution_duration_milliseconds_bucket{"},
		},
		{
			name:            "text",
			accept:          acceptText,
			wantContentType: "text/plain; version=0.0.4",
			wantContains:    []string{"# TYPE tasker_tasks_requests_total counter\n", "tasker_step_execution_duration_milliseconds_bucket{"},
		},
		{
			name:            "openmetrics",
			accept:          acceptOpenMetrics,
			wantContentType: "application/openmetrics-text; version=1.0.0",
			wantContains: []string{
				"# TYPE tasker_tasks_requests counter\n",
				"\ntasker_tasks_requests_total{",
				"# TYPE tasker_step_execution_duration_milliseconds histogram\n",
				"\n# EOF\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, tt.accept)
			require.Equal(t, http.StatusOK, res.StatusCode, body)
			require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), tt.wantContentType),
				"Content-Type %q, want prefix %q", res.Header.Get("Content-Type"), tt.wantContentType)
			for _, s := range tt.wantContains {
				require.Contains(t, body, s)
			}
		})
	}

	require.NoError(t, exp.Shutdown(context.Background()))
	for _, tt := range tests {
		t.Run(tt.name+" after shutdown", func(t *testing.T) {
			res, body := get(t, tt.accept)
			require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
			require.Equal(t, exporters.ErrShutdown.Error()+"\n", body)
		})
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, exp *prometheus.Exporter)
	}{
		{name: "before the reader is registered", run: func(t *testing.T, exp *prometheus.Exporter) {
			require.NoError(t, exp.Shutdown(ctx))
			require.NoError(t, exp.Shutdown(ctx))
		}},
		{name: "twice after use", run: func(t *testing.T, exp *prometheus.Exporter) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp.Reader()))
			recordSeed(t, mp)
			require.NoError(t, exp.Shutdown(ctx))
			require.NoError(t, exp.Shutdown(ctx))
			require.NoError(t, mp.Shutdown(ctx))
		}},
		{name: "after the MeterProvider shut the reader down", run: func(t *testing.T, exp *prometheus.Exporter) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp.Reader()))
			recordSeed(t, mp)
			require.NoError(t, mp.Shutdown(ctx))
			require.NoError(t, exp.Shutdown(ctx))
		}},
		{name: "with a cancelled context", run: func(t *testing.T, exp *prometheus.Exporter) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			require.NotPanics(t, func() { _ = exp.Shutdown(cctx) })
			require.NoError(t, exp.Shutdown(ctx))
		}},
		{name: "concurrently", run: func(t *testing.T, exp *prometheus.Exporter) {
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = exp.Shutdown(ctx) })
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp, err := prometheus.New(*prometheus.NewDefaultConfig(), exporters.Settings{})
			require.NoError(t, err)
			tt.run(t, exp)

			res, _ := scrape(t, exp, acceptText)
			require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
			families, err := exp.Gatherer().Gather()
			require.NoError(t, err)
			require.Empty(t, families)
			require.NotNil(t, exp.Reader())
		})
	}
}

// TestExporterConcurrentSafe scrapes, records and shuts down at once; run
// it with -race -count=100.
func TestExporterConcurrentSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp, mp := newExporter(t, prometheus.NewDefaultConfig())
	counter, err := mp.Meter("race").Int64Counter("race.events")
	require.NoError(t, err)

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				counter.Add(ctx, 1, metric.WithAttributes(attribute.Int("worker", i)))
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				rec := httptest.NewRecorder()
				exp.ServeHTTP(rec, req)
				code := rec.Result().StatusCode
				if code != http.StatusOK && code != http.StatusServiceUnavailable {
					panic(fmt.Sprintf("scrape %d: status %d", j, code))
				}
				_, _ = exp.Gatherer().Gather()
			}
		})
	}
	wg.Go(func() { _ = exp.Shutdown(ctx) })
	wg.Wait()
	require.NoError(t, exp.Shutdown(ctx))
	res, _ := scrape(t, exp, "")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

// TestServeHTTPContinueOnError checks that a metric the exporter cannot
// translate is logged and left out while the rest of the scrape is served.
func TestServeHTTPContinueOnError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	set := exporters.Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	exp, err := prometheus.New(*prometheus.NewDefaultConfig(), set)
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp.Reader()))
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, exp.Shutdown(context.Background()))
	})
	recordSeed(t, mp)

	// A counter "conflict" and a gauge "conflict_total" both translate to
	// the family conflict_total, with different types: one is dropped.
	ctx := context.Background()
	meter := mp.Meter("conflict")
	c, err := meter.Int64Counter("conflict")
	require.NoError(t, err)
	c.Add(ctx, 1)
	g, err := meter.Int64Gauge("conflict_total")
	require.NoError(t, err)
	g.Record(ctx, 1)

	res, body := scrape(t, exp, acceptText)
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	require.Contains(t, string(body), "\ntasker_tasks_requests_total{")
	require.Equal(t, 1, strings.Count(string(body), "# TYPE conflict_total "), string(body))
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "exporter=prometheus")
	require.Contains(t, logs.String(), "error gathering metrics")
}

package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/internal/otlptest"
)

// demoWithTraces runs `sextant demo ARGS` with the spans sent to an
// in-process OTLP receiver, until its tasks are done, and returns the HTTP
// address and a stop function that interrupts the demo and waits for it to
// exit.
func demoWithTraces(t *testing.T, endpoint string, args ...string) (string, func()) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "traces.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("traces:\n  exporter: otlp\n  otlp: {endpoint: \""+endpoint+"\"}\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"demo", "--config", cfg, "--listen", "127.0.0.1:0"}, args...), pw, stderr)
		_ = pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Metrics: http://([^/]+)/metrics`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			require.NoError(t, err, "stderr:\n%s", stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("demo did not stop within 30s of the interrupt")
		}
	}
	t.Cleanup(stop)
	select {
	case a := <-addr:
		return a, stop
	case err := <-errc:
		stopped = true
		t.Fatalf("demo exited early: %v\nstderr:\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not finish its tasks in 60s")
	}
	return "", stop
}

// TestTracesReachAnOTLPReceiver runs the demo with failures and retries
// against a real OTLP gRPC receiver and checks the whole tree of every
// task: one root per task whose trace id is the task's correlation id, the
// phases under it, the steps under the orchestration, claim, execute,
// submit and result processing under each step, with names, attributes and
// statuses. Every span is checked right after the demo exits: shutdown
// flushes them all before it returns.
func TestTracesReachAnOTLPReceiver(t *testing.T) {
	t.Parallel()
	recv := otlptest.NewGRPCReceiver(t)
	const tasks = 30
	addr, stop := demoWithTraces(t, "http://"+recv.Endpoint(), "--tasks", "30", "--fail-rate", "0.15", "--seed", "11")

	// The correlation ids the metrics carry, and the exemplars OpenMetrics shows.
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/openmetrics-text")
	cids := map[string]bool{}
	for _, m := range regexp.MustCompile(`tasker_tasks_requests_total\{[^}]*correlation_id="([0-9a-f-]{36})"`).FindAllStringSubmatch(string(body), -1) {
		id, err := events.ParseID(m[1])
		require.NoError(t, err)
		cids[hex.EncodeToString(id[:])] = true
	}
	require.Len(t, cids, tasks)
	exemplars := regexp.MustCompile(`tasker_step_execution_duration_milliseconds_bucket\{[^}]*\} \d+ # \{[^}]*trace_id="([0-9a-f]{32})"`).FindAllStringSubmatch(string(body), -1)
	require.NotEmpty(t, exemplars, "histogram buckets carry exemplars in OpenMetrics")
	for _, m := range exemplars {
		require.True(t, cids[m[1]], "exemplar trace id %s is a task's correlation id", m[1])
	}

	stop()
	spans := recv.Spans()
	byTrace := map[string][]otlptest.Span{}
	for _, s := range spans {
		byTrace[s.TraceID()] = append(byTrace[s.TraceID()], s)
		require.Equal(t, "sextant", s.Resource["service.name"])
		require.NotContains(t, s.Attrs(), "sextant.span.end_reason", "span %s ended by its own end event, not by %v", s.GetName(), s.Attrs()["sextant.span.end_reason"])
	}
	require.Len(t, byTrace, tasks, "one trace per task")
	failed := 0
	for tid, ss := range byTrace {
		require.True(t, cids[tid], "trace id %s is a correlation id", tid)
		byID := map[string]otlptest.Span{}
		kids := map[string][]otlptest.Span{}
		var roots []otlptest.Span
		for _, s := range ss {
			byID[s.SpanID()] = s
			if s.ParentSpanID() == "" {
				roots = append(roots, s)
			} else {
				kids[s.ParentSpanID()] = append(kids[s.ParentSpanID()], s)
			}
		}
		require.Len(t, roots, 1, "trace %s has one root", tid)
		root := roots[0]
		require.Equal(t, "task_execution", root.GetName())
		require.Equal(t, "mathematical_sequence", root.Attrs()["task_type"])
		require.Equal(t, "rust_e2e_linear", root.Attrs()["namespace"])
		for _, s := range ss {
			if s.ParentSpanID() != "" {
				require.Contains(t, byID, s.ParentSpanID(), "span %s's parent is in its trace", s.GetName())
			}
			require.GreaterOrEqual(t, s.GetEndTimeUnixNano(), s.GetStartTimeUnixNano())
		}
		phases := names(kids[root.SpanID()])
		require.ElementsMatch(t, []string{"task_initialization", "workflow_orchestration", "task_finalization"}, phases)
		var orch otlptest.Span
		for _, k := range kids[root.SpanID()] {
			if k.GetName() == "workflow_orchestration" {
				orch = k
			}
		}
		okSteps := map[string]bool{}
		stepSpans := 0
		for _, k := range kids[orch.SpanID()] {
			switch k.GetName() {
			case "find_viable_steps":
			case "step_execution":
				stepSpans++
				require.ElementsMatch(t, []string{"step_claim", "step_execute", "step_submit", "step_result_processing"}, names(kids[k.SpanID()]))
				name, _ := k.Attrs()["step_name"].(string)
				require.NotEmpty(t, name)
				if k.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_OK {
					okSteps[name] = true
				}
			default:
				t.Fatalf("unexpected span %q under workflow_orchestration", k.GetName())
			}
		}
		switch root.GetStatus().GetCode() {
		case tracepb.Status_STATUS_CODE_OK:
			require.Len(t, okSteps, 4, "a completed task succeeded in each of its 4 steps")
			require.GreaterOrEqual(t, stepSpans, 4)
		case tracepb.Status_STATUS_CODE_ERROR:
			failed++
			require.NotEmpty(t, root.GetStatus().GetMessage())
		default:
			t.Fatalf("task span status %v", root.GetStatus())
		}
	}
	t.Logf("%d spans in %d traces, %d failed tasks", len(spans), len(byTrace), failed)
}

func names(ss []otlptest.Span) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.GetName()
	}
	return out
}

// TestTracesFollowOTelEnvironment drives the trace export with the standard
// OpenTelemetry variables alone, and checks their precedence: the flag over
// the environment, the environment's sampler when the configuration sets
// none.
func TestTracesFollowOTelEnvironment(t *testing.T) {
	recv := otlptest.NewHTTPReceiver(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
	t.Setenv("OTEL_SERVICE_NAME", "billing-router")
	demo := func(t *testing.T, args ...string) string {
		t.Helper()
		var stdout, stderr lockedBuffer
		err := run(context.Background(), append([]string{"demo", "--tasks", "3", "--exit", "--listen", "127.0.0.1:0", "--log-level", "info"}, args...), &stdout, &stderr)
		require.NoError(t, err, "stderr:\n%s", stderr.String())
		return stderr.String()
	}
	t.Run("environment", func(t *testing.T) {
		recv.Reset()
		logs := demo(t)
		spans := recv.Spans()
		require.NotEmpty(t, spans)
		for _, s := range spans {
			require.Equal(t, "billing-router", s.Resource["service.name"])
		}
		require.Equal(t, []string{"acme"}, recv.Headers()["x-tenant"])
		require.Contains(t, logs, `"opentelemetry_enabled":true`, "the start-up line says traces are on")
	})
	t.Run("flag wins", func(t *testing.T) {
		recv.Reset()
		logs := demo(t, "--traces", "none")
		require.Empty(t, recv.Spans())
		require.Contains(t, logs, `"opentelemetry_enabled":false`)
	})
	t.Run("sampler", func(t *testing.T) {
		recv.Reset()
		t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0")
		demo(t)
		require.Empty(t, recv.Spans(), "ratio 0 keeps no trace")
	})
	t.Run("bad flag", func(t *testing.T) {
		var stdout, stderr lockedBuffer
		err := run(context.Background(), []string{"demo", "--tasks", "1", "--exit", "--traces", "jaeger"}, &stdout, &stderr)
		require.Error(t, err)
		require.Contains(t, err.Error(), "--traces")
	})
}

// TestPrometheusStoresExemplars scrapes the demo, traces on, with a real
// Prometheus that keeps exemplars: a latency bucket's exemplar names a
// task's trace, whose id is a correlation id the metrics carry.
func TestPrometheusStoresExemplars(t *testing.T) {
	t.Parallel()
	addr := startDemo(t, "--tasks", "20", "--traces", "file:"+filepath.Join(t.TempDir(), "spans.jsonl"))
	base := startPrometheus(t, addr)
	var exemplars []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
			Value  string            `json:"value"`
		} `json:"exemplars"`
	}
	q := "tasker_step_execution_duration_milliseconds_bucket"
	require.Eventually(t, func() bool {
		end := time.Now()
		resp, err := http.Get(base + "/api/v1/query_exemplars?query=" + q + "&start=" +
			strconv.FormatInt(end.Add(-time.Hour).Unix(), 10) + "&end=" + strconv.FormatInt(end.Add(time.Minute).Unix(), 10))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Status string          `json:"status"`
			Data   json.RawMessage `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Status != "success" {
			return false
		}
		return json.Unmarshal(body.Data, &exemplars) == nil && len(exemplars) > 0
	}, 30*time.Second, 200*time.Millisecond, "Prometheus stored no exemplar for %s", q)
	res, err := promQuery(base, `count by (correlation_id) (tasker_tasks_requests_total)`)
	require.NoError(t, err)
	cids := map[string]bool{}
	for _, r := range res {
		id, err := events.ParseID(r.Metric["correlation_id"])
		require.NoError(t, err)
		cids[hex.EncodeToString(id[:])] = true
	}
	require.Len(t, cids, 20)
	for _, series := range exemplars {
		for _, x := range series.Exemplars {
			require.True(t, cids[x.Labels["trace_id"]], "exemplar trace_id %q is a task's correlation id", x.Labels["trace_id"])
			require.Len(t, x.Labels["span_id"], 16)
		}
	}
}

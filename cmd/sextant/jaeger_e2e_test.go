//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file is the end-to-end test against a real Jaeger all-in-one. It is
// built only with -tags e2e and is run by `make e2e`, which builds Jaeger
// into bin/jaeger from its own module in tools/jaeger and passes its path in
// SEXTANT_JAEGER. See docs/e2e-jaeger.md.

// jaegerConfig is the collector configuration Jaeger v1.76's `jaeger` binary
// (the OpenTelemetry Collector based all-in-one) runs with: in-memory
// storage, OTLP gRPC in, and the query service's HTTP API, each on a port the
// test chose. It has no batch processor, so an OTLP export returns only once
// its spans are stored; metrics telemetry is off so that nothing else binds
// a fixed port (the default would be 8888), and so is the query service's
// self-tracing (it would export to the default OTLP port).
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: %q
    grpc:
      endpoint: %q
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// jaegerFreeAddr reserves a loopback port for Jaeger to listen on.
func jaegerFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startJaeger runs the Jaeger binary named by SEXTANT_JAEGER until the test
// ends, waits until its query API answers, and returns its OTLP gRPC
// endpoint and the query API's base URL.
func startJaeger(t *testing.T) (otlpEndpoint, queryURL string) {
	t.Helper()
	bin := os.Getenv("SEXTANT_JAEGER")
	if bin == "" {
		t.Fatal("SEXTANT_JAEGER is not set: run `make e2e`, which builds bin/jaeger (Jaeger v1.76 all-in-one) and sets it")
	}
	_, err := os.Stat(bin)
	require.NoError(t, err, "SEXTANT_JAEGER=%s: run `make e2e`, which builds it", bin)

	dir := t.TempDir()
	otlpAddr, httpAddr, grpcAddr := jaegerFreeAddr(t), jaegerFreeAddr(t), jaegerFreeAddr(t)
	cfg := filepath.Join(dir, "jaeger.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, httpAddr, grpcAddr, otlpAddr), 0o600))
	logPath := filepath.Join(dir, "jaeger.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)

	// The context kills Jaeger when the test ends even if a cleanup is
	// skipped, and before the test binary's own timeout would panic and
	// leave it running.
	ctx := t.Context()
	if d, ok := t.Deadline(); ok && time.Until(d) > time.Minute {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		t.Cleanup(cancel)
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("jaeger log:\n%s", b)
		}
	})

	queryURL = "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(queryURL + "/api/services")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return otlpAddr, queryURL
			}
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			b, _ := os.ReadFile(logPath)
			t.Fatalf("jaeger exited before its query API answered: %v\n%s", err, b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger's query API at %s did not answer within 60s (last error: %v)", queryURL, err)
		}
	}
}

// jaegerGet decodes the "data" member of a Jaeger v1 query API answer.
func jaegerGet(base, path string, data any) error {
	resp, err := http.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	body := struct {
		Data   any `json:"data"`
		Errors []struct {
			Msg string `json:"msg"`
		} `json:"errors"`
	}{Data: data}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(body.Errors) > 0 {
		return fmt.Errorf("GET %s: %s", path, body.Errors[0].Msg)
	}
	return nil
}

// jaegerTrace is one trace of the v1 query API (/api/traces).
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
	// Processes maps a span's processID to the process that emitted it.
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// jaegerSpan is one span of a jaegerTrace.
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
}

// parent is the span's CHILD_OF parent id, "" for a root.
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// uuidV7TraceID is a 32-hex trace id whose bytes are a UUIDv7: version 7,
// RFC 9562 variant. The demo's trace ids are its tasks' correlation ids.
var uuidV7TraceID = regexp.MustCompile(`^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$`)

// TestJaegerReceivesDemoTraces runs the demo with failures and retries,
// sending its spans over OTLP gRPC to a real Jaeger all-in-one, and checks
// what Jaeger's query API then serves, as the reference documents'
// validate_jaeger_traces.sh does: the service, its operations, and every
// trace's shape.
func TestJaegerReceivesDemoTraces(t *testing.T) {
	otlpAddr, base := startJaeger(t)

	const tasks = 10
	cfg := filepath.Join(t.TempDir(), "sextant.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("traces:\n  exporter: otlp\n  otlp: {endpoint: \"http://"+otlpAddr+"\"}\n"), 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var stdout, stderr lockedBuffer
	err := run(ctx, []string{"demo", "--tasks", fmt.Sprint(tasks), "--exit", "--config", cfg,
		"--listen", "127.0.0.1:0", "--fail-rate", "0.1", "--seed", "3"}, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())

	// The demo flushed every span before it returned; Jaeger stores them
	// as it answers each export, so the wait is only a safety net.
	var traces []jaegerTrace
	var lastErr error
	deadline := time.Now().Add(60 * time.Second)
	for {
		traces = nil
		lastErr = jaegerGet(base, "/api/traces?service=sextant&limit=100", &traces)
		if lastErr == nil && len(traces) >= tasks {
			break
		}
		require.False(t, time.Now().After(deadline),
			"Jaeger did not serve %d traces of service sextant within 60s: got %d, last error %v\ndemo stdout:\n%s\ndemo stderr:\n%s",
			tasks, len(traces), lastErr, stdout.String(), stderr.String())
		time.Sleep(250 * time.Millisecond)
	}
	require.Len(t, traces, tasks, "one trace per task")

	var services []string
	require.NoError(t, jaegerGet(base, "/api/services", &services))
	require.Contains(t, services, "sextant")

	var operations []string
	require.NoError(t, jaegerGet(base, "/api/services/sextant/operations", &operations))
	for _, op := range []string{"task_execution", "workflow_orchestration", "step_execution", "step_claim", "step_execute", "step_submit"} {
		require.Contains(t, operations, op, "operations of service sextant")
	}

	spans := 0
	for _, tr := range traces {
		require.Regexp(t, uuidV7TraceID, tr.TraceID, "trace id is a UUIDv7 correlation id")
		require.NotEmpty(t, tr.Spans)
		spans += len(tr.Spans)
		byID := map[string]jaegerSpan{}
		for _, s := range tr.Spans {
			byID[s.SpanID] = s
		}
		var roots, orchestrations []jaegerSpan
		kids := map[string][]string{}
		for _, s := range tr.Spans {
			require.Equal(t, tr.TraceID, s.TraceID, "span %s is in its trace", s.OperationName)
			require.Equal(t, "sextant", tr.Processes[s.ProcessID].ServiceName, "span %s's service", s.OperationName)
			p := s.parent()
			if p == "" {
				roots = append(roots, s)
				continue
			}
			require.Contains(t, byID, p, "trace %s: span %s's parent is in the trace", tr.TraceID, s.OperationName)
			kids[p] = append(kids[p], s.OperationName)
			if s.OperationName == "workflow_orchestration" {
				orchestrations = append(orchestrations, s)
			}
		}
		require.Len(t, roots, 1, "trace %s has exactly one root span", tr.TraceID)
		require.Equal(t, "task_execution", roots[0].OperationName, "trace %s's root", tr.TraceID)
		require.Len(t, orchestrations, 1, "trace %s has one workflow_orchestration span", tr.TraceID)
		orch := orchestrations[0]
		require.Equal(t, roots[0].SpanID, orch.parent(), "trace %s: workflow_orchestration is under task_execution", tr.TraceID)
		steps := 0
		for _, s := range tr.Spans {
			if s.OperationName != "step_execution" {
				continue
			}
			steps++
			require.Equal(t, orch.SpanID, s.parent(), "trace %s: step_execution %s's parent is workflow_orchestration", tr.TraceID, s.SpanID)
			got := slices.Sorted(slices.Values(kids[s.SpanID]))
			require.Equal(t, []string{"step_claim", "step_execute", "step_result_processing", "step_submit"}, got,
				"trace %s: the phases of step_execution %s", tr.TraceID, s.SpanID)
		}
		require.NotZero(t, steps, "trace %s has step_execution spans", tr.TraceID)
	}
	t.Logf("Jaeger served %d spans in %d traces; operations %v", spans, len(traces), operations)
}

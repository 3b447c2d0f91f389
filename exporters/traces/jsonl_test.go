package traces_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/traces"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenSpans covers every member of sextant.span/v1 and every attribute
// type, with fixed ids and times.
func goldenSpans() []sdktrace.ReadOnlySpan {
	tid := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled})
	child := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled})
	other := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xff, 1}, SpanID: trace.SpanID{0xee, 2}})
	start := time.Date(2026, 11, 25, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	res := resource.NewSchemaless(attribute.String("service.name", "sextant"), attribute.Int("process.pid", 42))
	scope := instrumentation.Scope{Name: "github.com/sextant-telemetry/sextant/router", Version: "v0.3.0"}
	return tracetest.SpanStubs{
		{
			Name:        "pipeline.run",
			SpanContext: root,
			SpanKind:    trace.SpanKindServer,
			StartTime:   start,
			EndTime:     start.Add(2500 * time.Millisecond),
			Attributes: []attribute.KeyValue{
				attribute.String("component", "ingest <&>"),
				attribute.Bool("ok", true),
				attribute.Int64("count", 9007199254740993),
				attribute.Float64("ratio", 0.25),
				attribute.Float64("nan", math.NaN()),
				attribute.Float64("inf", math.Inf(1)),
				attribute.StringSlice("tags", []string{"a", "b"}),
				attribute.Int64Slice("ints", []int64{1, -2}),
				attribute.Float64Slice("floats", []float64{1.5, math.Inf(-1)}),
				attribute.BoolSlice("bools", []bool{true, false}),
				attribute.ByteSlice("bytes", []byte("hi")),
				attribute.Slice("mixed", attribute.StringValue("x"), attribute.Int64Value(1), attribute.Value{}),
				attribute.Map("nested", attribute.String("k", "v"), attribute.Map("deeper", attribute.Bool("b", false))),
				attribute.Map("empty_map"),
			},
			Status:               sdktrace.Status{Code: codes.Ok},
			Resource:             res,
			InstrumentationScope: scope,
		},
		{
			Name:        "stage.transform",
			SpanContext: child,
			Parent:      root,
			SpanKind:    trace.SpanKindUnspecified,
			StartTime:   start.Add(time.Millisecond),
			EndTime:     start.Add(1001*time.Millisecond + 500*time.Microsecond),
			Events: []sdktrace.Event{
				{Name: "retry", Time: start.Add(2 * time.Millisecond), Attributes: []attribute.KeyValue{attribute.Int("attempt", 2)}, DroppedAttributeCount: 1},
				{Name: "checkpoint", Time: start.Add(3 * time.Millisecond)},
			},
			Links: []sdktrace.Link{
				{SpanContext: other, Attributes: []attribute.KeyValue{attribute.String("link.kind", "follows")}},
				{SpanContext: other, DroppedAttributeCount: 2},
			},
			Status:               sdktrace.Status{Code: codes.Error, Description: "transform failed: \"bad\" row"},
			DroppedAttributes:    3,
			DroppedLinks:         1,
			Resource:             res,
			InstrumentationScope: scope,
		},
		{
			Name:                 "consume",
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled}),
			Parent:               child,
			SpanKind:             trace.SpanKindConsumer,
			StartTime:            start,
			EndTime:              start,
			Resource:             resource.Empty(),
			InstrumentationScope: instrumentation.Scope{Name: "bare"},
		},
	}.Snapshots()
}

func TestJSONExporterGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	exp := traces.NewJSONExporter(&buf)
	require.NoError(t, exp.ExportSpans(context.Background(), goldenSpans()))
	require.NoError(t, exp.Shutdown(context.Background()))

	golden := filepath.Join("testdata", "spans.golden.jsonl")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), buf.String())

	// Every line is a JSON object of the documented schema.
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	for _, line := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		require.Equal(t, traces.SchemaVersion, m["schema"])
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestJSONExporterOneWritePerBatch(t *testing.T) {
	t.Parallel()
	var w countingWriter
	exp := traces.NewJSONExporter(&w)
	require.NoError(t, exp.ExportSpans(context.Background(), goldenSpans()))
	require.NoError(t, exp.ExportSpans(context.Background(), nil))
	require.Equal(t, 1, w.writes)
	require.Equal(t, 3, strings.Count(w.String(), "\n"))
}

func TestJSONExporterAfterShutdown(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	exp := traces.NewJSONExporter(&buf)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, exp.Shutdown(context.Background()), "a second Shutdown is a no-op")
	err := exp.ExportSpans(context.Background(), goldenSpans())
	require.ErrorIs(t, err, exporters.ErrShutdown)
	require.Zero(t, buf.Len())
}

func TestFileExporterAppends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"existing\":true}\n"), 0o600))
	for range 2 {
		cfg := traces.DefaultConfig()
		cfg.Exporter, cfg.File = traces.ExporterTypeFile, path
		p, err := traces.New(context.Background(), cfg, traces.Settings{})
		require.NoError(t, err)
		require.Equal(t, "file "+path, p.Description())
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
		_, span := tp.Tracer("test").Start(context.Background(), "work")
		span.End()
		require.NoError(t, tp.Shutdown(context.Background()))
		require.Equal(t, int64(1), p.Stats().Exported)
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Len(t, lines, 3, "both runs appended to what was there")
	require.Equal(t, `{"existing":true}`, lines[0])
	for _, l := range lines[1:] {
		require.Contains(t, l, `"name":"work"`)
	}
}

func TestFileExporterCreatesWithMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.jsonl")
	cfg := traces.Config{Exporter: traces.ExporterTypeFile, File: path}
	p, err := traces.New(context.Background(), cfg, traces.Settings{})
	require.NoError(t, err)
	require.NoError(t, p.Shutdown(context.Background()))
	info, err := os.Stat(path)
	require.NoError(t, err)
	// The umask may only remove bits.
	require.Zero(t, info.Mode().Perm()&^0o644)
}

func TestFileExporterBadPath(t *testing.T) {
	t.Parallel()
	cfg := traces.Config{Exporter: traces.ExporterTypeFile, File: filepath.Join(t.TempDir(), "missing", "dir", "x.jsonl")}
	_, err := traces.New(context.Background(), cfg, traces.Settings{})
	require.ErrorContains(t, err, "traces: file: open ")
}

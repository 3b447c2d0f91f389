package traces_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/exporters/traces"
)

// fakeExporter is a SpanExporter made of function fields; nil ones succeed.
type fakeExporter struct {
	exportFn   func(ctx context.Context, spans []sdktrace.ReadOnlySpan) error
	shutdownFn func(ctx context.Context) error
}

var _ sdktrace.SpanExporter = (*fakeExporter)(nil)

func (f *fakeExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if f.exportFn == nil {
		return nil
	}
	return f.exportFn(ctx, spans)
}

func (f *fakeExporter) Shutdown(ctx context.Context) error {
	if f.shutdownFn == nil {
		return nil
	}
	return f.shutdownFn(ctx)
}

// gatedExporter blocks every export until release is closed or the export's
// context ends, and says on entered each time it starts one.
type gatedExporter struct {
	entered chan int // batch sizes
	release chan struct{}
	mu      sync.Mutex
	names   []string
}

func newGatedExporter() *gatedExporter {
	return &gatedExporter{entered: make(chan int, 1000), release: make(chan struct{})}
}

func (g *gatedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	g.entered <- len(spans)
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range spans {
		g.names = append(g.names, s.Name())
	}
	return nil
}

func (g *gatedExporter) Shutdown(context.Context) error { return nil }

func (g *gatedExporter) exported() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.names...)
}

// stub returns a finished span, sampled or not.
func stub(name string, sampled bool) sdktrace.ReadOnlySpan {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags})
	return tracetest.SpanStub{Name: name, SpanContext: sc}.Snapshot()
}

func newPipeline(t *testing.T, exp sdktrace.SpanExporter, cfg traces.Config, set traces.Settings) *traces.Pipeline {
	t.Helper()
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := traces.NewWithExporter(exp, cfg, set)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// safety bounds waits that should end much sooner; it is not an assertion
// about speed.
const safety = 30 * time.Second

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

func TestPipelineQueueFull(t *testing.T) {
	t.Parallel()
	g := newGatedExporter()
	p := newPipeline(t, g, traces.Config{QueueSize: 4, BatchSize: 1, BatchTimeout: time.Hour}, traces.Settings{})

	p.OnEnd(stub("in flight", true))
	<-g.entered // the worker holds span 0 in an export that cannot finish
	for i := range 7 {
		p.OnEnd(stub(fmt.Sprint("queued ", i), true))
	}
	st := p.Stats()
	require.Equal(t, int64(3), st.Dropped.QueueFull, "4 fit in the queue, 3 did not")
	require.Equal(t, int64(5), st.Queued)
	require.Zero(t, st.Exported)

	close(g.release)
	require.NoError(t, p.ForceFlush(waitCtx(t)))
	st = p.Stats()
	require.Equal(t, int64(5), st.Exported)
	require.Equal(t, int64(3), st.Dropped.Total())
	require.Zero(t, st.Queued)
	require.Equal(t, []string{"in flight", "queued 0", "queued 1", "queued 2", "queued 3"}, g.exported())
}

func TestPipelineForceFlushDeliversEverything(t *testing.T) {
	t.Parallel()
	mem := tracetest.NewInMemoryExporter()
	p := newPipeline(t, mem, traces.Config{QueueSize: 1000, BatchSize: 7, BatchTimeout: time.Hour}, traces.Settings{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tracer := tp.Tracer("test")
	var want []string
	for i := range 100 {
		_, span := tracer.Start(context.Background(), fmt.Sprint("span ", i))
		span.End()
		want = append(want, fmt.Sprint("span ", i))
	}
	require.NoError(t, tp.ForceFlush(waitCtx(t)))

	var got []string
	for _, s := range mem.GetSpans() {
		got = append(got, s.Name)
	}
	require.Equal(t, want, got, "every span, in order")
	st := p.Stats()
	require.Equal(t, traces.Stats{Exported: 100, Batches: 15}, st, "100 spans in batches of 7")
}

func TestPipelineSendsFullBatches(t *testing.T) {
	t.Parallel()
	sizes := make(chan int, 10)
	exp := &fakeExporter{exportFn: func(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
		sizes <- len(spans)
		return nil
	}}
	p := newPipeline(t, exp, traces.Config{QueueSize: 100, BatchSize: 4, BatchTimeout: time.Hour}, traces.Settings{})
	for range 9 {
		p.OnEnd(stub("s", true))
	}
	require.Equal(t, 4, <-sizes)
	require.Equal(t, 4, <-sizes)
	require.NoError(t, p.ForceFlush(waitCtx(t)))
	require.Equal(t, 1, <-sizes, "the remainder goes with the flush")
}

func TestPipelineSendsOnBatchTimeout(t *testing.T) {
	t.Parallel()
	sizes := make(chan int, 10)
	exp := &fakeExporter{exportFn: func(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
		sizes <- len(spans)
		return nil
	}}
	p := newPipeline(t, exp, traces.Config{BatchSize: 512, BatchTimeout: 10 * time.Millisecond}, traces.Settings{})
	for range 3 {
		p.OnEnd(stub("s", true))
	}
	total := 0
	for total < 3 {
		select {
		case n := <-sizes:
			total += n
		case <-time.After(safety):
			t.Fatal("the batch timeout never sent the partial batch")
		}
	}
	require.Equal(t, 3, total)
}

func TestPipelineIgnoresUnsampled(t *testing.T) {
	t.Parallel()
	mem := tracetest.NewInMemoryExporter()
	p := newPipeline(t, mem, traces.Config{}, traces.Settings{})
	p.OnEnd(stub("dropped by sampler", false))
	p.OnEnd(stub("kept", true))
	require.NoError(t, p.ForceFlush(waitCtx(t)))
	require.Len(t, mem.GetSpans(), 1)
	require.Equal(t, "kept", mem.GetSpans()[0].Name)
	require.Equal(t, traces.Stats{Exported: 1, Batches: 1}, p.Stats())
}

func TestPipelineShutdownOrder(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls []string
	)
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, s)
	}
	exp := &fakeExporter{
		exportFn: func(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
			record(fmt.Sprint("export ", len(spans)))
			return nil
		},
		shutdownFn: func(context.Context) error {
			record("shutdown")
			return nil
		},
	}
	p, err := traces.NewWithExporter(exp, traces.Config{QueueSize: 10, BatchSize: 2, BatchTimeout: time.Hour}, traces.Settings{})
	require.NoError(t, err)
	require.True(t, p.Enabled())
	require.Equal(t, "custom *traces_test.fakeExporter", p.Description())
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	for range 5 {
		_, span := tp.Tracer("test").Start(context.Background(), "s")
		span.End()
	}
	// Spans 1-4 went in two batches; the fifth waits in the batch.
	require.NoError(t, tp.Shutdown(waitCtx(t)))
	require.Equal(t, []string{"export 2", "export 2", "export 1", "shutdown"}, calls, "queued spans are exported before the exporter shuts down")

	p.OnEnd(stub("late", true))
	require.NoError(t, p.ForceFlush(context.Background()), "a no-op after Shutdown")
	require.NoError(t, p.Shutdown(context.Background()), "a no-op after Shutdown")
	require.Equal(t, traces.Stats{Exported: 5, Dropped: traces.Drops{Shutdown: 1}, Batches: 3}, p.Stats())
	require.Len(t, calls, 4, "the exporter is shut down once and not called again")
}

func TestPipelineShutdownOutOfTime(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 10)
	shutDown := make(chan struct{})
	exp := &fakeExporter{
		exportFn: func(ctx context.Context, _ []sdktrace.ReadOnlySpan) error {
			entered <- struct{}{}
			<-ctx.Done() // a collector that never answers
			return ctx.Err()
		},
		shutdownFn: func(context.Context) error {
			close(shutDown)
			return nil
		},
	}
	var logs bytes.Buffer
	p, err := traces.NewWithExporter(exp, traces.Config{QueueSize: 10, BatchSize: 1, BatchTimeout: time.Hour},
		traces.Settings{Logger: slogText(&logs)})
	require.NoError(t, err)
	for range 4 {
		p.OnEnd(stub("s", true))
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Shutdown(ctx) }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	<-shutDown // the exporter is still shut down, after the counting

	st := p.Stats()
	require.Equal(t, traces.Drops{ExportFailed: 1, Shutdown: 3}, st.Dropped, "the cancelled export failed; the queued spans were never sent")
	require.Zero(t, st.Queued)
	require.Contains(t, logs.String(), `msg="traces: spans dropped: shutdown ran out of time" dropped=3 reason=shutdown`)
}

func TestPipelineExportFailures(t *testing.T) {
	t.Parallel()
	boom := errors.New("collector said no")
	exp := &fakeExporter{exportFn: func(context.Context, []sdktrace.ReadOnlySpan) error { return boom }}
	var logs bytes.Buffer
	p := newPipeline(t, exp, traces.Config{BatchSize: 2, BatchTimeout: time.Hour}, traces.Settings{Logger: slogText(&logs)})
	before := time.Now()
	for range 5 {
		p.OnEnd(stub("s", true))
	}
	err := p.ForceFlush(waitCtx(t))
	require.ErrorIs(t, err, boom)
	st := p.Stats()
	require.Equal(t, traces.Drops{ExportFailed: 5}, st.Dropped)
	require.Equal(t, int64(3), st.Batches)
	require.Equal(t, int64(3), st.Failures)
	require.Equal(t, "collector said no", st.LastError)
	require.False(t, st.LastErrorAt.Before(before))
	// Three failures within 10 s: one warning now, the rest at Shutdown.
	require.Equal(t, 1, strings.Count(logs.String(), "export failed"), logs.String())
	require.Contains(t, logs.String(), `level=WARN msg="traces: spans dropped: export failed" dropped=2 reason=export_failed exporter="custom *traces_test.fakeExporter" error="collector said no"`)
	require.NoError(t, p.Shutdown(waitCtx(t)))
	require.Contains(t, logs.String(), `dropped=3 reason=export_failed`)
}

func TestPipelineForceFlushContext(t *testing.T) {
	t.Parallel()
	g := newGatedExporter()
	p := newPipeline(t, g, traces.Config{BatchSize: 1, BatchTimeout: time.Hour}, traces.Settings{})
	p.OnEnd(stub("a", true))
	<-g.entered
	p.OnEnd(stub("b", true))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.ForceFlush(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, int64(2), p.Stats().Queued, "an abandoned flush drops nothing")

	close(g.release)
	require.NoError(t, p.ForceFlush(waitCtx(t)))
	require.Equal(t, []string{"a", "b"}, g.exported())
}

func TestPipelineConcurrentSafe(t *testing.T) {
	t.Parallel()
	var received atomic.Int64
	exp := &fakeExporter{exportFn: func(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
		received.Add(int64(len(spans)))
		return nil
	}}
	p, err := traces.NewWithExporter(exp, traces.Config{QueueSize: 64, BatchSize: 8, BatchTimeout: time.Millisecond},
		traces.Settings{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	const workers, perWorker = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p.OnEnd(stub("s", true))
				if w == 0 && i%100 == 0 {
					_ = p.ForceFlush(context.Background())
				}
				_ = p.Stats()
			}
		})
	}
	// Shut down while the workers may still be ending spans.
	wg.Go(func() {
		for p.Stats().Exported == 0 {
			time.Sleep(time.Millisecond)
		}
		require.NoError(t, p.Shutdown(context.Background()))
	})
	wg.Wait()
	st := p.Stats()
	require.Zero(t, st.Queued)
	require.Equal(t, int64(workers*perWorker), st.Exported+st.Dropped.Total(), "every span is counted exactly once: %+v", st)
	require.Equal(t, st.Exported, received.Load())
	require.Zero(t, st.Dropped.ExportFailed)
}

func TestPipelineSelfMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	g := newGatedExporter()
	p := newPipeline(t, g, traces.Config{QueueSize: 2, BatchSize: 1, BatchTimeout: time.Hour}, traces.Settings{MeterProvider: mp})
	p.OnEnd(stub("a", true))
	<-g.entered
	for range 4 {
		p.OnEnd(stub("b", true))
	}

	got := collect(t, reader)
	require.Equal(t, map[string]int64{"": 0}, got[traces.MetricSpansExported])
	require.Equal(t, map[string]int64{"reason=queue_full": 2, "reason=export_failed": 0, "reason=shutdown": 0}, got[traces.MetricSpansDropped])
	require.Equal(t, map[string]int64{"": 3}, got[traces.MetricQueueLength])
	require.Equal(t, map[string]int64{"": 2}, got[traces.MetricQueueCapacity])

	close(g.release)
	require.NoError(t, p.ForceFlush(waitCtx(t)))
	got = collect(t, reader)
	require.Equal(t, map[string]int64{"": 3}, got[traces.MetricSpansExported])
	require.Equal(t, map[string]int64{"": 0}, got[traces.MetricQueueLength])
	require.Equal(t, map[string]int64{"result=ok": 3}, got[traces.MetricExportDuration], "one observation per export call")

	require.NoError(t, p.Shutdown(waitCtx(t)))
	got = collect(t, reader)
	require.NotContains(t, got, traces.MetricSpansExported, "observations stop at Shutdown")
}

// collect reads every metric of the pipeline's meter as name -> attributes
// -> value (the count, for histograms).
func collect(t *testing.T, r sdkmetric.Reader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, traces.MeterName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			vals := map[string]int64{}
			key := func(s attribute.Set) string {
				var parts []string
				for _, kv := range s.ToSlice() {
					parts = append(parts, string(kv.Key)+"="+kv.Value.String())
				}
				return strings.Join(parts, ",")
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				require.True(t, d.IsMonotonic)
				for _, dp := range d.DataPoints {
					vals[key(dp.Attributes)] = dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					vals[key(dp.Attributes)] = dp.Value
				}
			case metricdata.Histogram[float64]:
				require.Equal(t, "s", m.Unit)
				for _, dp := range d.DataPoints {
					vals[key(dp.Attributes)] = int64(dp.Count)
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = vals
		}
	}
	return out
}

func TestNewDisabled(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	for _, exporter := range []traces.ExporterType{"", traces.ExporterTypeNone} {
		t.Run(fmt.Sprintf("exporter %q", exporter), func(t *testing.T) {
			p, err := traces.New(context.Background(), traces.Config{Exporter: exporter}, traces.Settings{})
			require.NoError(t, err)
			require.False(t, p.Enabled())
			require.Equal(t, "none", p.Description())
			p.OnEnd(stub("s", true))
			require.NoError(t, p.ForceFlush(context.Background()))
			require.NoError(t, p.Shutdown(context.Background()))
			require.Equal(t, traces.Stats{}, p.Stats())
		})
	}
}

func TestNewInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := traces.New(context.Background(), traces.Config{Exporter: "zipkin", QueueSize: -1}, traces.Settings{})
	require.ErrorContains(t, err, "traces: invalid configuration: exporter: must be one of")
	require.ErrorContains(t, err, "queue_size: must be between")
	_, err = traces.NewWithExporter(tracetest.NewInMemoryExporter(), traces.Config{BatchSize: -1}, traces.Settings{})
	require.ErrorContains(t, err, "batch_size: must be positive")
}

func TestNewStdout(t *testing.T) {
	var out bytes.Buffer
	for _, tt := range []struct{ name, env string }{{name: "config"}, {name: "env console", env: "console"}} {
		t.Run(tt.name, func(t *testing.T) {
			out.Reset()
			cfg := traces.Config{Exporter: traces.ExporterTypeStdout}
			if tt.env != "" {
				t.Setenv("OTEL_TRACES_EXPORTER", tt.env)
				cfg.Exporter = ""
			}
			p, err := traces.New(context.Background(), cfg, traces.Settings{Stdout: &out})
			require.NoError(t, err)
			require.Equal(t, "stdout", p.Description())
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
			_, span := tp.Tracer("t").Start(context.Background(), "hello")
			span.End()
			require.NoError(t, tp.Shutdown(waitCtx(t)))
			require.Equal(t, 1, strings.Count(out.String(), "\n"))
			require.Contains(t, out.String(), `{"schema":"sextant.span/v1","trace_id":"`)
			require.Contains(t, out.String(), `"name":"hello","kind":"internal"`)
		})
	}
}

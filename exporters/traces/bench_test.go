package traces_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sextant-telemetry/sextant/exporters/traces"
	"github.com/sextant-telemetry/sextant/internal/otlptest"
)

// BenchmarkOnEnd is the cost the pipeline adds to every span's End.
func BenchmarkOnEnd(b *testing.B) {
	s := stub("s", true)
	quiet := traces.Settings{Logger: slog.New(slog.DiscardHandler)}
	b.Run("accepted", func(b *testing.B) {
		// Flushed (off the clock) before the queue can fill, so that every
		// span takes the enqueue path.
		const chunk = 1 << 15
		p, err := traces.NewWithExporter(&fakeExporter{}, traces.Config{QueueSize: 2 * chunk}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%chunk == chunk-1 {
				b.StopTimer()
				_ = p.ForceFlush(context.Background())
				b.StartTimer()
			}
			p.OnEnd(s)
		}
		b.StopTimer()
		_ = p.Shutdown(context.Background())
		if d := p.Stats().Dropped.Total(); d != 0 {
			b.Fatalf("%d spans dropped", d)
		}
	})
	b.Run("queue_full", func(b *testing.B) {
		g := newGatedExporter()
		p, err := traces.NewWithExporter(g, traces.Config{QueueSize: 1, BatchSize: 1}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		p.OnEnd(s)
		<-g.entered
		p.OnEnd(s)
		b.ReportAllocs()
		for b.Loop() {
			p.OnEnd(s)
		}
		b.StopTimer()
		close(g.release)
		_ = p.Shutdown(context.Background())
	})
	// parallel is OnEnd from every core at once, as fast as they can: the
	// single consumer cannot keep up, so most spans take the queue_full
	// path; dropped/op says how many.
	b.Run("parallel", func(b *testing.B) {
		p, err := traces.NewWithExporter(&fakeExporter{}, traces.Config{QueueSize: traces.MaxQueueSize}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.OnEnd(s)
			}
		})
		b.StopTimer()
		_ = p.Shutdown(context.Background())
		b.ReportMetric(float64(p.Stats().Dropped.Total())/float64(b.N), "dropped/op")
	})
}

// BenchmarkExportGRPC sends spans from a TracerProvider through the pipeline
// and the OTLP/gRPC exporter to an in-process receiver, flushing every
// chunk so that nothing is dropped, and reports spans per second.
func BenchmarkExportGRPC(b *testing.B) {
	r := otlptest.NewGRPCReceiver(b)
	cfg := traces.DefaultConfig()
	cfg.Exporter = traces.ExporterTypeOTLP
	cfg.QueueSize, cfg.BatchSize = 1<<16, 512
	cfg.OTLP.Endpoint = r.Endpoint()
	p, err := traces.New(context.Background(), cfg, traces.Settings{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tracer := tp.Tracer("bench")
	const chunk = 8192
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		_, span := tracer.Start(ctx, "span")
		span.End()
		if n++; n%chunk == 0 {
			if err := p.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
			r.Reset()
		}
	}
	if err := p.ForceFlush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "spans/s")
	if st := p.Stats(); st.Dropped.Total() != 0 || st.Exported != int64(n) {
		b.Fatalf("stats %+v after %d spans", st, n)
	}
	if err := tp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

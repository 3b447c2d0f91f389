package router_test

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters/traces"
	"github.com/sextant-telemetry/sextant/lifecycle"
	"github.com/sextant-telemetry/sextant/router"
)

// engineEvents runs the reference engine for tasks tasks (10% of step
// attempts fail, so some retry) and returns every event it published, in
// order: the stream a router sees in the demo.
func engineEvents(tb testing.TB, tasks int) []events.Event {
	tb.Helper()
	rec := &eventLog{}
	e, err := lifecycle.New(lifecycle.EngineConfig{Workers: 2, FailRate: 0.1}, lifecycle.Settings{Publisher: rec, Rand: rand.New(rand.NewPCG(7, 7))})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	for range tasks {
		if _, err := e.Submit(ctx, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := e.Wait(ctx); err != nil {
		tb.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil {
		tb.Fatal(err)
	}
	return rec.evs
}

type eventLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *eventLog) Publish(_ context.Context, e events.Event) error {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
	return nil
}

// discard is a span processor that drops every span: what remains is the
// router's own cost of making spans.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// BenchmarkRouteDefaultTraces routes the engine's event stream (200 tasks)
// through the embedded default, metrics only and with its span rules on:
// spans made and dropped at once (the router's span path alone), and spans
// through the export pipeline to JSON lines written to io.Discard.
func BenchmarkRouteDefaultTraces(b *testing.B) {
	cfg, err := config.Default(noExporters{})
	if err != nil {
		b.Fatal(err)
	}
	evs := engineEvents(b, 200)
	for _, bc := range []struct {
		name     string
		pipeline bool
		spans    sdktrace.SpanProcessor
	}{
		{name: "metrics_only"},
		{name: "traces_discarded", spans: discard{}},
		{name: "traces_jsonl", pipeline: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			set := router.Settings{SpanProcessor: bc.spans}
			var p *traces.Pipeline
			if bc.pipeline {
				tc := traces.DefaultConfig()
				tc.Exporter = traces.ExporterTypeStdout
				tc.QueueSize = 1 << 16
				if p, err = traces.New(context.Background(), tc, traces.Settings{Stdout: io.Discard}); err != nil {
					b.Fatal(err)
				}
				set.SpanProcessor = p
				b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			}
			r, _ := newTestRouter(b, cfg.Router, set)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r.Route(ctx, &evs[i%len(evs)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if p != nil {
				b.StopTimer()
				_ = p.ForceFlush(ctx)
				b.ReportMetric(float64(p.Stats().Dropped.Total()), "spans_dropped")
			}
		})
	}
}

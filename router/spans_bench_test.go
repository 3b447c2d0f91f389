package router_test

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
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
	tenth := 0.1
	for _, bc := range []struct {
		name     string
		pipeline bool
		spans    sdktrace.SpanProcessor
		ratio    *float64
	}{
		{name: "metrics_only"},
		{name: "traces_discarded", spans: discard{}},
		{name: "traces_sampled_10pct", spans: discard{}, ratio: &tenth},
		{name: "traces_jsonl", pipeline: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rc := cfg.Router
			rc.Traces.SampleRatio = bc.ratio
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
			r, _ := newTestRouter(b, rc, set)
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

// BenchmarkHandleDefaultTraces is BenchmarkRouteDefaultTraces through the
// bus path: batches of 512 encoded events decoded, checked against their
// schemas and routed, as the router consumes them.
func BenchmarkHandleDefaultTraces(b *testing.B) {
	cfg, err := config.Default(noExporters{})
	if err != nil {
		b.Fatal(err)
	}
	evs := engineEvents(b, 200)
	var batches [][]byte
	for i := 0; i < len(evs); i += 512 {
		batches = append(batches, events.EncodeBatch(evs[i:min(i+512, len(evs))]))
	}
	tenth := 0.1
	for _, bc := range []struct {
		name  string
		spans sdktrace.SpanProcessor
		ratio *float64
	}{
		{name: "metrics_only"},
		{name: "traces_discarded", spans: discard{}},
		{name: "traces_sampled_10pct", spans: discard{}, ratio: &tenth},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rc := cfg.Router
			rc.Traces.SampleRatio = bc.ratio
			r, _ := newTestRouter(b, rc, router.Settings{SpanProcessor: bc.spans})
			msgs := make([]*message.Message, len(batches))
			for i, p := range batches {
				msgs[i] = newMessage(p)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := r.HandleMessage(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(len(evs))/float64(len(batches))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

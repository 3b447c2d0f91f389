package router_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

// threeLabels is the benchmark rule of issue #2: one counter, three labels
// taken from event fields.
var threeLabels = router.Config{Routes: []router.Route{{Match: events.StepEnqueued, Metrics: []router.Metric{{
	Name: "bench.steps.enqueued", Type: router.MetricTypeCounter,
	Labels: map[string]string{"namespace": "namespace", "step_name": "step_name", "task_uuid": "task_uuid"},
}}}}}

func benchEvents(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.New(events.StepEnqueued, cid1,
			events.String("task_uuid", fmt.Sprint("task-", i%16)), events.String("step_uuid", "s"),
			events.String("namespace", "rust_e2e_linear"), events.String("step_name", fmt.Sprint("linear_step_", i%4)))
	}
	return evs
}

// BenchmarkRoute is the router hot path: one decoded event in, instruments recorded.
func BenchmarkRoute(b *testing.B) {
	r, _ := newTestRouter(b, threeLabels, router.Settings{})
	evs := benchEvents(64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Route(ctx, &evs[i&63])
	}
}

// BenchmarkDirect is the baseline: the same OTel counter called directly with
// a precomputed attribute set per series, as hand-written instrumentation would.
func BenchmarkDirect(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()), sdkmetric.WithCardinalityLimit(0))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c, err := mp.Meter("bench").Int64Counter("bench.steps.enqueued")
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(64)
	opts := make([]metric.AddOption, 64)
	for i, e := range evs {
		ns, _ := e.Attr("namespace")
		sn, _ := e.Attr("step_name")
		tu, _ := e.Attr("task_uuid")
		opts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("namespace", ns.Str()),
			attribute.String("step_name", sn.Str()), attribute.String("task_uuid", tu.Str())))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Add(ctx, 1, opts[i&63])
	}
}

// BenchmarkRouteParallel is the hot path from every core at once.
func BenchmarkRouteParallel(b *testing.B) {
	r, _ := newTestRouter(b, threeLabels, router.Settings{})
	evs := benchEvents(64)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			r.Route(ctx, &evs[i&63])
		}
	})
}

// BenchmarkEndToEnd publishes events through the batching publisher and the
// in-memory bus into the router; it reports events/s.
func BenchmarkEndToEnd(b *testing.B) {
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	b.Cleanup(func() { _ = mem.Close() }) // after the router's cleanup: cleanups run last-first
	cfg := bus.NewDefaultConfig()
	r, _ := newTestRouter(b, threeLabels, router.Settings{Source: router.Source{Subscriber: mem, Topics: []string{cfg.Topic}}})
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	pub, err := bus.NewPublisher(mem, cfg)
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := pub.Publish(ctx, evs[i&63]); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if got := r.Stats().Routed; got != uint64(b.N) {
		b.Fatalf("routed %d of %d events", got, b.N)
	}
}

// BenchmarkRouteDefaultMapping routes the events of one task (testdata/one_task)
// through the embedded default: 1–2 metrics per event, correlation_id labels,
// 100 tasks' worth of series.
func BenchmarkRouteDefaultMapping(b *testing.B) {
	cfg, err := config.Default(noExporters{})
	if err != nil {
		b.Fatal(err)
	}
	r, _ := newTestRouter(b, cfg.Router, router.Settings{})
	var evs []events.Event
	for _, e := range readEvents(b, "testdata/one_task/events.jsonl") {
		for task := range 100 {
			e.CorrelationID[15] = byte(task)
			e.Attrs = slices.Clone(e.Attrs)
			evs = append(evs, e)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Route(ctx, &evs[i%len(evs)])
	}
}

// BenchmarkRouteWhen is the hot path through a route filtered by when: one
// route whose filter passes, one whose filter fails.
func BenchmarkRouteWhen(b *testing.B) {
	cfg := router.Config{Routes: []router.Route{
		{Match: events.StepEnqueued, When: map[string]string{"namespace": "rust_e2e_linear", "step_name": "linear_step_1"}, Metrics: threeLabels.Routes[0].Metrics},
		{Match: events.StepEnqueued, When: map[string]string{"namespace": "other"}, Metrics: []router.Metric{{Name: "bench.other", Type: router.MetricTypeCounter}}},
	}}
	r, _ := newTestRouter(b, cfg, router.Settings{})
	evs := benchEvents(64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Route(ctx, &evs[i&63])
	}
}

// BenchmarkHandleMessage routes one bus message of 64 events, with and
// without subscribers: a router without any pays one atomic load per batch.
func BenchmarkHandleMessage(b *testing.B) {
	payload := events.EncodeBatch(benchEvents(64))
	nop := func(context.Context, *events.Event) error { return nil }
	for _, bc := range []struct {
		name string
		subs []router.Subscription
	}{
		{name: "no_subscribers"},
		{name: "subscriber_elsewhere", subs: []router.Subscription{{Name: "tasks", Groups: []string{events.GroupTask}, Handler: nop}}},
		{name: "one_subscriber", subs: []router.Subscription{{Name: "steps", Events: []string{"step.*"}, Handler: nop}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, _ := newTestRouter(b, threeLabels, router.Settings{})
			for _, s := range bc.subs {
				if _, err := r.Subscribe(s); err != nil {
					b.Fatal(err)
				}
			}
			msg := newMessage(payload)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := r.HandleMessage(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

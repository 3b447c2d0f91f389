package router_test

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

// A route maps step.completed events to a counter labelled by namespace.
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	r, err := router.New(router.Config{Routes: []router.Route{{
		Match: events.StepCompleted,
		Metrics: []router.Metric{{
			Name:   "tasker.steps.successes.total",
			Type:   router.MetricTypeCounter,
			Labels: map[string]string{"namespace": "namespace"},
		}},
	}}}, router.Settings{MeterProvider: mp})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(context.Background())

	e := events.New(events.StepCompleted, events.NewID(), events.String("namespace", "rust_e2e_linear"))
	r.Route(context.Background(), &e)
	r.Route(context.Background(), &e)

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "tasker.steps.successes.total" {
			ns, _ := sum.DataPoints[0].Attributes.Value("namespace")
			fmt.Println(m.Name, ns.AsString(), sum.DataPoints[0].Value)
		}
	}
	// Output: tasker.steps.successes.total rust_e2e_linear 2
}

// A subscriber counts failed steps by error type. Its handler runs on its
// own goroutine, isolated from routing and from other subscribers.
func ExampleRouter_Subscribe() {
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	defer mem.Close()
	cfg := bus.NewDefaultConfig()
	r, err := router.New(router.Config{Routes: []router.Route{{Match: "**", Metrics: []router.Metric{
		{Name: "events.total", Type: router.MetricTypeCounter},
	}}}}, router.Settings{MeterProvider: noop.NewMeterProvider(), Source: router.Source{Subscriber: mem, Topics: []string{cfg.Topic}}})
	if err != nil {
		fmt.Println(err)
		return
	}

	var mu sync.Mutex
	failures := map[string]int{}
	_, err = r.Subscribe(router.Subscription{
		Name:   "failed-steps",
		Events: []string{events.StepFailed},
		Handler: func(_ context.Context, e *events.Event) error {
			errType, _ := e.Attr("error_type")
			mu.Lock()
			defer mu.Unlock()
			failures[errType.Str()]++
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	pub, _ := bus.NewPublisher(mem, cfg)
	for _, errType := range []string{"timeout", "handler_error", "timeout"} {
		_ = pub.Publish(ctx, events.New(events.StepFailed, events.NewID(),
			events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", "billing"),
			events.String("step_name", "charge"), events.String("result", "error"),
			events.String("error_type", errType), events.Float("duration_ms", 12)))
	}
	_ = pub.Close(ctx)
	_ = r.Shutdown(ctx) // handles what subscribers have queued

	mu.Lock()
	defer mu.Unlock()
	fmt.Println(failures)
	// Output: map[handler_error:1 timeout:2]
}

// Subscribers reports each subscriber's counters, as /health/detailed shows them.
func ExampleRouter_Subscribers() {
	r, _ := router.New(router.Config{Routes: []router.Route{{Match: "**", Metrics: []router.Metric{
		{Name: "events.total", Type: router.MetricTypeCounter},
	}}}}, router.Settings{MeterProvider: noop.NewMeterProvider()})
	defer r.Shutdown(context.Background())
	unsubscribe, _ := r.Subscribe(router.Subscription{
		Name:    "audit",
		Groups:  []string{events.GroupTask},
		Handler: func(context.Context, *events.Event) error { return nil },
	})
	defer unsubscribe()
	for _, s := range r.Subscribers() {
		fmt.Println(s.Name, s.Groups, s.Dispatched, s.Dropped)
	}
	// Output: audit [task] 0 0
}

package router_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sextant-telemetry/sextant/events"
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

package exporters_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
)

// lines is a toy exporter: one line per series.
type lines struct{ name string }

func (l lines) Name() string      { return l.name }
func (l lines) Formats() []string { return []string{"lines"} }

func (l lines) Export(_ context.Context, s *exporters.Snapshot, _ exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	for _, f := range s.Families {
		for _, ser := range f.Series {
			if _, err := fmt.Fprintln(w, f.PromName, ser.Labels, ser.Value); err != nil {
				return exporters.ExportResult{}, err
			}
		}
	}
	return exporters.ExportResult{ContentType: "text/plain"}, nil
}

// broken is a plugin that always fails.
type broken struct{}

func (broken) Name() string      { return "plugin-a" }
func (broken) Formats() []string { return []string{"lines"} }
func (broken) Export(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
	return exporters.ExportResult{}, errors.New("boom")
}

// printer prints the events a registry publishes.
type printer struct{}

func (printer) Publish(_ context.Context, e events.Event) error {
	fmt.Print(e.Name)
	for _, a := range e.Attrs {
		if a.Key == "error_type" || a.Key == "plugin_name" || a.Key == "series_count" {
			fmt.Printf(" %s=%s", a.Key, a.Value)
		}
	}
	fmt.Println()
	return nil
}

func ExampleRegistry_Export() {
	reg := exporters.NewRegistry(exporters.RegistrySettings{Events: printer{}})
	// The plugin comes first in the chain, the built-in second: when the
	// plugin fails, the built-in writes the export.
	_ = reg.Register(broken{})
	_ = reg.RegisterBuiltin(lines{name: "lines"})

	snap := &exporters.Snapshot{Families: []exporters.Family{{
		PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
		Series: []exporters.Series{{Labels: []exporters.Label{{Name: "namespace", Value: "rust_e2e_linear"}}, Value: 3}},
	}}}
	res, err := reg.Export(context.Background(), snap, exporters.ExportRequest{Format: "lines"}, os.Stdout)
	fmt.Println(res.Exporter, err)

	_, err = reg.Export(context.Background(), snap, exporters.ExportRequest{Format: "xml"}, os.Stdout)
	fmt.Println(err)
	// Output:
	// plugin.registered plugin_name=plugin-a
	// telemetry.export_requested
	// tasker_tasks_requests_total [{namespace rust_e2e_linear}] 3
	// telemetry.export_completed series_count=1
	// lines <nil>
	// telemetry.export_requested
	// telemetry.export_failed error_type=unknown_format
	// unknown export format "xml": known formats are lines
}

func ExampleFilter_Apply() {
	snap := &exporters.Snapshot{Families: []exporters.Family{
		{PromName: "tasker_tasks_requests_total", Series: []exporters.Series{
			{Labels: []exporters.Label{{Name: "namespace", Value: "diamond"}, {Name: "result", Value: "ok"}}, Value: 1},
			{Labels: []exporters.Label{{Name: "namespace", Value: "rust_e2e_linear"}, {Name: "result", Value: "error"}}, Value: 2},
			{Labels: []exporters.Label{{Name: "namespace", Value: "rust_e2e_linear"}, {Name: "result", Value: "ok"}}, Value: 3},
		}},
		{PromName: "sextant_events_total", Series: []exporters.Series{{Value: 9}}},
	}}
	var f exporters.Filter
	f.Names = []string{"tasker_*"}
	for _, s := range []string{`namespace="rust_e2e_linear"`, `result!=error`} {
		m, err := exporters.ParseMatcher(s)
		if err != nil {
			fmt.Println(err)
			return
		}
		f.Matchers = append(f.Matchers, m)
	}
	for _, fam := range f.Apply(snap).Families {
		for _, s := range fam.Series {
			fmt.Println(fam.PromName, s.Labels, s.Value)
		}
	}
	// Output:
	// tasker_tasks_requests_total [{namespace rust_e2e_linear} {result ok}] 3
}

func ExampleParseMatcher() {
	m, err := exporters.ParseMatcher(`step_name=~linear_.*`)
	fmt.Printf("%q %q %q %v\n", m.Name, m.Op, m.Value, err)
	fmt.Println(m)
	_, err = exporters.ParseMatcher(`step_name=~"linear_("`)
	fmt.Println(errors.Is(err, exporters.ErrInvalidMatcher))
	// Output:
	// "step_name" "=~" "linear_.*" <nil>
	// step_name=~"linear_.*"
	// true
}

func ExampleRead() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "sextant"))),
	)
	defer func() { _ = mp.Shutdown(context.Background()) }()
	meter := mp.Meter("example")
	duration, _ := meter.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"),
		metric.WithExplicitBucketBoundaries(10, 100))
	duration.Record(context.Background(), 42, metric.WithAttributes(attribute.String("step.name", "linear_1")))
	requests, _ := meter.Int64Counter("tasker.tasks.requests")
	requests.Add(context.Background(), 3)

	snap, err := exporters.Read(context.Background(), reader, exporters.ReadOptions{
		Instance: "host-1:4242", // the caller's default: host name and pid
		Now:      func() time.Time { return time.Unix(0, 0) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(snap.Resource.ServiceName, snap.Resource.Instance)
	for _, f := range snap.Families {
		for _, s := range f.Series {
			if h := s.Histogram; h != nil {
				for _, b := range h.Buckets {
					fmt.Printf("%s%v le=%v %d\n", f.PromName, s.Labels, b.UpperBound, b.Count)
				}
				continue
			}
			fmt.Println(f.PromName, f.Type, s.Value)
		}
	}
	// Output:
	// sextant host-1:4242
	// tasker_step_execution_duration_milliseconds[{step_name linear_1}] le=10 0
	// tasker_step_execution_duration_milliseconds[{step_name linear_1}] le=100 1
	// tasker_step_execution_duration_milliseconds[{step_name linear_1}] le=+Inf 1
	// tasker_tasks_requests_total counter 3
}

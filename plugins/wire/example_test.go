package wire_test

import (
	"fmt"
	"math"
	"reflect"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// exampleSnapshot is a one-histogram snapshot with an exemplar in its
// second bucket.
func exampleSnapshot() *exporters.Snapshot {
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant"},
		Time:     time.Unix(1795600800, 0),
		Families: []exporters.Family{{
			Name: "tasker.step.execution.duration", PromName: "tasker_step_execution_duration_milliseconds",
			Type: exporters.TypeHistogram, Unit: "ms",
			Series: []exporters.Series{{
				Labels: []exporters.Label{{Name: "step_name", Value: "linear_1"}},
				Histogram: &exporters.Histogram{Count: 4, Sum: 1060.5, Buckets: []exporters.Bucket{
					{UpperBound: 1, Count: 1},
					{UpperBound: 10, Count: 3, Exemplar: &exporters.Exemplar{Value: 10, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"}},
					{UpperBound: math.Inf(1), Count: 4},
				}},
				Start: time.Unix(1795597200, 0), Time: time.Unix(1795600800, 0),
			}},
		}},
	}
}

// The host side: a snapshot becomes OTLP, its cumulative buckets OTLP's
// per-bucket counts.
func ExampleMetricsData() {
	md := wire.MetricsData(exampleSnapshot())
	m := md.ResourceMetrics[0].ScopeMetrics[0].Metrics[0]
	fmt.Println(m.Name, m.Unit)
	for _, kv := range m.Metadata {
		fmt.Printf("%s=%s\n", kv.Key, kv.Value.GetStringValue())
	}
	p := m.GetHistogram().DataPoints[0]
	fmt.Println("bounds", p.ExplicitBounds, "counts", p.BucketCounts, "count", p.Count, "sum", p.GetSum())
	fmt.Printf("exemplar %v trace %x\n", p.Exemplars[0].GetAsDouble(), p.Exemplars[0].TraceId)
	// Output:
	// tasker.step.execution.duration ms
	// prometheus.name=tasker_step_execution_duration_milliseconds
	// prometheus.type=histogram
	// bounds [1 10] counts [1 2 1] count 4 sum 1060.5
	// exemplar 10 trace 0af7651916cd43dd8448eb211c80319c
}

// The plugin side: the bytes received become the snapshot the host sent.
func ExampleSnapshot() {
	sent := exampleSnapshot()
	data, err := proto.Marshal(wire.MetricsData(sent)) // what travels
	if err != nil {
		panic(err)
	}
	var md metricspb.MetricsData
	if err := proto.Unmarshal(data, &md); err != nil {
		panic(err)
	}
	s, err := wire.Snapshot(&md, sent.Time)
	if err != nil {
		panic(err)
	}
	f := s.Families[0]
	fmt.Println(f.PromName, f.Type)
	for _, b := range f.Series[0].Histogram.Buckets {
		fmt.Printf("le=%v count=%d exemplar=%v\n", b.UpperBound, b.Count, b.Exemplar != nil)
	}
	fmt.Println("equal to what was sent:", reflect.DeepEqual(sent, s))
	// Output:
	// tasker_step_execution_duration_milliseconds histogram
	// le=1 count=1 exemplar=false
	// le=10 count=3 exemplar=true
	// le=+Inf count=4 exemplar=false
	// equal to what was sent: true
}

// A plugin's Export handler reads the request with FromExportRequest.
func ExampleFromExportRequest() {
	m := wire.ExportRequest(exampleSnapshot(), exporters.ExportRequest{
		ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "parquet", Target: "on_demand",
		Options: map[string]string{"compression": "zstd"},
	})
	s, req, err := wire.FromExportRequest(m)
	if err != nil {
		panic(err)
	}
	fmt.Println(req.Format, req.Target, req.Options["compression"])
	fmt.Println(s.SeriesCount(), "series read at", s.Time.UTC().Format(time.RFC3339))
	// Output:
	// parquet on_demand zstd
	// 1 series read at 2026-11-25T10:00:00Z
}

package wire_test

import (
	"testing"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// The benchmarks' snapshot: 10,000 series in 100 families, a third of them
// histograms with 10 bounds, every tenth series with an exemplar.
const benchFamilies, benchSeries = 100, 100

func BenchmarkMetricsData(b *testing.B) {
	s := generate(benchFamilies, benchSeries)
	b.ReportAllocs()
	for b.Loop() {
		wire.MetricsData(s)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	s := generate(benchFamilies, benchSeries)
	md := marshalled(b, wire.MetricsData(s))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Snapshot(md, s.Time); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTripMarshal is one export's conversion work on both sides:
// MetricsData, proto.Marshal (host), proto.Unmarshal, Snapshot (plugin).
func BenchmarkRoundTripMarshal(b *testing.B) {
	s := generate(benchFamilies, benchSeries)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		data, err := proto.Marshal(wire.MetricsData(s))
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
		md := &metricspb.MetricsData{}
		if err := proto.Unmarshal(data, md); err != nil {
			b.Fatal(err)
		}
		if _, err := wire.Snapshot(md, s.Time); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "msg-bytes")
}

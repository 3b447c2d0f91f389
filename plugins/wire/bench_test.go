package wire_test

import (
	"testing"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
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

// BenchmarkMarshalExportRequest is the host's side of an export:
// MarshalExportRequest, against ExportRequest and proto.Marshal.
func BenchmarkMarshalExportRequest(b *testing.B) {
	s := generate(benchFamilies, benchSeries)
	req := exporters.ExportRequest{ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "json", Target: "scrape"}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			n = len(wire.MarshalExportRequest(s, req))
		}
		b.ReportMetric(float64(n), "msg-bytes")
	})
	b.Run("otlp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(wire.ExportRequest(s, req)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUnmarshalExportRequest is the plugin's side of an export:
// UnmarshalExportRequest, against proto.Unmarshal and FromExportRequest.
func BenchmarkUnmarshalExportRequest(b *testing.B) {
	s := generate(benchFamilies, benchSeries)
	data := wire.MarshalExportRequest(s, exporters.ExportRequest{ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "json", Target: "scrape"})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := wire.UnmarshalExportRequest(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("otlp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := &pluginv1.ExportRequest{}
			if err := proto.Unmarshal(data, m); err != nil {
				b.Fatal(err)
			}
			if _, _, err := wire.FromExportRequest(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

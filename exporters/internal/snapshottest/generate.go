package snapshottest

import (
	"fmt"
	"math"

	"github.com/sextant-telemetry/sextant/exporters"
)

// FamilySize is how many series each family of [Generate] holds at most.
const FamilySize = 100

// DefaultBounds are OpenTelemetry's default explicit histogram bounds,
// which [Generate]'s histograms use, as the router's do.
var DefaultBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// Generate returns a snapshot of n series shaped like the router's: families
// of up to [FamilySize] series that are, in turn, counters (unit "1"), gauges
// (unit "By") and histograms (unit "ms", the default bounds and +Inf), each
// series with three labels, and every tenth series with exemplars. The same
// n always gives the same snapshot, its names exactly as the Prometheus
// exporter's default translation strategy spells them.
func Generate(n int) *exporters.Snapshot {
	s := &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "bench/1",
			Attributes: []exporters.Label{{Name: "host.name", Value: "bench"}}},
		Time: SampleTime,
	}
	for fi := 0; fi*FamilySize < n; fi++ {
		size := min(FamilySize, n-fi*FamilySize)
		var f exporters.Family
		switch fi % 3 {
		case 0:
			f = exporters.Family{Name: fmt.Sprintf("bench.counter.%05d", fi), PromName: fmt.Sprintf("bench_counter_%05d_total", fi),
				Type: exporters.TypeCounter, Unit: "1", Description: "A generated counter."}
		case 1:
			f = exporters.Family{Name: fmt.Sprintf("bench.gauge.%05d", fi), PromName: fmt.Sprintf("bench_gauge_%05d_bytes", fi),
				Type: exporters.TypeGauge, Unit: "By", Description: "A generated gauge."}
		default:
			f = exporters.Family{Name: fmt.Sprintf("bench.histogram.%05d", fi), PromName: fmt.Sprintf("bench_histogram_%05d_milliseconds", fi),
				Type: exporters.TypeHistogram, Unit: "ms", Description: "A generated histogram."}
		}
		f.Series = make([]exporters.Series, size)
		for j := range size {
			f.Series[j] = generated(f.Type, fi*FamilySize+j)
		}
		s.Families = append(s.Families, f)
	}
	Sort(s)
	return s
}

// generated returns the i-th generated series of type t.
func generated(t exporters.MetricType, i int) exporters.Series {
	s := exporters.Series{
		Labels: []exporters.Label{
			{Name: "namespace", Value: fmt.Sprintf("ns-%d", i%8)},
			{Name: "task", Value: fmt.Sprintf("task-%07d", i)},
			{Name: "worker", Value: fmt.Sprintf("w-%d", i%16)},
		},
		Time: SampleSampled,
	}
	withExemplar := i%10 == 0
	ex := func(v float64) *exporters.Exemplar {
		return &exporters.Exemplar{Value: v, Time: SampleStart.Add(42e6), TraceID: fmt.Sprintf("%032x", i+1), SpanID: fmt.Sprintf("%016x", i+1)}
	}
	switch t {
	case exporters.TypeCounter:
		s.Start = SampleStart
		s.Value = float64(i*7 + 1)
		if withExemplar {
			s.Exemplar = ex(1)
		}
	case exporters.TypeGauge:
		s.Value = float64(i)*0.25 - 10
	default:
		s.Start = SampleStart
		count := uint64(i % 50)
		h := &exporters.Histogram{Count: count, Sum: float64(count) * 37.5, Buckets: make([]exporters.Bucket, 0, len(DefaultBounds)+1)}
		for k, b := range DefaultBounds {
			h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: b, Count: count * uint64(k+1) / uint64(len(DefaultBounds)+1)})
		}
		h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: math.Inf(1), Count: count})
		if withExemplar && count > 0 {
			// An observation in the last bucket: above every bound.
			h.Buckets[len(h.Buckets)-1].Exemplar = ex(12345)
		}
		s.Histogram = h
	}
	return s
}

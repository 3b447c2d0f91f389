package wire_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// fuzzSeeds are small snapshots, one feature each: the fuzzer's minimizer
// costs the square of an input's length, so large seeds starve it.
func fuzzSeeds() []*exporters.Snapshot {
	t0 := time.Unix(1795600800, 5)
	ex := func(v float64) *exporters.Exemplar {
		return &exporters.Exemplar{Value: v, Time: t0, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", Labels: l("u", "x")}
	}
	family := func(typ exporters.MetricType, series ...exporters.Series) *exporters.Snapshot {
		return &exporters.Snapshot{Families: []exporters.Family{{Name: "m", PromName: "m", Type: typ, Unit: "s", Series: series}}}
	}
	return []*exporters.Snapshot{
		{},
		{Resource: exporters.Resource{ServiceName: "s", Instance: "i", Attributes: l("a", "b")}},
		family(exporters.TypeCounter),
		family(exporters.TypeCounter, exporters.Series{Labels: l("a", "1", "b", "2"), Value: 1, Start: t0, Time: t0, Exemplar: ex(1)}),
		family(exporters.TypeGauge, exporters.Series{Value: math.NaN(), Time: t0}, exporters.Series{Labels: l("a", "1"), Value: -1}),
		family(exporters.TypeHistogram, exporters.Series{Labels: l("a", "1"), Start: t0, Time: t0,
			Histogram: histogram(3.5, []float64{1, 10}, []uint64{1, 1, 2}, map[int]*exporters.Exemplar{0: ex(0.5), 2: ex(20)})}),
		family(exporters.TypeHistogram, exporters.Series{Histogram: histogram(0, nil, []uint64{0}, nil)}),
	}
}

// FuzzSnapshot decodes arbitrary bytes as MetricsData: Snapshot must never
// panic, and what it accepts must come back the same from MetricsData,
// through the protobuf encoding, value for value (floats by their bits).
func FuzzSnapshot(f *testing.F) {
	for _, s := range fuzzSeeds() {
		b, err := proto.Marshal(wire.MetricsData(s))
		require.NoError(f, err)
		f.Add(b)
	}
	// A few rejected inputs, so that the error paths are explored too.
	for _, change := range []func(md *metricspb.MetricsData){
		func(md *metricspb.MetricsData) {
			p := md.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetHistogram().DataPoints[0]
			p.BucketCounts = p.BucketCounts[1:]
		},
		func(md *metricspb.MetricsData) {
			md.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetHistogram().DataPoints[0].Exemplars[0].TraceId = []byte{1}
		},
		func(md *metricspb.MetricsData) {
			md.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Metadata[1].Value = stringValue("summary")
		},
	} {
		md := wire.MetricsData(fuzzSeeds()[5])
		change(md)
		b, err := proto.Marshal(md)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		md := &metricspb.MetricsData{}
		if proto.Unmarshal(data, md) != nil {
			return
		}
		s, err := wire.Snapshot(md, readTime)
		if err != nil {
			require.Nil(t, s)
			return
		}
		b, err := proto.Marshal(wire.MetricsData(s))
		require.NoError(t, err)
		again := &metricspb.MetricsData{}
		require.NoError(t, proto.Unmarshal(b, again))
		got, err := wire.Snapshot(again, readTime)
		require.NoError(t, err)
		requireSame(t, s, got)
	})
}

// TestFuzzSeeds checks that the fuzz seeds, which FuzzSnapshot only runs
// through the property, are accepted: a seed that is rejected explores
// nothing.
func TestFuzzSeeds(t *testing.T) {
	t.Parallel()
	for i, s := range fuzzSeeds() {
		b, err := proto.Marshal(wire.MetricsData(s))
		require.NoError(t, err)
		require.Less(t, len(b), 400, "seed %d", i)
		_, err = wire.Snapshot(wire.MetricsData(s), s.Time)
		require.NoError(t, err, "seed %d", i)
	}
}

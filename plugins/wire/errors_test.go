package wire_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// errorSnapshot is the valid snapshot the malformed inputs are made from:
// metrics[0] a counter, [1] a gauge, [2] a histogram with five bounds.
func errorSnapshot() *exporters.Snapshot {
	ex := func(v float64) *exporters.Exemplar {
		return &exporters.Exemplar{Value: v, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", Labels: l("user", "ann")}
	}
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "i-1", Attributes: l("host.name", "h")},
		Families: []exporters.Family{
			{Name: "tasker.x", PromName: "tasker_x_total", Type: exporters.TypeCounter, Series: []exporters.Series{
				{Labels: l("k", "a", "n", "1"), Value: 1, Exemplar: ex(1)},
				{Labels: l("k", "b", "n", "2"), Value: 2},
			}},
			{Name: "tasker.g", PromName: "tasker_g", Type: exporters.TypeGauge, Series: []exporters.Series{
				{Labels: l("k", "a"), Value: 1},
			}},
			{Name: "tasker.h", PromName: "tasker_h_seconds", Type: exporters.TypeHistogram, Series: []exporters.Series{
				{Labels: l("k", "a"), Histogram: histogram(1, []float64{1, 2, 3, 4, 5}, []uint64{0, 0, 0, 0, 0, 0}, nil)},
				{Labels: l("k", "b"), Histogram: histogram(1, []float64{1, 2, 3, 4, 5}, []uint64{0, 0, 0, 0, 0, 0}, nil)},
				{Labels: l("k", "c"), Histogram: histogram(10, []float64{1, 2, 3, 4, 5}, []uint64{1, 2, 3, 4, 5, 6},
					map[int]*exporters.Exemplar{1: ex(1.5), 5: ex(99)})},
			}},
		},
	}
}

// malformed is one malformed input: a change to errorSnapshot's
// MetricsData and the error it must give.
type malformed struct {
	name   string
	change func(md *metricspb.MetricsData)
	want   string
}

// malformedInputs are the table of TestSnapshotErrors, also fuzz seeds.
func malformedInputs() []malformed {
	rm := func(md *metricspb.MetricsData) *metricspb.ResourceMetrics { return md.ResourceMetrics[0] }
	metric := func(md *metricspb.MetricsData, i int) *metricspb.Metric { return rm(md).ScopeMetrics[0].Metrics[i] }
	counterPoint := func(md *metricspb.MetricsData, i int) *metricspb.NumberDataPoint {
		return metric(md, 0).GetSum().DataPoints[i]
	}
	histPoint := func(md *metricspb.MetricsData, i int) *metricspb.HistogramDataPoint {
		return metric(md, 2).GetHistogram().DataPoints[i]
	}
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	intValue := &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}
	boolValue := &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}
	return []malformed{
		{
			name: "two resource metrics",
			change: func(md *metricspb.MetricsData) {
				md.ResourceMetrics = append(md.ResourceMetrics, &metricspb.ResourceMetrics{})
			},
			want: "resource_metrics: 2, want at most 1",
		},
		{
			name:   "a nil resource metrics",
			change: func(md *metricspb.MetricsData) { md.ResourceMetrics[0] = nil },
			want:   "resource_metrics[0]: nil",
		},
		{
			name: "two scope metrics",
			change: func(md *metricspb.MetricsData) {
				rm(md).ScopeMetrics = append(rm(md).ScopeMetrics, &metricspb.ScopeMetrics{})
			},
			want: "scope_metrics: 2, want at most 1",
		},
		{
			name:   "a resource attribute that is not a string",
			change: func(md *metricspb.MetricsData) { rm(md).Resource.Attributes[1].Value = intValue },
			want:   `resource: attributes[1] "service.instance.id": an int, want a string`,
		},
		{
			name: "a resource attribute twice",
			change: func(md *metricspb.MetricsData) {
				rm(md).Resource.Attributes = append(rm(md).Resource.Attributes, kv("service.name", stringValue("x")))
			},
			want: `resource: attributes[3] "service.name": repeats attributes[0]`,
		},
		{
			name:   "a resource attribute without value",
			change: func(md *metricspb.MetricsData) { rm(md).Resource.Attributes[2].Value = nil },
			want:   `resource: attributes[2] "host.name": no value, want a string`,
		},
		{
			name:   "a nil metric",
			change: func(md *metricspb.MetricsData) { rm(md).ScopeMetrics[0].Metrics[1] = nil },
			want:   "metrics[1]: nil",
		},
		{
			name:   "a metric without a name",
			change: func(md *metricspb.MetricsData) { metric(md, 0).Name = "" },
			want:   `metrics[0] "tasker_x_total": no name`,
		},
		{
			name:   "no prometheus.name",
			change: func(md *metricspb.MetricsData) { metric(md, 0).Metadata = metric(md, 0).Metadata[1:] },
			want:   `metrics[0] "tasker.x": no prometheus.name metadata`,
		},
		{
			name:   "an empty prometheus.name",
			change: func(md *metricspb.MetricsData) { metric(md, 0).Metadata[0].Value = stringValue("") },
			want:   `metrics[0] "tasker.x": prometheus.name is empty`,
		},
		{
			name:   "no prometheus.type",
			change: func(md *metricspb.MetricsData) { metric(md, 1).Metadata = metric(md, 1).Metadata[:1] },
			want:   `metrics[1] "tasker_g": no prometheus.type metadata`,
		},
		{
			name:   "an unknown prometheus.type",
			change: func(md *metricspb.MetricsData) { metric(md, 1).Metadata[1].Value = stringValue("summary") },
			want:   `metrics[1] "tasker_g": prometheus.type "summary", want counter, gauge or histogram`,
		},
		{
			name: "prometheus.type twice",
			change: func(md *metricspb.MetricsData) {
				metric(md, 1).Metadata = append(metric(md, 1).Metadata, kv("other", boolValue), kv("prometheus.type", stringValue("gauge")))
			},
			want: `metrics[1] "tasker_g": metadata[3] "prometheus.type": a second one`,
		},
		{
			name:   "a prometheus.name that is not a string",
			change: func(md *metricspb.MetricsData) { metric(md, 1).Metadata[0].Value = boolValue },
			want:   `metrics[1] "tasker.g": metadata[0] "prometheus.name": a bool, want a string`,
		},
		{
			name:   "a nil metadata entry",
			change: func(md *metricspb.MetricsData) { metric(md, 1).Metadata[1] = nil },
			want:   `metrics[1] "tasker_g": metadata[1]: nil`,
		},
		{
			name:   "a counter that is a gauge",
			change: func(md *metricspb.MetricsData) { metric(md, 1).Metadata[1].Value = stringValue("counter") },
			want:   `metrics[1] "tasker_g": prometheus.type counter needs a Sum, got a Gauge`,
		},
		{
			name:   "a non-monotonic counter",
			change: func(md *metricspb.MetricsData) { metric(md, 0).GetSum().IsMonotonic = false },
			want:   `metrics[0] "tasker_x_total": prometheus.type counter needs a monotonic Sum, got a non-monotonic one`,
		},
		{
			name: "a delta counter",
			change: func(md *metricspb.MetricsData) {
				metric(md, 0).GetSum().AggregationTemporality = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
			},
			want: `metrics[0] "tasker_x_total": prometheus.type counter needs AGGREGATION_TEMPORALITY_CUMULATIVE, got AGGREGATION_TEMPORALITY_DELTA`,
		},
		{
			name:   "a gauge that is a counter",
			change: func(md *metricspb.MetricsData) { metric(md, 0).Metadata[1].Value = stringValue("gauge") },
			want:   `metrics[0] "tasker_x_total": prometheus.type gauge needs a Gauge, got a Sum`,
		},
		{
			name: "an exponential histogram",
			change: func(md *metricspb.MetricsData) {
				metric(md, 2).Data = &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{}}
			},
			want: `metrics[2] "tasker_h_seconds": prometheus.type histogram needs a Histogram, got an ExponentialHistogram`,
		},
		{
			name: "a summary",
			change: func(md *metricspb.MetricsData) {
				metric(md, 2).Data = &metricspb.Metric_Summary{Summary: &metricspb.Summary{}}
			},
			want: `metrics[2] "tasker_h_seconds": prometheus.type histogram needs a Histogram, got a Summary`,
		},
		{
			name:   "no data",
			change: func(md *metricspb.MetricsData) { metric(md, 2).Data = nil },
			want:   `metrics[2] "tasker_h_seconds": prometheus.type histogram needs a Histogram, got no data`,
		},
		{
			name: "a delta histogram",
			change: func(md *metricspb.MetricsData) {
				metric(md, 2).GetHistogram().AggregationTemporality = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED
			},
			want: `metrics[2] "tasker_h_seconds": prometheus.type histogram needs AGGREGATION_TEMPORALITY_CUMULATIVE, got AGGREGATION_TEMPORALITY_UNSPECIFIED`,
		},
		{
			name:   "a nil data point",
			change: func(md *metricspb.MetricsData) { metric(md, 0).GetSum().DataPoints[1] = nil },
			want:   `metrics[0] "tasker_x_total": data point 1: nil`,
		},
		{
			name: "an int value",
			change: func(md *metricspb.MetricsData) {
				counterPoint(md, 1).Value = &metricspb.NumberDataPoint_AsInt{AsInt: 2}
			},
			want: `metrics[0] "tasker_x_total": data point 1: value is as_int, want as_double`,
		},
		{
			name:   "no value",
			change: func(md *metricspb.MetricsData) { metric(md, 1).GetGauge().DataPoints[0].Value = nil },
			want:   `metrics[1] "tasker_g": data point 0: no value`,
		},
		{
			name:   "no recorded value",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 1).Flags = 1 },
			want:   `metrics[0] "tasker_x_total": data point 1: flags 0x1, want none`,
		},
		{
			name: "two exemplars on a counter",
			change: func(md *metricspb.MetricsData) {
				p := counterPoint(md, 0)
				p.Exemplars = append(p.Exemplars, p.Exemplars[0])
			},
			want: `metrics[0] "tasker_x_total": data point 0: 2 exemplars, want at most 1`,
		},
		{
			name:   "a label that is not a string",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 1).Attributes[1].Value = boolValue },
			want:   `metrics[0] "tasker_x_total": data point 1: attributes[1] "n": a bool, want a string`,
		},
		{
			name:   "a label twice",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 1).Attributes[1].Key = "k" },
			want:   `metrics[0] "tasker_x_total": data point 1: attributes[1] "k": repeats attributes[0]`,
		},
		{
			name:   "a nil label",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 1).Attributes[0] = nil },
			want:   `metrics[0] "tasker_x_total": data point 1: attributes[0]: nil`,
		},
		{
			name: "an int exemplar",
			change: func(md *metricspb.MetricsData) {
				counterPoint(md, 0).Exemplars[0].Value = &metricspb.Exemplar_AsInt{AsInt: 1}
			},
			want: `metrics[0] "tasker_x_total": data point 0: exemplars[0]: value is as_int, want as_double`,
		},
		{
			name:   "an exemplar without value",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 0).Exemplars[0].Value = nil },
			want:   `metrics[0] "tasker_x_total": data point 0: exemplars[0]: no value`,
		},
		{
			name:   "a nil exemplar",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 0).Exemplars[0] = nil },
			want:   `metrics[0] "tasker_x_total": data point 0: exemplars[0]: nil`,
		},
		{
			name:   "a short trace id",
			change: func(md *metricspb.MetricsData) { counterPoint(md, 0).Exemplars[0].TraceId = make([]byte, 15) },
			want:   `metrics[0] "tasker_x_total": data point 0: exemplars[0]: trace_id is 15 bytes, want 16 or none`,
		},
		{
			name:   "a long span id",
			change: func(md *metricspb.MetricsData) { histPoint(md, 2).Exemplars[1].SpanId = make([]byte, 16) },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 2: exemplars[1]: span_id is 16 bytes, want 8 or none`,
		},
		{
			name: "an exemplar label that is not a string",
			change: func(md *metricspb.MetricsData) {
				counterPoint(md, 0).Exemplars[0].FilteredAttributes[0].Value = intValue
			},
			want: `metrics[0] "tasker_x_total": data point 0: exemplars[0]: filtered_attributes[0] "user": an int, want a string`,
		},
		{
			name: "bucket counts do not match bounds",
			change: func(md *metricspb.MetricsData) {
				p := histPoint(md, 2)
				p.BucketCounts = p.BucketCounts[:5]
			},
			want: `metrics[2] "tasker_h_seconds": histogram data point 2: 5 bucket counts for 5 bounds, want 6`,
		},
		{
			name: "no buckets at all",
			change: func(md *metricspb.MetricsData) {
				p := histPoint(md, 0)
				p.BucketCounts, p.ExplicitBounds = nil, nil
			},
			want: `metrics[2] "tasker_h_seconds": histogram data point 0: 0 bucket counts for 0 bounds, want 1`,
		},
		{
			name:   "a nil histogram data point",
			change: func(md *metricspb.MetricsData) { metric(md, 2).GetHistogram().DataPoints[1] = nil },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: nil`,
		},
		{
			name:   "no sum",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).Sum = nil },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: no sum`,
		},
		{
			name:   "min",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).Min = new(float64) },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: min or max, which a snapshot does not hold`,
		},
		{
			name:   "histogram flags",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).Flags = 1 },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: flags 0x1, want none`,
		},
		{
			name:   "decreasing bounds",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).ExplicitBounds[3] = 2 },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: explicit_bounds[3] is 2 after 3, want increasing bounds`,
		},
		{
			name:   "a bound twice",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).ExplicitBounds[1] = 1 },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: explicit_bounds[1] is 1 after 1, want increasing bounds`,
		},
		{
			name:   "a NaN bound",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).ExplicitBounds[0] = math.NaN() },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: explicit_bounds[0] is NaN`,
		},
		{
			name:   "an +Inf bound",
			change: func(md *metricspb.MetricsData) { histPoint(md, 1).ExplicitBounds[4] = math.Inf(1) },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 1: explicit_bounds[4] is +Inf`,
		},
		{
			name:   "counts that do not add up",
			change: func(md *metricspb.MetricsData) { histPoint(md, 2).Count = 7 },
			want:   `metrics[2] "tasker_h_seconds": histogram data point 2: bucket counts add up to 6, count is 7`,
		},
		{
			name: "counts that overflow",
			change: func(md *metricspb.MetricsData) {
				histPoint(md, 2).BucketCounts[3] = math.MaxUint64
			},
			want: `metrics[2] "tasker_h_seconds": histogram data point 2: bucket_counts[3]: the counts overflow a uint64`,
		},
		{
			name: "two exemplars in one bucket",
			change: func(md *metricspb.MetricsData) {
				x := proto.Clone(histPoint(md, 2).Exemplars[0]).(*metricspb.Exemplar)
				x.Value = &metricspb.Exemplar_AsDouble{AsDouble: 2}
				histPoint(md, 2).Exemplars = append(histPoint(md, 2).Exemplars, x)
			},
			want: `metrics[2] "tasker_h_seconds": histogram data point 2: exemplars[2]: value 2 is in the bucket le=2, which has an exemplar already`,
		},
	}
}

// TestSnapshotErrors checks that each malformed input is rejected with an
// error that names where, and that the unchanged input is accepted.
func TestSnapshotErrors(t *testing.T) {
	t.Parallel()
	_, err := wire.Snapshot(wire.MetricsData(errorSnapshot()), readTime)
	require.NoError(t, err, "the unchanged input")
	for _, tt := range malformedInputs() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := wire.MetricsData(errorSnapshot())
			tt.change(md)
			s, err := wire.Snapshot(md, readTime)
			require.EqualError(t, err, tt.want)
			require.Nil(t, s)
		})
	}
}

// TestMalformedSnapshots checks that what MetricsData writes for a
// snapshot that breaks the model's rules does not come back as another
// valid snapshot: Snapshot rejects it.
func TestMalformedSnapshots(t *testing.T) {
	t.Parallel()
	for _, tt := range malformedSnapshots() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := wire.Snapshot(wire.MetricsData(tt.s), tt.s.Time)
			require.EqualError(t, err, tt.want)
			require.Nil(t, s)
		})
	}
}

// malformedSnapshot is a snapshot that breaks the model's rules and the
// error Snapshot gives for what MetricsData writes of it.
type malformedSnapshot struct {
	name string
	s    *exporters.Snapshot
	want string
}

// malformedSnapshots are the table of TestMalformedSnapshots.
func malformedSnapshots() []malformedSnapshot {
	series := func(sr exporters.Series) *exporters.Snapshot {
		typ := exporters.TypeCounter
		if sr.Histogram != nil {
			typ = exporters.TypeHistogram
		}
		return &exporters.Snapshot{Families: []exporters.Family{{Name: "m", PromName: "m", Type: typ, Series: []exporters.Series{sr}}}}
	}
	trace := func(id string) *exporters.Snapshot {
		return series(exporters.Series{Value: 1, Exemplar: &exporters.Exemplar{Value: 1, TraceID: id}})
	}
	return []malformedSnapshot{
		{
			name: "an unknown type",
			s:    &exporters.Snapshot{Families: []exporters.Family{{Name: "m", PromName: "m", Type: "summary"}}},
			want: `metrics[0] "m": prometheus.type "summary", want counter, gauge or histogram`,
		},
		{
			name: "no name at all",
			s:    &exporters.Snapshot{Families: []exporters.Family{{Type: exporters.TypeGauge}}},
			want: `metrics[0]: no name`,
		},
		{
			name: "a histogram series without a histogram",
			s: &exporters.Snapshot{Families: []exporters.Family{{Name: "m", PromName: "m", Type: exporters.TypeHistogram,
				Series: []exporters.Series{{Value: 1}}}}},
			want: `metrics[0] "m": histogram data point 0: 0 bucket counts for 0 bounds, want 1`,
		},
		{
			name: "buckets not ending with +Inf",
			s:    series(exporters.Series{Histogram: &exporters.Histogram{Count: 1, Buckets: []exporters.Bucket{{UpperBound: 1, Count: 1}}}}),
			want: `metrics[0] "m": histogram data point 0: 1 bucket counts for 1 bounds, want 2`,
		},
		{
			name: "decreasing cumulative counts",
			s:    series(exporters.Series{Histogram: histogram(1, []float64{1}, []uint64{5, 3}, nil)}),
			want: `metrics[0] "m": histogram data point 0: bucket_counts[1]: the counts overflow a uint64`,
		},
		{
			name: "an +Inf count that is not the count",
			s:    series(exporters.Series{Histogram: &exporters.Histogram{Count: 4, Buckets: []exporters.Bucket{{UpperBound: math.Inf(1), Count: 3}}}}),
			want: `metrics[0] "m": histogram data point 0: bucket counts add up to 3, count is 4`,
		},
		{
			name: "a short trace id",
			s:    trace("0af7651916cd43dd"),
			want: `metrics[0] "m": data point 0: exemplars[0]: trace_id is 8 bytes, want 16 or none`,
		},
		{
			name: "a trace id that is not hex",
			s:    trace("0af7651916cd43dd8448eb211c80319z"),
			want: `metrics[0] "m": data point 0: exemplars[0]: trace_id is 32 bytes, want 16 or none`,
		},
		{
			name: "a trace id of 16 characters that are not hex",
			s:    trace("not-hex-16-chars"),
			want: `metrics[0] "m": data point 0: exemplars[0]: trace_id is 17 bytes, want 16 or none`,
		},
		{
			name: "a trace id of odd length",
			s:    trace("0af7651916cd43dd8448eb211c80319c0"),
			want: `metrics[0] "m": data point 0: exemplars[0]: trace_id is 33 bytes, want 16 or none`,
		},
		{
			name: "a span id that is not hex",
			s:    series(exporters.Series{Value: 1, Exemplar: &exporters.Exemplar{Value: 1, SpanID: "span-id!"}}),
			want: `metrics[0] "m": data point 0: exemplars[0]: span_id is 9 bytes, want 8 or none`,
		},
		{
			name: "a label twice",
			s:    series(exporters.Series{Labels: l("a", "1", "a", "2")}),
			want: `metrics[0] "m": data point 0: attributes[1] "a": repeats attributes[0]`,
		},
		{
			name: "a label twice among many",
			s: series(exporters.Series{Labels: l("a", "", "b", "", "c", "", "d", "", "e", "", "f", "", "g", "", "h", "", "i", "",
				"j", "", "k", "", "l", "", "m", "", "n", "", "o", "", "p", "", "q", "", "e", "again")}),
			want: `metrics[0] "m": data point 0: attributes[17] "e": repeats attributes[4]`,
		},
	}
}

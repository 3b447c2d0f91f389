package wire_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// marshalled returns md after a trip through the protobuf encoding, as a
// plugin receives it.
func marshalled(t testing.TB, md *metricspb.MetricsData) *metricspb.MetricsData {
	t.Helper()
	b, err := proto.Marshal(md)
	require.NoError(t, err)
	out := &metricspb.MetricsData{}
	require.NoError(t, proto.Unmarshal(b, out))
	return out
}

// TestRoundTripSDK is the key test: a snapshot read from a real
// MeterProvider comes back equal, by reflect.DeepEqual, directly, through
// the protobuf encoding and through an ExportRequest.
func TestRoundTripSDK(t *testing.T) {
	t.Parallel()
	s := sdkSnapshot(t)

	// The snapshot holds what the test is about, or it proves nothing.
	byName := map[string]exporters.Family{}
	for _, f := range s.Families {
		byName[f.PromName] = f
	}
	require.Len(t, byName, 6, "families: %v", byName)
	require.NotNil(t, byName["tasker_tasks_requests_total"].Series[1].Exemplar, "a counter's exemplar")
	require.NotEmpty(t, byName["filtered_events_total"].Series[0].Exemplar.Labels, "an exemplar's labels")
	require.Equal(t, exporters.TypeGauge, byName["queue_depth"].Type)
	require.Empty(t, byName["pool_utilization_ratio"].Series[0].Labels, "a series without labels")
	hist := byName["tasker_step_execution_duration_milliseconds"].Series[0].Histogram
	require.Len(t, hist.Buckets, 4)
	for _, i := range []int{0, 1, 3} { // le=1, le=10 and +Inf hold exemplars; le=100 none
		require.NotNil(t, hist.Buckets[i].Exemplar, "bucket le=%v", hist.Buckets[i].UpperBound)
	}
	require.NotEmpty(t, s.Resource.Attributes)
	require.False(t, s.Families[0].Series[0].Start.IsZero())

	got, err := wire.Snapshot(wire.MetricsData(s), s.Time)
	require.NoError(t, err)
	require.Equal(t, s, got)

	got, err = wire.Snapshot(marshalled(t, wire.MetricsData(s)), s.Time)
	require.NoError(t, err)
	require.Equal(t, s, got)

	req := exporters.ExportRequest{ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "x", Target: "scrape", Options: map[string]string{"pretty": "true"}}
	b, err := proto.Marshal(wire.ExportRequest(s, req))
	require.NoError(t, err)
	var m pluginv1.ExportRequest
	require.NoError(t, proto.Unmarshal(b, &m))
	got, gotReq, err := wire.FromExportRequest(&m)
	require.NoError(t, err)
	require.Equal(t, s, got)
	require.Equal(t, req, gotReq)
}

// roundTripCase is one snapshot that must come back as want (nil: as s).
type roundTripCase struct {
	name string
	s    *exporters.Snapshot
	want *exporters.Snapshot // nil: s itself
}

// roundTripCases are the edge cases a snapshot from the SDK rarely holds;
// each want is in the form Snapshot gives (see the package documentation
// on nil and empty slices).
func roundTripCases() []roundTripCase {
	nan, inf := math.NaN(), math.Inf(1)
	negZero := math.Copysign(0, -1)
	counter := func(series ...exporters.Series) []exporters.Family {
		return []exporters.Family{{Name: "c", PromName: "c_total", Type: exporters.TypeCounter, Series: series}}
	}
	gauge := func(series ...exporters.Series) []exporters.Family {
		return []exporters.Family{{Name: "g", PromName: "g", Type: exporters.TypeGauge, Series: series}}
	}
	hist := func(series ...exporters.Series) []exporters.Family {
		return []exporters.Family{{Name: "h", PromName: "h_seconds", Type: exporters.TypeHistogram, Unit: "s", Series: series}}
	}
	noLabels := []exporters.Label{}
	ex := func(v float64) *exporters.Exemplar {
		return &exporters.Exemplar{Value: v, Time: sampledTime, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"}
	}
	return []roundTripCase{
		{name: "empty", s: &exporters.Snapshot{Families: []exporters.Family{}}},
		{name: "empty with a time", s: &exporters.Snapshot{Time: readTime, Families: []exporters.Family{}}},
		{
			name: "nil families come back empty",
			s:    &exporters.Snapshot{Resource: exporters.Resource{ServiceName: "svc"}},
			want: &exporters.Snapshot{Resource: exporters.Resource{ServiceName: "svc"}, Families: []exporters.Family{}},
		},
		{
			name: "resource without instance, attributes in their order",
			s: &exporters.Snapshot{
				Resource: exporters.Resource{ServiceName: "svc", Attributes: l("z", "1", "a", "", "k", "ünï ✓")},
				Families: []exporters.Family{},
			},
		},
		{
			name: "resource with instance and no service name",
			s:    &exporters.Snapshot{Resource: exporters.Resource{Instance: "i-1"}, Families: []exporters.Family{}},
		},
		{
			name: "a family without series",
			s: &exporters.Snapshot{Families: []exporters.Family{
				{Name: "sextant.export.failures", PromName: "sextant_export_failures_total", Type: exporters.TypeCounter, Description: "Failures."},
				{Name: "g", PromName: "g", Type: exporters.TypeGauge, Unit: "1"},
				{Name: "h", PromName: "h", Type: exporters.TypeHistogram},
			}},
		},
		{
			name: "a family without a name takes its Prometheus name",
			s:    &exporters.Snapshot{Families: []exporters.Family{{PromName: "up", Type: exporters.TypeGauge}}},
			want: &exporters.Snapshot{Families: []exporters.Family{{Name: "up", PromName: "up", Type: exporters.TypeGauge}}},
		},
		{
			name: "series without labels come back with empty labels",
			s:    &exporters.Snapshot{Families: gauge(exporters.Series{Value: 1})},
			want: &exporters.Snapshot{Families: gauge(exporters.Series{Labels: noLabels, Value: 1})},
		},
		{
			name: "zero times",
			s: &exporters.Snapshot{Families: counter(exporters.Series{
				Labels: l("a", "1"), Value: 2, Exemplar: &exporters.Exemplar{Value: 1, TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"},
			})},
		},
		{
			name: "special values",
			s: &exporters.Snapshot{Families: gauge(
				exporters.Series{Labels: l("v", "nan"), Value: nan, Time: sampledTime},
				exporters.Series{Labels: l("v", "nan payload"), Value: math.Float64frombits(0x7ff8000000000bad), Time: sampledTime},
				exporters.Series{Labels: l("v", "+inf"), Value: inf, Time: sampledTime},
				exporters.Series{Labels: l("v", "-inf"), Value: math.Inf(-1), Time: sampledTime},
				exporters.Series{Labels: l("v", "-0"), Value: negZero, Time: sampledTime},
				exporters.Series{Labels: l("v", "max"), Value: math.MaxFloat64, Time: sampledTime},
				exporters.Series{Labels: l("v", "min"), Value: math.SmallestNonzeroFloat64, Time: sampledTime},
				exporters.Series{Labels: l("v", "2^53+1 as a float"), Value: 9007199254740993, Time: sampledTime},
			)},
		},
		{
			name: "labels with empty values, escapes and unicode",
			s: &exporters.Snapshot{Families: counter(
				exporters.Series{Labels: l("a", "", "b", "quote \" backslash \\ newline \n", "c", "日本 🚀"), Value: 1, Start: startTime, Time: sampledTime},
			)},
		},
		{
			name: "a gauge keeps an exemplar it is given",
			s:    &exporters.Snapshot{Families: gauge(exporters.Series{Labels: l("a", "1"), Value: 1, Exemplar: ex(1)})},
		},
		{
			name: "exemplars with labels and without ids",
			s: &exporters.Snapshot{Families: counter(exporters.Series{Labels: l("a", "1"), Value: 1, Exemplar: &exporters.Exemplar{
				Value: 0.5, Time: sampledTime, Labels: l("user", "ann", "attempt", "2"),
			}})},
		},
		{
			name: "an +Inf-only histogram",
			s: &exporters.Snapshot{Families: hist(exporters.Series{
				Labels: l("a", "1"), Start: startTime, Time: sampledTime,
				Histogram: histogram(12.5, nil, []uint64{5}, map[int]*exporters.Exemplar{0: ex(3)}),
			})},
		},
		{
			name: "histograms: empty, special sums, -Inf bound, exemplars at bounds, NaN and -Inf exemplars",
			s: &exporters.Snapshot{Families: hist(
				exporters.Series{Labels: l("a", "empty"), Histogram: histogram(0, []float64{0, 1}, []uint64{0, 0, 0}, nil)},
				exporters.Series{Labels: l("a", "nan"), Histogram: histogram(nan, []float64{0.1, 0.2}, []uint64{1, 1, 3}, map[int]*exporters.Exemplar{
					0: ex(0.1), // on its bound
					1: ex(0.2),
					2: ex(nan), // NaN goes to +Inf
				})},
				exporters.Series{Labels: l("a", "neg"), Histogram: histogram(math.Inf(-1), []float64{math.Inf(-1), -1, 0}, []uint64{1, 2, 2, 3},
					map[int]*exporters.Exemplar{0: ex(math.Inf(-1)), 1: ex(-1.5), 2: ex(negZero), 3: ex(inf)})},
				exporters.Series{Labels: l("a", "max"), Histogram: histogram(1, []float64{1}, []uint64{math.MaxUint64, math.MaxUint64}, nil)},
			)},
		},
		{name: "the sample", s: smallSnapshot()},
		{name: "generated", s: generate(6, 20)},
	}
}

// TestRoundTrip covers the edge cases a snapshot from the SDK rarely
// holds, directly and through the protobuf encoding.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range roundTripCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			if want == nil {
				want = tt.s
			}
			got, err := wire.Snapshot(wire.MetricsData(tt.s), tt.s.Time)
			require.NoError(t, err)
			requireSame(t, want, got)

			got, err = wire.Snapshot(marshalled(t, wire.MetricsData(tt.s)), tt.s.Time)
			require.NoError(t, err)
			requireSame(t, want, got)
		})
	}
}

func TestMetricsDataNil(t *testing.T) {
	t.Parallel()
	md := wire.MetricsData(nil)
	require.NotNil(t, md)
	require.Empty(t, md.ResourceMetrics)
	for _, md := range []*metricspb.MetricsData{md, nil} {
		s, err := wire.Snapshot(md, readTime)
		require.NoError(t, err)
		require.Equal(t, &exporters.Snapshot{Time: readTime, Families: []exporters.Family{}}, s)
	}
}

// TestMetricsDataMapping checks the OTLP side of the mapping field by
// field, beyond the golden file: what a plugin in another language reads.
func TestMetricsDataMapping(t *testing.T) {
	t.Parallel()
	md := wire.MetricsData(smallSnapshot())
	require.Len(t, md.ResourceMetrics, 1)
	rm := md.ResourceMetrics[0]
	require.Equal(t, []string{"service.name=sextant", "service.instance.id=host-a/4242", "deployment.environment=test", "service.version=1.2.3"},
		keyValues(rm.Resource.Attributes))
	require.Len(t, rm.ScopeMetrics, 1)
	require.Equal(t, wire.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	metrics := rm.ScopeMetrics[0].Metrics
	require.Len(t, metrics, 3)

	g := metrics[0]
	require.Equal(t, "tasker.memory.usage", g.Name)
	require.Equal(t, "By", g.Unit)
	require.Equal(t, []string{"prometheus.name=tasker_memory_usage_bytes", "prometheus.type=gauge"}, keyValues(g.Metadata))
	gp := g.GetGauge().DataPoints[0]
	require.InDelta(t, 1073741824.0, gp.GetAsDouble(), 0)
	require.Zero(t, gp.StartTimeUnixNano)
	require.Equal(t, uint64(sampledTime.UnixNano()), gp.TimeUnixNano)

	h := metrics[1]
	require.Equal(t, []string{"prometheus.name=tasker_step_execution_duration_milliseconds", "prometheus.type=histogram"}, keyValues(h.Metadata))
	require.Equal(t, metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, h.GetHistogram().AggregationTemporality)
	hp := h.GetHistogram().DataPoints[0]
	require.Equal(t, []float64{5, 250}, hp.ExplicitBounds)
	require.Equal(t, []uint64{1, 2, 1}, hp.BucketCounts, "non-cumulative")
	require.Equal(t, uint64(4), hp.Count)
	require.InDelta(t, 1234.5, hp.GetSum(), 0)
	require.Nil(t, hp.Min)
	require.Nil(t, hp.Max)
	require.Equal(t, uint64(startTime.UnixNano()), hp.StartTimeUnixNano)
	require.Equal(t, []string{"namespace=billing", "result=error"}, keyValues(hp.Attributes))
	require.Len(t, hp.Exemplars, 2)
	require.Equal(t, []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}, hp.Exemplars[0].TraceId)
	require.Equal(t, []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, hp.Exemplars[0].SpanId)
	require.Equal(t, []string{"attempt=2"}, keyValues(hp.Exemplars[0].FilteredAttributes))
	require.InDelta(t, 1014.25, hp.Exemplars[1].GetAsDouble(), 0)
	require.Empty(t, hp.Exemplars[1].TraceId)

	c := metrics[2]
	require.Equal(t, "tasker.tasks.requests", c.Name)
	require.Equal(t, []string{"prometheus.name=tasker_tasks_requests_total", "prometheus.type=counter"}, keyValues(c.Metadata))
	require.True(t, c.GetSum().IsMonotonic)
	require.Equal(t, metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, c.GetSum().AggregationTemporality)
	require.Empty(t, c.GetSum().DataPoints[0].Exemplars)
	require.Len(t, c.GetSum().DataPoints[1].Exemplars, 1)
}

func keyValues(kvs []*commonpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key + "=" + kv.Value.GetStringValue()
	}
	return out
}

// TestTimes checks the time mapping at its edges, through time_unix_nano.
func TestTimes(t *testing.T) {
	t.Parallel()
	epoch := time.Unix(0, 0)
	latest := time.Unix(0, math.MaxInt64).Add(math.MaxInt64).Add(1) // 2^64-1 ns
	tests := []struct {
		name string
		in   time.Time
		nano uint64
		back time.Time
	}{
		{name: "zero", in: time.Time{}, nano: 0, back: time.Time{}},
		{name: "now", in: readTime, nano: uint64(readTime.UnixNano()), back: readTime},
		{name: "UTC comes back local", in: readTime.UTC(), nano: uint64(readTime.UnixNano()), back: readTime},
		{name: "monotonic reading dropped", in: time.Now(), back: time.Time{}}, // back checked below
		{name: "one nanosecond after the epoch", in: epoch.Add(1), nano: 1, back: epoch.Add(1)},
		{name: "the epoch has no encoding", in: epoch, nano: 0, back: time.Time{}},
		{name: "before the epoch", in: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), nano: 0, back: time.Time{}},
		{name: "after 2262", in: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), nano: uint64(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Unix()) * 1e9,
			back: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Local()},
		{name: "the latest", in: latest, nano: math.MaxUint64, back: latest},
		{name: "past the latest", in: latest.Add(1), nano: 0, back: time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, wantNano := tt.back, tt.nano
			if tt.name == "monotonic reading dropped" {
				want, wantNano = tt.in.Round(0), uint64(tt.in.UnixNano())
			}
			s := &exporters.Snapshot{Time: tt.in, Families: []exporters.Family{{Name: "c", PromName: "c", Type: exporters.TypeCounter,
				Series: []exporters.Series{{Labels: []exporters.Label{}, Start: tt.in, Time: tt.in}}}}}
			m := wire.ExportRequest(s, exporters.ExportRequest{})
			require.Equal(t, wantNano, m.TimeUnixNano)
			p := m.Metrics.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetSum().DataPoints[0]
			require.Equal(t, wantNano, p.StartTimeUnixNano)
			require.Equal(t, wantNano, p.TimeUnixNano)
			got, _, err := wire.FromExportRequest(m)
			require.NoError(t, err)
			require.Equal(t, want, got.Time) // ==: the same instant and location
			require.Equal(t, want, got.Families[0].Series[0].Start)
			require.Equal(t, want, got.Families[0].Series[0].Time)
		})
	}
}

func TestExportRequest(t *testing.T) {
	t.Parallel()
	s := smallSnapshot()
	req := exporters.ExportRequest{ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "parquet", Target: "nightly",
		Options: map[string]string{"pretty": "true", "compression": "zstd"}}
	m := wire.ExportRequest(s, req)
	require.Equal(t, req.ID, m.ExportId)
	require.Equal(t, req.Format, m.Format)
	require.Equal(t, req.Target, m.Target)
	require.Equal(t, req.Options, m.Options)
	require.Equal(t, uint64(s.Time.UnixNano()), m.TimeUnixNano)
	require.True(t, proto.Equal(wire.MetricsData(s), m.Metrics))

	m.Options["pretty"] = "false"
	require.Equal(t, "true", req.Options["pretty"], "the options are copied")

	gotS, gotReq, err := wire.FromExportRequest(m)
	require.NoError(t, err)
	requireSame(t, s, gotS)
	require.Equal(t, "false", gotReq.Options["pretty"])
	m.Options["pretty"] = "again"
	require.Equal(t, "false", gotReq.Options["pretty"], "the options are copied")

	// No snapshot, no options.
	m = wire.ExportRequest(nil, exporters.ExportRequest{ID: "x", Format: "f"})
	require.Zero(t, m.TimeUnixNano)
	require.Nil(t, m.Options)
	gotS, gotReq, err = wire.FromExportRequest(m)
	require.NoError(t, err)
	require.Equal(t, &exporters.Snapshot{Families: []exporters.Family{}}, gotS)
	require.Equal(t, exporters.ExportRequest{ID: "x", Format: "f"}, gotReq)
}

func TestFromExportRequestErrors(t *testing.T) {
	t.Parallel()
	_, _, err := wire.FromExportRequest(nil)
	require.EqualError(t, err, "no export request")

	m := wire.ExportRequest(smallSnapshot(), exporters.ExportRequest{ID: "e-1", Format: "f", Target: "t"})
	m.Metrics.ResourceMetrics[0].ScopeMetrics[0].Metrics[2].Metadata[1].Value = stringValue("summary")
	s, req, err := wire.FromExportRequest(m)
	require.EqualError(t, err, `metrics: metrics[2] "tasker_tasks_requests_total": prometheus.type "summary", want counter, gauge or histogram`)
	require.Nil(t, s)
	require.Equal(t, exporters.ExportRequest{ID: "e-1", Format: "f", Target: "t"}, req, "the request names the failed export")
}

func stringValue(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

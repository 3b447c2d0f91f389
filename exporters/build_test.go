package exporters_test

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	dto "github.com/prometheus/client_model/go"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

// sampled returns a context carrying a sampled span context, so that the
// trace-based exemplar filter keeps the measurements made with it.
func sampled(t *testing.T, traceID, spanID string) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex(spanID)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

// recordAll records one of everything the router creates, and a few names
// and attributes that exercise the translation: units, _total already in
// the name, attributes that collide once escaped, a digit-led attribute,
// the overflow attribute, filtered attributes on exemplars, several scopes.
func recordAll(t *testing.T, mp metric.MeterProvider) {
	t.Helper()
	bg := context.Background()
	ctxA := sampled(t, "0102030405060708090a0b0c0d0e0f10", "0102030405060708")
	ctxB := sampled(t, "1112131415161718191a1b1c1d1e1f20", "1112131415161718")
	router := mp.Meter("github.com/sextant-telemetry/sextant/router", metric.WithInstrumentationVersion("1.0.0"),
		metric.WithInstrumentationAttributes(attribute.String("component", "router")))
	other := mp.Meter("github.com/sextant-telemetry/sextant/lifecycle")

	requests, err := router.Int64Counter("tasker.tasks.requests.total", metric.WithDescription("task requests"))
	require.NoError(t, err)
	linear := metric.WithAttributes(attribute.String("namespace", "rust_e2e_linear"), attribute.String("result", "ok"))
	requests.Add(bg, 3, linear)
	requests.Add(ctxA, 2, linear) // the series' only exemplar
	requests.Add(bg, 1, metric.WithAttributes(attribute.String("namespace", "diamond"), attribute.String("result", "error")))
	requests.Add(bg, 7, metric.WithAttributes(attribute.Bool("otel.metric.overflow", true)))

	sent, err := router.Float64Counter("bytes.sent", metric.WithUnit("By"), metric.WithDescription("bytes sent"))
	require.NoError(t, err)
	sent.Add(ctxB, 1.5, metric.WithAttributes(attribute.String("step.name", "linear_1")))
	sent.Add(bg, 0.25, metric.WithAttributes(attribute.String("step.name", "linear_2"), attribute.String("2xx", "yes")))

	depth, err := router.Int64UpDownCounter("queue.depth", metric.WithUnit("{message}"))
	require.NoError(t, err)
	depth.Add(ctxA, 5, metric.WithAttributes(attribute.String("queue", "steps")))
	depth.Add(bg, -2, metric.WithAttributes(attribute.String("queue", "steps")))

	balance, err := router.Float64UpDownCounter("account.balance", metric.WithUnit("s"))
	require.NoError(t, err)
	balance.Add(bg, -1.25)

	util, err := other.Float64Gauge("pool.utilization", metric.WithUnit("1"))
	require.NoError(t, err)
	util.Record(ctxA, 0.75, metric.WithAttributes(attribute.String("pool", "bus")))

	temp, err := other.Int64Gauge("circuit.state")
	require.NoError(t, err)
	// a.b and a_b collide once escaped: one label, values joined.
	temp.Record(bg, 2, metric.WithAttributes(attribute.String("a.b", "y"), attribute.String("a_b", "x"), attribute.Int("n", 4)))

	duration, err := router.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"),
		metric.WithDescription("step duration"), metric.WithExplicitBucketBoundaries(1, 10, 100))
	require.NoError(t, err)
	linearStep := metric.WithAttributes(attribute.String("step_name", "linear_1"))
	duration.Record(ctxA, 0.5, linearStep)
	duration.Record(ctxB, 10, linearStep) // on a bound: the bucket le=10
	duration.Record(bg, 50, linearStep)
	duration.Record(ctxA, 1000, linearStep) // above every bound: +Inf
	duration.Record(bg, 7, metric.WithAttributes(attribute.String("step_name", "linear_2")))

	size, err := other.Int64Histogram("payload.size", metric.WithUnit("By"))
	require.NoError(t, err)
	size.Record(ctxB, 300)
	size.Record(bg, 20000)

	filtered, err := router.Int64Counter("filtered.events")
	require.NoError(t, err)
	filtered.Add(ctxB, 1, metric.WithAttributes(attribute.String("kept", "k"), attribute.String("dropped.attr", "d")))

	_, err = other.Int64ObservableCounter("observed.total.count", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(42, metric.WithAttributes(attribute.String("source", "callback")))
		return nil
	}))
	require.NoError(t, err)
}

// newProvider returns a MeterProvider with the host's ManualReader and a
// Prometheus exporter built as the service builds it.
func newProvider(t *testing.T, cfg prometheus.Config) (*sdkmetric.ManualReader, *prometheus.Exporter, *sdkmetric.MeterProvider) {
	t.Helper()
	exp, err := prometheus.New(cfg, exporters.Settings{})
	require.NoError(t, err)
	manual := sdkmetric.NewManualReader()
	res := resource.NewSchemaless(attribute.String("service.name", "sextant"), attribute.String("service.instance.id", "host-1"),
		attribute.String("service.version", "1.2.3"), attribute.String("deployment.environment", "test"))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(manual),
		sdkmetric.WithReader(exp.Reader()),
		sdkmetric.WithResource(res),
		sdkmetric.WithCardinalityLimit(0),
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "filtered.events"},
			sdkmetric.Stream{AttributeFilter: attribute.NewAllowKeysFilter("kept")})),
	)
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	return manual, exp, mp
}

// TestReadMatchesPrometheus is the key correctness test: for every
// translation strategy, with scope info off and on, a snapshot holds
// exactly the families /metrics serves for the same data: names, types,
// help, label sets, values, buckets and exemplars.
func TestReadMatchesPrometheus(t *testing.T) {
	t.Parallel()
	strategies := []otlptranslator.TranslationStrategyOption{
		otlptranslator.UnderscoreEscapingWithSuffixes,
		otlptranslator.UnderscoreEscapingWithoutSuffixes,
		otlptranslator.NoUTF8EscapingWithSuffixes,
		otlptranslator.NoTranslation,
	}
	for _, strategy := range strategies {
		for _, scopeInfo := range []bool{false, true} {
			name := string(strategy)
			if scopeInfo {
				name += "/scope_info"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cfg := prometheus.NewDefaultConfig()
				cfg.TranslationStrategy = prometheus.TranslationStrategy(strategy)
				cfg.ScopeInfo = scopeInfo
				manual, exp, mp := newProvider(t, *cfg)
				recordAll(t, mp)

				want, err := exp.Gatherer().Gather()
				require.NoError(t, err)
				now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
				snap, err := exporters.Read(context.Background(), manual, exporters.ReadOptions{
					TranslationStrategy: strategy, ScopeInfo: scopeInfo, Now: func() time.Time { return now },
				})
				require.NoError(t, err)
				require.Equal(t, now, snap.Time)
				requireSameFamilies(t, want, snap)
				requireSorted(t, snap)
			})
		}
	}
}

// TestReadMatchesPrometheusRejects records what the exporter rejects or
// reshapes: reserved and colliding label names, values that are not UTF-8,
// exemplar labels it cannot name, reserved scope attributes. The snapshot
// must leave out exactly what /metrics leaves out.
func TestReadMatchesPrometheusRejects(t *testing.T) {
	t.Parallel()
	for _, strategy := range []otlptranslator.TranslationStrategyOption{otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.NoTranslation} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			cfg := prometheus.NewDefaultConfig()
			cfg.TranslationStrategy = prometheus.TranslationStrategy(strategy)
			cfg.ScopeInfo = true
			manual, exp, mp := newProvider(t, *cfg)
			ctx := sampled(t, "0102030405060708090a0b0c0d0e0f10", "0102030405060708")
			meter := mp.Meter("edge", metric.WithInstrumentationAttributes(
				attribute.String("name", "reserved"), attribute.String("team", "core"), attribute.String("team.name", "x")))
			g, err := meter.Int64Gauge("edge.gauge")
			require.NoError(t, err)
			g.Record(ctx, 1, metric.WithAttributes(attribute.String("ok", "1")))
			g.Record(ctx, 2, metric.WithAttributes(attribute.String("__reserved__", "x")))
			g.Record(ctx, 3, metric.WithAttributes(attribute.String("otel_scope_name", "clash")))
			g.Record(ctx, 4, metric.WithAttributes(attribute.String("bad", "\xff\xfe")))
			c, err := meter.Int64Counter("filtered.events") // the view keeps only "kept"
			require.NoError(t, err)
			c.Add(ctx, 1, metric.WithAttributes(attribute.String("kept", "a"), attribute.String("__bad__", "x")))
			c.Add(ctx, 1, metric.WithAttributes(attribute.String("kept", "b"), attribute.String("fine", "y")))

			want, gatherErr := exp.Gatherer().Gather()
			require.Error(t, gatherErr, "the exporter reports what it rejects")
			snap, err := exporters.Read(context.Background(), manual, exporters.ReadOptions{TranslationStrategy: strategy, ScopeInfo: true})
			require.NoError(t, err)
			requireSameFamilies(t, want, snap)
			requireSorted(t, snap)
			require.Len(t, snap.Families, 2)
		})
	}
}

func TestReadDefaultNames(t *testing.T) {
	t.Parallel()
	manual, _, mp := newProvider(t, *prometheus.NewDefaultConfig())
	recordAll(t, mp)
	snap, err := exporters.Read(context.Background(), manual, exporters.ReadOptions{Instance: "override-7"})
	require.NoError(t, err)

	require.Equal(t, "sextant", snap.Resource.ServiceName)
	require.Equal(t, "override-7", snap.Resource.Instance, "the option overrides the resource")
	require.Equal(t, []exporters.Label{{Name: "deployment.environment", Value: "test"}, {Name: "service.version", Value: "1.2.3"}},
		snap.Resource.Attributes, "the rest, sorted, with their OpenTelemetry names")

	names := make([]string, 0, len(snap.Families))
	for _, f := range snap.Families {
		names = append(names, f.PromName)
	}
	require.Equal(t, []string{
		"account_balance_seconds",
		"bytes_sent_total", // the unit word is in the name already
		"circuit_state",
		"filtered_events_total",
		"observed_count_total", // total moves to the end
		"payload_size_bytes",
		"pool_utilization_ratio",
		"queue_depth",
		"tasker_step_execution_duration_milliseconds",
		"tasker_tasks_requests_total",
	}, names)

	requests := family(t, snap, "tasker_tasks_requests_total")
	require.Equal(t, exporters.TypeCounter, requests.Type)
	require.Equal(t, "tasker.tasks.requests.total", requests.Name)
	require.Equal(t, []exporters.Label{{Name: "otel_metric_overflow", Value: "true"}}, requests.Series[2].Labels, "the overflow series keeps its label")
	require.InDelta(t, 7.0, requests.Series[2].Value, 0)
	linear := requests.Series[1]
	require.Equal(t, []exporters.Label{{Name: "namespace", Value: "rust_e2e_linear"}, {Name: "result", Value: "ok"}}, linear.Labels)
	require.InDelta(t, 5.0, linear.Value, 0)
	require.NotNil(t, linear.Exemplar)
	require.Equal(t, "0102030405060708090a0b0c0d0e0f10", linear.Exemplar.TraceID)
	require.Equal(t, "0102030405060708", linear.Exemplar.SpanID)
	require.False(t, linear.Start.IsZero())

	circuit := family(t, snap, "circuit_state")
	require.Equal(t, []exporters.Label{{Name: "a_b", Value: "x;y"}, {Name: "n", Value: "4"}}, circuit.Series[0].Labels)

	depth := family(t, snap, "queue_depth")
	require.Equal(t, exporters.TypeGauge, depth.Type, "an up-down counter is a gauge")
	require.InDelta(t, 3.0, depth.Series[0].Value, 0)
	require.Nil(t, depth.Series[0].Exemplar, "gauges keep no exemplar")
	require.True(t, depth.Series[0].Start.IsZero())

	duration := family(t, snap, "tasker_step_execution_duration_milliseconds")
	require.Equal(t, "ms", duration.Unit)
	h := duration.Series[0].Histogram
	require.Equal(t, uint64(4), h.Count)
	require.InDelta(t, 1060.5, h.Sum, 1e-9)
	require.Equal(t, []float64{1, 10, 100, math.Inf(1)}, bounds(h))
	require.Equal(t, []uint64{1, 2, 3, 4}, counts(h))
	require.Equal(t, "0102030405060708", h.Buckets[0].Exemplar.SpanID)
	require.InDelta(t, 10.0, h.Buckets[1].Exemplar.Value, 0)
	require.Nil(t, h.Buckets[2].Exemplar, "50 was recorded without a sampled span")
	require.InDelta(t, 1000.0, h.Buckets[3].Exemplar.Value, 0)

	filtered := family(t, snap, "filtered_events_total")
	require.Equal(t, []exporters.Label{{Name: "kept", Value: "k"}}, filtered.Series[0].Labels)
	require.Equal(t, []exporters.Label{{Name: "dropped_attr", Value: "d"}}, filtered.Series[0].Exemplar.Labels)
}

func family(t *testing.T, s *exporters.Snapshot, promName string) exporters.Family {
	t.Helper()
	for _, f := range s.Families {
		if f.PromName == promName {
			return f
		}
	}
	require.FailNow(t, "no family "+promName)
	return exporters.Family{}
}

func bounds(h *exporters.Histogram) []float64 {
	out := make([]float64, len(h.Buckets))
	for i, b := range h.Buckets {
		out[i] = b.UpperBound
	}
	return out
}

func counts(h *exporters.Histogram) []uint64 {
	out := make([]uint64, len(h.Buckets))
	for i, b := range h.Buckets {
		out[i] = b.Count
	}
	return out
}

// requireSameFamilies compares a snapshot with what the Prometheus
// registry gathered, family by family, series by series.
func requireSameFamilies(t *testing.T, gathered []*dto.MetricFamily, snap *exporters.Snapshot) {
	t.Helper()
	var want []*dto.MetricFamily
	for _, mf := range gathered {
		if mf.GetName() != otlptranslator.TargetInfoMetricName { // the snapshot's Resource
			want = append(want, mf)
		}
	}
	require.Len(t, snap.Families, len(want), "families: %v", familyNames(snap))
	byName := map[string]exporters.Family{}
	for _, f := range snap.Families {
		byName[f.PromName] = f
	}
	for _, mf := range want {
		f, ok := byName[mf.GetName()]
		require.True(t, ok, "the snapshot lacks %s; it has %v", mf.GetName(), familyNames(snap))
		require.Equal(t, strings.ToLower(mf.GetType().String()), string(f.Type), mf.GetName())
		require.Equal(t, mf.GetHelp(), f.Description, mf.GetName())
		require.Len(t, f.Series, len(mf.GetMetric()), mf.GetName())
		for _, m := range mf.GetMetric() {
			s := findSeries(t, f, m.GetLabel())
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				require.InDelta(t, m.GetCounter().GetValue(), s.Value, 0, mf.GetName())
				requireSameExemplar(t, m.GetCounter().GetExemplar(), s.Exemplar)
			case dto.MetricType_GAUGE:
				require.InDelta(t, m.GetGauge().GetValue(), s.Value, 0, mf.GetName())
				require.Nil(t, s.Exemplar)
			case dto.MetricType_HISTOGRAM:
				requireSameHistogram(t, m.GetHistogram(), s.Histogram)
			default:
				require.FailNow(t, "unexpected type "+mf.GetType().String())
			}
		}
	}
}

func familyNames(s *exporters.Snapshot) []string {
	var out []string
	for _, f := range s.Families {
		out = append(out, f.PromName)
	}
	return out
}

func findSeries(t *testing.T, f exporters.Family, pairs []*dto.LabelPair) exporters.Series {
	t.Helper()
	want := make([]exporters.Label, 0, len(pairs))
	for _, p := range pairs {
		want = append(want, exporters.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	slices.SortFunc(want, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range f.Series {
		if slices.Equal(s.Labels, want) {
			return s
		}
	}
	require.FailNow(t, "series not in the snapshot", "%s%v; the snapshot has %v", f.PromName, want, f.Series)
	return exporters.Series{}
}

func requireSameHistogram(t *testing.T, want *dto.Histogram, got *exporters.Histogram) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.GetSampleCount(), got.Count)
	require.InDelta(t, want.GetSampleSum(), got.Sum, 1e-9)
	last := got.Buckets[len(got.Buckets)-1]
	require.True(t, math.IsInf(last.UpperBound, 1))
	require.Equal(t, got.Count, last.Count)
	// The registry leaves +Inf out unless an exemplar sits there.
	buckets := want.GetBucket()
	if n := len(buckets); n > 0 && math.IsInf(buckets[n-1].GetUpperBound(), 1) {
		requireSameExemplar(t, buckets[n-1].GetExemplar(), last.Exemplar)
		buckets = buckets[:n-1]
	} else {
		require.Nil(t, last.Exemplar)
	}
	require.Len(t, got.Buckets, len(buckets)+1)
	for i, b := range buckets {
		require.InDelta(t, b.GetUpperBound(), got.Buckets[i].UpperBound, 0)
		require.Equal(t, b.GetCumulativeCount(), got.Buckets[i].Count, "le=%v", b.GetUpperBound())
		requireSameExemplar(t, b.GetExemplar(), got.Buckets[i].Exemplar)
	}
}

func requireSameExemplar(t *testing.T, want *dto.Exemplar, got *exporters.Exemplar) {
	t.Helper()
	if want == nil {
		require.Nil(t, got)
		return
	}
	require.NotNil(t, got)
	require.InDelta(t, want.GetValue(), got.Value, 0)
	// Each reader's pipeline keeps its own reservoir and stamps the
	// measurement itself, microseconds apart; FromResourceMetrics's tests
	// check that the time is kept exactly.
	require.WithinDuration(t, want.GetTimestamp().AsTime(), got.Time, time.Minute)
	labels := []exporters.Label{{Name: "span_id", Value: got.SpanID}, {Name: "trace_id", Value: got.TraceID}}
	labels = append(labels, got.Labels...)
	var wantLabels []exporters.Label
	for _, p := range want.GetLabel() {
		wantLabels = append(wantLabels, exporters.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	require.ElementsMatch(t, wantLabels, labels)
}

// requireSorted checks the snapshot's order: families by PromName, series
// by labels, labels by name.
func requireSorted(t *testing.T, s *exporters.Snapshot) {
	t.Helper()
	require.True(t, slices.IsSortedFunc(s.Families, func(a, b exporters.Family) int { return strings.Compare(a.PromName, b.PromName) }))
	for _, f := range s.Families {
		for i, series := range f.Series {
			require.True(t, slices.IsSortedFunc(series.Labels, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) }))
			if i > 0 {
				require.Negative(t, labelsKey(f.Series[i-1].Labels).compare(labelsKey(series.Labels)), f.PromName)
			}
		}
	}
}

type labelsKey []exporters.Label

func (a labelsKey) compare(b labelsKey) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	t.Run("not registered", func(t *testing.T) {
		t.Parallel()
		_, err := exporters.Read(context.Background(), sdkmetric.NewManualReader(), exporters.ReadOptions{})
		require.ErrorIs(t, err, sdkmetric.ErrReaderNotRegistered)
	})
	t.Run("shut down", func(t *testing.T) {
		t.Parallel()
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		require.NoError(t, mp.Shutdown(context.Background()))
		s, err := exporters.Read(context.Background(), r, exporters.ReadOptions{})
		require.ErrorIs(t, err, sdkmetric.ErrReaderShutdown)
		require.Nil(t, s)
	})
	t.Run("a callback fails", func(t *testing.T) {
		t.Parallel()
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
		c, err := mp.Meter("m").Int64Counter("ok")
		require.NoError(t, err)
		c.Add(context.Background(), 1)
		_, err = mp.Meter("m").Int64ObservableGauge("bad", metric.WithInt64Callback(func(context.Context, metric.Int64Observer) error {
			return errCallback
		}))
		require.NoError(t, err)
		s, err := exporters.Read(context.Background(), r, exporters.ReadOptions{})
		require.ErrorIs(t, err, errCallback)
		require.NotNil(t, s, "what was collected is kept")
		require.Equal(t, "ok_total", s.Families[0].PromName)
	})
}

var errCallback = errors.New("callback failed")

// point returns an attribute set of string attributes given as key, value
// pairs.
func point(kv ...string) attribute.Set {
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return attribute.NewSet(attrs...)
}

func scope(name string, metrics ...metricdata.Metrics) metricdata.ScopeMetrics {
	return metricdata.ScopeMetrics{Metrics: metrics, Scope: instrumentation.Scope{Name: name}}
}

func TestFromResourceMetrics(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	traceA, _ := hex.DecodeString("0102030405060708090a0b0c0d0e0f10")
	spanA, _ := hex.DecodeString("0102030405060708")
	ex := func(v float64, at time.Duration) metricdata.Exemplar[float64] {
		return metricdata.Exemplar[float64]{Value: v, Time: t0.Add(at), TraceID: traceA, SpanID: spanA}
	}
	counter := func(name string, exemplars ...metricdata.Exemplar[float64]) metricdata.Metrics {
		return metricdata.Metrics{Name: name, Data: metricdata.Sum[float64]{IsMonotonic: true, Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.DataPoint[float64]{{Attributes: point("k", "v"), StartTime: t0, Time: t0, Value: 1, Exemplars: exemplars}}}}
	}
	gauge := func(name string, points ...attribute.Set) metricdata.Metrics {
		g := metricdata.Gauge[int64]{}
		for i, p := range points {
			g.DataPoints = append(g.DataPoints, metricdata.DataPoint[int64]{Attributes: p, Time: t0, Value: int64(i + 1)})
		}
		return metricdata.Metrics{Name: name, Data: g}
	}
	histogram := func(bounds []float64, counts []uint64, exemplars ...metricdata.Exemplar[float64]) metricdata.Metrics {
		var total uint64
		for _, c := range counts {
			total += c
		}
		return metricdata.Metrics{Name: "h", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{{Bounds: bounds, BucketCounts: counts, Count: total, Sum: 1, StartTime: t0, Time: t0, Exemplars: exemplars}}}}
	}
	tests := []struct {
		name  string
		rm    *metricdata.ResourceMetrics
		opts  exporters.ReadOptions
		check func(t *testing.T, s *exporters.Snapshot)
	}{
		{
			name: "nil resource metrics",
			rm:   nil,
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Empty(t, s.Families)
				require.Equal(t, exporters.Resource{}, s.Resource)
			},
		},
		{
			name: "the resource's instance unless overridden",
			rm: &metricdata.ResourceMetrics{Resource: resource.NewSchemaless(attribute.String("service.instance.id", "from-resource"),
				attribute.String("z.last", "1"), attribute.String("a.first", "2"), attribute.String("service.name", "svc"))},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Equal(t, exporters.Resource{ServiceName: "svc", Instance: "from-resource",
					Attributes: []exporters.Label{{Name: "a.first", Value: "2"}, {Name: "z.last", Value: "1"}}}, s.Resource)
			},
		},
		{
			name: "a counter keeps its latest exemplar, not its last",
			rm:   &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s", counter("c", ex(1, 2*time.Second), ex(2, time.Second)))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				e := s.Families[0].Series[0].Exemplar
				require.InDelta(t, 1.0, e.Value, 0)
				require.Equal(t, "0102030405060708090a0b0c0d0e0f10", e.TraceID)
				require.Equal(t, t0.Add(2*time.Second), e.Time)
			},
		},
		{
			name: "exemplars without ids have empty ids",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				counter("c", metricdata.Exemplar[float64]{Value: 1, Time: t0}))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Equal(t, &exporters.Exemplar{Value: 1, Time: t0}, s.Families[0].Series[0].Exemplar)
			},
		},
		{
			name: "histogram exemplars by bucket, latest wins",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				histogram([]float64{1, 10}, []uint64{2, 2, 2},
					ex(-5, 0), ex(1, time.Second), // both le=1; the later wins
					ex(10, 0),                                          // on the bound: le=10
					ex(math.NaN(), time.Second), ex(11, 2*time.Second), // above every bound: +Inf
				))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				h := s.Families[0].Series[0].Histogram
				require.Equal(t, []float64{1, 10, math.Inf(1)}, bounds(h))
				require.Equal(t, []uint64{2, 4, 6}, counts(h))
				require.InDelta(t, 1.0, h.Buckets[0].Exemplar.Value, 0)
				require.InDelta(t, 10.0, h.Buckets[1].Exemplar.Value, 0)
				require.InDelta(t, 11.0, h.Buckets[2].Exemplar.Value, 0)
			},
		},
		{
			name: "an explicit +Inf bound is not doubled",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				histogram([]float64{1, math.Inf(1)}, []uint64{1, 2, 0}))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				h := s.Families[0].Series[0].Histogram
				require.Equal(t, []float64{1, math.Inf(1)}, bounds(h))
				require.Equal(t, []uint64{1, 3}, counts(h))
			},
		},
		{
			name: "the first type in scope order wins a name",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
				scope("b", gauge("x_total", point("from", "b"))),
				scope("a", counter("x")),
			}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Len(t, s.Families, 1)
				require.Equal(t, exporters.TypeCounter, s.Families[0].Type)
				require.Equal(t, "x", s.Families[0].Name)
			},
		},
		{
			name: "one family from two scopes, one series per label set",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
				scope("b", gauge("g", point("k", "1"), point("k", "2"))),
				scope("a", gauge("g", point("k", "2"), point("k", "3"))),
			}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Len(t, s.Families, 1)
				var vals []string
				for _, series := range s.Families[0].Series {
					vals = append(vals, series.Labels[0].Value)
				}
				require.Equal(t, []string{"1", "2", "3"}, vals)
			},
		},
		{
			name: "series the exporter rejects are left out",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				gauge("g", point("__reserved__", "x"), point("bad", "\xff"), point("ok", "1")))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Len(t, s.Families[0].Series, 1)
				require.Equal(t, []exporters.Label{{Name: "ok", Value: "1"}}, s.Families[0].Series[0].Labels)
			},
		},
		{
			name: "a family with no valid series is left out",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				gauge("g", point("__reserved__", "x")))}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Empty(t, s.Families)
			},
		},
		{
			name: "exponential histograms, summaries and the bridge are left out",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
				scope("s",
					metricdata.Metrics{Name: "exp", Data: metricdata.ExponentialHistogram[float64]{
						DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{Count: 1}}}},
					metricdata.Metrics{Name: "sum", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{Count: 1}}}},
				),
				scope("go.opentelemetry.io/contrib/bridges/prometheus", gauge("bridged", point())),
			}},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Empty(t, s.Families)
			},
		},
		{
			name: "int sums without suffixes",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{scope("s",
				metricdata.Metrics{Name: "jobs.completed", Unit: "ms", Data: metricdata.Sum[int64]{IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{{Value: 9, Attributes: point("step.name", "a")}}}})}},
			opts: exporters.ReadOptions{TranslationStrategy: otlptranslator.UnderscoreEscapingWithoutSuffixes},
			check: func(t *testing.T, s *exporters.Snapshot) {
				require.Equal(t, "jobs_completed", s.Families[0].PromName)
				require.Equal(t, []exporters.Label{{Name: "step_name", Value: "a"}}, s.Families[0].Series[0].Labels)
				require.InDelta(t, 9.0, s.Families[0].Series[0].Value, 0)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := exporters.FromResourceMetrics(tt.rm, tt.opts)
			requireSorted(t, s)
			tt.check(t, s)
		})
	}
}

// BenchmarkFromResourceMetrics converts 1,000 counter series and 100
// histogram series of 15 buckets, about what a busy sextant holds.
func BenchmarkFromResourceMetrics(b *testing.B) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r), sdkmetric.WithCardinalityLimit(0))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	meter := mp.Meter("bench")
	c, _ := meter.Int64Counter("tasker.tasks.requests")
	h, _ := meter.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"))
	for i := range 1000 {
		attrs := metric.WithAttributes(attribute.String("namespace", "ns"+strconv.Itoa(i%10)), attribute.Int("step", i))
		c.Add(context.Background(), 1, attrs)
		if i%10 == 0 {
			h.Record(context.Background(), float64(i), attrs)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = exporters.FromResourceMetrics(&rm, exporters.ReadOptions{})
	}
}

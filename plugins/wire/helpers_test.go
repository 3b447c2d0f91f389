package wire_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Times of the hand-built snapshots, in time.Local as Snapshot gives them
// back (and as time.Now stamps them).
var (
	readTime    = time.Unix(1795600800, 123456789)
	startTime   = time.Unix(1795597200, 0)
	sampledTime = time.Unix(1795600800, 120000001)
)

// l builds labels from name, value pairs.
func l(kv ...string) []exporters.Label {
	out := make([]exporters.Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, exporters.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// histogram builds a histogram from bounds (+Inf added) and cumulative
// counts, one more than bounds; exemplars go to the buckets of their index.
func histogram(sum float64, bounds []float64, counts []uint64, exemplars map[int]*exporters.Exemplar) *exporters.Histogram {
	h := &exporters.Histogram{Sum: sum, Count: counts[len(counts)-1], Buckets: make([]exporters.Bucket, len(counts))}
	for i := range counts {
		upper := math.Inf(1)
		if i < len(bounds) {
			upper = bounds[i]
		}
		h.Buckets[i] = exporters.Bucket{UpperBound: upper, Count: counts[i], Exemplar: exemplars[i]}
	}
	return h
}

// smallSnapshot is the golden test's snapshot: one family of each type,
// labels, resource attributes and exemplars.
func smallSnapshot() *exporters.Snapshot {
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "host-a/4242",
			Attributes: l("deployment.environment", "test", "service.version", "1.2.3")},
		Time: readTime,
		Families: []exporters.Family{
			{
				Name: "tasker.memory.usage", PromName: "tasker_memory_usage_bytes", Type: exporters.TypeGauge,
				Unit: "By", Description: "Resident memory of the worker pool.",
				Series: []exporters.Series{{Labels: l("pool", "a"), Value: 1073741824, Time: sampledTime}},
			},
			{
				Name: "tasker.step.execution.duration", PromName: "tasker_step_execution_duration_milliseconds",
				Type: exporters.TypeHistogram, Unit: "ms", Description: "Time a worker spent executing one step.",
				Series: []exporters.Series{{
					Labels: l("namespace", "billing", "result", "error"),
					Histogram: histogram(1234.5, []float64{5, 250}, []uint64{1, 3, 4}, map[int]*exporters.Exemplar{
						1: {Value: 20, Time: startTime.Add(400 * time.Millisecond), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
							SpanID: "00f067aa0ba902b7", Labels: l("attempt", "2")},
						2: {Value: 1014.25, Time: startTime.Add(600 * time.Millisecond)},
					}),
					Start: startTime, Time: sampledTime,
				}},
			},
			{
				Name: "tasker.tasks.requests", PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
				Description: "Task requests received by the orchestrator.",
				Series: []exporters.Series{
					{Labels: l("namespace", "billing", "task_type", "export"), Value: 1, Start: startTime, Time: sampledTime},
					{
						Labels: l("namespace", "default", "task_type", "import"), Value: 3, Start: startTime, Time: sampledTime,
						Exemplar: &exporters.Exemplar{Value: 1, Time: startTime.Add(700 * time.Millisecond),
							TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331"},
					},
				},
			},
		},
	}
}

// generate returns a snapshot of families × perFamily series, a third of
// the families each counters, gauges and histograms (10 bounds and +Inf),
// every series with three labels and every tenth with exemplars.
func generate(families, perFamily int) *exporters.Snapshot {
	bounds := []float64{0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500}
	s := &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "bench/1", Attributes: l("host.name", "bench")},
		Time:     readTime,
		Families: make([]exporters.Family, families),
	}
	for fi := range families {
		f := &s.Families[fi]
		switch fi % 3 {
		case 0:
			*f = exporters.Family{Name: fmt.Sprintf("bench.counter.%03d", fi), PromName: fmt.Sprintf("bench_counter_%03d_total", fi),
				Type: exporters.TypeCounter, Unit: "1", Description: "A generated counter."}
		case 1:
			*f = exporters.Family{Name: fmt.Sprintf("bench.gauge.%03d", fi), PromName: fmt.Sprintf("bench_gauge_%03d_bytes", fi),
				Type: exporters.TypeGauge, Unit: "By", Description: "A generated gauge."}
		default:
			*f = exporters.Family{Name: fmt.Sprintf("bench.histogram.%03d", fi), PromName: fmt.Sprintf("bench_histogram_%03d_milliseconds", fi),
				Type: exporters.TypeHistogram, Unit: "ms", Description: "A generated histogram."}
		}
		f.Series = make([]exporters.Series, perFamily)
		for j := range perFamily {
			i := fi*perFamily + j
			sr := &f.Series[j]
			sr.Labels = l("namespace", fmt.Sprintf("ns-%d", i%8), "task", fmt.Sprintf("task-%07d", i), "worker", fmt.Sprintf("w-%d", i%16))
			sr.Time = sampledTime
			var ex *exporters.Exemplar
			if i%10 == 0 {
				ex = &exporters.Exemplar{Value: 1, Time: startTime.Add(42 * time.Millisecond),
					TraceID: fmt.Sprintf("%032x", i+1), SpanID: fmt.Sprintf("%016x", i+1)}
			}
			switch f.Type {
			case exporters.TypeCounter:
				sr.Start, sr.Value, sr.Exemplar = startTime, float64(i*7+1), ex
			case exporters.TypeGauge:
				sr.Value = float64(i)*0.25 - 10
			default:
				sr.Start = startTime
				count := uint64(i % 50)
				counts := make([]uint64, len(bounds)+1)
				for k := range counts {
					counts[k] = count * uint64(k+1) / uint64(len(counts))
				}
				var exs map[int]*exporters.Exemplar
				if ex != nil {
					ex.Value = 12345 // above every bound: +Inf
					exs = map[int]*exporters.Exemplar{len(bounds): ex}
				}
				sr.Histogram = histogram(float64(count)*37.5, bounds, counts, exs)
			}
		}
	}
	return s
}

// sampled returns a context carrying a sampled span, so that the
// trace-based exemplar filter keeps measurements made with it.
func sampled(t testing.TB, traceID, spanID string) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex(spanID)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

// sdkSnapshot records counters, gauges and histograms, with labels and
// exemplars, on a MeterProvider with a ManualReader as the host's, and
// returns the snapshot exporters.FromResourceMetrics builds of them, its
// times stripped of their monotonic clock readings (which no wire carries).
func sdkSnapshot(t testing.TB) *exporters.Snapshot {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	res := resource.NewSchemaless(attribute.String("service.name", "sextant"), attribute.String("service.instance.id", "host-1/42"),
		attribute.String("service.version", "1.2.3"), attribute.String("deployment.environment", "test"))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(res),
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter),
		// The dropped attribute becomes the exemplar's label.
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "filtered.events"},
			sdkmetric.Stream{AttributeFilter: attribute.NewAllowKeysFilter("kept")})),
	)
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	bg := context.Background()
	ctxA := sampled(t, "0102030405060708090a0b0c0d0e0f10", "0102030405060708")
	ctxB := sampled(t, "1112131415161718191a1b1c1d1e1f20", "1112131415161718")
	m := mp.Meter("github.com/sextant-telemetry/sextant/router")

	requests, err := m.Int64Counter("tasker.tasks.requests", metric.WithDescription("Task requests."))
	require.NoError(t, err)
	linear := metric.WithAttributes(attribute.String("namespace", "linear"), attribute.String("result", "ok"))
	requests.Add(bg, 3, linear)
	requests.Add(ctxA, 2, linear)
	requests.Add(bg, 1, metric.WithAttributes(attribute.String("namespace", "diamond"), attribute.String("result", "error")))

	filtered, err := m.Float64Counter("filtered.events", metric.WithUnit("1"))
	require.NoError(t, err)
	filtered.Add(ctxB, 0.5, metric.WithAttributes(attribute.String("kept", "k"), attribute.String("dropped", "d")))

	depth, err := m.Int64UpDownCounter("queue.depth", metric.WithUnit("{message}"))
	require.NoError(t, err)
	depth.Add(bg, 5, metric.WithAttributes(attribute.String("queue", "steps")))
	depth.Add(bg, -2, metric.WithAttributes(attribute.String("queue", "steps")))

	util, err := m.Float64Gauge("pool.utilization", metric.WithUnit("1"), metric.WithDescription("Pool use."))
	require.NoError(t, err)
	util.Record(ctxA, 0.75, metric.WithAttributes(attribute.String("pool", "bus")))
	util.Record(bg, 0.25) // no labels

	duration, err := m.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"),
		metric.WithDescription("Step duration."), metric.WithExplicitBucketBoundaries(1, 10, 100))
	require.NoError(t, err)
	step := metric.WithAttributes(attribute.String("step_name", "linear_1"))
	duration.Record(ctxA, 0.5, step)
	duration.Record(ctxB, 10, step) // on a bound: the bucket le=10
	duration.Record(bg, 50, step)
	duration.Record(ctxA, 1000, step) // above every bound: +Inf
	duration.Record(bg, 7, metric.WithAttributes(attribute.String("step_name", "linear_2")))

	size, err := m.Int64Histogram("payload.size", metric.WithUnit("By"))
	require.NoError(t, err)
	size.Record(ctxB, 300)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(bg, &rm))
	s := exporters.FromResourceMetrics(&rm, exporters.ReadOptions{Now: func() time.Time { return readTime }})
	stripMonotonic(s)
	return s
}

// stripMonotonic drops the monotonic clock readings of s's series and
// exemplar times.
func stripMonotonic(s *exporters.Snapshot) {
	s.Time = s.Time.Round(0)
	for i := range s.Families {
		for j := range s.Families[i].Series {
			sr := &s.Families[i].Series[j]
			sr.Start, sr.Time = sr.Start.Round(0), sr.Time.Round(0)
			if sr.Exemplar != nil {
				sr.Exemplar.Time = sr.Exemplar.Time.Round(0)
			}
			if sr.Histogram != nil {
				for k := range sr.Histogram.Buckets {
					if e := sr.Histogram.Buckets[k].Exemplar; e != nil {
						e.Time = e.Time.Round(0)
					}
				}
			}
		}
	}
}

// requireSame checks that got equals want as reflect.DeepEqual does, but
// with floats equal when their bits are (so NaN equals NaN, and -0 differs
// from 0), which DeepEqual cannot say of NaN.
func requireSame(t testing.TB, want, got *exporters.Snapshot) {
	t.Helper()
	if !same(reflect.ValueOf(want), reflect.ValueOf(got)) {
		require.Equal(t, want, got) // for the diff
		t.Fatalf("snapshots differ in a float's bits:\nwant %#v\ngot  %#v", want, got)
	}
}

// same is reflect.DeepEqual with floats compared by their bits and times
// with ==. It handles the types a snapshot holds.
func same(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == reflect.TypeFor[time.Time]() {
		return a.Interface().(time.Time) == b.Interface().(time.Time)
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.String:
		return a.String() == b.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !same(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		panic("same: unexpected kind " + a.Kind().String())
	}
}

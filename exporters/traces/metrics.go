package traces

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the self-metrics.
const MeterName = "github.com/sextant-telemetry/sextant/exporters/traces"

// The self-metrics. The counters and gauges are observed from the same
// atomics Stats reads, so the two always agree.
const (
	// MetricSpansExported counts spans the exporter accepted.
	MetricSpansExported = "sextant.traces.spans.exported"
	// MetricSpansDropped counts dropped spans, with attribute reason (see
	// DropReason). Every reason is reported from the start, at 0.
	MetricSpansDropped = "sextant.traces.spans.dropped"
	// MetricQueueLength is Stats.Queued: spans waiting or being sent.
	MetricQueueLength = "sextant.traces.queue.length"
	// MetricQueueCapacity is queue_size.
	MetricQueueCapacity = "sextant.traces.queue.capacity"
	// MetricExportDuration is how long each export call took, in seconds,
	// with attribute result=ok|error.
	MetricExportDuration = "sextant.traces.export.duration"
)

// selfMetrics holds the instruments. A nil *selfMetrics records nothing.
type selfMetrics struct {
	duration metric.Float64Histogram
	ok, fail metric.MeasurementOption
	reg      metric.Registration
}

func newSelfMetrics(mp metric.MeterProvider, p *Pipeline) (*selfMetrics, error) {
	if mp == nil {
		return nil, nil
	}
	meter := mp.Meter(MeterName)
	exported, err1 := meter.Int64ObservableCounter(MetricSpansExported,
		metric.WithUnit("{span}"), metric.WithDescription("Spans the trace exporter accepted."))
	dropped, err2 := meter.Int64ObservableCounter(MetricSpansDropped,
		metric.WithUnit("{span}"), metric.WithDescription("Spans dropped before export, by reason: queue_full, export_failed or shutdown."))
	length, err3 := meter.Int64ObservableGauge(MetricQueueLength,
		metric.WithUnit("{span}"), metric.WithDescription("Spans queued or being exported."))
	capacity, err4 := meter.Int64ObservableGauge(MetricQueueCapacity,
		metric.WithUnit("{span}"), metric.WithDescription("Spans the export queue holds before it drops (queue_size)."))
	duration, err5 := meter.Float64Histogram(MetricExportDuration,
		metric.WithUnit("s"), metric.WithDescription("Time taken by each span export call, retries included, by result."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}

	reasons := make([]metric.ObserveOption, len(dropReasons))
	for i, r := range dropReasons {
		reasons[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", string(r))))
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(exported, p.exported.Load())
		for i := range dropReasons {
			o.ObserveInt64(dropped, p.dropped[i].Load(), reasons[i])
		}
		o.ObserveInt64(length, p.pending.Load())
		o.ObserveInt64(capacity, int64(cap(p.queue)))
		return nil
	}, exported, dropped, length, capacity)
	if err != nil {
		return nil, err
	}
	return &selfMetrics{
		duration: duration,
		ok:       metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
		fail:     metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error"))),
		reg:      reg,
	}, nil
}

// recordExport records one export call. Recording ignores cancellation, so
// it uses a background context.
func (m *selfMetrics) recordExport(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := m.ok
	if err != nil {
		result = m.fail
	}
	m.duration.Record(context.Background(), d.Seconds(), result)
}

// unregister stops the observations; the counters stay readable by Stats.
func (m *selfMetrics) unregister() error {
	if m == nil {
		return nil
	}
	return m.reg.Unregister()
}

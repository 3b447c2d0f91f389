package host

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the host's self-metrics.
const MeterName = "github.com/sextant-telemetry/sextant/plugins/host"

// The self-metrics, each with attribute plugin=<name>. The counters and
// gauges are observed from the same state Status reads, so the two agree.
// On /metrics they are sextant_plugins_up, sextant_plugins_exports_total,
// sextant_plugins_export_duration_seconds, sextant_plugins_restarts_total,
// sextant_plugins_breaker_state and sextant_plugins_callbacks_dropped_total.
const (
	// MetricUp is 1 while the plugin's process is serving, else 0.
	MetricUp = "sextant.plugins.up"
	// MetricExports counts exports by result: ok, error (the plugin was
	// called and failed) or rejected (not running, or the circuit open).
	MetricExports = "sextant.plugins.exports"
	// MetricExportDuration is how long each call to a plugin's Export
	// took, in seconds.
	MetricExportDuration = "sextant.plugins.export.duration"
	// MetricRestarts counts restarts by reason: exited, hung or
	// start_failed (the previous attempt to start failed).
	MetricRestarts = "sextant.plugins.restarts"
	// MetricBreakerState is the circuit breaker: 0 closed, 1 half-open,
	// 2 open, as sextant_targets_breaker_state.
	MetricBreakerState = "sextant.plugins.breaker.state"
	// MetricCallbacksDropped counts lifecycle callbacks not delivered: the
	// plugin's queue was full, or the plugin was not running.
	MetricCallbacksDropped = "sextant.plugins.callbacks.dropped"
)

// Export results, the values of MetricExports' result attribute.
const (
	resultOK       = "ok"
	resultError    = "error"
	resultRejected = "rejected"
)

// Restart reasons, the values of MetricRestarts' reason attribute.
const (
	reasonExited      = "exited"
	reasonHung        = "hung"
	reasonStartFailed = "start_failed"
)

var reasons = [...]string{reasonExited, reasonHung, reasonStartFailed}

func reasonIndex(reason string) int {
	for i, r := range reasons {
		if r == reason {
			return i
		}
	}
	return 0
}

// selfMetrics holds the instruments. A nil *selfMetrics records nothing.
type selfMetrics struct {
	duration metric.Float64Histogram
	reg      metric.Registration
}

func newSelfMetrics(mp metric.MeterProvider, h *Host) (*selfMetrics, error) {
	if mp == nil {
		return nil, nil
	}
	m := mp.Meter(MeterName)
	up, err1 := m.Int64ObservableGauge(MetricUp,
		metric.WithDescription("Whether a plugin's process is serving: 1 yes, 0 no (starting, restarting, stopped)."))
	exports, err2 := m.Int64ObservableCounter(MetricExports, metric.WithUnit("{export}"),
		metric.WithDescription("Exports through a plugin by result: ok, error, or rejected (not running, or its circuit open)."))
	duration, err3 := m.Float64Histogram(MetricExportDuration, metric.WithUnit("s"),
		metric.WithDescription("Time taken by each call to a plugin's Export, failed ones included."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	restarts, err4 := m.Int64ObservableCounter(MetricRestarts, metric.WithUnit("{restart}"),
		metric.WithDescription("Plugin restarts by reason: exited, hung, or start_failed (the previous start failed)."))
	breaker, err5 := m.Int64ObservableGauge(MetricBreakerState,
		metric.WithDescription("A plugin's circuit breaker: 0 closed, 1 half-open, 2 open."))
	dropped, err6 := m.Int64ObservableCounter(MetricCallbacksDropped, metric.WithUnit("{callback}"),
		metric.WithDescription("Lifecycle callbacks not delivered to a plugin: its queue was full or it was not running."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range h.pluginList() {
			c := p.counters()
			name := attribute.String("plugin", c.name)
			o.ObserveInt64(up, c.up, metric.WithAttributes(name))
			o.ObserveInt64(exports, c.ok, metric.WithAttributes(name, attribute.String("result", resultOK)))
			o.ObserveInt64(exports, c.failed, metric.WithAttributes(name, attribute.String("result", resultError)))
			o.ObserveInt64(exports, c.rejected, metric.WithAttributes(name, attribute.String("result", resultRejected)))
			for i, r := range reasons {
				o.ObserveInt64(restarts, c.restarts[i], metric.WithAttributes(name, attribute.String("reason", r)))
			}
			o.ObserveInt64(breaker, c.breaker, metric.WithAttributes(name))
			o.ObserveInt64(dropped, c.dropped, metric.WithAttributes(name))
		}
		return nil
	}, up, exports, restarts, breaker, dropped)
	if err != nil {
		return nil, err
	}
	return &selfMetrics{duration: duration, reg: reg}, nil
}

// recordExport records one call's duration. Recording ignores
// cancellation, so it uses a background context.
func (m *selfMetrics) recordExport(name string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Record(context.Background(), d.Seconds(), metric.WithAttributes(attribute.String("plugin", name)))
}

// unregister stops the observations.
func (m *selfMetrics) unregister() error {
	if m == nil {
		return nil
	}
	return m.reg.Unregister()
}

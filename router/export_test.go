package router

import (
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
)

// SetClock replaces the router's clock, which times open spans' TTL.
func SetClock(r *Router, now func() time.Time) { r.now = now }

// SweepSpans ends the open spans past their TTL, as the sweeper does.
func SweepSpans(r *Router) { r.tr.sweep() }

// OpenSpanContext returns the span context of an open span, or an invalid one.
func OpenSpanContext(r *Router, name string, cid events.ID, key string) trace.SpanContext {
	sh := r.tr.shard(cid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if os := sh.open[spanKey{name: name, trace: cid, key: key}]; os != nil {
		return os.sc
	}
	return trace.SpanContext{}
}

// KeepTrace is the sampler's decision for a root span.
var KeepTrace = keepTrace

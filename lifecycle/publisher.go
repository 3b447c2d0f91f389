package lifecycle

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Publisher is where components send events; *bus.Publisher satisfies it.
//
// The Engine calls Publish concurrently from its orchestration goroutine and
// from every worker, so implementations must be safe for concurrent use. The
// context bounds how long Publish may block (for example under bus
// backpressure); it is cancelled when the Engine stops for good. The Engine
// never touches e after handing it over, so the implementation may keep it.
// Nobody retries: the Engine counts a returned error and carries on.
type Publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// emitter builds catalog events with the injected clock and publishes them
// fire-and-forget.
type emitter struct {
	pub    Publisher
	corr   events.ID // the engine's, for events about no task
	now    func() time.Time
	log    *slog.Logger
	failed atomic.Uint64
}

// emit publishes the event name of the task correlated by corr, stamped at.
// attrs is handed over to the event.
func (em *emitter) emit(ctx context.Context, at time.Time, name string, corr events.ID, attrs []events.Attr) {
	version := uint16(1)
	if s, ok := events.Lookup(name); ok {
		version = s.Version
	}
	e := events.Event{
		Name:          name,
		ID:            events.NewIDAt(at),
		Time:          at,
		CorrelationID: corr,
		SchemaVersion: version,
		Attrs:         attrs,
	}
	if em.log.Enabled(ctx, slog.LevelInfo) { // the demo's default discards: no lookup
		if l, ok := logged[name]; ok && em.log.Enabled(ctx, l.level) {
			if name == events.StepFailed && l.level < slog.LevelError && !retryable(attrs) {
				l.level = slog.LevelError // a permanent failure: the step is over
			}
			em.logEvent(ctx, l.level, l.msg, &e)
		}
	}
	if err := em.pub.Publish(ctx, e); err != nil {
		// Warn once so a broken bus is visible without flooding the log; the
		// counter has the full story.
		level := slog.LevelDebug
		if em.failed.Add(1) == 1 {
			level = slog.LevelWarn
		}
		em.log.Log(ctx, level, "lifecycle: publish failed; continuing",
			slog.String("event_name", name), slog.String("correlation_id", corr.String()), slog.Any("error", err))
	}
}

// logged are the events the engine also logs, at seed 003's levels:
// lifecycle state transitions at info, retries and performance warnings at
// warn, failures at error. Other events are only published.
var logged = map[string]struct {
	level slog.Level
	msg   string
}{
	events.TaskStateTransitioned:              {slog.LevelInfo, "task state transitioned"},
	events.StepRetryRequested:                 {slog.LevelWarn, "step attempt failed; retrying"},
	events.PerformanceSlowOperation:           {slog.LevelWarn, "lifecycle operation slower than its threshold"},
	events.MemorySpikeDetected:                {slog.LevelWarn, "heap grew beyond its threshold during a lifecycle operation"},
	events.TaskFailed:                         {slog.LevelError, "task failed"},
	events.ObservabilityStepMaxRetriesReached: {slog.LevelError, "step failed on its last allowed attempt"},
	// A retryable failure is followed by step.retry_requested (warn); a
	// permanent one is raised to error.
	events.StepFailed: {slog.LevelInfo, "step attempt failed"},
}

// retryable reads step.failed's retryable field.
func retryable(attrs []events.Attr) bool {
	for _, a := range attrs {
		if a.Key == "retryable" {
			return a.Value.Bool()
		}
	}
	return false
}

// logEvent logs e with its name, id and correlation id and its fields,
// typed: one record per event, searchable by correlation_id.
func (em *emitter) logEvent(ctx context.Context, level slog.Level, msg string, e *events.Event) {
	attrs := make([]slog.Attr, 0, len(e.Attrs)+3)
	attrs = append(attrs, slog.String("event", e.Name), slog.String("event_id", e.ID.String()),
		slog.String("correlation_id", e.CorrelationID.String()))
	for _, a := range e.Attrs {
		switch a.Value.Kind() {
		case events.KindInt:
			attrs = append(attrs, slog.Int64(a.Key, a.Value.Int64()))
		case events.KindFloat:
			attrs = append(attrs, slog.Float64(a.Key, a.Value.Float64()))
		case events.KindBool:
			attrs = append(attrs, slog.Bool(a.Key, a.Value.Bool()))
		default:
			attrs = append(attrs, slog.String(a.Key, a.Value.String()))
		}
	}
	em.log.LogAttrs(ctx, level, msg, attrs...)
}

// ms converts a duration to the float milliseconds of duration_ms.
func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

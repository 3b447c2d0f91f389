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

// ms converts a duration to the float milliseconds of duration_ms.
func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// Package emit is scanned by TestScanEmitters; it is never compiled.
package emit

import (
	"context"

	"github.com/sextant-telemetry/sextant/events"
)

type emitter struct{}

func (emitter) emit(context.Context, string, ...events.Attr) {}

type publisher interface {
	Publish(context.Context, events.Event) error
}

func run(ctx context.Context, em emitter, pub publisher, failed bool) {
	publish := func(name string) {}
	_ = events.TaskCancelled // referenced, not emitted
	em.emit(ctx, events.TaskCompleted, events.String("k", "v"))
	publish(events.TaskFailed)
	_ = pub.Publish(ctx, events.Event{Name: events.TaskCompleted})
	_ = events.New(events.QueueStats, events.NewID())
	var name string
	name = events.StepClaimed
	if failed {
		name = events.StepFailed
	}
	em.emit(ctx, name)
	_ = dbEvent(events.DBPoolStats)
	em.emit(ctx, "step.complted")
	e := events.Event{Name: events.ResilienceRequestRejected}
	publish(events.Bogus)
	_, _ = events.Lookup(events.TaskCancelled)  // not an emitting call
	em.emit(ctx, "not an event name", "queue")  // literals of another shape
	em.emit(ctx, events.FieldCorrelationID)     // not an event-name constant
	log(events.WorkerStopped, "task.cancelled") // not an emitting call
	_ = e
}

func dbEvent(string) events.Event { return events.Event{} }
func log(...string)               {}

var initial = events.Event{Name: events.TaskCancelRequested}

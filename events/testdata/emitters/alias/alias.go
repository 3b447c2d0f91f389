package alias

import (
	ev "github.com/sextant-telemetry/sextant/events"
)

func start(p interface{ PublishEvent(ev.Event) }) {
	p.PublishEvent(ev.Event{
		Name: ev.WorkerStarted})
	p.PublishEvent(ev.New("step.enqueued", ev.NewID()))
}

package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// The engine's bounded channels, as named in resilience.channel_sampled and
// resilience.channel_full (the mpsc_channel_* series). Their names are fixed
// so that a configuration can create the series before the first sample.
const (
	// ChannelOrchestrationCommand is the inbox through which Submit hands
	// tasks to orchestration; its component is ComponentOrchestration.
	ChannelOrchestrationCommand = "orchestration_command"
	// ChannelCompletion is the channel workers send step results to
	// orchestration on, the reference system's FFI completion channel; its
	// component is ComponentWorker. Its circuit breaker's component has the
	// same name.
	ChannelCompletion = "ffi_completion"
	// ComponentOrchestration and ComponentWorker own the channels.
	ComponentOrchestration = "orchestration"
	ComponentWorker        = "worker"
)

// QueueChannel returns the channel name of namespace's worker queue,
// worker_<namespace>_queue, also the queue of observability.queue.depth. Its
// component is ComponentWorker.
func QueueChannel(namespace string) string { return "worker_" + namespace + "_queue" }

// sampleLoop is the sampler goroutine: it publishes the live-state gauges at
// once and then every SampleInterval until the engine stops. The final
// sample, after every goroutine has stopped, is the engine's.
func (e *Engine) sampleLoop(ctx context.Context) {
	e.sample(ctx)
	tick := time.NewTicker(e.cfg.SampleInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			e.sample(ctx)
		}
	}
}

// sample publishes one reading of every gauge for every known label value,
// zeros included, so that the series exist and fall back to 0.
func (e *Engine) sample(ctx context.Context) {
	em := e.em
	now := em.now()
	for i, st := range activeStates {
		em.emit(ctx, now, events.ObservabilityTaskActiveCount, em.corr, []events.Attr{
			events.String("task_state", string(st)), events.Int("count", e.taskCounts[i].Load()),
		})
	}
	for _, q := range e.queues {
		em.emit(ctx, now, events.ObservabilityStepReadyCount, em.corr, []events.Attr{
			events.String("namespace", q.namespace), events.Int("count", max(q.ready.Load(), 0)),
		})
		for _, ht := range q.types {
			em.emit(ctx, now, events.ObservabilityStepActiveExecutions, em.corr, []events.Attr{
				events.String("namespace", q.namespace), events.String("handler_type", ht),
				events.Int("count", q.running[ht].Load()),
			})
		}
		depth, oldest := q.depth()
		age := 0.0
		if depth > 0 {
			age = max(now.Sub(oldest).Seconds(), 0)
		}
		em.emit(ctx, now, events.ObservabilityQueueDepth, em.corr, []events.Attr{
			events.String("namespace", q.namespace), events.String("queue", q.channel),
			events.Int("depth", int64(depth)), events.Int("capacity", int64(len(q.buf))),
			events.Float("age_seconds", age),
		})
	}
	e.sampleChannel(ctx, now, ChannelOrchestrationCommand, ComponentOrchestration, len(e.inbox), cap(e.inbox))
	e.sampleChannel(ctx, now, ChannelCompletion, ComponentWorker, len(e.results), cap(e.results))
	for _, q := range e.queues {
		depth, _ := q.depth()
		e.sampleChannel(ctx, now, q.channel, ComponentWorker, depth, len(q.buf))
	}
}

func (e *Engine) sampleChannel(ctx context.Context, now time.Time, channel, component string, length, capacity int) {
	usage := 0.0
	if capacity > 0 {
		usage = float64(length) / float64(capacity) * 100
	}
	e.em.emit(ctx, now, events.ResilienceChannelSampled, e.em.corr, []events.Attr{
		events.String("channel", channel), events.String("component", component),
		events.Int("capacity", int64(capacity)), events.Int("length", int64(length)),
		events.Float("usage_percent", usage),
	})
}

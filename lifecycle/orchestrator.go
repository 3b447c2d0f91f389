package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// orchestrator is the orchestration goroutine: it owns every task's state and
// runs the initializer, enqueuer, result processor and finalizer in turn, so
// none of them needs a lock. Retry backoffs are entries of a heap it owns,
// waited for with one timer.
type orchestrator struct {
	em          *emitter
	initializer *taskInitializer
	enqueuer    *stepEnqueuer
	processor   *resultProcessor
	finalizer   *taskFinalizer
	states      *taskStates
	retries     *retryHeap

	inbox   <-chan *taskRun
	results <-chan *stepRun
	cancels *mailbox
	stop    <-chan struct{}
	live    map[*taskRun]struct{}
	// maxBacklog is how many ready steps may wait for queue room before
	// orchestration stops taking new tasks, so that Submit feels the
	// backpressure and memory stays bounded.
	maxBacklog int
	// gate, a test hook, is received from before each result is processed.
	gate <-chan struct{}
}

func (o *orchestrator) run(ctx context.Context) {
	defer o.abort()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		o.enqueuer.flush(ctx)
		inbox := o.inbox
		if o.enqueuer.backlog >= o.maxBacklog {
			inbox = nil // results keep flowing and make room
		}
		var due <-chan time.Time
		if next, ok := o.retries.next(); ok {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-o.stop:
			return
		case t := <-inbox:
			o.live[t] = struct{}{}
			select {
			case <-t.accepted: // Submit has published observability.task.enqueue
			case <-o.stop:
				return
			}
			for _, s := range o.initializer.initialize(ctx, t) {
				o.enqueuer.stage(s)
			}
			if reason := t.handle.cancelReason(); reason != "" {
				o.cancel(ctx, t, reason)
			}
		case r := <-o.results:
			select {
			case <-r.ack: // the worker has published step.result_submitted
			case <-o.stop:
				return
			}
			if o.gate != nil {
				select {
				case <-o.gate:
				case <-o.stop:
					return
				}
			}
			if o.processor.process(ctx, r) {
				o.finalize(ctx, r.task)
			}
		case <-o.cancels.wake:
			for _, t := range o.cancels.take() {
				o.cancel(ctx, t, t.handle.cancelReason())
			}
		case <-due:
			for _, r := range o.retries.popDue(time.Now()) {
				o.processor.retryDue(ctx, r)
			}
		}
	}
}

func (o *orchestrator) finalize(ctx context.Context, t *taskRun) {
	delete(o.live, t)
	o.finalizer.finalize(ctx, t)
}

// cancel cancels a live task that may still start steps; requests for
// tasks not yet initialized are honoured when they arrive, the others
// (finished, failing, already cancelled) are ignored.
func (o *orchestrator) cancel(ctx context.Context, t *taskRun, reason string) {
	if _, ok := o.live[t]; !ok || !t.open() || t.state == TaskStatePending {
		return
	}
	attrs := append(t.attrs(1), events.String("reason", reason))
	o.em.emit(ctx, o.em.now(), events.TaskCancelRequested, t.handle.corr, attrs)
	t.cancel = reason
	o.processor.abandon(ctx, t, true)
	if o.processor.done(t) {
		o.finalize(ctx, t)
	}
}

// abort finishes the handles of tasks cut off by a hard stop, including those
// still in the inbox. It publishes nothing: the tasks did not reach a final
// state.
func (o *orchestrator) abort() {
	for t := range o.live {
		o.states.leave(t)
		abortTask(t)
	}
	for {
		select {
		case t := <-o.inbox:
			o.states.leave(t)
			abortTask(t)
		default:
			o.enqueuer.reset()
			return
		}
	}
}

func abortTask(t *taskRun) {
	res := t.handle.baseResult()
	res.Err = fmt.Errorf("lifecycle: task %s stopped before finishing: %w", t.uuid, ErrShutdown)
	t.handle.finish(res)
}

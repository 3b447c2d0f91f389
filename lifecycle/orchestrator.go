package lifecycle

import (
	"context"
	"fmt"
)

// orchestrator is the orchestration goroutine: it owns every task's state and
// runs the initializer, enqueuer, result processor and finalizer in turn, so
// none of them needs a lock.
type orchestrator struct {
	initializer *taskInitializer
	enqueuer    *stepEnqueuer
	processor   *resultProcessor
	finalizer   *taskFinalizer

	inbox   <-chan *taskRun
	results <-chan *stepRun
	stop    <-chan struct{}
	live    map[*taskRun]struct{}
	// maxBacklog is how many ready steps may wait for queue room before
	// orchestration stops taking new tasks, so that Submit feels the
	// backpressure and memory stays bounded.
	maxBacklog int
}

func (o *orchestrator) run(ctx context.Context) {
	defer o.abort()
	for {
		o.enqueuer.flush(ctx)
		inbox := o.inbox
		if o.enqueuer.backlog >= o.maxBacklog {
			inbox = nil // results keep flowing and make room
		}
		select {
		case <-o.stop:
			return
		case t := <-inbox:
			o.live[t] = struct{}{}
			for _, s := range o.initializer.initialize(ctx, t) {
				o.enqueuer.stage(s)
			}
		case r := <-o.results:
			select {
			case <-r.ack: // the worker has published step.result_submitted
			case <-o.stop:
				return
			}
			ready, finish := o.processor.process(ctx, r)
			for _, s := range ready {
				o.enqueuer.stage(s)
			}
			if finish {
				delete(o.live, r.task)
				o.finalizer.finalize(ctx, r.task)
			}
		}
	}
}

// abort finishes the handles of tasks cut off by a hard stop, including those
// still in the inbox. It publishes nothing: the tasks did not reach a final
// state.
func (o *orchestrator) abort() {
	for t := range o.live {
		abortTask(t)
	}
	for {
		select {
		case t := <-o.inbox:
			abortTask(t)
		default:
			return
		}
	}
}

func abortTask(t *taskRun) {
	res := t.handle.baseResult()
	res.Err = fmt.Errorf("lifecycle: task %s stopped before finishing: %w", t.uuid, ErrShutdown)
	t.handle.finish(res)
}

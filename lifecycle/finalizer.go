package lifecycle

import (
	"context"
	"fmt"

	"github.com/sextant-telemetry/sextant/events"
)

// Final states of task.finalized.
const (
	finalComplete = "complete"
	finalError    = "error"
)

// taskFinalizer is the TaskFinalizer: it checks a finished task's result,
// publishes task.finalized and then task.completed or task.failed, and only
// then completes the task's handle.
type taskFinalizer struct {
	em     *emitter
	onDone func(TaskResult) // the engine's bookkeeping
}

func (tf *taskFinalizer) finalize(ctx context.Context, t *taskRun) {
	start := tf.em.now()
	res := t.handle.baseResult()
	res.Expected = t.expected
	if t.failure == nil {
		res.Value = t.steps[t.plan.final()].value
		if t.plan.wf.Expect != nil && res.Value != t.expected {
			t.failure = &TaskError{
				Type: ErrorTypeResultMismatch,
				Err:  fmt.Errorf("result %d, want %d", res.Value, t.expected),
			}
		}
	}
	state := finalComplete
	if t.failure != nil {
		state = finalError
		res.Err = t.failure
	}
	end := tf.em.now()
	res.Duration = end.Sub(t.handle.submitted)

	attrs := append(t.attrs(2),
		events.String("final_state", state),
		events.Float("duration_ms", ms(end.Sub(start))))
	tf.em.emit(ctx, end, events.TaskFinalized, t.handle.corr, attrs)
	if t.failure == nil {
		attrs = append(t.attrs(1), events.Int("step_count", int64(len(t.steps))))
		tf.em.emit(ctx, tf.em.now(), events.TaskCompleted, t.handle.corr, attrs)
	} else {
		attrs = append(t.attrs(2),
			events.String("error_type", t.failure.Type),
			events.String("error_message", t.failure.Error()))
		tf.em.emit(ctx, tf.em.now(), events.TaskFailed, t.handle.corr, attrs)
	}
	t.handle.finish(res)
	tf.onDone(res)
}

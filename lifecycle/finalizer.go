package lifecycle

import (
	"context"
	"fmt"

	"github.com/sextant-telemetry/sextant/events"
)

// taskFinalizer is the TaskFinalizer: it checks a finished task's result,
// moves it through finalizing to its final state, publishes
// observability.task.finalize, task.finalized and then task.completed,
// task.failed or task.cancelled, and only then completes the task's handle.
type taskFinalizer struct {
	em      *emitter
	states  *taskStates
	onDone  func(TaskResult) // the engine's counting, before the handle is done
	release func()           // the engine's outstanding count, after it
	perf    *perfMonitor
}

func (tf *taskFinalizer) finalize(ctx context.Context, t *taskRun) {
	moved := tf.states.move(ctx, t, TaskStateFinalizing)
	start := tf.em.now()
	if moved.IsZero() { // already finalizing: cannot happen, but stay correct
		moved = start
	}
	heap0 := tf.perf.begin(moved)
	res := t.handle.baseResult()
	res.Expected = t.expected
	if t.open() {
		res.Value = t.steps[t.plan.final()].value
		if t.plan.wf.Expect != nil && res.Value != t.expected {
			t.failure = &TaskError{
				Type: ErrorTypeResultMismatch,
				Err:  fmt.Errorf("result %d, want %d", res.Value, t.expected),
			}
		}
	}
	state := TaskStateComplete
	switch {
	case t.cancel != "":
		state = TaskStateCancelled
		res.Value = 0
		res.Err = fmt.Errorf("lifecycle: task %s: %w (%s)", t.uuid, ErrCancelled, t.cancel)
	case t.failure != nil:
		state = TaskStateError
		res.Value = 0
		res.Err = t.failure
	}
	res.State = state
	end := tf.em.now()
	res.Duration = end.Sub(t.handle.submitted)

	attrs := append(t.attrs(5),
		events.String("final_state", string(state)),
		events.Int("step_count", int64(len(t.steps))),
		events.Int("completed_steps", int64(t.succeeded)),
		events.Int("failed_steps", int64(t.failed)),
		events.Float("duration_ms", ms(res.Duration)))
	tf.em.emit(ctx, end, events.ObservabilityTaskFinalize, t.handle.corr, attrs)
	tf.states.move(ctx, t, state)

	attrs = append(t.attrs(2),
		events.String("final_state", string(state)),
		events.Float("duration_ms", ms(end.Sub(start))))
	finalized := tf.em.now()
	tf.em.emit(ctx, finalized, events.TaskFinalized, t.handle.corr, attrs)
	// Checked before the final event, which ends the task's span, so that
	// a slow finalization is an event of that span.
	tf.perf.task(ctx, opFinalize, t, moved, finalized, heap0)
	switch state {
	case TaskStateComplete:
		attrs = append(t.attrs(1), events.Int("step_count", int64(len(t.steps))))
		tf.em.emit(ctx, tf.em.now(), events.TaskCompleted, t.handle.corr, attrs)
	case TaskStateCancelled:
		attrs = append(t.attrs(2),
			events.String("reason", t.cancel),
			events.Int("completed_steps", int64(t.succeeded)))
		tf.em.emit(ctx, tf.em.now(), events.TaskCancelled, t.handle.corr, attrs)
	default:
		attrs = append(t.attrs(2),
			events.String("error_type", t.failure.Type),
			events.String("error_message", t.failure.Error()))
		tf.em.emit(ctx, tf.em.now(), events.TaskFailed, t.handle.corr, attrs)
	}
	tf.onDone(res)
	t.handle.finish(res)
	tf.release()
}

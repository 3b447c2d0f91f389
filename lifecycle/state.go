package lifecycle

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// taskStates moves tasks between states: it publishes
// task.state_transitioned and keeps the per-state counts the sampler reads.
// Only orchestration moves tasks, except into pending, which Submit counts.
type taskStates struct {
	em     *emitter
	counts *[len(activeStates)]atomic.Int64
}

// move moves t to state to and returns the time of its
// task.state_transitioned, or the zero time when t already is in to.
func (ts *taskStates) move(ctx context.Context, t *taskRun, to TaskState) time.Time {
	from := t.state
	if from == to {
		return time.Time{}
	}
	if i := activeIndex(from); i >= 0 {
		ts.counts[i].Add(-1)
	}
	if i := activeIndex(to); i >= 0 {
		ts.counts[i].Add(1)
	}
	t.state = to
	attrs := append(t.attrs(2),
		events.String("from_state", string(from)),
		events.String("to_state", string(to)))
	at := ts.em.now()
	ts.em.emit(ctx, at, events.TaskStateTransitioned, t.handle.corr, attrs)
	return at
}

// leave uncounts t without an event, for tasks cut off by a hard stop.
func (ts *taskStates) leave(t *taskRun) {
	if i := activeIndex(t.state); i >= 0 {
		ts.counts[i].Add(-1)
	}
	t.state = ""
}

// counters are the engine's Stats, updated from every goroutine.
type counters struct {
	tasksSubmitted, tasksCompleted, tasksFailed, tasksCancelled atomic.Uint64
	stepsEnqueued, stepsClaimed, stepAttempts                   atomic.Uint64
	stepsSucceeded, stepsFailed, stepRetries, maxRetriesReached atomic.Uint64
	resultsSubmitted, resultsProcessed                          atomic.Uint64
	slowSends, completionRejections, channelFull                atomic.Uint64
}

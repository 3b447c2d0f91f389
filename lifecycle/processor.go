package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Result types of step.result_processed.
const (
	resultSuccess = "success"
	resultError   = "error"
)

// Reasons of workflow.no_viable_steps and observability.step.skip.
const (
	reasonStepsInProgress      = "steps_in_progress"
	reasonAwaitingDependencies = "awaiting_dependencies"
	reasonRetryBackoff         = "retry_backoff"
	reasonTaskFailed           = "task_failed"
	reasonTaskCancelled        = "task_cancelled"
)

// resultProcessor is the ResultProcessor: it records a step's result in its
// task and decides what happens next: dependents become ready, a failed
// attempt is retried after a backoff, or the task fails.
type resultProcessor struct {
	em       *emitter
	stats    *counters
	pol      *policy
	enqueuer *stepEnqueuer
	queues   map[string]*queue
	retries  *retryHeap
	states   *taskStates
	finder   *viableFinder
	perf     *perfMonitor
}

// process applies r to its task, publishing step.result_processed and what
// follows from it, and stages the steps that became ready. It reports
// whether the task has nothing left running or waiting and must be
// finalized.
func (rp *resultProcessor) process(ctx context.Context, r *stepRun) (finish bool) {
	start := rp.em.now()
	heap0 := rp.perf.begin(start)
	finish = rp.apply(ctx, r, start)
	if rp.perf != nil {
		// The whole operation, publishing and staging included: a slow
		// bus or a slow search for ready steps must show here.
		rp.perf.step(ctx, opProcessResult, r, start, rp.em.now(), heap0)
	}
	return finish
}

// apply is process's work on r, which arrived at start.
func (rp *resultProcessor) apply(ctx context.Context, r *stepRun, start time.Time) bool {
	t := r.task
	st := &t.steps[r.index]
	t.active--
	rp.stats.resultsProcessed.Add(1)
	if r.err == nil {
		st.value, st.status = r.value, stepSucceeded
		t.succeeded++
		rp.emitProcessed(ctx, r, resultSuccess, start)
		if t.open() {
			for _, d := range t.plan.dependents[r.index] {
				t.steps[d].waiting--
			}
			ready := rp.finder.find(ctx, t, t.plan.dependents[r.index])
			for _, s := range ready {
				rp.enqueuer.stage(s)
			}
			if len(ready) == 0 && t.succeeded < len(t.steps) {
				if t.active == 0 && t.retrying > 0 {
					rp.states.move(ctx, t, TaskStateWaitingForRetry)
				}
				rp.noViable(ctx, t)
			}
		}
		return rp.done(t)
	}

	rp.emitProcessed(ctx, r, resultError, start)
	switch {
	case !t.open():
		// The task is failing or cancelled: no retry, whatever the worker said.
		st.status = stepFailed
		t.failed++
	case r.retryable:
		rp.scheduleRetry(ctx, r)
		if t.active == 0 {
			rp.states.move(ctx, t, TaskStateWaitingForRetry)
		}
		rp.noViable(ctx, t)
	default:
		st.status = stepFailed
		t.failed++
		if r.attempt >= r.maxAttempts && !r.err.permanent() {
			rp.stats.maxRetriesReached.Add(1)
			attrs := append(r.attrs(3),
				events.Int("attempt", int64(r.attempt)),
				events.Int("max_attempts", int64(r.maxAttempts)),
				events.String("error_type", r.err.Type))
			rp.em.emit(ctx, rp.em.now(), events.ObservabilityStepMaxRetriesReached, r.corr, attrs)
		}
		t.failure = r.err
		rp.abandon(ctx, t, false)
	}
	return rp.done(t)
}

// emitProcessed publishes step.result_processed.
func (rp *resultProcessor) emitProcessed(ctx context.Context, r *stepRun, resultType string, start time.Time) {
	end := rp.em.now()
	attrs := append(r.attrs(2),
		events.String("result_type", resultType),
		events.Float("duration_ms", ms(end.Sub(start))))
	rp.em.emit(ctx, end, events.StepResultProcessed, r.corr, attrs)
}

// done reports whether t has nothing running or waiting and either every
// step succeeded or the task failed or was cancelled.
func (rp *resultProcessor) done(t *taskRun) bool {
	return t.active == 0 && t.retrying == 0 && (!t.open() || t.succeeded == len(t.steps))
}

// scheduleRetry publishes step.retry_requested and observability.step.backoff
// and puts the step's next attempt on the retry heap.
func (rp *resultProcessor) scheduleRetry(ctx context.Context, r *stepRun) {
	t := r.task
	st := &t.steps[r.index]
	backoff := rp.pol.backoff(r.attempt, &st.rng)
	st.status = stepRetry
	t.retrying++
	rp.retries.add(retry{due: time.Now().Add(backoff), task: t, step: r.index})
	rp.stats.stepRetries.Add(1)
	next := int64(r.attempt + 1)
	attrs := append(r.attrs(4),
		events.Int("attempt", next),
		events.Int("max_attempts", int64(r.maxAttempts)),
		events.String("error_type", r.err.Type),
		events.Float("backoff_ms", ms(backoff)))
	rp.em.emit(ctx, rp.em.now(), events.StepRetryRequested, r.corr, attrs)
	attrs = append(r.attrs(3),
		events.Int("attempt", next),
		events.Float("backoff_ms", ms(backoff)),
		events.String("backoff_type", backoffTypeExponential))
	rp.em.emit(ctx, rp.em.now(), events.ObservabilityStepBackoff, r.corr, attrs)
}

// retryDue stages the next attempt of a retry whose backoff is over, unless
// its task failed or was cancelled meanwhile.
func (rp *resultProcessor) retryDue(ctx context.Context, due retry) {
	t := due.task
	st := &t.steps[due.step]
	if st.status != stepRetry || !t.open() {
		return
	}
	t.retrying--
	rp.enqueuer.stage(t.newStepRun(due.step, st.attempt+1, rp.pol))
	rp.states.move(ctx, t, TaskStateStepsInProcess)
}

// noViable publishes workflow.no_viable_steps for an unfinished task that a
// result left with nothing new to run.
func (rp *resultProcessor) noViable(ctx context.Context, t *taskRun) {
	reason := reasonAwaitingDependencies
	switch {
	case t.active > 0:
		reason = reasonStepsInProgress
	case t.retrying > 0:
		reason = reasonRetryBackoff
	}
	attrs := append(t.attrs(1), events.String("reason", reason))
	rp.em.emit(ctx, rp.em.now(), events.WorkflowNoViableSteps, t.handle.corr, attrs)
}

// abandon settles the steps of a task that failed or was cancelled and will
// start no more steps. Ready steps not yet on a queue, and for a
// cancellation those queued but not claimed, are withdrawn; with the steps
// waiting for a retry they get step.cancelled (cancellation only) and
// observability.step.skip, as do the steps that never became ready. Running
// steps finish.
func (rp *resultProcessor) abandon(ctx context.Context, t *taskRun, cancelled bool) {
	withdrawn := rp.enqueuer.discard(t)
	if cancelled {
		withdrawn = append(withdrawn, rp.queues[t.handle.namespace].remove(t)...)
	}
	t.active -= len(withdrawn)
	for _, s := range withdrawn {
		t.steps[s.index].status = stepStaged
	}
	reason := reasonTaskFailed
	if cancelled {
		reason = reasonTaskCancelled
	}
	for i := range t.steps {
		st := &t.steps[i]
		switch st.status {
		case stepRetry:
			t.retrying--
		case stepStaged, stepWaiting:
		default:
			continue
		}
		if cancelled && st.status != stepWaiting {
			attrs := append(t.stepAttrs(i, 1), events.String("reason", reasonTaskCancelled))
			rp.em.emit(ctx, rp.em.now(), events.StepCancelled, t.handle.corr, attrs)
		}
		st.status = stepSkipped
		attrs := append(t.stepAttrs(i, 1), events.String("reason", reason))
		rp.em.emit(ctx, rp.em.now(), events.ObservabilityStepSkip, t.handle.corr, attrs)
	}
}

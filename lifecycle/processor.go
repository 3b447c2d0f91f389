package lifecycle

import (
	"context"

	"github.com/sextant-telemetry/sextant/events"
)

// Result types of step.result_processed.
const (
	resultSuccess = "success"
	resultError   = "error"
)

// resultProcessor is the ResultProcessor: it records a step's result in its
// task and decides what happens next.
type resultProcessor struct {
	em       *emitter
	enqueuer *stepEnqueuer
}

// process applies r to its task and publishes step.result_processed. It
// returns the steps that became ready, or finish=true when the task has
// nothing left running and must be finalized.
func (rp *resultProcessor) process(ctx context.Context, r *stepRun) (ready []*stepRun, finish bool) {
	start := rp.em.now()
	t := r.task
	st := &t.steps[r.index]
	t.active--
	resultType := resultSuccess
	if r.err != nil {
		resultType = resultError
		if t.failure == nil {
			t.failure = r.err
			// No retries: the task is failing, so its ready steps that are
			// not on a queue yet never will be.
			t.active -= rp.enqueuer.discard(t)
		}
	} else {
		st.value = r.value
		t.succeeded++
		if t.failure == nil {
			for _, d := range t.plan.dependents[r.index] {
				if t.steps[d].waiting--; t.steps[d].waiting == 0 {
					ready = append(ready, t.newStepRun(d))
				}
			}
		}
	}
	finish = t.active == 0 && (t.failure != nil || t.succeeded == len(t.steps))
	end := rp.em.now()

	attrs := append(r.attrs(2),
		events.String("result_type", resultType),
		events.Float("duration_ms", ms(end.Sub(start))))
	rp.em.emit(ctx, end, events.StepResultProcessed, r.corr, attrs)
	return ready, finish
}

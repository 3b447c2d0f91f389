package lifecycle

import (
	"context"
	"math/rand/v2"

	"github.com/sextant-telemetry/sextant/events"
)

// taskInitializer is the TaskInitializer: it turns an arriving request into a
// task with its steps.
type taskInitializer struct {
	em       *emitter
	rng      *rand.Rand
	failRate float64
}

// initialize publishes task.initialize_requested, creates t's steps (drawing
// their injected failures), publishes task.initialized and returns the
// task's root steps, which are ready at once.
func (ti *taskInitializer) initialize(ctx context.Context, t *taskRun) []*stepRun {
	wf := &t.plan.wf
	ti.em.emit(ctx, ti.em.now(), events.TaskInitializeRequested, t.handle.corr, t.attrs(0))

	start := ti.em.now()
	t.steps = make([]stepState, len(wf.Steps))
	for i := range t.steps {
		t.steps[i] = stepState{
			uuid:    events.NewIDAt(start).String(),
			waiting: len(t.plan.deps[i]),
			// No draw at rate 0, so the default costs nothing.
			fail: ti.failRate > 0 && ti.rng.Float64() < ti.failRate,
		}
	}
	ready := make([]*stepRun, len(t.plan.roots))
	for j, i := range t.plan.roots {
		ready[j] = t.newStepRun(i)
	}
	end := ti.em.now()

	attrs := append(t.attrs(2),
		events.Int("step_count", int64(len(wf.Steps))),
		events.Float("duration_ms", ms(end.Sub(start))))
	ti.em.emit(ctx, end, events.TaskInitialized, t.handle.corr, attrs)
	return ready
}

package lifecycle

import (
	"context"
	"math/rand/v2"

	"github.com/sextant-telemetry/sextant/events"
)

// taskInitializer is the TaskInitializer: it turns an arriving request into a
// task with its steps.
type taskInitializer struct {
	em     *emitter
	rng    *rand.Rand
	pol    *policy
	states *taskStates
	finder *viableFinder
	perf   *perfMonitor
}

// initialize publishes task.initialize_requested, moves t to initializing,
// creates its steps, publishes task.initialized, looks for its ready steps
// (the root steps) and moves it to steps_in_process. It returns the ready
// steps.
func (ti *taskInitializer) initialize(ctx context.Context, t *taskRun) []*stepRun {
	wf := &t.plan.wf
	opStart := ti.em.now()
	heap0 := ti.perf.begin(opStart)
	ti.em.emit(ctx, opStart, events.TaskInitializeRequested, t.handle.corr, t.attrs(0))
	ti.states.move(ctx, t, TaskStateInitializing)

	start := ti.em.now()
	// One draw per task, in arrival order; each step's own stream derives
	// from it, so the workers' timing cannot change who fails.
	t.seed = ti.rng.Uint64()
	t.steps = make([]stepState, len(wf.Steps))
	for i := range t.steps {
		t.steps[i] = stepState{
			uuid:    events.NewIDAt(start).String(),
			waiting: len(t.plan.deps[i]),
			rng:     *rand.NewPCG(t.seed, uint64(i)),
		}
	}
	end := ti.em.now()
	attrs := append(t.attrs(2),
		events.Int("step_count", int64(len(wf.Steps))),
		events.Float("duration_ms", ms(end.Sub(start))))
	ti.em.emit(ctx, end, events.TaskInitialized, t.handle.corr, attrs)

	ready := ti.finder.find(ctx, t, t.plan.roots)
	// The move always happens (initializing → steps_in_process), so its
	// time ends the operation without another clock reading.
	moved := ti.states.move(ctx, t, TaskStateStepsInProcess)
	ti.perf.task(ctx, opInitialize, t, opStart, moved, heap0)
	return ready
}

// viableFinder is orchestration's search for ready steps; it publishes
// observability.step.find_viable and, when it finds some,
// workflow.viable_steps_discovered.
type viableFinder struct {
	em  *emitter
	pol *policy
}

// find returns new attempt-1 runs of candidates whose dependencies have all
// succeeded.
func (vf *viableFinder) find(ctx context.Context, t *taskRun, candidates []int) []*stepRun {
	start := vf.em.now()
	var ready []*stepRun
	for _, i := range candidates {
		if t.steps[i].waiting == 0 && t.steps[i].status == stepWaiting {
			ready = append(ready, t.newStepRun(i, 1, vf.pol))
		}
	}
	end := vf.em.now()
	attrs := append(t.attrs(2),
		events.Int("viable_count", int64(len(ready))),
		events.Float("duration_ms", ms(end.Sub(start))))
	vf.em.emit(ctx, end, events.ObservabilityStepFindViable, t.handle.corr, attrs)
	if len(ready) > 0 {
		attrs = append(t.attrs(1), events.Int("viable_count", int64(len(ready))))
		vf.em.emit(ctx, vf.em.now(), events.WorkflowViableStepsDiscovered, t.handle.corr, attrs)
	}
	return ready
}

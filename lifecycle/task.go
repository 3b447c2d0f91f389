package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// TaskRequest asks the engine to run one task.
type TaskRequest struct {
	// Workflow is the task type, e.g. mathematical_sequence.
	Workflow string
	// Namespace must be the workflow's namespace; empty means that one.
	Namespace string
	// Input is the task's input, checked by the workflow's Expect.
	Input int64
	// CorrelationID is carried by every event of the task; zero means a
	// fresh UUIDv7.
	CorrelationID events.ID
}

// Error types: the low-cardinality error_type of step.failed and task.failed.
const (
	ErrorTypeHandler        = "handler_error"
	ErrorTypePanic          = "handler_panic"
	ErrorTypeResultMismatch = "result_mismatch"
)

// TaskError is why a task failed.
type TaskError struct {
	// Type is the error_type published with step.failed and task.failed.
	Type string
	// Step is the failed step's name; empty for a task-level failure such as
	// a result mismatch.
	Step string
	// Err is the underlying error.
	Err error
}

func (e *TaskError) Error() string {
	if e.Step == "" {
		return e.Type + ": " + e.Err.Error()
	}
	return "step " + e.Step + ": " + e.Type + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *TaskError) Unwrap() error { return e.Err }

// TaskResult is the outcome of one task.
type TaskResult struct {
	// TaskUUID and CorrelationID identify the task and its events.
	TaskUUID, CorrelationID events.ID
	// Workflow and Namespace are the task's type and namespace.
	Workflow, Namespace string
	// Input is the task's input.
	Input int64
	// Value is the last step's result; 0 when it did not succeed.
	Value int64
	// Expected is what the workflow's Expect computed; 0 without Expect.
	Expected int64
	// Err is nil when the task completed. Otherwise it is a *TaskError, or
	// wraps ErrShutdown when the engine stopped before the task finished.
	Err error
	// Duration runs from Submit to finalization.
	Duration time.Duration
}

// TaskHandle refers to a submitted task. Its methods are safe for concurrent use.
type TaskHandle struct {
	id, corr   events.ID
	workflow   string
	namespace  string
	input      int64
	submitted  time.Time
	done       chan struct{}
	engineDone <-chan struct{}
	result     TaskResult // written once, before done is closed
}

// ID returns the task's UUID, the task_uuid of its events.
func (h *TaskHandle) ID() events.ID { return h.id }

// CorrelationID returns the correlation id of the task's events.
func (h *TaskHandle) CorrelationID() events.ID { return h.corr }

// Done is closed when the task has finished and all its events have been
// published.
func (h *TaskHandle) Done() <-chan struct{} { return h.done }

// Wait waits until the task has finished or ctx is done. The returned error
// is the task's own (result.Err, nil when it completed), ctx.Err(), or
// ErrShutdown when the engine stopped without finishing the task.
func (h *TaskHandle) Wait(ctx context.Context) (TaskResult, error) {
	select {
	case <-h.done:
		return h.result, h.result.Err
	case <-ctx.Done():
		return TaskResult{}, ctx.Err()
	case <-h.engineDone:
		select {
		case <-h.done:
			return h.result, h.result.Err
		default:
			return TaskResult{}, fmt.Errorf("lifecycle: task %s: %w", h.id, ErrShutdown)
		}
	}
}

func (h *TaskHandle) finish(r TaskResult) {
	h.result = r
	close(h.done)
}

// baseResult returns the handle's part of a result.
func (h *TaskHandle) baseResult() TaskResult {
	return TaskResult{
		TaskUUID: h.id, CorrelationID: h.corr,
		Workflow: h.workflow, Namespace: h.namespace, Input: h.input,
	}
}

// taskRun is one task's state. The orchestration goroutine owns it: workers
// carry a pointer in stepRun but never read through it.
type taskRun struct {
	handle    *TaskHandle
	plan      *plan
	uuid      string // handle.id as text, formatted once
	expected  int64
	steps     []stepState
	active    int // staged, queued or running steps
	succeeded int
	failure   *TaskError
}

type stepState struct {
	uuid    string
	waiting int // dependencies not yet succeeded
	value   int64
	fail    bool // injected failure, drawn at initialisation
}

// stepRun carries one step to a worker and its result back. Orchestration
// fills the request half before enqueueing it and does not touch it until the
// result returns; the worker fills the result half. Channels and the queue's
// mutex order the hand-overs.
type stepRun struct {
	task      *taskRun // orchestration's; workers don't read it
	index     int
	corr      events.ID
	taskUUID  string
	stepUUID  string
	namespace string
	name      string
	handler   StepHandler
	in        StepInput
	fail      bool

	// Filled by the worker.
	value int64
	err   *TaskError
	ack   chan struct{} // the worker signals here once step.result_submitted is published
}

// newStepRun builds the message for step i, copying its dependencies' results.
func (t *taskRun) newStepRun(i int) *stepRun {
	deps := t.plan.deps[i]
	s := &stepRun{
		task:      t,
		index:     i,
		corr:      t.handle.corr,
		taskUUID:  t.uuid,
		stepUUID:  t.steps[i].uuid,
		namespace: t.handle.namespace,
		name:      t.plan.wf.Steps[i].Name,
		handler:   t.plan.wf.Steps[i].Handler,
		in:        StepInput{Input: t.handle.input},
		fail:      t.steps[i].fail,
	}
	if len(deps) > 0 {
		s.in.Deps = make([]int64, len(deps))
		for j, d := range deps {
			s.in.Deps[j] = t.steps[d].value
		}
	}
	t.active++
	return s
}

// attrs returns the attributes every step event carries, with room for n more.
func (s *stepRun) attrs(n int) []events.Attr {
	a := make([]events.Attr, 4, 4+n)
	a[0] = events.String("task_uuid", s.taskUUID)
	a[1] = events.String("step_uuid", s.stepUUID)
	a[2] = events.String("namespace", s.namespace)
	a[3] = events.String("step_name", s.name)
	return a
}

// attrs returns the attributes every task event carries, with room for n more.
func (t *taskRun) attrs(n int) []events.Attr {
	a := make([]events.Attr, 3, 3+n)
	a[0] = events.String("task_uuid", t.uuid)
	a[1] = events.String("task_type", t.plan.wf.Name)
	a[2] = events.String("namespace", t.handle.namespace)
	return a
}

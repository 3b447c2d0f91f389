package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
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
	// ErrorTypeHandler: the handler returned an error. Retryable unless the
	// error wraps ErrPermanent.
	ErrorTypeHandler = "handler_error"
	// ErrorTypeTimeout: the handler's error wraps context.DeadlineExceeded,
	// or FailRate injected a timeout. Retryable.
	ErrorTypeTimeout = "timeout"
	// ErrorTypeValidation: FailRate injected a validation failure. Permanent:
	// bad input stays bad.
	ErrorTypeValidation = "validation_error"
	// ErrorTypePanic: the handler panicked. Permanent: a panic is a bug that
	// another attempt would hit again.
	ErrorTypePanic = "handler_panic"
	// ErrorTypeResultMismatch: the task's result differs from its workflow's
	// Expect. A task-level failure, never retried.
	ErrorTypeResultMismatch = "result_mismatch"
)

// Cancellation reasons for TaskHandle.Cancel, the reason of
// task.cancel_requested and task.cancelled.
const (
	// CancelReasonRequested is the reason of a plain Cancel("").
	CancelReasonRequested = "requested"
	// CancelReasonShutdown is for callers that cancel tasks because their
	// service is stopping.
	CancelReasonShutdown = "shutdown"
)

// TaskState is where a task is in its life:
//
//	pending → initializing → steps_in_process ⇄ waiting_for_retry → finalizing → complete | error | cancelled
//
// The values are the from_state and to_state of task.state_transitioned and,
// for the unfinished ones, the task_state of observability.task.active_count.
type TaskState string

// The task states.
const (
	// TaskStatePending: submitted, waiting in orchestration's inbox.
	TaskStatePending TaskState = "pending"
	// TaskStateInitializing: orchestration is creating the task's steps.
	TaskStateInitializing TaskState = "initializing"
	// TaskStateStepsInProcess: some step is ready, queued or running.
	TaskStateStepsInProcess TaskState = "steps_in_process"
	// TaskStateWaitingForRetry: nothing runs; a failed step waits out its
	// backoff.
	TaskStateWaitingForRetry TaskState = "waiting_for_retry"
	// TaskStateFinalizing: orchestration is finalizing the task.
	TaskStateFinalizing TaskState = "finalizing"
	// TaskStateComplete, TaskStateError and TaskStateCancelled are final.
	TaskStateComplete  TaskState = "complete"
	TaskStateError     TaskState = "error"
	TaskStateCancelled TaskState = "cancelled"
)

// activeStates are the unfinished states, in life order: the task_state
// values the sampler publishes, zeros included.
var activeStates = [...]TaskState{
	TaskStatePending, TaskStateInitializing, TaskStateStepsInProcess,
	TaskStateWaitingForRetry, TaskStateFinalizing,
}

// ActiveTaskStates returns the unfinished task states, in life order.
func ActiveTaskStates() []TaskState { return slices.Clone(activeStates[:]) }

// activeIndex returns st's index in activeStates, or -1 for a final state.
func activeIndex(st TaskState) int {
	for i, a := range activeStates {
		if a == st {
			return i
		}
	}
	return -1
}

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

// permanent reports whether retrying cannot help.
func (e *TaskError) permanent() bool {
	return e.Type == ErrorTypePanic || e.Type == ErrorTypeValidation || e.Type == ErrorTypeResultMismatch ||
		errors.Is(e.Err, ErrPermanent)
}

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
	// Err is nil when the task completed. Otherwise it is a *TaskError,
	// wraps ErrCancelled when the task was cancelled, or wraps ErrShutdown
	// when the engine stopped before the task finished.
	Err error
	// Duration runs from Submit to finalization.
	Duration time.Duration
	// State is the task's final state; empty when the engine stopped first.
	State TaskState
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

	run       *taskRun               // handed to orchestration by Cancel; never read here
	cancelled atomic.Pointer[string] // the reason, set once by Cancel
	request   func(*taskRun)         // the engine's cancel mailbox
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

// Cancel asks orchestration to cancel the task; reason, which should be
// low-cardinality (CancelReasonRequested when empty), is published with
// task.cancel_requested and task.cancelled. It returns at once: steps not yet
// claimed by a worker are withdrawn (step.cancelled, observability.step.skip),
// running ones finish, and then the task is finalized as cancelled and
// Wait's error wraps ErrCancelled. Cancel is safe for concurrent use; only
// the first call counts, and it does nothing once the task has finished or
// failed, or after the engine stopped.
func (h *TaskHandle) Cancel(reason string) {
	if reason == "" {
		reason = CancelReasonRequested
	}
	if !h.cancelled.CompareAndSwap(nil, &reason) {
		return
	}
	select {
	case <-h.done:
	default:
		h.request(h.run)
	}
}

// cancelReason returns the reason Cancel recorded, or "".
func (h *TaskHandle) cancelReason() string {
	if r := h.cancelled.Load(); r != nil {
		return *r
	}
	return ""
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
	accepted  chan struct{} // closed by Submit once observability.task.enqueue is published
	seed      uint64        // seeds the steps' draws
	state     TaskState
	steps     []stepState
	active    int // staged, queued or running steps
	retrying  int // steps waiting out a backoff
	succeeded int
	failed    int // steps that failed for good
	failure   *TaskError
	cancel    string // the reason, once orchestration has cancelled the task
}

// open reports whether the task may still start steps.
func (t *taskRun) open() bool { return t.failure == nil && t.cancel == "" }

// stepStatus is where a step is, as orchestration sees it.
type stepStatus uint8

const (
	stepWaiting    stepStatus = iota // dependencies unfinished
	stepStaged                       // ready, waiting for queue room
	stepDispatched                   // on the queue or running
	stepRetry                        // failed, waiting out its backoff
	stepSucceeded
	stepFailed  // failed for good
	stepSkipped // will never run: its task failed or was cancelled
)

type stepState struct {
	uuid    string
	waiting int // dependencies not yet succeeded
	value   int64
	status  stepStatus
	attempt int      // the latest attempt, 1-based
	rng     rand.PCG // this step's draws: injected failures and jitter
}

// stepRun carries one step attempt to a worker and its result back.
// Orchestration fills the request half before enqueueing it and does not
// touch it until the result returns; the worker fills the result half.
// Channels and the queue's mutex order the hand-overs.
type stepRun struct {
	task        *taskRun // orchestration's; workers don't read it
	index       int
	corr        events.ID
	taskUUID    string
	stepUUID    string
	namespace   string
	name        string
	handlerType string
	handler     StepHandler
	in          StepInput
	attempt     int
	maxAttempts int
	inject      string // the injected error type of this attempt; "" runs the handler
	running     *atomic.Int64
	queuedAt    time.Time // set by the queue's push, read under its mutex
	fullSeen    bool      // channel_full already published for this step's wait

	// Filled by the worker.
	value     int64
	err       *TaskError
	retryable bool          // the worker's verdict: another attempt is allowed
	ack       chan struct{} // the worker signals here once step.result_submitted is published
}

// newStepRun builds the message for attempt of step i, copying its
// dependencies' results and drawing the attempt's injected failure.
func (t *taskRun) newStepRun(i, attempt int, pol *policy) *stepRun {
	deps := t.plan.deps[i]
	st := &t.steps[i]
	step := &t.plan.wf.Steps[i]
	s := &stepRun{
		task:        t,
		index:       i,
		corr:        t.handle.corr,
		taskUUID:    t.uuid,
		stepUUID:    st.uuid,
		namespace:   t.handle.namespace,
		name:        step.Name,
		handlerType: step.handlerType(),
		handler:     step.Handler,
		in:          StepInput{Input: t.handle.input},
		attempt:     attempt,
		maxAttempts: pol.maxAttempts,
		inject:      pol.inject(&st.rng),
	}
	if len(deps) > 0 {
		s.in.Deps = make([]int64, len(deps))
		for j, d := range deps {
			s.in.Deps[j] = t.steps[d].value
		}
	}
	st.status = stepStaged
	st.attempt = attempt
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

// stepAttrs returns the attributes of step i's events, with room for n more.
func (t *taskRun) stepAttrs(i, n int) []events.Attr {
	a := make([]events.Attr, 4, 4+n)
	a[0] = events.String("task_uuid", t.uuid)
	a[1] = events.String("step_uuid", t.steps[i].uuid)
	a[2] = events.String("namespace", t.handle.namespace)
	a[3] = events.String("step_name", t.plan.wf.Steps[i].Name)
	return a
}

package lifecycle

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/sextant-telemetry/sextant/events"
)

// handlerType is the handler_type of every step: handlers are Go functions.
const handlerType = "go"

// attempt is always 1: this version does not retry.
const attempt = 1

// commandProcessor is the CommandProcessor: it executes a claimed step's
// handler and publishes step.execution_started and then step.completed or
// step.failed.
type commandProcessor struct {
	em    *emitter
	stats *counters
}

// execute runs s's handler and records the outcome in s.
func (cp *commandProcessor) execute(ctx context.Context, s *stepRun) {
	attrs := append(s.attrs(2),
		events.String("handler_type", handlerType),
		events.Int("attempt", attempt))
	start := cp.em.now()
	cp.em.emit(ctx, start, events.StepExecutionStarted, s.corr, attrs)

	var err error
	if s.fail {
		err = fmt.Errorf("%w (fail_rate)", ErrInjectedFailure)
	} else {
		s.value, err = runHandler(ctx, s)
	}
	end := cp.em.now()
	cp.stats.stepsExecuted.Add(1)
	if err == nil {
		cp.stats.stepsSucceeded.Add(1)
		attrs = append(s.attrs(4),
			events.String("result", resultSuccess),
			events.Float("duration_ms", ms(end.Sub(start))),
			events.String("handler_type", handlerType),
			events.Int("attempt", attempt))
		cp.em.emit(ctx, end, events.StepCompleted, s.corr, attrs)
		return
	}
	cp.stats.stepsFailed.Add(1)
	s.value = 0
	if s.err == nil {
		s.err = &TaskError{Type: ErrorTypeHandler, Step: s.name, Err: err}
	}
	attrs = append(s.attrs(6),
		events.String("result", resultError),
		events.String("error_type", s.err.Type),
		events.String("error_message", err.Error()),
		events.Float("duration_ms", ms(end.Sub(start))),
		events.String("handler_type", handlerType),
		events.Int("attempt", attempt))
	cp.em.emit(ctx, end, events.StepFailed, s.corr, attrs)
}

// runHandler calls the handler, turning a panic into a handler_panic failure
// so that one bad handler cannot take the worker down.
func runHandler(ctx context.Context, s *stepRun) (v int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			s.err = &TaskError{Type: ErrorTypePanic, Step: s.name, Err: err}
		}
	}()
	return s.handler(ctx, s.in)
}

// counters are the engine's Stats, updated from every goroutine.
type counters struct {
	tasksSubmitted, tasksCompleted, tasksFailed atomic.Uint64
	stepsExecuted, stepsSucceeded, stepsFailed  atomic.Uint64
}

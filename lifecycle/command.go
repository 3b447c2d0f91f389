package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/sextant-telemetry/sextant/events"
)

// commandProcessor is the CommandProcessor: it executes a claimed step's
// handler and publishes step.execution_started and then step.completed or
// step.failed.
type commandProcessor struct {
	em    *emitter
	stats *counters
	perf  *perfMonitor
}

// execute runs s's attempt and records the outcome in s, including the
// worker's verdict on whether another attempt is allowed.
func (cp *commandProcessor) execute(ctx context.Context, s *stepRun) {
	attrs := append(s.attrs(2),
		events.String("handler_type", s.handlerType),
		events.Int("attempt", int64(s.attempt)))
	start := cp.em.now()
	heap0 := cp.perf.begin(start)
	cp.em.emit(ctx, start, events.StepExecutionStarted, s.corr, attrs)

	s.running.Add(1)
	var err error
	if s.inject != "" {
		if s.inject == ErrorTypeValidation {
			err = fmt.Errorf("%w: %w (fail_rate)", ErrInjectedFailure, ErrPermanent)
		} else {
			err = fmt.Errorf("%w: %s (fail_rate)", ErrInjectedFailure, s.inject)
		}
		s.err = &TaskError{Type: s.inject, Step: s.name, Err: err}
	} else {
		s.value, err = runHandler(ctx, s)
	}
	s.running.Add(-1)
	end := cp.em.now()
	cp.stats.stepAttempts.Add(1)
	if err == nil {
		cp.stats.stepsSucceeded.Add(1)
		attrs = append(s.attrs(4),
			events.String("result", resultSuccess),
			events.Float("duration_ms", ms(end.Sub(start))),
			events.String("handler_type", s.handlerType),
			events.Int("attempt", int64(s.attempt)))
		cp.em.emit(ctx, end, events.StepCompleted, s.corr, attrs)
		cp.perf.step(ctx, opExecute, s, start, end, heap0)
		return
	}
	cp.stats.stepsFailed.Add(1)
	s.value = 0
	if s.err == nil {
		typ := ErrorTypeHandler
		if errors.Is(err, context.DeadlineExceeded) {
			typ = ErrorTypeTimeout
		}
		s.err = &TaskError{Type: typ, Step: s.name, Err: err}
	}
	s.retryable = !s.err.permanent() && s.attempt < s.maxAttempts
	attrs = append(s.attrs(7),
		events.String("result", resultError),
		events.String("error_type", s.err.Type),
		events.String("error_message", err.Error()),
		events.Float("duration_ms", ms(end.Sub(start))),
		events.String("handler_type", s.handlerType),
		events.Int("attempt", int64(s.attempt)),
		events.Bool("retryable", s.retryable))
	cp.em.emit(ctx, end, events.StepFailed, s.corr, attrs)
	cp.perf.step(ctx, opExecute, s, start, end, heap0)
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

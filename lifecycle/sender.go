package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// resultTypeCompletion is the result_type of step.result_submitted: the
// worker submits a completion whether the step succeeded or failed.
const resultTypeCompletion = "completion"

// How long a worker waits before asking an open completion breaker again:
// doubling from the first to the last.
const (
	rejectWaitMin = 5 * time.Millisecond
	rejectWaitMax = 100 * time.Millisecond
)

// resultSender is the ResultSender: it hands a step's result back to
// orchestration over the ffi_completion channel and publishes
// step.result_submitted. The channel's circuit breaker guards the send: a
// send slower than threshold is a failure, a faster one a success, and
// while the breaker is open the worker holds the result and asks again
// later, so no result is lost.
type resultSender struct {
	em        *emitter
	stats     *counters
	breaker   *CircuitBreaker
	threshold time.Duration
	results   chan<- *stepRun
	stop      <-chan struct{}
	ack       chan struct{} // one per worker, buffered by one
	perf      *perfMonitor
}

// send delivers s and reports false if the engine stopped first.
func (rs *resultSender) send(ctx context.Context, s *stepRun) bool {
	s.ack = rs.ack
	if !rs.admit(ctx, s) {
		return false
	}
	start := rs.em.now()
	heap0 := rs.perf.begin(start)
	select {
	case rs.results <- s:
	default:
		rs.stats.channelFull.Add(1)
		rs.em.emit(ctx, rs.em.now(), events.ResilienceChannelFull, s.corr, []events.Attr{
			events.String("channel", ChannelCompletion), events.String("component", ComponentWorker),
		})
		select {
		case rs.results <- s:
		case <-rs.stop:
			return false
		}
	}
	end := rs.em.now()
	if d := end.Sub(start); d > rs.threshold {
		rs.stats.slowSends.Add(1)
		rs.breaker.Failure()
		rs.em.emit(ctx, end, events.ResilienceCompletionSlowSend, s.corr, []events.Attr{
			events.String("channel", ChannelCompletion),
			events.Float("duration_ms", ms(d)),
			events.Float("threshold_ms", ms(rs.threshold)),
		})
	} else {
		rs.breaker.Success()
	}
	rs.stats.resultsSubmitted.Add(1)
	attrs := append(s.attrs(2),
		events.String("result_type", resultTypeCompletion),
		events.Float("duration_ms", ms(end.Sub(start))))
	rs.em.emit(ctx, end, events.StepResultSubmitted, s.corr, attrs)
	// Before the ack: orchestration may end the step's span only after.
	rs.perf.step(ctx, opSubmit, s, start, end, heap0)
	// Orchestration waits for this token before processing s, so that
	// step.result_submitted precedes step.result_processed. One slot is
	// enough: it frees when orchestration processes this worker's previous
	// result, which comes before this one; until then the worker waits here.
	select {
	case rs.ack <- struct{}{}:
	case <-rs.stop:
		return false
	}
	return true
}

// admit waits until the completion breaker lets a send through,
// publishing resilience.completion_rejected each time it does not. It
// reports false if the engine stopped first.
func (rs *resultSender) admit(ctx context.Context, s *stepRun) bool {
	var timer *time.Timer
	wait := rejectWaitMin
	for !rs.breaker.Allow() {
		rs.stats.completionRejections.Add(1)
		rs.em.emit(ctx, rs.em.now(), events.ResilienceCompletionRejected, s.corr, []events.Attr{
			events.String("channel", ChannelCompletion),
		})
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-rs.stop:
			return false
		}
		wait = min(2*wait, rejectWaitMax)
	}
	return true
}

package lifecycle

import (
	"context"

	"github.com/sextant-telemetry/sextant/events"
)

// resultTypeCompletion is the result_type of step.result_submitted: the
// worker submits a completion whether the step succeeded or failed.
const resultTypeCompletion = "completion"

// resultSender is the ResultSender: it hands a step's result back to
// orchestration and publishes step.result_submitted.
type resultSender struct {
	em      *emitter
	results chan<- *stepRun
	stop    <-chan struct{}
	ack     chan struct{} // one per worker, buffered by one
}

// send delivers s and reports false if the engine stopped first.
func (rs *resultSender) send(ctx context.Context, s *stepRun) bool {
	s.ack = rs.ack
	start := rs.em.now()
	select {
	case rs.results <- s:
	case <-rs.stop:
		return false
	}
	end := rs.em.now()
	attrs := append(s.attrs(2),
		events.String("result_type", resultTypeCompletion),
		events.Float("duration_ms", ms(end.Sub(start))))
	rs.em.emit(ctx, end, events.StepResultSubmitted, s.corr, attrs)
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

package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// stepClaim is the StepClaim: it takes a step off the worker's queue and
// publishes step.claimed with how it was found.
type stepClaim struct {
	em    *emitter
	stats *counters
	q     *queue
	perf  *perfMonitor
}

// claim pops the oldest step, if any. start is when the worker began looking:
// when the notification arrived or the poll fired.
func (sc *stepClaim) claim(ctx context.Context, method ClaimMode, start time.Time) (*stepRun, bool) {
	s, ok := sc.q.pop()
	if !ok {
		return nil, false
	}
	sc.stats.stepsClaimed.Add(1)
	heap0 := sc.perf.begin(start)
	end := sc.em.now()
	attrs := append(s.attrs(2),
		events.String("claim_method", string(method)),
		events.Float("duration_ms", ms(end.Sub(start))))
	sc.em.emit(ctx, end, events.StepClaimed, s.corr, attrs)
	sc.perf.step(ctx, opClaim, s, start, end, heap0)
	return s, true
}

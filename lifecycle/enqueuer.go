package lifecycle

import (
	"context"

	"github.com/sextant-telemetry/sextant/events"
)

// stepEnqueuer is the StepEnqueuer: it puts ready steps on their namespace's
// worker queue, holding them in a backlog while the queue is full.
type stepEnqueuer struct {
	em      *emitter
	lanes   []*lane
	byNS    map[string]*lane
	backlog int // steps waiting across all lanes
}

// lane is one namespace's queue and the steps waiting for room on it.
type lane struct {
	q       *queue
	waiting []*stepRun
}

func newStepEnqueuer(em *emitter, queues []*queue) *stepEnqueuer {
	se := &stepEnqueuer{em: em, byNS: make(map[string]*lane, len(queues))}
	for _, q := range queues {
		l := &lane{q: q}
		se.lanes = append(se.lanes, l)
		se.byNS[q.namespace] = l
	}
	return se
}

// stage queues s for enqueueing in arrival order; flush does the enqueueing.
func (se *stepEnqueuer) stage(s *stepRun) {
	l := se.byNS[s.namespace]
	l.waiting = append(l.waiting, s)
	se.backlog++
}

// flush moves waiting steps onto their queues while there is room,
// publishing step.enqueued for each. It never blocks on a full queue: every
// claimed step comes back as a result, which wakes orchestration to flush
// again.
func (se *stepEnqueuer) flush(ctx context.Context) {
	if se.backlog == 0 {
		return
	}
	for _, l := range se.lanes {
		n := 0
		for n < len(l.waiting) && l.q.hasRoom() {
			s := l.waiting[n]
			// Publish before the push so that step.enqueued precedes the
			// worker's step.claimed.
			now := se.em.now()
			se.em.emit(ctx, now, events.StepEnqueued, s.corr, s.attrs(0))
			l.q.push(s)
			n++
		}
		se.drop(l, n)
	}
}

// discard removes t's waiting steps, which will never be enqueued, and
// returns how many it removed.
func (se *stepEnqueuer) discard(t *taskRun) int {
	l := se.byNS[t.handle.namespace]
	kept := l.waiting[:0]
	for _, s := range l.waiting {
		if s.task != t {
			kept = append(kept, s)
		}
	}
	removed := len(l.waiting) - len(kept)
	clear(l.waiting[len(kept):])
	l.waiting = kept
	se.backlog -= removed
	return removed
}

// drop removes the first n waiting steps of l.
func (se *stepEnqueuer) drop(l *lane, n int) {
	if n == 0 {
		return
	}
	rest := copy(l.waiting, l.waiting[n:])
	clear(l.waiting[rest:])
	l.waiting = l.waiting[:rest]
	se.backlog -= n
}

package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// stepEnqueuer is the StepEnqueuer: it puts ready steps on their namespace's
// worker queue, holding them in a backlog while the queue is full.
type stepEnqueuer struct {
	em      *emitter
	stats   *counters
	corr    events.ID // the engine's, for channel events
	lanes   []*lane
	byNS    map[string]*lane
	backlog int // steps waiting across all lanes
	perf    *perfMonitor
}

// lane is one namespace's queue and the steps waiting for room on it.
type lane struct {
	q       *queue
	waiting []*stepRun
}

func newStepEnqueuer(em *emitter, stats *counters, corr events.ID, queues []*queue) *stepEnqueuer {
	se := &stepEnqueuer{em: em, stats: stats, corr: corr, byNS: make(map[string]*lane, len(queues))}
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
	s.running = l.q.counter(s.handlerType)
	l.waiting = append(l.waiting, s)
	l.q.ready.Add(1)
	se.backlog++
}

// flush moves waiting steps onto their queues while there is room,
// publishing step.enqueued for each. It never blocks on a full queue: every
// claimed step comes back as a result, which wakes orchestration to flush
// again. A step that finds its queue full publishes resilience.channel_full
// once, however long it waits.
func (se *stepEnqueuer) flush(ctx context.Context) {
	if se.backlog == 0 {
		return
	}
	// One step's enqueue operation ends when the next one starts (or the
	// flush ends): one clock reading per step, as without monitoring.
	var (
		prev      *stepRun
		prevStart time.Time
		prevHeap  uint64
	)
	for _, l := range se.lanes {
		n := 0
		for n < len(l.waiting) && l.q.hasRoom() {
			s := l.waiting[n]
			// Publish before the push so that step.enqueued precedes the
			// worker's step.claimed.
			now := se.em.now()
			if se.perf != nil {
				if prev != nil {
					se.perf.step(ctx, opEnqueue, prev, prevStart, now, prevHeap)
				}
				prev, prevStart, prevHeap = s, now, se.perf.begin(now)
			}
			se.em.emit(ctx, now, events.StepEnqueued, s.corr, append(s.attrs(1), events.Int("attempt", int64(s.attempt))))
			se.stats.stepsEnqueued.Add(1)
			s.task.steps[s.index].status = stepDispatched
			l.q.push(s, now)
			n++
		}
		se.drop(l, n)
		if len(l.waiting) > 0 && !l.waiting[0].fullSeen {
			l.waiting[0].fullSeen = true
			se.stats.channelFull.Add(1)
			se.em.emit(ctx, se.em.now(), events.ResilienceChannelFull, l.waiting[0].corr, []events.Attr{
				events.String("channel", l.q.channel), events.String("component", ComponentWorker),
			})
		}
	}
	if prev != nil {
		se.perf.step(ctx, opEnqueue, prev, prevStart, se.em.now(), prevHeap)
	}
}

// discard removes t's waiting steps, which will never be enqueued, and
// returns them.
func (se *stepEnqueuer) discard(t *taskRun) []*stepRun {
	l := se.byNS[t.handle.namespace]
	var removed []*stepRun
	kept := l.waiting[:0]
	for _, s := range l.waiting {
		if s.task == t {
			removed = append(removed, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(l.waiting[len(kept):])
	l.waiting = kept
	se.backlog -= len(removed)
	l.q.ready.Add(-int64(len(removed)))
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

// reset forgets every waiting step after a hard stop.
func (se *stepEnqueuer) reset() {
	for _, l := range se.lanes {
		clear(l.waiting)
		l.waiting = l.waiting[:0]
	}
	se.backlog = 0
}

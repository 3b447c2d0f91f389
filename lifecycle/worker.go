package lifecycle

import (
	"context"
	"time"
)

// worker serves one namespace's queue: claim, execute, send, repeat.
type worker struct {
	claim    stepClaim
	command  commandProcessor
	sender   resultSender
	mode     ClaimMode
	interval time.Duration
	now      func() time.Time
	stop     <-chan struct{}
}

// run is the worker goroutine. In event mode it blocks on the queue's
// notifications and polls only after interval without one; in poll mode it
// drains the queue every interval.
func (w *worker) run(ctx context.Context) {
	notify := w.claim.q.notify
	if w.mode == ClaimModePoll {
		notify = nil // a nil channel never fires: notifications are ignored
	}
	timer := time.NewTimer(w.interval)
	defer timer.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-notify:
			// A notification can be stale when a poll took its step first;
			// then there is nothing to do.
			if s, ok := w.claim.claim(ctx, ClaimModeEvent, w.now()); ok && !w.handle(ctx, s) {
				return
			}
		case <-timer.C:
			for !w.stopped() {
				s, ok := w.claim.claim(ctx, ClaimModePoll, w.now())
				if !ok {
					break
				}
				if !w.handle(ctx, s) {
					return
				}
			}
		}
		timer.Reset(w.interval)
	}
}

func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// handle executes s and sends its result; false means the engine stopped.
func (w *worker) handle(ctx context.Context, s *stepRun) bool {
	w.command.execute(ctx, s)
	return w.sender.send(ctx, s)
}

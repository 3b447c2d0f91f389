package lifecycle

import (
	"context"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// worker serves one namespace's queue: claim, execute, send, repeat.
type worker struct {
	id       string // <namespace>-<n>
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
// drains the queue every interval. It publishes worker.started and, on the
// way out, worker.stopped.
func (w *worker) run(ctx context.Context) {
	w.emitWorkerEvent(ctx, events.WorkerStarted)
	// worker.stopped is published even when a hard stop cancelled ctx.
	defer w.emitWorkerEvent(context.WithoutCancel(ctx), events.WorkerStopped)
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
			// A notification can be stale when a poll took its step first
			// or its step was withdrawn; then there is nothing to do.
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

func (w *worker) emitWorkerEvent(ctx context.Context, name string) {
	em := w.claim.em
	em.emit(ctx, em.now(), name, em.corr, []events.Attr{
		events.String("namespace", w.claim.q.namespace), events.String("worker_id", w.id),
	})
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

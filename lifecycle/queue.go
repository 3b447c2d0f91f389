package lifecycle

import (
	"sync"
	"sync/atomic"
	"time"
)

// queue is one namespace's worker queue: a bounded FIFO that orchestration
// pushes to and workers claim from, plus a notification channel, the
// equivalent of the reference system's PGMQ queue with LISTEN/NOTIFY. Its
// channel name in resilience and queue events is QueueChannel(namespace).
//
// Notifications are sent without blocking and dropped when the channel is
// full. Because the channel is as large as the queue, there are always at
// least as many pending notifications as items, so an event-mode worker never
// misses an item; the poll fallback covers the rest of the real world. A
// notification left by a withdrawn (cancelled) step is stale, which workers
// already tolerate.
type queue struct {
	namespace string
	channel   string
	notify    chan struct{}

	// ready counts the namespace's steps staged by orchestration or queued
	// here, not yet claimed: orchestration adds, whoever removes subtracts.
	ready atomic.Int64
	// running counts the handlers running now, by handler type; the map is
	// fixed at construction.
	running map[string]*atomic.Int64
	types   []string // running's keys in registry order

	mu   sync.Mutex
	buf  []*stepRun // ring buffer
	head int
	n    int
}

func newQueue(namespace string, depth int, handlerTypes []string) *queue {
	q := &queue{
		namespace: namespace,
		channel:   QueueChannel(namespace),
		notify:    make(chan struct{}, depth),
		buf:       make([]*stepRun, depth),
		running:   make(map[string]*atomic.Int64, len(handlerTypes)),
		types:     handlerTypes,
	}
	for _, ht := range handlerTypes {
		q.running[ht] = new(atomic.Int64)
	}
	return q
}

// counter returns the running-handler counter of handler type ht.
func (q *queue) counter(ht string) *atomic.Int64 { return q.running[ht] }

// hasRoom reports whether push would succeed. Only orchestration pushes, so
// room it sees cannot vanish before its push.
func (q *queue) hasRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n < len(q.buf)
}

// push appends s, stamped at; the caller has checked hasRoom.
func (q *queue) push(s *stepRun, at time.Time) {
	q.mu.Lock()
	s.queuedAt = at
	q.buf[(q.head+q.n)%len(q.buf)] = s
	q.n++
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// pop removes and returns the oldest step, if any.
func (q *queue) pop() (*stepRun, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil, false
	}
	s := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.ready.Add(-1)
	return s, true
}

// remove withdraws the queued steps of t, keeping the others in order, and
// returns the withdrawn ones.
func (q *queue) remove(t *taskRun) []*stepRun {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*stepRun
	kept := 0
	for i := range q.n {
		j := (q.head + i) % len(q.buf)
		s := q.buf[j]
		if s.task == t {
			out = append(out, s)
			continue
		}
		q.buf[(q.head+kept)%len(q.buf)] = s
		kept++
	}
	for i := kept; i < q.n; i++ {
		q.buf[(q.head+i)%len(q.buf)] = nil
	}
	q.n = kept
	q.ready.Add(-int64(len(out)))
	return out
}

// depth returns how many steps wait on the queue and when the oldest was
// pushed (zero when none).
func (q *queue) depth() (int, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, time.Time{}
	}
	return q.n, q.buf[q.head].queuedAt
}

// reset empties the queue and its gauges once every goroutine has stopped.
func (q *queue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.buf)
	q.head, q.n = 0, 0
	q.ready.Store(0)
}

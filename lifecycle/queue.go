package lifecycle

import "sync"

// queue is one namespace's worker queue: a bounded FIFO that orchestration
// pushes to and workers claim from, plus a notification channel, the
// equivalent of the reference system's PGMQ queue with LISTEN/NOTIFY.
//
// Notifications are sent without blocking and dropped when the channel is
// full. Because the channel is as large as the queue, there are always at
// least as many pending notifications as items, so an event-mode worker never
// misses an item; the poll fallback covers the rest of the real world.
type queue struct {
	namespace string
	notify    chan struct{}

	mu   sync.Mutex
	buf  []*stepRun // ring buffer
	head int
	n    int
}

func newQueue(namespace string, depth int) *queue {
	return &queue{
		namespace: namespace,
		notify:    make(chan struct{}, depth),
		buf:       make([]*stepRun, depth),
	}
}

// hasRoom reports whether push would succeed. Only orchestration pushes, so
// room it sees cannot vanish before its push.
func (q *queue) hasRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n < len(q.buf)
}

// push appends s; the caller has checked hasRoom.
func (q *queue) push(s *stepRun) {
	q.mu.Lock()
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
	return s, true
}

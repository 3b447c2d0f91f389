package bus_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// never is a flush interval long enough that the timer plays no part.
const never = time.Hour

// TestPublisherOrderConcurrentSafe: four goroutines publish concurrently; each
// one's events arrive in its own order, none lost, none duplicated.
func TestPublisherOrderConcurrentSafe(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 4, 5000
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 64, time.Millisecond)

	ctx := context.Background()
	var wg sync.WaitGroup
	for prod := range producers {
		wg.Go(func() {
			for i := range perProducer {
				if err := p.Publish(ctx, seqEvent(prod, i)); err != nil {
					t.Errorf("producer %d event %d: %v", prod, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, p.Flush(ctx))

	next := make([]int, producers)
	for _, e := range s.allEvents() {
		prod, seq := seqOf(t, e)
		require.Equal(t, next[prod], seq, "producer %d: events arrive in publish order, each once", prod)
		next[prod]++
	}
	for prod, n := range next {
		require.Equal(t, perProducer, n, "producer %d: every event arrives", prod)
	}
	require.Equal(t, producers*perProducer, s.count())
	require.Equal(t, uint64(producers*perProducer), p.Published())
	require.Zero(t, p.Failed())
	s.requireBatchesAtMost(t, 64)
}

// TestPublisherOrderAcrossFlushes: one goroutine's events keep their global
// order across full batches and timer flushes racing with a slow bus.
func TestPublisherOrderAcrossFlushes(t *testing.T) {
	t.Parallel()
	const n, batchSize = 4000, 7
	mem := newMemory(t)
	s := startSink(t, mem)
	s.delay = 20 * time.Microsecond
	p := newPublisher(t, mem, batchSize, time.Millisecond)

	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range n {
		require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
		switch x := r.IntN(100); {
		case x < 3:
			time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
		case x < 10:
			time.Sleep(time.Duration(r.IntN(50)) * time.Microsecond)
		}
	}
	require.NoError(t, p.Flush(ctx))

	got := s.allEvents()
	require.Len(t, got, n)
	for i, e := range got {
		_, seq := seqOf(t, e)
		require.Equal(t, i, seq, "global publish order is kept")
	}
	s.requireBatchesAtMost(t, batchSize)
	partial := 0
	for _, b := range s.snapshot() {
		if len(b) < batchSize {
			partial++
		}
	}
	require.Positive(t, partial, "the timer flushed partial batches")
}

func TestPublisherBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		batchSize int
		publish   int
		want      []int // batch sizes; the last one comes from Flush
	}{
		{name: "batch of one", batchSize: 1, publish: 3, want: []int{1, 1, 1}},
		{name: "exact multiple", batchSize: 5, publish: 15, want: []int{5, 5, 5}},
		{name: "remainder flushed", batchSize: 7, publish: 25, want: []int{7, 7, 7, 4}},
		{name: "fewer than a batch", batchSize: 100, publish: 3, want: []int{3}},
		{name: "nothing", batchSize: 10, publish: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mem := newMemory(t)
			s := startSink(t, mem)
			p := newPublisher(t, mem, tt.batchSize, never)
			ctx := context.Background()
			for i := range tt.publish {
				require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
			}
			require.NoError(t, p.Flush(ctx))
			require.NoError(t, p.Flush(ctx), "a second Flush has nothing to send")

			var sizes []int
			for _, b := range s.snapshot() {
				sizes = append(sizes, len(b))
			}
			require.Equal(t, tt.want, sizes)
			require.Equal(t, uint64(tt.publish), p.Published())
			s.requireBatchesAtMost(t, tt.batchSize)
		})
	}
}

func TestPublisherMessageMetadata(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var msgs []*message.Message
	var topics []string
	fake := &fakePublisher{publish: func(topic string, ms ...*message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		topics = append(topics, topic)
		msgs = append(msgs, ms...)
		return nil
	}}
	p := newPublisher(t, fake, 3, never)
	ctx := context.Background()
	for i := range 8 {
		require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
	}
	require.NoError(t, p.Flush(ctx))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, msgs, 3)
	seen := map[string]bool{}
	for i, m := range msgs {
		require.Equal(t, testTopic, topics[i])
		require.NotEmpty(t, m.UUID)
		require.False(t, seen[m.UUID], "message ids are unique")
		seen[m.UUID] = true
		evs, err := events.DecodeBatch(m.Payload, nil)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(len(evs)), m.Metadata.Get(bus.MetadataEvents))
		require.Equal(t, strconv.Itoa(events.WireVersion), m.Metadata.Get(bus.MetadataWire))
	}
}

func TestPublisherDoesNotKeepTheEvent(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 10, never)
	ctx := context.Background()

	attrs := []events.Attr{events.Int("producer", 0), events.Int("seq", 1), events.String("s", "original")}
	e := events.New(events.StepEnqueued, events.NewID(), attrs...)
	require.NoError(t, p.Publish(ctx, e))
	attrs[1] = events.Int("seq", 999)
	attrs[2] = events.String("s", "changed")
	require.NoError(t, p.Flush(ctx))

	got := s.allEvents()
	require.Len(t, got, 1)
	require.Equal(t, []events.Attr{events.Int("producer", 0), events.Int("seq", 1), events.String("s", "original")}, got[0].Attrs)
	require.Equal(t, e.ID, got[0].ID)
	require.Equal(t, e.CorrelationID, got[0].CorrelationID)
	require.True(t, e.Time.Equal(got[0].Time))
}

// TestPublisherFlushInterval checks liveness, not speed: a lone event goes
// out on its own without Flush.
func TestPublisherFlushInterval(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 512, 5*time.Millisecond)
	require.NoError(t, p.Publish(context.Background(), seqEvent(0, 0)))
	require.Eventually(t, func() bool { return s.count() == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return p.Published() == 1 }, 5*time.Second, time.Millisecond)

	// And again after the first timer flush.
	require.NoError(t, p.Publish(context.Background(), seqEvent(0, 1)))
	require.Eventually(t, func() bool { return s.count() == 2 }, 5*time.Second, time.Millisecond)
}

// TestPublisherFlush: when Flush returns, everything published before it has
// been delivered; no Eventually needed.
func TestPublisherFlush(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	s.delay = 100 * time.Microsecond
	p := newPublisher(t, mem, 4, time.Millisecond)
	ctx := context.Background()
	for round := 1; round <= 20; round++ {
		for i := range round {
			require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
		}
		require.NoError(t, p.Flush(ctx))
		want := round * (round + 1) / 2
		require.Equal(t, want, s.count(), "round %d", round)
		require.Equal(t, uint64(want), p.Published(), "round %d", round)
	}
	s.requireBatchesAtMost(t, 4)
}

// TestPublisherFlushConcurrentSafe: Flush waits for the caller's own earlier
// events even while other goroutines publish and the timer flushes.
func TestPublisherFlushConcurrentSafe(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 4, 1500
	mem := newMemory(t)
	s := startSink(t, mem)
	s.delay = 10 * time.Microsecond
	p := newPublisher(t, mem, 7, time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	for prod := range producers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(prod), uint64(time.Now().UnixNano())))
			for i := range perProducer {
				if err := p.Publish(ctx, seqEvent(prod, i)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				if r.IntN(40) == 0 {
					if err := p.Flush(ctx); err != nil {
						t.Errorf("flush: %v", err)
						return
					}
					if got := s.countFor(prod); got != i+1 {
						t.Errorf("producer %d: after Flush %d of its %d events were delivered", prod, got, i+1)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, producers*perProducer, s.count())
	s.requireBatchesAtMost(t, 7)
}

func TestPublisherClose(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 4, never)
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
	}
	require.NoError(t, p.Close(ctx))
	require.Equal(t, 10, s.count(), "Close flushes")
	require.Equal(t, uint64(10), p.Published())

	require.NoError(t, p.Close(ctx), "Close is idempotent")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, p.Close(cancelled), "a later Close returns nil even with a dead context")

	require.ErrorIs(t, p.Publish(ctx, seqEvent(0, 10)), bus.ErrClosed)
	require.ErrorIs(t, p.Flush(ctx), bus.ErrClosed)
	require.Equal(t, 10, s.count(), "nothing is sent after Close")
}

func TestPublisherCloseUnused(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 4, time.Millisecond)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { require.NoError(t, p.Close(context.Background())) })
	}
	wg.Wait()
	require.Zero(t, s.count(), "an empty publisher sends no empty batch")
	require.ErrorIs(t, p.Publish(context.Background(), seqEvent(0, 0)), bus.ErrClosed)
}

// TestPublisherCloseWhilePublishing: every Publish that returned nil is
// delivered, even when Close races with the publishers.
func TestPublisherCloseWhilePublishing(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		mem := newMemory(t)
		s := startSink(t, mem)
		s.delay = 50 * time.Microsecond
		p := newPublisher(t, mem, 5, time.Millisecond)
		ctx := context.Background()

		var accepted atomic.Int64
		var wg sync.WaitGroup
		for prod := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := p.Publish(ctx, seqEvent(prod, i))
					if errors.Is(err, bus.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("publish: %v", err)
						return
					}
					accepted.Add(1)
				}
			})
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		require.NoError(t, p.Close(ctx))
		wg.Wait()
		require.Equal(t, int(accepted.Load()), s.count(), "round %d: every accepted event is delivered", round)
		require.Equal(t, uint64(accepted.Load()), p.Published())
		s.requireBatchesAtMost(t, 5)
	}
}

// TestPublisherCloseHonoursContext: with the bus stuck, Close gives up when
// its context ends; the publisher is closed all the same.
func TestPublisherCloseHonoursContext(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 4, never)
	ctx := context.Background()

	s.hold()
	require.NoError(t, p.Publish(ctx, seqEvent(0, 0)))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Close(short), context.DeadlineExceeded)
	require.ErrorIs(t, p.Publish(ctx, seqEvent(0, 1)), bus.ErrClosed)

	// Once the bus moves again, the flushed batch arrives and the publisher's
	// goroutine ends (goleak checks that).
	s.release()
	require.Eventually(t, func() bool { return s.count() == 1 }, 5*time.Second, time.Millisecond)
}

// TestPublisherFlushHonoursContext: Flush gives up when its context ends
// while the bus is stuck, and the events still go out later.
func TestPublisherFlushHonoursContext(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 4, never)
	ctx := context.Background()

	s.hold()
	require.NoError(t, p.Publish(ctx, seqEvent(0, 0)))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Flush(short), context.DeadlineExceeded)

	s.release()
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, 1, s.count())
}

var errBoom = errors.New("boom")

// A bus that refuses batches for a while loses nothing: each batch is held
// and retried with backoff until the bus takes it, in order.
func TestPublisherRetriesUntilTheBusTakesTheBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      func(call int) bool // whether publish call n (from 0) fails
		publish   int
		batchSize int
		wantCalls int64
	}{
		{name: "every other publish fails", fail: func(n int) bool { return n%2 == 1 }, publish: 10, batchSize: 4, wantCalls: 5},
		{name: "the first two fail", fail: func(n int) bool { return n < 2 }, publish: 10, batchSize: 4, wantCalls: 5},
		{name: "only the flushed remainder fails once", fail: func(n int) bool { return n == 2 }, publish: 10, batchSize: 4, wantCalls: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			var mu sync.Mutex
			var got []events.Event
			fake := &fakePublisher{publish: func(_ string, msgs ...*message.Message) error {
				if tt.fail(int(calls.Add(1) - 1)) {
					return errBoom
				}
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					evs, err := events.DecodeBatch(m.Payload, nil)
					require.NoError(t, err)
					got = append(got, evs...)
				}
				return nil
			}}
			p := newPublisher(t, fake, tt.batchSize, never)
			ctx := context.Background()
			for i := range tt.publish {
				require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
			}
			require.NoError(t, p.Flush(ctx))
			require.EqualValues(t, tt.publish, p.Published())
			require.Zero(t, p.Failed())
			require.Equal(t, tt.wantCalls, calls.Load())
			for i, e := range got {
				_, seq := seqOf(t, e)
				require.Equal(t, i, seq, "order kept across retries")
			}
		})
	}
}

// A bus that never takes the batch: Close gives up when its context ends,
// counts what was not sent and says why.
func TestPublisherCloseGivesUpOnAStuckBus(t *testing.T) {
	t.Parallel()
	fake := &fakePublisher{publish: func(string, ...*message.Message) error { return errBoom }}
	p := newPublisher(t, fake, 100, never)
	require.NoError(t, p.Publish(context.Background(), seqEvent(0, 0)))
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Flush(short), context.DeadlineExceeded, "Flush waits while the batch is retried")
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelClose()
	err := p.Close(closeCtx)
	require.ErrorIs(t, err, errBoom)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, uint64(1), p.Failed())
	require.Zero(t, p.Published())
}

// The circuit breaker opens after consecutive failures, tries half-open,
// closes on success, and each transition is published.
func TestPublisherCircuitBreaker(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var mu sync.Mutex
	var states []int64
	fake := &fakePublisher{publish: func(_ string, msgs ...*message.Message) error {
		if calls.Add(1) <= 3 {
			return errBoom
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			evs, err := events.DecodeBatch(m.Payload, nil)
			require.NoError(t, err)
			for _, e := range evs {
				if e.Name == events.QueueCircuitState {
					v, _ := e.Attr("state")
					states = append(states, v.Int64())
				}
			}
		}
		return nil
	}}
	cfg := bus.NewDefaultConfig()
	cfg.Topic, cfg.FlushInterval = testTopic, time.Millisecond
	p, err := bus.NewPublisher(fake, cfg, bus.WithMessagingEvents())
	require.NoError(t, err)
	require.NoError(t, p.Publish(context.Background(), seqEvent(0, 0)))
	require.NoError(t, p.Flush(context.Background()))
	require.Equal(t, 0, p.BreakerState())
	require.NoError(t, p.Close(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int64{2, 1, 0}, states, "open, half-open, closed")
}

// TestPublisherCancelledContextKeepsEvents: with the bus stuck, a Publish
// whose context ends while it waits keeps its event; a Publish that cannot
// even start a new batch says so with the context's error. When the bus moves
// again, every accepted event arrives, in order, and no batch is too big.
func TestPublisherCancelledContextKeepsEvents(t *testing.T) {
	t.Parallel()
	const batchSize = 3
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, batchSize, never)
	ctx := context.Background()

	// Block the bus with the first batch in flight.
	s.hold()
	for i := range batchSize {
		require.NoError(t, p.Publish(ctx, seqEvent(0, i)))
	}
	require.Eventually(t, func() bool { return s.waiting.Load() == 1 }, 5*time.Second, time.Millisecond)
	accepted := batchSize

	// Fill the queue. Each Publish gets a context that is cancelled shortly
	// after: that is only reached once the queue is full.
	rejected := -1
	for i := accepted; i < 200; i++ {
		pctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(20*time.Millisecond, cancel)
		err := p.Publish(pctx, seqEvent(0, i))
		timer.Stop()
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
			rejected = i
			break
		}
		accepted++
	}
	require.Positive(t, rejected, "once the queue is full and a full batch waits, Publish gives up with the context's error")
	require.Zero(t, accepted%batchSize, "the event whose Publish was cancelled while completing a batch was kept")

	// A context that is already cancelled is refused at once while the bus is stuck.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	for i := range 5 {
		require.ErrorIs(t, p.Publish(dead, seqEvent(0, 10000+i)), context.Canceled)
	}
	require.ErrorIs(t, p.Flush(dead), context.Canceled)

	s.release()
	require.NoError(t, p.Flush(ctx))
	got := s.allEvents()
	require.Len(t, got, accepted, "every accepted event arrives")
	for i, e := range got {
		_, seq := seqOf(t, e)
		require.Equal(t, i, seq)
	}
	s.requireBatchesAtMost(t, batchSize)
	require.Equal(t, uint64(accepted), p.Published())

	// The publisher works normally afterwards.
	for i := range 2 * batchSize {
		require.NoError(t, p.Publish(ctx, seqEvent(0, accepted+i)))
	}
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, accepted+2*batchSize, s.count())
	s.requireBatchesAtMost(t, batchSize)
}

func TestNewMemoryBlocksUntilAck(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	s.hold()
	done := make(chan error, 1)
	msg := message.NewMessage("1", events.EncodeBatch([]events.Event{seqEvent(0, 0)}))
	msg.Metadata.Set(bus.MetadataWire, strconv.Itoa(events.WireVersion))
	msg.Metadata.Set(bus.MetadataEvents, "1")
	go func() { done <- mem.Publish(testTopic, msg) }()
	require.Eventually(t, func() bool { return s.waiting.Load() == 1 }, 5*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v before the subscriber acked", err)
	default:
	}
	s.release()
	require.NoError(t, <-done)
	require.Equal(t, 1, s.count())
}

// TestPublisherCancelledContextWithRoom: a dead context only matters when
// Publish would have to wait; with room on the bus every event is accepted.
func TestPublisherCancelledContextWithRoom(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 1, never)
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		require.NoError(t, p.Publish(dead, seqEvent(0, i)))
		require.NoError(t, p.Flush(context.Background()))
	}
	require.Equal(t, 50, s.count())
	s.requireBatchesAtMost(t, 1)
}

// TestPublisherDeadlinesWhileAnotherPublisherBlocks: one publisher stuck
// behind a stuck bus with no deadline must not make other callers miss
// theirs.
func TestPublisherDeadlinesWhileAnotherPublisherBlocks(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 1, never)
	s.hold()
	stuck := make(chan error, 1)
	go func() {
		// Fills the queue, then waits for room (and holds the lock) forever.
		for i := 0; ; i++ {
			if err := p.Publish(context.Background(), seqEvent(0, i)); err != nil {
				stuck <- err
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return s.waiting.Load() > 0 }, 5*time.Second, time.Millisecond)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Publish(short, seqEvent(1, 0)), context.DeadlineExceeded)
	require.ErrorIs(t, p.Flush(short), context.DeadlineExceeded)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelClose()
	require.ErrorIs(t, p.Close(closeCtx), context.DeadlineExceeded)

	// Once the bus moves, the stuck publisher learns the publisher closed.
	s.release()
	select {
	case err := <-stuck:
		require.ErrorIs(t, err, bus.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked Publish never returned after Close")
	}
}

func TestPublisherRejectsEventsTheWireCannotCarry(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	s := startSink(t, mem)
	p := newPublisher(t, mem, 512, never)
	ctx := context.Background()
	good := seqEvent(0, 0)
	bad := []events.Event{
		{},
		{Name: "task.completed", Attrs: []events.Attr{{Key: "oops"}}},
		{Name: "task.completed", Attrs: []events.Attr{events.String("", "x")}},
	}
	require.NoError(t, p.Publish(ctx, good))
	for _, e := range bad {
		require.ErrorIs(t, p.Publish(ctx, e), bus.ErrInvalidEvent)
	}
	require.NoError(t, p.Publish(ctx, seqEvent(0, 1)))
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, 2, s.count(), "the good events around the bad ones all arrive")
	require.EqualValues(t, 3, p.Rejected())
	require.EqualValues(t, 2, p.Published())
}

// TestPublisherPartitions: events go to the partition of their correlation
// id, each partition keeps publish order, and Flush covers every partition.
func TestPublisherPartitions(t *testing.T) {
	t.Parallel()
	mem := newMemory(t)
	cfg := bus.NewDefaultConfig()
	cfg.Topic, cfg.Partitions, cfg.BatchSize, cfg.FlushInterval = testTopic, 4, 16, never
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type got struct {
		part int
		evs  []events.Event
	}
	received := make(chan got, 1024)
	var wg sync.WaitGroup
	for i := range cfg.Partitions {
		msgs, err := mem.Subscribe(ctx, cfg.PartitionTopic(i))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range msgs {
				evs, err := events.DecodeBatch(msg.Payload, nil)
				if err == nil {
					received <- got{part: i, evs: evs}
				}
				msg.Ack()
			}
		}()
	}
	p, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	keys := make([]events.ID, 32)
	for i := range keys {
		keys[i] = events.NewID()
		keys[i][14], keys[i][15] = 0, byte(i) // deterministic spread over the partitions
	}
	const perKey = 50
	for seq := range perKey {
		for k, key := range keys {
			e := seqEvent(k, seq)
			e.CorrelationID = key
			require.NoError(t, p.Publish(ctx, e))
		}
	}
	require.NoError(t, p.Close(ctx))
	cancel()
	wg.Wait()
	close(received)

	next := map[events.ID]int{}
	partOf := map[events.ID]int{}
	parts := map[int]bool{}
	total := 0
	for g := range received {
		parts[g.part] = true
		for _, e := range g.evs {
			require.Equal(t, cfg.Partition(e.CorrelationID), g.part, "event in the wrong partition")
			if prev, ok := partOf[e.CorrelationID]; ok {
				require.Equal(t, prev, g.part, "one key, one partition")
			}
			partOf[e.CorrelationID] = g.part
			_, seq := seqOf(t, e)
			require.Equal(t, next[e.CorrelationID], seq, "per-key order")
			next[e.CorrelationID]++
			total++
		}
	}
	require.Equal(t, len(keys)*perKey, total)
	require.Len(t, parts, 4, "keys spread over every partition")
	require.Equal(t, "sextant.test_3", cfg.PartitionTopic(3))
}

// TestPublisherTakesTheSpanContext: an event without a valid Parent takes
// the span context of Publish's ctx, from a real SDK span or a remote one;
// an event's own valid Parent is kept.
func TestPublisherTakesTheSpanContext(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { require.NoError(t, tp.Shutdown(context.Background())) }()
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { require.NoError(t, unsampled.Shutdown(context.Background())) }()

	sampledCtx, sampledSpan := tp.Tracer("test").Start(context.Background(), "publish")
	defer sampledSpan.End()
	unsampledCtx, unsampledSpan := unsampled.Tracer("test").Start(context.Background(), "publish")
	defer unsampledSpan.End()
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	remoteCtx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	invalidCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}}))

	parentOf := func(sc trace.SpanContext) events.TraceParent {
		return events.TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
	}
	own := events.TraceParent{TraceID: [16]byte{9, 9}, SpanID: [8]byte{8, 8}}
	tests := []struct {
		name   string
		ctx    context.Context
		parent events.TraceParent // the event's own
		infra  bool
		want   events.TraceParent
	}{
		{name: "no span", ctx: context.Background()},
		{name: "invalid span context", ctx: invalidCtx},
		{name: "sampled SDK span", ctx: sampledCtx, want: parentOf(sampledSpan.SpanContext())},
		{name: "unsampled SDK span", ctx: unsampledCtx, want: parentOf(unsampledSpan.SpanContext())},
		{name: "remote span context", ctx: remoteCtx, want: events.TraceParent{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5, 6}, Flags: 1}},
		{name: "own parent kept", ctx: sampledCtx, parent: own, want: own},
		{name: "own parent without a span", ctx: context.Background(), parent: own, want: own},
		{name: "invalid own parent replaced", ctx: sampledCtx, parent: events.TraceParent{SpanID: [8]byte{1}, Flags: 1}, want: parentOf(sampledSpan.SpanContext())},
		{name: "infrastructure event", ctx: sampledCtx, infra: true, want: parentOf(sampledSpan.SpanContext())},
	}
	require.True(t, sampledSpan.SpanContext().IsSampled())
	require.False(t, unsampledSpan.SpanContext().IsSampled())
	require.True(t, unsampledSpan.SpanContext().IsValid(), "an unsampled span still has ids")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mem := newMemory(t)
			s := startSink(t, mem)
			p := newPublisher(t, mem, 10, never)
			e := seqEvent(0, 0)
			if tt.infra {
				e = events.New(events.DBQueryExecuted, events.NewID(), events.String("operation", "select"))
			}
			e.Parent = tt.parent
			require.NoError(t, p.Publish(tt.ctx, e))
			require.NoError(t, p.Flush(context.Background()))

			got := s.allEvents()
			require.Len(t, got, 1)
			require.Equal(t, tt.want, got[0].Parent)
			if tt.want.IsValid() {
				require.Equal(t, tt.want.String(), got[0].Parent.String())
			}
		})
	}
}

package bus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

const testTopic = "sextant.test"

// newMemory returns the in-memory bus, closed when the test ends (after the
// sink and publisher cleanups, which were registered later).
func newMemory(t testing.TB) *gochannel.GoChannel {
	t.Helper()
	mem := bus.NewMemory(watermill.NopLogger{})
	t.Cleanup(func() { require.NoError(t, mem.Close()) })
	return mem
}

// sink subscribes to the bus, decodes every batch, records it and only then
// acks it: with BlockPublishUntilSubscriberAck, a batch is recorded by the
// time its publish returns. It checks each message's metadata as it goes.
type sink struct {
	delay time.Duration // per message, to make the bus slow

	mu       sync.Mutex
	batches  [][]events.Event
	total    int
	byProd   map[int64]int // events received per producer
	problems []string
	gate     chan struct{} // closed while open; held: messages wait
	waiting  atomic.Int32  // messages waiting at a held gate
}

func startSink(t testing.TB, mem *gochannel.GoChannel) *sink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := mem.Subscribe(ctx, testTopic)
	require.NoError(t, err)
	s := &sink{gate: make(chan struct{}), byProd: map[int64]int{}}
	close(s.gate)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range msgs {
			s.handle(msg)
		}
	}()
	t.Cleanup(func() {
		s.release()
		cancel()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		require.Empty(t, s.problems, "the subscriber saw bad messages")
	})
	return s
}

func (s *sink) handle(msg *message.Message) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	select {
	case <-gate:
	default:
		s.waiting.Add(1)
		<-gate
		s.waiting.Add(-1)
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	evs, err := events.DecodeBatch(msg.Payload, nil)

	s.mu.Lock()
	if err != nil {
		s.problems = append(s.problems, err.Error())
	}
	if got, want := msg.Metadata.Get(bus.MetadataEvents), strconv.Itoa(len(evs)); got != want {
		s.problems = append(s.problems, fmt.Sprintf("metadata %s = %q, batch holds %s events", bus.MetadataEvents, got, want))
	}
	if got := msg.Metadata.Get(bus.MetadataWire); got != strconv.Itoa(events.WireVersion) {
		s.problems = append(s.problems, fmt.Sprintf("metadata %s = %q", bus.MetadataWire, got))
	}
	if len(evs) == 0 {
		s.problems = append(s.problems, "empty batch")
	}
	s.batches = append(s.batches, evs)
	s.total += len(evs)
	for i := range evs {
		p, _ := evs[i].Attr("producer")
		s.byProd[p.Int64()]++
	}
	s.mu.Unlock()
	msg.Ack()
}

// hold makes the next messages wait before they are recorded and acked,
// which blocks the publisher's goroutine inside the bus.
func (s *sink) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

// release lets waiting and later messages through.
func (s *sink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.gate:
	default:
		close(s.gate)
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *sink) countFor(producer int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byProd[int64(producer)]
}

func (s *sink) snapshot() [][]events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]events.Event(nil), s.batches...)
}

func (s *sink) allEvents() []events.Event {
	var all []events.Event
	for _, b := range s.snapshot() {
		all = append(all, b...)
	}
	return all
}

// requireBatchesAtMost checks that no batch exceeded max events.
func (s *sink) requireBatchesAtMost(t testing.TB, max int) {
	t.Helper()
	for i, b := range s.snapshot() {
		require.LessOrEqual(t, len(b), max, "batch %d has %d events, BatchSize is %d", i, len(b), max)
	}
}

// seqEvent is event number seq of one producer.
func seqEvent(producer, seq int) events.Event {
	return events.New(events.StepEnqueued, events.ID{15: byte(producer)},
		events.Int("producer", int64(producer)),
		events.Int("seq", int64(seq)),
		events.String("namespace", "ns"),
	)
}

func seqOf(t testing.TB, e events.Event) (producer, seq int) {
	t.Helper()
	p, ok := e.Attr("producer")
	require.True(t, ok)
	s, ok := e.Attr("seq")
	require.True(t, ok)
	return int(p.Int64()), int(s.Int64())
}

// newPublisher returns a publisher on pub, closed when the test ends (before
// the bus and the sink, which were set up earlier).
func newPublisher(t testing.TB, pub message.Publisher, batchSize int, interval time.Duration) *bus.Publisher {
	t.Helper()
	cfg := bus.NewDefaultConfig()
	cfg.Topic = testTopic
	cfg.BatchSize = batchSize
	cfg.FlushInterval = interval
	p, err := bus.NewPublisher(pub, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx) // tests that care check Close themselves
	})
	return p
}

// fakePublisher is a message.Publisher whose behaviour each test supplies.
type fakePublisher struct {
	publish func(topic string, msgs ...*message.Message) error
	close   func() error
}

var _ message.Publisher = (*fakePublisher)(nil)

func (f *fakePublisher) Publish(topic string, msgs ...*message.Message) error {
	return f.publish(topic, msgs...)
}

func (f *fakePublisher) Close() error {
	if f.close == nil {
		return nil
	}
	return f.close()
}

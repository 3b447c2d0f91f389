package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
)

// Message metadata keys set on every batch.
const (
	MetadataWire   = "sextant_wire"   // wire format version
	MetadataEvents = "sextant_events" // number of events in the batch
	// MetadataInfrastructure is "true" on a batch that holds only database
	// and messaging events (events.IsInfrastructure): nothing describes
	// such a batch, so that instrumentation cannot feed on itself.
	MetadataInfrastructure = "sextant_infrastructure"
)

// infraBacklog bounds the infrastructure events (db.*, queue.*) waiting for
// the publishing goroutine; past it they are dropped and counted
// (MessagingDropped). The channel's buffer is scanned by every GC cycle, so
// it is kept small: 8192 slots cost the in-memory path a fifth of its
// throughput. They take their own path, without the lock, because
// their publishers (the router inside a delivery, the loop itself, a pgx
// tracer) must never wait.
const infraBacklog = 1024

// ErrInfraBacklog is returned by Publish for an infrastructure event when
// too many are waiting; the event is dropped and counted.
var ErrInfraBacklog = errors.New("bus: too many infrastructure events waiting; dropped")

// PublisherOption is a knob of NewPublisher with no YAML counterpart.
type PublisherOption func(*Publisher)

// WithMessagingEvents makes the publisher describe its own work with
// queue.message_sent and queue.error events, published on the bus itself.
// A batch made only of infrastructure events is never described.
func WithMessagingEvents() PublisherOption { return func(p *Publisher) { p.messaging = true } }

// queueDepth is how many full batches may wait for the bus before Publish
// blocks: enough to keep the publishing goroutine busy, small enough that
// backpressure reaches publishers quickly.
const queueDepth = 4

// ErrClosed is returned by Publish and Flush after Close.
var ErrClosed = errors.New("bus publisher closed")

// NewMemory returns the in-memory bus. BlockPublishUntilSubscriberAck keeps
// batches in publish order and gives backpressure; GoChannel's default
// delivers out of order and never blocks (see docs/architecture.md).
// Subscribe before publishing: the GoChannel drops messages that have no subscriber.
func NewMemory(logger watermill.LoggerAdapter) *gochannel.GoChannel {
	return gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
}

// Publisher batches events into watermill messages. Events reach the bus in
// the order Publish was called, across all goroutines: one goroutine owned by
// the Publisher does all watermill publishing, in queue order.
type Publisher struct {
	pub      message.Publisher
	cfg      Config
	topics   []string // per partition
	max      int
	interval time.Duration

	// lock guards cur and is held while queueing so that order is kept. It
	// is a channel, not a sync.Mutex, so that a caller waiting for it can
	// give up when its context ends.
	lock   chan struct{}
	cur    []events.BatchBuilder // per partition
	app    []bool                // per partition: the batch holds a non-infrastructure event
	closed atomic.Bool

	messaging        bool
	failures         int // consecutive publish failures; loop goroutine only
	breaker          int // loop goroutine only
	breakerState     atomic.Int32
	abort            chan struct{}         // closed when Close gives up on a stuck bus
	infra            chan events.Event     // infrastructure events, sent in batches of their own
	infraCur         []events.BatchBuilder // per partition; loop goroutine only
	messagingDropped atomic.Uint64

	queue chan request  // batches in publish order
	room  chan struct{} // one token per free queue slot; bounds the queue
	stop  chan struct{}
	done  chan struct{}

	published atomic.Uint64
	failed    atomic.Uint64
	rejected  atomic.Uint64
	errMu     sync.Mutex
	err       error // first publish error since the last Flush
	lost      error // first batch given up, for Close
	closeOnce sync.Once
}

type request struct {
	infra   bool // the batch holds only infrastructure events
	topic   string
	payload []byte // nil for a Flush marker
	n       int
	ack     chan error // non-nil for Flush
}

// ErrInvalidEvent is returned by Publish for an event the wire format cannot
// carry: an empty name, or an attribute with an empty key or no value.
var ErrInvalidEvent = errors.New("invalid event")

// NewPublisher returns a Publisher that sends batches of up to cfg.BatchSize
// events to cfg.Topic on pub, flushing a partial batch after cfg.FlushInterval.
// It starts one goroutine; Close stops it.
func NewPublisher(pub message.Publisher, cfg Config, opts ...PublisherOption) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	p := &Publisher{
		pub: pub, cfg: cfg, max: cfg.BatchSize, interval: cfg.FlushInterval,
		cur:      make([]events.BatchBuilder, cfg.Partitions),
		app:      make([]bool, cfg.Partitions),
		infra:    make(chan events.Event, infraBacklog),
		infraCur: make([]events.BatchBuilder, cfg.Partitions),
		lock:     make(chan struct{}, 1),
		queue:    make(chan request, queueDepth),
		room:     make(chan struct{}, queueDepth),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		abort:    make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	for i := range cfg.Partitions {
		p.topics = append(p.topics, cfg.PartitionTopic(i))
	}
	for range queueDepth {
		p.room <- struct{}{}
	}
	go p.loop()
	return p, nil
}

// acquire takes the lock, giving up with false when ctx ends first.
func (p *Publisher) acquire(ctx context.Context) bool {
	select {
	case p.lock <- struct{}{}:
		return true
	default:
	}
	select {
	case p.lock <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *Publisher) release() { <-p.lock }

// checkEvent rejects what the wire format cannot carry: one such event would
// make its whole batch undecodable, losing its neighbours too.
func checkEvent(e *events.Event) error {
	if e.Name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidEvent)
	}
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if a.Key == "" {
			return fmt.Errorf("%w: %s: attribute %d has an empty key", ErrInvalidEvent, e.Name, i)
		}
		if k := a.Value.Kind(); k < events.KindString || k > events.KindBool {
			return fmt.Errorf("%w: %s: attribute %q has no value", ErrInvalidEvent, e.Name, a.Key)
		}
	}
	return nil
}

// Publish adds e to the current batch. It is safe for concurrent use and does
// not keep e after returning. It blocks only while other publishers hold the
// batch or the bus is applying backpressure; the context bounds both waits.
// If the context ends while e's batch waits for room, e stays in the batch
// and goes out with it later. If the context ends before e is in a batch,
// Publish returns the context's error and e is not published. An event the
// wire format cannot carry is rejected with ErrInvalidEvent and counted in
// Rejected. After Close it returns ErrClosed.
//
// An event without a valid Parent takes the span context ctx carries, if
// any (trace.SpanContextFromContext): the router then ties its spans to
// the publisher's span. An event's own valid Parent is never replaced.
func (p *Publisher) Publish(ctx context.Context, e events.Event) error {
	if err := checkEvent(&e); err != nil {
		p.rejected.Add(1)
		return err
	}
	if !e.Parent.IsValid() {
		e.Parent = parentFrom(ctx)
	}
	if events.IsInfrastructure(e.Name) {
		// Accepted until the publishing goroutine has sent its last batch:
		// the router describes the final batches while Close sends them.
		select {
		case <-p.done:
			return ErrClosed
		default:
		}
		return p.describe(e)
	}
	if !p.acquire(ctx) {
		return fmt.Errorf("bus: publish: %w", ctx.Err())
	}
	defer p.release()
	if p.closed.Load() {
		return ErrClosed
	}
	part := p.cfg.Partition(e.CorrelationID)
	// A batch left full by an earlier Publish goes first, so that no batch
	// grows past max.
	if p.cur[part].Len() >= p.max {
		if err := p.queueBatch(ctx, part); err != nil {
			return fmt.Errorf("bus: publish: %w", err)
		}
	}
	p.cur[part].Add(&e)
	p.app[part] = true
	if p.cur[part].Len() >= p.max {
		// If ctx ends first, e goes out with its batch later; nothing is
		// dropped. If the publisher closed meanwhile, it never goes out.
		if err := p.queueBatch(ctx, part); errors.Is(err, ErrClosed) {
			return fmt.Errorf("bus: publish: %w", err)
		}
	}
	return nil
}

// parentFrom returns the trace context of ctx's span, or the zero
// TraceParent when ctx carries no valid span context.
func parentFrom(ctx context.Context) events.TraceParent {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return events.TraceParent{}
	}
	return events.TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

// queueBatch queues the current batch once there is room, preferring room
// over an ended ctx. It returns ctx's error if ctx ended first and ErrClosed
// if the publishing goroutine has stopped. The lock must be held.
func (p *Publisher) queueBatch(ctx context.Context, part int) error {
	select {
	case <-p.room:
	default:
		select {
		case <-p.room:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return ErrClosed
		}
	}
	p.queueLocked(part)
	return nil
}

// queueLocked moves partition part's batch to the queue; the caller holds
// the lock and a room token.
func (p *Publisher) queueLocked(part int) {
	n := p.cur[part].Len()
	p.queue <- request{topic: p.topics[part], payload: p.cur[part].Take(), n: n, infra: !p.app[part]}
	p.app[part] = false
}

// Flush sends the current partial batch and waits until every event published
// before the call has been handed to the bus. It returns the first publish
// error since the previous Flush.
func (p *Publisher) Flush(ctx context.Context) error { return p.flush(ctx, false) }

// flush is Flush; with closing set it also marks p closed under the same lock
// hold that queues the last batch, so no Publish can add events after it.
func (p *Publisher) flush(ctx context.Context, closing bool) error {
	if !p.acquire(ctx) {
		return fmt.Errorf("bus: flush: %w", ctx.Err())
	}
	if p.closed.Load() {
		p.release()
		return ErrClosed
	}
	if closing {
		p.closed.Store(true)
	}
	// Every partial batch, then a marker whose ack says all before it went out.
	for part := range p.cur {
		if p.cur[part].Len() == 0 {
			continue
		}
		if err := p.queueBatch(ctx, part); err != nil {
			p.release()
			return fmt.Errorf("bus: flush: %w", err)
		}
	}
	select {
	case <-p.room:
	case <-ctx.Done():
		p.release()
		return fmt.Errorf("bus: flush: %w", ctx.Err())
	}
	ack := make(chan error, 1)
	p.queue <- request{ack: ack}
	p.release()
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bus: flush: %w", ctx.Err())
	}
}

// Close flushes, stops the background goroutine and waits for it, bounded by
// ctx. When ctx ends first, the publisher is closed anyway: later calls get
// ErrClosed and events still in the unsent batch are lost, which the
// returned error says. It is safe to call more than once; later calls
// return nil.
func (p *Publisher) Close(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() {
		err = p.flush(ctx, true)
		p.closed.Store(true)
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			// The bus is stuck: stop retrying; what is left is counted
			// as failed, and the reason is returned.
			close(p.abort)
			// A batch inside the bus's Publish cannot be interrupted: give
			// the loop a moment to notice, then return; it ends by itself
			// once the bus returns.
			select {
			case <-p.done:
			case <-time.After(closeGrace):
			}
			p.errMu.Lock()
			lost := p.lost
			p.errMu.Unlock()
			err = errors.Join(err, lost, fmt.Errorf("bus: close: %w", ctx.Err()))
		}
	})
	return err
}

// Published returns how many events have been handed to the bus.
func (p *Publisher) Published() uint64 { return p.published.Load() }

// Failed returns how many events were never handed to the bus: the bus kept
// refusing them until Close gave up.
func (p *Publisher) Failed() uint64 { return p.failed.Load() }

// Rejected returns how many events Publish refused with ErrInvalidEvent.
func (p *Publisher) Rejected() uint64 { return p.rejected.Load() }

func (p *Publisher) loop() {
	defer close(p.done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case r := <-p.queue:
			p.send(r)
		case <-tick.C:
			p.sendInfra(true)
			// Only try the lock: a publisher holding it may be waiting for
			// room, which only this goroutine makes.
			select {
			case p.lock <- struct{}{}:
			default:
				continue
			}
			// Queue the partial batch behind the older ones, under the lock,
			// so that it keeps its place in publish order. Without room the
			// queue is full and being sent: the batch waits for a later tick.
		partitions:
			for part := range p.cur {
				if p.cur[part].Len() == 0 {
					continue
				}
				select {
				case <-p.room:
					p.queueLocked(part)
				default:
					break partitions
				}
			}
			p.release()
		case <-p.stop:
			p.drainQueue()
			p.sendInfra(true)
			return
		}
	}
}

func (p *Publisher) drainQueue() {
	for {
		select {
		case r := <-p.queue:
			p.send(r)
		default:
			return
		}
	}
}

func (p *Publisher) send(r request) {
	defer func() { p.room <- struct{}{} }()
	p.publish(r)
	// A Flush covers the infrastructure events published before it too.
	p.sendInfra(r.ack != nil)
	if r.ack != nil {
		p.errMu.Lock()
		err := p.err
		p.err = nil
		p.errMu.Unlock()
		r.ack <- err
	}
}

func (p *Publisher) publish(r request) {
	if r.payload == nil {
		return
	}
	msg := message.NewMessage(watermill.NewULID(), r.payload)
	msg.Metadata.Set(MetadataWire, strconv.Itoa(events.WireVersion))
	msg.Metadata.Set(MetadataEvents, strconv.Itoa(r.n))
	if r.infra {
		msg.Metadata.Set(MetadataInfrastructure, "true")
	}
	start := time.Now()
	var err error
	for delay := retryInitial; ; delay = min(delay*2, retryMax) {
		select {
		case <-p.abort: // Close gave up on a stuck bus: count, don't try
			p.giveUp(r, err)
			return
		default:
		}
		if err = p.pub.Publish(r.topic, msg); err == nil {
			p.breakerSuccess()
			break
		}
		p.breakerFailure()
		if p.messaging && !r.infra {
			_ = p.describe(events.New(events.QueueError, events.NewID(), events.String("queue", r.topic), events.String("error_type", "publish")))
		}
		select {
		case <-time.After(delay):
			p.breakerTrial()
		case <-p.abort:
			p.giveUp(r, err)
			return
		}
	}
	p.published.Add(uint64(r.n))
	if p.messaging && !r.infra {
		_ = p.describe(events.New(events.QueueMessageSent, events.NewID(), events.String("queue", r.topic),
			events.Int("events", int64(r.n)), events.Float("duration_ms", float64(time.Since(start).Microseconds())/1000)))
	}
}

// Retry backoff for a bus that refuses a batch: the batch is held (and,
// through the bounded queue, so are publishers) until the bus takes it or
// Close gives up.
const (
	retryInitial = 50 * time.Millisecond
	retryMax     = 2 * time.Second
	// breakerThreshold consecutive failures open the circuit breaker.
	breakerThreshold = 3
)

// closeGrace is how long Close, past its context, waits for the loop to
// notice it gave up, so that the returned error can say why.
const closeGrace = 250 * time.Millisecond

// Circuit breaker states, as queue.circuit_breaker_state reports them.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// giveUp counts a batch that will not be sent and keeps the error for Flush
// and Close.
func (p *Publisher) giveUp(r request, cause error) {
	p.failed.Add(uint64(r.n))
	if cause == nil {
		cause = errors.New("publisher closed before the bus took the batch")
	}
	err := fmt.Errorf("bus: publish %d events to %q: %w", r.n, r.topic, cause)
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	if p.lost == nil {
		p.lost = err // kept for Close, whichever Flush takes p.err
	}
	p.errMu.Unlock()
}

// The breaker's state is the loop goroutine's alone. It opens after
// breakerThreshold consecutive failures; each retry while open is a
// half-open trial; a success closes it. Transitions are published as
// queue.circuit_breaker_state (tasker_queue_circuit_breaker_state).
func (p *Publisher) breakerFailure() {
	p.failures++
	if p.failures >= breakerThreshold && p.breaker != breakerOpen {
		p.setBreaker(breakerOpen)
	}
}

func (p *Publisher) breakerTrial() {
	if p.breaker == breakerOpen {
		p.setBreaker(breakerHalfOpen)
	}
}

func (p *Publisher) breakerSuccess() {
	p.failures = 0
	if p.breaker != breakerClosed {
		p.setBreaker(breakerClosed)
	}
}

func (p *Publisher) setBreaker(state int) {
	p.breaker = state
	p.breakerState.Store(int32(state))
	if p.messaging {
		_ = p.describe(events.New(events.QueueCircuitState, events.NewID(), events.String("queue", p.cfg.Topic), events.Int("state", int64(state))))
	}
}

// BreakerState returns the circuit breaker's state: 0 closed, 1 half-open
// (trying again), 2 open (the bus refuses batches; they are held).
func (p *Publisher) BreakerState() int { return int(p.breakerState.Load()) }

// describe hands an infrastructure event to the publishing goroutine
// without waiting; it is safe from any goroutine, the loop's included.
func (p *Publisher) describe(e events.Event) error {
	select {
	case p.infra <- e:
		return nil
	default:
		p.messagingDropped.Add(1)
		return ErrInfraBacklog
	}
}

// sendInfra moves waiting infrastructure events into batches of their own
// and sends the full ones, or all of them when flush is set. It runs on the
// loop goroutine only, which alone sends to the bus: these batches need no
// place in the application events' order, only in their own.
func (p *Publisher) sendInfra(flush bool) {
	for {
		select {
		case e := <-p.infra:
			part := p.cfg.Partition(e.CorrelationID)
			p.infraCur[part].Add(&e)
			if p.infraCur[part].Len() >= p.max {
				p.sendInfraBatch(part)
			}
			continue
		default:
		}
		break
	}
	if flush {
		for part := range p.infraCur {
			if p.infraCur[part].Len() > 0 {
				p.sendInfraBatch(part)
			}
		}
	}
}

func (p *Publisher) sendInfraBatch(part int) {
	n := p.infraCur[part].Len()
	p.publish(request{topic: p.topics[part], payload: p.infraCur[part].Take(), n: n, infra: true})
}

// Queued returns how many full batches wait for the bus: the in-memory
// bus's backlog, since it holds nothing itself.
func (p *Publisher) Queued() int { return queueDepth - len(p.room) }

// MessagingDropped returns how many infrastructure (messaging and database)
// events were dropped because too many were waiting.
func (p *Publisher) MessagingDropped() uint64 { return p.messagingDropped.Load() }

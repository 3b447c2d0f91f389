package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// ScopeName is the instrumentation scope of every routed metric and of the
// router's self-metrics.
const ScopeName = "github.com/sextant-telemetry/sextant/router"

// Drop reasons, the values of the reason label of sextant_router_events_dropped_total.
const (
	ReasonDecodeError  = "decode_error"  // events in a bus message that is not a valid batch
	ReasonMissingField = "missing_field" // an event lacking a field a rule needs
	// ReasonSchema marks an event that violates its catalog schema.
	ReasonSchema = "schema_violation"
)

// Poison message metadata keys.
const (
	MetadataPoisonReason  = "sextant_poison_reason" // decode_error or schema_violation
	MetadataPoisonError   = "sextant_poison_error"  // the error text
	MetadataPoisonSource  = "sextant_poison_source" // the bus message id it came from
	MetadataPoisonEventID = "sextant_poison_event"  // the event id, for schema violations
)

// EventPublisher takes events; *bus.Publisher is one.
type EventPublisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// Source is where the router consumes event batches from: every partition
// topic of the bus, each handled in order by its own handler.
type Source struct {
	Subscriber message.Subscriber
	Topics     []string
}

// Settings carries what the host passes in code rather than YAML.
type Settings struct {
	// MeterProvider receives the routed metrics and the self-metrics. Required.
	MeterProvider metric.MeterProvider
	// Logger receives the router's logs; nil means slog.Default().
	Logger *slog.Logger
	// Source is the bus to consume; needed only by Start.
	Source Source
	// CloseTimeout bounds draining in Shutdown; 0 means 30 s.
	CloseTimeout time.Duration
	// Poison receives what cannot be routed — undecodable bus messages and
	// events that violate their catalog schema — on PoisonTopic, with the
	// reason in the metadata. Nil means they are only counted and logged
	// (the in-memory bus has nowhere durable to keep them).
	Poison message.Publisher
	// PoisonTopic is the topic Poison publishes to.
	PoisonTopic string
	// Events, when set, receives the router's messaging events about the
	// bus messages it handles (queue.message_received, queue.message_deleted,
	// queue.message_redelivered, queue.retry_attempt, queue.error), never
	// about a message made only of infrastructure events. The router never
	// waits for it: an event it cannot take at once is dropped and counted.
	Events EventPublisher
	// SpanProcessor receives the spans the routes' span rules make; nil
	// turns tracing off (span rules are then validated but not applied).
	// The router flushes it in Shutdown but does not shut it down: the host
	// does, after the metrics (see docs/architecture.md, shutdown order).
	SpanProcessor sdktrace.SpanProcessor
	// Resource describes the service in exported spans; nil means the SDK's
	// default (which reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES).
	Resource *resource.Resource
	_        struct{}
}

// Router matches events to rules and records their metrics.
type Router struct {
	table  atomic.Pointer[table]
	logger *slog.Logger
	set    Settings

	received      atomic.Uint64
	routed        atomic.Uint64
	unmatched     atomic.Uint64
	decodeErrors  atomic.Uint64
	undecoded     atomic.Uint64
	invalid       atomic.Uint64 // events that violated their schema
	msgDropped    atomic.Uint64 // messaging events Settings.Events did not take
	seen          seenSet       // recent message ids, to notice redeliveries
	attempts      sync.Map      // message id → struct{}: messages being tried
	poisoned      atomic.Uint64 // messages written to the poison topic
	missingFields atomic.Uint64
	batches       atomic.Uint64

	reg     metric.Registration
	spanReg metric.Registration
	now     func() time.Time
	tr      *tracing // nil: tracing off

	sweepStop chan struct{} // ends the open-span sweeper
	sweepDone chan struct{}

	subs       atomic.Pointer[subscriberSet] // nil: no subscribers
	subMu      sync.Mutex                    // serialises changes to subs, and subsClosed
	subsClosed bool
	subWG      sync.WaitGroup // subscriber goroutines

	mu       sync.Mutex // guards wm, done, shutdown
	wm       *message.Router
	done     chan struct{} // closed when the watermill router's Run returned
	shutdown bool
	runErr   error // Run's result; read only after done is closed
}

// Stats is a point-in-time copy of the router's counters.
type Stats struct {
	Received         uint64 // events decoded from the bus or passed to Route
	Routed           uint64 // events that matched at least one rule
	Unmatched        uint64 // events that matched no rule
	DecodeErrors     uint64 // bus messages that were not valid batches
	Undecoded        uint64 // events in those messages, per their sextant_events metadata (1 when absent)
	Invalid          uint64 // bus events that violated their catalog schema (not routed)
	Poisoned         uint64 // messages written to the poison topic
	MissingFields    uint64 // metric recordings skipped for a missing field
	MessagingDropped uint64 // messaging events Settings.Events did not take at once
	Batches          uint64 // bus messages handled
	Overflowed       uint64 // recordings collapsed into overflow series
	Spans            SpanStats
}

// New compiles cfg and registers the router's self-metrics. The returned
// Router can Route events at once; Start also consumes the bus.
func New(cfg Config, set Settings) (*Router, error) {
	if set.MeterProvider == nil {
		return nil, errors.New("router: Settings.MeterProvider is required")
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.CloseTimeout == 0 {
		set.CloseTimeout = 30 * time.Second
	}
	meter := set.MeterProvider.Meter(ScopeName)
	t, err := compile(cfg, meter)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{logger: set.Logger, set: set, now: time.Now}
	if set.SpanProcessor != nil {
		r.tr = newTracing(cfg.Traces, set, func() time.Time { return r.now() })
	}
	r.table.Store(t)
	if err := r.registerSelfMetrics(meter); err != nil {
		return nil, fmt.Errorf("router: self-metrics: %w", err)
	}
	if r.tr != nil {
		if err := r.registerSpanMetrics(meter); err != nil {
			return nil, errors.Join(fmt.Errorf("router: span self-metrics: %w", err), r.reg.Unregister())
		}
	}
	return r, nil
}

// Route records every metric the rules map e to and, when tracing is on,
// applies its span rules; metrics recorded for an event that belongs to a
// sampled span carry that span as their exemplar. An event that every
// matching route's when excludes counts as unmatched. It does not dispatch
// to subscribers (HandleMessage does). It is safe for concurrent use,
// ignores ctx cancellation (recording is never abandoned half-way) and does
// not keep e. It returns the number of metric recordings made.
func (r *Router) Route(ctx context.Context, e *events.Event) int {
	r.received.Add(1)
	t := r.table.Load()
	bs := t.lookup(e.Name)
	n, matched := 0, false
	var ex *exemplar // the span metrics recorded below carry as their exemplar
	var exv exemplar
	if sbs := t.lookupSpans(e.Name); len(sbs) > 0 {
		if r.tr != nil {
			exv, matched = r.tr.handle(e, sbs, &r.missingFields)
			if exv.sc.IsSampled() {
				ex = &exv
			}
		} else {
			// Tracing is off, but the event matched a rule all the same.
			matched = spanRulesPass(e, sbs)
		}
	}
	if len(bs) == 0 && !matched {
		r.unmatched.Add(1)
		return 0
	}
	var when *filter // the last filter evaluated, and its result: a route's bindings are adjacent
	pass := true
	for _, b := range bs {
		if b.when != nil {
			if b.when != when {
				when, pass = b.when, b.when.match(e)
			}
			if !pass {
				continue
			}
		}
		matched = true
		if b.record(ctx, e, ex) {
			n++
			continue
		}
		r.missingFields.Add(1)
		if r.logger.Enabled(ctx, slog.LevelDebug) { // formatting the ids allocates
			r.logger.DebugContext(ctx, "event lacks a field a rule needs; metric skipped",
				"event", e.Name, "event_id", e.ID.String(), "correlation_id", e.CorrelationID.String(), "metric", b.inst.name)
		}
	}
	if !matched { // every route's when excluded it
		r.unmatched.Add(1)
		return 0
	}
	r.routed.Add(1)
	return n
}

var eventBufs = sync.Pool{New: func() any { s := make([]events.Event, 0, 512); return &s }}

// HandleMessage decodes one bus message, checks each event against its
// catalog schema, routes the valid ones and hands each, after routing, to
// the subscribers it matches (see Subscribe). What cannot be routed — the
// whole message when it does not decode, single events that violate their
// schema — is counted, logged with its id and, when Settings.Poison is set,
// written to the poison topic; a bad message never stops the router. It
// returns an error (so the bus redelivers the message) only when writing to
// the poison topic fails, so that nothing is lost. Events outside the
// catalog are routed unchecked: glob routes may match them. It is safe for
// concurrent use.
func (r *Router) HandleMessage(msg *message.Message) error {
	r.batches.Add(1)
	bufp := eventBufs.Get().(*[]events.Event)
	defer eventBufs.Put(bufp)
	evs, err := events.DecodeBatch(msg.Payload, (*bufp)[:0])
	if err != nil {
		lost := uint64(1)
		if n, perr := strconv.ParseUint(msg.Metadata.Get(bus.MetadataEvents), 10, 32); perr == nil && n > 0 {
			lost = n
		}
		if perr := r.poison(msg.Payload, ReasonDecodeError, err, msg.UUID, ""); perr != nil {
			r.emit(events.New(events.QueueError, events.NewID(), events.String("queue", message.SubscribeTopicFromCtx(msg.Context())), events.String("error_type", "poison")))
			return perr
		}
		r.emit(events.New(events.QueueError, events.NewID(), events.String("queue", message.SubscribeTopicFromCtx(msg.Context())), events.String("error_type", "decode")))
		r.decodeErrors.Add(1)
		r.undecoded.Add(lost)
		r.logger.Warn("a bus message is not a valid event batch; not routed",
			"message_id", msg.UUID, "bytes", len(msg.Payload), "events", lost, "poisoned", r.set.Poison != nil, "error", err)
		return nil
	}
	start := time.Now()
	ctx := msg.Context()
	t := r.table.Load()
	describe := r.set.Events != nil && msg.Metadata.Get(bus.MetadataInfrastructure) != "true"
	queue := message.SubscribeTopicFromCtx(ctx)
	// Set aside every invalid event before routing any: if that fails, the
	// message is retried or redelivered, and nothing was routed twice.
	var invalid []int
	for i := range evs {
		e := &evs[i]
		if s, ok := t.schemas[e.Name]; ok {
			if verr := s.Check(e); verr != nil {
				if perr := r.poisonEvent(e, verr, msg.UUID); perr != nil {
					return perr
				}
				invalid = append(invalid, i)
			}
		}
	}
	subs := r.subs.Load()
	for i := range evs {
		if len(invalid) > 0 && invalid[0] == i {
			invalid = invalid[1:]
			continue
		}
		r.Route(ctx, &evs[i])
		if subs != nil {
			subs.dispatch(ctx, &evs[i])
		}
	}
	if describe {
		r.emit(events.New(events.QueueMessageReceived, events.NewID(), events.String("queue", queue),
			events.Int("events", int64(len(evs))), events.Float("duration_ms", float64(time.Since(start).Microseconds())/1000)))
		// Handled messages are acknowledged once this returns nil.
		r.emit(events.New(events.QueueMessageDeleted, events.NewID(), events.String("queue", queue)))
	}
	clear(evs) // drop references into the payload before pooling
	*bufp = evs[:0]
	return nil
}

// done is a context that has ended: Publish with it never waits.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// emit hands a messaging event to Settings.Events without waiting: the
// handler runs inside the bus's delivery, and on the in-memory bus waiting
// for room on the same bus would deadlock.
func (r *Router) emit(e events.Event) {
	if r.set.Events == nil {
		return
	}
	if err := r.set.Events.Publish(done, e); err != nil {
		r.msgDropped.Add(1)
	}
}

// countAttempts wraps the handler inside Retry: every call after the first
// for one message is a retry attempt.
func (r *Router) countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if _, again := r.attempts.LoadOrStore(msg.UUID, struct{}{}); again && msg.Metadata.Get(bus.MetadataInfrastructure) != "true" {
			r.emit(events.New(events.QueueRetryAttempt, events.NewID(), events.String("queue", message.SubscribeTopicFromCtx(msg.Context()))))
		}
		return h(msg)
	}
}

// noticeRedelivery is the outermost middleware: once per delivery, a
// message id seen before is a redelivery (a retry inside Retry is not).
// Only this instance's deliveries are remembered: a message redelivered to
// another instance after this one died counts there as new.
func (r *Router) noticeRedelivery(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if r.set.Events != nil && msg.Metadata.Get(bus.MetadataInfrastructure) != "true" && r.seen.add(msg.UUID) {
			r.emit(events.New(events.QueueRedelivered, events.NewID(), events.String("queue", message.SubscribeTopicFromCtx(msg.Context()))))
		}
		return h(msg)
	}
}

// forgetAttempts wraps Retry: once a message is done with, its attempts
// are forgotten.
func (r *Router) forgetAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		defer r.attempts.Delete(msg.UUID)
		return h(msg)
	}
}

// seenSet remembers the last seenCapacity message ids.
type seenSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

const seenCapacity = 8192

// add records id and reports whether it was already there.
func (s *seenSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids, s.ring = make(map[string]struct{}, seenCapacity), make([]string, seenCapacity)
	}
	if _, ok := s.ids[id]; ok {
		return true
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next], s.ids[id] = id, struct{}{}
	s.next = (s.next + 1) % seenCapacity
	return false
}

// poisonEvent sets aside one event that violates its schema.
func (r *Router) poisonEvent(e *events.Event, verr error, source string) error {
	if err := r.poison(events.EncodeBatch([]events.Event{*e}), ReasonSchema, verr, source, e.ID.String()); err != nil {
		return err
	}
	r.invalid.Add(1)
	r.logger.Warn("an event violates its catalog schema; not routed",
		"event", e.Name, "event_id", e.ID.String(), "correlation_id", e.CorrelationID.String(),
		"message_id", source, "poisoned", r.set.Poison != nil, "error", verr)
	return nil
}

// poison writes payload to the poison topic, when there is one.
func (r *Router) poison(payload []byte, reason string, cause error, source, eventID string) error {
	if r.set.Poison == nil {
		return nil
	}
	pm := message.NewMessage(watermill.NewULID(), payload)
	pm.Metadata.Set(MetadataPoisonReason, reason)
	pm.Metadata.Set(MetadataPoisonError, cause.Error())
	pm.Metadata.Set(MetadataPoisonSource, source)
	if eventID != "" {
		pm.Metadata.Set(MetadataPoisonEventID, eventID)
	}
	if err := r.set.Poison.Publish(r.set.PoisonTopic, pm); err != nil {
		return fmt.Errorf("router: write to poison topic %q: %w", r.set.PoisonTopic, err)
	}
	r.poisoned.Add(1)
	return nil
}

// Start subscribes to Settings.Source and routes batches until Shutdown. It
// returns once the subscription is live, so that events published afterwards
// are not missed, or with the error that prevented it.
func (r *Router) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.shutdown {
		r.mu.Unlock()
		return errors.New("router: Start after Shutdown")
	}
	if r.wm != nil {
		r.mu.Unlock()
		return errors.New("router: already started")
	}
	if r.set.Source.Subscriber == nil || len(r.set.Source.Topics) == 0 {
		r.mu.Unlock()
		return errors.New("router: Settings.Source needs a Subscriber and at least one topic")
	}
	// watermill logs every handler start and stop at info: debug for us.
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	wm, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.set.CloseTimeout}, wlog)
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("router: %w", err)
	}
	wm.AddMiddleware(r.noticeRedelivery)
	if r.set.Poison != nil {
		// A handler error or panic is retried with backoff, then the
		// message is set aside: on watermill-sql a nack would block its
		// partition, redelivering the same message forever.
		pq, err := middleware.PoisonQueue(r.set.Poison, r.set.PoisonTopic)
		if err != nil {
			r.mu.Unlock()
			return fmt.Errorf("router: poison topic: %w", err)
		}
		retry := middleware.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, Multiplier: 2, Logger: wlog}
		wm.AddMiddleware(pq, r.forgetAttempts, retry.Middleware, r.countAttempts)
	}
	wm.AddMiddleware(middleware.Recoverer)
	for _, topic := range r.set.Source.Topics {
		wm.AddConsumerHandler("sextant.router."+topic, topic, r.set.Source.Subscriber, r.HandleMessage)
	}
	done := make(chan struct{})
	r.wm, r.done = wm, done
	if r.tr != nil {
		r.sweepStop, r.sweepDone = make(chan struct{}), make(chan struct{})
		go r.sweep(r.sweepStop, r.sweepDone)
	}
	r.mu.Unlock()
	go func() {
		// Run's context is not the caller's: Shutdown decides when to stop.
		// runErr is written before done is closed and read only after.
		r.runErr = wm.Run(context.WithoutCancel(ctx))
		close(done)
	}()
	select {
	case <-wm.Running():
		return nil
	case <-done:
		return fmt.Errorf("router: consuming %s: %w", strings.Join(r.set.Source.Topics, ", "), r.runErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops consuming, lets in-flight batches finish (bounded by
// Settings.CloseTimeout and ctx), lets every subscriber handle the events
// already in its queue (bounded by ctx; then their handlers' contexts are
// cancelled and the rest is dropped), ends the spans still open (reason
// shutdown), flushes Settings.SpanProcessor and unregisters the self-metrics. It is safe
// to call more than once and before Start.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.shutdown {
		r.mu.Unlock()
		return nil
	}
	r.shutdown = true
	wm, done := r.wm, r.done
	r.mu.Unlock()
	var errs []error
	if wm != nil {
		errs = append(errs, r.stopWatermill(ctx, wm, done))
	}
	// After the last message: subscribers drain what they were given.
	errs = append(errs, r.stopSubscribers(ctx))
	if r.sweepStop != nil {
		close(r.sweepStop)
		<-r.sweepDone
	}
	if r.tr != nil {
		// Spans still open end now, marked, and reach the exporter
		// before the host flushes metrics and stops the exporters.
		if err := r.tr.closeAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("router: flush spans: %w", err))
		}
	}
	if r.reg != nil {
		errs = append(errs, r.reg.Unregister())
	}
	if r.spanReg != nil {
		errs = append(errs, r.spanReg.Unregister())
	}
	return errors.Join(errs...)
}

// stopWatermill closes the watermill router and waits, bounded by ctx, until
// Close has drained the handlers and Run has returned. If Run already
// returned (its subscription failed), there is nothing to drain: Close would
// only wait out CloseTimeout. When ctx ends first, Close goes on in the
// background and ends within CloseTimeout.
func (r *Router) stopWatermill(ctx context.Context, wm *message.Router, done chan struct{}) error {
	select {
	case <-done:
		return r.runErr
	default:
	}
	closed := make(chan error, 1)
	go func() { closed <- wm.Close() }()
	var errs []error
	for closed != nil || done != nil {
		select {
		case err := <-closed:
			errs, closed = append(errs, err), nil
		case <-done:
			errs, done = append(errs, r.runErr), nil
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("router: shutdown: %w", ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}

// sweep ends the spans past their TTL even when no event arrives.
func (r *Router) sweep(stop, done chan struct{}) {
	defer close(done)
	every := min(max(r.tr.ttl/4, 10*time.Millisecond), 10*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.tr.sweep()
		case <-stop:
			return
		}
	}
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats {
	s := Stats{
		Received: r.received.Load(), Routed: r.routed.Load(), Unmatched: r.unmatched.Load(),
		DecodeErrors: r.decodeErrors.Load(), Undecoded: r.undecoded.Load(), Invalid: r.invalid.Load(), Poisoned: r.poisoned.Load(), MessagingDropped: r.msgDropped.Load(), MissingFields: r.missingFields.Load(), Batches: r.batches.Load(),
	}
	for _, inst := range r.table.Load().insts {
		s.Overflowed += inst.overflowed.Load()
	}
	if r.tr != nil {
		s.Spans = r.tr.stats()
	}
	return s
}

func (r *Router) registerSelfMetrics(meter metric.Meter) error {
	received, err1 := meter.Int64ObservableCounter("sextant.router.events.received", metric.WithDescription("Events the router received"))
	routed, err2 := meter.Int64ObservableCounter("sextant.router.events.routed", metric.WithDescription("Events that matched at least one rule"))
	unmatched, err3 := meter.Int64ObservableCounter("sextant.router.events.unmatched", metric.WithDescription("Events that matched no rule"))
	dropped, err4 := meter.Int64ObservableCounter("sextant.router.events.dropped", metric.WithDescription("Events dropped (decode_error) or metric recordings skipped (missing_field)"))
	batches, err5 := meter.Int64ObservableCounter("sextant.router.batches.received", metric.WithDescription("Bus messages (event batches) the router handled"))
	overflow, err6 := meter.Int64ObservableCounter("sextant.router.series.overflow", metric.WithDescription("Recordings collapsed into a metric's overflow series because it reached its series limit"))
	series, err7 := meter.Int64ObservableGauge("sextant.router.series", metric.WithDescription("Label sets held per routed metric"))
	poisoned, err8 := meter.Int64ObservableCounter("sextant.router.messages.poisoned", metric.WithDescription("Bus messages written to the poison topic: undecodable batches and single events that violate their schema"))
	subDispatched, err9 := meter.Int64ObservableCounter("sextant.subscriber.events.dispatched", metric.WithDescription("Events put in a subscriber's queue"))
	subFailed, err10 := meter.Int64ObservableCounter("sextant.subscriber.events.failed", metric.WithDescription("Subscriber handler attempts that returned an error or panicked"))
	subDropped, err11 := meter.Int64ObservableCounter("sextant.subscriber.events.dropped", metric.WithDescription("Events a subscriber never handled: queue_full, retries_exhausted or unsubscribed"))
	subPanics, err12 := meter.Int64ObservableCounter("sextant.subscriber.panics", metric.WithDescription("Subscriber handler and filter calls that panicked"))
	subQueue, err13 := meter.Int64ObservableGauge("sextant.subscriber.queue.length", metric.WithDescription("Events waiting in a subscriber's queue"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13); err != nil {
		return err
	}
	decodeSet := metric.WithAttributes(attribute.String("reason", ReasonDecodeError))
	missingSet := metric.WithAttributes(attribute.String("reason", ReasonMissingField))
	schemaSet := metric.WithAttributes(attribute.String("reason", ReasonSchema))
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(received, int64(r.received.Load()))
		o.ObserveInt64(routed, int64(r.routed.Load()))
		o.ObserveInt64(unmatched, int64(r.unmatched.Load()))
		o.ObserveInt64(dropped, int64(r.undecoded.Load()), decodeSet)
		o.ObserveInt64(dropped, int64(r.missingFields.Load()), missingSet)
		o.ObserveInt64(dropped, int64(r.invalid.Load()), schemaSet)
		o.ObserveInt64(poisoned, int64(r.poisoned.Load()))
		o.ObserveInt64(batches, int64(r.batches.Load()))
		for _, inst := range r.table.Load().insts {
			m := metric.WithAttributes(attribute.String("metric", inst.name))
			o.ObserveInt64(overflow, int64(inst.overflowed.Load()), m)
			o.ObserveInt64(series, int64(inst.seriesCount()), m)
		}
		if subs := r.subs.Load(); subs != nil {
			for _, s := range subs.list {
				name := attribute.String("subscriber", s.sub.Name)
				m := metric.WithAttributes(name)
				o.ObserveInt64(subDispatched, int64(s.dispatched.Load()), m)
				o.ObserveInt64(subFailed, int64(s.failed.Load()), m)
				o.ObserveInt64(subPanics, int64(s.panics.Load()), m)
				o.ObserveInt64(subQueue, int64(len(s.queue)), m)
				o.ObserveInt64(subDropped, int64(s.droppedFull.Load()), metric.WithAttributes(name, attribute.String("reason", ReasonQueueFull)))
				o.ObserveInt64(subDropped, int64(s.droppedRetries.Load()), metric.WithAttributes(name, attribute.String("reason", ReasonRetriesExhausted)))
				o.ObserveInt64(subDropped, int64(s.droppedUnsub.Load()), metric.WithAttributes(name, attribute.String("reason", ReasonUnsubscribed)))
			}
		}
		return nil
	}, received, routed, unmatched, dropped, batches, overflow, series, poisoned, subDispatched, subFailed, subDropped, subPanics, subQueue)
	if err != nil {
		return err
	}
	r.reg = reg
	return nil
}

func (r *Router) registerSpanMetrics(meter metric.Meter) error {
	started, err1 := meter.Int64ObservableCounter("sextant.router.spans.started", metric.WithDescription("Spans opened by start events"))
	recorded, err2 := meter.Int64ObservableCounter("sextant.router.spans.recorded", metric.WithDescription("Finished spans made from one event: by a record rule, or from an end event whose start never arrived (from=end_event)"))
	ended, err3 := meter.Int64ObservableCounter("sextant.router.spans.ended", metric.WithDescription("Open spans ended, by reason: end_event, parent_ended, expired, evicted or shutdown"))
	spanEvents, err4 := meter.Int64ObservableCounter("sextant.router.span_events", metric.WithDescription("Events added to open spans as span events"))
	unmatched, err5 := meter.Int64ObservableCounter("sextant.router.spans.unmatched", metric.WithDescription("Span rules that found no open span (op=end or event) or found one already open (op=start)"))
	open, err6 := meter.Int64ObservableGauge("sextant.router.spans.open", metric.WithDescription("Spans waiting for their end event"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	fromRule := metric.WithAttributes(attribute.String("from", "record_rule"))
	fromEnd := metric.WithAttributes(attribute.String("from", "end_event"))
	reasons := make([]metric.ObserveOption, len(endReasons))
	for i, reason := range endReasons {
		reasons[i] = metric.WithAttributes(attribute.String("reason", reason))
	}
	opEndSet := metric.WithAttributes(attribute.String("op", "end"))
	opEventSet := metric.WithAttributes(attribute.String("op", "event"))
	opStartSet := metric.WithAttributes(attribute.String("op", "start"))
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := r.tr
		o.ObserveInt64(started, int64(t.started.Load()))
		o.ObserveInt64(recorded, int64(t.recorded.Load()), fromRule)
		o.ObserveInt64(recorded, int64(t.recordedFromEnd.Load()), fromEnd)
		for i := range endReasons {
			o.ObserveInt64(ended, int64(t.ended[i].Load()), reasons[i])
		}
		o.ObserveInt64(spanEvents, int64(t.spanEvents.Load()))
		o.ObserveInt64(unmatched, int64(t.unmatchedEnd.Load()), opEndSet)
		o.ObserveInt64(unmatched, int64(t.unmatchedEvent.Load()), opEventSet)
		o.ObserveInt64(unmatched, int64(t.duplicateStart.Load()), opStartSet)
		o.ObserveInt64(open, t.openCount.Load())
		return nil
	}, started, recorded, ended, spanEvents, unmatched, open)
	if err != nil {
		return err
	}
	r.spanReg = reg
	return nil
}

package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// ErrShutdown is returned by Subscribe after Shutdown.
var ErrShutdown = errors.New("router: shut down")

// Handler handles one event for a subscriber. The event is the
// subscriber's own copy: the handler may keep it and its Attrs. ctx is
// cancelled when the subscription is removed or when Shutdown gives up
// draining. A non-nil error (or a panic) fails the attempt; the router
// retries it as the Subscription says.
type Handler func(ctx context.Context, e *events.Event) error

// OverflowPolicy says what happens to an event for a subscriber whose
// queue is full.
type OverflowPolicy string

// The overflow policies.
const (
	// OverflowPolicyDrop drops the event and counts it
	// (sextant_subscriber_events_dropped_total{reason="queue_full"}): a slow
	// subscriber never slows the router. The default.
	OverflowPolicyDrop OverflowPolicy = "drop"
	// OverflowPolicyBlock waits for room in the queue. This is backpressure:
	// the router's bus handler waits, so routing, other subscribers and, once
	// the bus's own buffers are full, publishers wait too. Use it only for a
	// subscriber that must see every event and keeps up.
	OverflowPolicyBlock OverflowPolicy = "block"
)

var overflowPolicies = []OverflowPolicy{OverflowPolicyDrop, OverflowPolicyBlock}

// UnmarshalText rejects unknown policies and lists the allowed ones.
func (p *OverflowPolicy) UnmarshalText(b []byte) error {
	if !slices.Contains(overflowPolicies, OverflowPolicy(b)) {
		return fmt.Errorf("unknown overflow policy %q (allowed: drop, block)", b)
	}
	*p = OverflowPolicy(b)
	return nil
}

// Subscription defaults.
const (
	DefaultSubscriberQueue   = 1024
	DefaultSubscriberBackoff = 10 * time.Millisecond
)

// Drop reasons, the values of the reason label of
// sextant_subscriber_events_dropped_total.
const (
	ReasonQueueFull        = "queue_full"        // the queue was full (OverflowPolicyDrop)
	ReasonRetriesExhausted = "retries_exhausted" // every attempt failed
	ReasonUnsubscribed     = "unsubscribed"      // queued or being retried when the subscription ended
)

// Subscription describes a Go handler for lifecycle events.
type Subscription struct {
	// Name identifies the subscriber: unique per router, the subscriber
	// label of its self-metrics and its name in Subscribers.
	Name string
	// Events are event names or patterns over their dot-separated segments,
	// as in a route's match: "*", "?" and "[…]" match within one segment
	// ("step.*" matches step.claimed, not step.a.b), a "**" segment matches
	// any number of segments ("task.**", "**.failed"). A lone "*" means every
	// event, like "**". A name or pattern must match a catalog event.
	Events []string
	// Groups are catalog groups (events.GroupStep, …). An event is delivered
	// when its name matches Events or its group is in Groups.
	Groups []string
	// Filter, when set, further selects among the matching events. It runs
	// on the router's path, so it must be quick, and must not keep the
	// event; a panic in it is recovered and counted, and the event skipped.
	Filter func(e *events.Event) bool
	// Handler handles each event. Required.
	Handler Handler
	// Retries is how many more times a failed event is tried; 0 means none.
	Retries int
	// Backoff is the wait before the first retry, doubled before each next
	// one; 0 means DefaultSubscriberBackoff.
	Backoff time.Duration
	// Queue bounds the events waiting for the handler; 0 means
	// DefaultSubscriberQueue.
	Queue int
	// Overflow is what happens to an event when the queue is full; empty
	// means OverflowPolicyDrop.
	Overflow OverflowPolicy
}

// SubscriberStats is a point-in-time copy of one subscriber's counters.
type SubscriberStats struct {
	Name       string
	Events     []string
	Groups     []string
	Dispatched uint64 // events put in its queue
	Succeeded  uint64 // events its handler handled without error
	Failed     uint64 // attempts that returned an error or panicked
	Dropped    uint64 // events given up: queue full, retries exhausted or unsubscribed
	Panics     uint64 // attempts (and filter calls) that panicked
	Queued     int    // events waiting now
	// LastError is the text of the last failed attempt's error or panic;
	// LastErrorAt is when it happened (zero when none).
	LastError   string
	LastErrorAt time.Time
}

// subscriber is one live subscription: its goroutine, queue and counters.
type subscriber struct {
	sub    Subscription
	all    bool
	pats   []pattern
	logger *slog.Logger
	now    func() time.Time

	queue  chan events.Event
	ctx    context.Context // the handler's; cancelled on a hard stop
	cancel context.CancelFunc
	quit   chan struct{} // closed: take no more events
	drain  atomic.Bool   // on quit, handle what is queued rather than discard it
	mu     sync.RWMutex  // senders hold it shared; the goroutine takes it to shut the queue
	closed bool          // guarded by mu
	done   chan struct{} // closed when the goroutine returned
	once   sync.Once

	dispatched, succeeded, failed, panics     atomic.Uint64
	droppedFull, droppedRetries, droppedUnsub atomic.Uint64

	errMu     sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// subscriberSet is an immutable snapshot of the subscribers, with every
// catalog name resolved to its subscribers: dispatch reads it without locks.
type subscriberSet struct {
	list   []*subscriber
	byName map[string][]*subscriber
}

func newSubscriberSet(list []*subscriber) *subscriberSet {
	set := &subscriberSet{list: list, byName: map[string][]*subscriber{}}
	for _, s := range events.Catalog() {
		set.byName[s.Name] = nil // known, even without subscribers: no slow path
		for _, sub := range list {
			if sub.matches(s.Name, s.Group) {
				set.byName[s.Name] = append(set.byName[s.Name], sub)
			}
		}
	}
	return set
}

// lookup returns the subscribers of an event name. Names the snapshot does
// not know, rare — custom events registered after it was built, or names
// outside the catalog — are matched on the spot.
func (set *subscriberSet) lookup(name string) []*subscriber {
	if subs, ok := set.byName[name]; ok {
		return subs
	}
	group := ""
	if s, known := events.Lookup(name); known {
		group = s.Group
	}
	var out []*subscriber
	for _, sub := range set.list {
		if sub.matches(name, group) {
			out = append(out, sub)
		}
	}
	return out
}

func (s *subscriber) matches(name, group string) bool {
	if s.all || (group != "" && slices.Contains(s.sub.Groups, group)) {
		return true
	}
	for _, p := range s.pats {
		if p.match(name) {
			return true
		}
	}
	return false
}

// Subscribe adds a subscriber: from now on, each valid event the router
// takes from the bus (HandleMessage; Route does not dispatch) whose name or
// group matches is copied into the subscriber's bounded queue, after the
// event's metrics are recorded, and handed to s.Handler by the subscriber's
// own goroutine, one event at a time in arrival order per bus partition.
// Delivery is best effort — a full queue (OverflowPolicyDrop) or exhausted
// retries drop an event, counted — and may repeat: a message the bus
// redelivers is dispatched again, so a handler that must not act twice
// dedupes on e.ID.
//
// Handlers are isolated: a panic is recovered, logged with its stack and
// counted; a failed event is retried with backoff, then dropped and counted;
// a slow handler fills only its own queue. None of this affects routing,
// other subscribers or publishers, except under OverflowPolicyBlock.
//
// It works before and after Start, is safe for concurrent use and fails for
// an invalid subscription, a name already subscribed, or after Shutdown
// (ErrShutdown). The returned unsubscribe removes the subscriber at once:
// nothing more is queued, the handler's context is cancelled, queued events
// are discarded (counted as dropped, reason unsubscribed) and it returns
// once the handler in flight has returned and the goroutine has ended. It
// may be called more than once, but not from the subscriber's own handler,
// which it would wait for.
func (r *Router) Subscribe(s Subscription) (unsubscribe func(), err error) {
	sub, err := r.newSubscriber(s)
	if err != nil {
		return nil, err
	}
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.subsClosed {
		sub.cancel()
		return nil, fmt.Errorf("router: subscribe %q: %w", s.Name, ErrShutdown)
	}
	old := r.subs.Load()
	var list []*subscriber
	if old != nil {
		list = old.list
		if slices.ContainsFunc(list, func(o *subscriber) bool { return o.sub.Name == s.Name }) {
			sub.cancel()
			return nil, fmt.Errorf("router: subscribe %q: a subscriber with this name exists", s.Name)
		}
	}
	r.subs.Store(newSubscriberSet(append(slices.Clip(list), sub)))
	r.subWG.Add(1)
	go func() {
		defer r.subWG.Done()
		sub.run()
	}()
	return func() { r.unsubscribe(sub) }, nil
}

func (r *Router) newSubscriber(s Subscription) (*subscriber, error) {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("field Name is empty"))
	}
	if s.Handler == nil {
		errs = append(errs, errors.New("field Handler is nil"))
	}
	if len(s.Events) == 0 && len(s.Groups) == 0 {
		errs = append(errs, errors.New("give Events or Groups, or both"))
	}
	sub := &subscriber{logger: r.logger.With("subscriber", s.Name), now: r.now}
	for i, e := range s.Events {
		if e == "*" || e == "**" {
			sub.all = true
			continue
		}
		p, err := compilePattern(e)
		if err == nil {
			_, err = matchCatalog(e)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("field Events[%d]: %w", i, err))
			continue
		}
		sub.pats = append(sub.pats, p)
	}
	groups := append(events.Groups(), events.GroupCustom)
	for i, g := range s.Groups {
		if !slices.Contains(groups, g) {
			errs = append(errs, fmt.Errorf("field Groups[%d]: unknown group %q (known: %s)", i, g, strings.Join(groups, ", ")))
		}
	}
	if s.Retries < 0 || s.Backoff < 0 || s.Queue < 0 {
		errs = append(errs, errors.New("fields Retries, Backoff and Queue must not be negative"))
	}
	s.Overflow = cmp.Or(s.Overflow, OverflowPolicyDrop)
	if !slices.Contains(overflowPolicies, s.Overflow) {
		errs = append(errs, fmt.Errorf("field Overflow: unknown policy %q (allowed: drop, block)", s.Overflow))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("router: subscribe %q: %w", s.Name, err)
	}
	s.Backoff = cmp.Or(s.Backoff, DefaultSubscriberBackoff)
	s.Queue = cmp.Or(s.Queue, DefaultSubscriberQueue)
	s.Events, s.Groups = slices.Clone(s.Events), slices.Clone(s.Groups)
	sub.sub = s
	sub.queue = make(chan events.Event, s.Queue)
	sub.ctx, sub.cancel = context.WithCancel(context.Background())
	sub.quit, sub.done = make(chan struct{}), make(chan struct{})
	return sub, nil
}

// unsubscribe removes sub from the set, discards its queue and waits for
// its goroutine.
func (r *Router) unsubscribe(sub *subscriber) {
	r.subMu.Lock()
	if old := r.subs.Load(); old != nil && slices.Contains(old.list, sub) {
		rest := slices.DeleteFunc(slices.Clone(old.list), func(o *subscriber) bool { return o == sub })
		if len(rest) == 0 {
			r.subs.Store(nil) // no subscribers: dispatch costs one atomic load per batch
		} else {
			r.subs.Store(newSubscriberSet(rest))
		}
	}
	r.subMu.Unlock()
	sub.stop(false)
	<-sub.done
}

// stopSubscribers ends every subscriber after Shutdown stopped consuming:
// each handles what is queued, until ctx ends; then handlers' contexts are
// cancelled and the rest discarded. It waits for the goroutines while ctx
// lasts; a handler that ignores its context ends on its own time.
func (r *Router) stopSubscribers(ctx context.Context) error {
	r.subMu.Lock()
	r.subsClosed = true
	set := r.subs.Swap(nil)
	r.subMu.Unlock()
	if set != nil {
		for _, sub := range set.list {
			sub.stop(true)
		}
	}
	done := make(chan struct{})
	go func() {
		r.subWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if set != nil {
			for _, sub := range set.list {
				sub.cancel()
			}
		}
		return fmt.Errorf("router: shutdown: draining subscribers: %w", ctx.Err())
	}
}

// stop ends the subscriber; drain says whether queued events are still
// handled. Only the first call counts.
func (s *subscriber) stop(drain bool) {
	s.once.Do(func() {
		s.drain.Store(drain)
		if !drain {
			s.cancel()
		}
		close(s.quit)
	})
}

// run is the subscriber's goroutine.
func (s *subscriber) run() {
	defer close(s.done)
	defer s.cancel()
	for {
		select {
		case e := <-s.queue:
			s.handle(&e)
		case <-s.quit:
			// Wait out senders that saw the queue open, then shut it.
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			for {
				select {
				case e := <-s.queue:
					s.handle(&e)
				default:
					return
				}
			}
		}
	}
}

// handle runs the handler on e with retries. After a hard stop it only
// counts e as dropped.
func (s *subscriber) handle(e *events.Event) {
	backoff := s.sub.Backoff
	for attempt := 0; ; attempt++ {
		if s.ctx.Err() != nil || (!s.drain.Load() && isClosed(s.quit)) {
			s.droppedUnsub.Add(1)
			return
		}
		err := s.call(e)
		if err == nil {
			s.succeeded.Add(1)
			return
		}
		s.failed.Add(1)
		s.errMu.Lock()
		s.lastErr, s.lastErrAt = err.Error(), s.now()
		s.errMu.Unlock()
		if s.ctx.Err() != nil { // the subscription ended under the handler
			s.droppedUnsub.Add(1)
			return
		}
		if attempt >= s.sub.Retries {
			s.droppedRetries.Add(1)
			s.logger.Warn("a subscriber failed on an event; dropped",
				"event", e.Name, "event_id", e.ID.String(), "correlation_id", e.CorrelationID.String(), "attempts", attempt+1, "error", err)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
		backoff *= 2
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// call runs the handler once, turning a panic into an error.
func (s *subscriber) call(e *events.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.panics.Add(1)
			err = fmt.Errorf("panic: %v", p)
			s.logger.Error("a subscriber's handler panicked", "event", e.Name, "event_id", e.ID.String(), "correlation_id", e.CorrelationID.String(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return s.sub.Handler(s.ctx, e)
}

// filter runs the subscription's Filter, counting a panic as a skip.
func (s *subscriber) filter(e *events.Event) (ok bool) {
	if s.sub.Filter == nil {
		return true
	}
	defer func() {
		if p := recover(); p != nil {
			ok = false
			s.panics.Add(1)
			s.logger.Error("a subscriber's filter panicked; event skipped", "event", e.Name, "event_id", e.ID.String(), "correlation_id", e.CorrelationID.String(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return s.sub.Filter(e)
}

// dispatch offers e to its subscribers. ctx bounds the wait of a blocking
// subscriber.
func (set *subscriberSet) dispatch(ctx context.Context, e *events.Event) {
	for _, s := range set.lookup(e.Name) {
		if !s.filter(e) {
			continue
		}
		s.offer(ctx, e)
	}
}

// offer copies e into the queue: Attrs are cloned (the decoded batch
// shares one array among its events), strings are immutable and shared.
func (s *subscriber) offer(ctx context.Context, e *events.Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || isClosed(s.quit) {
		s.droppedUnsub.Add(1)
		return
	}
	ev := *e
	ev.Attrs = slices.Clone(e.Attrs)
	select {
	case s.queue <- ev:
		s.dispatched.Add(1)
		return
	default:
	}
	if s.sub.Overflow != OverflowPolicyBlock {
		s.droppedFull.Add(1)
		return
	}
	select {
	case s.queue <- ev:
		s.dispatched.Add(1)
	case <-s.quit:
		s.droppedUnsub.Add(1)
	case <-ctx.Done():
		s.droppedFull.Add(1)
	}
}

func (s *subscriber) stats() SubscriberStats {
	s.errMu.Lock()
	lastErr, lastErrAt := s.lastErr, s.lastErrAt
	s.errMu.Unlock()
	return SubscriberStats{
		Name: s.sub.Name, Events: slices.Clone(s.sub.Events), Groups: slices.Clone(s.sub.Groups),
		Dispatched: s.dispatched.Load(), Succeeded: s.succeeded.Load(), Failed: s.failed.Load(),
		Dropped: s.droppedFull.Load() + s.droppedRetries.Load() + s.droppedUnsub.Load(),
		Panics:  s.panics.Load(), Queued: len(s.queue), LastError: lastErr, LastErrorAt: lastErrAt,
	}
}

// Subscribers returns the current subscribers' stats, sorted by name. It
// is safe for concurrent use; after Shutdown it returns none.
func (r *Router) Subscribers() []SubscriberStats {
	set := r.subs.Load()
	if set == nil {
		return nil
	}
	out := make([]SubscriberStats, 0, len(set.list))
	for _, s := range set.list {
		out = append(out, s.stats())
	}
	slices.SortFunc(out, func(a, b SubscriberStats) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

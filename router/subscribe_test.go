package router_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

// validEvent returns an event of the catalog name carrying every field of
// its schema (placeholder values), with attrs overriding them.
func validEvent(t testing.TB, name string, attrs ...events.Attr) events.Event {
	t.Helper()
	s, ok := events.Lookup(name)
	require.True(t, ok, name)
	var all []events.Attr
	for _, f := range s.Fields {
		if i := slices.IndexFunc(attrs, func(a events.Attr) bool { return a.Key == f.Name }); i >= 0 {
			all = append(all, attrs[i])
			continue
		}
		switch f.Type {
		case events.KindString:
			all = append(all, events.String(f.Name, "x"))
		case events.KindInt:
			all = append(all, events.Int(f.Name, 1))
		case events.KindFloat:
			all = append(all, events.Float(f.Name, 1.5))
		case events.KindBool:
			all = append(all, events.Bool(f.Name, true))
		}
	}
	e := events.New(name, cid1, all...)
	require.NoError(t, e.Validate())
	return e
}

// handle passes events to r as one bus message.
func handle(t testing.TB, r *router.Router, evs ...events.Event) {
	t.Helper()
	require.NoError(t, r.HandleMessage(newMessage(events.EncodeBatch(evs))))
}

// recorder is a handler that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (rec *recorder) handle(_ context.Context, e *events.Event) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.evs = append(rec.evs, *e)
	return nil
}

func (rec *recorder) names() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, e := range rec.evs {
		out = append(out, e.Name)
	}
	return out
}

func TestSubscribeMatching(t *testing.T) {
	t.Parallel()
	all := []string{events.StepCompleted, events.StepFailed, events.TaskCompleted, events.TaskFailed,
		events.ObservabilityStepBackoff, events.DBQueryExecuted}
	tests := []struct {
		name string
		sub  router.Subscription
		want []string
	}{
		{name: "exact name", sub: router.Subscription{Events: []string{events.StepFailed}}, want: []string{events.StepFailed}},
		{name: "one segment per star", sub: router.Subscription{Events: []string{"step.*"}}, want: []string{events.StepCompleted, events.StepFailed}},
		{name: "double star spans segments", sub: router.Subscription{Events: []string{"**.failed"}}, want: []string{events.StepFailed, events.TaskFailed}},
		{name: "double star after a prefix", sub: router.Subscription{Events: []string{"observability.**"}}, want: []string{events.ObservabilityStepBackoff}},
		{name: "lone star is every event", sub: router.Subscription{Events: []string{"*"}}, want: all},
		{name: "group", sub: router.Subscription{Groups: []string{events.GroupTask}}, want: []string{events.TaskCompleted, events.TaskFailed}},
		{name: "database group is not the name prefix", sub: router.Subscription{Groups: []string{events.GroupDatabase}}, want: []string{events.DBQueryExecuted}},
		{name: "name or group", sub: router.Subscription{Events: []string{events.StepFailed}, Groups: []string{events.GroupTask}},
			want: []string{events.StepFailed, events.TaskCompleted, events.TaskFailed}},
		{name: "filter", sub: router.Subscription{Events: []string{"**"}, Filter: func(e *events.Event) bool {
			v, _ := e.Attr("error_type")
			return v.Str() == "timeout"
		}}, want: []string{events.StepFailed, events.TaskFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRouter(t, stepRoutes, router.Settings{})
			rec := &recorder{}
			tt.sub.Name, tt.sub.Handler = "sub", rec.handle
			_, err := r.Subscribe(tt.sub)
			require.NoError(t, err)
			var evs []events.Event
			for _, name := range all {
				evs = append(evs, validEvent(t, name, events.String("error_type", "timeout")))
			}
			evs = append(evs, validEvent(t, events.StepFailed, events.String("error_type", "handler_error")))
			if tt.sub.Filter == nil {
				evs = evs[:len(evs)-1]
			}
			handle(t, r, evs...)
			require.NoError(t, r.Shutdown(context.Background())) // drains the queue
			require.Equal(t, tt.want, rec.names())
		})
	}
}

func TestSubscribeRejects(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, *events.Event) error { return nil }
	tests := []struct {
		name string
		sub  router.Subscription
		want string
	}{
		{name: "no name", sub: router.Subscription{Events: []string{"*"}, Handler: ok}, want: "field Name is empty"},
		{name: "no handler", sub: router.Subscription{Name: "a", Events: []string{"*"}}, want: "field Handler is nil"},
		{name: "nothing to match", sub: router.Subscription{Name: "a", Handler: ok}, want: "give Events or Groups"},
		{name: "unknown event", sub: router.Subscription{Name: "a", Events: []string{"step.exploded"}, Handler: ok}, want: `field Events[0]: unknown event "step.exploded"`},
		{name: "pattern matching nothing", sub: router.Subscription{Name: "a", Events: []string{"*", "nothing.*"}, Handler: ok}, want: `field Events[1]: pattern "nothing.*" matches no event`},
		{name: "bad pattern", sub: router.Subscription{Name: "a", Events: []string{"step..x"}, Handler: ok}, want: "empty segment"},
		{name: "unknown group", sub: router.Subscription{Name: "a", Groups: []string{"db"}, Handler: ok}, want: `field Groups[0]: unknown group "db"`},
		{name: "negative", sub: router.Subscription{Name: "a", Events: []string{"*"}, Handler: ok, Retries: -1}, want: "must not be negative"},
		{name: "bad overflow", sub: router.Subscription{Name: "a", Events: []string{"*"}, Handler: ok, Overflow: "spill"}, want: `unknown policy "spill"`},
		{name: "taken name", sub: router.Subscription{Name: "taken", Events: []string{"*"}, Handler: ok}, want: `"taken": a subscriber with this name exists`},
	}
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	_, err := r.Subscribe(router.Subscription{Name: "taken", Events: []string{"*"}, Handler: ok})
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Subscribe(tt.sub)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.NoError(t, r.Shutdown(context.Background()))
	_, err = r.Subscribe(router.Subscription{Name: "late", Events: []string{"*"}, Handler: ok})
	require.ErrorIs(t, err, router.ErrShutdown)
	require.Empty(t, r.Subscribers())
}

func TestSubscriberPanicIsIsolated(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	healthy := &recorder{}
	_, err := r.Subscribe(router.Subscription{Name: "healthy", Events: []string{events.StepCompleted}, Handler: healthy.handle})
	require.NoError(t, err)
	_, err = r.Subscribe(router.Subscription{Name: "panicky", Events: []string{"step.*"}, Handler: func(context.Context, *events.Event) error {
		panic("boom")
	}})
	require.NoError(t, err)
	const n = 50
	for i := range n {
		handle(t, r, stepCompleted(cid1, fmt.Sprint("ns", i%2), 1))
	}
	require.Eventually(t, func() bool { return r.Subscribers()[1].Dropped == n }, 10*time.Second, time.Millisecond)
	require.Equal(t, map[string]float64{
		"correlation_id=" + cid1.String() + ",namespace=ns0": n / 2,
		"correlation_id=" + cid1.String() + ",namespace=ns1": n / 2,
	}, collect(t, reader, "tasker.steps.successes.total"), "routing goes on")
	require.Equal(t, map[string]float64{"subscriber=healthy": 0, "subscriber=panicky": n}, collect(t, reader, "sextant.subscriber.panics"))
	require.Equal(t, map[string]float64{"subscriber=healthy": 0, "subscriber=panicky": n}, collect(t, reader, "sextant.subscriber.events.failed"))
	require.Equal(t, float64(n), collect(t, reader, "sextant.subscriber.events.dropped")["reason=retries_exhausted,subscriber=panicky"])
	st := r.Subscribers()
	require.Equal(t, "panicky", st[1].Name)
	require.Equal(t, "panic: boom", st[1].LastError)
	require.False(t, st[1].LastErrorAt.IsZero())
	require.EqualValues(t, n, st[1].Panics)
	require.NoError(t, r.Shutdown(context.Background()))
	require.Len(t, healthy.names(), n, "the healthy subscriber got every event")
	require.EqualValues(t, n, r.Stats().Routed)
}

func TestSubscriberRetriesThenDrops(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	var attempts sync.Map // namespace → *atomic.Int32
	_, err := r.Subscribe(router.Subscription{Name: "flaky", Events: []string{events.StepCompleted}, Retries: 2, Backoff: time.Microsecond,
		Handler: func(_ context.Context, e *events.Event) error {
			ns, _ := e.Attr("namespace")
			n, _ := attempts.LoadOrStore(ns.Str(), new(atomic.Int32))
			if k := n.(*atomic.Int32).Add(1); ns.Str() == "recovers" && k == 3 {
				return nil
			}
			return errors.New("db unavailable")
		}})
	require.NoError(t, err)
	handle(t, r, stepCompleted(cid1, "recovers", 1), stepCompleted(cid1, "never", 1))
	require.Eventually(t, func() bool { st := r.Subscribers()[0]; return st.Succeeded+st.Dropped == 2 }, 10*time.Second, time.Millisecond)
	st := r.Subscribers()[0]
	require.Equal(t, router.SubscriberStats{Name: "flaky", Events: []string{events.StepCompleted}, Dispatched: 2, Succeeded: 1, Failed: 5, Dropped: 1,
		LastError: "db unavailable", LastErrorAt: st.LastErrorAt}, st)
	require.Equal(t, map[string]float64{
		"reason=queue_full,subscriber=flaky": 0, "reason=retries_exhausted,subscriber=flaky": 1, "reason=unsubscribed,subscriber=flaky": 0,
	}, collect(t, reader, "sextant.subscriber.events.dropped"))
	require.Equal(t, map[string]float64{"subscriber=flaky": 2}, collect(t, reader, "sextant.subscriber.events.dispatched"))
}

// gated is a handler that signals each event it starts and waits for the
// gate (or its context) before it returns.
type gated struct {
	entered chan string
	gate    chan struct{}
	handled atomic.Int32
}

func newGated() *gated { return &gated{entered: make(chan string, 100), gate: make(chan struct{})} }

func (g *gated) handle(ctx context.Context, e *events.Event) error {
	g.entered <- e.Name
	select {
	case <-g.gate:
		g.handled.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSubscriberOverflowDropCounts(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	g := newGated()
	_, err := r.Subscribe(router.Subscription{Name: "slow", Events: []string{"*"}, Queue: 2, Handler: g.handle})
	require.NoError(t, err)
	handle(t, r, stepCompleted(cid1, "a", 1))
	<-g.entered // the handler holds the first event; the queue is empty
	handle(t, r, stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1))
	st := r.Subscribers()[0]
	require.EqualValues(t, 3, st.Dispatched)
	require.EqualValues(t, 3, st.Dropped)
	require.Equal(t, 2, st.Queued)
	require.Equal(t, map[string]float64{"subscriber=slow": 2}, collect(t, reader, "sextant.subscriber.queue.length"))
	require.Equal(t, 3.0, collect(t, reader, "sextant.subscriber.events.dropped")["reason=queue_full,subscriber=slow"])
	require.EqualValues(t, 6, r.Stats().Routed, "a full subscriber does not slow routing")
	close(g.gate)
	require.NoError(t, r.Shutdown(context.Background()))
	require.EqualValues(t, 3, g.handled.Load())
}

func TestSubscriberOverflowBlockIsBackpressure(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	g := newGated()
	_, err := r.Subscribe(router.Subscription{Name: "must-see-all", Events: []string{"*"}, Queue: 1, Overflow: router.OverflowPolicyBlock, Handler: g.handle})
	require.NoError(t, err)
	handle(t, r, stepCompleted(cid1, "a", 1))
	<-g.entered
	handle(t, r, stepCompleted(cid1, "a", 1)) // fills the queue
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		handle(t, r, stepCompleted(cid1, "a", 1))
	}()
	select {
	case <-returned:
		t.Fatal("HandleMessage returned while the blocking subscriber's queue was full")
	default:
	}
	close(g.gate)
	<-returned
	require.NoError(t, r.Shutdown(context.Background()))
	require.EqualValues(t, 3, g.handled.Load())
}

func TestUnsubscribeDiscardsTheQueue(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	g := newGated()
	unsubscribe, err := r.Subscribe(router.Subscription{Name: "gone", Events: []string{"*"}, Handler: g.handle})
	require.NoError(t, err)
	other := &recorder{}
	_, err = r.Subscribe(router.Subscription{Name: "stays", Events: []string{"*"}, Handler: other.handle})
	require.NoError(t, err)
	handle(t, r, stepCompleted(cid1, "a", 1))
	<-g.entered
	handle(t, r, stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1))
	unsubscribe() // cancels the handler's context, discards two, waits
	unsubscribe()
	require.Zero(t, g.handled.Load())
	require.Len(t, g.entered, 0, "queued events were discarded, not handled")
	handle(t, r, stepCompleted(cid1, "a", 1))
	st := r.Subscribers()
	require.Len(t, st, 1)
	require.Equal(t, "stays", st[0].Name)
	require.NoError(t, r.Shutdown(context.Background()))
	require.Len(t, other.names(), 4)
}

func TestShutdownDrainsSubscribersWithinItsContext(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	g := newGated()
	_, err := r.Subscribe(router.Subscription{Name: "stuck", Events: []string{"*"}, Handler: g.handle})
	require.NoError(t, err)
	handle(t, r, stepCompleted(cid1, "a", 1), stepCompleted(cid1, "a", 1))
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain is given no time: the stuck handler is cancelled
	require.ErrorIs(t, r.Shutdown(ctx), context.Canceled)
	require.NoError(t, r.Shutdown(context.Background()))
	require.Zero(t, g.handled.Load())
}

// TestSubscribeWhileEventsFlow adds and removes subscribers while a real
// in-memory bus delivers events; a subscriber there from the start sees all.
func TestSubscribeWhileEventsFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	defer mem.Close()
	cfg := bus.NewDefaultConfig()
	cfg.BatchSize = 7
	r, _ := newTestRouter(t, stepRoutes, router.Settings{Source: router.Source{Subscriber: mem, Topics: []string{cfg.Topic}}})
	var seen atomic.Int64
	_, err := r.Subscribe(router.Subscription{Name: "all", Events: []string{"*"}, Overflow: router.OverflowPolicyBlock,
		Handler: func(context.Context, *events.Event) error { seen.Add(1); return nil }})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	pub, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	const n = 2000
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range n {
			if err := pub.Publish(ctx, stepCompleted(cid1, fmt.Sprint("ns", i%3), 1)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-published:
					return
				default:
				}
				unsubscribe, err := r.Subscribe(router.Subscription{Name: fmt.Sprint("churn-", w, "-", i), Groups: []string{events.GroupStep}, Queue: 4,
					Handler: func(context.Context, *events.Event) error { return nil }})
				if err != nil {
					t.Error(err)
					return
				}
				_ = r.Subscribers()
				unsubscribe()
			}
		}()
	}
	<-published
	wg.Wait()
	require.NoError(t, pub.Close(ctx))
	require.NoError(t, r.Shutdown(ctx))
	require.EqualValues(t, n, seen.Load())
	require.EqualValues(t, n, r.Stats().Routed)
}

// A received event's copy is the subscriber's: later batches do not change it.
func TestSubscriberEventsAreCopies(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	a, b := &recorder{}, &recorder{}
	for name, rec := range map[string]*recorder{"a": a, "b": b} {
		_, err := r.Subscribe(router.Subscription{Name: name, Events: []string{"*"}, Handler: func(ctx context.Context, e *events.Event) error {
			e.Attrs[0].Value = events.StringValue("mutated by " + name) // must not reach the other subscriber
			return rec.handle(ctx, e)
		}})
		require.NoError(t, err)
	}
	for i := range 10 {
		handle(t, r, stepCompleted(cid1, fmt.Sprint("ns", i), 1), stepCompleted(cid2, fmt.Sprint("ns", i), 1))
	}
	require.NoError(t, r.Shutdown(context.Background()))
	for name, rec := range map[string]*recorder{"a": a, "b": b} {
		require.Len(t, rec.evs, 20)
		for i, e := range rec.evs {
			require.Equal(t, "mutated by "+name, e.Attrs[0].Value.Str())
			ns, _ := e.Attr("namespace")
			require.Equal(t, fmt.Sprint("ns", i/2), ns.Str())
		}
	}
}

func TestOverflowPolicyUnmarshalText(t *testing.T) {
	t.Parallel()
	var p router.OverflowPolicy
	require.NoError(t, p.UnmarshalText([]byte("block")))
	require.Equal(t, router.OverflowPolicyBlock, p)
	require.ErrorContains(t, p.UnmarshalText([]byte("spill")), "allowed: drop, block")
}

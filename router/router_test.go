package router_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

func TestMain(m *testing.M) {
	// watermill v1.5.1 leaks this goroutine when a handler's Subscribe
	// fails: it waits on a WaitGroup that the never-started handler will
	// never release (TestStartFailsFastOnABrokenSubscriber). Nothing of
	// ours can stop it.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/message.(*Router).watchAllHandlersStopped.func1"))
}

// newTestRouter returns a router recording into a MeterProvider read by a
// ManualReader.
func newTestRouter(t testing.TB, cfg router.Config, set router.Settings) (*router.Router, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithCardinalityLimit(0))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	set.MeterProvider = mp
	r, err := router.New(cfg, set)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, reader
}

// collect returns every data point of metric name as "label=value,..." → value
// (sum for counters, count for histograms).
func collect(t testing.TB, reader *sdkmetric.ManualReader, name string) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[setKey(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					out[setKey(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[setKey(p.Attributes)] = float64(p.Count)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[setKey(p.Attributes)] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[setKey(p.Attributes)] = float64(p.Value)
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", name, m.Data)
			}
		}
	}
	return out
}

func setKey(s attribute.Set) string {
	k := ""
	for i, kv := range s.ToSlice() {
		if i > 0 {
			k += ","
		}
		k += string(kv.Key) + "=" + kv.Value.String()
	}
	return k
}

var (
	cid1 = events.ID{0x01, 0x99, 0xc3, 0xe0, 0xcc, 0xdb, 0x75, 0x81, 0x87, 0xab, 0x3f, 0x67, 0xda, 0xea, 0xa4, 0xa5}
	cid2 = events.ID{0x01, 0x99, 0xc3, 0xe0, 0xcc, 0xdb, 0x75, 0x81, 0x87, 0xab, 0x3f, 0x67, 0xda, 0xea, 0xa4, 0xa6}
)

func stepCompleted(cid events.ID, ns string, ms float64) events.Event {
	return events.New(events.StepCompleted, cid,
		events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", ns),
		events.String("step_name", "linear_step_1"), events.String("result", "success"), events.Float("duration_ms", ms))
}

var stepRoutes = router.Config{Routes: []router.Route{{
	Match: events.StepCompleted,
	Metrics: []router.Metric{
		{Name: "tasker.steps.successes.total", Type: router.MetricTypeCounter,
			Labels: map[string]string{"correlation_id": "correlation_id", "namespace": "namespace"}},
		{Name: "tasker.step.execution.duration", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms",
			Labels: map[string]string{"correlation_id": "correlation_id", "namespace": "namespace", "result": "result"}},
	},
}}}

func TestRouteRecordsCountersAndHistograms(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	ctx := context.Background()
	for i := range 3 {
		e := stepCompleted(cid1, "rust_e2e_linear", float64(i))
		require.Equal(t, 2, r.Route(ctx, &e))
	}
	e := stepCompleted(cid2, "other", 7)
	require.Equal(t, 2, r.Route(ctx, &e))

	c1, c2 := cid1.String(), cid2.String()
	require.Equal(t, map[string]float64{
		"correlation_id=" + c1 + ",namespace=rust_e2e_linear": 3,
		"correlation_id=" + c2 + ",namespace=other":           1,
	}, collect(t, reader, "tasker.steps.successes.total"))
	require.Equal(t, map[string]float64{
		"correlation_id=" + c1 + ",namespace=rust_e2e_linear,result=success": 3,
		"correlation_id=" + c2 + ",namespace=other,result=success":           1,
	}, collect(t, reader, "tasker.step.execution.duration"))
	require.Equal(t, router.Stats{Received: 4, Routed: 4}, r.Stats())
}

func TestRouteSeriesLimitCollapsesIntoOverflow(t *testing.T) {
	t.Parallel()
	cfg := router.Config{Routes: []router.Route{{Match: events.TaskCompleted, Metrics: []router.Metric{{
		Name: "tasker.tasks.completions.total", Type: router.MetricTypeCounter, SeriesLimit: 2,
		Labels: map[string]string{"correlation_id": "correlation_id"},
	}}}}}
	r, reader := newTestRouter(t, cfg, router.Settings{})
	ids := make([]events.ID, 5)
	for i := range ids {
		ids[i] = events.NewID()
		for range i + 1 { // id i completes i+1 times
			e := events.New(events.TaskCompleted, ids[i], events.String("task_uuid", "t"),
				events.String("task_type", "x"), events.String("namespace", "n"), events.Int("step_count", 4))
			r.Route(context.Background(), &e)
		}
	}
	got := collect(t, reader, "tasker.tasks.completions.total")
	require.Equal(t, map[string]float64{
		"correlation_id=" + ids[0].String(): 1,
		"correlation_id=" + ids[1].String(): 2,
		"otel.metric.overflow=true":         3 + 4 + 5,
	}, got, "nothing is lost: the overflow series holds the rest")
	require.EqualValues(t, 12, r.Stats().Overflowed)
	overflow := collect(t, reader, "sextant.router.series.overflow")
	require.Equal(t, 12.0, overflow["metric=tasker.tasks.completions.total"])
	require.Equal(t, 2.0, collect(t, reader, "sextant.router.series")["metric=tasker.tasks.completions.total"])
}

func TestRouteMissingFieldAndUnmatched(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	ctx := context.Background()
	noNamespace := events.New(events.StepCompleted, cid1, events.String("result", "success"), events.Float("duration_ms", 1))
	require.Equal(t, 0, r.Route(ctx, &noNamespace))
	other := events.New(events.TaskCompleted, cid1)
	require.Equal(t, 0, r.Route(ctx, &other))
	require.Equal(t, router.Stats{Received: 2, Routed: 1, Unmatched: 1, MissingFields: 2}, r.Stats())
	require.Empty(t, collect(t, reader, "tasker.steps.successes.total"))
	dropped := collect(t, reader, "sextant.router.events.dropped")
	require.Equal(t, 2.0, dropped["reason=missing_field"])
	require.Equal(t, 1.0, collect(t, reader, "sextant.router.events.unmatched")[""])
}

func TestRouteGlobsAndEnvelopeFields(t *testing.T) {
	t.Parallel()
	cfg := router.Config{Routes: []router.Route{
		{Match: "step.*", Metrics: []router.Metric{{Name: "step.events", Type: router.MetricTypeCounter,
			Labels: map[string]string{"event": "event_name", "ns": "namespace"}}}},
		{Match: "**", Metrics: []router.Metric{{Name: "all.events", Type: router.MetricTypeCounter}}},
	}}
	r, reader := newTestRouter(t, cfg, router.Settings{})
	ctx := context.Background()
	for _, name := range []string{events.StepClaimed, events.StepEnqueued, events.StepEnqueued, events.TaskCompleted} {
		e := events.New(name, cid1, events.String("namespace", "n1"))
		r.Route(ctx, &e)
	}
	// An event outside the catalog still reaches glob routes.
	custom := events.New("payment.card.charged", cid1)
	r.Route(ctx, &custom)
	require.Equal(t, map[string]float64{"event=step.claimed,ns=n1": 1, "event=step.enqueued,ns=n1": 2},
		collect(t, reader, "step.events"))
	require.Equal(t, map[string]float64{"": 5}, collect(t, reader, "all.events"))
}

func TestRouteValueFieldsAndTypes(t *testing.T) {
	t.Parallel()
	cfg := router.Config{Routes: []router.Route{{Match: events.TaskInitialized, Metrics: []router.Metric{
		{Name: "steps.created", Type: router.MetricTypeCounter, Value: "step_count"},
		{Name: "steps.last", Type: router.MetricTypeGauge, Value: "step_count"},
		{Name: "init.ms.sum", Type: router.MetricTypeUpDownCounter, Value: "duration_ms"},
	}}}}
	r, reader := newTestRouter(t, cfg, router.Settings{})
	for _, n := range []int64{4, 3} {
		e := events.New(events.TaskInitialized, cid1, events.Int("step_count", n), events.Float("duration_ms", 0.5))
		r.Route(context.Background(), &e)
	}
	require.Equal(t, map[string]float64{"": 7}, collect(t, reader, "steps.created"))
	require.Equal(t, map[string]float64{"": 3}, collect(t, reader, "steps.last"))
	require.Equal(t, map[string]float64{"": 1}, collect(t, reader, "init.ms.sum"))
}

func TestHandleMessageBadBatchIsCountedNotFatal(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	good := stepCompleted(cid1, "n", 1)
	for _, payload := range [][]byte{[]byte("not a batch"), events.EncodeBatch([]events.Event{good})[:20], events.EncodeBatch([]events.Event{good})} {
		msg := newMessage(payload)
		require.NoError(t, r.HandleMessage(msg))
	}
	s := r.Stats()
	require.EqualValues(t, 2, s.DecodeErrors)
	require.EqualValues(t, 3, s.Batches)
	require.EqualValues(t, 1, s.Received)
	require.Equal(t, 2.0, collect(t, reader, "sextant.router.events.dropped")["reason=decode_error"])
}

func TestStartConsumesTheBus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	defer mem.Close()
	cfg := bus.NewDefaultConfig()
	cfg.BatchSize = 10
	r, reader := newTestRouter(t, stepRoutes, router.Settings{Source: router.Source{Subscriber: mem, Topics: []string{cfg.Topic}}})
	require.NoError(t, r.Start(ctx))
	require.Error(t, r.Start(ctx), "a second Start is refused")
	pub, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	for i := range 1005 {
		require.NoError(t, pub.Publish(ctx, stepCompleted(cid1, fmt.Sprint("ns", i%3), 1)))
	}
	require.NoError(t, pub.Close(ctx))
	require.NoError(t, r.Shutdown(ctx))
	require.NoError(t, r.Shutdown(ctx), "Shutdown is idempotent")
	got := collect(t, reader, "tasker.steps.successes.total")
	require.Len(t, got, 3)
	total := 0.0
	for _, v := range got {
		total += v
	}
	require.Equal(t, 1005.0, total)
	require.EqualValues(t, 1005, r.Stats().Routed)
}

func TestShutdownBeforeStart(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, stepRoutes, router.Settings{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	require.Error(t, r.Start(ctx))
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := router.New(router.Config{Routes: []router.Route{{Match: "no.such_event", Metrics: stepRoutes.Routes[0].Metrics}}},
		router.Settings{MeterProvider: sdkmetric.NewMeterProvider()})
	require.ErrorContains(t, err, `routes[0].match: unknown event "no.such_event"`)
	_, err = router.New(stepRoutes, router.Settings{})
	require.ErrorContains(t, err, "MeterProvider is required")
}

func TestHandleMessageCountsTheEventsOfABadBatch(t *testing.T) {
	t.Parallel()
	r, reader := newTestRouter(t, stepRoutes, router.Settings{})
	msg := newMessage([]byte("SX\x01garbage"))
	msg.Metadata.Set(bus.MetadataEvents, "7")
	require.NoError(t, r.HandleMessage(msg))
	require.EqualValues(t, 1, r.Stats().DecodeErrors)
	require.EqualValues(t, 7, r.Stats().Undecoded)
	require.Equal(t, 7.0, collect(t, reader, "sextant.router.events.dropped")["reason=decode_error"])
}

// Routes with the same pattern each record their own metrics, once.
func TestRouteDuplicatePatterns(t *testing.T) {
	t.Parallel()
	counter := func(name string) []router.Metric {
		return []router.Metric{{Name: name, Type: router.MetricTypeCounter}}
	}
	cfg := router.Config{Routes: []router.Route{
		{Match: events.StepEnqueued, Metrics: counter("a")},
		{Match: events.StepEnqueued, Metrics: counter("b")},
		{Match: "step.*", Metrics: counter("c")},
		{Match: "step.*", Metrics: counter("d")},
	}}
	r, reader := newTestRouter(t, cfg, router.Settings{})
	e := events.New(events.StepEnqueued, cid1)
	require.Equal(t, 4, r.Route(context.Background(), &e))
	custom := events.New("step.custom", cid1) // outside the catalog: globs only
	require.Equal(t, 2, r.Route(context.Background(), &custom))
	for name, want := range map[string]float64{"a": 1, "b": 1, "c": 2, "d": 2} {
		require.Equal(t, map[string]float64{"": want}, collect(t, reader, name), name)
	}
}

// A counter fed a float field by one route and counting events in another
// must not truncate the floats.
func TestCounterMixingCountsAndFloatValues(t *testing.T) {
	t.Parallel()
	cfg := router.Config{Routes: []router.Route{
		{Match: events.StepEnqueued, Metrics: []router.Metric{{Name: "work", Type: router.MetricTypeCounter}}},
		{Match: events.StepCompleted, Metrics: []router.Metric{{Name: "work", Type: router.MetricTypeCounter, Value: "duration_ms"}}},
	}}
	r, reader := newTestRouter(t, cfg, router.Settings{})
	for range 10 {
		e := stepCompleted(cid1, "n", 0.9)
		r.Route(context.Background(), &e)
	}
	e := events.New(events.StepEnqueued, cid1)
	r.Route(context.Background(), &e)
	require.InDelta(t, 10.0, collect(t, reader, "work")[""], 1e-9)
}

// A subscription that fails makes Start return its error at once, and
// Shutdown does not wait out the close timeout.
func TestStartFailsFastOnABrokenSubscriber(t *testing.T) {
	t.Parallel()
	mem := bus.NewMemory(nil)
	require.NoError(t, mem.Close()) // Subscribe now fails
	r, _ := newTestRouter(t, stepRoutes, router.Settings{Source: router.Source{Subscriber: mem, Topics: []string{"t"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := r.Start(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Start must report the subscription error, not wait for its context")
	require.ErrorContains(t, err, "consuming t:")
	require.Error(t, r.Shutdown(ctx), "Shutdown reports the failure again")
	require.NoError(t, ctx.Err(), "Shutdown must not wait out the close timeout")
}

// poisonRecorder is a message.Publisher that keeps what it is given, or fails.
type poisonRecorder struct {
	mu   sync.Mutex
	msgs []*message.Message
	err  error
}

func (p *poisonRecorder) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if topic != "poison" {
		return fmt.Errorf("wrong topic %q", topic)
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *poisonRecorder) Close() error { return nil }

func TestHandleMessagePoisonsWhatCannotBeRouted(t *testing.T) {
	t.Parallel()
	rec := &poisonRecorder{}
	r, reader := newTestRouter(t, stepRoutes, router.Settings{Poison: rec, PoisonTopic: "poison"})
	good := stepCompleted(cid1, "n", 1)
	bad := stepCompleted(cid1, "n", 1)
	bad.Attrs = bad.Attrs[:2] // no namespace, step_name, result, duration_ms
	custom := events.New("payment.card.charged", cid1)

	require.NoError(t, r.HandleMessage(newMessage(events.EncodeBatch([]events.Event{good, bad, good, custom}))))
	require.NoError(t, r.HandleMessage(newMessage([]byte("garbage"))))

	st := r.Stats()
	require.EqualValues(t, 2, st.Poisoned)
	require.EqualValues(t, 1, st.Invalid)
	require.EqualValues(t, 3, st.Received, "the valid events and the one outside the catalog are routed")
	require.Equal(t, 2.0, total(collect(t, reader, "tasker.steps.successes.total")))
	require.Len(t, rec.msgs, 2)

	// The schema violation is kept whole, as a one-event batch with the reason.
	sv := rec.msgs[0]
	require.Equal(t, router.ReasonSchema, sv.Metadata.Get(router.MetadataPoisonReason))
	require.Contains(t, sv.Metadata.Get(router.MetadataPoisonError), `missing required field "namespace"`)
	require.Equal(t, bad.ID.String(), sv.Metadata.Get(router.MetadataPoisonEventID))
	kept, err := events.DecodeBatch(sv.Payload, nil)
	require.NoError(t, err)
	require.Len(t, kept, 1)
	require.Equal(t, bad.ID, kept[0].ID)
	// The undecodable message is kept byte for byte.
	require.Equal(t, router.ReasonDecodeError, rec.msgs[1].Metadata.Get(router.MetadataPoisonReason))
	require.Equal(t, []byte("garbage"), []byte(rec.msgs[1].Payload))
	require.Equal(t, 1.0, collect(t, reader, "sextant.router.events.dropped")["reason=schema_violation"])
	require.Equal(t, 2.0, collect(t, reader, "sextant.router.messages.poisoned")[""])
}

// When the poison topic cannot be written, the message is not acknowledged:
// the bus redelivers it and nothing is lost.
func TestHandleMessagePoisonFailureAsksForRedelivery(t *testing.T) {
	t.Parallel()
	rec := &poisonRecorder{err: errors.New("database down")}
	r, _ := newTestRouter(t, stepRoutes, router.Settings{Poison: rec, PoisonTopic: "poison"})
	err := r.HandleMessage(newMessage([]byte("garbage")))
	require.ErrorContains(t, err, "database down")
	require.EqualValues(t, 0, r.Stats().DecodeErrors, "counted once it is set aside, not before")
}

func total(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}

// eventRecorder is an EventPublisher that keeps what it is given.
type eventRecorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (e *eventRecorder) Publish(_ context.Context, ev events.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *eventRecorder) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n []string
	for _, ev := range e.evs {
		n = append(n, ev.Name)
	}
	return n
}

func TestHandleMessageDescribesBusMessages(t *testing.T) {
	t.Parallel()
	rec := &eventRecorder{}
	r, _ := newTestRouter(t, stepRoutes, router.Settings{Events: rec})
	msg := newMessage(events.EncodeBatch([]events.Event{stepCompleted(cid1, "n", 1), stepCompleted(cid1, "n", 2)}))
	require.NoError(t, r.HandleMessage(msg))
	require.Equal(t, []string{events.QueueMessageReceived, events.QueueMessageDeleted}, rec.names())
	got, _ := rec.evs[0].Attr("events")
	require.EqualValues(t, 2, got.Int64())
	for _, e := range rec.evs {
		require.NoError(t, e.Validate(), "messaging events follow the catalog")
	}

	// A message of infrastructure events only is never described: that
	// would feed on itself.
	before := len(rec.names())
	infra := newMessage(events.EncodeBatch([]events.Event{events.New(events.QueueMessageDeleted, cid1, events.String("queue", "q"))}))
	infra.Metadata.Set(bus.MetadataInfrastructure, "true")
	require.NoError(t, r.HandleMessage(infra))
	require.Len(t, rec.names(), before)

	// A batch that does not decode is a decode error.
	require.NoError(t, r.HandleMessage(newMessage([]byte("garbage"))))
	require.Equal(t, events.QueueError, rec.names()[len(rec.names())-1])
}

// One event causes one round of messaging events, never a stream: the bus
// and the router describe application batches only.
func TestMessagingDoesNotFeedOnItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	t.Cleanup(func() { _ = mem.Close() })
	cfg := bus.NewDefaultConfig()
	cfg.FlushInterval = time.Millisecond
	pub, err := bus.NewPublisher(mem, cfg, bus.WithMessagingEvents())
	require.NoError(t, err)
	r, reader := newTestRouter(t, stepRoutes, router.Settings{Events: pub, Source: router.Source{Subscriber: mem, Topics: []string{cfg.Topic}}})
	require.NoError(t, r.Start(ctx))
	require.NoError(t, pub.Publish(ctx, stepCompleted(cid1, "n", 1)))
	// 1 event, then queue.message_sent (publisher), queue.message_received
	// and queue.message_deleted (router): 4, and no more.
	require.Eventually(t, func() bool { return pub.Published() == 4 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // fifty flush intervals: room for a runaway loop to show
	require.EqualValues(t, 4, pub.Published())
	require.NoError(t, pub.Close(ctx))
	require.NoError(t, r.Shutdown(ctx))
	require.EqualValues(t, 4, r.Stats().Received)
	require.Equal(t, 1.0, total(collect(t, reader, "tasker.steps.successes.total")))
}

// flakyPoison fails its first failures publishes, then keeps what it gets.
type flakyPoison struct {
	poisonRecorder
	failures int
	calls    int
}

func (f *flakyPoison) Publish(topic string, msgs ...*message.Message) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.failures
	f.mu.Unlock()
	if fail {
		return errors.New("poison table unavailable")
	}
	return f.poisonRecorder.Publish(topic, msgs...)
}

// A handler error is retried with backoff; the message is then set aside
// and acknowledged, and each retry is a queue.retry_attempt.
func TestRetryThenPoisonThroughTheBus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	t.Cleanup(func() { _ = mem.Close() })
	poison := &flakyPoison{failures: 2}
	rec := &eventRecorder{}
	r, _ := newTestRouter(t, stepRoutes, router.Settings{
		Poison: poison, PoisonTopic: "poison", Events: rec,
		Source: router.Source{Subscriber: mem, Topics: []string{"in"}},
	})
	require.NoError(t, r.Start(ctx))
	require.NoError(t, mem.Publish("in", newMessage([]byte("garbage"))))
	require.Eventually(t, func() bool {
		poison.mu.Lock()
		defer poison.mu.Unlock()
		return len(poison.msgs) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, r.Shutdown(ctx))
	require.Equal(t, 3, poison.calls, "two failed attempts, then the third succeeds")
	retries := 0
	for _, n := range rec.names() {
		if n == events.QueueRetryAttempt {
			retries++
		}
	}
	require.Equal(t, 2, retries)
	require.EqualValues(t, 1, r.Stats().Poisoned)
	require.EqualValues(t, 1, r.Stats().DecodeErrors)
}

// Under sustained publishing from several goroutines, every application
// batch is described exactly once on each side: sent by the publisher,
// received and deleted by the router.
func TestMessagingCountsUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	t.Cleanup(func() { _ = mem.Close() })
	cfg := bus.NewDefaultConfig()
	cfg.BatchSize, cfg.Partitions = 16, 4
	topics := []string{cfg.PartitionTopic(0), cfg.PartitionTopic(1), cfg.PartitionTopic(2), cfg.PartitionTopic(3)}
	pub, err := bus.NewPublisher(mem, cfg, bus.WithMessagingEvents())
	require.NoError(t, err)
	count := func(name, metric string) router.Route {
		return router.Route{Match: name, Metrics: []router.Metric{{Name: metric, Type: router.MetricTypeCounter, Value: "events"}}}
	}
	rcfg := router.Config{Routes: []router.Route{
		count(events.QueueMessageSent, "sent.events"), count(events.QueueMessageReceived, "received.events"),
		{Match: events.QueueMessageDeleted, Metrics: []router.Metric{{Name: "deleted", Type: router.MetricTypeCounter}}},
		{Match: events.StepCompleted, Metrics: []router.Metric{{Name: "app", Type: router.MetricTypeCounter}}},
	}}
	r, reader := newTestRouter(t, rcfg, router.Settings{Events: pub, Source: router.Source{Subscriber: mem, Topics: topics}})
	require.NoError(t, r.Start(ctx))
	var wg sync.WaitGroup
	const perWorker = 5000
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				if err := pub.Publish(ctx, stepCompleted(events.NewID(), "n", 1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, pub.Close(ctx))
	require.NoError(t, r.Shutdown(ctx))
	require.Zero(t, pub.MessagingDropped())
	require.Zero(t, r.Stats().MessagingDropped)
	require.Equal(t, 4.0*perWorker, total(collect(t, reader, "app")))
	require.Equal(t, 4.0*perWorker, total(collect(t, reader, "sent.events")), "every application event's batch was described as sent")
	require.Equal(t, 4.0*perWorker, total(collect(t, reader, "received.events")), "and as received")
	require.Positive(t, total(collect(t, reader, "deleted")))
}

// When setting aside an invalid event fails and the message is retried, the
// valid events beside it are still routed once, and a retry is not a
// redelivery.
func TestRetryRoutesValidEventsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := bus.NewMemory(nil)
	t.Cleanup(func() { _ = mem.Close() })
	poison := &flakyPoison{failures: 2}
	rec := &eventRecorder{}
	r, reader := newTestRouter(t, stepRoutes, router.Settings{
		Poison: poison, PoisonTopic: "poison", Events: rec,
		Source: router.Source{Subscriber: mem, Topics: []string{"in"}},
	})
	require.NoError(t, r.Start(ctx))
	bad := stepCompleted(cid1, "n", 1)
	bad.Attrs = bad.Attrs[:1]
	require.NoError(t, mem.Publish("in", newMessage(events.EncodeBatch([]events.Event{stepCompleted(cid1, "n", 1), bad}))))
	require.Eventually(t, func() bool {
		poison.mu.Lock()
		defer poison.mu.Unlock()
		return len(poison.msgs) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, r.Shutdown(ctx))
	require.Equal(t, 1.0, total(collect(t, reader, "tasker.steps.successes.total")))
	require.NotContains(t, rec.names(), events.QueueRedelivered)
	require.Contains(t, rec.names(), events.QueueRetryAttempt)
}

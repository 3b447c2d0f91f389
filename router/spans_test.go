package router_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/router"
)

// traceRoutes is a small hierarchy: task → orchestration → step, with a
// record span for claims and a span event for retries.
func traceRoutes() []router.Route {
	task := router.SpanRef{Span: "task", Key: "task_uuid"}
	orch := router.SpanRef{Span: "orchestration", Key: "task_uuid"}
	return []router.Route{
		{Match: events.TaskInitializeRequested, Spans: []router.SpanRule{{Start: "task", Key: "task_uuid", Kind: "server"}}},
		{Match: events.TaskInitialized, Spans: []router.SpanRule{
			{Record: "initialization", Duration: "duration_ms", Parent: []router.SpanRef{task}, Attributes: map[string]string{"steps": "step_count"}},
			{Start: "orchestration", Key: "task_uuid", Parent: []router.SpanRef{task}, Attributes: map[string]string{}},
		}},
		{Match: events.StepEnqueued, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid", Parent: []router.SpanRef{orch, task}}}},
		{Match: events.StepClaimed, Spans: []router.SpanRule{{Record: "claim", Duration: "duration_ms", Parent: []router.SpanRef{{Span: "step", Key: "step_uuid"}}}}},
		{Match: events.StepRetryRequested, Spans: []router.SpanRule{{Event: "step", Key: "step_uuid"}}},
		{Match: events.StepCompleted, Spans: []router.SpanRule{{End: "step", Key: "step_uuid", Duration: "duration_ms",
			Status: &router.SpanStatus{Field: "result", Error: []string{"error"}}}}},
		{Match: events.TaskFinalized, Spans: []router.SpanRule{{End: "orchestration", Key: "task_uuid", Attributes: map[string]string{"final_state": "final_state"}}}},
		{Match: events.TaskCompleted, Spans: []router.SpanRule{{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Code: "ok"}}}},
		{Match: events.TaskFailed, Spans: []router.SpanRule{{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Code: "error", Message: "error_message"}}}},
	}
}

// tracedRouter returns a router whose spans land in an in-memory exporter
// at once, and a clock the test moves.
func tracedRouter(t *testing.T, cfg router.Config) (*router.Router, *tracetest.InMemoryExporter, *sdkmetric.ManualReader, *fakeClock) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	sp := sdktrace.NewSimpleSpanProcessor(exp)
	t.Cleanup(func() { _ = sp.Shutdown(context.Background()) })
	r, reader := newTestRouter(t, cfg, router.Settings{SpanProcessor: sp})
	clock := &fakeClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	router.SetClock(r, clock.Now)
	return r, exp, reader, clock
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time               { return c.now }
func (c *fakeClock) Advance(d time.Duration)      { c.now = c.now.Add(d) }
func at(e events.Event, t time.Time) events.Event { e.Time = t; return e }

type taskIDs struct {
	cid        events.ID
	task, step string
}

func newTaskIDs() taskIDs {
	return taskIDs{cid: events.NewID(), task: events.NewID().String(), step: events.NewID().String()}
}

func (ids taskIDs) taskAttrs(extra ...events.Attr) []events.Attr {
	return append([]events.Attr{events.String("task_uuid", ids.task), events.String("task_type", "mathematical_sequence"), events.String("namespace", "rust_e2e_linear")}, extra...)
}

func (ids taskIDs) stepAttrs(extra ...events.Attr) []events.Attr {
	return append([]events.Attr{events.String("task_uuid", ids.task), events.String("step_uuid", ids.step), events.String("namespace", "rust_e2e_linear"), events.String("step_name", "square")}, extra...)
}

func spansByName(spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	out := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		out[s.Name] = s
	}
	return out
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	out := map[string]any{}
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.AsInterface()
	}
	return out
}

func TestSpansFromEventsMakeOneTree(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ids := newTaskIDs()
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ctx := context.Background()
	seq := []events.Event{
		at(events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...), t0),
		at(events.New(events.TaskInitialized, ids.cid, ids.taskAttrs(events.Int("step_count", 4), events.Float("duration_ms", 5))...), t0.Add(10*time.Millisecond)),
		at(events.New(events.StepEnqueued, ids.cid, ids.stepAttrs(events.Int("attempt", 1))...), t0.Add(20*time.Millisecond)),
		at(events.New(events.StepClaimed, ids.cid, ids.stepAttrs(events.String("claim_method", "event"), events.Float("duration_ms", 2))...), t0.Add(30*time.Millisecond)),
		at(events.New(events.StepRetryRequested, ids.cid, ids.stepAttrs(events.String("error_type", "timeout"), events.Float("backoff_ms", 10))...), t0.Add(35*time.Millisecond)),
		at(events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "error"), events.Float("duration_ms", 8))...), t0.Add(40*time.Millisecond)),
		at(events.New(events.TaskFinalized, ids.cid, ids.taskAttrs(events.String("final_state", "error"), events.Float("duration_ms", 1))...), t0.Add(50*time.Millisecond)),
		at(events.New(events.TaskFailed, ids.cid, ids.taskAttrs(events.String("error_type", "handler_error"), events.String("error_message", "square failed"))...), t0.Add(60*time.Millisecond)),
	}
	for i := range seq {
		r.Route(ctx, &seq[i])
	}
	got := spansByName(exp.GetSpans())
	require.Len(t, got, 5, "task, initialization, orchestration, step, claim")
	for name, s := range got {
		require.Equal(t, trace.TraceID(ids.cid), s.SpanContext.TraceID(), "span %s: trace id is the correlation id", name)
		require.True(t, s.SpanContext.IsSampled())
	}
	task, orch, step := got["task"], got["orchestration"], got["step"]
	require.False(t, task.Parent.IsValid(), "the task span is the root")
	require.Equal(t, trace.SpanKindServer, task.SpanKind)
	require.Equal(t, t0, task.StartTime)
	require.Equal(t, t0.Add(60*time.Millisecond), task.EndTime)
	require.Equal(t, codes.Error, task.Status.Code)
	require.Equal(t, "square failed", task.Status.Description)
	require.Equal(t, "mathematical_sequence", attrMap(task.Attributes)["task_type"], "absent attributes: every field")

	require.Equal(t, task.SpanContext.SpanID(), got["initialization"].Parent.SpanID())
	require.Equal(t, t0.Add(5*time.Millisecond), got["initialization"].StartTime, "record: start = time - duration")
	require.Equal(t, map[string]any{"steps": int64(4)}, attrMap(got["initialization"].Attributes))
	require.Equal(t, task.SpanContext.SpanID(), orch.Parent.SpanID())
	require.Equal(t, map[string]any{"final_state": "error"}, attrMap(orch.Attributes), "attributes: {} at the start means none; the end adds its own")

	require.Equal(t, orch.SpanContext.SpanID(), step.Parent.SpanID(), "the first open candidate parent wins")
	require.Equal(t, step.SpanContext.SpanID(), got["claim"].Parent.SpanID())
	require.Equal(t, codes.Error, step.Status.Code, "status from the result field")
	require.Len(t, step.Events, 1)
	require.Equal(t, events.StepRetryRequested, step.Events[0].Name)
	require.Equal(t, "timeout", attrMap(step.Events[0].Attributes)["error_type"])
	require.Equal(t, "error", attrMap(step.Attributes)["result"], "end rules add the end event's fields")

	st := r.Stats().Spans
	require.Equal(t, uint64(3), st.Started)
	require.Equal(t, uint64(2), st.Recorded)
	require.Equal(t, uint64(3), st.Ended[router.EndEvent])
	require.Equal(t, uint64(1), st.Events)
	require.Zero(t, st.Open)
}

func TestSpanEndingCascadesToOpenChildren(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ids := newTaskIDs()
	ctx := context.Background()
	for _, e := range []events.Event{
		events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
		events.New(events.TaskInitialized, ids.cid, ids.taskAttrs(events.Int("step_count", 1), events.Float("duration_ms", 1))...),
		events.New(events.StepEnqueued, ids.cid, ids.stepAttrs()...),
		events.New(events.TaskCompleted, ids.cid, ids.taskAttrs(events.Int("step_count", 1))...),
	} {
		r.Route(ctx, &e)
	}
	got := spansByName(exp.GetSpans())
	require.Contains(t, got, "step")
	require.Equal(t, router.EndParentEnded, attrMap(got["step"].Attributes)[string(router.EndReasonKey)])
	require.Equal(t, router.EndParentEnded, attrMap(got["orchestration"].Attributes)[string(router.EndReasonKey)])
	require.Equal(t, uint64(2), r.Stats().Spans.Ended[router.EndParentEnded])
	require.Zero(t, r.Stats().Spans.Open)
}

func TestOpenSpansExpireAndStayBounded(t *testing.T) {
	t.Parallel()
	routes := []router.Route{{Match: events.StepEnqueued, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid"}}}}
	r, exp, _, clock := tracedRouter(t, router.Config{Routes: routes, Traces: router.TraceConfig{MaxOpenSpans: 160, OpenSpanTTL: time.Minute}})
	ctx := context.Background()
	// A flood of start events that never end: the table stays at its bound.
	for range 5000 {
		ids := newTaskIDs()
		e := events.New(events.StepEnqueued, ids.cid, ids.stepAttrs()...)
		r.Route(ctx, &e)
	}
	st := r.Stats().Spans
	require.LessOrEqual(t, st.Open, int64(160))
	require.Equal(t, uint64(5000), st.Started)
	require.Equal(t, uint64(5000)-uint64(st.Open), st.Ended[router.EndEvicted])
	for _, s := range exp.GetSpans() {
		require.Equal(t, codes.Error, s.Status.Code)
		require.Equal(t, router.EndEvicted, attrMap(s.Attributes)[string(router.EndReasonKey)])
	}
	// Past the TTL, the next event sweeps the rest away.
	exp.Reset()
	clock.Advance(time.Minute + time.Second)
	router.SweepSpans(r)
	require.Zero(t, r.Stats().Spans.Open)
	require.Equal(t, uint64(st.Open), r.Stats().Spans.Ended[router.EndExpired])
	require.Len(t, exp.GetSpans(), int(st.Open))
	require.Contains(t, exp.GetSpans()[0].Status.Description, "open_span_ttl")
}

func TestEndWithoutStartIsRecordedFromItsDuration(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ids := newTaskIDs()
	ctx := context.Background()
	start := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
	r.Route(ctx, &start)
	// The step's enqueue event was lost (another instance held it).
	done := events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"), events.Float("duration_ms", 250))...)
	r.Route(ctx, &done)
	// A task end without duration whose span is not open is only counted.
	other := newTaskIDs()
	lone := events.New(events.TaskCompleted, other.cid, other.taskAttrs(events.Int("step_count", 1))...)
	r.Route(ctx, &lone)

	got := spansByName(exp.GetSpans())
	step := got["step"]
	require.Equal(t, done.Time.Add(-250*time.Millisecond), step.StartTime)
	require.Equal(t, codes.Ok, step.Status.Code)
	st := r.Stats().Spans
	require.Equal(t, uint64(1), st.RecordedFromEnd)
	require.Equal(t, uint64(1), st.UnmatchedEnds)
	// Its parent is the open task span, from the start rule's parents.
	open := router.OpenSpanContext(r, "task", ids.cid, ids.task)
	require.True(t, open.IsValid())
	require.Equal(t, open.SpanID(), step.Parent.SpanID())
}

func TestRedeliveredStartKeepsOneSpan(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ids := newTaskIDs()
	ctx := context.Background()
	start := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
	r.Route(ctx, &start)
	again := start
	r.Route(ctx, &again)
	end := events.New(events.TaskCompleted, ids.cid, ids.taskAttrs(events.Int("step_count", 0))...)
	r.Route(ctx, &end)
	require.Len(t, exp.GetSpans(), 1)
	require.Equal(t, uint64(1), r.Stats().Spans.DuplicateStarts)
}

func TestSamplingKeepsWholeTracesOrNone(t *testing.T) {
	t.Parallel()
	half := 0.5
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes(), Traces: router.TraceConfig{SampleRatio: &half}})
	ctx := context.Background()
	const tasks = 400
	for range tasks {
		ids := newTaskIDs()
		for _, e := range []events.Event{
			events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
			events.New(events.TaskInitialized, ids.cid, ids.taskAttrs(events.Int("step_count", 1), events.Float("duration_ms", 1))...),
			events.New(events.StepEnqueued, ids.cid, ids.stepAttrs()...),
			events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"), events.Float("duration_ms", 1))...),
			events.New(events.TaskFinalized, ids.cid, ids.taskAttrs(events.String("final_state", "complete"), events.Float("duration_ms", 1))...),
			events.New(events.TaskCompleted, ids.cid, ids.taskAttrs(events.Int("step_count", 1))...),
		} {
			r.Route(ctx, &e)
		}
	}
	perTrace := map[trace.TraceID]int{}
	for _, s := range exp.GetSpans() {
		perTrace[s.SpanContext.TraceID()]++
	}
	for id, n := range perTrace {
		require.Equal(t, 4, n, "trace %s is whole: task, initialization, orchestration, step", id)
	}
	// 400 traces at 0.5: 200 expected; 4.5 standard deviations either way.
	require.InDelta(t, tasks/2, len(perTrace), 45)
}

func TestKeepTraceIsUniformOverUUIDv7(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ratio := range []float64{0.01, 0.1, 0.5, 0.9} {
		kept := 0
		const n = 20000
		for range n {
			var id events.ID
			for i := range id {
				id[i] = byte(rng.UintN(256))
			}
			id[6] = id[6]&0x0f | 0x70 // version 7
			id[8] = id[8]&0x3f | 0x80 // variant
			if router.KeepTrace(trace.TraceID(id), ratio) {
				kept++
			}
		}
		require.InDelta(t, ratio, float64(kept)/n, 0.015, "ratio %g", ratio)
	}
}

func TestRouteSampleRatioAppliesToItsRoots(t *testing.T) {
	t.Parallel()
	routes := traceRoutes()
	zero := 0.0
	routes[0].Spans[0].SampleRatio = &zero // task spans: never
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: routes})
	ids := newTaskIDs()
	ctx := context.Background()
	for _, e := range []events.Event{
		events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
		events.New(events.StepEnqueued, ids.cid, ids.stepAttrs()...),
		events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"), events.Float("duration_ms", 1))...),
		events.New(events.TaskCompleted, ids.cid, ids.taskAttrs(events.Int("step_count", 1))...),
	} {
		r.Route(ctx, &e)
	}
	require.Empty(t, exp.GetSpans(), "children follow their unsampled parent")
	require.Equal(t, uint64(2), r.Stats().Spans.Started, "unsampled spans are still tracked, for their children")
}

func TestSensitiveFieldsAreRedacted(t *testing.T) {
	t.Parallel()
	name := "custom.login_" + fmt.Sprint(time.Now().UnixNano())
	require.NoError(t, events.Register(events.Schema{Name: name, Description: "a user logged in", Fields: []events.Field{
		{Name: "user", Type: events.KindString, Required: true, Description: "who"},
		{Name: "api_token", Type: events.KindString, Required: true, Description: "their token"},
		{Name: "db_password", Type: events.KindString, Required: true, Description: "a password"},
	}}))
	tests := []struct {
		name      string
		sensitive []string
		want      map[string]any
	}{
		{"defaults", nil, map[string]any{"user": "ann", "api_token": router.Redacted, "db_password": router.Redacted}},
		{"custom", []string{"USER"}, map[string]any{"user": router.Redacted, "api_token": "t0k", "db_password": "pw"}},
		{"off", []string{}, map[string]any{"user": "ann", "api_token": "t0k", "db_password": "pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes := []router.Route{{Match: name, Spans: []router.SpanRule{{Start: "login", Key: "user"}}}}
			r, exp, _, _ := tracedRouter(t, router.Config{Routes: routes, Traces: router.TraceConfig{SensitiveKeys: tt.sensitive}})
			e := events.New(name, events.NewID(), events.String("user", "ann"), events.String("api_token", "t0k"), events.String("db_password", "pw"))
			r.Route(context.Background(), &e)
			require.NoError(t, r.Shutdown(context.Background()))
			spans := exp.GetSpans()
			require.Len(t, spans, 1)
			got := attrMap(spans[0].Attributes)
			delete(got, string(router.EndReasonKey))
			require.Equal(t, tt.want, got)
		})
	}
}

func TestShutdownEndsAndFlushesOpenSpans(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ids := newTaskIDs()
	e := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
	r.Route(context.Background(), &e)
	require.Empty(t, exp.GetSpans())
	require.NoError(t, r.Shutdown(context.Background()))
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, router.EndShutdown, attrMap(spans[0].Attributes)[string(router.EndReasonKey)])
	require.Equal(t, codes.Unset, spans[0].Status.Code)
}

func TestMetricsCarryTheirSpanAsExemplar(t *testing.T) {
	t.Parallel()
	routes := traceRoutes()
	routes = append(routes, router.Route{Match: events.StepCompleted, Metrics: []router.Metric{
		{Name: "step.duration", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms"},
		{Name: "steps.completed", Type: router.MetricTypeCounter},
	}})
	r, exp, reader, _ := tracedRouter(t, router.Config{Routes: routes})
	ids := newTaskIDs()
	ctx := context.Background()
	for _, e := range []events.Event{
		events.New(events.StepEnqueued, ids.cid, ids.stepAttrs()...),
		events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"), events.Float("duration_ms", 12))...),
	} {
		r.Route(ctx, &e)
	}
	step := spansByName(exp.GetSpans())["step"]
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	found := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var ex []metricdata.Exemplar[float64]
			var exi []metricdata.Exemplar[int64]
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				if m.Name == "step.duration" {
					ex = d.DataPoints[0].Exemplars
				}
			case metricdata.Sum[int64]:
				if m.Name == "steps.completed" {
					exi = d.DataPoints[0].Exemplars
				}
			}
			for _, x := range ex {
				require.Equal(t, step.SpanContext.TraceID(), trace.TraceID(x.TraceID))
				require.Equal(t, step.SpanContext.SpanID(), trace.SpanID(x.SpanID))
				found++
			}
			for _, x := range exi {
				require.Equal(t, ids.cid[:], x.TraceID)
				found++
			}
		}
	}
	require.Equal(t, 2, found, "the histogram and the counter each carry one exemplar")
}

func TestTracingOffIgnoresSpanRules(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, router.Config{Routes: traceRoutes()}, router.Settings{})
	ids := newTaskIDs()
	e := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
	require.Zero(t, r.Route(context.Background(), &e))
	require.Zero(t, r.Stats().Spans.Started)
}

func TestPublisherSpanBecomesParentOrLink(t *testing.T) {
	t.Parallel()
	r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
	ctx := context.Background()

	// The publisher traces with the correlation id as its trace id: the
	// task span is its child, in its trace.
	same := newTaskIDs()
	start := events.New(events.TaskInitializeRequested, same.cid, same.taskAttrs()...)
	start.Parent = events.TraceParent{TraceID: same.cid, SpanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Flags: 1}
	r.Route(ctx, &start)
	end := events.New(events.TaskCompleted, same.cid, same.taskAttrs(events.Int("step_count", 0))...)
	r.Route(ctx, &end)

	// Another trace: the task span is a root of its own trace, linked.
	other := newTaskIDs()
	start2 := events.New(events.TaskInitializeRequested, other.cid, other.taskAttrs()...)
	start2.Parent = events.TraceParent{TraceID: [16]byte{9: 1}, SpanID: [8]byte{7: 9}, Flags: 1}
	r.Route(ctx, &start2)
	end2 := events.New(events.TaskCompleted, other.cid, other.taskAttrs(events.Int("step_count", 0))...)
	r.Route(ctx, &end2)

	// A publisher that did not sample its span: the trace follows it.
	unsampled := newTaskIDs()
	start3 := events.New(events.TaskInitializeRequested, unsampled.cid, unsampled.taskAttrs()...)
	start3.Parent = events.TraceParent{TraceID: unsampled.cid, SpanID: [8]byte{7: 1}, Flags: 0}
	r.Route(ctx, &start3)
	end3 := events.New(events.TaskCompleted, unsampled.cid, unsampled.taskAttrs(events.Int("step_count", 0))...)
	r.Route(ctx, &end3)

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	byTrace := map[trace.TraceID]tracetest.SpanStub{}
	for _, s := range spans {
		byTrace[s.SpanContext.TraceID()] = s
	}
	child := byTrace[trace.TraceID(same.cid)]
	require.True(t, child.Parent.IsRemote())
	require.Equal(t, trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, child.Parent.SpanID())
	require.Empty(t, child.Links)
	linked := byTrace[trace.TraceID(other.cid)]
	require.False(t, linked.Parent.IsValid())
	require.Len(t, linked.Links, 1)
	require.Equal(t, trace.TraceID{9: 1}, linked.Links[0].SpanContext.TraceID())
}

func TestRecordSpanDurationsAreSane(t *testing.T) {
	t.Parallel()
	routes := []router.Route{{Match: events.StepClaimed, Spans: []router.SpanRule{{Record: "claim", Duration: "duration_ms"}}}}
	epoch := time.Unix(0, 0)
	for _, tt := range []struct {
		ms   float64
		want time.Duration // 0 < want: start = end - want; -1: the Unix epoch
	}{{-5, 0}, {math.NaN(), 0}, {math.Inf(1), -1}, {1e300, -1}, {2.5, 2500 * time.Microsecond}} {
		r, exp, _, _ := tracedRouter(t, router.Config{Routes: routes})
		ids := newTaskIDs()
		e := events.New(events.StepClaimed, ids.cid, ids.stepAttrs(events.String("claim_method", "poll"), events.Float("duration_ms", tt.ms))...)
		r.Route(context.Background(), &e)
		spans := exp.GetSpans()
		require.Len(t, spans, 1, "duration %v", tt.ms)
		require.Equal(t, e.Time, spans[0].EndTime)
		want := e.Time.Add(-tt.want)
		if tt.want < 0 {
			want = epoch // OTLP times are unsigned: nothing starts before 1970
		}
		require.True(t, want.Equal(spans[0].StartTime), "duration %v: start %v, want %v", tt.ms, spans[0].StartTime, want)
	}
}

func TestSpanEdgeCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("status message of a sensitive field is redacted", func(t *testing.T) {
		r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes(), Traces: router.TraceConfig{SensitiveKeys: []string{"message"}}})
		ids := newTaskIDs()
		for _, e := range []events.Event{
			events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
			events.New(events.TaskFailed, ids.cid, ids.taskAttrs(events.String("error_type", "x"), events.String("error_message", "password=hunter2"))...),
		} {
			r.Route(ctx, &e)
		}
		spans := exp.GetSpans()
		require.Len(t, spans, 1)
		require.Equal(t, codes.Error, spans[0].Status.Code)
		require.Equal(t, router.Redacted, spans[0].Status.Description)
		require.Equal(t, router.Redacted, attrMap(spans[0].Attributes)["error_message"])
	})
	t.Run("an end event's fields replace the start's", func(t *testing.T) {
		r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
		ids := newTaskIDs()
		start := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
		r.Route(ctx, &start)
		end := events.New(events.TaskCompleted, ids.cid, events.String("task_uuid", ids.task), events.String("task_type", "renamed"),
			events.String("namespace", "rust_e2e_linear"), events.Int("step_count", 4))
		r.Route(ctx, &end)
		spans := exp.GetSpans()
		require.Len(t, spans, 1)
		keys := map[attribute.Key]int{}
		for _, kv := range spans[0].Attributes {
			keys[kv.Key]++
		}
		for k, n := range keys {
			require.Equal(t, 1, n, "attribute %s appears once", k)
		}
		require.Equal(t, "renamed", attrMap(spans[0].Attributes)["task_type"])
		require.Equal(t, int64(4), attrMap(spans[0].Attributes)["step_count"])
	})
	t.Run("no correlation id, no span", func(t *testing.T) {
		r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
		ids := newTaskIDs()
		e := events.New(events.TaskInitialized, events.ID{}, ids.taskAttrs(events.Int("step_count", 1), events.Float("duration_ms", 1))...)
		r.Route(ctx, &e)
		require.Empty(t, exp.GetSpans())
		require.Equal(t, uint64(1), r.Stats().MissingFields)
		require.Equal(t, uint64(1), r.Stats().Routed, "the event matched a rule")
	})
	t.Run("no span starts after shutdown", func(t *testing.T) {
		r, exp, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
		require.NoError(t, r.Shutdown(ctx))
		ids := newTaskIDs()
		for _, e := range []events.Event{
			events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
			events.New(events.TaskInitialized, ids.cid, ids.taskAttrs(events.Int("step_count", 1), events.Float("duration_ms", 1))...),
		} {
			r.Route(ctx, &e)
		}
		st := r.Stats().Spans
		require.Zero(t, st.Open)
		require.Equal(t, uint64(3), st.AfterShutdown, "a start, a record and a start")
		require.Empty(t, exp.GetSpans())
	})
	t.Run("tracing off: span rules still match", func(t *testing.T) {
		r, _ := newTestRouter(t, router.Config{Routes: traceRoutes()}, router.Settings{})
		ids := newTaskIDs()
		e := events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...)
		r.Route(ctx, &e)
		require.Equal(t, uint64(1), r.Stats().Routed)
		require.Zero(t, r.Stats().Unmatched)
	})
	t.Run("recorded from end counts apart", func(t *testing.T) {
		r, _, _, _ := tracedRouter(t, router.Config{Routes: traceRoutes()})
		ids := newTaskIDs()
		// No duration_ms: the end rule cannot record the span.
		e := events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"))...)
		r.Route(ctx, &e)
		st := r.Stats().Spans
		require.Zero(t, st.Recorded)
		require.Zero(t, st.RecordedFromEnd)
		require.Equal(t, uint64(1), r.Stats().MissingFields)
	})
}

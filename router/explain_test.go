package router_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/router"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	cid, err := events.ParseID("0190f5f2-0000-7000-8000-000000000001")
	require.NoError(t, err)
	step := func(extra ...events.Attr) events.Event {
		return events.New(events.StepCompleted, cid, append([]events.Attr{events.String("task_uuid", "t1"), events.String("step_uuid", "s1"),
			events.String("namespace", "ns"), events.String("step_name", "square"), events.String("result", "success"),
			events.Float("duration_ms", 12.5), events.Int("attempt", 2)}, extra...)...)
	}
	histogram := router.Metric{Name: "step.duration", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms",
		Labels: map[string]string{"namespace": "namespace", "result": "result"}}
	counter := router.Metric{Name: "steps.total", Type: router.MetricTypeCounter, Labels: map[string]string{"event": "event_name"}}
	startTask := router.Route{Match: events.TaskInitializeRequested, Spans: []router.SpanRule{{Start: "task", Key: "task_uuid"}}}
	tests := []struct {
		name          string
		cfg           router.Config
		event         events.Event
		want          []router.RouteMatch
		wantUnmatched bool
	}{
		{
			name:  "metrics with labels and values",
			cfg:   router.Config{Routes: []router.Route{{Match: events.StepCompleted, Metrics: []router.Metric{histogram, counter}}}},
			event: step(),
			want: []router.RouteMatch{{Index: 0, Match: events.StepCompleted, Metrics: []router.SeriesEffect{
				{Metric: "step.duration", Type: router.MetricTypeHistogram, Unit: "ms", Op: "observe", Value: 12.5,
					Labels: []router.Label{{Name: "namespace", Value: "ns"}, {Name: "result", Value: "success"}}},
				{Metric: "steps.total", Type: router.MetricTypeCounter, Op: "add", Value: 1,
					Labels: []router.Label{{Name: "event", Value: events.StepCompleted}}},
			}}},
		},
		{
			name: "when filters",
			cfg: router.Config{Routes: []router.Route{
				{Match: events.StepCompleted, When: map[string]string{"result": "error"}, Metrics: []router.Metric{counter}},
				{Match: events.StepCompleted, When: map[string]string{"namespace": "ns", "attempt": "2"}, Metrics: []router.Metric{{Name: "gauge", Type: router.MetricTypeGauge, Value: "attempt"}}},
			}},
			event: step(),
			want: []router.RouteMatch{
				{Index: 0, Match: events.StepCompleted, Excluded: `when result="error": the event has "success"`},
				{Index: 1, Match: events.StepCompleted, Metrics: []router.SeriesEffect{{Metric: "gauge", Type: router.MetricTypeGauge, Op: "set", Value: 2, Labels: []router.Label{}}}},
			},
		},
		{
			name: "every when excludes",
			cfg: router.Config{Routes: []router.Route{
				{Match: events.StepCompleted, When: map[string]string{"attempt": "1"}, Metrics: []router.Metric{counter}},
			}},
			event:         step(),
			want:          []router.RouteMatch{{Index: 0, Match: events.StepCompleted, Excluded: `when attempt="1": the event has "2"`}},
			wantUnmatched: true,
		},
		{
			name: "globs and alternatives",
			cfg: router.Config{Routes: []router.Route{
				{Match: "task.*", Metrics: []router.Metric{counter}},
				{Match: "step.*", Metrics: []router.Metric{counter}},
				{Match: "{task.completed,step.completed}", Metrics: []router.Metric{counter}},
				{Match: "**", Metrics: []router.Metric{counter}},
			}},
			event: step(),
			want: []router.RouteMatch{
				{Index: 1, Match: "step.*", Metrics: []router.SeriesEffect{{Metric: "steps.total", Type: router.MetricTypeCounter, Op: "add", Value: 1, Labels: []router.Label{{Name: "event", Value: events.StepCompleted}}}}},
				{Index: 2, Match: "{task.completed,step.completed}", Metrics: []router.SeriesEffect{{Metric: "steps.total", Type: router.MetricTypeCounter, Op: "add", Value: 1, Labels: []router.Label{{Name: "event", Value: events.StepCompleted}}}}},
				{Index: 3, Match: "**", Metrics: []router.SeriesEffect{{Metric: "steps.total", Type: router.MetricTypeCounter, Op: "add", Value: 1, Labels: []router.Label{{Name: "event", Value: events.StepCompleted}}}}},
			},
		},
		{
			name:          "no route matches",
			cfg:           router.Config{Routes: []router.Route{{Match: "task.*", Metrics: []router.Metric{counter}}}},
			event:         step(),
			wantUnmatched: true,
		},
		{
			name: "span start, end, record and event",
			cfg: router.Config{Routes: []router.Route{startTask,
				{Match: events.StepExecutionStarted, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid", Parent: []router.SpanRef{{Span: "task", Key: "task_uuid"}}}}},
				{Match: events.StepCompleted, Spans: []router.SpanRule{
					{Event: "task", Key: "task_uuid", Attributes: map[string]string{"n": "attempt"}},
					{Record: "exec", Duration: "duration_ms", Parent: []router.SpanRef{{Span: "step", Key: "step_uuid"}, {Span: "task", Key: "task_uuid"}},
						Attributes: map[string]string{"step": "step_name", "ms": "duration_ms"}, Status: &router.SpanStatus{Code: "ok"}},
					{End: "step", Key: "step_uuid", Duration: "duration_ms", DurationUnit: "s", Attributes: map[string]string{},
						Status: &router.SpanStatus{Field: "result", Error: []string{"success"}, Message: "step_name"}},
				}},
			}},
			event: step(),
			want: []router.RouteMatch{{Index: 2, Match: events.StepCompleted, Spans: []router.SpanEffect{
				{Op: "event", Span: "task", Key: "t1", Attributes: []router.Label{{Name: "n", Value: "2"}}},
				{Op: "record", Span: "exec", Parents: []string{"step(step_uuid=s1)", "task(task_uuid=t1)"}, Duration: 12500 * time.Microsecond,
					Attributes: []router.Label{{Name: "ms", Value: "12.5"}, {Name: "step", Value: "square"}}, Status: "ok"},
				{Op: "end", Span: "step", Key: "s1", Parents: []string{"task(task_uuid=t1)"}, Duration: 12500 * time.Millisecond, Status: "error: square"},
			}}},
		},
		{
			name:  "span start takes every field without attributes",
			cfg:   router.Config{Routes: []router.Route{startTask}},
			event: events.New(events.TaskInitializeRequested, cid, events.String("task_uuid", "t1"), events.String("namespace", "ns")),
			want: []router.RouteMatch{{Index: 0, Match: events.TaskInitializeRequested, Spans: []router.SpanEffect{
				{Op: "start", Span: "task", Key: "t1", Attributes: []router.Label{{Name: "task_uuid", Value: "t1"}, {Name: "namespace", Value: "ns"}}},
			}}},
		},
		{
			name: "missing fields are skipped",
			cfg: router.Config{Routes: []router.Route{
				{Match: events.StepCompleted, Metrics: []router.Metric{histogram, counter},
					Spans: []router.SpanRule{{Record: "exec", Duration: "duration_ms"}}},
				{Match: events.StepClaimed, Spans: []router.SpanRule{{Start: "claim", Key: "step_uuid"}}},
			}},
			event: events.New(events.StepCompleted, cid, events.String("namespace", "ns"), events.String("result", "success")),
			want: []router.RouteMatch{{Index: 0, Match: events.StepCompleted,
				Metrics: []router.SeriesEffect{{Metric: "steps.total", Type: router.MetricTypeCounter, Op: "add", Value: 1, Labels: []router.Label{{Name: "event", Value: events.StepCompleted}}}},
				Skipped: []string{"metric step.duration: the event lacks field duration_ms (value)", "span record exec: the event lacks field duration_ms (duration)"},
			}},
		},
		{
			name:  "missing label and span key",
			cfg:   router.Config{Routes: []router.Route{{Match: events.StepCompleted, Metrics: []router.Metric{histogram}, Spans: []router.SpanRule{{Start: "s", Key: "step_uuid"}}}}},
			event: events.New(events.StepCompleted, cid, events.Float("duration_ms", 1)),
			want: []router.RouteMatch{{Index: 0, Match: events.StepCompleted, Skipped: []string{
				"metric step.duration: the event lacks field namespace (label namespace)", "span start s: the event lacks field step_uuid (key)",
			}}},
		},
		{
			name:  "no correlation id: no span",
			cfg:   router.Config{Routes: []router.Route{startTask}},
			event: events.New(events.TaskInitializeRequested, events.ID{}, events.String("task_uuid", "t1")),
			want: []router.RouteMatch{{Index: 0, Match: events.TaskInitializeRequested, Skipped: []string{
				"span start task: the event has no correlation_id, so no trace to put the span in",
			}}},
		},
		{
			name: "sensitive fields are redacted",
			cfg: router.Config{Traces: router.TraceConfig{SensitiveKeys: []string{"STEP_NAME", "step_uuid"}}, Routes: []router.Route{
				{Match: events.StepExecutionStarted, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid"}}},
				{Match: events.StepCompleted, Metrics: []router.Metric{{Name: "by_step", Type: router.MetricTypeCounter, Labels: map[string]string{"name": "step_name", "ns": "namespace"}}},
					Spans: []router.SpanRule{
						{Record: "exec", Duration: "duration_ms", Parent: []router.SpanRef{{Span: "step", Key: "step_uuid"}}, Attributes: map[string]string{"s": "step_name", "ns": "namespace"},
							Status: &router.SpanStatus{Code: "error", Message: "step_name"}},
						{End: "step", Key: "step_uuid"},
					}},
			}},
			event: step(),
			want: []router.RouteMatch{{Index: 1, Match: events.StepCompleted,
				Metrics: []router.SeriesEffect{{Metric: "by_step", Type: router.MetricTypeCounter, Op: "add", Value: 1,
					Labels: []router.Label{{Name: "name", Value: router.Redacted}, {Name: "ns", Value: "ns"}}}},
				Spans: []router.SpanEffect{
					{Op: "record", Span: "exec", Parents: []string{"step(step_uuid=[REDACTED])"}, Duration: 12500 * time.Microsecond,
						Attributes: []router.Label{{Name: "ns", Value: "ns"}, {Name: "s", Value: router.Redacted}}, Status: "error: [REDACTED]"},
					{Op: "end", Span: "step", Key: router.Redacted, Attributes: []router.Label{
						{Name: "task_uuid", Value: "t1"}, {Name: "step_uuid", Value: router.Redacted}, {Name: "namespace", Value: "ns"},
						{Name: "step_name", Value: router.Redacted}, {Name: "result", Value: "success"}, {Name: "duration_ms", Value: "12.5"}, {Name: "attempt", Value: "2"},
					}},
				},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := router.New(tt.cfg, router.Settings{MeterProvider: noop.NewMeterProvider()})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
			x := r.Explain(&tt.event)
			require.Equal(t, tt.event.Name, x.Event)
			require.Equal(t, tt.event.ID.String(), x.EventID)
			require.Equal(t, tt.event.CorrelationID.String(), x.CorrelationID)
			require.Equal(t, tt.want, x.Routes)
			require.Equal(t, tt.wantUnmatched, x.Unmatched)
		})
	}
}

// Explain records nothing: the metrics Route would record stay empty.
func TestExplainRecordsNothing(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	r, err := router.New(router.Config{Routes: []router.Route{{Match: events.StepCompleted, Metrics: []router.Metric{
		{Name: "steps.total", Type: router.MetricTypeCounter, Labels: map[string]string{"namespace": "namespace"}},
	}}}}, router.Settings{MeterProvider: mp})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	e := events.New(events.StepCompleted, events.NewID(), events.String("namespace", "ns"))
	require.Len(t, r.Explain(&e).Routes, 1)
	require.Equal(t, router.Stats{}.Received, r.Stats().Received)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			require.NotEqual(t, "steps.total", m.Name, "Explain recorded into the routed metric")
		}
	}
}

// Explain shows what a step.completed event would record and which span it
// would make, without recording anything.
func ExampleRouter_Explain() {
	r, err := router.New(router.Config{Routes: []router.Route{
		{Match: events.StepExecutionStarted, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid"}}},
		{Match: "{step.completed,step.failed}", When: map[string]string{"result": "success"}, Metrics: []router.Metric{{
			Name: "step.duration", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms",
			Labels: map[string]string{"namespace": "namespace"},
		}}},
		{Match: events.StepCompleted, Spans: []router.SpanRule{{End: "step", Key: "step_uuid", Attributes: map[string]string{"step": "step_name"}, Status: &router.SpanStatus{Code: "ok"}}}},
	}}, router.Settings{MeterProvider: noop.NewMeterProvider()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(context.Background())

	e := events.New(events.StepCompleted, events.NewID(), events.String("step_uuid", "s1"), events.String("namespace", "ns"),
		events.String("step_name", "square"), events.String("result", "success"), events.Float("duration_ms", 12.5))
	x := r.Explain(&e)
	for _, m := range x.Routes {
		fmt.Printf("routes[%d] match=%s\n", m.Index, m.Match)
		for _, s := range m.Metrics {
			fmt.Println(" ", s.Metric, s.Type, s.Labels, s.Op, s.Value)
		}
		for _, s := range m.Spans {
			fmt.Println(" ", s.Op, s.Span, "key="+s.Key, s.Attributes, s.Status)
		}
	}
	// Output:
	// routes[1] match={step.completed,step.failed}
	//   step.duration histogram [{namespace ns}] observe 12.5
	// routes[2] match=step.completed
	//   end step key=s1 [{step square}] ok
}

// FuzzExplain checks Explain against Route on arbitrary field values: the
// same events match, Route makes as many recordings as Explain lists, and a
// sensitive value never shows.
func FuzzExplain(f *testing.F) {
	f.Add("ns", "success", "hunter2", 12.5, int64(1), true)
	f.Add("", "error", "", -1.0, int64(0), false)
	f.Add("x", "failure", "s3cret", 0.0, int64(-7), true)
	r, err := router.New(router.Config{Traces: router.TraceConfig{SensitiveKeys: []string{"step_name"}}, Routes: []router.Route{
		{Match: events.StepExecutionStarted, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid"}}},
		{Match: "{step.completed,step.failed}", When: map[string]string{"result": "success"}, Metrics: []router.Metric{
			{Name: "d", Type: router.MetricTypeHistogram, Value: "duration_ms", Labels: map[string]string{"ns": "namespace", "s": "step_name"}},
		}},
		{Match: "step.*", Metrics: []router.Metric{{Name: "c", Type: router.MetricTypeCounter, Labels: map[string]string{"ns": "namespace"}}}},
		{Match: events.StepCompleted, When: map[string]string{"attempt": "1"}, Spans: []router.SpanRule{
			{End: "step", Key: "step_uuid", Status: &router.SpanStatus{Code: "error", Message: "step_name"}},
		}},
	}}, router.Settings{MeterProvider: noop.NewMeterProvider()})
	require.NoError(f, err)
	f.Cleanup(func() { require.NoError(f, r.Shutdown(context.Background())) })
	f.Fuzz(func(t *testing.T, ns, result, secret string, dur float64, attempt int64, withCorr bool) {
		cid := events.ID{}
		if withCorr {
			cid = events.NewID()
		}
		attrs := []events.Attr{events.String("step_uuid", "s1"), events.String("result", result), events.Float("duration_ms", dur), events.Int("attempt", attempt)}
		if ns != "" {
			attrs = append(attrs, events.String("namespace", ns))
		}
		if secret != "" {
			attrs = append(attrs, events.String("step_name", "§"+secret))
		}
		e := events.New(events.StepCompleted, cid, attrs...)
		before := r.Stats()
		x := r.Explain(&e)
		n := r.Route(context.Background(), &e)
		after := r.Stats()
		require.Equal(t, after.Unmatched-before.Unmatched == 1, x.Unmatched)
		listed := 0
		for _, m := range x.Routes {
			listed += len(m.Metrics)
		}
		require.Equal(t, n, listed, "Route made %d recordings, Explain lists %d", n, listed)
		if secret != "" {
			require.NotContains(t, fmt.Sprintf("%+v", x), "§"+secret)
		}
	})
}

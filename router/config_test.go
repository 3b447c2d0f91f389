package router_test

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/router"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	counter := func(m router.Metric) router.Config {
		if m.Name == "" {
			m.Name = "x.total"
		}
		if m.Type == "" {
			m.Type = router.MetricTypeCounter
		}
		return router.Config{Routes: []router.Route{{Match: events.StepEnqueued, Metrics: []router.Metric{m}}}}
	}
	tests := []struct {
		name string
		cfg  router.Config
		want []string // "path: message fragment"
	}{
		{name: "valid", cfg: counter(router.Metric{Labels: map[string]string{"ns": "namespace", "cid": "correlation_id"}})},
		{name: "unknown event", cfg: router.Config{Routes: []router.Route{{Match: "task.exploded", Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].match: unknown event "task.exploded"`}},
		{name: "glob matching nothing", cfg: router.Config{Routes: []router.Route{{Match: "nothing.*", Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].match: pattern "nothing.*" matches no event`}},
		{name: "bad glob", cfg: router.Config{Routes: []router.Route{{Match: "step.[", Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].match: pattern "step.["`}},
		{name: "no metrics", cfg: router.Config{Routes: []router.Route{{Match: events.StepEnqueued}}},
			want: []string{"routes[0].metrics: a route needs at least one metric"}},
		{name: "label from missing field", cfg: counter(router.Metric{Labels: map[string]string{"result": "result_type"}}),
			want: []string{`routes[0].metrics[0].labels.result: event "step.enqueued" has no field "result_type"`}},
		{name: "bad label name", cfg: counter(router.Metric{Labels: map[string]string{"2xx": "namespace", "__x": "namespace"}}),
			want: []string{"routes[0].metrics[0].labels.2xx: label name must match", "routes[0].metrics[0].labels.__x: label name"}},
		{name: "bad metric name", cfg: counter(router.Metric{Name: "2xx"}),
			want: []string{`routes[0].metrics[0].name: must match`}},
		{name: "bad type", cfg: counter(router.Metric{Type: "summary"}),
			want: []string{`routes[0].metrics[0].type: must be one of counter, updown_counter, histogram, gauge, got "summary"`}},
		{name: "histogram without value", cfg: counter(router.Metric{Type: router.MetricTypeHistogram}),
			want: []string{"routes[0].metrics[0].value: a histogram needs a value field"}},
		{name: "value not numeric", cfg: counter(router.Metric{Value: "namespace"}),
			want: []string{`routes[0].metrics[0].value: field "namespace" of event "step.enqueued" is a string, want a number`}},
		{name: "buckets not increasing", cfg: counter(router.Metric{Type: router.MetricTypeCounter, Buckets: []float64{1, 1}}),
			want: []string{"routes[0].metrics[0].buckets: only a histogram has buckets", "routes[0].metrics[0].buckets[1]: bounds must increase strictly"}},
		{name: "bucket not finite", cfg: counter(router.Metric{Type: router.MetricTypeHistogram, Value: "duration_ms", Buckets: []float64{1, math.NaN(), 0}}),
			want: []string{"routes[0].metrics[0].buckets[1]: bounds must be finite, got NaN"}},
		{name: "negative limits", cfg: router.Config{SeriesLimit: -1, Routes: counter(router.Metric{SeriesLimit: -2}).Routes},
			want: []string{"series_limit: must not be negative, got -1", "routes[0].metrics[0].series_limit: must not be negative, got -2"}},
		{name: "conflicting definitions", cfg: router.Config{Routes: []router.Route{
			{Match: events.StepEnqueued, Metrics: []router.Metric{{Name: "a", Type: router.MetricTypeCounter}}},
			{Match: events.StepClaimed, Metrics: []router.Metric{{Name: "a", Type: router.MetricTypeCounter, Labels: map[string]string{"ns": "namespace"}}}},
		}}, want: []string{`routes[1].metrics[0].name: metric "a" is also defined at routes[0].metrics[0] with a different label set`}},
		{name: "when on fields of every matched event", cfg: router.Config{Routes: []router.Route{{Match: "resilience.circuit_breaker_state",
			When: map[string]string{"component": "api", "state": "2", "correlation_id": "0199c3e0-ccdb-7581-87ab-3f67daeaa4a5"}, Metrics: counter(router.Metric{}).Routes[0].Metrics}}}},
		{name: "when on a missing field", cfg: router.Config{Routes: []router.Route{{Match: "step.*", When: map[string]string{"error_type": "x"}, Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].when.error_type: event "step.enqueued" has no field "error_type"`}},
		{name: "when values that can never match", cfg: router.Config{Routes: []router.Route{{Match: "resilience.circuit_breaker_state",
			When: map[string]string{"state": "02", "previous_state": "open", "correlation_id": "x"}, Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].when.state: event "resilience.circuit_breaker_state": field "state" is of type int: write "2", not "02"`,
				`routes[0].when.previous_state: event "resilience.circuit_breaker_state": field "previous_state" is an int: want its decimal text`,
				`routes[0].when.correlation_id: event "resilience.circuit_breaker_state": correlation_id is a UUID, got "x"`}},
		{name: "when on a bool", cfg: router.Config{Routes: []router.Route{{Match: "telemetry.cache_synced", When: map[string]string{"success": "False"}, Metrics: counter(router.Metric{}).Routes[0].Metrics}}},
			want: []string{`routes[0].when.success: event "telemetry.cache_synced": field "success" is a bool: want true or false, got "False"`}},
		{name: "initial sets", cfg: counter(router.Metric{Labels: map[string]string{"ns": "namespace", "n": "attempt"},
			Initial: []map[string]string{{"ns": "a", "n": "1"}, {"ns": "b"}, {"ns": "c", "n": "1", "x": "y"}, {"ns": "d", "n": "one"}}}),
			want: []string{`routes[0].metrics[0].initial[1]: no value for label "n" (each set gives exactly the labels n, ns)`,
				`routes[0].metrics[0].initial[2].x: "x" is not a label of this metric`,
				`routes[0].metrics[0].initial[3].n: event "step.enqueued": field "attempt" is an int`}},
		{name: "initial on a histogram", cfg: counter(router.Metric{Type: router.MetricTypeHistogram, Value: "attempt", Initial: []map[string]string{{}}}),
			want: []string{"routes[0].metrics[0].initial: a histogram cannot start at 0"}},
		{name: "initial sets count against the series limit, merged", cfg: router.Config{Routes: []router.Route{
			{Match: events.StepEnqueued, Metrics: []router.Metric{{Name: "a", Type: router.MetricTypeCounter, SeriesLimit: 2, Labels: map[string]string{"ns": "namespace"},
				Initial: []map[string]string{{"ns": "a"}, {"ns": "b"}}}}},
			{Match: events.StepClaimed, Metrics: []router.Metric{{Name: "a", Type: router.MetricTypeCounter, SeriesLimit: 2, Labels: map[string]string{"ns": "namespace"},
				Initial: []map[string]string{{"ns": "b"}, {"ns": "c"}}}}},
		}}, want: []string{`routes[1].metrics[0].initial[1]: metric "a" has more initial label sets than its series limit, 2`}},
		{name: "glob checks every matched event", cfg: router.Config{Routes: []router.Route{{Match: "task.*", Metrics: []router.Metric{
			{Name: "t", Type: router.MetricTypeCounter, Labels: map[string]string{"s": "final_state"}}}}}},
			want: []string{`routes[0].metrics[0].labels.s: event "task.initialize_requested" has no field "final_state"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			// Every problem carries its path as a *FieldError.
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *router.FieldError
				require.True(t, errors.As(e, &fe), "%v is not a FieldError", e)
				require.Contains(t, e.Error(), fe.FieldPath()+": ")
			}
		})
	}
}

func TestMetricTypeUnmarshalText(t *testing.T) {
	t.Parallel()
	var mt router.MetricType
	require.NoError(t, mt.UnmarshalText([]byte("histogram")))
	require.Equal(t, router.MetricTypeHistogram, mt)
	require.EqualError(t, mt.UnmarshalText([]byte("summary")),
		`unknown metric type "summary" (allowed: counter, updown_counter, histogram, gauge)`)
}

func TestSpanRulesValidate(t *testing.T) {
	t.Parallel()
	start := router.Route{Match: events.TaskInitializeRequested, Spans: []router.SpanRule{{Start: "task", Key: "task_uuid"}}}
	with := func(match string, rules ...router.SpanRule) router.Config {
		return router.Config{Routes: []router.Route{start, {Match: match, Spans: rules}}}
	}
	bad, half := 1.5, 0.5
	tests := []struct {
		name string
		cfg  router.Config
		want []string
	}{
		{name: "valid", cfg: with(events.StepCompleted,
			router.SpanRule{Record: "execute", Duration: "duration_ms", Parent: []router.SpanRef{{Span: "task", Key: "task_uuid"}}, Kind: "consumer", SampleRatio: &half},
			router.SpanRule{Event: "task", Key: "task_uuid", Attributes: map[string]string{"step": "step_name"}},
			router.SpanRule{End: "task", Key: "task_uuid", Duration: "duration_ms", Status: &router.SpanStatus{Field: "result", Error: []string{"error"}}})},
		{name: "no operation", cfg: with(events.StepCompleted, router.SpanRule{Key: "task_uuid"}),
			want: []string{"routes[1].spans[0]: set exactly one of start, end, record and event"}},
		{name: "two operations", cfg: with(events.StepCompleted, router.SpanRule{Start: "a", End: "task", Key: "task_uuid"}),
			want: []string{"routes[1].spans[0]: set exactly one of"}},
		{name: "end of a span nothing opens", cfg: with(events.StepCompleted, router.SpanRule{End: "stepp", Key: "step_uuid"}),
			want: []string{`routes[1].spans[0].end: no start rule opens a span "stepp" (spans that start rules open: task)`}},
		{name: "missing key", cfg: with(events.StepCompleted, router.SpanRule{End: "task"}),
			want: []string{"routes[1].spans[0].key: an end rule needs the field that identifies its span"}},
		{name: "key not a field", cfg: with(events.TaskInitialized, router.SpanRule{Start: "init", Key: "step_uuid"}),
			want: []string{`routes[1].spans[0].key: event "task.initialized" has no field "step_uuid" for the span key`}},
		{name: "record with key and no duration", cfg: with(events.StepEnqueued, router.SpanRule{Record: "x", Key: "step_uuid"}),
			want: []string{"routes[1].spans[0].key: a record rule's span ends at once", "routes[1].spans[0].duration: a record rule needs the field"}},
		{name: "duration not numeric", cfg: with(events.StepCompleted, router.SpanRule{Record: "x", Duration: "result"}),
			want: []string{`routes[1].spans[0].duration: field "result" of event "step.completed" is a string, want a number`}},
		{name: "options on the wrong op", cfg: with(events.StepCompleted, router.SpanRule{Event: "task", Key: "task_uuid", Kind: "server", Status: &router.SpanStatus{Code: "ok"}, Parent: []router.SpanRef{{Span: "task", Key: "task_uuid"}}, SampleRatio: &half, Duration: "duration_ms"}),
			want: []string{"spans[0].parent: only start and record rules take parent", "spans[0].kind: only start and record rules take kind", "spans[0].status: only end and record rules take status", "spans[0].sample_ratio: only start and record rules take sample_ratio", "spans[0].duration: only end and record rules take duration"}},
		{name: "bad values", cfg: with(events.StepCompleted, router.SpanRule{Start: "9x", Key: "step_uuid", Kind: "sideways", SampleRatio: &bad, Attributes: map[string]string{"a-b": "nope"}}),
			want: []string{"spans[0].start: span name must match", `spans[0].kind: must be one of internal, server, client, producer, consumer, got "sideways"`, "spans[0].sample_ratio: must be from 0 to 1, got 1.5", "spans[0].attributes.a-b: attribute name must match", `spans[0].attributes.a-b: event "step.completed" has no field "nope"`}},
		{name: "parent problems", cfg: with(events.StepEnqueued, router.SpanRule{Start: "step", Key: "step_uuid", Parent: []router.SpanRef{{Span: "orch", Key: "task_uuid"}, {Span: "task"}}}),
			want: []string{`spans[0].parent[0].span: no start rule opens a span "orch"`, "spans[0].parent[1].key: give the field of this event that holds the parent's key"}},
		{name: "status problems", cfg: with(events.StepCompleted,
			router.SpanRule{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Code: "fine"}},
			router.SpanRule{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Field: "result"}},
			router.SpanRule{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Code: "ok", Field: "result", Message: "why"}},
			router.SpanRule{End: "task", Key: "task_uuid", Status: &router.SpanStatus{}}),
			want: []string{`spans[0].status.code: must be ok, error or unset, got "fine"`, `spans[1].status.error: list the values of "result" that mean error`, "spans[2].status: set code or field, not both", `spans[2].status.message: event "step.completed" has no field "why"`, "spans[3].status: set code (ok, error or unset) or field"}},
		{name: "tracing section", cfg: router.Config{Traces: router.TraceConfig{SampleRatio: &bad, MaxOpenSpans: -1, OpenSpanTTL: -1, SensitiveKeys: []string{" "}}, Routes: []router.Route{start}},
			want: []string{"traces.sample_ratio: must be from 0 to 1", "traces.max_open_spans: must not be negative", "traces.open_span_ttl: must not be negative", "traces.sensitive_keys[0]: must not be empty"}},
		{name: "alternative with a typo", cfg: router.Config{Routes: []router.Route{start, {Match: "{task.completed,task.complete}", Spans: []router.SpanRule{{End: "task", Key: "task_uuid"}}}}},
			want: []string{`routes[1].match: unknown event "task.complete"`}},
		{name: "event_name as key", cfg: with(events.StepCompleted, router.SpanRule{Event: "task", Key: "event_name"}),
			want: []string{"routes[1].spans[0].key: event_name differs between a span's start and end events"}},
		{name: "end with duration lacks the start's parent key", cfg: router.Config{Routes: []router.Route{start,
			{Match: events.StepEnqueued, Spans: []router.SpanRule{{Start: "step", Key: "step_uuid", Parent: []router.SpanRef{{Span: "task", Key: "task_uuid"}}}}},
			{Match: events.WorkerStopped, Spans: []router.SpanRule{{End: "step", Key: "worker_id", Duration: "", Attributes: map[string]string{}}}},
			{Match: events.DBQueryExecuted, Spans: []router.SpanRule{{End: "step", Key: "pool", Duration: "duration_ms"}}},
		}}, want: []string{`routes[3].spans[0].duration: recording span "step" from event "db.query_executed" takes its start rule's parent "task", keyed by field "task_uuid", which the event lacks`}},
		{name: "route with neither", cfg: router.Config{Routes: []router.Route{{Match: events.StepEnqueued}}},
			want: []string{"routes[0].metrics: a route needs at least one metric or span rule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			var fe *router.FieldError
			require.True(t, errors.As(err, &fe), "every problem is a *FieldError")
		})
	}
}

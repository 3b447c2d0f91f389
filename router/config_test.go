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

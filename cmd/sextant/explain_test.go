package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stepUUID is the step_uuid of stepCompleted's events.
const stepUUID = "0190b6a1-0000-7000-8000-000000000002"

func TestExplainCmdText(t *testing.T) {
	t.Parallel()
	worker := `{"name":"worker.started","correlation_id":"` + testCorr + `","attrs":{"namespace":"x","worker_id":"w1"}}`
	file := writeFile(t, "events.ndjson", ok("x")+"\n"+worker+"\n")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"explain", "--event", file}, &stdout, &stderr))
	out := stdout.String()
	lines := strings.Split(out, "\n")
	require.Regexp(t, `^step\.completed id=\S+ correlation_id=`+testCorr+`$`, lines[0])
	require.Regexp(t, regexp.MustCompile(`(?m)^  routes\[\d+\] match=step\.completed$`), out)
	require.Contains(t, lines, `    metric tasker_step_execution_duration_milliseconds histogram {correlation_id="`+testCorr+`",namespace="x",result="success"} observe 12.5`)
	require.Contains(t, lines, `    metric tasker_steps_successes_total counter {correlation_id="`+testCorr+`",namespace="x"} add 1`)
	require.Contains(t, lines, `    span record step_execute parent step_execution(step_uuid=`+stepUUID+`) duration 12.5ms attributes {attempt="1"} status ok`)
	require.Regexp(t, regexp.MustCompile(`(?m)^worker\.started id=\S+ correlation_id=`+testCorr+"\n  no route matches\n"), out)
	require.Empty(t, stderr.String())
}

// A custom configuration: a when that excludes, a missing field, and a
// sensitive field masked in labels and span attributes alike; the events
// come from stdin.
func TestExplainCmdConfigAndRedaction(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "rules.yaml", `router:
  traces:
    sensitive_keys: [step_name]
  routes:
    - match: step.completed
      when: {result: error}
      metrics: [{name: failures, type: counter}]
    - match: "{step.completed,step.failed}"
      metrics:
        - {name: steps, type: counter, labels: {step: step_name, ns: namespace}}
        - {name: attempts, type: gauge, value: attempt}
    - match: step.completed
      spans:
        - {record: exec, duration: duration_ms, attributes: {step: step_name, ns: namespace}}
`)
	event := stepCompleted("x", []string{"attempt"}, nil)
	var stdout bytes.Buffer
	require.NoError(t, explainCmd(context.Background(), []string{"--config", cfg, "--event", "-"}, strings.NewReader(event), &stdout, io.Discard))
	out := stdout.String()
	require.Contains(t, out, "\n  routes[0] match=step.completed excluded: when result=\"error\": the event has \"success\"\n")
	require.Contains(t, out, "\n  routes[1] match={step.completed,step.failed}\n"+
		"    metric steps_total counter {ns=\"x\",step=\"[REDACTED]\"} add 1\n"+
		"    skipped metric attempts: the event lacks field attempt (value)\n")
	require.Contains(t, out, "\n  routes[2] match=step.completed\n"+
		"    span record exec duration 12.5ms attributes {ns=\"x\",step=\"[REDACTED]\"}\n")
	require.NotContains(t, out, "fetch", "the sensitive step_name leaked")
	require.NotContains(t, out, "no route matches")
}

func TestExplainCmdJSON(t *testing.T) {
	t.Parallel()
	worker := `{"name":"worker.started","correlation_id":"` + testCorr + `","attrs":{"namespace":"x","worker_id":"w1"}}`
	file := writeFile(t, "events.json", "["+ok("x")+","+worker+"]")
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"explain", "--json", "--event", file}, &stdout, io.Discard))
	var got []struct {
		Event         string `json:"event"`
		EventID       string `json:"event_id"`
		CorrelationID string `json:"correlation_id"`
		Unmatched     bool   `json:"unmatched"`
		Routes        []struct {
			Index   int    `json:"index"`
			Match   string `json:"match"`
			Metrics []struct {
				Metric   string            `json:"metric"`
				PromName string            `json:"prom_name"`
				Type     string            `json:"type"`
				Unit     string            `json:"unit"`
				Op       string            `json:"op"`
				Value    float64           `json:"value"`
				Labels   []json.RawMessage `json:"labels"`
			} `json:"metrics"`
			Spans []struct {
				Op       string   `json:"op"`
				Span     string   `json:"span"`
				Parents  []string `json:"parents"`
				Duration int64    `json:"duration_ns"`
				Attrs    []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"attributes"`
				Status string `json:"status"`
			} `json:"spans"`
		} `json:"routes"`
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&got))
	require.Len(t, got, 2)
	require.Equal(t, "step.completed", got[0].Event)
	require.Equal(t, testCorr, got[0].CorrelationID)
	require.NotEmpty(t, got[0].EventID)
	require.False(t, got[0].Unmatched)
	var metrics, spans int
	for _, r := range got[0].Routes {
		require.Equal(t, "step.completed", r.Match)
		for _, m := range r.Metrics {
			metrics++
			if m.Metric == "tasker.step.execution.duration" {
				require.Equal(t, "tasker_step_execution_duration_milliseconds", m.PromName)
				require.Equal(t, "histogram", m.Type)
				require.Equal(t, "ms", m.Unit)
				require.Equal(t, "observe", m.Op)
				require.InDelta(t, 12.5, m.Value, 0)
				require.Len(t, m.Labels, 3)
			}
		}
		for _, s := range r.Spans {
			spans++
			require.Equal(t, "record", s.Op)
			require.Equal(t, "step_execute", s.Span)
			require.Equal(t, []string{"step_execution(step_uuid=" + stepUUID + ")"}, s.Parents)
			require.Equal(t, int64(12_500_000), s.Duration)
			require.Equal(t, "ok", s.Status)
			require.Len(t, s.Attrs, 1)
			require.Equal(t, "attempt", s.Attrs[0].Name)
			require.Equal(t, "1", s.Attrs[0].Value)
		}
	}
	require.Equal(t, 2, metrics)
	require.Equal(t, 1, spans)
	require.Equal(t, "worker.started", got[1].Event)
	require.True(t, got[1].Unmatched)
	require.Empty(t, got[1].Routes)
}

func TestExplainCmdErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		input    string
		wantCode int
		want     []string
	}{
		{
			name:     "invalid event",
			args:     []string{"--event", "-"},
			input:    ok("a") + "\n" + stepCompleted("b", []string{"result"}, nil) + "\n",
			wantCode: 1,
			want:     []string{`stdin:2: events[1]: step.completed: missing required field "result"`, "stdin: 1 of 2 events are invalid; none was explained"},
		},
		{
			name:     "malformed JSON",
			args:     []string{"--event", "-"},
			input:    `{"name":`,
			wantCode: 1,
			want:     []string{"stdin:1:", "malformed JSON"},
		},
		{
			name:     "empty input",
			args:     []string{"--event", "-"},
			wantCode: 1,
			want:     []string{"stdin: no events: the input is empty"},
		},
		{
			name:     "no --event",
			wantCode: 2,
			want:     []string{"explain: --event FILE is required"},
		},
		{
			name:     "unreadable file",
			args:     []string{"--event", "/nonexistent/events.json"},
			wantCode: 1,
			want:     []string{"/nonexistent/events.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := explainCmd(context.Background(), tt.args, strings.NewReader(tt.input), &stdout, io.Discard)
			require.Error(t, err)
			require.Equal(t, tt.wantCode, exitCode(err, &stderr))
			for _, w := range tt.want {
				require.Contains(t, stderr.String(), w)
			}
			require.Empty(t, stdout.String(), "nothing is explained when the input is bad")
		})
	}
}

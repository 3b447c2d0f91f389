package exporters_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
)

func TestParseMatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    exporters.Matcher
		wantErr string // a substring of the error; "" for none
	}{
		{name: "equal quoted", in: `namespace="rust_e2e_linear"`, want: exporters.Matcher{Name: "namespace", Op: "=", Value: "rust_e2e_linear"}},
		{name: "not equal unquoted", in: `result!=error`, want: exporters.Matcher{Name: "result", Op: "!=", Value: "error"}},
		{name: "regexp", in: `step_name=~"linear_.*"`, want: exporters.Matcher{Name: "step_name", Op: "=~", Value: "linear_.*"}},
		{name: "not regexp unquoted", in: `step_name!~linear_\d+`, want: exporters.Matcher{Name: "step_name", Op: "!~", Value: `linear_\d+`}},
		{name: "spaces around", in: `  result != "ok"  `, want: exporters.Matcher{Name: "result", Op: "!=", Value: "ok"}},
		{name: "empty value", in: `result=`, want: exporters.Matcher{Name: "result", Op: "=", Value: ""}},
		{name: "empty quoted value", in: `result=""`, want: exporters.Matcher{Name: "result", Op: "=", Value: ""}},
		{name: "escapes", in: `path="a\"b\\c\n"`, want: exporters.Matcher{Name: "path", Op: "=", Value: "a\"b\\c\n"}},
		{name: "single quotes", in: `path='it\'s "x"'`, want: exporters.Matcher{Name: "path", Op: "=", Value: `it's "x"`}},
		{name: "back quotes", in: "path=~`a\\d`", want: exporters.Matcher{Name: "path", Op: "=~", Value: `a\d`}},
		{name: "quoted utf-8 name", in: `"service.name"="sextant"`, want: exporters.Matcher{Name: "service.name", Op: "=", Value: "sextant"}},
		{name: "dotted name unquoted", in: `step.name=a`, want: exporters.Matcher{Name: "step.name", Op: "=", Value: "a"}},
		{name: "unquoted value keeps operators", in: `a==b`, want: exporters.Matcher{Name: "a", Op: "=", Value: "=b"}},
		{name: "metric name", in: `__name__=~"tasker_.*"`, want: exporters.Matcher{Name: "__name__", Op: "=~", Value: "tasker_.*"}},
		{name: "no name", in: `="x"`, wantErr: "no label name"},
		{name: "empty quoted name", in: `""="x"`, wantErr: "no label name"},
		{name: "empty", in: ``, wantErr: "no label name"},
		{name: "no operator", in: `namespace`, wantErr: "want =, !=, =~ or !~"},
		{name: "wrong operator", in: `namespace~"x"`, wantErr: "want =, !=, =~ or !~"},
		{name: "unterminated", in: `namespace="x`, wantErr: "bad quoted string"},
		{name: "unterminated single", in: `namespace='x`, wantErr: "unterminated"},
		{name: "text after the value", in: `namespace="x" y`, wantErr: `unexpected " y"`},
		{name: "bad regexp", in: `a=~"("`, wantErr: "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := exporters.ParseMatcher(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, exporters.ErrInvalidMatcher)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			back, err := exporters.ParseMatcher(got.String())
			require.NoError(t, err)
			require.Equal(t, got, back, "String round-trips: %s", got)
		})
	}
}

func TestMatcherString(t *testing.T) {
	t.Parallel()
	require.Equal(t, `step_name=~"linear_.*"`, exporters.Matcher{Name: "step_name", Op: "=~", Value: "linear_.*"}.String())
	require.Equal(t, `"service.name"="a\"b"`, exporters.Matcher{Name: "service.name", Op: "=", Value: `a"b`}.String())
}

// filterSnapshot is a small snapshot to filter: two counters and a
// histogram.
func filterSnapshot() *exporters.Snapshot {
	series := func(kv ...string) exporters.Series {
		var s exporters.Series
		for i := 0; i+1 < len(kv); i += 2 {
			s.Labels = append(s.Labels, exporters.Label{Name: kv[i], Value: kv[i+1]})
		}
		return s
	}
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant"},
		Time:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Families: []exporters.Family{
			{PromName: "tasker_step_execution_duration_milliseconds", Type: exporters.TypeHistogram, Series: []exporters.Series{
				series("namespace", "rust_e2e_linear", "step_name", "linear_1"),
				series("namespace", "rust_e2e_linear", "step_name", "linear_2"),
				series("namespace", "diamond", "step_name", "diamond_start"),
			}},
			{PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter, Series: []exporters.Series{
				series("namespace", "rust_e2e_linear", "result", "ok"),
				series("namespace", "rust_e2e_linear", "result", "error"),
				series("result", "ok"), // no namespace
			}},
			{PromName: "sextant_events_total", Type: exporters.TypeCounter, Series: []exporters.Series{
				series(),
			}},
		},
	}
}

// kept lists what a filtered snapshot holds, as name{v1,v2} per series.
func kept(s *exporters.Snapshot) []string {
	var out []string
	for _, f := range s.Families {
		for _, ser := range f.Series {
			vals := make([]string, 0, len(ser.Labels))
			for _, l := range ser.Labels {
				vals = append(vals, l.Value)
			}
			out = append(out, f.PromName+"{"+strings.Join(vals, ",")+"}")
		}
	}
	return out
}

func TestFilterApply(t *testing.T) {
	t.Parallel()
	m := func(s string) exporters.Matcher {
		mm, err := exporters.ParseMatcher(s)
		require.NoError(t, err)
		return mm
	}
	tests := []struct {
		name   string
		filter exporters.Filter
		want   []string
	}{
		{
			name:   "zero filter keeps everything",
			filter: exporters.Filter{},
			want: []string{
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_1}",
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_2}",
				"tasker_step_execution_duration_milliseconds{diamond,diamond_start}",
				"tasker_tasks_requests_total{rust_e2e_linear,ok}",
				"tasker_tasks_requests_total{rust_e2e_linear,error}",
				"tasker_tasks_requests_total{ok}",
				"sextant_events_total{}",
			},
		},
		{
			name:   "name glob",
			filter: exporters.Filter{Names: []string{"tasker_*_total"}},
			want: []string{
				"tasker_tasks_requests_total{rust_e2e_linear,ok}",
				"tasker_tasks_requests_total{rust_e2e_linear,error}",
				"tasker_tasks_requests_total{ok}",
			},
		},
		{
			name:   "any of several globs, ? and classes",
			filter: exporters.Filter{Names: []string{"sextant_event?_total", "[t]asker_step_*"}, Matchers: []exporters.Matcher{m(`step_name!~"linear_.*"`)}},
			want: []string{
				"tasker_step_execution_duration_milliseconds{diamond,diamond_start}",
				"sextant_events_total{}",
			},
		},
		{
			name:   "equal",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`namespace="rust_e2e_linear"`)}},
			want: []string{
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_1}",
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_2}",
				"tasker_tasks_requests_total{rust_e2e_linear,ok}",
				"tasker_tasks_requests_total{rust_e2e_linear,error}",
			},
		},
		{
			name:   "every matcher must hold",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`namespace="rust_e2e_linear"`), m(`result!=error`)}},
			want: []string{
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_1}",
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_2}",
				"tasker_tasks_requests_total{rust_e2e_linear,ok}",
			},
		},
		{
			name:   "a missing label is empty",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`namespace=""`)}},
			want: []string{
				"tasker_tasks_requests_total{ok}",
				"sextant_events_total{}",
			},
		},
		{
			name:   "regexps are anchored",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`step_name=~"linear"`)}},
			want:   nil,
		},
		{
			name:   "anchored regexp, whole value",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`step_name=~"linear_.*"`)}},
			want: []string{
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_1}",
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_2}",
			},
		},
		{
			name:   "negative regexp matches missing labels",
			filter: exporters.Filter{Names: []string{"tasker_tasks_*"}, Matchers: []exporters.Matcher{m(`namespace!~"rust.*"`)}},
			want:   []string{"tasker_tasks_requests_total{ok}"},
		},
		{
			name:   "the metric name as __name__",
			filter: exporters.Filter{Matchers: []exporters.Matcher{m(`__name__=~"sextant_.*|.*_milliseconds"`), m(`step_name!="linear_1"`)}},
			want: []string{
				"tasker_step_execution_duration_milliseconds{rust_e2e_linear,linear_2}",
				"tasker_step_execution_duration_milliseconds{diamond,diamond_start}",
				"sextant_events_total{}",
			},
		},
		{
			name:   "an invalid glob matches nothing",
			filter: exporters.Filter{Names: []string{"[", "sextant_*"}},
			want:   []string{"sextant_events_total{}"},
		},
		{
			name:   "an invalid matcher holds for nothing",
			filter: exporters.Filter{Matchers: []exporters.Matcher{{Name: "a", Op: "=~", Value: "("}}},
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := filterSnapshot()
			got := tt.filter.Apply(s)
			require.Equal(t, tt.want, kept(got))
			require.Equal(t, s.Resource, got.Resource)
			require.Equal(t, s.Time, got.Time)
			for _, f := range got.Families {
				require.NotEmpty(t, f.Series, "families without series are dropped")
			}
			require.Equal(t, filterSnapshot(), s, "Apply leaves its input alone")
		})
	}
	require.Nil(t, exporters.Filter{}.Apply(nil))
}

func TestFilterValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, exporters.Filter{Names: []string{"a*", `b\*`}, Matchers: []exporters.Matcher{{Name: "a", Op: "!~", Value: "x|y"}}}.Validate())
	err := exporters.Filter{
		Names:    []string{"ok", "[a-"},
		Matchers: []exporters.Matcher{{Name: "a", Op: "=", Value: "x"}, {Name: "b", Op: "==", Value: "x"}, {Op: "="}, {Name: "c", Op: "=~", Value: "a("}},
	}.Validate()
	require.ErrorIs(t, err, exporters.ErrInvalidGlob)
	require.ErrorIs(t, err, exporters.ErrInvalidMatcher)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 4)
	require.True(t, strings.HasPrefix(lines[0], "names[1]: "), lines[0])
	require.True(t, strings.HasPrefix(lines[1], "matchers[1]: "), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "matchers[2]: "), lines[2])
	require.True(t, strings.HasPrefix(lines[3], "matchers[3]: "), lines[3])
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{
		`namespace="rust_e2e_linear"`, `result!=error`, `step_name=~"linear_.*"`, `a!~'x\'y'`,
		"a=`b`", `"service.name"="x"`, `=`, `a=~(`, `a="\xff"`, `a = "b" `, `'a'!=b`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := exporters.ParseMatcher(s)
		if err != nil {
			require.ErrorIs(t, err, exporters.ErrInvalidMatcher)
			return
		}
		require.NoError(t, m.Validate())
		back, err := exporters.ParseMatcher(m.String())
		require.NoError(t, err, "%q", m.String())
		require.Equal(t, m, back)
		// Applying it must not panic, and keeps a subset.
		snap := filterSnapshot()
		got := exporters.Filter{Matchers: []exporters.Matcher{m}}.Apply(snap)
		require.LessOrEqual(t, got.SeriesCount(), snap.SeriesCount())
	})
}

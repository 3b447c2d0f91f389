package router

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{"task.completed", "task.completed", true},
		{"task.completed", "task.completed.x", false},
		{"task.*", "task.completed", true},
		{"task.*", "task.a.b", false},
		{"*", "task", true},
		{"*", "task.completed", false},
		{"**", "task.completed", true},
		{"**", "a.b.c.d", true},
		{"step.**", "step", true},
		{"step.**", "step.a.b", true},
		{"**.failed", "step.failed", true},
		{"**.failed", "a.b.failed", true},
		{"**.failed", "step.completed", false},
		{"step.*ed", "step.claimed", true},
		{"step.*ed", "step.result_submitted", true},
		{"step.*ed", "step.execution_started", true},
		{"step.claim?d", "step.claimed", true},
		{"a.**.z", "a.z", true},
		{"a.**.z", "a.b.c.z", true},
		{"a.**.z", "a.b.c.y", false},
		{"{task.completed,task.failed}", "task.failed", true},
		{"{task.completed, step.*}", "step.claimed", true},
		{"{task.completed,task.failed}", "task.cancelled", false},
		{"{task.completed}", "task.completed", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := compilePattern(tt.pattern)
			require.NoError(t, err)
			require.Equal(t, tt.want, p.match(tt.name))
		})
	}
}

func TestCompilePatternErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a..b", ".a", "a.", "a.**x", "a.[", `a.\`, "{a,}", "{}", "{a,{b}}", "a.{b,c}", "{a.b", "a,b"} {
		_, err := compilePattern(bad)
		require.Error(t, err, "pattern %q", bad)
	}
}

func FuzzRouteMatch(f *testing.F) {
	for _, s := range []string{"task.*", "**", "step.*ed", "a.**.z", "[a-", "x"} {
		f.Add(s, "task.completed")
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		p, err := compilePattern(pat)
		if err != nil {
			return
		}
		got := p.match(name)
		if p.literal && got != (pat == name) {
			t.Fatalf("literal %q vs %q: match=%v", pat, name, got)
		}
		if pat == "**" && !got {
			t.Fatalf("** must match %q", name)
		}
	})
}

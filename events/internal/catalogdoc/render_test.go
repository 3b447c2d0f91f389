package catalogdoc

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// This test binary registers no custom events, so Catalog is the built-in one.

func TestDocIsFresh(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Render(&b, events.Catalog()))
	doc, err := os.ReadFile("../../../docs/events.md")
	require.NoError(t, err)
	if !bytes.Equal(b.Bytes(), doc) {
		t.Fatal("docs/events.md is stale: run make docs")
	}
}

func TestRenderCoversTheCatalog(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Render(&b, events.Catalog()))
	doc := b.String()
	for _, s := range events.Catalog() {
		require.Contains(t, doc, "\n### `"+s.Name+"`\n", "a section per event")
		require.Contains(t, doc, "[`"+s.Name+"`](#"+anchor(s.Name)+")", "a contents entry per event")
		for _, f := range s.Fields {
			require.Contains(t, doc, "| `"+f.Name+"` | "+f.Type.String()+" |")
		}
	}
	for _, g := range events.Groups() {
		require.Contains(t, doc, "\n## "+g+"\n")
	}
	for _, ns := range events.ReservedNamespaces() {
		require.Contains(t, doc, "`"+ns+"`")
	}
	require.Contains(t, doc, "| `traceparent` | W3C traceparent |", "the envelope lists the trace parent")
	require.Contains(t, doc, "`0` closed, `1` half-open, `2` open")
	require.Contains(t, doc, "`make docs`")
	require.Contains(t, doc, "`go generate ./events`")
}

func TestReferenceNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, m := range referenceNames {
		require.False(t, seen[m.Ref], "%s is mapped twice", m.Ref)
		seen[m.Ref] = true
		if m.Ours == "" {
			require.NotEmpty(t, m.Note, "%s: say why there is no counterpart", m.Ref)
			continue
		}
		_, ok := events.Lookup(m.Ours)
		require.True(t, ok, "%s maps to %s, which is not in the catalog", m.Ref, m.Ours)
		if strings.HasPrefix(m.Note, "same name") {
			require.Equal(t, m.Ref, m.Ours)
		}
	}
	// The examples the issue names.
	want := map[string]string{
		"task.before_transition":               events.TaskStateTransitioned,
		"step.before_handle":                   events.StepExecutionStarted,
		"workflow.task_finalization_completed": events.TaskFinalized,
		"tasker.telemetry.export_completed":    events.TelemetryExportCompleted,
		"observability.step.backoff":           events.ObservabilityStepBackoff,
	}
	for ref, ours := range want {
		i := indexRef(ref)
		require.GreaterOrEqual(t, i, 0, ref)
		require.Equal(t, ours, referenceNames[i].Ours, ref)
	}
}

func indexRef(ref string) int {
	for i, m := range referenceNames {
		if m.Ref == ref {
			return i
		}
	}
	return -1
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cat     []events.Schema
		w       *failWriter
		wantErr string
	}{
		{name: "a mapped event is missing", cat: []events.Schema{{Name: "order.shipped", Group: events.GroupCustom, Description: "x"}}, wantErr: "not in the catalog"},
		{name: "no description", cat: []events.Schema{{Name: "order.shipped", Group: events.GroupCustom}}, wantErr: "no description"},
		{name: "write fails", cat: events.Catalog(), w: &failWriter{}, wantErr: "disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.w != nil {
				err = Render(tt.w, tt.cat)
			} else {
				err = Render(&bytes.Buffer{}, tt.cat)
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

type failWriter struct{}

func (*failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAnchor(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"task.initialized":           "taskinitialized",
		"observability.step.backoff": "observabilitystepbackoff",
		"Custom events":              "custom-events",
		"db.pool_stats":              "dbpool_stats",
	} {
		require.Equal(t, want, anchor(in), in)
	}
}

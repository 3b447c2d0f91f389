package events_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func TestCatalogSchemas(t *testing.T) {
	t.Parallel()
	cat := events.Catalog()
	require.NotEmpty(t, cat)
	names := map[string]bool{}
	for _, s := range cat {
		t.Run(s.Name, func(t *testing.T) {
			require.NotEmpty(t, s.Name)
			require.Contains(t, []string{"orchestration", "worker", "database", "messaging"}, s.Group)
			require.NotEmpty(t, strings.TrimSpace(s.Description))
			require.GreaterOrEqual(t, s.Version, uint16(1))
			require.Contains(t, s.Name, ".", "names are <entity>.<happening>")
			require.Equal(t, strings.ToLower(s.Name), s.Name)

			fields := map[string]bool{}
			for _, f := range s.Fields {
				require.NotEmpty(t, f.Name)
				require.False(t, fields[f.Name], "field %q appears twice", f.Name)
				fields[f.Name] = true
				require.NotContains(t, []string{events.FieldCorrelationID, events.FieldEventName}, f.Name, "attributes must not shadow envelope fields")
				require.Contains(t, []events.Kind{events.KindString, events.KindInt, events.KindFloat, events.KindBool}, f.Type, "field %q", f.Name)
				require.NotEmpty(t, strings.TrimSpace(f.Description), "field %q", f.Name)
				if f.Name == "duration_ms" {
					require.Equal(t, events.KindFloat, f.Type, "duration_ms is a float")
					require.True(t, f.Required, "duration_ms is required")
				}
			}
		})
		require.False(t, names[s.Name], "schema %q appears twice", s.Name)
		names[s.Name] = true
	}
}

func TestCatalogSameFieldSameMeaning(t *testing.T) {
	t.Parallel()
	// A field name means the same thing in every event that carries it.
	byName := map[string]events.Field{}
	for _, s := range events.Catalog() {
		for _, f := range s.Fields {
			if prev, ok := byName[f.Name]; ok {
				require.Equal(t, prev, f, "field %q differs in %s", f.Name, s.Name)
			}
			byName[f.Name] = f
		}
	}
}

func TestCatalogLookupAndNames(t *testing.T) {
	t.Parallel()
	cat := events.Catalog()
	names := events.Names()
	require.Len(t, names, len(cat))
	require.True(t, slices.IsSorted(names), "Names is sorted")
	require.Len(t, slices.Compact(slices.Clone(names)), len(names), "Names has no duplicates")

	catNames := make([]string, len(cat))
	for i, s := range cat {
		catNames[i] = s.Name
		got, ok := events.Lookup(s.Name)
		require.True(t, ok, s.Name)
		require.Equal(t, s, got)
	}
	require.ElementsMatch(t, catNames, names)

	// The exported name constants are exactly the catalog.
	consts := []string{
		events.TaskInitializeRequested, events.TaskInitialized, events.StepEnqueued, events.StepResultProcessed,
		events.TaskFinalized, events.TaskCompleted, events.TaskFailed, events.StepClaimed,
		events.StepExecutionStarted, events.StepCompleted, events.StepFailed, events.StepResultSubmitted,
		events.DBQueryExecuted, events.DBTransactionCompleted, events.DBPoolAcquired, events.DBPoolStats,
		events.QueueMessageSent, events.QueueMessageReceived, events.QueueMessageDeleted, events.QueueStats,
		events.QueueRedelivered, events.QueueError, events.QueueRetryAttempt, events.QueueCircuitState,
	}
	require.ElementsMatch(t, consts, names)
	require.Equal(t, events.TaskInitializeRequested, cat[0].Name, "the catalog is in lifecycle order")
	for _, n := range names {
		require.Equal(t, strings.HasPrefix(n, "db.") || strings.HasPrefix(n, "queue."), events.IsInfrastructure(n), n)
	}

	for _, name := range []string{"", "task", "task.", "TASK.INITIALIZED", " task.initialized", "task.initialized "} {
		s, ok := events.Lookup(name)
		require.False(t, ok, "%q", name)
		require.Zero(t, s)
	}
}

func TestCatalogIsACopy(t *testing.T) {
	t.Parallel()
	cat := events.Catalog()
	cat[0] = events.Schema{Name: "overwritten"}
	_, ok := events.Lookup("overwritten")
	require.False(t, ok)
	require.Equal(t, events.TaskInitializeRequested, events.Catalog()[0].Name)

	names := events.Names()
	names[0] = "overwritten"
	require.NotEqual(t, "overwritten", events.Names()[0])
}

func TestSchemaField(t *testing.T) {
	t.Parallel()
	s, ok := events.Lookup(events.StepFailed)
	require.True(t, ok)
	tests := []struct {
		name     string
		field    string
		wantOK   bool
		wantType events.Kind
		wantReq  bool
	}{
		{name: "envelope correlation id", field: events.FieldCorrelationID, wantOK: true, wantType: events.KindString, wantReq: true},
		{name: "envelope event name", field: events.FieldEventName, wantOK: true, wantType: events.KindString, wantReq: true},
		{name: "required string", field: "error_type", wantOK: true, wantType: events.KindString, wantReq: true},
		{name: "optional string", field: "error_message", wantOK: true, wantType: events.KindString},
		{name: "float", field: "duration_ms", wantOK: true, wantType: events.KindFloat, wantReq: true},
		{name: "optional int", field: "attempt", wantOK: true, wantType: events.KindInt},
		{name: "unknown", field: "final_state"},
		{name: "empty", field: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ok := s.Field(tt.field)
			require.Equal(t, tt.wantOK, ok)
			if !tt.wantOK {
				require.Zero(t, f)
				return
			}
			require.Equal(t, tt.field, f.Name)
			require.Equal(t, tt.wantType, f.Type)
			require.Equal(t, tt.wantReq, f.Required)
			require.NotEmpty(t, f.Description)
		})
	}

	// The envelope fields are reported for every schema, even the zero one.
	for _, sc := range append(events.Catalog(), events.Schema{}) {
		for _, name := range []string{events.FieldCorrelationID, events.FieldEventName} {
			f, ok := sc.Field(name)
			require.True(t, ok)
			require.True(t, f.Required)
			require.Equal(t, events.KindString, f.Type)
		}
	}
}

func TestSchemaFieldNames(t *testing.T) {
	t.Parallel()
	for _, s := range events.Catalog() {
		names := s.FieldNames()
		require.Equal(t, []string{events.FieldCorrelationID, events.FieldEventName}, names[:2], "envelope fields first")
		require.Len(t, names, len(s.Fields)+2)
		for i, f := range s.Fields {
			require.Equal(t, f.Name, names[i+2])
		}
		for _, n := range names {
			_, ok := s.Field(n)
			require.True(t, ok, "FieldNames and Field agree on %q", n)
		}
	}
}

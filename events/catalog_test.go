package events_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// builtinGroups is the built-in catalog's group order.
var builtinGroups = []string{
	events.GroupTask, events.GroupStep, events.GroupWorkflow, events.GroupObservability, events.GroupWorker,
	events.GroupQueue, events.GroupDatabase, events.GroupResilience, events.GroupTelemetry, events.GroupPlugin,
	events.GroupPerformance,
}

// builtins returns the built-in schemas. Other tests register custom events
// in the same process, and those never live in a reserved namespace.
func builtins() []events.Schema {
	return slices.DeleteFunc(events.Catalog(), func(s events.Schema) bool { return !isBuiltinName(s.Name) })
}

func isBuiltinName(name string) bool {
	first, _, _ := strings.Cut(name, ".")
	return slices.Contains(events.ReservedNamespaces(), first)
}

// allNameConstants lists every exported event-name constant.
var allNameConstants = []string{
	// task
	events.TaskInitializeRequested, events.TaskInitialized, events.TaskStateTransitioned, events.TaskCancelRequested,
	events.TaskCancelled, events.TaskFinalized, events.TaskCompleted, events.TaskFailed, events.TaskResolvedManually,
	// step
	events.StepEnqueued, events.StepClaimed, events.StepExecutionStarted, events.StepCompleted, events.StepFailed,
	events.StepResultSubmitted, events.StepResultProcessed, events.StepRetryRequested, events.StepCancelled,
	// workflow
	events.WorkflowViableStepsDiscovered, events.WorkflowNoViableSteps,
	// observability
	events.ObservabilityTaskEnqueue, events.ObservabilityTaskFinalize, events.ObservabilityStepFindViable,
	events.ObservabilityStepBackoff, events.ObservabilityStepSkip, events.ObservabilityStepMaxRetriesReached,
	events.ObservabilityTaskActiveCount, events.ObservabilityStepReadyCount, events.ObservabilityStepActiveExecutions,
	events.ObservabilityQueueDepth,
	// worker
	events.WorkerStarted, events.WorkerStopped,
	// database
	events.DBQueryExecuted, events.DBTransactionCompleted, events.DBPoolAcquired, events.DBPoolStats,
	// queue
	events.QueueMessageSent, events.QueueMessageReceived, events.QueueMessageDeleted, events.QueueStats,
	events.QueueRedelivered, events.QueueError, events.QueueRetryAttempt, events.QueueCircuitState,
	// resilience
	events.ResilienceCircuitBreakerState, events.ResilienceRequestRejected, events.ResilienceCompletionSlowSend,
	events.ResilienceCompletionRejected, events.ResilienceChannelSampled, events.ResilienceChannelFull,
	// telemetry
	events.TelemetryExportRequested, events.TelemetryExportCompleted, events.TelemetryExportFailed,
	events.TelemetryCacheSynced,
	// plugin
	events.PluginRegistered, events.PluginUnregistered,
	// performance
	events.PerformanceSlowOperation, events.MemorySpikeDetected,
}

func TestCatalogSchemas(t *testing.T) {
	t.Parallel()
	cat := builtins()
	require.Len(t, cat, len(allNameConstants))
	names := map[string]bool{}
	for _, s := range cat {
		t.Run(s.Name, func(t *testing.T) {
			require.Contains(t, builtinGroups, s.Group)
			first, _, _ := strings.Cut(s.Name, ".")
			wantGroup := first
			switch first {
			case "db":
				wantGroup = events.GroupDatabase
			case "memory":
				wantGroup = events.GroupPerformance
			}
			require.Equal(t, wantGroup, s.Group, "a built-in's group is its first name segment (db.* is database, memory.* performance)")
			require.NotEmpty(t, strings.TrimSpace(s.Description))
			require.NotEmpty(t, strings.TrimSpace(s.Source), "every built-in says who publishes it")
			require.GreaterOrEqual(t, s.Version, uint16(1))
			require.NoError(t, checkNameGrammar(s.Name))

			fields := map[string]bool{}
			for _, f := range s.Fields {
				require.NotEmpty(t, f.Name)
				require.False(t, fields[f.Name], "field %q appears twice", f.Name)
				fields[f.Name] = true
				require.NotContains(t, []string{events.FieldCorrelationID, events.FieldEventName}, f.Name, "attributes must not shadow envelope fields")
				require.Contains(t, []events.Kind{events.KindString, events.KindInt, events.KindFloat, events.KindBool}, f.Type, "field %q", f.Name)
				require.NotEmpty(t, strings.TrimSpace(f.Description), "field %q", f.Name)
				if strings.HasSuffix(f.Name, "_ms") {
					require.Equal(t, events.KindFloat, f.Type, "%s is float milliseconds", f.Name)
				}
				if f.Name == "duration_ms" {
					require.True(t, f.Required, "duration_ms is required")
				}
			}
		})
		require.False(t, names[s.Name], "schema %q appears twice", s.Name)
		names[s.Name] = true
	}
}

func TestCatalogExternalEvents(t *testing.T) {
	t.Parallel()
	// Every other built-in has a publisher in this repository; the
	// emitter-walk test proves it.
	want := []string{events.TaskResolvedManually, events.TelemetryCacheSynced}
	var got []string
	for _, s := range builtins() {
		if s.External {
			got = append(got, s.Name)
		}
	}
	require.ElementsMatch(t, want, got)
}

func TestCatalogSameFieldSameMeaning(t *testing.T) {
	t.Parallel()
	// A field name means the same thing in every built-in event that carries
	// it: same type, same description. Only whether it is required may
	// differ (step_uuid is optional in the performance events, which also
	// describe task-level operations), and then the description says when it
	// is absent.
	byName := map[string]events.Field{}
	where := map[string]string{}
	for _, s := range builtins() {
		for _, f := range s.Fields {
			if prev, ok := byName[f.Name]; ok {
				require.Equal(t, prev.Type, f.Type, "field %q's type differs between %s and %s", f.Name, where[f.Name], s.Name)
				if prev.Required == f.Required {
					require.Equal(t, prev.Description, f.Description, "field %q differs between %s and %s", f.Name, where[f.Name], s.Name)
				} else {
					opt, req := f, prev
					if f.Required {
						opt, req = prev, f
					}
					require.True(t, strings.HasPrefix(opt.Description, req.Description+"; absent "),
						"optional field %q (%s or %s) says when it is absent after the required one's description", f.Name, where[f.Name], s.Name)
				}
				continue
			}
			byName[f.Name], where[f.Name] = f, s.Name
		}
	}
	// The circuit-breaker state has one encoding everywhere.
	for _, name := range []string{events.QueueCircuitState, events.ResilienceCircuitBreakerState} {
		s, ok := events.Lookup(name)
		require.True(t, ok)
		f, ok := s.Field("state")
		require.True(t, ok, name)
		require.Equal(t, events.KindInt, f.Type)
		require.Equal(t, "0 closed, 1 half-open, 2 open", f.Description)
	}
}

func TestCatalogLookupAndNames(t *testing.T) {
	t.Parallel()
	cat := events.Catalog()
	names := events.Names()
	require.True(t, slices.IsSorted(names), "Names is sorted")
	require.Len(t, slices.Compact(slices.Clone(names)), len(names), "Names has no duplicates")
	// Register may run concurrently in other tests: only built-ins are
	// compared exactly.
	require.GreaterOrEqual(t, len(names), len(cat))

	for _, s := range cat {
		got, ok := events.Lookup(s.Name)
		require.True(t, ok, s.Name)
		require.Equal(t, s, got)
		require.Contains(t, names, s.Name)
	}

	// The exported name constants are exactly the built-in catalog.
	builtinNames := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !isBuiltinName(n) })
	require.ElementsMatch(t, allNameConstants, builtinNames)
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(allNameConstants))), len(allNameConstants), "constants are distinct")
	require.Equal(t, events.TaskInitializeRequested, cat[0].Name, "the catalog is in lifecycle order")
	for _, n := range builtinNames {
		s, _ := events.Lookup(n)
		infra := s.Group == events.GroupDatabase || s.Group == events.GroupQueue || s.Group == events.GroupTelemetry
		require.Equal(t, infra, events.IsInfrastructure(n), n)
	}

	for _, name := range []string{"", "task", "task.", "TASK.INITIALIZED", " task.initialized", "task.initialized ", "tasker.telemetry.export_completed"} {
		s, ok := events.Lookup(name)
		require.False(t, ok, "%q", name)
		require.Zero(t, s)
	}
}

func TestCatalogGroups(t *testing.T) {
	t.Parallel()
	groups := events.Groups()
	require.GreaterOrEqual(t, len(groups), len(builtinGroups))
	require.Equal(t, builtinGroups, groups[:len(builtinGroups)], "built-in groups first, in catalog order")

	total := 0
	for _, g := range builtinGroups {
		in := events.InGroup(g)
		require.NotEmpty(t, in, g)
		for _, s := range in {
			require.Equal(t, g, s.Group)
			require.True(t, isBuiltinName(s.Name), "custom event %s in built-in group %s", s.Name, g)
		}
		total += len(in)
	}
	require.Equal(t, len(allNameConstants), total, "every built-in is in exactly one group")
	require.Empty(t, events.InGroup("no_such_group"))

	// A group's events are contiguous in the catalog, so docs can walk it.
	var seen []string
	for _, s := range builtins() {
		if len(seen) == 0 || seen[len(seen)-1] != s.Group {
			require.NotContains(t, seen, s.Group, "group %s is split", s.Group)
			seen = append(seen, s.Group)
		}
	}
	require.Equal(t, builtinGroups, seen)
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

	// Appending to a looked-up schema's fields never writes into the catalog.
	s, ok := events.Lookup(events.StepFailed)
	require.True(t, ok)
	n := len(s.Fields)
	_ = append(s.Fields, events.Field{Name: "scribble"})
	again, _ := events.Lookup(events.StepFailed)
	require.Len(t, again.Fields, n)
	require.Equal(t, len(again.Fields), cap(again.Fields), "fields are clipped")

	groups := events.ReservedNamespaces()
	groups[0] = "overwritten"
	require.NotContains(t, events.ReservedNamespaces(), "overwritten")
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

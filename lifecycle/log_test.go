package lifecycle_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// lockedBuffer collects a logger's output from the engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestEngineLogs: the engine logs seed 003's way — state transitions at
// info, retries at warn, failures at error — each record with the event's
// name and id and the task's correlation id, the one published with it.
func TestEngineLogs(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	rec := &recorder{}
	e := startEngine(t, lifecycle.EngineConfig{FailRate: 1, MaxAttempts: 2},
		lifecycle.Settings{Publisher: rec, Logger: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Rand: rand.New(rand.NewPCG(1, 2))})
	submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}, 3)

	published := map[string]events.Event{}
	for _, ev := range rec.snapshot() {
		published[ev.ID.String()] = ev
	}
	levels := map[string]map[string]int{} // event → level → records
	out.mu.Lock()
	lines := strings.Split(strings.TrimSpace(out.b.String()), "\n")
	out.mu.Unlock()
	for _, line := range lines {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		name, _ := r["event"].(string)
		if name == "" {
			continue // not about an event
		}
		ev, ok := published[r["event_id"].(string)]
		require.True(t, ok, "the record names a published event: %s", line)
		require.Equal(t, ev.Name, name)
		require.Equal(t, ev.CorrelationID.String(), r["correlation_id"], line)
		if levels[name] == nil {
			levels[name] = map[string]int{}
		}
		levels[name][r["level"].(string)]++
	}
	require.Equal(t, map[string]int{"ERROR": 3}, levels[events.TaskFailed], "every task fails")
	require.NotEmpty(t, levels[events.TaskStateTransitioned]["INFO"])
	for name, byLevel := range levels {
		switch name {
		case events.StepRetryRequested:
			require.Equal(t, []string{"WARN"}, keys(byLevel), name)
		case events.TaskFailed, events.ObservabilityStepMaxRetriesReached:
			require.Equal(t, []string{"ERROR"}, keys(byLevel), name)
		}
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

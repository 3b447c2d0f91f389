package lifecycle_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// TestEnginePerformanceMonitor runs one single-step task whose handler moves
// a fake clock or a fake heap on, and checks what the monitor publishes. Only
// execute has thresholds that can be reached (the others are out of reach),
// so that orchestration's operations overlapping the handler never count.
func TestEnginePerformanceMonitor(t *testing.T) {
	t.Parallel()
	const (
		slowAt  = 250 * time.Millisecond
		spikeAt = 64 * lifecycle.MiB
	)
	tests := []struct {
		name      string
		advance   time.Duration // the handler moves the clock on by this
		grow      uint64        // and the heap by this
		disabled  bool
		wantSlow  int
		wantSpike int
	}{
		{name: "quick and lean", advance: slowAt, grow: uint64(spikeAt)},
		{name: "slow", advance: slowAt + time.Millisecond, wantSlow: 1},
		{name: "memory spike", grow: uint64(spikeAt) + 1, wantSpike: 1},
		{name: "both", advance: time.Hour, grow: uint64(lifecycle.GiB), wantSlow: 1, wantSpike: 1},
		{name: "disabled", advance: time.Hour, grow: uint64(lifecycle.GiB), disabled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			var offset, heap atomic.Int64
			heap.Store(1 << 30)
			now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
			reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
				Name: "heavy", Namespace: "perf",
				Steps: []lifecycle.Step{{Name: "crunch", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
					offset.Add(int64(tt.advance))
					heap.Add(int64(tt.grow))
					return 1, nil
				}}},
			})
			require.NoError(t, err)
			out := time.Duration(1 << 62) // out of reach
			cfg := lifecycle.EngineConfig{Performance: lifecycle.PerformanceConfig{
				Disabled: tt.disabled, SlowOperation: out, MemorySpike: lifecycle.ByteSize(1 << 62),
				Operations: map[lifecycle.Operation]lifecycle.OperationThresholds{
					lifecycle.OperationExecute: {SlowOperation: slowAt, MemorySpike: spikeAt},
				},
			}}
			rec := &recorder{}
			e, err := lifecycle.NewWithHooks(cfg, lifecycle.Settings{Publisher: rec, Now: now, Workflows: reg},
				lifecycle.TestHooks{ReadHeap: func() uint64 { return uint64(heap.Load()) }, HeapEveryOperation: true})
			require.NoError(t, err)
			require.NoError(t, e.Start(context.Background()))
			t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
			h := submitAll(t, e, lifecycle.TaskRequest{Workflow: "heavy"}, 1)[0]

			evs := rec.snapshot()
			counts := countByName(evs)
			require.Equal(t, tt.wantSlow, counts[events.PerformanceSlowOperation])
			require.Equal(t, tt.wantSpike, counts[events.MemorySpikeDetected])
			st := e.Stats()
			require.Equal(t, uint64(tt.wantSlow), st.SlowOperations)
			require.Equal(t, uint64(tt.wantSpike), st.MemorySpikes)

			var stepUUID string
			for _, ev := range evs {
				if ev.Name == events.StepExecutionStarted {
					stepUUID = attr(t, ev, "step_uuid").Str()
				}
			}
			for _, ev := range evs {
				if ev.Name != events.PerformanceSlowOperation && ev.Name != events.MemorySpikeDetected {
					continue
				}
				require.NoError(t, ev.Validate())
				require.Equal(t, h.CorrelationID(), ev.CorrelationID, "the task's correlation id")
				require.Equal(t, string(lifecycle.OperationExecute), attr(t, ev, "operation").Str())
				require.Equal(t, stepUUID, attr(t, ev, "step_uuid").Str())
				require.Equal(t, "crunch", attr(t, ev, "step_name").Str())
				require.Equal(t, "perf", attr(t, ev, "namespace").Str())
				require.InDelta(t, float64(tt.advance)/1e6, attr(t, ev, "duration_ms").Float64(), 1e-6)
				if ev.Name == events.PerformanceSlowOperation {
					require.InDelta(t, 250.0, attr(t, ev, "threshold_ms").Float64(), 1e-9)
				} else {
					require.Equal(t, int64(tt.grow), attr(t, ev, "heap_growth_bytes").Int64())
					require.Equal(t, int64(spikeAt), attr(t, ev, "threshold_bytes").Int64())
					require.Equal(t, int64(1<<30+tt.grow), attr(t, ev, "heap_bytes").Int64())
				}
			}
		})
	}
}

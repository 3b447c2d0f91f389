package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// capture is a Publisher keeping what it gets, for the package's own tests.
type capture struct {
	mu  sync.Mutex
	evs []events.Event
}

func (c *capture) Publish(_ context.Context, e events.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, e)
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestOperationsMatchIndexes(t *testing.T) {
	t.Parallel()
	require.Len(t, operations, int(numOps))
	for i, want := range map[op]Operation{
		opInitialize: OperationInitialize, opEnqueue: OperationEnqueue, opProcessResult: OperationProcessResult,
		opFinalize: OperationFinalize, opClaim: OperationClaim, opExecute: OperationExecute, opSubmit: OperationSubmit,
	} {
		require.Equal(t, want, operations[i])
	}
}

func TestPerfMonitorCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	corr := events.NewIDAt(t0)
	step := &stepRun{corr: corr, taskUUID: "task-1", stepUUID: "step-1", namespace: "ns", name: "s1"}
	task := &taskRun{handle: &TaskHandle{corr: corr, namespace: "ns"}, uuid: "task-1"}
	cfg := PerformanceConfig{
		SlowOperation: 250 * time.Millisecond, MemorySpike: 64 * MiB,
		Operations: map[Operation]OperationThresholds{OperationExecute: {SlowOperation: time.Second, MemorySpike: GiB}},
	}
	tests := []struct {
		name       string
		op         op
		onStep     bool
		d          time.Duration
		heap0      uint64
		heap1      uint64
		wantSlow   bool
		wantSpike  bool
		wantThrMS  float64
		wantThrB   int64
		wantGrowth int64
	}{
		{name: "under both", op: opClaim, onStep: true, d: 250 * time.Millisecond, heap0: 100, heap1: 100 + uint64(64*MiB)},
		{name: "slow step operation", op: opClaim, onStep: true, d: 251 * time.Millisecond, heap0: 100, heap1: 100, wantSlow: true, wantThrMS: 250},
		{name: "slow task operation", op: opFinalize, d: 300 * time.Millisecond, heap0: 5, heap1: 5, wantSlow: true, wantThrMS: 250},
		{name: "spike", op: opInitialize, d: time.Millisecond, heap0: 1 << 20, heap1: 1<<20 + uint64(65*MiB), wantSpike: true, wantThrB: int64(64 * MiB), wantGrowth: int64(65 * MiB)},
		{name: "heap shrank", op: opEnqueue, onStep: true, d: time.Millisecond, heap0: uint64(GiB), heap1: 1},
		{name: "both", op: opSubmit, onStep: true, d: time.Hour, heap0: 0, heap1: uint64(GiB), wantSlow: true, wantSpike: true, wantThrMS: 250, wantThrB: int64(64 * MiB), wantGrowth: int64(GiB)},
		{name: "override keeps execute under", op: opExecute, onStep: true, d: 900 * time.Millisecond, heap0: 0, heap1: uint64(512 * MiB)},
		{name: "override threshold reported", op: opExecute, onStep: true, d: 2 * time.Second, heap0: 0, heap1: 0, wantSlow: true, wantThrMS: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &capture{}
			em := &emitter{pub: pub, now: func() time.Time { return t0 }, log: discardLogger()}
			readings := []uint64{tt.heap0, tt.heap1}
			pm := newPerfMonitor(cfg, em, func() uint64 { v := readings[0]; readings = readings[1:]; return v }, 0)
			end := t0.Add(tt.d)
			h := pm.begin(t0)
			if tt.onStep {
				pm.step(context.Background(), tt.op, step, t0, end, h)
			} else {
				pm.task(context.Background(), tt.op, task, t0, end, h)
			}
			require.Empty(t, readings, "one heap reading at each bound")
			var names []string
			for _, e := range pub.evs {
				names = append(names, e.Name)
				require.NoError(t, e.Validate())
				require.Equal(t, corr, e.CorrelationID)
				require.Equal(t, end, e.Time)
				v, _ := e.Attr("operation")
				require.Equal(t, string(operations[tt.op]), v.Str())
				v, _ = e.Attr("task_uuid")
				require.Equal(t, "task-1", v.Str())
				_, hasStep := e.Attr("step_uuid")
				require.Equal(t, tt.onStep, hasStep)
				v, _ = e.Attr("duration_ms")
				require.InDelta(t, float64(tt.d)/1e6, v.Float64(), 1e-9)
				switch e.Name {
				case events.PerformanceSlowOperation:
					v, _ = e.Attr("threshold_ms")
					require.InDelta(t, tt.wantThrMS, v.Float64(), 1e-9)
				case events.MemorySpikeDetected:
					v, _ = e.Attr("threshold_bytes")
					require.Equal(t, tt.wantThrB, v.Int64())
					v, _ = e.Attr("heap_growth_bytes")
					require.Equal(t, tt.wantGrowth, v.Int64())
					v, _ = e.Attr("heap_bytes")
					require.Equal(t, int64(tt.heap1), v.Int64())
				}
			}
			var want []string
			if tt.wantSlow {
				want = append(want, events.PerformanceSlowOperation)
			}
			if tt.wantSpike {
				want = append(want, events.MemorySpikeDetected)
			}
			require.Equal(t, want, names)
			slow, spikes := pm.counts()
			require.Equal(t, uint64(len(want)), slow+spikes)
		})
	}
}

func TestPerfMonitorSharesHeapReadings(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1, 0)
	reads := 0
	pm := newPerfMonitor(PerformanceConfig{}, &emitter{pub: &capture{}, log: discardLogger()}, func() uint64 { reads++; return uint64(reads) }, time.Millisecond)
	require.Equal(t, uint64(1), pm.begin(t0))
	require.Equal(t, uint64(1), pm.begin(t0.Add(999*time.Microsecond)), "within the resolution: shared")
	require.Equal(t, uint64(1), pm.begin(t0.Add(-time.Second)), "an operation that began before the reading shares it")
	require.Equal(t, uint64(2), pm.begin(t0.Add(time.Millisecond)), "older than the resolution: read again")
	require.Equal(t, 2, reads)
}

func TestPerfMonitorDisabled(t *testing.T) {
	t.Parallel()
	pm := newPerfMonitor(PerformanceConfig{Disabled: true}, nil, func() uint64 { panic("read") }, 0)
	require.Nil(t, pm)
	require.Zero(t, pm.begin(time.Now()))
	pm.step(context.Background(), opExecute, &stepRun{}, time.Time{}, time.Now(), 0)
	pm.task(context.Background(), opFinalize, &taskRun{}, time.Time{}, time.Now(), 0)
	slow, spikes := pm.counts()
	require.Zero(t, slow+spikes)
}

func TestReadHeapObjects(t *testing.T) {
	t.Parallel()
	require.Positive(t, readHeapObjects(), "the runtime reports %s", heapMetric)
}

// BenchmarkPerfMonitor measures the monitor's cost per operation on the hot
// path: an operation under both thresholds whose timestamps the engine
// takes anyway. Operations are 1 µs apart (the engine runs about 600,000 a
// second on 2 cores), so one in a thousand reads the heap.
func BenchmarkPerfMonitor(b *testing.B) {
	pm := newPerfMonitor(PerformanceConfig{}, &emitter{pub: &capture{}, log: discardLogger()}, nil, heapResolution)
	s := &stepRun{taskUUID: "t", stepUUID: "s", namespace: "ns", name: "n"}
	ctx := context.Background()
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		start = start.Add(time.Microsecond)
		h := pm.begin(start)
		pm.step(ctx, opExecute, s, start, start.Add(time.Microsecond), h)
	}
}

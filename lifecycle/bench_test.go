package lifecycle_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/lifecycle"
)

// BenchmarkEngine measures end-to-end task throughput with a no-op publisher:
// every task's full event sequence is built and published.
func BenchmarkEngine(b *testing.B) {
	for _, workflow := range []string{lifecycle.WorkflowMathematicalSequence, lifecycle.WorkflowDiamondPattern} {
		b.Run(workflow, func(b *testing.B) {
			b.ReportAllocs()
			e := startEngine(b, lifecycle.EngineConfig{Workers: 4, QueueDepth: 256}, lifecycle.Settings{Publisher: nopPublisher{}})
			ctx := context.Background()
			req := lifecycle.TaskRequest{Workflow: workflow, Input: 2}
			b.ResetTimer()
			// Not b.Loop: the timed region must include Wait, so that every
			// submitted task has finished.
			for range b.N {
				if _, err := e.Submit(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			require.NoError(b, e.Wait(ctx))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkEnginePerformanceMonitor compares engine throughput with the
// performance monitor on (the default) and off, the monitor's whole cost on
// the hot path: seven checks per step and task, heap readings shared within
// a millisecond. Compare the tasks/s of the two with benchstat over -count 10.
func BenchmarkEnginePerformanceMonitor(b *testing.B) {
	for _, bc := range []struct {
		name string
		perf lifecycle.PerformanceConfig
	}{
		{name: "off", perf: lifecycle.PerformanceConfig{Disabled: true}},
		{name: "on", perf: lifecycle.PerformanceConfig{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cfg := lifecycle.EngineConfig{Workers: 4, QueueDepth: 256, Performance: bc.perf}
			e := startEngine(b, cfg, lifecycle.Settings{Publisher: nopPublisher{}})
			ctx := context.Background()
			req := lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}
			b.ResetTimer()
			for range b.N {
				if _, err := e.Submit(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			require.NoError(b, e.Wait(ctx))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

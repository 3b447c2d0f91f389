package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

// metricValue reads the series of the family promName whose labels
// include want: a counter's or gauge's value, a histogram's count.
func metricValue(t *testing.T, e *env, promName string, want map[string]string) int64 {
	t.Helper()
	s, err := exporters.Read(context.Background(), e.reader, exporters.ReadOptions{})
	require.NoError(t, err)
	for _, f := range s.Families {
		if f.PromName != promName {
			continue
		}
	series:
		for _, sr := range f.Series {
			for k, v := range want {
				found := false
				for _, l := range sr.Labels {
					if l.Name == k && l.Value == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if sr.Histogram != nil {
				return int64(sr.Histogram.Count)
			}
			return int64(sr.Value)
		}
		t.Fatalf("no series %v in %s: %+v", want, promName, f.Series)
	}
	t.Fatalf("no family %s", promName)
	return 0
}

func TestSelfMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", nil)}})
	e.start()
	e.waitRunning("p")
	_, _, err := e.export("test", nil)
	require.NoError(t, err)
	p := map[string]string{"plugin": "p"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   int64
	}{
		{"sextant_plugins_up", p, 1},
		{"sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "ok"}, 1},
		{"sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "error"}, 0},
		{"sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "rejected"}, 0},
		{"sextant_plugins_export_duration_seconds", p, 1},
		{"sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": "exited"}, 0},
		{"sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": "hung"}, 0},
		{"sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": "start_failed"}, 0},
		{"sextant_plugins_breaker_state", p, 0},
		{"sextant_plugins_callbacks_dropped_total", p, 0},
	} {
		require.Equal(t, tc.want, metricValue(t, e, tc.name, tc.labels), "%s%v", tc.name, tc.labels)
	}

	require.NoError(t, e.host.Shutdown(context.Background()))
	s, err := exporters.Read(context.Background(), e.reader, exporters.ReadOptions{})
	require.NoError(t, err)
	for _, f := range s.Families {
		require.NotEqual(t, "sextant_plugins_up", f.PromName, "observations stop at Shutdown")
	}
}

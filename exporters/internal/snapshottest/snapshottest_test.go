package snapshottest_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"
)

// checkInvariants asserts what the Snapshot contract promises: sorted
// families and series, and well-formed histograms.
func checkInvariants(t *testing.T, s *exporters.Snapshot) {
	t.Helper()
	require.True(t, slices.IsSortedFunc(s.Families, func(a, b exporters.Family) int {
		return compareStrings(a.PromName, b.PromName)
	}), "families sorted by PromName")
	for _, f := range s.Families {
		require.True(t, slices.IsSortedFunc(f.Series, func(a, b exporters.Series) int {
			return snapshottest.CompareLabels(a.Labels, b.Labels)
		}), "%s: series sorted by labels", f.PromName)
		for _, sr := range f.Series {
			require.Equal(t, f.Type == exporters.TypeHistogram, sr.Histogram != nil, f.PromName)
			if h := sr.Histogram; h != nil {
				require.NotEmpty(t, h.Buckets)
				last := h.Buckets[len(h.Buckets)-1]
				require.True(t, math.IsInf(last.UpperBound, 1), "%s ends with +Inf", f.PromName)
				require.Equal(t, h.Count, last.Count)
				for k := 1; k < len(h.Buckets); k++ {
					require.Less(t, h.Buckets[k-1].UpperBound, h.Buckets[k].UpperBound)
					require.LessOrEqual(t, h.Buckets[k-1].Count, h.Buckets[k].Count)
				}
			}
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		s      *exporters.Snapshot
		series int
	}{
		{name: "sample", s: snapshottest.Sample(), series: 23},
		{name: "generate 0", s: snapshottest.Generate(0), series: 0},
		{name: "generate 1", s: snapshottest.Generate(1), series: 1},
		{name: "generate 1000", s: snapshottest.Generate(1000), series: 1000},
		{name: "generate 1234", s: snapshottest.Generate(1234), series: 1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.series, tt.s.SeriesCount())
			checkInvariants(t, tt.s)
			require.Empty(t, snapshottest.Diff(tt.s, snapshottest.Clone(tt.s)))
		})
	}
}

// TestResourceMetrics checks the helpers against the real snapshot builder:
// reading back what ResourceMetrics returns gives the snapshot again (less
// the family with no series, which no SDK collects).
func TestResourceMetrics(t *testing.T) {
	t.Parallel()
	for _, s := range []*exporters.Snapshot{snapshottest.Sample(), snapshottest.Generate(1000)} {
		got := exporters.FromResourceMetrics(snapshottest.ResourceMetrics(s),
			exporters.ReadOptions{Now: func() time.Time { return snapshottest.SampleTime }})
		want := snapshottest.Clone(s)
		want.Families = slices.DeleteFunc(want.Families, func(f exporters.Family) bool { return len(f.Series) == 0 })
		require.Empty(t, snapshottest.Diff(want, got))
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	s := snapshottest.Generate(500)
	c, err := snapshottest.NewCollector(s)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, len(s.Families))
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	require.Equal(t, s.SeriesCount(), n)

	_, err = snapshottest.NewCollector(snapshottest.Sample()) // tasker_queue_depth mixes label names
	require.Error(t, err)
}

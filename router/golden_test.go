package router_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.golden")

// TestGolden routes testdata/<case>/events.jsonl through the rules of
// testdata/<case>/rules.yaml (loaded by the real config loader over the
// embedded default) and compares every recorded data point with want.golden.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/rules.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, rules := range dirs {
		dir := filepath.Dir(rules)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(rules, noExporters{})
			require.NoError(t, err)
			r, reader := newTestRouter(t, cfg.Router, router.Settings{})
			for i, e := range readEvents(t, filepath.Join(dir, "events.jsonl")) {
				r.Route(context.Background(), &e)
				_ = i
			}
			got := dump(t, reader)
			want := filepath.Join(dir, "want.golden")
			if *update {
				require.NoError(t, os.WriteFile(want, []byte(got), 0o644))
			}
			b, err := os.ReadFile(want)
			require.NoError(t, err, "run go test ./router -run TestGolden -update to create it")
			require.Equal(t, string(b), got)
		})
	}
}

// noExporters satisfies the embedded default's exporters section without
// building anything; golden files describe routing only.
type noExporters struct{}

type noConfig struct {
	TranslationStrategy string `yaml:"translation_strategy"`
}

func (noConfig) Validate() error                       { return nil }
func (noExporters) Type() string                       { return "prometheus" }
func (noExporters) NewDefaultConfig() exporters.Config { return &noConfig{} }
func (noExporters) Create(context.Context, exporters.Config, exporters.Settings) (exporters.Component, error) {
	return nil, fmt.Errorf("not used")
}

func readEvents(t testing.TB, path string) []events.Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var evs []events.Event
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e events.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "%s:%d", path, line)
		evs = append(evs, e)
	}
	require.NoError(t, sc.Err())
	return evs
}

// dump renders every data point, one per line, sorted.
func dump(t *testing.T, reader *sdkmetric.ManualReader) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} counter %d", m.Name, setKey(p.Attributes), p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} sum %g", m.Name, setKey(p.Attributes), p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} gauge %d", m.Name, setKey(p.Attributes), p.Value))
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} gauge %g", m.Name, setKey(p.Attributes), p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					var b bytes.Buffer
					for i, c := range p.BucketCounts {
						if c == 0 {
							continue
						}
						le := "+Inf"
						if i < len(p.Bounds) {
							le = fmt.Sprint(p.Bounds[i])
						}
						fmt.Fprintf(&b, " le%s:%d", le, c)
					}
					lines = append(lines, fmt.Sprintf("%s{%s} histogram count=%d sum=%g unit=%s buckets:%s", m.Name, setKey(p.Attributes), p.Count, p.Sum, m.Unit, b.String()))
				}
			default:
				t.Fatalf("%s: unexpected %T", m.Name, m.Data)
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/router"
)

const (
	metricsDocPath  = "../../docs/metrics.md"
	metricsDocBegin = "<!-- BEGIN GENERATED: make docs -->\n"
	metricsDocEnd   = "<!-- END GENERATED -->\n"
)

// defaultMetric is one metric of the embedded default with every route that
// records into it.
type defaultMetric struct {
	def    router.Metric
	events []string // "name" or "name (field)" per feeding route, with its when filter
}

func defaultMetrics(t *testing.T) []*defaultMetric {
	t.Helper()
	cfg, err := config.Default(factories()...)
	require.NoError(t, err)
	var out []*defaultMetric
	byName := map[string]*defaultMetric{}
	for _, r := range cfg.Router.Routes {
		for _, m := range r.Metrics {
			dm, ok := byName[m.Name]
			if !ok {
				dm = &defaultMetric{def: m}
				byName[m.Name] = dm
				out = append(out, dm)
			}
			feed := "`" + r.Match + "`"
			if m.Value != "" {
				feed += " (" + m.Value + ")"
			}
			for k, v := range r.When {
				feed += fmt.Sprintf(" when %s=%s", k, v)
			}
			if !slices.Contains(dm.events, feed) {
				dm.events = append(dm.events, feed)
			}
		}
	}
	return out
}

// promName is the name a scrape shows for m under the default translation.
func promName(t *testing.T, m router.Metric) string {
	t.Helper()
	typ := map[router.MetricType]otlptranslator.MetricType{
		router.MetricTypeCounter:       otlptranslator.MetricTypeMonotonicCounter,
		router.MetricTypeUpDownCounter: otlptranslator.MetricTypeNonMonotonicCounter,
		router.MetricTypeHistogram:     otlptranslator.MetricTypeHistogram,
		router.MetricTypeGauge:         otlptranslator.MetricTypeGauge,
	}[m.Type]
	namer := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes)
	name, err := namer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: typ})
	require.NoError(t, err)
	return name
}

func exampleQuery(prom string, m router.Metric) string {
	var by []string
	for _, l := range slices.Sorted(maps.Keys(m.Labels)) {
		if l != events.FieldCorrelationID {
			by = append(by, l)
		}
	}
	group := ""
	if len(by) > 0 {
		group = " by (" + strings.Join(by, ", ") + ")"
	}
	switch m.Type {
	case router.MetricTypeCounter:
		return fmt.Sprintf("sum%s (rate(%s[5m]))", group, prom)
	case router.MetricTypeHistogram:
		return fmt.Sprintf("histogram_quantile(0.95, sum by (%s) (rate(%s_bucket[5m])))", strings.Join(append(by, "le"), ", "), prom)
	default:
		return fmt.Sprintf("max%s (%s)", group, prom)
	}
}

// renderMetricsTables writes the generated part of docs/metrics.md: one row
// per metric of the embedded default.
func renderMetricsTables(t *testing.T) string {
	t.Helper()
	seed := map[string]bool{}
	for _, row := range seedMetrics(t) {
		seed[row.promName] = true
	}
	var b strings.Builder
	b.WriteString(metricsDocBegin)
	b.WriteString("\n| Prometheus name | OpenTelemetry name | type | unit | labels (label ← event field) | fed by | source | example query |\n|---|---|---|---|---|---|---|---|\n")
	for _, dm := range defaultMetrics(t) {
		m := dm.def
		prom := promName(t, m)
		typ := string(m.Type)
		if m.Type == router.MetricTypeUpDownCounter {
			typ += " (Prometheus gauge)"
		}
		var labels []string
		for _, l := range slices.Sorted(maps.Keys(m.Labels)) {
			if l == m.Labels[l] {
				labels = append(labels, l)
			} else {
				labels = append(labels, l+" ← "+m.Labels[l])
			}
		}
		src := "Sextant"
		if seed[prom] {
			src = "seeds"
		}
		unit := m.Unit
		if unit == "" {
			unit = "—"
		}
		lab := strings.Join(labels, ", ")
		if lab == "" {
			lab = "—"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s | %s | %s | `%s` |\n",
			prom, m.Name, typ, unit, lab, strings.Join(dm.events, ", "), src, exampleQuery(prom, m))
	}
	b.WriteString("\n" + metricsDocEnd)
	return b.String()
}

// TestMetricsDocIsGenerated checks that the table in docs/metrics.md is
// the one generated from the embedded default and the catalog; `make docs`
// (or this test with -update) regenerates it.
func TestMetricsDocIsGenerated(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(metricsDocPath)
	require.NoError(t, err)
	doc := string(raw)
	i, j := strings.Index(doc, metricsDocBegin), strings.Index(doc, metricsDocEnd)
	require.True(t, i >= 0 && j > i, "docs/metrics.md lacks the generated-section markers")
	want := doc[:i] + renderMetricsTables(t) + doc[j+len(metricsDocEnd):]
	if *update {
		require.NoError(t, os.WriteFile(metricsDocPath, []byte(want), 0o644))
		return
	}
	require.Equal(t, want, doc, "docs/metrics.md is stale: run make docs")
}

// TestDefaultCoversSeedMetrics checks that the embedded default produces
// every metric the reference documents name, with their Prometheus names,
// types and labels.
func TestDefaultCoversSeedMetrics(t *testing.T) {
	t.Parallel()
	got := map[string]router.Metric{}
	for _, dm := range defaultMetrics(t) {
		got[promName(t, dm.def)] = dm.def
	}
	for _, row := range seedMetrics(t) {
		m, ok := got[row.promName]
		require.True(t, ok, "the default lacks %s (%s)", row.promName, row.otelName)
		wantType := row.typ
		require.Equal(t, wantType, string(m.Type), row.promName)
		if strings.Contains(row.labels, "open") || strings.HasPrefix(row.labels, "(none)") {
			continue
		}
		require.ElementsMatch(t, strings.Split(row.labels, ","), slices.Sorted(maps.Keys(m.Labels)), row.promName)
	}
}

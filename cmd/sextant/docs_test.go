package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

var update = flag.Bool("update", false, "rewrite generated docs (docs/events.md)")

// yamlPaths lists the YAML key paths of a struct type, "[]" marking lists.
func yamlPaths(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := prefix + "." + name
		out = append(out, p)
		out = append(out, yamlPaths(p, f.Type)...)
	}
	return out
}

// TestConfigurationDocCoversEveryField keeps docs/configuration.md true to
// the Config structs: every YAML key has a row.
func TestConfigurationDocCoversEveryField(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	var paths []string
	ct := reflect.TypeOf(config.Config{})
	for i := range ct.NumField() {
		f := ct.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "exporters" {
			continue
		}
		paths = append(paths, yamlPaths(name, f.Type)...)
	}
	paths = append(paths, yamlPaths("exporters.prometheus", reflect.TypeOf(prometheus.Config{}))...)
	require.Greater(t, len(paths), 15)
	for _, p := range paths {
		require.Contains(t, string(doc), "`"+p+"`", "docs/configuration.md lacks a row for %s", p)
	}
	// The production profile shown in the doc is the tested file.
	prod, err := os.ReadFile("testdata/production.yaml")
	require.NoError(t, err)
	require.Contains(t, string(doc), "```yaml\n"+string(prod)+"```")
}

// TestEventsDocMatchesCatalog regenerates docs/events.md from the catalog.
func TestEventsDocMatchesCatalog(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("# Event catalog\n\n<!-- Generated from events/catalog.go by `go test ./cmd/sextant -run TestEventsDocMatchesCatalog -update`. -->\n\n")
	b.WriteString("Every event carries the envelope: `name`, `id` (UUIDv7), `time`, `correlation_id` (UUIDv7, shared by every event of a task),\n")
	b.WriteString("`schema_version` and typed attributes. Routes may use the envelope's `correlation_id` and `event_name` like fields.\n")
	b.WriteString("Durations are float milliseconds in `duration_ms`.\n")
	for _, s := range events.Catalog() {
		fmt.Fprintf(&b, "\n## `%s`\n\n%s. Group: %s. Schema version %d.\n\n| field | type | required | meaning |\n|---|---|---|---|\n",
			s.Name, strings.ToUpper(s.Description[:1])+s.Description[1:], s.Group, s.Version)
		for _, f := range s.Fields {
			req := "no"
			if f.Required {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, f.Description)
		}
	}
	const path = "../../docs/events.md"
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	doc, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to generate it")
	require.Equal(t, b.String(), string(doc), "docs/events.md is stale: run go test ./cmd/sextant -run TestEventsDocMatchesCatalog -update")
}

// TestMetricsDocListsDefaultMetrics checks docs/metrics.md names every metric
// of the embedded default by its Prometheus name.
func TestMetricsDocListsDefaultMetrics(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	cfg, err := config.Default(factories()...)
	require.NoError(t, err)
	prom := map[string]string{}
	for _, row := range seedMetrics(t) {
		prom[row.otelName] = row.promName
	}
	seen := map[string]bool{}
	for _, r := range cfg.Router.Routes {
		for _, m := range r.Metrics {
			name, ok := prom[m.Name]
			require.True(t, ok, "default metric %s is not in the seed table", m.Name)
			require.Contains(t, string(doc), "`"+name+"`")
			seen[m.Name] = true
		}
	}
	require.Len(t, seen, 34)
}

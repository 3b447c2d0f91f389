package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDependencyDirection enforces the layout's import rules (DESIGN.md,
// STYLE.md): arrows point toward events and exporters, and nothing but cmd
// imports concrete exporters.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-telemetry/sextant/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports ","}}`, "../../...").CombinedOutput()
	require.NoError(t, err, "%s", out)
	// allowed lists, per package, the module packages it may import; an
	// import not listed (and not outside the module) fails the test.
	allowed := map[string][]string{
		"events":     {},
		"events/bus": {"events"},
		// the generator of docs/events.md, run by go generate
		"events/internal/catalogdoc":    {"events"},
		"events/internal/gencatalogdoc": {"events", "events/internal/catalogdoc"},
		"lifecycle":                     {"events"},
		"router":                        {"events", "events/bus", "exporters", "internal/redact"},
		"exporters":                     {"events"},
		"exporters/prometheus":          {"exporters"},
		"exporters/traces":              {"exporters"},
		"exporters/targets":             {"exporters"},
		"exporters/otlp":                {"exporters"},
		"exporters/json":                {"exporters"},
		"exporters/csv":                 {"exporters"},
		// test helpers: a sample snapshot and comparisons
		"exporters/internal/snapshottest": {"exporters"},
		// The traces section is fixed (one span pipeline), not a pluggable
		// exporter chosen by factory, so config holds its type directly.
		// The plugins section likewise: one plugin host.
		"config": {"events", "events/bus", "router", "exporters", "exporters/traces", "plugins/host", "internal/logging", "lifecycle"},
		// The plugin protocol and what is built on it. The SDK and the
		// wire format depend on the snapshot model only; the host also on
		// events (cache_synced). Plugins are their own programs: the
		// webhook example and the test plugin reuse the built-in JSON
		// encoder, as any plugin author may.
		"plugins/proto/pluginv1":          {},
		"plugins/proto/internal/otlpdesc": {},
		"plugins/wire":                    {"exporters", "plugins/proto/pluginv1"},
		"plugins/sdk":                     {"exporters", "plugins/wire", "plugins/proto/pluginv1"},
		"plugins/host":                    {"events", "exporters", "internal/redact", "plugins/wire", "plugins/proto/pluginv1"},
		"plugins/examples/influx":         {"exporters", "plugins/sdk"},
		"plugins/examples/webhook":        {"exporters", "exporters/json", "plugins/sdk"},
		"plugins/internal/testplugin":     {"exporters", "exporters/json", "plugins/proto/pluginv1", "plugins/sdk"},
		"plugins/examples/graphite-node":  {}, // tests only
		// test helpers: building programs, finding leftover processes
		"internal/proctest": {},
		// what counts as a secret, shared by logs, spans, config print and plugins
		"internal/redact": {},
		// the service's slog setup: format, level, redaction
		"internal/logging": {"internal/redact"},
		// test helpers: an in-process OTLP receiver
		"internal/otlptest": {},
		// the health-check registry and its HTTP handlers
		"internal/health": {},
	}
	// forbidden external imports, per package.
	forbidden := map[string][]string{
		"events":           {"go.opentelemetry.io/", "go.yaml.in/", "github.com/ThreeDotsLabs/"},
		"lifecycle":        {"go.opentelemetry.io/", "go.yaml.in/", "github.com/ThreeDotsLabs/"}, // pgx is allowed: the tracer
		"router":           {"go.yaml.in/"},
		"exporters":        {"go.yaml.in/", "github.com/ThreeDotsLabs/"},
		"exporters/traces": {"go.yaml.in/", "github.com/ThreeDotsLabs/"},
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(pkg, mod)
		if rel == "cmd/sextant" {
			continue
		}
		allow, ok := allowed[rel]
		require.True(t, ok, "package %s has no rule here: add one", rel)
		seen++
		for _, imp := range strings.Split(imports, ",") {
			if strings.HasPrefix(imp, mod) {
				require.Contains(t, allow, strings.TrimPrefix(imp, mod), "%s must not import %s", rel, imp)
			}
			for _, f := range forbidden[rel] {
				require.False(t, strings.HasPrefix(imp, f), "%s must not import %s", rel, imp)
			}
		}
	}
	require.Equal(t, len(allowed), seen)
}

package main

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

var update = flag.Bool("update", false, "rewrite the generated table of docs/metrics.md")

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

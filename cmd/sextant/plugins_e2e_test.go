package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/internal/proctest"
)

// pluginBinaries builds the example plugins and the test plugin into dir,
// concurrently, and returns their paths by package directory name.
func pluginBinaries(t *testing.T, dir string) map[string]string {
	t.Helper()
	pkgs := map[string]string{
		"influx":     "../../plugins/examples/influx",
		"webhook":    "../../plugins/examples/webhook",
		"testplugin": "../../plugins/internal/testplugin",
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out, errs := map[string]string{}, []error{}
	for name, pkg := range pkgs {
		wg.Go(func() {
			p, err := proctest.Build(dir, "sextant-"+name, pkg)
			mu.Lock()
			defer mu.Unlock()
			out[name] = p
			errs = append(errs, err)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return out
}

// requireNoPluginLeft fails the test if a process still runs a binary
// under dir, or is a child of this test process (the Node.js plugin runs
// /usr/bin/node: it is found as a child), once the test's service has
// stopped. Processes of other packages' tests, running alongside, are
// neither.
func requireNoPluginLeft(t *testing.T, dir string) {
	t.Helper()
	left, err := proctest.Leftovers(dir)
	require.NoError(t, err)
	require.Empty(t, left, "plugin processes outlived the service")
}

// TestPluginsThroughTheService runs the demo with the example plugins (Go
// and Node.js) and a misbehaving one, all real processes, and checks what a
// user sees: every plugin's export equals the in-process JSON export number
// for number; a plugin that dies mid-export fails that export with a clear
// error while routing goes on, and is back after its restart; the plugin
// list, health and self-metrics tell the story; nothing outlives the
// service.
func TestPluginsThroughTheService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches plugin processes")
	}
	dir := t.TempDir()
	bins := pluginBinaries(t, dir)
	t.Cleanup(func() { requireNoPluginLeft(t, dir) }) // runs after the demo's cleanup

	var hookMu sync.Mutex
	var posted [][]byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		posted = append(posted, body)
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	graphite, err := filepath.Abs("../../plugins/examples/graphite-node/sextant-graphite.js")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(filepath.Dir(graphite), "node_modules"))
	require.NoError(t, err, "the Node.js plugin's packages are missing: run make node-deps (or npm ci in plugins/examples/graphite-node)")

	cfgPath := filepath.Join(dir, "plugins.yaml")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, `
plugins:
  instances:
    - path: %s
      config: {precision: ms}
    - path: %s
      config: {url: %s}
    - path: %s
      config: {prefix: demo}
    - name: flaky
      path: %s
      config: {mode: exit, once_file: %s}
  restart: {initial_backoff: 50ms, max_backoff: 200ms}
`, bins["influx"], bins["webhook"], receiver.URL, graphite, bins["testplugin"], filepath.Join(dir, "crashed-once")), 0o644))

	addr := startDemo(t, "--config", cfgPath, "--tasks", "12", "--seed", "7")
	base := "http://" + addr

	// The reference: the in-process JSON export, reduced to the families
	// the finished tasks made (the rest, such as sextant_exports_*, move
	// with every export).
	want := stableSeries(t, decodeJSONExport(t, exportOK(t, addr, "json")))
	require.Greater(t, len(want), 50, "the demo's tasks made too few samples to compare")
	require.True(t, slices.ContainsFunc(slices.Collect(mapKeys(want)), func(k string) bool { return strings.Contains(k, "_bucket{") }),
		"the comparison covers histograms")

	t.Run("influx", func(t *testing.T) {
		require.Equal(t, want, parseInflux(t, exportOK(t, addr, "influx")))
	})
	t.Run("webhook", func(t *testing.T) {
		body := exportOK(t, addr, "webhook")
		hookMu.Lock()
		require.NotEmpty(t, posted, "the webhook plugin posted nothing")
		last := posted[len(posted)-1]
		hookMu.Unlock()
		require.Equal(t, body, last, "the export's body is what the webhook posted")
		require.Equal(t, want, stableSeries(t, decodeJSONExport(t, body)))
	})
	t.Run("graphite (Node.js)", func(t *testing.T) {
		require.Equal(t, want, parseGraphite(t, exportOK(t, addr, "graphite"), "demo."))
	})

	t.Run("a plugin that dies mid-export", func(t *testing.T) {
		routedBefore := metricValue(t, addr, "sextant_router_events_routed_total", nil)
		resp, body := getExportHTTP(t, addr, "format=test")
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode, "%s", body)
		require.Contains(t, string(body), `plugin \"flaky\"`)
		require.Contains(t, string(body), "exit")

		// Routing goes on: events posted now are routed.
		postStepEvents(t, base, 5)
		eventually(t, func() bool {
			return metricValue(t, addr, "sextant_router_events_routed_total", nil) >= routedBefore+5
		}, "events posted after the crash are routed")

		// The crash is counted and the plugin comes back.
		require.GreaterOrEqual(t, metricValue(t, addr, "sextant_exports_failed_total", map[string]string{"format": "test"}), 1.0)
		eventually(t, func() bool {
			r, _ := getExportHTTP(t, addr, "format=test")
			return r.StatusCode == http.StatusOK
		}, "the plugin is restarted and exports again")
		require.GreaterOrEqual(t, metricValue(t, addr, "sextant_plugins_restarts_total", map[string]string{"plugin": "flaky"}), 1.0)
		require.Equal(t, 1.0, metricValue(t, addr, "sextant_plugins_up", map[string]string{"plugin": "flaky"}))
	})

	t.Run("plugins list and health", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"plugins", "list", "--url", base, "--json"}, &stdout, &stderr), stderr.String())
		var list []pluginJSON
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &list), stdout.String())
		byName := map[string]pluginJSON{}
		for _, p := range list {
			byName[p.Name] = p
		}
		require.ElementsMatch(t, []string{"influx", "webhook", "graphite", "flaky"}, slices.Collect(mapKeys(byName)))
		require.Equal(t, []string{"influx"}, byName["influx"].Formats)
		require.Equal(t, bins["influx"], byName["influx"].Path)
		require.Len(t, byName["influx"].SHA256, 64)
		require.NotEmpty(t, byName["graphite"].Version)
		require.Equal(t, "running", byName["flaky"].State)
		require.GreaterOrEqual(t, byName["flaky"].Restarts, 1)
		require.Contains(t, byName["flaky"].LastError, "exit")

		stdout.Reset()
		require.NoError(t, run(context.Background(), []string{"plugins", "inspect", "graphite", "--url", base}, &stdout, &stderr), stderr.String())
		require.Contains(t, stdout.String(), "formats:")
		require.Contains(t, stdout.String(), "graphite")

		resp, err := http.Get(base + "/health/detailed")
		require.NoError(t, err)
		defer resp.Body.Close()
		var health struct {
			Checks struct {
				Plugins map[string]any `json:"plugins"`
			} `json:"checks"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&health))
		require.Equal(t, "healthy", health.Checks.Plugins["status"], "%v", health.Checks.Plugins)
		require.EqualValues(t, 4, health.Checks.Plugins["count"])
		flaky := health.Checks.Plugins["plugins"].(map[string]any)["flaky"].(map[string]any)
		require.Equal(t, "running", flaky["state"])
		require.GreaterOrEqual(t, flaky["restarts"], 1.0)
	})
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// exportOK fetches /export?format=format and requires a 200.
func exportOK(t *testing.T, addr, format string) []byte {
	t.Helper()
	resp, body := getExportHTTP(t, addr, "format="+format)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return body
}

func decodeJSONExport(t *testing.T, body []byte) *exporters.Snapshot {
	t.Helper()
	s, err := jsonexp.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	return s
}

// stableFamily reports whether a family's values stay put once the demo's
// tasks are done: the tasks' and steps' counters and durations.
func stableFamily(name string) bool {
	return strings.HasPrefix(name, "tasker_tasks_") || strings.HasPrefix(name, "tasker_steps_") ||
		strings.HasPrefix(name, "tasker_step_execution_duration")
}

// stableSeries flattens the stable families into Prometheus samples:
// "name{k=v,...}" → value, histograms as _bucket{le}, _sum and _count.
// Labels with empty values are left out, as the line formats leave them.
func stableSeries(t *testing.T, s *exporters.Snapshot) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, f := range s.Families {
		if !stableFamily(f.PromName) {
			continue
		}
		for _, se := range f.Series {
			var labels []string
			for _, l := range se.Labels {
				if l.Value != "" {
					labels = append(labels, l.Name+"="+l.Value)
				}
			}
			if se.Histogram == nil {
				out[sampleKey(f.PromName, labels)] = se.Value
				continue
			}
			for _, b := range se.Histogram.Buckets {
				out[sampleKey(f.PromName+"_bucket", append(slices.Clone(labels), "le="+formatLe(b.UpperBound)))] = float64(b.Count)
			}
			out[sampleKey(f.PromName+"_sum", labels)] = se.Histogram.Sum
			out[sampleKey(f.PromName+"_count", labels)] = float64(se.Histogram.Count)
		}
	}
	return out
}

func formatLe(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(b, 'g', -1, 64)
}

func sampleKey(name string, labels []string) string {
	labels = slices.Clone(labels)
	sort.Strings(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

// parseInflux reads line protocol (measurement,tag=v,... value=N[i] ts)
// back into samples, keeping the stable families.
func parseInflux(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		head, rest := splitUnescaped(line, ' ')
		require.NotEmpty(t, rest, "line %q", line)
		parts := splitAllUnescaped(head, ',')
		name := unescape(parts[0])
		if !stableFamily(name) {
			continue
		}
		var labels []string
		for _, tag := range parts[1:] {
			k, v := splitUnescaped(tag, '=')
			labels = append(labels, unescape(k)+"="+unescape(v))
		}
		field, _ := splitUnescaped(rest, ' ')
		raw, ok := strings.CutPrefix(field, "value=")
		require.True(t, ok, "line %q", line)
		v, err := strconv.ParseFloat(strings.TrimSuffix(raw, "i"), 64)
		require.NoError(t, err, "line %q", line)
		out[sampleKey(name, labels)] = v
	}
	return out
}

// splitUnescaped splits s at the first sep not preceded by a backslash.
func splitUnescaped(s string, sep byte) (string, string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func splitAllUnescaped(s string, sep byte) []string {
	var out []string
	for {
		head, rest := splitUnescaped(s, sep)
		out = append(out, head)
		if rest == "" && !strings.HasSuffix(s, string(sep)) {
			return out
		}
		s = rest
	}
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseGraphite reads Graphite 1.1 plaintext (path;tag=v;... value ts)
// back into samples, keeping the stable families.
func parseGraphite(t *testing.T, body []byte, prefix string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		fields := strings.Fields(line)
		require.Len(t, fields, 3, "line %q", line)
		parts := strings.Split(fields[0], ";")
		name, ok := strings.CutPrefix(parts[0], prefix)
		require.True(t, ok, "line %q lacks the prefix %q", line, prefix)
		if !stableFamily(name) {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		require.NoError(t, err, "line %q", line)
		out[sampleKey(name, parts[1:])] = v
	}
	return out
}

// metricValue scrapes /metrics and returns the sum of name's series whose
// labels include want.
func metricValue(t *testing.T, addr, name string, want map[string]string) float64 {
	t.Helper()
	fams, _ := scrape(t, addr)
	f, ok := fams[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// postStepEvents posts n valid step.completed events to POST /events.
func postStepEvents(t *testing.T, base string, n int) {
	t.Helper()
	var lines []string
	for range n {
		lines = append(lines, ok("plugins_e2e"))
	}
	resp, err := http.Post(base+"/events", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", body)
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCheckPlugins runs `sextant check --plugins` and `sextant plugins
// list --config` against real plugin processes: a good configuration, a
// section the plugin rejects, a wrong checksum and a missing file. Each
// problem is an error naming it, and nothing is left running.
func TestCheckPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches plugin processes")
	}
	dir := t.TempDir()
	bin, err := proctest.Build(dir, "sextant-testplugin", "../../plugins/internal/testplugin")
	require.NoError(t, err)
	t.Cleanup(func() { requireNoPluginLeft(t, dir) })

	tests := []struct {
		name, instance string
		wantErr        []string // empty: OK
	}{
		{name: "good", instance: `{name: t, path: ` + bin + `, config: {mode: ok}}`},
		{name: "section rejected", instance: `{name: t, path: ` + bin + `, config: {mode: sideways}}`,
			wantErr: []string{"plugins.instances[0].config.mode:", "sideways"}},
		{name: "wrong checksum", instance: `{name: t, path: ` + bin + `, sha256: ` + strings.Repeat("ab", 32) + `}`,
			wantErr: []string{`plugin "t"`, "sha256 is", "configuration says " + strings.Repeat("ab", 32)}},
		{name: "missing file", instance: `{name: t, path: ` + filepath.Join(dir, "nope") + `}`,
			wantErr: []string{`plugin "t"`, "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte("plugins:\n  instances:\n    - "+tt.instance+"\n"), 0o644))
			for _, args := range [][]string{{"check", "--config", cfg, "--plugins"}, {"plugins", "list", "--config", cfg, "--json"}} {
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), args, &stdout, &stderr)
				if len(tt.wantErr) == 0 {
					require.NoError(t, err, "%v: %s", args, stderr.String())
					if args[0] == "check" {
						require.Contains(t, stdout.String(), "OK (")
						require.Contains(t, stdout.String(), "1 plugins)")
					} else {
						var list []pluginJSON
						require.NoError(t, json.Unmarshal(stdout.Bytes(), &list))
						require.Len(t, list, 1)
						require.Equal(t, "running", list[0].State)
						require.Equal(t, []string{"json-via-plugin", "test"}, list[0].Formats)
					}
					continue
				}
				require.Error(t, err, "%v", args)
				for _, w := range tt.wantErr {
					require.Contains(t, err.Error(), w, "%v", args)
				}
				require.NotContains(t, stderr.String(), "retrying", "a one-shot look does not promise restarts")
			}
		})
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// TestExportTargetsRunInTheService runs the demo with two targets from the
// configuration — a textfile-collector file every 50 ms and a JSON POST
// after 100 events — and checks what they deliver, their health and the
// export events routed back into the metrics.
func TestExportTargetsRunInTheService(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		bodies [][]byte
		types  []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, types = append(bodies, b), append(types, r.Header.Get("Content-Type"))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	prom := filepath.Join(dir, "sextant.prom")
	cfg := filepath.Join(dir, "targets.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`exporters:
  prometheus: {}
  targets:
    - name: textfile
      format: prometheus
      match: ["tasker_tasks_*"]
      every: 50ms
      file: %q
    - name: collector
      format: json
      labels: ['namespace="rust_e2e_linear"']
      after_events: 100
      max_delay: 200ms
      http: {url: %q}
`, prom, srv.URL+"/ingest")), 0o600))
	addr := startDemo(t, "--tasks", "10", "--config", cfg)

	require.Eventually(t, func() bool { _, err := os.Stat(prom); return err == nil }, 30*time.Second, 20*time.Millisecond)
	b, err := os.ReadFile(prom)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, "the file is a whole exposition")
	require.Contains(t, fams, "tasker_tasks_requests_total")
	for name := range fams {
		require.Regexp(t, `^tasker_tasks_`, name, "match keeps only tasker_tasks_*")
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) > 0 }, 30*time.Second, 20*time.Millisecond)
	mu.Lock()
	var doc struct {
		Schema   string `json:"schema"`
		Families []struct {
			Series []struct {
				Labels map[string]string `json:"labels"`
			} `json:"series"`
		} `json:"families"`
	}
	require.NoError(t, json.Unmarshal(bodies[0], &doc))
	require.Equal(t, "application/json", types[0])
	mu.Unlock()
	require.Equal(t, "sextant.metrics/v1", doc.Schema)
	require.NotEmpty(t, doc.Families)
	for _, f := range doc.Families {
		for _, s := range f.Series {
			require.Equal(t, "rust_e2e_linear", s.Labels["namespace"], "labels keeps only the namespace's series")
		}
	}

	// The targets' exports are export events too, routed into the metrics.
	require.Eventually(t, func() bool {
		fams, _ := scrape(t, addr)
		done := 0.0
		for _, m := range fams["sextant_exports_completed_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && (l.GetValue() == "textfile" || l.GetValue() == "collector") {
					done += m.GetCounter().GetValue()
				}
			}
		}
		return done >= 2
	}, 30*time.Second, 50*time.Millisecond)
	resp, err := http.Get("http://" + addr + "/health/detailed")
	require.NoError(t, err)
	defer resp.Body.Close()
	var health struct {
		Checks struct {
			Targets struct {
				Status  string `json:"status"`
				Count   int    `json:"count"`
				Targets []struct {
					Name    string `json:"name"`
					Exports uint64 `json:"exports"`
					Breaker string `json:"breaker"`
				} `json:"targets"`
			} `json:"export_targets"`
		} `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&health))
	require.Equal(t, "healthy", health.Checks.Targets.Status)
	require.Equal(t, 2, health.Checks.Targets.Count)
	for _, tg := range health.Checks.Targets.Targets {
		require.Positive(t, tg.Exports, "target %s exported", tg.Name)
		require.Equal(t, "closed", tg.Breaker)
	}
}

// TestExportTargetWithUnknownFormatIsRefused checks that a target naming a
// format no exporter writes stops the service at start, naming it.
func TestExportTargetWithUnknownFormatIsRefused(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("exporters:\n  prometheus: {}\n  targets:\n    - {name: x, format: influx, every: 1s, file: /tmp/x.influx}\n"), 0o600))
	var stdout, stderr lockedBuffer
	err := run(t.Context(), []string{"demo", "--tasks", "1", "--exit", "--config", cfg, "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	require.Error(t, err)
	require.Contains(t, err.Error(), `exporters.targets[0] (x): format "influx": unknown export format (known: csv, json, openmetrics, prometheus)`)
}

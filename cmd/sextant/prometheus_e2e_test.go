package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// promResult is one sample of an instant query.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (r promResult) float(t *testing.T) float64 {
	t.Helper()
	s, ok := r.Value[1].(string)
	require.True(t, ok, "sample value %v", r.Value)
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// startPrometheus runs the real Prometheus server scraping target every
// second, evaluating ruleFiles every second, and returns its base URL.
func startPrometheus(t *testing.T, target string, ruleFiles ...string) string {
	t.Helper()
	return startPrometheusWith(t, fmt.Sprintf("  - job_name: sextant\n    static_configs:\n      - targets: [%q]\n", target), ruleFiles...)
}

// startPrometheusWith starts Prometheus with the given scrape_configs entries
// (YAML list items indented by two spaces), a one-second scrape interval
// and ruleFiles, and returns its base URL once it is ready.
func startPrometheusWith(t *testing.T, scrapeConfigs string, ruleFiles ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "prometheus not found: install Debian's prometheus package (apt-get install prometheus)")
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n" + scrapeConfigs
	if len(ruleFiles) > 0 {
		cfg += "rule_files:\n"
		for _, f := range ruleFiles {
			cfg += fmt.Sprintf("  - %q\n", f)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	// exemplar-storage keeps the exemplars Sextant serves in OpenMetrics.
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--enable-feature=exemplar-storage")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "prometheus never became ready")
	return base
}

// promScalar runs an instant query that must return exactly one sample.
func promScalar(t *testing.T, base, q string) float64 {
	t.Helper()
	res, err := promQuery(base, q)
	require.NoError(t, err)
	require.Len(t, res, 1, "query %s", q)
	return res[0].float(t)
}

func promQuery(base, q string) ([]promResult, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	return body.Data.Result, nil
}

// TestPrometheusAnswersSeedQueries scrapes the demo with the real Prometheus
// server and runs the reference documents' instant queries against it.
func TestPrometheusAnswersSeedQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a Prometheus server; run without -short")
	}
	addr := startDemo(t, "--tasks", "26")
	base := startPrometheus(t, addr)

	// Wait for a scrape that holds the finished run.
	require.Eventually(t, func() bool {
		res, err := promQuery(base, "sum(tasker_tasks_completions_total)")
		return err == nil && len(res) == 1 && res[0].Value[1] == "26"
	}, 60*time.Second, 250*time.Millisecond, "Prometheus never saw 26 completions")

	scalar := func(q string) float64 { t.Helper(); return promScalar(t, base, q) }
	flow := []struct {
		q    string
		want float64
	}{
		{"sum(tasker_tasks_requests_total)", 26},
		{"sum(tasker_steps_enqueued_total)", 104},
		{"sum(tasker_steps_claimed_total)", 104},
		{"sum(tasker_steps_executions_total)", 104},
		{"sum(tasker_steps_successes_total)", 104},
		{"sum(tasker_steps_results_submitted_total)", 104},
		{"sum(tasker_step_results_processed_total)", 104},
		{"sum(tasker_tasks_completions_total)", 26},
		{"sum(tasker_step_execution_duration_milliseconds_count)", 104},
		{`sum(tasker_step_results_processed_total{result_type="success"})`, 104},
		{"count(tasker_tasks_requests_total)", 26}, // one series per correlation id
	}
	for _, f := range flow {
		require.Equal(t, f.want, scalar(f.q), f.q)
	}

	res, err := promQuery(base, "sum by (namespace) (tasker_tasks_requests_total)")
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, "rust_e2e_linear", res[0].Metric["namespace"])

	res, err = promQuery(base, "sum by (claim_method) (tasker_steps_claimed_total)")
	require.NoError(t, err)
	total := 0.0
	for _, r := range res {
		require.Contains(t, []string{"event", "poll"}, r.Metric["claim_method"])
		total += r.float(t)
	}
	require.Equal(t, 104.0, total)

	// Filtering by one task's correlation id finds exactly its series.
	res, err = promQuery(base, "tasker_tasks_requests_total")
	require.NoError(t, err)
	cid := res[0].Metric["correlation_id"]
	require.Equal(t, 4.0, scalar(fmt.Sprintf(`sum(tasker_steps_enqueued_total{correlation_id=%q})`, cid)))

	for _, q := range []string{
		"histogram_quantile(0.95, sum by (le) (tasker_step_execution_duration_milliseconds_bucket))",
		"histogram_quantile(0.99, sum by (le) (tasker_task_initialization_duration_milliseconds_bucket))",
		"histogram_quantile(0.50, sum by (le) (tasker_step_result_processing_duration_milliseconds_bucket))",
		"sum(tasker_step_execution_duration_milliseconds_sum) / sum(tasker_step_execution_duration_milliseconds_count)",
	} {
		v := scalar(q)
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s = %v", q, v)
		require.Greater(t, v, 0.0, q)
	}
	res, err = promQuery(base, "histogram_quantile(0.95, sum by (namespace, le) (tasker_step_execution_duration_milliseconds_bucket))")
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, "rust_e2e_linear", res[0].Metric["namespace"])

}

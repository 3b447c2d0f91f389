package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freeAddr reserves a loopback port for a server started later, so that
// Prometheus can scrape it from the start of the run.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// engineCounts is the demo's --stats-json: the engine's own counters.
type engineCounts map[string]float64

func readEngineCounts(t *testing.T, path string) engineCounts {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var c engineCounts
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

// TestPrometheusLifecycleEndToEnd runs the demo with failures, retries and
// spread-out submissions while a real Prometheus scrapes it from the first
// second, then answers the reference documents' PromQL — instant and rate()
// forms, quantiles, the correlation id flow, error rates and throughput —
// and compares each count with what the engine itself counted. It also loads
// the shipped alert rules and dashboards and evaluates every expression.
func TestPrometheusLifecycleEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a Prometheus server; run without -short")
	}
	addr := freeAddr(t)
	rules, err := filepath.Abs("../../deploy/prometheus/sextant-alerts.yml")
	require.NoError(t, err)
	base := startPrometheus(t, addr, rules)

	statsPath := filepath.Join(t.TempDir(), "engine.json")
	startDemoOn(t, addr, "--tasks", "60", "--fail-rate", "0.2", "--seed", "7",
		"--interval", "100ms", "--stats-json", statsPath)
	want := readEngineCounts(t, statsPath)
	t.Logf("engine counted: %v", want)
	require.Equal(t, 60.0, want["TasksSubmitted"])
	require.Positive(t, want["StepsFailed"], "fail rate 0.2 must fail some attempts")
	require.Positive(t, want["StepRetries"], "failed attempts must be retried")
	require.Equal(t, want["TasksSubmitted"], want["TasksCompleted"]+want["TasksFailed"]+want["TasksCancelled"])

	scalar := func(q string) float64 { t.Helper(); return promScalar(t, base, q) }
	// Wait for a scrape taken after the run: the engine's last counts and
	// the sampler's final all-zero gauges.
	require.Eventually(t, func() bool {
		res, err := promQuery(base, "sum(tasker_steps_executions_total)")
		if err != nil || len(res) != 1 || res[0].Value[1] != fmt.Sprint(want["StepAttempts"]) {
			return false
		}
		res, err = promQuery(base, "sum(tasker_tasks_active)")
		return err == nil && len(res) == 1 && res[0].Value[1] == "0"
	}, 60*time.Second, 250*time.Millisecond, "Prometheus never saw the finished run")

	t.Run("instant counts equal the engine's", func(t *testing.T) {
		orZero := func(q string) string { return q + " or vector(0)" }
		for _, c := range []struct {
			q     string
			field string
		}{
			{"sum(tasker_tasks_requests_total)", "TasksSubmitted"},
			{orZero("sum(tasker_tasks_completions_total)"), "TasksCompleted"},
			{orZero("sum(tasker_tasks_failures_total)"), "TasksFailed"},
			{"sum(tasker_steps_enqueued_total)", "StepsEnqueued"},
			{"sum(tasker_steps_claimed_total)", "StepsClaimed"},
			{"sum(tasker_steps_executions_total)", "StepAttempts"},
			{orZero("sum(tasker_steps_successes_total)"), "StepsSucceeded"},
			{orZero("sum(tasker_steps_failures_total)"), "StepsFailed"},
			{"sum(tasker_steps_results_submitted_total)", "ResultsSubmitted"},
			{"sum(tasker_step_results_processed_total)", "ResultsProcessed"},
			{orZero("sum(tasker_steps_retries_total)"), "StepRetries"},
			{orZero("sum(tasker_steps_max_retries_reached_total)"), "MaxRetriesReached"},
			{"sum(tasker_step_execution_duration_milliseconds_count)", "StepAttempts"},
			{"sum(tasker_task_initialization_duration_milliseconds_count)", "TasksSubmitted"},
			{"sum(tasker_task_finalization_duration_milliseconds_count)", "TasksSubmitted"},
			{`sum(tasker_step_results_processed_total{result_type="success"}) or vector(0)`, "StepsSucceeded"},
			{`sum(tasker_step_results_processed_total{result_type="error"}) or vector(0)`, "StepsFailed"},
			{`sum(tasker_task_finalization_duration_milliseconds_count{final_state="error"}) or vector(0)`, "TasksFailed"},
			{`sum(tasker_tasks_finalized_total{final_state="complete"}) or vector(0)`, "TasksCompleted"},
			{"count(tasker_tasks_requests_total)", "TasksSubmitted"}, // one series per correlation id
		} {
			require.Equal(t, want[c.field], scalar(c.q), "%s vs engine %s", c.q, c.field)
		}
		// Failures split by error type add up, and topk answers.
		res, err := promQuery(base, "sum by (error_type) (tasker_steps_failures_total)")
		require.NoError(t, err)
		sum := 0.0
		for _, r := range res {
			require.NotEmpty(t, r.Metric["error_type"])
			sum += r.float(t)
		}
		require.Equal(t, want["StepsFailed"], sum)
		res, err = promQuery(base, "topk(5, sum by (error_type) (tasker_steps_failures_total))")
		require.NoError(t, err)
		require.NotEmpty(t, res)
		res, err = promQuery(base, "sum by (step_name) (tasker_steps_enqueued_total)")
		require.NoError(t, err)
		require.Len(t, res, 4, "mathematical_sequence has four steps")
	})

	t.Run("correlation id flow", func(t *testing.T) {
		// A task that completed with no failed attempt shows the seed-002
		// flow 1 -> 4 -> 4 -> 4 -> 4 -> 4 -> 1 under its correlation id.
		res, err := promQuery(base, "tasker_tasks_completions_total unless on (correlation_id) tasker_steps_failures_total")
		require.NoError(t, err)
		require.NotEmpty(t, res, "some task must have run without failures")
		cid := res[0].Metric["correlation_id"]
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-`, cid, "correlation ids are UUIDv7")
		for _, c := range []struct {
			metric string
			want   float64
		}{
			{"tasker_tasks_requests_total", 1}, {"tasker_steps_enqueued_total", 4}, {"tasker_steps_executions_total", 4},
			{"tasker_steps_successes_total", 4}, {"tasker_steps_results_submitted_total", 4},
			{"tasker_step_results_processed_total", 4}, {"tasker_tasks_completions_total", 1},
		} {
			require.Equal(t, c.want, scalar(fmt.Sprintf("sum(%s{correlation_id=%q})", c.metric, cid)), c.metric)
		}
	})

	t.Run("rate forms answer", func(t *testing.T) {
		// rate() needs two samples of a series inside its window: wait
		// until every task's series has been scraped twice.
		require.Eventually(t, func() bool {
			res, err := promQuery(base, "count(count_over_time(tasker_tasks_requests_total[5m]) > 1)")
			return err == nil && len(res) == 1 && res[0].Value[1] == fmt.Sprint(want["TasksSubmitted"])
		}, 30*time.Second, 250*time.Millisecond)

		// The seeds' rate forms over correlation_id series answer, but a
		// per-task series is born at its final value (a task lives for
		// milliseconds, a scrape takes a second) and rate() cannot see a
		// birth: they read 0, and ratios of them NaN. docs/metrics.md
		// explains; the production profile drops the label.
		for _, q := range []string{
			"sum(rate(tasker_tasks_requests_total[5m]))",
			"sum(rate(tasker_tasks_completions_total[5m]))",
			"sum(rate(tasker_steps_executions_total[5m]))",
			"sum(rate(tasker_steps_successes_total[5m])) + sum(rate(tasker_steps_failures_total[5m]))",
			`sum(rate(tasker_step_results_processed_total{result_type="success"}[5m]))`,
			"histogram_quantile(0.95, sum by (le) (rate(tasker_task_initialization_duration_milliseconds_bucket[5m])))",
			"sum(rate(tasker_steps_failures_total[5m])) / sum(rate(tasker_steps_executions_total[5m]))",
		} {
			res, err := promQuery(base, q)
			require.NoError(t, err, q)
			require.Len(t, res, 1, q)
			if v := res[0].float(t); !math.IsNaN(v) {
				require.GreaterOrEqual(t, v, 0.0, q)
			}
		}
		// Over series whose labels outlive a task, rates, quantiles and
		// throughput are real numbers.
		for _, q := range []string{
			"sum(rate(tasker_steps_claimed_total[5m]))",
			"sum(rate(tasker_tasks_finalized_total[5m]))",
			"sum(rate(sextant_router_events_routed_total[5m]))",
			"histogram_quantile(0.95, sum by (le) (rate(tasker_step_claim_duration_milliseconds_bucket[5m])))",
			"histogram_quantile(0.95, sum by (le) (rate(tasker_task_total_duration_milliseconds_bucket[5m])))",
			"sum(rate(tasker_task_total_duration_milliseconds_sum[5m])) / sum(rate(tasker_task_total_duration_milliseconds_count[5m]))",
		} {
			v := scalar(q)
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s = %v", q, v)
			require.Positive(t, v, q)
		}
		// Error rates, instant forms: exactly the engine's ratios.
		require.InDelta(t, want["StepsFailed"]/want["StepAttempts"],
			scalar("sum(tasker_steps_failures_total) / sum(tasker_steps_executions_total)"), 1e-9, "step error rate")
		require.InDelta(t, want["TasksFailed"]/want["TasksSubmitted"],
			scalar(`(sum(tasker_tasks_failures_total) or vector(0)) / (sum(tasker_tasks_completions_total) + (sum(tasker_tasks_failures_total) or vector(0)))`), 1e-9, "task error rate")
		res, err := promQuery(base, "histogram_quantile(0.95, sum by (final_state, le) (tasker_task_finalization_duration_milliseconds_bucket))")
		require.NoError(t, err)
		var states []string
		for _, r := range res {
			states = append(states, r.Metric["final_state"])
		}
		require.Contains(t, states, "complete")
		if want["TasksFailed"] > 0 {
			require.Contains(t, states, "error")
		}
	})

	t.Run("live-state gauges and resilience series exist from start-up", func(t *testing.T) {
		res, err := promQuery(base, "tasker_tasks_active")
		require.NoError(t, err)
		var states []string
		for _, r := range res {
			states = append(states, r.Metric["state"])
			require.Zero(t, r.float(t), "no task is active after the run")
		}
		require.ElementsMatch(t, []string{"pending", "initializing", "steps_in_process", "waiting_for_retry", "finalizing"}, states)
		require.Zero(t, scalar(`sum(tasker_steps_ready{namespace="rust_e2e_linear"})`))
		require.Zero(t, scalar(`sum(tasker_queue_depth{namespace="rust_e2e_linear"})`))
		require.Zero(t, scalar(`sum(tasker_steps_active_executions{namespace="rust_e2e_linear"})`))

		require.Zero(t, scalar("api_circuit_breaker_state"), "seed 001: returns 0 (Closed) during normal operation")
		require.Zero(t, scalar(`tasker_circuit_breaker_state{component="ffi_completion"}`))
		require.Zero(t, scalar(`sum(api_requests_rejected_total{endpoint="/events"})`))
		require.GreaterOrEqual(t, scalar("ffi_completion_slow_sends_total"), 0.0)
		require.GreaterOrEqual(t, scalar("ffi_completion_circuit_open_rejections_total"), 0.0)
		res, err = promQuery(base, "count(tasker_circuit_breaker_state == 2)")
		require.NoError(t, err)
		require.Empty(t, res, "no breaker is open")

		res, err = promQuery(base, "mpsc_channel_capacity")
		require.NoError(t, err)
		var channels []string
		for _, r := range res {
			channels = append(channels, r.Metric["component"]+"/"+r.Metric["channel"])
			require.Positive(t, r.float(t))
		}
		require.Subset(t, channels, []string{"orchestration/orchestration_command", "worker/ffi_completion", "worker/worker_rust_e2e_linear_queue"})
		require.Less(t, scalar("max(mpsc_channel_usage_percent)"), 80.0, "seed 001: usage < 80% (no saturation) once idle")
		res, err = promQuery(base, "sum by (channel) (mpsc_channel_full_events_total)")
		require.NoError(t, err)
		require.NotEmpty(t, res)
		require.InDelta(t, want["ChannelFullEvents"], scalar("sum(mpsc_channel_full_events_total)"), 0, "full events equal the engine's count")
		require.Equal(t, want["SlowSends"], scalar("sum(ffi_completion_slow_sends_total)"))
	})

	t.Run("alert rules evaluate", func(t *testing.T) {
		groups := ruleGroups(t, base)
		exprs := 0
		for _, g := range groups {
			for _, r := range g.Rules {
				exprs++
				_, err := promQuery(base, r.Query)
				require.NoError(t, err, "alert %s", r.Name)
				require.NotEqual(t, "err", r.Health, "alert %s: %s", r.Name, r.LastError)
			}
		}
		require.Equal(t, 23, exprs, "every rule of sextant-alerts.yml is loaded")
		// Nothing is on fire after a healthy run (for: clauses aside).
		res, err := promQuery(base, "api_circuit_breaker_state == 2 or tasker_circuit_breaker_state == 2")
		require.NoError(t, err)
		require.Empty(t, res)
	})

	t.Run("dashboards' queries answer", func(t *testing.T) {
		files, err := filepath.Glob("../../deploy/grafana/*.json")
		require.NoError(t, err)
		require.Len(t, files, 4)
		rng := regexp.MustCompile(`\[\$__rate_interval\]|\[\$__interval\]`)
		for _, f := range files {
			for _, q := range dashboardExprs(t, f) {
				res, err := promQuery(base, rng.ReplaceAllString(q, "[5m]"))
				require.NoError(t, err, "%s: %s", filepath.Base(f), q)
				if !strings.Contains(q, "tasker_db_") && !strings.Contains(q, "tasker_sql_") && !strings.Contains(q, "== 2") &&
					!strings.Contains(q, "rejected") && !strings.Contains(q, "full_events") && !strings.Contains(q, "slow_sends") && !strings.Contains(q, "dropped") {
					require.NotEmpty(t, res, "%s: %s returns nothing", filepath.Base(f), q)
				}
			}
		}
	})
}

type promRule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// ruleGroups waits until Prometheus has evaluated the loaded rules once.
func ruleGroups(t *testing.T, base string) []struct {
	Name  string     `json:"name"`
	Rules []promRule `json:"rules"`
} {
	t.Helper()
	var body struct {
		Data struct {
			Groups []struct {
				Name  string     `json:"name"`
				Rules []promRule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/v1/rules")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data.Groups) == 0 {
			return false
		}
		for _, g := range body.Data.Groups {
			for _, r := range g.Rules {
				if r.Health == "unknown" {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "Prometheus never evaluated the rules")
	return body.Data.Groups
}

// dashboardExprs returns every target expression of a Grafana dashboard.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d), path)
	require.NotEmpty(t, d.Title)
	var out []string
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			out = append(out, tg.Expr)
		}
	}
	return slices.Clip(out)
}

// TestAlertRulesPromtool checks the shipped rules with promtool and runs
// their unit tests (deploy/prometheus/sextant-alerts.test.yml), which prove
// that each tested alert fires on the seeds' thresholds and not below them.
func TestAlertRulesPromtool(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool not found: install Debian's prometheus package (apt-get install prometheus)")
	for _, args := range [][]string{
		{"check", "rules", "sextant-alerts.yml"},
		{"test", "rules", "sextant-alerts.test.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "../../deploy/prometheus"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, string(out), "SUCCESS")
	}
}

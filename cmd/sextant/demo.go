package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// stepLatencyMetric is the histogram the demo's summary reads its quantiles
// from: what Prometheus would compute from the same buckets.
const stepLatencyMetric = "tasker.step.execution.duration"

// maxDemoTasks bounds --tasks: the demo keeps a handle per task to verify
// its result.
const maxDemoTasks = 100_000_000

type demoOptions struct {
	tasks     int
	workflow  string
	failRate  float64
	seed      uint64 // 0 until chosen: then the seed actually used
	interval  time.Duration
	workers   int
	statsJSON string
	exit      bool
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demoOptions
	fs.IntVar(&o.tasks, "tasks", 26, "how many tasks to run")
	fs.StringVar(&o.workflow, "workflow", lifecycle.WorkflowMathematicalSequence, "workflow `NAME`: mathematical_sequence or diamond_pattern")
	fs.Float64Var(&o.failRate, "fail-rate", 0, "probability in [0,1] that a step attempt fails (failed attempts are retried)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed `N` of the injected failures and retry jitter; 0 picks one (printed in the summary)")
	fs.DurationVar(&o.interval, "interval", 0, "pause between task submissions, to spread the run over time")
	fs.StringVar(&o.statsJSON, "stats-json", "", "write the engine's counters as JSON to `FILE` when the tasks are done")
	fs.IntVar(&o.workers, "workers", lifecycle.DefaultWorkers, "worker goroutines per namespace")
	fs.BoolVar(&o.exit, "exit", false, "exit when the tasks are done instead of serving until interrupted")
	sf := addServiceFlags(fs, "warn")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if o.tasks < 0 || o.tasks > maxDemoTasks {
		return usageError{fmt.Errorf("--tasks must be between 0 and %d, got %d", maxDemoTasks, o.tasks)}
	}
	if o.interval < 0 {
		return usageError{fmt.Errorf("--interval must not be negative, got %s", o.interval)}
	}
	for o.seed == 0 {
		o.seed = rand.Uint64()
	}
	if _, ok := lifecycle.NewDefaultRegistry().Workflow(o.workflow); !ok {
		return usageError{fmt.Errorf("--workflow: unknown workflow %q (known: %s)", o.workflow, strings.Join(lifecycle.NewDefaultRegistry().Names(), ", "))}
	}
	ecfg := lifecycle.NewDefaultEngineConfig()
	ecfg.FailRate, ecfg.Workers = o.failRate, o.workers
	if err := ecfg.Validate(); err != nil {
		return usageError{err}
	}
	svc, logger, err := startService(ctx, sf, stderr)
	if err != nil {
		return err
	}
	// The configuration's engine section, with the flags given over it
	// (checked above against the defaults; the section was checked when
	// the configuration loaded).
	ecfg = svc.cfg.Engine
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "workers":
			ecfg.Workers = o.workers
		case "fail-rate":
			ecfg.FailRate = o.failRate
		}
	})
	o.workers, o.failRate = ecfg.Workers, ecfg.FailRate
	engine, err := lifecycle.New(ecfg, lifecycle.Settings{
		Publisher: svc.Publisher(),
		Logger:    engineLogger(logger, svc.cfg, sf),
		Rand:      rand.New(rand.NewPCG(o.seed, o.seed)),
	})
	if err == nil {
		svc.AddBreakers(engine.Breakers()...)
		err = engine.Start(ctx)
	}
	if err != nil {
		return errors.Join(err, svc.Shutdown(context.WithoutCancel(ctx)))
	}
	stop := func() error {
		bg := context.WithoutCancel(ctx)
		sctx, cancel := context.WithTimeout(bg, shutdownTimeout)
		defer cancel()
		return errors.Join(engine.Shutdown(sctx), svc.Shutdown(bg))
	}

	sum, err := runTasks(ctx, o, engine, svc, stdout)
	if err != nil && ctx.Err() != nil {
		// Interrupted while tasks run: an orderly stop, not a failure.
		s := engine.Stats()
		fmt.Fprintf(stdout, "\ninterrupted after %d of %d tasks; shutting down\n", s.TasksCompleted+s.TasksFailed, o.tasks)
		return stop()
	}
	if err != nil {
		return errors.Join(err, stop())
	}
	printSummary(stdout, o, sum, svc)
	if o.statsJSON != "" {
		if err := writeStatsJSON(o.statsJSON, sum.engine); err != nil {
			return errors.Join(err, stop())
		}
	}
	if !o.exit {
		fmt.Fprintf(stdout, "\nMetrics: http://%s/metrics — serving until Ctrl-C\n", svc.Addr())
		<-ctx.Done()
	}
	err = stop()
	if sum.wrong > 0 {
		err = errors.Join(err, fmt.Errorf("%d tasks computed a wrong result", sum.wrong))
	}
	return err
}

type demoSummary struct {
	elapsed             time.Duration
	verified, wrong     int
	engine              lifecycle.Stats
	published, received uint64
}

// runTasks submits the tasks, shows progress, waits for them and for the bus
// to drain into the router.
func runTasks(ctx context.Context, o demoOptions, engine *lifecycle.Engine, svc *service, stdout io.Writer) (demoSummary, error) {
	start := time.Now()
	p := newProgress(stdout, o.tasks)
	handles := make([]*lifecycle.TaskHandle, 0, min(o.tasks, 1<<16))
	submitted := make(chan error, 1)
	go func() {
		defer close(submitted)
		for i := range o.tasks {
			if i > 0 && o.interval > 0 {
				select {
				case <-time.After(o.interval):
				case <-ctx.Done():
					submitted <- ctx.Err()
					return
				}
			}
			// Inputs 2..14: n^16 of every even n up to 14 fits in an int64.
			h, err := engine.Submit(ctx, lifecycle.TaskRequest{Workflow: o.workflow, Input: int64(2 * (1 + i%7))})
			if err != nil {
				submitted <- err
				return
			}
			handles = append(handles, h)
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case err := <-submitted:
			if err != nil {
				return demoSummary{}, fmt.Errorf("submit: %w", err)
			}
			if err := engine.Wait(ctx); err != nil {
				return demoSummary{}, fmt.Errorf("wait for tasks: %w", err)
			}
			done = true
		case <-tick.C:
			s := engine.Stats()
			p.update(int(s.TasksCompleted+s.TasksFailed), svc.router.Stats().Received, time.Since(start))
		case <-ctx.Done():
			<-submitted // Submit honours ctx: the submitting goroutine ends promptly
			return demoSummary{}, ctx.Err()
		}
	}
	// Every event is published; Flush returns once the bus has delivered
	// them, and the in-memory bus delivers only when the router has acked.
	if err := svc.Publisher().Flush(ctx); err != nil {
		return demoSummary{}, fmt.Errorf("flush the bus: %w", err)
	}
	// On a durable bus the flush means stored, not routed: wait until the
	// router has received what was published, or give up after a while.
	want := svc.Publisher().Published()
	for wait := time.Now(); svc.router.Stats().Received < want && time.Since(wait) < 30*time.Second; {
		select {
		case <-ctx.Done():
			return demoSummary{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	sum := demoSummary{elapsed: time.Since(start), engine: engine.Stats(), published: svc.Publisher().Published(), received: svc.router.Stats().Received}
	p.finish(int(sum.engine.TasksCompleted+sum.engine.TasksFailed), sum.received, sum.elapsed)
	for _, h := range handles {
		res, err := h.Wait(ctx)
		var taskErr *lifecycle.TaskError
		switch {
		case errors.As(err, &taskErr), errors.Is(err, lifecycle.ErrCancelled):
			// A failed or cancelled task; counted by the engine.
		case err != nil:
			return sum, err
		case res.Value == res.Expected:
			sum.verified++
		default:
			sum.wrong++
		}
	}
	return sum, nil
}

// progress draws a bar on a terminal and plain lines, at most one a second,
// elsewhere.
type progress struct {
	w        io.Writer
	total    int
	tty      bool
	lastLine time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(done int, events uint64, elapsed time.Duration) {
	if p.tty {
		const width = 30
		filled := width
		if p.total > 0 {
			filled = width * done / p.total
		}
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d tasks  %d events  %s events/s ",
			strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, p.total, events, rate(events, elapsed))
		return
	}
	if time.Since(p.lastLine) >= time.Second {
		p.lastLine = time.Now()
		fmt.Fprintf(p.w, "progress: %d/%d tasks, %d events routed\n", done, p.total, events)
	}
}

func (p *progress) finish(done int, events uint64, elapsed time.Duration) {
	if p.tty {
		p.update(done, events, elapsed)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "progress: %d/%d tasks, %d events routed (done)\n", done, p.total, events)
}

func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

func printSummary(w io.Writer, o demoOptions, s demoSummary, svc *service) {
	st := svc.router.Stats()
	fmt.Fprintf(w, "\nSextant demo: %d × %s, fail rate %g, seed %d, %d workers\n\n", o.tasks, o.workflow, o.failRate, o.seed, o.workers)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	e := s.engine
	fmt.Fprintf(tw, "tasks\tsubmitted %d\tcompleted %d\tfailed %d\tcancelled %d\n", e.TasksSubmitted, e.TasksCompleted, e.TasksFailed, e.TasksCancelled)
	fmt.Fprintf(tw, "step attempts\t%d\tsucceeded %d\tfailed %d\t\n", e.StepAttempts, e.StepsSucceeded, e.StepsFailed)
	fmt.Fprintf(tw, "retries\t%d\tmax retries reached %d\t\t\n", e.StepRetries, e.MaxRetriesReached)
	fmt.Fprintf(tw, "events\tpublished %d\trouted %d\tunmatched %d\tdropped %d\n", s.published, st.Routed, st.Unmatched, st.Undecoded+st.MissingFields)
	fmt.Fprintf(tw, "throughput\t%s events/s\tover %s\t\t\n", rate(s.received, s.elapsed), s.elapsed.Round(time.Microsecond))
	if q, ok := stepLatency(svc); ok {
		fmt.Fprintf(tw, "step execution (ms)\tp50 %s\tp95 %s\tp99 %s\t\n", fmtMS(q[0]), fmtMS(q[1]), fmtMS(q[2]))
	} else {
		fmt.Fprintf(tw, "step execution (ms)\tn/a (no %s data: not mapped, or no step ran)\t\t\t\n", stepLatencyMetric)
	}
	fmt.Fprintf(tw, "results\t%d verified\t%d wrong\t\t\n", s.verified, s.wrong)
	_ = tw.Flush()
	for line := range strings.Lines(buf.String()) { // rows with fewer cells are padded
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// writeStatsJSON writes the engine's counters, keyed by Stats field name,
// for tools that compare them with what the metrics pipeline saw.
func writeStatsJSON(path string, st lifecycle.Stats) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("--stats-json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--stats-json: %w", err)
	}
	return nil
}

func fmtMS(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}

// stepLatency returns p50, p95 and p99 of the step execution histogram,
// summed over all its series as sum by (le) would.
func stepLatency(svc *service) ([3]float64, bool) {
	var rm metricdata.ResourceMetrics
	if err := svc.snapshot.Collect(context.Background(), &rm); err != nil {
		return [3]float64{}, false
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if m.Name != stepLatencyMetric || !ok || len(h.DataPoints) == 0 {
				continue
			}
			bounds := h.DataPoints[0].Bounds
			counts := make([]uint64, len(bounds)+1)
			for _, dp := range h.DataPoints {
				for i, c := range dp.BucketCounts {
					counts[i] += c
				}
			}
			return [3]float64{
				histogramQuantile(0.50, bounds, counts),
				histogramQuantile(0.95, bounds, counts),
				histogramQuantile(0.99, bounds, counts),
			}, true
		}
	}
	return [3]float64{}, false
}

// histogramQuantile is PromQL's histogram_quantile over explicit buckets:
// find the bucket holding the rank and interpolate linearly inside it. counts
// are per bucket (not cumulative), the last one being +Inf.
func histogramQuantile(q float64, bounds []float64, counts []uint64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var cum uint64
	for i, c := range counts {
		if float64(cum+c) < rank || c == 0 {
			cum += c
			continue
		}
		if i == len(bounds) { // +Inf bucket: the highest finite bound, as Prometheus does
			return bounds[len(bounds)-1]
		}
		lower := 0.0
		if i > 0 {
			lower = bounds[i-1]
		} else if bounds[0] <= 0 {
			return bounds[0]
		}
		return lower + (bounds[i]-lower)*(rank-float64(cum))/float64(c)
	}
	return bounds[len(bounds)-1]
}

// engineLogger is the demo engine's logger. The engine logs every state
// transition, retry and failure of every task (seed 003's levels); the
// demo's progress display and summary say the same in short, so those
// records appear only when a level is asked for (--log-level or
// logging.level).
func engineLogger(logger *slog.Logger, cfg *config.Config, f serviceFlags) *slog.Logger {
	if *f.logLevel == "" && cfg.Logging.Level == "" {
		return slog.New(slog.DiscardHandler)
	}
	return logger.With("component", "engine")
}

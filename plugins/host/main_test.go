package host_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/internal/proctest"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

// pluginBin is the test plugin (plugins/internal/testplugin), built once.
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sextant-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if pluginBin, err = proctest.Build(dir, "sextant-testplugin", "../internal/testplugin"); err != nil {
		fmt.Fprintln(os.Stderr, "build the test plugin:", err)
		return 1
	}

	code := m.Run()

	// Every test shuts its host down: no plugin process may be left.
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: plugin processes left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: goroutines leaked:", err)
		code = 1
	}
	return code
}

// leftovers lists the processes that are children of this one or run
// the test plugin's binary.
func leftovers() []string {
	left, err := proctest.Leftovers(filepath.Dir(pluginBin))
	if err != nil {
		return []string{err.Error()}
	}
	out := make([]string, len(left))
	for i, p := range left {
		out[i] = p.String()
	}
	return out
}

// children lists this process's children.
func children(t *testing.T) []int {
	t.Helper()
	all, err := proctest.List()
	require.NoError(t, err)
	var out []int
	for _, p := range all {
		if p.PPID == os.Getpid() {
			out = append(out, p.PID)
		}
	}
	return out
}

// eventually polls cond every 20ms until it holds, failing the test after
// a generous deadline: tests wait for what they expect, never for a
// fixed time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logRecord is one record a recorder captured, its attributes flattened.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      *sync.Mutex
	records *[]logRecord
	attrs   []slog.Attr
	level   slog.Level
}

func newRecorder(level slog.Level) *recorder {
	return &recorder{mu: &sync.Mutex{}, records: &[]logRecord{}, level: level}
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{Level: rec.Level, Msg: rec.Message, Attrs: map[string]any{}}
	for _, a := range r.attrs {
		lr.Attrs[a.Key] = a.Value.Any()
	}
	rec.Attrs(func(a slog.Attr) bool {
		lr.Attrs[a.Key] = a.Value.Any()
		return true
	})
	r.mu.Lock()
	*r.records = append(*r.records, lr)
	r.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), attrs...)
	return &c
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// find returns the records for which match holds.
func (r *recorder) find(match func(logRecord) bool) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range *r.records {
		if match(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// env is one host under test with what it reports to.
type env struct {
	t        *testing.T
	host     *host.Host
	registry *exporters.Registry
	reader   *sdkmetric.ManualReader
	logs     *recorder
}

// options tunes newEnv.
type options struct {
	logLevel slog.Level
	registry *exporters.Registry
}

// fastConfig fills the timings tests want short, unless set.
func fastConfig(cfg host.Config) host.Config {
	if cfg.Restart.InitialBackoff == 0 {
		cfg.Restart.InitialBackoff = 20 * time.Millisecond
	}
	if cfg.Restart.MaxBackoff == 0 {
		cfg.Restart.MaxBackoff = 200 * time.Millisecond
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	return cfg
}

// newEnv builds a host for cfg (see fastConfig) and shuts it down when the
// test ends. It does not start it.
func newEnv(t *testing.T, cfg host.Config, opts ...options) *env {
	t.Helper()
	var o options
	if len(opts) > 0 {
		o = opts[0]
	}
	e := &env{t: t, registry: o.registry, reader: sdkmetric.NewManualReader(), logs: newRecorder(o.logLevel)}
	if e.registry == nil {
		e.registry = exporters.NewRegistry(exporters.RegistrySettings{})
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	h, err := host.New(fastConfig(cfg), host.Settings{
		Logger:        slog.New(e.logs),
		MeterProvider: mp,
		Registry:      e.registry,
		HostVersion:   "test",
	})
	require.NoError(t, err)
	e.host = h
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, h.Shutdown(ctx))
		require.NoError(t, mp.Shutdown(ctx))
	})
	return e
}

// start starts the host, which must succeed.
func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(e.t, e.host.Start(ctx))
}

// status returns the status of the plugin name.
func (e *env) status(name string) host.Status {
	e.t.Helper()
	for _, s := range e.host.Status() {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("no plugin %q in %+v", name, e.host.Status())
	return host.Status{}
}

// waitRunning waits until name is running, and returns its status.
func (e *env) waitRunning(name string) host.Status {
	e.t.Helper()
	var s host.Status
	eventually(e.t, "plugin "+name+" to run", func() bool {
		for _, st := range e.host.Status() {
			if st.Name == name && st.State == host.StateRunning {
				s = st
				return true
			}
		}
		return false
	})
	return s
}

// export exports snap in format through the registry.
func (e *env) export(format string, opts map[string]string) (string, exporters.ExportResult, error) {
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := e.registry.Export(ctx, testSnapshot(), exporters.ExportRequest{Format: format, Options: opts}, &buf)
	return buf.String(), res, err
}

// instance is an instance of the test plugin with config section cfg.
func instance(name string, cfg map[string]any) host.InstanceConfig {
	return host.InstanceConfig{Name: name, Path: pluginBin, Config: cfg}
}

// testSnapshot is a small snapshot with a counter, a gauge and a
// histogram.
func testSnapshot() *exporters.Snapshot {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	inf := []exporters.Bucket{{UpperBound: 0.1, Count: 2}, {UpperBound: 1, Count: 5}, {UpperBound: posInf, Count: 6}}
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "test-1"},
		Time:     t1,
		Families: []exporters.Family{
			{Name: "tasker.tasks.completed", PromName: "tasker_tasks_completed_total", Type: exporters.TypeCounter, Description: "Tasks completed", Series: []exporters.Series{
				{Labels: []exporters.Label{{Name: "namespace", Value: "billing"}}, Value: 42, Start: t0, Time: t1},
				{Labels: []exporters.Label{{Name: "namespace", Value: "say \"hi\""}}, Value: 7, Start: t0, Time: t1},
			}},
			{Name: "tasker.queue.depth", PromName: "tasker_queue_depth", Type: exporters.TypeGauge, Series: []exporters.Series{
				{Value: 3.5, Time: t1},
			}},
			{Name: "tasker.step.duration", PromName: "tasker_step_duration_seconds", Type: exporters.TypeHistogram, Unit: "s", Series: []exporters.Series{
				{Labels: []exporters.Label{{Name: "step", Value: "fetch"}}, Histogram: &exporters.Histogram{Count: 6, Sum: 2.25, Buckets: inf}, Start: t0, Time: t1},
			}},
		},
	}
}

var posInf = math.Inf(1)

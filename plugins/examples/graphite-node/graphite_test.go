// Package graphite_test tests the Node.js graphite plugin as Sextant runs
// it: launched through HashiCorp go-plugin's client with Sextant's
// handshake, over gRPC, with a real metrics snapshot. It needs node (20 or
// later) and the plugin's npm dependencies: run npm ci in
// plugins/examples/graphite-node. -short skips it.
package graphite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// pluginFile is the plugin, in this directory (go test's working
// directory).
const pluginFile = "sextant-graphite.js"

// fixHint says how to get what the tests need.
const fixHint = "install Node.js 20 or later (Debian: apt-get install nodejs npm), then run npm ci in plugins/examples/graphite-node"

// waitFor bounds waiting for a process to exit. It is no performance
// assertion: the plugin exits in milliseconds; this only keeps a broken
// plugin from hanging the test.
const waitFor = 20 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requirePlugin returns the plugin's absolute path, failing with how to
// fix it when node or the npm dependencies are missing.
func requirePlugin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the test launches the Node.js plugin")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH (%v): %s", err, fixHint)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@grpc", "grpc-js", "package.json")); err != nil {
		t.Fatalf("the plugin's npm dependencies are missing (%v): run npm ci in plugins/examples/graphite-node", err)
	}
	path, err := filepath.Abs(pluginFile)
	require.NoError(t, err)
	return path
}

// syncBuffer is a bytes.Buffer safe for the host logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// entries parses the host log: one hclog JSON object a line.
func (b *syncBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), "host log line %q", line)
		out = append(out, e)
	}
	return out
}

// find returns the first host log entry with message msg, or nil.
func (b *syncBuffer) find(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, e := range b.entries(t) {
		if e["@message"] == msg {
			return e
		}
	}
	return nil
}

// exporterPlugin is the plugin map's entry, as the host has it: the
// client side of sextant.plugin.v1.Exporter.
type exporterPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

var _ plugin.GRPCPlugin = exporterPlugin{}

func (exporterPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host serves no plugin")
}

func (exporterPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return pluginv1.NewExporterClient(conn), nil
}

// launched is one plugin process and the host's view of it.
type launched struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	exp    pluginv1.ExporterClient
	log    *syncBuffer
	pid    int
	socket string
}

// launch starts cmd as Sextant starts a plugin and dispenses the exporter.
func launch(t testing.TB, cmd *exec.Cmd) *launched {
	t.Helper()
	logs := &syncBuffer{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  pluginv1.ProtocolVersion,
			MagicCookieKey:   pluginv1.MagicCookieKey,
			MagicCookieValue: pluginv1.MagicCookieValue,
		},
		Plugins:          plugin.PluginSet{pluginv1.PluginName: exporterPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin", Output: logs, JSONFormat: true, Level: hclog.Trace,
		}),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(pluginv1.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(pluginv1.MaxMessageBytes))},
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	require.NoError(t, err, "launch the plugin; host log:\n%s", logs)
	raw, err := rpc.Dispense(pluginv1.PluginName)
	require.NoError(t, err)
	rc := client.ReattachConfig()
	require.NotNil(t, rc)
	require.Equal(t, "unix", rc.Addr.Network(), "go-plugin's rule off Windows: a Unix socket")
	return &launched{client: client, rpc: rpc, exp: raw.(pluginv1.ExporterClient), log: logs, pid: rc.Pid, socket: rc.Addr.String()}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNodeCheck(t *testing.T) {
	path := requirePlugin(t)
	out, err := exec.Command("node", "--check", path).CombinedOutput()
	require.NoError(t, err, "node --check:\n%s", out)
}

// TestNodeUnit runs the plugin's own unit tests (npm test).
func TestNodeUnit(t *testing.T) {
	requirePlugin(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hung test must not hang go test
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "--test", "test/").CombinedOutput()
	require.NoError(t, err, "node --test:\n%s", out)
	require.Contains(t, string(out), "# fail 0")
}

func TestRunByHand(t *testing.T) {
	path := requirePlugin(t)
	cmd := exec.Command(path)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, pluginv1.MagicCookieKey+"=") })
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "Sextant starts it itself")
	require.Contains(t, stderr.String(), "plugins:\n  instances:\n")
}

func TestPlugin(t *testing.T) {
	path := requirePlugin(t)
	p := launch(t, exec.Command(path)) // the file itself, as plugins.instances[].path names it

	t.Run("describe", func(t *testing.T) {
		resp, err := p.exp.Describe(callCtx(t), &pluginv1.DescribeRequest{ProtocolVersion: pluginv1.ProtocolVersion, HostVersion: "test"})
		require.NoError(t, err)
		require.Equal(t, "graphite", resp.GetName())
		require.Equal(t, "1.0.0", resp.GetVersion())
		require.NotEmpty(t, resp.GetDescription())
		require.Equal(t, []string{"graphite"}, resp.GetFormats())
		require.Equal(t, []pluginv1.Capability{pluginv1.Capability_CAPABILITY_CONFIGURE, pluginv1.Capability_CAPABILITY_EXPORT_CALLBACKS}, resp.GetCapabilities())
	})

	t.Run("configure", func(t *testing.T) {
		tests := []struct {
			name  string
			json  string
			paths []string
		}{
			{name: "prefix type", json: `{"prefix": 5}`, paths: []string{"prefix"}},
			{name: "prefix characters", json: `{"prefix": "a b"}`, paths: []string{"prefix"}},
			{name: "prefix empty node", json: `{"prefix": "a..b"}`, paths: []string{"prefix"}},
			{name: "address", json: `{"address": "carbon"}`, paths: []string{"address"}},
			{name: "address port", json: `{"address": "carbon:99999"}`, paths: []string{"address"}},
			{name: "timeout type", json: `{"timeout_ms": "5s"}`, paths: []string{"timeout_ms"}},
			{name: "timeout range", json: `{"timeout_ms": 0}`, paths: []string{"timeout_ms"}},
			{name: "unknown key", json: `{"host": "x"}`, paths: []string{"host"}},
			{name: "every problem", json: `{"prefix": true, "timeout_ms": 1.5, "url": "x"}`, paths: []string{"prefix", "timeout_ms", "url"}},
			{name: "not an object", json: `["prefix"]`, paths: []string{""}},
			{name: "not JSON", json: `{prefix`, paths: []string{""}},
			{name: "good", json: `{"prefix": "sextant.test", "timeout_ms": 10000}`},
			{name: "good again after nulls", json: `{"prefix": "sextant.test", "address": null}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: []byte(tt.json)})
				require.NoError(t, err)
				var paths []string
				for _, fe := range resp.GetErrors() {
					require.NotEmpty(t, fe.GetMessage(), "path %q", fe.GetPath())
					paths = append(paths, fe.GetPath())
				}
				require.Equal(t, tt.paths, paths, "errors: %v", resp.GetErrors())
			})
		}
		// A rejected section leaves the accepted one in effect.
		resp, err := p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"prefix": "other", "bogus": 1}`)})
		require.NoError(t, err)
		require.Len(t, resp.GetErrors(), 1)
	})

	s := sdkSnapshot(t)
	req := wire.ExportRequest(s, exporters.ExportRequest{ID: "019a1b2c-3d4e-7f00-8000-000000000001", Format: "graphite", Target: "on_demand"})

	t.Run("export", func(t *testing.T) {
		resp, err := p.exp.Export(callCtx(t), req)
		require.NoError(t, err)
		require.Equal(t, "text/plain; charset=utf-8", resp.GetContentType())
		require.Empty(t, resp.GetDestination())
		want, series := expectedLines(s, "sextant.test")
		require.Equal(t, int64(series), resp.GetSeries())
		got := parseLines(t, string(resp.GetData()))
		require.Equal(t, len(want), len(got), "lines:\n%s", resp.GetData())
		for key, w := range want {
			g, ok := got[key]
			require.True(t, ok, "no line %q in:\n%s", key, resp.GetData())
			require.Equal(t, w.ts, g.ts, "timestamp of %q", key)
			require.Equal(t, w.value, g.value, "value of %q: want %v, got %v", key, w.value, g.value)
		}
	})

	t.Run("sanitised labels", func(t *testing.T) {
		resp, err := p.exp.Export(callCtx(t), req)
		require.NoError(t, err)
		ts := s.Families[0].Series[0].Time.Unix()
		// The label name becomes exported_name, empty values are left
		// out, and only printable ASCII but ';' (and a leading '~') stays.
		line := fmt.Sprintf("sextant.test.labels_odd;exported_name=n1;path=a_b_c;tilde=_x;unicode=_n__ 2 %d\n", ts)
		require.Contains(t, string(resp.GetData()), line)
	})

	t.Run("carbon", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		received := make(chan []byte, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				received <- nil
				return
			}
			defer conn.Close()
			data, _ := io.ReadAll(conn)
			received <- data
		}()
		addr := ln.Addr().String()
		cfg, err := p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: fmt.Appendf(nil, `{"prefix": "sextant.test", "address": %q}`, addr)})
		require.NoError(t, err)
		require.Empty(t, cfg.GetErrors())

		resp, err := p.exp.Export(callCtx(t), req)
		require.NoError(t, err)
		require.Equal(t, addr, resp.GetDestination())
		require.Equal(t, string(resp.GetData()), string(<-received), "Carbon receives what the export returns")
		require.NoError(t, ln.Close())

		// The listener is gone: the export fails as UNAVAILABLE.
		_, err = p.exp.Export(callCtx(t), req)
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), "graphite: send to "+addr)

		cfg, err = p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"prefix": "sextant.test"}`)})
		require.NoError(t, err)
		require.Empty(t, cfg.GetErrors())
	})

	t.Run("errors", func(t *testing.T) {
		bad := wire.ExportRequest(s, exporters.ExportRequest{ID: "x", Format: "csv"})
		_, err := p.exp.Export(callCtx(t), bad)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), `unknown format "csv"`)

		bad = wire.ExportRequest(s, exporters.ExportRequest{ID: "x", Format: "graphite", Options: map[string]string{"pretty": "true"}})
		_, err = p.exp.Export(callCtx(t), bad)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), `unknown option "pretty"`)

		_, err = p.exp.CacheSynced(callCtx(t), &pluginv1.CacheSyncedRequest{})
		require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	})

	t.Run("empty snapshot", func(t *testing.T) {
		resp, err := p.exp.Export(callCtx(t), wire.ExportRequest(&exporters.Snapshot{Time: time.Now()}, exporters.ExportRequest{ID: "e", Format: "graphite"}))
		require.NoError(t, err)
		require.Empty(t, resp.GetData())
		require.Zero(t, resp.GetSeries())
	})

	t.Run("callbacks", func(t *testing.T) {
		_, err := p.exp.ExportRequested(callCtx(t), &pluginv1.ExportRequestedRequest{ExportId: "cb-1", Format: "json", Target: "scrape"})
		require.NoError(t, err)
		_, err = p.exp.ExportCompleted(callCtx(t), &pluginv1.ExportCompletedRequest{ExportId: "cb-1", Format: "json", Exporter: "json", Bytes: 10, Series: 2, DurationNanos: 1500000})
		require.NoError(t, err)
	})

	t.Run("health", func(t *testing.T) {
		require.NoError(t, p.rpc.Ping())
	})

	p.client.Kill()
	require.True(t, p.client.Exited())
	requireGone(t, p.pid, p.socket)

	t.Run("host log", func(t *testing.T) {
		// The plugin's stderr lines arrive as structured entries of the
		// host's logger, named after the plugin.
		e := p.log.find(t, "configured")
		require.NotNil(t, e, "host log:\n%s", p.log)
		require.Equal(t, "info", e["@level"])
		require.Equal(t, "plugin."+pluginFile, e["@module"])
		require.Equal(t, "sextant.test", e["prefix"])
		require.InDelta(t, 10000, e["timeout_ms"], 0)

		e = p.log.find(t, "export completed")
		require.NotNil(t, e, "host log:\n%s", p.log)
		require.Equal(t, "cb-1", e["export_id"])
		require.InDelta(t, 1.5, e["duration_ms"], 1e-9)

		// Nothing went wrong as the host sees it: no stdio or broker
		// complaint, a graceful stop (exit status 0, no forced kill).
		for _, e := range p.log.entries(t) {
			require.NotContains(t, []string{"warn", "error"}, e["@level"], "host log entry %v", e)
		}
		require.NotNil(t, p.log.find(t, "plugin exited"), "a graceful exit; host log:\n%s", p.log)
		require.NotNil(t, p.log.find(t, "stopping: Sextant asked the plugin to shut down"))
	})
}

// TestKill checks that the host's Kill leaves nothing behind, with the
// plugin started as "node <file>".
func TestKill(t *testing.T) {
	path := requirePlugin(t)
	p := launch(t, exec.Command("node", path))
	require.NoError(t, p.rpc.Ping())
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	require.NoError(t, err)
	require.Contains(t, string(cmdline), pluginFile)
	require.Contains(t, children(t), p.pid)
	_, err = os.Stat(p.socket)
	require.NoError(t, err, "the plugin's socket")

	p.client.Kill()
	requireGone(t, p.pid, p.socket)
	require.NotNil(t, p.log.find(t, "plugin exited"), "a graceful exit; host log:\n%s", p.log)
}

// TestSignals checks the plugin's answers to signals: SIGTERM stops it;
// an interrupt, which reaches Sextant and its plugins alike on Ctrl-C,
// leaves it serving until the host stops it, and a second one stops it.
func TestSignals(t *testing.T) {
	path := requirePlugin(t)
	const interrupted = "interrupted: serving until Sextant stops the plugin (a second interrupt stops it now)"
	tests := []struct {
		name    string
		signals []syscall.Signal
		exits   bool
		reason  string
	}{
		{name: "SIGTERM", signals: []syscall.Signal{syscall.SIGTERM}, exits: true, reason: "stopping: SIGTERM"},
		{name: "one SIGINT", signals: []syscall.Signal{syscall.SIGINT}},
		{name: "two SIGINTs", signals: []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, exits: true, reason: "stopping: SIGINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := launch(t, exec.Command(path))
			proc, err := os.FindProcess(p.pid)
			require.NoError(t, err)
			for i, sig := range tt.signals {
				require.NoError(t, proc.Signal(sig))
				if i == 0 && len(tt.signals) > 1 {
					// The plugin has heard the first once it logs it.
					require.Eventually(t, func() bool { return p.log.find(t, interrupted) != nil }, waitFor, 10*time.Millisecond)
				}
			}
			if !tt.exits {
				require.Eventually(t, func() bool { return p.log.find(t, interrupted) != nil }, waitFor, 10*time.Millisecond)
				_, err := p.exp.Describe(callCtx(t), &pluginv1.DescribeRequest{ProtocolVersion: 1})
				require.NoError(t, err, "still serving after one interrupt")
				p.client.Kill()
				requireGone(t, p.pid, p.socket)
				return
			}
			require.Eventually(t, p.client.Exited, waitFor, 10*time.Millisecond)
			requireGone(t, p.pid, p.socket)
			require.NotNil(t, p.log.find(t, tt.reason), "host log:\n%s", p.log)
			e := p.log.find(t, "plugin process exited")
			require.NotNil(t, e)
			require.Equal(t, "info", e["@level"], "exit status 0: %v", e)
		})
	}
}

// TestHostGoesAway starts the plugin from a shell standing in for Sextant
// and kills the shell: the orphaned plugin must notice and exit.
func TestHostGoesAway(t *testing.T) {
	path := requirePlugin(t)
	host := exec.Command("sh", "-c", `"$0" & echo "pid $!"; wait`, path)
	host.Env = append(os.Environ(), pluginv1.MagicCookieKey+"="+pluginv1.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := host.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	host.Stderr = &stderr
	require.NoError(t, host.Start())
	t.Cleanup(func() { _ = host.Process.Kill() })

	// Both the shell's echo and the plugin's handshake come on stdout.
	lines := bufio.NewScanner(stdout)
	pid, handshake := 0, ""
	for (pid == 0 || handshake == "") && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "pid "); ok {
			pid, err = strconv.Atoi(rest)
			require.NoError(t, err)
		} else {
			handshake = lines.Text()
		}
	}
	require.NotZero(t, pid, "stderr:\n%s", stderr.String())
	parts := strings.Split(handshake, "|")
	require.Len(t, parts, 5, "handshake %q", handshake)
	require.Equal(t, []string{"1", "1", "unix"}, parts[:3])
	require.Equal(t, "grpc", parts[4])

	require.NoError(t, host.Process.Kill())
	_ = host.Wait() // the shell's exit; the plugin still holds stdout
	// The plugin's stdout closes when it exits.
	for lines.Scan() {
		t.Errorf("unexpected stdout line %q", lines.Text())
	}
	requireGone(t, pid, parts[3])
	require.Contains(t, stderr.String(), `"@message":"stopping: Sextant went away"`)
}

// requireGone checks that the process pid has exited (a zombie left for
// an init that does not reap counts as exited), that no child of this
// test process is left, and that the socket file was removed.
func requireGone(t *testing.T, pid int, socket string) {
	t.Helper()
	require.Eventually(t, func() bool {
		state, err := procState(pid)
		return err != nil || state == "Z"
	}, waitFor, 10*time.Millisecond, "process %d still runs", pid)
	require.Empty(t, children(t), "processes left behind")
	_, err := os.Stat(socket)
	require.ErrorIs(t, err, os.ErrNotExist, "the socket %s is left behind", socket)
}

// procState reads a process's state letter from /proc/<pid>/stat.
func procState(pid int) (string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return fields[0], nil
}

// children lists the live child processes of this test process.
func children(t *testing.T) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	require.NoError(t, err)
	self := os.Getpid()
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited since the listing
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) && fields[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// sdkSnapshot reads a snapshot from a real MeterProvider: counters (one
// past 2^53), an up-down counter, gauges with NaN and infinities (which
// Graphite cannot take), histograms, and labels Graphite must not see
// as they are.
func sdkSnapshot(t *testing.T) *exporters.Snapshot {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "sextant"))))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	ctx := context.Background()
	m := mp.Meter("github.com/sextant-telemetry/sextant/router")
	attrs := func(kv ...string) metric.MeasurementOption {
		var as []attribute.KeyValue
		for i := 0; i+1 < len(kv); i += 2 {
			as = append(as, attribute.String(kv[i], kv[i+1]))
		}
		return metric.WithAttributes(as...)
	}

	requests, err := m.Float64Counter("tasker.tasks.requests")
	require.NoError(t, err)
	requests.Add(ctx, 3.5, attrs("queue", "default", "status", "ok"))
	requests.Add(ctx, 0.1, attrs("queue", "default", "status", "ok"))
	requests.Add(ctx, 1, attrs("queue", "default", "status", "failed"))

	events, err := m.Int64Counter("events.seen")
	require.NoError(t, err)
	events.Add(ctx, 1<<60+1)

	depth, err := m.Int64UpDownCounter("queue.depth")
	require.NoError(t, err)
	depth.Add(ctx, -4, attrs("queue", "steps"))

	util, err := m.Float64Gauge("pool.utilization", metric.WithUnit("1"))
	require.NoError(t, err)
	tenth, fifth := 0.1, 0.2 // variables: a constant 0.1+0.2 would be exactly 0.3
	util.Record(ctx, tenth+fifth, attrs("pool", "bus"))
	util.Record(ctx, 1e-7, attrs("pool", "tiny"))
	util.Record(ctx, math.NaN(), attrs("pool", "nan"))
	util.Record(ctx, math.Inf(1), attrs("pool", "inf"))
	util.Record(ctx, math.Inf(-1), attrs("pool", "-inf"))

	odd, err := m.Int64Gauge("labels.odd")
	require.NoError(t, err)
	odd.Record(ctx, 2, attrs("name", "n1", "path", "a b;c", "tilde", "~x", "empty", "", "unicode", "ünï😀"))

	duration, err := m.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"),
		metric.WithExplicitBucketBoundaries(0.5, 1, 10, 100))
	require.NoError(t, err)
	for _, v := range []float64{0.25, 0.5, 5, 5, 50, 500, 1e3} {
		duration.Record(ctx, v, attrs("step", "fetch"))
	}
	duration.Record(ctx, 7.125, attrs("step", "parse"))

	size, err := m.Int64Histogram("payload.size", metric.WithUnit("By"))
	require.NoError(t, err)
	size.Record(ctx, 300)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	s := exporters.FromResourceMetrics(&rm, exporters.ReadOptions{})
	require.Len(t, s.Families, 7, "families: %+v", s.Families)
	return s
}

// point is one Graphite line's value and time.
type point struct {
	value float64
	ts    int64
}

// expectedLines computes what the plugin must write for s, by the layout
// README.md documents, keyed by path and tags in the canonical form
// parseLines gives; and the number of series written.
func expectedLines(s *exporters.Snapshot, prefix string) (map[string]point, int) {
	want := map[string]point{}
	series := 0
	for _, f := range s.Families {
		base := prefix + "." + f.PromName
		for _, sr := range f.Series {
			ts := sr.Time.Unix()
			if h := sr.Histogram; h != nil {
				for _, b := range h.Buckets {
					want[base+"_bucket"+tags(sr.Labels, exporters.Label{Name: "le", Value: formatFloat(b.UpperBound)})] = point{float64(b.Count), ts}
				}
				want[base+"_sum"+tags(sr.Labels)] = point{h.Sum, ts}
				want[base+"_count"+tags(sr.Labels)] = point{float64(h.Count), ts}
				series++
				continue
			}
			if math.IsNaN(sr.Value) || math.IsInf(sr.Value, 0) {
				continue
			}
			want[base+tags(sr.Labels)] = point{sr.Value, ts}
			series++
		}
	}
	return want, series
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// tags renders labels as Graphite tags by README.md's rules: a label
// with an empty value is left out; names keep printable ASCII but ;!^=
// and the label "name" becomes exported_name; values keep printable
// ASCII but ';', and lose a leading '~'; sorted by name. (The test's
// labels do not collide once sanitised.)
func tags(labels []exporters.Label, extra ...exporters.Label) string {
	var pairs []exporters.Label
	for _, l := range append(slices.Clone(labels), extra...) {
		if l.Value == "" {
			continue
		}
		name := strings.Map(func(r rune) rune {
			if r < 0x21 || r > 0x7e || strings.ContainsRune(";!^=", r) {
				return '_'
			}
			return r
		}, l.Name)
		if name == "name" {
			name = "exported_name"
		}
		value := strings.Map(func(r rune) rune {
			if r < 0x21 || r > 0x7e || r == ';' {
				return '_'
			}
			return r
		}, l.Value)
		if strings.HasPrefix(value, "~") {
			value = "_" + value[1:]
		}
		pairs = append(pairs, exporters.Label{Name: name, Value: value})
	}
	slices.SortFunc(pairs, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) })
	var out strings.Builder
	for _, p := range pairs {
		out.WriteString(";" + p.Name + "=" + p.Value)
	}
	return out.String()
}

// parseLines reads Graphite plaintext lines back, keyed by path and tags
// with le bounds written as Go writes floats.
func parseLines(t *testing.T, text string) map[string]point {
	t.Helper()
	require.True(t, strings.HasSuffix(text, "\n"), "the text ends with a newline")
	got := map[string]point{}
	for line := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		fields := strings.Split(line, " ")
		require.Len(t, fields, 3, "line %q", line)
		parts := strings.Split(fields[0], ";")
		keys := make([]string, 0, len(parts)-1)
		for i, tag := range parts[1:] {
			k, v, ok := strings.Cut(tag, "=")
			require.True(t, ok, "tag %q of line %q", tag, line)
			keys = append(keys, k)
			require.NotEmpty(t, v, "line %q", line)
			if k == "le" {
				bound, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err, "line %q", line)
				parts[i+1] = "le=" + formatFloat(bound)
			}
		}
		require.True(t, slices.IsSorted(keys), "tags sorted by key in %q", line)
		value, err := strconv.ParseFloat(fields[1], 64)
		require.NoError(t, err, "line %q", line)
		ts, err := strconv.ParseInt(fields[2], 10, 64)
		require.NoError(t, err, "line %q", line)
		key := strings.Join(parts, ";")
		_, dup := got[key]
		require.False(t, dup, "line %q twice", key)
		got[key] = point{value, ts}
	}
	return got
}

// FuzzConfigure sends arbitrary sections to the running plugin: it must
// answer every one, and every problem's path must be the whole section
// ("") or one of the section's own keys.
func FuzzConfigure(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"prefix": "a.b", "address": "[::1]:2003", "timeout_ms": 5}`, `{"prefix": "a..b"}`,
		`{"address": "x:0"}`, `{"timeout_ms": 1e400}`, `{"x": {"y": [1]}}`, `[]`, `null`, `"s"`, `{`, ``,
		`{"prefix": "\u00e9"}`, `{"__proto__": 1}`, `{"constructor": "x"}`,
	} {
		f.Add([]byte(seed))
	}
	p := launch(f, exec.Command(requirePlugin(f)))
	f.Fuzz(func(t *testing.T, section []byte) {
		resp, err := p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: section})
		require.NoError(t, err)
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(section, &keys)
		for _, fe := range resp.GetErrors() {
			require.NotEmpty(t, fe.GetMessage())
			if fe.GetPath() != "" {
				_, ok := keys[fe.GetPath()]
				require.True(t, ok, "path %q is no key of %s", fe.GetPath(), section)
			}
		}
		// Leave the plugin unconfigured for the next input.
		resp, err = p.exp.Configure(callCtx(t), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{}`)})
		require.NoError(t, err)
		require.Empty(t, resp.GetErrors())
	})
}

// FuzzExportLabels exports one series with an arbitrary label: the line
// must be one Graphite 1.1 accepts, whatever the label holds.
func FuzzExportLabels(f *testing.F) {
	for _, seed := range [][2]string{
		{"queue", "default"}, {"name", "x"}, {"a;b", "c;d"}, {"k", "~v"}, {"k", ""}, {"", "v"},
		{"sp ace", "tab\tnew\nline"}, {"ü", "😀"}, {"le", "1"}, {"k=", "v=!^"},
	} {
		f.Add(seed[0], seed[1])
	}
	p := launch(f, exec.Command(requirePlugin(f)))
	now := time.Unix(1795600800, 0)
	f.Fuzz(func(t *testing.T, name, value string) {
		if !utf8Valid(name, value) {
			t.Skip("protobuf strings are UTF-8")
		}
		s := &exporters.Snapshot{Time: now, Families: []exporters.Family{{
			Name: "fz", PromName: "fz", Type: exporters.TypeGauge,
			Series: []exporters.Series{{Labels: []exporters.Label{{Name: name, Value: value}}, Value: 1, Time: now}},
		}}}
		resp, err := p.exp.Export(callCtx(t), wire.ExportRequest(s, exporters.ExportRequest{ID: "f", Format: "graphite"}))
		require.NoError(t, err)
		line := string(resp.GetData())
		require.True(t, strings.HasSuffix(line, " 1 1795600800\n"), "line %q", line)
		path := strings.TrimSuffix(line, " 1 1795600800\n")
		require.NotContains(t, path, " ")
		parts := strings.Split(path, ";")
		require.Equal(t, "fz", parts[0])
		if value == "" {
			require.Len(t, parts, 1, "an empty value is no tag: %q", line)
			return
		}
		require.Len(t, parts, 2, "line %q", line)
		k, v, ok := strings.Cut(parts[1], "=")
		require.True(t, ok, "line %q", line)
		require.NotEmpty(t, k)
		require.NotEmpty(t, v)
		require.NotEqual(t, "name", k, "Graphite's own tag")
		require.False(t, strings.HasPrefix(v, "~"), "line %q", line)
		for _, r := range k + v {
			require.True(t, r >= 0x21 && r <= 0x7e, "character %q in %q", r, line)
		}
		require.False(t, strings.ContainsAny(k, ";!^="), "tag name %q", k)
	})
}

func utf8Valid(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// BenchmarkExport measures one export of 10,000 series (a quarter of them
// histograms with 11 buckets) through the plugin, protocol included.
func BenchmarkExport(b *testing.B) {
	p := launch(b, exec.Command(requirePlugin(b)))
	now := time.Now()
	bounds := []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}
	gauge := exporters.Family{Name: "g", PromName: "bench_gauge", Type: exporters.TypeGauge}
	hist := exporters.Family{Name: "h", PromName: "bench_duration_milliseconds", Type: exporters.TypeHistogram}
	for i := range 10000 {
		labels := []exporters.Label{{Name: "queue", Value: "q" + strconv.Itoa(i%50)}, {Name: "worker", Value: strconv.Itoa(i)}}
		if i%4 != 0 {
			gauge.Series = append(gauge.Series, exporters.Series{Labels: labels, Value: float64(i) / 3, Time: now})
			continue
		}
		h := &exporters.Histogram{Count: uint64(len(bounds) + 1), Sum: float64(i)}
		for j, ub := range append(slices.Clone(bounds), math.Inf(1)) {
			h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: ub, Count: uint64(j + 1)})
		}
		hist.Series = append(hist.Series, exporters.Series{Labels: labels, Histogram: h, Time: now})
	}
	req := wire.ExportRequest(&exporters.Snapshot{Time: now, Families: []exporters.Family{hist, gauge}},
		exporters.ExportRequest{ID: "bench", Format: "graphite"})
	ctx := b.Context()
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		resp, err := p.exp.Export(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		bytes = int64(len(resp.GetData()))
	}
	b.ReportMetric(float64(bytes), "bytes/export")
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "series/s")
}

package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// buildTinyPlugin builds testdata/tinyplugin into a temporary directory.
func buildTinyPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "sextant-tiny")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/tinyplugin").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// cleanEnv is the test's environment without the plugin variables, so
// that the plugin does not think Sextant launched it.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, pluginv1.MagicCookieKey+"=") && !strings.HasPrefix(kv, EnvListen+"=") && !strings.HasPrefix(kv, "PLUGIN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestPluginBinary(t *testing.T) {
	bin := buildTinyPlugin(t)

	t.Run("go-plugin handshake", func(t *testing.T) {
		hostLog := &syncBuffer{}
		cmd := exec.Command(bin)
		cmd.Env = cleanEnv()
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  handshake,
			Plugins:          plugin.PluginSet{pluginv1.PluginName: &grpcPlugin{}},
			Cmd:              cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			Logger:           hclog.New(&hclog.LoggerOptions{Output: hostLog, Level: hclog.Debug, JSONFormat: true}),
			GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
				grpc.MaxCallRecvMsgSize(pluginv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(pluginv1.MaxMessageBytes))},
		})
		defer client.Kill()
		rpc, err := client.Client()
		require.NoError(t, err)
		raw, err := rpc.Dispense(pluginv1.PluginName)
		require.NoError(t, err)
		ex, ok := raw.(pluginv1.ExporterClient)
		require.True(t, ok, "dispensed %T", raw)

		ctx := t.Context()
		d, err := ex.Describe(ctx, &pluginv1.DescribeRequest{ProtocolVersion: pluginv1.ProtocolVersion})
		require.NoError(t, err)
		require.Equal(t, "tiny", d.GetName())
		require.Equal(t, []pluginv1.Capability{pluginv1.Capability_CAPABILITY_CONFIGURE}, d.GetCapabilities())

		cr, err := ex.Configure(ctx, &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"greeting":"hello","x":1}`)})
		require.NoError(t, err)
		require.Len(t, cr.GetErrors(), 1)
		require.Equal(t, "x", cr.GetErrors()[0].GetPath())
		cr, err = ex.Configure(ctx, &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"greeting":"hello"}`)})
		require.NoError(t, err)
		require.Empty(t, cr.GetErrors())

		res, err := ex.Export(ctx, wire.ExportRequest(testSnapshot(), exporters.ExportRequest{ID: "e-1", Format: "tiny", Target: "on_demand"}))
		require.NoError(t, err)
		require.Equal(t, "hello e-1\ntasker_queue_depth 2\ntasker_step_duration_milliseconds 1\ntasker_tasks_requests_total 1\n", string(res.GetData()))
		require.Equal(t, int64(4), res.GetSeries())

		// Kill waits for the plugin's stderr to be read: every log line has
		// been re-logged by then.
		client.Kill()
		var found bool
		for line := range strings.Lines(hostLog.String()) {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), "host log line %q", line)
			if rec["@message"] == "tiny configured" {
				found = true
				require.Equal(t, "info", rec["@level"], "re-logged at the plugin's level")
				require.Equal(t, "sextant-tiny", rec["@module"], "named after the plugin")
				require.Equal(t, "hello", rec["greeting"])
				require.EqualValues(t, 42, rec["answer"], "attributes keep their JSON types")
			}
		}
		require.True(t, found, "the plugin's log line reached the host as a structured record:\n%s", hostLog.String())
	})

	t.Run("remote mode", func(t *testing.T) {
		cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
		cmd.Env = cleanEnv()
		stderrPipe, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill() }()

		// The first line with an address says where it serves.
		lines := bufio.NewScanner(stderrPipe)
		var addr string
		for addr == "" && lines.Scan() {
			var rec map[string]any
			if json.Unmarshal(lines.Bytes(), &rec) == nil {
				addr, _ = rec["address"].(string)
			}
		}
		require.NotEmpty(t, addr, "no address logged")
		rest := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(stderrPipe)
			rest <- string(b)
		}()

		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		ctx := t.Context()
		h, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: pluginv1.Exporter_ServiceDesc.ServiceName})
		require.NoError(t, err)
		require.Equal(t, grpc_health_v1.HealthCheckResponse_SERVING, h.GetStatus())
		ex := pluginv1.NewExporterClient(conn)
		d, err := ex.Describe(ctx, &pluginv1.DescribeRequest{})
		require.NoError(t, err)
		require.Equal(t, "tiny", d.GetName())
		res, err := ex.Export(ctx, wire.ExportRequest(testSnapshot(), exporters.ExportRequest{ID: "e-2", Format: "tiny"}))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(res.GetData()), " e-2\n"), "%q", res.GetData())

		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait(), "a clean stop exits 0")
		require.Contains(t, <-rest, `"@message":"stopping"`)
	})

	t.Run("listen from the environment", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = cleanEnv(EnvListen + "=127.0.0.1:0")
		stderrPipe, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill() }()
		line, err := bufio.NewReader(stderrPipe).ReadString('\n')
		require.NoError(t, err)
		require.Contains(t, line, `"address":"127.0.0.1:`)
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		require.NoError(t, cmd.Wait())
	})

	t.Run("run by hand", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = cleanEnv()
		var stderr, stdout bytes.Buffer
		cmd.Stderr, cmd.Stdout = &stderr, &stdout
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, 2, exit.ExitCode())
		require.Empty(t, stdout.String())
		require.Contains(t, stderr.String(), "sextant-tiny is a Sextant exporter plugin: tiny 0.1.0, formats tiny.")
		require.Contains(t, stderr.String(), "--listen 127.0.0.1:7777")
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	tests := []struct {
		name     string
		e        Exporter
		args     []string
		wantCode int
		wantOut  string
		wantLog  string
	}{
		{name: "no listen address", e: &fake{info: testInfo}, args: []string{"sextant-test"}, wantCode: 2, wantOut: "sextant-test is a Sextant exporter plugin: test 1.0.0, formats text, other.\nA test plugin."},
		{name: "unknown flag", e: &fake{info: testInfo}, args: []string{"p", "--port", "1"}, wantCode: 2, wantOut: "flag provided but not defined: -port"},
		{name: "extra arguments", e: &fake{info: testInfo}, args: []string{"p", "serve"}, wantCode: 2, wantOut: "p: unexpected arguments: serve"},
		{name: "help", e: &fake{info: testInfo}, args: []string{"p", "-h"}, wantCode: 0, wantOut: "serve the plugin protocol on plain gRPC"},
		{name: "invalid info", e: &fake{info: Info{Name: "Bad"}}, args: []string{"p"}, wantCode: 1, wantOut: "p: the plugin cannot start, its Info is invalid:\nInfo.Name"},
		{name: "bad address", e: &fake{info: testInfo}, args: []string{"p", "--listen", "not-an-address"}, wantCode: 1, wantLog: `"error":"listen on not-an-address: listen tcp: address not-an-address: missing port in address"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			logs := &syncBuffer{}
			code := run(t.Context(), tt.e, tt.args, noEnv, &out, newLogger(logs, slog.LevelInfo))
			require.Equal(t, tt.wantCode, code, "output: %s", out.String())
			require.Contains(t, out.String(), tt.wantOut)
			require.Contains(t, logs.String(), tt.wantLog)
		})
	}
}

func TestServeListenerStops(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- serveListener(ctx, newServer(&fake{info: testInfo}, slog.New(slog.DiscardHandler)), lis, newLogger(logs, slog.LevelInfo))
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	d, err := pluginv1.NewExporterClient(conn).Describe(t.Context(), &pluginv1.DescribeRequest{})
	require.NoError(t, err)
	require.Equal(t, "test", d.GetName())
	cancel()
	require.NoError(t, <-done)
	_, err = pluginv1.NewExporterClient(conn).Describe(t.Context(), &pluginv1.DescribeRequest{})
	require.Error(t, err, "the server is stopped")
	require.False(t, errors.Is(err, context.Canceled))
	require.Contains(t, logs.String(), `"@message":"serving the plugin protocol on plain gRPC"`)
}

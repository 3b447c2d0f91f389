package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("", nil)}})
	e.start()

	s := e.waitRunning("testplugin")
	require.Equal(t, "1.0.0", s.Version)
	require.Equal(t, []string{"json-via-plugin", "test"}, s.Formats)
	require.Equal(t, []string{"cache_synced", "configure", "export_callbacks"}, s.Capabilities)
	require.Equal(t, host.SourceConfig, s.Source)
	require.Equal(t, pluginBin, s.Path)
	require.Equal(t, sha256Of(t, pluginBin), s.SHA256)
	require.Equal(t, 1, s.ProtocolVersion)
	require.Positive(t, s.PID)
	require.Equal(t, "closed", s.Breaker)
	require.False(t, s.StartedAt.IsZero())

	out, res, err := e.export("test", nil)
	require.NoError(t, err)
	golden := filepath.Join("testdata", "export.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out)
	require.Equal(t, "testplugin", res.Exporter)
	require.Equal(t, "text/plain; charset=utf-8", res.ContentType)
	require.Equal(t, int64(len(out)), res.Bytes)
	require.Equal(t, 4, res.Series)

	// The JSON format through the plugin is byte for byte the built-in's.
	out, res, err = e.export("json-via-plugin", nil)
	require.NoError(t, err)
	var inProcess bytes.Buffer
	_, err = jsonexp.New().Export(context.Background(), testSnapshot(), exporters.ExportRequest{Format: "json"}, &inProcess)
	require.NoError(t, err)
	require.Equal(t, inProcess.String(), out)
	require.Equal(t, jsonexp.ContentType, res.ContentType)

	healthy, details := e.host.Health()
	require.True(t, healthy)
	d := details["testplugin"].(map[string]any)
	require.Equal(t, host.StateRunning, d["state"])
	require.Equal(t, s.PID, d["pid"])
	require.Equal(t, "closed", d["breaker"])
	require.Equal(t, "1.0.0", d["version"])
	require.Equal(t, int64(2), e.status("testplugin").Exports)
}

// TestMisbehaviour covers a plugin that dies or answers wrong in the
// middle of an export: the export fails with a clear error, the plugin
// is restarted when it has to be, and the next export succeeds.
func TestMisbehaviour(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		mode    string
		want    []string // in the export's error
		restart string   // the restart reason, "" for none
	}{
		{name: "exit", mode: "exit", want: []string{`plugin "p" exited during the export (exit status 3)`}, restart: "exited"},
		{name: "panic", mode: "panic", want: []string{`plugin "p" exited during the export (exit status 2)`}, restart: "exited"},
		{name: "hang", mode: "hang", want: []string{`plugin "p" did not answer within 500ms`, "hung"}, restart: "hung"},
		{name: "garbage", mode: "garbage", want: []string{`plugin "p" sent an export response that is not a valid protobuf message`}},
		{name: "fail", mode: "fail", want: []string{`plugin "p": testplugin: failing export 1 as configured`}},
		{name: "invalid", mode: "invalid", want: []string{`plugin "p": testplugin: export 1 has an invalid option`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			once := filepath.Join(t.TempDir(), "once")
			inst := instance("p", map[string]any{"mode": tc.mode, "once_file": once})
			inst.CallTimeout = 500 * time.Millisecond
			e := newEnv(t, host.Config{Instances: []host.InstanceConfig{inst}})
			e.start()
			before := e.waitRunning("p")

			_, _, err := e.export("test", nil)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}

			after := e.waitRunning("p")
			out, _, err := e.export("test", map[string]string{"count": "true"})
			require.NoError(t, err)
			if tc.restart != "" {
				require.NotEqual(t, before.PID, after.PID)
				require.Equal(t, 1, after.Restarts)
				require.Equal(t, int64(1), metricValue(t, e, "sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": tc.restart}))
				require.True(t, strings.HasPrefix(out, "# export 1\n"), "a fresh process: %q", out)
			} else {
				require.Equal(t, before.PID, e.status("p").PID)
				require.Equal(t, 0, e.status("p").Restarts)
				require.True(t, strings.HasPrefix(out, "# export 2\n"), "the same process: %q", out)
			}
			s := e.status("p")
			require.Equal(t, int64(1), s.Failures)
			require.Equal(t, int64(1), s.Exports)
			require.Equal(t, 0, s.ConsecutiveFailures)
		})
	}
}

// TestHangPastTheCallersDeadline: an export whose caller's deadline
// (an export target's timeout, /export's 30s) is shorter than the
// plugin's call timeout still finds a hung plugin out, kills and
// restarts it, rather than letting it hold every export in its format
// until the caller gives up, for ever.
func TestHangPastTheCallersDeadline(t *testing.T) {
	t.Parallel()
	once := filepath.Join(t.TempDir(), "once")
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", map[string]any{"mode": "hang", "once_file": once})}})
	e.start()
	before := e.waitRunning("p")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.registry.Export(ctx, testSnapshot(), exporters.ExportRequest{Format: "test"}, io.Discard)
	require.ErrorContains(t, err, `plugin "p" did not answer by the export's deadline: it is hung, so it was killed and will be restarted`)

	after := e.waitRunning("p")
	require.NotEqual(t, before.PID, after.PID)
	_, _, err = e.export("test", nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), metricValue(t, e, "sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": "hung"}))
}

func TestSIGKILLMidExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", map[string]any{
		"mode": "slow", "ready_file": ready, "once_file": filepath.Join(dir, "once"),
	})}})
	e.start()
	first := e.waitRunning("p")

	errc := make(chan error, 1)
	go func() {
		_, _, err := e.export("test", nil)
		errc <- err
	}()
	var pid int
	eventually(t, "the export to reach the plugin", func() bool {
		b, err := os.ReadFile(ready)
		pid, _ = strconv.Atoi(string(b))
		return err == nil && pid > 0
	})
	require.Equal(t, first.PID, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	err := <-errc
	require.ErrorContains(t, err, `plugin "p" exited during the export (signal: killed) and will be restarted`)

	second := e.waitRunning("p")
	require.NotEqual(t, pid, second.PID)
	out, _, err := e.export("test", nil)
	require.NoError(t, err)
	require.Contains(t, out, "tasker_queue_depth 3.5\n")
	warned := e.logs.find(func(r logRecord) bool {
		return r.Level == slog.LevelWarn && r.Attrs["plugin"] == "p" && r.Attrs["reason"] == "exited"
	})
	require.NotEmpty(t, warned, "the restart is logged at WARN with its reason")
	require.Contains(t, warned[0].Msg, "signal: killed")
	require.NotEmpty(t, warned[0].Attrs["wait"])
}

func TestCrashedIdlePluginIsRestarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", nil)}})
	e.start()
	first := e.waitRunning("p")
	require.NoError(t, syscall.Kill(first.PID, syscall.SIGKILL))
	eventually(t, "a restart without any export", func() bool {
		s := e.status("p")
		return s.State == host.StateRunning && s.PID != first.PID
	})
	s := e.status("p")
	require.Equal(t, 1, s.Restarts)
	require.Contains(t, s.LastError, "exited unexpectedly (signal: killed)")
	require.Equal(t, int64(0), s.Exports+s.Failures)
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	wrongSum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		inst host.InstanceConfig
		want string
	}{
		{
			name: "missing file",
			inst: host.InstanceConfig{Name: "p", Path: "/nonexistent/sextant-p"},
			want: `plugin "p" (/nonexistent/sextant-p): no such file`,
		},
		{
			name: "wrong protocol version",
			inst: host.InstanceConfig{Name: "p", Path: pluginBin, Env: map[string]string{"SEXTANT_TESTPLUGIN_PROTOCOL": "2"}},
			want: `plugin "p" speaks protocol version 2; this Sextant speaks 1 (docs/plugins.md#versioning)`,
		},
		{
			name: "stdout noise",
			inst: host.InstanceConfig{Name: "p", Path: pluginBin, Env: map[string]string{"SEXTANT_TESTPLUGIN_STDOUT_NOISE": "1"}},
			want: `printed "testplugin: noise before the handshake" on standard output instead of its handshake line`,
		},
		{
			name: "not a plugin",
			inst: host.InstanceConfig{Name: "p", Path: "/bin/true"},
			want: `plugin "p" (/bin/true) exited before its handshake`,
		},
		{
			name: "wrong checksum",
			inst: host.InstanceConfig{Name: "p", Path: pluginBin, SHA256: wrongSum},
			want: `plugin "p" (` + pluginBin + `): sha256 is ` + sha256Of(t, pluginBin) + `, configuration says ` + wrongSum,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, host.Config{Instances: []host.InstanceConfig{tc.inst}})
			e.start()
			s := e.status("p")
			require.Contains(t, []string{host.StateRestarting}, s.State)
			require.Contains(t, s.LastError, tc.want)
			require.Zero(t, s.PID)
			require.Equal(t, []string{"p"}, s.Formats, "registered under its name until it starts")

			// The placeholder explains itself.
			_, _, err := e.export("p", nil)
			require.ErrorIs(t, err, host.ErrNotRunning)
			require.ErrorContains(t, err, `plugin "p" is not running: `)
			require.ErrorContains(t, err, tc.want)
			require.Regexp(t, `(next restart in [0-9.]+m?s|restarting now)`, err.Error())

			eventually(t, "retries", func() bool { return e.status("p").Restarts >= 2 })
			require.GreaterOrEqual(t, metricValue(t, e, "sextant_plugins_restarts_total", map[string]string{"plugin": "p", "reason": "start_failed"}), int64(2))
			require.Equal(t, int64(1), metricValue(t, e, "sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "rejected"}))
			healthy, _ := e.host.Health()
			require.False(t, healthy)
		})
	}
}

// TestChecksumMismatchRunsNothing launches a script that leaves a mark
// when run: with a wrong checksum it must never run.
func TestNotRunningMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{
		Restart:   host.RestartConfig{InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		Instances: []host.InstanceConfig{{Name: "influx", Path: "/nonexistent/sextant-influx"}},
	})
	e.start()
	_, _, err := e.export("influx", nil)
	require.EqualError(t, err, `export influx: influx: plugin "influx" is not running: plugin "influx" (/nonexistent/sextant-influx): no such file; next restart in 1h0m0s`)
	s := e.status("influx")
	require.Equal(t, host.StateRestarting, s.State)
	require.WithinDuration(t, time.Now().Add(time.Hour), s.NextRestart, time.Minute)
}

func TestChecksumMismatchRunsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "sextant-script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ntouch "+mark+"\nexec "+pluginBin+"\n"), 0o755))
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{{Name: "p", Path: script, SHA256: strings.Repeat("0", 64)}}})
	e.start()
	eventually(t, "retries", func() bool { return e.status("p").Restarts >= 2 })
	require.NoFileExists(t, mark)
	require.Equal(t, sha256Of(t, script), e.status("p").SHA256)

	// The same script with its right checksum runs.
	e2 := newEnv(t, host.Config{Instances: []host.InstanceConfig{{Name: "p", Path: script, SHA256: sha256Of(t, script)}}})
	e2.start()
	e2.waitRunning("p")
	require.FileExists(t, mark)
}

// TestConfigErrors is not parallel: it counts the processes left.
func TestConfigErrors(t *testing.T) {
	registry := exporters.NewRegistry(exporters.RegistrySettings{})
	require.NoError(t, registry.RegisterBuiltin(jsonexp.New()))
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{
		instance("bad", map[string]any{"mode": "bogus", "after": 0, "tags": []any{1}}),
		instance("json", nil),
		{Path: pluginBin}, // describes itself as testplugin
		{Path: pluginBin, Name: "testplugin"},
	}}, options{registry: registry})
	err := e.host.Start(context.Background())
	require.Error(t, err)
	paths := map[string]string{}
	for _, err := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *host.FieldError
		require.ErrorAs(t, err, &fe)
		paths[fe.FieldPath()] = fe.Err.Error()
	}
	require.Contains(t, paths["instances[0].config.mode"], `unknown mode "bogus"`)
	require.Contains(t, paths["instances[0].config.after"], "must be at least 1")
	require.Contains(t, paths["instances[0].config.tags"], "unknown field")
	require.Contains(t, paths["instances[1].name"], `"json" is a built-in export format`)
	require.Contains(t, paths, "instances[3].name")
	require.Contains(t, paths["instances[3].name"], `"testplugin" is also the name of instances[2]`)
	require.Len(t, paths, 5)

	require.Empty(t, children(t), "no plugin is left running")
	require.Equal(t, []string{"json"}, registry.Formats(), "nothing is registered")
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{
		Breaker:   host.BreakerConfig{FailureThreshold: 3, OpenFor: 200 * time.Millisecond},
		Instances: []host.InstanceConfig{instance("p", map[string]any{"mode": "fail", "times": 3})},
	})
	e.start()
	e.waitRunning("p")
	for i := 1; i <= 3; i++ {
		_, _, err := e.export("test", nil)
		require.ErrorContains(t, err, `plugin "p": testplugin: failing export `+strconv.Itoa(i))
	}
	s := e.status("p")
	require.Equal(t, host.StateCircuitOpen, s.State)
	require.Equal(t, "open", s.Breaker)
	require.Equal(t, 3, s.ConsecutiveFailures)
	require.Equal(t, int64(2), metricValue(t, e, "sextant_plugins_breaker_state", map[string]string{"plugin": "p"}))
	healthy, _ := e.host.Health()
	require.False(t, healthy)

	// While open, exports are rejected without reaching the plugin; after
	// open_for, one trial goes through, succeeds and closes the circuit.
	var out string
	var rejected int64
	eventually(t, "a trial export to succeed", func() bool {
		var err error
		out, _, err = e.export("test", map[string]string{"count": "true"})
		if err != nil {
			require.ErrorIs(t, err, host.ErrCircuitOpen)
			require.ErrorContains(t, err, `plugin "p": circuit open after 3 consecutive failures (last: plugin "p": testplugin: failing export 3 as configured); next trial in`)
			rejected++
		}
		return err == nil
	})
	require.True(t, strings.HasPrefix(out, "# export 4\n"), "rejected exports never reached the plugin: %q", out)
	s = e.status("p")
	require.Equal(t, host.StateRunning, s.State)
	require.Equal(t, "closed", s.Breaker)
	require.Equal(t, rejected, s.Rejected)
	require.Equal(t, int64(3), s.Failures)
	require.Equal(t, int64(0), metricValue(t, e, "sextant_plugins_breaker_state", map[string]string{"plugin": "p"}))
	require.Equal(t, rejected, metricValue(t, e, "sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "rejected"}))
	require.Equal(t, int64(3), metricValue(t, e, "sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "error"}))
	require.Equal(t, int64(1), metricValue(t, e, "sextant_plugins_exports_total", map[string]string{"plugin": "p", "result": "ok"}))
}

func TestPluginLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", map[string]any{"mode": "ok", "after": 2})}})
	e.start()
	s := e.waitRunning("p")
	eventually(t, "the plugin's three lines", func() bool {
		return len(e.logs.find(func(r logRecord) bool {
			return r.Attrs["plugin"] == "p" && strings.HasPrefix(r.Msg, "testplugin")
		})) >= 3
	})
	json := e.logs.find(func(r logRecord) bool { return r.Msg == "testplugin configured" })
	require.Len(t, json, 1)
	require.Equal(t, slog.LevelInfo, json[0].Level)
	require.Equal(t, "p", json[0].Attrs["plugin"])
	require.Equal(t, "ok", json[0].Attrs["mode"])
	require.Equal(t, int64(2), json[0].Attrs["after"])
	require.Equal(t, int64(s.PID), json[0].Attrs["pid"])

	plain := e.logs.find(func(r logRecord) bool { return r.Msg == "testplugin: a plain line on stderr" })
	require.Len(t, plain, 1)
	require.Equal(t, slog.LevelInfo, plain[0].Level)
	require.Equal(t, "stderr", plain[0].Attrs["stream"])
	require.Equal(t, "p", plain[0].Attrs["plugin"])

	stdout := e.logs.find(func(r logRecord) bool { return r.Msg == "testplugin: a line on stdout" })
	require.Len(t, stdout, 1)
	require.Equal(t, "stdout", stdout[0].Attrs["stream"])

	// go-plugin's own chatter stays below INFO when slog is not at DEBUG.
	require.Empty(t, e.logs.find(func(r logRecord) bool { return r.Attrs["logger"] != nil }))
}

func TestPanicIsLoggedAtError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", map[string]any{"mode": "panic", "once_file": filepath.Join(t.TempDir(), "once")})}})
	e.start()
	e.waitRunning("p")
	_, _, err := e.export("test", nil)
	require.Error(t, err)
	eventually(t, "the panic's report", func() bool {
		return len(e.logs.find(func(r logRecord) bool {
			return r.Level == slog.LevelError && r.Msg == "panic: testplugin: panicking as configured" && r.Attrs["stream"] == "stderr"
		})) == 1
	})
}

func TestDebugShowsGoPluginChatter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", nil)}}, options{logLevel: slog.LevelDebug})
	e.start()
	e.waitRunning("p")
	chatter := e.logs.find(func(r logRecord) bool {
		return r.Attrs["logger"] != nil && r.Attrs["plugin"] == "p" && r.Msg == "starting plugin"
	})
	require.NotEmpty(t, chatter)
	require.Equal(t, slog.LevelDebug, chatter[0].Level)
	require.Equal(t, pluginBin, chatter[0].Attrs["path"])
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyFile(t, pluginBin, filepath.Join(dir, "sextant-alpha"))
	require.NoError(t, os.Symlink(pluginBin, filepath.Join(dir, "sextant-beta")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sextant-notes.txt"), []byte("not executable"), 0o644))
	copyFile(t, pluginBin, filepath.Join(dir, "other-tool"))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sextant-dir"), 0o755))

	// sextant-beta is named by an instance through the link's target: it
	// runs once, as the instance.
	e := newEnv(t, host.Config{Dir: dir, Instances: []host.InstanceConfig{instance("beta", nil)}})
	e.start()
	st := e.host.Status()
	require.Len(t, st, 2)
	require.Equal(t, "beta", st[0].Name)
	require.Equal(t, host.SourceConfig, st[0].Source)
	require.Equal(t, "testplugin", st[1].Name, "the discovered plugin takes the name it describes itself with")
	require.Equal(t, host.SourceDir, st[1].Source)
	require.Equal(t, filepath.Join(dir, "sextant-alpha"), st[1].Path)
	_, ok := e.registry.Lookup("testplugin")
	require.True(t, ok)

	e2 := newEnv(t, host.Config{Dir: filepath.Join(dir, "missing")})
	err := e2.host.Start(context.Background())
	var fe *host.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "dir", fe.FieldPath())
	require.ErrorContains(t, err, filepath.Join(dir, "missing")+": no such directory")
}

// copyFile copies an executable atomically: a plugin host retrying it
// must never run it half-written.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	tmp := filepath.Join(filepath.Dir(to), ".tmp-"+filepath.Base(to))
	require.NoError(t, os.WriteFile(tmp, b, 0o755))
	require.NoError(t, os.Rename(tmp, to))
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// remote runs the test plugin as a remote plugin at addr until the test
// ends or stop is called.
func remote(t *testing.T, addr string) (stop func()) {
	t.Helper()
	cmd := exec.Command(pluginBin, "--listen", addr)
	cmd.Env = append(os.Environ(), "SEXTANT_PLUGIN_LOG_LEVEL=error")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func TestAddressInstance(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	stop := remote(t, addr)
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{{Name: "r", Address: addr, Config: map[string]any{"mode": "ok"}}}})
	e.start() // the remote may not listen yet: then it is retried
	s := e.waitRunning("r")
	require.Equal(t, addr, s.Address)
	require.Zero(t, s.PID)
	out, _, err := e.export("test", nil)
	require.NoError(t, err)
	require.Contains(t, out, "tasker_queue_depth 3.5\n")

	// The remote goes away: the host notices without an export, and
	// reconnects once it is back.
	stop()
	eventually(t, "the lost connection to be noticed", func() bool { return e.status("r").State == host.StateRestarting })
	_, _, err = e.export("test", nil)
	require.ErrorIs(t, err, host.ErrNotRunning)
	remote(t, addr)
	e.waitRunning("r")
	_, _, err = e.export("test", nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, e.status("r").Restarts, 1)
}

func TestRegistryPlaceholderAndRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sextant-later")
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{{Path: path}}})
	e.start()
	_, _, err := e.export("later", nil)
	require.ErrorIs(t, err, host.ErrNotRunning)
	require.ErrorContains(t, err, `plugin "later" is not running: plugin "later" (`+path+`): no such file; `)
	_, _, err = e.export("test", nil)
	require.ErrorIs(t, err, exporters.ErrUnknownFormat)

	copyFile(t, pluginBin, path)
	e.waitRunning("testplugin")
	_, ok := e.registry.Lookup("later")
	require.False(t, ok, "the placeholder name is gone")
	_, _, err = e.export("test", nil)
	require.NoError(t, err)
	_, _, err = e.export("later", nil)
	require.ErrorIs(t, err, exporters.ErrUnknownFormat)
}

func TestRegistryReplaceAfterFormatsChange(t *testing.T) {
	t.Parallel()
	formats := filepath.Join(t.TempDir(), "formats")
	require.NoError(t, os.WriteFile(formats, []byte("test"), 0o644))
	inst := instance("p", nil)
	inst.Env = map[string]string{"SEXTANT_TESTPLUGIN_FORMATS_FILE": formats}
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{inst}})
	e.start()
	first := e.waitRunning("p")
	require.Equal(t, []string{"test"}, e.registry.Formats())

	require.NoError(t, os.WriteFile(formats, []byte("test,alt"), 0o644))
	require.NoError(t, syscall.Kill(first.PID, syscall.SIGKILL))
	eventually(t, "the new formats", func() bool { return len(e.registry.ForFormat("alt")) == 1 })
	require.Equal(t, []string{"alt", "test"}, e.registry.Formats())
	require.Len(t, e.registry.Exporters(), 1)
	e.waitRunning("p")
	_, _, err := e.export("alt", nil)
	require.NoError(t, err)
}

func TestCallbacks(t *testing.T) {
	t.Parallel()
	events := filepath.Join(t.TempDir(), "events")
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("p", map[string]any{"events_file": events})}})
	e.start()
	e.waitRunning("p")
	_, res, err := e.export("test", nil)
	require.NoError(t, err)
	e.host.CacheSynced(context.Background(), cacheSynced())
	e.host.CacheSynced(context.Background(), eventsNew("task.completed"))
	eventually(t, "three callbacks", func() bool {
		b, _ := os.ReadFile(events)
		return strings.Count(string(b), "\n") >= 3
	})
	b, err := os.ReadFile(events)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^requested [0-9a-f-]{36} test on_demand$`, lines[0])
	require.Regexp(t, `^completed [0-9a-f-]{36} test p bytes=`+strconv.FormatInt(res.Bytes, 10)+` error=""$`, lines[1])
	require.Regexp(t, `^cache_synced [0-9a-f-]{36} gossip 12 true$`, lines[2])
}

func TestCallbackQueueDropsWhenFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{
		CallbackTimeout: time.Minute,
		Instances:       []host.InstanceConfig{instance("p", map[string]any{"callback_delay": "1h"})},
	})
	e.start()
	e.waitRunning("p")
	exp, ok := e.registry.Lookup("p")
	require.True(t, ok)
	hooks := exp.(exporters.ExportHooks)
	for range 200 {
		hooks.OnExportRequested(exporters.ExportRequest{ID: "x", Format: "test"})
	}
	dropped := e.status("p").CallbacksDropped
	require.Greater(t, dropped, int64(100))
	require.Equal(t, dropped, metricValue(t, e, "sextant_plugins_callbacks_dropped_total", map[string]string{"plugin": "p"}))
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("a", nil), instance("b", nil)}})
	e.start()
	e.waitRunning("a")
	e.waitRunning("b")
	require.Len(t, children(t), 2)

	ctx := context.Background()
	errc := make(chan error, 2)
	go func() { errc <- e.host.Shutdown(ctx) }()
	go func() { errc <- e.host.Shutdown(ctx) }()
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)
	require.NoError(t, e.host.Shutdown(ctx))
	require.Empty(t, children(t))

	_, _, err := e.export("test", nil)
	require.ErrorIs(t, err, exporters.ErrShutdown)
	for _, s := range e.host.Status() {
		require.Equal(t, host.StateStopped, s.State)
		require.Zero(t, s.PID)
	}
	require.ErrorIs(t, e.host.Start(ctx), exporters.ErrShutdown)
}

func TestShutdownBeforeStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{instance("a", nil)}})
	require.NoError(t, e.host.Shutdown(context.Background()))
}

func TestShutdownKillsWhenContextEnds(t *testing.T) {
	t.Parallel()
	once := filepath.Join(t.TempDir(), "once")
	inst := instance("p", map[string]any{"mode": "hang", "once_file": once})
	e := newEnv(t, host.Config{Instances: []host.InstanceConfig{inst}})
	e.start()
	e.waitRunning("p")
	errc := make(chan error, 1)
	go func() {
		_, _, err := e.export("test", nil)
		errc <- err
	}()
	eventually(t, "the export to hang", func() bool { _, err := os.Stat(once); return err == nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, e.host.Shutdown(ctx), context.Canceled)
	require.ErrorIs(t, <-errc, exporters.ErrShutdown)
}

func cacheSynced() events.Event {
	return events.New(events.TelemetryCacheSynced, events.NewIDAt(time.Now()),
		events.String("strategy", "gossip"), events.Int("metrics_count", 12),
		events.Bool("success", true), events.Float("duration_ms", 3.5))
}

func eventsNew(name string) events.Event {
	return events.New(name, events.NewIDAt(time.Now()))
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := host.New(host.Config{Instances: []host.InstanceConfig{{Name: "x"}}}, host.Settings{})
	var fe *host.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "instances[0]", fe.FieldPath())
	require.True(t, errors.Is(err, fe.Err))
}

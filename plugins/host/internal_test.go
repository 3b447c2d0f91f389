package host

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

func TestBreakerStates(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	type step struct {
		op        string // admit, ok, fail, release
		at        time.Duration
		wantOK    bool // for admit
		wantTrial bool // for admit
		wantState int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"opens after threshold failures", []step{
			{op: "admit", wantOK: true, wantState: breakerClosed},
			{op: "fail", wantState: breakerClosed},
			{op: "fail", wantState: breakerClosed},
			{op: "fail", wantState: breakerOpen},
			{op: "admit", at: time.Second, wantOK: false, wantState: breakerOpen},
		}},
		{"a success resets the count", []step{
			{op: "fail"}, {op: "fail"}, {op: "ok"}, {op: "fail"}, {op: "fail", wantState: breakerClosed},
		}},
		{"one trial after open_for, its success closes", []step{
			{op: "fail"}, {op: "fail"}, {op: "fail", wantState: breakerOpen},
			{op: "admit", at: 10 * time.Second, wantOK: true, wantTrial: true, wantState: breakerHalfOpen},
			{op: "admit", at: 10 * time.Second, wantOK: false, wantState: breakerHalfOpen},
			{op: "ok", wantState: breakerClosed},
			{op: "admit", at: 10 * time.Second, wantOK: true, wantState: breakerClosed},
		}},
		{"a failed trial reopens", []step{
			{op: "fail"}, {op: "fail"}, {op: "fail", wantState: breakerOpen},
			{op: "admit", at: 10 * time.Second, wantOK: true, wantTrial: true, wantState: breakerHalfOpen},
			{op: "failtrial", at: 10 * time.Second, wantState: breakerOpen},
			{op: "admit", at: 11 * time.Second, wantOK: false, wantState: breakerOpen},
			{op: "admit", at: 20 * time.Second, wantOK: true, wantTrial: true, wantState: breakerHalfOpen},
		}},
		{"a released trial lets the next export be the trial", []step{
			{op: "fail"}, {op: "fail"}, {op: "fail", wantState: breakerOpen},
			{op: "admit", at: 10 * time.Second, wantOK: true, wantTrial: true, wantState: breakerHalfOpen},
			{op: "release", wantState: breakerHalfOpen},
			{op: "admit", at: 10 * time.Second, wantOK: true, wantTrial: true, wantState: breakerHalfOpen},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := breaker{threshold: 3, openFor: 5 * time.Second}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "admit":
					ok, trial := b.admit(now)
					require.Equal(t, s.wantOK, ok, "step %d", i)
					require.Equal(t, s.wantTrial, trial, "step %d", i)
				case "ok":
					b.success()
				case "fail":
					b.failure(now, false)
				case "failtrial":
					b.failure(now, true)
				case "release":
					b.release(true)
				}
				require.Equal(t, s.wantState, b.state, "step %d (%s)", i, s.op)
			}
		})
	}
}

func TestProvisionalName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"sextant-influx":        "influx",
		"sextant-Influx.exe":    "influx",
		"graphite":              "graphite",
		"sextant-a b.c":         "a_b_c",
		"127.0.0.1:7777":        "127_0_0_1_7777",
		"sextant-":              "plugin",
		"_x":                    "plugin_x",
		strings.Repeat("a", 80): strings.Repeat("a", 63),
	} {
		got := provisionalName(in)
		require.Equal(t, want, got, in)
		require.Regexp(t, namePattern, got)
	}
}

func TestRoughly(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                            "0s",
		0:                                       "0s",
		1234 * time.Microsecond:                 "0s",
		123456 * time.Microsecond:               "120ms",
		3*time.Second + 499*time.Millisecond:    "3s",
		59*time.Minute + 59900*time.Millisecond: "1h0m0s",
	} {
		require.Equal(t, want, roughly(d), d.String())
	}
}

func TestCheckResponse(t *testing.T) {
	t.Parallel()
	s := &exporters.Snapshot{Families: []exporters.Family{{Series: make([]exporters.Series, 3)}}}
	for _, tc := range []struct {
		name    string
		resp    *pluginv1.ExportResponse
		wantCT  string
		wantErr string
	}{
		{"ok", &pluginv1.ExportResponse{Data: []byte("x"), ContentType: "text/plain; charset=utf-8", Series: 3}, "text/plain; charset=utf-8", ""},
		{"no content type", &pluginv1.ExportResponse{Data: []byte("x")}, "application/octet-stream", ""},
		{"negative series", &pluginv1.ExportResponse{Series: -1}, "", "exported -1 series"},
		{"too many series", &pluginv1.ExportResponse{Series: 4}, "", "exported 4 series of a snapshot of 3"},
		{"bad content type", &pluginv1.ExportResponse{ContentType: "text/plain; ="}, "", `content type "text/plain; ="`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct, err := checkResponse(tc.resp, s)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantCT, ct)
		})
	}
}

func TestConfigErrorPaths(t *testing.T) {
	t.Parallel()
	h := &Host{cfg: Config{}.withDefaults(), logger: slog.Default()}
	p := newPlugin(h, 2, InstanceConfig{Name: "x", Path: "/p"}, SourceConfig, "x")
	errs := p.configErrors(&configError{errs: []*pluginv1.FieldError{
		{Path: "url", Message: "required"},
		{Path: "[0]", Message: "odd"},
		{Path: "headers.X-Token", Message: "empty"},
		{Message: "whole section"},
	}})
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	require.Equal(t, []string{
		"instances[2].config.url: required",
		"instances[2].config[0]: odd",
		"instances[2].config.headers.X-Token: empty",
		"instances[2].config: whole section",
	}, got)

	d := newPlugin(h, -1, InstanceConfig{Path: "/plugins/sextant-y"}, SourceDir, "y")
	errs = d.configErrors(&configError{errs: []*pluginv1.FieldError{{Path: "url", Message: "required"}}})
	require.Len(t, errs, 1)
	require.EqualError(t, errs[0], "dir: /plugins/sextant-y needs a configuration section (list it under instances with path and config): url: required")
}

// records is a slog.Handler keeping records.
type records struct {
	mu    sync.Mutex
	level slog.Level
	got   []slog.Record
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

type fixedLogger struct{ l *slog.Logger }

func (f fixedLogger) log() *slog.Logger { return f.l }

func attrsOf(r slog.Record) map[string]any {
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	return m
}

func TestGoPluginLoggerLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		level slog.Level
		want  []string
	}{
		{"info: chatter below WARN is dropped", slog.LevelInfo, []string{"warn", "error"}},
		{"debug: chatter is kept", slog.LevelDebug, []string{"debug", "info", "warn", "error"}},
		{"error", slog.LevelError, []string{"error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &records{level: tc.level}
			l := newGoPluginLogger(fixedLogger{slog.New(rec)}, nil).Named("stdio")
			l.Trace("trace")
			l.Debug("debug")
			l.Info("info")
			l.Warn("warn", "plugin", "/path/x", "err", context.Canceled)
			l.Error("error")
			var got []string
			for _, r := range rec.got {
				got = append(got, r.Message)
			}
			require.Equal(t, tc.want, got)
			for _, r := range rec.got {
				if r.Message == "warn" {
					a := attrsOf(r)
					require.Equal(t, "/path/x", a["path"], "go-plugin's plugin key becomes path")
					require.Equal(t, "context canceled", a["err"])
					require.Equal(t, "go-plugin.stdio", a["logger"])
				}
			}
			require.Equal(t, hclog.Off, l.GetLevel(), "go-plugin must leave stderr to the host")
		})
	}
}

func TestGoPluginLoggerDemotes(t *testing.T) {
	t.Parallel()
	rec := &records{level: slog.LevelDebug}
	var quiet atomic.Bool
	l := newGoPluginLogger(fixedLogger{slog.New(rec)}, &quiet)
	l.Error("plugin process exited", "error", "exit status 1")
	l.Warn("plugin failed to exit gracefully")
	quiet.Store(true)
	l.Warn("plugin failed to exit gracefully")
	require.Len(t, rec.got, 3)
	require.Equal(t, slog.LevelDebug, rec.got[0].Level)
	require.Equal(t, slog.LevelWarn, rec.got[1].Level)
	require.Equal(t, slog.LevelDebug, rec.got[2].Level)
}

func TestParseHCLogLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		line      string
		ok        bool
		level     slog.Level
		msg       string
		attrs     []string // keys in order
		wantTime  time.Time
		wantValue map[string]any
	}{
		{
			name:  "sdk line",
			line:  `{"@timestamp":"2025-03-01T12:00:00.123456Z","@level":"warn","@message":"slow destination","b":2,"a":"x","f":1.5,"ok":true,"@module":"m"}`,
			ok:    true,
			level: slog.LevelWarn, msg: "slow destination",
			attrs:     []string{"b", "a", "f", "ok", "module"},
			wantTime:  time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC),
			wantValue: map[string]any{"b": int64(2), "a": "x", "f": 1.5, "ok": true, "module": "m"},
		},
		{name: "trace", line: `{"@level":"trace","@message":"t"}`, ok: true, level: levelTrace, msg: "t"},
		{name: "no level is info", line: `{"@message":"m"}`, ok: true, level: slog.LevelInfo, msg: "m"},
		{name: "clashing keys are prefixed", line: `{"@message":"m","plugin":"self","stream":"s"}`, ok: true, level: slog.LevelInfo, msg: "m",
			attrs: []string{"attr.plugin", "attr.stream"}},
		{name: "a line cannot pose as Sextant's own record", ok: true, level: slog.LevelInfo, msg: "m",
			line:  `{"@message":"m","level":"ERROR","msg":"spoofed","time":"2020-01-01T00:00:00Z","component":"router","source":"x"}`,
			attrs: []string{"attr.level", "attr.msg", "attr.time", "attr.component", "attr.source"}},
		{name: "nested values", line: `{"@message":"m","o":{"k":[1,2]}}`, ok: true, level: slog.LevelInfo, msg: "m", attrs: []string{"o"},
			wantValue: map[string]any{"o": map[string]any{"k": []any{json.Number("1"), json.Number("2")}}}},
		{name: "message not a string", line: `{"@message":1}`},
		{name: "no message", line: `{"a":1}`},
		{name: "plain", line: `panic: boom`},
		{name: "two objects", line: `{"@message":"a"}{"@message":"b"}`},
		{name: "truncated", line: `{"@message":"a"`},
		{name: "array", line: `[1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := parseHCLogLine([]byte(tc.line))
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			require.Equal(t, tc.level, r.Level)
			require.Equal(t, tc.msg, r.Message)
			var keys []string
			r.Attrs(func(a slog.Attr) bool {
				keys = append(keys, a.Key)
				return true
			})
			require.Equal(t, tc.attrs, keys)
			if !tc.wantTime.IsZero() {
				require.True(t, tc.wantTime.Equal(r.Time), "%s", r.Time)
			}
			a := attrsOf(r)
			for k, v := range tc.wantValue {
				require.Equal(t, v, a[k], k)
			}
		})
	}
}

func TestStreamPlainAndPanicLines(t *testing.T) {
	t.Parallel()
	rec := &records{level: slog.LevelDebug}
	w := newStream(fixedLogger{slog.New(rec)}, "stderr")
	_, _ = w.Write([]byte("hello\r\n\n   \n{\"@level\":\"debug\",\"@message\":\"json\"}\npanic: boom\n\ngoroutine 1 [running]:\nmain.main()\npartial"))
	w.Flush()
	var got []string
	for _, r := range rec.got {
		got = append(got, r.Level.String()+" "+r.Message)
	}
	require.Equal(t, []string{"INFO hello", "DEBUG json", "ERROR panic: boom", "ERROR goroutine 1 [running]:", "ERROR main.main()", "ERROR partial"}, got)
	require.Equal(t, "stderr", attrsOf(rec.got[0])["stream"])
	require.Equal(t, []string{"{\"@level\":\"debug\",\"@message\":\"json\"}", "panic: boom", "goroutine 1 [running]:", "main.main()", "partial"}, w.Tail())
}

func TestLineWriterTruncates(t *testing.T) {
	t.Parallel()
	var lines [][]byte
	w := newLineWriter(func(b []byte) { lines = append(lines, bytes.Clone(b)) })
	long := bytes.Repeat([]byte("x"), maxLogLine+10)
	_, _ = w.Write(long)
	_, _ = w.Write([]byte("y\nnext\n"))
	require.Len(t, lines, 2)
	require.True(t, bytes.HasSuffix(lines[0], []byte(" …(line truncated)")))
	require.Len(t, lines[0], maxLogLine+len(" …(line truncated)"))
	require.Equal(t, "next", string(lines[1]))
}

func TestSectionJSONNilMap(t *testing.T) {
	t.Parallel()
	var m map[string]any
	b, err := SectionJSON(m)
	require.NoError(t, err)
	require.Equal(t, "{}", string(b))
}

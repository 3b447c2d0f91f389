package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/internal/logging"
)

// record logs once through a JSON logger and returns the decoded line.
func record(t *testing.T, o logging.Options, log func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	o.Format = logging.FormatJSON
	l, err := logging.New(&buf, o)
	require.NoError(t, err)
	log(l)
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), buf.String())
	return m
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want map[string]any // expected values of some keys
		not  []string       // must not appear anywhere in the line
	}{
		{name: "sensitive key, any case",
			log:  func(l *slog.Logger) { l.Info("m", "DB_Password", "hunter2", "namespace", "billing") },
			want: map[string]any{"DB_Password": "[REDACTED]", "namespace": "billing"}, not: []string{"hunter2"}},
		{name: "inside a group",
			log: func(l *slog.Logger) {
				l.Info("m", slog.Group("request", "authorization", "Bearer abc", "path", "/export"))
			},
			want: map[string]any{"request": map[string]any{"authorization": "[REDACTED]", "path": "/export"}}, not: []string{"Bearer abc"}},
		{name: "nested payload",
			log: func(l *slog.Logger) {
				l.Info("m", "payload", map[string]any{"user": "ann", "creds": map[string]any{"api_key": "k-1"}, "list": []any{map[string]any{"token": "t"}}})
			},
			want: map[string]any{"payload": map[string]any{"user": "ann", "creds": map[string]any{"api_key": "[REDACTED]"},
				"list": []any{map[string]any{"token": "[REDACTED]"}}}}, not: []string{"k-1"}},
		{name: "URL credentials in values, errors and the message",
			log: func(l *slog.Logger) {
				l.Error("dial postgres://app:pw1@db:5432/x failed", "url", "http://u:pw2@h/x", "error", errors.New("connect https://v:pw3@k"))
			},
			want: map[string]any{"url": "http://[REDACTED]@h/x", "error": "connect https://[REDACTED]@k", "msg": "dial postgres://[REDACTED]@db:5432/x failed"},
			not:  []string{"pw1", "pw2", "pw3"}},
		{name: "With attributes too",
			log:  func(l *slog.Logger) { l.With("session_id", "s-9").WithGroup("g").Info("m", "secret", "x") },
			want: map[string]any{"session_id": "[REDACTED]", "g": map[string]any{"secret": "[REDACTED]"}}, not: []string{"s-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := record(t, logging.Options{}, tt.log)
			for k, v := range tt.want {
				require.Equal(t, v, m[k], k)
			}
			line, _ := json.Marshal(m)
			for _, s := range tt.not {
				require.NotContains(t, string(line), s)
			}
		})
	}
}

func TestRedactionConfigured(t *testing.T) {
	t.Parallel()
	m := record(t, logging.Options{SensitiveKeys: []string{"pin"}}, func(l *slog.Logger) { l.Info("m", "card_pin", "1234", "password", "p") })
	require.Equal(t, "[REDACTED]", m["card_pin"])
	require.Equal(t, "p", m["password"], "the configured list replaces the defaults")
	m = record(t, logging.Options{SensitiveKeys: []string{}}, func(l *slog.Logger) { l.Info("m", "password", "p") })
	require.Equal(t, "p", m["password"], "an empty list turns key redaction off")
}

func TestLevelsAndFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := logging.New(&buf, logging.Options{Level: "WARN", Format: "text"})
	require.NoError(t, err)
	l.Info("quiet")
	l.Warn("loud", "k", "v")
	require.Equal(t, 1, strings.Count(buf.String(), "\n"), buf.String())
	require.Contains(t, buf.String(), "level=WARN msg=loud k=v")

	// Not a terminal: auto means JSON.
	buf.Reset()
	l, err = logging.New(&buf, logging.Options{})
	require.NoError(t, err)
	l.Info("x")
	require.True(t, json.Valid(buf.Bytes()), buf.String())

	f, err := os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	defer f.Close()
	l, err = logging.New(f, logging.Options{Format: "auto"})
	require.NoError(t, err)
	l.Info("to a file")
	data, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, json.Valid(data), "a file is not a terminal: %s", data)

	for _, o := range []logging.Options{{Level: "loud"}, {Format: "yaml"}} {
		_, err := logging.New(&buf, o)
		require.Error(t, err)
	}
	_, err = logging.New(&buf, logging.Options{Format: "yaml"})
	require.EqualError(t, err, `log format "yaml": want auto, json, text`)
	_, err = logging.New(&buf, logging.Options{Level: "loud"})
	require.EqualError(t, err, `log level "loud": want debug, info, warn or error`)
}

func ExampleNew() {
	l, _ := logging.New(os.Stdout, logging.Options{Format: "text"})
	l = slog.New(withoutTime{l.Handler()})
	l.Info("connected", "url", "postgres://sextant:s3cret@db:5432/events", "api_key", "k-123")
	// Output: level=INFO msg=connected url=postgres://[REDACTED]@db:5432/events api_key=[REDACTED]
}

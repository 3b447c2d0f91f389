package logging_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

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

// account is a struct that reaches a log whole.
type account struct {
	User     string
	Password string
}

// vault hides its secret from JSON and from its exported fields; only
// %+v would show it.
type vault struct {
	Name  string
	Key   string `json:"-"`
	inner string
}

// endpoint is a fmt.Stringer that shows a URL with its credentials.
type endpoint struct{ host string }

func (e endpoint) String() string { return "https://svc:pw-str@" + e.host }

// nilUnsafe panics when String is called on a nil pointer.
type nilUnsafe struct{ s string }

func (n *nilUnsafe) String() string { return n.s }

// panicky's String method panics, which fmt survives and so must the
// logger.
type panicky struct{ Name string }

func (panicky) String() string { panic("boom") }

// rawBytes is a named byte slice, printed as text by the text handler.
type rawBytes []byte

// TestRedactionFormats checks that no secret reaches either format, in
// whatever shape the value comes.
func TestRedactionFormats(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://admin:pw-url@db.example/x")
	require.NoError(t, err)
	tests := []struct {
		name    string
		log     func(*slog.Logger)
		secrets []string // must not appear in the output
		keep    []string // must appear: masking hides no more than it should
	}{
		{name: "sensitive slog.Group name",
			log:     func(l *slog.Logger) { l.Info("m", slog.Group("password", "value", "pw-group", "n", 3)) },
			secrets: []string{"pw-group"}, keep: []string{"[REDACTED]"}},
		{name: "sensitive enclosing group, nested",
			log: func(l *slog.Logger) {
				l.Info("m", slog.Group("db_credentials", slog.Group("inner", "value", "pw-nested")), "ok", "visible")
			},
			secrets: []string{"pw-nested"}, keep: []string{"[REDACTED]", "visible"}},
		{name: "sensitive WithGroup",
			log:     func(l *slog.Logger) { l.WithGroup("credentials").Info("m", "value", "pw-with-group") },
			secrets: []string{"pw-with-group"}, keep: []string{"[REDACTED]"}},
		{name: "sensitive WithGroup, With attributes",
			log:     func(l *slog.Logger) { l.WithGroup("Secrets").With("value", "pw-with-attrs").Info("m") },
			secrets: []string{"pw-with-attrs"}, keep: []string{"[REDACTED]"}},
		{name: "insensitive groups keep their values",
			log:  func(l *slog.Logger) { l.WithGroup("request").Info("m", slog.Group("user", "name", "ann")) },
			keep: []string{"ann"}},
		{name: "[]string",
			log:     func(l *slog.Logger) { l.Info("m", "urls", []string{"https://a:pw-slice@h", "plain"}) },
			secrets: []string{"pw-slice"}, keep: []string{"[REDACTED]", "plain"}},
		{name: "http.Header",
			log: func(l *slog.Logger) {
				l.Info("m", "headers", http.Header{"Authorization": {"Bearer pw-header"}, "Referer": {"https://u:pw-referer@h/"}, "Accept": {"text/plain"}})
			},
			secrets: []string{"pw-header", "pw-referer"}, keep: []string{"[REDACTED]", "text/plain"}},
		{name: "map[string][]string",
			log:     func(l *slog.Logger) { l.Info("m", "form", map[string][]string{"api_key": {"pw-form"}}) },
			secrets: []string{"pw-form"}, keep: []string{"[REDACTED]"}},
		{name: "struct",
			log:     func(l *slog.Logger) { l.Info("m", "account", account{User: "ann", Password: "pw-struct"}) },
			secrets: []string{"pw-struct"}, keep: []string{"[REDACTED]", "ann"}},
		{name: "pointer to struct",
			log:     func(l *slog.Logger) { l.Info("m", "account", &account{User: "bob", Password: "pw-pointer"}) },
			secrets: []string{"pw-pointer"}, keep: []string{"[REDACTED]", "bob"}},
		{name: "slice of structs in a map",
			log: func(l *slog.Logger) {
				l.Info("m", "teams", map[string][]account{"ops": {{User: "cy", Password: "pw-deep"}}})
			},
			secrets: []string{"pw-deep"}, keep: []string{"[REDACTED]", "cy"}},
		{name: "fields JSON leaves out",
			log: func(l *slog.Logger) {
				l.Info("m", "vault", vault{Name: "main", Key: "pw-dash", inner: "pw-unexported"})
			},
			secrets: []string{"pw-dash", "pw-unexported"}, keep: []string{"main"}},
		{name: "[]byte",
			log:     func(l *slog.Logger) { l.Info("m", "body", []byte("dial https://u:pw-bytes@h")) },
			secrets: []string{"pw-bytes"}},
		{name: "named []byte",
			log:     func(l *slog.Logger) { l.Info("m", "body", rawBytes("dial https://u:pw-raw@h")) },
			secrets: []string{"pw-raw"}},
		{name: "fmt.Stringer",
			log:     func(l *slog.Logger) { l.Info("m", "endpoint", endpoint{host: "svc.example"}) },
			secrets: []string{"pw-str"}, keep: []string{"[REDACTED]", "svc.example"}},
		{name: "*url.URL",
			log:     func(l *slog.Logger) { l.Info("m", "url", u) },
			secrets: []string{"pw-url"}, keep: []string{"[REDACTED]", "db.example"}},
		{name: "url.URL",
			log:     func(l *slog.Logger) { l.Info("m", "url", *u) },
			secrets: []string{"pw-url"}, keep: []string{"[REDACTED]", "db.example"}},
		{name: "wrapped error",
			log: func(l *slog.Logger) {
				l.Info("m", "err", fmt.Errorf("export: %w", &url.Error{Op: "Post", URL: "https://u:pw-err@h", Err: errors.New("refused")}))
			},
			secrets: []string{"pw-err"}, keep: []string{"[REDACTED]", "refused"}},
		{name: "panicking String method",
			log:  func(l *slog.Logger) { l.Info("m", "p", panicky{Name: "still-logged"}) },
			keep: []string{"still-logged"}},
		{name: "common values stay as they are",
			log: func(l *slog.Logger) {
				l.Info("m", "n", 42, "d", 1500*time.Millisecond, "ok", true, "month", time.March, "nilp", (*nilUnsafe)(nil), "nilu", (*url.URL)(nil))
			},
			keep: []string{"42", "true"}},
	}
	for _, format := range []string{logging.FormatJSON, logging.FormatText} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				l, err := logging.New(&buf, logging.Options{Format: format})
				require.NoError(t, err)
				tt.log(l)
				out := buf.String()
				for _, s := range tt.secrets {
					require.NotContains(t, out, s)
				}
				for _, s := range tt.keep {
					require.Contains(t, out, s)
				}
			})
		}
	}
}

// TestRedactionBytesJSON checks the JSON form of bytes, which is base64
// and so would hide a leak from a plain search of the line.
func TestRedactionBytesJSON(t *testing.T) {
	t.Parallel()
	m := record(t, logging.Options{}, func(l *slog.Logger) {
		l.Info("m", "body", []byte("dial https://u:pw@h"), "plain", []byte("no secret"))
	})
	for key, want := range map[string]string{"body": "dial https://[REDACTED]@h", "plain": "no secret"} {
		s, ok := m[key].(string)
		require.True(t, ok, "%s: %T", key, m[key])
		b, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		require.Equal(t, want, string(b))
	}
}

// TestRedactionShapes checks what masked values look like in JSON.
func TestRedactionShapes(t *testing.T) {
	t.Parallel()
	m := record(t, logging.Options{}, func(l *slog.Logger) {
		l.Info("m", "account", &account{User: "ann", Password: "p"}, "h", http.Header{"Cookie": {"c"}, "Accept": {"*/*"}},
			"big", struct{ N uint64 }{N: 1<<63 + 1}, "credentials", slog.GroupValue(slog.String("user", "u")))
	})
	require.Equal(t, map[string]any{"User": "ann", "Password": "[REDACTED]"}, m["account"])
	require.Equal(t, map[string]any{"Cookie": []any{"[REDACTED]"}, "Accept": []any{"*/*"}}, m["h"])
	require.Equal(t, map[string]any{"user": "[REDACTED]"}, m["credentials"], "a group value under a sensitive key")
	line, err := json.Marshal(m["big"])
	require.NoError(t, err)
	require.JSONEq(t, `{"N":9223372036854775809}`, string(line), "large integers stay exact")
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

// BenchmarkLog measures a record of common values, which must stay cheap,
// against one carrying a struct, which pays for a JSON round trip.
func BenchmarkLog(b *testing.B) {
	l, err := logging.New(io.Discard, logging.Options{Format: logging.FormatJSON})
	require.NoError(b, err)
	b.Run("common", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Info("exported", "exporter", "prometheus", "series", 1200, "took", 3*time.Millisecond, "ok", true, "err", errors.ErrUnsupported)
		}
	})
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		a := &account{User: "ann", Password: "p"}
		for b.Loop() {
			l.Info("exported", "account", a)
		}
	})
}

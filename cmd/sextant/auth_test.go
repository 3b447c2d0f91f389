package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/config"
)

func sha256Of(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestLoadBearerAuth(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"/run/token":       "s3cret-token\n",
		"/run/crlf":        "s3cret-token\r\n",
		"/run/empty":       "",
		"/run/blank":       " \n\n",
		"/run/two-words":   "s3cret token\n",
		"/run/with-ctrl":   "s3cret\x00token",
		"/run/unreadable!": "",
	}
	readFile := func(name string) ([]byte, error) {
		if name == "/run/unreadable!" {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		if c, ok := files[name]; ok {
			return []byte(c), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	env := map[string]string{"SEXTANT_METRICS_TOKEN": "env-s3cret", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		cfg     config.AuthConfig
		want    string // the token; "" means auth is off
		wantErr string
	}{
		{name: "off", cfg: config.AuthConfig{}},
		{name: "file, trailing newline trimmed", cfg: config.AuthConfig{BearerTokenFile: "/run/token"}, want: "s3cret-token"},
		{name: "file, CRLF trimmed", cfg: config.AuthConfig{BearerTokenFile: "/run/crlf"}, want: "s3cret-token"},
		{name: "env", cfg: config.AuthConfig{BearerTokenEnv: "SEXTANT_METRICS_TOKEN"}, want: "env-s3cret"},
		{name: "missing file", cfg: config.AuthConfig{BearerTokenFile: "/run/nope"},
			wantErr: "server.auth.bearer_token_file: open /run/nope: file does not exist"},
		{name: "unreadable file", cfg: config.AuthConfig{BearerTokenFile: "/run/unreadable!"},
			wantErr: "server.auth.bearer_token_file: open /run/unreadable!: permission denied"},
		{name: "empty file", cfg: config.AuthConfig{BearerTokenFile: "/run/empty"}, wantErr: "server.auth.bearer_token_file: /run/empty holds no token"},
		{name: "blank file", cfg: config.AuthConfig{BearerTokenFile: "/run/blank"}, wantErr: "server.auth.bearer_token_file: /run/blank holds no token"},
		{name: "space inside", cfg: config.AuthConfig{BearerTokenFile: "/run/two-words"},
			wantErr: "server.auth.bearer_token_file: the token holds white space or a control character (at byte 6): an Authorization header cannot carry it"},
		{name: "control character", cfg: config.AuthConfig{BearerTokenFile: "/run/with-ctrl"},
			wantErr: "server.auth.bearer_token_file: the token holds white space or a control character (at byte 6): an Authorization header cannot carry it"},
		{name: "unset variable", cfg: config.AuthConfig{BearerTokenEnv: "NOPE"},
			wantErr: "server.auth.bearer_token_env: the environment variable NOPE is unset or empty"},
		{name: "empty variable", cfg: config.AuthConfig{BearerTokenEnv: "EMPTY"},
			wantErr: "server.auth.bearer_token_env: the environment variable EMPTY is unset or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := loadBearerAuth(tt.cfg, readFile, getenv, discardLogger())
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "s3cret", "errors never show the token")
				require.Nil(t, a)
				return
			}
			require.NoError(t, err)
			if tt.want == "" {
				require.Nil(t, a)
				return
			}
			require.NotNil(t, a)
			require.Equal(t, sha256Of(tt.want), a.sum)
		})
	}
}

func TestBearerAuthMiddleware(t *testing.T) {
	t.Parallel()
	a := &bearerAuth{sum: sha256Of("s3cret-token"), logger: discardLogger()}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") })
	tests := []struct {
		name      string
		header    []string // Authorization values; none when empty
		code      int
		body      string
		challenge string
	}{
		{name: "right token", header: []string{"Bearer s3cret-token"}, code: 200, body: "metrics"},
		{name: "scheme is case-insensitive", header: []string{"bearer s3cret-token"}, code: 200, body: "metrics"},
		{name: "extra spaces", header: []string{"  Bearer   s3cret-token  "}, code: 200, body: "metrics"},
		{name: "no header", code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "empty header", header: []string{""}, code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "scheme alone", header: []string{"Bearer"}, code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "scheme and space", header: []string{"Bearer "}, code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "basic auth", header: []string{"Basic dXNlcjpwYXNz"}, code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "token without scheme", header: []string{"s3cret-token"}, code: 401, body: "missing bearer token\n", challenge: `Bearer realm="sextant"`},
		{name: "wrong token", header: []string{"Bearer s3cret-tokem"}, code: 401, body: "invalid bearer token\n", challenge: `Bearer realm="sextant", error="invalid_token"`},
		{name: "prefix of the token", header: []string{"Bearer s3cret"}, code: 401, body: "invalid bearer token\n", challenge: `Bearer realm="sextant", error="invalid_token"`},
		{name: "token plus more", header: []string{"Bearer s3cret-token2"}, code: 401, body: "invalid bearer token\n", challenge: `Bearer realm="sextant", error="invalid_token"`},
		{name: "token case differs", header: []string{"Bearer S3CRET-TOKEN"}, code: 401, body: "invalid bearer token\n", challenge: `Bearer realm="sextant", error="invalid_token"`},
		{name: "first header counts", header: []string{"Bearer wrong", "Bearer s3cret-token"}, code: 401, body: "invalid bearer token\n", challenge: `Bearer realm="sextant", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			for _, h := range tt.header {
				req.Header.Add("Authorization", h)
			}
			rec := httptest.NewRecorder()
			a.wrap(next).ServeHTTP(rec, req)
			require.Equal(t, tt.code, rec.Code)
			require.Equal(t, tt.body, rec.Body.String())
			require.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
			if tt.code == http.StatusUnauthorized {
				require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
				require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			}
		})
	}

	// Off (nil) guards nothing.
	var off *bearerAuth
	rec := httptest.NewRecorder()
	off.wrap(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

// FuzzBearerAuth: no Authorization header panics the check, and only the
// token itself passes it.
func FuzzBearerAuth(f *testing.F) {
	const token = "s3cret-token"
	a := &bearerAuth{sum: sha256Of(token), logger: discardLogger()}
	for _, s := range []string{"Bearer s3cret-token", "bearer  s3cret-token ", "Bearer", "Basic x", "", "Bearer \x00", "Bearer s3cret-token extra"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header["Authorization"] = []string{h}
		err := a.check(req)
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "bearer") && strings.TrimSpace(rest) == token {
			require.NoError(t, err)
			return
		}
		require.True(t, errors.Is(err, errMissingToken) || errors.Is(err, errInvalidToken), "%v", err)
	})
}

func TestAuthConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr []string
		want    config.AuthConfig
	}{
		{name: "default is off", yaml: "server: {listen: 127.0.0.1:0}\n"},
		{name: "file", yaml: "server:\n  auth:\n    bearer_token_file: /etc/sextant/token\n", want: config.AuthConfig{BearerTokenFile: "/etc/sextant/token"}},
		{name: "env", yaml: "server:\n  auth:\n    bearer_token_env: SEXTANT_METRICS_TOKEN\n", want: config.AuthConfig{BearerTokenEnv: "SEXTANT_METRICS_TOKEN"}},
		{name: "both", yaml: "server:\n  auth:\n    bearer_token_file: /etc/sextant/token\n    bearer_token_env: SEXTANT_METRICS_TOKEN\n",
			wantErr: []string{"auth.yaml:4:23: server.auth.bearer_token_env: set bearer_token_file or bearer_token_env, not both"}},
		{name: "bad variable name", yaml: "server:\n  auth:\n    bearer_token_env: 1-TOKEN\n",
			wantErr: []string{`auth.yaml:3:23: server.auth.bearer_token_env: want an environment variable name such as SEXTANT_TOKEN (letters, digits and _, not starting with a digit), got "1-TOKEN"`}},
		{name: "the token itself is no key", yaml: "server:\n  auth:\n    bearer_token: s3cret\n",
			wantErr: []string{"auth.yaml:3:5: server.auth.bearer_token"}},
		{name: "listen and auth problems together", yaml: "server:\n  listen: nowhere\n  auth:\n    bearer_token_file: a\n    bearer_token_env: $X\n",
			wantErr: []string{"server.listen: want host:port", "server.auth.bearer_token_env: set bearer_token_file or bearer_token_env, not both", `got "$X"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("auth.yaml", []byte(tt.yaml), factories()...)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					require.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Server.Auth)
			require.Equal(t, tt.want.BearerTokenFile != "" || tt.want.BearerTokenEnv != "", cfg.Server.Auth.Enabled())
		})
	}
}

// authConfigFile writes a token file and a configuration requiring it, and
// returns the configuration's path and the token file's.
func authConfigFile(t *testing.T, token string) (cfgPath, tokenPath string) {
	t.Helper()
	dir := t.TempDir()
	tokenPath = filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenPath, []byte(token+"\n"), 0o600))
	cfgPath = filepath.Join(dir, "sextant.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("server:\n  auth:\n    bearer_token_file: %q\n", tokenPath)), 0o600))
	return cfgPath, tokenPath
}

func TestAuthConfigPrintShowsNoToken(t *testing.T) {
	t.Parallel()
	cfgPath, tokenPath := authConfigFile(t, "s3cret-token")
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"config", "print", "--config", cfgPath}, &stdout, io.Discard))
	require.NotContains(t, stdout.String(), "s3cret")
	require.Contains(t, stdout.String(), "bearer_token_file: "+tokenPath)
}

func TestAuthRefusesToStartWithoutToken(t *testing.T) {
	t.Parallel()
	cfgPath, tokenPath := authConfigFile(t, "")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", cfgPath, "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	require.EqualError(t, err, "server.auth.bearer_token_file: "+tokenPath+" holds no token")
	require.Equal(t, 1, exitCode(err, io.Discard))
	require.Empty(t, stdout.String(), "nothing started")
}

// TestAuthEndToEnd: with server.auth set, /metrics and /export want the
// token; /health* and POST /events do not; the token never reaches the
// logs.
func TestAuthEndToEnd(t *testing.T) {
	const token = "e2e-s3cret-token"
	cfgPath, _ := authConfigFile(t, token)
	addr := startDemo(t, "--tasks", "3", "--config", cfgPath)
	get := func(path string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		if len(header) > 0 {
			req.Header.Set("Authorization", header[0])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(body)
	}
	for _, path := range []string{"/metrics", "/export?format=json"} {
		code, hdr, body := get(path)
		require.Equal(t, http.StatusUnauthorized, code, path)
		require.Equal(t, "missing bearer token\n", body)
		require.Equal(t, `Bearer realm="sextant"`, hdr.Get("WWW-Authenticate"))

		code, _, body = get(path, "Bearer not-the-token")
		require.Equal(t, http.StatusUnauthorized, code, path)
		require.Equal(t, "invalid bearer token\n", body)

		code, _, body = get(path, "Bearer "+token)
		require.Equal(t, http.StatusOK, code, path)
		require.Contains(t, body, "tasker_tasks_requests_total")
	}
	for _, path := range []string{"/health", "/health/live", "/health/ready", "/health/detailed", "/"} {
		code, _, _ := get(path)
		require.Equal(t, http.StatusOK, code, path)
	}
	resp, err := http.Post("http://"+addr+"/events", "application/json", strings.NewReader(
		`{"name":"task.initialize_requested","correlation_id":"0199c3e0-ccdb-7581-87ab-3f67daeaa4a1","attrs":{"task_uuid":"t1","task_type":"external_job","namespace":"billing"}}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /events needs no token")
}

// TestAuthNeverLogsToken: at debug level, refusals are logged without the
// header, and start-up logs say auth is on without the token.
func TestAuthNeverLogsToken(t *testing.T) {
	const token = "log-s3cret-token"
	cfgPath, _ := authConfigFile(t, token)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"run", "--config", cfgPath, "--listen", "127.0.0.1:0", "--log-level", "debug"}, stdout, stderr)
	}()
	re := regexp.MustCompile(`serving http://([^/]+)/metrics`)
	require.Eventually(t, func() bool { return re.MatchString(stdout.String()) }, 30*time.Second, 10*time.Millisecond)
	addr := re.FindStringSubmatch(stdout.String())[1]
	for _, h := range []string{"Bearer " + token + "x", "Bearer " + token[:5], "Bearer " + token} {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	cancel()
	require.NoError(t, <-errc)
	logs := stderr.String()
	require.Contains(t, logs, `"reason":"invalid bearer token"`)
	require.Contains(t, logs, `"metrics_auth":true`)
	require.NotContains(t, logs, token[:5])
}

// TestAuthPrometheusScrapes: the real Prometheus scrapes a token-protected
// instance with authorization.credentials_file and gets its metrics; a job
// without the token sees the target down.
func TestAuthPrometheusScrapes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a Prometheus server; run without -short")
	}
	cfgPath, tokenPath := authConfigFile(t, "prom-s3cret-token")
	addr := startDemo(t, "--tasks", "26", "--config", cfgPath)
	base := startPrometheusWith(t, fmt.Sprintf(`  - job_name: with_token
    authorization:
      credentials_file: %q
    static_configs:
      - targets: [%q]
  - job_name: without_token
    static_configs:
      - targets: [%q]
`, tokenPath, addr, addr))
	require.Eventually(t, func() bool {
		res, err := promQuery(base, `sum(tasker_tasks_completions_total{job="with_token"})`)
		return err == nil && len(res) == 1 && res[0].Value[1] == "26"
	}, 60*time.Second, 250*time.Millisecond, "Prometheus never saw 26 completions with the token")
	require.Eventually(t, func() bool {
		res, err := promQuery(base, `up{job="without_token"}`)
		return err == nil && len(res) == 1 && res[0].Value[1] == "0"
	}, 30*time.Second, 250*time.Millisecond, "the job without a token must see the target down")
	require.Equal(t, 1.0, promScalar(t, base, `up{job="with_token"}`))
	res, err := promQuery(base, `tasker_tasks_requests_total{job="without_token"}`)
	require.NoError(t, err)
	require.Empty(t, res, "no sample without the token")
}

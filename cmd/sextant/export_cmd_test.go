package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// TestExportCommand runs `sextant export` against the demo's service: each
// format to a file and to stdout, filters, and the server's refusals.
func TestExportCommand(t *testing.T) {
	addr := startDemo(t, "--tasks", "26")
	base := "http://" + addr
	dir := t.TempDir()
	for _, format := range []string{"prometheus", "openmetrics", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, "export."+format)
			var stdout bytes.Buffer
			require.NoError(t, run(context.Background(), []string{"export", "--url", base, "--format", format, "--out", out}, &stdout, io.Discard))
			require.Regexp(t, `^wrote \d+ bytes \(`+format+`, export [0-9a-f-]{36}\) to `, stdout.String())
			body, err := os.ReadFile(out)
			require.NoError(t, err)
			if sum := checkExportBody(t, format, body); sum >= 0 {
				require.Equal(t, 26.0, sum)
			}
			fi, err := os.Stat(out)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

			stdout.Reset()
			require.NoError(t, run(context.Background(), []string{"export", "--url", base + "/", "--format", format}, &stdout, io.Discard))
			checkExportBody(t, format, stdout.Bytes())
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 4, "no temporary file is left behind")

	t.Run("filters", func(t *testing.T) {
		var stdout bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"export", "--url", base, "--format", "prometheus",
			"--match", "tasker_tasks_requests_*", "--match", "tasker_steps_enqueued_*", "--label", `namespace="rust_e2e_linear"`, "--label", "task_type!=other"}, &stdout, io.Discard))
		body := stdout.String()
		require.Equal(t, 26.0, checkExportBody(t, "prometheus", stdout.Bytes()))
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			require.Regexp(t, `^tasker_(tasks_requests|steps_enqueued)_total\{`, line)
		}
		require.Contains(t, body, "tasker_steps_enqueued_total{")
	})

	t.Run("unknown format", func(t *testing.T) {
		var stdout bytes.Buffer
		out := filepath.Join(dir, "never.xml")
		err := run(context.Background(), []string{"export", "--url", base, "--format", "xml", "--out", out}, &stdout, io.Discard)
		require.Error(t, err)
		require.Equal(t, 1, exitCode(err, io.Discard))
		require.Contains(t, err.Error(), `server answered 400 Bad Request: format: unknown export format "xml": known formats are `)
		for _, f := range []string{"csv", "json", "openmetrics", "prometheus"} {
			require.Contains(t, err.Error(), f)
		}
		require.NoFileExists(t, out)
		require.Empty(t, stdout.String())
	})

	t.Run("bad matcher", func(t *testing.T) {
		err := run(context.Background(), []string{"export", "--url", base, "--format", "json", "--label", "namespace"}, io.Discard, io.Discard)
		require.Equal(t, 1, exitCode(err, io.Discard))
		require.ErrorContains(t, err, `server answered 400 Bad Request: label: invalid label matcher "namespace": `)
	})
}

func TestExportCommandUsage(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("\n"), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no format", []string{"export"}, 2, "--format FORMAT is required"},
		{"bad url", []string{"export", "--format", "json", "--url", "127.0.0.1:9464"}, 2, "--url: want http://HOST:PORT"},
		{"stray argument", []string{"export", "--format", "json", "extra"}, 2, `unexpected argument "extra"`},
		{"bad timeout", []string{"export", "--format", "json", "--timeout", "0s"}, 2, "--timeout: want a positive duration"},
		{"unknown flag", []string{"export", "--nope"}, 2, "flag provided but not defined"},
		{"missing token file", []string{"export", "--format", "json", "--token-file", filepath.Join(t.TempDir(), "nope")}, 1, "--token-file: open "},
		{"empty token file", []string{"export", "--format", "json", "--token-file", tokenFile}, 1, "holds no token"},
		{"nobody listening", []string{"export", "--format", "json", "--url", "http://127.0.0.1:1"}, 1, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			require.Equal(t, tt.code, exitCode(err, io.Discard), "err: %v", err)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestExportCommandSendsToken: the token comes from --token-file, else
// $SEXTANT_TOKEN, and a non-JSON refusal (auth's) is passed on as text.
func TestExportCommandSendsToken(t *testing.T) {
	auth := &bearerAuth{sum: sha256Of("s3cret")}
	auth.logger = discardLogger()
	srv := httptest.NewServer(auth.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))

	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"export", "--url", srv.URL, "--format", "json", "--token-file", tokenFile}, &stdout, io.Discard))
	require.JSONEq(t, `{"ok":true}`, stdout.String())

	err := run(context.Background(), []string{"export", "--url", srv.URL, "--format", "json"}, io.Discard, io.Discard)
	require.EqualError(t, err, "server answered 401 Unauthorized: missing bearer token")

	t.Setenv(tokenEnv, "wrong")
	err = run(context.Background(), []string{"export", "--url", srv.URL, "--format", "json"}, io.Discard, io.Discard)
	require.EqualError(t, err, "server answered 401 Unauthorized: invalid bearer token")

	t.Setenv(tokenEnv, "s3cret")
	stdout.Reset()
	require.NoError(t, run(context.Background(), []string{"export", "--url", srv.URL, "--format", "json"}, &stdout, io.Discard))
	require.JSONEq(t, `{"ok":true}`, stdout.String())
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing *os.FileMode // nil: no file yet
		input    io.Reader
		wantErr  string
		want     string // the file's content afterwards
		wantMode os.FileMode
	}{
		{name: "new file", input: strings.NewReader("new\n"), want: "new\n", wantMode: 0o644},
		{name: "replaces and keeps the mode", existing: ptr(os.FileMode(0o600)), input: strings.NewReader("new\n"), want: "new\n", wantMode: 0o600},
		{name: "a failed read leaves the old file", existing: ptr(os.FileMode(0o640)),
			input:   io.MultiReader(strings.NewReader("half"), iotest.ErrReader(errors.New("connection reset"))),
			wantErr: "reading the export: connection reset", want: "old\n", wantMode: 0o640},
		{name: "a failed read leaves no file", input: iotest.ErrReader(errors.New("connection reset")), wantErr: "connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "out.prom")
			if tt.existing != nil {
				require.NoError(t, os.WriteFile(path, []byte("old\n"), *tt.existing))
				require.NoError(t, os.Chmod(path, *tt.existing))
			}
			_, err := writeFileAtomic(path, tt.input)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			if tt.want == "" {
				require.Empty(t, entries, "neither the file nor a temporary one")
				return
			}
			require.Len(t, entries, 1, "no temporary file is left behind")
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, tt.wantMode, fi.Mode().Perm())
		})
	}
	// A directory that does not exist is an error naming it.
	_, err := writeFileAtomic(filepath.Join(t.TempDir(), "missing", "out.prom"), strings.NewReader("x"))
	require.ErrorContains(t, err, "--out: ")
	require.ErrorContains(t, err, "missing")
}

func TestExportEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base string
		match      []string
		labels     []string
		pretty     bool
		want       string
	}{
		{name: "plain", base: "http://127.0.0.1:9464", want: "http://127.0.0.1:9464/export?format=json"},
		{name: "trailing slash and a prefix", base: "https://sextant.example/metrics-api/", want: "https://sextant.example/metrics-api/export?format=json"},
		{name: "filters escaped", base: "http://h:1", match: []string{"tasker_*"}, labels: []string{`namespace="a b"`, "result!=error"}, pretty: true,
			want: "http://h:1/export?format=json&label=namespace%3D%22a+b%22&label=result%21%3Derror&match=tasker_%2A&pretty=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := exportEndpoint(tt.base, "json", tt.match, tt.labels, tt.pretty)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

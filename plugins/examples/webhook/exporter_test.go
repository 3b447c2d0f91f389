package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testSecret = "s3cr3t-t0ken"

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testExporter is the plugin with HOOK_TOKEN set, no wait between
// attempts, and its log kept.
func testExporter() (*exporter, *syncBuffer) {
	e := newExporter()
	logs := &syncBuffer{}
	e.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.getenv = func(k string) string {
		if k == "HOOK_TOKEN" {
			return testSecret
		}
		return ""
	}
	e.backoff = func(int) time.Duration { return time.Millisecond }
	return e, logs
}

// dial serves e through the SDK on an in-memory connection, as Sextant
// would reach it.
func dial(t *testing.T, e sdk.Exporter) pluginv1.ExporterClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	pluginv1.RegisterExporterServer(gs, sdk.NewServer(e))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-served
	})
	return pluginv1.NewExporterClient(conn)
}

func configure(t *testing.T, c pluginv1.ExporterClient, section string) []string {
	t.Helper()
	res, err := c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: []byte(section)})
	require.NoError(t, err)
	var out []string
	for _, fe := range res.GetErrors() {
		out = append(out, fe.GetPath()+": "+fe.GetMessage())
	}
	return out
}

func export(ctx context.Context, c pluginv1.ExporterClient, s *exporters.Snapshot, opts map[string]string) (*pluginv1.ExportResponse, error) {
	return c.Export(ctx, wire.ExportRequest(s, exporters.ExportRequest{ID: "e-1", Format: format, Target: "on_demand", Options: opts}))
}

// sampleSnapshot is exporters/json's sample: every metric type, NaN and
// ±Inf, resource attributes, exemplars, and labels that need escaping.
func sampleSnapshot(t *testing.T) *exporters.Snapshot {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "snapshot.json"))
	require.NoError(t, err)
	defer f.Close()
	s, err := jsonexp.Decode(f)
	require.NoError(t, err)
	return s
}

// builtinJSON is what the in-process JSON exporter writes for s.
func builtinJSON(t *testing.T, s *exporters.Snapshot, pretty bool) string {
	t.Helper()
	var buf bytes.Buffer
	opts := map[string]string{"pretty": map[bool]string{false: "false", true: "true"}[pretty]}
	_, err := jsonexp.New().Export(t.Context(), s, exporters.ExportRequest{Format: exporters.FormatJSON, Options: opts}, &buf)
	require.NoError(t, err)
	return buf.String()
}

type received struct {
	header http.Header
	body   string
}

// receiver is an httptest server that records every POST and answers
// with the statuses given, then 204.
func receiver(t *testing.T, statuses ...int) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 16)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), string(b)}
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
			_, _ = io.WriteString(w, http.StatusText(statuses[i])+" — try later")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	e, _ := testExporter()
	d, err := dial(t, e).Describe(t.Context(), &pluginv1.DescribeRequest{})
	require.NoError(t, err)
	require.Equal(t, "webhook", d.GetName())
	require.Equal(t, []string{"webhook"}, d.GetFormats())
	require.Equal(t, []pluginv1.Capability{pluginv1.Capability_CAPABILITY_CONFIGURE}, d.GetCapabilities())
}

func TestPostsTheBuiltinJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pretty string // the config's
		opts   map[string]string
		want   bool
	}{
		{name: "compact", pretty: "false"},
		{name: "pretty from the config", pretty: "true", want: true},
		{name: "the export option wins", pretty: "true", opts: map[string]string{"pretty": "false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := receiver(t)
			e, logs := testExporter()
			c := dial(t, e)
			require.Empty(t, configure(t, c, `{"url":"`+srv.URL+`/hook?key=1","pretty":`+tt.pretty+`,
				"headers":{"Authorization":"Bearer ${HOOK_TOKEN}","X-Price":"$$5 $x","content-type":"application/vnd.sextant+json"}}`))
			s := sampleSnapshot(t)
			res, err := export(t.Context(), c, s, tt.opts)
			require.NoError(t, err)

			r := <-got
			want := builtinJSON(t, s, tt.want)
			require.Equal(t, want, r.body, "byte for byte what the built-in JSON exporter writes")
			require.Equal(t, want, string(res.GetData()))
			require.Equal(t, "application/json", res.GetContentType())
			require.Equal(t, srv.URL+"/hook", res.GetDestination(), "no query in the destination")
			require.Equal(t, "Bearer "+testSecret, r.header.Get("Authorization"))
			require.Equal(t, "$5 $x", r.header.Get("X-Price"))
			require.Equal(t, "application/vnd.sextant+json", r.header.Get("Content-Type"), "a configured header wins")
			require.Equal(t, "e-1", r.header.Get("X-Sextant-Export-Id"))
			require.Equal(t, "sextant-webhook/"+version, r.header.Get("User-Agent"))
			require.NotContains(t, logs.String(), testSecret)
			require.Contains(t, logs.String(), `"headers":["Authorization","Content-Type","X-Price"]`)
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, http.StatusServiceUnavailable, http.StatusBadGateway)
	e, logs := testExporter()
	var waits []int
	var mu sync.Mutex
	e.backoff = func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, n)
		return time.Millisecond
	}
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"url":"`+srv.URL+`","retries":2}`))
	s := sampleSnapshot(t)
	res, err := export(t.Context(), c, s, nil)
	require.NoError(t, err, "the third attempt succeeds")
	require.Len(t, got, 3)
	want := builtinJSON(t, s, false)
	for range 3 {
		require.Equal(t, want, (<-got).body, "every attempt sends the whole body")
	}
	require.Equal(t, want, string(res.GetData()))
	require.Equal(t, []int{0, 1}, waits)
	require.Contains(t, logs.String(), `"attempt":1`)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		statuses  []int
		retries   int
		wantCode  codes.Code
		wantMsg   string
		wantCalls int
	}{
		{name: "400 is not retried", statuses: []int{400}, retries: 3, wantCode: codes.Internal, wantCalls: 1,
			wantMsg: "POST {url} answered 400 Bad Request: Bad Request — try later (attempt 1 of 4)"},
		{name: "retries run out", statuses: []int{503, 503, 500}, retries: 2, wantCode: codes.Unavailable, wantCalls: 3,
			wantMsg: "POST {url} answered 500 Internal Server Error: Internal Server Error — try later (attempt 3 of 3)"},
		{name: "no retries", statuses: []int{429}, retries: 0, wantCode: codes.Unavailable, wantCalls: 1,
			wantMsg: "POST {url} answered 429 Too Many Requests: Too Many Requests — try later"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := receiver(t, tt.statuses...)
			e, _ := testExporter()
			c := dial(t, e)
			require.Empty(t, configure(t, c, `{"url":"http://user:pw@`+strings.TrimPrefix(srv.URL, "http://")+`/h?token=x","retries":`+
				map[int]string{0: "0", 2: "2", 3: "3"}[tt.retries]+`}`))
			_, err := export(t.Context(), c, sampleSnapshot(t), nil)
			require.Equal(t, tt.wantCode, status.Code(err), "%v", err)
			require.Equal(t, strings.ReplaceAll(tt.wantMsg, "{url}", srv.URL+"/h"), status.Convert(err).Message())
			require.Len(t, got, tt.wantCalls)
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"url":"`+addr+`/h","retries":1}`))
	_, err := export(t.Context(), c, sampleSnapshot(t), nil)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	msg := status.Convert(err).Message()
	require.Contains(t, msg, "POST "+addr+"/h: ")
	require.Contains(t, msg, "connection refused")
	require.Contains(t, msg, "(attempt 2 of 2)")
}

func TestRetryHonoursTheDeadline(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	e, _ := testExporter()
	e.backoff = func(int) time.Duration { return time.Hour } // longer than any deadline
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"url":"`+srv.URL+`","retries":5}`))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := export(ctx, c, sampleSnapshot(t), nil)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "(attempt 1 of 6); no time left before the export's deadline to try again")
	require.Len(t, got, 1, "no attempt it could not wait for")
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, retryAfter(tt.in, now), tt.in)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n, limit := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second} {
		for range 20 {
			d := jitteredBackoff(n)
			require.GreaterOrEqual(t, d, limit/2, "retry %d", n)
			require.LessOrEqual(t, d, limit, "retry %d", n)
		}
	}
	require.LessOrEqual(t, jitteredBackoff(60), maxBackoff, "no overflow")
}

func TestBadOption(t *testing.T) {
	t.Parallel()
	srv, got := receiver(t)
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"url":"`+srv.URL+`"}`))
	_, err := export(t.Context(), c, sampleSnapshot(t), map[string]string{"pretty": "very"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, `option pretty="very": want true or false`, status.Convert(err).Message())
	require.Empty(t, got)
}

func TestConfigureErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		section string
		want    []string
	}{
		{name: "url is required", section: `{}`, want: []string{"url: required: where to POST the snapshots, e.g. https://example.com/hooks/metrics"}},
		{name: "types and unknown keys", section: `{"url":"http://x","timeout":3,"retries":"2","pretty":"yes","headers":["a"],"method":"PUT"}`, want: []string{
			"headers: must be a mapping, got a list",
			"method: unknown field (known: headers, pretty, retries, timeout, url)",
			`pretty: must be true or false, got string "yes"`,
			`retries: must be an integer, got string "2"`,
			`timeout: must be a duration such as "5s" or "1m30s", got number 3`,
		}},
		{name: "url", section: `{"url":"ftp://x"}`, want: []string{`url: want an http or https URL; got scheme "ftp"`}},
		{name: "url without host", section: `{"url":"http:///path"}`, want: []string{"url: want an http or https URL with a host"}},
		{name: "limits", section: `{"url":"http://x","timeout":"0s","retries":11}`, want: []string{
			"retries: must be between 0 and 10; got 11",
			"timeout: must be positive (leave it out for 10s); got 0s",
		}},
		{name: "headers", section: `{"url":"http://x","headers":{"Bad Name":"v","Host":"h","X-A":"${HOOK_TOKEN","X-B":"${1X}","X-C":"${UNSET}","X-D":"a\nb","x-e":"1","X-E":"2"}}`, want: []string{
			`headers.Host: is set by HTTP itself and cannot be configured`,
			`headers.X-A: ${ without a closing }`,
			`headers.X-B: ${1X}: want an environment variable name (letters, digits and _, not starting with a digit)`,
			`headers.X-C: the environment variable UNSET is not set or is empty`,
			`headers.X-D: the value holds a line break or NUL (after expanding ${...})`,
			`headers.x-e: names the same header as another key (header names ignore case)`,
			`headers["Bad Name"]: not a valid HTTP header name`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, logs := testExporter()
			c := dial(t, e)
			require.Equal(t, tt.want, configure(t, c, tt.section))
			require.NotContains(t, logs.String(), testSecret)
		})
	}
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	e, _ := testExporter()
	_, err := e.Export(t.Context(), &sdk.Request{Snapshot: sampleSnapshot(t)}, io.Discard)
	require.EqualError(t, err, "not configured: set url in the plugin's config section")
}

func TestExpand(t *testing.T) {
	t.Parallel()
	env := func(k string) string { return map[string]string{"A": "1", "B_2": "two"}[k] }
	tests := []struct{ in, want, wantErr string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1"},
		{in: "x${A}y${B_2}z", want: "x1ytwoz"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$A $", want: "$A $"},
		{in: "${}", wantErr: "${}: want an environment variable name"},
		{in: "${C}", wantErr: "the environment variable C is not set or is empty"},
		{in: "a${A", wantErr: "${ without a closing }"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, env)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "${A}", "$$", "${", "a$", "${A}${B}$${C}", "$}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := expand(s, func(k string) string { return "<" + k + ">" })
		if err != nil {
			return
		}
		// Without $ signs the value is unchanged; with them, every ${NAME}
		// became <NAME>.
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expand(%q) = %q", s, got)
		}
		if strings.Contains(got, "${") && !strings.Contains(s, "$${") {
			t.Fatalf("expand(%q) = %q left a reference", s, got)
		}
	})
}

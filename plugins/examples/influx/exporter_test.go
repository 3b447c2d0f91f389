package main

import (
	"bytes"
	"compress/gzip"
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
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "s3cr3t-t0ken"

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

// testExporter is the plugin with INFLUX_TOKEN set and its log kept.
func testExporter() (*exporter, *syncBuffer) {
	e := newExporter()
	logs := &syncBuffer{}
	e.log = slog.New(slog.NewJSONHandler(logs, nil))
	e.getenv = func(k string) string {
		if k == "INFLUX_TOKEN" {
			return testToken
		}
		return ""
	}
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

func configure(t *testing.T, c pluginv1.ExporterClient, section string) []*pluginv1.FieldError {
	t.Helper()
	res, err := c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: []byte(section)})
	require.NoError(t, err)
	return res.GetErrors()
}

func export(t *testing.T, c pluginv1.ExporterClient, s *exporters.Snapshot) (*pluginv1.ExportResponse, error) {
	t.Helper()
	return c.Export(t.Context(), wire.ExportRequest(s, exporters.ExportRequest{ID: "e-1", Format: format, Target: "on_demand"}))
}

// wantLines is the line protocol of s as the plugin writes it with opts.
func wantLines(t *testing.T, s *exporters.Snapshot, opts encodeOptions) string {
	t.Helper()
	b, _, err := encode(t.Context(), nil, s, opts)
	require.NoError(t, err)
	return string(b)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	e, _ := testExporter()
	d, err := dial(t, e).Describe(t.Context(), &pluginv1.DescribeRequest{})
	require.NoError(t, err)
	require.Equal(t, "influx", d.GetName())
	require.Equal(t, []string{"influx"}, d.GetFormats())
	require.Equal(t, []pluginv1.Capability{pluginv1.Capability_CAPABILITY_CONFIGURE}, d.GetCapabilities())
}

func TestExportDataOnly(t *testing.T) {
	t.Parallel()
	e, logs := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{}`))
	s := sampleSnapshot(t)
	res, err := export(t, c, s)
	require.NoError(t, err)
	golden, err := os.ReadFile(filepath.Join("testdata", "snapshot.influx"))
	require.NoError(t, err)
	require.Equal(t, string(golden), string(res.GetData()), "the golden file, through the protocol")
	require.Equal(t, "text/plain; charset=utf-8", res.GetContentType())
	require.Empty(t, res.GetDestination())
	require.Equal(t, int64(s.SeriesCount()-3), res.GetSeries(), "every series but the NaN and ±Inf ones")
	require.Contains(t, logs.String(), `"skipped":3`)
}

func TestHTTPDelivery(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			t.Parallel()
			type received struct {
				method, path string
				query        map[string][]string
				header       http.Header
				body         string
			}
			got := make(chan received, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body io.Reader = r.Body
				if r.Header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					body = zr
				}
				b, _ := io.ReadAll(body)
				got <- received{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), string(b)}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			e, logs := testExporter()
			c := dial(t, e)
			section := `{"url":"` + srv.URL + `/api/v2/write?extra=1","org":"my org","bucket":"metrics","token_env":"INFLUX_TOKEN",
				"precision":"ms","timeout":"5s","tags":{"env":"test"}` + map[bool]string{false: "", true: `,"gzip":true`}[gz] + `}`
			require.Empty(t, configure(t, c, section))
			s := sampleSnapshot(t)
			res, err := export(t, c, s)
			require.NoError(t, err)

			r := <-got
			require.Equal(t, http.MethodPost, r.method)
			require.Equal(t, "/api/v2/write", r.path)
			require.Equal(t, map[string][]string{"org": {"my org"}, "bucket": {"metrics"}, "precision": {"ms"}, "extra": {"1"}}, r.query)
			require.Equal(t, "Token "+testToken, r.header.Get("Authorization"))
			require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
			require.Equal(t, "sextant-influx/"+version, r.header.Get("User-Agent"))
			want := wantLines(t, s, encodeOptions{precision: precisionMS, tags: []exporters.Label{{Name: "env", Value: "test"}}})
			require.Equal(t, want, r.body)
			require.Equal(t, want, string(res.GetData()))
			require.Equal(t, srv.URL+"/api/v2/write", res.GetDestination(), "no query in the destination")
			require.NotContains(t, logs.String(), testToken)
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "bad request", status: http.StatusBadRequest, body: `{"code":"invalid","message":"unable to parse` + "\n\t" + `'x': bad timestamp"}`,
			wantCode: codes.Internal, wantMsg: `answered 400 Bad Request: {"code":"invalid","message":"unable to parse 'x': bad timestamp"}`},
		{name: "unauthorized", status: http.StatusUnauthorized, body: `{"code":"unauthorized","message":"unauthorized access"}`,
			wantCode: codes.Internal, wantMsg: "answered 401 Unauthorized"},
		{name: "long body is cut", status: http.StatusNotFound, body: strings.Repeat("x", 500),
			wantCode: codes.Internal, wantMsg: "answered 404 Not Found: " + strings.Repeat("x", 200) + "…"},
		{name: "down for maintenance", status: http.StatusServiceUnavailable, body: "",
			wantCode: codes.Unavailable, wantMsg: "answered 503 Service Unavailable"},
		{name: "rate limited", status: http.StatusTooManyRequests, wantCode: codes.Unavailable, wantMsg: "answered 429 Too Many Requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			e, _ := testExporter()
			c := dial(t, e)
			require.Empty(t, configure(t, c, `{"url":"`+srv.URL+`/api/v2/write","org":"o","bucket":"b","token_env":"INFLUX_TOKEN"}`))
			_, err := export(t, c, sampleSnapshot(t))
			require.Equal(t, tt.wantCode, status.Code(err), "%v", err)
			msg := status.Convert(err).Message()
			require.Contains(t, msg, "InfluxDB at "+srv.URL+"/api/v2/write "+tt.wantMsg)
			require.NotContains(t, msg, testToken)
			require.NotContains(t, msg, "bucket=")
		})
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"url":"`+addr+`/api/v2/write","org":"o","bucket":"b","token_env":"INFLUX_TOKEN"}`))
	_, err := export(t, c, sampleSnapshot(t))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	msg := status.Convert(err).Message()
	require.Contains(t, msg, "post to "+addr+"/api/v2/write: ")
	require.Contains(t, msg, "connection refused")
	require.NotContains(t, msg, "org=")
}

func TestFileOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.influx")
	require.NoError(t, os.WriteFile(path, []byte("old\n"), 0o600))
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"output":"`+path+`","precision":"s"}`))
	s := sampleSnapshot(t)
	res, err := export(t, c, s)
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, wantLines(t, s, encodeOptions{precision: precisionS}), string(got))
	require.Equal(t, string(got), string(res.GetData()))
	require.Equal(t, path, res.GetDestination())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// A directory that disappears after Configure fails the export.
	require.NoError(t, os.RemoveAll(dir))
	_, err = export(t, c, s)
	require.Equal(t, codes.Internal, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "write "+path+": ")
}

func TestFileAndHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "out.lp")
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"output":"`+path+`","url":"`+srv.URL+`","org":"o","bucket":"b"}`))
	res, err := export(t, c, sampleSnapshot(t))
	require.NoError(t, err)
	require.Equal(t, path+", "+srv.URL, res.GetDestination())
}

func TestConfigureErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		section string
		want    []string // "path: message"
	}{
		{name: "types and unknown keys", section: `{"url":1,"precision":"minutes","timeout":"soon","tags":{"a":1},"token":"x"}`, want: []string{
			"precision: want ns, us, ms or s; got \"minutes\"",
			"tags.a: must be a string, got number 1",
			"timeout: must be a duration such as \"5s\" or \"1m30s\", got \"soon\"",
			"token: unknown field (known: bucket, gzip, org, output, precision, tags, timeout, token_env, url)",
			"url: must be a string, got number 1",
		}},
		{name: "url needs org and bucket", section: `{"url":"http://127.0.0.1:8086/api/v2/write"}`, want: []string{
			"bucket: required with url: the InfluxDB bucket to write to",
			"org: required with url: the InfluxDB organization (name or ID)",
		}},
		{name: "bad urls", section: `{"url":"ftp://x/y","org":"o","bucket":"b"}`, want: []string{
			`url: want an http or https URL such as http://127.0.0.1:8086/api/v2/write; got scheme "ftp"`,
		}},
		{name: "credentials in the url", section: `{"url":"http://user:pw@x/api/v2/write","org":"o","bucket":"b"}`, want: []string{
			"url: must not hold credentials; put the token in an environment variable named by token_env",
		}},
		{name: "query parameters the plugin sets", section: `{"url":"http://x/api/v2/write?bucket=a","org":"o","bucket":"b"}`, want: []string{
			"url: must not set the query parameter bucket; the plugin sets it from the bucket key",
		}},
		{name: "keys that need url", section: `{"org":"o","bucket":"b","token_env":"INFLUX_TOKEN","gzip":true}`, want: []string{
			"bucket: applies only with url; set url or remove it",
			"gzip: applies only with url; set url or remove it",
			"org: applies only with url; set url or remove it",
			"token_env: applies only with url; set url or remove it",
		}},
		{name: "token variable unset", section: `{"url":"http://x","org":"o","bucket":"b","token_env":"NOT_SET"}`, want: []string{
			"token_env: the environment variable NOT_SET is not set or is empty",
		}},
		{name: "token variable name", section: `{"url":"http://x","org":"o","bucket":"b","token_env":"1 bad"}`, want: []string{
			`token_env: want the name of an environment variable (letters, digits and _, not starting with a digit); got "1 bad"`,
		}},
		{name: "output", section: `{"output":"` + filepath.Join(dir, "missing", "x.lp") + `"}`, want: []string{
			"output: the directory " + filepath.Join(dir, "missing") + " does not exist",
		}},
		{name: "output is a directory", section: `{"output":"` + dir + `"}`, want: []string{
			"output: " + dir + " is a directory; want a file name",
		}},
		{name: "tags and timeout", section: `{"timeout":"-1s","tags":{"":"x","time":"t","k":"","\\":"v","ok":"\\"}}`, want: []string{
			"tags.k: a tag value must not be empty",
			"tags.ok: a tag value must not be empty",
			`tags.time: InfluxDB reserves the tag key "time"`,
			`tags[""]: a tag key must not be empty`,
			`tags["\\"]: a tag key must not be empty`,
			"timeout: must be positive (leave it out for 10s); got -1s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, _ := testExporter()
			c := dial(t, e)
			var got []string
			for _, fe := range configure(t, c, tt.section) {
				got = append(got, fe.GetPath()+": "+fe.GetMessage())
			}
			require.Equal(t, tt.want, got)
			// The defaults stay in effect: data only, nanoseconds.
			res, err := export(t, c, sampleSnapshot(t))
			require.NoError(t, err)
			require.Empty(t, res.GetDestination())
		})
	}
}

func TestConfigureKeepsPreviousOnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.lp")
	e, _ := testExporter()
	c := dial(t, e)
	require.Empty(t, configure(t, c, `{"output":"`+path+`"}`))
	require.NotEmpty(t, configure(t, c, `{"output":"`+path+`","precision":"hours"}`))
	res, err := export(t, c, sampleSnapshot(t))
	require.NoError(t, err)
	require.Equal(t, path, res.GetDestination())
}

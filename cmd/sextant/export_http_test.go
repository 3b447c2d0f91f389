package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/exporters"
)

// fakeRegistry is an exportRegistry whose Export is a function field.
type fakeRegistry struct {
	formats []string
	export  func(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error)
}

func (f *fakeRegistry) Formats() []string { return f.formats }
func (f *fakeRegistry) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	return f.export(ctx, s, req, w)
}

var _ exportRegistry = (*fakeRegistry)(nil)

// testSnapshot holds two families of two series each.
func testSnapshot() *exporters.Snapshot {
	at := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	series := func(ns string, v float64) exporters.Series {
		return exporters.Series{Labels: []exporters.Label{{Name: "namespace", Value: ns}}, Value: v, Time: at}
	}
	return &exporters.Snapshot{Time: at, Families: []exporters.Family{
		{Name: "tasker.steps.enqueued.total", PromName: "tasker_steps_enqueued_total", Type: exporters.TypeCounter,
			Series: []exporters.Series{series("billing", 3), series("shipping", 4)}},
		{Name: "tasker.tasks.requests.total", PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
			Series: []exporters.Series{series("billing", 1), series("shipping", 2)}},
	}}
}

// echoRegistry writes one line per series it is given: "name labels value".
func echoRegistry(got *exporters.ExportRequest) *fakeRegistry {
	return &fakeRegistry{formats: []string{"csv", "json", "prometheus"}, export: func(_ context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
		if got != nil {
			*got = req
		}
		var b strings.Builder
		for _, f := range s.Families {
			for _, se := range f.Series {
				fmt.Fprintf(&b, "%s %v %g\n", f.PromName, se.Labels, se.Value)
			}
		}
		n, err := io.WriteString(w, b.String())
		return exporters.ExportResult{Exporter: "echo", Format: req.Format, ContentType: "text/x-echo", Series: s.SeriesCount(), Bytes: int64(n)}, err
	}}
}

func newTestExportAPI(t *testing.T, opts exportOptions) *exportAPI {
	t.Helper()
	if opts.Read == nil {
		opts.Read = func(context.Context) (*exporters.Snapshot, error) { return testSnapshot(), nil }
	}
	if opts.Registry == nil {
		opts.Registry = echoRegistry(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := newExportAPI(opts)
	require.NoError(t, err)
	return h
}

func TestExportHTTP(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name     string
		query    string
		code     int
		wantBody []string // substrings
		notBody  []string
		wantReq  exporters.ExportRequest // Format, Target, Options; when code is 200
		download bool
		base     map[string]string // exportOptions.Options
	}{
		{name: "everything", query: "format=prometheus", code: 200,
			wantBody: []string{"tasker_steps_enqueued_total [{namespace billing}] 3", "tasker_tasks_requests_total [{namespace shipping}] 2"},
			wantReq:  exporters.ExportRequest{Format: "prometheus", Target: "on_demand", Options: map[string]string{}}},
		{name: "format is case-insensitive", query: "format=JSON", code: 200,
			wantReq: exporters.ExportRequest{Format: "json", Target: "on_demand", Options: map[string]string{}}},
		{name: "match keeps families by glob, and leaves out target_info", query: "format=csv&match=tasker_tasks_*", code: 200,
			wantBody: []string{"tasker_tasks_requests_total"}, notBody: []string{"tasker_steps_enqueued_total"},
			wantReq: exporters.ExportRequest{Format: "csv", Target: "on_demand", Options: map[string]string{"target_info": "false"}}},
		{name: "any match may match", query: "format=csv&match=tasker_tasks_*&match=*enqueued*", code: 200,
			wantBody: []string{"tasker_tasks_requests_total", "tasker_steps_enqueued_total"},
			wantReq:  exporters.ExportRequest{Format: "csv", Target: "on_demand", Options: map[string]string{"target_info": "false"}}},
		{name: "a match for target_info keeps it", query: "format=prometheus&match=tasker_tasks_*&match=target_*", code: 200,
			wantReq: exporters.ExportRequest{Format: "prometheus", Target: "on_demand", Options: map[string]string{}}},
		{name: "label matchers all hold", query: "format=csv&" + url.Values{"label": {`namespace="billing"`, "namespace!=shipping"}}.Encode(), code: 200,
			wantBody: []string{"{namespace billing}] 3", "{namespace billing}] 1"}, notBody: []string{"shipping"},
			wantReq: exporters.ExportRequest{Format: "csv", Target: "on_demand", Options: map[string]string{}}},
		{name: "regexp matcher", query: "format=csv&" + url.Values{"label": {`namespace=~"ship.*"`}}.Encode(), code: 200,
			wantBody: []string{"{namespace shipping}] 4"}, notBody: []string{"billing"},
			wantReq: exporters.ExportRequest{Format: "csv", Target: "on_demand", Options: map[string]string{}}},
		{name: "pretty is an option", query: "format=json&pretty=true", code: 200,
			wantReq: exporters.ExportRequest{Format: "json", Target: "on_demand", Options: map[string]string{"pretty": "true"}}},
		{name: "pretty=false is no option", query: "format=json&pretty=false", code: 200,
			wantReq: exporters.ExportRequest{Format: "json", Target: "on_demand", Options: map[string]string{}}},
		{name: "the service's options come first", query: "format=json&pretty=1", code: 200, base: map[string]string{"target_info": "false"},
			wantReq: exporters.ExportRequest{Format: "json", Target: "on_demand", Options: map[string]string{"pretty": "true", "target_info": "false"}}},
		{name: "download", query: "format=json&download=true", code: 200, download: true,
			wantReq: exporters.ExportRequest{Format: "json", Target: "on_demand", Options: map[string]string{}}},
		{name: "no format", query: "", code: 400, wantBody: []string{`"error": "format: required: one of csv, json, prometheus"`, `"formats": [`}},
		{name: "unknown format", query: "format=xml", code: 400, wantBody: []string{`format: unknown export format \"xml\": known formats are csv, json, prometheus`, `"csv"`}},
		{name: "bad matcher", query: "format=json&label=namespace", code: 400, wantBody: []string{`"error": "label: invalid label matcher \"namespace\": `, `"formats"`}},
		{name: "bad regexp", query: "format=json&" + url.Values{"label": {`namespace=~"("`}}.Encode(), code: 400, wantBody: []string{`"error": "label: `, `invalid label matcher namespace=~\"(\": error parsing regexp: missing closing )`}},
		{name: "bad glob", query: "format=json&match=tasker_[", code: 400, wantBody: []string{`"error": "match: invalid name glob \"tasker_[\": syntax error in pattern`}},
		{name: "unknown parameter", query: "format=json&matcher=x", code: 400, wantBody: []string{`matcher: unknown parameter (known: format, match, label, pretty, download)`}},
		{name: "format twice", query: "format=json&format=csv", code: 400, wantBody: []string{`format: given more than once`}},
		{name: "bad pretty", query: "format=json&pretty=yes", code: 400, wantBody: []string{`pretty: want true or false, got \"yes\"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got exporters.ExportRequest
			h := newTestExportAPI(t, exportOptions{Registry: echoRegistry(&got), Now: func() time.Time { return at }, Options: tt.base})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/export?"+tt.query, nil))
			body := rec.Body.String()
			require.Equal(t, tt.code, rec.Code, body)
			for _, w := range tt.wantBody {
				require.Contains(t, body, w)
			}
			for _, w := range tt.notBody {
				require.NotContains(t, body, w)
			}
			if tt.code != http.StatusOK {
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				var reply exportReply
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reply))
				require.Equal(t, []string{"csv", "json", "prometheus"}, reply.Formats)
				require.Empty(t, rec.Header().Get("X-Sextant-Export-Id"), "no export was made")
				return
			}
			require.Equal(t, "text/x-echo", rec.Header().Get("Content-Type"))
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			require.Equal(t, fmt.Sprint(len(body)), rec.Header().Get("Content-Length"))
			id := rec.Header().Get("X-Sextant-Export-Id")
			require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
			require.Equal(t, id, got.ID, "the header names the export the registry made")
			got.ID = ""
			require.Equal(t, tt.wantReq, got)
			if tt.download {
				require.Equal(t, `attachment; filename="sextant-20261125T101500Z.json"`, rec.Header().Get("Content-Disposition"))
			} else {
				require.Empty(t, rec.Header().Get("Content-Disposition"))
			}
		})
	}
}

func TestExportHTTPFailures(t *testing.T) {
	t.Parallel()
	boom := errors.New("encoder exploded")
	tests := []struct {
		name   string
		opts   exportOptions
		code   int
		want   string
		reason string
		failed uint64
	}{
		{name: "shutting down", opts: exportOptions{Closing: func() bool { return true }}, code: 503,
			want: "shutting down", reason: "shutting_down"},
		{name: "exporter fails", opts: exportOptions{Registry: &fakeRegistry{formats: []string{"json"},
			export: func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
				return exporters.ExportResult{}, boom
			}}}, code: 500, want: "encoder exploded", failed: 1},
		{name: "snapshot fails", opts: exportOptions{Read: func(context.Context) (*exporters.Snapshot, error) {
			return nil, errors.New("reader is shutdown")
		}}, code: 500, want: "read the metrics: reader is shutdown", failed: 1},
		{name: "too slow", opts: exportOptions{Timeout: time.Millisecond, Read: func(ctx context.Context) (*exporters.Snapshot, error) {
			<-ctx.Done() // the timeout ends it
			return nil, ctx.Err()
		}}, code: 503, want: "the export took longer than 1ms", failed: 1},
		{name: "format gone meanwhile", opts: exportOptions{Registry: &fakeRegistry{formats: []string{"json"},
			export: func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
				return exporters.ExportResult{}, fmt.Errorf("%w: json", exporters.ErrUnknownFormat)
			}}}, code: 400, want: "unknown export format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTestExportAPI(t, tt.opts)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/export?format=json", nil))
			require.Equal(t, tt.code, rec.Code, rec.Body.String())
			var reply exportReply
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reply))
			require.Contains(t, reply.Error, tt.want)
			require.Equal(t, tt.reason, reply.Reason)
			if tt.code == http.StatusServiceUnavailable && tt.reason != "" {
				require.Equal(t, "5", rec.Header().Get("Retry-After"))
			}
			if tt.code >= 500 && tt.reason == "" {
				require.Equal(t, rec.Header().Get("X-Sextant-Export-Id"), reply.ExportID, "a failed export is named too")
			}
			st := h.Stats()
			require.Equal(t, tt.failed, st.Failed)
			require.Zero(t, st.OK)
			health := h.health()
			if tt.failed > 0 {
				require.Equal(t, "degraded", string(health.Status))
				require.Contains(t, health.Details["last_error"], tt.want)
			} else {
				require.Equal(t, "healthy", string(health.Status))
			}
		})
	}
}

// TestExportHTTPOverloaded: beyond maxExportsInFlight exports at a time,
// the next is refused with 503 overloaded rather than queued.
func TestExportHTTPOverloaded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, maxExportsInFlight)
	h := newTestExportAPI(t, exportOptions{Read: func(ctx context.Context) (*exporters.Snapshot, error) {
		started <- struct{}{}
		<-release
		return testSnapshot(), nil
	}})
	codes := make(chan int, maxExportsInFlight)
	for range maxExportsInFlight {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/export?format=json", nil))
			codes <- rec.Code
		}()
	}
	for range maxExportsInFlight {
		<-started
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/export?format=json", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), `"reason": "overloaded"`)
	close(release)
	for range maxExportsInFlight {
		require.Equal(t, http.StatusOK, <-codes)
	}
	require.Equal(t, exportStats{OK: maxExportsInFlight, Refused: 1}, h.Stats())
}

func TestExportFileName(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	tests := []struct{ format, want string }{
		{"prometheus", "sextant-20260102T020405Z.prom"},
		{"openmetrics", "sextant-20260102T020405Z.txt"},
		{"json", "sextant-20260102T020405Z.json"},
		{"csv", "sextant-20260102T020405Z.csv"},
		{"parquet", "sextant-20260102T020405Z.parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, exportFileName(at, tt.format))
		})
	}
}

// FuzzExportQuery: any query is either refused with a *paramError naming a
// parameter, or parsed into a known format.
func FuzzExportQuery(f *testing.F) {
	for _, q := range []string{"format=json", "format=csv&match=tasker_*&label=namespace%3D%22x%22", "format=prometheus&label=result!%3Derror&pretty=1",
		"format=json&label=step_name%3D~%22linear_.*%22&download=true", "match=[", "format=&format=", "%zz", "label=%3D"} {
		f.Add(q)
	}
	formats := []string{"csv", "json", "openmetrics", "prometheus"}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		eq, err := parseExportQuery(q, formats)
		if err != nil {
			var pe *paramError
			require.ErrorAs(t, err, &pe)
			require.True(t, strings.HasPrefix(err.Error(), pe.param), err.Error())
			return
		}
		require.Contains(t, formats, eq.format)
		require.Len(t, eq.filter.Names, len(q["match"]))
		require.Len(t, eq.filter.Matchers, len(q["label"]))
	})
}

// getExportHTTP fetches /export?query from a running instance.
func getExportHTTP(t *testing.T, addr, query string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/export?"+query, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// checkExportBody asserts that body parses as format and holds n
// tasker_tasks_requests_total series, returned as the sum of their values.
func checkExportBody(t *testing.T, format string, body []byte) float64 {
	t.Helper()
	const fam = "tasker_tasks_requests_total"
	switch format {
	case "prometheus":
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		require.NoError(t, err, "%s", body)
		return familyTotal(t, fams, fam)
	case "openmetrics":
		require.True(t, bytes.HasSuffix(body, []byte("# EOF\n")), "OpenMetrics ends with # EOF")
		sum := 0.0
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, fam+"{") {
				var v float64
				fields := strings.Fields(line[strings.LastIndex(line, "}")+1:])
				require.NotEmpty(t, fields, line)
				_, err := fmt.Sscan(fields[0], &v)
				require.NoError(t, err, line)
				sum += v
			}
		}
		return sum
	case "json":
		require.True(t, json.Valid(body), "%s", body)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Contains(t, fmt.Sprint(doc), fam)
		return -1
	case "csv":
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		require.NoError(t, err, "%s", body)
		require.Greater(t, len(rows), 1, "a header and rows")
		found := slices.ContainsFunc(rows, func(r []string) bool { return slices.Contains(r, fam) })
		require.True(t, found, "%s", body)
		return -1
	}
	t.Fatalf("unknown format %s", format)
	return 0
}

func familyTotal(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	if _, ok := fams[name]; !ok {
		return 0
	}
	return total(t, fams, name)
}

// TestExportEndToEnd asks the demo's service for each built-in format and
// checks that the bytes parse, the filters apply and the headers say what
// was exported.
func TestExportEndToEnd(t *testing.T) {
	addr := startDemo(t, "--tasks", "26")
	for _, format := range []string{"prometheus", "openmetrics", "json", "csv"} {
		t.Run(format, func(t *testing.T) {
			resp, body := getExportHTTP(t, addr, "format="+format+"&download=true")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			require.NotEmpty(t, resp.Header.Get("Content-Type"))
			require.NotEmpty(t, resp.Header.Get("X-Sextant-Export-Id"))
			require.Regexp(t, `^attachment; filename="sextant-\d{8}T\d{6}Z\.[a-z]+"$`, resp.Header.Get("Content-Disposition"))
			if sum := checkExportBody(t, format, body); sum >= 0 {
				require.Equal(t, 26.0, sum)
			}
		})
	}

	// Filters: one family, one namespace.
	q := url.Values{"format": {"prometheus"}, "match": {"tasker_tasks_*"}, "label": {`namespace="rust_e2e_linear"`}}
	resp, body := getExportHTTP(t, addr, q.Encode())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	require.NotEmpty(t, fams)
	for name := range fams {
		require.True(t, strings.HasPrefix(name, "tasker_tasks_"), name)
	}
	require.Equal(t, 26.0, total(t, fams, "tasker_tasks_requests_total"))
	q.Set("label", `namespace="nowhere"`)
	resp, body = getExportHTTP(t, addr, q.Encode())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), "tasker_tasks_requests_total")

	// Refusals name the parameter and list the formats.
	resp, body = getExportHTTP(t, addr, "format=xml")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var reply exportReply
	require.NoError(t, json.Unmarshal(body, &reply))
	require.Contains(t, reply.Error, `format: unknown export format "xml"`)
	require.Subset(t, reply.Formats, []string{"csv", "json", "openmetrics", "prometheus"})

	// /health/detailed counts the exports.
	hresp, err := http.Get("http://" + addr + "/health/detailed")
	require.NoError(t, err)
	defer hresp.Body.Close()
	var health struct {
		Checks struct {
			Exports struct {
				Status  string   `json:"status"`
				Formats []string `json:"formats"`
				OK      int      `json:"exports_ok"`
				Failed  *int     `json:"exports_failed"`
			} `json:"exports"`
		} `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(hresp.Body).Decode(&health))
	require.Equal(t, "healthy", health.Checks.Exports.Status)
	require.Subset(t, health.Checks.Exports.Formats, []string{"csv", "json", "openmetrics", "prometheus"})
	require.Equal(t, 6, health.Checks.Exports.OK)
	require.NotNil(t, health.Checks.Exports.Failed)
	require.Zero(t, *health.Checks.Exports.Failed)

	// Each export is an export of its own in sextant_exports_*, as a
	// scrape is: target on_demand.
	require.Eventually(t, func() bool {
		fams, _ := scrape(t, addr)
		f, ok := fams["sextant_exports_completed_total"]
		if !ok {
			return false
		}
		n := 0.0
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == "on_demand" {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n == 6
	}, 10*time.Second, 20*time.Millisecond)
}

// BenchmarkExportDemo measures GET /export of the demo's snapshot (its
// default 26 tasks, one series per task and metric) in each format:
// snapshot, filter, encoding and HTTP on loopback.
func BenchmarkExportDemo(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"demo", "--tasks", "26", "--listen", "127.0.0.1:0"}, pw, io.Discard)
		_ = pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`Metrics: http://([^/]+)/metrics`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	defer func() {
		cancel()
		require.NoError(b, <-errc)
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-errc:
		b.Fatalf("demo exited: %v", err)
	}
	for _, format := range []string{"prometheus", "openmetrics", "json", "csv"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				resp, err := http.Get("http://" + a + "/export?format=" + format)
				require.NoError(b, err)
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				require.NoError(b, err)
				require.Equal(b, http.StatusOK, resp.StatusCode)
				n = len(body)
			}
			b.ReportMetric(float64(n), "bytes/export")
		})
	}
}

// TestExportAgreesWithMetrics: /export?format=prometheus shows the demo's
// metrics exactly as /metrics does — names, labels, values and
// target_info — with the default and a non-default prometheus exporter
// configuration.
func TestExportAgreesWithMetrics(t *testing.T) {
	custom := filepath.Join(t.TempDir(), "custom.yaml")
	require.NoError(t, os.WriteFile(custom, []byte("exporters:\n  prometheus:\n    translation_strategy: UnderscoreEscapingWithoutSuffixes\n    target_info: false\n"), 0o644))
	tests := []struct {
		name       string
		args       []string
		family     string // one family that must be there
		targetInfo bool
	}{
		{name: "default", family: "tasker_step_execution_duration_milliseconds", targetInfo: true},
		{name: "without suffixes or target_info", args: []string{"--config", custom}, family: "tasker_step_execution_duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startDemo(t, append([]string{"--tasks", "5"}, tt.args...)...)
			fromMetrics, _ := scrape(t, addr)
			resp, body := getExportHTTP(t, addr, "format=prometheus")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fromExport, err := parser.TextToMetricFamilies(bytes.NewReader(body))
			require.NoError(t, err)
			require.Contains(t, fromExport, tt.family)
			_, hasInfo := fromExport["target_info"]
			require.Equal(t, tt.targetInfo, hasInfo)
			// sextant_* self-metrics move with every scrape and export, and
			// so do the bus's own (tasker_queue_*): a scrape's and an
			// export's events travel on the bus and are counted there.
			moving := func(name string) bool {
				return strings.HasPrefix(name, "sextant_") || strings.HasPrefix(name, "tasker_queue_")
			}
			compared := 0
			for name, want := range fromMetrics {
				if moving(name) {
					continue
				}
				got, ok := fromExport[name]
				require.True(t, ok, "/export lacks %s", name)
				require.Equal(t, want.GetType(), got.GetType(), name)
				require.Equal(t, want.GetHelp(), got.GetHelp(), name)
				if name == "target_info" {
					// A snapshot names its instance (host:pid) when the
					// resource has no service.instance.id; /metrics does not.
					instance := seriesLines(got)[0]
					require.Regexp(t, `service_instance_id=[^,]+:\d+,`, instance)
					got = proto.Clone(got).(*dto.MetricFamily)
					labels := got.GetMetric()[0].GetLabel()
					got.GetMetric()[0].Label = slices.DeleteFunc(labels, func(l *dto.LabelPair) bool { return l.GetName() == "service_instance_id" })
				}
				require.Equal(t, seriesLines(want), seriesLines(got), name)
				compared++
			}
			for name := range fromExport {
				if !moving(name) {
					require.Contains(t, fromMetrics, name, "/metrics lacks %s", name)
				}
			}
			require.Greater(t, compared, 10)
		})
	}
}

// seriesLines renders a family's series as sorted "labels value" lines.
func seriesLines(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(labels)
		var v string
		switch {
		case m.GetCounter() != nil:
			v = fmt.Sprint(m.GetCounter().GetValue())
		case m.GetGauge() != nil:
			v = fmt.Sprint(m.GetGauge().GetValue())
		case m.GetHistogram() != nil:
			h := m.GetHistogram()
			v = fmt.Sprint(h.GetSampleCount(), h.GetSampleSum())
			for _, b := range h.GetBucket() {
				v += fmt.Sprintf(" %g:%d", b.GetUpperBound(), b.GetCumulativeCount())
			}
		default:
			v = fmt.Sprint(m.GetUntyped().GetValue())
		}
		out = append(out, strings.Join(labels, ",")+" "+v)
	}
	slices.Sort(out)
	return out
}

func TestExportDefaults(t *testing.T) {
	t.Parallel()
	def, err := loadConfig("")
	require.NoError(t, err)
	custom, err := config.Parse("custom.yaml", []byte("exporters:\n  prometheus:\n    translation_strategy: NoTranslation\n    scope_info: true\n    target_info: false\n"), factories()...)
	require.NoError(t, err)
	none, err := config.Parse("none.yaml", []byte("exporters: {}\n"), factories()...)
	require.NoError(t, err)
	tests := []struct {
		name     string
		cfg      *config.Config
		strategy string
		scope    bool
		options  map[string]string
	}{
		{name: "default", cfg: def, strategy: "UnderscoreEscapingWithSuffixes", options: map[string]string{}},
		{name: "custom", cfg: custom, strategy: "NoTranslation", scope: true, options: map[string]string{"target_info": "false"}},
		{name: "no prometheus exporter", cfg: none, strategy: "", options: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts, options := exportDefaults(tt.cfg, nil)
			require.Equal(t, tt.strategy, string(opts.TranslationStrategy))
			require.Equal(t, tt.scope, opts.ScopeInfo)
			require.Equal(t, tt.options, options)
			require.Regexp(t, `^.+:\d+$`, opts.Instance, "host name and process id")
		})
	}
	res := resource.NewSchemaless(attribute.String("service.instance.id", "pod-7"))
	opts, _ := exportDefaults(def, res)
	require.Empty(t, opts.Instance, "the resource's own instance id stands")
}

package json_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	stdjson "encoding/json"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"
	"github.com/sextant-telemetry/sextant/exporters/json"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func encodeBytes(t testing.TB, s *exporters.Snapshot, opts json.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Encode(&buf, s, opts))
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		s      *exporters.Snapshot
		opts   json.Options
	}{
		{name: "sample", golden: "snapshot_sample.json", s: snapshottest.Sample()},
		{name: "sample pretty", golden: "snapshot_sample_pretty.json", s: snapshottest.Sample(), opts: json.Options{Pretty: true}},
		{name: "empty", golden: "snapshot_empty.json", s: &exporters.Snapshot{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := encodeBytes(t, tt.s, tt.opts)
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "output differs from %s; rerun with -update if intended", golden)
			require.True(t, stdjson.Valid(got), "valid JSON")
		})
	}
}

// TestRoundTrip checks that decoding what Encode wrote gives the snapshot
// back, value for value, and that encoding that again gives the same bytes.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	zeroSeries := &exporters.Snapshot{Families: []exporters.Family{{PromName: "x_total", Type: exporters.TypeCounter}}}
	tests := []struct {
		name string
		s    *exporters.Snapshot
	}{
		{name: "sample", s: snapshottest.Sample()},
		{name: "generated", s: snapshottest.Generate(1000)},
		{name: "empty", s: &exporters.Snapshot{}},
		{name: "family without series", s: zeroSeries},
	}
	for _, tt := range tests {
		for _, pretty := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pretty=%v", tt.name, pretty), func(t *testing.T) {
				t.Parallel()
				b := encodeBytes(t, tt.s, json.Options{Pretty: pretty})
				got, err := json.Decode(bytes.NewReader(b))
				require.NoError(t, err)
				require.Empty(t, snapshottest.Diff(tt.s, got))
				require.Equal(t, string(b), string(encodeBytes(t, got, json.Options{Pretty: pretty})))
			})
		}
	}
}

// TestPrettyIsIndent checks that pretty output, indented one family at a
// time, is exactly encoding/json's indentation of the compact document.
func TestPrettyIsIndent(t *testing.T) {
	t.Parallel()
	oneFamily := &exporters.Snapshot{Families: []exporters.Family{{PromName: "x_total", Type: exporters.TypeCounter}}}
	for _, s := range []*exporters.Snapshot{snapshottest.Sample(), snapshottest.Generate(2000), {}, oneFamily} {
		var want bytes.Buffer
		require.NoError(t, stdjson.Indent(&want, encodeBytes(t, s, json.Options{}), "", "  "))
		require.Equal(t, want.String(), string(encodeBytes(t, s, json.Options{Pretty: true})))
	}
}

// TestMatchesEncodingJSON checks that strings and finite floats are spelled
// exactly as encoding/json spells them (without HTML escaping).
func TestMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	std := func(v any) string {
		var buf bytes.Buffer
		enc := stdjson.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(v))
		return strings.TrimSuffix(buf.String(), "\n")
	}
	strs := []string{
		"", "plain", `quote"`, `back\slash`, "new\nline", "cr\rlf", "tab\t", "\x00\x01\x1f\x7f", "<&>",
		"ünïcødé 日本 🚀", "\u2028\u2029", "bad \xff utf-8", "\xed\xa0\x80", "trailing \xe2\x82",
	}
	for _, s := range strs {
		t.Run(fmt.Sprintf("string %q", s), func(t *testing.T) {
			t.Parallel()
			b := encodeBytes(t, &exporters.Snapshot{Resource: exporters.Resource{ServiceName: s}}, json.Options{})
			require.Contains(t, string(b), `"service_name":`+std(s)+`,`)
		})
	}
	floats := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 100, 1e6, 123456789, 9007199254740993, 1e20, 1e21, 1.5e21,
		1e-6, 9.99e-7, 1e-7, 5e-324, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.7976931348623157e308,
	}
	for _, f := range floats {
		t.Run(fmt.Sprintf("float %v", f), func(t *testing.T) {
			t.Parallel()
			s := &exporters.Snapshot{Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge,
				Series: []exporters.Series{{Value: f}}}}}
			require.Contains(t, string(encodeBytes(t, s, json.Options{})), `"value":`+std(f)+`}`)
		})
	}
	for _, tt := range []struct {
		f    float64
		want string
	}{{math.NaN(), `"NaN"`}, {math.Inf(1), `"+Inf"`}, {math.Inf(-1), `"-Inf"`}} {
		s := &exporters.Snapshot{Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge,
			Series: []exporters.Series{{Value: tt.f}}}}}
		require.Contains(t, string(encodeBytes(t, s, json.Options{})), `"value":`+tt.want+`}`)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	const head = `{"schema":"sextant.metrics/v1","time":"2026-11-25T10:00:00Z","resource":{},"families":`
	hist := func(h string) string {
		return head + `[{"prom_name":"h","type":"histogram","series":[{"labels":{},"histogram":` + h + `}]}]}`
	}
	tests := []struct {
		name, doc, want string
	}{
		{name: "empty input", doc: "", want: "EOF"},
		{name: "not JSON", doc: "prometheus", want: "invalid character"},
		{name: "wrong schema", doc: `{"schema":"sextant.metrics/v2","families":[]}`, want: `schema: want "sextant.metrics/v1", got "sextant.metrics/v2"`},
		{name: "no schema", doc: `{"families":[]}`, want: `schema: want "sextant.metrics/v1", got ""`},
		{name: "no families", doc: `{"schema":"sextant.metrics/v1"}`, want: "families: missing"},
		{name: "data after the document", doc: head + `[]} {}`, want: "data after the document"},
		{name: "bad time", doc: `{"schema":"sextant.metrics/v1","time":"yesterday","families":[]}`, want: `time: want an RFC 3339 time, got "yesterday"`},
		{name: "series_count", doc: head + `[],"series_count":2}`, want: "series_count: 2, but the families hold 0 series"},
		{name: "no prom_name", doc: head + `[{"type":"gauge"}]}`, want: "families[0].prom_name: missing"},
		{name: "unknown type", doc: head + `[{"prom_name":"s","type":"summary"}]}`, want: `families[0].type: want counter, gauge or histogram, got "summary"`},
		{name: "no value", doc: head + `[{"prom_name":"g","type":"gauge","series":[{"labels":{}}]}]}`, want: "families[0].series[0].value: missing"},
		{name: "null value", doc: head + `[{"prom_name":"g","type":"gauge","series":[{"value":null}]}]}`, want: "families[0].series[0].value: missing"},
		{name: "value as other string", doc: head + `[{"prom_name":"g","type":"gauge","series":[{"value":"Infinity"}]}]}`, want: `want a number, "NaN", "+Inf" or "-Inf", got "Infinity"`},
		{name: "value out of range", doc: head + `[{"prom_name":"g","type":"gauge","series":[{"value":1e400}]}]}`, want: "number 1e400: out of float64's range"},
		{name: "empty label name", doc: head + `[{"prom_name":"g","type":"gauge","series":[{"labels":{"":"x"},"value":1}]}]}`, want: "families[0].series[0].labels: empty label name"},
		{name: "histogram on a counter", doc: head + `[{"prom_name":"c","type":"counter","series":[{"value":1,"histogram":{}}]}]}`, want: "families[0].series[0].histogram: a counter has none"},
		{name: "value on a histogram", doc: head + `[{"prom_name":"h","type":"histogram","series":[{"value":1}]}]}`, want: "families[0].series[0].value: a histogram has buckets, sum and count instead"},
		{name: "no histogram", doc: head + `[{"prom_name":"h","type":"histogram","series":[{}]}]}`, want: "families[0].series[0].histogram: missing"},
		{name: "no count", doc: hist(`{"sum":1,"buckets":[{"le":"+Inf","count":1}]}`), want: "histogram.count: missing"},
		{name: "no sum", doc: hist(`{"count":1,"buckets":[{"le":"+Inf","count":1}]}`), want: "histogram.sum: missing"},
		{name: "no buckets", doc: hist(`{"count":0,"sum":0,"buckets":[]}`), want: "histogram.buckets: missing"},
		{name: "negative count", doc: hist(`{"count":-1,"sum":0,"buckets":[{"le":"+Inf","count":0}]}`), want: "cannot unmarshal number -1"},
		{name: "fractional count", doc: hist(`{"count":1.5,"sum":0,"buckets":[{"le":"+Inf","count":0}]}`), want: "cannot unmarshal number 1.5"},
		{name: "no le", doc: hist(`{"count":0,"sum":0,"buckets":[{"count":0}]}`), want: "histogram.buckets[0].le: missing"},
		{name: "no bucket count", doc: hist(`{"count":0,"sum":0,"buckets":[{"le":"+Inf"}]}`), want: "histogram.buckets[0].count: missing"},
		{name: "le NaN", doc: hist(`{"count":0,"sum":0,"buckets":[{"le":"NaN","count":0},{"le":"+Inf","count":0}]}`), want: "histogram.buckets[0].le: NaN"},
		{name: "bounds not increasing", doc: hist(`{"count":0,"sum":0,"buckets":[{"le":5,"count":0},{"le":5,"count":0},{"le":"+Inf","count":0}]}`), want: "histogram.buckets[1].le: 5 after 5; bounds must increase"},
		{name: "counts decrease", doc: hist(`{"count":1,"sum":0,"buckets":[{"le":5,"count":2},{"le":"+Inf","count":1}]}`), want: "histogram.buckets[1].count: 1 after 2; counts are cumulative"},
		{name: "no +Inf bucket", doc: hist(`{"count":1,"sum":0,"buckets":[{"le":5,"count":1}]}`), want: "histogram.buckets[0].le: the last bucket's is +Inf, got 5"},
		{name: "count is not +Inf's", doc: hist(`{"count":2,"sum":0,"buckets":[{"le":"+Inf","count":1}]}`), want: "histogram.count: 2, but the +Inf bucket holds 1"},
		{name: "exemplar without value", doc: head + `[{"prom_name":"c","type":"counter","series":[{"value":1,"exemplar":{"trace_id":"ab"}}]}]}`, want: "families[0].series[0].exemplar.value: missing"},
		{name: "bucket exemplar bad time", doc: hist(`{"count":0,"sum":0,"buckets":[{"le":"+Inf","count":0,"exemplar":{"value":1,"time":"noon"}}]}`), want: `histogram.buckets[0].exemplar.time: want an RFC 3339 time, got "noon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := json.Decode(strings.NewReader(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestDecodeLenient checks what a reader of v1 must accept: fields it does
// not know (a later, additive revision), optional fields left out, and
// times with an offset.
func TestDecodeLenient(t *testing.T) {
	t.Parallel()
	doc := `{"schema":"sextant.metrics/v1","time":"2026-11-25T12:00:00.5+02:00","added_later":{"x":[1,2]},
		"families":[{"prom_name":"g","type":"gauge","series":[{"value":1E3,"new_field":true}],"also_new":1}]}`
	got, err := json.Decode(strings.NewReader(doc))
	require.NoError(t, err)
	want := &exporters.Snapshot{
		Time:     time.Date(2026, 11, 25, 10, 0, 0, 5e8, time.UTC),
		Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge, Series: []exporters.Series{{Value: 1000}}}},
	}
	require.Empty(t, snapshottest.Diff(want, got))
	require.Equal(t, time.UTC, got.Time.Location())
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, json.Encode(io.Discard, nil, json.Options{}), "nil snapshot")
	far := &exporters.Snapshot{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	require.ErrorContains(t, json.Encode(io.Discard, far, json.Options{}), "year outside 0 to 9999")
	farSeries := &exporters.Snapshot{Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge,
		Series: []exporters.Series{{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}}}}
	require.ErrorContains(t, json.Encode(io.Discard, farSeries, json.Options{Pretty: true}), "year outside 0 to 9999")
}

func TestExporter(t *testing.T) {
	t.Parallel()
	exp := json.New()
	require.Equal(t, "json", exp.Name())
	require.Equal(t, []string{"json"}, exp.Formats())
	tests := []struct {
		name    string
		req     exporters.ExportRequest
		s       *exporters.Snapshot
		golden  string
		wantErr error
		errText string
	}{
		{name: "compact", req: exporters.ExportRequest{Format: "json"}, s: snapshottest.Sample(), golden: "snapshot_sample.json"},
		{name: "pretty", req: exporters.ExportRequest{Format: "json", Options: map[string]string{"pretty": "true"}},
			s: snapshottest.Sample(), golden: "snapshot_sample_pretty.json"},
		{name: "pretty false, foreign option ignored", req: exporters.ExportRequest{Format: "json",
			Options: map[string]string{"pretty": "false", "target_info": "false"}}, s: snapshottest.Sample(), golden: "snapshot_sample.json"},
		{name: "unknown format", req: exporters.ExportRequest{Format: "csv"}, s: snapshottest.Sample(), wantErr: exporters.ErrUnknownFormat},
		{name: "bad pretty", req: exporters.ExportRequest{Format: "json", Options: map[string]string{"pretty": "yes please"}},
			s: snapshottest.Sample(), errText: `option pretty="yes please": want true or false`},
		{name: "nil snapshot", req: exporters.ExportRequest{Format: "json"}, errText: "nil snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			res, err := exp.Export(context.Background(), tt.s, tt.req, &buf)
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
				return
			case tt.errText != "":
				require.ErrorContains(t, err, tt.errText)
				return
			}
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden))
			require.NoError(t, err)
			require.Equal(t, string(want), buf.String())
			require.Equal(t, exporters.ExportResult{Exporter: "json", Format: "json", ContentType: "application/json",
				Series: tt.s.SeriesCount(), Bytes: int64(buf.Len()), Duration: res.Duration}, res)
		})
	}
}

func TestExporterCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, pretty := range []string{"false", "true"} {
		var buf bytes.Buffer
		_, err := json.New().Export(ctx, snapshottest.Sample(), exporters.ExportRequest{Format: "json",
			Options: map[string]string{"pretty": pretty}}, &buf)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, buf.Len(), "nothing written once ctx has ended")
	}
}

// TestExporterConcurrentSafe exports one snapshot from many goroutines;
// run with -race.
func TestExporterConcurrentSafe(t *testing.T) {
	t.Parallel()
	exp, s := json.New(), snapshottest.Sample()
	want := string(encodeBytes(t, s, json.Options{}))
	outs := make([]string, 8)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() {
			var buf bytes.Buffer
			if _, err := exp.Export(context.Background(), s, exporters.ExportRequest{Format: "json"}, &buf); err == nil {
				outs[i] = buf.String()
			}
		})
	}
	wg.Wait()
	for _, out := range outs {
		require.Equal(t, want, out)
	}
}

// FuzzDecodeJSON checks that Decode never panics, and that whatever it
// accepts is canonical after one encoding: encoding it, decoding that and
// encoding again gives the same snapshot and the same bytes, compact and
// pretty alike.
func FuzzDecodeJSON(f *testing.F) {
	for _, name := range []string{"snapshot_sample.json", "snapshot_sample_pretty.json", "snapshot_empty.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"sextant.metrics/v1","time":"2026-11-25T12:00:00+02:00","families":[{"prom_name":"g","type":"gauge","series":[{"labels":{"a":"\ud800","b":"x"},"value":-0}]}]}`))
	f.Add([]byte(`{"schema":"sextant.metrics/v1","families":[{"prom_name":"h","type":"histogram","series":[{"histogram":{"count":1,"sum":1E2,"buckets":[{"le":-1,"count":0},{"le":"+Inf","count":1,"exemplar":{"value":"NaN","labels":{}}}]}}]}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := json.Decode(bytes.NewReader(doc))
		if err != nil {
			return
		}
		for _, opts := range []json.Options{{}, {Pretty: true}} {
			b := encodeBytes(t, s, opts)
			again, err := json.Decode(bytes.NewReader(b))
			require.NoError(t, err, "decoding what Encode wrote of %q", doc)
			require.Empty(t, snapshottest.Diff(s, again))
			require.Equal(t, string(b), string(encodeBytes(t, again, opts)))
		}
	})
}

func ExampleEncode() {
	s := &exporters.Snapshot{
		Time:     time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "host-a/42"},
		Families: []exporters.Family{{
			Name: "tasker.queue.depth", PromName: "tasker_queue_depth", Type: exporters.TypeGauge,
			Description: "Tasks waiting.",
			Series: []exporters.Series{
				{Labels: []exporters.Label{{Name: "queue", Value: "default"}}, Value: 3},
				{Labels: []exporters.Label{{Name: "queue", Value: "stuck"}}, Value: math.Inf(1)},
			},
		}},
	}
	if err := json.Encode(os.Stdout, s, json.Options{Pretty: true}); err != nil {
		panic(err)
	}
	// Output:
	// {
	//   "schema": "sextant.metrics/v1",
	//   "time": "2026-11-25T10:00:00Z",
	//   "resource": {
	//     "service_name": "sextant",
	//     "instance": "host-a/42",
	//     "attributes": {}
	//   },
	//   "series_count": 2,
	//   "families": [
	//     {
	//       "name": "tasker.queue.depth",
	//       "prom_name": "tasker_queue_depth",
	//       "type": "gauge",
	//       "unit": "",
	//       "description": "Tasks waiting.",
	//       "series": [
	//         {
	//           "labels": {
	//             "queue": "default"
	//           },
	//           "value": 3
	//         },
	//         {
	//           "labels": {
	//             "queue": "stuck"
	//           },
	//           "value": "+Inf"
	//         }
	//       ]
	//     }
	//   ]
	// }
}

func ExampleDecode() {
	doc := `{"schema":"sextant.metrics/v1","time":"2026-11-25T10:00:00Z","resource":{"service_name":"sextant"},
	"families":[{"name":"tasker.step.duration","prom_name":"tasker_step_duration_seconds","type":"histogram","unit":"s",
	"series":[{"labels":{"result":"ok"},"histogram":{"count":3,"sum":2.5,
	"buckets":[{"le":0.5,"count":1},{"le":1,"count":2},{"le":"+Inf","count":3}]}}]}]}`
	s, err := json.Decode(strings.NewReader(doc))
	if err != nil {
		panic(err)
	}
	h := s.Families[0].Series[0].Histogram
	fmt.Println(s.Resource.ServiceName, s.Families[0].PromName, h.Count, h.Sum)
	for _, b := range h.Buckets {
		fmt.Println(b.UpperBound, b.Count)
	}
	// Output:
	// sextant tasker_step_duration_seconds 3 2.5
	// 0.5 1
	// 1 2
	// +Inf 3
}

func ExampleExporter_Export() {
	s := &exporters.Snapshot{Families: []exporters.Family{{
		PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter, Series: []exporters.Series{{Value: 3}},
	}}}
	var buf bytes.Buffer
	res, err := json.New().Export(context.Background(), s, exporters.ExportRequest{Format: exporters.FormatJSON}, &buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ContentType, res.Series, res.Bytes)
	fmt.Print(buf.String())
	// Output:
	// application/json 1 286
	// {"schema":"sextant.metrics/v1","time":"0001-01-01T00:00:00Z","resource":{"service_name":"","instance":"","attributes":{}},"series_count":1,"families":[{"name":"","prom_name":"tasker_tasks_requests_total","type":"counter","unit":"","description":"","series":[{"labels":{},"value":3}]}]}
}

// BenchmarkEncode times writing n series as JSON, compact and pretty, and
// reading the snapshot from an OpenTelemetry collection then writing it
// (what an export does); and decoding the compact document.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		s := snapshottest.Generate(n)
		rm := snapshottest.ResourceMetrics(s)
		readOpts := exporters.ReadOptions{Now: func() time.Time { return snapshottest.SampleTime }}
		run := func(name string, fn func(w io.Writer) error) {
			b.Run(fmt.Sprintf("series=%d/%s", n, name), func(b *testing.B) {
				b.ReportAllocs()
				var w byteCounter
				for b.Loop() {
					w = 0
					if err := fn(&w); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(w), "out_bytes")
			})
		}
		run("json", func(w io.Writer) error { return json.Encode(w, s, json.Options{}) })
		run("json_pretty", func(w io.Writer) error { return json.Encode(w, s, json.Options{Pretty: true}) })
		run("read+json", func(w io.Writer) error {
			return json.Encode(w, exporters.FromResourceMetrics(rm, readOpts), json.Options{})
		})
		doc := encodeBytes(b, s, json.Options{})
		b.Run(fmt.Sprintf("series=%d/decode", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Decode(bytes.NewReader(doc)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(doc)), "in_bytes")
		})
	}
}

// byteCounter counts what is written to it and keeps nothing.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

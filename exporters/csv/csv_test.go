package csv_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	stdcsv "encoding/csv"
	stdjson "encoding/json"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/csv"
	"github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func encodeBytes(t testing.TB, s *exporters.Snapshot, opts csv.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, csv.Encode(&buf, s, opts))
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		s      *exporters.Snapshot
		opts   csv.Options
	}{
		{name: "sample", golden: "snapshot_sample.csv", s: snapshottest.Sample()},
		{name: "sample with BOM", golden: "snapshot_sample_bom.csv", s: snapshottest.Sample(), opts: csv.Options{BOM: true}},
		{name: "empty", golden: "snapshot_empty.csv", s: &exporters.Snapshot{}},
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
		})
	}
}

// csvView is what a table carries of s: no resource, descriptions,
// families without series, exemplar times or labels; an empty label value
// is no label; a CR LF inside a label value reads back as LF; the
// snapshot's time is the latest series time.
func csvView(s *exporters.Snapshot) *exporters.Snapshot {
	v := snapshottest.Clone(s)
	v.Resource = exporters.Resource{}
	v.Time = time.Time{}
	v.Families = slices.DeleteFunc(v.Families, func(f exporters.Family) bool { return len(f.Series) == 0 })
	noTime := func(e *exporters.Exemplar) {
		if e != nil {
			e.Time, e.Labels = time.Time{}, nil
		}
	}
	for i := range v.Families {
		f := &v.Families[i]
		f.Description = ""
		for j := range f.Series {
			sr := &f.Series[j]
			if sr.Time.After(v.Time) {
				v.Time = sr.Time
			}
			var labels []exporters.Label
			for _, l := range sr.Labels {
				if l.Value != "" {
					labels = append(labels, exporters.Label{Name: l.Name, Value: strings.ReplaceAll(l.Value, "\r\n", "\n")})
				}
			}
			sr.Labels = labels
			noTime(sr.Exemplar)
			if sr.Histogram != nil {
				for k := range sr.Histogram.Buckets {
					noTime(sr.Histogram.Buckets[k].Exemplar)
				}
			}
		}
	}
	return v
}

// TestRoundTrip checks that decoding what Encode wrote gives back every
// value, bucket, sum, count, label, time and exemplar the table carries,
// and that encoding that again gives the same bytes.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	crlf := &exporters.Snapshot{Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge,
		Series: []exporters.Series{{Labels: []exporters.Label{{Name: "l", Value: "a\r\nb\rc\nd"}}, Value: 1}}}}}
	tests := []struct {
		name string
		s    *exporters.Snapshot
		opts csv.Options
	}{
		{name: "sample", s: snapshottest.Sample()},
		{name: "sample with BOM", s: snapshottest.Sample(), opts: csv.Options{BOM: true}},
		{name: "generated", s: snapshottest.Generate(1000)},
		{name: "empty", s: &exporters.Snapshot{}},
		{name: "CR LF in a label value", s: crlf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := encodeBytes(t, tt.s, tt.opts)
			got, err := csv.Decode(bytes.NewReader(b))
			require.NoError(t, err)
			require.Empty(t, snapshottest.Diff(csvView(tt.s), got))
			require.Equal(t, string(encodeBytes(t, csvView(tt.s), csv.Options{})), string(encodeBytes(t, got, csv.Options{})))
		})
	}
}

// TestLayout reads the sample's table with encoding/csv and checks the
// layout row by row: the header, one row per counter and gauge series, and
// per histogram series one row per bucket then _sum then _count.
func TestLayout(t *testing.T) {
	t.Parallel()
	s := snapshottest.Sample()
	rows, err := stdcsv.NewReader(bytes.NewReader(encodeBytes(t, s, csv.Options{}))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{
		"time", "name", "prom_name", "type", "unit", "sample", "le", "value", "start_time",
		"exemplar_trace_id", "exemplar_span_id", "exemplar_value",
		"label_correlation_id", "label_namespace", "label_pool", "label_queue", "label_region",
		"label_result", "label_task_type", "label_worker",
	}, rows[0])
	want := 0
	for _, f := range s.Families {
		for _, sr := range f.Series {
			if sr.Histogram != nil {
				want += len(sr.Histogram.Buckets) + 2
			} else {
				want++
			}
		}
	}
	require.Len(t, rows, 1+want)
	for _, tt := range []struct {
		row  int
		want []string
	}{
		{1, []string{"2026-11-25T10:00:00.120000001Z", "tasker.cpu.time", "tasker_cpu_time_seconds_total", "counter", "s",
			"tasker_cpu_time_seconds_total", "", "12.5", "2026-11-25T09:00:00Z", snapshottest.TraceA, snapshottest.SpanA, "0.25",
			"", "", "", "", "", "", "", "w-1"}},
		{3, []string{"2026-11-25T10:00:00.120000001Z", "tasker.cpu.time", "tasker_cpu_time_seconds_total", "counter", "s",
			"tasker_cpu_time_seconds_total", "", "1e+21", "2026-11-25T09:00:00Z", snapshottest.TraceB, snapshottest.SpanB, "3",
			"", "", "", "", "", "", "", "w-3"}},
		{8, []string{"2026-11-25T10:00:00.120000001Z", "tasker.queue.depth", "tasker_queue_depth", "gauge", "{task}",
			"tasker_queue_depth", "", "NaN", "", "", "", "", "", "", "", `back\slash`, "eu", "", "", ""}},
		{16, []string{"2026-11-25T10:00:00.120000001Z", "tasker.queue.depth", "tasker_queue_depth", "gauge", "{task}",
			"tasker_queue_depth", "", "-2.5", "", "", "", "", "", "", "", "ünïcødé ✓ 日本 🚀", "", "", "", ""}},
		{18, []string{"2026-11-25T10:00:00.120000001Z", "tasker.step.execution.duration", "tasker_step_execution_duration_milliseconds",
			"histogram", "ms", "tasker_step_execution_duration_milliseconds_bucket", "0.5", "1", "2026-11-25T09:00:00Z",
			snapshottest.TraceA, snapshottest.SpanA, "0.25", "", "billing", "", "", "", "error", "", ""}},
		{22, []string{"2026-11-25T10:00:00.120000001Z", "tasker.step.execution.duration", "tasker_step_execution_duration_milliseconds",
			"histogram", "ms", "tasker_step_execution_duration_milliseconds_bucket", "+Inf", "4", "2026-11-25T09:00:00Z",
			snapshottest.TraceC, snapshottest.SpanC, "1014.25", "", "billing", "", "", "", "error", "", ""}},
		{23, []string{"2026-11-25T10:00:00.120000001Z", "tasker.step.execution.duration", "tasker_step_execution_duration_milliseconds",
			"histogram", "ms", "tasker_step_execution_duration_milliseconds_sum", "", "1234.5", "2026-11-25T09:00:00Z",
			"", "", "", "", "billing", "", "", "", "error", "", ""}},
		{24, []string{"2026-11-25T10:00:00.120000001Z", "tasker.step.execution.duration", "tasker_step_execution_duration_milliseconds",
			"histogram", "ms", "tasker_step_execution_duration_milliseconds_count", "", "4", "2026-11-25T09:00:00Z",
			"", "", "", "", "billing", "", "", "", "error", "", ""}},
	} {
		require.Equal(t, tt.want, rows[tt.row], "row %d", tt.row)
	}
}

// pandasRow is one row as testdata/read_pandas.py prints it.
type pandasRow struct {
	Sample string            `json:"sample"`
	LE     *string           `json:"le"`
	Value  string            `json:"value"`
	Time   *string           `json:"time"`
	Labels map[string]string `json:"labels"`
}

// pythonWithPandas returns a Python that can import pandas, or skips the
// test: pandas is not a Go dependency (Debian: apt-get install
// python3-pandas).
func pythonWithPandas(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(py); err == nil && exec.Command(path, "-c", "import pandas").Run() == nil {
			return path
		}
	}
	t.Fatal("the CSV export must load in pandas, and no python3 with pandas is here: install Debian's python3-pandas (apt-get install python3-pandas; .ci/run does)")
	return ""
}

// TestPandas reads tables with pandas.read_csv, as docs/exports.md
// recommends, and checks every row's sample, labels, le, value and time
// against the snapshot, to the bit.
func TestPandas(t *testing.T) {
	t.Parallel()
	py := pythonWithPandas(t)
	for _, tt := range []struct {
		name string
		s    *exporters.Snapshot
		opts csv.Options
	}{
		{name: "sample", s: snapshottest.Sample()},
		{name: "sample with BOM", s: snapshottest.Sample(), opts: csv.Options{BOM: true}},
		{name: "generated", s: snapshottest.Generate(1000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "export.csv")
			require.NoError(t, os.WriteFile(path, encodeBytes(t, tt.s, tt.opts), 0o600))
			out, err := exec.Command(py, filepath.Join("testdata", "read_pandas.py"), path).Output()
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				t.Fatalf("read_pandas.py: %v\n%s", err, exitErr.Stderr)
			}
			require.NoError(t, err)
			var got []pandasRow
			for line := range strings.Lines(string(out)) {
				var r pandasRow
				require.NoError(t, stdjson.Unmarshal([]byte(line), &r))
				got = append(got, r)
			}
			want := expectedRows(tt.s)
			require.Len(t, got, len(want))
			for i, w := range want {
				g := got[i]
				require.Equal(t, w.sample, g.Sample, "row %d", i+1)
				require.Equal(t, w.labels, g.Labels, "row %d", i+1)
				require.True(t, snapshottest.SameFloat(w.value, parsePy(t, g.Value)), "row %d: value %v, pandas %s", i+1, w.value, g.Value)
				if w.le == nil {
					require.Nil(t, g.LE, "row %d", i+1)
				} else {
					require.NotNil(t, g.LE, "row %d", i+1)
					require.True(t, snapshottest.SameFloat(*w.le, parsePy(t, *g.LE)), "row %d: le %v, pandas %s", i+1, *w.le, *g.LE)
				}
				require.NotNil(t, g.Time)
				gt, err := time.Parse(time.RFC3339Nano, *g.Time)
				require.NoError(t, err)
				require.True(t, w.time.Equal(gt), "row %d: time %s, pandas %s", i+1, w.time, gt)
			}
		})
	}
}

// parsePy parses a Python float's repr: inf, -inf and nan included.
func parsePy(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return v
}

type expectedRow struct {
	sample string
	labels map[string]string
	le     *float64
	value  float64
	time   time.Time
}

// expectedRows lists the rows the layout promises for s, from the snapshot
// alone.
func expectedRows(s *exporters.Snapshot) []expectedRow {
	var out []expectedRow
	for _, f := range s.Families {
		for _, sr := range f.Series {
			labels := map[string]string{}
			for _, l := range sr.Labels {
				if l.Value != "" {
					labels[l.Name] = l.Value
				}
			}
			row := func(sample string, le *float64, v float64) {
				out = append(out, expectedRow{sample: sample, labels: labels, le: le, value: v, time: sr.Time})
			}
			if sr.Histogram == nil {
				row(f.PromName, nil, sr.Value)
				continue
			}
			for _, b := range sr.Histogram.Buckets {
				row(f.PromName+"_bucket", &b.UpperBound, float64(b.Count))
			}
			row(f.PromName+"_sum", nil, sr.Histogram.Sum)
			row(f.PromName+"_count", nil, float64(sr.Histogram.Count))
		}
	}
	return out
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	const header = "time,name,prom_name,type,unit,sample,le,value,start_time,exemplar_trace_id,exemplar_span_id,exemplar_value,label_a\n"
	hist := func(rows ...string) string {
		var b strings.Builder
		b.WriteString(header)
		for _, r := range rows {
			b.WriteString(",h,h,histogram,," + r + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name, doc, want string
	}{
		{name: "empty input", doc: "", want: "empty input; want a header row"},
		{name: "short header", doc: "time,name\n", want: "line 1: header has 2 columns"},
		{name: "wrong column", doc: strings.Replace(header, "sample", "samples", 1), want: `line 1: column 6: want "sample", got "samples"`},
		{name: "not a label column", doc: strings.TrimSuffix(header, "\n") + ",extra\n", want: `line 1: column 14: want label_<label name>, got "extra"`},
		{name: "empty label name", doc: strings.TrimSuffix(header, "\n") + ",label_\n", want: `column 14: want label_<label name>, got "label_"`},
		{name: "label column twice", doc: strings.TrimSuffix(header, "\n") + ",label_a\n", want: `column 14: "label_a" comes twice`},
		{name: "wrong field count", doc: header + "a,b\n", want: "wrong number of fields"},
		{name: "bare quote", doc: header + `,g,g,gauge,,g,,1,,,,,a"b` + "\n", want: `bare " in non-quoted-field`},
		{name: "no prom_name", doc: header + ",g,,gauge,,g,,1,,,,,\n", want: "line 2: prom_name: empty"},
		{name: "unknown type", doc: header + ",s,s,summary,,s,,1,,,,,\n", want: `line 2: type: want counter, gauge or histogram, got "summary"`},
		{name: "bad time", doc: header + "noon,g,g,gauge,,g,,1,,,,,\n", want: `line 2: time: want an RFC 3339 time, got "noon"`},
		{name: "bad value", doc: header + ",g,g,gauge,,g,,one,,,,,\n", want: `line 2: value: want a number (NaN, +Inf and -Inf included), got "one"`},
		{name: "sample is not prom_name", doc: header + ",g,g,gauge,,g_total,,1,,,,,\n", want: `line 2: sample: a gauge's is its prom_name g, got "g_total"`},
		{name: "le on a gauge", doc: header + ",g,g,gauge,,g,5,1,,,,,\n", want: `line 2: le: only _bucket rows have one, got "5"`},
		{name: "exemplar ID without value", doc: header + ",c,c,counter,,c,,1,,abc,,,\n", want: "line 2: exemplar_value: empty, but the exemplar has a trace or span ID"},
		{name: "family comes back", doc: header + ",g,g,gauge,,g,,1,,,,,\n,k,k,gauge,,k,,1,,,,,\n,g,g,gauge,,g,,2,,,,,\n",
			want: "line 4: prom_name: family g came earlier"},
		{name: "unit changes", doc: header + ",g,g,gauge,s,g,,1,,,,,\n,g,g,gauge,ms,g,,1,,,,,x\n", want: `line 3: unit: "ms", but the family's first row has "s"`},
		{name: "type changes", doc: header + ",g,g,gauge,,g,,1,,,,,\n,g,g,counter,,g,,1,,,,,x\n", want: `line 3: type: "counter", but the family's first row has "gauge"`},
		{name: "name changes", doc: header + ",g,g,gauge,,g,,1,,,,,\n,g2,g,gauge,,g,,1,,,,,x\n", want: `line 3: name: "g2", but the family's first row has "g"`},
		{name: "histogram sample", doc: hist("h_total,,1,,,,,"), want: `line 2: sample: want h_bucket, _sum or _count, got "h_total"`},
		{name: "sum first", doc: hist("h_sum,,1,,,,,"), want: "line 2: sample: h_sum before any h_bucket row"},
		{name: "count before sum", doc: hist("h_bucket,+Inf,1,,,,,", "h_count,,1,,,,,"), want: "line 3: sample: h_count before h_sum"},
		{name: "bucket after sum", doc: hist("h_bucket,+Inf,1,,,,,", "h_sum,,1,,,,,", "h_bucket,+Inf,1,,,,,"), want: "line 4: sample: h_bucket after h_sum"},
		{name: "two sums", doc: hist("h_bucket,+Inf,1,,,,,", "h_sum,,1,,,,,", "h_sum,,1,,,,,"), want: "line 4: sample: a second h_sum"},
		{name: "le on sum", doc: hist("h_bucket,+Inf,1,,,,,", "h_sum,5,1,,,,,"), want: "line 3: h_sum: only _bucket rows have le and an exemplar"},
		{name: "labels change mid-histogram", doc: hist("h_bucket,+Inf,1,,,,,x", "h_sum,,1,,,,,y"), want: "line 3: h_sum: labels or times differ"},
		{name: "fractional bucket count", doc: hist("h_bucket,+Inf,1.5,,,,,"), want: `line 2: value: want a count (a whole number from 0), got "1.5"`},
		{name: "no le", doc: hist("h_bucket,,1,,,,,"), want: `line 2: le: want a number`},
		{name: "no +Inf", doc: hist("h_bucket,5,1,,,,,", "h_sum,,1,,,,,", "h_count,,1,,,,,"), want: "line 4: histogram: the last bucket's le is +Inf, got 5"},
		{name: "bounds not increasing", doc: hist("h_bucket,5,0,,,,,", "h_bucket,1,0,,,,,", "h_bucket,+Inf,1,,,,,", "h_sum,,1,,,,,", "h_count,,1,,,,,"),
			want: "line 6: histogram: bucket 2: le 1 after 5; bounds must increase"},
		{name: "count is not +Inf's", doc: hist("h_bucket,+Inf,1,,,,,", "h_sum,,1,,,,,", "h_count,,2,,,,,"), want: "line 4: histogram: _count is 2, but the +Inf bucket holds 1"},
		{name: "histogram unfinished", doc: hist("h_bucket,+Inf,1,,,,,", "h_sum,,1,,,,,"), want: "at the end: histogram h []: no _count row"},
		{name: "histogram unfinished before next family", doc: hist("h_bucket,+Inf,1,,,,,") + ",g,g,gauge,,g,,1,,,,,\n", want: "line 3: histogram h []: no _count row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := csv.Decode(strings.NewReader(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestDecodeLenient checks what Decode accepts beyond what Encode writes:
// label columns in any order, a byte order mark, CR LF line ends, times
// with an offset, and other spellings of numbers.
func TestDecodeLenient(t *testing.T) {
	t.Parallel()
	doc := "\uFEFFtime,name,prom_name,type,unit,sample,le,value,start_time,exemplar_trace_id,exemplar_span_id,exemplar_value,label_z,label_a\r\n" +
		"2026-11-25T12:00:00+02:00,g,g,gauge,,g,,1E3,,,,,last,first\r\n" +
		"2026-11-25T10:00:01Z,g,g,gauge,,g,,inf,,,,,,\r\n"
	got, err := csv.Decode(strings.NewReader(doc))
	require.NoError(t, err)
	want := &exporters.Snapshot{
		Time: time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC),
		Families: []exporters.Family{{Name: "g", PromName: "g", Type: exporters.TypeGauge, Series: []exporters.Series{
			{Labels: []exporters.Label{{Name: "a", Value: "first"}, {Name: "z", Value: "last"}}, Value: 1000,
				Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
			{Value: math.Inf(1), Time: time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)},
		}}},
	}
	require.Empty(t, snapshottest.Diff(want, got))
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, csv.Encode(io.Discard, nil, csv.Options{}), "nil snapshot")
	far := &exporters.Snapshot{Families: []exporters.Family{{PromName: "g", Type: exporters.TypeGauge,
		Series: []exporters.Series{{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}}
	require.ErrorContains(t, csv.Encode(io.Discard, far, csv.Options{}), "family g: time 10000-01-01 00:00:00 +0000 UTC: year outside 0 to 9999")
}

func TestExporter(t *testing.T) {
	t.Parallel()
	exp := csv.New()
	require.Equal(t, "csv", exp.Name())
	require.Equal(t, []string{"csv"}, exp.Formats())
	tests := []struct {
		name    string
		req     exporters.ExportRequest
		s       *exporters.Snapshot
		golden  string
		wantErr error
		errText string
	}{
		{name: "plain", req: exporters.ExportRequest{Format: "csv"}, s: snapshottest.Sample(), golden: "snapshot_sample.csv"},
		{name: "bom, foreign option ignored", req: exporters.ExportRequest{Format: "csv", Options: map[string]string{"bom": "true", "pretty": "true"}},
			s: snapshottest.Sample(), golden: "snapshot_sample_bom.csv"},
		{name: "unknown format", req: exporters.ExportRequest{Format: "json"}, s: snapshottest.Sample(), wantErr: exporters.ErrUnknownFormat},
		{name: "bad bom", req: exporters.ExportRequest{Format: "csv", Options: map[string]string{"bom": "sometimes"}},
			s: snapshottest.Sample(), errText: `option bom="sometimes": want true or false`},
		{name: "nil snapshot", req: exporters.ExportRequest{Format: "csv"}, errText: "nil snapshot"},
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
			require.Equal(t, exporters.ExportResult{Exporter: "csv", Format: "csv", ContentType: "text/csv; charset=utf-8; header=present",
				Series: tt.s.SeriesCount(), Bytes: int64(buf.Len()), Duration: res.Duration}, res)
		})
	}
}

func TestExporterCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	_, err := csv.New().Export(ctx, snapshottest.Sample(), exporters.ExportRequest{Format: "csv"}, &buf)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, buf.Len())
}

// TestExporterConcurrentSafe exports one snapshot from many goroutines;
// run with -race.
func TestExporterConcurrentSafe(t *testing.T) {
	t.Parallel()
	exp, s := csv.New(), snapshottest.Sample()
	want := string(encodeBytes(t, s, csv.Options{}))
	outs := make([]string, 8)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() {
			var buf bytes.Buffer
			if _, err := exp.Export(context.Background(), s, exporters.ExportRequest{Format: "csv"}, &buf); err == nil {
				outs[i] = buf.String()
			}
		})
	}
	wg.Wait()
	for _, out := range outs {
		require.Equal(t, want, out)
	}
}

// FuzzDecodeCSV checks that Decode never panics, and that whatever it
// accepts is canonical after one encoding: encoding it, decoding that and
// encoding again gives the same snapshot and the same bytes.
func FuzzDecodeCSV(f *testing.F) {
	for _, name := range []string{"snapshot_sample.csv", "snapshot_sample_bom.csv", "snapshot_empty.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	const header = "time,name,prom_name,type,unit,sample,le,value,start_time,exemplar_trace_id,exemplar_span_id,exemplar_value,label_b,label_a\n"
	f.Add([]byte(header + "2026-11-25T12:00:00+02:00,g,g,gauge,,g,,0x1p-2,,,,,\"x\r\ny\",\n"))
	f.Add([]byte(header + ",h,h,histogram,ms,h_bucket,-Inf,0,,,,,,\n,h,h,histogram,ms,h_bucket,+Inf,3,,t,s,NaN,,\n,h,h,histogram,ms,h_sum,,-0,,,,,,\n,h,h,histogram,ms,h_count,,3,,,,,,\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := csv.Decode(bytes.NewReader(doc))
		if err != nil {
			return
		}
		b := encodeBytes(t, s, csv.Options{})
		again, err := csv.Decode(bytes.NewReader(b))
		require.NoError(t, err, "decoding what Encode wrote of %q", doc)
		require.Empty(t, snapshottest.Diff(s, again))
		require.Equal(t, string(b), string(encodeBytes(t, again, csv.Options{})))
	})
}

func ExampleEncode() {
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	s := &exporters.Snapshot{Families: []exporters.Family{
		{
			Name: "tasker.step.duration", PromName: "tasker_step_duration_seconds", Type: exporters.TypeHistogram, Unit: "s",
			Series: []exporters.Series{{
				Labels: []exporters.Label{{Name: "result", Value: "ok"}}, Start: start, Time: now,
				Histogram: &exporters.Histogram{Count: 3, Sum: 2.5, Buckets: []exporters.Bucket{
					{UpperBound: 0.5, Count: 1}, {UpperBound: math.Inf(1), Count: 3},
				}},
			}},
		},
		{
			Name: "tasker.tasks.requests", PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
			Series: []exporters.Series{{
				Labels: []exporters.Label{{Name: "namespace", Value: "a, b"}}, Value: 3, Start: start, Time: now,
				Exemplar: &exporters.Exemplar{Value: 1, TraceID: snapshottest.TraceA, SpanID: snapshottest.SpanA},
			}},
		},
	}}
	if err := csv.Encode(os.Stdout, s, csv.Options{}); err != nil {
		panic(err)
	}
	// Output:
	// time,name,prom_name,type,unit,sample,le,value,start_time,exemplar_trace_id,exemplar_span_id,exemplar_value,label_namespace,label_result
	// 2026-11-25T10:00:00Z,tasker.step.duration,tasker_step_duration_seconds,histogram,s,tasker_step_duration_seconds_bucket,0.5,1,2026-11-25T09:00:00Z,,,,,ok
	// 2026-11-25T10:00:00Z,tasker.step.duration,tasker_step_duration_seconds,histogram,s,tasker_step_duration_seconds_bucket,+Inf,3,2026-11-25T09:00:00Z,,,,,ok
	// 2026-11-25T10:00:00Z,tasker.step.duration,tasker_step_duration_seconds,histogram,s,tasker_step_duration_seconds_sum,,2.5,2026-11-25T09:00:00Z,,,,,ok
	// 2026-11-25T10:00:00Z,tasker.step.duration,tasker_step_duration_seconds,histogram,s,tasker_step_duration_seconds_count,,3,2026-11-25T09:00:00Z,,,,,ok
	// 2026-11-25T10:00:00Z,tasker.tasks.requests,tasker_tasks_requests_total,counter,,tasker_tasks_requests_total,,3,2026-11-25T09:00:00Z,0af7651916cd43dd8448eb211c80319c,b7ad6b7169203331,1,"a, b",
}

func ExampleDecode() {
	table := "time,name,prom_name,type,unit,sample,le,value,start_time,exemplar_trace_id,exemplar_span_id,exemplar_value,label_queue\n" +
		"2026-11-25T10:00:00Z,tasker.queue.depth,tasker_queue_depth,gauge,,tasker_queue_depth,,NaN,,,,,default\n" +
		"2026-11-25T10:00:00Z,tasker.queue.depth,tasker_queue_depth,gauge,,tasker_queue_depth,,7,,,,,\"new\nline\"\n"
	s, err := csv.Decode(strings.NewReader(table))
	if err != nil {
		panic(err)
	}
	for _, sr := range s.Families[0].Series {
		fmt.Printf("%q %v\n", sr.Labels[0].Value, sr.Value)
	}
	// Output:
	// "default" NaN
	// "new\nline" 7
}

func ExampleExporter_Export() {
	s := &exporters.Snapshot{Families: []exporters.Family{{
		PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter, Series: []exporters.Series{{Value: 3}},
	}}}
	var buf bytes.Buffer
	res, err := csv.New().Export(context.Background(), s, exporters.ExportRequest{Format: exporters.FormatCSV}, &buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ContentType)
	fmt.Println(res.Series, "series,", res.Bytes, "bytes")
	// Output:
	// text/csv; charset=utf-8; header=present
	// 1 series, 181 bytes
}

// BenchmarkEncode times writing n series as CSV, and reading the snapshot
// from an OpenTelemetry collection then writing it (what an export does);
// and decoding the table.
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
		run("csv", func(w io.Writer) error { return csv.Encode(w, s, csv.Options{}) })
		run("read+csv", func(w io.Writer) error {
			return csv.Encode(w, exporters.FromResourceMetrics(rm, readOpts), csv.Options{})
		})
		table := encodeBytes(b, s, csv.Options{})
		b.Run(fmt.Sprintf("series=%d/decode", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := csv.Decode(bytes.NewReader(table)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(table)), "in_bytes")
		})
	}
}

// byteCounter counts what is written to it and keeps nothing.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

// encodeFunc is EncodeText or EncodeOpenMetrics.
type encodeFunc func(io.Writer, *exporters.Snapshot, prometheus.TextOptions) error

func encodeString(t testing.TB, enc encodeFunc, s *exporters.Snapshot, opts prometheus.TextOptions) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, enc(&buf, s, opts))
	return buf.String()
}

func TestTextGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		enc    encodeFunc
		s      *exporters.Snapshot
		opts   prometheus.TextOptions
	}{
		{name: "text", golden: "snapshot_sample.prom", enc: prometheus.EncodeText, s: snapshottest.Sample()},
		{name: "openmetrics", golden: "snapshot_sample.om", enc: prometheus.EncodeOpenMetrics, s: snapshottest.Sample()},
		{name: "text without target_info", golden: "snapshot_sample_without_target_info.prom", enc: prometheus.EncodeText,
			s: snapshottest.Sample(), opts: prometheus.TextOptions{WithoutTargetInfo: true}},
		{name: "text empty", golden: "snapshot_empty.prom", enc: prometheus.EncodeText, s: &exporters.Snapshot{}},
		{name: "openmetrics empty", golden: "snapshot_empty.om", enc: prometheus.EncodeOpenMetrics, s: &exporters.Snapshot{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := encodeString(t, tt.enc, tt.s, tt.opts)
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got, "output differs from %s; rerun with -update if intended", golden)
		})
	}
}

// TestTextRoundTrip writes snapshots in both formats, parses them back with
// expfmt's own parsers (TextParser for 0.0.4, the OpenMetrics 1.0 decoder
// for OpenMetrics) and checks that every value, bucket, sum, count, label,
// description, type, unit and exemplar is what the snapshot holds, that
// target_info carries the resource, and that the two formats agree.
func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	sampleUnits := map[string]string{
		"tasker_cpu_time_seconds_total":               "seconds",
		"tasker_memory_usage_bytes":                   "bytes",
		"tasker_step_execution_duration_milliseconds": "milliseconds",
	}
	generatedUnit := func(f exporters.Family) string {
		switch f.Type {
		case exporters.TypeGauge:
			return "bytes"
		case exporters.TypeHistogram:
			return "milliseconds"
		}
		return "" // unit 1 has no word
	}
	tests := []struct {
		name  string
		s     *exporters.Snapshot
		units func(exporters.Family) string
	}{
		{name: "sample", s: snapshottest.Sample(), units: func(f exporters.Family) string { return sampleUnits[f.PromName] }},
		{name: "generated", s: generatedSample(), units: generatedUnit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text := encodeString(t, prometheus.EncodeText, tt.s, prometheus.TextOptions{})
			om := encodeString(t, prometheus.EncodeOpenMetrics, tt.s, prometheus.TextOptions{})
			require.True(t, strings.HasSuffix(om, "\n# EOF\n"))

			p := expfmt.NewTextParser(model.UTF8Validation)
			byName, err := p.TextToMetricFamilies(strings.NewReader(text))
			require.NoError(t, err)
			fromText := parsed(t, slices.Collect(mapValues(byName)))
			fromOM := parsed(t, decodeOpenMetrics(t, om))

			wantText := promView(tt.s, viewText, nil)
			wantOM := promView(tt.s, viewOpenMetrics, tt.units)
			require.Empty(t, snapshottest.Diff(wantText, fromText), "text")
			checkExemplarTimes(t, wantOM, fromOM)
			require.Empty(t, snapshottest.Diff(wantOM, fromOM), "openmetrics")

			// The two formats agree with each other, once what only
			// OpenMetrics carries is taken away.
			require.Empty(t, snapshottest.Diff(fromText, stripOpenMetrics(fromOM)))
		})
	}
}

// generatedSample is 20 series of each type from snapshottest.Generate:
// enough to cover its shapes, few enough for the OpenMetrics parser, which
// checks every line against the ABNF grammar and is slow.
func generatedSample() *exporters.Snapshot {
	s := snapshottest.Generate(3 * snapshottest.FamilySize)
	for i := range s.Families {
		s.Families[i].Series = s.Families[i].Series[:20]
	}
	return s
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func decodeOpenMetrics(t *testing.T, om string) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(strings.NewReader(om), expfmt.FmtOpenMetrics_1_0_0)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, mf)
	}
}

// parsed turns parsed metric families back into a snapshot: target_info
// into the resource (its label names escaped), every other family as
// Prometheus has it, with what the formats carry of each exemplar.
func parsed(t *testing.T, mfs []*dto.MetricFamily) *exporters.Snapshot {
	t.Helper()
	s := &exporters.Snapshot{}
	types := map[dto.MetricType]exporters.MetricType{
		dto.MetricType_COUNTER: exporters.TypeCounter, dto.MetricType_GAUGE: exporters.TypeGauge,
		dto.MetricType_HISTOGRAM: exporters.TypeHistogram,
	}
	for _, mf := range mfs {
		if mf.GetName() == "target_info" {
			require.Len(t, mf.GetMetric(), 1)
			require.Equal(t, 1.0, mf.GetMetric()[0].GetGauge().GetValue())
			for _, l := range labels(mf.GetMetric()[0].GetLabel()) {
				switch l.Name {
				case "service_name":
					s.Resource.ServiceName = l.Value
				case "service_instance_id":
					s.Resource.Instance = l.Value
				default:
					s.Resource.Attributes = append(s.Resource.Attributes, l)
				}
			}
			continue
		}
		typ, ok := types[mf.GetType()]
		require.True(t, ok, "%s: type %s", mf.GetName(), mf.GetType())
		f := exporters.Family{PromName: mf.GetName(), Type: typ, Description: mf.GetHelp(), Unit: mf.GetUnit()}
		for _, m := range mf.GetMetric() {
			sr := exporters.Series{Labels: labels(m.GetLabel())}
			switch typ {
			case exporters.TypeCounter:
				sr.Value = m.GetCounter().GetValue()
				sr.Exemplar = fromDTOExemplar(m.GetCounter().GetExemplar())
			case exporters.TypeGauge:
				sr.Value = m.GetGauge().GetValue()
			case exporters.TypeHistogram:
				h := m.GetHistogram()
				sr.Histogram = &exporters.Histogram{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
				for _, b := range h.GetBucket() {
					sr.Histogram.Buckets = append(sr.Histogram.Buckets, exporters.Bucket{
						UpperBound: b.GetUpperBound(), Count: b.GetCumulativeCount(), Exemplar: fromDTOExemplar(b.GetExemplar()),
					})
				}
			}
			f.Series = append(f.Series, sr)
		}
		s.Families = append(s.Families, f)
	}
	snapshottest.Sort(s)
	return s
}

func labels(pairs []*dto.LabelPair) []exporters.Label {
	var out []exporters.Label
	for _, p := range pairs {
		out = append(out, exporters.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	slices.SortFunc(out, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func fromDTOExemplar(e *dto.Exemplar) *exporters.Exemplar {
	if e == nil {
		return nil
	}
	out := &exporters.Exemplar{Value: e.GetValue()}
	if e.Timestamp != nil {
		out.Time = e.GetTimestamp().AsTime()
	}
	for _, l := range labels(e.GetLabel()) {
		switch l.Name {
		case "trace_id":
			out.TraceID = l.Value
		case "span_id":
			out.SpanID = l.Value
		default:
			out.Labels = append(out.Labels, l)
		}
	}
	return out
}

// viewMode names what promView keeps: the text formats or the protobuf
// one MetricFamilies feeds.
type viewMode int

const (
	viewText viewMode = iota
	viewOpenMetrics
	viewProtobuf
)

// promView is what the Prometheus formats carry of s: no OpenTelemetry
// names, no start or sample times, no families without series, the
// resource as target_info's labels, units as Prometheus words in
// OpenMetrics only, and exemplars on counters and buckets (their labels
// within 128 runes) in OpenMetrics and protobuf only. The text formats
// write -0 as 0, and OpenMetrics no exemplar without labels.
func promView(s *exporters.Snapshot, mode viewMode, units func(exporters.Family) string) *exporters.Snapshot {
	v := snapshottest.Clone(s)
	v.Time = time.Time{}
	var attrs []exporters.Label
	for _, a := range v.Resource.Attributes {
		attrs = append(attrs, exporters.Label{Name: strings.NewReplacer(".", "_").Replace(a.Name), Value: a.Value})
	}
	v.Resource.Attributes = attrs
	v.Families = slices.DeleteFunc(v.Families, func(f exporters.Family) bool { return len(f.Series) == 0 })
	for i := range v.Families {
		f := &v.Families[i]
		f.Name, f.Unit = "", ""
		if mode == viewOpenMetrics {
			f.Unit = units(*f)
		}
		for j := range f.Series {
			sr := &f.Series[j]
			sr.Start, sr.Time = time.Time{}, time.Time{}
			if sr.Value == 0 && mode != viewProtobuf {
				sr.Value = 0 // expfmt writes -0 as 0
			}
			sr.Exemplar = promExemplar(sr.Exemplar, mode, f.Type == exporters.TypeCounter)
			if sr.Histogram != nil {
				for k := range sr.Histogram.Buckets {
					b := &sr.Histogram.Buckets[k]
					b.Exemplar = promExemplar(b.Exemplar, mode, true)
				}
			}
		}
	}
	return v
}

func promExemplar(e *exporters.Exemplar, mode viewMode, allowed bool) *exporters.Exemplar {
	if e == nil || !allowed || mode == viewText {
		return nil
	}
	n := len("trace_id") + len(e.TraceID) + len("span_id") + len(e.SpanID)
	for _, l := range e.Labels {
		n += len([]rune(l.Name)) + len([]rune(l.Value))
	}
	if n > promclient.ExemplarMaxRunes {
		e.Labels = nil
	}
	if mode == viewOpenMetrics && e.TraceID == "" && e.SpanID == "" && len(e.Labels) == 0 {
		return nil // expfmt writes no exemplar without labels
	}
	return e
}

// stripOpenMetrics takes away what only OpenMetrics carries: units and
// exemplars.
func stripOpenMetrics(s *exporters.Snapshot) *exporters.Snapshot {
	v := snapshottest.Clone(s)
	for i := range v.Families {
		f := &v.Families[i]
		f.Unit = ""
		for j := range f.Series {
			f.Series[j].Exemplar = nil
			if h := f.Series[j].Histogram; h != nil {
				for k := range h.Buckets {
					h.Buckets[k].Exemplar = nil
				}
			}
		}
	}
	return v
}

// checkExemplarTimes checks that every exemplar's time came back within a
// microsecond (OpenMetrics writes it as float seconds, which keep about
// that much), then sets both to the wanted one so that Diff compares the
// rest exactly.
func checkExemplarTimes(t *testing.T, want, got *exporters.Snapshot) {
	t.Helper()
	w, g := exemplarsOf(want), exemplarsOf(got)
	require.Len(t, g, len(w), "exemplars")
	for i := range w {
		require.InDelta(t, 0, w[i].Time.Sub(g[i].Time), float64(time.Microsecond), "exemplar %d: want %s, got %s", i, w[i].Time, g[i].Time)
		g[i].Time = w[i].Time
	}
}

func exemplarsOf(s *exporters.Snapshot) []*exporters.Exemplar {
	var out []*exporters.Exemplar
	for _, f := range s.Families {
		for _, sr := range f.Series {
			if sr.Exemplar != nil {
				out = append(out, sr.Exemplar)
			}
			if sr.Histogram != nil {
				for _, b := range sr.Histogram.Buckets {
					if b.Exemplar != nil {
						out = append(out, b.Exemplar)
					}
				}
			}
		}
	}
	return out
}

// TestTextEscaping pins how each awkward value is spelled in each format.
func TestTextEscaping(t *testing.T) {
	t.Parallel()
	gauge := func(help string, v float64, labelValue string) *exporters.Snapshot {
		return &exporters.Snapshot{Families: []exporters.Family{{
			PromName: "g", Type: exporters.TypeGauge, Description: help,
			Series: []exporters.Series{{Labels: []exporters.Label{{Name: "l", Value: labelValue}}, Value: v}},
		}}}
	}
	tests := []struct {
		name     string
		s        *exporters.Snapshot
		text, om string // a line each output must hold
	}{
		{name: "double quote in label", s: gauge("", 1, `a"b`), text: `g{l="a\"b"} 1`, om: `g{l="a\"b"} 1.0`},
		{name: "backslash in label", s: gauge("", 1, `a\b`), text: `g{l="a\\b"} 1`, om: `g{l="a\\b"} 1.0`},
		{name: "newline in label", s: gauge("", 1, "a\nb"), text: `g{l="a\nb"} 1`, om: `g{l="a\nb"} 1.0`},
		{name: "unicode in label", s: gauge("", 1, "日本 ✓ 🚀"), text: `g{l="日本 ✓ 🚀"} 1`, om: `g{l="日本 ✓ 🚀"} 1.0`},
		{name: "empty label", s: gauge("", 1, ""), text: `g{l=""} 1`, om: `g{l=""} 1.0`},
		{name: "backslash and newline in help", s: gauge("a\\b\nc", 1, "x"), text: `# HELP g a\\b\nc`, om: `# HELP g a\\b\nc`},
		{name: "double quote in help", s: gauge(`say "hi"`, 1, "x"), text: `# HELP g say "hi"`, om: `# HELP g say \"hi\"`},
		{name: "empty help", s: gauge("", 1, "x"), text: "# HELP g \n", om: "# HELP g \n"},
		{name: "+Inf", s: gauge("", math.Inf(1), "x"), text: `g{l="x"} +Inf`, om: `g{l="x"} +Inf`},
		{name: "-Inf", s: gauge("", math.Inf(-1), "x"), text: `g{l="x"} -Inf`, om: `g{l="x"} -Inf`},
		{name: "NaN", s: gauge("", math.NaN(), "x"), text: `g{l="x"} NaN`, om: `g{l="x"} NaN`},
		{name: "-0 is 0, as expfmt writes it", s: gauge("", math.Copysign(0, -1), "x"), text: `g{l="x"} 0`, om: `g{l="x"} 0.0`},
		{name: "exponent", s: gauge("", 1e21, "x"), text: `g{l="x"} 1e+21`, om: `g{l="x"} 1e+21`},
		{name: "shortest digits", s: gauge("", 0.1, "x"), text: `g{l="x"} 0.1`, om: `g{l="x"} 0.1`},
		{name: "smallest float", s: gauge("", 5e-324, "x"), text: `g{l="x"} 5e-324`, om: `g{l="x"} 5e-324`},
		{
			name: "+Inf bucket",
			s: &exporters.Snapshot{Families: []exporters.Family{{
				PromName: "h_seconds", Type: exporters.TypeHistogram, Unit: "s",
				Series: []exporters.Series{{Histogram: &exporters.Histogram{Count: 2, Sum: 3, Buckets: []exporters.Bucket{
					{UpperBound: 1, Count: 1}, {UpperBound: math.Inf(1), Count: 2},
				}}}},
			}}},
			text: `h_seconds_bucket{le="+Inf"} 2`, om: `h_seconds_bucket{le="+Inf"} 2`,
		},
		{
			name: "counter exemplar",
			s: &exporters.Snapshot{Families: []exporters.Family{{
				PromName: "c_total", Type: exporters.TypeCounter, Description: "d",
				Series: []exporters.Series{{Value: 2, Exemplar: &exporters.Exemplar{
					Value: 1, Time: time.Unix(1700000000, 5e8), TraceID: snapshottest.TraceA, SpanID: snapshottest.SpanA,
				}}},
			}}},
			text: "# TYPE c_total counter\nc_total 2\n",
			om:   "# TYPE c counter\nc_total 2.0 # {span_id=\"" + snapshottest.SpanA + "\",trace_id=\"" + snapshottest.TraceA + "\"} 1.0 1.7000000005e+09\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := prometheus.TextOptions{WithoutTargetInfo: true}
			require.Contains(t, encodeString(t, prometheus.EncodeText, tt.s, opts), tt.text)
			require.Contains(t, encodeString(t, prometheus.EncodeOpenMetrics, tt.s, opts), tt.om)
		})
	}
}

// TestTextMatchesMetricsEndpoint records one set of measurements and checks
// that the snapshot's text export and /metrics are the same bytes: same
// names, order, escaping, float spelling and target_info.
func TestTextMatchesMetricsEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp, err := prometheus.New(*prometheus.NewDefaultConfig(), exporters.Settings{})
	require.NoError(t, err)
	manual := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp.Reader()),
		sdkmetric.WithReader(manual),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "sextant-test"),
			attribute.String("host.name", "host \"a\"\n"))),
	)
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(ctx))
		require.NoError(t, exp.Shutdown(ctx))
	})
	meter := mp.Meter("github.com/sextant-telemetry/sextant/router")
	requests, err := meter.Int64Counter("tasker.tasks.requests", metric.WithDescription("Task requests.\nWith a \\ and a \"."))
	require.NoError(t, err)
	depth, err := meter.Float64UpDownCounter("tasker.queue.depth", metric.WithUnit("{task}"))
	require.NoError(t, err)
	memory, err := meter.Float64Gauge("tasker.memory.usage", metric.WithUnit("By"), metric.WithDescription("Memory."))
	require.NoError(t, err)
	duration, err := meter.Float64Histogram("tasker.step.execution.duration", metric.WithUnit("ms"))
	require.NoError(t, err)
	for _, v := range []string{"plain", `quote"d`, `back\slash`, "new\nline", "ünïcødé 日本", ""} {
		attrs := metric.WithAttributes(attribute.String("queue", v), attribute.String("namespace", "default"))
		requests.Add(ctx, 3, attrs)
		depth.Add(ctx, -2.5, attrs)
		memory.Record(ctx, 1073741824.5, attrs)
		duration.Record(ctx, 0.1, attrs)
		duration.Record(ctx, 730, attrs)
		duration.Record(ctx, 1e6, attrs)
	}
	memory.Record(ctx, math.Inf(1), metric.WithAttributes(attribute.String("queue", "inf")))
	memory.Record(ctx, math.NaN(), metric.WithAttributes(attribute.String("queue", "nan")))

	for _, tt := range []struct {
		name, accept string
		enc          encodeFunc
	}{
		{name: "text", accept: acceptText, enc: prometheus.EncodeText},
		{name: "openmetrics", accept: acceptOpenMetrics, enc: prometheus.EncodeOpenMetrics},
	} {
		_, body := scrape(t, exp, tt.accept)
		snap, err := exporters.Read(ctx, manual, exporters.ReadOptions{})
		require.NoError(t, err)
		got := encodeString(t, tt.enc, snap, prometheus.TextOptions{})
		want := string(body)
		if tt.name == "openmetrics" && !strings.Contains(want, "# UNIT ") {
			// /metrics gives no UNIT lines: the OpenTelemetry exporter
			// does not fill in the unit. Ours does, where OpenMetrics
			// allows it; everything else must be the same.
			got = dropLines(got, "# UNIT ")
		}
		require.Equal(t, want, got, tt.name)
	}
}

func dropLines(s, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, prefix) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestTextPromtool lints the text export of the sample with promtool, as
// TestPromtoolCheckMetrics lints /metrics.
func TestTextPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found: install Debian's prometheus package (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(encodeString(t, prometheus.EncodeText, snapshottest.Sample(), prometheus.TextOptions{}))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 3 {
		// Lint problems only: the sample's milliseconds histogram is one,
		// on purpose (the seed metrics fix that unit).
		for line := range strings.Lines(strings.TrimSpace(stderr.String())) {
			require.True(t, slices.ContainsFunc(acceptedLints, func(s string) bool { return strings.HasSuffix(strings.TrimSpace(line), s) }),
				"promtool lint problem not accepted: %s", line)
		}
		return
	}
	require.NoError(t, err, stderr.String())
}

func TestTextExporter(t *testing.T) {
	t.Parallel()
	exp := prometheus.NewTextExporter()
	require.Equal(t, "prometheus", exp.Name())
	require.Equal(t, []string{"prometheus", "openmetrics"}, exp.Formats())

	tests := []struct {
		name        string
		req         exporters.ExportRequest
		s           *exporters.Snapshot
		contentType string
		want        string // golden file whose bytes the export writes
		wantErr     error
		errContains string
	}{
		{name: "prometheus", req: exporters.ExportRequest{Format: "prometheus"}, s: snapshottest.Sample(),
			contentType: "text/plain; version=0.0.4; charset=utf-8", want: "snapshot_sample.prom"},
		{name: "openmetrics", req: exporters.ExportRequest{Format: "openmetrics", Options: map[string]string{"pretty": "true"}},
			s: snapshottest.Sample(), contentType: "application/openmetrics-text; version=1.0.0; charset=utf-8", want: "snapshot_sample.om"},
		{name: "target_info off", req: exporters.ExportRequest{Format: "prometheus", Options: map[string]string{"target_info": "false"}},
			s: snapshottest.Sample(), contentType: prometheus.ContentTypeText, want: "snapshot_sample_without_target_info.prom"},
		{name: "unknown format", req: exporters.ExportRequest{Format: "json"}, s: snapshottest.Sample(), wantErr: exporters.ErrUnknownFormat},
		{name: "bad option", req: exporters.ExportRequest{Format: "prometheus", Options: map[string]string{"target_info": "maybe"}},
			s: snapshottest.Sample(), errContains: `target_info="maybe"`},
		{name: "nil snapshot", req: exporters.ExportRequest{Format: "prometheus"}, contentType: prometheus.ContentTypeText, errContains: "nil snapshot"},
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
			case tt.errContains != "":
				require.ErrorContains(t, err, tt.errContains)
				return
			}
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join("testdata", tt.want))
			require.NoError(t, err)
			require.Equal(t, string(want), buf.String())
			require.Equal(t, exporters.ExportResult{
				Exporter: "prometheus", Format: tt.req.Format, ContentType: tt.contentType,
				Series: tt.s.SeriesCount(), Bytes: int64(buf.Len()), Duration: res.Duration,
			}, res)
			require.GreaterOrEqual(t, res.Duration, time.Duration(0))
		})
	}
}

func TestTextExporterCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	_, err := prometheus.NewTextExporter().Export(ctx, snapshottest.Sample(), exporters.ExportRequest{Format: "openmetrics"}, &buf)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, buf.Len())
}

// TestTextExporterConcurrentSafe exports one snapshot from many goroutines;
// run with -race.
func TestTextExporterConcurrentSafe(t *testing.T) {
	t.Parallel()
	exp := prometheus.NewTextExporter()
	s := snapshottest.Sample()
	want := encodeString(t, prometheus.EncodeOpenMetrics, s, prometheus.TextOptions{})
	var wg sync.WaitGroup
	outs := make([]string, 8)
	for i := range outs {
		wg.Go(func() {
			var buf bytes.Buffer
			if _, err := exp.Export(context.Background(), s, exporters.ExportRequest{Format: "openmetrics"}, &buf); err == nil {
				outs[i] = buf.String()
			}
		})
	}
	wg.Wait()
	for _, out := range outs {
		require.Equal(t, want, out)
	}
}

func TestMetricFamilies(t *testing.T) {
	t.Parallel()
	s := snapshottest.Sample()
	mfs := prometheus.MetricFamilies(s, prometheus.TextOptions{})
	names := make([]string, len(mfs))
	for i, mf := range mfs {
		names[i] = mf.GetName()
	}
	require.Equal(t, []string{
		"target_info", "tasker_cpu_time_seconds_total", "tasker_memory_usage_bytes", "tasker_queue_depth",
		"tasker_step_execution_duration_milliseconds", "tasker_tasks_requests_total",
	}, names)

	// The families share nothing with the snapshot.
	*mfs[1].Metric[0].Counter.Value = -1
	*mfs[1].Metric[0].Label[0].Value = "changed"
	require.Empty(t, snapshottest.Diff(snapshottest.Sample(), s))

	// Any expfmt format can write them, delimited protobuf included.
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range prometheus.MetricFamilies(s, prometheus.TextOptions{}) {
		require.NoError(t, enc.Encode(mf))
	}
	dec := expfmt.NewDecoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	var back []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		back = append(back, mf)
	}
	fromProto := parsed(t, back)
	for i := range fromProto.Families {
		fromProto.Families[i].Unit = "" // protobuf carries the unit; promView has it for OpenMetrics only
	}
	want := promView(s, viewProtobuf, nil)
	checkExemplarTimes(t, want, fromProto)
	require.Empty(t, snapshottest.Diff(want, fromProto))

	require.Nil(t, prometheus.MetricFamilies(nil, prometheus.TextOptions{}))
}

func ExampleEncodeText() {
	s := &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant"},
		Families: []exporters.Family{{
			Name: "tasker.tasks.requests", PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
			Description: "Task requests received.",
			Series: []exporters.Series{
				{Labels: []exporters.Label{{Name: "namespace", Value: "default"}}, Value: 3},
				{Labels: []exporters.Label{{Name: "namespace", Value: "say \"hi\"\n"}}, Value: 1},
			},
		}},
	}
	if err := prometheus.EncodeText(os.Stdout, s, prometheus.TextOptions{}); err != nil {
		panic(err)
	}
	// Output:
	// # HELP target_info Target metadata
	// # TYPE target_info gauge
	// target_info{service_name="sextant"} 1
	// # HELP tasker_tasks_requests_total Task requests received.
	// # TYPE tasker_tasks_requests_total counter
	// tasker_tasks_requests_total{namespace="default"} 3
	// tasker_tasks_requests_total{namespace="say \"hi\"\n"} 1
}

func ExampleEncodeOpenMetrics() {
	s := &exporters.Snapshot{
		Families: []exporters.Family{{
			Name: "tasker.step.duration", PromName: "tasker_step_duration_seconds", Type: exporters.TypeHistogram,
			Unit: "s", Description: "Step duration.",
			Series: []exporters.Series{{Histogram: &exporters.Histogram{Count: 2, Sum: 1.5, Buckets: []exporters.Bucket{
				{UpperBound: 0.5, Count: 1},
				{UpperBound: math.Inf(1), Count: 2, Exemplar: &exporters.Exemplar{
					Value: 1.25, Time: time.Unix(1764064800, 0), TraceID: snapshottest.TraceA, SpanID: snapshottest.SpanA,
				}},
			}}}},
		}},
	}
	if err := prometheus.EncodeOpenMetrics(os.Stdout, s, prometheus.TextOptions{}); err != nil {
		panic(err)
	}
	// Output:
	// # HELP tasker_step_duration_seconds Step duration.
	// # TYPE tasker_step_duration_seconds histogram
	// # UNIT tasker_step_duration_seconds seconds
	// tasker_step_duration_seconds_bucket{le="0.5"} 1
	// tasker_step_duration_seconds_bucket{le="+Inf"} 2 # {span_id="b7ad6b7169203331",trace_id="0af7651916cd43dd8448eb211c80319c"} 1.25 1.7640648e+09
	// tasker_step_duration_seconds_sum 1.5
	// tasker_step_duration_seconds_count 2
	// # EOF
}

func ExampleTextExporter_Export() {
	exp := prometheus.NewTextExporter()
	s := &exporters.Snapshot{Families: []exporters.Family{{
		Name: "tasker.queue.depth", PromName: "tasker_queue_depth", Type: exporters.TypeGauge,
		Description: "Tasks waiting.", Series: []exporters.Series{{Value: math.NaN()}},
	}}}
	var buf bytes.Buffer
	res, err := exp.Export(context.Background(), s, exporters.ExportRequest{Format: exporters.FormatOpenMetrics}, &buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ContentType)
	fmt.Println(res.Series, "series,", res.Bytes, "bytes")
	fmt.Print(buf.String())
	// Output:
	// application/openmetrics-text; version=1.0.0; charset=utf-8
	// 1 series, 102 bytes
	// # HELP tasker_queue_depth Tasks waiting.
	// # TYPE tasker_queue_depth gauge
	// tasker_queue_depth NaN
	// # EOF
}

func ExampleMetricFamilies() {
	s := &exporters.Snapshot{Families: []exporters.Family{{
		PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter,
		Series: []exporters.Series{{Value: 3}},
	}}}
	for _, mf := range prometheus.MetricFamilies(s, prometheus.TextOptions{WithoutTargetInfo: true}) {
		fmt.Println(mf.GetName(), mf.GetType(), mf.GetMetric()[0].GetCounter().GetValue())
	}
	// Output:
	// tasker_tasks_requests_total COUNTER 3
}

// BenchmarkTextEncode times writing n series in each text format, reading
// the snapshot from an OpenTelemetry collection and writing it (what an
// export does), and client_golang's own path for the same series: Gather
// from a registry of const metrics (what the OpenTelemetry exporter
// registers) and expfmt's text encoding, and that encoding alone.
func BenchmarkTextEncode(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		s := snapshottest.Generate(n)
		rm := snapshottest.ResourceMetrics(s)
		collector, err := snapshottest.NewCollector(s)
		require.NoError(b, err)
		reg := promclient.NewRegistry()
		require.NoError(b, reg.Register(collector))
		gathered, err := reg.Gather()
		require.NoError(b, err)
		opts := prometheus.TextOptions{}
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
		run("prometheus", func(w io.Writer) error { return prometheus.EncodeText(w, s, opts) })
		run("openmetrics", func(w io.Writer) error { return prometheus.EncodeOpenMetrics(w, s, opts) })
		run("read+prometheus", func(w io.Writer) error {
			return prometheus.EncodeText(w, exporters.FromResourceMetrics(rm, readOpts), opts)
		})
		run("client_golang_gather+text", func(w io.Writer) error {
			mfs, err := reg.Gather()
			if err != nil {
				return err
			}
			return encodeFamilies(w, mfs)
		})
		run("client_golang_text", func(w io.Writer) error { return encodeFamilies(w, gathered) })
	}
}

func encodeFamilies(w io.Writer, mfs []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// byteCounter counts what is written to it and keeps nothing.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

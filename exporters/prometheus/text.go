package prometheus

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/otlptranslator"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sextant-telemetry/sextant/exporters"
)

// The media types of the two text formats, exactly as an export's
// ExportResult.ContentType gives them.
const (
	ContentTypeText        = "text/plain; version=0.0.4; charset=utf-8"
	ContentTypeOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// textExporterName is the TextExporter's name in an export registry.
const textExporterName = "prometheus"

// targetInfo is the family that carries the resource, as on /metrics.
const (
	targetInfoName = "target_info"
	targetInfoHelp = "Target metadata"
)

// optionTargetInfo is the export option that turns target_info off
// (target_info=false).
const optionTargetInfo = "target_info"

// TextOptions say how a snapshot is written in the Prometheus text formats.
// The zero value writes what /metrics serves with the default
// configuration.
type TextOptions struct {
	// WithoutTargetInfo leaves out the target_info family, which otherwise
	// carries the snapshot's Resource as labels (service_name,
	// service_instance_id and every attribute, underscore-escaped), as
	// /metrics does unless exporters.prometheus.target_info is false.
	WithoutTargetInfo bool
}

// TextExporter writes snapshots in the Prometheus text exposition format
// 0.0.4 ("prometheus") and in OpenMetrics 1.0 ("openmetrics"), with
// github.com/prometheus/common/expfmt's encoders, so that every line is
// spelled as on /metrics. It keeps no state: it is safe for concurrent use
// and needs no Shutdown.
type TextExporter struct {
	now func() time.Time
}

var _ exporters.SnapshotExporter = (*TextExporter)(nil)

// NewTextExporter returns the built-in exporter of the two Prometheus text
// formats.
func NewTextExporter() *TextExporter {
	return &TextExporter{now: time.Now}
}

// Name returns "prometheus".
func (*TextExporter) Name() string { return textExporterName }

// Formats returns "prometheus" and "openmetrics".
func (*TextExporter) Formats() []string {
	return []string{exporters.FormatPrometheus, exporters.FormatOpenMetrics}
}

// Export writes s to w in req.Format: [EncodeText] for "prometheus",
// [EncodeOpenMetrics] for "openmetrics". The one option it knows is
// target_info (true or false, default true); it ignores the others, which
// belong to other formats (pretty). ctx is checked before each family:
// once it ends, Export stops and returns ctx's error, having written part
// of the output. Export does not keep s, does not retry (the caller
// decides), and is safe for concurrent use. The result's Series is
// s.SeriesCount(), which does not count target_info.
func (e *TextExporter) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	start := e.now()
	res := exporters.ExportResult{Exporter: textExporterName, Format: req.Format}
	var openMetrics bool
	switch req.Format {
	case exporters.FormatPrometheus:
		res.ContentType = ContentTypeText
	case exporters.FormatOpenMetrics:
		res.ContentType = ContentTypeOpenMetrics
		openMetrics = true
	default:
		return res, fmt.Errorf("%s: %w %q (known: %s)", textExporterName, exporters.ErrUnknownFormat,
			req.Format, strings.Join(e.Formats(), ", "))
	}
	withTargetInfo, err := exporters.BoolOption(req, optionTargetInfo, true)
	if err != nil {
		return res, fmt.Errorf("%s: %w", textExporterName, err)
	}
	opts := TextOptions{WithoutTargetInfo: !withTargetInfo}
	err = exporters.Encode(s, w, &res, start, e.now, func(w io.Writer) error { return encode(ctx, w, s, opts, openMetrics) })
	if err != nil {
		return res, fmt.Errorf("%s: %s: %w", textExporterName, req.Format, err)
	}
	return res, nil
}

// EncodeText writes s in the Prometheus text exposition format 0.0.4, as
// /metrics serves it: one HELP and TYPE per family (HELP escapes backslash
// and newline; label values escape backslash, double quote and newline),
// floats as expfmt spells them (+Inf, -Inf, NaN, shortest round-trip
// digits), a counter under its PromName (with _total), a histogram as
// _bucket lines ending with le="+Inf", then _sum and _count. The format has
// no units, exemplars, start times or sample timestamps, so none are
// written; families without series are left out, as client_golang leaves
// them out. It does not keep s.
func EncodeText(w io.Writer, s *exporters.Snapshot, opts TextOptions) error {
	return encode(context.Background(), w, s, opts, false)
}

// EncodeOpenMetrics writes s in OpenMetrics 1.0 text, as /metrics serves it
// to a scraper that asks for OpenMetrics. It differs from [EncodeText] as
// the format does: a counter's family is named without _total (HELP, TYPE
// and UNIT lines) and its sample with it; a UNIT line follows TYPE when
// the family's unit, in Prometheus words (ms is milliseconds), ends its
// name; exemplars follow counter and bucket samples as
// # {span_id="…",trace_id="…",…} value timestamp, their labels sorted by
// name; the output ends with # EOF. OpenMetrics limits an exemplar's
// labels to 128 runes: an exemplar over the limit keeps trace_id and
// span_id only (and is left out if even they are over it); expfmt writes
// no exemplar that has no labels at all. A family whose
// counter name lacks _total (a translation strategy without suffixes) is
// typed unknown, as expfmt does. It does not keep s.
func EncodeOpenMetrics(w io.Writer, s *exporters.Snapshot, opts TextOptions) error {
	return encode(context.Background(), w, s, opts, true)
}

// MetricFamilies returns s as client_model metric families, in s's order
// with target_info in its place by name unless opts leave it out, and
// without the families that have no series. The result shares no memory
// with s, so that it may be changed or kept; it is what EncodeText and
// EncodeOpenMetrics write, and what expfmt.NewEncoder writes in any other
// format, the delimited protobuf one included.
func MetricFamilies(s *exporters.Snapshot, opts TextOptions) []*dto.MetricFamily {
	if s == nil {
		return nil
	}
	var out []*dto.MetricFamily
	_ = eachFamily(context.Background(), s, opts, func(f *exporters.Family) error {
		var b familyBuilder // not reused: each family keeps its own memory
		out = append(out, b.build(f))
		return nil
	})
	return out
}

// encode writes s through one buffer, building and writing one family at a
// time so that memory stays in proportion to the largest family.
func encode(ctx context.Context, w io.Writer, s *exporters.Snapshot, opts TextOptions, openMetrics bool) error {
	if s == nil {
		return errors.New("nil snapshot")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var b familyBuilder // reused: a family is written before the next is built
	err := eachFamily(ctx, s, opts, func(f *exporters.Family) error {
		mf := b.build(f)
		var err error
		if openMetrics {
			_, err = expfmt.MetricFamilyToOpenMetrics(bw, mf)
		} else {
			_, err = expfmt.MetricFamilyToText(bw, mf)
		}
		b.reset()
		if err != nil {
			return fmt.Errorf("family %s: %w", f.PromName, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if openMetrics {
		if _, err := expfmt.FinalizeOpenMetrics(bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// eachFamily calls fn for each family with series, and for target_info in
// its place by name, checking ctx before each.
func eachFamily(ctx context.Context, s *exporters.Snapshot, opts TextOptions, fn func(f *exporters.Family) error) error {
	var info *exporters.Family
	if !opts.WithoutTargetInfo && !slices.ContainsFunc(s.Families, func(f exporters.Family) bool { return f.PromName == targetInfoName }) {
		info = targetInfoFamily(&s.Resource)
	}
	for i := range s.Families {
		f := &s.Families[i]
		if info != nil && f.PromName > targetInfoName {
			if err := emit(ctx, info, fn); err != nil {
				return err
			}
			info = nil
		}
		if len(f.Series) == 0 {
			continue
		}
		if err := emit(ctx, f, fn); err != nil {
			return err
		}
	}
	if info != nil {
		return emit(ctx, info, fn)
	}
	return nil
}

func emit(ctx context.Context, f *exporters.Family, fn func(f *exporters.Family) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(f)
}

// targetInfoFamily returns the target_info family of r, as the
// OpenTelemetry exporter builds it: a gauge of 1 whose labels are the
// resource's attributes, service.name and service.instance.id included,
// named as labels; attributes whose names collide once escaped share one
// label whose value is their sorted values joined with ";". It returns nil
// for a resource with no attributes.
func targetInfoFamily(r *exporters.Resource) *exporters.Family {
	attrs := make([]exporters.Label, 0, len(r.Attributes)+2)
	if r.ServiceName != "" {
		attrs = append(attrs, exporters.Label{Name: "service.name", Value: r.ServiceName})
	}
	if r.Instance != "" {
		attrs = append(attrs, exporters.Label{Name: "service.instance.id", Value: r.Instance})
	}
	attrs = append(attrs, r.Attributes...)
	namer := otlptranslator.LabelNamer{}
	byName := map[string][]string{}
	for _, a := range attrs {
		name, err := namer.Build(a.Name)
		if err != nil {
			continue // the exporter cannot name it either
		}
		byName[name] = append(byName[name], a.Value)
	}
	if len(byName) == 0 {
		return nil
	}
	labels := make([]exporters.Label, 0, len(byName))
	for name, values := range byName {
		slices.Sort(values)
		labels = append(labels, exporters.Label{Name: name, Value: strings.Join(values, ";")})
	}
	slices.SortFunc(labels, func(a, b exporters.Label) int { return cmp.Compare(a.Name, b.Name) })
	return &exporters.Family{
		Name: targetInfoName, PromName: targetInfoName, Type: exporters.TypeGauge, Description: targetInfoHelp,
		Series: []exporters.Series{{Labels: labels, Value: 1}},
	}
}

// familyBuilder builds a dto.MetricFamily from slabs: one allocation per
// kind of message per family rather than one per message, which is most of
// the cost of a large export. Strings and numbers are copied into the slabs,
// so the family shares nothing with the snapshot.
type familyBuilder struct {
	metrics    []dto.Metric
	metricPtrs []*dto.Metric
	pairs      []dto.LabelPair
	pairPtrs   []*dto.LabelPair
	strs       []string
	floats     []float64
	uints      []uint64
	counters   []dto.Counter
	gauges     []dto.Gauge
	histograms []dto.Histogram
	buckets    []dto.Bucket
	bucketPtrs []*dto.Bucket
}

// reset forgets the last family, keeping the slabs for the next.
func (b *familyBuilder) reset() {
	clear(b.metrics)
	clear(b.metricPtrs)
	clear(b.pairs)
	clear(b.pairPtrs)
	clear(b.strs)
	clear(b.counters)
	clear(b.gauges)
	clear(b.histograms)
	clear(b.buckets)
	clear(b.bucketPtrs)
	b.metrics, b.metricPtrs, b.pairs, b.pairPtrs = b.metrics[:0], b.metricPtrs[:0], b.pairs[:0], b.pairPtrs[:0]
	b.strs, b.floats, b.uints = b.strs[:0], b.floats[:0], b.uints[:0]
	b.counters, b.gauges, b.histograms = b.counters[:0], b.gauges[:0], b.histograms[:0]
	b.buckets, b.bucketPtrs = b.buckets[:0], b.bucketPtrs[:0]
}

// grow makes room for a family: the slabs never grow while it is built,
// so the pointers into them stay valid.
func grow[T any](s []T, n int) []T {
	return slices.Grow(s[:0], n)
}

func (b *familyBuilder) str(v string) *string {
	b.strs = append(b.strs, v)
	return &b.strs[len(b.strs)-1]
}

func (b *familyBuilder) float(v float64) *float64 {
	b.floats = append(b.floats, v)
	return &b.floats[len(b.floats)-1]
}

func (b *familyBuilder) uint(v uint64) *uint64 {
	b.uints = append(b.uints, v)
	return &b.uints[len(b.uints)-1]
}

// labelPairs returns labels as pairs, a sub-slice of the slab.
func (b *familyBuilder) labelPairs(labels []exporters.Label) []*dto.LabelPair {
	from := len(b.pairPtrs)
	for _, l := range labels {
		b.pairs = append(b.pairs, dto.LabelPair{Name: b.str(l.Name), Value: b.str(l.Value)})
		b.pairPtrs = append(b.pairPtrs, &b.pairs[len(b.pairs)-1])
	}
	return b.pairPtrs[from:len(b.pairPtrs):len(b.pairPtrs)]
}

func (b *familyBuilder) build(f *exporters.Family) *dto.MetricFamily {
	nLabels, nBuckets := 0, 0
	for i := range f.Series {
		nLabels += len(f.Series[i].Labels)
		if h := f.Series[i].Histogram; h != nil {
			nBuckets += len(h.Buckets)
		}
	}
	n := len(f.Series)
	b.metrics, b.metricPtrs = grow(b.metrics, n), grow(b.metricPtrs, n)
	b.pairs, b.pairPtrs = grow(b.pairs, nLabels), grow(b.pairPtrs, nLabels)
	b.strs = grow(b.strs, 2*nLabels)
	b.floats = grow(b.floats, n+nBuckets)
	b.uints = grow(b.uints, n+nBuckets)
	b.buckets, b.bucketPtrs = grow(b.buckets, nBuckets), grow(b.bucketPtrs, nBuckets)
	switch f.Type {
	case exporters.TypeCounter:
		b.counters = grow(b.counters, n)
	case exporters.TypeHistogram:
		b.histograms = grow(b.histograms, n)
	case exporters.TypeGauge:
		b.gauges = grow(b.gauges, n)
	}

	mf := &dto.MetricFamily{Name: new(f.PromName), Help: new(f.Description), Type: metricType(f.Type)}
	if unit := openMetricsUnit(f); unit != "" {
		mf.Unit = new(unit)
	}
	for i := range f.Series {
		sr := &f.Series[i]
		b.metrics = append(b.metrics, dto.Metric{Label: b.labelPairs(sr.Labels)})
		m := &b.metrics[len(b.metrics)-1]
		switch f.Type {
		case exporters.TypeCounter:
			b.counters = append(b.counters, dto.Counter{Value: b.float(sr.Value), Exemplar: exemplar(sr.Exemplar)})
			m.Counter = &b.counters[len(b.counters)-1]
		case exporters.TypeHistogram:
			m.Histogram = b.histogram(sr.Histogram)
		case exporters.TypeGauge:
			b.gauges = append(b.gauges, dto.Gauge{Value: b.float(sr.Value)})
			m.Gauge = &b.gauges[len(b.gauges)-1]
		default:
			m.Untyped = &dto.Untyped{Value: b.float(sr.Value)}
		}
		b.metricPtrs = append(b.metricPtrs, m)
	}
	if !slices.IsSortedFunc(b.metricPtrs, compareMetrics) {
		slices.SortStableFunc(b.metricPtrs, compareMetrics)
	}
	mf.Metric = b.metricPtrs
	return mf
}

// compareMetrics orders a family's series as client_golang does on
// /metrics: fewer labels first, then by label values in turn, whatever
// their names. It is the snapshot's order whenever a family's series have
// the same label names, as they almost always do.
func compareMetrics(a, b *dto.Metric) int {
	if c := cmp.Compare(len(a.Label), len(b.Label)); c != 0 {
		return c
	}
	for i, l := range a.Label {
		if c := cmp.Compare(l.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return 0
}

func (b *familyBuilder) histogram(h *exporters.Histogram) *dto.Histogram {
	if h == nil {
		h = &exporters.Histogram{}
	}
	from := len(b.bucketPtrs)
	for i := range h.Buckets {
		bk := &h.Buckets[i]
		b.buckets = append(b.buckets, dto.Bucket{
			CumulativeCount: b.uint(bk.Count), UpperBound: b.float(bk.UpperBound), Exemplar: exemplar(bk.Exemplar),
		})
		b.bucketPtrs = append(b.bucketPtrs, &b.buckets[len(b.buckets)-1])
	}
	b.histograms = append(b.histograms, dto.Histogram{
		SampleCount: b.uint(h.Count), SampleSum: b.float(h.Sum),
		Bucket: b.bucketPtrs[from:len(b.bucketPtrs):len(b.bucketPtrs)],
	})
	return &b.histograms[len(b.histograms)-1]
}

func metricType(t exporters.MetricType) *dto.MetricType {
	switch t {
	case exporters.TypeCounter:
		return dto.MetricType_COUNTER.Enum()
	case exporters.TypeHistogram:
		return dto.MetricType_HISTOGRAM.Enum()
	case exporters.TypeGauge:
		return dto.MetricType_GAUGE.Enum()
	default:
		// Not a type a snapshot has; what Prometheus calls a sample of
		// unknown type.
		return dto.MetricType_UNTYPED.Enum()
	}
}

// openMetricsUnit returns the family's unit in Prometheus words when
// OpenMetrics allows a UNIT line for it: when the name (a counter's without
// _total) ends with _<unit>. The text format 0.0.4 ignores it.
func openMetricsUnit(f *exporters.Family) string {
	if f.Unit == "" {
		return ""
	}
	unit := (&otlptranslator.UnitNamer{}).Build(f.Unit)
	if unit == "" {
		return ""
	}
	name := f.PromName
	if f.Type == exporters.TypeCounter {
		name = strings.TrimSuffix(name, "_total")
	}
	if !strings.HasSuffix(name, "_"+unit) {
		return ""
	}
	return unit
}

// Exemplar label names for the trace and span, as OpenTelemetry names them.
const (
	traceIDLabel = otlptranslator.ExemplarTraceIDKey
	spanIDLabel  = otlptranslator.ExemplarSpanIDKey
)

// exemplar converts e, its labels sorted by name, and applies
// OpenMetrics' limit of 128 runes: over it, only trace_id and span_id stay.
func exemplar(e *exporters.Exemplar) *dto.Exemplar {
	if e == nil {
		return nil
	}
	ids := make([]*dto.LabelPair, 0, 2)
	if e.SpanID != "" {
		ids = append(ids, &dto.LabelPair{Name: new(spanIDLabel), Value: new(e.SpanID)})
	}
	if e.TraceID != "" {
		ids = append(ids, &dto.LabelPair{Name: new(traceIDLabel), Value: new(e.TraceID)})
	}
	labels := ids
	if len(e.Labels) > 0 {
		labels = make([]*dto.LabelPair, 0, len(ids)+len(e.Labels))
		labels = append(labels, ids...)
		for _, l := range e.Labels {
			if l.Name == traceIDLabel || l.Name == spanIDLabel {
				continue // the IDs' fields win
			}
			labels = append(labels, &dto.LabelPair{Name: new(l.Name), Value: new(l.Value)})
		}
		slices.SortFunc(labels, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
		if runes(labels) > promclient.ExemplarMaxRunes {
			labels = ids
		}
	}
	if runes(labels) > promclient.ExemplarMaxRunes {
		return nil
	}
	out := &dto.Exemplar{Label: labels, Value: new(e.Value)}
	if !e.Time.IsZero() {
		out.Timestamp = timestamppb.New(e.Time)
	}
	return out
}

func runes(labels []*dto.LabelPair) int {
	n := 0
	for _, l := range labels {
		n += utf8.RuneCountInString(l.GetName()) + utf8.RuneCountInString(l.GetValue())
	}
	return n
}

package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/sextant-telemetry/sextant/exporters"
)

const cumulative = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE

// Snapshot converts md back into a snapshot taken at t (Snapshot.Time, which
// md does not carry). A nil md, or one without ResourceMetrics, is an empty
// snapshot. Input that breaks the mapping, or that a snapshot cannot hold
// exactly, is an error naming where, e.g.
//
//	metrics[3] "tasker_x_total": histogram data point 2: 5 bucket counts for 5 bounds, want 6
//
// The package documentation lists what is rejected. The result shares no
// memory with md but strings.
func Snapshot(md *metricspb.MetricsData, t time.Time) (*exporters.Snapshot, error) {
	s := &exporters.Snapshot{Time: t}
	rms := md.GetResourceMetrics()
	switch len(rms) {
	case 0:
		s.Families = []exporters.Family{}
		return s, nil
	case 1:
	default:
		return nil, fmt.Errorf("resource_metrics: %d, want at most 1", len(rms))
	}
	rm := rms[0]
	if rm == nil {
		return nil, errors.New("resource_metrics[0]: nil")
	}
	var err error
	if s.Resource, err = resource(rm.Resource); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	var metrics []*metricspb.Metric
	switch sms := rm.ScopeMetrics; len(sms) {
	case 0:
	case 1:
		if sms[0] == nil {
			return nil, errors.New("scope_metrics[0]: nil")
		}
		metrics = sms[0].Metrics
	default:
		return nil, fmt.Errorf("scope_metrics: %d, want at most 1", len(sms))
	}
	d := newDecoder(metrics)
	s.Families = make([]exporters.Family, len(metrics))
	for i, m := range metrics {
		if err := d.family(&s.Families[i], m); err != nil {
			return nil, fmt.Errorf("metrics[%d]%s: %w", i, quotedName(m), err)
		}
	}
	d.setIDs()
	return s, nil
}

// quotedName names m in an error: its prometheus.name, else its name, in
// quotes after a space; nothing when it has neither.
func quotedName(m *metricspb.Metric) string {
	name := m.GetName()
	for _, kv := range m.GetMetadata() {
		if kv.GetKey() == MetadataPromName && kv.GetValue().GetStringValue() != "" {
			name = kv.GetValue().GetStringValue()
			break
		}
	}
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

// resource reads the resource's attributes.
func resource(r *resourcepb.Resource) (exporters.Resource, error) {
	var out exporters.Resource
	kvs := r.GetAttributes()
	if len(kvs) == 0 {
		return out, nil
	}
	pool := make([]exporters.Label, len(kvs))
	labels, err := attributes("attributes", kvs, &pool)
	if err != nil {
		return out, err
	}
	others := labels[:0]
	for _, l := range labels {
		switch l.Name {
		case attrServiceName:
			out.ServiceName = l.Value
		case attrServiceInstanceID:
			out.Instance = l.Value
		default:
			others = append(others, l)
		}
	}
	if len(others) > 0 {
		out.Attributes = others
	}
	return out, nil
}

// decoder hands out the values of one snapshot from arrays allocated once,
// sized by a first pass over the metrics: a few allocations per snapshot
// instead of several per series.
type decoder struct {
	series   []exporters.Series
	labels   []exporters.Label
	hists    []exporters.Histogram
	buckets  []exporters.Bucket
	exs      []exporters.Exemplar
	exLabels []exporters.Label

	// IDs are hex-encoded into one buffer that becomes one string once
	// every exemplar is read: idEnds holds, per exemplar taken from
	// allExs, where its trace ID and its span ID end.
	allExs []exporters.Exemplar
	hex    []byte
	idEnds []int
}

func newDecoder(metrics []*metricspb.Metric) *decoder {
	var series, labels, hists, buckets, exs, exLabels, ids int
	exemplars := func(es []*metricspb.Exemplar) {
		exs += len(es)
		for _, x := range es {
			exLabels += len(x.GetFilteredAttributes())
			ids += len(x.GetTraceId()) + len(x.GetSpanId())
		}
	}
	for _, m := range metrics {
		switch {
		case m.GetSum() != nil || m.GetGauge() != nil:
			points := m.GetSum().GetDataPoints()
			if points == nil {
				points = m.GetGauge().GetDataPoints()
			}
			series += len(points)
			for _, p := range points {
				labels += len(p.GetAttributes())
				exemplars(p.GetExemplars())
			}
		case m.GetHistogram() != nil:
			points := m.GetHistogram().GetDataPoints()
			series += len(points)
			hists += len(points)
			for _, p := range points {
				labels += len(p.GetAttributes())
				buckets += len(p.GetBucketCounts())
				exemplars(p.GetExemplars())
			}
		}
	}
	d := &decoder{
		series:   make([]exporters.Series, series),
		labels:   make([]exporters.Label, labels), // never nil: see attributes
		hists:    make([]exporters.Histogram, hists),
		buckets:  make([]exporters.Bucket, buckets),
		exs:      make([]exporters.Exemplar, exs),
		exLabels: make([]exporters.Label, exLabels),
	}
	if exs > 0 {
		d.allExs = d.exs
		d.hex = make([]byte, 0, 2*ids)
		d.idEnds = make([]int, 0, 2*exs)
	}
	return d
}

// setIDs gives every exemplar read its trace and span ID.
func (d *decoder) setIDs() {
	if len(d.idEnds) == 0 {
		return
	}
	ids := string(d.hex)
	start := 0
	for i := range len(d.idEnds) / 2 {
		x := &d.allExs[i]
		traceEnd, spanEnd := d.idEnds[2*i], d.idEnds[2*i+1]
		x.TraceID, x.SpanID = ids[start:traceEnd], ids[traceEnd:spanEnd]
		start = spanEnd
	}
}

// family fills f with m.
func (d *decoder) family(f *exporters.Family, m *metricspb.Metric) error {
	if m == nil {
		return errors.New("nil")
	}
	if m.Name == "" {
		return errors.New("no name")
	}
	promName, typ, err := metadata(m.Metadata)
	if err != nil {
		return err
	}
	f.Name, f.PromName, f.Type, f.Unit, f.Description = m.Name, promName, typ, m.Unit, m.Description
	switch typ {
	case exporters.TypeCounter:
		sum := m.GetSum()
		switch {
		case sum == nil:
			return fmt.Errorf("%s %s needs a Sum, got %s", MetadataPromType, typ, dataKind(m))
		case !sum.IsMonotonic:
			return fmt.Errorf("%s %s needs a monotonic Sum, got a non-monotonic one", MetadataPromType, typ)
		case sum.AggregationTemporality != cumulative:
			return fmt.Errorf("%s %s needs %s, got %s", MetadataPromType, typ, cumulative, sum.AggregationTemporality)
		}
		return d.numberSeries(f, sum.DataPoints)
	case exporters.TypeGauge:
		gauge := m.GetGauge()
		if gauge == nil {
			return fmt.Errorf("%s %s needs a Gauge, got %s", MetadataPromType, typ, dataKind(m))
		}
		return d.numberSeries(f, gauge.DataPoints)
	default: // histogram: metadata allows no other type
		h := m.GetHistogram()
		switch {
		case h == nil:
			return fmt.Errorf("%s %s needs a Histogram, got %s", MetadataPromType, typ, dataKind(m))
		case h.AggregationTemporality != cumulative:
			return fmt.Errorf("%s %s needs %s, got %s", MetadataPromType, typ, cumulative, h.AggregationTemporality)
		}
		f.Series = take(&d.series, len(h.DataPoints))
		for j, p := range h.DataPoints {
			if err := d.histogramPoint(&f.Series[j], p); err != nil {
				return fmt.Errorf("histogram data point %d: %w", j, err)
			}
		}
		return nil
	}
}

// metadata reads a metric's prometheus.name and prometheus.type.
func metadata(kvs []*commonpb.KeyValue) (promName string, typ exporters.MetricType, err error) {
	var haveName, haveType bool
	for i, kv := range kvs {
		if kv == nil {
			return "", "", fmt.Errorf("metadata[%d]: nil", i)
		}
		var seen *bool
		switch kv.Key {
		case MetadataPromName:
			seen = &haveName
		case MetadataPromType:
			seen = &haveType
		default:
			continue // carries no data: see the package documentation
		}
		if *seen {
			return "", "", fmt.Errorf("metadata[%d] %q: a second one", i, kv.Key)
		}
		*seen = true
		v, ok := stringValue(kv.Value)
		if !ok {
			return "", "", fmt.Errorf("metadata[%d] %q: %s, want a string", i, kv.Key, valueKind(kv.Value))
		}
		if kv.Key == MetadataPromName {
			promName = v
		} else {
			typ = exporters.MetricType(v)
		}
	}
	switch {
	case !haveName:
		return "", "", fmt.Errorf("no %s metadata", MetadataPromName)
	case promName == "":
		return "", "", fmt.Errorf("%s is empty", MetadataPromName)
	case !haveType:
		return "", "", fmt.Errorf("no %s metadata", MetadataPromType)
	}
	switch typ {
	case exporters.TypeCounter, exporters.TypeGauge, exporters.TypeHistogram:
		return promName, typ, nil
	}
	return "", "", fmt.Errorf("%s %q, want %s, %s or %s", MetadataPromType, typ,
		exporters.TypeCounter, exporters.TypeGauge, exporters.TypeHistogram)
}

// dataKind names m's data in an error.
func dataKind(m *metricspb.Metric) string {
	switch m.Data.(type) {
	case *metricspb.Metric_Gauge:
		return "a Gauge"
	case *metricspb.Metric_Sum:
		return "a Sum"
	case *metricspb.Metric_Histogram:
		return "a Histogram"
	case *metricspb.Metric_ExponentialHistogram:
		return "an ExponentialHistogram"
	case *metricspb.Metric_Summary:
		return "a Summary"
	default:
		return "no data"
	}
}

func (d *decoder) numberSeries(f *exporters.Family, points []*metricspb.NumberDataPoint) error {
	f.Series = take(&d.series, len(points))
	for j, p := range points {
		if err := d.numberPoint(&f.Series[j], p); err != nil {
			return fmt.Errorf("data point %d: %w", j, err)
		}
	}
	return nil
}

func (d *decoder) numberPoint(sr *exporters.Series, p *metricspb.NumberDataPoint) error {
	if p == nil {
		return errors.New("nil")
	}
	v, ok := p.Value.(*metricspb.NumberDataPoint_AsDouble)
	switch {
	case p.Value == nil || ok && v == nil:
		return errors.New("no value")
	case !ok:
		return errors.New("value is as_int, want as_double")
	case p.Flags != 0:
		return fmt.Errorf("flags %#x, want none", p.Flags)
	case len(p.Exemplars) > 1:
		return fmt.Errorf("%d exemplars, want at most 1", len(p.Exemplars))
	}
	labels, err := attributes("attributes", p.Attributes, &d.labels)
	if err != nil {
		return err
	}
	sr.Labels, sr.Value = labels, v.AsDouble
	sr.Start, sr.Time = unixTime(p.StartTimeUnixNano), unixTime(p.TimeUnixNano)
	if len(p.Exemplars) == 1 {
		if sr.Exemplar, err = d.exemplar(p.Exemplars[0]); err != nil {
			return fmt.Errorf("exemplars[0]: %w", err)
		}
	}
	return nil
}

func (d *decoder) histogramPoint(sr *exporters.Series, p *metricspb.HistogramDataPoint) error {
	if p == nil {
		return errors.New("nil")
	}
	bounds, counts := p.ExplicitBounds, p.BucketCounts
	switch {
	case p.Flags != 0:
		return fmt.Errorf("flags %#x, want none", p.Flags)
	case p.Sum == nil:
		return errors.New("no sum")
	case p.Min != nil || p.Max != nil:
		return errors.New("min or max, which a snapshot does not hold")
	case len(counts) != len(bounds)+1:
		return fmt.Errorf("%d bucket counts for %d bounds, want %d", len(counts), len(bounds), len(bounds)+1)
	}
	labels, err := attributes("attributes", p.Attributes, &d.labels)
	if err != nil {
		return err
	}
	buckets := take(&d.buckets, len(counts))
	var sum uint64
	for i, c := range counts {
		upper := math.Inf(1)
		if i < len(bounds) {
			upper = bounds[i]
			switch {
			case math.IsNaN(upper) || math.IsInf(upper, 1):
				return fmt.Errorf("explicit_bounds[%d] is %v", i, upper)
			case i > 0 && upper <= bounds[i-1]:
				return fmt.Errorf("explicit_bounds[%d] is %v after %v, want increasing bounds", i, upper, bounds[i-1])
			}
		}
		if c > math.MaxUint64-sum {
			return fmt.Errorf("bucket_counts[%d]: the counts overflow a uint64", i)
		}
		sum += c
		buckets[i] = exporters.Bucket{UpperBound: upper, Count: sum}
	}
	if sum != p.Count {
		return fmt.Errorf("bucket counts add up to %d, count is %d", sum, p.Count)
	}
	for k, x := range p.Exemplars {
		ex, err := d.exemplar(x)
		if err != nil {
			return fmt.Errorf("exemplars[%d]: %w", k, err)
		}
		b := &buckets[bucketOf(buckets, ex.Value)]
		if b.Exemplar != nil {
			return fmt.Errorf("exemplars[%d]: value %v is in the bucket le=%v, which has an exemplar already", k, ex.Value, b.UpperBound)
		}
		b.Exemplar = ex
	}
	h := &d.hists[0]
	d.hists = d.hists[1:]
	h.Count, h.Sum, h.Buckets = p.Count, *p.Sum, buckets
	sr.Labels, sr.Histogram = labels, h
	sr.Start, sr.Time = unixTime(p.StartTimeUnixNano), unixTime(p.TimeUnixNano)
	return nil
}

// bucketOf returns the index of the bucket that holds v: the first whose
// upper bound is at least v, the last (+Inf) for NaN.
func bucketOf(buckets []exporters.Bucket, v float64) int {
	lo, hi := 0, len(buckets)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if buckets[mid].UpperBound >= v {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func (d *decoder) exemplar(x *metricspb.Exemplar) (*exporters.Exemplar, error) {
	if x == nil {
		return nil, errors.New("nil")
	}
	v, ok := x.Value.(*metricspb.Exemplar_AsDouble)
	switch {
	case x.Value == nil || ok && v == nil:
		return nil, errors.New("no value")
	case !ok:
		return nil, errors.New("value is as_int, want as_double")
	case len(x.TraceId) != 0 && len(x.TraceId) != traceIDLen:
		return nil, fmt.Errorf("trace_id is %d bytes, want %d or none", len(x.TraceId), traceIDLen)
	case len(x.SpanId) != 0 && len(x.SpanId) != spanIDLen:
		return nil, fmt.Errorf("span_id is %d bytes, want %d or none", len(x.SpanId), spanIDLen)
	}
	ex := &d.exs[0]
	d.exs = d.exs[1:]
	ex.Value, ex.Time = v.AsDouble, unixTime(x.TimeUnixNano)
	if len(x.FilteredAttributes) > 0 {
		labels, err := attributes("filtered_attributes", x.FilteredAttributes, &d.exLabels)
		if err != nil {
			return nil, err
		}
		ex.Labels = labels
	}
	d.hex = hex.AppendEncode(d.hex, x.TraceId)
	d.idEnds = append(d.idEnds, len(d.hex))
	d.hex = hex.AppendEncode(d.hex, x.SpanId)
	d.idEnds = append(d.idEnds, len(d.hex))
	return ex, nil
}

// attributes reads string-valued attributes into labels taken from *pool;
// field names the list in errors. The result is empty but not nil when kvs
// is (pool is never nil), as exporters.FromResourceMetrics gives a series
// without labels.
func attributes(field string, kvs []*commonpb.KeyValue, pool *[]exporters.Label) ([]exporters.Label, error) {
	out := (*pool)[:len(kvs):len(kvs)]
	for i, kv := range kvs {
		if kv == nil {
			return nil, fmt.Errorf("%s[%d]: nil", field, i)
		}
		v, ok := stringValue(kv.Value)
		if !ok {
			return nil, fmt.Errorf("%s[%d] %q: %s, want a string", field, i, kv.Key, valueKind(kv.Value))
		}
		out[i] = exporters.Label{Name: kv.Key, Value: v}
	}
	if i, j := repeated(out); i >= 0 {
		return nil, fmt.Errorf("%s[%d] %q: repeats %s[%d]", field, j, out[j].Name, field, i)
	}
	*pool = (*pool)[len(kvs):]
	return out, nil
}

// repeated returns the indexes of the first label whose name another
// before it has, and of that other; -1, -1 when names are unique.
func repeated(labels []exporters.Label) (first, again int) {
	if len(labels) <= 16 { // the usual case: no map
		for j := 1; j < len(labels); j++ {
			for i := range j {
				if labels[i].Name == labels[j].Name {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, len(labels))
	for j, l := range labels {
		if i, ok := seen[l.Name]; ok {
			return i, j
		}
		seen[l.Name] = j
	}
	return -1, -1
}

// stringValue returns v's string; ok is false when v is not a string.
func stringValue(v *commonpb.AnyValue) (s string, ok bool) {
	sv, ok := v.GetValue().(*commonpb.AnyValue_StringValue)
	if !ok || sv == nil {
		return "", false
	}
	return sv.StringValue, true
}

// valueKind names what an attribute value that is not a string holds.
func valueKind(v *commonpb.AnyValue) string {
	switch v.GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		return "a bool"
	case *commonpb.AnyValue_IntValue:
		return "an int"
	case *commonpb.AnyValue_DoubleValue:
		return "a double"
	case *commonpb.AnyValue_ArrayValue:
		return "an array"
	case *commonpb.AnyValue_KvlistValue:
		return "a key-value list"
	case *commonpb.AnyValue_BytesValue:
		return "bytes"
	case *commonpb.AnyValue_StringValueStrindex:
		return "a string table index"
	default:
		return "no value"
	}
}

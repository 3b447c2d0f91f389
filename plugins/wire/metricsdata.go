package wire

import (
	"encoding/hex"
	"math"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/sextant-telemetry/sextant/exporters"
)

// ScopeName is the instrumentation scope of the metrics MetricsData writes.
const ScopeName = "github.com/sextant-telemetry/sextant"

// Metric metadata keys: the family's Prometheus name and type.
const (
	MetadataPromName = "prometheus.name"
	MetadataPromType = "prometheus.type"
)

// Resource attributes the snapshot keeps in fields of their own.
const (
	attrServiceName       = "service.name"
	attrServiceInstanceID = "service.instance.id"
)

// Lengths of trace and span IDs in bytes.
const (
	traceIDLen = 16
	spanIDLen  = 8
)

// MetricsData converts s to OTLP as the package documentation describes. A
// nil s gives an empty MetricsData (no ResourceMetrics). The result shares
// no memory with s but strings.
func MetricsData(s *exporters.Snapshot) *metricspb.MetricsData {
	if s == nil {
		return &metricspb.MetricsData{}
	}
	e := newEncoder(s)
	res := &resourcepb.Resource{Attributes: e.resourceAttributes(&s.Resource)}
	metrics := make([]*metricspb.Metric, len(s.Families))
	ms := make([]metricspb.Metric, len(s.Families))
	for i := range s.Families {
		metrics[i] = &ms[i]
		e.family(&ms[i], &s.Families[i])
	}
	return &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: res,
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope:   &commonpb.InstrumentationScope{Name: ScopeName},
			Metrics: metrics,
		}},
	}}}
}

// encoder hands out the messages of one MetricsData from arrays allocated
// once, sized by a first pass over the snapshot: a few allocations per
// snapshot instead of several per label and data point.
type encoder struct {
	sumData    []metricspb.Metric_Sum
	sums       []metricspb.Sum
	gaugeData  []metricspb.Metric_Gauge
	gauges     []metricspb.Gauge
	histData   []metricspb.Metric_Histogram
	histograms []metricspb.Histogram

	kvPtrs    []*commonpb.KeyValue
	kvs       []commonpb.KeyValue
	anys      []commonpb.AnyValue
	strs      []commonpb.AnyValue_StringValue
	numPtrs   []*metricspb.NumberDataPoint
	nums      []metricspb.NumberDataPoint
	doubles   []metricspb.NumberDataPoint_AsDouble
	histPtrs  []*metricspb.HistogramDataPoint
	hists     []metricspb.HistogramDataPoint
	histSums  []float64
	bounds    []float64
	counts    []uint64
	exPtrs    []*metricspb.Exemplar
	exs       []metricspb.Exemplar
	exDoubles []metricspb.Exemplar_AsDouble
	ids       []byte
}

func newEncoder(s *exporters.Snapshot) *encoder {
	var attrs, nums, hists, buckets, exs, ids int
	attrs = 2 + len(s.Resource.Attributes)
	exemplar := func(x *exporters.Exemplar) {
		if x != nil {
			exs++
			attrs += len(x.Labels)
			ids += len(x.TraceID)/2 + len(x.SpanID)/2
		}
	}
	var counters, gauges, histograms int
	for i := range s.Families {
		f := &s.Families[i]
		attrs += 2 // metadata
		switch f.Type {
		case exporters.TypeCounter:
			counters++
		case exporters.TypeHistogram:
			histograms++
		default:
			gauges++
		}
		for j := range f.Series {
			sr := &f.Series[j]
			attrs += len(sr.Labels)
			if f.Type != exporters.TypeHistogram {
				nums++
				exemplar(sr.Exemplar)
				continue
			}
			hists++
			if sr.Histogram != nil {
				buckets += len(sr.Histogram.Buckets)
				for k := range sr.Histogram.Buckets {
					exemplar(sr.Histogram.Buckets[k].Exemplar)
				}
			}
		}
	}
	return &encoder{
		sumData:    make([]metricspb.Metric_Sum, counters),
		sums:       make([]metricspb.Sum, counters),
		gaugeData:  make([]metricspb.Metric_Gauge, gauges),
		gauges:     make([]metricspb.Gauge, gauges),
		histData:   make([]metricspb.Metric_Histogram, histograms),
		histograms: make([]metricspb.Histogram, histograms),
		kvPtrs:     make([]*commonpb.KeyValue, attrs),
		kvs:        make([]commonpb.KeyValue, attrs),
		anys:       make([]commonpb.AnyValue, attrs),
		strs:       make([]commonpb.AnyValue_StringValue, attrs),
		numPtrs:    make([]*metricspb.NumberDataPoint, nums),
		nums:       make([]metricspb.NumberDataPoint, nums),
		doubles:    make([]metricspb.NumberDataPoint_AsDouble, nums),
		histPtrs:   make([]*metricspb.HistogramDataPoint, hists),
		hists:      make([]metricspb.HistogramDataPoint, hists),
		histSums:   make([]float64, hists),
		bounds:     make([]float64, buckets),
		counts:     make([]uint64, buckets),
		exPtrs:     make([]*metricspb.Exemplar, exs),
		exs:        make([]metricspb.Exemplar, exs),
		exDoubles:  make([]metricspb.Exemplar_AsDouble, exs),
		ids:        make([]byte, ids),
	}
}

// take returns the next n elements of *pool, capped so that appending to
// them cannot overwrite the rest; nil when n is 0.
func take[T any](pool *[]T, n int) []T {
	if n == 0 {
		return nil
	}
	s := (*pool)[:n:n]
	*pool = (*pool)[n:]
	return s
}

// attribute returns one string-valued attribute.
func (e *encoder) attribute(key, value string) *commonpb.KeyValue {
	kv, v, sv := &e.kvs[0], &e.anys[0], &e.strs[0]
	e.kvs, e.anys, e.strs = e.kvs[1:], e.anys[1:], e.strs[1:]
	sv.StringValue = value
	v.Value = sv
	kv.Key = key
	kv.Value = v
	return kv
}

// attributes converts labels into string-valued attributes, in order.
func (e *encoder) attributes(labels []exporters.Label) []*commonpb.KeyValue {
	out := take(&e.kvPtrs, len(labels))
	for i, l := range labels {
		out[i] = e.attribute(l.Name, l.Value)
	}
	return out
}

func (e *encoder) resourceAttributes(r *exporters.Resource) []*commonpb.KeyValue {
	n := 1 + len(r.Attributes)
	if r.Instance != "" {
		n++
	}
	out := take(&e.kvPtrs, n)[:0]
	out = append(out, e.attribute(attrServiceName, r.ServiceName))
	if r.Instance != "" {
		out = append(out, e.attribute(attrServiceInstanceID, r.Instance))
	}
	for _, l := range r.Attributes {
		out = append(out, e.attribute(l.Name, l.Value))
	}
	return out
}

// family fills m with f.
func (e *encoder) family(m *metricspb.Metric, f *exporters.Family) {
	m.Name = f.Name
	if m.Name == "" {
		m.Name = f.PromName
	}
	m.Unit = f.Unit
	m.Description = f.Description
	m.Metadata = take(&e.kvPtrs, 2)
	m.Metadata[0] = e.attribute(MetadataPromName, f.PromName)
	m.Metadata[1] = e.attribute(MetadataPromType, string(f.Type))
	switch f.Type {
	case exporters.TypeHistogram:
		d, h := &e.histData[0], &e.histograms[0]
		e.histData, e.histograms = e.histData[1:], e.histograms[1:]
		h.DataPoints = e.histogramPoints(f.Series)
		h.AggregationTemporality = cumulative
		d.Histogram = h
		m.Data = d
	case exporters.TypeCounter:
		d, sum := &e.sumData[0], &e.sums[0]
		e.sumData, e.sums = e.sumData[1:], e.sums[1:]
		sum.DataPoints = e.numberPoints(f.Series)
		sum.AggregationTemporality = cumulative
		sum.IsMonotonic = true
		d.Sum = sum
		m.Data = d
	default:
		// A gauge, or a type the model does not know: the metadata says
		// which, and Snapshot rejects the latter.
		d, g := &e.gaugeData[0], &e.gauges[0]
		e.gaugeData, e.gauges = e.gaugeData[1:], e.gauges[1:]
		g.DataPoints = e.numberPoints(f.Series)
		d.Gauge = g
		m.Data = d
	}
}

func (e *encoder) numberPoints(series []exporters.Series) []*metricspb.NumberDataPoint {
	out := take(&e.numPtrs, len(series))
	for i := range series {
		sr := &series[i]
		p, v := &e.nums[i], &e.doubles[i]
		v.AsDouble = sr.Value
		p.Attributes = e.attributes(sr.Labels)
		p.StartTimeUnixNano = unixNano(sr.Start)
		p.TimeUnixNano = unixNano(sr.Time)
		p.Value = v
		if sr.Exemplar != nil {
			p.Exemplars = take(&e.exPtrs, 1)
			p.Exemplars[0] = e.exemplar(sr.Exemplar)
		}
		out[i] = p
	}
	e.nums, e.doubles = e.nums[len(series):], e.doubles[len(series):]
	return out
}

func (e *encoder) histogramPoints(series []exporters.Series) []*metricspb.HistogramDataPoint {
	out := take(&e.histPtrs, len(series))
	for i := range series {
		sr := &series[i]
		p := &e.hists[i]
		p.Attributes = e.attributes(sr.Labels)
		p.StartTimeUnixNano = unixNano(sr.Start)
		p.TimeUnixNano = unixNano(sr.Time)
		p.Sum = &e.histSums[i]
		out[i] = p
		h := sr.Histogram
		if h == nil {
			continue // no buckets: Snapshot rejects it, as the model has none such
		}
		e.histSums[i] = h.Sum
		p.Count = h.Count
		p.BucketCounts = take(&e.counts, len(h.Buckets))
		p.ExplicitBounds = take(&e.bounds, len(h.Buckets))[:0]
		var prev uint64
		exemplars := 0
		for k := range h.Buckets {
			b := &h.Buckets[k]
			// Only the +Inf bound is implicit; a snapshot whose last
			// bucket is not +Inf writes as many bounds as counts, which
			// Snapshot rejects.
			if !math.IsInf(b.UpperBound, 1) {
				p.ExplicitBounds = append(p.ExplicitBounds, b.UpperBound)
			}
			p.BucketCounts[k] = b.Count - prev // wraps only for a malformed snapshot; Snapshot then rejects the sum
			prev = b.Count
			if b.Exemplar != nil {
				exemplars++
			}
		}
		if exemplars > 0 {
			p.Exemplars = take(&e.exPtrs, exemplars)[:0]
			for k := range h.Buckets {
				if x := h.Buckets[k].Exemplar; x != nil {
					p.Exemplars = append(p.Exemplars, e.exemplar(x))
				}
			}
		}
	}
	e.hists, e.histSums = e.hists[len(series):], e.histSums[len(series):]
	return out
}

func (e *encoder) exemplar(x *exporters.Exemplar) *metricspb.Exemplar {
	m, v := &e.exs[0], &e.exDoubles[0]
	e.exs, e.exDoubles = e.exs[1:], e.exDoubles[1:]
	v.AsDouble = x.Value
	m.Value = v
	m.TimeUnixNano = unixNano(x.Time)
	m.TraceId = e.id(x.TraceID, traceIDLen)
	m.SpanId = e.id(x.SpanID, spanIDLen)
	m.FilteredAttributes = e.attributes(x.Labels)
	return m
}

// id decodes a hex trace or span ID of want bytes; nil for an empty one. An
// ID that is not hex has no encoding: it is written as its raw bytes, one
// longer when that would be an ID's length, so that Snapshot rejects it
// rather than read another ID.
func (e *encoder) id(s string, want int) []byte {
	if s == "" {
		return nil
	}
	n := len(s) / 2
	if len(s)%2 == 0 && n <= len(e.ids) {
		b := take(&e.ids, n)
		if _, err := hex.Decode(b, []byte(s)); err == nil {
			return b
		}
	}
	raw := []byte(s)
	if len(raw) == want {
		raw = append(raw, 0)
	}
	return raw
}

// The latest time a fixed64 of Unix nanoseconds holds, in seconds and
// nanoseconds: 2554-07-21T23:34:33.709551615Z.
const (
	maxUnixSec  = math.MaxUint64 / 1_000_000_000
	maxUnixNsec = math.MaxUint64 % 1_000_000_000
)

// unixNano returns t in Unix nanoseconds; 0 for the zero time and for a
// time a uint64 cannot hold (see the package documentation).
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	sec, nsec := t.Unix(), t.Nanosecond()
	if sec < 0 || sec > maxUnixSec || sec == maxUnixSec && nsec > maxUnixNsec {
		return 0
	}
	return uint64(sec)*1e9 + uint64(nsec)
}

// unixTime is unixNano's inverse: the zero time for 0.
func unixTime(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(int64(n/1e9), int64(n%1e9))
}

package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sextant-telemetry/sextant/exporters"
)

// MarshalExportRequest returns the protobuf encoding of ExportRequest(s,
// req), written straight from s without building the OTLP messages: the
// bytes proto.Unmarshal reads back as a message equal (proto.Equal) to
// ExportRequest(s, req): the very bytes a deterministic proto.Marshal
// writes (fields in number order but oneof members last, options sorted
// by key). A first pass
// sizes every nested message, so that the output is one allocation of
// exactly its length. The result shares no memory with s.
func MarshalExportRequest(s *exporters.Snapshot, req exporters.ExportRequest) []byte {
	z := sizer{sizes: make([]int, sizeSlots(s))}
	n := z.exportRequest(s, req)
	w := writer{b: make([]byte, n), sizes: z.sizes[:z.next]}
	w.exportRequest(s, req)
	if w.n != n || w.next != z.next {
		// The two passes disagree: a bug here, not bad input.
		panic(fmt.Sprintf("wire: MarshalExportRequest sized %d bytes in %d messages but wrote %d in %d", n, z.next, w.n, w.next))
	}
	return w.b
}

// Field numbers of the messages MarshalExportRequest writes and
// UnmarshalExportRequest reads (sextant.plugin.v1 and OTLP metrics v1).
const (
	fExportID      = 1 // ExportRequest
	fFormat        = 2
	fTarget        = 3
	fOptions       = 4
	fMetrics       = 5
	fTimeUnixNano  = 6
	fMapKey        = 1 // map entry
	fMapValue      = 2
	fResourceMs    = 1 // MetricsData
	fResource      = 1 // ResourceMetrics
	fScopeMetrics  = 2
	fRMSchemaURL   = 3
	fResourceAttrs = 1 // Resource
	fEntityRefs    = 3
	fScope         = 1 // ScopeMetrics
	fMetric        = 2
	fSMSchemaURL   = 3
	fScopeName     = 1 // InstrumentationScope
	fScopeVersion  = 2
	fScopeAttrs    = 3
	fName          = 1 // Metric
	fDescription   = 2
	fUnit          = 3
	fGauge         = 5
	fSum           = 7
	fHistogram     = 9
	fExpHistogram  = 10
	fSummary       = 11
	fMetadata      = 12
	fDataPoints    = 1 // Gauge, Sum, Histogram
	fTemporality   = 2 // Sum, Histogram
	fMonotonic     = 3 // Sum
	fStart         = 2 // NumberDataPoint, HistogramDataPoint
	fTime          = 3 // NumberDataPoint, HistogramDataPoint, Exemplar's is 2
	fNumAsDouble   = 4 // NumberDataPoint
	fNumExemplars  = 5
	fNumAsInt      = 6
	fNumAttrs      = 7
	fNumFlags      = 8
	fHistCount     = 4 // HistogramDataPoint
	fHistSum       = 5
	fHistCounts    = 6
	fHistBounds    = 7
	fHistExemplars = 8
	fHistAttrs     = 9
	fHistFlags     = 10
	fHistMin       = 11
	fHistMax       = 12
	fExTime        = 2 // Exemplar
	fExAsDouble    = 3
	fExSpanID      = 4
	fExTraceID     = 5
	fExAsInt       = 6
	fExAttrs       = 7
	fKey           = 1 // KeyValue
	fValue         = 2
	fStringValue   = 1 // AnyValue
	fBoolValue     = 2
	fIntValue      = 3
	fDoubleValue   = 4
	fArrayValue    = 5
	fKvlistValue   = 6
	fBytesValue    = 7
	fStrindexValue = 8
)

// sizeSlots is how many nested messages of s get a size slot: a close
// guess (exemplars aside), to size the slots' slice once.
func sizeSlots(s *exporters.Snapshot) int {
	if s == nil {
		return 1
	}
	return 5 + 2*len(s.Families) + s.SeriesCount()
}

// lenField is the size of a length-delimited field of n bytes; every field
// written here has a number below 16, so a one-byte tag.
func lenField(n int) int { return 1 + sizeVarint(uint64(n)) + n }

// sizeVarint is protowire.SizeVarint, quicker for the usual one byte.
func sizeVarint(v uint64) int {
	if v < 0x80 {
		return 1
	}
	return protowire.SizeVarint(v)
}

// strField is the size of a proto3 string field: nothing when empty.
func strField(s string) int {
	if s == "" {
		return 0
	}
	return lenField(len(s))
}

// fixedField is the size of a fixed64 field.
const fixedField = 1 + 8

// kvSize is the size of a KeyValue with a string value (always written:
// it is a oneof member).
func kvSize(key, value string) int { return strField(key) + lenField(lenField(len(value))) }

func labelsSize(labels []exporters.Label) int {
	n := 0
	for _, l := range labels {
		n += lenField(kvSize(l.Name, l.Value))
	}
	return n
}

// idSize is the size of the bytes MetricsData writes for a hex trace or
// span ID of want bytes (see encoder.id).
func idSize(s string, want int) int {
	if s == "" {
		return 0
	}
	if isHex(s) {
		return len(s) / 2
	}
	if len(s) == want {
		return want + 1
	}
	return len(s)
}

// isHex reports whether s decodes as hex (either case, even length), as
// encoding/hex.Decode does.
func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if _, ok := fromHex(s[i]); !ok {
			return false
		}
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// familyName is the Metric name MetricsData writes for f.
func familyName(f *exporters.Family) string {
	if f.Name == "" {
		return f.PromName
	}
	return f.Name
}

// sizer is the first pass: it computes the size of every nested message,
// in the order writer writes them (pre-order), into sizes[:next].
type sizer struct {
	sizes []int
	next  int
}

// slot reserves the next size; the caller fills it once its content is
// sized. Slots are indexed rather than appended: the slice is rarely
// grown, and writing an int needs no GC write barrier.
func (z *sizer) slot() int {
	if z.next == len(z.sizes) {
		z.sizes = append(z.sizes, make([]int, len(z.sizes)/4+16)...)
	}
	z.next++
	return z.next - 1
}

func (z *sizer) exportRequest(s *exporters.Snapshot, req exporters.ExportRequest) int {
	n := strField(req.ID) + strField(req.Format) + strField(req.Target)
	for k, v := range req.Options {
		// Map entries always hold both key and value.
		n += lenField(lenField(len(k)) + lenField(len(v)))
	}
	n += lenField(z.metricsData(s))
	if s != nil && unixNano(s.Time) != 0 {
		n += fixedField
	}
	return n
}

func (z *sizer) metricsData(s *exporters.Snapshot) int {
	i := z.slot()
	if s == nil {
		return 0
	}
	n := lenField(z.resourceMetrics(s))
	z.sizes[i] = n
	return n
}

func (z *sizer) resourceMetrics(s *exporters.Snapshot) int {
	i := z.slot()
	n := lenField(z.resource(&s.Resource)) + lenField(z.scopeMetrics(s))
	z.sizes[i] = n
	return n
}

func (z *sizer) resource(r *exporters.Resource) int {
	i := z.slot()
	n := lenField(kvSize(attrServiceName, r.ServiceName))
	if r.Instance != "" {
		n += lenField(kvSize(attrServiceInstanceID, r.Instance))
	}
	n += labelsSize(r.Attributes)
	z.sizes[i] = n
	return n
}

// scopeSize is the size of the InstrumentationScope MetricsData writes.
var scopeSize = strField(ScopeName)

func (z *sizer) scopeMetrics(s *exporters.Snapshot) int {
	i := z.slot()
	n := lenField(scopeSize)
	for k := range s.Families {
		n += lenField(z.metric(&s.Families[k]))
	}
	z.sizes[i] = n
	return n
}

func (z *sizer) metric(f *exporters.Family) int {
	i := z.slot()
	n := strField(familyName(f)) + strField(f.Description) + strField(f.Unit)
	n += lenField(z.data(f))
	n += lenField(kvSize(MetadataPromName, f.PromName)) + lenField(kvSize(MetadataPromType, string(f.Type)))
	z.sizes[i] = n
	return n
}

// data sizes the Gauge, Sum or Histogram of f.
func (z *sizer) data(f *exporters.Family) int {
	i := z.slot()
	n := 0
	switch f.Type {
	case exporters.TypeHistogram:
		for k := range f.Series {
			n += lenField(z.histogramPoint(&f.Series[k]))
		}
		n += 2 // aggregation_temporality
	case exporters.TypeCounter:
		for k := range f.Series {
			n += lenField(z.numberPoint(&f.Series[k]))
		}
		n += 2 + 2 // aggregation_temporality, is_monotonic
	default:
		for k := range f.Series {
			n += lenField(z.numberPoint(&f.Series[k]))
		}
	}
	z.sizes[i] = n
	return n
}

// timesSize is the size of a data point's start and time fields.
func timesSize(sr *exporters.Series) int {
	n := 0
	if unixNano(sr.Start) != 0 {
		n += fixedField
	}
	if unixNano(sr.Time) != 0 {
		n += fixedField
	}
	return n
}

func (z *sizer) numberPoint(sr *exporters.Series) int {
	i := z.slot()
	n := timesSize(sr) + fixedField // as_double: a oneof member, always written
	if sr.Exemplar != nil {
		n += lenField(z.exemplar(sr.Exemplar))
	}
	n += labelsSize(sr.Labels)
	z.sizes[i] = n
	return n
}

func (z *sizer) histogramPoint(sr *exporters.Series) int {
	i := z.slot()
	n := timesSize(sr) + fixedField // sum: optional, always written
	if h := sr.Histogram; h != nil {
		if h.Count != 0 {
			n += fixedField
		}
		bounds := 0
		for k := range h.Buckets {
			if !math.IsInf(h.Buckets[k].UpperBound, 1) {
				bounds++
			}
		}
		if len(h.Buckets) > 0 {
			n += lenField(8 * len(h.Buckets))
		}
		if bounds > 0 {
			n += lenField(8 * bounds)
		}
		for k := range h.Buckets {
			if x := h.Buckets[k].Exemplar; x != nil {
				n += lenField(z.exemplar(x))
			}
		}
	}
	n += labelsSize(sr.Labels)
	z.sizes[i] = n
	return n
}

func (z *sizer) exemplar(x *exporters.Exemplar) int {
	i := z.slot()
	n := fixedField // as_double
	if unixNano(x.Time) != 0 {
		n += fixedField
	}
	if m := idSize(x.SpanID, spanIDLen); m > 0 {
		n += lenField(m)
	}
	if m := idSize(x.TraceID, traceIDLen); m > 0 {
		n += lenField(m)
	}
	n += labelsSize(x.Labels)
	z.sizes[i] = n
	return n
}

// writer is the second pass: it writes the encoding into b, which has
// exactly its length, taking each nested message's size from sizes in the
// order sizer computed them. It indexes b rather than appending to it: no
// slice header to store back (and no GC write barrier) per field.
type writer struct {
	b     []byte
	n     int // bytes written
	sizes []int
	next  int
}

// tag writes a field's tag: one byte, as every field number here is
// below 16.
func (w *writer) tag(num protowire.Number, typ protowire.Type) {
	w.b[w.n] = byte(uint64(num)<<3 | uint64(typ&7))
	w.n++
}

func (w *writer) varint(v uint64) {
	for v >= 0x80 {
		w.b[w.n] = byte(v) | 0x80
		v >>= 7
		w.n++
	}
	w.b[w.n] = byte(v)
	w.n++
}

func (w *writer) fixed64(v uint64) {
	binary.LittleEndian.PutUint64(w.b[w.n:], v)
	w.n += 8
}

func (w *writer) raw(s string) {
	w.n += copy(w.b[w.n:], s)
}

// open writes the tag and length of the next nested message, field num.
func (w *writer) open(num protowire.Number) {
	n := w.sizes[w.next]
	w.next++
	w.tag(num, protowire.BytesType)
	w.varint(uint64(n))
}

func (w *writer) bytesField(num protowire.Number, s string) {
	w.tag(num, protowire.BytesType)
	w.varint(uint64(len(s)))
	w.raw(s)
}

func (w *writer) stringField(num protowire.Number, s string) {
	if s != "" {
		w.bytesField(num, s)
	}
}

func (w *writer) fixedField(num protowire.Number, v uint64) {
	w.tag(num, protowire.Fixed64Type)
	w.fixed64(v)
}

// timeField writes a time as Unix nanoseconds, nothing for 0.
func (w *writer) timeField(num protowire.Number, v uint64) {
	if v != 0 {
		w.fixedField(num, v)
	}
}

func (w *writer) keyValue(num protowire.Number, key, value string) {
	valueSize := lenField(len(value))
	w.tag(num, protowire.BytesType)
	w.varint(uint64(strField(key) + lenField(valueSize)))
	w.stringField(fKey, key)
	w.tag(fValue, protowire.BytesType)
	w.varint(uint64(valueSize))
	w.bytesField(fStringValue, value)
}

func (w *writer) labels(num protowire.Number, labels []exporters.Label) {
	for i := range labels {
		w.keyValue(num, labels[i].Name, labels[i].Value)
	}
}

func (w *writer) exportRequest(s *exporters.Snapshot, req exporters.ExportRequest) {
	w.stringField(fExportID, req.ID)
	w.stringField(fFormat, req.Format)
	w.stringField(fTarget, req.Target)
	if len(req.Options) > 0 {
		keys := make([]string, 0, len(req.Options))
		for k := range req.Options {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := req.Options[k]
			w.tag(fOptions, protowire.BytesType)
			w.varint(uint64(lenField(len(k)) + lenField(len(v))))
			w.bytesField(fMapKey, k)
			w.bytesField(fMapValue, v)
		}
	}
	w.open(fMetrics)
	if s == nil {
		return
	}
	w.resourceMetrics(s)
	w.timeField(fTimeUnixNano, unixNano(s.Time))
}

func (w *writer) resourceMetrics(s *exporters.Snapshot) {
	w.open(fResourceMs)
	w.open(fResource)
	r := &s.Resource
	w.keyValue(fResourceAttrs, attrServiceName, r.ServiceName)
	if r.Instance != "" {
		w.keyValue(fResourceAttrs, attrServiceInstanceID, r.Instance)
	}
	w.labels(fResourceAttrs, r.Attributes)
	w.open(fScopeMetrics)
	w.tag(fScope, protowire.BytesType)
	w.varint(uint64(scopeSize))
	w.stringField(fScopeName, ScopeName)
	for k := range s.Families {
		w.metric(&s.Families[k])
	}
}

func (w *writer) metric(f *exporters.Family) {
	w.open(fMetric)
	w.stringField(fName, familyName(f))
	w.stringField(fDescription, f.Description)
	w.stringField(fUnit, f.Unit)
	// proto.Marshal writes oneof members (the data) after the other fields.
	w.keyValue(fMetadata, MetadataPromName, f.PromName)
	w.keyValue(fMetadata, MetadataPromType, string(f.Type))
	switch f.Type {
	case exporters.TypeHistogram:
		w.open(fHistogram)
		for k := range f.Series {
			w.histogramPoint(&f.Series[k])
		}
		w.tag(fTemporality, protowire.VarintType)
		w.varint(uint64(cumulative))
	case exporters.TypeCounter:
		w.open(fSum)
		for k := range f.Series {
			w.numberPoint(&f.Series[k])
		}
		w.tag(fTemporality, protowire.VarintType)
		w.varint(uint64(cumulative))
		w.tag(fMonotonic, protowire.VarintType)
		w.varint(1)
	default:
		w.open(fGauge)
		for k := range f.Series {
			w.numberPoint(&f.Series[k])
		}
	}
}

func (w *writer) numberPoint(sr *exporters.Series) {
	w.open(fDataPoints)
	w.timeField(fStart, unixNano(sr.Start))
	w.timeField(fTime, unixNano(sr.Time))
	if sr.Exemplar != nil {
		w.exemplar(fNumExemplars, sr.Exemplar)
	}
	w.labels(fNumAttrs, sr.Labels)
	w.fixedField(fNumAsDouble, math.Float64bits(sr.Value)) // a oneof member: last
}

func (w *writer) histogramPoint(sr *exporters.Series) {
	w.open(fDataPoints)
	w.timeField(fStart, unixNano(sr.Start))
	w.timeField(fTime, unixNano(sr.Time))
	h := sr.Histogram
	if h == nil {
		w.fixedField(fHistSum, 0)
		w.labels(fHistAttrs, sr.Labels)
		return
	}
	if h.Count != 0 {
		w.fixedField(fHistCount, h.Count)
	}
	w.fixedField(fHistSum, math.Float64bits(h.Sum))
	buckets := h.Buckets
	if len(buckets) > 0 {
		w.tag(fHistCounts, protowire.BytesType)
		w.varint(uint64(8 * len(buckets)))
		out := w.b[w.n : w.n+8*len(buckets)]
		var prev uint64
		for k := range buckets {
			c := buckets[k].Count
			binary.LittleEndian.PutUint64(out[8*k:], c-prev) // wraps only for a malformed snapshot, as in MetricsData
			prev = c
		}
		w.n += len(out)
	}
	bounds := 0
	for k := range buckets {
		if !math.IsInf(buckets[k].UpperBound, 1) {
			bounds++
		}
	}
	if bounds > 0 {
		w.tag(fHistBounds, protowire.BytesType)
		w.varint(uint64(8 * bounds))
		for k := range buckets {
			if ub := buckets[k].UpperBound; !math.IsInf(ub, 1) {
				w.fixed64(math.Float64bits(ub))
			}
		}
	}
	for k := range buckets {
		if x := buckets[k].Exemplar; x != nil {
			w.exemplar(fHistExemplars, x)
		}
	}
	w.labels(fHistAttrs, sr.Labels)
}

func (w *writer) exemplar(num protowire.Number, x *exporters.Exemplar) {
	w.open(num)
	w.timeField(fExTime, unixNano(x.Time))
	w.id(fExSpanID, x.SpanID, spanIDLen)
	w.id(fExTraceID, x.TraceID, traceIDLen)
	w.labels(fExAttrs, x.Labels)
	w.fixedField(fExAsDouble, math.Float64bits(x.Value)) // a oneof member: last
}

// id writes a trace or span ID as encoder.id does: decoded from hex, or
// its raw bytes (one longer when that would be an ID's length) when it is
// not hex; nothing when empty.
func (w *writer) id(num protowire.Number, s string, want int) {
	n := idSize(s, want)
	if n == 0 {
		return
	}
	w.tag(num, protowire.BytesType)
	w.varint(uint64(n))
	if isHex(s) {
		for i := 0; i < len(s); i += 2 {
			hi, _ := fromHex(s[i])
			lo, _ := fromHex(s[i+1])
			w.b[w.n] = hi<<4 | lo
			w.n++
		}
		return
	}
	w.raw(s)
	if len(s) == want {
		w.b[w.n] = 0
		w.n++
	}
}

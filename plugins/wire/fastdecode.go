package wire

import (
	"encoding/hex"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// UnmarshalExportRequest decodes the protobuf encoding of an ExportRequest
// straight into a snapshot, without building the OTLP messages. It gives
// exactly what proto.Unmarshal into a pluginv1.ExportRequest followed by
// FromExportRequest gives: the same snapshot and request (equal by
// reflect.DeepEqual), and the same error: proto.Unmarshal's when data is
// not a valid encoding (errors.Is(err, proto.Error) then holds), else
// FromExportRequest's, with the request.
//
// It reads the encoding as any protobuf decoder does (fields in any order,
// unknown fields skipped, the last of a repeated scalar kept, strings
// checked for UTF-8). What it does not decode itself (an error, a field
// occurring again where protobuf merges messages, a message it has no use
// for) it hands to the proto.Unmarshal path, so that the results never
// differ; that path is several times slower, but only malformed or unusual
// input takes it.
//
// The snapshot's strings share one copy of data; data itself is not kept.
func UnmarshalExportRequest(data []byte) (*exporters.Snapshot, exporters.ExportRequest, error) {
	d := fastDecoder{data: data}
	if s, req, ok := d.exportRequest(); ok {
		return s, req, nil
	}
	m := &pluginv1.ExportRequest{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, exporters.ExportRequest{}, err
	}
	return FromExportRequest(m)
}

// dpool hands out slices of arrays allocated a chunk at a time, so that a
// snapshot's series, labels and buckets take a few allocations in all.
// Slices handed out never move.
type dpool[T any] struct {
	free []T
	size int // the next chunk's size
}

// take returns n elements; nil when n is 0.
func (p *dpool[T]) take(n int) []T {
	if n == 0 {
		return nil
	}
	if n > len(p.free) {
		p.size = max(2*p.size, n, 64)
		p.free = make([]T, p.size)
	}
	s := p.free[:n:n]
	p.free = p.free[n:]
	return s
}

// copied returns a pooled copy of src; nil when src is empty.
func (p *dpool[T]) copied(src []T) []T {
	out := p.take(len(src))
	copy(out, src)
	return out
}

// fastDecoder reads one ExportRequest. Each method returns false when the
// input is anything but a valid request that FromExportRequest accepts,
// decoded in a way it handles; UnmarshalExportRequest then takes the
// proto.Unmarshal path.
type fastDecoder struct {
	data []byte
	src  string // data as one string: every string decoded is a slice of it

	req     exporters.ExportRequest
	time    uint64
	rms     int // ResourceMetrics seen
	scopes  int // ScopeMetrics seen
	resAttr []exporters.Label
	fams    []exporters.Family

	series  dpool[exporters.Series]
	labels  dpool[exporters.Label]
	hists   dpool[exporters.Histogram]
	buckets dpool[exporters.Bucket]
	exs     dpool[exporters.Exemplar]

	// Scratch space, reused from one metric or data point to the next.
	ptSeries []exporters.Series
	ptLabels []exporters.Label
	exLabels []exporters.Label
	ptExs    []rawExemplar
	counts   []uint64
	bounds   []float64

	// Exemplar IDs, hex-encoded into one buffer that becomes one string at
	// the end: idExs[i]'s trace ID ends at idEnds[2i], its span ID at
	// idEnds[2i+1].
	hex    []byte
	idEnds []int
	idExs  []*exporters.Exemplar
}

// rawExemplar is an exemplar read, its IDs not yet hex-encoded.
type rawExemplar struct {
	ex          exporters.Exemplar
	trace, span []byte
}

// str returns v, a slice of d.data, as a slice of d.src.
func (d *fastDecoder) str(v []byte) string {
	off := cap(d.data) - cap(v)
	return d.src[off : off+len(v)]
}

// tag reads a field's tag as proto.Unmarshal accepts it; n < 0 when it
// does not. An end-group tag is not accepted: no message read here is a
// group.
func tag(b []byte) (num protowire.Number, typ protowire.Type, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return num, typ, n
}

// skip consumes the value of a field that is unknown, or known but with
// another wire type, which protobuf keeps as unknown.
func skip(b []byte, num protowire.Number, typ protowire.Type) int {
	return protowire.ConsumeFieldValue(num, typ, b)
}

// fields calls field for every field of the message b until it returns a
// negative length (then fields returns false) or b ends. field returns how
// many bytes of its value it consumed.
func fields(b []byte, field func(num protowire.Number, typ protowire.Type, b []byte) int) bool {
	for len(b) > 0 {
		num, typ, n := tag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if n = field(num, typ, b); n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// bytesValue reads a length-delimited value.
func bytesValue(b []byte) ([]byte, int) { return protowire.ConsumeBytes(b) }

// text reads a string field's value, checked for UTF-8 as proto3 wants.
func (d *fastDecoder) text(b []byte, out *string) int {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 || !utf8.Valid(v) {
		return -1
	}
	*out = d.str(v)
	return n
}

func fixed(b []byte, out *uint64) int {
	v, n := protowire.ConsumeFixed64(b)
	*out = v
	return n
}

func (d *fastDecoder) exportRequest() (*exporters.Snapshot, exporters.ExportRequest, bool) {
	d.src = string(d.data)
	ok := fields(d.data, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if num == fOptions && d.req.Options == nil {
			// proto.Unmarshal makes the map on seeing the field, even
			// with a wire type it then skips as unknown.
			d.req.Options = make(map[string]string)
		}
		if typ == protowire.BytesType {
			switch num {
			case fExportID:
				return d.text(b, &d.req.ID)
			case fFormat:
				return d.text(b, &d.req.Format)
			case fTarget:
				return d.text(b, &d.req.Target)
			case fOptions:
				return d.option(b)
			case fMetrics:
				v, n := bytesValue(b)
				if n < 0 || !fields(v, d.metricsData) {
					return -1
				}
				return n
			}
		}
		if num == fTimeUnixNano && typ == protowire.Fixed64Type {
			return fixed(b, &d.time)
		}
		return skip(b, num, typ)
	})
	if !ok {
		return nil, exporters.ExportRequest{}, false
	}
	s, ok := d.snapshot()
	return s, d.req, ok
}

// option reads one options map entry; a missing key or value is empty,
// and a key seen before is replaced.
func (d *fastDecoder) option(b []byte) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var key, value string
	if !fields(v, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch {
		case num == fMapKey && typ == protowire.BytesType:
			return d.text(b, &key)
		case num == fMapValue && typ == protowire.BytesType:
			return d.text(b, &value)
		}
		return skip(b, num, typ)
	}) {
		return -1
	}
	d.req.Options[key] = value
	return n
}

// metricsData reads one field of MetricsData (which may come in several
// parts, merged).
func (d *fastDecoder) metricsData(num protowire.Number, typ protowire.Type, b []byte) int {
	if num != fResourceMs || typ != protowire.BytesType {
		return skip(b, num, typ)
	}
	if d.rms++; d.rms > 1 {
		return -1 // an error: Snapshot takes one
	}
	v, n := bytesValue(b)
	if n < 0 || !fields(v, d.resourceMetrics) {
		return -1
	}
	return n
}

func (d *fastDecoder) resourceMetrics(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ != protowire.BytesType {
		return skip(b, num, typ)
	}
	switch num {
	case fResource:
		// Resource messages that occur more than once merge: their
		// attributes add up.
		v, n := bytesValue(b)
		if n < 0 || !fields(v, d.resource) {
			return -1
		}
		return n
	case fScopeMetrics:
		if d.scopes++; d.scopes > 1 {
			return -1
		}
		v, n := bytesValue(b)
		if n < 0 || !fields(v, d.scopeMetrics) {
			return -1
		}
		return n
	case fRMSchemaURL:
		var ignored string
		return d.text(b, &ignored)
	}
	return skip(b, num, typ)
}

func (d *fastDecoder) resource(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.BytesType {
		switch num {
		case fResourceAttrs:
			var l exporters.Label
			n := d.label(b, &l)
			d.resAttr = append(d.resAttr, l)
			return n
		case fEntityRefs:
			return -1 // not read here
		}
	}
	return skip(b, num, typ)
}

func (d *fastDecoder) scopeMetrics(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ != protowire.BytesType {
		return skip(b, num, typ)
	}
	switch num {
	case fScope:
		v, n := bytesValue(b)
		if n < 0 || !fields(v, d.scope) {
			return -1
		}
		return n
	case fMetric:
		v, n := bytesValue(b)
		if n < 0 || !d.metric(v) {
			return -1
		}
		return n
	case fSMSchemaURL:
		var ignored string
		return d.text(b, &ignored)
	}
	return skip(b, num, typ)
}

// scope checks an InstrumentationScope, which a snapshot does not keep.
func (d *fastDecoder) scope(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.BytesType {
		var ignored string
		switch num {
		case fScopeName, fScopeVersion:
			return d.text(b, &ignored)
		case fScopeAttrs:
			return -1 // not read here
		}
	}
	return skip(b, num, typ)
}

// anyValue is what an AnyValue holds, as far as a snapshot cares: a
// string, or something else.
type anyValue struct {
	set, isString bool
	s             string
}

// anyValue reads one field of an AnyValue: the last oneof member set wins.
func (d *fastDecoder) anyValue(v *anyValue, num protowire.Number, typ protowire.Type, b []byte) int {
	switch {
	case num == fStringValue && typ == protowire.BytesType:
		v.set, v.isString = true, true
		return d.text(b, &v.s)
	case num == fBoolValue && typ == protowire.VarintType,
		num == fIntValue && typ == protowire.VarintType,
		num == fStrindexValue && typ == protowire.VarintType,
		num == fDoubleValue && typ == protowire.Fixed64Type,
		num == fBytesValue && typ == protowire.BytesType:
		v.set, v.isString = true, false
	case (num == fArrayValue || num == fKvlistValue) && typ == protowire.BytesType:
		return -1 // nested values: not read here
	}
	return skip(b, num, typ)
}

// keyValue reads a KeyValue: its key and value.
func (d *fastDecoder) keyValue(b []byte, key *string, val *anyValue) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	if !fields(v, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if typ == protowire.BytesType {
			switch num {
			case fKey:
				return d.text(b, key)
			case fValue:
				// Values that occur more than once merge.
				v, n := bytesValue(b)
				if n < 0 || !fields(v, func(num protowire.Number, typ protowire.Type, b []byte) int {
					return d.anyValue(val, num, typ, b)
				}) {
					return -1
				}
				return n
			}
		}
		return skip(b, num, typ)
	}) {
		return -1
	}
	return n
}

// label reads an attribute, which must have a string value.
func (d *fastDecoder) label(b []byte, l *exporters.Label) int {
	var v anyValue
	n := d.keyValue(b, &l.Name, &v)
	if n < 0 || !v.isString {
		return -1
	}
	l.Value = v.s
	return n
}

// metricData is which of a Metric's data a metric holds.
type metricData int

const (
	noData metricData = iota
	gaugeData
	sumData
	histogramData
)

// metric reads a Metric into the next family.
func (d *fastDecoder) metric(b []byte) bool {
	var (
		f                  exporters.Family
		data               metricData
		temporality        int32
		monotonic          bool
		haveName, haveType bool
		promName, typ      string
	)
	d.ptSeries = d.ptSeries[:0]
	ok := fields(b, func(num protowire.Number, wt protowire.Type, b []byte) int {
		if wt != protowire.BytesType {
			return skip(b, num, wt)
		}
		switch num {
		case fName:
			return d.text(b, &f.Name)
		case fDescription:
			return d.text(b, &f.Description)
		case fUnit:
			return d.text(b, &f.Unit)
		case fGauge, fSum, fHistogram:
			if data != noData {
				return -1 // a oneof set again, or merged: not read here
			}
			switch num {
			case fGauge:
				data = gaugeData
			case fSum:
				data = sumData
			default:
				data = histogramData
			}
			v, n := bytesValue(b)
			if n < 0 || !fields(v, func(num protowire.Number, wt protowire.Type, b []byte) int {
				switch {
				case num == fDataPoints && wt == protowire.BytesType:
					if data == histogramData {
						return d.histogramPoint(b)
					}
					return d.numberPoint(b)
				case num == fTemporality && wt == protowire.VarintType && data != gaugeData:
					v, n := protowire.ConsumeVarint(b)
					temporality = int32(v)
					return n
				case num == fMonotonic && wt == protowire.VarintType && data == sumData:
					v, n := protowire.ConsumeVarint(b)
					monotonic = v != 0
					return n
				}
				return skip(b, num, wt)
			}) {
				return -1
			}
			return n
		case fExpHistogram, fSummary:
			return -1 // rejected by Snapshot, or replaced: not read here
		case fMetadata:
			var key string
			var v anyValue
			n := d.keyValue(b, &key, &v)
			if n < 0 {
				return -1
			}
			switch key {
			case MetadataPromName:
				if haveName || !v.isString {
					return -1
				}
				haveName, promName = true, v.s
			case MetadataPromType:
				if haveType || !v.isString {
					return -1
				}
				haveType, typ = true, v.s
			}
			return n
		}
		return skip(b, num, wt)
	})
	if !ok || f.Name == "" || !haveName || promName == "" || !haveType {
		return false
	}
	f.PromName, f.Type = promName, exporters.MetricType(typ)
	switch f.Type {
	case exporters.TypeCounter:
		if data != sumData || !monotonic || temporality != int32(cumulative) {
			return false
		}
	case exporters.TypeGauge:
		if data != gaugeData {
			return false
		}
	case exporters.TypeHistogram:
		if data != histogramData || temporality != int32(cumulative) {
			return false
		}
	default:
		return false
	}
	f.Series = d.series.copied(d.ptSeries)
	d.fams = append(d.fams, f)
	return true
}

// pointLabels returns the data point's labels from d.ptLabels, pooled:
// empty but not nil when there are none, as Snapshot gives them; false
// when a name repeats.
func (d *fastDecoder) pointLabels() ([]exporters.Label, bool) {
	if i, _ := repeated(d.ptLabels); i >= 0 {
		return nil, false
	}
	if len(d.ptLabels) == 0 {
		return []exporters.Label{}, true
	}
	return d.labels.copied(d.ptLabels), true
}

// value kinds of a data point or exemplar: its oneof value.
const (
	noValue = iota
	doubleValue
	intValue
)

func (d *fastDecoder) numberPoint(b []byte) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var (
		start, t, bits uint64
		kind           int
		flags          uint32
		exemplars      int
	)
	d.ptLabels = d.ptLabels[:0]
	d.ptExs = d.ptExs[:0]
	if !fields(v, func(num protowire.Number, wt protowire.Type, b []byte) int {
		switch {
		case num == fStart && wt == protowire.Fixed64Type:
			return fixed(b, &start)
		case num == fTime && wt == protowire.Fixed64Type:
			return fixed(b, &t)
		case num == fNumAsDouble && wt == protowire.Fixed64Type:
			kind = doubleValue
			return fixed(b, &bits)
		case num == fNumAsInt && wt == protowire.Fixed64Type:
			kind = intValue
			return fixed(b, &bits)
		case num == fNumFlags && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			flags = uint32(v)
			return n
		case num == fNumAttrs && wt == protowire.BytesType:
			var l exporters.Label
			n := d.label(b, &l)
			d.ptLabels = append(d.ptLabels, l)
			return n
		case num == fNumExemplars && wt == protowire.BytesType:
			if exemplars++; exemplars > 1 {
				return -1
			}
			return d.exemplar(b)
		}
		return skip(b, num, wt)
	}) || kind != doubleValue || flags != 0 {
		return -1
	}
	labels, ok := d.pointLabels()
	if !ok {
		return -1
	}
	sr := exporters.Series{Labels: labels, Value: math.Float64frombits(bits), Start: unixTime(start), Time: unixTime(t)}
	if len(d.ptExs) == 1 {
		sr.Exemplar = d.keepExemplar(&d.ptExs[0])
	}
	d.ptSeries = append(d.ptSeries, sr)
	return n
}

func (d *fastDecoder) histogramPoint(b []byte) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var (
		start, t, count, sum uint64
		haveSum              bool
		flags                uint32
	)
	d.ptLabels = d.ptLabels[:0]
	d.ptExs = d.ptExs[:0]
	d.counts, d.bounds = d.counts[:0], d.bounds[:0]
	if !fields(v, func(num protowire.Number, wt protowire.Type, b []byte) int {
		switch {
		case num == fStart && wt == protowire.Fixed64Type:
			return fixed(b, &start)
		case num == fTime && wt == protowire.Fixed64Type:
			return fixed(b, &t)
		case num == fHistCount && wt == protowire.Fixed64Type:
			return fixed(b, &count)
		case num == fHistSum && wt == protowire.Fixed64Type:
			haveSum = true
			return fixed(b, &sum)
		case num == fHistCounts && wt == protowire.Fixed64Type:
			var c uint64
			n := fixed(b, &c)
			d.counts = append(d.counts, c)
			return n
		case num == fHistCounts && wt == protowire.BytesType:
			v, n := bytesValue(b)
			if n < 0 || len(v)%8 != 0 {
				return -1
			}
			for ; len(v) > 0; v = v[8:] {
				c, _ := protowire.ConsumeFixed64(v)
				d.counts = append(d.counts, c)
			}
			return n
		case num == fHistBounds && wt == protowire.Fixed64Type:
			var c uint64
			n := fixed(b, &c)
			d.bounds = append(d.bounds, math.Float64frombits(c))
			return n
		case num == fHistBounds && wt == protowire.BytesType:
			v, n := bytesValue(b)
			if n < 0 || len(v)%8 != 0 {
				return -1
			}
			for ; len(v) > 0; v = v[8:] {
				c, _ := protowire.ConsumeFixed64(v)
				d.bounds = append(d.bounds, math.Float64frombits(c))
			}
			return n
		case num == fHistFlags && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			flags = uint32(v)
			return n
		case (num == fHistMin || num == fHistMax) && wt == protowire.Fixed64Type:
			return -1 // rejected by Snapshot
		case num == fHistAttrs && wt == protowire.BytesType:
			var l exporters.Label
			n := d.label(b, &l)
			d.ptLabels = append(d.ptLabels, l)
			return n
		case num == fHistExemplars && wt == protowire.BytesType:
			return d.exemplar(b)
		}
		return skip(b, num, wt)
	}) || flags != 0 || !haveSum || len(d.counts) != len(d.bounds)+1 {
		return -1
	}
	labels, ok := d.pointLabels()
	if !ok {
		return -1
	}
	buckets := d.buckets.take(len(d.counts))
	var total uint64
	for i, c := range d.counts {
		upper := math.Inf(1)
		if i < len(d.bounds) {
			upper = d.bounds[i]
			if math.IsNaN(upper) || math.IsInf(upper, 1) || i > 0 && upper <= d.bounds[i-1] {
				return -1
			}
		}
		if c > math.MaxUint64-total {
			return -1
		}
		total += c
		buckets[i] = exporters.Bucket{UpperBound: upper, Count: total}
	}
	if total != count {
		return -1
	}
	for k := range d.ptExs {
		b := &buckets[bucketOf(buckets, d.ptExs[k].ex.Value)]
		if b.Exemplar != nil {
			return -1
		}
		b.Exemplar = d.keepExemplar(&d.ptExs[k])
	}
	h := &d.hists.take(1)[0]
	h.Count, h.Sum, h.Buckets = count, math.Float64frombits(sum), buckets
	d.ptSeries = append(d.ptSeries, exporters.Series{Labels: labels, Histogram: h, Start: unixTime(start), Time: unixTime(t)})
	return n
}

// exemplar reads an exemplar into d.ptExs.
func (d *fastDecoder) exemplar(b []byte) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var (
		x       rawExemplar
		t, bits uint64
		kind    int
	)
	d.exLabels = d.exLabels[:0]
	if !fields(v, func(num protowire.Number, wt protowire.Type, b []byte) int {
		switch {
		case num == fExTime && wt == protowire.Fixed64Type:
			return fixed(b, &t)
		case num == fExAsDouble && wt == protowire.Fixed64Type:
			kind = doubleValue
			return fixed(b, &bits)
		case num == fExAsInt && wt == protowire.Fixed64Type:
			kind = intValue
			return fixed(b, &bits)
		case num == fExSpanID && wt == protowire.BytesType:
			var n int
			x.span, n = bytesValue(b)
			return n
		case num == fExTraceID && wt == protowire.BytesType:
			var n int
			x.trace, n = bytesValue(b)
			return n
		case num == fExAttrs && wt == protowire.BytesType:
			var l exporters.Label
			n := d.label(b, &l)
			d.exLabels = append(d.exLabels, l)
			return n
		}
		return skip(b, num, wt)
	}) || kind != doubleValue ||
		len(x.trace) != 0 && len(x.trace) != traceIDLen ||
		len(x.span) != 0 && len(x.span) != spanIDLen {
		return -1
	}
	if i, _ := repeated(d.exLabels); i >= 0 {
		return -1
	}
	x.ex = exporters.Exemplar{Value: math.Float64frombits(bits), Time: unixTime(t), Labels: d.labels.copied(d.exLabels)}
	d.ptExs = append(d.ptExs, x)
	return n
}

// keepExemplar moves x into the pool and queues its IDs for setIDs.
func (d *fastDecoder) keepExemplar(x *rawExemplar) *exporters.Exemplar {
	ex := &d.exs.take(1)[0]
	*ex = x.ex
	d.hex = hex.AppendEncode(d.hex, x.trace)
	d.idEnds = append(d.idEnds, len(d.hex))
	d.hex = hex.AppendEncode(d.hex, x.span)
	d.idEnds = append(d.idEnds, len(d.hex))
	d.idExs = append(d.idExs, ex)
	return ex
}

// snapshot assembles what was read, as Snapshot would, checking what only
// the whole can say.
func (d *fastDecoder) snapshot() (*exporters.Snapshot, bool) {
	s := &exporters.Snapshot{Time: unixTime(d.time)}
	if d.rms == 0 {
		s.Families = []exporters.Family{}
		return s, true
	}
	if len(d.resAttr) > 0 {
		if i, _ := repeated(d.resAttr); i >= 0 {
			return nil, false
		}
		var others []exporters.Label
		for _, l := range d.resAttr {
			switch l.Name {
			case attrServiceName:
				s.Resource.ServiceName = l.Value
			case attrServiceInstanceID:
				s.Resource.Instance = l.Value
			default:
				others = append(others, l)
			}
		}
		s.Resource.Attributes = others
	}
	s.Families = d.fams
	if s.Families == nil {
		s.Families = []exporters.Family{}
	}
	if len(d.idExs) > 0 {
		ids := string(d.hex)
		start := 0
		for i, x := range d.idExs {
			traceEnd, spanEnd := d.idEnds[2*i], d.idEnds[2*i+1]
			x.TraceID, x.SpanID = ids[start:traceEnd], ids[traceEnd:spanEnd]
			start = spanEnd
		}
	}
	return s, true
}

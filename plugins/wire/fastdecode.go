package wire

import (
	"encoding/binary"
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

// reserve makes the next chunk n elements, when the caller knows about how
// many it will take.
func (p *dpool[T]) reserve(n int) {
	if n > len(p.free) {
		p.free, p.size = make([]T, n), n
	}
}

// grow makes room at the pool's head for a run (a slice built in place,
// then handed out by end) of k+1 elements, keeping the k already there.
func (p *dpool[T]) grow(k int) {
	p.size = max(2*p.size, 2*(k+1), 64)
	free := make([]T, p.size)
	copy(free, p.free[:k])
	p.free = free
}

// end hands out the run of k elements at the pool's head.
func (p *dpool[T]) end(k int) []T {
	s := p.free[:k:k]
	p.free = p.free[k:]
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

	// Pools, the first chunks sized by reserve from counts or estimates.
	series  dpool[exporters.Series]
	labels  dpool[exporters.Label] // data points' labels, built in place
	exLabs  dpool[exporters.Label] // exemplars'
	hists   dpool[exporters.Histogram]
	buckets dpool[exporters.Bucket]
	exs     dpool[exporters.Exemplar]

	// Scratch space, reused from one data point to the next.
	exLabels []exporters.Label
	ptExs    []rawExemplar
	counts   []uint64
	bounds   []uint64 // float64 bits

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
	if len(b) > 0 {
		// The usual one-byte tag, of a field number from 1 to 15: c-8 <
		// 0x78 is 8 <= c < 0x80.
		if c := b[0]; c-8 < 0x78 && c&7 != byte(protowire.EndGroupType) {
			return protowire.Number(c >> 3), protowire.Type(c & 7), 1
		}
	}
	return tagSlow(b)
}

// tagSlow is tag for any tag.
func tagSlow(b []byte) (num protowire.Number, typ protowire.Type, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return num, typ, n
}

// skip consumes the value of a field that is unknown, or known but with
// another wire type, which protobuf keeps as unknown.
func skip(b []byte, num protowire.Number, typ protowire.Type) int {
	if typ == protowire.BytesType {
		_, n := bytesValue(b)
		return n
	}
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
func bytesValue(b []byte) ([]byte, int) {
	if len(b) > 0 {
		// The usual length below 128: a one-byte varint.
		if m := int(b[0]); m < 0x80 && m < len(b) {
			return b[1 : 1+m], 1 + m
		}
	}
	return protowire.ConsumeBytes(b)
}

// text reads a string field's value, checked for UTF-8 as proto3 wants.
func (d *fastDecoder) text(b []byte, out *string) int {
	v, n := bytesValue(b)
	if n < 0 || !utf8.Valid(v) {
		return -1
	}
	*out = d.str(v)
	return n
}

func fixed(b []byte, out *uint64) int {
	if len(b) < 8 {
		return -1
	}
	*out = binary.LittleEndian.Uint64(b)
	return 8
}

func (d *fastDecoder) exportRequest() (*exporters.Snapshot, exporters.ExportRequest, bool) {
	d.src = string(d.data)
	d.reservePools()
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

// reservePools sizes the pools' first chunks: the series and histograms
// exactly, from a quick count of the data points; labels and buckets by
// estimate (a pool adds chunks as needed). Each estimate is bounded by
// what the message's length can hold, so that a short message never makes
// a large reservation.
func (d *fastDecoder) reservePools() {
	points, hists := countPoints(d.data)
	const minPoint, minLabel, minBucket = 11, 6, 8 // bytes on the wire
	limit := len(d.data)
	d.series.reserve(min(points, limit/minPoint))
	d.hists.reserve(min(hists, limit/minPoint))
	d.labels.reserve(min(4*points, limit/minLabel))
	d.buckets.reserve(min(16*hists, limit/minBucket))
}

// countPoints counts the data points of an ExportRequest's metrics, and
// those of histograms among them. It stops at whatever it cannot read:
// decoding proper finds what is wrong.
func countPoints(data []byte) (points, hists int) {
	each(data, fMetrics, func(md []byte) {
		each(md, fResourceMs, func(rm []byte) {
			each(rm, fScopeMetrics, func(sm []byte) {
				each(sm, fMetric, func(m []byte) {
					for len(m) > 0 {
						num, typ, n := tag(m)
						if n < 0 {
							return
						}
						m = m[n:]
						v, n := bytesValue(m)
						if typ != protowire.BytesType {
							n = skip(m, num, typ)
						}
						if n < 0 {
							return
						}
						m = m[n:]
						if typ == protowire.BytesType && (num == fGauge || num == fSum || num == fHistogram) {
							k := countFields(v, fDataPoints)
							points += k
							if num == fHistogram {
								hists += k
							}
						}
					}
				})
			})
		})
	})
	return points, hists
}

// each calls fn with the value of every length-delimited field num of the
// message b, stopping at what it cannot read.
func each(b []byte, num protowire.Number, fn func(v []byte)) {
	for len(b) > 0 {
		n, typ, k := tag(b)
		if k < 0 {
			return
		}
		b = b[k:]
		if n == num && typ == protowire.BytesType {
			v, k := bytesValue(b)
			if k < 0 {
				return
			}
			fn(v)
			b = b[k:]
			continue
		}
		if k = skip(b, n, typ); k < 0 {
			return
		}
		b = b[k:]
	}
}

// countFields counts the length-delimited fields num of the message b, up
// to what it cannot read.
func countFields(b []byte, num protowire.Number) int {
	count := 0
	for len(b) > 0 {
		n, typ, k := tag(b)
		if k < 0 {
			break
		}
		b = b[k:]
		if k = skip(b, n, typ); k < 0 {
			break
		}
		b = b[k:]
		if n == num && typ == protowire.BytesType {
			count++
		}
	}
	return count
}

// keyValue reads a KeyValue: its key and value.
func (d *fastDecoder) keyValue(b []byte, key *string, val *anyValue) int {
	v, n := bytesValue(b)
	if n < 0 || !d.keyValueFields(v, key, val) {
		return -1
	}
	return n
}

// keyValueFields reads the fields of a KeyValue.
func (d *fastDecoder) keyValueFields(b []byte, key *string, val *anyValue) bool {
	for len(b) > 0 {
		num, typ, n := tag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fKey && typ == protowire.BytesType:
			n = d.text(b, key)
		case num == fValue && typ == protowire.BytesType:
			// Values that occur more than once merge.
			var v []byte
			if v, n = bytesValue(b); n < 0 {
				return false
			}
			for len(v) > 0 {
				num, typ, m := tag(v)
				if m < 0 {
					return false
				}
				v = v[m:]
				if m = d.anyValue(val, num, typ, v); m < 0 {
					return false
				}
				v = v[m:]
			}
		default:
			n = skip(b, num, typ)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

// label reads an attribute, which must have a string value.
func (d *fastDecoder) label(b []byte, l *exporters.Label) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	// The usual encoding, proto.Marshal's of a short key and value: key
	// (0a len key), then value (12 len) holding only its string (0a len s).
	if len(v) >= 6 && v[0] == 0x0a && v[1] < 0x80 {
		kl := int(v[1])
		if len(v) >= 2+kl+4 && v[2+kl] == 0x12 {
			r := v[3+kl:]
			if vl := int(r[0]); vl < 0x80 && len(r) == 1+vl && vl >= 2 && r[1] == 0x0a && int(r[2]) == vl-2 {
				// One check for both strings: the bytes between them are
				// ASCII, which no UTF-8 sequence spans.
				if !utf8.Valid(v[2:]) {
					return -1
				}
				key, s := v[2:2+kl], r[3:]
				l.Name, l.Value = d.str(key), d.str(s)
				return n
			}
		}
	}
	var val anyValue
	if !d.keyValueFields(v, &l.Name, &val) || !val.isString {
		return -1
	}
	l.Value = val.s
	return n
}

// pointLabel reads a data point's label into the run of k labels at the
// labels pool's head.
func (d *fastDecoder) pointLabel(b []byte, k int) int {
	if k == len(d.labels.free) {
		d.labels.grow(k)
	}
	return d.label(b, &d.labels.free[k])
}

// pointLabels hands out the run of k labels at the labels pool's head:
// empty but not nil when there are none, as Snapshot gives them; false
// when a name repeats.
func (d *fastDecoder) pointLabels(k int) ([]exporters.Label, bool) {
	if k == 0 {
		return []exporters.Label{}, true
	}
	labels := d.labels.end(k)
	if i, _ := repeated(labels); i >= 0 {
		return nil, false
	}
	return labels, true
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
	for len(b) > 0 {
		num, wt, n := tag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if wt != protowire.BytesType {
			if n = skip(b, num, wt); n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		switch num {
		case fName:
			n = d.text(b, &f.Name)
		case fDescription:
			n = d.text(b, &f.Description)
		case fUnit:
			n = d.text(b, &f.Unit)
		case fGauge, fSum, fHistogram:
			if data != noData {
				return false // a oneof set again, or merged: not read here
			}
			switch num {
			case fGauge:
				data = gaugeData
			case fSum:
				data = sumData
			default:
				data = histogramData
			}
			var v []byte
			if v, n = bytesValue(b); n < 0 {
				return false
			}
			var ok bool
			if f.Series, ok = d.dataPoints(v, data, &temporality, &monotonic); !ok {
				return false
			}
		case fExpHistogram, fSummary:
			return false // rejected by Snapshot, or replaced: not read here
		case fMetadata:
			var key string
			var v anyValue
			if n = d.keyValue(b, &key, &v); n < 0 {
				return false
			}
			switch key {
			case MetadataPromName:
				if haveName || !v.isString {
					return false
				}
				haveName, promName = true, v.s
			case MetadataPromType:
				if haveType || !v.isString {
					return false
				}
				haveType, typ = true, v.s
			}
		default:
			n = skip(b, num, wt)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	if f.Name == "" || !haveName || promName == "" || !haveType {
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
	d.fams = append(d.fams, f)
	return true
}

// dataPoints reads a Gauge, Sum or Histogram: its data points go straight
// into a run of pooled series.
func (d *fastDecoder) dataPoints(b []byte, data metricData, temporality *int32, monotonic *bool) ([]exporters.Series, bool) {
	k := 0
	for len(b) > 0 {
		num, wt, n := tag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == fDataPoints && wt == protowire.BytesType:
			if k == len(d.series.free) {
				d.series.grow(k)
			}
			if data == histogramData {
				n = d.histogramPoint(b, &d.series.free[k])
			} else {
				n = d.numberPoint(b, &d.series.free[k])
			}
			k++
		case num == fTemporality && wt == protowire.VarintType && data != gaugeData:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			*temporality = int32(v)
		case num == fMonotonic && wt == protowire.VarintType && data == sumData:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			*monotonic = v != 0
		default:
			n = skip(b, num, wt)
		}
		if n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	if k == 0 {
		return nil, true
	}
	return d.series.end(k), true
}

// value kinds of a data point or exemplar: its oneof value.
const (
	noValue = iota
	doubleValue
	intValue
)

// numberPoint reads a NumberDataPoint into sr, which is zero.
func (d *fastDecoder) numberPoint(b []byte, sr *exporters.Series) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var (
		start, t, bits uint64
		kind           int
		flags          uint32
		exemplars      int
		labels         int
	)
	d.ptExs = d.ptExs[:0]
	for b := v; len(b) > 0; {
		num, wt, m := tag(b)
		if m < 0 {
			return -1
		}
		b = b[m:]
		switch {
		case num == fStart && wt == protowire.Fixed64Type:
			m = fixed(b, &start)
		case num == fTime && wt == protowire.Fixed64Type:
			m = fixed(b, &t)
		case num == fNumAsDouble && wt == protowire.Fixed64Type:
			kind = doubleValue
			m = fixed(b, &bits)
		case num == fNumAsInt && wt == protowire.Fixed64Type:
			kind = intValue
			m = fixed(b, &bits)
		case num == fNumFlags && wt == protowire.VarintType:
			var v uint64
			v, m = protowire.ConsumeVarint(b)
			flags = uint32(v)
		case num == fNumAttrs && wt == protowire.BytesType:
			m = d.pointLabel(b, labels)
			labels++
		case num == fNumExemplars && wt == protowire.BytesType:
			if exemplars++; exemplars > 1 {
				return -1
			}
			m = d.exemplar(b)
		default:
			m = skip(b, num, wt)
		}
		if m < 0 {
			return -1
		}
		b = b[m:]
	}
	if kind != doubleValue || flags != 0 {
		return -1
	}
	var ok bool
	if sr.Labels, ok = d.pointLabels(labels); !ok {
		return -1
	}
	sr.Value, sr.Start, sr.Time = math.Float64frombits(bits), unixTime(start), unixTime(t)
	if len(d.ptExs) == 1 {
		sr.Exemplar = d.keepExemplar(&d.ptExs[0])
	}
	return n
}

// packed appends the fixed64 values of a packed field's value v to dst;
// false when v is not whole values.
func packed(dst []uint64, v []byte) ([]uint64, bool) {
	if len(v)%8 != 0 {
		return dst, false
	}
	for i := 0; i+8 <= len(v); i += 8 {
		dst = append(dst, binary.LittleEndian.Uint64(v[i:]))
	}
	return dst, true
}

// histogramPoint reads a HistogramDataPoint into sr, which is zero.
func (d *fastDecoder) histogramPoint(b []byte, sr *exporters.Series) int {
	v, n := bytesValue(b)
	if n < 0 {
		return -1
	}
	var (
		start, t, count, sum uint64
		haveSum              bool
		flags                uint32
		labels               int
		ok                   bool
	)
	d.ptExs = d.ptExs[:0]
	d.counts, d.bounds = d.counts[:0], d.bounds[:0]
	for b := v; len(b) > 0; {
		num, wt, m := tag(b)
		if m < 0 {
			return -1
		}
		b = b[m:]
		switch {
		case num == fStart && wt == protowire.Fixed64Type:
			m = fixed(b, &start)
		case num == fTime && wt == protowire.Fixed64Type:
			m = fixed(b, &t)
		case num == fHistCount && wt == protowire.Fixed64Type:
			m = fixed(b, &count)
		case num == fHistSum && wt == protowire.Fixed64Type:
			haveSum = true
			m = fixed(b, &sum)
		case num == fHistCounts && wt == protowire.Fixed64Type:
			var c uint64
			m = fixed(b, &c)
			d.counts = append(d.counts, c)
		case num == fHistCounts && wt == protowire.BytesType:
			var v []byte
			if v, m = bytesValue(b); m < 0 {
				return -1
			}
			if d.counts, ok = packed(d.counts, v); !ok {
				return -1
			}
		case num == fHistBounds && wt == protowire.Fixed64Type:
			var c uint64
			m = fixed(b, &c)
			d.bounds = append(d.bounds, c)
		case num == fHistBounds && wt == protowire.BytesType:
			var v []byte
			if v, m = bytesValue(b); m < 0 {
				return -1
			}
			if d.bounds, ok = packed(d.bounds, v); !ok {
				return -1
			}
		case num == fHistFlags && wt == protowire.VarintType:
			var v uint64
			v, m = protowire.ConsumeVarint(b)
			flags = uint32(v)
		case (num == fHistMin || num == fHistMax) && wt == protowire.Fixed64Type:
			return -1 // rejected by Snapshot
		case num == fHistAttrs && wt == protowire.BytesType:
			m = d.pointLabel(b, labels)
			labels++
		case num == fHistExemplars && wt == protowire.BytesType:
			m = d.exemplar(b)
		default:
			m = skip(b, num, wt)
		}
		if m < 0 {
			return -1
		}
		b = b[m:]
	}
	if flags != 0 || !haveSum || len(d.counts) != len(d.bounds)+1 {
		return -1
	}
	if sr.Labels, ok = d.pointLabels(labels); !ok {
		return -1
	}
	buckets := d.buckets.take(len(d.counts))
	var total uint64
	prev := math.Inf(-1)
	for i, c := range d.counts {
		upper := math.Inf(1)
		if i < len(d.bounds) {
			upper = math.Float64frombits(d.bounds[i])
			if math.IsNaN(upper) || math.IsInf(upper, 1) || i > 0 && upper <= prev {
				return -1
			}
			prev = upper
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
	sr.Histogram, sr.Start, sr.Time = h, unixTime(start), unixTime(t)
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
	for b := v; len(b) > 0; {
		num, wt, m := tag(b)
		if m < 0 {
			return -1
		}
		b = b[m:]
		switch {
		case num == fExTime && wt == protowire.Fixed64Type:
			m = fixed(b, &t)
		case num == fExAsDouble && wt == protowire.Fixed64Type:
			kind = doubleValue
			m = fixed(b, &bits)
		case num == fExAsInt && wt == protowire.Fixed64Type:
			kind = intValue
			m = fixed(b, &bits)
		case num == fExSpanID && wt == protowire.BytesType:
			x.span, m = bytesValue(b)
		case num == fExTraceID && wt == protowire.BytesType:
			x.trace, m = bytesValue(b)
		case num == fExAttrs && wt == protowire.BytesType:
			var l exporters.Label
			m = d.label(b, &l)
			d.exLabels = append(d.exLabels, l)
		default:
			m = skip(b, num, wt)
		}
		if m < 0 {
			return -1
		}
		b = b[m:]
	}
	if kind != doubleValue ||
		len(x.trace) != 0 && len(x.trace) != traceIDLen ||
		len(x.span) != 0 && len(x.span) != spanIDLen {
		return -1
	}
	if i, _ := repeated(d.exLabels); i >= 0 {
		return -1
	}
	x.ex = exporters.Exemplar{Value: math.Float64frombits(bits), Time: unixTime(t), Labels: d.exLabs.copied(d.exLabels)}
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

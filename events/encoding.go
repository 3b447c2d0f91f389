package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The wire format of a batch, version 2 (all integers are varints unless
// noted; strings are a uvarint length then bytes):
//
//	batch  = 'S' 'X' version(byte=2) count(uvarint) event*count
//	event  = name id(16 bytes) correlation(16 bytes) unixnano(varint; the
//	         zero Time, whose UnixNano is undefined, is math.MinInt64)
//	         schema_version(uvarint) nattrs(uvarint) attr*nattrs parent
//	attr   = key kind(byte) value
//	value  = string | int(varint) | float(8 bytes little-endian) | bool(byte)
//	parent = 0 (no parent) | 1 trace_id(16 bytes) span_id(8 bytes) flags(byte)
//
// Version 1 is the same without parent. A present parent has non-zero trace
// and span ids; an invalid Event.Parent is written as no parent.
//
// It is compact (a typical lifecycle event is 150–200 bytes) and needs no
// reflection to encode or decode. The encoder writes version 2; the decoder
// reads versions 1 and 2, so batches written by an older publisher (or
// inserted by hand) still route, and rejects any other version.
const (
	wireMagic0  = 'S'
	wireMagic1  = 'X'
	WireVersion = 2
)

// wireVersionNoParent is the oldest version DecodeBatch reads: events
// without a parent.
const wireVersionNoParent = 1

// minEventSize is the fewest bytes an encoded event takes (a one-byte name,
// two ids, time, version, attribute count, parent byte); it bounds the count
// a decoder believes, so that a corrupt count cannot make it allocate far
// more than the payload's size. Version 1 events are a byte shorter.
const minEventSize = 2 + 32 + 1 + 1 + 1 + 1

// MaxBatchEvents bounds the event count a decoder accepts in one batch, so a
// corrupt count cannot make it allocate without bound.
const MaxBatchEvents = 1 << 20

// ErrDecode wraps every decoding failure.
var ErrDecode = errors.New("decode event batch")

// AppendBatchHeader appends a batch header announcing count events to b.
func AppendBatchHeader(b []byte, count int) []byte {
	b = append(b, wireMagic0, wireMagic1, WireVersion)
	return binary.AppendUvarint(b, uint64(count))
}

// AppendEvent appends the wire form of e to b. It allocates only when b grows.
func AppendEvent(b []byte, e *Event) []byte {
	b = appendString(b, e.Name)
	b = append(b, e.ID[:]...)
	b = append(b, e.CorrelationID[:]...)
	b = binary.AppendVarint(b, unixNano(e.Time))
	b = binary.AppendUvarint(b, uint64(e.SchemaVersion))
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	for i := range e.Attrs {
		a := &e.Attrs[i]
		b = appendString(b, a.Key)
		b = append(b, byte(a.Value.kind))
		switch a.Value.kind {
		case KindString:
			b = appendString(b, a.Value.str)
		case KindInt:
			b = binary.AppendVarint(b, int64(a.Value.num))
		case KindFloat:
			b = binary.LittleEndian.AppendUint64(b, a.Value.num)
		case KindBool:
			b = append(b, byte(a.Value.num))
		}
	}
	if !e.Parent.IsValid() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = append(b, e.Parent.TraceID[:]...)
	b = append(b, e.Parent.SpanID[:]...)
	return append(b, e.Parent.Flags)
}

// EncodeBatch returns the wire form of evs as one batch.
func EncodeBatch(evs []Event) []byte {
	b := AppendBatchHeader(make([]byte, 0, 192*len(evs)+8), len(evs))
	for i := range evs {
		b = AppendEvent(b, &evs[i])
	}
	return b
}

// zeroTimeNano stands for the zero Time on the wire.
const zeroTimeNano = math.MinInt64

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return zeroTimeNano
	}
	return t.UnixNano()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeBatch decodes a batch and appends its events to dst. It copies the
// payload into one string that all decoded strings share and gives all events
// one shared Attrs array, so a batch costs a few allocations, not several per
// event. Callers that keep a string beyond the batch should strings.Clone it.
//
// On error it returns dst unchanged and an error wrapping ErrDecode that says
// at which event and byte offset decoding failed.
func DecodeBatch(payload []byte, dst []Event) ([]Event, error) {
	d := decoder{s: string(payload)}
	if len(d.s) < 3 || d.s[0] != wireMagic0 || d.s[1] != wireMagic1 {
		return dst, fmt.Errorf("%w: not a Sextant event batch (bad magic)", ErrDecode)
	}
	d.version = d.s[2]
	if d.version != wireVersionNoParent && d.version != WireVersion {
		return dst, fmt.Errorf("%w: wire version %d, this build reads versions %d and %d", ErrDecode, d.version, wireVersionNoParent, WireVersion)
	}
	d.off = 3
	count, ok := d.uvarint()
	if !ok || count > MaxBatchEvents || count > uint64(len(d.s)) {
		return dst, fmt.Errorf("%w: bad event count at offset 3", ErrDecode)
	}
	// Reserve only what the payload can hold, so that a corrupt count
	// cannot make the decoder allocate far beyond the payload's size.
	minSize := minEventSize
	if d.version == wireVersionNoParent {
		minSize--
	}
	reserve := min(int(count), (len(d.s)-d.off)/minSize)
	start := len(dst)
	dst = growEvents(dst, reserve)
	attrs := make([]Attr, 0, reserve*8) // lifecycle events carry 3–9 attributes
	for i := 0; i < int(count); i++ {
		var e Event
		var err error
		attrs, err = d.event(&e, attrs)
		if err != nil {
			return dst[:start], fmt.Errorf("%w: event %d of %d: %w", ErrDecode, i, count, err)
		}
		dst = append(dst, e)
	}
	if d.off != len(d.s) {
		return dst[:start], fmt.Errorf("%w: %d trailing bytes after %d events", ErrDecode, len(d.s)-d.off, count)
	}
	return dst, nil
}

func growEvents(s []Event, n int) []Event {
	if cap(s)-len(s) < n {
		ns := make([]Event, len(s), len(s)+n)
		copy(ns, s)
		return ns
	}
	return s
}

type decoder struct {
	s       string
	off     int
	version byte // the batch's wire version
}

var errTruncated = errors.New("truncated")

func (d *decoder) event(e *Event, attrs []Attr) ([]Attr, error) {
	var ok bool
	if e.Name, ok = d.str(); !ok {
		return attrs, fmt.Errorf("name at offset %d: %w", d.off, errTruncated)
	}
	if e.Name == "" {
		return attrs, fmt.Errorf("empty name at offset %d", d.off)
	}
	if len(d.s)-d.off < 32 {
		return attrs, fmt.Errorf("ids at offset %d: %w", d.off, errTruncated)
	}
	copy(e.ID[:], d.s[d.off:d.off+16])
	copy(e.CorrelationID[:], d.s[d.off+16:d.off+32])
	d.off += 32
	ns, ok := d.varint()
	if !ok {
		return attrs, fmt.Errorf("time at offset %d: %w", d.off, errTruncated)
	}
	if ns != zeroTimeNano {
		e.Time = time.Unix(0, ns)
	}
	v, ok := d.uvarint()
	if !ok || v > math.MaxUint16 {
		return attrs, fmt.Errorf("schema version at offset %d: bad value", d.off)
	}
	e.SchemaVersion = uint16(v)
	n, ok := d.uvarint()
	if !ok || n > uint64(len(d.s)-d.off)/2 {
		return attrs, fmt.Errorf("attribute count at offset %d: bad value", d.off)
	}
	first := len(attrs)
	for j := 0; j < int(n); j++ {
		var a Attr
		if a.Key, ok = d.str(); !ok {
			return attrs, fmt.Errorf("attribute %d key at offset %d: %w", j, d.off, errTruncated)
		}
		if d.off >= len(d.s) {
			return attrs, fmt.Errorf("attribute %q kind at offset %d: %w", a.Key, d.off, errTruncated)
		}
		a.Value.kind = Kind(d.s[d.off])
		d.off++
		switch a.Value.kind {
		case KindString:
			a.Value.str, ok = d.str()
		case KindInt:
			var x int64
			x, ok = d.varint()
			a.Value.num = uint64(x)
		case KindFloat:
			if ok = len(d.s)-d.off >= 8; ok {
				a.Value.num = le64(d.s[d.off : d.off+8])
				d.off += 8
			}
		case KindBool:
			if ok = d.off < len(d.s) && d.s[d.off] <= 1; ok {
				a.Value.num = uint64(d.s[d.off])
				d.off++
			}
		default:
			return attrs, fmt.Errorf("attribute %q at offset %d: unknown kind %d", a.Key, d.off-1, a.Value.kind)
		}
		if !ok {
			return attrs, fmt.Errorf("attribute %q value at offset %d: bad or truncated", a.Key, d.off)
		}
		attrs = append(attrs, a)
	}
	e.Attrs = attrs[first:len(attrs):len(attrs)]
	if d.version == wireVersionNoParent {
		return attrs, nil
	}
	return attrs, d.parent(&e.Parent)
}

// parent decodes an event's parent: a presence byte, then the trace
// context when it is 1.
func (d *decoder) parent(p *TraceParent) error {
	if d.off >= len(d.s) {
		return fmt.Errorf("parent at offset %d: %w", d.off, errTruncated)
	}
	switch d.s[d.off] {
	case 0:
		d.off++
		return nil
	case 1:
	default:
		return fmt.Errorf("parent at offset %d: presence byte %d, want 0 or 1", d.off, d.s[d.off])
	}
	d.off++
	if len(d.s)-d.off < 16+8+1 {
		return fmt.Errorf("parent at offset %d: %w", d.off, errTruncated)
	}
	copy(p.TraceID[:], d.s[d.off:d.off+16])
	copy(p.SpanID[:], d.s[d.off+16:d.off+24])
	p.Flags = d.s[d.off+24]
	switch {
	case p.TraceID == [16]byte{}:
		return fmt.Errorf("parent at offset %d: zero trace id", d.off)
	case p.SpanID == [8]byte{}:
		return fmt.Errorf("parent at offset %d: zero span id", d.off+16)
	}
	d.off += 16 + 8 + 1
	return nil
}

func (d *decoder) uvarint() (uint64, bool) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off >= len(d.s) {
			return 0, false
		}
		c := d.s[d.off]
		d.off++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, false
			}
			return x | uint64(c)<<s, true
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, false
}

func (d *decoder) varint() (int64, bool) {
	ux, ok := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, ok
}

func (d *decoder) str() (string, bool) {
	n, ok := d.uvarint()
	if !ok || n > uint64(len(d.s)-d.off) {
		return "", false
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s, true
}

// le64 reads a little-endian uint64 from a string without converting it to a
// byte slice, which could allocate.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// BatchBuilder accumulates encoded events into one batch. The count in the
// header is written when Bytes is called, in a fixed three-byte varint, so
// events are encoded once, straight into the final buffer. The zero value is
// ready to use. A BatchBuilder is not safe for concurrent use.
type BatchBuilder struct {
	buf []byte
	n   int
}

// MaxBuilderEvents is the most events one BatchBuilder can hold (the largest
// count a three-byte varint carries).
const MaxBuilderEvents = 1<<21 - 1

// Add appends e to the batch.
func (b *BatchBuilder) Add(e *Event) {
	if b.buf == nil {
		b.buf = make([]byte, 0, 4096)
	}
	if len(b.buf) == 0 {
		b.buf = append(b.buf, wireMagic0, wireMagic1, WireVersion, 0x80, 0x80, 0)
	}
	b.buf = AppendEvent(b.buf, e)
	b.n++
}

// Len returns the number of events in the batch.
func (b *BatchBuilder) Len() int { return b.n }

// Size returns the encoded size of the batch in bytes.
func (b *BatchBuilder) Size() int { return len(b.buf) }

// Take returns the finished batch and resets b to empty; b keeps no reference
// to the returned bytes. It returns nil for an empty batch.
func (b *BatchBuilder) Take() []byte {
	if b.n == 0 {
		return nil
	}
	n := b.n
	b.buf[3] = byte(n) | 0x80
	b.buf[4] = byte(n>>7) | 0x80
	b.buf[5] = byte(n >> 14)
	out := b.buf
	b.buf, b.n = make([]byte, 0, cap(out)), 0
	return out
}

package events

import (
	"errors"
	"fmt"
)

// TraceParent is a W3C Trace Context traceparent: the trace id, span id and
// trace flags of a span in some other process. Events carry the publisher's
// one (Event.Parent) so that the router can tie its spans to the publisher's
// trace across the bus. It is a plain comparable value; the zero TraceParent
// is invalid and means "none".
type TraceParent struct {
	// TraceID is the 16-byte trace id; all zeros is invalid.
	TraceID [16]byte
	// SpanID is the 8-byte id of the parent span; all zeros is invalid.
	SpanID [8]byte
	// Flags are the trace flags; bit 0 is "sampled".
	Flags byte
}

// ErrInvalidTraceParent wraps every error of ParseTraceParent.
var ErrInvalidTraceParent = errors.New("invalid traceparent")

// traceParentLen is the length of a version 00 traceparent, and the least a
// higher version may have.
const traceParentLen = 2 + 1 + 32 + 1 + 16 + 1 + 2

// ParseTraceParent parses the W3C Trace Context (level 1) traceparent header
// form "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>". Hex digits are
// lower case only, and an all-zero trace or span id is invalid. Version ff is
// invalid. A version above 00 is parsed by its first four fields, as the
// specification asks, when the string is at least as long as version 00's and
// anything past the flags starts with a dash; of its flags only the sampled
// bit is kept, since the others may mean something else in that version.
// Version 00's flags are kept whole. Surrounding white space is an error:
// HTTP servers trim it from header values already.
//
// Errors wrap ErrInvalidTraceParent and say which field is wrong; they do not
// quote s.
func ParseTraceParent(s string) (TraceParent, error) {
	var t TraceParent
	if len(s) < traceParentLen {
		if len(s) == 0 {
			return t, fmt.Errorf("%w: empty", ErrInvalidTraceParent)
		}
		return t, fmt.Errorf("%w: %d characters, want %d: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", ErrInvalidTraceParent, len(s), traceParentLen)
	}
	var ver [1]byte
	if !decodeHexLower(ver[:], s[0:2]) {
		return t, fmt.Errorf("%w: version: want 2 lower-case hex digits", ErrInvalidTraceParent)
	}
	switch {
	case ver[0] == 0xff:
		return t, fmt.Errorf("%w: version ff is invalid", ErrInvalidTraceParent)
	case ver[0] == 0 && len(s) != traceParentLen:
		return t, fmt.Errorf("%w: version 00 has %d characters, want %d", ErrInvalidTraceParent, len(s), traceParentLen)
	case ver[0] != 0 && len(s) > traceParentLen && s[traceParentLen] != '-':
		return t, fmt.Errorf("%w: version %s: want a dash after the flags", ErrInvalidTraceParent, s[0:2])
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return t, fmt.Errorf("%w: want dashes between version, trace id, span id and flags", ErrInvalidTraceParent)
	}
	if !decodeHexLower(t.TraceID[:], s[3:35]) {
		return TraceParent{}, fmt.Errorf("%w: trace id: want 32 lower-case hex digits", ErrInvalidTraceParent)
	}
	if t.TraceID == ([16]byte{}) {
		return TraceParent{}, fmt.Errorf("%w: trace id: all zeros", ErrInvalidTraceParent)
	}
	if !decodeHexLower(t.SpanID[:], s[36:52]) {
		return TraceParent{}, fmt.Errorf("%w: span id: want 16 lower-case hex digits", ErrInvalidTraceParent)
	}
	if t.SpanID == ([8]byte{}) {
		return TraceParent{}, fmt.Errorf("%w: span id: all zeros", ErrInvalidTraceParent)
	}
	var flags [1]byte
	if !decodeHexLower(flags[:], s[53:55]) {
		return TraceParent{}, fmt.Errorf("%w: flags: want 2 lower-case hex digits", ErrInvalidTraceParent)
	}
	t.Flags = flags[0]
	if ver[0] != 0 {
		t.Flags &= flagSampled
	}
	return t, nil
}

// flagSampled is the trace flag "sampled".
const flagSampled = 0x01

// String returns t in the traceparent header form, version 00. For an
// invalid t the result does not parse.
func (t TraceParent) String() string {
	const hexDigits = "0123456789abcdef"
	var b [traceParentLen]byte
	b[0], b[1], b[2] = '0', '0', '-'
	for i, c := range t.TraceID {
		b[3+2*i], b[4+2*i] = hexDigits[c>>4], hexDigits[c&0xf]
	}
	b[35] = '-'
	for i, c := range t.SpanID {
		b[36+2*i], b[37+2*i] = hexDigits[c>>4], hexDigits[c&0xf]
	}
	b[52] = '-'
	b[53], b[54] = hexDigits[t.Flags>>4], hexDigits[t.Flags&0xf]
	return string(b[:])
}

// IsValid reports whether t has a non-zero trace id and span id, which the
// specification requires; an invalid TraceParent means "none".
func (t TraceParent) IsValid() bool {
	return t.TraceID != [16]byte{} && t.SpanID != [8]byte{}
}

// Sampled reports whether the sampled flag is set: the parent may have
// recorded its span.
func (t TraceParent) Sampled() bool { return t.Flags&flagSampled != 0 }

// decodeHexLower decodes len(dst)*2 lower-case hex digits of s into dst; it
// reports false for any other character. encoding/hex accepts upper case,
// which the specification forbids.
func decodeHexLower(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := hexLower(s[2*i])
		lo, ok2 := hexLower(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexLower(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

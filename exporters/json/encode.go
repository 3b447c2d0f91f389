package json

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	stdjson "encoding/json"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Schema is the value of every document's "schema" field. Additive changes
// (a new optional field) keep it; anything that changes or removes a field
// or its meaning gets a new version.
const Schema = "sextant.metrics/v1"

// ContentType is the media type of what Encode writes.
const ContentType = "application/json"

// Options say how Encode writes.
type Options struct {
	// Pretty indents the document by two spaces, one field a line, for
	// people; the default is one compact line.
	Pretty bool
}

// Encode writes s as one JSON document of schema sextant.metrics/v1,
// followed by a newline. Nothing is lost: families keep their OpenTelemetry
// and Prometheus names, unit and description; series their labels, start
// and sample times and exemplar; histograms every bucket with its own
// exemplar, the sum and the count. Floats are written with the fewest
// digits that read back as the same float64 (as encoding/json does), and
// NaN, +Inf and -Inf, which JSON numbers cannot hold, as the strings "NaN",
// "+Inf" and "-Inf". Times are RFC 3339 in UTC with nanoseconds. Families and
// series keep s's order. It fails for a nil snapshot and for a time outside
// years 0 to 9999, which RFC 3339 cannot write. It does not keep s.
func Encode(w io.Writer, s *exporters.Snapshot, opts Options) error {
	return encode(context.Background(), w, s, opts)
}

func encode(ctx context.Context, w io.Writer, s *exporters.Snapshot, opts Options) error {
	if s == nil {
		return errors.New("nil snapshot")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e := &encoder{w: w, buf: make([]byte, 0, flushAt+4096), pretty: opts.Pretty}
	return e.snapshot(ctx, s)
}

// flushAt is how much the encoder buffers before it writes.
const flushAt = 64 << 10

// Pretty output is the compact document indented by encoding/json, one
// family at a time so that memory stays in proportion to the largest
// family rather than the document.
const (
	indent       = "  "
	familyPrefix = indent + indent // a family is an element of "families"
)

// encoder appends the document to buf and writes it out in large pieces.
type encoder struct {
	w      io.Writer
	buf    []byte
	pretty bool
	family []byte       // a family's compact form, when pretty
	indent bytes.Buffer // its indented form
	err    error        // the first time that cannot be written
}

func (e *encoder) flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	_, err := e.w.Write(e.buf)
	e.buf = e.buf[:0]
	return err
}

func (e *encoder) snapshot(ctx context.Context, s *exporters.Snapshot) error {
	b := append(e.buf, `{"schema":`...)
	b = appendString(b, Schema)
	b = append(b, `,"time":`...)
	b = e.appendTime(b, s.Time)
	b = append(b, `,"resource":{"service_name":`...)
	b = appendString(b, s.Resource.ServiceName)
	b = append(b, `,"instance":`...)
	b = appendString(b, s.Resource.Instance)
	b = append(b, `,"attributes":`...)
	b = appendLabels(b, s.Resource.Attributes)
	b = append(b, `},"series_count":`...)
	b = strconv.AppendInt(b, int64(s.SeriesCount()), 10)
	if e.pretty {
		// Indent the head as an object of its own, then reopen it.
		if err := e.indentInto(append(b, '}'), ""); err != nil {
			return err
		}
		b = bytes.TrimSuffix(e.indent.Bytes(), []byte("\n}"))
		b = append(e.buf[:0], b...)
		if len(s.Families) == 0 {
			b = append(b, ",\n"+indent+`"families": []`...)
		} else {
			b = append(b, ",\n"+indent+`"families": [`...)
		}
	} else {
		b = append(b, `,"families":[`...)
	}
	e.buf = b
	for i := range s.Families {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.writeFamily(&s.Families[i]); err != nil {
			return err
		}
		if len(e.buf) >= flushAt {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	if e.err != nil {
		return e.err
	}
	switch {
	case !e.pretty:
		e.buf = append(e.buf, "]}\n"...)
	case len(s.Families) == 0:
		e.buf = append(e.buf, "\n}\n"...)
	default:
		e.buf = append(e.buf, "\n"+indent+"]\n}\n"...)
	}
	return e.flush()
}

// writeFamily appends f, compact or indented in its place.
func (e *encoder) writeFamily(f *exporters.Family) error {
	if !e.pretty {
		e.buf = e.appendFamily(e.buf, f)
		return e.err
	}
	e.family = e.appendFamily(e.family[:0], f)
	if e.err != nil {
		return e.err
	}
	if err := e.indentInto(e.family, familyPrefix); err != nil {
		return err
	}
	e.buf = append(e.buf, "\n"+familyPrefix...)
	e.buf = append(e.buf, e.indent.Bytes()...)
	return nil
}

// indentInto indents the compact JSON value src into e.indent; every line
// but the first starts with prefix.
func (e *encoder) indentInto(src []byte, prefix string) error {
	e.indent.Reset()
	if err := stdjson.Indent(&e.indent, src, prefix, indent); err != nil {
		return fmt.Errorf("indent: %w", err)
	}
	return nil
}

func (e *encoder) appendFamily(b []byte, f *exporters.Family) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, f.Name)
	b = append(b, `,"prom_name":`...)
	b = appendString(b, f.PromName)
	b = append(b, `,"type":`...)
	b = appendString(b, string(f.Type))
	b = append(b, `,"unit":`...)
	b = appendString(b, f.Unit)
	b = append(b, `,"description":`...)
	b = appendString(b, f.Description)
	b = append(b, `,"series":[`...)
	for i := range f.Series {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.appendSeries(b, &f.Series[i])
	}
	return append(b, "]}"...)
}

func (e *encoder) appendSeries(b []byte, s *exporters.Series) []byte {
	b = append(b, `{"labels":`...)
	b = appendLabels(b, s.Labels)
	if s.Histogram == nil {
		b = append(b, `,"value":`...)
		b = appendFloat(b, s.Value)
	}
	if !s.Start.IsZero() {
		b = append(b, `,"start_time":`...)
		b = e.appendTime(b, s.Start)
	}
	if !s.Time.IsZero() {
		b = append(b, `,"time":`...)
		b = e.appendTime(b, s.Time)
	}
	if s.Exemplar != nil {
		b = append(b, `,"exemplar":`...)
		b = e.appendExemplar(b, s.Exemplar)
	}
	if h := s.Histogram; h != nil {
		b = append(b, `,"histogram":{"count":`...)
		b = strconv.AppendUint(b, h.Count, 10)
		b = append(b, `,"sum":`...)
		b = appendFloat(b, h.Sum)
		b = append(b, `,"buckets":[`...)
		for i := range h.Buckets {
			bk := &h.Buckets[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"le":`...)
			b = appendFloat(b, bk.UpperBound)
			b = append(b, `,"count":`...)
			b = strconv.AppendUint(b, bk.Count, 10)
			if bk.Exemplar != nil {
				b = append(b, `,"exemplar":`...)
				b = e.appendExemplar(b, bk.Exemplar)
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}

func (e *encoder) appendExemplar(b []byte, x *exporters.Exemplar) []byte {
	b = append(b, `{"value":`...)
	b = appendFloat(b, x.Value)
	if !x.Time.IsZero() {
		b = append(b, `,"time":`...)
		b = e.appendTime(b, x.Time)
	}
	if x.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendString(b, x.TraceID)
	}
	if x.SpanID != "" {
		b = append(b, `,"span_id":`...)
		b = appendString(b, x.SpanID)
	}
	if len(x.Labels) > 0 {
		b = append(b, `,"labels":`...)
		b = appendLabels(b, x.Labels)
	}
	return append(b, '}')
}

// appendTime appends t as a quoted RFC 3339 time in UTC with nanoseconds;
// it records an error for a year RFC 3339 cannot write.
func (e *encoder) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		if e.err == nil {
			e.err = fmt.Errorf("time %s: year outside 0 to 9999", t)
		}
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendLabels appends labels as an object, in their order (a snapshot's
// are sorted by name).
func appendLabels(b []byte, labels []exporters.Label) []byte {
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, l.Name)
		b = append(b, ':')
		b = appendString(b, l.Value)
	}
	return append(b, '}')
}

// appendFloat appends f as encoding/json writes a float64 (shortest
// round-trip digits; exponent below 1e-6 and from 1e21), or as the strings
// "NaN", "+Inf" and "-Inf".
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 becomes e-7, as in encoding/json.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hex = "0123456789abcdef"

// appendString appends s quoted as encoding/json does without HTML
// escaping: ", \ and control characters escaped, U+2028 and U+2029
// escaped for JavaScript, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

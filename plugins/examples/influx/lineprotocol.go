package main

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// The line protocol layout (README.md has it with examples) is the one
// InfluxDB itself gives Prometheus data, sample for sample: one line per
// Prometheus sample, the sample's name as the measurement, its labels as
// tags, one field named value.
//
//	tasker_tasks_requests_total,namespace=default value=3 1764064800120000001
//	tasker_step_duration_milliseconds_bucket,le=0.5,result=ok value=1i 1764064800120000001
//	tasker_step_duration_milliseconds_sum,result=ok value=12.5 1764064800120000001
//	tasker_step_duration_milliseconds_count,result=ok value=3i 1764064800120000001
//
// Counters and gauges are floats; a histogram's buckets (cumulative, le
// spelled as on /metrics, +Inf last) and count are integers, its sum a
// float. Floats are written with the fewest digits that read back as the
// same float64. Line protocol cannot hold NaN or ±Inf, nor integers above
// 2^63-1: such a sample's line is left out and counted as skipped.
// Escaping follows Telegraf's influx serializer, which every InfluxDB
// reads: measurement names escape commas and spaces, tag keys and values
// also equals signs, and tab, newline, form feed and carriage return
// become \t, \n, \f and \r; a trailing backslash is dropped, and a tag
// left empty (Prometheus treats an empty label as absent) is left out.

const (
	fieldKey      = "value"
	bucketSuffix  = "_bucket"
	sumSuffix     = "_sum"
	countSuffix   = "_count"
	bucketTagName = "le"
)

// encodeOptions say how encode writes.
type encodeOptions struct {
	precision precision
	// tags are added to every line where the series has no label of the
	// same name; sorted by name.
	tags []exporters.Label
}

// encodeStats count what encode wrote.
type encodeStats struct {
	lines   int
	series  int // series with at least one line
	skipped int // samples line protocol cannot hold
}

// encode appends s as line protocol to b, checking ctx before each family.
func encode(ctx context.Context, b []byte, s *exporters.Snapshot, opts encodeOptions) ([]byte, encodeStats, error) {
	var st encodeStats
	if s == nil {
		return b, st, errors.New("nil snapshot")
	}
	var e lineEncoder
	for i := range s.Families {
		if err := ctx.Err(); err != nil {
			return b, st, err
		}
		f := &s.Families[i]
		for j := range f.Series {
			x := &f.Series[j]
			t := x.Time
			if t.IsZero() {
				t = s.Time
			}
			e.start(x.Labels, opts.tags, t, opts.precision)
			before := st.lines
			if f.Type == exporters.TypeHistogram {
				b = e.histogram(b, f.PromName, x.Histogram, &st)
			} else {
				b = e.sample(b, f.PromName, "", x.Value, &st)
			}
			if st.lines > before {
				st.series++
			}
		}
	}
	return b, st, nil
}

// lineEncoder writes the lines of one series, sharing its escaped tags
// and timestamp between them.
type lineEncoder struct {
	tags []tag  // the series' tags, escaped and sorted by name
	ts   []byte // " <timestamp>", or empty for none
}

type tag struct{ key, value string } // escaped

// start prepares the tags and timestamp of a series.
func (e *lineEncoder) start(labels, extra []exporters.Label, t time.Time, p precision) {
	e.tags = e.tags[:0]
	// Both lists are sorted by name: merge them, the series' label winning.
	i, j := 0, 0
	for i < len(labels) || j < len(extra) {
		var l exporters.Label
		switch {
		case j == len(extra) || i < len(labels) && labels[i].Name < extra[j].Name:
			l = labels[i]
			i++
		case i == len(labels) || extra[j].Name < labels[i].Name:
			l = extra[j]
			j++
		default: // the same name
			l = labels[i]
			i++
			j++
		}
		k, v := escapeTag(l.Name), escapeTag(l.Value)
		if k == "" || v == "" {
			continue
		}
		e.tags = append(e.tags, tag{k, v})
	}
	e.ts = e.ts[:0]
	if !t.IsZero() {
		e.ts = append(e.ts, ' ')
		e.ts = strconv.AppendInt(e.ts, p.timestamp(t), 10)
	}
}

// sample appends a float sample's line, or skips a value line protocol
// cannot hold.
func (e *lineEncoder) sample(b []byte, name, suffix string, v float64, st *encodeStats) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		st.skipped++
		return b
	}
	b = e.head(b, name, suffix, "")
	b = appendFloat(b, v)
	return e.tail(b, st)
}

// count appends an integer sample's line.
func (e *lineEncoder) count(b []byte, name, suffix, le string, n uint64, st *encodeStats) []byte {
	if n > math.MaxInt64 {
		st.skipped++
		return b
	}
	b = e.head(b, name, suffix, le)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, 'i')
	return e.tail(b, st)
}

// histogram appends a histogram's bucket, sum and count lines.
func (e *lineEncoder) histogram(b []byte, name string, h *exporters.Histogram, st *encodeStats) []byte {
	if h == nil {
		return b
	}
	for _, bk := range h.Buckets {
		b = e.count(b, name, bucketSuffix, formatBound(bk.UpperBound), bk.Count, st)
	}
	b = e.sample(b, name, sumSuffix, h.Sum, st)
	return e.count(b, name, countSuffix, "", h.Count, st)
}

// head appends "measurement,tags value=", with the le tag in its sorted
// place when le is not empty (it replaces a label named le).
func (e *lineEncoder) head(b []byte, name, suffix, le string) []byte {
	b = appendEscaped(b, name, false)
	b = appendEscaped(b, suffix, false)
	leDone := le == ""
	for _, t := range e.tags {
		if !leDone && t.key >= bucketTagName {
			b = append(b, ","+bucketTagName+"="...)
			b = append(b, le...)
			leDone = true
			if t.key == bucketTagName {
				continue
			}
		}
		b = append(b, ',')
		b = append(b, t.key...)
		b = append(b, '=')
		b = append(b, t.value...)
	}
	if !leDone {
		b = append(b, ","+bucketTagName+"="...)
		b = append(b, le...)
	}
	b = append(b, ' ')
	b = append(b, fieldKey...)
	return append(b, '=')
}

func (e *lineEncoder) tail(b []byte, st *encodeStats) []byte {
	b = append(b, e.ts...)
	st.lines++
	return append(b, '\n')
}

// formatBound spells a bucket bound as the le label on /metrics does.
func formatBound(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// appendFloat appends f with the fewest digits that read back as f, in
// plain notation unless that would be long (as encoding/json does).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// escapeTag escapes a tag key or value and drops a trailing backslash,
// which would escape the delimiter after it.
func escapeTag(s string) string {
	if strings.ContainsAny(s, "\t\n\f\r ,=\\") {
		s = string(appendEscaped(nil, s, true))
		s = strings.TrimRight(s, `\`)
	}
	return s
}

// appendEscaped appends s escaped for a measurement (commas and spaces) or,
// when tag is true, a tag key or value (equals signs too); control
// characters become \t, \n, \f and \r in both.
func appendEscaped(b []byte, s string, tag bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\f':
			b = append(b, `\f`...)
		case '\r':
			b = append(b, `\r`...)
		case ',', ' ':
			b = append(b, '\\', c)
		case '=':
			if tag {
				b = append(b, '\\')
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return b
}

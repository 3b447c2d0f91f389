package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	stdcsv "encoding/csv"

	"github.com/sextant-telemetry/sextant/exporters"
)

// ContentType is the media type of what Encode writes (RFC 4180 with the
// header parameter of RFC 7111).
const ContentType = "text/csv; charset=utf-8; header=present"

// The fixed columns, in order; the label columns follow them.
const (
	colTime = iota
	colName
	colPromName
	colType
	colUnit
	colSample
	colLE
	colValue
	colStartTime
	colExemplarTraceID
	colExemplarSpanID
	colExemplarValue
	fixedColumns
)

// columns are the names of the fixed columns, in order (docs/exports.md).
var columns = [fixedColumns]string{
	"time", "name", "prom_name", "type", "unit", "sample", "le", "value",
	"start_time", "exemplar_trace_id", "exemplar_span_id", "exemplar_value",
}

// LabelPrefix starts the name of every label column: label_namespace holds
// the namespace label.
const LabelPrefix = "label_"

// The suffixes of a histogram's samples, as Prometheus names them.
const (
	suffixBucket = "_bucket"
	suffixSum    = "_sum"
	suffixCount  = "_count"
)

// bom is the byte order mark Options.BOM writes.
const bom = "\uFEFF"

// Options say how Encode writes.
type Options struct {
	// BOM starts the table with a UTF-8 byte order mark, so that Excel
	// opened by a double click reads it as UTF-8 rather than the
	// system's code page. pandas and Decode skip it.
	BOM bool
}

// Encode writes s as one CSV table with a header row. The columns are
// time, name, prom_name, type, unit, sample, le, value, start_time,
// exemplar_trace_id, exemplar_span_id, exemplar_value, then one
// label_<name> column per label name found in s, sorted by name, empty
// where a series lacks the label. Each counter or gauge series is one row
// whose sample is its prom_name; each histogram series is one row per
// bucket (sample <prom_name>_bucket, le its bound, value its cumulative
// count), then one <prom_name>_sum row and one <prom_name>_count row.
// value and le are strconv's shortest 'g' digits (NaN, +Inf, -Inf
// included), counts are integers, and times are RFC 3339 in UTC with
// nanoseconds (empty when zero). Exemplar columns are filled on counter,
// gauge and bucket rows that have one. Rows follow s's order. It fails for
// a nil snapshot and for a time outside years 0 to 9999. It does not keep
// s.
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
	labelNames := labelColumns(s)
	e := &encoder{
		w:      stdcsv.NewWriter(w),
		record: make([]string, fixedColumns+len(labelNames)),
		column: make(map[string]int, len(labelNames)),
	}
	copy(e.record, columns[:])
	for i, name := range labelNames {
		e.record[fixedColumns+i] = LabelPrefix + name
		e.column[name] = fixedColumns + i
	}
	if opts.BOM {
		e.record[0] = bom + e.record[0]
	}
	if err := e.w.Write(e.record); err != nil {
		return err
	}
	for i := range s.Families {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := e.family(&s.Families[i]); err != nil {
			return fmt.Errorf("family %s: %w", s.Families[i].PromName, err)
		}
	}
	e.w.Flush()
	return e.w.Error()
}

// labelColumns returns every label name in s, sorted.
func labelColumns(s *exporters.Snapshot) []string {
	seen := map[string]struct{}{}
	var names []string
	for i := range s.Families {
		for j := range s.Families[i].Series {
			for _, l := range s.Families[i].Series[j].Labels {
				if _, ok := seen[l.Name]; !ok {
					seen[l.Name] = struct{}{}
					names = append(names, l.Name)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

type encoder struct {
	w      *stdcsv.Writer
	record []string
	column map[string]int // label name to column
}

func (e *encoder) family(f *exporters.Family) error {
	r := e.record
	r[colName], r[colPromName], r[colType], r[colUnit] = f.Name, f.PromName, string(f.Type), f.Unit
	for j := range f.Series {
		s := &f.Series[j]
		for k := fixedColumns; k < len(r); k++ {
			r[k] = ""
		}
		for _, l := range s.Labels {
			r[e.column[l.Name]] = l.Value
		}
		var err error
		if r[colTime], err = formatTime(s.Time); err != nil {
			return err
		}
		if r[colStartTime], err = formatTime(s.Start); err != nil {
			return err
		}
		if s.Histogram == nil {
			r[colSample], r[colLE], r[colValue] = f.PromName, "", formatFloat(s.Value)
			if err := e.row(s.Exemplar); err != nil {
				return err
			}
			continue
		}
		h := s.Histogram
		r[colSample] = f.PromName + suffixBucket
		for k := range h.Buckets {
			b := &h.Buckets[k]
			r[colLE], r[colValue] = formatFloat(b.UpperBound), strconv.FormatUint(b.Count, 10)
			if err := e.row(b.Exemplar); err != nil {
				return err
			}
		}
		r[colSample], r[colLE], r[colValue] = f.PromName+suffixSum, "", formatFloat(h.Sum)
		if err := e.row(nil); err != nil {
			return err
		}
		r[colSample], r[colValue] = f.PromName+suffixCount, strconv.FormatUint(h.Count, 10)
		if err := e.row(nil); err != nil {
			return err
		}
	}
	return nil
}

// row writes the record with x in the exemplar columns.
func (e *encoder) row(x *exporters.Exemplar) error {
	r := e.record
	if x == nil {
		r[colExemplarTraceID], r[colExemplarSpanID], r[colExemplarValue] = "", "", ""
	} else {
		r[colExemplarTraceID], r[colExemplarSpanID], r[colExemplarValue] = x.TraceID, x.SpanID, formatFloat(x.Value)
	}
	return e.w.Write(r)
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// formatTime formats t as RFC 3339 in UTC, "" when zero.
func formatTime(t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %s: year outside 0 to 9999", t)
	}
	return t.Format(time.RFC3339Nano), nil
}

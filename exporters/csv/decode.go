package csv

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	stdcsv "encoding/csv"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Decode reads a table as Encode writes it and rebuilds the snapshot:
// consecutive rows with one prom_name are a family (a prom_name may not
// come back later), each counter or gauge row a series, and each run of
// _bucket rows followed by a _sum and a _count row with the same labels
// and times a histogram series, which must keep the Histogram contract.
// Labels are the non-empty label_ cells, sorted by name. The snapshot's
// Time is the latest series time, and its Resource is empty: the table
// does not carry them. The header must start with the fixed columns, in
// order; the label columns may come in any order but not twice. A leading
// byte order mark is skipped. Errors say on which line the problem is.
func Decode(r io.Reader) (*exporters.Snapshot, error) {
	cr := stdcsv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("decode csv: empty input; want a header row")
	}
	if err != nil {
		return nil, fmt.Errorf("decode csv: %w", err)
	}
	d := &decoder{s: &exporters.Snapshot{}}
	if err := d.header(header); err != nil {
		return nil, fmt.Errorf("decode csv: line 1: %w", err)
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if err := d.row(rec); err != nil {
			return nil, fmt.Errorf("decode csv: line %d: %w", line, err)
		}
	}
	if err := d.endFamily(); err != nil {
		return nil, fmt.Errorf("decode csv: at the end: %w", err)
	}
	return d.s, nil
}

type decoder struct {
	s          *exporters.Snapshot
	labelNames []string            // by column, from fixedColumns on
	seen       map[string]struct{} // prom_names of finished families
	family     *exporters.Family   // the family being read, nil before the first row
	open       *exporters.Series   // the histogram series being read
	sumSeen    bool                // whether open has had its _sum row
}

func (d *decoder) header(h []string) error {
	if len(h) > 0 {
		h[0] = strings.TrimPrefix(h[0], bom)
	}
	if len(h) < fixedColumns {
		return fmt.Errorf("header has %d columns; want at least the %d of %s", len(h), fixedColumns, strings.Join(columns[:], ","))
	}
	for i, name := range columns {
		if h[i] != name {
			return fmt.Errorf("column %d: want %q, got %q", i+1, name, h[i])
		}
	}
	seen := map[string]struct{}{}
	for i, col := range h[fixedColumns:] {
		name, ok := strings.CutPrefix(col, LabelPrefix)
		if !ok || name == "" {
			return fmt.Errorf("column %d: want %s<label name>, got %q", fixedColumns+i+1, LabelPrefix, col)
		}
		if _, dup := seen[name]; dup {
			return fmt.Errorf("column %d: %q comes twice", fixedColumns+i+1, col)
		}
		seen[name] = struct{}{}
		d.labelNames = append(d.labelNames, name)
	}
	d.seen = map[string]struct{}{}
	return nil
}

func (d *decoder) row(r []string) error {
	promName, typ := r[colPromName], exporters.MetricType(r[colType])
	if promName == "" {
		return errors.New("prom_name: empty")
	}
	switch typ {
	case exporters.TypeCounter, exporters.TypeGauge, exporters.TypeHistogram:
	default:
		return fmt.Errorf("type: want counter, gauge or histogram, got %q", r[colType])
	}
	if d.family == nil || d.family.PromName != promName {
		if err := d.endFamily(); err != nil {
			return err
		}
		if _, dup := d.seen[promName]; dup {
			return fmt.Errorf("prom_name: family %s came earlier; a family's rows must be together", promName)
		}
		d.s.Families = append(d.s.Families, exporters.Family{Name: r[colName], PromName: promName, Type: typ, Unit: r[colUnit]})
		d.family = &d.s.Families[len(d.s.Families)-1]
	}
	f := d.family
	switch {
	case r[colName] != f.Name:
		return fmt.Errorf("name: %q, but the family's first row has %q", r[colName], f.Name)
	case typ != f.Type:
		return fmt.Errorf("type: %q, but the family's first row has %q", typ, f.Type)
	case r[colUnit] != f.Unit:
		return fmt.Errorf("unit: %q, but the family's first row has %q", r[colUnit], f.Unit)
	}

	s := exporters.Series{Labels: d.labels(r)}
	var err error
	if s.Time, err = parseTime("time", r[colTime]); err != nil {
		return err
	}
	if s.Start, err = parseTime("start_time", r[colStartTime]); err != nil {
		return err
	}
	if s.Time.After(d.s.Time) {
		d.s.Time = s.Time
	}
	exemplar, err := parseExemplar(r)
	if err != nil {
		return err
	}
	if typ == exporters.TypeHistogram {
		return d.histogramRow(r, s, exemplar)
	}
	if r[colSample] != promName {
		return fmt.Errorf("sample: a %s's is its prom_name %s, got %q", typ, promName, r[colSample])
	}
	if r[colLE] != "" {
		return fmt.Errorf("le: only _bucket rows have one, got %q", r[colLE])
	}
	if s.Value, err = parseFloat("value", r[colValue]); err != nil {
		return err
	}
	s.Exemplar = exemplar
	f.Series = append(f.Series, s)
	return nil
}

// histogramRow adds a _bucket, _sum or _count row to the open histogram
// series, opening one at a _bucket row when none is.
func (d *decoder) histogramRow(r []string, s exporters.Series, exemplar *exporters.Exemplar) error {
	f := d.family
	sample := r[colSample]
	suffix, ok := strings.CutPrefix(sample, f.PromName)
	if !ok || (suffix != suffixBucket && suffix != suffixSum && suffix != suffixCount) {
		return fmt.Errorf("sample: want %s_bucket, _sum or _count, got %q", f.PromName, sample)
	}
	if suffix != suffixBucket && (r[colLE] != "" || exemplar != nil) {
		return fmt.Errorf("%s: only _bucket rows have le and an exemplar", sample)
	}
	if d.open == nil {
		if suffix != suffixBucket {
			return fmt.Errorf("sample: %s before any %s_bucket row", sample, f.PromName)
		}
		f.Series = append(f.Series, exporters.Series{Labels: s.Labels, Start: s.Start, Time: s.Time, Histogram: &exporters.Histogram{}})
		d.open, d.sumSeen = &f.Series[len(f.Series)-1], false
	} else if !slices.Equal(d.open.Labels, s.Labels) || !d.open.Time.Equal(s.Time) || !d.open.Start.Equal(s.Start) {
		return fmt.Errorf("%s: labels or times differ from the histogram's earlier rows; its _count row is missing", sample)
	}
	h := d.open.Histogram
	switch suffix {
	case suffixBucket:
		if d.sumSeen {
			return fmt.Errorf("sample: %s after %s_sum", sample, f.PromName)
		}
		le, err := parseFloat("le", r[colLE])
		if err != nil {
			return err
		}
		count, err := parseUint("value", r[colValue])
		if err != nil {
			return err
		}
		h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: le, Count: count, Exemplar: exemplar})
	case suffixSum:
		if d.sumSeen {
			return fmt.Errorf("sample: a second %s", sample)
		}
		sum, err := parseFloat("value", r[colValue])
		if err != nil {
			return err
		}
		h.Sum, d.sumSeen = sum, true
	case suffixCount:
		if !d.sumSeen {
			return fmt.Errorf("sample: %s before %s_sum", sample, f.PromName)
		}
		count, err := parseUint("value", r[colValue])
		if err != nil {
			return err
		}
		h.Count = count
		if err := checkHistogram(h); err != nil {
			return fmt.Errorf("histogram: %w", err)
		}
		d.open = nil
	}
	return nil
}

// endFamily finishes the family being read: its last histogram must be
// whole.
func (d *decoder) endFamily() error {
	if d.family == nil {
		return nil
	}
	if d.open != nil {
		return fmt.Errorf("histogram %s %v: no _count row", d.family.PromName, d.open.Labels)
	}
	d.seen[d.family.PromName] = struct{}{}
	return nil
}

// labels returns the row's non-empty label cells, sorted by name.
func (d *decoder) labels(r []string) []exporters.Label {
	var out []exporters.Label
	for i, name := range d.labelNames {
		if v := r[fixedColumns+i]; v != "" {
			out = append(out, exporters.Label{Name: name, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b exporters.Label) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func parseExemplar(r []string) (*exporters.Exemplar, error) {
	if r[colExemplarValue] == "" {
		if r[colExemplarTraceID] != "" || r[colExemplarSpanID] != "" {
			return nil, errors.New("exemplar_value: empty, but the exemplar has a trace or span ID")
		}
		return nil, nil
	}
	v, err := parseFloat("exemplar_value", r[colExemplarValue])
	if err != nil {
		return nil, err
	}
	return &exporters.Exemplar{Value: v, TraceID: r[colExemplarTraceID], SpanID: r[colExemplarSpanID]}, nil
}

// checkHistogram checks the Histogram contract.
func checkHistogram(h *exporters.Histogram) error {
	for k, b := range h.Buckets {
		if math.IsNaN(b.UpperBound) {
			return fmt.Errorf("bucket %d: le is NaN", k+1)
		}
		if k == 0 {
			continue
		}
		prev := h.Buckets[k-1]
		if b.UpperBound <= prev.UpperBound {
			return fmt.Errorf("bucket %d: le %v after %v; bounds must increase", k+1, b.UpperBound, prev.UpperBound)
		}
		if b.Count < prev.Count {
			return fmt.Errorf("bucket %d: count %d after %d; counts are cumulative", k+1, b.Count, prev.Count)
		}
	}
	last := h.Buckets[len(h.Buckets)-1]
	if !math.IsInf(last.UpperBound, 1) {
		return fmt.Errorf("the last bucket's le is +Inf, got %v", last.UpperBound)
	}
	if last.Count != h.Count {
		return fmt.Errorf("_count is %d, but the +Inf bucket holds %d", h.Count, last.Count)
	}
	return nil
}

func parseFloat(col, s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want a number (NaN, +Inf and -Inf included), got %q", col, s)
	}
	return v, nil
}

func parseUint(col, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want a count (a whole number from 0), got %q", col, s)
	}
	return v, nil
}

// parseTime parses an RFC 3339 time; an empty cell is the zero time.
func parseTime(col, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time, got %q", col, s)
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		// An offset can take a time out of the years RFC 3339 can
		// write in UTC, which is how it would be written back.
		return time.Time{}, fmt.Errorf("%s: %q is outside years 0 to 9999 in UTC", col, s)
	}
	return t, nil
}

package json

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	stdjson "encoding/json"

	"github.com/sextant-telemetry/sextant/exporters"
)

// The document as encoding/json reads it. Pointers tell a field that is
// missing from one that holds a zero.
type (
	wireSnapshot struct {
		Schema      string        `json:"schema"`
		Time        *string       `json:"time"`
		Resource    *wireResource `json:"resource"`
		SeriesCount *int          `json:"series_count"`
		Families    []wireFamily  `json:"families"`
	}
	wireResource struct {
		ServiceName string            `json:"service_name"`
		Instance    string            `json:"instance"`
		Attributes  map[string]string `json:"attributes"`
	}
	wireFamily struct {
		Name        string       `json:"name"`
		PromName    string       `json:"prom_name"`
		Type        string       `json:"type"`
		Unit        string       `json:"unit"`
		Description string       `json:"description"`
		Series      []wireSeries `json:"series"`
	}
	wireSeries struct {
		Labels    map[string]string `json:"labels"`
		Value     *wireFloat        `json:"value"`
		StartTime *string           `json:"start_time"`
		Time      *string           `json:"time"`
		Exemplar  *wireExemplar     `json:"exemplar"`
		Histogram *wireHistogram    `json:"histogram"`
	}
	wireHistogram struct {
		Count   *uint64      `json:"count"`
		Sum     *wireFloat   `json:"sum"`
		Buckets []wireBucket `json:"buckets"`
	}
	wireBucket struct {
		LE       *wireFloat    `json:"le"`
		Count    *uint64       `json:"count"`
		Exemplar *wireExemplar `json:"exemplar"`
	}
	wireExemplar struct {
		Value   *wireFloat        `json:"value"`
		Time    *string           `json:"time"`
		TraceID string            `json:"trace_id"`
		SpanID  string            `json:"span_id"`
		Labels  map[string]string `json:"labels"`
	}
)

// wireFloat is a float64 written as a JSON number or as one of the strings
// "NaN", "+Inf" and "-Inf".
type wireFloat float64

func (f *wireFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = wireFloat(math.NaN())
		return nil
	case `"+Inf"`:
		*f = wireFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = wireFloat(math.Inf(-1))
		return nil
	}
	if len(b) == 0 || b[0] == '"' || b[0] == 'n' || b[0] == 't' || b[0] == 'f' || b[0] == '{' || b[0] == '[' {
		return fmt.Errorf(`want a number, "NaN", "+Inf" or "-Inf", got %s`, b)
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("number %s: out of float64's range", b)
	}
	*f = wireFloat(v)
	return nil
}

// Decode reads one sextant.metrics/v1 document, as Encode writes it, back
// into a snapshot. It is strict about what carries data and lenient about
// the rest: the schema must be sextant.metrics/v1; every number must be
// present and valid (value on counters and gauges, histogram with count,
// sum and buckets on histograms, le and count on buckets, value on
// exemplars); types must be counter, gauge or histogram; histograms must
// keep their contract (strictly increasing bounds ending at +Inf,
// cumulative counts, the +Inf count equal to count); label names must not
// be empty; series_count, when present, must match; nothing may follow
// the document. Fields it does not know are ignored, so that documents of
// a later, additive revision of v1 still read. Labels come back sorted by
// name; families and series keep the document's order. A missing time is
// the zero time.
func Decode(r io.Reader) (*exporters.Snapshot, error) {
	dec := stdjson.NewDecoder(r)
	var w wireSnapshot
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("decode %s: %w", Schema, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode %s: data after the document", Schema)
	}
	s, err := w.snapshot()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", Schema, err)
	}
	return s, nil
}

func (w *wireSnapshot) snapshot() (*exporters.Snapshot, error) {
	if w.Schema != Schema {
		return nil, fmt.Errorf("schema: want %q, got %q", Schema, w.Schema)
	}
	s := &exporters.Snapshot{}
	var err error
	if s.Time, err = parseTime("time", w.Time); err != nil {
		return nil, err
	}
	if w.Resource != nil {
		s.Resource = exporters.Resource{ServiceName: w.Resource.ServiceName, Instance: w.Resource.Instance}
		if s.Resource.Attributes, err = labels("resource.attributes", w.Resource.Attributes); err != nil {
			return nil, err
		}
	}
	if w.Families == nil {
		return nil, errors.New("families: missing")
	}
	s.Families = make([]exporters.Family, len(w.Families))
	for i := range w.Families {
		if err := w.Families[i].family(fmt.Sprintf("families[%d]", i), &s.Families[i]); err != nil {
			return nil, err
		}
	}
	if w.SeriesCount != nil && *w.SeriesCount != s.SeriesCount() {
		return nil, fmt.Errorf("series_count: %d, but the families hold %d series", *w.SeriesCount, s.SeriesCount())
	}
	return s, nil
}

func (w *wireFamily) family(path string, f *exporters.Family) error {
	*f = exporters.Family{Name: w.Name, PromName: w.PromName, Type: exporters.MetricType(w.Type), Unit: w.Unit, Description: w.Description}
	if w.PromName == "" {
		return fmt.Errorf("%s.prom_name: missing", path)
	}
	switch f.Type {
	case exporters.TypeCounter, exporters.TypeGauge, exporters.TypeHistogram:
	default:
		return fmt.Errorf("%s.type: want counter, gauge or histogram, got %q", path, w.Type)
	}
	if len(w.Series) > 0 {
		f.Series = make([]exporters.Series, len(w.Series))
	}
	for j := range w.Series {
		if err := w.Series[j].series(fmt.Sprintf("%s.series[%d]", path, j), f.Type, &f.Series[j]); err != nil {
			return err
		}
	}
	return nil
}

func (w *wireSeries) series(path string, t exporters.MetricType, s *exporters.Series) error {
	var err error
	if s.Labels, err = labels(path+".labels", w.Labels); err != nil {
		return err
	}
	if s.Start, err = parseTime(path+".start_time", w.StartTime); err != nil {
		return err
	}
	if s.Time, err = parseTime(path+".time", w.Time); err != nil {
		return err
	}
	if s.Exemplar, err = w.Exemplar.exemplar(path + ".exemplar"); err != nil {
		return err
	}
	if t != exporters.TypeHistogram {
		if w.Histogram != nil {
			return fmt.Errorf("%s.histogram: a %s has none", path, t)
		}
		if w.Value == nil {
			return fmt.Errorf("%s.value: missing", path)
		}
		s.Value = float64(*w.Value)
		return nil
	}
	if w.Value != nil {
		return fmt.Errorf("%s.value: a histogram has buckets, sum and count instead", path)
	}
	if w.Histogram == nil {
		return fmt.Errorf("%s.histogram: missing", path)
	}
	s.Histogram, err = w.Histogram.histogram(path + ".histogram")
	return err
}

func (w *wireHistogram) histogram(path string) (*exporters.Histogram, error) {
	if w.Count == nil {
		return nil, fmt.Errorf("%s.count: missing", path)
	}
	if w.Sum == nil {
		return nil, fmt.Errorf("%s.sum: missing", path)
	}
	if len(w.Buckets) == 0 {
		return nil, fmt.Errorf("%s.buckets: missing; the last is le \"+Inf\"", path)
	}
	h := &exporters.Histogram{Count: *w.Count, Sum: float64(*w.Sum), Buckets: make([]exporters.Bucket, len(w.Buckets))}
	for k, wb := range w.Buckets {
		bp := fmt.Sprintf("%s.buckets[%d]", path, k)
		if wb.LE == nil {
			return nil, fmt.Errorf("%s.le: missing", bp)
		}
		if wb.Count == nil {
			return nil, fmt.Errorf("%s.count: missing", bp)
		}
		ex, err := wb.Exemplar.exemplar(bp + ".exemplar")
		if err != nil {
			return nil, err
		}
		h.Buckets[k] = exporters.Bucket{UpperBound: float64(*wb.LE), Count: *wb.Count, Exemplar: ex}
	}
	if err := checkHistogram(h); err != nil {
		return nil, fmt.Errorf("%s.%w", path, err)
	}
	return h, nil
}

// checkHistogram checks the Histogram contract; the error starts with the
// field at fault.
func checkHistogram(h *exporters.Histogram) error {
	for k, b := range h.Buckets {
		if math.IsNaN(b.UpperBound) {
			return fmt.Errorf("buckets[%d].le: NaN", k)
		}
		if k == 0 {
			continue
		}
		prev := h.Buckets[k-1]
		if b.UpperBound <= prev.UpperBound {
			return fmt.Errorf("buckets[%d].le: %v after %v; bounds must increase", k, b.UpperBound, prev.UpperBound)
		}
		if b.Count < prev.Count {
			return fmt.Errorf("buckets[%d].count: %d after %d; counts are cumulative", k, b.Count, prev.Count)
		}
	}
	last := h.Buckets[len(h.Buckets)-1]
	if !math.IsInf(last.UpperBound, 1) {
		return fmt.Errorf("buckets[%d].le: the last bucket's is +Inf, got %v", len(h.Buckets)-1, last.UpperBound)
	}
	if last.Count != h.Count {
		return fmt.Errorf("count: %d, but the +Inf bucket holds %d", h.Count, last.Count)
	}
	return nil
}

func (w *wireExemplar) exemplar(path string) (*exporters.Exemplar, error) {
	if w == nil {
		return nil, nil
	}
	if w.Value == nil {
		return nil, fmt.Errorf("%s.value: missing", path)
	}
	e := &exporters.Exemplar{Value: float64(*w.Value), TraceID: w.TraceID, SpanID: w.SpanID}
	var err error
	if e.Time, err = parseTime(path+".time", w.Time); err != nil {
		return nil, err
	}
	if e.Labels, err = labels(path+".labels", w.Labels); err != nil {
		return nil, err
	}
	return e, nil
}

// labels returns m sorted by name, nil when empty.
func labels(path string, m map[string]string) ([]exporters.Label, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]exporters.Label, 0, len(m))
	for name, v := range m {
		if name == "" {
			return nil, fmt.Errorf("%s: empty label name", path)
		}
		out = append(out, exporters.Label{Name: name, Value: v})
	}
	slices.SortFunc(out, func(a, b exporters.Label) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// parseTime parses an RFC 3339 time; a missing one is the zero time.
func parseTime(path string, s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time, got %q", path, *s)
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		// An offset can take a time out of the years RFC 3339 can
		// write in UTC, which is how it would be written back.
		return time.Time{}, fmt.Errorf("%s: %q is outside years 0 to 9999 in UTC", path, *s)
	}
	return t, nil
}

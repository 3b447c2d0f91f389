package snapshottest

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Diff returns every difference between want and got, each prefixed with
// where it is (families[2].series[0].histogram.buckets[3].count); none when
// they agree. Floats agree when both are NaN or their bits are equal (so 0
// and -0 differ), times when they are the same instant, and a nil list
// agrees with an empty one.
func Diff(want, got *exporters.Snapshot) []string {
	var d differ
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil || got == nil:
		return []string{fmt.Sprintf("snapshot: want %v, got %v", want, got)}
	}
	d.str("resource.service_name", want.Resource.ServiceName, got.Resource.ServiceName)
	d.str("resource.instance", want.Resource.Instance, got.Resource.Instance)
	d.labels("resource.attributes", want.Resource.Attributes, got.Resource.Attributes)
	d.time("time", want.Time, got.Time)
	if len(want.Families) != len(got.Families) {
		d.addf("families: want %d, got %d: %v vs %v", len(want.Families), len(got.Families), promNames(want), promNames(got))
		return d.out
	}
	for i := range want.Families {
		d.family(fmt.Sprintf("families[%d]", i), &want.Families[i], &got.Families[i])
	}
	return d.out
}

func promNames(s *exporters.Snapshot) []string {
	out := make([]string, len(s.Families))
	for i, f := range s.Families {
		out[i] = f.PromName
	}
	return out
}

type differ struct{ out []string }

func (d *differ) addf(format string, args ...any) {
	d.out = append(d.out, fmt.Sprintf(format, args...))
}

func (d *differ) str(path, want, got string) {
	if want != got {
		d.addf("%s: want %q, got %q", path, want, got)
	}
}

func (d *differ) float(path string, want, got float64) {
	if !SameFloat(want, got) {
		d.addf("%s: want %v, got %v", path, want, got)
	}
}

func (d *differ) uint(path string, want, got uint64) {
	if want != got {
		d.addf("%s: want %d, got %d", path, want, got)
	}
}

func (d *differ) time(path string, want, got time.Time) {
	if !want.Equal(got) {
		d.addf("%s: want %s, got %s", path, want.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
	}
}

func (d *differ) labels(path string, want, got []exporters.Label) {
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !slices.Equal(want, got) {
		d.addf("%s: want %q, got %q", path, want, got)
	}
}

func (d *differ) family(path string, want, got *exporters.Family) {
	d.str(path+".name", want.Name, got.Name)
	d.str(path+".prom_name", want.PromName, got.PromName)
	d.str(path+".type", string(want.Type), string(got.Type))
	d.str(path+".unit", want.Unit, got.Unit)
	d.str(path+".description", want.Description, got.Description)
	if len(want.Series) != len(got.Series) {
		d.addf("%s.series: want %d, got %d", path, len(want.Series), len(got.Series))
		return
	}
	for j := range want.Series {
		d.series(fmt.Sprintf("%s.series[%d]", path, j), &want.Series[j], &got.Series[j])
	}
}

func (d *differ) series(path string, want, got *exporters.Series) {
	d.labels(path+".labels", want.Labels, got.Labels)
	d.float(path+".value", want.Value, got.Value)
	d.time(path+".start_time", want.Start, got.Start)
	d.time(path+".time", want.Time, got.Time)
	d.exemplar(path+".exemplar", want.Exemplar, got.Exemplar)
	switch {
	case want.Histogram == nil && got.Histogram == nil:
	case want.Histogram == nil || got.Histogram == nil:
		d.addf("%s.histogram: want %v, got %v", path, want.Histogram, got.Histogram)
	default:
		wh, gh := want.Histogram, got.Histogram
		d.uint(path+".histogram.count", wh.Count, gh.Count)
		d.float(path+".histogram.sum", wh.Sum, gh.Sum)
		if len(wh.Buckets) != len(gh.Buckets) {
			d.addf("%s.histogram.buckets: want %d, got %d", path, len(wh.Buckets), len(gh.Buckets))
			return
		}
		for k := range wh.Buckets {
			bp := fmt.Sprintf("%s.histogram.buckets[%d]", path, k)
			d.float(bp+".le", wh.Buckets[k].UpperBound, gh.Buckets[k].UpperBound)
			d.uint(bp+".count", wh.Buckets[k].Count, gh.Buckets[k].Count)
			d.exemplar(bp+".exemplar", wh.Buckets[k].Exemplar, gh.Buckets[k].Exemplar)
		}
	}
}

func (d *differ) exemplar(path string, want, got *exporters.Exemplar) {
	switch {
	case want == nil && got == nil:
		return
	case want == nil || got == nil:
		d.addf("%s: want %v, got %v", path, want, got)
		return
	}
	d.float(path+".value", want.Value, got.Value)
	d.time(path+".time", want.Time, got.Time)
	d.str(path+".trace_id", want.TraceID, got.TraceID)
	d.str(path+".span_id", want.SpanID, got.SpanID)
	d.labels(path+".labels", want.Labels, got.Labels)
}

// SameFloat reports whether a and b are the same float64: both NaN, or
// equal bits.
func SameFloat(a, b float64) bool {
	return math.IsNaN(a) && math.IsNaN(b) || math.Float64bits(a) == math.Float64bits(b)
}

// Clone returns a deep copy of s, for tests that change a snapshot into
// what a lossy format can carry.
func Clone(s *exporters.Snapshot) *exporters.Snapshot {
	c := *s
	c.Resource.Attributes = slices.Clone(s.Resource.Attributes)
	c.Families = slices.Clone(s.Families)
	for i := range c.Families {
		f := &c.Families[i]
		f.Series = slices.Clone(f.Series)
		for j := range f.Series {
			sr := &f.Series[j]
			sr.Labels = slices.Clone(sr.Labels)
			sr.Exemplar = cloneExemplar(sr.Exemplar)
			if sr.Histogram != nil {
				h := *sr.Histogram
				h.Buckets = slices.Clone(h.Buckets)
				for k := range h.Buckets {
					h.Buckets[k].Exemplar = cloneExemplar(h.Buckets[k].Exemplar)
				}
				sr.Histogram = &h
			}
		}
	}
	return &c
}

func cloneExemplar(e *exporters.Exemplar) *exporters.Exemplar {
	if e == nil {
		return nil
	}
	c := *e
	c.Labels = slices.Clone(e.Labels)
	return &c
}

package snapshottest

import (
	"fmt"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Collector serves a snapshot's counters, gauges and histograms through
// client_golang, as const metrics with their exemplars, the way the
// OpenTelemetry Prometheus exporter serves what it collects. It is what
// benchmarks compare the snapshot encoders with: a registry holding it
// gathers exactly the series of the snapshot.
type Collector struct {
	families []collectorFamily
}

type collectorFamily struct {
	desc   *prometheus.Desc
	family exporters.Family
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of s's families. Every series of a
// family must have the same label names, as in client_golang; families
// with no series are left out, as client_golang gathers none.
func NewCollector(s *exporters.Snapshot) (*Collector, error) {
	c := &Collector{}
	for _, f := range s.Families {
		if len(f.Series) == 0 {
			continue
		}
		names := make([]string, len(f.Series[0].Labels))
		for i, l := range f.Series[0].Labels {
			names[i] = l.Name
		}
		for _, sr := range f.Series {
			if len(sr.Labels) != len(names) {
				return nil, fmt.Errorf("family %s: series have different label names", f.PromName)
			}
			for i, l := range sr.Labels {
				if l.Name != names[i] {
					return nil, fmt.Errorf("family %s: series have different label names", f.PromName)
				}
			}
		}
		c.families = append(c.families, collectorFamily{desc: prometheus.NewDesc(f.PromName, f.Description, names, nil), family: f})
	}
	return c, nil
}

// Describe sends nothing: the collector is unchecked, as the OpenTelemetry
// exporter is.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends one const metric per series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, cf := range c.families {
		for _, sr := range cf.family.Series {
			values := make([]string, len(sr.Labels))
			for i, l := range sr.Labels {
				values[i] = l.Value
			}
			m, exemplars := constMetric(cf.desc, cf.family.Type, sr, values)
			if len(exemplars) > 0 {
				if withEx, err := prometheus.NewMetricWithExemplars(m, exemplars...); err == nil {
					m = withEx
				}
			}
			ch <- m
		}
	}
}

func constMetric(desc *prometheus.Desc, t exporters.MetricType, sr exporters.Series, values []string) (prometheus.Metric, []prometheus.Exemplar) {
	switch t {
	case exporters.TypeCounter:
		var ex []prometheus.Exemplar
		if sr.Exemplar != nil {
			ex = append(ex, promExemplar(sr.Exemplar))
		}
		return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, sr.Value, values...), ex
	case exporters.TypeGauge:
		return prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, sr.Value, values...), nil
	default:
		buckets := make(map[float64]uint64, len(sr.Histogram.Buckets))
		var ex []prometheus.Exemplar
		for _, b := range sr.Histogram.Buckets {
			if !math.IsInf(b.UpperBound, 1) {
				buckets[b.UpperBound] = b.Count
			}
			if b.Exemplar != nil {
				ex = append(ex, promExemplar(b.Exemplar))
			}
		}
		return prometheus.MustNewConstHistogram(desc, sr.Histogram.Count, sr.Histogram.Sum, buckets, values...), ex
	}
}

func promExemplar(e *exporters.Exemplar) prometheus.Exemplar {
	labels := prometheus.Labels{}
	if e.TraceID != "" {
		labels["trace_id"] = e.TraceID
	}
	if e.SpanID != "" {
		labels["span_id"] = e.SpanID
	}
	for _, l := range e.Labels {
		labels[l.Name] = l.Value
	}
	return prometheus.Exemplar{Value: e.Value, Labels: labels, Timestamp: e.Time}
}

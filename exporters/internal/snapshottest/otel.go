package snapshottest

import (
	"encoding/hex"
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/exporters"
)

// ScopeName is the instrumentation scope of [ResourceMetrics]' metrics.
const ScopeName = "github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"

// ResourceMetrics returns the OpenTelemetry collection that s would have
// been read from: one scope, a float64 monotonic sum per counter, a float64
// gauge per gauge and a float64 cumulative histogram per histogram, with
// the exemplars s holds. Label names become attribute keys as they are, so
// exporters.FromResourceMetrics gives s back when s's names are the
// default translation strategy's, as [Generate]'s are. Families with no
// series are left out, as no SDK collects them.
func ResourceMetrics(s *exporters.Snapshot) *metricdata.ResourceMetrics {
	attrs := make([]attribute.KeyValue, 0, len(s.Resource.Attributes)+2)
	attrs = append(attrs, attribute.String("service.name", s.Resource.ServiceName))
	if s.Resource.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", s.Resource.Instance))
	}
	for _, a := range s.Resource.Attributes {
		attrs = append(attrs, attribute.String(a.Name, a.Value))
	}
	sm := metricdata.ScopeMetrics{Scope: instrumentation.Scope{Name: ScopeName}}
	for _, f := range s.Families {
		if len(f.Series) == 0 {
			continue
		}
		m := metricdata.Metrics{Name: f.Name, Description: f.Description, Unit: f.Unit}
		switch f.Type {
		case exporters.TypeCounter:
			d := metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
			for _, sr := range f.Series {
				dp := metricdata.DataPoint[float64]{Attributes: attrSet(sr.Labels), StartTime: sr.Start, Time: sr.Time, Value: sr.Value}
				if sr.Exemplar != nil {
					dp.Exemplars = []metricdata.Exemplar[float64]{otelExemplar(sr.Exemplar)}
				}
				d.DataPoints = append(d.DataPoints, dp)
			}
			m.Data = d
		case exporters.TypeGauge:
			d := metricdata.Gauge[float64]{}
			for _, sr := range f.Series {
				d.DataPoints = append(d.DataPoints, metricdata.DataPoint[float64]{Attributes: attrSet(sr.Labels), StartTime: sr.Start, Time: sr.Time, Value: sr.Value})
			}
			m.Data = d
		case exporters.TypeHistogram:
			d := metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality}
			for _, sr := range f.Series {
				d.DataPoints = append(d.DataPoints, otelHistogram(sr))
			}
			m.Data = d
		}
		sm.Metrics = append(sm.Metrics, m)
	}
	return &metricdata.ResourceMetrics{
		Resource:     resource.NewSchemaless(attrs...),
		ScopeMetrics: []metricdata.ScopeMetrics{sm},
	}
}

// otelHistogram converts a histogram series into a data point: bounds
// without +Inf and per-bucket (not cumulative) counts.
func otelHistogram(sr exporters.Series) metricdata.HistogramDataPoint[float64] {
	h := sr.Histogram
	dp := metricdata.HistogramDataPoint[float64]{
		Attributes: attrSet(sr.Labels), StartTime: sr.Start, Time: sr.Time,
		Count: h.Count, Sum: h.Sum,
	}
	var prev uint64
	for _, b := range h.Buckets {
		if !math.IsInf(b.UpperBound, 1) {
			dp.Bounds = append(dp.Bounds, b.UpperBound)
		}
		dp.BucketCounts = append(dp.BucketCounts, b.Count-prev)
		prev = b.Count
		if b.Exemplar != nil {
			dp.Exemplars = append(dp.Exemplars, otelExemplar(b.Exemplar))
		}
	}
	return dp
}

func otelExemplar(e *exporters.Exemplar) metricdata.Exemplar[float64] {
	out := metricdata.Exemplar[float64]{Value: e.Value, Time: e.Time}
	out.TraceID, _ = hex.DecodeString(e.TraceID) // the snapshot's IDs are hex
	out.SpanID, _ = hex.DecodeString(e.SpanID)
	for _, l := range e.Labels {
		out.FilteredAttributes = append(out.FilteredAttributes, attribute.String(l.Name, l.Value))
	}
	return out
}

func attrSet(labels []exporters.Label) attribute.Set {
	kvs := make([]attribute.KeyValue, len(labels))
	for i, l := range labels {
		kvs[i] = attribute.String(l.Name, l.Value)
	}
	return attribute.NewSet(kvs...)
}

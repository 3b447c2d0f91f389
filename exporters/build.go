package exporters

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Resource attributes the snapshot keeps in fields of their own.
const (
	attrServiceName       = "service.name"
	attrServiceInstanceID = "service.instance.id"
)

// bridgeScopeName is the scope of the OpenTelemetry Prometheus bridge, whose
// metrics the Prometheus exporter leaves out; so does a snapshot.
const bridgeScopeName = "go.opentelemetry.io/contrib/bridges/prometheus"

// Labels the Prometheus exporter adds for the instrumentation scope when its
// scope info is on.
const (
	scopeLabelPrefix  = "otel_scope_"
	scopeNameLabel    = scopeLabelPrefix + "name"
	scopeVersionLabel = scopeLabelPrefix + "version"
	scopeSchemaLabel  = scopeLabelPrefix + "schema_url"
)

// ReadOptions says how a snapshot names what it reads. The zero value names
// everything as the Prometheus exporter's default configuration does.
type ReadOptions struct {
	// TranslationStrategy is the Prometheus exporter's translation
	// strategy (exporters.prometheus.translation_strategy); empty means
	// otlptranslator.UnderscoreEscapingWithSuffixes, the exporter's default.
	TranslationStrategy otlptranslator.TranslationStrategyOption
	// ScopeInfo adds the otel_scope_name, otel_scope_version,
	// otel_scope_schema_url and otel_scope_<attribute> labels to every
	// series, as the Prometheus exporter's scope_info does.
	ScopeInfo bool
	// Instance is service.instance.id. It overrides the resource's; the
	// caller computes the default (host name and process id).
	Instance string
	// Now stamps Snapshot.Time; nil means time.Now.
	Now func() time.Time
}

// Read collects every metric from r, a reader registered with the
// MeterProvider (the host's ManualReader), and builds a snapshot of it with
// FromResourceMetrics. ctx bounds the collection. When the reader is shut
// down or not registered, Read returns only the error. When some
// observable callbacks fail, it returns the snapshot of what was collected
// and the error too, as /metrics serves what it could collect. It is safe
// for concurrent use when r is, as SDK readers are.
func Read(ctx context.Context, r sdkmetric.Reader, opts ReadOptions) (*Snapshot, error) {
	var rm metricdata.ResourceMetrics
	err := r.Collect(ctx, &rm)
	if err != nil {
		err = fmt.Errorf("collect metrics: %w", err)
		if rm.Resource == nil && len(rm.ScopeMetrics) == 0 {
			return nil, err
		}
	}
	return FromResourceMetrics(&rm, opts), err
}

// FromResourceMetrics converts one collection into a snapshot whose family
// and label names are exactly those the OpenTelemetry Prometheus exporter
// (v0.69) gives the same data with the same translation strategy:
//
//   - A monotonic sum is a counter (named with _total when the strategy adds
//     suffixes), a non-monotonic sum (an up-down counter) and a gauge are
//     gauges, and an explicit-bucket histogram is a histogram with
//     cumulative buckets ending at +Inf. Int and float values both become
//     float64.
//   - Exponential histograms and summaries are left out. Sextant never
//     configures the exponential aggregation and never creates summaries;
//     the exporter serves the former only as native histograms, which
//     classic buckets cannot represent without loss.
//   - Label names go through otlptranslator's LabelNamer as the exporter's
//     do. Attributes whose names collide once escaped become one label whose
//     value is the sorted values joined with ";". The overflow series keeps
//     its otel.metric.overflow attribute as otel_metric_overflow="true".
//   - Resource attributes are not labels: service.name and
//     service.instance.id fill Resource's fields and the rest are kept with
//     their OpenTelemetry names, sorted (the exporter's target_info).
//   - Exemplars: a counter keeps its latest exemplar, and each histogram
//     bucket the latest exemplar whose value falls in it (a value above
//     every bound falls in +Inf). Gauges keep none, as in the exporter.
//
// The exporter keeps the first type and description it ever saw for a
// name, in whatever order the SDK collected; a snapshot reads scopes in
// name order, so that the first metric in that order decides. Where two
// series of one family end up with one label set, the exporter serves the
// one it collected first and a snapshot keeps one, chosen by their
// attributes. Series the exporter rejects are left out too: a label name
// that is reserved (__ prefix) or cannot be translated, a label value that
// is not valid UTF-8, a data point attribute named like a scope label.
//
// The result is sorted (families by PromName, series by labels) and shares
// nothing with rm. FromResourceMetrics is a pure function and safe for
// concurrent use.
func FromResourceMetrics(rm *metricdata.ResourceMetrics, opts ReadOptions) *Snapshot {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	b := newBuilder(opts)
	if rm == nil {
		rm = &metricdata.ResourceMetrics{}
	}
	s := &Snapshot{Resource: b.resource(rm, opts.Instance), Time: now()}

	scopes := make([]*metricdata.ScopeMetrics, 0, len(rm.ScopeMetrics))
	for i := range rm.ScopeMetrics {
		if rm.ScopeMetrics[i].Scope.Name != bridgeScopeName {
			scopes = append(scopes, &rm.ScopeMetrics[i])
		}
	}
	slices.SortStableFunc(scopes, func(a, b *metricdata.ScopeMetrics) int {
		return cmp.Or(cmp.Compare(a.Scope.Name, b.Scope.Name),
			cmp.Compare(a.Scope.Version, b.Scope.Version),
			cmp.Compare(a.Scope.SchemaURL, b.Scope.SchemaURL))
	})
	for _, sm := range scopes {
		scope, ok := b.scopeLabels(sm)
		if !ok {
			continue // the exporter reports the scope as invalid and skips it
		}
		for i := range sm.Metrics {
			b.addMetric(&sm.Metrics[i], scope)
		}
	}
	s.Families = b.families()
	return s
}

// builder accumulates families by PromName.
type builder struct {
	metricNamer  otlptranslator.MetricNamer
	labelNamer   otlptranslator.LabelNamer
	withSuffixes bool
	scopeInfo    bool
	byName       map[string]*familyBuilder
	encoder      attribute.Encoder
}

// familyBuilder is a family and, per series, the key that picks one of
// several series with equal labels.
type familyBuilder struct {
	Family
	keys []string
}

func newBuilder(opts ReadOptions) *builder {
	strategy := opts.TranslationStrategy
	if strategy == "" {
		strategy = otlptranslator.UnderscoreEscapingWithSuffixes
	}
	return &builder{
		metricNamer:  otlptranslator.NewMetricNamer("", strategy),
		labelNamer:   otlptranslator.LabelNamer{UTF8Allowed: !strategy.ShouldEscape()},
		withSuffixes: strategy.ShouldAddSuffixes(),
		scopeInfo:    opts.ScopeInfo,
		byName:       map[string]*familyBuilder{},
		encoder:      attribute.DefaultEncoder(),
	}
}

// resource fills the snapshot's Resource from rm's; instance, when set,
// replaces service.instance.id.
func (b *builder) resource(rm *metricdata.ResourceMetrics, instance string) Resource {
	var r Resource
	if rm.Resource != nil {
		for _, kv := range rm.Resource.Attributes() { // sorted by key
			switch string(kv.Key) {
			case attrServiceName:
				r.ServiceName = kv.Value.String()
			case attrServiceInstanceID:
				r.Instance = kv.Value.String()
			default:
				r.Attributes = append(r.Attributes, Label{Name: string(kv.Key), Value: kv.Value.String()})
			}
		}
	}
	if instance != "" {
		r.Instance = instance
	}
	return r
}

// scopeLabels returns the labels scope info adds to sm's series, none when
// it is off; ok is false when the exporter would reject them (and with
// them every series of the scope).
func (b *builder) scopeLabels(sm *metricdata.ScopeMetrics) (labels []Label, ok bool) {
	if !b.scopeInfo {
		return nil, true
	}
	labels = []Label{
		{Name: scopeNameLabel, Value: sm.Scope.Name},
		{Name: scopeVersionLabel, Value: sm.Scope.Version},
		{Name: scopeSchemaLabel, Value: sm.Scope.SchemaURL},
	}
	attrs, ok := b.translate(sm.Scope.Attributes)
	if !ok {
		return nil, false
	}
	for _, l := range attrs {
		switch l.Name {
		case "name", "version", "schema_url": // reserved: the exporter drops them
			continue
		}
		labels = append(labels, Label{Name: scopeLabelPrefix + l.Name, Value: l.Value})
	}
	return labels, validLabels(labels)
}

// labels translates an attribute set into labels as the exporter's getAttrs
// does; ok is false when the exporter would reject the series: a name that
// cannot be translated or is reserved (__ prefix), or a value that is not
// valid UTF-8.
func (b *builder) labels(set attribute.Set) ([]Label, bool) {
	out, ok := b.translate(set)
	return out, ok && validLabels(out)
}

// translate names an attribute set's attributes as labels. When names are
// escaped, attributes whose names collide become one label whose value is
// their values sorted and joined with ";". ok is false when a name cannot
// be translated.
func (b *builder) translate(set attribute.Set) (labels []Label, ok bool) {
	out := make([]Label, 0, set.Len())
	for _, kv := range set.ToSlice() { // sorted by key
		name, err := b.labelNamer.Build(string(kv.Key))
		if err != nil {
			return nil, false
		}
		out = append(out, Label{Name: name, Value: kv.Value.String()})
	}
	if b.labelNamer.UTF8Allowed {
		return out, true // names are kept as they are, so they stay unique
	}
	slices.SortStableFunc(out, func(a, b Label) int { return cmp.Compare(a.Name, b.Name) })
	merged := out[:0]
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Name == out[i].Name {
			j++
		}
		if j-i == 1 {
			merged = append(merged, out[i])
		} else {
			vals := make([]string, 0, j-i)
			for _, l := range out[i:j] {
				vals = append(vals, l.Value)
			}
			slices.Sort(vals)
			merged = append(merged, Label{Name: out[i].Name, Value: strings.Join(vals, ";")})
		}
		i = j
	}
	return merged, true
}

// validLabels reports whether the Prometheus client accepts every label.
func validLabels(labels []Label) bool {
	for _, l := range labels {
		if !validLabelName(l.Name) || !utf8.ValidString(l.Value) {
			return false
		}
	}
	return true
}

// validLabelName reports whether the Prometheus client accepts name.
func validLabelName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.HasPrefix(name, "__")
}

// seriesLabels returns a data point's labels joined with the scope's,
// sorted by name; ok is false when a name is in both (the exporter rejects
// the series).
func (b *builder) seriesLabels(attrs attribute.Set, scope []Label) (labels []Label, ok bool) {
	labels, ok = b.labels(attrs)
	if !ok || len(scope) == 0 {
		return labels, ok
	}
	labels = append(labels, scope...)
	slices.SortStableFunc(labels, func(a, b Label) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(labels); i++ {
		if labels[i].Name == labels[i-1].Name {
			return nil, false
		}
	}
	return labels, true
}

// metricKind is what m's aggregation becomes: its family type and the type
// its name is built for.
func (b *builder) metricKind(m *metricdata.Metrics) (MetricType, otlptranslator.MetricType, bool) {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		return b.sumKind(d.IsMonotonic)
	case metricdata.Sum[float64]:
		return b.sumKind(d.IsMonotonic)
	case metricdata.Gauge[int64], metricdata.Gauge[float64]:
		return TypeGauge, otlptranslator.MetricTypeGauge, true
	case metricdata.Histogram[int64], metricdata.Histogram[float64]:
		return TypeHistogram, otlptranslator.MetricTypeHistogram, true
	default: // exponential histograms, summaries: see FromResourceMetrics
		return "", 0, false
	}
}

func (b *builder) sumKind(monotonic bool) (MetricType, otlptranslator.MetricType, bool) {
	switch {
	case !monotonic:
		return TypeGauge, otlptranslator.MetricTypeNonMonotonicCounter, true
	case !b.withSuffixes: // the exporter names counters like up-down counters then
		return TypeCounter, otlptranslator.MetricTypeNonMonotonicCounter, true
	default:
		return TypeCounter, otlptranslator.MetricTypeMonotonicCounter, true
	}
}

// addMetric adds m's series to its family, creating the family the first
// time its name is seen.
func (b *builder) addMetric(m *metricdata.Metrics, scope []Label) {
	typ, namingType, ok := b.metricKind(m)
	if !ok {
		return
	}
	tm := otlptranslator.Metric{Name: m.Name, Type: namingType}
	if b.withSuffixes { // the exporter drops units along with suffixes
		tm.Unit = m.Unit
	}
	name, err := b.metricNamer.Build(tm)
	if err != nil || !utf8.ValidString(name) {
		return // the exporter reports the metric as invalid and skips it
	}
	f := b.byName[name]
	switch {
	case f == nil:
		f = &familyBuilder{Family: Family{Name: m.Name, PromName: name, Type: typ, Unit: m.Unit, Description: m.Description}}
		b.byName[name] = f
	case f.Type != typ:
		return // a type conflict: the exporter keeps the first type
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		addSum(b, f, d, scope)
	case metricdata.Sum[float64]:
		addSum(b, f, d, scope)
	case metricdata.Gauge[int64]:
		addGauge(b, f, d, scope)
	case metricdata.Gauge[float64]:
		addGauge(b, f, d, scope)
	case metricdata.Histogram[int64]:
		addHistogram(b, f, d, scope)
	case metricdata.Histogram[float64]:
		addHistogram(b, f, d, scope)
	}
}

// add appends one series, with the key that picks one among series with
// equal labels.
func (f *familyBuilder) add(s Series, key string) {
	f.Series = append(f.Series, s)
	f.keys = append(f.keys, key)
}

func addSum[N int64 | float64](b *builder, f *familyBuilder, d metricdata.Sum[N], scope []Label) {
	for _, dp := range d.DataPoints {
		labels, ok := b.seriesLabels(dp.Attributes, scope)
		if !ok {
			continue
		}
		s := Series{Labels: labels, Value: float64(dp.Value), Time: dp.Time}
		if d.IsMonotonic {
			s.Start = dp.StartTime
			s.Exemplar = latest(exemplars(b, dp.Exemplars), func(float64) bool { return true })
		}
		f.add(s, dp.Attributes.Encoded(b.encoder))
	}
}

func addGauge[N int64 | float64](b *builder, f *familyBuilder, d metricdata.Gauge[N], scope []Label) {
	for _, dp := range d.DataPoints {
		labels, ok := b.seriesLabels(dp.Attributes, scope)
		if !ok {
			continue
		}
		f.add(Series{Labels: labels, Value: float64(dp.Value), Time: dp.Time}, dp.Attributes.Encoded(b.encoder))
	}
}

func addHistogram[N int64 | float64](b *builder, f *familyBuilder, d metricdata.Histogram[N], scope []Label) {
	for _, dp := range d.DataPoints {
		labels, ok := b.seriesLabels(dp.Attributes, scope)
		if !ok {
			continue
		}
		h := &Histogram{Count: dp.Count, Sum: float64(dp.Sum), Buckets: make([]Bucket, 0, len(dp.Bounds)+1)}
		var cumulative uint64
		for i, bound := range dp.Bounds {
			if i < len(dp.BucketCounts) {
				cumulative += dp.BucketCounts[i]
			}
			if math.IsInf(bound, 1) {
				break // the +Inf bucket comes last, with Count
			}
			h.Buckets = append(h.Buckets, Bucket{UpperBound: bound, Count: cumulative})
		}
		h.Buckets = append(h.Buckets, Bucket{UpperBound: math.Inf(1), Count: dp.Count})
		if ex := exemplars(b, dp.Exemplars); len(ex) > 0 {
			for i := range h.Buckets {
				// The exporter puts an exemplar in the first bucket whose
				// bound is at least its value; NaN and values above every
				// bound go to +Inf.
				first, last := i == 0, i == len(h.Buckets)-1
				lower, upper := math.Inf(-1), h.Buckets[i].UpperBound
				if !first {
					lower = h.Buckets[i-1].UpperBound
				}
				h.Buckets[i].Exemplar = latest(ex, func(v float64) bool {
					return (first || v > lower) && v <= upper || last && math.IsNaN(v)
				})
			}
		}
		f.add(Series{Labels: labels, Histogram: h, Start: dp.StartTime, Time: dp.Time}, dp.Attributes.Encoded(b.encoder))
	}
}

// latest returns the latest exemplar whose value satisfies in (the later
// one in the list on equal times), or nil.
func latest(exemplars []Exemplar, in func(float64) bool) *Exemplar {
	var best *Exemplar
	for i := range exemplars {
		if e := &exemplars[i]; in(e.Value) && (best == nil || !e.Time.Before(best.Time)) {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	e := *best
	return &e
}

// exemplars converts a data point's exemplars, or returns none when the
// exporter would drop them: when one has an attribute it cannot name as a
// label or whose value is not valid UTF-8. Labels are the filtered
// attributes named as labels (the last wins when two names collide, as in
// the exporter), without trace_id and span_id, which have fields of their
// own. The exporter's limit of 128 runes on an exemplar's labels is the
// text encoders' concern: a snapshot keeps the exemplar.
func exemplars[N int64 | float64](b *builder, es []metricdata.Exemplar[N]) []Exemplar {
	if len(es) == 0 {
		return nil
	}
	out := make([]Exemplar, len(es))
	for i, e := range es {
		byName := make(map[string]string, len(e.FilteredAttributes))
		for _, kv := range e.FilteredAttributes {
			name, err := b.labelNamer.Build(string(kv.Key))
			v := kv.Value.String()
			if err != nil || !validLabelName(name) || !utf8.ValidString(v) {
				return nil
			}
			byName[name] = v
		}
		delete(byName, otlptranslator.ExemplarTraceIDKey)
		delete(byName, otlptranslator.ExemplarSpanIDKey)
		out[i] = Exemplar{Value: float64(e.Value), Time: e.Time, TraceID: hex.EncodeToString(e.TraceID), SpanID: hex.EncodeToString(e.SpanID)}
		for name, v := range byName {
			out[i].Labels = append(out[i].Labels, Label{Name: name, Value: v})
		}
		slices.SortFunc(out[i].Labels, func(a, b Label) int { return cmp.Compare(a.Name, b.Name) })
	}
	return out
}

// families returns the families sorted by PromName, each with its series
// sorted by labels and one series per label set.
func (b *builder) families() []Family {
	out := make([]Family, 0, len(b.byName))
	for _, f := range b.byName {
		idx := make([]int, len(f.Series))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(x, y int) int {
			return cmp.Or(compareLabels(f.Series[x].Labels, f.Series[y].Labels), cmp.Compare(f.keys[x], f.keys[y]))
		})
		series := make([]Series, 0, len(idx))
		for _, i := range idx {
			if n := len(series); n > 0 && compareLabels(series[n-1].Labels, f.Series[i].Labels) == 0 {
				continue // a duplicate label set: keep one
			}
			series = append(series, f.Series[i])
		}
		if len(series) == 0 {
			continue // the exporter serves no family without series
		}
		f.Family.Series = series
		out = append(out, f.Family)
	}
	slices.SortFunc(out, func(a, b Family) int { return cmp.Compare(a.PromName, b.PromName) })
	return out
}

// compareLabels orders label lists pair by pair, names first; a list that
// is a prefix of another comes first.
func compareLabels(a, b []Label) int {
	for i := range min(len(a), len(b)) {
		if c := cmp.Or(cmp.Compare(a[i].Name, b[i].Name), cmp.Compare(a[i].Value, b[i].Value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

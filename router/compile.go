package router

import (
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sextant-telemetry/sextant/events"
)

// table is the compiled form of a Config. It is immutable once built: Route
// reads it without locks.
type table struct {
	exact map[string][]*binding // catalog names and literal patterns
	globs []globRoute           // for names outside exact
	insts []*instrument
}

type globRoute struct {
	pat      pattern
	bindings []*binding
}

// binding is one metric of one route: where its label values and its value
// come from in an event.
type binding struct {
	inst   *instrument
	labels []source // in inst.labelKeys order
	value  source   // kind srcNone: add 1
}

type sourceKind uint8

const (
	srcNone sourceKind = iota
	srcAttr
	srcCorrelationID
	srcEventName
)

type source struct {
	kind  sourceKind
	field string
}

func newSource(field string) source {
	switch field {
	case "":
		return source{kind: srcNone}
	case events.FieldCorrelationID:
		return source{kind: srcCorrelationID, field: field}
	case events.FieldEventName:
		return source{kind: srcEventName, field: field}
	}
	return source{kind: srcAttr, field: field}
}

// compile validates cfg and builds its table, creating instruments on meter.
func compile(cfg Config, meter metric.Meter) (*table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	limit := cfg.SeriesLimit
	if limit == 0 {
		limit = DefaultSeriesLimit
	}
	t := &table{exact: map[string][]*binding{}}
	byName := map[string]*instrument{}
	for _, r := range cfg.Routes {
		pat, _ := compilePattern(r.Match) // validated above
		var bs []*binding
		for _, m := range r.Metrics {
			inst, ok := byName[m.Name]
			if !ok {
				var err error
				if inst, err = newInstrument(meter, m, limit); err != nil {
					return nil, err
				}
				byName[m.Name] = inst
				t.insts = append(t.insts, inst)
			}
			b := &binding{inst: inst, value: newSource(m.Value)}
			for _, k := range inst.labelKeys {
				b.labels = append(b.labels, newSource(m.Labels[string(k)]))
			}
			bs = append(bs, b)
		}
		if pat.literal {
			t.exact[r.Match] = append(t.exact[r.Match], bs...)
			continue
		}
		t.globs = append(t.globs, globRoute{pat: pat, bindings: bs})
	}
	// Resolve globs for every catalog name now, in route order, so that the
	// hot path is one map lookup for every known event.
	for _, s := range events.Catalog() {
		var bs []*binding
		for _, r := range cfg.Routes {
			pat, _ := compilePattern(r.Match)
			if pat.match(s.Name) {
				bs = append(bs, t.bindingsOf(r)...)
			}
		}
		if len(bs) > 0 {
			t.exact[s.Name] = bs
		}
	}
	return t, nil
}

// bindingsOf finds the bindings compiled for route r (by pattern text; routes
// with equal patterns were merged in order).
func (t *table) bindingsOf(r Route) []*binding {
	if bs, ok := t.exact[r.Match]; ok {
		return bs
	}
	for _, g := range t.globs {
		if g.pat.text == r.Match {
			return g.bindings
		}
	}
	return nil
}

// lookup returns the bindings for an event name.
func (t *table) lookup(name string) []*binding {
	if bs, ok := t.exact[name]; ok {
		return bs
	}
	if len(t.globs) == 0 {
		return nil
	}
	var bs []*binding
	for _, g := range t.globs {
		if g.pat.match(name) {
			bs = append(bs, g.bindings...)
		}
	}
	return bs
}

func newInstrument(meter metric.Meter, m Metric, defaultLimit int) (*instrument, error) {
	inst := &instrument{name: m.Name, typ: m.Type, limit: m.SeriesLimit, series: map[string]*series{}}
	if inst.limit == 0 {
		inst.limit = defaultLimit
	}
	keys := sortedKeys(m.Labels)
	inst.labelKeys = make([]attribute.Key, len(keys))
	for i, k := range keys {
		inst.labelKeys[i] = attribute.Key(k)
	}
	var err error
	switch m.Type {
	case MetricTypeCounter:
		inst.intValued = m.Value == "" || valueIsInt(m.Value)
		if inst.intValued {
			inst.intCounter, err = meter.Int64Counter(m.Name, metric.WithUnit(m.Unit), metric.WithDescription(m.Description))
		} else {
			inst.floatCounter, err = meter.Float64Counter(m.Name, metric.WithUnit(m.Unit), metric.WithDescription(m.Description))
		}
	case MetricTypeUpDownCounter:
		inst.upDown, err = meter.Float64UpDownCounter(m.Name, metric.WithUnit(m.Unit), metric.WithDescription(m.Description))
	case MetricTypeHistogram:
		opts := []metric.Float64HistogramOption{metric.WithUnit(m.Unit), metric.WithDescription(m.Description)}
		if len(m.Buckets) > 0 {
			opts = append(opts, metric.WithExplicitBucketBoundaries(slices.Clone(m.Buckets)...))
		}
		inst.histogram, err = meter.Float64Histogram(m.Name, opts...)
	case MetricTypeGauge:
		inst.gauge, err = meter.Float64Gauge(m.Name, metric.WithUnit(m.Unit), metric.WithDescription(m.Description))
	}
	if err != nil {
		return nil, fmt.Errorf("create instrument %q: %w", m.Name, err)
	}
	return inst, nil
}

// valueIsInt reports whether every catalog event that has field carries it as
// an integer, so a counter of it can stay an integer counter.
func valueIsInt(field string) bool {
	seen := false
	for _, s := range events.Catalog() {
		if f, ok := s.Field(field); ok {
			if f.Type != events.KindInt {
				return false
			}
			seen = true
		}
	}
	return seen
}

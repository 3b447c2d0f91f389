package router

import (
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/internal/redact"
)

// table is the compiled form of a Config. It is immutable once built: Route
// reads it without locks.
type table struct {
	schemas map[string]events.Schema // the catalog, for checking bus events
	exact   map[string][]*binding    // catalog names and literal patterns
	globs   []globRoute              // for names outside exact
	insts   []*instrument

	spanExact map[string][]*spanBinding // like exact, for span rules
	spanGlobs []spanGlob

	matches   []string    // each route's match, by route index, for Explain
	sensitive redact.Keys // router.traces.sensitive_keys, for Explain
}

type globRoute struct {
	pat      pattern
	bindings []*binding
}

type spanGlob struct {
	pat      pattern
	bindings []*spanBinding
}

// binding is one metric of one route: where its label values and its value
// come from in an event.
type binding struct {
	inst   *instrument
	labels []source // in inst.labelKeys order
	value  source   // kind srcNone: add 1
	when   *filter  // nil: every event; shared by the bindings of one route
	route  int      // index of its route in the config
}

// filter is a route's compiled when: conditions that all must hold.
type filter struct {
	conds []cond
}

type cond struct {
	src  source
	want string
}

// match reports whether e satisfies every condition. It does not allocate:
// non-string values are formatted into a stack buffer and compared in place.
func (f *filter) match(e *events.Event) bool {
	for _, c := range f.conds {
		var buf [40]byte
		switch c.src.kind {
		case srcCorrelationID:
			if string(e.CorrelationID.AppendText36(buf[:0])) != c.want {
				return false
			}
		case srcEventName:
			if e.Name != c.want {
				return false
			}
		case srcAttr:
			v, ok := e.Attr(c.src.field)
			if !ok {
				return false
			}
			if v.Kind() == events.KindString {
				if v.Str() != c.want {
					return false
				}
			} else if string(v.AppendText(buf[:0])) != c.want {
				return false
			}
		}
	}
	return true
}

func newFilter(when map[string]string) *filter {
	if len(when) == 0 {
		return nil
	}
	f := &filter{}
	for _, k := range sortedKeys(when) {
		f.conds = append(f.conds, cond{src: newSource(k), want: when[k]})
	}
	return f
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
	t := &table{exact: map[string][]*binding{}, schemas: map[string]events.Schema{}, spanExact: map[string][]*spanBinding{},
		matches: make([]string, len(cfg.Routes)), sensitive: redact.NewKeys(cfg.Traces.SensitiveKeys)}
	byName := map[string]*instrument{}
	intValued := intValuedMetrics(cfg)
	pats := make([]pattern, len(cfg.Routes))
	perRoute := make([][]*binding, len(cfg.Routes))
	spansPerRoute := make([][]*spanBinding, len(cfg.Routes))
	var allSpans []*spanBinding
	for i, r := range cfg.Routes {
		pats[i], _ = compilePattern(r.Match) // validated above
		schemas, _ := matchCatalog(r.Match)
		t.matches[i] = r.Match
		when := newFilter(r.When)
		spansPerRoute[i] = compileSpans(r, when, uint32(len(allSpans)))
		for _, sb := range spansPerRoute[i] {
			sb.route = i
		}
		allSpans = append(allSpans, spansPerRoute[i]...)
		if !pats[i].literal && len(spansPerRoute[i]) > 0 {
			t.spanGlobs = append(t.spanGlobs, spanGlob{pat: pats[i], bindings: spansPerRoute[i]})
		}
		for _, m := range r.Metrics {
			inst, ok := byName[m.Name]
			if !ok {
				var err error
				if inst, err = newInstrument(meter, m, limit, intValued[m.Name]); err != nil {
					return nil, err
				}
				byName[m.Name] = inst
				t.insts = append(t.insts, inst)
			}
			b := &binding{inst: inst, value: newSource(m.Value), when: when, route: i}
			for _, k := range inst.labelKeys {
				b.labels = append(b.labels, newSource(m.Labels[string(k)]))
			}
			perRoute[i] = append(perRoute[i], b)
			if err := b.seed(m.Initial, schemas); err != nil {
				return nil, err
			}
		}
		if !pats[i].literal && len(perRoute[i]) > 0 {
			t.globs = append(t.globs, globRoute{pat: pats[i], bindings: perRoute[i]})
		}
	}
	linkEndRules(allSpans)
	// Resolve every catalog name now, in route order, so that the hot path
	// is one map lookup for every known event. Validation guarantees that
	// literal patterns are catalog names.
	for _, s := range events.Catalog() {
		t.schemas[s.Name] = s
		var bs []*binding
		var sbs []*spanBinding
		for i, p := range pats {
			if p.match(s.Name) {
				bs = append(bs, perRoute[i]...)
				sbs = append(sbs, spansPerRoute[i]...)
			}
		}
		if len(bs) > 0 {
			t.exact[s.Name] = bs
		}
		if len(sbs) > 0 {
			t.spanExact[s.Name] = sbs
		}
	}
	return t, nil
}

// intValuedMetrics reports, per metric name, whether every definition counts
// integers (adds 1 or adds an integer field): only then is the counter an
// integer counter, which would otherwise truncate a float value.
func intValuedMetrics(cfg Config) map[string]bool {
	out := map[string]bool{}
	for _, r := range cfg.Routes {
		for _, m := range r.Metrics {
			isInt := m.Type == MetricTypeCounter && (m.Value == "" || valueIsInt(m.Value))
			if prev, ok := out[m.Name]; ok {
				isInt = isInt && prev
			}
			out[m.Name] = isInt
		}
	}
	return out
}

// lookupSpans returns the span bindings for an event name.
func (t *table) lookupSpans(name string) []*spanBinding {
	if bs, ok := t.spanExact[name]; ok {
		return bs
	}
	if len(t.spanGlobs) == 0 {
		return nil
	}
	if _, known := t.schemas[name]; known {
		return nil
	}
	var bs []*spanBinding
	for _, g := range t.spanGlobs {
		if g.pat.match(name) {
			bs = append(bs, g.bindings...)
		}
	}
	return bs
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

func newInstrument(meter metric.Meter, m Metric, defaultLimit int, intValued bool) (*instrument, error) {
	inst := &instrument{name: m.Name, typ: m.Type, unit: m.Unit, limit: m.SeriesLimit, intValued: intValued, series: map[string]*series{}}
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

package router

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/sextant-telemetry/sextant/events"
)

// Explanation is what routing one event would do: the routes whose match
// selects it, and per route the series it records into and the span rules
// it applies. Values of sensitive fields (router.traces.sensitive_keys)
// appear as Redacted, in metric labels as in span attributes.
type Explanation struct {
	// Event, EventID and CorrelationID identify the event.
	Event         string `json:"event"`
	EventID       string `json:"event_id"`
	CorrelationID string `json:"correlation_id"`
	// Routes are the routes whose match selects the event, in config order,
	// including those whose when excludes it (see RouteMatch.Excluded).
	Routes []RouteMatch `json:"routes"`
	// Unmatched is true when no route applies: none matches the event's
	// name, or the when of every one that does excludes it. Route counts
	// such an event as unmatched.
	Unmatched bool `json:"unmatched"`
}

// RouteMatch is what one route does to the event.
type RouteMatch struct {
	// Index is the route's position in router.routes.
	Index int `json:"index"`
	// Match is the route's pattern.
	Match string `json:"match"`
	// Excluded, when not empty, says which condition of the route's when the
	// event fails; the route then does nothing, and Metrics and Spans are empty.
	Excluded string `json:"excluded,omitempty"`
	// Metrics are the recordings the route makes, in rule order.
	Metrics []SeriesEffect `json:"metrics,omitempty"`
	// Spans are the span rules the route applies, in rule order.
	Spans []SpanEffect `json:"spans,omitempty"`
	// Skipped says which metric and span rules do nothing and why, e.g. the
	// event lacks a field they read.
	Skipped []string `json:"skipped,omitempty"`
}

// SeriesEffect is one recording into one series.
type SeriesEffect struct {
	// Metric is the OpenTelemetry instrument name.
	Metric string `json:"metric"`
	// Type and Unit are the metric's, as configured.
	Type MetricType `json:"type"`
	Unit string     `json:"unit,omitempty"`
	// Labels identify the series, sorted by name.
	Labels []Label `json:"labels"`
	// Op is add (counters), observe (histograms) or set (gauges).
	Op string `json:"op"`
	// Value is what is added, observed or set.
	Value float64 `json:"value"`
}

// Label is one metric label or span attribute.
type Label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SpanEffect is what one span rule does with the event. Whether a span is
// open — which an end or event rule needs, and which parent a start or
// record rule takes — depends on the events routed before, so Parents lists
// every candidate the event names, in the order they are tried.
type SpanEffect struct {
	// Op is start, end, record or event.
	Op string `json:"op"`
	// Span is the span's name.
	Span string `json:"span"`
	// Key is the span's key within its trace (the value of the rule's key
	// field); empty for record rules.
	Key string `json:"key,omitempty"`
	// Parents are the candidate parents as name(field=value), most specific
	// first; none open means the span is a root. For an end rule, those a
	// span whose start never arrived is recorded under.
	Parents []string `json:"parents,omitempty"`
	// Duration is a record rule's span duration or, on an end rule with a
	// duration, that of the span recorded when its start never arrived.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Attributes are the span (or span event) attributes the event gives.
	Attributes []Label `json:"attributes,omitempty"`
	// Status is the status an end or record rule sets: ok, unset or error,
	// the latter followed by ": " and its message when it has one.
	Status string `json:"status,omitempty"`
}

// Explain reports what routing e would do under the router's current rules,
// without recording anything: no metric, span, counter or series is
// touched. It describes span rules whether or not tracing is on
// (Settings.SpanProcessor). It is safe for concurrent use and does not keep
// e; the Explanation shares no memory with it.
func (r *Router) Explain(e *events.Event) Explanation {
	t := r.table.Load()
	x := Explanation{Event: e.Name, EventID: e.ID.String(), CorrelationID: e.CorrelationID.String()}
	// A tracing with only the redaction rules: enough to build attributes
	// and statuses; it opens and emits nothing.
	tr := &tracing{redact: t.sensitive}
	route := func(i int, when *filter) *RouteMatch {
		if n := len(x.Routes); n > 0 && x.Routes[n-1].Index == i {
			return &x.Routes[n-1]
		}
		if j := slices.IndexFunc(x.Routes, func(m RouteMatch) bool { return m.Index == i }); j >= 0 {
			return &x.Routes[j]
		}
		x.Routes = append(x.Routes, RouteMatch{Index: i, Match: t.matches[i], Excluded: when.explainExclusion(e)})
		return &x.Routes[len(x.Routes)-1]
	}
	for _, b := range t.lookup(e.Name) {
		m := route(b.route, b.when)
		if m.Excluded != "" {
			continue
		}
		s, missing := b.explain(e, t)
		if missing != "" {
			m.Skipped = append(m.Skipped, "metric "+b.inst.name+": "+missing)
			continue
		}
		m.Metrics = append(m.Metrics, s)
	}
	noTrace := e.CorrelationID == (events.ID{})
	for _, b := range t.lookupSpans(e.Name) {
		m := route(b.route, b.when)
		if m.Excluded != "" {
			continue
		}
		what := "span " + b.op.String() + " " + b.name + ": "
		if noTrace {
			m.Skipped = append(m.Skipped, what+"the event has no correlation_id, so no trace to put the span in")
			continue
		}
		s, missing := b.explain(e, tr)
		if missing != "" {
			m.Skipped = append(m.Skipped, what+missing)
			continue
		}
		m.Spans = append(m.Spans, s)
	}
	slices.SortStableFunc(x.Routes, func(a, b RouteMatch) int { return a.Index - b.Index })
	x.Unmatched = !slices.ContainsFunc(x.Routes, func(m RouteMatch) bool { return m.Excluded == "" })
	return x
}

// explainExclusion returns the first condition of f that e fails, as
// `when field="want": the event has "got"`, or "" when e passes f.
func (f *filter) explainExclusion(e *events.Event) string {
	if f == nil {
		return ""
	}
	for _, c := range f.conds {
		if (&filter{conds: []cond{c}}).match(e) {
			continue
		}
		got, ok := keyText(e, c.src)
		if !ok {
			return "when " + c.src.field + "=" + strconv.Quote(c.want) + ": the event has no field " + c.src.field
		}
		return "when " + c.src.field + "=" + strconv.Quote(c.want) + ": the event has " + strconv.Quote(got)
	}
	return ""
}

// explain returns the recording b makes for e, or why it makes none: the
// field e lacks. Values of sensitive fields are redacted.
func (b *binding) explain(e *events.Event, t *table) (SeriesEffect, string) {
	inst := b.inst
	s := SeriesEffect{Metric: inst.name, Type: inst.typ, Unit: inst.unit, Labels: make([]Label, len(b.labels)), Value: 1}
	for i, src := range b.labels {
		v, ok := keyText(e, src)
		if !ok {
			return SeriesEffect{}, "the event lacks field " + src.field + " (label " + string(inst.labelKeys[i]) + ")"
		}
		if src.kind == srcAttr && t.sensitive.Sensitive(src.field) {
			v = Redacted
		}
		s.Labels[i] = Label{Name: string(inst.labelKeys[i]), Value: strings.Clone(v)}
	}
	if b.value.kind != srcNone {
		v, ok := e.Attr(b.value.field)
		if !ok {
			return SeriesEffect{}, "the event lacks field " + b.value.field + " (value)"
		}
		s.Value = v.Float64()
		if inst.intValued {
			s.Value = float64(v.Int64()) // as record adds it to an integer counter
		}
	}
	switch inst.typ {
	case MetricTypeHistogram:
		s.Op = "observe"
	case MetricTypeGauge:
		s.Op = "set"
	default:
		s.Op = "add"
	}
	return s, ""
}

// explain returns what span rule b does with e, or why it does nothing:
// the field e lacks. It reads the fields the rule's operation reads, in
// the order tracing.handle does.
func (b *spanBinding) explain(e *events.Event, tr *tracing) (SpanEffect, string) {
	s := SpanEffect{Op: b.op.String(), Span: b.name}
	if b.op == opRecord {
		if _, ok := e.Attr(b.duration.field); !ok {
			return SpanEffect{}, "the event lacks field " + b.duration.field + " (duration)"
		}
	} else {
		k, ok := keyText(e, b.key)
		if !ok {
			return SpanEffect{}, "the event lacks field " + b.key.field + " (key)"
		}
		s.Key = tr.redacted(b.key, k)
	}
	parents := b.parents
	dur := b
	if b.fromEnd != nil {
		parents, dur = b.fromEnd.parents, b.fromEnd
	}
	if dur.duration.kind != srcNone {
		if d, ok := e.Attr(dur.duration.field); ok {
			s.Duration = spanDuration(d.Float64(), dur.scale)
		}
	}
	for _, p := range parents {
		if k, ok := keyText(e, p.key); ok {
			s.Parents = append(s.Parents, p.name+"("+p.key.field+"="+tr.redacted(p.key, k)+")")
		}
	}
	for _, kv := range tr.attributes(e, b, nil) {
		s.Attributes = append(s.Attributes, Label{Name: string(kv.Key), Value: attrText(kv.Value)})
	}
	if b.status != nil {
		code, msg := b.status.decide(tr, e)
		s.Status = strings.ToLower(code.String())
		if code == codes.Error && msg != "" {
			s.Status += ": " + msg
		}
	}
	return s, ""
}

// redacted is text, the value of src in an event, or Redacted when src is
// a sensitive field.
func (t *tracing) redacted(src source, text string) string {
	if src.kind == srcAttr && t.isSensitive(src.field) {
		return Redacted
	}
	return strings.Clone(text)
}

// attrText is an attribute's value as an event's text form writes it.
func attrText(v attribute.Value) string {
	if v.Type() == attribute.FLOAT64 {
		return strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	}
	return v.String()
}

package router

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/internal/redact"
)

// TraceConfig is the router's tracing section: how many spans may wait for
// their end event, for how long, which traces are kept and which fields
// never become span attributes. The spans themselves are declared in the
// routes (Route.Spans).
type TraceConfig struct {
	// SampleRatio is the fraction of traces kept, 0 to 1, decided by trace
	// id so that a task's trace is whole or absent. Nil means the host's
	// choice (sextant reads OTEL_TRACES_SAMPLER, else keeps every trace).
	SampleRatio *float64 `yaml:"sample_ratio,omitempty"`
	// MaxOpenSpans bounds the spans waiting for their end event; past it
	// the oldest is ended with an error status and counted. 0 means 100000.
	MaxOpenSpans int `yaml:"max_open_spans,omitempty"`
	// OpenSpanTTL is how long a span may wait for its end event before it
	// is ended with an error status and counted. 0 means 10m.
	OpenSpanTTL time.Duration `yaml:"open_span_ttl,omitempty"`
	// SensitiveKeys are field-name fragments, matched case-insensitively
	// anywhere in a field's name: a matching field's value is replaced by
	// [REDACTED] in span and span-event attributes. Nil means
	// DefaultSensitiveKeys; an empty list turns redaction off.
	SensitiveKeys []string `yaml:"sensitive_keys"`
}

// Tracing defaults.
const (
	DefaultMaxOpenSpans = 100000
	DefaultOpenSpanTTL  = 10 * time.Minute
)

// DefaultSensitiveKeys are redacted when TraceConfig.SensitiveKeys is nil.
var DefaultSensitiveKeys = redact.DefaultKeys

// Redacted replaces the value of a sensitive field.
const Redacted = "[REDACTED]"

// SpanRule is one thing a route does to a trace for each event it matches:
// exactly one of Start, End, Record and Event names the span.
//
// A span is identified by its name and the value of its key field within
// the event's trace (its correlation id): a start event and an end event
// that agree on both open and close one span.
type SpanRule struct {
	// Start opens a span of this name, timed from the event's time.
	Start string `yaml:"start,omitempty"`
	// End ends the open span of this name whose key the event gives.
	End string `yaml:"end,omitempty"`
	// Record makes a finished span of this name from one event that carries
	// its duration: it starts at the event's time minus Duration and ends at
	// the event's time.
	Record string `yaml:"record,omitempty"`
	// Event adds the event as a span event to the open span of this name.
	Event string `yaml:"event,omitempty"`
	// Key is the field whose value identifies the span within its trace,
	// e.g. task_uuid. Start, end and event rules need one; record rules
	// take none, since their span ends at once and nothing can find it.
	Key string `yaml:"key,omitempty"`
	// Parent lists candidate parents, most specific first: the first one
	// open (by span name and the value of its key field in this event)
	// becomes the parent. None open: the span is a root of its trace.
	// Start and record rules only.
	Parent []SpanRef `yaml:"parent,omitempty"`
	// Kind is the span kind: internal (the default), server, client,
	// producer or consumer. Start and record rules only.
	Kind string `yaml:"kind,omitempty"`
	// Duration is the numeric field that gives the span's duration: required
	// by record rules; on an end rule it lets a span whose start event never
	// arrived be recorded from the end event alone.
	Duration string `yaml:"duration,omitempty"`
	// DurationUnit is the unit of Duration: ms (the default), s, us or ns.
	DurationUnit string `yaml:"duration_unit,omitempty"`
	// Attributes maps attribute names to the event fields that give their
	// values. Absent means every field of the event under its own name;
	// {} means none. On end rules they are added to the span as it ends.
	Attributes map[string]string `yaml:"attributes,omitempty"`
	// Status sets the span's status as it ends. End and record rules only.
	Status *SpanStatus `yaml:"status,omitempty"`
	// SampleRatio overrides TraceConfig.SampleRatio for the root spans this
	// rule makes; spans with a parent follow their parent's decision. Start
	// and record rules only.
	SampleRatio *float64 `yaml:"sample_ratio,omitempty"`
}

// SpanRef names a candidate parent span: its name and the field of the
// child's event that holds the parent's key.
type SpanRef struct {
	Span string `yaml:"span"`
	Key  string `yaml:"key"`
}

// SpanStatus decides a span's status: a fixed Code, or Field, whose text
// makes the status error when it is one of Error and ok otherwise.
type SpanStatus struct {
	// Code is ok, error or unset.
	Code string `yaml:"code,omitempty"`
	// Field decides the status by its value; exclusive with Code.
	Field string `yaml:"field,omitempty"`
	// Error lists the values of Field that mean error.
	Error []string `yaml:"error,omitempty"`
	// Message is the field whose text describes an error status.
	Message string `yaml:"message,omitempty"`
}

// span operations
type spanOp uint8

const (
	opStart spanOp = iota + 1
	opEnd
	opRecord
	opEvent
)

func (o spanOp) String() string {
	return [...]string{"", "start", "end", "record", "event"}[o]
}

// op returns the rule's operation and span name, or 0 when not exactly one
// of start, end, record and event is set.
func (s SpanRule) op() (spanOp, string) {
	var op spanOp
	var name string
	n := 0
	for _, c := range []struct {
		op   spanOp
		name string
	}{{opStart, s.Start}, {opEnd, s.End}, {opRecord, s.Record}, {opEvent, s.Event}} {
		if c.name != "" {
			op, name = c.op, c.name
			n++
		}
	}
	if n != 1 {
		return 0, ""
	}
	return op, name
}

var (
	spanName      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:/ -]{0,127}$`)
	attributeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,127}$`)
	spanKinds     = []string{"", "internal", "server", "client", "producer", "consumer"}
	durationUnits = map[string]float64{"": 1e6, "ms": 1e6, "s": 1e9, "us": 1e3, "ns": 1}
)

// Validate checks the tracing section.
func (c TraceConfig) validate(path string) []error {
	var errs []error
	if err := checkRatio(c.SampleRatio); err != nil {
		errs = append(errs, fieldErr(path+".sample_ratio", "%v", err))
	}
	if c.MaxOpenSpans < 0 {
		errs = append(errs, fieldErr(path+".max_open_spans", "must not be negative, got %d", c.MaxOpenSpans))
	}
	if c.OpenSpanTTL < 0 {
		errs = append(errs, fieldErr(path+".open_span_ttl", "must not be negative, got %s", c.OpenSpanTTL))
	}
	for i, k := range c.SensitiveKeys {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fieldErr(path+".sensitive_keys["+strconv.Itoa(i)+"]", "must not be empty"))
		}
	}
	return errs
}

func checkRatio(r *float64) error {
	if r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		return fmt.Errorf("must be from 0 to 1, got %g", *r)
	}
	return nil
}

// validateSpans checks every span rule of every route: each names one
// operation, the fields it reads exist on every event its route matches,
// and the spans that end rules, event rules and parents name are opened
// by some start rule.
func validateSpans(routes []Route) []error {
	var errs []error
	opened := map[string]bool{}
	firstStart := map[string]SpanRule{} // as the router picks it for an end rule's duration
	for _, r := range routes {
		for _, s := range r.Spans {
			if s.Start != "" {
				if !opened[s.Start] {
					firstStart[s.Start] = s
				}
				opened[s.Start] = true
			}
		}
	}
	started := slices.Sorted(func(yield func(string) bool) {
		for n := range opened {
			if !yield(n) {
				return
			}
		}
	})
	knownSpans := "spans that start rules open: " + strings.Join(started, ", ")
	if len(started) == 0 {
		knownSpans = "no start rule opens any span"
	}
	for i, r := range routes {
		schemas, err := matchCatalog(r.Match)
		if err != nil {
			continue // reported with the route's match
		}
		for j, s := range r.Spans {
			sp := "routes[" + strconv.Itoa(i) + "].spans[" + strconv.Itoa(j) + "]"
			errs = append(errs, s.validate(sp, schemas, opened, knownSpans)...)
			if s.End == "" || s.Duration == "" {
				continue
			}
			// Recorded from this end event, the span takes its start
			// rule's parents: their keys must be fields of this event too.
			for _, p := range firstStart[s.End].Parent {
				for _, sc := range schemas {
					if _, ok := sc.Field(p.Key); !ok && p.Key != "" {
						errs = append(errs, fieldErr(sp+".duration", "recording span %q from event %q takes its start rule's parent %q, keyed by field %q, which the event lacks: drop duration, or add the field",
							s.End, sc.Name, p.Span, p.Key))
					}
				}
			}
		}
	}
	return errs
}

func (s SpanRule) validate(path string, schemas []events.Schema, opened map[string]bool, knownSpans string) []error {
	op, name := s.op()
	if op == 0 {
		return []error{fieldErr(path, "set exactly one of start, end, record and event (the span it opens, ends, records or annotates)")}
	}
	var errs []error
	np := path + "." + op.String()
	if !spanName.MatchString(name) {
		errs = append(errs, fieldErr(np, "span name must match %s, got %q", spanName, name))
	}
	if (op == opEnd || op == opEvent) && !opened[name] {
		errs = append(errs, fieldErr(np, "no start rule opens a span %q (%s)", name, knownSpans))
	}
	field := func(p, f, why string) {
		for _, sc := range schemas {
			if _, ok := sc.Field(f); !ok {
				errs = append(errs, fieldErr(p, "event %q has no field %q for %s (fields: %s)", sc.Name, f, why, strings.Join(sc.FieldNames(), ", ")))
			}
		}
	}
	switch {
	case op == opRecord && s.Key != "":
		errs = append(errs, fieldErr(path+".key", "a record rule's span ends at once, so nothing can find it by key: remove key"))
	case op != opRecord && s.Key == "":
		article := "a"
		if op == opEnd || op == opEvent {
			article = "an"
		}
		errs = append(errs, fieldErr(path+".key", "%s %s rule needs the field that identifies its span, e.g. task_uuid", article, op))
	case s.Key == events.FieldEventName:
		errs = append(errs, fieldErr(path+".key", "event_name differs between a span's start and end events, so it cannot identify the span: use a field such as task_uuid"))
	case s.Key != "":
		field(path+".key", s.Key, "the span key")
	}
	onlyFor := func(set bool, key string, ops ...spanOp) {
		if set && !slices.Contains(ops, op) {
			var names []string
			for _, o := range ops {
				names = append(names, o.String())
			}
			errs = append(errs, fieldErr(path+"."+key, "only %s rules take %s", strings.Join(names, " and "), key))
		}
	}
	onlyFor(len(s.Parent) > 0, "parent", opStart, opRecord)
	onlyFor(s.Kind != "", "kind", opStart, opRecord)
	onlyFor(s.Status != nil, "status", opEnd, opRecord)
	onlyFor(s.SampleRatio != nil, "sample_ratio", opStart, opRecord)
	onlyFor(s.Duration != "", "duration", opEnd, opRecord)
	onlyFor(s.DurationUnit != "", "duration_unit", opEnd, opRecord)
	for k, p := range s.Parent {
		pp := path + ".parent[" + strconv.Itoa(k) + "]"
		if !opened[p.Span] {
			errs = append(errs, fieldErr(pp+".span", "no start rule opens a span %q (%s)", p.Span, knownSpans))
		}
		if p.Key == "" {
			errs = append(errs, fieldErr(pp+".key", "give the field of this event that holds the parent's key, e.g. task_uuid"))
		} else {
			field(pp+".key", p.Key, "the parent's key")
		}
	}
	if !slices.Contains(spanKinds, s.Kind) {
		errs = append(errs, fieldErr(path+".kind", "must be one of %s, got %q", strings.Join(spanKinds[1:], ", "), s.Kind))
	}
	if err := checkRatio(s.SampleRatio); err != nil {
		errs = append(errs, fieldErr(path+".sample_ratio", "%v", err))
	}
	if _, ok := durationUnits[s.DurationUnit]; !ok {
		errs = append(errs, fieldErr(path+".duration_unit", "must be ms, s, us or ns, got %q", s.DurationUnit))
	}
	switch {
	case op == opRecord && s.Duration == "":
		errs = append(errs, fieldErr(path+".duration", "a record rule needs the field that gives the span's duration, e.g. duration_ms"))
	case s.Duration != "":
		for _, sc := range schemas {
			f, ok := sc.Field(s.Duration)
			switch {
			case !ok:
				errs = append(errs, fieldErr(path+".duration", "event %q has no field %q (fields: %s)", sc.Name, s.Duration, strings.Join(sc.FieldNames(), ", ")))
			case f.Type != events.KindInt && f.Type != events.KindFloat:
				errs = append(errs, fieldErr(path+".duration", "field %q of event %q is a %s, want a number", s.Duration, sc.Name, f.Type))
			}
		}
	}
	for _, a := range sortedKeys(s.Attributes) {
		ap := path + ".attributes." + a
		if !attributeName.MatchString(a) {
			errs = append(errs, fieldErr(ap, "attribute name must match %s", attributeName))
		}
		field(ap, s.Attributes[a], "attribute "+a)
	}
	if st := s.Status; st != nil {
		sp := path + ".status"
		switch {
		case st.Code != "" && st.Field != "":
			errs = append(errs, fieldErr(sp, "set code or field, not both"))
		case st.Code == "" && st.Field == "":
			errs = append(errs, fieldErr(sp, "set code (ok, error or unset) or field (with error: the values that mean error)"))
		case st.Code != "" && !slices.Contains([]string{"ok", "error", "unset"}, st.Code):
			errs = append(errs, fieldErr(sp+".code", "must be ok, error or unset, got %q", st.Code))
		case st.Field != "":
			field(sp+".field", st.Field, "the status")
			if len(st.Error) == 0 {
				errs = append(errs, fieldErr(sp+".error", "list the values of %q that mean error", st.Field))
			}
		}
		if st.Code != "" && len(st.Error) > 0 {
			errs = append(errs, fieldErr(sp+".error", "error values go with field, not code"))
		}
		if st.Message != "" {
			for _, sc := range schemas {
				if _, ok := sc.Field(st.Message); !ok {
					errs = append(errs, fieldErr(sp+".message", "event %q has no field %q (fields: %s)", sc.Name, st.Message, strings.Join(sc.FieldNames(), ", ")))
				}
			}
		}
	}
	return errs
}

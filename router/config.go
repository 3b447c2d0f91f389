package router

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sextant-telemetry/sextant/events"
)

// Config is the router section of the configuration: the rules that map
// events to metrics.
type Config struct {
	// SeriesLimit is the default number of distinct label sets one metric may
	// hold; past it, new label sets collapse into a single overflow series
	// (otel.metric.overflow="true") and are counted. 0 means the default, 10000.
	SeriesLimit int `yaml:"series_limit"`
	// Traces bounds the spans the routes make and says which are kept.
	Traces TraceConfig `yaml:"traces"`
	// Routes are the rules; an event may match several.
	Routes []Route `yaml:"routes"`
}

// DefaultSeriesLimit applies when neither the router nor a metric sets one.
const DefaultSeriesLimit = 10000

// Route maps the events a pattern matches to metrics, spans or both.
type Route struct {
	// Match is an event name or a glob over its dot-separated segments:
	// "*" (or any path.Match pattern) matches within one segment and a "**"
	// segment matches any number of segments, so "step.*" matches
	// step.claimed but not step.a.b, and "**" matches every event.
	// Alternatives in braces around the whole pattern match what any of
	// them matches: "{task.completed,task.failed}".
	Match string `yaml:"match"`
	// When narrows the route to events whose fields equal the given values,
	// compared as text: strings as they are, ints in decimal, bools as true
	// or false. Every key must be a field of every event Match matches;
	// correlation_id and event_name name envelope fields. Empty means every
	// matching event.
	When map[string]string `yaml:"when,omitempty"`
	// Metrics are recorded for every matching event.
	Metrics []Metric `yaml:"metrics,omitempty"`
	// Spans open, end, record or annotate spans for every matching event.
	Spans []SpanRule `yaml:"spans,omitempty"`
}

// MetricType is the kind of instrument a mapping records into.
type MetricType string

// The metric types.
const (
	MetricTypeCounter       MetricType = "counter"
	MetricTypeUpDownCounter MetricType = "updown_counter"
	MetricTypeHistogram     MetricType = "histogram"
	MetricTypeGauge         MetricType = "gauge"
)

var metricTypes = []MetricType{MetricTypeCounter, MetricTypeUpDownCounter, MetricTypeHistogram, MetricTypeGauge}

// UnmarshalText rejects unknown metric types and lists the allowed ones.
func (t *MetricType) UnmarshalText(b []byte) error {
	if !slices.Contains(metricTypes, MetricType(b)) {
		return fmt.Errorf("unknown metric type %q (allowed: %s)", b, joinTypes())
	}
	*t = MetricType(b)
	return nil
}

func joinTypes() string {
	s := make([]string, len(metricTypes))
	for i, t := range metricTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Metric is one instrument a route records into.
type Metric struct {
	// Name is the OpenTelemetry instrument name, e.g. tasker.step.execution.duration.
	// Prometheus shows it with dots as underscores, the unit word appended
	// and _total on counters: tasker_step_execution_duration_milliseconds.
	Name string `yaml:"name"`
	// Type is counter, updown_counter, histogram or gauge.
	Type MetricType `yaml:"type"`
	// Unit is the UCUM unit, e.g. ms, s, By, 1. Empty means none.
	Unit string `yaml:"unit,omitempty"`
	// Description becomes the Prometheus HELP text.
	Description string `yaml:"description,omitempty"`
	// Labels maps each label name to the event field that gives its value.
	// correlation_id and event_name name envelope fields.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Value is the numeric event field recorded. Counters and up-down
	// counters add 1 when it is empty; histograms and gauges need it.
	Value string `yaml:"value,omitempty"`
	// Buckets are a histogram's explicit bucket bounds, strictly increasing.
	// Empty means OpenTelemetry's defaults.
	Buckets []float64 `yaml:"buckets,omitempty"`
	// SeriesLimit overrides the router's series limit for this metric.
	SeriesLimit int `yaml:"series_limit,omitempty"`
	// Initial lists label sets that exist at 0 from start-up, before their
	// first event, so that dashboards and alerts see them: each gives a value
	// for exactly the metric's labels. A counter, up-down counter or gauge
	// without labels always starts at 0. Not allowed on histograms. The sets
	// count against the series limit; definitions of one metric in several
	// routes add their sets together.
	Initial []map[string]string `yaml:"initial,omitempty"`
}

// FieldError is a validation problem at a path in the router section, such as
// routes[3].metrics[0].labels.namespace. The config package turns the path
// into a file:line:column.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldPath returns the path of the field at fault.
func (e *FieldError) FieldPath() string { return e.Path }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

var (
	instrumentName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_./-]{0,254}$`)
	labelName      = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Validate checks the whole section against the event catalog and returns
// every problem joined, each a *FieldError whose path starts at the section
// (routes[i]...).
func (c Config) Validate() error {
	var errs []error
	if c.SeriesLimit < 0 {
		errs = append(errs, fieldErr("series_limit", "must not be negative, got %d", c.SeriesLimit))
	}
	errs = append(errs, c.Traces.validate("traces")...)
	errs = append(errs, validateSpans(c.Routes)...)
	first := map[string]string{} // metric name → path of its first definition
	defs := map[string]Metric{}
	initial := map[string]map[string]bool{} // metric name → its initial label sets, merged
	for i, r := range c.Routes {
		rp := "routes[" + strconv.Itoa(i) + "]"
		schemas, err := matchCatalog(r.Match)
		if err != nil {
			errs = append(errs, fieldErr(rp+".match", "%v", err))
		}
		errs = append(errs, validateWhen(rp+".when", r.When, schemas)...)
		if len(r.Metrics) == 0 && len(r.Spans) == 0 {
			errs = append(errs, fieldErr(rp+".metrics", "a route needs at least one metric or span rule"))
		}
		for j, m := range r.Metrics {
			mp := rp + ".metrics[" + strconv.Itoa(j) + "]"
			errs = append(errs, m.validate(mp, schemas)...)
			if prev, ok := defs[m.Name]; ok && m.Name != "" {
				if why := prev.conflict(m); why != "" {
					errs = append(errs, fieldErr(mp+".name", "metric %q is also defined at %s with a different %s", m.Name, first[m.Name], why))
				}
			} else if m.Name != "" {
				defs[m.Name], first[m.Name] = m, mp
			}
			if len(m.Initial) == 0 {
				continue
			}
			limit := cmp.Or(defs[m.Name].SeriesLimit, c.SeriesLimit, DefaultSeriesLimit)
			if initial[m.Name] == nil {
				initial[m.Name] = map[string]bool{}
			}
			for k, set := range m.Initial {
				key := fmt.Sprint(set) // fmt sorts map keys
				if initial[m.Name][key] {
					continue
				}
				initial[m.Name][key] = true
				if len(initial[m.Name]) > limit {
					errs = append(errs, fieldErr(mp+".initial["+strconv.Itoa(k)+"]", "metric %q has more initial label sets than its series limit, %d", m.Name, limit))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// validateWhen checks a route's filter: every key is a field of every
// matched event, and every value is text such a field can show (an int field
// never equals "02" or "x", so the route would silently match nothing).
func validateWhen(path string, when map[string]string, schemas []events.Schema) []error {
	var errs []error
	for _, key := range sortedKeys(when) {
		kp := path + "." + key
		for _, s := range schemas {
			f, ok := s.Field(key)
			if !ok {
				errs = append(errs, fieldErr(kp, "event %q has no field %q (fields: %s)", s.Name, key, strings.Join(s.FieldNames(), ", ")))
				continue
			}
			if err := checkText(f, when[key]); err != nil {
				errs = append(errs, fieldErr(kp, "event %q: %v", s.Name, err))
				break // the same field is usually the same type in every event
			}
		}
	}
	return errs
}

// checkText reports whether text is the canonical text of a value of field f,
// as events.Value.AppendText writes it: only then can a filter or a label
// value given in the configuration equal what an event carries.
func checkText(f events.Field, text string) error {
	canonical := text
	switch {
	case f.Name == events.FieldCorrelationID:
		id, err := events.ParseID(text)
		if err != nil {
			return fmt.Errorf("%s is a UUID, got %q", f.Name, text)
		}
		canonical = id.String()
	case f.Name == events.FieldEventName || f.Type == events.KindString:
	case f.Type == events.KindInt:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("field %q is an int: want its decimal text, e.g. 2, got %q", f.Name, text)
		}
		canonical = strconv.FormatInt(n, 10)
	case f.Type == events.KindFloat:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return fmt.Errorf("field %q is a float: want a number, e.g. 2.5, got %q", f.Name, text)
		}
		canonical = strconv.FormatFloat(x, 'g', -1, 64)
	case f.Type == events.KindBool:
		if text != "true" && text != "false" {
			return fmt.Errorf("field %q is a bool: want true or false, got %q", f.Name, text)
		}
	}
	if canonical != text {
		return fmt.Errorf("field %q is of type %s: write %q, not %q", f.Name, f.Type, canonical, text)
	}
	return nil
}

func (m Metric) validate(path string, schemas []events.Schema) []error {
	var errs []error
	if !instrumentName.MatchString(m.Name) {
		errs = append(errs, fieldErr(path+".name", "must match %s, got %q", instrumentName, m.Name))
	}
	if !slices.Contains(metricTypes, m.Type) {
		errs = append(errs, fieldErr(path+".type", "must be one of %s, got %q", joinTypes(), m.Type))
	}
	if m.SeriesLimit < 0 {
		errs = append(errs, fieldErr(path+".series_limit", "must not be negative, got %d", m.SeriesLimit))
	}
	for _, label := range sortedKeys(m.Labels) {
		lp := path + ".labels." + label
		if !labelName.MatchString(label) || strings.HasPrefix(label, "__") {
			errs = append(errs, fieldErr(lp, "label name must match %s and not start with __", labelName))
		}
		for _, s := range schemas {
			if _, ok := s.Field(m.Labels[label]); !ok {
				errs = append(errs, fieldErr(lp, "event %q has no field %q (fields: %s)", s.Name, m.Labels[label], strings.Join(s.FieldNames(), ", ")))
			}
		}
	}
	switch {
	case m.Value == "" && (m.Type == MetricTypeHistogram || m.Type == MetricTypeGauge):
		errs = append(errs, fieldErr(path+".value", "a %s needs a value field", m.Type))
	case m.Value != "":
		for _, s := range schemas {
			f, ok := s.Field(m.Value)
			switch {
			case !ok:
				errs = append(errs, fieldErr(path+".value", "event %q has no field %q (fields: %s)", s.Name, m.Value, strings.Join(s.FieldNames(), ", ")))
			case f.Type != events.KindInt && f.Type != events.KindFloat:
				errs = append(errs, fieldErr(path+".value", "field %q of event %q is a %s, want a number", m.Value, s.Name, f.Type))
			}
		}
	}
	errs = append(errs, m.validateInitial(path+".initial", schemas)...)
	if len(m.Buckets) > 0 && m.Type != MetricTypeHistogram {
		errs = append(errs, fieldErr(path+".buckets", "only a histogram has buckets"))
	}
	for k, b := range m.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			errs = append(errs, fieldErr(path+".buckets["+strconv.Itoa(k)+"]", "bounds must be finite, got %g", b))
			return errs
		}
	}
	for k := 1; k < len(m.Buckets); k++ {
		if m.Buckets[k] <= m.Buckets[k-1] {
			errs = append(errs, fieldErr(path+".buckets["+strconv.Itoa(k)+"]", "bounds must increase strictly, got %g after %g", m.Buckets[k], m.Buckets[k-1]))
			break
		}
	}
	return errs
}

// validateInitial checks that each initial label set gives exactly the
// metric's labels, with values their fields can carry.
func (m Metric) validateInitial(path string, schemas []events.Schema) []error {
	if len(m.Initial) == 0 {
		return nil
	}
	if m.Type == MetricTypeHistogram {
		return []error{fieldErr(path, "a histogram cannot start at 0: it has no zero observation")}
	}
	var errs []error
	labels := sortedKeys(m.Labels)
	known := "labels: " + strings.Join(labels, ", ")
	if len(labels) == 0 {
		known = "it has no labels and exists at 0 from start-up without initial"
	}
	for k, set := range m.Initial {
		sp := path + "[" + strconv.Itoa(k) + "]"
		for _, label := range labels {
			if _, ok := set[label]; !ok {
				errs = append(errs, fieldErr(sp, "no value for label %q (each set gives exactly the labels %s)", label, strings.Join(labels, ", ")))
			}
		}
		for _, label := range sortedKeys(set) {
			field, ok := m.Labels[label]
			if !ok {
				errs = append(errs, fieldErr(sp+"."+label, "%q is not a label of this metric (%s)", label, known))
				continue
			}
			for _, s := range schemas {
				if f, ok := s.Field(field); ok {
					if err := checkText(f, set[label]); err != nil {
						errs = append(errs, fieldErr(sp+"."+label, "event %q: %v", s.Name, err))
						break
					}
				}
			}
		}
	}
	return errs
}

// conflict says what differs between two definitions of one metric name.
func (m Metric) conflict(o Metric) string {
	switch {
	case m.Type != o.Type:
		return "type"
	case m.Unit != o.Unit:
		return "unit"
	case !slices.Equal(sortedKeys(m.Labels), sortedKeys(o.Labels)):
		return "label set"
	case !slices.Equal(m.Buckets, o.Buckets):
		return "bucket list"
	case m.Description != o.Description:
		return "description"
	case m.SeriesLimit != o.SeriesLimit:
		return "series_limit"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// matchCatalog returns the catalog schemas a pattern matches; a pattern that
// matches none is an error (a typo would otherwise route nothing, silently).
func matchCatalog(pattern string) ([]events.Schema, error) {
	p, err := compilePattern(pattern)
	if err != nil {
		return nil, err
	}
	for _, a := range p.alts { // each alternative must match something: a typo would route nothing
		if _, err := matchCatalog(a.text); err != nil {
			return nil, err
		}
	}
	var out []events.Schema
	for _, s := range events.Catalog() {
		if p.match(s.Name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		if p.literal {
			return nil, fmt.Errorf("unknown event %q (known: %s)", pattern, strings.Join(events.Names(), ", "))
		}
		return nil, fmt.Errorf("pattern %q matches no event in the catalog (known: %s)", pattern, strings.Join(events.Names(), ", "))
	}
	return out, nil
}

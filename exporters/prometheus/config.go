package prometheus

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// TranslationStrategy says how OpenTelemetry metric and label names become
// Prometheus names. Its values are the names of the
// github.com/prometheus/otlptranslator strategies and convert to
// otlptranslator.TranslationStrategyOption as they are.
type TranslationStrategy string

// The translation strategies. For a counter "jobs.completed" and a histogram
// "job.duration" in unit "ms" they produce:
//
//	UnderscoreEscapingWithSuffixes     jobs_completed_total  job_duration_milliseconds
//	UnderscoreEscapingWithoutSuffixes  jobs_completed        job_duration
//	NoUTF8EscapingWithSuffixes         jobs.completed_total  job.duration_milliseconds
//	NoTranslation                      jobs.completed        job.duration
//
// A name that already contains the suffix does not get it twice:
// "tasker.tasks.requests.total" becomes tasker_tasks_requests_total.
const (
	// TranslationStrategyUnderscoreEscapingWithSuffixes replaces every
	// character outside [a-zA-Z0-9_:] with "_" and adds unit and _total
	// suffixes. It is the default.
	TranslationStrategyUnderscoreEscapingWithSuffixes = TranslationStrategy("UnderscoreEscapingWithSuffixes")
	// TranslationStrategyUnderscoreEscapingWithoutSuffixes escapes as
	// above but adds no suffixes.
	TranslationStrategyUnderscoreEscapingWithoutSuffixes = TranslationStrategy("UnderscoreEscapingWithoutSuffixes")
	// TranslationStrategyNoUTF8EscapingWithSuffixes keeps UTF-8 names
	// (dots included) and adds suffixes. Only scrapers that negotiate
	// escaping=allow-utf-8 (OpenMetrics) see the dots; promhttp replaces
	// them with "_" for the others.
	TranslationStrategyNoUTF8EscapingWithSuffixes = TranslationStrategy("NoUTF8EscapingWithSuffixes")
	// TranslationStrategyNoTranslation keeps names exactly as
	// instrumented, with the same caveat about scrapers.
	TranslationStrategyNoTranslation = TranslationStrategy("NoTranslation")
)

// translationStrategies returns every valid TranslationStrategy, default
// first.
func translationStrategies() []TranslationStrategy {
	return []TranslationStrategy{
		TranslationStrategyUnderscoreEscapingWithSuffixes,
		TranslationStrategyUnderscoreEscapingWithoutSuffixes,
		TranslationStrategyNoUTF8EscapingWithSuffixes,
		TranslationStrategyNoTranslation,
	}
}

// allowedTranslationStrategies lists the valid values for error messages.
func allowedTranslationStrategies() string {
	all := translationStrategies()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// valid reports whether s is one of the defined strategies.
func (s TranslationStrategy) valid() bool {
	return slices.Contains(translationStrategies(), s)
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts exactly the
// names of the defined strategies and rejects anything else, listing the
// allowed values.
func (s *TranslationStrategy) UnmarshalText(text []byte) error {
	v := TranslationStrategy(text)
	if !v.valid() {
		return fmt.Errorf("unknown translation strategy %q: allowed values are %s", text, allowedTranslationStrategies())
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s TranslationStrategy) MarshalText() ([]byte, error) {
	return []byte(s), nil
}

// Config is the "exporters: prometheus:" section. Start from
// [Factory.NewDefaultConfig] or [NewDefaultConfig]: the zero value is not
// the default (TargetInfo defaults to true) and is not valid (it has no
// TranslationStrategy).
type Config struct {
	// TranslationStrategy says how OpenTelemetry names become Prometheus
	// names; one of UnderscoreEscapingWithSuffixes (default),
	// UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or
	// NoTranslation.
	TranslationStrategy TranslationStrategy `yaml:"translation_strategy"`
	// ScopeInfo adds the otel_scope_name, otel_scope_version and
	// otel_scope_schema_url labels to every series. Default false: series
	// carry exactly the labels the routes map.
	ScopeInfo bool `yaml:"scope_info"`
	// TargetInfo exports the target_info gauge carrying the resource
	// attributes. Default true.
	TargetInfo bool `yaml:"target_info"`
}

// NewDefaultConfig returns a Config with every default filled in.
func NewDefaultConfig() *Config {
	return &Config{
		TranslationStrategy: TranslationStrategyUnderscoreEscapingWithSuffixes,
		ScopeInfo:           false,
		TargetInfo:          true,
	}
}

// Validate returns every problem in c joined, each message starting with
// the field's YAML name.
func (c Config) Validate() error {
	var errs []error
	if !c.TranslationStrategy.valid() {
		errs = append(errs, fieldError("TranslationStrategy",
			"must be one of %s, got %q", allowedTranslationStrategies(), c.TranslationStrategy))
	}
	return errors.Join(errs...)
}

// fieldError prefixes a message with the YAML name of Config's field, read
// from its struct tag so that messages cannot drift from the tags.
func fieldError(field, format string, args ...any) error {
	f, ok := reflect.TypeFor[Config]().FieldByName(field)
	if !ok {
		panic("prometheus: Config has no field " + field)
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
}

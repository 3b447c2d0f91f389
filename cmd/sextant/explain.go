package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/sextant-telemetry/sextant/router"
)

// explainCmd is `sextant explain [--config FILE] --event FILE|- [--json]`:
// it reads events as sextant publish does and prints, for each, the routes
// it matches and the series and spans routing it would produce, recording
// nothing. Invalid events are reported as POST /events reports them, and
// then nothing is explained.
func explainCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `FILE` whose rules apply (default: the embedded one)")
	eventFile := fs.String("event", "", "`FILE` of events (a JSON array, one object, or NDJSON); - reads stdin")
	asJSON := fs.Bool("json", false, "print a JSON array, one explanation per event")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sextant explain [--config FILE] --event FILE|- [--json]\n\n"+
			"Shows which routes each event matches and the exact series and spans routing\n"+
			"it produces, without recording anything. Sensitive field values are masked.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *eventFile == "" {
		return usageError{errors.New("explain: --event FILE is required (- reads stdin)")}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	name, body, err := readEventsInput(*eventFile, stdin)
	if err != nil {
		return err
	}
	evs, err := decodeEvents(body, formatAuto, 0)
	if err != nil {
		return explainInputError(name, err)
	}
	// A router that is never started: it consumes nothing, and Explain
	// records nothing into its no-op meter.
	r, err := router.New(cfg.Router, router.Settings{MeterProvider: noop.NewMeterProvider(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	out := make([]explainedEvent, len(evs))
	for i := range evs {
		out[i] = newExplainedEvent(r.Explain(&evs[i]))
	}
	if err := r.Shutdown(ctx); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var b strings.Builder
	for _, x := range out {
		writeExplanation(&b, x)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// explainInputError is inputError worded for explain: the same problem
// per invalid event, as POST /events words it, then a summary.
func explainInputError(name string, err error) error {
	ie, ok := errors.AsType[*invalidEventsError](err)
	if !ok {
		return inputError(name, err)
	}
	errs := make([]error, 0, len(ie.problems)+2)
	for _, p := range ie.problems {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, p.Line, p.Message))
	}
	if more := ie.total - len(ie.problems); more > 0 {
		errs = append(errs, fmt.Errorf("%s: and %s", name, plural(more, "more problem")))
	}
	errs = append(errs, fmt.Errorf("%s: %d of %d events are invalid; none was explained", name, ie.invalid, ie.events))
	return errors.Join(errs...)
}

// explainedEvent is an explanation with each series' Prometheus name added;
// its fields shadow the embedded ones of the same JSON name.
type explainedEvent struct {
	router.Explanation
	Routes []explainedRoute `json:"routes"`
}

type explainedRoute struct {
	router.RouteMatch
	Metrics []explainedSeries `json:"metrics,omitempty"`
}

type explainedSeries struct {
	router.SeriesEffect
	// PromName is the name Prometheus shows, with the exporter's default
	// naming (UnderscoreEscapingWithSuffixes).
	PromName string `json:"prom_name"`
}

func newExplainedEvent(x router.Explanation) explainedEvent {
	out := explainedEvent{Explanation: x, Routes: make([]explainedRoute, len(x.Routes))}
	for i, m := range x.Routes {
		out.Routes[i] = explainedRoute{RouteMatch: m}
		for _, s := range m.Metrics {
			out.Routes[i].Metrics = append(out.Routes[i].Metrics, explainedSeries{SeriesEffect: s, PromName: seriesPromName(s)})
		}
	}
	return out
}

// seriesPromName is s's metric name as the Prometheus exporter shows it by
// default; the OpenTelemetry name when it cannot be translated.
func seriesPromName(s router.SeriesEffect) string {
	var typ otlptranslator.MetricType = otlptranslator.MetricTypeGauge
	switch s.Type {
	case router.MetricTypeCounter:
		typ = otlptranslator.MetricTypeMonotonicCounter
	case router.MetricTypeUpDownCounter:
		typ = otlptranslator.MetricTypeNonMonotonicCounter
	case router.MetricTypeHistogram:
		typ = otlptranslator.MetricTypeHistogram
	}
	namer := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes)
	name, err := namer.Build(otlptranslator.Metric{Name: s.Metric, Unit: s.Unit, Type: typ})
	if err != nil {
		return s.Metric
	}
	return name
}

// writeExplanation writes one event's explanation as text: the event line,
// then per route its line and, indented, what it records.
func writeExplanation(b *strings.Builder, x explainedEvent) {
	fmt.Fprintf(b, "%s id=%s correlation_id=%s\n", x.Event, x.EventID, x.CorrelationID)
	if len(x.Routes) == 0 {
		b.WriteString("  no route matches\n")
		return
	}
	for _, m := range x.Routes {
		fmt.Fprintf(b, "  routes[%d] match=%s", m.Index, m.Match)
		if m.Excluded != "" {
			fmt.Fprintf(b, " excluded: %s", m.Excluded)
		}
		b.WriteByte('\n')
		for _, s := range m.Metrics {
			fmt.Fprintf(b, "    metric %s %s %s %s %s\n", s.PromName, s.Type, labelText(s.Labels), s.Op, strconv.FormatFloat(s.Value, 'g', -1, 64))
		}
		for _, s := range m.Spans {
			fmt.Fprintf(b, "    span %s %s", s.Op, s.Span)
			if s.Key != "" {
				fmt.Fprintf(b, " key=%s", s.Key)
			}
			if len(s.Parents) > 0 {
				fmt.Fprintf(b, " parent %s", strings.Join(s.Parents, ","))
			}
			if s.Duration > 0 {
				fmt.Fprintf(b, " duration %s", s.Duration)
			}
			if len(s.Attributes) > 0 {
				fmt.Fprintf(b, " attributes %s", labelText(s.Attributes))
			}
			if s.Status != "" {
				fmt.Fprintf(b, " status %s", s.Status)
			}
			b.WriteByte('\n')
		}
		for _, s := range m.Skipped {
			fmt.Fprintf(b, "    skipped %s\n", s)
		}
	}
	if x.Unmatched {
		b.WriteString("  no route matches\n")
	}
}

// labelText writes labels as Prometheus does: {name="value",...}.
func labelText(ls []router.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// Package prometheus owns the built-in Prometheus exporter: a pull exporter
// whose OpenTelemetry Reader is scraped over HTTP from its own registry.
//
// The exporter wraps go.opentelemetry.io/otel/exporters/prometheus. It keeps
// a private prometheus.Registry (never the global one), always sets the
// translation strategy explicitly (the upstream default has changed between
// releases), and serves the exposition through promhttp with
// ContinueOnError, so that one metric that fails translation does not fail
// the whole scrape.
//
// One default differs from the upstream exporter, on purpose: scope_info is
// off, so a series carries exactly the labels a route maps and no
// otel_scope_* labels. target_info stays on, as upstream, and the default
// strategy, UnderscoreEscapingWithSuffixes, is upstream's current one, but
// written into the configuration rather than left to the library.
//
// It imports the exporters contract, OpenTelemetry and the Prometheus client
// libraries only. It must not import config, router, plugins, another
// exporter, or a YAML decoder: the config loader decodes the
// "exporters: prometheus:" section into [Factory.NewDefaultConfig]'s result,
// whose enum fields implement encoding.TextUnmarshaler.
//
// Concurrency: every method of [*Exporter] is safe for concurrent use,
// Shutdown included. The exporter starts no goroutines of its own.
package prometheus

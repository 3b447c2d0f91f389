// Package router owns the rule engine: it compiles router.Config into an
// immutable table, consumes event batches from the bus through a watermill
// Router, matches each event by name and records the metrics its rules name
// into OpenTelemetry instruments, with per-metric series limits and
// self-metrics about what it received, routed, dropped and collapsed.
//
// It imports events, watermill and OpenTelemetry; never config, cmd or a
// concrete exporter. Route and the bus handler are safe for concurrent use;
// the compiled table is swapped atomically and never mutated.
package router

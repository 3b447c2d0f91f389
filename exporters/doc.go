// Package exporters is the exporter contract and the snapshot exports built
// on it. It owns the Component, Puller and SnapshotExporter interfaces, the
// Factory that builds exporters from a configuration section, Settings and
// ErrShutdown; the Snapshot model with Read, which takes one from the
// MeterProvider named exactly as /metrics names it, and Filter, which
// selects part of one; and the Registry, which holds snapshot exporters by
// name and format, runs an export through a format's failover chain and
// publishes the export's lifecycle events. Built-in exporters live in
// sub-packages (exporters/prometheus, exporters/json, exporters/csv);
// out-of-process ones in plugins.
//
// It imports the OpenTelemetry metric SDK, otlptranslator (for the
// Prometheus exporter's naming) and events (for the lifecycle events),
// never a concrete exporter and never config. The interfaces are
// implemented by third parties, so each method documents concurrency,
// context, data ownership and behaviour after Shutdown. Everything here is
// safe for concurrent use: Read and Filter.Apply build new snapshots and
// modify none, and the Registry swaps immutable lists under a lock.
package exporters

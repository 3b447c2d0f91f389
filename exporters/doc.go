// Package exporters is the exporter contract: the Component, Exporter and
// Puller interfaces, the Factory that builds them from a configuration section,
// Settings, and ErrShutdown. Built-in exporters live in sub-packages
// (exporters/prometheus); out-of-process ones in plugins.
//
// It imports the OpenTelemetry metric SDK types only, never a concrete
// exporter and never config. The interfaces are implemented by third parties,
// so each method documents concurrency, context, data ownership and
// behaviour after Shutdown.
package exporters

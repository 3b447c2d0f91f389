// Package host runs Sextant's exporter plugins: it launches each plugin
// executable with HashiCorp go-plugin over gRPC (or dials a plugin serving
// at an address), describes and configures it, registers it in the
// exporters.Registry as an exporters.SnapshotExporter, and keeps it
// healthy: crashed or hung plugins are restarted with exponential backoff,
// a plugin that keeps failing is cut off by a circuit breaker, and every
// line it logs is re-logged through slog with plugin=<name>.
//
// It owns the plugins section's Config and the Host. It imports the
// exporters contract, events, plugins/proto and plugins/wire; it must not
// import config, router, a built-in exporter or plugins/sdk.
//
// Concurrency: every method of Host, and every method of the exporters it
// registers, is safe for concurrent use. The Host owns its goroutines (one
// supervisor and one callback queue per plugin, plus go-plugin's own) and
// Shutdown stops and waits for all of them and for every plugin process.
package host

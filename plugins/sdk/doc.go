// Package sdk is the Go SDK for Sextant exporter plugins: a plugin is a
// type with Info and Export, and a main that calls [Serve].
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"io"
//
//		"github.com/sextant-telemetry/sextant/plugins/sdk"
//	)
//
//	type exporter struct{}
//
//	func (exporter) Info() sdk.Info {
//		return sdk.Info{Name: "count", Version: "1.0.0", Formats: []string{"count"}}
//	}
//
//	func (exporter) Export(ctx context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
//		_, err := fmt.Fprintf(w, "%d series\n", req.Snapshot.SeriesCount())
//		return sdk.Result{ContentType: "text/plain; charset=utf-8"}, err
//	}
//
//	func main() { sdk.Serve(exporter{}) }
//
// Built into a binary and listed under plugins.instances in Sextant's YAML,
// it answers /export?format=count. Optional interfaces add to it:
// [Configurer] takes the plugin's configuration section (decode it with
// [Config.Decode], which reports every wrong field with its path),
// [ExportHooks] hears of every export and [CacheSyncer] of cache syncs.
// [Logger] logs to standard error in a form Sextant re-logs as structured
// records; standard output is go-plugin's. plugins/examples holds two
// complete plugins, and docs/plugins.md the author's guide.
//
// # Protocol
//
// The SDK speaks sextant.plugin.v1 (plugins/proto): launched by Sextant, over
// HashiCorp go-plugin's gRPC transport; run by hand with --listen, as a
// remote plugin on plain gRPC. Metrics arrive as OTLP and are converted with
// plugins/wire into the snapshot an in-process exporter gets
// ([Request.Snapshot]); the OTLP message stays at hand ([Request.OTLP]).
// The SDK decodes the request's bytes straight into the snapshot, without
// building the OTLP message unless the plugin asks for it, which makes an
// export through a plugin several times cheaper.
// Errors from Export become gRPC statuses: mark them with [InvalidArgument]
// or [Unavailable]; anything else is INTERNAL. A panic in the plugin's code
// is recovered into an INTERNAL error and logged with its stack, so one bad
// export does not end the plugin.
//
// # Concurrency
//
// Export and the hooks may be called concurrently, for concurrent exports.
// Configure never runs at the same time as any of them: the SDK waits for
// calls in flight, runs Configure, then lets calls in again.
//
// The package imports the exporters contract, plugins/proto and
// plugins/wire, go-plugin and gRPC. It must not import config, router, a
// built-in exporter or the host side (plugins/host).
package sdk

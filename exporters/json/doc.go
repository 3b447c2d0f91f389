// Package json owns the built-in JSON export format, schema
// "sextant.metrics/v1" (docs/exports.md): [Encode] writes a snapshot
// losslessly (every value, bucket, exemplar, time and resource attribute,
// floats as their shortest round-trip digits), [Decode] reads it back into
// the same snapshot, and [Exporter] is the exporters.SnapshotExporter that
// the export registry runs for format=json.
//
// The package is named json after its format, as exporters/prometheus is;
// it imports encoding/json as stdjson. Importers that need both alias this
// one (jsonexp).
//
// It imports the exporters contract and the standard library only. It must
// not import config, router, plugins or another exporter.
//
// Concurrency: Encode, Decode and every method of [*Exporter] are safe for
// concurrent use; nothing keeps state between calls.
package json

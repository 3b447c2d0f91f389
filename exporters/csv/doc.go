// Package csv owns the built-in CSV export format (docs/exports.md): one
// RFC 4180 table per snapshot, one row per Prometheus sample, for pandas
// and spreadsheets. [Encode] writes it, [Decode] rebuilds the families
// from the rows, and [Exporter] is the exporters.SnapshotExporter that the
// export registry runs for format=csv.
//
// Every number survives the round trip exactly (floats as strconv's
// shortest 'g' digits, counts as integers). A table has no place for what
// is not per sample: the resource, descriptions, families without series,
// exemplar times and labels, and the snapshot's own time; an empty label
// value reads back as no label (as in Prometheus); a CR LF inside a value
// reads back as LF (encoding/csv). docs/exports.md lists these.
//
// The package is named csv after its format, as exporters/prometheus is;
// it imports encoding/csv as stdcsv. Importers that need both alias this
// one (csvexp).
//
// It imports the exporters contract and the standard library only. It must
// not import config, router, plugins or another exporter.
//
// Concurrency: Encode, Decode and every method of [*Exporter] are safe for
// concurrent use; nothing keeps state between calls.
package csv

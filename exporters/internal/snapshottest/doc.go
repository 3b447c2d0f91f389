// Package snapshottest owns the snapshots that the export encoders' tests,
// fuzz seeds, examples and benchmarks share: [Sample], one snapshot with
// every case an encoder must get right, and [Generate], N series of mixed
// types for benchmarks. It also converts a snapshot into what the other
// side of a comparison needs: the OpenTelemetry collection it was read from
// ([ResourceMetrics]) and a client_golang collector serving the same series
// ([Collector]), and compares two snapshots value for value ([Diff]).
//
// It is a test helper: only tests, examples and benchmarks import it. It
// imports the exporters contract, OpenTelemetry's metricdata and
// client_golang, never an encoder, so that every encoder is checked against
// one independent description of the data.
//
// Concurrency: every function is pure and safe for concurrent use; each
// call returns a new snapshot that shares nothing with another.
package snapshottest

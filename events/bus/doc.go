// Package bus carries batches of events over watermill: a batching Publisher
// that keeps per-partition publish order, the in-memory GoChannel bus
// configured for order and backpressure, the durable PostgreSQL bus
// (watermill-sql over a pgx pool), and the bus section of the configuration.
//
// It imports events, the standard library, watermill, watermill-sql, pgx and
// the OpenTelemetry trace API (to carry a publisher's span context in events).
// A Publisher and a Postgres are safe for concurrent use; their goroutines
// are owned by them and stopped by Close.
package bus

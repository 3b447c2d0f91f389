// Package bus carries batches of events over watermill: a batching Publisher
// that keeps publish order, the in-memory GoChannel bus configured for order
// and backpressure, and the bus section of the configuration.
//
// It imports events, the standard library and watermill only. A Publisher is
// safe for concurrent use; its one background goroutine is owned by it and
// stopped by Close.
package bus

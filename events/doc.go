// Package events owns Sextant's domain: the Event envelope, the catalog of
// lifecycle event names with their field schemas, and the compact binary wire
// encoding that carries batches of events on the bus.
//
// It imports only the standard library (the bus lives in events/bus, which adds
// watermill). Event values are plain data: safe to read concurrently, not to
// mutate concurrently. The catalog is immutable after package initialisation.
package events

// Package events owns Sextant's domain: the Event envelope, the catalog of
// lifecycle event names with their field schemas, and the compact binary wire
// encoding that carries batches of events on the bus.
//
// It imports only the standard library (the bus lives in events/bus, which adds
// watermill). Event values are plain data: safe to read concurrently, not to
// mutate concurrently.
//
// The built-in catalog is fixed at compile time; Register adds an
// application's own events at runtime. The catalog is the one piece of
// process-wide mutable state, because an event name must mean one thing in
// the whole process: readers (Lookup, Catalog, Names, InGroup, Groups) see an
// immutable snapshot without locking, and Register swaps in a new one, so
// every function here is safe for concurrent use.
//
// docs/events.md is generated from the catalog; regenerate it with
// `make docs` after changing catalog.go.
package events

//go:generate go run ./internal/gencatalogdoc -out ../docs/events.md

// Package router owns the rule engine and the subscriber API. It compiles
// router.Config into an immutable table, consumes event batches from the bus
// through a watermill Router, matches each event by name (and by the route's
// when filter) and records the metrics its rules name into OpenTelemetry
// instruments, with per-metric series limits, series that exist at 0 from
// start-up, and self-metrics about what it received, routed, dropped and
// collapsed. After routing, it hands each valid bus event to the Go
// subscribers (Subscribe) whose names, patterns or groups match it.
//
// It imports events, watermill and OpenTelemetry; never config, cmd or a
// concrete exporter. Route, HandleMessage, Subscribe and Subscribers are
// safe for concurrent use; the compiled table and the subscriber lookup are
// immutable snapshots swapped atomically, so the hot path takes no lock and
// a router without subscribers pays one atomic load per batch. Each
// subscriber owns one goroutine and a bounded queue, so a slow, failing or
// panicking handler affects only itself (unless it chose
// OverflowPolicyBlock, which is backpressure by design); Shutdown and
// unsubscribe stop and wait for those goroutines.
package router

// Package lifecycle owns Sextant's instrumented lifecycle components (task
// initializer, step enqueuer, result processor and task finalizer on the
// orchestration side; step claim, command processor and result sender on the
// worker side) and the small reference workflow Engine that runs them for the
// demo and the tests; and the database instrumentation — a pgx tracer and a
// pool reader that publish db.* events (dbtrace.go).
//
// It imports only events, the standard library and, for the database
// instrumentation, pgx: never events/bus, router,
// exporters, plugins or config. Events leave through the Publisher interface
// declared here, which *bus.Publisher satisfies. Every event is a catalog
// event that passes (*events.Event).Validate, carries its task's correlation
// id and task_uuid, and, for step events, step_uuid, step_name and namespace.
//
// # Concurrency
//
// Engine's methods are safe for concurrent use. An Engine owns one
// orchestration goroutine and EngineConfig.Workers worker goroutines per
// namespace; Start starts them and Shutdown stops them and waits for them. No
// goroutine outlives Shutdown and the package has no mutable package-level
// state. Task and step state belongs to the orchestration goroutine alone:
// steps travel to workers and back as messages, so no task state is shared
// under locks. Registry values are immutable and safe to share.
//
// Each task's events reach the Publisher in causal order: orchestration
// processes a step result only after the worker has published
// step.result_submitted, and a task's handle is done only after its last
// event has been published.
//
// # Failure
//
// Publishing never fails the work (the reference system's fire-and-forget
// rule): a Publish error is counted in Stats.PublishErrors and the task
// carries on. There are no retries in this version: a step whose handler
// fails fails its task; ready steps not yet enqueued are dropped, steps
// already on a queue or running finish, and then the task is finalized with
// final_state "error" and task.failed is published.
//
// # Design notes
//
// The components are unexported types composed by Engine. They share the
// engine's task model (one owner goroutine, steps as messages); exporting them
// would freeze that model before a second user of it exists. Durations are
// measured as Settings.Now().Sub(start), which is monotonic with the default
// time.Now.
package lifecycle

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
// orchestration goroutine, EngineConfig.Workers worker goroutines per
// namespace (each publishing worker.started and worker.stopped) and a
// sampler goroutine; Start starts them and Shutdown stops them and waits
// for them. No
// goroutine outlives Shutdown and the package has no mutable package-level
// state. Task and step state belongs to the orchestration goroutine alone:
// steps travel to workers and back as messages, so no task state is shared
// under locks. Registry values are immutable and safe to share.
//
// Each task's events reach the Publisher in causal order: orchestration
// starts on a task only after Submit has published
// observability.task.enqueue, processes a step result only after the worker
// has published step.result_submitted, and a task's handle is done only
// after its last event has been published. Events about no task (samples,
// worker and breaker events) carry the engine's own correlation id.
//
// # Task states
//
// A task moves pending (in the inbox; entered at Submit, without an event)
// → initializing → steps_in_process ⇄ waiting_for_retry → finalizing →
// complete, error or cancelled, and orchestration publishes
// task.state_transitioned on every move. waiting_for_retry means nothing of
// the task runs and a failed step waits out its backoff. Around the moves
// orchestration publishes observability.task.enqueue (Submit's inbox wait),
// observability.step.find_viable on every search for ready steps (at
// initialization and after each success), workflow.viable_steps_discovered
// when one finds some, workflow.no_viable_steps when a result leaves an
// unfinished task with nothing new to run (steps_in_progress,
// awaiting_dependencies or retry_backoff) and observability.task.finalize
// with the task's whole-life summary.
//
// # Failure and retries
//
// Publishing never fails the work (the reference system's fire-and-forget
// rule): a Publish error is counted in Stats.PublishErrors and the task
// carries on.
//
// A failed step attempt is retried with exponential backoff
// (EngineConfig.MaxAttempts, BackoffBase, BackoffMax, jittered from
// Settings.Rand): orchestration publishes step.retry_requested and
// observability.step.backoff, keeps the retry in a heap it owns (one timer,
// no goroutine per retry) and re-enqueues the step when it is due
// (step.enqueued with the new attempt). step.failed's retryable says whether
// another attempt is allowed. Errors wrapping ErrPermanent, panics and
// injected validation errors are not retried; a failure of the last allowed
// attempt publishes observability.step.max_retries_reached. Either way the
// task fails: ready steps not yet on a queue are dropped and, like the steps
// that never became ready, get observability.step.skip (reason task_failed);
// steps already queued or running finish; then the task is finalized with
// final_state "error" and task.failed is published.
//
// # Cancellation
//
// TaskHandle.Cancel publishes task.cancel_requested; orchestration starts no
// more of the task's steps and withdraws those not yet claimed (from its
// backlog, the worker queue or the retry heap), which get step.cancelled and
// observability.step.skip (reason task_cancelled); steps that never became
// ready get the skip only. Running steps finish; then task.finalized
// (final_state "cancelled") and task.cancelled are published and the
// handle's error wraps ErrCancelled.
//
// # Live-state gauges and channels
//
// A sampler goroutine publishes, every EngineConfig.SampleInterval, at Start
// and once more after Shutdown stopped everything (so the gauges fall back
// to 0), a reading of every series including zeros:
// observability.task.active_count per unfinished state,
// observability.step.ready_count (staged or queued, not claimed),
// observability.step.active_executions (handlers running) and
// observability.queue.depth per namespace, and resilience.channel_sampled
// for each bounded channel: ChannelOrchestrationCommand (the inbox),
// ChannelCompletion (results from workers to orchestration, the reference
// system's FFI completion channel) and QueueChannel(namespace) for each
// worker queue. The counts are atomics updated by the goroutine that
// changes them. A send that finds one of those channels full publishes
// resilience.channel_full once, then waits.
//
// A worker's result send slower than EngineConfig.SlowSendThreshold
// publishes resilience.completion_slow_send and counts as a failure of the
// ffi_completion CircuitBreaker (Engine.Breakers); a faster one counts as a
// success. The breaker opens after 5 slow sends in a row and probes again
// after 1s. While it is open a worker holds its result, publishes
// resilience.completion_rejected and asks again after a short, growing
// wait, so no result is lost.
//
// # Performance monitoring
//
// Each operation of the components — initialize, enqueue (one step),
// process_result and finalize in orchestration; claim, execute and submit
// in a worker — is checked against EngineConfig.Performance when it ends:
// slower than its threshold publishes performance.slow_operation, a heap
// growth above its threshold memory.spike_detected, both with the task's
// correlation id and, for step operations, the step. Durations come from
// the timestamps the components take for their own events (process_result
// takes one more at its end, after publishing and staging); heap readings
// (runtime/metrics, about 250 ns) are shared for up to a millisecond of the
// engine's clock, so the check costs a few tens of nanoseconds. The events
// of enqueue, claim, execute and submit precede the step's
// step.result_processed, and every one precedes its task's final event, so
// that they fall inside the step's and the task's spans.
//
// # Design notes
//
// The components are unexported types composed by Engine. They share the
// engine's task model (one owner goroutine, steps as messages); exporting them
// would freeze that model before a second user of it exists. Durations are
// measured as Settings.Now().Sub(start), which is monotonic with the default
// time.Now.
package lifecycle

package events

import "slices"

// Task events, published by orchestration about a task as a whole.
const (
	TaskInitializeRequested = "task.initialize_requested"
	TaskInitialized         = "task.initialized"
	TaskStateTransitioned   = "task.state_transitioned"
	TaskCancelRequested     = "task.cancel_requested"
	TaskCancelled           = "task.cancelled"
	TaskFinalized           = "task.finalized"
	TaskCompleted           = "task.completed"
	TaskFailed              = "task.failed"
	TaskResolvedManually    = "task.resolved_manually"
)

// Step events. Orchestration enqueues steps and processes their results;
// workers claim, execute and submit them.
const (
	StepEnqueued         = "step.enqueued"
	StepClaimed          = "step.claimed"
	StepExecutionStarted = "step.execution_started"
	StepCompleted        = "step.completed"
	StepFailed           = "step.failed"
	StepResultSubmitted  = "step.result_submitted"
	StepResultProcessed  = "step.result_processed"
	StepRetryRequested   = "step.retry_requested"
	StepCancelled        = "step.cancelled"
)

// Workflow events: orchestration's decisions about what runs next.
const (
	WorkflowViableStepsDiscovered = "workflow.viable_steps_discovered"
	WorkflowNoViableSteps         = "workflow.no_viable_steps"
)

// Observability events: timings and live-state samples that describe the
// engine rather than one task's business.
const (
	ObservabilityTaskEnqueue           = "observability.task.enqueue"
	ObservabilityTaskFinalize          = "observability.task.finalize"
	ObservabilityStepFindViable        = "observability.step.find_viable"
	ObservabilityStepBackoff           = "observability.step.backoff"
	ObservabilityStepSkip              = "observability.step.skip"
	ObservabilityStepMaxRetriesReached = "observability.step.max_retries_reached"
	ObservabilityTaskActiveCount       = "observability.task.active_count"
	ObservabilityStepReadyCount        = "observability.step.ready_count"
	ObservabilityStepActiveExecutions  = "observability.step.active_executions"
	ObservabilityQueueDepth            = "observability.queue.depth"
)

// Worker events: a worker goroutine's own life.
const (
	WorkerStarted = "worker.started"
	WorkerStopped = "worker.stopped"
)

// Database events, published by the pgx tracer and pool reader in lifecycle.
const (
	DBQueryExecuted        = "db.query_executed"
	DBTransactionCompleted = "db.transaction_completed"
	DBPoolAcquired         = "db.pool_acquired"
	DBPoolStats            = "db.pool_stats"
)

// Messaging events, published by the bus about its own work. They never
// describe a message that carries only messaging or database events, so
// instrumenting the bus cannot feed on itself.
const (
	QueueMessageSent     = "queue.message_sent"
	QueueMessageReceived = "queue.message_received"
	QueueMessageDeleted  = "queue.message_deleted"
	QueueStats           = "queue.stats"
	QueueRedelivered     = "queue.message_redelivered"
	QueueError           = "queue.error"
	QueueRetryAttempt    = "queue.retry_attempt"
	QueueCircuitState    = "queue.circuit_breaker_state"
)

// Resilience events, published by circuit breakers, the HTTP intake and the
// channel monitor. Circuit breaker states are encoded the same way
// everywhere: 0 closed, 1 half-open, 2 open.
const (
	ResilienceCircuitBreakerState = "resilience.circuit_breaker_state"
	ResilienceRequestRejected     = "resilience.request_rejected"
	ResilienceCompletionSlowSend  = "resilience.completion_slow_send"
	ResilienceCompletionRejected  = "resilience.completion_rejected"
	ResilienceChannelSampled      = "resilience.channel_sampled"
	ResilienceChannelFull         = "resilience.channel_full"
)

// Telemetry export events, published by whatever exports a metrics snapshot.
const (
	TelemetryExportRequested = "telemetry.export_requested"
	TelemetryExportCompleted = "telemetry.export_completed"
	TelemetryExportFailed    = "telemetry.export_failed"
	TelemetryCacheSynced     = "telemetry.cache_synced"
)

// Plugin events, published by the exporter plugin host.
const (
	PluginRegistered   = "plugin.registered"
	PluginUnregistered = "plugin.unregistered"
)

// Performance events, published by the engine's performance monitor when a
// lifecycle operation is slower, or grows the heap more, than its threshold.
const (
	PerformanceSlowOperation = "performance.slow_operation"
	MemorySpikeDetected      = "memory.spike_detected"
)

// Field describes one attribute of a catalog event.
type Field struct {
	Name        string
	Type        Kind
	Required    bool
	Description string
}

// Groups of the catalog. A group is what subscribers and docs select by; it
// is the name's first segment except for database (db.*) and performance
// (memory.* too).
const (
	GroupTask          = "task"
	GroupStep          = "step"
	GroupWorkflow      = "workflow"
	GroupObservability = "observability"
	GroupWorker        = "worker"
	GroupQueue         = "queue"
	GroupDatabase      = "database"
	GroupResilience    = "resilience"
	GroupTelemetry     = "telemetry"
	GroupPlugin        = "plugin"
	// GroupPerformance holds performance.* and memory.*: both come from the
	// engine's performance monitor.
	GroupPerformance = "performance"
	// GroupCustom holds the events applications register with Register.
	GroupCustom = "custom"
)

// Schema is the catalog entry of one event name.
type Schema struct {
	Name        string
	Group       string // one of the Group constants
	Version     uint16
	Description string
	// Source says which component publishes the event, e.g. "orchestration".
	Source string
	// External marks an event that Sextant's own code never publishes:
	// applications, operators' tools or plugins do. Every other catalog
	// event has a publisher in this repository, and a test proves it.
	External bool
	Fields   []Field
}

// Field returns the schema's field called name. The envelope fields
// correlation_id and event_name are reported as required strings of every event.
func (s Schema) Field(name string) (Field, bool) {
	switch name {
	case FieldCorrelationID:
		return Field{Name: name, Type: KindString, Required: true, Description: "the envelope's correlation id"}, true
	case FieldEventName:
		return Field{Name: name, Type: KindString, Required: true, Description: "the envelope's event name"}, true
	}
	i := slices.IndexFunc(s.Fields, func(f Field) bool { return f.Name == name })
	if i < 0 {
		return Field{}, false
	}
	return s.Fields[i], true
}

// FieldNames lists the schema's attribute names, envelope fields first.
func (s Schema) FieldNames() []string {
	names := []string{FieldCorrelationID, FieldEventName}
	for _, f := range s.Fields {
		names = append(names, f.Name)
	}
	return names
}

// Common fields, shared so that the same field means the same thing everywhere.
var (
	fTaskUUID       = Field{Name: "task_uuid", Type: KindString, Required: true, Description: "the task's UUIDv7"}
	fStepUUID       = Field{Name: "step_uuid", Type: KindString, Required: true, Description: "the workflow step's UUIDv7"}
	fTaskType       = Field{Name: "task_type", Type: KindString, Required: true, Description: "the task (workflow) name, e.g. mathematical_sequence"}
	fNamespace      = Field{Name: "namespace", Type: KindString, Required: true, Description: "the task namespace, e.g. rust_e2e_linear"}
	fStepName       = Field{Name: "step_name", Type: KindString, Required: true, Description: "the step's name within its workflow"}
	fDurationMS     = Field{Name: "duration_ms", Type: KindFloat, Required: true, Description: "how long the operation took, in milliseconds"}
	fResultType     = Field{Name: "result_type", Type: KindString, Required: true, Description: "step.result_processed: success or error; step.result_submitted: completion (a worker submits every finished attempt)"}
	fAttempt        = Field{Name: "attempt", Type: KindInt, Description: "1 for the first attempt"}
	fMaxAttempts    = Field{Name: "max_attempts", Type: KindInt, Description: "how many attempts the step may make in all"}
	fHandlerType    = Field{Name: "handler_type", Type: KindString, Description: "the step handler's language, e.g. go"}
	fClaimMethod    = Field{Name: "claim_method", Type: KindString, Required: true, Description: "event (pushed to the worker) or poll (found by polling)"}
	fStepCount      = Field{Name: "step_count", Type: KindInt, Required: true, Description: "how many steps the task has"}
	fFinalState     = Field{Name: "final_state", Type: KindString, Required: true, Description: "complete, error or cancelled"}
	fErrorType      = Field{Name: "error_type", Type: KindString, Required: true, Description: "a low-cardinality error class, e.g. handler_error"}
	fErrorMessage   = Field{Name: "error_message", Type: KindString, Description: "the error text; kept out of labels"}
	fResult         = Field{Name: "result", Type: KindString, Required: true, Description: "success or error"}
	fRetryable      = Field{Name: "retryable", Type: KindBool, Description: "whether the step will be attempted again"}
	fFromState      = Field{Name: "from_state", Type: KindString, Required: true, Description: "the state left"}
	fToState        = Field{Name: "to_state", Type: KindString, Required: true, Description: "the state entered"}
	fReason         = Field{Name: "reason", Type: KindString, Required: true, Description: "a low-cardinality reason, documented with each event"}
	fBackoffMS      = Field{Name: "backoff_ms", Type: KindFloat, Required: true, Description: "how long the step waits before its next attempt, in milliseconds"}
	fBackoffType    = Field{Name: "backoff_type", Type: KindString, Description: "how the backoff grows, e.g. exponential"}
	fViableCount    = Field{Name: "viable_count", Type: KindInt, Required: true, Description: "how many steps became ready to run"}
	fCompletedSteps = Field{Name: "completed_steps", Type: KindInt, Description: "steps that succeeded"}
	fFailedSteps    = Field{Name: "failed_steps", Type: KindInt, Description: "steps that failed for good"}
	fInboxWaitMS    = Field{Name: "inbox_wait_ms", Type: KindFloat, Required: true, Description: "how long Submit waited for room in the inbox, in milliseconds"}
	fTaskState      = Field{Name: "task_state", Type: KindString, Required: true, Description: "a task state: pending, initializing, steps_in_process, waiting_for_retry or finalizing"}
	fCount          = Field{Name: "count", Type: KindInt, Required: true, Description: "how many, at the time of the sample"}
	fWorkerID       = Field{Name: "worker_id", Type: KindString, Required: true, Description: "the worker's name, unique within its process"}
	fCapacity       = Field{Name: "capacity", Type: KindInt, Required: true, Description: "how many items the channel or queue holds when full"}
	fLength         = Field{Name: "length", Type: KindInt, Required: true, Description: "items in the channel or queue at the time of the sample"}
	fUsagePercent   = Field{Name: "usage_percent", Type: KindFloat, Required: true, Description: "length / capacity × 100"}

	fOperation = Field{Name: "operation", Type: KindString, Required: true, Description: "what was done: for db.* the SQL command (select, insert, update, delete, begin, commit, rollback or other); for performance.* and memory.* the lifecycle operation (initialize, enqueue, process_result, finalize, claim, execute or submit)"}
	fOutcome   = Field{Name: "outcome", Type: KindString, Required: true, Description: "success or error (queries); commit or rollback (transactions)"}
	fPool      = Field{Name: "pool", Type: KindString, Required: true, Description: "the connection pool's name, e.g. bus"}
	fActive    = Field{Name: "active", Type: KindInt, Required: true, Description: "connections in use"}
	fIdle      = Field{Name: "idle", Type: KindInt, Required: true, Description: "connections idle in the pool"}
	fMaxConns  = Field{Name: "max", Type: KindInt, Required: true, Description: "the pool's size limit"}
	fWaitMS    = Field{Name: "wait_ms", Type: KindFloat, Required: true, Description: "how long acquiring a connection took, in milliseconds"}
	fQueue     = Field{Name: "queue", Type: KindString, Required: true, Description: "the queue: a bus topic (partition), or worker_<namespace>_queue for an engine's namespace queue"}
	fEvents    = Field{Name: "events", Type: KindInt, Required: true, Description: "how many events the message carries"}
	fDepth     = Field{Name: "depth", Type: KindInt, Required: true, Description: "messages not yet acknowledged by the consumer group, or steps waiting in a namespace queue"}
	fAge       = Field{Name: "age_seconds", Type: KindFloat, Required: true, Description: "age of the oldest waiting message or step, in seconds (0 when none)"}
	fState     = Field{Name: "state", Type: KindInt, Required: true, Description: "0 closed, 1 half-open, 2 open"}

	fComponent     = Field{Name: "component", Type: KindString, Required: true, Description: "the component that owns the circuit breaker or channel, e.g. orchestration or api"}
	fPrevState     = Field{Name: "previous_state", Type: KindInt, Required: true, Description: "the state before the change (equal to state for the start-up reading)"}
	fEndpoint      = Field{Name: "endpoint", Type: KindString, Required: true, Description: "the HTTP endpoint, e.g. /events"}
	fChannel       = Field{Name: "channel", Type: KindString, Required: true, Description: "the bounded channel's name, e.g. step_completions"}
	fThresholdMS   = Field{Name: "threshold_ms", Type: KindFloat, Required: true, Description: "the duration threshold that was exceeded, in milliseconds"}
	fExportID      = Field{Name: "export_id", Type: KindString, Required: true, Description: "one export's UUIDv7, shared by its requested and completed or failed events"}
	fFormat        = Field{Name: "format", Type: KindString, Required: true, Description: "the export format, e.g. prometheus, openmetrics, json or csv"}
	fTarget        = Field{Name: "target", Type: KindString, Required: true, Description: "who asked: scrape, on_demand or a target's name"}
	fBytes         = Field{Name: "bytes", Type: KindInt, Required: true, Description: "bytes written"}
	fSeriesCount   = Field{Name: "series_count", Type: KindInt, Description: "series in the snapshot"}
	fStrategy      = Field{Name: "strategy", Type: KindString, Required: true, Description: "how the cache was synchronised"}
	fMetricsCount  = Field{Name: "metrics_count", Type: KindInt, Required: true, Description: "metrics synchronised"}
	fSuccess       = Field{Name: "success", Type: KindBool, Required: true, Description: "whether the operation succeeded"}
	fPluginName    = Field{Name: "plugin_name", Type: KindString, Required: true, Description: "the plugin's name"}
	fPluginVersion = Field{Name: "plugin_version", Type: KindString, Description: "the plugin's version"}
	fPluginFormats = Field{Name: "formats", Type: KindString, Description: "the formats the plugin exports, comma-separated"}

	fHeapGrowth     = Field{Name: "heap_growth_bytes", Type: KindInt, Required: true, Description: "how much the process's heap (object bytes, live and not yet swept) grew during the operation; the heap is shared, so other goroutines' allocations count too"}
	fHeapBytes      = Field{Name: "heap_bytes", Type: KindInt, Required: true, Description: "the process's heap object bytes when the operation ended"}
	fThresholdBytes = Field{Name: "threshold_bytes", Type: KindInt, Required: true, Description: "the heap growth threshold that was exceeded, in bytes"}
	// A monitored operation is about a task, and about a step when a
	// component handles one: task-level operations leave these out.
	fOptStepUUID = Field{Name: fStepUUID.Name, Type: fStepUUID.Type, Description: fStepUUID.Description + "; absent for task-level operations"}
	fOptStepName = Field{Name: fStepName.Name, Type: fStepName.Type, Description: fStepName.Description + "; absent for task-level operations"}
)

// perfFields are the scope every performance event carries after its own
// fields: the task, and the step when the operation handles one.
func perfFields(extra ...Field) []Field {
	return append(extra, fTaskUUID, fNamespace, fOptStepUUID, fOptStepName)
}

func taskFields(extra ...Field) []Field {
	return append([]Field{fTaskUUID, fTaskType, fNamespace}, extra...)
}

func stepFields(extra ...Field) []Field {
	return append([]Field{fTaskUUID, fStepUUID, fNamespace, fStepName}, extra...)
}

// builtin is ordered by group and, within a group, by the life of a task;
// it is never modified.
var builtin = []Schema{
	// ---- task ----
	{Name: TaskInitializeRequested, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task creation request was received",
		Fields:      taskFields()},
	{Name: TaskInitialized, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task and its steps were created",
		Fields:      taskFields(fStepCount, fDurationMS)},
	{Name: TaskStateTransitioned, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task moved from one state to another: pending → initializing → steps_in_process ⇄ waiting_for_retry → finalizing → complete, error or cancelled",
		Fields:      taskFields(fFromState, fToState)},
	{Name: TaskCancelRequested, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "cancelling a task was asked for (reason: requested or shutdown)",
		Fields:      taskFields(fReason)},
	{Name: TaskCancelled, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task was cancelled: its running steps finished, the others never ran",
		Fields:      taskFields(fReason, fCompletedSteps)},
	{Name: TaskFinalized, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task reached a final state",
		Fields:      taskFields(fFinalState, fDurationMS)},
	{Name: TaskCompleted, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task completed successfully",
		Fields:      taskFields(fStepCount)},
	{Name: TaskFailed, Group: GroupTask, Version: 1, Source: "orchestration",
		Description: "a task failed",
		Fields:      taskFields(fErrorType, fErrorMessage)},
	{Name: TaskResolvedManually, Group: GroupTask, Version: 1, Source: "operator tooling", External: true,
		Description: "an operator marked a failed task as resolved by hand",
		Fields:      taskFields()},

	// ---- step ----
	{Name: StepEnqueued, Group: GroupStep, Version: 1, Source: "orchestration",
		Description: "a ready step was put on its namespace's worker queue (attempt > 1: re-enqueued after a retry backoff)",
		Fields:      stepFields(fAttempt)},
	{Name: StepClaimed, Group: GroupStep, Version: 1, Source: "worker",
		Description: "a worker claimed a step from its queue",
		Fields:      stepFields(fClaimMethod, fDurationMS)},
	{Name: StepExecutionStarted, Group: GroupStep, Version: 1, Source: "worker",
		Description: "a worker started executing a step's handler",
		Fields:      stepFields(fHandlerType, fAttempt)},
	{Name: StepCompleted, Group: GroupStep, Version: 1, Source: "worker",
		Description: "a step's handler returned successfully",
		Fields:      stepFields(fResult, fDurationMS, fAttempt, fHandlerType)},
	{Name: StepFailed, Group: GroupStep, Version: 1, Source: "worker",
		Description: "a step's handler failed",
		Fields:      stepFields(fResult, fErrorType, fErrorMessage, fDurationMS, fAttempt, fHandlerType, fRetryable)},
	{Name: StepResultSubmitted, Group: GroupStep, Version: 1, Source: "worker",
		Description: "a worker sent a step result back to orchestration",
		Fields:      stepFields(fResultType, fDurationMS)},
	{Name: StepResultProcessed, Group: GroupStep, Version: 1, Source: "orchestration",
		Description: "orchestration processed a step result from a worker",
		Fields:      stepFields(fResultType, fDurationMS)},
	{Name: StepRetryRequested, Group: GroupStep, Version: 1, Source: "orchestration",
		Description: "a failed step will be attempted again after a backoff",
		Fields:      stepFields(fAttempt, fMaxAttempts, fErrorType, fBackoffMS)},
	{Name: StepCancelled, Group: GroupStep, Version: 1, Source: "orchestration",
		Description: "a step that had not run was cancelled with its task",
		Fields:      stepFields(fReason)},

	// ---- workflow ----
	{Name: WorkflowViableStepsDiscovered, Group: GroupWorkflow, Version: 1, Source: "orchestration",
		Description: "orchestration found steps whose dependencies are all satisfied",
		Fields:      taskFields(fViableCount)},
	{Name: WorkflowNoViableSteps, Group: GroupWorkflow, Version: 1, Source: "orchestration",
		Description: "a step result left its unfinished task with nothing new to run (reason: steps_in_progress, awaiting_dependencies or retry_backoff)",
		Fields:      taskFields(fReason)},

	// ---- observability ----
	{Name: ObservabilityTaskEnqueue, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a submitted task entered orchestration's inbox",
		Fields:      taskFields(fInboxWaitMS)},
	{Name: ObservabilityTaskFinalize, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a task's whole-life summary, published when it is finalized; duration_ms runs from submission",
		Fields:      taskFields(fFinalState, fStepCount, fCompletedSteps, fFailedSteps, fDurationMS)},
	{Name: ObservabilityStepFindViable, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "one search for a task's ready steps, and how long it took",
		Fields:      taskFields(fViableCount, fDurationMS)},
	{Name: ObservabilityStepBackoff, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a failed step started waiting before its next attempt",
		Fields:      stepFields(fAttempt, fBackoffMS, fBackoffType)},
	{Name: ObservabilityStepSkip, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a step will never run because its task failed or was cancelled (reason: task_failed or task_cancelled)",
		Fields:      stepFields(fReason)},
	{Name: ObservabilityStepMaxRetriesReached, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a step failed on its last allowed attempt",
		Fields:      stepFields(fAttempt, fMaxAttempts, fErrorType)},
	{Name: ObservabilityTaskActiveCount, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a periodic reading of how many unfinished tasks are in one state",
		Fields:      []Field{fTaskState, fCount}},
	{Name: ObservabilityStepReadyCount, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a periodic reading of how many steps of a namespace are ready but not yet claimed",
		Fields:      []Field{fNamespace, fCount}},
	{Name: ObservabilityStepActiveExecutions, Group: GroupObservability, Version: 1, Source: "worker",
		Description: "a periodic reading of how many step handlers of a namespace are running",
		Fields:      []Field{fNamespace, fHandlerType, fCount}},
	{Name: ObservabilityQueueDepth, Group: GroupObservability, Version: 1, Source: "orchestration",
		Description: "a periodic reading of a namespace worker queue",
		Fields:      []Field{fNamespace, fQueue, fDepth, fCapacity, fAge}},

	// ---- worker ----
	{Name: WorkerStarted, Group: GroupWorker, Version: 1, Source: "worker",
		Description: "a worker started serving its namespace's queue",
		Fields:      []Field{fNamespace, fWorkerID}},
	{Name: WorkerStopped, Group: GroupWorker, Version: 1, Source: "worker",
		Description: "a worker stopped",
		Fields:      []Field{fNamespace, fWorkerID}},

	// ---- queue ----
	{Name: QueueMessageSent, Group: GroupQueue, Version: 1, Source: "bus",
		Description: "the bus sent a message (a batch of events)",
		Fields:      []Field{fQueue, fEvents, fDurationMS}},
	{Name: QueueMessageReceived, Group: GroupQueue, Version: 1, Source: "router",
		Description: "a router received a message and handled its events",
		Fields:      []Field{fQueue, fEvents, fDurationMS}},
	{Name: QueueMessageDeleted, Group: GroupQueue, Version: 1, Source: "router",
		Description: "a handled message was acknowledged and leaves the queue",
		Fields:      []Field{fQueue}},
	{Name: QueueStats, Group: GroupQueue, Version: 1, Source: "bus",
		Description: "a periodic reading of a queue's backlog",
		Fields:      []Field{fQueue, fDepth, fAge}},
	{Name: QueueRedelivered, Group: GroupQueue, Version: 1, Source: "router",
		Description: "a message came back unacknowledged (its consumer died or gave up) and was delivered again",
		Fields:      []Field{fQueue}},
	{Name: QueueError, Group: GroupQueue, Version: 1, Source: "bus and router",
		Description: "the bus failed to send, receive or handle a message (error_type publish, receive, decode or poison)",
		Fields:      []Field{fQueue, fErrorType}},
	{Name: QueueRetryAttempt, Group: GroupQueue, Version: 1, Source: "bus and router",
		Description: "a message's handling is retried",
		Fields:      []Field{fQueue}},
	{Name: QueueCircuitState, Group: GroupQueue, Version: 1, Source: "bus",
		Description: "a queue circuit breaker changed state",
		Fields:      []Field{fQueue, fState}},

	// ---- database ----
	{Name: DBQueryExecuted, Group: GroupDatabase, Version: 1, Source: "database tracer",
		Description: "a SQL statement finished",
		Fields:      []Field{fPool, fOperation, fOutcome, fDurationMS}},
	{Name: DBTransactionCompleted, Group: GroupDatabase, Version: 1, Source: "database tracer",
		Description: "a transaction committed or rolled back",
		Fields:      []Field{fPool, fOutcome, fDurationMS}},
	{Name: DBPoolAcquired, Group: GroupDatabase, Version: 1, Source: "database tracer",
		Description: "a connection was acquired from a pool",
		Fields:      []Field{fPool, fWaitMS}},
	{Name: DBPoolStats, Group: GroupDatabase, Version: 1, Source: "database pool reader",
		Description: "a periodic reading of a pool's connections",
		Fields:      []Field{fPool, fActive, fIdle, fMaxConns}},

	// ---- resilience ----
	{Name: ResilienceCircuitBreakerState, Group: GroupResilience, Version: 1, Source: "circuit breakers",
		Description: "a circuit breaker's state: once when it is created, then on every change",
		Fields:      []Field{fComponent, fState, fPrevState}},
	{Name: ResilienceRequestRejected, Group: GroupResilience, Version: 1, Source: "HTTP intake",
		Description: "an HTTP request was refused to protect the service (reason: circuit_open, overloaded or shutting_down)",
		Fields:      []Field{fEndpoint, fReason}},
	{Name: ResilienceCompletionSlowSend, Group: GroupResilience, Version: 1, Source: "worker",
		Description: "sending a step result to orchestration's completion channel took longer than the threshold",
		Fields:      []Field{fChannel, fDurationMS, fThresholdMS}},
	{Name: ResilienceCompletionRejected, Group: GroupResilience, Version: 1, Source: "worker",
		Description: "a step result was held back because the completion channel's circuit breaker is open; the worker retries it",
		Fields:      []Field{fChannel}},
	{Name: ResilienceChannelSampled, Group: GroupResilience, Version: 1, Source: "channel monitor",
		Description: "a periodic reading of a bounded channel's fill level",
		Fields:      []Field{fChannel, fComponent, fCapacity, fLength, fUsagePercent}},
	{Name: ResilienceChannelFull, Group: GroupResilience, Version: 1, Source: "channel monitor",
		Description: "a send found a bounded channel full and had to wait",
		Fields:      []Field{fChannel, fComponent}},

	// ---- telemetry ----
	{Name: TelemetryExportRequested, Group: GroupTelemetry, Version: 1, Source: "exporters",
		Description: "a metrics snapshot was asked for",
		Fields:      []Field{fExportID, fFormat, fTarget}},
	{Name: TelemetryExportCompleted, Group: GroupTelemetry, Version: 1, Source: "exporters",
		Description: "a metrics snapshot was exported",
		Fields:      []Field{fExportID, fFormat, fTarget, fBytes, fSeriesCount, fDurationMS}},
	{Name: TelemetryExportFailed, Group: GroupTelemetry, Version: 1, Source: "exporters",
		Description: "exporting a metrics snapshot failed",
		Fields:      []Field{fExportID, fFormat, fTarget, fErrorType, fErrorMessage, fDurationMS}},
	{Name: TelemetryCacheSynced, Group: GroupTelemetry, Version: 1, Source: "distributed metric caches", External: true,
		Description: "a shared metrics cache was synchronised",
		Fields:      []Field{fStrategy, fMetricsCount, fSuccess, fDurationMS}},

	// ---- plugin ----
	{Name: PluginRegistered, Group: GroupPlugin, Version: 1, Source: "plugin host",
		Description: "an exporter plugin was registered",
		Fields:      []Field{fPluginName, fPluginVersion, fPluginFormats}},
	{Name: PluginUnregistered, Group: GroupPlugin, Version: 1, Source: "plugin host",
		Description: "an exporter plugin was unregistered",
		Fields:      []Field{fPluginName}},

	// ---- performance ----
	{Name: PerformanceSlowOperation, Group: GroupPerformance, Version: 1, Source: "performance monitor",
		Description: "a lifecycle operation took longer than its threshold (EngineConfig.Performance)",
		Fields:      perfFields(fOperation, fDurationMS, fThresholdMS)},
	{Name: MemorySpikeDetected, Group: GroupPerformance, Version: 1, Source: "performance monitor",
		Description: "the heap grew by more than the threshold during one lifecycle operation (EngineConfig.Performance)",
		Fields:      perfFields(fOperation, fHeapGrowth, fThresholdBytes, fHeapBytes, fDurationMS)},
}

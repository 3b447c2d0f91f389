package events

import (
	"slices"
	"strings"
)

// Lifecycle event names. The orchestration side initialises, enqueues,
// processes results and finalises; the worker side claims, executes and
// submits. Each timed operation carries its duration in milliseconds in
// the field duration_ms.
const (
	TaskInitializeRequested = "task.initialize_requested"
	TaskInitialized         = "task.initialized"
	StepEnqueued            = "step.enqueued"
	StepResultProcessed     = "step.result_processed"
	TaskFinalized           = "task.finalized"
	TaskCompleted           = "task.completed"
	TaskFailed              = "task.failed"

	StepClaimed          = "step.claimed"
	StepExecutionStarted = "step.execution_started"
	StepCompleted        = "step.completed"
	StepFailed           = "step.failed"
	StepResultSubmitted  = "step.result_submitted"
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

// IsInfrastructure reports whether name is a database or messaging event:
// the bus does not describe messages made only of these.
func IsInfrastructure(name string) bool {
	return strings.HasPrefix(name, "db.") || strings.HasPrefix(name, "queue.")
}

// Field describes one attribute of a catalog event.
type Field struct {
	Name        string
	Type        Kind
	Required    bool
	Description string
}

// Schema is the catalog entry of one event name.
type Schema struct {
	Name        string
	Group       string // orchestration, worker, database or messaging
	Version     uint16
	Description string
	Fields      []Field
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
	fTaskUUID     = Field{Name: "task_uuid", Type: KindString, Required: true, Description: "the task's UUIDv7"}
	fStepUUID     = Field{Name: "step_uuid", Type: KindString, Required: true, Description: "the workflow step's UUIDv7"}
	fTaskType     = Field{Name: "task_type", Type: KindString, Required: true, Description: "the task (workflow) name, e.g. mathematical_sequence"}
	fNamespace    = Field{Name: "namespace", Type: KindString, Required: true, Description: "the task namespace, e.g. rust_e2e_linear"}
	fStepName     = Field{Name: "step_name", Type: KindString, Required: true, Description: "the step's name within its workflow"}
	fDurationMS   = Field{Name: "duration_ms", Type: KindFloat, Required: true, Description: "how long the operation took, in milliseconds"}
	fResultType   = Field{Name: "result_type", Type: KindString, Required: true, Description: "success, error, timeout, cancelled or skipped"}
	fAttempt      = Field{Name: "attempt", Type: KindInt, Description: "1 for the first attempt"}
	fHandlerType  = Field{Name: "handler_type", Type: KindString, Description: "the step handler's language, e.g. go"}
	fClaimMethod  = Field{Name: "claim_method", Type: KindString, Required: true, Description: "event (pushed to the worker) or poll (found by polling)"}
	fStepCount    = Field{Name: "step_count", Type: KindInt, Required: true, Description: "how many steps the task has"}
	fFinalState   = Field{Name: "final_state", Type: KindString, Required: true, Description: "complete, error or cancelled"}
	fErrorType    = Field{Name: "error_type", Type: KindString, Required: true, Description: "a low-cardinality error class, e.g. handler_error"}
	fErrorMessage = Field{Name: "error_message", Type: KindString, Description: "the error text; kept out of labels"}
	fResult       = Field{Name: "result", Type: KindString, Required: true, Description: "success or error"}

	fOperation = Field{Name: "operation", Type: KindString, Required: true, Description: "the SQL command: select, insert, update, delete, begin, commit, rollback or other"}
	fOutcome   = Field{Name: "outcome", Type: KindString, Required: true, Description: "success or error (queries); commit or rollback (transactions)"}
	fPool      = Field{Name: "pool", Type: KindString, Required: true, Description: "the connection pool's name, e.g. bus"}
	fActive    = Field{Name: "active", Type: KindInt, Required: true, Description: "connections in use"}
	fIdle      = Field{Name: "idle", Type: KindInt, Required: true, Description: "connections idle in the pool"}
	fMaxConns  = Field{Name: "max", Type: KindInt, Required: true, Description: "the pool's size limit"}
	fWaitMS    = Field{Name: "wait_ms", Type: KindFloat, Required: true, Description: "how long acquiring a connection took, in milliseconds"}
	fQueue     = Field{Name: "queue", Type: KindString, Required: true, Description: "the bus topic (partition) the message is on"}
	fEvents    = Field{Name: "events", Type: KindInt, Required: true, Description: "how many events the message carries"}
	fDepth     = Field{Name: "depth", Type: KindInt, Required: true, Description: "messages not yet acknowledged by the consumer group"}
	fAge       = Field{Name: "age_seconds", Type: KindFloat, Required: true, Description: "age of the oldest unacknowledged message, in seconds (0 when none)"}
	fState     = Field{Name: "state", Type: KindInt, Required: true, Description: "0 closed, 1 half-open, 2 open"}
)

// catalog is ordered by the life of a task; it is never modified.
var catalog = []Schema{
	{Name: TaskInitializeRequested, Group: "orchestration", Version: 1,
		Description: "a task creation request was received",
		Fields:      []Field{fTaskUUID, fTaskType, fNamespace}},
	{Name: TaskInitialized, Group: "orchestration", Version: 1,
		Description: "a task and its steps were created",
		Fields:      []Field{fTaskUUID, fTaskType, fNamespace, fStepCount, fDurationMS}},
	{Name: StepEnqueued, Group: "orchestration", Version: 1,
		Description: "a ready step was put on its namespace's worker queue",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName}},
	{Name: StepClaimed, Group: "worker", Version: 1,
		Description: "a worker claimed a step from its queue",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fClaimMethod, fDurationMS}},
	{Name: StepExecutionStarted, Group: "worker", Version: 1,
		Description: "a worker started executing a step's handler",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fHandlerType, fAttempt}},
	{Name: StepCompleted, Group: "worker", Version: 1,
		Description: "a step's handler returned successfully",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fResult, fDurationMS, fAttempt}},
	{Name: StepFailed, Group: "worker", Version: 1,
		Description: "a step's handler failed",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fResult, fErrorType, fErrorMessage, fDurationMS, fAttempt}},
	{Name: StepResultSubmitted, Group: "worker", Version: 1,
		Description: "a worker sent a step result back to orchestration",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fResultType, fDurationMS}},
	{Name: StepResultProcessed, Group: "orchestration", Version: 1,
		Description: "orchestration processed a step result from a worker",
		Fields:      []Field{fTaskUUID, fStepUUID, fNamespace, fStepName, fResultType, fDurationMS}},
	{Name: TaskFinalized, Group: "orchestration", Version: 1,
		Description: "a task reached a final state",
		Fields:      []Field{fTaskUUID, fTaskType, fNamespace, fFinalState, fDurationMS}},
	{Name: TaskCompleted, Group: "orchestration", Version: 1,
		Description: "a task completed successfully",
		Fields:      []Field{fTaskUUID, fTaskType, fNamespace, fStepCount}},
	{Name: TaskFailed, Group: "orchestration", Version: 1,
		Description: "a task failed",
		Fields:      []Field{fTaskUUID, fTaskType, fNamespace, fErrorType, fErrorMessage}},

	{Name: DBQueryExecuted, Group: "database", Version: 1,
		Description: "a SQL statement finished",
		Fields:      []Field{fPool, fOperation, fOutcome, fDurationMS}},
	{Name: DBTransactionCompleted, Group: "database", Version: 1,
		Description: "a transaction committed or rolled back",
		Fields:      []Field{fPool, fOutcome, fDurationMS}},
	{Name: DBPoolAcquired, Group: "database", Version: 1,
		Description: "a connection was acquired from a pool",
		Fields:      []Field{fPool, fWaitMS}},
	{Name: DBPoolStats, Group: "database", Version: 1,
		Description: "a periodic reading of a pool's connections",
		Fields:      []Field{fPool, fActive, fIdle, fMaxConns}},

	{Name: QueueMessageSent, Group: "messaging", Version: 1,
		Description: "the bus sent a message (a batch of events)",
		Fields:      []Field{fQueue, fEvents, fDurationMS}},
	{Name: QueueMessageReceived, Group: "messaging", Version: 1,
		Description: "a router received a message and handled its events",
		Fields:      []Field{fQueue, fEvents, fDurationMS}},
	{Name: QueueMessageDeleted, Group: "messaging", Version: 1,
		Description: "a handled message was acknowledged and leaves the queue",
		Fields:      []Field{fQueue}},
	{Name: QueueStats, Group: "messaging", Version: 1,
		Description: "a periodic reading of a queue's backlog",
		Fields:      []Field{fQueue, fDepth, fAge}},
	{Name: QueueRedelivered, Group: "messaging", Version: 1,
		Description: "a message came back unacknowledged (its consumer died or gave up) and was delivered again",
		Fields:      []Field{fQueue}},
	{Name: QueueError, Group: "messaging", Version: 1,
		Description: "the bus failed to send, receive or handle a message (error_type publish, receive, decode or poison)",
		Fields:      []Field{fQueue, fErrorType}},
	{Name: QueueRetryAttempt, Group: "messaging", Version: 1,
		Description: "a message's handling is retried",
		Fields:      []Field{fQueue}},
	{Name: QueueCircuitState, Group: "messaging", Version: 1,
		Description: "a queue circuit breaker changed state",
		Fields:      []Field{fQueue, fState}},
}

// Lookup returns the catalog schema of the event called name.
func Lookup(name string) (Schema, bool) {
	i := slices.IndexFunc(catalog, func(s Schema) bool { return s.Name == name })
	if i < 0 {
		return Schema{}, false
	}
	return catalog[i], true
}

// Catalog returns every schema in the catalog, in lifecycle order. The slice is
// a copy; the schemas' Fields must not be modified.
func Catalog() []Schema { return slices.Clone(catalog) }

// Names returns the catalog's event names, sorted.
func Names() []string {
	names := make([]string, len(catalog))
	for i, s := range catalog {
		names[i] = s.Name
	}
	slices.SortFunc(names, strings.Compare)
	return names
}

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
	Group       string // "orchestration" or "worker"
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

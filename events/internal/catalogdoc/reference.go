package catalogdoc

import "github.com/sextant-telemetry/sextant/events"

// referenceName maps one of the reference system's event names (see
// tasker-anchor.md §1.1–1.2) to Sextant's; Ours is empty when there is no
// counterpart, and Note says why.
type referenceName struct {
	Ref, Ours, Note string
}

var referenceNames = []referenceName{
	// Task events.
	{"task.initialize_requested", events.TaskInitializeRequested, "same name"},
	{"task.start_requested", events.TaskStateTransitioned, "`to_state` initializing"},
	{"task.completed", events.TaskCompleted, "same name"},
	{"task.failed", events.TaskFailed, "same name; `error_type` replaces the error class"},
	{"task.retry_requested", "", "tasks are not retried as a whole; steps are: `step.retry_requested`"},
	{"task.cancelled", events.TaskCancelled, "same name; asking is `task.cancel_requested`"},
	{"task.resolved_manually", events.TaskResolvedManually, "same name; external"},
	{"task.before_transition", events.TaskStateTransitioned, "published after the change, with `from_state` and `to_state`"},
	{"task.steps_discovery_completed", events.WorkflowViableStepsDiscovered, ""},
	{"task.steps_enqueued", events.StepEnqueued, "one event per step"},
	{"task.step_results_received", events.StepResultProcessed, "one event per result"},
	{"task.awaiting_dependencies", events.WorkflowNoViableSteps, "`reason` awaiting_dependencies"},
	{"task.retry_backoff_started", events.ObservabilityStepBackoff, ""},
	{"task.blocked_by_failures", events.TaskStateTransitioned, "`to_state` finalizing, then `task.failed`"},
	{"task.dependencies_satisfied", events.WorkflowViableStepsDiscovered, ""},

	// Step events.
	{"step.initialize_requested", "", "steps are created with their task: `task.initialized` carries `step_count`"},
	{"step.enqueue_requested", events.StepEnqueued, ""},
	{"step.execution_requested", events.StepEnqueued, "then `step.claimed` when a worker takes it"},
	{"step.before_handle", events.StepExecutionStarted, ""},
	{"step.handle", events.StepExecutionStarted, "never published by the reference"},
	{"step.completed", events.StepCompleted, "same name"},
	{"step.failed", events.StepFailed, "same name; `error_type` replaces the error class"},
	{"step.retry_requested", events.StepRetryRequested, "same name"},
	{"step.cancelled", events.StepCancelled, "same name"},
	{"step.resolved_manually", "", "operators resolve tasks, not steps: `task.resolved_manually`"},
	{"step.before_transition", "", "each step event marks its own transition"},
	{"step.result_submitted", events.StepResultSubmitted, "same name"},

	// Workflow (orchestration) events.
	{"workflow.task_started", events.TaskStateTransitioned, "`to_state` steps_in_process"},
	{"workflow.task_completed", events.TaskCompleted, "never published by the reference"},
	{"workflow.task_failed", events.TaskFailed, "never published by the reference"},
	{"workflow.step_completed", events.StepResultProcessed, "`result_type` success"},
	{"workflow.step_failed", events.StepResultProcessed, "`result_type` error; never published by the reference"},
	{"workflow.viable_steps_discovered", events.WorkflowViableStepsDiscovered, "same name"},
	{"workflow.no_viable_steps", events.WorkflowNoViableSteps, "same name"},
	{"workflow.orchestration_requested", "", "never published by the reference"},
	{"workflow.task_finalization_started", events.TaskStateTransitioned, "`to_state` finalizing"},
	{"workflow.task_finalization_completed", events.TaskFinalized, "`final_state` replaces final_status"},
	{"workflow.task_reenqueue_started", events.WorkflowNoViableSteps, "the `reason` vocabulary is kept"},
	{"workflow.task_reenqueue_requested", events.WorkflowNoViableSteps, "the `reason` vocabulary is kept"},
	{"workflow.task_reenqueue_failed", "", "re-enqueueing cannot fail in Sextant's engine"},
	{"workflow.task_reenqueue_delayed", events.ObservabilityStepBackoff, "the delay is per step: `backoff_ms`"},
	{"workflow.task_state_unclear", "", "task states are explicit: `task.state_transitioned`"},
	{"workflow.step_execution_failed", events.StepFailed, "never published by the reference"},
	{"workflow.viable_steps_batch_ready", events.WorkflowViableStepsDiscovered, "never published by the reference"},
	{"workflow.steps_execution_started", events.StepEnqueued, "one event per step"},
	{"workflow.steps_execution_completed", events.StepResultProcessed, "one event per step"},

	// Observability events.
	{"observability.task.handle", "", "never published by the reference"},
	{"observability.task.enqueue", events.ObservabilityTaskEnqueue, "same name"},
	{"observability.task.finalize", events.ObservabilityTaskFinalize, "same name; never published by the reference"},
	{"observability.step.handle", events.StepExecutionStarted, "never published by the reference"},
	{"observability.step.find_viable", events.ObservabilityStepFindViable, "same name; never published by the reference"},
	{"observability.step.backoff", events.ObservabilityStepBackoff, "same name; `backoff_ms` replaces backoff_seconds"},
	{"observability.step.skip", events.ObservabilityStepSkip, "same name; never published by the reference"},
	{"observability.step.max_retries_reached", events.ObservabilityStepMaxRetriesReached, "same name; never published by the reference"},

	// Telemetry export and plugin events.
	{"tasker.telemetry.cache_synced", events.TelemetryCacheSynced, "external"},
	{"tasker.telemetry.export_requested", events.TelemetryExportRequested, ""},
	{"tasker.telemetry.export_completed", events.TelemetryExportCompleted, ""},
	{"tasker.telemetry.export_failed", events.TelemetryExportFailed, ""},
	{"tasker.telemetry.plugin_registered", events.PluginRegistered, "published by the plugin host when a plugin is registered or its formats change"},
	{"tasker.telemetry.plugin_unregistered", events.PluginUnregistered, "published by the plugin host"},
	{"tasker.telemetry.cache_ttl_extended", "", "referenced but never defined by the reference"},
	{"plugin.registered", events.PluginRegistered, "registry event; never published by the reference"},
	{"plugin.unregistered", events.PluginUnregistered, "registry event; never published by the reference"},
	{"handler.registered, subscriber.registered, registry.*", "", "registry events the reference defines but never publishes"},
	{"database.query_executed", events.DBQueryExecuted, "a router mapping only, in the reference"},
	{"performance.slow_operation", events.PerformanceSlowOperation, "same name; a router mapping only, in the reference; `duration_ms` and `threshold_ms` replace duration and threshold in seconds"},
	{"memory.spike_detected", events.MemorySpikeDetected, "same name; a router mapping only, in the reference; `heap_growth_bytes` and `threshold_bytes` replace memory_delta_mb and threshold_mb"},

	// Worker events (the TypeScript worker's in-process names).
	{"worker.started", events.WorkerStarted, "same name"},
	{"worker.stopped", events.WorkerStopped, "same name"},
}

package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/internal/otlptest"
)

// TestTracesJoinAcrossProcessesOnPostgres has an "orchestrator" and a
// "worker" publish one task's events from their own connections to the
// PostgreSQL bus, and a `sextant run` process route them: the spans join one
// trace whose id is the correlation id, steps under the orchestration, and
// the task span under the orchestrator's own span, whose context travelled
// in the events' envelopes. A second task published inside a span of
// another trace links to it.
func TestTracesJoinAcrossProcessesOnPostgres(t *testing.T) {
	t.Parallel()
	url := testDatabaseURL(t)
	recv := otlptest.NewGRPCReceiver(t)
	cfg := bus.NewDefaultConfig()
	cfg.Driver, cfg.Partitions, cfg.BatchSize = bus.DriverPostgres, 2, 50
	cfg.Topic = fmt.Sprintf("sxtraces_%d", time.Now().UnixNano())
	cfg.Postgres.URL, cfg.Postgres.ConsumerGroup = url, "e2e"
	t.Cleanup(func() { dropTopicTables(t, url, cfg) })
	yaml := fmt.Sprintf(`bus:
  driver: postgres
  topic: %s
  partitions: 2
  batch_size: 50
  postgres: {url: %q, consumer_group: e2e}
traces:
  exporter: otlp
  otlp: {endpoint: "http://%s"}
`, cfg.Topic, url, recv.Endpoint())
	path := filepath.Join(t.TempDir(), "traces-pg.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	in := startInstance(t, path)

	ctx := context.Background()
	publisher := func() *bus.Publisher {
		pg, err := bus.NewPostgres(ctx, cfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = pg.Close() })
		pub, err := bus.NewPublisher(pg.Publisher(), cfg)
		require.NoError(t, err)
		return pub
	}
	orchestrator, worker := publisher(), publisher()

	same, other := newTaskIDs(), newTaskIDs()
	appSpan := trace.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4}
	// The orchestrator traces with correlation ids as trace ids for task
	// "same", and in an unrelated trace for task "other".
	ctxSame := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID(same.cid), SpanID: appSpan, TraceFlags: trace.FlagsSampled}))
	foreign := trace.TraceID{1: 0xee, 15: 1}
	ctxOther := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: foreign, SpanID: appSpan, TraceFlags: trace.FlagsSampled}))

	send := func(pub *bus.Publisher, ctx context.Context, evs ...events.Event) {
		t.Helper()
		for _, e := range evs {
			require.NoError(t, pub.Publish(ctx, e))
		}
		require.NoError(t, pub.Flush(ctx))
	}
	for _, task := range []struct {
		ids taskIDs
		ctx context.Context
	}{{same, ctxSame}, {other, ctxOther}} {
		ids := task.ids
		send(orchestrator, task.ctx,
			events.New(events.TaskInitializeRequested, ids.cid, ids.taskAttrs()...),
			events.New(events.TaskInitialized, ids.cid, ids.taskAttrs(events.Int("step_count", 1), events.Float("duration_ms", 2))...),
			events.New(events.StepEnqueued, ids.cid, ids.stepAttrs(events.Int("attempt", 1))...))
		send(worker, ctx,
			events.New(events.StepClaimed, ids.cid, ids.stepAttrs(events.String("claim_method", "event"), events.Float("duration_ms", 1))...),
			events.New(events.StepCompleted, ids.cid, ids.stepAttrs(events.String("result", "success"), events.Float("duration_ms", 0.2))...),
			events.New(events.StepResultSubmitted, ids.cid, ids.stepAttrs(events.String("result_type", "completion"), events.Float("duration_ms", 0.1))...))
		send(orchestrator, task.ctx,
			events.New(events.StepResultProcessed, ids.cid, ids.stepAttrs(events.String("result_type", "success"), events.Float("duration_ms", 0.05))...),
			events.New(events.TaskStateTransitioned, ids.cid, ids.taskAttrs(events.String("from_state", "steps_in_process"), events.String("to_state", "finalizing"))...),
			events.New(events.TaskCompleted, ids.cid, ids.taskAttrs(events.Int("step_count", 1))...))
	}
	require.NoError(t, orchestrator.Close(ctx))
	require.NoError(t, worker.Close(ctx))

	// Both task spans ended: wait for them, then stop the router, which
	// flushes whatever else it holds.
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		roots := 0
		for _, s := range recv.Spans() {
			if s.GetName() == "task_execution" {
				roots++
			}
		}
		if roots == 2 {
			break
		}
		select {
		case <-deadline.Done():
			t.Fatalf("the router did not export both task spans in 30s; got %d spans", len(recv.Spans()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.NoError(t, in.cmd.Process.Signal(syscall.SIGTERM))
	<-in.done

	trees := otlptest.Tree(recv.Spans())
	require.Len(t, trees, 2)
	for _, task := range []taskIDs{same, other} {
		roots := trees[hex.EncodeToString(task.cid[:])]
		require.Len(t, roots, 1, "one root for task %s", task.task)
		root := roots[0]
		require.Equal(t, "task_execution", root.GetName())
		require.Equal(t, "task_execution\n  task_initialization\n  workflow_orchestration\n    step_execution\n      step_claim\n      step_execute\n      step_submit\n      step_result_processing\n",
			otlptest.Outline(roots))
		if task == same {
			require.Equal(t, hex.EncodeToString(appSpan[:]), root.ParentSpanID(), "the orchestrator's span is the parent")
			require.Empty(t, root.GetLinks())
		} else {
			require.Len(t, root.GetLinks(), 1, "a span of another trace is linked")
			require.Equal(t, foreign[:], root.GetLinks()[0].GetTraceId())
		}
	}
}

type taskIDs struct {
	cid        events.ID
	task, step string
}

func newTaskIDs() taskIDs {
	return taskIDs{cid: events.NewID(), task: events.NewID().String(), step: events.NewID().String()}
}

func (ids taskIDs) taskAttrs(extra ...events.Attr) []events.Attr {
	return append([]events.Attr{events.String("task_uuid", ids.task), events.String("task_type", "mathematical_sequence"), events.String("namespace", "rust_e2e_linear")}, extra...)
}

func (ids taskIDs) stepAttrs(extra ...events.Attr) []events.Attr {
	return append([]events.Attr{events.String("task_uuid", ids.task), events.String("step_uuid", ids.step), events.String("namespace", "rust_e2e_linear"), events.String("step_name", "square")}, extra...)
}

package router_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/router"
)

// Span rules make a task span from its start and end events, a step span
// under it from one event that carries its duration, and a span event from
// a retry.
func ExampleSpanRule() {
	exp := tracetest.NewInMemoryExporter()
	r, err := router.New(router.Config{Routes: []router.Route{
		{Match: events.TaskInitializeRequested, Spans: []router.SpanRule{{Start: "task", Key: "task_uuid", Attributes: map[string]string{"task.type": "task_type"}}}},
		{Match: events.StepCompleted, Spans: []router.SpanRule{{Record: "step", Duration: "duration_ms",
			Parent: []router.SpanRef{{Span: "task", Key: "task_uuid"}}, Attributes: map[string]string{"step": "step_name"}}}},
		{Match: events.StepRetryRequested, Spans: []router.SpanRule{{Event: "task", Key: "task_uuid", Attributes: map[string]string{}}}},
		{Match: events.TaskCompleted, Spans: []router.SpanRule{{End: "task", Key: "task_uuid", Status: &router.SpanStatus{Code: "ok"}, Attributes: map[string]string{}}}},
	}}, router.Settings{MeterProvider: noop.NewMeterProvider(), SpanProcessor: sdktrace.NewSimpleSpanProcessor(exp)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(context.Background())

	cid := events.NewID() // the correlation id: the trace id of every span
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	task := []events.Attr{events.String("task_uuid", "t1"), events.String("task_type", "mathematical_sequence"), events.String("namespace", "ns")}
	step := []events.Attr{events.String("task_uuid", "t1"), events.String("step_uuid", "s1"), events.String("namespace", "ns"), events.String("step_name", "square")}
	for _, e := range []events.Event{
		at(events.New(events.TaskInitializeRequested, cid, task...), t0),
		at(events.New(events.StepRetryRequested, cid, append(step, events.String("error_type", "timeout"), events.Float("backoff_ms", 10))...), t0.Add(5*time.Millisecond)),
		at(events.New(events.StepCompleted, cid, append(step, events.String("result", "success"), events.Float("duration_ms", 40))...), t0.Add(50*time.Millisecond)),
		at(events.New(events.TaskCompleted, cid, append(task, events.Int("step_count", 1))...), t0.Add(60*time.Millisecond)),
	} {
		r.Route(context.Background(), &e)
	}
	for _, s := range exp.GetSpans() {
		parent := "root"
		if s.Parent.IsValid() {
			parent = "child"
		}
		fmt.Printf("%s: %s, %s, %v, status %s, trace = correlation id: %v, events %d, %v\n", s.Name, parent,
			s.EndTime.Sub(s.StartTime), s.Attributes, s.Status.Code, s.SpanContext.TraceID() == [16]byte(cid), len(s.Events), s.StartTime.Sub(t0))
	}
	// Output:
	// step: child, 40ms, [{"step":"square"}], status Unset, trace = correlation id: true, events 0, 10ms
	// task: root, 60ms, [{"task.type":"mathematical_sequence"}], status Ok, trace = correlation id: true, events 1, 0s
}

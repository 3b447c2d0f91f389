package events_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

func ExampleNew() {
	task := events.NewID() // one correlation id for every event of the task
	e := events.New(events.TaskInitialized, task,
		events.String("task_uuid", task.String()),
		events.String("task_type", "mathematical_sequence"),
		events.String("namespace", "rust_e2e_linear"),
		events.Int("step_count", 4),
		events.Float("duration_ms", 3.2),
	)
	steps, _ := e.Attr("step_count")
	fmt.Println(e.Name, e.SchemaVersion, steps)
	fmt.Println("valid:", e.Validate() == nil)
	fmt.Println("same task:", e.CorrelationID == task)
	// Output:
	// task.initialized 1 4
	// valid: true
	// same task: true
}

func ExampleNewID() {
	id := events.NewID()
	fmt.Println("version:", id[6]>>4)
	fmt.Println("length:", len(id.String()))
	fmt.Println("recent:", time.Since(id.Time()) < time.Minute)

	// NewIDAt fixes the timestamp, so ids sort by time.
	at := time.Date(2024, 7, 15, 9, 30, 0, 0, time.UTC)
	fmt.Println(events.NewIDAt(at).Time().UTC())
	// Output:
	// version: 7
	// length: 36
	// recent: true
	// 2024-07-15 09:30:00 +0000 UTC
}

func ExampleParseID() {
	id, err := events.ParseID("017F22E2-79B0-7CC3-98C4-DC0C0C07398F")
	if err != nil {
		panic(err)
	}
	fmt.Println(id)
	fmt.Println(id.Time().UTC())

	same, _ := events.ParseID("017f22e279b07cc398c4dc0c0c07398f")
	fmt.Println(same == id)

	_, err = events.ParseID("not-a-uuid")
	fmt.Println(err)
	// Output:
	// 017f22e2-79b0-7cc3-98c4-dc0c0c07398f
	// 2022-02-22 19:22:22 +0000 UTC
	// true
	// invalid UUID: "not-a-uuid" has length 10, want 36 or 32
}

func ExampleEncodeBatch() {
	corr, _ := events.ParseID("0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee")
	at := time.Date(2024, 7, 15, 9, 30, 45, 0, time.UTC)
	batch := []events.Event{
		{Name: events.StepEnqueued, ID: events.NewIDAt(at), Time: at, CorrelationID: corr, SchemaVersion: 1,
			Attrs: []events.Attr{events.String("namespace", "rust_e2e_linear"), events.String("step_name", "square")}},
		{Name: events.StepClaimed, ID: events.NewIDAt(at), Time: at.Add(time.Millisecond), CorrelationID: corr, SchemaVersion: 1,
			Attrs: []events.Attr{events.String("claim_method", "poll"), events.Float("duration_ms", 0.8)}},
	}
	payload := events.EncodeBatch(batch)

	decoded, err := events.DecodeBatch(payload, nil)
	if err != nil {
		panic(err)
	}
	for _, e := range decoded {
		fmt.Println(e.Name, e.Time.UTC().Format(time.StampMilli), e.CorrelationID == corr, e.Attrs[0].Key, e.Attrs[1].Value)
	}

	_, err = events.DecodeBatch(payload[:len(payload)-1], nil)
	fmt.Println(err)
	// Output:
	// step.enqueued Jul 15 09:30:45.000 true namespace square
	// step.claimed Jul 15 09:30:45.001 true claim_method 0.8
	// decode event batch: event 1 of 2: parent at offset 203: truncated
}

func ExampleRegister() {
	err := events.Register(events.Schema{
		Name:        "order.shipped",
		Description: "an order left the warehouse",
		Fields: []events.Field{
			{Name: "order_id", Type: events.KindString, Required: true, Description: "the order's id"},
			{Name: "weight_kg", Type: events.KindFloat, Description: "the parcel's weight"},
		},
	})
	if err != nil {
		panic(err)
	}
	s, _ := events.Lookup("order.shipped")
	fmt.Println(s.Group, s.Version, s.External)

	e := events.New("order.shipped", events.NewID(), events.Float("weight_kg", 1.5))
	fmt.Println(e.Validate())
	e.Attrs = append(e.Attrs, events.String("order_id", "A-1042"))
	fmt.Println(e.Validate())

	// Names are unique, and Sextant's namespaces are reserved.
	fmt.Println(errors.Is(events.Register(s), events.ErrEventRegistered))
	fmt.Println(events.Register(events.Schema{Name: "task.shipped", Description: "no"}))
	// Output:
	// custom 1 true
	// order.shipped: missing required field "order_id"
	// <nil>
	// true
	// events: register "task.shipped": invalid event schema: namespace "task" is reserved for Sextant's own events
}

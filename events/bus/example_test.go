package bus_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

func ExampleNewPublisher() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mem := bus.NewMemory(watermill.NopLogger{})
	defer mem.Close()
	cfg := bus.NewDefaultConfig()

	// Subscribe first: the memory bus drops messages nobody receives.
	msgs, err := mem.Subscribe(ctx, cfg.Topic)
	if err != nil {
		panic(err)
	}
	received := make(chan struct{})
	go func() {
		defer close(received)
		for msg := range msgs {
			batch, err := events.DecodeBatch(msg.Payload, nil)
			if err != nil {
				panic(err)
			}
			for _, e := range batch {
				ns, _ := e.Attr("namespace")
				fmt.Println("received", e.Name, ns)
			}
			msg.Ack()
		}
	}()

	pub, err := bus.NewPublisher(mem, cfg)
	if err != nil {
		panic(err)
	}
	task := events.NewID()
	for _, name := range []string{events.StepEnqueued, events.StepClaimed, events.StepCompleted} {
		if err := pub.Publish(ctx, events.New(name, task, events.String("namespace", "rust_e2e_linear"))); err != nil {
			panic(err)
		}
	}
	// Close flushes: every event is delivered when it returns.
	if err := pub.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println("published", pub.Published())

	cancel() // ends the subscription, which closes msgs
	<-received
	// Output:
	// received step.enqueued rust_e2e_linear
	// received step.claimed rust_e2e_linear
	// received step.completed rust_e2e_linear
	// published 3
}

package bus_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// benchBus is the memory bus with a subscriber that decodes every batch, as
// the router would, and acks it.
func benchBus(b *testing.B) *bus.Publisher {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mem := bus.NewMemory(watermill.NopLogger{})
	msgs, err := mem.Subscribe(ctx, testTopic)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var dst []events.Event
		for msg := range msgs {
			var err error
			dst, err = events.DecodeBatch(msg.Payload, dst[:0])
			if err != nil {
				panic(err)
			}
			msg.Ack()
		}
	})
	return newBenchPublisher(b, mem, func() {
		cancel()
		wg.Wait()
		_ = mem.Close()
	})
}

func newBenchPublisher(b *testing.B, pub message.Publisher, stop func()) *bus.Publisher {
	b.Helper()
	cfg := bus.NewDefaultConfig()
	cfg.Topic = testTopic
	p, err := bus.NewPublisher(pub, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			b.Error(err)
		}
		stop()
	})
	return p
}

func prebuilt() []events.Event {
	evs := make([]events.Event, 1024)
	for i := range evs {
		evs[i] = events.New(events.StepCompleted, events.NewID(),
			events.String("task_uuid", events.NewID().String()),
			events.String("step_uuid", events.NewID().String()),
			events.String("namespace", "rust_e2e_linear"),
			events.String("step_name", "step_"+strconv.Itoa(i%8)),
			events.String("result", "success"),
			events.Float("duration_ms", float64(i)/7),
			events.Int("attempt", 1),
		)
	}
	return evs
}

// BenchmarkPublisher publishes pre-built events through the memory bus to a
// subscriber that decodes each batch; the time includes the final Flush, so
// events/s is delivered throughput.
func BenchmarkPublisher(b *testing.B) {
	evs := prebuilt()
	p := benchBus(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPublisherParallel is BenchmarkPublisher with GOMAXPROCS publishers.
func BenchmarkPublisherParallel(b *testing.B) {
	evs := prebuilt()
	p := benchBus(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := p.Publish(ctx, evs[i%len(evs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

package events_test

import (
	"strconv"
	"testing"

	"github.com/sextant-telemetry/sextant/events"
)

// benchEvent is a typical lifecycle event: six string fields, a float, an int.
func benchEvent() events.Event {
	return events.New(events.StepCompleted, events.NewID(),
		events.String("task_uuid", events.NewID().String()),
		events.String("step_uuid", events.NewID().String()),
		events.String("namespace", "rust_e2e_linear"),
		events.String("step_name", "square"),
		events.String("result", "success"),
		events.Float("duration_ms", 12.75),
		events.Int("attempt", 1),
	)
}

func BenchmarkAppendEvent(b *testing.B) {
	e := benchEvent()
	buf := events.AppendEvent(nil, &e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = events.AppendEvent(buf[:0], &e)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	for _, n := range []int{1, 64, 512} {
		b.Run("events="+strconv.Itoa(n), func(b *testing.B) {
			evs := make([]events.Event, n)
			for i := range evs {
				evs[i] = benchEvent()
			}
			payload := events.EncodeBatch(evs)
			dst := make([]events.Event, 0, n)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				dst, err = events.DecodeBatch(payload, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	evs := make([]events.Event, 512)
	for i := range evs {
		evs[i] = benchEvent()
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = events.EncodeBatch(evs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	var id events.ID
	for b.Loop() {
		id = events.NewID()
	}
	_ = id
}

func BenchmarkNewIDParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = events.NewID()
		}
	})
}

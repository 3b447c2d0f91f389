package lifecycle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// recorder is a fake Publisher that keeps every event in publish order.
// Fail, when set, decides what Publish returns.
type recorder struct {
	Fail func(e events.Event) error

	mu     sync.Mutex
	events []events.Event
}

var _ lifecycle.Publisher = (*recorder)(nil)

func (r *recorder) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.Fail != nil {
		return r.Fail(e)
	}
	return nil
}

func (r *recorder) snapshot() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// nopPublisher discards events, for benchmarks and examples.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

// publisherFunc adapts a function to lifecycle.Publisher.
type publisherFunc func(ctx context.Context, e events.Event) error

func (f publisherFunc) Publish(ctx context.Context, e events.Event) error { return f(ctx, e) }

func countByName(evs []events.Event) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[e.Name]++
	}
	return n
}

func attr(t *testing.T, e events.Event, key string) events.Value {
	t.Helper()
	v, ok := e.Attr(key)
	require.Truef(t, ok, "%s has no %s", e.Name, key)
	return v
}

// startEngine returns a started engine that is shut down when the test ends.
func startEngine(t testing.TB, cfg lifecycle.EngineConfig, set lifecycle.Settings) *lifecycle.Engine {
	t.Helper()
	e, err := lifecycle.New(cfg, set)
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
	})
	return e
}

// submitAll submits n tasks one after the other and waits for all of them.
func submitAll(t *testing.T, e *lifecycle.Engine, req lifecycle.TaskRequest, n int) []*lifecycle.TaskHandle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := make([]*lifecycle.TaskHandle, n)
	for i := range hs {
		h, err := e.Submit(ctx, req)
		require.NoError(t, err)
		hs[i] = h
	}
	require.NoError(t, e.Wait(ctx))
	return hs
}

// taskScoped keeps the events about one task (those with a task_uuid),
// dropping the engine's samples, worker and breaker events.
func taskScoped(evs []events.Event) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if _, ok := e.Attr("task_uuid"); ok {
			out = append(out, e)
		}
	}
	return out
}

// countOnly counts evs by name for the names in like.
func countOnly(evs []events.Event, like map[string]int) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		if _, ok := like[e.Name]; ok {
			n[e.Name]++
		}
	}
	return n
}

// countErrorType counts the step.failed events of error type typ.
func countErrorType(evs []events.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if v, ok := e.Attr("error_type"); ok && e.Name == events.StepFailed && v.Str() == typ {
			n++
		}
	}
	return n
}

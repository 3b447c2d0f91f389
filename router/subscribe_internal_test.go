package router

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/sextant-telemetry/sextant/events"
)

// Unsubscribe counts what it discards: the queued events and the one whose
// handler it cancelled.
func TestUnsubscribeCountsDiscarded(t *testing.T) {
	t.Parallel()
	r, err := New(Config{Routes: []Route{{Match: "**", Metrics: []Metric{{Name: "all", Type: MetricTypeCounter}}}}}, Settings{MeterProvider: noop.NewMeterProvider()})
	require.NoError(t, err)
	defer r.Shutdown(context.Background())
	entered := make(chan struct{}, 10)
	unsubscribe, err := r.Subscribe(Subscription{Name: "s", Events: []string{"*"}, Retries: 3, Handler: func(ctx context.Context, _ *events.Event) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}})
	require.NoError(t, err)
	sub := r.subs.Load().list[0]
	e := events.New(events.WorkerStarted, events.NewID(), events.String("worker_id", "w"))
	set := r.subs.Load()
	set.dispatch(context.Background(), &e)
	<-entered
	set.dispatch(context.Background(), &e)
	set.dispatch(context.Background(), &e)
	unsubscribe()
	set.dispatch(context.Background(), &e) // a batch that loaded the set before: counted, not queued
	st := sub.stats()
	require.EqualValues(t, 3, st.Dispatched)
	require.EqualValues(t, 4, st.Dropped)
	require.EqualValues(t, 4, sub.droppedUnsub.Load())
	require.EqualValues(t, 1, st.Failed, "the cancelled attempt is not retried")
	require.Nil(t, r.subs.Load(), "no subscribers: nothing to dispatch to")
}

package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

// TestSubscriberOnPostgresBus: subscribers see the events a router takes
// from the durable bus, every partition of it, exactly as on the in-memory
// bus.
func TestSubscriberOnPostgresBus(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; run without -short")
	}
	ctx := context.Background()
	url := os.Getenv("SEXTANT_TEST_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	cfg := bus.NewDefaultConfig()
	cfg.Driver, cfg.Partitions, cfg.BatchSize = bus.DriverPostgres, 2, 16
	cfg.Topic = fmt.Sprintf("sxsub_%d", time.Now().UnixNano())
	cfg.Postgres.URL, cfg.Postgres.ConsumerGroup = url, "subscribers"
	pg, err := bus.NewPostgres(ctx, cfg, nil)
	require.NoError(t, err, "PostgreSQL is needed at %s (or set SEXTANT_TEST_DATABASE_URL)", bus.RedactURL(url))
	t.Cleanup(func() {
		require.NoError(t, pg.Close())
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE tablename LIKE 'watermill_%' || $1 || '%'`, cfg.Topic)
		require.NoError(t, err)
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, tb := range tables {
			_, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %q", tb))
			require.NoError(t, err)
		}
	})
	topics := []string{cfg.PartitionTopic(0), cfg.PartitionTopic(1)}
	r, _ := newTestRouter(t, stepRoutes, router.Settings{Logger: slog.New(slog.DiscardHandler), Source: router.Source{Subscriber: pg.Subscriber(), Topics: topics}})
	var steps, failed atomic.Int64
	_, err = r.Subscribe(router.Subscription{Name: "steps", Groups: []string{events.GroupStep},
		Handler: func(context.Context, *events.Event) error { steps.Add(1); return nil }})
	require.NoError(t, err)
	_, err = r.Subscribe(router.Subscription{Name: "flaky", Events: []string{"step.*"}, Retries: 1, Backoff: time.Millisecond,
		Handler: func(context.Context, *events.Event) error { failed.Add(1); return fmt.Errorf("always fails") }})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))

	pub, err := bus.NewPublisher(pg.Publisher(), cfg)
	require.NoError(t, err)
	const n = 300
	for i := range n {
		require.NoError(t, pub.Publish(ctx, stepCompleted(events.NewID(), fmt.Sprint("ns", i%5), 1)))
	}
	require.NoError(t, pub.Close(ctx))
	require.Eventually(t, func() bool {
		return steps.Load() == n && failed.Load() == 2*n
	}, 30*time.Second, 20*time.Millisecond, "steps %d, flaky attempts %d", steps.Load(), failed.Load())
	byName := map[string]router.SubscriberStats{}
	for _, st := range r.Subscribers() {
		byName[st.Name] = st
	}
	require.EqualValues(t, n, byName["steps"].Succeeded)
	require.EqualValues(t, 2*n, byName["flaky"].Failed, "one retry each")
	require.Eventually(t, func() bool {
		for _, st := range r.Subscribers() {
			if st.Name == "flaky" {
				return st.Dropped == n
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
}

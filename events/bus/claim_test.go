package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events/bus"
)

// TestClaimOncePerInterval has three instances claim one job many times
// over a few intervals: exactly one claim per interval succeeds.
func TestClaimOncePerInterval(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	ctx := context.Background()
	t.Cleanup(func() {
		conn := pgConnect(t)
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{cfg.Topic + "_claims"}.Sanitize())
	})
	var instances []*bus.Postgres
	for range 3 {
		pg, err := bus.NewPostgres(ctx, cfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = pg.Close() })
		instances = append(instances, pg)
	}
	const interval = 200 * time.Millisecond
	var granted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, pg := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each instance tries far more often than once per interval.
			for time.Since(start) < 5*interval+interval/2 {
				ok, err := pg.Claim(ctx, "nightly", interval)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					granted.Add(1)
				}
				time.Sleep(interval / 20)
			}
		}()
	}
	wg.Wait()
	// 5.5 intervals: the first claim, then at most one per 90 % of an
	// interval — 7 at most, where one per instance per try would be
	// hundreds. (A stalled machine makes fewer, never more.)
	require.GreaterOrEqual(t, granted.Load(), int64(2))
	require.LessOrEqual(t, granted.Load(), int64(7))

	ok, err := instances[0].Claim(ctx, "other-job", interval)
	require.NoError(t, err)
	require.True(t, ok, "jobs are claimed independently")
	_, err = instances[0].Claim(ctx, "x", 0)
	require.Error(t, err)
}

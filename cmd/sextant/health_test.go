package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/internal/health"
)

func TestPoolResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                      string
		active, idle, maxC, total int32
		wantStatus                health.Status
		wantError                 string
	}{
		{name: "idle pool", idle: 2, maxC: 4, total: 2, wantStatus: health.StatusHealthy},
		{name: "busy, room left", active: 3, idle: 1, maxC: 4, total: 4, wantStatus: health.StatusHealthy},
		{name: "exhausted", active: 4, maxC: 4, total: 4, wantStatus: health.StatusDegraded, wantError: "pool exhausted: all 4 connections in use"},
		{name: "no maximum known", active: 1, total: 1, wantStatus: health.StatusHealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := poolResult(tt.active, tt.idle, tt.maxC, tt.total)
			require.Equal(t, tt.wantStatus, res.Status)
			require.Equal(t, tt.wantError, res.Error)
			require.Equal(t, map[string]any{"connections_active": tt.active, "connections_idle": tt.idle,
				"connections_max": tt.maxC, "connections_total": tt.total}, res.Details)
		})
	}
}

func TestQueueResult(t *testing.T) {
	t.Parallel()
	oldest := time.Now().Add(-time.Minute)
	tests := []struct {
		name       string
		stats      bus.Stats
		err        error
		durable    bool
		wantStatus health.Status
		wantKeys   []string
	}{
		{name: "memory", stats: bus.Stats{Depth: 2}, wantStatus: health.StatusHealthy, wantKeys: []string{"queues_monitored", "depth"}},
		{name: "postgres", stats: bus.Stats{Depth: 7, Oldest: oldest, Poison: 1}, durable: true, wantStatus: health.StatusHealthy,
			wantKeys: []string{"queues_monitored", "depth", "lag_seconds", "poison"}},
		{name: "backlog unreadable", err: errors.New("timeout"), durable: true, wantStatus: health.StatusDegraded, wantKeys: []string{"queues_monitored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := queueResult(3, tt.stats, tt.err, tt.durable)
			require.Equal(t, tt.wantStatus, res.Status)
			require.Len(t, res.Details, len(tt.wantKeys))
			for _, k := range tt.wantKeys {
				require.Contains(t, res.Details, k)
			}
			require.Equal(t, 3, res.Details["queues_monitored"])
			if tt.err != nil {
				require.Equal(t, "backlog query failed", res.Error, "the cause goes to the log, not the body")
				return
			}
			require.Equal(t, tt.stats.Depth, res.Details["depth"])
			if tt.durable {
				require.GreaterOrEqual(t, res.Details["lag_seconds"], 60.0)
			}
		})
	}
}

func TestBacklogCacheShares(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(100, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var reads atomic.Int64
	b := &backlogCache{now: clock, lock: make(chan struct{}, 1), read: func(context.Context) (bus.Stats, error) {
		return bus.Stats{Depth: reads.Add(1)}, nil
	}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			st, err := b.get(context.Background(), time.Second)
			require.NoError(t, err)
			require.EqualValues(t, 1, st.Depth)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, reads.Load())
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	st, err := b.get(context.Background(), time.Second)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Depth, "as old as maxAge: read again")

	// A caller whose context ends while another reads gives up.
	b.lock <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.get(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)
	<-b.lock
}

// startHealthService runs a service built from cfg in-process until the
// test ends.
func startHealthService(t *testing.T, cfg *config.Config) *service {
	t.Helper()
	cfg.Server.Listen = "127.0.0.1:0"
	ctx := context.Background()
	s, err := newService(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	if err := s.Start(ctx); err != nil {
		require.NoError(t, errors.Join(err, s.Shutdown(ctx)))
	}
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return s
}

// getHealth fetches path and decodes its JSON body.
func getHealth(t *testing.T, addr, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), path)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), path)
	return resp.StatusCode, body
}

// TestHealthEndpoints: the four endpoints on the in-memory bus — codes,
// the checks every component registers, the top-level router and bus of
// the older body, and readiness following the service's state at once.
func TestHealthEndpoints(t *testing.T) {
	cfg, err := config.Default(factories()...)
	require.NoError(t, err)
	s := startHealthService(t, cfg)
	addr := s.Addr()

	code, live := getHealth(t, addr, "/health/live")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "healthy", live["status"])
	require.NotContains(t, live, "checks")

	wantChecks := []string{"router", "bus", "message_queue", "circuit_breakers", "subscribers", "traces",
		"exports", "export_targets", "plugins", "events_intake"}
	for _, path := range []string{"/health", "/health/ready", "/health/detailed"} {
		code, body := getHealth(t, addr, path)
		require.Equal(t, http.StatusOK, code, path)
		require.Equal(t, "healthy", body["status"], "%s: %v", path, body)
		require.Contains(t, body, "uptime_seconds", path)
		require.Contains(t, body, "timestamp", path)
		checks := body["checks"].(map[string]any)
		require.ElementsMatch(t, wantChecks, keys(checks), path)
		require.NotContains(t, checks, "database", "no pool on the in-memory bus")
		router := body["router"].(map[string]any)
		require.Equal(t, true, router["consuming"], path)
		require.Contains(t, router, "events_routed", path)
		busBody := body["bus"].(map[string]any)
		require.Equal(t, "memory", busBody["driver"], path)
		require.Equal(t, "healthy", busBody["status"], path)
		require.Equal(t, true, busBody["critical"], path)
		require.Contains(t, busBody, "publisher", path)
		if path == "/health/detailed" {
			mq := checks["message_queue"].(map[string]any)
			require.EqualValues(t, cfg.Bus.Partitions, mq["queues_monitored"])
			require.Contains(t, mq, "depth")
			cb := checks["circuit_breakers"].(map[string]any)
			require.EqualValues(t, 0, cb["open_breakers"])
			require.Equal(t, false, cb["critical"])
		} else {
			require.NotContains(t, checks["message_queue"], "queues_monitored", "%s shows statuses only", path)
		}
	}

	// Stopping: readiness and health say so at once, though a report is
	// cached; liveness does not depend on it.
	s.ready.Store(false)
	defer s.ready.Store(true)
	for path, want := range map[string]int{"/health": 503, "/health/ready": 503, "/health/detailed": 503, "/health/live": 200} {
		code, body := getHealth(t, addr, path)
		require.Equal(t, want, code, path)
		if want == 503 {
			require.Equal(t, "unhealthy", body["status"], path)
			require.Equal(t, "not serving: starting or shutting down", body["reason"], path)
		}
	}
}

// TestHealthPostgres: on the durable bus the database pool, the queues
// and the backlog appear, in seed 003's names.
func TestHealthPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; run without -short")
	}
	path, busCfg := pgTestSetup(t, 2)
	cfg, err := config.Load(path, factories()...)
	require.NoError(t, err)
	s := startHealthService(t, cfg)

	code, body := getHealth(t, s.Addr(), "/health/detailed")
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.Equal(t, "healthy", body["status"])
	checks := body["checks"].(map[string]any)
	db := checks["database"].(map[string]any)
	require.Equal(t, "healthy", db["status"])
	for _, k := range []string{"connections_active", "connections_idle", "connections_max", "connections_total"} {
		require.Contains(t, db, k)
	}
	require.Positive(t, db["connections_max"])
	mq := checks["message_queue"].(map[string]any)
	require.EqualValues(t, 2, mq["queues_monitored"])
	require.Contains(t, mq, "lag_seconds")
	busBody := body["bus"].(map[string]any)
	require.Equal(t, "postgres", busBody["driver"])
	require.Contains(t, busBody, "depth")
	backlog := busBody["partition_backlog"].([]any)
	require.Len(t, backlog, 2)
	require.Equal(t, busCfg.PartitionTopic(1), backlog[1].(map[string]any)["topic"])
	require.Equal(t, busBody, checks["bus"], "the top-level bus is the bus check")
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

const (
	envTestDatabaseURL     = "SEXTANT_TEST_DATABASE_URL"
	defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func testDatabaseURL() string {
	if u := os.Getenv(envTestDatabaseURL); u != "" {
		return u
	}
	return defaultTestDatabaseURL
}

// newTracedPool returns a pool of maxConns connections traced by tr, closed
// when the test ends. It fails the test with instructions when there is no
// database: these tests never skip.
func newTracedPool(t *testing.T, tr pgx.QueryTracer, maxConns int32) *pgxpool.Pool {
	t.Helper()
	raw := testDatabaseURL()
	cfg, err := pgxpool.ParseConfig(raw)
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	cfg.ConnConfig.Tracer = tr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(lifecycle.WithoutTracing(ctx))
	}
	if err != nil {
		t.Fatalf("the database instrumentation tests need PostgreSQL at %s: %v\n"+
			"Start a PostgreSQL 13 or newer server that trusts local connections, for example\n"+
			"  docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15\n"+
			"or point %s at one (postgres://user:pass@host:port/db?sslmode=disable).",
			bus.RedactURL(raw), err, envTestDatabaseURL)
	}
	t.Cleanup(pool.Close)
	return pool
}

// dbRecorder is a fake Publisher that keeps every event.
type dbRecorder struct {
	mu     sync.Mutex
	events []events.Event
	err    error // returned by Publish when set
}

var _ lifecycle.Publisher = (*dbRecorder)(nil)

func (r *dbRecorder) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, e)
	return nil
}

func (r *dbRecorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// named returns the recorded events called name.
func (r *dbRecorder) named(name string) []events.Event {
	var out []events.Event
	for _, e := range r.all() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func str(t *testing.T, e events.Event, key string) string {
	t.Helper()
	v, ok := e.Attr(key)
	require.True(t, ok, "%s has no %s", e.Name, key)
	return v.Str()
}

func num(t *testing.T, e events.Event, key string) float64 {
	t.Helper()
	v, ok := e.Attr(key)
	require.True(t, ok, "%s has no %s", e.Name, key)
	if v.Kind() == events.KindInt {
		return float64(v.Int64())
	}
	return v.Float64()
}

func startTracer(t *testing.T, tr *lifecycle.DBTracer) {
	t.Helper()
	require.NoError(t, tr.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, tr.Shutdown(context.Background())) })
}

// dbQuery is a statement and what db.query_executed should say about it.
type dbQuery struct {
	sql       string
	args      []any
	operation string
	outcome   string
}

func TestDBTracerQueries(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-value"
	temp := fmt.Sprintf("dbtrace_%x", rand.Uint64())
	tests := []struct {
		name    string
		queries []dbQuery
		tx      []string // want db.transaction_completed outcomes, in order
	}{
		{name: "plain statements", queries: []dbQuery{
			{sql: "CREATE TEMP TABLE " + temp + " (v text)", operation: "other", outcome: "success"},
			{sql: "INSERT INTO " + temp + " VALUES ($1)", args: []any{secret}, operation: "insert", outcome: "success"},
			{sql: "  /* note */ -- line\n select v from " + temp + " where v = $1", args: []any{secret}, operation: "select", outcome: "success"},
			{sql: "(SELECT 1)", operation: "select", outcome: "success"},
			{sql: "update " + temp + " set v = $1", args: []any{secret}, operation: "update", outcome: "success"},
			{sql: "DELETE FROM " + temp, operation: "delete", outcome: "success"},
			{sql: "WITH x AS (SELECT 1) SELECT * FROM x", operation: "other", outcome: "success"},
			{sql: "SELECT * FROM no_such_table_" + temp, operation: "select", outcome: "error"},
		}},
		{name: "committed transaction", queries: []dbQuery{
			{sql: "BEGIN", operation: "begin", outcome: "success"},
			{sql: "SELECT $1::text", args: []any{secret}, operation: "select", outcome: "success"},
			{sql: "COMMIT", operation: "commit", outcome: "success"},
		}, tx: []string{"commit"}},
		{name: "rolled back transaction with a savepoint", queries: []dbQuery{
			{sql: "begin isolation level repeatable read", operation: "begin", outcome: "success"},
			{sql: "SAVEPOINT sp", operation: "other", outcome: "success"},
			{sql: "ROLLBACK TO SAVEPOINT sp", operation: "rollback", outcome: "success"},
			{sql: "rollback", operation: "rollback", outcome: "success"},
		}, tx: []string{"rollback"}},
		{name: "commit of a failed transaction rolls back", queries: []dbQuery{
			{sql: "START TRANSACTION", operation: "begin", outcome: "success"},
			{sql: "SELECT 1/0", operation: "select", outcome: "error"},
			{sql: "END", operation: "commit", outcome: "success"},
		}, tx: []string{"rollback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &dbRecorder{}
			tr := lifecycle.NewDBTracer("app", rec, lifecycle.DBTracerSettings{})
			startTracer(t, tr)
			pool := newTracedPool(t, tr, 1)
			ctx := context.Background()
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			for _, q := range tt.queries {
				rows, err := conn.Query(ctx, q.sql, q.args...)
				if err == nil {
					for rows.Next() {
					}
					rows.Close()
					err = rows.Err()
				}
				require.Equal(t, q.outcome == "error", err != nil, "%s: %v", q.sql, err)
			}
			conn.Release()
			require.NoError(t, tr.Shutdown(ctx))

			all := rec.all()
			require.NotEmpty(t, all)
			for _, e := range all {
				require.NoError(t, e.Validate())
				require.True(t, events.IsInfrastructure(e.Name))
				require.Equal(t, "app", str(t, e, "pool"))
				for _, a := range e.Attrs {
					if a.Value.Kind() == events.KindString {
						require.Contains(t, []string{"app", "select", "insert", "update", "delete", "begin", "commit", "rollback", "other", "success", "error"},
							a.Value.Str(), "%s.%s leaks text", e.Name, a.Key)
					}
				}
			}
			got := rec.named(events.DBQueryExecuted)
			require.Len(t, got, len(tt.queries))
			for i, q := range tt.queries {
				require.Equal(t, q.operation, str(t, got[i], "operation"), q.sql)
				require.Equal(t, q.outcome, str(t, got[i], "outcome"), q.sql)
				require.GreaterOrEqual(t, num(t, got[i], "duration_ms"), 0.0)
			}
			txs := rec.named(events.DBTransactionCompleted)
			require.Len(t, txs, len(tt.tx))
			for i, want := range tt.tx {
				require.Equal(t, want, str(t, txs[i], "outcome"))
				require.Positive(t, num(t, txs[i], "duration_ms"))
			}
			require.Len(t, rec.named(events.DBPoolAcquired), 1)
			require.Zero(t, tr.Dropped())
		})
	}
}

func TestDBTracerPgxTransactions(t *testing.T) {
	t.Parallel()
	rec := &dbRecorder{}
	tr := lifecycle.NewDBTracer("app", rec, lifecycle.DBTracerSettings{})
	startTracer(t, tr)
	pool := newTracedPool(t, tr, 2)
	ctx := context.Background()

	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_sleep(0.01)")
		return err
	}))
	errBoom := errors.New("boom")
	require.ErrorIs(t, pgx.BeginFunc(ctx, pool, func(pgx.Tx) error { return errBoom }), errBoom)

	require.Eventually(t, func() bool { return len(rec.named(events.DBTransactionCompleted)) == 2 }, 5*time.Second, time.Millisecond)
	txs := rec.named(events.DBTransactionCompleted)
	require.Equal(t, "commit", str(t, txs[0], "outcome"))
	require.GreaterOrEqual(t, num(t, txs[0], "duration_ms"), 10.0)
	require.Equal(t, "rollback", str(t, txs[1], "outcome"))
	require.Positive(t, num(t, txs[1], "duration_ms"))
	require.Eventually(t, func() bool { return len(rec.named(events.DBPoolAcquired)) == 2 }, 5*time.Second, time.Millisecond)
	for _, e := range rec.named(events.DBPoolAcquired) {
		require.NoError(t, e.Validate())
		require.GreaterOrEqual(t, num(t, e, "wait_ms"), 0.0)
	}
}

func TestDBTracerWithoutTracing(t *testing.T) {
	t.Parallel()
	rec := &dbRecorder{}
	tr := lifecycle.NewDBTracer("bus", rec, lifecycle.DBTracerSettings{})
	pool := newTracedPool(t, tr, 1)
	ctx := context.Background()
	quiet := lifecycle.WithoutTracing(ctx)
	require.True(t, lifecycle.TracingDisabled(quiet))
	require.False(t, lifecycle.TracingDisabled(ctx))

	_, err := pool.Exec(quiet, "SELECT 1")
	require.NoError(t, err)
	// A transaction begun under the marker stays silent even when its
	// statements and commit run under an unmarked context.
	conn, err := pool.Acquire(quiet)
	require.NoError(t, err)
	tx, err := conn.Begin(quiet)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 2")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	conn.Release()

	startTracer(t, tr)
	require.NoError(t, tr.Shutdown(ctx))
	require.Empty(t, rec.all())
	require.Zero(t, tr.Dropped())
}

func TestDBTracerLatePublisher(t *testing.T) {
	t.Parallel()
	tr := lifecycle.NewDBTracer("bus", nil, lifecycle.DBTracerSettings{})
	startTracer(t, tr)
	pool := newTracedPool(t, tr, 1)
	ctx := context.Background()

	_, err := pool.Exec(ctx, "SELECT 1") // acquire + query, nowhere to go
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tr.Dropped() == 2 }, 5*time.Second, time.Millisecond)

	rec := &dbRecorder{}
	tr.SetPublisher(rec)
	_, err = pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(rec.all()) == 2 }, 5*time.Second, time.Millisecond)

	rec.mu.Lock()
	rec.err = errors.New("bus down")
	rec.mu.Unlock()
	_, err = pool.Exec(ctx, "SELECT 1") // publish errors are counted, never returned
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tr.Dropped() == 4 }, 5*time.Second, time.Millisecond)
}

func TestDBTracerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr := lifecycle.NewDBTracer("x", &dbRecorder{}, lifecycle.DBTracerSettings{})
	require.NoError(t, tr.Shutdown(ctx), "before Start")
	require.NoError(t, tr.Shutdown(ctx), "twice")
	require.ErrorIs(t, tr.Start(ctx), lifecycle.ErrShutdown)

	tr = lifecycle.NewDBTracer("x", &dbRecorder{}, lifecycle.DBTracerSettings{})
	require.NoError(t, tr.Start(ctx))
	require.ErrorIs(t, tr.Start(ctx), lifecycle.ErrAlreadyStarted)
	require.NoError(t, tr.Shutdown(ctx))
	require.NoError(t, tr.Shutdown(ctx))
}

func TestPoolStatsReader(t *testing.T) {
	t.Parallel()
	pool := newTracedPool(t, nil, 3)
	ctx := context.Background()
	rec := &dbRecorder{}
	r := lifecycle.NewPoolStatsReader("bus", pool, rec, lifecycle.PoolStatsSettings{Interval: 5 * time.Millisecond})
	require.NoError(t, r.Shutdown(ctx), "safe before Start")

	r = lifecycle.NewPoolStatsReader("bus", pool, rec, lifecycle.PoolStatsSettings{Interval: 5 * time.Millisecond})
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	require.NoError(t, r.Start(ctx))
	require.Len(t, rec.all(), 1, "a reading at Start")
	require.ErrorIs(t, r.Start(ctx), lifecycle.ErrAlreadyStarted)
	require.Eventually(t, func() bool { return len(rec.all()) >= 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, r.Shutdown(ctx))
	n := len(rec.all())
	require.NoError(t, r.Shutdown(ctx))
	require.ErrorIs(t, r.Start(ctx), lifecycle.ErrShutdown)
	time.Sleep(20 * time.Millisecond)
	require.Len(t, rec.all(), n, "nothing after Shutdown")

	for _, e := range rec.all() {
		require.Equal(t, events.DBPoolStats, e.Name)
		require.NoError(t, e.Validate())
		require.Equal(t, "bus", str(t, e, "pool"))
		require.Equal(t, 3.0, num(t, e, "max"))
		require.Equal(t, 1.0, num(t, e, "active"))
		require.LessOrEqual(t, num(t, e, "idle"), 2.0)
	}
}

// queryLog is a tiny pgx tracer that records each statement and whether its
// context carried the no-trace marker.
type queryLog struct {
	mu      sync.Mutex
	queries []loggedQuery
}

type loggedQuery struct {
	sql   string
	quiet bool
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, loggedQuery{sql: data.SQL, quiet: lifecycle.TracingDisabled(ctx)})
	return ctx
}

func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *queryLog) loud() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, q := range l.queries {
		if !q.quiet {
			out = append(out, q.sql)
		}
	}
	return out
}

// TestPostgresBusTracing checks the hooks of events/bus from the side that
// uses them: the bus's pool runs the tracer given by bus.WithQueryTracer, and
// with bus.WithInfrastructureContext(lifecycle.WithoutTracing) only the
// insert of a message holding application events runs unmarked: the insert
// of an infrastructure-only message, table creation, and every query of a
// subscription are marked.
func TestPostgresBusTracing(t *testing.T) {
	t.Parallel()
	newTracedPool(t, nil, 1) // fails with instructions when there is no database
	cfg := bus.NewDefaultConfig()
	cfg.Driver = bus.DriverPostgres
	cfg.Topic = fmt.Sprintf("sxtrace_%016x", rand.Uint64())
	cfg.Partitions = 1
	cfg.Postgres.URL = testDatabaseURL()
	insertMessage := `INSERT INTO "watermill_` + cfg.PartitionTopic(0) + `" (`

	for _, tt := range []struct {
		name string
		opts func(*queryLog) []bus.PostgresOption
		loud func(t *testing.T, loud []string)
	}{
		{
			name: "tracer only: everything traced",
			opts: func(l *queryLog) []bus.PostgresOption { return []bus.PostgresOption{bus.WithQueryTracer(l)} },
			loud: func(t *testing.T, loud []string) {
				require.Equal(t, 2, countPrefix(loud, insertMessage), "both inserts: %q", loud)
				require.Positive(t, countPrefix(loud, "SELECT"), "polling")
			},
		},
		{
			name: "infrastructure context",
			opts: func(l *queryLog) []bus.PostgresOption {
				return []bus.PostgresOption{bus.WithQueryTracer(l), bus.WithInfrastructureContext(lifecycle.WithoutTracing)}
			},
			loud: func(t *testing.T, loud []string) {
				require.Len(t, loud, 1, "only the application insert: %q", loud)
				require.True(t, strings.HasPrefix(loud[0], insertMessage), loud[0])
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := &queryLog{}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pg, err := bus.NewPostgres(ctx, cfg, watermill.NopLogger{}, tt.opts(log)...)
			require.NoError(t, err)
			defer func() { require.NoError(t, pg.Close()) }()

			infra := message.NewMessage(watermill.NewULID(), []byte("x"))
			infra.Metadata.Set(bus.MetadataInfrastructure, "true")
			app := message.NewMessage(watermill.NewULID(), []byte("y"))
			pub := pg.Publisher()
			require.NoError(t, pub.Publish(cfg.PartitionTopic(0), infra))
			require.NoError(t, pub.Publish(cfg.PartitionTopic(0), app))
			require.False(t, lifecycle.TracingDisabled(infra.Context()), "the caller's message context is restored")

			sub := pg.Subscriber()
			msgs, err := sub.Subscribe(ctx, cfg.PartitionTopic(0))
			require.NoError(t, err)
			for range 2 {
				select {
				case m := <-msgs:
					m.Ack()
				case <-ctx.Done():
					t.Fatal("messages not delivered")
				}
			}
			require.NoError(t, sub.Close())
			tt.loud(t, log.loud())
		})
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), testDatabaseURL())
		require.NoError(t, err)
		defer func() { _ = conn.Close(context.Background()) }()
		var tables []string
		for _, topic := range []string{cfg.PartitionTopic(0), cfg.PoisonTopic()} {
			tables = append(tables, `"watermill_`+topic+`"`, `"watermill_offsets_`+topic+`"`)
		}
		_, err = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+strings.Join(tables, ", "))
		require.NoError(t, err)
	})
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(strings.TrimSpace(s), prefix) {
			n++
		}
	}
	return n
}

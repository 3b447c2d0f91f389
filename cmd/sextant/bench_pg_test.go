package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/router"
)

// The durable-bus benchmarks of issue #3 ("Scale and speed"), recorded in
// docs/benchmarks.md, section "Durable bus (PostgreSQL)". Run them with a
// fixed count, e.g.
//
//	go test -run='^$' -bench='PostgresInstances|PgxInsertReadBaseline' -benchtime=200000x -count=3 ./cmd/sextant/
//
// With the default benchtime b.N grows until a run takes about a second, as
// usual; every run publishes b.N events and waits for all of them, so the
// time per run is b.N divided by the throughput, plus about 0.5 s of setup
// (buses, tables, subscriptions) that is not timed.

const (
	benchPartitions = 8
	benchBatchSize  = 512
	// benchMaxEvents bounds the pre-built events; above it they are reused
	// (their correlation ids then repeat, which changes nothing measured).
	benchMaxEvents = 1 << 20
	// benchStall fails a run in which routing makes no progress this long.
	benchStall = 60 * time.Second
)

// benchEvents returns n task.initialize_requested events (at most
// benchMaxEvents), each with its own correlation id, so that they spread
// over the partitions.
func benchEvents(n int) []events.Event {
	n = max(1, min(n, benchMaxEvents))
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.New(events.TaskInitializeRequested, events.NewID(),
			events.String("task_uuid", events.NewID().String()),
			events.String("task_type", "bench"),
			events.String("namespace", "ns_"+strconv.Itoa(i%8)))
	}
	return evs
}

// benchRoutes is a one-counter route on task.initialize_requested.
var benchRoutes = router.Config{Routes: []router.Route{{
	Match:   events.TaskInitializeRequested,
	Metrics: []router.Metric{{Name: "bench.requests.total", Type: router.MetricTypeCounter}},
}}}

// BenchmarkPostgresInstances measures the durable path end to end: one
// bus.Publisher (on its own pool) publishes b.N events into 8 partition
// topics; N router instances in this process, each with its own bus pool and
// the same consumer group, consume and route them. The time runs from the
// first Publish until the routers together have routed b.N events.
func BenchmarkPostgresInstances(b *testing.B) {
	url := testDatabaseURL(b)
	for _, n := range []int{1, 2, 4} {
		b.Run("instances="+strconv.Itoa(n), func(b *testing.B) { benchPostgresInstances(b, url, n) })
	}
}

type benchInstance struct {
	pg *bus.Postgres
	mp *sdkmetric.MeterProvider
	r  *router.Router
}

func benchPostgresInstances(b *testing.B, url string, instances int) {
	ctx := context.Background()
	evs := benchEvents(b.N)

	cfg := bus.NewDefaultConfig()
	cfg.Driver, cfg.Partitions, cfg.BatchSize = bus.DriverPostgres, benchPartitions, benchBatchSize
	cfg.Topic = fmt.Sprintf("sxbench_%d", time.Now().UnixNano())
	cfg.Postgres.URL = url
	cfg.Postgres.ConsumerGroup = "bench"
	// Registered first, so it runs last: after every pool is closed.
	b.Cleanup(func() { dropTopicTables(nil, url, cfg) })

	insts := make([]*benchInstance, instances)
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for _, in := range insts {
			if in == nil {
				continue
			}
			if in.r != nil {
				require.NoError(b, in.r.Shutdown(sctx))
			}
			require.NoError(b, in.pg.Close())
			require.NoError(b, in.mp.Shutdown(sctx))
		}
	})
	for i := range insts {
		pg, err := bus.NewPostgres(ctx, cfg, nil)
		require.NoError(b, err)
		in := &benchInstance{pg: pg, mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}
		insts[i] = in
		in.r, err = router.New(benchRoutes, router.Settings{
			MeterProvider: in.mp,
			Source:        router.Source{Subscriber: pg.Subscriber(), Topics: partitionTopics(cfg)},
			CloseTimeout:  shutdownTimeout,
			Poison:        pg.Publisher(),
			PoisonTopic:   cfg.PoisonTopic(),
		})
		require.NoError(b, err)
		require.NoError(b, in.r.Start(ctx))
	}
	pubBus, err := bus.NewPostgres(ctx, cfg, nil)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, pubBus.Close()) })
	pub, err := bus.NewPublisher(pubBus.Publisher(), cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = pub.Close(ctx) }) // a no-op unless the run failed

	routed := func() (sum uint64) {
		for _, in := range insts {
			sum += in.r.Stats().Routed
		}
		return sum
	}

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := pub.Publish(ctx, evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, pub.Close(ctx))
	published := time.Since(start)
	last, progress := uint64(0), time.Now()
	for {
		got := routed()
		if got >= uint64(b.N) {
			break
		}
		if got != last {
			last, progress = got, time.Now()
		} else if time.Since(progress) > benchStall {
			b.Fatalf("routed %d of %d events, no progress for %s", got, b.N, benchStall)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()

	if got := routed(); got != uint64(b.N) {
		b.Fatalf("routed %d events, published %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// How much of the time publishing took (until the last batch was
	// committed); the rest is the routers catching up.
	b.ReportMetric(published.Seconds()*100/b.Elapsed().Seconds(), "publish-%")
	if instances > 1 {
		shares := make([]string, instances)
		for i, in := range insts {
			pct := float64(in.r.Stats().Routed) * 100 / float64(b.N)
			b.ReportMetric(pct, "share"+strconv.Itoa(i)+"-%")
			shares[i] = strconv.FormatFloat(pct, 'f', 0, 64) + "%"
		}
		if b.N >= 10_000 {
			b.Logf("%d events: shares %s", b.N, strings.Join(shares, " "))
		}
	}
}

// BenchmarkPgxInsertReadBaseline moves the volume of
// BenchmarkPostgresInstances with plain pgx and no bus: one goroutine encodes
// the events into 512-event payloads and inserts them into one plain table,
// 16 payloads per multi-row INSERT (one commit each, synchronous_commit as
// the server has it); the benchmark goroutine reads them back in id order
// with a SELECT … LIMIT 16 loop on another connection and decodes them. The
// time runs from the first encoded event until the last event is decoded.
func BenchmarkPgxInsertReadBaseline(b *testing.B) {
	const rowsPerInsert, readBatch = 16, 16
	url := testDatabaseURL(b)
	ctx := context.Background()
	evs := benchEvents(b.N)
	table := fmt.Sprintf("sxbench_pgx_%d", time.Now().UnixNano())
	w, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	r, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	b.Cleanup(func() {
		_, err := w.Exec(ctx, "DROP TABLE IF EXISTS "+table)
		require.NoError(b, err)
		_ = w.Close(ctx)
		_ = r.Close(ctx)
	})
	_, err = w.Exec(ctx, "CREATE TABLE "+table+
		" (id BIGSERIAL PRIMARY KEY, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, payload BYTEA NOT NULL)")
	require.NoError(b, err)

	var insert strings.Builder
	insert.WriteString("INSERT INTO " + table + " (payload) VALUES ")
	for i := range rowsPerInsert {
		if i > 0 {
			insert.WriteString(", ")
		}
		fmt.Fprintf(&insert, "($%d)", i+1)
	}
	insertFull := insert.String()

	b.ResetTimer()
	insertErr := make(chan error, 1)
	inserterDone := make(chan struct{})
	b.Cleanup(func() { <-inserterDone }) // runs before the connections close
	go func() {
		defer close(inserterDone)
		var (
			bb   events.BatchBuilder
			rows []any
		)
		send := func() error {
			if len(rows) == 0 {
				return nil
			}
			q := insertFull
			if len(rows) < rowsPerInsert { // the last, short INSERT
				q = insertFull[:strings.Index(insertFull, fmt.Sprintf(", ($%d)", len(rows)+1))]
			}
			_, err := w.Exec(ctx, q, rows...)
			rows = rows[:0]
			return err
		}
		for i := 0; i < b.N; i++ {
			bb.Add(&evs[i%len(evs)])
			if bb.Len() == benchBatchSize || i == b.N-1 {
				rows = append(rows, bb.Take())
				if len(rows) == rowsPerInsert {
					if err := send(); err != nil {
						insertErr <- err
						return
					}
				}
			}
		}
		insertErr <- send()
	}()
	var (
		last     int64
		got      int
		dst      []events.Event
		inserted bool // the inserter has committed everything
	)
	for got < b.N {
		rows, err := r.Query(ctx, "SELECT id, payload FROM "+table+" WHERE id > $1 ORDER BY id LIMIT "+strconv.Itoa(readBatch), last)
		require.NoError(b, err)
		n := 0
		for rows.Next() {
			var payload []byte
			require.NoError(b, rows.Scan(&last, &payload))
			dst, err = events.DecodeBatch(payload, dst[:0])
			require.NoError(b, err)
			got += len(dst)
			n++
		}
		require.NoError(b, rows.Err())
		if n > 0 {
			continue
		}
		if inserted {
			b.Fatalf("read %d of %d events; the rest never arrived", got, b.N)
		}
		select {
		case err := <-insertErr:
			require.NoError(b, err)
			inserted = true // read once more: everything is committed
		default:
			time.Sleep(time.Millisecond)
		}
	}
	if !inserted {
		require.NoError(b, <-insertErr)
	}
	b.StopTimer()
	require.Equal(b, b.N, got)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

package bus_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// envTestDatabaseURL names the database the PostgreSQL tests use.
const envTestDatabaseURL = "SEXTANT_TEST_DATABASE_URL"

const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func pgTestURL() string {
	if u := os.Getenv(envTestDatabaseURL); u != "" {
		return u
	}
	return defaultTestDatabaseURL
}

// pgConnect opens a plain connection to the test database, failing the test
// with instructions when there is none: these tests never skip.
func pgConnect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := pgTestURL()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatalf("the PostgreSQL bus tests need a database at %s (%s): %v\n"+
			"Start a PostgreSQL 13 or newer server that trusts local connections, for example\n"+
			"  docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15\n"+
			"or point %s at one (postgres://user:pass@host:port/db?sslmode=disable).",
			bus.RedactURL(raw), envTestDatabaseURL, err, envTestDatabaseURL)
	}
	return conn
}

// pgConfig returns a postgres bus configuration on a topic of its own,
// whose tables are dropped when the test ends (after the buses, which are
// set up later and so closed earlier).
func pgConfig(t testing.TB, partitions int) bus.Config {
	t.Helper()
	conn := pgConnect(t)
	require.NoError(t, conn.Close(context.Background()))
	cfg := bus.NewDefaultConfig()
	cfg.Driver = bus.DriverPostgres
	cfg.Topic = fmt.Sprintf("sxtest_%016x", rand.Uint64())
	cfg.Partitions = partitions
	cfg.Postgres.URL = pgTestURL()
	t.Cleanup(func() { pgDropTopic(t, cfg) })
	return cfg
}

func pgTables(cfg bus.Config) []string {
	var ts []string
	for i := range cfg.Partitions {
		ts = append(ts, cfg.PartitionTopic(i))
	}
	var tables []string
	for _, topic := range append(ts, cfg.PoisonTopic()) {
		tables = append(tables, `"watermill_`+topic+`"`, `"watermill_offsets_`+topic+`"`)
	}
	return tables
}

func pgDropTopic(t testing.TB, cfg bus.Config) {
	t.Helper()
	conn := pgConnect(t)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err := conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+strings.Join(pgTables(cfg), ", "))
	require.NoError(t, err)
}

// newPG returns a bus, closed when the test ends.
func newPG(t testing.TB, cfg bus.Config) *bus.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg, err := bus.NewPostgres(ctx, cfg, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pg.Close()) })
	return pg
}

// pgEvent is event seq; its correlation id picks the partition.
func pgEvent(seq int) events.Event {
	return events.New(events.StepCompleted, events.NewID(),
		events.Int("seq", int64(seq)),
		events.String("namespace", "ns"),
	)
}

func pgSeq(t testing.TB, e *events.Event) int {
	t.Helper()
	v, ok := e.Attr("seq")
	require.True(t, ok)
	return int(v.Int64())
}

// pgPublish publishes evs in order through one partition-aware
// bus.Publisher on pg, and flushes them.
func pgPublish(t testing.TB, pg *bus.Postgres, cfg bus.Config, evs []events.Event) {
	t.Helper()
	p, err := bus.NewPublisher(pg.Publisher(), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range evs {
		require.NoError(t, p.Publish(ctx, evs[i]))
	}
	require.NoError(t, p.Close(ctx))
	require.Zero(t, p.Failed())
	require.Equal(t, uint64(len(evs)), p.Published())
}

// pgConsumer subscribes every partition of a bus and records what arrives.
type pgConsumer struct {
	mu       sync.Mutex
	seqs     [][]int // per partition, in arrival order
	total    int
	messages int
	problems []string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startPGConsumer consumes every partition of cfg on pg, decoding and acking
// each message; it stops when the test ends or stop is called.
func startPGConsumer(t testing.TB, pg *bus.Postgres, cfg bus.Config) *pgConsumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &pgConsumer{seqs: make([][]int, cfg.Partitions), cancel: cancel}
	sub := pg.Subscriber()
	for i := range cfg.Partitions {
		msgs, err := sub.Subscribe(ctx, cfg.PartitionTopic(i))
		require.NoError(t, err)
		c.wg.Go(func() {
			var dst []events.Event
			for msg := range msgs {
				var err error
				dst, err = events.DecodeBatch(msg.Payload, dst[:0])
				c.mu.Lock()
				if err != nil {
					c.problems = append(c.problems, err.Error())
				}
				for j := range dst {
					c.seqs[i] = append(c.seqs[i], pgSeq(t, &dst[j]))
				}
				c.total += len(dst)
				c.messages++
				c.mu.Unlock()
				msg.Ack()
			}
		})
	}
	t.Cleanup(func() {
		c.stop()
		require.Empty(t, c.problems)
	})
	return c
}

// stop ends the subscriptions and waits for them to close their channels.
func (c *pgConsumer) stop() {
	c.cancel()
	c.wg.Wait()
}

func (c *pgConsumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *pgConsumer) snapshot() [][]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([][]int, len(c.seqs))
	for i, s := range c.seqs {
		out[i] = append([]int(nil), s...)
	}
	return out
}

func waitForCount(t testing.TB, want int, timeout time.Duration, counts ...func() int) {
	t.Helper()
	sum := func() int {
		n := 0
		for _, c := range counts {
			n += c()
		}
		return n
	}
	require.Eventually(t, func() bool { return sum() >= want }, timeout, 5*time.Millisecond,
		"events arrived: %d of %d", sum(), want)
}

// requirePartitionOrder checks that each partition's events came in publish
// order and that every event arrived exactly once in total.
func requireExactlyOnceInOrder(t testing.TB, cfg bus.Config, evs []events.Event, perInstance ...[][]int) {
	t.Helper()
	seen := make([]int, len(evs))
	for _, parts := range perInstance {
		for p, seqs := range parts {
			for _, s := range seqs {
				require.Equal(t, p, cfg.Partition(evs[s].CorrelationID), "event %d arrived on partition %d", s, p)
				seen[s]++
			}
		}
	}
	for s, n := range seen {
		require.Equal(t, 1, n, "event %d arrived %d times", s, n)
	}
	if len(perInstance) == 1 {
		for p, seqs := range perInstance[0] {
			for i := 1; i < len(seqs); i++ {
				require.Less(t, seqs[i-1], seqs[i], "partition %d: event %d after %d", p, seqs[i], seqs[i-1])
			}
		}
	}
}

func pgEvents(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = pgEvent(i)
	}
	return evs
}

// TestPostgresRoundTrip: 10,000 events over 4 partitions arrive exactly
// once, each partition in publish order.
func TestPostgresRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 4)
	cfg.BatchSize = 100
	pg := newPG(t, cfg)
	c := startPGConsumer(t, pg, cfg)

	evs := pgEvents(10_000)
	pgPublish(t, pg, cfg, evs)
	waitForCount(t, len(evs), 30*time.Second, c.count)
	c.stop()
	require.Equal(t, len(evs), c.count())
	requireExactlyOnceInOrder(t, cfg, evs, c.snapshot())
}

// TestPostgresTwoInstances: two buses of one consumer group share 4
// partitions while events are published: together they get every event
// once, and the partitions are shared between them.
func TestPostgresTwoInstances(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 4)
	cfg.BatchSize = 50
	a, b := newPG(t, cfg), newPG(t, cfg)
	ca, cb := startPGConsumer(t, a, cfg), startPGConsumer(t, b, cfg)

	evs := pgEvents(20_000)
	start := time.Now()
	pgPublish(t, a, cfg, evs)
	waitForCount(t, len(evs), 30*time.Second, ca.count, cb.count)
	elapsed := time.Since(start)
	// Let redeliveries, if any, show up before counting.
	time.Sleep(100 * time.Millisecond)
	ca.stop()
	cb.stop()

	sa, sb := ca.snapshot(), cb.snapshot()
	requireExactlyOnceInOrder(t, cfg, evs, sa, sb)
	for p := range cfg.Partitions {
		t.Logf("partition %d: instance A %d events, B %d events", p, len(sa[p]), len(sb[p]))
	}
	t.Logf("A %d events in %d messages, B %d events in %d messages, %s for %d events",
		ca.count(), ca.messages, cb.count(), cb.messages, elapsed.Round(time.Millisecond), len(evs))
	require.NotZero(t, ca.count(), "instance A got no work")
	require.NotZero(t, cb.count(), "instance B got no work")
}

// TestPostgresConcurrentSchemaCreation: several processes starting at once
// on a new topic all succeed.
func TestPostgresConcurrentSchemaCreation(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 4)
	const starts = 4
	buses := make([]*bus.Postgres, starts)
	errs := make([]error, starts)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range starts {
		wg.Go(func() { buses[i], errs[i] = bus.NewPostgres(ctx, cfg, nil) })
	}
	wg.Wait()
	for i := range starts {
		require.NoError(t, errs[i], "start %d", i)
		require.NoError(t, buses[i].Close())
	}

	conn := pgConnect(t)
	defer func() { _ = conn.Close(context.Background()) }()
	for _, table := range pgTables(cfg) {
		var exists bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists))
		require.True(t, exists, table)
	}
	var typ string
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'payload'",
		`"watermill_`+cfg.PartitionTopic(0)+`"`).Scan(&typ))
	require.Equal(t, "bytea", typ)
}

// TestPostgresRejectsJSONPayloadTable: a table left by a watermill-sql
// default (JSON payload) is reported, not written binary into.
func TestPostgresRejectsJSONPayloadTable(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	conn := pgConnect(t)
	defer func() { _ = conn.Close(context.Background()) }()
	q, err := wsql.DefaultPostgreSQLSchema{InitializeSchemaWithoutTransaction: true}.
		SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: cfg.Topic})
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), q[0].Query)
	require.NoError(t, err)

	_, err = bus.NewPostgres(context.Background(), cfg, nil)
	require.ErrorContains(t, err, `payload column is json, want bytea`)
}

// TestPostgresStats: depth counts unacked messages per partition; oldest is
// set while there are any.
func TestPostgresStats(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 2)
	pg := newPG(t, cfg)
	ctx := context.Background()

	st, err := pg.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, bus.Stats{Partitions: []bus.PartitionStats{{Topic: cfg.PartitionTopic(0)}, {Topic: cfg.PartitionTopic(1)}}}, st)

	before := time.Now()
	pub := pg.Publisher()
	for i, n := range []int{3, 2} {
		for range n {
			msg := message.NewMessage(watermill.NewULID(), events.EncodeBatch([]events.Event{pgEvent(0)}))
			require.NoError(t, pub.Publish(cfg.PartitionTopic(i), msg))
		}
	}
	require.NoError(t, pub.Publish(cfg.PoisonTopic(), message.NewMessage(watermill.NewULID(), []byte("bad"))))

	st, err = pg.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Partitions[0].Depth)
	require.EqualValues(t, 2, st.Partitions[1].Depth)
	require.EqualValues(t, 5, st.Depth)
	require.EqualValues(t, 1, st.Poison)
	for _, p := range st.Partitions {
		require.WithinDuration(t, before, p.Oldest, 5*time.Second, p.Topic)
		require.False(t, p.Oldest.Before(st.Oldest))
	}
	require.WithinDuration(t, before, st.Oldest, 5*time.Second)

	c := startPGConsumer(t, pg, cfg)
	waitForCount(t, 5, 10*time.Second, c.count)
	// The last ack is committed just after it is given.
	require.Eventually(t, func() bool {
		st, err = pg.Stats(ctx)
		require.NoError(t, err)
		return st.Depth == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.True(t, st.Oldest.IsZero())
	for _, p := range st.Partitions {
		require.Zero(t, p.Depth)
		require.True(t, p.Oldest.IsZero())
	}
	require.EqualValues(t, 1, st.Poison)
}

// TestPostgresBadURL: errors are clear and never show the password.
func TestPostgresBadURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want string
	}{
		{name: "unreachable", url: "postgres://sextant:s3cret@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", want: "connect to postgres://sextant:xxxxx@127.0.0.1:1/test"},
		{name: "bad port", url: "postgres://sextant:s3cret@127.0.0.1:99999/test", want: "postgres"},
		{name: "unparseable", url: "postgres://sextant:s3cret@127.0.0.1:5432/test?sslmode=bogus", want: "parse url"},
		{name: "not a URL", url: "postgres://sextant:s3cret@[::1/test", want: "postgres.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := bus.NewDefaultConfig()
			cfg.Driver = bus.DriverPostgres
			cfg.Postgres.URL = tt.url
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pg, err := bus.NewPostgres(ctx, cfg, nil)
			require.Nil(t, pg)
			require.Error(t, err)
			t.Log(err)
			require.NotContains(t, err.Error(), "s3cret")
			require.Contains(t, err.Error(), tt.want)
			for e := err; e != nil; e = errors.Unwrap(e) {
				require.NotContains(t, fmt.Sprintf("%+v", e), "s3cret")
			}
		})
	}
}

// TestPostgresNackRedelivers: a nacked message comes back to the same
// subscriber, and the messages behind it wait.
func TestPostgresNackRedelivers(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	pg := newPG(t, cfg)
	pub := pg.Publisher()
	for _, id := range []string{"first", "second"} {
		require.NoError(t, pub.Publish(cfg.Topic, message.NewMessage(id, []byte(id))))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := pg.Subscriber().Subscribe(ctx, cfg.Topic)
	require.NoError(t, err)

	var got []string
	start := time.Now()
	for len(got) < 3 {
		select {
		case msg := <-msgs:
			got = append(got, msg.UUID)
			if len(got) == 1 {
				msg.Nack()
			} else {
				msg.Ack()
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %v", got)
		}
	}
	require.Equal(t, []string{"first", "first", "second"}, got)
	t.Logf("resent after a nack in %s", time.Since(start).Round(time.Millisecond))
}

// receive returns the next message on msgs, failing after timeout.
func receive(t testing.TB, msgs <-chan *message.Message, timeout time.Duration) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		require.True(t, ok, "subscription ended")
		return msg
	case <-time.After(timeout):
		t.Fatalf("no message in %s", timeout)
		return nil
	}
}

// TestPostgresGracefulStopCommits: a subscription whose context ends while
// its handler holds a message lets the handler ack it and commits that ack:
// another instance of the group does not get the message again.
func TestPostgresGracefulStopCommits(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	a, b := newPG(t, cfg), newPG(t, cfg)
	pub := a.Publisher()
	for _, id := range []string{"m1", "m2"} {
		require.NoError(t, pub.Publish(cfg.Topic, message.NewMessage(id, []byte(id))))
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	msgsA, err := a.Subscriber().Subscribe(ctxA, cfg.Topic)
	require.NoError(t, err)
	m1 := receive(t, msgsA, 10*time.Second)
	require.Equal(t, "m1", m1.UUID)

	cancelA() // stop while holding m1
	time.Sleep(50 * time.Millisecond)
	m1.Ack()
	for msg := range msgsA { // the channel closes once the ack is committed
		t.Fatalf("got %s after the stop", msg.UUID)
	}

	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	msgsB, err := b.Subscriber().Subscribe(ctxB, cfg.Topic)
	require.NoError(t, err)
	m := receive(t, msgsB, 10*time.Second)
	require.Equal(t, "m2", m.UUID, "m1 was acked before the stop")
	m.Ack()
}

// TestPostgresCloseWithoutAckRedelivers: a bus closed while its handler holds
// a message it never acks rolls the batch back, and another instance gets
// the message.
func TestPostgresCloseWithoutAckRedelivers(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	a, b := newPG(t, cfg), newPG(t, cfg)
	require.NoError(t, a.Publisher().Publish(cfg.Topic, message.NewMessage("held", []byte("x"))))

	msgsA, err := a.Subscriber().Subscribe(context.Background(), cfg.Topic)
	require.NoError(t, err)
	held := receive(t, msgsA, 10*time.Second)
	require.Equal(t, "held", held.UUID)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.Shutdown(ctx), context.DeadlineExceeded)
	_, ok := <-msgsA
	require.False(t, ok, "Shutdown closes the subscription")
	require.NoError(t, a.Close(), "a second Close returns nil")

	msgsB, err := b.Subscriber().Subscribe(context.Background(), cfg.Topic)
	require.NoError(t, err)
	m := receive(t, msgsB, 10*time.Second)
	require.Equal(t, "held", m.UUID)
	m.Ack()
}

const envCrashHelper = "SEXTANT_TEST_CRASH_TOPIC"

// TestPostgresCrashHelperProcess is the process TestPostgresCrashRedelivery
// kills; it does nothing unless that test started it.
func TestPostgresCrashHelperProcess(t *testing.T) {
	topic := os.Getenv(envCrashHelper)
	if topic == "" {
		return
	}
	cfg := bus.NewDefaultConfig()
	cfg.Driver, cfg.Topic, cfg.Postgres.URL = bus.DriverPostgres, topic, pgTestURL()
	pg, err := bus.NewPostgres(context.Background(), cfg, nil)
	require.NoError(t, err)
	msgs, err := pg.Subscriber().Subscribe(context.Background(), cfg.Topic)
	require.NoError(t, err)
	msg := <-msgs
	fmt.Printf("HELD %s\n", msg.UUID)
	select {} // hold the message, unacked, until killed
}

// TestPostgresCrashRedelivery: a router process SIGKILLed while it holds a
// message loses nothing: another instance gets the held message, and the
// ones behind it, in order.
func TestPostgresCrashRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts and kills a test process")
	}
	t.Parallel()
	cfg := pgConfig(t, 1)
	b := newPG(t, cfg)
	pub := b.Publisher()
	for _, id := range []string{"m1", "m2", "m3"} {
		require.NoError(t, pub.Publish(cfg.Topic, message.NewMessage(id, []byte(id))))
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresCrashHelperProcess$")
	cmd.Env = append(os.Environ(), envCrashHelper+"="+cfg.Topic)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "HELD "); ok {
				lines <- s
			}
		}
		close(lines)
	}()
	var held string
	select {
	case held = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("the helper process received nothing")
	}
	require.Equal(t, "m1", held)

	// B waits on the partition's lock while the helper holds it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := b.Subscriber().Subscribe(ctx, cfg.Topic)
	require.NoError(t, err)
	select {
	case msg := <-msgs:
		t.Fatalf("got %s while the helper held the partition", msg.UUID)
	case <-time.After(300 * time.Millisecond):
	}

	killedAt := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	killed = true
	_ = cmd.Wait()
	for _, want := range []string{"m1", "m2", "m3"} {
		m := receive(t, msgs, 10*time.Second)
		require.Equal(t, want, m.UUID)
		m.Ack()
		if want == "m1" {
			t.Logf("held message redelivered %s after SIGKILL", time.Since(killedAt).Round(time.Millisecond))
		}
	}
}

// TestPostgresClosed: Close is idempotent; afterwards publishing and
// subscribing fail, and Close of a subscriber ends its subscriptions.
func TestPostgresClosed(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t, 1)
	ctx := context.Background()
	pg, err := bus.NewPostgres(ctx, cfg, nil)
	require.NoError(t, err)

	sub := pg.Subscriber()
	msgs, err := sub.Subscribe(ctx, cfg.Topic)
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	_, ok := <-msgs
	require.False(t, ok)
	_, err = sub.Subscribe(ctx, cfg.Topic)
	require.ErrorIs(t, err, wsql.ErrSubscriberClosed)

	pub := pg.Publisher()
	require.NoError(t, pub.Close())
	require.ErrorIs(t, pub.Publish(cfg.Topic, message.NewMessage("x", nil)), wsql.ErrPublisherClosed)
	require.NoError(t, pg.Publisher().Publish(cfg.Topic, message.NewMessage("x", nil)), "closing a handle leaves the bus open")

	require.NoError(t, pg.Close())
	require.NoError(t, pg.Close())
	require.ErrorIs(t, pg.Publisher().Publish(cfg.Topic, message.NewMessage("x", nil)), wsql.ErrPublisherClosed)
	_, err = pg.Subscriber().Subscribe(ctx, cfg.Topic)
	require.ErrorIs(t, err, wsql.ErrSubscriberClosed)
	_, err = pg.Stats(ctx)
	require.Error(t, err)
}

// BenchmarkPostgresEndToEnd publishes events through bus.Publisher to the
// PostgreSQL bus (1 partition, batches of 512) and consumes and decodes them
// with one subscriber; events/s is delivered throughput.
func BenchmarkPostgresEndToEnd(b *testing.B) {
	evs := prebuilt()
	cfg := pgConfig(b, 1)
	pg := newPG(b, cfg)
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := pg.Subscriber().Subscribe(ctx, cfg.Topic)
	require.NoError(b, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		var dst []events.Event
		for msg := range msgs {
			var err error
			dst, err = events.DecodeBatch(msg.Payload, dst[:0])
			if err != nil {
				panic(err)
			}
			got.Add(int64(len(dst)))
			msg.Ack()
		}
	})
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	p, err := bus.NewPublisher(pg.Publisher(), cfg)
	require.NoError(b, err)

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, p.Close(ctx))
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPgxBaseline moves the same payloads as BenchmarkPostgresEndToEnd
// (batches of 512 events) with plain pgx: one goroutine inserts them, one
// reads them back in id order, 16 rows a query (subscribe_batch_size), and
// decodes them. commit=1 commits each row, as the bus does; copy=16 sends
// 16 rows per COPY and commit.
func BenchmarkPgxBaseline(b *testing.B) {
	for _, rowsPerCommit := range []int{1, 16} {
		name := "commit=1"
		if rowsPerCommit > 1 {
			name = "copy=" + strconv.Itoa(rowsPerCommit)
		}
		b.Run(name, func(b *testing.B) { benchPgxBaseline(b, rowsPerCommit) })
	}
}

func benchPgxBaseline(b *testing.B, rowsPerCommit int) {
	const batch, readBatch = 512, 16
	evs := prebuilt()
	ctx := context.Background()
	id := events.NewID()
	table := "sxbench_" + hex.EncodeToString(id[10:])
	w, r := pgConnect(b), pgConnect(b)
	_, err := w.Exec(ctx, "CREATE TABLE "+table+" (id BIGSERIAL PRIMARY KEY, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, payload BYTEA)")
	require.NoError(b, err)
	b.Cleanup(func() {
		_, err := w.Exec(ctx, "DROP TABLE "+table)
		require.NoError(b, err)
		_ = w.Close(ctx)
		_ = r.Close(ctx)
	})
	var payloads [][]byte
	for n := 0; n < b.N; n += batch {
		var bb events.BatchBuilder
		for i := n; i < min(n+batch, b.N); i++ {
			bb.Add(&evs[i%len(evs)])
		}
		payloads = append(payloads, bb.Take())
	}

	b.ReportAllocs()
	b.ResetTimer()
	insertErr := make(chan error, 1)
	go func() {
		for i := 0; i < len(payloads); i += rowsPerCommit {
			chunk := payloads[i:min(i+rowsPerCommit, len(payloads))]
			var err error
			if rowsPerCommit == 1 {
				_, err = w.Exec(ctx, "INSERT INTO "+table+" (payload) VALUES ($1)", chunk[0])
			} else {
				_, err = w.CopyFrom(ctx, pgx.Identifier{table}, []string{"payload"},
					pgx.CopyFromSlice(len(chunk), func(j int) ([]any, error) { return []any{chunk[j]}, nil }))
			}
			if err != nil {
				insertErr <- err
				return
			}
		}
		insertErr <- nil
	}()
	var (
		last int64
		got  int
		dst  []events.Event
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
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	require.NoError(b, <-insertErr)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPostgresDrain measures routing capacity apart from publishing: a
// backlog of b.N events (batches of 512), published before the timer
// starts, is consumed and decoded by 1, 2 or 4 bus instances of one consumer
// group, each subscribing every partition. partitions=1 with 2 instances
// shows what lock contention on one partition costs.
func BenchmarkPostgresDrain(b *testing.B) {
	for _, bc := range []struct{ partitions, instances int }{{1, 1}, {1, 2}, {4, 1}, {4, 2}, {4, 4}} {
		b.Run(fmt.Sprintf("partitions=%d/instances=%d", bc.partitions, bc.instances), func(b *testing.B) {
			benchPostgresDrain(b, bc.partitions, bc.instances)
		})
	}
}

func benchPostgresDrain(b *testing.B, partitions, instances int) {
	evs := prebuilt()
	cfg := pgConfig(b, partitions)
	buses := make([]*bus.Postgres, instances)
	for i := range buses {
		buses[i] = newPG(b, cfg)
	}
	p, err := bus.NewPublisher(buses[0].Publisher(), cfg)
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < b.N; i++ {
		require.NoError(b, p.Publish(ctx, evs[i%len(evs)]))
	}
	require.NoError(b, p.Close(ctx))

	var got atomic.Int64
	perInstance := make([]atomic.Int64, instances)
	var wg sync.WaitGroup
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i, pg := range buses {
		sub := pg.Subscriber()
		for part := range cfg.Partitions {
			msgs, err := sub.Subscribe(ctx, cfg.PartitionTopic(part))
			require.NoError(b, err)
			wg.Go(func() {
				var dst []events.Event
				for msg := range msgs {
					var err error
					dst, err = events.DecodeBatch(msg.Payload, dst[:0])
					if err != nil {
						panic(err)
					}
					got.Add(int64(len(dst)))
					perInstance[i].Add(int64(len(dst)))
					msg.Ack()
				}
			})
		}
	}
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if instances > 1 && b.N >= 100_000 {
		var shares []string
		for i := range perInstance {
			shares = append(shares, strconv.FormatInt(perInstance[i].Load()*100/int64(b.N), 10)+"%")
		}
		b.Logf("%d events: shares %s", b.N, strings.Join(shares, " "))
	}
}

// TestPostgresHeldMessageDelaysOtherTopics documents watermill-sql's
// snapshot horizon: while one subscriber holds a message unacked, rows
// inserted later into any topic of the database wait, because subscribers
// read only transactions older than every running one. Not parallel: it
// would delay the other tests.
func TestPostgresHeldMessageDelaysOtherTopics(t *testing.T) {
	cfgA, cfgB := pgConfig(t, 1), pgConfig(t, 1)
	a, b := newPG(t, cfgA), newPG(t, cfgB)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, a.Publisher().Publish(cfgA.Topic, message.NewMessage("slow", nil)))
	msgsA, err := a.Subscriber().Subscribe(ctx, cfgA.Topic)
	require.NoError(t, err)
	msgsB, err := b.Subscriber().Subscribe(ctx, cfgB.Topic)
	require.NoError(t, err)
	held := receive(t, msgsA, 10*time.Second)

	const hold = time.Second
	sent := time.Now()
	require.NoError(t, b.Publisher().Publish(cfgB.Topic, message.NewMessage("other", nil)))
	time.AfterFunc(hold, func() { held.Ack() })
	m := receive(t, msgsB, 10*time.Second)
	delay := time.Since(sent)
	m.Ack()
	t.Logf("a message held %s on one topic delayed another topic's message by %s", hold, delay.Round(time.Millisecond))
	require.GreaterOrEqual(t, delay, hold-50*time.Millisecond)
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// testDatabaseURL is the PostgreSQL the durable-bus tests use.
func testDatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SEXTANT_TEST_DATABASE_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("PostgreSQL is needed for the durable bus tests and is not reachable at %s: %v\n"+
			"Run a PostgreSQL 13+ server (e.g. Debian's postgresql package; trust auth for user postgres, database test) "+
			"or point SEXTANT_TEST_DATABASE_URL at one.", bus.RedactURL(u), err)
	}
	_ = conn.Close(ctx)
	return u
}

// instance is one `sextant run` process.
type instance struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sextantBinary builds the command once per test run.
func sextantBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sextant-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sextant")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func startInstance(t *testing.T, config string) *instance {
	t.Helper()
	cmd := exec.Command(sextantBinary(t), "run", "--config", config, "--listen", "127.0.0.1:0", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	in := &instance{cmd: cmd, done: make(chan struct{})}
	var waitErr error
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving http://([^/]+)/metrics`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { waitErr = cmd.Wait(); close(in.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-in.done
		}
	})
	select {
	case in.addr = <-addr:
	case <-in.done:
		t.Fatalf("sextant run exited: %v\n%s", waitErr, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("sextant run did not start in 30s\n%s", stderr.String())
	}
	return in
}

// routed is an instance's count of routed test events.
func (in *instance) routed(t *testing.T) float64 {
	t.Helper()
	fams, _ := scrape(t, in.addr)
	f, ok := fams["sxtest_requests_total"]
	if !ok {
		return 0
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

// pgTestSetup writes a config for a fresh topic on the test database and
// returns its path and bus section.
func pgTestSetup(t *testing.T, partitions int) (string, bus.Config) {
	t.Helper()
	url := testDatabaseURL(t)
	cfg := bus.NewDefaultConfig()
	cfg.Driver, cfg.Partitions, cfg.BatchSize = bus.DriverPostgres, partitions, 50
	cfg.Topic = fmt.Sprintf("sxe2e_%d", time.Now().UnixNano())
	cfg.Postgres.URL = url
	cfg.Postgres.ConsumerGroup = "e2e"
	yaml := fmt.Sprintf(`bus:
  driver: postgres
  topic: %s
  partitions: %d
  batch_size: 50
  postgres: {url: %q, consumer_group: e2e}
router:
  routes:
    - match: task.initialize_requested
      metrics: [{name: sxtest.requests.total, type: counter}]
`, cfg.Topic, partitions, url)
	path := filepath.Join(t.TempDir(), "pg.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	t.Cleanup(func() { dropTopicTables(t, url, cfg) })
	return path, cfg
}

func dropTopicTables(t *testing.T, url string, cfg bus.Config) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	topics := []string{cfg.PoisonTopic()}
	for i := range cfg.Partitions {
		topics = append(topics, cfg.PartitionTopic(i))
	}
	for _, tp := range topics {
		_, _ = conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS "watermill_%s", "watermill_offsets_%s"`, tp, tp))
	}
}

// publishEvents publishes n task.initialize_requested events from its own
// connection to the bus, flushing every chunk events.
func publishEvents(t *testing.T, cfg bus.Config, from, n, chunk int, afterEach func(sent int)) {
	t.Helper()
	ctx := context.Background()
	pg, err := bus.NewPostgres(ctx, cfg, nil)
	require.NoError(t, err)
	defer pg.Close()
	pub, err := bus.NewPublisher(pg.Publisher(), cfg)
	require.NoError(t, err)
	for i := from; i < from+n; i++ {
		cid := events.NewID()
		require.NoError(t, pub.Publish(ctx, events.New(events.TaskInitializeRequested, cid,
			events.String("task_uuid", fmt.Sprint("t", i)), events.String("task_type", "e2e"), events.String("namespace", "ns"))))
		if (i-from+1)%chunk == 0 {
			require.NoError(t, pub.Flush(ctx))
			if afterEach != nil {
				afterEach(i - from + 1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	require.NoError(t, pub.Close(ctx))
}

// waitDrained waits until the consumer group has acked every message.
func waitDrained(t *testing.T, cfg bus.Config) {
	t.Helper()
	pg, err := bus.NewPostgres(context.Background(), cfg, nil)
	require.NoError(t, err)
	defer pg.Close()
	require.Eventually(t, func() bool {
		st, err := pg.Stats(context.Background())
		return err == nil && st.Depth == 0
	}, 60*time.Second, 50*time.Millisecond, "the consumer group never caught up")
}

// ackedEvents counts the events in the application messages the consumer
// group has acked. The instances' own messaging events travel in batches of
// their own, marked as infrastructure, which are left out.
func ackedEvents(t *testing.T, cfg bus.Config) float64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	sum := 0.0
	for i := range cfg.Partitions {
		tp := cfg.PartitionTopic(i)
		var n float64
		q := fmt.Sprintf(`SELECT COALESCE(sum((m.metadata->>'sextant_events')::float8), 0) FROM "watermill_%s" m
			WHERE (m.transaction_id, m."offset") <= (SELECT last_processed_transaction_id, offset_acked FROM "watermill_offsets_%s" WHERE consumer_group = $1)
			AND m.metadata->>'sextant_infrastructure' IS NULL
			AND position('resilience.'::bytea in m.payload) = 0`, tp, tp) // an instance's own intake breaker state, not the test's events
		require.NoError(t, conn.QueryRow(ctx, q, cfg.Postgres.ConsumerGroup).Scan(&n))
		sum += n
	}
	return sum
}

// Two router instances and two publishers on one database: every event is
// routed exactly once, and both instances share the work.
func TestPostgresBusManyPublishersManyInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sextant processes against PostgreSQL; run without -short")
	}
	path, cfg := pgTestSetup(t, 4)
	a, b := startInstance(t, path), startInstance(t, path)
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishEvents(t, cfg, p*5000, 5000, 500, nil)
		}()
	}
	wg.Wait()
	waitDrained(t, cfg)
	require.Eventually(t, func() bool { return a.routed(t)+b.routed(t) == 10000 }, 10*time.Second, 20*time.Millisecond,
		"a=%v b=%v", a.routed(t), b.routed(t))
	t.Logf("instance a routed %v, b %v", a.routed(t), b.routed(t))
}

// SIGKILL of the only instance mid-stream: every event it had not acked is
// routed by the instance that takes over, and the only events routed twice
// are those that were in flight.
func TestPostgresBusSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sextant processes against PostgreSQL; run without -short")
	}
	path, cfg := pgTestSetup(t, 4)
	const total = 10000
	a := startInstance(t, path)
	var lastA float64
	killed := false
	// Kill a right after a large chunk is committed, while it is likely
	// routing it: the assertions hold whatever it holds at that moment.
	publishEvents(t, cfg, 0, total, 2500, func(sent int) {
		if killed || sent < total/2 {
			return
		}
		lastA = a.routed(t)
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
		<-a.done
		killed = true
	})
	require.True(t, killed)
	require.Greater(t, lastA, 0.0, "a routed nothing before it was killed")
	// What a acked before dying was routed by it; everything else must be
	// routed by b, exactly once.
	acked := ackedEvents(t, cfg)
	b := startInstance(t, path)
	waitDrained(t, cfg)
	require.Eventually(t, func() bool { return b.routed(t) == total-acked }, 10*time.Second, 20*time.Millisecond,
		"b routed %v, want %v (total %d, acked by a %v)", b.routed(t), total-acked, total, acked)
	// Duplicates: events a routed but had not acked, at most the batches
	// a subscriber holds (subscribe_batch_size messages per partition).
	inFlight := float64(cfg.Partitions * cfg.Postgres.SubscribeBatchSize * cfg.BatchSize)
	require.LessOrEqual(t, lastA-acked, inFlight)
	t.Logf("a routed ≥%v and acked %v before SIGKILL; b routed %v", lastA, acked, b.routed(t))
}

// An event that violates its schema goes to the poison table with the
// reason; the events around it are routed.
func TestPostgresBusPoisonsSchemaViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sextant processes against PostgreSQL; run without -short")
	}
	path, cfg := pgTestSetup(t, 2)
	a := startInstance(t, path)
	ctx := context.Background()
	pg, err := bus.NewPostgres(ctx, cfg, nil)
	require.NoError(t, err)
	defer pg.Close()
	pub, err := bus.NewPublisher(pg.Publisher(), cfg)
	require.NoError(t, err)
	good := func() events.Event {
		return events.New(events.TaskInitializeRequested, events.NewID(),
			events.String("task_uuid", "t"), events.String("task_type", "e2e"), events.String("namespace", "ns"))
	}
	bad := events.New(events.TaskInitializeRequested, events.NewID(), events.String("task_uuid", "t")) // no task_type, namespace
	for _, e := range []events.Event{good(), bad, good()} {
		require.NoError(t, pub.Publish(ctx, e))
	}
	require.NoError(t, pub.Close(ctx))
	waitDrained(t, cfg)
	require.Eventually(t, func() bool { return a.routed(t) == 2 }, 10*time.Second, 20*time.Millisecond)
	st, err := pg.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Poison)

	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var reason, event string
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT metadata->>'sextant_poison_reason', metadata->>'sextant_poison_event' FROM "watermill_%s"`, cfg.PoisonTopic())).Scan(&reason, &event))
	require.Equal(t, "schema_violation", reason)
	require.Equal(t, bad.ID.String(), event)
}

// The database and messaging metrics come from real work on the bus's own
// pool, and describing that work does not feed on itself.
func TestPostgresBusDatabaseAndMessagingMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sextant processes against PostgreSQL; run without -short")
	}
	_, cfg := pgTestSetup(t, 2)
	path := filepath.Join(t.TempDir(), "default-routes.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("bus:\n  driver: postgres\n  topic: %s\n  partitions: 2\n  postgres: {url: %q, consumer_group: e2e}\n", cfg.Topic, cfg.Postgres.URL)), 0o600))
	a := startInstance(t, path)

	var body strings.Builder
	for i := range 20 {
		fmt.Fprintf(&body, `{"name":"task.initialize_requested","correlation_id":"0199c3e0-ccdb-7581-87ab-3f67daeaa4%02d","attrs":{"task_uuid":"t","task_type":"x","namespace":"n"}}`+"\n", i)
	}
	resp, err := http.Post("http://"+a.addr+"/events", "application/x-ndjson", strings.NewReader(body.String()))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp.Body.Close()

	value := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		f, ok := fams[name]
		if !ok {
			return -1
		}
		sum := -1.0
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			if sum < 0 {
				sum = 0
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	require.Eventually(t, func() bool {
		fams, _ := scrape(t, a.addr)
		return value(fams, "tasker_tasks_requests_total", nil) == 20 &&
			value(fams, "tasker_sql_queries_total", map[string]string{"pool": "bus", "operation": "insert", "outcome": "success"}) >= 1 &&
			value(fams, "tasker_queue_messages_sent_total", nil) >= 1 &&
			value(fams, "tasker_queue_messages_received_total", nil) >= 1
	}, 20*time.Second, 50*time.Millisecond)
	fams, _ := scrape(t, a.addr)
	for _, name := range []string{
		"tasker_sql_query_duration_milliseconds", "tasker_db_pool_connections_active", "tasker_db_pool_connections_idle",
		"tasker_db_pool_wait_duration_milliseconds", "tasker_queue_message_send_duration_milliseconds",
		"tasker_queue_message_receive_duration_milliseconds", "tasker_queue_messages_deleted_total",
		"tasker_queue_depth", "tasker_queue_age_seconds",
	} {
		require.GreaterOrEqual(t, value(fams, name, nil), 0.0, "%s missing from /metrics", name)
	}
	// No feedback: once the 20 events are handled, the bus goes quiet.
	sent := value(fams, "tasker_queue_messages_sent_total", nil)
	queries := value(fams, "tasker_sql_queries_total", nil)
	time.Sleep(300 * time.Millisecond) // thirty poll intervals
	fams, _ = scrape(t, a.addr)
	require.Equal(t, sent, value(fams, "tasker_queue_messages_sent_total", nil))
	require.Equal(t, queries, value(fams, "tasker_sql_queries_total", nil))
}

func TestPostgresBusHealthDetailed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sextant processes against PostgreSQL; run without -short")
	}
	path, cfg := pgTestSetup(t, 2)
	a := startInstance(t, path)
	resp, err := http.Get("http://" + a.addr + "/health/detailed")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Status string `json:"status"`
		Bus    struct {
			Driver  string `json:"driver"`
			Status  string `json:"status"`
			Depth   *int64 `json:"depth"`
			Backlog []struct {
				Topic string `json:"topic"`
			} `json:"partition_backlog"`
			Publisher map[string]float64 `json:"publisher"`
		} `json:"bus"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "healthy", body.Status)
	require.Equal(t, "postgres", body.Bus.Driver)
	require.Equal(t, "healthy", body.Bus.Status)
	require.NotNil(t, body.Bus.Depth)
	require.Len(t, body.Bus.Backlog, 2)
	require.Equal(t, cfg.PartitionTopic(1), body.Bus.Backlog[1].Topic)
	require.Contains(t, body.Bus.Publisher, "events_published")
}

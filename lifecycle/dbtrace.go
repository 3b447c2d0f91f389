package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sextant-telemetry/sextant/events"
)

// This file is the database instrumentation: a pgx tracer (DBTracer) and a
// pool-statistics reader (PoolStatsReader) that publish the catalog's db.*
// events. It is the one place in lifecycle that imports pgx; it does so
// because these components observe a pgx pool, and the events they publish
// are plain catalog events like the rest of the package's.
//
// # No feedback loop
//
// A DBTracer may trace the pool of the very bus it publishes to. Then every
// query it reports becomes an event, the event is inserted by a query, and
// that query would become an event: an endless stream with no real work
// behind it. The loop is cut with a context marker. WithoutTracing marks a
// context; the tracer ignores queries and acquires made under a marked
// context (and every query of a transaction begun under one). The PostgreSQL
// bus cannot import lifecycle, so it takes the marker as a function:
// bus.WithInfrastructureContext(lifecycle.WithoutTracing) makes it mark the
// inserts of messages holding only infrastructure events and all of its own
// machinery (polling, acks, table creation, Stats).

// DefaultDBTracerBuffer is how many events a DBTracer holds for its
// publishing goroutine when DBTracerSettings.Buffer is zero.
const DefaultDBTracerBuffer = 1024

// DefaultPoolStatsInterval is how often a PoolStatsReader reads its pool when
// PoolStatsSettings.Interval is zero.
const DefaultPoolStatsInterval = 10 * time.Second

// Operation values of db.query_executed.
const (
	opSelect   = "select"
	opInsert   = "insert"
	opUpdate   = "update"
	opDelete   = "delete"
	opBegin    = "begin"
	opCommit   = "commit"
	opRollback = "rollback"
	opOther    = "other"
)

type noTraceKey struct{}

// WithoutTracing returns a context under which DBTracer reports nothing: no
// query, no acquire, and no query of a transaction begun under it (so its
// commit or rollback is silent even when run under another context). Use it
// for work that must not describe itself, such as a bus inserting messages
// made only of infrastructure events.
func WithoutTracing(ctx context.Context) context.Context {
	return context.WithValue(ctx, noTraceKey{}, true)
}

// TracingDisabled reports whether ctx was marked by WithoutTracing.
func TracingDisabled(ctx context.Context) bool { return tracingDisabled(ctx) }

func tracingDisabled(ctx context.Context) bool {
	v, _ := ctx.Value(noTraceKey{}).(bool)
	return v
}

// DBTracerSettings carries what the developer passes to NewDBTracer in code.
type DBTracerSettings struct {
	// Logger receives a warning at the first dropped event and debug
	// records after it. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for durations and event times. Nil means time.Now.
	Now func() time.Time
	// Buffer is how many events may wait for the publishing goroutine; when
	// it is full, events are dropped and counted. Zero means
	// DefaultDBTracerBuffer.
	Buffer int

	_ struct{}
}

// DBTracer reports a pgx connection's or pool's work as catalog events:
// db.query_executed per query, db.transaction_completed per transaction
// (begin to commit or rollback on one connection) and db.pool_acquired per
// pool acquire. Set it as pgx.ConnConfig.Tracer; pgxpool then also finds it
// as its AcquireTracer and ReleaseTracer.
//
// It never reports SQL text or arguments, which may hold sensitive data:
// operation is the statement's first keyword mapped to select, insert,
// update, delete, begin, commit, rollback or other (a WITH query is other).
// "start transaction" counts as begin, "end" as commit, "abort" as rollback;
// "rollback to savepoint" is a rollback query that does not end the
// transaction. A transaction's outcome is commit only when COMMIT answered
// COMMIT: committing a failed transaction is a rollback.
//
// Batches (SendBatch), CopyFrom, Prepare and Connect are not traced: pgx
// reports them through other tracer interfaces.
//
// The tracer never blocks pgx and never fails a query. It queues events for
// one goroutine of its own, which Start starts and Shutdown stops, and which
// hands them to the Publisher. This matters when the Publisher is a bus whose
// pool is traced: the bus's publishing goroutine runs traced queries, and
// publishing to the bus from inside them could wait for that very goroutine.
// Events are dropped and counted in Dropped when the queue is full, when no
// Publisher is set, when Publish fails and after Shutdown. Events traced
// before Start wait in the queue.
//
// Its methods are safe for concurrent use.
type DBTracer struct {
	pool  string
	now   func() time.Time
	log   *slog.Logger
	pub   atomic.Pointer[publisherBox]
	queue chan events.Event

	mu  sync.Mutex
	txs map[*pgx.Conn]txState // open transactions, per connection

	dropped atomic.Uint64

	lifeMu  sync.Mutex
	state   engineState // stateNew, stateRunning or stateStopped
	stopped atomic.Bool
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}
}

var (
	_ pgx.QueryTracer       = (*DBTracer)(nil)
	_ pgxpool.AcquireTracer = (*DBTracer)(nil)
	_ pgxpool.ReleaseTracer = (*DBTracer)(nil)
)

type publisherBox struct{ Publisher }

type txState struct {
	start time.Time
	quiet bool // begun under WithoutTracing: the whole transaction is silent
}

// NewDBTracer returns a tracer whose events carry pool as their pool field.
// pub may be nil and set later with SetPublisher: the tracer must exist
// before the pool it traces, and that pool may belong to the bus that pub
// publishes to.
func NewDBTracer(pool string, pub Publisher, set DBTracerSettings) *DBTracer {
	t := &DBTracer{
		pool:  pool,
		now:   set.Now,
		log:   set.Logger,
		queue: make(chan events.Event, orDefault(set.Buffer, DefaultDBTracerBuffer)),
		txs:   make(map[*pgx.Conn]txState),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.SetPublisher(pub)
	return t
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// SetPublisher sets (or, with nil, unsets) where events go from now on. It is
// safe for concurrent use, also while the tracer runs.
func (t *DBTracer) SetPublisher(pub Publisher) {
	if pub == nil {
		t.pub.Store(nil)
		return
	}
	t.pub.Store(&publisherBox{pub})
}

// Dropped returns how many events were not published: queue full, no
// Publisher, Publish failed, or the tracer shut down.
func (t *DBTracer) Dropped() uint64 { return t.dropped.Load() }

// Start starts the goroutine that publishes queued events. It returns at
// once; ctx only has to be live. Calling it twice returns ErrAlreadyStarted,
// after Shutdown ErrShutdown.
func (t *DBTracer) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lifecycle: db tracer: start: %w", err)
	}
	t.lifeMu.Lock()
	defer t.lifeMu.Unlock()
	if err := startable(t.state); err != nil {
		return fmt.Errorf("lifecycle: db tracer: start: %w", err)
	}
	t.state = stateRunning
	runCtx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(runCtx)
	return nil
}

func (t *DBTracer) run(ctx context.Context) {
	defer close(t.done)
	for {
		select {
		case e := <-t.queue:
			t.publish(ctx, e)
		case <-t.stop:
			for {
				select {
				case e := <-t.queue:
					t.publish(ctx, e)
				default:
					return
				}
			}
		}
	}
}

// Shutdown stops taking events, publishes those queued, and stops the
// goroutine. When ctx ends first, it cancels the Publish in progress, drops
// what is left (counted) and returns ctx's error. It is safe to call more
// than once and before Start; later calls return nil.
func (t *DBTracer) Shutdown(ctx context.Context) error {
	t.lifeMu.Lock()
	prev := t.state
	t.state = stateStopped
	t.stopped.Store(true)
	t.lifeMu.Unlock()
	if prev != stateRunning {
		if prev == stateNew {
			t.dropQueued()
		}
		return nil
	}
	close(t.stop)
	var err error
	select {
	case <-t.done:
	case <-ctx.Done():
		t.cancel()
		<-t.done
		err = fmt.Errorf("lifecycle: db tracer: shutdown: %w", ctx.Err())
	}
	t.cancel()
	t.dropQueued()
	return err
}

// dropQueued counts what a racing enqueue left behind after the goroutine
// stopped.
func (t *DBTracer) dropQueued() {
	for {
		select {
		case <-t.queue:
			t.dropped.Add(1)
		default:
			return
		}
	}
}

func (t *DBTracer) publish(ctx context.Context, e events.Event) {
	box := t.pub.Load()
	if box == nil {
		t.drop(ctx, e.Name, nil)
		return
	}
	if err := box.Publish(ctx, e); err != nil {
		t.drop(ctx, e.Name, err)
	}
}

// drop counts an event that is not published; the first is logged at warn
// level so that a broken setup is visible without flooding the log.
func (t *DBTracer) drop(ctx context.Context, name string, err error) {
	level := slog.LevelDebug
	// After Shutdown, drops are expected (the bus's last flush is traced).
	if t.dropped.Add(1) == 1 && !t.stopped.Load() {
		level = slog.LevelWarn
	}
	if err == nil {
		err = fmt.Errorf("no publisher set, queue full or tracer shut down")
	}
	t.log.Log(ctx, level, "lifecycle: db tracer: event dropped; continuing",
		slog.String("event_name", name), slog.String("pool", t.pool), slog.Any("error", err))
}

// emit queues a catalog event without waiting.
func (t *DBTracer) emit(ctx context.Context, at time.Time, name string, attrs ...events.Attr) {
	if t.stopped.Load() {
		t.drop(ctx, name, nil)
		return
	}
	select {
	case t.queue <- dbEvent(at, name, attrs):
	default:
		t.drop(ctx, name, nil)
	}
}

// dbEvent builds a catalog event. A database event belongs to no task: its
// correlation id is its own id, which also spreads such events over the
// bus's partitions.
func dbEvent(at time.Time, name string, attrs []events.Attr) events.Event {
	version := uint16(1)
	if s, ok := events.Lookup(name); ok {
		version = s.Version
	}
	id := events.NewIDAt(at)
	return events.Event{Name: name, ID: id, Time: at, CorrelationID: id, SchemaVersion: version, Attrs: attrs}
}

type queryKey struct{}

// queryStart travels from TraceQueryStart to TraceQueryEnd in the context.
type queryStart struct {
	start time.Time
	op    string
	txOp  txOp
	quiet bool
}

type txOp uint8

const (
	txNone txOp = iota
	txBegin
	txEnd
)

// TraceQueryStart implements pgx.QueryTracer. It records the start time and
// the statement's operation; the SQL text is not kept.
func (t *DBTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	op, tx := classify(data.SQL)
	quiet := tracingDisabled(ctx)
	if !quiet {
		t.mu.Lock()
		quiet = t.txs[conn].quiet
		t.mu.Unlock()
	}
	return context.WithValue(ctx, queryKey{}, &queryStart{start: t.now(), op: op, txOp: tx, quiet: quiet})
}

// TraceQueryEnd implements pgx.QueryTracer: it queues db.query_executed and,
// at the end of a transaction, db.transaction_completed.
func (t *DBTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	qs, ok := ctx.Value(queryKey{}).(*queryStart)
	if !ok {
		return
	}
	end := t.now()
	switch qs.txOp {
	case txBegin:
		if data.Err == nil {
			t.mu.Lock()
			t.txs[conn] = txState{start: qs.start, quiet: qs.quiet}
			t.mu.Unlock()
		}
	case txEnd:
		t.mu.Lock()
		st, open := t.txs[conn]
		delete(t.txs, conn)
		t.mu.Unlock()
		if open && !st.quiet && !qs.quiet {
			outcome := opRollback
			if data.Err == nil && data.CommandTag.String() == "COMMIT" {
				outcome = opCommit
			}
			t.emit(ctx, end, events.DBTransactionCompleted,
				events.String("pool", t.pool), events.String("outcome", outcome),
				events.Float("duration_ms", ms(end.Sub(st.start))))
		}
	}
	if qs.quiet {
		return
	}
	outcome := "success"
	if data.Err != nil {
		outcome = "error"
	}
	t.emit(ctx, end, events.DBQueryExecuted,
		events.String("pool", t.pool), events.String("operation", qs.op),
		events.String("outcome", outcome), events.Float("duration_ms", ms(end.Sub(qs.start))))
}

type acquireKey struct{}

// TraceAcquireStart implements pgxpool.AcquireTracer.
func (t *DBTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if tracingDisabled(ctx) {
		return ctx
	}
	return context.WithValue(ctx, acquireKey{}, t.now())
}

// TraceAcquireEnd implements pgxpool.AcquireTracer: a successful acquire
// queues db.pool_acquired with how long it waited.
func (t *DBTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	start, ok := ctx.Value(acquireKey{}).(time.Time)
	if !ok || data.Err != nil {
		return
	}
	end := t.now()
	t.emit(ctx, end, events.DBPoolAcquired,
		events.String("pool", t.pool), events.Float("wait_ms", ms(end.Sub(start))))
}

// TraceRelease implements pgxpool.ReleaseTracer: it forgets a transaction
// left open on a connection going back to the pool (pgxpool closes such a
// connection), so that no state outlives it. Connections used without a pool
// that die inside a transaction leave one small entry each.
func (t *DBTracer) TraceRelease(_ *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	t.mu.Lock()
	delete(t.txs, data.Conn)
	t.mu.Unlock()
}

// classify returns the operation of sql's first keyword, skipping blanks,
// comments and opening parentheses, and what the statement does to the
// connection's transaction. It does not allocate.
func classify(sql string) (string, txOp) {
	word, rest := firstWord(sql)
	switch {
	case eq(word, "select"):
		return opSelect, txNone
	case eq(word, "insert"):
		return opInsert, txNone
	case eq(word, "update"):
		return opUpdate, txNone
	case eq(word, "delete"):
		return opDelete, txNone
	case eq(word, "begin"), eq(word, "start"):
		return opBegin, txBegin
	case eq(word, "commit"), eq(word, "end"):
		return opCommit, txEnd
	case eq(word, "rollback"), eq(word, "abort"):
		if next, _ := firstWord(rest); eq(next, "to") || eq(next, "prepared") {
			return opRollback, txNone
		}
		return opRollback, txEnd
	}
	return opOther, txNone
}

// firstWord returns the first run of ASCII letters of s after blanks,
// comments and parentheses, and what follows it.
func firstWord(s string) (word, rest string) {
	i := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := i + 2
			for j+1 < len(s) && !(s[j] == '*' && s[j+1] == '/') {
				j++
			}
			i = j + 2
		default:
			j := i
			for j < len(s) && (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				j++
			}
			return s[i:j], s[j:]
		}
	}
	return "", ""
}

// eq reports whether word equals the lower-case ASCII keyword kw, ignoring case.
func eq(word, kw string) bool {
	if len(word) != len(kw) {
		return false
	}
	for i := range len(word) {
		if word[i]|0x20 != kw[i] {
			return false
		}
	}
	return true
}

// PoolStatsSettings carries what the developer passes to NewPoolStatsReader
// in code.
type PoolStatsSettings struct {
	// Logger receives a warning at the first failed Publish and debug
	// records after it. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for event times. Nil means time.Now.
	Now func() time.Time
	// Interval is the time between readings. Zero means
	// DefaultPoolStatsInterval.
	Interval time.Duration

	_ struct{}
}

// PoolStatsReader publishes db.pool_stats {pool, active, idle, max} for one
// pgx pool: a reading at Start, one every interval, and one at Shutdown.
// active is the pool's AcquiredConns, idle its IdleConns, max its MaxConns.
// Its methods are safe for concurrent use.
type PoolStatsReader struct {
	name     string
	pool     *pgxpool.Pool
	pub      Publisher
	now      func() time.Time
	log      *slog.Logger
	interval time.Duration
	failed   atomic.Uint64

	mu     sync.Mutex
	state  engineState
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPoolStatsReader returns a reader of pool whose events carry name as
// their pool field and go to pub, which must not be nil.
func NewPoolStatsReader(name string, pool *pgxpool.Pool, pub Publisher, set PoolStatsSettings) *PoolStatsReader {
	r := &PoolStatsReader{
		name: name, pool: pool, pub: pub, now: set.Now, log: set.Logger,
		interval: orDefault(set.Interval, DefaultPoolStatsInterval),
		done:     make(chan struct{}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Failed returns how many readings Publish refused.
func (r *PoolStatsReader) Failed() uint64 { return r.failed.Load() }

// Start publishes a first reading, bounded by ctx, and starts the goroutine
// that publishes one every interval. It returns quickly. Calling it twice
// returns ErrAlreadyStarted, after Shutdown ErrShutdown.
func (r *PoolStatsReader) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lifecycle: pool stats: start: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := startable(r.state); err != nil {
		return fmt.Errorf("lifecycle: pool stats: start: %w", err)
	}
	r.state = stateRunning
	r.read(ctx)
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(runCtx)
	return nil
}

func (r *PoolStatsReader) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.read(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// Shutdown stops the goroutine, waits for it, and publishes a last reading,
// all bounded by ctx. It is safe to call more than once and before Start;
// later calls, and a call before Start, return nil and publish nothing.
func (r *PoolStatsReader) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	prev := r.state
	r.state = stateStopped
	r.mu.Unlock()
	if prev != stateRunning {
		return nil
	}
	r.cancel() // also ends a Publish blocked in the goroutine
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("lifecycle: pool stats: shutdown: %w", ctx.Err())
	}
	r.read(ctx)
	return nil
}

// read publishes one reading; a failure is counted and logged, not returned.
func (r *PoolStatsReader) read(ctx context.Context) {
	s := r.pool.Stat()
	e := dbEvent(r.now(), events.DBPoolStats, []events.Attr{
		events.String("pool", r.name),
		events.Int("active", int64(s.AcquiredConns())),
		events.Int("idle", int64(s.IdleConns())),
		events.Int("max", int64(s.MaxConns())),
	})
	if err := r.pub.Publish(ctx, e); err != nil {
		level := slog.LevelDebug
		if r.failed.Add(1) == 1 {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "lifecycle: pool stats: publish failed; continuing",
			slog.String("pool", r.name), slog.Any("error", err))
	}
}

// startable says why a component in state cannot start, or nil.
func startable(state engineState) error {
	switch state {
	case stateRunning:
		return ErrAlreadyStarted
	case stateStopped:
		return ErrShutdown
	}
	return nil
}

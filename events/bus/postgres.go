package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultCloseTimeout bounds Close: how long the bus waits for messages in
// handlers to be acked and their offsets committed before it rolls back what
// is still open (those messages are then redelivered).
const DefaultCloseTimeout = 5 * time.Second

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: a longer table name is
// silently truncated, and two partitions' tables could become one.
const maxIdentifier = 63

// Postgres is the durable bus: watermill-sql v4 over a pgx v5 pool, with one
// table pair per topic (see NewPostgres for the layout).
//
// # Delivery semantics
//
// These follow from watermill-sql's default PostgreSQL schema and offsets
// adapter, and were measured by this package's tests.
//
//   - Every consumer group gets every message. The group's position in a
//     topic is one row of the offsets table: (last_processed_transaction_id,
//     offset_acked).
//   - A subscriber reads a batch (postgres.subscribe_batch_size messages) in
//     one REPEATABLE READ transaction that first locks the group's offsets row
//     with SELECT … FOR UPDATE, hands the messages to the handler one at a
//     time, each only after the previous one was acked, and then writes the
//     last acked position and commits. Within a group, one subscriber at a
//     time holds a partition. Another subscriber of the group waits on the
//     lock (holding a connection); when the holder commits, the waiter's read
//     fails with "could not serialize access due to concurrent update", which
//     watermill-sql v4.1.2 takes for an empty read (it never checks pgx's
//     rows.Err), so the waiter sleeps poll_interval and tries again.
//     Partitions are therefore the unit of parallelism across router
//     instances, and no assignment decides who takes one: while a holder has
//     a backlog it re-locks at once and keeps the partition; when it has
//     caught up, whichever instance polls first gets the next batch. Measured
//     with 2 instances on 4 partitions: about half each while publishing
//     paced the work, 65–100% to one instance while draining a backlog.
//   - Order is kept per partition: rows are read in (transaction_id, offset)
//     order, and only from transactions older than every running one, so a
//     slow publisher's rows are never skipped.
//   - At-least-once. A subscriber whose process dies mid-batch never commits:
//     its transaction rolls back when the connection drops, and the whole
//     batch, acked messages included, is redelivered to whichever subscriber
//     takes the partition next (7 ms after a SIGKILL, measured). Nothing is
//     lost; the duplicates are the messages that were in flight. Acks are
//     committed with synchronous_commit off (see asyncAcks), so a crash of
//     the PostgreSQL server may also redeliver the last acked messages.
//   - A Nack (a handler error in watermill's Router) does not skip the
//     message: watermill-sql resends the same message to the same subscriber
//     after one second (its ResendInterval), for ever, in the same
//     transaction, and the partition behind it waits. Errors
//     must therefore end in an ack: retry in memory and then poison the
//     message (the Router's Retry and PoisonQueue middleware, with
//     Publisher() and PoisonTopic()).
//   - A message not acked within watermill-sql's AckDeadline (30 s) is given
//     up and read again in the next batch. Until then, the open transaction
//     holds back the snapshot horizon of the whole database: a slow handler
//     delays every topic of every group in it (a message held 1 s delayed
//     another topic's by 1.0 s, measured). Handlers must ack fast.
//   - There is no LISTEN/NOTIFY: an idle subscriber polls every
//     postgres.poll_interval, which bounds the added latency.
//
// Connections: each subscription holds one while it reads or waits for a
// partition's lock, and the publisher one per insert, so
// postgres.max_conns should exceed the number of partitions.
//
// # Stopping
//
// Ending a subscription (its context, Close of the Subscriber, or Close of
// the bus) is graceful: the message the handler holds may still be acked, and
// the acks are committed before the subscription's channel is closed. This
// differs from a bare watermill-sql subscriber, where cancelling the context
// rolls back the whole batch, and closing abandons the message in the handler.
//
// A Postgres is safe for concurrent use.
type Postgres struct {
	claimsMu    sync.Mutex // guards claimsReady
	claimsReady bool       // the claims table exists (Claim)

	cfg     Config
	pool    *pgxpool.Pool
	db      wsql.Beginner
	schema  wsql.DefaultPostgreSQLSchema
	offsets wsql.DefaultPostgreSQLOffsetsAdapter
	subCfg  wsql.SubscriberConfig
	logger  watermill.LoggerAdapter
	// infra marks the contexts of the bus's own work (see
	// WithInfrastructureContext); the identity by default.
	infra func(context.Context) context.Context

	pub *wsql.Publisher
	// pubMu is held for reading by every Publish and for writing by Close,
	// so that no insert is running when the pool closes.
	pubMu     sync.RWMutex
	pubClosed bool

	// abort ends the watermill-sql subscriptions' context: the last resort
	// of Shutdown, which rolls back open transactions.
	abortCtx context.Context
	abort    context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   []*subscription

	closeOnce sync.Once
}

// PostgresOption is a knob of NewPostgres with no YAML counterpart: how the
// bus's pool is instrumented.
//
// events/bus must not import lifecycle (the instrumentation lives there), so
// the options take only pgx interfaces and plain functions.
type PostgresOption func(*postgresOptions)

type postgresOptions struct {
	tracer pgx.QueryTracer
	infra  func(context.Context) context.Context
}

// WithQueryTracer sets t as the tracer of every connection of the bus's pool
// (pgx.ConnConfig.Tracer). If t also implements pgxpool.AcquireTracer or
// pgxpool.ReleaseTracer, pgxpool uses it for acquires and releases too.
func WithQueryTracer(t pgx.QueryTracer) PostgresOption {
	return func(o *postgresOptions) { o.tracer = t }
}

// WithInfrastructureContext makes the bus pass every context of its own
// machinery through mark before using it, so that a tracer can recognise
// and ignore that work (lifecycle.WithoutTracing is such a mark). Without
// it, instrumenting the bus's pool would feed on itself: a traced insert
// yields database events, which are published, which is another insert.
//
// Marked are:
//   - the insert of a Publish whose messages all carry
//     MetadataInfrastructure "true" (they hold only database and messaging
//     events); an insert holding any other event is left as it is, and its
//     queries and acquire are traced;
//   - every query of every subscription: creating the group's offsets row,
//     polling, locking, reading, acking and committing (the subscriptions'
//     context is marked, and watermill-sql runs all of them, commit and
//     rollback included, under it);
//   - the contexts of the messages handed to handlers, which watermill-sql
//     derives from the subscription's; database work a handler does under
//     msg.Context() is therefore not traced either;
//   - table creation in NewPostgres and the query of Stats.
func WithInfrastructureContext(mark func(context.Context) context.Context) PostgresOption {
	return func(o *postgresOptions) { o.infra = mark }
}

// NewPostgres connects a pgx pool of cfg.Postgres.MaxConns connections to
// cfg.Postgres.ResolvedURL(), creates the tables of every partition topic and
// of the poison topic if they are missing, and returns the bus.
//
// Each topic T has two tables (watermill-sql's default PostgreSQL layout,
// with a binary payload):
//
//	"watermill_T" (
//	    "offset"       BIGSERIAL,
//	    uuid           VARCHAR(36) NOT NULL,            -- message id
//	    created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
//	    payload        BYTEA,                           -- events wire format batch
//	    metadata       JSON,                            -- {"sextant_wire":"2","sextant_events":"512"}
//	    transaction_id xid8 NOT NULL,                   -- pg_current_xact_id() of the insert
//	    PRIMARY KEY (transaction_id, "offset"))
//	"watermill_offsets_T" (
//	    consumer_group VARCHAR(255) PRIMARY KEY,
//	    offset_acked BIGINT,
//	    last_processed_transaction_id xid8 NOT NULL)
//
// A service may publish by inserting rows itself:
// INSERT INTO "watermill_T" (uuid, payload, metadata, transaction_id)
// VALUES ($1, $2, $3, pg_current_xact_id()). The transaction_id must be
// pg_current_xact_id(): subscribers read in its order.
//
// Creation is idempotent and safe when several processes start at once: it
// runs in one transaction that first takes watermill-sql's schema advisory
// lock (pg_advisory_xact_lock), because concurrent CREATE TABLE IF NOT EXISTS
// can fail with a unique violation. A table that exists with a payload column
// other than BYTEA (watermill-sql's default is JSON) is an error.
//
// The context bounds connecting and creating the tables only. Errors never
// contain the URL's password. logger may be nil. opts instrument the pool.
func NewPostgres(ctx context.Context, cfg Config, logger watermill.LoggerAdapter, opts ...PostgresOption) (*Postgres, error) {
	var o postgresOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.infra == nil {
		o.infra = func(ctx context.Context) context.Context { return ctx }
	}
	raw := cfg.Postgres.ResolvedURL()
	check := cfg
	check.Driver = DriverPostgres
	if err := check.Validate(); err != nil {
		return nil, scrub("bus", err, raw)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	pcfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, scrub("bus: postgres: parse url", err, raw)
	}
	pcfg.MaxConns = int32(cfg.Postgres.MaxConns)
	if o.tracer != nil {
		pcfg.ConnConfig.Tracer = o.tracer
	}
	ctx = o.infra(ctx)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, scrub("bus: postgres: "+RedactURL(raw), err, raw)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, scrub("bus: postgres: connect to "+RedactURL(raw), err, raw)
	}

	p := &Postgres{
		cfg:  cfg,
		pool: pool,
		db:   wsql.BeginnerFromPgx(pool),
		schema: wsql.DefaultPostgreSQLSchema{
			GeneratePayloadType: func(string) string { return "BYTEA" },
			SubscribeBatchSize:  cfg.Postgres.SubscribeBatchSize,
		},
		logger: logger,
		infra:  o.infra,
	}
	if err := p.createTables(ctx); err != nil {
		pool.Close()
		return nil, scrub("bus: postgres: create tables", err, raw)
	}
	p.pub, err = wsql.NewPublisher(p.db, wsql.PublisherConfig{SchemaAdapter: p.schema}, logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("bus: postgres: %w", err)
	}
	p.subCfg = wsql.SubscriberConfig{
		ConsumerGroup:  cfg.Postgres.ConsumerGroup,
		PollInterval:   cfg.Postgres.PollInterval,
		SchemaAdapter:  p.schema,
		OffsetsAdapter: p.offsets,
	}
	p.abortCtx, p.abort = context.WithCancel(o.infra(context.Background()))
	return p, nil
}

// topics returns every partition topic, then the poison topic.
func (p *Postgres) topics() []string {
	n := max(p.cfg.Partitions, 1)
	ts := make([]string, 0, n+1)
	for i := range n {
		ts = append(ts, p.cfg.PartitionTopic(i))
	}
	return append(ts, p.cfg.PoisonTopic())
}

func (p *Postgres) createTables(ctx context.Context) error {
	// Without InitializeSchemaWithoutTransaction the adapter prepends its
	// advisory lock to every topic's queries; it is taken once, here.
	schema := p.schema
	schema.InitializeSchemaWithoutTransaction = true
	queries := []wsql.Query{{Query: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(wsql.DefaultSchemaInitializationLock("watermill")) + ")"}}
	var tables []string
	for _, topic := range p.topics() {
		for _, name := range []string{schema.MessagesTable(topic), p.offsets.MessagesOffsetsTable(topic)} {
			if n := len(strings.Trim(name, `"`)); n > maxIdentifier {
				return fmt.Errorf("topic %q: table name %s is %d bytes, PostgreSQL allows %d: shorten the topic", topic, name, n, maxIdentifier)
			}
		}
		tables = append(tables, schema.MessagesTable(topic))
		q, err := schema.SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams{Topic: topic})
		if err != nil {
			return err
		}
		queries = append(queries, q...)
		q, err = p.offsets.SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams{Topic: topic})
		if err != nil {
			return err
		}
		queries = append(queries, q...)
	}
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for _, q := range queries {
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `
			SELECT t, format_type(a.atttypid, a.atttypmod)
			FROM unnest($1::text[]) AS t
			JOIN pg_attribute a ON a.attrelid = t::regclass AND a.attname = 'payload'`, tables)
		if err != nil {
			return err
		}
		var bad []error
		for rows.Next() {
			var table, typ string
			if err := rows.Scan(&table, &typ); err != nil {
				return err
			}
			if typ != "bytea" {
				bad = append(bad, fmt.Errorf("table %s: payload column is %s, want bytea (drop the table, or use another topic)", table, typ))
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.Join(bad...)
	})
}

// Pool returns the bus's pgx pool, for instrumentation (pool statistics). It
// is closed by Close.
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Publisher returns a publisher that inserts messages into the topic's table,
// one INSERT (one transaction) per Publish call, in the order of the
// messages. Publish is safe for concurrent use, blocks until the row is
// committed, and does not retry; the context of the first message bounds it.
// The tables must exist: publish only to the topics NewPostgres created.
//
// Each call returns a new handle over the bus's one watermill-sql publisher.
// Closing a handle (which watermill's Router does with its handlers'
// publishers) ends only that handle; Close of the bus ends them all. After
// either, Publish returns watermill-sql's ErrPublisherClosed.
func (p *Postgres) Publisher() message.Publisher { return &pgPublisher{bus: p} }

type pgPublisher struct {
	bus    *Postgres
	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*pgPublisher)(nil)

func (h *pgPublisher) Publish(topic string, msgs ...*message.Message) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return wsql.ErrPublisherClosed
	}
	p := h.bus
	p.pubMu.RLock()
	defer p.pubMu.RUnlock()
	if p.pubClosed {
		return wsql.ErrPublisherClosed
	}
	// watermill-sql inserts under the first message's context.
	if len(msgs) > 0 && infrastructureOnly(msgs) {
		orig := msgs[0].Context()
		msgs[0].SetContext(p.infra(orig))
		defer msgs[0].SetContext(orig)
	}
	return p.pub.Publish(topic, msgs...)
}

// infrastructureOnly reports whether every message holds only
// infrastructure events.
func infrastructureOnly(msgs []*message.Message) bool {
	for _, m := range msgs {
		if m.Metadata.Get(MetadataInfrastructure) != "true" {
			return false
		}
	}
	return true
}

func (h *pgPublisher) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	return nil
}

// Subscriber returns a subscriber for cfg.Postgres.ConsumerGroup. Subscribe
// it once per partition topic (cfg.PartitionTopic(i)): each Subscribe reads
// that topic in order, as described on Postgres, and is safe to call
// concurrently. The context given to Subscribe ends the subscription
// gracefully; so do Close of the subscriber and Close of the bus. Each call
// returns a new subscriber, so that watermill's Router closing its
// handlers' subscriber does not end subscriptions made elsewhere. After
// Close, Subscribe returns watermill-sql's ErrSubscriberClosed.
func (p *Postgres) Subscriber() message.Subscriber { return &pgSubscriber{bus: p} }

type pgSubscriber struct {
	bus    *Postgres
	mu     sync.Mutex
	closed bool
	subs   []*subscription
}

var _ message.Subscriber = (*pgSubscriber)(nil)

func (s *pgSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, wsql.ErrSubscriberClosed
	}
	sub, err := s.bus.subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	s.subs = append(pruneEnded(s.subs), sub)
	return sub.out, nil
}

// Close ends the subscriptions made through s, gracefully, and waits for
// them. It is safe to call more than once.
func (s *pgSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	for _, sub := range subs {
		sub.end()
	}
	for _, sub := range subs {
		<-sub.done
	}
	return nil
}

// subscription is one Subscribe: a watermill-sql subscriber of its own (so
// that it can be stopped on its own, gracefully) and the goroutine that
// forwards its messages, tracking the one the handler holds.
type subscription struct {
	bus      *Postgres
	sub      *wsql.Subscriber
	in       <-chan *message.Message
	out      chan *message.Message
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	cancel   context.CancelFunc // the watermill-sql context
	unwatch  func() bool        // the caller's context
}

func (p *Postgres) subscribe(ctx context.Context, topic string) (*subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, wsql.ErrSubscriberClosed
	}
	sub, err := wsql.NewSubscriber(asyncAcks{p.db}, p.subCfg, p.logger)
	if err != nil {
		return nil, fmt.Errorf("bus: postgres: %w", err)
	}
	// watermill-sql's context is the bus's, not the caller's: cancelling it
	// would roll back the acks of the batch in hand. The caller's context
	// bounds only Subscribe's own query (which inserts the group's offsets
	// row); if it ends then, the subscription ends at once.
	wctx, cancel := context.WithCancel(p.abortCtx)
	stopEarly := context.AfterFunc(ctx, cancel)
	in, err := sub.Subscribe(wctx, topic)
	stopEarly()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bus: postgres: subscribe %q: %w", topic, err)
	}
	s := &subscription{
		bus: p, sub: sub, in: in, cancel: cancel,
		out:  make(chan *message.Message),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed { // Shutdown began during Subscribe
		cancel()
		_ = sub.Close()
		return nil, wsql.ErrSubscriberClosed
	}
	s.unwatch = context.AfterFunc(ctx, s.end)
	p.subs = append(pruneEnded(p.subs), s)
	go s.run()
	return s, nil
}

// pruneEnded drops the subscriptions that have ended.
func pruneEnded(subs []*subscription) []*subscription {
	return slices.DeleteFunc(subs, func(s *subscription) bool {
		select {
		case <-s.done:
			return true
		default:
			return false
		}
	})
}

// end asks the subscription to stop; done is closed when it has.
func (s *subscription) end() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *subscription) run() {
	defer close(s.done)
	defer close(s.out)
	defer s.cancel()
	defer s.unwatch()
	var held *message.Message // the last message handed out
	var heldCtx context.Context
	for {
		select {
		case msg, ok := <-s.in:
			if !ok { // watermill-sql stopped: aborted
				return
			}
			// watermill-sql cancels this context once it is done with the
			// message: acked, given up, or its subscriber closing.
			mctx := msg.Context()
			select {
			case s.out <- msg:
				held, heldCtx = msg, mctx
			case <-s.stop:
				s.finish(nil, nil)
				return
			}
		case <-s.stop:
			s.finish(held, heldCtx)
			return
		}
	}
}

// finish waits until watermill-sql is done with the held message (so that an
// ack already given is recorded, not raced by closing), then closes the
// watermill-sql subscriber, which commits the acked offsets, and waits for
// its channel to close.
func (s *subscription) finish(held *message.Message, heldCtx context.Context) {
	if held != nil {
		select {
		case <-heldCtx.Done():
		case <-held.Nacked():
		case <-s.bus.abortCtx.Done():
		}
	}
	_ = s.sub.Close() // never fails
	for range s.in {
	}
}

// PartitionStats is the backlog of one partition topic for the bus's
// consumer group.
type PartitionStats struct {
	// Topic is the partition's topic.
	Topic string
	// Depth is how many messages (batches of events) the group has not
	// acked yet.
	Depth int64
	// Oldest is when the oldest of those was inserted; zero when Depth is 0.
	Oldest time.Time
}

// Stats is a snapshot of the bus's backlog.
type Stats struct {
	// Partitions holds one entry per partition, in partition order.
	Partitions []PartitionStats
	// Depth is the sum of the partitions' depths.
	Depth int64
	// Oldest is the earliest of the partitions' Oldest; zero when Depth is 0.
	Oldest time.Time
	// Poison is how many messages the poison topic holds.
	Poison int64
}

// Stats reads the backlog of the bus's consumer group with one statement (one
// snapshot). It is safe for concurrent use; the context bounds the query.
//
// For each partition topic T it runs
//
//	SELECT count(*), min(created_at AT TIME ZONE current_setting('TimeZone'))
//	FROM "watermill_T" m
//	WHERE (m.transaction_id, m."offset") > (
//	    COALESCE((SELECT last_processed_transaction_id FROM "watermill_offsets_T" WHERE consumer_group = $1), '0'),
//	    COALESCE((SELECT offset_acked FROM "watermill_offsets_T" WHERE consumer_group = $1), 0))
//
// that is, the rows after the group's acked position, in the order
// subscribers read them (all rows when the group has no offsets row yet).
// Rows of a batch a subscriber holds count until its transaction commits.
// The row comparison is served by the (transaction_id, offset) primary key,
// but counting is linear in the depth. created_at is a TIMESTAMP in the
// inserting session's time zone; it is read in this session's, which is the
// same unless publishers set another. Poison is count(*) of the poison
// topic's table.
func (p *Postgres) Stats(ctx context.Context) (Stats, error) {
	topics := p.topics()
	parts := topics[:len(topics)-1]
	var q strings.Builder
	for i, topic := range parts {
		if i > 0 {
			q.WriteString("\nUNION ALL\n")
		}
		msgs, offs := p.schema.MessagesTable(topic), p.offsets.MessagesOffsetsTable(topic)
		fmt.Fprintf(&q, `SELECT %d, count(*), min(m.created_at AT TIME ZONE current_setting('TimeZone'))
FROM %s m
WHERE (m.transaction_id, m."offset") > (
	COALESCE((SELECT last_processed_transaction_id FROM %s WHERE consumer_group = $1), '0'::xid8),
	COALESCE((SELECT offset_acked FROM %s WHERE consumer_group = $1), 0))`, i, msgs, offs, offs)
	}
	fmt.Fprintf(&q, "\nUNION ALL\nSELECT -1, count(*), NULL::timestamptz FROM %s", p.schema.MessagesTable(topics[len(topics)-1]))

	st := Stats{Partitions: make([]PartitionStats, len(parts))}
	ctx = p.infra(ctx)
	rows, err := p.pool.Query(ctx, q.String(), p.cfg.Postgres.ConsumerGroup)
	if err != nil {
		return Stats{}, fmt.Errorf("bus: postgres stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i      int
			depth  int64
			oldest *time.Time
		)
		if err := rows.Scan(&i, &depth, &oldest); err != nil {
			return Stats{}, fmt.Errorf("bus: postgres stats: %w", err)
		}
		if i < 0 {
			st.Poison = depth
			continue
		}
		ps := PartitionStats{Topic: parts[i], Depth: depth}
		if oldest != nil {
			ps.Oldest = *oldest
			if st.Oldest.IsZero() || ps.Oldest.Before(st.Oldest) {
				st.Oldest = ps.Oldest
			}
		}
		st.Partitions[i] = ps
		st.Depth += depth
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("bus: postgres stats: %w", err)
	}
	return st, nil
}

// Close is Shutdown bounded by DefaultCloseTimeout.
func (p *Postgres) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown stops the bus: it refuses new publishes and subscriptions, waits
// for running publishes, ends every subscription gracefully (the message a
// handler holds may still be acked; acked offsets are committed), and closes
// the pool. When ctx ends first, it rolls back the subscriptions' open
// transactions, whose messages are then redelivered to another subscriber of
// the group, and returns ctx's error. It is safe to call more than once;
// later calls return nil.
func (p *Postgres) Shutdown(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		subs := p.subs
		p.mu.Unlock()

		p.pubMu.Lock()
		p.pubClosed = true
		_ = p.pub.Close() // never fails
		p.pubMu.Unlock()

		for _, s := range subs {
			s.end()
		}
		var errs []error
		for _, s := range subs {
			select {
			case <-s.done:
				continue
			case <-ctx.Done():
			}
			errs = append(errs, fmt.Errorf("bus: postgres: shutdown: %w; open batches rolled back", ctx.Err()))
			break
		}
		p.abort()
		for _, s := range subs {
			<-s.done
		}
		p.pool.Close()
		err = errors.Join(errs...)
	})
	return err
}

// scrub turns err into an error whose message holds no password of raw. The
// pgx error is not kept in the chain, because its fields carry the
// connection string; a context error is.
func scrub(prefix string, err error, raw string) error {
	msg := prefix + ": " + redactErr(err, raw)
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return &scrubbedError{msg: msg, cause: ctxErr}
		}
	}
	return &scrubbedError{msg: msg}
}

type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.cause }

// asyncAcks begins the subscribers' transactions with synchronous_commit
// off: committing acked offsets does not wait for the WAL flush. A server
// crash may lose the last few hundred milliseconds of acks, whose messages
// are then delivered again, which at-least-once allows; the messages
// themselves are inserted with the server's synchronous_commit. It halves
// the fsyncs of a bus whose subscribers keep up (one offset commit per
// message), and raised BenchmarkPostgresEndToEnd from 160–230k to ~300k
// events/s here.
type asyncAcks struct{ wsql.Beginner }

func (a asyncAcks) BeginTx(ctx context.Context, opts *sql.TxOptions) (wsql.Tx, error) {
	tx, err := a.Beginner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO OFF"); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}

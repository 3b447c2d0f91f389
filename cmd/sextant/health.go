package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/internal/health"
)

// Health check timeouts. The bus's check may query PostgreSQL twice: the
// backlog (bounded by backlogTimeout) and, when that fails, a ping with
// what is left.
const (
	busCheckTimeout = 3 * time.Second
	backlogTimeout  = 2 * time.Second
	// backlogMaxAge lets the bus and message_queue checks of one run share
	// one backlog query; below the report cache's TTL, so that every run
	// reads afresh.
	backlogMaxAge = 500 * time.Millisecond
)

// newHealth registers every component's check. The router and the bus are
// critical (they decide readiness) and, for clients of the body that
// predates checks, also shown at the top level; the others only degrade.
func (s *service) newHealth() (*health.Registry, error) {
	reg := health.New(health.WithServing(s.ready.Load))
	s.backlog = &backlogCache{read: s.readBacklog, now: time.Now, lock: make(chan struct{}, 1)}
	type entry struct {
		name  string
		check health.CheckFunc
		opts  []health.CheckOption
	}
	checks := []entry{
		{"router", s.routerHealth, []health.CheckOption{health.Critical(), health.TopLevel()}},
		{"bus", s.busHealth, []health.CheckOption{health.Critical(), health.TopLevel(), health.Timeout(busCheckTimeout)}},
		{"message_queue", s.queueHealth, []health.CheckOption{health.Timeout(busCheckTimeout)}},
		{"circuit_breakers", noContext(s.breakerHealth), nil},
		{"subscribers", noContext(s.subscriberHealth), nil},
		{"traces", noContext(func() health.Result { return s.traceHealth(s.router.Stats().Spans) }), nil},
		{"exports", noContext(s.export.health), nil},
		{"export_targets", noContext(s.targetHealth), nil},
		{"plugins", noContext(s.pluginHealth), nil},
	}
	if s.pg != nil {
		checks = append(checks, entry{"database", health.CheckFunc(s.databaseHealth), nil})
	}
	if s.intake != nil {
		checks = append(checks, entry{"events_intake", noContext(s.intakeHealth), nil})
	}
	var errs []error
	for _, c := range checks {
		errs = append(errs, reg.Register(c.name, c.check, c.opts...))
	}
	return reg, errors.Join(errs...)
}

// noContext adapts a check that does no I/O and so needs no context.
func noContext(f func() health.Result) health.CheckFunc {
	return func(context.Context) health.Result { return f() }
}

// routerHealth is the router check: unhealthy unless the router consumes
// the bus (between Start and Shutdown), with its counters.
func (s *service) routerHealth(context.Context) health.Result {
	st := s.router.Stats()
	res := health.Result{Status: health.StatusHealthy, Details: map[string]any{
		"consuming":       s.ready.Load(),
		"events_received": st.Received, "events_routed": st.Routed, "events_unmatched": st.Unmatched,
		"decode_errors": st.DecodeErrors, "events_undecoded": st.Undecoded, "events_invalid": st.Invalid,
		"messages_poisoned": st.Poisoned, "series_overflowed": st.Overflowed,
	}}
	if !s.ready.Load() {
		res.Status, res.Error = health.StatusUnhealthy, "not consuming: starting or shutting down"
	}
	return res
}

// busHealth is the bus check: its driver and partitions, the publisher's
// counters and, on PostgreSQL, the consumer group's backlog. Unhealthy
// when the database cannot be reached; degraded when only the backlog
// query failed (a slow count over a large backlog must not take the
// instance out of service).
func (s *service) busHealth(ctx context.Context) health.Result {
	st := s.router.Stats()
	d := map[string]any{"driver": string(s.cfg.Bus.Driver), "partitions": s.cfg.Bus.Partitions}
	if s.pub != nil {
		d["publisher"] = map[string]any{
			"events_published": s.pub.Published(), "events_failed": s.pub.Failed(), "events_rejected": s.pub.Rejected(),
			"batches_queued": s.pub.Queued(), "infrastructure_events_dropped": s.pub.MessagingDropped(),
			"router_messaging_events_dropped": st.MessagingDropped,
		}
	}
	res := health.Result{Status: health.StatusHealthy, Details: d}
	if s.pg == nil {
		return res
	}
	bs, err := s.backlog.get(ctx, backlogMaxAge)
	if err != nil {
		// The error may name hosts and users: it goes to the log, not to
		// the unauthenticated health endpoints.
		if perr := s.pg.Pool().Ping(ctx); perr != nil {
			if !s.dbDown.Swap(true) { // once per outage, not once per probe
				s.logger.Warn("bus database unreachable", "error", perr, "backlog_error", err)
			}
			res.Status, res.Error = health.StatusUnhealthy, "database unreachable"
			return res
		}
		if s.dbDown.Swap(false) {
			s.logger.Info("bus database reachable again")
		}
		s.logger.Warn("bus backlog query failed", "error", err)
		res.Status, res.Error = health.StatusDegraded, "backlog query failed"
		return res
	}
	if s.dbDown.Swap(false) {
		s.logger.Info("bus database reachable again")
	}
	d["depth"], d["lag_seconds"], d["poison"] = bs.Depth, ageSeconds(bs.Oldest), bs.Poison
	parts := make([]map[string]any, 0, len(bs.Partitions))
	for _, p := range bs.Partitions {
		parts = append(parts, map[string]any{"topic": p.Topic, "depth": p.Depth, "lag_seconds": ageSeconds(p.Oldest)})
	}
	d["partition_backlog"] = parts
	return res
}

// queueHealth is seed 003's message_queue check: how many queues (bus
// partitions) the router consumes and what waits in them: on PostgreSQL
// the group's backlog, on the in-memory bus the batches waiting in the
// publisher. Degraded when the backlog cannot be read; the bus check says
// whether the database is there.
func (s *service) queueHealth(ctx context.Context) health.Result {
	if s.pg == nil {
		depth := 0
		if s.pub != nil {
			depth = s.pub.Queued()
		}
		return queueResult(s.cfg.Bus.Partitions, bus.Stats{Depth: int64(depth)}, nil, false)
	}
	bs, err := s.backlog.get(ctx, backlogMaxAge)
	return queueResult(s.cfg.Bus.Partitions, bs, err, true)
}

// queueResult is the message_queue check's result for a backlog read.
func queueResult(partitions int, bs bus.Stats, err error, durable bool) health.Result {
	d := map[string]any{"queues_monitored": partitions}
	if err != nil {
		return health.Result{Status: health.StatusDegraded, Error: "backlog query failed", Details: d}
	}
	d["depth"] = bs.Depth
	if durable {
		d["lag_seconds"], d["poison"] = ageSeconds(bs.Oldest), bs.Poison
	}
	return health.Result{Status: health.StatusHealthy, Details: d}
}

// databaseHealth is seed 003's database check: the bus's connection
// pool, and whether the database answers at all (the pool's counters
// alone look healthy during an outage).
func (s *service) databaseHealth(ctx context.Context) health.Result {
	st := s.pg.Pool().Stat()
	res := poolResult(st.AcquiredConns(), st.IdleConns(), st.MaxConns(), st.TotalConns())
	if err := s.pg.Pool().Ping(ctx); err != nil {
		res.Status, res.Error = health.StatusUnhealthy, "database unreachable"
	}
	return res
}

// poolResult is the database check's result for a pool's counts: degraded
// while every connection is in use (queries wait for one).
func poolResult(active, idle, maxConns, total int32) health.Result {
	res := health.Result{Status: health.StatusHealthy, Details: map[string]any{
		"connections_active": active, "connections_idle": idle, "connections_max": maxConns, "connections_total": total,
	}}
	if maxConns > 0 && active >= maxConns {
		res.Status, res.Error = health.StatusDegraded, fmt.Sprintf("pool exhausted: all %d connections in use", maxConns)
	}
	return res
}

// intakeHealth is the events_intake check: POST /events's refusals and the
// own events it could not publish.
func (s *service) intakeHealth() health.Result {
	st := s.intake.Stats()
	return health.Result{Status: health.StatusHealthy, Details: map[string]any{"rejected": st.Rejected, "own_events_lost": st.EventsLost}}
}

// readBacklog reads the postgres bus's backlog, bounded by backlogTimeout.
func (s *service) readBacklog(ctx context.Context) (bus.Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	return s.pg.Stats(ctx)
}

// backlogCache shares one backlog read between the checks that run
// concurrently in one health report. It is safe for concurrent use.
type backlogCache struct {
	read func(ctx context.Context) (bus.Stats, error)
	now  func() time.Time
	lock chan struct{} // held while reading; a channel so that waiting honours ctx

	at  time.Time // when st and err were read; zero before the first read
	st  bus.Stats
	err error
}

// get returns the last read when younger than maxAge, else reads again.
// Concurrent callers wait for one read; ctx bounds the wait and the read.
func (b *backlogCache) get(ctx context.Context, maxAge time.Duration) (bus.Stats, error) {
	select {
	case b.lock <- struct{}{}:
	case <-ctx.Done():
		return bus.Stats{}, ctx.Err()
	}
	defer func() { <-b.lock }()
	if !b.at.IsZero() && b.now().Sub(b.at) < maxAge {
		return b.st, b.err
	}
	b.st, b.err = b.read(ctx)
	b.at = b.now()
	return b.st, b.err
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/exporters"
	csvexp "github.com/sextant-telemetry/sextant/exporters/csv"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
	"github.com/sextant-telemetry/sextant/exporters/targets"
	"github.com/sextant-telemetry/sextant/exporters/traces"
	"github.com/sextant-telemetry/sextant/internal/health"
	"github.com/sextant-telemetry/sextant/internal/logging"
	"github.com/sextant-telemetry/sextant/lifecycle"
	"github.com/sextant-telemetry/sextant/plugins/host"
	"github.com/sextant-telemetry/sextant/router"
)

// shutdownTimeout bounds an orderly shutdown after SIGINT/SIGTERM.
const shutdownTimeout = 15 * time.Second

// service is the router service: exporters, MeterProvider, router, bus and
// HTTP listener, started downstream first and stopped upstream first.
type service struct {
	cfg    *config.Config
	logger *slog.Logger

	components []exporters.Component
	metrics    http.Handler // the Prometheus exposition
	snapshot   *sdkmetric.ManualReader
	mp         *sdkmetric.MeterProvider
	spans      *traces.Pipeline   // exports the router's spans; never nil once built
	busPub     message.Publisher  // where the bus publisher writes batches
	busSub     message.Subscriber // where the router reads them
	closeBus   func() error
	pg         *bus.Postgres // the postgres driver, for its backlog statistics
	dbTracer   *lifecycle.DBTracer
	poolStats  *lifecycle.PoolStatsReader
	router     *router.Router
	pub        *bus.Publisher

	intake     *eventsAPI // POST /events
	exports    *exporters.Registry
	export     *exportAPI      // GET /export
	targets    *targets.Runner // exporters.targets; nil when none
	plugins    *host.Host      // exporter plugins; nil when none
	early      *heldPublisher  // the registry's events, held until the router consumes
	auth       *bearerAuth     // guards /metrics and /export; nil when off
	breakersMu sync.Mutex
	breakers   []*lifecycle.CircuitBreaker // reported in /health/detailed
	health     *health.Registry            // the /health* checks; made by Start
	backlog    *backlogCache               // the bus's backlog, shared by its checks

	statsStop chan struct{} // ends publishQueueStats
	statsDone chan struct{}

	ln      net.Listener
	srv     *http.Server
	srvDone chan error
	ready   atomic.Bool
	dbDown  atomic.Bool // the bus's database was unreachable at the last health check

	// For the start-up record: where the configuration came from and the
	// effective log settings.
	configPath, logLevel, logFormat string
	stopped                         atomic.Bool
}

// logOptions resolves the log settings: the flags over the logging
// section over the command's default level. Sensitive values are masked
// with the same list as span attributes (router.traces.sensitive_keys). An invalid flag is named;
// the section was validated when the configuration loaded.
func logOptions(cfg *config.Config, f serviceFlags) (logging.Options, error) {
	o := logging.Options{Level: cfg.Logging.Level, Format: cfg.Logging.Format, SensitiveKeys: cfg.Router.Traces.SensitiveKeys}
	if o.Level == "" {
		o.Level = f.defaultLevel
	}
	if *f.logLevel != "" {
		o.Level = *f.logLevel
		if _, err := logging.New(io.Discard, logging.Options{Level: o.Level}); err != nil {
			return o, fmt.Errorf("--log-level: %w", err)
		}
	}
	if *f.logFormat != "" {
		o.Format = *f.logFormat
		if _, err := logging.New(io.Discard, logging.Options{Format: o.Format}); err != nil {
			return o, fmt.Errorf("--log-format: %w", err)
		}
	}
	if o.Format == "" {
		o.Format = logging.FormatAuto
	}
	return o, nil
}

// newService builds every part from cfg without starting anything.
func newService(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*service, error) {
	s := &service{cfg: cfg, logger: logger, snapshot: sdkmetric.NewManualReader(), statsStop: make(chan struct{})}
	res, err := serviceResource(ctx)
	if err != nil {
		return nil, err
	}
	if s.auth, err = loadBearerAuth(cfg.Server.Auth, os.ReadFile, os.Getenv, logger.With("component", "auth")); err != nil {
		return nil, err
	}
	opts := []sdkmetric.Option{
		sdkmetric.WithReader(s.snapshot),
		// The router enforces per-metric series limits itself and counts
		// what overflows; the SDK's own limit (2000) would collapse series
		// silently before ours.
		sdkmetric.WithCardinalityLimit(0),
		sdkmetric.WithResource(res),
	}
	byType := map[string]exporters.Factory{}
	for _, f := range factories() {
		byType[f.Type()] = f
	}
	for typ, ecfg := range cfg.Exporters {
		if typ == targets.Type { // built below, once the registry and the router exist
			continue
		}
		f, ok := byType[typ]
		if !ok {
			return nil, fmt.Errorf("exporters.%s: no such exporter", typ)
		}
		c, err := f.Create(ctx, ecfg, exporters.Settings{Logger: logger.With("exporter", typ)})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("exporters.%s: %w", typ, err), s.shutdownComponents(ctx))
		}
		s.components = append(s.components, c)
		if p, ok := c.(exporters.Puller); ok {
			opts = append(opts, sdkmetric.WithReader(p.Reader()))
		}
		if h, ok := c.(http.Handler); ok && typ == "prometheus" {
			s.metrics = h
		}
	}
	s.mp = sdkmetric.NewMeterProvider(opts...)
	spans, err := traces.New(ctx, cfg.Traces, traces.Settings{Logger: logger.With("component", "traces"), MeterProvider: s.mp})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("traces: %w", err), s.Shutdown(ctx))
	}
	s.spans = spans
	applySamplerEnv(&cfg.Router.Traces, os.Getenv, logger)
	if err := s.openBus(ctx); err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	// Created now, used once the router has subscribed (Start): the router
	// hands it its messaging events.
	pub, err := bus.NewPublisher(s.busPub, cfg.Bus, bus.WithMessagingEvents())
	if err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	s.pub = pub
	// Exports on demand (GET /export) read the ManualReader's snapshot and
	// write it with the built-in encoders; the registry publishes each
	// export's lifecycle events.
	// Plugins register (plugin.registered) before the router subscribes;
	// the in-memory bus would deliver those events to no one, so they wait
	// until Start has the router consuming.
	s.early = &heldPublisher{pub: pub}
	s.exports = exporters.NewRegistry(exporters.RegistrySettings{Events: s.early, Logger: logger.With("component", "exports")})
	for _, e := range []exporters.SnapshotExporter{prometheus.NewTextExporter(), jsonexp.New(), csvexp.New()} {
		if err := s.exports.RegisterBuiltin(e); err != nil {
			return nil, errors.Join(err, s.Shutdown(ctx))
		}
	}
	// Plugins register their formats in the same registry, so that
	// /export, `sextant export` and the targets reach them like built-ins.
	if err := s.newPluginHost(ctx); err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	readOpts, exportOpts := exportDefaults(cfg, res)
	read := newSnapshotFunc(s.snapshot, readOpts, logger)
	s.export, err = newExportAPI(exportOptions{Read: read, Registry: s.exports,
		Options: exportOpts, Closing: s.stopped.Load, Logger: logger.With("component", "export_http")})
	if err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	if s.dbTracer != nil {
		s.dbTracer.SetPublisher(pub)
		s.poolStats = lifecycle.NewPoolStatsReader("bus", s.pg.Pool(), pub, lifecycle.PoolStatsSettings{Logger: s.logger.With("component", "pool_stats")})
	}
	set := router.Settings{
		Events:        pub,
		MeterProvider: s.mp,
		Logger:        logger.With("component", "router"),
		Source:        router.Source{Subscriber: s.busSub, Topics: partitionTopics(cfg.Bus)},
		CloseTimeout:  shutdownTimeout,
		Resource:      res,
	}
	if spans.Enabled() {
		set.SpanProcessor = spans
	}
	if s.pg != nil { // only a durable bus has somewhere to keep what cannot be routed
		set.Poison, set.PoisonTopic = s.pg.Publisher(), cfg.Bus.PoisonTopic()
	}
	r, err := router.New(cfg.Router, set)
	if err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	s.router = r
	if err := s.subscribeCacheSync(); err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	if s.targets, err = s.newTargets(read, exportOpts, readOpts.Instance); err != nil {
		return nil, errors.Join(err, s.Shutdown(ctx))
	}
	return s, nil
}

// openBus connects the configured bus.
func (s *service) openBus(ctx context.Context) error {
	wlog := watermill.NewSlogLoggerWithLevelMapping(s.logger.With("component", "bus"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	switch s.cfg.Bus.Driver {
	case bus.DriverPostgres:
		// The bus's own pool is traced; its own machinery (polling, acks,
		// batches of infrastructure events) is not, so that it cannot feed
		// on itself. The tracer's publisher is bound once it exists.
		s.dbTracer = lifecycle.NewDBTracer("bus", nil, lifecycle.DBTracerSettings{Logger: s.logger.With("component", "db_tracer")})
		pg, err := bus.NewPostgres(ctx, s.cfg.Bus, wlog, bus.WithQueryTracer(s.dbTracer), bus.WithInfrastructureContext(lifecycle.WithoutTracing))
		if err != nil {
			return fmt.Errorf("bus.postgres: %w", err)
		}
		s.pg, s.busPub, s.busSub, s.closeBus = pg, pg.Publisher(), pg.Subscriber(), pg.Close
	default:
		mem := bus.NewMemory(wlog)
		s.busPub, s.busSub, s.closeBus = mem, mem, mem.Close
	}
	return nil
}

// Start listens, starts the router (it subscribes before anything can
// publish) and the bus publisher, then serves HTTP.
func (s *service) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	s.ln = ln
	if err := s.router.Start(ctx); err != nil {
		return err
	}
	if _, dropped := s.early.release(ctx); dropped > 0 {
		s.logger.Warn("events of the start-up were too many to hold for the router; dropped", "dropped", dropped)
	}
	if s.dbTracer != nil {
		if err := s.dbTracer.Start(ctx); err != nil {
			return err
		}
		if err := s.poolStats.Start(ctx); err != nil {
			return err
		}
	}
	if s.targets != nil {
		s.targets.Start()
	}
	s.statsDone = make(chan struct{})
	go s.publishQueueStats(s.statsDone)
	// Made once the router consumes, so that its breaker's start-up state
	// reaches the metrics.
	api, err := newEventsAPI(s.pub, eventsOptions{Logger: s.logger.With("component", "events_http"), Events: s.pub})
	if err != nil {
		return err
	}
	s.intake = api
	s.AddBreakers(api.Breaker())
	if s.health, err = s.newHealth(); err != nil {
		return err
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.srvDone = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.srvDone <- err
	}()
	s.ready.Store(true)
	s.logger.Info("sextant started", "version", Version, "config", s.configName(), "listen", s.Addr(),
		"routes", len(s.cfg.Router.Routes), "series_limit", s.cfg.Router.SeriesLimit,
		"bus", s.cfg.Bus.Driver, "topic", s.cfg.Bus.Topic, "partitions", s.cfg.Bus.Partitions, "consumer_group", s.consumerGroup(),
		"opentelemetry_enabled", s.spans.Enabled(), "traces", s.spans.Description(), "exporters", slices.Sorted(maps.Keys(s.cfg.Exporters)),
		"export_formats", s.exports.Formats(), "plugins", s.pluginNames(), "metrics_auth", s.auth != nil,
		"log_level", s.logLevel, "log_format", s.logFormat)
	return nil
}

// configName names the configuration for the start-up record.
func (s *service) configName() string {
	if s.configPath == "" {
		return "<embedded default>"
	}
	return s.configPath
}

// consumerGroup is the PostgreSQL bus's consumer group; none on the
// in-memory bus.
func (s *service) consumerGroup() string {
	if s.pg == nil {
		return ""
	}
	return s.cfg.Bus.Postgres.ConsumerGroup
}

// Addr is the HTTP listener's address.
func (s *service) Addr() string {
	if s.ln == nil {
		return s.cfg.Server.Listen
	}
	return s.ln.Addr().String()
}

// Publisher is the bus publisher lifecycle components publish to.
func (s *service) Publisher() *bus.Publisher { return s.pub }

// Shutdown stops intake (HTTP), drains the bus into the router, stops the
// router (which ends the spans still open and flushes every span to the
// trace pipeline), flushes the metrics, then stops the span exporter and the
// metric exporters: the order seed 002 arrived at, in which nothing is
// lost to an exporter closed too early. It is safe to call more than once;
// each step runs even if an earlier one failed.
func (s *service) Shutdown(ctx context.Context) error {
	if s.stopped.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	s.ready.Store(false)
	var errs []error
	if s.intake != nil {
		// Requests in flight finish; new ones get 503 shutting_down.
		errs = append(errs, s.intake.Shutdown(ctx))
	}
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx), <-s.srvDone)
	} else if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	if s.health != nil {
		// No probe is served any more: checks in progress end now, before
		// what they read goes.
		errs = append(errs, s.health.Shutdown(ctx))
	}
	if s.targets != nil {
		// Before the bus and the metrics go: an export in progress finishes.
		errs = append(errs, s.targets.Shutdown(ctx))
	}
	if s.statsDone != nil {
		close(s.statsStop)
		<-s.statsDone
	}
	if s.poolStats != nil {
		errs = append(errs, s.poolStats.Shutdown(ctx))
	}
	if s.dbTracer != nil {
		errs = append(errs, s.dbTracer.Shutdown(ctx)) // hands its queued events to the publisher
	}
	if s.pub != nil {
		// On the in-memory bus every batch has been routed when Close
		// returns; on PostgreSQL it has been stored, and what this instance
		// did not route waits there for the others or the next start.
		errs = append(errs, s.pub.Close(ctx))
	}
	if s.router != nil {
		errs = append(errs, s.router.Shutdown(ctx))
	}
	if s.closeBus != nil {
		errs = append(errs, s.closeBus())
	}
	if s.mp != nil {
		errs = append(errs, s.mp.Shutdown(ctx))
	}
	if s.spans != nil {
		errs = append(errs, s.spans.Shutdown(ctx))
	}
	errs = append(errs, s.shutdownComponents(ctx))
	if s.plugins != nil {
		// Last: nothing can export through them any more.
		errs = append(errs, s.plugins.Shutdown(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if s.router != nil {
		s.logger.Info("sextant stopped", "events_routed", s.router.Stats().Routed)
	}
	return nil
}

func (s *service) shutdownComponents(ctx context.Context) error {
	var errs []error
	for _, c := range s.components {
		errs = append(errs, c.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.auth.wrap(scrapeEvents(s.metrics, s.pub, s.logger.With("component", "metrics_http"))))
	}
	mux.Handle("GET /export", s.auth.wrap(s.export))
	mux.Handle("GET /plugins", s.auth.wrap(http.HandlerFunc(s.pluginsHTTP)))
	mux.Handle("/events", s.intake)
	// Liveness runs no check; the others share one cached run of them.
	mux.HandleFunc("GET /health", s.health.ServeHealth)
	mux.HandleFunc("GET /health/live", s.health.ServeLive)
	mux.HandleFunc("GET /health/ready", s.health.ServeReady)
	mux.HandleFunc("GET /health/detailed", s.health.ServeDetailed)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "sextant %s\n\n%s", Version, strings.Join([]string{"/metrics", "/export?format=prometheus|openmetrics|json|csv", "/plugins", "POST /events", "/health", "/health/live", "/health/ready", "/health/detailed"}, "\n"))
	})
	return mux
}

// AddBreakers reports circuit breakers (the engine's, the intake's) in
// /health/detailed.
func (s *service) AddBreakers(bs ...*lifecycle.CircuitBreaker) {
	s.breakersMu.Lock()
	defer s.breakersMu.Unlock()
	s.breakers = append(s.breakers, bs...)
}

// breakerHealth is seed 003's circuit_breakers check: degraded while one is
// open or half-open, with each breaker's state and counters.
func (s *service) breakerHealth() health.Result {
	s.breakersMu.Lock()
	bs := slices.Clone(s.breakers)
	s.breakersMu.Unlock()
	open, list := 0, make([]map[string]any, 0, len(bs))
	status := health.StatusHealthy
	for _, b := range bs {
		st := b.Stats()
		switch st.State {
		case lifecycle.BreakerOpen:
			open++
			status = health.StatusDegraded
		case lifecycle.BreakerHalfOpen:
			status = health.StatusDegraded
		}
		list = append(list, map[string]any{
			"component": b.Component(), "state": st.State.String(), "state_code": int(st.State),
			"opens": st.Opens, "rejections": st.Rejections, "failures": st.Failures, "successes": st.Successes,
			"last_change": st.LastChange.UTC(),
		})
	}
	return health.Result{Status: status, Details: map[string]any{"open_breakers": open, "breakers": list}}
}

// subscriberHealth lists the router's subscribers and their counters;
// degraded while one has failed or dropped events in its last minute.
func (s *service) subscriberHealth() health.Result {
	subs := s.router.Subscribers()
	status := health.StatusHealthy
	list := make([]map[string]any, 0, len(subs))
	for _, st := range subs {
		item := map[string]any{
			"name": st.Name, "events": st.Events, "groups": st.Groups,
			"dispatched": st.Dispatched, "succeeded": st.Succeeded, "failed": st.Failed,
			"dropped": st.Dropped, "panics": st.Panics, "queued": st.Queued,
		}
		if st.LastError != "" {
			item["last_error"], item["last_error_at"] = st.LastError, st.LastErrorAt.UTC()
			if time.Since(st.LastErrorAt) < time.Minute {
				status = health.StatusDegraded
			}
		}
		list = append(list, item)
	}
	return health.Result{Status: status, Details: map[string]any{"count": len(subs), "subscribers": list}}
}

func ageSeconds(oldest time.Time) float64 {
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
}

// partitionTopics lists the bus's partition topics, which the router consumes.
func partitionTopics(c bus.Config) []string {
	topics := make([]string, c.Partitions)
	for i := range topics {
		topics[i] = c.PartitionTopic(i)
	}
	return topics
}

// queueStatsInterval is how often the bus's backlog is published as
// queue.stats events (tasker_queue_depth, tasker_queue_age_seconds).
const queueStatsInterval = 10 * time.Second

// publishQueueStats publishes the backlog of every partition now and then
// every queueStatsInterval until statsStop closes. On the postgres bus it
// is the consumer group's backlog; the in-memory bus holds nothing itself,
// so its backlog is the batches waiting in the publisher.
func (s *service) publishQueueStats(done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(queueStatsInterval)
	defer tick.Stop()
	for {
		s.readQueueStats()
		select {
		case <-tick.C:
		case <-s.statsStop:
			return
		}
	}
}

func (s *service) readQueueStats() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { // Shutdown must not wait out the query's timeout
		select {
		case <-s.statsStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	publish := func(queue string, depth int64, age float64) {
		e := events.New(events.QueueStats, events.NewID(), events.String("queue", queue), events.Int("depth", depth), events.Float("age_seconds", age))
		if err := s.pub.Publish(ctx, e); err != nil {
			s.logger.Debug("queue stats not published", "error", err)
		}
	}
	if s.pg == nil {
		publish(s.cfg.Bus.PartitionTopic(0), int64(s.pub.Queued()), 0)
		return
	}
	st, err := s.pg.Stats(ctx)
	if err != nil {
		s.logger.Warn("bus backlog query failed", "error", err)
		return
	}
	for _, p := range st.Partitions {
		publish(p.Topic, p.Depth, ageSeconds(p.Oldest))
	}
}

package traces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Settings carries what the host passes in code rather than YAML.
type Settings struct {
	// Logger receives the pipeline's warnings; nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider receives the self-metrics; nil means none are made.
	MeterProvider metric.MeterProvider
	// Stdout is where exporter stdout writes; nil means os.Stdout.
	Stdout io.Writer
	_      struct{}
}

// DropReason says why a span was dropped: the values of the reason
// attribute of sextant.traces.spans.dropped.
type DropReason string

// The drop reasons.
const (
	// DropReasonQueueFull: the queue held queue_size spans when the span
	// ended.
	DropReasonQueueFull = DropReason("queue_full")
	// DropReasonExportFailed: the span's batch failed to export, after the
	// OTLP exporter's own retries.
	DropReasonExportFailed = DropReason("export_failed")
	// DropReasonShutdown: the span ended after Shutdown began, or was still
	// queued when Shutdown's context ended.
	DropReasonShutdown = DropReason("shutdown")
)

// Drops counts dropped spans by reason.
type Drops struct {
	QueueFull    int64
	ExportFailed int64
	Shutdown     int64
}

// Total is the sum over every reason.
func (d Drops) Total() int64 { return d.QueueFull + d.ExportFailed + d.Shutdown }

// Stats is a snapshot of a pipeline's counters. Every sampled span that
// reached OnEnd is counted exactly once in Exported, Dropped or Queued.
type Stats struct {
	// Exported counts spans the exporter accepted.
	Exported int64
	// Dropped counts spans lost, by reason.
	Dropped Drops
	// Queued counts spans accepted but neither exported nor dropped yet:
	// those in the queue plus the batch being built or sent, so it can
	// exceed queue_size by up to batch_size.
	Queued int64
	// Batches counts export calls; Failures those that returned an error.
	Batches  int64
	Failures int64
	// LastError is the last export error's text, and LastErrorAt when it
	// happened; empty and zero if there has been none.
	LastError   string
	LastErrorAt time.Time
}

// warnInterval is the shortest time between two warnings for one reason.
const warnInterval = 10 * time.Second

// Pipeline is a bounded batching span processor: register it with
// sdktrace.WithSpanProcessor. It queues sampled spans as they end, without
// ever blocking, and one goroutine of its own sends them in batches to the
// exporter chosen by the configuration. Unlike sdktrace's batch processor
// it counts every span it drops, by reason.
//
// Every method is safe for concurrent use. The exporter is only ever
// called from the pipeline's goroutine, so it sees one call at a time.
type Pipeline struct {
	enabled                     bool
	desc                        string
	exporter                    sdktrace.SpanExporter
	logger                      *slog.Logger
	batchSize                   int
	batchTimeout, exportTimeout time.Duration
	now                         func() time.Time

	queue   chan sdktrace.ReadOnlySpan
	flushes chan flushRequest
	stop    chan struct{} // closed by Shutdown
	done    chan struct{} // closed when run returns
	// runCtx is cancelled when Shutdown gives up waiting, to abort the
	// export in flight.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// mu makes "not stopped, so enqueue" atomic in OnEnd against Shutdown,
	// so that no span slips into the queue after the final drain.
	mu          sync.RWMutex
	stopped     bool
	shutdownCtx context.Context
	shutdownErr error // written by run before done is closed

	exported, batches, failures, pending atomic.Int64
	dropped                              [3]atomic.Int64 // by dropIndex

	errMu     sync.Mutex
	lastErr   string
	lastErrAt time.Time

	// Owned by run.
	warnFailed, warnFull warnLimiter
	fullSeen             int64
	lastFailure          error

	metrics *selfMetrics
}

var _ sdktrace.SpanProcessor = (*Pipeline)(nil)

type dropIndex int

const (
	dropQueueFull dropIndex = iota
	dropExportFailed
	dropShutdown
)

var dropReasons = [...]DropReason{dropQueueFull: DropReasonQueueFull, dropExportFailed: DropReasonExportFailed, dropShutdown: DropReasonShutdown}

type flushRequest struct {
	ctx  context.Context
	done chan error // buffered: run never waits for the caller
}

// New builds the pipeline cfg describes and starts its goroutine; the caller
// must call Shutdown. cfg is validated first. For exporter none (or an empty
// exporter with OTEL_TRACES_EXPORTER unset) it returns a disabled pipeline
// that starts nothing and ignores every span. ctx bounds building the OTLP
// exporter, which does not connect: gRPC connects on the first export.
func New(ctx context.Context, cfg Config, set Settings) (*Pipeline, error) {
	return newFromEnv(ctx, cfg, set, os.Getenv)
}

func newFromEnv(ctx context.Context, cfg Config, set Settings, getenv getenvFunc) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("traces: invalid configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	kind, err := resolveExporter(cfg.Exporter, getenv)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	var (
		exp  sdktrace.SpanExporter
		desc = string(kind)
	)
	switch kind {
	case ExporterTypeNone:
		return &Pipeline{desc: desc}, nil
	case ExporterTypeStdout:
		w := set.Stdout
		if w == nil {
			w = os.Stdout
		}
		exp = NewJSONExporter(w)
	case ExporterTypeFile:
		if exp, err = openJSONFile(cfg.File); err != nil {
			return nil, fmt.Errorf("traces: %s: %w", yamlPath("File"), err)
		}
		desc = "file " + cfg.File
	case ExporterTypeOTLP:
		if exp, desc, err = newOTLPExporter(ctx, cfg.OTLP, getenv); err != nil {
			return nil, fmt.Errorf("traces: %w", err)
		}
	}
	p, err := start(exp, desc, cfg, set, time.Now)
	if err != nil {
		return nil, errors.Join(err, exp.Shutdown(ctx))
	}
	return p, nil
}

// NewWithExporter builds an enabled pipeline around exp, taking only the
// queue and batch settings from cfg (Exporter, File and OTLP are ignored),
// and starts its goroutine. Shutdown shuts exp down. It is for exporters
// made in code, such as tracetest.InMemoryExporter in tests.
func NewWithExporter(exp sdktrace.SpanExporter, cfg Config, set Settings) (*Pipeline, error) {
	cfg.Exporter, cfg.File, cfg.OTLP = "", "", OTLPConfig{}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("traces: invalid configuration: %w", err)
	}
	return start(exp, fmt.Sprintf("custom %T", exp), cfg.withDefaults(), set, time.Now)
}

// start makes an enabled pipeline and starts its goroutine. cfg has its
// defaults applied.
func start(exp sdktrace.SpanExporter, desc string, cfg Config, set Settings, now func() time.Time) (*Pipeline, error) {
	logger := set.Logger
	if logger == nil {
		logger = slog.Default()
	}
	p := &Pipeline{
		enabled:       true,
		desc:          desc,
		exporter:      exp,
		logger:        logger,
		batchSize:     cfg.BatchSize,
		batchTimeout:  cfg.BatchTimeout,
		exportTimeout: cfg.ExportTimeout,
		now:           now,
		queue:         make(chan sdktrace.ReadOnlySpan, cfg.QueueSize),
		flushes:       make(chan flushRequest),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	m, err := newSelfMetrics(set.MeterProvider, p)
	if err != nil {
		return nil, fmt.Errorf("traces: self-metrics: %w", err)
	}
	p.metrics = m
	p.runCtx, p.cancelRun = context.WithCancel(context.Background())
	go p.run()
	return p, nil
}

// Enabled reports whether spans go anywhere; false for exporter none.
func (p *Pipeline) Enabled() bool { return p.enabled }

// Description says where spans go, for the start-up log line: "none",
// "stdout", "file /var/log/spans.jsonl", "otlp grpc localhost:4317
// (insecure)", "otlp grpc collector:4317 (tls)" or "otlp http/protobuf
// https://collector:4318/v1/traces".
func (p *Pipeline) Description() string { return p.desc }

// Stats returns a snapshot of the counters. It is safe for concurrent use
// and works before, during and after Shutdown.
func (p *Pipeline) Stats() Stats {
	p.errMu.Lock()
	lastErr, lastErrAt := p.lastErr, p.lastErrAt
	p.errMu.Unlock()
	return Stats{
		Exported: p.exported.Load(),
		Dropped: Drops{
			QueueFull:    p.dropped[dropQueueFull].Load(),
			ExportFailed: p.dropped[dropExportFailed].Load(),
			Shutdown:     p.dropped[dropShutdown].Load(),
		},
		Queued:      p.pending.Load(),
		Batches:     p.batches.Load(),
		Failures:    p.failures.Load(),
		LastError:   lastErr,
		LastErrorAt: lastErrAt,
	}
}

// OnStart does nothing: spans are taken when they end.
func (p *Pipeline) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s if it is sampled. It never blocks: when the queue is full
// s is dropped and counted (reason queue_full), and after Shutdown it is
// dropped and counted (reason shutdown). The pipeline keeps s until it is
// exported.
func (p *Pipeline) OnEnd(s sdktrace.ReadOnlySpan) {
	if !p.enabled || !s.SpanContext().IsSampled() {
		return
	}
	p.mu.RLock()
	if p.stopped {
		p.mu.RUnlock()
		p.dropped[dropShutdown].Add(1)
		return
	}
	// Counted as pending before the worker can see it, so that Queued
	// never goes below zero.
	p.pending.Add(1)
	select {
	case p.queue <- s:
	default:
		p.pending.Add(-1)
		p.dropped[dropQueueFull].Add(1)
	}
	p.mu.RUnlock()
}

// ForceFlush exports every span queued before the call, in batches, and
// returns when they are exported or dropped, or when ctx ends (ctx.Err()).
// ctx also bounds each of those exports, together with export_timeout;
// spans not yet sent when ctx ends stay queued for the next batch. It
// returns the export errors joined. Spans dropped by a failed export are
// counted (reason export_failed); nobody retries them. After Shutdown it
// does nothing and returns nil.
func (p *Pipeline) ForceFlush(ctx context.Context) error {
	if !p.enabled {
		return nil
	}
	p.mu.RLock()
	stopped := p.stopped
	p.mu.RUnlock()
	if stopped {
		return nil
	}
	req := flushRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case p.flushes <- req:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("traces: flush: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("traces: flush: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("traces: flush: %w", ctx.Err())
	}
}

// Shutdown stops taking spans, exports every queued one, then shuts the
// exporter down, and returns the errors of those steps joined. ctx bounds
// all of it: when it ends, queued spans are dropped and counted (reason
// shutdown), the export in flight is cancelled, and Shutdown returns
// ctx.Err() without waiting further. Only the first call does anything;
// later ones return nil at once. It is a no-op for a disabled pipeline.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if !p.enabled {
		return nil
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.shutdownCtx = ctx
	p.mu.Unlock()

	close(p.stop)
	var err error
	select {
	case <-p.done:
		err = p.shutdownErr
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.cancelRun()
	if uerr := p.metrics.unregister(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("self-metrics: %w", uerr))
	}
	if err != nil {
		return fmt.Errorf("traces: shutdown: %w", err)
	}
	return nil
}

// run is the pipeline's goroutine: it owns the batch, the timer and every
// call to the exporter.
func (p *Pipeline) run() {
	defer close(p.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, p.batchSize)
	timer := time.NewTimer(p.batchTimeout)
	defer timer.Stop()
	for {
		// Shutdown first: once it has begun, queued spans go to finish,
		// which knows whether there is still time to send them.
		select {
		case <-p.stop:
			p.shutdownErr = p.finish(batch)
			return
		default:
		}
		select {
		case s := <-p.queue:
			batch = append(batch, s)
			// Take what else is waiting now, rather than going round the
			// loop (and maybe to sleep) once per span.
		more:
			for len(batch) < p.batchSize {
				select {
				case s := <-p.queue:
					batch = append(batch, s)
				default:
					break more
				}
			}
			if len(batch) < p.batchSize {
				continue
			}
			_ = p.send(p.runCtx, batch)
			batch = batch[:0]
		case <-timer.C:
			if len(batch) > 0 {
				_ = p.send(p.runCtx, batch)
				batch = batch[:0]
			}
		case req := <-p.flushes:
			var err error
			batch, err = p.flush(req.ctx, batch)
			req.done <- err
		case <-p.stop:
			p.shutdownErr = p.finish(batch)
			return
		}
		p.warnQueueFull(false)
		timer.Reset(p.batchTimeout)
	}
}

// flush sends batch and the spans queued now. When ctx ends it stops and
// returns what it has not sent yet as the batch to go on with.
func (p *Pipeline) flush(ctx context.Context, batch []sdktrace.ReadOnlySpan) ([]sdktrace.ReadOnlySpan, error) {
	var errs []error
	// Only run receives from the queue, so these n spans stay there.
	n := len(p.queue)
	for n > 0 || len(batch) > 0 {
		for n > 0 && len(batch) < p.batchSize {
			batch = append(batch, <-p.queue)
			n--
		}
		if err := ctx.Err(); err != nil {
			return batch, errors.Join(append(errs, err)...)
		}
		if err := p.send(ctx, batch); err != nil {
			errs = append(errs, err)
		}
		batch = batch[:0]
	}
	return batch, errors.Join(errs...)
}

// finish drains the queue into the exporter, then shuts it down. OnEnd no
// longer enqueues, so the queue only shrinks.
func (p *Pipeline) finish(batch []sdktrace.ReadOnlySpan) error {
	ctx := p.shutdownCtx
	var errs []error
	for {
	fill:
		for len(batch) < p.batchSize {
			select {
			case s := <-p.queue:
				batch = append(batch, s)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			n := int64(len(batch) + len(p.queue))
			clear(batch)
			for len(p.queue) > 0 {
				<-p.queue
			}
			p.dropped[dropShutdown].Add(n)
			p.pending.Add(-n)
			p.logger.Warn("traces: spans dropped: shutdown ran out of time",
				slog.Int64("dropped", n), slog.String("reason", string(DropReasonShutdown)), slog.String("exporter", p.desc))
			errs = append(errs, err)
			break
		}
		if err := p.send(ctx, batch); err != nil {
			errs = append(errs, err)
		}
		batch = batch[:0]
	}
	p.warnQueueFull(true)
	p.warnExportFailed(0, true)
	if err := p.exporter.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("exporter: %w", err))
	}
	return errors.Join(errs...)
}

// send exports batch, bounded by parent, export_timeout and runCtx, counts
// the outcome and empties batch's elements so they can be collected.
func (p *Pipeline) send(parent context.Context, batch []sdktrace.ReadOnlySpan) error {
	ctx, cancel := context.WithTimeout(parent, p.exportTimeout)
	stopAbort := context.AfterFunc(p.runCtx, cancel)
	began := time.Now()
	err := p.exporter.ExportSpans(ctx, batch)
	elapsed := time.Since(began)
	stopAbort()
	cancel()

	n := int64(len(batch))
	clear(batch)
	p.batches.Add(1)
	if err != nil {
		p.failures.Add(1)
		p.dropped[dropExportFailed].Add(n)
		p.errMu.Lock()
		p.lastErr, p.lastErrAt = err.Error(), p.now()
		p.errMu.Unlock()
		p.lastFailure = err
		p.warnExportFailed(n, false)
	} else {
		p.exported.Add(n)
	}
	p.pending.Add(-n)
	p.metrics.recordExport(elapsed, err)
	return err
}

// warnExportFailed logs dropped batches at most once per warnInterval,
// with the count since the last warning; final logs whatever is left.
func (p *Pipeline) warnExportFailed(n int64, final bool) {
	count, ok := p.warnFailed.note(p.now(), n, final)
	if !ok {
		return
	}
	p.logger.Warn("traces: spans dropped: export failed",
		slog.Int64("dropped", count), slog.String("reason", string(DropReasonExportFailed)),
		slog.String("exporter", p.desc), slog.Any("error", p.lastFailure))
}

// warnQueueFull logs queue_full drops made by OnEnd since the last warning,
// at most once per warnInterval; final logs whatever is left.
func (p *Pipeline) warnQueueFull(final bool) {
	seen := p.dropped[dropQueueFull].Load()
	n := seen - p.fullSeen
	p.fullSeen = seen
	count, ok := p.warnFull.note(p.now(), n, final)
	if !ok {
		return
	}
	p.logger.Warn("traces: spans dropped: queue full",
		slog.Int64("dropped", count), slog.String("reason", string(DropReasonQueueFull)),
		slog.Int("queue_size", cap(p.queue)), slog.String("exporter", p.desc))
}

// warnLimiter rate-limits one kind of warning, adding up what it holds back.
type warnLimiter struct {
	last    time.Time
	pending int64
}

// note adds n and says whether to warn now, and with which count: when
// something is pending and either final is set or warnInterval has passed
// since the last warning.
func (l *warnLimiter) note(now time.Time, n int64, final bool) (int64, bool) {
	l.pending += n
	if l.pending == 0 || (!final && !l.last.IsZero() && now.Sub(l.last) < warnInterval) {
		return 0, false
	}
	count := l.pending
	l.pending, l.last = 0, now
	return count, true
}

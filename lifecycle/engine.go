package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

type engineState uint8

const (
	stateNew engineState = iota
	stateRunning
	stateDraining // Shutdown has begun; the goroutines may still run
	stateStopped  // shut down before Start
)

// Engine is the reference workflow engine: it runs tasks of registered
// workflows through the instrumented orchestration and worker components.
// Its methods are safe for concurrent use.
type Engine struct {
	cfg     EngineConfig
	reg     *Registry
	em      *emitter
	rng     *rand.Rand
	pol     policy
	stats   counters
	breaker *CircuitBreaker
	perf    *perfMonitor // nil when EngineConfig.Performance.Disabled
	hooks   testHooks

	// taskCounts are the unfinished tasks per state of activeStates:
	// Submit counts pending tasks, orchestration the others.
	taskCounts [len(activeStates)]atomic.Int64

	inbox   chan *taskRun
	results chan *stepRun
	queues  []*queue
	cancels *mailbox

	stop     chan struct{} // closed by halt: the goroutines return
	runCtx   context.Context
	cancel   context.CancelFunc
	haltOnce sync.Once
	wg       sync.WaitGroup
	done     chan struct{} // closed when every goroutine has returned

	mu          sync.Mutex // guards state, outstanding and idle
	state       engineState
	outstanding int           // submitted tasks not yet finalized
	idle        chan struct{} // closed when outstanding drops to 0
}

// testHooks let tests create conditions deterministically.
type testHooks struct {
	resultsCap int             // the ffi_completion channel's capacity; 0 means QueueDepth
	gate       <-chan struct{} // orchestration receives from it before processing each result
	breaker    *BreakerConfig  // the completion breaker's configuration
	readHeap   func() uint64   // the performance monitor's heap reading; nil reads the runtime's
	heapEvery  bool            // read the heap at every operation bound (no shared reading)
}

// The completion channel's circuit breaker: it opens after this many slow
// sends in a row and stays open for completionOpenTimeout before letting a
// probe through.
const (
	completionFailureThreshold = 5
	completionOpenTimeout      = time.Second
	completionHalfOpenProbes   = 1
)

// mailbox carries cancellation requests to orchestration without making
// Cancel wait: requests queue under a lock and one buffered token wakes the
// orchestration loop.
type mailbox struct {
	mu    sync.Mutex
	tasks []*taskRun
	wake  chan struct{}
}

func (m *mailbox) put(t *taskRun) {
	m.mu.Lock()
	m.tasks = append(m.tasks, t)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []*taskRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.tasks
	m.tasks = nil
	return out
}

// Stats is a snapshot of an engine's counters. Each count equals the number
// of events of the kind named in its comment that the engine published (or
// tried to), so a metrics pipeline can be checked against it.
type Stats struct {
	// TasksSubmitted counts tasks accepted by Submit (task.initialize_requested
	// once orchestration takes them).
	TasksSubmitted uint64
	// TasksCompleted, TasksFailed and TasksCancelled count finalized tasks
	// by final state (task.completed, task.failed, task.cancelled).
	TasksCompleted, TasksFailed, TasksCancelled uint64
	// StepsEnqueued counts step.enqueued, re-enqueued retries included.
	StepsEnqueued uint64
	// StepsClaimed counts step.claimed.
	StepsClaimed uint64
	// StepAttempts counts step executions (step.execution_started);
	// StepsSucceeded and StepsFailed split them by outcome (step.completed,
	// step.failed: failed attempts, retried or not).
	StepAttempts, StepsSucceeded, StepsFailed uint64
	// StepsExecuted equals StepAttempts; kept for existing callers.
	StepsExecuted uint64
	// StepRetries counts step.retry_requested.
	StepRetries uint64
	// MaxRetriesReached counts observability.step.max_retries_reached.
	MaxRetriesReached uint64
	// ResultsSubmitted counts step.result_submitted; ResultsProcessed
	// counts step.result_processed.
	ResultsSubmitted, ResultsProcessed uint64
	// SlowSends counts resilience.completion_slow_send.
	SlowSends uint64
	// SlowOperations counts performance.slow_operation.
	SlowOperations uint64
	// MemorySpikes counts memory.spike_detected.
	MemorySpikes uint64
	// CompletionRejections counts resilience.completion_rejected.
	CompletionRejections uint64
	// ChannelFullEvents counts resilience.channel_full over all channels.
	ChannelFullEvents uint64
	// PublishErrors counts events whose Publish returned an error.
	PublishErrors uint64
}

// New returns an engine for cfg's defaults-filled copy. It starts nothing;
// Start does.
func New(cfg EngineConfig, set Settings) (*Engine, error) {
	return newEngine(cfg, set, testHooks{})
}

func newEngine(cfg EngineConfig, set Settings, hooks testHooks) (*Engine, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if set.Publisher == nil {
		errs = append(errs, errors.New("settings: Publisher must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	cfg = cfg.withDefaults()
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	if set.Rand == nil {
		set.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if set.Workflows == nil {
		set.Workflows = NewDefaultRegistry()
	}
	bcfg := BreakerConfig{
		Component:        ChannelCompletion,
		FailureThreshold: completionFailureThreshold,
		OpenTimeout:      completionOpenTimeout,
		HalfOpenProbes:   completionHalfOpenProbes,
	}
	if hooks.breaker != nil {
		bcfg = *hooks.breaker
	}
	corr := events.NewIDAt(set.Now()) // of the engine's events about no task
	breaker, err := NewCircuitBreaker(bcfg, BreakerSettings{Publisher: set.Publisher, Logger: set.Logger, Now: set.Now, CorrelationID: corr})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: completion breaker: %w", err)
	}
	resultsCap := cfg.QueueDepth
	if hooks.resultsCap > 0 {
		resultsCap = hooks.resultsCap
	}
	e := &Engine{
		cfg: cfg,
		reg: set.Workflows,
		em:  &emitter{pub: set.Publisher, now: set.Now, log: set.Logger, corr: corr},
		rng: set.Rand,
		pol: policy{
			failRate: cfg.FailRate, maxAttempts: cfg.MaxAttempts,
			base: cfg.BackoffBase, max: cfg.BackoffMax,
		},
		breaker: breaker,
		hooks:   hooks,
		inbox:   make(chan *taskRun, cfg.QueueDepth),
		results: make(chan *stepRun, resultsCap),
		cancels: &mailbox{wake: make(chan struct{}, 1)},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	resolution := heapResolution
	if hooks.heapEvery {
		resolution = 0
	}
	e.perf = newPerfMonitor(cfg.Performance, e.em, hooks.readHeap, resolution)
	for _, ns := range e.reg.Namespaces() {
		e.queues = append(e.queues, newQueue(ns, cfg.QueueDepth, e.reg.handlerTypes(ns)))
	}
	return e, nil
}

// Start starts the orchestration goroutine and the workers and returns. ctx
// only bounds start-up; the goroutines run until Shutdown. It returns
// ErrAlreadyStarted when called twice and ErrShutdown after Shutdown.
func (e *Engine) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lifecycle: start: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case stateRunning:
		return fmt.Errorf("lifecycle: start: %w", ErrAlreadyStarted)
	case stateDraining, stateStopped:
		return fmt.Errorf("lifecycle: start: %w", ErrShutdown)
	}
	// The goroutines' context: handlers and Publish see it cancelled only
	// when Shutdown gives up draining.
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel

	e.runCtx = runCtx

	states := &taskStates{em: e.em, counts: &e.taskCounts}
	enqueuer := newStepEnqueuer(e.em, &e.stats, e.em.corr, e.queues)
	enqueuer.perf = e.perf
	finder := &viableFinder{em: e.em, pol: &e.pol}
	retries := &retryHeap{}
	byNS := make(map[string]*queue, len(e.queues))
	for _, q := range e.queues {
		byNS[q.namespace] = q
	}
	o := &orchestrator{
		em:          e.em,
		initializer: &taskInitializer{em: e.em, rng: e.rng, pol: &e.pol, states: states, finder: finder, perf: e.perf},
		enqueuer:    enqueuer,
		processor: &resultProcessor{
			em: e.em, stats: &e.stats, pol: &e.pol, enqueuer: enqueuer, queues: byNS,
			retries: retries, states: states, finder: finder, perf: e.perf,
		},
		finalizer:  &taskFinalizer{em: e.em, states: states, onDone: e.taskDone, release: e.release, perf: e.perf},
		states:     states,
		retries:    retries,
		inbox:      e.inbox,
		results:    e.results,
		cancels:    e.cancels,
		stop:       e.stop,
		live:       make(map[*taskRun]struct{}),
		maxBacklog: e.cfg.QueueDepth,
		gate:       e.hooks.gate,
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		o.run(runCtx)
	}()
	for _, q := range e.queues {
		for n := range e.cfg.Workers {
			w := &worker{
				id:      q.namespace + "-" + strconv.Itoa(n+1),
				claim:   stepClaim{em: e.em, stats: &e.stats, q: q, perf: e.perf},
				command: commandProcessor{em: e.em, stats: &e.stats, perf: e.perf},
				sender: resultSender{
					em: e.em, stats: &e.stats, breaker: e.breaker, threshold: e.cfg.SlowSendThreshold,
					results: e.results, stop: e.stop, ack: make(chan struct{}, 1), perf: e.perf,
				},
				mode:     e.cfg.ClaimMode,
				interval: e.cfg.PollInterval,
				now:      e.em.now,
				stop:     e.stop,
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				w.run(runCtx)
			}()
		}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.sampleLoop(runCtx)
	}()
	// Owned like the others: it returns once they have, after the final
	// sample, which shows the gauges back at zero.
	go func() {
		e.wg.Wait()
		for _, q := range e.queues {
			q.reset()
		}
		for i := range e.taskCounts {
			e.taskCounts[i].Store(0)
		}
		e.sample(runCtx)
		cancel()
		close(e.done)
	}()
	e.state = stateRunning
	return nil
}

// Submit validates req and hands the task to orchestration, waiting while the
// engine's inbox is full; ctx bounds that wait and is not kept. It returns a
// handle to wait on. Errors wrap ErrUnknownWorkflow, ErrInvalidInput,
// ErrNotStarted, ErrShutdown or ctx.Err(). Submit never retries.
func (e *Engine) Submit(ctx context.Context, req TaskRequest) (*TaskHandle, error) {
	p, ok := e.reg.plans[req.Workflow]
	if !ok {
		return nil, fmt.Errorf("lifecycle: submit: %w %q", ErrUnknownWorkflow, req.Workflow)
	}
	ns := req.Namespace
	if ns == "" {
		ns = p.wf.Namespace
	} else if ns != p.wf.Namespace {
		return nil, fmt.Errorf("lifecycle: submit: %w %q in namespace %q (it is in %q)", ErrUnknownWorkflow, req.Workflow, ns, p.wf.Namespace)
	}
	var expected int64
	if p.wf.Expect != nil {
		var err error
		if expected, err = p.wf.Expect(req.Input); err != nil {
			return nil, fmt.Errorf("lifecycle: submit %s: %w: %w", req.Workflow, ErrInvalidInput, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lifecycle: submit: %w", err)
	}

	now := e.em.now()
	corr := req.CorrelationID
	if corr.IsZero() {
		corr = events.NewIDAt(now)
	}
	h := &TaskHandle{
		id: events.NewIDAt(now), corr: corr,
		workflow: req.Workflow, namespace: ns, input: req.Input,
		submitted: now, done: make(chan struct{}), engineDone: e.done,
		request: e.cancels.put,
	}
	t := &taskRun{
		handle: h, plan: p, uuid: h.id.String(), expected: expected,
		accepted: make(chan struct{}), state: TaskStatePending,
	}
	h.run = t

	e.mu.Lock()
	switch e.state {
	case stateNew:
		e.mu.Unlock()
		return nil, fmt.Errorf("lifecycle: submit: %w", ErrNotStarted)
	case stateDraining, stateStopped:
		e.mu.Unlock()
		return nil, fmt.Errorf("lifecycle: submit: %w", ErrShutdown)
	}
	if e.outstanding == 0 {
		e.idle = make(chan struct{})
	}
	e.outstanding++
	runCtx := e.runCtx
	e.mu.Unlock()

	// Counted before the send, so that orchestration's move out of pending
	// can never precede it.
	pending := &e.taskCounts[activeIndex(TaskStatePending)]
	pending.Add(1)
	start := e.em.now()
	select {
	case e.inbox <- t:
	default:
		e.stats.channelFull.Add(1)
		e.em.emit(runCtx, e.em.now(), events.ResilienceChannelFull, corr, []events.Attr{
			events.String("channel", ChannelOrchestrationCommand), events.String("component", ComponentOrchestration),
		})
		select {
		case e.inbox <- t:
		case <-ctx.Done():
			pending.Add(-1)
			e.release()
			return nil, fmt.Errorf("lifecycle: submit: %w", ctx.Err())
		case <-e.stop:
			pending.Add(-1)
			e.release()
			return nil, fmt.Errorf("lifecycle: submit: %w", ErrShutdown)
		}
	}
	end := e.em.now()
	e.stats.tasksSubmitted.Add(1)
	attrs := append(t.attrs(1), events.Float("inbox_wait_ms", ms(end.Sub(start))))
	e.em.emit(runCtx, end, events.ObservabilityTaskEnqueue, corr, attrs)
	close(t.accepted) // orchestration starts on the task only now, keeping its events in order
	return h, nil
}

// taskDone is the finalizer's bookkeeping, called after the task's events
// and before its handle is done, so that a finished task is counted.
func (e *Engine) taskDone(r TaskResult) {
	switch r.State {
	case TaskStateComplete:
		e.stats.tasksCompleted.Add(1)
	case TaskStateCancelled:
		e.stats.tasksCancelled.Add(1)
	default:
		e.stats.tasksFailed.Add(1)
	}
	e.em.log.Debug("lifecycle: task finalized",
		slog.String("correlation_id", r.CorrelationID.String()),
		slog.String("task_uuid", r.TaskUUID.String()),
		slog.String("task_type", r.Workflow),
		slog.Any("error", r.Err))
}

func (e *Engine) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.outstanding--; e.outstanding == 0 {
		close(e.idle)
	}
}

// Wait waits until no submitted task is unfinished, and so until every event
// of those tasks has been published. It returns ctx.Err() when ctx is done
// first and an error wrapping ErrShutdown when the engine stopped with tasks
// unfinished. Tasks submitted while Wait runs may or may not be waited for.
func (e *Engine) Wait(ctx context.Context) error {
	e.mu.Lock()
	if e.outstanding == 0 {
		e.mu.Unlock()
		return nil
	}
	idle := e.idle
	e.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lifecycle: wait: %w", ctx.Err())
	case <-e.done:
		select {
		case <-idle:
			return nil
		default:
			return fmt.Errorf("lifecycle: wait: %w", ErrShutdown)
		}
	}
}

// Shutdown stops taking tasks, waits for the unfinished ones to finish, then
// stops the goroutines and waits for them. When ctx is done first it stops
// the goroutines at once (cancelling handlers' and Publish's context),
// abandons the unfinished tasks (their handles report ErrShutdown) and
// returns ctx's error. It can be called more than once, concurrently, and
// before Start; a later call waits for the goroutines again.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	switch e.state {
	case stateNew:
		e.state = stateStopped
		close(e.done)
		e.mu.Unlock()
		return nil
	case stateRunning:
		e.state = stateDraining
		busy, idle := e.outstanding > 0, e.idle
		e.mu.Unlock()
		if busy {
			select {
			case <-idle:
			case <-ctx.Done():
				e.halt(true)
				return fmt.Errorf("lifecycle: shutdown: tasks unfinished: %w", ctx.Err())
			}
		}
		e.halt(false)
	default:
		e.mu.Unlock()
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		select {
		case <-e.done:
			return nil
		default:
			// Out of time: cut handlers and publishes short so that no
			// goroutine outlives the engine for long.
			e.halt(true)
			return fmt.Errorf("lifecycle: shutdown: %w", ctx.Err())
		}
	}
}

// halt stops the goroutines. A hard halt also cancels their context at once,
// interrupting handlers and Publish; otherwise the context lives until the
// final sample has been published.
func (e *Engine) halt(hard bool) {
	e.haltOnce.Do(func() { close(e.stop) })
	if hard && e.cancel != nil {
		e.cancel()
	}
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	slowOps, spikes := e.perf.counts()
	return Stats{
		TasksSubmitted:       c.tasksSubmitted.Load(),
		TasksCompleted:       c.tasksCompleted.Load(),
		TasksFailed:          c.tasksFailed.Load(),
		TasksCancelled:       c.tasksCancelled.Load(),
		StepsEnqueued:        c.stepsEnqueued.Load(),
		StepsClaimed:         c.stepsClaimed.Load(),
		StepAttempts:         c.stepAttempts.Load(),
		StepsExecuted:        c.stepAttempts.Load(),
		StepsSucceeded:       c.stepsSucceeded.Load(),
		StepsFailed:          c.stepsFailed.Load(),
		StepRetries:          c.stepRetries.Load(),
		MaxRetriesReached:    c.maxRetriesReached.Load(),
		ResultsSubmitted:     c.resultsSubmitted.Load(),
		ResultsProcessed:     c.resultsProcessed.Load(),
		SlowSends:            c.slowSends.Load(),
		SlowOperations:       slowOps,
		MemorySpikes:         spikes,
		CompletionRejections: c.completionRejections.Load(),
		ChannelFullEvents:    c.channelFull.Load(),
		PublishErrors:        e.em.failed.Load(),
	}
}

// Breakers returns the engine's circuit breakers, for health reports: the
// ffi_completion breaker guarding the results channel.
func (e *Engine) Breakers() []*CircuitBreaker { return []*CircuitBreaker{e.breaker} }

// PublishErrors returns how many events failed to publish; the work carried on.
func (e *Engine) PublishErrors() uint64 { return e.em.failed.Load() }

// Workflows returns the engine's workflow registry.
func (e *Engine) Workflows() *Registry { return e.reg }

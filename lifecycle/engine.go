package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
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
	cfg   EngineConfig
	reg   *Registry
	em    *emitter
	rng   *rand.Rand
	stats counters

	inbox   chan *taskRun
	results chan *stepRun
	queues  []*queue

	stop     chan struct{} // closed by halt: the goroutines return
	cancel   context.CancelFunc
	haltOnce sync.Once
	wg       sync.WaitGroup
	done     chan struct{} // closed when every goroutine has returned

	mu          sync.Mutex // guards state, outstanding and idle
	state       engineState
	outstanding int           // submitted tasks not yet finalized
	idle        chan struct{} // closed when outstanding drops to 0
}

// Stats is a snapshot of an engine's counters.
type Stats struct {
	// TasksSubmitted counts tasks accepted by Submit.
	TasksSubmitted uint64
	// TasksCompleted and TasksFailed count finalized tasks.
	TasksCompleted, TasksFailed uint64
	// StepsExecuted counts step executions; StepsSucceeded and StepsFailed
	// split them by outcome.
	StepsExecuted, StepsSucceeded, StepsFailed uint64
	// PublishErrors counts events whose Publish returned an error.
	PublishErrors uint64
}

// New returns an engine for cfg's defaults-filled copy. It starts nothing;
// Start does.
func New(cfg EngineConfig, set Settings) (*Engine, error) {
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
	e := &Engine{
		cfg:     cfg,
		reg:     set.Workflows,
		em:      &emitter{pub: set.Publisher, now: set.Now, log: set.Logger},
		rng:     set.Rand,
		inbox:   make(chan *taskRun, cfg.QueueDepth),
		results: make(chan *stepRun, cfg.QueueDepth),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, ns := range e.reg.Namespaces() {
		e.queues = append(e.queues, newQueue(ns, cfg.QueueDepth))
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

	enqueuer := newStepEnqueuer(e.em, e.queues)
	o := &orchestrator{
		initializer: &taskInitializer{em: e.em, rng: e.rng, failRate: e.cfg.FailRate},
		enqueuer:    enqueuer,
		processor:   &resultProcessor{em: e.em, enqueuer: enqueuer},
		finalizer:   &taskFinalizer{em: e.em, onDone: e.taskDone},
		inbox:       e.inbox,
		results:     e.results,
		stop:        e.stop,
		live:        make(map[*taskRun]struct{}),
		maxBacklog:  e.cfg.QueueDepth,
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		o.run(runCtx)
	}()
	for _, q := range e.queues {
		for range e.cfg.Workers {
			w := &worker{
				claim:    stepClaim{em: e.em, q: q},
				command:  commandProcessor{em: e.em, stats: &e.stats},
				sender:   resultSender{em: e.em, results: e.results, stop: e.stop, ack: make(chan struct{}, 1)},
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
	// Owned like the others: it returns once they have.
	go func() {
		e.wg.Wait()
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
	}
	t := &taskRun{handle: h, plan: p, uuid: h.id.String(), expected: expected}

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
	e.mu.Unlock()

	select {
	case e.inbox <- t:
		e.stats.tasksSubmitted.Add(1)
		return h, nil
	case <-ctx.Done():
		e.release()
		return nil, fmt.Errorf("lifecycle: submit: %w", ctx.Err())
	case <-e.stop:
		e.release()
		return nil, fmt.Errorf("lifecycle: submit: %w", ErrShutdown)
	}
}

// taskDone is the finalizer's bookkeeping, called after the task's events.
func (e *Engine) taskDone(r TaskResult) {
	if r.Err == nil {
		e.stats.tasksCompleted.Add(1)
	} else {
		e.stats.tasksFailed.Add(1)
	}
	e.em.log.Debug("lifecycle: task finalized",
		slog.String("correlation_id", r.CorrelationID.String()),
		slog.String("task_uuid", r.TaskUUID.String()),
		slog.String("task_type", r.Workflow),
		slog.Any("error", r.Err))
	e.release()
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
				e.halt()
				return fmt.Errorf("lifecycle: shutdown: tasks unfinished: %w", ctx.Err())
			}
		}
		e.halt()
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
			return fmt.Errorf("lifecycle: shutdown: %w", ctx.Err())
		}
	}
}

func (e *Engine) halt() {
	e.haltOnce.Do(func() {
		close(e.stop)
		e.cancel()
	})
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		TasksSubmitted: e.stats.tasksSubmitted.Load(),
		TasksCompleted: e.stats.tasksCompleted.Load(),
		TasksFailed:    e.stats.tasksFailed.Load(),
		StepsExecuted:  e.stats.stepsExecuted.Load(),
		StepsSucceeded: e.stats.stepsSucceeded.Load(),
		StepsFailed:    e.stats.stepsFailed.Load(),
		PublishErrors:  e.em.failed.Load(),
	}
}

// PublishErrors returns how many events failed to publish; the work carried on.
func (e *Engine) PublishErrors() uint64 { return e.em.failed.Load() }

// Workflows returns the engine's workflow registry.
func (e *Engine) Workflows() *Registry { return e.reg }

package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// signal returns a Fail hook for recorder that sends on the returned
// channel (without blocking) whenever an event called name is published.
func signal(name string) (func(events.Event) error, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return func(e events.Event) error {
		if e.Name == name {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return nil
	}, ch
}

// fakeClock is a clock the test moves by hand; concurrent reads are safe.
type fakeClock struct{ off atomic.Int64 }

var clockBase = time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return clockBase.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

func ints(t *testing.T, evs []events.Event, name, key string) []int64 {
	t.Helper()
	out := []int64{}
	for _, e := range evs {
		if e.Name == name {
			out = append(out, attr(t, e, key).Int64())
		}
	}
	return out
}

func strs(t *testing.T, evs []events.Event, name, key string) []string {
	t.Helper()
	out := []string{}
	for _, e := range evs {
		if e.Name == name {
			out = append(out, attr(t, e, key).Str())
		}
	}
	return out
}

func transitions(t *testing.T, evs []events.Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if e.Name == events.TaskStateTransitioned {
			out = append(out, attr(t, e, "from_state").Str()+">"+attr(t, e, "to_state").Str())
		}
	}
	return out
}

func TestEngineRetries(t *testing.T) {
	t.Parallel()
	errFlaky := errors.New("flaky")
	tests := []struct {
		name         string
		failFirst    int   // attempts that fail before one succeeds
		err          error // what a failing attempt returns
		panics       bool
		wantAttempts int
		wantType     string
		wantState    lifecycle.TaskState
		wantMax      int // max_retries_reached events
		wantFlow     []string
	}{
		{
			name: "succeeds on the third attempt", failFirst: 2, err: errFlaky,
			wantAttempts: 3, wantType: lifecycle.ErrorTypeHandler, wantState: lifecycle.TaskStateComplete,
			wantFlow: []string{
				"pending>initializing", "initializing>steps_in_process",
				"steps_in_process>waiting_for_retry", "waiting_for_retry>steps_in_process",
				"steps_in_process>waiting_for_retry", "waiting_for_retry>steps_in_process",
				"steps_in_process>finalizing", "finalizing>complete",
			},
		},
		{
			name: "timeouts are retried", failFirst: 1, err: fmt.Errorf("slow: %w", context.DeadlineExceeded),
			wantAttempts: 2, wantType: lifecycle.ErrorTypeTimeout, wantState: lifecycle.TaskStateComplete,
			wantFlow: []string{
				"pending>initializing", "initializing>steps_in_process",
				"steps_in_process>waiting_for_retry", "waiting_for_retry>steps_in_process",
				"steps_in_process>finalizing", "finalizing>complete",
			},
		},
		{
			name: "exhausts its attempts", failFirst: 99, err: errFlaky,
			wantAttempts: 3, wantType: lifecycle.ErrorTypeHandler, wantState: lifecycle.TaskStateError, wantMax: 1,
			wantFlow: []string{
				"pending>initializing", "initializing>steps_in_process",
				"steps_in_process>waiting_for_retry", "waiting_for_retry>steps_in_process",
				"steps_in_process>waiting_for_retry", "waiting_for_retry>steps_in_process",
				"steps_in_process>finalizing", "finalizing>error",
			},
		},
		{
			name: "permanent errors are not retried", failFirst: 99, err: fmt.Errorf("bad input: %w", lifecycle.ErrPermanent),
			wantAttempts: 1, wantType: lifecycle.ErrorTypeHandler, wantState: lifecycle.TaskStateError,
			wantFlow: []string{"pending>initializing", "initializing>steps_in_process", "steps_in_process>finalizing", "finalizing>error"},
		},
		{
			name: "panics are not retried", failFirst: 99, panics: true,
			wantAttempts: 1, wantType: lifecycle.ErrorTypePanic, wantState: lifecycle.TaskStateError,
			wantFlow: []string{"pending>initializing", "initializing>steps_in_process", "steps_in_process>finalizing", "finalizing>error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
				Name: "flaky", Namespace: "test",
				Steps: []lifecycle.Step{
					{Name: "flaky", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
						if calls.Add(1) > int64(tt.failFirst) {
							return 7, nil
						}
						if tt.panics {
							panic("boom")
						}
						return 0, tt.err
					}},
					{Name: "after", DependsOn: []string{"flaky"}, Handler: func(_ context.Context, in lifecycle.StepInput) (int64, error) { return in.Deps[0], nil }},
				},
			})
			require.NoError(t, err)
			rec := &recorder{}
			e := startEngine(t, lifecycle.EngineConfig{BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond},
				lifecycle.Settings{Publisher: rec, Workflows: reg})
			hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: "flaky"}, 1)
			res, err := hs[0].Wait(context.Background())
			require.Equal(t, tt.wantState, res.State)
			evs := taskScoped(rec.snapshot())
			failures := tt.wantAttempts
			if tt.wantState == lifecycle.TaskStateComplete {
				failures--
				require.NoError(t, err)
				require.Equal(t, int64(7), res.Value)
			} else {
				var te *lifecycle.TaskError
				require.ErrorAs(t, err, &te)
				require.Equal(t, tt.wantType, te.Type)
				require.Equal(t, "flaky", te.Step)
				require.Equal(t, []string{"after"}, strs(t, evs, events.ObservabilityStepSkip, "step_name"))
				require.Equal(t, []string{"task_failed"}, strs(t, evs, events.ObservabilityStepSkip, "reason"))
			}
			retries := failures
			if tt.wantState == lifecycle.TaskStateError {
				retries--
			}

			var attempts []int64
			for _, ev := range evs {
				if ev.Name == events.StepEnqueued && attr(t, ev, "step_name").Str() == "flaky" {
					attempts = append(attempts, attr(t, ev, "attempt").Int64())
				}
			}
			want := make([]int64, tt.wantAttempts)
			for i := range want {
				want[i] = int64(i + 1)
			}
			require.Equal(t, want, attempts, "step.enqueued attempts")
			require.Len(t, strs(t, evs, events.StepFailed, "error_type"), failures)
			for i, ev := range slices.DeleteFunc(slices.Clone(evs), func(e events.Event) bool { return e.Name != events.StepFailed }) {
				require.Equal(t, tt.wantType, attr(t, ev, "error_type").Str())
				require.Equal(t, int64(i+1), attr(t, ev, "attempt").Int64())
				require.Equal(t, i < retries, attr(t, ev, "retryable").Bool(), "retryable of attempt %d", i+1)
				require.Equal(t, lifecycle.HandlerTypeGo, attr(t, ev, "handler_type").Str())
			}
			require.Equal(t, want[1:min(len(want), retries+1)], ints(t, evs, events.StepRetryRequested, "attempt"))
			require.Equal(t, want[1:min(len(want), retries+1)], ints(t, evs, events.ObservabilityStepBackoff, "attempt"))
			for _, ev := range evs {
				switch ev.Name {
				case events.StepRetryRequested:
					require.Equal(t, int64(3), attr(t, ev, "max_attempts").Int64())
					require.Equal(t, tt.wantType, attr(t, ev, "error_type").Str())
					require.InDelta(t, 1.25, attr(t, ev, "backoff_ms").Float64(), 0.75, "jittered into [base/2, max]")
				case events.ObservabilityStepBackoff:
					require.Equal(t, "exponential", attr(t, ev, "backoff_type").Str())
				}
			}
			require.Len(t, strs(t, evs, events.ObservabilityStepMaxRetriesReached, "error_type"), tt.wantMax)
			require.Equal(t, slices.Repeat([]string{"retry_backoff"}, retries), strs(t, evs, events.WorkflowNoViableSteps, "reason"))
			require.Equal(t, tt.wantFlow, transitions(t, evs))

			st := e.Stats()
			require.Equal(t, uint64(retries), st.StepRetries)
			require.Equal(t, uint64(failures), st.StepsFailed)
			require.Equal(t, uint64(tt.wantMax), st.MaxRetriesReached)
			require.Equal(t, st.StepsEnqueued, st.StepAttempts)
			require.Equal(t, st.StepAttempts, st.ResultsProcessed)
		})
	}
}

func TestBackoffGrowsExponentially(t *testing.T) {
	t.Parallel()
	reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
		Name: "fails", Namespace: "test",
		Steps: []lifecycle.Step{{Name: "fails", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
			return 0, errors.New("no")
		}}},
	})
	require.NoError(t, err)
	rec := &recorder{}
	e := startEngine(t, lifecycle.EngineConfig{MaxAttempts: 5, BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond},
		lifecycle.Settings{Publisher: rec, Workflows: reg, Rand: rand.New(rand.NewPCG(3, 4))})
	submitAll(t, e, lifecycle.TaskRequest{Workflow: "fails"}, 1)
	var got []float64
	for _, ev := range rec.snapshot() {
		if ev.Name == events.ObservabilityStepBackoff {
			got = append(got, attr(t, ev, "backoff_ms").Float64())
		}
	}
	require.Len(t, got, 4)
	for i, cap := range []float64{1, 2, 4, 4} { // base·2^(n-1), capped at max
		require.GreaterOrEqual(t, got[i], cap/2)
		require.LessOrEqual(t, got[i], cap)
	}
}

// blockingWorkflow has one root that blocks until release is closed, two
// roots that are quick, and a join.
func blockingWorkflow(t *testing.T, started chan<- struct{}, release <-chan struct{}) *lifecycle.Registry {
	t.Helper()
	one := func(context.Context, lifecycle.StepInput) (int64, error) { return 1, nil }
	reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
		Name: "blocking", Namespace: "test",
		Steps: []lifecycle.Step{
			{Name: "block", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
				started <- struct{}{}
				<-release
				return 1, nil
			}},
			{Name: "b", Handler: one},
			{Name: "c", Handler: one},
			{Name: "join", DependsOn: []string{"block", "b", "c"}, Handler: one},
		},
	})
	require.NoError(t, err)
	return reg
}

func TestEngineCancel(t *testing.T) {
	t.Parallel()
	t.Run("queued steps are withdrawn, running ones finish", func(t *testing.T) {
		t.Parallel()
		started, release := make(chan struct{}, 1), make(chan struct{})
		rec := &recorder{}
		// One worker: while it runs block, b and c stay queued.
		e := startEngine(t, lifecycle.EngineConfig{Workers: 1}, lifecycle.Settings{Publisher: rec, Workflows: blockingWorkflow(t, started, release)})
		h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "blocking"})
		require.NoError(t, err)
		<-started
		h.Cancel("")
		h.Cancel("again") // only the first counts
		waitFor(t, rec, events.ObservabilityStepSkip, 3)
		close(release)

		res, err := h.Wait(context.Background())
		require.ErrorIs(t, err, lifecycle.ErrCancelled)
		require.Equal(t, lifecycle.TaskStateCancelled, res.State)
		evs := taskScoped(rec.snapshot())
		require.Equal(t, []string{lifecycle.CancelReasonRequested}, strs(t, evs, events.TaskCancelRequested, "reason"))
		require.Equal(t, []string{"b", "c"}, strs(t, evs, events.StepCancelled, "step_name"))
		require.Equal(t, []string{"b", "c", "join"}, strs(t, evs, events.ObservabilityStepSkip, "step_name"))
		require.Equal(t, []string{"task_cancelled", "task_cancelled", "task_cancelled"}, strs(t, evs, events.ObservabilityStepSkip, "reason"))
		require.Equal(t, []string{"block"}, strs(t, evs, events.StepClaimed, "step_name"))
		require.Equal(t, []int64{1}, ints(t, evs, events.TaskCancelled, "completed_steps"))
		require.Equal(t, []string{"requested"}, strs(t, evs, events.TaskCancelled, "reason"))
		require.Equal(t, []string{"cancelled"}, strs(t, evs, events.TaskFinalized, "final_state"))
		require.Equal(t, events.TaskCancelled, evs[len(evs)-1].Name)
		require.Equal(t, []string{"pending>initializing", "initializing>steps_in_process", "steps_in_process>finalizing", "finalizing>cancelled"}, transitions(t, evs))
		st := e.Stats()
		require.Equal(t, uint64(1), st.TasksCancelled)
		require.Equal(t, uint64(1), st.StepAttempts)

		h.Cancel("late") // a finished task ignores it
		require.NoError(t, e.Wait(context.Background()))
		require.Len(t, taskScoped(rec.snapshot()), len(evs))
	})
	t.Run("a step waiting for its retry is cancelled at once", func(t *testing.T) {
		t.Parallel()
		reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
			Name: "fails", Namespace: "test",
			Steps: []lifecycle.Step{
				{Name: "fails", Handler: func(context.Context, lifecycle.StepInput) (int64, error) { return 0, errors.New("no") }},
				{Name: "next", DependsOn: []string{"fails"}, Handler: func(context.Context, lifecycle.StepInput) (int64, error) { return 1, nil }},
			},
		})
		require.NoError(t, err)
		hook, retried := signal(events.StepRetryRequested)
		rec := &recorder{Fail: hook}
		e := startEngine(t, lifecycle.EngineConfig{BackoffBase: time.Hour, BackoffMax: time.Hour}, lifecycle.Settings{Publisher: rec, Workflows: reg})
		h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "fails"})
		require.NoError(t, err)
		<-retried
		h.Cancel(lifecycle.CancelReasonShutdown)
		res, err := h.Wait(context.Background())
		require.ErrorIs(t, err, lifecycle.ErrCancelled)
		require.Equal(t, lifecycle.TaskStateCancelled, res.State)
		evs := taskScoped(rec.snapshot())
		require.Equal(t, []string{"fails"}, strs(t, evs, events.StepCancelled, "step_name"))
		require.Equal(t, []string{"fails", "next"}, strs(t, evs, events.ObservabilityStepSkip, "step_name"))
		require.Equal(t, []string{"shutdown"}, strs(t, evs, events.TaskCancelled, "reason"))
		require.Contains(t, transitions(t, evs), "waiting_for_retry>finalizing")
	})
}

// waitFor waits until rec holds n events called name.
func waitFor(t *testing.T, rec *recorder, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return countByName(rec.snapshot())[name] >= n }, 10*time.Second, time.Millisecond)
}

// slowSendScenario makes a result send wait on a full ffi_completion
// channel while the clock moves 1s, which is slow and opens the breaker
// (threshold 1); the next result is then rejected until the clock passes
// the breaker's open timeout.
func slowSendScenario(t *testing.T, rec *recorder) *lifecycle.Engine {
	t.Helper()
	clock := &fakeClock{}
	gate := make(chan struct{})
	full := make(chan struct{}, 1)
	rejected := make(chan struct{}, 1)
	prev := rec.Fail
	rec.Fail = func(e events.Event) error {
		ch := map[string]chan struct{}{events.ResilienceChannelFull: full, events.ResilienceCompletionRejected: rejected}[e.Name]
		if v, ok := e.Attr("channel"); ok && ch != nil && v.Str() == lifecycle.ChannelCompletion {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		if prev != nil {
			return prev(e)
		}
		return nil
	}
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	close(release)
	e, err := lifecycle.NewWithHooks(lifecycle.EngineConfig{Workers: 3},
		lifecycle.Settings{Publisher: rec, Now: clock.Now, Workflows: blockingWorkflow(t, started, release)},
		lifecycle.TestHooks{ResultsCap: 1, Gate: gate, Breaker: &lifecycle.BreakerConfig{
			Component: lifecycle.ChannelCompletion, FailureThreshold: 1, OpenTimeout: time.Second, HalfOpenProbes: 1,
		}})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "blocking"})
	require.NoError(t, err)
	<-started
	// Orchestration holds the first result at the gate and the channel holds
	// one: the third waits.
	<-full
	clock.Advance(time.Second)
	close(gate)
	// The slow send opened the breaker; join's result is held back.
	<-rejected
	clock.Advance(2 * time.Second)
	res, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, lifecycle.TaskStateComplete, res.State)
	return e
}

func TestEngineCompletionChannelResilience(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := slowSendScenario(t, rec)
	st := e.Stats()
	require.GreaterOrEqual(t, st.SlowSends, uint64(1))
	require.GreaterOrEqual(t, st.CompletionRejections, uint64(1))
	require.GreaterOrEqual(t, st.ChannelFullEvents, uint64(1))
	require.Equal(t, uint64(4), st.ResultsSubmitted, "no result is lost")
	require.Equal(t, lifecycle.BreakerClosed, e.Breakers()[0].State())
	require.Equal(t, lifecycle.ChannelCompletion, e.Breakers()[0].Component())

	evs := rec.snapshot()
	counts := countByName(evs)
	require.Equal(t, int(st.SlowSends), counts[events.ResilienceCompletionSlowSend])
	require.Equal(t, int(st.CompletionRejections), counts[events.ResilienceCompletionRejected])
	var states []int64
	for _, ev := range evs {
		switch ev.Name {
		case events.ResilienceCompletionSlowSend:
			require.GreaterOrEqual(t, attr(t, ev, "duration_ms").Float64(), 1000.0)
			require.Equal(t, 100.0, attr(t, ev, "threshold_ms").Float64())
			require.Equal(t, lifecycle.ChannelCompletion, attr(t, ev, "channel").Str())
		case events.ResilienceCircuitBreakerState:
			require.Equal(t, lifecycle.ChannelCompletion, attr(t, ev, "component").Str())
			states = append(states, attr(t, ev, "state").Int64())
		}
	}
	require.Equal(t, []int64{0, 2, 1, 0}, states, "created closed, opened, probed, closed")
}

func TestEngineGauges(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	rec := &recorder{}
	e, err := lifecycle.New(lifecycle.EngineConfig{Workers: 1, SampleInterval: time.Millisecond},
		lifecycle.Settings{Publisher: rec, Workflows: blockingWorkflow(t, started, release)})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "blocking"})
	require.NoError(t, err)
	<-started

	// While block runs, b and c are queued: a sample shows it.
	type series struct{ name, label string }
	last := func() map[series]float64 {
		m := map[series]float64{}
		for _, ev := range rec.snapshot() {
			switch ev.Name {
			case events.ObservabilityTaskActiveCount:
				m[series{ev.Name, attr(t, ev, "task_state").Str()}] = float64(attr(t, ev, "count").Int64())
			case events.ObservabilityStepReadyCount:
				m[series{ev.Name, attr(t, ev, "namespace").Str()}] = float64(attr(t, ev, "count").Int64())
			case events.ObservabilityStepActiveExecutions:
				m[series{ev.Name, attr(t, ev, "namespace").Str() + "/" + attr(t, ev, "handler_type").Str()}] = float64(attr(t, ev, "count").Int64())
			case events.ObservabilityQueueDepth:
				require.Equal(t, lifecycle.QueueChannel("test"), attr(t, ev, "queue").Str())
				require.Equal(t, int64(lifecycle.DefaultQueueDepth), attr(t, ev, "capacity").Int64())
				m[series{ev.Name, attr(t, ev, "namespace").Str()}] = float64(attr(t, ev, "depth").Int64())
			case events.ResilienceChannelSampled:
				m[series{ev.Name, attr(t, ev, "component").Str() + "/" + attr(t, ev, "channel").Str()}] = float64(attr(t, ev, "length").Int64())
			}
		}
		return m
	}
	busy := map[series]float64{
		{events.ObservabilityTaskActiveCount, "pending"}:                         0,
		{events.ObservabilityTaskActiveCount, "initializing"}:                    0,
		{events.ObservabilityTaskActiveCount, "steps_in_process"}:                1,
		{events.ObservabilityTaskActiveCount, "waiting_for_retry"}:               0,
		{events.ObservabilityTaskActiveCount, "finalizing"}:                      0,
		{events.ObservabilityStepReadyCount, "test"}:                             2,
		{events.ObservabilityStepActiveExecutions, "test/go"}:                    1,
		{events.ObservabilityQueueDepth, "test"}:                                 2,
		{events.ResilienceChannelSampled, "orchestration/orchestration_command"}: 0,
		{events.ResilienceChannelSampled, "worker/ffi_completion"}:               0,
		{events.ResilienceChannelSampled, "worker/worker_test_queue"}:            2,
	}
	require.Eventually(t, func() bool {
		got := last()
		for k, v := range busy {
			if got[k] != v {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "no sample showed the busy engine")

	close(release)
	_, err = h.Wait(context.Background())
	require.NoError(t, err)
	require.NoError(t, e.Shutdown(context.Background()))
	// The final sample, after everything stopped, is the last word.
	final := last()
	require.Len(t, final, len(busy))
	for k, v := range final {
		require.Zero(t, v, "%v", k)
	}
	var workers []string
	for _, ev := range rec.snapshot() {
		if ev.Name == events.WorkerStarted || ev.Name == events.WorkerStopped {
			workers = append(workers, ev.Name+" "+attr(t, ev, "namespace").Str()+" "+attr(t, ev, "worker_id").Str())
		}
	}
	require.ElementsMatch(t, []string{"worker.started test test-1", "worker.stopped test test-1"}, workers)
}

func TestEngineDiamondDiscoversTwoViableSteps(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: rec})
	submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowDiamondPattern, Input: 2}, 1)
	evs := taskScoped(rec.snapshot())
	require.Equal(t, []int64{1, 2, 0, 1, 0}, sortedMiddle(ints(t, evs, events.ObservabilityStepFindViable, "viable_count")))
	require.Equal(t, []int64{1, 2, 1}, ints(t, evs, events.WorkflowViableStepsDiscovered, "viable_count"))
	require.Equal(t, []string{"steps_in_progress"}, strs(t, evs, events.WorkflowNoViableSteps, "reason"))
}

// sortedMiddle returns v with its third and fourth elements, the two branch
// results whose order varies, as 0 then 1.
func sortedMiddle(v []int64) []int64 {
	if len(v) == 5 && v[2] == 1 && v[3] == 0 {
		v[2], v[3] = 0, 1
	}
	return v
}

// requiredEvents are the catalog events the engine must publish.
func requiredEvents() []string {
	var names []string
	for _, g := range []string{events.GroupTask, events.GroupStep, events.GroupWorkflow, events.GroupObservability, events.GroupWorker} {
		for _, s := range events.InGroup(g) {
			if !s.External {
				names = append(names, s.Name)
			}
		}
	}
	return append(names,
		events.ResilienceCompletionSlowSend, events.ResilienceCompletionRejected,
		events.ResilienceChannelSampled, events.ResilienceChannelFull, events.ResilienceCircuitBreakerState)
}

// TestEngineEventsMatchCatalog runs a workload with failures, retries,
// cancellations, a full queue and a slow completion channel, and checks
// that every event has exactly its catalog fields with their types, and that
// the engine published every event it owns.
func TestEngineEventsMatchCatalog(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slowSendScenario(t, rec)

	e := startEngine(t, lifecycle.EngineConfig{FailRate: 0.4, QueueDepth: 1, Workers: 1, BackoffBase: time.Microsecond, SampleInterval: time.Millisecond},
		lifecycle.Settings{Publisher: rec, Rand: rand.New(rand.NewPCG(5, 6))})
	for _, wf := range []string{lifecycle.WorkflowMathematicalSequence, lifecycle.WorkflowDiamondPattern} {
		submitAll(t, e, lifecycle.TaskRequest{Workflow: wf, Input: 2}, 20)
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	ce := startEngine(t, lifecycle.EngineConfig{Workers: 1}, lifecycle.Settings{Publisher: rec, Workflows: blockingWorkflow(t, started, release)})
	h, err := ce.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "blocking"})
	require.NoError(t, err)
	<-started
	h.Cancel("")
	waitFor(t, rec, events.StepCancelled, 2)
	close(release)
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, lifecycle.ErrCancelled)
	require.NoError(t, e.Shutdown(context.Background()))
	require.NoError(t, ce.Shutdown(context.Background()))

	seen := map[string]bool{}
	for _, ev := range rec.snapshot() {
		s, ok := events.Lookup(ev.Name)
		require.True(t, ok, ev.Name)
		require.NoError(t, s.Check(&ev))
		for _, a := range ev.Attrs {
			_, ok := s.Field(a.Key)
			require.True(t, ok, "%s has a field %q the catalog does not list", ev.Name, a.Key)
		}
		require.False(t, ev.CorrelationID.IsZero(), ev.Name)
		seen[ev.Name] = true
	}
	var missing []string
	for _, name := range requiredEvents() {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	require.Empty(t, missing, "events the engine never published")
}

package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

func TestEngineEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      lifecycle.EngineConfig
		req      lifecycle.TaskRequest
		tasks    int
		want     map[string]int
		failed   bool                // every task fails
		claimVia lifecycle.ClaimMode // if set, every claim uses it
	}{
		{
			name:  "mathematical_sequence",
			req:   lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2},
			tasks: 26,
			want: map[string]int{
				events.TaskInitializeRequested: 26, events.TaskInitialized: 26,
				events.StepEnqueued: 104, events.StepClaimed: 104, events.StepExecutionStarted: 104,
				events.StepCompleted: 104, events.StepResultSubmitted: 104, events.StepResultProcessed: 104,
				events.TaskFinalized: 26, events.TaskCompleted: 26,
				events.TaskStateTransitioned: 104, events.ObservabilityTaskEnqueue: 26, events.ObservabilityTaskFinalize: 26,
				events.ObservabilityStepFindViable: 130, events.WorkflowViableStepsDiscovered: 104,
			},
		},
		{
			name:  "mathematical_sequence on one worker with a queue of one",
			cfg:   lifecycle.EngineConfig{Workers: 1, QueueDepth: 1},
			req:   lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Namespace: lifecycle.NamespaceLinear, Input: 14},
			tasks: 26,
			want: map[string]int{
				events.TaskInitializeRequested: 26, events.TaskInitialized: 26,
				events.StepEnqueued: 104, events.StepClaimed: 104, events.StepExecutionStarted: 104,
				events.StepCompleted: 104, events.StepResultSubmitted: 104, events.StepResultProcessed: 104,
				events.TaskFinalized: 26, events.TaskCompleted: 26,
				events.TaskStateTransitioned: 104, events.ObservabilityTaskEnqueue: 26, events.ObservabilityTaskFinalize: 26,
				events.ObservabilityStepFindViable: 130, events.WorkflowViableStepsDiscovered: 104,
			},
		},
		{
			name:     "mathematical_sequence polled",
			cfg:      lifecycle.EngineConfig{ClaimMode: lifecycle.ClaimModePoll, PollInterval: time.Millisecond},
			req:      lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: -4},
			tasks:    5,
			claimVia: lifecycle.ClaimModePoll,
			want: map[string]int{
				events.TaskInitializeRequested: 5, events.TaskInitialized: 5,
				events.StepEnqueued: 20, events.StepClaimed: 20, events.StepExecutionStarted: 20,
				events.StepCompleted: 20, events.StepResultSubmitted: 20, events.StepResultProcessed: 20,
				events.TaskFinalized: 5, events.TaskCompleted: 5,
				events.TaskStateTransitioned: 20, events.ObservabilityTaskEnqueue: 5, events.ObservabilityTaskFinalize: 5,
				events.ObservabilityStepFindViable: 25, events.WorkflowViableStepsDiscovered: 20,
			},
		},
		{
			name:   "mathematical_sequence failing",
			cfg:    lifecycle.EngineConfig{FailRate: 1, MaxAttempts: 1},
			req:    lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2},
			tasks:  26,
			failed: true,
			want: map[string]int{
				events.TaskInitializeRequested: 26, events.TaskInitialized: 26,
				events.StepEnqueued: 26, events.StepClaimed: 26, events.StepExecutionStarted: 26,
				events.StepFailed: 26, events.StepResultSubmitted: 26, events.StepResultProcessed: 26,
				events.TaskFinalized: 26, events.TaskFailed: 26,
				events.TaskStateTransitioned: 104, events.ObservabilityTaskEnqueue: 26, events.ObservabilityTaskFinalize: 26,
				events.ObservabilityStepFindViable: 26, events.WorkflowViableStepsDiscovered: 26,
				events.ObservabilityStepSkip: 78,
			},
		},
		{
			name:  "diamond_pattern",
			cfg:   lifecycle.EngineConfig{Workers: 4},
			req:   lifecycle.TaskRequest{Workflow: lifecycle.WorkflowDiamondPattern, Input: 6},
			tasks: 10,
			want: map[string]int{
				events.TaskInitializeRequested: 10, events.TaskInitialized: 10,
				events.StepEnqueued: 40, events.StepClaimed: 40, events.StepExecutionStarted: 40,
				events.StepCompleted: 40, events.StepResultSubmitted: 40, events.StepResultProcessed: 40,
				events.TaskFinalized: 10, events.TaskCompleted: 10,
				events.TaskStateTransitioned: 40, events.ObservabilityTaskEnqueue: 10, events.ObservabilityTaskFinalize: 10,
				events.ObservabilityStepFindViable: 50, events.WorkflowViableStepsDiscovered: 30, events.WorkflowNoViableSteps: 10,
			},
		},
		{
			name:   "diamond_pattern failing",
			cfg:    lifecycle.EngineConfig{FailRate: 1, MaxAttempts: 1},
			req:    lifecycle.TaskRequest{Workflow: lifecycle.WorkflowDiamondPattern, Input: 2},
			tasks:  3,
			failed: true,
			want: map[string]int{
				events.TaskInitializeRequested: 3, events.TaskInitialized: 3,
				events.StepEnqueued: 3, events.StepClaimed: 3, events.StepExecutionStarted: 3,
				events.StepFailed: 3, events.StepResultSubmitted: 3, events.StepResultProcessed: 3,
				events.TaskFinalized: 3, events.TaskFailed: 3,
				events.TaskStateTransitioned: 12, events.ObservabilityTaskEnqueue: 3, events.ObservabilityTaskFinalize: 3,
				events.ObservabilityStepFindViable: 3, events.WorkflowViableStepsDiscovered: 3,
				events.ObservabilityStepSkip: 9,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			e := startEngine(t, tt.cfg, lifecycle.Settings{Publisher: rec})
			hs := submitAll(t, e, tt.req, tt.tasks)
			evs := taskScoped(rec.snapshot())

			got := countByName(evs)
			if tt.failed {
				// Whether the last attempt counts as exhausting the retries
				// depends on the drawn error type.
				require.Equal(t, tt.tasks, got[events.ObservabilityStepMaxRetriesReached]+countErrorType(evs, lifecycle.ErrorTypeValidation))
				delete(got, events.ObservabilityStepMaxRetriesReached)
			}
			require.Equal(t, tt.want, got)
			wf, ok := e.Workflows().Workflow(tt.req.Workflow)
			require.True(t, ok)
			want, err := e.Workflows().ExpectedResult(tt.req.Workflow, tt.req.Input)
			require.NoError(t, err)

			byTask := map[string][]events.Event{}
			for _, ev := range evs {
				require.NoError(t, ev.Validate(), "%s", ev.Name)
				uuid := attr(t, ev, "task_uuid").Str()
				byTask[uuid] = append(byTask[uuid], ev)
				require.Equal(t, wf.Namespace, attr(t, ev, "namespace").Str())
				if tt.claimVia != "" && ev.Name == events.StepClaimed {
					require.Equal(t, string(tt.claimVia), attr(t, ev, "claim_method").Str())
				}
			}
			require.Len(t, byTask, tt.tasks)
			if tt.claimVia == "" {
				// Event mode polls only when a worker idles for a whole
				// PollInterval, so nearly every claim is an event claim.
				methods := map[string]int{}
				for _, ev := range evs {
					if ev.Name == events.StepClaimed {
						methods[attr(t, ev, "claim_method").Str()]++
					}
				}
				require.Greater(t, methods["event"], methods["poll"], "%v", methods)
			}

			for _, h := range hs {
				select {
				case <-h.Done():
				default:
					t.Fatal("Wait returned before a task was done")
				}
				res, err := h.Wait(context.Background())
				require.Equal(t, h.ID(), res.TaskUUID)
				require.Equal(t, h.CorrelationID(), res.CorrelationID)
				require.Equal(t, wf.Namespace, res.Namespace)
				require.Equal(t, want, res.Expected)
				taskEvents := byTask[h.ID().String()]
				for _, ev := range taskEvents {
					require.Equal(t, h.CorrelationID(), ev.CorrelationID, "%s", ev.Name)
				}
				last := taskEvents[len(taskEvents)-1]
				if tt.failed {
					var te *lifecycle.TaskError
					require.ErrorAs(t, err, &te)
					require.ErrorIs(t, err, lifecycle.ErrInjectedFailure)
					require.Contains(t, []string{lifecycle.ErrorTypeHandler, lifecycle.ErrorTypeTimeout, lifecycle.ErrorTypeValidation}, te.Type)
					require.Equal(t, wf.Steps[0].Name, te.Step)
					require.Equal(t, events.TaskFailed, last.Name)
					require.Equal(t, te.Type, attr(t, last, "error_type").Str())
					require.Equal(t, lifecycle.TaskStateError, res.State)
					require.Equal(t, "error", attr(t, taskEvents[len(taskEvents)-2], "final_state").Str())
				} else {
					require.NoError(t, err)
					require.Equal(t, want, res.Value)
					require.Equal(t, events.TaskCompleted, last.Name)
					require.Equal(t, int64(len(wf.Steps)), attr(t, last, "step_count").Int64())
					require.Equal(t, "complete", attr(t, taskEvents[len(taskEvents)-2], "final_state").Str())
					require.Equal(t, lifecycle.TaskStateComplete, res.State)
				}
			}

			st := e.Stats()
			require.Equal(t, uint64(tt.tasks), st.TasksSubmitted)
			require.Zero(t, st.PublishErrors)
			if tt.failed {
				require.Equal(t, uint64(tt.tasks), st.TasksFailed)
				require.Equal(t, uint64(tt.tasks), st.StepsFailed)
				require.Zero(t, st.StepsSucceeded)
			} else {
				require.Equal(t, uint64(tt.tasks), st.TasksCompleted)
				require.Equal(t, uint64(tt.tasks*len(wf.Steps)), st.StepsSucceeded)
				require.Zero(t, st.StepsFailed)
			}
		})
	}
}

// TestEngineEventOrder checks that each task's events reach the Publisher in
// causal order: per step enqueued → claimed → started → completed → submitted
// → processed, and a step starts only after every dependency was processed.
func TestEngineEventOrder(t *testing.T) {
	t.Parallel()
	for _, workflow := range []string{lifecycle.WorkflowDiamondPattern, lifecycle.WorkflowMathematicalSequence} {
		t.Run(workflow, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			e := startEngine(t, lifecycle.EngineConfig{Workers: 4}, lifecycle.Settings{Publisher: rec})
			submitAll(t, e, lifecycle.TaskRequest{Workflow: workflow, Input: 2}, 20)
			wf, _ := e.Workflows().Workflow(workflow)

			// pos[task][step][event name] is the event's index in publish order.
			pos := map[string]map[string]map[string]int{}
			taskPos := map[string]map[string]int{}
			for i, ev := range taskScoped(rec.snapshot()) {
				task := attr(t, ev, "task_uuid").Str()
				if pos[task] == nil {
					pos[task], taskPos[task] = map[string]map[string]int{}, map[string]int{}
				}
				if _, ok := ev.Attr("step_uuid"); !ok {
					taskPos[task][ev.Name] = i
					continue
				}
				step := attr(t, ev, "step_name").Str()
				if pos[task][step] == nil {
					pos[task][step] = map[string]int{}
				}
				_, dup := pos[task][step][ev.Name]
				require.False(t, dup, "%s published twice for %s", ev.Name, step)
				pos[task][step][ev.Name] = i
			}
			stepOrder := []string{
				events.StepEnqueued, events.StepClaimed, events.StepExecutionStarted,
				events.StepCompleted, events.StepResultSubmitted, events.StepResultProcessed,
			}
			for task, steps := range pos {
				tp := taskPos[task]
				require.Less(t, tp[events.TaskInitializeRequested], tp[events.TaskInitialized])
				require.Less(t, tp[events.TaskFinalized], tp[events.TaskCompleted])
				for _, s := range wf.Steps {
					p := steps[s.Name]
					require.Len(t, p, len(stepOrder))
					require.Less(t, tp[events.TaskInitialized], p[events.StepEnqueued])
					require.Less(t, p[events.StepResultProcessed], tp[events.TaskFinalized])
					for k := 1; k < len(stepOrder); k++ {
						require.Less(t, p[stepOrder[k-1]], p[stepOrder[k]], "%s: %s before %s", s.Name, stepOrder[k-1], stepOrder[k])
					}
					for _, d := range s.DependsOn {
						require.Less(t, steps[d][events.StepResultProcessed], p[events.StepExecutionStarted],
							"%s started before its dependency %s was processed", s.Name, d)
					}
				}
			}
		})
	}
}

func TestEnginePublishErrorsDoNotStopTasks(t *testing.T) {
	t.Parallel()
	var calls sync.Mutex
	n := 0
	rec := &recorder{Fail: func(events.Event) error {
		calls.Lock()
		defer calls.Unlock()
		if n++; n%2 == 0 {
			return errors.New("bus down")
		}
		return nil
	}}
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: rec})
	hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}, 26)
	for _, h := range hs {
		res, err := h.Wait(context.Background())
		require.NoError(t, err)
		require.Equal(t, int64(65536), res.Value)
	}
	require.NoError(t, e.Shutdown(context.Background())) // no event after this
	// Per task: 2 initialization, 6 per step, 2 finalization, 4 transitions,
	// 1 enqueue, 5 searches (4 fruitful), 1 finalize summary.
	require.Len(t, taskScoped(rec.snapshot()), 26*(2+4*6+2+4+1+5+4+1))
	published := len(rec.snapshot())
	require.Equal(t, uint64(published/2), e.PublishErrors())
	require.Equal(t, e.PublishErrors(), e.Stats().PublishErrors)
	require.Equal(t, uint64(26), e.Stats().TasksCompleted)
}

func TestEngineFailureInjectionIsReproducible(t *testing.T) {
	t.Parallel()
	type outcome struct {
		failed []bool
		stats  lifecycle.Stats
	}
	run := func() outcome {
		e := startEngine(t, lifecycle.EngineConfig{FailRate: 0.3, BackoffBase: time.Microsecond}, lifecycle.Settings{
			Publisher: nopPublisher{},
			Rand:      rand.New(rand.NewPCG(1, 2)),
		})
		hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}, 40)
		failed := make([]bool, len(hs))
		for i, h := range hs {
			_, err := h.Wait(context.Background())
			failed[i] = err != nil
			if err != nil {
				require.ErrorIs(t, err, lifecycle.ErrInjectedFailure)
			}
		}
		st := e.Stats()
		require.Equal(t, st.StepAttempts, st.StepsSucceeded+st.StepsFailed)
		require.Equal(t, st.StepsFailed, st.StepRetries+st.TasksFailed, "a failed attempt is retried or fails its task")
		require.Equal(t, st.TasksSubmitted, st.TasksCompleted+st.TasksFailed)
		return outcome{failed, lifecycle.Stats{
			StepAttempts: st.StepAttempts, StepsFailed: st.StepsFailed, StepRetries: st.StepRetries,
			MaxRetriesReached: st.MaxRetriesReached, TasksFailed: st.TasksFailed,
		}}
	}
	first := run()
	require.Contains(t, first.failed, true)
	require.Contains(t, first.failed, false)
	require.Positive(t, first.stats.StepRetries)
	require.Equal(t, first, run())
}

func TestEngineTaskFailures(t *testing.T) {
	t.Parallel()
	square := func(_ context.Context, in lifecycle.StepInput) (int64, error) { return in.Input * in.Input, nil }
	tests := []struct {
		name     string
		wf       lifecycle.Workflow
		wantType string
		wantStep string
		want     map[string]int
	}{
		{
			name: "result mismatch",
			wf: lifecycle.Workflow{
				Name: "wrong", Namespace: "test",
				Steps:  []lifecycle.Step{{Name: "square", Handler: square}},
				Expect: func(n int64) (int64, error) { return n * n * n, nil },
			},
			wantType: lifecycle.ErrorTypeResultMismatch,
			want: map[string]int{
				events.TaskInitializeRequested: 1, events.TaskInitialized: 1,
				events.StepEnqueued: 1, events.StepClaimed: 1, events.StepExecutionStarted: 1,
				events.StepCompleted: 1, events.StepResultSubmitted: 1, events.StepResultProcessed: 1,
				events.TaskFinalized: 1, events.TaskFailed: 1,
			},
		},
		{
			name: "handler panic",
			wf: lifecycle.Workflow{
				Name: "panics", Namespace: "test",
				Steps: []lifecycle.Step{
					{Name: "first", Handler: square},
					{Name: "boom", DependsOn: []string{"first"}, Handler: func(context.Context, lifecycle.StepInput) (int64, error) { panic("boom") }},
					{Name: "never", DependsOn: []string{"boom"}, Handler: square},
				},
			},
			wantType: lifecycle.ErrorTypePanic,
			wantStep: "boom",
			want: map[string]int{
				events.TaskInitializeRequested: 1, events.TaskInitialized: 1,
				events.StepEnqueued: 2, events.StepClaimed: 2, events.StepExecutionStarted: 2,
				events.StepCompleted: 1, events.StepFailed: 1, events.StepResultSubmitted: 2, events.StepResultProcessed: 2,
				events.TaskFinalized: 1, events.TaskFailed: 1,
			},
		},
		{
			name: "handler error beside a running sibling",
			wf: lifecycle.Workflow{
				Name: "fork", Namespace: "test",
				Steps: []lifecycle.Step{
					{Name: "ok", Handler: square},
					{Name: "bad", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
						return 0, fmt.Errorf("no: %w", lifecycle.ErrPermanent)
					}},
					{Name: "join", DependsOn: []string{"ok", "bad"}, Handler: square},
				},
			},
			wantType: lifecycle.ErrorTypeHandler,
			wantStep: "bad",
			want: map[string]int{
				events.TaskInitializeRequested: 1, events.TaskInitialized: 1,
				events.StepEnqueued: 2, events.StepClaimed: 2, events.StepExecutionStarted: 2,
				events.StepCompleted: 1, events.StepFailed: 1, events.StepResultSubmitted: 2, events.StepResultProcessed: 2,
				events.TaskFinalized: 1, events.TaskFailed: 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, err := lifecycle.NewRegistry(tt.wf)
			require.NoError(t, err)
			rec := &recorder{}
			e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: rec, Workflows: reg})
			hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: tt.wf.Name, Input: 3}, 1)
			_, err = hs[0].Wait(context.Background())
			var te *lifecycle.TaskError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tt.wantType, te.Type)
			require.Equal(t, tt.wantStep, te.Step)

			evs := taskScoped(rec.snapshot())
			require.Equal(t, tt.want, countOnly(evs, tt.want))
			for _, ev := range evs {
				require.NoError(t, ev.Validate())
			}
			last := evs[len(evs)-1]
			require.Equal(t, events.TaskFailed, last.Name)
			require.Equal(t, tt.wantType, attr(t, last, "error_type").Str())
		})
	}
}

func TestEngineInjectedClock(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clock := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { // every reading is one millisecond later
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Millisecond)
		return clock
	}
	rec := &recorder{}
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: rec, Now: now})
	hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}, 3)
	for _, ev := range rec.snapshot() {
		require.Equal(t, 2025, ev.Time.Year())
		require.Equal(t, ev.Time.UnixMilli(), ev.ID.Time().UnixMilli())
		if d, ok := ev.Attr("duration_ms"); ok {
			ms := d.Float64()
			require.Positive(t, ms, ev.Name)
			require.Equal(t, float64(int64(ms)), ms, "%s: whole clock ticks", ev.Name)
		}
	}
	res, err := hs[0].Wait(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.Duration)
}

func TestEngineLifecycle(t *testing.T) {
	t.Parallel()
	req := lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}
	tests := []struct {
		name string
		run  func(t *testing.T, e *lifecycle.Engine)
	}{
		{
			name: "shutdown before start",
			run: func(t *testing.T, e *lifecycle.Engine) {
				ctx := context.Background()
				require.NoError(t, e.Shutdown(ctx))
				require.NoError(t, e.Shutdown(ctx))
				require.ErrorIs(t, e.Start(ctx), lifecycle.ErrShutdown)
				_, err := e.Submit(ctx, req)
				require.ErrorIs(t, err, lifecycle.ErrShutdown)
				require.NoError(t, e.Wait(ctx))
			},
		},
		{
			name: "submit before start",
			run: func(t *testing.T, e *lifecycle.Engine) {
				_, err := e.Submit(context.Background(), req)
				require.ErrorIs(t, err, lifecycle.ErrNotStarted)
				require.NoError(t, e.Shutdown(context.Background()))
			},
		},
		{
			name: "start twice, shut down twice and concurrently",
			run: func(t *testing.T, e *lifecycle.Engine) {
				ctx := context.Background()
				require.NoError(t, e.Start(ctx))
				require.ErrorIs(t, e.Start(ctx), lifecycle.ErrAlreadyStarted)
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() { require.NoError(t, e.Shutdown(ctx)) })
				}
				wg.Wait()
				require.NoError(t, e.Shutdown(ctx))
				require.ErrorIs(t, e.Start(ctx), lifecycle.ErrShutdown)
				_, err := e.Submit(ctx, req)
				require.ErrorIs(t, err, lifecycle.ErrShutdown)
			},
		},
		{
			name: "shutdown drains submitted tasks",
			run: func(t *testing.T, e *lifecycle.Engine) {
				ctx := context.Background()
				require.NoError(t, e.Start(ctx))
				var hs []*lifecycle.TaskHandle
				for range 26 {
					h, err := e.Submit(ctx, req)
					require.NoError(t, err)
					hs = append(hs, h)
				}
				require.NoError(t, e.Shutdown(ctx))
				for _, h := range hs {
					res, err := h.Wait(ctx)
					require.NoError(t, err)
					require.Equal(t, int64(65536), res.Value)
				}
				require.NoError(t, e.Wait(ctx))
				require.Equal(t, uint64(26), e.Stats().TasksCompleted)
			},
		},
		{
			name: "start with a cancelled context",
			run: func(t *testing.T, e *lifecycle.Engine) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				require.ErrorIs(t, e.Start(ctx), context.Canceled)
				require.NoError(t, e.Shutdown(context.Background()))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := lifecycle.New(lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: &recorder{}})
			require.NoError(t, err)
			tt.run(t, e)
		})
	}
}

// TestEngineShutdownDeadline checks that Shutdown honours its context when a
// task cannot finish, and that the abandoned task and Wait report ErrShutdown.
func TestEngineShutdownDeadline(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
		Name: "stuck", Namespace: "test",
		Steps: []lifecycle.Step{{Name: "block", Handler: func(ctx context.Context, _ lifecycle.StepInput) (int64, error) {
			close(started)
			<-ctx.Done() // released only when Shutdown gives up
			return 0, ctx.Err()
		}}},
	})
	require.NoError(t, err)
	e, err := lifecycle.New(lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: &recorder{}, Workflows: reg})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "stuck"})
	require.NoError(t, err)
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.Shutdown(ctx), context.DeadlineExceeded)
	require.NoError(t, e.Shutdown(context.Background()), "a later call waits for the goroutines")

	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, lifecycle.ErrShutdown)
	require.ErrorIs(t, e.Wait(context.Background()), lifecycle.ErrShutdown)
}

func TestEngineWaitHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
		Name: "gated", Namespace: "test",
		Steps: []lifecycle.Step{{Name: "gate", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
			<-release
			return 1, nil
		}}},
	})
	require.NoError(t, err)
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: &recorder{}, Workflows: reg})
	h, err := e.Submit(context.Background(), lifecycle.TaskRequest{Workflow: "gated"})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, e.Wait(ctx), context.Canceled)
	_, err = h.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)

	close(release)
	res, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Value)
}

func TestEngineSubmitErrors(t *testing.T) {
	t.Parallel()
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: &recorder{}})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		req  lifecycle.TaskRequest
		want error
	}{
		{"unknown workflow", context.Background(), lifecycle.TaskRequest{Workflow: "nope", Input: 2}, lifecycle.ErrUnknownWorkflow},
		{"wrong namespace", context.Background(), lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Namespace: lifecycle.NamespaceDiamond, Input: 2}, lifecycle.ErrUnknownWorkflow},
		{"odd input", context.Background(), lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 3}, lifecycle.ErrInvalidInput},
		{"overflowing input", context.Background(), lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 16}, lifecycle.ErrInvalidInput},
		{"cancelled context", cancelled, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := e.Submit(tt.ctx, tt.req)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, h)
		})
	}
}

func TestEngineCorrelationIDFromRequest(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := startEngine(t, lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: rec})
	corr := events.NewID()
	hs := submitAll(t, e, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowDiamondPattern, Input: 2, CorrelationID: corr}, 1)
	require.Equal(t, corr, hs[0].CorrelationID())
	evs := taskScoped(rec.snapshot())
	require.NotEmpty(t, evs)
	require.True(t, slices.ContainsFunc(evs, func(ev events.Event) bool { return ev.Name == events.TaskCompleted }))
	for _, ev := range evs {
		require.Equal(t, corr, ev.CorrelationID)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     lifecycle.EngineConfig
		set     lifecycle.Settings
		wantErr string
	}{
		{name: "defaults", set: lifecycle.Settings{Publisher: nopPublisher{}}},
		{name: "no publisher", wantErr: "settings: Publisher must not be nil"},
		{name: "bad config", cfg: lifecycle.EngineConfig{Workers: -1}, set: lifecycle.Settings{Publisher: nopPublisher{}}, wantErr: "workers: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := lifecycle.New(tt.cfg, tt.set)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, e)
				return
			}
			require.NoError(t, err)
			require.NoError(t, e.Shutdown(context.Background()))
		})
	}
}

package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// ExampleNew runs 26 tasks of the default workflow and waits for them all.
func ExampleNew() {
	e, err := lifecycle.New(lifecycle.EngineConfig{Workers: 4}, lifecycle.Settings{
		Publisher: nopPublisher{}, // in a service: a *bus.Publisher
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = e.Shutdown(sctx)
	}()

	for range 26 {
		if _, err := e.Submit(ctx, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := e.Wait(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := e.Stats()
	fmt.Printf("tasks completed %d of %d, steps succeeded %d\n", st.TasksCompleted, st.TasksSubmitted, st.StepsSucceeded)
	// Output: tasks completed 26 of 26, steps succeeded 104
}

// ExampleEngine_Submit submits one task and waits for its result.
func ExampleEngine_Submit() {
	e, err := lifecycle.New(lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: nopPublisher{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = e.Shutdown(ctx) }()

	h, err := e.Submit(ctx, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowDiamondPattern, Input: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := h.Wait(ctx)
	fmt.Println(res.Workflow, res.Namespace, res.Value, res.Value == res.Expected, err)

	_, err = e.Submit(ctx, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 3})
	fmt.Println(err)
	// Output:
	// diamond_pattern rust_e2e_diamond 256 true <nil>
	// lifecycle: submit mathematical_sequence: invalid input: input 3 must be even
}

// ExampleTaskHandle_Cancel cancels a task whose first step is still running:
// the running step finishes, the others never run.
func ExampleTaskHandle_Cancel() {
	release := make(chan struct{})
	started := make(chan struct{})
	// The running step is let go once orchestration has taken the request.
	pub := publisherFunc(func(_ context.Context, ev events.Event) error {
		if ev.Name == events.TaskCancelRequested {
			close(release)
		}
		return nil
	})
	reg, err := lifecycle.NewRegistry(lifecycle.Workflow{
		Name: "slow", Namespace: "example",
		Steps: []lifecycle.Step{
			{Name: "wait", Handler: func(context.Context, lifecycle.StepInput) (int64, error) {
				close(started)
				<-release
				return 1, nil
			}},
			{Name: "after", DependsOn: []string{"wait"}, Handler: func(context.Context, lifecycle.StepInput) (int64, error) { return 2, nil }},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := lifecycle.New(lifecycle.EngineConfig{}, lifecycle.Settings{Publisher: pub, Workflows: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = e.Shutdown(ctx) }()

	h, err := e.Submit(ctx, lifecycle.TaskRequest{Workflow: "slow"})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-started
	h.Cancel(lifecycle.CancelReasonRequested)
	res, err := h.Wait(ctx)
	fmt.Println(res.State, errors.Is(err, lifecycle.ErrCancelled), e.Stats().StepAttempts)
	// Output: cancelled true 1
}

// ExampleEngine_Stats shows retries at work: every attempt may fail, and
// failed attempts are retried up to MaxAttempts.
func ExampleEngine_Stats() {
	e, err := lifecycle.New(lifecycle.EngineConfig{FailRate: 0.3, MaxAttempts: 3, BackoffBase: time.Millisecond},
		lifecycle.Settings{Publisher: nopPublisher{}, Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = e.Shutdown(ctx) }()
	for range 20 {
		if _, err := e.Submit(ctx, lifecycle.TaskRequest{Workflow: lifecycle.WorkflowMathematicalSequence, Input: 2}); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := e.Wait(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := e.Stats()
	fmt.Println(st.TasksCompleted+st.TasksFailed == 20, st.StepAttempts == st.StepsSucceeded+st.StepsFailed, st.StepRetries > 0)
	// Output: true true true
}

package lifecycle_test

import (
	"context"
	"fmt"
	"time"

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

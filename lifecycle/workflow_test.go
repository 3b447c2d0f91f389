package lifecycle_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/lifecycle"
)

func TestBuiltinWorkflows(t *testing.T) {
	t.Parallel()
	reg, err := lifecycle.NewRegistry(lifecycle.BuiltinWorkflows()...)
	require.NoError(t, err)
	require.Equal(t, []string{lifecycle.WorkflowMathematicalSequence, lifecycle.WorkflowDiamondPattern}, reg.Names())
	require.Equal(t, []string{lifecycle.NamespaceLinear, lifecycle.NamespaceDiamond}, reg.Namespaces())

	wf, ok := reg.Workflow(lifecycle.WorkflowMathematicalSequence)
	require.True(t, ok)
	var names []string
	for _, s := range wf.Steps {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"linear_step_1", "linear_step_2", "linear_step_3", "linear_step_4"}, names)
}

func TestExpectedResult(t *testing.T) {
	t.Parallel()
	reg := lifecycle.NewDefaultRegistry()
	pow := func(n int64, k int) int64 {
		v := int64(1)
		for range k {
			v *= n
		}
		return v
	}
	tests := []struct {
		name     string
		workflow string
		input    int64
		want     int64
		wantErr  error
	}{
		{"linear 2", lifecycle.WorkflowMathematicalSequence, 2, 65536, nil},
		{"linear 0", lifecycle.WorkflowMathematicalSequence, 0, 0, nil},
		{"linear -2", lifecycle.WorkflowMathematicalSequence, -2, 65536, nil},
		{"linear 14, the largest", lifecycle.WorkflowMathematicalSequence, 14, pow(14, 16), nil},
		{"linear 16 overflows", lifecycle.WorkflowMathematicalSequence, 16, 0, lifecycle.ErrInvalidInput},
		{"linear odd", lifecycle.WorkflowMathematicalSequence, 7, 0, lifecycle.ErrInvalidInput},
		{"linear min int", lifecycle.WorkflowMathematicalSequence, math.MinInt64, 0, lifecycle.ErrInvalidInput},
		{"diamond 2", lifecycle.WorkflowDiamondPattern, 2, 256, nil},
		{"diamond 234, the largest", lifecycle.WorkflowDiamondPattern, 234, pow(234, 8), nil},
		{"diamond 236 overflows", lifecycle.WorkflowDiamondPattern, 236, 0, lifecycle.ErrInvalidInput},
		{"unknown", "nope", 2, 0, lifecycle.ErrUnknownWorkflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := reg.ExpectedResult(tt.workflow, tt.input)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewRegistryErrors(t *testing.T) {
	t.Parallel()
	h := func(context.Context, lifecycle.StepInput) (int64, error) { return 0, nil }
	tests := []struct {
		name      string
		workflows []lifecycle.Workflow
		wantPaths []string
		wantMsg   string
	}{
		{
			name:      "empty workflow",
			workflows: []lifecycle.Workflow{{}},
			wantPaths: []string{"workflows[0].name", "workflows[0].namespace", "workflows[0].steps"},
		},
		{
			name: "duplicate workflow",
			workflows: []lifecycle.Workflow{
				{Name: "a", Namespace: "n", Steps: []lifecycle.Step{{Name: "s", Handler: h}}},
				{Name: "a", Namespace: "n", Steps: []lifecycle.Step{{Name: "s", Handler: h}}},
			},
			wantPaths: []string{"workflows[1].name"},
		},
		{
			name: "bad steps",
			workflows: []lifecycle.Workflow{{Name: "a", Namespace: "n", Steps: []lifecycle.Step{
				{Name: "s", Handler: h},
				{Name: "s", DependsOn: []string{"s"}, Handler: h},
				{Name: "", DependsOn: []string{"later"}},
				{Name: "t", DependsOn: []string{"s", "s"}, Handler: h},
			}}},
			wantPaths: []string{
				"workflows[0].steps[1].name",
				"workflows[0].steps[2].name", "workflows[0].steps[2].handler", "workflows[0].steps[2].depends_on[0]",
				"workflows[0].steps[3].depends_on[1]",
				"workflows[0].steps[1]", "workflows[0].steps[2]",
			},
		},
		{
			name: "dangling step",
			workflows: []lifecycle.Workflow{{Name: "a", Namespace: "n", Steps: []lifecycle.Step{
				{Name: "root", Handler: h},
				{Name: "dangling", DependsOn: []string{"root"}, Handler: h},
				{Name: "last", DependsOn: []string{"root"}, Handler: h},
			}}},
			wantPaths: []string{"workflows[0].steps[1]"},
			wantMsg:   `lifecycle: registry: workflows[0].steps[1]: step "dangling" leads nowhere: only the last step may have no dependents`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, err := lifecycle.NewRegistry(tt.workflows...)
			require.Nil(t, reg)
			require.Equal(t, tt.wantPaths, fieldPaths(err))
			if tt.wantMsg != "" {
				require.EqualError(t, err, tt.wantMsg)
			}
		})
	}
}

package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Built-in workflow names and namespaces.
const (
	// WorkflowMathematicalSequence squares an even input four times in a
	// line (linear_step_1 → … → linear_step_4), so its result is n^16.
	WorkflowMathematicalSequence = "mathematical_sequence"
	// NamespaceLinear is mathematical_sequence's namespace.
	NamespaceLinear = "rust_e2e_linear"
	// WorkflowDiamondPattern squares an even input (diamond_start), squares
	// that in two parallel branches (diamond_branch_b, diamond_branch_c) and
	// multiplies the branches (diamond_end), so its result is n^8.
	WorkflowDiamondPattern = "diamond_pattern"
	// NamespaceDiamond is diamond_pattern's namespace.
	NamespaceDiamond = "rust_e2e_diamond"
)

// errOverflow reports a result outside int64. Results are int64 rather than
// math/big so that a step is allocation-free; Expect rejects inputs whose
// result would overflow (|n| ≤ 14 for mathematical_sequence, |n| ≤ 234 for
// diamond_pattern), so the handlers' checks are a second line of defence.
var errOverflow = errors.New("result overflows int64")

// BuiltinWorkflows returns fresh copies of the built-in workflows, for
// NewRegistry(append(BuiltinWorkflows(), mine...)...).
func BuiltinWorkflows() []Workflow {
	return []Workflow{
		{
			Name:      WorkflowMathematicalSequence,
			Namespace: NamespaceLinear,
			Steps: []Step{
				{Name: "linear_step_1", Handler: squareInput},
				{Name: "linear_step_2", DependsOn: []string{"linear_step_1"}, Handler: squareDep},
				{Name: "linear_step_3", DependsOn: []string{"linear_step_2"}, Handler: squareDep},
				{Name: "linear_step_4", DependsOn: []string{"linear_step_3"}, Handler: squareDep},
			},
			Expect: func(n int64) (int64, error) { return evenPower(n, 4) },
		},
		{
			Name:      WorkflowDiamondPattern,
			Namespace: NamespaceDiamond,
			Steps: []Step{
				{Name: "diamond_start", Handler: squareInput},
				{Name: "diamond_branch_b", DependsOn: []string{"diamond_start"}, Handler: squareDep},
				{Name: "diamond_branch_c", DependsOn: []string{"diamond_start"}, Handler: squareDep},
				{Name: "diamond_end", DependsOn: []string{"diamond_branch_b", "diamond_branch_c"}, Handler: multiplyDeps},
			},
			Expect: func(n int64) (int64, error) { return evenPower(n, 3) },
		},
	}
}

// evenPower returns n squared squarings times (n^(2^squarings)) for an even n.
func evenPower(n int64, squarings int) (int64, error) {
	if n%2 != 0 {
		return 0, fmt.Errorf("input %d must be even", n)
	}
	v := n
	for range squarings {
		var err error
		if v, err = mul(v, v); err != nil {
			return 0, fmt.Errorf("input %d: %w", n, err)
		}
	}
	return v, nil
}

func squareInput(_ context.Context, in StepInput) (int64, error) { return mul(in.Input, in.Input) }

func squareDep(_ context.Context, in StepInput) (int64, error) {
	if len(in.Deps) != 1 {
		return 0, fmt.Errorf("want 1 dependency result, got %d", len(in.Deps))
	}
	return mul(in.Deps[0], in.Deps[0])
}

func multiplyDeps(_ context.Context, in StepInput) (int64, error) {
	if len(in.Deps) != 2 {
		return 0, fmt.Errorf("want 2 dependency results, got %d", len(in.Deps))
	}
	return mul(in.Deps[0], in.Deps[1])
}

// mul multiplies a and b, failing rather than wrapping on overflow.
func mul(a, b int64) (int64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, fmt.Errorf("%d × %d: %w", a, b, errOverflow)
	}
	return c, nil
}

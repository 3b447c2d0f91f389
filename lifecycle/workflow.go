package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// StepHandler runs one step. It must honour ctx, which is cancelled when the
// Engine stops for good, and must not keep in after returning. A returned
// error fails the step (error_type handler_error); a panic is recovered and
// fails it too (error_type handler_panic).
type StepHandler func(ctx context.Context, in StepInput) (int64, error)

// StepInput is what a step handler receives.
type StepInput struct {
	// Input is the task's input.
	Input int64
	// Deps holds the results of the step's dependencies: Deps[i] is the
	// result of DependsOn[i]. It is empty for a root step.
	Deps []int64
}

// Step is one node of a workflow's step graph.
type Step struct {
	// Name is unique within its workflow, e.g. linear_step_1.
	Name string
	// DependsOn names the steps that must succeed before this one is ready.
	// They must appear earlier in Workflow.Steps, which keeps the graph acyclic.
	DependsOn []string
	// Handler computes the step's result.
	Handler StepHandler
	// HandlerType is the handler's language, the handler_type of step
	// events and of observability.step.active_executions. Empty means
	// HandlerTypeGo.
	HandlerType string
}

// HandlerTypeGo is the handler_type of Go step handlers, the default.
const HandlerTypeGo = "go"

func (s *Step) handlerType() string {
	if s.HandlerType == "" {
		return HandlerTypeGo
	}
	return s.HandlerType
}

// Workflow is a task template: its steps form a DAG through DependsOn.
type Workflow struct {
	// Name is the task type, e.g. mathematical_sequence.
	Name string
	// Namespace names the worker queue the workflow's steps run on.
	Namespace string
	// Steps are in dependency order. The task's result is the result of the
	// last step, which every other step must lead to.
	Steps []Step
	// Expect returns the result a correct run produces for input, or an
	// error when input is not valid for the workflow, in which case Submit
	// refuses the task. A finished task whose result differs fails with
	// error_type result_mismatch. Nil accepts every input and checks nothing.
	Expect func(input int64) (int64, error)
}

// plan is a validated workflow compiled to step indexes.
type plan struct {
	wf         Workflow
	deps       [][]int // deps[i] are the indexes of step i's dependencies
	dependents [][]int // dependents[i] are the steps that depend on step i
	roots      []int
}

func (p *plan) final() int { return len(p.wf.Steps) - 1 }

// Registry is an immutable set of workflows keyed by name. It is safe for
// concurrent use.
type Registry struct {
	plans map[string]*plan
	names []string // registration order
}

// NewRegistry validates workflows and returns a registry holding copies of
// them. The error joins every problem, each a *FieldError whose path starts at
// workflows[i].
func NewRegistry(workflows ...Workflow) (*Registry, error) {
	r := &Registry{plans: make(map[string]*plan, len(workflows))}
	var errs []error
	for i, wf := range workflows {
		p, werrs := compile("workflows["+strconv.Itoa(i)+"]", wf)
		if _, dup := r.plans[wf.Name]; dup && wf.Name != "" {
			werrs = append(werrs, fieldErr("workflows["+strconv.Itoa(i)+"].name", "workflow %q is defined twice", wf.Name))
		}
		if len(werrs) > 0 {
			errs = append(errs, werrs...)
			continue
		}
		r.plans[wf.Name] = p
		r.names = append(r.names, wf.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lifecycle: registry: %w", err)
	}
	return r, nil
}

// NewDefaultRegistry returns a registry of the built-in workflows,
// mathematical_sequence and diamond_pattern.
func NewDefaultRegistry() *Registry {
	r, err := NewRegistry(BuiltinWorkflows()...)
	if err != nil {
		panic(err) // the built-ins are fixed; TestBuiltinWorkflows keeps them valid
	}
	return r
}

func compile(path string, wf Workflow) (*plan, []error) {
	var errs []error
	if wf.Name == "" {
		errs = append(errs, fieldErr(path+".name", "must not be empty"))
	}
	if wf.Namespace == "" {
		errs = append(errs, fieldErr(path+".namespace", "must not be empty"))
	}
	if len(wf.Steps) == 0 {
		errs = append(errs, fieldErr(path+".steps", "a workflow needs at least one step"))
		return nil, errs
	}
	p := &plan{
		wf:         wf,
		deps:       make([][]int, len(wf.Steps)),
		dependents: make([][]int, len(wf.Steps)),
	}
	p.wf.Steps = make([]Step, len(wf.Steps))
	index := make(map[string]int, len(wf.Steps))
	for i, s := range wf.Steps {
		sp := path + ".steps[" + strconv.Itoa(i) + "]"
		s.DependsOn = slices.Clone(s.DependsOn)
		p.wf.Steps[i] = s
		switch _, dup := index[s.Name]; {
		case s.Name == "":
			errs = append(errs, fieldErr(sp+".name", "must not be empty"))
		case dup:
			errs = append(errs, fieldErr(sp+".name", "step %q is defined twice", s.Name))
		}
		if s.Handler == nil {
			errs = append(errs, fieldErr(sp+".handler", "must not be nil"))
		}
		for j, d := range s.DependsOn {
			di, ok := index[d]
			switch {
			case !ok:
				errs = append(errs, fieldErr(sp+".depends_on["+strconv.Itoa(j)+"]", "step %q is not defined before step %q", d, s.Name))
			case slices.Contains(p.deps[i], di):
				errs = append(errs, fieldErr(sp+".depends_on["+strconv.Itoa(j)+"]", "step %q is listed twice", d))
			default:
				p.deps[i] = append(p.deps[i], di)
				p.dependents[di] = append(p.dependents[di], i)
			}
		}
		if len(s.DependsOn) == 0 {
			p.roots = append(p.roots, i)
		}
		if _, dup := index[s.Name]; !dup {
			index[s.Name] = i
		}
	}
	// The last step's result is the task's, so every step must lead to it.
	for i := range len(wf.Steps) - 1 {
		if len(p.dependents[i]) == 0 {
			errs = append(errs, fieldErr(path+".steps["+strconv.Itoa(i)+"]", "step %q leads nowhere: only the last step may have no dependents", wf.Steps[i].Name))
		}
	}
	return p, errs
}

// Workflow returns the workflow called name. Its slices are shared with the
// registry and must not be modified.
func (r *Registry) Workflow(name string) (Workflow, bool) {
	p, ok := r.plans[name]
	if !ok {
		return Workflow{}, false
	}
	return p.wf, true
}

// Names returns the workflow names in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// handlerTypes returns the distinct handler types of namespace's steps.
func (r *Registry) handlerTypes(namespace string) []string {
	var hts []string
	for _, n := range r.names {
		p := r.plans[n]
		if p.wf.Namespace != namespace {
			continue
		}
		for i := range p.wf.Steps {
			if ht := p.wf.Steps[i].handlerType(); !slices.Contains(hts, ht) {
				hts = append(hts, ht)
			}
		}
	}
	return hts
}

// Namespaces returns the distinct namespaces of the workflows, in
// registration order.
func (r *Registry) Namespaces() []string {
	var ns []string
	for _, n := range r.names {
		if w := r.plans[n].wf.Namespace; !slices.Contains(ns, w) {
			ns = append(ns, w)
		}
	}
	return ns
}

// ExpectedResult returns the result a correct run of workflow produces for
// input. It returns an error wrapping ErrUnknownWorkflow or ErrInvalidInput,
// or one saying the workflow has no Expect function.
func (r *Registry) ExpectedResult(workflow string, input int64) (int64, error) {
	p, ok := r.plans[workflow]
	if !ok {
		return 0, fmt.Errorf("lifecycle: %w %q", ErrUnknownWorkflow, workflow)
	}
	if p.wf.Expect == nil {
		return 0, fmt.Errorf("lifecycle: workflow %q declares no expected result", workflow)
	}
	want, err := p.wf.Expect(input)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: workflow %q: %w: %w", workflow, ErrInvalidInput, err)
	}
	return want, nil
}

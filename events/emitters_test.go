package events_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// The emitter walk proves the catalog and the code agree: every event name
// the code emits is in the catalog, and every built-in event that is not
// External has at least one emitter.
//
// An event name counts as emitted where it appears (as an events.<Const>
// selector, or as a string literal shaped like an event name) in one of these
// positions:
//   - an argument of a call whose function name (the last selector or the
//     identifier, so methods and func-valued variables both count) contains
//     "emit" or "publish", or ends in "event" (a helper that builds one),
//     all case-insensitive;
//   - the first argument of events.New;
//   - the Name: value of an events.Event composite literal.
//
// A plain identifier in those positions (name := events.X; emit(..., name))
// is followed to the event-name constants assigned to it in the same function.
// Test files, testdata, vendor, hidden directories and the events package
// itself (which defines the names rather than emitting them) are skipped;
// events/bus is walked, as it publishes the queue.* events.

// emission is one place that emits an event name.
type emission struct {
	Name    string // the event name, resolved
	Pos     string // file:line, relative to the walked root
	Literal bool   // written as a string literal rather than a constant
}

// eventNameShape is the grammar of a catalog event name; string literals of
// another shape (topics, log messages, labels) are not event names.
var eventNameShape = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)

// eventNameConsts maps the exported constants of the events package's
// non-test files whose value is shaped like an event name to that value.
func eventNameConsts(dir string) (map[string]string, error) {
	fset := token.NewFileSet()
	out := map[string]string{}
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	for _, path := range matches {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !n.IsExported() || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err == nil && eventNameShape.MatchString(v) {
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out, nil
}

// scanEmitters walks root and returns every emission it finds. eventsPath is
// the events package's import path, consts its event-name constants; skipDirs
// are root-relative directories (slash-separated) to leave out.
func scanEmitters(root, eventsPath string, consts map[string]string, skipDirs ...string) ([]emission, error) {
	fset := token.NewFileSet()
	var out []emission
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || slices.Contains(skipDirs, rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		s := &fileScan{fset: fset, rel: rel, consts: consts, pkg: importName(f, eventsPath)}
		s.file(f)
		out = append(out, s.found...)
		return nil
	})
	return out, err
}

// importName returns the name f uses for the package at path, or "" when f
// does not import it.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name // "_" and "." never match a selector below
		}
		return path[strings.LastIndex(path, "/")+1:]
	}
	return ""
}

type fileScan struct {
	fset   *token.FileSet
	rel    string
	consts map[string]string
	pkg    string // the events package's name in this file
	found  []emission
}

func (s *fileScan) file(f *ast.File) {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
			s.body(fd.Body)
			continue
		}
		s.body(d) // package-level var initialisers
	}
}

// body scans one function (or declaration); identifiers are resolved within it.
func (s *fileScan) body(n ast.Node) {
	assigned := s.assignments(n)
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch {
			case s.isEventsSel(n.Fun, "New"):
				if len(n.Args) > 0 {
					s.arg(n.Args[0], assigned)
				}
			case emitsByName(calleeName(n.Fun)):
				for _, a := range n.Args {
					s.arg(a, assigned)
				}
			}
		case *ast.CompositeLit:
			if !s.isEventsSel(n.Type, "Event") {
				return true
			}
			for _, el := range n.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						s.arg(kv.Value, assigned)
					}
				}
			}
		}
		return true
	})
}

// assignments maps each identifier in n to the event-name constants
// assigned to it (with = or :=, or in a var declaration).
func (s *fileScan) assignments(n ast.Node) map[string][]ast.Expr {
	out := map[string][]ast.Expr{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) != len(n.Rhs) {
				return true
			}
			for i, l := range n.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					out[id.Name] = append(out[id.Name], n.Rhs[i])
				}
			}
		case *ast.ValueSpec:
			for i, id := range n.Names {
				if i < len(n.Values) {
					out[id.Name] = append(out[id.Name], n.Values[i])
				}
			}
		}
		return true
	})
	return out
}

// arg records e if it is an event name: a constant, a literal of the right
// shape, or an identifier assigned one of those.
func (s *fileScan) arg(e ast.Expr, assigned map[string][]ast.Expr) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		s.arg(e.X, assigned)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && s.pkg != "" && x.Name == s.pkg {
			if v, ok := s.consts[e.Sel.Name]; ok {
				s.add(e, v, false)
			}
		}
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return
		}
		if v, err := strconv.Unquote(e.Value); err == nil && eventNameShape.MatchString(v) {
			s.add(e, v, true)
		}
	case *ast.Ident:
		for _, rhs := range assigned[e.Name] {
			if _, isIdent := rhs.(*ast.Ident); !isIdent { // no chains: they could loop
				s.arg(rhs, assigned)
			}
		}
	}
}

func (s *fileScan) add(at ast.Node, name string, literal bool) {
	p := s.fset.Position(at.Pos())
	s.found = append(s.found, emission{Name: name, Pos: fmt.Sprintf("%s:%d", s.rel, p.Line), Literal: literal})
}

func (s *fileScan) isEventsSel(e ast.Expr, sel string) bool {
	se, ok := e.(*ast.SelectorExpr)
	if !ok || se.Sel.Name != sel {
		return false
	}
	x, ok := se.X.(*ast.Ident)
	return ok && s.pkg != "" && x.Name == s.pkg
}

// calleeName is the last selector or the identifier of a call's function.
func calleeName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.IndexExpr: // generic instantiation
		return calleeName(f.X)
	case *ast.ParenExpr:
		return calleeName(f.X)
	}
	return ""
}

func emitsByName(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "emit") || strings.Contains(n, "publish") || strings.HasSuffix(n, "event")
}

// emitterReport compares emissions with the catalog: unknown lists emitted
// names missing from it, silent lists built-in, non-external events that
// nothing emits, and count is the number of emitting sites per name.
type emitterReport struct {
	unknown []string // "name at file:line"
	silent  []string
	count   map[string]int
}

func checkEmitters(found []emission, catalog []events.Schema) emitterReport {
	r := emitterReport{count: map[string]int{}}
	for _, e := range found {
		if _, ok := events.Lookup(e.Name); !ok {
			kind := "constant"
			if e.Literal {
				kind = "literal"
			}
			r.unknown = append(r.unknown, fmt.Sprintf("%s (%s) at %s", e.Name, kind, e.Pos))
			continue
		}
		r.count[e.Name]++
	}
	for _, s := range catalog {
		if !s.External && r.count[s.Name] == 0 {
			r.silent = append(r.silent, s.Name)
		}
	}
	return r
}

// TestEveryEventHasAnEmitter walks the module.
func TestEveryEventHasAnEmitter(t *testing.T) {
	t.Parallel()
	consts, err := eventNameConsts(".")
	require.NoError(t, err)
	require.Len(t, consts, len(allNameConstants), "every name constant is found by parsing")
	mod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	modPath, _, _ := strings.Cut(strings.TrimPrefix(string(mod), "module "), "\n")
	found, err := scanEmitters("..", strings.TrimSpace(modPath)+"/events", consts, "events/internal")
	require.NoError(t, err)
	// The events package's own files define the names; skip them, not
	// events/bus.
	found = slices.DeleteFunc(found, func(e emission) bool { return filepath.Dir(strings.Split(e.Pos, ":")[0]) == "events" })

	r := checkEmitters(found, builtins())
	for _, s := range builtins() {
		tag := ""
		if s.External {
			tag = " (external)"
		}
		t.Logf("%-40s %3d emitter(s)%s", s.Name, r.count[s.Name], tag)
	}
	if len(r.unknown) > 0 {
		t.Errorf("emitted but not in the catalog (add them to events/catalog.go or fix the name):\n\t%s", strings.Join(r.unknown, "\n\t"))
	}
	if len(r.silent) > 0 {
		t.Errorf("in the catalog but emitted by nothing (emit them, or mark them External):\n\t%s", strings.Join(r.silent, "\n\t"))
	}
}

// TestScanEmitters checks the scanner itself on testdata/emitters.
func TestScanEmitters(t *testing.T) {
	t.Parallel()
	consts := map[string]string{
		"TaskCompleted": events.TaskCompleted, "TaskFailed": events.TaskFailed, "StepClaimed": events.StepClaimed,
		"StepFailed": events.StepFailed, "QueueStats": events.QueueStats, "WorkerStarted": events.WorkerStarted,
		"DBPoolStats": events.DBPoolStats, "TaskCancelled": events.TaskCancelled, "StepEnqueued": events.StepEnqueued,
		"ResilienceRequestRejected": events.ResilienceRequestRejected, "WorkerStopped": events.WorkerStopped,
		"TaskCancelRequested": events.TaskCancelRequested, "Bogus": "bogus.not_in_catalog",
	}
	found, err := scanEmitters("testdata/emitters", "github.com/sextant-telemetry/sextant/events", consts, "skipped")
	require.NoError(t, err)

	var got []string
	for _, e := range found {
		kind := ""
		if e.Literal {
			kind = " literal"
		}
		got = append(got, e.Pos+" "+e.Name+kind)
	}
	require.ElementsMatch(t, []string{
		"emit.go:21 task.completed",              // em.emit
		"emit.go:22 task.failed",                 // func-valued variable publish
		"emit.go:23 task.completed",              // Publish(events.Event{Name: …})
		"emit.go:24 queue.stats",                 // events.New
		"emit.go:26 step.claimed",                // through a local variable…
		"emit.go:28 step.failed",                 // …with both values
		"emit.go:31 db.pool_stats",               // a helper ending in Event
		"emit.go:32 step.complted literal",       // a typo the check must catch
		"emit.go:33 resilience.request_rejected", // a composite literal outside a call
		"emit.go:34 bogus.not_in_catalog",        // a dotted constant the catalog lacks
		"emit.go:45 task.cancel_requested",       // package-level Event literal
		"alias/alias.go:9 worker.started",        // renamed import
		"alias/alias.go:10 step.enqueued literal",
	}, got)

	r := checkEmitters(found, []events.Schema{
		{Name: events.TaskCompleted}, {Name: events.StepFailed}, {Name: events.TaskCancelled},
		{Name: events.WorkerStopped, External: true}, {Name: events.StepClaimed},
	})
	require.ElementsMatch(t, []string{
		"step.complted (literal) at emit.go:32",
		"bogus.not_in_catalog (constant) at emit.go:34",
	}, r.unknown)
	require.Equal(t, []string{events.TaskCancelled}, r.silent, "only referenced, never emitted; external ones are exempt")
	require.Equal(t, 2, r.count[events.TaskCompleted])
	require.Equal(t, 1, r.count[events.StepClaimed])
}

func TestEventNameConsts(t *testing.T) {
	t.Parallel()
	consts, err := eventNameConsts(".")
	require.NoError(t, err)
	require.Equal(t, events.TaskCompleted, consts["TaskCompleted"])
	require.Equal(t, events.DBPoolStats, consts["DBPoolStats"])
	require.NotContains(t, consts, "FieldCorrelationID", "not an event name")
	require.NotContains(t, consts, "GroupTask", "not an event name")
	values := make([]string, 0, len(consts))
	for _, v := range consts {
		values = append(values, v)
	}
	require.ElementsMatch(t, allNameConstants, values)
}

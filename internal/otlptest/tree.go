package otlptest

import (
	"cmp"
	"slices"
	"strings"
)

// Node is a span in a tree, with its children ordered by start time, then
// name, then span id.
type Node struct {
	Span
	Children []*Node
}

// Tree links spans into trees and returns each trace's roots, by trace id
// in hex. A root is a span without a parent or whose parent is not among
// spans. Roots are ordered like children. A span id received twice yields
// two nodes; children attach to the first.
func Tree(spans []Span) map[string][]*Node {
	byID := make(map[string]*Node, len(spans))
	nodes := make([]*Node, len(spans))
	for i, s := range spans {
		n := &Node{Span: s}
		nodes[i] = n
		key := s.TraceID() + "/" + s.SpanID()
		if _, dup := byID[key]; !dup {
			byID[key] = n
		}
	}
	roots := map[string][]*Node{}
	for _, n := range nodes {
		parent, ok := byID[n.TraceID()+"/"+n.ParentSpanID()]
		if n.ParentSpanID() == "" || !ok || parent == n {
			roots[n.TraceID()] = append(roots[n.TraceID()], n)
			continue
		}
		parent.Children = append(parent.Children, n)
	}
	for _, n := range nodes {
		slices.SortStableFunc(n.Children, compareNodes)
	}
	for _, r := range roots {
		slices.SortStableFunc(r, compareNodes)
	}
	return roots
}

func compareNodes(a, b *Node) int {
	return cmp.Or(
		cmp.Compare(a.GetStartTimeUnixNano(), b.GetStartTimeUnixNano()),
		cmp.Compare(a.GetName(), b.GetName()),
		cmp.Compare(a.SpanID(), b.SpanID()),
	)
}

// Outline renders trees as one span name per line, each level indented by
// two more spaces: a compact form to compare a whole tree against.
func Outline(roots []*Node) string {
	var b strings.Builder
	var walk func(ns []*Node, depth int)
	walk = func(ns []*Node, depth int) {
		for _, n := range ns {
			b.WriteString(strings.Repeat("  ", depth))
			b.WriteString(n.GetName())
			b.WriteByte('\n')
			walk(n.Children, depth+1)
		}
	}
	walk(roots, 0)
	return b.String()
}

// Children returns the spans whose parent is parentSpanID (hex; "" for
// roots), ordered like a Node's children.
func Children(spans []Span, parentSpanID string) []Span {
	var out []Span
	for _, s := range spans {
		if s.ParentSpanID() == parentSpanID {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Span) int { return compareNodes(&Node{Span: a}, &Node{Span: b}) })
	return out
}

// Named returns the spans called name, in arrival order.
func Named(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration, at a place in a file.
type Problem struct {
	// File is the name given to Parse, the path given to Load, or
	// "<embedded default.yaml>" for a value that came from the default.
	File string
	// Line and Column are 1-based. For YAML syntax errors the column is 1:
	// the YAML parser reports lines only.
	Line, Column int
	// Path is the YAML path of the value at fault, such as
	// router.routes[3].metrics[0].type; empty for syntax errors.
	Path string
	// Message says what is wrong, without the position or path.
	Message string
}

// String formats the problem as FILE:LINE:COL: PATH: message, the form
// compilers use, so that editors can jump to it.
func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", p.File, p.Line, p.Column)
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem found in a configuration. Load, Parse and Default
// return it; use errors.As to get at the problems.
type Error struct {
	// Problems are in the order found: decoding problems in document order,
	// then validation problems section by section.
	Problems []Problem
}

// Error returns the problems one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// state is the layers decoded so far, the embedded default first.
type state struct {
	layers []*layer
}

// placeIssues places validation issues in the files, leaving out those at
// or under a path that failed to decode.
func (s *state) placeIssues(issues []issue) []Problem {
	var out []Problem
	for _, is := range issues {
		if s.failed(is.path) {
			continue
		}
		file, p := s.place(is.path)
		out = append(out, Problem{File: file, Line: p.line, Column: p.col, Path: is.path, Message: is.msg})
	}
	return out
}

// place returns the position recorded for the longest prefix of path,
// taking the latest layer that set it, and skipping positions a later layer
// made stale by replacing a list or map that holds them.
func (s *state) place(path string) (string, pos) {
	for q := path; ; q = parent(q) {
		for i := len(s.layers) - 1; i >= 0; i-- {
			if p, ok := s.layers[i].pos[q]; ok && !s.replacedAfter(i, q) {
				return s.layers[i].file, p
			}
		}
		if q == "" {
			break
		}
	}
	// Nothing recorded at all (an empty default, which cannot happen).
	return s.layers[len(s.layers)-1].file, pos{1, 1}
}

// replacedAfter reports whether a layer after layer i replaced a list or
// map at or above path.
func (s *state) replacedAfter(i int, path string) bool {
	for _, l := range s.layers[i+1:] {
		if l.replaced[path] || anyAbove(path, l.replaced) {
			return true
		}
	}
	return false
}

// failed reports whether path, or a path above it, failed to decode.
func (s *state) failed(path string) bool {
	for _, l := range s.layers {
		if l.failed[path] || anyAbove(path, l.failed) {
			return true
		}
	}
	return false
}

// anyAbove reports whether set holds a proper prefix of path (the root ""
// included).
func anyAbove(path string, set map[string]bool) bool {
	for q := path; q != ""; {
		q = parent(q)
		if set[q] {
			return true
		}
	}
	return false
}

// parent drops the last key or index of a path; the parent of a top-level
// key is "", the root.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

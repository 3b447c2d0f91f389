package router

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// pattern is a compiled route match: a literal name or per-segment globs.
type pattern struct {
	text    string
	literal bool
	segs    []string
}

func compilePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("must not be empty")
	}
	p := pattern{text: s, segs: strings.Split(s, ".")}
	p.literal = !strings.ContainsAny(s, `*?[\`)
	for _, seg := range p.segs {
		if seg == "" {
			return pattern{}, fmt.Errorf("pattern %q has an empty segment", s)
		}
		if seg != "**" && strings.Contains(seg, "**") {
			return pattern{}, fmt.Errorf("pattern %q: ** must be a whole segment", s)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return pattern{}, fmt.Errorf("pattern %q: segment %q: %w", s, seg, err)
		}
	}
	return p, nil
}

func (p pattern) match(name string) bool {
	if p.literal {
		return p.text == name
	}
	return matchSegs(p.segs, strings.Split(name, "."))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

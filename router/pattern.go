package router

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// pattern is a compiled route match: a literal name, per-segment globs, or
// a list of alternatives.
type pattern struct {
	text    string
	literal bool
	segs    []string
	alts    []pattern // {a,b,...}: matches what any of them matches
}

func compilePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("must not be empty")
	}
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		p := pattern{text: s}
		for _, alt := range strings.Split(s[1:len(s)-1], ",") {
			ap, err := compilePattern(strings.TrimSpace(alt))
			if err != nil {
				return pattern{}, fmt.Errorf("pattern %q: alternative %q: %w", s, alt, err)
			}
			if len(ap.alts) > 0 {
				return pattern{}, fmt.Errorf("pattern %q: alternatives do not nest", s)
			}
			p.alts = append(p.alts, ap)
		}
		return p, nil
	}
	if strings.ContainsAny(s, "{},") {
		return pattern{}, fmt.Errorf("pattern %q: braces enclose the whole pattern, e.g. {task.completed,task.failed}", s)
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
	if p.alts != nil {
		for _, a := range p.alts {
			if a.match(name) {
				return true
			}
		}
		return false
	}
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

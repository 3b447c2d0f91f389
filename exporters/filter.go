package exporters

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The matcher operators, as in PromQL.
const (
	MatchEqual     = "="
	MatchNotEqual  = "!="
	MatchRegexp    = "=~"
	MatchNotRegexp = "!~"
)

// NameLabel is the label name a Matcher uses for the family's PromName, as
// __name__ is in Prometheus: {__name__=~"tasker_.*"}.
const NameLabel = "__name__"

// ErrInvalidMatcher is returned for a matcher that does not parse or whose
// regular expression does not compile.
var ErrInvalidMatcher = errors.New("invalid label matcher")

// ErrInvalidGlob is returned for a name glob path.Match rejects.
var ErrInvalidGlob = errors.New("invalid name glob")

// Filter selects part of a snapshot: what /export?name=…&match=… asks
// for. The zero Filter keeps everything.
type Filter struct {
	// Names are globs over Family.PromName, in path.Match syntax (* ? [a-z]
	// and \ escapes; * matches any run of characters but /). A family is
	// kept when one of them matches; no Names keeps every family.
	Names []string
	// Matchers select series: a series is kept when every matcher holds.
	// As in Prometheus, a label the series lacks has the value "".
	Matchers []Matcher
}

// Matcher is one label matcher, as in PromQL: Name Op Value.
type Matcher struct {
	// Name is a label name, or NameLabel for the family's PromName.
	Name string
	// Op is MatchEqual, MatchNotEqual, MatchRegexp or MatchNotRegexp.
	Op string
	// Value is the value, or for =~ and !~ an RE2 regular expression that
	// must match the whole value: it is anchored at both ends, as in
	// Prometheus, and . matches newlines too.
	Value string
}

// Validate returns every invalid glob and matcher joined, each message
// starting with its place: names[0] or matchers[1].
func (f Filter) Validate() error {
	var errs []error
	for i, g := range f.Names {
		if _, err := path.Match(g, ""); err != nil {
			errs = append(errs, fmt.Errorf("names[%d]: %w %q: %w", i, ErrInvalidGlob, g, err))
		}
	}
	for i, m := range f.Matchers {
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("matchers[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Validate reports whether m has a name, a known operator and, for =~ and
// !~, a regular expression that compiles. The error wraps
// ErrInvalidMatcher.
func (m Matcher) Validate() error {
	_, err := m.compile()
	return err
}

// String returns m in PromQL syntax, e.g. step_name=~"linear_.*". The name
// is quoted when it is not a classic Prometheus label name. ParseMatcher
// reads it back.
func (m Matcher) String() string {
	name := m.Name
	if !classicName(name) {
		name = strconv.Quote(name)
	}
	return name + m.Op + strconv.Quote(m.Value)
}

// classicName reports whether s is a label name PromQL needs no quotes
// for: [a-zA-Z_][a-zA-Z0-9_]*.
func classicName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// ParseMatcher parses one matcher in PromQL syntax: a label name, an
// operator (=, !=, =~ or !~) and a value, spaces allowed between them:
//
//	namespace="rust_e2e_linear"
//	result!=error
//	step_name=~"linear_.*"
//	"service.name"="sextant"
//
// The value is a double-quoted, single-quoted or back-quoted string with
// Go's escapes, or else, unquoted, the rest of s as it is (any operator).
// A name is a quoted string or a run of characters other than space,
// quotes, = ! ~ , { and }. Errors wrap ErrInvalidMatcher.
func ParseMatcher(s string) (Matcher, error) {
	rest := strings.TrimSpace(s)
	name, rest, err := parseMatcherName(rest)
	if err != nil {
		return Matcher{}, fmt.Errorf("%w %q: %w", ErrInvalidMatcher, s, err)
	}
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	var m Matcher
	for _, op := range []string{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
		if after, ok := strings.CutPrefix(rest, op); ok {
			m = Matcher{Name: name, Op: op}
			rest = after
			break
		}
	}
	if m.Op == "" {
		return Matcher{}, fmt.Errorf("%w %q: want =, !=, =~ or !~ after the name %q", ErrInvalidMatcher, s, name)
	}
	if m.Value, err = parseMatcherValue(strings.TrimLeftFunc(rest, unicode.IsSpace)); err != nil {
		return Matcher{}, fmt.Errorf("%w %q: %w", ErrInvalidMatcher, s, err)
	}
	if _, err := m.compile(); err != nil {
		return Matcher{}, fmt.Errorf("%q: %w", s, err)
	}
	return m, nil
}

// parseMatcherName reads the name at the start of s.
func parseMatcherName(s string) (name, rest string, err error) {
	if s != "" && isQuote(s[0]) {
		name, rest, err := unquotePrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("the name: %w", err)
		}
		return name, rest, nil
	}
	end := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune("=!~\"'`,{}", r)
	})
	if end < 0 {
		end = len(s)
	}
	if end == 0 {
		return "", "", errors.New("no label name")
	}
	return s[:end], s[end:], nil
}

// parseMatcherValue reads the value, all of s: a quoted string or s as it
// is.
func parseMatcherValue(s string) (string, error) {
	if s == "" || !isQuote(s[0]) {
		return s, nil
	}
	v, rest, err := unquotePrefix(s)
	if err != nil {
		return "", fmt.Errorf("the value: %w", err)
	}
	if strings.TrimSpace(rest) != "" {
		return "", fmt.Errorf("unexpected %q after the quoted value", rest)
	}
	return v, nil
}

func isQuote(c byte) bool { return c == '"' || c == '\'' || c == '`' }

// unquotePrefix unquotes the quoted string at the start of s and returns
// the text after it. Single-quoted strings take the escapes of
// double-quoted ones, \' included, as in PromQL.
func unquotePrefix(s string) (value, rest string, err error) {
	if s[0] == '\'' {
		// Rewrite it double-quoted: " needs escaping there, \' must lose
		// its backslash, and the first unescaped ' ends it.
		var b strings.Builder
		b.WriteByte('"')
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s) && s[i+1] == '\'':
				b.WriteByte('\'')
				i++
			case c == '\\' && i+1 < len(s):
				b.WriteByte(c)
				b.WriteByte(s[i+1])
				i++
			case c == '"':
				b.WriteString(`\"`)
			case c == '\'':
				b.WriteByte('"')
				v, err := strconv.Unquote(b.String())
				if err != nil {
					return "", "", fmt.Errorf("bad quoted string %s: %w", s[:i+1], err)
				}
				return v, s[i+1:], nil
			default:
				b.WriteByte(c)
			}
		}
		return "", "", errors.New("unterminated quoted string")
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", fmt.Errorf("bad quoted string %s: %w", s, err)
	}
	v, err := strconv.Unquote(q)
	if err != nil {
		return "", "", fmt.Errorf("bad quoted string %s: %w", q, err)
	}
	return v, s[len(q):], nil
}

// compiledMatcher is a matcher ready to test values.
type compiledMatcher struct {
	Matcher
	re *regexp.Regexp // for =~ and !~
}

func (m Matcher) compile() (compiledMatcher, error) {
	c := compiledMatcher{Matcher: m}
	if m.Name == "" {
		return c, fmt.Errorf("%w: no label name", ErrInvalidMatcher)
	}
	switch m.Op {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?s:" + m.Value + ")$")
		if err != nil {
			return c, fmt.Errorf("%w %s: %w", ErrInvalidMatcher, m, err)
		}
		c.re = re
	default:
		return c, fmt.Errorf("%w: operator %q: want =, !=, =~ or !~", ErrInvalidMatcher, m.Op)
	}
	if !utf8.ValidString(m.Name) {
		return c, fmt.Errorf("%w: label name %q is not valid UTF-8", ErrInvalidMatcher, m.Name)
	}
	return c, nil
}

func (c *compiledMatcher) matches(v string) bool {
	switch c.Op {
	case MatchEqual:
		return v == c.Value
	case MatchNotEqual:
		return v != c.Value
	case MatchRegexp:
		return c.re.MatchString(v)
	default: // MatchNotRegexp
		return !c.re.MatchString(v)
	}
}

// Apply returns a new snapshot with the families whose PromName matches
// one of f.Names (all when there are none), each with the series every
// matcher holds for; families left without series are dropped. The
// resource and time are s's. The result shares labels, histograms and
// exemplars with s, and neither is modified. Validate f first: Apply
// treats an invalid glob as matching no name and an invalid matcher as
// holding for no series. It is safe for concurrent use.
func (f Filter) Apply(s *Snapshot) *Snapshot {
	if s == nil {
		return nil
	}
	matchers := make([]compiledMatcher, 0, len(f.Matchers))
	for _, m := range f.Matchers {
		c, err := m.compile()
		if err != nil {
			return &Snapshot{Resource: s.Resource, Time: s.Time}
		}
		matchers = append(matchers, c)
	}
	out := &Snapshot{Resource: s.Resource, Time: s.Time, Families: make([]Family, 0, len(s.Families))}
	for _, fam := range s.Families {
		if !f.matchesName(fam.PromName) {
			continue
		}
		series := make([]Series, 0, len(fam.Series))
		for _, ser := range fam.Series {
			if seriesMatches(matchers, fam.PromName, ser.Labels) {
				series = append(series, ser)
			}
		}
		if len(series) == 0 {
			continue
		}
		fam.Series = slices.Clip(series)
		out.Families = append(out.Families, fam)
	}
	return out
}

func (f Filter) matchesName(name string) bool {
	if len(f.Names) == 0 {
		return true
	}
	for _, g := range f.Names {
		if ok, err := path.Match(g, name); ok && err == nil {
			return true
		}
	}
	return false
}

func seriesMatches(matchers []compiledMatcher, promName string, labels []Label) bool {
	for i := range matchers {
		m := &matchers[i]
		v := promName
		if m.Name != NameLabel {
			v = labelValue(labels, m.Name)
		}
		if !m.matches(v) {
			return false
		}
	}
	return true
}

// labelValue returns the value of the label name, "" when there is none.
// It scans: series carry a handful of labels.
func labelValue(labels []Label, name string) string {
	for i := range labels {
		if labels[i].Name == name {
			return labels[i].Value
		}
	}
	return ""
}

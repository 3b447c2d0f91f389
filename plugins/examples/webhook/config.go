package main

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

// config is the plugin's section of Sextant's YAML
// (plugins.instances[i].config). README.md documents every key.
type config struct {
	// URL receives a POST of every export's JSON; http or https. Required.
	URL string `json:"url"`
	// Headers are added to every POST. A value may reference environment
	// variables as ${NAME}; $$ stands for a literal $.
	Headers map[string]string `json:"headers"`
	// Timeout bounds one attempt; 10s by default.
	Timeout time.Duration `json:"timeout"`
	// Retries is how many times a failed attempt (a connection error, 408,
	// 429 or 5xx) is tried again, with backoff, within the export's
	// deadline; 2 by default, at most 10.
	Retries int `json:"retries"`
	// Pretty indents the JSON. The export option pretty=true|false
	// overrides it per export.
	Pretty bool `json:"pretty"`
}

// Defaults and limits of config.
const (
	defaultTimeout = 10 * time.Second
	defaultRetries = 2
	maxRetries     = 10
)

func defaultConfig() config {
	return config{Timeout: defaultTimeout, Retries: defaultRetries}
}

// settings is a checked config, ready for exports.
type settings struct {
	url     string      // "" before a configuration: exports fail
	display string      // url without userinfo, query or fragment
	headers http.Header // expanded
	names   []string    // the header names, for logs (never the values)
	timeout time.Duration
	retries int
	pretty  bool
}

// headers the plugin sets itself or HTTP manages.
var reservedHeaders = []string{"Connection", "Content-Length", "Host", "Transfer-Encoding"}

// settings checks c and returns what exports need, or every problem with
// its path. getenv resolves ${NAME} in header values.
func (c config) settings(getenv func(string) string) (settings, error) {
	var errs sdk.FieldErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, sdk.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	s := settings{timeout: c.Timeout, retries: c.Retries, pretty: c.Pretty, headers: http.Header{}}

	switch u, err := url.Parse(c.URL); {
	case c.URL == "":
		add("url", "required: where to POST the snapshots, e.g. https://example.com/hooks/metrics")
	case err != nil:
		add("url", "not a URL: %v", err.(*url.Error).Err)
	case u.Scheme != "http" && u.Scheme != "https":
		add("url", "want an http or https URL; got scheme %q", u.Scheme)
	case u.Host == "":
		add("url", "want an http or https URL with a host")
	case u.Fragment != "":
		add("url", "must not have a fragment (#...)")
	default:
		s.url = c.URL
		s.display = redact(u)
	}

	if c.Timeout <= 0 {
		add("timeout", "must be positive (leave it out for %s); got %s", defaultTimeout, c.Timeout)
	}
	if c.Retries < 0 || c.Retries > maxRetries {
		add("retries", "must be between 0 and %d; got %d", maxRetries, c.Retries)
	}

	// In key order, so that of two keys naming one header the same one is
	// reported every time.
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		raw := c.Headers[name]
		p := sdk.KeyPath("headers", name)
		if !validHeaderName(name) {
			add(p, "not a valid HTTP header name")
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if slices.Contains(reservedHeaders, canon) {
			add(p, "is set by HTTP itself and cannot be configured")
			continue
		}
		if len(s.headers.Values(canon)) > 0 {
			add(p, "names the same header as another key (header names ignore case)")
			continue
		}
		v, err := expand(raw, getenv)
		if err != nil {
			add(p, "%v", err)
			continue
		}
		// The value is never quoted in a message: it may hold a secret.
		if strings.ContainsAny(v, "\r\n\x00") {
			add(p, "the value holds a line break or NUL (after expanding ${...})")
			continue
		}
		s.headers.Set(canon, v)
		s.names = append(s.names, canon)
	}
	slices.Sort(s.names)
	slices.SortFunc(errs, func(a, b sdk.FieldError) int { return strings.Compare(a.Path, b.Path) })
	if len(errs) > 0 {
		return settings{}, errs
	}
	return s, nil
}

// redact returns u without userinfo, query and fragment: safe for logs.
func redact(u *url.URL) string {
	d := *u
	d.User, d.RawQuery, d.ForceQuery, d.Fragment, d.RawFragment = nil, "", false, "", ""
	return d.String()
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// expand replaces ${NAME} in s with getenv(NAME) and $$ with $; any other
// $ stays. A variable that is unset or empty is an error naming it.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New("${ without a closing }")
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", fmt.Errorf("${%s}: want an environment variable name (letters, digits and _, not starting with a digit)", name)
			}
			v := getenv(name)
			if v == "" {
				return "", fmt.Errorf("the environment variable %s is not set or is empty", name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Package redact hides secrets in what Sextant shows: log records,
// printed configuration, plugin errors. A value is secret when its key's
// name contains a sensitive fragment (case-insensitive: "token" matches
// API_TOKEN and bearer_token), and URL credentials are secret wherever they
// appear in text.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces what is hidden.
const Mask = "[REDACTED]"

// DefaultKeys are the sensitive fragments used when the configuration
// names none.
var DefaultKeys = []string{"password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key", "cookie", "session"}

// Keys matches key names against sensitive fragments.
type Keys struct{ fragments []string }

// NewKeys returns a matcher for fragments; nil means DefaultKeys, and an
// empty, non-nil list matches nothing.
func NewKeys(fragments []string) Keys {
	if fragments == nil {
		fragments = DefaultKeys
	}
	lower := make([]string, 0, len(fragments))
	for _, f := range fragments {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			lower = append(lower, f)
		}
	}
	return Keys{fragments: lower}
}

// Sensitive reports whether a value under key must be hidden.
func (k Keys) Sensitive(key string) bool {
	if len(k.fragments) == 0 || key == "" {
		return false
	}
	key = strings.ToLower(key)
	for _, f := range k.fragments {
		if strings.Contains(key, f) {
			return true
		}
	}
	return false
}

// urlCredentials matches the user-information part of a URL.
var urlCredentials = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s"']+@`)

// Text hides the credentials of URLs in s: scheme://user:pass@host becomes
// scheme://[REDACTED]@host. Text without "://" and "@" is returned as is,
// at the cost of two scans.
func Text(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return urlCredentials.ReplaceAllString(s, "${1}"+Mask+"@")
}

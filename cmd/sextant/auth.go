package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode"

	"github.com/sextant-telemetry/sextant/config"
)

// bearerChallenge is the WWW-Authenticate answer of a 401 (RFC 6750 §3).
const bearerChallenge = `Bearer realm="sextant"`

// bearerAuth requires "Authorization: Bearer <token>" on the handlers it
// wraps: the reference's metrics_auth_required. It keeps only the token's
// SHA-256, and compares digests in constant time, so that neither the
// token's bytes nor its length show in how long a refusal takes. A nil
// *bearerAuth requires nothing. It is safe for concurrent use.
type bearerAuth struct {
	sum    [sha256.Size]byte
	logger *slog.Logger
}

// loadBearerAuth reads the token cfg names, once, at start-up: from the
// file (white space around it, such as a trailing newline, is ignored) or
// from the environment variable. It returns nil when cfg sets neither. A
// missing, unreadable or empty token is an error; the error never holds the
// token.
func loadBearerAuth(cfg config.AuthConfig, readFile func(string) ([]byte, error), getenv func(string) string, logger *slog.Logger) (*bearerAuth, error) {
	var token, source string
	switch {
	case cfg.BearerTokenFile != "":
		source = "server.auth.bearer_token_file"
		b, err := readFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err) // names the path
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("%s: %s holds no token", source, cfg.BearerTokenFile)
		}
	case cfg.BearerTokenEnv != "":
		source = "server.auth.bearer_token_env"
		token = strings.TrimSpace(getenv(cfg.BearerTokenEnv))
		if token == "" {
			return nil, fmt.Errorf("%s: the environment variable %s is unset or empty", source, cfg.BearerTokenEnv)
		}
	default:
		return nil, nil
	}
	if i := strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return nil, fmt.Errorf("%s: the token holds white space or a control character (at byte %d): an Authorization header cannot carry it", source, i)
	}
	return &bearerAuth{sum: sha256.Sum256([]byte(token)), logger: logger}, nil
}

// Reasons a request is refused, as its 401 body says.
var (
	errMissingToken = errors.New("missing bearer token")
	errInvalidToken = errors.New("invalid bearer token")
)

// check returns nil when r carries the token, else errMissingToken or
// errInvalidToken.
func (a *bearerAuth) check(r *http.Request) error {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errMissingToken
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return errInvalidToken
	}
	return nil
}

// wrap returns next guarded by the token: a request without it is answered
// 401 with a WWW-Authenticate challenge and a one-line text body saying
// whether the token was missing or wrong. A nil a returns next unchanged.
func (a *bearerAuth) wrap(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := a.check(r)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		// Never the header itself: it may be a token that is nearly right.
		a.logger.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
		challenge := bearerChallenge
		if errors.Is(err, errInvalidToken) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, err.Error(), http.StatusUnauthorized)
	})
}

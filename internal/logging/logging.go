// Package logging builds Sextant's logger: log/slog, JSON lines by default
// or text for a person at a terminal, at a configured level, with every
// sensitive value masked before any handler sees it.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/sextant-telemetry/sextant/internal/redact"
)

// The formats.
const (
	FormatAuto = "auto" // text on a terminal, JSON otherwise
	FormatJSON = "json"
	FormatText = "text"
)

// Formats lists the accepted formats.
func Formats() []string { return []string{FormatAuto, FormatJSON, FormatText} }

// Options configure New.
type Options struct {
	// Level is the least severe level logged: debug, info, warn or error
	// (slog's names, case-insensitive); empty means info.
	Level string
	// Format is auto, json or text; empty means auto.
	Format string
	// SensitiveKeys are the fragments of attribute keys whose values are
	// masked (see redact.NewKeys; nil means its defaults, empty none).
	SensitiveKeys []string
}

// New returns a logger writing to w. It fails on an unknown level or
// format, naming the allowed values.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	var level slog.Level
	if o.Level != "" {
		if err := level.UnmarshalText([]byte(o.Level)); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error", o.Level)
		}
	}
	format := strings.ToLower(o.Format)
	if format == "" {
		format = FormatAuto
	}
	if !slices.Contains(Formats(), format) {
		return nil, fmt.Errorf("log format %q: want %s", o.Format, strings.Join(Formats(), ", "))
	}
	if format == FormatAuto {
		format = FormatJSON
		if isTerminal(w) {
			format = FormatText
		}
	}
	keys := redact.NewKeys(o.SensitiveKeys)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return mask(keys, a) }}
	var h slog.Handler
	if format == FormatText {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&redactingHandler{Handler: h, keys: keys}), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && terminal(f)
}

// mask hides a's value when its key is sensitive, and URL credentials in
// string values. The handler's ReplaceAttr calls it for every attribute
// but groups' own keys (slog passes a group's members one by one).
func mask(keys redact.Keys, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
		return a
	}
	if keys.Sensitive(a.Key) {
		return slog.String(a.Key, redact.Mask)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "@") {
			return slog.String(a.Key, redact.Text(s))
		}
	case slog.KindAny:
		if v, changed := maskValue(keys, a.Value.Any()); changed {
			return slog.Any(a.Key, v)
		}
	}
	return a
}

// maskValue masks inside maps and slices that reach a log as one value,
// such as a decoded JSON payload: nested keys are hidden too.
func maskValue(keys redact.Keys, v any) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		changed := false
		for k, e := range v {
			if keys.Sensitive(k) {
				out[k], changed = redact.Mask, true
				continue
			}
			m, c := maskValue(keys, e)
			out[k], changed = m, changed || c
		}
		return out, changed
	case map[string]string:
		out := make(map[string]string, len(v))
		changed := false
		for k, e := range v {
			switch {
			case keys.Sensitive(k):
				out[k], changed = redact.Mask, true
			default:
				m := redact.Text(e)
				out[k], changed = m, changed || m != e
			}
		}
		return out, changed
	case []any:
		out := make([]any, len(v))
		changed := false
		for i, e := range v {
			m, c := maskValue(keys, e)
			out[i], changed = m, changed || c
		}
		return out, changed
	case string:
		m := redact.Text(v)
		return m, m != v
	case error:
		if s := v.Error(); strings.Contains(s, "@") {
			if m := redact.Text(s); m != s {
				return m, true
			}
		}
	}
	return v, false
}

// redactingHandler masks the message too, which ReplaceAttr does not see:
// an error interpolated into a message may carry a URL with a password.
type redactingHandler struct {
	slog.Handler
	keys redact.Keys
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "@") {
		if m := redact.Text(r.Message); m != r.Message {
			nr := slog.NewRecord(r.Time, r.Level, m, r.PC)
			r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
			r = nr
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithAttrs(attrs), keys: h.keys}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithGroup(name), keys: h.keys}
}

// Config is the logging section of the configuration.
type Config struct {
	// Level is debug, info, warn or error; empty lets the command decide
	// (info for run, warn for demo). --log-level overrides it.
	Level string `yaml:"level"`
	// Format is auto (text on a terminal, JSON otherwise), json or text;
	// empty means auto. --log-format overrides it.
	Format string `yaml:"format"`
}

// Validate reports every problem with the section, each message starting
// with the field's YAML name.
func (c Config) Validate() error {
	var errs []error
	if _, err := New(io.Discard, Options{Level: c.Level}); err != nil {
		errs = append(errs, fmt.Errorf("level: want debug, info, warn or error; got %q", c.Level))
	}
	if _, err := New(io.Discard, Options{Format: c.Format}); err != nil {
		errs = append(errs, fmt.Errorf("format: want %s; got %q", strings.Join(Formats(), ", "), c.Format))
	}
	return errors.Join(errs...)
}

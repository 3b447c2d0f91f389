// Package logging builds Sextant's logger: log/slog, JSON lines by default
// or text for a person at a terminal, at a configured level, with every
// sensitive value masked before any handler sees it.
package logging

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"reflect"
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
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr { return mask(keys, groups, a) }}
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

// mask hides a's value when its key or the name of any group holding it
// is sensitive (groups lists both WithGroup groups and slog.Group names),
// and URL credentials anywhere in the value. The handler's ReplaceAttr
// calls it for every attribute but groups' own keys (slog passes a group's
// members one by one, with the group's name in groups).
func mask(keys redact.Keys, groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && isBuiltin(a) {
		return a
	}
	if keys.Sensitive(a.Key) {
		return slog.String(a.Key, redact.Mask)
	}
	for _, g := range groups {
		if keys.Sensitive(g) {
			return slog.String(a.Key, redact.Mask)
		}
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

// isBuiltin reports whether a is the record's time or level, which
// cannot hold a secret.
func isBuiltin(a slog.Attr) bool {
	switch a.Key {
	case slog.TimeKey:
		return a.Value.Kind() == slog.KindTime
	case slog.LevelKey:
		_, ok := a.Value.Any().(slog.Level)
		return ok
	}
	return false
}

// Types that several named types convert to: http.Header and url.Values
// are map[string][]string.
var (
	headerType  = reflect.TypeFor[map[string][]string]()
	stringsType = reflect.TypeFor[[]string]()
	bytesType   = reflect.TypeFor[[]byte]()
)

// maskValue returns v with secrets hidden and whether it had to change v.
// The JSON handler prints a value with encoding/json and the text handler
// with MarshalText or fmt's %+v, which shows String(), Error(), unexported
// fields and fields tagged json:"-"; so a value replaced here is replaced
// by one form that both print the same way. Common values stay cheap:
// strings, numbers, bools, durations and times never reach KindAny, and
// the usual containers are walked directly; only other structs, pointers,
// maps and slices pay for a JSON round trip.
func maskValue(keys redact.Keys, v any) (any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, false
	case string:
		m := redact.Text(v)
		return m, m != v
	case []byte:
		// The text handler prints bytes as text.
		if m := redact.Text(string(v)); m != string(v) {
			return []byte(m), true
		}
		return v, false
	case []string:
		return maskStrings(v)
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
	case map[string][]string:
		return maskHeader(keys, v)
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
	case []any:
		out := make([]any, len(v))
		changed := false
		for i, e := range v {
			m, c := maskValue(keys, e)
			out[i], changed = m, changed || c
		}
		return out, changed
	case *url.URL:
		if v == nil {
			return v, false
		}
		return redactURL(v), true
	case url.URL:
		return redactURL(&v), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		// Printed as <nil>; its methods may not expect a nil receiver.
		return v, false
	}
	_, isJSON := v.(json.Marshaler)
	if !isJSON {
		if s, ok := textOf(v); ok {
			return s, true
		}
	}
	switch rv.Kind() {
	case reflect.String:
		// A named string type without a String method: both handlers
		// print the string itself.
		if s := rv.String(); !isJSON {
			if m := redact.Text(s); m != s {
				return m, true
			}
		}
		return v, false
	case reflect.Slice:
		switch {
		case rv.Type().ConvertibleTo(bytesType) && !isJSON:
			return maskValue(keys, rv.Convert(bytesType).Interface())
		case rv.Type().ConvertibleTo(stringsType) && !isJSON:
			return maskStrings(rv.Convert(stringsType).Interface().([]string))
		}
	case reflect.Map:
		if rv.Type().ConvertibleTo(headerType) && !isJSON {
			return maskHeader(keys, rv.Convert(headerType).Interface().(map[string][]string))
		}
	case reflect.Struct, reflect.Pointer, reflect.Array:
	default:
		// Numbers, bools, channels, functions: nothing to hide.
		return v, false
	}
	return maskJSON(keys, v)
}

// textOf returns the masked text of an error, encoding.TextMarshaler or
// fmt.Stringer (in the order the handlers prefer them) and whether v
// should be replaced by it: when masking changed the text, or when v is a
// composite Stringer, whose fields JSON would print instead of String().
func textOf(v any) (text string, replace bool) {
	// fmt survives a panicking method by printing the panic; so must the
	// logger, which then leaves v to the handler.
	defer func() {
		if recover() != nil {
			text, replace = "", false
		}
	}()
	var s string
	composite := false
	switch t := v.(type) {
	case error:
		s = t.Error()
	case encoding.TextMarshaler:
		b, err := t.MarshalText()
		if err != nil {
			return "", false
		}
		s = string(b)
	case fmt.Stringer:
		s = t.String()
		switch reflect.ValueOf(v).Kind() {
		case reflect.Struct, reflect.Pointer, reflect.Map, reflect.Slice, reflect.Array:
			composite = true
		}
	default:
		return "", false
	}
	m := redact.Text(s)
	return m, composite || m != s
}

// redactURL returns u as text without its credentials, in the form
// redact.Text gives URLs in other values. String() and %+v would show the
// password, and JSON the struct's fields. Redacted drops the password
// even where the user name holds a character redact.Text stops at.
func redactURL(u *url.URL) string { return redact.Text(u.Redacted()) }

// maskStrings hides URL credentials in each string.
func maskStrings(v []string) (any, bool) {
	var out []string
	for i, e := range v {
		if m := redact.Text(e); m != e {
			if out == nil {
				out = slices.Clone(v)
			}
			out[i] = m
		}
	}
	if out == nil {
		return v, false
	}
	return out, true
}

// maskHeader hides the values of sensitive keys, such as an HTTP
// Authorization header, and URL credentials in the others.
func maskHeader(keys redact.Keys, v map[string][]string) (any, bool) {
	out := make(map[string][]string, len(v))
	changed := false
	for k, e := range v {
		if keys.Sensitive(k) {
			out[k], changed = []string{redact.Mask}, true
			continue
		}
		m, c := maskStrings(e)
		out[k], changed = m.([]string), changed || c
	}
	return out, changed
}

// maskJSON masks any other value through its JSON form, which names
// fields and keys the way the JSON handler prints them. The masked form
// always replaces v, even when nothing was hidden, so that the text
// handler does not print what JSON leaves out (unexported fields, fields
// tagged json:"-"). A value JSON cannot encode (a function or channel
// field, a cycle, an unsupported map key) is kept: the JSON handler prints
// its own error instead of it, and a placeholder would take away from the
// text format a value that %+v can show; such values rarely carry secrets.
func maskJSON(keys redact.Keys, v any) (masked any, replace bool) {
	// A panicking MarshalJSON leaves v to the handler, as in textOf.
	defer func() {
		if recover() != nil {
			masked, replace = v, false
		}
	}()
	b, err := json.Marshal(v)
	if err != nil {
		return v, false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // keep integers beyond 2^53 exact
	var decoded any
	if err := d.Decode(&decoded); err != nil {
		return v, false
	}
	m, _ := maskValue(keys, decoded)
	return m, true
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

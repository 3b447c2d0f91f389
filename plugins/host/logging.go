package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's trace level in slog terms, below debug.
const levelTrace = slog.LevelDebug - 4

// maxLogLine bounds one line of a plugin's output; the rest of a longer
// line is dropped and the record says so.
const maxLogLine = 256 << 10

// stderrTailLines is how many of a plugin's last output lines a start
// error quotes.
const stderrTailLines = 5

// loggerSource gives the logger of a plugin's current name: records about
// a plugin carry plugin=<name>, and a plugin's name may still change when
// it first describes itself.
type loggerSource interface {
	log() *slog.Logger
}

// goPluginLogger adapts slog to go-plugin's hclog.Logger, for go-plugin's
// own messages about the plugin process. Below WARN they are chatter and
// are dropped unless slog is at DEBUG.
//
// GetLevel reports hclog.Off on purpose: go-plugin then leaves the
// plugin's stderr unparsed, and the host parses it (see stream) from
// ClientConfig.Stderr instead. go-plugin's own parser loses the order of
// a line's fields, turns plain lines into DEBUG records and panics on a
// line whose "@message" is not a string.
type goPluginLogger struct {
	src  loggerSource
	name string
	args []any
	// quiet is set while the host itself ends the process: go-plugin's
	// complaint that it "failed to exit gracefully" is then expected.
	quiet *atomic.Bool
}

var _ hclog.Logger = (*goPluginLogger)(nil)

func newGoPluginLogger(src loggerSource, quiet *atomic.Bool) *goPluginLogger {
	return &goPluginLogger{src: src, name: "go-plugin", quiet: quiet}
}

// demoted are go-plugin messages the host reports better itself: process
// exits are logged by the supervisor with the reason and what happens next.
var demoted = map[string]bool{
	"plugin process exited": true,
}

func (l *goPluginLogger) level(level hclog.Level, msg string) slog.Level {
	switch {
	case demoted[msg]:
		return slog.LevelDebug
	case msg == "plugin failed to exit gracefully" && l.quiet != nil && l.quiet.Load():
		return slog.LevelDebug
	}
	return hclogLevel(level)
}

// Log implements hclog.Logger.
func (l *goPluginLogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := l.level(level, msg)
	logger := l.src.log()
	ctx := context.Background()
	if lvl < slog.LevelWarn && !logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if !logger.Enabled(ctx, lvl) {
		return
	}
	r := slog.NewRecord(time.Now(), lvl, msg, 0)
	r.AddAttrs(slog.String("logger", l.name))
	addArgs(&r, l.args)
	addArgs(&r, args)
	_ = logger.Handler().Handle(ctx, r)
}

// addArgs adds hclog's key-value pairs to r. go-plugin names the plugin's
// path "plugin", which would clash with the host's plugin=<name>.
func addArgs(r *slog.Record, args []any) {
	for i := 0; i < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok || i+1 == len(args) {
			r.AddAttrs(slog.Any("!BADKEY", args[i]))
			i--
			continue
		}
		if key == "plugin" {
			key = "path"
		}
		v := args[i+1]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		r.AddAttrs(slog.Any(key, v))
	}
}

func hclogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Trace implements hclog.Logger.
func (l *goPluginLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (l *goPluginLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (l *goPluginLogger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (l *goPluginLogger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (l *goPluginLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *goPluginLogger) enabled(level slog.Level) bool {
	logger := l.src.log()
	ctx := context.Background()
	if level < slog.LevelWarn && !logger.Enabled(ctx, slog.LevelDebug) {
		return false
	}
	return logger.Enabled(ctx, level)
}

// IsTrace implements hclog.Logger.
func (l *goPluginLogger) IsTrace() bool { return l.enabled(levelTrace) }

// IsDebug implements hclog.Logger.
func (l *goPluginLogger) IsDebug() bool { return l.enabled(slog.LevelDebug) }

// IsInfo implements hclog.Logger.
func (l *goPluginLogger) IsInfo() bool { return l.enabled(slog.LevelInfo) }

// IsWarn implements hclog.Logger.
func (l *goPluginLogger) IsWarn() bool { return l.enabled(slog.LevelWarn) }

// IsError implements hclog.Logger.
func (l *goPluginLogger) IsError() bool { return l.enabled(slog.LevelError) }

// ImpliedArgs implements hclog.Logger.
func (l *goPluginLogger) ImpliedArgs() []any { return l.args }

// With implements hclog.Logger.
func (l *goPluginLogger) With(args ...any) hclog.Logger {
	c := *l
	c.args = append(append([]any(nil), l.args...), args...)
	return &c
}

// Name implements hclog.Logger.
func (l *goPluginLogger) Name() string { return l.name }

// Named implements hclog.Logger.
func (l *goPluginLogger) Named(name string) hclog.Logger {
	c := *l
	c.name = l.name + "." + name
	return &c
}

// ResetNamed implements hclog.Logger.
func (l *goPluginLogger) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

// SetLevel implements hclog.Logger; the level is slog's.
func (l *goPluginLogger) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger. It reports Off: see goPluginLogger.
func (l *goPluginLogger) GetLevel() hclog.Level { return hclog.Off }

// StandardLogger implements hclog.Logger.
func (l *goPluginLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: each line becomes a record at
// INFO, or at opts.ForceLevel.
func (l *goPluginLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return newLineWriter(func(line []byte) { l.Log(level, string(line)) })
}

// lineWriter splits what is written to it into lines and hands each
// complete one, without its line ending, to emit. It keeps the last few
// lines for error messages. It is safe for concurrent use.
type lineWriter struct {
	emit func(line []byte)

	mu        sync.Mutex
	buf       []byte
	truncated bool
	tail      []string
}

func newLineWriter(emit func([]byte)) *lineWriter { return &lineWriter{emit: emit} }

// Write implements io.Writer; it never fails.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.line()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(p []byte) {
	if room := maxLogLine - len(w.buf); len(p) > room {
		p, w.truncated = p[:max(room, 0)], true
	}
	w.buf = append(w.buf, p...)
}

func (w *lineWriter) line() {
	line := bytes.TrimRight(w.buf, "\r")
	if w.truncated {
		line = append(line, " …(line truncated)"...)
	}
	if len(bytes.TrimSpace(line)) > 0 {
		if len(w.tail) == stderrTailLines {
			w.tail = append(w.tail[:0], w.tail[1:]...)
		}
		w.tail = append(w.tail, string(line))
		w.emit(line)
	}
	w.buf, w.truncated = w.buf[:0], false
}

// Flush emits a last line that has no line ending yet.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line()
	}
}

// Tail returns the last lines written.
func (w *lineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}

// stream re-logs one output stream of a plugin: go-hclog JSON lines (what
// sdk.Logger writes) keep their level, message, time and fields in order;
// any other line becomes an INFO record with stream=<name> whose message
// is the line. After a line starting "panic: " or "fatal error: ", plain
// lines are a crash report and are logged at ERROR.
type stream struct {
	src     loggerSource
	name    string // stdout or stderr
	inPanic bool   // guarded by the lineWriter's lock
}

func newStream(src loggerSource, name string) *lineWriter {
	s := &stream{src: src, name: name}
	return newLineWriter(s.line)
}

func (s *stream) line(line []byte) {
	logger := s.src.log()
	ctx := context.Background()
	if r, ok := parseHCLogLine(line); ok {
		if logger.Enabled(ctx, r.Level) {
			_ = logger.Handler().Handle(ctx, r)
		}
		return
	}
	text := string(line)
	level := slog.LevelInfo
	if strings.HasPrefix(text, "panic: ") || strings.HasPrefix(text, "fatal error: ") {
		s.inPanic = true
	}
	if s.inPanic {
		level = slog.LevelError
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, text, 0)
	r.AddAttrs(slog.String("stream", s.name))
	_ = logger.Handler().Handle(ctx, r)
}

// hclogJSONTime is go-hclog's JSON time layout.
const hclogJSONTime = "2006-01-02T15:04:05.000000Z07:00"

// parseHCLogLine reads one go-hclog JSON line: an object with a string
// "@message"; "@level" (trace, debug, info, warn, error; INFO when absent
// or unknown), "@timestamp", "@module" and "@caller" are optional; the
// other members become the record's attributes, in the line's order.
// Members named like the host's own attributes (plugin, stream) get an
// "attr." prefix so that plugin=<name> stays unambiguous.
func parseHCLogLine(line []byte) (slog.Record, bool) {
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[0] != '{' {
		return slog.Record{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return slog.Record{}, false
	}
	var (
		msg, level string
		hasMsg     bool
		t          time.Time
		attrs      []slog.Attr
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return slog.Record{}, false
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return slog.Record{}, false
		}
		switch key {
		case "@message":
			s, ok := v.(string)
			if !ok {
				return slog.Record{}, false
			}
			msg, hasMsg = s, true
		case "@level":
			level, _ = v.(string)
		case "@timestamp":
			if s, ok := v.(string); ok {
				if ts, err := time.Parse(hclogJSONTime, s); err == nil {
					t = ts
				} else if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
					t = ts
				}
			}
		case "@module", "@caller":
			attrs = append(attrs, slog.Any(key[1:], jsonValue(v)))
		case "plugin", "stream", "logger", "module", "caller",
			slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey, "component", "error_type":
			// Keys Sextant's own records carry: a plugin must not be able
			// to pass its lines off as the router's, or as another plugin's.
			attrs = append(attrs, slog.Any("attr."+key, jsonValue(v)))
		default:
			attrs = append(attrs, slog.Any(key, jsonValue(v)))
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return slog.Record{}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return slog.Record{}, false
	}
	if !hasMsg {
		return slog.Record{}, false
	}
	if t.IsZero() {
		t = time.Now()
	}
	r := slog.NewRecord(t, hclogLevel(hclog.LevelFromString(level)), msg, 0)
	r.AddAttrs(attrs...)
	return r, true
}

// jsonValue turns a decoded number into an int64 or float64; other
// values are kept as decoded.
func jsonValue(v any) any {
	n, ok := v.(json.Number)
	if !ok {
		return v
	}
	if i, err := n.Int64(); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n.String()
}

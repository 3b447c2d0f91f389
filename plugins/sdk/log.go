package sdk

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// EnvLogLevel is the environment variable that sets the level of
// [Logger]: trace, debug, info, warn or error. Without it, a plugin
// launched by Sextant logs from debug up (Sextant filters by its own
// level) and one run by hand from info up.
const EnvLogLevel = "SEXTANT_PLUGIN_LOG_LEVEL"

// stderr is the process's standard error as it was at start. go-plugin
// points os.Stderr at a pipe of its own once serving; the host parses log
// lines from the real one.
var stderr = os.Stderr

// levelTrace is hclog's trace level, below slog's debug.
const levelTrace = slog.LevelDebug - 4

// Logger returns the plugin's logger. It writes to standard error, one
// JSON object a line in the layout of hashicorp/go-hclog ("@level",
// "@message", "@timestamp", then the attributes), which the go-plugin host
// parses: Sextant re-logs every line as a structured record of its own,
// named after the plugin. Standard output belongs to go-plugin's
// handshake; never write to it. The logger is safe for concurrent use;
// every call returns the same one.
func Logger() *slog.Logger {
	return defaultLogger()
}

var defaultLogger = sync.OnceValue(func() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv(pluginv1.MagicCookieKey) == pluginv1.MagicCookieValue {
		level = slog.LevelDebug
	}
	if l, ok := parseLevel(os.Getenv(EnvLogLevel)); ok {
		level = l
	}
	return newLogger(stderr, level)
})

// parseLevel reads a level name as hclog spells them.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return levelTrace, true
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// hclogTimeFormat is go-hclog's TimeFormatJSON, the only layout go-plugin's
// host parses "@timestamp" with.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// newLogger returns a logger writing hclog-style JSON lines to w.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				l, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", levelName(l))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

// levelName is l in hclog's words, rounded down to the nearest level hclog
// knows.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

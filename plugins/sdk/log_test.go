package sdk

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoggerWritesHclogJSON(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := newLogger(&buf, levelTrace)
	log.Log(t.Context(), levelTrace, "t")
	log.Debug("d")
	log.Info("i", "n", 1, slog.Group("g", "level", "inner"))
	log.Warn("w")
	log.Error("e", "error", "boom")
	log.Log(t.Context(), slog.LevelError+4, "e+4")

	var levels, messages []string
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		// go-plugin's host reads exactly these keys, and the time in
		// exactly this layout.
		ts, ok := rec["@timestamp"].(string)
		require.True(t, ok, line)
		_, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts)
		require.NoError(t, err, line)
		levels = append(levels, rec["@level"].(string))
		messages = append(messages, rec["@message"].(string))
		for _, k := range []string{"time", "level", "msg"} {
			require.NotContains(t, rec, k, line)
		}
		if rec["@message"] == "i" {
			require.EqualValues(t, 1, rec["n"])
			require.Equal(t, map[string]any{"level": "inner"}, rec["g"], "keys inside groups are left alone")
		}
	}
	require.Equal(t, []string{"trace", "debug", "info", "warn", "error", "error"}, levels)
	require.Equal(t, []string{"t", "d", "i", "w", "e", "e+4"}, messages)
}

func TestLoggerLevel(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := newLogger(&buf, slog.LevelInfo)
	log.Debug("hidden")
	log.Info("shown")
	require.NotContains(t, buf.String(), "hidden")
	require.Contains(t, buf.String(), "shown")
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{"trace": levelTrace, "DEBUG": slog.LevelDebug, " info ": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError} {
		got, ok := parseLevel(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	_, ok := parseLevel("loud")
	require.False(t, ok)
}

package traces

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type failingExporter struct{}

func (failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("unavailable")
}
func (failingExporter) Shutdown(context.Context) error { return nil }

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestExportFailedWarningsAreRateLimited(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	p, err := start(failingExporter{}, "test", Config{QueueSize: 10, BatchSize: 10, BatchTimeout: time.Hour}.withDefaults(),
		Settings{Logger: logger}, clock.Now)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	span := tracetest.SpanStub{Name: "s", SpanContext: sc}.Snapshot()

	steps := []struct {
		at    time.Duration
		spans int
		want  []string // warnings logged by this step
	}{
		{at: 0, spans: 1, want: []string{"dropped=1"}},
		{at: 5 * time.Second, spans: 2},
		{at: 9 * time.Second, spans: 1},
		{at: 10 * time.Second, spans: 1, want: []string{"dropped=4"}},
		{at: 15 * time.Second, spans: 2},
	}
	for _, s := range steps {
		clock.set(t0.Add(s.at))
		logs.Reset()
		for range s.spans {
			p.OnEnd(span)
		}
		require.Error(t, p.ForceFlush(context.Background()))
		var got []string
		for line := range strings.Lines(logs.String()) {
			require.Contains(t, line, `level=WARN msg="traces: spans dropped: export failed"`)
			require.Contains(t, line, `reason=export_failed exporter=test error=unavailable`)
			got = append(got, strings.Fields(line)[6])
		}
		require.Equal(t, s.want, got, "at %s", s.at)
	}
	logs.Reset()
	require.NoError(t, p.Shutdown(context.Background()), "export errors during the drain only; nothing was left")
	require.Contains(t, logs.String(), "dropped=2 reason=export_failed", "Shutdown reports what was held back")
	require.Equal(t, int64(7), p.Stats().Dropped.ExportFailed)
	require.Equal(t, t0.Add(15*time.Second), p.Stats().LastErrorAt)
}

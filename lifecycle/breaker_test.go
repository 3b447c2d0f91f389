package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// breakerClock is an injected clock that tests move by hand.
type breakerClock struct {
	mu sync.Mutex
	t  time.Time
}

func newBreakerClock() *breakerClock {
	return &breakerClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *breakerClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *breakerClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// breakerPub is a fake Publisher: publish, when set, runs first and decides
// what Publish returns; every event is recorded in publish order.
type breakerPub struct {
	publish func(e events.Event) error

	mu  sync.Mutex
	got []events.Event
}

var _ lifecycle.Publisher = (*breakerPub)(nil)

func (p *breakerPub) Publish(_ context.Context, e events.Event) error {
	if p.publish != nil {
		if err := p.publish(e); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, e)
	return nil
}

// transitions returns each recorded event as "previous_state>state".
func (p *breakerPub) transitions(t *testing.T) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.got))
	for _, e := range p.got {
		require.Equal(t, events.ResilienceCircuitBreakerState, e.Name)
		require.NoError(t, e.Validate())
		prev, _ := e.Attr("previous_state")
		state, _ := e.Attr("state")
		out = append(out, fmt.Sprintf("%d>%d", prev.Int64(), state.Int64()))
	}
	return out
}

func TestBreakerStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[lifecycle.BreakerState]string{
		lifecycle.BreakerClosed: "closed", lifecycle.BreakerHalfOpen: "half-open", lifecycle.BreakerOpen: "open",
		lifecycle.BreakerState(7): "BreakerState(7)",
	} {
		require.Equal(t, want, s.String())
	}
}

func TestBreakerConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     lifecycle.BreakerConfig
		wantErr []string
	}{
		{name: "defaults", cfg: lifecycle.BreakerConfig{Component: "api"}},
		{name: "no component", cfg: lifecycle.BreakerConfig{}, wantErr: []string{"component: required"}},
		{
			name:    "negative",
			cfg:     lifecycle.BreakerConfig{Component: "api", FailureThreshold: -1, OpenTimeout: -time.Second, HalfOpenProbes: -2},
			wantErr: []string{"failure_threshold: must not be negative", "open_timeout: must not be negative", "half_open_probes: must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := lifecycle.NewCircuitBreaker(tt.cfg, lifecycle.BreakerSettings{})
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.Equal(t, lifecycle.BreakerConfig{Component: "api", FailureThreshold: 5, OpenTimeout: time.Second, HalfOpenProbes: 1}, b.Config())
				return
			}
			require.ErrorIs(t, err, lifecycle.ErrBreakerConfig)
			for _, w := range tt.wantErr {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestBreakerStateMachine drives a breaker step by step on an injected clock.
func TestBreakerStateMachine(t *testing.T) {
	t.Parallel()
	// Steps: "allow" and "deny" call Allow and expect true or false; "ok" and
	// "fail" report an outcome; "+<duration>" moves the clock.
	tests := []struct {
		name  string
		cfg   lifecycle.BreakerConfig
		steps []string

		wantState       lifecycle.BreakerState
		wantTransitions []string
		wantStats       lifecycle.BreakerStats // State and LastChange are not compared
	}{
		{
			name:            "successes keep it closed",
			steps:           []string{"allow", "ok", "allow", "ok"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0"},
			wantStats:       lifecycle.BreakerStats{Successes: 2},
		},
		{
			name:            "a success resets the failure count",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 3},
			steps:           []string{"fail", "fail", "ok", "fail", "fail", "allow"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0"},
			wantStats:       lifecycle.BreakerStats{Failures: 4, Successes: 1},
		},
		{
			name:            "threshold failures open it and it refuses",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 3},
			steps:           []string{"fail", "fail", "allow", "fail", "deny", "+999ms", "deny"},
			wantState:       lifecycle.BreakerOpen,
			wantTransitions: []string{"0>0", "0>2"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 2, Failures: 3},
		},
		{
			name:            "default threshold is 5",
			steps:           []string{"fail", "fail", "fail", "fail", "allow", "fail", "deny"},
			wantState:       lifecycle.BreakerOpen,
			wantTransitions: []string{"0>0", "0>2"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 1, Failures: 5},
		},
		{
			name:            "after the timeout one probe goes through and closes it",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1, OpenTimeout: 2 * time.Second},
			steps:           []string{"fail", "+1s", "deny", "+1s", "allow", "deny", "ok", "allow", "allow"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0", "0>2", "2>1", "1>0"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 2, Failures: 1, Successes: 1},
		},
		{
			name:            "a failed probe reopens it for another timeout",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1},
			steps:           []string{"fail", "+1s", "allow", "fail", "deny", "+500ms", "deny", "+500ms", "allow", "ok"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0", "0>2", "2>1", "1>2", "2>1", "1>0"},
			wantStats:       lifecycle.BreakerStats{Opens: 2, Rejections: 2, Failures: 2, Successes: 1},
		},
		{
			name:            "several probes at a time, all must succeed",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1, HalfOpenProbes: 2},
			steps:           []string{"fail", "+1s", "allow", "allow", "deny", "ok", "allow", "deny", "ok"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0", "0>2", "2>1", "1>0"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 2, Failures: 1, Successes: 2},
		},
		{
			name:            "one failure among the probes reopens it",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1, HalfOpenProbes: 2},
			steps:           []string{"fail", "+1s", "allow", "allow", "ok", "fail", "deny"},
			wantState:       lifecycle.BreakerOpen,
			wantTransitions: []string{"0>0", "0>2", "2>1", "1>2"},
			wantStats:       lifecycle.BreakerStats{Opens: 2, Rejections: 1, Failures: 2, Successes: 1},
		},
		{
			name:            "a probe never reported is replaced after the timeout",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1},
			steps:           []string{"fail", "+1s", "allow", "+999ms", "deny", "+1ms", "allow", "ok"},
			wantState:       lifecycle.BreakerClosed,
			wantTransitions: []string{"0>0", "0>2", "2>1", "1>0"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 1, Failures: 1, Successes: 1},
		},
		{
			name:            "a late success while open changes nothing",
			cfg:             lifecycle.BreakerConfig{FailureThreshold: 1},
			steps:           []string{"fail", "ok", "deny"},
			wantState:       lifecycle.BreakerOpen,
			wantTransitions: []string{"0>0", "0>2"},
			wantStats:       lifecycle.BreakerStats{Opens: 1, Rejections: 1, Failures: 1, Successes: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newBreakerClock()
			start := clock.Now()
			pub := &breakerPub{}
			cfg := tt.cfg
			cfg.Component = "api"
			b, err := lifecycle.NewCircuitBreaker(cfg, lifecycle.BreakerSettings{Publisher: pub, Now: clock.Now})
			require.NoError(t, err)
			require.Equal(t, "api", b.Component())
			for i, step := range tt.steps {
				switch {
				case step == "allow" || step == "deny":
					require.Equal(t, step == "allow", b.Allow(), "step %d: %s", i, step)
				case step == "ok":
					b.Success()
				case step == "fail":
					b.Failure()
				case strings.HasPrefix(step, "+"):
					d, err := time.ParseDuration(step[1:])
					require.NoError(t, err)
					clock.Advance(d)
				default:
					t.Fatalf("step %d: unknown step %q", i, step)
				}
			}
			require.Equal(t, tt.wantState, b.State())
			require.Equal(t, tt.wantTransitions, pub.transitions(t))
			st := b.Stats()
			require.Equal(t, tt.wantState, st.State)
			want := tt.wantStats
			want.State, want.LastChange = st.State, st.LastChange
			require.Equal(t, want, st)
			if len(tt.wantTransitions) == 1 {
				require.Equal(t, start, st.LastChange)
			}
			// Events carry the clock's time, a fresh id from that time and
			// no correlation id.
			seen := map[events.ID]bool{}
			for _, e := range pub.got {
				require.False(t, seen[e.ID])
				seen[e.ID] = true
				require.Equal(t, e.Time.UnixMilli(), e.ID.Time().UnixMilli())
				require.False(t, e.CorrelationID.IsZero(), "every event needs a correlation id")
				comp, _ := e.Attr("component")
				require.Equal(t, "api", comp.Str())
			}
			require.Equal(t, st.LastChange, pub.got[len(pub.got)-1].Time)
		})
	}
}

// TestBreakerWithoutPublisher: a nil Publisher publishes nothing and the
// breaker still works.
func TestBreakerWithoutPublisher(t *testing.T) {
	t.Parallel()
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{Component: "x", FailureThreshold: 1}, lifecycle.BreakerSettings{})
	require.NoError(t, err)
	b.Failure()
	require.Equal(t, lifecycle.BreakerOpen, b.State())
	require.False(t, b.Allow())
}

// TestBreakerPublishesOutsideItsLock: while a state event's Publish blocks,
// the breaker keeps answering, and the events queued meanwhile follow in
// order once it returns.
func TestBreakerPublishesOutsideItsLock(t *testing.T) {
	t.Parallel()
	clock := newBreakerClock()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var b *lifecycle.CircuitBreaker
	pub := &breakerPub{publish: func(e events.Event) error {
		if s, _ := e.Attr("state"); s.Int64() != int64(lifecycle.BreakerOpen) {
			return nil
		}
		once.Do(func() {
			// The breaker's lock must be free while Publish runs.
			require.Equal(t, lifecycle.BreakerOpen, b.State())
			close(entered)
			<-release
		})
		return nil
	}}
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{Component: "ffi_completion", FailureThreshold: 1},
		lifecycle.BreakerSettings{Publisher: pub, Now: clock.Now, PublishTimeout: time.Minute})
	require.NoError(t, err)

	failed := make(chan struct{})
	go func() {
		defer close(failed)
		b.Failure() // opens, then publishes and blocks
	}()
	<-entered
	clock.Advance(time.Second)
	require.True(t, b.Allow()) // half-open: queued behind the blocked open event
	b.Success()                // closed: likewise
	require.Equal(t, []string{"0>0"}, pub.transitions(t))
	close(release)
	<-failed
	require.Equal(t, []string{"0>0", "0>2", "2>1", "1>0"}, pub.transitions(t))
}

// TestBreakerPublishErrors: a failing Publisher is logged once at WARN and
// does not disturb the breaker.
func TestBreakerPublishErrors(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pub := &breakerPub{publish: func(events.Event) error { return errors.New("bus down") }}
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{Component: "api", FailureThreshold: 1, OpenTimeout: time.Nanosecond},
		lifecycle.BreakerSettings{Publisher: pub, Logger: logger})
	require.NoError(t, err)
	b.Failure()
	for !b.Allow() { // wait out the nanosecond on the real clock
	}
	b.Success()
	require.Equal(t, lifecycle.BreakerClosed, b.State())

	var levels []string
	for _, r := range buf.records(t) {
		if r["msg"] == "circuit breaker: publishing its state failed; continuing" {
			levels = append(levels, r["level"].(string))
			require.Equal(t, "bus down", r["error"])
		}
	}
	require.Equal(t, []string{"WARN", "DEBUG", "DEBUG", "DEBUG"}, levels)
}

// TestBreakerLogsStateChanges: opening is logged at WARN, half-open and
// closed at INFO, with component, from and to.
func TestBreakerLogsStateChanges(t *testing.T) {
	t.Parallel()
	clock := newBreakerClock()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{Component: "api", FailureThreshold: 1},
		lifecycle.BreakerSettings{Logger: logger, Now: clock.Now})
	require.NoError(t, err)
	b.Failure()
	clock.Advance(time.Second)
	require.True(t, b.Allow())
	b.Success()

	var got []string
	for _, r := range buf.records(t) {
		require.Equal(t, "circuit breaker changed state", r["msg"])
		require.Equal(t, "api", r["component"])
		got = append(got, fmt.Sprintf("%s %s>%s", r["level"], r["from"], r["to"]))
	}
	require.Equal(t, []string{"WARN closed>open", "INFO open>half-open", "INFO half-open>closed"}, got)
}

// TestBreakerConcurrentSafe hammers one breaker from many goroutines with a
// Publisher that yields, and checks that the published states form one
// chain ending in the breaker's state, matching its counters. Run it with
// -race -count=100.
func TestBreakerConcurrentSafe(t *testing.T) {
	t.Parallel()
	clock := newBreakerClock()
	pub := &breakerPub{publish: func(events.Event) error {
		time.Sleep(time.Microsecond) // widen the window for a reordering
		return nil
	}}
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{Component: "api", FailureThreshold: 3, OpenTimeout: time.Millisecond, HalfOpenProbes: 2},
		lifecycle.BreakerSettings{Publisher: pub, Now: clock.Now})
	require.NoError(t, err)

	const goroutines, calls = 16, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range calls {
				switch n := rng.IntN(10); {
				case n == 0:
					clock.Advance(time.Millisecond)
				case b.Allow():
					if n < 5 {
						b.Failure()
					} else {
						b.Success()
					}
				}
			}
		})
	}
	wg.Wait()

	got := pub.transitions(t)
	require.Equal(t, "0>0", got[0])
	state, opens := "0", uint64(0)
	for i, tr := range got[1:] {
		from, to, _ := strings.Cut(tr, ">")
		require.Equal(t, state, from, "event %d (%s) does not follow the one before", i+1, tr)
		require.NotEqual(t, from, to)
		if to == "2" {
			opens++
		}
		state = to
	}
	st := b.Stats()
	require.Equal(t, fmt.Sprint(int(st.State)), state, "the last event is the final state")
	require.Equal(t, st.Opens, opens)
	require.Positive(t, st.Opens, "the test should exercise opening")
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, for log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.buf.String()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r)
	}
	return out
}

// ExampleNewCircuitBreaker guards calls to a dependency: after two failures
// the breaker opens and refuses calls until its timeout has passed.
func ExampleNewCircuitBreaker() {
	b, err := lifecycle.NewCircuitBreaker(lifecycle.BreakerConfig{
		Component:        "api",
		FailureThreshold: 2,
		OpenTimeout:      time.Minute,
	}, lifecycle.BreakerSettings{
		Publisher: nopBreakerPublisher{}, // in a service: a *bus.Publisher
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	call := func() error { return errors.New("dependency down") }
	for range 3 {
		if !b.Allow() {
			fmt.Println("refused:", b.State())
			continue
		}
		if err := call(); err != nil {
			b.Failure()
			fmt.Println("failed:", b.State())
			continue
		}
		b.Success()
	}
	// Output:
	// failed: closed
	// failed: open
	// refused: open
}

// nopBreakerPublisher discards events.
type nopBreakerPublisher struct{}

func (nopBreakerPublisher) Publish(context.Context, events.Event) error { return nil }

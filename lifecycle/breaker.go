package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// BreakerState is a circuit breaker's state, encoded as the catalog's
// resilience.circuit_breaker_state encodes it.
type BreakerState int

// Circuit breaker states.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String returns closed, half-open or open.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "BreakerState(" + strconv.Itoa(int(s)) + ")"
}

// BreakerConfig sets a circuit breaker's thresholds.
type BreakerConfig struct {
	// Component is required: the component label of the breaker's events,
	// e.g. "api" or "ffi_completion".
	Component string
	// FailureThreshold is how many consecutive failures open the breaker;
	// 0 means 5.
	FailureThreshold int
	// OpenTimeout is how long the breaker stays open before it lets a probe
	// through; 0 means 1s.
	OpenTimeout time.Duration
	// HalfOpenProbes is how many consecutive successes in half-open close
	// the breaker, and how many probes it admits at a time; 0 means 1.
	HalfOpenProbes int
}

// Breaker defaults.
const (
	defaultFailureThreshold = 5
	defaultOpenTimeout      = time.Second
	defaultHalfOpenProbes   = 1
	defaultPublishTimeout   = time.Second
)

// ErrBreakerConfig is wrapped by NewCircuitBreaker's errors.
var ErrBreakerConfig = errors.New("invalid circuit breaker config")

// Validate reports every invalid field.
func (c BreakerConfig) Validate() error {
	var errs []error
	if c.Component == "" {
		errs = append(errs, fmt.Errorf("%w: component: required", ErrBreakerConfig))
	}
	if c.FailureThreshold < 0 {
		errs = append(errs, fmt.Errorf("%w: failure_threshold: must not be negative, got %d", ErrBreakerConfig, c.FailureThreshold))
	}
	if c.OpenTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: open_timeout: must not be negative, got %s", ErrBreakerConfig, c.OpenTimeout))
	}
	if c.HalfOpenProbes < 0 {
		errs = append(errs, fmt.Errorf("%w: half_open_probes: must not be negative, got %d", ErrBreakerConfig, c.HalfOpenProbes))
	}
	return errors.Join(errs...)
}

// BreakerSettings carries what a circuit breaker needs from code.
type BreakerSettings struct {
	// Publisher receives resilience.circuit_breaker_state events; nil
	// publishes nothing.
	Publisher Publisher
	// PublishTimeout bounds each Publish of a state event; 0 means 1s. The
	// goroutine that changes the state waits for it, so keep it short where
	// that goroutine serves a request.
	PublishTimeout time.Duration
	// Logger receives state changes; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CorrelationID is carried by the breaker's events (every event needs
	// one); zero means a fresh UUIDv7 made at construction.
	CorrelationID events.ID

	_ struct{}
}

// BreakerStats is a snapshot of a breaker's state and counters.
type BreakerStats struct {
	State BreakerState
	// Opens counts transitions to open.
	Opens uint64
	// Rejections counts calls Allow refused.
	Rejections uint64
	// Failures and Successes count the reported outcomes.
	Failures, Successes uint64
	// LastChange is when the state last changed (creation at first).
	LastChange time.Time
}

// CircuitBreaker stops calls to a failing dependency: after FailureThreshold
// consecutive failures it opens and refuses calls for OpenTimeout, then lets
// HalfOpenProbes probes through; their successes close it, one failure
// reopens it.
//
// Its methods are safe for concurrent use. It publishes
// resilience.circuit_breaker_state when it is created and on every change,
// in the order of the changes, never while holding its lock: the goroutine
// whose call changed the state publishes, unless another is already
// publishing, which then publishes it too. Publishing errors are logged and
// not retried.
type CircuitBreaker struct {
	corr    events.ID // of its events
	cfg     BreakerConfig
	pub     Publisher
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu          sync.Mutex
	state       BreakerState
	consecutive int       // failures in closed, successes in half-open
	inFlight    int       // probes admitted in half-open and not yet reported
	probeAt     time.Time // when the last probe was admitted
	stats       BreakerStats

	// pending holds state events not yet published; publishing says one
	// goroutine is draining it, which keeps them in order.
	pending    []events.Event
	publishing bool
	pubFailed  uint64 // guarded by mu
}

// NewCircuitBreaker returns a closed breaker and publishes its initial state
// (state 0, previous_state 0). Zero fields of cfg take their defaults.
func NewCircuitBreaker(cfg BreakerConfig, set BreakerSettings) (*CircuitBreaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = defaultFailureThreshold
	}
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = defaultOpenTimeout
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = defaultHalfOpenProbes
	}
	b := &CircuitBreaker{cfg: cfg, pub: set.Publisher, timeout: set.PublishTimeout, log: set.Logger, now: set.Now, corr: set.CorrelationID}
	if b.corr.IsZero() {
		b.corr = events.NewID()
	}
	if b.timeout <= 0 {
		b.timeout = defaultPublishTimeout
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.mu.Lock()
	now := b.now()
	b.stats.LastChange = now
	b.queueLocked(now, BreakerClosed, BreakerClosed)
	b.mu.Unlock()
	b.drain()
	return b, nil
}

// Component returns the breaker's component label.
func (b *CircuitBreaker) Component() string { return b.cfg.Component }

// Config returns the breaker's configuration with defaults applied.
func (b *CircuitBreaker) Config() BreakerConfig { return b.cfg }

// Allow reports whether a call may proceed. Closed: always. Open: no until
// OpenTimeout has passed since it opened; then the breaker turns half-open.
// Half-open: yes for up to HalfOpenProbes calls at a time. A caller that gets
// true must report the call's outcome with Success or Failure. Probes not
// reported within OpenTimeout are presumed lost and others are admitted.
func (b *CircuitBreaker) Allow() bool {
	b.mu.Lock()
	now := b.now()
	changed := false
	if b.state == BreakerOpen && now.Sub(b.stats.LastChange) >= b.cfg.OpenTimeout {
		b.setLocked(now, BreakerHalfOpen)
		changed = true
	}
	ok := true
	switch b.state {
	case BreakerOpen:
		ok = false
	case BreakerHalfOpen:
		if b.inFlight >= b.cfg.HalfOpenProbes && now.Sub(b.probeAt) >= b.cfg.OpenTimeout {
			b.inFlight = 0
		}
		if b.inFlight < b.cfg.HalfOpenProbes {
			b.inFlight++
			b.probeAt = now
		} else {
			ok = false
		}
	}
	if !ok {
		b.stats.Rejections++
	}
	b.mu.Unlock()
	if changed {
		b.drain()
	}
	return ok
}

// Success reports a call that succeeded. In half-open, HalfOpenProbes
// consecutive successes close the breaker.
func (b *CircuitBreaker) Success() {
	b.mu.Lock()
	b.stats.Successes++
	changed := false
	switch b.state {
	case BreakerClosed:
		b.consecutive = 0
	case BreakerHalfOpen:
		b.inFlight = max(b.inFlight-1, 0)
		b.consecutive++
		if b.consecutive >= b.cfg.HalfOpenProbes {
			b.setLocked(b.now(), BreakerClosed)
			changed = true
		}
	}
	b.mu.Unlock()
	if changed {
		b.drain()
	}
}

// Failure reports a call that failed. In closed, FailureThreshold
// consecutive failures open the breaker; in half-open, one failure reopens
// it.
func (b *CircuitBreaker) Failure() {
	b.mu.Lock()
	b.stats.Failures++
	changed := false
	switch b.state {
	case BreakerClosed:
		b.consecutive++
		if b.consecutive >= b.cfg.FailureThreshold {
			b.setLocked(b.now(), BreakerOpen)
			changed = true
		}
	case BreakerHalfOpen:
		b.inFlight = max(b.inFlight-1, 0)
		b.setLocked(b.now(), BreakerOpen)
		changed = true
	}
	b.mu.Unlock()
	if changed {
		b.drain()
	}
}

// State returns the current state. An open breaker whose OpenTimeout has
// passed still reads open until the next Allow.
func (b *CircuitBreaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Stats returns a snapshot of the state and counters.
func (b *CircuitBreaker) Stats() BreakerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.State = b.state
	return st
}

// setLocked changes the state, logs it and queues its event. b.mu is held.
func (b *CircuitBreaker) setLocked(now time.Time, to BreakerState) {
	from := b.state
	b.state = to
	b.consecutive = 0
	b.stats.LastChange = now
	if to == BreakerOpen {
		b.stats.Opens++
	}
	if to == BreakerHalfOpen {
		b.inFlight = 0
	}
	level := slog.LevelInfo
	if to == BreakerOpen {
		level = slog.LevelWarn
	}
	// Logging under the lock keeps the log in the order of the changes; a
	// slog handler does not call back into the breaker.
	b.log.Log(context.Background(), level, "circuit breaker changed state",
		slog.String("component", b.cfg.Component), slog.String("from", from.String()), slog.String("to", to.String()))
	b.queueLocked(now, to, from)
}

// queueLocked queues the state event of a change from prev to state.
func (b *CircuitBreaker) queueLocked(now time.Time, state, prev BreakerState) {
	if b.pub == nil {
		return
	}
	version := uint16(1)
	if s, ok := events.Lookup(events.ResilienceCircuitBreakerState); ok {
		version = s.Version
	}
	b.pending = append(b.pending, events.Event{
		Name:          events.ResilienceCircuitBreakerState,
		ID:            events.NewIDAt(now),
		Time:          now,
		CorrelationID: b.corr,
		SchemaVersion: version,
		Attrs: []events.Attr{
			events.String("component", b.cfg.Component),
			events.Int("state", int64(state)),
			events.Int("previous_state", int64(prev)),
		},
	})
}

// drain publishes queued state events in order, unless another goroutine is
// already doing so: that one picks up what was queued before it checks again
// under the lock, so no event is left behind and none overtakes another.
func (b *CircuitBreaker) drain() {
	b.mu.Lock()
	if b.publishing {
		b.mu.Unlock()
		return
	}
	b.publishing = true
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		failed := 0
		var lastErr error
		for _, e := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
			if err := b.pub.Publish(ctx, e); err != nil {
				failed++
				lastErr = err
			}
			cancel()
		}
		b.mu.Lock()
		if failed > 0 {
			// Warn once so that a broken bus is visible without flooding
			// the log.
			level := slog.LevelDebug
			if b.pubFailed == 0 {
				level = slog.LevelWarn
			}
			b.pubFailed += uint64(failed)
			b.log.Log(context.Background(), level, "circuit breaker: publishing its state failed; continuing",
				slog.String("component", b.cfg.Component), slog.Int("events", failed), slog.Any("error", lastErr))
		}
	}
	b.publishing = false
	b.mu.Unlock()
}

package lifecycle

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Defaults for zero EngineConfig fields.
const (
	DefaultWorkers      = 2
	DefaultQueueDepth   = 64
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultMaxAttempts allows two retries after a step's first attempt.
	DefaultMaxAttempts = 3
	// DefaultBackoffBase is the backoff before a step's second attempt.
	DefaultBackoffBase = 10 * time.Millisecond
	// DefaultBackoffMax caps the exponential backoff.
	DefaultBackoffMax = time.Second
	// DefaultSampleInterval is how often the live-state gauges are sampled.
	DefaultSampleInterval = time.Second
	// DefaultSlowSendThreshold is seed 001's FFI completion threshold.
	DefaultSlowSendThreshold = 100 * time.Millisecond
)

// EngineConfig is what a user sets for the reference engine (the demo's
// flags and YAML). Zero fields take the defaults.
type EngineConfig struct {
	// Workers is how many worker goroutines serve each namespace's queue.
	// 0 means DefaultWorkers.
	Workers int `yaml:"workers"`
	// QueueDepth bounds each namespace's worker queue and the engine's inbox
	// of submitted tasks. Ready steps beyond a full queue wait in
	// orchestration; while QueueDepth of them wait, orchestration takes no
	// new task and Submit blocks once the inbox is full. 0 means
	// DefaultQueueDepth.
	QueueDepth int `yaml:"queue_depth"`
	// ClaimMode is how workers find steps: event (the default) or poll.
	ClaimMode ClaimMode `yaml:"claim_mode"`
	// PollInterval is how often a poll-mode worker polls its queue, and how
	// long an event-mode worker waits for a notification before polling
	// anyway. 0 means DefaultPollInterval.
	PollInterval time.Duration `yaml:"poll_interval"`
	// FailRate is the probability, in [0, 1], that a step attempt fails
	// with ErrInjectedFailure instead of running its handler: a fault
	// injector for demos and tests. Each attempt draws anew, so a retry can
	// succeed; a failing attempt's error_type is handler_error, timeout
	// (both retryable) or validation_error (permanent), drawn evenly. The
	// draws come from Settings.Rand through a per-task seed, so a seeded
	// source makes the outcome of sequential submissions reproducible.
	FailRate float64 `yaml:"fail_rate"`
	// MaxAttempts is how many times a step may run in all: a retryable
	// failure of attempt n < MaxAttempts is retried after a backoff; a
	// failure of the last attempt fails the task. 1 disables retries. 0
	// means DefaultMaxAttempts.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase is the backoff before attempt 2; it doubles per attempt up
	// to BackoffMax. The wait is drawn uniformly from [b/2, b] (jitter) so
	// that steps failed together do not retry together. Backoffs run on the
	// real clock, not Settings.Now. 0 means DefaultBackoffBase.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the backoff; it must not be below BackoffBase. 0 means
	// DefaultBackoffMax.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// SampleInterval is how often the engine publishes its live-state
	// gauges (task states, ready steps, running handlers, queue depths) and
	// channel fill levels. It also samples at Start and once more after
	// Shutdown stopped everything. 0 means DefaultSampleInterval.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// SlowSendThreshold is how long a worker may take to hand a result to
	// orchestration (the ffi_completion channel) before the send counts as
	// slow: it publishes resilience.completion_slow_send and counts as a
	// failure of the channel's circuit breaker. 0 means
	// DefaultSlowSendThreshold.
	SlowSendThreshold time.Duration `yaml:"slow_send_threshold"`
	// Performance sets the performance monitoring of the engine's
	// operations: its thresholds for performance.slow_operation and
	// memory.spike_detected, per operation if need be. The zero value
	// monitors with DefaultSlowOperationThreshold and
	// DefaultMemorySpikeThreshold.
	Performance PerformanceConfig `yaml:"performance"`
}

// NewDefaultEngineConfig returns the configuration with every default filled in.
func NewDefaultEngineConfig() EngineConfig {
	return EngineConfig{}.withDefaults()
}

func (c EngineConfig) withDefaults() EngineConfig {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.ClaimMode == "" {
		c.ClaimMode = ClaimModeEvent
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffBase)
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.SlowSendThreshold == 0 {
		c.SlowSendThreshold = DefaultSlowSendThreshold
	}
	c.Performance = c.Performance.withDefaults()
	return c
}

// Validate returns every problem joined, each a *FieldError whose path is the
// field's YAML key.
func (c EngineConfig) Validate() error {
	var errs []error
	if c.Workers < 0 {
		errs = append(errs, fieldErr(configKey("Workers"), "must not be negative, got %d", c.Workers))
	}
	if c.QueueDepth < 0 {
		errs = append(errs, fieldErr(configKey("QueueDepth"), "must not be negative, got %d", c.QueueDepth))
	}
	if c.ClaimMode != "" && !slices.Contains(claimModes, c.ClaimMode) {
		errs = append(errs, fieldErr(configKey("ClaimMode"), "must be one of %s, got %q", joinClaimModes(), c.ClaimMode))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fieldErr(configKey("PollInterval"), "must not be negative, got %s", c.PollInterval))
	}
	if !(c.FailRate >= 0 && c.FailRate <= 1) { // also catches NaN
		errs = append(errs, fieldErr(configKey("FailRate"), "must be in [0, 1], got %g", c.FailRate))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fieldErr(configKey("MaxAttempts"), "must not be negative, got %d", c.MaxAttempts))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"BackoffBase", c.BackoffBase}, {"BackoffMax", c.BackoffMax}, {"SampleInterval", c.SampleInterval}, {"SlowSendThreshold", c.SlowSendThreshold}} {
		if f.d < 0 {
			errs = append(errs, fieldErr(configKey(f.name), "must not be negative, got %s", f.d))
		}
	}
	if c.BackoffMax > 0 && c.BackoffMax < c.BackoffBase {
		errs = append(errs, fieldErr(configKey("BackoffMax"), "must not be below %s (%s), got %s", configKey("BackoffBase"), c.BackoffBase, c.BackoffMax))
	}
	errs = append(errs, c.Performance.validate(configKey("Performance"))...)
	return errors.Join(errs...)
}

// configKey returns the YAML key of an EngineConfig field, so that messages
// cannot drift from the tags.
func configKey(field string) string { return yamlKey[EngineConfig](field) }

// yamlKey returns the YAML key of field of the struct T.
func yamlKey[T any](field string) string {
	f, ok := reflect.TypeFor[T]().FieldByName(field)
	if !ok {
		panic("lifecycle: no " + reflect.TypeFor[T]().Name() + " field " + field)
	}
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}

// ClaimMode is how a worker finds steps on its queue. Its values are also the
// claim_method of step.claimed.
type ClaimMode string

// The claim modes.
const (
	// ClaimModeEvent wakes a worker on the enqueue notification; a worker
	// idle for PollInterval polls anyway, which recovers a lost notification.
	ClaimModeEvent ClaimMode = "event"
	// ClaimModePoll ignores notifications: every PollInterval a worker drains
	// its queue.
	ClaimModePoll ClaimMode = "poll"
)

var claimModes = []ClaimMode{ClaimModeEvent, ClaimModePoll}

func joinClaimModes() string {
	s := make([]string, len(claimModes))
	for i, m := range claimModes {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// UnmarshalText rejects unknown claim modes and lists the allowed ones.
func (m *ClaimMode) UnmarshalText(b []byte) error {
	if !slices.Contains(claimModes, ClaimMode(b)) {
		return fmt.Errorf("unknown claim mode %q (allowed: %s)", b, joinClaimModes())
	}
	*m = ClaimMode(b)
	return nil
}

// FieldError is a problem with one field, located by its path.
type FieldError struct {
	// Path locates the field, e.g. fail_rate or workflows[1].steps[2].name.
	Path string
	// Err says what is wrong.
	Err error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldPath returns the path of the field at fault.
func (e *FieldError) FieldPath() string { return e.Path }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Settings carries what a developer passes in code.
type Settings struct {
	// Publisher receives every event. Required.
	Publisher Publisher
	// Logger receives the engine's few log records. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for event times and durations. Nil means time.Now,
	// whose monotonic reading makes durations immune to wall-clock jumps.
	Now func() time.Time
	// Rand seeds each task's draws: the injected failures of
	// EngineConfig.FailRate and the retry backoffs' jitter. Only the
	// orchestration goroutine uses it, once per task in arrival order, so a
	// seeded source makes sequential submissions reproducible whatever the
	// workers' timing. Nil means a randomly seeded source. Don't share it
	// with other goroutines.
	Rand *rand.Rand
	// Workflows are the workflows the engine runs. Nil means
	// NewDefaultRegistry().
	Workflows *Registry

	_ struct{}
}

// Sentinel errors, for errors.Is.
var (
	// ErrUnknownWorkflow: no workflow of that name (in that namespace).
	ErrUnknownWorkflow = errors.New("unknown workflow")
	// ErrInvalidInput: the workflow's Expect refused the input.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNotStarted: Submit was called before Start.
	ErrNotStarted = errors.New("engine not started")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("engine already started")
	// ErrShutdown: the engine is shutting down or stopped, or stopped before
	// the task finished.
	ErrShutdown = errors.New("engine shut down")
	// ErrInjectedFailure is the error of a step failed by EngineConfig.FailRate.
	ErrInjectedFailure = errors.New("injected failure")
	// ErrPermanent marks a step failure that retrying cannot fix: a handler
	// returns an error wrapping it to fail its task at once.
	ErrPermanent = errors.New("permanent failure")
	// ErrCancelled: the task was cancelled (TaskHandle.Cancel).
	ErrCancelled = errors.New("task cancelled")
)

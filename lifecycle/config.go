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
	// FailRate is the probability, in [0, 1], that a step's handler fails
	// with ErrInjectedFailure instead of running: a fault injector for demos
	// and tests. The draw is made per step when its task is initialised.
	FailRate float64 `yaml:"fail_rate"`
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
	return errors.Join(errs...)
}

// configKey returns the YAML key of an EngineConfig field, so that messages
// cannot drift from the tags.
func configKey(field string) string {
	f, ok := reflect.TypeFor[EngineConfig]().FieldByName(field)
	if !ok {
		panic("lifecycle: no EngineConfig field " + field)
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
	// Rand draws the injected failures of EngineConfig.FailRate. Only the
	// orchestration goroutine uses it, in task arrival order, so a seeded
	// source makes sequential submissions reproducible. Nil means a randomly
	// seeded source. Don't share it with other goroutines.
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
)

package lifecycle_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/lifecycle"
)

func TestEngineConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       lifecycle.EngineConfig
		wantPaths []string
		wantMsg   string
	}{
		{name: "zero value", cfg: lifecycle.EngineConfig{}},
		{name: "defaults", cfg: lifecycle.NewDefaultEngineConfig()},
		{name: "full", cfg: lifecycle.EngineConfig{Workers: 8, QueueDepth: 1, ClaimMode: lifecycle.ClaimModePoll, PollInterval: time.Second, FailRate: 1}},
		{name: "negative workers", cfg: lifecycle.EngineConfig{Workers: -1}, wantPaths: []string{"workers"}, wantMsg: "workers: must not be negative, got -1"},
		{name: "negative queue depth", cfg: lifecycle.EngineConfig{QueueDepth: -2}, wantPaths: []string{"queue_depth"}},
		{name: "unknown claim mode", cfg: lifecycle.EngineConfig{ClaimMode: "push"}, wantPaths: []string{"claim_mode"}, wantMsg: `claim_mode: must be one of event, poll, got "push"`},
		{name: "negative poll interval", cfg: lifecycle.EngineConfig{PollInterval: -time.Second}, wantPaths: []string{"poll_interval"}},
		{name: "fail rate above 1", cfg: lifecycle.EngineConfig{FailRate: 1.5}, wantPaths: []string{"fail_rate"}, wantMsg: "fail_rate: must be in [0, 1], got 1.5"},
		{name: "fail rate NaN", cfg: lifecycle.EngineConfig{FailRate: math.NaN()}, wantPaths: []string{"fail_rate"}},
		{name: "negative max attempts", cfg: lifecycle.EngineConfig{MaxAttempts: -1}, wantPaths: []string{"max_attempts"}},
		{name: "backoff max below base", cfg: lifecycle.EngineConfig{BackoffBase: time.Second, BackoffMax: time.Millisecond}, wantPaths: []string{"backoff_max"}, wantMsg: "backoff_max: must not be below backoff_base (1s), got 1ms"},
		{
			name:      "negative durations",
			cfg:       lifecycle.EngineConfig{BackoffBase: -1, BackoffMax: -1, SampleInterval: -1, SlowSendThreshold: -1},
			wantPaths: []string{"backoff_base", "backoff_max", "sample_interval", "slow_send_threshold"},
		},
		{
			name:      "every problem at once",
			cfg:       lifecycle.EngineConfig{Workers: -1, QueueDepth: -1, ClaimMode: "x", PollInterval: -1, FailRate: -0.1},
			wantPaths: []string{"workers", "queue_depth", "claim_mode", "poll_interval", "fail_rate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.wantPaths) == 0 {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.wantPaths, fieldPaths(err))
			if tt.wantMsg != "" {
				require.EqualError(t, err, tt.wantMsg)
			}
		})
	}
}

// fieldPaths returns the paths of the *FieldErrors joined in err.
func fieldPaths(err error) []string {
	var paths []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *lifecycle.FieldError
		if errors.As(err, &fe) && fe == err {
			paths = append(paths, fe.FieldPath())
			return
		}
		if inner := errors.Unwrap(err); inner != nil {
			walk(inner)
		}
	}
	walk(err)
	return paths
}

func TestNewDefaultEngineConfig(t *testing.T) {
	t.Parallel()
	require.Equal(t, lifecycle.EngineConfig{
		Workers:           lifecycle.DefaultWorkers,
		QueueDepth:        lifecycle.DefaultQueueDepth,
		ClaimMode:         lifecycle.ClaimModeEvent,
		PollInterval:      lifecycle.DefaultPollInterval,
		MaxAttempts:       lifecycle.DefaultMaxAttempts,
		BackoffBase:       lifecycle.DefaultBackoffBase,
		BackoffMax:        lifecycle.DefaultBackoffMax,
		SampleInterval:    lifecycle.DefaultSampleInterval,
		SlowSendThreshold: lifecycle.DefaultSlowSendThreshold,
	}, lifecycle.NewDefaultEngineConfig())
}

func TestClaimModeUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text    string
		want    lifecycle.ClaimMode
		wantErr string
	}{
		{text: "event", want: lifecycle.ClaimModeEvent},
		{text: "poll", want: lifecycle.ClaimModePoll},
		{text: "Poll", wantErr: `unknown claim mode "Poll" (allowed: event, poll)`},
		{text: "", wantErr: `unknown claim mode "" (allowed: event, poll)`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			var m lifecycle.ClaimMode
			err := m.UnmarshalText([]byte(tt.text))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, m)
		})
	}
}

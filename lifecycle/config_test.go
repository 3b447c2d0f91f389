package lifecycle_test

import (
	"errors"
	"fmt"
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
			name: "performance overrides",
			cfg: lifecycle.EngineConfig{Performance: lifecycle.PerformanceConfig{
				SlowOperation: time.Second, MemorySpike: lifecycle.MiB,
				Operations: map[lifecycle.Operation]lifecycle.OperationThresholds{lifecycle.OperationExecute: {SlowOperation: time.Minute}},
			}},
		},
		{
			name:      "negative performance thresholds",
			cfg:       lifecycle.EngineConfig{Performance: lifecycle.PerformanceConfig{SlowOperation: -1, MemorySpike: -lifecycle.KiB}},
			wantPaths: []string{"performance.slow_operation", "performance.memory_spike"},
			wantMsg:   "performance.slow_operation: must not be negative, got -1ns\nperformance.memory_spike: must not be negative, got -1024",
		},
		{
			name: "bad performance overrides",
			cfg: lifecycle.EngineConfig{Performance: lifecycle.PerformanceConfig{Operations: map[lifecycle.Operation]lifecycle.OperationThresholds{
				"sleep":                          {},
				lifecycle.OperationSubmit:        {SlowOperation: -time.Second, MemorySpike: -1},
				lifecycle.OperationProcessResult: {MemorySpike: -1},
			}}},
			wantPaths: []string{
				"performance.operations.process_result.memory_spike",
				"performance.operations.sleep",
				"performance.operations.submit.slow_operation",
				"performance.operations.submit.memory_spike",
			},
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
		Performance: lifecycle.PerformanceConfig{
			SlowOperation: lifecycle.DefaultSlowOperationThreshold,
			MemorySpike:   lifecycle.DefaultMemorySpikeThreshold,
		},
	}, lifecycle.NewDefaultEngineConfig())
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text    string
		want    lifecycle.ByteSize
		str     string
		wantErr bool
	}{
		{text: "0", want: 0, str: "0B"},
		{text: "1000", want: 1000, str: "1000B"},
		{text: "512B", want: 512, str: "512B"},
		{text: "64MiB", want: 64 * lifecycle.MiB, str: "64MiB"},
		{text: "64 MiB", want: 64 * lifecycle.MiB, str: "64MiB"},
		{text: "2KiB", want: 2 * lifecycle.KiB, str: "2KiB"},
		{text: "1GiB", want: lifecycle.GiB, str: "1GiB"},
		{text: "3KB", want: 3000, str: "3000B"},
		{text: "1MB", want: 1_000_000, str: "1000000B"},
		{text: "2GB", want: 2_000_000_000, str: "1953125KiB"},
		{text: "1024KiB", want: lifecycle.MiB, str: "1MiB"},
		{text: "-1MiB", want: -lifecycle.MiB, str: "-1MiB"},
		{text: "", wantErr: true},
		{text: "MiB", wantErr: true},
		{text: "1.5GiB", wantErr: true},
		{text: "64mb", wantErr: true},
		{text: "+5B", wantErr: true},
		{text: "10TiB", wantErr: true},
		{text: "9999999999GiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			var b lifecycle.ByteSize
			err := b.UnmarshalText([]byte(tt.text))
			if tt.wantErr {
				require.ErrorContains(t, err, fmt.Sprintf("byte size %q", tt.text))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, b)
			require.Equal(t, tt.str, b.String())
			out, err := b.MarshalText()
			require.NoError(t, err)
			back, err := lifecycle.ParseByteSize(string(out))
			require.NoError(t, err)
			require.Equal(t, b, back)
		})
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "0", "1000B", "5 KB", "-3GiB", "9223372036854775807", "1.5MiB", "MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := lifecycle.ParseByteSize(s)
		if err != nil {
			require.Zero(t, b)
			return
		}
		// What parses prints in a form that parses back to the same size.
		back, err := lifecycle.ParseByteSize(b.String())
		require.NoError(t, err, "%q printed as %q", s, b.String())
		require.Equal(t, b, back)
	})
}

func TestOperationUnmarshalText(t *testing.T) {
	t.Parallel()
	var o lifecycle.Operation
	require.NoError(t, o.UnmarshalText([]byte("execute")))
	require.Equal(t, lifecycle.OperationExecute, o)
	require.EqualError(t, o.UnmarshalText([]byte("Execute")),
		`unknown operation "Execute" (allowed: initialize, enqueue, process_result, finalize, claim, execute, submit)`)
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

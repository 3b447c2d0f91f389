package main

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/router"
)

func TestApplySamplerEnv(t *testing.T) {
	t.Parallel()
	half := 0.5
	tests := []struct {
		name    string
		env     map[string]string
		set     *float64
		want    *float64
		warning string
	}{
		{name: "unset", env: nil, want: nil},
		{name: "always_on", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, want: ptr(1.0)},
		{name: "parentbased_always_off", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, want: ptr(0.0)},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, want: ptr(0.25)},
		{name: "ratio without arg", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}, want: ptr(1.0)},
		{name: "NaN arg", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"}, want: nil, warning: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "arg above 1", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, want: nil, warning: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "unsupported", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, want: nil, warning: "not supported"},
		{name: "config wins", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, set: &half, want: &half},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			tc := router.TraceConfig{SampleRatio: tt.set}
			applySamplerEnv(&tc, func(k string) string { return tt.env[k] }, slog.New(slog.NewTextHandler(&logs, nil)))
			require.Equal(t, tt.want, tc.SampleRatio)
			if tt.warning != "" {
				require.Contains(t, logs.String(), tt.warning)
			} else {
				require.Empty(t, logs.String())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

package host_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/plugins/host"
)

func TestConfigRedacted(t *testing.T) {
	t.Parallel()
	cfg := host.Config{Instances: []host.InstanceConfig{{
		Path: "/bin/p",
		Args: []string{"--upstream", "https://u:p@up.example"},
		Env:  map[string]string{"API_TOKEN": "s3cret", "REGION": "eu"},
		Config: map[string]any{
			"url":     "http://user:pw@influx:8086",
			"headers": map[string]any{"Authorization": "Bearer x", "X-Team": "obs"},
			"list":    []any{map[string]any{"password": "p"}, 7},
			"timeout": "5s",
		},
	}}}
	got := cfg.Redacted([]string{"token", "authorization", "password"})
	in := got.Instances[0]
	require.Equal(t, map[string]string{"API_TOKEN": "[REDACTED]", "REGION": "eu"}, in.Env)
	require.Equal(t, []string{"--upstream", "https://[REDACTED]@up.example"}, in.Args)
	require.Equal(t, map[string]any{
		"url":     "http://[REDACTED]@influx:8086",
		"headers": map[string]any{"Authorization": "[REDACTED]", "X-Team": "obs"},
		"list":    []any{map[string]any{"password": "[REDACTED]"}, 7},
		"timeout": "5s",
	}, in.Config)
	// The original is untouched.
	require.Equal(t, "s3cret", cfg.Instances[0].Env["API_TOKEN"])
	require.Equal(t, "Bearer x", cfg.Instances[0].Config.(map[string]any)["headers"].(map[string]any)["Authorization"])
}

package redact_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/internal/redact"
)

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"no url here", "no url here"},
		{"POST https://user:hunter2@hook.example/x: 401", "POST https://[REDACTED]@hook.example/x: 401"},
		{`dial "http://token@10.0.0.1:8086/api"`, `dial "http://[REDACTED]@10.0.0.1:8086/api"`},
		{"mail me at ops@example.com", "mail me at ops@example.com"},
		{"two: a://x:y@h and b://u@k", "two: a://[REDACTED]@h and b://[REDACTED]@k"},
		{"postgres://sextant:pw@db:5432/x?sslmode=disable", "postgres://[REDACTED]@db:5432/x?sslmode=disable"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, redact.Text(tt.in), tt.in)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	def := redact.NewKeys(nil)
	for key, want := range map[string]bool{
		"password": true, "DB_PASSWORD": true, "Authorization": true, "api_key": true, "X-Api-Key": false,
		"bearer_token": true, "session_id": true, "namespace": false, "": false, "token_count": true,
	} {
		require.Equal(t, want, def.Sensitive(key), key)
	}
	none := redact.NewKeys([]string{})
	require.False(t, none.Sensitive("password"), "an empty list turns redaction off")
	custom := redact.NewKeys([]string{" PIN ", ""})
	require.True(t, custom.Sensitive("card_pin"))
	require.False(t, custom.Sensitive("password"))
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"http://u:p@h", "a@b", "x://@", "://u@", "https://a:b@c:d@e/f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := redact.Text(s)
		require.Equal(t, out, redact.Text(out), "redacting twice changes nothing more")
		if out != s {
			require.Contains(t, out, redact.Mask)
		}
	})
}

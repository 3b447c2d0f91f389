package traces

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func envMap(m map[string]string) getenvFunc {
	return func(k string) string { return m[k] }
}

func TestResolveExporter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     ExporterType
		env     map[string]string
		want    ExporterType
		wantErr string
	}{
		{name: "unset means none", want: ExporterTypeNone},
		{name: "otlp", env: map[string]string{envTracesExporter: "otlp"}, want: ExporterTypeOTLP},
		{name: "console is stdout", env: map[string]string{envTracesExporter: "console"}, want: ExporterTypeStdout},
		{name: "none", env: map[string]string{envTracesExporter: "none"}, want: ExporterTypeNone},
		{name: "blank is unset", env: map[string]string{envTracesExporter: "  "}, want: ExporterTypeNone},
		{name: "case and spaces", env: map[string]string{envTracesExporter: " OTLP "}, want: ExporterTypeOTLP},
		{name: "config wins", cfg: ExporterTypeFile, env: map[string]string{envTracesExporter: "otlp"}, want: ExporterTypeFile},
		{name: "config none wins", cfg: ExporterTypeNone, env: map[string]string{envTracesExporter: "otlp"}, want: ExporterTypeNone},
		{
			name: "unsupported", env: map[string]string{envTracesExporter: "zipkin"},
			wantErr: `OTEL_TRACES_EXPORTER="zipkin" is not supported (traces.exporter is empty, so the environment chooses): allowed values are otlp, console, none`,
		},
		{name: "lists are not supported", env: map[string]string{envTracesExporter: "otlp,console"}, wantErr: `OTEL_TRACES_EXPORTER="otlp,console" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolveExporter(tt.cfg, envMap(tt.env))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestResolveOTLP(t *testing.T) {
	t.Parallel()
	const (
		tracesEP  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
		genericEP = "OTEL_EXPORTER_OTLP_ENDPOINT"
	)
	tests := []struct {
		name     string
		cfg      OTLPConfig
		env      map[string]string
		wantDesc string
		wantErr  string
	}{
		{name: "defaults: grpc to localhost in plaintext", wantDesc: "otlp grpc localhost:4317 (insecure)"},
		{name: "http defaults", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf}, wantDesc: "otlp http/protobuf http://localhost:4318/v1/traces"},
		{name: "env protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, wantDesc: "otlp http/protobuf http://localhost:4318/v1/traces"},
		{
			name:     "signal protocol beats generic",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			wantDesc: "otlp grpc localhost:4317 (insecure)",
		},
		{
			name: "config protocol beats env", cfg: OTLPConfig{Protocol: ProtocolGRPC},
			env:      map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			wantDesc: "otlp grpc localhost:4317 (insecure)",
		},
		{
			name: "env http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json" is not supported (traces.otlp.protocol is empty, so the environment chooses): allowed values are grpc, http/protobuf`,
		},
		{name: "remote host:port means TLS", cfg: OTLPConfig{Endpoint: "collector:4317"}, wantDesc: "otlp grpc collector:4317 (tls)"},
		{name: "loopback IP", cfg: OTLPConfig{Endpoint: "127.0.0.2:4317"}, wantDesc: "otlp grpc 127.0.0.2:4317 (insecure)"},
		{name: "loopback IPv6", cfg: OTLPConfig{Endpoint: "[::1]:4317"}, wantDesc: "otlp grpc [::1]:4317 (insecure)"},
		{name: "http URL for grpc", cfg: OTLPConfig{Endpoint: "http://collector:4317"}, wantDesc: "otlp grpc collector:4317 (insecure)"},
		{name: "https URL to localhost", cfg: OTLPConfig{Endpoint: "https://localhost:4317"}, wantDesc: "otlp grpc localhost:4317 (tls)"},
		{name: "explicit insecure", cfg: OTLPConfig{Endpoint: "collector:4317", Insecure: ptr(true)}, wantDesc: "otlp grpc collector:4317 (insecure)"},
		{name: "explicit secure localhost", cfg: OTLPConfig{Insecure: ptr(false)}, wantDesc: "otlp grpc localhost:4317 (tls)"},
		{name: "tls files mean TLS on loopback", cfg: OTLPConfig{Endpoint: "127.0.0.1:4317", TLS: TLSConfig{CAFile: "ca.pem"}}, wantDesc: "otlp grpc 127.0.0.1:4317 (tls)"},
		{name: "http URL without path", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf, Endpoint: "https://c.example:4318"}, wantDesc: "otlp http/protobuf https://c.example:4318/v1/traces"},
		{name: "http URL with slash", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf, Endpoint: "http://c:4318/"}, wantDesc: "otlp http/protobuf http://c:4318/v1/traces"},
		{name: "http URL with path", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf, Endpoint: "https://c:443/otlp/traces"}, wantDesc: "otlp http/protobuf https://c:443/otlp/traces"},
		{name: "http host:port", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf, Endpoint: "localhost:4318"}, wantDesc: "otlp http/protobuf http://localhost:4318/v1/traces"},
		{name: "env generic endpoint grpc", env: map[string]string{genericEP: "http://collector:4317"}, wantDesc: "otlp grpc collector:4317 (insecure)"},
		{name: "env https endpoint", env: map[string]string{genericEP: "https://127.0.0.1:4317"}, wantDesc: "otlp grpc 127.0.0.1:4317 (tls)"},
		{name: "env signal beats generic", env: map[string]string{genericEP: "http://a:1", tracesEP: "http://b:2"}, wantDesc: "otlp grpc b:2 (insecure)"},
		{name: "config beats env endpoint", cfg: OTLPConfig{Endpoint: "c:3"}, env: map[string]string{tracesEP: "http://b:2"}, wantDesc: "otlp grpc c:3 (tls)"},
		{
			name: "env generic endpoint http appends path", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf},
			env: map[string]string{genericEP: "https://c:4318/base"}, wantDesc: "otlp http/protobuf https://c:4318/base/v1/traces",
		},
		{
			name: "env signal endpoint http used as is", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf},
			env: map[string]string{tracesEP: "https://c:4318/custom"}, wantDesc: "otlp http/protobuf https://c:4318/custom",
		},
		{
			name: "env signal endpoint http without path", cfg: OTLPConfig{Protocol: ProtocolHTTPProtobuf},
			env: map[string]string{tracesEP: "http://c:4318"}, wantDesc: "otlp http/protobuf http://c:4318/",
		},
		{name: "env bare endpoint", env: map[string]string{genericEP: "127.0.0.1:4317"}, wantDesc: "otlp grpc 127.0.0.1:4317 (insecure)"},
		{name: "env unix socket", env: map[string]string{genericEP: "unix:///run/otel.sock"}, wantDesc: "otlp grpc unix:///run/otel.sock (insecure)"},
		{name: "env insecure false on localhost", env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "false"}, wantDesc: "otlp grpc localhost:4317 (tls)"},
		{name: "env insecure true remote", cfg: OTLPConfig{Endpoint: "c:4317"}, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "TRUE"}, wantDesc: "otlp grpc c:4317 (insecure)"},
		{
			name: "env insecure beats env scheme", env: map[string]string{genericEP: "http://c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "false"},
			wantDesc: "otlp grpc c:4317 (tls)",
		},
		{
			name: "config scheme beats env insecure", cfg: OTLPConfig{Endpoint: "http://c:4317"},
			env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "false"}, wantDesc: "otlp grpc c:4317 (insecure)",
		},
		{name: "env certificate means TLS on localhost", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/ca.pem"}, wantDesc: "otlp grpc localhost:4317 (tls)"},
		{
			name: "env client cert without key", cfg: OTLPConfig{Insecure: ptr(false)},
			env:     map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/c.pem"},
			wantErr: `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE names "/c.pem" but no client key is set`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, err := resolveOTLP(tt.cfg, envMap(tt.env))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantDesc, plan.description())
		})
	}
}

func TestResolveOTLPHeaders(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1, Authorization=Basic%20eA==,bad,=x,c=%zz"})
	plan, err := resolveOTLP(OTLPConfig{Headers: map[string]string{"authorization": "Bearer y", "d": "4"}}, env)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "1", "authorization": "Bearer y", "d": "4"}, plan.headers)

	plan, err = resolveOTLP(OTLPConfig{}, env)
	require.NoError(t, err)
	require.Nil(t, plan.headers, "without configured headers the exporter reads the environment itself")

	signal := envMap(map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2"})
	plan, err = resolveOTLP(OTLPConfig{Headers: map[string]string{"c": "3"}}, signal)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"b": "2", "c": "3"}, plan.headers, "the signal variable replaces the generic one, as in the exporter")
}

func TestParseHeaders(t *testing.T) {
	t.Parallel()
	require.Equal(t, map[string]string{"k": "v w", "x": "a=b"}, parseHeaders("k=v%20w,x=a=b,novalue,,bad key=1"))
	require.Empty(t, parseHeaders(""))
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	got := Config{QueueSize: 100}.withDefaults()
	require.Equal(t, 100, got.BatchSize, "the default batch shrinks to a small queue")
	require.Equal(t, DefaultBatchTimeout, got.BatchTimeout)
	require.Equal(t, DefaultExportTimeout, got.ExportTimeout)
	require.Equal(t, RetryConfig{InitialInterval: 5 * time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: time.Minute}, got.OTLP.Retry)
	got = Config{OTLP: OTLPConfig{Retry: RetryConfig{InitialInterval: time.Minute}}}.withDefaults()
	require.Equal(t, time.Minute, got.OTLP.Retry.MaxInterval, "a default max interval never undercuts the initial one")
}

func TestWarnLimiter(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var l warnLimiter
	n, ok := l.note(t0, 0, false)
	require.False(t, ok, "nothing to say")
	require.Zero(t, n)
	n, ok = l.note(t0, 5, false)
	require.True(t, ok, "the first warning goes out at once")
	require.EqualValues(t, 5, n)
	_, ok = l.note(t0.Add(time.Second), 3, false)
	require.False(t, ok)
	_, ok = l.note(t0.Add(9*time.Second), 4, false)
	require.False(t, ok)
	n, ok = l.note(t0.Add(10*time.Second), 1, false)
	require.True(t, ok)
	require.EqualValues(t, 8, n, "held-back counts add up")
	_, ok = l.note(t0.Add(11*time.Second), 2, false)
	require.False(t, ok)
	n, ok = l.note(t0.Add(12*time.Second), 0, true)
	require.True(t, ok, "final says what is left")
	require.EqualValues(t, 2, n)
}

func ptr[T any](v T) *T { return &v }

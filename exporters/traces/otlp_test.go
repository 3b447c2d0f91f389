package traces_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	grpccodes "google.golang.org/grpc/codes"

	"github.com/sextant-telemetry/sextant/exporters/traces"
	"github.com/sextant-telemetry/sextant/internal/otlptest"
)

// otlpConfig is exporter otlp with explicit flushes only and no retries,
// changed by mod.
func otlpConfig(mod func(*traces.OTLPConfig)) traces.Config {
	cfg := traces.DefaultConfig()
	cfg.Exporter = traces.ExporterTypeOTLP
	cfg.BatchTimeout = time.Hour
	cfg.OTLP.Retry.Enabled = ptr(false)
	if mod != nil {
		mod(&cfg.OTLP)
	}
	return cfg
}

func newOTLPPipeline(t *testing.T, cfg traces.Config) *traces.Pipeline {
	t.Helper()
	p, err := traces.New(context.Background(), cfg, traces.Settings{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// emitted is what emit made, to compare with what arrived.
type emitted struct{ parent, child trace.SpanContext }

// emit makes a parent span and a child span through a real TracerProvider
// with p as its processor, then flushes p.
func emit(t *testing.T, p *traces.Pipeline) (emitted, error) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(p),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "sextant-test"))),
	)
	tracer := tp.Tracer("github.com/sextant-telemetry/sextant/router", trace.WithInstrumentationVersion("v1.2.3"))
	ctx, parent := tracer.Start(context.Background(), "pipeline.run", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("pipeline", "ingest"), attribute.Int("workers", 4), attribute.Bool("dry_run", false), attribute.Float64("ratio", 0.5)))
	_, child := tracer.Start(ctx, "stage.transform")
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	child.SetStatus(codes.Error, "row 7 is bad")
	child.End()
	parent.End()
	return emitted{parent: parent.SpanContext(), child: child.SpanContext()}, p.ForceFlush(waitCtx(t))
}

// requireReceived checks that r got exactly what emit made.
func requireReceived(t *testing.T, r *otlptest.Receiver, want emitted) {
	t.Helper()
	spans, err := r.WaitForSpans(waitCtx(t), 2)
	require.NoError(t, err)
	require.Len(t, spans, 2)

	roots := otlptest.Tree(spans)[want.parent.TraceID().String()]
	require.Equal(t, "pipeline.run\n  stage.transform\n", otlptest.Outline(roots))
	parent, child := roots[0], roots[0].Children[0]

	require.Equal(t, want.parent.TraceID().String(), parent.TraceID())
	require.Equal(t, want.parent.SpanID().String(), parent.SpanID())
	require.Empty(t, parent.ParentSpanID())
	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, parent.GetKind())
	require.Equal(t, map[string]any{"pipeline": "ingest", "workers": int64(4), "dry_run": false, "ratio": 0.5}, parent.Attrs())
	require.Equal(t, tracepb.Status_STATUS_CODE_UNSET, parent.GetStatus().GetCode())
	require.Equal(t, "sextant-test", parent.Resource["service.name"])
	require.Equal(t, "github.com/sextant-telemetry/sextant/router", parent.Scope)
	require.Equal(t, "v1.2.3", parent.ScopeVersion)

	require.Equal(t, want.child.SpanID().String(), child.SpanID())
	require.Equal(t, want.parent.SpanID().String(), child.ParentSpanID())
	require.Equal(t, tracepb.Status_STATUS_CODE_ERROR, child.GetStatus().GetCode())
	require.Equal(t, "row 7 is bad", child.GetStatus().GetMessage())
	require.Len(t, child.GetEvents(), 1)
	require.Equal(t, "retry", child.GetEvents()[0].GetName())
	require.Equal(t, map[string]any{"attempt": int64(2)}, otlptest.KeyValues(child.GetEvents()[0].GetAttributes()))
}

func TestOTLPExport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		receiver func(testing.TB, ...otlptest.Option) *otlptest.Receiver
		mod      func(o *traces.OTLPConfig, r *otlptest.Receiver)
		wantDesc func(r *otlptest.Receiver) string
	}{
		{
			name:     "grpc host:port",
			receiver: otlptest.NewGRPCReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Protocol, o.Endpoint = traces.ProtocolGRPC, r.Endpoint()
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp grpc " + r.Endpoint() + " (insecure)" },
		},
		{
			name:     "grpc URL gzip",
			receiver: otlptest.NewGRPCReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Protocol, o.Endpoint, o.Compression = traces.ProtocolGRPC, r.URL(), traces.CompressionGzip
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp grpc " + r.Endpoint() + " (insecure)" },
		},
		{
			name:     "grpc compression none",
			receiver: otlptest.NewGRPCReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Endpoint, o.Compression = r.Endpoint(), traces.CompressionNone
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp grpc " + r.Endpoint() + " (insecure)" },
		},
		{
			name:     "http URL",
			receiver: otlptest.NewHTTPReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Protocol, o.Endpoint = traces.ProtocolHTTPProtobuf, r.URL()
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp http/protobuf " + r.URL() + "/v1/traces" },
		},
		{
			name:     "http host:port gzip",
			receiver: otlptest.NewHTTPReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Protocol, o.Endpoint, o.Compression = traces.ProtocolHTTPProtobuf, r.Endpoint(), traces.CompressionGzip
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp http/protobuf " + r.URL() + "/v1/traces" },
		},
		{
			name:     "http URL with path",
			receiver: otlptest.NewHTTPReceiver,
			mod: func(o *traces.OTLPConfig, r *otlptest.Receiver) {
				o.Protocol, o.Endpoint = traces.ProtocolHTTPProtobuf, r.URL()+"/v1/traces"
			},
			wantDesc: func(r *otlptest.Receiver) string { return "otlp http/protobuf " + r.URL() + "/v1/traces" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.receiver(t)
			p := newOTLPPipeline(t, otlpConfig(func(o *traces.OTLPConfig) {
				tt.mod(o, r)
				o.Headers = map[string]string{"X-Tenant": "acme", "authorization": "Bearer t0k3n"}
			}))
			require.True(t, p.Enabled())
			require.Equal(t, tt.wantDesc(r), p.Description())
			want, err := emit(t, p)
			require.NoError(t, err)
			requireReceived(t, r, want)
			h := r.Headers()
			require.Equal(t, []string{"acme"}, h["x-tenant"])
			require.Equal(t, []string{"Bearer t0k3n"}, h["authorization"])
			require.Equal(t, traces.Stats{Exported: 2, Batches: 1}, p.Stats())
			require.NoError(t, p.Shutdown(waitCtx(t)))
		})
	}
}

func TestOTLPEnvironment(t *testing.T) {
	grpcR := otlptest.NewGRPCReceiver(t)
	httpR := otlptest.NewHTTPReceiver(t)
	other := otlptest.NewGRPCReceiver(t)
	files := otlptest.NewTLSFiles(t)
	tests := []struct {
		name     string
		env      map[string]string
		cfg      traces.Config
		want     *otlptest.Receiver
		wantDesc string
		headers  map[string][]string // a subset of the headers to expect
	}{
		{
			name:     "exporter, endpoint and protocol default from the environment",
			env:      map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": grpcR.URL()},
			cfg:      traces.Config{},
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
		},
		{
			name:     "protocol from the environment",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": httpR.URL()},
			cfg:      otlpConfig(nil),
			want:     httpR,
			wantDesc: "otlp http/protobuf " + httpR.URL() + "/v1/traces",
		},
		{
			name: "signal variables beat generic ones",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_ENDPOINT": httpR.URL(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grpcR.URL(),
			},
			cfg:      otlpConfig(nil),
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
		},
		{
			name:     "the configuration beats the environment",
			env:      map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": httpR.URL()},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Protocol, o.Endpoint = traces.ProtocolGRPC, grpcR.Endpoint() }),
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
		},
		{
			name: "environment headers are merged under configured ones",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-env=1,x-both=env,Authorization=Basic%20eA=="},
			cfg: otlpConfig(func(o *traces.OTLPConfig) {
				o.Endpoint, o.Headers = grpcR.Endpoint(), map[string]string{"x-both": "config", "authorization": "Bearer c"}
			}),
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
			headers:  map[string][]string{"x-env": {"1"}, "x-both": {"config"}, "authorization": {"Bearer c"}},
		},
		{
			name:     "environment headers alone",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-env=2"},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Protocol, o.Endpoint = traces.ProtocolHTTPProtobuf, httpR.URL() }),
			want:     httpR,
			wantDesc: "otlp http/protobuf " + httpR.URL() + "/v1/traces",
			headers:  map[string][]string{"x-env": {"2"}},
		},
		{
			name:     "configured compression none beats gzip from the environment",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Endpoint, o.Compression = grpcR.Endpoint(), traces.CompressionNone }),
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
		},
		{
			name:     "gzip from the environment",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Protocol, o.Endpoint = traces.ProtocolHTTPProtobuf, httpR.URL() }),
			want:     httpR,
			wantDesc: "otlp http/protobuf " + httpR.URL() + "/v1/traces",
			headers:  map[string][]string{"content-encoding": {"gzip"}},
		},
		{
			// The exporter would combine the variable's TLS settings with
			// the plaintext URL and refuse to start.
			name:     "a configured http:// URL beats a certificate from the environment (http)",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": files.CAFile},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Protocol, o.Endpoint = traces.ProtocolHTTPProtobuf, httpR.URL() }),
			want:     httpR,
			wantDesc: "otlp http/protobuf " + httpR.URL() + "/v1/traces",
		},
		{
			name:     "a configured http:// URL beats a certificate from the environment (grpc)",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": files.CAFile},
			cfg:      otlpConfig(func(o *traces.OTLPConfig) { o.Endpoint = grpcR.URL() }),
			want:     grpcR,
			wantDesc: "otlp grpc " + grpcR.Endpoint() + " (insecure)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			for _, r := range []*otlptest.Receiver{grpcR, httpR, other} {
				r.Reset()
			}
			p := newOTLPPipeline(t, tt.cfg)
			require.Equal(t, tt.wantDesc, p.Description())
			want, err := emit(t, p)
			require.NoError(t, err)
			requireReceived(t, tt.want, want)
			for k, v := range tt.headers {
				require.Equal(t, v, tt.want.Headers()[k], "header %s", k)
			}
			require.Equal(t, 1, grpcR.Requests()+httpR.Requests()+other.Requests(), "only the chosen receiver was called")
		})
	}
}

func TestFlagBeatsConfigAndEnvironment(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	r := otlptest.NewGRPCReceiver(t)
	cfg := otlpConfig(func(o *traces.OTLPConfig) { o.Endpoint = r.Endpoint() })
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	require.NoError(t, cfg.ApplyFlag("file:"+path))
	p := newOTLPPipeline(t, cfg)
	_, err := emit(t, p)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(data), "\n"))
	require.Zero(t, r.Requests())
}

func TestOTLPExportFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		receiver  func(testing.TB, ...otlptest.Option) *otlptest.Receiver
		protocol  traces.Protocol
		endpoint  func(*otlptest.Receiver) string
		retry     traces.RetryConfig
		wantErr   string
		wantTries func(t *testing.T, n int)
	}{
		{
			name: "grpc without retry", receiver: otlptest.NewGRPCReceiver, protocol: traces.ProtocolGRPC,
			endpoint: (*otlptest.Receiver).Endpoint, retry: traces.RetryConfig{Enabled: ptr(false)},
			wantErr: "Unavailable", wantTries: func(t *testing.T, n int) { require.Equal(t, 1, n) },
		},
		{
			name: "grpc with short retries", receiver: otlptest.NewGRPCReceiver, protocol: traces.ProtocolGRPC,
			endpoint: (*otlptest.Receiver).Endpoint,
			retry:    traces.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsedTime: 300 * time.Millisecond},
			wantErr:  "Unavailable", wantTries: func(t *testing.T, n int) { require.Greater(t, n, 1, "the exporter retried") },
		},
		{
			name: "http without retry", receiver: otlptest.NewHTTPReceiver, protocol: traces.ProtocolHTTPProtobuf,
			endpoint: (*otlptest.Receiver).URL, retry: traces.RetryConfig{Enabled: ptr(false)},
			wantErr: "failure set by SetFailure", wantTries: func(t *testing.T, n int) { require.Equal(t, 1, n) },
		},
		{
			name: "http with short retries", receiver: otlptest.NewHTTPReceiver, protocol: traces.ProtocolHTTPProtobuf,
			endpoint: (*otlptest.Receiver).URL,
			retry:    traces.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsedTime: 300 * time.Millisecond},
			wantErr:  "failure set by SetFailure", wantTries: func(t *testing.T, n int) { require.Greater(t, n, 1, "the exporter retried") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.receiver(t)
			r.SetFailure(grpccodes.Unavailable)
			p := newOTLPPipeline(t, otlpConfig(func(o *traces.OTLPConfig) {
				o.Protocol, o.Endpoint, o.Retry = tt.protocol, tt.endpoint(r), tt.retry
			}))
			_, err := emit(t, p)
			require.ErrorContains(t, err, tt.wantErr)
			st := p.Stats()
			require.Equal(t, traces.Drops{ExportFailed: 2}, st.Dropped)
			require.Equal(t, int64(1), st.Failures)
			require.Contains(t, st.LastError, tt.wantErr)
			require.Empty(t, r.Spans())
			tt.wantTries(t, r.Requests())

			// The collector recovers: the next spans get through.
			r.SetFailure(grpccodes.OK)
			want, err := emit(t, p)
			require.NoError(t, err)
			requireReceived(t, r, want)
			require.Equal(t, int64(2), p.Stats().Exported)
		})
	}
}

func TestOTLPTLS(t *testing.T) {
	t.Parallel()
	files := otlptest.NewTLSFiles(t)
	type receiverFunc = func(testing.TB, ...otlptest.Option) *otlptest.Receiver
	transports := []struct {
		name     string
		receiver receiverFunc
		protocol traces.Protocol
		endpoint func(*otlptest.Receiver) string
	}{
		{name: "grpc", receiver: otlptest.NewGRPCReceiver, protocol: traces.ProtocolGRPC, endpoint: (*otlptest.Receiver).Endpoint},
		{name: "http", receiver: otlptest.NewHTTPReceiver, protocol: traces.ProtocolHTTPProtobuf, endpoint: (*otlptest.Receiver).URL},
	}
	tests := []struct {
		name       string
		clientAuth tls.ClientAuthType
		tls        traces.TLSConfig
		insecure   *bool
		fail       bool
		wantErr    string
	}{
		{name: "CA file", tls: traces.TLSConfig{CAFile: files.CAFile}},
		{name: "system roots do not know the CA", insecure: ptr(false), fail: true, wantErr: "certificate"},
		{name: "mutual TLS", clientAuth: tls.RequireAndVerifyClientCert, tls: traces.TLSConfig{CAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile}},
		// With TLS 1.3 the server rejects the client after the client's
		// handshake has finished, so the error varies: a certificate alert,
		// a reset, a broken pipe.
		{name: "mutual TLS without a client certificate", clientAuth: tls.RequireAndVerifyClientCert, tls: traces.TLSConfig{CAFile: files.CAFile}, fail: true},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				server := files.Server.Clone()
				server.ClientAuth = tt.clientAuth
				r := tr.receiver(t, otlptest.WithTLS(server))
				p := newOTLPPipeline(t, otlpConfig(func(o *traces.OTLPConfig) {
					o.Protocol, o.Endpoint, o.TLS, o.Insecure = tr.protocol, tr.endpoint(r), tt.tls, tt.insecure
				}))
				if tr.protocol == traces.ProtocolGRPC {
					require.Equal(t, "otlp grpc "+r.Endpoint()+" (tls)", p.Description())
				} else {
					require.Equal(t, "otlp http/protobuf https://"+r.Endpoint()+"/v1/traces", p.Description())
				}
				want, err := emit(t, p)
				if tt.fail {
					require.Error(t, err)
					require.ErrorContains(t, err, tt.wantErr)
					require.Equal(t, int64(2), p.Stats().Dropped.ExportFailed)
					return
				}
				require.NoError(t, err)
				requireReceived(t, r, want)
			})
		}
	}
}

func TestNewTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	files := otlptest.NewTLSFiles(t)
	tests := []struct {
		name    string
		env     map[string]string
		tls     traces.TLSConfig
		wantErr string
	}{
		{name: "missing CA", tls: traces.TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}, wantErr: "traces: otlp.tls.ca_file: open "},
		{name: "CA not PEM", tls: traces.TLSConfig{CAFile: notPEM}, wantErr: "traces: otlp.tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{name: "key does not match", tls: traces.TLSConfig{CertFile: files.CertFile, KeyFile: files.ServerKeyFile}, wantErr: "traces: otlp.tls.cert_file and otlp.tls.key_file: tls: private key does not match public key"},
		{name: "CA from the environment", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": notPEM}, wantErr: "traces: OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: " + notPEM + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := traces.New(context.Background(), otlpConfig(func(o *traces.OTLPConfig) { o.TLS = tt.tls }), traces.Settings{})
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestNewDoesNotConnect builds a pipeline to a port nobody listens on: New
// succeeds, and the failure shows up as counted drops when spans are sent.
func TestNewDoesNotConnect(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	for _, protocol := range []traces.Protocol{traces.ProtocolGRPC, traces.ProtocolHTTPProtobuf} {
		t.Run(string(protocol), func(t *testing.T) {
			t.Parallel()
			p := newOTLPPipeline(t, otlpConfig(func(o *traces.OTLPConfig) { o.Protocol, o.Endpoint = protocol, addr }))
			_, err := emit(t, p)
			require.Error(t, err)
			require.Equal(t, traces.Drops{ExportFailed: 2}, p.Stats().Dropped)
			require.NoError(t, p.Shutdown(waitCtx(t)), "shutting down an exporter that never connected")
		})
	}
}

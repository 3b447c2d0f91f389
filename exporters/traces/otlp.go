package traces

import (
	"context"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// newOTLPExporter builds the OTLP exporter and returns it with its
// description. The connection settings (endpoint, security, TLS files,
// headers) are resolved here and always passed explicitly, so that the
// description and the insecure default cannot disagree with what the
// exporter does; the exporter still reads the timeout and compression
// variables itself when the configuration leaves them empty. Nothing
// connects: gRPC dials lazily, HTTP per request.
func newOTLPExporter(ctx context.Context, o OTLPConfig, getenv getenvFunc) (sdktrace.SpanExporter, string, error) {
	plan, err := resolveOTLP(o, getenv)
	if err != nil {
		return nil, "", err
	}
	tlsCfg, err := plan.tlsConfig()
	if err != nil {
		return nil, "", err
	}
	r := o.Retry
	enabled := r.Enabled == nil || *r.Enabled

	var client otlptrace.Client
	switch plan.protocol {
	case ProtocolHTTPProtobuf:
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(plan.url()),
			otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
			// nil when insecure: it clears TLS settings the exporter may have
			// read from the environment, which it refuses with plain http.
			otlptracehttp.WithTLSClientConfig(tlsCfg),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
				Enabled: enabled, InitialInterval: r.InitialInterval, MaxInterval: r.MaxInterval, MaxElapsedTime: r.MaxElapsedTime,
			}),
		}
		if plan.headers != nil {
			opts = append(opts, otlptracehttp.WithHeaders(plan.headers))
		}
		if o.Timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(o.Timeout))
		}
		switch o.Compression {
		case CompressionGzip:
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		case CompressionNone:
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		client = otlptracehttp.NewClient(opts...)
	default:
		// Explicit credentials win over anything the exporter read from the
		// environment, insecure ones included.
		creds := insecure.NewCredentials()
		if !plan.insecure {
			creds = credentials.NewTLS(tlsCfg)
		}
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(plan.target),
			otlptracegrpc.WithTLSCredentials(creds),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
				Enabled: enabled, InitialInterval: r.InitialInterval, MaxInterval: r.MaxInterval, MaxElapsedTime: r.MaxElapsedTime,
			}),
		}
		if plan.headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(plan.headers))
		}
		if o.Timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(o.Timeout))
		}
		switch o.Compression {
		case CompressionGzip:
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		case CompressionNone:
			// WithCompressor knows only gzip (and complains about anything
			// else); the identity compressor overrides a gzip default the
			// exporter read from the environment.
			opts = append(opts, otlptracegrpc.WithDialOption(
				grpc.WithDefaultCallOptions(grpc.UseCompressor(encoding.Identity))))
		}
		client = otlptracegrpc.NewClient(opts...)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, "", err
	}
	return exp, plan.description(), nil
}

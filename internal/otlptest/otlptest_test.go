package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/internal/otlptest"
)

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sendTree exports root -> (a -> a1, b) through exp with a real provider.
func sendTree(t *testing.T, exp sdktrace.SpanExporter) trace.TraceID {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "otlptest"))),
	)
	tracer := tp.Tracer("scope", trace.WithInstrumentationVersion("v9"))
	ctx, root := tracer.Start(context.Background(), "root", trace.WithAttributes(attribute.StringSlice("tags", []string{"x", "y"})))
	actx, a := tracer.Start(ctx, "a")
	_, a1 := tracer.Start(actx, "a1")
	a1.End()
	a.End()
	_, b := tracer.Start(ctx, "b")
	b.End()
	root.End()
	require.NoError(t, tp.Shutdown(waitCtx(t)))
	return root.SpanContext().TraceID()
}

func TestReceivers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		receiver func(testing.TB, ...otlptest.Option) *otlptest.Receiver
		exporter func(t *testing.T, r *otlptest.Receiver) sdktrace.SpanExporter
	}{
		{
			name:     "grpc",
			receiver: otlptest.NewGRPCReceiver,
			exporter: func(t *testing.T, r *otlptest.Receiver) sdktrace.SpanExporter {
				exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(r.Endpoint()), otlptracegrpc.WithInsecure(),
					otlptracegrpc.WithHeaders(map[string]string{"X-Key": "v"}), otlptracegrpc.WithCompressor("gzip"))
				require.NoError(t, err)
				return exp
			},
		},
		{
			name:     "http",
			receiver: otlptest.NewHTTPReceiver,
			exporter: func(t *testing.T, r *otlptest.Receiver) sdktrace.SpanExporter {
				exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(r.URL()+"/v1/traces"),
					otlptracehttp.WithHeaders(map[string]string{"X-Key": "v"}), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
				require.NoError(t, err)
				return exp
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.receiver(t)
			require.Nil(t, r.Headers())
			tid := sendTree(t, tt.exporter(t, r))

			spans, err := r.WaitForSpans(waitCtx(t), 4)
			require.NoError(t, err)
			require.Len(t, spans, 4)
			require.Equal(t, 4, r.Requests(), "a syncer sends one span per request")
			require.Equal(t, []string{"v"}, r.Headers()["x-key"], "names are lower case")

			roots := otlptest.Tree(spans)[tid.String()]
			require.Equal(t, "root\n  a\n    a1\n  b\n", otlptest.Outline(roots))
			root := roots[0]
			require.Equal(t, map[string]any{"tags": []any{"x", "y"}}, root.Attrs())
			require.Equal(t, "otlptest", root.Resource["service.name"])
			require.Equal(t, "scope", root.Scope)
			require.Equal(t, "v9", root.ScopeVersion)
			require.Len(t, root.TraceID(), 32)
			require.Len(t, root.SpanID(), 16)
			require.Empty(t, root.ParentSpanID())

			kids := otlptest.Children(spans, root.SpanID())
			require.Len(t, kids, 2)
			require.Equal(t, "a", kids[0].GetName())
			require.Equal(t, "b", kids[1].GetName())
			require.Len(t, otlptest.Named(spans, "a1"), 1)
			require.Equal(t, kids[0].SpanID(), otlptest.Named(spans, "a1")[0].ParentSpanID())

			r.Reset()
			require.Empty(t, r.Spans())
			require.Zero(t, r.Requests())
			require.Nil(t, r.Headers())
		})
	}
}

func TestReceiverFailure(t *testing.T) {
	t.Parallel()
	r := otlptest.NewGRPCReceiver(t)
	r.SetFailure(codes.PermissionDenied)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(r.Endpoint()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"k": "v"}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	tp := sdktrace.NewTracerProvider()
	_, span := tp.Tracer("t").Start(context.Background(), "s")
	span.End()
	ro := span.(sdktrace.ReadOnlySpan)
	err = exp.ExportSpans(waitCtx(t), []sdktrace.ReadOnlySpan{ro})
	require.ErrorContains(t, err, "PermissionDenied")
	require.Equal(t, 1, r.Requests())
	require.Equal(t, []string{"v"}, r.Headers()["k"], "a failed request still records headers")
	require.Empty(t, r.Spans())

	r.SetFailure(codes.OK)
	require.NoError(t, exp.ExportSpans(waitCtx(t), []sdktrace.ReadOnlySpan{ro}))
	require.Len(t, r.Spans(), 1)
}

func TestHTTPReceiverStatuses(t *testing.T) {
	t.Parallel()
	r := otlptest.NewHTTPReceiver(t)
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{})
	require.NoError(t, err)
	post := func(t *testing.T, path, contentType string, body []byte, header map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(waitCtx(t), http.MethodPost, r.URL()+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp
	}
	require.Equal(t, http.StatusNotFound, post(t, "/v1/metrics", "application/x-protobuf", body, nil).StatusCode)
	require.Equal(t, http.StatusUnsupportedMediaType, post(t, "/v1/traces", "application/json", []byte("{}"), nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, post(t, "/v1/traces", "application/x-protobuf", []byte{0xff, 0xff}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, post(t, "/v1/traces", "application/x-protobuf", body, map[string]string{"Content-Encoding": "gzip"}).StatusCode)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(body)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.Equal(t, http.StatusOK, post(t, "/v1/traces", "application/x-protobuf", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}).StatusCode)

	resp, err := http.Get(r.URL() + "/v1/traces")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	for code, want := range map[codes.Code]int{
		codes.Unavailable:       http.StatusServiceUnavailable,
		codes.ResourceExhausted: http.StatusTooManyRequests,
		codes.DeadlineExceeded:  http.StatusGatewayTimeout,
		codes.Aborted:           http.StatusBadGateway,
		codes.InvalidArgument:   http.StatusBadRequest,
		codes.Unauthenticated:   http.StatusUnauthorized,
		codes.PermissionDenied:  http.StatusForbidden,
		codes.NotFound:          http.StatusNotFound,
		codes.Unimplemented:     http.StatusNotImplemented,
		codes.Internal:          http.StatusInternalServerError,
		codes.OK:                http.StatusOK,
	} {
		r.SetFailure(code)
		require.Equal(t, want, post(t, "/v1/traces", "application/x-protobuf", body, nil).StatusCode, code.String())
	}
	require.Equal(t, 12, r.Requests(), "only requests that were decoded count")
}

func TestWaitForSpansGivesUp(t *testing.T) {
	t.Parallel()
	r := otlptest.NewGRPCReceiver(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	spans, err := r.WaitForSpans(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "otlptest: received 0 of 1 spans")
	require.Empty(t, spans)
	spans, err = r.WaitForSpans(ctx, 0)
	require.NoError(t, err, "nothing to wait for")
	require.Empty(t, spans)
}

func TestTLS(t *testing.T) {
	t.Parallel()
	files := otlptest.NewTLSFiles(t)
	server := files.Server.Clone()
	server.ClientAuth = tls.RequireAndVerifyClientCert
	r := otlptest.NewGRPCReceiver(t, otlptest.WithTLS(server))
	require.Equal(t, "https://"+r.Endpoint(), r.URL())

	caPEM, err := os.ReadFile(files.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	require.NoError(t, err)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(r.Endpoint()),
		otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})))
	require.NoError(t, err)
	sendTree(t, exp)
	_, err = r.WaitForSpans(waitCtx(t), 4)
	require.NoError(t, err)
}

func TestTreeEdgeCases(t *testing.T) {
	t.Parallel()
	span := func(trace, id, parent byte, name string, start uint64) otlptest.Span {
		s := &tracepb.Span{TraceId: bytes.Repeat([]byte{trace}, 16), SpanId: bytes.Repeat([]byte{id}, 8), Name: name, StartTimeUnixNano: start}
		if parent != 0 {
			s.ParentSpanId = bytes.Repeat([]byte{parent}, 8)
		}
		return otlptest.Span{Span: s}
	}
	spans := []otlptest.Span{
		span(1, 3, 1, "late child", 30),
		span(1, 2, 1, "early child", 10),
		span(1, 4, 1, "same time b", 20),
		span(1, 5, 1, "same time a", 20),
		span(1, 1, 0, "root", 0),
		span(1, 6, 9, "orphan", 5),
		span(2, 1, 0, "other trace", 0),
	}
	tree := otlptest.Tree(spans)
	require.Len(t, tree, 2)
	require.Equal(t, "root\n  early child\n  same time a\n  same time b\n  late child\norphan\n",
		otlptest.Outline(tree["01010101010101010101010101010101"]))
	require.Equal(t, "other trace\n", otlptest.Outline(tree["02020202020202020202020202020202"]))
	require.Len(t, otlptest.Children(spans, ""), 2, "roots of both traces")
}

func TestValue(t *testing.T) {
	t.Parallel()
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	got := otlptest.KeyValues([]*commonpb.KeyValue{
		kv("s", &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}),
		kv("b", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
		kv("i", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -3}}),
		kv("f", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}),
		kv("y", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{1}}}),
		kv("a", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}, {},
		}}}}),
		kv("m", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
			kv("k", &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "v"}}),
		}}}}),
		kv("empty", nil),
	})
	require.Equal(t, map[string]any{
		"s": "x", "b": true, "i": int64(-3), "f": 1.5, "y": []byte{1},
		"a": []any{int64(1), nil}, "m": map[string]any{"k": "v"}, "empty": nil,
	}, got)
}

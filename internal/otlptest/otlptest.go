// Package otlptest owns in-process OTLP trace receivers for tests: a gRPC
// one and an HTTP one (protobuf at /v1/traces), both on 127.0.0.1 with a
// free port, plus helpers to read what they received as span trees and to
// make throwaway TLS certificates.
//
// It is test support: it imports testing, gRPC and the OTLP protobuf types,
// and nothing of this module, so that any package's tests may use it.
//
// Concurrency: every method of [*Receiver] is safe for concurrent use. A
// receiver runs server goroutines that t.Cleanup stops and waits for, so
// tests stay clean under goleak.
package otlptest

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Span is one received span with the resource and scope it came under.
// The embedded *tracepb.Span has the raw fields (TraceId, Name, Kind,
// Status, Attributes, Events, Links...).
type Span struct {
	// Resource is the resource's attributes, values as by [Value].
	Resource map[string]any
	// Scope and ScopeVersion are the instrumentation scope's name and
	// version.
	Scope, ScopeVersion string
	*tracepb.Span
}

// TraceID is the trace id in lower-case hex (32 digits).
func (s Span) TraceID() string { return hex.EncodeToString(s.GetTraceId()) }

// SpanID is the span id in lower-case hex (16 digits).
func (s Span) SpanID() string { return hex.EncodeToString(s.GetSpanId()) }

// ParentSpanID is the parent's span id in hex, or "" for a root span.
func (s Span) ParentSpanID() string { return hex.EncodeToString(s.GetParentSpanId()) }

// Attrs returns the span's attributes, values as by [Value]; a later
// duplicate key wins.
func (s Span) Attrs() map[string]any { return KeyValues(s.GetAttributes()) }

// KeyValues turns OTLP key-values into a map, values as by [Value].
func KeyValues(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = Value(kv.GetValue())
	}
	return m
}

// Value turns an OTLP AnyValue into a Go value: string, bool, int64,
// float64, []byte, []any for arrays, map[string]any for key-value lists,
// and nil for an empty value.
func Value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vs := x.ArrayValue.GetValues()
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = Value(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return KeyValues(x.KvlistValue.GetValues())
	default:
		return nil
	}
}

// Receiver is an OTLP trace receiver on 127.0.0.1. It records the spans of
// every successful request, in arrival order, and the headers of the last
// request, successful or not.
type Receiver struct {
	endpoint string // 127.0.0.1:port
	url      string // http(s)://127.0.0.1:port

	mu       sync.Mutex
	spans    []Span
	headers  map[string][]string
	failure  codes.Code
	requests int
	changed  chan struct{} // closed and replaced when spans are added
}

// Option configures a receiver.
type Option interface{ apply(*options) }

type options struct{ tls *tls.Config }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithTLS serves TLS with cfg (for example [TLSFiles.Server]); set
// cfg.ClientAuth to require client certificates.
func WithTLS(cfg *tls.Config) Option {
	return optionFunc(func(o *options) { o.tls = cfg })
}

func newReceiver(addr string, opts []Option) (*Receiver, options) {
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	scheme := "http"
	if o.tls != nil {
		scheme = "https"
	}
	return &Receiver{endpoint: addr, url: scheme + "://" + addr, changed: make(chan struct{})}, o
}

// NewGRPCReceiver starts an OTLP/gRPC receiver and stops it when the test
// ends.
func NewGRPCReceiver(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listen: %v", err)
	}
	r, o := newReceiver(lis.Addr().String(), opts)
	var sopts []grpc.ServerOption
	if o.tls != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(o.tls)))
	}
	srv := grpc.NewServer(sopts...)
	coltracepb.RegisterTraceServiceServer(srv, &grpcService{r: r})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis) // returns when Stop closes the listener
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return r
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s *grpcService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if code := s.r.record(map[string][]string(md.Copy()), req); code != codes.OK {
		return nil, status.Error(code, "otlptest: failure set by SetFailure")
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// NewHTTPReceiver starts an OTLP/HTTP receiver taking protobuf (optionally
// gzip-compressed) at POST /v1/traces, and stops it when the test ends.
func NewHTTPReceiver(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	r, o := newReceiver(srv.Listener.Addr().String(), opts)
	srv.Config.Handler = http.HandlerFunc(r.serveHTTP)
	// Failed TLS handshakes are expected in tests of TLS settings; the
	// client reports them.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.tls != nil {
		srv.TLS = o.tls
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return r
}

// maxBody bounds a request body, as a collector would.
const maxBody = 64 << 20

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "otlptest: POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "otlptest: Content-Type must be application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "otlptest: gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = io.LimitReader(zr, maxBody)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "otlptest: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		http.Error(w, "otlptest: decode body: "+err.Error(), http.StatusBadRequest)
		return
	}
	headers := make(map[string][]string, len(req.Header))
	for k, v := range req.Header {
		headers[strings.ToLower(k)] = append([]string(nil), v...)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	if code := r.record(headers, &msg); code != codes.OK {
		out, _ := proto.Marshal(status.New(code, "otlptest: failure set by SetFailure").Proto())
		w.WriteHeader(httpStatus(code))
		_, _ = w.Write(out)
		return
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// httpStatus maps a gRPC code to the HTTP status OTLP/HTTP would use.
// 429, 502, 503 and 504 are the ones exporters retry.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Aborted:
		return http.StatusBadGateway
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unimplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

// record notes one request and, unless a failure is set, its spans. It
// returns the failure code (OK for success).
func (r *Receiver) record(headers map[string][]string, req *coltracepb.ExportTraceServiceRequest) codes.Code {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.headers = headers
	if r.failure != codes.OK {
		return r.failure
	}
	added := false
	for _, rs := range req.GetResourceSpans() {
		res := KeyValues(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, Span{
					Resource:     res,
					Scope:        ss.GetScope().GetName(),
					ScopeVersion: ss.GetScope().GetVersion(),
					Span:         s,
				})
				added = true
			}
		}
	}
	if added {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return codes.OK
}

// Endpoint is the receiver's host:port, for an exporter's endpoint setting.
func (r *Receiver) Endpoint() string { return r.endpoint }

// URL is "http://host:port", or "https://host:port" with [WithTLS]. For
// OTLP/HTTP, spans go to URL()+"/v1/traces".
func (r *Receiver) URL() string { return r.url }

// Spans returns every span received so far, in arrival order. The slice is
// the caller's; the spans are shared and must not be modified.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// WaitForSpans waits until at least n spans have arrived and returns them
// all, or, when ctx ends first, what has arrived and an error saying how
// many of n did.
func (r *Receiver) WaitForSpans(ctx context.Context, n int) ([]Span, error) {
	for {
		r.mu.Lock()
		got, changed := len(r.spans), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.Spans(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			spans := r.Spans()
			return spans, fmt.Errorf("otlptest: received %d of %d spans: %w", len(spans), n, ctx.Err())
		}
	}
}

// Headers returns the last request's headers (gRPC metadata or HTTP
// headers), names in lower case; nil before the first request.
func (r *Receiver) Headers() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.headers == nil {
		return nil
	}
	out := make(map[string][]string, len(r.headers))
	for k, v := range r.headers {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// SetFailure makes every following request fail with code (over HTTP, the
// matching status: Unavailable is 503, ResourceExhausted 429, and so on);
// codes.OK makes them succeed again. Failed requests are counted by
// Requests and set Headers, but their spans are not kept.
func (r *Receiver) SetFailure(code codes.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failure = code
}

// Requests counts the export requests received, failed ones included.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Reset forgets the spans, headers and request count received so far. The
// failure setting stays.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans, r.headers, r.requests = nil, nil, 0
}

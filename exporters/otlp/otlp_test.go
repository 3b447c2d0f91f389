package otlp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters/otlp"
)

// receiver is an OTLP metrics receiver (the collector's gRPC service).
type receiver struct {
	colmetricpb.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	reqs []*colmetricpb.ExportMetricsServiceRequest
}

func (r *receiver) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// counter returns the latest value of a sum named name, and the resource's
// service.name, from what was received.
func (r *receiver) counter(name string) (int64, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		for _, rm := range r.reqs[i].GetResourceMetrics() {
			svc := ""
			for _, kv := range rm.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() == name && len(m.GetSum().GetDataPoints()) > 0 {
						return m.GetSum().GetDataPoints()[0].GetAsInt(), svc, true
					}
				}
			}
		}
	}
	return 0, "", false
}

func meter(t *testing.T, e *otlp.Exporter) *sdkmetric.MeterProvider {
	t.Helper()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.Reader()),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "sextant"))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func TestPushOverGRPC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rcv := &receiver{}
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, rcv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	e, err := otlp.New(context.Background(), otlp.Config{Endpoint: ln.Addr().String(), Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Contains(t, e.Description(), "grpc "+ln.Addr().String()+" every 100ms")
	c, err := meter(t, e).Meter("test").Int64Counter("tasker.tasks.requests")
	require.NoError(t, err)
	c.Add(context.Background(), 26)
	require.Eventually(t, func() bool { v, _, ok := rcv.counter("tasker.tasks.requests"); return ok && v == 26 }, 10*time.Second, 20*time.Millisecond,
		"pushed on the interval, without a flush")
	c.Add(context.Background(), 4)
	require.NoError(t, e.Shutdown(context.Background()))
	v, svc, _ := rcv.counter("tasker.tasks.requests")
	require.Equal(t, int64(30), v, "shutdown pushes a last time; values are cumulative")
	require.Equal(t, "sextant", svc)
	require.NoError(t, e.Shutdown(context.Background()), "a second shutdown is not an error")
}

func TestPushOverHTTP(t *testing.T) {
	t.Parallel()
	rcv := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/metrics", r.URL.Path)
		require.Equal(t, "acme", r.Header.Get("X-Tenant"))
		b, _ := io.ReadAll(r.Body)
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if proto.Unmarshal(b, req) == nil {
			_, _ = rcv.Export(r.Context(), req)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	e, err := otlp.New(context.Background(), otlp.Config{Protocol: "http/protobuf", Endpoint: srv.URL, Headers: map[string]string{"X-Tenant": "acme"}})
	require.NoError(t, err)
	c, err := meter(t, e).Meter("test").Int64Counter("steps")
	require.NoError(t, err)
	c.Add(context.Background(), 3)
	require.NoError(t, e.Shutdown(context.Background()))
	v, _, ok := rcv.counter("steps")
	require.True(t, ok)
	require.Equal(t, int64(3), v)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  otlp.Config
		want string
	}{
		{otlp.Config{}, ""},
		{otlp.Config{Protocol: "thrift"}, `protocol: must be grpc or http/protobuf, got "thrift"`},
		{otlp.Config{Endpoint: "ftp://x:1"}, "endpoint: want host:port"},
		{otlp.Config{Endpoint: "https://u:p@x:1"}, "endpoint: credentials in the URL would reach logs"},
		{otlp.Config{Interval: time.Millisecond}, "interval: must be at least 100ms"},
		{otlp.Config{Timeout: -1}, "timeout: must not be negative"},
	} {
		err := tt.cfg.Validate()
		if tt.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.want)
	}
}

func TestInsecureFollowsTheScheme(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	for _, tt := range []struct {
		cfg  otlp.Config
		want string
	}{
		{otlp.Config{Endpoint: "https://localhost:4317", Insecure: &yes}, "insecure: true contradicts the endpoint's scheme https"},
		{otlp.Config{Endpoint: "http://collector:4317", Insecure: &no}, "insecure: false contradicts the endpoint's scheme http"},
		{otlp.Config{Endpoint: "https://localhost:4317", Insecure: &no}, ""},
	} {
		err := tt.cfg.Validate()
		if tt.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.want)
	}
}

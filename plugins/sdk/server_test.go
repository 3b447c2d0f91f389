package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// fake is an Exporter whose behaviour is its function fields.
type fake struct {
	info   Info
	export func(ctx context.Context, req *Request, w io.Writer) (Result, error)
}

func (f *fake) Info() Info { return f.info }

func (f *fake) Export(ctx context.Context, req *Request, w io.Writer) (Result, error) {
	return f.export(ctx, req, w)
}

// fakeAll adds every optional interface to fake.
type fakeAll struct {
	fake
	configure       func(ctx context.Context, cfg Config) error
	exportRequested func(ctx context.Context, e ExportRequested)
	exportCompleted func(ctx context.Context, e ExportCompleted)
	cacheSynced     func(ctx context.Context, e CacheSynced)
}

func (f *fakeAll) Configure(ctx context.Context, cfg Config) error { return f.configure(ctx, cfg) }

func (f *fakeAll) ExportRequested(ctx context.Context, e ExportRequested) {
	f.exportRequested(ctx, e)
}

func (f *fakeAll) ExportCompleted(ctx context.Context, e ExportCompleted) {
	f.exportCompleted(ctx, e)
}
func (f *fakeAll) CacheSynced(ctx context.Context, e CacheSynced) { f.cacheSynced(ctx, e) }

var (
	_ Exporter    = (*fake)(nil)
	_ Configurer  = (*fakeAll)(nil)
	_ ExportHooks = (*fakeAll)(nil)
	_ CacheSyncer = (*fakeAll)(nil)
)

var testInfo = Info{Name: "test", Version: "1.0.0", Description: "A test plugin.", Formats: []string{"text", "other"}}

// syncBuffer is a bytes.Buffer safe for the logger's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// dial serves e on an in-memory connection, as Serve registers it, and
// returns a client of it and the server's log.
func dial(t *testing.T, e Exporter) (pluginv1.ExporterClient, *syncBuffer) {
	t.Helper()
	return dialWith(t, e, func(gs *grpc.Server, s *server) { register(gs, s) })
}

// dialGenerated is dial with the service registered as
// pluginv1.RegisterExporterServer does, which decodes requests into OTLP
// messages, as a program running its own gRPC server around NewServer has
// it.
func dialGenerated(t *testing.T, e Exporter) (pluginv1.ExporterClient, *syncBuffer) {
	t.Helper()
	return dialWith(t, e, func(gs *grpc.Server, s *server) { pluginv1.RegisterExporterServer(gs, s) })
}

func dialWith(t *testing.T, e Exporter, reg func(gs *grpc.Server, s *server)) (pluginv1.ExporterClient, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	lis := bufconn.Listen(1 << 20)
	gs := newGRPCServer(nil)
	reg(gs, newServer(e, newLogger(logs, slog.LevelDebug)))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pluginv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(pluginv1.MaxMessageBytes)))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-served
	})
	return pluginv1.NewExporterClient(conn), logs
}

// testSnapshot has a counter, a gauge (with NaN) and a histogram.
func testSnapshot() *exporters.Snapshot {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	t1 := time.Date(2026, 11, 25, 10, 0, 0, 120000001, time.UTC)
	return &exporters.Snapshot{
		Resource: exporters.Resource{ServiceName: "sextant", Instance: "host-a/1", Attributes: []exporters.Label{{Name: "host.name", Value: "host-a"}}},
		Time:     t1,
		Families: []exporters.Family{
			{
				Name: "tasker.queue.depth", PromName: "tasker_queue_depth", Type: exporters.TypeGauge, Unit: "{task}", Description: "Tasks waiting.",
				Series: []exporters.Series{
					{Labels: []exporters.Label{{Name: "queue", Value: "a"}}, Value: 7, Time: t1},
					{Labels: []exporters.Label{{Name: "queue", Value: "b"}}, Value: math.NaN(), Time: t1},
				},
			},
			{
				Name: "tasker.step.duration", PromName: "tasker_step_duration_milliseconds", Type: exporters.TypeHistogram, Unit: "ms", Description: "Step time.",
				Series: []exporters.Series{{
					Labels: []exporters.Label{{Name: "result", Value: "ok"}}, Start: t0, Time: t1,
					Histogram: &exporters.Histogram{Count: 3, Sum: 12.5, Buckets: []exporters.Bucket{
						{UpperBound: 1, Count: 1}, {UpperBound: 10, Count: 2}, {UpperBound: math.Inf(1), Count: 3},
					}},
				}},
			},
			{
				Name: "tasker.tasks.requests", PromName: "tasker_tasks_requests_total", Type: exporters.TypeCounter, Description: "Requests.",
				Series: []exporters.Series{{Labels: []exporters.Label{{Name: "namespace", Value: "default"}}, Value: 3, Start: t0, Time: t1}},
			},
		},
	}
}

// inUTC returns s with every time in UTC, so that snapshots compare by
// instant rather than by location.
func inUTC(s *exporters.Snapshot) *exporters.Snapshot {
	c := *s
	c.Time = c.Time.UTC()
	c.Families = slices.Clone(s.Families)
	for i := range c.Families {
		f := &c.Families[i]
		f.Series = slices.Clone(f.Series)
		for j := range f.Series {
			x := &f.Series[j]
			x.Start, x.Time = x.Start.UTC(), x.Time.UTC()
			if x.Exemplar != nil {
				e := *x.Exemplar
				e.Time = e.Time.UTC()
				x.Exemplar = &e
			}
		}
	}
	return &c
}

func exportRequest(format string) *pluginv1.ExportRequest {
	return wire.ExportRequest(testSnapshot(), exporters.ExportRequest{
		ID: "0190c3e4-0000-7000-8000-000000000001", Format: format, Target: "on_demand", Options: map[string]string{"pretty": "true"},
	})
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		e        Exporter
		wantCaps []pluginv1.Capability
	}{
		{name: "plain", e: &fake{info: testInfo}},
		{name: "every optional interface", e: &fakeAll{fake: fake{info: testInfo}}, wantCaps: []pluginv1.Capability{
			pluginv1.Capability_CAPABILITY_CONFIGURE, pluginv1.Capability_CAPABILITY_EXPORT_CALLBACKS, pluginv1.Capability_CAPABILITY_CACHE_SYNCED,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := dial(t, tt.e)
			got, err := c.Describe(t.Context(), &pluginv1.DescribeRequest{ProtocolVersion: pluginv1.ProtocolVersion, HostVersion: "test"})
			require.NoError(t, err)
			require.Equal(t, testInfo.Name, got.GetName())
			require.Equal(t, testInfo.Version, got.GetVersion())
			require.Equal(t, testInfo.Description, got.GetDescription())
			require.Equal(t, testInfo.Formats, got.GetFormats())
			require.Equal(t, tt.wantCaps, got.GetCapabilities())
		})
	}
}

func TestDescribeInvalidInfo(t *testing.T) {
	t.Parallel()
	c, _ := dial(t, &fake{info: Info{Name: "Bad Name", Formats: []string{"x", "X", "x"}, Description: "two\nlines"}})
	_, err := c.Describe(t.Context(), &pluginv1.DescribeRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	msg := status.Convert(err).Message()
	for _, want := range []string{`Info.Name: want lower-case`, `Info.Formats[1]:`, `Info.Formats[2]: "x" is listed twice`, `Info.Description: want one line`} {
		require.Contains(t, msg, want)
	}
}

func TestValidateInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		info    Info
		wantErr string
	}{
		{name: "valid", info: Info{Name: "influx-2_x", Formats: []string{"influx"}}},
		{name: "empty name", info: Info{Formats: []string{"x"}}, wantErr: `Info.Name: want lower-case letters, digits, _ and - (at most 63, starting with a letter or digit); got ""`},
		{name: "upper case", info: Info{Name: "Influx", Formats: []string{"x"}}, wantErr: `got "Influx"`},
		{name: "no formats", info: Info{Name: "x"}, wantErr: "Info.Formats: want at least one format"},
		{name: "upper-case format", info: Info{Name: "x", Formats: []string{"Line"}}, wantErr: `Info.Formats[0]: want lower-case`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := validateInfo(tt.info)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	type cfg struct {
		URL     string   `json:"url"`
		Retries int      `json:"retries"`
		Tags    []string `json:"tags"`
	}
	// configure decodes strictly, then checks that url is set.
	configure := func(_ context.Context, c Config) error {
		var v cfg
		if err := c.Decode(&v); err != nil {
			return err
		}
		if v.URL == "" {
			return FieldErrors{{Path: "url", Message: "required"}}
		}
		return nil
	}
	tests := []struct {
		name      string
		configure func(ctx context.Context, c Config) error
		json      string
		want      []*pluginv1.FieldError
		wantCode  codes.Code
	}{
		{name: "accepted", configure: configure, json: `{"url":"http://x"}`},
		{name: "decode errors", configure: configure, json: `{"url":1,"tags":["a",{}],"extra":true}`, want: []*pluginv1.FieldError{
			{Path: "extra", Message: "unknown field (known: retries, tags, url)"},
			{Path: "tags[1]", Message: "must be a string, got a mapping"},
			{Path: "url", Message: "must be a string, got number 1"},
		}},
		{name: "the plugin's own check", configure: configure, json: `{}`, want: []*pluginv1.FieldError{{Path: "url", Message: "required"}}},
		{name: "empty section", configure: configure, json: ``, want: []*pluginv1.FieldError{{Path: "url", Message: "required"}}},
		{name: "not an object", configure: configure, json: `[1]`, want: []*pluginv1.FieldError{{Message: "the section must be a mapping (a JSON object)"}}},
		{name: "plain error is the whole section's", configure: func(context.Context, Config) error { return errors.New("cannot reach the database") },
			json: `{}`, want: []*pluginv1.FieldError{{Message: "cannot reach the database"}}},
		{name: "joined and wrapped field errors keep their paths", configure: func(context.Context, Config) error {
			return errors.Join(
				fmt.Errorf("checking: %w", FieldErrors{{Path: "a", Message: "one"}, {Path: "b[0]", Message: "two"}}),
				FieldError{Path: "c", Message: "three"},
				&FieldError{Path: "d", Message: "four"},
				errors.New("five"))
		}, json: `{}`, want: []*pluginv1.FieldError{
			{Path: "a", Message: "one"}, {Path: "b[0]", Message: "two"}, {Path: "c", Message: "three"}, {Path: "d", Message: "four"}, {Message: "five"},
		}},
		{name: "panic", configure: func(context.Context, Config) error { panic("boom") }, json: `{}`, wantCode: codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := dial(t, &fakeAll{fake: fake{info: testInfo}, configure: tt.configure})
			got, err := c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: []byte(tt.json)})
			if tt.wantCode != codes.OK {
				require.Equal(t, tt.wantCode, status.Code(err))
				return
			}
			require.NoError(t, err)
			require.Len(t, got.GetErrors(), len(tt.want))
			for i, w := range tt.want {
				require.Equal(t, w.GetPath(), got.GetErrors()[i].GetPath(), "error %d", i)
				require.Equal(t, w.GetMessage(), got.GetErrors()[i].GetMessage(), "error %d", i)
			}
		})
	}
}

func TestConfigureWithoutConfigurer(t *testing.T) {
	t.Parallel()
	c, _ := dial(t, &fake{info: testInfo})
	got, err := c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{}`)})
	require.NoError(t, err)
	require.Empty(t, got.GetErrors())
	got, err = c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"url":"x"}`)})
	require.NoError(t, err)
	require.Len(t, got.GetErrors(), 1)
	require.Equal(t, "plugin test takes no configuration; remove the config section", got.GetErrors()[0].GetMessage())
}

func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	for name, dial := range map[string]func(t *testing.T, e Exporter) (pluginv1.ExporterClient, *syncBuffer){
		"as Serve registers it": dial,
		"generated":             dialGenerated,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testExportRoundTrip(t, dial)
		})
	}
}

func testExportRoundTrip(t *testing.T, dial func(t *testing.T, e Exporter) (pluginv1.ExporterClient, *syncBuffer)) {
	want := testSnapshot()
	var got *Request
	var otlp *metricspb.MetricsData
	c, _ := dial(t, &fake{info: testInfo, export: func(_ context.Context, req *Request, w io.Writer) (Result, error) {
		got = req
		otlp = req.OTLP()
		for _, f := range req.Snapshot.Families {
			fmt.Fprintf(w, "%s %d\n", f.PromName, len(f.Series))
		}
		return Result{ContentType: "text/plain; charset=utf-8", Destination: "/tmp/x"}, nil
	}})
	res, err := c.Export(t.Context(), exportRequest("text"))
	require.NoError(t, err)
	require.Equal(t, "tasker_queue_depth 2\ntasker_step_duration_milliseconds 1\ntasker_tasks_requests_total 1\n", string(res.GetData()))
	require.Equal(t, "text/plain; charset=utf-8", res.GetContentType())
	require.Equal(t, int64(4), res.GetSeries(), "0 from Export means every series")
	require.Equal(t, "/tmp/x", res.GetDestination())

	require.Equal(t, "0190c3e4-0000-7000-8000-000000000001", got.ID)
	require.Equal(t, "text", got.Format)
	require.Equal(t, "on_demand", got.Target)
	require.Equal(t, map[string]string{"pretty": "true"}, got.Options)
	require.True(t, proto.Equal(exportRequest("text").GetMetrics(), otlp), "OTLP gives the message sent")
	// NaN never equals itself: compare it apart, then the rest.
	require.True(t, math.IsNaN(got.Snapshot.Families[0].Series[1].Value))
	got.Snapshot.Families[0].Series[1].Value = 0
	want.Families[0].Series[1].Value = 0
	require.Equal(t, inUTC(want), inUTC(got.Snapshot))
}

// otlpFake is a fake that reads Request.Metrics.
type otlpFake struct{ *fake }

func (otlpFake) UsesOTLP() {}

var _ OTLPUser = otlpFake{}

// TestExportMetrics checks that Serve fills Request.Metrics for an
// OTLPUser only.
func TestExportMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		user bool
	}{
		{name: "an OTLPUser", user: true},
		{name: "another exporter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var metrics, otlp *metricspb.MetricsData
			f := fake{info: testInfo, export: func(_ context.Context, req *Request, _ io.Writer) (Result, error) {
				metrics, otlp = req.Metrics, req.OTLP()
				return Result{}, nil
			}}
			var e Exporter = &f
			if tt.user {
				e = otlpFake{&f}
			}
			c, _ := dial(t, e)
			_, err := c.Export(t.Context(), exportRequest("text"))
			require.NoError(t, err)
			want := exportRequest("text").GetMetrics()
			require.True(t, proto.Equal(want, otlp))
			if tt.user {
				require.True(t, proto.Equal(want, metrics))
				require.Same(t, metrics, otlp)
			} else {
				require.Nil(t, metrics)
			}
		})
	}
}

// TestRequestOTLPByHand checks OTLP on a Request a plugin's test makes.
func TestRequestOTLPByHand(t *testing.T) {
	t.Parallel()
	s := testSnapshot()
	require.True(t, proto.Equal(wire.MetricsData(s), (&Request{Snapshot: s}).OTLP()))
	md := wire.MetricsData(s)
	require.Same(t, md, (&Request{Snapshot: s, Metrics: md}).OTLP())
}

// TestExportUndecodable checks that a request that is not protobuf gets
// the status gRPC gives a request it cannot unmarshal, whichever way the
// service is registered.
func TestExportUndecodable(t *testing.T) {
	t.Parallel()
	req := exportRequest("text")
	req.ProtoReflect().SetUnknown([]byte{0xff}) // a truncated tag: proto.Marshal writes it as it is
	var called atomic.Bool
	e := &fake{info: testInfo, export: func(context.Context, *Request, io.Writer) (Result, error) {
		called.Store(true)
		return Result{}, nil
	}}
	c, _ := dial(t, e)
	_, err := c.Export(t.Context(), req)
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "grpc: error unmarshalling request: ")
	c, _ = dialGenerated(t, e)
	_, want := c.Export(t.Context(), req)
	require.Equal(t, status.Convert(want).Proto(), status.Convert(err).Proto(), "the generated handler's status")
	require.False(t, called.Load())
}

// TestMarshalExportResponse checks the server's encoding of responses
// against proto.Marshal.
func TestMarshalExportResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    *pluginv1.ExportResponse
	}{
		{name: "empty", r: &pluginv1.ExportResponse{}},
		{name: "data only", r: &pluginv1.ExportResponse{Data: []byte("x")}},
		{name: "everything", r: &pluginv1.ExportResponse{Data: bytes.Repeat([]byte("abc"), 100), ContentType: "text/plain", Series: 300, Destination: "/tmp/out"}},
		{name: "negative series", r: &pluginv1.ExportResponse{Series: -1, Destination: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := proto.Marshal(tt.r)
			require.NoError(t, err)
			c := newServerCodec()
			require.True(t, c.ownResponses, "no other codec is registered")
			got, err := c.Marshal(tt.r)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got.Materialize()))
		})
	}
}

func TestExportResult(t *testing.T) {
	t.Parallel()
	c, _ := dial(t, &fake{info: testInfo, export: func(context.Context, *Request, io.Writer) (Result, error) {
		return Result{Series: 2}, nil
	}})
	res, err := c.Export(t.Context(), exportRequest("other"))
	require.NoError(t, err)
	require.Empty(t, res.GetData())
	require.Equal(t, "application/octet-stream", res.GetContentType())
	require.Equal(t, int64(2), res.GetSeries())
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      *pluginv1.ExportRequest
		export   func(ctx context.Context, req *Request, w io.Writer) (Result, error)
		wantCode codes.Code
		wantMsg  string
	}{
		{
			name: "format not in Info", req: exportRequest("json"), wantCode: codes.InvalidArgument,
			wantMsg: `plugin test does not write format "json" (it writes: text, other)`,
		},
		{
			name: "undecodable snapshot", wantCode: codes.InvalidArgument,
			req: func() *pluginv1.ExportRequest {
				r := exportRequest("text")
				r.Metrics.ResourceMetrics = append(r.Metrics.ResourceMetrics, r.Metrics.ResourceMetrics[0])
				return r
			}(),
			wantMsg: "invalid export request 0190c3e4-0000-7000-8000-000000000001: ",
		},
		{
			name: "plain error is internal", req: exportRequest("text"), wantCode: codes.Internal, wantMsg: "disk full",
			export: func(context.Context, *Request, io.Writer) (Result, error) { return Result{}, errors.New("disk full") },
		},
		{
			name: "invalid argument, wrapped", req: exportRequest("text"), wantCode: codes.InvalidArgument, wantMsg: "text: option x: bad",
			export: func(context.Context, *Request, io.Writer) (Result, error) {
				return Result{}, fmt.Errorf("text: %w", InvalidArgument(errors.New("option x: bad")))
			},
		},
		{
			name: "unavailable", req: exportRequest("text"), wantCode: codes.Unavailable, wantMsg: "post http://db: connection refused",
			export: func(context.Context, *Request, io.Writer) (Result, error) {
				return Result{}, Unavailable(errors.New("post http://db: connection refused"))
			},
		},
		{
			name: "a status passes through", req: exportRequest("text"), wantCode: codes.ResourceExhausted, wantMsg: "quota",
			export: func(context.Context, *Request, io.Writer) (Result, error) {
				return Result{}, status.Error(codes.ResourceExhausted, "quota")
			},
		},
		{
			name: "panic", req: exportRequest("text"), wantCode: codes.Internal, wantMsg: "exporter panicked: runtime error: index out of range [5] with length 0",
			export: func(context.Context, *Request, io.Writer) (Result, error) {
				var s []int
				_ = s[5]
				return Result{}, nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called atomic.Bool
			c, _ := dial(t, &fake{info: testInfo, export: func(ctx context.Context, req *Request, w io.Writer) (Result, error) {
				called.Store(true)
				_, _ = io.WriteString(w, "partial")
				return tt.export(ctx, req, w)
			}})
			res, err := c.Export(t.Context(), tt.req)
			require.Nil(t, res)
			require.Equal(t, tt.wantCode, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tt.wantMsg)
			require.Equal(t, tt.export != nil, called.Load())
		})
	}
}

func TestExportPanicKeepsServing(t *testing.T) {
	t.Parallel()
	var calls int
	var mu sync.Mutex
	c, logs := dial(t, &fake{info: testInfo, export: func(_ context.Context, _ *Request, w io.Writer) (Result, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			panic(fmt.Sprintf("bad export %d", n))
		}
		_, err := io.WriteString(w, "ok")
		return Result{}, err
	}})
	_, err := c.Export(t.Context(), exportRequest("text"))
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "exporter panicked: bad export 1", status.Convert(err).Message())
	require.Contains(t, logs.String(), `"@message":"exporter panicked"`)
	require.Contains(t, logs.String(), `server_test.go`, "the stack is logged")

	res, err := c.Export(t.Context(), exportRequest("text"))
	require.NoError(t, err)
	require.Equal(t, "ok", string(res.GetData()))
}

func TestExportDeadlinePropagates(t *testing.T) {
	t.Parallel()
	deadlines := make(chan time.Time, 1)
	ended := make(chan error, 1)
	c, _ := dial(t, &fake{info: testInfo, export: func(ctx context.Context, _ *Request, _ io.Writer) (Result, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return Result{}, errors.New("no deadline")
		}
		deadlines <- d
		<-ctx.Done()
		ended <- ctx.Err()
		return Result{}, ctx.Err()
	}})
	clientDeadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(t.Context(), clientDeadline)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Export(ctx, exportRequest("text"))
		errc <- err
	}()
	d := <-deadlines
	// gRPC sends the time left, not the instant: the plugin's deadline is
	// the host's give or take the call's transit.
	require.WithinDuration(t, clientDeadline, d, time.Minute)
	cancel()
	require.Equal(t, codes.Canceled, status.Code(<-errc))
	require.ErrorIs(t, <-ended, context.Canceled, "the plugin's context ends with the host's")
}

func TestExportConcurrentWithConfigure(t *testing.T) {
	t.Parallel()
	// Configure writes prefix without a lock; Export reads it. The race
	// detector fails this test if the SDK lets them overlap.
	var prefix string
	e := &fakeAll{fake: fake{info: testInfo, export: func(_ context.Context, _ *Request, w io.Writer) (Result, error) {
		_, err := io.WriteString(w, prefix)
		return Result{}, err
	}}, configure: func(_ context.Context, c Config) error {
		prefix = string(c.JSON())
		return nil
	}}
	c, _ := dial(t, e)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := c.Configure(t.Context(), &pluginv1.ConfigureRequest{ConfigJson: fmt.Appendf(nil, `{"n":%d}`, i)})
				require.NoError(t, err)
				return
			}
			res, err := c.Export(t.Context(), exportRequest("text"))
			require.NoError(t, err)
			require.Regexp(t, `^(|\{"n":\d\})$`, string(res.GetData()))
		})
	}
	wg.Wait()
}

func TestCallbacks(t *testing.T) {
	t.Parallel()
	var (
		mu        sync.Mutex
		requested []ExportRequested
		completed []ExportCompleted
		synced    []CacheSynced
	)
	e := &fakeAll{
		fake:            fake{info: testInfo},
		exportRequested: func(_ context.Context, e ExportRequested) { mu.Lock(); requested = append(requested, e); mu.Unlock() },
		exportCompleted: func(_ context.Context, e ExportCompleted) { mu.Lock(); completed = append(completed, e); mu.Unlock() },
		cacheSynced: func(_ context.Context, e CacheSynced) {
			if e.Strategy == "panic" {
				panic("sync")
			}
			mu.Lock()
			synced = append(synced, e)
			mu.Unlock()
		},
	}
	c, _ := dial(t, e)
	ctx := t.Context()
	_, err := c.ExportRequested(ctx, &pluginv1.ExportRequestedRequest{ExportId: "id", Format: "json", Target: "scrape", Options: map[string]string{"a": "b"}})
	require.NoError(t, err)
	_, err = c.ExportCompleted(ctx, &pluginv1.ExportCompletedRequest{ExportId: "id", Format: "json", Target: "scrape", Error: "boom", Exporter: "json", Bytes: 10, Series: 2, DurationNanos: 1500})
	require.NoError(t, err)
	_, err = c.CacheSynced(ctx, &pluginv1.CacheSyncedRequest{EventId: "e", CorrelationId: "c", TimeUnixNano: 1_700_000_000_000_000_001, Strategy: "full", MetricsCount: 5, Success: true, DurationMs: 1.5})
	require.NoError(t, err)
	_, err = c.CacheSynced(ctx, &pluginv1.CacheSyncedRequest{Strategy: "panic"})
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "CacheSynced panicked: sync", status.Convert(err).Message())

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []ExportRequested{{ID: "id", Format: "json", Target: "scrape", Options: map[string]string{"a": "b"}}}, requested)
	require.Equal(t, []ExportCompleted{{ID: "id", Format: "json", Target: "scrape", Error: "boom", Exporter: "json", Bytes: 10, Series: 2, Duration: 1500}}, completed)
	require.Equal(t, []CacheSynced{{EventID: "e", CorrelationID: "c", Time: time.Unix(0, 1_700_000_000_000_000_001).UTC(), Strategy: "full", MetricsCount: 5, Success: true, Duration: 1500 * time.Microsecond}}, synced)
}

func TestCallbacksNotImplemented(t *testing.T) {
	t.Parallel()
	c, _ := dial(t, &fake{info: testInfo})
	ctx := t.Context()
	_, err := c.ExportRequested(ctx, &pluginv1.ExportRequestedRequest{})
	require.NoError(t, err)
	_, err = c.ExportCompleted(ctx, &pluginv1.ExportCompletedRequest{})
	require.NoError(t, err)
	_, err = c.CacheSynced(ctx, &pluginv1.CacheSyncedRequest{})
	require.NoError(t, err)
}

func BenchmarkExport(b *testing.B) {
	s := testSnapshot()
	// A bigger snapshot: 1000 gauge series.
	for i := range 1000 {
		s.Families[0].Series = append(s.Families[0].Series, exporters.Series{
			Labels: []exporters.Label{{Name: "queue", Value: fmt.Sprintf("q%04d", i)}}, Value: float64(i), Time: s.Time,
		})
	}
	m := wire.ExportRequest(s, exporters.ExportRequest{ID: "id", Format: "text", Target: "bench"})
	srv := newServer(&fake{info: testInfo, export: func(_ context.Context, req *Request, w io.Writer) (Result, error) {
		_, err := fmt.Fprintf(w, "%d", req.Snapshot.SeriesCount())
		return Result{}, err
	}}, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srv.Export(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}

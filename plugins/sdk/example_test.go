package sdk_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// seriesCounter is a complete exporter: it writes how many series each
// family has.
type seriesCounter struct{}

func (seriesCounter) Info() sdk.Info {
	return sdk.Info{Name: "count", Version: "1.0.0", Description: "Series per family.", Formats: []string{"count"}}
}

func (seriesCounter) Export(ctx context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
	for _, f := range req.Snapshot.Families {
		if err := ctx.Err(); err != nil {
			return sdk.Result{}, err
		}
		if _, err := fmt.Fprintf(w, "%s %d\n", f.PromName, len(f.Series)); err != nil {
			return sdk.Result{}, err
		}
	}
	return sdk.Result{ContentType: "text/plain; charset=utf-8"}, nil
}

// A plugin's main is one call. Launched by Sextant, the binary serves its
// exporter over go-plugin; run by hand with --listen 127.0.0.1:7777, as a
// remote plugin.
func ExampleServe() {
	sdk.Serve(seriesCounter{})
}

// A plugin's tests call the service as Sextant would: NewServer on an
// in-memory gRPC connection, and the request Sextant would send, built with
// plugins/wire.
func ExampleNewServer() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pluginv1.RegisterExporterServer(srv, sdk.NewServer(seriesCounter{}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := pluginv1.NewExporterClient(conn)

	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	snapshot := &exporters.Snapshot{Time: now, Families: []exporters.Family{{
		Name: "tasker.queue.depth", PromName: "tasker_queue_depth", Type: exporters.TypeGauge,
		Series: []exporters.Series{{Value: 3, Time: now}},
	}}}
	res, err := client.Export(context.Background(), wire.ExportRequest(snapshot, exporters.ExportRequest{ID: "e-1", Format: "count"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s%s, %d series\n", res.GetData(), res.GetContentType(), res.GetSeries())
	// Output:
	// tasker_queue_depth 1
	// text/plain; charset=utf-8, 1 series
}

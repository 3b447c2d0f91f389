package sdk

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// EnvListen is the environment variable that, like --listen, makes a
// plugin run by hand serve plain gRPC at the address it holds.
const EnvListen = "SEXTANT_PLUGIN_LISTEN"

// stopTimeout bounds how long a remote plugin waits for exports in flight
// when it is told to stop.
const stopTimeout = 10 * time.Second

// Serve runs the plugin and does not return: it is the one call in main.
//
// Launched by Sextant (the environment holds pluginv1.MagicCookieKey =
// MagicCookieValue), it serves e over go-plugin's gRPC transport with the
// handshake of plugins/proto/pluginv1 until Sextant stops it. Run by hand
// with --listen ADDR (or SEXTANT_PLUGIN_LISTEN=ADDR), it serves the same
// protocol as a remote plugin on plain, unencrypted gRPC at ADDR, with the
// standard gRPC health service, until SIGINT or SIGTERM; Sextant then dials
// it (plugins.instances[i].address). Bind it to a loopback or private
// address, or put it behind a TLS proxy. Run by hand without either, it
// says what it is on standard error and exits with status 2.
//
// An invalid Info (see [Info]) is reported on standard error and ends the
// process with status 1 before anything is served.
func Serve(e Exporter) {
	os.Exit(run(context.Background(), e, os.Args, os.Getenv, stderr, Logger()))
}

// run is Serve without the exit, for tests.
func run(ctx context.Context, e Exporter, args []string, getenv func(string) string, errOut io.Writer, log *slog.Logger) int {
	prog := "plugin"
	if len(args) > 0 {
		prog = filepath.Base(args[0])
		args = args[1:]
	}
	launched := getenv(pluginv1.MagicCookieKey) == pluginv1.MagicCookieValue
	s := newServer(e, log)
	if s.infoErr != nil {
		if launched {
			// The host re-logs JSON lines at their level (this one at
			// ERROR); a plain line would arrive at INFO.
			log.Error("the plugin cannot start: invalid Info", "error", s.infoErr.Error())
		} else {
			fmt.Fprintf(errOut, "%s: the plugin cannot start, its Info is invalid:\n%v\n", prog, s.infoErr)
		}
		return 1
	}
	if launched {
		servePlugin(s, log)
		return 0
	}

	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(errOut)
	listen := fs.String("listen", getenv(EnvListen), "serve the plugin protocol on plain gRPC at this `address` (host:port), as a remote plugin")
	fs.Usage = func() {
		usage(errOut, prog, s.info)
		fmt.Fprintln(errOut, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "%s: unexpected arguments: %s\n\n", prog, strings.Join(fs.Args(), " "))
		fs.Usage()
		return 2
	}
	if *listen == "" {
		usage(errOut, prog, s.info)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveRemote(ctx, s, *listen, log); err != nil {
		log.Error("remote plugin stopped", "error", err.Error())
		return 1
	}
	return 0
}

// usage says what the binary is and how to use it.
func usage(w io.Writer, prog string, info Info) {
	fmt.Fprintf(w, `%s is a Sextant exporter plugin: %s %s, formats %s.
%s
Sextant launches it itself. Register it in sextant's YAML:

  plugins:
    instances:
      - path: %s
        config: {}   # the plugin's own settings

Or run it as a remote plugin, serving plain gRPC:

  %s --listen 127.0.0.1:7777     (or SEXTANT_PLUGIN_LISTEN=127.0.0.1:7777)

and give Sextant its address:

  plugins:
    instances:
      - address: 127.0.0.1:7777
`, prog, info.Name, info.Version, strings.Join(info.Formats, ", "), info.Description, absPath(prog), prog)
}

func absPath(prog string) string {
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return prog
}

// handshake is what go-plugin checks between Sextant and the plugin.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginv1.ProtocolVersion,
	MagicCookieKey:   pluginv1.MagicCookieKey,
	MagicCookieValue: pluginv1.MagicCookieValue,
}

// newGRPCServer makes a gRPC server that takes messages up to
// pluginv1.MaxMessageBytes either way, with go-plugin's options (TLS when
// the host asks for it), and the codec that exporterService needs.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		grpc.MaxRecvMsgSize(pluginv1.MaxMessageBytes),
		grpc.MaxSendMsgSize(pluginv1.MaxMessageBytes),
		grpc.ForceServerCodecV2(newServerCodec()))
	return grpc.NewServer(opts...)
}

// register registers s as the Exporter service of gs, a server made by
// newGRPCServer.
func register(gs *grpc.Server, s *server) {
	gs.RegisterService(&exporterService, s)
}

// exporterService is sextant.plugin.v1.Exporter as pluginv1 describes it,
// but for Export, whose handler takes the request still encoded (an
// encodedRequest, which serverCodec fills) and decodes it with
// server.exportEncoded: the OTLP messages of the snapshot, by far the
// largest part of an export's cost, are never built. On the wire nothing
// changes. It is never modified after it is built.
var exporterService = func() grpc.ServiceDesc {
	desc := pluginv1.Exporter_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "Export" {
			desc.Methods[i].Handler = exportHandler
		}
	}
	return desc
}()

// encodedRequest is a request message kept in its protobuf encoding.
type encodedRequest struct{ data []byte }

// exportHandler is the Export handler of exporterService, as the generated
// one but for the request's type.
func exportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &encodedRequest{}
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*server)
	if interceptor == nil {
		return s.exportEncoded(ctx, in.data)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pluginv1.Exporter_Export_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.exportEncoded(ctx, req.(*encodedRequest).data)
	})
}

// serverCodec is the codec registered for protobuf (gRPC's own, unless the
// plugin registered another), which it wraps, with two changes for
// exports: it keeps an encodedRequest's bytes as they are, and, over
// gRPC's own codec, it writes an ExportResponse without copying its data
// (see marshalExportResponse).
type serverCodec struct {
	encoding.CodecV2
	ownResponses bool // encode ExportResponses with marshalExportResponse
}

// grpcProtoCodec is gRPC's own protobuf codec, as registered before any
// plugin's main can register another. It is never modified.
var grpcProtoCodec = encoding.GetCodecV2(grpcproto.Name)

// newServerCodec wraps the codec registered for protobuf now.
func newServerCodec() serverCodec {
	c := encoding.GetCodecV2(grpcproto.Name)
	return serverCodec{CodecV2: c, ownResponses: c == grpcProtoCodec}
}

// Marshal implements encoding.CodecV2.
func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*pluginv1.ExportResponse); ok && c.ownResponses && len(r.ProtoReflect().GetUnknown()) == 0 {
		return marshalExportResponse(r), nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*encodedRequest); ok {
		r.data = data.Materialize() // data's buffers go back to a pool
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// marshalExportResponse encodes r as proto.Marshal does, but with r.Data,
// the export's output and nearly all of the message, as a buffer of its
// own rather than copied into one with the rest.
func marshalExportResponse(r *pluginv1.ExportResponse) mem.BufferSlice {
	var head, tail []byte
	if len(r.Data) > 0 {
		head = protowire.AppendTag(head, 1, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(r.Data)))
	}
	if r.ContentType != "" {
		tail = protowire.AppendTag(tail, 2, protowire.BytesType)
		tail = protowire.AppendString(tail, r.ContentType)
	}
	if r.Series != 0 {
		tail = protowire.AppendTag(tail, 3, protowire.VarintType)
		tail = protowire.AppendVarint(tail, uint64(r.Series))
	}
	if r.Destination != "" {
		tail = protowire.AppendTag(tail, 4, protowire.BytesType)
		tail = protowire.AppendString(tail, r.Destination)
	}
	out := make(mem.BufferSlice, 0, 3)
	for _, b := range [][]byte{head, r.Data, tail} {
		if len(b) > 0 {
			out = append(out, mem.SliceBuffer(b))
		}
	}
	return out
}

// grpcPlugin is the plugin in go-plugin's plugin map.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer registers the Exporter service.
func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	register(s, p.srv)
	return nil
}

// GRPCClient returns a client of the Exporter service; the SDK serves
// only, but go-plugin's interface has both sides.
func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginv1.NewExporterClient(c), nil
}

// servePlugin serves s over go-plugin until the host ends the process or
// closes the connection.
func servePlugin(s *server, log *slog.Logger) {
	level := hclog.Info
	if log.Enabled(context.Background(), levelTrace) {
		level = hclog.Trace
	} else if log.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{pluginv1.PluginName: &grpcPlugin{srv: s}},
		GRPCServer:      newGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      level,
			Output:     stderr,
			JSONFormat: true,
		}),
	})
}

// serveRemote serves s on plain gRPC at addr, with the standard health
// service, until ctx ends; then it stops taking calls and waits up to
// stopTimeout for those in flight.
func serveRemote(ctx context.Context, s *server, addr string, log *slog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return serveListener(ctx, s, lis, log)
}

func serveListener(ctx context.Context, s *server, lis net.Listener, log *slog.Logger) error {
	gs := newGRPCServer(nil)
	register(gs, s)
	hs := health.NewServer()
	for _, svc := range []string{"", pluginv1.Exporter_ServiceDesc.ServiceName, plugin.GRPCServiceName} {
		hs.SetServingStatus(svc, grpc_health_v1.HealthCheckResponse_SERVING)
	}
	grpc_health_v1.RegisterHealthServer(gs, hs)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	log.Info("serving the plugin protocol on plain gRPC", "plugin", s.info.Name, "version", s.info.Version, "address", lis.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("stopping", "address", lis.Addr().String())
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		log.Warn("exports still running after the stop timeout; cancelling them", "timeout", stopTimeout.String())
		gs.Stop()
		<-stopped
	}
	<-served
	return nil
}

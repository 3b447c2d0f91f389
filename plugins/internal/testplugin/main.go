// Command testplugin is an exporter plugin for the plugin host's tests,
// built with plugins/sdk, that misbehaves on request.
//
// It writes two formats: "test", one line per series
// (`<name>{labels} <value>`, histograms as <name>_count and <name>_sum),
// and "json-via-plugin", the built-in JSON exporter's output (so that a
// benchmark can compare the same bytes made in process and through a
// plugin). With the export option count=true, "test" output starts with
// "# export <n>", n counting this process's exports.
//
// Its configuration section:
//
//	mode: ok | exit | panic | hang | garbage | slow | fail | invalid
//	after: 1           # act on the Nth export of this process (default 1)
//	times: 1           # and on this many in a row (negative: on every one from the Nth)
//	once_file: PATH    # act only if PATH does not exist, creating it (once across restarts)
//	ready_file: PATH   # slow: write the pid here when the export starts
//	events_file: PATH  # append one line per lifecycle callback
//	callback_delay: 0s # sleep this long in each callback
//
// exit ends the process with status 3 mid-export; panic panics in a new
// goroutine (which the SDK cannot recover); hang blocks forever, ignoring
// the call's context; garbage answers bytes that are not a protobuf
// message; slow writes ready_file, then waits for the call's context;
// fail returns an INTERNAL error; invalid an INVALID_ARGUMENT one.
//
// The environment can make it misbehave before it serves:
// SEXTANT_TESTPLUGIN_PROTOCOL=<n> serves handshake protocol version n,
// SEXTANT_TESTPLUGIN_STDOUT_NOISE=1 prints a line on stdout first,
// SEXTANT_TESTPLUGIN_PLAIN_CODEC=1 leaves out the codec of mode garbage
// (for the export benchmark: the SDK's own response encoding), and
// SEXTANT_TESTPLUGIN_FORMATS_FILE=<path> reads the formats it describes
// from that file (comma-separated) when it exists. For profiling,
// SEXTANT_TESTPLUGIN_CPUPROFILE=<path> writes a CPU profile of the first
// SEXTANT_TESTPLUGIN_CPUPROFILE_SECONDS (default 10) seconds.
//
// Every Configure logs a JSON line through sdk.Logger, a plain line on
// stderr and a line on stdout, for the host's logging tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

// The formats.
const (
	formatTest = "test"
	formatJSON = "json-via-plugin"
)

// The modes.
var modes = []string{"ok", "exit", "panic", "hang", "garbage", "slow", "fail", "invalid"}

// garbleMark, as an export's destination, asks the codec to garble the
// response.
const garbleMark = "\x00garble"

type config struct {
	Mode          string        `json:"mode"`
	After         int           `json:"after"`
	Times         int           `json:"times"`
	OnceFile      string        `json:"once_file"`
	ReadyFile     string        `json:"ready_file"`
	EventsFile    string        `json:"events_file"`
	CallbackDelay time.Duration `json:"callback_delay"`
}

type exporter struct {
	formats []string
	cfg     config // replaced only by Configure, which the SDK runs alone
	exports atomic.Int64
	eventMu sync.Mutex
}

func (e *exporter) Info() sdk.Info {
	return sdk.Info{
		Name:        "testplugin",
		Version:     "1.0.0",
		Description: "the plugin host's test plugin, which misbehaves on request",
		Formats:     e.formats,
	}
}

func (e *exporter) Configure(_ context.Context, c sdk.Config) error {
	cfg := config{Mode: "ok", After: 1, Times: 1}
	var errs sdk.FieldErrors
	if err := c.Decode(&cfg); err != nil {
		if !errors.As(err, &errs) {
			return err
		}
	}
	if !slices.Contains(modes, cfg.Mode) {
		errs = append(errs, sdk.FieldError{Path: "mode", Message: fmt.Sprintf("unknown mode %q (want one of %s)", cfg.Mode, strings.Join(modes, ", "))})
	}
	if cfg.After < 1 {
		errs = append(errs, sdk.FieldError{Path: "after", Message: fmt.Sprintf("must be at least 1, got %d", cfg.After)})
	}
	if cfg.CallbackDelay < 0 {
		errs = append(errs, sdk.FieldError{Path: "callback_delay", Message: "must not be negative"})
	}
	if len(errs) > 0 {
		return errs
	}
	e.cfg = cfg
	sdk.Logger().Info("testplugin configured", "mode", cfg.Mode, "after", cfg.After, "pid", os.Getpid())
	fmt.Fprintln(os.Stderr, "testplugin: a plain line on stderr")
	fmt.Println("testplugin: a line on stdout")
	return nil
}

// acts reports whether export n misbehaves.
func (e *exporter) acts(n int64) bool {
	cfg := e.cfg
	if cfg.Mode == "ok" || n < int64(cfg.After) {
		return false
	}
	if cfg.Times >= 0 && n >= int64(cfg.After)+int64(max(cfg.Times, 1)) {
		return false
	}
	if cfg.OnceFile != "" {
		f, err := os.OpenFile(cfg.OnceFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return false // acted already, in this process or an earlier one
		}
		_ = f.Close()
	}
	return true
}

func (e *exporter) Export(ctx context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
	n := e.exports.Add(1)
	if e.acts(n) {
		switch e.cfg.Mode {
		case "exit":
			os.Exit(3)
		case "panic":
			go func() { panic("testplugin: panicking as configured") }()
			select {}
		case "hang":
			select {}
		case "garbage":
			return sdk.Result{Destination: garbleMark}, nil
		case "slow":
			if e.cfg.ReadyFile != "" {
				if err := os.WriteFile(e.cfg.ReadyFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
					return sdk.Result{}, err
				}
			}
			<-ctx.Done()
			return sdk.Result{}, ctx.Err()
		case "fail":
			return sdk.Result{}, fmt.Errorf("testplugin: failing export %d as configured", n)
		case "invalid":
			return sdk.Result{}, sdk.InvalidArgument(fmt.Errorf("testplugin: export %d has an invalid option, as configured", n))
		}
	}
	switch req.Format {
	case formatJSON:
		res, err := jsonexp.New().Export(ctx, req.Snapshot, exporters.ExportRequest{
			ID: req.ID, Format: exporters.FormatJSON, Target: req.Target, Options: req.Options,
		}, w)
		return sdk.Result{ContentType: res.ContentType, Series: res.Series}, err
	default:
		if req.Options["count"] == "true" {
			if _, err := fmt.Fprintf(w, "# export %d\n", n); err != nil {
				return sdk.Result{}, err
			}
		}
		return sdk.Result{ContentType: "text/plain; charset=utf-8"}, writeText(w, req.Snapshot)
	}
}

// writeText writes the "test" format.
func writeText(w io.Writer, s *exporters.Snapshot) error {
	var b []byte
	line := func(name string, labels []exporters.Label, value string) {
		b = append(b, name...)
		if len(labels) > 0 {
			b = append(b, '{')
			for i, l := range labels {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, l.Name...)
				b = append(b, '=')
				b = strconv.AppendQuote(b, l.Value)
			}
			b = append(b, '}')
		}
		b = append(b, ' ')
		b = append(b, value...)
		b = append(b, '\n')
	}
	for _, f := range s.Families {
		for _, sr := range f.Series {
			if sr.Histogram != nil {
				line(f.PromName+"_count", sr.Labels, strconv.FormatUint(sr.Histogram.Count, 10))
				line(f.PromName+"_sum", sr.Labels, strconv.FormatFloat(sr.Histogram.Sum, 'g', -1, 64))
				continue
			}
			line(f.PromName, sr.Labels, strconv.FormatFloat(sr.Value, 'g', -1, 64))
		}
	}
	_, err := w.Write(b)
	return err
}

func (e *exporter) event(ctx context.Context, line string) {
	if d := e.cfg.CallbackDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if e.cfg.EventsFile == "" {
		return
	}
	e.eventMu.Lock()
	defer e.eventMu.Unlock()
	f, err := os.OpenFile(e.cfg.EventsFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		sdk.Logger().Error("events file", "error", err.Error())
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintln(f, line)
}

func (e *exporter) ExportRequested(ctx context.Context, ev sdk.ExportRequested) {
	e.event(ctx, fmt.Sprintf("requested %s %s %s", ev.ID, ev.Format, ev.Target))
}

func (e *exporter) ExportCompleted(ctx context.Context, ev sdk.ExportCompleted) {
	e.event(ctx, fmt.Sprintf("completed %s %s %s bytes=%d error=%q", ev.ID, ev.Format, ev.Exporter, ev.Bytes, ev.Error))
}

func (e *exporter) CacheSynced(ctx context.Context, ev sdk.CacheSynced) {
	e.event(ctx, fmt.Sprintf("cache_synced %s %s %d %t", ev.EventID, ev.Strategy, ev.MetricsCount, ev.Success))
}

// garblingCodec is gRPC's proto codec, except that an export response
// marked with garbleMark goes out as bytes no protobuf parser accepts.
type garblingCodec struct{ encoding.CodecV2 }

func (c garblingCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*pluginv1.ExportResponse); ok && r.GetDestination() == garbleMark {
		// A field 1 (bytes) whose length runs past the end of the message.
		return mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0xff, 0x01, 'x'})}, nil
	}
	return c.CodecV2.Marshal(v)
}

// grpcPlugin serves the SDK's server under a handshake of our choosing.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv pluginv1.ExporterServer
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterExporterServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("testplugin serves only")
}

func formats() []string {
	if path := os.Getenv("SEXTANT_TESTPLUGIN_FORMATS_FILE"); path != "" {
		if b, err := os.ReadFile(path); err == nil {
			var out []string
			for _, f := range strings.Split(string(b), ",") {
				if f = strings.TrimSpace(f); f != "" {
					out = append(out, f)
				}
			}
			return out
		}
	}
	return []string{formatTest, formatJSON}
}

// profile writes a CPU profile of the first seconds of the process to
// path, for the host's export benchmark.
func profile(path, seconds string) {
	d, err := time.ParseDuration(seconds + "s")
	if err != nil {
		d = 10 * time.Second
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin: cpu profile:", err)
		return
	}
	time.AfterFunc(d, func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	})
}

func main() {
	if path := os.Getenv("SEXTANT_TESTPLUGIN_CPUPROFILE"); path != "" {
		profile(path, os.Getenv("SEXTANT_TESTPLUGIN_CPUPROFILE_SECONDS"))
	}
	// The garbling codec replaces gRPC's own, which turns off the SDK's
	// zero-copy responses: the export benchmark asks for a plain plugin.
	if os.Getenv("SEXTANT_TESTPLUGIN_PLAIN_CODEC") != "1" {
		encoding.RegisterCodecV2(garblingCodec{encoding.GetCodecV2(proto.Name)})
	}
	e := &exporter{formats: formats(), cfg: config{Mode: "ok", After: 1, Times: 1}}
	if os.Getenv("SEXTANT_TESTPLUGIN_STDOUT_NOISE") == "1" {
		fmt.Println("testplugin: noise before the handshake")
	}
	if v := os.Getenv("SEXTANT_TESTPLUGIN_PROTOCOL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "testplugin: SEXTANT_TESTPLUGIN_PROTOCOL: want a version number, got %q\n", v)
			os.Exit(2)
		}
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: plugin.HandshakeConfig{
				ProtocolVersion:  uint(n),
				MagicCookieKey:   pluginv1.MagicCookieKey,
				MagicCookieValue: pluginv1.MagicCookieValue,
			},
			Plugins:    plugin.PluginSet{pluginv1.PluginName: &grpcPlugin{srv: sdk.NewServer(e)}},
			GRPCServer: plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.Serve(e)
}

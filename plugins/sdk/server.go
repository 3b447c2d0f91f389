package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// defaultContentType is what an export's data is said to be when Export
// does not say.
const defaultContentType = "application/octet-stream"

// NewServer returns the Exporter gRPC service around e: what [Serve]
// registers, for tests (over google.golang.org/grpc/test/bufconn) and for
// programs that run their own gRPC server. It calls e.Info once. The
// service converts each request with plugins/wire, checks the format,
// recovers panics in e's methods, keeps Configure from running alongside
// anything else, and turns errors into gRPC statuses.
func NewServer(e Exporter) pluginv1.ExporterServer {
	return newServer(e, Logger())
}

func newServer(e Exporter, log *slog.Logger) *server {
	s := &server{e: e, info: e.Info(), log: log}
	s.infoErr = validateInfo(s.info)
	s.configurer, _ = e.(Configurer)
	s.hooks, _ = e.(ExportHooks)
	s.syncer, _ = e.(CacheSyncer)
	_, s.otlpUser = e.(OTLPUser)
	return s
}

// server implements pluginv1.ExporterServer around an Exporter.
type server struct {
	pluginv1.UnimplementedExporterServer

	e          Exporter
	info       Info
	infoErr    error
	configurer Configurer
	hooks      ExportHooks
	syncer     CacheSyncer
	otlpUser   bool // e implements OTLPUser: fill Request.Metrics
	log        *slog.Logger

	// lastOutput is how many bytes the last successful export wrote: the
	// next one's buffer is sized from it.
	lastOutput atomic.Int64

	// mu is held for writing by Configure and for reading by every other
	// call into the plugin's code, so that Configure never runs alongside
	// an export.
	mu sync.RWMutex
}

var _ pluginv1.ExporterServer = (*server)(nil)

// namePattern is what a plugin name may be, as the host checks it.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validateInfo reports every problem with info.
func validateInfo(info Info) error {
	var errs []error
	if !namePattern.MatchString(info.Name) {
		errs = append(errs, fmt.Errorf("Info.Name: want lower-case letters, digits, _ and - (at most 63, starting with a letter or digit); got %q", info.Name))
	}
	if len(info.Formats) == 0 {
		errs = append(errs, errors.New("Info.Formats: want at least one format"))
	}
	seen := map[string]bool{}
	for i, f := range info.Formats {
		switch {
		case !namePattern.MatchString(f):
			errs = append(errs, fmt.Errorf("Info.Formats[%d]: want lower-case letters, digits, _ and - (at most 63, starting with a letter or digit); got %q", i, f))
		case seen[f]:
			errs = append(errs, fmt.Errorf("Info.Formats[%d]: %q is listed twice", i, f))
		}
		seen[f] = true
	}
	if strings.ContainsAny(info.Description, "\r\n") {
		errs = append(errs, errors.New("Info.Description: want one line"))
	}
	return errors.Join(errs...)
}

// Describe returns the plugin's Info and the capabilities its optional
// interfaces give it. An invalid Info is an INTERNAL error naming every
// problem.
func (s *server) Describe(_ context.Context, req *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	if s.infoErr != nil {
		return nil, status.Errorf(codes.Internal, "plugin %q has an invalid Info: %v", s.info.Name, s.infoErr)
	}
	s.log.Debug("described", "host_version", req.GetHostVersion(), "host_protocol_version", req.GetProtocolVersion())
	var caps []pluginv1.Capability
	if s.configurer != nil {
		caps = append(caps, pluginv1.Capability_CAPABILITY_CONFIGURE)
	}
	if s.hooks != nil {
		caps = append(caps, pluginv1.Capability_CAPABILITY_EXPORT_CALLBACKS)
	}
	if s.syncer != nil {
		caps = append(caps, pluginv1.Capability_CAPABILITY_CACHE_SYNCED)
	}
	return &pluginv1.DescribeResponse{
		Name:         s.info.Name,
		Version:      s.info.Version,
		Description:  s.info.Description,
		Formats:      slices.Clone(s.info.Formats),
		Capabilities: caps,
	}, nil
}

// Configure hands the section to the plugin's Configure and reports its
// problems as field errors. A plugin without Configure accepts only an
// empty section.
func (s *server) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	cfg := NewConfig(req.GetConfigJson())
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg.JSON(), &obj); err != nil || obj == nil {
		return &pluginv1.ConfigureResponse{Errors: []*pluginv1.FieldError{{Message: "the section must be a mapping (a JSON object)"}}}, nil
	}
	if s.configurer == nil {
		if len(obj) == 0 {
			return &pluginv1.ConfigureResponse{}, nil
		}
		return &pluginv1.ConfigureResponse{Errors: []*pluginv1.FieldError{{Message: fmt.Sprintf("plugin %s takes no configuration; remove the config section", s.info.Name)}}}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.guard("Configure", func() error { return s.configurer.Configure(ctx, cfg) })
	if err == nil {
		s.log.Debug("configuration accepted")
		return &pluginv1.ConfigureResponse{}, nil
	}
	var p *panicError
	if errors.As(err, &p) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	var out []*pluginv1.FieldError
	for _, fe := range fieldErrors(err) {
		out = append(out, &pluginv1.FieldError{Path: fe.Path, Message: fe.Message})
	}
	return &pluginv1.ConfigureResponse{Errors: out}, nil
}

// fieldErrors flattens err into field errors: FieldErrors and FieldError
// anywhere in it (through wrapping and errors.Join) keep their paths; any
// other error is one problem with the section as a whole.
func fieldErrors(err error) FieldErrors {
	switch x := err.(type) {
	case FieldErrors:
		return x
	case FieldError:
		return FieldErrors{x}
	case *FieldError:
		return FieldErrors{*x}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out FieldErrors
		for _, e := range j.Unwrap() {
			if e != nil {
				out = append(out, fieldErrors(e)...)
			}
		}
		return out
	}
	// A wrapped field error keeps its path; the wrapping text is lost.
	if u := errors.Unwrap(err); u != nil && hasFieldErrors(u) {
		return fieldErrors(u)
	}
	return FieldErrors{{Message: err.Error()}}
}

func hasFieldErrors(err error) bool {
	var fes FieldErrors
	var fe FieldError
	var pfe *FieldError
	return errors.As(err, &fes) || errors.As(err, &fe) || errors.As(err, &pfe)
}

// Export converts the request, checks its format and runs the plugin's
// Export with the call's context. It serves a request that gRPC decoded
// into OTLP messages, as pluginv1.RegisterExporterServer has it;
// [Serve] registers exportEncoded instead, which never builds them.
func (s *server) Export(ctx context.Context, m *pluginv1.ExportRequest) (*pluginv1.ExportResponse, error) {
	start := time.Now()
	snap, ereq, err := wire.FromExportRequest(m)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid export request %s: %v", m.GetExportId(), err)
	}
	return s.export(ctx, start, &Request{
		ID:       ereq.ID,
		Format:   ereq.Format,
		Target:   ereq.Target,
		Options:  ereq.Options,
		Snapshot: snap,
		Metrics:  m.GetMetrics(),
	}, 0)
}

// exportEncoded is Export for a request still in its protobuf encoding: it
// decodes it straight into the snapshot with wire.UnmarshalExportRequest,
// and the OTLP message only when the plugin wants it (see [Request.OTLP]).
// It answers as Export and as gRPC does for a request it cannot decode.
func (s *server) exportEncoded(ctx context.Context, data []byte) (*pluginv1.ExportResponse, error) {
	start := time.Now()
	snap, ereq, err := wire.UnmarshalExportRequest(data)
	switch {
	case errors.Is(err, proto.Error):
		// What gRPC says when its codec cannot unmarshal a request.
		return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
	case err != nil:
		return nil, status.Errorf(codes.InvalidArgument, "invalid export request %s: %v", ereq.ID, err)
	}
	req := &Request{
		ID:       ereq.ID,
		Format:   ereq.Format,
		Target:   ereq.Target,
		Options:  ereq.Options,
		Snapshot: snap,
		otlp:     &lazyOTLP{encoded: data},
	}
	if s.otlpUser {
		req.Metrics = req.OTLP()
	}
	return s.export(ctx, start, req, len(data))
}

// maxOutputHint bounds the output buffer export allocates ahead.
const maxOutputHint = pluginv1.MaxMessageBytes

// outputHint guesses how much an export will write, to size its buffer
// once: as much as the previous export wrote, 1/8 more; for the first,
// twice the request's size (JSON of a snapshot is about that), when known.
func (s *server) outputHint(requestSize int) int {
	n := int(s.lastOutput.Load())
	if n == 0 {
		n = 2 * requestSize
	} else {
		n += n / 8
	}
	return min(n, maxOutputHint)
}

// export checks req's format and runs the plugin's Export.
func (s *server) export(ctx context.Context, start time.Time, req *Request, requestSize int) (*pluginv1.ExportResponse, error) {
	if !slices.Contains(s.info.Formats, req.Format) {
		return nil, status.Errorf(codes.InvalidArgument, "plugin %s does not write format %q (it writes: %s)", s.info.Name, req.Format, strings.Join(s.info.Formats, ", "))
	}
	snap := req.Snapshot
	buf := bytes.NewBuffer(make([]byte, 0, s.outputHint(requestSize)))
	var res Result
	var err error
	s.mu.RLock()
	err = s.guard("exporter", func() error {
		var err error
		res, err = s.e.Export(ctx, req, buf)
		return err
	})
	s.mu.RUnlock()
	if err != nil {
		s.log.Debug("export failed", "export_id", req.ID, "format", req.Format, "target", req.Target, "error", err.Error())
		return nil, toStatus(ctx, err)
	}
	series := int64(res.Series)
	if series == 0 {
		series = int64(snap.SeriesCount())
	}
	s.lastOutput.Store(int64(buf.Len()))
	ct := res.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	s.log.Debug("exported", "export_id", req.ID, "format", req.Format, "target", req.Target,
		"bytes", buf.Len(), "series", series, "destination", res.Destination, "duration", time.Since(start).String())
	return &pluginv1.ExportResponse{
		Data:        buf.Bytes(),
		ContentType: ct,
		Series:      series,
		Destination: res.Destination,
	}, nil
}

// ExportRequested calls the plugin's ExportRequested, if it has one.
func (s *server) ExportRequested(ctx context.Context, m *pluginv1.ExportRequestedRequest) (*pluginv1.CallbackResponse, error) {
	if s.hooks == nil {
		return &pluginv1.CallbackResponse{}, nil
	}
	e := ExportRequested{ID: m.GetExportId(), Format: m.GetFormat(), Target: m.GetTarget(), Options: m.GetOptions()}
	return s.callback(ctx, "ExportRequested", func() { s.hooks.ExportRequested(ctx, e) })
}

// ExportCompleted calls the plugin's ExportCompleted, if it has one.
func (s *server) ExportCompleted(ctx context.Context, m *pluginv1.ExportCompletedRequest) (*pluginv1.CallbackResponse, error) {
	if s.hooks == nil {
		return &pluginv1.CallbackResponse{}, nil
	}
	e := ExportCompleted{
		ID: m.GetExportId(), Format: m.GetFormat(), Target: m.GetTarget(),
		Error: m.GetError(), Exporter: m.GetExporter(),
		Bytes: m.GetBytes(), Series: m.GetSeries(), Duration: time.Duration(m.GetDurationNanos()),
	}
	return s.callback(ctx, "ExportCompleted", func() { s.hooks.ExportCompleted(ctx, e) })
}

// CacheSynced calls the plugin's CacheSynced, if it has one.
func (s *server) CacheSynced(ctx context.Context, m *pluginv1.CacheSyncedRequest) (*pluginv1.CallbackResponse, error) {
	if s.syncer == nil {
		return &pluginv1.CallbackResponse{}, nil
	}
	e := CacheSynced{
		EventID: m.GetEventId(), CorrelationID: m.GetCorrelationId(),
		Time:     time.Unix(0, int64(m.GetTimeUnixNano())).UTC(),
		Strategy: m.GetStrategy(), MetricsCount: m.GetMetricsCount(), Success: m.GetSuccess(),
		Duration: time.Duration(m.GetDurationMs() * float64(time.Millisecond)),
	}
	return s.callback(ctx, "CacheSynced", func() { s.syncer.CacheSynced(ctx, e) })
}

func (s *server) callback(ctx context.Context, what string, call func()) (*pluginv1.CallbackResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.guard(what, func() error { call(); return nil }); err != nil {
		return nil, toStatus(ctx, err)
	}
	return &pluginv1.CallbackResponse{}, nil
}

// panicError is a panic in the plugin's code, recovered.
type panicError struct {
	what  string
	value any
}

func (e *panicError) Error() string { return fmt.Sprintf("%s panicked: %v", e.what, e.value) }

// guard runs the plugin's code, turning a panic into a *panicError and
// logging its stack, so that one bad call does not end the plugin.
func (s *server) guard(what string, call func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error(what+" panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = &panicError{what: what, value: v}
		}
	}()
	return call()
}

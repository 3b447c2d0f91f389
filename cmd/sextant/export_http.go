package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
	"github.com/sextant-telemetry/sextant/internal/health"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

// GET /export's limits.
const (
	// exportTimeout bounds one on-demand export, on top of the request's
	// own context: reading the snapshot, filtering and encoding it.
	exportTimeout = 30 * time.Second
	// maxExportsInFlight bounds the exports served at a time: each holds a
	// snapshot and its encoding in memory.
	maxExportsInFlight = 4
)

// snapshotFunc reads one consistent snapshot of every metric.
type snapshotFunc func(ctx context.Context) (*exporters.Snapshot, error)

// exportRegistry is the exporter registry as /export uses it. Export
// publishes the export's lifecycle events and fails over between the
// exporters of a format; both methods are safe for concurrent use.
type exportRegistry interface {
	Formats() []string
	Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error)
}

// exportOptions configures newExportAPI.
type exportOptions struct {
	Read     snapshotFunc   // required
	Registry exportRegistry // required
	// Closing reports that the service is shutting down; exports asked for
	// then are refused with 503. Nil means never.
	Closing func() bool
	Logger  *slog.Logger     // nil means slog.Default()
	Now     func() time.Time // nil means time.Now
	// Timeout bounds one export; 0 means exportTimeout.
	Timeout time.Duration
	// Options are the export options every export starts from; the
	// query's (pretty) are added to them.
	Options map[string]string
}

// exportAPI serves GET /export: one snapshot of the metrics, filtered, in
// any format the registry knows. It is safe for concurrent use.
type exportAPI struct {
	read     snapshotFunc
	registry exportRegistry
	closing  func() bool
	logger   *slog.Logger
	now      func() time.Time
	timeout  time.Duration
	options  map[string]string
	slots    chan struct{}

	ok, failed, refused atomic.Uint64
	mu                  sync.Mutex
	lastErr             string
	lastErrAt           time.Time
}

func newExportAPI(opts exportOptions) (*exportAPI, error) {
	if opts.Read == nil || opts.Registry == nil {
		return nil, errors.New("export API: Read and Registry are required")
	}
	h := &exportAPI{read: opts.Read, registry: opts.Registry, closing: opts.Closing, logger: opts.Logger,
		now: opts.Now, timeout: opts.Timeout, options: maps.Clone(opts.Options), slots: make(chan struct{}, maxExportsInFlight)}
	if h.closing == nil {
		h.closing = func() bool { return false }
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.timeout <= 0 {
		h.timeout = exportTimeout
	}
	return h, nil
}

// exportQuery is a parsed GET /export query.
type exportQuery struct {
	format   string
	filter   exporters.Filter
	options  map[string]string
	download bool
}

// hideTargetInfo sets options so that target_info, the text formats'
// family of the snapshot's resource, is a family like any other to match:
// left out when name globs are given and none matches it.
func hideTargetInfo(options map[string]string, filter exporters.Filter) {
	if len(filter.Names) > 0 && !slices.ContainsFunc(filter.Names, func(g string) bool { ok, _ := path.Match(g, targetInfo); return ok }) {
		options[targetInfo] = "false"
	}
}

// targetInfo names both the text formats' family of resource attributes
// and the export option that leaves it out (target_info=false).
const targetInfo = "target_info"

// exportParams are the query parameters GET /export knows.
var exportParams = []string{"format", "match", "label", "pretty", "download"}

// paramError is a bad query parameter of GET /export; its message names
// the parameter, and err the value.
type paramError struct {
	param string
	err   error
}

func (e *paramError) Error() string { return fmt.Sprintf("%s: %v", e.param, e.err) }

func (e *paramError) Unwrap() error { return e.err }

// parseExportQuery checks every parameter against formats and returns the
// first problem as a *paramError.
func parseExportQuery(q url.Values, formats []string) (exportQuery, error) {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(exportParams, name) {
			return exportQuery{}, &paramError{param: name, err: fmt.Errorf("unknown parameter (known: %s)", strings.Join(exportParams, ", "))}
		}
	}
	for _, name := range []string{"format", "pretty", "download"} {
		if len(q[name]) > 1 {
			return exportQuery{}, &paramError{param: name, err: errors.New("given more than once")}
		}
	}
	eq := exportQuery{format: strings.ToLower(strings.TrimSpace(q.Get("format"))), options: map[string]string{}}
	switch {
	case eq.format == "":
		return exportQuery{}, &paramError{param: "format", err: fmt.Errorf("required: one of %s", strings.Join(formats, ", "))}
	case !slices.Contains(formats, eq.format):
		return exportQuery{}, &paramError{param: "format",
			err: fmt.Errorf("%w %q: known formats are %s", exporters.ErrUnknownFormat, q.Get("format"), strings.Join(formats, ", "))}
	}
	filter, err := newExportFilter(q["match"], q["label"])
	if err != nil {
		return exportQuery{}, err
	}
	eq.filter = filter
	hideTargetInfo(eq.options, filter)
	for _, name := range []string{"pretty", "download"} {
		v := q.Get(name)
		if v == "" && !q.Has(name) {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return exportQuery{}, &paramError{param: name, err: fmt.Errorf("want true or false, got %q", v)}
		}
		switch name {
		case "pretty":
			if b {
				eq.options["pretty"] = "true"
			}
		case "download":
			eq.download = b
		}
	}
	return eq, nil
}

// newExportFilter builds the filter of family name globs (any may match)
// and label matchers (all must hold); a bad one is a *paramError naming
// match or label.
func newExportFilter(match, labels []string) (exporters.Filter, error) {
	var f exporters.Filter
	for _, g := range match {
		if _, err := path.Match(g, ""); err != nil {
			return exporters.Filter{}, &paramError{param: "match", err: fmt.Errorf("%w %q: %w", exporters.ErrInvalidGlob, g, err)}
		}
		f.Names = append(f.Names, g)
	}
	for _, l := range labels {
		m, err := exporters.ParseMatcher(l)
		if err != nil {
			return exporters.Filter{}, &paramError{param: "label", err: err} // names the matcher
		}
		f.Matchers = append(f.Matchers, m)
	}
	return f, nil
}

// exportReply is the JSON body of every refusal and failure of GET /export.
type exportReply struct {
	Error string `json:"error"`
	// Formats lists the formats there are; on 400 only.
	Formats  []string `json:"formats,omitempty"`
	ExportID string   `json:"export_id,omitempty"`
	// Reason says why a 503 refused the export: shutting_down,
	// overloaded, or plugin_unavailable (restarting, or its circuit open).
	Reason string `json:"reason,omitempty"`
}

// ServeHTTP parses the query, reads one snapshot, filters it and exports it
// through the registry within the request's context and the timeout. The
// export is encoded in full before the answer starts, so that a failure is
// a 500 rather than a truncated 200.
func (h *exportAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.closing() {
		h.refuse(w, reasonShuttingDown, shutdownRetryAfter, "sextant is shutting down: ask another instance or again later")
		return
	}
	formats := h.registry.Formats()
	eq, err := parseExportQuery(r.URL.Query(), formats)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, exportReply{Error: err.Error(), Formats: formats})
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.refuse(w, reasonOverloaded, time.Second, fmt.Sprintf("sextant is serving %d exports already: ask again shortly", cap(h.slots)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	start := h.now()
	options := maps.Clone(h.options)
	if options == nil {
		options = map[string]string{}
	}
	maps.Copy(options, eq.options)
	req := exporters.ExportRequest{ID: events.NewIDAt(start).String(), Format: eq.format, Target: exporters.TargetOnDemand, Options: options}
	var buf bytes.Buffer
	res, err := exportSnapshot(ctx, h.read, h.registry, eq.filter, req, &buf)
	w.Header().Set("X-Sextant-Export-Id", req.ID)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	h.ok.Add(1)
	hdr := w.Header()
	hdr.Set("Content-Type", res.ContentType)
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	hdr.Set("Cache-Control", "no-store")
	if eq.download {
		hdr.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", exportFileName(start, eq.format)))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = buf.WriteTo(w) // the client went away; the export itself succeeded
	}
	h.logger.Debug("export served", "export_id", req.ID, "format", res.Format, "exporter", res.Exporter,
		"series", res.Series, "bytes", res.Bytes, "duration", h.now().Sub(start))
}

// exportSnapshot reads one snapshot, keeps what filter keeps and writes it
// through reg, which publishes the export's lifecycle events.
func exportSnapshot(ctx context.Context, read snapshotFunc, reg exportRegistry, filter exporters.Filter, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	snap, err := read(ctx)
	if err != nil {
		return exporters.ExportResult{}, fmt.Errorf("read the metrics: %w", err)
	}
	return reg.Export(ctx, filter.Apply(snap), req, w)
}

// fail answers a failed export: 400 when the format went away meanwhile,
// 503 when time ran out or the format's plugin is restarting or its
// circuit open, else 500. A client that went away gets nothing.
func (h *exportAPI) fail(w http.ResponseWriter, r *http.Request, req exporters.ExportRequest, err error) {
	reply := exportReply{Error: err.Error(), ExportID: req.ID}
	switch {
	case errors.Is(err, exporters.ErrUnknownFormat):
		reply.Formats = h.registry.Formats()
		writeJSON(w, http.StatusBadRequest, reply)
		return
	case r.Context().Err() != nil:
		h.logger.Debug("export abandoned by the client", "export_id", req.ID, "error", err)
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
		reply.Error = fmt.Sprintf("the export took longer than %s: %v", h.timeout, err)
	case errors.Is(err, host.ErrNotRunning), errors.Is(err, host.ErrCircuitOpen):
		// The plugin is restarting or resting: worth asking again soon.
		code = http.StatusServiceUnavailable
		reply.Reason = "plugin_unavailable"
		w.Header().Set("Retry-After", "1")
	}
	h.failed.Add(1)
	h.mu.Lock()
	h.lastErr, h.lastErrAt = reply.Error, h.now()
	h.mu.Unlock()
	h.logger.Warn("export failed", "export_id", req.ID, "format", req.Format, "error", reply.Error)
	writeJSON(w, code, reply)
}

// refuse answers 503 with reason and a Retry-After of at least a second.
func (h *exportAPI) refuse(w http.ResponseWriter, reason string, retryAfter time.Duration, msg string) {
	h.refused.Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(max(int(retryAfter/time.Second), 1)))
	writeJSON(w, http.StatusServiceUnavailable, exportReply{Error: msg, Reason: reason})
}

// exportFileExt maps a format to its file name extension; any other format
// is its own extension.
var exportFileExt = map[string]string{
	exporters.FormatPrometheus:  "prom", // as node_exporter's textfile collector wants
	exporters.FormatOpenMetrics: "txt",
}

// exportFileName is the name a downloaded export is saved under,
// sextant-20261125T101500Z.json: UTC, sortable, no characters a file system
// refuses.
func exportFileName(t time.Time, format string) string {
	ext, ok := exportFileExt[format]
	if !ok {
		ext = format
	}
	return "sextant-" + t.UTC().Format("20060102T150405Z") + "." + ext
}

// exportStats are GET /export's counters since start.
type exportStats struct {
	OK, Failed, Refused uint64
	LastError           string
	LastErrorAt         time.Time
}

// Stats returns the counters; safe for concurrent use.
func (h *exportAPI) Stats() exportStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return exportStats{OK: h.ok.Load(), Failed: h.failed.Load(), Refused: h.refused.Load(), LastError: h.lastErr, LastErrorAt: h.lastErrAt}
}

// health is /health/detailed's exports check: the formats there are and the
// on-demand exports' counters; degraded while an export failed in the last
// minute.
func (h *exportAPI) health() health.Result {
	st := h.Stats()
	out := map[string]any{"formats": h.registry.Formats(),
		"exports_ok": st.OK, "exports_failed": st.Failed, "exports_refused": st.Refused}
	res := health.Result{Status: health.StatusHealthy, Details: out}
	if st.LastError != "" {
		out["last_error"], out["last_error_at"] = st.LastError, st.LastErrorAt.UTC()
		if h.now().Sub(st.LastErrorAt) < time.Minute {
			res.Status = health.StatusDegraded
		}
	}
	return res
}

// exportDefaults derives from the configuration how snapshots name
// metrics (the prometheus exporter's translation strategy and scope info)
// and the options every export starts from (target_info=false when the
// exporter leaves target_info out), so that /export?format=prometheus
// shows what /metrics shows.
func exportDefaults(cfg *config.Config, res *resource.Resource) (exporters.ReadOptions, map[string]string) {
	opts := exporters.ReadOptions{Instance: defaultInstance(res)}
	options := map[string]string{}
	if pc, ok := cfg.Exporters["prometheus"].(*prometheus.Config); ok && pc != nil {
		opts.TranslationStrategy = otlptranslator.TranslationStrategyOption(pc.TranslationStrategy)
		opts.ScopeInfo = pc.ScopeInfo
		if !pc.TargetInfo {
			options[targetInfo] = "false"
		}
	}
	return opts, options
}

// newSnapshotFunc reads snapshots from reader, a reader of the service's
// MeterProvider. When some metrics could not be collected it logs why and
// returns the rest, as /metrics serves what it could collect.
func newSnapshotFunc(reader sdkmetric.Reader, opts exporters.ReadOptions, logger *slog.Logger) snapshotFunc {
	return func(ctx context.Context) (*exporters.Snapshot, error) {
		snap, err := exporters.Read(ctx, reader, opts)
		if err != nil && snap != nil {
			logger.Warn("some metrics could not be collected for an export", "error", err)
			return snap, nil
		}
		return snap, err
	}
}

// defaultInstance is the snapshot's instance when the resource names none
// (OTEL_RESOURCE_ATTRIBUTES=service.instance.id=…): host name and process
// id, which tell apart the instances sharing one bus.
func defaultInstance(res *resource.Resource) string {
	if res != nil {
		if v, ok := res.Set().Value(attribute.Key("service.instance.id")); ok && v.AsString() != "" {
			return ""
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

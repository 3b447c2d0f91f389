package exporters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Registry errors, for errors.Is.
var (
	// ErrExporterRegistered is returned by Register for a name already taken.
	ErrExporterRegistered = errors.New("exporter already registered")
	// ErrExporterNotFound is returned by Unregister for an unknown name.
	ErrExporterNotFound = errors.New("exporter not registered")
	// ErrInvalidExporter is returned for a nil exporter, or one without a
	// name or formats.
	ErrInvalidExporter = errors.New("invalid exporter")
)

// Export error types: the error_type of telemetry.export_failed.
const (
	ExportErrorUnknownFormat = "unknown_format"
	ExportErrorTimeout       = "timeout"  // ctx's deadline passed
	ExportErrorCanceled      = "canceled" // ctx was canceled
	ExportErrorExporter      = "exporter_error"
	ExportErrorWrite         = "write_error" // the output refused the winner's bytes
)

// TargetOnDemand is the target of an export whose request names none.
const TargetOnDemand = "on_demand"

// eventPublishTimeout bounds each lifecycle event's wait for the bus: an
// export or a registration must not hang on a stuck bus.
const eventPublishTimeout = 250 * time.Millisecond

// EventPublisher is where a registry publishes its lifecycle events: the
// bus publisher. Publish must be safe for concurrent use, must not keep e,
// and gives up when ctx ends; the registry does not retry.
type EventPublisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// RegistrySettings carries what the host passes in code.
type RegistrySettings struct {
	// Events receives telemetry.export_* and plugin.* events; nil
	// publishes none.
	Events EventPublisher
	// Logger receives what goes wrong outside an export's result: events
	// that could not be published, hooks and exporters that panicked. Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock for durations and event times; nil means time.Now.
	Now func() time.Time
	_   struct{}
}

// Registry holds the snapshot exporters by name and runs exports through
// them: the built-in encoders, which the host registers with
// RegisterBuiltin, and plugins, which it registers with Register.
//
// Several exporters may write one format: ForFormat lists them in
// registration order, and Export tries them in that order until one
// succeeds (a failover chain). Registering a plugin publishes
// plugin.registered and unregistering it plugin.unregistered; built-ins
// publish neither, since they are part of sextant, not plugged in.
//
// All methods are safe for concurrent use. Lookups and exports read an
// immutable list; changes copy it under a lock, so an export in flight
// keeps the exporters it started with.
type Registry struct {
	events EventPublisher
	logger *slog.Logger
	now    func() time.Time

	mu      sync.RWMutex
	entries []*entry // replaced, never modified in place
}

// entry is one registered exporter; its name and formats are read once,
// at registration, so that a plugin is not asked again on every export.
type entry struct {
	exp     SnapshotExporter
	name    string
	formats []string // lower case, sorted, unique
	builtin bool
}

// versioner is what an exporter may implement to report its version in
// plugin.registered.
type versioner interface {
	Version() string
}

// NewRegistry returns an empty registry.
func NewRegistry(set RegistrySettings) *Registry {
	r := &Registry{events: set.Events, logger: set.Logger, now: set.Now}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// newEntry reads e's name and formats.
func newEntry(e SnapshotExporter, builtin bool) (*entry, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil", ErrInvalidExporter)
	}
	name := e.Name()
	if name == "" {
		return nil, fmt.Errorf("%w: empty name", ErrInvalidExporter)
	}
	var formats []string
	for _, f := range e.Formats() {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			formats = append(formats, f)
		}
	}
	slices.Sort(formats)
	formats = slices.Compact(formats)
	if len(formats) == 0 {
		return nil, fmt.Errorf("%w: %q lists no formats", ErrInvalidExporter, name)
	}
	return &entry{exp: e, name: name, formats: formats, builtin: builtin}, nil
}

// Register adds a plugin exporter at the end of its formats' chains and
// publishes plugin.registered (plugin_name, plugin_version when the
// exporter has a Version() string method, formats comma-separated). A
// name already taken returns an error wrapping ErrExporterRegistered; a
// nil exporter, or one without a name or formats, one wrapping
// ErrInvalidExporter.
func (r *Registry) Register(e SnapshotExporter) error {
	return r.register(e, false)
}

// RegisterBuiltin is Register for sextant's own exporters: it publishes no
// event.
func (r *Registry) RegisterBuiltin(e SnapshotExporter) error {
	return r.register(e, true)
}

func (r *Registry) register(e SnapshotExporter, builtin bool) error {
	ent, err := newEntry(e, builtin)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if slices.ContainsFunc(r.entries, func(x *entry) bool { return x.name == ent.name }) {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrExporterRegistered, ent.name)
	}
	r.entries = append(slices.Clip(r.entries), ent)
	r.mu.Unlock()
	r.publishRegistered(ent)
	return nil
}

// Replace puts e in the place of the exporter of the same name, keeping
// its place in the chains, or adds it at the end when there is none. It is
// an unregistration and a registration in one step, with their events
// (plugin.unregistered unless the old one was a built-in, then
// plugin.registered): an export sees the old exporter or the new one,
// never neither. It returns an error wrapping ErrInvalidExporter for an
// invalid exporter.
func (r *Registry) Replace(e SnapshotExporter) error {
	ent, err := newEntry(e, false)
	if err != nil {
		return err
	}
	r.mu.Lock()
	entries := slices.Clone(r.entries)
	i := slices.IndexFunc(entries, func(x *entry) bool { return x.name == ent.name })
	var old *entry
	if i >= 0 {
		old, entries[i] = entries[i], ent
	} else {
		entries = append(entries, ent)
	}
	r.entries = entries
	r.mu.Unlock()
	if old != nil {
		r.publishUnregistered(old)
	}
	r.publishRegistered(ent)
	return nil
}

// Unregister removes the exporter name and, unless it is a built-in,
// publishes plugin.unregistered. An unknown name returns an error wrapping
// ErrExporterNotFound. Exports already running keep using the exporter.
func (r *Registry) Unregister(name string) error {
	r.mu.Lock()
	i := slices.IndexFunc(r.entries, func(x *entry) bool { return x.name == name })
	if i < 0 {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrExporterNotFound, name)
	}
	old := r.entries[i]
	r.entries = slices.Delete(slices.Clone(r.entries), i, i+1)
	r.mu.Unlock()
	r.publishUnregistered(old)
	return nil
}

// list returns the current entries; the caller must not modify them.
func (r *Registry) list() []*entry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.entries
}

// Lookup returns the exporter registered as name.
func (r *Registry) Lookup(name string) (SnapshotExporter, bool) {
	for _, e := range r.list() {
		if e.name == name {
			return e.exp, true
		}
	}
	return nil, false
}

// Exporters returns every exporter in registration order (Replace keeps
// the replaced one's place).
func (r *Registry) Exporters() []SnapshotExporter {
	list := r.list()
	out := make([]SnapshotExporter, len(list))
	for i, e := range list {
		out[i] = e.exp
	}
	return out
}

// Formats returns every format some exporter writes, sorted.
func (r *Registry) Formats() []string {
	var out []string
	for _, e := range r.list() {
		out = append(out, e.formats...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ForFormat returns the exporters that write format (case-insensitive), in
// registration order: the order Export tries them in.
func (r *Registry) ForFormat(format string) []SnapshotExporter {
	var out []SnapshotExporter
	for _, e := range r.chain(r.list(), strings.ToLower(format)) {
		out = append(out, e.exp)
	}
	return out
}

func (r *Registry) chain(list []*entry, format string) []*entry {
	var out []*entry
	for _, e := range list {
		if _, ok := slices.BinarySearch(e.formats, format); ok {
			out = append(out, e)
		}
	}
	return out
}

// Export writes s to w in req.Format with the first exporter of the
// format's chain that succeeds, and publishes the export's lifecycle:
// telemetry.export_requested, then telemetry.export_completed (bytes,
// series_count, duration_ms) or telemetry.export_failed (error_type
// unknown_format, timeout, canceled, exporter_error or write_error, and
// error_message), all with one export_id whose events share it as their
// correlation id.
//
// req.ID is the export id; empty means a fresh UUIDv7 (an id that is not
// a UUID correlates the events under a fresh one). req.Format is
// case-insensitive and req.Target defaults to on_demand; the request the
// exporters and hooks see has these filled in.
//
// Each exporter writes into a buffer of its own, and only the winner's
// bytes are copied to w, so a failing exporter leaves nothing half-written
// in w. The result is the winner's, with Exporter, Format, Bytes (what w
// took) and Duration (the whole export's) set by the registry, and Series
// set to s.SeriesCount() when the exporter left it 0. An exporter that returns an error or panics is a failure, and the
// next one is tried; when all fail, the error joins theirs, each prefixed
// with the exporter's name. An unknown format returns an error wrapping
// ErrUnknownFormat that lists the known ones.
//
// ctx bounds the export: it is passed to every exporter, and once it ends
// no further exporter is tried; the failure is then a timeout (ctx's
// deadline passed) or canceled. Export cannot abandon an exporter that
// ignores ctx, since it must not return while the exporter still reads s.
// The lifecycle events are still published after ctx ends, each bounded
// by its own short timeout. Every registered exporter implementing
// ExportHooks hears of the export; a panicking hook is logged and
// ignored. Export does not retry beyond the chain, keeps neither s nor
// what was written, and is safe for concurrent use.
func (r *Registry) Export(ctx context.Context, s *Snapshot, req ExportRequest, w io.Writer) (ExportResult, error) {
	start := r.now()
	if req.ID == "" {
		req.ID = events.NewIDAt(start).String()
	}
	correlation, err := events.ParseID(req.ID)
	if err != nil {
		correlation = events.NewIDAt(start)
	}
	req.Format = strings.ToLower(req.Format)
	if req.Target == "" {
		req.Target = TargetOnDemand
	}
	list := r.list()
	r.publish(ctx, correlation, events.TelemetryExportRequested, req)
	r.hooks(list, func(h ExportHooks) { h.OnExportRequested(req) })

	res, errType, err := r.export(ctx, list, s, req, w)
	res.Format = req.Format
	res.Duration = r.now().Sub(start)
	durationMS := events.Float("duration_ms", float64(res.Duration)/float64(time.Millisecond))
	if err != nil {
		r.publish(ctx, correlation, events.TelemetryExportFailed, req,
			events.String("error_type", errType), events.String("error_message", err.Error()), durationMS)
	} else {
		r.publish(ctx, correlation, events.TelemetryExportCompleted, req,
			events.Int("bytes", res.Bytes), events.Int("series_count", int64(res.Series)), durationMS)
	}
	r.hooks(list, func(h ExportHooks) { h.OnExportCompleted(req, res, err) })
	return res, err
}

// export runs the chain; errType classifies a failure.
func (r *Registry) export(ctx context.Context, list []*entry, s *Snapshot, req ExportRequest, w io.Writer) (res ExportResult, errType string, err error) {
	chain := r.chain(list, req.Format)
	if len(chain) == 0 {
		return ExportResult{}, ExportErrorUnknownFormat, r.unknownFormat(list, req.Format)
	}
	if s == nil {
		return ExportResult{}, ExportErrorExporter, errors.New("export: nil snapshot")
	}
	var failures []error
	var buf bytes.Buffer
	for _, e := range chain {
		if ctx.Err() != nil {
			break
		}
		buf.Reset()
		res, err := r.call(ctx, e, s, req, &buf)
		if err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", e.name, err))
			continue
		}
		n, err := w.Write(buf.Bytes())
		res.Exporter, res.Bytes = e.name, int64(n)
		if res.Series == 0 {
			res.Series = s.SeriesCount()
		}
		if err == nil && n < buf.Len() {
			err = io.ErrShortWrite
		}
		if err != nil {
			return res, ExportErrorWrite, fmt.Errorf("export %s: write %s's output: %w", req.Format, e.name, err)
		}
		return res, "", nil
	}
	if err := ctx.Err(); err != nil && len(failures) < len(chain) {
		failures = append(failures, fmt.Errorf("%d of %d exporters not tried: %w", len(chain)-len(failures), len(chain), err))
	}
	err = fmt.Errorf("export %s: %w", req.Format, joinedError(failures))
	// Only ctx's end is a timeout or a cancellation: an exporter's own
	// deadline (a plugin's RPC timeout, say) is its failure.
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return ExportResult{}, ExportErrorTimeout, err
	case ctxErr != nil:
		return ExportResult{}, ExportErrorCanceled, err
	default:
		return ExportResult{}, ExportErrorExporter, err
	}
}

// call runs one exporter, turning a panic into an error.
func (r *Registry) call(ctx context.Context, e *entry, s *Snapshot, req ExportRequest, w io.Writer) (res ExportResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("exporter panicked", "exporter", e.name, "format", req.Format, "panic", p, "stack", string(debug.Stack()))
			res, err = ExportResult{}, fmt.Errorf("panic: %v", p)
		}
	}()
	return e.exp.Export(ctx, s, req, w)
}

func (r *Registry) unknownFormat(list []*entry, format string) error {
	var known []string
	for _, e := range list {
		known = append(known, e.formats...)
	}
	slices.Sort(known)
	known = slices.Compact(known)
	if len(known) == 0 {
		return fmt.Errorf("%w %q: no exporter is registered", ErrUnknownFormat, format)
	}
	return fmt.Errorf("%w %q: known formats are %s", ErrUnknownFormat, format, strings.Join(known, ", "))
}

// hooks calls fn for every exporter in list that implements ExportHooks,
// recovering and logging a panic in any of them.
func (r *Registry) hooks(list []*entry, fn func(ExportHooks)) {
	for _, e := range list {
		h, ok := e.exp.(ExportHooks)
		if !ok {
			continue
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.logger.Error("export hook panicked", "exporter", e.name, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			fn(h)
		}()
	}
}

// publish publishes one export event with req's export_id, format and
// target before attrs.
func (r *Registry) publish(ctx context.Context, correlation events.ID, name string, req ExportRequest, attrs ...events.Attr) {
	all := append([]events.Attr{
		events.String("export_id", req.ID),
		events.String("format", req.Format),
		events.String("target", req.Target),
	}, attrs...)
	r.send(ctx, events.New(name, correlation, all...))
}

func (r *Registry) publishRegistered(e *entry) {
	if e.builtin {
		return
	}
	attrs := []events.Attr{events.String("plugin_name", e.name)}
	if v, ok := e.exp.(versioner); ok {
		attrs = append(attrs, events.String("plugin_version", v.Version()))
	}
	attrs = append(attrs, events.String("formats", strings.Join(e.formats, ",")))
	now := r.now()
	r.send(context.Background(), events.New(events.PluginRegistered, events.NewIDAt(now), attrs...))
}

func (r *Registry) publishUnregistered(e *entry) {
	if e.builtin {
		return
	}
	now := r.now()
	r.send(context.Background(), events.New(events.PluginUnregistered, events.NewIDAt(now), events.String("plugin_name", e.name)))
}

// send publishes ev stamped with the registry's clock, bounded by
// eventPublishTimeout whether or not ctx has ended, and logs a failure:
// events describe the work, they must not fail it.
func (r *Registry) send(ctx context.Context, ev events.Event) {
	if r.events == nil {
		return
	}
	ev.Time = r.now()
	ev.ID = events.NewIDAt(ev.Time)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventPublishTimeout)
	defer cancel()
	if err := r.events.Publish(ctx, ev); err != nil {
		r.logger.Debug("event not published", "event_name", ev.Name, "error", err)
	}
}

// joinedError joins errors on one line: "a: boom; b: slow", and unwraps
// to all of them.
type joinedError []error

func (j joinedError) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joinedError) Unwrap() []error { return j }

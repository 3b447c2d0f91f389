package sdk

import (
	"context"
	"io"
	"sync"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// Info says who a plugin is and what it writes. Sextant shows it in
// `sextant plugins inspect` and routes /export?format=<format> by Formats.
type Info struct {
	// Name identifies the plugin: lower-case letters, digits, '_' and '-',
	// starting with a letter or digit, at most 63 characters. The
	// configuration may register it under another name.
	Name string
	// Version is the plugin's own version, e.g. 1.2.0.
	Version string
	// Description is one line for people.
	Description string
	// Formats are the formats the plugin writes, lower case; at least one.
	Formats []string
}

// Request is one export: a snapshot and what to write it as.
type Request struct {
	// ID is the export's UUIDv7, shared with its lifecycle callbacks.
	ID string
	// Format is one of Info.Formats; the SDK rejects any other before
	// Export is called.
	Format string
	// Target is who asked: "on_demand", "scrape" or an export target's name.
	Target string
	// Options are format options from the request, e.g. pretty=true from
	// /export?format=x&opt.pretty=true. Unknown options are best ignored:
	// they may be meant for another format.
	Options map[string]string
	// Snapshot is the metrics, decoded from the OTLP message Sextant sent
	// into Sextant's snapshot model (families named as /metrics names
	// them).
	Snapshot *exporters.Snapshot
	// Metrics is the same snapshot as the OTLP message Sextant sent, for
	// plugins that prefer OpenTelemetry's model. [Serve] fills it only for
	// an Exporter that implements [OTLPUser], since decoding it costs
	// about as much as the export itself; it is nil for the others, which
	// call [Request.OTLP] when they need the message.
	Metrics *metricspb.MetricsData

	otlp *lazyOTLP // the request as received, for OTLP
}

// OTLP returns the snapshot as the OTLP message Sextant sent: Metrics when
// it is filled, else the message decoded from the request on the first
// call. For a Request made by hand (in a test) without Metrics, it is
// wire.MetricsData(Snapshot), the message Sextant would send. Like the
// request, the message is valid only until Export returns. OTLP is safe
// for concurrent use.
func (r *Request) OTLP() *metricspb.MetricsData {
	if r.Metrics != nil {
		return r.Metrics
	}
	if r.otlp == nil {
		return wire.MetricsData(r.Snapshot)
	}
	r.otlp.once.Do(func() {
		m := &pluginv1.ExportRequest{}
		if err := proto.Unmarshal(r.otlp.encoded, m); err != nil {
			// Cannot happen: wire.UnmarshalExportRequest read the same
			// bytes without error, which it gives only when
			// proto.Unmarshal gives none. Still answer with the message
			// of the snapshot read.
			r.otlp.md = wire.MetricsData(r.Snapshot)
			return
		}
		r.otlp.md = m.GetMetrics()
		if r.otlp.md == nil {
			r.otlp.md = &metricspb.MetricsData{}
		}
	})
	return r.otlp.md
}

// lazyOTLP decodes a request's OTLP message once, when first asked.
type lazyOTLP struct {
	encoded []byte // the ExportRequest's protobuf encoding
	once    sync.Once
	md      *metricspb.MetricsData
}

// OTLPUser is implemented by an Exporter that reads [Request.Metrics]
// rather than calling [Request.OTLP]: the SDK then decodes the OTLP message
// for every export before calling Export. The method is a marker; it is
// never called.
type OTLPUser interface {
	Exporter
	UsesOTLP()
}

// Result describes a finished export.
type Result struct {
	// ContentType is the media type of what Export wrote to w, e.g.
	// text/plain; charset=utf-8. Empty means application/octet-stream.
	ContentType string
	// Series is how many series were exported; 0 means all of them.
	Series int
	// Destination is where else the snapshot went, for logs: a file name or
	// a URL without credentials. Empty when nowhere.
	Destination string
}

// Exporter is what a plugin implements: one type with Info and Export,
// served by [Serve].
type Exporter interface {
	// Info describes the plugin. It is called once, when the server is made.
	Info() Info
	// Export writes req.Snapshot in req.Format to w. What w receives goes
	// back to whoever asked (the /export response body, the file of
	// `sextant export --out`); it is discarded when Export fails. Export
	// may also deliver the snapshot elsewhere and say where in
	// Result.Destination.
	//
	// Export is called concurrently for concurrent exports, but never
	// while Configure runs. ctx carries the host's deadline and is
	// cancelled when the host gives up: stop then and return ctx.Err().
	// req and its snapshot are valid only until Export returns. The host
	// decides whether to retry a failed export; mark errors with
	// [InvalidArgument] or [Unavailable] to tell it why (the default is
	// INTERNAL). A panic is recovered and reported as an INTERNAL error.
	Export(ctx context.Context, req *Request, w io.Writer) (Result, error)
}

// Configurer is implemented by an Exporter that takes a configuration
// section (plugins.instances[i].config in Sextant's YAML). Sextant then
// calls Configure on every start of the plugin, before any export.
type Configurer interface {
	// Configure checks cfg and, when it is valid, puts it into effect. It
	// returns every problem at once, as [FieldErrors] (what
	// [Config.Decode] returns, plus the plugin's own checks); any other
	// error is reported against the section as a whole. No Export runs
	// while Configure does, so Configure may replace what Export reads
	// without locking. A failed Configure must leave the previous
	// configuration in effect. ctx bounds the call.
	Configure(ctx context.Context, cfg Config) error
}

// ExportHooks is implemented by an Exporter that wants to hear of every
// export Sextant runs, in any format and by any exporter, as the reference
// system's plugins could. The calls may be concurrent with each other and
// with Export, and should return quickly; ctx bounds each call.
type ExportHooks interface {
	// ExportRequested is called when an export starts.
	ExportRequested(ctx context.Context, e ExportRequested)
	// ExportCompleted is called when an export has finished, failed or not.
	ExportCompleted(ctx context.Context, e ExportCompleted)
}

// CacheSyncer is implemented by an Exporter that wants Sextant's
// telemetry.cache_synced events. Calls may be concurrent with Export and
// should return quickly; ctx bounds each call.
type CacheSyncer interface {
	CacheSynced(ctx context.Context, e CacheSynced)
}

// ExportRequested says an export is starting.
type ExportRequested struct {
	ID, Format, Target string
	Options            map[string]string
}

// ExportCompleted says an export has finished.
type ExportCompleted struct {
	ID, Format, Target string
	// Error is the export's error message; empty when it succeeded.
	Error string
	// Exporter is the exporter that wrote it: this plugin or another.
	Exporter string
	// Bytes and Series are how much it wrote.
	Bytes, Series int64
	Duration      time.Duration
}

// CacheSynced is a telemetry.cache_synced event.
type CacheSynced struct {
	// EventID and CorrelationID are the event's ids.
	EventID, CorrelationID string
	Time                   time.Time
	Strategy               string
	MetricsCount           int64
	Success                bool
	Duration               time.Duration
}

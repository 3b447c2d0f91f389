package exporters

import (
	"context"
	"errors"
	"io"
	"time"
)

// Snapshot is one consistent, point-in-time read of every metric: what an
// export writes, in whatever format. Families are sorted by PromName and
// series by their labels, so that two exports of one snapshot agree byte
// for byte.
type Snapshot struct {
	// Resource says which process the metrics come from.
	Resource Resource
	// Time is when the snapshot was read.
	Time time.Time
	// Families are the metrics, one per Prometheus metric family.
	Families []Family
}

// Resource identifies the exporting process.
type Resource struct {
	// ServiceName is service.name (sextant unless OTEL_SERVICE_NAME says
	// otherwise).
	ServiceName string
	// Instance is service.instance.id: this instance among several on one
	// bus (host name and process id unless configured).
	Instance string
	// Attributes are the remaining resource attributes, sorted by name.
	Attributes []Label
}

// MetricType is a family's type, as Prometheus names it.
type MetricType string

// The metric types. An OpenTelemetry up-down counter is a gauge here, as in
// Prometheus.
const (
	TypeCounter   MetricType = "counter"
	TypeGauge     MetricType = "gauge"
	TypeHistogram MetricType = "histogram"
)

// Family is one metric: its names, type, unit, description and series.
type Family struct {
	// Name is the OpenTelemetry instrument name, e.g. tasker.step.execution.duration.
	Name string
	// PromName is the Prometheus family name as /metrics shows it, e.g.
	// tasker_step_execution_duration_milliseconds or
	// tasker_tasks_requests_total (a counter's name carries _total).
	PromName string
	Type     MetricType
	// Unit is the UCUM unit, e.g. ms; empty for none.
	Unit        string
	Description string
	// Series are sorted by their labels.
	Series []Series
}

// Series is one label set of a family and its value.
type Series struct {
	// Labels are sorted by name; names are Prometheus label names.
	Labels []Label
	// Value is a counter's or gauge's value; unused by histograms.
	Value float64
	// Histogram holds a histogram's buckets, sum and count; nil otherwise.
	Histogram *Histogram
	// Start is when a cumulative series began (zero for gauges).
	Start time.Time
	// Time is when the value was sampled.
	Time time.Time
	// Exemplar is a counter's exemplar, if any (histograms keep theirs per
	// bucket).
	Exemplar *Exemplar
}

// Histogram is a cumulative explicit-bucket histogram.
type Histogram struct {
	Count uint64
	Sum   float64
	// Buckets have strictly increasing upper bounds, cumulative counts, and
	// end with the +Inf bucket, whose count is Count.
	Buckets []Bucket
}

// Bucket is one histogram bucket: the observations ≤ UpperBound.
type Bucket struct {
	UpperBound float64 // math.Inf(1) for the last
	Count      uint64  // cumulative
	Exemplar   *Exemplar
}

// Exemplar is one sampled measurement and the trace it belongs to.
type Exemplar struct {
	Value   float64
	Time    time.Time
	TraceID string // 32 lower-case hex digits, empty when none
	SpanID  string // 16 lower-case hex digits, empty when none
	// Labels are the measurement's attributes that the series lacks.
	Labels []Label
}

// Label is one name and value.
type Label struct {
	Name, Value string
}

// SeriesCount returns how many series the snapshot holds.
func (s *Snapshot) SeriesCount() int {
	n := 0
	for i := range s.Families {
		n += len(s.Families[i].Series)
	}
	return n
}

// Format names a built-in export format.
const (
	FormatPrometheus  = "prometheus"  // text exposition 0.0.4
	FormatOpenMetrics = "openmetrics" // OpenMetrics 1.0 text
	FormatJSON        = "json"        // sextant.metrics/v1, docs/exports.md
	FormatCSV         = "csv"         // RFC 4180, docs/exports.md
)

// SnapshotExporter writes snapshots in the formats it supports: the
// built-in encoders, plugins and anything else a registry holds.
type SnapshotExporter interface {
	// Name identifies the exporter in a registry, in logs and in export
	// events.
	Name() string
	// Formats lists the formats it writes, lower case.
	Formats() []string
	// Export writes s in format to w. It must not keep s, and must honour
	// ctx. It is safe for concurrent use.
	Export(ctx context.Context, s *Snapshot, req ExportRequest, w io.Writer) (ExportResult, error)
}

// ExportRequest says what an export is for.
type ExportRequest struct {
	// ID is the export's UUIDv7, shared by its lifecycle events.
	ID string
	// Format is one of the exporter's formats.
	Format string
	// Target is who asked: scrape, on_demand or a target's name.
	Target string
	// Options are format options (e.g. pretty=true for JSON).
	Options map[string]string
}

// ExportResult describes a finished export.
type ExportResult struct {
	Exporter    string // which exporter wrote it
	Format      string
	ContentType string // the media type of what was written
	Series      int
	Bytes       int64
	Duration    time.Duration
}

// ErrUnknownFormat is returned for a format no exporter supports.
var ErrUnknownFormat = errors.New("unknown export format")

// ExportHooks is what an exporter may also implement to hear of exports
// and cache syncs, as the reference system's plugins could. Calls must be
// quick: they run on the exporting goroutine.
type ExportHooks interface {
	OnExportRequested(req ExportRequest)
	OnExportCompleted(req ExportRequest, res ExportResult, err error)
}

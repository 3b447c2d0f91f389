package csv

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// name is the exporter's name in an export registry and its one format.
const name = exporters.FormatCSV

// optionBOM is the export option that starts the table with a byte order
// mark.
const optionBOM = "bom"

// Exporter writes snapshots as CSV tables. It keeps no state: it is safe
// for concurrent use and needs no Shutdown.
type Exporter struct {
	now func() time.Time
}

var _ exporters.SnapshotExporter = (*Exporter)(nil)

// New returns the built-in CSV exporter.
func New() *Exporter {
	return &Exporter{now: time.Now}
}

// Name returns "csv".
func (*Exporter) Name() string { return name }

// Formats returns "csv".
func (*Exporter) Formats() []string { return []string{exporters.FormatCSV} }

// Export writes s to w with [Encode]. The one option it knows is bom (true
// or false, default false); it ignores the others, which belong to other
// formats (pretty). ctx is checked before each family: once it ends,
// Export stops and returns ctx's error, having written part of the table.
// Export does not keep s, does not retry (the caller decides), and is safe
// for concurrent use.
func (e *Exporter) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	start := e.now()
	res := exporters.ExportResult{Exporter: name, Format: req.Format, ContentType: ContentType}
	if req.Format != exporters.FormatCSV {
		return res, fmt.Errorf("%s: %w %q (known: %s)", name, exporters.ErrUnknownFormat, req.Format, exporters.FormatCSV)
	}
	var opts Options
	v, err := exporters.BoolOption(req, optionBOM, false)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	opts.BOM = v
	err = exporters.Encode(s, w, &res, start, e.now, func(w io.Writer) error { return encode(ctx, w, s, opts) })
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

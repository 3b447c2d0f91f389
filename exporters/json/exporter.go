package json

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// name is the exporter's name in an export registry and its one format.
const name = exporters.FormatJSON

// optionPretty is the export option that indents the document.
const optionPretty = "pretty"

// Exporter writes snapshots as sextant.metrics/v1 JSON. It keeps no state:
// it is safe for concurrent use and needs no Shutdown.
type Exporter struct {
	now func() time.Time
}

var _ exporters.SnapshotExporter = (*Exporter)(nil)

// New returns the built-in JSON exporter.
func New() *Exporter {
	return &Exporter{now: time.Now}
}

// Name returns "json".
func (*Exporter) Name() string { return name }

// Formats returns "json".
func (*Exporter) Formats() []string { return []string{exporters.FormatJSON} }

// Export writes s to w with [Encode]. The one option it knows is pretty
// (true or false); it ignores the others, which belong to other formats.
// ctx is checked before each family: once it ends, Export stops and
// returns ctx's error, having written part of the document. Export does
// not keep s, does not retry (the caller decides), and is safe for
// concurrent use.
func (e *Exporter) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	start := e.now()
	res := exporters.ExportResult{Exporter: name, Format: req.Format, ContentType: ContentType}
	if req.Format != exporters.FormatJSON {
		return res, fmt.Errorf("%s: %w %q (known: %s)", name, exporters.ErrUnknownFormat, req.Format, exporters.FormatJSON)
	}
	var opts Options
	v, err := exporters.BoolOption(req, optionPretty, false)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	opts.Pretty = v
	err = exporters.Encode(s, w, &res, start, e.now, func(w io.Writer) error { return encode(ctx, w, s, opts) })
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

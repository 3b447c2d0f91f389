package json

import (
	"context"
	"fmt"
	"io"
	"strconv"
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
	if v, ok := req.Options[optionPretty]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return res, fmt.Errorf("%s: option %s=%q: want true or false", name, optionPretty, v)
		}
		opts.Pretty = b
	}
	cw := &countingWriter{w: w}
	err := encode(ctx, cw, s, opts)
	res.Bytes = cw.n
	if s != nil {
		res.Series = s.SeriesCount()
	}
	res.Duration = e.now().Sub(start)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// countingWriter counts what reaches w.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

package exporters

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// BoolOption returns the value of the true-or-false export option key of
// req, or def when req does not give it.
func BoolOption(req ExportRequest, key string, def bool) (bool, error) {
	v, ok := req.Options[key]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("option %s=%q: want true or false", key, v)
	}
	return b, nil
}

// Encode runs encode on w, the way every built-in SnapshotExporter writes:
// it counts the bytes that reach w and fills res's Bytes, Series (of s)
// and Duration (from start, by now).
func Encode(s *Snapshot, w io.Writer, res *ExportResult, start time.Time, now func() time.Time, encode func(io.Writer) error) error {
	cw := &countingWriter{w: w}
	err := encode(cw)
	res.Bytes = cw.n
	if s != nil {
		res.Series = s.SeriesCount()
	}
	res.Duration = now().Sub(start)
	return err
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

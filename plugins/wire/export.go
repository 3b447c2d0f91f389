package wire

import (
	"errors"
	"fmt"
	"maps"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// ExportRequest builds the protocol message for one export of s: export_id,
// format, target and options from req (options copied), metrics =
// MetricsData(s) and time_unix_nano = s.Time (0 when s is nil or its time
// has no encoding; see the package documentation).
func ExportRequest(s *exporters.Snapshot, req exporters.ExportRequest) *pluginv1.ExportRequest {
	m := &pluginv1.ExportRequest{
		ExportId: req.ID,
		Format:   req.Format,
		Target:   req.Target,
		Options:  maps.Clone(req.Options),
		Metrics:  MetricsData(s),
	}
	if s != nil {
		m.TimeUnixNano = unixNano(s.Time)
	}
	return m
}

// FromExportRequest is ExportRequest's inverse: the snapshot, read with
// Snapshot at time_unix_nano, and the request, its options copied (nil
// stays nil; unmarshalling gives nil for no options). The
// request is returned even when the snapshot is malformed, so that the
// caller can say which export failed; the error then starts with
// "metrics: ".
func FromExportRequest(m *pluginv1.ExportRequest) (*exporters.Snapshot, exporters.ExportRequest, error) {
	if m == nil {
		return nil, exporters.ExportRequest{}, errors.New("no export request")
	}
	req := exporters.ExportRequest{
		ID:      m.ExportId,
		Format:  m.Format,
		Target:  m.Target,
		Options: maps.Clone(m.Options),
	}
	s, err := Snapshot(m.Metrics, unixTime(m.TimeUnixNano))
	if err != nil {
		return nil, req, fmt.Errorf("metrics: %w", err)
	}
	return s, req, nil
}

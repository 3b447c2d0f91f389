package wire

import "github.com/sextant-telemetry/sextant/exporters"

// FastUnmarshalExportRequest is UnmarshalExportRequest's own decoder
// alone, for tests that check which inputs it decodes without the
// proto.Unmarshal path: ok is false when it would hand the input over.
func FastUnmarshalExportRequest(data []byte) (s *exporters.Snapshot, req exporters.ExportRequest, ok bool) {
	d := fastDecoder{data: data}
	return d.exportRequest()
}

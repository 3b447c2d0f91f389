package wire_test

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// The host encodes an export's request with MarshalExportRequest and the
// plugin decodes it with UnmarshalExportRequest: the OTLP messages that
// travel are never built on either side.
func ExampleUnmarshalExportRequest() {
	data := wire.MarshalExportRequest(exampleSnapshot(), exporters.ExportRequest{
		ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "parquet", Options: map[string]string{"compression": "zstd"},
	})
	s, req, err := wire.UnmarshalExportRequest(data)
	if err != nil {
		panic(err)
	}
	fmt.Println(req.Format, req.Options["compression"])
	fmt.Println(s.SeriesCount(), "series read at", s.Time.UTC().Format(time.RFC3339))
	_, _, err = wire.UnmarshalExportRequest(data[:len(data)-1])
	fmt.Println("a protobuf error:", errors.Is(err, proto.Error))
	// Output:
	// parquet zstd
	// 1 series read at 2026-11-25T10:00:00Z
	// a protobuf error: true
}

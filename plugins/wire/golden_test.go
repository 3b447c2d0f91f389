package wire_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sextant-telemetry/sextant/plugins/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden shows the mapping: the protojson form of a small snapshot's
// MetricsData, reviewed in testdata/metricsdata.golden.json. Run with
// -update to rewrite it after a deliberate change.
func TestGolden(t *testing.T) {
	t.Parallel()
	b, err := protojson.Marshal(wire.MetricsData(smallSnapshot()))
	require.NoError(t, err)
	// protojson varies its whitespace on purpose; compact then indent for
	// stable output. Field order is field-number order.
	var compact, got bytes.Buffer
	require.NoError(t, json.Compact(&compact, b))
	require.NoError(t, json.Indent(&got, compact.Bytes(), "", "  "))
	got.WriteByte('\n')

	path := filepath.Join("testdata", "metricsdata.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got.String())
}

package wire_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// codecCase is one snapshot and request for the fast codec's tests.
type codecCase struct {
	name  string
	s     *exporters.Snapshot
	req   exporters.ExportRequest
	valid bool // FromExportRequest accepts it
}

// codecCases are every snapshot the package's other tests use: the SDK's,
// the round trip's edge cases, the malformed ones, the fuzz seeds.
func codecCases(t testing.TB) []codecCase {
	req := exporters.ExportRequest{ID: "0193a5c2-7d4e-7c3b-9f1a-2b3c4d5e6f70", Format: "json", Target: "scrape",
		Options: map[string]string{"pretty": "true", "compression": "zstd", "": "", "ünï": "✓"}}
	cases := []codecCase{
		{name: "sdk", s: sdkSnapshot(t), req: req, valid: true},
		{name: "nil snapshot", req: exporters.ExportRequest{ID: "x", Format: "f"}, valid: true},
		{name: "empty request", s: &exporters.Snapshot{}, valid: true},
		{name: "error snapshot", s: errorSnapshot(), req: req, valid: true},
		{name: "before 1970", s: &exporters.Snapshot{Time: time.Unix(-1, 0), Families: []exporters.Family{{Name: "g", PromName: "g",
			Type: exporters.TypeGauge, Series: []exporters.Series{{Value: 1, Start: time.Unix(-5, 0), Time: time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC)}}}}}, valid: true},
		{name: "upper-case ids", s: &exporters.Snapshot{Families: []exporters.Family{{Name: "c", PromName: "c", Type: exporters.TypeCounter,
			Series: []exporters.Series{{Value: 1, Exemplar: &exporters.Exemplar{Value: 1, TraceID: "0AF7651916CD43DD8448EB211C80319C", SpanID: "B7AD6B7169203331"}}}}}}, valid: true},
	}
	for _, tt := range roundTripCases() {
		cases = append(cases, codecCase{name: "round trip/" + tt.name, s: tt.s, req: req, valid: true})
	}
	for _, tt := range malformedSnapshots() {
		cases = append(cases, codecCase{name: "malformed/" + tt.name, s: tt.s, req: req})
	}
	for i, s := range fuzzSeeds() {
		cases = append(cases, codecCase{name: "seed/" + string(rune('0'+i)), s: s, valid: true})
	}
	return cases
}

// slowUnmarshal is what UnmarshalExportRequest must equal.
func slowUnmarshal(data []byte) (*exporters.Snapshot, exporters.ExportRequest, error) {
	m := &pluginv1.ExportRequest{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, exporters.ExportRequest{}, err
	}
	return wire.FromExportRequest(m)
}

// requireSameResult checks that UnmarshalExportRequest gives for data what
// proto.Unmarshal and FromExportRequest give, errors included.
func requireSameResult(t testing.TB, data []byte) {
	t.Helper()
	wantS, wantReq, wantErr := slowUnmarshal(data)
	s, req, err := wire.UnmarshalExportRequest(data)
	if wantErr != nil {
		require.EqualError(t, err, wantErr.Error())
		require.Nil(t, s)
	} else {
		require.NoError(t, err)
		requireSame(t, wantS, s)
	}
	require.Equal(t, wantReq, req)
}

// TestMarshalExportRequest checks that MarshalExportRequest writes the
// bytes a deterministic proto.Marshal writes of ExportRequest, which
// proto.Unmarshal reads back as an equal message.
func TestMarshalExportRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range codecCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := wire.ExportRequest(tt.s, tt.req)
			b := wire.MarshalExportRequest(tt.s, tt.req)
			require.Equal(t, len(b), cap(b), "one allocation of the exact size")
			wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			require.NoError(t, err)
			require.Equal(t, wantBytes, b)
			got := &pluginv1.ExportRequest{}
			require.NoError(t, proto.Unmarshal(b, got))
			require.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
		})
	}
}

// TestUnmarshalExportRequest checks that UnmarshalExportRequest gives what
// proto.Unmarshal and FromExportRequest give, and that it decodes every
// valid request itself.
func TestUnmarshalExportRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range codecCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := wire.MarshalExportRequest(tt.s, tt.req)
			requireSameResult(t, b)
			s, req, ok := wire.FastUnmarshalExportRequest(b)
			require.Equal(t, tt.valid, ok, "decoded without proto.Unmarshal")
			if ok {
				wantS, wantReq, err := slowUnmarshal(b)
				require.NoError(t, err)
				requireSame(t, wantS, s)
				require.Equal(t, wantReq, req)
			}
		})
	}
}

// TestUnmarshalExportRequestEncodings checks encodings that
// MarshalExportRequest does not write but another protobuf library may:
// unknown fields, fields again or out of order, merged messages, unpacked
// repeated fields; and broken ones.
func TestUnmarshalExportRequestEncodings(t *testing.T) {
	t.Parallel()
	s := smallSnapshot()
	req := exporters.ExportRequest{ID: "e-1", Format: "f", Target: "t", Options: map[string]string{"a": "1"}}
	base := wire.MarshalExportRequest(s, req)
	field := func(num protowire.Number, typ protowire.Type, value func(b []byte) []byte) []byte {
		return value(protowire.AppendTag(nil, num, typ))
	}
	bytesField := func(num protowire.Number, v []byte) []byte {
		return field(num, protowire.BytesType, func(b []byte) []byte { return protowire.AppendBytes(b, v) })
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// withUnknown marshals ExportRequest(s, req) after change adds unknown
	// fields to its messages.
	withUnknown := func(change func(m *pluginv1.ExportRequest, unknown []byte)) []byte {
		m := wire.ExportRequest(s, req)
		unknown := cat(
			field(99, protowire.VarintType, func(b []byte) []byte { return protowire.AppendVarint(b, 7) }),
			bytesField(100, []byte("\xff not utf-8, unknown")),
			field(101, protowire.StartGroupType, func(b []byte) []byte {
				b = protowire.AppendTag(b, 1, protowire.Fixed32Type)
				b = protowire.AppendFixed32(b, 1)
				return protowire.AppendTag(b, 101, protowire.EndGroupType)
			}),
		)
		change(m, unknown)
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		return b
	}
	md := func(m *pluginv1.ExportRequest) *metricspb.ResourceMetrics { return m.Metrics.ResourceMetrics[0] }
	hist := func(m *pluginv1.ExportRequest) *metricspb.HistogramDataPoint {
		return md(m).ScopeMetrics[0].Metrics[1].GetHistogram().DataPoints[0]
	}
	tests := []struct {
		name string
		data []byte
		fast bool // decoded without proto.Unmarshal
	}{
		{name: "unknown fields first and last", data: cat(withUnknown(func(*pluginv1.ExportRequest, []byte) {}), base), fast: false},
		{name: "unknown fields everywhere", fast: true, data: withUnknown(func(m *pluginv1.ExportRequest, u []byte) {
			m.ProtoReflect().SetUnknown(u)
			m.Metrics.ProtoReflect().SetUnknown(u)
			md(m).ProtoReflect().SetUnknown(u)
			md(m).Resource.ProtoReflect().SetUnknown(u)
			md(m).ScopeMetrics[0].ProtoReflect().SetUnknown(u)
			md(m).ScopeMetrics[0].Scope.ProtoReflect().SetUnknown(u)
			for _, metric := range md(m).ScopeMetrics[0].Metrics {
				metric.ProtoReflect().SetUnknown(u)
				metric.Metadata[0].ProtoReflect().SetUnknown(u)
				metric.Metadata[0].Value.ProtoReflect().SetUnknown(u)
			}
			hist(m).ProtoReflect().SetUnknown(u)
			hist(m).Exemplars[0].ProtoReflect().SetUnknown(u)
		})},
		{name: "fields again: the last wins", fast: true, data: cat(base,
			bytesField(1, []byte("e-2")),
			field(6, protowire.Fixed64Type, func(b []byte) []byte { return protowire.AppendFixed64(b, 42) }),
			bytesField(4, cat(bytesField(1, []byte("a")), bytesField(2, []byte("2")))),
			bytesField(4, bytesField(2, []byte("no key"))),
		)},
		{name: "metrics merged with an empty one", fast: true, data: cat(bytesField(5, nil), base, bytesField(5, nil))},
		{name: "metrics merged: two resource metrics", data: cat(base, base)},
		{name: "the wrong wire type is an unknown field", fast: true, data: cat(base,
			field(6, protowire.VarintType, func(b []byte) []byte { return protowire.AppendVarint(b, 1) }),
			field(5, protowire.Fixed32Type, func(b []byte) []byte { return protowire.AppendFixed32(b, 1) }))},
		{name: "a scope with attributes", data: withUnknown(func(m *pluginv1.ExportRequest, _ []byte) {
			md(m).ScopeMetrics[0].Scope.Attributes = md(m).Resource.Attributes
		})},
		{name: "a histogram with min", data: withUnknown(func(m *pluginv1.ExportRequest, _ []byte) {
			hist(m).Min = new(float64)
		})},
		{name: "invalid UTF-8 in a string", data: cat(base, bytesField(3, []byte("\xff")))},
		{name: "invalid UTF-8 in an option", data: cat(base, bytesField(4, bytesField(2, []byte("\xc3"))))},
		{name: "truncated", data: base[:len(base)-3]},
		{name: "a field number 0", data: cat(base, []byte{0x02, 0x00})},
		{name: "an end group", data: cat(base, protowire.AppendTag(nil, 7, protowire.EndGroupType))},
		{name: "empty", data: nil, fast: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireSameResult(t, tt.data)
			_, _, ok := wire.FastUnmarshalExportRequest(tt.data)
			require.Equal(t, tt.fast, ok, "decoded without proto.Unmarshal")
		})
	}
}

// TestUnmarshalExportRequestLabels checks labels around the decoder's
// shortcut for the usual KeyValue encoding (short key and value, UTF-8
// checked in one pass): lengths of a two-byte varint, multi-byte UTF-8,
// and invalid UTF-8 in the key, the value, or split between them.
func TestUnmarshalExportRequestLabels(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200)
	var many []string // more than the pool reserves for one point: it grows
	for i := range 40 {
		many = append(many, fmt.Sprintf("l%02d", i), fmt.Sprint(i))
	}
	tests := []struct {
		name   string
		labels []exporters.Label
		valid  bool
	}{
		{name: "empty value", labels: l("a", ""), valid: true},
		{name: "long value", labels: l("a", long), valid: true},
		{name: "long name", labels: l(long, "v"), valid: true},
		{name: "value of 125 bytes", labels: l("a", long[:125]), valid: true},
		{name: "value of 126 bytes", labels: l("a", long[:126]), valid: true},
		{name: "multi-byte UTF-8", labels: l("ünï", "✓ ☃ 🦫"), valid: true},
		{name: "invalid UTF-8 in the name", labels: l("a\xff", "v")},
		{name: "invalid UTF-8 in the value", labels: l("a", "\xff")},
		{name: "a rune split between name and value", labels: l("a\xc3", "\xa9")},
		{name: "a truncated rune at the value's end", labels: l("a", "v\xe2\x9c")},
		{name: "names repeated", labels: l("a", "1", "a", "2")},
		{name: "many labels", labels: l(many...), valid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &exporters.Snapshot{Families: []exporters.Family{
				{Name: "g", PromName: "g", Type: exporters.TypeGauge, Series: []exporters.Series{{Labels: tt.labels, Value: 1}}},
				{Name: "h", PromName: "h", Type: exporters.TypeHistogram, Series: []exporters.Series{{Labels: tt.labels,
					Histogram: histogram(1, []float64{1}, []uint64{1, 1}, nil)}}},
			}}
			b := wire.MarshalExportRequest(s, exporters.ExportRequest{})
			requireSameResult(t, b)
			_, _, err := wire.UnmarshalExportRequest(b)
			require.Equal(t, tt.valid, err == nil, "error: %v", err)
			_, _, ok := wire.FastUnmarshalExportRequest(b)
			require.Equal(t, tt.valid, ok, "decoded without proto.Unmarshal")
		})
	}
}

// TestUnmarshalExportRequestUnpacked checks repeated numbers sent one
// field each (unpacked), as protobuf parsers must accept.
func TestUnmarshalExportRequestUnpacked(t *testing.T) {
	t.Parallel()
	var point []byte
	point = protowire.AppendTag(point, 4, protowire.Fixed64Type) // count
	point = protowire.AppendFixed64(point, 3)
	point = protowire.AppendTag(point, 5, protowire.Fixed64Type) // sum
	point = protowire.AppendFixed64(point, math.Float64bits(1.5))
	for _, c := range []uint64{1, 2} {
		point = protowire.AppendTag(point, 6, protowire.Fixed64Type)
		point = protowire.AppendFixed64(point, c)
	}
	point = protowire.AppendTag(point, 7, protowire.Fixed64Type)
	point = protowire.AppendFixed64(point, math.Float64bits(10))
	m := wire.ExportRequest(&exporters.Snapshot{Families: []exporters.Family{{Name: "h", PromName: "h", Type: exporters.TypeHistogram,
		Series: []exporters.Series{{Histogram: histogram(0, []float64{5}, []uint64{0, 0}, nil)}}}}}, exporters.ExportRequest{})
	m.Metrics.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetHistogram().DataPoints[0] = &metricspb.HistogramDataPoint{}
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	// The empty data point is the message's last bytes: 0a 00 within the
	// Histogram; replace it by point, fixing every enclosing length.
	want := &pluginv1.ExportRequest{}
	require.NoError(t, proto.Unmarshal(b, want))
	want.Metrics.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetHistogram().DataPoints[0].ProtoReflect().SetUnknown(point)
	b, err = proto.Marshal(want) // the point's fields as unknown bytes: on the wire, fields like any others
	require.NoError(t, err)
	requireSameResult(t, b)
	s, _, ok := wire.FastUnmarshalExportRequest(b)
	require.True(t, ok)
	require.Equal(t, []exporters.Bucket{{UpperBound: 10, Count: 1}, {UpperBound: math.Inf(1), Count: 3}}, s.Families[0].Series[0].Histogram.Buckets)
}

// FuzzUnmarshalExportRequest checks that UnmarshalExportRequest gives for
// any bytes what proto.Unmarshal and FromExportRequest give.
func FuzzUnmarshalExportRequest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(wire.MarshalExportRequest(s, exporters.ExportRequest{ID: "i", Format: "f", Options: map[string]string{"k": "v"}}))
	}
	for _, tt := range malformedInputs()[:6] {
		m := wire.ExportRequest(errorSnapshot(), exporters.ExportRequest{})
		tt.change(m.Metrics)
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		if len(b) < 400 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireSameResult(t, data)
	})
}

// FuzzMarshalExportRequest checks the round trip: whatever request
// UnmarshalExportRequest accepts, MarshalExportRequest writes as a
// deterministic proto.Marshal does, and it reads back the same.
func FuzzMarshalExportRequest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(wire.MarshalExportRequest(s, exporters.ExportRequest{ID: "i", Format: "f", Target: "t", Options: map[string]string{"k": "v"}}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, req, err := wire.UnmarshalExportRequest(data)
		if err != nil {
			return
		}
		b := wire.MarshalExportRequest(s, req)
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(wire.ExportRequest(s, req))
		require.NoError(t, err)
		require.Equal(t, want, b)
		got, gotReq, err := wire.UnmarshalExportRequest(b)
		require.NoError(t, err)
		requireSame(t, s, got)
		if len(req.Options) == 0 {
			req.Options = nil // no entries on the wire: read back as nil
		}
		require.Equal(t, req, gotReq)
	})
}

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sampleSnapshot is exporters/json's sample: every metric type, NaN and
// ±Inf, extreme floats, and labels with every character that needs
// escaping.
func sampleSnapshot(t testing.TB) *exporters.Snapshot {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "snapshot.json"))
	require.NoError(t, err)
	defer f.Close()
	s, err := jsonexp.Decode(f)
	require.NoError(t, err)
	return s
}

func TestEncodeGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		opts   encodeOptions
	}{
		{name: "defaults", golden: "snapshot.influx", opts: encodeOptions{precision: precisionNS}},
		{name: "ms with tags", golden: "snapshot_ms_tags.influx", opts: encodeOptions{precision: precisionMS, tags: []exporters.Label{
			{Name: "env", Value: "prod"}, {Name: "namespace", Value: "overridden by the series"}, {Name: "zone", Value: "eu west"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, st, err := encode(t.Context(), nil, sampleSnapshot(t), tt.opts)
			require.NoError(t, err)
			require.Equal(t, 3, st.skipped, "NaN, +Inf and -Inf")
			require.Equal(t, bytes.Count(got, []byte("\n")), st.lines)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

// point is one parsed line of line protocol.
type point struct {
	measurement string
	tags        [][2]string // in line order
	field       string
	value       string
	ts          string // "" when the line has none
}

// parseLine reads one line as InfluxDB does: in the measurement a
// backslash escapes a comma or space, in tag keys and values also an
// equals sign; any other backslash is itself. Fields here are one
// unquoted number.
func parseLine(line string) (point, error) {
	var p point
	// readUntil reads up to an unescaped delimiter, unescaping.
	readUntil := func(s string, delims string, escapable string) (string, string, byte) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) && strings.IndexByte(escapable, s[i+1]) >= 0 {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			if strings.IndexByte(delims, c) >= 0 {
				return b.String(), s[i+1:], c
			}
			b.WriteByte(c)
		}
		return b.String(), "", 0
	}
	rest := line
	var d byte
	p.measurement, rest, d = readUntil(rest, ", ", ", ")
	if p.measurement == "" {
		return p, errors.New("no measurement")
	}
	for d == ',' {
		var k, v string
		k, rest, d = readUntil(rest, "=", ", =")
		if d != '=' || k == "" {
			return p, fmt.Errorf("tag key %q without =", k)
		}
		v, rest, d = readUntil(rest, ", ", ", =")
		if v == "" {
			return p, fmt.Errorf("tag %q has no value", k)
		}
		p.tags = append(p.tags, [2]string{k, v})
	}
	if d != ' ' {
		return p, errors.New("no field set")
	}
	p.field, rest, d = readUntil(rest, "=", ", =")
	if d != '=' {
		return p, errors.New("field without =")
	}
	p.value, rest, _ = strings.Cut(rest, " ")
	if strings.Contains(p.value, ",") {
		return p, errors.New("more than one field")
	}
	p.ts = rest
	if p.ts != "" {
		if _, err := strconv.ParseInt(p.ts, 10, 64); err != nil {
			return p, fmt.Errorf("timestamp %q: %w", p.ts, err)
		}
	}
	return p, nil
}

// stored is what InfluxDB keeps of a tag key or value: control characters
// as backslash sequences, trailing backslashes dropped (the layout
// README.md documents).
func stored(s string) string {
	s = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\f", `\f`, "\r", `\r`).Replace(s)
	return strings.TrimRight(s, `\`)
}

// wantPoint is a sample as the test expects to read it back.
type wantPoint struct {
	measurement string
	tags        map[string]string
	float       float64 // for float samples
	count       uint64  // for integer samples
	integer     bool
	ts          int64
}

// expectedPoints lists the samples of s, written independently of the
// encoder from the layout README.md documents.
func expectedPoints(s *exporters.Snapshot, opts encodeOptions) (want []wantPoint, skipped int) {
	for _, f := range s.Families {
		for _, x := range f.Series {
			tags := map[string]string{}
			for _, l := range opts.tags {
				tags[stored(l.Name)] = stored(l.Value)
			}
			for _, l := range x.Labels {
				tags[stored(l.Name)] = stored(l.Value)
			}
			for k, v := range tags {
				if k == "" || v == "" {
					delete(tags, k)
				}
			}
			t := x.Time
			if t.IsZero() {
				t = s.Time
			}
			ts := opts.precision.timestamp(t)
			add := func(suffix string, extra map[string]string, f float64, n uint64, integer bool) {
				if !integer && (math.IsNaN(f) || math.IsInf(f, 0)) || integer && n > math.MaxInt64 {
					skipped++
					return
				}
				tg := map[string]string{}
				for k, v := range tags {
					tg[k] = v
				}
				for k, v := range extra {
					tg[k] = v
				}
				want = append(want, wantPoint{measurement: suffix, tags: tg, float: f, count: n, integer: integer, ts: ts})
			}
			name := f.PromName
			if f.Type != exporters.TypeHistogram {
				add(name, nil, x.Value, 0, false)
				continue
			}
			for _, b := range x.Histogram.Buckets {
				add(name+"_bucket", map[string]string{"le": fmt.Sprintf("%g", b.UpperBound)}, 0, b.Count, true)
			}
			add(name+"_sum", nil, x.Histogram.Sum, 0, false)
			add(name+"_count", nil, 0, x.Histogram.Count, true)
		}
	}
	return want, skipped
}

func TestEncodeReadsBack(t *testing.T) {
	t.Parallel()
	for _, opts := range []encodeOptions{
		{precision: precisionNS},
		{precision: precisionS, tags: []exporters.Label{{Name: "a b", Value: "c=d"}, {Name: "queue", Value: "default queue"}}},
	} {
		s := sampleSnapshot(t)
		out, st, err := encode(t.Context(), nil, s, opts)
		require.NoError(t, err)
		want, skipped := expectedPoints(s, opts)
		require.Equal(t, skipped, st.skipped)
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		require.Len(t, lines, len(want))
		for i, line := range lines {
			p, err := parseLine(line)
			require.NoError(t, err, "line %d: %s", i+1, line)
			w := want[i]
			require.Equal(t, w.measurement, p.measurement, "line %d", i+1)
			got := map[string]string{}
			var keys []string
			for _, kv := range p.tags {
				got[kv[0]] = kv[1]
				keys = append(keys, kv[0])
			}
			require.True(t, sort.StringsAreSorted(keys), "line %d: tags not sorted: %v", i+1, keys)
			require.Equal(t, w.tags, got, "line %d: %s", i+1, line)
			require.Equal(t, "value", p.field)
			if w.integer {
				require.True(t, strings.HasSuffix(p.value, "i"), "line %d: want an integer: %s", i+1, p.value)
				n, err := strconv.ParseUint(strings.TrimSuffix(p.value, "i"), 10, 64)
				require.NoError(t, err)
				require.Equal(t, w.count, n, "line %d", i+1)
			} else {
				f, err := strconv.ParseFloat(p.value, 64)
				require.NoError(t, err, "line %d", i+1)
				require.Equal(t, math.Float64bits(w.float), math.Float64bits(f), "line %d: %v != %v", i+1, w.float, f)
			}
			require.Equal(t, strconv.FormatInt(w.ts, 10), p.ts, "line %d", i+1)
		}
	}
}

func TestEscapeTag(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a,b", `a\,b`},
		{"a=b", `a\=b`},
		{"a b", `a\ b`},
		{"tab\there", `tab\there`},
		{"new\nline", `new\nline`},
		{"cr\rff\f", `cr\rff\f`},
		{`back\slash`, `back\slash`},
		{`trailing\`, `trailing`},
		{`trailing\\`, `trailing`},
		{`\`, ``},
		{`a\,b`, `a\\,b`},
		{`quote"d`, `quote"d`},
		{"ünïcødé ✓", `ünïcødé\ ✓`},
		{"", ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, escapeTag(tt.in), "%q", tt.in)
	}
	// Measurements escape commas and spaces but not equals signs.
	require.Equal(t, `a\,b\ c=d\n`, string(appendEscaped(nil, "a,b c=d\n", false)))
}

func TestPrecision(t *testing.T) {
	t.Parallel()
	tm := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	before := time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC)
	tests := []struct {
		p         precision
		want, neg int64
	}{
		{precisionNS, 1795600800123456789, -500000000},
		{precisionUS, 1795600800123456, -500000},
		{precisionMS, 1795600800123, -500},
		{precisionS, 1795600800, -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.p.timestamp(tm), tt.p)
		require.Equal(t, tt.neg, tt.p.timestamp(before), "%s rounds down", tt.p)
	}
}

func TestEncodeEdges(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1, 0)
	s := &exporters.Snapshot{Time: t0, Families: []exporters.Family{
		{PromName: "g", Type: exporters.TypeGauge, Series: []exporters.Series{
			{Value: 1}, // the snapshot's time
			{Value: math.Copysign(0, -1), Time: time.Unix(2, 0)},
			{Labels: []exporters.Label{{Name: "le", Value: "x"}, {Name: "z", Value: `\`}}, Value: 1e21, Time: time.Unix(3, 0)},
			{Value: 1e-7, Time: time.Unix(4, 0)},
		}},
		{PromName: "h", Type: exporters.TypeHistogram, Series: []exporters.Series{
			{Labels: []exporters.Label{{Name: "a", Value: "1"}, {Name: "le", Value: "x"}, {Name: "z", Value: "2"}}, Time: t0, Histogram: &exporters.Histogram{
				Count: math.MaxUint64, Sum: math.Inf(-1), Buckets: []exporters.Bucket{{UpperBound: 1e6, Count: 1}, {UpperBound: math.Inf(1), Count: math.MaxUint64}},
			}},
			{Time: t0}, // no histogram at all
		}},
	}}
	got, st, err := encode(t.Context(), nil, s, encodeOptions{precision: precisionS})
	require.NoError(t, err)
	require.Equal(t, "g value=1 1\n"+
		"g value=-0 2\n"+
		"g,le=x value=1e+21 3\n"+
		"g value=1e-07 4\n"+
		"h_bucket,a=1,le=1e+06,z=2 value=1i 1\n", string(got))
	require.Equal(t, encodeStats{lines: 5, series: 5, skipped: 3}, st)

	s.Time = time.Time{}
	s.Families = s.Families[:1]
	s.Families[0].Series = s.Families[0].Series[:1]
	got, _, err = encode(t.Context(), nil, s, encodeOptions{precision: precisionNS})
	require.NoError(t, err)
	require.Equal(t, "g value=1\n", string(got), "no time: InfluxDB's own")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err = encode(ctx, nil, sampleSnapshot(t), encodeOptions{})
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = encode(t.Context(), nil, nil, encodeOptions{})
	require.EqualError(t, err, "nil snapshot")
}

// FuzzTagEscaping checks that any label name and value makes one well
// formed line that reads back as what InfluxDB stores.
func FuzzTagEscaping(f *testing.F) {
	for _, seed := range [][2]string{
		{"queue", "a,b c=d"}, {"k", `trail\`}, {"a=b", `\,`}, {"new\nline", "tab\t"}, {`\`, "x"}, {"k", `a\ b`}, {"k", `\\=`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		s := &exporters.Snapshot{Time: time.Unix(5, 0), Families: []exporters.Family{{
			PromName: "m", Type: exporters.TypeGauge,
			Series: []exporters.Series{{Labels: []exporters.Label{{Name: name, Value: value}}, Value: 1.5}},
		}}}
		out, st, err := encode(context.Background(), nil, s, encodeOptions{precision: precisionNS})
		if err != nil || st.lines != 1 {
			t.Fatalf("encode: %v, %d lines", err, st.lines)
		}
		line := strings.TrimSuffix(string(out), "\n")
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("line break inside the line: %q", line)
		}
		p, err := parseLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if p.measurement != "m" || p.value != "1.5" || p.ts != "5000000000" {
			t.Fatalf("%q read back as %+v", line, p)
		}
		k, v := stored(name), stored(value)
		if k == "" || v == "" {
			if len(p.tags) != 0 {
				t.Fatalf("%q: an empty tag was written", line)
			}
			return
		}
		if len(p.tags) != 1 || p.tags[0] != [2]string{k, v} {
			t.Fatalf("%q read back as %q, want %q=%q", line, p.tags, k, v)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	s := sampleSnapshot(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, _, err = encode(context.Background(), buf[:0], s, encodeOptions{precision: precisionNS})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

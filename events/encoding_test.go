package events_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// parent1 and parent2 are fixed trace contexts of a publisher's spans.
var (
	parent1 = events.TraceParent{
		TraceID: [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Flags:   0x01,
	}
	parent2 = events.TraceParent{TraceID: [16]byte(corr1), SpanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
)

func withParent(e events.Event, p events.TraceParent) events.Event { e.Parent = p; return e }

// parentCases are events with a trace parent, for the codec round trips:
// the binary and JSON forms both carry every valid parent.
func parentCases() []codecCase {
	return []codecCase{
		{name: "parent, sampled", event: withParent(ev(events.StepCompleted, events.String("namespace", "ns")), parent1)},
		{name: "parent, not sampled, trace id is the correlation id", event: withParent(ev(events.TaskCompleted), parent2)},
		{name: "parent, every flag", event: withParent(ev("flags"), events.TraceParent{TraceID: parent1.TraceID, SpanID: parent1.SpanID, Flags: 0xff})},
		{name: "parent, all-ones ids", event: withParent(ev("ones", events.Bool("b", true)),
			events.TraceParent{TraceID: [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, SpanID: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Flags: 1})},
		{name: "parent on a NaN event", event: withParent(ev("floats", events.Float("nan", math.NaN())), parent1), jsonErr: true},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range append(codecCases(), parentCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []events.Event{tt.event}
			b := events.EncodeBatch(in)
			got, err := events.DecodeBatch(b, nil)
			require.NoError(t, err)
			requireSameEvents(t, in, got)

			// The same event twice, and after another event, in one batch.
			in = []events.Event{tt.event, ev("before"), tt.event}
			got, err = events.DecodeBatch(events.EncodeBatch(in), nil)
			require.NoError(t, err)
			requireSameEvents(t, in, got)
		})
	}
}

func TestEncodeDecodeAllCasesInOneBatch(t *testing.T) {
	t.Parallel()
	var in []events.Event
	for _, c := range append(codecCases(), parentCases()...) {
		in = append(in, c.event)
	}
	b := events.EncodeBatch(in)
	got, err := events.DecodeBatch(b, nil)
	require.NoError(t, err)
	requireSameEvents(t, in, got)

	// Float attributes keep their exact bits, NaN payloads included.
	for i := range in {
		for j, a := range in[i].Attrs {
			if a.Value.Kind() == events.KindFloat {
				require.Equal(t, math.Float64bits(a.Value.Float64()), math.Float64bits(got[i].Attrs[j].Value.Float64()), "%s.%s", in[i].Name, a.Key)
			}
		}
	}
	// The zero time stays the zero time.
	for i := range in {
		require.Equal(t, in[i].Time.IsZero(), got[i].Time.IsZero(), in[i].Name)
	}
}

func TestEncodeEmptyBatch(t *testing.T) {
	t.Parallel()
	for _, in := range [][]events.Event{nil, {}} {
		b := events.EncodeBatch(in)
		require.Equal(t, []byte{'S', 'X', events.WireVersion, 0}, b)
		got, err := events.DecodeBatch(b, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	}
}

// randomEvents returns n varied events from a fixed seed.
func randomEvents(n int) []events.Event {
	r := rand.New(rand.NewPCG(1, 2))
	names := events.Names()
	out := make([]events.Event, n)
	for i := range out {
		attrs := make([]events.Attr, r.IntN(9))
		for j := range attrs {
			key := "k" + strconv.Itoa(j)
			switch r.IntN(4) {
			case 0:
				attrs[j] = events.String(key, string(rune(r.IntN(0x10ffff-0xe000)+0xe000))+strconv.Itoa(r.Int()))
			case 1:
				attrs[j] = events.Int(key, int64(r.Uint64()))
			case 2:
				attrs[j] = events.Float(key, math.Float64frombits(r.Uint64()))
			case 3:
				attrs[j] = events.Bool(key, r.IntN(2) == 1)
			}
		}
		ts := time.Unix(0, int64(r.Uint64()))
		out[i] = events.Event{
			Name:          names[r.IntN(len(names))],
			ID:            events.NewIDAt(ts),
			Time:          ts,
			CorrelationID: events.ID{byte(i), byte(i >> 8), 0x70},
			SchemaVersion: uint16(r.Uint32()),
			Attrs:         attrs,
		}
		if r.IntN(2) == 0 {
			var p events.TraceParent
			binary.LittleEndian.PutUint64(p.TraceID[:], r.Uint64()|1)
			binary.LittleEndian.PutUint64(p.TraceID[8:], r.Uint64())
			binary.LittleEndian.PutUint64(p.SpanID[:], r.Uint64()|1)
			p.Flags = byte(r.Uint32())
			out[i].Parent = p
		}
	}
	return out
}

func TestEncodeDecodeLargeBatch(t *testing.T) {
	t.Parallel()
	in := randomEvents(10000)
	b := events.EncodeBatch(in)

	// Decoding appends after what dst already holds.
	prefix := []events.Event{ev("already.there", events.Int("n", 1))}
	got, err := events.DecodeBatch(b, prefix)
	require.NoError(t, err)
	require.Len(t, got, len(in)+1)
	requireSameEvents(t, prefix, got[:1])
	requireSameEvents(t, in, got[1:])

	// Decoded events do not alias the payload.
	clear(b)
	requireSameEvents(t, in, got[1:])
}

// TestEncodeInvalidParentAsNone: an invalid Event.Parent means none, and is
// written as none, so that it cannot make its batch undecodable.
func TestEncodeInvalidParentAsNone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		parent events.TraceParent
	}{
		{name: "zero", parent: events.TraceParent{}},
		{name: "zero trace id", parent: events.TraceParent{SpanID: parent1.SpanID, Flags: 1}},
		{name: "zero span id", parent: events.TraceParent{TraceID: parent1.TraceID, Flags: 1}},
		{name: "flags only", parent: events.TraceParent{Flags: 1}},
	}
	none := events.AppendEvent(nil, new(ev("e")))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := withParent(ev("e"), tt.parent)
			require.Equal(t, none, events.AppendEvent(nil, &e), "written as no parent")
			require.Equal(t, byte(0), none[len(none)-1])
			got, err := events.DecodeBatch(events.EncodeBatch([]events.Event{e}), nil)
			require.NoError(t, err)
			require.Zero(t, got[0].Parent)
		})
	}

	// A valid parent is the last 26 bytes of the event.
	e := withParent(ev("e"), parent1)
	b := events.AppendEvent(nil, &e)
	require.Len(t, b, len(none)+25)
	require.Equal(t, none[:len(none)-1], b[:len(none)-1])
	want := append([]byte{1}, parent1.TraceID[:]...)
	want = append(want, parent1.SpanID[:]...)
	want = append(want, parent1.Flags)
	require.Equal(t, want, b[len(none)-1:])
}

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	evs := []events.Event{codecCases()[0].event, ev("second", events.Bool("b", false))}
	b := events.AppendBatchHeader([]byte("junk"), len(evs))[4:]
	for i := range evs {
		b = events.AppendEvent(b, &evs[i])
	}
	require.Equal(t, events.EncodeBatch(evs), b, "header plus appended events is EncodeBatch")

	// AppendEvent leaves the bytes before it alone.
	prefix := []byte("prefix")
	out := events.AppendEvent(prefix, &evs[0])
	require.Equal(t, "prefix", string(out[:6]))
	require.Equal(t, events.EncodeBatch(evs[:1])[4:], out[6:])
}

func TestAppendEventAllocs(t *testing.T) {
	e := withParent(codecCases()[0].event, parent1)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() { buf = events.AppendEvent(buf[:0], &e) })
	require.Zero(t, allocs, "AppendEvent into a large enough buffer must not allocate")
}

func TestBatchBuilder(t *testing.T) {
	t.Parallel()
	var bb events.BatchBuilder
	require.Zero(t, bb.Len())
	require.Zero(t, bb.Size())
	require.Nil(t, bb.Take(), "an empty builder takes nil")

	var in []events.Event
	for _, c := range codecCases() {
		in = append(in, c.event)
	}
	for i := range in {
		bb.Add(&in[i])
		require.Equal(t, i+1, bb.Len())
	}
	size := bb.Size()
	first := bb.Take()
	require.Len(t, first, size)
	require.Zero(t, bb.Len(), "Take resets")
	require.Zero(t, bb.Size(), "Take resets")
	require.Nil(t, bb.Take())

	fromBuilder, err := events.DecodeBatch(first, nil)
	require.NoError(t, err)
	fromEncode, err := events.DecodeBatch(events.EncodeBatch(in), nil)
	require.NoError(t, err)
	requireSameEvents(t, fromEncode, fromBuilder)
	requireSameEvents(t, in, fromBuilder)

	// The events are byte-for-byte those of EncodeBatch; only the count
	// differs, written as a fixed three-byte varint.
	enc := events.EncodeBatch(in)
	require.Less(t, len(in), 128)
	require.Equal(t, enc[:3], first[:3])
	require.Equal(t, []byte{byte(len(in)) | 0x80, 0x80, 0x00}, first[3:6])
	require.Equal(t, enc[4:], first[6:])

	// The builder is reusable, and the new batch does not touch the old one.
	kept := bytes.Clone(first)
	second := []events.Event{ev("again", events.String("s", "zzzzzzzzzzzzzzzz"))}
	bb.Add(&second[0])
	got, err := events.DecodeBatch(bb.Take(), nil)
	require.NoError(t, err)
	requireSameEvents(t, second, got)
	require.Equal(t, kept, first)
}

func TestBatchBuilderCounts(t *testing.T) {
	t.Parallel()
	small := events.Event{Name: "e", SchemaVersion: 1}
	for _, n := range []int{1, 2, 127, 128, 129, 16383, 16384, 16385, 40000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			var bb events.BatchBuilder
			for range n {
				bb.Add(&small)
			}
			b := bb.Take()
			got, err := events.DecodeBatch(b, nil)
			require.NoError(t, err)
			require.Len(t, got, n)
			count, k := binary.Uvarint(b[3:])
			require.Equal(t, 3, k, "the count is always three bytes")
			require.Equal(t, uint64(n), count)
		})
	}
	// Every count the builder can write decodes to itself; the decoder's own
	// limit is the tighter one, so bus batch sizes are bounded by it.
	require.LessOrEqual(t, events.MaxBatchEvents, events.MaxBuilderEvents)
	require.Equal(t, 1<<21-1, events.MaxBuilderEvents)
}

func TestDecodeBatchMaxEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 49 MB batch")
	}
	t.Parallel()
	one := events.AppendEvent(nil, &events.Event{Name: "e"})
	for _, tt := range []struct {
		name  string
		count int
		ok    bool
	}{
		{name: "at the limit", count: events.MaxBatchEvents, ok: true},
		{name: "over the limit", count: events.MaxBatchEvents + 1},
	} {
		b := events.AppendBatchHeader(nil, tt.count)
		b = append(b, bytes.Repeat(one, tt.count)...)
		got, err := events.DecodeBatch(b, nil)
		if tt.ok {
			require.NoError(t, err, tt.name)
			require.Len(t, got, tt.count)
			continue
		}
		require.ErrorIs(t, err, events.ErrDecode, tt.name)
		require.ErrorContains(t, err, "bad event count")
	}
}

// goldenBatch is the batch pinned by testdata/batch_v2.golden; its first and
// last events have a parent.
func goldenBatch() []events.Event {
	evs := goldenBatchV1()
	evs[0].Parent = parent1
	evs[2].Parent = events.TraceParent{TraceID: [16]byte(id2), SpanID: [8]byte(id1[8:]), Flags: 0x03}
	return evs
}

// goldenBatchV1 is the batch pinned by testdata/batch_v1.golden, written by
// wire version 1, which has no parents.
func goldenBatchV1() []events.Event {
	return []events.Event{
		{Name: events.StepCompleted, ID: id1, Time: t1, CorrelationID: corr1, SchemaVersion: 1, Attrs: []events.Attr{
			events.String("task_uuid", "0190b6a1-0000-7000-8000-000000000001"),
			events.String("step_uuid", "0190b6a1-0000-7000-8000-000000000002"),
			events.String("namespace", "rust_e2e_linear"),
			events.String("step_name", "square"),
			events.String("result", "success"),
			events.Float("duration_ms", 12.75),
			events.Int("attempt", 1),
		}},
		{Name: events.TaskCompleted, ID: id2, Time: time.Time{}, CorrelationID: corr1, SchemaVersion: 2},
		{Name: "custom.ünïcode", ID: id2, Time: time.Unix(-1, 0), CorrelationID: id1, SchemaVersion: math.MaxUint16, Attrs: []events.Attr{
			events.String("ключ", "日本語"),
			events.Int("min", math.MinInt64),
			events.Int("neg", -300),
			events.Float("nan", math.Float64frombits(0x7ff8000000000abc)),
			events.Float("ninf", math.Inf(-1)),
			events.Float("negzero", math.Copysign(0, -1)),
			events.Bool("yes", true),
			events.Bool("no", false),
			events.String("", ""),
		}},
	}
}

// TestGoldenBatch pins wire version 2: any change to these bytes is a wire
// format change and needs a new WireVersion. Rerun with -update only when the
// change is intended.
func TestGoldenBatch(t *testing.T) {
	t.Parallel()
	require.Equal(t, 2, events.WireVersion)
	golden := filepath.Join("testdata", "batch_v2.golden")
	got := events.EncodeBatch(goldenBatch())
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./events -run TestGoldenBatch -update to create it")
	require.Equal(t, hex.Dump(want), hex.Dump(got), "wire format differs from %s; rerun with -update only if intended (and bump WireVersion)", golden)

	// The golden bytes also decode to the golden events.
	decoded, err := events.DecodeBatch(want, nil)
	require.NoError(t, err)
	requireSameEvents(t, goldenBatch(), decoded)
}

// TestGoldenBatchV1 decodes a batch written by wire version 1, which has no
// parent byte: older publishers' batches, and rows inserted by hand, still
// route. -update never rewrites it.
func TestGoldenBatchV1(t *testing.T) {
	t.Parallel()
	v1, err := os.ReadFile(filepath.Join("testdata", "batch_v1.golden"))
	require.NoError(t, err)
	require.Equal(t, []byte{'S', 'X', 1}, v1[:3])
	decoded, err := events.DecodeBatch(v1, nil)
	require.NoError(t, err)
	requireSameEvents(t, goldenBatchV1(), decoded)
	for i := range decoded {
		require.Zero(t, decoded[i].Parent, "event %d: version 1 carries no parent", i)
	}

	// Re-encoded, it is version 2 and the same events.
	again, err := events.DecodeBatch(events.EncodeBatch(decoded), nil)
	require.NoError(t, err)
	requireSameEvents(t, decoded, again)

	// Without its parents, the version 2 batch is version 1's events and
	// one zero byte more per event.
	v2 := events.EncodeBatch(goldenBatchV1())
	require.Equal(t, byte(2), v2[2])
	require.Len(t, v2, len(v1)+len(goldenBatchV1()))
}

// rawEvent is a hand-built wire version 1 event named "e" with zero ids,
// time 0 and schema version 1, declaring nattrs attributes encoded in attrs.
// A version 2 event is the same followed by its parent.
func rawEvent(nattrs uint64, attrs ...byte) []byte {
	b := []byte{1, 'e'}
	b = append(b, make([]byte, 32)...)
	b = append(b, 0, 1) // time, schema version
	b = binary.AppendUvarint(b, nattrs)
	return append(b, attrs...)
}

// rawBatch is a hand-built wire version 1 batch of evs, announcing count.
func rawBatch(count uint64, evs ...[]byte) []byte {
	return rawBatchVersion(1, count, evs...)
}

// rawBatch2 is a hand-built wire version 2 batch of evs, announcing count.
func rawBatch2(count uint64, evs ...[]byte) []byte {
	return rawBatchVersion(2, count, evs...)
}

func rawBatchVersion(version byte, count uint64, evs ...[]byte) []byte {
	b := []byte{'S', 'X', version}
	b = binary.AppendUvarint(b, count)
	for _, e := range evs {
		b = append(b, e...)
	}
	return b
}

func TestDecodeBatchErrors(t *testing.T) {
	t.Parallel()
	good := rawEvent(1, 1, 'k', byte(events.KindBool), 1)
	tests := []struct {
		name    string
		payload []byte
		wantMsg []string
	}{
		{name: "nil", payload: nil, wantMsg: []string{"bad magic"}},
		{name: "empty", payload: []byte{}, wantMsg: []string{"bad magic"}},
		{name: "magic only", payload: []byte("SX"), wantMsg: []string{"bad magic"}},
		{name: "bad magic", payload: []byte("XX\x01\x00"), wantMsg: []string{"bad magic"}},
		{name: "swapped magic", payload: []byte("XS\x01\x00"), wantMsg: []string{"bad magic"}},
		{name: "JSON", payload: []byte(`{"name":"x"}`), wantMsg: []string{"bad magic"}},
		{name: "unknown version", payload: []byte("SX\x03\x00"), wantMsg: []string{"wire version 3, this build reads versions 1 and 2"}},
		{name: "version 255", payload: []byte("SX\xff\x00"), wantMsg: []string{"wire version 255, this build reads versions 1 and 2"}},
		{name: "version zero", payload: []byte("SX\x00\x00"), wantMsg: []string{"wire version 0"}},
		{name: "missing count", payload: []byte("SX\x01"), wantMsg: []string{"bad event count at offset 3"}},
		{name: "unterminated count", payload: []byte("SX\x01\x80"), wantMsg: []string{"bad event count"}},
		{name: "count overflows uint64", payload: append([]byte("SX\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), wantMsg: []string{"bad event count"}},
		{name: "huge count", payload: rawBatch(math.MaxUint64, good), wantMsg: []string{"bad event count"}},
		{name: "count over MaxBatchEvents", payload: rawBatch(events.MaxBatchEvents+1, good), wantMsg: []string{"bad event count"}},
		{name: "count larger than payload", payload: rawBatch(1000, good), wantMsg: []string{"bad event count"}},
		{name: "fewer events than count", payload: rawBatch(2, good), wantMsg: []string{"event 1 of 2", "name at offset", "truncated"}},
		{name: "trailing bytes", payload: append(rawBatch(1, good), 0), wantMsg: []string{"1 trailing bytes after 1 events"}},
		{name: "trailing event", payload: rawBatch(1, good, good), wantMsg: []string{"trailing bytes after 1 events"}},
		{name: "trailing bytes after empty batch", payload: rawBatch(0, []byte{0}), wantMsg: []string{"1 trailing bytes after 0 events"}},
		{name: "empty name", payload: rawBatch(1, append([]byte{0}, rawEvent(0)[2:]...)), wantMsg: []string{"event 0 of 1", "empty name"}},
		{name: "name longer than payload", payload: rawBatch(1, append([]byte{0x7f}, rawEvent(0)[2:]...)), wantMsg: []string{"event 0 of 1", "name at offset", "truncated"}},
		{name: "ids cut short", payload: rawBatch(1, rawEvent(0)[:20]), wantMsg: []string{"event 0 of 1", "ids at offset 6", "truncated"}},
		{name: "time overlong varint", payload: rawBatch(1, append(rawEvent(0)[:34], bytes.Repeat([]byte{0x80}, 10)...)), wantMsg: []string{"event 0 of 1", "time at offset"}},
		{name: "schema version over uint16", payload: rawBatch(1, append(append(rawEvent(0)[:35], 0x80, 0x80, 0x04), 0)), wantMsg: []string{"event 0 of 1", "schema version at offset", "bad value"}},
		{name: "attribute count larger than payload", payload: rawBatch(1, rawEvent(100, 1, 'k', byte(events.KindBool), 1)), wantMsg: []string{"event 0 of 1", "attribute count at offset", "bad value"}},
		{name: "attribute missing", payload: rawBatch(1, rawEvent(2, 1, 'k', byte(events.KindBool), 1, 0)), wantMsg: []string{"event 0 of 1"}},
		{name: "attribute key cut short", payload: rawBatch(1, rawEvent(1, 5, 'k', 'k', byte(events.KindBool))), wantMsg: []string{"event 0 of 1", "attribute 0 key", "truncated"}},
		{name: "attribute kind missing", payload: rawBatch(1, rawEvent(1, 2, 'k', 'k')), wantMsg: []string{"event 0 of 1", `attribute "kk" kind at offset`, "truncated"}},
		{name: "unknown kind", payload: rawBatch(1, rawEvent(1, 1, 'k', 5, 0)), wantMsg: []string{"event 0 of 1", `attribute "k" at offset 43: unknown kind 5`}},
		{name: "kind zero", payload: rawBatch(1, rawEvent(1, 1, 'k', 0, 0)), wantMsg: []string{`attribute "k"`, "unknown kind 0"}},
		{name: "kind 255", payload: rawBatch(1, rawEvent(1, 1, 'k', 255, 0)), wantMsg: []string{"unknown kind 255"}},
		{name: "bool value 2", payload: rawBatch(1, rawEvent(1, 1, 'k', byte(events.KindBool), 2)), wantMsg: []string{"event 0 of 1", `attribute "k" value`, "bad or truncated"}},
		{name: "bool value 255", payload: rawBatch(1, rawEvent(1, 1, 'k', byte(events.KindBool), 255)), wantMsg: []string{`attribute "k" value`}},
		{name: "float cut short", payload: rawBatch(1, rawEvent(1, 1, 'k', byte(events.KindFloat), 1, 2, 3, 4, 5, 6, 7)), wantMsg: []string{`attribute "k" value`, "bad or truncated"}},
		{name: "string value longer than payload", payload: rawBatch(1, rawEvent(1, 1, 'k', byte(events.KindString), 9, 'a')), wantMsg: []string{`attribute "k" value`}},
		{name: "int overlong varint", payload: rawBatch(1, rawEvent(1, append([]byte{1, 'k', byte(events.KindInt)}, bytes.Repeat([]byte{0xff}, 9)...)...)), wantMsg: []string{`attribute "k" value`}},
		{name: "int varint overflows", payload: rawBatch(1, rawEvent(1, append([]byte{1, 'k', byte(events.KindInt)}, append(bytes.Repeat([]byte{0xff}, 9), 0x02)...)...)), wantMsg: []string{`attribute "k" value`}},
		{name: "second event broken", payload: rawBatch(2, good, rawEvent(1, 1, 'k', 9, 0)), wantMsg: []string{"event 1 of 2", "unknown kind 9"}},

		// Version 2: each event ends with its parent.
		{name: "v2 parent missing", payload: rawBatch2(1, good), wantMsg: []string{"event 0 of 1", "parent at offset 45", "truncated"}},
		{name: "v2 parent missing on the last event", payload: rawBatch2(2, append(bytes.Clone(good), 0), good), wantMsg: []string{"event 1 of 2", "parent at offset", "truncated"}},
		{name: "v2 parent presence 2", payload: rawBatch2(1, append(bytes.Clone(good), 2)), wantMsg: []string{"event 0 of 1", "parent at offset 45: presence byte 2, want 0 or 1"}},
		{name: "v2 parent presence 255", payload: rawBatch2(1, append(bytes.Clone(good), 255)), wantMsg: []string{"presence byte 255"}},
		{name: "v2 parent cut short", payload: rawBatch2(1, append(append(bytes.Clone(good), 1), wireParent(parent1)[1:25]...)), wantMsg: []string{"event 0 of 1", "parent at offset 46", "truncated"}},
		{name: "v2 parent without flags", payload: rawBatch2(1, append(bytes.Clone(good), wireParent(parent1)[:25]...)), wantMsg: []string{"parent at offset", "truncated"}},
		{name: "v2 parent with zero trace id", payload: rawBatch2(1, append(bytes.Clone(good), wireParent(events.TraceParent{SpanID: parent1.SpanID, Flags: 1})...)), wantMsg: []string{"event 0 of 1", "parent at offset 46: zero trace id"}},
		{name: "v2 parent with zero span id", payload: rawBatch2(1, append(bytes.Clone(good), wireParent(events.TraceParent{TraceID: parent1.TraceID, Flags: 1})...)), wantMsg: []string{"event 0 of 1", "parent at offset 62: zero span id"}},
		{name: "v2 parent with zero ids", payload: rawBatch2(1, append(bytes.Clone(good), wireParent(events.TraceParent{Flags: 1})...)), wantMsg: []string{"zero trace id"}},
		{name: "v2 parent byte on a v1 event", payload: rawBatch(1, append(bytes.Clone(good), 0)), wantMsg: []string{"1 trailing bytes after 1 events"}},
		{name: "v2 trailing bytes after a parent", payload: append(rawBatch2(1, append(bytes.Clone(good), wireParent(parent1)...)), 0), wantMsg: []string{"1 trailing bytes after 1 events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := []events.Event{ev("kept")}
			got, err := events.DecodeBatch(tt.payload, dst)
			require.ErrorIs(t, err, events.ErrDecode)
			for _, m := range tt.wantMsg {
				require.ErrorContains(t, err, m)
			}
			require.Len(t, got, 1, "dst comes back unchanged in length")
			requireSameEvents(t, dst, got)
		})
	}

	// The good event itself is fine, so the failures above are the mutations'.
	got, err := events.DecodeBatch(rawBatch(1, good), nil)
	require.NoError(t, err)
	require.Equal(t, []events.Attr{events.Bool("k", true)}, got[0].Attrs)
	require.Zero(t, got[0].Parent)
	// So is it in version 2, with and without a parent.
	got, err = events.DecodeBatch(rawBatch2(2, append(bytes.Clone(good), 0), append(bytes.Clone(good), wireParent(parent1)...)), nil)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, []events.Attr{events.Bool("k", true)}, got[1].Attrs)
	require.Zero(t, got[0].Parent)
	require.Equal(t, parent1, got[1].Parent)
}

// wireParent is p as a version 2 event ends with it, present even when p
// is invalid.
func wireParent(p events.TraceParent) []byte {
	b := append([]byte{1}, p.TraceID[:]...)
	b = append(b, p.SpanID[:]...)
	return append(b, p.Flags)
}

func TestDecodeBatchEveryTruncation(t *testing.T) {
	t.Parallel()
	b := events.EncodeBatch(goldenBatch())
	var bb events.BatchBuilder
	for _, e := range goldenBatch() {
		bb.Add(&e)
	}
	for name, full := range map[string][]byte{"EncodeBatch": b, "BatchBuilder": bb.Take()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := make([]events.Event, 2, 8)
			for i := range len(full) {
				// A copy with no spare capacity, so a read past the end
				// cannot go unnoticed.
				prefix := bytes.Clone(full[:i])
				got, err := events.DecodeBatch(prefix, dst)
				require.ErrorIs(t, err, events.ErrDecode, "prefix of %d of %d bytes", i, len(full))
				require.Len(t, got, len(dst), "prefix of %d bytes", i)
				if i > 6 {
					require.ErrorContains(t, err, "event ", "prefix of %d bytes names the event", i)
				}
			}
			got, err := events.DecodeBatch(full, dst)
			require.NoError(t, err)
			require.Len(t, got, len(dst)+len(goldenBatch()))
		})
	}
}

// TestDecodeBatchMutations flips every byte of a valid batch: decoding must
// never panic, and whatever decodes must re-encode to the same events.
func TestDecodeBatchMutations(t *testing.T) {
	t.Parallel()
	full := events.EncodeBatch(goldenBatch())
	for i := range full {
		for _, x := range []byte{0x01, 0x02, 0x80, 0xff} {
			b := bytes.Clone(full)
			b[i] ^= x
			got, err := events.DecodeBatch(b, nil)
			if err != nil {
				require.ErrorIs(t, err, events.ErrDecode)
				require.Empty(t, got)
				continue
			}
			again, err := events.DecodeBatch(events.EncodeBatch(got), nil)
			require.NoError(t, err, "byte %d ^ %#x", i, x)
			requireSameEvents(t, got, again, "byte %d ^ %#x", i, x)
		}
	}
}

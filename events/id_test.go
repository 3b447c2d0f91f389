package events_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func requireV7(t *testing.T, id events.ID) {
	t.Helper()
	require.Equal(t, byte(0x7), id[6]>>4, "version nibble of %s", id)
	require.Equal(t, byte(0b10), id[8]>>6, "RFC 9562 variant bits of %s", id)
}

func TestNewIDVersionAndVariant(t *testing.T) {
	t.Parallel()
	seen := make(map[events.ID]bool, 10000)
	for range 10000 {
		id := events.NewID()
		requireV7(t, id)
		require.False(t, id.IsZero())
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

func TestNewIDTimeOrdered(t *testing.T) {
	t.Parallel()
	// Ids made in later milliseconds sort after earlier ones, byte-wise and as
	// text; within one millisecond the order is random.
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var prev events.ID
	for i := range 2000 {
		id := events.NewIDAt(base.Add(time.Duration(i) * time.Millisecond))
		if i > 0 {
			require.Negative(t, bytes.Compare(prev[:], id[:]), "%s !< %s", prev, id)
			require.Less(t, prev.String(), id.String())
		}
		prev = id
	}

	// Ids from the live clock: sorted by their bytes, their times never go back.
	ids := make([]events.ID, 0, 3000)
	for range cap(ids) {
		ids = append(ids, events.NewID())
		if len(ids)%500 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	require.True(t, slices.IsSortedFunc(ids, func(a, b events.ID) int { return a.Time().Compare(b.Time()) }))
	sorted := slices.SortedFunc(slices.Values(ids), func(a, b events.ID) int { return bytes.Compare(a[:], b[:]) })
	require.True(t, slices.IsSortedFunc(sorted, func(a, b events.ID) int { return a.Time().Compare(b.Time()) }))
}

func TestIDTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		at   time.Time
	}{
		{name: "unix epoch", at: time.Unix(0, 0)},
		{name: "now", at: time.Now()},
		{name: "sub-millisecond is truncated", at: time.Date(2024, 7, 15, 9, 30, 45, 123999999, time.UTC)},
		{name: "other zone", at: time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.FixedZone("X", 5*3600))},
		{name: "largest 48-bit millisecond", at: time.UnixMilli(1<<48 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := events.NewIDAt(tt.at)
			requireV7(t, id)
			require.True(t, id.Time().Equal(tt.at.Truncate(time.Millisecond)), "got %v, want %v", id.Time(), tt.at)
			require.Equal(t, tt.at.UnixMilli(), id.Time().UnixMilli())
		})
	}
	require.WithinDuration(t, time.Now(), events.NewID().Time(), time.Second)
}

func TestIDStringParseRoundTrip(t *testing.T) {
	t.Parallel()
	for range 1000 {
		id := events.NewID()
		s := id.String()
		require.Len(t, s, 36)
		require.Equal(t, strings.ToLower(s), s)
		for _, i := range []int{8, 13, 18, 23} {
			require.Equal(t, byte('-'), s[i])
		}

		got, err := events.ParseID(s)
		require.NoError(t, err)
		require.Equal(t, id, got)

		compact := strings.ReplaceAll(s, "-", "")
		require.Len(t, compact, 32)
		got, err = events.ParseID(compact)
		require.NoError(t, err)
		require.Equal(t, id, got)

		got, err = events.ParseID(strings.ToUpper(s))
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
}

func TestIDKnownValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want events.ID
	}{
		{name: "nil uuid", in: "00000000-0000-0000-0000-000000000000", want: events.ID{}},
		{name: "max uuid", in: "ffffffff-ffff-ffff-ffff-ffffffffffff", want: events.ID{
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{name: "RFC 9562 appendix A.6 example", in: "017F22E2-79B0-7CC3-98C4-DC0C0C07398F", want: events.ID{
			0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3, 0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f}},
		{name: "compact form", in: "017f22e279b07cc398c4dc0c0c07398f", want: events.ID{
			0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3, 0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.ParseID(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.want.IsZero(), got == events.ID{})
		})
	}
	// The RFC's example id encodes Tuesday, February 22, 2022 2:22:22.00 PM GMT-05:00.
	rfc := mustParseID("017f22e2-79b0-7cc3-98c4-dc0c0c07398f")
	require.True(t, rfc.Time().Equal(time.Date(2022, 2, 22, 14, 22, 22, 0, time.FixedZone("", -5*3600))), "got %v", rfc.Time())
}

func TestParseIDErrors(t *testing.T) {
	t.Parallel()
	valid := "0190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0b1"
	tests := []struct {
		name    string
		in      string
		wantMsg string
	}{
		{name: "empty", in: "", wantMsg: "has length 0, want 36 or 32"},
		{name: "one short", in: valid[:35], wantMsg: "has length 35"},
		{name: "one long", in: valid + "0", wantMsg: "has length 37"},
		{name: "braced", in: "{" + valid + "}", wantMsg: "has length 38"},
		{name: "urn", in: "urn:uuid:" + valid, wantMsg: "has length 45"},
		{name: "31 digits", in: strings.ReplaceAll(valid, "-", "")[:31], wantMsg: "has length 31"},
		{name: "dash misplaced", in: "0190b6a12-c3d-7e4f-8a5b-6c7d8e9fa0b1"},
		{name: "dashes replaced", in: "0190b6a1_2c3d_7e4f_8a5b_6c7d8e9fa0b1"},
		{name: "last dash missing", in: "0190b6a1-2c3d-7e4f-8a5bx6c7d8e9fa0b1"},
		{name: "non-hex in 36 form", in: "0190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0bg"},
		{name: "non-hex in 32 form", in: "0190b6a12c3d7e4f8a5b6c7d8e9fa0bz"},
		{name: "dashes in 32 form", in: "0190b6a1-2c3d-7e4f-8a5b-6c7d8e9f"},
		{name: "spaces", in: " 190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0b1"},
		{name: "sign", in: "+190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0b1"},
		{name: "multibyte", in: "é190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0b"},
		{name: "all dashes", in: strings.Repeat("-", 36)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := events.ParseID(tt.in)
			require.ErrorIs(t, err, events.ErrInvalidID)
			require.ErrorContains(t, err, tt.wantMsg)
			require.Contains(t, err.Error(), tt.in, "the error quotes the input")
			require.True(t, id.IsZero(), "a failed parse returns the nil id")

			var u events.ID
			require.ErrorIs(t, u.UnmarshalText([]byte(tt.in)), events.ErrInvalidID)
			require.True(t, u.IsZero(), "a failed UnmarshalText leaves the id unchanged")
		})
	}
}

func TestIDText(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	text, err := id.MarshalText()
	require.NoError(t, err)
	require.Equal(t, id.String(), string(text))

	var got events.ID
	require.NoError(t, got.UnmarshalText(text))
	require.Equal(t, id, got)
	require.NoError(t, got.UnmarshalText(bytes.ReplaceAll(text, []byte("-"), nil)))
	require.Equal(t, id, got)

	// A failed UnmarshalText keeps the previous value.
	require.Error(t, got.UnmarshalText([]byte("nope")))
	require.Equal(t, id, got)

	require.Equal(t, "prefix:"+id.String(), string(id.AppendText36([]byte("prefix:"))))

	// As a JSON string and a map key, through encoding.TextMarshaler.
	type doc struct {
		ID   events.ID          `json:"id"`
		Keys map[events.ID]bool `json:"keys"`
	}
	in := doc{ID: id, Keys: map[events.ID]bool{id1: true}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+id.String()+`","keys":{"`+id1.String()+`":true}}`, string(b))
	var out doc
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
}

func TestIDAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		id := events.NewID()
		buf = id.AppendText36(buf[:0])
	})
	require.Zero(t, allocs, "NewID and AppendText36 must not allocate")
}

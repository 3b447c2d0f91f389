package events_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// The W3C Trace Context specification's own examples.
const (
	specTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	specSpanID  = "00f067aa0ba902b7"
	specHeader  = "00-" + specTraceID + "-" + specSpanID + "-01"
)

func mustTraceParent(traceID, spanID string, flags byte) events.TraceParent {
	var t events.TraceParent
	if _, err := hex.Decode(t.TraceID[:], []byte(traceID)); err != nil {
		panic(err)
	}
	if _, err := hex.Decode(t.SpanID[:], []byte(spanID)); err != nil {
		panic(err)
	}
	t.Flags = flags
	return t
}

func TestParseTraceParent(t *testing.T) {
	t.Parallel()
	spec := mustTraceParent(specTraceID, specSpanID, 1)
	future := "-" + specTraceID + "-" + specSpanID + "-09"
	tests := []struct {
		name    string
		in      string
		want    events.TraceParent
		wantErr string // substring; empty: valid
		// roundTrip is whether String gives the input back: only version 00
		// with its flags kept whole does.
		roundTrip bool
	}{
		{name: "spec example, sampled", in: specHeader, want: spec, roundTrip: true},
		{name: "spec example, not sampled", in: "00-" + specTraceID + "-" + specSpanID + "-00", want: mustTraceParent(specTraceID, specSpanID, 0), roundTrip: true},
		{name: "spec example 2", in: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			want: mustTraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1), roundTrip: true},
		{name: "version 00 keeps unknown flags", in: "00-" + specTraceID + "-" + specSpanID + "-ff", want: mustTraceParent(specTraceID, specSpanID, 0xff), roundTrip: true},
		{name: "version 00 keeps the random flag", in: "00-" + specTraceID + "-" + specSpanID + "-02", want: mustTraceParent(specTraceID, specSpanID, 2), roundTrip: true},
		{name: "all-ones ids", in: "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
			want: mustTraceParent(strings.Repeat("f", 32), strings.Repeat("f", 16), 1), roundTrip: true},
		{name: "trace id with one non-zero byte", in: "00-00000000000000000000000000000001-0000000000000001-00",
			want: mustTraceParent("00000000000000000000000000000001", "0000000000000001", 0), roundTrip: true},

		{name: "higher version with more fields", in: "cc" + future + "-what-the-future-will-be-like", want: spec},
		{name: "higher version, exact length", in: "cc" + future, want: spec},
		{name: "higher version keeps only the sampled flag", in: "01-" + specTraceID + "-" + specSpanID + "-02", want: mustTraceParent(specTraceID, specSpanID, 0)},
		{name: "version fe", in: "fe" + future + "-", want: spec},
		{name: "higher version, dot after the flags", in: "cc" + future + ".what-the-future-will-be-like", wantErr: "version cc: want a dash after the flags"},
		{name: "higher version too short", in: "cc" + future[:len(future)-1], wantErr: "54 characters, want 55"},

		{name: "empty", in: "", wantErr: "empty"},
		{name: "short", in: "00-" + specTraceID, wantErr: "35 characters, want 55"},
		{name: "version 00 with more fields", in: specHeader + "-what-the-future-will-be-like", wantErr: "version 00 has 84 characters, want 55"},
		{name: "version 00 with a trailing dash", in: specHeader + "-", wantErr: "version 00 has 56 characters"},
		{name: "version ff", in: "ff" + future, wantErr: "version ff is invalid"},
		{name: "upper-case version", in: "0A" + future, wantErr: "version: want 2 lower-case hex digits"},
		{name: "non-hex version", in: "0g" + future, wantErr: "version: want 2 lower-case hex digits"},
		{name: "one-digit version", in: "0-" + specTraceID + "-" + specSpanID + "-01x", wantErr: "version: want 2 lower-case hex digits"},
		{name: "upper-case trace id", in: "00-" + strings.ToUpper(specTraceID) + "-" + specSpanID + "-01", wantErr: "trace id: want 32 lower-case hex digits"},
		{name: "upper-case everything", in: strings.ToUpper(specHeader), wantErr: "trace id: want 32 lower-case hex digits"},
		{name: "upper-case span id", in: "00-" + specTraceID + "-" + strings.ToUpper(specSpanID) + "-01", wantErr: "span id: want 16 lower-case hex digits"},
		{name: "upper-case flags", in: "00-" + specTraceID + "-" + specSpanID + "-0A", wantErr: "flags: want 2 lower-case hex digits"},
		{name: "non-hex trace id", in: "00-" + specTraceID[:31] + "g-" + specSpanID + "-01", wantErr: "trace id"},
		{name: "non-hex span id", in: "00-" + specTraceID + "-" + specSpanID[:15] + "z-01", wantErr: "span id"},
		{name: "non-hex flags", in: "00-" + specTraceID + "-" + specSpanID + "-0x", wantErr: "flags"},
		{name: "zero trace id", in: "00-00000000000000000000000000000000-" + specSpanID + "-01", wantErr: "trace id: all zeros"},
		{name: "zero span id", in: "00-" + specTraceID + "-0000000000000000-01", wantErr: "span id: all zeros"},
		{name: "underscores", in: "00_" + specTraceID + "_" + specSpanID + "_01", wantErr: "want dashes"},
		{name: "trace id one digit short", in: "00-" + specTraceID[:31] + "-" + specSpanID + "-01a", wantErr: "want dashes"},
		{name: "leading space", in: " " + specHeader[:54], wantErr: "version"},
		{name: "trailing space", in: specHeader + " ", wantErr: "version 00 has 56 characters"},
		{name: "signed hex", in: "00-+bf92f3577b34da6a3ce929d0e0e4736-" + specSpanID + "-01", wantErr: "trace id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.ParseTraceParent(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, events.ErrInvalidTraceParent)
				require.ErrorContains(t, err, tt.wantErr)
				require.Zero(t, got, "a failed parse returns the zero TraceParent")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, got.IsValid())
			if tt.roundTrip {
				require.Equal(t, tt.in, got.String())
			}
			again, err := events.ParseTraceParent(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestTraceParentMethods(t *testing.T) {
	t.Parallel()
	valid := mustTraceParent(specTraceID, specSpanID, 1)
	tests := []struct {
		name        string
		in          events.TraceParent
		wantValid   bool
		wantSampled bool
		wantString  string
	}{
		{name: "zero", in: events.TraceParent{}, wantString: "00-00000000000000000000000000000000-0000000000000000-00"},
		{name: "sampled", in: valid, wantValid: true, wantSampled: true, wantString: specHeader},
		{name: "not sampled", in: events.TraceParent{TraceID: valid.TraceID, SpanID: valid.SpanID, Flags: 0x02}, wantValid: true,
			wantString: "00-" + specTraceID + "-" + specSpanID + "-02"},
		{name: "sampled among other flags", in: events.TraceParent{TraceID: valid.TraceID, SpanID: valid.SpanID, Flags: 0x81}, wantValid: true, wantSampled: true,
			wantString: "00-" + specTraceID + "-" + specSpanID + "-81"},
		{name: "zero trace id", in: events.TraceParent{SpanID: valid.SpanID, Flags: 1}, wantSampled: true,
			wantString: "00-00000000000000000000000000000000-" + specSpanID + "-01"},
		{name: "zero span id", in: events.TraceParent{TraceID: valid.TraceID}, wantString: "00-" + specTraceID + "-0000000000000000-00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantValid, tt.in.IsValid())
			require.Equal(t, tt.wantSampled, tt.in.Sampled())
			require.Equal(t, tt.wantString, tt.in.String())
			_, err := events.ParseTraceParent(tt.in.String())
			require.Equal(t, tt.wantValid, err == nil, "String of an invalid TraceParent does not parse: %v", err)
		})
	}
}

func TestTraceParentStringAllocs(t *testing.T) {
	tp := mustTraceParent(specTraceID, specSpanID, 1)
	require.InDelta(t, 1, testing.AllocsPerRun(100, func() { _ = tp.String() }), 0, "String allocates only its result")
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = events.ParseTraceParent(specHeader) }), "a valid parse does not allocate")
}

// FuzzParseTraceParent: parsing never panics, fails only with
// ErrInvalidTraceParent and the zero value, and whatever parses is valid and
// survives String and a second parse. Any 25 bytes made into a TraceParent
// survive the same round trip when valid.
func FuzzParseTraceParent(f *testing.F) {
	f.Add(specHeader)
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
	f.Add("cc-" + specTraceID + "-" + specSpanID + "-09-what-the-future-will-be-like")
	f.Add("ff-" + specTraceID + "-" + specSpanID + "-01")
	f.Add("00-00000000000000000000000000000000-" + specSpanID + "-01")
	f.Add(strings.ToUpper(specHeader))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := events.ParseTraceParent(s)
		if err != nil {
			require.ErrorIs(t, err, events.ErrInvalidTraceParent)
			require.Zero(t, got)
		} else {
			require.True(t, got.IsValid())
			again, err := events.ParseTraceParent(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again)
			if strings.HasPrefix(s, "00") {
				require.Equal(t, s, got.String(), "version 00 round-trips byte for byte")
			}
		}

		if len(s) < 25 {
			return
		}
		var tp events.TraceParent
		copy(tp.TraceID[:], s)
		copy(tp.SpanID[:], s[16:])
		tp.Flags = s[24]
		back, err := events.ParseTraceParent(tp.String())
		if !tp.IsValid() {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, tp, back)
	})
}

func ExampleParseTraceParent() {
	tp, err := events.ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("trace %x span %x sampled %v\n", tp.TraceID, tp.SpanID, tp.Sampled())
	fmt.Println(tp)

	// The event carries it to the router, which ties its spans to it.
	e := events.New(events.TaskCompleted, events.NewID())
	e.Parent = tp
	fmt.Println(e.Parent.IsValid())

	_, err = events.ParseTraceParent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01")
	fmt.Println(err)
	// Output:
	// trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 sampled true
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// true
	// invalid traceparent: trace id: want 32 lower-case hex digits
}

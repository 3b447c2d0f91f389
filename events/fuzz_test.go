package events_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// FuzzDecodeEvent feeds arbitrary bytes to both decoders. Neither may panic;
// whatever DecodeBatch accepts (wire versions 1 and 2; a decoded parent is
// always valid) must survive re-encoding unchanged, and
// whatever UnmarshalJSON accepts (and MarshalJSON can write) must survive the
// JSON round trip. Crashers are kept in testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	var all []events.Event
	for _, c := range append(codecCases(), parentCases()...) {
		if c.name == "long string" || c.name == "many attrs" {
			continue // keep seeds small so the fuzzer mutates what matters
		}
		all = append(all, c.event)
		f.Add(events.EncodeBatch([]events.Event{c.event}))
		if !c.jsonErr {
			b, err := json.Marshal(c.event)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add(events.EncodeBatch(all))
	f.Add(events.EncodeBatch(goldenBatch()))
	var bb events.BatchBuilder
	for _, e := range goldenBatch() {
		bb.Add(&e)
	}
	f.Add(bb.Take())
	f.Add(events.EncodeBatch(nil))
	f.Add([]byte{})
	f.Add([]byte("SX\x01"))
	f.Add([]byte("SX\x02"))
	v1, err := os.ReadFile(filepath.Join("testdata", "batch_v1.golden"))
	require.NoError(f, err)
	f.Add(v1)
	f.Add([]byte(`{"name":"x","correlation_id":"0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`))
	f.Add([]byte(`{"name":"x","correlation_id":"0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee","traceparent":"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x"}`))
	f.Add([]byte(`{"name":"x","correlation_id":"0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee","attrs":{"a":1,"b":1.5,"c":"s","d":true}}`))
	f.Add([]byte(`{"name":"x","correlation_id":"0190b6a12c3c7aaabbbbccccddddeeee","time":"2024-07-15T09:30:45+05:30","schema_version":7}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		dst := []events.Event{{Name: "sentinel"}}
		got, err := events.DecodeBatch(data, dst)
		if err != nil {
			require.ErrorIs(t, err, events.ErrDecode)
			require.Len(t, got, 1, "dst comes back unchanged in length")
		} else {
			got = got[1:]
			for i := range got {
				require.True(t, got[i].Parent == (events.TraceParent{}) || got[i].Parent.IsValid(), "event %d: a decoded parent is none or valid", i)
			}
			again, err := events.DecodeBatch(events.EncodeBatch(got), nil)
			require.NoError(t, err)
			requireSameEvents(t, got, again)

			var bb events.BatchBuilder
			for i := range got {
				bb.Add(&got[i])
			}
			if len(got) > 0 {
				fromBuilder, err := events.DecodeBatch(bb.Take(), nil)
				require.NoError(t, err)
				requireSameEvents(t, got, fromBuilder)
			}
		}

		var e events.Event
		if err := e.UnmarshalJSON(data); err != nil {
			return
		}
		require.NotEmpty(t, e.Name)
		require.False(t, e.CorrelationID.IsZero())
		require.NotZero(t, e.SchemaVersion)
		require.True(t, e.Parent == (events.TraceParent{}) || e.Parent.IsValid(), "a decoded parent is none or valid")
		b, err := json.Marshal(e)
		if err != nil {
			return // e.g. a time whose year JSON cannot write
		}
		var back events.Event
		require.NoError(t, back.UnmarshalJSON(b), "%s", b)
		requireSameEvents(t, []events.Event{e}, []events.Event{back}, "%s", b)
	})
}

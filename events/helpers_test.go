package events_test

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Fixed identities and times, so that encodings are reproducible.
var (
	id1   = mustParseID("0190b6a1-2c3d-7e4f-8a5b-6c7d8e9fa0b1")
	id2   = mustParseID("0190b6a1-2c3e-7123-9456-789abcdef012")
	corr1 = mustParseID("0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee")
	t1    = time.Date(2024, 7, 15, 9, 30, 45, 123456789, time.UTC)
)

func mustParseID(s string) events.ID {
	id, err := events.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// codecCase is one event that must survive both the binary and the JSON round
// trip. jsonErr marks events that JSON cannot carry (NaN and infinities).
type codecCase struct {
	name    string
	event   events.Event
	jsonErr bool
}

func ev(name string, attrs ...events.Attr) events.Event {
	return events.Event{Name: name, ID: id1, Time: t1, CorrelationID: corr1, SchemaVersion: 1, Attrs: attrs}
}

func codecCases() []codecCase {
	manyAttrs := make([]events.Attr, 200)
	for i := range manyAttrs {
		manyAttrs[i] = events.Int("k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strconv.Itoa(i), int64(i))
	}
	withTime := func(e events.Event, t time.Time) events.Event { e.Time = t; return e }
	withVersion := func(e events.Event, v uint16) events.Event { e.SchemaVersion = v; return e }
	withIDs := func(e events.Event, id, corr events.ID) events.Event { e.ID, e.CorrelationID = id, corr; return e }
	return []codecCase{
		{name: "all kinds", event: ev(events.StepCompleted,
			events.String("task_uuid", "0190b6a1-0000-7000-8000-000000000001"),
			events.String("namespace", "rust_e2e_linear"),
			events.Int("attempt", 3),
			events.Float("duration_ms", 12.75),
			events.Bool("retryable", true),
			events.Bool("cached", false),
		)},
		{name: "no attrs", event: ev(events.TaskCompleted)},
		{name: "empty attrs slice", event: ev(events.TaskCompleted, []events.Attr{}...)},
		{name: "empty key and value", event: ev("x", events.String("", ""))},
		{name: "unicode", event: ev("tâche.démarrée.🚀",
			events.String("ключ", "日本語 ✓ tab\t nl\n quote\" backslash\\ nul\x00"),
			events.String("emoji🙂", "🙂🙃"),
		)},
		{name: "negative and extreme ints", event: ev("ints",
			events.Int("min", math.MinInt64),
			events.Int("max", math.MaxInt64),
			events.Int("minus_one", -1),
			events.Int("zero", 0),
			events.Int("varint_edge", -64),
		)},
		{name: "special floats JSON can carry", event: ev("floats",
			events.Float("integral", 3),
			events.Float("negative_zero", math.Copysign(0, -1)),
			events.Float("tiny", math.SmallestNonzeroFloat64),
			events.Float("huge", math.MaxFloat64),
			events.Float("big_integral", 1e21),
			events.Float("third", 1.0/3),
		)},
		{name: "NaN", event: ev("floats", events.Float("nan", math.NaN())), jsonErr: true},
		{name: "NaN with payload", event: ev("floats", events.Float("nan", math.Float64frombits(0x7ff8000000000abc))), jsonErr: true},
		{name: "positive infinity", event: ev("floats", events.Float("inf", math.Inf(1))), jsonErr: true},
		{name: "negative infinity", event: ev("floats", events.Float("inf", math.Inf(-1))), jsonErr: true},
		{name: "zero time", event: withTime(ev(events.TaskCompleted, events.Int("step_count", 1)), time.Time{})},
		{name: "unix epoch", event: withTime(ev("epoch"), time.Unix(0, 0))},
		{name: "before epoch", event: withTime(ev("old"), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC))},
		{name: "time in another zone", event: withTime(ev("zoned"), time.Date(2024, 2, 29, 23, 59, 59, 1, time.FixedZone("X", -(9*3600+30*60))))},
		{name: "time with monotonic reading", event: withTime(ev("mono"), time.Now())},
		{name: "max schema version", event: withVersion(ev("v"), math.MaxUint16)},
		{name: "zero event id", event: withIDs(ev("ids"), events.ID{}, corr1)},
		{name: "all-ones ids", event: withIDs(ev("ids"), events.ID{0: 0xff, 1: 0xff, 15: 0xff}, events.ID{0: 0xff, 8: 0xff, 15: 0xff})},
		{name: "long string", event: ev("long", events.String("blob", strings.Repeat("0123456789abcdef", 8192)))},
		{name: "many attrs", event: ev("many", manyAttrs...)},
		{name: "duplicate keys kept in order", event: ev("dup", events.Int("a", 1), events.Int("a", 2))},
	}
}

// normalize makes events that mean the same thing compare equal with
// require.Equal: the instant in UTC without a monotonic reading, and nil for
// no attributes. Values compare by their bits, so NaN equals itself.
func normalize(evs ...events.Event) []events.Event {
	out := make([]events.Event, len(evs))
	for i, e := range evs {
		e.Time = e.Time.Round(0).UTC()
		if len(e.Attrs) == 0 {
			e.Attrs = nil
		}
		out[i] = e
	}
	return out
}

// requireSameEvents compares event by event and field by field, so that a
// failure names the event and field instead of dumping whole batches.
func requireSameEvents(t testing.TB, want, got []events.Event, msgAndArgs ...any) {
	t.Helper()
	where := ""
	if len(msgAndArgs) > 0 {
		if f, ok := msgAndArgs[0].(string); ok {
			where = fmt.Sprintf(f, msgAndArgs[1:]...) + ": "
		}
	}
	require.Len(t, got, len(want), "%sevent count", where)
	w, g := normalize(want...), normalize(got...)
	for i := range w {
		require.Equal(t, w[i].Name, g[i].Name, "%sevent %d name", where, i)
		require.Equal(t, w[i].ID, g[i].ID, "%sevent %d id", where, i)
		require.Equal(t, w[i].Time, g[i].Time, "%sevent %d time", where, i)
		require.Equal(t, w[i].CorrelationID, g[i].CorrelationID, "%sevent %d correlation id", where, i)
		require.Equal(t, w[i].SchemaVersion, g[i].SchemaVersion, "%sevent %d schema version", where, i)
		require.Len(t, g[i].Attrs, len(w[i].Attrs), "%sevent %d attribute count", where, i)
		for j := range w[i].Attrs {
			require.Equal(t, w[i].Attrs[j], g[i].Attrs[j], "%sevent %d attribute %d", where, i, j)
		}
		require.Equal(t, w[i], g[i], "%sevent %d", where, i) // anything the fields above missed
	}
}

// jsonCanCarry reports whether c's event survives the JSON round trip: JSON
// has no NaN or infinities, rejects duplicate attribute keys, requires a
// correlation id and fills in a zero schema version.
func jsonCanCarry(c codecCase) bool {
	if c.jsonErr {
		return false
	}
	seen := map[string]bool{}
	for _, a := range c.event.Attrs {
		if seen[a.Key] {
			return false
		}
		seen[a.Key] = true
	}
	return !c.event.CorrelationID.IsZero() && c.event.Name != "" && c.event.SchemaVersion != 0
}

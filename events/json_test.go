package events_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range append(codecCases(), parentCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.event)
			if tt.jsonErr {
				// JSON has no NaN or infinities: the event cannot be written.
				require.ErrorContains(t, err, "unsupported value")
				require.ErrorContains(t, err, "event "+tt.event.Name)
				return
			}
			require.NoError(t, err)
			var got events.Event
			err = json.Unmarshal(b, &got)
			if !jsonCanCarry(tt) {
				require.Error(t, err, "%s", b)
				return
			}
			require.NoError(t, err, "%s", b)
			requireSameEvents(t, []events.Event{tt.event}, []events.Event{got}, "%s", b)

			// Through the methods directly, and by pointer.
			b2, err := tt.event.MarshalJSON()
			require.NoError(t, err)
			require.JSONEq(t, string(b), string(b2))
			b3, err := json.Marshal(&tt.event)
			require.NoError(t, err)
			require.Equal(t, b, b3)
			var direct events.Event
			require.NoError(t, direct.UnmarshalJSON(b))
			requireSameEvents(t, []events.Event{got}, []events.Event{direct})
		})
	}
}

func TestJSONDuplicateKeysDoNotRoundTrip(t *testing.T) {
	t.Parallel()
	e := ev("dup", events.Int("a", 1), events.Int("a", 2))
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var got events.Event
	require.ErrorContains(t, json.Unmarshal(b, &got), "event dup: attrs: a: duplicate key")
}

func TestMarshalJSONShape(t *testing.T) {
	t.Parallel()
	e := ev(events.StepCompleted,
		events.String("namespace", "ns"),
		events.Int("attempt", 3),
		events.Float("duration_ms", 12),
		events.Float("ratio", 0.25),
		events.Bool("ok", true),
		events.String("html", "<&>"),
	)
	b, err := json.Marshal(e)
	require.NoError(t, err)
	want := `{"name":"step.completed","id":"` + id1.String() + `","time":"2024-07-15T09:30:45.123456789Z",` +
		`"correlation_id":"` + corr1.String() + `","schema_version":1,` +
		`"attrs":{"namespace":"ns","attempt":3,"duration_ms":12.0,"ratio":0.25,"ok":true,"html":"\u003c\u0026\u003e"}}`
	require.Equal(t, want, string(b), "attribute order is kept and an integral float keeps its point")

	empty, err := json.Marshal(ev("none"))
	require.NoError(t, err)
	require.Contains(t, string(empty), `"attrs":{}`)

	_, err = json.Marshal(ev("bad", events.Attr{Key: "zero"}))
	require.ErrorContains(t, err, `event bad: attribute "zero" has no value`)

	// A parent comes last, in the W3C header form; an invalid one is none.
	withTP, err := json.Marshal(withParent(ev("p", events.Int("n", 1)), parent1))
	require.NoError(t, err)
	require.Equal(t, `{"name":"p","id":"`+id1.String()+`","time":"2024-07-15T09:30:45.123456789Z",`+
		`"correlation_id":"`+corr1.String()+`","schema_version":1,"attrs":{"n":1},`+
		`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, string(withTP))
	for _, p := range []events.TraceParent{{}, {TraceID: parent1.TraceID}, {SpanID: parent1.SpanID, Flags: 1}} {
		b, err := json.Marshal(withParent(ev("p"), p))
		require.NoError(t, err)
		require.NotContains(t, string(b), "traceparent", "%+v", p)
	}
}

func TestUnmarshalJSONTraceParent(t *testing.T) {
	t.Parallel()
	c := corr1.String()
	with := func(tp string) string { return `{"name":"x","correlation_id":"` + c + `","traceparent":` + tp + `}` }
	tests := []struct {
		name    string
		in      string
		want    events.TraceParent
		wantMsg string
	}{
		{name: "absent", in: `{"name":"x","correlation_id":"` + c + `"}`},
		{name: "null", in: with(`null`)},
		{name: "sampled", in: with(`"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`), want: parent1},
		{name: "before the other keys", in: `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","name":"x","correlation_id":"` + c + `"}`, want: parent1},
		{name: "higher version", in: with(`"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"`), want: parent1},
		{name: "empty", in: with(`""`), wantMsg: "event x: traceparent: invalid traceparent: empty"},
		{name: "upper case", in: with(`"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"`), wantMsg: "event x: traceparent: invalid traceparent: trace id"},
		{name: "zero span id", in: with(`"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"`), wantMsg: "event x: traceparent: invalid traceparent: span id: all zeros"},
		{name: "version ff", in: with(`"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`), wantMsg: "event x: traceparent: invalid traceparent: version ff"},
		{name: "a number", in: with(`1`), wantMsg: "event: json: cannot unmarshal number into Go struct field"},
		{name: "an object", in: with(`{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`), wantMsg: "traceparent"},
		{name: "misspelled key", in: `{"name":"x","correlation_id":"` + c + `","trace_parent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, wantMsg: `unknown field "trace_parent"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e events.Event
			err := e.UnmarshalJSON([]byte(tt.in))
			if tt.wantMsg != "" {
				require.ErrorContains(t, err, tt.wantMsg)
				if strings.Contains(tt.wantMsg, "invalid traceparent") {
					require.ErrorIs(t, err, events.ErrInvalidTraceParent)
				}
				require.Zero(t, e, "a failed UnmarshalJSON leaves the event alone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, e.Parent)
		})
	}
}

func TestUnmarshalJSONLiteralKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		literal string
		want    events.Value
	}{
		{name: "integer", literal: `1`, want: events.IntValue(1)},
		{name: "negative integer", literal: `-17`, want: events.IntValue(-17)},
		{name: "zero", literal: `0`, want: events.IntValue(0)},
		{name: "negative zero integer", literal: `-0`, want: events.IntValue(0)},
		{name: "max int64", literal: `9223372036854775807`, want: events.IntValue(math.MaxInt64)},
		{name: "min int64", literal: `-9223372036854775808`, want: events.IntValue(math.MinInt64)},
		{name: "integral float", literal: `1.0`, want: events.FloatValue(1)},
		{name: "fraction", literal: `1.5`, want: events.FloatValue(1.5)},
		{name: "exponent", literal: `1e3`, want: events.FloatValue(1000)},
		{name: "upper-case exponent", literal: `1E3`, want: events.FloatValue(1000)},
		{name: "negative exponent", literal: `5e-1`, want: events.FloatValue(0.5)},
		{name: "signed exponent", literal: `-2.5e+2`, want: events.FloatValue(-250)},
		{name: "negative zero float", literal: `-0.0`, want: events.FloatValue(math.Copysign(0, -1))},
		{name: "numeric string stays a string", literal: `"1"`, want: events.StringValue("1")},
		{name: "escaped string", literal: `"a\"b\u00e9"`, want: events.StringValue(`a"bé`)},
		{name: "true", literal: `true`, want: events.BoolValue(true)},
		{name: "false", literal: `false`, want: events.BoolValue(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e events.Event
			in := `{"name":"x","correlation_id":"` + corr1.String() + `","attrs":{"v":` + tt.literal + `}}`
			require.NoError(t, json.Unmarshal([]byte(in), &e))
			require.Equal(t, []events.Attr{{Key: "v", Value: tt.want}}, e.Attrs)
		})
	}
}

func TestUnmarshalJSONDefaults(t *testing.T) {
	t.Parallel()
	c := corr1.String()
	tests := []struct {
		name        string
		in          string
		wantID      events.ID // zero: a fresh UUIDv7 for the event's time
		wantTime    time.Time // zero: the current time
		wantVersion uint16
		wantAttrs   []events.Attr
	}{
		{name: "everything defaulted", in: `{"name":"task.completed","correlation_id":"` + c + `"}`, wantVersion: 1},
		{name: "explicit zero schema version", in: `{"name":"x","correlation_id":"` + c + `","schema_version":0}`, wantVersion: 1},
		{name: "null attrs", in: `{"name":"x","correlation_id":"` + c + `","attrs":null}`, wantVersion: 1},
		{name: "empty attrs", in: `{"name":"x","correlation_id":"` + c + `","attrs":{}}`, wantVersion: 1},
		{name: "id given, time filled", in: `{"name":"x","id":"` + id1.String() + `","correlation_id":"` + c + `"}`, wantID: id1, wantVersion: 1},
		{name: "time given, id from it", in: `{"name":"x","time":"2024-07-15T09:30:45.123456789Z","correlation_id":"` + c + `"}`, wantTime: t1, wantVersion: 1},
		{name: "compact ids accepted", in: `{"name":"x","id":"` + compact(id1) + `","correlation_id":"` + compact(corr1) + `","schema_version":3}`, wantID: id1, wantVersion: 3},
		{name: "fields in any order", in: `{"attrs":{"b":true},"schema_version":2,"correlation_id":"` + c + `","name":"x"}`, wantVersion: 2,
			wantAttrs: []events.Attr{events.Bool("b", true)}},
		{name: "whitespace", in: "\n {\t\"name\" : \"x\" ,\r\n \"correlation_id\":\"" + c + "\", \"attrs\" : { \"i\" : 1 } } \n", wantVersion: 1,
			wantAttrs: []events.Attr{events.Int("i", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now()
			var e events.Event
			require.NoError(t, json.Unmarshal([]byte(tt.in), &e))
			after := time.Now()
			require.Equal(t, corr1, e.CorrelationID)
			require.Equal(t, tt.wantVersion, e.SchemaVersion)
			require.Equal(t, tt.wantAttrs, e.Attrs)
			if tt.wantTime.IsZero() {
				require.False(t, e.Time.Before(before) || e.Time.After(after), "time %v not in [%v, %v]", e.Time, before, after)
			} else {
				require.True(t, tt.wantTime.Equal(e.Time), "time %v, want %v", e.Time, tt.wantTime)
			}
			if tt.wantID.IsZero() {
				requireV7(t, e.ID)
				require.Equal(t, e.Time.UnixMilli(), e.ID.Time().UnixMilli(), "a filled-in id carries the event time")
			} else {
				require.Equal(t, tt.wantID, e.ID)
			}
		})
	}
}

func compact(id events.ID) string {
	b, _ := id.MarshalText()
	out := make([]byte, 0, 32)
	for _, c := range b {
		if c != '-' {
			out = append(out, c)
		}
	}
	return string(out)
}

func TestUnmarshalJSONErrors(t *testing.T) {
	t.Parallel()
	c := corr1.String()
	withAttrs := func(attrs string) string {
		return `{"name":"x","correlation_id":"` + c + `","attrs":` + attrs + `}`
	}
	tests := []struct {
		name    string
		in      string
		wantIs  error
		wantMsg string
	}{
		{name: "missing name", in: `{"correlation_id":"` + c + `"}`, wantMsg: "event: name: required"},
		{name: "empty name", in: `{"name":"","correlation_id":"` + c + `"}`, wantMsg: "event: name: required"},
		{name: "missing correlation_id", in: `{"name":"x"}`, wantMsg: "event x: correlation_id: required"},
		{name: "nil correlation_id", in: `{"name":"x","correlation_id":"00000000-0000-0000-0000-000000000000"}`, wantMsg: "event x: correlation_id: required"},
		{name: "bad correlation_id", in: `{"name":"x","correlation_id":"nope"}`, wantIs: events.ErrInvalidID, wantMsg: "event: "},
		{name: "bad id", in: `{"name":"x","id":"0190b6a1","correlation_id":"` + c + `"}`, wantIs: events.ErrInvalidID},
		{name: "id not a string", in: `{"name":"x","id":7,"correlation_id":"` + c + `"}`, wantMsg: "event: "},
		{name: "bad time", in: `{"name":"x","time":"yesterday","correlation_id":"` + c + `"}`, wantMsg: "event: "},
		{name: "name not a string", in: `{"name":1,"correlation_id":"` + c + `"}`, wantMsg: "event: "},
		{name: "negative schema version", in: `{"name":"x","correlation_id":"` + c + `","schema_version":-1}`, wantMsg: "schema_version"},
		{name: "schema version over uint16", in: `{"name":"x","correlation_id":"` + c + `","schema_version":65536}`, wantMsg: "schema_version"},
		{name: "unknown top-level key", in: `{"name":"x","correlation_id":"` + c + `","extra":1}`, wantMsg: `unknown field "extra"`},
		{name: "misspelled key", in: `{"name":"x","correlationid":"` + c + `"}`, wantMsg: `unknown field "correlationid"`},
		{name: "nested object attr", in: withAttrs(`{"o":{"a":1}}`), wantMsg: "event x: attrs: o: must be a string, number or boolean"},
		{name: "array attr", in: withAttrs(`{"a":[1,2]}`), wantMsg: "event x: attrs: a: must be a string, number or boolean"},
		{name: "null attr", in: withAttrs(`{"n":null}`), wantMsg: "event x: attrs: n: must be a string, number or boolean"},
		{name: "duplicate attr key", in: withAttrs(`{"a":1,"b":2,"a":"3"}`), wantMsg: "event x: attrs: a: duplicate key"},
		{name: "attrs an array", in: withAttrs(`[{"a":1}]`), wantMsg: "event x: attrs: must be an object"},
		{name: "attrs a string", in: withAttrs(`"a=1"`), wantMsg: "event x: attrs: must be an object"},
		{name: "attrs a number", in: withAttrs(`1`), wantMsg: "event x: attrs: must be an object"},
		{name: "integer too large", in: withAttrs(`{"big":9223372036854775808}`), wantMsg: "event x: attrs: big:"},
		{name: "integer too small", in: withAttrs(`{"small":-9223372036854775809}`), wantMsg: "event x: attrs: small:"},
		{name: "float out of range", in: withAttrs(`{"f":1e400}`), wantMsg: "event x: attrs: f:"},
		{name: "not JSON", in: `name=x`, wantMsg: "event: "},
		{name: "truncated", in: `{"name":"x","correlation_id":"` + c, wantMsg: "event: "},
		{name: "array", in: `[]`, wantMsg: "event: "},
		{name: "null", in: `null`, wantMsg: "event: name: required"},
		{name: "empty", in: ``, wantMsg: "event: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orig := ev("unchanged", events.Int("n", 1))
			e := orig
			err := e.UnmarshalJSON([]byte(tt.in))
			require.Error(t, err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			require.ErrorContains(t, err, tt.wantMsg)
			requireSameEvents(t, []events.Event{orig}, []events.Event{e}, "a failed UnmarshalJSON leaves the event alone")

			// Through encoding/json, where the input is valid JSON.
			if json.Valid([]byte(tt.in)) {
				require.Error(t, json.Unmarshal([]byte(tt.in), &e))
			}
		})
	}
}

func TestJSONSlice(t *testing.T) {
	t.Parallel()
	in := []events.Event{
		ev(events.StepEnqueued, events.String("namespace", "a")),
		ev(events.StepClaimed, events.Float("duration_ms", 0.5), events.Bool("b", false)),
		withParent(ev(events.StepCompleted), parent2),
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var got []events.Event
	require.NoError(t, json.Unmarshal(b, &got))
	requireSameEvents(t, in, got)
}

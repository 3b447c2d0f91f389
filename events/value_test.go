package events_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func TestKindString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind events.Kind
		want string
	}{
		{name: "string", kind: events.KindString, want: "string"},
		{name: "int", kind: events.KindInt, want: "int"},
		{name: "float", kind: events.KindFloat, want: "float"},
		{name: "bool", kind: events.KindBool, want: "bool"},
		{name: "zero", kind: 0, want: "invalid"},
		{name: "out of range", kind: 99, want: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.kind.String())
		})
	}
}

func TestValueAccessors(t *testing.T) {
	t.Parallel()
	negZero := math.Copysign(0, -1)
	tests := []struct {
		name      string
		v         events.Value
		wantKind  events.Kind
		wantStr   string
		wantInt   int64
		wantFloat float64 // compared by bits
		wantBool  bool
		wantText  string
	}{
		{name: "string", v: events.StringValue("hello"), wantKind: events.KindString, wantStr: "hello", wantText: "hello"},
		{name: "empty string", v: events.StringValue(""), wantKind: events.KindString, wantText: ""},
		{name: "numeric string", v: events.StringValue("42"), wantKind: events.KindString, wantStr: "42", wantInt: 42, wantFloat: 42, wantText: "42"},
		{name: "float string", v: events.StringValue("2.5"), wantKind: events.KindString, wantStr: "2.5", wantFloat: 2.5, wantText: "2.5"},
		{name: "bool string", v: events.StringValue("true"), wantKind: events.KindString, wantStr: "true", wantBool: true, wantText: "true"},
		{name: "unicode string", v: events.StringValue("日本語"), wantKind: events.KindString, wantStr: "日本語", wantText: "日本語"},
		{name: "int", v: events.IntValue(42), wantKind: events.KindInt, wantInt: 42, wantFloat: 42, wantBool: true, wantText: "42"},
		{name: "negative int", v: events.IntValue(-7), wantKind: events.KindInt, wantInt: -7, wantFloat: -7, wantBool: true, wantText: "-7"},
		{name: "zero int", v: events.IntValue(0), wantKind: events.KindInt, wantText: "0"},
		{name: "min int", v: events.IntValue(math.MinInt64), wantKind: events.KindInt, wantInt: math.MinInt64, wantFloat: -9.223372036854775808e18, wantBool: true, wantText: "-9223372036854775808"},
		{name: "max int", v: events.IntValue(math.MaxInt64), wantKind: events.KindInt, wantInt: math.MaxInt64, wantFloat: 9.223372036854775807e18, wantBool: true, wantText: "9223372036854775807"},
		{name: "float", v: events.FloatValue(2.5), wantKind: events.KindFloat, wantInt: 2, wantFloat: 2.5, wantBool: true, wantText: "2.5"},
		{name: "negative float truncates toward zero", v: events.FloatValue(-2.9), wantKind: events.KindFloat, wantInt: -2, wantFloat: -2.9, wantBool: true, wantText: "-2.9"},
		{name: "integral float", v: events.FloatValue(3), wantKind: events.KindFloat, wantInt: 3, wantFloat: 3, wantBool: true, wantText: "3"},
		{name: "zero float", v: events.FloatValue(0), wantKind: events.KindFloat, wantText: "0"},
		{name: "negative zero float is zero", v: events.FloatValue(negZero), wantKind: events.KindFloat, wantFloat: negZero, wantBool: false, wantText: "-0"},
		{name: "large float", v: events.FloatValue(1e21), wantKind: events.KindFloat, wantFloat: 1e21, wantBool: true, wantText: "1e+21"},
		{name: "positive infinity", v: events.FloatValue(math.Inf(1)), wantKind: events.KindFloat, wantFloat: math.Inf(1), wantBool: true, wantText: "+Inf"},
		{name: "negative infinity", v: events.FloatValue(math.Inf(-1)), wantKind: events.KindFloat, wantFloat: math.Inf(-1), wantBool: true, wantText: "-Inf"},
		{name: "true", v: events.BoolValue(true), wantKind: events.KindBool, wantInt: 1, wantFloat: 1, wantBool: true, wantText: "true"},
		{name: "false", v: events.BoolValue(false), wantKind: events.KindBool, wantText: "false"},
		{name: "zero value", v: events.Value{}, wantKind: 0, wantText: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantKind, tt.v.Kind())
			require.Equal(t, tt.wantStr, tt.v.Str())
			if math.Abs(tt.v.Float64()) < 1<<63 {
				// float→int64 conversion of out-of-range values is
				// implementation-defined; only in-range values are checked.
				require.Equal(t, tt.wantInt, tt.v.Int64())
			}
			require.Equal(t, math.Float64bits(tt.wantFloat), math.Float64bits(tt.v.Float64()), "Float64 = %v, want %v", tt.v.Float64(), tt.wantFloat)
			require.Equal(t, tt.wantBool, tt.v.Bool())
			require.Equal(t, tt.wantText, tt.v.String())
			require.Equal(t, "pre|"+tt.wantText, string(tt.v.AppendText([]byte("pre|"))))
		})
	}
}

func TestValueNaN(t *testing.T) {
	t.Parallel()
	v := events.FloatValue(math.NaN())
	require.Equal(t, events.KindFloat, v.Kind())
	require.True(t, math.IsNaN(v.Float64()))
	require.Equal(t, "NaN", v.String())
	// A Value keeps the float's bits, so NaN equals itself and keeps its payload.
	payload := math.Float64frombits(0x7ff8000000000abc)
	require.Equal(t, math.Float64bits(payload), math.Float64bits(events.FloatValue(payload).Float64()))
	require.Equal(t, events.FloatValue(payload), events.FloatValue(payload))
}

func TestAttrConstructors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		attr events.Attr
		want events.Attr
	}{
		{name: "String", attr: events.String("k", "v"), want: events.Attr{Key: "k", Value: events.StringValue("v")}},
		{name: "Int", attr: events.Int("k", -3), want: events.Attr{Key: "k", Value: events.IntValue(-3)}},
		{name: "Float", attr: events.Float("k", 0.5), want: events.Attr{Key: "k", Value: events.FloatValue(0.5)}},
		{name: "Bool", attr: events.Bool("k", true), want: events.Attr{Key: "k", Value: events.BoolValue(true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.attr)
		})
	}
}

func appendKeys(vs ...events.Value) []byte {
	var b []byte
	for _, v := range vs {
		b = v.AppendKey(b)
	}
	return b
}

func TestValueAppendKeyUnambiguous(t *testing.T) {
	t.Parallel()
	s, i, f, bl := events.StringValue, events.IntValue, events.FloatValue, events.BoolValue
	tests := []struct {
		name string
		a, b []events.Value
	}{
		{name: "string 1 vs int 1", a: []events.Value{s("1")}, b: []events.Value{i(1)}},
		{name: "int 1 vs float 1", a: []events.Value{i(1)}, b: []events.Value{f(1)}},
		{name: "int 1 vs bool true", a: []events.Value{i(1)}, b: []events.Value{bl(true)}},
		{name: "int 0 vs bool false", a: []events.Value{i(0)}, b: []events.Value{bl(false)}},
		{name: "string true vs bool true", a: []events.Value{s("true")}, b: []events.Value{bl(true)}},
		{name: "ab,c vs a,bc", a: []events.Value{s("ab"), s("c")}, b: []events.Value{s("a"), s("bc")}},
		{name: "empty,x vs x,empty", a: []events.Value{s(""), s("x")}, b: []events.Value{s("x"), s("")}},
		{name: "one empty string vs two", a: []events.Value{s("")}, b: []events.Value{s(""), s("")}},
		{name: "string holding an encoded key", a: []events.Value{s(string(appendKeys(s("a"))))}, b: []events.Value{s("a")}},
		{name: "string vs string followed by int", a: []events.Value{s("a\x02")}, b: []events.Value{s("a"), i(0)}},
		{name: "zero value vs empty string", a: []events.Value{{}}, b: []events.Value{s("")}},
		{name: "int order matters", a: []events.Value{i(1), i(2)}, b: []events.Value{i(2), i(1)}},
		{name: "zero vs negative zero float", a: []events.Value{f(0)}, b: []events.Value{f(math.Copysign(0, -1))}},
		{name: "long strings", a: []events.Value{s(string(make([]byte, 200))), s("")}, b: []events.Value{s(string(make([]byte, 199))), s("\x00")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ka, kb := appendKeys(tt.a...), appendKeys(tt.b...)
			require.NotEqual(t, ka, kb)
			// Deterministic: the same values give the same key.
			require.Equal(t, ka, appendKeys(tt.a...))
		})
	}
	require.Equal(t, appendKeys(f(math.NaN())), appendKeys(f(math.NaN())), "NaN keys are stable")
	require.Equal(t, []byte("x"), events.IntValue(1).AppendKey([]byte("x"))[:1], "AppendKey appends")
}

func TestValueAllocs(t *testing.T) {
	vs := []events.Value{events.StringValue("namespace"), events.IntValue(-5), events.FloatValue(1.5), events.BoolValue(true)}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		buf = buf[:0]
		for _, v := range vs {
			buf = v.AppendKey(buf)
			buf = v.AppendText(buf)
		}
	})
	require.Zero(t, allocs, "AppendKey and AppendText into a large enough buffer must not allocate")
}

package events

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Kind is the type of a Value and of a catalog field.
type Kind uint8

// The kinds a Value can hold.
const (
	KindString Kind = iota + 1
	KindInt
	KindFloat
	KindBool
)

// String returns the kind's name as written in the catalog and docs.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBool:
		return "bool"
	}
	return "invalid"
}

// Value is an attribute value: a string, int64, float64 or bool. The zero
// Value is invalid. Values are small and copied by value; no kind allocates.
type Value struct {
	str  string
	num  uint64
	kind Kind
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{str: s, kind: KindString} }

// IntValue returns an integer Value.
func IntValue(n int64) Value { return Value{num: uint64(n), kind: KindInt} }

// FloatValue returns a floating-point Value.
func FloatValue(f float64) Value { return Value{num: math.Float64bits(f), kind: KindFloat} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Kind returns the kind of v; 0 for the zero Value.
func (v Value) Kind() Kind { return v.kind }

// Str returns the string held by a string Value and "" for other kinds.
func (v Value) Str() string { return v.str }

// Int64 returns v as an int64; a float is truncated, a bool is 0 or 1.
func (v Value) Int64() int64 {
	switch v.kind {
	case KindFloat:
		return int64(math.Float64frombits(v.num))
	case KindString:
		n, _ := strconv.ParseInt(v.str, 10, 64)
		return n
	}
	return int64(v.num)
}

// Float64 returns v as a float64; an int is converted, a bool is 0 or 1.
func (v Value) Float64() float64 {
	switch v.kind {
	case KindFloat:
		return math.Float64frombits(v.num)
	case KindInt:
		return float64(int64(v.num))
	case KindBool:
		return float64(v.num)
	case KindString:
		f, _ := strconv.ParseFloat(v.str, 64)
		return f
	}
	return 0
}

// Bool returns v as a bool: true for a true bool or a non-zero number.
func (v Value) Bool() bool {
	switch v.kind {
	case KindString:
		b, _ := strconv.ParseBool(v.str)
		return b
	case KindFloat:
		return math.Float64frombits(v.num) != 0 // -0 is zero too
	}
	return v.num != 0
}

// String formats v as a label value would show it.
func (v Value) String() string {
	if v.kind == KindString {
		return v.str
	}
	return string(v.AppendText(nil))
}

// AppendText appends v's text form to b; for strings it copies the bytes, so
// callers building lookup keys avoid allocating a string.
func (v Value) AppendText(b []byte) []byte {
	switch v.kind {
	case KindString:
		return append(b, v.str...)
	case KindInt:
		return strconv.AppendInt(b, int64(v.num), 10)
	case KindFloat:
		return strconv.AppendFloat(b, math.Float64frombits(v.num), 'g', -1, 64)
	case KindBool:
		return strconv.AppendBool(b, v.num != 0)
	}
	return b
}

// Attr is one named attribute of an event.
type Attr struct {
	Key   string
	Value Value
}

// String returns a string attribute.
func String(key, value string) Attr { return Attr{Key: key, Value: StringValue(value)} }

// Int returns an integer attribute.
func Int(key string, value int64) Attr { return Attr{Key: key, Value: IntValue(value)} }

// Float returns a floating-point attribute.
func Float(key string, value float64) Attr { return Attr{Key: key, Value: FloatValue(value)} }

// Bool returns a boolean attribute.
func Bool(key string, value bool) Attr { return Attr{Key: key, Value: BoolValue(value)} }

// AppendKey appends an unambiguous binary form of v to b, for building map
// keys from several values without allocating: the kind, then a length-prefixed
// string or the 8 bytes of a number.
func (v Value) AppendKey(b []byte) []byte {
	b = append(b, byte(v.kind))
	if v.kind == KindString {
		b = binary.AppendUvarint(b, uint64(len(v.str)))
		return append(b, v.str...)
	}
	return binary.LittleEndian.AppendUint64(b, v.num)
}

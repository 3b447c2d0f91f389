package sdk

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a plugin's section of Sextant's configuration
// (plugins.instances[i].config), as the JSON object Sextant sends. The
// zero Config is the empty section.
type Config struct {
	raw []byte
}

// NewConfig returns the section held in raw, a JSON object; empty raw is
// the empty section. It is for tests and for hosts other than Sextant:
// plugins get their Config from Configure.
func NewConfig(raw []byte) Config {
	return Config{raw: bytes.Clone(raw)}
}

// JSON returns the section as Sextant sent it; "{}" for an empty one.
func (c Config) JSON() []byte {
	if len(bytes.TrimSpace(c.raw)) == 0 {
		return []byte("{}")
	}
	return bytes.Clone(c.raw)
}

// Decode stores the section in v, a non-nil pointer, strictly: a key that
// matches no field and a value of the wrong type are errors, and Decode
// reports every one of them, as [FieldErrors] whose paths are YAML-style
// ("url", "headers.X-Token", "tags[2]"). Fields the section leaves out
// keep what v held, so set defaults before calling it.
//
// Keys are matched to fields as encoding/json matches them (the json tag,
// else the field's name; an exact match first, then one ignoring case),
// and embedded structs' fields are promoted. On top of encoding/json,
// a time.Duration takes a string such as "5s" or "1m30s", an integer field
// takes an integral number written with a fraction or exponent (3.0, 1e3),
// and a map or slice replaces what v held rather than merging with it.
// A type implementing encoding.TextUnmarshaler takes a string, one
// implementing json.Unmarshaler takes any JSON value, and an interface
// field takes the value as encoding/json would decode it. null leaves a
// field as it is, except that it clears a pointer, map, slice or interface.
//
// A v that is not a non-nil pointer is a programming error, returned as a
// plain error.
func (c Config) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("sdk: Config.Decode needs a non-nil pointer, got %T", v)
	}
	raw := c.JSON()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return FieldErrors{{Message: "not valid JSON: " + err.Error()}}
	}
	if dec.More() {
		return FieldErrors{{Message: "not valid JSON: more than one value"}}
	}
	if _, ok := doc.(map[string]any); !ok {
		return FieldErrors{{Message: "must be a mapping (a JSON object), got " + describe(doc)}}
	}
	d := decoder{}
	d.value("", doc, rv.Elem())
	if len(d.errs) > 0 {
		return d.errs
	}
	return nil
}

// FieldError is one problem with a field of a plugin's section.
type FieldError struct {
	// Path is the field's path inside the section in YAML terms, e.g. "url",
	// "headers.X-Token" or "tags[2]" ([KeyPath] and [IndexPath] build
	// them); empty for the section as a whole.
	Path string
	// Message says what is wrong and, where it helps, what would be right.
	Message string
}

// Error returns "path: message", or the message alone for an empty path.
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// FieldErrors is every problem found in a section. As an error returned by
// Configure it reports each field to the user.
type FieldErrors []FieldError

// Error returns the problems joined by "; ".
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// KeyPath returns the path of key below parent: "headers.X-Token", or
// `headers["a b"]` when key is not made of letters, digits, '_' and '-'.
// An empty parent gives the key alone (quoted the same way).
func KeyPath(parent, key string) string {
	if plainKey(key) {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

// IndexPath returns the path of element i of the list at parent, e.g.
// "tags[2]".
func IndexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decoder walks a decoded JSON document (json.Number for numbers) into a
// reflect.Value, collecting a FieldError for every mismatch.
type decoder struct {
	errs FieldErrors
}

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// value stores doc in v, which is settable.
func (d *decoder) value(path string, doc any, v reflect.Value) {
	if doc == nil {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	// Unmarshalers first, on the pointer as encoding/json looks for them.
	if v.Kind() != reflect.Pointer && v.CanAddr() {
		pv := v.Addr()
		if pv.Type().Implements(jsonUnmarshalerType) {
			d.unmarshalJSON(path, doc, pv.Interface().(json.Unmarshaler))
			return
		}
		if pv.Type().Implements(textUnmarshalerType) {
			s, ok := doc.(string)
			if !ok {
				d.fail(path, "must be a string, got %s", describe(doc))
				return
			}
			if err := pv.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				d.fail(path, "%v", err)
			}
			return
		}
	}
	if v.Type() == durationType {
		d.duration(path, doc, v)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			elem.Elem().Set(v.Elem())
		}
		before := len(d.errs)
		d.value(path, doc, elem.Elem())
		if len(d.errs) == before {
			v.Set(elem)
		}
	case reflect.Interface:
		if v.NumMethod() != 0 {
			d.fail(path, "cannot be decoded into %s", v.Type())
			return
		}
		b, err := json.Marshal(doc)
		if err == nil {
			var x any
			if err = json.Unmarshal(b, &x); err == nil {
				v.Set(reflect.ValueOf(&x).Elem())
				return
			}
		}
		d.fail(path, "%v", err)
	case reflect.Struct:
		d.structValue(path, doc, v)
	case reflect.Map:
		d.mapValue(path, doc, v)
	case reflect.Slice:
		d.sliceValue(path, doc, v)
	case reflect.Array:
		d.arrayValue(path, doc, v)
	case reflect.String:
		s, ok := doc.(string)
		if !ok {
			d.fail(path, "must be a string, got %s", describe(doc))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := doc.(bool)
		if !ok {
			d.fail(path, "must be true or false, got %s", describe(doc))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.intValue(path, doc, v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.uintValue(path, doc, v)
	case reflect.Float32, reflect.Float64:
		n, ok := doc.(json.Number)
		if !ok {
			d.fail(path, "must be a number, got %s", describe(doc))
			return
		}
		f, err := strconv.ParseFloat(string(n), v.Type().Bits())
		if err != nil {
			d.fail(path, "must be a number within the range of %s, got %s", v.Type(), n)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(path, "cannot be decoded into %s", v.Type())
	}
}

func (d *decoder) unmarshalJSON(path string, doc any, u json.Unmarshaler) {
	b, err := json.Marshal(doc)
	if err == nil {
		err = u.UnmarshalJSON(b)
	}
	if err != nil {
		d.fail(path, "%v", err)
	}
}

func (d *decoder) duration(path string, doc any, v reflect.Value) {
	s, ok := doc.(string)
	if !ok {
		d.fail(path, `must be a duration such as "5s" or "1m30s", got %s`, describe(doc))
		return
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		d.fail(path, `must be a duration such as "5s" or "1m30s", got %q`, s)
		return
	}
	v.SetInt(int64(t))
}

// integer returns doc as an integer: a JSON number without a fraction, or
// with a zero one.
func (d *decoder) integer(path string, doc any) (n json.Number, i *big, ok bool) {
	n, ok = doc.(json.Number)
	if !ok {
		d.fail(path, "must be an integer, got %s", describe(doc))
		return n, nil, false
	}
	if x, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return n, &big{neg: x < 0, abs: absInt(x)}, true
	}
	if x, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return n, &big{abs: x}, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		d.fail(path, "must be an integer, got %s", n)
		return n, nil, false
	case err != nil || math.Abs(f) >= 1<<64:
		return n, nil, true // out of every range; the caller says which
	case f != math.Trunc(f):
		d.fail(path, "must be an integer, got %s", n)
		return n, nil, false
	}
	return n, &big{neg: f < 0, abs: uint64(math.Abs(f))}, true
}

// big is an integer in [-2^64+1, 2^64-1].
type big struct {
	neg bool
	abs uint64
}

func absInt(x int64) uint64 {
	if x < 0 {
		return uint64(-(x + 1)) + 1
	}
	return uint64(x)
}

func (d *decoder) intValue(path string, doc any, v reflect.Value) {
	n, b, ok := d.integer(path, doc)
	if !ok {
		return
	}
	bits := v.Type().Bits()
	maxAbs := uint64(1)<<(bits-1) - 1
	if b == nil || (!b.neg && b.abs > maxAbs) || (b.neg && b.abs > maxAbs+1) {
		d.fail(path, "must be between %d and %d, got %s", -int64(maxAbs)-1, int64(maxAbs), n)
		return
	}
	if b.neg {
		v.SetInt(-int64(b.abs-1) - 1)
	} else {
		v.SetInt(int64(b.abs))
	}
}

func (d *decoder) uintValue(path string, doc any, v reflect.Value) {
	n, b, ok := d.integer(path, doc)
	if !ok {
		return
	}
	bits := v.Type().Bits()
	maxAbs := uint64(math.MaxUint64) >> (64 - bits)
	if b == nil || (b.neg && b.abs != 0) || b.abs > maxAbs {
		d.fail(path, "must be between 0 and %d, got %s", maxAbs, n)
		return
	}
	v.SetUint(b.abs)
}

func (d *decoder) mapValue(path string, doc any, v reflect.Value) {
	obj, ok := doc.(map[string]any)
	if !ok {
		d.fail(path, "must be a mapping, got %s", describe(doc))
		return
	}
	t := v.Type()
	kt := t.Key()
	if kt.Kind() != reflect.String && !reflect.PointerTo(kt).Implements(textUnmarshalerType) {
		d.fail(path, "cannot be decoded into %s", t)
		return
	}
	m := reflect.MakeMapWithSize(t, len(obj))
	for _, k := range sortedKeys(obj) {
		p := KeyPath(path, k)
		key := reflect.New(kt).Elem()
		if reflect.PointerTo(kt).Implements(textUnmarshalerType) {
			if err := key.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(k)); err != nil {
				d.fail(p, "invalid key: %v", err)
				continue
			}
		} else {
			key.SetString(k)
		}
		elem := reflect.New(t.Elem()).Elem()
		d.value(p, obj[k], elem)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) sliceValue(path string, doc any, v reflect.Value) {
	arr, ok := doc.([]any)
	if !ok {
		d.fail(path, "must be a list, got %s", describe(doc))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
	for i, x := range arr {
		d.value(IndexPath(path, i), x, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) arrayValue(path string, doc any, v reflect.Value) {
	arr, ok := doc.([]any)
	if !ok {
		d.fail(path, "must be a list, got %s", describe(doc))
		return
	}
	if len(arr) != v.Len() {
		d.fail(path, "must be a list of %d, got %d", v.Len(), len(arr))
		return
	}
	for i, x := range arr {
		d.value(IndexPath(path, i), x, v.Index(i))
	}
}

func (d *decoder) structValue(path string, doc any, v reflect.Value) {
	obj, ok := doc.(map[string]any)
	if !ok {
		d.fail(path, "must be a mapping, got %s", describe(doc))
		return
	}
	fields := structFields(v.Type())
	for _, k := range sortedKeys(obj) {
		p := KeyPath(path, k)
		f, ok := fields.lookup(k)
		if !ok {
			d.fail(p, "unknown field (known: %s)", strings.Join(fields.names, ", "))
			continue
		}
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			d.fail(p, "cannot be set: its embedded struct is an unexported pointer")
			continue
		}
		d.value(p, obj[k], fv)
	}
}

// fieldByIndex is v.FieldByIndex, allocating nil embedded pointers.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

type field struct {
	name  string
	index []int
}

type fieldSet struct {
	byName map[string]field
	names  []string // sorted, for messages
}

func (fs fieldSet) lookup(key string) (field, bool) {
	if f, ok := fs.byName[key]; ok {
		return f, true
	}
	for _, name := range fs.names {
		if strings.EqualFold(name, key) {
			return fs.byName[name], true
		}
	}
	return field{}, false
}

// structFields lists the JSON names of t's fields as encoding/json sees
// them: json tags, "-" skipped, unexported fields skipped, embedded structs
// without a tag promoted, a shallower field hiding a deeper one.
func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string]field{}}
	depth := map[string]int{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		if seen[t] { // a struct that embeds itself through a pointer
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			if sf.Anonymous && name == "" {
				et := sf.Type
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, idx)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if d, ok := depth[name]; ok && d <= len(idx) {
				continue
			}
			depth[name] = len(idx)
			fs.byName[name] = field{name: name, index: idx}
		}
	}
	walk(t, nil)
	for name := range fs.byName {
		fs.names = append(fs.names, name)
	}
	slices.Sort(fs.names)
	return fs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describe names a decoded JSON value for a message: its kind, and the
// value itself when short.
func describe(doc any) string {
	switch x := doc.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case json.Number:
		return "number " + string(x)
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return "string " + strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", doc)
	}
}

// Duration is a time.Duration written as a string such as "5s" or
// "1m30s", in a plugin's section and in JSON generally (encoding/json uses
// its text methods). [Config.Decode] takes a plain time.Duration field the
// same way; Duration is for config types also decoded elsewhere.
type Duration time.Duration

// UnmarshalText reads a duration as time.ParseDuration does.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf(`must be a duration such as "5s" or "1m30s", got %q`, b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// String returns the duration as time.Duration.String does.
func (d Duration) String() string { return time.Duration(d).String() }

package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-telemetry/sextant/exporters"
)

// The decoder walks a yaml.Node tree and a reflect.Value side by side. It
// exists because yaml.v3's own strict mode (KnownFields) reports a line but
// no column and no path, and stops at the first problem; this one reports
// every problem with its file, line, column and YAML path, and records where
// each path was set so that validation errors can be placed as well.

// YAML short tags the decoder looks at.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagStr   = "!!str"
	tagMerge = "!!merge"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	exportersMapType    = reflect.TypeFor[map[string]exporters.Config]()
)

// pos is a 1-based line and column in one file.
type pos struct{ line, col int }

func posOf(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// layer is what one decoded document contributed: where it set each path,
// which lists and maps it replaced wholesale, and which paths failed.
type layer struct {
	file     string
	pos      map[string]pos
	replaced map[string]bool
	failed   map[string]bool
}

func newLayer(file string) *layer {
	return &layer{file: file, pos: map[string]pos{}, replaced: map[string]bool{}, failed: map[string]bool{}}
}

// decoder decodes one document into a value that may already hold the
// previous layer's result.
type decoder struct {
	layer     *layer
	factories map[string]exporters.Factory
	problems  []Problem
	// deferExporters is set while decoding the embedded default: an
	// exporter type with no factory is only a problem if the user's file
	// keeps the default's exporters section, so it is put in deferred.
	deferExporters bool
	deferred       []Problem
	// expanding holds the alias nodes being expanded, to catch cycles.
	expanding map[*yaml.Node]bool
	// steps counts decoded nodes (aliases expanded) against budget, so that
	// a small file of nested aliases cannot make the decoder run for ever.
	steps, budget int
	exhausted     bool
}

// decodeDocument parses data as one YAML document and decodes it over out.
// complete is false if it could not look at the whole document: after a
// syntax error there is no tree to walk, and a document that expands to
// more values than the budget allows is abandoned part way.
func (d *decoder) decodeDocument(data []byte, out reflect.Value) (complete bool) {
	root, ok := d.parse(data)
	if !ok {
		return false
	}
	if root == nil {
		return true // empty document: nothing to change
	}
	d.budget = 100*countNodes(root) + 10_000
	d.expanding = map[*yaml.Node]bool{}
	d.decode(root, "", out)
	return !d.exhausted
}

// parse returns the document's root node, nil for an empty document.
func (d *decoder) parse(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.problems = append(d.problems, syntaxProblem(d.layer.file, data, err))
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.problems = append(d.problems, syntaxProblem(d.layer.file, data, err))
		return nil, false
	default:
		d.problems = append(d.problems, Problem{File: d.layer.file, Line: extra.Line, Column: extra.Column,
			Message: "a configuration file holds one YAML document; found a second"})
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	unknownAlias = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// isParserProblem reports whether msg is one yaml.v3 raises from its parser
// rather than its scanner. It reports a parser problem's line 0-based
// (scanner lines are 1-based), so 1 is added to them; see (*parser).fail in
// yaml.v3's decode.go.
func isParserProblem(msg string) bool {
	switch msg {
	case "did not find expected <stream-start>",
		"did not find expected <document start>",
		"found undefined tag handle",
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected key",
		"did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found duplicate %TAG directive":
		return true
	}
	return false
}

// syntaxProblem turns a yaml.v3 parse error into a Problem. yaml.v3 reports
// a line but never a column, so Column is 1; when it reports no line either
// (its way of saying the first line) Line is 1. An unknown anchor is placed
// at its first use in the text.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg := err.Error()
	p := Problem{File: file, Line: 1, Column: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		if isParserProblem(msg) {
			p.Line++
		}
	} else if m := unknownAlias.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			p.Line = 1 + bytes.Count(data[:i], []byte("\n"))
			p.Column = 1 + i - (bytes.LastIndexByte(data[:i], '\n') + 1)
		}
	}
	p.Message = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return p
}

// fail records a decoding problem at node n and marks path as failed, so
// that validation does not also complain about the placeholder left there.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.layer.failed[path] = true
	d.problems = append(d.problems, Problem{File: d.layer.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// resolve follows alias n to the node it names; ok is false for a cycle.
// After a successful resolve, the caller must call d.release(n) once done
// with the target.
func (d *decoder) resolve(n *yaml.Node, path string) (target *yaml.Node, ok bool) {
	if d.expanding[n] || n.Alias == nil {
		d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
		return nil, false
	}
	d.expanding[n] = true
	return n.Alias, true
}

func (d *decoder) release(n *yaml.Node) { delete(d.expanding, n) }

// spend takes cost steps from the budget and reports whether any is left.
func (d *decoder) spend(n *yaml.Node, path string, cost int) bool {
	if d.exhausted {
		return false
	}
	if d.steps += cost; d.steps > d.budget {
		d.exhausted = true
		d.fail(n, path, "document too large: more than %d values after expanding aliases and merges", d.budget)
		return false
	}
	return true
}

func join(path, key string) string {
	switch {
	case path == "":
		return key
	case strings.HasPrefix(key, "["): // an index: a list section's own paths start with one
		return path + key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// decode sets v from n. The value v already holds (the default's) is kept
// where the document says nothing: struct fields absent from a mapping, and
// anything given null except maps, slices and pointers, which null clears.
// Maps and slices given in the document replace the old value wholesale.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if !d.spend(n, path, 1) {
		return
	}
	d.layer.pos[path] = posOf(n) // an alias is placed where it is used
	if n.Kind == yaml.AliasNode {
		target, ok := d.resolve(n, path)
		if !ok {
			return
		}
		defer d.release(n)
		n = target
	}

	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull {
		switch v.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
			v.SetZero()
			d.layer.replaced[path] = true
		}
		return
	}
	if v.Type() == exportersMapType {
		d.exporters(n, path, v)
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	}
	if v.Type() != durationType && reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	if v.Kind() == reflect.Interface && v.NumMethod() == 0 {
		d.anything(n, path, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		d.sequence(n, path, v)
	default:
		d.scalar(n, path, v)
	}
}

// anything decodes a free-form value, such as a plugin's own section, as
// yaml.v3 does: mappings become map[string]any, sequences []any. Its keys
// are the plugin's to check, so none is unknown here.
func (d *decoder) anything(n *yaml.Node, path string, v reflect.Value) {
	if !d.spend(n, path, countNodes(n)) {
		return
	}
	var x any
	if err := n.Decode(&x); err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	if x == nil {
		v.SetZero()
	} else {
		v.Set(reflect.ValueOf(x))
	}
	d.layer.replaced[path] = true
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path) {
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == p.key.Value })
		if i < 0 {
			d.fail(p.key, join(path, p.key.Value), "unknown key, want one of: %s", fieldNames(fields))
			continue
		}
		d.decode(p.val, join(path, p.key.Value), v.FieldByIndex(fields[i].index))
	}
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "cannot decode into %s: map keys must be strings", t) // a bug in a Config type
		return
	}
	m := reflect.MakeMap(t)
	for _, p := range d.pairs(n, path) {
		e := reflect.New(t.Elem()).Elem()
		d.decode(p.val, join(path, p.key.Value), e)
		m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), e)
	}
	v.Set(m)
	d.layer.replaced[path] = true
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		d.decode(e, index(path, i), s.Index(i))
	}
	v.Set(s)
	d.layer.replaced[path] = true
}

func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value) {
	want := wantOf(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want %s, got %s", want, describe(n))
		return
	}
	tag := n.ShortTag()
	if v.Type() == durationType {
		if tag == tagInt || tag == tagFloat {
			d.fail(n, path, "want %s: a bare number has no unit, got %s", want, n.Value)
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "want %s, got %q", want, n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value) // as yaml.v3 does: 5, true and 1.5 are strings too
		return
	case reflect.Bool:
		var b bool
		if tag == tagBool && n.Decode(&b) == nil {
			v.SetBool(b)
			return
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag == tagInt && n.Decode(&i) == nil {
			if v.OverflowInt(i) {
				d.fail(n, path, "%s is out of range for %s", n.Value, want)
				return
			}
			v.SetInt(i)
			return
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		if tag == tagInt && n.Decode(&u) == nil {
			if v.OverflowUint(u) {
				d.fail(n, path, "%s is out of range for %s", n.Value, want)
				return
			}
			v.SetUint(u)
			return
		}
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag == tagFloat || tag == tagInt) && n.Decode(&f) == nil {
			if v.OverflowFloat(f) {
				d.fail(n, path, "%s is out of range for %s", n.Value, want)
				return
			}
			v.SetFloat(f)
			return
		}
	default:
		d.fail(n, path, "cannot decode into %s", v.Type()) // a bug in a Config type
		return
	}
	d.fail(n, path, "want %s, got %s", want, describe(n))
}

// exporters decodes the exporters section. Each key must be a factory's
// Type; its value is decoded over the previous layer's value for that key,
// or else over the factory's NewDefaultConfig. The set of keys is replaced
// wholesale like any map's, so a file that lists exporters enables exactly
// those.
func (d *decoder) exporters(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	old, _ := v.Interface().(map[string]exporters.Config)
	out := map[string]exporters.Config{}
	for _, p := range d.pairs(n, path) {
		typ, kp := p.key.Value, join(path, p.key.Value)
		f, ok := d.factories[typ]
		if !ok {
			d.fail(p.key, kp, "unknown exporter type, want one of: %s", knownTypes(d.factories))
			if d.deferExporters {
				last := len(d.problems) - 1
				d.deferred = append(d.deferred, d.problems[last])
				d.problems = d.problems[:last]
			}
			continue
		}
		cfg := old[typ]
		if cfg == nil {
			if cfg = f.NewDefaultConfig(); cfg == nil {
				d.fail(p.key, kp, "the %s exporter's factory returned no default config", typ)
				continue
			}
		}
		out[typ] = d.exporter(p.val, kp, cfg)
	}
	v.Set(reflect.ValueOf(out))
}

// exporter decodes n over cfg: through the pointer cfg holds, or into a copy
// of the value cfg holds.
func (d *decoder) exporter(n *yaml.Node, path string, cfg exporters.Config) exporters.Config {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		d.decode(n, path, rv.Elem())
		return cfg
	}
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	d.decode(n, path, cp)
	return cp.Interface().(exporters.Config)
}

func knownTypes(factories map[string]exporters.Factory) string {
	if len(factories) == 0 {
		return "(none: no exporter factories were given)"
	}
	types := make([]string, 0, len(factories))
	for t := range factories {
		types = append(types, t)
	}
	slices.Sort(types)
	return strings.Join(types, ", ")
}

type pair struct{ key, val *yaml.Node }

// pairs returns a mapping's entries with merge keys (<<) applied: explicit
// keys win over merged ones, and earlier merged mappings over later ones.
// A duplicate explicit key is a problem; its value is ignored.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	if !d.spend(n, path, len(n.Content)/2) {
		return nil
	}
	var out []pair
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias // a scalar anchored elsewhere; cycles cannot pass through keys
		}
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == tagMerge:
			merges = append(merges, val)
			continue
		case k.Kind != yaml.ScalarNode:
			d.fail(k, path, "want a string key, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, join(path, k.Value), "duplicate key, first set at line %d", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, m := range merges {
		d.merge(m, path, seen, &out)
	}
	return out
}

func (d *decoder) merge(m *yaml.Node, path string, seen map[string]*yaml.Node, out *[]pair) {
	if m.Kind == yaml.AliasNode {
		target, ok := d.resolve(m, path)
		if !ok {
			return
		}
		defer d.release(m)
		m = target
	}
	if m.Kind != yaml.SequenceNode {
		d.mergeMapping(m, path, seen, out)
		return
	}
	for _, e := range m.Content {
		if e.Kind == yaml.AliasNode {
			target, ok := d.resolve(e, path)
			if !ok {
				continue
			}
			d.mergeMapping(target, path, seen, out)
			d.release(e)
			continue
		}
		d.mergeMapping(e, path, seen, out)
	}
}

func (d *decoder) mergeMapping(m *yaml.Node, path string, seen map[string]*yaml.Node, out *[]pair) {
	if m.Kind != yaml.MappingNode {
		d.fail(m, path, "a merge key (<<) wants a mapping or a list of mappings, got %s", describe(m))
		return
	}
	for _, p := range d.pairs(m, path) {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key
			*out = append(*out, p)
		}
	}
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagStr:
			return strconv.Quote(n.Value)
		case tagNull:
			return "null"
		case tagBool:
			return "the boolean " + n.Value
		case tagInt, tagFloat:
			return "the number " + n.Value
		}
		return n.ShortTag() + " " + strconv.Quote(n.Value)
	}
	return "nothing"
}

// wantOf names what a scalar Go type accepts, for "want X, got Y" messages.
func wantOf(t reflect.Type) string {
	if t == durationType {
		return `a duration such as "5ms" or "1m30s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a string"
}

// field is one YAML key of a struct.
type field struct {
	name      string
	index     []int
	omitEmpty bool
}

// fieldsOf lists a struct's YAML keys in declaration order, following the
// yaml.v3 conventions: the tag's name, else the lowercased field name; "-"
// skips a field; ",inline" lifts an embedded struct's keys.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		optList := strings.Split(opts, ",")
		if slices.Contains(optList, "inline") && sf.Type.Kind() == reflect.Struct {
			for _, f := range fieldsOf(sf.Type) {
				f.index = append([]int{i}, f.index...)
				out = append(out, f)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out = append(out, field{name: name, index: []int{i}, omitEmpty: slices.Contains(optList, "omitempty")})
	}
	return out
}

func fieldNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

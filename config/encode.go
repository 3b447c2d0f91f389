package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()

// Marshal returns the YAML of cfg, complete, as `sextant config print`
// shows the effective configuration. Durations are written as strings such
// as "5ms". Parsing the result (with the same factories) gives back a
// Config equal to cfg.
//
// A field tagged omitempty is left out when it is zero only inside list
// items and map values, which Parse decodes from scratch; elsewhere Parse
// decodes over the default, where leaving a field out would bring back the
// default's value.
func Marshal(cfg *Config) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("config: Marshal of a nil *Config")
	}
	n, err := encode(reflect.ValueOf(cfg).Elem(), false)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// encode builds the node for v. fresh says whether Parse decodes v from a
// zero value (list items, map values) rather than over the default.
func encode(v reflect.Value, fresh bool) (*yaml.Node, error) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Value: "null"}, nil
		}
		return encode(v.Elem(), fresh)
	}
	t := v.Type()
	switch {
	case t == durationType:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: time.Duration(v.Int()).String()}, nil
	case t.Implements(textMarshalerType):
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, fmt.Errorf("config: encode %s: %w", t, err)
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: string(b)}, nil
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range fieldsOf(t) {
			fv := v.FieldByIndex(f.index)
			if f.omitEmpty && fresh && fv.IsZero() {
				continue
			}
			c, err := encode(fv, fresh)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: f.name}, c)
		}
		return n, nil
	case reflect.Map:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Value: "null"}, nil
		}
		n := &yaml.Node{Kind: yaml.MappingNode, Style: flowIfScalar(t.Elem())}
		keys := v.MapKeys()
		sortValues(keys)
		for _, k := range keys {
			// Exporter configs are decoded over the default's, not from zero.
			c, err := encode(v.MapIndex(k), t != exportersMapType)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: k.String()}, c)
		}
		return n, nil
	case reflect.Slice:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Value: "null"}, nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: flowIfScalar(t.Elem())}
		for i := range v.Len() {
			c, err := encode(v.Index(i), true)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, fmt.Errorf("config: encode %s: %w", t, err)
	}
	return &n, nil
}

// flowIfScalar writes lists and maps of scalars on one line, like the
// default's buckets and labels.
func flowIfScalar(elem reflect.Type) yaml.Style {
	switch elem.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		return 0
	}
	return yaml.FlowStyle
}

func sortValues(keys []reflect.Value) {
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
}

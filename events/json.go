package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// jsonEvent is the JSON form of an Event, used by POST /events, event files
// and tests. Attributes are an object; its key order is kept.
type jsonEvent struct {
	Name          string          `json:"name"`
	ID            *ID             `json:"id,omitempty"`
	Time          *time.Time      `json:"time,omitempty"`
	CorrelationID ID              `json:"correlation_id"`
	SchemaVersion uint16          `json:"schema_version,omitempty"`
	Attrs         json.RawMessage `json:"attrs,omitempty"`
	// TraceParent is Event.Parent in the W3C header form; absent when the
	// event has none. A pointer, so that an empty string is told from an
	// absent key.
	TraceParent *string `json:"traceparent,omitempty"`
}

// MarshalJSON encodes e as {"name","id","time","correlation_id","schema_version","attrs":{...},"traceparent"};
// traceparent is left out when e.Parent is invalid (none).
func (e Event) MarshalJSON() ([]byte, error) {
	var attrs bytes.Buffer
	attrs.WriteByte('{')
	for i, a := range e.Attrs {
		if i > 0 {
			attrs.WriteByte(',')
		}
		k, _ := json.Marshal(a.Key)
		attrs.Write(k)
		attrs.WriteByte(':')
		var v []byte
		var err error
		switch a.Value.Kind() {
		case KindString:
			v, err = json.Marshal(a.Value.Str())
		case KindInt:
			v, err = json.Marshal(a.Value.Int64())
		case KindFloat:
			v, err = json.Marshal(a.Value.Float64())
			if err == nil && !bytes.ContainsAny(v, ".eE") {
				v = append(v, ".0"...) // keep floats floats on the way back
			}
		case KindBool:
			v, err = json.Marshal(a.Value.Bool())
		default:
			err = fmt.Errorf("attribute %q has no value", a.Key)
		}
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", e.Name, err)
		}
		attrs.Write(v)
	}
	attrs.WriteByte('}')
	id, t := e.ID, e.Time
	j := jsonEvent{Name: e.Name, ID: &id, Time: &t, CorrelationID: e.CorrelationID, SchemaVersion: e.SchemaVersion, Attrs: attrs.Bytes()}
	if e.Parent.IsValid() {
		tp := e.Parent.String()
		j.TraceParent = &tp
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes. name and correlation_id
// are required; a missing id or time is filled with a fresh id and the current
// time, a missing schema_version with 1. Attribute values must be strings,
// numbers or booleans: an integer literal becomes an int, any other number a
// float. traceparent is optional: a W3C traceparent (ParseTraceParent), which
// becomes e.Parent; null is the same as leaving it out, and an empty or
// invalid one is an error. Unknown top-level keys are errors.
func (e *Event) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j jsonEvent
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if j.Name == "" {
		return errors.New("event: name: required")
	}
	if j.CorrelationID.IsZero() {
		return fmt.Errorf("event %s: correlation_id: required", j.Name)
	}
	out := Event{Name: j.Name, CorrelationID: j.CorrelationID, SchemaVersion: j.SchemaVersion}
	if j.Time != nil {
		out.Time = *j.Time
	} else {
		out.Time = time.Now()
	}
	if j.ID != nil {
		out.ID = *j.ID
	} else {
		out.ID = NewIDAt(out.Time)
	}
	if out.SchemaVersion == 0 {
		out.SchemaVersion = 1
	}
	attrs, err := decodeJSONAttrs(j.Attrs)
	if err != nil {
		return fmt.Errorf("event %s: attrs: %w", j.Name, err)
	}
	out.Attrs = attrs
	if j.TraceParent != nil {
		if out.Parent, err = ParseTraceParent(*j.TraceParent); err != nil {
			return fmt.Errorf("event %s: traceparent: %w", j.Name, err)
		}
	}
	*e = out
	return nil
}

func decodeJSONAttrs(raw json.RawMessage) ([]Attr, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("must be an object")
	}
	var attrs []Attr
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, fmt.Errorf("%s: duplicate key", key)
		}
		seen[key] = true
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		var v Value
		switch x := tok.(type) {
		case string:
			v = StringValue(x)
		case bool:
			v = BoolValue(x)
		case json.Number:
			if !strings.ContainsAny(x.String(), ".eE") {
				n, err := x.Int64()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				v = IntValue(n)
				break
			}
			f, err := x.Float64()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			v = FloatValue(f)
		default:
			return nil, fmt.Errorf("%s: must be a string, number or boolean, got %v", key, tok)
		}
		attrs = append(attrs, Attr{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return attrs, nil
}

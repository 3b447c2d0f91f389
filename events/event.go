package events

import (
	"errors"
	"fmt"
	"time"
)

// Event is the envelope every lifecycle event travels in.
//
// Name selects the catalog schema, which fixes the Attrs an event of that name
// carries. CorrelationID ties together every event of one request (one task):
// it becomes the trace id of the task's spans and, where a mapping asks for it,
// the correlation_id label. Parent ties the event to the publisher's own trace.
// It is carried per event, not per bus message, because one message is a batch
// of events from many tasks and publishers.
type Event struct {
	// Name is the catalog name, e.g. "task.initialize_requested".
	Name string
	// ID is the event's own UUIDv7.
	ID ID
	// Time is when the event occurred.
	Time time.Time
	// CorrelationID is the UUIDv7 shared by every event of one request.
	CorrelationID ID
	// SchemaVersion is the catalog schema version the publisher wrote.
	SchemaVersion uint16
	// Attrs are the event's fields, in any order, each key at most once.
	Attrs []Attr
	// Parent is the W3C trace context of the publisher's span when it
	// published the event; zero (or any invalid value) when there is none.
	// The router makes the event's root spans children of it when its trace
	// id is the correlation id, and links them to it otherwise.
	Parent TraceParent
}

// Envelope fields that mappings may use like attributes.
const (
	FieldCorrelationID = "correlation_id"
	FieldEventName     = "event_name"
)

// New returns an event named name with a fresh ID, the current time, the
// catalog's schema version for name (1 for names outside the catalog) and the
// given attributes. The attrs slice is kept, not copied.
func New(name string, correlationID ID, attrs ...Attr) Event {
	now := time.Now()
	version := uint16(1)
	if s, ok := Lookup(name); ok {
		version = s.Version
	}
	return Event{
		Name:          name,
		ID:            NewIDAt(now),
		Time:          now,
		CorrelationID: correlationID,
		SchemaVersion: version,
		Attrs:         attrs,
	}
}

// Attr returns the value of the attribute key. It scans linearly: events carry
// a handful of attributes, and a scan beats a map at that size.
func (e *Event) Attr(key string) (Value, bool) {
	for i := range e.Attrs {
		if e.Attrs[i].Key == key {
			return e.Attrs[i].Value, true
		}
	}
	return Value{}, false
}

// Validation errors, for errors.Is.
var (
	ErrUnknownEvent = errors.New("unknown event")
	ErrMissingField = errors.New("missing required field")
	ErrFieldType    = errors.New("wrong field type")
)

// Validate checks e against its catalog schema: the name is known, every
// required field is present and every known field has its declared kind
// (an int is accepted where a float is declared). Extra fields are allowed so
// that publishers can add fields before the catalog learns them.
func (e *Event) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("%w: empty name", ErrUnknownEvent)
	}
	s, ok := Lookup(e.Name)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownEvent, e.Name)
	}
	return s.Check(e)
}

// Check validates e's attributes against s (e's name is not compared): every
// required field is present and every known field has its declared kind (an
// int is accepted where a float is declared). It allocates only on failure.
func (s Schema) Check(e *Event) error {
	var errs []error
	for _, f := range s.Fields {
		v, ok := e.Attr(f.Name)
		switch {
		case !ok && f.Required:
			errs = append(errs, fmt.Errorf("%s: %w %q", e.Name, ErrMissingField, f.Name))
		case ok && v.Kind() != f.Type && !(f.Type == KindFloat && v.Kind() == KindInt):
			errs = append(errs, fmt.Errorf("%s: field %q: %w: got %s, want %s", e.Name, f.Name, ErrFieldType, v.Kind(), f.Type))
		}
	}
	return errors.Join(errs...)
}

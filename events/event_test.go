package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		eventName   string
		wantVersion uint16
	}{
		{name: "catalog event", eventName: events.StepCompleted, wantVersion: 1},
		{name: "event outside the catalog", eventName: "custom.thing", wantVersion: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			corr := events.NewID()
			attrs := []events.Attr{events.String("namespace", "ns"), events.Float("duration_ms", 1.5)}
			before := time.Now()
			e := events.New(tt.eventName, corr, attrs...)
			after := time.Now()

			require.Equal(t, tt.eventName, e.Name)
			require.Equal(t, corr, e.CorrelationID)
			require.Equal(t, tt.wantVersion, e.SchemaVersion)
			require.False(t, e.Time.Before(before) || e.Time.After(after), "time %v not in [%v, %v]", e.Time, before, after)
			requireV7(t, e.ID)
			require.Equal(t, e.Time.UnixMilli(), e.ID.Time().UnixMilli(), "the id carries the event time")
			require.Equal(t, attrs, e.Attrs)
			require.Same(t, &attrs[0], &e.Attrs[0], "the attrs slice is kept, not copied")
		})
	}
	require.NotEqual(t, events.New("x", events.ID{}).ID, events.New("x", events.ID{}).ID)
	require.Nil(t, events.New("x", events.ID{}).Attrs)
}

func TestEventAttr(t *testing.T) {
	t.Parallel()
	e := ev("x", events.String("a", "1"), events.Int("b", 2), events.Int("a", 3))
	tests := []struct {
		name   string
		key    string
		want   events.Value
		wantOK bool
	}{
		{name: "present", key: "b", want: events.IntValue(2), wantOK: true},
		{name: "first of duplicates wins", key: "a", want: events.StringValue("1"), wantOK: true},
		{name: "absent", key: "c"},
		{name: "empty key absent", key: ""},
		{name: "envelope fields are not attributes", key: events.FieldCorrelationID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := e.Attr(tt.key)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// validAttrs returns attributes satisfying every required field of s.
func validAttrs(s events.Schema) []events.Attr {
	var attrs []events.Attr
	for _, f := range s.Fields {
		if !f.Required {
			continue
		}
		switch f.Type {
		case events.KindString:
			attrs = append(attrs, events.String(f.Name, "v"))
		case events.KindInt:
			attrs = append(attrs, events.Int(f.Name, 1))
		case events.KindFloat:
			attrs = append(attrs, events.Float(f.Name, 1.5))
		case events.KindBool:
			attrs = append(attrs, events.Bool(f.Name, true))
		}
	}
	return attrs
}

func TestValidateEveryCatalogEvent(t *testing.T) {
	t.Parallel()
	for _, s := range events.Catalog() {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			e := events.New(s.Name, events.NewID(), validAttrs(s)...)
			require.NoError(t, e.Validate())

			// Dropping any one required field is reported as that field.
			for i := range e.Attrs {
				short := e
				short.Attrs = append(append([]events.Attr{}, e.Attrs[:i]...), e.Attrs[i+1:]...)
				err := short.Validate()
				require.ErrorIs(t, err, events.ErrMissingField)
				require.ErrorContains(t, err, s.Name+": missing required field \""+e.Attrs[i].Key+"\"")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	// step.claimed: task_uuid step_uuid namespace step_name claim_method (strings), duration_ms (float), all required.
	claimed := func(replace ...events.Attr) events.Event {
		attrs := []events.Attr{
			events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", "ns"),
			events.String("step_name", "n"), events.String("claim_method", "poll"), events.Float("duration_ms", 2.5),
		}
	next:
		for _, r := range replace {
			for i := range attrs {
				if attrs[i].Key == r.Key {
					attrs[i] = r
					continue next
				}
			}
			attrs = append(attrs, r)
		}
		return events.Event{Name: events.StepClaimed, CorrelationID: corr1, SchemaVersion: 1, Attrs: attrs}
	}
	without := func(e events.Event, keys ...string) events.Event {
		var kept []events.Attr
	next:
		for _, a := range e.Attrs {
			for _, k := range keys {
				if a.Key == k {
					continue next
				}
			}
			kept = append(kept, a)
		}
		e.Attrs = kept
		return e
	}
	tests := []struct {
		name    string
		event   events.Event
		wantIs  []error
		wantMsg []string
	}{
		{name: "valid", event: claimed()},
		{name: "int accepted for float field", event: claimed(events.Int("duration_ms", 3))},
		{name: "extra field allowed", event: claimed(events.String("brand_new_field", "x"), events.Float("another", 1))},
		{name: "optional field absent", event: events.Event{Name: events.StepExecutionStarted, Attrs: []events.Attr{
			events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", "ns"), events.String("step_name", "n")}}},
		{name: "optional field with right kind", event: events.Event{Name: events.StepExecutionStarted, Attrs: []events.Attr{
			events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", "ns"), events.String("step_name", "n"),
			events.Int("attempt", 2), events.String("handler_type", "go")}}},
		{name: "empty name", event: events.Event{}, wantIs: []error{events.ErrUnknownEvent}, wantMsg: []string{"unknown event: empty name"}},
		{name: "unknown name", event: events.Event{Name: "task.exploded"}, wantIs: []error{events.ErrUnknownEvent},
			wantMsg: []string{`unknown event "task.exploded"`}},
		{name: "name is case-sensitive", event: events.Event{Name: "Step.Claimed"}, wantIs: []error{events.ErrUnknownEvent}},
		{name: "missing required field", event: without(claimed(), "namespace"), wantIs: []error{events.ErrMissingField},
			wantMsg: []string{`step.claimed: missing required field "namespace"`}},
		{name: "wrong kind", event: claimed(events.Int("namespace", 7)), wantIs: []error{events.ErrFieldType},
			wantMsg: []string{`step.claimed: field "namespace": wrong field type: got int, want string`}},
		{name: "float not accepted for int field", event: events.Event{Name: events.TaskCompleted, Attrs: []events.Attr{
			events.String("task_uuid", "t"), events.String("task_type", "tt"), events.String("namespace", "ns"), events.Float("step_count", 2)}},
			wantIs: []error{events.ErrFieldType}, wantMsg: []string{`field "step_count": wrong field type: got float, want int`}},
		{name: "string not accepted for float field", event: claimed(events.String("duration_ms", "2.5")), wantIs: []error{events.ErrFieldType},
			wantMsg: []string{`field "duration_ms": wrong field type: got string, want float`}},
		{name: "bool not accepted for float field", event: claimed(events.Bool("duration_ms", true)), wantIs: []error{events.ErrFieldType}},
		{name: "wrong kind in optional field", event: events.Event{Name: events.StepExecutionStarted, Attrs: []events.Attr{
			events.String("task_uuid", "t"), events.String("step_uuid", "s"), events.String("namespace", "ns"), events.String("step_name", "n"),
			events.String("attempt", "2")}},
			wantIs: []error{events.ErrFieldType}, wantMsg: []string{`field "attempt": wrong field type: got string, want int`}},
		{name: "zero value attribute", event: claimed(events.Attr{Key: "namespace"}), wantIs: []error{events.ErrFieldType},
			wantMsg: []string{"got invalid, want string"}},
		{name: "every problem reported", event: without(claimed(events.Int("step_name", 1)), "task_uuid", "duration_ms"),
			wantIs:  []error{events.ErrMissingField, events.ErrFieldType},
			wantMsg: []string{`missing required field "task_uuid"`, `missing required field "duration_ms"`, `field "step_name": wrong field type`}},
		{name: "no attrs at all", event: events.Event{Name: events.TaskInitializeRequested}, wantIs: []error{events.ErrMissingField},
			wantMsg: []string{`"task_uuid"`, `"task_type"`, `"namespace"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.event.Validate()
			if len(tt.wantIs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, target := range tt.wantIs {
				require.ErrorIs(t, err, target)
			}
			for _, sentinel := range []error{events.ErrUnknownEvent, events.ErrMissingField, events.ErrFieldType} {
				if !containsErr(tt.wantIs, sentinel) {
					require.NotErrorIs(t, err, sentinel)
				}
			}
			for _, m := range tt.wantMsg {
				require.ErrorContains(t, err, m)
			}
		})
	}
}

func containsErr(errs []error, target error) bool {
	for _, e := range errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}

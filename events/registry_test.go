package events_test

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// nameGrammar is Register's documented name grammar.
var nameGrammar = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)

func checkNameGrammar(name string) error {
	if !nameGrammar.MatchString(name) {
		return fmt.Errorf("%q does not match %s", name, nameGrammar)
	}
	return nil
}

// registerRuns keeps names unique when a test runs with -count.
var registerRuns atomic.Int64

func TestRegister(t *testing.T) {
	t.Parallel()
	ns := fmt.Sprintf("acme_r%d", registerRuns.Add(1))
	shipped := func(name string) events.Schema {
		return events.Schema{
			Name:        name,
			Description: "an order left the warehouse",
			Fields: []events.Field{
				{Name: "order_id", Type: events.KindString, Required: true, Description: "the order"},
				{Name: "weight_kg", Type: events.KindFloat, Description: "parcel weight"},
			},
		}
	}
	with := func(name string, edit func(*events.Schema)) events.Schema {
		s := shipped(name)
		edit(&s)
		return s
	}
	require.NoError(t, events.Register(shipped(ns+".taken")))

	tests := []struct {
		name    string
		schema  events.Schema
		wantErr error  // nil: accepted
		errHas  string // part of the message
	}{
		{name: "valid", schema: shipped(ns + ".valid")},
		{name: "valid own group and source", schema: with(ns+".grouped", func(s *events.Schema) {
			s.Group, s.Source, s.Version = "billing", "billing service", 3
		})},
		{name: "valid digits and underscores", schema: shipped(ns + "_2.v2_register.ok_1")},
		{name: "valid no fields", schema: with(ns+".bare", func(s *events.Schema) { s.Fields = nil })},
		{name: "duplicate of a built-in", schema: shipped(events.TaskCompleted), wantErr: events.ErrInvalidSchema, errHas: `namespace "task" is reserved`},
		{name: "duplicate of a custom event", schema: shipped(ns + ".taken"), wantErr: events.ErrEventRegistered},
		{name: "one segment", schema: shipped("acme"), wantErr: events.ErrInvalidSchema, errHas: "two dot-separated segments"},
		{name: "empty", schema: shipped(""), wantErr: events.ErrInvalidSchema, errHas: "two dot-separated segments"},
		{name: "empty segment", schema: shipped("acme..shipped"), wantErr: events.ErrInvalidSchema, errHas: "empty segment"},
		{name: "trailing dot", schema: shipped("acme.shipped."), wantErr: events.ErrInvalidSchema, errHas: "empty segment"},
		{name: "leading dot", schema: shipped(".acme.shipped"), wantErr: events.ErrInvalidSchema, errHas: "empty segment"},
		{name: "upper case", schema: shipped("Acme.Shipped"), wantErr: events.ErrInvalidSchema, errHas: "'A'"},
		{name: "space inside", schema: shipped("acme.order shipped"), wantErr: events.ErrInvalidSchema, errHas: "' '"},
		{name: "surrounding spaces", schema: shipped(" acme.shipped "), wantErr: events.ErrInvalidSchema},
		{name: "hyphen", schema: shipped("acme.order-shipped"), wantErr: events.ErrInvalidSchema},
		{name: "non-ASCII", schema: shipped("acme.exp\u00e9di\u00e9"), wantErr: events.ErrInvalidSchema},
		{name: "no description", schema: with(ns+".nodesc", func(s *events.Schema) { s.Description = "  " }), wantErr: events.ErrInvalidSchema, errHas: "description"},
		{name: "field shadows correlation_id", schema: with(ns+".shadow1", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: events.FieldCorrelationID, Type: events.KindString})
		}), wantErr: events.ErrInvalidSchema, errHas: "shadows the envelope"},
		{name: "field shadows event_name", schema: with(ns+".shadow2", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: events.FieldEventName, Type: events.KindString})
		}), wantErr: events.ErrInvalidSchema, errHas: "shadows the envelope"},
		{name: "duplicate field", schema: with(ns+".dupfield", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: "order_id", Type: events.KindInt})
		}), wantErr: events.ErrInvalidSchema, errHas: `"order_id" appears twice`},
		{name: "zero Kind", schema: with(ns+".nokind", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: "carrier"})
		}), wantErr: events.ErrInvalidSchema, errHas: `"carrier" has no type`},
		{name: "unknown Kind", schema: with(ns+".badkind", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: "carrier", Type: events.KindBool + 1})
		}), wantErr: events.ErrInvalidSchema, errHas: `"carrier" has no type`},
		{name: "unnamed field", schema: with(ns+".noname", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Type: events.KindInt})
		}), wantErr: events.ErrInvalidSchema, errHas: "no name"},
		{name: "field name not a label", schema: with(ns+".badfield", func(s *events.Schema) {
			s.Fields = append(s.Fields, events.Field{Name: "Order-ID", Type: events.KindInt})
		}), wantErr: events.ErrInvalidSchema, errHas: "[a-z_][a-z0-9_]*"},
		{name: "built-in group", schema: with(ns+".taskgroup", func(s *events.Schema) { s.Group = events.GroupTask }),
			wantErr: events.ErrInvalidSchema, errHas: `group "task"`},
		{name: "malformed group", schema: with(ns+".badgroup", func(s *events.Schema) { s.Group = "Billing Team" }),
			wantErr: events.ErrInvalidSchema, errHas: "group"},
	}
	for _, ns := range events.ReservedNamespaces() {
		tests = append(tests, struct {
			name    string
			schema  events.Schema
			wantErr error
			errHas  string
		}{name: "reserved " + ns, schema: shipped(ns + ".acme_custom"), wantErr: events.ErrInvalidSchema, errHas: fmt.Sprintf("namespace %q is reserved", ns)})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(events.Catalog())
			err := events.Register(tt.schema)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Contains(t, err.Error(), tt.errHas)
				require.Contains(t, err.Error(), fmt.Sprintf("%q", tt.schema.Name), "the error names the event")
				if !errors.Is(err, events.ErrEventRegistered) {
					_, ok := events.Lookup(tt.schema.Name)
					require.Equal(t, tt.schema.Name == events.TaskCompleted, ok, "a refused event is not added")
				}
				return
			}
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(events.Catalog()), before+1)
			got, ok := events.Lookup(tt.schema.Name)
			require.True(t, ok)
			require.Contains(t, events.Names(), tt.schema.Name)
			require.True(t, got.External, "custom events are external")
			require.NotEmpty(t, got.Source)
			require.GreaterOrEqual(t, got.Version, uint16(1))
			wantGroup := tt.schema.Group
			if wantGroup == "" {
				wantGroup = events.GroupCustom
				require.Equal(t, "application", got.Source)
				require.Equal(t, uint16(1), got.Version)
			}
			require.Equal(t, wantGroup, got.Group)
			require.Contains(t, events.Groups(), wantGroup)
			require.Contains(t, events.InGroup(wantGroup), got)
			require.Equal(t, tt.schema.Fields, got.Fields)
			require.False(t, events.IsInfrastructure(got.Name))

			// Registering again is refused, even with the same schema.
			require.ErrorIs(t, events.Register(tt.schema), events.ErrEventRegistered)
		})
	}
}

func TestRegisterKeepsItsOwnFields(t *testing.T) {
	t.Parallel()
	fields := []events.Field{{Name: "sku", Type: events.KindString, Required: true}}
	name := fmt.Sprintf("acme_k%d.keep_fields", registerRuns.Add(1))
	require.NoError(t, events.Register(events.Schema{Name: name, Description: "x", Fields: fields}))
	fields[0].Name = "scribbled"
	got, ok := events.Lookup(name)
	require.True(t, ok)
	require.Equal(t, "sku", got.Fields[0].Name, "Register copies the fields")

	e := events.New(name, events.NewID())
	require.ErrorIs(t, e.Validate(), events.ErrMissingField)
	e.Attrs = []events.Attr{events.String("sku", "A-1")}
	require.NoError(t, e.Validate())
}

// TestRegisterConcurrentSafe registers many names while readers run; run it
// with -race.
func TestRegisterConcurrentSafe(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 8, 25
	start := len(events.Catalog())
	prefix := fmt.Sprintf("acme.concurrent_%d", registerRuns.Add(1)) // unique under -count

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				names := events.Names()
				cat := events.Catalog()
				// A snapshot is self-consistent: every name resolves.
				for _, s := range cat {
					if _, ok := events.Lookup(s.Name); !ok {
						t.Errorf("%s in Catalog but not in Lookup", s.Name)
						return
					}
				}
				if len(names) < start || len(cat) < start {
					t.Errorf("catalog shrank: %d names, %d schemas, started at %d", len(names), len(cat), start)
					return
				}
				_ = events.InGroup(events.GroupCustom)
				_ = events.Groups()
			}
		}()
	}

	var writersWG sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range perWriter {
				name := fmt.Sprintf("%s.w%d_%d", prefix, w, i)
				errs <- events.Register(events.Schema{Name: name, Description: "concurrency probe"})
				// Every writer also races on one shared name: exactly one wins.
				errs <- events.Register(events.Schema{Name: prefix + ".shared", Description: "contended"})
			}
		}()
	}
	writersWG.Wait()
	close(stop)
	wg.Wait()
	close(errs)

	ok, dup := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, events.ErrEventRegistered):
			dup++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Equal(t, writers*perWriter+1, ok)
	require.Equal(t, writers*perWriter-1, dup)
	for w := range writers {
		for i := range perWriter {
			_, found := events.Lookup(fmt.Sprintf("%s.w%d_%d", prefix, w, i))
			require.True(t, found)
		}
	}
}

// FuzzRegisterName checks Register's name checker: it never panics, it
// accepts exactly the documented grammar outside the reserved namespaces,
// and its refusals wrap ErrInvalidSchema.
func FuzzRegisterName(f *testing.F) {
	for _, seed := range []string{
		"order.shipped", "acme.a.b.c", "a.b", "a", "", ".", "a..b", "a.b.", "A.b", "a b.c", "task.x",
		"db.x", "a.b\x00", "\u00e9.b", "a_1.b_2", "a.-", "sextant.x", "a.b\n", "database", "test.x.y",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := events.CheckCustomName(name)
		want := checkNameGrammar(name) == nil && !isBuiltinName(name)
		switch {
		case err == nil && !want:
			t.Fatalf("accepted %q, which is outside the grammar or reserved", name)
		case err != nil && want:
			t.Fatalf("refused %q, which matches the grammar outside reserved namespaces: %v", name, err)
		case err != nil && !errors.Is(err, events.ErrInvalidSchema):
			t.Fatalf("refusal of %q does not wrap ErrInvalidSchema: %v", name, err)
		}
	})
}

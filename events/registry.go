package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrEventRegistered is returned by Register for a name already in the catalog.
var ErrEventRegistered = errors.New("event already in the catalog")

// ErrInvalidSchema is returned by Register for a schema that cannot be
// registered: a malformed or reserved name, or malformed fields.
var ErrInvalidSchema = errors.New("invalid event schema")

// reserved are the first name segments of Sextant's own groups; custom events
// live outside them so that a future catalog event can never collide with an
// application's. "test" is kept free for test doubles.
var reserved = []string{
	"task", "step", "workflow", "observability", "worker", "queue", "db",
	"database", "resilience", "telemetry", "plugin", "performance", "memory", "sextant", "test",
}

// builtinGroups are the groups of the built-in catalog; custom events may
// not join them, so that a subscription to a built-in group sees only
// Sextant's events.
var builtinGroups = []string{
	GroupTask, GroupStep, GroupWorkflow, GroupObservability, GroupWorker, GroupQueue,
	GroupDatabase, GroupResilience, GroupTelemetry, GroupPlugin, GroupPerformance,
}

// ReservedNamespaces returns the first name segments that Register refuses.
func ReservedNamespaces() []string { return slices.Clone(reserved) }

// catalogState is immutable once published: readers load it without locks,
// Register copies it.
type catalogState struct {
	list   []Schema
	byName map[string]int
	names  []string // sorted
}

var (
	current    atomic.Pointer[catalogState]
	registerMu sync.Mutex // serialises Register's copy-and-swap
)

func init() { current.Store(newCatalogState(slices.Clone(builtin))) }

func newCatalogState(list []Schema) *catalogState {
	st := &catalogState{list: list, byName: make(map[string]int, len(list)), names: make([]string, len(list))}
	for i, s := range list {
		// Clipped, so that a caller appending to a looked-up schema's Fields
		// copies instead of writing into memory other callers share.
		list[i].Fields = slices.Clip(s.Fields)
		st.byName[s.Name] = i
		st.names[i] = s.Name
	}
	slices.Sort(st.names)
	return st
}

// Lookup returns the catalog schema of the event called name.
func Lookup(name string) (Schema, bool) {
	st := current.Load()
	i, ok := st.byName[name]
	if !ok {
		return Schema{}, false
	}
	return st.list[i], true
}

// Catalog returns every schema in the catalog: the built-in events grouped
// in lifecycle order, then registered custom events in registration order.
// The slice is a copy; the schemas' Fields must not be modified.
func Catalog() []Schema { return slices.Clone(current.Load().list) }

// Names returns the catalog's event names, sorted.
func Names() []string { return slices.Clone(current.Load().names) }

// InGroup returns the schemas of one group, in catalog order.
func InGroup(group string) []Schema {
	var out []Schema
	for _, s := range current.Load().list {
		if s.Group == group {
			out = append(out, s)
		}
	}
	return out
}

// Groups returns the catalog's groups in catalog order.
func Groups() []string {
	var out []string
	for _, s := range current.Load().list {
		if !slices.Contains(out, s.Group) {
			out = append(out, s.Group)
		}
	}
	return out
}

// IsInfrastructure reports whether name is a database, messaging or
// telemetry-export event: Sextant describing its own machinery. The bus does
// not describe messages made only of these, so that a scrape or a bus
// message never causes another one.
func IsInfrastructure(name string) bool {
	return strings.HasPrefix(name, "db.") || strings.HasPrefix(name, "queue.") || strings.HasPrefix(name, "telemetry.")
}

// Register adds an application's own event to the catalog, so that it can be
// published, validated, routed and subscribed to like a built-in one. The
// name is two or more dot-separated lower-case segments ([a-z0-9_]) whose
// first segment is not reserved (see ReservedNamespaces). Group defaults to
// "custom" and may be an application's own one-segment group, but not a
// built-in one; Version defaults to 1 and Source to "application". External
// is always set: Sextant's own code never publishes a custom event. Field
// names are [a-z_][a-z0-9_]* (they may become metric labels), unique, and
// do not shadow the envelope. Registering a name twice is an error wrapping
// ErrEventRegistered, even with the same schema, so that two packages cannot
// silently share a name; any other refusal wraps ErrInvalidSchema.
//
// Register is safe for concurrent use with itself and with every reader
// (Lookup, Catalog, Names, InGroup, Groups). The catalog is process-wide, and
// a registered event cannot be removed.
//
// Routers compile the catalog when they start: register custom events before
// loading the configuration that routes them.
func Register(s Schema) error {
	if err := checkCustom(&s); err != nil {
		return fmt.Errorf("events: register %q: %w", s.Name, err)
	}
	registerMu.Lock()
	defer registerMu.Unlock()
	old := current.Load()
	if _, ok := old.byName[s.Name]; ok {
		return fmt.Errorf("events: register %q: %w", s.Name, ErrEventRegistered)
	}
	s.Fields = slices.Clone(s.Fields)
	current.Store(newCatalogState(append(slices.Clip(old.list), s)))
	return nil
}

func checkCustom(s *Schema) error {
	if err := checkName(s.Name); err != nil {
		return err
	}
	if first, _, _ := strings.Cut(s.Name, "."); slices.Contains(reserved, first) {
		return fmt.Errorf("%w: namespace %q is reserved for Sextant's own events", ErrInvalidSchema, first)
	}
	switch {
	case s.Group == "":
		s.Group = GroupCustom
	case s.Group == GroupCustom:
	case slices.Contains(builtinGroups, s.Group) || slices.Contains(reserved, s.Group):
		return fmt.Errorf("%w: group %q belongs to Sextant's own events", ErrInvalidSchema, s.Group)
	case !isIdent(s.Group):
		return fmt.Errorf("%w: group %q must match [a-z_][a-z0-9_]*", ErrInvalidSchema, s.Group)
	}
	if s.Version == 0 {
		s.Version = 1
	}
	if strings.TrimSpace(s.Source) == "" {
		s.Source = "application"
	}
	s.External = true
	if strings.TrimSpace(s.Description) == "" {
		return fmt.Errorf("%w: description is empty", ErrInvalidSchema)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		switch {
		case f.Name == "":
			return fmt.Errorf("%w: a field has no name", ErrInvalidSchema)
		case !isIdent(f.Name):
			return fmt.Errorf("%w: field %q must match [a-z_][a-z0-9_]*", ErrInvalidSchema, f.Name)
		case f.Name == FieldCorrelationID || f.Name == FieldEventName:
			return fmt.Errorf("%w: field %q shadows the envelope", ErrInvalidSchema, f.Name)
		case seen[f.Name]:
			return fmt.Errorf("%w: field %q appears twice", ErrInvalidSchema, f.Name)
		case f.Type < KindString || f.Type > KindBool:
			return fmt.Errorf("%w: field %q has no type", ErrInvalidSchema, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// checkName accepts lower-case dotted names of two or more segments.
func checkName(name string) error {
	segs := strings.Split(name, ".")
	if len(segs) < 2 {
		return fmt.Errorf("%w: name must have at least two dot-separated segments, e.g. order.shipped", ErrInvalidSchema)
	}
	for _, seg := range segs {
		if seg == "" {
			return fmt.Errorf("%w: name has an empty segment", ErrInvalidSchema)
		}
		for _, r := range seg {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
				return fmt.Errorf("%w: name may hold only a-z, 0-9, _ and dots, found %q", ErrInvalidSchema, r)
			}
		}
	}
	return nil
}

// isIdent reports whether s matches [a-z_][a-z0-9_]*, the shape of a
// Prometheus label name in lower case.
func isIdent(s string) bool {
	for i, r := range s {
		if (r < 'a' || r > 'z') && r != '_' && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

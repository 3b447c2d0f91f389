package traces

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/exporters"
)

// SchemaVersion is the value of the "schema" member of every line the JSON
// exporter writes. A change that renames, removes or retypes a member gets
// a new version; adding members does not.
const SchemaVersion = "sextant.span/v1"

// JSONExporter writes each span as one line of JSON, schema
// sextant.span/v1:
//
//	{"schema":"sextant.span/v1",
//	 "trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"<16 hex>",
//	 "name":"...","kind":"internal|server|client|producer|consumer",
//	 "start_time":"<RFC 3339, ns, UTC>","end_time":"...","duration_ms":1.5,
//	 "status":{"code":"unset|ok|error","message":"..."},
//	 "attributes":{"key":value},
//	 "events":[{"name":"...","time":"...","attributes":{},"dropped_attributes":1}],
//	 "links":[{"trace_id":"...","span_id":"...","attributes":{},"dropped_attributes":1}],
//	 "resource":{"service.name":"sextant"},
//	 "scope":{"name":"...","version":"..."},
//	 "dropped":{"attributes":1,"events":0,"links":0}}
//
// parent_span_id is omitted for a root span, status.message when empty,
// events and links when there are none, their attributes when empty, their
// dropped_attributes when zero, scope.version when empty, and dropped when
// all three counts are zero. attributes and resource are always present.
// Object members are in that order; attribute keys are sorted.
//
// Attribute values keep their type: booleans, numbers and strings as
// themselves, arrays as arrays, maps as objects, byte arrays as base64
// strings, empty values as null; NaN and ±Inf, which JSON lacks, as the
// strings "NaN", "Infinity" and "-Infinity".
//
// Each ExportSpans call makes exactly one Write with all its lines, so that
// lines from different batches never interleave. Its methods are safe for
// concurrent use.
type JSONExporter struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer // nil: the writer is not ours to close
	buf    bytes.Buffer
	done   bool
}

var _ sdktrace.SpanExporter = (*JSONExporter)(nil)

// NewJSONExporter returns an exporter that writes to w. Shutdown does not
// close w.
func NewJSONExporter(w io.Writer) *JSONExporter {
	return &JSONExporter{w: w}
}

// openJSONFile opens path for appending, creating it with mode 0644, and
// returns an exporter whose Shutdown closes it.
func openJSONFile(path string) (*JSONExporter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &JSONExporter{w: f, closer: f}, nil
}

// ExportSpans writes spans, one line each, in a single Write. The context is
// not consulted: a write to a file or terminal cannot be abandoned half way.
// It keeps nothing after returning, does not retry, and returns an error
// wrapping exporters.ErrShutdown after Shutdown.
func (e *JSONExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return fmt.Errorf("json span exporter: %w", exporters.ErrShutdown)
	}
	if len(spans) == 0 {
		return nil
	}
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	for _, s := range spans {
		if err := enc.Encode(newJSONSpan(s)); err != nil {
			return fmt.Errorf("json span exporter: encode span %q: %w", s.Name(), err)
		}
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return fmt.Errorf("json span exporter: write: %w", err)
	}
	return nil
}

// Shutdown closes the file the exporter opened, if any. Later calls, and
// later ExportSpans, do nothing but return nil and an error respectively.
// The context is not consulted.
func (e *JSONExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return nil
	}
	e.done = true
	e.buf = bytes.Buffer{}
	if e.closer != nil {
		if err := e.closer.Close(); err != nil {
			return fmt.Errorf("json span exporter: close: %w", err)
		}
	}
	return nil
}

// The wire form of sextant.span/v1; see JSONExporter.
type (
	jsonSpan struct {
		Schema       string         `json:"schema"`
		TraceID      string         `json:"trace_id"`
		SpanID       string         `json:"span_id"`
		ParentSpanID string         `json:"parent_span_id,omitempty"`
		Name         string         `json:"name"`
		Kind         string         `json:"kind"`
		StartTime    string         `json:"start_time"`
		EndTime      string         `json:"end_time"`
		DurationMS   float64        `json:"duration_ms"`
		Status       jsonStatus     `json:"status"`
		Attributes   map[string]any `json:"attributes"`
		Events       []jsonEvent    `json:"events,omitempty"`
		Links        []jsonLink     `json:"links,omitempty"`
		Resource     map[string]any `json:"resource"`
		Scope        jsonScope      `json:"scope"`
		Dropped      *jsonDropped   `json:"dropped,omitempty"`
	}
	jsonStatus struct {
		Code    string `json:"code"`
		Message string `json:"message,omitempty"`
	}
	jsonEvent struct {
		Name       string         `json:"name"`
		Time       string         `json:"time"`
		Attributes map[string]any `json:"attributes,omitempty"`
		Dropped    int            `json:"dropped_attributes,omitempty"`
	}
	jsonLink struct {
		TraceID    string         `json:"trace_id"`
		SpanID     string         `json:"span_id"`
		Attributes map[string]any `json:"attributes,omitempty"`
		Dropped    int            `json:"dropped_attributes,omitempty"`
	}
	jsonScope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	jsonDropped struct {
		Attributes int `json:"attributes"`
		Events     int `json:"events"`
		Links      int `json:"links"`
	}
)

func newJSONSpan(s sdktrace.ReadOnlySpan) jsonSpan {
	sc := s.SpanContext()
	out := jsonSpan{
		Schema:     SchemaVersion,
		TraceID:    sc.TraceID().String(),
		SpanID:     sc.SpanID().String(),
		Name:       s.Name(),
		Kind:       kindName(s.SpanKind()),
		StartTime:  jsonTime(s.StartTime()),
		EndTime:    jsonTime(s.EndTime()),
		DurationMS: float64(s.EndTime().Sub(s.StartTime())) / float64(time.Millisecond),
		Status:     jsonStatus{Code: statusName(s.Status().Code), Message: s.Status().Description},
		Attributes: jsonAttributes(s.Attributes()),
		Scope:      jsonScope{Name: s.InstrumentationScope().Name, Version: s.InstrumentationScope().Version},
	}
	if p := s.Parent(); p.SpanID().IsValid() {
		out.ParentSpanID = p.SpanID().String()
	}
	if out.Attributes == nil {
		out.Attributes = map[string]any{}
	}
	for _, e := range s.Events() {
		out.Events = append(out.Events, jsonEvent{
			Name:       e.Name,
			Time:       jsonTime(e.Time),
			Attributes: jsonAttributes(e.Attributes),
			Dropped:    e.DroppedAttributeCount,
		})
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, jsonLink{
			TraceID:    l.SpanContext.TraceID().String(),
			SpanID:     l.SpanContext.SpanID().String(),
			Attributes: jsonAttributes(l.Attributes),
			Dropped:    l.DroppedAttributeCount,
		})
	}
	out.Resource = map[string]any{}
	if r := s.Resource(); r != nil {
		for it := r.Iter(); it.Next(); {
			kv := it.Attribute()
			out.Resource[string(kv.Key)] = jsonValue(kv.Value)
		}
	}
	if d := (jsonDropped{s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks()}); d != (jsonDropped{}) {
		out.Dropped = &d
	}
	return out
}

func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func kindName(k trace.SpanKind) string {
	switch k {
	case trace.SpanKindServer:
		return "server"
	case trace.SpanKindClient:
		return "client"
	case trace.SpanKindProducer:
		return "producer"
	case trace.SpanKindConsumer:
		return "consumer"
	default: // the SDK turns unspecified into internal too
		return "internal"
	}
}

func statusName(c codes.Code) string {
	switch c {
	case codes.Ok:
		return "ok"
	case codes.Error:
		return "error"
	default:
		return "unset"
	}
}

// jsonAttributes returns nil for no attributes. A later duplicate key wins,
// as it does in the SDK.
func jsonAttributes(kvs []attribute.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = jsonValue(kv.Value)
	}
	return m
}

// jsonValue maps an attribute value to what encoding/json writes with its
// type kept; see JSONExporter.
func jsonValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return v.AsInt64()
	case attribute.FLOAT64:
		return jsonFloat(v.AsFloat64())
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOLSLICE:
		return v.AsBoolSlice()
	case attribute.INT64SLICE:
		return v.AsInt64Slice()
	case attribute.FLOAT64SLICE:
		fs := v.AsFloat64Slice()
		out := make([]any, len(fs))
		for i, f := range fs {
			out[i] = jsonFloat(f)
		}
		return out
	case attribute.STRINGSLICE:
		return v.AsStringSlice()
	case attribute.BYTESLICE:
		return base64.StdEncoding.EncodeToString(v.AsByteSlice())
	case attribute.SLICE:
		vs := v.AsSlice()
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = jsonValue(e)
		}
		return out
	case attribute.MAP:
		if m := jsonAttributes(v.AsMap()); m != nil {
			return m
		}
		return map[string]any{}
	default: // EMPTY, and any type added later
		return nil
	}
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

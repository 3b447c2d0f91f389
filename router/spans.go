package router

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/internal/redact"
)

// Why a span ended: the values of the reason label of
// sextant_router_spans_ended_total.
const (
	EndEvent       = "end_event"    // its end event arrived
	EndParentEnded = "parent_ended" // its parent ended first
	EndExpired     = "expired"      // it waited longer than open_span_ttl
	EndEvicted     = "evicted"      // max_open_spans was reached and it was the oldest
	EndShutdown    = "shutdown"     // the router shut down while it was open
)

// EndReasonKey is the attribute that says why a span ended when it was not
// its end event.
const EndReasonKey = attribute.Key("sextant.span.end_reason")

// spanBinding is one compiled span rule of one route.
type spanBinding struct {
	op       spanOp
	name     string
	idx      uint32 // rule number in the config, mixed into span ids
	key      source
	parents  []parentRef
	kind     trace.SpanKind
	duration source  // srcNone: no duration
	scale    float64 // nanoseconds per duration unit
	all      bool    // every field becomes an attribute
	attrs    []attrSource
	status   *statusRule
	ratio    float64 // < 0: the global ratio
	when     *filter
	// fromEnd, on end rules with a duration, says how to record the span
	// when its start event never arrived: the start rule's parents and kind.
	fromEnd   *spanBinding
	endRecord bool // this is a fromEnd binding
	route     int  // index of its route in the config
}

type parentRef struct {
	name string
	key  source
}

type attrSource struct {
	key attribute.Key
	src source
}

type statusRule struct {
	code    codes.Code
	field   source // srcNone: code is fixed
	errors  []string
	message source
}

// compileSpans builds the span bindings of route i.
func compileSpans(r Route, when *filter, base uint32) []*spanBinding {
	var out []*spanBinding
	for j, s := range r.Spans {
		op, name := s.op()
		b := &spanBinding{op: op, name: name, idx: base + uint32(j), key: newSource(s.Key), kind: spanKind(s.Kind),
			duration: newSource(s.Duration), scale: durationUnits[s.DurationUnit], ratio: -1, when: when, all: s.Attributes == nil}
		for _, p := range s.Parent {
			b.parents = append(b.parents, parentRef{name: p.Span, key: newSource(p.Key)})
		}
		if s.SampleRatio != nil {
			b.ratio = *s.SampleRatio
		}
		for _, a := range sortedKeys(s.Attributes) {
			b.attrs = append(b.attrs, attrSource{key: attribute.Key(a), src: newSource(s.Attributes[a])})
		}
		if st := s.Status; st != nil {
			sr := &statusRule{field: newSource(st.Field), errors: st.Error, message: newSource(st.Message)}
			switch st.Code {
			case "ok":
				sr.code = codes.Ok
			case "error":
				sr.code = codes.Error
			}
			b.status = sr
		}
		out = append(out, b)
	}
	return out
}

// linkEndRules gives every end rule with a duration the parents and kind
// of the first start rule of its span.
func linkEndRules(all []*spanBinding) {
	for _, b := range all {
		if b.op != opEnd || b.duration.kind == srcNone {
			continue
		}
		for _, s := range all {
			if s.op == opStart && s.name == b.name {
				b.fromEnd = &spanBinding{op: opRecord, endRecord: true, name: b.name, idx: b.idx, parents: s.parents, kind: s.kind,
					duration: b.duration, scale: b.scale, all: b.all, attrs: b.attrs, status: b.status, ratio: s.ratio}
				break
			}
		}
	}
}

func spanKind(s string) trace.SpanKind {
	switch s {
	case "server":
		return trace.SpanKindServer
	case "client":
		return trace.SpanKindClient
	case "producer":
		return trace.SpanKindProducer
	case "consumer":
		return trace.SpanKindConsumer
	}
	return trace.SpanKindInternal
}

// spanKey identifies an open span: its name and key within one trace.
type spanKey struct {
	name  string
	trace events.ID
	key   string
}

// openSpan is a span waiting for its end event. Spans of one shard form a
// list in the order they opened, which with one TTL is the order they
// expire in. Its fields after sc are guarded by its shard's lock.
type openSpan struct {
	key     spanKey
	sc      trace.SpanContext
	parent  trace.SpanContext // the parent's context, open or not (remote, from the event's envelope)
	kind    trace.SpanKind
	start   time.Time
	attrs   []attribute.KeyValue // nil when not sampled
	links   []sdktrace.Link      // the publisher's span, when of another trace
	ctx     context.Context      // carries sc, for exemplars; nil when not sampled
	events  []sdktrace.Event
	dropped int       // span events past maxSpanEvents
	opened  time.Time // router clock

	up         *openSpan // the open parent, for cascading ends
	kids       []*openSpan
	prev, next *openSpan
}

// exemplar is the span as the metrics of its events' carry it.
func (os *openSpan) exemplar() exemplar { return exemplar{sc: os.sc, ctx: os.ctx} }

// maxSpanEvents bounds the span events one span keeps, as the SDK's default
// span limits do; the rest are counted in the span's dropped events.
const maxSpanEvents = 128

// spanShards is the number of independently locked parts of the open-span
// table; a trace lives in one, so parents and children share a lock.
const spanShards = 16

type spanShard struct {
	mu         sync.Mutex
	open       map[spanKey]*openSpan
	head, tail *openSpan
	_          [40]byte // keep shards on separate cache lines
}

// fieldInfo is what the router knows of a field name: its attribute key (a
// string that does not share an event batch's buffer) and whether it is
// sensitive.
type fieldInfo struct {
	key       attribute.Key
	sensitive bool
}

// tracing is the router's span machinery. It makes spans itself rather than
// through the OpenTelemetry SDK's tracer: spans from events are records of
// what already happened, with their own times, ids and parents, and the
// SDK's tracer cost ten times the metrics path per event (docs/benchmarks.md).
// Finished, sampled spans go to the span processor's OnEnd as read-only
// spans; OnStart is never called.
type tracing struct {
	proc   sdktrace.SpanProcessor
	res    *resource.Resource
	scope  instrumentation.Scope
	ttl    time.Duration
	limit  int // per shard
	redact redact.Keys
	global float64
	now    func() time.Time
	fields map[string]fieldInfo // catalog field names, read-only
	names  map[string]string    // catalog event names, interned
	shards [spanShards]spanShard

	started, recorded, recordedFromEnd, spanEvents atomic.Uint64 // recorded: by record rules only
	afterClose                                     atomic.Uint64
	closed                                         atomic.Bool      // closeAll ran: no new span
	ended                                          [5]atomic.Uint64 // by endReasons index
	unmatchedEnd, unmatchedEvent, duplicateStart   atomic.Uint64
	openCount                                      atomic.Int64
}

var endReasons = [...]string{EndEvent, EndParentEnded, EndExpired, EndEvicted, EndShutdown}

const (
	iEndEvent = iota
	iParentEnded
	iExpired
	iEvicted
	iShutdown
)

func newTracing(cfg TraceConfig, set Settings, now func() time.Time) *tracing {
	t := &tracing{proc: set.SpanProcessor, res: set.Resource, scope: instrumentation.Scope{Name: ScopeName},
		ttl: cfg.OpenSpanTTL, now: now, global: 1, fields: map[string]fieldInfo{}, names: map[string]string{}}
	if t.res == nil {
		t.res = resource.Default()
	}
	if t.ttl == 0 {
		t.ttl = DefaultOpenSpanTTL
	}
	limit := cfg.MaxOpenSpans
	if limit == 0 {
		limit = DefaultMaxOpenSpans
	}
	t.limit = max(1, limit/spanShards)
	if cfg.SampleRatio != nil {
		t.global = *cfg.SampleRatio
	}
	t.redact = redact.NewKeys(cfg.SensitiveKeys)
	for i := range t.shards {
		t.shards[i].open = map[spanKey]*openSpan{}
	}
	for _, s := range events.Catalog() {
		t.names[s.Name] = s.Name
		for _, f := range s.Fields {
			t.fields[f.Name] = fieldInfo{key: attribute.Key(f.Name), sensitive: t.sensitiveName(f.Name)}
		}
	}
	return t
}

// deriveSpanID hashes an event id and a rule number (FNV-1a) into a span
// id: the same event redelivered makes the same span id, so a backend sees
// one span, not two.
func deriveSpanID(id events.ID, rule uint32) trace.SpanID {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range id {
		h = (h ^ uint64(b)) * prime
	}
	for i := range 4 {
		h = (h ^ uint64(byte(rule>>(8*i)))) * prime
	}
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], h|1) // never the invalid all-zero id
	return s
}

// keepTrace decides by the trace id's random bits whether a root span is
// kept at ratio; its children follow it, so a trace is whole or absent.
//
// The trace id is a UUIDv7 correlation id: its first 48 bits are a
// timestamp and two bits of byte 8 are the variant, fixed. The decision
// reads the 62 random bits after the variant; OpenTelemetry's
// TraceIDRatioBased reads bytes 8–15 whole and would keep a skewed share.
func keepTrace(id trace.TraceID, ratio float64) bool {
	switch {
	case ratio >= 1:
		return true
	case ratio <= 0:
		return false
	}
	const span = 1 << 62
	x := binary.BigEndian.Uint64(id[8:]) & (span - 1)
	return float64(x) < ratio*span
}

func (t *tracing) shard(id events.ID) *spanShard { return &t.shards[id[15]%spanShards] }

// handle applies the span rules bs to e and returns the span context the
// event belongs to (the last span it touched) and whether any rule's when
// let it through.
func (t *tracing) handle(e *events.Event, bs []*spanBinding, missing *atomic.Uint64) (exemplar, bool) {
	if e.CorrelationID == (events.ID{}) { // no trace to put a span in
		if spanRulesPass(e, bs) {
			missing.Add(1)
			return exemplar{}, true
		}
		return exemplar{}, false
	}
	var ex exemplar
	matched := false
	var when *filter
	pass := true
	for _, b := range bs {
		if b.when != nil {
			if b.when != when {
				when, pass = b.when, b.when.match(e)
			}
			if !pass {
				continue
			}
		}
		matched = true
		var got exemplar
		var ok bool
		switch b.op {
		case opStart:
			got, ok = t.start(b, e)
		case opEnd:
			got, ok = t.end(b, e)
		case opRecord:
			got, ok = t.record(b, e)
		case opEvent:
			got, ok = t.event(b, e)
		}
		if !ok {
			missing.Add(1)
			continue
		}
		if got.sc.IsValid() {
			ex = got
		}
	}
	return ex, matched
}

// spanRulesPass reports whether any rule of bs lets e through its when.
func spanRulesPass(e *events.Event, bs []*spanBinding) bool {
	for _, b := range bs {
		if b.when == nil || b.when.match(e) {
			return true
		}
	}
	return false
}

// keyText is the text of src in e, or false when e lacks the field. The
// text may share e's batch buffer.
func keyText(e *events.Event, src source) (string, bool) {
	switch src.kind {
	case srcCorrelationID:
		return e.CorrelationID.String(), true
	case srcEventName:
		return e.Name, true
	case srcAttr:
		v, ok := e.Attr(src.field)
		if !ok {
			return "", false
		}
		if v.Kind() == events.KindString {
			return v.Str(), true
		}
		return string(v.AppendText(nil)), true
	}
	return "", false
}

// findParent returns the first candidate parent that is open. The caller
// holds sh.mu.
func (sh *spanShard) findParent(e *events.Event, refs []parentRef) *openSpan {
	for _, p := range refs {
		k, ok := keyText(e, p.key)
		if !ok {
			continue
		}
		if os := sh.open[spanKey{name: p.name, trace: e.CorrelationID, key: k}]; os != nil {
			return os
		}
	}
	return nil
}

// publisherParent is what a root span takes from the span its event was
// published in (Event.Parent): that span as its remote parent when it is of
// the same trace — the publisher uses the correlation id as its trace id —
// or else a link to it.
func publisherParent(e *events.Event) (trace.SpanContext, []sdktrace.Link) {
	p := e.Parent
	if !p.IsValid() {
		return trace.SpanContext{}, nil
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: p.TraceID, SpanID: p.SpanID,
		TraceFlags: trace.TraceFlags(p.Flags) & trace.FlagsSampled, Remote: true})
	if p.TraceID == trace.TraceID(e.CorrelationID) {
		return sc, nil
	}
	return trace.SpanContext{}, []sdktrace.Link{{SpanContext: sc}}
}

// newContext is the span context of a span that e makes through rule b,
// under parent (invalid: a root, sampled by ratio).
func newContext(e *events.Event, b *spanBinding, parent trace.SpanContext, global float64) trace.SpanContext {
	ratio := global
	if b.ratio >= 0 {
		ratio = b.ratio
	}
	var flags trace.TraceFlags
	switch {
	case parent.IsValid():
		flags = parent.TraceFlags() & trace.FlagsSampled
	case keepTrace(trace.TraceID(e.CorrelationID), ratio):
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(e.CorrelationID), SpanID: deriveSpanID(e.ID, b.idx), TraceFlags: flags})
}

func (t *tracing) start(b *spanBinding, e *events.Event) (exemplar, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return exemplar{}, false
	}
	if t.closed.Load() { // nothing would ever end it
		t.afterClose.Add(1)
		return exemplar{}, true
	}
	key := spanKey{name: b.name, trace: e.CorrelationID, key: k}
	now := t.now()
	sh := t.shard(e.CorrelationID)
	sh.mu.Lock()
	gone := sh.expire(now, t.ttl, nil)
	if os := sh.open[key]; os != nil {
		sh.mu.Unlock()
		t.finishAll(gone, iExpired, now)
		t.duplicateStart.Add(1)
		return os.exemplar(), true
	}
	up := sh.findParent(e, b.parents)
	var psc trace.SpanContext
	var links []sdktrace.Link
	if up != nil {
		psc = up.sc
	} else {
		psc, links = publisherParent(e)
	}
	key.key = strings.Clone(k)
	os := &openSpan{key: key, sc: newContext(e, b, psc, t.global), parent: psc, links: links, kind: b.kind, start: e.Time, opened: now, up: up}
	if up != nil {
		up.kids = append(up.kids, os)
	}
	sh.push(os)
	var evicted []*openSpan
	if len(sh.open) > t.limit {
		evicted = sh.popHead(nil)
	}
	if os.sc.IsSampled() {
		os.attrs = t.attributes(e, b, nil)
		os.ctx = trace.ContextWithSpanContext(context.Background(), os.sc)
	}
	sh.mu.Unlock()
	t.started.Add(1)
	t.openCount.Add(1)
	t.finishAll(gone, iExpired, now)
	t.finishAll(evicted, iEvicted, now)
	return os.exemplar(), true
}

func (t *tracing) end(b *spanBinding, e *events.Event) (exemplar, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return exemplar{}, false
	}
	now := t.now()
	sh := t.shard(e.CorrelationID)
	sh.mu.Lock()
	gone := sh.expire(now, t.ttl, nil)
	os := sh.open[spanKey{name: b.name, trace: e.CorrelationID, key: k}]
	var closed []*openSpan
	if os != nil {
		closed = sh.detach(os, nil)
	}
	sh.mu.Unlock()
	t.finishAll(gone, iExpired, now)
	if os == nil {
		if b.fromEnd != nil {
			ex, ok := t.record(b.fromEnd, e)
			if ok {
				t.recordedFromEnd.Add(1)
			}
			return ex, ok
		}
		t.unmatchedEnd.Add(1)
		return exemplar{}, true
	}
	// closed[0] is os; the rest are its open descendants, which end with it.
	t.ended[iEndEvent].Add(1)
	t.openCount.Add(-1)
	end := notBefore(e.Time, os.start)
	if os.sc.IsSampled() {
		st := sdktrace.Status{}
		if b.status != nil {
			st.Code, st.Description = b.status.decide(t, e)
		}
		t.emit(os.finish(b.name, end, t.attributes(e, b, os.attrs), st, t))
	}
	for _, kid := range closed[1:] {
		t.finish(kid, iParentEnded, end)
	}
	return os.exemplar(), true
}

func (t *tracing) record(b *spanBinding, e *events.Event) (exemplar, bool) {
	d, ok := e.Attr(b.duration.field)
	if !ok {
		return exemplar{}, false
	}
	if t.closed.Load() { // the processor has been flushed for the last time
		t.afterClose.Add(1)
		return exemplar{}, true
	}
	dur := spanDuration(d.Float64(), b.scale)
	if since := e.Time.Sub(unixEpoch); dur > since && since > 0 {
		dur = since // no span starts before 1970: OTLP times are unsigned
	}
	var psc trace.SpanContext
	if len(b.parents) > 0 {
		sh := t.shard(e.CorrelationID)
		sh.mu.Lock()
		if p := sh.findParent(e, b.parents); p != nil {
			psc = p.sc
		}
		sh.mu.Unlock()
	}
	var links []sdktrace.Link
	if !psc.IsValid() {
		psc, links = publisherParent(e)
	}
	sc := newContext(e, b, psc, t.global)
	if !b.endRecord { // counted by end, once it succeeded
		t.recorded.Add(1)
	}
	if sc.IsSampled() {
		st := sdktrace.Status{}
		if b.status != nil {
			st.Code, st.Description = b.status.decide(t, e)
		}
		t.emit(&finishedSpan{name: b.name, sc: sc, parent: psc, links: links, kind: b.kind, start: e.Time.Add(-dur), end: e.Time,
			attrs: t.attributes(e, b, nil), status: st, res: t.res, scope: t.scope})
	}
	return exemplar{sc: sc}, true
}

func (t *tracing) event(b *spanBinding, e *events.Event) (exemplar, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return exemplar{}, false
	}
	sh := t.shard(e.CorrelationID)
	sh.mu.Lock()
	os := sh.open[spanKey{name: b.name, trace: e.CorrelationID, key: k}]
	if os == nil {
		sh.mu.Unlock()
		t.unmatchedEvent.Add(1)
		return exemplar{}, true
	}
	if os.sc.IsSampled() {
		if len(os.events) < maxSpanEvents {
			name, ok := t.names[e.Name]
			if !ok {
				name = strings.Clone(e.Name)
			}
			os.events = append(os.events, sdktrace.Event{Name: name, Time: e.Time, Attributes: t.attributes(e, b, nil)})
		} else {
			os.dropped++
		}
	}
	ex := os.exemplar()
	sh.mu.Unlock()
	t.spanEvents.Add(1)
	return ex, true
}

var unixEpoch = time.Unix(0, 0)

// spanDuration converts a duration field's value: negative and NaN values
// mean 0, and values past what a time.Duration holds are capped.
func spanDuration(v, scale float64) time.Duration {
	ns := v * scale
	switch {
	case !(ns > 0): // also NaN
		return 0
	case ns >= math.MaxInt64:
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// notBefore keeps a span's end from preceding its start when clocks differ
// between the processes that published its events.
func notBefore(end, start time.Time) time.Time {
	if end.Before(start) {
		return start
	}
	return end
}

// emit hands a finished span to the span processor.
func (t *tracing) emit(s *finishedSpan) { t.proc.OnEnd(s) }

// finish builds the finished form of an open span.
func (os *openSpan) finish(name string, end time.Time, attrs []attribute.KeyValue, st sdktrace.Status, t *tracing) *finishedSpan {
	return &finishedSpan{name: name, sc: os.sc, parent: os.parent, links: os.links, kind: os.kind, start: os.start, end: end,
		attrs: attrs, events: os.events, droppedEvents: os.dropped, status: st, res: t.res, scope: t.scope}
}

// finish ends an open span that did not get its end event, with an error
// status unless the router is shutting down.
func (t *tracing) finish(os *openSpan, reason int, at time.Time) {
	t.ended[reason].Add(1)
	t.openCount.Add(-1)
	if !os.sc.IsSampled() {
		return
	}
	st := sdktrace.Status{}
	switch reason {
	case iExpired:
		st = sdktrace.Status{Code: codes.Error, Description: "no end event within the open span TTL (router.traces.open_span_ttl)"}
	case iEvicted:
		st = sdktrace.Status{Code: codes.Error, Description: "open span limit (router.traces.max_open_spans) reached; ended without its end event"}
	}
	attrs := append(os.attrs[:len(os.attrs):len(os.attrs)], EndReasonKey.String(endReasons[reason]))
	t.emit(os.finish(os.key.name, notBefore(at, os.start), attrs, st, t))
}

func (t *tracing) finishAll(spans []*openSpan, reason int, at time.Time) {
	for _, os := range spans {
		t.finish(os, reason, at)
	}
}

// decide returns the status an event gives a span; a sensitive message
// field is redacted.
func (s *statusRule) decide(t *tracing, e *events.Event) (codes.Code, string) {
	code := s.code
	if s.field.kind != srcNone {
		code = codes.Ok
		if v, ok := keyText(e, s.field); ok && slices.Contains(s.errors, v) {
			code = codes.Error
		}
	}
	if code != codes.Error {
		return code, ""
	}
	msg, ok := keyText(e, s.message)
	if ok && s.message.kind == srcAttr && t.isSensitive(s.message.field) {
		return code, Redacted
	}
	return code, strings.Clone(msg)
}

// attributes returns dst and the span attributes b takes from e, sensitive
// fields redacted; one of e's replaces one of dst with the same key. The event's strings share its batch's buffer, so they
// are copied — all into one allocation.
func (t *tracing) attributes(e *events.Event, b *spanBinding, dst []attribute.KeyValue) []attribute.KeyValue {
	// Gather the values first: one scan of the event per declared field.
	type item struct {
		key       attribute.Key
		v         events.Value
		sensitive bool
	}
	var buf [16]item
	items := buf[:0]
	size := 0
	if b.all {
		for i := range e.Attrs {
			a := &e.Attrs[i]
			it := item{v: a.Value}
			if fi, ok := t.fields[a.Key]; ok {
				it.key, it.sensitive = fi.key, fi.sensitive
			} else {
				it.key, it.sensitive = attribute.Key(strings.Clone(a.Key)), t.sensitiveName(a.Key)
			}
			items = append(items, it)
		}
	} else {
		for _, a := range b.attrs {
			switch a.src.kind {
			case srcCorrelationID:
				items = append(items, item{key: a.key, v: events.StringValue(e.CorrelationID.String())})
			case srcEventName:
				items = append(items, item{key: a.key, v: events.StringValue(e.Name)})
			case srcAttr:
				if v, ok := e.Attr(a.src.field); ok {
					items = append(items, item{key: a.key, v: v, sensitive: t.isSensitive(a.src.field)})
				}
			}
		}
	}
	if len(items) == 0 {
		return dst
	}
	for _, it := range items {
		if !it.sensitive && it.v.Kind() == events.KindString {
			size += len(it.v.Str())
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, it := range items {
		if !it.sensitive && it.v.Kind() == events.KindString {
			sb.WriteString(it.v.Str())
		}
	}
	all := sb.String()
	out := make([]attribute.KeyValue, len(dst), len(dst)+len(items))
	copy(out, dst)
	off := 0
	for _, it := range items {
		switch {
		case it.sensitive:
			out = append(out, it.key.String(Redacted))
		case it.v.Kind() == events.KindInt:
			out = append(out, it.key.Int64(it.v.Int64()))
		case it.v.Kind() == events.KindFloat:
			out = append(out, it.key.Float64(it.v.Float64()))
		case it.v.Kind() == events.KindBool:
			out = append(out, it.key.Bool(it.v.Bool()))
		default:
			n := len(it.v.Str())
			out = append(out, it.key.String(all[off:off+n]))
			off += n
		}
	}
	if len(dst) > 0 { // an end event's fields replace the start's of the same name
		old, added := out[:len(dst)], out[len(dst):]
		kept := old[:0]
		for _, kv := range old {
			if !slices.ContainsFunc(added, func(a attribute.KeyValue) bool { return a.Key == kv.Key }) {
				kept = append(kept, kv)
			}
		}
		out = append(kept, added...)
	}
	return out
}

// isSensitive reports whether a field's value must not leave the router.
func (t *tracing) isSensitive(field string) bool {
	if fi, ok := t.fields[field]; ok {
		return fi.sensitive
	}
	return t.sensitiveName(field)
}

func (t *tracing) sensitiveName(field string) bool { return t.redact.Sensitive(field) }

// push appends os to the shard. The caller holds sh.mu.
func (sh *spanShard) push(os *openSpan) {
	sh.open[os.key] = os
	os.prev = sh.tail
	if sh.tail != nil {
		sh.tail.next = os
	} else {
		sh.head = os
	}
	sh.tail = os
}

// detach removes os and its open descendants from the shard and from its
// parent's children, and appends them to out, os first. The caller holds
// sh.mu.
func (sh *spanShard) detach(os *openSpan, out []*openSpan) []*openSpan {
	if p := os.up; p != nil {
		if i := slices.Index(p.kids, os); i >= 0 {
			p.kids = slices.Delete(p.kids, i, i+1)
		}
		os.up = nil
	}
	return sh.remove(os, out)
}

func (sh *spanShard) remove(os *openSpan, out []*openSpan) []*openSpan {
	delete(sh.open, os.key)
	if os.prev != nil {
		os.prev.next = os.next
	} else {
		sh.head = os.next
	}
	if os.next != nil {
		os.next.prev = os.prev
	} else {
		sh.tail = os.prev
	}
	os.prev, os.next = nil, nil
	out = append(out, os)
	for _, kid := range os.kids {
		kid.up = nil
		out = sh.remove(kid, out)
	}
	os.kids = nil
	return out
}

// expire detaches the spans that opened more than ttl before now, oldest
// first, without their descendants (those keep their own deadlines). The
// caller holds sh.mu.
func (sh *spanShard) expire(now time.Time, ttl time.Duration, out []*openSpan) []*openSpan {
	for sh.head != nil && now.Sub(sh.head.opened) > ttl {
		out = sh.popHead(out)
	}
	return out
}

// popHead detaches the oldest span alone: its open children stay, as roots
// of what remains open. The caller holds sh.mu.
func (sh *spanShard) popHead(out []*openSpan) []*openSpan {
	os := sh.head
	for _, kid := range os.kids {
		kid.up = nil
	}
	os.kids = nil
	return sh.detach(os, out)
}

// sweep ends every span past its TTL.
func (t *tracing) sweep() {
	now := t.now()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		gone := sh.expire(now, t.ttl, nil)
		sh.mu.Unlock()
		t.finishAll(gone, iExpired, now)
	}
}

// closeAll ends every open span (the router is shutting down) and flushes
// the span processor.
func (t *tracing) closeAll(ctx context.Context) error {
	t.closed.Store(true)
	now := t.now()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		var all []*openSpan
		for sh.head != nil {
			all = sh.detach(sh.head, all)
		}
		sh.mu.Unlock()
		t.finishAll(all, iShutdown, now)
	}
	return t.proc.ForceFlush(ctx)
}

// finishedSpan is a span the router made, in the form span processors and
// exporters read. Embedding the interface satisfies its unexported method,
// as the SDK's own tracetest.SpanStub does; every exported method is
// defined here.
type finishedSpan struct {
	sdktrace.ReadOnlySpan
	name          string
	sc, parent    trace.SpanContext
	kind          trace.SpanKind
	start, end    time.Time
	attrs         []attribute.KeyValue
	links         []sdktrace.Link
	events        []sdktrace.Event
	droppedEvents int
	status        sdktrace.Status
	res           *resource.Resource
	scope         instrumentation.Scope
}

func (s *finishedSpan) Name() string                                { return s.name }
func (s *finishedSpan) SpanContext() trace.SpanContext              { return s.sc }
func (s *finishedSpan) Parent() trace.SpanContext                   { return s.parent }
func (s *finishedSpan) SpanKind() trace.SpanKind                    { return s.kind }
func (s *finishedSpan) StartTime() time.Time                        { return s.start }
func (s *finishedSpan) EndTime() time.Time                          { return s.end }
func (s *finishedSpan) Attributes() []attribute.KeyValue            { return s.attrs }
func (s *finishedSpan) Links() []sdktrace.Link                      { return s.links }
func (s *finishedSpan) Events() []sdktrace.Event                    { return s.events }
func (s *finishedSpan) Status() sdktrace.Status                     { return s.status }
func (s *finishedSpan) InstrumentationScope() instrumentation.Scope { return s.scope }
func (s *finishedSpan) Resource() *resource.Resource                { return s.res }
func (s *finishedSpan) DroppedAttributes() int                      { return 0 }
func (s *finishedSpan) DroppedLinks() int                           { return 0 }
func (s *finishedSpan) DroppedEvents() int                          { return s.droppedEvents }
func (s *finishedSpan) ChildSpanCount() int                         { return 0 }

// InstrumentationLibrary is the deprecated form of InstrumentationScope,
// still part of the interface.
//
//lint:ignore SA1019 ReadOnlySpan still requires it
func (s *finishedSpan) InstrumentationLibrary() instrumentation.Library { return s.scope }

// SpanStats counts what the router did to traces.
type SpanStats struct {
	Started         uint64            // spans opened by start events
	Recorded        uint64            // finished spans made from one event (record rules, and end events whose start never arrived)
	RecordedFromEnd uint64            // of Recorded, those made from an end event
	Events          uint64            // span events added
	Ended           map[string]uint64 // spans ended, by reason (end_event, parent_ended, expired, evicted, shutdown)
	UnmatchedEnds   uint64            // end events whose span was not open (and could not be recorded)
	UnmatchedEvents uint64            // span events whose span was not open
	DuplicateStarts uint64            // start events for a span already open (ignored)
	AfterShutdown   uint64            // start and record rules refused after Shutdown ended every open span
	Open            int64             // spans waiting for their end event
}

func (t *tracing) stats() SpanStats {
	fromEnd := t.recordedFromEnd.Load()
	s := SpanStats{Started: t.started.Load(), Recorded: t.recorded.Load() + fromEnd, RecordedFromEnd: fromEnd, AfterShutdown: t.afterClose.Load(),
		Events: t.spanEvents.Load(), UnmatchedEnds: t.unmatchedEnd.Load(), UnmatchedEvents: t.unmatchedEvent.Load(),
		DuplicateStarts: t.duplicateStart.Load(), Open: t.openCount.Load(), Ended: map[string]uint64{}}
	for i, r := range endReasons {
		s.Ended[r] = t.ended[i].Load()
	}
	return s
}

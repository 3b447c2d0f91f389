package router

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sextant-telemetry/sextant/events"
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
	fromEnd *spanBinding
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
				b.fromEnd = &spanBinding{op: opRecord, name: b.name, idx: b.idx, parents: s.parents, kind: s.kind,
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
// expire in.
type openSpan struct {
	key        spanKey
	span       trace.Span
	sc         trace.SpanContext
	opened     time.Time // router clock
	parent     *openSpan
	kids       []*openSpan
	prev, next *openSpan
}

// spanShards is the number of independently locked parts of the open-span
// table; a trace lives in one, so parents and children share a lock.
const spanShards = 16

type spanShard struct {
	mu         sync.Mutex
	open       map[spanKey]*openSpan
	head, tail *openSpan
	_          [40]byte // keep shards on separate cache lines
}

// tracing is the router's span machinery: the tracer and the open spans.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	ttl    time.Duration
	limit  int // per shard
	redact []string
	global float64
	now    func() time.Time
	shards [spanShards]spanShard

	sensitive sync.Map // field name → bool, memoised

	started, recorded, recordedFromEnd, spanEvents atomic.Uint64
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
	t := &tracing{ttl: cfg.OpenSpanTTL, now: now, global: 1}
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
	t.redact = DefaultSensitiveKeys
	if cfg.SensitiveKeys != nil {
		t.redact = make([]string, len(cfg.SensitiveKeys))
		for i, k := range cfg.SensitiveKeys {
			t.redact[i] = strings.ToLower(strings.TrimSpace(k))
		}
	}
	for i := range t.shards {
		t.shards[i].open = map[spanKey]*openSpan{}
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(set.SpanProcessor),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSampler(sampler{global: t.global}),
	}
	if set.Resource != nil {
		opts = append(opts, sdktrace.WithResource(set.Resource))
	}
	t.tp = sdktrace.NewTracerProvider(opts...)
	t.tracer = t.tp.Tracer(ScopeName)
	return t
}

// idsKey carries the ids of the span about to start to idGenerator, and
// the ratio for sampler.
type idsKey struct{}

type spanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
	ratio float64 // < 0: the global ratio
}

// idGenerator makes a trace id from the correlation id and a span id from
// the event that makes the span: the same event redelivered makes the same
// span id, so a backend sees one span, not two.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if ids, ok := ctx.Value(idsKey{}).(*spanIDs); ok {
		return ids.trace, ids.span
	}
	return randomTraceID(), randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if ids, ok := ctx.Value(idsKey{}).(*spanIDs); ok {
		return ids.span
	}
	return randomSpanID()
}

func randomTraceID() (t trace.TraceID) {
	binary.LittleEndian.PutUint64(t[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(t[8:], rand.Uint64()|1)
	return t
}

func randomSpanID() (s trace.SpanID) {
	binary.LittleEndian.PutUint64(s[:], rand.Uint64()|1)
	return s
}

// deriveSpanID hashes an event id and a rule number into a span id.
func deriveSpanID(id events.ID, rule uint32) trace.SpanID {
	h := fnv.New64a()
	h.Write(id[:])
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], rule)
	h.Write(b[:])
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], h.Sum64()|1) // never the invalid all-zero id
	return s
}

// sampler keeps a root span when its trace id falls within the ratio and a
// child span when its parent was kept, so that a trace is whole or absent.
//
// The trace id is a UUIDv7 correlation id: its first 48 bits are a
// timestamp and two bits of byte 8 are the variant, fixed. The decision
// reads the 62 random bits after the variant; OpenTelemetry's
// TraceIDRatioBased reads bytes 8–15 whole and would keep a skewed share.
type sampler struct{ global float64 }

func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	if psc.IsValid() {
		d := sdktrace.Drop
		if psc.IsSampled() {
			d = sdktrace.RecordAndSample
		}
		return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
	}
	ratio := s.global
	if ids, ok := p.ParentContext.Value(idsKey{}).(*spanIDs); ok && ids.ratio >= 0 {
		ratio = ids.ratio
	}
	if keepTrace(p.TraceID, ratio) {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop}
}

func (s sampler) Description() string { return "SextantCorrelationRatio" }

// keepTrace decides by the trace id's random bits whether a trace is kept
// at ratio.
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
func (t *tracing) handle(ctx context.Context, e *events.Event, bs []*spanBinding, missing *atomic.Uint64) (trace.SpanContext, bool) {
	var sc trace.SpanContext
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
		var got trace.SpanContext
		var ok bool
		switch b.op {
		case opStart:
			got, ok = t.start(ctx, b, e)
		case opEnd:
			got, ok = t.end(ctx, b, e)
		case opRecord:
			got, ok = t.record(ctx, b, e)
		case opEvent:
			got, ok = t.event(b, e)
		}
		if !ok {
			missing.Add(1)
			continue
		}
		if got.IsValid() {
			sc = got
		}
	}
	return sc, matched
}

// keyText is the text of src in e, or false when e lacks the field.
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

// startCtx is the context a span starts in: its ids, and its parent or
// none (whatever span the caller's ctx carried is not the event's).
func startCtx(ctx context.Context, e *events.Event, b *spanBinding, parent trace.SpanContext) context.Context {
	ids := &spanIDs{trace: trace.TraceID(e.CorrelationID), span: deriveSpanID(e.ID, b.idx), ratio: b.ratio}
	return context.WithValue(trace.ContextWithSpanContext(ctx, parent), idsKey{}, ids)
}

func (t *tracing) start(ctx context.Context, b *spanBinding, e *events.Event) (trace.SpanContext, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return trace.SpanContext{}, false
	}
	key := spanKey{name: b.name, trace: e.CorrelationID, key: strings.Clone(k)}
	now := t.now()
	sh := t.shard(e.CorrelationID)
	sh.mu.Lock()
	gone := sh.expire(now, t.ttl, nil)
	if os := sh.open[key]; os != nil {
		sh.mu.Unlock()
		t.endGone(gone, now)
		t.duplicateStart.Add(1)
		return os.sc, true
	}
	parent := sh.findParent(e, b.parents)
	var psc trace.SpanContext
	if parent != nil {
		psc = parent.sc
	}
	_, span := t.tracer.Start(startCtx(ctx, e, b, psc), b.name, trace.WithTimestamp(e.Time), trace.WithSpanKind(b.kind))
	os := &openSpan{key: key, span: span, sc: span.SpanContext(), opened: now, parent: parent}
	if parent != nil {
		parent.kids = append(parent.kids, os)
	}
	sh.push(os)
	var evicted []*openSpan
	if len(sh.open) > t.limit {
		evicted = sh.popHead(nil)
	}
	sh.mu.Unlock()
	t.started.Add(1)
	t.openCount.Add(1)
	if span.IsRecording() {
		span.SetAttributes(t.attributes(e, b)...)
	}
	t.endGone(gone, now)
	t.endAll(evicted, iEvicted, now, "open span limit (router.traces.max_open_spans) reached; ended without its end event")
	return os.sc, true
}

func (t *tracing) end(ctx context.Context, b *spanBinding, e *events.Event) (trace.SpanContext, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return trace.SpanContext{}, false
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
	t.endGone(gone, now)
	if os == nil {
		if b.fromEnd != nil {
			t.recordedFromEnd.Add(1)
			return t.record(ctx, b.fromEnd, e)
		}
		t.unmatchedEnd.Add(1)
		return trace.SpanContext{}, true
	}
	span := os.span
	if span.IsRecording() {
		span.SetAttributes(t.attributes(e, b)...)
		if b.status != nil {
			code, msg := b.status.decide(e)
			span.SetStatus(code, msg)
		}
	}
	end := endTime(span, e.Time)
	// closed[0] is os; the rest are its open descendants.
	t.ended[iEndEvent].Add(1)
	t.openCount.Add(-1)
	span.End(trace.WithTimestamp(end))
	for _, kid := range closed[1:] {
		t.ended[iParentEnded].Add(1)
		t.openCount.Add(-1)
		kid.span.SetAttributes(EndReasonKey.String(EndParentEnded))
		kid.span.End(trace.WithTimestamp(endTime(kid.span, end)))
	}
	return os.sc, true
}

// endTime keeps a span's end from preceding its start when clocks differ
// between the processes that published its events.
func endTime(span trace.Span, end time.Time) time.Time {
	if ro, ok := span.(sdktrace.ReadOnlySpan); ok && end.Before(ro.StartTime()) {
		return ro.StartTime()
	}
	return end
}

func (t *tracing) record(ctx context.Context, b *spanBinding, e *events.Event) (trace.SpanContext, bool) {
	d, ok := e.Attr(b.duration.field)
	if !ok {
		return trace.SpanContext{}, false
	}
	dur := time.Duration(math.Max(0, d.Float64()*b.scale))
	var psc trace.SpanContext
	if len(b.parents) > 0 {
		sh := t.shard(e.CorrelationID)
		sh.mu.Lock()
		if p := sh.findParent(e, b.parents); p != nil {
			psc = p.sc
		}
		sh.mu.Unlock()
	}
	_, span := t.tracer.Start(startCtx(ctx, e, b, psc), b.name, trace.WithTimestamp(e.Time.Add(-dur)), trace.WithSpanKind(b.kind))
	if span.IsRecording() {
		span.SetAttributes(t.attributes(e, b)...)
		if b.status != nil {
			code, msg := b.status.decide(e)
			span.SetStatus(code, msg)
		}
	}
	span.End(trace.WithTimestamp(e.Time))
	t.recorded.Add(1)
	return span.SpanContext(), true
}

func (t *tracing) event(b *spanBinding, e *events.Event) (trace.SpanContext, bool) {
	k, ok := keyText(e, b.key)
	if !ok {
		return trace.SpanContext{}, false
	}
	sh := t.shard(e.CorrelationID)
	sh.mu.Lock()
	os := sh.open[spanKey{name: b.name, trace: e.CorrelationID, key: k}]
	sh.mu.Unlock()
	if os == nil {
		t.unmatchedEvent.Add(1)
		return trace.SpanContext{}, true
	}
	if os.span.IsRecording() {
		os.span.AddEvent(e.Name, trace.WithTimestamp(e.Time), trace.WithAttributes(t.attributes(e, b)...))
	}
	t.spanEvents.Add(1)
	return os.sc, true
}

// decide returns the status an event gives a span.
func (s *statusRule) decide(e *events.Event) (codes.Code, string) {
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
	msg, _ := keyText(e, s.message)
	return code, strings.Clone(msg)
}

// attributes returns the span attributes b takes from e, with sensitive
// fields redacted. Strings are copied: an event's share its batch's buffer.
func (t *tracing) attributes(e *events.Event, b *spanBinding) []attribute.KeyValue {
	if b.all {
		kvs := make([]attribute.KeyValue, 0, len(e.Attrs))
		for i := range e.Attrs {
			a := &e.Attrs[i]
			kvs = append(kvs, t.attr(attribute.Key(strings.Clone(a.Key)), a.Key, a.Value))
		}
		return kvs
	}
	kvs := make([]attribute.KeyValue, 0, len(b.attrs))
	for _, a := range b.attrs {
		switch a.src.kind {
		case srcCorrelationID:
			kvs = append(kvs, a.key.String(e.CorrelationID.String()))
		case srcEventName:
			kvs = append(kvs, a.key.String(e.Name))
		case srcAttr:
			if v, ok := e.Attr(a.src.field); ok {
				kvs = append(kvs, t.attr(a.key, a.src.field, v))
			}
		}
	}
	return kvs
}

func (t *tracing) attr(key attribute.Key, field string, v events.Value) attribute.KeyValue {
	if t.isSensitive(field) {
		return key.String(Redacted)
	}
	switch v.Kind() {
	case events.KindInt:
		return key.Int64(v.Int64())
	case events.KindFloat:
		return key.Float64(v.Float64())
	case events.KindBool:
		return key.Bool(v.Bool())
	}
	return key.String(strings.Clone(v.Str()))
}

// isSensitive reports whether a field name contains a sensitive key.
func (t *tracing) isSensitive(field string) bool {
	if v, ok := t.sensitive.Load(field); ok {
		return v.(bool)
	}
	lower := strings.ToLower(field)
	hit := false
	for _, k := range t.redact {
		if strings.Contains(lower, k) {
			hit = true
			break
		}
	}
	t.sensitive.Store(strings.Clone(field), hit)
	return hit
}

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
	if p := os.parent; p != nil {
		if i := slices.Index(p.kids, os); i >= 0 {
			p.kids = slices.Delete(p.kids, i, i+1)
		}
		os.parent = nil
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
		kid.parent = nil
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
		kid.parent = nil
	}
	os.kids = nil
	return sh.detach(os, out)
}

func (t *tracing) endGone(gone []*openSpan, now time.Time) {
	t.endAll(gone, iExpired, now, "no end event within the open span TTL (router.traces.open_span_ttl)")
}

// endAll ends spans that did not get their end event, with an error status
// unless the router is shutting down.
func (t *tracing) endAll(spans []*openSpan, reason int, now time.Time, msg string) {
	for _, os := range spans {
		t.ended[reason].Add(1)
		t.openCount.Add(-1)
		os.span.SetAttributes(EndReasonKey.String(endReasons[reason]))
		if reason != iShutdown {
			os.span.SetStatus(codes.Error, msg)
		}
		os.span.End(trace.WithTimestamp(endTime(os.span, now)))
	}
}

// sweep ends every span past its TTL.
func (t *tracing) sweep() {
	now := t.now()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		gone := sh.expire(now, t.ttl, nil)
		sh.mu.Unlock()
		t.endGone(gone, now)
	}
}

// closeAll ends every open span (the router is shutting down) and flushes
// them to the span processor's exporter.
func (t *tracing) closeAll(ctx context.Context) error {
	now := t.now()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		var all []*openSpan
		for sh.head != nil {
			all = sh.detach(sh.head, all)
		}
		sh.mu.Unlock()
		t.endAll(all, iShutdown, now, "")
	}
	return t.tp.ForceFlush(ctx)
}

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
	Open            int64             // spans waiting for their end event
}

func (t *tracing) stats() SpanStats {
	s := SpanStats{Started: t.started.Load(), Recorded: t.recorded.Load(), RecordedFromEnd: t.recordedFromEnd.Load(),
		Events: t.spanEvents.Load(), UnmatchedEnds: t.unmatchedEnd.Load(), UnmatchedEvents: t.unmatchedEvent.Load(),
		DuplicateStarts: t.duplicateStart.Load(), Open: t.openCount.Load(), Ended: map[string]uint64{}}
	for i, r := range endReasons {
		s.Ended[r] = t.ended[i].Load()
	}
	return s
}

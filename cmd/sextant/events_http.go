package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// Limits of one POST /events request (docs/publishing.md). sextant publish
// sends chunks well below both.
const (
	maxEventsBody       = 8 << 20 // bytes
	maxEventsPerRequest = 10_000
	// maxProblems bounds the problems listed in a 422 answer; the error
	// message still counts them all.
	maxProblems = 100
	// publishTimeout bounds how long a request waits for the bus to take its
	// events (backpressure). It is detached from the client: once a batch is
	// valid, a client that hangs up does not cut it short.
	publishTimeout = 10 * time.Second
)

// Media types POST /events accepts.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
)

// eventPublisher is where POST /events puts the events it accepts: the bus
// publisher. Publish must be safe for concurrent use (requests run
// concurrently), must not keep e after returning, and gives up when ctx
// ends. It does not retry; the HTTP client does, on 503.
type eventPublisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// Protection of POST /events (docs/publishing.md).
const (
	// defaultMaxInFlight bounds the requests served at a time: each may hold
	// an 8 MiB body and its decoded events.
	defaultMaxInFlight = 64
	// rejectEventTimeout bounds publishing the intake's own events (breaker
	// state, request_rejected). They are best effort: when the bus is what
	// fails, they are lost and counted (eventsStats.EventsLost).
	rejectEventTimeout = 100 * time.Millisecond
	// breakerComponent is the intake breaker's component label.
	breakerComponent = "api"
	// endpointEvents is the endpoint label of resilience.request_rejected.
	endpointEvents = "/events"
)

// Reasons of resilience.request_rejected and of a 503's "reason".
const (
	reasonCircuitOpen  = "circuit_open"
	reasonOverloaded   = "overloaded"
	reasonShuttingDown = "shutting_down"
)

// eventsOptions are the knobs of POST /events; zero values take defaults.
type eventsOptions struct {
	// Logger receives the handler's logs; nil discards.
	Logger *slog.Logger
	// Events receives the intake's own events: the breaker's
	// resilience.circuit_breaker_state and resilience.request_rejected.
	// Normally the bus publisher that also takes the requests' events; nil
	// publishes none.
	Events lifecycle.Publisher
	// MaxInFlight bounds the requests served at a time; more are refused
	// with 503 (reason overloaded). 0 means 64.
	MaxInFlight int
	// Breaker configures the circuit breaker around publishing; its
	// Component is always "api". Zero fields take the breaker's defaults:
	// it opens after 5 consecutive failed requests and stays open 1s.
	Breaker lifecycle.BreakerConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// eventsStats counts what POST /events refused.
type eventsStats struct {
	// Rejected counts 503 refusals by reason (circuit_open, overloaded,
	// shutting_down).
	Rejected map[string]uint64
	// EventsLost counts the intake's own events that could not be
	// published (see rejectEventTimeout).
	EventsLost uint64
}

// eventsAPI serves POST /events.
type eventsAPI struct {
	pub     eventPublisher
	events  lifecycle.Publisher // nil: the intake publishes no events of its own
	logger  *slog.Logger
	now     func() time.Time
	breaker *lifecycle.CircuitBreaker

	// slots holds one token per request being served.
	slots   chan struct{}
	closing atomic.Bool
	drainMu sync.Mutex
	drained int // slots Shutdown holds

	rejectedCircuitOpen  atomic.Uint64
	rejectedOverloaded   atomic.Uint64
	rejectedShuttingDown atomic.Uint64
	eventsLost           atomic.Uint64
}

var _ http.Handler = (*eventsAPI)(nil)

// newEventsAPI returns the handler of POST /events: it decodes one event,
// an array of events or NDJSON, validates every event against the catalog
// and publishes all of them in order, or none when any is invalid. Register
// it for every method ("/events"): it answers other methods with a clear 405.
// It never logs event values, only names, counts and indexes. It is
// protected by a circuit breaker around pub and a bound on the requests
// served at a time. It publishes the breaker's initial state to
// opts.Events. Its methods are safe for concurrent use.
func newEventsAPI(pub eventPublisher, opts eventsOptions) (*eventsAPI, error) {
	h := &eventsAPI{pub: pub, events: opts.Events, logger: opts.Logger, now: opts.Now}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	n := opts.MaxInFlight
	if n < 0 {
		return nil, fmt.Errorf("events intake: max_in_flight: must not be negative, got %d", n)
	}
	if n == 0 {
		n = defaultMaxInFlight
	}
	h.slots = make(chan struct{}, n)
	bcfg := opts.Breaker
	bcfg.Component = breakerComponent
	b, err := lifecycle.NewCircuitBreaker(bcfg, lifecycle.BreakerSettings{
		Publisher: h.events, PublishTimeout: rejectEventTimeout, Logger: h.logger, Now: h.now,
	})
	if err != nil {
		return nil, fmt.Errorf("events intake: %w", err)
	}
	h.breaker = b
	return h, nil
}

// Breaker returns the circuit breaker around publishing, for
// /health/detailed.
func (h *eventsAPI) Breaker() *lifecycle.CircuitBreaker { return h.breaker }

// Stats returns the refusal counters.
func (h *eventsAPI) Stats() eventsStats {
	return eventsStats{
		Rejected: map[string]uint64{
			reasonCircuitOpen:  h.rejectedCircuitOpen.Load(),
			reasonOverloaded:   h.rejectedOverloaded.Load(),
			reasonShuttingDown: h.rejectedShuttingDown.Load(),
		},
		EventsLost: h.eventsLost.Load(),
	}
}

// Shutdown makes the handler refuse new requests with 503 (reason
// shutting_down) and waits for those being served, until ctx ends. Call it
// before the HTTP server's own Shutdown, so that clients on open connections
// are told to retry elsewhere. It can be called more than once; the handler
// never serves again.
func (h *eventsAPI) Shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.drainMu.Lock()
	defer h.drainMu.Unlock()
	// Holding every slot means no request is being served.
	for ; h.drained < cap(h.slots); h.drained++ {
		select {
		case h.slots <- struct{}{}: // a free slot first, even if ctx has ended
			continue
		default:
		}
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("events intake: shutdown: %d requests still in flight: %w", cap(h.slots)-h.drained, ctx.Err())
		}
	}
	return nil
}

// eventsReply is the JSON body of every answer of POST /events.
type eventsReply struct {
	// Accepted is how many events were published; set on 202 and on a
	// publish failure (500, 503), absent when the request was refused whole.
	Accepted *int           `json:"accepted,omitempty"`
	Error    string         `json:"error,omitempty"`
	Problems []eventProblem `json:"problems,omitempty"`
	// Reason says why a 503 refused the request (or, with Accepted, its
	// rest) to protect the service: circuit_open, overloaded or
	// shutting_down. Absent on a 503 for a bus that is merely slow.
	Reason string `json:"reason,omitempty"`
}

// fail answers code with the formatted message as the error.
func (h *eventsAPI) fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, eventsReply{Error: fmt.Sprintf(format, args...)})
}

// ServeHTTP checks the method, refuses with 503 while shutting down,
// overloaded or while the breaker is open, checks the media type and size,
// decodes and validates the whole body, then publishes. It is safe for
// concurrent use.
func (h *eventsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "method %s not allowed: publish events with POST /events", r.Method)
		return
	}
	if h.closing.Load() {
		h.reject(w, reasonShuttingDown, shutdownRetryAfter, "sextant is shutting down: send the events again later or to another instance")
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.reject(w, reasonOverloaded, time.Second, fmt.Sprintf("sextant is serving %d requests already: send the events again shortly", cap(h.slots)))
		return
	}
	// Refused before reading the body; this check does not take a probe,
	// so it leaves the breaker's own counters alone.
	if wait := h.breakerWait(); wait > 0 {
		h.rejectOpen(w, wait)
		return
	}
	format, err := bodyFormat(r.Header)
	if err != nil {
		w.Header().Set("Accept-Post", mediaJSON+", "+mediaNDJSON)
		h.fail(w, http.StatusUnsupportedMediaType, "%v", err)
		return
	}
	parent, err := requestParent(r.Header)
	if err != nil {
		h.logger.Debug("events refused", "reason", "bad_traceparent")
		h.fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if r.ContentLength > maxEventsBody {
		h.fail(w, http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds the limit of %d bytes (8 MiB): split the events into several requests", r.ContentLength, maxEventsBody)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventsBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.fail(w, http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes (8 MiB): split the events into several requests", maxEventsBody)
			return
		}
		h.fail(w, http.StatusBadRequest, "reading the request body: %v", err)
		return
	}
	evs, err := decodeEvents(body, format, maxEventsPerRequest)
	if err != nil {
		h.refuse(w, err)
		return
	}
	if parent.IsValid() {
		for i := range evs {
			if !evs[i].Parent.IsValid() {
				evs[i].Parent = parent
			}
		}
	}
	h.publish(w, r, evs)
}

// headerTraceParent is the W3C Trace Context request header.
const headerTraceParent = "traceparent"

// requestParent parses the request's traceparent header, which applies to
// every event of the request without a "traceparent" of its own. It returns
// the zero TraceParent when there is none, and an error naming the header
// when it is malformed or repeated (the specification allows one).
func requestParent(h http.Header) (events.TraceParent, error) {
	vals := h.Values(headerTraceParent)
	switch len(vals) {
	case 0:
		return events.TraceParent{}, nil
	case 1:
	default:
		return events.TraceParent{}, fmt.Errorf("%d %s headers: send at most one", len(vals), headerTraceParent)
	}
	tp, err := events.ParseTraceParent(vals[0])
	if err != nil {
		return events.TraceParent{}, fmt.Errorf("bad %s header %q: %w", headerTraceParent, vals[0], err)
	}
	return tp, nil
}

// refuse answers a request whose body decodeEvents refused; nothing was published.
func (h *eventsAPI) refuse(w http.ResponseWriter, err error) {
	if tm, ok := errors.AsType[*tooManyEventsError](err); ok {
		h.logger.Debug("events refused", "reason", "too_many", "max", tm.max)
		h.fail(w, http.StatusRequestEntityTooLarge, "%v: split the events into several requests", err)
		return
	}
	if ie, ok := errors.AsType[*invalidEventsError](err); ok {
		first := ie.problems[0]
		h.logger.Debug("events refused", "reason", "invalid", "events", ie.events, "invalid", ie.invalid,
			"problems", ie.total, "first_index", first.Index, "first_event", first.Event)
		writeJSON(w, http.StatusUnprocessableEntity, eventsReply{Error: err.Error(), Problems: ie.problems})
		return
	}
	h.logger.Debug("events refused", "reason", "malformed")
	h.fail(w, http.StatusBadRequest, "%v", err)
}

// shutdownRetryAfter is the Retry-After of a 503 while shutting down.
const shutdownRetryAfter = 5 * time.Second

// breakerWait returns how long the open breaker refuses requests yet; 0 when
// it is closed, half-open, or due to let a probe through.
func (h *eventsAPI) breakerWait() time.Duration {
	st := h.breaker.Stats()
	if st.State != lifecycle.BreakerOpen {
		return 0
	}
	return max(st.LastChange.Add(h.breaker.Config().OpenTimeout).Sub(h.now()), 0)
}

// rejectOpen refuses a request because the breaker is open, or half-open
// with its probes taken.
func (h *eventsAPI) rejectOpen(w http.ResponseWriter, wait time.Duration) {
	h.reject(w, reasonCircuitOpen, wait, "the bus is failing and publishing is suspended (circuit breaker open): send the events again after Retry-After seconds")
}

// reject answers 503 with reason and a Retry-After of retryAfter (at least a
// second), then counts the refusal and publishes
// resilience.request_rejected. The answer is flushed first, so that the
// client does not wait for that event.
func (h *eventsAPI) reject(w http.ResponseWriter, reason string, retryAfter time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(retryAfter.Seconds())), 1)))
	writeJSON(w, http.StatusServiceUnavailable, eventsReply{Error: msg, Reason: reason})
	_ = http.NewResponseController(w).Flush() // not every writer flushes; the answer goes out on return then
	h.rejected(reason)
}

// rejected counts a refusal and publishes resilience.request_rejected.
func (h *eventsAPI) rejected(reason string) {
	switch reason {
	case reasonCircuitOpen:
		h.rejectedCircuitOpen.Add(1)
	case reasonOverloaded:
		h.rejectedOverloaded.Add(1)
	case reasonShuttingDown:
		h.rejectedShuttingDown.Add(1)
	}
	h.logger.Debug("events refused", "reason", reason)
	if h.events == nil {
		return
	}
	now := h.now()
	e := events.Event{
		Name: events.ResilienceRequestRejected, ID: events.NewIDAt(now), Time: now, SchemaVersion: 1,
		Attrs: []events.Attr{events.String("endpoint", endpointEvents), events.String("reason", reason)},
	}
	if s, ok := events.Lookup(e.Name); ok {
		e.SchemaVersion = s.Version
	}
	// Bounded and best effort: when the bus is what fails (circuit_open,
	// shutting_down), this event is lost too, and counted instead.
	ctx, cancel := context.WithTimeout(context.Background(), rejectEventTimeout)
	defer cancel()
	if err := h.events.Publish(ctx, e); err != nil {
		h.eventsLost.Add(1)
		h.logger.Debug("publishing resilience.request_rejected failed", "reason", reason, "err", err)
	}
}

// publish publishes evs in order and answers 202, or says how many were
// accepted before the bus failed. The breaker admits the request first; a
// bus error or timeout counts as a failure of the breaker's, a closed bus
// (shutdown) as neither outcome.
func (h *eventsAPI) publish(w http.ResponseWriter, r *http.Request, evs []events.Event) {
	if !h.breaker.Allow() {
		h.rejectOpen(w, h.breakerWait())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeout)
	defer cancel()
	for i := range evs {
		err := h.pub.Publish(ctx, evs[i])
		if err == nil {
			continue
		}
		reply := eventsReply{Accepted: &i}
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, bus.ErrClosed):
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", strconv.Itoa(int(shutdownRetryAfter.Seconds())))
			reply.Error = fmt.Sprintf("sextant is shutting down: %d of %d events were accepted before the bus closed; send events[%d:] again later or to another instance", i, len(evs), i)
			reply.Reason = reasonShuttingDown
		case errors.Is(err, context.DeadlineExceeded):
			h.breaker.Failure()
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
			reply.Error = fmt.Sprintf("the bus is busy: it did not take events[%d] within %s; %d of %d events were accepted; send events[%d:] again", i, publishTimeout, i, len(evs), i)
		default:
			h.breaker.Failure()
			// The bus's error may name internal hosts; it goes to the log only.
			reply.Error = fmt.Sprintf("internal error publishing events[%d] (see the sextant log); %d of %d events were accepted", i, i, len(evs))
		}
		h.logger.Warn("publishing events failed", "accepted", i, "events", len(evs), "index", i, "event", evs[i].Name, "err", err)
		writeJSON(w, code, reply)
		if reply.Reason != "" {
			_ = http.NewResponseController(w).Flush()
			h.rejected(reply.Reason)
		}
		return
	}
	h.breaker.Success()
	n := len(evs)
	h.logger.Debug("events published", "events", n)
	writeJSON(w, http.StatusAccepted, eventsReply{Accepted: &n})
}

// bodyFormat checks the request's Content-Type and Content-Encoding.
func bodyFormat(h http.Header) (eventFormat, error) {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return 0, fmt.Errorf("unsupported Content-Encoding %q: send the body uncompressed", ce)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return 0, fmt.Errorf("missing Content-Type: want %s (one event or an array of events) or %s (one event per line)", mediaJSON, mediaNDJSON)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("bad Content-Type %q: %w", ct, err)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return 0, fmt.Errorf("unsupported charset %q in Content-Type: send UTF-8", cs)
	}
	switch mt {
	case mediaJSON:
		return formatJSON, nil
	case mediaNDJSON, "application/ndjson":
		return formatNDJSON, nil
	}
	return 0, fmt.Errorf("unsupported Content-Type %s: want %s (one event or an array of events) or %s (one event per line)", mt, mediaJSON, mediaNDJSON)
}

// eventFormat is how a body holds its events.
type eventFormat int

const (
	// formatJSON is one JSON value: an event object or an array of events.
	formatJSON eventFormat = iota + 1
	// formatNDJSON is event objects one after another, normally one per
	// line; objects spread over several lines (jq's output) are accepted too.
	formatNDJSON
	// formatAuto is formatJSON when the body starts with '[' and
	// formatNDJSON otherwise (which includes a single object).
	formatAuto
)

// eventProblem is one thing wrong with one event of a body.
type eventProblem struct {
	// Index is the event's position in the body, from 0.
	Index int `json:"index"`
	// Line is the body's line, from 1, on which the event starts.
	Line int `json:"line"`
	// Event is the event's name, when it has one.
	Event string `json:"event,omitempty"`
	// Message says what is wrong, starting with the event's path: events[Index].
	Message string `json:"message"`
}

// malformedError is a body that is not JSON of the expected shape.
type malformedError struct {
	line, column int
	msg          string
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("malformed JSON at line %d, column %d: %s", e.line, e.column, e.msg)
}

// tooManyEventsError is a body holding more events than one request may.
type tooManyEventsError struct{ max int }

func (e *tooManyEventsError) Error() string {
	return fmt.Sprintf("too many events: at most %d per request", e.max)
}

// invalidEventsError lists the events of a well-formed body that do not
// decode or do not match the catalog.
type invalidEventsError struct {
	problems []eventProblem // at most maxProblems
	total    int            // problems found
	invalid  int            // events with at least one problem
	events   int            // events in the body
}

func (e *invalidEventsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d events are invalid; none was published: %s", e.invalid, e.events, e.problems[0].Message)
	if e.total > 1 {
		fmt.Fprintf(&b, " (and %s", plural(e.total-1, "more problem"))
		if e.total > len(e.problems) {
			fmt.Fprintf(&b, "; the first %d are listed", len(e.problems))
		}
		b.WriteString(")")
	}
	return b.String()
}

// errEmptyBody is a body without any JSON.
var errEmptyBody = errors.New("empty body: want a JSON event object, an array of events or NDJSON")

// decodeEvents decodes body in format and validates every event against the
// catalog. It returns every event, or none and an error: *malformedError for
// broken JSON, *tooManyEventsError past maxEvents (0: no limit),
// *invalidEventsError listing each bad event, or errEmptyBody.
func decodeEvents(body []byte, format eventFormat, maxEvents int) ([]events.Event, error) {
	start := bytes.IndexFunc(body, func(r rune) bool { return !isJSONSpace(r) })
	if start < 0 {
		return nil, errEmptyBody
	}
	if format == formatAuto {
		format = formatNDJSON
		if body[start] == '[' {
			format = formatJSON
		}
	}
	d := &eventDecoder{body: body, dec: json.NewDecoder(bytes.NewReader(body)), max: maxEvents, line: 1}
	var err error
	switch {
	case format == formatNDJSON:
		err = d.stream()
	case body[start] == '[':
		err = d.array()
	case body[start] == '{':
		err = d.single()
	default:
		err = d.malformed(int64(start), fmt.Sprintf("want an event object or an array of events, got %s", jsonKind(body[start])))
	}
	if err != nil {
		return nil, err
	}
	if d.invalid.total > 0 {
		d.invalid.events = d.n
		return nil, &d.invalid
	}
	return d.evs, nil
}

// eventDecoder walks one body.
type eventDecoder struct {
	body []byte
	dec  *json.Decoder
	max  int

	inArray bool // between '[' and ']'

	n       int // events seen
	evs     []events.Event
	invalid invalidEventsError

	line    int   // line of body[off]
	lineOff int64 // offset line was counted to
}

func (d *eventDecoder) single() error {
	if err := d.next(); err != nil {
		return err
	}
	return d.end("; to send several events, send an array, or one event per line with Content-Type " + mediaNDJSON)
}

func (d *eventDecoder) array() error {
	if _, err := d.dec.Token(); err != nil { // '['
		return d.decodeError(err, -1)
	}
	d.inArray = true
	for d.dec.More() {
		if err := d.next(); err != nil {
			return err
		}
	}
	d.inArray = false
	if _, err := d.dec.Token(); err != nil { // ']'
		return d.decodeError(err, -1)
	}
	return d.end("")
}

func (d *eventDecoder) stream() error {
	for {
		if d.dec.More() {
			if err := d.next(); err != nil {
				return err
			}
			continue
		}
		// More is false at the end and before a stray ']' or '}'.
		return d.end("")
	}
}

// end fails if anything but white space follows the decoder's position.
func (d *eventDecoder) end(hint string) error {
	off := d.dec.InputOffset()
	rest := bytes.IndexFunc(d.body[off:], func(r rune) bool { return !isJSONSpace(r) })
	if rest < 0 {
		return nil
	}
	return d.malformed(off+int64(rest), "unexpected data after the events"+hint)
}

// next decodes one event at the decoder's position.
func (d *eventDecoder) next() error {
	if d.max > 0 && d.n >= d.max {
		return &tooManyEventsError{max: d.max}
	}
	var raw json.RawMessage
	start := d.dec.InputOffset()
	if err := d.dec.Decode(&raw); err != nil {
		return d.decodeError(err, start)
	}
	i := d.n
	d.n++
	line := d.lineAt(d.dec.InputOffset() - int64(len(raw)))
	if raw[0] != '{' {
		d.invalid.invalid++
		d.problem(i, line, "", fmt.Errorf("want an event object, got %s", jsonKind(raw[0])))
		return nil
	}
	var e events.Event
	if err := e.UnmarshalJSON(raw); err != nil {
		var named struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(raw, &named) // best effort, for the problem's event field
		d.invalid.invalid++
		d.problem(i, line, named.Name, err)
		return nil
	}
	if errs := checkEvent(&e); len(errs) > 0 {
		d.invalid.invalid++
		for _, err := range errs {
			d.problem(i, line, e.Name, err)
		}
		return nil
	}
	if d.invalid.total == 0 { // once one is bad, none is kept
		d.evs = append(d.evs, e)
	}
	return nil
}

// problem records one problem of event i; the caller counts the event as invalid once.
func (d *eventDecoder) problem(i, line int, name string, err error) {
	d.invalid.total++
	if len(d.invalid.problems) < maxProblems {
		d.invalid.problems = append(d.invalid.problems, eventProblem{
			Index: i, Line: line, Event: name, Message: fmt.Sprintf("events[%d]: %v", i, err),
		})
	}
}

// checkEvent is the catalog's validation plus what the bus's wire format
// refuses, each problem separately.
func checkEvent(e *events.Event) []error {
	var errs []error
	if err := e.Validate(); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	for _, a := range e.Attrs {
		if a.Key == "" {
			errs = append(errs, fmt.Errorf("%s: attrs: empty attribute name", e.Name))
		}
	}
	return errs
}

// decodeError turns a json.Decoder error into a *malformedError. start is
// where the value being decoded starts, or -1 for Token's errors.
func (d *eventDecoder) decodeError(err error, start int64) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// A Decoder's Offset is the offending byte's for errors between
		// values (a missing comma), but for errors inside a value it counts
		// only the bytes of the values decoded so far. Decoding the value
		// again on its own gives its offset from start, just past the byte.
		if start >= 0 && d.inArray && d.n > 0 {
			// Decode consumes the comma before an element; without one, its
			// error is the missing comma, at Offset.
			i := bytes.IndexFunc(d.body[start:], func(r rune) bool { return !isJSONSpace(r) })
			if i >= 0 && d.body[start+int64(i)] == ',' {
				start += int64(i) + 1
			} else {
				start = -1
			}
		}
		if start >= 0 {
			var raw json.RawMessage
			if se2, ok := errors.AsType[*json.SyntaxError](json.NewDecoder(bytes.NewReader(d.body[start:])).Decode(&raw)); ok {
				return d.malformed(start+max(se2.Offset-1, 0), se2.Error())
			}
		}
		return d.malformed(min(se.Offset, int64(len(d.body))), se.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.malformed(int64(len(d.body)), "unexpected end of input")
	}
	return d.malformed(d.dec.InputOffset(), err.Error())
}

// malformed returns a *malformedError at body[off]; its column counts
// characters, not bytes.
func (d *eventDecoder) malformed(off int64, msg string) error {
	line := d.lineAt(off)
	col := 1 + utf8.RuneCount(d.body[bytes.LastIndexByte(d.body[:off], '\n')+1:off])
	return &malformedError{line: line, column: col, msg: msg}
}

// lineAt returns the line of body[off]. Offsets only grow while decoding, so
// it counts each newline once.
func (d *eventDecoder) lineAt(off int64) int {
	if off < d.lineOff {
		return 1 + bytes.Count(d.body[:off], []byte{'\n'})
	}
	d.line += bytes.Count(d.body[d.lineOff:off], []byte{'\n'})
	d.lineOff = off
	return d.line
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

func isJSONSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if c == '-' || c >= '0' && c <= '9' {
		return "a number"
	}
	return strconv.QuoteRune(rune(c))
}

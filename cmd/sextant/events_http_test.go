package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/lifecycle"
)

// fakePublisher is an eventPublisher whose Publish is a function field; a nil
// publish accepts every event. It records what it accepted.
type fakePublisher struct {
	publish func(ctx context.Context, i int, e events.Event) error

	mu    sync.Mutex
	calls int
	got   []events.Event
}

var _ eventPublisher = (*fakePublisher)(nil)

func (f *fakePublisher) Publish(ctx context.Context, e events.Event) error {
	f.mu.Lock()
	i := f.calls
	f.calls++
	f.mu.Unlock()
	if f.publish != nil {
		if err := f.publish(ctx, i, e); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, e)
	return nil
}

func (f *fakePublisher) events() []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Event(nil), f.got...)
}

const testCorr = "0190b6a1-2c3c-7aaa-bbbb-ccccddddeeee"

// stepCompleted returns the JSON of a valid step.completed event; namespace
// tells events apart. Each key of drop is left out and each key of set
// replaced (or added) with the given JSON value.
func stepCompleted(namespace string, drop []string, set map[string]string) string {
	attrs := [][2]string{
		{"task_uuid", `"0190b6a1-0000-7000-8000-000000000001"`},
		{"step_uuid", `"0190b6a1-0000-7000-8000-000000000002"`},
		{"namespace", fmt.Sprintf("%q", namespace)},
		{"step_name", `"fetch"`},
		{"result", `"success"`},
		{"duration_ms", `12.5`},
		{"attempt", `1`},
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"name":"step.completed","correlation_id":%q,"attrs":{`, testCorr)
	n := 0
	add := func(k, v string) {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", k, v)
		n++
	}
	for _, a := range attrs {
		switch {
		case contains(drop, a[0]):
		case set[a[0]] != "":
			add(a[0], set[a[0]])
			delete(set, a[0])
		default:
			add(a[0], a[1])
		}
	}
	for k, v := range set {
		add(k, v)
	}
	b.WriteString("}}")
	return b.String()
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func ok(ns string) string { return stepCompleted(ns, nil, nil) }

func namespaces(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		v, _ := e.Attr("namespace")
		out = append(out, v.Str())
	}
	return out
}

// post sends body to an eventsHandler over pub and decodes the answer.
func post(t *testing.T, h http.Handler, method, contentType string, body io.Reader, header ...string) (*http.Response, eventsReply) {
	t.Helper()
	req := httptest.NewRequest(method, "/events", body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var reply eventsReply
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &reply), "%s", raw)
	return resp, reply
}

func intp(n int) *int { return &n }

func TestEventsHandler(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	failAt := func(at int, err error) func(context.Context, int, events.Event) error {
		return func(_ context.Context, i int, _ events.Event) error {
			if i == at {
				return err
			}
			return nil
		}
	}
	tooMany := "[" + strings.Repeat(ok("x")+",", maxEventsPerRequest) + ok("x") + "]"
	tests := []struct {
		name        string
		method      string // default POST
		contentType string // default application/json
		header      []string
		body        string
		publish     func(ctx context.Context, i int, e events.Event) error

		wantCode      int
		wantAccepted  *int
		wantError     string // substring of the error
		wantProblems  []eventProblem
		wantPublished []string // namespaces, in order
		wantHeader    map[string]string
	}{
		{
			name: "single event", body: ok("a"),
			wantCode: http.StatusAccepted, wantAccepted: intp(1), wantPublished: []string{"a"},
		},
		{
			name: "array in order", body: "[" + ok("a") + ",\n" + ok("b") + ",\n" + ok("c") + "]",
			wantCode: http.StatusAccepted, wantAccepted: intp(3), wantPublished: []string{"a", "b", "c"},
		},
		{
			name: "empty array", body: " [ ] ",
			wantCode: http.StatusAccepted, wantAccepted: intp(0),
		},
		{
			name: "ndjson", contentType: "application/x-ndjson; charset=utf-8",
			body:     ok("a") + "\n\n" + ok("b") + "\r\n" + ok("c") + "\n",
			wantCode: http.StatusAccepted, wantAccepted: intp(3), wantPublished: []string{"a", "b", "c"},
		},
		{
			name: "ndjson spread over lines, as jq prints it", contentType: "application/ndjson",
			body:     strings.ReplaceAll(ok("a"), ",", ",\n  ") + "\n" + ok("b"),
			wantCode: http.StatusAccepted, wantAccepted: intp(2), wantPublished: []string{"a", "b"},
		},
		{
			name: "malformed json", body: "[\n" + ok("a") + ",\n{\"name\": }\n]",
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 3, column 10: invalid character '}' looking for beginning of value",
		},
		{
			name: "missing comma", body: "[" + ok("a") + "\n " + ok("b") + "]",
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 2, column 2: expected comma after array element",
		},
		{
			name: "truncated array", body: "[" + ok("a") + ",\n",
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 2, column 1: unexpected end of input",
		},
		{
			name: "truncated ndjson", contentType: mediaNDJSON, body: ok("a") + "\n" + ok("b")[:20],
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 2, column 21: unexpected end of input",
		},
		{
			name: "bad ndjson line", contentType: mediaNDJSON, body: ok("a") + "\n" + ok("b") + ",\n" + ok("c"),
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 2, column",
		},
		{
			name: "several objects as application/json", body: ok("a") + "\n" + ok("b"),
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 2, column 1: unexpected data after the events; to send several events, send an array, or one event per line with Content-Type application/x-ndjson",
		},
		{
			name: "not an object", body: `"step.completed"`,
			wantCode: http.StatusBadRequest, wantError: "malformed JSON at line 1, column 1: want an event object or an array of events, got a string",
		},
		{
			name: "empty body", body: "",
			wantCode: http.StatusBadRequest, wantError: "empty body",
		},
		{
			name: "blank body", contentType: mediaNDJSON, body: " \n\t\n",
			wantCode: http.StatusBadRequest, wantError: "empty body",
		},
		{
			name: "unknown name", body: "[" + ok("a") + "," + strings.Replace(ok("b"), "step.completed", "step.exploded", 1) + "]",
			wantCode:     http.StatusUnprocessableEntity,
			wantError:    `1 of 2 events are invalid; none was published: events[1]: unknown event "step.exploded"`,
			wantProblems: []eventProblem{{Index: 1, Line: 1, Event: "step.exploded", Message: `events[1]: unknown event "step.exploded"`}},
		},
		{
			name:     "missing field",
			body:     "[" + ok("a") + ",\n" + ok("b") + ",\n" + ok("c") + ",\n" + stepCompleted("d", []string{"namespace"}, nil) + "]",
			wantCode: http.StatusUnprocessableEntity,
			wantProblems: []eventProblem{{Index: 3, Line: 4, Event: "step.completed",
				Message: `events[3]: step.completed: missing required field "namespace"`}},
		},
		{
			name: "wrong kind", body: stepCompleted("a", nil, map[string]string{"duration_ms": `"12ms"`}),
			wantCode: http.StatusUnprocessableEntity,
			wantProblems: []eventProblem{{Index: 0, Line: 1, Event: "step.completed",
				Message: `events[0]: step.completed: field "duration_ms": wrong field type: got string, want float`}},
		},
		{
			name: "every problem of every event, with ndjson lines", contentType: mediaNDJSON,
			body: ok("a") + "\n\n" + stepCompleted("b", []string{"result", "step_name"}, nil) + "\n" +
				stepCompleted("c", nil, map[string]string{"attempt": `1.5`}) + "\n" + `{"name":"task.failed","correlation_id":"` + testCorr + `","extra":1}` + "\n[]\n",
			wantCode:  http.StatusUnprocessableEntity,
			wantError: "4 of 5 events are invalid; none was published: events[1]: step.completed: missing required field \"step_name\" (and 4 more problems)",
			wantProblems: []eventProblem{
				{Index: 1, Line: 3, Event: "step.completed", Message: `events[1]: step.completed: missing required field "step_name"`},
				{Index: 1, Line: 3, Event: "step.completed", Message: `events[1]: step.completed: missing required field "result"`},
				{Index: 2, Line: 4, Event: "step.completed", Message: `events[2]: step.completed: field "attempt": wrong field type: got float, want int`},
				{Index: 3, Line: 5, Event: "task.failed", Message: `events[3]: event: json: unknown field "extra"`},
				{Index: 4, Line: 6, Message: `events[4]: want an event object, got an array`},
			},
		},
		{
			name: "missing correlation id", body: `[{"name":"task.failed"}]`,
			wantCode:     http.StatusUnprocessableEntity,
			wantProblems: []eventProblem{{Index: 0, Line: 1, Event: "task.failed", Message: `events[0]: event task.failed: correlation_id: required`}},
		},
		{
			name: "empty attribute name", body: stepCompleted("a", nil, map[string]string{"": `1`}),
			wantCode:     http.StatusUnprocessableEntity,
			wantProblems: []eventProblem{{Index: 0, Line: 1, Event: "step.completed", Message: `events[0]: step.completed: attrs: empty attribute name`}},
		},
		{
			name: "too large", body: `[` + strings.Repeat(" ", maxEventsBody) + `]`,
			wantCode: http.StatusRequestEntityTooLarge, wantError: "exceeds the limit of 8388608 bytes (8 MiB)",
		},
		{
			name: "too many events", body: tooMany,
			wantCode: http.StatusRequestEntityTooLarge, wantError: "too many events: at most 10000 per request",
		},
		{
			name: "unknown content type", contentType: "text/plain", body: ok("a"),
			wantCode: http.StatusUnsupportedMediaType, wantError: "unsupported Content-Type text/plain: want application/json",
			wantHeader: map[string]string{"Accept-Post": "application/json, application/x-ndjson"},
		},
		{
			name: "form, as curl -d sends", contentType: "application/x-www-form-urlencoded", body: ok("a"),
			wantCode: http.StatusUnsupportedMediaType, wantError: "unsupported Content-Type application/x-www-form-urlencoded",
		},
		{
			name: "missing content type", contentType: "-", body: ok("a"),
			wantCode: http.StatusUnsupportedMediaType, wantError: "missing Content-Type",
		},
		{
			name: "latin-1", contentType: "application/json; charset=iso-8859-1", body: ok("a"),
			wantCode: http.StatusUnsupportedMediaType, wantError: `unsupported charset "iso-8859-1"`,
		},
		{
			name: "compressed", header: []string{"Content-Encoding", "gzip"}, body: ok("a"),
			wantCode: http.StatusUnsupportedMediaType, wantError: `unsupported Content-Encoding "gzip"`,
		},
		{
			name: "GET", method: http.MethodGet,
			wantCode: http.StatusMethodNotAllowed, wantError: "method GET not allowed: publish events with POST /events",
			wantHeader: map[string]string{"Allow": "POST"},
		},
		{
			name: "bus closed midway", body: "[" + ok("a") + "," + ok("b") + "," + ok("c") + "]",
			publish:  failAt(2, fmt.Errorf("bus: %w", bus.ErrClosed)),
			wantCode: http.StatusServiceUnavailable, wantAccepted: intp(2), wantPublished: []string{"a", "b"},
			wantError:  "sextant is shutting down: 2 of 3 events were accepted before the bus closed; send events[2:] again later",
			wantHeader: map[string]string{"Retry-After": "5"},
		},
		{
			name: "bus busy", body: "[" + ok("a") + "," + ok("b") + "]",
			publish:  failAt(0, fmt.Errorf("bus: publish: %w", context.DeadlineExceeded)),
			wantCode: http.StatusServiceUnavailable, wantAccepted: intp(0),
			wantError:  "the bus is busy: it did not take events[0] within 10s; 0 of 2 events were accepted",
			wantHeader: map[string]string{"Retry-After": "1"},
		},
		{
			name: "bus failure midway", body: "[" + ok("a") + "," + ok("b") + "," + ok("c") + "]",
			publish:  failAt(1, errBoom),
			wantCode: http.StatusInternalServerError, wantAccepted: intp(1), wantPublished: []string{"a"},
			wantError: "internal error publishing events[1] (see the sextant log); 1 of 3 events were accepted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{publish: tt.publish}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = mediaJSON
			case "-":
				ct = ""
			}
			resp, reply := post(t, eventsHandler(pub, slog.New(slog.DiscardHandler)), method, ct, strings.NewReader(tt.body), tt.header...)
			require.Equal(t, tt.wantCode, resp.StatusCode, "%+v", reply)
			require.Equal(t, tt.wantAccepted, reply.Accepted)
			if tt.wantError != "" {
				require.Contains(t, reply.Error, tt.wantError)
			} else if tt.wantCode >= 400 {
				require.NotEmpty(t, reply.Error)
			} else {
				require.Empty(t, reply.Error)
			}
			if tt.wantProblems != nil {
				require.Equal(t, tt.wantProblems, reply.Problems)
				require.Contains(t, reply.Error, "none was published: "+tt.wantProblems[0].Message)
			}
			require.NotContains(t, reply.Error, "10.0.0.7", "internal errors stay in the log")
			for k, v := range tt.wantHeader {
				require.Equal(t, v, resp.Header.Get(k), k)
			}
			require.Equal(t, tt.wantPublished, namespaces(pub.events()))
			if tt.wantCode >= 400 && tt.publish == nil {
				require.Zero(t, pub.calls, "a refused request publishes nothing")
			}
		})
	}
}

func TestEventsHandlerDecodesTheEnvelope(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	want := events.New(events.TaskCompleted, events.NewID(),
		events.String("task_uuid", "t"), events.String("task_type", "tt"), events.String("namespace", "ns"), events.Int("step_count", 4))
	want.SchemaVersion = 3
	b, err := json.Marshal(want)
	require.NoError(t, err)
	resp, reply := post(t, eventsHandler(pub, slog.New(slog.DiscardHandler)), http.MethodPost, mediaJSON, bytes.NewReader(b))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%+v", reply)
	got := pub.events()
	require.Len(t, got, 1)
	require.Equal(t, want.ID, got[0].ID)
	require.Equal(t, want.CorrelationID, got[0].CorrelationID)
	require.True(t, want.Time.Equal(got[0].Time))
	require.Equal(t, want.SchemaVersion, got[0].SchemaVersion)
	require.Equal(t, want.Attrs, got[0].Attrs)

	// Without id and time, the server gives the event fresh ones.
	resp, reply = post(t, eventsHandler(pub, slog.New(slog.DiscardHandler)), http.MethodPost, mediaJSON, strings.NewReader(ok("a")))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%+v", reply)
	got = pub.events()
	require.False(t, got[1].ID.IsZero())
	require.False(t, got[1].Time.IsZero())
	require.Equal(t, uint16(1), got[1].SchemaVersion)
}

// TestEventsHandlerTraceParent: the request's traceparent header applies to
// every event without a "traceparent" of its own; a malformed or repeated
// header refuses the request with 400, naming the header, and publishes
// nothing.
func TestEventsHandlerTraceParent(t *testing.T) {
	t.Parallel()
	const (
		header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		own    = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	)
	mustParse := func(s string) events.TraceParent {
		tp, err := events.ParseTraceParent(s)
		require.NoError(t, err)
		return tp
	}
	withOwn := func(ns string) string {
		e := ok(ns)
		return e[:len(e)-1] + `,"traceparent":"` + own + `"}`
	}
	tests := []struct {
		name        string
		contentType string // default application/json
		headers     []string
		body        string

		wantCode    int
		wantError   string
		wantParents []string // per published event; "" for none
	}{
		{
			name: "no header, no traceparent", body: "[" + ok("a") + "," + ok("b") + "]",
			wantCode: http.StatusAccepted, wantParents: []string{"", ""},
		},
		{
			name: "header applies to every event", headers: []string{header}, body: "[" + ok("a") + "," + ok("b") + "]",
			wantCode: http.StatusAccepted, wantParents: []string{header, header},
		},
		{
			name: "an event's own traceparent wins", headers: []string{header}, body: "[" + ok("a") + "," + withOwn("b") + "," + ok("c") + "]",
			wantCode: http.StatusAccepted, wantParents: []string{header, own, header},
		},
		{
			name: "own traceparent without a header", body: "[" + withOwn("a") + "," + ok("b") + "]",
			wantCode: http.StatusAccepted, wantParents: []string{own, ""},
		},
		{
			name: "ndjson", contentType: mediaNDJSON, headers: []string{header}, body: ok("a") + "\n" + withOwn("b") + "\n",
			wantCode: http.StatusAccepted, wantParents: []string{header, own},
		},
		{
			name: "higher version header", headers: []string{"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"}, body: ok("a"),
			wantCode: http.StatusAccepted, wantParents: []string{header},
		},
		{
			name: "malformed header", headers: []string{"00-4bf92f3577b34da6a3ce929d0e0e4736"}, body: ok("a"),
			wantCode:  http.StatusBadRequest,
			wantError: `bad traceparent header "00-4bf92f3577b34da6a3ce929d0e0e4736": invalid traceparent: 35 characters, want 55`,
		},
		{
			name: "upper-case header", headers: []string{strings.ToUpper(header)}, body: ok("a"),
			wantCode: http.StatusBadRequest, wantError: `bad traceparent header "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01": invalid traceparent: trace id`,
		},
		{
			name: "zero span id", headers: []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}, body: ok("a"),
			wantCode: http.StatusBadRequest, wantError: "invalid traceparent: span id: all zeros",
		},
		{
			name: "empty header", headers: []string{""}, body: ok("a"),
			wantCode: http.StatusBadRequest, wantError: `bad traceparent header "": invalid traceparent: empty`,
		},
		{
			name: "two headers", headers: []string{header, header}, body: ok("a"),
			wantCode: http.StatusBadRequest, wantError: "2 traceparent headers: send at most one",
		},
		{
			name: "bad header beats a bad body", headers: []string{"nope"}, body: "{",
			wantCode: http.StatusBadRequest, wantError: `bad traceparent header "nope"`,
		},
		{
			name: "invalid own traceparent", headers: []string{header},
			body:     "[" + ok("a") + "," + strings.Replace(withOwn("b"), own, "00-zz", 1) + "]",
			wantCode: http.StatusUnprocessableEntity,
			wantError: `1 of 2 events are invalid; none was published: events[1]: event step.completed: traceparent: invalid traceparent: ` +
				`5 characters, want 55`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{}
			ct := tt.contentType
			if ct == "" {
				ct = mediaJSON
			}
			req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", ct)
			for _, v := range tt.headers {
				req.Header.Add("Traceparent", v)
			}
			rec := httptest.NewRecorder()
			eventsHandler(pub, slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
			var reply eventsReply
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reply), "%s", rec.Body)
			require.Equal(t, tt.wantCode, rec.Code, "%+v", reply)
			require.Contains(t, reply.Error, tt.wantError)
			got := pub.events()
			if tt.wantCode >= 400 {
				require.Zero(t, pub.calls, "a refused request publishes nothing")
				return
			}
			require.Len(t, got, len(tt.wantParents))
			for i, want := range tt.wantParents {
				if want == "" {
					require.Zero(t, got[i].Parent, "event %d", i)
					continue
				}
				require.Equal(t, mustParse(want), got[i].Parent, "event %d", i)
			}
		})
	}
}

// TestEventsHandlerTraceParentReachesTheBus: through the real bus publisher,
// the header's trace context is in the decoded batch; an event's own
// traceparent is kept.
func TestEventsHandlerTraceParentReachesTheBus(t *testing.T) {
	t.Parallel()
	cfg := bus.NewDefaultConfig()
	mem := bus.NewMemory(watermill.NopLogger{})
	defer func() { require.NoError(t, mem.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := collectBus(t, ctx, mem, cfg.Topic)
	pub, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(eventsHandler(pub, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	const header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	own := `,"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}`
	b := ok("b")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/events", strings.NewReader(ok("a")+"\n"+b[:len(b)-1]+own+"\n"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", mediaNDJSON)
	req.Header.Set("traceparent", header)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NoError(t, pub.Close(ctx))

	cancel()
	evs := <-got
	require.Equal(t, []string{"a", "b"}, namespaces(evs))
	require.Equal(t, header, evs[0].Parent.String())
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", evs[1].Parent.String())
}

func TestEventsHandlerTooManyProblems(t *testing.T) {
	t.Parallel()
	bad := stepCompleted("x", []string{"namespace"}, nil)
	body := "[" + strings.Repeat(bad+",", 149) + bad + "]"
	pub := &fakePublisher{}
	resp, reply := post(t, eventsHandler(pub, slog.New(slog.DiscardHandler)), http.MethodPost, mediaJSON, strings.NewReader(body))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Len(t, reply.Problems, maxProblems)
	require.Equal(t, 99, reply.Problems[99].Index)
	require.Contains(t, reply.Error, "150 of 150 events are invalid")
	require.Contains(t, reply.Error, "(and 149 more problems; the first 100 are listed)")
}

// TestEventsHandlerLogsNoValues: payload values may be secrets; the log
// holds names, counts and indexes only.
func TestEventsHandlerLogsNoValues(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secret := "hunter2-secret"
	bodies := []string{
		"[" + ok(secret) + "," + stepCompleted(secret, []string{"result"}, nil) + "]",
		"[" + ok(secret) + "," + ok(secret) + "]",
		`{"name":"` + secret + `"`,
	}
	pub := &fakePublisher{publish: func(_ context.Context, i int, _ events.Event) error {
		if i == 1 {
			return errors.New("bus down")
		}
		return nil
	}}
	h := eventsHandler(pub, logger)
	for _, b := range bodies {
		resp, _ := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(b))
		require.GreaterOrEqual(t, resp.StatusCode, 400)
	}
	require.Contains(t, logs.String(), `"first_index":1`)
	require.Contains(t, logs.String(), `"event":"step.completed"`)
	require.NotContains(t, logs.String(), secret)
}

// eventsHandler is the intake with default protection that publishes no
// events of its own, so that tests count only the requests' events.
func eventsHandler(pub eventPublisher, logger *slog.Logger) http.Handler {
	h, err := newEventsAPI(pub, eventsOptions{Logger: logger})
	if err != nil {
		panic(err) // the options are valid constants
	}
	return h
}

// collectBus subscribes to topic and sends, once the subscription ends (or
// a batch does not decode), every event the bus carried, in order.
func collectBus(t *testing.T, ctx context.Context, mem message.Subscriber, topic string) <-chan []events.Event {
	t.Helper()
	msgs, err := mem.Subscribe(ctx, topic)
	require.NoError(t, err)
	got := make(chan []events.Event, 1)
	go func() {
		var evs []events.Event
		for msg := range msgs {
			var derr error
			evs, derr = events.DecodeBatch(msg.Payload, evs)
			msg.Ack()
			if derr != nil {
				break
			}
		}
		got <- evs
	}()
	return got
}

// TestEventsHandlerWithBusPublisher runs the handler on the real bus
// publisher: accepted events reach the bus in order, and once the publisher
// is closed the handler answers 503.
func TestEventsHandlerWithBusPublisher(t *testing.T) {
	t.Parallel()
	cfg := bus.NewDefaultConfig()
	mem := bus.NewMemory(watermill.NopLogger{})
	defer func() { require.NoError(t, mem.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := collectBus(t, ctx, mem, cfg.Topic)
	pub, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(eventsHandler(pub, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/events", mediaNDJSON, strings.NewReader(ok("a")+"\n"+ok("b")+"\n"+ok("c")+"\n"))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NoError(t, pub.Close(ctx))

	resp, err = http.Post(srv.URL+"/events", mediaJSON, strings.NewReader(ok("d")))
	require.NoError(t, err)
	var reply eventsReply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reply))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, intp(0), reply.Accepted)

	cancel()
	require.Equal(t, []string{"a", "b", "c"}, namespaces(<-got))
}

// TestDecodeEventsPointsAtTheError: a malformed body's line and column are
// those of the offending byte, wherever it is.
func TestDecodeEventsPointsAtTheError(t *testing.T) {
	t.Parallel()
	a := ok("a")
	tests := []struct {
		name         string
		format       eventFormat
		body         string
		line, column int
		msg          string
	}{
		{"first value", formatJSON, `{"name":}`, 1, 9, "invalid character '}'"},
		{"third array element, indented", formatJSON, "[\n  " + a + ",\n  " + a + ",\n  {\"name\" 1}\n]", 4, 11, "invalid character '1' after object key"},
		{"stray comma in array", formatJSON, "[" + a + ",,\n" + a + "]", 1, len(a) + 3, "invalid character ','"},
		{"trailing comma in array", formatJSON, "[" + a + ",\n]", 2, 1, "invalid character ']'"},
		{"garbage after element", formatJSON, "[" + a + "\n  x]", 2, 3, "expected comma after array element"},
		{"third ndjson line", formatNDJSON, a + "\n" + a + "\n" + `{"name":"x",}`, 3, 13, "invalid character '}'"},
		{"stray comma between ndjson lines", formatNDJSON, a + ",\n" + a, 1, len(a) + 1, "invalid character ','"},
		{"stray bracket after ndjson", formatNDJSON, a + "\n]", 2, 1, "unexpected data after the events"},
		{"auto: array", formatAuto, "[\n" + a + "\n" + a + "]", 3, 1, "expected comma after array element"},
		{"auto: stream", formatAuto, a + "\n" + a + "\n{", 3, 2, "unexpected end of input"},
		{"multibyte text before the error", formatJSON, `{"name":"é", }`, 1, 14, "invalid character '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeEvents([]byte(tt.body), tt.format, 0)
			me, ok := errors.AsType[*malformedError](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, [2]int{tt.line, tt.column}, [2]int{me.line, me.column}, "%v", err)
			require.Contains(t, me.msg, tt.msg)
		})
	}
}

// TestPublishingDocExamples: the event docs/publishing.md shows, and the one
// its curl example sends, are accepted.
func TestPublishingDocExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/publishing.md")
	require.NoError(t, err)
	_, rest, found := strings.Cut(string(doc), "## The JSON form of an event\n\n```json\n")
	require.True(t, found)
	event, _, _ := strings.Cut(rest, "```")
	_, rest, found = strings.Cut(string(doc), "  -d '")
	require.True(t, found)
	curl, _, _ := strings.Cut(rest, "'\n")
	for _, body := range []string{event, curl} {
		resp, reply := post(t, eventsHandler(&fakePublisher{}, slog.New(slog.DiscardHandler)), http.MethodPost, mediaJSON, strings.NewReader(body))
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s\n%+v", body, reply)
	}
}

// TestEventsHandlerTooLargeWithoutLength: a chunked body is cut at the limit.
func TestEventsHandlerTooLargeWithoutLength(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	body := io.MultiReader(strings.NewReader("["+ok("a")+","), strings.NewReader(strings.Repeat(" ", maxEventsBody)), strings.NewReader("]"))
	resp, reply := post(t, eventsHandler(pub, slog.New(slog.DiscardHandler)), http.MethodPost, mediaJSON, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "request body exceeds the limit of 8388608 bytes (8 MiB): split the events into several requests", reply.Error)
	require.Zero(t, pub.calls)
}

// intakeClock is the injected clock of the intake's breaker tests.
type intakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *intakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *intakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// resilienceEvents renders the intake's own events, e.g. "state 0>2" and
// "rejected circuit_open".
func resilienceEvents(t *testing.T, evs []events.Event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		require.NoError(t, e.Validate())
		switch e.Name {
		case events.ResilienceCircuitBreakerState:
			c, _ := e.Attr("component")
			require.Equal(t, "api", c.Str())
			prev, _ := e.Attr("previous_state")
			state, _ := e.Attr("state")
			out = append(out, fmt.Sprintf("state %d>%d", prev.Int64(), state.Int64()))
		case events.ResilienceRequestRejected:
			ep, _ := e.Attr("endpoint")
			require.Equal(t, "/events", ep.Str())
			reason, _ := e.Attr("reason")
			out = append(out, "rejected "+reason.Str())
		default:
			t.Fatalf("unexpected intake event %s", e.Name)
		}
	}
	return out
}

// serveStatus posts body as JSON to h and returns the status code; unlike
// post it may run outside the test's goroutine.
func serveStatus(h http.Handler, body string) int {
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	req.Header.Set("Content-Type", mediaJSON)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestEventsAPICircuitBreaker walks the intake's breaker through opening,
// refusing with 503 and Retry-After without touching the publisher, a
// failed probe, and a probe that closes it again.
func TestEventsAPICircuitBreaker(t *testing.T) {
	t.Parallel()
	errBus := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	clock := &intakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	var fail atomic.Value // error or nil, as *error
	fail.Store((*error)(nil))
	pub := &fakePublisher{publish: func(context.Context, int, events.Event) error {
		if p := fail.Load().(*error); p != nil {
			return *p
		}
		return nil
	}}
	own := &fakePublisher{}
	h, err := newEventsAPI(pub, eventsOptions{
		Logger: slog.New(slog.DiscardHandler), Events: own, Now: clock.Now,
		Breaker: lifecycle.BreakerConfig{FailureThreshold: 2, OpenTimeout: 3 * time.Second},
	})
	require.NoError(t, err)
	require.Equal(t, "api", h.Breaker().Component())
	timeout := fmt.Errorf("bus: publish: %w", context.DeadlineExceeded)

	steps := []struct {
		name    string
		advance time.Duration
		fail    error // what the bus answers
		body    string

		wantCode       int
		wantRetryAfter string
		wantReason     string
		wantCalls      int // Publish calls so far
		wantState      lifecycle.BreakerState
	}{
		{name: "healthy", body: ok("a"), wantCode: http.StatusAccepted, wantCalls: 1},
		{name: "first failure", fail: errBus, body: ok("b"), wantCode: http.StatusInternalServerError, wantCalls: 2},
		{name: "a timeout is a failure too; the breaker opens", fail: timeout, body: ok("c"), wantCode: http.StatusServiceUnavailable, wantRetryAfter: "1", wantCalls: 3, wantState: lifecycle.BreakerOpen},
		{name: "open: refused untouched", body: ok("d"), wantCode: http.StatusServiceUnavailable, wantRetryAfter: "3", wantReason: "circuit_open", wantCalls: 3, wantState: lifecycle.BreakerOpen},
		{name: "open: Retry-After counts down, rounded up", advance: 1500 * time.Millisecond, body: ok("e"), wantCode: http.StatusServiceUnavailable, wantRetryAfter: "2", wantReason: "circuit_open", wantCalls: 3, wantState: lifecycle.BreakerOpen},
		{name: "open: invalid bodies are refused before validation", body: "{", wantCode: http.StatusServiceUnavailable, wantRetryAfter: "2", wantReason: "circuit_open", wantCalls: 3, wantState: lifecycle.BreakerOpen},
		{name: "the probe fails and reopens it", advance: 1500 * time.Millisecond, fail: errBus, body: ok("f"), wantCode: http.StatusInternalServerError, wantCalls: 4, wantState: lifecycle.BreakerOpen},
		{name: "reopened: refused for another timeout", advance: 2999 * time.Millisecond, body: ok("g"), wantCode: http.StatusServiceUnavailable, wantRetryAfter: "1", wantReason: "circuit_open", wantCalls: 4, wantState: lifecycle.BreakerOpen},
		{name: "the probe succeeds and closes it", advance: time.Millisecond, body: ok("h"), wantCode: http.StatusAccepted, wantCalls: 5},
		{name: "closed again", body: ok("i"), wantCode: http.StatusAccepted, wantCalls: 6},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		if st.fail != nil {
			fail.Store(&st.fail)
		} else {
			fail.Store((*error)(nil))
		}
		resp, reply := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(st.body))
		require.Equal(t, st.wantCode, resp.StatusCode, "%s: %+v", st.name, reply)
		require.Equal(t, st.wantRetryAfter, resp.Header.Get("Retry-After"), st.name)
		require.Equal(t, st.wantReason, reply.Reason, st.name)
		if st.wantReason != "" {
			require.Contains(t, reply.Error, "circuit breaker open", st.name)
			require.Nil(t, reply.Accepted, st.name)
		}
		require.NotContains(t, reply.Error, "10.0.0.7", "internal errors stay in the log")
		pub.mu.Lock()
		calls := pub.calls
		pub.mu.Unlock()
		require.Equal(t, st.wantCalls, calls, st.name)
		require.Equal(t, st.wantState, h.Breaker().State(), st.name)
	}
	require.Equal(t, []string{"a", "h", "i"}, namespaces(pub.events()))
	require.Equal(t, []string{
		"state 0>0", "state 0>2",
		"rejected circuit_open", "rejected circuit_open", "rejected circuit_open",
		"state 2>1", "state 1>2",
		"rejected circuit_open",
		"state 2>1", "state 1>0",
	}, resilienceEvents(t, own.events()))
	require.Eventually(t, func() bool {
		return reflect.DeepEqual(eventsStats{Rejected: map[string]uint64{"circuit_open": 4, "overloaded": 0, "shutting_down": 0}}, h.Stats())
	}, 5*time.Second, time.Millisecond, "stats %+v", h.Stats()) // counted after the answer
	bs := h.Breaker().Stats()
	require.Equal(t, uint64(2), bs.Opens)
	require.Equal(t, uint64(3), bs.Failures)
	require.Equal(t, uint64(3), bs.Successes)
}

// TestEventsAPIHalfOpenAdmitsOneProbe: while the probe publishes, other
// requests are refused with Retry-After 1.
func TestEventsAPIHalfOpenAdmitsOneProbe(t *testing.T) {
	t.Parallel()
	clock := &intakeClock{t: time.Unix(1_700_000_000, 0)}
	entered, release := make(chan struct{}), make(chan struct{})
	pub := &fakePublisher{publish: func(_ context.Context, i int, _ events.Event) error {
		if i == 0 {
			return errors.New("bus down")
		}
		close(entered)
		<-release
		return nil
	}}
	h, err := newEventsAPI(pub, eventsOptions{Now: clock.Now, Breaker: lifecycle.BreakerConfig{FailureThreshold: 1}})
	require.NoError(t, err)
	resp, _ := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(ok("a")))
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	clock.Advance(time.Second)

	probe := make(chan int, 1)
	go func() { probe <- serveStatus(h, ok("probe")) }()
	<-entered
	require.Equal(t, lifecycle.BreakerHalfOpen, h.Breaker().State())
	resp, reply := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(ok("b")))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "circuit_open", reply.Reason)
	close(release)
	require.Equal(t, http.StatusAccepted, <-probe)
	require.Equal(t, lifecycle.BreakerClosed, h.Breaker().State())
	require.Equal(t, []string{"probe"}, namespaces(pub.events()))
}

// TestEventsAPIOverloadAndShutdown: past MaxInFlight requests are refused as
// overloaded; once Shutdown has begun, as shutting_down; Shutdown waits for
// the requests being served.
func TestEventsAPIOverloadAndShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	pub := &fakePublisher{publish: func(_ context.Context, i int, _ events.Event) error {
		if i == 0 {
			close(entered)
			<-release
		}
		return nil
	}}
	own := &fakePublisher{}
	h, err := newEventsAPI(pub, eventsOptions{Events: own, MaxInFlight: 1})
	require.NoError(t, err)

	first := make(chan int, 1)
	go func() { first <- serveStatus(h, ok("a")) }()
	<-entered

	tests := []struct {
		name       string
		before     func(t *testing.T)
		wantReason string
		wantRetry  string
	}{
		{name: "overloaded", wantReason: "overloaded", wantRetry: "1"},
		{
			name: "shutting down",
			before: func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				require.ErrorIs(t, h.Shutdown(ctx), context.Canceled, "a request is still in flight")
			},
			wantReason: "shutting_down", wantRetry: "5",
		},
	}
	for _, tt := range tests {
		if tt.before != nil {
			tt.before(t)
		}
		resp, reply := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(ok("b")))
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, tt.name)
		require.Equal(t, tt.wantRetry, resp.Header.Get("Retry-After"), tt.name)
		require.Equal(t, tt.wantReason, reply.Reason, tt.name)
		require.NotEmpty(t, reply.Error, tt.name)
	}

	done := make(chan error, 1)
	go func() { done <- h.Shutdown(context.Background()) }()
	close(release)
	require.Equal(t, http.StatusAccepted, <-first, "a request in flight finishes")
	require.NoError(t, <-done)
	require.NoError(t, h.Shutdown(context.Background()), "Shutdown can be called again")
	require.Equal(t, []string{"a"}, namespaces(pub.events()))
	require.Equal(t, []string{"state 0>0", "rejected overloaded", "rejected shutting_down"}, resilienceEvents(t, own.events()))
	require.Eventually(t, func() bool {
		return reflect.DeepEqual(eventsStats{Rejected: map[string]uint64{"circuit_open": 0, "overloaded": 1, "shutting_down": 1}}, h.Stats())
	}, 5*time.Second, time.Millisecond, "stats %+v", h.Stats()) // counted after the answer
}

// TestEventsAPIOwnEventsLost: when the intake's own events cannot be
// published, the refusal still answers and the loss is counted.
func TestEventsAPIOwnEventsLost(t *testing.T) {
	t.Parallel()
	own := &fakePublisher{publish: func(ctx context.Context, i int, _ events.Event) error {
		if i == 0 {
			return nil // the breaker's initial state
		}
		<-ctx.Done() // a stuck bus: the intake gives up after its bound
		return ctx.Err()
	}}
	h, err := newEventsAPI(&fakePublisher{}, eventsOptions{Events: own})
	require.NoError(t, err)
	require.NoError(t, h.Shutdown(context.Background()))
	resp, reply := post(t, h, http.MethodPost, mediaJSON, strings.NewReader(ok("a")))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "shutting_down", reply.Reason)
	require.Eventually(t, func() bool {
		return reflect.DeepEqual(eventsStats{Rejected: map[string]uint64{"circuit_open": 0, "overloaded": 0, "shutting_down": 1}, EventsLost: 1}, h.Stats())
	}, 5*time.Second, time.Millisecond, "stats %+v", h.Stats()) // counted after the answer
}

func TestNewEventsAPIRefusesBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    eventsOptions
		wantErr string
	}{
		{name: "max in flight", opts: eventsOptions{MaxInFlight: -1}, wantErr: "max_in_flight: must not be negative"},
		{name: "breaker", opts: eventsOptions{Breaker: lifecycle.BreakerConfig{FailureThreshold: -1}}, wantErr: "failure_threshold: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newEventsAPI(&fakePublisher{}, tt.opts)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestEventsAPIWithBusPublisher runs the protected intake on the real bus
// publisher, which takes both the requests' events and the intake's own:
// the breaker's initial state reaches the bus first, and once the bus is
// closed the refusal's own event is lost and counted.
func TestEventsAPIWithBusPublisher(t *testing.T) {
	t.Parallel()
	cfg := bus.NewDefaultConfig()
	mem := bus.NewMemory(watermill.NopLogger{})
	defer func() { require.NoError(t, mem.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := collectBus(t, ctx, mem, cfg.Topic)
	pub, err := bus.NewPublisher(mem, cfg)
	require.NoError(t, err)
	h, err := newEventsAPI(pub, eventsOptions{Events: pub})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/events", mediaNDJSON, strings.NewReader(ok("a")+"\n"+ok("b")+"\n"))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NoError(t, pub.Close(ctx))

	resp, err = http.Post(srv.URL+"/events", mediaJSON, strings.NewReader(ok("c")))
	require.NoError(t, err)
	var reply eventsReply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reply))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, "shutting_down", reply.Reason)
	require.Equal(t, intp(0), reply.Accepted)
	// The handler answers first and counts its own event afterwards.
	want := eventsStats{Rejected: map[string]uint64{"circuit_open": 0, "overloaded": 0, "shutting_down": 1}, EventsLost: 1}
	require.Eventually(t, func() bool { return reflect.DeepEqual(want, h.Stats()) }, 5*time.Second, time.Millisecond, "stats %+v", h.Stats())
	require.Equal(t, lifecycle.BreakerClosed, h.Breaker().State(), "a closed bus is shutdown, not a failure")

	cancel()
	evs := <-got
	require.Len(t, evs, 3)
	require.Equal(t, []string{"state 0>0"}, resilienceEvents(t, evs[:1]))
	require.Equal(t, []string{"a", "b"}, namespaces(evs[1:]))
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

// eventsServer serves eventsHandler over pub and counts requests.
type eventsServer struct {
	*httptest.Server
	pub      *fakePublisher
	requests atomic.Int32
}

func startEventsServer(t *testing.T, publish func(ctx context.Context, i int, e events.Event) error) *eventsServer {
	t.Helper()
	s := &eventsServer{pub: &fakePublisher{publish: publish}}
	h := eventsHandler(s.pub, slog.New(slog.DiscardHandler))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func manyEvents(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(ok("n" + strconv.Itoa(i)))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestPublishCmd(t *testing.T) {
	t.Parallel()
	array := "[\n" + ok("a") + ",\n" + ok("b") + ",\n" + ok("c") + "\n]\n"
	ndjson := ok("a") + "\n" + ok("b") + "\n" + ok("c") + "\n"
	badNDJSON := ok("a") + "\n\n" + stepCompleted("b", []string{"namespace"}, nil) + "\n" + ok("c") + "\n"
	tests := []struct {
		name    string
		file    string // content of FILE; empty: no file
		args    []string
		stdin   string
		publish func(ctx context.Context, i int, e events.Event) error

		wantOut       string // with URL for the server's URL
		wantErr       []string
		wantUsage     bool
		wantPublished []string
		wantRequests  int32
	}{
		{
			name: "file with an array", file: array,
			wantOut: "published 3 events to URL/events\n", wantPublished: []string{"a", "b", "c"}, wantRequests: 1,
		},
		{
			name: "stdin as -", args: []string{"-"}, stdin: ndjson,
			wantOut: "published 3 events to URL/events\n", wantPublished: []string{"a", "b", "c"}, wantRequests: 1,
		},
		{
			name: "stdin without operand, one object", stdin: ok("a"),
			wantOut: "published 1 events to URL/events\n", wantPublished: []string{"a"}, wantRequests: 1,
		},
		{
			name: "chunks of 1000", stdin: manyEvents(2500),
			wantOut: "published 2500 events to URL/events\n", wantRequests: 3,
		},
		{
			name: "ndjson with a bad line", file: badNDJSON,
			wantErr: []string{`FILE:3: events[1]: step.completed: missing required field "namespace"`, "FILE: 1 of 3 events are invalid; none was published"},
		},
		{
			name: "malformed json", file: "[\n" + ok("a") + "\n" + ok("b") + "]",
			wantErr: []string{"FILE:3:1: malformed JSON: expected comma after array element"},
		},
		{
			name: "empty stdin", stdin: "\n",
			wantErr: []string{"stdin: no events: the input is empty"},
		},
		{
			name: "missing file", args: []string{"/nonexistent/events.json"},
			wantErr: []string{"/nonexistent/events.json"},
		},
		{
			name: "server error passes through", file: array,
			publish: func(_ context.Context, i int, _ events.Event) error {
				if i == 1 {
					return errors.New("bus down")
				}
				return nil
			},
			wantErr: []string{
				"published 1 of 3 events to URL/events, then: server answered 500 Internal Server Error: " +
					"internal error publishing events[1] (see the sextant log); 1 of 3 events were accepted",
			},
			wantPublished: []string{"a"}, wantRequests: 1,
		},
		{
			name: "failure in a later chunk counts every accepted event", stdin: manyEvents(1500),
			publish: func(_ context.Context, i int, _ events.Event) error {
				if i == 1200 {
					return errors.New("bus down")
				}
				return nil
			},
			wantErr:      []string{"published 1200 of 1500 events to URL/events, then: server answered 500", "internal error publishing events[200]"},
			wantRequests: 2,
		},
		{
			name: "bad url", args: []string{"--url", "127.0.0.1:9464"}, stdin: ok("a"), wantUsage: true,
			wantErr: []string{`--url: want http://HOST:PORT or https://HOST:PORT, got "127.0.0.1:9464"`},
		},
		{
			name: "two operands", args: []string{"a.json", "b.json"}, wantUsage: true,
			wantErr: []string{`publish: unexpected argument "b.json"`},
		},
		{
			name: "unknown flag", args: []string{"--batch", "5"}, wantUsage: true,
			wantErr: []string{"flag provided but not defined: -batch"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startEventsServer(t, tt.publish)
			args := []string{"--url", srv.URL + "/"}
			var path string
			if tt.file != "" {
				path = writeFile(t, "events.ndjson", tt.file)
				args = append(args, path)
			}
			args = append(args, tt.args...)
			var stdout, stderr bytes.Buffer
			err := publishCmd(context.Background(), args, strings.NewReader(tt.stdin), &stdout, &stderr)
			fill := strings.NewReplacer("URL", srv.URL, "FILE", path)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					require.Contains(t, err.Error(), fill.Replace(want))
				}
				var ue usageError
				require.Equal(t, tt.wantUsage, errors.As(err, &ue), "usage error: %v", err)
				require.Empty(t, stdout.String())
			} else {
				require.NoError(t, err, "stderr: %s", stderr.String())
				require.Equal(t, fill.Replace(tt.wantOut), stdout.String())
			}
			require.Equal(t, tt.wantRequests, srv.requests.Load())
			if tt.wantPublished != nil {
				require.Equal(t, tt.wantPublished, namespaces(srv.pub.events()))
			}
		})
	}
}

func TestPublishCmdKeepsOrderAcrossChunks(t *testing.T) {
	t.Parallel()
	srv := startEventsServer(t, nil)
	var stdout bytes.Buffer
	require.NoError(t, publishCmd(context.Background(), []string{"--url", srv.URL}, strings.NewReader(manyEvents(2001)), &stdout, io.Discard))
	got := namespaces(srv.pub.events())
	require.Len(t, got, 2001)
	for i, ns := range got {
		require.Equal(t, "n"+strconv.Itoa(i), ns)
	}
	require.Equal(t, int32(3), srv.requests.Load())
}

// TestPublishCmdFlagsAfterFile: flags may follow FILE.
func TestPublishCmdFlagsAfterFile(t *testing.T) {
	t.Parallel()
	srv := startEventsServer(t, nil)
	path := writeFile(t, "events.json", ok("a"))
	var stdout bytes.Buffer
	require.NoError(t, publishCmd(context.Background(), []string{path, "--url", srv.URL}, strings.NewReader(""), &stdout, io.Discard))
	require.Equal(t, "published 1 events to "+srv.URL+"/events\n", stdout.String())
}

func TestPublishCmdHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := publishCmd(context.Background(), []string{"-h"}, strings.NewReader(""), io.Discard, &stderr)
	require.ErrorIs(t, err, errHelp)
	require.Equal(t, 2, exitCode(err, io.Discard))
	require.Contains(t, stderr.String(), "Usage: sextant publish [--url URL] [--timeout D] [FILE|-]")
	require.Contains(t, stderr.String(), "-url URL")
}

// TestPublishCmdReportsServerProblems: a server that refuses events local
// validation passed (an older catalog, say) is quoted with the input's
// indexes, not the chunk's.
func TestPublishCmdReportsServerProblems(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			n := 1000
			writeJSON(w, http.StatusAccepted, eventsReply{Accepted: &n})
			return
		}
		writeJSON(w, http.StatusUnprocessableEntity, eventsReply{
			Error:    `1 of 500 events are invalid; none was published: events[7]: unknown event "step.completed"`,
			Problems: []eventProblem{{Index: 7, Line: 1, Event: "step.completed", Message: `events[7]: unknown event "step.completed"`}},
		})
	}))
	defer srv.Close()
	err := publishCmd(context.Background(), []string{"--url", srv.URL}, strings.NewReader(manyEvents(1500)), io.Discard, io.Discard)
	require.Error(t, err)
	require.Contains(t, err.Error(), "published 1000 of 1500 events to "+srv.URL+"/events, then: server answered 422 Unprocessable Entity")
	require.Contains(t, err.Error(), "\n  events[1007]: unknown event \"step.completed\"")
	require.Contains(t, err.Error(), "(the server's indexes count from events[1000] of the input)")
}

// TestPublishCmdNotSextant: an answer that is not sextant's JSON is quoted.
func TestPublishCmdNotSextant(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := publishCmd(context.Background(), []string{"--url", srv.URL}, strings.NewReader(ok("a")), io.Discard, io.Discard)
	require.ErrorContains(t, err, "published 0 of 1 events to "+srv.URL+"/events, then: server answered 404 Not Found: 404 page not found")
}

func TestPublishCmdServerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := publishCmd(context.Background(), []string{"--url", url}, strings.NewReader(ok("a")), io.Discard, io.Discard)
	require.ErrorContains(t, err, "published 0 of 1 events to "+url+"/events, then: Post \""+url+"/events\"")
	require.ErrorContains(t, err, "connection refused")
}

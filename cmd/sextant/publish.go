package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// defaultPublishURL is the default configuration's server.listen.
const defaultPublishURL = "http://127.0.0.1:9464"

// A request of sextant publish carries at most this many events and about
// this many bytes, well inside the server's limits.
const (
	publishChunkEvents = 1000
	publishChunkBytes  = 4 << 20
)

// publishCmd is `sextant publish [--url URL] [--timeout D] [FILE|-]`: it
// reads events (a JSON array, one object, or NDJSON) from FILE or stdin,
// validates them all, then POSTs them to URL/events in chunks. It does not
// retry: on failure it says how many events were published.
func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	base := fs.String("url", defaultPublishURL, "base `URL` of the sextant service; events go to URL/events")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on each request after `D`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sextant publish [--url URL] [--timeout D] [FILE|-]\n\n"+
			"Reads events from FILE, or from stdin when FILE is - or absent: a JSON array,\n"+
			"one JSON object, or NDJSON (one event per line). Every event is validated\n"+
			"against the catalog before any is sent.\n\n")
		fs.PrintDefaults()
	}
	file, err := parseFlagsAndOperand(fs, args, stderr)
	if err != nil {
		return err
	}
	endpoint, err := eventsEndpoint(*base)
	if err != nil {
		return usageError{err}
	}
	name, body, err := readEventsInput(file, stdin)
	if err != nil {
		return err
	}
	evs, err := decodeEvents(body, formatAuto, 0)
	if err != nil {
		return inputError(name, err)
	}
	client := &http.Client{Timeout: *timeout}
	sent := 0
	for sent < len(evs) {
		chunk, payload, err := nextChunk(evs[sent:])
		if err != nil {
			return fmt.Errorf("%s: events[%d]: %w", name, sent+len(chunk), err)
		}
		n, err := postEvents(ctx, client, endpoint, payload)
		if err != nil {
			if se, ok := errors.AsType[*serverError](err); ok {
				se.offset = sent
			}
			return fmt.Errorf("published %d of %d events to %s, then: %w", sent+n, len(evs), endpoint, err)
		}
		if n != len(chunk) {
			return fmt.Errorf("published %d of %d events to %s, then: the server accepted %d of a chunk of %d", sent+n, len(evs), endpoint, n, len(chunk))
		}
		sent += n
	}
	fmt.Fprintf(stdout, "published %d events to %s\n", sent, endpoint)
	return nil
}

// parseFlagsAndOperand is parseFlags for a command that takes one optional
// operand; flags may come before and after it.
func parseFlagsAndOperand(fs *flag.FlagSet, args []string, stderr io.Writer) (string, error) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", usageError{errHelp}
		}
		return "", usageError{err}
	}
	if fs.NArg() == 0 {
		return "", nil
	}
	operand := fs.Arg(0)
	return operand, parseFlags(fs, fs.Args()[1:], stderr)
}

// eventsEndpoint returns base's POST /events URL.
func eventsEndpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url: want http://HOST:PORT or https://HOST:PORT, got %q", base)
	}
	return strings.TrimSuffix(u.String(), "/") + "/events", nil
}

// readEventsInput reads file, or stdin for "" and "-", and names it for messages.
func readEventsInput(file string, stdin io.Reader) (string, []byte, error) {
	if file == "" || file == "-" {
		body, err := io.ReadAll(stdin)
		if err != nil {
			return "", nil, fmt.Errorf("reading stdin: %w", err)
		}
		return "stdin", body, nil
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return "", nil, err // names the file
	}
	return file, body, nil
}

// inputError says where in the input (NAME:LINE) decodeEvents' err lies.
func inputError(name string, err error) error {
	if me, ok := errors.AsType[*malformedError](err); ok {
		return fmt.Errorf("%s:%d:%d: malformed JSON: %s", name, me.line, me.column, me.msg)
	}
	if ie, ok := errors.AsType[*invalidEventsError](err); ok {
		errs := make([]error, 0, len(ie.problems)+1)
		for _, p := range ie.problems {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, p.Line, p.Message))
		}
		if more := ie.total - len(ie.problems); more > 0 {
			errs = append(errs, fmt.Errorf("%s: and %s", name, plural(more, "more problem")))
		}
		errs = append(errs, fmt.Errorf("%s: %d of %d events are invalid; none was published", name, ie.invalid, ie.events))
		return errors.Join(errs...)
	}
	if errors.Is(err, errEmptyBody) {
		return fmt.Errorf("%s: no events: the input is empty", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// nextChunk takes up to publishChunkEvents events from the front of evs,
// keeping the JSON array under publishChunkBytes (a single larger event goes
// alone, and the server judges it).
func nextChunk(evs []events.Event) ([]events.Event, []byte, error) {
	buf := []byte{'['}
	n := 0
	for n < len(evs) && n < publishChunkEvents {
		b, err := json.Marshal(evs[n])
		if err != nil {
			return evs[:n], nil, err
		}
		if n > 0 && len(buf)+1+len(b)+1 > publishChunkBytes {
			break
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
		n++
	}
	return evs[:n], append(buf, ']'), nil
}

// serverError is a non-2xx answer of POST /events.
type serverError struct {
	status string
	reply  eventsReply
	offset int // index of the chunk's first event in the input
}

func (e *serverError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %s", e.status)
	if e.reply.Error != "" {
		fmt.Fprintf(&b, ": %s", e.reply.Error)
	}
	for _, p := range e.reply.Problems {
		// The server counts from the chunk's start; say where in the input.
		msg := p.Message
		if rest, ok := strings.CutPrefix(msg, fmt.Sprintf("events[%d]: ", p.Index)); ok {
			msg = fmt.Sprintf("events[%d]: %s", e.offset+p.Index, rest)
		}
		fmt.Fprintf(&b, "\n  %s", msg)
	}
	if e.offset > 0 && (e.reply.Error != "" || len(e.reply.Problems) > 0) {
		fmt.Fprintf(&b, "\n  (the server's indexes count from events[%d] of the input)", e.offset)
	}
	return b.String()
}

// postEvents POSTs one JSON array and returns how many events the server accepted.
func postEvents(ctx context.Context, client *http.Client, endpoint string, payload []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", mediaJSON)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err // names the method and URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("reading the answer (%s): %w", resp.Status, err)
	}
	var reply eventsReply
	jsonErr := json.Unmarshal(body, &reply)
	if resp.StatusCode/100 != 2 {
		accepted := 0
		if reply.Accepted != nil {
			accepted = *reply.Accepted
		}
		if jsonErr != nil { // not sextant's answer, e.g. a proxy's
			reply = eventsReply{Error: strings.TrimSpace(string(body))}
		}
		return accepted, &serverError{status: resp.Status, reply: reply}
	}
	if jsonErr != nil || reply.Accepted == nil {
		return 0, fmt.Errorf("server answered %s without an accepted count: %.200q", resp.Status, body)
	}
	return *reply.Accepted, nil
}

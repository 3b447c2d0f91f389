package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

// version is the plugin's version, in Describe and the User-Agent.
const version = "1.0.0"

// format is the plugin's one format: /export?format=webhook.
const format = "webhook"

// optionPretty is the export option that overrides config.Pretty.
const optionPretty = "pretty"

// Backoff between attempts: the first wait, its cap, and the cap on a
// Retry-After the receiver asks for.
const (
	firstBackoff  = 200 * time.Millisecond
	maxBackoff    = 5 * time.Second
	maxRetryAfter = 30 * time.Second
)

// exporter POSTs each snapshot as sextant.metrics/v1 JSON.
type exporter struct {
	// set is replaced by Configure. The SDK never runs Configure and
	// Export at once, and Export only reads it, so no lock is needed.
	set    settings
	client *http.Client
	getenv func(string) string
	log    *slog.Logger
	// backoff is the wait before retry n (0 for the first retry).
	backoff func(n int) time.Duration
}

var (
	_ sdk.Exporter   = (*exporter)(nil)
	_ sdk.Configurer = (*exporter)(nil)
)

func newExporter() *exporter {
	return &exporter{
		client:  &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		getenv:  os.Getenv,
		log:     sdk.Logger(),
		backoff: jitteredBackoff,
	}
}

// jitteredBackoff doubles from firstBackoff up to maxBackoff, each wait
// drawn from its upper half so that many senders spread out.
func jitteredBackoff(n int) time.Duration {
	d := maxBackoff
	if n < 6 {
		d = min(firstBackoff<<n, maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// Info describes the plugin.
func (*exporter) Info() sdk.Info {
	return sdk.Info{
		Name:        "webhook",
		Version:     version,
		Description: "POSTs snapshots as sextant.metrics/v1 JSON to a URL, with headers and retries.",
		Formats:     []string{format},
	}
}

// Configure checks the section and puts it into effect; on error the
// previous settings stay.
func (e *exporter) Configure(_ context.Context, cfg sdk.Config) error {
	c := defaultConfig()
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	set, err := c.settings(e.getenv)
	if err != nil {
		return err
	}
	e.set = set
	e.log.Info("configured", "url", set.display, "headers", set.names, "timeout", set.timeout.String(),
		"retries", set.retries, "pretty", set.pretty)
	return nil
}

// Export encodes the snapshot as the built-in JSON exporter does, POSTs it
// (retrying as configured) and returns it. It may run concurrently with
// other exports; it keeps nothing of req.
func (e *exporter) Export(ctx context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
	set := e.set
	if set.url == "" {
		return sdk.Result{}, errors.New("not configured: set url in the plugin's config section")
	}
	pretty, err := exporters.BoolOption(exporters.ExportRequest{Options: req.Options}, optionPretty, set.pretty)
	if err != nil {
		return sdk.Result{}, sdk.InvalidArgument(err)
	}
	var body bytes.Buffer
	if err := jsonexp.Encode(&body, req.Snapshot, jsonexp.Options{Pretty: pretty}); err != nil {
		return sdk.Result{}, fmt.Errorf("encode: %w", err)
	}
	if err := e.deliver(ctx, set, req.ID, body.Bytes()); err != nil {
		return sdk.Result{}, err
	}
	if _, err := w.Write(body.Bytes()); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{ContentType: jsonexp.ContentType, Destination: set.display}, nil
}

// attemptError is a failed POST and whether another attempt may succeed.
type attemptError struct {
	err        error
	retryable  bool
	retryAfter time.Duration // what the receiver asked for; 0 for nothing
}

// deliver POSTs body, trying again after retryable failures while retries
// and ctx's deadline allow.
func (e *exporter) deliver(ctx context.Context, set settings, exportID string, body []byte) error {
	attempts := set.retries + 1
	for n := 1; ; n++ {
		ae := e.post(ctx, set, exportID, body)
		if ae == nil {
			return nil
		}
		err := ae.err
		if attempts > 1 {
			err = fmt.Errorf("%w (attempt %d of %d)", err, n, attempts)
		}
		if !ae.retryable {
			return err
		}
		unavailable := sdk.Unavailable(err)
		if n == attempts {
			return unavailable
		}
		wait := max(e.backoff(n-1), min(ae.retryAfter, maxRetryAfter))
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return sdk.Unavailable(fmt.Errorf("%w; no time left before the export's deadline to try again", err))
		}
		e.log.Debug("retrying", "url", set.display, "attempt", n, "of", attempts, "wait", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w; stopped waiting to try again: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// excerptLen bounds how much of an error response reaches the message.
const excerptLen = 200

// post makes one attempt.
func (e *exporter) post(ctx context.Context, set settings, exportID string, body []byte) *attemptError {
	ctx, cancel := context.WithTimeout(ctx, set.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, set.url, bytes.NewReader(body))
	if err != nil {
		return &attemptError{err: fmt.Errorf("POST %s: %w", set.display, err)}
	}
	req.Header.Set("Content-Type", jsonexp.ContentType)
	req.Header.Set("User-Agent", "sextant-webhook/"+version)
	req.Header.Set("X-Sextant-Export-Id", exportID)
	for k, v := range set.headers {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the URL, credentials and all
		}
		return &attemptError{err: fmt.Errorf("POST %s: %w", set.display, err), retryable: true}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptLen+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	ae := &attemptError{err: fmt.Errorf("POST %s answered %s%s", set.display, resp.Status, formatExcerpt(excerpt))}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		ae.retryable = true
		ae.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return ae
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// formatExcerpt makes the start of a response body fit one log line.
func formatExcerpt(b []byte) string {
	cut := len(b) > excerptLen
	if cut {
		b = b[:excerptLen]
	}
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if s == "" {
		return ""
	}
	if cut {
		s += "…"
	}
	return ": " + s
}

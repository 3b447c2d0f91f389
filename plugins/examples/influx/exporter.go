package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

// version is the plugin's version, in Describe and the User-Agent.
const version = "1.0.0"

// format is the plugin's one format: /export?format=influx.
const format = "influx"

// contentType is the media type of line protocol.
const contentType = "text/plain; charset=utf-8"

// exporter writes snapshots as InfluxDB line protocol and delivers them to
// a file, an InfluxDB v2 write endpoint, both or neither.
type exporter struct {
	// set is replaced by Configure. The SDK never runs Configure and
	// Export at once, and Export only reads it, so no lock is needed.
	set    settings
	client *http.Client
	getenv func(string) string
	log    *slog.Logger
}

var (
	_ sdk.Exporter   = (*exporter)(nil)
	_ sdk.Configurer = (*exporter)(nil)
)

func newExporter() *exporter {
	return &exporter{
		set:    defaultSettings(),
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		getenv: os.Getenv,
		log:    sdk.Logger(),
	}
}

// Info describes the plugin.
func (*exporter) Info() sdk.Info {
	return sdk.Info{
		Name:        "influx",
		Version:     version,
		Description: "Writes snapshots as InfluxDB line protocol, to a file and/or an InfluxDB v2 write endpoint.",
		Formats:     []string{format},
	}
}

// Configure checks the section and puts it into effect; on error the
// previous settings stay.
func (e *exporter) Configure(_ context.Context, cfg sdk.Config) error {
	var c config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	set, err := c.settings(e.getenv)
	if err != nil {
		return err
	}
	e.set = set
	e.log.Info("configured", "output", set.output, "url", set.display, "precision", string(set.precision),
		"timeout", set.timeout.String(), "gzip", set.gzip, "tags", len(set.tags), "token", set.token != "")
	return nil
}

// Export writes the snapshot as line protocol, delivers it where the
// configuration says, then writes it to w. It may run concurrently with
// other exports; it keeps nothing of req.
func (e *exporter) Export(ctx context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
	set := e.set
	body, st, err := encode(ctx, nil, req.Snapshot, encodeOptions{precision: set.precision, tags: set.tags})
	if err != nil {
		return sdk.Result{}, err
	}
	if st.skipped > 0 {
		e.log.Info("left out samples line protocol cannot hold (NaN, ±Inf, counts over 2^63-1)",
			"export_id", req.ID, "skipped", st.skipped, "lines", st.lines)
	}
	var dests []string
	if set.output != "" {
		if err := writeFileAtomic(set.output, body); err != nil {
			return sdk.Result{}, err
		}
		dests = append(dests, set.output)
	}
	if set.writeURL != nil {
		if err := e.post(ctx, set, body); err != nil {
			return sdk.Result{}, err
		}
		dests = append(dests, set.display)
	}
	if _, err := w.Write(body); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{ContentType: contentType, Series: st.series, Destination: strings.Join(dests, ", ")}, nil
}

// writeFileAtomic replaces path with data: readers see the old file or
// the new one, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// excerptLen bounds how much of an error response reaches the message.
const excerptLen = 200

// post sends body to InfluxDB. Connection failures, 5xx and 429 are
// UNAVAILABLE; other non-2xx answers are plain errors. Messages name the
// URL without its query and never hold the token.
func (e *exporter) post(ctx context.Context, set settings, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, set.timeout)
	defer cancel()
	payload := body
	if set.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		payload = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, set.writeURL.String(), bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("post to %s: %w", set.display, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sextant-influx/"+version)
	if set.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if set.token != "" {
		req.Header.Set("Authorization", "Token "+set.token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the URL with the query
		}
		return sdk.Unavailable(fmt.Errorf("post to %s: %w", set.display, err))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptLen+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("InfluxDB at %s answered %s%s", set.display, resp.Status, formatExcerpt(excerpt))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return sdk.Unavailable(err)
	}
	return err
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

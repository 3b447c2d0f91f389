package main

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// exportPublishTimeout bounds how long a scrape's export events may wait for
// the bus: the scrape has been answered already, and a stuck bus must not
// hold scrapers' connections.
const exportPublishTimeout = 250 * time.Millisecond

// scrapeEvents wraps the /metrics handler so that every scrape is an export
// with its lifecycle events: telemetry.export_requested, then
// telemetry.export_completed (bytes, series, duration) or
// telemetry.export_failed. The default configuration routes them to
// sextant_exports_*; what a scrape counts shows in the next one.
func scrapeEvents(next http.Handler, pub eventPublisher, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := events.NewIDAt(start)
		idAttr := events.String("export_id", id.String())
		target := events.String("target", "scrape")
		publish := func(name string, attrs ...events.Attr) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), exportPublishTimeout)
			defer cancel()
			if err := pub.Publish(ctx, events.New(name, id, attrs...)); err != nil {
				logger.Debug("export event not published", "event_name", name, "error", err)
			}
		}
		// The served format is known only once the exposition has
		// negotiated it; the request names what the scraper asked for.
		publish(events.TelemetryExportRequested, idAttr, events.String("format", askedFormat(r)), target)

		cw := &countingWriter{ResponseWriter: w, lineStart: true}
		next.ServeHTTP(cw, r)
		format := events.String("format", servedFormat(cw.Header().Get("Content-Type")))
		dur := events.Float("duration_ms", float64(time.Since(start))/float64(time.Millisecond))
		if cw.status >= http.StatusInternalServerError {
			publish(events.TelemetryExportFailed, idAttr, format, target,
				events.String("error_type", "http_"+http.StatusText(cw.status)),
				events.String("error_message", "the exposition answered "+http.StatusText(cw.status)), dur)
			return
		}
		attrs := []events.Attr{idAttr, format, target, events.Int("bytes", cw.bytes), dur}
		if cw.Header().Get("Content-Encoding") == "" { // compressed bytes hold no lines to count
			attrs = append(attrs, events.Int("series_count", cw.samples))
		}
		publish(events.TelemetryExportCompleted, attrs...)
	})
}

func askedFormat(r *http.Request) string {
	if accept := r.Header.Get("Accept"); accept != "" {
		for _, part := range strings.Split(accept, ",") {
			if mt, _, err := mime.ParseMediaType(part); err == nil && mt == "application/openmetrics-text" {
				return "openmetrics"
			}
		}
	}
	return "prometheus"
}

func servedFormat(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/openmetrics-text" {
		return "openmetrics"
	}
	return "prometheus"
}

// countingWriter counts the bytes of a text exposition and its sample lines
// (lines that are neither comments nor empty) as they stream through.
type countingWriter struct {
	http.ResponseWriter
	status    int
	bytes     int64
	samples   int64
	lineStart bool
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	for _, b := range p {
		if c.lineStart && b != '#' && b != '\n' {
			c.samples++
		}
		c.lineStart = b == '\n'
	}
	n, err := c.ResponseWriter.Write(p)
	c.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach flushers and deadlines.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

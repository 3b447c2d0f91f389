package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// ServeLive is the liveness probe (/health/live): 200 and
// {"status":"healthy","timestamp","uptime_seconds"} while the process
// serves HTTP at all. It runs no check and takes no lock, so that a slow
// downstream never gets a live process restarted.
func (r *Registry) ServeLive(w http.ResponseWriter, _ *http.Request) {
	now := r.now()
	write(w, http.StatusOK, map[string]any{"status": StatusHealthy, "timestamp": now.UTC(), "uptime_seconds": int64(now.Sub(r.started) / time.Second)})
}

// ServeReady is the readiness probe (/health/ready): the summary body with
// the readiness status; 200 when ready (healthy or degraded), 503 while
// not serving or while a critical check is unhealthy.
func (r *Registry) ServeReady(w http.ResponseWriter, req *http.Request) {
	rep, ok := r.report(w, req)
	if !ok {
		return
	}
	code := http.StatusOK
	if !rep.Ready() {
		code = http.StatusServiceUnavailable
	}
	write(w, code, rep.body(viewSummary, rep.Readiness))
}

// ServeHealth is the overall health (/health): each check's status, error
// and duration; 200 when healthy or degraded, 503 when unhealthy.
func (r *Registry) ServeHealth(w http.ResponseWriter, req *http.Request) {
	r.serveReport(w, req, viewSummary)
}

// ServeDetailed is /health/detailed: /health with every check's details,
// and the same status code.
func (r *Registry) ServeDetailed(w http.ResponseWriter, req *http.Request) {
	r.serveReport(w, req, viewDetailed)
}

func (r *Registry) serveReport(w http.ResponseWriter, req *http.Request, v view) {
	rep, ok := r.report(w, req)
	if !ok {
		return
	}
	code := http.StatusOK
	if rep.Status == StatusUnhealthy {
		code = http.StatusServiceUnavailable
	}
	write(w, code, rep.body(v, rep.Status))
}

// report runs the checks for a request; when there is no report it
// answers 503 itself and returns false.
func (r *Registry) report(w http.ResponseWriter, req *http.Request) (Report, bool) {
	rep, err := r.Run(req.Context())
	if err == nil {
		return rep, true
	}
	reason := "shutting down"
	if !errors.Is(err, ErrShutdown) {
		reason = "request ended before the report: " + err.Error() // the client most likely went away
	}
	now := r.now()
	write(w, http.StatusServiceUnavailable, map[string]any{"status": StatusUnhealthy, "timestamp": now.UTC(),
		"uptime_seconds": int64(now.Sub(r.started) / time.Second), "reason": reason})
	return Report{}, false
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func write(w http.ResponseWriter, code int, v any) {
	b, err := marshal(v)
	if err != nil {
		// A check's details that JSON cannot encode (a channel, NaN).
		http.Error(w, "health: encoding the report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // probes must see the current state
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n')) // the client went away; nothing to do
}

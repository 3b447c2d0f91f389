package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/internal/redact"
	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
	"github.com/sextant-telemetry/sextant/plugins/wire"
)

// Plugin states, as Status and Health show them.
const (
	StateStarting    = "starting"     // being launched for the first time
	StateRunning     = "running"      // serving, circuit closed or half-open
	StateRestarting  = "restarting"   // exited, hung or failed to start; waiting for or in a restart
	StateCircuitOpen = "circuit_open" // serving, but exports are rejected until the breaker lets a trial through
	StateStopped     = "stopped"      // the host is shut down
)

// Sources of a plugin, as Status shows them.
const (
	SourceConfig = "config" // plugins.instances
	SourceDir    = "dir"    // found in plugins.dir
)

// Rejections: an export that did not reach the plugin returns an error
// that matches one of these with errors.Is (or exporters.ErrShutdown).
var (
	// ErrNotRunning: the plugin is starting or restarting.
	ErrNotRunning = errors.New("plugin is not running")
	// ErrCircuitOpen: the plugin failed too often in a row; its breaker
	// holds exports back until a trial export succeeds.
	ErrCircuitOpen = errors.New("plugin circuit is open")
)

// rejection is an export refused without calling the plugin: the message
// says why, Unwrap says which kind.
type rejection struct {
	msg  string
	kind error
}

func (e *rejection) Error() string { return e.msg }
func (e *rejection) Unwrap() error { return e.kind }

// outcome classifies one call to a plugin's Export.
type outcome int

const (
	outcomeOK        outcome = iota
	outcomeFailed            // the plugin failed: counts toward the breaker
	outcomeNotCounts         // failed, but not the plugin's fault: the caller gave up, the request was invalid, the output refused the data
	outcomeGone              // the process exited or was killed: counts, and the supervisor restarts it
)

// callbackQueueSize bounds each plugin's queue of lifecycle callbacks.
const callbackQueueSize = 64

// callback is one lifecycle callback waiting in a plugin's queue.
type callback struct {
	what string
	call func(ctx context.Context, c pluginv1.ExporterClient) error
}

// plugin is one configured or discovered plugin, over its whole life:
// the exporter registered in the registry, whatever instance of its
// process currently serves.
type plugin struct {
	h           *Host
	idx         int // index in Config.Instances; -1 when found in Dir
	inst        InstanceConfig
	source      string
	callTimeout time.Duration

	logger atomic.Pointer[slog.Logger]
	caps   atomic.Uint32 // the running instance's capabilities; 0 when none
	queue  chan callback

	ok, failed, rejected atomic.Int64
	restartsBy           [len(reasons)]atomic.Int64
	dropped              atomic.Int64

	mu          sync.Mutex
	name        string
	named       bool // name is final: the instance's, or adopted from a Describe
	registered  string
	regFormats  []string
	regVersion  string
	state       string
	cur         *proc
	desc        *pluginv1.DescribeResponse // the last instance's
	pid         int
	protocol    int
	sha         string
	restarts    int
	backoff     time.Duration
	lastErr     string
	lastErrAt   time.Time
	startedAt   time.Time
	nextRestart time.Time
	br          breaker
	cbFailing   bool // the last callback failed; logged once per run of failures
}

var (
	_ exporters.SnapshotExporter = (*plugin)(nil)
	_ exporters.ExportHooks      = (*plugin)(nil)
)

func newPlugin(h *Host, idx int, inst InstanceConfig, source, name string) *plugin {
	p := &plugin{
		h: h, idx: idx, inst: inst, source: source,
		callTimeout: h.cfg.CallTimeout,
		name:        name,
		named:       inst.Name != "",
		state:       StateStarting,
		queue:       make(chan callback, callbackQueueSize),
		br:          breaker{threshold: h.cfg.Breaker.FailureThreshold, openFor: h.cfg.Breaker.OpenFor},
	}
	if inst.CallTimeout > 0 {
		p.callTimeout = inst.CallTimeout
	}
	p.logger.Store(h.logger.With("plugin", name))
	return p
}

// log implements loggerSource.
func (p *plugin) log() *slog.Logger { return p.logger.Load() }

func (p *plugin) currentName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

func (p *plugin) setSHA256(sum string) {
	p.mu.Lock()
	p.sha = sum
	p.mu.Unlock()
}

// configPath is where the plugin is configured, for error paths.
func (p *plugin) configPath() string {
	if p.idx < 0 {
		return "dir"
	}
	return fmt.Sprintf("instances[%d]", p.idx)
}

// what names the plugin's executable or address in messages.
func (p *plugin) what() string {
	if p.inst.Address != "" {
		return p.inst.Address
	}
	return p.inst.Path
}

// Name implements exporters.SnapshotExporter: the plugin's name.
func (p *plugin) Name() string { return p.currentName() }

// Formats implements exporters.SnapshotExporter: the formats the plugin
// last described, or its name while it has never started.
func (p *plugin) Formats() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.formatsLocked()
}

func (p *plugin) formatsLocked() []string {
	if p.desc == nil {
		return []string{p.name}
	}
	return slices.Clone(p.desc.GetFormats())
}

// Version returns the plugin's own version, as it last described itself;
// empty while it has never started.
func (p *plugin) Version() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.desc.GetVersion()
}

// Export implements exporters.SnapshotExporter: it sends s to the plugin
// and writes what the plugin returns to w. It fails at once, without
// calling the plugin, when the plugin is not running (ErrNotRunning), its
// circuit is open (ErrCircuitOpen) or the host is shut down
// (exporters.ErrShutdown). The call is bounded by ctx and by the plugin's
// call timeout; a plugin that lets the timeout pass is hung, and is killed
// and restarted. A failure the plugin reports reads `plugin "<name>":
// <its message>`. Export does not retry, does not keep s, and is safe for
// concurrent use.
func (p *plugin) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	if s == nil {
		return exporters.ExportResult{}, fmt.Errorf("plugin %q: nil snapshot", p.currentName())
	}
	pr, trial, name, err := p.admit()
	if err != nil {
		p.rejected.Add(1)
		return exporters.ExportResult{}, err
	}
	start := time.Now()
	res, out, err := p.call(ctx, pr, name, s, req, w)
	res.Duration = time.Since(start)
	p.h.metrics.recordExport(name, res.Duration)
	p.settle(trial, out, err)
	return res, err
}

// admit returns the instance to call, or why there is none.
func (p *plugin) admit() (pr *proc, trial bool, name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	switch {
	case p.state == StateStopped:
		return nil, false, p.name, fmt.Errorf("plugin %q: %w", p.name, exporters.ErrShutdown)
	case p.cur == nil || p.cur.over():
		return nil, false, p.name, &rejection{msg: p.notRunningLocked(now), kind: ErrNotRunning}
	}
	ok, trial := p.br.admit(now)
	if !ok {
		msg := fmt.Sprintf("plugin %q: circuit open after %d consecutive failures (last: %s); next trial in %s",
			p.name, p.br.failures, p.lastErr, roughly(p.br.openUntil.Sub(now)))
		if p.br.state == breakerHalfOpen {
			msg = fmt.Sprintf("plugin %q: circuit half-open after %d consecutive failures; a trial export is in flight", p.name, p.br.failures)
		}
		return nil, false, p.name, &rejection{msg: msg, kind: ErrCircuitOpen}
	}
	p.refreshStateLocked()
	return p.cur, trial, p.name, nil
}

func (p *plugin) notRunningLocked(now time.Time) string {
	if p.state == StateStarting {
		return fmt.Sprintf("plugin %q is not running: it is starting", p.name)
	}
	msg := fmt.Sprintf("plugin %q is not running", p.name)
	if p.lastErr != "" {
		msg += ": " + p.lastErr
	}
	if wait := p.nextRestart.Sub(now); wait > 0 {
		return msg + "; next restart in " + roughly(wait)
	}
	return msg + "; restarting now"
}

// roughly rounds d for people: whole seconds from 1s up.
func roughly(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= time.Second:
		return d.Round(time.Second).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// call runs one Export on pr and classifies its outcome.
func (p *plugin) call(ctx context.Context, pr *proc, name string, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, outcome, error) {
	res := exporters.ExportResult{Exporter: name, Format: req.Format}
	callCtx, cancel := context.WithTimeout(ctx, p.callTimeout)
	defer cancel()
	// Which deadline the plugin was sent: its call timeout, or the
	// caller's when that is shorter. Overrunning either is hanging.
	d, ok := ctx.Deadline()
	callerShorter := ok && time.Until(d) < p.callTimeout
	hung := func() error {
		if callerShorter {
			return fmt.Errorf("plugin %q did not answer by the export's deadline: it is hung, so it was killed and will be restarted", name)
		}
		return fmt.Errorf("plugin %q did not answer within %s (its call timeout): it is hung, so it was killed and will be restarted", name, p.callTimeout)
	}
	placeholder := &pluginv1.ExportRequest{}
	codec := newCallCodec(placeholder, wire.MarshalExportRequest(s, req))
	resp, err := pr.rpc.Export(callCtx, placeholder, grpc.ForceCodecV2(codec))
	if err == nil {
		ct, verr := checkResponse(resp, s)
		if verr != nil {
			return res, outcomeFailed, fmt.Errorf("plugin %q broke the protocol: %s", name, verr)
		}
		n, err := w.Write(resp.GetData())
		res.ContentType, res.Series, res.Bytes = ct, int(resp.GetSeries()), int64(n)
		if err == nil && n < len(resp.GetData()) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return res, outcomeNotCounts, fmt.Errorf("plugin %q: write its output: %w", name, err)
		}
		return res, outcomeOK, nil
	}
	if p.h.life.Err() != nil {
		return res, outcomeNotCounts, fmt.Errorf("plugin %q: %w", name, exporters.ErrShutdown)
	}
	if codec.unmarshalErr != nil {
		return res, outcomeFailed, fmt.Errorf("plugin %q sent an export response that is not a valid protobuf message: %v", name, codec.unmarshalErr)
	}
	if ctx.Err() != nil {
		if pr.exited() {
			return res, outcomeGone, p.goneError(pr, name)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The plugin was sent the caller's deadline, shorter than its
			// call timeout, and overran it: hung, as for its own timeout.
			// Otherwise a plugin stuck for good would hold every export in
			// its format for the caller's whole deadline, never restarted.
			pr.end(reasonHung, "no answer to an export by its deadline")
			return res, outcomeGone, fmt.Errorf("%w: %w", hung(), ctx.Err())
		}
		// The caller went away: the plugin may be fine.
		return res, outcomeNotCounts, fmt.Errorf("plugin %q: %w", name, ctx.Err())
	}
	st := status.Convert(err)
	if p.timedOut(callCtx, st.Code()) {
		pr.end(reasonHung, "no answer to an export by its deadline")
		return res, outcomeGone, hung()
	}
	switch {
	case pr.exited():
		return res, outcomeGone, p.goneError(pr, name)
	case st.Code() == codes.Unavailable && p.gone(pr):
		return res, outcomeGone, p.goneError(pr, name)
	case st.Code() == codes.InvalidArgument:
		return res, outcomeNotCounts, fmt.Errorf("plugin %q: %s", name, redact.Text(st.Message()))
	}
	return res, outcomeFailed, fmt.Errorf("plugin %q: %s", name, redact.Text(st.Message()))
}

// timedOut reports whether a call failed because its call timeout
// passed. The plugin's side may notice first (its gRPC server resets the
// stream when the deadline it was sent passes), but it got the deadline
// from the host, rounded up, so the host's own deadline has passed too.
func (p *plugin) timedOut(callCtx context.Context, code codes.Code) bool {
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return true
	}
	deadline, _ := callCtx.Deadline()
	return (code == codes.DeadlineExceeded || code == codes.Canceled) && !time.Now().Before(deadline.Add(-deadlineSlack))
}

// deadlineSlack absorbs the scheduling delay of the host's own deadline
// timer in timedOut.
const deadlineSlack = 10 * time.Millisecond

// gone tells a plugin that answered UNAVAILABLE itself (its destination
// is down) from one whose connection broke: a plugin that still answers a
// Describe is there. One that does not is waited for to exit, and killed
// when it does not.
func (p *plugin) gone(pr *proc) bool {
	if p.probe(context.Background(), pr) {
		return false
	}
	if pr.cmd == nil {
		pr.end(reasonExited, "connection lost")
		return true
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-pr.done:
	case <-t.C:
		pr.end(reasonHung, "unreachable over its connection")
	}
	return true
}

// goneError explains an export that failed because its instance ended.
func (p *plugin) goneError(pr *proc, name string) error {
	reason, why := pr.endReason()
	switch {
	case reason == reasonHung:
		return fmt.Errorf("plugin %q was killed (%s) and will be restarted", name, why)
	case pr.cmd == nil:
		return fmt.Errorf("plugin %q: lost the connection to %s during the export; reconnecting", name, p.inst.Address)
	}
	select {
	case <-pr.done:
		return fmt.Errorf("plugin %q exited during the export (%s) and will be restarted", name, pr.exitStatus())
	default:
		return fmt.Errorf("plugin %q exited during the export and will be restarted", name)
	}
}

// checkResponse checks what the protocol requires of an export response
// and returns its content type.
func checkResponse(resp *pluginv1.ExportResponse, s *exporters.Snapshot) (string, error) {
	if n := resp.GetSeries(); n < 0 {
		return "", fmt.Errorf("the response says it exported %d series", n)
	} else if total := s.SeriesCount(); n > int64(total) {
		return "", fmt.Errorf("the response says it exported %d series of a snapshot of %d", n, total)
	}
	ct := resp.GetContentType()
	if ct == "" {
		return "application/octet-stream", nil
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "", fmt.Errorf("content type %q: %v", ct, err)
	}
	return ct, nil
}

// settle records an export's outcome in the counters and the breaker.
func (p *plugin) settle(trial bool, out outcome, err error) {
	if out == outcomeOK {
		p.ok.Add(1)
	} else {
		p.failed.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateStopped {
		return
	}
	now := time.Now()
	switch out {
	case outcomeOK:
		if p.br.state != breakerClosed {
			p.log().Info("plugin circuit closed: an export succeeded")
		}
		p.br.success()
		p.backoff = 0
	case outcomeNotCounts:
		p.br.release(trial)
	default:
		wasOpen := p.br.state == breakerOpen
		p.br.failure(now, trial)
		p.lastErr, p.lastErrAt = err.Error(), now
		if !wasOpen && p.br.state == breakerOpen {
			p.log().Warn("plugin circuit opened: exports are rejected until a trial succeeds",
				"consecutive_failures", p.br.failures, "open_for", p.br.openFor.String(), "error", p.lastErr)
		}
	}
	p.refreshStateLocked()
}

// refreshStateLocked derives the state of a serving plugin from its
// instance and its breaker. An instance that has ended is out of service
// at once, though the supervisor takes it out of p.cur only when it
// restarts it: no export is sent to it meanwhile.
func (p *plugin) refreshStateLocked() {
	if p.cur == nil || p.state == StateStopped {
		return
	}
	switch {
	case p.cur.over():
		p.state = StateRestarting
	case p.br.state == breakerOpen:
		p.state = StateCircuitOpen
	default:
		p.state = StateRunning
	}
}

// OnExportRequested implements exporters.ExportHooks: it queues an
// ExportRequested call when the plugin asked for export callbacks. It
// never blocks: a full queue drops the call and counts it.
func (p *plugin) OnExportRequested(req exporters.ExportRequest) {
	if !capability(p.caps.Load()).has(pluginv1.Capability_CAPABILITY_EXPORT_CALLBACKS) {
		return
	}
	m := &pluginv1.ExportRequestedRequest{ExportId: req.ID, Format: req.Format, Target: req.Target, Options: req.Options}
	p.enqueue(callback{what: "ExportRequested", call: func(ctx context.Context, c pluginv1.ExporterClient) error {
		_, err := c.ExportRequested(ctx, m)
		return err
	}})
}

// OnExportCompleted implements exporters.ExportHooks, as
// OnExportRequested.
func (p *plugin) OnExportCompleted(req exporters.ExportRequest, res exporters.ExportResult, err error) {
	if !capability(p.caps.Load()).has(pluginv1.Capability_CAPABILITY_EXPORT_CALLBACKS) {
		return
	}
	m := &pluginv1.ExportCompletedRequest{
		ExportId: req.ID, Format: req.Format, Target: req.Target,
		Exporter: res.Exporter, Bytes: res.Bytes, Series: int64(res.Series), DurationNanos: int64(res.Duration),
	}
	if err != nil {
		m.Error = err.Error()
	}
	p.enqueue(callback{what: "ExportCompleted", call: func(ctx context.Context, c pluginv1.ExporterClient) error {
		_, err := c.ExportCompleted(ctx, m)
		return err
	}})
}

// enqueue adds cb to the plugin's queue, or drops and counts it.
func (p *plugin) enqueue(cb callback) {
	select {
	case p.queue <- cb:
	default:
		if p.dropped.Add(1) == 1 {
			p.log().Warn("plugin callback queue full: dropping callbacks (counted in "+strings.ReplaceAll(MetricCallbacksDropped, ".", "_")+"_total)", "callback", cb.what)
		}
	}
}

// deliver runs the plugin's queued callbacks, one at a time, each bounded
// by callback_timeout, until stop is closed.
func (p *plugin) deliver(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case cb := <-p.queue:
			p.mu.Lock()
			pr := p.cur
			p.mu.Unlock()
			if pr == nil || pr.over() {
				p.dropped.Add(1)
				continue
			}
			ctx, cancel := context.WithTimeout(p.h.life, p.h.cfg.CallbackTimeout)
			err := cb.call(ctx, pr.rpc)
			cancel()
			p.mu.Lock()
			first := err != nil && !p.cbFailing
			p.cbFailing = err != nil
			p.mu.Unlock()
			if first && p.h.life.Err() == nil {
				p.log().Warn("plugin callback failed (further failures in a row are not logged)", "callback", cb.what, "error", statusText(err))
			}
		}
	}
}

// statusText is a gRPC error's message with its code, or err's text.
func statusText(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s (%s)", st.Message(), st.Code())
	}
	return err.Error()
}

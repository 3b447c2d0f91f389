package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sextant-telemetry/sextant/plugins/proto/pluginv1"
)

// handshake is what go-plugin checks with every launched plugin.
var handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  pluginv1.ProtocolVersion,
	MagicCookieKey:   pluginv1.MagicCookieKey,
	MagicCookieValue: pluginv1.MagicCookieValue,
}

// versioningDoc is where a protocol version mismatch is explained.
const versioningDoc = "docs/plugins.md#versioning"

// probeTimeout bounds the Describe that tells whether a plugin that
// answered UNAVAILABLE is still there.
const probeTimeout = time.Second

// exitGrace is how long the host waits for a plugin whose connection
// broke to be seen exiting before it kills it.
const exitGrace = 2 * time.Second

// callOptions are every call's gRPC options: messages up to
// pluginv1.MaxMessageBytes either way.
var callOptions = grpc.WithDefaultCallOptions(
	grpc.MaxCallRecvMsgSize(pluginv1.MaxMessageBytes),
	grpc.MaxCallSendMsgSize(pluginv1.MaxMessageBytes),
)

// capability is a set of pluginv1 capabilities.
type capability uint32

func capabilitiesOf(cs []pluginv1.Capability) capability {
	var c capability
	for _, x := range cs {
		if x > 0 && x < 32 {
			c |= 1 << uint(x)
		}
	}
	return c
}

func (c capability) has(x pluginv1.Capability) bool { return c&(1<<uint(x)) != 0 }

// capabilityNames are the capabilities as Status shows them.
func capabilityNames(cs []pluginv1.Capability) []string {
	var out []string
	for _, x := range cs {
		name := strings.ToLower(strings.TrimPrefix(x.String(), "CAPABILITY_"))
		if x == pluginv1.Capability_CAPABILITY_UNSPECIFIED {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// proc is one running instance of a plugin: a process the host launched,
// or a connection to a plugin at an address.
type proc struct {
	rpc      pluginv1.ExporterClient
	desc     *pluginv1.DescribeResponse
	caps     capability
	pid      int
	protocol int
	started  time.Time
	// done is closed once the process has exited (or, for an address,
	// once the host gave the connection up).
	done <-chan struct{}

	client *goplugin.Client // launched plugins
	cmd    *exec.Cmd        // launched plugins
	conn   *grpc.ClientConn // plugins at an address
	// kill ends the instance at once: SIGKILL for a process, closing the
	// connection for an address. It may be called more than once.
	kill    func()
	quiet   *atomic.Bool // see goPluginLogger.quiet
	output  []*lineWriter
	sockDir string // launched plugins: the directory of its socket

	// connected is set once go-plugin holds a gRPC client of the plugin.
	connected bool

	mu     sync.Mutex
	reason string // why the host ended it (reasonHung), "" when it ended by itself
	why    string // the host's words for it
}

// end kills the instance for reason, unless it has ended already.
func (pr *proc) end(reason, why string) {
	pr.mu.Lock()
	if pr.reason == "" {
		pr.reason, pr.why = reason, why
	}
	pr.mu.Unlock()
	pr.quiet.Store(true)
	pr.kill()
}

// endReason says why the instance ended: the reason the host gave when it
// ended it, else exited.
func (pr *proc) endReason() (reason, why string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.reason != "" {
		return pr.reason, pr.why
	}
	return reasonExited, ""
}

// over reports whether the instance has ended or the host has ended it.
func (pr *proc) over() bool {
	pr.mu.Lock()
	ended := pr.reason != ""
	pr.mu.Unlock()
	return ended || pr.exited()
}

// exited reports whether done is closed.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how the process ended, e.g. "exit status 3" or
// "signal: killed"; for an address, that the connection was lost. Call
// it only once done is closed.
func (pr *proc) exitStatus() string {
	if pr.cmd == nil {
		return "connection lost"
	}
	// cmd.Wait set ProcessState before go-plugin closed done.
	if ps := pr.cmd.ProcessState; ps != nil {
		return ps.String()
	}
	return "exited"
}

// close tears the instance down: gracefully (go-plugin asks the plugin to
// stop and waits up to 2s before killing it), or at once when force is
// set. It returns when the process has exited and go-plugin's goroutines
// have ended.
func (pr *proc) close(force bool) {
	if pr.client != nil && pr.handshook() && !pr.connected {
		pr.abandon()
		return
	}
	if force || pr.exited() {
		pr.quiet.Store(true)
	}
	if force {
		pr.kill()
	}
	if pr.client != nil {
		pr.client.Kill()
	}
	pr.kill() // releases the process's context once it is gone
	pr.flush()
}

// flush writes out the plugin's last partial output lines and removes
// its socket directory; the process has ended.
func (pr *proc) flush() {
	for _, w := range pr.output {
		w.Flush()
	}
	if pr.sockDir != "" {
		_ = os.RemoveAll(pr.sockDir)
	}
}

// handshook reports whether go-plugin has the plugin's address.
func (pr *proc) handshook() bool { return pr.pid != 0 }

// abandonPoll is how often abandon looks for the process's end.
const abandonPoll = 5 * time.Millisecond

// abandon kills a process that completed its handshake but that the host
// holds no gRPC client of, and waits for go-plugin to reap it. It must
// not call go-plugin's Kill: Kill would dial the dead plugin, and
// go-plugin leaks that connection when the process has already exited.
func (pr *proc) abandon() {
	pr.quiet.Store(true)
	pr.kill()
	for !pr.client.Exited() {
		time.Sleep(abandonPoll)
	}
	pr.flush()
}

// dispensed is what the host's side of the plugin map hands out.
type dispensed struct {
	rpc  pluginv1.ExporterClient
	done <-chan struct{}
}

// grpcPlugin is the host's side of go-plugin's plugin map.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

var _ goplugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer implements goplugin.GRPCPlugin; the host serves nothing.
func (*grpcPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the plugin host does not serve plugins")
}

// GRPCClient implements goplugin.GRPCPlugin. ctx is go-plugin's: it ends
// when the plugin process has exited, which is how the host learns of it.
func (*grpcPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &dispensed{rpc: pluginv1.NewExporterClient(c), done: ctx.Done()}, nil
}

// configError is a plugin's verdict on its configuration section.
type configError struct {
	errs []*pluginv1.FieldError
}

func (e *configError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, fe := range e.errs {
		msgs[i] = fe.GetMessage()
		if fe.GetPath() != "" {
			msgs[i] = fe.GetPath() + ": " + msgs[i]
		}
	}
	return "rejects its configuration: " + strings.Join(msgs, "; ")
}

// launch starts one instance of p and describes and configures it,
// within ctx (bounded by start_timeout by the caller).
func (p *plugin) launch(ctx context.Context) (*proc, error) {
	if p.inst.Address != "" {
		return p.dial(ctx)
	}
	return p.exec(ctx)
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// exec launches p's executable with go-plugin.
func (p *plugin) exec(ctx context.Context) (*proc, error) {
	path := p.inst.Path
	where := fmt.Sprintf("plugin %q (%s)", p.currentName(), path)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such file", where)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", where, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", where)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("%s: not executable (mode %s)", where, fi.Mode().Perm())
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("%s: checksum: %w", where, err)
	}
	p.setSHA256(sum)
	var secure *goplugin.SecureConfig
	if want := strings.ToLower(p.inst.SHA256); want != "" {
		if sum != want {
			return nil, fmt.Errorf("%s: sha256 is %s, configuration says %s", where, sum, want)
		}
		// go-plugin checks again just before it runs the file.
		raw, _ := hex.DecodeString(want)
		secure = &goplugin.SecureConfig{Checksum: raw, Hash: sha256.New()}
	}

	// Cancelling procCtx kills the process (exec.CommandContext), from
	// any goroutine and at any time, without racing go-plugin.
	// A directory of its own for the plugin's socket, removed when the
	// process is gone: go-plugin leaves a crashed plugin's socket behind.
	sockDir, err := os.MkdirTemp("", "sextant-plugin-")
	if err != nil {
		return nil, fmt.Errorf("%s: socket directory: %w", where, err)
	}
	procCtx, kill := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, path, p.inst.Args...)
	cmd.Env = os.Environ()
	for _, k := range sortedKeys(p.inst.Env) {
		cmd.Env = append(cmd.Env, k+"="+p.inst.Env[k])
	}
	cmd.Env = append(cmd.Env, goplugin.EnvUnixSocketDir+"="+sockDir)
	cmd.SysProcAttr = sysProcAttr()

	quiet := &atomic.Bool{}
	rawStderr := newStream(p, "stderr")
	syncStdout := newStream(p, "stdout")
	syncStderr := newStream(p, "stderr")
	deadline, ok := ctx.Deadline()
	startTimeout := p.h.cfg.StartTimeout
	if ok {
		startTimeout = max(time.Until(deadline), time.Millisecond)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          goplugin.PluginSet{pluginv1.PluginName: &grpcPlugin{}},
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env has it, with the instance's env after it
		SecureConfig:     secure,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     startTimeout,
		Logger:           newGoPluginLogger(p, quiet),
		Stderr:           rawStderr,
		SyncStdout:       syncStdout,
		SyncStderr:       syncStderr,
		GRPCDialOptions:  []grpc.DialOption{callOptions},
	})
	pr := &proc{
		cmd: cmd, client: client, kill: kill, quiet: quiet, sockDir: sockDir,
		output: []*lineWriter{rawStderr, syncStdout, syncStderr},
	}
	fail := func(err error) (*proc, error) {
		pr.close(true)
		return nil, err
	}

	// ctx ending kills the process, but only while go-plugin waits for
	// the handshake: see abandon.
	started := make(chan struct{})
	killed := make(chan bool, 1)
	go func() {
		select {
		case <-ctx.Done():
			kill()
			killed <- true
		case <-started:
			killed <- false
		}
	}()
	_, err = client.Start()
	close(started)
	wasKilled := <-killed
	if err != nil {
		pr.close(true) // reaps the process, so that ProcessState can be read
		return nil, p.startError(ctx, where, err, cmd, rawStderr, syncStderr)
	}
	pr.protocol = client.NegotiatedVersion()
	pr.pid = cmd.Process.Pid
	if wasKilled {
		pr.abandon()
		return nil, p.startError(ctx, where, ctx.Err(), cmd)
	}
	cp, err := client.Client()
	if err != nil {
		pr.abandon()
		return nil, withTail(fmt.Errorf("%s: connect: %w", where, err), cmd, rawStderr, syncStderr)
	}
	pr.connected = true
	raw, err := cp.Dispense(pluginv1.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", where, err))
	}
	d := raw.(*dispensed)
	pr.rpc, pr.done = d.rpc, d.done
	if err := p.handshake(ctx, pr, where); err != nil {
		return fail(err)
	}
	return pr, nil
}

// withTail adds how the process ended and its last lines of output to a
// start error.
func withTail(err error, cmd *exec.Cmd, outputs ...*lineWriter) error {
	s := err.Error()
	if ps := cmd.ProcessState; ps != nil && ps.Exited() {
		s += " (" + ps.String() + ")"
	}
	var tail []string
	for _, w := range outputs {
		tail = append(tail, w.Tail()...)
	}
	if len(tail) > 0 {
		s += "; its last output: " + strings.Join(tail, " | ")
	}
	return errors.New(s)
}

// startError explains why go-plugin could not start a plugin, in the
// user's terms.
func (p *plugin) startError(ctx context.Context, where string, err error, cmd *exec.Cmd, outputs ...*lineWriter) error {
	msg := err.Error()
	tailed := func(s string) error { return withTail(errors.New(s), cmd, outputs...) }
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s did not complete its handshake within %s", where, p.h.cfg.StartTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: start canceled: %w", where, ctx.Err())
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		sum, _ := fileSHA256(cmd.Path)
		return fmt.Errorf("%s: sha256 is %s, configuration says %s (the file changed while starting)", where, sum, strings.ToLower(p.inst.SHA256))
	case strings.HasPrefix(msg, "incompatible API version with plugin."):
		theirs := "another"
		if _, after, ok := strings.Cut(msg, "Plugin version: "); ok {
			if v, _, _ := strings.Cut(after, ","); v != "" {
				theirs = strings.TrimSpace(v)
			}
		}
		return fmt.Errorf("plugin %q speaks protocol version %s; this Sextant speaks %d (%s)", p.currentName(), theirs, pluginv1.ProtocolVersion, versioningDoc)
	case strings.HasPrefix(msg, "Unrecognized remote plugin message: "):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		if strings.TrimSpace(line) == "" {
			return tailed(where + " exited before its handshake")
		}
		return tailed(fmt.Sprintf("%s printed %q on standard output instead of its handshake line: a plugin must not write to stdout before it serves (stdout carries go-plugin's handshake; log to stderr)", where, line))
	case msg == "plugin exited before we could connect":
		return tailed(where + " exited before its handshake")
	case strings.HasPrefix(msg, "timeout while waiting for plugin to start"):
		return tailed(fmt.Sprintf("%s did not complete its handshake within %s", where, p.h.cfg.StartTimeout))
	case strings.HasPrefix(msg, "unsupported plugin protocol"):
		return fmt.Errorf("%s serves go-plugin's net/rpc, not gRPC: it is not a Sextant plugin", where)
	case strings.HasPrefix(msg, "incompatible core API version"):
		return fmt.Errorf("%s uses an incompatible go-plugin core protocol; rebuild it with a current SDK", where)
	}
	var perr *fs.PathError
	if errors.As(err, &perr) {
		return fmt.Errorf("%s: cannot run it: %w", where, err)
	}
	return tailed(fmt.Sprintf("%s: %v", where, err))
}

// dial connects to a plugin serving at an address.
func (p *plugin) dial(ctx context.Context) (*proc, error) {
	where := fmt.Sprintf("plugin %q (%s)", p.currentName(), p.inst.Address)
	conn, err := grpc.NewClient(p.inst.Address,
		grpc.WithTransportCredentials(insecure.NewCredentials()), callOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	pr := &proc{
		rpc:      pluginv1.NewExporterClient(conn),
		conn:     conn,
		protocol: pluginv1.ProtocolVersion,
		done:     watchCtx.Done(),
		quiet:    &atomic.Bool{},
		kill: sync.OnceFunc(func() {
			cancel()
			_ = conn.Close()
		}),
	}
	if err := p.handshake(ctx, pr, where); err != nil {
		pr.kill()
		return nil, err
	}
	p.h.wg.Add(1)
	go func() {
		defer p.h.wg.Done()
		p.watchConn(watchCtx, pr)
	}()
	return pr, nil
}

// watchConn gives a plugin at an address up when its connection breaks
// and a probe cannot reach it, so that the supervisor reconnects without
// waiting for an export to fail.
func (p *plugin) watchConn(ctx context.Context, pr *proc) {
	state := pr.conn.GetState()
	for pr.conn.WaitForStateChange(ctx, state) {
		next := pr.conn.GetState()
		if next == connectivity.TransientFailure || (next == connectivity.Idle && state == connectivity.Ready) {
			if !p.probe(ctx, pr) {
				pr.end(reasonExited, "connection lost")
				return
			}
		}
		state = pr.conn.GetState()
	}
}

// probe reports whether the plugin answers a Describe.
func (p *plugin) probe(ctx context.Context, pr *proc) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := pr.rpc.Describe(ctx, p.describeRequest())
	return err == nil
}

func (p *plugin) describeRequest() *pluginv1.DescribeRequest {
	return &pluginv1.DescribeRequest{ProtocolVersion: pluginv1.ProtocolVersion, HostVersion: p.h.set.HostVersion}
}

// handshake describes and, when it takes a configuration, configures a
// fresh instance.
func (p *plugin) handshake(ctx context.Context, pr *proc, where string) error {
	desc, err := pr.rpc.Describe(ctx, p.describeRequest())
	if err != nil {
		return fmt.Errorf("%s: describe: %s", where, statusText(err))
	}
	var formats []string
	for _, f := range desc.GetFormats() {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			formats = append(formats, f)
		}
	}
	slices.Sort(formats)
	formats = slices.Compact(formats)
	if len(formats) == 0 {
		return fmt.Errorf("%s describes no formats", where)
	}
	desc.Formats = formats
	pr.desc, pr.caps = desc, capabilitiesOf(desc.GetCapabilities())
	if pr.caps.has(pluginv1.Capability_CAPABILITY_CONFIGURE) {
		section, err := SectionJSON(p.inst.Config)
		if err != nil { // Validate has checked it
			return fmt.Errorf("%s: config: %w", where, err)
		}
		res, err := pr.rpc.Configure(ctx, &pluginv1.ConfigureRequest{ConfigJson: section})
		if err != nil {
			return fmt.Errorf("%s: configure: %s", where, statusText(err))
		}
		if len(res.GetErrors()) > 0 {
			return fmt.Errorf("%s %w", where, &configError{errs: res.GetErrors()})
		}
	} else if section, _ := SectionJSON(p.inst.Config); string(section) != "{}" {
		return fmt.Errorf("%s %w", where, &configError{errs: []*pluginv1.FieldError{{
			Message: fmt.Sprintf("plugin %s takes no configuration; remove the config section", desc.GetName()),
		}}})
	}
	pr.started = time.Now()
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

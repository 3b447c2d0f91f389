package host

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// start launches an instance, bounded by start_timeout and ctx.
func (p *plugin) start(ctx context.Context) (*proc, error) {
	ctx, cancel := context.WithTimeout(ctx, p.h.cfg.StartTimeout)
	defer cancel()
	return p.launch(ctx)
}

// attach makes pr the serving instance. The caller has settled its name.
// It reports false, attaching nothing, once Shutdown has begun: the check
// and the attachment share one lock, so that Shutdown either finds pr
// (and closes it) or attach refuses it (and its caller closes it).
func (p *plugin) attach(pr *proc) bool {
	p.mu.Lock()
	if p.state == StateStopped {
		p.mu.Unlock()
		return false
	}
	p.cur, p.desc, p.pid, p.protocol = pr, pr.desc, pr.pid, pr.protocol
	p.startedAt, p.nextRestart = pr.started, time.Time{}
	p.state = StateRunning
	p.refreshStateLocked()
	p.mu.Unlock()
	p.caps.Store(uint32(pr.caps))
	return true
}

// fail records a failed start and schedules the next.
func (p *plugin) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr, p.lastErrAt = err.Error(), time.Now()
	if p.state != StateStopped {
		p.state = StateRestarting
	}
	p.scheduleLocked()
}

// detach takes pr, which has ended, out of service, schedules the
// restart and says why it ended. owned is false when Shutdown has taken
// pr already, and will close it.
func (p *plugin) detach(pr *proc) (reason, detail string, owned bool) {
	p.caps.Store(0)
	reason, why := pr.endReason()
	switch {
	case why != "":
		detail = why
	case pr.cmd == nil:
		detail = "connection to " + p.inst.Address + " lost"
	default:
		detail = "exited unexpectedly (" + pr.exitStatus() + ")"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != pr {
		return reason, detail, false
	}
	p.cur, p.pid = nil, 0
	p.state = StateRestarting
	p.lastErr, p.lastErrAt = detail, time.Now()
	p.scheduleLocked()
	return reason, detail, true
}

// scheduleLocked advances the restart backoff and sets the time of the
// next start: restart.initial_backoff after the first failure, doubling
// up to max_backoff, back to the start after a successful export.
func (p *plugin) scheduleLocked() time.Duration {
	r := p.h.cfg.Restart
	if p.backoff == 0 {
		p.backoff = r.InitialBackoff
	} else {
		p.backoff = min(p.backoff*2, r.MaxBackoff)
	}
	p.nextRestart = time.Now().Add(p.backoff)
	return p.backoff
}

// supervise keeps the plugin running until the host stops: it waits for
// the serving instance to end, then restarts the plugin with backoff. pr
// is the instance Start launched; nil when it could not start.
func (p *plugin) supervise(pr *proc) {
	stop := p.h.stop
	reason := reasonStartFailed
	for {
		if pr != nil {
			select {
			case <-pr.done:
			case <-stop:
				return // Shutdown closes the instance
			}
			select {
			case <-stop:
				return
			default:
			}
			var detail string
			var owned bool
			reason, detail, owned = p.detach(pr)
			if !owned {
				return // Shutdown took it
			}
			pr.close(true) // it has ended already: this reaps it
			p.log().Warn("plugin "+detail+"; restarting", "reason", reason, "wait", p.wait().String(), "pid", pr.pid)
		} else {
			p.log().Warn("plugin failed to start; retrying", "reason", reason, "wait", p.wait().String(), "error", p.lastError())
		}
		if !p.sleepUntilRestart(stop) {
			return
		}
		p.countRestart(reason)
		next, err := p.start(p.h.life)
		if err == nil {
			err = p.settleName(next)
		}
		if err == nil {
			err = p.install(next)
		}
		if err != nil {
			if next != nil {
				next.close(true)
			}
			p.fail(err)
			reason, pr = reasonStartFailed, nil
			continue
		}
		pr = next
		p.log().Info("plugin restarted", "pid", next.pid, "version", next.desc.GetVersion(), "formats", next.desc.GetFormats())
	}
}

func (p *plugin) sleepUntilRestart(stop <-chan struct{}) bool {
	p.mu.Lock()
	wait := time.Until(p.nextRestart)
	p.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

func (p *plugin) countRestart(reason string) {
	p.restartsBy[reasonIndex(reason)].Add(1)
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
}

// wait is the current restart backoff.
func (p *plugin) wait() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backoff
}

func (p *plugin) lastError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// settleName checks the name a freshly started instance gives the plugin
// after Start: a plugin without a configured name that had never started
// takes the name it describes itself with, unless that name is taken.
func (p *plugin) settleName(pr *proc) error {
	p.mu.Lock()
	named, current := p.named, p.name
	p.mu.Unlock()
	if named {
		return nil
	}
	want := pr.desc.GetName()
	if err := p.h.checkName(p, want); err != nil {
		return fmt.Errorf("plugin %q (%s) %w", current, p.what(), err)
	}
	p.rename(want)
	return nil
}

// rename makes name the plugin's final name.
func (p *plugin) rename(name string) {
	p.mu.Lock()
	changed := p.name != name
	old := p.name
	p.name, p.named = name, true
	p.mu.Unlock()
	if changed {
		p.logger.Store(p.h.logger.With("plugin", name))
		p.log().Info("plugin takes the name it describes itself with", "was", old)
	}
}

// install puts a started instance into service after Start: it attaches
// it and brings the registry up to date. It fails when the host has
// stopped meanwhile.
func (p *plugin) install(pr *proc) error {
	if !p.attach(pr) {
		return fmt.Errorf("plugin %q: %w", p.currentName(), errStopped)
	}
	if err := p.syncRegistry(); err != nil {
		p.caps.Store(0)
		p.mu.Lock()
		if p.cur == pr {
			p.cur, p.pid = nil, 0
		}
		p.mu.Unlock()
		return fmt.Errorf("plugin %q: register: %w", p.currentName(), err)
	}
	return nil
}

// syncRegistry registers the plugin, or updates its registration after
// its name, formats or version changed.
func (p *plugin) syncRegistry() error {
	reg := p.h.set.Registry
	if reg == nil {
		return nil
	}
	p.mu.Lock()
	name, formats, version := p.name, p.formatsLocked(), p.desc.GetVersion()
	old, oldFormats, oldVersion := p.registered, p.regFormats, p.regVersion
	p.mu.Unlock()
	var err error
	switch {
	case old == "":
		err = reg.Register(p)
	case old != name:
		_ = reg.Unregister(old)
		err = reg.Register(p)
	case !slices.Equal(formats, oldFormats) || version != oldVersion:
		err = reg.Replace(p)
	default:
		return nil
	}
	p.mu.Lock()
	if err == nil {
		p.registered, p.regFormats, p.regVersion = name, formats, version
	} else if old != name {
		p.registered = ""
	}
	p.mu.Unlock()
	return err
}

package host

import "time"

// Breaker states, the values of sextant_plugins_breaker_state (as
// sextant_targets_breaker_state).
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// breakerStateNames are the states as Status and Health show them.
var breakerStateNames = [...]string{"closed", "half_open", "open"}

// breaker is a plugin's circuit breaker. It is not safe for concurrent
// use; the plugin's lock guards it.
type breaker struct {
	threshold int
	openFor   time.Duration

	state     int
	failures  int // consecutive
	openUntil time.Time
	trial     bool // a half-open trial export is in flight
}

// admit decides whether an export may call the plugin at now. trial is
// set for the one export let through after OpenFor; its outcome must be
// reported with success, failure or release.
func (b *breaker) admit(now time.Time) (ok, trial bool) {
	switch b.state {
	case breakerOpen:
		if now.Before(b.openUntil) {
			return false, false
		}
		b.state, b.trial = breakerHalfOpen, true
		return true, true
	case breakerHalfOpen:
		if b.trial {
			return false, false
		}
		b.trial = true
		return true, true
	}
	return true, false
}

// current is the state as reported at now: an open circuit whose OpenFor
// has passed is half-open, waiting for its trial, even while no export
// comes to make the switch (a plugin used only on demand would otherwise
// look open, and alert, long after its destination recovered).
func (b *breaker) current(now time.Time) int {
	if b.state == breakerOpen && !now.Before(b.openUntil) {
		return breakerHalfOpen
	}
	return b.state
}

// success closes the circuit.
func (b *breaker) success() {
	b.state, b.failures, b.trial = breakerClosed, 0, false
}

// failure counts a failed export and opens the circuit after threshold
// failures in a row, or at once when the export was the trial.
func (b *breaker) failure(now time.Time, trial bool) {
	b.failures++
	if trial {
		b.trial = false
	}
	if trial || b.state == breakerHalfOpen || b.failures >= b.threshold {
		b.state, b.openUntil = breakerOpen, now.Add(b.openFor)
	}
}

// release ends a trial whose outcome says nothing about the plugin (the
// caller gave up, or the request was invalid): the next export is the
// trial.
func (b *breaker) release(trial bool) {
	if trial {
		b.trial = false
	}
}

package main

import (
	"context"
	"slices"
	"sync"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
)

// maxHeldEvents bounds what heldPublisher keeps before release: a start-up
// publishes one event per plugin.
const maxHeldEvents = 1024

// heldPublisher holds the events published before release, and publishes
// them then, in order; afterwards it passes events straight through. It
// bridges start-up, when components publish (the registry's
// plugin.registered) before the router subscribes to the bus.
type heldPublisher struct {
	pub exporters.EventPublisher

	mu       sync.Mutex
	released bool
	held     []events.Event
	dropped  int
}

// Publish holds e until release, or publishes it once released.
func (h *heldPublisher) Publish(ctx context.Context, e events.Event) error {
	h.mu.Lock()
	if !h.released {
		if len(h.held) < maxHeldEvents {
			e.Attrs = slices.Clone(e.Attrs) // the caller may reuse them
			h.held = append(h.held, e)
		} else {
			h.dropped++
		}
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	return h.pub.Publish(ctx, e)
}

// release publishes what was held and lets later events through. It
// returns how many were published and how many did not fit.
func (h *heldPublisher) release(ctx context.Context) (published, dropped int) {
	h.mu.Lock()
	held, dropped := h.held, h.dropped
	h.held, h.released = nil, true
	h.mu.Unlock()
	for _, e := range held {
		if h.pub.Publish(ctx, e) == nil {
			published++
		}
	}
	return published, dropped
}

package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
)

func TestHeldPublisherHoldsUntilRelease(t *testing.T) {
	t.Parallel()
	fp := &fakePublisher{}
	h := &heldPublisher{pub: fp}
	attrs := []events.Attr{events.String("plugin_name", "influx")}
	for range maxHeldEvents + 2 {
		require.NoError(t, h.Publish(context.Background(), events.New(events.PluginRegistered, events.NewID(), attrs...)))
	}
	attrs[0] = events.String("plugin_name", "changed") // the caller reuses its slice
	require.Empty(t, fp.events(), "nothing reaches the bus before release")

	published, dropped := h.release(context.Background())
	require.Equal(t, maxHeldEvents, published)
	require.Equal(t, 2, dropped)
	got := fp.events()
	require.Len(t, got, maxHeldEvents)
	v, _ := got[0].Attr("plugin_name")
	require.Equal(t, "influx", v.Str(), "held events keep their own attributes")

	require.NoError(t, h.Publish(context.Background(), events.New(events.PluginUnregistered, events.NewID(), attrs...)))
	require.Len(t, fp.events(), maxHeldEvents+1, "after release events pass straight through")
}

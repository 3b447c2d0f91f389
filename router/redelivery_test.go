package router

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

type eventsRecorder struct{ names []string }

func (r *eventsRecorder) Publish(_ context.Context, e events.Event) error {
	r.names = append(r.names, e.Name)
	return nil
}

// A message delivered twice is one redelivery; calls of the handler within
// one delivery (Retry) are not.
func TestNoticeRedelivery(t *testing.T) {
	t.Parallel()
	rec := &eventsRecorder{}
	r, err := New(Config{Routes: []Route{{Match: events.StepEnqueued, Metrics: []Metric{{Name: "x", Type: MetricTypeCounter}}}}},
		Settings{MeterProvider: sdkmetric.NewMeterProvider(), Events: rec})
	require.NoError(t, err)
	calls := 0
	h := r.noticeRedelivery(func(*message.Message) ([]*message.Message, error) { calls++; return nil, nil })
	msg := message.NewMessage(watermill.NewUUID(), nil)
	_, _ = h(msg)
	require.Empty(t, rec.names)
	_, _ = h(msg)
	require.Equal(t, []string{events.QueueRedelivered}, rec.names)
	infra := message.NewMessage(watermill.NewUUID(), nil)
	infra.Metadata.Set(bus.MetadataInfrastructure, "true")
	_, _ = h(infra)
	_, _ = h(infra)
	require.Len(t, rec.names, 1, "infrastructure messages are never described")
	require.Equal(t, 4, calls)
}

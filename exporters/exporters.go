package exporters

import (
	"context"
	"errors"
	"log/slog"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// ErrShutdown is returned by Export after Shutdown.
var ErrShutdown = errors.New("exporter is shut down")

// Component is what every exporter is: something the host shuts down.
type Component interface {
	// Shutdown releases the component's resources and flushes what it holds,
	// honouring ctx's deadline. It is safe to call more than once and from
	// several goroutines; calls after the first return nil.
	Shutdown(ctx context.Context) error
}

// Puller is an exporter that is scraped rather than pushed to, such as
// Prometheus: the host registers its Reader with the MeterProvider, which
// then serves collections from it. Reader is called once, before the
// MeterProvider is built.
type Puller interface {
	Component
	Reader() sdkmetric.Reader
}

// Config is an exporter's configuration section. Validate returns every
// problem joined, each message starting with the field's YAML name.
type Config interface {
	Validate() error
}

// Settings carries what the host passes in code rather than YAML.
type Settings struct {
	// Logger receives the exporter's logs; nil means slog.Default().
	Logger *slog.Logger
	_      struct{}
}

// Factory builds one type of exporter.
type Factory interface {
	// Type is the key of the exporter's section under exporters: in YAML
	// and the format name in /export?format=.
	Type() string
	// NewDefaultConfig returns a configuration with every default filled
	// in; the config loader decodes the user's section into it.
	NewDefaultConfig() Config
	// Create builds an exporter from a validated configuration. The result
	// may also implement Puller or SnapshotExporter.
	Create(ctx context.Context, cfg Config, set Settings) (Component, error)
}

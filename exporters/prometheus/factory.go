package prometheus

import (
	"context"
	"fmt"

	"github.com/sextant-telemetry/sextant/exporters"
)

// typeName is the section key under exporters: and the format name.
const typeName = "prometheus"

// Factory builds Prometheus exporters. Its zero value is ready to use.
type Factory struct{}

var _ exporters.Factory = Factory{}

// NewFactory returns the Factory for the "prometheus" exporter type.
func NewFactory() exporters.Factory {
	return Factory{}
}

// Type returns "prometheus".
func (Factory) Type() string { return typeName }

// NewDefaultConfig returns a *Config with every default filled in.
func (Factory) NewDefaultConfig() exporters.Config {
	return NewDefaultConfig()
}

// Create builds an *Exporter from cfg, which must be a *Config or Config. It
// validates cfg again. ctx is not used: creation does no I/O. The result
// implements [exporters.Puller] and [net/http.Handler].
func (Factory) Create(_ context.Context, cfg exporters.Config, set exporters.Settings) (exporters.Component, error) {
	var c Config
	switch v := cfg.(type) {
	case *Config:
		if v == nil {
			return nil, fmt.Errorf("%s: nil *Config", typeName)
		}
		c = *v
	case Config:
		c = v
	default:
		return nil, fmt.Errorf("%s: config has type %T, want *prometheus.Config", typeName, cfg)
	}
	return New(c, set)
}

package config_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/exporters"
)

// promConfig and promFactory stand in for exporters/prometheus, which cmd
// passes to config in the real program.
type promConfig struct {
	TranslationStrategy string `yaml:"translation_strategy"`
}

func (c *promConfig) Validate() error { return nil }

type promFactory struct{}

func (promFactory) Type() string                       { return "prometheus" }
func (promFactory) NewDefaultConfig() exporters.Config { return &promConfig{} }
func (promFactory) Create(context.Context, exporters.Config, exporters.Settings) (exporters.Component, error) {
	return nil, errors.New("not in this example")
}

func ExampleParse() {
	// Keys the file sets replace the default's; the rest is kept.
	cfg, err := config.Parse("sextant.yaml", []byte("bus:\n  batch_size: 64\n"), promFactory{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Bus.BatchSize, cfg.Bus.FlushInterval, len(cfg.Router.Routes), "routes")

	// Every problem is reported, each with its position and path.
	_, err = config.Parse("sextant.yaml", []byte(`bus:
  flush_interval: 5
router:
  routes:
    - match: step.claimed
      metrics:
        - {name: steps.claimed, type: countr}
`), promFactory{})
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Printf("line %d, %s: %s\n", p.Line, p.Path, p.Message)
		}
	}
	// Output:
	// 64 5ms 68 routes
	// line 2, bus.flush_interval: want a duration such as "5ms" or "1m30s": a bare number has no unit, got 5
	// line 7, router.routes[0].metrics[0].type: unknown metric type "countr" (allowed: counter, updown_counter, histogram, gauge)
}

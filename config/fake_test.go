package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/targets"
)

// fakeFactory is a hand-written exporters.Factory: the real exporters are
// written elsewhere, and config must not import them anyway.
type fakeFactory struct {
	typ        string
	newDefault func() exporters.Config
}

var _ exporters.Factory = fakeFactory{}

func (f fakeFactory) Type() string                       { return f.typ }
func (f fakeFactory) NewDefaultConfig() exporters.Config { return f.newDefault() }
func (f fakeFactory) Create(context.Context, exporters.Config, exporters.Settings) (exporters.Component, error) {
	return nil, errors.New("fake factory: Create is not implemented")
}

// promConfig stands in for exporters/prometheus.Config.
type promConfig struct {
	TranslationStrategy string `yaml:"translation_strategy"`
	Namespace           string `yaml:"namespace,omitempty"`
}

var translationStrategies = []string{"UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes", "NoUTF8EscapingWithSuffixes", "NoTranslation"}

func (c *promConfig) Validate() error {
	if !slices.Contains(translationStrategies, c.TranslationStrategy) {
		return fmt.Errorf("translation_strategy: unknown strategy %q (allowed: %s)", c.TranslationStrategy, strings.Join(translationStrategies, ", "))
	}
	return nil
}

// jsonConfig is a value (not pointer) Config, to cover that path.
type jsonConfig struct {
	Path string `yaml:"path"`
}

func (c jsonConfig) Validate() error {
	if c.Path == "" {
		return errors.New("path: must not be empty")
	}
	return nil
}

func promFactory() exporters.Factory {
	return fakeFactory{typ: "prometheus", newDefault: func() exporters.Config {
		return &promConfig{TranslationStrategy: "UnderscoreEscapingWithSuffixes"}
	}}
}

func jsonFactory() exporters.Factory {
	return fakeFactory{typ: "json", newDefault: func() exporters.Config { return jsonConfig{Path: "-"} }}
}

// testFactories are the factories most tests pass.
func testFactories() []exporters.Factory {
	return []exporters.Factory{promFactory(), jsonFactory(), targets.Factory{}}
}

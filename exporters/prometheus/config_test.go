package prometheus_test

import (
	"context"
	"encoding"
	"testing"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

var _ encoding.TextUnmarshaler = (*prometheus.TranslationStrategy)(nil)

func TestTranslationStrategyUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		want    prometheus.TranslationStrategy
		wantErr string
	}{
		{name: "default", text: "UnderscoreEscapingWithSuffixes", want: prometheus.TranslationStrategyUnderscoreEscapingWithSuffixes},
		{name: "without suffixes", text: "UnderscoreEscapingWithoutSuffixes", want: prometheus.TranslationStrategyUnderscoreEscapingWithoutSuffixes},
		{name: "utf8 with suffixes", text: "NoUTF8EscapingWithSuffixes", want: prometheus.TranslationStrategyNoUTF8EscapingWithSuffixes},
		{name: "no translation", text: "NoTranslation", want: prometheus.TranslationStrategyNoTranslation},
		{
			name:    "unknown",
			text:    "underscores",
			wantErr: `unknown translation strategy "underscores": allowed values are UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation`,
		},
		{name: "wrong case", text: "notranslation", wantErr: `unknown translation strategy "notranslation"`},
		{name: "empty", text: "", wantErr: `unknown translation strategy ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := prometheus.TranslationStrategy("unchanged")
			err := got.UnmarshalText([]byte(tt.text))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Equal(t, prometheus.TranslationStrategy("unchanged"), got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestTranslationStrategyMatchesOTLPTranslator pins our constants to the
// library's, since the exporter converts one into the other as is.
func TestTranslationStrategyMatchesOTLPTranslator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ours prometheus.TranslationStrategy
		lib  otlptranslator.TranslationStrategyOption
	}{
		{name: "UnderscoreEscapingWithSuffixes", ours: prometheus.TranslationStrategyUnderscoreEscapingWithSuffixes, lib: otlptranslator.UnderscoreEscapingWithSuffixes},
		{name: "UnderscoreEscapingWithoutSuffixes", ours: prometheus.TranslationStrategyUnderscoreEscapingWithoutSuffixes, lib: otlptranslator.UnderscoreEscapingWithoutSuffixes},
		{name: "NoUTF8EscapingWithSuffixes", ours: prometheus.TranslationStrategyNoUTF8EscapingWithSuffixes, lib: otlptranslator.NoUTF8EscapingWithSuffixes},
		{name: "NoTranslation", ours: prometheus.TranslationStrategyNoTranslation, lib: otlptranslator.NoTranslation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, string(tt.lib), string(tt.ours))
			text, err := tt.ours.MarshalText()
			require.NoError(t, err)
			require.Equal(t, tt.name, string(text))
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		modify  func(*prometheus.Config)
		wantErr string
	}{
		{name: "defaults", modify: func(*prometheus.Config) {}},
		{name: "scope and target info flipped", modify: func(c *prometheus.Config) { c.ScopeInfo, c.TargetInfo = true, false }},
		{name: "no translation", modify: func(c *prometheus.Config) { c.TranslationStrategy = prometheus.TranslationStrategyNoTranslation }},
		{
			name:    "unknown strategy",
			modify:  func(c *prometheus.Config) { c.TranslationStrategy = "Bogus" },
			wantErr: `translation_strategy: must be one of UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation, got "Bogus"`,
		},
		{
			name:    "zero value",
			modify:  func(c *prometheus.Config) { *c = prometheus.Config{} },
			wantErr: `translation_strategy: must be one of`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := prometheus.NewDefaultConfig()
			tt.modify(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestFactory(t *testing.T) {
	t.Parallel()
	f := prometheus.NewFactory()
	require.Equal(t, "prometheus", f.Type())
	require.Equal(t, &prometheus.Config{
		TranslationStrategy: prometheus.TranslationStrategyUnderscoreEscapingWithSuffixes,
		ScopeInfo:           false,
		TargetInfo:          true,
	}, f.NewDefaultConfig())

	tests := []struct {
		name    string
		cfg     exporters.Config
		wantErr string
	}{
		{name: "default pointer", cfg: f.NewDefaultConfig()},
		{name: "value", cfg: *prometheus.NewDefaultConfig()},
		{name: "invalid", cfg: &prometheus.Config{TranslationStrategy: "Bogus"}, wantErr: "prometheus: invalid config: translation_strategy: must be one of"},
		{name: "nil pointer", cfg: (*prometheus.Config)(nil), wantErr: "prometheus: nil *Config"},
		{name: "foreign type", cfg: foreignConfig{}, wantErr: "prometheus: config has type prometheus_test.foreignConfig, want *prometheus.Config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, err := f.Create(ctx, tt.cfg, exporters.Settings{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			p, ok := c.(exporters.Puller)
			require.True(t, ok, "Create returned %T, want an exporters.Puller", c)
			require.NotNil(t, p.Reader())
			require.NoError(t, c.Shutdown(ctx))
		})
	}
}

type foreignConfig struct{}

func (foreignConfig) Validate() error { return nil }

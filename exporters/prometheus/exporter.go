package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Exporter is the Prometheus pull exporter. The host registers [Exporter.Reader]
// with its MeterProvider and mounts the Exporter as an [http.Handler]; every
// scrape collects the current cumulative state from the SDK.
//
// All methods are safe for concurrent use.
type Exporter struct {
	reader   sdkmetric.Reader
	registry *promclient.Registry
	handler  http.Handler

	shutdown     atomic.Bool
	shutdownOnce sync.Once
}

var (
	_ exporters.Puller = (*Exporter)(nil)
	_ http.Handler     = (*Exporter)(nil)
)

// New validates cfg and builds an Exporter with its own registry. set.Logger
// (slog.Default() when nil) receives the errors that occur while serving a
// scrape; nothing is logged otherwise.
func New(cfg Config, set exporters.Settings) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: invalid config: %w", typeName, err)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.Default()
	}

	reg := promclient.NewRegistry()
	opts := []otelprom.Option{
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.TranslationStrategyOption(cfg.TranslationStrategy)),
	}
	if !cfg.ScopeInfo {
		opts = append(opts, otelprom.WithoutScopeInfo())
	}
	if !cfg.TargetInfo {
		opts = append(opts, otelprom.WithoutTargetInfo())
	}
	reader, err := otelprom.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: create OpenTelemetry exporter: %w", typeName, err)
	}

	return &Exporter{
		reader:   idempotentReader{reader},
		registry: reg,
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:          errorLogger{logger.With(slog.String("exporter", typeName))},
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}),
	}, nil
}

// Reader returns the OpenTelemetry reader to register with the
// MeterProvider (sdkmetric.WithReader). It returns the same reader on every
// call; register it with one MeterProvider only. It is safe for concurrent
// use. After Shutdown it still returns the reader, which is then shut down
// and yields no data. Both the MeterProvider's Shutdown and this Exporter's
// shut the reader down; whichever comes second is not an error.
func (e *Exporter) Reader() sdkmetric.Reader {
	return e.reader
}

// Gatherer returns the exporter's own registry, for tests and for snapshot
// exports that need the Prometheus data model. Gathering collects from the
// SDK at that moment; the caller owns the returned families. It is safe for
// concurrent use. After Shutdown it gathers nothing.
func (e *Exporter) Gatherer() promclient.Gatherer {
	return e.registry
}

// ServeHTTP serves one scrape: the exposition in the format the request
// negotiates (Prometheus text 0.0.4 by default, OpenMetrics 1.0 when the
// Accept header asks for it, gzip when accepted). A metric that fails to
// translate is logged and left out; the rest is still served. It is safe for
// concurrent use; the request's context is not consulted, since collection
// reads memory only. Nothing is kept after it returns, and nothing is
// retried: the scraper scrapes again. After Shutdown it answers 503 Service
// Unavailable.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.shutdown.Load() {
		http.Error(w, exporters.ErrShutdown.Error(), http.StatusServiceUnavailable)
		return
	}
	e.handler.ServeHTTP(w, r)
}

// Shutdown shuts the reader down, after which scrapes get 503 and Gatherer
// gathers nothing. The exporter holds no buffered data, so there is nothing
// to flush, and shutting a manual reader down does not block, so ctx has
// nothing to bound; it is passed to the reader all the same. Shutdown is
// safe to call more than once, from several goroutines, before the reader
// is registered, and after the MeterProvider shut the reader down; calls
// after the first return nil.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.shutdownOnce.Do(func() {
		e.shutdown.Store(true)
		if err = e.reader.Shutdown(ctx); err != nil {
			err = fmt.Errorf("%s: shut down reader: %w", typeName, err)
		}
	})
	return err
}

// idempotentReader makes shutting the reader down a second time succeed, so
// that the MeterProvider and the Exporter can both shut it down, in either
// order, without reporting an error. Embedding the interface keeps its
// unexported methods, which the SDK calls.
type idempotentReader struct {
	sdkmetric.Reader
}

// Shutdown shuts the reader down; a second call returns nil.
func (r idempotentReader) Shutdown(ctx context.Context) error {
	if err := r.Reader.Shutdown(ctx); !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		return err
	}
	return nil
}

// errorLogger adapts a *slog.Logger to promhttp.Logger.
type errorLogger struct{ l *slog.Logger }

// Println logs its operands, space-separated, at error level.
func (l errorLogger) Println(v ...any) {
	l.l.Error(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

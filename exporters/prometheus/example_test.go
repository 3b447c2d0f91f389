package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

func ExampleNew() {
	ctx := context.Background()
	exp, err := prometheus.New(*prometheus.NewDefaultConfig(), exporters.Settings{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = exp.Shutdown(ctx) }()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp.Reader()))
	defer func() { _ = mp.Shutdown(ctx) }()

	requests, _ := mp.Meter("example").Int64Counter("tasker.tasks.requests.total")
	requests.Add(ctx, 2, metric.WithAttributes(attribute.String("namespace", "default")))

	// exp is an http.Handler: mount it at /metrics.
	srv := httptest.NewServer(exp)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "tasker_") {
			fmt.Print(line)
		}
	}
	// Output:
	// tasker_tasks_requests_total{namespace="default"} 2
}

func ExampleNewFactory() {
	ctx := context.Background()
	f := prometheus.NewFactory()
	cfg := f.NewDefaultConfig().(*prometheus.Config)
	// The config loader decodes the YAML section into cfg; here by hand.
	if err := cfg.TranslationStrategy.UnmarshalText([]byte("UnderscoreEscapingWithoutSuffixes")); err != nil {
		panic(err)
	}
	c, err := f.Create(ctx, cfg, exporters.Settings{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = c.Shutdown(ctx) }()
	_, isPuller := c.(exporters.Puller)
	fmt.Println(f.Type(), isPuller)

	err = cfg.TranslationStrategy.UnmarshalText([]byte("Underscores"))
	fmt.Println(err)
	// Output:
	// prometheus true
	// unknown translation strategy "Underscores": allowed values are UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation
}

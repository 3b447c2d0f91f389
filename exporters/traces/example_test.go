package traces_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sextant-telemetry/sextant/exporters/traces"
)

// ExampleNew builds the pipeline for "--traces stdout" and sends one span
// through a TracerProvider.
func ExampleNew() {
	ctx := context.Background()
	cfg := traces.DefaultConfig() // what the config loader decodes "traces:" into
	if err := cfg.ApplyFlag("stdout"); err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer // os.Stdout when Settings.Stdout is nil
	p, err := traces.New(ctx, cfg, traces.Settings{Stdout: &out})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("traces:", p.Description())

	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	_, span := tp.Tracer("example").Start(ctx, "component.start")
	span.End()
	if err := tp.Shutdown(ctx); err != nil { // shuts the pipeline down too
		fmt.Println(err)
		return
	}

	var line struct {
		Schema, Name, Kind string
		Status             struct{ Code string }
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(line.Schema, line.Name, line.Kind, line.Status.Code)
	fmt.Printf("%+v\n", p.Stats().Dropped)
	// Output:
	// traces: stdout
	// sextant.span/v1 component.start internal unset
	// {QueueFull:0 ExportFailed:0 Shutdown:0}
}

func ExampleConfig_ApplyFlag() {
	cfg := traces.DefaultConfig()
	cfg.Exporter = traces.ExporterTypeOTLP // from the configuration file
	for _, flag := range []string{"file:/var/log/sextant/spans.jsonl", "jaeger"} {
		if err := cfg.ApplyFlag(flag); err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(cfg.Exporter, cfg.File)
	}
	// Output:
	// file /var/log/sextant/spans.jsonl
	// error: unknown traces exporter "jaeger": allowed forms are otlp, stdout, file:PATH, none
}

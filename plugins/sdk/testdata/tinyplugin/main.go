// Command tinyplugin is the smallest plugin the SDK's tests build and
// launch: it writes one line per family and logs what it is configured
// with.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sextant-telemetry/sextant/plugins/sdk"
)

type exporter struct {
	greeting string
}

func (*exporter) Info() sdk.Info {
	return sdk.Info{Name: "tiny", Version: "0.1.0", Description: "The SDK's test plugin.", Formats: []string{"tiny"}}
}

func (e *exporter) Configure(_ context.Context, cfg sdk.Config) error {
	var c struct {
		Greeting string `json:"greeting"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	e.greeting = c.Greeting
	sdk.Logger().Info("tiny configured", "greeting", c.Greeting, "answer", 42)
	return nil
}

func (e *exporter) Export(_ context.Context, req *sdk.Request, w io.Writer) (sdk.Result, error) {
	fmt.Fprintf(w, "%s %s\n", e.greeting, req.ID)
	for _, f := range req.Snapshot.Families {
		fmt.Fprintf(w, "%s %d\n", f.PromName, len(f.Series))
	}
	return sdk.Result{ContentType: "text/plain; charset=utf-8"}, nil
}

func main() { sdk.Serve(&exporter{}) }

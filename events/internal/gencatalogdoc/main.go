// Command gencatalogdoc writes docs/events.md from the event catalog; run it
// with `go generate ./events` (or `make docs`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/internal/catalogdoc"
)

func main() {
	out := flag.String("out", "docs/events.md", "the file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gencatalogdoc:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	var b bytes.Buffer
	// This process registers no custom events: the catalog is the built-in one.
	if err := catalogdoc.Render(&b, events.Catalog()); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// Command sextant is the event-driven telemetry router: it maps lifecycle
// events to metrics with YAML rules and serves them to Prometheus.
//
// main only calls run and sets the exit code; run is the whole program, so
// end-to-end tests drive the real wiring.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a command-line mistake: exit code 2, as flag does.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		if !errors.Is(err, errHelp) {
			fmt.Fprintln(stderr, "sextant:", err)
		}
		return 2
	}
	fmt.Fprintln(stderr, "sextant:", err)
	return 1
}

const usage = `sextant routes application events to metrics.

Usage:
  sextant run     [--config FILE] [--listen ADDR] [--log-level L] [--log-format json|text|auto]
                                                     serve the router
  sextant demo    [--tasks N] [--workflow NAME] [--fail-rate F] [--config FILE] [--listen ADDR] [--exit]
                                                     router plus the reference workflow engine
  sextant check   --config FILE [--plugins]          validate a configuration (--plugins: and let its plugins check their sections)
  sextant publish [--url URL] [--timeout D] [FILE|-] send events (JSON array, object or NDJSON) to POST /events
  sextant explain [--config FILE] --event FILE|- [--json]
                                                     which rules each event matches and the series and spans it produces
  sextant export  --format F [--url URL] [--out FILE] [--match GLOB ...] [--label MATCHER ...]
                  [--token-file FILE] [--timeout D]  one snapshot of a running instance's metrics
  sextant plugins list|inspect NAME [--config FILE | --url URL] [--json]
                                                     the exporter plugins: versions, formats, checksums, health
  sextant config  print [--config FILE]              print the effective configuration
  sextant version                                    print the version

Without --config, the embedded default is used: the in-memory bus, the Tasker
reference metric mapping and Prometheus on http://127.0.0.1:9464/metrics.
`

var errHelp = errors.New("help requested")

// run is the whole program. It returns when the command is done or ctx is
// cancelled (SIGINT/SIGTERM), after an orderly shutdown.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, stdout, stderr)
	case "demo":
		return demoCmd(ctx, rest, stdout, stderr)
	case "check":
		return checkCmd(ctx, rest, stdout, stderr)
	case "publish":
		return publishCmd(ctx, rest, os.Stdin, stdout, stderr)
	case "explain":
		return explainCmd(ctx, rest, os.Stdin, stdout, stderr)
	case "export":
		return exportCmd(ctx, rest, stdout, stderr)
	case "config":
		return configCmd(rest, stdout, stderr)
	case "plugins":
		return pluginsCmd(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

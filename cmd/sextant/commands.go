package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/sextant-telemetry/sextant/config"
	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/otlp"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
	"github.com/sextant-telemetry/sextant/exporters/targets"
	"github.com/sextant-telemetry/sextant/internal/logging"
	"github.com/sextant-telemetry/sextant/router"
)

// Version is the release this binary was built from.
const Version = "0.1.0"

func versionString() string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return fmt.Sprintf("sextant %s (commit %s, %s %s/%s)", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// factories are the built-in exporters the configuration may name.
func factories() []exporters.Factory {
	return []exporters.Factory{prometheus.NewFactory(), otlp.Factory{}, targets.Factory{}}
}

// loadConfig loads path, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(factories()...)
	}
	return config.Load(path, factories()...)
}

// parseFlags parses args with fs, turning -h and misuse into usage errors.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{errHelp}
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `FILE` to validate (required)")
	withPlugins := fs.Bool("plugins", false, "also launch the configured plugins and let each validate its own section")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *path == "" {
		return usageError{errors.New("check: --config FILE is required")}
	}
	cfg, err := config.Load(*path, factories()...)
	if err != nil {
		return err
	}
	n := 0
	for _, r := range cfg.Router.Routes {
		n += len(r.Metrics)
	}
	plugins := ""
	if *withPlugins {
		list, err := probePlugins(ctx, cfg, stderr)
		if err != nil {
			return err
		}
		plugins = fmt.Sprintf(", %d plugins", len(list))
	}
	fmt.Fprintf(stdout, "%s: OK (%d routes, %d metric mappings%s)\n", *path, len(cfg.Router.Routes), n, plugins)
	return nil
}

func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "print" {
		return usageError{errors.New("config: want 'config print [--config FILE]'")}
	}
	fs := flag.NewFlagSet("config print", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `FILE` (default: the embedded default)")
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	cfg.Bus.Postgres.URL = bus.RedactURL(cfg.Bus.Postgres.URL) // passwords never leave the process
	sensitiveKeys := cfg.Router.Traces.SensitiveKeys
	if sensitiveKeys == nil {
		sensitiveKeys = router.DefaultSensitiveKeys
	}
	cfg.Plugins = cfg.Plugins.Redacted(sensitiveKeys)
	out, err := config.Marshal(cfg)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// serviceFlags are the flags run and demo share.
type serviceFlags struct {
	config, listen, logLevel, logFormat, traces *string
	defaultLevel                                string
}

func addServiceFlags(fs *flag.FlagSet, defaultLevel string) serviceFlags {
	return serviceFlags{
		config:       fs.String("config", "", "configuration `FILE` (default: the embedded default)"),
		listen:       fs.String("listen", "", "HTTP listen `ADDR` (overrides server.listen)"),
		logLevel:     fs.String("log-level", "", "log `LEVEL` on stderr: debug, info, warn or error (overrides logging.level; default "+defaultLevel+")"),
		logFormat:    fs.String("log-format", "", "log `FORMAT` on stderr: json, text or auto, text on a terminal (overrides logging.format)"),
		defaultLevel: defaultLevel,
		traces:       fs.String("traces", "", "span `EXPORTER`: otlp, stdout, file:PATH or none (overrides traces.exporter and OTEL_TRACES_EXPORTER)"),
	}
}

// startService loads the configuration the flags name, then builds and
// starts the service; on failure nothing is left running.
func startService(ctx context.Context, f serviceFlags, stderr io.Writer) (*service, *slog.Logger, error) {
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return nil, nil, err
	}
	lo, err := logOptions(cfg, f)
	if err != nil {
		return nil, nil, usageError{err}
	}
	logger, err := logging.New(stderr, lo)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if *f.listen != "" {
		cfg.Server.Listen = *f.listen
	}
	if *f.traces != "" {
		if err := cfg.Traces.ApplyFlag(*f.traces); err != nil {
			return nil, nil, usageError{fmt.Errorf("--traces: %w", err)}
		}
	}
	svc, err := newService(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	svc.configPath, svc.logLevel, svc.logFormat = *f.config, lo.Level, lo.Format
	if err := svc.Start(ctx); err != nil {
		return nil, nil, errors.Join(err, svc.Shutdown(context.WithoutCancel(ctx)))
	}
	return svc, logger, nil
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	sf := addServiceFlags(fs, "info")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	svc, logger, err := startService(ctx, sf, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sextant %s: serving http://%s/metrics (Ctrl-C to stop)\n", Version, svc.Addr())
	<-ctx.Done()
	logger.Info("shutting down", "reason", context.Cause(ctx))
	return svc.Shutdown(context.WithoutCancel(ctx))
}

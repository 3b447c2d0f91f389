// Package otlp pushes the metrics to an OpenTelemetry collector over OTLP
// (gRPC or HTTP) on a schedule: 60 s by default, as in the seeds. It is the
// exporter type "otlp" under exporters: in the configuration; the host
// registers its Reader with the MeterProvider.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Type is the key of the exporter's section under exporters:.
const Type = "otlp"

// Defaults.
const (
	DefaultInterval = 60 * time.Second
	DefaultTimeout  = 10 * time.Second
)

// Config is the exporters.otlp section.
type Config struct {
	// Protocol is grpc or http/protobuf. Empty means
	// OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL,
	// then grpc (the seeds push to localhost:4317).
	Protocol string `yaml:"protocol"`
	// Endpoint is host:port or a URL (http:// sends in plaintext; with
	// http/protobuf a URL without a path posts to /v1/metrics). Empty
	// means OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, then
	// OTEL_EXPORTER_OTLP_ENDPOINT (read by the exporter), then
	// localhost:4317 in plaintext.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends in plaintext. Unset: a URL's scheme decides (http://
	// plaintext, https:// TLS); a host:port on loopback means plaintext,
	// anything else TLS with the system's roots. Set, it must agree with a
	// URL's scheme.
	Insecure *bool `yaml:"insecure"`
	// Headers are sent with every push (e.g. a tenant); keep tokens in
	// OTEL_EXPORTER_OTLP_HEADERS rather than in the file.
	Headers map[string]string `yaml:"headers"`
	// Interval is the time between pushes. 0 means 60s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one push. 0 means 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate reports every problem, each message starting with its key.
func (c Config) Validate() error {
	var errs []error
	if c.Protocol != "" && c.Protocol != "grpc" && c.Protocol != "http/protobuf" {
		errs = append(errs, fmt.Errorf("protocol: must be grpc or http/protobuf, got %q", c.Protocol))
	}
	if c.Endpoint != "" && strings.Contains(c.Endpoint, "://") {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint: want host:port, http://host:port or https://host:port, got %q", c.Endpoint))
		} else if u.User != nil {
			errs = append(errs, errors.New("endpoint: credentials in the URL would reach logs: use headers or OTEL_EXPORTER_OTLP_HEADERS"))
		}
	}
	if c.Insecure != nil && strings.Contains(c.Endpoint, "://") {
		if u, err := url.Parse(c.Endpoint); err == nil && (u.Scheme == "https") == *c.Insecure {
			errs = append(errs, fmt.Errorf("insecure: %t contradicts the endpoint's scheme %s: drop insecure, the scheme decides", *c.Insecure, u.Scheme))
		}
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("interval: must be at least 100ms, got %s", c.Interval))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Factory builds OTLP push exporters.
type Factory struct{}

// Type returns "otlp".
func (Factory) Type() string { return Type }

// NewDefaultConfig returns a *Config whose zero fields mean the defaults.
func (Factory) NewDefaultConfig() exporters.Config { return &Config{} }

// Create builds an *Exporter; it does not connect (gRPC connects lazily).
func (Factory) Create(ctx context.Context, cfg exporters.Config, _ exporters.Settings) (exporters.Component, error) {
	c, ok := cfg.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("%s: config has type %T, want *otlp.Config", Type, cfg)
	}
	return New(ctx, *c)
}

// Exporter pushes every Interval. It implements exporters.Puller: the host
// registers Reader with its MeterProvider.
type Exporter struct {
	reader sdkmetric.Reader
	desc   string
	once   sync.Once
	err    error
}

// New builds the exporter and its periodic reader.
func New(ctx context.Context, c Config) (*Exporter, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Type, err)
	}
	interval, timeout := c.Interval, c.Timeout
	if interval == 0 {
		interval = DefaultInterval
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	proto := c.Protocol
	for _, k := range []string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if proto == "" {
			proto = os.Getenv(k)
		}
	}
	if proto == "" {
		proto = "grpc"
	}
	endpoint := c.Endpoint
	fromEnv := endpoint == "" && (os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "")
	if endpoint == "" && !fromEnv {
		endpoint = "localhost:4317"
		if proto == "http/protobuf" {
			endpoint = "localhost:4318"
		}
	}
	insecure := false
	if c.Insecure != nil {
		insecure = *c.Insecure
	} else if endpoint != "" {
		insecure = plaintext(endpoint)
	}
	var (
		exp sdkmetric.Exporter
		err error
	)
	switch proto {
	case "grpc":
		opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithTimeout(timeout)}
		if strings.Contains(endpoint, "://") {
			opts = append(opts, otlpmetricgrpc.WithEndpointURL(endpoint))
		} else if endpoint != "" {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(endpoint))
		}
		if insecure {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlpmetricgrpc.WithHeaders(c.Headers))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	case "http/protobuf":
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithTimeout(timeout)}
		if strings.Contains(endpoint, "://") {
			// A URL without a path means the collector's usual one, as
			// for OTEL_EXPORTER_OTLP_ENDPOINT; the exporter itself would
			// post to the URL as it is.
			if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
				u.Path = "/v1/metrics"
				endpoint = u.String()
			}
			opts = append(opts, otlpmetrichttp.WithEndpointURL(endpoint))
		} else if endpoint != "" {
			opts = append(opts, otlpmetrichttp.WithEndpoint(endpoint))
		}
		if insecure {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlpmetrichttp.WithHeaders(c.Headers))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("%s: protocol %q from the environment: want grpc or http/protobuf", Type, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Type, err)
	}
	desc := proto + " " + endpoint
	if fromEnv {
		desc = proto + " (endpoint from OTEL_EXPORTER_OTLP_*)"
	}
	return &Exporter{
		reader: sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval), sdkmetric.WithTimeout(timeout)),
		desc:   fmt.Sprintf("%s every %s", desc, interval),
	}, nil
}

// plaintext reports whether an endpoint is sent in plaintext by default:
// an http:// URL or a loopback host.
func plaintext(endpoint string) bool {
	host := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return false
		}
		return u.Scheme == "http" // the scheme says: https is TLS even on loopback
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Reader returns the periodic reader to register with the MeterProvider.
func (e *Exporter) Reader() sdkmetric.Reader { return e.reader }

// Description says where and how often the metrics are pushed.
func (e *Exporter) Description() string { return e.desc }

// Shutdown pushes a last time and stops. The MeterProvider's Shutdown
// also shuts the reader down; whichever comes second is not an error.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.once.Do(func() {
		if err := e.reader.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
			e.err = err
		}
	})
	return e.err
}

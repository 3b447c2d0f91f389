package traces

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ExporterType says where finished spans go.
type ExporterType string

// The exporter types. The empty ExporterType is also valid: it lets
// OTEL_TRACES_EXPORTER choose (otlp means otlp, console means stdout, none
// or unset means none).
const (
	// ExporterTypeNone exports nothing: the pipeline is disabled and costs
	// one branch per span.
	ExporterTypeNone = ExporterType("none")
	// ExporterTypeStdout writes JSON lines (schema sextant.span/v1) to
	// standard output.
	ExporterTypeStdout = ExporterType("stdout")
	// ExporterTypeFile appends JSON lines (schema sextant.span/v1) to
	// Config.File.
	ExporterTypeFile = ExporterType("file")
	// ExporterTypeOTLP sends OTLP to a collector over gRPC or HTTP.
	ExporterTypeOTLP = ExporterType("otlp")
)

func exporterTypes() []ExporterType {
	return []ExporterType{ExporterTypeNone, ExporterTypeStdout, ExporterTypeFile, ExporterTypeOTLP}
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the empty
// string and the names of the defined types, and rejects anything else,
// listing the allowed values.
func (e *ExporterType) UnmarshalText(text []byte) error {
	v := ExporterType(text)
	if v != "" && !slices.Contains(exporterTypes(), v) {
		return fmt.Errorf("unknown traces exporter %q: allowed values are %s", text, allowedExporterTypes())
	}
	*e = v
	return nil
}

func allowedExporterTypes() string {
	return joinQuoted(exporterTypes()) + ", or empty to use OTEL_TRACES_EXPORTER"
}

// Protocol is the OTLP transport.
type Protocol string

// The OTLP protocols. The empty Protocol is also valid: it means
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL, then
// grpc. The OpenTelemetry specification's default is http/protobuf; ours is
// grpc because every seed configuration points at a collector's gRPC port,
// localhost:4317.
const (
	// ProtocolGRPC is OTLP over gRPC (default port 4317).
	ProtocolGRPC = Protocol("grpc")
	// ProtocolHTTPProtobuf is OTLP over HTTP with protobuf bodies (default
	// port 4318, path /v1/traces).
	ProtocolHTTPProtobuf = Protocol("http/protobuf")
)

func protocols() []Protocol { return []Protocol{ProtocolGRPC, ProtocolHTTPProtobuf} }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the empty
// string, grpc and http/protobuf, and rejects anything else.
func (p *Protocol) UnmarshalText(text []byte) error {
	v := Protocol(text)
	if v != "" && !slices.Contains(protocols(), v) {
		return fmt.Errorf("unknown OTLP protocol %q: allowed values are %s", text, allowedProtocols())
	}
	*p = v
	return nil
}

func allowedProtocols() string {
	return joinQuoted(protocols()) + ", or empty to use OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, then grpc"
}

// Compression is the OTLP payload compression.
type Compression string

// The compressions. The empty Compression is also valid: it means
// OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, then OTEL_EXPORTER_OTLP_COMPRESSION,
// then none.
const (
	// CompressionGzip compresses every request with gzip.
	CompressionGzip = Compression("gzip")
	// CompressionNone sends requests uncompressed, whatever the environment
	// says.
	CompressionNone = Compression("none")
)

func compressions() []Compression { return []Compression{CompressionGzip, CompressionNone} }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the empty
// string, gzip and none, and rejects anything else.
func (c *Compression) UnmarshalText(text []byte) error {
	v := Compression(text)
	if v != "" && !slices.Contains(compressions(), v) {
		return fmt.Errorf("unknown OTLP compression %q: allowed values are %s", text, allowedCompressions())
	}
	*c = v
	return nil
}

func allowedCompressions() string {
	return joinQuoted(compressions()) + ", or empty to use OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, OTEL_EXPORTER_OTLP_COMPRESSION, then none"
}

// The defaults applied by DefaultConfig, and by New to fields left zero.
const (
	DefaultQueueSize     = 2048
	DefaultBatchSize     = 512
	DefaultBatchTimeout  = time.Second
	DefaultExportTimeout = 30 * time.Second
	// MaxQueueSize bounds queue_size: the queue is allocated up front.
	MaxQueueSize = 1 << 20

	DefaultRetryInitialInterval = 5 * time.Second
	DefaultRetryMaxInterval     = 30 * time.Second
	DefaultRetryMaxElapsedTime  = time.Minute
)

// Config is the top-level "traces:" section. Start from [DefaultConfig];
// the zero value is valid too, and New reads its zero numbers and durations
// as the defaults.
//
// Precedence, highest first: the --traces flag ([Config.ApplyFlag]), this
// section, the OTEL_* environment variables, the defaults.
type Config struct {
	// Exporter is where spans go: none, stdout, file or otlp. Empty lets
	// OTEL_TRACES_EXPORTER choose: otlp, console (= stdout) or none; unset
	// means none.
	Exporter ExporterType `yaml:"exporter"`
	// File is the JSON-lines file that exporter file appends to. It is
	// created with mode 0644 if missing. Required for exporter file,
	// ignored otherwise.
	File string `yaml:"file"`
	// OTLP configures exporter otlp; ignored otherwise.
	OTLP OTLPConfig `yaml:"otlp"`
	// QueueSize is how many finished spans wait for export before new ones
	// are dropped (reason queue_full). 0 means 2048; at most 1048576.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most spans sent in one export. 0 means 512; at most
	// queue_size.
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout is the longest a span waits for its batch to fill
	// before the batch is sent anyway. 0 means 1s.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// ExportTimeout bounds one export, the OTLP exporter's retries
	// included. 0 means 30s.
	ExportTimeout time.Duration `yaml:"export_timeout"`
}

// OTLPConfig is the "traces: otlp:" section. Every empty field falls back
// to the OTEL_EXPORTER_OTLP_TRACES_* variable, then OTEL_EXPORTER_OTLP_*,
// then the exporter's default.
type OTLPConfig struct {
	// Protocol is grpc or http/protobuf. Empty means
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL,
	// then grpc (the specification says http/protobuf; we say grpc because
	// the seeds send to localhost:4317).
	Protocol Protocol `yaml:"protocol"`
	// Endpoint is host:port, or a URL http://host:port or
	// https://host:port[/path]. Empty means
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT
	// (read as the exporter reads them), then localhost:4317 for grpc or
	// http://localhost:4318/v1/traces for http/protobuf. For http/protobuf a
	// URL without a path, or a host:port, is sent to /v1/traces; a URL
	// with a path is used as it is. gRPC ignores the path.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends in plaintext instead of TLS. Unset, the first rule
	// that applies decides: any tls file set means TLS; an http:// or
	// https:// endpoint means what its scheme says;
	// OTEL_EXPORTER_OTLP_TRACES_INSECURE, then OTEL_EXPORTER_OTLP_INSECURE;
	// an http:// or https:// endpoint from the environment; a certificate
	// from the environment (OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE or
	// CLIENT_CERTIFICATE) means TLS; a host that is localhost or a loopback
	// address (127.0.0.0/8, ::1) means plaintext; anything else means TLS.
	Insecure *bool `yaml:"insecure"`
	// Headers are sent with every request (gRPC metadata or HTTP headers).
	// They are merged over OTEL_EXPORTER_OTLP_TRACES_HEADERS (or, when that
	// is unset, OTEL_EXPORTER_OTLP_HEADERS); on a name in both, this wins,
	// whatever the case of the names.
	Headers map[string]string `yaml:"headers"`
	// TLS holds PEM files, read when the pipeline is built.
	TLS TLSConfig `yaml:"tls"`
	// Timeout bounds one export attempt series at the exporter, retries
	// included. 0 means OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, then
	// OTEL_EXPORTER_OTLP_TIMEOUT, then 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Compression is gzip or none. Empty means
	// OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, then
	// OTEL_EXPORTER_OTLP_COMPRESSION, then none.
	Compression Compression `yaml:"compression"`
	// Retry is the exporter's own retry of retryable failures
	// (Unavailable, 429, 503 and the like).
	Retry RetryConfig `yaml:"retry"`
}

// TLSConfig names PEM files. Each empty field falls back to its
// environment variable: OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE (then
// OTEL_EXPORTER_OTLP_CERTIFICATE), ..._CLIENT_CERTIFICATE and
// ..._CLIENT_KEY.
type TLSConfig struct {
	// CAFile holds the certificates that verify the collector. Empty means
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the client certificate for mutual TLS; set with KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is CertFile's private key; set with CertFile.
	KeyFile string `yaml:"key_file"`
}

// any reports whether a file is named.
func (t TLSConfig) any() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// RetryConfig is the OTLP exporter's exponential backoff for retryable
// failures. Every retry happens within OTLPConfig.Timeout and
// Config.ExportTimeout, whichever ends first.
type RetryConfig struct {
	// Enabled turns retries on; unset means true.
	Enabled *bool `yaml:"enabled"`
	// InitialInterval is the wait before the first retry. 0 means 5s.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the wait between retries. 0 means 30s.
	MaxInterval time.Duration `yaml:"max_interval"`
	// MaxElapsedTime is when retrying stops and the batch is dropped. 0
	// means 1m.
	MaxElapsedTime time.Duration `yaml:"max_elapsed_time"`
}

// DefaultConfig returns a Config with every default written out: exporter
// chosen by OTEL_TRACES_EXPORTER, a queue of 2048, batches of 512 every
// second, 30s per export, and the OTLP exporter's retry defaults.
func DefaultConfig() Config {
	return Config{
		OTLP: OTLPConfig{
			Retry: RetryConfig{
				InitialInterval: DefaultRetryInitialInterval,
				MaxInterval:     DefaultRetryMaxInterval,
				MaxElapsedTime:  DefaultRetryMaxElapsedTime,
			},
		},
		QueueSize:     DefaultQueueSize,
		BatchSize:     DefaultBatchSize,
		BatchTimeout:  DefaultBatchTimeout,
		ExportTimeout: DefaultExportTimeout,
	}
}

// withDefaults fills zero numbers and durations with the defaults.
func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = min(DefaultBatchSize, c.QueueSize)
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.ExportTimeout == 0 {
		c.ExportTimeout = DefaultExportTimeout
	}
	r := &c.OTLP.Retry
	if r.InitialInterval == 0 {
		r.InitialInterval = DefaultRetryInitialInterval
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = max(DefaultRetryMaxInterval, r.InitialInterval)
	}
	if r.MaxElapsedTime == 0 {
		r.MaxElapsedTime = DefaultRetryMaxElapsedTime
	}
	return c
}

// Validate returns every problem in c joined, each message starting with
// the field's YAML path below "traces:". It does no I/O: files are read by
// New, and the environment is consulted only there.
func (c Config) Validate() error {
	var p problems
	if c.Exporter != "" && !slices.Contains(exporterTypes(), c.Exporter) {
		p.add("Exporter", "must be one of %s; got %q", allowedExporterTypes(), c.Exporter)
	}
	if c.Exporter == ExporterTypeFile && c.File == "" {
		p.add("File", "required when exporter is %q", ExporterTypeFile)
	}
	queueOK := c.QueueSize >= 0 && c.QueueSize <= MaxQueueSize
	if !queueOK {
		p.add("QueueSize", "must be between 1 and %d (0 means %d); got %d", MaxQueueSize, DefaultQueueSize, c.QueueSize)
	}
	d := c.withDefaults()
	switch {
	case c.BatchSize < 0:
		p.add("BatchSize", "must be positive (0 means %d); got %d", DefaultBatchSize, c.BatchSize)
	case queueOK && d.BatchSize > d.QueueSize:
		p.add("BatchSize", "must be at most queue_size (%d); got %d", d.QueueSize, d.BatchSize)
	}
	if c.BatchTimeout < 0 {
		p.add("BatchTimeout", "must not be negative; got %s", c.BatchTimeout)
	}
	if c.ExportTimeout < 0 {
		p.add("ExportTimeout", "must not be negative; got %s", c.ExportTimeout)
	}
	c.OTLP.validate(&p)
	return errors.Join(p...)
}

func (o OTLPConfig) validate(p *problems) {
	if o.Protocol != "" && !slices.Contains(protocols(), o.Protocol) {
		p.add("OTLP.Protocol", "must be one of %s; got %q", allowedProtocols(), o.Protocol)
	}
	scheme := ""
	if o.Endpoint != "" {
		ep, err := parseEndpoint(o.Endpoint)
		if err != nil {
			p.add("OTLP.Endpoint", "%v", err)
		}
		scheme = ep.scheme
	}
	if o.Insecure != nil && *o.Insecure {
		if scheme == "https" {
			p.add("OTLP.Insecure", "must not be true with an https:// endpoint (%q)", o.Endpoint)
		}
		if o.TLS.any() {
			p.add("OTLP.Insecure", "must not be true when otlp.tls names a file")
		}
	}
	if o.Insecure != nil && !*o.Insecure && scheme == "http" {
		p.add("OTLP.Insecure", "must not be false with an http:// endpoint (%q); use https://", o.Endpoint)
	}
	if scheme == "http" && o.TLS.any() {
		p.add("OTLP.Endpoint", "an http:// endpoint is plaintext, but otlp.tls names a file; use https://")
	}
	if o.TLS.CertFile == "" && o.TLS.KeyFile != "" {
		p.add("OTLP.TLS.CertFile", "required when otlp.tls.key_file is set")
	}
	if o.TLS.CertFile != "" && o.TLS.KeyFile == "" {
		p.add("OTLP.TLS.KeyFile", "required when otlp.tls.cert_file is set")
	}
	for _, k := range sortedKeys(o.Headers) {
		at := fmt.Sprintf("%s[%q]", yamlPath("OTLP.Headers"), k)
		if !isToken(k) {
			p.addAt(at, "the name must be an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)")
		}
		if strings.ContainsAny(o.Headers[k], "\r\n\x00") {
			p.addAt(at, "the value must not contain CR, LF or NUL")
		}
	}
	if o.Timeout < 0 {
		p.add("OTLP.Timeout", "must not be negative; got %s", o.Timeout)
	}
	if o.Compression != "" && !slices.Contains(compressions(), o.Compression) {
		p.add("OTLP.Compression", "must be one of %s; got %q", allowedCompressions(), o.Compression)
	}
	r := o.Retry
	for _, f := range []struct {
		field string
		v     time.Duration
	}{
		{"OTLP.Retry.InitialInterval", r.InitialInterval},
		{"OTLP.Retry.MaxInterval", r.MaxInterval},
		{"OTLP.Retry.MaxElapsedTime", r.MaxElapsedTime},
	} {
		if f.v < 0 {
			p.add(f.field, "must not be negative; got %s", f.v)
		}
	}
	if r.MaxInterval > 0 && r.InitialInterval > r.MaxInterval {
		p.add("OTLP.Retry.MaxInterval", "must be at least otlp.retry.initial_interval (%s); got %s", r.InitialInterval, r.MaxInterval)
	}
}

// ApplyFlag sets the exporter from the --traces flag, on top of whatever the
// configuration file said, so that the flag wins. s is one of otlp,
// stdout, none or file:PATH (which also sets File). On error c is left
// unchanged.
func (c *Config) ApplyFlag(s string) error {
	switch ExporterType(s) {
	case ExporterTypeOTLP, ExporterTypeStdout, ExporterTypeNone:
		c.Exporter = ExporterType(s)
		return nil
	case ExporterTypeFile:
		return fmt.Errorf("traces exporter %q needs a path: use file:PATH", s)
	}
	path, ok := strings.CutPrefix(s, string(ExporterTypeFile)+":")
	if !ok {
		return fmt.Errorf("unknown traces exporter %q: allowed forms are %s", s, FlagForms)
	}
	if path == "" {
		return fmt.Errorf("traces exporter %q has an empty path: use file:PATH", s)
	}
	c.Exporter, c.File = ExporterTypeFile, path
	return nil
}

// FlagForms lists what [Config.ApplyFlag] accepts, for flag help texts.
const FlagForms = "otlp, stdout, file:PATH, none"

// endpoint is a parsed otlp.endpoint.
type endpoint struct {
	scheme string // "", "http" or "https"
	host   string // host:port, or host for a URL without a port
	path   string // URL path; "" for host:port
}

// parseEndpoint accepts host:port or an http(s) URL with a host.
func parseEndpoint(s string) (endpoint, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return endpoint{}, fmt.Errorf("not a valid URL: %w", err)
		}
		scheme := strings.ToLower(u.Scheme)
		if scheme != "http" && scheme != "https" {
			return endpoint{}, fmt.Errorf("a URL must be http:// or https://; got %q", s)
		}
		if u.Host == "" {
			return endpoint{}, fmt.Errorf("the URL %q has no host", s)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return endpoint{}, fmt.Errorf("the URL %q must not have a query, fragment or user info", s)
		}
		if p := u.Port(); p != "" {
			if err := checkPort(p); err != nil {
				return endpoint{}, fmt.Errorf("the URL %q: %w", s, err)
			}
		}
		return endpoint{scheme: scheme, host: u.Host, path: u.Path}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return endpoint{}, fmt.Errorf("must be host:port or an http:// or https:// URL; got %q", s)
	}
	if err := checkPort(port); err != nil {
		return endpoint{}, fmt.Errorf("%q: %w", s, err)
	}
	return endpoint{host: s}, nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be a number from 1 to 65535; got %q", p)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of a header
// name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// problems collects validation errors, each prefixed with a YAML path.
type problems []error

// add records a problem with the Config field named by a dotted Go path
// ("OTLP.Retry.MaxInterval" is reported as "otlp.retry.max_interval"),
// read from the struct tags so that messages cannot drift from them.
func (p *problems) add(field, format string, args ...any) {
	p.addAt(yamlPath(field), format, args...)
}

// addAt records a problem at a path already spelt out.
func (p *problems) addAt(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// yamlPath turns a dotted Go field path of Config into its YAML path.
func yamlPath(field string) string {
	t := reflect.TypeFor[Config]()
	var names []string
	for part := range strings.SplitSeq(field, ".") {
		f, ok := t.FieldByName(part)
		if !ok {
			panic("traces: Config has no field " + field)
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		names = append(names, name)
		t = f.Type
	}
	return strings.Join(names, ".")
}

func joinQuoted[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

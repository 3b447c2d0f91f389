package traces_test

import (
	"encoding"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters/traces"
)

var (
	_ encoding.TextUnmarshaler = (*traces.ExporterType)(nil)
	_ encoding.TextUnmarshaler = (*traces.Protocol)(nil)
	_ encoding.TextUnmarshaler = (*traces.Compression)(nil)
)

func ptr[T any](v T) *T { return &v }

func TestEnumUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  encoding.TextUnmarshaler
		text    string
		wantErr string
	}{
		{name: "exporter otlp", target: new(traces.ExporterType), text: "otlp"},
		{name: "exporter file", target: new(traces.ExporterType), text: "file"},
		{name: "exporter empty", target: new(traces.ExporterType), text: ""},
		{name: "exporter console", target: new(traces.ExporterType), text: "console",
			wantErr: `unknown traces exporter "console": allowed values are none, stdout, file, otlp, or empty to use OTEL_TRACES_EXPORTER`},
		{name: "exporter wrong case", target: new(traces.ExporterType), text: "OTLP", wantErr: `unknown traces exporter "OTLP"`},
		{name: "protocol grpc", target: new(traces.Protocol), text: "grpc"},
		{name: "protocol http", target: new(traces.Protocol), text: "http/protobuf"},
		{name: "protocol json", target: new(traces.Protocol), text: "http/json",
			wantErr: `unknown OTLP protocol "http/json": allowed values are grpc, http/protobuf, or empty`},
		{name: "compression gzip", target: new(traces.Compression), text: "gzip"},
		{name: "compression none", target: new(traces.Compression), text: "none"},
		{name: "compression zstd", target: new(traces.Compression), text: "zstd", wantErr: `unknown OTLP compression "zstd": allowed values are gzip, none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.target.UnmarshalText([]byte(tt.text))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			switch v := tt.target.(type) {
			case *traces.ExporterType:
				require.Equal(t, tt.text, string(*v))
			case *traces.Protocol:
				require.Equal(t, tt.text, string(*v))
			case *traces.Compression:
				require.Equal(t, tt.text, string(*v))
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	cfg := traces.DefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, traces.ExporterType(""), cfg.Exporter, "the environment chooses by default")
	require.Equal(t, 2048, cfg.QueueSize)
	require.Equal(t, 512, cfg.BatchSize)
	require.Equal(t, time.Second, cfg.BatchTimeout)
	require.Equal(t, 30*time.Second, cfg.ExportTimeout)
	require.Equal(t, traces.RetryConfig{InitialInterval: 5 * time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: time.Minute}, cfg.OTLP.Retry)
	require.NoError(t, traces.Config{}.Validate(), "the zero value is valid: zeros mean the defaults")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*traces.Config)
		// wantErrs are the messages, each a prefix of one line of the
		// joined error, in order.
		wantErrs []string
	}{
		{name: "defaults", modify: func(*traces.Config) {}},
		{name: "otlp full", modify: func(c *traces.Config) {
			c.Exporter = traces.ExporterTypeOTLP
			c.OTLP = traces.OTLPConfig{
				Protocol: traces.ProtocolHTTPProtobuf, Endpoint: "https://collector.example:4318/v1/traces",
				Headers: map[string]string{"Authorization": "Bearer x", "x-tenant": "a"},
				TLS:     traces.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"},
				Timeout: time.Second, Compression: traces.CompressionGzip,
				Retry: traces.RetryConfig{Enabled: ptr(false), InitialInterval: time.Second, MaxInterval: time.Second},
			}
		}},
		{name: "bare endpoint", modify: func(c *traces.Config) { c.OTLP.Endpoint = "collector:4317" }},
		{name: "ipv6 endpoint", modify: func(c *traces.Config) { c.OTLP.Endpoint = "[::1]:4317" }},
		{name: "file", modify: func(c *traces.Config) { c.Exporter, c.File = traces.ExporterTypeFile, "/tmp/spans.jsonl" }},
		{name: "file set for another exporter is ignored", modify: func(c *traces.Config) { c.Exporter, c.File = traces.ExporterTypeOTLP, "x" }},
		{name: "batch equals queue", modify: func(c *traces.Config) { c.QueueSize, c.BatchSize = 10, 10 }},
		{name: "small queue, default batch shrinks", modify: func(c *traces.Config) { c.QueueSize, c.BatchSize = 10, 0 }},
		{
			name:     "unknown exporter",
			modify:   func(c *traces.Config) { c.Exporter = "jaeger" },
			wantErrs: []string{`exporter: must be one of none, stdout, file, otlp, or empty to use OTEL_TRACES_EXPORTER; got "jaeger"`},
		},
		{
			name:     "file without path",
			modify:   func(c *traces.Config) { c.Exporter = traces.ExporterTypeFile },
			wantErrs: []string{`file: required when exporter is "file"`},
		},
		{
			name: "sizes",
			modify: func(c *traces.Config) {
				c.QueueSize, c.BatchSize, c.BatchTimeout, c.ExportTimeout = -1, -2, -time.Second, -time.Second
			},
			wantErrs: []string{
				"queue_size: must be between 1 and 1048576 (0 means 2048); got -1",
				"batch_size: must be positive (0 means 512); got -2",
				"batch_timeout: must not be negative; got -1s",
				"export_timeout: must not be negative; got -1s",
			},
		},
		{
			name:     "queue too big",
			modify:   func(c *traces.Config) { c.QueueSize = 1<<20 + 1 },
			wantErrs: []string{"queue_size: must be between 1 and 1048576"},
		},
		{
			name:     "batch over queue",
			modify:   func(c *traces.Config) { c.QueueSize, c.BatchSize = 100, 101 },
			wantErrs: []string{"batch_size: must be at most queue_size (100); got 101"},
		},
		{
			name:     "batch over default queue",
			modify:   func(c *traces.Config) { c.QueueSize, c.BatchSize = 0, 4096 },
			wantErrs: []string{"batch_size: must be at most queue_size (2048); got 4096"},
		},
		{
			name:     "protocol",
			modify:   func(c *traces.Config) { c.OTLP.Protocol = "http/json" },
			wantErrs: []string{`otlp.protocol: must be one of grpc, http/protobuf, or empty to use OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, then grpc; got "http/json"`},
		},
		{
			name:     "endpoint without port",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint = "collector" },
			wantErrs: []string{`otlp.endpoint: must be host:port or an http:// or https:// URL; got "collector"`},
		},
		{
			name:     "endpoint with bad port",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint = "collector:99999" },
			wantErrs: []string{`otlp.endpoint: "collector:99999": port must be a number from 1 to 65535; got "99999"`},
		},
		{
			name:     "endpoint scheme",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint = "grpc://collector:4317" },
			wantErrs: []string{`otlp.endpoint: a URL must be http:// or https://; got "grpc://collector:4317"`},
		},
		{
			name:     "endpoint URL without host",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint = "http:///v1/traces" },
			wantErrs: []string{`otlp.endpoint: the URL "http:///v1/traces" has no host`},
		},
		{
			name:     "endpoint URL with query",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint = "https://c:4318/v1/traces?x=1" },
			wantErrs: []string{`otlp.endpoint: the URL "https://c:4318/v1/traces?x=1" must not have a query, fragment or user info`},
		},
		{
			name:     "insecure with https",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint, c.OTLP.Insecure = "https://c:4317", ptr(true) },
			wantErrs: []string{`otlp.insecure: must not be true with an https:// endpoint ("https://c:4317")`},
		},
		{
			name:     "secure with http",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint, c.OTLP.Insecure = "http://c:4317", ptr(false) },
			wantErrs: []string{`otlp.insecure: must not be false with an http:// endpoint ("http://c:4317"); use https://`},
		},
		{
			name:     "insecure with tls files",
			modify:   func(c *traces.Config) { c.OTLP.Insecure, c.OTLP.TLS.CAFile = ptr(true), "ca.pem" },
			wantErrs: []string{"otlp.insecure: must not be true when otlp.tls names a file"},
		},
		{
			name:     "http endpoint with tls files",
			modify:   func(c *traces.Config) { c.OTLP.Endpoint, c.OTLP.TLS.CAFile = "http://c:4318", "ca.pem" },
			wantErrs: []string{"otlp.endpoint: an http:// endpoint is plaintext, but otlp.tls names a file; use https://"},
		},
		{
			name:     "cert without key",
			modify:   func(c *traces.Config) { c.OTLP.TLS.CertFile = "c.pem" },
			wantErrs: []string{"otlp.tls.key_file: required when otlp.tls.cert_file is set"},
		},
		{
			name:     "key without cert",
			modify:   func(c *traces.Config) { c.OTLP.TLS.KeyFile = "k.pem" },
			wantErrs: []string{"otlp.tls.cert_file: required when otlp.tls.key_file is set"},
		},
		{
			name: "headers",
			modify: func(c *traces.Config) {
				c.OTLP.Headers = map[string]string{"": "x", "bad name": "v", "ok": "line\nbreak"}
			},
			wantErrs: []string{
				`otlp.headers[""]: the name must be an HTTP token`,
				`otlp.headers["bad name"]: the name must be an HTTP token`,
				`otlp.headers["ok"]: the value must not contain CR, LF or NUL`,
			},
		},
		{
			name:     "timeout and compression",
			modify:   func(c *traces.Config) { c.OTLP.Timeout, c.OTLP.Compression = -1, "br" },
			wantErrs: []string{"otlp.timeout: must not be negative; got -1ns", `otlp.compression: must be one of gzip, none, or empty`},
		},
		{
			name: "retry",
			modify: func(c *traces.Config) {
				c.OTLP.Retry = traces.RetryConfig{InitialInterval: -1, MaxInterval: -1, MaxElapsedTime: -1}
			},
			wantErrs: []string{
				"otlp.retry.initial_interval: must not be negative",
				"otlp.retry.max_interval: must not be negative",
				"otlp.retry.max_elapsed_time: must not be negative",
			},
		},
		{
			name: "retry intervals crossed",
			modify: func(c *traces.Config) {
				c.OTLP.Retry.InitialInterval, c.OTLP.Retry.MaxInterval = time.Minute, time.Second
			},
			wantErrs: []string{"otlp.retry.max_interval: must be at least otlp.retry.initial_interval (1m0s); got 1s"},
		},
		{
			name: "everything at once",
			modify: func(c *traces.Config) {
				c.Exporter, c.QueueSize, c.OTLP.Protocol = "x", -1, "y"
			},
			wantErrs: []string{"exporter: ", "queue_size: ", "otlp.protocol: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := traces.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.wantErrs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.wantErrs), "got:\n%s", err)
			for i, want := range tt.wantErrs {
				require.True(t, strings.HasPrefix(lines[i], want), "line %d:\n got: %s\nwant: %s", i, lines[i], want)
			}
		})
	}
}

func TestApplyFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		flag     string
		want     traces.ExporterType
		wantFile string
		wantErr  string
	}{
		{name: "otlp", flag: "otlp", want: traces.ExporterTypeOTLP, wantFile: "from-config.jsonl"},
		{name: "stdout", flag: "stdout", want: traces.ExporterTypeStdout, wantFile: "from-config.jsonl"},
		{name: "none", flag: "none", want: traces.ExporterTypeNone, wantFile: "from-config.jsonl"},
		{name: "file", flag: "file:/var/log/spans.jsonl", want: traces.ExporterTypeFile, wantFile: "/var/log/spans.jsonl"},
		{name: "file with colon in path", flag: "file:C:/spans.jsonl", want: traces.ExporterTypeFile, wantFile: "C:/spans.jsonl"},
		{name: "file relative", flag: "file:spans.jsonl", want: traces.ExporterTypeFile, wantFile: "spans.jsonl"},
		{name: "file without path", flag: "file", wantErr: `traces exporter "file" needs a path: use file:PATH`},
		{name: "file empty path", flag: "file:", wantErr: `traces exporter "file:" has an empty path: use file:PATH`},
		{name: "empty", flag: "", wantErr: `unknown traces exporter "": allowed forms are otlp, stdout, file:PATH, none`},
		{name: "console", flag: "console", wantErr: `unknown traces exporter "console": allowed forms are otlp, stdout, file:PATH, none`},
		{name: "upper case", flag: "OTLP", wantErr: `unknown traces exporter "OTLP"`},
		{name: "spaces", flag: " otlp", wantErr: `unknown traces exporter " otlp"`},
		{name: "file prefix upper", flag: "FILE:x", wantErr: `unknown traces exporter "FILE:x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := traces.DefaultConfig()
			cfg.Exporter, cfg.File = traces.ExporterTypeFile, "from-config.jsonl"
			before := cfg
			err := cfg.ApplyFlag(tt.flag)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Equal(t, before, cfg, "a rejected flag changes nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Exporter)
			require.Equal(t, tt.wantFile, cfg.File)
			require.NoError(t, cfg.Validate())
		})
	}
}

func FuzzApplyFlag(f *testing.F) {
	for _, s := range []string{"otlp", "stdout", "none", "file:x", "file:", "file", "", "file::", "otlp ", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg := traces.DefaultConfig()
		before := cfg
		if err := cfg.ApplyFlag(s); err != nil {
			require.Equal(t, before, cfg)
			require.Contains(t, err.Error(), "file:PATH")
			return
		}
		require.NoError(t, cfg.Validate())
		if cfg.Exporter == traces.ExporterTypeFile {
			require.Equal(t, "file:"+cfg.File, s)
			require.NotEmpty(t, cfg.File)
			return
		}
		require.Equal(t, string(cfg.Exporter), s)
		require.Contains(t, []traces.ExporterType{traces.ExporterTypeOTLP, traces.ExporterTypeStdout, traces.ExporterTypeNone}, cfg.Exporter)
	})
}

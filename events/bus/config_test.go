package bus_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/bus"
)

// yamlNames returns the yaml names of Config's fields, which every
// validation message must start with.
func yamlNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	typ := reflect.TypeFor[bus.Config]()
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		require.NotEmpty(t, tag, "field %s has a yaml tag", typ.Field(i).Name)
		names[tag] = true
	}
	return names
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	fields := yamlNames(t)
	maxBatch := strconv.Itoa(events.MaxBatchEvents)
	tests := []struct {
		name   string
		mutate func(c *bus.Config)
		want   []string // one entry per problem, each "field: message"
	}{
		{name: "default is valid", mutate: func(*bus.Config) {}},
		{name: "batch size 1", mutate: func(c *bus.Config) { c.BatchSize = 1 }},
		{name: "batch size at the decoder's limit", mutate: func(c *bus.Config) { c.BatchSize = events.MaxBatchEvents }},
		{name: "tiny flush interval", mutate: func(c *bus.Config) { c.FlushInterval = time.Nanosecond }},
		{name: "unknown driver", mutate: func(c *bus.Config) { c.Driver = "kafka" },
			want: []string{`driver: unknown bus driver "kafka" (allowed: memory, postgres)`}},
		{name: "empty driver", mutate: func(c *bus.Config) { c.Driver = "" },
			want: []string{`driver: unknown bus driver "" (allowed: memory, postgres)`}},
		{name: "driver is case-sensitive", mutate: func(c *bus.Config) { c.Driver = "Memory" },
			want: []string{`driver: unknown bus driver "Memory"`}},
		{name: "empty topic", mutate: func(c *bus.Config) { c.Topic = "" },
			want: []string{"topic: must not be empty"}},
		{name: "zero batch size", mutate: func(c *bus.Config) { c.BatchSize = 0 },
			want: []string{"batch_size: must be between 1 and " + maxBatch + ", got 0"}},
		{name: "negative batch size", mutate: func(c *bus.Config) { c.BatchSize = -5 },
			want: []string{"batch_size: must be between 1 and " + maxBatch + ", got -5"}},
		{name: "batch size the decoder would reject", mutate: func(c *bus.Config) { c.BatchSize = events.MaxBatchEvents + 1 },
			want: []string{"batch_size: must be between 1 and " + maxBatch + ", got " + strconv.Itoa(events.MaxBatchEvents+1)}},
		{name: "batch size over the builder's limit", mutate: func(c *bus.Config) { c.BatchSize = events.MaxBuilderEvents + 1 },
			want: []string{"batch_size: must be between 1 and " + maxBatch}},
		{name: "zero flush interval", mutate: func(c *bus.Config) { c.FlushInterval = 0 },
			want: []string{"flush_interval: must be positive, got 0s"}},
		{name: "negative flush interval", mutate: func(c *bus.Config) { c.FlushInterval = -time.Second },
			want: []string{"flush_interval: must be positive, got -1s"}},
		{name: "every problem reported", mutate: func(c *bus.Config) { *c = bus.Config{} }, want: []string{
			`driver: unknown bus driver ""`, "topic: must not be empty", "partitions: must be between 1 and 256, got 0", "batch_size: must be between", "flush_interval: must be positive"}},
		{name: "zero partitions", mutate: func(c *bus.Config) { c.Partitions = 0 }, want: []string{"partitions: must be between 1 and 256, got 0"}},
		{name: "too many partitions", mutate: func(c *bus.Config) { c.Partitions = 257 }, want: []string{"partitions: must be between 1 and 256, got 257"}},
		{name: "topic unfit for a table name", mutate: func(c *bus.Config) { c.Topic = "events;drop" }, want: []string{`topic: "events;drop" may hold only`}},
		{name: "postgres without url", mutate: func(c *bus.Config) { c.Driver = bus.DriverPostgres; c.Postgres.URL = "mysql://x" },
			want: []string{`postgres.url: scheme must be postgres or postgresql, got "mysql"`}},
		{name: "postgres fields", mutate: func(c *bus.Config) {
			c.Driver = bus.DriverPostgres
			c.Postgres = bus.PostgresConfig{URL: "postgres://u:s3cret@h/db"}
		}, want: []string{"postgres.max_conns: must be at least partitions + 2 = 3", "postgres.consumer_group: must not be empty",
			"postgres.poll_interval: must be positive, got 0s", "postgres.subscribe_batch_size: must be at least 1, got 0"}},
		{name: "password hidden in an unparsable url", mutate: func(c *bus.Config) {
			c.Driver = bus.DriverPostgres
			c.Postgres.URL = "postgres://sextant:s3cret@[::1/test"
		}, want: []string{"postgres.url: not a URL: parse \"postgres://sextant:xxxxx@[::1/test\""}},
		{name: "topic too long for postgres", mutate: func(c *bus.Config) {
			c.Driver = bus.DriverPostgres
			c.Postgres.URL = "postgres://h/db"
			c.Topic = strings.Repeat("t", 40)
		}, want: []string{"topic: too long for the postgres driver"}},
		{name: "postgres valid", mutate: func(c *bus.Config) { c.Driver = bus.DriverPostgres; c.Postgres.URL = "postgres://u:p@h:5432/db" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := bus.NewDefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var problems []error
			if joined, ok := err.(interface{ Unwrap() []error }); ok {
				problems = joined.Unwrap()
			} else {
				problems = []error{err}
			}
			require.Len(t, problems, len(tt.want), "one error per problem: %v", err)
			for i, p := range problems {
				require.True(t, strings.HasPrefix(p.Error(), strings.SplitN(tt.want[i], ":", 2)[0]+": "), "%q", p)
				require.Contains(t, p.Error(), tt.want[i])
				field, _, _ := strings.Cut(p.Error(), ":")
				field, _, _ = strings.Cut(field, ".")
				require.True(t, fields[field], "%q does not start with a yaml field name", p)
			}

			// NewPublisher refuses the same config, saying why.
			pub, perr := bus.NewPublisher(nil, cfg)
			require.Nil(t, pub)
			require.ErrorContains(t, perr, "bus: ")
			require.ErrorContains(t, perr, tt.want[0])
		})
	}
}

func TestNewDefaultConfig(t *testing.T) {
	t.Parallel()
	cfg := bus.NewDefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, bus.DriverMemory, cfg.Driver)
	require.NotEmpty(t, cfg.Topic)
	require.Equal(t, 512, cfg.BatchSize)
	require.Equal(t, 5*time.Millisecond, cfg.FlushInterval)
}

func TestDriverUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    bus.Driver
		wantErr string
	}{
		{name: "memory", in: "memory", want: bus.DriverMemory},
		{name: "unknown", in: "kafka", wantErr: `unknown bus driver "kafka" (allowed: memory, postgres)`},
		{name: "empty", in: "", wantErr: `unknown bus driver "" (allowed: memory, postgres)`},
		{name: "wrong case", in: "MEMORY", wantErr: `unknown bus driver "MEMORY" (allowed: memory, postgres)`},
		{name: "surrounding space", in: " memory", wantErr: `unknown bus driver " memory" (allowed: memory, postgres)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := bus.Driver("before")
			err := d.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.Equal(t, bus.Driver("before"), d, "a rejected value leaves the driver alone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, d)

			// Decoders that honour encoding.TextUnmarshaler go through it.
			var doc struct{ Driver bus.Driver }
			require.NoError(t, json.Unmarshal([]byte(`{"Driver":"`+tt.in+`"}`), &doc))
			require.Equal(t, tt.want, doc.Driver)
		})
	}
	var doc struct{ Driver bus.Driver }
	err := json.Unmarshal([]byte(`{"Driver":"nats"}`), &doc)
	require.ErrorContains(t, err, `unknown bus driver "nats" (allowed: memory, postgres)`)
}

func TestRedactURLHidesEverySecret(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, leak string }{
		{"userinfo", "postgres://u:S3CRET@h:5432/db", "S3CRET"},
		{"query password", "postgres://u@h/db?password=S3CRET&sslmode=disable", "S3CRET"},
		{"query sslpassword", "postgres://u@h/db?sslpassword=S3CRET", "S3CRET"},
		{"percent-encoded", "postgres://u:p%40SS@h/db", "p@SS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := bus.RedactURL(tt.in)
			require.NotContains(t, out, tt.leak)
			require.NotContains(t, out, strings.ReplaceAll(tt.leak, "@", "%40"))
			require.Contains(t, out, "xxxxx")
			for _, sec := range bus.Secrets(tt.in) {
				require.NotContains(t, out, sec)
			}
		})
	}
}

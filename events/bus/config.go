package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Driver names a bus implementation.
type Driver string

// The bus drivers.
const (
	// DriverMemory is the in-process watermill GoChannel: fast, not durable.
	DriverMemory Driver = "memory"
	// DriverPostgres is watermill-sql over pgx: durable, shared by many
	// publishers and router instances.
	DriverPostgres Driver = "postgres"
)

// UnmarshalText rejects unknown drivers and lists the allowed ones.
func (d *Driver) UnmarshalText(b []byte) error {
	switch Driver(b) {
	case DriverMemory, DriverPostgres:
		*d = Driver(b)
		return nil
	}
	return fmt.Errorf("unknown bus driver %q (allowed: %s, %s)", b, DriverMemory, DriverPostgres)
}

// EnvDatabaseURL names the environment variable that gives the PostgreSQL
// URL when bus.postgres.url is empty, so that passwords stay out of files.
const EnvDatabaseURL = "SEXTANT_DATABASE_URL"

// PostgresConfig is the bus.postgres section.
type PostgresConfig struct {
	// URL is the PostgreSQL connection URL (postgres://user:pass@host:port/db).
	// Empty means the environment variable SEXTANT_DATABASE_URL. Its
	// password never reaches logs.
	URL string `yaml:"url,omitempty"`
	// MaxConns is the size of the bus's pgx pool. Each partition's
	// subscriber holds a connection while it handles a batch.
	MaxConns int `yaml:"max_conns"`
	// ConsumerGroup names the router instances that share the work: each
	// event is routed by one instance of the group.
	ConsumerGroup string `yaml:"consumer_group"`
	// PollInterval is how often an idle subscriber polls for new rows;
	// watermill-sql has no LISTEN/NOTIFY, so it bounds the added latency.
	PollInterval time.Duration `yaml:"poll_interval"`
	// SubscribeBatchSize is how many messages (batches of events) a
	// subscriber reads per query.
	SubscribeBatchSize int `yaml:"subscribe_batch_size"`
}

// ResolvedURL returns URL, or the environment variable's value when URL is empty.
func (c PostgresConfig) ResolvedURL() string {
	if c.URL != "" {
		return c.URL
	}
	return os.Getenv(EnvDatabaseURL)
}

// RedactURL hides the password of a connection URL, for logs and printed
// configuration.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	// pgx also takes passwords as query parameters.
	q := u.Query()
	for _, k := range secretParams {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// secretParams are the connection URL parameters that hold secrets.
var secretParams = []string{"password", "sslpassword"}

// Secrets returns every secret a connection URL holds, in both its raw and
// decoded forms, so that callers can scrub them from any text.
func Secrets(raw string) []string {
	var out []string
	add := func(v string) {
		if v != "" {
			out = append(out, v)
			if d, err := url.PathUnescape(v); err == nil && d != v {
				out = append(out, d)
			}
			if e := url.QueryEscape(v); e != v {
				out = append(out, e)
			}
		}
	}
	if m := userinfoPassword.FindStringSubmatch(raw); m != nil {
		add(m[1])
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		for _, kv := range strings.Split(raw[i+1:], "&") {
			k, v, _ := strings.Cut(kv, "=")
			for _, sp := range secretParams {
				if k == sp {
					add(v)
				}
			}
		}
	}
	return out
}

// PartitionTopic returns the topic of partition i: the topic itself when
// there is one partition, topic_i otherwise.
func (c Config) PartitionTopic(i int) string {
	if c.Partitions <= 1 {
		return c.Topic
	}
	return c.Topic + "_" + strconv.Itoa(i)
}

// PoisonTopic is where events that cannot be routed go, with the reason.
func (c Config) PoisonTopic() string { return c.Topic + "_poison" }

// Partition returns the partition of events with correlation id key: every
// event of one task lands in one partition, so its order is kept.
func (c Config) Partition(key events.ID) int {
	if c.Partitions <= 1 {
		return 0
	}
	// The last 8 bytes of a UUIDv7 are random: a fair hash as they are.
	return int(binary.BigEndian.Uint64(key[8:]) % uint64(c.Partitions))
}

// Config is the bus section of the configuration.
type Config struct {
	// Driver selects the bus implementation: memory or postgres.
	Driver Driver `yaml:"driver"`
	// Topic is the watermill topic events are published to; with several
	// partitions, partition i is topic_i.
	Topic string `yaml:"topic"`
	// Partitions splits the topic by correlation id. Each partition is
	// consumed in order by one router instance at a time, so partitions
	// bound how many instances share the work.
	Partitions int `yaml:"partitions"`
	// BatchSize is the most events put into one bus message.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits in a partly filled batch.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Postgres configures the postgres driver.
	Postgres PostgresConfig `yaml:"postgres"`
}

// NewDefaultConfig returns the embedded default: the in-memory bus, batches of
// up to 512 events, flushed at least every 5 ms.
func NewDefaultConfig() Config {
	return Config{
		Driver: DriverMemory, Topic: "sextant.events", Partitions: 1, BatchSize: 512, FlushInterval: 5 * time.Millisecond,
		Postgres: PostgresConfig{MaxConns: 16, ConsumerGroup: "sextant", PollInterval: 10 * time.Millisecond, SubscribeBatchSize: 16},
	}
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if c.Driver != DriverMemory && c.Driver != DriverPostgres {
		errs = append(errs, fmt.Errorf("driver: unknown bus driver %q (allowed: %s, %s)", c.Driver, DriverMemory, DriverPostgres))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: must not be empty"))
	} else if bad := badTopicChars.FindString(c.Topic); bad != "" {
		errs = append(errs, fmt.Errorf("topic: %q may hold only letters, digits and - $ : . _ (it names PostgreSQL tables), got %q", c.Topic, bad))
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions: must be between 1 and %d, got %d", MaxPartitions, c.Partitions))
	}
	// MaxBatchEvents, the decoder's limit, is below the builder's.
	if c.BatchSize < 1 || c.BatchSize > events.MaxBatchEvents {
		errs = append(errs, fmt.Errorf("batch_size: must be between 1 and %d, got %d", events.MaxBatchEvents, c.BatchSize))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval: must be positive, got %s", c.FlushInterval))
	}
	if c.Driver == DriverPostgres {
		errs = append(errs, c.Postgres.validate(c.Partitions)...)
		// PostgreSQL cuts identifiers at 63 bytes: two partitions could share a table.
		if longest := "watermill_offsets_" + c.PoisonTopic(); len(longest) > 63 {
			errs = append(errs, fmt.Errorf("topic: too long for the postgres driver: table %q would exceed PostgreSQL's 63-byte names (keep the topic under %d characters)", longest, 63-len("watermill_offsets__poison")))
		}
	}
	return errors.Join(errs...)
}

// MaxPartitions bounds bus.partitions: each partition is a table pair and,
// while busy, a connection per router instance.
const MaxPartitions = 256

// badTopicChars is what watermill-sql refuses in a topic name.
var badTopicChars = regexp.MustCompile(`[^A-Za-z0-9\-$:._]`)

func (c PostgresConfig) validate(partitions int) []error {
	var errs []error
	raw := c.ResolvedURL()
	switch u, err := url.Parse(raw); {
	case raw == "":
		errs = append(errs, fmt.Errorf("postgres.url: required for the postgres driver (or set %s)", EnvDatabaseURL))
	case err != nil:
		errs = append(errs, fmt.Errorf("postgres.url: not a URL: %v", redactErr(err, raw)))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		errs = append(errs, fmt.Errorf("postgres.url: scheme must be postgres or postgresql, got %q", u.Scheme))
	}
	if c.MaxConns < partitions+2 {
		errs = append(errs, fmt.Errorf("postgres.max_conns: must be at least partitions + 2 = %d (each partition's subscriber holds a connection), got %d", partitions+2, c.MaxConns))
	}
	if c.ConsumerGroup == "" {
		errs = append(errs, errors.New("postgres.consumer_group: must not be empty"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("postgres.poll_interval: must be positive, got %s", c.PollInterval))
	}
	if c.SubscribeBatchSize < 1 {
		errs = append(errs, fmt.Errorf("postgres.subscribe_batch_size: must be at least 1, got %d", c.SubscribeBatchSize))
	}
	return errs
}

// redactErr keeps a URL's password out of an error message that quotes it,
// even when the URL does not parse (then url.Parse cannot say where the
// password is, so anything between "user:" and "@" is hidden).
func redactErr(err error, raw string) string {
	msg := err.Error()
	for _, sec := range Secrets(raw) {
		msg = strings.ReplaceAll(msg, sec, "xxxxx")
	}
	return msg
}

// userinfoPassword finds the password of scheme://user:password@host.
var userinfoPassword = regexp.MustCompile(`://[^:/@]*:([^@]*)@`)

package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Driver names a bus implementation.
type Driver string

// The bus drivers.
const (
	// DriverMemory is the in-process watermill GoChannel: fast, not durable.
	DriverMemory Driver = "memory"
)

// UnmarshalText rejects unknown drivers and lists the allowed ones.
func (d *Driver) UnmarshalText(b []byte) error {
	switch Driver(b) {
	case DriverMemory:
		*d = Driver(b)
		return nil
	}
	return fmt.Errorf("unknown bus driver %q (allowed: %s)", b, DriverMemory)
}

// Config is the bus section of the configuration.
type Config struct {
	// Driver selects the bus implementation: memory.
	Driver Driver `yaml:"driver"`
	// Topic is the watermill topic events are published to.
	Topic string `yaml:"topic"`
	// BatchSize is the most events put into one bus message.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits in a partly filled batch.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// NewDefaultConfig returns the embedded default: the in-memory bus, batches of
// up to 512 events, flushed at least every 5 ms.
func NewDefaultConfig() Config {
	return Config{Driver: DriverMemory, Topic: "sextant.events", BatchSize: 512, FlushInterval: 5 * time.Millisecond}
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if c.Driver != DriverMemory {
		errs = append(errs, fmt.Errorf("driver: unknown bus driver %q (allowed: %s)", c.Driver, DriverMemory))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: must not be empty"))
	}
	// MaxBatchEvents, the decoder's limit, is below the builder's.
	if c.BatchSize < 1 || c.BatchSize > events.MaxBatchEvents {
		errs = append(errs, fmt.Errorf("batch_size: must be between 1 and %d, got %d", events.MaxBatchEvents, c.BatchSize))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval: must be positive, got %s", c.FlushInterval))
	}
	return errors.Join(errs...)
}

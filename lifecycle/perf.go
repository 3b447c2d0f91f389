package lifecycle

import (
	"context"
	"fmt"
	"math"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sextant-telemetry/sextant/events"
)

// Defaults of PerformanceConfig's zero fields.
const (
	// DefaultSlowOperationThreshold is how long an operation may take before
	// it publishes performance.slow_operation. Orchestration's operations
	// take microseconds and a demo step's handler less than a millisecond,
	// so 250 ms means something is badly wrong (a blocked bus, a stuck
	// handler) rather than merely slow.
	DefaultSlowOperationThreshold = 250 * time.Millisecond
	// DefaultMemorySpikeThreshold is how much the heap may grow during one
	// operation before it publishes memory.spike_detected.
	DefaultMemorySpikeThreshold = 64 * MiB
)

// heapResolution is how old a heap reading may be and still serve as an
// operation's start or end reading. Reading the heap costs about 250 ns, as
// much as a tenth of a step's whole orchestration, so readings are shared:
// an operation's growth is measured within heapResolution of its bounds,
// which cannot matter against thresholds of megabytes.
const heapResolution = time.Millisecond

// heapMetric is the heap reading: object bytes, live and not yet swept. It
// grows with every allocation and falls when the collector sweeps.
const heapMetric = "/memory/classes/heap/objects:bytes"

// Operation names one monitored lifecycle operation. Its values are the
// operation field of performance.slow_operation and memory.spike_detected.
type Operation string

// The monitored operations: four of orchestration, three of a worker.
const (
	// OperationInitialize is the task initializer's work on a new task, from
	// task.initialize_requested until it is steps_in_process.
	OperationInitialize Operation = "initialize"
	// OperationEnqueue is the step enqueuer putting one ready step on its
	// worker queue, step.enqueued included.
	OperationEnqueue Operation = "enqueue"
	// OperationProcessResult is the result processor's recording of one
	// step result, as step.result_processed times it.
	OperationProcessResult Operation = "process_result"
	// OperationFinalize is the task finalizer's work, from the move to
	// finalizing through task.finalized.
	OperationFinalize Operation = "finalize"
	// OperationClaim is a worker taking a step: from the notification or
	// poll that woke it to step.claimed.
	OperationClaim Operation = "claim"
	// OperationExecute is one attempt of a step's handler, as step.completed
	// or step.failed time it.
	OperationExecute Operation = "execute"
	// OperationSubmit is a worker's send of a result to orchestration, as
	// step.result_submitted times it.
	OperationSubmit Operation = "submit"
)

// operations lists the Operations in index order (see op).
var operations = []Operation{
	OperationInitialize, OperationEnqueue, OperationProcessResult, OperationFinalize,
	OperationClaim, OperationExecute, OperationSubmit,
}

// op indexes operations, so that the hot path looks thresholds up in an array.
type op uint8

const (
	opInitialize op = iota
	opEnqueue
	opProcessResult
	opFinalize
	opClaim
	opExecute
	opSubmit
	numOps
)

func joinOperations() string {
	s := make([]string, len(operations))
	for i, o := range operations {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// UnmarshalText rejects unknown operations and lists the allowed ones.
func (o *Operation) UnmarshalText(b []byte) error {
	if !slices.Contains(operations, Operation(b)) {
		return fmt.Errorf("unknown operation %q (allowed: %s)", b, joinOperations())
	}
	*o = Operation(b)
	return nil
}

// PerformanceConfig is the engine's performance monitoring (seed 004, phase
// 4.3): every monitored Operation slower than its threshold publishes
// performance.slow_operation, and one during which the heap grew by more
// than its threshold publishes memory.spike_detected. Zero fields take the
// defaults; the zero value monitors with the defaults.
type PerformanceConfig struct {
	// Disabled turns the monitoring off: no heap readings, no events.
	Disabled bool `yaml:"disabled"`
	// SlowOperation is how long an operation may take. 0 means
	// DefaultSlowOperationThreshold.
	SlowOperation time.Duration `yaml:"slow_operation"`
	// MemorySpike is how much the heap may grow during an operation, e.g.
	// 64MiB. 0 means DefaultMemorySpikeThreshold.
	MemorySpike ByteSize `yaml:"memory_spike"`
	// Operations overrides the thresholds of single operations; a zero
	// field of an override keeps the threshold above.
	Operations map[Operation]OperationThresholds `yaml:"operations,omitempty"`
}

// OperationThresholds overrides PerformanceConfig's thresholds for one
// operation.
type OperationThresholds struct {
	// SlowOperation replaces PerformanceConfig.SlowOperation; 0 keeps it.
	SlowOperation time.Duration `yaml:"slow_operation"`
	// MemorySpike replaces PerformanceConfig.MemorySpike; 0 keeps it.
	MemorySpike ByteSize `yaml:"memory_spike"`
}

func (c PerformanceConfig) withDefaults() PerformanceConfig {
	if c.SlowOperation == 0 {
		c.SlowOperation = DefaultSlowOperationThreshold
	}
	if c.MemorySpike == 0 {
		c.MemorySpike = DefaultMemorySpikeThreshold
	}
	return c
}

// validate returns the problems of c, located under path.
func (c PerformanceConfig) validate(path string) []error {
	var errs []error
	if c.SlowOperation < 0 {
		errs = append(errs, fieldErr(path+"."+yamlKey[PerformanceConfig]("SlowOperation"), "must not be negative, got %s", c.SlowOperation))
	}
	if c.MemorySpike < 0 {
		errs = append(errs, fieldErr(path+"."+yamlKey[PerformanceConfig]("MemorySpike"), "must not be negative, got %d", int64(c.MemorySpike)))
	}
	opsPath := path + "." + yamlKey[PerformanceConfig]("Operations")
	for _, o := range slices.Sorted(func(yield func(Operation) bool) {
		for o := range c.Operations {
			if !yield(o) {
				return
			}
		}
	}) {
		p := opsPath + "." + string(o)
		if !slices.Contains(operations, o) {
			errs = append(errs, fieldErr(p, "unknown operation (allowed: %s)", joinOperations()))
			continue
		}
		t := c.Operations[o]
		if t.SlowOperation < 0 {
			errs = append(errs, fieldErr(p+"."+yamlKey[OperationThresholds]("SlowOperation"), "must not be negative, got %s", t.SlowOperation))
		}
		if t.MemorySpike < 0 {
			errs = append(errs, fieldErr(p+"."+yamlKey[OperationThresholds]("MemorySpike"), "must not be negative, got %d", int64(t.MemorySpike)))
		}
	}
	return errs
}

// ByteSize is a number of bytes. Its text form is an integer with an
// optional unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of
// 1024), e.g. 64MiB.
type ByteSize int64

// Binary byte-size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// byteUnits are the accepted units, binary first so that String picks them.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// ParseByteSize parses the text form of a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	num, unit := s, ByteSize(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.name); ok {
			num, unit = strings.TrimSpace(rest), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' {
		return 0, fmt.Errorf("byte size %q: want an integer with an optional unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 64MiB", s)
	}
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, fmt.Errorf("byte size %q: out of range", s)
	}
	return ByteSize(n) * unit, nil
}

// UnmarshalText parses the text form, e.g. 64MiB.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText writes the form String returns, which ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String returns b in the largest binary unit that divides it, e.g. 64MiB,
// or in bytes, e.g. 1000B.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// perfMonitor is the performance monitor. Components call begin when an
// operation starts and task or step when it ends; it compares the
// operation's duration, measured from timestamps the components take anyway,
// and the heap's growth with the operation's thresholds and publishes
// through the engine's emitter, with the task's correlation id. A nil
// *perfMonitor is monitoring turned off: every method does nothing.
//
// It is safe for concurrent use: thresholds are immutable, the shared heap
// reading is an atomic pointer.
type perfMonitor struct {
	em       *emitter
	slow     [numOps]time.Duration
	spike    [numOps]int64
	readHeap func() uint64
	// resolution is heapResolution; tests set 0 to read at every bound.
	resolution time.Duration
	heap       atomic.Pointer[heapReading]

	slowOps, spikes atomic.Uint64
}

// heapReading is one reading of heapMetric, taken at the engine clock's at.
type heapReading struct {
	at    time.Time
	bytes uint64
}

// newPerfMonitor returns the monitor of cfg, defaults filled in, or nil
// when cfg disables it. readHeap nil means reading heapMetric.
func newPerfMonitor(cfg PerformanceConfig, em *emitter, readHeap func() uint64, resolution time.Duration) *perfMonitor {
	if cfg.Disabled {
		return nil
	}
	cfg = cfg.withDefaults()
	if readHeap == nil {
		readHeap = readHeapObjects
	}
	pm := &perfMonitor{em: em, readHeap: readHeap, resolution: resolution}
	for i, o := range operations {
		pm.slow[i], pm.spike[i] = cfg.SlowOperation, int64(cfg.MemorySpike)
		if t, ok := cfg.Operations[o]; ok {
			if t.SlowOperation > 0 {
				pm.slow[i] = t.SlowOperation
			}
			if t.MemorySpike > 0 {
				pm.spike[i] = int64(t.MemorySpike)
			}
		}
	}
	return pm
}

// readHeapObjects reads heapMetric from the runtime, without stopping the world.
func readHeapObjects() uint64 {
	s := [1]metrics.Sample{{Name: heapMetric}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0 // not supported by this runtime: no growth is ever seen
	}
	return s[0].Value.Uint64()
}

// heapAt returns a heap reading no older than the monitor's resolution at
// the engine-clock time at, reading the heap only when the shared one is
// older. Concurrent refreshes are harmless: each stores a valid reading.
func (pm *perfMonitor) heapAt(at time.Time) uint64 {
	if r := pm.heap.Load(); r != nil && at.Sub(r.at) < pm.resolution {
		return r.bytes
	}
	r := &heapReading{at: at, bytes: pm.readHeap()}
	pm.heap.Store(r)
	return r.bytes
}

// begin returns the heap reading an operation starting at start is measured
// against.
func (pm *perfMonitor) begin(start time.Time) uint64 {
	if pm == nil {
		return 0
	}
	return pm.heapAt(start)
}

// task checks an operation of task t that ran from start to end, the heap
// having read heap0 at its start.
func (pm *perfMonitor) task(ctx context.Context, o op, t *taskRun, start, end time.Time, heap0 uint64) {
	if pm == nil {
		return
	}
	pm.check(ctx, o, start, end, heap0, t.handle.corr, t.uuid, t.handle.namespace, "", "")
}

// step checks an operation on step run s; see task.
func (pm *perfMonitor) step(ctx context.Context, o op, s *stepRun, start, end time.Time, heap0 uint64) {
	if pm == nil {
		return
	}
	pm.check(ctx, o, start, end, heap0, s.corr, s.taskUUID, s.namespace, s.stepUUID, s.name)
}

func (pm *perfMonitor) check(ctx context.Context, o op, start, end time.Time, heap0 uint64, corr events.ID, taskUUID, namespace, stepUUID, stepName string) {
	d := end.Sub(start)
	var heap1 uint64
	var growth int64
	if d >= pm.resolution { // shorter, it shares its start's heap reading: no growth to see
		heap1 = pm.heapAt(end)
		growth = int64(heap1) - int64(heap0)
	}
	slow, spike := d > pm.slow[o], growth > pm.spike[o]
	if !slow && !spike {
		return
	}
	// Rare from here on: the attributes are built only for an event.
	scope := func(n int) []events.Attr {
		a := make([]events.Attr, 0, n+4)
		a = append(a, events.String("task_uuid", taskUUID), events.String("namespace", namespace))
		if stepUUID != "" {
			a = append(a, events.String("step_uuid", stepUUID), events.String("step_name", stepName))
		}
		return a
	}
	if slow {
		pm.slowOps.Add(1)
		pm.em.emit(ctx, end, events.PerformanceSlowOperation, corr, append(scope(3),
			events.String("operation", string(operations[o])),
			events.Float("duration_ms", ms(d)),
			events.Float("threshold_ms", ms(pm.slow[o]))))
	}
	if spike {
		pm.spikes.Add(1)
		pm.em.emit(ctx, end, events.MemorySpikeDetected, corr, append(scope(5),
			events.String("operation", string(operations[o])),
			events.Int("heap_growth_bytes", growth),
			events.Int("threshold_bytes", pm.spike[o]),
			events.Int("heap_bytes", int64(min(heap1, math.MaxInt64))),
			events.Float("duration_ms", ms(d))))
	}
}

// counts returns how many slow operations and memory spikes were published.
func (pm *perfMonitor) counts() (slow, spikes uint64) {
	if pm == nil {
		return 0, 0
	}
	return pm.slowOps.Load(), pm.spikes.Load()
}

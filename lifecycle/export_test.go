package lifecycle

// TestHooks exposes the engine's test hooks to the external test package.
type TestHooks struct {
	// ResultsCap is the ffi_completion channel's capacity; 0 means QueueDepth.
	ResultsCap int
	// Gate is received from by orchestration before it processes each result.
	Gate <-chan struct{}
	// Breaker replaces the completion breaker's configuration.
	Breaker *BreakerConfig
	// ReadHeap replaces the performance monitor's heap reading.
	ReadHeap func() uint64
	// HeapEveryOperation makes the monitor read the heap at every
	// operation's start and end instead of sharing recent readings.
	HeapEveryOperation bool
}

// NewWithHooks is New with test hooks.
func NewWithHooks(cfg EngineConfig, set Settings, h TestHooks) (*Engine, error) {
	return newEngine(cfg, set, testHooks{
		resultsCap: h.ResultsCap, gate: h.Gate, breaker: h.Breaker,
		readHeap: h.ReadHeap, heapEvery: h.HeapEveryOperation,
	})
}

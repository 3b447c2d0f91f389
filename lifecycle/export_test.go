package lifecycle

// TestHooks exposes the engine's test hooks to the external test package.
type TestHooks struct {
	// ResultsCap is the ffi_completion channel's capacity; 0 means QueueDepth.
	ResultsCap int
	// Gate is received from by orchestration before it processes each result.
	Gate <-chan struct{}
	// Breaker replaces the completion breaker's configuration.
	Breaker *BreakerConfig
}

// NewWithHooks is New with test hooks.
func NewWithHooks(cfg EngineConfig, set Settings, h TestHooks) (*Engine, error) {
	return newEngine(cfg, set, testHooks{resultsCap: h.ResultsCap, gate: h.Gate, breaker: h.Breaker})
}

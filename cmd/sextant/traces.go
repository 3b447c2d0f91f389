package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sextant-telemetry/sextant/internal/health"
	"github.com/sextant-telemetry/sextant/router"
)

// serviceResource describes this process in exported spans and in the
// metrics' target_info: service.name sextant and its version, overridden by
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which take precedence as
// the OpenTelemetry specification says.
func serviceResource(ctx context.Context) (*resource.Resource, error) {
	base := resource.NewSchemaless(attribute.String("service.name", "sextant"), attribute.String("service.version", Version))
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	merged, err := resource.Merge(base, env)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	return merged, nil
}

// applySamplerEnv fills router.traces.sample_ratio, when the configuration
// leaves it unset, from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
// Every sampler Sextant runs is parent-based (a child follows its parent),
// so the parentbased_ forms mean the same as the plain ones. An unknown or
// malformed value is logged and ignored, as the specification asks.
func applySamplerEnv(tc *router.TraceConfig, getenv func(string) string, logger *slog.Logger) {
	if tc.SampleRatio != nil {
		return
	}
	name := strings.TrimSpace(strings.ToLower(getenv("OTEL_TRACES_SAMPLER")))
	if name == "" {
		return
	}
	ratio := 1.0
	switch strings.TrimPrefix(name, "parentbased_") {
	case "always_on":
	case "always_off":
		ratio = 0
	case "traceidratio":
		if arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG")); arg != "" {
			r, err := strconv.ParseFloat(arg, 64)
			if err != nil || !(r >= 0 && r <= 1) { // NaN too
				logger.Warn("OTEL_TRACES_SAMPLER_ARG is not a ratio from 0 to 1; keeping every trace", "value", arg)
				return
			}
			ratio = r
		}
	default:
		logger.Warn("OTEL_TRACES_SAMPLER is not supported; keeping every trace",
			"value", name, "supported", "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio")
		return
	}
	tc.SampleRatio = &ratio
}

// traceHealth is the traces check of /health/detailed: the export
// pipeline's counters and the router's open spans; degraded while exports
// failed within the last minute.
func (s *service) traceHealth(rs router.SpanStats) health.Result {
	out := map[string]any{"enabled": s.spans.Enabled(), "exporter": s.spans.Description()}
	res := health.Result{Status: health.StatusHealthy, Details: out}
	if !s.spans.Enabled() {
		return res
	}
	st := s.spans.Stats()
	out["spans_exported"], out["spans_queued"] = st.Exported, st.Queued
	out["spans_dropped"] = map[string]int64{"queue_full": st.Dropped.QueueFull, "export_failed": st.Dropped.ExportFailed, "shutdown": st.Dropped.Shutdown}
	if st.LastError != "" {
		out["last_error"], out["last_error_at"] = st.LastError, st.LastErrorAt.UTC()
		if time.Since(st.LastErrorAt) < time.Minute {
			res.Status = health.StatusDegraded
		}
	}
	out["open_spans"] = rs.Open
	out["spans_started"], out["spans_recorded"], out["spans_ended"] = rs.Started, rs.Recorded, rs.Ended
	out["unmatched_ends"], out["unmatched_span_events"] = rs.UnmatchedEnds, rs.UnmatchedEvents
	return res
}

package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/targets"
	"github.com/sextant-telemetry/sextant/internal/health"
)

// newTargets builds the runner of exporters.targets, or nil when there are
// none. Each target exports through the same registry as GET /export, so
// its exports publish the same lifecycle events (target=<name>); on the
// PostgreSQL bus, cluster-wide targets claim their intervals there.
func (s *service) newTargets(read snapshotFunc, options map[string]string, instance string) (*targets.Runner, error) {
	list, _ := s.cfg.Exporters[targets.Type].(*targets.List)
	if list == nil || len(*list) == 0 {
		return nil, nil
	}
	formats := s.exports.Formats()
	for i, t := range *list {
		if _, err := newExportFilter(t.Match, t.Labels); err != nil {
			return nil, fmt.Errorf("exporters.targets[%d] (%s): %w", i, t.Name, err)
		}
		if !slices.Contains(formats, strings.ToLower(t.Format)) {
			return nil, fmt.Errorf("exporters.targets[%d] (%s): format %q: %w (known: %s)", i, t.Name, t.Format, exporters.ErrUnknownFormat, strings.Join(formats, ", "))
		}
	}
	set := targets.Settings{
		Export: func(ctx context.Context, req targets.Request, w io.Writer) (exporters.ExportResult, error) {
			f, err := newExportFilter(req.Match, req.Labels) // validated above
			if err != nil {
				return exporters.ExportResult{}, err
			}
			opts := maps.Clone(options)
			hideTargetInfo(opts, f)
			return exportSnapshot(ctx, read, s.exports, f, exporters.ExportRequest{ID: req.ID, Format: req.Format, Target: req.Target, Options: opts}, w)
		},
		Routed:        func() uint64 { return s.router.Stats().Routed },
		Instance:      instance,
		MeterProvider: s.mp,
		Logger:        s.logger.With("component", "targets"),
	}
	if s.pg != nil {
		set.Claimer = s.pg
	}
	return targets.New(*list, set)
}

// targetHealth is the targets check of /health/detailed: degraded while a
// target's circuit is open.
func (s *service) targetHealth() health.Result {
	if s.targets == nil {
		return health.Result{Status: health.StatusHealthy, Details: map[string]any{"count": 0}}
	}
	status := health.StatusHealthy
	var list []map[string]any
	for _, st := range s.targets.Stats() {
		item := map[string]any{"name": st.Name, "format": st.Format, "destination": st.Destination, "exports": st.Exports,
			"failures": st.Failures, "skipped": st.Skipped, "retries": st.Retries, "bytes": st.Bytes, "breaker": st.BreakerState,
			"cluster_wide": st.ClusterWide}
		if !st.LastSuccess.IsZero() {
			item["last_success"] = st.LastSuccess.UTC()
		}
		if st.LastError != "" {
			item["last_error"] = st.LastError
		}
		if st.BreakerState != "closed" {
			status = health.StatusDegraded
		}
		list = append(list, item)
	}
	return health.Result{Status: status, Details: map[string]any{"count": len(list), "targets": list}}
}

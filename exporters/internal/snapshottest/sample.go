package snapshottest

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
)

// Times of the sample: when it was read, when its cumulative series began,
// and when each value was sampled (a little before the read, and with
// nanoseconds, as the SDK stamps them).
var (
	SampleTime    = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	SampleStart   = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	SampleSampled = time.Date(2026, 11, 25, 10, 0, 0, 120000001, time.UTC)
)

// Trace and span IDs the sample's exemplars carry.
const (
	TraceA = "0af7651916cd43dd8448eb211c80319c"
	SpanA  = "b7ad6b7169203331"
	TraceB = "4bf92f3577b34da6a3ce929d0e0e4736"
	SpanB  = "00f067aa0ba902b7"
	TraceC = "ffffffffffffffffffffffffffffffff"
	SpanC  = "0000000000000001"
)

// LongExemplarNote is the value of an exemplar label that, with the trace
// and span IDs, takes the exemplar's labels past OpenMetrics' 128 runes.
var LongExemplarNote = strings.Repeat("x", 80)

// Sample returns a snapshot holding every case an encoder must get right:
//
//   - a family with no series (sextant_export_failures_total);
//   - counters with and without exemplars, one whose exemplar labels exceed
//     OpenMetrics' 128 runes, and values that need an exponent (1e+21) or
//     sit at float64's integer limit (2^53);
//   - gauges with units and without, with NaN, +Inf, -Inf, -0, the largest
//     and smallest float64, 0.1, and a series with no labels;
//   - label values with a double quote, a backslash, a newline, a carriage
//     return, a tab, a comma, a semicolon, non-ASCII letters, CJK and an
//     emoji, and empty label values;
//   - a description with a newline, a backslash and a double quote;
//   - histograms with fractional bounds, a +Inf bucket, an exemplar in some
//     buckets (one with its own labels, one with no trace, one in +Inf),
//     an empty series, and a series whose labels need escaping;
//   - resource attributes, one of which needs escaping.
//
// Families are sorted by PromName and series by labels, as the Snapshot
// contract requires. Each call returns a new snapshot.
func Sample() *exporters.Snapshot {
	histBounds := []float64{0, 0.5, 5, 25, 250, math.Inf(1)}
	ex := func(v float64, ms int, trace, span string, labels ...exporters.Label) *exporters.Exemplar {
		return &exporters.Exemplar{
			Value: v, Time: SampleStart.Add(time.Duration(ms)*time.Millisecond + 7),
			TraceID: trace, SpanID: span, Labels: labels,
		}
	}
	counter := func(v float64, e *exporters.Exemplar, labels ...exporters.Label) exporters.Series {
		return exporters.Series{Labels: labels, Value: v, Start: SampleStart, Time: SampleSampled, Exemplar: e}
	}
	gauge := func(v float64, labels ...exporters.Label) exporters.Series {
		return exporters.Series{Labels: labels, Value: v, Time: SampleSampled}
	}
	hist := func(sum float64, counts []uint64, exemplars map[int]*exporters.Exemplar, labels ...exporters.Label) exporters.Series {
		h := &exporters.Histogram{Sum: sum, Count: counts[len(counts)-1]}
		for i, b := range histBounds {
			h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: b, Count: counts[i], Exemplar: exemplars[i]})
		}
		return exporters.Series{Labels: labels, Histogram: h, Start: SampleStart, Time: SampleSampled}
	}
	l := func(kv ...string) []exporters.Label {
		out := make([]exporters.Label, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, exporters.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}

	s := &exporters.Snapshot{
		Resource: exporters.Resource{
			ServiceName: "sextant",
			Instance:    "host-a/4242",
			Attributes: l(
				"deployment.environment", "test",
				"host.name", "host-a",
				"service.version", "1.2.3",
				"team.note", "quote \" backslash \\ newline \n ✓",
			),
		},
		Time: SampleTime,
		Families: []exporters.Family{
			{
				Name: "sextant.export.failures", PromName: "sextant_export_failures_total",
				Type: exporters.TypeCounter, Description: "Exports that failed.",
			},
			{
				Name: "tasker.cpu.time", PromName: "tasker_cpu_time_seconds_total",
				Type: exporters.TypeCounter, Unit: "s", Description: "CPU time spent by workers.",
				Series: []exporters.Series{
					counter(12.5, ex(0.25, 100, TraceA, SpanA), l("worker", "w-1")...),
					counter(0, nil, l("worker", "w-2")...),
					counter(1e21, ex(3, 200, TraceB, SpanB, exporters.Label{Name: "note", Value: LongExemplarNote}), l("worker", "w-3")...),
				},
			},
			{
				Name: "tasker.memory.usage", PromName: "tasker_memory_usage_bytes",
				Type: exporters.TypeGauge, Unit: "By", Description: "Resident memory of the worker pool.",
				Series: []exporters.Series{
					gauge(1073741824, l("pool", "a")...),
					gauge(0.1, l("pool", "b")...),
				},
			},
			{
				Name: "tasker.queue.depth", PromName: "tasker_queue_depth",
				Type: exporters.TypeGauge, Unit: "{task}",
				Description: "Tasks waiting, per queue.\nA \\ backslash and a \"quote\".",
				Series: []exporters.Series{
					gauge(42),
					gauge(7, l("queue", "", "region", "eu")...),
					gauge(math.NaN(), l("queue", `back\slash`, "region", "eu")...),
					gauge(5, l("queue", "carriage\rreturn", "region", "eu")...),
					gauge(1.7976931348623157e308, l("queue", "max", "region", "eu")...),
					gauge(5e-324, l("queue", "min", "region", "eu")...),
					gauge(math.Inf(1), l("queue", "new\nline", "region", "eu")...),
					gauge(math.Inf(-1), l("queue", `quote"d`, "region", "eu")...),
					gauge(0.1, l("queue", "tab\there, comma; semi", "region", "eu")...),
					gauge(math.Copysign(0, -1), l("queue", "zero", "region", "eu")...),
					gauge(-2.5, l("queue", "ünïcødé ✓ 日本 🚀", "region", "")...),
				},
			},
			{
				Name: "tasker.step.execution.duration", PromName: "tasker_step_execution_duration_milliseconds",
				Type: exporters.TypeHistogram, Unit: "ms", Description: "Time a worker spent executing one step.",
				Series: []exporters.Series{
					hist(1234.5, []uint64{0, 1, 1, 2, 3, 4}, map[int]*exporters.Exemplar{
						1: ex(0.25, 300, TraceA, SpanA),
						3: ex(20, 400, TraceB, SpanB, exporters.Label{Name: "attempt", Value: "2"}),
						4: ex(200, 500, "", ""),
						5: ex(1014.25, 600, TraceC, SpanC),
					}, l("namespace", "billing", "result", "error")...),
					hist(16.5, []uint64{0, 0, 1, 2, 2, 2}, nil, l("namespace", "default", "result", "success")...),
					hist(0, []uint64{0, 0, 0, 0, 0, 0}, nil, l("namespace", "empty", "result", "success")...),
					hist(0, []uint64{1, 1, 1, 1, 1, 1}, nil, l("namespace", "quote\"\\\n", "result", "ok")...),
				},
			},
			{
				Name: "tasker.tasks.requests", PromName: "tasker_tasks_requests_total",
				Type: exporters.TypeCounter, Description: "Task requests received by the orchestrator.",
				Series: []exporters.Series{
					counter(3, ex(1, 700, TraceA, SpanA, exporters.Label{Name: "user", Value: "ann"}),
						l("correlation_id", "c-1", "namespace", "default", "task_type", "import")...),
					counter(1, nil, l("correlation_id", "c-2", "namespace", "billing", "task_type", "export")...),
					counter(9007199254740992, nil, l("correlation_id", "c-3", "namespace", "billing", "task_type", "bulk")...),
				},
			},
		},
	}
	Sort(s)
	return s
}

// Sort puts s in the order the Snapshot contract requires: families by
// PromName, series by labels (pair by pair, names first; a prefix first).
func Sort(s *exporters.Snapshot) {
	slices.SortStableFunc(s.Families, func(a, b exporters.Family) int { return cmp.Compare(a.PromName, b.PromName) })
	for i := range s.Families {
		slices.SortStableFunc(s.Families[i].Series, func(a, b exporters.Series) int { return CompareLabels(a.Labels, b.Labels) })
	}
}

// CompareLabels orders label lists as snapshots do: pair by pair, names
// first; a list that is a prefix of another comes first.
func CompareLabels(a, b []exporters.Label) int {
	for i := range min(len(a), len(b)) {
		if c := cmp.Or(cmp.Compare(a[i].Name, b[i].Name), cmp.Compare(a[i].Value, b[i].Value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

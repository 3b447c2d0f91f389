package host_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	jsonexp "github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

// snapshot10k is 100 families of 100 series each; every third family is
// a histogram with 10 buckets (+Inf included).
func snapshot10k() *exporters.Snapshot {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	s := &exporters.Snapshot{Resource: exporters.Resource{ServiceName: "sextant", Instance: "bench-1"}, Time: t1}
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, posInf}
	for f := range 100 {
		fam := exporters.Family{
			Name:        fmt.Sprintf("bench.metric.%03d", f),
			PromName:    fmt.Sprintf("bench_metric_%03d_total", f),
			Type:        exporters.TypeCounter,
			Description: "A metric of the export benchmark",
		}
		if f%3 == 0 {
			fam.Type, fam.Unit = exporters.TypeHistogram, "s"
			fam.PromName = fmt.Sprintf("bench_metric_%03d_seconds", f)
		}
		for i := range 100 {
			sr := exporters.Series{
				Labels: []exporters.Label{
					{Name: "namespace", Value: "ns-" + strconv.Itoa(i%10)},
					{Name: "task", Value: fmt.Sprintf("task-%03d", i)},
				},
				Start: t0, Time: t1,
			}
			if fam.Type == exporters.TypeHistogram {
				h := &exporters.Histogram{}
				var cum uint64
				for j, ub := range bounds {
					cum += uint64(i + j)
					h.Buckets = append(h.Buckets, exporters.Bucket{UpperBound: ub, Count: cum})
				}
				h.Count, h.Sum = cum, float64(cum)*0.3
				sr.Histogram = h
			} else {
				sr.Value = float64(f*1000 + i)
			}
			fam.Series = append(fam.Series, sr)
		}
		s.Families = append(s.Families, fam)
	}
	return s
}

// BenchmarkExport10k exports one 10,000-series snapshot as JSON, in
// process with the built-in exporter and through the test plugin, whose
// json-via-plugin format runs that same exporter on the snapshot it
// receives: the bytes are identical, so the difference is the plugin's
// overhead (the request's protobuf encoding and decoding, the socket both
// ways, the response's). B/op and allocs/op count Sextant's side only;
// plugin-cpu-ms/op is the plugin process's CPU time.
func BenchmarkExport10k(b *testing.B) {
	s := snapshot10k()
	var want bytes.Buffer
	_, err := jsonexp.New().Export(context.Background(), s, exporters.ExportRequest{Format: "json"}, &want)
	require.NoError(b, err)

	b.Run("in-process", func(b *testing.B) {
		exp := jsonexp.New()
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if _, err := exp.Export(context.Background(), s, exporters.ExportRequest{Format: "json"}, &buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})

	b.Run("plugin", func(b *testing.B) {
		registry := exporters.NewRegistry(exporters.RegistrySettings{})
		inst := host.InstanceConfig{Name: "p", Path: pluginBin, Env: map[string]string{"SEXTANT_TESTPLUGIN_PLAIN_CODEC": "1"}}
		if path := os.Getenv("SEXTANT_TESTPLUGIN_CPUPROFILE"); path != "" {
			inst.Env["SEXTANT_TESTPLUGIN_CPUPROFILE"] = path
			inst.Env["SEXTANT_TESTPLUGIN_CPUPROFILE_SECONDS"] = os.Getenv("SEXTANT_TESTPLUGIN_CPUPROFILE_SECONDS")
		}
		h, err := host.New(host.Config{Instances: []host.InstanceConfig{inst}},
			host.Settings{Registry: registry, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		require.NoError(b, h.Start(context.Background()))
		defer func() { require.NoError(b, h.Shutdown(context.Background())) }()
		exp, ok := registry.Lookup("p")
		require.True(b, ok)
		pid := h.Status()[0].PID
		req := exporters.ExportRequest{Format: "json-via-plugin"}
		var buf bytes.Buffer
		_, err = exp.Export(context.Background(), s, req, &buf)
		require.NoError(b, err)
		require.Equal(b, want.String(), buf.String(), "the plugin writes the built-in's bytes")

		cpu0 := cpuTime(b, pid)
		b.ReportAllocs()
		b.ResetTimer()
		n := 0
		for b.Loop() {
			buf.Reset()
			if _, err := exp.Export(context.Background(), s, req, &buf); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.StopTimer()
		b.ReportMetric(float64(buf.Len()), "bytes")
		b.ReportMetric(float64(cpuTime(b, pid)-cpu0)/float64(time.Millisecond)/float64(n), "plugin-cpu-ms/op")
	})
}

// cpuTime is the user and system CPU time of process pid so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	// After the command: state(0) ppid(1) ... utime(11) stime(12), in
	// clock ticks of 1/100 s.
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

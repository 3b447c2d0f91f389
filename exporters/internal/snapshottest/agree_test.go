package snapshottest_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/csv"
	"github.com/sextant-telemetry/sextant/exporters/internal/snapshottest"
	"github.com/sextant-telemetry/sextant/exporters/json"
	"github.com/sextant-telemetry/sextant/exporters/prometheus"
)

// samples are a snapshot's Prometheus samples, keyed by name and labels
// as an exposition line spells them (name{a="x",le="5"}); labels with an
// empty value are left out, as Prometheus treats them as absent.
type samples map[string]float64

func sampleKey(name string, labels []exporters.Label, le *float64) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	first := true
	for _, l := range labels {
		if l.Value == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name + "=" + strconv.Quote(l.Value))
	}
	if le != nil {
		if !first {
			b.WriteByte(',')
		}
		b.WriteString("le=" + strconv.Quote(strconv.FormatFloat(*le, 'g', -1, 64)))
	}
	b.WriteByte('}')
	return b.String()
}

// fromSnapshot lists s's samples.
func fromSnapshot(s *exporters.Snapshot) samples {
	out := samples{}
	for _, f := range s.Families {
		for _, sr := range f.Series {
			if sr.Histogram == nil {
				out[sampleKey(f.PromName, sr.Labels, nil)] = sr.Value
				continue
			}
			for _, b := range sr.Histogram.Buckets {
				out[sampleKey(f.PromName+"_bucket", sr.Labels, &b.UpperBound)] = float64(b.Count)
			}
			out[sampleKey(f.PromName+"_sum", sr.Labels, nil)] = sr.Histogram.Sum
			out[sampleKey(f.PromName+"_count", sr.Labels, nil)] = float64(sr.Histogram.Count)
		}
	}
	return out
}

// fromFamilies lists the samples of parsed metric families.
func fromFamilies(t *testing.T, mfs []*dto.MetricFamily) samples {
	t.Helper()
	out := samples{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []exporters.Label
			for _, p := range m.GetLabel() {
				labels = append(labels, exporters.Label{Name: p.GetName(), Value: p.GetValue()})
			}
			slices.SortFunc(labels, func(a, b exporters.Label) int { return strings.Compare(a.Name, b.Name) })
			name := mf.GetName()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[sampleKey(name, labels, nil)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[sampleKey(name, labels, nil)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[sampleKey(name+"_bucket", labels, new(b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
				out[sampleKey(name+"_sum", labels, nil)] = h.GetSampleSum()
				out[sampleKey(name+"_count", labels, nil)] = float64(h.GetSampleCount())
			default:
				t.Fatalf("%s: unexpected type %s", name, mf.GetType())
			}
		}
	}
	return out
}

// requireSameSamples checks that want and got hold the same samples with
// the same values: NaN equals NaN, and -0 equals 0, as the text formats
// write -0 as 0.
func requireSameSamples(t *testing.T, format string, want, got samples) {
	t.Helper()
	for k := range want {
		_, ok := got[k]
		require.True(t, ok, "%s: no sample %s", format, k)
	}
	for k, g := range got {
		w, ok := want[k]
		require.True(t, ok, "%s: unexpected sample %s", format, k)
		require.True(t, w == g || math.IsNaN(w) && math.IsNaN(g), "%s: %s = %v, want %v", format, k, g, w)
	}
}

// TestFormatsAgree writes the same snapshots in all four formats, reads
// each back with its own reader (the JSON and CSV decoders, expfmt's text
// parser and its OpenMetrics 1.0 decoder) and checks that every one of
// them gives the snapshot's samples, value for value: every counter and
// gauge value, every bucket count, every sum and count, under the same
// labels. So they agree with the snapshot and with each other.
func TestFormatsAgree(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		s    *exporters.Snapshot
	}{
		{name: "sample", s: snapshottest.Sample()},
		{name: "generated", s: trimmed(snapshottest.Generate(3*snapshottest.FamilySize), 25)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := fromSnapshot(tt.s)
			require.NotEmpty(t, want)
			noInfo := prometheus.TextOptions{WithoutTargetInfo: true}

			var jb bytes.Buffer
			require.NoError(t, json.Encode(&jb, tt.s, json.Options{}))
			fromJSON, err := json.Decode(&jb)
			require.NoError(t, err)
			requireSameSamples(t, "json", want, fromSnapshot(fromJSON))

			var cb bytes.Buffer
			require.NoError(t, csv.Encode(&cb, tt.s, csv.Options{}))
			fromCSV, err := csv.Decode(&cb)
			require.NoError(t, err)
			requireSameSamples(t, "csv", want, fromSnapshot(fromCSV))

			var tb bytes.Buffer
			require.NoError(t, prometheus.EncodeText(&tb, tt.s, noInfo))
			p := expfmt.NewTextParser(model.UTF8Validation)
			byName, err := p.TextToMetricFamilies(&tb)
			require.NoError(t, err)
			var textFamilies []*dto.MetricFamily
			for _, mf := range byName {
				textFamilies = append(textFamilies, mf)
			}
			requireSameSamples(t, "prometheus", want, fromFamilies(t, textFamilies))

			var ob bytes.Buffer
			require.NoError(t, prometheus.EncodeOpenMetrics(&ob, tt.s, noInfo))
			dec := expfmt.NewDecoder(&ob, expfmt.FmtOpenMetrics_1_0_0)
			var omFamilies []*dto.MetricFamily
			for {
				mf := &dto.MetricFamily{}
				err := dec.Decode(mf)
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				omFamilies = append(omFamilies, mf)
			}
			requireSameSamples(t, "openmetrics", want, fromFamilies(t, omFamilies))
		})
	}
}

// trimmed keeps n series of each family: the OpenMetrics decoder checks
// every line against the ABNF grammar and is slow.
func trimmed(s *exporters.Snapshot, n int) *exporters.Snapshot {
	for i := range s.Families {
		s.Families[i].Series = s.Families[i].Series[:min(n, len(s.Families[i].Series))]
	}
	return s
}

// Package wire converts between Sextant's snapshot model
// (exporters.Snapshot) and the OTLP metrics messages that carry it to an
// exporter plugin (go.opentelemetry.io/proto/otlp, in sextant.plugin.v1's
// ExportRequest). The host converts with [MetricsData] or [ExportRequest];
// the plugin SDK converts back with [Snapshot] or [FromExportRequest], so
// that a plugin gets the very snapshot an in-process exporter gets:
// Snapshot(MetricsData(s), s.Time) equals s, number for number and label for
// label (float64 values travel as their bits, NaN and -0 included), for
// every s that keeps the model's rules; times come back as the same
// instants (see below).
//
// # Mapping
//
// A snapshot is one MetricsData holding one ResourceMetrics with one
// ScopeMetrics:
//
//   - Resource attributes: service.name = Resource.ServiceName (always
//     written), service.instance.id = Resource.Instance (left out when
//     empty), then Resource.Attributes in their order. All values are
//     strings.
//   - The scope is named github.com/sextant-telemetry/sextant ([ScopeName]),
//     with no version or attributes.
//   - One Metric per Family, in the families' order: name = Family.Name, or
//     Family.PromName when Name is empty; unit = Family.Unit; description =
//     Family.Description; metadata = prometheus.name (Family.PromName) then
//     prometheus.type (counter, gauge or histogram), string values.
//   - A counter is a Sum with is_monotonic true and CUMULATIVE aggregation
//     temporality; a gauge is a Gauge; both have as_double data points. A
//     histogram is a Histogram, CUMULATIVE, whose points have explicit_bounds
//     = the buckets' upper bounds without the last (+Inf) one, bucket_counts
//     = the buckets' counts made non-cumulative (as OTLP counts them), count
//     and sum (always present), and no min, max or flags.
//   - One data point per Series, in order: attributes = Series.Labels in
//     their order, string values; start_time_unix_nano = Series.Start;
//     time_unix_nano = Series.Time.
//   - Exemplars: a counter's or gauge's Series.Exemplar is its point's one
//     exemplar; a histogram's bucket exemplars are its point's exemplars in
//     bucket order, and each goes back to the bucket that holds its value:
//     the first bucket whose upper bound is at least the value (+Inf for
//     NaN), as exporters.FromResourceMetrics picks it. An exemplar has
//     as_double = Exemplar.Value, time_unix_nano = Exemplar.Time, trace_id
//     and span_id = Exemplar.TraceID and SpanID as bytes (16 and 8, or none
//     when the hex string is empty) and filtered_attributes =
//     Exemplar.Labels in their order.
//   - Times are Unix nanoseconds; the zero time.Time is 0 and 0 is the zero
//     time.Time. A non-zero time at or before 1970-01-01T00:00:00Z or after
//     2554-07-21T23:34:33.709551615Z has no encoding and is written as 0.
//     Times come back in time.Local, as time.Now and so the OpenTelemetry
//     SDK stamp them, without a monotonic clock reading, which no wire
//     carries. Snapshot.Time is not in MetricsData: the caller passes it (in
//     ExportRequest it is time_unix_nano).
//
// Slices come back as exporters.FromResourceMetrics builds them, so that a
// snapshot it built compares equal with reflect.DeepEqual once its times'
// monotonic readings are stripped: Families and Series.Labels are never nil
// (empty when there are none) and Histogram.Buckets never nil;
// Resource.Attributes, Family.Series and Exemplar.Labels are nil when
// empty.
//
// MetricsData keeps what the model calls unused out of the wire: a
// histogram series' Value and Exemplar, a counter's or gauge's Histogram.
// It writes what it is given, so a snapshot that breaks the model's rules
// (buckets not ending with +Inf, an exemplar outside its bucket, IDs that
// are not lower-case hex of the right length, label names repeated) does not
// come back as it was: Snapshot rejects it, or (for an exemplar outside its
// bucket or upper-case hex) gives the corrected form. A family without Name
// comes back named PromName.
//
// # What Snapshot rejects
//
// Snapshot reads what MetricsData writes and rejects, with an error naming
// the place (e.g. metrics[3] "tasker_x_total": histogram data point 2: 5
// bucket counts for 5 bounds, want 6), whatever a snapshot cannot hold
// exactly:
//
//   - more than one ResourceMetrics, or more than one ScopeMetrics (none of
//     either is an empty snapshot);
//   - an attribute, metadata or filtered attribute value that is not a
//     string, or a key that appears twice in one list;
//   - a Metric without a name, without prometheus.name or prometheus.type
//     metadata (or with either twice), with a type other than counter, gauge
//     or histogram, or whose data disagrees with its type: a counter must be
//     a monotonic cumulative Sum, a gauge a Gauge, a histogram a cumulative
//     Histogram (so exponential histograms and summaries are rejected);
//   - a number data point or exemplar whose value is not as_double (an
//     int64 may not fit a float64), a data point with flags (no recorded
//     value) or, for a counter or gauge, more than one exemplar;
//   - a histogram data point without sum, with min or max, whose bucket
//     counts are not one more than its bounds, whose bounds are not strictly
//     increasing or include NaN or +Inf, whose bucket counts overflow or do
//     not add up to its count, or with two exemplars in one bucket;
//   - a trace_id that is not 16 bytes or a span_id that is not 8 (none is
//     fine);
//   - nil messages inside the tree (only Go callers can make them).
//
// It ignores what carries no data: metadata other than prometheus.name and
// prometheus.type (so that a newer host may add some),
// the scope's name, version and attributes, schema URLs and dropped
// attribute counts. It does not check order: families and series come back
// in the order they are sent, which is the host snapshot's (sorted). It
// caps nothing; every allocation is proportional to the input.
//
// The package imports exporters, the generated protocol (pluginv1) and the
// OTLP Go types, nothing else of Sextant's. Every function is pure and safe
// for concurrent use; results share no mutable memory with their arguments
// (strings, being immutable, are shared).
package wire

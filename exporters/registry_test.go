package exporters_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/exporters"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeExporter is a SnapshotExporter whose Export is a function field; nil
// writes "<name>:<format>".
type fakeExporter struct {
	name    string
	formats []string
	export  func(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error)
}

var _ exporters.SnapshotExporter = (*fakeExporter)(nil)

func (f *fakeExporter) Name() string      { return f.name }
func (f *fakeExporter) Formats() []string { return f.formats }

func (f *fakeExporter) Export(ctx context.Context, s *exporters.Snapshot, req exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
	if f.export != nil {
		return f.export(ctx, s, req, w)
	}
	n, err := io.WriteString(w, f.name+":"+req.Format)
	return exporters.ExportResult{ContentType: "text/plain", Bytes: int64(n)}, err
}

// writes returns an Export that writes body and returns err.
func writes(body string, err error) func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
	return func(_ context.Context, _ *exporters.Snapshot, _ exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
		n, werr := io.WriteString(w, body)
		if err != nil {
			return exporters.ExportResult{}, err
		}
		return exporters.ExportResult{ContentType: "text/plain", Bytes: int64(n)}, werr
	}
}

// versioned is a plugin that reports its version.
type versioned struct {
	*fakeExporter
	version string
}

func (v versioned) Version() string { return v.version }

// hooked records the hooks it hears; with panics set, its hooks panic.
type hooked struct {
	*fakeExporter
	panics bool

	mu        sync.Mutex
	requested []exporters.ExportRequest
	completed []completion
}

type completion struct {
	req exporters.ExportRequest
	res exporters.ExportResult
	err error
}

var _ exporters.ExportHooks = (*hooked)(nil)

func (h *hooked) OnExportRequested(req exporters.ExportRequest) {
	h.mu.Lock()
	h.requested = append(h.requested, req)
	h.mu.Unlock()
	if h.panics {
		panic("hook exploded")
	}
}

func (h *hooked) OnExportCompleted(req exporters.ExportRequest, res exporters.ExportResult, err error) {
	h.mu.Lock()
	h.completed = append(h.completed, completion{req, res, err})
	h.mu.Unlock()
	if h.panics {
		panic("hook exploded")
	}
}

// recorder is an EventPublisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	err    error
}

func (r *recorder) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return r.err
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// attrs returns an event's attributes as strings, keyed by name.
func attrs(e events.Event) map[string]string {
	out := map[string]string{}
	for _, a := range e.Attrs {
		out[a.Key] = a.Value.String()
	}
	return out
}

// stepClock returns a clock that moves 1ms forward on every reading.
func stepClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func newTestRegistry(t *testing.T) (*exporters.Registry, *recorder, *bytes.Buffer) {
	t.Helper()
	rec := &recorder{}
	var logs bytes.Buffer
	reg := exporters.NewRegistry(exporters.RegistrySettings{
		Events: rec,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)),
		Now:    stepClock(),
	})
	return reg, rec, &logs
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestRegistryRegistration(t *testing.T) {
	t.Parallel()
	reg, _, _ := newTestRegistry(t)
	jsonA := &fakeExporter{name: "json", formats: []string{"JSON"}}
	csv := &fakeExporter{name: "csv", formats: []string{"csv", " csv "}}
	plugin := &fakeExporter{name: "plugin-a", formats: []string{"json", "parquet"}}
	require.NoError(t, reg.RegisterBuiltin(jsonA))
	require.NoError(t, reg.RegisterBuiltin(csv))
	require.NoError(t, reg.Register(plugin))

	require.Equal(t, []exporters.SnapshotExporter{jsonA, csv, plugin}, reg.Exporters())
	require.Equal(t, []string{"csv", "json", "parquet"}, reg.Formats())
	require.Equal(t, []exporters.SnapshotExporter{jsonA, plugin}, reg.ForFormat("json"))
	require.Equal(t, []exporters.SnapshotExporter{jsonA, plugin}, reg.ForFormat("Json"))
	require.Empty(t, reg.ForFormat("xml"))
	got, ok := reg.Lookup("csv")
	require.True(t, ok)
	require.Same(t, csv, got)
	_, ok = reg.Lookup("nope")
	require.False(t, ok)

	tests := []struct {
		name    string
		op      func() error
		wantErr error
	}{
		{name: "name taken", op: func() error { return reg.Register(&fakeExporter{name: "csv", formats: []string{"csv"}}) }, wantErr: exporters.ErrExporterRegistered},
		{name: "builtin name taken", op: func() error { return reg.RegisterBuiltin(&fakeExporter{name: "json", formats: []string{"json"}}) }, wantErr: exporters.ErrExporterRegistered},
		{name: "nil", op: func() error { return reg.Register(nil) }, wantErr: exporters.ErrInvalidExporter},
		{name: "no name", op: func() error { return reg.Register(&fakeExporter{formats: []string{"json"}}) }, wantErr: exporters.ErrInvalidExporter},
		{name: "no formats", op: func() error { return reg.Register(&fakeExporter{name: "x", formats: []string{" "}}) }, wantErr: exporters.ErrInvalidExporter},
		{name: "replace nil", op: func() error { return reg.Replace(nil) }, wantErr: exporters.ErrInvalidExporter},
		{name: "unregister unknown", op: func() error { return reg.Unregister("nope") }, wantErr: exporters.ErrExporterNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.op(), tt.wantErr)
		})
	}
	require.Equal(t, []exporters.SnapshotExporter{jsonA, csv, plugin}, reg.Exporters(), "failed operations change nothing")

	jsonB := &fakeExporter{name: "json", formats: []string{"json", "ndjson"}}
	require.NoError(t, reg.Replace(jsonB))
	require.Equal(t, []exporters.SnapshotExporter{jsonB, csv, plugin}, reg.Exporters(), "Replace keeps the place")
	require.Equal(t, []string{"csv", "json", "ndjson", "parquet"}, reg.Formats())
	newcomer := &fakeExporter{name: "new", formats: []string{"csv"}}
	require.NoError(t, reg.Replace(newcomer))
	require.Equal(t, []exporters.SnapshotExporter{csv, newcomer}, reg.ForFormat("csv"), "Replace of an unknown name appends")

	require.NoError(t, reg.Unregister("csv"))
	require.Equal(t, []exporters.SnapshotExporter{jsonB, plugin, newcomer}, reg.Exporters())
	require.Equal(t, []exporters.SnapshotExporter{newcomer}, reg.ForFormat("csv"))
}

func TestRegistryPluginEvents(t *testing.T) {
	t.Parallel()
	reg, rec, _ := newTestRegistry(t)
	require.NoError(t, reg.RegisterBuiltin(&fakeExporter{name: "json", formats: []string{"json"}}))
	require.NoError(t, reg.Register(versioned{&fakeExporter{name: "plugin-a", formats: []string{"parquet", "avro"}}, "1.4.2"}))
	require.NoError(t, reg.Register(&fakeExporter{name: "plugin-b", formats: []string{"xml"}}))
	require.NoError(t, reg.Replace(&fakeExporter{name: "json", formats: []string{"json"}})) // a built-in replaced by a plugin
	require.NoError(t, reg.Unregister("plugin-b"))
	require.NoError(t, reg.Unregister("json"))

	type want struct {
		name  string
		attrs map[string]string
	}
	var got []want
	for _, e := range rec.all() {
		require.NoError(t, e.Validate(), "the catalog accepts %s", e.Name)
		require.False(t, e.CorrelationID.IsZero())
		got = append(got, want{e.Name, attrs(e)})
	}
	require.Equal(t, []want{
		{events.PluginRegistered, map[string]string{"plugin_name": "plugin-a", "plugin_version": "1.4.2", "formats": "avro,parquet"}},
		{events.PluginRegistered, map[string]string{"plugin_name": "plugin-b", "formats": "xml"}},
		{events.PluginRegistered, map[string]string{"plugin_name": "json", "formats": "json"}},
		{events.PluginUnregistered, map[string]string{"plugin_name": "plugin-b"}},
		{events.PluginUnregistered, map[string]string{"plugin_name": "json"}},
	}, got, "built-ins publish nothing; the plugin that replaced one does")
}

func TestRegistryExport(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	snap := filterSnapshot() // 7 series
	fixedID := events.NewIDAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).String()
	tests := []struct {
		name      string
		exporters []*fakeExporter
		ctx       func() (context.Context, context.CancelFunc)
		req       exporters.ExportRequest
		w         io.Writer // nil: a bytes.Buffer
		wantBody  string
		wantRes   exporters.ExportResult // Duration is checked apart
		wantErr   []string               // substrings; nil for success
		wantIs    error
		wantType  string // error_type, for failures
		wantEvent func(t *testing.T, requested, finished map[string]string, corr events.ID)
	}{
		{
			name:      "first exporter succeeds",
			exporters: []*fakeExporter{{name: "json", formats: []string{"json"}}, {name: "json-2", formats: []string{"json"}}},
			req:       exporters.ExportRequest{Format: "json", Target: "nightly"},
			wantBody:  "json:json",
			wantRes:   exporters.ExportResult{Exporter: "json", Format: "json", ContentType: "text/plain", Series: 7, Bytes: 9},
			wantEvent: func(t *testing.T, requested, finished map[string]string, corr events.ID) {
				require.Equal(t, "nightly", requested["target"])
				require.Equal(t, requested["export_id"], finished["export_id"])
				require.Equal(t, corr.String(), finished["export_id"], "the export id is the correlation id")
				require.Equal(t, "9", finished["bytes"])
				require.Equal(t, "7", finished["series_count"])
			},
		},
		{
			name: "failover keeps only the winner's bytes",
			exporters: []*fakeExporter{
				{name: "plugin-a", formats: []string{"json"}, export: writes("half-writ", errBoom)},
				{name: "plugin-b", formats: []string{"json"}, export: writes(`{"ok":true}`, nil)},
			},
			req:      exporters.ExportRequest{Format: "JSON", ID: fixedID},
			wantBody: `{"ok":true}`,
			wantRes:  exporters.ExportResult{Exporter: "plugin-b", Format: "json", ContentType: "text/plain", Series: 7, Bytes: 11},
			wantEvent: func(t *testing.T, requested, finished map[string]string, corr events.ID) {
				require.Equal(t, fixedID, requested["export_id"])
				require.Equal(t, fixedID, corr.String())
				require.Equal(t, "json", requested["format"], "formats are lower case")
				require.Equal(t, exporters.TargetOnDemand, requested["target"])
			},
		},
		{
			name: "a panic is a failure with its text",
			exporters: []*fakeExporter{
				{name: "plugin-a", formats: []string{"csv"}, export: func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
					panic("nil map write")
				}},
				{name: "csv", formats: []string{"csv"}},
			},
			req:      exporters.ExportRequest{Format: "csv"},
			wantBody: "csv:csv",
			wantRes:  exporters.ExportResult{Exporter: "csv", Format: "csv", ContentType: "text/plain", Series: 7, Bytes: 7},
		},
		{
			name: "every exporter fails",
			exporters: []*fakeExporter{
				{name: "plugin-a", formats: []string{"csv"}, export: writes("x", errBoom)},
				{name: "plugin-b", formats: []string{"csv"}, export: func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
					panic("nil map write")
				}},
			},
			req:      exporters.ExportRequest{Format: "csv", ID: "not-a-uuid"},
			wantRes:  exporters.ExportResult{Format: "csv"},
			wantErr:  []string{"export csv: plugin-a: boom; plugin-b: panic: nil map write"},
			wantIs:   errBoom,
			wantType: exporters.ExportErrorExporter,
			wantEvent: func(t *testing.T, requested, finished map[string]string, corr events.ID) {
				require.Equal(t, "not-a-uuid", finished["export_id"])
				require.False(t, corr.IsZero(), "a fresh correlation id")
				require.Equal(t, "export csv: plugin-a: boom; plugin-b: panic: nil map write", finished["error_message"])
			},
		},
		{
			name: "a slow exporter times out and stops the chain",
			exporters: []*fakeExporter{
				{name: "slow", formats: []string{"json"}, export: func(ctx context.Context, _ *exporters.Snapshot, _ exporters.ExportRequest, w io.Writer) (exporters.ExportResult, error) {
					_, _ = io.WriteString(w, "partial")
					<-ctx.Done()
					return exporters.ExportResult{}, ctx.Err()
				}},
				{name: "never", formats: []string{"json"}, export: func(context.Context, *exporters.Snapshot, exporters.ExportRequest, io.Writer) (exporters.ExportResult, error) {
					panic("must not be tried after the deadline")
				}},
			},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			},
			req:      exporters.ExportRequest{Format: "json"},
			wantRes:  exporters.ExportResult{Format: "json"},
			wantErr:  []string{"slow: context deadline exceeded", "1 of 2 exporters not tried"},
			wantIs:   context.DeadlineExceeded,
			wantType: exporters.ExportErrorTimeout,
		},
		{
			name:      "canceled before it starts",
			exporters: []*fakeExporter{{name: "json", formats: []string{"json"}}},
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			req:      exporters.ExportRequest{Format: "json"},
			wantRes:  exporters.ExportResult{Format: "json"},
			wantErr:  []string{"1 of 1 exporters not tried: context canceled"},
			wantIs:   context.Canceled,
			wantType: exporters.ExportErrorCanceled,
		},
		{
			name:      "unknown format",
			exporters: []*fakeExporter{{name: "json", formats: []string{"json"}}, {name: "csv", formats: []string{"csv"}}},
			req:       exporters.ExportRequest{Format: "xml"},
			wantRes:   exporters.ExportResult{Format: "xml"},
			wantErr:   []string{`unknown export format "xml": known formats are csv, json`},
			wantIs:    exporters.ErrUnknownFormat,
			wantType:  exporters.ExportErrorUnknownFormat,
		},
		{
			name:      "the output refuses the bytes",
			exporters: []*fakeExporter{{name: "json", formats: []string{"json"}}, {name: "json-2", formats: []string{"json"}}},
			req:       exporters.ExportRequest{Format: "json"},
			w:         failingWriter{},
			wantRes:   exporters.ExportResult{Exporter: "json", Format: "json", ContentType: "text/plain", Series: 7},
			wantErr:   []string{"write json's output: connection reset"},
			wantType:  exporters.ExportErrorWrite,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg, rec, logs := newTestRegistry(t)
			for _, e := range tt.exporters {
				require.NoError(t, reg.RegisterBuiltin(e))
			}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			var buf bytes.Buffer
			w := tt.w
			if w == nil {
				w = &buf
			}

			res, err := reg.Export(ctx, snap, tt.req, w)

			require.Positive(t, res.Duration)
			res.Duration = 0
			require.Equal(t, tt.wantRes, res)
			require.Equal(t, tt.wantBody, buf.String())
			evs := rec.all()
			require.Len(t, evs, 2)
			for _, e := range evs {
				require.NoError(t, e.Validate(), "the catalog accepts %s", e.Name)
			}
			require.Equal(t, events.TelemetryExportRequested, evs[0].Name)
			require.Equal(t, evs[0].CorrelationID, evs[1].CorrelationID, "an export's events correlate")
			requested, finished := attrs(evs[0]), attrs(evs[1])
			require.Equal(t, requested["export_id"], finished["export_id"])
			require.Equal(t, requested["format"], finished["format"])
			require.Equal(t, requested["target"], finished["target"])
			require.NotEmpty(t, finished["duration_ms"])
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, events.TelemetryExportCompleted, evs[1].Name)
			} else {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				if tt.wantIs != nil {
					require.ErrorIs(t, err, tt.wantIs)
				}
				require.Equal(t, events.TelemetryExportFailed, evs[1].Name)
				require.Equal(t, tt.wantType, finished["error_type"])
				require.Equal(t, err.Error(), finished["error_message"])
			}
			if tt.wantEvent != nil {
				tt.wantEvent(t, requested, finished, evs[0].CorrelationID)
			}
			if strings.Contains(tt.name, "panic") || strings.Contains(tt.name, "every") {
				require.Contains(t, logs.String(), "exporter panicked")
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestRegistryExportHooks(t *testing.T) {
	t.Parallel()
	reg, _, logs := newTestRegistry(t)
	listener := &hooked{fakeExporter: &fakeExporter{name: "audit", formats: []string{"audit"}}}
	boom := &hooked{fakeExporter: &fakeExporter{name: "boom", formats: []string{"boom"}}, panics: true}
	require.NoError(t, reg.RegisterBuiltin(&fakeExporter{name: "json", formats: []string{"json"}}))
	require.NoError(t, reg.Register(boom))
	require.NoError(t, reg.Register(listener))

	var buf bytes.Buffer
	res, err := reg.Export(context.Background(), filterSnapshot(), exporters.ExportRequest{Format: "json"}, &buf)
	require.NoError(t, err)
	_, err2 := reg.Export(context.Background(), filterSnapshot(), exporters.ExportRequest{Format: "nope"}, &buf)
	require.ErrorIs(t, err2, exporters.ErrUnknownFormat)

	for _, h := range []*hooked{listener, boom} {
		require.Len(t, h.requested, 2, h.name)
		require.Len(t, h.completed, 2, h.name)
		require.NotEmpty(t, h.requested[0].ID, "hooks see the export id")
		require.Equal(t, exporters.TargetOnDemand, h.requested[0].Target)
		require.Equal(t, h.requested[0], h.completed[0].req)
		require.Equal(t, res, h.completed[0].res)
		require.NoError(t, h.completed[0].err)
		require.ErrorIs(t, h.completed[1].err, exporters.ErrUnknownFormat)
	}
	require.Contains(t, logs.String(), "export hook panicked", "a panicking hook is logged")
	require.Equal(t, "json:json", buf.String())
}

func TestRegistryEventsOptional(t *testing.T) {
	t.Parallel()
	failing := &recorder{err: errors.New("bus down")}
	var logs bytes.Buffer
	for _, set := range []exporters.RegistrySettings{
		{}, // no publisher, default logger and clock
		{Events: failing, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
	} {
		reg := exporters.NewRegistry(set)
		require.NoError(t, reg.Register(&fakeExporter{name: "p", formats: []string{"json"}}))
		var buf bytes.Buffer
		_, err := reg.Export(context.Background(), filterSnapshot(), exporters.ExportRequest{Format: "json"}, &buf)
		require.NoError(t, err, "an event that cannot be published fails nothing")
		require.Equal(t, "p:json", buf.String())
	}
	require.Len(t, failing.all(), 3)
	require.Contains(t, logs.String(), "bus down")
}

// TestRegistryConcurrentSafe exports while exporters come and go; run it
// with -race.
func TestRegistryConcurrentSafe(t *testing.T) {
	t.Parallel()
	reg, rec, _ := newTestRegistry(t)
	require.NoError(t, reg.RegisterBuiltin(&fakeExporter{name: "json", formats: []string{"json"}}))
	snap := filterSnapshot()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				var buf bytes.Buffer
				res, err := reg.Export(context.Background(), snap, exporters.ExportRequest{Format: "json"}, &buf)
				if err != nil {
					t.Errorf("export %d/%d: %v", g, i, err)
					return
				}
				if buf.String() != res.Exporter+":json" {
					t.Errorf("export %d/%d wrote %q as %s", g, i, buf.String(), res.Exporter)
				}
			}
		})
	}
	for g := range 2 {
		wg.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("plugin-%d-%d", g, i)
				if err := reg.Register(&fakeExporter{name: name, formats: []string{"json"}}); err != nil {
					t.Error(err)
				}
				_ = reg.Formats()
				_ = reg.ForFormat("json")
				if err := reg.Replace(&fakeExporter{name: name, formats: []string{"json", "csv"}}); err != nil {
					t.Error(err)
				}
				if err := reg.Unregister(name); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, reg.Exporters(), 1)
	require.Len(t, rec.all(), 4*50*2+2*50*4)
}

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/router"
)

// want is an expected problem: its position as "LINE:COL", its YAML path,
// and a part of its message.
type want struct {
	at, path, msg string
}

// requireProblems checks got against wants, in order, all in file.
func requireProblems(t *testing.T, file string, wants []want, got []Problem) {
	t.Helper()
	gotText := make([]string, len(got))
	for i, p := range got {
		gotText[i] = p.String()
	}
	require.Len(t, got, len(wants), "problems:\n%s", strings.Join(gotText, "\n"))
	for i, w := range wants {
		p := got[i]
		require.Equal(t, file+":"+w.at+": "+w.path, fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Path), "problem %d: %s", i, p)
		require.Contains(t, p.Message, w.msg, "problem %d", i)
	}
}

func factoryMap(t *testing.T, factories []exporters.Factory) map[string]exporters.Factory {
	t.Helper()
	m := map[string]exporters.Factory{}
	for _, f := range factories {
		m[f.Type()] = f
	}
	return m
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string // testdata/invalid/<name>.yaml
		decode   []want // problems found while decoding
		validate []want // problems found validating what was decoded
	}{
		{name: "unknown_key", decode: []want{
			{"2:3", "bus.batchsize", "unknown key, want one of: driver, topic, partitions, batch_size, flush_interval, postgres"},
			{"9:11", "router.routes[0].metrics[0].colour", "unknown key, want one of: name, type, unit, description, labels, value, buckets, series_limit"},
		}},
		{name: "wrong_type", decode: []want{
			{"2:11", "server.listen", "want a string, got a list"},
			{"4:15", "bus.batch_size", `want an integer, got "lots"`},
			{"5:10", "bus.topic", "want a string, got a mapping"},
			{"7:17", "router.series_limit", "want an integer, got the number 1.5"},
			{"14:19", "router.routes[0].metrics[0].labels", "want a mapping, got a list"},
			{"15:24", "router.routes[0].metrics[0].buckets[1]", `want a number, got "two"`},
		}},
		{name: "bad_enum", decode: []want{
			{"2:11", "bus.driver", `unknown bus driver "kafka" (allowed: memory, postgres)`},
			{"8:17", "router.routes[0].metrics[0].type", `unknown metric type "countr" (allowed: counter, updown_counter, histogram, gauge)`},
		}},
		{name: "duration_int", decode: []want{
			{"2:19", "bus.flush_interval", `want a duration such as "5ms" or "1m30s": a bare number has no unit, got 5`},
		}},
		{name: "duplicate_key", decode: []want{
			{"3:3", "bus.topic", "duplicate key, first set at line 2"},
		}},
		{name: "unknown_exporter", decode: []want{
			{"2:3", "exporters.graphite", "unknown exporter type, want one of: json, prometheus"},
		}},
		{name: "bad_yaml", decode: []want{
			{"3:1", "", "invalid YAML: did not find expected ',' or ']'"},
		}},
		{name: "alias_cycle", decode: []want{
			{"3:7", "bus", "alias *b refers to a value that contains it"},
		}},
		{name: "alias_bomb", decode: []want{
			{"4:7", "bus", "document too large: more than"},
		}},
		{name: "not_a_mapping", decode: []want{
			{"1:1", "", "want a mapping, got a list"},
		}},
		{name: "two_documents", decode: []want{
			{"3:1", "", "a configuration file holds one YAML document"},
		}},
		{name: "unknown_event", validate: []want{
			{"3:14", "router.routes[0].match", `unknown event "step.claimd" (known: db.pool_acquired, `},
			{"7:14", "router.routes[1].match", `pattern "job.*" matches no event in the catalog`},
		}},
		{name: "unknown_field", validate: []want{
			{"9:49", "router.routes[0].metrics[0].labels.queue", `event "step.claimed" has no field "queue_name" (fields: correlation_id, event_name, `},
			{"8:18", "router.routes[0].metrics[0].value", `event "step.claimed" has no field "duration_seconds"`},
		}},
		{name: "conflicting_metric", validate: []want{
			{"11:17", "router.routes[1].metrics[0].name", `metric "steps.duration" is also defined at routes[0].metrics[0] with a different unit`},
		}},
		{name: "missing_metrics", validate: []want{
			{"3:7", "router.routes[0].metrics", "a route needs at least one metric"}, // no metrics key: placed at the route
			{"5:16", "router.routes[1].metrics", "a route needs at least one metric"},
		}},
		{name: "bad_listen", validate: []want{
			{"2:11", "server.listen", `want host:port such as 127.0.0.1:9464, got "localhost"`},
		}},
		{name: "bad_targets", validate: []want{
			{"5:19", "exporters.targets[0].http.url", `want http://host:port/... or https://..., got "ftp://collector"`},
			{"9:13", "exporters.targets[1].name", `"textfile" is also the name of target [0]`},
			{"8:18", "exporters.targets[1].max_delay", `goes with after_events`},
			{"10:15", "exporters.targets[1].format", `a Pushgateway takes prometheus, got "json"`},
		}},
		{name: "bad_plugins", validate: []want{
			{"2:17", "plugins.call_timeout", "must not be negative"},
			{"3:32", "plugins.breaker.failure_threshold", "must be at least 1"},
			{"5:13", "plugins.instances[0].name", `want lower-case letters, digits, _ and -`},
			{"7:15", "plugins.instances[0].sha256", `want 64 hex digits (sha256sum's output); got "nothex"`},
			{"9:16", "plugins.instances[1].address", "set path or address, not both"},
			{"11:16", "plugins.instances[2].address", `want host:port such as 127.0.0.1:7777; got "nowhere"`},
			{"10:15", "plugins.instances[2].config", "want a mapping (the plugin's own keys), got a list"},
		}},
		{name: "bad_logging", validate: []want{
			{"2:10", "logging.level", `want debug, info, warn or error; got "loud"`},
			{"3:11", "logging.format", `want auto, json, text; got "yaml"`},
		}},
		{name: "invalid_values", validate: []want{
			{"3:10", "bus.topic", "must not be empty"},
			{"2:15", "bus.batch_size", "must be between 1 and"},
			{"6:27", "exporters.prometheus.translation_strategy", `unknown strategy "Whatever"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join("testdata", "invalid", tt.name+".yaml")
			data, err := os.ReadFile(file)
			require.NoError(t, err)

			cfg, st, problems, complete := decodeAll(factoryMap(t, testFactories()), &source{name: file, data: data})
			requireProblems(t, file, tt.decode, problems)
			var validation []Problem
			if complete {
				validation = st.placeIssues(cfg.issues())
			}
			requireProblems(t, file, tt.validate, validation)

			// Load reports both kinds, decoding problems first.
			got, err := Load(file, testFactories()...)
			require.Nil(t, got)
			var cerr *Error
			require.ErrorAs(t, err, &cerr)
			require.Equal(t, append(problems, validation...), cerr.Problems)
		})
	}
}

// distinctMetrics returns the distinct metric names across all routes.
func distinctMetrics(c *Config) map[string]bool {
	names := map[string]bool{}
	for _, r := range c.Router.Routes {
		for _, m := range r.Metrics {
			names[m.Name] = true
		}
	}
	return names
}

func TestValid(t *testing.T) {
	t.Parallel()
	def, err := Default(testFactories()...)
	require.NoError(t, err)

	tests := []struct {
		name  string // testdata/valid/<name>.yaml
		check func(t *testing.T, c *Config)
	}{
		{name: "empty", check: func(t *testing.T, c *Config) {
			require.Equal(t, def, c)
		}},
		{name: "only_bus", check: func(t *testing.T, c *Config) {
			require.Equal(t, 64, c.Bus.BatchSize)
			require.Equal(t, def.Bus.Topic, c.Bus.Topic, "absent keys keep the default")
			require.Equal(t, def.Bus.FlushInterval, c.Bus.FlushInterval)
			require.Len(t, distinctMetrics(c), 58) // the seeds' 45, 10 of Sextant's own and 3 of the performance monitor
			require.Equal(t, def.Router, c.Router)
			require.Equal(t, def.Server, c.Server)
			require.Equal(t, def.Exporters, c.Exporters)
		}},
		{name: "full", check: func(t *testing.T, c *Config) {
			count := router.Metric{Name: "sextant.steps.total", Type: router.MetricTypeCounter,
				Description: "Step events by name", Labels: map[string]string{"event": "event_name", "namespace": "namespace"}}
			require.Equal(t, &Config{
				Server: ServerConfig{Listen: ":9090"},
				Bus: bus.Config{
					Driver: bus.DriverMemory, Topic: "custom.events", Partitions: 1, BatchSize: 128, FlushInterval: 250 * time.Millisecond,
					Postgres: bus.NewDefaultConfig().Postgres, // absent keys keep the default
				},
				Router: router.Config{SeriesLimit: 500, Traces: def.Router.Traces, Routes: []router.Route{
					{Match: "step.*", Metrics: []router.Metric{count}},
					{Match: "task.**", Metrics: []router.Metric{{Name: "sextant.tasks.total", Type: router.MetricTypeCounter,
						Description: "Task events by name", Labels: map[string]string{"event": "event_name"}}}},
					{Match: "task.finalized", Metrics: []router.Metric{
						{Name: "sextant.task.duration", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms",
							Buckets: []float64{1, 10, 100}, SeriesLimit: 50, Labels: map[string]string{}},
						{Name: "sextant.task.duration.again", Type: router.MetricTypeHistogram, Unit: "ms", Value: "duration_ms",
							Buckets: []float64{1, 10, 100}},
					}},
				}},
				Traces:    def.Traces,
				Plugins:   def.Plugins,
				Logging:   def.Logging,
				Engine:    def.Engine,
				Exporters: map[string]exporters.Config{"prometheus": &promConfig{TranslationStrategy: "NoUTF8EscapingWithSuffixes"}},
			}, c)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(filepath.Join("testdata", "valid", tt.name+".yaml"), testFactories()...)
			require.NoError(t, err)
			tt.check(t, c)
			require.NoError(t, c.Validate())
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c, err := Default(testFactories()...)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "127.0.0.1:9464", c.Server.Listen)
	require.Equal(t, bus.NewDefaultConfig(), c.Bus, "default.yaml and bus.NewDefaultConfig agree")
	require.Len(t, distinctMetrics(c), 58)
	require.Equal(t, map[string]exporters.Config{"prometheus": &promConfig{TranslationStrategy: "UnderscoreEscapingWithSuffixes"}}, c.Exporters)

	// Aliases are expanded: both step.completed and step.failed record the
	// anchored step execution histogram, and every histogram has the
	// anchored buckets.
	var durations []router.Metric
	var buckets [][]float64
	for _, r := range c.Router.Routes {
		for _, m := range r.Metrics {
			if m.Name == "tasker.step.execution.duration" {
				durations = append(durations, m)
			}
			if m.Type == router.MetricTypeHistogram {
				buckets = append(buckets, m.Buckets)
			}
		}
	}
	require.Len(t, durations, 2)
	require.Equal(t, durations[0], durations[1])
	require.Len(t, buckets, 16) // 7 orchestration and worker definitions, 3 database, 2 messaging, 3 of Sextant's own (retry backoff, whole task, export), 1 of the performance monitor
	require.NotEmpty(t, buckets[0])
	for _, b := range buckets[1:] {
		require.Equal(t, buckets[0], b)
	}

	// Validate reports full paths for a Config changed in code.
	c.Bus.BatchSize = 0
	c.Router.Routes[1].Metrics[0].Labels["bad-label"] = "task_type"
	c.Server.Listen = "nowhere"
	err = c.Validate()
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, err.Error())
	require.True(t, strings.HasPrefix(lines[0], `server.listen: want host:port such as 127.0.0.1:9464, got "nowhere"`), lines[0])
	require.True(t, strings.HasPrefix(lines[1], "bus.batch_size: must be between 1 and "), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "router.routes[1].metrics[0].labels.bad-label: label name must match"), lines[2])
}

func TestFactories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		doc       string
		factories []exporters.Factory
		wantErr   string // the whole error text; empty for none
	}{
		{name: "default needs its exporters' factories", doc: "bus: {batch_size: 8}\n",
			wantErr: defaultName + ":" + defaultLine(t, "  prometheus:") + ":3: exporters.prometheus: unknown exporter type, want one of: (none: no exporter factories were given)"},
		{name: "unless the file replaces the exporters", doc: "exporters: {}\n"},
		{name: "listed exporters only", doc: "exporters: {json: {path: out.json}}\n", factories: []exporters.Factory{jsonFactory()}},
		{name: "value config decoded from its default", doc: "exporters:\n  json:\n", factories: []exporters.Factory{jsonFactory()}},
		{name: "value config validated", doc: "exporters:\n  json: {path: \"\"}\n", factories: []exporters.Factory{jsonFactory()},
			wantErr: "f.yaml:2:16: exporters.json.path: must not be empty"},
		{name: "nil default config", doc: "exporters: {prometheus: {}}\n",
			factories: []exporters.Factory{fakeFactory{typ: "prometheus", newDefault: func() exporters.Config { return nil }}},
			wantErr:   "config: the prometheus exporter's factory returned a nil default config"},
		{name: "duplicate factory", doc: "exporters: {}\n", factories: []exporters.Factory{jsonFactory(), jsonFactory()},
			wantErr: `config: two exporter factories have type "json"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("f.yaml", []byte(tt.doc), tt.factories...)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, c)
		})
	}

	c, err := Parse("f.yaml", []byte("exporters:\n  json:\n"), jsonFactory())
	require.NoError(t, err)
	require.Equal(t, map[string]exporters.Config{"json": jsonConfig{Path: "-"}}, c.Exporters)
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *Config)
	}{
		{name: "null keeps a struct", doc: "bus:\n", check: func(t *testing.T, c *Config) {
			require.Equal(t, bus.NewDefaultConfig(), c.Bus)
		}},
		{name: "null keeps a scalar", doc: "bus: {topic: ~}\n", check: func(t *testing.T, c *Config) {
			require.Equal(t, "sextant.events", c.Bus.Topic)
		}},
		{name: "merge keys: own keys win, then earlier merged mappings", doc: "bus:\n  <<: [{batch_size: 7, topic: merged}, {batch_size: 9, flush_interval: 1s}]\n  topic: own\n",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, bus.Config{Driver: bus.DriverMemory, Topic: "own", Partitions: 1, BatchSize: 7, FlushInterval: time.Second, Postgres: bus.NewDefaultConfig().Postgres}, c.Bus)
			}},
		{name: "maps replace wholesale", doc: "router:\n  routes:\n    - match: step.claimed\n      metrics:\n        - {name: c, type: counter}\n",
			check: func(t *testing.T, c *Config) {
				require.Len(t, c.Router.Routes, 1)
				require.Equal(t, 10000, c.Router.SeriesLimit, "the router's other keys are kept")
			}},
		{name: "exporter section decoded over the default's value", doc: "exporters:\n  prometheus: {namespace: sx}\n",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, &promConfig{TranslationStrategy: "UnderscoreEscapingWithSuffixes", Namespace: "sx"}, c.Exporters["prometheus"])
			}},
		{name: "exporters list replaces the default's", doc: "exporters:\n  json: {path: a.json}\n",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, map[string]exporters.Config{"json": jsonConfig{Path: "a.json"}}, c.Exporters)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("f.yaml", []byte(tt.doc), testFactories()...)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string // empty for the embedded default
	}{
		{name: "default"},
		{name: "only_bus", file: "testdata/valid/only_bus.yaml"},
		{name: "full", file: "testdata/valid/full.yaml"},
		{name: "plugins", file: "testdata/valid/plugins.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c *Config
			var err error
			if tt.file == "" {
				c, err = Default(testFactories()...)
			} else {
				c, err = Load(tt.file, testFactories()...)
			}
			require.NoError(t, err)

			out, err := Marshal(c)
			require.NoError(t, err)
			back, err := Parse("marshalled.yaml", out, testFactories()...)
			require.NoError(t, err, "%s", out)
			require.Equal(t, c, back)

			again, err := Marshal(back)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again))
		})
	}

	c, err := Default(testFactories()...)
	require.NoError(t, err)
	out, err := Marshal(c)
	require.NoError(t, err)
	require.Contains(t, string(out), "\n  flush_interval: 5ms\n", "durations are strings")

	_, err = Marshal(nil)
	require.Error(t, err)
}

// defaultLine returns the number of the first line of default.yaml that
// starts with prefix, so that tests survive edits to the default.
func defaultLine(t *testing.T, prefix string) string {
	t.Helper()
	for i, line := range strings.Split(defaultYAML, "\n") {
		if strings.HasPrefix(line, prefix) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("default.yaml has no line starting with %q", prefix)
	return ""
}

func TestPlace(t *testing.T) {
	t.Parallel()
	doc := "router:\n  routes:\n    - match: step.claimed\n"
	_, st, problems, complete := decodeAll(factoryMap(t, testFactories()), &source{name: "f.yaml", data: []byte(doc)})
	require.True(t, complete)
	require.Empty(t, problems)

	tests := []struct {
		name, path, file, at string
	}{
		{name: "value from the default", path: "bus.topic", file: defaultName, at: defaultLine(t, "  topic: ") + ":10"},
		{name: "section from the default", path: "bus", file: defaultName, at: defaultLine(t, "  driver: ") + ":3"},
		{name: "key kept from the default", path: "router.series_limit", file: defaultName, at: defaultLine(t, "  series_limit: ") + ":17"},
		{name: "set by the file", path: "router.routes[0].match", file: "f.yaml", at: "3:14"},
		{name: "replaced list hides the default's entries", path: "router.routes[0].metrics", file: "f.yaml", at: "3:7"},
		{name: "past the end of the file's list", path: "router.routes[5].match", file: "f.yaml", at: "3:5"},
		{name: "exporter from the default", path: "exporters.prometheus.translation_strategy", file: defaultName, at: defaultLine(t, "    translation_strategy: ") + ":27"},
		{name: "unknown path falls back to the file's root", path: "nowhere.at.all", file: "f.yaml", at: "1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file, p := st.place(tt.path)
			require.Equal(t, tt.file+":"+tt.at, fmt.Sprintf("%s:%d:%d", file, p.line, p.col))
		})
	}
}

func TestSyntaxProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string // Problem.String()
	}{
		{name: "unclosed flow list (parser error, 0-based line)", doc: "a: 1\nb: 2\nc: [1, 2\nd: 4\n",
			want: "f.yaml:3:1: invalid YAML: did not find expected ',' or ']'"},
		{name: "bad indentation (parser error)", doc: "a: 1\n- b\n",
			want: "f.yaml:2:1: invalid YAML: did not find expected key"},
		{name: "mapping in a scalar (scanner error, 1-based line)", doc: "a: 1\nb: 2\n  c: 3\n",
			want: "f.yaml:3:1: invalid YAML: mapping values are not allowed in this context"},
		{name: "tab indentation (scanner error)", doc: "a: 1\nb:\n\t- x\n",
			want: "f.yaml:3:1: invalid YAML: found character that cannot start any token"},
		{name: "error on the first line has no line number", doc: "\t- a",
			want: "f.yaml:1:1: invalid YAML: found character that cannot start any token"},
		{name: "unknown anchor placed at its use", doc: "bus:\n  topic: *nope\n",
			want: "f.yaml:2:10: invalid YAML: unknown anchor 'nope' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("f.yaml", []byte(tt.doc), testFactories()...)
			var cerr *Error
			require.ErrorAs(t, err, &cerr)
			require.Len(t, cerr.Problems, 1)
			require.Equal(t, tt.want, cerr.Problems[0].String())
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), testFactories()...)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.yaml")
	require.NoError(f, err)
	for _, s := range append(seeds, "default.yaml") {
		data, err := os.ReadFile(s)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, testFactories()...)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("not an *Error: %v", err)
			}
			require.NotEmpty(t, cerr.Problems)
			for _, p := range cerr.Problems {
				require.Positive(t, p.Line, "%s", p)
				require.Positive(t, p.Column, "%s", p)
				require.NotEmpty(t, p.Message, "%s", p)
			}
			return
		}
		// What parses also prints, and what it prints parses back to the
		// same thing. (Compared as text: NaN bounds are not DeepEqual.)
		out, err := Marshal(c)
		require.NoError(t, err)
		back, err := Parse("marshalled.yaml", out, testFactories()...)
		require.NoError(t, err, "%s", out)
		again, err := Marshal(back)
		require.NoError(t, err)
		require.Equal(t, string(out), string(again))
	})
}

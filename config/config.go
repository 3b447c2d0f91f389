package config

import (
	_ "embed" // for the default configuration
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sextant-telemetry/sextant/events/bus"
	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/exporters/traces"
	"github.com/sextant-telemetry/sextant/internal/logging"
	"github.com/sextant-telemetry/sextant/lifecycle"
	"github.com/sextant-telemetry/sextant/plugins/host"
	"github.com/sextant-telemetry/sextant/router"
)

// defaultYAML is the embedded default configuration. It is a string, not a
// []byte, so that nothing can modify it.
//
//go:embed default.yaml
var defaultYAML string

// defaultName is the file name problems in the embedded default carry.
const defaultName = "<embedded default.yaml>"

// Config is the whole configuration file.
type Config struct {
	// Server is where Sextant serves its HTTP endpoints.
	Server ServerConfig `yaml:"server"`
	// Bus is the event bus between the publishers and the router.
	Bus bus.Config `yaml:"bus"`
	// Router holds the rules that map events to metrics.
	Router router.Config `yaml:"router"`
	// Traces is where the router's spans are exported to.
	Traces traces.Config `yaml:"traces"`
	// Exporters configures the exporters to run, keyed by their factory's
	// Type; each value is that factory's Config. An exporter runs if and
	// only if it has a key here.
	Exporters map[string]exporters.Config `yaml:"exporters"`
	// Plugins are the out-of-process exporter plugins to run.
	Plugins host.Config `yaml:"plugins"`
	// Logging is the service's log level and format.
	Logging logging.Config `yaml:"logging"`
	// Engine configures the reference workflow engine that `sextant demo`
	// runs next to the router; `sextant run` has none.
	Engine lifecycle.EngineConfig `yaml:"engine"`
}

// ServerConfig is the server section of the configuration.
type ServerConfig struct {
	// Listen is the host:port the HTTP server (metrics, /export) listens
	// on. An empty host means every interface; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// Auth protects /metrics and /export with a bearer token. Unset, they
	// are open to anyone who reaches the listener.
	Auth AuthConfig `yaml:"auth"`
}

// AuthConfig says where the bearer token that /metrics and /export require
// comes from: a file or an environment variable, never the configuration
// itself, so that `sextant config print` and the logs cannot show it. At
// most one of the two may be set; with neither, no token is required.
type AuthConfig struct {
	// BearerTokenFile is the path of a file holding the token; surrounding
	// white space (a trailing newline) is ignored. Read once at start-up.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BearerTokenEnv is the name of an environment variable holding the
	// token, read once at start-up.
	BearerTokenEnv string `yaml:"bearer_token_env"`
}

// Enabled reports whether a token is required.
func (c AuthConfig) Enabled() bool { return c.BearerTokenFile != "" || c.BearerTokenEnv != "" }

// Validate reports every problem with the section, each as an error whose
// message starts with the field's YAML name. It does not read the token:
// that happens when the server starts.
func (c AuthConfig) Validate() error {
	var errs []error
	file, env := keyOf[AuthConfig]("BearerTokenFile"), keyOf[AuthConfig]("BearerTokenEnv")
	if c.BearerTokenFile != "" && c.BearerTokenEnv != "" {
		errs = append(errs, &pathError{path: env, err: fmt.Errorf("set %s or %s, not both", file, env)})
	}
	if c.BearerTokenEnv != "" && !envName.MatchString(c.BearerTokenEnv) {
		errs = append(errs, &pathError{path: env,
			err: fmt.Errorf("want an environment variable name such as SEXTANT_TOKEN (letters, digits and _, not starting with a digit), got %q", c.BearerTokenEnv)})
	}
	return errors.Join(errs...)
}

// envName is what POSIX shells accept as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem with the section, each as an error whose
// message starts with the field's YAML path within the section.
func (c ServerConfig) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Listen)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err == nil && strings.ContainsAny(host, " /") {
		err = fmt.Errorf("host %q is not a host name or IP address", host)
	}
	if err != nil {
		errs = append(errs, &pathError{path: keyOf[ServerConfig]("Listen"),
			err: fmt.Errorf("want host:port such as 127.0.0.1:9464, got %q: %w", c.Listen, err)})
	}
	auth := keyOf[ServerConfig]("Auth")
	for _, e := range leaves(c.Auth.Validate()) {
		var pe *pathError
		if errors.As(e, &pe) {
			errs = append(errs, &pathError{path: join(auth, pe.path), err: pe.err})
		} else {
			errs = append(errs, &pathError{path: auth, err: e})
		}
	}
	return errors.Join(errs...)
}

// Validate checks the whole tree and returns every problem joined, each
// message starting with its full YAML path, such as
// router.routes[3].metrics[0].type. Load, Parse and Default already
// validate; Validate is for a Config changed in code. Unlike their errors,
// its errors carry no file positions.
func (c *Config) Validate() error {
	var errs []error
	for _, is := range c.issues() {
		errs = append(errs, &pathError{path: is.path, err: errors.New(is.msg)})
	}
	return errors.Join(errs...)
}

// Load reads the configuration file at path and returns the effective
// configuration: the embedded default with the file's keys decoded over it
// (see Parse). Problems in the file are reported as an *Error whose
// positions name path.
//
// Load reads the file and does nothing else; it is safe for concurrent use.
func Load(path string, factories ...exporters.Factory) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data, factories...)
}

// Parse decodes data, the configuration file called name, over the embedded
// default, validates the result and returns it.
//
// Keys present in data replace the default's; absent keys keep it. A list
// or map given in data replaces the default's wholesale: a file with a
// router.routes list has only its own routes, while a file that sets only
// bus keeps every default route. null clears a list, map or pointer and
// leaves anything else as it was.
//
// Each key under exporters must be the Type of one of factories; its value
// is decoded over the default's value for that type if the default has one,
// else over the factory's NewDefaultConfig. The exporters map as a whole is
// replaced, so a file with an exporters section runs exactly the exporters
// it lists. The embedded default configures the prometheus exporter, so its
// factory must be among factories unless data has an exporters section.
//
// Decoding is strict: unknown keys, duplicate keys, values of the wrong
// type, enum values their type's UnmarshalText rejects and durations
// without a unit are problems. After decoding, the whole tree is validated
// (each section's Validate, each exporter Config's Validate). Every problem
// is collected and returned as an *Error, each with its file, line, column
// and YAML path. A validation problem about a value taken from the default
// points into the default, whose file name is "<embedded default.yaml>".
// A validation problem at or under a path that failed to decode is left
// out, since it would describe the placeholder rather than the file; a
// syntax error, or a document whose aliases expand past a budget
// proportional to its size, stops before validation.
//
// A nil factory, two with one Type, or one whose NewDefaultConfig returns
// nil is a plain error rather than an *Error. Parse does no I/O and is safe
// for concurrent use.
func Parse(name string, data []byte, factories ...exporters.Factory) (*Config, error) {
	return load(factories, &source{name: name, data: data})
}

// Default returns the embedded default configuration, decoded and
// validated. It configures the prometheus exporter, so factories must
// include the factory whose Type is "prometheus". It is safe for concurrent
// use; each call returns a new Config.
func Default(factories ...exporters.Factory) (*Config, error) {
	return load(factories, nil)
}

// source is one document to decode.
type source struct {
	name string
	data []byte
}

func load(factories []exporters.Factory, user *source) (*Config, error) {
	fs := make(map[string]exporters.Factory, len(factories))
	for i, f := range factories {
		if f == nil {
			return nil, fmt.Errorf("config: exporter factory %d is nil", i)
		}
		if _, dup := fs[f.Type()]; dup {
			return nil, fmt.Errorf("config: two exporter factories have type %q", f.Type())
		}
		if f.NewDefaultConfig() == nil {
			return nil, fmt.Errorf("config: the %s exporter's factory returned a nil default config", f.Type())
		}
		fs[f.Type()] = f
	}
	cfg, st, problems, complete := decodeAll(fs, user)
	if complete {
		problems = append(problems, st.placeIssues(cfg.issues())...)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

// decodeAll decodes the embedded default and then, if user is not nil, the
// user's document over it. It returns the layers decoded and the decoding
// problems; complete is false if a document could not be decoded whole (a
// syntax error, or too many aliases), in which case validating the result
// would only add noise.
func decodeAll(fs map[string]exporters.Factory, user *source) (cfg *Config, st *state, problems []Problem, complete bool) {
	cfg, st = &Config{}, &state{}
	out := reflect.ValueOf(cfg).Elem()

	def := &decoder{layer: newLayer(defaultName), factories: fs, deferExporters: user != nil}
	st.layers = append(st.layers, def.layer)
	complete = def.decodeDocument([]byte(defaultYAML), out)
	problems = def.problems
	if user == nil || !complete {
		return cfg, st, problems, complete
	}

	d := &decoder{layer: newLayer(user.name), factories: fs}
	st.layers = append(st.layers, d.layer)
	complete = d.decodeDocument(user.data, out)
	if _, replaced := d.layer.pos[keyOf[Config]("Exporters")]; complete && !replaced {
		problems = append(problems, def.deferred...)
	}
	return cfg, st, append(problems, d.problems...), complete
}

// issue is a validation problem at a YAML path, before it is placed in a file.
type issue struct{ path, msg string }

// issues validates every section and prefixes each problem's path with the
// section's.
func (c *Config) issues() []issue {
	var out []issue
	out = append(out, sectionIssues(keyOf[Config]("Server"), c.Server, c.Server.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Bus"), c.Bus, c.Bus.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Router"), c.Router, c.Router.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Traces"), c.Traces, c.Traces.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Plugins"), c.Plugins, c.Plugins.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Logging"), c.Logging, c.Logging.Validate())...)
	out = append(out, sectionIssues(keyOf[Config]("Engine"), c.Engine, c.Engine.Validate())...)
	for _, typ := range sortedKeys(c.Exporters) {
		if e := c.Exporters[typ]; e != nil {
			out = append(out, sectionIssues(join(keyOf[Config]("Exporters"), typ), e, e.Validate())...)
		}
	}
	return out
}

// sectionIssues flattens a section's joined validation errors. An error's
// path comes from its FieldPath method (router.FieldError has one) or else
// from the start of its message when that names a key of the section, as
// bus.Config's errors do ("batch_size: must be ..."). An error with neither
// is placed at the section itself.
func sectionIssues(section string, cfg any, err error) []issue {
	var out []issue
	for _, e := range leaves(err) {
		path, msg := errPath(e, reflect.TypeOf(cfg))
		out = append(out, issue{path: join(section, path), msg: msg})
	}
	return out
}

// leaves unwraps errors.Join (and anything with Unwrap() []error) recursively.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

// fieldPather is an error that knows the path, relative to its section, of
// the field at fault.
type fieldPather interface{ FieldPath() string }

func errPath(err error, section reflect.Type) (path, msg string) {
	msg = err.Error()
	var fp fieldPather
	if errors.As(err, &fp) {
		p := fp.FieldPath()
		return p, strings.TrimPrefix(msg, p+": ")
	}
	for section != nil && section.Kind() == reflect.Pointer {
		section = section.Elem()
	}
	head, rest, ok := strings.Cut(msg, ": ")
	if !ok || section == nil || section.Kind() != reflect.Struct {
		return "", msg
	}
	key := head[:strings.IndexAny(head+".[", ".[")]
	for _, f := range fieldsOf(section) {
		if f.name == key && validPath(head) {
			return head, rest
		}
	}
	return "", msg
}

// validPath reports whether s looks like a YAML path: keys of letters,
// digits, _ and -, joined by dots, each optionally followed by [index]es.
func validPath(s string) bool {
	for seg := range strings.SplitSeq(s, ".") {
		key, idx, _ := strings.Cut(seg, "[")
		if key == "" || strings.TrimLeft(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return false
		}
		if idx != "" && strings.Trim(idx, "0123456789[]") != "" {
			return false
		}
	}
	return true
}

// keyOf returns the YAML key of T's field called goName. Messages and paths
// use it so that they cannot drift from the struct tags.
func keyOf[T any](goName string) string {
	sf, ok := reflect.TypeFor[T]().FieldByName(goName)
	if !ok {
		panic("config: no field " + goName) // a typo in this package
	}
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	return name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pathError is a validation error at a YAML path; it has the same
// FieldPath method as router.FieldError.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string     { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error     { return e.err }
func (e *pathError) FieldPath() string { return e.path }

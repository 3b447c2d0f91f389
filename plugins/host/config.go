package host

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/sextant-telemetry/sextant/internal/redact"
)

// The defaults of Config's zero fields.
const (
	DefaultCallTimeout      = 30 * time.Second
	DefaultStartTimeout     = 10 * time.Second
	DefaultCallbackTimeout  = 2 * time.Second
	DefaultInitialBackoff   = time.Second
	DefaultMaxBackoff       = time.Minute
	DefaultFailureThreshold = 5
	DefaultOpenFor          = 30 * time.Second
)

// Config is the plugins section of the configuration: which exporter
// plugins to run and how to keep them healthy. The zero Config runs none.
type Config struct {
	// Dir is a directory of plugin executables. Every regular, executable
	// file in it whose name starts with "sextant-" is launched, without a
	// configuration section, unless an instance names the same file.
	// Empty means no discovery. A relative path is relative to the working
	// directory.
	Dir string `yaml:"dir"`
	// CallTimeout bounds one Export call; a plugin that takes longer is
	// considered hung, its export fails and it is restarted. Zero means 30s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// StartTimeout bounds a plugin's launch, handshake, Describe and
	// Configure. Zero means 10s.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// CallbackTimeout bounds each lifecycle callback (export requested and
	// completed, cache synced). Zero means 2s.
	CallbackTimeout time.Duration `yaml:"callback_timeout"`
	// Restart is how a plugin that exited or hung is brought back.
	Restart RestartConfig `yaml:"restart"`
	// Breaker stops sending exports to a plugin that keeps failing.
	Breaker BreakerConfig `yaml:"breaker"`
	// Instances are the plugins to run, each with its own configuration.
	Instances []InstanceConfig `yaml:"instances"`
}

// RestartConfig is the exponential backoff between restarts of a plugin
// that exited, crashed or hung: InitialBackoff, doubling up to MaxBackoff,
// back to InitialBackoff once the plugin has served an export.
type RestartConfig struct {
	// InitialBackoff is the wait before the first restart. Zero means 1s.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the wait. Zero means 1m.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// BreakerConfig is a plugin's circuit breaker: after FailureThreshold
// failed exports in a row it opens, and exports fail at once without
// reaching the plugin; after OpenFor one trial export is let through, and
// its result closes or reopens the circuit.
type BreakerConfig struct {
	// FailureThreshold is how many consecutive failures open the circuit.
	// Zero means 5.
	FailureThreshold int `yaml:"failure_threshold"`
	// OpenFor is how long the circuit stays open. Zero means 30s.
	OpenFor time.Duration `yaml:"open_for"`
}

// InstanceConfig is one plugin to run: an executable Sextant launches
// (Path), or a plugin already serving the protocol at Address.
type InstanceConfig struct {
	// Name registers the plugin under this name (exports, metrics, logs,
	// health). Empty means the name the plugin describes itself with.
	Name string `yaml:"name"`
	// Path is the plugin executable. Exactly one of Path and Address.
	Path string `yaml:"path"`
	// Address is host:port of a plugin serving the protocol over plain
	// gRPC (an SDK plugin started with --listen). Sextant dials it instead
	// of launching anything; restarts become reconnections.
	Address string `yaml:"address"`
	// Args are extra command-line arguments for Path.
	Args []string `yaml:"args"`
	// Env are extra environment variables for Path, added to Sextant's
	// own environment.
	Env map[string]string `yaml:"env"`
	// SHA256 is the expected checksum of Path as 64 hex digits. When set,
	// a file that does not match is not started.
	SHA256 string `yaml:"sha256"`
	// Config is the plugin's own section, handed to it as JSON by
	// Configure; the plugin validates it.
	Config any `yaml:"config"`
	// CallTimeout overrides the section's call_timeout for this plugin.
	CallTimeout time.Duration `yaml:"call_timeout"`
}

// FieldError is a problem at a path below the plugins section, such as
// instances[1].sha256.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldPath returns the path of the field at fault.
func (e *FieldError) FieldPath() string { return e.Path }

// namePattern is what a plugin name may be: it becomes a format name, a
// metric label and a part of log records.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// envPattern is what POSIX shells accept as a variable name.
var envPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem with the section, each a *FieldError
// whose path is relative to the section. It does no I/O: whether files
// exist and what the plugins think of their sections is checked when they
// start.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"call_timeout", c.CallTimeout}, {"start_timeout", c.StartTimeout}, {"callback_timeout", c.CallbackTimeout},
		{"restart.initial_backoff", c.Restart.InitialBackoff}, {"restart.max_backoff", c.Restart.MaxBackoff},
		{"breaker.open_for", c.Breaker.OpenFor},
	} {
		if d.v < 0 {
			add(d.path, "must not be negative (0 means the default); got %s", d.v)
		}
	}
	if c.Restart.MaxBackoff > 0 && c.withDefaults().Restart.InitialBackoff > c.Restart.MaxBackoff {
		add("restart.max_backoff", "must be at least initial_backoff (%s); got %s", c.withDefaults().Restart.InitialBackoff, c.Restart.MaxBackoff)
	}
	if c.Breaker.FailureThreshold < 0 {
		add("breaker.failure_threshold", "must be at least 1 (0 means %d); got %d", DefaultFailureThreshold, c.Breaker.FailureThreshold)
	}
	names := map[string]int{}
	for i, in := range c.Instances {
		p := "instances[" + strconv.Itoa(i) + "]"
		if in.Name != "" {
			if !namePattern.MatchString(in.Name) {
				add(p+".name", "want lower-case letters, digits, _ and - (at most 63, starting with a letter or digit); got %q", in.Name)
			} else if j, dup := names[in.Name]; dup {
				add(p+".name", "%q is also the name of instances[%d]", in.Name, j)
			} else {
				names[in.Name] = i
			}
		}
		switch {
		case in.Path == "" && in.Address == "":
			add(p, "set path (an executable to launch) or address (host:port of a running plugin)")
		case in.Path != "" && in.Address != "":
			add(p+".address", "set path or address, not both")
		}
		if in.Address != "" {
			if _, port, err := net.SplitHostPort(in.Address); err != nil || port == "" {
				add(p+".address", "want host:port such as 127.0.0.1:7777; got %q", in.Address)
			}
			if len(in.Args) > 0 || len(in.Env) > 0 || in.SHA256 != "" {
				add(p+".address", "args, env and sha256 apply to a launched plugin (path), not to one at an address")
			}
		}
		if in.SHA256 != "" {
			if b, err := hex.DecodeString(in.SHA256); err != nil || len(b) != 32 {
				add(p+".sha256", "want 64 hex digits (sha256sum's output); got %q", in.SHA256)
			}
		}
		for k := range in.Env {
			if !envPattern.MatchString(k) {
				add(p+".env."+k, "not an environment variable name (letters, digits and _, not starting with a digit)")
			}
		}
		if in.CallTimeout < 0 {
			add(p+".call_timeout", "must not be negative (0 means the section's call_timeout); got %s", in.CallTimeout)
		}
		if _, err := SectionJSON(in.Config); err != nil {
			add(p+".config", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.CallTimeout, DefaultCallTimeout)
	def(&c.StartTimeout, DefaultStartTimeout)
	def(&c.CallbackTimeout, DefaultCallbackTimeout)
	def(&c.Restart.InitialBackoff, DefaultInitialBackoff)
	def(&c.Restart.MaxBackoff, max(DefaultMaxBackoff, c.Restart.InitialBackoff))
	def(&c.Breaker.OpenFor, DefaultOpenFor)
	if c.Breaker.FailureThreshold == 0 {
		c.Breaker.FailureThreshold = DefaultFailureThreshold
	}
	return c
}

// Enabled reports whether the section runs any plugin.
func (c Config) Enabled() bool { return c.Dir != "" || len(c.Instances) > 0 }

// SectionJSON encodes a plugin's configuration section as the JSON object
// Configure receives: "{}" for none. YAML mappings must have string keys,
// and the section must be a mapping.
func SectionJSON(section any) ([]byte, error) {
	if section == nil {
		return []byte("{}"), nil
	}
	m, ok := section.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping (the plugin's own keys), got %s", kindOf(section))
	}
	if m == nil {
		return []byte("{}"), nil
	}
	if err := checkJSONable(section, ""); err != nil {
		return nil, err
	}
	return json.Marshal(section)
}

// checkJSONable finds what JSON cannot hold: mappings with keys that are
// not strings, and non-finite numbers.
func checkJSONable(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if err := checkJSONable(e, joinPath(path, k)); err != nil {
				return err
			}
		}
	case map[any]any:
		return fmt.Errorf("%skeys must be strings", at(path))
	case []any:
		for i, e := range v {
			if err := checkJSONable(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s%v cannot be passed as JSON", at(path), v)
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// Redacted returns a copy of c fit to print (`sextant config print`): the
// values of environment variables and of configuration keys whose names
// contain one of the fragments (see redact.NewKeys; nil means its
// defaults) become [REDACTED], and so do URL credentials anywhere in the
// plugins' arguments and sections. c is not modified.
func (c Config) Redacted(fragments []string) Config {
	out := c
	if c.Instances == nil {
		return out
	}
	keys := redact.NewKeys(fragments)
	out.Instances = make([]InstanceConfig, len(c.Instances))
	for i, in := range c.Instances {
		if in.Env != nil {
			env := make(map[string]string, len(in.Env))
			for k, v := range in.Env {
				if keys.Sensitive(k) {
					v = redact.Mask
				}
				env[k] = redact.Text(v)
			}
			in.Env = env
		}
		in.Args = slices.Clone(in.Args)
		for j, a := range in.Args {
			in.Args[j] = redact.Text(a)
		}
		in.Config = redactValue(in.Config, keys)
		out.Instances[i] = in
	}
	return out
}

func redactValue(v any, keys redact.Keys) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			if keys.Sensitive(k) {
				m[k] = redact.Mask
			} else {
				m[k] = redactValue(e, keys)
			}
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = redactValue(e, keys)
		}
		return l
	case string:
		return redact.Text(v)
	}
	return v
}

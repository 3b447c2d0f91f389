package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// level is an enum with UnmarshalText, as the house style writes them.
type level string

func (l *level) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "low", "high":
		*l = level(s)
		return nil
	default:
		return fmt.Errorf("want low or high, got %q", s)
	}
}

// raw records the JSON it was given.
type raw struct{ got string }

func (r *raw) UnmarshalJSON(b []byte) error {
	if string(b) == `"bad"` {
		return errors.New("bad raw")
	}
	r.got = string(b)
	return nil
}

type Common struct {
	Shared string `json:"shared"`
}

type inner struct {
	Enabled bool  `json:"enabled"`
	Limit   uint8 `json:"limit"`
}

type testConfig struct {
	Common
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Tags    []string          `json:"tags"`
	Timeout time.Duration     `json:"timeout"`
	Wait    Duration          `json:"wait"`
	Retries int               `json:"retries"`
	Small   int8              `json:"small"`
	Big     uint64            `json:"big"`
	Ratio   float64           `json:"ratio"`
	Pretty  bool              `json:"pretty"`
	Level   level             `json:"level"`
	Raw     raw               `json:"raw"`
	Inner   inner             `json:"inner"`
	Ptr     *inner            `json:"ptr"`
	Any     any               `json:"any"`
	Pair    [2]int            `json:"pair"`
	Items   []inner           `json:"items"`
	Skipped string            `json:"-"`
	NoTag   string
	//lint:ignore U1000 present so that Decode is seen to skip unexported fields
	unexposed string
}

func TestConfigDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    func(c *testConfig)
		wantErr FieldErrors
	}{
		{
			name: "empty section keeps the defaults",
			json: ``,
			want: func(*testConfig) {},
		},
		{
			name: "every kind of field",
			json: `{"shared":"s","url":"http://x","headers":{"X-Token":"t","a b":"c"},"tags":["a","b"],
				"timeout":"1m30s","wait":"1ms","retries":3.0,"small":-128,"big":18446744073709551615,"ratio":1e-3,
				"pretty":true,"level":"high","raw":{"k":[1,2]},"inner":{"limit":255},"ptr":{"enabled":true},
				"any":{"n":1.5,"s":["x"]},"pair":[1,2],"items":[{"limit":1},{"enabled":true}],"notag":"case-folded"}`,
			want: func(c *testConfig) {
				c.Shared = "s"
				c.URL = "http://x"
				c.Headers = map[string]string{"X-Token": "t", "a b": "c"}
				c.Tags = []string{"a", "b"}
				c.Timeout = 90 * time.Second
				c.Wait = Duration(time.Millisecond)
				c.Retries = 3
				c.Small = -128
				c.Big = math.MaxUint64
				c.Ratio = 0.001
				c.Pretty = true
				c.Level = "high"
				c.Raw = raw{got: `{"k":[1,2]}`}
				c.Inner = inner{Enabled: true, Limit: 255} // Enabled was the default
				c.Ptr = &inner{Enabled: true, Limit: 7}    // into the default, as encoding/json does
				c.Any = map[string]any{"n": 1.5, "s": []any{"x"}}
				c.Pair = [2]int{1, 2}
				c.Items = []inner{{Limit: 1}, {Enabled: true}}
				c.NoTag = "case-folded"
			},
		},
		{
			name: "null clears maps and leaves scalars",
			json: `{"headers":null,"url":null,"ptr":null}`,
			want: func(c *testConfig) { c.Headers = nil; c.Ptr = nil },
		},
		{
			name: "a map replaces the default",
			json: `{"headers":{"b":"2"}}`,
			want: func(c *testConfig) { c.Headers = map[string]string{"b": "2"} },
		},
		{
			name: "every problem with its path",
			json: `{"url":5,"headers":{"X-Token":true,"a.b":1},"tags":["a",2,null],"timeout":5,
				"retries":1.5,"small":128,"big":-1,"ratio":"x","pretty":"yes","level":"mid","raw":"bad",
				"inner":{"limit":256,"extra":1},"ptr":{"enabled":1},"pair":[1],"items":[{"limit":-1}],
				"unknown":{"x":1},"Skipped":"x","unexposed":"x"}`,
			wantErr: FieldErrors{
				{Path: "Skipped", Message: "unknown field (known: NoTag, any, big, headers, inner, items, level, pair, pretty, ptr, ratio, raw, retries, shared, small, tags, timeout, url, wait)"},
				{Path: "big", Message: "must be between 0 and 18446744073709551615, got -1"},
				{Path: "headers.X-Token", Message: "must be a string, got boolean true"},
				{Path: `headers["a.b"]`, Message: "must be a string, got number 1"},
				{Path: "inner.extra", Message: "unknown field (known: enabled, limit)"},
				{Path: "inner.limit", Message: "must be between 0 and 255, got 256"},
				{Path: "items[0].limit", Message: "must be between 0 and 255, got -1"},
				{Path: "level", Message: `want low or high, got "mid"`},
				{Path: "pair", Message: "must be a list of 2, got 1"},
				{Path: "pretty", Message: `must be true or false, got string "yes"`},
				{Path: "ptr.enabled", Message: "must be true or false, got number 1"},
				{Path: "ratio", Message: `must be a number, got string "x"`},
				{Path: "raw", Message: "bad raw"},
				{Path: "retries", Message: "must be an integer, got 1.5"},
				{Path: "small", Message: "must be between -128 and 127, got 128"},
				{Path: "tags[1]", Message: "must be a string, got number 2"},
				{Path: "timeout", Message: `must be a duration such as "5s" or "1m30s", got number 5`},
				{Path: "unexposed", Message: "unknown field (known: NoTag, any, big, headers, inner, items, level, pair, pretty, ptr, ratio, raw, retries, shared, small, tags, timeout, url, wait)"},
				{Path: "unknown", Message: "unknown field (known: NoTag, any, big, headers, inner, items, level, pair, pretty, ptr, ratio, raw, retries, shared, small, tags, timeout, url, wait)"},
				{Path: "url", Message: "must be a string, got number 5"},
			},
		},
		{
			name: "bad duration text",
			json: `{"timeout":"5 minutes","wait":"soon"}`,
			wantErr: FieldErrors{
				{Path: "timeout", Message: `must be a duration such as "5s" or "1m30s", got "5 minutes"`},
				{Path: "wait", Message: `must be a duration such as "5s" or "1m30s", got "soon"`},
			},
		},
		{
			name:    "integer out of every range",
			json:    `{"retries":1e400,"big":1e20}`,
			wantErr: FieldErrors{{Path: "big", Message: "must be between 0 and 18446744073709551615, got 1e20"}, {Path: "retries", Message: "must be between -9223372036854775808 and 9223372036854775807, got 1e400"}},
		},
		{
			name:    "not an object",
			json:    `[1,2]`,
			wantErr: FieldErrors{{Message: "must be a mapping (a JSON object), got a list"}},
		},
		{
			name:    "not JSON",
			json:    `{"url":`,
			wantErr: FieldErrors{{Message: "not valid JSON: unexpected EOF"}},
		},
		{
			name:    "two values",
			json:    `{} {}`,
			wantErr: FieldErrors{{Message: "not valid JSON: more than one value"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defaults := func() testConfig {
				return testConfig{URL: "default", Retries: 2, Headers: map[string]string{"a": "1"}, Inner: inner{Enabled: true}, Ptr: &inner{Limit: 7}}
			}
			got := defaults()
			err := NewConfig([]byte(tt.json)).Decode(&got)
			if tt.wantErr != nil {
				var fes FieldErrors
				require.ErrorAs(t, err, &fes)
				require.Equal(t, tt.wantErr, fes)
				return
			}
			require.NoError(t, err)
			want := defaults()
			tt.want(&want)
			require.Equal(t, want, got)
		})
	}
}

func TestConfigDecodeNeedsPointer(t *testing.T) {
	t.Parallel()
	var c testConfig
	err := NewConfig(nil).Decode(c)
	require.EqualError(t, err, "sdk: Config.Decode needs a non-nil pointer, got sdk.testConfig")
	var fes FieldErrors
	require.False(t, errors.As(err, &fes))
	require.Error(t, NewConfig(nil).Decode((*testConfig)(nil)))
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	require.Equal(t, "{}", string(Config{}.JSON()))
	require.Equal(t, "{}", string(NewConfig([]byte(" \n")).JSON()))
	in := []byte(`{"a":1}`)
	c := NewConfig(in)
	in[2] = 'b' // NewConfig copies
	require.Equal(t, `{"a":1}`, string(c.JSON()))
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"2m5s"`), &d))
	require.Equal(t, Duration(125*time.Second), d)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.Equal(t, `"2m5s"`, string(b))
	require.Equal(t, "2m5s", d.String())
	require.EqualError(t, json.Unmarshal([]byte(`"x"`), &d), `must be a duration such as "5s" or "1m30s", got "x"`)
}

func TestPaths(t *testing.T) {
	t.Parallel()
	tests := []struct{ parent, key, want string }{
		{"", "url", "url"},
		{"headers", "X-Token", "headers.X-Token"},
		{"headers", "a b", `headers["a b"]`},
		{"headers", "", `headers[""]`},
		{"", "a.b", `["a.b"]`},
		{"x", `q"`, `x["q\""]`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, KeyPath(tt.parent, tt.key), "%q %q", tt.parent, tt.key)
	}
	require.Equal(t, "tags[2]", IndexPath("tags", 2))
}

func TestFieldErrorsError(t *testing.T) {
	t.Parallel()
	err := error(FieldErrors{{Path: "url", Message: "required"}, {Message: "section is odd"}})
	require.EqualError(t, err, "url: required; section is odd")
}

// pathPattern is the grammar of a path: a plain key or a quoted one, then
// .key, ["key"] and [index] steps.
var pathPattern = regexp.MustCompile(`^(?:[A-Za-z0-9_-]+|\["(?:[^"\\]|\\.)*"\])(?:\.[A-Za-z0-9_-]+|\["(?:[^"\\]|\\.)*"\]|\[[0-9]+\])*$`)

func FuzzConfigDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"url":"x","headers":{"a":"b"},"tags":["x"]}`, `{"inner":{"limit":300}}`,
		`{"items":[{"limit":1},{"x":2}]}`, `{"headers":{"a.b\"c":1}}`, `{"timeout":"3s","level":"low"}`,
		`[]`, `null`, `{"any":[{"x":null}]}`, `{"pair":[1,2,3]}`, `{"big":1.5e19,"small":-1e2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c testConfig
		err := NewConfig(b).Decode(&c)
		if err == nil {
			return
		}
		var fes FieldErrors
		if !errors.As(err, &fes) {
			t.Fatalf("Decode returned %T, want FieldErrors: %v", err, err)
		}
		if len(fes) == 0 {
			t.Fatal("Decode returned an empty FieldErrors")
		}
		for _, fe := range fes {
			if fe.Message == "" {
				t.Fatalf("empty message at %q", fe.Path)
			}
			if fe.Path != "" && !pathPattern.MatchString(fe.Path) {
				t.Fatalf("malformed path %q", fe.Path)
			}
			// A quoted key reads back.
			for _, q := range regexp.MustCompile(`\["(?:[^"\\]|\\.)*"\]`).FindAllString(fe.Path, -1) {
				if _, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(q, "["), "]")); err != nil {
					t.Fatalf("path %q: quoted key %s: %v", fe.Path, q, err)
				}
			}
		}
		// Errors exist only for input that encoding/json also finds wrong
		// somewhere or that is not an object; valid JSON objects with only
		// known string fields decode.
		if json.Valid(b) && len(fes) == 1 && fes[0].Path == "" && strings.HasPrefix(fes[0].Message, "not valid JSON") {
			t.Fatalf("valid JSON reported invalid: %v", fes)
		}
	})
}

func ExampleConfig_Decode() {
	type config struct {
		URL     string            `json:"url"`
		Timeout time.Duration     `json:"timeout"`
		Headers map[string]string `json:"headers"`
		Tags    []string          `json:"tags"`
	}
	cfg := config{Timeout: 10 * time.Second} // defaults first
	section := NewConfig([]byte(`{"url":"http://127.0.0.1:9000","timeout":"3s","headers":{"X-Token":1},"tags":["a",2],"retry":true}`))
	err := section.Decode(&cfg)
	var fes FieldErrors
	if errors.As(err, &fes) {
		for _, fe := range fes {
			fmt.Println(fe)
		}
	}
	fmt.Println(cfg.URL, cfg.Timeout)
	// Output:
	// headers.X-Token: must be a string, got number 1
	// retry: unknown field (known: headers, tags, timeout, url)
	// tags[1]: must be a string, got number 2
	// http://127.0.0.1:9000 3s
}

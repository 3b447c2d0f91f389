package host

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseHCLogLine feeds arbitrary plugin output to the JSON log line
// parser: it must never panic (go-plugin's own parser does, on a
// non-string "@message"), and must accept only JSON objects with a string
// "@message".
func FuzzParseHCLogLine(f *testing.F) {
	for _, s := range []string{
		`{"@level":"info","@message":"hello","@timestamp":"2025-03-01T12:00:00.000000Z","k":1}`,
		`{"@message":1}`,
		`{"@message":"m","@level":7,"@timestamp":false,"plugin":null}`,
		`{"@message":"m"} trailing`,
		`panic: boom`,
		`{`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, ok := parseHCLogLine(line)
		if !ok {
			return
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("accepted a non-object %q: %v", line, err)
		}
		if msg, isString := obj["@message"].(string); !isString || msg != r.Message {
			t.Fatalf("message %q, want @message of %q", r.Message, line)
		}
	})
}

// FuzzLineWriter checks that how output is cut into writes does not
// change the lines it makes.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nc"), uint8(1))
	f.Add([]byte("{\"@message\":\"x\"}\npanic: y\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		lines := func(chunk int) []string {
			var out []string
			w := newLineWriter(func(b []byte) {
				if bytes.IndexByte(b, '\n') >= 0 {
					t.Fatalf("line %q holds a newline", b)
				}
				out = append(out, string(b))
			})
			for rest := data; len(rest) > 0; {
				n := min(chunk, len(rest))
				_, _ = w.Write(rest[:n])
				rest = rest[n:]
			}
			w.Flush()
			return out
		}
		whole := lines(len(data) + 1)
		pieces := lines(int(cut)%16 + 1)
		if len(whole) != len(pieces) {
			t.Fatalf("%d lines whole, %d in pieces", len(whole), len(pieces))
		}
		for i := range whole {
			if whole[i] != pieces[i] {
				t.Fatalf("line %d: %q whole, %q in pieces", i, whole[i], pieces[i])
			}
		}
	})
}

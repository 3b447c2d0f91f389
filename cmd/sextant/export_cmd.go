package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tokenEnv is the environment variable sextant export takes the bearer
// token from when --token-file is not given.
const tokenEnv = "SEXTANT_TOKEN"

// stringsFlag is a flag that may be given more than once.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ", ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// exportCmd is `sextant export --format F [--url URL] [--out FILE]
// [--match GLOB ...] [--label MATCHER ...] [--pretty] [--token-file FILE]
// [--timeout D]`: it asks a running instance for one export (GET /export)
// and writes it to FILE, atomically, or to stdout. It does not retry.
func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	format := fs.String("format", "", "export `FORMAT`: prometheus, openmetrics, json, csv or any the server has (required)")
	base := fs.String("url", defaultPublishURL, "base `URL` of the sextant service")
	out := fs.String("out", "", "write the export to `FILE` (atomically: a temporary file, then rename); default stdout")
	var match, labels stringsFlag
	fs.Var(&match, "match", "keep the metric families whose Prometheus name matches `GLOB` (repeatable; any may match)")
	fs.Var(&labels, "label", "keep the series for which `MATCHER` holds, e.g. namespace=\"billing\", result!=error or step_name=~\"linear_.*\" (repeatable; all must hold)")
	pretty := fs.Bool("pretty", false, "ask for indented output (json)")
	tokenFile := fs.String("token-file", "", "read the bearer token from `FILE` (default: $"+tokenEnv+")")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after `D`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sextant export --format FORMAT [--url URL] [--out FILE] [--match GLOB ...] [--label MATCHER ...]\n"+
			"                      [--pretty] [--token-file FILE] [--timeout D]\n\n"+
			"Asks a running instance for one snapshot of its metrics (GET /export) and\n"+
			"writes it to FILE or stdout.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *format == "" {
		return usageError{errors.New("export: --format FORMAT is required")}
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("--timeout: want a positive duration, got %s", *timeout)}
	}
	endpoint, err := exportEndpoint(*base, *format, match, labels, *pretty)
	if err != nil {
		return usageError{err}
	}
	token, err := exportToken(*tokenFile, os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := getExport(ctx, endpoint, token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *out == "" {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fmt.Errorf("reading the export: %w", err)
		}
		return nil
	}
	n, err := writeFileAtomic(*out, resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d bytes (%s, export %s) to %s\n", n, *format, resp.Header.Get("X-Sextant-Export-Id"), *out)
	return nil
}

// exportEndpoint returns base's GET /export URL with the query.
func exportEndpoint(base, format string, match, labels []string, pretty bool) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url: want http://HOST:PORT or https://HOST:PORT, got %q", base)
	}
	q := url.Values{"format": {format}}
	for _, m := range match {
		q.Add("match", m)
	}
	for _, l := range labels {
		q.Add("label", l)
	}
	if pretty {
		q.Set("pretty", "true")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/export"
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// exportToken reads the bearer token from file, or else from $SEXTANT_TOKEN;
// "" means none. White space around it (a trailing newline) is ignored.
func exportToken(file string, getenv func(string) string) (string, error) {
	if file == "" {
		return strings.TrimSpace(getenv(tokenEnv)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--token-file: %s holds no token", file)
	}
	return token, nil
}

// getExport asks for the export and returns the response of a 2xx answer;
// any other answer is an error carrying the server's message.
func getExport(ctx context.Context, endpoint, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err // names the method and URL
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var reply exportReply
	if json.Unmarshal(body, &reply) != nil || reply.Error == "" { // not sextant's answer, e.g. a proxy's or auth's
		return nil, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	msg := fmt.Sprintf("server answered %s: %s", resp.Status, reply.Error)
	if len(reply.Formats) > 0 && !strings.Contains(reply.Error, "known formats are") {
		msg += fmt.Sprintf(" (formats: %s)", strings.Join(reply.Formats, ", "))
	}
	return nil, errors.New(msg)
}

// writeFileAtomic writes r to path through a temporary file in the same
// directory, synced and then renamed over path, so that a reader of path
// sees the old content or the new, never a part. On failure path is left
// as it was and the temporary file removed. A new file gets mode 0644; a
// replaced one keeps its mode.
func writeFileAtomic(path string, r io.Reader) (int64, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("--out: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, r)
	if err != nil {
		return n, fmt.Errorf("reading the export: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil { // make the rename itself durable; best effort
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}

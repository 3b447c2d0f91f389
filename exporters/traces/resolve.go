package traces

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
)

// Environment variables read by this package. The OTLP exporter reads the
// OTEL_EXPORTER_OTLP_* ones too; where both do, this package passes its
// result to the exporter explicitly, so the two cannot disagree.
const (
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envOTLP           = "OTEL_EXPORTER_OTLP_"
	envOTLPTraces     = "OTEL_EXPORTER_OTLP_TRACES_"
)

// Default OTLP endpoints, as the exporters have them.
const (
	defaultGRPCEndpoint = "localhost:4317"
	defaultHTTPEndpoint = "localhost:4318"
	defaultHTTPPath     = "/v1/traces"
)

// getenvFunc is os.Getenv; tests pass a map's lookup.
type getenvFunc func(string) string

// lookup returns the first variable of names that is set to something
// other than blanks, and its trimmed value.
func (get getenvFunc) lookup(names ...string) (name, value string) {
	for _, n := range names {
		if v := strings.TrimSpace(get(n)); v != "" {
			return n, v
		}
	}
	return "", ""
}

// otlp looks up OTEL_EXPORTER_OTLP_TRACES_<suffix>, then
// OTEL_EXPORTER_OTLP_<suffix>.
func (get getenvFunc) otlp(suffix string) (name, value string) {
	return get.lookup(envOTLPTraces+suffix, envOTLP+suffix)
}

// resolveExporter applies OTEL_TRACES_EXPORTER when the configuration left
// the exporter empty.
func resolveExporter(t ExporterType, get getenvFunc) (ExporterType, error) {
	if t != "" {
		return t, nil
	}
	_, v := get.lookup(envTracesExporter)
	switch strings.ToLower(v) {
	case "", "none":
		return ExporterTypeNone, nil
	case "otlp":
		return ExporterTypeOTLP, nil
	case "console":
		return ExporterTypeStdout, nil
	}
	return "", fmt.Errorf("%s=%q is not supported (traces.exporter is empty, so the environment chooses): allowed values are otlp, console, none",
		envTracesExporter, v)
}

// otlpPlan is everything New needs to build the OTLP exporter, resolved
// from the configuration and the environment.
type otlpPlan struct {
	protocol Protocol
	// target is the gRPC dial target, or the HTTP host[:port].
	target string
	// urlPath is the HTTP request path.
	urlPath  string
	insecure bool
	// Where to read TLS material from (when !insecure): a file name and
	// the configuration key or variable that named it.
	ca, cert, key source
	headers       map[string]string // nil: leave them to the exporter
}

// source is a value and where it came from, for error messages.
type source struct{ value, from string }

// description is the human form of the plan, for the start-up log line.
func (p otlpPlan) description() string {
	if p.protocol == ProtocolHTTPProtobuf {
		return "otlp " + string(p.protocol) + " " + p.url()
	}
	security := "tls"
	if p.insecure {
		security = "insecure"
	}
	return fmt.Sprintf("otlp %s %s (%s)", p.protocol, p.target, security)
}

// url is the HTTP endpoint URL.
func (p otlpPlan) url() string {
	scheme := "https"
	if p.insecure {
		scheme = "http"
	}
	return (&url.URL{Scheme: scheme, Host: p.target, Path: p.urlPath}).String()
}

// resolveOTLP applies the precedence configuration > environment >
// defaults to every connection setting. It reads no files.
func resolveOTLP(o OTLPConfig, get getenvFunc) (otlpPlan, error) {
	var p otlpPlan
	p.protocol = o.Protocol
	if p.protocol == "" {
		p.protocol = ProtocolGRPC
		if name, v := get.otlp("PROTOCOL"); v != "" {
			switch Protocol(v) {
			case ProtocolGRPC, ProtocolHTTPProtobuf:
				p.protocol = Protocol(v)
			default:
				return otlpPlan{}, fmt.Errorf("%s=%q is not supported (traces.otlp.protocol is empty, so the environment chooses): allowed values are %s",
					name, v, joinQuoted(protocols()))
			}
		}
	}
	http := p.protocol == ProtocolHTTPProtobuf

	// scheme is the endpoint's explicit scheme, lower case, if it has one:
	// it decides security unless something earlier in the rules does.
	var scheme string
	fromConfig := o.Endpoint != ""
	switch {
	case fromConfig:
		ep, err := parseEndpoint(o.Endpoint)
		if err != nil {
			return otlpPlan{}, fmt.Errorf("%s: %w", yamlPath("OTLP.Endpoint"), err)
		}
		scheme, p.target, p.urlPath = ep.scheme, ep.host, ep.path
		if p.urlPath == "" || p.urlPath == "/" {
			p.urlPath = defaultHTTPPath
		}
	default:
		scheme = p.envEndpoint(get, http)
	}
	if p.target == "" {
		p.target = defaultGRPCEndpoint
		if http {
			p.target = defaultHTTPEndpoint
		}
		p.urlPath = defaultHTTPPath
	}

	p.ca = pick(o.TLS.CAFile, "OTLP.TLS.CAFile", get, "CERTIFICATE")
	p.cert = pick(o.TLS.CertFile, "OTLP.TLS.CertFile", get, "CLIENT_CERTIFICATE")
	p.key = pick(o.TLS.KeyFile, "OTLP.TLS.KeyFile", get, "CLIENT_KEY")
	p.insecure = p.decideInsecure(o, scheme, fromConfig, get)
	if !p.insecure && (p.cert.value == "") != (p.key.value == "") {
		have, missing := p.cert, "client key"
		if have.value == "" {
			have, missing = p.key, "client certificate"
		}
		return otlpPlan{}, fmt.Errorf("%s names %q but no %s is set", have.from, have.value, missing)
	}

	if len(o.Headers) > 0 {
		p.headers = map[string]string{}
		if _, v := get.otlp("HEADERS"); v != "" {
			for k, v := range parseHeaders(v) {
				p.headers[k] = v
			}
		}
		for k, v := range o.Headers {
			for ek := range p.headers {
				if strings.EqualFold(ek, k) {
					delete(p.headers, ek)
				}
			}
			p.headers[k] = v
		}
	}
	return p, nil
}

// envEndpoint reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT with the exporters' rules: for HTTP the
// signal variable's path is used as is (/ when empty) and the generic
// variable's path gets /v1/traces appended; gRPC ignores paths. It returns
// the URL's scheme, or "" when the value has none.
func (p *otlpPlan) envEndpoint(get getenvFunc, http bool) (scheme string) {
	name, v := get.otlp("ENDPOINT")
	if v == "" {
		return ""
	}
	signal := name == envOTLPTraces+"ENDPOINT"
	u, err := url.Parse(v)
	if err != nil || !strings.Contains(v, "://") {
		// host:port, which url.Parse misreads: use it as it is.
		p.target, p.urlPath = v, defaultHTTPPath
		return ""
	}
	scheme = strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		// unix:///path, dns:///host:port and the like: a gRPC target.
		p.target, p.urlPath = v, defaultHTTPPath
		if http {
			p.target = u.Host
		}
	case signal:
		p.target, p.urlPath = u.Host, u.Path
		if p.urlPath == "" {
			p.urlPath = "/"
		}
	default:
		p.target, p.urlPath = u.Host, path.Join("/", u.Path, defaultHTTPPath)
	}
	return scheme
}

// decideInsecure applies the rules documented on OTLPConfig.Insecure.
func (p *otlpPlan) decideInsecure(o OTLPConfig, scheme string, fromConfig bool, get getenvFunc) bool {
	if o.Insecure != nil {
		return *o.Insecure
	}
	if o.TLS.any() {
		return false
	}
	if fromConfig && scheme != "" {
		return scheme == "http"
	}
	if _, v := get.otlp("INSECURE"); v != "" {
		return strings.EqualFold(v, "true")
	}
	switch scheme {
	case "http", "unix":
		return true
	case "":
	default:
		return false
	}
	if p.ca.value != "" || p.cert.value != "" {
		return false
	}
	return isLoopback(p.target)
}

// pick returns the configured value, else the environment's.
func pick(configured, field string, get getenvFunc, suffix string) source {
	if configured != "" {
		return source{value: configured, from: yamlPath(field)}
	}
	name, v := get.otlp(suffix)
	return source{value: v, from: name}
}

// isLoopback reports whether target's host is localhost or a loopback IP.
func isLoopback(target string) bool {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = strings.Trim(target, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseHeaders reads the W3C-baggage-like list of OTEL_EXPORTER_OTLP_HEADERS
// as the exporter does: comma-separated name=value pairs, values
// percent-decoded, malformed pairs skipped (the exporter reports those).
func parseHeaders(s string) map[string]string {
	h := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || !isToken(k) {
			continue
		}
		v, err := url.PathUnescape(v)
		if err != nil {
			continue
		}
		h[k] = strings.TrimSpace(v)
	}
	return h
}

// tlsConfig reads the plan's PEM files. It returns nil, nil for a
// plaintext plan.
func (p otlpPlan) tlsConfig() (*tls.Config, error) {
	if p.insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.ca.value != "" {
		pem, err := os.ReadFile(p.ca.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.ca.from, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", p.ca.from, p.ca.value)
		}
		cfg.RootCAs = pool
	}
	if p.cert.value != "" {
		pair, err := tls.LoadX509KeyPair(p.cert.value, p.key.value)
		if err != nil {
			return nil, fmt.Errorf("%s and %s: %w", p.cert.from, p.key.from, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

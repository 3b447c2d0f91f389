// Package traces owns the span export pipeline: the "traces:" configuration
// section, a bounded batching span processor ([Pipeline]) that counts every
// span it drops, and the exporters it feeds: OTLP over gRPC or HTTP, and
// JSON lines (schema sextant.span/v1) to standard output or a file.
//
// The router makes spans with an sdktrace.TracerProvider and registers the
// Pipeline on it as a span processor. The pipeline is its own processor
// rather than sdktrace's batch processor because that one does not tell how
// many spans it dropped, and we count each one, by reason (queue_full,
// export_failed, shutdown), in Stats and in the self-metrics.
//
// # Precedence
//
// Highest first: the --traces flag ([Config.ApplyFlag]), the configuration
// file's "traces:" section, the OTEL_* environment variables, the defaults.
// The environment is read only by [New] and only for what the section leaves
// empty: OTEL_TRACES_EXPORTER (otlp, console or none; unset means none),
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, _ENDPOINT, _INSECURE, _HEADERS
// (merged under the section's headers), _CERTIFICATE, _CLIENT_CERTIFICATE,
// _CLIENT_KEY, _TIMEOUT and _COMPRESSION, the TRACES_ variable before the
// generic one. The OTLP protocol defaults to grpc, not the specification's
// http/protobuf, because the seeds send to localhost:4317; plaintext is the
// default only for http:// and loopback endpoints (see
// [OTLPConfig.Insecure]).
//
// # Dependencies
//
// It imports the exporters contract, the OpenTelemetry SDK and OTLP
// exporters, and gRPC. It must not import config, router, plugins, another
// exporter, or a YAML decoder: the config loader decodes the section into
// [DefaultConfig]'s result, whose enum fields implement
// encoding.TextUnmarshaler.
//
// # Concurrency
//
// Every method of [*Pipeline] and [*JSONExporter] is safe for concurrent
// use. An enabled Pipeline runs one goroutine, started by New and ended by
// Shutdown, which makes every call to the exporter; OnEnd never blocks.
package traces

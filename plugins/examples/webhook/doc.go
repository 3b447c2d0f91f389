// Command sextant-webhook is a Sextant exporter plugin that POSTs every
// export (format "webhook") to a URL as sextant.metrics/v1 JSON, the
// document the built-in JSON exporter writes, byte for byte, with
// configured headers and retries. README.md documents its configuration.
//
// It is built on plugins/sdk and imports the exporters contract, the
// built-in JSON encoder (exporters/json), the SDK and the standard library.
// Export may run concurrently; Configure never runs alongside it (the SDK
// sees to that).
package main

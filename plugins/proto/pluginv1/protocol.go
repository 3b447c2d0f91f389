// Package pluginv1 is the generated code of sextant.plugin.v1, the protocol
// between Sextant and its exporter plugins (plugins/proto/sextant/plugin/v1/
// exporter.proto), and the handshake constants both sides share. Plugin
// authors in Go use plugins/sdk rather than this package directly.
package pluginv1

// The go-plugin handshake. Sextant launches a plugin with the environment
// variable MagicCookieKey=MagicCookieValue and PLUGIN_PROTOCOL_VERSIONS
// listing the versions it speaks; the plugin answers on its first stdout
// line with "1|<ProtocolVersion>|unix|<socket>|grpc".
const (
	// ProtocolVersion is the application protocol version of this package.
	// It changes only with a breaking change to the protocol, which then
	// lives in sextant.plugin.v2.
	ProtocolVersion = 1
	// MagicCookieKey and MagicCookieValue tell a plugin it was launched by
	// Sextant, not run by hand.
	MagicCookieKey   = "SEXTANT_PLUGIN"
	MagicCookieValue = "exporter"
	// PluginName is the name the exporter service is dispensed under in
	// go-plugin's plugin map.
	PluginName = "exporter"
	// MaxMessageBytes bounds one gRPC message either way: a snapshot of a
	// million series fits. gRPC's default, 4 MiB, does not hold 50,000.
	MaxMessageBytes = 512 << 20
)

// Command sextant-influx is a Sextant exporter plugin that writes metrics
// snapshots as InfluxDB line protocol (format "influx"): as the export's
// data, to a file replaced atomically, and to an InfluxDB v2 write
// endpoint, as its configuration says. README.md documents the layout of
// the lines and every configuration key.
//
// It is built on plugins/sdk and imports the exporters contract, the SDK
// and the standard library only. Export may run concurrently; Configure
// never runs alongside it (the SDK sees to that).
package main

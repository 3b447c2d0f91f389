// Package config owns loading and checking Sextant's configuration file:
// it reads the file, decodes it strictly over the embedded default
// (default.yaml), and validates the whole tree, reporting every problem as
// FILE:LINE:COL: PATH: message.
//
// It is the only package that imports the YAML library. It imports the
// section types (events/bus, router) and the exporters contract, and decodes
// each exporter section into its Factory's NewDefaultConfig, so it never
// imports a built-in exporter (exporters/prometheus, ...), plugins or cmd.
//
// It starts no goroutines, keeps no mutable package-level state and does no
// I/O besides Load reading the file it is given; every function is safe for
// concurrent use, and each call returns a Config of its own.
package config

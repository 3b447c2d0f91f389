package main

import "github.com/sextant-telemetry/sextant/plugins/sdk"

func main() { sdk.Serve(newExporter()) }

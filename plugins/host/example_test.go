package host_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sextant-telemetry/sextant/exporters"
	"github.com/sextant-telemetry/sextant/plugins/host"
)

// ExampleNew runs a plugins section: every plugin is launched at Start,
// registered in the registry under its formats, and stopped by Shutdown.
func ExampleNew() {
	registry := exporters.NewRegistry(exporters.RegistrySettings{})
	h, err := host.New(host.Config{
		CallTimeout: 10 * time.Second,
		Restart:     host.RestartConfig{InitialBackoff: time.Second, MaxBackoff: time.Minute},
		// Instances: []host.InstanceConfig{{Path: "/usr/lib/sextant/sextant-influx", Config: map[string]any{"url": "..."}}},
	}, host.Settings{Registry: registry, HostVersion: "1.0.0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		fmt.Println(err) // the user's configuration errors
		return
	}
	defer h.Shutdown(ctx)
	healthy, _ := h.Health()
	fmt.Println("plugins:", len(h.Status()), "healthy:", healthy)
	// Output: plugins: 0 healthy: true
}

// ExampleNew_invalid shows New's errors: each names the field at fault,
// relative to the plugins section.
func ExampleNew_invalid() {
	_, err := host.New(host.Config{Instances: []host.InstanceConfig{
		{Name: "Influx", Path: "/opt/sextant-influx"},
		{Address: "localhost"},
	}}, host.Settings{})
	var fe *host.FieldError
	fmt.Println(errors.As(err, &fe), fe.FieldPath())
	fmt.Println(err)
	// Output:
	// true instances[0].name
	// instances[0].name: want lower-case letters, digits, _ and - (at most 63, starting with a letter or digit); got "Influx"
	// instances[1].address: want host:port such as 127.0.0.1:7777; got "localhost"
}

package catalogdoc_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/sextant-telemetry/sextant/events"
	"github.com/sextant-telemetry/sextant/events/internal/catalogdoc"
)

func ExampleRender() {
	var b bytes.Buffer
	if err := catalogdoc.Render(&b, events.Catalog()); err != nil {
		panic(err)
	}
	lines := strings.Split(b.String(), "\n")
	fmt.Println(lines[0])
	fmt.Println(strings.Contains(b.String(), "### `task.finalized`"))
	// Output:
	// # Event catalog
	// true
}

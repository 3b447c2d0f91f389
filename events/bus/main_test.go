package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// publisher's loop, the memory bus's subscriber goroutines and the tests'
// own subscribers must all be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

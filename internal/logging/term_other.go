//go:build !linux

package logging

import "os"

// terminal reports whether f is a character device, the closest portable
// sign of a terminal.
func terminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

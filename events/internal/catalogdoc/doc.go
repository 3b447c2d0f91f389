// Package catalogdoc renders docs/events.md from the event catalog.
//
// It imports only the standard library and events. Render keeps no state and
// is safe for concurrent use.
package catalogdoc

// Package health owns Sextant's health checks: the Checker interface every
// component implements, a Registry that runs the checks concurrently, each
// bounded by its own timeout, and caches the report so that a storm of
// probes costs one run, and the HTTP handlers for /health, /health/live,
// /health/ready and /health/detailed.
//
// It imports only the standard library: components register checks from
// cmd, the package knows none of them.
//
// Concurrency: a Registry and its handlers are safe for concurrent use.
// Checks run on goroutines the Registry owns; each gets a context that is
// cancelled at its timeout and at Shutdown, and must return soon after.
package health

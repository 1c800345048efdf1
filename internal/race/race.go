//go:build race

// Package race reports whether the race detector is built in, so that slow,
// single-threaded tests can run at full size in a separate pass without it.
package race

// Enabled is true when the binary is built with -race.
const Enabled = true

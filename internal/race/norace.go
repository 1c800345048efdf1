//go:build !race

// Package race reports whether the race detector is built in, so that slow,
// single-threaded tests can run at full size in a separate pass without it,
// and tells the detector of memory that code it does not see, assembly,
// reads and writes.
package race

// Enabled is true when the binary is built with -race.
const Enabled = false

// Read tells the race detector that b has been read.
func Read([]byte) {}

// Write tells the race detector that b has been written.
func Write([]byte) {}

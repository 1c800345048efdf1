//go:build race

// Package race reports whether the race detector is built in, so that slow,
// single-threaded tests can run at full size in a separate pass without it,
// and tells the detector of memory that code it does not see, assembly,
// reads and writes.
package race

import (
	"runtime"
	"unsafe"
)

// Enabled is true when the binary is built with -race.
const Enabled = true

// Read tells the race detector that b has been read.
func Read(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}

// Write tells the race detector that b has been written.
func Write(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
}

//go:build amd64 && !purego

package record

import (
	"golang.org/x/sys/cpu"

	"github.com/go-eventstore/eventstore/internal/race"
)

// haveSSE42 says whether the CPU has SSE 4.2's CRC32 instruction, which
// the assembly versions of sumHeader and sumUnmaskWeyl use.
var haveSSE42 = cpu.X86.HasSSE42

// fusedMax is the length from which sumUnmaskWeyl takes two passes: from
// about 4 KiB, hash/crc32's three interleaved streams of CRC instructions
// (it interleaves from 504 bytes) and MaskWeyl's pass after them beat one
// pass of a single stream.
const fusedMax = 4 << 10

// sumHeader returns the CRC-32C of b, a compact header's checked bytes.
func sumHeader(b *[16]byte) uint32 {
	if haveSSE42 {
		race.Read(b[:]) // the race detector does not see into assembly
		return sumHeaderSSE42(b)
	}
	return Checksum(b[:])
}

// sumUnmaskWeyl returns the CRC-32C of b as it is, and unmasks it in place
// with MaskWeyl's keystream for position, in one pass over its bytes.
func sumUnmaskWeyl(b []byte, position uint64) uint32 {
	if haveSSE42 && len(b) < fusedMax {
		race.Write(b)
		return sumUnmaskWeylSSE42(b, weylStart(position))
	}
	return sumUnmaskWeylGeneric(b, position)
}

//go:noescape
func sumHeaderSSE42(b *[16]byte) uint32

//go:noescape
func sumUnmaskWeylSSE42(b []byte, state uint64) uint32

//go:build amd64 && !purego

package record

import "golang.org/x/sys/cpu"

// haveSSE42 says whether the CPU has SSE 4.2's CRC32 instruction, which
// the assembly versions of sumHeader and sumUnmaskWeyl use.
var haveSSE42 = cpu.X86.HasSSE42

// sumHeader returns the CRC-32C of b, a compact header's checked bytes.
func sumHeader(b *[16]byte) uint32 {
	if haveSSE42 {
		return sumHeaderSSE42(b)
	}
	return Checksum(b[:])
}

// sumUnmaskWeyl returns the CRC-32C of b as it is, and unmasks it in place
// with MaskWeyl's keystream for position, in one pass over its bytes.
func sumUnmaskWeyl(b []byte, position uint64) uint32 {
	if haveSSE42 {
		return sumUnmaskWeylSSE42(b, weylStart(position))
	}
	return sumUnmaskWeylGeneric(b, position)
}

//go:noescape
func sumHeaderSSE42(b *[16]byte) uint32

//go:noescape
func sumUnmaskWeylSSE42(b []byte, state uint64) uint32

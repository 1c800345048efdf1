//go:build !amd64 || purego

package record

// sumHeader returns the CRC-32C of b, a compact header's checked bytes.
func sumHeader(b *[16]byte) uint32 { return Checksum(b[:]) }

// sumUnmaskWeyl returns the CRC-32C of b as it is, and unmasks it in place
// with MaskWeyl's keystream for position.
func sumUnmaskWeyl(b []byte, position uint64) uint32 {
	return sumUnmaskWeylGeneric(b, position)
}

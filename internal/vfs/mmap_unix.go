//go:build unix

package vfs

import (
	"math"
	"strconv"
	"syscall"
)

// Map maps the first size bytes of f into memory read-only and shared, so
// that reads see what f's writers write, without a system call each. It
// returns nil, and no error, when f cannot be mapped here: it is not an OS
// file, or addresses are 32 bits wide. Bytes past the end of the file must
// not be touched: the system raises a fault there (see ReadMapped). Unmap
// releases the mapping.
func Map(f File, size int64) ([]byte, error) {
	of, ok := f.(osFile)
	if !ok || strconv.IntSize < 64 || size <= 0 || size > math.MaxInt {
		return nil, nil
	}
	return syscall.Mmap(int(of.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

// Unmap releases a mapping Map returned.
func Unmap(b []byte) error { return syscall.Munmap(b) }

package vfs

import (
	"math"
	"strconv"
	"syscall"
)

// Map maps the first size bytes of f into memory read-only and shared, so
// that reads see what f's writers write, without a system call each. The
// mapping is advised random: a fault reads no more of the file than its own
// page (the kernel may still map cached pages around it); a caller reading
// a long stretch says so first with WillNeed. It returns nil, and no error,
// when f cannot be mapped here: it is not an OS file, or addresses are 32
// bits wide. Bytes past the end of the file read as
// zeros to the end of its last page, and fault after it (see ReadMapped):
// a caller checks the file's size. Unmap
// releases the mapping.
func Map(f File, size int64) ([]byte, error) {
	of, ok := f.(osFile)
	if !ok || strconv.IntSize < 64 || size <= 0 || size > math.MaxInt {
		return nil, nil
	}
	m, err := syscall.Mmap(int(of.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if err := syscall.Madvise(m, syscall.MADV_RANDOM); err != nil {
		_ = syscall.Munmap(m)
		return nil, err
	}
	return m, nil
}

// Unmap releases a mapping Map returned.
func Unmap(b []byte) error { return syscall.Munmap(b) }

// Release drops pages of a mapping Map returned from the process's resident
// memory; the mapping stays, and the next read of a page maps it again from
// the page cache or the file.
func Release(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }

// WillNeed starts reading pages of a mapping Map returned into the page
// cache, ahead of a read of them.
func WillNeed(b []byte) error { return syscall.Madvise(b, syscall.MADV_WILLNEED) }

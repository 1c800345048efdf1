package vfs

import (
	"errors"
	"os"
	"syscall"
)

// allocate is fallocate(2) in its default mode: it reserves the blocks
// below size and extends the file to size, the new bytes reading as zeros.
// Writes into reserved blocks need no block allocation, and an fdatasync
// after them no change of size, which makes each one cheaper than an
// fdatasync of an appended file. It returns errNoAllocate where the file
// system does not implement it.
func allocate(f *os.File, size int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
			return errNoAllocate
		default:
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
	}
}

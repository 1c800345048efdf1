package vfs

import "golang.org/x/sys/unix"

// WillNeed has the system start reading [off, off+n) of f into the page
// cache, ahead of a read of it (posix_fadvise with POSIX_FADV_WILLNEED).
// It does nothing for a file that is not an OS file.
func WillNeed(f File, off, n int64) error {
	of, ok := f.(osFile)
	if !ok {
		return nil
	}
	return unix.Fadvise(int(of.Fd()), off, n, unix.FADV_WILLNEED)
}

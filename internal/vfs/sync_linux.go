package vfs

import (
	"errors"
	"os"
	"syscall"
)

// datasync is fdatasync(2): it flushes the data and the metadata needed to
// read it back (the size), not timestamps, so it costs one device flush
// instead of two. It is never retried on failure: after a failed fsync the
// kernel may have dropped the dirty pages, so a later success proves nothing.
// (EINTR is not a failure: the call did not run, so it is issued again.)
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

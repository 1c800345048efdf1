// Package vfs is the narrow file-system seam the event log does all its I/O
// through. Production code uses OS, which maps each call onto the real system
// call; tests wrap it (see FaultFS) to fail chosen operations.
package vfs

import (
	"errors"
	"io"
	"os"
)

// ErrLocked is returned by FS.Lock when another holder has the lock.
var ErrLocked = errors.New("vfs: locked by another holder")

// ErrNotReserved is returned by File.Allocate when it made the file long
// enough, but with a hole, as the system cannot reserve the space: the new
// bytes read as zeros, and writing them allocates their blocks.
var ErrNotReserved = errors.New("vfs: file extended, space not reserved")

// File is an open file. ReadAt may be called concurrently with any method
// but Close; the others are called by one goroutine at a time.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes the file's data (and the size needed to read it back)
	// durable: fdatasync where the system has it.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Allocate makes the file at least size bytes long, the bytes it adds
	// reading as zeros, and reserves disk space for them where the system
	// can; where it cannot, it returns ErrNotReserved once the file is
	// long enough. It never shrinks the file. The new size is durable
	// after Sync.
	Allocate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	Close() error
}

// FS is the set of file-system operations the log needs.
type FS interface {
	// OpenFile opens name as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove removes a file.
	Remove(name string) error
	// ReadDir returns the names of the entries in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the directory's entries (creations, removals) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on the file name, creating it
	// if needed, without waiting: it returns ErrLocked if another holder,
	// in this process or another, has it. Closing the returned Closer, or
	// the process ending, releases the lock.
	Lock(name string) (io.Closer, error)
}

//go:build !unix

package vfs

// Map does not map files off Unix: it returns nil, and reads go through
// ReadAt.
func Map(File, int64) ([]byte, error) { return nil, nil }

// Unmap does nothing off Unix.
func Unmap([]byte) error { return nil }

// Release does nothing off Unix.
func Release([]byte) error { return nil }

// WillNeed does nothing off Unix.
func WillNeed([]byte) error { return nil }

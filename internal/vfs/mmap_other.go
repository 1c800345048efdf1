//go:build !linux

package vfs

// Map maps files on Linux only: elsewhere it returns nil, and reads go
// through ReadAt.
func Map(File, int64) ([]byte, error) { return nil, nil }

// Unmap does nothing off Linux.
func Unmap([]byte) error { return nil }

// Release does nothing off Linux.
func Release([]byte) error { return nil }

// WillNeed does nothing off Linux.
func WillNeed([]byte) error { return nil }

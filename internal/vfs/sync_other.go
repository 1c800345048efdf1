//go:build !linux

package vfs

import "os"

// datasync falls back to File.Sync where fdatasync is not available
// (on macOS, File.Sync issues F_FULLFSYNC).
func datasync(f *os.File) error { return f.Sync() }

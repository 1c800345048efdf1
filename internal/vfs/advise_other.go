//go:build !linux

package vfs

// WillNeed does nothing off Linux, where reads ahead are the system's own.
func WillNeed(File, int64, int64) error { return nil }

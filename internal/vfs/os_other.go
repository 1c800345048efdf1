//go:build !unix

package vfs

import (
	"errors"
	"os"
)

// lockFile is not implemented off Unix; Open fails rather than run unlocked.
func lockFile(*os.File) error {
	return errors.New("vfs: directory locking is not supported on this platform")
}

package vfs_test

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-eventstore/eventstore/internal/vfs"
)

func TestOS_Lock_ExclusiveWithinOneProcess(t *testing.T) {
	name := filepath.Join(t.TempDir(), "LOCK")
	first, err := vfs.OS().Lock(name)
	require.NoError(t, err)
	_, err = vfs.OS().Lock(name)
	require.ErrorIs(t, err, vfs.ErrLocked, "a second open file description conflicts")
	require.NoError(t, first.Close())
	again, err := vfs.OS().Lock(name)
	require.NoError(t, err, "closing frees the lock")
	require.NoError(t, again.Close())
}

func TestOS_File_WriteSyncReadSizeTruncate(t *testing.T) {
	fs := vfs.OS()
	name := filepath.Join(t.TempDir(), "f")
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte("hello world"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	size, err := f.Size()
	require.NoError(t, err)
	assert.Equal(t, int64(11), size)
	require.NoError(t, f.Truncate(5))
	b := make([]byte, 5)
	_, err = f.ReadAt(b, 0)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	require.NoError(t, fs.SyncDir(filepath.Dir(name)))
	names, err := fs.ReadDir(filepath.Dir(name))
	require.NoError(t, err)
	assert.Equal(t, []string{"f"}, names)
}

func TestFaultFS_Fail_OnceThenPasses(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	f, err := ffs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	ffs.Fail(vfs.OpSync, 2, syscall.EIO, false)
	require.NoError(t, f.Sync())
	require.ErrorIs(t, f.Sync(), syscall.EIO, "the second sync from now fails")
	require.NoError(t, f.Sync(), "once only")
	assert.Equal(t, 3, ffs.Count(vfs.OpSync))
}

func TestFaultFS_Fail_PersistentAndShortWrite(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	name := filepath.Join(t.TempDir(), "f")
	f, err := ffs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	ffs.Fail(vfs.OpWrite, 1, syscall.ENOSPC, true)
	n, err := f.WriteAt([]byte("12345678"), 0)
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, 4, n, "half the buffer reaches the file, as a real short write")
	_, err = f.WriteAt([]byte("x"), 4)
	require.ErrorIs(t, err, syscall.ENOSPC, "persistent: every later write fails")
	size, err := f.Size()
	require.NoError(t, err)
	assert.Equal(t, int64(4), size)

	ffs.Fail(vfs.OpOpen, 1, syscall.EIO, false)
	_, err = ffs.OpenFile(name, os.O_RDONLY, 0)
	require.ErrorIs(t, err, syscall.EIO)
}

func TestFaultFS_BytesRead(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	f, err := ffs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte("0123456789"), 0)
	require.NoError(t, err)
	_, err = f.ReadAt(make([]byte, 4), 3)
	require.NoError(t, err)
	_, _ = f.ReadAt(make([]byte, 8), 6) // short: 4 bytes and io.EOF
	assert.Equal(t, int64(8), ffs.BytesRead())
}

func TestFaultFS_OnCall_RunsBeforeEachCall(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	f, err := ffs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	calls := 0
	ffs.OnCall(vfs.OpSync, func() { calls++ })
	require.NoError(t, f.Sync())
	require.NoError(t, f.Sync())
	ffs.OnCall(vfs.OpSync, nil)
	require.NoError(t, f.Sync())
	assert.Equal(t, 2, calls)
}

// TestWillNeed: advice over an OS file, within it or past its end, is
// taken, and reaches the system (which refuses it for a closed file); over
// a file of another kind it does nothing.
func TestWillNeed(t *testing.T) {
	f, err := vfs.OS().OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, 3*4096), 0)
	require.NoError(t, err)
	require.NoError(t, vfs.WillNeed(f, 0, 3*4096))
	require.NoError(t, vfs.WillNeed(f, 4096, 1<<20))
	require.NoError(t, f.Close())
	if runtime.GOOS == "linux" {
		require.Error(t, vfs.WillNeed(f, 0, 4096), "advice over a closed file")
	}

	mem, err := vfs.NewCrashFS().OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, vfs.WillNeed(mem, 0, 4096))
}

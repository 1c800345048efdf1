package vfs

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMap_ReadsWritesAndFaultsAreErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := OS().OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(make([]byte, 3*4096), 0)
	require.NoError(t, err)

	m, err := Map(f, 1<<20) // past the end of the file, as for a segment still growing
	require.NoError(t, err)
	if m == nil {
		t.Skip("files are not mapped on this platform")
	}
	require.Len(t, m, 1<<20)
	defer func() { assert.NoError(t, Unmap(m)) }()

	// A write through the file is seen through the mapping.
	_, err = f.WriteAt([]byte("hello"), 4096)
	require.NoError(t, err)
	got := make([]byte, 5)
	require.NoError(t, ReadMapped(got, m[4096:]))
	assert.Equal(t, "hello", string(got))

	// Released pages and pages asked for ahead read the same bytes.
	require.NoError(t, WillNeed(m[:3*4096]))
	require.NoError(t, Release(m[:3*4096]))
	got = make([]byte, 5)
	require.NoError(t, ReadMapped(got, m[4096:]))
	assert.Equal(t, "hello", string(got))

	// Bytes the file no longer holds fault: an error, not a crash.
	require.NoError(t, f.Truncate(4096))
	err = ReadMapped(got, m[2*4096:])
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NoError(t, ReadMapped(got, m[:5]), "bytes still in the file read")
}

func TestMap_OnlyOSFiles(t *testing.T) {
	m, err := Map(nil, 4096)
	assert.NoError(t, err)
	assert.Nil(t, m)
}

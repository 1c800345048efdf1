package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-eventstore/eventstore/internal/vfs"
)

const rw = os.O_RDWR | os.O_CREATE

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func openFile(t *testing.T, fsys vfs.FS, name string, flag int) vfs.File {
	t.Helper()
	f, err := fsys.OpenFile(name, flag, 0o644)
	require.NoError(t, err)
	return f
}

func writeAt(t *testing.T, f vfs.File, s string, off int64) {
	t.Helper()
	n, err := f.WriteAt([]byte(s), off)
	require.NoError(t, err)
	require.Equal(t, len(s), n)
}

// contents reads the whole file through f.
func contents(t *testing.T, f vfs.File) string {
	t.Helper()
	size, err := f.Size()
	require.NoError(t, err)
	b := make([]byte, size)
	if size > 0 {
		_, err = f.ReadAt(b, 0)
		require.NoError(t, err)
	}
	return string(b)
}

// listing returns the files of dir in c, with their contents.
func listing(t *testing.T, c *vfs.CrashFS, dir string) map[string]string {
	t.Helper()
	names, err := c.ReadDir(dir)
	require.NoError(t, err)
	m := map[string]string{}
	for _, name := range names {
		b, err := c.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		m[name] = string(b)
	}
	return m
}

// nonzero returns n random bytes in [lo, hi], lo >= 1.
func nonzero(rng *rand.Rand, n int, lo, hi byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = lo + byte(rng.IntN(int(hi-lo)+1))
	}
	return b
}

// The same expectations hold on the real OS and on CrashFS, so CrashFS's
// semantics are the OS's.
func TestCrashFS_OSSemantics(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, fsys vfs.FS, dir string)
	}{
		{"ReadAt past the end returns io.EOF and a short count", func(t *testing.T, fsys vfs.FS, dir string) {
			f := openFile(t, fsys, filepath.Join(dir, "f"), rw)
			defer f.Close()
			writeAt(t, f, "hello", 0)
			p := make([]byte, 8)
			n, err := f.ReadAt(p, 2)
			assert.Equal(t, io.EOF, err)
			assert.Equal(t, "llo", string(p[:n]))
			n, err = f.ReadAt(p, 5)
			assert.Equal(t, io.EOF, err)
			assert.Zero(t, n)
			n, err = f.ReadAt(p, 100)
			assert.Equal(t, io.EOF, err)
			assert.Zero(t, n)
			n, err = f.ReadAt(p[:5], 0)
			assert.NoError(t, err, "a full read is no EOF")
			assert.Equal(t, 5, n)
			_, err = f.ReadAt(p, -1)
			assert.Error(t, err)
		}},
		{"WriteAt past the end zero-fills the gap", func(t *testing.T, fsys vfs.FS, dir string) {
			f := openFile(t, fsys, filepath.Join(dir, "f"), rw)
			defer f.Close()
			writeAt(t, f, "ab", 0)
			writeAt(t, f, "cd", 6)
			assert.Equal(t, "ab\x00\x00\x00\x00cd", contents(t, f))
			writeAt(t, f, "XY", 1)
			assert.Equal(t, "aXY\x00\x00\x00cd", contents(t, f))
		}},
		{"Truncate shrinks and zero-extends", func(t *testing.T, fsys vfs.FS, dir string) {
			f := openFile(t, fsys, filepath.Join(dir, "f"), rw)
			defer f.Close()
			writeAt(t, f, "hello world", 0)
			require.NoError(t, f.Truncate(5))
			assert.Equal(t, "hello", contents(t, f))
			require.NoError(t, f.Truncate(8))
			assert.Equal(t, "hello\x00\x00\x00", contents(t, f), "the cut bytes do not come back")
			size, err := f.Size()
			require.NoError(t, err)
			assert.Equal(t, int64(8), size)
		}},
		{"Allocate zero-extends and never shrinks", func(t *testing.T, fsys vfs.FS, dir string) {
			f := openFile(t, fsys, filepath.Join(dir, "f"), rw)
			defer f.Close()
			writeAt(t, f, "hello", 0)
			if err := f.Allocate(4096); !errors.Is(err, vfs.ErrNotReserved) { // a hole, where the system cannot reserve space
				require.NoError(t, err)
			}
			got := contents(t, f)
			require.Len(t, got, 4096)
			assert.Equal(t, "hello"+strings.Repeat("\x00", 4091), got)
			require.NoError(t, f.Allocate(3))
			size, err := f.Size()
			require.NoError(t, err)
			assert.Equal(t, int64(4096), size, "a smaller size leaves the file as it is")
			writeAt(t, f, "world", 4094)
			assert.Equal(t, "hello", contents(t, f)[:5])
			assert.Equal(t, "world", contents(t, f)[4094:], "a write past the allocation extends the file")
		}},
		{"O_EXCL fails on an existing file", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "f")
			require.NoError(t, openFile(t, fsys, name, rw|os.O_EXCL).Close())
			_, err := fsys.OpenFile(name, rw|os.O_EXCL, 0o644)
			assert.ErrorIs(t, err, fs.ErrExist)
			f, err := fsys.OpenFile(name, rw, 0o644)
			require.NoError(t, err, "without O_EXCL it opens")
			require.NoError(t, f.Close())
		}},
		{"O_TRUNC empties an existing file; without it the content stays", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "f")
			f := openFile(t, fsys, name, rw)
			writeAt(t, f, "content", 0)
			require.NoError(t, f.Close())
			f = openFile(t, fsys, name, os.O_RDWR)
			assert.Equal(t, "content", contents(t, f))
			require.NoError(t, f.Close())
			f = openFile(t, fsys, name, os.O_RDWR|os.O_TRUNC)
			defer f.Close()
			assert.Equal(t, "", contents(t, f))
		}},
		{"a missing file without O_CREATE, or in a missing directory, does not exist", func(t *testing.T, fsys vfs.FS, dir string) {
			_, err := fsys.OpenFile(filepath.Join(dir, "nope"), os.O_RDWR, 0)
			assert.ErrorIs(t, err, fs.ErrNotExist)
			_, err = fsys.OpenFile(filepath.Join(dir, "nodir", "f"), rw, 0o644)
			assert.ErrorIs(t, err, fs.ErrNotExist)
		}},
		{"Remove of a missing file does not exist; Remove hides the name at once", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "f")
			assert.ErrorIs(t, fsys.Remove(name), fs.ErrNotExist)
			require.NoError(t, openFile(t, fsys, name, rw).Close())
			require.NoError(t, fsys.Remove(name))
			_, err := fsys.OpenFile(name, os.O_RDWR, 0)
			assert.ErrorIs(t, err, fs.ErrNotExist)
			assert.ErrorIs(t, fsys.Remove(name), fs.ErrNotExist)
		}},
		{"an open file outlives its Remove", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "f")
			f := openFile(t, fsys, name, rw)
			defer f.Close()
			writeAt(t, f, "abc", 0)
			require.NoError(t, fsys.Remove(name))
			writeAt(t, f, "d", 3)
			assert.Equal(t, "abcd", contents(t, f))
		}},
		{"a closed file fails with os.ErrClosed", func(t *testing.T, fsys vfs.FS, dir string) {
			f := openFile(t, fsys, filepath.Join(dir, "f"), rw)
			require.NoError(t, f.Close())
			_, err := f.ReadAt(make([]byte, 1), 0)
			assert.ErrorIs(t, err, os.ErrClosed)
			_, err = f.WriteAt([]byte("x"), 0)
			assert.ErrorIs(t, err, os.ErrClosed)
			assert.ErrorIs(t, f.Truncate(0), os.ErrClosed)
			_, err = f.Size()
			assert.ErrorIs(t, err, os.ErrClosed)
			assert.ErrorIs(t, f.Close(), os.ErrClosed)
			assert.Error(t, f.Sync()) // EBADF on the OS; os.ErrClosed on CrashFS (below)
		}},
		{"ReadDir lists sorted names; an unknown directory does not exist", func(t *testing.T, fsys vfs.FS, dir string) {
			for _, name := range []string{"b", "c", "a"} {
				require.NoError(t, openFile(t, fsys, filepath.Join(dir, name), rw).Close())
			}
			require.NoError(t, fsys.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755))
			names, err := fsys.ReadDir(dir)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b", "c", "sub"}, names)
			names, err = fsys.ReadDir(filepath.Join(dir, "sub", "deeper"))
			require.NoError(t, err)
			assert.Empty(t, names)
			_, err = fsys.ReadDir(filepath.Join(dir, "nope"))
			assert.ErrorIs(t, err, fs.ErrNotExist)
		}},
		{"a read-only file refuses writes, a write-only one reads", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "f")
			require.NoError(t, openFile(t, fsys, name, rw).Close())
			ro := openFile(t, fsys, name, os.O_RDONLY)
			defer ro.Close()
			_, err := ro.WriteAt([]byte("x"), 0)
			assert.Error(t, err)
			assert.Error(t, ro.Truncate(0))
			wo := openFile(t, fsys, name, os.O_WRONLY)
			defer wo.Close()
			_, err = wo.ReadAt(make([]byte, 1), 0)
			assert.Error(t, err)
		}},
		{"a second Lock conflicts until the first is closed", func(t *testing.T, fsys vfs.FS, dir string) {
			name := filepath.Join(dir, "LOCK")
			l, err := fsys.Lock(name)
			require.NoError(t, err)
			_, err = fsys.Lock(name)
			assert.ErrorIs(t, err, vfs.ErrLocked)
			require.NoError(t, l.Close())
			l, err = fsys.Lock(name)
			require.NoError(t, err)
			require.NoError(t, l.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("os", func(t *testing.T) { tt.run(t, vfs.OS(), t.TempDir()) })
			t.Run("crash", func(t *testing.T) {
				c := vfs.NewCrashFS()
				c = durableDir(t, c, "/data")
				tt.run(t, c, "/data")
			})
		})
	}
}

func TestCrashFS_ClosedFileSync_ErrClosed(t *testing.T) {
	c := vfs.NewCrashFS()
	f := openFile(t, c, "f", rw)
	require.NoError(t, f.Close())
	assert.ErrorIs(t, f.Sync(), os.ErrClosed)
	assert.Zero(t, c.SyncCount(), "a failed sync is no sync point")
}

// model tracks, independently of CrashFS, what a file holds now, what it
// held at its last Sync, and which offsets a write or truncate has touched
// since.
type model struct {
	data, synced []byte
	touched      map[int]bool
}

func (m *model) write(p []byte, off int) {
	for i := len(m.data); i < off+len(p); i++ {
		m.data = append(m.data, 0)
		m.touched[i] = true
	}
	copy(m.data[off:], p)
	for i := off; i < off+len(p); i++ {
		m.touched[i] = true
	}
}

func (m *model) truncate(size int) {
	for i := min(size, len(m.data)); i < max(size, len(m.data)); i++ {
		m.touched[i] = true
	}
	if size < len(m.data) {
		m.data = m.data[:size]
	} else {
		m.data = append(m.data, make([]byte, size-len(m.data))...)
	}
}

func (m *model) sync() {
	m.synced = bytes.Clone(m.data)
	m.touched = map[int]bool{}
}

// A random workload of one kind on /d/f, ending with unsynced changes.
// Writes hold bytes 1-255, so that a zero can only come from the file.
func runWorkload(t *testing.T, kind string, rng *rand.Rand) (*vfs.CrashFS, *model) {
	t.Helper()
	c := vfs.NewCrashFS()
	c = durableDir(t, c, "/d")
	f := openFile(t, c, "/d/f", rw)
	require.NoError(t, c.SyncDir("/d"))
	m := &model{touched: map[int]bool{}}
	ops := 4 + rng.IntN(12)
	for i := 0; i < ops; i++ {
		lastOps := i >= ops-2 // never synced
		switch r := rng.IntN(10); {
		case r < 3 && !lastOps:
			require.NoError(t, f.Sync())
			m.sync()
		case r < 5 && kind == "truncate":
			size := rng.IntN(len(m.data) + 2000)
			require.NoError(t, f.Truncate(int64(size)))
			m.truncate(size)
		default:
			p := nonzero(rng, 1+rng.IntN(3000), 1, 255)
			off := len(m.data)
			if kind != "append" {
				off = rng.IntN(len(m.data) + 1000)
			}
			writeAt(t, f, string(p), int64(off))
			m.write(p, off)
		}
	}
	got, err := c.ReadFile("/d/f")
	require.NoError(t, err)
	require.Equal(t, m.data, got, "CrashFS holds what was written")
	return c, m
}

func TestCrashFS_Crash_KeepsSyncedBytesAndInventsNone(t *testing.T) {
	for _, kind := range []string{"append", "overwrite", "truncate"} {
		t.Run(kind, func(t *testing.T) {
			for seed := range uint64(400) {
				c, m := runWorkload(t, kind, newRand(seed))
				img := c.Crash(newRand(seed + 1_000_000))
				got, err := img.ReadFile("/d/f")
				require.NoError(t, err, "seed %d", seed)
				mode := img.CrashModes()["/d/f"]
				ls, ld := len(m.synced), len(m.data)

				if mode == vfs.CrashNone {
					require.Equal(t, string(m.synced), string(got), "seed %d: mode none keeps the synced state", seed)
				} else {
					require.LessOrEqual(t, len(got), ld, "seed %d: %v", seed, mode)
				}
				// Every byte not touched since the last sync survives.
				for i := range min(ls, ld) {
					if !m.touched[i] && (i >= len(got) || got[i] != m.synced[i]) {
						t.Fatalf("seed %d %v: synced byte %d, untouched since, is lost", seed, mode, i)
					}
				}
				// Every byte is the synced one, the written one, or a zero
				// past the synced size.
				for i, b := range got {
					ok := (i < ls && b == m.synced[i]) || (i < ld && b == m.data[i]) || (i >= ls && b == 0)
					if !ok {
						t.Fatalf("seed %d %v: byte %d = %d invented", seed, mode, i, b)
					}
				}
				if kind == "append" {
					require.Equal(t, string(m.synced), string(got[:ls]), "seed %d: an appended file keeps its synced prefix", seed)
				}
			}
		})
	}
}

// checkShape checks that got is what mode makes of a file whose synced
// content is synced and current content data, where data differs from
// synced (and from zero) at every offset from lo on.
func checkShape(t *testing.T, mode vfs.CrashMode, synced, data, got []byte, lo int) {
	t.Helper()
	ls, ld := len(synced), len(data)
	if mode == vfs.CrashNone {
		require.Equal(t, string(synced), string(got))
		return
	}
	require.Equal(t, data[:lo], got[:lo], "bytes below lo are common to both")
	if mode == vfs.CrashPrefix && lo == ls {
		require.Greater(t, len(got), ls, "a non-empty prefix of the tail")
		require.Equal(t, data[:len(got)], got)
		return
	}
	require.Len(t, got, ld)
	// reverted[i-lo]: byte i holds its synced byte (zero past the synced
	// size) rather than the written one.
	reverted := make([]bool, ld-lo)
	lost := false
	for i := lo; i < ld; i++ {
		old := byte(0)
		if i < ls {
			old = synced[i]
		}
		switch got[i] {
		case data[i]:
		case old:
			reverted[i-lo], lost = true, true
		default:
			require.Failf(t, "invented byte", "byte %d = %d", i, got[i])
		}
	}
	// wholeUnits checks that each unit-aligned block is reverted whole or
	// not at all, and returns how many blocks are reverted.
	wholeUnits := func(unit int) int {
		n := 0
		for s := lo / unit * unit; s < ld; s += unit {
			from, to := max(s, lo), min(s+unit, ld)
			if from >= to {
				continue
			}
			first := reverted[from-lo]
			for i := from; i < to; i++ {
				if reverted[i-lo] != first {
					t.Fatalf("block at %d reverted in part (byte %d)", s, i)
				}
			}
			if first {
				n++
			}
		}
		return n
	}
	switch mode {
	case vfs.CrashPrefix:
		wholeUnits(512)
	case vfs.CrashTornSector:
		require.True(t, lost, "a torn sector loses something")
		cut := lo
		for !reverted[cut-lo] {
			cut++
		}
		end := min((cut/512+1)*512, ld)
		for i := cut; i < ld; i++ {
			if reverted[i-lo] != (i < end) {
				t.Fatalf("byte %d: only the sector's end from %d to %d may be lost", i, cut, end)
			}
		}
	case vfs.CrashZeroedPages:
		require.GreaterOrEqual(t, wholeUnits(4096), 1, "at least one page is lost")
	default:
		require.Failf(t, "unknown mode", "%v", mode)
	}
}

func TestCrashFS_Crash_EveryModeOccursWithItsShape(t *testing.T) {
	const seeds = 1000
	tests := []struct {
		name  string
		setup func(f vfs.File, synced []byte, rng *rand.Rand) (data []byte, lo int)
		modes []vfs.CrashMode // the modes that can apply
	}{
		{"append", func(f vfs.File, synced []byte, rng *rand.Rand) ([]byte, int) {
			tail := nonzero(rng, 3*4096+700, 1, 255)
			f.WriteAt(tail, int64(len(synced)))
			return append(bytes.Clone(synced), tail...), len(synced)
		}, []vfs.CrashMode{vfs.CrashNone, vfs.CrashPrefix, vfs.CrashTornSector, vfs.CrashZeroedPages}},
		{"rewrite and extend", func(f vfs.File, synced []byte, rng *rand.Rand) ([]byte, int) {
			lo := 300 + rng.IntN(500)
			p := nonzero(rng, 3*4096, 128, 255) // synced bytes are < 128
			f.WriteAt(p, int64(lo))
			return append(bytes.Clone(synced[:lo]), p...), lo
		}, []vfs.CrashMode{vfs.CrashNone, vfs.CrashPrefix, vfs.CrashTornSector, vfs.CrashZeroedPages}},
		{"truncate only", func(f vfs.File, synced []byte, rng *rand.Rand) ([]byte, int) {
			size := rng.IntN(len(synced))
			f.Truncate(int64(size))
			return bytes.Clone(synced[:size]), size
		}, []vfs.CrashMode{vfs.CrashNone, vfs.CrashPrefix}},
		{"nothing unsynced", func(f vfs.File, synced []byte, rng *rand.Rand) ([]byte, int) {
			f.WriteAt(synced[10:20], 10) // the same bytes again
			return bytes.Clone(synced), len(synced)
		}, []vfs.CrashMode{vfs.CrashNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := map[vfs.CrashMode]int{}
			for seed := range uint64(seeds) {
				rng := newRand(seed)
				c := vfs.NewCrashFS()
				c = durableDir(t, c, "/d")
				f := openFile(t, c, "/d/f", rw)
				require.NoError(t, c.SyncDir("/d"))
				synced := nonzero(rng, 1000, 1, 127)
				writeAt(t, f, string(synced), 0)
				require.NoError(t, f.Sync())
				data, lo := tt.setup(f, synced, rng)
				cur, err := c.ReadFile("/d/f")
				require.NoError(t, err)
				require.Equal(t, data, cur)

				img := c.Crash(rng)
				got, err := img.ReadFile("/d/f")
				require.NoError(t, err)
				mode := img.CrashModes()["/d/f"]
				counts[mode]++
				ok := t.Run(fmt.Sprintf("seed=%d/%v", seed, mode), func(t *testing.T) {
					require.Contains(t, tt.modes, mode, "a mode that cannot apply")
					checkShape(t, mode, synced, data, got, lo)
				})
				if !ok {
					t.FailNow()
				}
			}
			t.Logf("modes over %d seeds: %v", seeds, counts)
			for _, mode := range tt.modes {
				// Uniform choice gives seeds/len(modes) each.
				assert.Greater(t, counts[mode], seeds/len(tt.modes)*6/10, "mode %v is rarely or never produced", mode)
			}
		})
	}
}

func TestCrashFS_Crash_DirectoryEntries(t *testing.T) {
	tests := []struct {
		name    string
		run     func(t *testing.T, c *vfs.CrashFS)
		current map[string]string // ReadDir before the crash
		after   map[string]string // the clean image
	}{
		{"a created file vanishes without SyncDir, even if synced", func(t *testing.T, c *vfs.CrashFS) {
			f := openFile(t, c, "/d/a", rw)
			writeAt(t, f, "x", 0)
			require.NoError(t, f.Sync())
		}, map[string]string{"a": "x"}, map[string]string{}},
		{"a created file survives SyncDir", func(t *testing.T, c *vfs.CrashFS) {
			f := openFile(t, c, "/d/a", rw)
			writeAt(t, f, "x", 0)
			require.NoError(t, f.Sync())
			require.NoError(t, c.SyncDir("/d"))
		}, map[string]string{"a": "x"}, map[string]string{"a": "x"}},
		{"a listed file never synced comes back empty", func(t *testing.T, c *vfs.CrashFS) {
			f := openFile(t, c, "/d/a", rw)
			require.NoError(t, c.SyncDir("/d"))
			writeAt(t, f, "x", 0)
		}, map[string]string{"a": "x"}, map[string]string{"a": ""}},
		{"a removed file comes back without SyncDir", func(t *testing.T, c *vfs.CrashFS) {
			require.NoError(t, c.WriteFile("/d/a", []byte("x")))
			require.NoError(t, c.WriteFile("/d/b", []byte("y")))
			require.NoError(t, c.Remove("/d/a"))
		}, map[string]string{"b": "y"}, map[string]string{"a": "x", "b": "y"}},
		{"a removed file stays gone after SyncDir", func(t *testing.T, c *vfs.CrashFS) {
			require.NoError(t, c.WriteFile("/d/a", []byte("x")))
			require.NoError(t, c.Remove("/d/a"))
			require.NoError(t, c.SyncDir("/d"))
		}, map[string]string{}, map[string]string{}},
		{"a removed and re-created file comes back as the old one", func(t *testing.T, c *vfs.CrashFS) {
			require.NoError(t, c.WriteFile("/d/a", []byte("old")))
			require.NoError(t, c.Remove("/d/a"))
			f := openFile(t, c, "/d/a", rw|os.O_EXCL)
			writeAt(t, f, "new", 0)
			require.NoError(t, f.Sync())
		}, map[string]string{"a": "new"}, map[string]string{"a": "old"}},
		{"an unsynced O_TRUNC is undone", func(t *testing.T, c *vfs.CrashFS) {
			require.NoError(t, c.WriteFile("/d/a", []byte("old")))
			f := openFile(t, c, "/d/a", os.O_RDWR|os.O_TRUNC)
			writeAt(t, f, "n", 0)
		}, map[string]string{"a": "n"}, map[string]string{"a": "old"}},
		{"SyncDir of another directory does not count", func(t *testing.T, c *vfs.CrashFS) {
			require.NoError(t, c.MkdirAll("/e", 0o755))
			require.NoError(t, c.SyncDir("/"))
			require.NoError(t, c.WriteFile("/e/x", nil))
			openFile(t, c, "/d/a", rw)
			require.NoError(t, c.SyncDir("/e"))
		}, map[string]string{"a": ""}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func() *vfs.CrashFS {
				c := vfs.NewCrashFS()
				c = durableDir(t, c, "/d")
				tt.run(t, c)
				return c
			}
			c := build()
			assert.Equal(t, tt.current, listing(t, c, "/d"), "the current listing changes at once")
			assert.Equal(t, tt.after, listing(t, c.CrashClean(), "/d"), "clean image")
			for seed := range uint64(50) {
				img := build().Crash(newRand(seed))
				got := listing(t, img, "/d")
				require.Len(t, got, len(tt.after), "seed %d", seed)
				for name, want := range tt.after {
					require.Contains(t, got, name, "seed %d", seed)
					if img.CrashModes()["/d/"+name] == vfs.CrashNone {
						require.Equal(t, want, got[name], "seed %d: mode none keeps the synced content", seed)
					}
				}
			}
		})
	}
}

func TestCrashFS_Crash_DirectoriesNeedTheirParentSynced(t *testing.T) {
	c := vfs.NewCrashFS()
	require.NoError(t, c.MkdirAll("/d/sub/deeper", 0o755))
	img := c.Crash(newRand(1))
	_, err := img.ReadDir("/d")
	require.ErrorIs(t, err, fs.ErrNotExist, "a directory whose parent was never synced is gone")

	c = vfs.NewCrashFS()
	require.NoError(t, c.MkdirAll("/d/sub/deeper", 0o755))
	require.NoError(t, c.SyncDir("/"))
	require.NoError(t, c.SyncDir("/d"))
	img = c.Crash(newRand(1))
	names, err := img.ReadDir("/d")
	require.NoError(t, err)
	assert.Equal(t, []string{"sub"}, names)
	_, err = img.ReadDir("/d/sub/deeper")
	require.ErrorIs(t, err, fs.ErrNotExist, "/d/sub was never synced")
}

// durableDir makes dir and its parents in c, durably, and returns a crash
// image of that state: a fresh CrashFS whose sync count starts at zero.
func durableDir(t *testing.T, c *vfs.CrashFS, dir string) *vfs.CrashFS {
	t.Helper()
	require.NoError(t, c.MkdirAll(dir, 0o755))
	for p := dir; filepath.Dir(p) != p; p = filepath.Dir(p) {
		require.NoError(t, c.SyncDir(filepath.Dir(p)))
	}
	return c.CrashClean()
}

// syncWorkload is a run with six sync points; it stops at the first error,
// reporting the step that failed and checking that every later step fails
// with ErrCrashed too.
func syncWorkload(t *testing.T, c *vfs.CrashFS) (failedAt int) {
	t.Helper()
	var a, b vfs.File
	steps := []struct {
		needB bool // skipped if the frozen FS did not open b
		do    func() error
	}{
		{false, func() (err error) { a, err = c.OpenFile("/d/a", rw, 0o644); return err }},
		{false, func() error { return c.SyncDir("/d") }}, // sync 1
		{false, func() error { _, err := a.WriteAt([]byte("one"), 0); return err }},
		{false, func() error { return a.Sync() }}, // sync 2
		{false, func() error { _, err := a.WriteAt([]byte("two"), 3); return err }},
		{false, func() error { return a.Sync() }}, // sync 3
		{false, func() (err error) { b, err = c.OpenFile("/d/b", rw, 0o644); return err }},
		{true, func() error { _, err := b.WriteAt([]byte("bee"), 0); return err }},
		{true, func() error { return b.Sync() }},         // sync 4
		{false, func() error { return c.SyncDir("/d") }}, // sync 5
		{false, func() error { return c.Remove("/d/a") }},
		{false, func() error { return c.SyncDir("/d") }}, // sync 6
	}
	failedAt = -1
	for i, step := range steps {
		if step.needB && b == nil {
			require.GreaterOrEqual(t, failedAt, 0, "b is missing only after a freeze")
			continue
		}
		if a == nil && i > 0 {
			require.Equal(t, 0, failedAt)
			continue
		}
		err := step.do()
		if failedAt < 0 && err != nil {
			failedAt = i
		}
		if failedAt >= 0 {
			require.ErrorIs(t, err, vfs.ErrCrashed, "step %d, after the freeze at step %d", i, failedAt)
		}
	}
	if failedAt >= 0 {
		for _, f := range []vfs.File{a, b} {
			if f != nil {
				_, err := f.ReadAt(make([]byte, 1), 0)
				require.ErrorIs(t, err, vfs.ErrCrashed)
			}
		}
		_, err := c.ReadDir("/d")
		require.ErrorIs(t, err, vfs.ErrCrashed)
		_, err = c.OpenFile("/d/c", rw, 0o644)
		require.ErrorIs(t, err, vfs.ErrCrashed)
	}
	return failedAt
}

func TestCrashFS_CrashAtSync(t *testing.T) {
	newFS := func() *vfs.CrashFS {
		c := vfs.NewCrashFS()
		c = durableDir(t, c, "/d")
		return c
	}
	full := newFS()
	require.Equal(t, -1, syncWorkload(t, full))
	require.Equal(t, 6, full.SyncCount())

	tests := []struct {
		n      int
		step   int               // the step that freezes
		image  map[string]string // clean image: the nth sync did not happen
		listed []string          // the names any image lists
	}{
		{1, 1, map[string]string{}, nil},
		{2, 3, map[string]string{"a": ""}, []string{"a"}},
		{3, 5, map[string]string{"a": "one"}, []string{"a"}},
		{4, 8, map[string]string{"a": "onetwo"}, []string{"a"}},
		{5, 9, map[string]string{"a": "onetwo"}, []string{"a"}},
		{6, 11, map[string]string{"a": "onetwo", "b": "bee"}, []string{"a", "b"}},
		{7, -1, map[string]string{"b": "bee"}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			c := newFS()
			c.CrashAtSync(tt.n)
			assert.False(t, c.Frozen())
			require.Equal(t, tt.step, syncWorkload(t, c), "CrashAtSync(%d) freezes at the right call", tt.n)
			assert.Equal(t, tt.step >= 0, c.Frozen())
			assert.Equal(t, min(tt.n-1, 6), c.SyncCount(), "the syncs before the nth took effect")
			assert.Equal(t, tt.image, listing(t, c.CrashClean(), "/d"))
			for seed := range uint64(20) {
				names, err := c.Crash(newRand(seed)).ReadDir("/d")
				require.NoError(t, err)
				if len(tt.listed) == 0 {
					assert.Empty(t, names, "seed %d", seed)
				} else {
					assert.Equal(t, tt.listed, names, "seed %d", seed)
				}
			}
		})
	}
}

func TestCrashFS_CrashAtSync_ArmingRules(t *testing.T) {
	c := vfs.NewCrashFS()
	require.NoError(t, c.SyncDir("."))
	assert.Panics(t, func() { c.CrashAtSync(1) }, "that point has passed")
	c.CrashAtSync(2)
	c.CrashAtSync(0) // disarms
	require.NoError(t, c.SyncDir("."))
	assert.False(t, c.Frozen())
	assert.Equal(t, 2, c.SyncCount())
	c.CrashAtSync(3)
	require.ErrorIs(t, c.SyncDir("."), vfs.ErrCrashed)
	assert.True(t, c.Frozen())
	assert.Equal(t, 2, c.SyncCount())
}

func TestCrashFS_SyncCount_CountsFileAndDirSyncs(t *testing.T) {
	c := vfs.NewCrashFS()
	f := openFile(t, c, "f", rw)
	require.NoError(t, f.Sync())
	require.NoError(t, c.SyncDir("."))
	require.NoError(t, f.Sync())
	assert.ErrorIs(t, c.SyncDir("nope"), fs.ErrNotExist)
	require.NoError(t, f.Close())
	assert.Error(t, f.Sync())
	assert.Equal(t, 3, c.SyncCount(), "only syncs that took effect count")
	img := c.CrashClean()
	assert.Zero(t, img.SyncCount(), "an image counts from its creation")
}

func TestCrashFS_Locks(t *testing.T) {
	c := vfs.NewCrashFS()
	c = durableDir(t, c, "/d")
	l1, err := c.Lock("/d/LOCK")
	require.NoError(t, err)
	_, err = c.Lock("/d/./LOCK")
	assert.ErrorIs(t, err, vfs.ErrLocked, "the same name, however spelled")
	l2, err := c.Lock("/d/OTHER")
	require.NoError(t, err, "another name is another lock")
	require.NoError(t, l1.Close())
	assert.ErrorIs(t, l1.Close(), os.ErrClosed)
	l1, err = c.Lock("/d/LOCK")
	require.NoError(t, err, "Close released it")
	_, err = c.Lock("/nodir/LOCK")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	img := c.Crash(newRand(1))
	for _, name := range []string{"/d/LOCK", "/d/OTHER"} {
		l, err := img.Lock(name)
		require.NoError(t, err, "the crash released %s", name)
		_, err = img.Lock(name)
		assert.ErrorIs(t, err, vfs.ErrLocked)
		require.NoError(t, l.Close())
	}
	assert.ErrorIs(t, l1.Close(), vfs.ErrCrashed)
	assert.ErrorIs(t, l2.Close(), vfs.ErrCrashed)
	_, err = c.Lock("/d/NEW")
	assert.ErrorIs(t, err, vfs.ErrCrashed)
}

func TestCrashFS_DeadAfterCrash(t *testing.T) {
	ops := []struct {
		name string
		op   func(c *vfs.CrashFS, f vfs.File) error
	}{
		{"ReadAt", func(_ *vfs.CrashFS, f vfs.File) error { _, err := f.ReadAt(make([]byte, 1), 0); return err }},
		{"WriteAt", func(_ *vfs.CrashFS, f vfs.File) error { _, err := f.WriteAt([]byte("zz"), 0); return err }},
		{"Sync", func(_ *vfs.CrashFS, f vfs.File) error { return f.Sync() }},
		{"Truncate", func(_ *vfs.CrashFS, f vfs.File) error { return f.Truncate(0) }},
		{"Size", func(_ *vfs.CrashFS, f vfs.File) error { _, err := f.Size(); return err }},
		{"Close", func(_ *vfs.CrashFS, f vfs.File) error { return f.Close() }},
		{"OpenFile", func(c *vfs.CrashFS, _ vfs.File) error { _, err := c.OpenFile("/d/f", os.O_RDWR, 0); return err }},
		{"OpenFile O_CREATE", func(c *vfs.CrashFS, _ vfs.File) error { _, err := c.OpenFile("/d/g", rw, 0o644); return err }},
		{"Remove", func(c *vfs.CrashFS, _ vfs.File) error { return c.Remove("/d/f") }},
		{"ReadDir", func(c *vfs.CrashFS, _ vfs.File) error { _, err := c.ReadDir("/d"); return err }},
		{"MkdirAll", func(c *vfs.CrashFS, _ vfs.File) error { return c.MkdirAll("/e/x", 0o755) }},
		{"SyncDir", func(c *vfs.CrashFS, _ vfs.File) error { return c.SyncDir("/d") }},
		{"Lock", func(c *vfs.CrashFS, _ vfs.File) error { _, err := c.Lock("/d/LOCK"); return err }},
		{"ReadFile", func(c *vfs.CrashFS, _ vfs.File) error { _, err := c.ReadFile("/d/f"); return err }},
		{"WriteFile", func(c *vfs.CrashFS, _ vfs.File) error { return c.WriteFile("/d/f", []byte("zz")) }},
	}
	kills := []struct {
		name string
		kill func(c *vfs.CrashFS)
	}{
		{"Crash", func(c *vfs.CrashFS) { c.Crash(newRand(1)) }},
		{"CrashClean", func(c *vfs.CrashFS) { c.CrashClean() }},
		{"CrashAtSync", func(c *vfs.CrashFS) {
			c.CrashAtSync(c.SyncCount() + 1)
			require.ErrorIs(t, c.SyncDir("/d"), vfs.ErrCrashed)
		}},
	}
	for _, kill := range kills {
		for _, tt := range ops {
			t.Run(kill.name+"/"+tt.name, func(t *testing.T) {
				c := vfs.NewCrashFS()
				c = durableDir(t, c, "/d")
				require.NoError(t, c.WriteFile("/d/f", []byte("data")))
				f := openFile(t, c, "/d/f", os.O_RDWR)
				require.NoError(t, tt.op(c, f), "works before the crash")
				require.NoError(t, c.WriteFile("/d/f", []byte("data")))
				kill.kill(c)
				assert.True(t, c.Frozen())
				err := tt.op(c, f)
				require.ErrorIs(t, err, vfs.ErrCrashed)
				img := c.CrashClean()
				assert.Equal(t, map[string]string{"f": "data"}, listing(t, img, "/d"), "the dead FS changed nothing")
			})
		}
	}
}

func TestCrashFS_Crash_Deterministic(t *testing.T) {
	c, _ := runWorkload(t, "overwrite", newRand(7))
	first, err := c.Crash(newRand(3)).ReadFile("/d/f")
	require.NoError(t, err)
	distinct := map[string]bool{}
	for seed := range uint64(30) {
		img, err := c.Crash(newRand(seed)).ReadFile("/d/f")
		require.NoError(t, err, "a dead FS can be crashed again")
		distinct[string(img)] = true
	}
	again, err := c.Crash(newRand(3)).ReadFile("/d/f")
	require.NoError(t, err)
	assert.Equal(t, first, again, "the same seed gives the same image")
	assert.Greater(t, len(distinct), 3, "different seeds give different images")
	clean1, err := c.CrashClean().ReadFile("/d/f")
	require.NoError(t, err)
	clean2, err := c.CrashClean().ReadFile("/d/f")
	require.NoError(t, err)
	assert.Equal(t, clean1, clean2)
}

func TestCrashFS_Crash_ImageIsLiveAndSynced(t *testing.T) {
	c, _ := runWorkload(t, "append", newRand(11))
	img := c.Crash(newRand(5))
	want, err := img.ReadFile("/d/f")
	require.NoError(t, err)
	f := openFile(t, img, "/d/f", os.O_RDWR)
	writeAt(t, f, "more", int64(len(want)))
	require.NoError(t, f.Close())
	again, err := img.CrashClean().ReadFile("/d/f")
	require.NoError(t, err)
	assert.Equal(t, want, again, "the image's content is synced; the unsynced write is lost")
}

func TestCrashFS_WriteFileReadFile(t *testing.T) {
	c := vfs.NewCrashFS()
	c = durableDir(t, c, "/d")
	f := openFile(t, c, "/d/f", rw)
	writeAt(t, f, "unsynced", 0)
	require.NoError(t, c.WriteFile("/d/f", []byte("corrupt")))
	assert.Equal(t, "corrupt", contents(t, f), "open files see the new content")
	assert.Zero(t, c.SyncCount(), "WriteFile is no sync point")

	b, err := c.ReadFile("/d/f")
	require.NoError(t, err)
	b[0] = 'X'
	b2, err := c.ReadFile("/d/f")
	require.NoError(t, err)
	assert.Equal(t, "corrupt", string(b2), "ReadFile returns a copy")

	assert.ErrorIs(t, c.WriteFile("/nodir/f", nil), fs.ErrNotExist)
	_, err = c.ReadFile("/d/nope")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	for seed := range uint64(100) {
		img := c.Crash(newRand(seed))
		assert.Equal(t, map[string]string{"f": "corrupt"}, listing(t, img, "/d"), "seed %d: WriteFile is durable", seed)
		assert.Equal(t, vfs.CrashNone, img.CrashModes()["/d/f"])
	}
}

// One goroutine appends and syncs while others read what it has written,
// then the FS crashes under them.
func TestCrashFS_ConcurrentReadersAndWriter(t *testing.T) {
	pattern := func(i int64) byte { return byte(i%251 + 1) }
	c := vfs.NewCrashFS()
	f := openFile(t, c, "f", rw)
	var written atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readErrs := make(chan error, 8)
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(uint64(r))
			p := make([]byte, 100)
			for {
				select {
				case <-stop:
					readErrs <- nil
					return
				default:
				}
				end := written.Load()
				if end < int64(len(p)) {
					continue
				}
				off := rng.Int64N(end - int64(len(p)) + 1)
				n, err := f.ReadAt(p, off)
				if errors.Is(err, vfs.ErrCrashed) {
					continue
				}
				if err != nil || n != len(p) {
					readErrs <- err
					return
				}
				for i := range p {
					if p[i] != pattern(off+int64(i)) {
						readErrs <- errors.New("read a byte that was not written")
						return
					}
				}
			}
		}()
	}
	buf := make([]byte, 1000)
	for chunk := int64(0); chunk < 200; chunk++ {
		off := chunk * int64(len(buf))
		for i := range buf {
			buf[i] = pattern(off + int64(i))
		}
		_, err := f.WriteAt(buf, off)
		require.NoError(t, err)
		written.Store(off + int64(len(buf)))
		if chunk%10 == 0 {
			require.NoError(t, f.Sync())
			require.NoError(t, c.SyncDir("."))
		}
	}
	img := c.Crash(newRand(1)) // with readers still running
	close(stop)
	wg.Wait()
	for range 8 {
		require.NoError(t, <-readErrs)
	}
	got, err := img.ReadFile("f")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(got), 191_000, "everything synced survives")
	for i := range 191_000 {
		require.Equal(t, pattern(int64(i)), got[i], "byte %d", i)
	}
}

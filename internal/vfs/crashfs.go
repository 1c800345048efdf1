package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// ErrCrashed is wrapped by the error of every operation on a CrashFS, and on
// any File or lock taken from it, once the FS has crashed (Crash, CrashClean)
// or frozen at an armed sync point (CrashAtSync).
var ErrCrashed = errors.New("vfs: file system has crashed")

// The units a crash tears and loses data in.
const (
	crashSectorSize = 512
	crashPageSize   = 4096
)

var (
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errBadFD    = errors.New("bad file descriptor")
	errNegative = fmt.Errorf("negative offset or size: %w", fs.ErrInvalid)
)

// CrashMode names what a crash did to the bytes of a file written since its
// last File.Sync.
type CrashMode int

// The crash modes. Zeroed bytes are bytes that revert to the file's synced
// content: zeros beyond the synced size, which is all of them for a file
// only appended to since its last sync.
const (
	// CrashNone keeps exactly the synced content and size.
	CrashNone CrashMode = iota
	// CrashPrefix keeps some of the unsynced writes: for a file appended to,
	// a random-length non-empty prefix of the unsynced tail; for a file
	// truncated or rewritten, the current size with each 512-byte sector
	// taken at random from the current or the synced content.
	CrashPrefix
	// CrashTornSector keeps every unsynced write but tears one 512-byte
	// sector holding unsynced bytes: it keeps a random-length prefix of its
	// unsynced bytes and the rest of the sector reverts (to zeros, for
	// appended bytes). The tear loses at least the sector's last
	// TornSectorLoss bytes: a device that kept all but a sector's last few
	// bytes would leave data that no reader can tell from a frame whose last
	// bytes decayed, and the store reports that as corruption, not as a torn
	// write.
	CrashTornSector
	// CrashZeroedPages keeps every unsynced write but zeroes the unsynced
	// bytes of one or more 4096-byte pages holding unsynced bytes.
	CrashZeroedPages
)

// TornSectorLoss is the fewest bytes a torn sector loses at its end.
const TornSectorLoss = 16

// String returns the mode's name.
func (m CrashMode) String() string {
	switch m {
	case CrashNone:
		return "none"
	case CrashPrefix:
		return "prefix"
	case CrashTornSector:
		return "torn-sector"
	case CrashZeroedPages:
		return "zeroed-pages"
	}
	return fmt.Sprintf("CrashMode(%d)", int(m))
}

// CrashFS is an in-memory FS that simulates power loss, for tests. Each file
// has its current content, which reads see, and its content as of its last
// File.Sync; each directory has its current listing, which ReadDir sees, and
// its durable listing as of its last SyncDir. Crash turns that state into the
// disk image a reboot could see, as a new CrashFS, and kills the old one.
// A directory made by MkdirAll survives a crash only once SyncDir has been
// called on its parent (the roots always survive), as with files.
//
// A CrashFS, and every File and lock taken from it, is safe for concurrent
// use: one mutex serializes all operations, so each is atomic.
type CrashFS struct {
	mu      sync.Mutex
	dirs    map[string]*crashDir
	locks   map[string]bool      // names locked now
	syncs   int                  // File.Sync and SyncDir calls that took effect
	crashAt int                  // sync call that freezes the FS; 0: none
	frozen  bool                 // no operation takes effect any more
	modes   map[string]CrashMode // set on an image: each file's crash mode
}

type crashDir struct {
	cur     map[string]*crashInode // what ReadDir sees
	durable map[string]*crashInode // as of the last SyncDir
	listed  bool                   // its entry in its parent is durable
}

type crashInode struct {
	data    []byte // what reads see
	synced  []byte // as of the last Sync; never aliases data
	dirtyLo int    // no byte below it has changed since the last Sync
}

var _ FS = (*CrashFS)(nil)

// NewCrashFS returns an empty CrashFS: no files, and only the root
// directories ("." and "/") exist.
func NewCrashFS() *CrashFS {
	return &CrashFS{dirs: map[string]*crashDir{}, locks: map[string]bool{}}
}

// stopped returns the error for an operation attempted on a frozen or
// crashed FS, or nil. Called with c.mu held.
func (c *CrashFS) stopped(op, path string) error {
	if c.frozen {
		return &fs.PathError{Op: op, Path: path, Err: ErrCrashed}
	}
	return nil
}

// dir returns the directory at the clean path p, or nil. The root
// directories always exist. Called with c.mu held.
func (c *CrashFS) dir(p string) *crashDir {
	d := c.dirs[p]
	if d == nil && filepath.Dir(p) == p {
		d = newCrashDir()
		c.dirs[p] = d
	}
	return d
}

func newCrashDir() *crashDir {
	return &crashDir{cur: map[string]*crashInode{}, durable: map[string]*crashInode{}}
}

// syncPoint is called when a sync call is about to take effect: it reports
// false, and freezes the FS, if this is the armed sync call. Called with
// c.mu held.
func (c *CrashFS) syncPoint() bool {
	if c.crashAt > 0 && c.syncs+1 == c.crashAt {
		c.frozen = true
		return false
	}
	c.syncs++
	return true
}

// OpenFile opens name as os.OpenFile does: O_CREATE creates a missing file
// (listed at once in the directory's current listing, durably only after
// SyncDir), O_EXCL with O_CREATE fails with an error wrapping fs.ErrExist if
// it exists, O_TRUNC empties it, and without O_CREATE a missing file is an
// error wrapping fs.ErrNotExist. The access mode (O_RDONLY, O_WRONLY,
// O_RDWR) limits what the File may do; perm is ignored.
func (c *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("open", name); err != nil {
		return nil, err
	}
	p := filepath.Clean(name)
	if c.dirs[p] != nil || filepath.Dir(p) == p {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errIsDir}
	}
	d := c.dir(filepath.Dir(p))
	if d == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	base := filepath.Base(p)
	ino := d.cur[base]
	switch {
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil:
		ino = &crashInode{dirtyLo: math.MaxInt}
		d.cur[base] = ino
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case flag&os.O_TRUNC != 0:
		ino.truncate(0)
	}
	return &crashFile{fs: c, name: name, ino: ino, flag: flag}, nil
}

// Remove removes the file name from its directory's current listing at once;
// its durable listing keeps the file until SyncDir. Files already open stay
// usable. Removing a missing file is an error wrapping fs.ErrNotExist;
// directories cannot be removed.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("remove", name); err != nil {
		return err
	}
	p := filepath.Clean(name)
	if c.dirs[p] != nil || filepath.Dir(p) == p {
		return &fs.PathError{Op: "remove", Path: name, Err: errIsDir}
	}
	d := c.dir(filepath.Dir(p))
	if d == nil || d.cur[filepath.Base(p)] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.cur, filepath.Base(p))
	return nil
}

// ReadDir returns the sorted names in dir's current listing: its files and
// its subdirectories. An unknown directory is an error wrapping
// fs.ErrNotExist.
func (c *CrashFS) ReadDir(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("readdir", dir); err != nil {
		return nil, err
	}
	p := filepath.Clean(dir)
	d := c.dir(p)
	if d == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	names := slices.Collect(maps.Keys(d.cur))
	for sub := range c.dirs {
		if sub != p && filepath.Dir(sub) == p {
			names = append(names, filepath.Base(sub))
		}
	}
	slices.Sort(names)
	return names, nil
}

// MkdirAll creates dir and any missing parents. A new directory survives a
// crash only after SyncDir on its parent. A file in the way is an error;
// perm is ignored.
func (c *CrashFS) MkdirAll(dir string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("mkdir", dir); err != nil {
		return err
	}
	var chain []string // dir and its missing ancestors, deepest first
	for p := filepath.Clean(dir); c.dir(p) == nil; p = filepath.Dir(p) {
		chain = append(chain, p)
	}
	for _, p := range slices.Backward(chain) {
		if c.dirs[filepath.Dir(p)].cur[filepath.Base(p)] != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: errNotDir}
		}
		c.dirs[p] = newCrashDir()
	}
	return nil
}

// SyncDir makes dir's current listing durable: files created in it since
// survive a crash, files removed from it since stay gone. It is a sync point
// (see CrashAtSync). An unknown directory is an error wrapping
// fs.ErrNotExist.
func (c *CrashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("fsync", dir); err != nil {
		return err
	}
	d := c.dir(filepath.Clean(dir))
	if d == nil {
		return &fs.PathError{Op: "fsync", Path: dir, Err: fs.ErrNotExist}
	}
	if !c.syncPoint() {
		return &fs.PathError{Op: "fsync", Path: dir, Err: ErrCrashed}
	}
	d.durable = maps.Clone(d.cur)
	for sub, sd := range c.dirs {
		if sub != filepath.Clean(dir) && filepath.Dir(sub) == filepath.Clean(dir) {
			sd.listed = true
		}
	}
	return nil
}

// Lock takes the lock on name, which needs name's directory to exist but
// creates no file. It returns an error wrapping ErrLocked while another
// holder has the lock. Closing the returned Closer releases the lock, and so
// does a crash: the image Crash returns has no lock held.
func (c *CrashFS) Lock(name string) (io.Closer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("lock", name); err != nil {
		return nil, err
	}
	p := filepath.Clean(name)
	if c.dir(filepath.Dir(p)) == nil {
		return nil, &fs.PathError{Op: "lock", Path: name, Err: fs.ErrNotExist}
	}
	if c.locks[p] {
		return nil, &fs.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	c.locks[p] = true
	return &crashLock{fs: c, name: p}, nil
}

// SyncCount returns how many sync calls (File.Sync and SyncDir together)
// have taken effect since the FS was created.
func (c *CrashFS) SyncCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncs
}

// CrashAtSync arms the FS to freeze when the nth sync call (File.Sync and
// SyncDir together, counted from the FS's creation, 1-based) begins: that
// call takes no effect, and it and every later operation fail with
// ErrCrashed, as if the power went at that moment. Crash or CrashClean then
// gives the image. n <= 0 disarms; n <= SyncCount() panics, as that point
// has passed.
func (c *CrashFS) CrashAtSync(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && n <= c.syncs {
		panic(fmt.Sprintf("vfs: CrashAtSync(%d) after %d syncs", n, c.syncs))
	}
	c.crashAt = max(n, 0)
}

// CrashAtSyncAfter arms the FS to freeze at the k-th sync call from now
// (k >= 1): CrashAtSync(SyncCount()+k), read and armed in one step, so that
// a sync racing the call cannot slip past the armed point.
func (c *CrashFS) CrashAtSyncAfter(k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashAt = c.syncs + max(k, 1)
}

// Frozen reports whether the FS has stopped taking operations: an armed
// sync point was reached, or the FS crashed.
func (c *CrashFS) Frozen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frozen
}

// Crash simulates power loss. It kills c (every later operation on c, its
// Files and its locks fails with ErrCrashed) and returns a new, live CrashFS
// holding a disk image a reboot could see, with no lock held and every file
// synced:
//
//   - A file survives if and only if its directory's durable listing has it:
//     a file created since the last SyncDir is gone; one removed since comes
//     back.
//   - Each surviving file keeps its synced content, except bytes changed
//     since by a write or truncate, and gets one CrashMode at random, chosen
//     uniformly among those that can apply: CrashNone when nothing changed
//     since the last Sync; CrashTornSector and CrashZeroedPages only when
//     some byte below the current size changed.
//   - No byte is invented: every byte of the image is, at its offset, the
//     synced byte, the current byte, or zero past the synced size.
//
// CrashModes on the image reports each file's mode. The image is a function
// of c's state and the numbers rng yields. Crash may be called again on a
// crashed or frozen FS: each call draws another image of the same state.
func (c *CrashFS) Crash(rng *rand.Rand) *CrashFS {
	return c.crash(rng)
}

// CrashClean is Crash with no unsynced byte surviving: every surviving file
// holds exactly its synced content, and its mode is CrashNone.
func (c *CrashFS) CrashClean() *CrashFS {
	return c.crash(nil)
}

func (c *CrashFS) crash(rng *rand.Rand) *CrashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = true
	img := NewCrashFS()
	img.modes = map[string]CrashMode{}
	// Sorted, so that rng is drawn from in the same order every time.
	for _, p := range slices.Sorted(maps.Keys(c.dirs)) {
		if !c.survives(p) {
			continue
		}
		d := c.dirs[p]
		nd := newCrashDir()
		nd.listed = true
		img.dirs[p] = nd
		for _, base := range slices.Sorted(maps.Keys(d.durable)) {
			data, mode := d.durable[base].image(rng)
			ino := &crashInode{data: data, synced: slices.Clone(data), dirtyLo: math.MaxInt}
			nd.cur[base], nd.durable[base] = ino, ino
			img.modes[filepath.Join(p, base)] = mode
		}
	}
	return img
}

// survives reports whether directory p is in the image of a crash: a root,
// or listed durably in a parent that survives. Called with c.mu held.
func (c *CrashFS) survives(p string) bool {
	for ; filepath.Dir(p) != p; p = filepath.Dir(p) {
		if d := c.dirs[p]; d == nil || !d.listed {
			return false
		}
	}
	return true
}

// CrashModes returns, for each file of an image made by Crash or
// CrashClean, keyed by its clean path, the mode the crash applied to it. It
// returns nil for an FS not made by a crash.
func (c *CrashFS) CrashModes() map[string]CrashMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.modes)
}

// ReadFile returns a copy of the current content of the file name, for
// tests. A missing file is an error wrapping fs.ErrNotExist.
func (c *CrashFS) ReadFile(name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("read", name); err != nil {
		return nil, err
	}
	p := filepath.Clean(name)
	d := c.dir(filepath.Dir(p))
	if d == nil || d.cur[filepath.Base(p)] == nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(d.cur[filepath.Base(p)].data), nil
}

// WriteFile sets the content of the file name to a copy of data, creating
// it if needed, and makes it durable at once: synced, in its directory's
// durable listing, and its directories in theirs, as if by File.Sync and
// SyncDir, though neither is counted
// as a sync point. It is for building images in tests. The directory must
// exist: if not, the error wraps fs.ErrNotExist. Files open on name see the
// new content.
func (c *CrashFS) WriteFile(name string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped("write", name); err != nil {
		return err
	}
	p := filepath.Clean(name)
	if c.dirs[p] != nil || filepath.Dir(p) == p {
		return &fs.PathError{Op: "write", Path: name, Err: errIsDir}
	}
	d := c.dir(filepath.Dir(p))
	if d == nil {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrNotExist}
	}
	base := filepath.Base(p)
	ino := d.cur[base]
	if ino == nil {
		ino = &crashInode{}
		d.cur[base] = ino
	}
	ino.data, ino.synced, ino.dirtyLo = slices.Clone(data), slices.Clone(data), math.MaxInt
	d.durable[base] = ino
	for q := filepath.Dir(p); filepath.Dir(q) != q; q = filepath.Dir(q) {
		c.dirs[q].listed = true // the file's directories are durable too
	}
	return nil
}

// truncate sets the size, zero-extending.
func (ino *crashInode) truncate(size int) {
	ino.dirtyLo = min(ino.dirtyLo, size, len(ino.data))
	if size <= len(ino.data) {
		ino.data = ino.data[:size]
		return
	}
	ino.data = append(ino.data, make([]byte, size-len(ino.data))...)
}

func (ino *crashInode) writeAt(p []byte, off int) {
	if end := off + len(p); end > len(ino.data) {
		ino.truncate(end)
	}
	copy(ino.data[off:], p)
	ino.dirtyLo = min(ino.dirtyLo, off)
}

func (ino *crashInode) sync() {
	k := min(ino.dirtyLo, len(ino.synced), len(ino.data))
	ino.synced = append(ino.synced[:k], ino.data[k:]...)
	ino.dirtyLo = math.MaxInt
}

// image returns the content a crash leaves of the file, and the mode it
// applied; with a nil rng, its synced content.
func (ino *crashInode) image(rng *rand.Rand) ([]byte, CrashMode) {
	data, synced := ino.data, ino.synced
	ls, ld := len(synced), len(data)
	// lo: the bytes below it are the same in data and synced.
	lo := min(ino.dirtyLo, ls, ld)
	for lo < min(ls, ld) && data[lo] == synced[lo] {
		lo++
	}
	if rng == nil || (lo == ls && lo == ld) {
		return slices.Clone(synced), CrashNone
	}
	modes := []CrashMode{CrashNone, CrashPrefix}
	if lo < ld {
		modes = append(modes, CrashTornSector, CrashZeroedPages)
	}
	mode := modes[rng.IntN(len(modes))]
	if mode == CrashNone {
		return slices.Clone(synced), mode
	}
	if mode == CrashPrefix && lo == ls {
		// Appended to: a prefix of the tail reached the disk.
		return slices.Clone(data[:ls+1+rng.IntN(ld-ls)]), mode
	}
	img := slices.Clone(data)
	// revert sets img[from:to] back to its synced content, zeros past it.
	revert := func(from, to int) {
		for i := from; i < to; i++ {
			if i < ls {
				img[i] = synced[i]
			} else {
				img[i] = 0
			}
		}
	}
	switch mode {
	case CrashPrefix: // rewritten or truncated: sector by sector
		for s := lo / crashSectorSize * crashSectorSize; s < ld; s += crashSectorSize {
			if rng.IntN(2) == 0 {
				revert(max(s, lo), min(s+crashSectorSize, ld))
			}
		}
	case CrashTornSector:
		first, last := lo/crashSectorSize, (ld-1)/crashSectorSize
		s := (first + rng.IntN(last-first+1)) * crashSectorSize
		from, to := max(s, lo), min(s+crashSectorSize, ld)
		revert(from+rng.IntN(max(1, to-from-TornSectorLoss+1)), to)
	case CrashZeroedPages:
		first, last := lo/crashPageSize, (ld-1)/crashPageSize
		n := last - first + 1
		for _, i := range rng.Perm(n)[:1+rng.IntN(n)] {
			s := (first + i) * crashPageSize
			revert(max(s, lo), min(s+crashPageSize, ld))
		}
	}
	return img, mode
}

// crashFile is an open file of a CrashFS; its fields but fs are guarded by
// fs.mu.
type crashFile struct {
	fs     *CrashFS
	name   string
	ino    *crashInode
	flag   int
	closed bool
}

// check returns the error for op on f, if any: crashed, closed, or (for
// reads and writes) not allowed by the access mode. Called with f.fs.mu held.
func (f *crashFile) check(op string, read, write bool) error {
	if err := f.fs.stopped(op, f.name); err != nil {
		return err
	}
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	acc := f.flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if (read && acc == os.O_WRONLY) || (write && acc == os.O_RDONLY) {
		return &fs.PathError{Op: op, Path: f.name, Err: errBadFD}
	}
	return nil
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", true, false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.name, Err: errNegative}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", false, true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, errors.New("os: invalid use of WriteAt on file opened with O_APPEND")
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "writeat", Path: f.name, Err: errNegative}
	}
	if len(p) > 0 {
		f.ino.writeAt(p, int(off))
	}
	return len(p), nil
}

func (f *crashFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", false, false); err != nil {
		return err
	}
	if !f.fs.syncPoint() {
		return &fs.PathError{Op: "sync", Path: f.name, Err: ErrCrashed}
	}
	f.ino.sync()
	return nil
}

func (f *crashFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", false, true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: errNegative}
	}
	f.ino.truncate(int(size))
	return nil
}

func (f *crashFile) Allocate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("allocate", false, true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "allocate", Path: f.name, Err: errNegative}
	}
	if int(size) > len(f.ino.data) {
		f.ino.truncate(int(size))
	}
	return nil
}

func (f *crashFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat", false, false); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *crashFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close", false, false); err != nil {
		return err
	}
	f.closed = true
	return nil
}

// crashLock is a lock held on a CrashFS; closed is guarded by fs.mu.
type crashLock struct {
	fs     *CrashFS
	name   string
	closed bool
}

func (l *crashLock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if err := l.fs.stopped("unlock", l.name); err != nil {
		return err
	}
	if l.closed {
		return &fs.PathError{Op: "unlock", Path: l.name, Err: os.ErrClosed}
	}
	l.closed = true
	delete(l.fs.locks, l.name)
	return nil
}

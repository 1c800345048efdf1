package vfs

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Op names a kind of file-system operation that FaultFS can fail.
type Op int

// The operations FaultFS counts and can fail.
const (
	OpWrite Op = iota
	OpSync
	OpOpen
	OpTruncate
	OpRemove
	OpSyncDir
	OpAllocate
	numOps
)

// FaultFS wraps an FS and fails chosen operations, for tests. A FaultFS is
// safe for concurrent use.
type FaultFS struct {
	FS FS

	mu     sync.Mutex // guards the fields below
	counts [numOps]int
	faults [numOps]fault
	hooks  [numOps]func()

	read atomic.Int64 // bytes returned by ReadAt, all files together
}

type fault struct {
	nth        int // 1-based index of the operation that fails; 0: none
	err        error
	persistent bool // fail every operation of the kind from nth on
}

// NewFaultFS returns a FaultFS over fs that fails nothing until told to.
func NewFaultFS(fs FS) *FaultFS { return &FaultFS{FS: fs} }

// Fail makes the nth operation of kind op from now on return err (n >= 1);
// with persistent, every later one of that kind fails too.
func (f *FaultFS) Fail(op Op, n int, err error, persistent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = fault{nth: f.counts[op] + n, err: err, persistent: persistent}
}

// Count returns how many operations of kind op have been attempted.
func (f *FaultFS) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// OnCall makes fn run at the start of every later operation of kind op,
// before any injected fault; nil removes it. fn runs on the goroutine making
// the call, without FaultFS's lock held.
func (f *FaultFS) OnCall(op Op, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks[op] = fn
}

// BytesRead returns how many bytes ReadAt has returned, over all files.
func (f *FaultFS) BytesRead() int64 { return f.read.Load() }

// check counts one operation of kind op and returns the error to inject,
// if any.
func (f *FaultFS) check(op Op) error {
	f.mu.Lock()
	hook := f.hooks[op]
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[op]++
	ft := f.faults[op]
	if ft.nth == 0 {
		return nil
	}
	if f.counts[op] == ft.nth || (ft.persistent && f.counts[op] > ft.nth) {
		return ft.err
	}
	return nil
}

// OpenFile opens a file whose writes, syncs and truncates FaultFS can fail.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := f.check(OpOpen); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

// Remove removes a file, unless an injected fault fails it.
func (f *FaultFS) Remove(name string) error {
	if err := f.check(OpRemove); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return f.FS.Remove(name)
}

// SyncDir syncs a directory, unless an injected fault fails it.
func (f *FaultFS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return f.FS.SyncDir(dir)
}

// ReadDir, MkdirAll and Lock pass through: no test has needed them to fail.
func (f *FaultFS) ReadDir(dir string) ([]string, error)        { return f.FS.ReadDir(dir) }
func (f *FaultFS) MkdirAll(dir string, perm os.FileMode) error { return f.FS.MkdirAll(dir, perm) }
func (f *FaultFS) Lock(name string) (io.Closer, error)         { return f.FS.Lock(name) }

type faultFile struct {
	File
	fs   *FaultFS
	name string
}

// WriteAt fails an injected write halfway, leaving the first half of p in
// the file, as a real short write (ENOSPC mid-buffer) does.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite); err != nil {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.check(OpSync); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
	}
	return f.File.Sync()
}

func (f *faultFile) Allocate(size int64) error {
	if err := f.fs.check(OpAllocate); err != nil {
		return &os.PathError{Op: "allocate", Path: f.name, Err: err}
	}
	return f.File.Allocate(size)
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate); err != nil {
		return &os.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	return f.File.Truncate(size)
}

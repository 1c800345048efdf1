package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/go-eventstore/eventstore/internal/record"
	"github.com/go-eventstore/eventstore/internal/vfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gateFS wraps an FS so a test can park the writer inside fdatasync: while
// the gate is closed, every Sync signals entered and waits for release.
type gateFS struct {
	vfs.FS
	mu      sync.Mutex
	closed  bool
	entered chan struct{}
	release chan struct{}
}

func newGateFS(fs vfs.FS) *gateFS {
	return &gateFS{FS: fs, entered: make(chan struct{}, 1024), release: make(chan struct{})}
}

// hold makes the next syncs block until open is called.
func (g *gateFS) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.release = make(chan struct{})
}

// open lets blocked and later syncs through.
func (g *gateFS) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.release)
	}
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &gateFile{File: f, gate: g}, nil
}

type gateFile struct {
	vfs.File
	gate *gateFS
}

func (f *gateFile) Sync() error {
	f.gate.mu.Lock()
	closed, release := f.gate.closed, f.gate.release
	f.gate.mu.Unlock()
	if closed {
		f.gate.entered <- struct{}{}
		<-release
	}
	return f.File.Sync()
}

// openWithFS opens a store in a fresh directory over fs and closes it at the
// end of the test.
func openWithFS(t *testing.T, fs vfs.FS, opts *Options) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.fs = fs
	s, err := Open(dir, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func ev(data string) EventData { return EventData{Type: "test", Data: []byte(data)} }

// waitQueued waits until the writer's channel holds n requests.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.w.reqs) == n }, 10*time.Second, time.Millisecond)
}

// appendAsync runs an Append in a goroutine and returns its outcome channel.
func appendAsync(ctx context.Context, s *Store, stream string, exp ExpectedVersion, events ...EventData) <-chan result {
	ch := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, stream, exp, events...)
		ch <- result{res: res, err: err}
	}()
	return ch
}

// parkWriter makes the writer block in the fsync of an Append to stream
// "park", and returns that Append's outcome channel.
func parkWriter(t *testing.T, s *Store, gate *gateFS) <-chan result {
	t.Helper()
	gate.hold()
	ch := appendAsync(context.Background(), s, "park", Any, ev("park"))
	select {
	case <-gate.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("writer never reached fsync")
	}
	return ch
}

// Prototype AC-3, at scale: concurrent Any appends get unique, gapless positions.
func TestWriter_ConcurrentAppends_GaplessAndBatched(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), nil)
	const writers, perWriter, streams = 200, 10, 37
	var wg sync.WaitGroup
	results := make([][]AppendResult, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				stream := fmt.Sprintf("s-%d", (g*perWriter+i)%streams)
				res, err := s.Append(context.Background(), stream, Any, ev(fmt.Sprintf("%d/%d", g, i)))
				if !assert.NoError(t, err) {
					return
				}
				results[g] = append(results[g], res)
			}
		}()
	}
	wg.Wait()

	seen := make(map[uint64]bool)
	for _, rs := range results {
		for _, r := range rs {
			assert.False(t, seen[r.Position], "position %d given twice", r.Position)
			seen[r.Position] = true
		}
	}
	require.Len(t, seen, writers*perWriter)
	for p := range uint64(writers * perWriter) {
		require.True(t, seen[p], "position %d missing", p)
	}

	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	versions := make(map[string]uint64)
	for i, e := range all {
		require.Equal(t, uint64(i), e.Position)
		require.Equal(t, versions[e.Stream], e.StreamVersion, "stream %s", e.Stream)
		versions[e.Stream]++
	}
	// Each caller got back the position its own event was written at.
	for g, rs := range results {
		for i, r := range rs {
			assert.Equal(t, fmt.Sprintf("%d/%d", g, i), string(all[r.Position].Data))
		}
	}
	st := s.Stats()
	assert.Equal(t, uint64(writers*perWriter), st.Appends)
	assert.Less(t, st.Syncs, st.Appends, "group commit should share fsyncs")
	t.Logf("appends=%d batches=%d syncs=%d", st.Appends, st.Batches, st.Syncs)
}

func TestWriter_Batch_SharesOneFsync(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, _ := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	const n = 50
	var chans []<-chan result
	for i := range n {
		chans = append(chans, appendAsync(context.Background(), s, fmt.Sprintf("s-%d", i%5), Any, ev("x")))
	}
	waitQueued(t, s, n)
	syncsBefore := s.Stats().Syncs
	gate.open()
	require.NoError(t, (<-parked).err)
	for _, ch := range chans {
		require.NoError(t, (<-ch).err)
	}
	st := s.Stats()
	assert.Equal(t, syncsBefore+1, st.Syncs, "the 50 queued appends should commit with one fsync")
	assert.Equal(t, uint64(n+1), st.Events)
}

func TestWriter_Batch_RejectedRequestAnsweredAlone(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, _ := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	good1 := appendAsync(context.Background(), s, "a", NoStream, ev("a0"))
	waitQueued(t, s, 1)
	bad := appendAsync(context.Background(), s, "a", NoStream, ev("a0-again"))
	waitQueued(t, s, 2)
	good2 := appendAsync(context.Background(), s, "b", NoStream, ev("b0"))
	waitQueued(t, s, 3)
	gate.open()
	require.NoError(t, (<-parked).err)
	r1 := <-good1
	require.NoError(t, r1.err)
	rb := <-bad
	var wev *WrongExpectedVersionError
	require.ErrorAs(t, rb.err, &wev, "the batch's own earlier request counts")
	assert.Equal(t, int64(0), wev.Actual)
	require.NoError(t, (<-good2).err)
	evs, err := s.ReadStream(context.Background(), "a", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "a0", string(evs[0].Data))
}

func TestWriter_WriteFailure_PoisonsStore(t *testing.T) {
	for _, op := range []struct {
		name string
		op   vfs.Op
	}{{"write", vfs.OpWrite}, {"fdatasync", vfs.OpSync}} {
		t.Run(op.name, func(t *testing.T) {
			ffs := vfs.NewFaultFS(vfs.OS())
			s, dir := openWithFS(t, ffs, nil)
			ctx := context.Background()
			for i := range 5 {
				_, err := s.Append(ctx, "ok", Any, ev(fmt.Sprint(i)))
				require.NoError(t, err)
			}
			ffs.Fail(op.op, 1, syscall.EIO, false) // fails once; the store must not try again
			_, err := s.Append(ctx, "ok", Any, ev("lost"))
			require.ErrorIs(t, err, ErrStorageFailed)
			require.ErrorIs(t, err, syscall.EIO)
			var se *StorageError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, op.name, se.Op)
			syncs := ffs.Count(vfs.OpSync)

			// Sticky: the next append fails too, though the fault is spent.
			_, err = s.Append(ctx, "ok", Any, ev("after"))
			require.ErrorIs(t, err, ErrStorageFailed)
			assert.Equal(t, syncs, ffs.Count(vfs.OpSync), "fsync must never be retried after a failure")
			require.ErrorIs(t, s.Stats().Err, syscall.EIO)

			// Reads keep working and show only acknowledged events.
			evs, err := s.ReadStream(ctx, "ok", 0, 0)
			require.NoError(t, err)
			assert.Len(t, evs, 5)
			require.NoError(t, s.Close())

			// Reopening recovers every acknowledged event.
			s2, err := Open(dir, nil)
			require.NoError(t, err)
			defer s2.Close()
			evs, err = s2.ReadStream(ctx, "ok", 0, 0)
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(evs), 5)
			for i := range 5 {
				assert.Equal(t, fmt.Sprint(i), string(evs[i].Data))
			}
			_, err = s2.Append(ctx, "ok", Any, ev("again"))
			require.NoError(t, err)
		})
	}
}

func TestWriter_WriteFailure_ReachesWholeBatch(t *testing.T) {
	gate := newGateFS(vfs.OS())
	ffs := vfs.NewFaultFS(gate)
	s, _ := openWithFS(t, ffs, nil)
	parked := parkWriter(t, s, gate)
	var chans []<-chan result
	for i := range 10 {
		chans = append(chans, appendAsync(context.Background(), s, fmt.Sprint("s", i), Any, ev("x")))
	}
	waitQueued(t, s, 10)
	ffs.Fail(vfs.OpSync, 1, syscall.EIO, false) // the parked sync goes through; the batch's fails
	gate.open()
	// The parked append's fsync already passed its fault check before the fault was set.
	require.NoError(t, (<-parked).err)
	for _, ch := range chans {
		require.ErrorIs(t, (<-ch).err, ErrStorageFailed)
	}
	assert.Equal(t, uint64(1), s.Stats().Events, "a failed batch is never published")
	_, err := s.Append(context.Background(), "later", Any, ev("x"))
	require.ErrorIs(t, err, ErrStorageFailed)
}

// Prototype AC-9a and AC-9b: an oversized event is refused and the writer
// is not poisoned by it.
func TestWriter_RequestError_DoesNotPoison(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{MaxEventSize: 1024})
	ctx := context.Background()
	_, err := s.Append(ctx, "s", Any, EventData{Type: "big", Data: make([]byte, 2048)})
	require.ErrorIs(t, err, ErrEventTooLarge)
	_, err = s.Append(ctx, "s", Exact(7), ev("x"))
	require.ErrorIs(t, err, ErrWrongExpectedVersion)
	res, err := s.Append(ctx, "s", Any, ev("ok"))
	require.NoError(t, err)
	assert.Equal(t, AppendResult{Position: 0, StreamVersion: 0}, res)
	assert.NoError(t, s.Stats().Err)
}

func TestWriter_Context_CancelledBeforeSend(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Append(ctx, "s", Any, ev("x"))
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown)
	assert.Equal(t, uint64(0), s.Stats().Events)
}

func TestWriter_Context_CancelledWhileQueued_NothingWritten(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, _ := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	ctx, cancel := context.WithCancel(context.Background())
	queued := appendAsync(ctx, s, "s", Any, ev("cancelled"))
	waitQueued(t, s, 1)
	cancel()
	r := <-queued
	require.ErrorIs(t, r.err, context.Canceled)
	assert.NotErrorIs(t, r.err, ErrOutcomeUnknown, "the writer had not taken it")
	gate.open()
	require.NoError(t, (<-parked).err)
	// A later append goes through the same writer; the cancelled one never lands.
	_, err := s.Append(context.Background(), "s", Any, ev("after"))
	require.NoError(t, err)
	evs, err := s.ReadStream(context.Background(), "s", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "after", string(evs[0].Data))
}

func TestWriter_Context_CancelledAfterTaken_OutcomeUnknownThenRetry(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, _ := openWithFS(t, gate, nil)
	gate.hold()
	ctx, cancel := context.WithCancel(context.Background())
	e := EventData{ID: NewEventID(), Type: "t", Data: []byte("once")}
	taken := appendAsync(ctx, s, "s", NoStream, e)
	<-gate.entered // the writer has taken it and is in its fsync
	cancel()
	r := <-taken
	require.ErrorIs(t, r.err, ErrOutcomeUnknown)
	require.ErrorIs(t, r.err, context.Canceled)
	gate.open()

	res, err := s.Append(context.Background(), "s", NoStream, e)
	require.NoError(t, err, "a same-ID retry settles the outcome")
	assert.Equal(t, AppendResult{Position: 0, StreamVersion: 0}, res)
	evs, err := s.ReadStream(context.Background(), "s", 0, 0)
	require.NoError(t, err)
	assert.Len(t, evs, 1, "the retry wrote nothing")
}

// Prototype AC-8: a full channel applies backpressure.
func TestWriter_Backpressure_FullChannelBlocks(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, _ := openWithFS(t, gate, &Options{QueueSize: 1})
	parked := parkWriter(t, s, gate)
	queued := appendAsync(context.Background(), s, "s", Any, ev("queued"))
	waitQueued(t, s, 1)
	require.Equal(t, cap(s.w.reqs), len(s.w.reqs), "channel is full")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Append(ctx, "s", Any, ev("blocked"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "it was never queued")

	gate.open()
	require.NoError(t, (<-parked).err)
	require.NoError(t, (<-queued).err)
	evs, err := s.ReadStream(context.Background(), "s", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "queued", string(evs[0].Data))
}

// Prototype AC-7: shutdown answers everything and returns promptly; goleak in
// TestMain checks no goroutine survives.
func TestWriter_Close_WithAppendsInFlight(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, dir := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	var chans []<-chan result
	for i := range 20 {
		chans = append(chans, appendAsync(context.Background(), s, "s", Any, ev(fmt.Sprint(i))))
	}
	waitQueued(t, s, 20)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	require.Eventually(t, func() bool {
		select {
		case <-s.w.quit:
			return true
		default:
			return false
		}
	}, 10*time.Second, time.Millisecond)
	gate.open()
	require.NoError(t, <-closed)
	require.NoError(t, (<-parked).err, "the batch in its fsync commits")
	committed := 1
	for _, ch := range chans {
		r := <-ch
		if r.err == nil {
			committed++
			continue
		}
		require.ErrorIs(t, r.err, ErrClosed)
	}
	require.NoError(t, s.Close(), "a second Close returns nil")
	_, err := s.Append(context.Background(), "s", Any, ev("late"))
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.ReadAll(context.Background(), 0, 0)
	require.ErrorIs(t, err, ErrClosed)

	s2, err := Open(dir, nil)
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, uint64(committed), s2.Stats().Events, "exactly the acknowledged appends are on disk")
}

func TestWriter_Readers_NeverSeeHalfABatch(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096})
	ctx := context.Background()
	const size = 5
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]EventData, size)
				for k := range batch {
					batch[k] = ev(fmt.Sprintf("%d-%d-%d", g, i, k))
				}
				_, err := s.Append(ctx, fmt.Sprint("g", g), Any, batch...)
				if !assert.NoError(t, err) {
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	checks := 0
	for time.Now().Before(deadline) {
		all, err := s.ReadAll(ctx, 0, 0)
		require.NoError(t, err)
		require.Zero(t, len(all)%size, "ReadAll saw part of an Append")
		for i, e := range all {
			require.Equal(t, uint64(i), e.Position)
		}
		evs, err := s.ReadStream(ctx, "g3", 0, 0)
		require.NoError(t, err)
		require.Zero(t, len(evs)%size, "ReadStream saw part of an Append")
		checks++
	}
	close(stop)
	wg.Wait()
	require.Positive(t, s.Stats().Events)
	t.Logf("%d consistent snapshots of up to %d events", checks, s.Stats().Events)
}

func TestWriter_SyncInterval_AcksBeforeSyncAndCloseSyncs(t *testing.T) {
	s, dir := openWithFS(t, vfs.OS(), &Options{Sync: SyncInterval, SyncInterval: time.Hour})
	ctx := context.Background()
	_, err := s.Append(ctx, "s", Any, ev("x")) // no sync for an interval: synced at once
	require.NoError(t, err)
	_, err = s.Append(ctx, "s", Any, ev("y")) // acknowledged, sync deferred
	require.NoError(t, err)
	assert.Equal(t, uint64(1), s.Stats().Syncs)
	require.NoError(t, s.Close())
	s2, err := Open(dir, nil)
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, uint64(2), s2.Stats().Events)
}

func TestWriter_SyncInterval_TimerSyncs(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{Sync: SyncInterval, SyncInterval: 200 * time.Millisecond})
	ctx := context.Background()
	_, err := s.Append(ctx, "s", Any, ev("x"))
	require.NoError(t, err)
	_, err = s.Append(ctx, "s", Any, ev("y"))
	require.NoError(t, err)
	if s.Stats().Syncs != 1 {
		t.Skip("the second append came more than an interval after the first; nothing deferred to observe")
	}
	require.Eventually(t, func() bool { return s.Stats().Syncs == 2 }, 10*time.Second, 5*time.Millisecond,
		"the deferred sync should run without another append")
}

func TestWriter_ErrorsAreTyped(t *testing.T) {
	err := &WrongExpectedVersionError{Stream: "s", Expected: Exact(3), Actual: -1}
	assert.True(t, errors.Is(err, ErrWrongExpectedVersion))
	assert.Contains(t, err.Error(), `"s"`)
	cerr := &CorruptionError{Path: "p", Offset: 9, Reason: "r"}
	assert.True(t, errors.Is(cerr, ErrCorrupt))
	serr := &StorageError{Op: "write", Path: "p", Err: syscall.ENOSPC}
	assert.True(t, errors.Is(serr, ErrStorageFailed))
	assert.True(t, errors.Is(serr, syscall.ENOSPC))
}

func TestWriter_Recovery_HeaderFlipInLastBatchIsCorruption(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, dir := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	var chans []<-chan result
	for i := range 5 {
		chans = append(chans, appendAsync(context.Background(), s, "s", Any, ev(fmt.Sprint("batched-", i))))
		waitQueued(t, s, i+1)
	}
	gate.open()
	require.NoError(t, (<-parked).err)
	var first uint64 = math.MaxUint64
	for _, ch := range chans {
		r := <-ch
		require.NoError(t, r.err)
		first = min(first, r.res.Position)
	}
	require.NoError(t, s.Close())

	// Flip one bit in the header of the batch's first frame: five
	// acknowledged appends follow it, so it cannot be a torn write.
	evs := 0
	seg := filepath.Join(dir, segmentName(0))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	off := int64(record.SegmentHeaderSize)
	for {
		h, err := record.DecodeHeader(b[off:])
		require.NoError(t, err)
		if h.Position == first {
			break
		}
		off += h.FrameSize()
		evs++
	}
	b[off+9] ^= 0x04 // the position field
	require.NoError(t, os.WriteFile(seg, b, 0o644))
	_, err = Open(dir, nil)
	var cerr *CorruptionError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, off, cerr.Offset)
}

// countFS counts the bytes read through it.
type countFS struct {
	vfs.FS
	read atomic.Int64
}

func (c *countFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countFile{File: f, fs: c}, nil
}

type countFile struct {
	vfs.File
	fs *countFS
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

func TestWriter_IdempotentRetry_ReadsEachFrameOnce(t *testing.T) {
	cfs := &countFS{FS: vfs.OS()}
	s, _ := openWithFS(t, cfs, nil)
	ctx := context.Background()
	events := make([]EventData, 200)
	for i := range events {
		events[i] = EventData{ID: NewEventID(), Type: "t", Data: make([]byte, 1000)}
	}
	first, err := s.Append(ctx, "s", NoStream, events...)
	require.NoError(t, err)
	frameBytes := int64(200 * 1020)
	for _, exp := range []ExpectedVersion{NoStream, Any} {
		before := cfs.read.Load()
		again, err := s.Append(ctx, "s", exp, events...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		read := cfs.read.Load() - before
		assert.Less(t, read, 3*frameBytes, "%v retry read %d bytes for a %d-byte frame", exp, read, frameBytes)
	}
}

package eventstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/go-eventstore/eventstore/internal/race"
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

// requireOnly requires stream to hold exactly one event, with data want.
func requireOnly(t *testing.T, s *Store, stream, want string) {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), stream, 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, want, string(evs[0].Data))
}

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

// A yield that takes longer than the average fsync stops the next yields,
// 64 of them and twice as many each time it happens again, up to 65,536;
// one within the average ends the back-off, and the next long one starts
// it again at 64.
func TestWriter_YieldBacksOffWhileItTakesLong(t *testing.T) {
	const fsync = 200 * time.Microsecond
	w := &writer{syncTook: fsync}
	w.yielded(fsync)
	require.Zero(t, w.skipYields, "a yield as long as an fsync is within bounds")
	want := minYieldBackoff
	for range 13 {
		w.yielded(fsync + time.Nanosecond)
		require.Equal(t, want, w.skipYields)
		for range want {
			w.yield() // skipped: it does not yield, nor measure
		}
		require.Zero(t, w.skipYields)
		want = min(2*want, maxYieldBackoff)
	}
	require.Equal(t, maxYieldBackoff, w.yieldBackoff)
	w.yielded(fsync)
	assert.Zero(t, w.yieldBackoff)
	assert.Zero(t, w.skipYields)
	w.yielded(fsync + time.Nanosecond)
	assert.Equal(t, minYieldBackoff, w.skipYields, "a back-off after a cheap yield starts again at its least")
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
	requireOnly(t, s, "s", "after")
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
	requireOnly(t, s, "s", "queued")
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
	if s.Stats().Syncs == 2 {
		t.Skip("the second append came more than an interval after the first; nothing deferred to observe")
	}
	require.Equal(t, uint64(1), s.Stats().Syncs, "the first append syncs at once, the second waits")
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
	removeIndexFiles(t, dir)

	// Flip one bit in the header of the batch's first frame: five
	// acknowledged appends follow it, so it cannot be a torn write.
	evs := 0
	seg := filepath.Join(dir, segmentName(0))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	off := int64(record.SegmentHeaderSize)
	for {
		h, err := fileLayout(t, b).DecodeHeader(b[off:])
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

func TestWriter_IdempotentRetry_ReadsEachFrameOnce(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	s, _ := openWithFS(t, ffs, nil)
	ctx := context.Background()
	events := make([]EventData, 200)
	for i := range events {
		events[i] = EventData{ID: NewEventID(), Type: "t", Data: make([]byte, 1000)}
	}
	first, err := s.Append(ctx, "s", NoStream, events...)
	require.NoError(t, err)
	frameBytes := int64(200 * 1020)
	for _, exp := range []ExpectedVersion{NoStream, Any} {
		before := ffs.BytesRead()
		again, err := s.Append(ctx, "s", exp, events...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		read := ffs.BytesRead() - before
		assert.Less(t, read, 3*frameBytes, "%v retry read %d bytes for a %d-byte frame", exp, read, frameBytes)
	}
}

// The tests below check recovery, fault injection and concurrency against a
// model of what was acknowledged. Model helpers first.

type mEv struct {
	stream  string
	id      EventID
	typ     string
	data    []byte
	meta    []byte
	version uint64
}

// nonZero returns n random bytes with no zero byte.
func nonZero(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(255) + 1)
	}
	return b
}

// buildLog writes a log of random single / multi / oversized appends and
// returns the model of every acknowledged event, in position order.
func buildLog(t *testing.T, dir string, seed uint64, appends int, segSize int64) []mEv {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	s, err := Open(dir, &Options{SegmentSize: segSize})
	require.NoError(t, err)
	var model []mEv
	versions := map[string]uint64{}
	for range appends {
		stream := fmt.Sprintf("st-%d", rng.IntN(4))
		n := 1
		switch rng.IntN(5) {
		case 0:
			n = 2 + rng.IntN(5)
		}
		var evs []EventData
		for range n {
			dl := 1 + rng.IntN(60)
			if rng.IntN(12) == 0 {
				dl = int(segSize) + rng.IntN(800) // bigger than a segment
			}
			e := EventData{ID: NewEventID(), Type: fmt.Sprintf("ty%d", rng.IntN(3)), Data: nonZero(rng, dl)}
			if rng.IntN(3) == 0 {
				e.Metadata = nonZero(rng, 1+rng.IntN(10))
			}
			evs = append(evs, e)
		}
		res, err := s.Append(context.Background(), stream, Any, evs...)
		require.NoError(t, err)
		require.Equal(t, uint64(len(model)+n-1), res.Position)
		for _, e := range evs {
			model = append(model, mEv{stream, e.ID, e.Type, e.Data, e.Metadata, versions[stream]})
			versions[stream]++
		}
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	return model
}

// waitIndexed waits until the indexer has written every index file queued.
func waitIndexed(t *testing.T, s *Store) {
	t.Helper()
	require.Eventually(t, s.w.indexer.idle, 10*time.Second, time.Millisecond)
}

// removeIndexFiles deletes the index files Close and the indexer wrote, so
// that the next Open reads and checks every frame: the recovery path under
// test.
func removeIndexFiles(t *testing.T, dir string) {
	t.Helper()
	idx, err := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
	require.NoError(t, err)
	for _, p := range idx {
		require.NoError(t, os.Remove(p))
	}
}

func checkEvents(t *testing.T, got []RecordedEvent, want []mEv) {
	t.Helper()
	require.Equal(t, len(want), len(got), "event count")
	for i, e := range got {
		w := want[i]
		require.Equal(t, uint64(i), e.Position)
		require.Equal(t, w.stream, e.Stream, "pos %d", i)
		require.Equal(t, w.id, e.ID, "pos %d", i)
		require.Equal(t, w.typ, e.Type, "pos %d", i)
		require.True(t, bytes.Equal(w.data, e.Data), "pos %d data", i)
		require.True(t, bytes.Equal(w.meta, e.Metadata), "pos %d meta", i)
		require.Equal(t, w.version, e.StreamVersion, "pos %d", i)
	}
}

// checkStore verifies every read path against the model and that appends
// continue at the right position and versions.
func checkStore(t *testing.T, s *Store, want []mEv) {
	t.Helper()
	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	checkEvents(t, all, want)
	back, err := s.ReadAllBackward(context.Background(), ^uint64(0), 0)
	require.NoError(t, err)
	require.Equal(t, len(all), len(back))
	for i := range back {
		require.Equal(t, all[len(all)-1-i].ID, back[i].ID)
	}
	per := map[string][]mEv{}
	for _, e := range want {
		per[e.stream] = append(per[e.stream], e)
	}
	for st, evs := range per {
		got, err := s.ReadStream(context.Background(), st, 0, 0)
		require.NoError(t, err)
		require.Equal(t, len(evs), len(got), "stream %s", st)
		for i := range got {
			require.Equal(t, evs[i].id, got[i].ID)
		}
	}
	require.Equal(t, uint64(len(want)), s.Stats().Events)
	// Appends continue.
	versions := map[string]int64{}
	for _, e := range want {
		versions[e.stream] = int64(e.version)
	}
	for k, st := range []string{"st-0", "st-1", "st-2", "st-3"} {
		exp := NoStream
		if v, ok := versions[st]; ok {
			exp = Exact(uint64(v))
		}
		res, err := s.Append(context.Background(), st, exp, EventData{Type: "after", Data: []byte("x")})
		require.NoError(t, err, "stream %s exp %v", st, exp)
		require.Equal(t, uint64(len(want)+k), res.Position)
		require.Equal(t, uint64(versions[st]+1), res.StreamVersion+boolU(exp == NoStream))
	}
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	f, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	sort.Strings(f)
	return f
}

// fileLayout returns the header at the start of a segment file's bytes b,
// which decodes the headers of its frames.
func fileLayout(t testing.TB, b []byte) record.SegmentHeader {
	t.Helper()
	h, err := record.DecodeSegmentHeader(b)
	require.NoError(t, err)
	return h
}

// frameOffsets walks a segment file's frames (assumed sound).
func frameOffsets(t *testing.T, b []byte) (offs []int64, counts []int) {
	t.Helper()
	off := int64(record.SegmentHeaderSize)
	for off < int64(len(b)) {
		h, err := fileLayout(t, b).DecodeHeader(b[off:])
		require.NoError(t, err)
		f, err := record.DecodePayload(h, bytes.Clone(b[off+int64(h.Size()):off+h.FrameSize()]), nil)
		require.NoError(t, err)
		offs = append(offs, off)
		counts = append(counts, len(f.Events))
		off += h.FrameSize()
	}
	return offs, counts
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		m[e.Name()] = b
	}
	return m
}

func copyDir(t *testing.T, src map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for n, b := range src {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	return dir
}

// eventsInSegment counts the events in a segment file's frames.
func eventsInSegment(t *testing.T, b []byte) int {
	_, counts := frameOffsets(t, b)
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func TestEventLog_Recover_TruncatedLastSegmentKeepsWholeFrames(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		src := t.TempDir()
		model := buildLog(t, src, seed, 60, 600)
		snap := snapshot(t, src)
		segs := segFiles(t, src)
		lastName := filepath.Base(segs[len(segs)-1])
		last := snap[lastName]
		offs, counts := frameOffsets(t, last)
		inLast := 0
		for _, c := range counts {
			inLast += c
		}
		before := len(model) - inLast
		rng := rand.New(rand.NewPCG(seed, 99))
		cuts := []int64{0, 1, 23, 24, 25}
		for range 40 {
			cuts = append(cuts, rng.Int64N(int64(len(last))))
		}
		for _, o := range offs {
			cuts = append(cuts, o, o+1, o+23, o+24)
		}
		for _, cut := range cuts {
			if cut >= int64(len(last)) {
				continue
			}
			t.Run(fmt.Sprintf("seed%d/cut%d", seed, cut), func(t *testing.T) {
				dir := copyDir(t, snap)
				require.NoError(t, os.Truncate(filepath.Join(dir, lastName), cut))
				keep := before
				for i := range offs {
					end := int64(len(last))
					if i+1 < len(offs) {
						end = offs[i+1]
					}
					if end <= cut && cut >= 24 {
						keep += counts[i]
					}
				}
				s, err := Open(dir, nil)
				require.NoError(t, err)
				defer s.Close()
				checkStore(t, s, model[:keep])
			})
		}
	}
}

// TestEventLog_Recover_RandomBitFlipsAreCorruption flips 1,000 random bits
// (20,000 under make stress) anywhere in multi-segment logs, the last frame
// included: each must fail Open with ErrCorrupt and change nothing.
func TestEventLog_Recover_RandomBitFlipsAreCorruption(t *testing.T) {
	perSeed := stressScale(250, 5000)
	for seed := uint64(1); seed <= 4; seed++ {
		src := t.TempDir()
		buildLog(t, src, seed, 50, 600)
		snap := snapshot(t, src)
		rng := rand.New(rand.NewPCG(seed, 5))
		names := make([]string, 0, len(snap))
		for n := range snap {
			names = append(names, n)
		}
		sort.Strings(names)
		for k := range perSeed {
			name := names[rng.IntN(len(names))]
			off := rng.Int64N(int64(len(snap[name])))
			bit := byte(1) << rng.IntN(8)
			t.Run(fmt.Sprintf("seed%d/%d/%s@%d", seed, k, name, off), func(t *testing.T) {
				dir := copyDir(t, snap)
				p := filepath.Join(dir, name)
				b := bytes.Clone(snap[name])
				b[off] ^= bit
				require.NoError(t, os.WriteFile(p, b, 0o644))
				before := snapshot(t, dir)
				s, err := Open(dir, nil)
				if err == nil {
					s.Close()
				}
				require.ErrorIs(t, err, ErrCorrupt)
				require.Equal(t, before, snapshot(t, dir), "files changed")
			})
		}
	}
}

func TestEventLog_Recover_MissingAndDamagedSegments(t *testing.T) {
	src := t.TempDir()
	model := buildLog(t, src, 11, 80, 600)
	snap := snapshot(t, src)
	segs := segFiles(t, src)
	require.Greater(t, len(segs), 3)
	for i := 0; i < len(segs)-1; i++ {
		t.Run(fmt.Sprint("delete", i), func(t *testing.T) {
			dir := copyDir(t, snap)
			require.NoError(t, os.Remove(filepath.Join(dir, filepath.Base(segs[i]))))
			_, err := Open(dir, nil)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	lastName := filepath.Base(segs[len(segs)-1])
	inLast := eventsInSegment(t, snap[lastName])
	prefix := model[:len(model)-inLast]

	t.Run("partial header", func(t *testing.T) {
		for cut := 0; cut < record.SegmentHeaderSize; cut++ {
			dir := copyDir(t, snap)
			require.NoError(t, os.WriteFile(filepath.Join(dir, lastName), snap[lastName][:cut], 0o644))
			s, err := Open(dir, nil)
			require.NoError(t, err, "cut %d", cut)
			checkStore(t, s, prefix)
			require.NoError(t, s.Close())
		}
	})
	t.Run("zero-length extra segment", func(t *testing.T) {
		dir := copyDir(t, snap)
		name := segmentName(uint64(len(model)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
		s, err := Open(dir, nil)
		require.NoError(t, err)
		checkStore(t, s, model)
		require.NoError(t, s.Close())
	})
	t.Run("header-only zero segment", func(t *testing.T) {
		dir := copyDir(t, snap)
		name := segmentName(uint64(len(model)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), make([]byte, 24), 0o644))
		s, err := Open(dir, nil)
		require.NoError(t, err)
		checkStore(t, s, model)
		require.NoError(t, s.Close())
	})
	t.Run("zeroed last segment", func(t *testing.T) {
		dir := copyDir(t, snap)
		require.Greater(t, inLast, 0)
		require.NoError(t, os.WriteFile(filepath.Join(dir, lastName), make([]byte, len(snap[lastName])), 0o644))
		s, err := Open(dir, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		defer s.Close()
		t.Errorf("Open accepted a zeroed %d-byte last segment holding %d acknowledged events: Events=%d TornBytes=%d",
			len(snap[lastName]), inLast, s.Stats().Events, s.Stats().TornBytes)
	})
}

var opNames = map[vfs.Op]string{vfs.OpWrite: "write", vfs.OpSync: "sync", vfs.OpOpen: "open",
	vfs.OpTruncate: "truncate", vfs.OpRemove: "remove", vfs.OpSyncDir: "syncdir", vfs.OpAllocate: "allocate"}

type planned struct {
	stream string
	evs    []EventData
}

func plan(seed uint64, n int) []planned {
	rng := rand.New(rand.NewPCG(seed, 3))
	var out []planned
	for i := range n {
		p := planned{stream: fmt.Sprintf("st-%d", rng.IntN(4))}
		k := 1
		if rng.IntN(4) == 0 {
			k = 2 + rng.IntN(4)
		}
		for j := range k {
			dl := 1 + rng.IntN(80)
			if rng.IntN(15) == 0 {
				dl = 700 + rng.IntN(500)
			}
			var id EventID
			id[0], id[1], id[2], id[3] = byte(i), byte(i>>8), byte(j), 0xAA
			id[15] = 1
			p.evs = append(p.evs, EventData{ID: id, Type: "t", Data: nonZero(rng, dl)})
		}
		out = append(out, p)
	}
	return out
}

// runFaulty runs the plan against a store over fs, and returns the model of
// acknowledged events, the events of failed appends, and whether any failed.
func runFaulty(t *testing.T, s *Store, pl []planned, errno error) (acked []mEv, unacked map[EventID]bool, failed bool) {
	t.Helper()
	unacked = map[EventID]bool{}
	versions := map[string]uint64{}
	for i, p := range pl {
		res, err := s.Append(context.Background(), p.stream, Any, p.evs...)
		if err != nil {
			require.ErrorIs(t, err, ErrStorageFailed, "append %d", i)
			if !failed {
				require.ErrorIs(t, err, errno, "append %d", i)
			}
			failed = true
			for _, e := range p.evs {
				unacked[e.ID] = true
			}
			continue
		}
		require.False(t, failed, "append %d succeeded after a storage failure", i)
		require.Equal(t, uint64(len(acked)+len(p.evs)-1), res.Position)
		for _, e := range p.evs {
			acked = append(acked, mEv{p.stream, e.ID, e.Type, e.Data, e.Metadata, versions[p.stream]})
			versions[p.stream]++
		}
	}
	return acked, unacked, failed
}

func verifyReopened(t *testing.T, dir string, acked []mEv, unacked map[EventID]bool) {
	t.Helper()
	s, err := Open(dir, nil)
	require.NoError(t, err, "reopen with the real FS")
	defer s.Close()
	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), len(acked))
	checkEvents(t, all[:len(acked)], acked)
	for _, e := range all[len(acked):] {
		require.True(t, unacked[e.ID], "event %v at %d was never appended", e.ID, e.Position)
	}
	for i, e := range all {
		require.Equal(t, uint64(i), e.Position)
	}
	res, err := s.Append(context.Background(), "new", NoStream, EventData{Type: "x"})
	require.NoError(t, err)
	require.Equal(t, uint64(len(all)), res.Position)
}

func TestWriter_Faults_EveryNthOperation(t *testing.T) {
	pl := plan(42, 100)
	opts := func(fs vfs.FS) *Options { return &Options{SegmentSize: 600, fs: fs} }
	// Dry run to count operations.
	counter := vfs.NewFaultFS(vfs.OS())
	{
		dir := t.TempDir()
		s, err := Open(dir, opts(counter))
		require.NoError(t, err)
		acked, _, failed := runFaulty(t, s, pl, nil)
		require.False(t, failed)
		require.NoError(t, s.Close())
		verifyReopened(t, dir, acked, nil)
	}
	total := 0
	for op := vfs.OpWrite; op <= vfs.OpAllocate; op++ {
		t.Logf("%s: %d ops", opNames[op], counter.Count(op))
		for n := 1; n <= counter.Count(op)+1; n++ {
			for _, errno := range []error{syscall.EIO, syscall.ENOSPC} {
				for _, persistent := range []bool{false, true} {
					total++
					name := fmt.Sprintf("%s/n%d/%v/p%v", opNames[op], n, errno, persistent)
					t.Run(name, func(t *testing.T) {
						dir := t.TempDir()
						ffs := vfs.NewFaultFS(vfs.OS())
						ffs.Fail(op, n, errno, persistent)
						s, err := Open(dir, opts(ffs))
						if err != nil {
							// A failed Open leaves nothing locked.
							s2, err2 := Open(dir, nil)
							require.NoError(t, err2, "after failed open: %v", err)
							require.Equal(t, uint64(0), s2.Stats().Events)
							require.NoError(t, s2.Close())
							verifyReopened(t, dir, nil, nil)
							return
						}
						acked, unacked, failed := runFaulty(t, s, pl, errno)
						// Before reopen: exactly the acknowledged events.
						all, err := s.ReadAll(context.Background(), 0, 0)
						require.NoError(t, err)
						checkEvents(t, all, acked)
						for st := range 4 {
							evs, err := s.ReadStream(context.Background(), fmt.Sprintf("st-%d", st), 0, 0)
							require.NoError(t, err)
							n := 0
							for _, e := range acked {
								if e.stream == fmt.Sprintf("st-%d", st) {
									n++
								}
							}
							require.Len(t, evs, n)
						}
						if failed {
							require.ErrorIs(t, s.Stats().Err, ErrStorageFailed)
							_, err := s.Append(context.Background(), "zzz", NoStream, EventData{Type: "x"})
							require.ErrorIs(t, err, ErrStorageFailed)
						}
						require.NoError(t, s.Close())
						verifyReopened(t, dir, acked, unacked)
					})
				}
			}
		}
	}
	t.Logf("%d fault runs", total)
}

func TestEventLog_Recover_FaultsDuringRepair(t *testing.T) {
	src := t.TempDir()
	model := buildLog(t, src, 21, 40, 600)
	snap := snapshot(t, src)
	segs := segFiles(t, src)
	lastName := filepath.Base(segs[len(segs)-1])
	last := snap[lastName]
	offs, counts := frameOffsets(t, last)
	inLast := 0
	for _, c := range counts {
		inLast += c
	}
	// Case A: torn tail (cut the last frame in half). Case B: a torn new
	// segment header after the last segment.
	tornTail := map[string][]byte{}
	for k, v := range snap {
		tornTail[k] = v
	}
	lastOff := offs[len(offs)-1]
	tornTail[lastName] = last[:lastOff+(int64(len(last))-lastOff)/2]
	wantTail := model[:len(model)-counts[len(counts)-1]]
	tornHdr := map[string][]byte{}
	for k, v := range snap {
		tornHdr[k] = v
	}
	tornHdr[segmentName(uint64(len(model)))] = record.AppendSegmentHeader(nil, uint64(len(model)), 0)[:10]
	cases := []struct {
		name string
		snap map[string][]byte
		want []mEv
	}{{"torn tail", tornTail, wantTail}, {"torn header", tornHdr, model}}
	for _, c := range cases {
		for op := vfs.OpWrite; op <= vfs.OpAllocate; op++ {
			for n := 1; n <= 3; n++ {
				for _, persistent := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/%d/%v", c.name, opNames[op], n, persistent), func(t *testing.T) {
						dir := copyDir(t, c.snap)
						ffs := vfs.NewFaultFS(vfs.OS())
						ffs.Fail(op, n, syscall.EIO, persistent)
						s, err := Open(dir, &Options{SegmentSize: 600, fs: ffs})
						if err == nil {
							all, err := s.ReadAll(context.Background(), 0, 0)
							require.NoError(t, err)
							checkEvents(t, all, c.want)
							require.NoError(t, s.Close())
						} else {
							require.NotErrorIs(t, err, ErrCorrupt, "fault reported as corruption: %v", err)
							// The files are as they were, or repaired: either way reopen works.
						}
						s2, err := Open(dir, &Options{SegmentSize: 600})
						require.NoError(t, err)
						checkStore(t, s2, c.want)
						require.NoError(t, s2.Close())
					})
				}
			}
		}
	}
}

type cop struct {
	idx      int
	stream   string
	expected ExpectedVersion
	evs      []EventData
	explicit bool
}

type attempt struct {
	op  int
	res AppendResult
	err error
}

func opOf(e RecordedEvent) (op, k int) {
	_, err := fmt.Sscanf(string(e.Data), "op%d/%d", &op, &k)
	if err != nil {
		panic(err)
	}
	return
}

func TestWriter_ConcurrentMixedAppendsMatchModel(t *testing.T) {
	for round := range 4 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { concurrencyRound(t, uint64(round)) })
	}
}

func concurrencyRound(t *testing.T, seed uint64) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: 2048, MaxBatch: 8 + int(seed)*20, QueueSize: 64})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(seed, 1))
	const nops = 600
	ops := make([]cop, nops)
	for i := range ops {
		o := cop{idx: i, stream: fmt.Sprintf("c-%d", rng.IntN(6)), explicit: rng.IntN(5) != 0}
		switch rng.IntN(6) {
		case 0, 1, 2:
			o.expected = Any
		case 3:
			o.expected = NoStream
		case 4:
			o.expected = StreamExists
		case 5:
			o.expected = Exact(uint64(rng.IntN(40)))
		}
		k := 1 + rng.IntN(3)
		for j := range k {
			e := EventData{Type: "t", Data: []byte(fmt.Sprintf("op%d/%d", i, j))}
			if o.explicit {
				e.ID = NewEventID()
			}
			o.evs = append(o.evs, e)
		}
		ops[i] = o
	}
	var mu sync.Mutex
	var attempts []attempt
	record := func(a attempt) { mu.Lock(); attempts = append(attempts, a); mu.Unlock() }

	do := func(o cop, timeout bool) {
		ctx := context.Background()
		if timeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(rand.IntN(300))*time.Microsecond)
			defer cancel()
		}
		res, err := s.Append(ctx, o.stream, o.expected, o.evs...)
		record(attempt{o.idx, res, err})
	}
	work := make(chan cop)
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				r := rand.IntN(10)
				switch {
				case o.explicit && r < 3: // concurrent identical retries
					var w2 sync.WaitGroup
					for range 2 + rand.IntN(3) {
						w2.Add(1)
						go func() { defer w2.Done(); do(o, rand.IntN(4) == 0) }()
					}
					w2.Wait()
				case o.explicit && r < 6: // sequential retry
					do(o, rand.IntN(3) == 0)
					do(o, false)
				default:
					do(o, rand.IntN(8) == 0)
				}
			}
		}()
	}
	stopReaders := make(chan struct{})
	var rwg sync.WaitGroup
	for g := range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopReaders:
					return
				default:
				}
				var evs []RecordedEvent
				var err error
				switch (g + i) % 4 {
				case 0:
					evs, err = s.ReadAll(context.Background(), 0, 0)
				case 1:
					evs, err = s.ReadAllBackward(context.Background(), ^uint64(0), 50)
					slices.Reverse(evs)
				case 2:
					evs, err = s.ReadStream(context.Background(), fmt.Sprintf("c-%d", i%6), 0, 0)
				case 3:
					evs, err = s.ReadStreamBackward(context.Background(), fmt.Sprintf("c-%d", i%6), ^uint64(0), 7)
					slices.Reverse(evs)
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if !assert.NoError(t, err) {
					return
				}
				for k := 1; k < len(evs); k++ {
					if (g+i)%4 < 2 {
						assert.Equal(t, evs[k-1].Position+1, evs[k].Position)
					} else {
						assert.Equal(t, evs[k-1].StreamVersion+1, evs[k].StreamVersion)
					}
				}
			}
		}()
	}
	closeAt := 350 + int(seed)*50
	for i, o := range ops {
		if i == closeAt {
			go func() { require.NoError(t, s.Close()) }()
		}
		work <- o
	}
	close(work)
	wg.Wait()
	close(stopReaders)
	rwg.Wait()
	require.NoError(t, s.Close())

	s2, err := Open(dir, nil)
	require.NoError(t, err)
	defer s2.Close()
	all, err := s2.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)

	type placed struct{ first, last int }
	where := map[int]placed{}
	versions := map[string]uint64{}
	for i := 0; i < len(all); {
		e := all[i]
		require.Equal(t, uint64(i), e.Position)
		op, j := opOf(e)
		require.Equal(t, 0, j, "pos %d starts mid-op", i)
		_, dup := where[op]
		require.False(t, dup, "op %d written twice", op)
		o := ops[op]
		for k := range o.evs {
			f := all[i+k]
			require.Equal(t, o.evs[k].Data, f.Data)
			require.Equal(t, o.stream, f.Stream)
			require.Equal(t, versions[o.stream], f.StreamVersion)
			if o.explicit {
				require.Equal(t, o.evs[k].ID, f.ID)
			}
			versions[o.stream]++
		}
		first := all[i].StreamVersion
		switch o.expected {
		case NoStream:
			require.Equal(t, uint64(0), first, "op %d NoStream", op)
		case StreamExists:
			require.NotEqual(t, uint64(0), first, "op %d StreamExists", op)
		case Any:
		default:
			require.Equal(t, uint64(o.expected)+1, first, "op %d %v", op, o.expected)
		}
		where[op] = placed{i, i + len(o.evs) - 1}
		i += len(o.evs)
	}
	okOrUnknown := map[int]bool{}
	results := map[int]AppendResult{}
	classes := map[string]int{}
	for _, a := range attempts {
		switch {
		case a.err == nil:
			classes["ok"]++
		case errors.Is(a.err, ErrOutcomeUnknown):
			classes["unknown"]++
		case errors.Is(a.err, ErrWrongExpectedVersion):
			classes["wev"]++
		case errors.Is(a.err, ErrClosed):
			classes["closed"]++
		default:
			classes["ctx"]++
		}
	}
	t.Logf("outcomes %v", classes)
	for _, a := range attempts {
		p, in := where[a.op]
		switch {
		case a.err == nil:
			require.True(t, in, "op %d acknowledged but not in the log", a.op)
			want := AppendResult{Position: uint64(p.last), StreamVersion: all[p.last].StreamVersion}
			require.Equal(t, want, a.res, "op %d result", a.op)
			if r, ok := results[a.op]; ok {
				require.Equal(t, r, a.res)
			}
			results[a.op] = a.res
			okOrUnknown[a.op] = true
		case errors.Is(a.err, ErrOutcomeUnknown):
			okOrUnknown[a.op] = true
		case errors.Is(a.err, ErrWrongExpectedVersion), errors.Is(a.err, ErrClosed),
			errors.Is(a.err, context.DeadlineExceeded):
		default:
			t.Fatalf("op %d: unexpected error %v", a.op, a.err)
		}
	}
	for op := range where {
		require.True(t, okOrUnknown[op], "op %d in the log with no successful or unknown attempt", op)
	}
	// Retrying any explicit-ID op present in the log returns its result and writes nothing.
	n := len(all)
	for op, p := range where {
		o := ops[op]
		if !o.explicit {
			continue
		}
		res, err := s2.Append(context.Background(), o.stream, o.expected, o.evs...)
		require.NoError(t, err, "retry of op %d (%v)", op, o.expected)
		require.Equal(t, uint64(p.last), res.Position)
	}
	require.Equal(t, uint64(n), s2.Stats().Events)
	t.Logf("%d events, %d ops in log, %d attempts", n, len(where), len(attempts))
}

func TestStore_Append_UnusualInputAndLimits(t *testing.T) {
	s, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096})
	ctx := context.Background()
	_, err := s.Append(ctx, string(make([]byte, MaxStreamNameLen+1)), Any, ev("x"))
	require.ErrorIs(t, err, ErrInvalidStream)
	long := strings.Repeat("é", MaxStreamNameLen/2) // exactly 1024 bytes
	_, err = s.Append(ctx, long, Any, ev("x"))
	require.NoError(t, err)
	_, err = s.Append(ctx, long+"x", Any, ev("x"))
	require.ErrorIs(t, err, ErrInvalidStream)
	for _, bad := range []string{"", "a\x00b", "\xff\xfe", "ok\xc3"} {
		_, err = s.Append(ctx, bad, Any, ev("x"))
		require.ErrorIs(t, err, ErrInvalidStream, "%q", bad)
		_, err = s.Append(ctx, "s", Any, EventData{Type: bad})
		require.ErrorIs(t, err, ErrInvalidEvent, "%q", bad)
	}
	weird := []string{"\u202e\u0000"[:3], "🏳️‍🌈", "\ufeff", "a\u0301", "\U0010FFFF", "\t\n\r", "\ufffd", strings.Repeat("𝔘", 256)}
	for i, w := range weird {
		_, err = s.Append(ctx, w, NoStream, EventData{Type: w, Metadata: []byte(w), Data: []byte{0, 0, 0}})
		require.NoError(t, err, "%d %q", i, w)
	}
	_, err = s.Append(ctx, "s", Any)
	require.ErrorIs(t, err, ErrNoEvents)
	_, err = s.Append(ctx, "s", Any, []EventData{}...)
	require.ErrorIs(t, err, ErrNoEvents)
	_, err = s.Append(ctx, "s", ExpectedVersion(-3), ev("x"))
	require.ErrorIs(t, err, ErrInvalidExpectedVersion)
	_, err = s.Append(ctx, "s", Exact(math.MaxUint64), ev("x"))
	require.ErrorIs(t, err, ErrInvalidExpectedVersion)
	_, err = s.Append(ctx, "s", Exact(math.MaxInt64), ev("x"))
	require.ErrorIs(t, err, ErrWrongExpectedVersion)

	// 100k tiny events in one append.
	big := make([]EventData, 100_000)
	for i := range big {
		big[i] = EventData{Type: "t"}
	}
	res, err := s.Append(ctx, "big", NoStream, big...)
	require.NoError(t, err)
	require.Equal(t, uint64(99_999), res.StreamVersion)
	before := s.Stats().Events

	for _, lim := range []int{math.MaxInt, math.MinInt, -1, 0, 1} {
		evs, err := s.ReadAll(ctx, 0, lim)
		require.NoError(t, err)
		if lim == 1 {
			require.Len(t, evs, 1)
		} else {
			require.Len(t, evs, int(before))
		}
		evs, err = s.ReadAllBackward(ctx, math.MaxUint64, lim)
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		evs, err = s.ReadStream(ctx, "big", 5, lim)
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		evs, err = s.ReadStreamBackward(ctx, "big", math.MaxUint64, lim)
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		require.Equal(t, uint64(99_999), evs[0].StreamVersion)
	}
	for _, from := range []uint64{math.MaxUint64, math.MaxUint64 - 1, before, math.MaxInt64 + 1} {
		evs, err := s.ReadAll(ctx, from, math.MaxInt)
		require.NoError(t, err)
		require.Empty(t, evs)
		evs, err = s.ReadStream(ctx, "big", from, math.MaxInt)
		require.NoError(t, err)
		require.Empty(t, evs)
	}
	evs, err := s.ReadAllBackward(ctx, 0, math.MaxInt)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	evs, err = s.ReadStream(ctx, "nope", 0, 0)
	require.NoError(t, err)
	require.Empty(t, evs)

	// Weird streams read back.
	for _, w := range weird {
		evs, err := s.ReadStream(ctx, w, 0, 0)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		require.Equal(t, w, evs[0].Type)
		require.Equal(t, []byte{0, 0, 0}, evs[0].Data)
	}
	require.NoError(t, s.Close())
	s2, err := Open(dir, &Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.Equal(t, before, s2.Stats().Events)
	evs, err = s2.ReadStream(ctx, "big", 99_990, 0)
	require.NoError(t, err)
	require.Len(t, evs, 10)
	require.NoError(t, s2.Close())

	// Operations on a closed store.
	for _, st := range []*Store{s, s2} {
		_, err = st.ReadAll(ctx, 0, 0)
		require.ErrorIs(t, err, ErrClosed)
		_, err = st.ReadAllBackward(ctx, math.MaxUint64, 1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = st.ReadStream(ctx, "big", 0, 1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = st.ReadStreamBackward(ctx, "nope", 0, 1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = st.Append(ctx, "s", Any, ev("x"))
		require.ErrorIs(t, err, ErrClosed)
		require.NoError(t, st.Close())
		_ = st.Stats()
	}
}

// smallLog writes n sequential one-event appends of small nonzero data.
func smallLog(t *testing.T, n int) (dir, seg string, offs []int64) {
	dir = t.TempDir()
	s, err := Open(dir, nil)
	require.NoError(t, err)
	for i := range n {
		_, err := s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: []byte(fmt.Sprintf("event-%d", i))})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	seg = filepath.Join(dir, segmentName(0))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	offs, _ = frameOffsets(t, b)
	return dir, seg, offs
}

func TestEventLog_Recover_HeaderFlipInLastFrameIsCorruption(t *testing.T) {
	dir, seg, offs := smallLog(t, 5)
	b, _ := os.ReadFile(seg)
	last := offs[len(offs)-1]
	b[last+9] ^= 0x10 // a bit of the position field: no zeros involved
	require.NoError(t, os.WriteFile(seg, b, 0o644))
	s, err := Open(dir, nil)
	if err == nil {
		defer s.Close()
		t.Fatalf("bit flip in last frame header accepted as torn write: Events=%d TornBytes=%d (file %d bytes)",
			s.Stats().Events, s.Stats().TornBytes, len(b))
	}
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestEventLog_Recover_PayloadFlipInZeroDataIsCorruption(t *testing.T) {
	gate := newGateFS(vfs.OS())
	s, dir := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate)
	var chans []<-chan result
	for i := range 3 {
		chans = append(chans, appendAsync(context.Background(), s, "s", Any, EventData{Type: "t", Data: make([]byte, 1000)}))
		waitQueued(t, s, i+1)
	}
	gate.open()
	require.NoError(t, (<-parked).err)
	for _, ch := range chans {
		require.NoError(t, (<-ch).err)
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	seg := filepath.Join(dir, segmentName(0))
	b, _ := os.ReadFile(seg)
	offs, _ := frameOffsets(t, b)
	b[offs[1]+600] ^= 0x10 // payload of the first frame of the last batch
	require.NoError(t, os.WriteFile(seg, b, 0o644))
	s2, err := Open(dir, nil)
	if err == nil {
		defer s2.Close()
		t.Fatalf("payload flip in a non-last frame accepted as torn: Events=%d (4 acknowledged) TornBytes=%d",
			s2.Stats().Events, s2.Stats().TornBytes)
	}
	require.ErrorIs(t, err, ErrCorrupt)
}

// A frame starting k bytes before a sector's end (k up to 3) may have a
// header whose k first bytes, alone in that sector, are zero as written:
// its length's low bytes, for a payload length that is a multiple of 256^k.
// Those bytes are no mark of an unwritten sector. A bit flipped in the
// frame's payload (the header is sound) or in the rest of its header (no
// other value of those bytes makes it pass its checksum) is corruption,
// not a torn write that would drop a synced frame. Where the bytes are not
// zero as written, the loss of their sector, which leaves them zero, is a
// torn write.
func TestEventLog_Recover_ZeroHeaderBytesAloneInASectorAreNoTear(t *testing.T) {
	for _, version := range []uint8{5, record.Version} {
		hsize := record.SegmentHeader{Version: version}.HeaderSize()
		// logOf writes a segment whose second frame starts k bytes before
		// the first sector's end and has a payload of plen bytes; it
		// returns the store's directory, the segment's path and bytes, and
		// the second frame's offset.
		logOf := func(t *testing.T, k, plen int) (string, string, []byte, int) {
			sized := func(size int, firstVersion uint64) []byte {
				for n := size - 64; n < size; n++ {
					if f := appendTestFrame(version, nil, firstVersion, firstVersion, "s", [record.IDSize]byte{}, bytes.Repeat([]byte{'d'}, n)); len(f) == size {
						return f
					}
				}
				t.Fatalf("no frame of %d bytes", size)
				return nil
			}
			b := append(segmentHeaderOf(version, 0), sized(sectorSize-k-record.SegmentHeaderSize, 0)...)
			second := len(b)
			require.Equal(t, sectorSize-k, second)
			b = append(b, sized(hsize+plen, 1)...)
			dir := t.TempDir()
			path := filepath.Join(dir, segmentName(0))
			require.NoError(t, os.WriteFile(path, b, 0o644))
			return dir, path, b, second
		}
		for _, k := range []int{1, 2} {
			t.Run(fmt.Sprintf("version %d, %d bytes alone", version, k), func(t *testing.T) {
				plen := 1 << (8 * k)
				dir, path, b, second := logOf(t, k, plen)
				require.Equal(t, make([]byte, k), b[second:second+k], "the second frame's first bytes, alone in the first sector, are zero")
				s, err := Open(dir, nil)
				require.NoError(t, err, "sound as written")
				require.Equal(t, uint64(2), s.Stats().Events)
				require.Zero(t, s.Stats().TornBytes)
				require.NoError(t, s.Close())
				removeIndexFiles(t, dir)
				flips := []int{second + hsize + 100} // in the payload
				for at := second + k; at < second+hsize; at++ {
					flips = append(flips, at) // in the header, past the bytes alone
				}
				for _, at := range flips {
					for bit := range 8 {
						flipped := bytes.Clone(b)
						flipped[at] ^= 1 << bit
						require.NoError(t, os.WriteFile(path, flipped, 0o644))
						before := snapshot(t, dir)
						_, err = Open(dir, nil)
						require.ErrorIs(t, err, ErrCorrupt, "byte %d of the frame, bit %d", at-second, bit)
						require.Equal(t, before, snapshot(t, dir), "nothing truncated")
						rep, err := Verify(context.Background(), dir, nil)
						require.NoError(t, err)
						require.Len(t, rep.Problems, 1, "byte %d of the frame, bit %d", at-second, bit)
						require.Zero(t, rep.TornBytes)
					}
				}
			})
		}
		t.Run(fmt.Sprintf("version %d, lost", version), func(t *testing.T) {
			// The lone byte is 0x5a as written: a value of several bits,
			// which no single flip zeroes.
			dir, path, b, second := logOf(t, 1, 0x15a)
			require.Equal(t, byte(0x5a), b[second])
			b[second] = 0 // the first sector's last write lost
			require.NoError(t, os.WriteFile(path, b, 0o644))
			s, err := Open(dir, nil)
			require.NoError(t, err, "a torn write, repaired")
			defer s.Close()
			assert.Equal(t, uint64(1), s.Stats().Events)
			assert.Equal(t, int64(hsize+0x15a), s.Stats().TornBytes)
		})
	}
}

func TestWriter_Faults_ConcurrentWritersSeeOnlyAcknowledged(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpSync, vfs.OpWrite, vfs.OpOpen, vfs.OpSyncDir} {
		for n := 1; n <= 40; n += 3 {
			for _, persistent := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/%v", opNames[op], n, persistent), func(t *testing.T) {
					dir := t.TempDir()
					ffs := vfs.NewFaultFS(vfs.OS())
					s, err := Open(dir, &Options{SegmentSize: 600, fs: ffs})
					require.NoError(t, err)
					ffs.Fail(op, n, syscall.ENOSPC, persistent)
					var mu sync.Mutex
					acked := map[EventID]AppendResult{}
					data := map[EventID][]byte{}
					var failedSeen bool
					var wg sync.WaitGroup
					stop := make(chan struct{})
					var rwg sync.WaitGroup
					rwg.Add(1)
					go func() { // reader: never sees an unacknowledged event
						defer rwg.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							all, err := s.ReadAll(context.Background(), 0, 0)
							if !assert.NoError(t, err) {
								return
							}
							for i, e := range all {
								assert.Equal(t, uint64(i), e.Position)
							}
						}
					}()
					for g := range 12 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range 15 {
								k := 1 + (g+i)%3
								var evs []EventData
								for j := range k {
									e := EventData{ID: NewEventID(), Type: "t", Data: []byte(fmt.Sprintf("%d-%d-%d-%s", g, i, j, strings.Repeat("x", (g*7+i*13)%150)))}
									evs = append(evs, e)
								}
								res, err := s.Append(context.Background(), fmt.Sprint("g", g%5), Any, evs...)
								mu.Lock()
								for _, e := range evs {
									data[e.ID] = e.Data
								}
								if err == nil {
									for j, e := range evs {
										acked[e.ID] = AppendResult{Position: res.Position - uint64(k-1-j)}
									}
								} else {
									assert.ErrorIs(t, err, ErrStorageFailed)
									failedSeen = true
								}
								mu.Unlock()
							}
						}()
					}
					wg.Wait()
					close(stop)
					rwg.Wait()
					all, err := s.ReadAll(context.Background(), 0, 0)
					require.NoError(t, err)
					require.Equal(t, len(acked), len(all), "visible = acknowledged")
					for _, e := range all {
						r, ok := acked[e.ID]
						require.True(t, ok, "unacknowledged event visible at %d", e.Position)
						require.Equal(t, r.Position, e.Position)
					}
					if failedSeen {
						_, err := s.Append(context.Background(), "z", Any, ev("z"))
						require.ErrorIs(t, err, ErrStorageFailed)
					}
					require.NoError(t, s.Close())
					s2, err := Open(dir, nil)
					require.NoError(t, err)
					defer s2.Close()
					all, err = s2.ReadAll(context.Background(), 0, 0)
					require.NoError(t, err)
					seen := 0
					for i, e := range all {
						require.Equal(t, uint64(i), e.Position)
						d, ok := data[e.ID]
						require.True(t, ok, "unknown event")
						require.Equal(t, d, e.Data)
						if r, ok := acked[e.ID]; ok {
							require.Equal(t, r.Position, e.Position)
							seen++
						}
					}
					require.Equal(t, len(acked), seen, "acknowledged events lost")
					_, err = s2.Append(context.Background(), "z", Any, ev("z"))
					require.NoError(t, err)
				})
			}
		}
	}
}

// An event whose data holds a valid frame (an archived segment, say) must
// not make a genuine torn tail look like corruption.
func TestEventLog_Recover_TornTailWithFrameInsideData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	require.NoError(t, err)
	_, err = s.Append(context.Background(), "s", Any, ev("first"))
	require.NoError(t, err)
	body := record.AppendBodyHead(nil, "other", 1)
	body = record.AppendEventOf(1, body, [16]byte{1}, "t", nil, []byte("payload"))
	inner := record.AppendFrame(nil, 1<<40, 0, 1, 0, body)
	data := append(bytes.Repeat([]byte{'a'}, 100), inner...)
	data = append(data, bytes.Repeat([]byte{'b'}, 2000)...)
	_, err = s.Append(context.Background(), "s", Any, EventData{Type: "blob", Data: data}) // never acknowledged: torn below
	require.NoError(t, err)
	require.NoError(t, s.Close())
	seg := filepath.Join(dir, segmentName(0))
	fi, _ := os.Stat(seg)
	require.NoError(t, os.Truncate(seg, fi.Size()-1000)) // the last sectors never reached disk

	s2, err := Open(dir, nil)
	require.NoError(t, err, "a torn last frame must be repaired")
	defer s2.Close()
	require.Equal(t, uint64(1), s2.Stats().Events)
}

// testSeed returns the seed for a randomized test: EVENTSTORE_TEST_SEED if
// set, else the clock. It logs it, so that a failure can be replayed.
func testSeed(t testing.TB) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EVENTSTORE_TEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	t.Logf("seed %d (replay with EVENTSTORE_TEST_SEED=%d)", seed, seed)
	return seed
}

// stressScale returns n, or big when EVENTSTORE_STRESS is set (make stress).
func stressScale(n, big int) int {
	if os.Getenv("EVENTSTORE_STRESS") != "" {
		return big
	}
	return n
}

// TestWriter_Context_CancelAtEveryPhase cancels Append's context before it
// is queued, while it is queued, while its batch is being written and while
// it is being synced, in random order. Plain ctx.Err() must mean the events
// never reach the log; anything else must be the result or
// ErrOutcomeUnknown, and a retry with the same IDs must leave exactly one
// copy.
func TestWriter_Context_CancelAtEveryPhase(t *testing.T) {
	gate := newGateFS(vfs.OS())
	ffs := vfs.NewFaultFS(gate)
	s, _ := openWithFS(t, ffs, nil)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	iterations := stressScale(1000, 20000)
	phases := [4]int{}
	var plainCancel, unknown, committed int
	for i := range iterations {
		phase := rng.IntN(4)
		phases[phase]++
		ctx, cancel := context.WithCancel(context.Background())
		e := EventData{ID: NewEventID(), Type: "t", Data: []byte(fmt.Sprint("iteration-", i))}
		stream := fmt.Sprint("s", i%7)
		var r result
		switch phase {
		case 0: // before queueing
			cancel()
			r = <-appendAsync(ctx, s, stream, Any, e)
		case 1: // queued behind a batch parked in fsync
			parked := parkWriter(t, s, gate)
			ch := appendAsync(ctx, s, stream, Any, e)
			waitQueued(t, s, 1)
			cancel()
			r = <-ch
			gate.open()
			require.NoError(t, (<-parked).err)
		case 2, 3: // inside the write, or inside the fsync
			op := vfs.OpWrite
			if phase == 3 {
				op = vfs.OpSync
			}
			var once sync.Once
			ffs.OnCall(op, func() { once.Do(cancel) })
			r = <-appendAsync(ctx, s, stream, Any, e)
			ffs.OnCall(op, nil)
		}
		cancel()

		if phase < 2 {
			// Not yet taken by the writer: a plain cancel, and nothing written.
			require.ErrorIs(t, r.err, context.Canceled, "seed %d phase %d", seed, phase)
			require.NotErrorIs(t, r.err, ErrOutcomeUnknown, "seed %d phase %d", seed, phase)
		}
		switch {
		case r.err == nil:
			committed++
		case errors.Is(r.err, ErrOutcomeUnknown):
			require.ErrorIs(t, r.err, context.Canceled)
			unknown++
		default:
			require.ErrorIs(t, r.err, context.Canceled, "phase %d", phase)
			plainCancel++
			require.Zero(t, countID(t, s, stream, e.ID), "phase %d: plain ctx.Err() but the event is in the log", phase)
		}
		// A retry with the same ID settles it: exactly one copy.
		res, err := s.Append(context.Background(), stream, Any, e)
		require.NoError(t, err)
		if r.err == nil {
			require.Equal(t, r.res, res, "a retry returns the original result")
		}
		require.Equal(t, 1, countID(t, s, stream, e.ID), "phase %d", phase)
	}
	t.Logf("%d iterations (phases %v): %d committed, %d outcome unknown, %d plain cancel",
		iterations, phases, committed, unknown, plainCancel)
}

// TestWriter_RecycledRequestsNeverMix appends from 16 goroutines to 5
// shared streams (so a batch often holds several appends to one stream),
// with payloads of 1 byte to past the largest pooled body, and cancels a
// quarter of the calls at random moments, so that requests and the
// writer's per-stream batch entries are recycled while others are queued,
// taken or abandoned. Every event in the log must be
// exactly what the call with its ID sent, at the position and version a
// committed call was told; a call that got a plain ctx.Err() must have
// written nothing; each stream's versions must run from 0 without a gap.
func TestWriter_RecycledRequestsNeverMix(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer s.Close()
	seed := testSeed(t)
	type sent struct {
		stream string
		data   []byte
		res    AppendResult
		err    error
	}
	var mu sync.Mutex
	byID := map[EventID]*sent{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for range stressScale(150, 1500) {
				size := 1 + rng.IntN(3000)
				if rng.IntN(20) == 0 {
					size = maxPooledBody + rng.IntN(4096)
				}
				data := make([]byte, size)
				for k := range data {
					data[k] = byte(rng.Uint32())
				}
				e := EventData{ID: NewEventID(), Type: fmt.Sprint("t", g), Data: data}
				x := &sent{stream: fmt.Sprint("s", rng.IntN(5)), data: data} // shared: a batch often holds two appends to one stream
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(4) == 0 {
					time.AfterFunc(time.Duration(rng.IntN(500))*time.Microsecond, cancel)
				}
				x.res, x.err = s.Append(ctx, x.stream, Any, e)
				cancel()
				mu.Lock()
				byID[e.ID] = x
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A call that returned ErrOutcomeUnknown left its request with the
	// writer, which may commit it after the call returned: one more append,
	// answered only once every batch before it has been, lets those land
	// before the log is read.
	last := EventData{ID: NewEventID(), Type: "last"}
	res, err := s.Append(context.Background(), "last", Any, last)
	require.NoError(t, err)
	byID[last.ID] = &sent{stream: "last", res: res}

	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	inLog := map[EventID]bool{}
	committed := 0
	for _, ev := range all {
		x := byID[ev.ID]
		require.NotNil(t, x, "position %d: an ID no call sent", ev.Position)
		require.False(t, inLog[ev.ID], "position %d: a second copy", ev.Position)
		inLog[ev.ID] = true
		require.Equal(t, x.stream, ev.Stream, "position %d", ev.Position)
		require.Equal(t, x.data, ev.Data, "position %d", ev.Position)
		if x.err == nil {
			committed++
			require.Equal(t, x.res, AppendResult{Position: ev.Position, StreamVersion: ev.StreamVersion}, "position %d", ev.Position)
		}
	}
	canceled := 0
	for id, x := range byID {
		switch {
		case x.err == nil:
			require.True(t, inLog[id], "a committed call's event is missing")
		case errors.Is(x.err, ErrOutcomeUnknown):
		default:
			require.ErrorIs(t, x.err, context.Canceled)
			require.False(t, inLog[id], "a plain ctx.Err(), but the event is in the log")
			canceled++
		}
	}
	// Each stream's versions run from 0 without a gap, in log order, and a
	// read of the stream gives the same events.
	byStream := map[string][]RecordedEvent{}
	for _, ev := range all {
		require.Equal(t, uint64(len(byStream[ev.Stream])), ev.StreamVersion, "position %d", ev.Position)
		byStream[ev.Stream] = append(byStream[ev.Stream], ev)
	}
	for stream, want := range byStream {
		got, err := s.ReadStream(context.Background(), stream, 0, 0)
		require.NoError(t, err)
		require.Equal(t, want, got, stream)
	}
	t.Logf("%d calls: %d committed, %d cancelled before the writer took them", len(byID), committed, canceled)
	require.Positive(t, committed)
}

// countID counts the events of stream with the given ID.
func countID(t *testing.T, s *Store, stream string, id EventID) int {
	t.Helper()
	evs, err := s.ReadStreamBackward(context.Background(), stream, math.MaxUint64, IdempotencyWindow)
	require.NoError(t, err)
	n := 0
	for _, e := range evs {
		if e.ID == id {
			n++
		}
	}
	return n
}

// powerLossOp is one append of the power-loss workload.
type powerLossOp struct {
	stream string
	events []EventData
}

// powerLossWorkload is a fixed run of n appends: one to four events each,
// from a few bytes to past a 600-byte segment, over five streams.
func powerLossWorkload(n int) []powerLossOp {
	rng := rand.New(rand.NewPCG(7, 7))
	ops := make([]powerLossOp, n)
	for i := range ops {
		op := powerLossOp{stream: fmt.Sprint("p", rng.IntN(5))}
		for j := range 1 + rng.IntN(4) {
			size := 1 + rng.IntN(120)
			if rng.IntN(10) == 0 {
				size = 400 + rng.IntN(900)
			}
			op.events = append(op.events, EventData{ID: idFor(i, j), Type: "p", Data: bytes.Repeat([]byte{byte(i)}, size)})
		}
		ops[i] = op
	}
	return ops
}

// idFor names event j of operation i.
func idFor(i, j int) EventID {
	var id EventID
	id[0], id[1], id[2], id[15] = byte(i), byte(i>>8), byte(j), 0x77
	return id
}

// runUntilCrash appends ops to a store over fs from writers goroutines until
// they are done or an append fails. It returns the IDs of acknowledged and of
// failed appends' events.
func runUntilCrash(t *testing.T, fs vfs.FS, ops []powerLossOp, writers int, mode SyncMode) (acked, failed map[EventID]bool, st Stats) {
	t.Helper()
	acked, failed = map[EventID]bool{}, map[EventID]bool{}
	s, err := Open("/store", &Options{SegmentSize: 600, Sync: mode, fs: fs})
	if err != nil {
		require.ErrorIs(t, err, vfs.ErrCrashed, "Open fails only by the crash")
		return acked, failed, st
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ops); i = int(next.Add(1) - 1) {
				_, err := s.Append(context.Background(), ops[i].stream, Any, ops[i].events...)
				mu.Lock()
				for _, e := range ops[i].events {
					if err == nil {
						acked[e.ID] = true
					} else {
						failed[e.ID] = true
					}
				}
				mu.Unlock()
				if err != nil {
					require.ErrorIs(t, err, ErrStorageFailed)
					return
				}
			}
		}()
	}
	wg.Wait()
	st = s.Stats()
	_ = s.Close() // on a frozen file system, Close may fail too
	return acked, failed, st
}

// checkAfterPowerLoss reopens the crashed image: it must open, hold every
// acknowledged event, hold each failed append whole or not at all, nothing
// else, with gapless positions and contiguous versions, and take appends.
func checkAfterPowerLoss(t *testing.T, image *vfs.CrashFS, ops []powerLossOp, acked, failed map[EventID]bool) {
	t.Helper()
	s, err := Open("/store", &Options{SegmentSize: 600, fs: image})
	require.NoError(t, err, "a power loss must never leave a store that will not open (modes %v)", image.CrashModes())
	defer s.Close()
	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	seen := map[EventID]bool{}
	versions := map[string]uint64{}
	for i, e := range all {
		require.Equal(t, uint64(i), e.Position)
		require.Equal(t, versions[e.Stream], e.StreamVersion)
		versions[e.Stream]++
		require.True(t, acked[e.ID] || failed[e.ID], "event %v at %d was never appended", e.ID, i)
		seen[e.ID] = true
	}
	for id := range acked {
		require.True(t, seen[id], "acknowledged event %v lost (modes %v)", id, image.CrashModes())
	}
	for _, op := range ops { // all or nothing per append
		n := 0
		for _, e := range op.events {
			if seen[e.ID] {
				n++
			}
		}
		require.True(t, n == 0 || n == len(op.events), "append split by the crash: %d of %d events", n, len(op.events))
	}
	_, err = s.Append(context.Background(), "after", Any, EventData{Type: "t"})
	require.NoError(t, err)
}

// TestStore_PowerLoss_AtEverySyncPoint crashes a 200-append run at each of
// its fsyncs (segment headers, directory syncs and batches), then at 500
// random sync points under 4 concurrent writers (20,000 under make stress),
// and checks that every acknowledged append survives each randomly torn
// image.
func TestStore_PowerLoss_AtEverySyncPoint(t *testing.T) {
	ops := powerLossWorkload(200)
	dry := vfs.NewCrashFS()
	acked, _, _ := runUntilCrash(t, dry, ops, 1, SyncAlways)
	require.Len(t, acked, countEvents(ops))
	points := dry.SyncCount()
	t.Logf("%d sync points in a %d-append run", points, len(ops))

	for k := 1; k <= points; k++ {
		fs := vfs.NewCrashFS()
		fs.CrashAtSync(k)
		acked, failed, _ := runUntilCrash(t, fs, ops, 1, SyncAlways)
		require.True(t, fs.Frozen(), "sync point %d was reached", k)
		image := fs.Crash(rand.New(rand.NewPCG(uint64(k), 1)))
		checkAfterPowerLoss(t, image, ops, acked, failed)
	}

	// With 4 writers and each fsync slowed by 50 µs, appends share
	// batches, so a crash can tear several frames of one group commit.
	seeds := stressScale(500, 20000)
	deadline := stressDeadline(t)
	var appends, batches uint64
	for seed := range seeds {
		if time.Now().After(deadline) {
			t.Logf("time bound reached after %d of %d seeds", seed, seeds)
			break
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 2))
		fs := vfs.NewCrashFS()
		fs.CrashAtSync(1 + rng.IntN(points/2)) // batched runs make fewer syncs
		slow := vfs.NewFaultFS(fs)
		slow.OnCall(vfs.OpSync, func() { time.Sleep(50 * time.Microsecond) })
		acked, failed, st := runUntilCrash(t, slow, ops, 4, SyncAlways)
		appends, batches = appends+st.Appends, batches+st.Batches
		image := fs.Crash(rng)
		checkAfterPowerLoss(t, image, ops, acked, failed)
	}
	t.Logf("concurrent phase: %d appends acknowledged in %d batches", appends, batches)
	assert.Less(t, batches, appends, "group commits should hold several appends")
}

func countEvents(ops []powerLossOp) int {
	n := 0
	for _, op := range ops {
		n += len(op.events)
	}
	return n
}

// modelEvent is an event as the model expects to read it back.
type modelEvent struct {
	stream  string
	id      EventID
	data    []byte
	version uint64
}

// modelAppend is a successful Append with caller-given IDs, kept for retries.
type modelAppend struct {
	stream   string
	expected ExpectedVersion
	events   []EventData
	res      AppendResult
	first    uint64 // position of its first event
}

// storeModel is what the log should hold: a list of events and, per stream,
// how many it has.
type storeModel struct {
	events  []modelEvent
	count   map[string]uint64
	appends []modelAppend
	ends    map[int]bool // positions where an append ended: where a crash may cut
	durable int          // events that survive any crash: Stats.Synced, checked
}

func (m *storeModel) add(stream string, evs []EventData) AppendResult {
	for _, e := range evs {
		m.events = append(m.events, modelEvent{stream: stream, id: e.ID, data: e.Data, version: m.count[stream]})
		m.count[stream]++
	}
	m.ends[len(m.events)] = true
	return AppendResult{Position: uint64(len(m.events) - 1), StreamVersion: m.count[stream] - 1}
}

// truncate drops the events from position n on, after a crash lost them,
// and every append that lost any of its events.
func (m *storeModel) truncate(n int) {
	m.events = m.events[:n]
	clear(m.count)
	for _, e := range m.events {
		m.count[e.stream]++
	}
	m.appends = slices.DeleteFunc(m.appends, func(a modelAppend) bool { return a.res.Position >= uint64(n) })
	for end := range m.ends {
		if end > n {
			delete(m.ends, end)
		}
	}
}

// syncedFloor raises the durable floor to what the store reports as synced,
// after checking the store never reports more than it holds.
func (m *storeModel) syncedFloor(t *testing.T, s *Store) {
	st := s.Stats()
	require.LessOrEqual(t, st.Synced, st.Events)
	m.durable = max(m.durable, int(st.Synced))
}

// expect predicts an Append of fresh events: ok, or the actual version.
func (m *storeModel) expect(stream string, exp ExpectedVersion) (bool, int64) {
	n := m.count[stream]
	switch exp {
	case Any:
		return true, int64(n) - 1
	case NoStream:
		return n == 0, int64(n) - 1
	case StreamExists:
		return n > 0, int64(n) - 1
	}
	return n == uint64(exp)+1, int64(n) - 1
}

// TestStore_Model runs random histories against the store and a model: 200
// seeds of 1,000 operations (10,000 seeds under make stress), each seed with
// its own MaxBatch, SegmentSize and sync mode. A failure names its seed;
// EVENTSTORE_SEED=n replays it alone. Under the race detector, which slows
// its many reopens tenfold, it runs 20 seeds; make test runs the 200 in a
// second pass without it.
func TestStore_Model(t *testing.T) {
	seeds := stressScale(200, 10000)
	if race.Enabled && os.Getenv("EVENTSTORE_STRESS") == "" {
		seeds = 20
	}
	first := 0
	if s := os.Getenv("EVENTSTORE_SEED"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		first, seeds = n, 1
	}
	deadline := stressDeadline(t)
	done := 0
	for seed := first; seed < first+seeds && time.Now().Before(deadline); seed++ {
		if !t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runModel(t, uint64(seed), 1000) }) {
			t.Fatalf("replay with EVENTSTORE_SEED=%d go test -run 'TestStore_Model' .", seed)
		}
		done++
	}
	t.Logf("%d seeds of 1,000 operations (of %d asked)", done, seeds)
}

// stressDeadline bounds a stress-sized loop in time: EVENTSTORE_STRESS_TIME
// (a duration, set by make stress) from now, and never past the test's own
// deadline less a margin.
func stressDeadline(t testing.TB) time.Time {
	deadline := time.Now().Add(24 * time.Hour)
	if d, err := time.ParseDuration(os.Getenv("EVENTSTORE_STRESS_TIME")); err == nil {
		deadline = time.Now().Add(d)
	}
	if td, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := td.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
			deadline = d.Add(-time.Minute)
		}
	}
	return deadline
}

func runModel(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	opts := Options{
		MaxBatch:    []int{1, 3, 256}[rng.IntN(3)],
		SegmentSize: []int64{700, 4096, 1 << 20}[rng.IntN(3)],
		Sync:        []SyncMode{SyncAlways, SyncAlways, SyncAlways, SyncInterval, SyncNone}[rng.IntN(5)],
	}
	opts.SyncInterval = time.Millisecond
	fs := vfs.NewCrashFS()
	if old := rng.IntN(6); old < 2 {
		// A store from before version 3: its first segment is version 1,
		// never allocated ahead, or version 2, masked with splitmix64,
		// until the log rolls over.
		require.NoError(t, fs.MkdirAll("/m", 0o755))
		require.NoError(t, fs.WriteFile("/m/"+segmentName(0), segmentHeaderOf(uint8(old+1), 0)))
	}
	openStore := func() *Store {
		o := opts
		o.fs = fs
		s, err := Open("/m", &o)
		require.NoError(t, err, "seed %d opts %+v", seed, opts)
		return s
	}
	s := openStore()
	defer func() { _ = s.Close() }()
	m := &storeModel{count: map[string]uint64{}, ends: map[int]bool{0: true}}
	ctx := context.Background()
	streams := []string{"a", "b", "c", "d", "e", "f"}
	newEvents := func(explicit bool) []EventData {
		evs := make([]EventData, 1+rng.IntN(3))
		for i := range evs {
			evs[i] = EventData{Type: "m", Data: []byte(fmt.Sprintf("%d-%d-%d", seed, len(m.events), rng.IntN(1e6)))}
			if rng.IntN(4) == 0 {
				evs[i].Data = append(evs[i].Data, bytes.Repeat([]byte{0}, rng.IntN(900))...)
			}
			if explicit {
				evs[i].ID = NewEventID()
			}
		}
		return evs
	}
	// reconcile reopens after a crash and makes the model match what
	// survived: everything durable, then whole appends.
	reconcile := func(image *vfs.CrashFS, inFlight []EventData, inFlightStream string) {
		_ = s.Close()
		fs = image
		s = openStore()
		got := int(s.Stats().Events)
		require.GreaterOrEqual(t, got, m.durable, "seed %d: synced events lost", seed)
		require.True(t, got >= len(m.events) || m.ends[got], "seed %d: the crash cut an append at %d", seed, got)
		// The crash file system never touches synced bytes, so a
		// truncation in the wrong place shows in the count and the tail;
		// the whole log is compared at the end of the seed.
		lo := max(0, min(got, len(m.events))-checkTail)
		tail, err := s.ReadAll(ctx, uint64(lo), 0)
		require.NoError(t, err)
		for i := lo; i < min(got, len(m.events)); i++ {
			if err := m.events[i].differs(tail[i-lo]); err != "" {
				t.Fatalf("seed %d position %d after a crash: %s", seed, i, err)
			}
		}
		if got < len(m.events) {
			m.truncate(got)
		}
		if extra := tail[len(m.events)-lo:]; len(extra) > 0 {
			require.Equal(t, len(inFlight), len(extra), "seed %d: only the append in flight may appear, whole", seed)
			for i, e := range extra {
				require.Equal(t, inFlight[i].Data, e.Data)
			}
			m.add(inFlightStream, inFlight)
		}
		m.durable = len(m.events)
	}

	for op := range ops {
		switch r := rng.IntN(100); {
		case r < 40: // append with a random expectation
			stream := streams[rng.IntN(len(streams))]
			exp := []ExpectedVersion{Any, NoStream, StreamExists, Exact(uint64(max(0, int(m.count[stream])-1+rng.IntN(3)-1)))}[rng.IntN(4)]
			explicit := rng.IntN(5) != 0
			evs := newEvents(explicit)
			ok, actual := m.expect(stream, exp)
			res, err := s.Append(ctx, stream, exp, evs...)
			if !ok {
				var wrong *WrongExpectedVersionError
				require.ErrorAs(t, err, &wrong, "seed %d op %d", seed, op)
				require.Equal(t, actual, wrong.Actual, "seed %d op %d", seed, op)
				continue
			}
			require.NoError(t, err, "seed %d op %d", seed, op)
			firstPos := uint64(len(m.events))
			require.Equal(t, m.add(stream, evs), res, "seed %d op %d", seed, op)
			if explicit {
				m.appends = append(m.appends, modelAppend{stream, exp, evs, res, firstPos})
			}
			m.syncedFloor(t, s)
			if opts.Sync == SyncAlways {
				require.Equal(t, len(m.events), m.durable, "SyncAlways acknowledges only synced appends")
			}
		case r < 50: // retry an earlier append with the same IDs
			if len(m.appends) == 0 {
				continue
			}
			a := m.appends[rng.IntN(len(m.appends))]
			firstVersion := a.res.StreamVersion + 1 - uint64(len(a.events))
			if (a.expected == Any || a.expected == StreamExists) && m.count[a.stream]-firstVersion > IdempotencyWindow {
				continue // outside the window Any promises
			}
			res, err := s.Append(ctx, a.stream, a.expected, a.events...)
			require.NoError(t, err, "seed %d op %d: retry", seed, op)
			require.Equal(t, a.res, res, "seed %d op %d: retry returns the original", seed, op)
		case r < 60: // a burst of concurrent appends, committed in shared batches
			k := 2 + rng.IntN(5)
			type out struct {
				stream string
				evs    []EventData
				res    AppendResult
				err    error
			}
			outs := make([]out, k)
			var wg sync.WaitGroup
			for i := range outs {
				outs[i] = out{stream: streams[rng.IntN(len(streams))], evs: newEvents(true)}
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i].res, outs[i].err = s.Append(ctx, outs[i].stream, Any, outs[i].evs...)
				}()
			}
			wg.Wait()
			slices.SortFunc(outs, func(a, b out) int { return cmpUint(a.res.Position, b.res.Position) })
			for _, o := range outs {
				require.NoError(t, o.err, "seed %d op %d", seed, op)
				require.Equal(t, m.add(o.stream, o.evs), o.res, "seed %d op %d: burst", seed, op)
			}
			m.syncedFloor(t, s)
			if opts.Sync == SyncAlways {
				require.Equal(t, len(m.events), m.durable, "SyncAlways acknowledges only synced appends")
			}
		case r < 80: // read a page and compare
			checkModelRead(t, s, m, rng, seed, op)
		case r < 85: // close and reopen
			require.NoError(t, s.Close())
			s = openStore()
			m.durable = len(m.events)
			checkModelTail(t, s, m, seed)
		case r < 92: // power loss between calls
			reconcile(fs.Crash(rng), nil, "")
			checkModelTail(t, s, m, seed)
		default: // power loss at one of the next syncs, in the middle of an append
			fs.CrashAtSyncAfter(1 + rng.IntN(3))
			var inFlight []EventData
			var inFlightStream string
			for range 20 {
				stream := streams[rng.IntN(len(streams))]
				evs := newEvents(true)
				res, err := s.Append(ctx, stream, Any, evs...)
				if err != nil {
					require.ErrorIs(t, err, ErrStorageFailed, "seed %d op %d", seed, op)
					inFlight, inFlightStream = evs, stream
					break
				}
				require.Equal(t, m.add(stream, evs), res)
				m.syncedFloor(t, s)
			}
			if !fs.Frozen() {
				fs.CrashAtSync(0)
			}
			reconcile(fs.Crash(rng), inFlight, inFlightStream)
			checkModelTail(t, s, m, seed)
		}
	}
	require.NoError(t, s.Close())
	s = openStore()
	checkModelAll(t, s, m, seed)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkTail is how many of the newest events are compared after a reopen.
const checkTail = 50

// checkModelTail compares the event count and the newest events with the
// model.
func checkModelTail(t *testing.T, s *Store, m *storeModel, seed uint64) {
	t.Helper()
	require.Equal(t, uint64(len(m.events)), s.Stats().Events, "seed %d", seed)
	got, err := s.ReadAllBackward(context.Background(), math.MaxUint64, checkTail)
	require.NoError(t, err)
	require.Len(t, got, min(checkTail, len(m.events)), "seed %d", seed)
	for i, e := range got {
		p := len(m.events) - 1 - i
		if err := m.events[p].differs(e); err != "" || e.Position != uint64(p) {
			t.Fatalf("seed %d position %d: %s (at %d)", seed, p, err, e.Position)
		}
	}
}

// checkModelAll compares the whole log with the model.
func checkModelAll(t *testing.T, s *Store, m *storeModel, seed uint64) {
	t.Helper()
	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Len(t, all, len(m.events), "seed %d", seed)
	for i := range all {
		if err := m.events[i].differs(all[i]); err != "" {
			t.Fatalf("seed %d position %d: %s", seed, i, err)
		}
		if all[i].Position != uint64(i) {
			t.Fatalf("seed %d: event %d has position %d", seed, i, all[i].Position)
		}
	}
	require.Equal(t, uint64(len(m.events)), s.Stats().Events)
}

// differs says how e differs from the model's event, or "" if it does not.
// It compares without reflection: the model test makes millions of these.
func (want modelEvent) differs(e RecordedEvent) string {
	switch {
	case want.stream != e.Stream:
		return fmt.Sprintf("stream %q, want %q", e.Stream, want.stream)
	case want.version != e.StreamVersion:
		return fmt.Sprintf("version %d, want %d", e.StreamVersion, want.version)
	case !bytes.Equal(want.data, e.Data):
		return fmt.Sprintf("data %q, want %q", e.Data, want.data)
	case !want.id.IsZero() && want.id != e.ID:
		return fmt.Sprintf("id %v, want %v", e.ID, want.id)
	}
	return ""
}

// checkModelRead reads a random page, forward or backward, of the log or of
// a stream, and compares it with the model.
func checkModelRead(t *testing.T, s *Store, m *storeModel, rng *rand.Rand, seed uint64, op int) {
	t.Helper()
	ctx := context.Background()
	limit := rng.IntN(20)
	var want []modelEvent
	var got []RecordedEvent
	var err error
	switch rng.IntN(4) {
	case 0:
		from := uint64(rng.IntN(len(m.events) + 2))
		got, err = s.ReadAll(ctx, from, limit)
		if from < uint64(len(m.events)) {
			want = m.events[from:]
		}
	case 1:
		from := uint64(rng.IntN(len(m.events) + 2))
		got, err = s.ReadAllBackward(ctx, from, limit)
		want = slices.Clone(m.events[:min(from+1, uint64(len(m.events)))])
		slices.Reverse(want)
	case 2, 3:
		stream := []string{"a", "b", "c", "d", "e", "f", "none"}[rng.IntN(7)]
		var evs []modelEvent
		for _, e := range m.events {
			if e.stream == stream {
				evs = append(evs, e)
			}
		}
		from := uint64(rng.IntN(len(evs) + 2))
		if rng.IntN(2) == 0 {
			got, err = s.ReadStream(ctx, stream, from, limit)
			if from < uint64(len(evs)) {
				want = evs[from:]
			}
		} else {
			got, err = s.ReadStreamBackward(ctx, stream, from, limit)
			want = slices.Clone(evs[:min(from+1, uint64(len(evs)))])
			slices.Reverse(want)
		}
	}
	require.NoError(t, err, "seed %d op %d", seed, op)
	if limit > 0 && len(want) > limit {
		want = want[:limit]
	}
	require.Len(t, got, len(want), "seed %d op %d", seed, op)
	for i := range got {
		if err := want[i].differs(got[i]); err != "" {
			t.Fatalf("seed %d op %d: read event %d: %s", seed, op, i, err)
		}
	}
}

// TestStore_Open_TruncatedAtEveryByte cuts the log at every byte of its last
// three records (of 1 B, about 4 KiB and over 64 KiB of data) and of a
// segment header: each reopen keeps exactly the whole records before the cut
// and takes appends. Under the race detector it tries every 61st cut and
// every cut near a frame edge; make test's second pass tries them all.
func TestStore_Open_TruncatedAtEveryByte(t *testing.T) {
	fs := vfs.NewCrashFS()
	// Segments of a megabyte: each reopen allocates one ahead, in memory.
	const segmentSize = 1 << 20
	s, err := Open("/t", &Options{fs: fs, SegmentSize: segmentSize})
	require.NoError(t, err)
	seg := "/t/" + segmentName(0)
	ctx := context.Background()
	for i := range 4 {
		_, err := s.Append(ctx, "s", Any, EventData{Type: "t", Data: []byte(fmt.Sprint("lead-", i))})
		require.NoError(t, err)
	}
	var ends []int64 // end of each of the last three frames
	starts := []int64{}
	// The open segment has space allocated after its frames; the last
	// frame ends in the segment's last non-zero byte, its end mark.
	written := func() int64 {
		b, err := fs.ReadFile(seg)
		require.NoError(t, err)
		require.Equal(t, byte(record.EndMark), b[lastNonZero(b)])
		return int64(lastNonZero(b) + 1)
	}
	for _, size := range []int{1, 4000, 70000} {
		starts = append(starts, written())
		_, err = s.Append(ctx, "s", Any, EventData{Type: "t", Data: bytes.Repeat([]byte{0xAB}, size)})
		require.NoError(t, err)
		ends = append(ends, written())
	}
	require.NoError(t, s.Close())
	full, err := fs.ReadFile(seg)
	require.NoError(t, err)

	sampled := func(cut int64) bool {
		if !race.Enabled {
			return true
		}
		for _, edge := range append(slices.Clone(starts), ends...) {
			if cut >= edge-2 && cut <= edge+record.HeaderSize+2 {
				return true
			}
		}
		return cut%61 == 0
	}
	tried := 0
	for cut := starts[0]; cut < int64(len(full)); cut++ {
		if !sampled(cut) {
			continue
		}
		tried++
		whole := 4
		kept := starts[0]
		for i, end := range ends {
			if end <= cut {
				whole, kept = 5+i, end
			}
		}
		img := vfs.NewCrashFS()
		require.NoError(t, img.MkdirAll("/t", 0o755))
		require.NoError(t, img.WriteFile(seg, full[:cut]))
		s, err := Open("/t", &Options{fs: img, SegmentSize: segmentSize})
		require.NoError(t, err, "cut at %d", cut)
		st := s.Stats()
		require.Equal(t, uint64(whole), st.Events, "cut at %d", cut)
		require.Equal(t, cut-kept, st.TornBytes, "cut at %d", cut)
		res, err := s.Append(ctx, "s", Exact(uint64(whole-1)), EventData{Type: "t"})
		require.NoError(t, err, "cut at %d", cut)
		require.Equal(t, uint64(whole), res.Position)
		require.NoError(t, s.Close())
	}
	t.Logf("%d cuts of the last three records", tried)

	// A new segment whose header is cut at every byte.
	hdr := record.AppendSegmentHeader(nil, 9, 0)
	for cut := 0; cut <= len(hdr); cut++ {
		img := vfs.NewCrashFS()
		require.NoError(t, img.MkdirAll("/t", 0o755))
		require.NoError(t, img.WriteFile(seg, full[:ends[0]]))
		require.NoError(t, img.WriteFile("/t/"+segmentName(5), hdr[:cut]))
		s, err := Open("/t", &Options{fs: img, SegmentSize: segmentSize})
		if cut < len(hdr) {
			require.NoError(t, err, "header cut at %d", cut)
			assert.Equal(t, int64(cut), s.Stats().TornBytes, "header cut at %d: the segment is removed", cut)
		} else {
			require.ErrorIs(t, err, ErrCorrupt, "a whole header naming base 9 for a segment named 5")
			continue
		}
		require.Equal(t, uint64(5), s.Stats().Events)
		_, err = s.Append(ctx, "s", Exact(4), EventData{Type: "t"})
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
}

// TestReadIndex_HeapBytes_MatchesARecount checks the index's running count
// of its own bytes against a walk over every segment and stream, after
// appends over many streams and segments and after a reopen.
func TestReadIndex_HeapBytes_MatchesARecount(t *testing.T) {
	recount := func(ix *readIndex) int64 {
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		var n int64
		for _, seg := range ix.segments {
			n += int64(cap(seg.frames))*int64(unsafe.Sizeof(frameRef{})) + int64(cap(seg.owners))*8
		}
		for name, st := range ix.streams {
			n += perStreamBytes + int64(len(name)) + int64(cap(st.positions))*8 + int64(cap(st.fingerprints))*4
		}
		return n
	}
	s, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096, Sync: SyncNone})
	for i := range 3000 {
		_, err := s.Append(context.Background(), fmt.Sprint("stream-", i%37), Any, ev(strings.Repeat("x", i%50)))
		require.NoError(t, err)
	}
	waitIndexed(t, s) // the indexer drops owners as it goes
	assert.Equal(t, recount(s.index), s.Stats().IndexBytes)
	require.Greater(t, s.Stats().Segments, 10)
	require.NoError(t, s.Close())
	s2, err := Open(dir, nil)
	require.NoError(t, err)
	defer s2.Close()
	waitIndexed(t, s2)
	assert.Equal(t, recount(s2.index), s2.Stats().IndexBytes, "after a reopen")
	assert.Positive(t, s2.Stats().IndexBytes)
}

// TestWriter_Subscribe_PoisonedStoreYieldsStorageErrorOnce fails an fsync
// under live subscriptions: each delivers every event committed before the
// failure, then yields the *StorageError once and ends; so does one started
// after the failure, once it has caught up.
func TestWriter_Subscribe_PoisonedStoreYieldsStorageErrorOnce(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	s, _ := openWithFS(t, ffs, nil)
	ctx := context.Background()
	run := func(seq iter.Seq2[RecordedEvent, error]) <-chan collected {
		done := make(chan collected, 1)
		go func() { done <- collect(seq) }()
		return done
	}
	live := []<-chan collected{run(s.Subscribe(ctx, 0)), run(s.SubscribeStream(ctx, "a", 0))}
	for i := range 3 {
		_, err := s.Append(ctx, "a", Any, ev(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	ffs.Fail(vfs.OpSync, 1, syscall.EIO, false)
	_, err := s.Append(ctx, "a", Any, ev("lost"))
	require.ErrorIs(t, err, ErrStorageFailed)
	later := []<-chan collected{run(s.Subscribe(ctx, 1)), run(s.SubscribeStream(ctx, "a", 1))}

	for i, done := range append(live, later...) {
		var o collected
		select {
		case o = <-done:
		case <-time.After(30 * time.Second):
			require.FailNow(t, "a subscription did not end when the store failed", "subscription %d", i)
		}
		want := []uint64{0, 1, 2}
		if i >= len(live) {
			want = want[1:]
		}
		var positions []uint64
		for _, e := range o.events {
			positions = append(positions, e.Position)
		}
		assert.Equal(t, want, positions, "subscription %d", i)
		require.Equal(t, 1, o.errs, "subscription %d", i)
		var serr *StorageError
		assert.ErrorAs(t, o.err, &serr, "subscription %d", i)
	}
}

// TestWriter_Subscribe_ResumesAfterPowerLoss consumes a log with a
// checkpoint while it is written, cuts the power, and resumes. Under
// SyncAlways every event a subscription saw was durable: the resumed one
// starts exactly at the checkpoint. Under SyncNone the crash can take
// events a subscription saw; resuming past the recovered head yields
// ErrBeyondHead rather than skipping the events written next.
func TestWriter_Subscribe_ResumesAfterPowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 0))
	for _, mode := range []SyncMode{SyncAlways, SyncNone} {
		beyond := 0
		defer func() { t.Logf("%v: %d rounds resumed past the recovered head", mode, beyond) }()
		for round := range stressScale(20, 200) {
			fs := vfs.NewCrashFS()
			opts := &Options{Sync: mode, SegmentSize: 2048, fs: fs}
			s, err := Open("/sub", opts)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			var checkpoint atomic.Uint64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ev, err := range s.Subscribe(ctx, 0) {
					if err != nil {
						return
					}
					checkpoint.Store(ev.Position + 1) // the read model's transaction
				}
			}()
			n := 20 + rng.IntN(100)
			for i := range n {
				_, err := s.Append(ctx, "s-"+strconv.Itoa(i%4), Any, ev(strconv.Itoa(i)))
				require.NoError(t, err)
			}
			// Crash once the subscription has seen some, not necessarily all.
			require.Eventually(t, func() bool { return checkpoint.Load() > uint64(n/2) }, 10*time.Second, time.Millisecond)
			image := fs.Crash(rng)
			cancel()
			<-done
			_ = s.Close()
			saved := checkpoint.Load()

			opts.fs = image
			s, err = Open("/sub", opts)
			require.NoError(t, err, "round %d", round)
			head := s.Stats().Events
			if saved > head {
				require.Equal(t, SyncNone, mode, "round %d: an event seen under SyncAlways was lost", round)
				got := collect(s.Subscribe(context.Background(), saved))
				require.Empty(t, got.events)
				require.ErrorIs(t, got.err, ErrBeyondHead, "round %d", round)
				require.NoError(t, s.Close())
				beyond++
				continue
			}
			_, err = s.Append(context.Background(), "s-0", Any, ev("after"))
			require.NoError(t, err)
			for first, err := range s.Subscribe(context.Background(), saved) {
				require.NoError(t, err, "%v round %d", mode, round)
				require.Equal(t, saved, first.Position, "%v round %d: resumed at the checkpoint", mode, round)
				want := "after"
				if saved < head {
					want = strconv.Itoa(int(saved))
				}
				assert.Equal(t, want, string(first.Data))
				break
			}
			require.NoError(t, s.Close())
		}
	}
}

// collected is what a finite or failing sequence yielded.
type collected struct {
	events []RecordedEvent
	err    error
	errs   int
}

// collect runs seq to its end.
func collect(seq iter.Seq2[RecordedEvent, error]) collected {
	var c collected
	for e, err := range seq {
		if err != nil {
			c.err = err
			c.errs++
			continue
		}
		c.events = append(c.events, e)
	}
	return c
}

// TestWriter_Subscribe_StreamWaitersLeaveNothingBehind ends 1,000 stream
// subscriptions waiting for streams that never get an event, and checks the
// notifier holds nothing for them after; and that stream waiters still
// sharing a channel when one leaves are woken by their stream's event.
func TestWriter_Subscribe_StreamWaitersLeaveNothingBehind(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			got := collect(s.SubscribeStream(ctx, fmt.Sprintf("never-%d", i%500), 0))
			assert.ErrorIs(t, got.err, context.Canceled)
		})
	}
	waiting := func(want int) func() bool {
		return func() bool {
			s.index.notify.mu.Lock()
			defer s.index.notify.mu.Unlock()
			n := 0
			for _, w := range s.index.notify.streams {
				n += w.waiters
			}
			return n == want
		}
	}
	require.Eventually(t, waiting(1000), 10*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	assert.Empty(t, s.index.notify.streams)

	// Two waiters on one stream; the first leaves, the second is woken.
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan collected, 1)
	go func() { first <- collect(s.SubscribeStream(ctx1, "shared", 0)) }()
	second := make(chan RecordedEvent, 1)
	go func() {
		for e, err := range s.SubscribeStream(context.Background(), "shared", 0) {
			assert.NoError(t, err)
			second <- e
			return
		}
	}()
	require.Eventually(t, waiting(2), 10*time.Second, time.Millisecond)
	cancel1()
	require.ErrorIs(t, (<-first).err, context.Canceled)
	require.Eventually(t, waiting(1), 10*time.Second, time.Millisecond)
	_, err := s.Append(context.Background(), "shared", Any, ev("x"))
	require.NoError(t, err)
	assert.Equal(t, "x", string((<-second).Data))
	assert.Empty(t, s.index.notify.streams)
}

// TestReadIndex_FrameAtFindsWhatABinarySearchFinds checks frameAt, which
// starts where the frames' sizes say the event should be and widens from
// there: whatever the sizes, it must find the frame a binary search
// finds, for every event of the segment and past its last frame's start.
func TestReadIndex_FrameAtFindsWhatABinarySearchFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	framesOf := func(counts ...int) []frameRef {
		var frames []frameRef
		rel := uint32(0)
		for k, c := range counts {
			frames = append(frames, frameRef{rel: rel, off: uint32(k)})
			rel += uint32(c)
		}
		return frames
	}
	repeat := func(n, c int) []int { return slices.Repeat([]int{c}, n) }
	randomCounts := func(n, most int) []int {
		counts := make([]int, n)
		for k := range counts {
			counts[k] = 1 + rng.IntN(most)
		}
		return counts
	}
	layouts := []struct { // in order, so that a failure in the sampled positions repeats
		name   string
		frames []frameRef
	}{
		{"one frame", framesOf(1)},
		{"one frame of many", framesOf(500)},
		{"two frames", framesOf(1, 1)},
		{"two frames, the first larger", framesOf(300, 1)},
		{"two frames, the second larger", framesOf(1, 300)},
		{"an event a frame", framesOf(repeat(3000, 1)...)},
		{"sizes at random", framesOf(randomCounts(3000, 50)...)},
		{"one large frame in the middle", framesOf(slices.Concat(repeat(40, 1), []int{200_000}, repeat(40, 1))...)},
		{"one large frame first", framesOf(slices.Concat([]int{200_000}, repeat(80, 1))...)},
		{"one large frame last", framesOf(slices.Concat(repeat(80, 1), []int{200_000})...)},
		{"small frames, then large ones", framesOf(slices.Concat(repeat(2000, 1), repeat(20, 5000))...)},
		{"large frames, then small ones", framesOf(slices.Concat(repeat(20, 5000), repeat(2000, 1))...)},
	}
	for _, l := range layouts {
		name, frames := l.name, l.frames
		last := frames[len(frames)-1].rel
		var rels []uint32
		if last < 20_000 {
			for rel := uint32(0); rel <= last+600; rel++ {
				rels = append(rels, rel)
			}
		} else {
			for _, f := range frames { // either side of every frame start
				rels = append(rels, f.rel, f.rel+1, max(f.rel, 1)-1)
			}
			for range 20_000 {
				rels = append(rels, rng.Uint32N(last+600))
			}
		}
		for _, rel := range rels {
			want := sort.Search(len(frames), func(i int) bool { return frames[i].rel > rel }) - 1
			require.Equal(t, want, frameAt(frames, rel), "%s: event %d", name, rel)
		}
	}
}

// TestReadIndex_LocateFindsWhatABinarySearchFinds checks locateLocked
// across segments and frames of several events: it must find the frame,
// and its end, that a binary search finds.
func TestReadIndex_LocateFindsWhatABinarySearchFinds(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{SegmentSize: 16 << 10, Sync: SyncNone})
	require.NoError(t, err)
	defer s.Close()
	rng := rand.New(rand.NewPCG(13, 14))
	for range 1500 {
		evs := make([]EventData, 1+rng.IntN(3)*rng.IntN(4)) // half of them one event, the rest two to seven
		for k := range evs {
			evs[k] = EventData{Type: "T", Data: make([]byte, rng.IntN(100))}
		}
		_, err := s.Append(context.Background(), "st-"+strconv.Itoa(rng.IntN(5)), Any, evs...)
		require.NoError(t, err)
	}
	ix := s.index
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	require.Greater(t, len(ix.segments), 5)
	for p := range ix.next {
		seg := ix.segments[sort.Search(len(ix.segments), func(i int) bool { return ix.segments[i].base > p })-1]
		fi := sort.Search(len(seg.frames), func(i int) bool { return seg.frames[i].rel > uint32(p-seg.base) }) - 1
		want := frameLoc{seg: seg, off: int64(seg.frames[fi].off), end: seg.end}
		if fi+1 < len(seg.frames) {
			want.end = int64(seg.frames[fi+1].off)
		}
		require.Equal(t, want, ix.locateLocked(p), "position %d", p)
	}
}

// TestReadIndex_ConverterSharesNamesAndStaysBounded checks that events read
// carry the index's own stream-name strings, and that a subscription's
// caches stay within their bound however many streams and types it meets.
func TestReadIndex_ConverterSharesNamesAndStaysBounded(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{Sync: SyncNone})
	ctx := context.Background()
	n := 3 * subscriptionCache
	for i := range n {
		_, err := s.Append(ctx, fmt.Sprintf("stream-%d", i), Any, EventData{Type: fmt.Sprintf("type-%d", i)})
		require.NoError(t, err)
	}
	evs, err := s.ReadAll(ctx, 0, 10)
	require.NoError(t, err)
	for _, e := range evs {
		assert.Equal(t, unsafe.StringData(s.index.streams[e.Stream].name), unsafe.StringData(e.Stream), "the index's string")
	}

	conv := s.index.newConverter(subscriptionCache)
	seen := 0
	err = s.index.walk(ctx, 0, uint64(n), func(f *record.Frame, _ string) error {
		for i := range f.Events {
			e := conv.event(f, i, "")
			assert.Equal(t, fmt.Sprintf("stream-%d", e.Position), e.Stream)
			assert.Equal(t, fmt.Sprintf("type-%d", e.Position), e.Type)
			seen++
		}
		assert.LessOrEqual(t, len(conv.streams), subscriptionCache)
		assert.LessOrEqual(t, len(conv.types), subscriptionCache)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, n, seen)
}

// indexedLog builds a multi-segment log as buildLog does, then opens and
// closes it once, which writes every segment's index file.
func indexedLog(t *testing.T, seed uint64) (string, []mEv) {
	t.Helper()
	dir := t.TempDir()
	model := buildLog(t, dir, seed, 120, 600)
	s, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Len(t, indexFiles(t, dir), len(segFiles(t, dir)))
	return dir, model
}

// indexFiles returns the sizes of dir's index files, by path.
func indexFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, p := range paths {
		sizes[p] = fileSize(t, p)
	}
	return sizes
}

// TestWriter_Index_CleanReopenReadsOnlyIndexFiles checks that a reopen
// after a clean close reads every index file, each segment's header and the
// header of the last frame each index lists, and no other byte of the log;
// and that the index it rebuilds serves reads, version checks and
// idempotent retries exactly as a scan would.
func TestWriter_Index_CleanReopenReadsOnlyIndexFiles(t *testing.T) {
	dir, model := indexedLog(t, 21)
	var want int64
	for _, size := range indexFiles(t, dir) {
		want += size + record.SegmentHeaderSize + record.CompactHeaderSize
	}
	ffs := vfs.NewFaultFS(vfs.OS())
	s, err := Open(dir, &Options{SegmentSize: 600, fs: ffs})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, want, ffs.BytesRead(), "bytes read by Open")
	assert.True(t, s.w.indexer.idle(), "nothing to index")

	// A retry of an old append is recognised from the loaded fingerprints.
	old := model[len(model)/3]
	res, err := s.Append(context.Background(), old.stream, Exact(old.version-1),
		EventData{ID: old.id, Type: old.typ, Data: old.data, Metadata: old.meta})
	if old.version == 0 {
		res, err = s.Append(context.Background(), old.stream, NoStream,
			EventData{ID: old.id, Type: old.typ, Data: old.data, Metadata: old.meta})
	}
	require.NoError(t, err)
	assert.Equal(t, old.version, res.StreamVersion, "the retry returns the original result")
	checkStore(t, s, model)
}

// TestWriter_Index_ReadAheadTakesInOrderAndPassesOver checks the goroutine
// that reads index files ahead of Open's scan: each segment's result is its
// own file, decoded, or the error of one that is missing; a segment taken
// after others passes over them, and one passed over or not known is left
// to the caller to read; stop ends the goroutine while it waits to read
// further ahead (goleak checks that it ended).
func TestWriter_Index_ReadAheadTakesInOrderAndPassesOver(t *testing.T) {
	dir, _ := indexedLog(t, 22)
	paths := segFiles(t, dir)
	require.Greater(t, len(paths), indexLookahead+5) // so that the goroutine waits to read further when stopped
	l := &eventLog{fs: vfs.OS()}
	var segs []*segment
	for _, p := range paths {
		f, err := l.fs.OpenFile(p, os.O_RDONLY, 0)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		segs = append(segs, &segment{path: p, file: f})
	}
	require.NoError(t, os.Remove(indexPath(segs[4].path)))
	own := func(seg *segment) *record.SegmentIndex {
		x, err := decodeIndexFile(l.fs, indexPath(seg.path), math.MaxUint32)
		require.NoError(t, err)
		return x
	}

	a := l.readIndexesAhead(segs)
	stopped := false
	defer func() {
		if !stopped {
			a.stop()
		}
	}()
	d, ok := a.take(segs[0])
	require.True(t, ok)
	require.NoError(t, d.err)
	assert.Equal(t, own(segs[0]), d.x)
	d, ok = a.take(segs[3]) // passes over 1 and 2
	require.True(t, ok)
	require.NoError(t, d.err)
	assert.Equal(t, own(segs[3]), d.x)
	_, ok = a.take(segs[1])
	assert.False(t, ok, "a segment passed over is the caller's to read")
	_, ok = a.take(&segment{path: filepath.Join(dir, segmentName(1<<40))})
	assert.False(t, ok, "a segment the goroutine was not given is the caller's to read")
	d, ok = a.take(segs[4])
	require.True(t, ok)
	assert.ErrorIs(t, d.err, fs.ErrNotExist, "a segment without an index file")
	assert.Nil(t, d.x)
	a.stop() // the goroutine has read ahead as far as it may, and waits
	stopped = true

	var none *indexAhead
	_, ok = none.take(segs[0])
	assert.False(t, ok, "no read-ahead")
}

// TestWriter_Index_CrashReopenReadsOnlyTheUnindexedTail copies a store's
// files while it runs, as a crash would leave them once every sealed
// segment has its index file: Open then reads the last segment (twice at
// most: once back from its end, for where its frames end, once forward
// through them) and the index files, whatever the log's length.
func TestWriter_Index_CrashReopenReadsOnlyTheUnindexedTail(t *testing.T) {
	s, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096})
	var model []mEv
	for i := range 400 {
		e := EventData{ID: NewEventID(), Type: "t", Data: []byte(strings.Repeat("d", i%90))}
		stream := fmt.Sprintf("st-%d", i%4)
		res, err := s.Append(context.Background(), stream, Any, e)
		require.NoError(t, err)
		model = append(model, mEv{stream, e.ID, e.Type, e.Data, nil, res.StreamVersion})
	}
	waitIndexed(t, s)
	crashed := copyDir(t, snapshot(t, dir))
	segs := segFiles(t, crashed)
	require.Greater(t, len(segs), 5)
	idx := indexFiles(t, crashed)
	require.Len(t, idx, len(segs)-1, "every sealed segment is indexed, the active one is not")
	want := 2 * fileSize(t, segs[len(segs)-1])
	for _, size := range idx {
		want += size + record.SegmentHeaderSize + record.CompactHeaderSize
	}

	ffs := vfs.NewFaultFS(vfs.OS())
	s2, err := Open(crashed, &Options{SegmentSize: 4096, fs: ffs})
	require.NoError(t, err)
	defer s2.Close()
	assert.LessOrEqual(t, ffs.BytesRead(), want, "bytes read by Open")
	assert.Greater(t, ffs.BytesRead(), want-2*fileSize(t, segs[len(segs)-1]), "the last segment is read")
	checkStore(t, s2, model)
}

// TestWriter_Index_UnusableIndexFilesAreIgnored damages, swaps and forges
// index files. Each time Open logs a warning, scans the segment instead and
// gets the same store; the next Open finds the index file rewritten.
func TestWriter_Index_UnusableIndexFilesAreIgnored(t *testing.T) {
	src, model := indexedLog(t, 22)
	snap := snapshot(t, src)
	segs := segFiles(t, src)
	name := func(i int) string { return strings.TrimSuffix(filepath.Base(segs[i]), segmentSuffix) + indexSuffix }
	first, second, last := name(0), name(1), name(len(segs)-1)
	forge := func(n string, edit func(x *record.SegmentIndex)) []byte {
		x, err := record.DecodeSegmentIndex(snap[n], math.MaxUint32)
		require.NoError(t, err)
		edit(x)
		return record.AppendSegmentIndex(nil, x)
	}
	cases := map[string]func(files map[string][]byte){
		"bit flip":  func(f map[string][]byte) { f[second][len(f[second])/2] ^= 4 },
		"truncated": func(f map[string][]byte) { f[first] = f[first][:len(f[first])-1] },
		"empty":     func(f map[string][]byte) { f[last] = nil },
		"swapped":   func(f map[string][]byte) { f[first], f[second] = f[second], f[first] },
		"version gap": func(f map[string][]byte) {
			f[second] = forge(second, func(x *record.SegmentIndex) { x.Frames[0].FirstVersion++ })
		},
		"stream named twice": func(f map[string][]byte) {
			f[second] = forge(second, func(x *record.SegmentIndex) {
				x.Names = append(x.Names, x.Names[0])
				x.Frames[len(x.Frames)-1].Name = uint32(len(x.Names) - 1)
			})
		},
		"last frame not the segment's": func(f map[string][]byte) {
			f[last] = forge(last, func(x *record.SegmentIndex) { x.LastHeaderCRC++ })
		},
		"longer than the segment": func(f map[string][]byte) {
			f[last] = forge(last, func(x *record.SegmentIndex) { x.End++ })
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			files := maps.Clone(snap)
			for n, b := range files {
				files[n] = bytes.Clone(b)
			}
			damage(files)
			dir := copyDir(t, files)
			var logged bytes.Buffer
			s, err := Open(dir, &Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			require.NoError(t, err)
			assert.Contains(t, logged.String(), "index file")
			checkStore(t, s, model)
			require.NoError(t, s.Close())

			ffs := vfs.NewFaultFS(vfs.OS())
			s, err = Open(dir, &Options{fs: ffs})
			require.NoError(t, err)
			defer s.Close()
			var want int64
			for _, size := range indexFiles(t, dir) {
				want += size + record.SegmentHeaderSize + record.CompactHeaderSize
			}
			assert.Equal(t, want, ffs.BytesRead(), "rewritten: the second Open reads only index files")
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// TestWriter_Index_ReadsCheckFramesAgainstTheIndex forges an index file that
// passes every check Open can make without reading the frames: it swaps the
// names of two streams that both start in the segment. Every read that
// meets the streams' frames then reports corruption rather than return one
// stream's events as the other's: reads of either stream, from version 0,
// whose frame names the stream, or from a later version, whose frames name
// it by number only; and reads by position, whose frames naming a stream by
// number take its name from the index.
func TestWriter_Index_ReadsCheckFramesAgainstTheIndex(t *testing.T) {
	s, dir := openWithFS(t, vfs.OS(), nil)
	for i := range 6 {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%2), Any, ev(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	editIndexFile(t, dir, func(x *record.SegmentIndex) {
		require.Equal(t, []string{"s0", "s1"}, x.Names)
		x.Names[0], x.Names[1] = x.Names[1], x.Names[0]
	})

	reopen := func() *Store { // each store's first reads confirm names
		if s != nil {
			require.NoError(t, s.Close())
		}
		s, err := Open(dir, &Options{ReadOnly: true})
		require.NoError(t, err, "the forgery passes Open's checks")
		return s
	}
	ctx := context.Background()
	var err error
	s = nil
	defer func() { require.NoError(t, s.Close()) }()
	s = reopen()
	for _, stream := range []string{"s0", "s1"} {
		_, err = s.ReadStream(ctx, stream, 0, 0)
		require.ErrorIs(t, err, ErrCorrupt, stream)
		_, err = s.ReadStream(ctx, stream, 1, 0)
		require.ErrorIs(t, err, ErrCorrupt, "%s from version 1, all frames numbered", stream)
	}
	s = reopen()
	_, err = s.ReadStream(ctx, "s0", 2, 0)
	require.ErrorIs(t, err, ErrCorrupt, "the first read, from version 2")
	s = reopen()
	_, err = s.ReadAll(ctx, 0, 0)
	require.ErrorIs(t, err, ErrCorrupt)
	s = reopen()
	_, err = s.ReadAll(ctx, 4, 0)
	require.ErrorIs(t, err, ErrCorrupt, "from a numbered frame")
	s = reopen()
	all, err := s.ReadAll(ctx, 0, 2)
	require.NoError(t, err, "the frames naming their streams are read as they are")
	require.Len(t, all, 2)
	assert.Equal(t, "s0", all[0].Stream)
	assert.Equal(t, "s1", all[1].Stream)
}

// TestWriter_Index_ReadsCheckPositionsAgainstTheIndex forges index files
// that pass every check Open can make without reading the frames, but put
// events where the frames hold none: one folds a frame into the one before
// it, one gives the last frame an event more. Every read that relies on them
// reports corruption instead of skipping or inventing events; a walk from the
// start, which follows the frames themselves, still reads them right.
func TestWriter_Index_ReadsCheckPositionsAgainstTheIndex(t *testing.T) {
	forge := func(t *testing.T, edit func(x *record.SegmentIndex)) *Store {
		s, dir := openWithFS(t, vfs.OS(), nil)
		for i := range 3 {
			_, err := s.Append(context.Background(), "s", Any, ev(strconv.Itoa(i)))
			require.NoError(t, err)
		}
		require.NoError(t, s.Close())
		path := strings.TrimSuffix(filepath.Join(dir, segmentName(0)), segmentSuffix) + indexSuffix
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		x, err := record.DecodeSegmentIndex(b, math.MaxUint32)
		require.NoError(t, err)
		require.Len(t, x.Frames, 3)
		edit(x)
		require.NoError(t, os.WriteFile(path, record.AppendSegmentIndex(nil, x), 0o644))
		s, err = Open(dir, nil)
		require.NoError(t, err, "the forgery passes Open's checks")
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()
	t.Run("frame folded into the one before", func(t *testing.T) {
		s := forge(t, func(x *record.SegmentIndex) {
			x.Frames[0].Count = 2
			x.Frames = []record.IndexedFrame{x.Frames[0], x.Frames[2]}
		})
		_, err := s.ReadAll(ctx, 1, 0)
		require.ErrorIs(t, err, ErrCorrupt, "position 1 is not in the frame the index gives")
		_, err = s.ReadStream(ctx, "s", 1, 1)
		require.ErrorIs(t, err, ErrCorrupt, "version 1 is not in the frame the index gives")
		_, err = s.ReadStream(ctx, "s", 0, 2)
		require.ErrorIs(t, err, ErrCorrupt)
		evs, err := s.ReadStream(ctx, "s", 2, 1)
		require.NoError(t, err, "the last frame is where the index has it")
		assert.Equal(t, "2", string(evs[0].Data))
		all, err := s.ReadAll(ctx, 0, 0)
		require.NoError(t, err)
		require.Len(t, all, 3)
	})
	t.Run("last frame given an event more", func(t *testing.T) {
		s := forge(t, func(x *record.SegmentIndex) {
			x.Frames[2].Count++
			x.Fingerprints = append(x.Fingerprints, 0)
		})
		require.Equal(t, uint64(4), s.Stats().Events)
		_, err := s.ReadAll(ctx, 0, 0)
		require.ErrorIs(t, err, ErrCorrupt, "the frames run out before the index does")
		_, err = s.ReadStream(ctx, "s", 0, 0)
		require.ErrorIs(t, err, ErrCorrupt, "the frames run out before the index does")
		_, err = s.ReadAllBackward(ctx, 3, 1)
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

// TestStore_Logger_RecoveryAndPoisoning reads what Open and a failed fsync
// say through Options.Logger: the Open summary, a truncated torn tail, and
// a poisoned store, each once, with its figures.
func TestStore_Logger_RecoveryAndPoisoning(t *testing.T) {
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	records := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			out = append(out, m)
		}
		logged.Reset()
		return out
	}
	s, dir := openWithFS(t, vfs.OS(), nil)
	for i := range 5 {
		_, err := s.Append(context.Background(), "s", Any, ev(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	seg := filepath.Join(dir, segmentName(0))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(seg, b[:len(b)-3], 0o644)) // a torn last frame

	ffs := vfs.NewFaultFS(vfs.OS())
	s, err = Open(dir, &Options{Logger: logger, fs: ffs})
	require.NoError(t, err)
	defer s.Close()
	recs := records()
	require.Len(t, recs, 2, "%v", recs)
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "eventstore: truncated torn write at end of log", recs[0]["msg"])
	assert.Equal(t, float64(len(b)-3)-recs[0]["offset"].(float64), recs[0]["bytes"])
	assert.Equal(t, "INFO", recs[1]["level"])
	assert.Equal(t, "eventstore: opened", recs[1]["msg"])
	assert.Equal(t, float64(4), recs[1]["events"])
	assert.Equal(t, recs[0]["bytes"], recs[1]["torn_bytes"])

	ffs.Fail(vfs.OpSync, 1, syscall.EIO, true)
	_, err = s.Append(context.Background(), "s", Any, ev("x"))
	require.ErrorIs(t, err, ErrStorageFailed)
	_, err = s.Append(context.Background(), "s", Any, ev("y"))
	require.ErrorIs(t, err, ErrStorageFailed)
	recs = records()
	require.Len(t, recs, 1, "poisoning is logged once: %v", recs)
	assert.Equal(t, "ERROR", recs[0]["level"])
	assert.Contains(t, recs[0]["msg"], "storage failed")
	assert.Contains(t, recs[0]["err"], "input/output error")
}

// The tests below cover defects a review found in the index files, the
// read-only follower, recovery and Backup; each fails without its fix.

// A poll that meets a frame still being written, after whole frames in the
// same scan, must still note how far it read: else the next poll re-reads
// the published frames and stops the follower with a false CorruptionError.
func TestFollower_PartialFrameAfterWholeOnes(t *testing.T) {
	src := t.TempDir()
	w, err := Open(src, nil)
	require.NoError(t, err)
	for i := range 3 {
		_, err := w.Append(context.Background(), "s", Any, ev(strings.Repeat("x", 100+i)))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	full, err := os.ReadFile(filepath.Join(src, segmentName(0)))
	require.NoError(t, err)
	offs, _ := frameOffsets(t, full)
	require.Len(t, offs, 3)

	dir := t.TempDir()
	seg := filepath.Join(dir, segmentName(0))
	require.NoError(t, os.WriteFile(seg, full[:offs[1]], 0o644)) // frame 0 only
	r, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, uint64(1), r.Stats().Events)

	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for _, err := range r.Subscribe(ctx, 1) {
			if err != nil {
				errc <- err
				return
			}
		}
	}()

	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	// Frame 1 whole, and half of frame 2: a write in progress.
	mid := offs[2] + (int64(len(full))-offs[2])/2
	_, err = f.Write(full[offs[1]:mid])
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, uint64(2), r.Stats().Events)
	_, err = f.Write(full[mid:])
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("subscription ended: %v", err)
	default:
	}
	require.Equal(t, uint64(3), r.Stats().Events, "the third frame is never picked up")
}

// The same with a real writer appending 1 MiB events: the follower sees
// writes page by page.
func TestFollower_SeesBigEventsLandPageByPage(t *testing.T) {
	w, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 1 << 30, Sync: SyncNone, MaxEventSize: 8 << 20, MaxAppendSize: 32 << 20})
	_ = w
	_, err := w.Append(context.Background(), "s", Any, ev("first"))
	require.NoError(t, err)
	r, err := Open(dir, &Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	require.NoError(t, err)
	defer r.Close()
	big := strings.Repeat("y", 1<<20)
	deadline := time.Now().Add(5 * time.Second)
	n := 1
	for time.Now().Before(deadline) {
		_, err := w.Append(context.Background(), "s", Any, ev(big), ev(big[:1000]))
		require.NoError(t, err)
		_, err = w.Append(context.Background(), "s", Any, ev("small"))
		require.NoError(t, err)
		n += 3
		if n > 150 {
			break
		}
	}
	require.Eventually(t, func() bool { return r.Stats().Events == uint64(n) }, 3*time.Second, 10*time.Millisecond,
		"read-only store stuck at %d of %d", r.Stats().Events, n)
}

// A read-only store whose active segment holds no frame yet (a new store,
// or just after a roll) must not take that segment, whose base is ix.next,
// for the next one and open it again and again.
func TestFollower_EmptyActiveSegmentIsNotItsOwnSuccessor(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, nil) // creates segment 0, header only
	require.NoError(t, err)
	defer w.Close()
	r, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	time.Sleep(60 * time.Millisecond) // one poll
	r.index.mu.RLock()
	segs := len(r.index.segments)
	r.index.mu.RUnlock()
	r.Close()
	require.Equal(t, 1, segs, "segment 0, opened %d times", segs)
}

func TestFollower_CloseWhilePollingAndBackingUp(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 16 << 10, Sync: SyncNone})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil && i < 50000; i++ { // bounded: each segment holds a file open
			if _, err := w.Append(context.Background(), fmt.Sprint("s", i%5), Any, ev("x")); err != nil {
				return
			}
		}
	}()
	for i := range stressScale(8, 100) {
		r, err := Open(dir, &Options{ReadOnly: true})
		require.NoError(t, err)
		sctx, scancel := context.WithCancel(context.Background())
		sub := make(chan struct{})
		go func() {
			defer close(sub)
			for _, err := range r.Subscribe(sctx, 0) {
				if err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(i%7) * 10 * time.Millisecond)
		_, err = r.Backup(context.Background(), t.TempDir()+"/b")
		require.NoError(t, err)
		require.NoError(t, r.Close())
		scancel()
		<-sub
	}
	cancel()
	<-done
	require.NoError(t, w.Close())
}

// A read-only open lists the directory while the writer creates segments.
// A listing is no snapshot: it can miss a segment created during it and
// still return a later one. Open must find the missed one by name, not
// report corruption.
func TestReadOnly_OpenBesideARollingWriterIsNotCorruption(t *testing.T) {
	w, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 512, Sync: SyncNone})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := w.Append(context.Background(), fmt.Sprint("s", i%5), Any, ev("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")); err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return w.Stats().Segments > 300 }, 60*time.Second, 10*time.Millisecond)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	deadline := time.Now().Add(time.Duration(stressScale(3, 40)) * time.Second)
	opens := 0
	for time.Now().Before(deadline) {
		l, _, err := openLog(dir, vfs.OS(), logger, 512, true, &indexBuilder{ix: newReadIndex()})
		opens++
		var ce *CorruptionError
		if errors.As(err, &ce) {
			t.Fatalf("read-only open %d beside a healthy writer: %v", opens, err)
		}
		require.NoError(t, err)
		l.close()
	}
	t.Logf("%d opens, no false corruption", opens)
}

// crashFSSegmentSize keeps the space each Open allocates ahead, which
// CrashFS holds in memory and copies into every crash image, small.
const crashFSSegmentSize = 64 << 10

// killedWithUnsyncedAppends makes 30 appends to a store on CrashFS under
// SyncNone and kills it: the frames are in the page cache, none synced.
func killedWithUnsyncedAppends(t *testing.T) *vfs.CrashFS {
	t.Helper()
	fs := vfs.NewCrashFS()
	s, err := Open("/store", &Options{Sync: SyncNone, fs: fs, SegmentSize: crashFSSegmentSize})
	require.NoError(t, err)
	for i := range 30 {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%3), Any, ev(strings.Repeat("d", 200+i)))
		require.NoError(t, err)
	}
	kill(s)
	return fs
}

// kill stops a store as a killed process would: no sync, no Close work.
func kill(s *Store) {
	s.w.stop()
	s.w.indexer.stop()
	s.log.close()
}

// After a process crash, Open recovers frames that are still only in the
// page cache. A Close with no append in between writes an index file over
// them; unless Open synced them first, a power loss could then tear frames
// inside the index, which Open trusts without reading, and reads of them
// would fail for good. Every crash image must open and read back whole.
func TestWriter_Index_NeverCoversFramesRecoveredUnsynced(t *testing.T) {
	bad := 0
	for seed := range 40 {
		fs := killedWithUnsyncedAppends(t)

		s2, err := Open("/store", &Options{fs: fs, SegmentSize: crashFSSegmentSize}) // e.g. a restart, then a clean shutdown
		require.NoError(t, err)
		require.Equal(t, uint64(30), s2.Stats().Events)
		require.NoError(t, s2.Close())

		img := fs.Crash(rand.New(rand.NewPCG(uint64(seed), 7))) // then a power loss
		s3, err := Open("/store", &Options{fs: img, SegmentSize: crashFSSegmentSize})
		if err != nil {
			t.Logf("seed %d: Open: %v", seed, err)
			bad++
			continue
		}
		_, rerr := s3.ReadAll(context.Background(), 0, 0)
		var ce *CorruptionError
		if errors.As(rerr, &ce) {
			t.Logf("seed %d (modes %v): Open accepted %d events, ReadAll: %v", seed, img.CrashModes(), s3.Stats().Events, rerr)
			bad++
		}
		s3.Close()
		// Control: the same image without the index file.
		img2 := fs.Crash(rand.New(rand.NewPCG(uint64(seed), 7)))
		require.NoError(t, img2.Remove("/store/00000000000000000000.idx"))
		s4, err := Open("/store", &Options{fs: img2})
		require.NoError(t, err, "seed %d without the index", seed)
		_, err = s4.ReadAll(context.Background(), 0, 0)
		require.NoError(t, err, "seed %d without the index", seed)
		s4.Close()
	}
	require.Zero(t, bad, "stores left corrupt by a power loss after a clean Close")
}

// A process killed inside createSegment, after the header write and before
// the directory fsync, leaves a sound new segment whose directory entry is
// not durable. The next Open adopts it as the active segment; unless it
// syncs the directory, events appended and acknowledged (SyncAlways) would
// vanish with the file on a power loss.
func TestWriter_Recovery_SyncsTheSegmentEntryACrashLeftUnsynced(t *testing.T) {
	fs := vfs.NewCrashFS()
	s1, err := Open("/store", &Options{fs: fs, SegmentSize: crashFSSegmentSize})
	require.NoError(t, err)
	_, err = s1.Append(context.Background(), "s", Any, ev("one"))
	require.NoError(t, err)
	// The writer rolling to segment 1, killed between the header's fdatasync
	// and the directory's fsync.
	f, err := fs.OpenFile(filepath.Join("/store", segmentName(1)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	_, err = f.WriteAt(record.AppendSegmentHeader(nil, 1, 0), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	kill(s1)

	s2, err := Open("/store", &Options{fs: fs, SegmentSize: crashFSSegmentSize})
	require.NoError(t, err)
	for range 3 {
		_, err := s2.Append(context.Background(), "s", Any, ev(strings.Repeat("x", 100)))
		require.NoError(t, err) // acknowledged: fdatasynced
	}
	acked := s2.Stats().Events
	img := fs.CrashClean() // power loss before any Close
	s3, err := Open("/store", &Options{fs: img, SegmentSize: crashFSSegmentSize})
	require.NoError(t, err)
	defer s3.Close()
	require.Equal(t, acked, s3.Stats().Events, "acknowledged events lost")
	kill(s2)
}

// Recovery counts the frames it found as synced (w.synced = next), so the
// next session's first frame claims, by its delta, that they were fsynced.
// Unless Open synced them, a power loss before that session's first fsync
// could tear them with a "later write intact" after them, and Open would
// fail with a CorruptionError instead of truncating a torn tail.
func TestWriter_Recovery_SyncsFramesRecoveredFromThePageCache(t *testing.T) {
	bad := 0
	for seed := range 40 {
		fs := killedWithUnsyncedAppends(t)
		s2, err := Open("/store", &Options{fs: fs, SegmentSize: crashFSSegmentSize})
		require.NoError(t, err)
		fs.CrashAtSyncAfter(1)
		_, err = s2.Append(context.Background(), "s", Any, ev("new"))
		require.Error(t, err) // the power goes during its fdatasync
		img := fs.Crash(rand.New(rand.NewPCG(uint64(seed), 9)))
		_ = s2.Close() // its fsync failed: the store is poisoned
		s3, err := Open("/store", &Options{fs: img, SegmentSize: crashFSSegmentSize})
		if err != nil {
			t.Logf("seed %d (%v): %v", seed, img.CrashModes(), err)
			bad++
			continue
		}
		s3.Close()
	}
	require.Zero(t, bad)
}

// Backup notes the head, then copies. If the active segment rolls over in
// between, the indexer writes its index file over the whole segment; copyLog
// must leave that file out of a copy cut at the noted end, or Verify on the
// fresh backup reports a problem (and the CLI's verify exits 1).
func TestBackup_CopiesNoIndexPastTheSnapshot(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096})
	ctx := context.Background()
	for i := range 5 {
		_, err := s.Append(ctx, "s", Any, ev(strings.Repeat("a", 100+i)))
		require.NoError(t, err)
	}
	parts, events, err := s.index.snapshot() // what Backup does first
	require.NoError(t, err)
	for i := range 60 { // appends go on; the noted segment rolls over
		_, err := s.Append(ctx, fmt.Sprint("s", i%3), Any, ev(strings.Repeat("b", 100)))
		require.NoError(t, err)
	}
	waitIndexed(t, s)
	dest := filepath.Join(t.TempDir(), "bak")
	_, err = copyLog(ctx, vfs.OS(), parts, dest) // what Backup does next
	require.NoError(t, err)

	rep, err := Verify(ctx, dest, nil)
	require.NoError(t, err)
	require.True(t, rep.OK(), "fresh backup of %d events: %v", events, rep.Problems)
}

// The same through the public API, under a concurrent writer.
func TestBackup_UnderAppendsPassesVerify(t *testing.T) {
	s, _ := openWithFS(t, vfs.OS(), &Options{SegmentSize: 16 << 10, Sync: SyncNone})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil && i < 50000; i++ { // bounded: each segment holds a file open
			if _, err := s.Append(context.Background(), fmt.Sprint("s", i%7), Any, ev(strings.Repeat("c", 50+i%100))); err != nil {
				return
			}
		}
	}()
	bad := 0
	for i := range stressScale(8, 200) {
		dest := filepath.Join(t.TempDir(), fmt.Sprint("bak", i))
		_, err := s.Backup(context.Background(), dest)
		require.NoError(t, err)
		rep, err := Verify(context.Background(), dest, nil)
		require.NoError(t, err)
		if !rep.OK() {
			if bad == 0 {
				t.Logf("backup %d: %v", i, rep.Problems)
			}
			bad++
			break
		}
	}
	cancel()
	<-done
	require.Zero(t, bad, "fresh backups failing Verify")
}

// requirePipelining skips a test of walks that verify ahead where they
// cannot: with one CPU.
func requirePipelining(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("walks verify ahead only with more than one CPU")
	}
}

// walkBothWays walks the whole log of s twice, as a walk that does not
// verify ahead and as one that does, and returns how many events each
// delivered before its error. Walks verify ahead for the rest of the test.
func walkBothWays(t *testing.T, s *Store, opts ...SubscribeOption) (wantN int, wantErr error, gotN int, gotErr error) {
	t.Helper()
	walk := func() (int, error) {
		n := 0
		for _, err := range s.All(context.Background(), 0, opts...) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	withPipelineFrom(t, math.MaxUint64)
	before := pipelinedWalks.Load()
	wantN, wantErr = walk()
	require.Equal(t, before, pipelinedWalks.Load(), "the walk that does not verify ahead did")
	withPipelineFrom(t, 1)
	gotN, gotErr = walk()
	require.Equal(t, before+1, pipelinedWalks.Load(), "the walk that verifies ahead did not")
	return wantN, wantErr, gotN, gotErr
}

// withPipelineFrom has walks of at least n events verify ahead on verifier
// goroutines, for the rest of the test, skipping it if they cannot.
func withPipelineFrom(t *testing.T, n uint64) {
	if n != math.MaxUint64 {
		requirePipelining(t)
	}
	old := pipelineEvents
	pipelineEvents = n
	t.Cleanup(func() { pipelineEvents = old })
}

// pipelineLog appends a log that exercises a pipelined walk: frames of one
// and of many events, frames larger than a read chunk, and several
// segments. It returns the store and its directory.
func pipelineLog(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, &Options{Sync: SyncNone, SegmentSize: 3 << 20, MaxEventSize: 3 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for i := range 3000 {
		n, size := 1+i%4, 100+i%700
		if i%997 == 5 {
			n, size = 1, readChunk+i // a frame no chunk holds
		}
		evs := make([]EventData, n)
		for j := range evs {
			evs[j] = EventData{Type: fmt.Sprint("T", j), Data: bytes.Repeat([]byte{byte(i + j)}, size), Metadata: []byte(fmt.Sprint(i))}
		}
		_, err := s.Append(ctx, fmt.Sprint("s-", i%37), Any, evs...)
		require.NoError(t, err)
	}
	require.Greater(t, s.Stats().Segments, 2)
	return s, dir
}

// TestWalk_PipelinedMatchesSequential reads the same log with walks that
// verify ahead and with walks that do not, from several starting points and
// through each reading call, and requires the same events, byte for byte.
func TestWalk_PipelinedMatchesSequential(t *testing.T) {
	requirePipelining(t)
	s, _ := pipelineLog(t)
	ctx := context.Background()
	read := func(from uint64) ([]RecordedEvent, []RecordedEvent) {
		all, err := s.ReadAll(ctx, from, 0)
		require.NoError(t, err)
		var seq []RecordedEvent
		for ev, err := range s.All(ctx, from) {
			require.NoError(t, err)
			seq = append(seq, ev)
		}
		return all, seq
	}
	head := s.Stats().Events
	for _, from := range []uint64{0, 1, 2, head / 2, head - 1} {
		withPipelineFrom(t, math.MaxUint64)
		wantAll, wantSeq := read(from)
		withPipelineFrom(t, 1)
		before := pipelinedWalks.Load()
		gotAll, gotSeq := read(from)
		require.Equal(t, before+2, pipelinedWalks.Load(), "both reads from %d verified ahead", from)
		require.Equal(t, wantAll, gotAll, "ReadAll from %d", from)
		require.Equal(t, wantSeq, gotSeq, "All from %d", from)
		require.Len(t, gotAll, int(head-from))
	}
}

// TestNameCache_ReturnsTheIndexsNames looks up more names than the cache
// has ways, in changing orders, so that sets fill and evict: every lookup
// must give the index's own string for the name, whichever way held it.
func TestNameCache_ReturnsTheIndexsNames(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{Sync: SyncNone})
	require.NoError(t, err)
	defer s.Close()
	const n = 3 * 2 * nameSets // three names a way
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint("stream-", i)
		_, err := s.Append(context.Background(), names[i], NoStream, EventData{Type: "t"})
		require.NoError(t, err)
	}
	c := nameCache{conv: s.index.newConverter(subscriptionCache), seed: maphash.MakeSeed()}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		order := names
		if round > 0 {
			order = slices.Clone(names)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for _, name := range order {
			for range 1 + rng.IntN(2) { // a second look finds it in a way
				got := c.lookup([]byte(name))
				require.Equal(t, name, got)
				require.Equal(t, unsafe.StringData(s.index.streams[name].name), unsafe.StringData(got), "the index's string for %q", name)
			}
		}
	}
}

// TestChunkParts_CutsAtFrameStarts: the chunks a pipelined walk's
// verifiers share cover each part exactly, in order, start and end where
// the index has a frame start (or at the part's ends), and hold at most
// readChunk bytes unless they are one frame larger than that.
func TestChunkParts_CutsAtFrameStarts(t *testing.T) {
	s, _ := pipelineLog(t)
	ix := s.index
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, from := range []int{0, 1, len(ix.segments[0].frames) / 2} {
		var parts []walkPart
		for i, seg := range ix.segments {
			p := walkPart{seg: seg, off: record.SegmentHeaderSize, end: seg.end, frames: seg.frames}
			if i == 0 {
				p.off = int64(seg.frames[from].off)
			}
			parts = append(parts, p)
		}
		jobs := chunkParts(parts)
		k := 0
		for _, p := range parts {
			starts := map[int64]bool{p.end: true}
			for _, f := range p.seg.frames {
				starts[int64(f.off)] = true
			}
			for at := p.off; at < p.end; k++ {
				require.Less(t, k, len(jobs))
				job := jobs[k]
				require.Equal(t, p.seg, job.seg)
				require.Equal(t, at, job.off, "chunk %d starts where the one before ended", k)
				require.True(t, starts[job.end], "chunk %d ends at %d, where no frame starts", k, job.end)
				if size := job.end - job.off; size > readChunk {
					require.False(t, slices.ContainsFunc(p.seg.frames, func(f frameRef) bool {
						return int64(f.off) > job.off && int64(f.off) < job.end
					}), "chunk %d of %d bytes holds more than one frame", k, size)
				}
				at = job.end
			}
		}
		require.Len(t, jobs, k, "no chunk past the parts")
		require.Greater(t, k, 2*verifiers, "the log gives each verifier several chunks")
	}
}

// TestWalk_PipelinedDamageInEveryChunk damages one frame at a time, in
// turn in every chunk of the log, so that each verifier meets damage in
// its own chunks while the other verifies on ahead: the pipelined walk
// must deliver the same events and then the same error as a walk that
// does not verify ahead.
func TestWalk_PipelinedDamageInEveryChunk(t *testing.T) {
	requirePipelining(t)
	s, _ := pipelineLog(t)
	s.index.mu.RLock()
	var parts []walkPart
	for _, seg := range s.index.segments {
		parts = append(parts, walkPart{seg: seg, off: record.SegmentHeaderSize, end: seg.end, frames: seg.frames})
	}
	jobs := chunkParts(parts)
	s.index.mu.RUnlock()
	for k, job := range jobs {
		at := job.off + (job.end-job.off)/2
		flipBits(t, job.seg.path, at, 0x04)
		wantN, wantErr, gotN, gotErr := walkBothWays(t, s, BorrowData())
		flipBits(t, job.seg.path, at, 0x04) // mend it for the next
		var ce *CorruptionError
		require.ErrorAs(t, wantErr, &ce, "chunk %d", k)
		require.ErrorAs(t, gotErr, &ce, "chunk %d", k)
		require.Equal(t, wantErr.Error(), gotErr.Error(), "chunk %d", k)
		require.Equal(t, wantN, gotN, "chunk %d", k)
	}
}

// TestWalk_PipelinedStops ends pipelined walks every way one can end, and
// relies on goleak (TestMain) to find a verifier goroutine left behind:
// a loop that breaks, a context that ends, a bit flip
// (reported at the same offset as a walk that does not verify ahead, after
// the same events), and a segment cut short under the store.
func TestWalk_PipelinedStops(t *testing.T) {
	withPipelineFrom(t, 1)
	s, dir := pipelineLog(t)
	ctx := context.Background()

	n := 0
	for _, err := range s.All(ctx, 0) {
		require.NoError(t, err)
		if n++; n == 100 {
			break
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n = 0
	var got error
	for _, err := range s.All(cctx, 0) {
		if err != nil {
			got = err
			break
		}
		if n++; n == 10 {
			cancel()
		}
	}
	require.ErrorIs(t, got, context.Canceled)

	// Damage a frame in the middle of the second segment, under the store.
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	seg := segs[1]
	flipBits(t, seg, fileSizeOf(t, seg)/2, 0x10)
	wantN, wantErr, gotN, gotErr := walkBothWays(t, s, BorrowData())
	var ce *CorruptionError
	require.ErrorAs(t, wantErr, &ce)
	require.ErrorAs(t, gotErr, &ce)
	assert.Equal(t, wantErr.Error(), gotErr.Error())
	assert.Equal(t, wantN, gotN)
	assert.Greater(t, gotN, 0)

	// Cut the first segment short: the walk ends with an error, not a fault.
	require.NoError(t, os.Truncate(segs[0], 8192))
	_, _, _, err = walkBothWays(t, s, BorrowData())
	require.ErrorAs(t, err, &ce)
}

// withParallelReadFrom has stream reads share a window of at least n reads
// with a second goroutine, for the rest of the test.
func withParallelReadFrom(t *testing.T, n int) {
	old := parallelReadFrom
	parallelReadFrom = n
	t.Cleanup(func() { parallelReadFrom = old })
}

// TestReadStream_SharedReadsMatchOneReader reads each stream of a log whole,
// in part and backward, with its reads shared between two goroutines and
// made by one, and requires the same events, byte for byte. It then damages
// a frame late in one stream, so that the second goroutine finds it, and
// requires both ways to deliver the same events before the same
// CorruptionError, and goleak (TestMain) to find no goroutine left.
func TestReadStream_SharedReadsMatchOneReader(t *testing.T) {
	requirePipelining(t)
	s, _ := pipelineLog(t)
	ctx := context.Background()
	read := func(stream string) [][]RecordedEvent {
		var out [][]RecordedEvent
		for _, r := range []struct {
			from     uint64
			limit    int
			backward bool
		}{{0, 0, false}, {7, 50, false}, {math.MaxUint64, 0, true}, {60, 40, true}} {
			read := s.ReadStream
			if r.backward {
				read = s.ReadStreamBackward
			}
			evs, err := read(ctx, stream, r.from, r.limit)
			require.NoError(t, err)
			out = append(out, evs)
		}
		return out
	}
	for i := range 37 {
		stream := fmt.Sprint("s-", i)
		withParallelReadFrom(t, math.MaxInt)
		want := read(stream)
		withParallelReadFrom(t, 2)
		got := read(stream)
		require.Equal(t, want, got, stream)
		require.Greater(t, len(got[0]), 60, stream)
	}

	// Damage the payload of the frame holding the stream's third-last event.
	s.index.mu.RLock()
	st := s.index.streams["s-5"]
	loc := s.index.locateLocked(st.positions[len(st.positions)-3])
	s.index.mu.RUnlock()
	flipBits(t, loc.seg.path, loc.off+record.CompactHeaderSize+3, 0x04)
	walk := func() (int, error) {
		n := 0
		for _, err := range s.Stream(ctx, "s-5", 0) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	withParallelReadFrom(t, math.MaxInt)
	wantN, wantErr := walk()
	withParallelReadFrom(t, 2)
	gotN, gotErr := walk()
	var ce *CorruptionError
	require.ErrorAs(t, wantErr, &ce)
	assert.Equal(t, loc.off, ce.Offset)
	require.ErrorAs(t, gotErr, &ce)
	assert.Equal(t, wantErr.Error(), gotErr.Error())
	assert.Equal(t, wantN, gotN)
	assert.Greater(t, gotN, 60)
	_, err := s.ReadStream(ctx, "s-5", 0, 0)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, loc.off, ce.Offset)
}

// cancelledLater is a context whose Err reports it cancelled from its
// second call on, as if cancelled just after a read began.
type cancelledLater struct {
	context.Context
	calls atomic.Int32
}

func (c *cancelledLater) Err() error {
	if c.calls.Add(1) > 1 {
		return context.Canceled
	}
	return nil
}

// TestReadStream_CancelledMidWindowStops cancels stream reads of one window,
// whose reads are shared and made by one, just after they begin: each must
// return context.Canceled, not the whole stream.
func TestReadStream_CancelledMidWindowStops(t *testing.T) {
	s, err := Open(t.TempDir(), &Options{Sync: SyncNone})
	require.NoError(t, err)
	defer s.Close()
	// Stream a's small frames lie farther apart than coalesceGap, one read
	// each, and all in one window.
	for range 300 {
		_, err := s.Append(context.Background(), "a", Any, EventData{Type: "t", Data: []byte("small")})
		require.NoError(t, err)
		_, err = s.Append(context.Background(), "b", Any, EventData{Type: "t", Data: bytes.Repeat([]byte{'x'}, 5000)})
		require.NoError(t, err)
	}
	for _, from := range []int{math.MaxInt, 2} {
		withParallelReadFrom(t, from)
		evs, err := s.ReadStream(&cancelledLater{Context: context.Background()}, "a", 0, 0)
		require.ErrorIs(t, err, context.Canceled, "reads shared from %d", from)
		require.Empty(t, evs)
		evs, err = s.ReadStream(context.Background(), "a", 0, 0)
		require.NoError(t, err)
		require.Len(t, evs, 300)
	}
}

// flipBits XORs the byte at off in the file at path with mask.
func flipBits(t *testing.T, path string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= mask
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

func fileSizeOf(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// TestWalk_HelperEndsWithClose closes the store while a pipelined walk's
// loop body is blocked: Close must not wait for the loop body, and no
// verifier goroutine may be left when it returns.
func TestWalk_HelperEndsWithClose(t *testing.T) {
	withPipelineFrom(t, 1)
	s, _ := pipelineLog(t)
	inBody, proceed, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		first := true
		var last error
		for _, err := range s.All(context.Background(), 0) {
			if first {
				first = false
				close(inBody)
				<-proceed
			}
			if err != nil {
				last = err
			}
		}
		done <- last
	}()
	<-inBody
	require.NoError(t, s.Close())
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	close(proceed)
	require.ErrorIs(t, <-done, ErrClosed)
	assert.NotContains(t, stacks, "verifyAhead", "a verifier goroutine outlived Close")
}

// TestWalk_PipelinedStopsAtTheNextEvent ends a pipelined All over frames of
// one event, which it delivers by the subscription's short path, while its
// body holds the first event: by Close, by cancelling its context, and by
// breaking. No event may follow the one held, though the verifiers have
// read ahead.
func TestWalk_PipelinedStopsAtTheNextEvent(t *testing.T) {
	withPipelineFrom(t, 1)
	for _, how := range []string{"close", "cancel", "break"} {
		t.Run(how, func(t *testing.T) {
			s, err := Open(t.TempDir(), &Options{Sync: SyncNone})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := range 2000 {
				_, err := s.Append(ctx, fmt.Sprint("s-", i%7), Any, EventData{Type: "T", Data: []byte{byte(i)}})
				require.NoError(t, err)
			}
			before := pipelinedWalks.Load()
			inBody, proceed := make(chan struct{}), make(chan struct{})
			type result struct {
				events int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				var r result
				for _, err := range s.All(ctx, 0) {
					if err != nil {
						r.err = err
						continue
					}
					r.events++
					if r.events == 1 {
						close(inBody)
						<-proceed
						if how == "break" {
							break
						}
					}
				}
				done <- r
			}()
			<-inBody
			switch how {
			case "close":
				require.NoError(t, s.Close())
			case "cancel":
				cancel()
			}
			close(proceed)
			r := <-done
			assert.Equal(t, before+1, pipelinedWalks.Load(), "the walk verified ahead")
			assert.Equal(t, 1, r.events, "events delivered")
			switch how {
			case "close":
				assert.ErrorIs(t, r.err, ErrClosed)
			case "cancel":
				assert.ErrorIs(t, r.err, context.Canceled)
			case "break":
				assert.NoError(t, r.err)
			}
		})
	}
}

// TestWalk_PipelinedCutShortAsSequential cuts a segment short in the middle
// of a chunk, under the store: a walk that verifies ahead must deliver the
// same events, and report the same error at the same offset, as one that
// does not.
func TestWalk_PipelinedCutShortAsSequential(t *testing.T) {
	requirePipelining(t)
	s, dir := pipelineLog(t)
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.NoError(t, os.Truncate(segs[0], fileSizeOf(t, segs[0])/2+12345))
	wantN, wantErr, gotN, gotErr := walkBothWays(t, s)
	var ce *CorruptionError
	require.ErrorAs(t, wantErr, &ce)
	require.Equal(t, wantErr.Error(), gotErr.Error())
	require.Equal(t, wantN, gotN)
	require.Greater(t, gotN, 0)
}

// TestWalk_PipelinedCutInLastPageAsSequential cuts the active segment by
// one byte, inside its last page (where a mapping, which walks once read
// through, reads zeros rather than fault); once with a byte that is not
// zero, once with a zero byte. A walk that verifies ahead must see the file
// end where it does, as one that does not.
func TestWalk_PipelinedCutInLastPageAsSequential(t *testing.T) {
	requirePipelining(t)
	// A version-1 segment's last frame may end in a zero byte; a segment of
	// the current version's ends in its end mark, and has space allocated
	// after it. A store appends to a segment of the current version only,
	// so the version-1 segments are written here, frame by frame.
	for _, c := range []struct {
		name     string
		version1 bool
		zero     bool
	}{{"version 1, zero byte false", true, false}, {"version 1, zero byte true", true, true}, {"current version", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			seg := filepath.Join(dir, segmentName(0))
			var end int
			if c.version1 {
				b := version1SegmentHeader(0)
				versions := make(map[string]uint64)
				for i := 0; ; i++ {
					require.Less(t, i, 100_000, "no frame ending as wanted")
					stream := fmt.Sprint("s-", i%7)
					body := record.AppendBodyHead(nil, stream, 1)
					body = record.AppendEventOf(1, body, idFor(0, i), "t", nil, []byte(fmt.Sprint("data-", i)))
					b = record.AppendFrame(b, uint64(i), 0, 1700000000000000000, versions[stream], body)
					versions[stream]++
					if last := len(b) - 1; i > 100 && last%4096 != 0 && (b[last] == 0) == c.zero {
						break
					}
				}
				require.NoError(t, os.WriteFile(seg, b, 0o644))
				end = len(b)
			}
			s, err := Open(dir, &Options{Sync: SyncNone})
			require.NoError(t, err)
			defer s.Close()
			for i := 0; !c.version1; i++ {
				require.Less(t, i, 100_000, "no frame ending as wanted")
				_, err := s.Append(context.Background(), fmt.Sprint("s-", i%7), Any, EventData{Type: "t", Data: []byte(fmt.Sprint("data-", i))})
				require.NoError(t, err)
				if i <= 100 {
					continue
				}
				end = int(s.w.log.active().size) // set before Append returned
				b := make([]byte, end)
				f, err := os.Open(seg)
				require.NoError(t, err)
				_, err = f.ReadAt(b, 0)
				require.NoError(t, f.Close())
				require.NoError(t, err)
				if last := end - 1; last%4096 != 0 && (b[last] == 0) == c.zero {
					break
				}
			}
			require.NoError(t, os.Truncate(seg, int64(end-1)))
			wantN, wantErr, gotN, gotErr := walkBothWays(t, s)
			var ce *CorruptionError
			require.ErrorAs(t, wantErr, &ce)
			require.Equal(t, wantErr.Error(), fmt.Sprint(gotErr))
			require.Equal(t, wantN, gotN)
		})
	}
}

// version1SegmentHeader is the header of a version-1 segment at base, as
// stores wrote them before version 2.
func version1SegmentHeader(base uint64) []byte { return segmentHeaderOf(1, base) }

// segmentHeaderOf is the header of a segment of the given format version at
// base, as the release that wrote that version wrote it.
func segmentHeaderOf(version uint8, base uint64) []byte {
	key := uint64(0)
	if version >= 4 {
		key = 0x5eed // any key will do
	}
	hdr := record.AppendSegmentHeader(nil, base, key)
	hdr[4] = version
	binary.LittleEndian.PutUint32(hdr[20:24], record.Checksum(hdr[:20]))
	return hdr
}

// TestWalk_LargeFrames walks frames five times the size of a chunk, which
// a helper reads whole into a buffer grown for each: every event comes out
// whole and in order.
func TestWalk_LargeFrames(t *testing.T) {
	withPipelineFrom(t, 1)
	s, err := Open(t.TempDir(), &Options{Sync: SyncNone, MaxEventSize: 6 << 20, SegmentSize: 128 << 20})
	require.NoError(t, err)
	defer s.Close()
	data := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 5<<20) }
	for i := range 20 {
		_, err := s.Append(context.Background(), "big", Any, EventData{Type: "t", Data: data(i)})
		require.NoError(t, err)
	}
	before := pipelinedWalks.Load()
	n := 0
	for ev, err := range s.All(context.Background(), 0, BorrowData()) {
		require.NoError(t, err)
		require.Equal(t, uint64(n), ev.Position)
		require.True(t, bytes.Equal(data(n), ev.Data), "event %d", n)
		n++
	}
	require.Equal(t, 20, n)
	require.Equal(t, before+1, pipelinedWalks.Load(), "the walk did not verify ahead")
}

// allocatedLog appends n one-event frames to a store on a CrashFS whose
// segments are allocated ahead, and returns the disk image a power loss
// leaves: every frame synced, the allocated space after them zeros.
func allocatedLog(t *testing.T, n int) (image *vfs.CrashFS, seg string, offs []int64) {
	fs := vfs.NewCrashFS()
	s, err := Open("/a", &Options{SegmentSize: 64 << 10, fs: fs})
	require.NoError(t, err)
	for i := range n {
		_, err := s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: []byte(fmt.Sprintf("event-%d", i))})
		require.NoError(t, err)
	}
	image = fs.CrashClean()
	_ = s.Close() // on the crashed file system, it fails
	seg = "/a/" + segmentName(0)
	b, err := image.ReadFile(seg)
	require.NoError(t, err)
	require.Len(t, b, 64<<10, "the segment was allocated ahead, and its size synced")
	end := lastNonZero(b) + 1
	require.Equal(t, byte(record.EndMark), b[end-1])
	offs, _ = frameOffsets(t, b[:end])
	require.Len(t, offs, n)
	return image, seg, offs
}

func TestEventLog_Allocated_ZerosAfterTheFramesAreNoTear(t *testing.T) {
	image, seg, _ := allocatedLog(t, 5)
	rep, err := verifyLog(context.Background(), image, "/a", nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	assert.Zero(t, rep.TornBytes, "verify: space allocated ahead is not a torn write")
	assert.Equal(t, uint64(5), rep.Events)

	s, err := Open("/a", &Options{SegmentSize: 64 << 10, fs: image})
	require.NoError(t, err)
	assert.Equal(t, uint64(5), s.Stats().Events)
	assert.Zero(t, s.Stats().TornBytes, "space allocated ahead is not a torn write")
	_, err = s.Append(context.Background(), "s", Exact(4), EventData{Type: "t", Data: []byte("after")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	b, err := image.ReadFile(seg)
	require.NoError(t, err)
	assert.Equal(t, lastNonZero(b)+1, len(b), "Close gives back the space allocated ahead")

	s, err = Open("/a", &Options{SegmentSize: 64 << 10, fs: image})
	require.NoError(t, err)
	defer s.Close()
	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 6)
	assert.Equal(t, "after", string(all[5].Data))
}

// Damage to the last frame of a segment with space allocated after it is
// corruption: the zeros after the frame do not make it look torn.
func TestEventLog_Allocated_DamageInLastFrameIsCorruption(t *testing.T) {
	for _, c := range []struct {
		name string
		at   func(off, end int64) int64
	}{
		{"header position", func(off, _ int64) int64 { return off + 9 }},
		{"header checksum", func(off, _ int64) int64 { return off + record.CompactHeaderSize - 2 }},
		{"payload", func(off, end int64) int64 { return (off + record.CompactHeaderSize + end) / 2 }},
		{"end mark", func(_, end int64) int64 { return end - 1 }},
	} {
		for _, bit := range []byte{0x01, 0x10, 0x80} {
			t.Run(fmt.Sprintf("%s/%#x", c.name, bit), func(t *testing.T) {
				image, seg, offs := allocatedLog(t, 5)
				b, err := image.ReadFile(seg)
				require.NoError(t, err)
				end := int64(lastNonZero(b) + 1)
				b[c.at(offs[len(offs)-1], end)] ^= bit
				require.NoError(t, image.WriteFile(seg, b))
				s, err := Open("/a", &Options{SegmentSize: 64 << 10, fs: image})
				if err == nil {
					defer s.Close()
					t.Fatalf("damage accepted as a torn write: Events=%d TornBytes=%d", s.Stats().Events, s.Stats().TornBytes)
				}
				require.ErrorIs(t, err, ErrCorrupt)
			})
		}
	}
}

// A write torn in the last frame's last sector loses the rest of the
// sector, however few of the frame's bytes that is: the frame goes, as a
// torn write, and the store takes appends after it.
func TestEventLog_Allocated_TornLastSectorIsRepaired(t *testing.T) {
	image0, seg, offs := allocatedLog(t, 5)
	b0, err := image0.ReadFile(seg)
	require.NoError(t, err)
	last := offs[len(offs)-1]
	end := int64(lastNonZero(b0) + 1)
	for tear := last + 1; tear < end; tear++ {
		image, _, _ := allocatedLog(t, 5)
		b := bytes.Clone(b0)
		clear(b[tear : (tear/sectorSize+1)*sectorSize])
		require.NoError(t, image.WriteFile(seg, b))
		s, err := Open("/a", &Options{SegmentSize: 64 << 10, fs: image})
		require.NoError(t, err, "torn at %d of the frame at %d..%d", tear, last, end)
		assert.Equal(t, uint64(4), s.Stats().Events, "torn at %d", tear)
		assert.Positive(t, s.Stats().TornBytes, "torn at %d", tear)
		res, err := s.Append(context.Background(), "s", Exact(3), EventData{Type: "t"})
		require.NoError(t, err, "torn at %d", tear)
		assert.Equal(t, uint64(4), res.Position)
		require.NoError(t, s.Close())
	}
}

// A sealed segment is cut to its frames when the log rolls over; if that
// cut is lost, the zeros after its frames end it, and a segment whose
// frames were lost to zeros is still found out by the next one's base.
func TestEventLog_Allocated_SealedSegmentWithZerosAfterItsFrames(t *testing.T) {
	src := t.TempDir()
	model := buildLog(t, src, 7, 30, 600)
	removeIndexFiles(t, src)
	snap := snapshot(t, src)
	segs := segFiles(t, src)
	require.Greater(t, len(segs), 2)
	first := filepath.Base(segs[0])

	grown := maps.Clone(snap)
	grown[first] = append(bytes.Clone(snap[first]), make([]byte, 4000)...)
	dir := copyDir(t, grown)
	s, err := Open(dir, &Options{SegmentSize: 600})
	require.NoError(t, err)
	checkStore(t, s, model)
	require.NoError(t, s.Close())

	lost := maps.Clone(snap)
	b := bytes.Clone(snap[first])
	offs, _ := frameOffsets(t, b)
	clear(b[offs[len(offs)-1]:])
	lost[first] = b
	_, err = Open(copyDir(t, lost), &Options{SegmentSize: 600})
	require.ErrorIs(t, err, ErrCorrupt, "the next segment starts past the frames left")
}

// A store written in an earlier format version opens and reads as before.
// Its first append rolls over from the last segment, which keeps the
// frames of its version (a version-1 segment not allocated ahead, and
// unmarked; a version-2 one marked and masked with splitmix64; a version-3
// one masked with the Weyl keystream, its events untagged; a version-4 one
// naming every stream), to a segment of the current version, allocated
// ahead, whose events leave their IDs to the store and whose frames name
// the stream by number.
func TestEventLog_OlderSegmentsStayReadableAndWritable(t *testing.T) {
	for version := uint8(1); version < record.Version; version++ {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			dir := t.TempDir()
			seg := segmentHeaderOf(version, 0)
			for i := range 3 {
				body := record.AppendBodyHead(nil, "old", 1)
				body = record.AppendEventOf(version, body, idFor(0, i), "t", nil, []byte(fmt.Sprint("old-", i)))
				seg = record.AppendFrameOf(version, seg, uint64(i), 0, 1700000000000000000, uint64(i), body)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), seg, 0o644))

			const segmentSize = 1024
			s, err := Open(dir, &Options{SegmentSize: segmentSize})
			require.NoError(t, err)
			_, err = s.Append(context.Background(), "old", Exact(2), EventData{Type: "t", Data: []byte("old-3")})
			require.NoError(t, err)
			require.Len(t, segFiles(t, dir), 2, "the first append rolled over")
			b, err := os.ReadFile(filepath.Join(dir, segmentName(0)))
			require.NoError(t, err)
			assert.Equal(t, seg, b, "the older segment is sealed as it was")

			b, err = os.ReadFile(segFiles(t, dir)[1])
			require.NoError(t, err)
			assert.Len(t, b, segmentSize, "the new segment is allocated ahead")
			sh, err := record.DecodeSegmentHeader(b)
			require.NoError(t, err)
			assert.Equal(t, uint8(record.Version), sh.Version)
			assert.Equal(t, byte(record.EndMark), b[lastNonZero(b)])
			h, err := fileLayout(t, b).DecodeHeader(b[record.SegmentHeaderSize:])
			require.NoError(t, err)
			f, err := record.DecodePayload(h, b[record.SegmentHeaderSize+int64(h.Size()):record.SegmentHeaderSize+h.FrameSize()], nil)
			require.NoError(t, err)
			assert.True(t, f.Tagged, "the new segment's frames are of the current version")
			assert.True(t, f.Assigned(0), "and leave the ID to the store")
			assert.True(t, f.Numbered, "and name the stream the older segment created by number")
			assert.Zero(t, f.StreamStart)
			for i := 4; i < 10; i++ {
				_, err = s.Append(context.Background(), "old", Exact(uint64(i-1)), EventData{Type: "t", Data: []byte(fmt.Sprint("old-", i))})
				require.NoError(t, err)
			}
			before, err := s.ReadAll(context.Background(), 0, 0)
			require.NoError(t, err)
			n := s.Stats().Events
			require.NoError(t, s.Close())

			rep, err := Verify(context.Background(), dir, nil)
			require.NoError(t, err)
			assert.Empty(t, rep.Problems)
			assert.Equal(t, n, rep.Events)

			for _, indexed := range []bool{true, false} {
				if !indexed {
					removeIndexFiles(t, dir)
				}
				s, err = Open(dir, &Options{SegmentSize: segmentSize})
				require.NoError(t, err)
				all, err := s.ReadAll(context.Background(), 0, 0)
				require.NoError(t, err)
				require.Len(t, all, int(n))
				assert.Equal(t, before, all, "as read before the close")
				for i, e := range all {
					assert.Equal(t, fmt.Sprint("old-", i), string(e.Data))
					assert.Equal(t, uint64(i), e.StreamVersion)
					if i < 3 {
						assert.Equal(t, idFor(0, i), e.ID, "the older segment's stored IDs")
					}
				}
				// A retry of an event in the older segment, by its ID, is
				// still found.
				res, err := s.Append(context.Background(), "old", Any, EventData{ID: idFor(0, 1), Type: "t", Data: []byte("old-1")})
				require.NoError(t, err)
				assert.Equal(t, uint64(1), res.Position, "indexed %v", indexed)
				require.NoError(t, s.Close())
			}
		})
	}
}

// A store whose last segment is of an earlier version and holds no frame
// (a store an older release created, or rolled over to, and never appended
// to) keeps it as it is until its first append, so that the older release
// can still open it; the first append rewrites its header as one of the
// current version, with the store's key, and appends to it. The segment
// may be a bare header or, allocated ahead, one followed by zeros.
func TestEventLog_EmptyOlderLastSegmentIsUpgraded(t *testing.T) {
	for version := uint8(1); version < record.Version; version++ {
		for _, size := range []int{record.SegmentHeaderSize, 1024} {
			if version == 1 && size > record.SegmentHeaderSize {
				continue // a version-1 segment is never allocated ahead
			}
			t.Run(fmt.Sprintf("version %d, %d bytes", version, size), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, segmentName(0))
				old := append(segmentHeaderOf(version, 0), make([]byte, size-record.SegmentHeaderSize)...)
				require.NoError(t, os.WriteFile(path, old, 0o644))
				s, err := Open(dir, &Options{SegmentSize: 1024})
				require.NoError(t, err)
				require.NoError(t, s.Close())
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, segmentHeaderOf(version, 0), b[:record.SegmentHeaderSize], "an Open without an append changes no header")

				// Close cut the file to its header: the appending Open gets
				// it as it was.
				require.NoError(t, os.WriteFile(path, old, 0o644))
				s, err = Open(dir, &Options{SegmentSize: 1024})
				require.NoError(t, err)
				_, err = s.Append(context.Background(), "s", NoStream, EventData{Type: "t", Data: []byte("new")}, EventData{Type: "t", Data: []byte("newer")})
				require.NoError(t, err)
				before, err := s.ReadAll(context.Background(), 0, 0)
				require.NoError(t, err)
				require.NoError(t, s.Close())
				require.Len(t, segFiles(t, dir), 1, "appended to the upgraded segment")
				b, err = os.ReadFile(path)
				require.NoError(t, err)
				sh, err := record.DecodeSegmentHeader(b)
				require.NoError(t, err)
				assert.Equal(t, uint8(record.Version), sh.Version)
				for i, e := range before {
					assert.Equal(t, record.AssignedID(sh.Key, uint64(i), e.Timestamp.UnixNano()), [record.IDSize]byte(e.ID),
						"event %d's ID is derived from the key the header holds", i)
				}

				for _, opts := range []*Options{{SegmentSize: 1024}, {ReadOnly: true}} {
					s, err = Open(dir, opts)
					require.NoError(t, err)
					all, err := s.ReadAll(context.Background(), 0, 0)
					require.NoError(t, err)
					assert.Equal(t, before, all, "read-only %v", opts.ReadOnly)
					require.NoError(t, s.Close())
				}
			})
		}
	}
}

// A power loss at each sync point of the first append to an empty older
// segment, and once the append is acknowledged, each image drawn 300 ways:
// Open takes whatever header survived (the older one, the new one, or a
// torn one in a file no longer than a header, which it removes), never
// calls it corruption, keeps the append if it was acknowledged, and
// appends again.
func TestEventLog_EmptyOlderLastSegmentUpgradeSurvivesPowerLoss(t *testing.T) {
	ctx := context.Background()
	setup := func() *vfs.CrashFS {
		fs := vfs.NewCrashFS()
		require.NoError(t, fs.MkdirAll("/s", 0o755))
		// Allocated ahead to a sector, as the sector the header is in is
		// torn in some images.
		require.NoError(t, fs.WriteFile("/s/"+segmentName(0), append(segmentHeaderOf(3, 0), make([]byte, 512-record.SegmentHeaderSize)...)))
		return fs
	}
	dry := setup()
	s, err := Open("/s", &Options{fs: dry, SegmentSize: 64 << 10})
	require.NoError(t, err)
	opened := dry.SyncCount()
	_, err = s.Append(ctx, "s", NoStream, EventData{Type: "t", Data: []byte("first")})
	require.NoError(t, err)
	points := dry.SyncCount() - opened
	require.NoError(t, s.Close())
	require.Equal(t, 3, points, "the cut, the header and the append each synced")

	tornHeaders := 0
	for k := 1; k <= points+1; k++ { // k = points+1: after the append was acknowledged
		fs := setup()
		s, err := Open("/s", &Options{fs: fs, SegmentSize: 64 << 10})
		require.NoError(t, err)
		fs.CrashAtSync(opened + k)
		_, appendErr := s.Append(ctx, "s", NoStream, EventData{Type: "t", Data: []byte("first")})
		require.Equal(t, k <= points, fs.Frozen(), "sync point %d", k)
		require.Equal(t, k > points, appendErr == nil, "sync point %d", k)
		s.Close()
		for seed := range 300 {
			image := fs.Crash(rand.New(rand.NewPCG(uint64(k), uint64(seed))))
			s, err := Open("/s", &Options{fs: image, SegmentSize: 64 << 10})
			require.NoError(t, err, "sync point %d, image %d", k, seed)
			if s.Stats().TornBytes == record.SegmentHeaderSize {
				tornHeaders++ // the new header, torn in a file of its size: removed
			}
			n := s.Stats().Events
			if appendErr == nil {
				require.Equal(t, uint64(1), n, "sync point %d, image %d: the acknowledged append", k, seed)
			}
			_, err = s.Append(ctx, "s", Exact(n-1), EventData{Type: "t", Data: []byte("again")})
			if n == 0 {
				_, err = s.Append(ctx, "s", NoStream, EventData{Type: "t", Data: []byte("again")})
			}
			require.NoError(t, err, "sync point %d, image %d", k, seed)
			all, err := s.ReadAll(ctx, 0, 0)
			require.NoError(t, err)
			require.Len(t, all, int(n)+1)
			require.NoError(t, s.Close())
		}
	}
	assert.Positive(t, tornHeaders, "some image tore the new header")
}

// headerHookFS runs onHeader once, after the first read of a segment
// header through it: a writer can then change the file between the read
// of its header and the read of its frames.
type headerHookFS struct {
	vfs.FS
	onHeader func()
}

type headerHookFile struct {
	vfs.File
	fs   *headerHookFS
	name string
}

func (h *headerHookFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &headerHookFile{File: f, fs: h, name: name}, nil
}

func (f *headerHookFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if hook := f.fs.onHeader; hook != nil && off == 0 && len(p) == record.SegmentHeaderSize && strings.HasSuffix(f.name, segmentSuffix) {
		f.fs.onHeader = nil
		hook()
	}
	return n, err
}

// A read-only Open that reads the header of an empty older segment,
// allocated ahead, just before a writer's first append rewrites it reads
// the header again when the first frame does not read (its header is of
// another size: a compact frame's) or does not fit, and opens.
func TestStore_ReadOnly_OpenRacingTheUpgradeOfAnEmptyOlderSegment(t *testing.T) {
	for _, version := range []uint8{3, 4, 5} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), append(segmentHeaderOf(version, 0), make([]byte, 1000)...), 0o644))
			var w *Store
			hook := &headerHookFS{FS: vfs.OS()}
			hook.onHeader = func() {
				var err error
				w, err = Open(dir, &Options{SegmentSize: 1024})
				require.NoError(t, err)
				_, err = w.Append(context.Background(), "s", NoStream, EventData{Type: "t", Data: []byte("new")})
				require.NoError(t, err)
				_, err = w.Append(context.Background(), "s", Exact(0), EventData{Type: "t", Data: []byte("numbered")})
				require.NoError(t, err)
			}
			r, err := Open(dir, &Options{ReadOnly: true, fs: hook})
			require.NoError(t, err)
			defer r.Close()
			require.NotNil(t, w, "the writer appended between the header and the frames")
			defer w.Close()
			want, err := w.ReadAll(context.Background(), 0, 0)
			require.NoError(t, err)
			got, err := r.ReadAll(context.Background(), 0, 0)
			require.NoError(t, err)
			require.Len(t, got, 2)
			assert.Equal(t, want, got)
		})
	}
}

// A read-only store opened on a store whose last segment is an empty one
// of an earlier version follows the writer that upgrades it: it reads the
// header again at the segment's first frame, which, compact, does not
// read under the header it had.
func TestStore_ReadOnly_FollowsTheUpgradeOfAnEmptyOlderSegment(t *testing.T) {
	ctx := context.Background()
	for _, version := range []uint8{3, 4, 5} {
		t.Run(fmt.Sprint("version ", version), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), segmentHeaderOf(version, 0), 0o644))
			r, err := Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err)
			defer r.Close()
			w, err := Open(dir, nil)
			require.NoError(t, err)
			defer w.Close()
			_, err = w.Append(ctx, "s", NoStream, EventData{Type: "t", Data: []byte("new")})
			require.NoError(t, err)
			_, err = w.Append(ctx, "s", Exact(0), EventData{Type: "t", Data: []byte("numbered")})
			require.NoError(t, err)
			require.Equal(t, uint8(record.Version), w.log.active().version)
			want, err := w.ReadAll(ctx, 0, 0)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return r.Stats().Events == 2 || r.follow.err.Load() != nil },
				10*time.Second, 10*time.Millisecond, "the follower found the frames")
			require.Nil(t, r.follow.err.Load(), "the follower went on")
			got, err := r.ReadAll(ctx, 0, 0)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// A file system that cannot allocate ahead (or a full disk) costs speed,
// not appends: the store logs it and extends its files as it writes.
func TestEventLog_AllocateFailsStoreStillWorks(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.OS())
	ffs.Fail(vfs.OpAllocate, 1, syscall.ENOSPC, true)
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: 600, fs: ffs})
	require.NoError(t, err)
	for i := range 20 {
		_, err := s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	require.Greater(t, ffs.Count(vfs.OpAllocate), 1, "every segment tried")
	require.NoError(t, s.Close())
	s, err = Open(dir, &Options{SegmentSize: 600})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, uint64(20), s.Stats().Events)
}

// writeLogFS wraps an FS and records every write to a segment file past
// its header: where it went, how long it was and whether it was all
// zeros. failZeros, if set, is what a write of zeros returns instead.
type writeLogFS struct {
	vfs.FS
	mu        sync.Mutex
	writes    []loggedWrite // guarded by mu
	failZeros error
}

type loggedWrite struct {
	path     string
	off, end int64
	zeros    bool
}

type writeLogFile struct {
	vfs.File
	fs   *writeLogFS
	path string
}

func (w *writeLogFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := w.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segmentSuffix) {
		return f, err
	}
	return &writeLogFile{File: f, fs: w, path: name}, nil
}

func (w *writeLogFS) log() []loggedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

func (f *writeLogFile) WriteAt(p []byte, off int64) (int, error) {
	if off < record.SegmentHeaderSize {
		return f.File.WriteAt(p, off)
	}
	zeros := !slices.ContainsFunc(p, func(b byte) bool { return b != 0 })
	if zeros && f.fs.failZeros != nil {
		return 0, f.fs.failZeros
	}
	f.fs.mu.Lock()
	f.fs.writes = append(f.fs.writes, loggedWrite{path: f.path, off: off, end: off + int64(len(p)), zeros: zeros})
	f.fs.mu.Unlock()
	return f.File.WriteAt(p, off)
}

// checkZeros checks the writes a writeLogFS logged to segments of segSize
// bytes, reserved ahead, under SyncAlways: the zeros of a batch start
// where the zeros so far end, or where the batch's frames end if those
// reach past that; they never reach past the segment's size and are never
// empty; and every batch's frames but a segment's first land on zeros
// written before that batch. At the end, the zeros run zeroLead past the
// frames, or to the segment's size. It returns the number of segments.
func checkZeros(t *testing.T, log []loggedWrite, segSize int64) int {
	t.Helper()
	type state struct {
		frames  int64 // where the frames end; -1 before the first this log shows
		zeroed  int64 // where the zeros end
		before  int64 // where the zeros ended before the last batch
		gap     int64 // a write of zeros not at zeroed, to check against the frames that follow; -1: none
		outside int   // batches whose frames reached past before
	}
	per := map[string]*state{}
	var paths []string
	for _, w := range log {
		st := per[w.path]
		if st == nil {
			st = &state{frames: -1, gap: -1}
			per[w.path] = st
			paths = append(paths, w.path)
		}
		if w.zeros {
			assert.Less(t, w.off, w.end, "an empty write of zeros: %+v", w)
			assert.LessOrEqual(t, w.end-w.off, int64(zeroChunk), "%+v", w)
			assert.LessOrEqual(t, w.end, segSize, "zeros past the segment's size: %+v", w)
			assert.GreaterOrEqual(t, w.off, st.frames, "zeros over a frame: %+v", w)
			assert.GreaterOrEqual(t, w.off, st.zeroed, "zeros over zeros: %+v", w)
			if w.off != st.zeroed {
				st.gap = w.off
			}
			st.zeroed = w.end
			continue
		}
		if st.frames < 0 { // a new segment's first, or a reopened one's
			st.frames = w.off
		}
		assert.Equal(t, st.frames, w.off, "frames are appended: %+v", w)
		if st.gap >= 0 {
			assert.Equal(t, w.end, st.gap, "zeros start where the zeros so far or the batch's frames end: %+v", w)
			st.gap = -1
		}
		if w.end > st.before {
			st.outside++
		}
		st.frames, st.before = w.end, st.zeroed
	}
	for _, path := range paths {
		st := per[path]
		assert.Equal(t, 1, st.outside, "%s: only a segment's first batch lands on space not zeroed before it", path)
		assert.GreaterOrEqual(t, st.zeroed, min(st.frames+zeroLead, segSize), "%s: the zeros run ahead of the last frame", path)
	}
	return len(per)
}

// In a segment reserved ahead, the writer writes zeros over the reserved
// space a chunk at a time, ahead of the frames (see checkZeros); also in
// the segment a reopened store appends to, and never where one frame is
// larger than a segment. Everything reads back.
func TestEventLog_ZerosWrittenAheadOfTheFrames(t *testing.T) {
	const segSize = 1 << 20
	wfs := &writeLogFS{FS: vfs.OS()}
	dir := t.TempDir()
	opts := &Options{SegmentSize: segSize, fs: wfs}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	data := bytes.Repeat([]byte("x"), 2000)
	appendN := func(n int) {
		for i := range n {
			_, err := s.Append(context.Background(), fmt.Sprintf("s-%d", i%7), Any, EventData{Type: "t", Data: data})
			require.NoError(t, err)
		}
	}
	appendN(1200) // about 2.3 segments
	require.Equal(t, 3, checkZeros(t, wfs.log(), segSize))
	require.NoError(t, s.Close())

	// Reopened: Close cut the active segment to its frames, and Open
	// reserves its space again, not yet written.
	wfs.mu.Lock()
	wfs.writes = nil
	wfs.mu.Unlock()
	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	appendN(300)
	require.Equal(t, 1, checkZeros(t, wfs.log(), segSize), "the reopened store appended to its active segment alone")

	// A frame larger than a segment gets a segment of its own, past whose
	// reserved space no zeros go.
	wfs.mu.Lock()
	wfs.writes = nil
	wfs.mu.Unlock()
	big := bytes.Repeat([]byte("b"), segSize+1000)
	_, err = s.Append(context.Background(), "big", Any, EventData{Type: "t", Data: big})
	require.NoError(t, err)
	appendN(10)
	log := wfs.log()
	var bigPath string
	for _, w := range log {
		if !w.zeros && w.end-w.off > segSize {
			bigPath = w.path
		}
	}
	require.NotEmpty(t, bigPath)
	for _, w := range log {
		assert.False(t, w.path == bigPath && w.zeros, "zeros in the large frame's segment: %+v", w)
	}

	all, err := s.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 1511)
	for i, e := range all {
		if i == 1500 {
			require.Equal(t, big, e.Data)
			continue
		}
		require.Equal(t, data, e.Data)
	}
}

// reserveNothing extends files as a hole, as on a system without
// fallocate.
type reserveNothing struct{ vfs.FS }

type reserveNothingFile struct{ vfs.File }

func (r reserveNothing) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := r.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return reserveNothingFile{f}, nil
}

func (f reserveNothingFile) Allocate(size int64) error {
	if cur, err := f.Size(); err != nil || cur >= size {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	return vfs.ErrNotReserved
}

// Zeros are written only where the space was reserved, and only under
// SyncAlways: over a hole they would take its blocks early, and without
// an fdatasync after every batch there is nothing to save.
func TestEventLog_NoZeros(t *testing.T) {
	failing := vfs.NewFaultFS(vfs.OS())
	failing.Fail(vfs.OpAllocate, 1, syscall.ENOSPC, true)
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		sync SyncMode
	}{
		{"fallocate fails", failing, SyncAlways},
		{"a hole, not reserved", reserveNothing{vfs.OS()}, SyncAlways},
		{"SyncInterval", vfs.OS(), SyncInterval},
		{"SyncNone", vfs.OS(), SyncNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wfs := &writeLogFS{FS: tc.fs}
			s, _ := openWithFS(t, wfs, &Options{SegmentSize: 1 << 20, Sync: tc.sync})
			for i := range 300 {
				_, err := s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: bytes.Repeat([]byte("y"), 1000+i)})
				require.NoError(t, err)
			}
			log := wfs.log()
			require.NotEmpty(t, log)
			for _, w := range log {
				require.False(t, w.zeros, "%+v", w)
			}
		})
	}
}

// A write of zeros ahead that fails is a storage failure like any other
// write's: the batch it came with is refused and the store is poisoned,
// and what was acknowledged before reads back after a reopen.
func TestEventLog_FailedZerosPoisonTheStore(t *testing.T) {
	wfs := &writeLogFS{FS: vfs.OS()}
	dir := t.TempDir()
	opts := &Options{SegmentSize: 1 << 20, fs: wfs}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	data := bytes.Repeat([]byte("z"), 4000)
	// The first append wrote a chunk of zeros after its frame; the next
	// is due once the frames come within zeroLead of its end.
	_, err = s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: data})
	require.NoError(t, err)
	require.True(t, wfs.log()[0].zeros, "zeros ahead of the first frame")
	wfs.failZeros = syscall.EIO // the next Append's handoff orders this before the writer reads it
	acked := 1
	var serr *StorageError
	for range zeroChunk/len(data) + 2 {
		_, err = s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: data})
		if err != nil {
			break
		}
		acked++
	}
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, "write", serr.Op)
	assert.ErrorIs(t, err, syscall.EIO)
	_, err = s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: data})
	assert.ErrorIs(t, err, syscall.EIO, "the failure is sticky")
	_ = s.Close()

	wfs.failZeros = nil
	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, uint64(acked), s.Stats().Events)
}

// version1Frame is a one-event frame of a version-1 segment at pos, its
// data n bytes of letters ending in last.
func version1Frame(dst []byte, pos uint64, delta uint32, n int, last byte) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	data[n-1] = last
	body := record.AppendBodyHead(nil, "s", 1)
	body = record.AppendEventOf(1, body, idFor(0, int(pos)), "t", nil, data)
	return record.AppendFrame(dst, pos, delta, 1700000000000000000, pos, body)
}

// A version-1 last segment, never allocated ahead: frames 3 and 4 were one
// unsynced batch, and a power loss tore the sector where frame 3 ends and
// frame 4 begins, losing its last 16 bytes: fewer than 16 of frame 3's. The
// rest of the sector, within the file, shows the tear, as before version 2.
func TestEventLog_Version1_TornLastSectorOfFrameIsRepaired(t *testing.T) {
	for lost := 1; lost < 16; lost++ {
		b := version1SegmentHeader(0)
		for i := range 3 {
			b = version1Frame(b, uint64(i), 0, 20, 'z')
		}
		synced := len(b)
		var x []byte
		for n := 100; ; n++ {
			x = version1Frame(nil, 3, 0, n, 'z')
			if (synced+len(x))%sectorSize == sectorSize-(tornZeroRun-lost) {
				break
			}
		}
		b = append(b, x...)
		b = version1Frame(b, 4, 1, 1200, 'z') // position-delta 3: X's batch
		sectorEnd := (synced + len(x) + sectorSize - 1) / sectorSize * sectorSize
		clear(b[sectorEnd-tornZeroRun : sectorEnd])
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), b, 0o644))
		s, err := Open(dir, &Options{SegmentSize: 1 << 20})
		require.NoError(t, err, "%d of frame 3's bytes lost: a torn write", lost)
		assert.Equal(t, uint64(3), s.Stats().Events, "lost %d", lost)
		assert.Positive(t, s.Stats().TornBytes, "lost %d", lost)
		require.NoError(t, s.Close())
	}
}

// A version-1 last segment, every frame synced: frame 3 ends one byte into
// a sector, and that byte is zero; frame 4 follows in the same batch. A bit
// flipped in frame 3's payload is corruption: frame 4's bytes in the sector
// show that the sector was written.
func TestEventLog_Version1_BitFlipIsCorruptionWhenFrameEndsInAZeroByte(t *testing.T) {
	b := version1SegmentHeader(0)
	for i := range 3 {
		b = version1Frame(b, uint64(i), 0, 20, 'z')
	}
	start := len(b)
	var x []byte
	for n := 100; x == nil; n++ {
		if (start+len(version1Frame(nil, 3, 0, n, 0)))%sectorSize != 1 {
			continue
		}
		for last := range 256 {
			if f := version1Frame(nil, 3, 0, n, byte(last)); f[len(f)-1] == 0 {
				x = f
				break
			}
		}
	}
	b = append(b, x...)
	b = version1Frame(b, 4, 1, 50, 'z') // position-delta 3: X's batch
	b[start+len(x)/2] ^= 0x10
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), b, 0o644))
	s, err := Open(dir, &Options{SegmentSize: 1 << 20})
	if err == nil {
		defer s.Close()
		t.Fatalf("bit flip taken for a torn write: %d events of 5 acknowledged, %d torn bytes", s.Stats().Events, s.Stats().TornBytes)
	}
	require.ErrorIs(t, err, ErrCorrupt)
}

// A sealed segment with zeros after its frames (its cut undone by a crash)
// is cut again by a writable Open, so that later Opens need not read them.
func TestEventLog_Allocated_SealedSegmentIsCutAgain(t *testing.T) {
	src := t.TempDir()
	model := buildLog(t, src, 9, 30, 600)
	segs := segFiles(t, src)
	require.Greater(t, len(segs), 2)
	size := fileSize(t, segs[0])
	require.NoError(t, os.Truncate(segs[0], size+5000))
	s, err := Open(src, &Options{SegmentSize: 600})
	require.NoError(t, err)
	checkStore(t, s, model)
	require.NoError(t, s.Close())
	assert.Equal(t, size, fileSize(t, segs[0]))
}

// A frame whose flags do not match its segment's version (a version-2
// segment holds only frames ending in the end mark) is corruption.
func TestEventLog_FrameFlagsMustMatchTheSegmentVersion(t *testing.T) {
	// Every pairing of a segment's version with a frame of another: each
	// part of frameFits (the end mark, from version 3 the keystream, from
	// version 4 the tags, from version 5 the stream's number) must hold on
	// its own. The frame decodes whole, so it is corrupt, not torn, to Open
	// and to Verify alike, whatever its last byte. A frame of version 5
	// here names its stream by number; one naming it, as a version-4 frame
	// does, fits a version-5 segment too. A compact frame (version 6) in a
	// segment of an earlier version, or a frame of an earlier version in a
	// version-6 segment, has a header of another size than the segment's:
	// its header fails its checksum, where it is corrupt just the same.
	for seg := uint8(1); seg <= record.Version; seg++ {
		for frame := uint8(1); frame <= record.Version; frame++ {
			if seg == frame || seg == 5 && frame == 4 {
				continue
			}
			reason := "format version"
			if seg == 6 || frame == 6 {
				reason = "header checksum"
			}
			for _, last := range []byte{'z', 0} {
				t.Run(fmt.Sprintf("segment %d, frame %d, last byte %#x", seg, frame, last), func(t *testing.T) {
					dir := t.TempDir()
					data := append(bytes.Repeat([]byte{'d'}, 19), last)
					var b []byte
					if frame == 5 { // after a frame of the segment's version creating the stream
						b = appendTestFrame(seg, segmentHeaderOf(seg, 0), 0, 0, "s", idFor(0, 1), data)
						body := record.AppendBodyHead(nil, "s", 1)
						body = record.AppendEventOf(frame, body, idFor(0, 0), "t", nil, data)
						b = record.AppendNumberedFrame(b, 1, 0, 1700000000000000000, 1, 0, "s", body)
					} else {
						b = appendTestFrame(frame, segmentHeaderOf(seg, 0), 0, 0, "s", idFor(0, 0), data)
					}
					require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), b, 0o644))
					before := snapshot(t, dir)
					_, err := Open(dir, nil)
					require.ErrorIs(t, err, ErrCorrupt)
					assert.ErrorContains(t, err, reason)
					assert.Equal(t, before, snapshot(t, dir), "nothing changed")
					rep, err := Verify(context.Background(), dir, nil)
					require.NoError(t, err)
					require.Len(t, rep.Problems, 1)
					assert.Contains(t, rep.Problems[0].Reason, reason)
					assert.Zero(t, rep.TornBytes)
				})
			}
		}
	}
}

// appendTestFrame appends to dst, a segment file of base 0, a frame of the
// given version holding one event of type "t" at position: AppendFrameOf's,
// or a compact frame for version 6.
func appendTestFrame(version uint8, dst []byte, position, firstVersion uint64, stream string, id [record.IDSize]byte, data []byte) []byte {
	body := record.AppendBodyHeadOf(version, nil, stream, 1)
	body = record.AppendLastEventOf(version, body, id, "t", nil, data)
	if version >= 6 {
		return record.AppendCompactFrame(dst, 0, position, 0, 1700000000000000000, firstVersion, 1, body)
	}
	return record.AppendFrameOf(version, dst, position, 0, 1700000000000000000, firstVersion, body)
}

// A segment whose header names a later format version is a later
// release's: Open refuses the store with ErrNewerFormat and removes
// nothing, not even a last segment that holds only its header (which it
// would take for one being created, had its header failed to decode).
func TestEventLog_NewerFormatIsRefusedNotRemoved(t *testing.T) {
	for name, tail := range map[string][]byte{"header only": nil, "with frames": bytes.Repeat([]byte{7}, 100)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, &Options{SegmentSize: 4096})
			require.NoError(t, err)
			for i := range 30 {
				_, err := s.Append(context.Background(), "s", Any, EventData{Type: "t", Data: bytes.Repeat([]byte{byte(i)}, 200)})
				require.NoError(t, err)
			}
			n := s.Stats().Events
			require.NoError(t, s.Close())
			newer := append(segmentHeaderOf(record.Version+1, n), tail...)
			require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(n)), newer, 0o644))
			before := snapshot(t, dir)
			for _, readOnly := range []bool{false, true} {
				_, err = Open(dir, &Options{ReadOnly: readOnly})
				require.ErrorIs(t, err, ErrNewerFormat, "read-only %v", readOnly)
				assert.ErrorContains(t, err, segmentName(n))
				assert.Equal(t, before, snapshot(t, dir), "nothing changed")
			}
		})
	}
}

// A read-only store following a writing one stops with ErrNewerFormat when
// the log rolls over to a segment a later release wrote, rather than wait
// for it as for one being created.
func TestFollower_NewerFormatStopsIt(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, &Options{SegmentSize: 4096})
	require.NoError(t, err)
	for range 5 {
		_, err := w.Append(context.Background(), "s", Any, EventData{Type: "t", Data: []byte("x")})
		require.NoError(t, err)
	}
	r, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, w.Close())
	n := r.Stats().Events
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(n)), segmentHeaderOf(record.Version+1, n), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got error
	for _, err := range r.Subscribe(ctx, n) {
		got = err
		break
	}
	require.ErrorIs(t, got, ErrNewerFormat)
	assert.ErrorContains(t, got, segmentName(n))
}

// TestWriter_Index_Version3FilesStayInUse rewrites a store's index files as
// the release before wrote them, version 3: a first version for every frame
// and the fingerprint of every event's ID, assigned or given. Open still
// uses those of the sealed segments, and reads the last segment instead of
// its file, which it writes again in version 4; so too the segment before
// a torn last one, which is appended to again. Retries are still found by
// either kind of ID; Verify finds nothing wrong, also after an append, and
// still catches a fingerprint in a version-3 file that does not match.
func TestWriter_Index_Version3FilesStayInUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := &Options{SegmentSize: 4096}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	for i := range 80 {
		ev := EventData{Type: "t", Data: []byte(strings.Repeat("d", 3*i))}
		if i%3 == 0 {
			ev.ID = NewEventID()
		}
		_, err := s.Append(ctx, fmt.Sprint("s", i%4), Any, ev)
		require.NoError(t, err)
	}
	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// What the release before wrote: fingerprints of every ID, no zero
	// standing for an assigned one.
	oldPrint := func(id EventID) uint32 {
		x := binary.LittleEndian.Uint64(id[0:8]) ^ binary.LittleEndian.Uint64(id[8:16])
		return uint32(x * 0x9e3779b97f4a7c15 >> 32)
	}
	files := indexFiles(t, dir)
	segs := segFiles(t, dir)
	require.Greater(t, len(files), 2)
	require.Len(t, segs, len(files))
	slices.Sort(segs)
	lastIndex := indexPath(segs[len(segs)-1])
	var lastEnd int64 // where the last segment's frames end
	for path := range files {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		x, err := record.DecodeSegmentIndex(b, math.MaxUint32)
		require.NoError(t, err)
		require.Equal(t, uint8(record.IndexVersion), x.Version)
		require.Contains(t, x.Fingerprints, uint32(assignedPrint), "version 4 leaves assigned IDs' fingerprints out")
		if path == lastIndex {
			lastEnd = x.End
		}
		x.Version = record.OldestIndexVersion
		for i := range x.Fingerprints {
			x.Fingerprints[i] = oldPrint(all[x.Base+uint64(i)].ID)
		}
		b = record.AppendSegmentIndex(nil, x)
		require.Equal(t, byte(record.OldestIndexVersion), b[4])
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}

	rep, err := Verify(ctx, dir, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	assert.Equal(t, len(files), rep.IndexFiles)

	// A crash that left the next segment torn, without its header: Open
	// removes it, and the segment before, the last with a version-3 file,
	// is appended to again. Its file is not used either.
	torn := copyDir(t, snapshot(t, dir))
	require.NoError(t, os.WriteFile(filepath.Join(torn, segmentName(uint64(len(all)))), nil, 0o644))
	s, err = Open(torn, opts)
	require.NoError(t, err)
	_, err = s.Append(ctx, "s1", Any, EventData{Type: "t", Data: []byte("after a torn roll-over")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rep, err = Verify(ctx, torn, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems, "after an append to the segment before a torn one")

	ffs := vfs.NewFaultFS(vfs.OS())
	var logged bytes.Buffer
	s, err = Open(dir, &Options{SegmentSize: 4096, fs: ffs, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	require.NoError(t, err)
	var indexed int64 // what Open reads of the index files and sealed segments
	for path, size := range indexFiles(t, dir) {
		indexed += size
		if path != lastIndex {
			indexed += record.SegmentHeaderSize + record.CompactHeaderSize
		}
	}
	// The last segment's frames are read (Open read them twice here, as
	// the bound of TestWriter_Index_CrashReopenReadsOnlyTheUnindexedTail
	// allows), and no sealed segment's: each is larger than that.
	tail := ffs.BytesRead() - indexed
	assert.Greater(t, tail, lastEnd-record.SegmentHeaderSize, "the last segment is read")
	assert.LessOrEqual(t, tail, 2*lastEnd, "no sealed segment is read")
	require.Greater(t, fileSize(t, segs[0]), 2*lastEnd)
	assert.Equal(t, 1, strings.Count(logged.String(), "ignoring unusable index file"), "%s", logged.String())
	assert.Contains(t, logged.String(), filepath.Base(lastIndex))
	for _, e := range []RecordedEvent{all[0], all[1], all[len(all)-1], all[len(all)-3]} {
		res, err := s.Append(ctx, e.Stream, Any, EventData{ID: e.ID, Type: e.Type, Data: e.Data})
		require.NoError(t, err)
		assert.Equal(t, e.Position, res.Position, "a retry of position %d", e.Position)
	}
	assert.Equal(t, uint64(len(all)), s.Stats().Events)
	_, err = s.Append(ctx, "s0", Any, EventData{Type: "t", Data: []byte("after")})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	rep, err = Verify(ctx, dir, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems, "after an append")
	versions := map[uint8]int{}
	var damaged string
	for path := range indexFiles(t, dir) {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		x, err := record.DecodeSegmentIndex(b, math.MaxUint32)
		require.NoError(t, err)
		versions[x.Version]++
		if path == lastIndex {
			assert.Equal(t, uint8(record.IndexVersion), x.Version, "the last segment's, written again")
		}
		if x.Version == record.OldestIndexVersion && damaged == "" {
			damaged = path
			x.Fingerprints[1]++
			require.NoError(t, os.WriteFile(path, record.AppendSegmentIndex(nil, x), 0o644))
		}
	}
	assert.Equal(t, map[uint8]int{record.OldestIndexVersion: len(files) - 1, record.IndexVersion: 1}, versions)
	require.NotEmpty(t, damaged)
	rep, err = Verify(ctx, dir, nil)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1)
	assert.Equal(t, damaged, rep.Problems[0].Path)
}

// An index file larger than any its segment could have is refused unread.
func TestWriter_Index_OversizedFileRefusedUnread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x"+indexSuffix)
	const segSize = 4096
	require.NoError(t, os.WriteFile(path, make([]byte, record.MaxIndexSize(segSize)+1), 0o644))
	ffs := vfs.NewFaultFS(vfs.OS())
	_, err := readIndexBytes(ffs, path, segSize)
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.Zero(t, ffs.BytesRead())
	require.NoError(t, os.Truncate(path, record.MaxIndexSize(segSize)))
	b, err := readIndexBytes(ffs, path, segSize)
	require.NoError(t, err, "one of the largest size is read")
	assert.Len(t, b, int(record.MaxIndexSize(segSize)))
}

// TestWriter_StreamsByNumber: the frame creating a stream names it, and the
// stream's later frames name it by number. Every reader resolves the numbers
// to the names: reads by position and by stream, walks long enough to verify
// ahead and short ones, subscriptions filtering by prefix, a read-only store
// following the writer, stores opened with and without index files, and
// Verify.
func TestWriter_StreamsByNumber(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := &Options{SegmentSize: 4096}
	data := func(i int) string { return fmt.Sprintf("%03d%s", i, strings.Repeat(".", 100)) }
	s, err := Open(dir, opts)
	require.NoError(t, err)
	follower, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, follower.Close()) }()

	// Streams are created all along the log, across segments, by name;
	// so the numbers, in creation order, are not the names' order.
	var want []string // each event's stream, by position
	created := map[string]bool{}
	var order []string // the streams in creation order
	for i := range 120 {
		stream := fmt.Sprintf("early-%d", (7*i)%5)
		if i >= 40 && i%3 == 0 {
			stream = fmt.Sprintf("late-%d", 9-(i/3)%10)
		}
		if !created[stream] {
			created[stream] = true
			order = append(order, stream)
		}
		_, err := s.Append(ctx, stream, Any, ev(data(i)))
		require.NoError(t, err)
		want = append(want, stream)
	}
	require.Greater(t, len(s.index.segments), 3, "the log spans segments")
	for i, st := range s.index.created {
		require.Equal(t, order[i], st.name, "created %d", i)
		require.Equal(t, s.index.starts[i], st.positions[0])
		require.Equal(t, order[i], want[st.positions[0]])
	}

	// On disk: each stream's first frame names it, every other frame
	// names it by number, as each append had a batch of its own.
	frames, numbered := 0, 0
	for _, seg := range s.index.segments {
		b, err := os.ReadFile(seg.path)
		require.NoError(t, err)
		off := int64(record.SegmentHeaderSize)
		for off < int64(len(b)) && b[off] != 0 {
			h, err := fileLayout(t, b).DecodeHeader(b[off:])
			require.NoError(t, err)
			f, err := record.DecodePayload(h, bytes.Clone(b[off+int64(h.Size()):off+h.FrameSize()]), nil)
			require.NoError(t, err)
			stream := want[f.Position]
			if f.FirstVersion == 0 {
				assert.False(t, f.Numbered)
				assert.Equal(t, stream, string(f.Stream))
			} else {
				require.True(t, f.Numbered, "position %d", f.Position)
				assert.Equal(t, stream, want[f.StreamStart], "position %d", f.Position)
				assert.Equal(t, f.StreamStart, uint64(slices.Index(want, stream)), "the stream's first position")
				numbered++
			}
			frames++
			off += h.FrameSize()
		}
	}
	require.Equal(t, 120, frames)
	require.Equal(t, 120-len(order), numbered)

	check := func(t *testing.T, s *Store) {
		t.Helper()
		all, err := s.ReadAll(ctx, 0, 0)
		require.NoError(t, err)
		require.Len(t, all, len(want))
		for i, e := range all {
			require.Equal(t, want[i], e.Stream, "position %d", i)
			require.Equal(t, data(i), string(e.Data))
		}
		from := uint64(77) // a walk starting on a numbered frame
		some, err := s.ReadAll(ctx, from, 5)
		require.NoError(t, err)
		for i, e := range some {
			require.Equal(t, want[from+uint64(i)], e.Stream)
		}
		for _, stream := range order {
			evs, err := s.ReadStream(ctx, stream, 1, 0)
			require.NoError(t, err)
			for _, e := range evs {
				require.Equal(t, stream, e.Stream)
				require.Equal(t, stream, want[e.Position])
			}
		}
		old := pipelineEvents
		defer func() { pipelineEvents = old }()
		for _, pipelined := range []bool{false, true} { // where there are cores to verify ahead
			pipelineEvents = math.MaxUint64
			if pipelined {
				pipelineEvents = 1
			}
			n := 0
			for e, err := range s.All(ctx, 0, StreamPrefix("late-")) {
				require.NoError(t, err)
				require.Equal(t, want[e.Position], e.Stream)
				require.True(t, strings.HasPrefix(e.Stream, "late-"))
				n++
			}
			require.Equal(t, countPrefix(want, "late-"), n, "pipelined %v", pipelined)
		}
	}
	check(t, s)

	// The read-only store found every frame by following the writer, its
	// numbered ones included.
	sub, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for e, err := range follower.Subscribe(sub, 0) {
		require.NoError(t, err)
		require.Equal(t, want[e.Position], e.Stream, "position %d", e.Position)
		if e.Position == uint64(len(want))-1 {
			break
		}
	}
	check(t, follower)

	require.NoError(t, s.Close())
	s, err = Open(dir, opts) // from index files, but for the last segment
	require.NoError(t, err)
	unconfirmed := 0
	for _, st := range s.index.created {
		if !st.named.Load() {
			unconfirmed++
		}
	}
	require.Positive(t, unconfirmed, "streams from index files")
	require.Equal(t, int64(unconfirmed), s.index.unconfirmed.Load())
	check(t, s)
	require.Zero(t, s.index.unconfirmed.Load(), "a replay from the start confirms every stream")
	require.NoError(t, s.Close())
	idx, err := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
	require.NoError(t, err)
	require.NotEmpty(t, idx)
	for _, p := range idx {
		require.NoError(t, os.Remove(p))
	}
	s, err = Open(dir, &Options{SegmentSize: 4096, ReadOnly: true}) // from the frames
	require.NoError(t, err)
	check(t, s)
	require.NoError(t, s.Close())
	rep, err := Verify(ctx, dir, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	assert.Equal(t, len(order), rep.Streams)
}

// countPrefix counts the strings of ss starting with prefix.
func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestReadIndex_StreamNameResolvesNumbers: a number is the position where
// a stream starts, in the index or among the streams created by frames read
// but not yet published, as a follower has them; a number where no stream
// starts is malformed.
func TestReadIndex_StreamNameResolvesNumbers(t *testing.T) {
	ix := newReadIndex()
	ix.createLocked("a", 0)
	ix.createLocked("b", 3)
	created := []createdStream{{7, "c"}, {9, "d"}}
	for start, want := range map[uint64]string{0: "a", 3: "b", 7: "c", 9: "d"} {
		got, err := ix.streamName(&record.Frame{Numbered: true, StreamStart: start, FirstVersion: 1}, created)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, start := range []uint64{1, 4, 8, 10, math.MaxUint64} {
		_, err := ix.streamName(&record.Frame{Numbered: true, StreamStart: start, FirstVersion: 1}, created)
		require.ErrorIs(t, err, record.ErrMalformed, "start %d", start)
	}
	got, err := ix.streamName(&record.Frame{Stream: []byte("b")}, created)
	require.NoError(t, err)
	assert.Equal(t, "b", got)
	assert.Equal(t, unsafe.StringData(ix.streams["b"].name), unsafe.StringData(got), "the index's copy")
}

// TestEventLog_NumberOfNoStreamIsCorruption: a frame naming its stream by
// a number where no stream starts, or by the number of another stream
// than the one whose versions it continues, is corrupt to Open and Verify.
func TestEventLog_NumberOfNoStreamIsCorruption(t *testing.T) {
	frame := func(seg []byte, position, firstVersion uint64, stream string, number int) []byte {
		body := record.AppendBodyHeadOf(record.Version, nil, stream, 1)
		body = record.AppendLastEventOf(record.Version, body, [record.IDSize]byte{}, "t", nil, []byte("x"))
		if number < 0 {
			return record.AppendCompactFrame(seg, 0, position, 0, 1700000000000000000, firstVersion, 1, body)
		}
		return record.AppendCompactNumberedFrame(seg, 0, position, 0, 1700000000000000000, firstVersion, uint64(number), stream, 1, body)
	}
	for name, tc := range map[string]struct {
		number int
		reason string
	}{
		"no stream starts there": {2, "stream starting at position 2, and none does"},
		"other stream":           {1, `stream "b" continues at version 2, want 1`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := segmentHeaderOf(record.Version, 0)
			b = frame(b, 0, 0, "a", -1)
			b = frame(b, 1, 0, "b", -1)
			b = frame(b, 2, 1, "a", 0)
			bad := int64(len(b))
			b = frame(b, 3, 2, "a", tc.number) // a's next version, b's is 1
			require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(0)), b, 0o644))
			before := snapshot(t, dir)
			_, err := Open(dir, nil)
			require.ErrorIs(t, err, ErrCorrupt)
			var ce *CorruptionError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, bad, ce.Offset)
			assert.Equal(t, before, snapshot(t, dir), "nothing changed")
			rep, err := Verify(context.Background(), dir, nil)
			require.NoError(t, err)
			require.NotEmpty(t, rep.Problems)
			assert.Equal(t, bad, rep.Problems[0].Offset)
			assert.Contains(t, rep.Problems[0].Reason, tc.reason)
		})
	}
}

// TestWriter_Index_ReadsCheckStreamNumbers rewrites, in a segment an index
// file covers, the stream number of one frame, with both checksums made
// good again: Open, which does not read that frame, accepts the store. A
// read of the stream checks the number against the index's and reports
// corruption. A read by position follows the frames, as it follows the
// names frames hold: it reports a number the log never created as
// corruption, and takes another stream's number as the frame gives it.
func TestWriter_Index_ReadsCheckStreamNumbers(t *testing.T) {
	ctx := context.Background()
	// Position 3 is s1's version 1, where no stream starts; 1 is where s1
	// starts.
	for name, number := range map[string]byte{"no stream starts there": 3, "another stream": 1} {
		t.Run(name, func(t *testing.T) {
			s, dir := openWithFS(t, vfs.OS(), nil)
			for i := range 6 {
				_, err := s.Append(ctx, fmt.Sprint("s", i%2), Any, ev(strconv.Itoa(i)))
				require.NoError(t, err)
			}
			require.NoError(t, s.Close())
			path := filepath.Join(dir, segmentName(0))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			offs, _ := frameOffsets(t, b)
			off := offs[4] // position 4: s0's version 2, number 0
			h, err := fileLayout(t, b).DecodeHeader(b[off:])
			require.NoError(t, err)
			payload := b[off+int64(h.Size()) : off+h.FrameSize()]
			require.NoError(t, record.VerifyPayload(h, payload)) // unmasks it
			require.Equal(t, byte(0x3f), payload[0], "a compact numbered frame of one event")
			require.Equal(t, []byte{2, 0}, payload[9:11], "first version 2, number 0")
			payload[10] = number
			payload[len(payload)-1] = 0
			record.MaskWeyl(payload, h.Position)
			payload[len(payload)-1] = record.EndMark
			binary.LittleEndian.PutUint32(b[off+4:], record.Checksum(payload))
			hcrc := off + int64(h.Size()) - 4 // the header's checksum, its last field
			binary.LittleEndian.PutUint32(b[hcrc:], record.Checksum(b[off:hcrc]))
			require.NoError(t, os.WriteFile(path, b, 0o644))

			s, err = Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err, "Open reads the index file, not the frame")
			defer s.Close()
			var ce *CorruptionError
			for _, from := range []uint64{0, 3} { // a walk verifying ahead, and a short one
				old := pipelineEvents
				pipelineEvents = 1
				if from > 0 {
					pipelineEvents = math.MaxUint64
				}
				all, err := s.ReadAll(ctx, from, 0)
				pipelineEvents = old
				if number == 3 {
					require.ErrorIs(t, err, ErrCorrupt)
					require.ErrorAs(t, err, &ce)
					assert.Equal(t, off, ce.Offset)
					assert.Contains(t, ce.Reason, "none does")
				} else {
					require.NoError(t, err)
					assert.Equal(t, "s1", all[4-from].Stream, "as the frame says")
				}
			}
			_, err = s.ReadStream(ctx, "s0", 2, 1)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, off, ce.Offset)
		})
	}
}

// TestWriter_Index_AppendsConfirmStreamNames: with the names of two
// streams swapped in an index file, as in
// TestWriter_Index_ReadsCheckFramesAgainstTheIndex, an append to either
// stream is refused as corruption, rather than written with the number of
// the other stream on disk; appends to other streams go on.
func TestWriter_Index_AppendsConfirmStreamNames(t *testing.T) {
	ctx := context.Background()
	s, dir := openWithFS(t, vfs.OS(), nil)
	for i := range 6 {
		_, err := s.Append(ctx, fmt.Sprint("s", i%2), Any, ev(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	editIndexFile(t, dir, func(x *record.SegmentIndex) {
		require.Equal(t, []string{"s0", "s1"}, x.Names)
		x.Names[0], x.Names[1] = x.Names[1], x.Names[0]
	})

	s, err := Open(dir, nil)
	require.NoError(t, err)
	defer s.Close()
	for _, stream := range []string{"s0", "s1"} {
		_, err = s.Append(ctx, stream, Any, ev("more"))
		require.ErrorIs(t, err, ErrCorrupt, stream)
	}
	_, err = s.Append(ctx, "other", Any, ev("x"))
	require.NoError(t, err, "the refusal was the request's: the store goes on")
	assert.Equal(t, uint64(7), s.Stats().Events)
}

// Requests of one batch: a stream created by an earlier request of the
// batch is named again, not numbered, as the index numbers it only once the
// batch is published; a stream with a committed frame is numbered.
func TestWriter_Batch_StreamsCreatedInTheBatchAreNamed(t *testing.T) {
	ctx := context.Background()
	gate := newGateFS(vfs.OS())
	s, dir := openWithFS(t, gate, nil)
	parked := parkWriter(t, s, gate) // creates "park"
	chans := []<-chan result{
		appendAsync(ctx, s, "new", Any, ev("a")),
		appendAsync(ctx, s, "new", Any, ev("b")),
		appendAsync(ctx, s, "park", Any, ev("c")),
	}
	waitQueued(t, s, len(chans))
	syncs := s.Stats().Syncs
	gate.open()
	require.NoError(t, (<-parked).err)
	for _, ch := range chans {
		require.NoError(t, (<-ch).err)
	}
	require.Equal(t, syncs+1, s.Stats().Syncs, "one batch")
	b, err := os.ReadFile(filepath.Join(dir, segmentName(0)))
	require.NoError(t, err)
	offs, _ := frameOffsets(t, b[:lastNonZero(b)+1])
	require.Len(t, offs, 4)
	kinds := map[string]bool{} // stream:first version -> numbered
	for _, off := range offs {
		h, err := fileLayout(t, b).DecodeHeader(b[off:])
		require.NoError(t, err)
		f, err := record.DecodePayload(h, bytes.Clone(b[off+int64(h.Size()):off+h.FrameSize()]), nil)
		require.NoError(t, err)
		stream := string(f.Stream)
		if f.Numbered {
			stream = startedAt(s.index.created, s.index.starts, f.StreamStart).name
		}
		kinds[fmt.Sprint(stream, ":", f.FirstVersion)] = f.Numbered
	}
	assert.Equal(t, map[string]bool{"park:0": false, "new:0": false, "new:1": false, "park:1": true}, kinds)
	require.NoError(t, s.Close())
	for _, indexed := range []bool{true, false} {
		if !indexed {
			removeIndexFiles(t, dir)
		}
		r, err := Open(dir, &Options{ReadOnly: true})
		require.NoError(t, err)
		evs, err := r.ReadStream(ctx, "new", 0, 0)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		evs, err = r.ReadStream(ctx, "park", 1, 0)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		assert.Equal(t, "c", string(evs[0].Data))
		require.NoError(t, r.Close())
	}
	rep, err := Verify(ctx, dir, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
}

// TestVerify_DamageStopsStreamNumbering: once Verify cannot read a segment
// past a damaged frame, the streams created after it and the versions the
// frames skipped held are unknown. It reports the damage, what follows from
// it (the damaged segment's index file lists frames not read; the next
// segment starts past the positions read), and once that later frames name
// streams it did not read; no frame is reported in a wrong stream or at a
// wrong version. Streams created before the damage are still resolved.
func TestVerify_DamageStopsStreamNumbering(t *testing.T) {
	ctx := context.Background()
	s, dir := openWithFS(t, vfs.OS(), &Options{SegmentSize: 4096})
	for i := range 80 {
		_, err := s.Append(ctx, fmt.Sprint("s", i%10), Any, ev(strings.Repeat("x", 100)))
		require.NoError(t, err)
	}
	require.Greater(t, len(s.index.segments), 2)
	require.NoError(t, s.Close())
	path := filepath.Join(dir, segmentName(0))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	offs, _ := frameOffsets(t, b)
	b[offs[5]+40] ^= 0x10 // a payload byte of s5's first frame: corruption
	require.NoError(t, os.WriteFile(path, b, 0o644))

	rep, err := Verify(ctx, dir, nil)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 4, "%v", rep.Problems)
	assert.Equal(t, path, rep.Problems[0].Path)
	assert.Equal(t, offs[5], rep.Problems[0].Offset)
	assert.Contains(t, rep.Problems[1].Reason, "index lists a frame the segment does not hold whole")
	assert.Contains(t, rep.Problems[2].Reason, "segment starts at position")
	assert.Contains(t, rep.Problems[3].Reason, "which was not read; such frames are not checked from here")
	assert.Equal(t, uint64(80), rep.Frames+uint64(len(offs))-5, "every frame but those of the damaged segment from the damage on")
}

// TestWriter_Index_NumbersNameTheStreamOnDisk forges an index file that
// leaves a stream's creation out: the frame creating b is listed as a's
// version 1, and c, created after b, is then the second stream the index
// knows. A number is the position where a stream starts, and the writer
// numbers a stream only once the frame there is confirmed to name it, so an
// append to c still names c on disk: read back without the index files, b
// and c hold what they should, and Verify finds nothing wrong.
func TestWriter_Index_NumbersNameTheStreamOnDisk(t *testing.T) {
	ctx := context.Background()
	s, dir := openWithFS(t, vfs.OS(), nil)
	for _, stream := range []string{"a", "b", "c"} {
		_, err := s.Append(ctx, stream, NoStream, ev(stream+"0"))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	editIndexFile(t, dir, func(x *record.SegmentIndex) {
		require.Equal(t, []string{"a", "b", "c"}, x.Names)
		x.Names = []string{"a", "c"}
		x.Frames[1].Name, x.Frames[1].FirstVersion = 0, 1
		x.Frames[2].Name = 1
	})

	s, err := Open(dir, nil)
	require.NoError(t, err, "the forgery passes Open's checks")
	_, err = s.Append(ctx, "c", Exact(0), ev("c1"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	s, err = Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	defer s.Close()
	for stream, want := range map[string][]string{"b": {"b0"}, "c": {"c0", "c1"}} {
		evs, err := s.ReadStream(ctx, stream, 0, 0)
		require.NoError(t, err)
		var got []string
		for _, e := range evs {
			got = append(got, string(e.Data))
		}
		assert.Equal(t, want, got, stream)
	}
	rep, err := Verify(ctx, dir, nil)
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
}

// editIndexFile rewrites the index file of the segment at position 0 in dir
// as edit changes it, with a checksum that passes.
func editIndexFile(t *testing.T, dir string, edit func(x *record.SegmentIndex)) {
	t.Helper()
	path := strings.TrimSuffix(filepath.Join(dir, segmentName(0)), segmentSuffix) + indexSuffix
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	x, err := record.DecodeSegmentIndex(b, math.MaxUint32)
	require.NoError(t, err)
	edit(x)
	require.NoError(t, os.WriteFile(path, record.AppendSegmentIndex(nil, x), 0o644))
}

// collidingStarts returns an index of three confirmed streams, named
// "from-" and their starts, whose starts share a set of a walk's cache:
// one more than it has ways.
func collidingStarts() (*readIndex, []uint64) {
	starts := []uint64{1}
	for next := uint64(2); len(starts) < 3; next++ {
		if foundSet(next) == foundSet(starts[0]) {
			starts = append(starts, next)
		}
	}
	ix := newReadIndex()
	for _, start := range starts {
		st := ix.createLocked(fmt.Sprint("from-", start), start)
		st.positions = []uint64{start}
		st.named.Store(true)
	}
	return ix, starts
}

// TestWalker_FoundCacheTellsStartsApart: three streams whose starts share
// a set of a walk's cache, one more than it has ways, are each found as
// themselves, turn after turn.
func TestWalker_FoundCacheTellsStartsApart(t *testing.T) {
	ix, starts := collidingStarts()
	w := walker{ix: ix, found: new([foundSets][2]foundSlot)}
	for _, start := range slices.Concat(starts, starts, starts[1:], starts) {
		w.f = record.Frame{Numbered: true, StreamStart: start, FirstVersion: 1}
		name, err := w.numberedStream(nil, 0)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("from-", start), name)
	}
}

// TestWalk_ChunkEndsWhereTheIndexAndFileDisagree: a helper's chunk whose
// end, or whose buffer's end, falls a few bytes past a frame's, as when an
// index file's offsets are off, ends with an error or at that frame, not in
// a loop reading nothing; and a walk over such an index file ends with a
// *CorruptionError, and the store closes.
func TestWalk_ChunkEndsWhereTheIndexAndFileDisagree(t *testing.T) {
	withPipelineFrom(t, 1)
	s, dir := openWithFS(t, vfs.OS(), nil)
	data := bytes.Repeat([]byte{'d'}, 1000)
	for i := range 3000 {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%7), Any, EventData{Type: "t", Data: data})
		require.NoError(t, err)
	}
	seg := s.index.segments[0]
	first, second := int64(seg.frames[0].off), int64(seg.frames[1].off)
	within := func(name string, fn func() (int, error)) (int, error) {
		type result struct {
			used int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			used, err := fn()
			done <- result{used, err}
		}()
		select {
		case r := <-done:
			return r.used, r.err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: verifyChunk did not return", name)
			return 0, nil
		}
	}
	for _, c := range []struct {
		name    string
		end     int64 // the part's
		buf     int64 // the buffer's capacity
		wantErr bool
	}{
		{"part ends 5 bytes past a frame", second + 5, readChunk, true},
		{"buffer ends 3 bytes past a frame", seg.end, second - first + 3, false},
		{"buffer ends at a frame", seg.end, second - first, false},
	} {
		used, err := within(c.name, func() (int, error) {
			buf := make([]byte, 0, c.buf)
			return verifyChunk(walkPart{seg: seg, off: first, end: c.end}, &buf)
		})
		require.Equal(t, int(second-first), used, c.name)
		if c.wantErr {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, c.name)
		} else {
			require.NoError(t, err, c.name)
		}
	}

	require.NoError(t, s.Close())
	editIndexFile(t, dir, func(x *record.SegmentIndex) {
		for k := 1; k < len(x.Frames)-1; k++ {
			x.Frames[k].Offset += 5
		}
	})
	r, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err, "the forgery passes Open's checks")
	_, err = within("walk", func() (int, error) {
		n := 0
		for _, err := range r.All(context.Background(), 0, BorrowData()) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	})
	var ce *CorruptionError
	require.ErrorAs(t, err, &ce)
	_, err = within("close", func() (int, error) { return 0, r.Close() })
	require.NoError(t, err)
}

// TestWalk_SequentialCachesStreamNumbers: a walk that does not verify
// ahead searches the index for cacheFrom stream numbers and then caches
// what it finds; it names every frame's stream right, before and after,
// among three streams whose numbers share a set of the cache.
func TestWalk_SequentialCachesStreamNumbers(t *testing.T) {
	ix, starts := collidingStarts()
	w := walker{ix: ix}
	for i := range 3 * cacheFrom {
		start := starts[i%len(starts)]
		w.f = record.Frame{Numbered: true, StreamStart: start, FirstVersion: 1}
		name, err := w.numberedStream(nil, 0)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("from-", start), name, "search %d", i)
		require.Equal(t, i >= cacheFrom, w.found != nil, "the cache after %d searches", i+1)
	}

	// End to end: a walk of more frames than that names each right.
	withPipelineFrom(t, math.MaxUint64)
	s, _ := openWithFS(t, vfs.OS(), &Options{Sync: SyncNone})
	const n = 3 * cacheFrom
	for i := range n {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%500), Any, ev(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	i := 0
	err := s.index.walk(context.Background(), 0, n, func(f *record.Frame, stream string) error {
		if stream == "" {
			stream = string(f.Stream)
		}
		require.Equal(t, fmt.Sprint("s", f.Position%500), stream, "position %d", f.Position)
		i++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, n, i)
}

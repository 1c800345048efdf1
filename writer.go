package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-eventstore/eventstore/internal/record"
	"github.com/go-eventstore/eventstore/internal/telemetry"
)

// Request states. A request is queued until either the writer takes it (it
// may then be committed) or its caller abandons it (it will never be). The
// compare-and-swap between the two is what lets an Append whose context
// ended report plain ctx.Err() only when nothing can have been written.
const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

// request is one Append on its way to the writer. Everything but state is
// set by the caller before it is queued and only read afterwards. Once its
// caller has received the answer, the writer is done with it, and the caller
// recycles it (see putRequest), so that an Append allocates nothing of its
// own in the common case.
type request struct {
	stream      string
	expected    ExpectedVersion
	ids         []EventID // one per event; assigned ones included
	explicitIDs bool      // every ID came from the caller, so a retry can match
	body        []byte    // record body: stream, count, encoded events
	state       atomic.Int32
	reply       chan result // capacity 1: the writer never blocks on it
}

// take moves the request from queued to taken, and reports false if its
// caller abandoned it first.
func (r *request) take() bool {
	return r.state.CompareAndSwap(stateQueued, stateTaken)
}

type result struct {
	res AppendResult
	err error
}

// pendingFrame is a frame accepted into the current batch.
type pendingFrame struct {
	req          *request
	seg          *segment
	off          int64
	position     uint64
	firstVersion uint64
	size         int64
}

// pendingStream is what the current batch has accepted for one stream.
type pendingStream struct {
	frames []int // indexes into writer.frames, in version order
	added  uint64
}

// writer is the single goroutine that appends to the log.
type writer struct {
	log   *eventLog
	index *readIndex
	opts  *Options

	reqs chan *request // bounded: its capacity is the backpressure limit
	quit chan struct{} // closed by stop; never reqs, so senders cannot panic
	done chan struct{} // closed by run when it returns

	// Counters read by Stats.
	appends atomic.Uint64
	batches atomic.Uint64
	syncs   atomic.Uint64
	durable atomic.Uint64         // copy of synced, for Stats
	sticky  atomic.Pointer[error] // the storage error, once failed

	// Touched only by the writer goroutine (and by Close after done).
	failed   error                     // sticky storage error; nil while healthy
	batch    []*request                // requests of the batch being committed
	frames   []pendingFrame            // frames accepted into the batch
	outcomes []result                  // per batch request; zero err with res set: committed or duplicate
	pending  map[string]*pendingStream // per stream, what the batch added
	spare    []*pendingStream          // emptied entries of pending, for reuse
	buf      []byte                    // encoded frames not yet written
	next     uint64                    // position of the next event, counting the batch
	synced   uint64                    // every event before this position has been fsynced
	dirty    bool                      // written but not yet synced (SyncInterval, SyncNone)
	lastSync time.Time
	// What bounds yield (see there).
	syncTook     time.Duration // moving average of syncNow's fdatasync, 1/8 weight to the newest; 0 before the first
	yieldBackoff int           // yields skipped after the last one that took too long
	skipYields   int           // yields left to skip
	timer        *time.Timer   // SyncInterval's deferred sync
	sealed       []*segment    // segments rolled over from in this batch, for the indexer

	indexer *indexer
	metrics *telemetry.Metrics
}

func newWriter(log *eventLog, index *readIndex, opts *Options) *writer {
	w := &writer{
		log:     log,
		index:   index,
		opts:    opts,
		reqs:    make(chan *request, opts.QueueSize),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[string]*pendingStream),
		next:    index.next,
		synced:  index.next, // recovery leaves only synced (or truncated) data
		indexer: newIndexer(log, index),
	}
	w.durable.Store(w.synced)
	if opts.Sync == SyncInterval {
		w.timer = time.NewTimer(opts.SyncInterval)
		w.timer.Stop()
	}
	return w
}

// submit queues r and waits for its answer. See Store.Append for what each
// outcome of ctx means.
func (w *writer) submit(ctx context.Context, r *request) (AppendResult, error) {
	select {
	case <-w.quit:
		return AppendResult{}, ErrClosed
	default:
	}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	case <-w.quit:
		return AppendResult{}, ErrClosed
	}
	select {
	case res := <-r.reply:
		putRequest(r)
		return res.res, res.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return AppendResult{}, ctx.Err()
		}
		select {
		case res := <-r.reply:
			return res.res, res.err
		default:
		}
		return AppendResult{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-w.done:
		// The writer answers every request it takes before it exits; one
		// still queued was never taken and never will be.
		select {
		case res := <-r.reply:
			return res.res, res.err
		default:
		}
		r.state.CompareAndSwap(stateQueued, stateAbandoned)
		return AppendResult{}, ErrClosed
	}
}

// stop makes run return after answering what it has taken, and waits.
func (w *writer) stop() {
	close(w.quit)
	<-w.done
}

// run is the single writer. It owns the fields marked as its own and exits
// when quit is closed, after answering every request it took.
func (w *writer) run() {
	defer close(w.done)
	for {
		first, ok := w.nextRequest()
		if !ok {
			w.drain()
			return
		}
		w.collect(first)
		w.commit()
		w.publish()
		if len(w.sealed) > 0 && w.failed == nil {
			w.indexer.add(w.sealed...)
		}
		w.sealed = w.sealed[:0]
		answered := w.reply()
		if answered > 1 && w.opts.Sync == SyncAlways && w.failed == nil && w.syncTook > 0 && len(w.reqs) < w.opts.MaxBatch {
			w.yield()
		}
	}
}

// Bounds of yield's back-off, in yields skipped.
const (
	minYieldBackoff = 64
	maxYieldBackoff = 1 << 16
)

// yield gives the processor up once, under SyncAlways, after a batch of two
// or more was answered. Callers just answered often append again at once;
// the yield lets those already runnable queue before the next batch is
// collected, so that they share its fsync instead of waiting for the one
// after it. Otherwise concurrent callers settle into two groups that take
// turns, each with an fsync of its own. A lone caller gains nothing from it.
//
// The yield is not a timed wait: with nothing else runnable it returns at
// once. But when other goroutines keep the processors busy (CPU-bound work
// in the same process), it puts the writer behind them, for up to a
// scheduler time slice each. A yield can save a caller at most an fsync, so
// one that takes longer than the average fsync starts a back-off (see
// yielded).
func (w *writer) yield() {
	if w.skipYields > 0 {
		w.skipYields--
		return
	}
	start := time.Now()
	runtime.Gosched()
	w.yielded(time.Since(start))
}

// yielded updates the back-off with how long a yield took. One that took
// longer than the average fsync stops the next 64 yields, and each time it
// happens again, twice as many, up to 65,536; one within it ends the
// back-off. Skipping only ever costs the batching the yield would have won.
func (w *writer) yielded(took time.Duration) {
	if took <= w.syncTook {
		w.yieldBackoff = 0
		return
	}
	w.yieldBackoff = min(max(2*w.yieldBackoff, minYieldBackoff), maxYieldBackoff)
	w.skipYields = w.yieldBackoff
}

// nextRequest blocks until there is a request, or quit. Under SyncInterval it
// also wakes to sync a batch acknowledged before its fsync.
func (w *writer) nextRequest() (*request, bool) {
	select {
	case <-w.quit:
		return nil, false
	default:
	}
	var tick <-chan time.Time
	if w.timer != nil {
		tick = w.timer.C
	}
	for {
		select {
		case r := <-w.reqs:
			return r, true
		case <-w.quit:
			return nil, false
		case <-tick:
			w.syncDirty()
		}
	}
}

// collect gathers the batch: first, then whatever is already waiting, up to
// MaxBatch, without blocking.
func (w *writer) collect(first *request) {
	w.batch = append(w.batch[:0], first)
	for len(w.batch) < w.opts.MaxBatch {
		select {
		case r := <-w.reqs:
			w.batch = append(w.batch, r)
		default:
			return
		}
	}
}

// commit checks every request of the batch, encodes the accepted ones and
// writes them with one write and (under SyncAlways) one fdatasync, rolling to
// a new segment where one fills up (eventLog.write may first write zeros
// ahead of the frames). It fills w.outcomes; a request failing
// its checks gets its error there and is left out of the write.
func (w *writer) commit() {
	w.frames = w.frames[:0]
	w.outcomes = w.outcomes[:0]
	w.buf = w.buf[:0]
	for _, ps := range w.pending {
		ps.frames, ps.added = ps.frames[:0], 0
		w.spare = append(w.spare, ps)
	}
	clear(w.pending)
	now := time.Now().UnixNano()

	for _, r := range w.batch {
		if !r.take() {
			w.outcomes = append(w.outcomes, result{err: errAbandoned})
			continue
		}
		if w.failed != nil {
			w.outcomes = append(w.outcomes, result{err: w.failed})
			continue
		}
		// Events the stream holds, committed and accepted into this batch:
		// the version check's subject and the new frame's first version.
		st := w.index.stream(r.stream)
		current := uint64(st.version()+1) + w.pendingAdded(r.stream)
		res, dup, err := w.check(r, current)
		if err != nil || dup {
			w.outcomes = append(w.outcomes, result{res: res, err: err})
			continue
		}
		count := uint64(len(r.ids))
		firstVersion := current
		// A stream with a committed frame is named by its number, the
		// position of its first event, once its name is confirmed by the
		// frame there (which Append sees to, off this goroutine, for a
		// stream learnt from an index file): the number must name this
		// stream on disk whatever the index files say. The frame
		// creating a stream names it; so do the stream's later frames in
		// the same batch, which the index holds only once it is published.
		numbered := st != nil && st.named.Load()
		size := int64(record.CompactFrameSize(firstVersion, r.body))
		if numbered {
			size = int64(record.CompactNumberedFrameSize(firstVersion, st.positions[0], r.stream, r.body))
		}
		if err := w.ensureRoom(size); err != nil {
			w.fail(err)
			w.outcomes = append(w.outcomes, result{err: w.failed})
			continue
		}
		seg := w.log.active() // of the current version: see ensureRoom
		w.frames = append(w.frames, pendingFrame{
			req: r, seg: seg, off: seg.size + int64(len(w.buf)),
			position: w.next, firstVersion: firstVersion, size: size,
		})
		// The delta counts the events written since the last fsync, so
		// recovery can tell which frames a crash may have torn together.
		// Every roll-over syncs, so it stays below the events a segment can
		// hold (under 2^32).
		if numbered {
			w.buf = record.AppendCompactNumberedFrame(w.buf, seg.base, w.next, uint32(w.next-w.synced), now, firstVersion, st.positions[0], r.stream, int(count), r.body)
		} else {
			w.buf = record.AppendCompactFrame(w.buf, seg.base, w.next, uint32(w.next-w.synced), now, firstVersion, int(count), r.body)
		}
		ps := w.pending[r.stream]
		if ps == nil {
			if n := len(w.spare); n > 0 {
				ps, w.spare = w.spare[n-1], w.spare[:n-1]
			} else {
				ps = &pendingStream{}
			}
			w.pending[r.stream] = ps
		}
		ps.frames = append(ps.frames, len(w.frames)-1)
		ps.added += count
		w.next += count
		w.outcomes = append(w.outcomes, result{res: AppendResult{
			Position:      w.next - 1,
			StreamVersion: firstVersion + count - 1,
		}})
	}

	if w.failed == nil && len(w.buf) > 0 {
		w.batches.Add(1)
		if err := w.log.write(w.buf); err != nil {
			w.fail(err)
		} else {
			w.dirty = true
			w.syncBatch()
		}
	}
	if w.failed == nil && len(w.frames) > 0 {
		var bytes int64
		for i := range w.frames {
			bytes += w.frames[i].size
		}
		w.metrics.Batch(len(w.frames), int(w.next-w.index.next), int(bytes))
	}
	if w.failed != nil {
		// Nothing of this batch is published, so nothing of it is
		// acknowledged, whatever reached the disk.
		for i := range w.outcomes {
			if w.outcomes[i].err == nil {
				w.outcomes[i] = result{err: w.failed}
			}
		}
		w.frames = w.frames[:0]
		w.next = w.index.next
	}
}

// errAbandoned marks, in w.outcomes, a request whose caller left before the
// writer took it; it is never sent to anyone.
var errAbandoned = errors.New("eventstore: request abandoned")

// ensureRoom makes sure a frame of size bytes goes to a segment of the
// current version with room for it, writing out the frames so far and
// rolling to a new segment if not. A frame larger than a whole segment gets
// an empty segment of its own.
func (w *writer) ensureRoom(size int64) error {
	seg := w.log.active()
	used := seg.size + int64(len(w.buf))
	// A store opened on a last segment of an earlier version rolls over
	// from it before its first frame, or, if it holds no frame, rewrites
	// its header: request bodies hold events of the current version only.
	if seg.version < record.Version && used == record.SegmentHeaderSize {
		syncs, err := w.log.upgradeEmpty(seg)
		w.syncs.Add(uint64(syncs))
		if err != nil {
			return err
		}
	}
	older := seg.version < record.Version
	if !older && (used+size <= w.log.segmentSize || used == record.SegmentHeaderSize) {
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.log.write(w.buf); err != nil {
			return err
		}
		w.buf = w.buf[:0]
	}
	// roll syncs the full segment before starting the next one.
	w.syncs.Add(1)
	if _, err := w.log.roll(w.next); err != nil {
		return err
	}
	w.sealed = append(w.sealed, seg)
	w.syncs.Add(1) // the new segment's header
	w.synced = w.next
	w.durable.Store(w.synced)
	return nil
}

// syncBatch makes the batch durable as the sync mode asks.
func (w *writer) syncBatch() {
	switch w.opts.Sync {
	case SyncAlways:
		w.syncNow()
	case SyncInterval:
		if time.Since(w.lastSync) >= w.opts.SyncInterval {
			w.syncNow()
		} else {
			w.timer.Reset(w.opts.SyncInterval - time.Since(w.lastSync))
		}
	}
}

// syncDirty syncs data acknowledged before its fsync, if any is left.
func (w *writer) syncDirty() {
	if w.dirty && w.failed == nil {
		w.syncNow()
	}
}

func (w *writer) syncNow() {
	w.syncs.Add(1)
	start := time.Now()
	err := w.log.sync()
	took := time.Since(start)
	w.metrics.Synced(took)
	if w.syncTook == 0 {
		w.syncTook = took
	} else {
		w.syncTook += (took - w.syncTook) / 8
	}
	if err != nil {
		w.fail(err)
		return
	}
	w.dirty = false
	w.synced = w.next
	w.durable.Store(w.synced)
	w.lastSync = time.Now()
}

// fail poisons the writer. The failed fsync is never retried: after one, the
// kernel may have dropped the dirty pages, so a later success proves nothing.
func (w *writer) fail(err error) {
	if w.failed != nil {
		return
	}
	w.failed = err
	w.sticky.Store(&err)
	w.index.notify.stop(err)
	w.log.logger.Error("eventstore: storage failed; appends refused until reopen", "err", err)
}

// check runs a request's version check against the stream as committed plus
// what this batch has accepted, current events in all. It reports dup when the request repeats
// events already appended, with the original result.
func (w *writer) check(r *request, current uint64) (res AppendResult, dup bool, err error) {
	var ok bool
	switch r.expected {
	case Any:
		ok = true
	case NoStream:
		ok = current == 0
	case StreamExists:
		ok = current > 0
	default:
		ok = current == uint64(r.expected)+1
	}
	wrong := func() error {
		return &WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: int64(current) - 1}
	}
	if !r.explicitIDs || current == 0 {
		if ok {
			return AppendResult{}, false, nil
		}
		return AppendResult{}, false, wrong()
	}

	switch r.expected {
	case Any, StreamExists:
		if !ok {
			return AppendResult{}, false, wrong()
		}
		v, found, err := w.findRecent(r.stream, r.ids[0], current)
		if err != nil {
			return AppendResult{}, false, err
		}
		if !found {
			return AppendResult{}, false, nil
		}
		return w.matchAt(r, v, current, wrong)
	default:
		if ok {
			return AppendResult{}, false, nil
		}
		start := uint64(0)
		if r.expected != NoStream {
			start = uint64(r.expected) + 1
		}
		if start >= current {
			return AppendResult{}, false, wrong()
		}
		return w.matchAt(r, start, current, wrong)
	}
}

// matchAt decides an Append whose first event ID is the stream's event at
// version v: a duplicate if every event matches, in order, else a wrong
// expected version.
func (w *writer) matchAt(r *request, v, current uint64, wrong func() error) (AppendResult, bool, error) {
	last := v + uint64(len(r.ids)) - 1
	if last >= current {
		return AppendResult{}, false, wrong()
	}
	ids, err := w.idsFrom(r.stream, v, len(r.ids))
	if err != nil {
		return AppendResult{}, false, err
	}
	if !slices.Equal(ids, r.ids) {
		return AppendResult{}, false, wrong()
	}
	pos, err := w.positionOf(r.stream, last)
	if err != nil {
		return AppendResult{}, false, err
	}
	return AppendResult{Position: pos, StreamVersion: last}, true, nil
}

// findRecent looks for id among the stream's last IdempotencyWindow events
// (of current), newest first, and returns its version.
func (w *writer) findRecent(stream string, id EventID, current uint64) (uint64, bool, error) {
	lowest := uint64(0)
	if current > IdempotencyWindow {
		lowest = current - IdempotencyWindow
	}
	// Events of this batch are in memory.
	if ps := w.pending[stream]; ps != nil {
		for k := len(ps.frames) - 1; k >= 0; k-- {
			f := &w.frames[ps.frames[k]]
			for i := len(f.req.ids) - 1; i >= 0; i-- {
				if v := f.firstVersion + uint64(i); v >= lowest && f.req.ids[i] == id {
					return v, true, nil
				}
			}
		}
	}
	// Committed events: fingerprints pick candidates, and so does the
	// position an ID the store assigned was derived from, as the index
	// holds no fingerprint of it; the log confirms.
	st := w.index.stream(stream)
	if st == nil {
		return 0, false, nil
	}
	fp := fingerprint(id)
	at := -1 // the version holding the position id would have been assigned at
	if p, ok := record.AssignedPosition(w.log.key, id); ok {
		if v, found := slices.BinarySearch(st.positions, p); found && st.fingerprints[v] == assignedPrint {
			at = v
		}
	}
	for v := len(st.fingerprints) - 1; v >= 0 && uint64(v) >= lowest; v-- {
		if st.fingerprints[v] != fp && v != at {
			continue
		}
		got, err := w.idsFrom(stream, uint64(v), 1)
		if err != nil {
			return 0, false, err
		}
		if got[0] == id {
			return uint64(v), true, nil
		}
	}
	return 0, false, nil
}

// pendingAdded returns how many events the batch has accepted for stream.
func (w *writer) pendingAdded(stream string) uint64 {
	if ps := w.pending[stream]; ps != nil {
		return ps.added
	}
	return 0
}

// pendingEvent finds version v of stream among the batch's frames.
func (w *writer) pendingEvent(stream string, v uint64) (f *pendingFrame, i int, ok bool) {
	ps := w.pending[stream]
	if ps == nil {
		return nil, 0, false
	}
	for _, k := range ps.frames {
		f := &w.frames[k]
		if v >= f.firstVersion && v < f.firstVersion+uint64(len(f.req.ids)) {
			return f, int(v - f.firstVersion), true
		}
	}
	return nil, 0, false
}

// idsFrom returns the IDs of n events of stream from version v on, which
// all exist: committed ones read from the log with one pass over their
// frames, the rest from the batch.
func (w *writer) idsFrom(stream string, v uint64, n int) ([]EventID, error) {
	committed := uint64(w.index.stream(stream).version() + 1)
	ids := make([]EventID, 0, n)
	if v < committed {
		hi := min(v+uint64(n), committed)
		var err error
		ids, err = w.index.streamIDs(stream, v, hi, ids)
		if err != nil {
			return nil, err
		}
		if uint64(len(ids)) != hi-v {
			return nil, fmt.Errorf("eventstore: stream %q: index lists versions [%d, %d) but the log holds %d of them", stream, v, hi, len(ids))
		}
	}
	for len(ids) < n {
		f, i, ok := w.pendingEvent(stream, v+uint64(len(ids)))
		if !ok {
			return nil, fmt.Errorf("eventstore: stream %q version %d is neither committed nor pending", stream, v+uint64(len(ids)))
		}
		ids = append(ids, f.req.ids[i])
	}
	return ids, nil
}

// positionOf returns the global position of version v of stream.
func (w *writer) positionOf(stream string, v uint64) (uint64, error) {
	if f, i, ok := w.pendingEvent(stream, v); ok {
		return f.position + uint64(i), nil
	}
	st := w.index.stream(stream)
	if st == nil || v >= uint64(len(st.positions)) {
		return 0, fmt.Errorf("eventstore: stream %q version %d is neither committed nor pending", stream, v)
	}
	return st.positions[v], nil
}

// publish makes the batch's frames visible to readers, all at once. It runs
// after the batch's fsync (or, under the relaxed sync modes, its write), and
// holds the write lock for no I/O.
func (w *writer) publish() {
	if len(w.frames) == 0 {
		return
	}
	ix := w.index
	ix.mu.Lock()
	for _, seg := range w.log.segments[len(ix.segments):] {
		seg.end = record.SegmentHeaderSize
		ix.segments = append(ix.segments, seg)
	}
	for i := range w.frames {
		f := &w.frames[i]
		// The writer checked the versions, so this cannot fail.
		_ = ix.addFrameLocked(f.seg, f.off, f.position, f.firstVersion, f.req.stream, f.req.ids)
		f.seg.end = f.off + f.size
	}
	ix.next = w.next
	ix.mu.Unlock()
	// Subscriptions at the head are woken before the callers are answered.
	ix.notify.published(func(yield func(string) bool) {
		for i := range w.frames {
			if !yield(w.frames[i].req.stream) {
				return
			}
		}
	})
}

// reply answers every request of the batch on its own channel, and returns
// how many it answered.
func (w *writer) reply() int {
	committed, answered := 0, 0
	for i, r := range w.batch {
		out := w.outcomes[i]
		if out.err == errAbandoned {
			continue
		}
		if out.err == nil {
			committed++
		}
		r.reply <- out
		answered++
	}
	w.appends.Add(uint64(committed))
	w.metrics.Committed(committed)
	clear(w.batch) // drop references to answered requests
	return answered
}

// drain answers ErrClosed to every request still queued at quit.
func (w *writer) drain() {
	if w.timer != nil {
		w.timer.Stop()
	}
	for {
		select {
		case r := <-w.reqs:
			if r.take() {
				r.reply <- result{err: ErrClosed}
			}
		default:
			return
		}
	}
}

// indexer writes the index file of each segment the writer rolls over from,
// in the background, so that the writer never waits for one and Open need
// not read the segment again. A failure to write one is logged and costs
// nothing but that read.
type indexer struct {
	log   *eventLog
	index *readIndex
	wake  chan struct{} // capacity 1: work was added
	quit  chan struct{} // closed by stop
	done  chan struct{} // closed by run when it returns

	mu    sync.Mutex
	queue []*segment // guarded by mu: sealed segments waiting for their index file
	busy  bool       // guarded by mu: drain is writing one
}

func newIndexer(log *eventLog, index *readIndex) *indexer {
	return &indexer{log: log, index: index, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// add queues sealed segments, every frame of which is published.
func (x *indexer) add(segs ...*segment) {
	x.mu.Lock()
	x.queue = append(x.queue, segs...)
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// run writes queued index files until stop, then the ones still queued.
func (x *indexer) run() {
	defer close(x.done)
	for {
		select {
		case <-x.wake:
			x.drain()
		case <-x.quit:
			x.drain()
			return
		}
	}
}

func (x *indexer) stop() {
	close(x.quit)
	<-x.done
}

func (x *indexer) drain() {
	for {
		x.mu.Lock()
		x.busy = len(x.queue) > 0
		if !x.busy {
			x.mu.Unlock()
			return
		}
		seg := x.queue[0]
		x.queue = x.queue[1:]
		x.mu.Unlock()
		x.write(seg, true)
	}
}

// idle reports whether no index file is queued or being written.
func (x *indexer) idle() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.queue) == 0 && !x.busy
}

// write writes the index file of seg's published frames. A sealed segment's
// frames are all published, and it then covers the segment whole.
func (x *indexer) write(seg *segment, sealed bool) {
	ix := x.index
	ix.mu.RLock()
	frames, endOff, end := len(seg.frames), seg.end, ix.next
	at := slices.Index(ix.segments, seg)
	if at >= 0 && at+1 < len(ix.segments) {
		end = ix.segments[at+1].base
	}
	ix.mu.RUnlock()
	if at < 0 || frames == 0 || seg.indexed == endOff {
		return
	}
	si := ix.segmentIndex(seg, frames, end, endOff)
	_, hcrc, err := frameHeader(seg, int64(si.Frames[frames-1].Offset))
	if err == nil {
		si.LastHeaderCRC = hcrc
		err = x.log.writeIndexFile(seg, record.AppendSegmentIndex(nil, si))
	}
	if err != nil {
		x.log.logger.Warn("eventstore: could not write index file; Open will scan the segment",
			"segment", seg.path, "err", err.Error())
		return
	}
	seg.indexed = endOff
	if sealed {
		ix.dropOwners(seg)
	}
}

// followInterval is how often a read-only Store looks for new events.
const followInterval = 50 * time.Millisecond

// follower is a read-only Store's counterpart of the writer: the one
// goroutine that adds to its index, the events another process appends to
// the files. It reads whole frames past the end of what it has, moves to the
// next segment once it exists, and publishes what it found as the writer
// does. A frame cut short by the end of the file is a write in progress,
// taken up at the next look. If the files shrink under it (the writing
// Store truncated a torn tail on reopening) or hold a frame out of order, it
// stops, and subscriptions end with the error.
type follower struct {
	log   *eventLog
	index *readIndex
	quit  chan struct{}
	done  chan struct{}
	err   atomic.Pointer[error] // why it stopped following, once it has

	// Touched only by the follower goroutine.
	reader frameReader
	events []record.Event
	frames []followedFrame
	// created lists the streams frames holds the first frames of, in
	// order: those its numbered frames may name beyond the index's.
	created []createdStream
}

// followedFrame is a frame found, waiting to be published.
type followedFrame struct {
	seg          *segment
	off, size    int64
	position     uint64
	firstVersion uint64
	stream       string
	ids          []EventID
}

func newFollower(log *eventLog, index *readIndex) *follower {
	return &follower{log: log, index: index, quit: make(chan struct{}), done: make(chan struct{})}
}

func (f *follower) stop() {
	close(f.quit)
	<-f.done
}

func (f *follower) run() {
	defer close(f.done)
	t := time.NewTicker(followInterval)
	defer t.Stop()
	for {
		select {
		case <-f.quit:
			return
		case <-t.C:
		}
		if err := f.poll(); err != nil {
			f.err.Store(&err)
			f.log.logger.Error("eventstore: read-only store stopped following the log", "err", err)
			f.index.notify.stop(err)
			return
		}
	}
}

// poll publishes every whole frame written since the last look.
func (f *follower) poll() error {
	for {
		select {
		case <-f.quit:
			return f.publish()
		default:
		}
		seg := f.log.active()
		if err := f.scan(seg); err != nil {
			return err
		}
		// A segment is complete and synced before the next one is created:
		// once the next exists, one more scan finds every frame of this one.
		next, err := f.nextSegment()
		if err != nil || next == nil {
			return errors.Join(err, f.publish())
		}
		if err := f.scan(seg); err != nil {
			next.file.Close()
			return err
		}
		f.log.segments = append(f.log.segments, next)
		if err := f.publish(); err != nil {
			return err
		}
	}
}

// scan reads the whole frames past what seg has published or found.
func (f *follower) scan(seg *segment) error {
	size, err := seg.file.Size()
	if err != nil {
		return err
	}
	off, next := seg.size, f.next()
	if size < off {
		return &CorruptionError{Path: seg.path, Offset: size, Reason: fmt.Sprintf("segment shrank from %d bytes to %d under a read-only store; open it again", off, size)}
	}
	r := &f.reader
	r.reset(seg.file, size, seg.layout())
	for off < size {
		fr, err := r.frame(off, f.events)
		if err != nil {
			again, rerr := r.rereadFirst(seg, off)
			if rerr != nil {
				return rerr
			}
			if again {
				fr, err = r.frame(off, f.events)
			}
		}
		if err != nil {
			break // a write in progress, or damage the writing store will report
		}
		f.events = fr.Events
		if fr.Position != next {
			return &CorruptionError{Path: seg.path, Offset: off, Reason: fmt.Sprintf("frame position %d, want %d", fr.Position, next)}
		}
		if err := seg.fitFrame(&fr, off, true); err != nil {
			return err
		}
		name, err := f.index.streamName(&fr, f.created)
		if err != nil {
			return &CorruptionError{Path: seg.path, Offset: off, Reason: err.Error()}
		}
		if fr.FirstVersion == 0 {
			f.created = append(f.created, createdStream{start: fr.Position, name: name})
		}
		ff := followedFrame{seg: seg, off: off, size: fr.FrameSize(), position: fr.Position, firstVersion: fr.FirstVersion, stream: name}
		for i := range fr.Events {
			ff.ids = append(ff.ids, EventID(fr.Events[i].ID)) // zero if assigned
		}
		f.frames = append(f.frames, ff)
		next += uint64(len(fr.Events))
		off += fr.FrameSize()
	}
	seg.size = off
	return nil
}

// next returns the position of the next frame to find: past the frames
// found and not yet published, or else past the index.
func (f *follower) next() uint64 {
	if n := len(f.frames); n > 0 {
		return f.frames[n-1].position + uint64(len(f.frames[n-1].ids))
	}
	return f.index.next
}

// nextSegment opens the segment after the active one if it exists and its
// header is written.
func (f *follower) nextSegment() (*segment, error) {
	base := f.next()
	if base == f.log.active().base {
		return nil, nil // the active segment holds no frame yet
	}
	path := filepath.Join(f.log.dir, segmentName(base))
	file, err := f.log.fs.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hb [record.SegmentHeaderSize]byte
	if _, err := file.ReadAt(hb[:], 0); err != nil {
		file.Close()
		return nil, nil // being created
	}
	h, err := record.DecodeSegmentHeader(hb[:])
	if errors.Is(err, record.ErrNewerVersion) {
		file.Close()
		return nil, newerFormatError(path, err)
	}
	if err != nil || h.Base != base {
		file.Close()
		return nil, nil // being created
	}
	return &segment{base: base, path: path, file: file, size: record.SegmentHeaderSize, version: h.Version, key: h.Key}, nil
}

// publish adds the frames found to the index and wakes subscriptions.
func (f *follower) publish() error {
	ix := f.index
	ix.mu.Lock()
	for _, seg := range f.log.segments[len(ix.segments):] {
		seg.end = record.SegmentHeaderSize
		ix.segments = append(ix.segments, seg)
	}
	for _, fr := range f.frames {
		if err := ix.addFrameLocked(fr.seg, fr.off, fr.position, fr.firstVersion, fr.stream, fr.ids); err != nil {
			ix.mu.Unlock()
			return &CorruptionError{Path: fr.seg.path, Offset: fr.off, Reason: err.Error()}
		}
		fr.seg.end = fr.off + fr.size
		ix.next = fr.position + uint64(len(fr.ids))
	}
	ix.mu.Unlock()
	if len(f.frames) > 0 {
		ix.notify.published(func(yield func(string) bool) {
			for _, fr := range f.frames {
				if !yield(fr.stream) {
					return
				}
			}
		})
	}
	clear(f.frames)
	f.frames = f.frames[:0]
	clear(f.created)
	f.created = f.created[:0]
	return nil
}

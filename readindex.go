package eventstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-eventstore/eventstore/internal/record"
	"github.com/go-eventstore/eventstore/internal/telemetry"
)

// frameRef locates one frame inside its segment: the position of its first
// event relative to the segment's base, and its byte offset. Eight bytes a
// frame keeps the index small; segments are capped well under 4 GiB, and
// every event takes at least record.MinEventSize bytes, so both fit in 32
// bits.
type frameRef struct {
	rel uint32
	off uint32
}

// streamIndex holds what the index knows of one stream: the global position
// of each version, and a 32-bit fingerprint of each event's ID (or
// assignedPrint), used to find candidates for idempotent retries without
// keeping IDs in memory.
type streamIndex struct {
	name         string
	positions    []uint64 // by version
	fingerprints []uint32 // by version
	// named is set once the name is known to be the one the stream's
	// first frame holds: at once for a stream the index learnt from that
	// frame, at the first read or append needing it for one it learnt
	// from an index file (see confirmName).
	named atomic.Bool
}

// version returns the stream's current version, -1 when it has no events.
func (s *streamIndex) version() int64 {
	if s == nil {
		return -1
	}
	return int64(len(s.positions)) - 1
}

// readIndex maps positions and stream versions to frames in the segment
// files, and reads events from those files. It holds offsets and positions,
// never payloads: an event costs about 20 bytes of heap (8 for its frame
// when it is alone in one, 8 for its position in its stream, 4 for its ID's
// fingerprint), whatever its size.
//
// A readIndex is safe for concurrent use. Readers take the read lock only to
// look up locations, and do their file I/O after releasing it. The writer
// goroutine is the only mutator: it reads the index without the lock (reads
// do not race with reads) and changes it only in publish, under the write
// lock, which it holds for no I/O.
type readIndex struct {
	mu       sync.RWMutex            // guards the fields below, and segment.frames and segment.end
	segments []*segment              // ascending by base
	streams  map[string]*streamIndex // by name
	// created holds the streams in the order the log created them, and
	// starts the position of each one's first event, ascending: a frame
	// naming its stream by number gives that position. Both only grow,
	// so a reader may keep copies of the slices taken under mu and read
	// the entries below their length without the lock.
	created []*streamIndex
	starts  []uint64
	next    uint64 // position the next event will get; readers see [0, next)
	closed  bool   // set by Close; reads return ErrClosed
	heap    int64  // bytes the index holds, kept up to date by addFrameLocked
	// unconfirmed counts the streams whose name is not confirmed yet (see
	// streamIndex.named), so that appends and walks skip the check when
	// there are none.
	unconfirmed atomic.Int64

	notify  *notifier          // wakes subscriptions; has its own lock
	metrics *telemetry.Metrics // set by Open before anyone reads
	// helpers counts walks' verifier goroutines, which Close waits for.
	// Add only under mu, read-locked, while closed is unset.
	helpers sync.WaitGroup
}

func newReadIndex() *readIndex {
	return &readIndex{streams: make(map[string]*streamIndex), notify: newNotifier()}
}

// fingerprint condenses an event ID for the idempotency check. UUIDs share
// their leading time bits, so both halves are mixed in. It is never
// assignedPrint.
func fingerprint(id EventID) uint32 {
	x := binary.LittleEndian.Uint64(id[0:8]) ^ binary.LittleEndian.Uint64(id[8:16])
	x *= 0x9e3779b97f4a7c15
	return max(uint32(x>>32), 1)
}

// assignedPrint stands in the index for the fingerprint of an ID the store
// assigned, which needs none: the idempotency check finds such an ID by
// the position record.AssignedPosition reads out of it. Index files of
// version 4 and later leave it out. Those of version 3 hold fingerprints of every
// ID, assigned or not, in which 0 reads as 1, as fingerprint returns it;
// Open uses one only for a sealed segment it covers whole, whose file is
// never written again (see readIndexFile).
const assignedPrint = 0

// currentPrints rewrites the fingerprints of an index file of version 3 as
// fingerprint gives them now: 0 as 1.
func currentPrints(x *record.SegmentIndex) {
	if x.Version == record.OldestIndexVersion {
		for i, p := range x.Fingerprints {
			x.Fingerprints[i] = max(p, 1)
		}
	}
}

// printOf is id's entry in the index: assignedPrint for the zero ID, which
// stands for one the store assigned.
func printOf(id EventID) uint32 {
	if id.IsZero() {
		return assignedPrint
	}
	return fingerprint(id)
}

// addFrameLocked records a committed frame, whose event IDs are ids, zero
// for one the store assigned. The caller holds mu for writing, or is Open
// before anyone else can see the index.
func (ix *readIndex) addFrameLocked(seg *segment, off int64, position, firstVersion uint64, stream string, ids []EventID) error {
	st := ix.streams[stream]
	if st == nil {
		if firstVersion != 0 {
			return fmt.Errorf("stream %q starts at version %d", stream, firstVersion)
		}
		st = ix.createLocked(stream, position)
		st.named.Store(true) // from its first frame
		ix.heap += perStreamBytes + int64(len(stream))
	} else if firstVersion != uint64(len(st.positions)) {
		return fmt.Errorf("stream %q continues at version %d, want %d", stream, firstVersion, len(st.positions))
	}
	before := sliceBytes(seg, st)
	seg.frames = append(seg.frames, frameRef{rel: uint32(position - seg.base), off: uint32(off)})
	seg.owners = append(seg.owners, st) // dropped once an index file covers seg
	for i, id := range ids {
		st.positions = append(st.positions, position+uint64(i))
		st.fingerprints = append(st.fingerprints, printOf(id))
	}
	ix.heap += sliceBytes(seg, st) - before
	ix.next = max(ix.next, position+uint64(len(ids)))
	return nil
}

// createLocked adds a stream with no events yet, whose first event will
// have position start, past every stream's before. The caller holds mu for
// writing, or is Open.
func (ix *readIndex) createLocked(name string, start uint64) *streamIndex {
	st := &streamIndex{name: name}
	ix.streams[name] = st
	ix.created = append(ix.created, st)
	ix.starts = append(ix.starts, start)
	return st
}

// startedAt returns the stream of created whose first event has position
// start, or nil; starts holds their starts.
func startedAt(created []*streamIndex, starts []uint64, start uint64) *streamIndex {
	if i, ok := slices.BinarySearch(starts, start); ok {
		return created[i]
	}
	return nil
}

// createdStream is a stream created by a frame read but not yet added to
// the index: the follower's.
type createdStream struct {
	start uint64
	name  string
}

// errNoStreamStarts is why a numbered frame is corrupt when no stream
// starts where it says.
func errNoStreamStarts(start uint64) error {
	return fmt.Errorf("%w: frame names the stream starting at position %d, and none does", record.ErrMalformed, start)
}

// streamName returns the index's copy of the name of the stream of f, a
// frame read while building the index or following the log, whose
// numbered frames name streams the index holds. created holds the streams
// frames already read have created beyond the index's, in order (the
// follower's, not yet published). It does not allocate a string for a
// stream the index or created has.
func (ix *readIndex) streamName(f *record.Frame, created []createdStream) (string, error) {
	if f.Numbered {
		if st := startedAt(ix.created, ix.starts, f.StreamStart); st != nil {
			return st.name, nil
		}
		// created is in position order, as the frames creating them were.
		if i, ok := slices.BinarySearchFunc(created, f.StreamStart, func(c createdStream, start uint64) int {
			return cmp.Compare(c.start, start)
		}); ok {
			return created[i].name, nil
		}
		return "", errNoStreamStarts(f.StreamStart)
	}
	if st, ok := ix.streams[string(f.Stream)]; ok {
		return st.name, nil
	}
	return string(f.Stream), nil
}

// perStreamBytes is what a stream costs the index beyond its name and
// slices: its streamIndex, its map key and value, and its entries in
// created and starts.
const perStreamBytes = int64(unsafe.Sizeof(streamIndex{})) + 16 + 8 + 8 + 8

// sliceBytes is what the slices one frame grows hold, at their capacity.
func sliceBytes(seg *segment, st *streamIndex) int64 {
	return segmentBytes(seg) + int64(cap(st.positions))*8 + int64(cap(st.fingerprints))*4
}

// segmentBytes is what a segment's slices hold, at their capacity.
func segmentBytes(seg *segment) int64 {
	return int64(cap(seg.frames))*int64(unsafe.Sizeof(frameRef{})) + int64(cap(seg.owners))*8
}

// countHeap sets ix.heap from scratch: Open's recovery adds frames in bulk
// and counts once at the end.
func (ix *readIndex) countHeap() {
	ix.heap = 0
	for _, seg := range ix.segments {
		ix.heap += segmentBytes(seg)
	}
	for _, st := range ix.streams {
		ix.heap += perStreamBytes + int64(len(st.name)) + int64(cap(st.positions))*8 + int64(cap(st.fingerprints))*4
	}
}

// indexBuilder rebuilds a readIndex from the log for Open; see the recoverer
// interface in eventlog.go. It runs before anyone else can see the index.
type indexBuilder struct {
	ix  *readIndex
	ids []EventID
}

func (r *indexBuilder) frame(seg *segment, off int64, f *record.Frame) error {
	r.ids = r.ids[:0]
	for i := range f.Events {
		r.ids = append(r.ids, EventID(f.Events[i].ID)) // zero if assigned
	}
	name, err := r.ix.streamName(f, nil)
	if err != nil {
		return err
	}
	return r.ix.addFrameLocked(seg, off, f.Position, f.FirstVersion, name, r.ids)
}

func (r *indexBuilder) index(seg *segment, x *record.SegmentIndex, keepOwners bool) error {
	ix := r.ix
	if x.Base != ix.next || len(seg.frames) != 0 {
		return fmt.Errorf("index starts at position %d, want %d", x.Base, ix.next)
	}
	// Check first: every stream named once, every frame continuing its
	// stream's versions. Then add, which cannot fail.
	streams := make([]*streamIndex, len(x.Names))
	next := make([]uint64, len(x.Names))
	seen := make(map[string]struct{}, len(x.Names))
	for i, name := range x.Names {
		if _, dup := seen[name]; dup {
			return fmt.Errorf("stream %q listed twice", name)
		}
		seen[name] = struct{}{}
		streams[i] = ix.streams[name]
		next[i] = uint64(streams[i].version() + 1)
	}
	currentPrints(x)
	for _, f := range x.Frames {
		if f.FirstVersion != next[f.Name] {
			return fmt.Errorf("stream %q continues at version %d, want %d", x.Names[f.Name], f.FirstVersion, next[f.Name])
		}
		next[f.Name] += uint64(f.Count)
	}
	seg.frames = slices.Grow(seg.frames, len(x.Frames))
	if keepOwners {
		seg.owners = slices.Grow(seg.owners, len(x.Frames))
	}
	for _, f := range x.Frames {
		st := streams[f.Name]
		if st == nil {
			st = ix.createLocked(x.Names[f.Name], seg.base+uint64(f.Rel))
			ix.unconfirmed.Add(1) // its name is the index file's
			streams[f.Name] = st
		}
		seg.frames = append(seg.frames, frameRef{rel: f.Rel, off: f.Offset})
		if keepOwners {
			seg.owners = append(seg.owners, st)
		}
		first := seg.base + uint64(f.Rel)
		for p := first; p < first+uint64(f.Count); p++ {
			st.positions = append(st.positions, p)
		}
		st.fingerprints = append(st.fingerprints, x.Fingerprints[f.Rel:f.Rel+f.Count]...)
	}
	ix.next = x.Base + x.Events()
	return nil
}

// segmentIndex builds the index file of seg's first frames frames, which
// hold the events up to position end, exclusive. Only the indexer and Close
// call it, for frames already published; it takes the read lock a few
// thousand frames at a time, so the writer's publish never waits long.
func (ix *readIndex) segmentIndex(seg *segment, frames int, end uint64, endOff int64) *record.SegmentIndex {
	x := &record.SegmentIndex{
		Version:      record.IndexVersion,
		Base:         seg.base,
		End:          endOff,
		Frames:       make([]record.IndexedFrame, 0, frames),
		Fingerprints: make([]uint32, 0, end-seg.base),
	}
	names := make(map[*streamIndex]uint32)
	cursor := make(map[*streamIndex]int) // version of the stream's next event in seg
	const chunk = 4096
	for lo := 0; lo < frames; lo += chunk {
		ix.mu.RLock()
		for i := lo; i < min(lo+chunk, frames); i++ {
			ref, st := seg.frames[i], seg.owners[i]
			pos := seg.base + uint64(ref.rel)
			count := end - pos
			if i+1 < len(seg.frames) {
				count = uint64(seg.frames[i+1].rel - ref.rel)
			}
			n, ok := names[st]
			if !ok {
				n = uint32(len(x.Names))
				names[st] = n
				x.Names = append(x.Names, st.name)
				cursor[st], _ = slices.BinarySearch(st.positions, pos)
			}
			v := cursor[st]
			cursor[st] = v + int(count)
			x.Frames = append(x.Frames, record.IndexedFrame{
				Offset: ref.off, Rel: ref.rel, Count: uint32(count), Name: n, FirstVersion: uint64(v),
			})
			x.Fingerprints = append(x.Fingerprints, st.fingerprints[v:v+int(count)]...)
		}
		ix.mu.RUnlock()
	}
	return x
}

// dropOwners forgets seg's frame owners once an index file covers it whole.
func (ix *readIndex) dropOwners(seg *segment) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.heap -= int64(cap(seg.owners)) * 8
	seg.owners = nil
}

// stream returns the stream's index entry, or nil. The writer calls it
// without the lock; everyone else holds mu.
func (ix *readIndex) stream(name string) *streamIndex { return ix.streams[name] }

// frameLoc is a frame's place in a segment file: bytes [off, end).
type frameLoc struct {
	seg      *segment
	off, end int64
}

// locateLocked returns the frame holding position p < ix.next.
func (ix *readIndex) locateLocked(p uint64) frameLoc {
	si := sort.Search(len(ix.segments), func(i int) bool { return ix.segments[i].base > p }) - 1
	seg := ix.segments[si]
	fi := frameAt(seg.frames, uint32(p-seg.base))
	loc := frameLoc{seg: seg, off: int64(seg.frames[fi].off), end: seg.end}
	if fi+1 < len(seg.frames) {
		loc.end = int64(seg.frames[fi+1].off)
	}
	return loc
}

// frameAt returns the index of the frame holding the event at rel, frames
// being a segment's, not empty, whose first frame starts at rel 0. A
// binary search of the slice reads a frame per halving, most of them a
// cache miss in a segment of some 300,000 frames, and a read of one stream
// looks up every frame it reads. frameAt guesses instead: the frame as far
// into the slice as rel is into the span up to the last frame's start,
// which is the frame wanted, or one beside it, where the events are spread
// evenly over the frames. From there it widens, doubling, until the frame
// wanted lies between two it has read, and halves the stretch between
// them. Where the events are spread unevenly (a few frames of many events
// among many of one), it reads up to about twice as many frames as a
// binary search.
func frameAt(frames []frameRef, rel uint32) int {
	n := len(frames)
	last := frames[n-1].rel
	if rel >= last {
		return n - 1
	}
	// frames[lo].rel <= rel < frames[hi].rel throughout.
	lo, hi := 0, n-1
	if g := int(uint64(rel) * uint64(n-1) / uint64(last)); frames[g].rel <= rel {
		lo = g
		for step := 1; g+step < hi; step *= 2 {
			if frames[g+step].rel > rel {
				hi = g + step
				break
			}
			lo = g + step
		}
	} else {
		hi = g
		for step := 1; g-step > lo; step *= 2 {
			if frames[g-step].rel <= rel {
				lo = g - step
				break
			}
			hi = g - step
		}
	}
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if frames[m].rel <= rel {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// readAll returns up to limit events (limit <= 0: all) from position from
// upward, or downward when backward is set.
func (ix *readIndex) readAll(ctx context.Context, from uint64, limit int, backward bool) ([]RecordedEvent, error) {
	next, err := ix.head()
	if err != nil {
		return nil, err
	}
	lo, hi := span(from, limit, backward, next)
	if lo >= hi {
		return nil, nil
	}
	out := make([]RecordedEvent, 0, min(hi-lo, 1<<16))
	conv := ix.newConverter(0) // bounded by the result
	err = ix.walk(ctx, lo, hi, func(f *record.Frame, stream string) error {
		for i := range f.Events {
			if pos := f.Position + uint64(i); pos >= lo && pos < hi {
				out = append(out, conv.event(f, i, stream))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if backward {
		slices.Reverse(out)
	}
	return out, nil
}

// head returns the position the next event will get: readers see [0, head).
func (ix *readIndex) head() (uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return 0, ErrClosed
	}
	return ix.next, nil
}

// streamCount returns how many events the stream holds.
func (ix *readIndex) streamCount(stream string) (uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return 0, ErrClosed
	}
	return uint64(ix.streams[stream].version() + 1), nil
}

// walk calls fn, in position order, for every frame holding events in
// [lo, hi), hi at most the head; the first frame may also hold events before
// lo. It reads the segment files sequentially, in chunks, and holds no lock
// while it reads or calls fn. The frame aliases a shared buffer, valid only
// during the call. walk stops at the first error, fn's or its own, and
// returns it.
func (ix *readIndex) walk(ctx context.Context, lo, hi uint64, fn func(f *record.Frame, stream string) error) error {
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return ErrClosed
	}
	hi = min(hi, ix.next)
	if lo >= hi {
		ix.mu.RUnlock()
		return nil
	}
	start := ix.locateLocked(lo)
	var parts []walkPart
	for _, seg := range ix.segments {
		if seg.base >= hi || seg.base < start.seg.base {
			continue
		}
		p := walkPart{seg: seg, off: record.SegmentHeaderSize, end: seg.end, frames: seg.frames}
		if seg == start.seg {
			p.off = start.off
		}
		parts = append(parts, p)
	}
	ix.mu.RUnlock()

	w := walker{ix: ix, ctx: ctx, ctxNever: ctx.Done() == nil, lo: lo, hi: hi, next: lo, fn: fn}
	if hi-lo >= pipelineEvents && runtime.GOMAXPROCS(0) > 1 {
		pipelinedWalks.Add(1)
		return w.pipelined(parts, chunkParts(parts))
	}
	r := getReader()
	defer putReader(r)
	for _, p := range parts {
		r.reset(p.seg.file, p.end, p.seg.layout())
		for off := p.off; off < p.end; {
			if err := r.frameInto(&w.f, off); err != nil {
				return ix.readError(p.seg, off, err)
			}
			if done, err := w.frame(p.seg, off, ""); done || err != nil {
				return err
			}
			off += w.f.FrameSize()
		}
	}
	return w.short(parts)
}

// walkPart is the stretch [off, end) of a segment a walk reads.
type walkPart struct {
	seg      *segment
	off, end int64
	// frames is seg.frames as the walk found it, for cutting the part into
	// chunks without the lock: entries already published never change.
	frames []frameRef
}

// walker is the state of one walk: it checks that each frame runs on from
// the one before and passes it to fn, until the frame holding hi-1.
type walker struct {
	ix  *readIndex
	ctx context.Context
	// ctxNever is set if ctx can never end, as a context whose Done is nil
	// (context.Background's) cannot, so that its error need not be read. A
	// walker built without it reads the error.
	ctxNever bool
	lo, hi   uint64
	next     uint64 // the frames must run on from the one holding lo
	// fn takes each frame, and its stream's name as the index holds it
	// when the walk has looked it up already, else "".
	fn func(f *record.Frame, stream string) error
	// f is the frame being passed to fn, one for the walk, decoded in
	// place: fn's pointer to it escapes.
	f record.Frame
	// created and starts are the index's as the walk last took them, for
	// frames naming their stream by number, and found caches the streams
	// found there by their numbers: from the start in a walk long enough
	// to verify ahead, else once the walk has searched for cacheFrom of
	// them (a short walk, such as a subscription's at the head, would
	// spend more clearing it than it saves).
	created  []*streamIndex
	starts   []uint64
	found    *[foundSets][2]foundSlot
	searched int // numbers searched for in starts, uncached, up to cacheFrom
}

// cacheFrom is how many stream numbers a walk searches for before it
// caches what it finds: some 30 µs of binary searches, about what the
// cache costs to clear.
const cacheFrom = 1024

// foundSlot is the name of a stream a walk found by its number, the
// position where it starts. It holds the name, not the stream, so that a
// hit reads no more than the slot.
type foundSlot struct {
	start uint64
	name  string // the stream's, confirmed; "" for an empty slot
}

// foundSets is the size of a walk's cache of streams by number, in sets
// of two ways: 96 KiB, so that a thousand streams read in turn nearly all
// hit. With one way, the streams whose numbers met in a slot, two in five
// of them, would evict each other at every turn.
const (
	foundBits = 11
	foundSets = 1 << foundBits
)

// foundSet is the set of a walk's cache where the stream starting at
// start is kept: the start's top bits after a multiplication by the golden
// ratio's odd constant, which spreads starts a stream's length apart.
func foundSet(start uint64) uint64 { return (start * 0x9e3779b97f4a7c15) >> (64 - foundBits) }

// ctxErr returns ctx's error, without asking for it if never is set: ctx
// can never end (see walker.ctxNever).
func ctxErr(ctx context.Context, never bool) error {
	if never {
		return nil
	}
	return ctx.Err()
}

// frame takes w.f, read at off in seg; done is set once it reaches hi.
func (w *walker) frame(seg *segment, off int64, stream string) (done bool, err error) {
	if err := ctxErr(w.ctx, w.ctxNever); err != nil {
		return true, err
	}
	f := &w.f
	f.Key = seg.key
	if end := f.Position + uint64(len(f.Events)); f.Position != w.next && (w.next != w.lo || f.Position > w.lo || end <= w.lo) {
		return true, w.ix.readError(seg, off, fmt.Errorf("%w: frame holds positions %d to %d, want %d", record.ErrMalformed, f.Position, end-1, w.next))
	}
	w.next = f.Position + uint64(len(f.Events))
	if f.Numbered {
		if stream, err = w.numberedStream(seg, off); err != nil {
			return true, err
		}
	} else if f.FirstVersion == 0 && w.ix.unconfirmed.Load() > 0 {
		w.ix.firstFrame(f)
	}
	if err := w.fn(f, stream); err != nil {
		return true, err
	}
	return w.next >= w.hi, nil
}

// numberedStream returns the name of the stream w.f, a published frame
// read at off in seg, names by number: the index's, confirmed by the
// stream's first frame (see confirmName). The frame that created the
// stream was published before w.f, so the index holds the stream. The
// error is a read error (see readError).
func (w *walker) numberedStream(seg *segment, off int64) (string, error) {
	start := w.f.StreamStart
	if w.found == nil {
		if w.searched++; w.searched <= cacheFrom {
			return w.lookupStart(seg, off, nil)
		}
		w.found = new([foundSets][2]foundSlot)
	}
	set := &w.found[foundSet(start)]
	for k := range set {
		if set[k].name != "" && set[k].start == start {
			return set[k].name, nil // confirmed when cached
		}
	}
	return w.lookupStart(seg, off, set)
}

// lookupStart returns the name of the stream that starts at w.f's stream
// number, as numberedStream does, from the index; set, if not nil, is
// where the walk's cache keeps it.
func (w *walker) lookupStart(seg *segment, off int64, set *[2]foundSlot) (string, error) {
	start := w.f.StreamStart
	st := startedAt(w.created, w.starts, start)
	if st == nil {
		w.ix.mu.RLock()
		w.created, w.starts = w.ix.created, w.ix.starts
		w.ix.mu.RUnlock()
		if st = startedAt(w.created, w.starts, start); st == nil {
			return "", w.ix.readError(seg, off, errNoStreamStarts(start))
		}
	}
	if err := w.ix.confirmName(st); err != nil {
		return "", err
	}
	if set != nil { // most recently filled way first
		set[1], set[0] = set[0], foundSlot{start: start, name: st.name}
	}
	return st.name, nil
}

// firstFrame takes note of f, a published frame holding a stream's version
// 0: if the index holds the stream's first event where f does, f confirms
// the stream's name, and a walk meeting the stream's later frames need not
// read f again (see confirmName).
func (ix *readIndex) firstFrame(f *record.Frame) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.streams[string(f.Stream)]; st != nil && !st.named.Load() && st.positions[0] == f.Position {
		st.confirmed(ix)
	}
}

// confirmName makes sure that st's name is the one its first frame holds.
// An index file lists the names of a segment's streams, and Open does not
// read the frames it covers, so it does not check them: for a stream
// named there, the first read needing its name reads that frame, once.
// A frame naming its stream by number leaves the name to the index. The
// error is a read error (see readError).
func (ix *readIndex) confirmName(st *streamIndex) error {
	if st.named.Load() {
		return nil
	}
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return ErrClosed
	}
	first := st.positions[0]
	loc := ix.locateLocked(first)
	ix.mu.RUnlock()
	r := getReader()
	defer putReader(r)
	r.reset(loc.seg.file, loc.end, loc.seg.layout())
	f, err := r.frame(loc.off, nil)
	if err != nil {
		return ix.readError(loc.seg, loc.off, err)
	}
	if f.Position != first || f.FirstVersion != 0 || f.Numbered || string(f.Stream) != st.name {
		return ix.readError(loc.seg, loc.off, fmt.Errorf("%w: the segment's index file names the stream of its frame at position %d %q, and the frame does not",
			record.ErrMalformed, first, st.name))
	}
	st.confirmed(ix)
	return nil
}

// confirmed sets st.named, once, for the stream's first frame has been
// read and names it.
func (st *streamIndex) confirmed(ix *readIndex) {
	if st.named.CompareAndSwap(false, true) {
		ix.unconfirmed.Add(-1)
	}
}

// confirmStream confirms the name of the stream the caller is about to
// append to, if the index learnt it from an index file and nothing has
// confirmed it yet, so that the writer may name the stream by number
// without reading its first frame itself. It costs an atomic load when
// every stream is confirmed.
func (ix *readIndex) confirmStream(name string) error {
	if ix.unconfirmed.Load() == 0 {
		return nil
	}
	ix.mu.RLock()
	st := ix.streams[name]
	ix.mu.RUnlock()
	if st == nil {
		return nil
	}
	return ix.confirmName(st)
}

// short is the error of a walk whose frames ended before hi.
func (w *walker) short(parts []walkPart) error {
	last := parts[len(parts)-1]
	return w.ix.readError(last.seg, last.end, fmt.Errorf("%w: the frames end at position %d; the index has %d", record.ErrMalformed, w.next, w.hi))
}

// pipelineEvents is the shortest walk that verifies ahead: two more
// goroutines copy, checksum and unmask the next chunks of frames, taking
// every other chunk each, while the caller's goroutine decodes them, looks
// up their stream names and delivers them. On a machine with more than
// one core that keeps them all busy; one verifying goroutine alone took
// about as long as a whole replay.
var pipelineEvents uint64 = 1 << 14

// pipelinedWalks counts the walks that have verified ahead, so that tests
// can tell that theirs did.
var pipelinedWalks atomic.Int64

// verifiers is how many goroutines verify a pipelined walk's chunks.
const verifiers = 2

// pipelineBuffers is how many chunks a pipelined walk holds: one being
// delivered, and one with each verifier, being verified or, verified,
// waiting for the loop to take it.
const pipelineBuffers = verifiers + 1

// verifiedChunk is whole frames of a segment, from offset off, checked and
// unmasked; err, when set, is why the frame at errOff, after them, is not.
type verifiedChunk struct {
	seg    *segment
	off    int64
	buf    []byte
	err    error
	errOff int64
}

// chunkParts cuts parts into chunks of at most readChunk bytes (or one
// frame, when a frame is larger), at offsets where the index has a frame
// start, so that verifiers can each take a chunk without reading the one
// before it. It reads the parts' frames, not their segments'.
func chunkParts(parts []walkPart) []walkPart {
	var jobs []walkPart
	for _, p := range parts {
		frames := p.frames
		after := func(off int64) int { // the first frame starting after off
			return sort.Search(len(frames), func(k int) bool { return int64(frames[k].off) > off })
		}
		for start := p.off; start < p.end; {
			end := p.end
			if end-start > readChunk {
				// The last frame start within readChunk of start; if there
				// is none, the frame at start is larger than a chunk, and a
				// chunk alone.
				i, j := after(start), after(start+readChunk)
				switch {
				case j > i:
					end = int64(frames[j-1].off)
				case i < len(frames):
					end = int64(frames[i].off)
				}
				end = min(end, p.end)
			}
			jobs = append(jobs, walkPart{seg: p.seg, off: start, end: end})
			start = end
		}
	}
	return jobs
}

// pipelined is walk with verifier goroutines ahead of it, chunk k verified
// by verifier k%verifiers and delivered in order. They end before
// pipelined returns, whatever stops the walk.
func (w *walker) pipelined(parts, jobs []walkPart) error {
	free := make(chan verifiedChunk, pipelineBuffers)
	for range pipelineBuffers {
		free <- verifiedChunk{buf: getChunkBuffer()}
	}
	var outs [verifiers]chan verifiedChunk
	quit := make(chan struct{})
	var done sync.WaitGroup
	w.ix.mu.RLock()
	if w.ix.closed {
		w.ix.mu.RUnlock()
		return ErrClosed
	}
	w.ix.helpers.Add(verifiers)
	w.ix.mu.RUnlock()
	for v := range verifiers {
		outs[v] = make(chan verifiedChunk)
		done.Add(1)
		go func() {
			defer w.ix.helpers.Done()
			defer done.Done()
			w.ix.verifyAhead(jobs, v, free, outs[v], quit)
		}()
	}
	var held []byte // the chunk being delivered
	defer func() {
		close(quit)
		done.Wait()
		close(free)
		for c := range free {
			putChunkBuffer(c.buf)
		}
		putChunkBuffer(held)
	}()

	names := nameCache{conv: w.ix.newConverter(subscriptionCache), seed: maphash.MakeSeed()}
	w.found = new([foundSets][2]foundSlot)
	for k := range jobs {
		c, ok := <-outs[k%verifiers]
		if !ok {
			break // the store is closing
		}
		held = c.buf
		if done, err := w.deliver(c, &names); done || err != nil {
			return err
		}
		if c.err != nil {
			return w.ix.readError(c.seg, c.errOff, c.err)
		}
		held = nil
		free <- c // delivered: no event aliases it any more
	}
	return w.short(parts)
}

// deliver decodes the frames of c, a chunk verified ahead, and takes each
// (see frame); done is set once the walk has reached hi.
func (w *walker) deliver(c verifiedChunk, names *nameCache) (done bool, err error) {
	lay := c.seg.layout()
	for used := 0; used < len(c.buf); {
		off := c.off + int64(used)
		h := lay.HeaderOf(c.buf[used:]) // verified ahead
		end := used + int(h.FrameSize())
		if err := w.f.DecodeVerified(h, c.buf[used+h.Size():end]); err != nil {
			return true, w.ix.readError(c.seg, off, err)
		}
		var stream string // the walker looks up a number
		if !w.f.Numbered {
			stream = names.lookup(w.f.Stream)
		}
		if done, err := w.frame(c.seg, off, stream); done || err != nil {
			return true, err
		}
		used = end
	}
	return false, nil
}

// chunkBuffers holds pipelined walks' buffers between walks.
var chunkBuffers = sync.Pool{New: func() any { return new([readChunk]byte) }}

func getChunkBuffer() []byte { return chunkBuffers.Get().(*[readChunk]byte)[:] }

// putChunkBuffer pools b if it is one getChunkBuffer gave, not grown.
func putChunkBuffer(b []byte) {
	if cap(b) == readChunk {
		chunkBuffers.Put((*[readChunk]byte)(b[:readChunk]))
	}
}

// verifyAhead reads the chunks jobs[first], jobs[first+verifiers], ...,
// checks and unmasks each frame, and sends the chunks on out in order,
// taking buffers from free. It stops at the first bad frame, after sending
// the chunk that says so, when quit closes, or when the store closes (the
// caller then finds the store closed); it closes out when it stops.
func (ix *readIndex) verifyAhead(jobs []walkPart, first int, free chan verifiedChunk, out chan<- verifiedChunk, quit <-chan struct{}) {
	defer close(out)
	for k := first; k < len(jobs); k += verifiers {
		p := jobs[k]
		var c verifiedChunk
		select {
		case c = <-free:
		case <-quit:
			return
		case <-ix.notify.quit: // the store is closing: end now, whatever the loop body is doing
			return
		}
		if cap(c.buf) > maxPooledBuffer { // grown for a large frame
			c.buf = getChunkBuffer()
		}
		// Have the system read this verifier's first chunk, and its next
		// while this one is checked, into the page cache.
		if k == first {
			p.seg.willNeed(p.off, min(p.end, p.off+readChunk))
		}
		if k+verifiers < len(jobs) {
			next := jobs[k+verifiers]
			next.seg.willNeed(next.off, min(next.end, next.off+readChunk))
		}
		select { // do not start a chunk, which may be one large frame, for nothing
		case <-quit:
			free <- c
			return
		default:
		}
		buf := c.buf[:cap(c.buf)]
		used, err := verifyChunk(p, &buf) // grows buf for a frame larger than it
		if err == nil && p.off+int64(used) < p.end {
			// A chunk larger than a buffer is one frame, which verifyChunk
			// reads whole; short of that the index and the file disagree.
			err = fmt.Errorf("%w: the frame here runs past offset %d, where the index has the next frame start", record.ErrMalformed, p.end)
		}
		c.seg, c.off, c.buf, c.err = p.seg, p.off, buf[:used], err
		if err != nil {
			c.errOff = p.off + int64(used)
		}
		select {
		case out <- c:
		case <-quit:
			free <- c // for the caller to put back
			return
		case <-ix.notify.quit:
			free <- c
			return
		}
		if c.err != nil {
			return
		}
	}
}

// nameCache finds stream names for a pipelined walk: a table of two-way
// sets in front of a converter, since the walk meets every frame's name
// and a set costs a hash and a compare or two where a map costs more. With
// two ways, names whose hashes meet in a set do not evict each other, as
// they would in a table of single slots, where a fifth of a thousand
// streams, read in turn, would miss.
type nameCache struct {
	conv *converter
	seed maphash.Seed
	sets *[nameSets][2]string // most recently filled way first
}

const nameSets = 2048 // 64 KiB of string headers, for walks long enough to verify ahead

func (c *nameCache) lookup(b []byte) string {
	if c.sets == nil {
		c.sets = new([nameSets][2]string)
	}
	set := &c.sets[maphash.Bytes(c.seed, b)%nameSets]
	if set[0] == string(b) && set[0] != "" {
		return set[0]
	}
	if set[1] == string(b) && set[1] != "" {
		return set[1]
	}
	set[1], set[0] = set[0], c.conv.streamName(b)
	return set[0]
}

// verifyChunk reads into *buf as many whole frames of p, from its start, as fit
// (growing it for a frame larger than it), checks and unmasks each, and
// returns how many bytes they take; err is why the frame after them is bad.
// It reads the chunk in steps of copyStep bytes, checking each step's frames
// while they are still in the core's cache.
func verifyChunk(p walkPart, buf *[]byte) (used int, err error) {
	off := p.off
	b := (*buf)[:min(int64(cap(*buf)), p.end-off)]
	have := 0 // b[:have] is read
	var rerr error
	// fill reads b on up to at least want bytes, at most len(b), unless a
	// read has come up short. A short read (the file cut shorter than the
	// index says) still delivers the whole frames it got; the first frame
	// it cut is the error, as for a walk that does not verify ahead.
	fill := func(want int) {
		want = min(want, len(b))
		for have < want && rerr == nil {
			n := min(len(b), max(want, have+copyStep)) - have
			var m int
			m, rerr = p.seg.file.ReadAt(b[have:have+n], off+int64(have))
			have += m
		}
	}
	shortErr := func() error {
		if rerr == nil || rerr == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return rerr
	}
	lay := p.seg.layout()
	hsize := lay.HeaderSize()
	for off+int64(used) < p.end {
		at := off + int64(used)
		if have-used < hsize {
			fill(used + hsize)
		}
		rest := b[used:have]
		if len(rest) < hsize {
			if at+int64(hsize) > p.end {
				return used, io.ErrUnexpectedEOF
			}
			if rerr != nil {
				return used, shortErr()
			}
			return used, nil // the next chunk starts here
		}
		h, err := lay.DecodeHeader(rest)
		if err != nil {
			return used, err
		}
		size := h.FrameSize()
		if at+size > p.end {
			return used, io.ErrUnexpectedEOF
		}
		if int64(len(rest)) < size {
			fill(used + int(min(size, int64(len(b)-used))))
			rest = b[used:have]
		}
		if int64(len(rest)) < size {
			if rerr != nil {
				return used, shortErr()
			}
			if used > 0 {
				return used, nil
			}
			// One frame larger than the buffer: read it whole.
			b = slices.Grow(b[:0], int(size))[:size]
			*buf = b
			have = 0
			if fill(len(b)); have < len(b) {
				return 0, shortErr()
			}
			rest = b
		}
		if err := record.VerifyPayload(h, rest[hsize:size]); err != nil {
			return used, err
		}
		used += int(size)
	}
	return used, nil
}

// copyStep is how much of a chunk verifyChunk copies at a time: little
// enough that the frames it checks next are still in the core's cache.
const copyStep = 32 << 10

// readStream returns up to limit events (limit <= 0: all) of a stream from
// version from upward, or downward when backward is set.
func (ix *readIndex) readStream(ctx context.Context, stream string, from uint64, limit int, backward bool) ([]RecordedEvent, error) {
	var out []RecordedEvent
	var want uint64            // events the read returns, once the stream's count is known
	conv := ix.newConverter(0) // bounded by the result
	err := ix.scanStream(ctx, stream,
		func(count uint64) (uint64, uint64) {
			lo, hi := span(from, limit, backward, count)
			want = hi - lo
			return lo, hi
		},
		func(f *record.Frame, i int, stream string) error {
			if out == nil {
				out = make([]RecordedEvent, 0, want)
			}
			out = append(out, conv.event(f, i, stream))
			return nil
		})
	if err != nil {
		return nil, err
	}
	if backward {
		slices.Reverse(out)
	}
	return out, nil
}

// streamIDs appends to dst the IDs of the stream's events with versions in
// [lo, hi), reading each frame once and copying no data.
func (ix *readIndex) streamIDs(stream string, lo, hi uint64, dst []EventID) ([]EventID, error) {
	err := ix.scanStream(context.Background(), stream,
		func(count uint64) (uint64, uint64) { return min(lo, count), min(hi, count) },
		func(f *record.Frame, i int, _ string) error {
			dst = append(dst, EventID(f.ID(i)))
			return nil
		})
	return dst, err
}

// scanStream calls fn, in version order, for every event of stream whose
// version is in the range bounds returns for the stream's event count. The
// frame passed to fn aliases a shared buffer, valid only during the call.
// scanStream stops at fn's first error and returns it.
func (ix *readIndex) scanStream(ctx context.Context, stream string, bounds func(count uint64) (lo, hi uint64), fn func(f *record.Frame, i int, stream string) error) error {
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return ErrClosed
	}
	st := ix.streams[stream]
	if st == nil {
		ix.mu.RUnlock()
		return nil
	}
	positions := st.positions // elements below len never change
	name, start := st.name, positions[0]
	lo, hi := bounds(uint64(len(positions)))
	if lo >= hi {
		ix.mu.RUnlock()
		return nil
	}
	if !st.named.Load() && lo > 0 {
		// The frames read may name the stream by number only: the name
		// the index has must be confirmed first. A read from version 0
		// checks it against the first frame.
		ix.mu.RUnlock()
		if err := ix.confirmName(st); err != nil {
			return err
		}
		ix.mu.RLock()
		if ix.closed {
			ix.mu.RUnlock()
			return ErrClosed
		}
	}
	locs := make([]frameLoc, 0, hi-lo) // at most a frame an event
	for _, p := range positions[lo:hi] {
		loc := ix.locateLocked(p)
		if n := len(locs); n == 0 || locs[n-1] != loc {
			locs = append(locs, loc)
		}
	}
	ix.mu.RUnlock()

	r := getReader() // only its buffer is used
	defer putReader(r)
	buf := r.buf
	defer func() { r.buf = buf }()
	// f is decoded in place, frame after frame: fn's pointer to it escapes,
	// and one Frame for the read costs one allocation, not one a frame.
	var f record.Frame
	want := lo // the next version to yield
	// deliver decodes a frame fetchGroups has verified, checks it against
	// the index and passes fn the events wanted.
	deliver := func(loc frameLoc, fb []byte) error {
		h := loc.seg.layout().HeaderOf(fb)
		if err := f.DecodeVerified(h, fb[h.Size():]); err != nil {
			return ix.readError(loc.seg, loc.off, err)
		}
		f.Key = loc.seg.key
		// The index sent the read here: the frame must agree with it.
		if f.Numbered && f.StreamStart != start {
			return ix.readError(loc.seg, loc.off, fmt.Errorf("%w: frame of the stream starting at position %d where the index has %q, starting at %d", record.ErrMalformed, f.StreamStart, stream, start))
		}
		if !f.Numbered && string(f.Stream) != stream {
			return ix.readError(loc.seg, loc.off, fmt.Errorf("%w: frame of stream %q where the index has %q", record.ErrMalformed, f.Stream, stream))
		}
		// Each frame must hold the next version wanted, at the position the
		// index has for it.
		if f.FirstVersion > want || f.FirstVersion+uint64(len(f.Events)) <= want || positions[want] != f.Position+(want-f.FirstVersion) {
			return ix.readError(loc.seg, loc.off, fmt.Errorf("%w: frame holds versions %d to %d at position %d; the index has version %d at position %d",
				record.ErrMalformed, f.FirstVersion, f.FirstVersion+uint64(len(f.Events))-1, f.Position, want, positions[want]))
		}
		if f.FirstVersion == 0 && !st.named.Load() {
			st.confirmed(ix) // the frame names the stream, where the index starts it
		}
		for k := range f.Events {
			if v := f.FirstVersion + uint64(k); v >= lo && v < hi {
				if err := fn(&f, k, name); err != nil {
					return err
				}
				want = v + 1
			}
		}
		return nil
	}
	var groups []readGroup
	// Frames near each other in a file are fetched with one read, and the
	// reads of a window of them are made before its frames are decoded.
	for i := 0; i < len(locs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		groups = groups[:0]
		size := int64(0)
		for i < len(locs) && (len(groups) == 0 || size < readChunk) {
			j := i + 1
			for j < len(locs) && locs[j].seg == locs[i].seg && locs[j].off-locs[j-1].end <= coalesceGap && locs[j].end-locs[i].off <= readChunk {
				j++
			}
			n := locs[j-1].end - locs[i].off
			groups = append(groups, readGroup{locs: locs[i:j], at: size, n: n})
			size += n
			i = j
		}
		buf = slices.Grow(buf[:0], int(size))[:size]
		fetchGroups(ctx, groups, buf)
		for _, g := range groups {
			if err := ctx.Err(); err != nil {
				return err // before the group, as fetchGroups stops reading
			}
			base := g.at - g.locs[0].off // a file offset plus base is its place in buf
			for _, loc := range g.locs {
				if g.err != nil && loc.off == g.errOff {
					return ix.readError(loc.seg, loc.off, g.err)
				}
				if err := deliver(loc, buf[base+loc.off:base+loc.end]); err != nil {
					return err
				}
			}
		}
	}
	if want != hi {
		last := locs[len(locs)-1]
		return ix.readError(last.seg, last.off, fmt.Errorf("%w: the frames end at version %d; the index has %d", record.ErrMalformed, want, hi))
	}
	return nil
}

// readers holds frameReaders between reads, so that their buffers, up to
// maxPooledBuffer, are reused rather than allocated per call.
var readers = sync.Pool{New: func() any { return new(frameReader) }}

const maxPooledBuffer = 4 << 20

func getReader() *frameReader { return readers.Get().(*frameReader) }

func putReader(r *frameReader) {
	r.file = nil
	if cap(r.buf) > maxPooledBuffer {
		r.buf = nil
	}
	readers.Put(r)
}

// readGroup is frames of a stream read that one pread fetches: locs, read
// into a window's buffer at at, n bytes. err is why the frame at errOff,
// and those after it, cannot be delivered; the frames before it have been
// read and verified.
type readGroup struct {
	locs   []frameLoc
	at, n  int64
	err    error
	errOff int64
}

// parallelReadFrom is the fewest reads in a window that fetchGroups shares
// with a second goroutine. A stream's frames lie far apart, one pread each,
// and on such a read the system call is most of the cost; below a few
// hundred of them, waking a second goroutine costs more than it saves.
var parallelReadFrom = 256

// fetchGroups reads each group into its place in buf, checksums and
// unmasks its frames, and records in the group why the first one that
// cannot be delivered cannot. With GOMAXPROCS above one, a window of
// parallelReadFrom reads or more is shared with a second goroutine, which
// ends before fetchGroups returns. Once ctx ends, neither reads another
// group, and the caller must check ctx before each group it decodes.
func fetchGroups(ctx context.Context, groups []readGroup, buf []byte) {
	fetch := func(gs []readGroup) {
		for k := range gs {
			if ctx.Err() != nil {
				return // the caller returns ctx.Err() before this group
			}
			gs[k].fetch(buf)
		}
	}
	if len(groups) < parallelReadFrom || runtime.GOMAXPROCS(0) < 2 {
		fetch(groups)
		return
	}
	half := len(groups) / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch(groups[half:])
	}()
	fetch(groups[:half])
	<-done
}

// fetch reads g into its place in buf and verifies its frames, each of
// which must fill the place the index has for it.
func (g *readGroup) fetch(buf []byte) {
	b := buf[g.at : g.at+g.n]
	base := g.locs[0].off
	if _, err := g.locs[0].seg.file.ReadAt(b, base); err != nil {
		g.err, g.errOff = err, base
		return
	}
	for _, loc := range g.locs {
		fb := b[loc.off-base : loc.end-base]
		h, err := loc.seg.layout().DecodeHeader(fb)
		if err == nil && h.FrameSize() != int64(len(fb)) {
			err = fmt.Errorf("%w: frame of %d bytes in a slot of %d", record.ErrMalformed, h.FrameSize(), len(fb))
		}
		if err == nil {
			err = record.VerifyPayload(h, fb[h.Size():])
		}
		if err != nil {
			g.err, g.errOff = err, loc.off
			return
		}
	}
}

// coalesceGap is the widest gap between two frames of a stream read that is
// still read through rather than skipped with a second system call.
const coalesceGap = 4 << 10

// span turns a read's from, limit and direction into the half-open range
// [lo, hi) of positions or versions to return, within [0, end).
func span(from uint64, limit int, backward bool, end uint64) (lo, hi uint64) {
	if !backward {
		if from >= end {
			return 0, 0
		}
		lo, hi = from, end
		if limit > 0 && uint64(limit) < hi-lo {
			hi = lo + uint64(limit)
		}
		return lo, hi
	}
	if end == 0 {
		return 0, 0
	}
	hi = min(from, end-1) + 1
	if limit > 0 && uint64(limit) < hi {
		lo = hi - uint64(limit)
	}
	return lo, hi
}

// readError turns a failure to read committed bytes into the error a reader
// returns: ErrClosed once the store is closing; a *CorruptionError when the
// bytes fail their checksums or are missing (they were whole when written or
// recovered, so something has changed them since); else the I/O error.
func (ix *readIndex) readError(seg *segment, off int64, err error) error {
	ix.mu.RLock()
	closed := ix.closed
	ix.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case errors.Is(err, record.ErrShort), errors.Is(err, record.ErrHeaderChecksum),
		errors.Is(err, record.ErrPayloadChecksum), errors.Is(err, record.ErrMalformed),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &CorruptionError{Path: seg.path, Offset: off, Reason: err.Error()}
	}
	return fmt.Errorf("eventstore: read %s at offset %d: %w", seg.path, off, err)
}

// converter copies decoded events out of shared buffers into RecordedEvents
// that own their bytes. Stream names come from the index, shared rather than
// copied; types are copied once per converter. A converter lives for one
// read or one subscription; for a subscription, which may meet any number
// of streams and types, its caches are bounded.
type converter struct {
	ix      *readIndex
	streams map[string]string // names seen, as the index holds them
	types   map[string]string // types seen, copied
	limit   int               // entries a map may hold before it starts again; 0: no bound
	borrow  bool              // events alias the decoded frame rather than copy its bytes
	// lastType is the type returned last: most runs of events share one.
	lastType string
	// lastTime is the time of the timestamp lastStamp, converted last: the
	// frames of a batch share one.
	lastStamp int64
	lastTime  time.Time
}

// subscriptionCache bounds each of a subscription's two caches.
const subscriptionCache = 1024

func (ix *readIndex) newConverter(limit int) *converter {
	return &converter{ix: ix, streams: make(map[string]string), types: make(map[string]string), limit: limit}
}

// remember adds s to m, first emptying m if it is full.
func (c *converter) remember(m map[string]string, s string) string {
	if c.limit > 0 && len(m) >= c.limit {
		clear(m)
	}
	m[s] = s
	return s
}

// streamName returns the index's own string for a stream name, so that
// reading an event allocates no name.
func (c *converter) streamName(b []byte) string {
	if s, ok := c.streams[string(b)]; ok {
		return s
	}
	c.ix.mu.RLock()
	st := c.ix.streams[string(b)]
	c.ix.mu.RUnlock()
	if st == nil { // not possible for a published event; copy all the same
		return c.remember(c.streams, string(b))
	}
	return c.remember(c.streams, st.name)
}

// typeName returns a shared copy of an event type.
func (c *converter) typeName(b []byte) string {
	if c.lastType == string(b) {
		return c.lastType
	}
	s, ok := c.types[string(b)]
	if !ok {
		s = c.remember(c.types, string(b))
	}
	c.lastType = s
	return s
}

// event returns the frame's event i as a RecordedEvent. stream is the
// frame's stream name as the index holds it, if the caller has looked it up
// already, else "": it must have for a frame that names its stream by
// number.
func (c *converter) event(f *record.Frame, i int, stream string) RecordedEvent {
	var ev RecordedEvent
	c.fill(&ev, f, i, stream)
	return ev
}

// fill sets *ev to the frame's event i, as event returns it, writing every
// field, so that a subscription fills the event it yields in place rather
// than copying it out of a call.
func (c *converter) fill(ev *RecordedEvent, f *record.Frame, i int, stream string) {
	if stream == "" {
		stream = c.streamName(f.Stream)
	}
	e := &f.Events[i]
	f.PutID(i, (*[record.IDSize]byte)(&ev.ID))
	ev.Stream = stream
	ev.StreamVersion = f.FirstVersion + uint64(i)
	ev.Position = f.Position + uint64(i)
	ev.Type = c.typeName(e.Type)
	if f.Timestamp != c.lastStamp || c.lastTime.IsZero() {
		c.lastStamp, c.lastTime = f.Timestamp, time.Unix(0, f.Timestamp).UTC()
	}
	ev.Timestamp = c.lastTime
	if c.borrow {
		ev.Data, ev.Metadata = e.Data, e.Metadata // capped by the decoder
		return
	}
	ev.Data, ev.Metadata = nil, nil
	// One allocation holds both byte slices; each is capped so appending to
	// one never writes into the other.
	if n := len(e.Data) + len(e.Metadata); n > 0 {
		buf := make([]byte, n)
		copy(buf, e.Data)
		copy(buf[len(e.Data):], e.Metadata)
		if len(e.Data) > 0 {
			ev.Data = buf[:len(e.Data):len(e.Data)]
		}
		if len(e.Metadata) > 0 {
			ev.Metadata = buf[len(e.Data):]
		}
	}
}

// notifier wakes subscriptions waiting at the head: when the writer
// publishes events, when the store fails, and when it closes. A waiter takes
// a channel first and looks at the head second, and the writer changes the
// head first and closes the channels second, so no wake-up falls between
// the two. The writer never blocks on a subscriber: waking one is closing a
// channel.
type notifier struct {
	mu      sync.Mutex             // guards the fields below
	all     chan struct{}          // closed at the next publish; nil while no one waits
	streams map[string]*streamWait // per stream with waiters, closed when it next gets events
	failed  error                  // the writer's storage error, once it has failed
	stopped bool                   // failed or closed: every wait returns at once

	quit chan struct{} // closed by close; set once, read without the lock
	// closing is set just before quit closes, for loops that check it at
	// every event: a load costs less than a select.
	closing atomic.Bool
}

// streamWait is the channel the waiters for one stream share, and how many
// of them there are, so that the last to leave removes it: waiting for a
// stream that never gets an event costs nothing once the wait is over.
type streamWait struct {
	ch      chan struct{}
	waiters int
}

func newNotifier() *notifier {
	return &notifier{streams: make(map[string]*streamWait), quit: make(chan struct{})}
}

// closedChan is returned to waiters once nothing more will be published.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// wait returns a channel closed when events are next published: any event,
// or, if stream is not empty, one of that stream's. The waiter calls done
// when it stops waiting.
func (n *notifier) wait(stream string) (wake <-chan struct{}, done func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return closedChan, func() {}
	}
	if stream == "" {
		if n.all == nil {
			n.all = make(chan struct{})
		}
		return n.all, func() {}
	}
	w := n.streams[stream]
	if w == nil {
		w = &streamWait{ch: make(chan struct{})}
		n.streams[stream] = w
	}
	w.waiters++
	return w.ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if w.waiters--; w.waiters == 0 && n.streams[stream] == w {
			delete(n.streams, stream)
		}
	}
}

// published wakes the waiters for any event, and those for the given
// streams. The writer calls it after publishing the streams' events.
func (n *notifier) published(streams iter.Seq[string]) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.all != nil {
		close(n.all)
		n.all = nil
	}
	if len(n.streams) == 0 {
		return
	}
	for name := range streams {
		if w, ok := n.streams[name]; ok {
			close(w.ch)
			delete(n.streams, name)
		}
	}
}

// stop wakes every waiter for good: err is the writer's storage error, or
// nil when the store is closing.
func (n *notifier) stop(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil && n.failed == nil {
		n.failed = err
	}
	if err == nil {
		select {
		case <-n.quit:
		default:
			n.closing.Store(true)
			close(n.quit)
		}
	}
	if n.stopped {
		return
	}
	n.stopped = true
	if n.all != nil {
		close(n.all)
		n.all = nil
	}
	for name, w := range n.streams {
		close(w.ch)
		delete(n.streams, name)
	}
}

// failure returns the writer's storage error, or nil.
func (n *notifier) failure() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.failed
}

// seqKind says which of the four sequences a subscription is.
type seqKind int

const (
	subscribeAll    seqKind = iota // Subscribe
	subscribeStream                // SubscribeStream
	walkAll                        // All
	walkStream                     // Stream
)

func (k seqKind) live() bool   { return k == subscribeAll || k == subscribeStream }
func (k seqKind) stream() bool { return k == subscribeStream || k == walkStream }

// streamPage is how many versions of a stream a subscription locates per
// lookup under the read lock, bounding what it holds between reads.
const streamPage = 1024

// errStopped ends a sequence whose loop has broken: nothing more is yielded.
var errStopped = errors.New("eventstore: loop stopped")

// subscription is the state of one loop over Subscribe, SubscribeStream,
// All or Stream. It lives on the loop's goroutine and is not shared: the
// options' callbacks run there too, between events.
type subscription struct {
	ix       *readIndex
	ctx      context.Context
	ctxNever bool // as walker's
	kind     seqKind
	stream   string
	cfg      subscribeConfig
	prefix   []byte // cfg.prefix's bytes
	yield    func(RecordedEvent, error) bool
	conv     *converter
	next     uint64 // position (for a stream, version) to deliver next
	passed   uint64 // events passed over since the last checkpoint
	live     bool   // caught up and not fallen behind since
	// every is set if the subscription delivers every event: it has no
	// prefix, type or checkpoint to apply, so frame delivers a frame of
	// one event without looking for them.
	every bool
}

// sequence returns the iterator behind Subscribe, SubscribeStream, All and
// Stream. Each loop over it runs a subscription of its own.
func (ix *readIndex) sequence(ctx context.Context, kind seqKind, stream string, from uint64, opts []SubscribeOption) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		sub := &subscription{ix: ix, ctx: ctx, ctxNever: ctx.Done() == nil, kind: kind, stream: stream, next: from, yield: yield, conv: ix.newConverter(subscriptionCache)}
		err := sub.configure(opts)
		if err == nil {
			err = sub.run()
		}
		if err != nil && err != errStopped {
			yield(RecordedEvent{}, err)
		}
	}
}

// configure applies the options and refuses those that do not apply.
func (s *subscription) configure(opts []SubscribeOption) error {
	c := &s.cfg
	for _, o := range opts {
		if o == nil {
			c.invalid("nil SubscribeOption")
			continue
		}
		o(c)
	}
	if !s.kind.live() && (c.fromEnd || c.caughtUp != nil || c.fellBehind != nil) {
		c.invalid("FromEnd, OnCaughtUp and OnFellBehind apply to Subscribe and SubscribeStream only")
	}
	if s.kind.stream() && c.prefix != nil {
		c.invalid("StreamPrefix applies to Subscribe and All only")
	}
	if c.err != nil {
		return c.err
	}
	if c.prefix != nil {
		s.prefix = []byte(*c.prefix)
	}
	s.conv.borrow = c.borrow
	s.every = c.prefix == nil && c.types == nil && c.checkpoint == nil
	if s.kind.stream() {
		if err := checkName(s.stream, MaxStreamNameLen); err != nil {
			return fmt.Errorf("%w: %s", ErrInvalidStream, err)
		}
	}
	return nil
}

// head returns the subscription's head: the store's, or its stream's event
// count.
func (s *subscription) head() (uint64, error) {
	if s.kind.stream() {
		return s.ix.streamCount(s.stream)
	}
	return s.ix.head()
}

// run delivers events up to the head; a live subscription then waits for
// more, and delivers them, until it ends.
func (s *subscription) run() error {
	head, err := s.head()
	if err != nil {
		return err
	}
	if s.cfg.fromEnd {
		s.next = head
	}
	if s.next > head {
		unit := "position"
		if s.kind.stream() {
			unit = "version"
		}
		return fmt.Errorf("%w: from %s %d, head %d", ErrBeyondHead, unit, s.next, head)
	}
	for {
		if s.kind.live() {
			s.ix.metrics.Lag(head - s.next)
		}
		if err := s.readTo(head); err != nil {
			return err
		}
		s.checkpoint(true)
		if !s.kind.live() {
			return nil
		}
		if !s.live {
			// Caught up only if the head has not run off meanwhile, so a
			// subscriber that stays slow stays behind rather than flipping.
			now, err := s.head()
			if err != nil {
				return err
			}
			if s.cfg.fellBehind != nil && now-s.next > s.cfg.behindLag {
				head = now
				continue
			}
			s.live = true
			if s.cfg.caughtUp != nil {
				s.cfg.caughtUp(s.next)
			}
		}
		if head, err = s.wait(); err != nil {
			return err
		}
		if s.live && s.cfg.fellBehind != nil && head-s.next > s.cfg.behindLag {
			s.live = false
			s.cfg.fellBehind(s.next, head)
		}
	}
}

// readTo delivers the matching events before head.
func (s *subscription) readTo(head uint64) error {
	if !s.kind.stream() {
		return s.ix.walk(s.ctx, s.next, head, s.frame)
	}
	for s.next < head {
		hi := min(head, s.next+streamPage)
		err := s.ix.scanStream(s.ctx, s.stream,
			func(count uint64) (uint64, uint64) { return min(s.next, count), min(hi, count) },
			s.streamEvent)
		if err != nil {
			return err
		}
	}
	return nil
}

// frame delivers the matching events of a frame of the log. The walk
// calling it has checked s.ctx for this frame.
func (s *subscription) frame(f *record.Frame, stream string) error {
	if s.every && len(f.Events) == 1 && f.Position >= s.next {
		// What the loop below does for such a frame, less what does not
		// apply: the walk has checked ctx, nothing is filtered, and with
		// no checkpoint to call, passed is not counted.
		if s.ix.notify.closing.Load() {
			return ErrClosed
		}
		var ev RecordedEvent
		s.conv.fill(&ev, f, 0, stream)
		if !s.yield(ev, nil) {
			return errStopped
		}
		s.next = f.Position + 1
		return nil
	}
	match := s.cfg.prefix == nil
	if !match && stream != "" { // looked up already; a numbered frame's always is
		match = strings.HasPrefix(stream, *s.cfg.prefix)
	} else if !match {
		match = bytes.HasPrefix(f.Stream, s.prefix)
	}
	for i := range f.Events {
		pos := f.Position + uint64(i)
		if pos < s.next {
			continue
		}
		if err := s.interrupted(); err != nil {
			return err
		}
		if match && s.typeMatches(f.Events[i].Type) {
			var ev RecordedEvent // on the stack: filling it needs no write barrier
			s.conv.fill(&ev, f, i, stream)
			if !s.yield(ev, nil) {
				return errStopped
			}
		}
		s.passed++
		s.next = pos + 1
		s.checkpoint(false)
	}
	return nil
}

// streamEvent delivers one event of the subscription's stream, if it
// matches.
func (s *subscription) streamEvent(f *record.Frame, i int, stream string) error {
	if err := s.interrupted(); err != nil {
		return err
	}
	if s.typeMatches(f.Events[i].Type) {
		var ev RecordedEvent
		s.conv.fill(&ev, f, i, stream)
		if !s.yield(ev, nil) {
			return errStopped
		}
	}
	s.passed++
	s.next = f.FirstVersion + uint64(i) + 1
	s.checkpoint(false)
	return nil
}

func (s *subscription) typeMatches(typ []byte) bool {
	if s.cfg.types == nil {
		return true
	}
	_, ok := s.cfg.types[string(typ)]
	return ok
}

// interrupted returns ErrClosed once the store is closing, and ctx's error
// once it has ended, so that neither waits for a long read to finish.
func (s *subscription) interrupted() error {
	if s.ix.notify.closing.Load() {
		return ErrClosed
	}
	return ctxErr(s.ctx, s.ctxNever)
}

// checkpoint calls the OnCheckpoint function when its interval has passed,
// or, if force is set, when any event has passed since its last call.
func (s *subscription) checkpoint(force bool) {
	if s.cfg.checkpoint == nil || s.passed == 0 || (!force && s.passed < s.cfg.checkpointEvery) {
		return
	}
	s.passed = 0
	s.cfg.checkpoint(s.next)
}

// wait blocks until the head passes s.next and returns it, or until the
// subscription ends: its context ends, the store closes, or the store has
// failed, and so will publish nothing more.
func (s *subscription) wait() (uint64, error) {
	stream := ""
	if s.kind.stream() {
		stream = s.stream
	}
	for {
		head, err := s.waitOnce(stream)
		if err != nil || head > s.next {
			return head, err
		}
	}
}

// waitOnce returns the head if it has passed s.next, or else blocks until
// the next wake-up and returns s.next.
func (s *subscription) waitOnce(stream string) (uint64, error) {
	wake, done := s.ix.notify.wait(stream)
	defer done()
	head, err := s.head()
	if err != nil {
		return 0, err
	}
	if head > s.next {
		return head, nil
	}
	if err := s.ix.notify.failure(); err != nil {
		return 0, err
	}
	select {
	case <-wake:
		return s.next, nil
	case <-s.ix.notify.quit:
		return 0, ErrClosed
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
}

// streamNames returns the names of the streams starting with prefix, sorted.
func (ix *readIndex) streamNames(prefix string) ([]string, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	var names []string
	for name := range ix.streams {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// streamInfo describes a stream as it stands: its counts and positions from
// the index, its first and last commit times from the frames that hold them.
func (ix *readIndex) streamInfo(ctx context.Context, name string) (StreamInfo, error) {
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return StreamInfo{}, ErrClosed
	}
	st := ix.streams[name]
	if st == nil {
		ix.mu.RUnlock()
		return StreamInfo{}, fmt.Errorf("%w: %q", ErrStreamNotFound, name)
	}
	n := uint64(len(st.positions))
	info := StreamInfo{
		Name: st.name, Version: n - 1, Count: n,
		FirstPosition: st.positions[0], LastPosition: st.positions[n-1],
	}
	ix.mu.RUnlock()
	at := func(v uint64, t *time.Time) error {
		return ix.scanStream(ctx, name,
			func(uint64) (uint64, uint64) { return v, v + 1 },
			func(f *record.Frame, _ int, _ string) error {
				*t = time.Unix(0, f.Timestamp).UTC()
				return nil
			})
	}
	if err := at(0, &info.Created); err != nil {
		return StreamInfo{}, err
	}
	if err := at(n-1, &info.Updated); err != nil {
		return StreamInfo{}, err
	}
	return info, nil
}

// snapshot notes the head and, for each segment, the end of its frames
// below it: what a backup copies.
func (ix *readIndex) snapshot() ([]logPart, uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, 0, ErrClosed
	}
	parts := make([]logPart, len(ix.segments))
	for i, seg := range ix.segments {
		parts[i] = logPart{seg: seg, end: seg.end}
	}
	return parts, ix.next, nil
}

package eventstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/go-eventstore/eventstore/internal/record"
)

// frameRef locates one frame inside its segment: the position of its first
// event relative to the segment's base, and its byte offset. Eight bytes a
// frame keeps the index small; segments are capped well under 4 GiB, and
// every event takes at least 20 bytes, so both fit in 32 bits.
type frameRef struct {
	rel uint32
	off uint32
}

// streamIndex holds what the index knows of one stream: the global position
// of each version, and a 32-bit fingerprint of each event's ID, used to find
// candidates for idempotent retries without keeping IDs in memory.
type streamIndex struct {
	name         string
	positions    []uint64 // by version
	fingerprints []uint32 // by version
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
	next     uint64                  // position the next event will get; readers see [0, next)
	closed   bool                    // set by Close; reads return ErrClosed
	heap     int64                   // bytes the index holds, kept up to date by addFrameLocked
}

func newReadIndex() *readIndex {
	return &readIndex{streams: make(map[string]*streamIndex)}
}

// fingerprint condenses an event ID for the idempotency check. UUIDs share
// their leading time bits, so both halves are mixed in.
func fingerprint(id EventID) uint32 {
	x := binary.LittleEndian.Uint64(id[0:8]) ^ binary.LittleEndian.Uint64(id[8:16])
	x *= 0x9e3779b97f4a7c15
	return uint32(x >> 32)
}

// addFrameLocked records a committed frame. The caller holds mu for writing,
// or is Open before anyone else can see the index.
func (ix *readIndex) addFrameLocked(seg *segment, off int64, position, firstVersion uint64, stream string, ids []EventID) error {
	st := ix.streams[stream]
	if st == nil {
		if firstVersion != 0 {
			return fmt.Errorf("stream %q starts at version %d", stream, firstVersion)
		}
		st = &streamIndex{name: stream}
		ix.streams[stream] = st
		ix.heap += perStreamBytes + int64(len(stream))
	} else if firstVersion != uint64(len(st.positions)) {
		return fmt.Errorf("stream %q continues at version %d, want %d", stream, firstVersion, len(st.positions))
	}
	before := sliceBytes(seg, st)
	seg.frames = append(seg.frames, frameRef{rel: uint32(position - seg.base), off: uint32(off)})
	for i, id := range ids {
		st.positions = append(st.positions, position+uint64(i))
		st.fingerprints = append(st.fingerprints, fingerprint(id))
	}
	ix.heap += sliceBytes(seg, st) - before
	ix.next = max(ix.next, position+uint64(len(ids)))
	return nil
}

// streamName returns the index's copy of a stream name when it has one, so
// that recovery does not allocate a string per frame.
func (ix *readIndex) streamName(b []byte) string {
	if st, ok := ix.streams[string(b)]; ok {
		return st.name
	}
	return string(b)
}

// perStreamBytes is what a stream costs the index beyond its name and
// slices: its streamIndex, and its map key and value.
const perStreamBytes = 48 + 16 + 8

// sliceBytes is what the slices one frame grows hold, at their capacity.
func sliceBytes(seg *segment, st *streamIndex) int64 {
	return int64(cap(seg.frames))*int64(unsafe.Sizeof(frameRef{})) +
		int64(cap(st.positions))*8 + int64(cap(st.fingerprints))*4
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
	rel := uint32(p - seg.base)
	fi := sort.Search(len(seg.frames), func(i int) bool { return seg.frames[i].rel > rel }) - 1
	loc := frameLoc{seg: seg, off: int64(seg.frames[fi].off), end: seg.end}
	if fi+1 < len(seg.frames) {
		loc.end = int64(seg.frames[fi+1].off)
	}
	return loc
}

// readAll returns up to limit events (limit <= 0: all) from position from
// upward, or downward when backward is set.
func (ix *readIndex) readAll(ctx context.Context, from uint64, limit int, backward bool) ([]RecordedEvent, error) {
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return nil, ErrClosed
	}
	next := ix.next
	lo, hi := span(from, limit, backward, next)
	if lo >= hi {
		ix.mu.RUnlock()
		return nil, nil
	}
	start := ix.locateLocked(lo)
	type part struct {
		seg      *segment
		off, end int64
	}
	var parts []part
	for _, seg := range ix.segments {
		if seg.base >= hi || seg.base < start.seg.base {
			continue
		}
		p := part{seg: seg, off: record.SegmentHeaderSize, end: seg.end}
		if seg == start.seg {
			p.off = start.off
		}
		parts = append(parts, p)
	}
	ix.mu.RUnlock()

	out := make([]RecordedEvent, 0, min(hi-lo, 1<<16))
	conv := newConverter()
	r := getReader()
	defer putReader(r)
	var events []record.Event
	for _, p := range parts {
		r.reset(p.seg.file, p.end)
		for off := p.off; off < p.end; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			f, err := r.frame(off, events)
			if err != nil {
				return nil, ix.readError(p.seg, off, err)
			}
			events = f.Events
			for i := range f.Events {
				pos := f.Position + uint64(i)
				if pos >= lo && pos < hi {
					out = append(out, conv.event(&f, i))
				}
			}
			if f.Position+uint64(len(f.Events)) >= hi {
				break
			}
			off += f.FrameSize()
		}
	}
	if backward {
		slices.Reverse(out)
	}
	return out, nil
}

// readStream returns up to limit events (limit <= 0: all) of a stream from
// version from upward, or downward when backward is set.
func (ix *readIndex) readStream(ctx context.Context, stream string, from uint64, limit int, backward bool) ([]RecordedEvent, error) {
	var out []RecordedEvent
	conv := newConverter()
	err := ix.scanStream(ctx, stream,
		func(count uint64) (uint64, uint64) { return span(from, limit, backward, count) },
		func(f *record.Frame, i int) { out = append(out, conv.event(f, i)) })
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
		func(f *record.Frame, i int) { dst = append(dst, EventID(f.Events[i].ID)) })
	return dst, err
}

// scanStream calls fn, in version order, for every event of stream whose
// version is in the range bounds returns for the stream's event count. The
// frame passed to fn aliases a shared buffer, valid only during the call.
func (ix *readIndex) scanStream(ctx context.Context, stream string, bounds func(count uint64) (lo, hi uint64), fn func(f *record.Frame, i int)) error {
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
	lo, hi := bounds(uint64(len(positions)))
	if lo >= hi {
		ix.mu.RUnlock()
		return nil
	}
	var locs []frameLoc
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
	var events []record.Event
	// Frames near each other in a file are fetched with one read.
	for i := 0; i < len(locs); {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := i + 1
		for j < len(locs) && locs[j].seg == locs[i].seg && locs[j].off-locs[j-1].end <= coalesceGap && locs[j].end-locs[i].off <= readChunk {
			j++
		}
		base := locs[i].off
		n := locs[j-1].end - base
		buf = slices.Grow(buf[:0], int(n))[:n]
		if _, err := locs[i].seg.file.ReadAt(buf, base); err != nil {
			return ix.readError(locs[i].seg, base, err)
		}
		for _, loc := range locs[i:j] {
			f, err := decodeFrameAt(buf[loc.off-base:loc.end-base], events)
			if err != nil {
				return ix.readError(loc.seg, loc.off, err)
			}
			events = f.Events
			for k := range f.Events {
				if v := f.FirstVersion + uint64(k); v >= lo && v < hi {
					fn(&f, k)
				}
			}
		}
		i = j
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

// decodeFrameAt decodes a frame that fills b exactly.
func decodeFrameAt(b []byte, events []record.Event) (record.Frame, error) {
	h, err := record.DecodeHeader(b)
	if err != nil {
		return record.Frame{}, err
	}
	if h.FrameSize() != int64(len(b)) {
		return record.Frame{}, fmt.Errorf("%w: frame of %d bytes in a slot of %d", record.ErrMalformed, h.FrameSize(), len(b))
	}
	return record.DecodePayload(h, b[record.HeaderSize:], events)
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
// that own their bytes, sharing the strings of repeated stream names and
// types within one read.
type converter struct {
	streams map[string]string
	types   map[string]string
}

func newConverter() *converter {
	return &converter{streams: make(map[string]string), types: make(map[string]string)}
}

func intern(m map[string]string, b []byte) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

func (c *converter) event(f *record.Frame, i int) RecordedEvent {
	e := &f.Events[i]
	ev := RecordedEvent{
		ID:            EventID(e.ID),
		Stream:        intern(c.streams, f.Stream),
		StreamVersion: f.FirstVersion + uint64(i),
		Position:      f.Position + uint64(i),
		Type:          intern(c.types, e.Type),
		Timestamp:     time.Unix(0, f.Timestamp).UTC(),
	}
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
	return ev
}

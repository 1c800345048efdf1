package record

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// IndexHeaderSize is the size of the fixed header of a segment index file.
const IndexHeaderSize = 40

// IndexVersion is the index file format's version, the one
// AppendSegmentIndex writes when asked for none. DecodeSegmentIndex reads
// it and every version back to OldestIndexVersion, and AppendSegmentIndex
// writes any of them. It is not the segment format's Version: an index
// file lists frames, streams and fingerprints of IDs alike for segments of
// any version.
//
// Version 4 lists each stream's first version in the segment once, with
// its name, where version 3 listed every frame's, and leaves out the
// fingerprints of a frame whose events all have fingerprint zero (see
// SegmentIndex.Fingerprints).
//
// Version 5 lists each frame in fewer bytes: its stream's index and two
// flags in one varint, name<<2 | one<<1 | unlisted, where unlisted is
// version 4's bit 0 (no fingerprints listed) and one says the frame holds
// a single event, whose count is then left out; a count that follows is at
// least 2. Its offset is listed not as the delta from the previous frame's
// offset but as how much that delta differs from the previous frame's
// delta, zigzag-encoded: one byte, where version 4 took two, for a frame
// within 63 bytes of the size of the one before.
const IndexVersion = 5

// OldestIndexVersion is the oldest index file version DecodeSegmentIndex
// reads.
const OldestIndexVersion = 3

// minIndexEntry returns the fewest bytes a frame's entry takes in an index
// file of the given version: one a field.
func minIndexEntry(version uint8) uint64 {
	if version >= 5 {
		return 2 // name and flags, offset
	}
	return 3 // count, offset and name, as the decoder has always checked
}

// zigzag maps a signed d to an unsigned value that is small when d is near
// zero: 0, -1, 1, -2, 2, ... to 0, 1, 2, 3, 4, ...
func zigzag(d int64) uint64 { return uint64(d<<1) ^ uint64(d>>63) }

// unzigzag inverts zigzag.
func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// MaxIndexSize is the largest index file a segment of segSize bytes can
// have: twice the segment, and the file's header and checksum. Each frame
// an index lists takes more bytes in the segment than its entry and its
// stream's name (once) take in the file, and at least half as many as
// its events' fingerprints: they are listed only for a frame holding an ID
// of 16 bytes, and every other event takes at least 2 bytes (a compact
// frame's last; the others 3) where its fingerprint takes 4.
func MaxIndexSize(segSize int64) int64 { return 2*max(segSize, 0) + IndexHeaderSize + 4 }

// listed4 reports whether version 4 and later list a frame's
// fingerprints: some are not zero.
func listed4(prints []uint32) bool {
	return slices.ContainsFunc(prints, func(fp uint32) bool { return fp != 0 })
}

// indexMagic opens every segment index file.
var indexMagic = [4]byte{'E', 'S', 'I', 'X'}

// SegmentIndex is what a segment index file holds: enough to rebuild the
// in-memory index of a segment's first End bytes without reading them.
type SegmentIndex struct {
	// Version is the index format version of the file: IndexVersion, or
	// an older one, back to OldestIndexVersion, for one written before it.
	// AppendSegmentIndex writes IndexVersion when it is zero.
	Version uint8
	// Base is the global position of the segment's first event.
	Base uint64
	// End is how many bytes of the segment file the index covers: the end of
	// its last frame.
	End int64
	// LastHeaderCRC is the header checksum of the last frame, binding the
	// index to the very frame it ends with.
	LastHeaderCRC uint32
	// Names are the streams the frames belong to, each once.
	Names []string
	// Frames are the segment's frames in file order.
	Frames []IndexedFrame
	// Fingerprints holds one fingerprint per event, in position order.
	// From version 4 on, zero stands for an event whose ID the store
	// assigned, which needs none: a frame whose events all have zero lists
	// none.
	Fingerprints []uint32
}

// IndexedFrame is one frame of a SegmentIndex.
type IndexedFrame struct {
	Offset       uint32 // byte offset in the segment file
	Rel          uint32 // position of its first event, relative to Base
	Count        uint32 // events it holds, at least 1
	Name         uint32 // its stream, an index into Names
	FirstVersion uint64 // its stream's version of its first event
}

// Events returns how many events the index covers.
func (x *SegmentIndex) Events() uint64 { return uint64(len(x.Fingerprints)) }

// AppendSegmentIndex appends the encoding of x, which must be valid: of a
// version from OldestIndexVersion to IndexVersion, or zero (IndexVersion),
// frames in ascending offset order from SegmentHeaderSize, below End, each
// holding at least one event, their counts adding up to len(Fingerprints),
// their relative positions running on from 0 without a gap; from version 4
// on, each stream's frames continuing its versions.
func AppendSegmentIndex(dst []byte, x *SegmentIndex) []byte {
	version := x.Version
	if version == 0 {
		version = IndexVersion
	}
	start := len(dst)
	var h [IndexHeaderSize]byte
	copy(h[0:4], indexMagic[:])
	h[4] = version
	binary.LittleEndian.PutUint64(h[8:16], x.Base)
	binary.LittleEndian.PutUint64(h[16:24], uint64(x.End))
	binary.LittleEndian.PutUint32(h[24:28], uint32(len(x.Frames)))
	binary.LittleEndian.PutUint32(h[28:32], uint32(len(x.Names)))
	binary.LittleEndian.PutUint32(h[32:36], x.LastHeaderCRC)
	dst = append(dst, h[:]...)
	var first []uint64 // from version 4: each name's first version, from its first frame
	if version != OldestIndexVersion {
		first = make([]uint64, len(x.Names))
		for i := len(x.Frames) - 1; i >= 0; i-- {
			first[x.Frames[i].Name] = x.Frames[i].FirstVersion
		}
	}
	for i, n := range x.Names {
		dst = binary.AppendUvarint(dst, uint64(len(n)))
		dst = append(dst, n...)
		if first != nil {
			dst = binary.AppendUvarint(dst, first[i])
		}
	}
	prev := uint32(SegmentHeaderSize)
	var prevDelta int64                      // version 5: the previous frame's offset delta
	listed := make([]bool, 0, len(x.Frames)) // from version 4: the frames whose fingerprints are listed
	for _, f := range x.Frames {
		delta := f.Offset - prev
		switch {
		case first == nil:
			dst = binary.AppendUvarint(dst, uint64(f.Count))
			dst = binary.AppendUvarint(dst, uint64(delta))
			dst = binary.AppendUvarint(dst, uint64(f.Name))
			dst = binary.AppendUvarint(dst, f.FirstVersion)
		case version == 4:
			list := listed4(x.Fingerprints[f.Rel : f.Rel+f.Count])
			listed = append(listed, list)
			head := uint64(f.Count) << 1
			if !list {
				head |= 1
			}
			dst = binary.AppendUvarint(dst, head)
			dst = binary.AppendUvarint(dst, uint64(delta))
			dst = binary.AppendUvarint(dst, uint64(f.Name))
		default:
			list := listed4(x.Fingerprints[f.Rel : f.Rel+f.Count])
			listed = append(listed, list)
			kind := uint64(f.Name) << 2
			if f.Count == 1 {
				kind |= 2
			}
			if !list {
				kind |= 1
			}
			dst = binary.AppendUvarint(dst, kind)
			if f.Count != 1 {
				dst = binary.AppendUvarint(dst, uint64(f.Count))
			}
			dst = binary.AppendUvarint(dst, zigzag(int64(delta)-prevDelta))
			prevDelta = int64(delta)
		}
		prev = f.Offset
	}
	for i, f := range x.Frames {
		if first == nil || listed[i] {
			for _, fp := range x.Fingerprints[f.Rel : f.Rel+f.Count] {
				dst = binary.LittleEndian.AppendUint32(dst, fp)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(dst, Checksum(dst[start:]))
}

// DecodeSegmentIndex decodes a whole segment index file, of a segment of
// size bytes. It checks the trailing checksum before anything else, then
// that End is within size, that the frames are in order, gapless, within
// End, name known streams and hold no more events than End bytes can (at
// MinEventSize each); it does not check the index against the segment or
// the stream versions against other segments. So what it allocates, and
// what a caller adding the events to an index allocates, grows with the
// segment's size, whatever the file says. The result shares no memory with
// b.
func DecodeSegmentIndex(b []byte, size int64) (*SegmentIndex, error) {
	if len(b) < IndexHeaderSize+4 {
		return nil, ErrShort
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if Checksum(body) != sum {
		return nil, ErrPayloadChecksum
	}
	if [4]byte(body[0:4]) != indexMagic {
		return nil, fmt.Errorf("%w: bad index magic %q", ErrMalformed, body[0:4])
	}
	version := body[4]
	if version < OldestIndexVersion || version > IndexVersion {
		return nil, fmt.Errorf("%w: unsupported index version %d", ErrMalformed, version)
	}
	v4, v5 := version >= 4, version >= 5 // from version 4 on, from version 5 on
	if [3]byte(body[5:8]) != [3]byte{} || [4]byte(body[36:40]) != [4]byte{} {
		return nil, fmt.Errorf("%w: reserved index header bytes are not zero", ErrMalformed)
	}
	x := &SegmentIndex{Version: version, Base: binary.LittleEndian.Uint64(body[8:16]), LastHeaderCRC: binary.LittleEndian.Uint32(body[32:36])}
	end := binary.LittleEndian.Uint64(body[16:24])
	frames := binary.LittleEndian.Uint32(body[24:28])
	names := binary.LittleEndian.Uint32(body[28:32])
	if end > math.MaxUint32 || end < SegmentHeaderSize {
		return nil, fmt.Errorf("%w: index end %d out of range", ErrMalformed, end)
	}
	if int64(end) > size {
		return nil, fmt.Errorf("%w: index covers %d bytes of a %d-byte segment", ErrMalformed, end, size)
	}
	maxEvents := (end - SegmentHeaderSize) / MinEventSize
	x.End = int64(end)
	d := decoder{b: body[IndexHeaderSize:]}
	// Every name takes at least 2 bytes and every frame at least
	// minIndexEntry (3, or 2 from version 5 on); every frame holds an event,
	// and every name is a frame's: so corrupt counts cannot make the
	// decoder allocate far past its input or End.
	if uint64(names)*2+uint64(frames)*minIndexEntry(version) > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d names and %d frames cannot fit in %d bytes", ErrMalformed, names, frames, len(d.b))
	}
	if uint64(frames) > maxEvents || names > frames {
		return nil, fmt.Errorf("%w: %d names and %d frames for %d bytes of segment", ErrMalformed, names, frames, end)
	}
	x.Names = make([]string, names)
	var next []uint64 // from version 4: each stream's version of its next event
	if v4 {
		next = make([]uint64, names)
	}
	for i := range x.Names {
		n := d.bytes()
		if d.err == nil && len(n) == 0 {
			return nil, fmt.Errorf("%w: empty stream name", ErrMalformed)
		}
		x.Names[i] = string(n)
		if v4 {
			if next[i] = d.uvarint(); next[i] > math.MaxInt64 {
				return nil, fmt.Errorf("%w: stream %d starts at version %d", ErrMalformed, i, next[i])
			}
		}
	}
	x.Frames = make([]IndexedFrame, frames)
	listed := make([]bool, 0, frames) // from version 4: the frames whose fingerprints are listed
	var rel, off, fps uint64 = 0, SegmentHeaderSize, 0
	var prevDelta uint64 // version 5: the previous frame's offset delta
	for i := range x.Frames {
		var count, delta, name, first uint64
		var step int64 // version 5: delta less the previous frame's
		var one bool   // version 5: the frame says it holds one event
		switch {
		case v5:
			kind := d.uvarint()
			name, one = kind>>2, kind&2 != 0
			if count = 1; !one {
				count = d.uvarint()
			}
			step = unzigzag(d.uvarint())
			listed = append(listed, kind&1 == 0)
		case v4:
			head := d.uvarint()
			count, delta, name = head>>1, d.uvarint(), d.uvarint()
			listed = append(listed, head&1 == 0)
		default:
			count, delta, name, first = d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
		}
		if d.err != nil {
			break
		}
		if v5 {
			if !one && count < 2 {
				return nil, fmt.Errorf("%w: frame %d lists a count of %d, not flagged as one event", ErrMalformed, i, count)
			}
			// prevDelta is below 2^32, as End is: a step that would take
			// the delta below zero or past 2^32 places no frame.
			if step < -int64(prevDelta) || step > math.MaxUint32 {
				return nil, fmt.Errorf("%w: frame %d changes offset delta %d by %d, out of range", ErrMalformed, i, prevDelta, step)
			}
			delta = uint64(int64(prevDelta) + step)
			prevDelta = delta
		}
		// off < end here, so end-off does not wrap; off+delta, which
		// could, is taken only once delta is known to keep it below end.
		switch {
		case count == 0 || count > maxEvents-rel:
			return nil, fmt.Errorf("%w: frame %d holds %d events", ErrMalformed, i, count)
		case i > 0 && delta == 0, delta >= end-off:
			return nil, fmt.Errorf("%w: frame %d at offset delta %d from %d out of order or past the end", ErrMalformed, i, delta, off)
		case name >= uint64(names):
			return nil, fmt.Errorf("%w: frame %d names stream %d of %d", ErrMalformed, i, name, names)
		}
		off += delta
		if v4 {
			first = next[name]
			next[name] += count
			if listed[i] {
				fps += count
			}
		}
		if first > math.MaxInt64-count {
			return nil, fmt.Errorf("%w: frame %d version %d out of range", ErrMalformed, i, first)
		}
		x.Frames[i] = IndexedFrame{Offset: uint32(off), Rel: uint32(rel), Count: uint32(count), Name: uint32(name), FirstVersion: first}
		rel += count
	}
	if d.err != nil {
		return nil, d.err
	}
	if !v4 {
		fps = rel
	} else {
		// A name no frame uses would carry a first version nothing reads.
		used := make([]bool, names)
		for _, f := range x.Frames {
			used[f.Name] = true
		}
		if i := slices.Index(used, false); i >= 0 {
			return nil, fmt.Errorf("%w: stream %d is named by no frame", ErrMalformed, i)
		}
	}
	if uint64(len(d.b)) != fps*4 {
		return nil, fmt.Errorf("%w: %d bytes of fingerprints for %d events", ErrMalformed, len(d.b), fps)
	}
	if x.Base > math.MaxUint64-rel {
		return nil, fmt.Errorf("%w: positions past the largest", ErrMalformed)
	}
	x.Fingerprints = make([]uint32, rel)
	for i, f := range x.Frames {
		if v4 && !listed[i] {
			continue // zero: assigned IDs
		}
		prints := x.Fingerprints[f.Rel : f.Rel+f.Count]
		for k := range prints {
			prints[k] = binary.LittleEndian.Uint32(d.b[:4])
			d.b = d.b[4:]
		}
		if v4 && !listed4(prints) {
			return nil, fmt.Errorf("%w: frame %d lists fingerprints, all zero", ErrMalformed, i)
		}
	}
	return x, nil
}

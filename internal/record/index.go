package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// IndexHeaderSize is the size of the fixed header of a segment index file.
const IndexHeaderSize = 40

// IndexVersion is the index file format's version, written in every index
// file and the only one DecodeSegmentIndex accepts. It is not the segment
// format's Version: an index file lists frames, streams and fingerprints of
// IDs alike for segments of any version, and the format version 4 of
// segments left it as version 3 had it, so index files written beside
// version-3 segments stay in use.
const IndexVersion = 3

// indexMagic opens every segment index file.
var indexMagic = [4]byte{'E', 'S', 'I', 'X'}

// SegmentIndex is what a segment index file holds: enough to rebuild the
// in-memory index of a segment's first End bytes without reading them.
type SegmentIndex struct {
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

// AppendSegmentIndex appends the encoding of x, which must be valid: frames
// in ascending offset order from SegmentHeaderSize, below End, each holding
// at least one event, their counts adding up to len(Fingerprints), their
// relative positions running on from 0 without a gap.
func AppendSegmentIndex(dst []byte, x *SegmentIndex) []byte {
	start := len(dst)
	var h [IndexHeaderSize]byte
	copy(h[0:4], indexMagic[:])
	h[4] = IndexVersion
	binary.LittleEndian.PutUint64(h[8:16], x.Base)
	binary.LittleEndian.PutUint64(h[16:24], uint64(x.End))
	binary.LittleEndian.PutUint32(h[24:28], uint32(len(x.Frames)))
	binary.LittleEndian.PutUint32(h[28:32], uint32(len(x.Names)))
	binary.LittleEndian.PutUint32(h[32:36], x.LastHeaderCRC)
	dst = append(dst, h[:]...)
	for _, n := range x.Names {
		dst = binary.AppendUvarint(dst, uint64(len(n)))
		dst = append(dst, n...)
	}
	prev := uint32(SegmentHeaderSize)
	for _, f := range x.Frames {
		dst = binary.AppendUvarint(dst, uint64(f.Count))
		dst = binary.AppendUvarint(dst, uint64(f.Offset-prev))
		dst = binary.AppendUvarint(dst, uint64(f.Name))
		dst = binary.AppendUvarint(dst, f.FirstVersion)
		prev = f.Offset
	}
	for _, fp := range x.Fingerprints {
		dst = binary.LittleEndian.AppendUint32(dst, fp)
	}
	return binary.LittleEndian.AppendUint32(dst, Checksum(dst[start:]))
}

// DecodeSegmentIndex decodes a whole segment index file. It checks the
// trailing checksum before anything else, then that the frames are in
// order, gapless, within End and name known streams; it does not check the
// index against the segment or the stream versions against other segments.
// The result shares no memory with b.
func DecodeSegmentIndex(b []byte) (*SegmentIndex, error) {
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
	if body[4] != IndexVersion {
		return nil, fmt.Errorf("%w: unsupported index version %d", ErrMalformed, body[4])
	}
	if [3]byte(body[5:8]) != [3]byte{} || [4]byte(body[36:40]) != [4]byte{} {
		return nil, fmt.Errorf("%w: reserved index header bytes are not zero", ErrMalformed)
	}
	x := &SegmentIndex{Base: binary.LittleEndian.Uint64(body[8:16]), LastHeaderCRC: binary.LittleEndian.Uint32(body[32:36])}
	end := binary.LittleEndian.Uint64(body[16:24])
	frames := binary.LittleEndian.Uint32(body[24:28])
	names := binary.LittleEndian.Uint32(body[28:32])
	if end > math.MaxUint32 || end < SegmentHeaderSize {
		return nil, fmt.Errorf("%w: index end %d out of range", ErrMalformed, end)
	}
	x.End = int64(end)
	d := decoder{b: body[IndexHeaderSize:]}
	// Every name takes at least 2 bytes and every frame at least 4, so a
	// corrupt count cannot make the decoder allocate past its input.
	if uint64(names)*2+uint64(frames)*4 > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d names and %d frames cannot fit in %d bytes", ErrMalformed, names, frames, len(d.b))
	}
	x.Names = make([]string, names)
	for i := range x.Names {
		n := d.bytes()
		if d.err == nil && len(n) == 0 {
			return nil, fmt.Errorf("%w: empty stream name", ErrMalformed)
		}
		x.Names[i] = string(n)
	}
	x.Frames = make([]IndexedFrame, frames)
	var rel, off uint64 = 0, SegmentHeaderSize
	for i := range x.Frames {
		count, delta, name, first := d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
		if d.err != nil {
			break
		}
		off += delta
		switch {
		case count == 0 || count > math.MaxUint32-rel:
			return nil, fmt.Errorf("%w: frame %d holds %d events", ErrMalformed, i, count)
		case i > 0 && delta == 0, off >= end:
			return nil, fmt.Errorf("%w: frame %d at offset %d out of order or past the end", ErrMalformed, i, off)
		case name >= uint64(names):
			return nil, fmt.Errorf("%w: frame %d names stream %d of %d", ErrMalformed, i, name, names)
		case first > math.MaxInt64-count:
			return nil, fmt.Errorf("%w: frame %d version %d out of range", ErrMalformed, i, first)
		}
		x.Frames[i] = IndexedFrame{Offset: uint32(off), Rel: uint32(rel), Count: uint32(count), Name: uint32(name), FirstVersion: first}
		rel += count
	}
	if d.err != nil {
		return nil, d.err
	}
	if uint64(len(d.b)) != rel*4 {
		return nil, fmt.Errorf("%w: %d bytes of fingerprints for %d events", ErrMalformed, len(d.b), rel)
	}
	if x.Base > math.MaxUint64-rel {
		return nil, fmt.Errorf("%w: positions past the largest", ErrMalformed)
	}
	x.Fingerprints = make([]uint32, rel)
	for i := range x.Fingerprints {
		x.Fingerprints[i] = binary.LittleEndian.Uint32(d.b[4*i:])
	}
	return x, nil
}

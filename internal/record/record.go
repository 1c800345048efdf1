// Package record encodes and decodes the event store's on-disk frames and
// segment headers. It works on byte slices only, never on files, so that every
// byte of untrusted input passes through code that can be fuzzed in isolation.
//
// The layout is drawn in full at the top of eventlog.go in the root package;
// the constants here are the authority for offsets and sizes.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"unicode/utf8"
)

// Part of the format; never change. Any change bumps Version.
const (
	// Version is the format version written in every new segment's
	// header. Version 2 differs from 1 only in that every frame ends in
	// EndMark (see AppendMarkedFrame); version 3 differs from 2 only in
	// the keystream its payloads are masked with (see AppendFrameOf and
	// MaskWeyl); version 4 differs from 3 only in that its segment
	// headers hold the store's ID key and its events open with a tag,
	// so that an ID the store assigned is not stored (see AppendEventOf
	// and AssignedID); version 5 differs from 4 only in that a frame
	// continuing a stream may name it by number, the position of its
	// first event (see AppendNumberedFrame); version 6 differs from 5
	// only in its compact frames: a header of CompactHeaderSize bytes
	// holding the position relative to the segment's base, no event
	// count in a frame of one event, no metadata length for an event
	// without metadata, and no data length for a frame's last event (see
	// AppendCompactFrame). DecodeSegmentHeader accepts all six.
	Version = 6

	// EndMark is the byte that ends every frame of a segment of version 2
	// or later, stored as is. It has more than one bit set, so
	// that no single bit flip turns it into a zero.
	EndMark = 0xff

	// EndMarkSize is what ending in EndMark adds to a frame.
	EndMarkSize = 1

	// flagEndMark, in a payload's flags, says that its last byte is an
	// EndMark and no part of the events.
	flagEndMark = 1

	// flagWeyl, in a payload's flags, says that it was masked with
	// MaskWeyl. It is set in every frame of version 3 to 6, with
	// flagEndMark, and in no other: it lets the decoder check, after unmasking, that the
	// keystream the header named was the one the writer used.
	flagWeyl = 2

	// flagTagged, in a payload's flags, says that each event opens with a
	// tag (see AppendEventOf). It is set in every frame of version 4 to
	// 6, with flagEndMark and flagWeyl, and in no other.
	flagTagged = 4

	// flagNumbered, in a payload's flags, says that the frame names its
	// stream by number, the position of its first event, rather than by
	// name (see AppendNumberedFrame). It may be set in a frame of
	// version 5, with the three flags before it, or 6, with flagCompact
	// too, and in no other.
	flagNumbered = 8

	// flagCompact, in a payload's flags, says that the frame is compact,
	// as every frame of version 6 is and no other: its header is
	// CompactHeaderSize bytes, its events open with a tag that says
	// whether metadata follows (tagMetadata), and its last event's data
	// runs to the end mark, with no length. It is set with the three
	// flags of version 4 (and flagNumbered, flagOne as they apply).
	flagCompact = 16

	// compactFlags are the flags every compact frame has.
	compactFlags = flagEndMark | flagWeyl | flagTagged | flagCompact

	// flagOne, in a compact frame's flags, says that the frame holds one
	// event, and no event count follows the stream field. A compact
	// frame without it holds two events or more.
	flagOne = 32

	// tagStoredID, in an event's tag, says that the event's ID follows
	// the tag. Without it the store assigned the ID, and AssignedID
	// gives it. The rest of the tag is the length of the event's type.
	tagStoredID = 1

	// tagMetadata, in the tag of a compact frame's event, says that the
	// event's metadata, with its length, follows the type; without it
	// the event has none. The rest of such a tag, shifted right twice, is
	// the type's length.
	tagMetadata = 2

	// KeyBits is the size of a store's ID key, which a segment header of
	// version 4 or later holds (see AssignedID).
	KeyBits = 56

	// lengthWeyl is the bit of a frame header's length field that says the
	// payload is masked with MaskWeyl (versions 3 to 6). The rest of the
	// field is the payload's length, at most MaxPayload, so the bit is zero
	// in every frame of versions 1 and 2.
	lengthWeyl = 1 << 31

	// SegmentHeaderSize is the size of the header at the start of every
	// segment file.
	SegmentHeaderSize = 24

	// HeaderSize is the size of a frame header of versions 1 to 5.
	HeaderSize = 24

	// CompactHeaderSize is the size of a compact frame's header, as every
	// frame of version 6 has: HeaderSize's fields with the position
	// relative to the segment's base, in four bytes.
	CompactHeaderSize = 20

	// MaxPayload is the largest frame payload any version of the store
	// writes. The decoder refuses a larger length before allocating, so a
	// corrupt length can never make a reader allocate more than this.
	MaxPayload = 256 << 20

	// IDSize is the size of an event ID.
	IDSize = 16

	// MinEventSize is the smallest an encoded event of any version can
	// be: a compact frame's last event with no stored ID, its tag and a
	// type of one byte (its data, with no length, may be empty).
	MinEventSize = 1 + 1

	// minTaggedEventSize is the smallest an event of version 4 or 5 can
	// be: its tag, a type of one byte, and two empty lengths.
	minTaggedEventSize = 1 + 1 + 1 + 1

	// minUntaggedEventSize is the smallest an encoded event of versions 1
	// to 3 can be: the ID, a type of at least one byte with its length,
	// and two empty lengths.
	minUntaggedEventSize = IDSize + 2 + 1 + 1

	// payloadPrefixSize is the fixed part of the payload before the
	// variable-length fields: flags and timestamp.
	payloadPrefixSize = 1 + 8

	// minPayload is the smallest valid payload: the prefix, a one-byte
	// first version, a one-byte stream number, a count, one smallest
	// event and the end mark, which every frame of a version with tagged
	// events has (an untagged event is larger than that by far more than
	// the end mark; a stream name takes at least two bytes, its length
	// and one of name).
	minPayload = payloadPrefixSize + 1 + 1 + 1 + minTaggedEventSize + EndMarkSize

	// minCompactPayload is the smallest valid payload of a compact frame:
	// the prefix, a one-byte first version, a one-byte stream number,
	// one event of a one-byte tag and a one-byte type, and the end mark.
	minCompactPayload = payloadPrefixSize + 1 + 1 + 2 + EndMarkSize
)

// segmentMagic opens every segment file.
var segmentMagic = [4]byte{'E', 'S', 'L', 'G'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b, the checksum used for
// every header and payload.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Errors returned by the decoders. They describe what is wrong with the
// bytes; deciding whether that is a torn write or corruption is the caller's
// job, since it needs to know where the bytes sit in the file.
var (
	// ErrShort means fewer bytes were given than the structure needs.
	ErrShort = errors.New("record: short buffer")
	// ErrHeaderChecksum means a header's checksum does not match its bytes.
	ErrHeaderChecksum = errors.New("record: header checksum mismatch")
	// ErrPayloadChecksum means a payload's checksum does not match its bytes.
	ErrPayloadChecksum = errors.New("record: payload checksum mismatch")
	// ErrMalformed means the bytes passed their checksum but do not decode:
	// a bug in the writer, or a format this version does not understand.
	ErrMalformed = errors.New("record: malformed")
	// ErrNewerVersion means a segment header passed its checksum and names
	// a format version later than Version: a later release wrote it. It
	// wraps ErrMalformed.
	ErrNewerVersion = fmt.Errorf("%w: format version newer than this release reads", ErrMalformed)
)

// SegmentHeader is the decoded header of a segment file.
type SegmentHeader struct {
	// Base is the global position of the first event the segment holds.
	Base uint64
	// Version is the segment's format version, 1 to 6. The frames of a
	// segment of version 2 or later all end in EndMark; from version 3
	// they are masked with MaskWeyl; from version 4 their events open
	// with a tag; from version 6 they are compact (see
	// AppendCompactFrame), their headers CompactHeaderSize bytes.
	Version uint8
	// Key is the store's ID key, KeyBits bits, from which AssignedID
	// derives the IDs the store assigned to the segment's events. Zero
	// in a segment of a version before 4, whose events all store their
	// IDs.
	Key uint64
}

// AppendSegmentHeader appends the encoded header of a segment of the
// current version whose first event has position base, holding the
// store's ID key (its low KeyBits bits).
func AppendSegmentHeader(dst []byte, base, key uint64) []byte {
	var b [SegmentHeaderSize]byte
	copy(b[0:4], segmentMagic[:])
	b[4] = Version
	// The key's high 24 bits fill bytes 5-7, its low 32 bits 16-19:
	// what versions 1 to 3 kept as reserved zeros.
	b[5], b[6], b[7] = byte(key>>32), byte(key>>40), byte(key>>48)
	binary.LittleEndian.PutUint64(b[8:16], base)
	binary.LittleEndian.PutUint32(b[16:20], uint32(key))
	binary.LittleEndian.PutUint32(b[20:24], Checksum(b[:20]))
	return append(dst, b[:]...)
}

// DecodeSegmentHeader decodes the first SegmentHeaderSize bytes of b.
func DecodeSegmentHeader(b []byte) (SegmentHeader, error) {
	if len(b) < SegmentHeaderSize {
		return SegmentHeader{}, ErrShort
	}
	b = b[:SegmentHeaderSize]
	if Checksum(b[:20]) != binary.LittleEndian.Uint32(b[20:24]) {
		return SegmentHeader{}, ErrHeaderChecksum
	}
	if [4]byte(b[0:4]) != segmentMagic {
		return SegmentHeader{}, fmt.Errorf("%w: bad segment magic %q", ErrMalformed, b[0:4])
	}
	if b[4] > Version {
		return SegmentHeader{}, fmt.Errorf("%w: %d", ErrNewerVersion, b[4])
	}
	if b[4] < 1 {
		return SegmentHeader{}, fmt.Errorf("%w: unsupported format version %d", ErrMalformed, b[4])
	}
	h := SegmentHeader{Base: binary.LittleEndian.Uint64(b[8:16]), Version: b[4]}
	if h.Version >= 4 {
		h.Key = uint64(binary.LittleEndian.Uint32(b[16:20])) | uint64(b[5])<<32 | uint64(b[6])<<40 | uint64(b[7])<<48
	} else if [3]byte(b[5:8]) != [3]byte{} || [4]byte(b[16:20]) != [4]byte{} {
		return SegmentHeader{}, fmt.Errorf("%w: reserved segment header bytes are not zero", ErrMalformed)
	}
	return h, nil
}

// Header is a decoded frame header.
type Header struct {
	// Length is the size of the payload that follows the header.
	Length uint32
	// PayloadCRC is the checksum of the payload.
	PayloadCRC uint32
	// Position is the global position of the frame's first event.
	Position uint64
	// bits holds the sync delta in its low 32 bits, and headerWeyl and
	// headerCompact. Four fields keep a Header in registers rather than
	// in memory, in the loops that decode one frame after another.
	bits uint64
}

// The bits of Header.bits above the sync delta.
const (
	headerWeyl    = 1 << 32
	headerCompact = 1 << 33
)

// SyncDelta is how many events were written after the last completed
// fsync and before this frame: Position-SyncDelta is the first position a
// crash when this frame was written could lose. Recovery uses it to tell
// frames a crash may have torn together from frames written after an fsync
// that made earlier ones durable.
func (h Header) SyncDelta() uint32 { return uint32(h.bits) }

// Weyl reports that the payload is masked with MaskWeyl, as in a segment
// of version 3 to 6, rather than Mask.
func (h Header) Weyl() bool { return h.bits&headerWeyl != 0 }

// Compact reports that the header is a compact frame's, as in a segment of
// version 6: CompactHeaderSize bytes, not HeaderSize.
func (h Header) Compact() bool { return h.bits&headerCompact != 0 }

// Size returns the size of the encoded header: CompactHeaderSize for a
// compact frame's, else HeaderSize.
func (h Header) Size() int {
	if h.Compact() {
		return CompactHeaderSize
	}
	return HeaderSize
}

// SyncStart returns the first position written since the last fsync that
// completed before the frame was written.
func (h Header) SyncStart() uint64 { return h.Position - uint64(h.SyncDelta()) }

// FrameSize returns the size of the whole frame, header included.
func (h Header) FrameSize() int64 { return int64(h.Size()) + int64(h.Length) }

// HeaderSize returns the size of the frame headers of the segment:
// CompactHeaderSize from version 6, else HeaderSize.
func (s SegmentHeader) HeaderSize() int {
	if s.Version >= 6 {
		return CompactHeaderSize
	}
	return HeaderSize
}

// DecodeHeader decodes and verifies the frame header at the start of b,
// in the segment s heads, as the package's DecodeHeader does one of a
// segment of a version before 6. A compact frame's header, in a segment
// of version 6, holds the position relative to s.Base:
//
//	0            4            8            12           16      20
//	+------------+------------+------------+------------+-------+
//	| length u32 | pcrc u32   | rel u32    | delta u32  | hcrc  |
//	+------------+------------+------------+------------+-------+
//
// with hcrc the CRC-32C of bytes 0-15.
func (s SegmentHeader) DecodeHeader(b []byte) (Header, error) {
	if s.Version < 6 {
		return DecodeHeader(b)
	}
	if len(b) < CompactHeaderSize {
		return Header{}, ErrShort
	}
	if sumHeader((*[16]byte)(b)) != binary.LittleEndian.Uint32(b[16:20]) {
		return Header{}, ErrHeaderChecksum
	}
	if rel := binary.LittleEndian.Uint32(b[8:12]); s.Base+uint64(rel) < s.Base {
		return Header{}, fmt.Errorf("%w: position %d past base %d overflows", ErrMalformed, rel, s.Base)
	}
	return checkHeader(s.HeaderOf(b), minCompactPayload)
}

// HeaderOf returns the header at the start of b, in the segment s heads,
// which s.DecodeHeader has passed, without checking it again.
func (s SegmentHeader) HeaderOf(b []byte) Header {
	if s.Version < 6 {
		return HeaderOf(b)
	}
	return headerOf(b, s.Base+uint64(binary.LittleEndian.Uint32(b[8:12])), binary.LittleEndian.Uint32(b[12:16]), true)
}

// DecodeHeader decodes and verifies the frame header at the start of b, of
// a segment of a version before 6 (see SegmentHeader.DecodeHeader). It
// checks the header checksum and the length bound, so a Header it returns
// can be trusted to size an allocation of at most MaxPayload bytes.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	if Checksum(b[:20]) != binary.LittleEndian.Uint32(b[20:24]) {
		return Header{}, ErrHeaderChecksum
	}
	return checkHeader(HeaderOf(b), minPayload)
}

// checkHeader checks the fields of h, read from a header that passed its
// checksum: a payload length from least to MaxPayload, and a sync delta
// no larger than the position.
func checkHeader(h Header, least uint32) (Header, error) {
	if h.Length > MaxPayload || h.Length < least {
		return Header{}, fmt.Errorf("%w: payload length %d out of range", ErrMalformed, h.Length)
	}
	if uint64(h.SyncDelta()) > h.Position {
		return Header{}, fmt.Errorf("%w: sync delta %d past position %d", ErrMalformed, h.SyncDelta(), h.Position)
	}
	return h, nil
}

// HeaderOf returns the header at the start of b, which DecodeHeader has
// passed, without checking it again.
func HeaderOf(b []byte) Header {
	return headerOf(b, binary.LittleEndian.Uint64(b[8:16]), binary.LittleEndian.Uint32(b[16:20]), false)
}

// headerOf returns the header at the start of b, whose first two fields,
// the length and the payload's checksum, every version lays out alike,
// with the position and sync delta its version's layout holds.
func headerOf(b []byte, position uint64, syncDelta uint32, compact bool) Header {
	length := binary.LittleEndian.Uint32(b[0:4])
	bits := uint64(syncDelta) | uint64(length&lengthWeyl)<<1 // lengthWeyl<<1 is headerWeyl
	if compact {
		bits |= headerCompact
	}
	return Header{
		Length:     length &^ lengthWeyl,
		PayloadCRC: binary.LittleEndian.Uint32(b[4:8]),
		Position:   position,
		bits:       bits,
	}
}

// Event is one event inside a frame. Its slices alias the buffer it was
// decoded from.
type Event struct {
	// ID is the event's ID as stored; zero in a version-4 frame for an
	// ID the store assigned, which is not stored (see Frame.Assigned).
	ID       [IDSize]byte
	Type     []byte
	Metadata []byte
	Data     []byte
}

// Frame is a decoded frame: one Append call's events, all in one stream.
type Frame struct {
	Header
	// Timestamp is the commit time in Unix nanoseconds.
	Timestamp int64
	// FirstVersion is the stream version of the first event.
	FirstVersion uint64
	// Stream is the stream name; it aliases the decoded buffer. It is
	// nil in a frame that names its stream by number.
	Stream []byte
	// Numbered reports that the frame names its stream by a number,
	// StreamStart, not by name, as a version-5 frame may when it does not
	// hold the stream's first event.
	Numbered bool
	// StreamStart is the stream's number when Numbered is set: the
	// position of the stream's first event, which an earlier frame holds
	// with the stream's name (that of its version 0). A reader resolves
	// it through the frame at that position, or an index of the streams'
	// first positions.
	StreamStart uint64
	// Events holds the events in order; their slices alias the buffer.
	Events []Event
	// Marked reports that the frame ends in EndMark, as every frame of a
	// segment of version 2 or later does.
	Marked bool
	// Tagged reports that the frame's events open with a tag, as every
	// frame of a segment of version 4 or later does.
	Tagged bool
	// Key is the ID key of the segment the frame was read from (see
	// SegmentHeader), for ID. The decoder leaves it as it was: the reader
	// sets it, as only the reader knows the segment.
	Key uint64
	// keyMix is mix(mixedKey), kept by PutID so that a reader putting the
	// IDs of frame after frame of one segment mixes its key once. A zero
	// Frame holds it already, as mix(0) is 0.
	keyMix, mixedKey uint64
}

// ID returns the ID of the frame's i-th event: as stored, or, for one the
// store assigned, AssignedID's for f.Key.
func (f *Frame) ID(i int) [IDSize]byte {
	var id [IDSize]byte
	f.PutID(i, &id)
	return id
}

// PutID stores the ID of the frame's event i, as ID returns it, in *dst.
// It spares a reader filling an event in place the copy of an array. It
// and ID write to f, keeping its key's mix, so a Frame must not be given
// to them on two goroutines at once.
func (f *Frame) PutID(i int, dst *[IDSize]byte) {
	if !f.Assigned(i) {
		*dst = f.Events[i].ID
		return
	}
	if f.mixedKey != f.Key {
		f.mixedKey, f.keyMix = f.Key, mix(f.Key)
	}
	putMixedID(dst, f.keyMix, f.Key, f.Position+uint64(i), f.Timestamp)
}

// Assigned reports that the store assigned the frame's i-th event its ID,
// which it did not store: a version-4 event whose ID reads as zero (the
// decoder refuses a stored zero ID there).
func (f *Frame) Assigned(i int) bool {
	return f.Tagged && f.Events[i].ID == [IDSize]byte{}
}

// AssignedID returns the ID of an event the store assigned it to, at the
// given position and with its frame's timestamp, in a store whose ID key
// is key. It is a UUID of version 7, as random ones are: the timestamp's
// milliseconds in its first 48 bits; the version, 7; 12 bits of r, a
// bijection of the position keyed by the store's key; the variant, 10; 10
// bits of the key; and r's other 52 bits. Within one store no two
// positions share an ID, whatever their timestamps. Stores of different
// keys assign the same ID to events of the same millisecond only by a
// chance like that of two random IDs; a copy of a store keeps its key.
//
// r is no cipher: it is the key's mix XORed into the position, then
// splitmix64's output function, so that one assigned ID and its position
// give away the others' 74 non-time bits. IDs that must not be guessed are given by the
// caller (NewEventID draws 74 random bits).
func AssignedID(key, position uint64, timestamp int64) (id [IDSize]byte) {
	putMixedID(&id, mix(key), key, position, timestamp)
	return id
}

// putMixedID stores AssignedID(key, position, timestamp) in *id, given
// keyMix, mix(key), which a Frame keeps between calls (see PutID).
func putMixedID(id *[IDSize]byte, keyMix, key, position uint64, timestamp int64) {
	ms := uint64(max(timestamp, 0)/1e6) & (1<<48 - 1)
	r := mix(position ^ keyMix) // a bijection of position: mix is one
	binary.BigEndian.PutUint64(id[0:8], ms<<16|0x7<<12|r>>52)
	binary.BigEndian.PutUint64(id[8:16], 0b10<<62|(key&(1<<10-1))<<52|r&(1<<52-1))
}

// AssignedPosition returns the one position whose AssignedID, for key,
// could be id: ok is false when id's version, variant or key bits rule out
// that the store of key assigned it. Whether it did is then a matter of
// the event at that position: the position alone does not say that a
// caller gave no such ID. It reads no time bits, so it needs no frame.
func AssignedPosition(key uint64, id [IDSize]byte) (position uint64, ok bool) {
	hi, lo := binary.BigEndian.Uint64(id[0:8]), binary.BigEndian.Uint64(id[8:16])
	if hi>>12&0xf != 0x7 || lo>>62 != 0b10 || lo>>52&(1<<10-1) != key&(1<<10-1) {
		return 0, false
	}
	r := (hi&(1<<12-1))<<52 | lo&(1<<52-1)
	return unmix(r) ^ mix(key), true
}

// EventSize returns the largest encoded size of one event in a frame
// body of any version: its size with its ID stored, and a compact frame's
// tag, which takes a bit more than an earlier version's.
func EventSize(typ string, metadata, data []byte) int {
	return IDSize + uvarintLen(uint64(len(typ))<<2|tagMetadata|tagStoredID) + len(typ) +
		uvarintLen(uint64(len(metadata))) + len(metadata) +
		uvarintLen(uint64(len(data))) + len(data)
}

// BodyHeadSize returns the encoded size of the body's stream name and event
// count.
func BodyHeadSize(stream string, count int) int {
	return uvarintLen(uint64(len(stream))) + len(stream) + uvarintLen(uint64(count))
}

// StreamFieldSize returns the size of the stream name's field at the start
// of a body: the name and its length. A numbered frame (see
// AppendNumberedFrame) holds the stream's number in its place.
func StreamFieldSize(stream string) int {
	return uvarintLen(uint64(len(stream))) + len(stream)
}

// AppendBodyHead appends the stream name and event count that open a frame
// body. The events follow, each appended with AppendEventOf.
func AppendBodyHead(dst []byte, stream string, count int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	return binary.AppendUvarint(dst, uint64(count))
}

// AppendBodyHeadOf appends the stream name and event count that open the
// body of a frame of the given version: AppendBodyHead's, but for a
// compact frame (version 6) of one event, which holds no count.
func AppendBodyHeadOf(version uint8, dst []byte, stream string, count int) []byte {
	if version >= 6 && count == 1 {
		dst = binary.AppendUvarint(dst, uint64(len(stream)))
		return append(dst, stream...)
	}
	return AppendBodyHead(dst, stream, count)
}

// AppendLastEventOf appends the last event of a body of a frame of the
// given version: AppendEventOf's, but in a compact frame (version 6),
// whose last event's data runs to the end mark, with no data length.
func AppendLastEventOf(version uint8, dst []byte, id [IDSize]byte, typ string, metadata, data []byte) []byte {
	if version < 6 {
		return AppendEventOf(version, dst, id, typ, metadata, data)
	}
	dst = appendCompactEventHead(dst, id, typ, metadata)
	return append(dst, data...)
}

// appendCompactEventHead appends a compact frame's event up to its data:
// the tag, the ID if stored, the type, and metadata if any, with its
// length.
func appendCompactEventHead(dst []byte, id [IDSize]byte, typ string, metadata []byte) []byte {
	tag := uint64(len(typ)) << 2
	if len(metadata) > 0 {
		tag |= tagMetadata
	}
	if id != [IDSize]byte{} {
		tag |= tagStoredID
	}
	dst = binary.AppendUvarint(dst, tag)
	if tag&tagStoredID != 0 {
		dst = append(dst, id[:]...)
	}
	dst = append(dst, typ...)
	if len(metadata) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(metadata)))
		dst = append(dst, metadata...)
	}
	return dst
}

// AppendEventOf appends one encoded event to a body of a frame of the
// given version. In a compact frame (version 6) this is an event before
// the last (see AppendLastEventOf): it opens with a tag, the uvarint of
// its type's length shifted left twice, with tagStoredID set if the ID
// follows and tagMetadata if metadata does, and its data has a length. Up to version 3 an event opens with its ID. From version
// 4 it opens with a tag, the uvarint of its type's length shifted left
// once, with tagStoredID set if the ID follows; a zero id stands for an ID
// the store assigned, which is not stored (see AssignedID).
func AppendEventOf(version uint8, dst []byte, id [IDSize]byte, typ string, metadata, data []byte) []byte {
	if version >= 6 {
		dst = appendCompactEventHead(dst, id, typ, metadata)
		dst = binary.AppendUvarint(dst, uint64(len(data)))
		return append(dst, data...)
	}
	if version < 4 {
		dst = append(dst, id[:]...)
		dst = binary.AppendUvarint(dst, uint64(len(typ)))
	} else if id == [IDSize]byte{} {
		dst = binary.AppendUvarint(dst, uint64(len(typ))<<1)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(typ))<<1|tagStoredID)
		dst = append(dst, id[:]...)
	}
	dst = append(dst, typ...)
	dst = binary.AppendUvarint(dst, uint64(len(metadata)))
	dst = append(dst, metadata...)
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	return append(dst, data...)
}

// FrameSize returns the size of a whole frame holding body.
func FrameSize(firstVersion uint64, body []byte) int {
	return HeaderSize + payloadPrefixSize + uvarintLen(firstVersion) + len(body)
}

// AppendFrame appends a complete frame, as a version-1 segment holds them,
// to dst: header, then payload made of the writer's fields and body (built
// with AppendBodyHead and AppendEventOf), masked (see Mask). It fills in both
// checksums, over the bytes as written. The caller keeps len(payload) <=
// MaxPayload.
func AppendFrame(dst []byte, position uint64, syncDelta uint32, timestamp int64, firstVersion uint64, body []byte) []byte {
	return appendFrame(dst, position, syncDelta, timestamp, firstVersion, 0, body, 0)
}

// AppendMarkedFrame appends a frame as AppendFrame does, for a version-2
// segment: its payload ends in one more byte, stored as EndMark, past the
// masked events. So a frame never ends in a zero byte, and space allocated
// after it, which reads as zeros, cannot be mistaken for its last bytes: a
// frame whose last byte reads zero was cut short, and one that ends in
// EndMark was written whole, whatever else happened to it since. It is
// EndMarkSize bytes larger than AppendFrame's.
func AppendMarkedFrame(dst []byte, position uint64, syncDelta uint32, timestamp int64, firstVersion uint64, body []byte) []byte {
	return appendFrame(dst, position, syncDelta, timestamp, firstVersion, 0, body, flagEndMark)
}

// AppendFrameOf appends a frame as a segment of the given version holds
// them: AppendFrame's for version 1, AppendMarkedFrame's for version 2,
// for version 3 AppendMarkedFrame's but for its keystream: the payload is
// masked with MaskWeyl, its flags say so too, and so does the top bit of
// its header's length field; and for version 4 version 3's, with flags
// saying that its events open with tags, and for version 5 version 4's
// (a frame naming its stream by number is AppendNumberedFrame's). A frame
// of version 3, 4 or 5 is as large as a version-2 one with the same body.
// The body's events must be of the same version (see AppendEventOf).
func AppendFrameOf(version uint8, dst []byte, position uint64, syncDelta uint32, timestamp int64, firstVersion uint64, body []byte) []byte {
	var flags byte
	switch version {
	case 1:
	case 2:
		flags = flagEndMark
	case 3:
		flags = flagEndMark | flagWeyl
	case 4, 5:
		flags = flagEndMark | flagWeyl | flagTagged
	default: // version 6 frames are AppendCompactFrame's, which needs the segment's base
		panic(fmt.Sprintf("record: AppendFrameOf of format version %d", version))
	}
	return appendFrame(dst, position, syncDelta, timestamp, firstVersion, 0, body, flags)
}

// NumberedFrameSize returns the size of the whole frame AppendNumberedFrame
// appends for the stream starting at start and body, its end mark
// included.
func NumberedFrameSize(firstVersion, start uint64, stream string, body []byte) int {
	return FrameSize(firstVersion, body) - StreamFieldSize(stream) + uvarintLen(start) + EndMarkSize
}

// AppendNumberedFrame appends a frame of version 5, as AppendFrameOf does
// for that version, that names its stream by number rather
// than by name: body, built with AppendBodyHead for the stream's name and
// AppendEventOf, has its stream field (StreamFieldSize(stream) bytes)
// replaced by the uvarint of start, the position of the stream's first
// event, and the flags say so. The frame holding a stream's version 0
// must name it, so firstVersion is above 0, and start is below position.
// It is NumberedFrameSize bytes.
func AppendNumberedFrame(dst []byte, position uint64, syncDelta uint32, timestamp int64, firstVersion, start uint64, stream string, body []byte) []byte {
	if firstVersion == 0 || start >= position { // see the doc comment
		panic("record: AppendNumberedFrame of a stream's first frame, or of one not started before it")
	}
	flags := byte(flagEndMark | flagWeyl | flagTagged | flagNumbered)
	return appendFrame(dst, position, syncDelta, timestamp, firstVersion, start, body[StreamFieldSize(stream):], flags)
}

// CompactFrameSize returns the size of the whole compact frame
// AppendCompactFrame appends for body, its end mark included.
func CompactFrameSize(firstVersion uint64, body []byte) int {
	return CompactHeaderSize + payloadPrefixSize + uvarintLen(firstVersion) + len(body) + EndMarkSize
}

// CompactNumberedFrameSize returns the size of the whole compact frame
// AppendCompactNumberedFrame appends for the stream starting at start and
// body, its end mark included.
func CompactNumberedFrameSize(firstVersion, start uint64, stream string, body []byte) int {
	return CompactFrameSize(firstVersion, body) - StreamFieldSize(stream) + uvarintLen(start)
}

// AppendCompactFrame appends a frame of version 6, a compact frame, to
// dst, for a segment whose first event has position base: version 5's
// frame (see AppendFrameOf) with a header of CompactHeaderSize bytes, the
// position in it relative to base (see SegmentHeader.DecodeHeader), and
// flags saying so and, for a frame of one event, that no count follows
// the stream field. body holds count events, built with AppendBodyHeadOf,
// AppendEventOf and AppendLastEventOf for version 6: the body must hold
// exactly count events, as the decoder cannot tell a frame holding more
// (the data of the last it counts runs on over the others). It is
// CompactFrameSize bytes.
func AppendCompactFrame(dst []byte, base, position uint64, syncDelta uint32, timestamp int64, firstVersion uint64, count int, body []byte) []byte {
	return appendCompactFrame(dst, base, position, syncDelta, timestamp, firstVersion, 0, count, body, 0)
}

// AppendCompactNumberedFrame appends a compact frame as
// AppendCompactFrame does, naming its stream by number as
// AppendNumberedFrame does: body's stream field is replaced by the uvarint
// of start. firstVersion is above 0, and start below position. It is
// CompactNumberedFrameSize bytes.
func AppendCompactNumberedFrame(dst []byte, base, position uint64, syncDelta uint32, timestamp int64, firstVersion, start uint64, stream string, count int, body []byte) []byte {
	if firstVersion == 0 || start >= position { // see the doc comment
		panic("record: AppendCompactNumberedFrame of a stream's first frame, or of one not started before it")
	}
	return appendCompactFrame(dst, base, position, syncDelta, timestamp, firstVersion, start, count, body[StreamFieldSize(stream):], flagNumbered)
}

func appendCompactFrame(dst []byte, base, position uint64, syncDelta uint32, timestamp int64, firstVersion, start uint64, count int, body []byte, flags byte) []byte {
	if position < base || position-base > 1<<32-1 || count < 1 {
		panic("record: compact frame of a position outside its segment's reach, or of no event")
	}
	flags |= flagEndMark | flagWeyl | flagTagged | flagCompact
	if count == 1 {
		flags |= flagOne
	}
	return appendFrameOf(dst, base, position, syncDelta, timestamp, firstVersion, start, body, flags)
}

func appendFrame(dst []byte, position uint64, syncDelta uint32, timestamp int64, firstVersion, streamStart uint64, body []byte, flags byte) []byte {
	return appendFrameOf(dst, 0, position, syncDelta, timestamp, firstVersion, streamStart, body, flags)
}

// appendFrameOf appends a frame with the given flags; base is the
// segment's, for a compact frame's header.
func appendFrameOf(dst []byte, base, position uint64, syncDelta uint32, timestamp int64, firstVersion, streamStart uint64, body []byte, flags byte) []byte {
	hsize := HeaderSize
	if flags&flagCompact != 0 {
		hsize = CompactHeaderSize
	}
	start := len(dst)
	dst = append(dst, make([]byte, hsize)...)
	dst = append(dst, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(timestamp))
	dst = binary.AppendUvarint(dst, firstVersion)
	if flags&flagNumbered != 0 {
		dst = binary.AppendUvarint(dst, streamStart)
	}
	dst = append(dst, body...)
	if flags&flagEndMark != 0 {
		dst = append(dst, 0)
	}

	h := dst[start : start+hsize]
	payload := dst[start+hsize:]
	length := uint32(len(payload))
	if flags&flagWeyl != 0 {
		length |= lengthWeyl
	}
	mask(payload, position, flags&flagWeyl != 0)
	if flags&flagEndMark != 0 {
		payload[len(payload)-1] = EndMark // stored unmasked
	}
	binary.LittleEndian.PutUint32(h[0:4], length)
	binary.LittleEndian.PutUint32(h[4:8], Checksum(payload))
	if flags&flagCompact != 0 {
		binary.LittleEndian.PutUint32(h[8:12], uint32(position-base))
		binary.LittleEndian.PutUint32(h[12:16], syncDelta)
		binary.LittleEndian.PutUint32(h[16:20], sumHeader((*[16]byte)(h)))
		return dst
	}
	binary.LittleEndian.PutUint64(h[8:16], position)
	binary.LittleEndian.PutUint32(h[16:20], syncDelta)
	binary.LittleEndian.PutUint32(h[20:24], Checksum(h[:20]))
	return dst
}

// DecodePayload verifies payload against h, unmasks it in place and decodes
// it. Once its checksum has passed, payload is changed: it holds the
// unmasked bytes, and no longer verifies. The events are appended to
// events[:0], so a caller decoding many frames can reuse one slice; the
// returned Frame's slices alias payload.
//
// Allocation is bounded by len(payload): the event count is checked against
// the bytes left before the events slice grows.
func DecodePayload(h Header, payload []byte, events []Event) (Frame, error) {
	if len(payload) < int(h.Length) {
		return Frame{}, ErrShort
	}
	if len(payload) > int(h.Length) {
		return Frame{}, fmt.Errorf("%w: %d payload bytes for a header saying %d", ErrMalformed, len(payload), h.Length)
	}
	if err := VerifyPayload(h, payload); err != nil {
		return Frame{}, err
	}
	return DecodeVerified(h, payload, events)
}

// VerifyPayload checks payload, the h.Length bytes after h, against h's
// checksum and unmasks it in place, with the keystream h names. Once it
// has passed, payload holds the unmasked bytes, for DecodeVerified, and no
// longer verifies.
func VerifyPayload(h Header, payload []byte) error {
	if len(payload) != int(h.Length) {
		return ErrShort
	}
	if len(payload) == 0 {
		if h.PayloadCRC != 0 { // the checksum of no bytes
			return ErrPayloadChecksum
		}
		return fmt.Errorf("%w: payload length 0 out of range", ErrMalformed)
	}
	last := payload[len(payload)-1] // the end mark, if any, is stored unmasked
	if sumUnmask(payload, h.Position, h.Weyl()) != h.PayloadCRC {
		mask(payload, h.Position, h.Weyl()) // the bytes back as read
		return ErrPayloadChecksum
	}
	if payload[0]&flagEndMark != 0 && last != EndMark {
		return fmt.Errorf("%w: frame ends in %#x, not its end mark", ErrMalformed, last)
	}
	return nil
}

// DecodeVerified decodes a payload VerifyPayload has passed and unmasked,
// as DecodePayload does. It checks everything but the checksum, so it never
// fails on the bytes VerifyPayload passed unless they are malformed.
func DecodeVerified(h Header, payload []byte, events []Event) (Frame, error) {
	f := Frame{Events: events}
	if err := f.DecodeVerified(h, payload); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// DecodeVerified decodes into f, as the function of that name does, with
// the events appended to f.Events[:0]: a reader decoding frame after frame
// into one Frame copies none of them whole. On an error f holds nothing
// to use.
func (f *Frame) DecodeVerified(h Header, payload []byte) error {
	if len(payload) != int(h.Length) {
		return ErrShort
	}
	if f.decodeOne(h, payload) {
		return nil
	}
	return f.decodeFields(h, payload)
}

// decodeFields is DecodeVerified's general decoder, field by field, of a
// payload of h's length.
func (f *Frame) decodeFields(h Header, payload []byte) error {
	events := f.Events[:0]
	// A decode that succeeds sets every other field below; setting them
	// one by one spares clearing the whole Frame first. One that fails
	// leaves them as they were, which the doc comment allows.
	f.Header, f.Marked, f.Tagged, f.Numbered = h, false, false, false
	d := decoder{b: payload}
	flags := d.byte()
	compact := flags&flagCompact != 0
	switch flags {
	case 0, flagEndMark, flagEndMark | flagWeyl, flagEndMark | flagWeyl | flagTagged, flagEndMark | flagWeyl | flagTagged | flagNumbered,
		compactFlags, compactFlags | flagNumbered, compactFlags | flagOne, compactFlags | flagNumbered | flagOne:
		if h.Weyl() != (flags&flagWeyl != 0) {
			return fmt.Errorf("%w: flags %#x in a frame whose header says the keystream is %s", ErrMalformed, flags, keystreamName(h.Weyl()))
		}
		if h.Compact() != compact {
			return fmt.Errorf("%w: flags %#x in a frame whose header is %d bytes", ErrMalformed, flags, h.Size())
		}
		if flags&flagEndMark != 0 { // its last byte is no part of the events
			if len(d.b) > 0 {
				d.b = d.b[:len(d.b)-1]
			}
			f.Marked = true
		}
		f.Tagged = flags&flagTagged != 0
	default:
		return fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	f.Timestamp = int64(d.uint64())
	f.FirstVersion = d.uvarint()
	f.Stream, f.StreamStart = nil, 0
	if flags&flagNumbered != 0 {
		f.Numbered = true
		f.StreamStart = d.uvarint()
	} else {
		f.Stream = d.bytes()
	}
	var count uint64 = 1
	if flags&flagOne == 0 {
		count = d.uvarint()
		if compact && count == 1 && d.err == nil {
			// Such a frame says so in its flags; a count of one would give
			// it a second encoding.
			return fmt.Errorf("%w: count of one in a compact frame", ErrMalformed)
		}
	}
	if d.err != nil {
		return d.err
	}
	minEvent := uint64(minUntaggedEventSize)
	if compact {
		minEvent = MinEventSize
	} else if f.Tagged {
		minEvent = minTaggedEventSize
	}
	if count == 0 || count > uint64(len(d.b))/minEvent {
		return fmt.Errorf("%w: event count %d does not fit %d bytes", ErrMalformed, count, len(d.b))
	}
	if f.Numbered {
		if f.FirstVersion == 0 {
			return fmt.Errorf("%w: stream number in the frame of a stream's version 0", ErrMalformed)
		}
		if f.StreamStart >= h.Position {
			return fmt.Errorf("%w: stream number %d, not a position before the frame's, %d", ErrMalformed, f.StreamStart, h.Position)
		}
	} else if len(f.Stream) == 0 || !validUTF8(f.Stream) {
		return fmt.Errorf("%w: invalid stream name", ErrMalformed)
	}
	if f.FirstVersion+count < f.FirstVersion || h.Position+count < h.Position {
		return fmt.Errorf("%w: version or position overflows", ErrMalformed)
	}
	for i := range count {
		events = append(events, Event{})
		e := &events[len(events)-1]
		if compact {
			d.compactEvent(e, i == count-1)
		} else if f.Tagged {
			d.taggedEvent(e)
		} else {
			d.event(e)
		}
		if d.err != nil {
			f.Events = events
			return d.err
		}
		if len(e.Type) == 0 || !validUTF8(e.Type) {
			f.Events = events
			return fmt.Errorf("%w: event type empty or not UTF-8", ErrMalformed)
		}
	}
	f.Events = events
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return nil
}

// decodeOne decodes payload into f, as DecodeVerified does, if it is the
// payload of a compact frame of one event whose ID the store assigned,
// each of whose lengths takes one or two bytes: what nearly every frame
// of a version-6 segment holds. It reads it in one pass over the bytes,
// where the general decoder goes field by field. It returns false, f
// unchanged, for anything else, valid or not: the general decoder then
// decodes it, or says what is wrong with it.
func (f *Frame) decodeOne(h Header, p []byte) bool {
	if !h.Compact() || len(p) < minCompactPayload || p[0]&^flagNumbered != compactFlags|flagOne || !h.Weyl() {
		return false
	}
	numbered := p[0]&flagNumbered != 0
	timestamp := int64(binary.LittleEndian.Uint64(p[1:9]))
	b := p[9 : len(p)-1] // without the end mark
	firstVersion, b, ok := shortUvarint(b)
	if !ok || firstVersion == math.MaxUint64 || h.Position == math.MaxUint64 {
		return false
	}
	var stream []byte
	var start uint64
	if numbered {
		if start, b, ok = shortUvarint(b); !ok || firstVersion == 0 || start >= h.Position {
			return false
		}
	} else if stream, b, ok = shortBytes(b); !ok || stream == nil || !validUTF8(stream) {
		return false
	}
	if len(b) < 2 || b[0]&(0x80|tagStoredID) != 0 {
		return false
	}
	tag, n := b[0], int(b[0]>>2)
	b = b[1:]
	// The type is followed at least by the end mark, in p.
	if n == 0 || n > len(b) || !validUTF8Within(b[:n:len(b)+1]) {
		return false
	}
	typ := b[:n:n]
	b = b[n:]
	var metadata, data []byte
	if tag&tagMetadata != 0 {
		if metadata, b, ok = shortBytes(b); !ok || metadata == nil {
			return false
		}
	}
	if len(b) > 0 {
		data = b[:len(b):len(b)]
	}
	f.Header, f.Marked, f.Tagged, f.Numbered = h, true, true, numbered
	f.Timestamp, f.FirstVersion, f.Stream, f.StreamStart = timestamp, firstVersion, stream, start
	if cap(f.Events) == 0 {
		f.Events = make([]Event, 1, 4)
	}
	// Set in place: an Event built apart and appended would be copied.
	f.Events = f.Events[:1]
	e := &f.Events[0]
	e.ID, e.Type, e.Metadata, e.Data = [IDSize]byte{}, typ, metadata, data
	return true
}

// validUTF8Within is validUTF8 of b, reading up to cap(b) bytes at b's
// start, which must be readable: a word at a time, where a short string
// would otherwise be read byte by byte.
func validUTF8Within(b []byte) bool {
	const high = 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&high != 0 {
			return utf8.Valid(b)
		}
	}
	if i == len(b) {
		return true
	}
	if w := b[i:cap(b)]; len(w) >= 8 {
		if binary.LittleEndian.Uint64(w)&(high&(1<<(8*(len(b)-i))-1)) != 0 {
			return utf8.Valid(b)
		}
		return true
	}
	return validUTF8(b[i:])
}

// shortUvarint reads a uvarint in its shortest encoding off the front of
// b, as decoder.uvarint does, inline for one or two bytes.
func shortUvarint(b []byte) (v uint64, rest []byte, ok bool) {
	switch {
	case len(b) > 0 && b[0] < 0x80:
		return uint64(b[0]), b[1:], true
	case len(b) > 1 && b[1] < 0x80:
		return uint64(b[0]&0x7f) | uint64(b[1])<<7, b[2:], b[1] != 0
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(v) {
		return 0, b, false
	}
	return v, b[n:], true
}

// Mask XORs b, the payload of the frame whose first event has the given
// position, with a keystream drawn from that position; applying it twice
// gives b back. Payloads are stored masked so that no frame holds a long
// run of zero bytes, whatever its events hold (all-zero data included): a
// run of zeros on disk is then the mark of a sector that was never written,
// and recovery can tell a torn write from a bit flip without guessing. The
// keystream is splitmix64, eight bytes per step.
func Mask(b []byte, position uint64) {
	state := position * 0xbf58476d1ce4e5b9
	// Four words a step, whose keys do not depend on each other, so the
	// multiplications overlap.
	for len(b) >= 32 {
		w := b[:32:32]
		s0, s1, s2, s3 := state+golden, state+golden2, state+golden3, state+golden4
		binary.LittleEndian.PutUint64(w[0:], binary.LittleEndian.Uint64(w[0:])^mix(s0))
		binary.LittleEndian.PutUint64(w[8:], binary.LittleEndian.Uint64(w[8:])^mix(s1))
		binary.LittleEndian.PutUint64(w[16:], binary.LittleEndian.Uint64(w[16:])^mix(s2))
		binary.LittleEndian.PutUint64(w[24:], binary.LittleEndian.Uint64(w[24:])^mix(s3))
		state = s3
		b = b[32:]
	}
	for len(b) >= 8 {
		state += golden
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^mix(state))
		b = b[8:]
	}
	if len(b) > 0 {
		state += golden
		k := mix(state)
		for i := range b {
			b[i] ^= byte(k >> (8 * i))
		}
	}
}

// MaskWeyl XORs b, the payload of a frame of version 3 to 6 whose first event has
// the given position, with a keystream drawn from that position, as Mask
// does for versions 1 and 2; applying it twice gives b back. Its keystream
// costs an addition a word where Mask's costs two multiplications, so that
// reading a frame costs little more than checksumming it: the position is
// scrambled once, with splitmix64, into a start, and the words that follow
// add golden, an odd constant, to it one after another (a Weyl sequence).
//
// It serves the same end as Mask: no masked payload holds a long run of
// zero bytes. Two words of a masked payload in a row are both zero only if
// the two words of the payload under them differ by exactly golden, and
// then only for one start in 2^64; a run of 16 zero bytes not aligned to
// words needs the same of one whole word and parts of its neighbours. An
// all-zero payload shows the keystream itself, whose words in a row never
// differ by zero; a zero word in it, once in 2^64, sits between golden and
// its negation, neither of which holds a zero byte, so no run exceeds 8.
func MaskWeyl(b []byte, position uint64) {
	state := weylStart(position)
	for len(b) >= 32 {
		w := b[:32:32]
		binary.LittleEndian.PutUint64(w[0:], binary.LittleEndian.Uint64(w[0:])^(state+golden))
		binary.LittleEndian.PutUint64(w[8:], binary.LittleEndian.Uint64(w[8:])^(state+golden2))
		binary.LittleEndian.PutUint64(w[16:], binary.LittleEndian.Uint64(w[16:])^(state+golden3))
		binary.LittleEndian.PutUint64(w[24:], binary.LittleEndian.Uint64(w[24:])^(state+golden4))
		state += golden4
		b = b[32:]
	}
	for len(b) >= 8 {
		state += golden
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^state)
		b = b[8:]
	}
	if len(b) > 0 {
		state += golden
		for i := range b {
			b[i] ^= byte(state >> (8 * i))
		}
	}
}

// weylStart is where MaskWeyl's keystream for position starts: the
// position scrambled with splitmix64.
func weylStart(position uint64) uint64 { return mix(position * 0xbf58476d1ce4e5b9) }

// sumUnmaskWeylGeneric is sumUnmaskWeyl in two passes, for CPUs without
// the instruction its assembly uses: the checksum, then MaskWeyl.
func sumUnmaskWeylGeneric(b []byte, position uint64) uint32 {
	sum := Checksum(b)
	MaskWeyl(b, position)
	return sum
}

// sumUnmask returns the CRC-32C of b as it is and unmasks it in place, as
// mask does: for a Weyl keystream in one pass where the CPU can.
func sumUnmask(b []byte, position uint64, weyl bool) uint32 {
	if weyl {
		return sumUnmaskWeyl(b, position)
	}
	sum := Checksum(b)
	Mask(b, position)
	return sum
}

// mask applies MaskWeyl to b if weyl is set, else Mask.
func mask(b []byte, position uint64, weyl bool) {
	if weyl {
		MaskWeyl(b, position)
	} else {
		Mask(b, position)
	}
}

// keystreamName names the keystream a header's Weyl field selects, for
// errors.
func keystreamName(weyl bool) string {
	if weyl {
		return "Weyl (versions 3 to 6)"
	}
	return "splitmix64 (versions 1 and 2)"
}

// golden is splitmix64's increment; golden2 to golden4 are 2, 3 and 4
// times it, wrapped to 64 bits as the keystream's state is.
const (
	golden  uint64 = 0x9e3779b97f4a7c15
	golden2 uint64 = 0x3c6ef372fe94f82a
	golden3 uint64 = 0xdaa66d2c7ddf743f
	golden4 uint64 = 0x78dde6e5fd29f054
)

// mix is splitmix64's output function.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unmix is mix's inverse: each step undone in reverse order, a
// multiplication by the constant's inverse modulo 2^64 and a shifted XOR
// by repeating it until the shift passes 64 bits.
func unmix(z uint64) uint64 {
	z ^= z>>31 ^ z>>62
	z *= 0x319642b2d24d8ec3 // 0x94d049bb133111eb⁻¹
	z ^= z>>27 ^ z>>54
	z *= 0x96de1b173f119089 // 0xbf58476d1ce4e5b9⁻¹
	return z ^ z>>30 ^ z>>60
}

// validUTF8 is utf8.Valid with a fast path for the short ASCII names
// nearly every stream and event type has, checked a byte at a time.
func validUTF8(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return utf8.Valid(b)
		}
	}
	return true
}

// decoder reads fields off the front of b, recording the first error and
// returning zero values after it, so a decode reads as a straight line.
type decoder struct {
	b   []byte
	err error
}

// The fast paths below are small enough to inline; errors are built out of
// line, in fail.

func (d *decoder) fixed(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("field of %d bytes past the end", uint64(n))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// fail records a malformed field, unless an error is already recorded.
//
//go:noinline
func (d *decoder) fail(format string, arg uint64) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, ErrMalformed, arg)
	}
}

func (d *decoder) byte() byte {
	if v := d.fixed(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if v := d.fixed(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err == nil && len(d.b) > 0 && d.b[0] < 0x80 { // one byte: most lengths and counts
		v := d.b[0]
		d.b = d.b[1:]
		return uint64(v)
	}
	return d.longUvarint()
}

// longUvarint reads a uvarint of more than one byte.
func (d *decoder) longUvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	// Only the shortest encoding is valid, so every frame has exactly one
	// encoding and re-encoding a decoded frame gives back its bytes.
	if n <= 0 || n != uvarintLen(v) {
		d.fail("bad varint of %d bytes", uint64(max(n, -n)))
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a uvarint length and that many bytes; a zero length yields nil.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("length %d past the end", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// event reads one event into e. Its fast path takes lengths of one or two
// bytes, which is what nearly every event has; anything else, including
// every error, goes through the general fields from the event's start.
func (d *decoder) event(e *Event) {
	if b := d.b; d.err == nil && len(b) > IDSize {
		e.ID = [IDSize]byte(b)
		var ok bool
		if e.Type, b, ok = shortBytes(b[IDSize:]); ok {
			if e.Metadata, b, ok = shortBytes(b); ok {
				if e.Data, b, ok = shortBytes(b); ok {
					d.b = b
					return
				}
			}
		}
	}
	copy(e.ID[:], d.fixed(IDSize))
	e.Type = d.bytes()
	e.Metadata = d.bytes()
	e.Data = d.bytes()
}

// taggedEvent reads one event of version 4 or later into e, as event does
// one of an earlier version. Its fast path takes a one-byte tag and lengths
// of one or two bytes.
func (d *decoder) taggedEvent(e *Event) {
	if b := d.b; d.err == nil && len(b) > 1 && b[0] < 0x80 {
		tag, n := b[0], int(b[0]>>1)
		b = b[1:]
		ok := tag&tagStoredID == 0
		if !ok && len(b) >= IDSize {
			e.ID = [IDSize]byte(b)
			b = b[IDSize:]
			ok = e.ID != [IDSize]byte{} // a stored zero ID: the general path fails it
		}
		if ok && n > 0 && n <= len(b) {
			e.Type = b[:n:n]
			if e.Metadata, b, ok = shortBytes(b[n:]); ok {
				if e.Data, b, ok = shortBytes(b); ok {
					d.b = b
					return
				}
			}
		}
	}
	*e = Event{}
	if d.tagHead(e, 1); d.err != nil {
		return
	}
	e.Metadata = d.bytes()
	e.Data = d.bytes()
}

// compactEvent reads one event of a compact frame into e, as taggedEvent
// does one of version 4 or 5: its tag says whether metadata follows, and
// the last event's data is all that is left. Its fast path takes a
// one-byte tag and lengths of one or two bytes.
func (d *decoder) compactEvent(e *Event, last bool) {
	if b := d.b; d.err == nil && len(b) > 1 && b[0] < 0x80 {
		tag, n := b[0], int(b[0]>>2)
		b = b[1:]
		ok := true
		e.ID = [IDSize]byte{}
		if tag&tagStoredID != 0 {
			if ok = len(b) >= IDSize; ok {
				e.ID = [IDSize]byte(b)
				b = b[IDSize:]
				ok = e.ID != [IDSize]byte{} // a stored zero ID: the general path fails it
			}
		}
		if ok && n > 0 && n <= len(b) {
			e.Type, e.Metadata = b[:n:n], nil
			b = b[n:]
			if tag&tagMetadata != 0 {
				e.Metadata, b, ok = shortBytes(b)
				ok = ok && e.Metadata != nil // empty: the general path fails it
			}
			if ok && last {
				e.Data = nil
				if len(b) > 0 {
					e.Data = b[:len(b):len(b)]
				}
				d.b = b[len(b):]
				return
			}
			if ok {
				if e.Data, b, ok = shortBytes(b); ok {
					d.b = b
					return
				}
			}
		}
	}
	*e = Event{}
	tag := d.tagHead(e, 2)
	if d.err != nil {
		return
	}
	if tag&tagMetadata != 0 {
		if e.Metadata = d.bytes(); d.err == nil && e.Metadata == nil {
			// No metadata is said by the tag; an empty one would give
			// the event a second encoding.
			d.err = fmt.Errorf("%w: empty metadata with a length", ErrMalformed)
			return
		}
	}
	if !last {
		e.Data = d.bytes()
		return
	}
	if d.err == nil && len(d.b) > 0 {
		e.Data = d.b[:len(d.b):len(d.b)]
		d.b = d.b[len(d.b):]
	}
}

// tagHead reads a tagged event's tag, its ID if the tag says one is
// stored, and its type, whose length is the tag shifted right by shift
// (1 in versions 4 and 5, 2 in a compact frame), into e. It returns the
// tag.
func (d *decoder) tagHead(e *Event, shift uint) uint64 {
	tag := d.uvarint()
	if tag&tagStoredID != 0 {
		copy(e.ID[:], d.fixed(IDSize))
		if d.err == nil && e.ID == [IDSize]byte{} {
			// The zero ID stands for one the store assigned; stored, it
			// would give the event a second encoding.
			d.err = fmt.Errorf("%w: stored event ID is zero", ErrMalformed)
		}
	}
	n := tag >> shift
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("type length %d past the end", n)
		return tag
	}
	if n > 0 {
		e.Type = d.b[:n:n]
		d.b = d.b[n:]
	}
	return tag
}

// shortBytes reads a length in a shortest one- or two-byte uvarint and that
// many bytes, capped, off the front of b; a zero length yields nil. ok is
// false if b holds anything else.
func shortBytes(b []byte) (v, rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, b, false
	}
	n, h := int(b[0]), 1
	if n >= 0x80 {
		if len(b) < 2 || b[1] == 0 || b[1] >= 0x80 {
			return nil, b, false
		}
		n, h = n&0x7f|int(b[1])<<7, 2
	}
	if len(b)-h < n {
		return nil, b, false
	}
	if n == 0 {
		return nil, b[h:], true
	}
	return b[h : h+n : h+n], b[h+n:], true
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

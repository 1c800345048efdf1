package eventstore

// The on-disk format.
//
// A store directory holds a LOCK file and a series of segment files named
// for the global position of their first event, zero-padded to 20 digits:
// 00000000000000000000.seg, 00000000000000001734.seg, ... Each segment starts
// with a header, written and fsynced (with the directory) before any frame:
//
//	0       4     5        8                16       20      24
//	+-------+-----+--------+----------------+--------+-------+
//	| magic | ver | key hi | base (u64)     | key lo | crc   |
//	+-------+-----+--------+----------------+--------+-------+
//
//	magic  "ESLG"
//	ver    format version: 6; segments of version 1 (frames without the
//	       end mark), version 2 (payloads masked with splitmix64),
//	       version 3 (events untagged), version 4 (every frame naming
//	       its stream) and version 5 (frames not compact) are still read
//	key    the store's ID key, 56 bits: bits 32-55 in bytes 5-7 and bits
//	       0-31 in bytes 16-19, little-endian. Drawn at random when the
//	       store's first segment of version 4 or later is created, and written into
//	       every segment after it. Zero before version 4
//	base   global position of the segment's first event (equals the name)
//	crc    CRC-32C of bytes 0-19
//
// Frames follow back to back, one per Append call, holding all of its events,
// so that recovery keeps or drops a call whole. A version-6 frame (compact):
//
//	0            4            8            12           16      20
//	+------------+------------+------------+------------+-------+
//	| length u32 | pcrc u32   | rel u32    | delta u32  | hcrc  |
//	+------------+------------+------------+------------+-------+
//	| payload (length bytes, masked):                           |
//	|   flags u8 | timestamp i64 | first version uv             |
//	|   stream field | count uv, unless flags bit 5 | events    |
//	| stream field: stream len uv | stream, or (flags bit 3)    |
//	|   stream number uv                                        |
//	| event: tag uv | id [16], if tag bit 0 is set              |
//	|   type (tag >> 2 bytes) | meta len uv | meta, if tag      |
//	|   bit 1 is set | data len uv, but not in the last | data  |
//	| end mark 0xff, stored unmasked                            |
//	+-----------------------------------------------------------+
//
// A frame of versions 1 to 5 has a header of 24 bytes, holding the
// position whole, and a payload without the compact layout's savings:
//
//	0            4            8                    16           20      24
//	+------------+------------+--------------------+------------+-------+
//	| length u32 | pcrc u32   | position u64       | delta u32  | hcrc  |
//	+------------+------------+--------------------+------------+-------+
//	| payload (length bytes, masked):                                  |
//	|   flags u8 | timestamp i64 | first version uv | stream field     |
//	|   count uv | count × event                                        |
//	| stream field: stream len uv | stream, or (flags bit 3, version 5) |
//	|   stream number uv                                                |
//	| event (versions 4 and 5):                                         |
//	|   tag uv | id [16], if tag bit 0 is set | type (tag >> 1 bytes)   |
//	|   meta len uv | meta | data len uv | data                         |
//	| event (versions 1 to 3):                                          |
//	|   id [16] | type len uv | type | meta len uv | meta | data len uv |
//	|   data                                                            |
//	| end mark 0xff (versions 2 to 5), stored unmasked                  |
//	+-------------------------------------------------------------------+
//
//	length    bits 0-30: payload size, at most record.MaxPayload
//	          (256 MiB); bit 31: the payload is masked with the Weyl
//	          keystream (set in every frame of version 3 to 6, in no
//	          other)
//	pcrc      CRC-32C of the payload
//	position  global position of the frame's first event
//	rel       the same, less the segment's base (version 6)
//	delta     events written since the last completed fsync before this
//	          frame, so that position-delta is the first position a crash
//	          at this point could lose
//	hcrc      CRC-32C of the header's other bytes (0-15 in version 6,
//	          0-19 before), so length is trusted before use
//	masked    the payload is stored XORed with a keystream drawn from
//	          position, so that no frame holds a long run of zero bytes
//	          whatever its events hold; pcrc covers the stored bytes.
//	          Versions 3 to 6: a Weyl sequence (record.MaskWeyl), whose
//	          start is splitmix64 of the position and which adds an odd
//	          constant a word, an addition where splitmix64 costs two
//	          multiplications; versions 1 and 2: splitmix64 (record.Mask)
//	flags     23 in a version-6 segment: 7 as in version 4, and bit 4
//	          (compact); with bit 3 set if the frame names its stream by
//	          number, and bit 5 if it holds one event, whose count it
//	          does not store (without bit 5 the count is 2 or more);
//	          15 or 7 in a version-5 segment: 7 as in version 4, and bit
//	          3 set if the frame names its stream by number; 7 in a
//	          version-4 segment: the payload ends in the end mark,
//	          is masked with the Weyl keystream, and its events are
//	          tagged; 3 in a version-3 segment: it ends in the end mark
//	          and is masked with the Weyl keystream; 1 in a version-2
//	          segment: it ends in the end mark; 0 in a version-1 segment,
//	          which has none; other values, and values that do not match
//	          length's bit 31, are rejected
//	tag       the event type's length shifted left twice (once before
//	          version 6), with bit 0 set if the event's ID follows, and
//	          in version 6 bit 1 set if its metadata does (without it
//	          the event has none; with it, the metadata is not empty).
//	          Without bit 0 the store assigned
//	          the ID, which is not stored but derived when the event is
//	          read: record.AssignedID of the segment's key, the event's
//	          position and the frame's timestamp, a UUID of version 7. A
//	          stored ID is never zero
//	number    a stream's number: the position of its first event, below
//	          the frame's own. The frame holding a stream's version 0
//	          names it; its later frames may name it by number instead
//	          (the writer numbers a stream's frames from the batch after
//	          the one that created it). Readers resolve a number through
//	          the index, which keeps where each stream starts, and so
//	          through the frame there, which names the stream
//	data      in version 6 the frame's last event's data has no length:
//	          it runs to the end mark
//	end mark  record.EndMark, so that no frame ends in a zero byte: the
//	          space after the frames may read as zeros (below), and a
//	          frame whose last byte reads zero was cut short
//	timestamp commit time, Unix nanoseconds
//	uv        unsigned LEB128 varint
//
// All fixed-width integers are little-endian. Positions run on across
// segments without a gap; a stream's versions run on across frames.
//
// Versions 2 and 3 differ only in the keystream, versions 3 and 4 only in
// the key and the events' layout, versions 4 and 5 only in the stream
// field, and versions 5 and 6 only in the header's size and the payload's
// layout, so what this file says of a version-2 segment holds for one of
// version 3 to 6 too (a header's size aside): all end every frame in the
// end mark, and the torn-write rules below rest on no more than any masked
// payload's lack of long runs of zeros, which both keystreams give. A
// writable store whose last segment is of an earlier version seals it at
// its first append and appends to a new segment of version 6 (or, if the
// segment holds no frame, rewrites its header as version 6's), so that it
// writes frames of version 6 only. A read-only store that fails to read
// a segment's first frame reads the segment's header again, in case a
// writer rewrote it, and its frame headers' size with it, since it was
// read (segment.rereadFirst).
//
// The active segment, if of the current version, has its space allocated
// up to the size at which the log rolls over (vfs.File.Allocate) when it
// is created, opened, or has its header rewritten at the first append, so
// that appends write into space the file already has and an fdatasync
// after them records no new size; one of an earlier version, which gets
// no frame, is left as it is. Past its frames it reads as zeros. Rolling
// over and Close cut the file to its frames; after a crash the zeros are
// still there, and Open takes them for where the frames end.
//
// Beside a segment may lie its index file, 00000000000000001734.idx, which
// lists its frames so that Open need not read them. The indexer goroutine
// writes it once the segment is sealed (synced and rolled over from), and
// Close writes the active segment's over the frames it has synced:
//
//	0       4     5       8          16         24          28          32     36     40
//	+-------+-----+-------+----------+----------+-----------+-----------+------+------+
//	| magic | ver | rsvd  | base u64 | end u64  | frames u32| names u32 | lcrc | rsvd |
//	+-------+-----+-------+----------+----------+-----------+-----------+------+------+
//	| names × (len uv | stream name | first version uv)                           |
//	| frames × (kind uv | count uv, if kind's bit 1 is clear | offset uv)       |
//	| fingerprints: u32 per event of each frame whose kind's bit 0 is clear,     |
//	|   in position order                                                        |
//	| crc u32                                                                    |
//	+----------------------------------------------------------------------------+
//
//	magic   "ESIX"
//	ver     5 (record.IndexVersion). Version 4, which listed each frame
//	        as head uv (count<<1 | bit 0 as kind's) | offset delta uv |
//	        name uv, is still read and trusted as version 5 is; version 3,
//	        which listed no first version with the names, every frame's
//	        count, offset delta, name and first version, and every event's
//	        fingerprint, is still used for a sealed segment it covers
//	        whole; a segment that may be appended to, or that it covers in
//	        part, is read instead and indexed again in version 5
//	base    the segment's base
//	end     bytes of the segment the index covers: the end of its last frame
//	lcrc    hcrc of the last frame listed, binding the index to that frame
//	first   the stream's version of its first event in the segment; each
//	        frame of it continues from the one before
//	kind    the frame's name (index into the names, each stream listed
//	        once, by a frame) shifted left twice; bit 1 set if the frame
//	        holds one event, and no count follows; bit 0 set if the store
//	        assigned every one of its events its ID: their fingerprints
//	        are not listed
//	count   the frame's event count, at least 2; there only when kind's
//	        bit 1 is clear
//	offset  zigzag ((d << 1) ^ (d >> 63)) of d, the frame's offset delta
//	        (from the previous frame's offset; the first's, from 24) less
//	        the previous frame's delta (0 before the first): one byte for
//	        a frame within 63 bytes of the size of the one before
//	print   a 32-bit digest of the event's ID, for idempotent retries; 0
//	        for an ID the store assigned, which a retry finds by the
//	        position it was derived from (record.AssignedPosition)
//	crc     CRC-32C of every byte before it
//
// An index file is only ever a shortcut: Open uses one only if it passes its
// checksum, names this segment, covers no more than the segment holds, ends
// with a frame whose position, size and hcrc match the segment's frame at
// that offset, and continues every stream's versions; otherwise it logs why
// and reads the segment. Frames an index lists are not read by Open, so a
// bit flipped in them after they were indexed is reported by the first read
// of them (every read checks both checksums), not by Open.
//
// Recovery, run by Open before the writer starts, reads each segment from
// where its index file stops (from its header without one). A frame whose
// flags do not match its segment's version is corrupt. In a version-2
// segment, a bad frame at offset X with nothing but zeros from X to the end
// of the file is where the segment's frames end: space allocated ahead,
// never written (a writable Open cuts a sealed segment there again).
// Otherwise:
//
//   - Every segment but the last must decode whole: a segment is synced
//     before the next one is created. A bad frame there, a missing segment,
//     or a position or stream version out of sequence fails Open with a
//     *CorruptionError, and nothing is changed. (A sealed segment with
//     zeros after its frames, whose cut a crash undid, is whole; one whose
//     last frames were lost to zeros is found out by the next segment's
//     base.)
//   - In the last segment, a bad frame at offset X, holding position P, is a
//     torn write (a crash before the fsync that would have made it durable)
//     when both hold:
//     1. It bears the marks of one. In a version-2 segment the end of what
//     was written is the file's last non-zero byte: past it lie zeros,
//     allocated ahead or never reached by the write. (A version-1 segment,
//     never allocated ahead, keeps the rules it was written under: the end
//     of the file is the end of what was written, and the sector check
//     runs to the end of the sector within the file.) The marks: its header is cut off by the
//     end of what was written; its header is sound but the frame runs past
//     the end of the file, or more than 16 bytes past the end of what was
//     written (a masked payload ends in fewer zeros); in a version-2 segment, its header is sound and its last
//     byte, the end mark, reads zero (a write torn in the frame's last
//     sector lost the rest of that sector); or a 512-byte sector it touches
//     ends, within the frame (within what was written, when its header
//     fails its checksum), in 16 or more zero bytes, or holds fewer than 16
//     of the frame's bytes and they are all zero (a sector written in part
//     or not at all: no header holds such a run, and masked payloads hold
//     none but by a 2^-128 chance, 2^-64 at worst in versions 3 to 6 (see
//     record.MaskWeyl)). A sector holding bytes of a header that passes
//     its checksum was written; one holding only a header's first 1 to 3
//     bytes, its length's lowest, which may be zero as written, counts only
//     if other values of them would make the header pass its checksum
//     (frameReader.leadMayBeLost). A header that fails its checksum is
//     never trusted for the frame's length. Bytes past the frame are never
//     looked at: they are another frame's, or zeros allocated ahead, which
//     read the same whether or not the frame reached the disk.
//     2. No valid frame after X has position-delta > P. Such a frame was
//     written after an fsync that covered X, so X was once durable and
//     has been damaged since. Frames after X with position-delta <= P were
//     written since the same fsync as X, so the crash may have torn them
//     with it; they go with it.
//     A torn tail is truncated at X, fsynced, logged and counted in
//     Stats.TornBytes; anything else is a *CorruptionError.
//   - A last segment no longer than a segment header, with a bad header, was
//     being created, or having its header rewritten by the first append to
//     an empty older segment, when the process stopped: it holds no frame,
//     and is removed. A longer one with a bad header is corrupt.
//
// So a bit flip anywhere in the log is reported as corruption, whatever the
// events hold (by Open, or in indexed frames by the read that meets it),
// but for one that clears the one set bit of a frame's first bytes alone in
// a sector, which reads as that sector's loss; and a torn write is
// repaired, whichever of its sectors reached the disk. An
// index file never covers a byte that was not synced before it was written,
// so a torn tail always lies past it.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/go-eventstore/eventstore/internal/record"
	"github.com/go-eventstore/eventstore/internal/vfs"
)

const (
	segmentSuffix = ".seg"
	indexSuffix   = ".idx"
	lockName      = "LOCK"
	sectorSize    = 512
	// A sequential scan reads firstReadChunk bytes per system call at first,
	// doubling up to readChunk, so short reads stay cheap and long ones
	// make few calls.
	firstReadChunk = 64 << 10
	readChunk      = 1 << 20
	// tornZeroRun is how many zero bytes must end a sector for it to count
	// as partly written: more than the longest zero run a frame header and
	// payload prefix can hold (11 bytes: position's high bytes and delta).
	tornZeroRun = 16 // the segment header's longest legitimate run is 15
)

// segment is one segment file. base and file never change once the segment
// is listed; size is the writer's own count of bytes written.
type segment struct {
	base uint64
	path string
	file vfs.File
	size int64 // bytes written; touched only by the writer goroutine (and Open)
	// zeroed is how far the segment is known to be written: where the
	// frames ended when its space was reserved ahead, then where the zeros
	// eventLog.writeZeros writes over that space end, and the segment's size
	// once the frames reach it. 0 where no space is reserved. Touched as
	// size is.
	zeroed int64
	// version is the segment's format version, from its header: 1 to 6,
	// and record.Version for every segment this build creates. From
	// version 2 its frames all end in record.EndMark, and only such a
	// segment has space allocated ahead (see eventLog.allocate); from
	// version 3 they are masked with record.MaskWeyl; from version 4 an
	// ID the store assigned is not stored, but derived from key; from
	// version 5 a frame may name its stream by number; from version 6
	// frames are compact, with smaller headers (layout). Set when
	// the segment is created or opened, and changed, before any frame of
	// the segment is published, by the writer's eventLog.upgradeEmpty and
	// a read-only store's segment.rereadHeader.
	version uint8
	// key is the store's ID key, from a version-4 header (zero before
	// version 4), which record.AssignedID derives assigned IDs from; every
	// reader of the segment's frames sets record.Frame.Key to it. Set
	// with version.
	key uint64

	// indexed is how many bytes of the segment its index file covers, 0
	// without one. Set by Open, then touched only by the indexer goroutine,
	// and by Close once that has stopped.
	indexed int64

	// Guarded by readIndex.mu: what readers may see of the segment.
	frames []frameRef // one per committed frame, in file order
	end    int64      // end of the last committed frame
	// owners holds each frame's stream while the segment has no index file
	// covering it whole: what the indexer needs to write one.
	owners []*streamIndex
}

// rereadHeader reads s's header again, for its first frame, which may not
// be of the version read before: a writing store rewrites the header of an
// empty last segment of an earlier version, and syncs it, before it writes
// that segment's first frame (eventLog.upgradeEmpty). It takes a header
// naming the same base and a later version, and leaves s as it was
// otherwise, a header it cannot read included; a version later than this
// release reads is ErrNewerFormat. The caller
// publishes no frame of s before this, so no reader has used its key.
func (s *segment) rereadHeader() error {
	var hb [record.SegmentHeaderSize]byte
	if _, err := s.file.ReadAt(hb[:], 0); err != nil {
		return nil
	}
	h, err := record.DecodeSegmentHeader(hb[:])
	if errors.Is(err, record.ErrNewerVersion) {
		return newerFormatError(s.path, err)
	}
	if err != nil || h.Base != s.base || h.Version <= s.version {
		return nil
	}
	s.version, s.key = h.Version, h.Key
	return nil
}

// fitFrame checks that f, read at off in s, is of the kind s holds
// (frameFits), and returns the *CorruptionError if not. A read-only store
// (reread) may have read the header of an empty older segment just before
// a writer's first append rewrote it: at the segment's first frame, before
// any frame of it is published, it reads the header again. It does so
// even if the frame fits, as a version-5 frame naming its stream fits
// version 4 too, while the frames after it may not, and whatever the
// version, as a later release may have rewritten a header of this one's
// (ErrNewerFormat); a frame written after the new header, once read, makes
// the new header readable too.
func (s *segment) fitFrame(f *record.Frame, off int64, reread bool) error {
	if reread && off == record.SegmentHeaderSize {
		if err := s.rereadHeader(); err != nil {
			return err
		}
	}
	if frameFits(f, s.version) {
		return nil
	}
	return &CorruptionError{Path: s.path, Offset: off, Reason: frameMisfit}
}

// layout returns what decoding the segment's frame headers takes of its
// header: its base and version, and its key.
func (s *segment) layout() record.SegmentHeader {
	return record.SegmentHeader{Base: s.base, Version: s.version, Key: s.key}
}

// rereadFirst is for a read-only store whose read of a segment's frame at
// off failed: at the segment's first frame, the header it read may have
// been rewritten since, to a version whose frame headers differ
// (eventLog.upgradeEmpty syncs the new header before that frame is
// written, so a header read after the frame's bytes is the one they were
// written under). It reads the header again and reports whether the
// version changed, r ready to read the frame again; a header of a later
// release is ErrNewerFormat.
func (r *frameReader) rereadFirst(s *segment, off int64) (bool, error) {
	if off != record.SegmentHeaderSize {
		return false, nil
	}
	v := s.version
	if err := s.rereadHeader(); err != nil || s.version == v {
		return false, err
	}
	r.lay, r.marked, r.buf = s.layout(), s.marked(), r.buf[:0]
	return true, nil
}

// newerFormatError is the error for a segment whose header err, from
// record.DecodeSegmentHeader, says a later release wrote it.
func newerFormatError(path string, err error) error {
	return fmt.Errorf("%w: %s: %w; this release reads versions 1 to %d", ErrNewerFormat, path, err, record.Version)
}

// marked reports that the segment's frames end in record.EndMark: it is of
// version 2 or later.
func (s *segment) marked() bool { return s.version >= 2 }

// frameFits reports that a frame is of the kind a segment of the given
// version holds: ending in the end mark from version 2 on, masked with
// record.MaskWeyl from version 3 on, its events tagged from version 4 on,
// naming its stream by number only from version 5 on, compact from version
// 6 on (which the segment's version also chose its header by). A frame that does
// not is corrupt, for the reason frameMisfit.
func frameFits(f *record.Frame, version uint8) bool {
	return f.Marked == (version >= 2) && f.Weyl() == (version >= 3) && f.Tagged == (version >= 4) &&
		(!f.Numbered || version >= 5) && f.Compact() == (version >= 6)
}

// frameMisfit is why a frame frameFits refuses is corrupt.
const frameMisfit = "frame flags do not match the segment's format version"

// willNeed has the system read [off, end) of the segment into the page
// cache, ahead of a walk's read of it.
func (s *segment) willNeed(off, end int64) {
	if off >= 0 && off < end {
		_ = vfs.WillNeed(s.file, off, end-off) // only ever costs time if it fails
	}
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentSuffix) }

// indexPath returns the path of the index file of the segment at path.
func indexPath(segPath string) string {
	return strings.TrimSuffix(segPath, segmentSuffix) + indexSuffix
}

// parseSegmentName returns the base position a segment file name encodes.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	return base, err == nil
}

// eventLog is the append-only, file-backed log: an ordered list of segments,
// the last of them open for appending. It has no goroutines or channels of its
// own. After openLog returns, one goroutine at a time (the writer) calls
// write, sync and roll; segment files are read concurrently through
// segment.ReadAt, which needs no lock of theirs.
type eventLog struct {
	dir         string
	fs          vfs.FS
	logger      *slog.Logger
	lock        io.Closer
	segmentSize int64

	readOnly bool // opened by a read-only Store: no lock, no change to any file

	// zeroAhead makes write write zeros ahead of the frames (see writeZeros):
	// set under SyncAlways, whose every batch an fdatasync follows. Set by
	// Open before the writer starts.
	zeroAhead bool

	// Touched only by the writer goroutine (a read-only Store's follower),
	// and by Open and Close when it is not running.
	segments []*segment // ascending by base; the last is active

	// ahead reads index files ahead of Open's scan; set by openLog, nil
	// once it returns.
	ahead *indexAhead

	// key is the store's ID key, which every segment this build creates
	// holds: that of the last segment of version 4 or later Open found, or, in a store
	// that has none, one drawn at random by Open. Set by Open.
	key uint64
}

// openFlag is how segment files are opened.
func (l *eventLog) openFlag() int {
	if l.readOnly {
		return os.O_RDONLY
	}
	return os.O_RDWR
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// recovery reports what openLog found and repaired.
type recovery struct {
	next      uint64 // position the next event will get
	tornBytes int64  // bytes of torn tail truncated
	scanned   int64  // bytes of frames read: those no index file covered
}

// recoverer is what openLog rebuilds the index through, in log order.
type recoverer interface {
	// frame adds one valid frame read from the log. It may keep neither f,
	// which the next frame is decoded into, nor anything that aliases its
	// slices.
	frame(seg *segment, offset int64, f *record.Frame) error
	// index adds the frames a segment's index file lists, the segment's
	// first x.End bytes, which are not read. It checks x against what it
	// holds before changing anything: on error nothing was added, and the
	// segment is scanned instead. keepOwners asks it to keep each frame's
	// stream, for an index file still to be written.
	index(seg *segment, x *record.SegmentIndex, keepOwners bool) error
}

// openLog locks dir, opens every segment, checks and recovers them, and
// passes every frame to r: from the segment's index file for the part it
// covers, by reading and checking the frames for the rest. On error it
// leaves nothing open.
//
// Read-only, it takes no lock and changes nothing: it creates neither the
// directory nor a segment, and takes a torn tail, or a segment whose header
// is not written yet, for the end of the log without removing it.
func openLog(dir string, fsys vfs.FS, logger *slog.Logger, segmentSize int64, readOnly bool, r recoverer) (_ *eventLog, rec recovery, err error) {
	var lock io.Closer = nopCloser{}
	if !readOnly {
		if err := makeDir(fsys, dir); err != nil {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, err)
		}
		lock, err = fsys.Lock(filepath.Join(dir, lockName))
		if errors.Is(err, vfs.ErrLocked) {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, ErrLocked)
		}
		if err != nil {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, err)
		}
	}
	l := &eventLog{dir: dir, fs: fsys, logger: logger, lock: lock, segmentSize: segmentSize, readOnly: readOnly, key: newKey()}
	defer func() {
		if err != nil {
			l.close()
		}
	}()

	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, err)
	}
	for _, name := range names {
		base, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := fsys.OpenFile(path, l.openFlag(), 0)
		if err != nil {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", path, err)
		}
		l.segments = append(l.segments, &segment{base: base, path: path, file: f})
	}

	// A last segment no longer than a header may be removed as torn; the
	// one before it then becomes the active one, and its frames' owners are
	// kept for its next index file.
	lastMayGo := false
	if n := len(l.segments); n > 0 {
		size, err := l.segments[n-1].file.Size()
		lastMayGo = err == nil && size <= record.SegmentHeaderSize
	}
	if len(l.segments) > 1 && runtime.GOMAXPROCS(0) > 1 {
		l.ahead = l.readIndexesAhead(l.segments)
		defer func() {
			l.ahead.stop()
			l.ahead = nil
		}()
	}
	scanner := &frameReader{}
	for i := 0; i < len(l.segments); i++ {
		seg := l.segments[i]
		last := i == len(l.segments)-1
		keepOwners := last || (lastMayGo && i == len(l.segments)-2)
		if seg.base > rec.next && readOnly && i > 0 {
			// A directory listing is no snapshot: beside a writer rolling
			// over, it can miss a segment and show a later one. Segments are
			// never removed, so one missed that way is there by name; one
			// that is not is missing, as for a writing store.
			path := filepath.Join(dir, segmentName(rec.next))
			if f, err := fsys.OpenFile(path, os.O_RDONLY, 0); err == nil {
				l.segments = slices.Insert(l.segments, i, &segment{base: rec.next, path: path, file: f})
				i--
				continue
			}
		}
		if seg.base != rec.next {
			return nil, rec, &CorruptionError{Path: seg.path, Reason: fmt.Sprintf("segment starts at position %d, want %d", seg.base, rec.next)}
		}
		torn, err := l.scanSegment(scanner, seg, last, keepOwners, &rec, r)
		if err != nil {
			return nil, rec, err
		}
		if torn {
			// Only the last segment can be torn, so the loop ends here.
			if readOnly {
				seg.file.Close()
			}
			l.segments = l.segments[:i]
			break
		}
	}

	if len(l.segments) == 0 && readOnly {
		return nil, rec, fmt.Errorf("eventstore: open %s read-only: no segment file", dir)
	}
	if n := len(l.segments); n > 0 && !readOnly {
		// After a process crash, frames recovered from the page cache may
		// never have been synced, and the last segment's directory entry may
		// not be durable (a crash inside createSegment): make both durable
		// before anything relies on them, an index file or the next frame's
		// delta.
		seg := l.segments[n-1]
		if seg.version == record.Version {
			// An older segment gets no frame: the first append rolls over
			// from it, or rewrites its header (writer.ensureRoom). Until
			// then a release of its version can still open the store.
			l.allocate(seg)
		}
		if err := seg.file.Sync(); err != nil {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, &StorageError{Op: "fdatasync", Path: seg.path, Err: err})
		}
		if err := fsys.SyncDir(dir); err != nil {
			return nil, rec, fmt.Errorf("eventstore: open %s: %w", dir, &StorageError{Op: "fsync directory", Path: dir, Err: err})
		}
	}
	if len(l.segments) == 0 {
		if _, err := l.createSegment(rec.next); err != nil {
			return nil, rec, err
		}
	}
	return l, rec, nil
}

// makeDir creates dir and any missing parents, durably: each new directory's
// entry is fsynced in its parent, or a crash could take the directory, and
// every segment in it, away.
func makeDir(fsys vfs.FS, dir string) error {
	var missing []string
	for p := filepath.Clean(dir); filepath.Dir(p) != p; p = filepath.Dir(p) {
		if _, err := fsys.ReadDir(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range slices.Backward(missing) {
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// scanSegment checks seg's header, takes the frames its index file lists
// when it has a usable one, then checks every frame after them; it passes
// each frame to rc and advances rec.next past it. keepOwners asks for the
// owners of frames taken from the index file (see recoverer). In the last segment it
// repairs a torn tail; it reports true if the whole segment was torn away
// (its header never reached the disk) and has been removed.
func (l *eventLog) scanSegment(r *frameReader, seg *segment, last, keepOwners bool, rec *recovery, rc recoverer) (removed bool, err error) {
	size, err := seg.file.Size()
	if err != nil {
		return false, fmt.Errorf("eventstore: open %s: %w", seg.path, err)
	}

	// The header is read on its own: when an index file covers the frames,
	// it is all of them that Open reads.
	var hb [record.SegmentHeaderSize]byte
	herr := error(io.ErrUnexpectedEOF)
	if size >= record.SegmentHeaderSize {
		_, herr = seg.file.ReadAt(hb[:], 0)
	}
	if herr == nil {
		var h record.SegmentHeader
		h, herr = record.DecodeSegmentHeader(hb[:])
		if herr == nil && h.Base != seg.base {
			return false, &CorruptionError{Path: seg.path, Reason: fmt.Sprintf("header base %d does not match file name", h.Base)}
		}
		seg.version, seg.key = h.Version, h.Key
		if h.Version >= 4 {
			l.key = h.Key
		}
	}
	if errors.Is(herr, record.ErrNewerVersion) {
		// Sound, but not this release's to read, nor to remove.
		return false, newerFormatError(seg.path, herr)
	}
	if herr != nil {
		// A header is written and fsynced before any frame, so a last
		// segment no longer than its header was being created and holds
		// nothing: removing it loses nothing. A longer one had frames
		// written after its header was durable: its header is damaged.
		if last && size <= record.SegmentHeaderSize {
			if l.readOnly { // perhaps being created this moment
				return true, nil
			}
			return true, l.removeTornSegment(seg, size, rec)
		}
		return false, &CorruptionError{Path: seg.path, Reason: "segment header: " + herr.Error()}
	}

	off := int64(record.SegmentHeaderSize)
	if x := l.readIndexFile(seg, size, keepOwners); x != nil {
		if err := rc.index(seg, x, keepOwners || x.End != size); err != nil {
			l.logger.Warn("eventstore: index file disagrees with the log; scanning the segment",
				"path", indexPath(seg.path), "err", err.Error())
		} else {
			off, seg.indexed = x.End, x.End
			rec.next += x.Events()
		}
	}
	if err := r.readSegment(seg.file, seg.layout(), size, off, last); err != nil {
		return false, fmt.Errorf("eventstore: open %s: %w", seg.path, err)
	}
	// f is one Frame for this segment's scan, decoded into frame after frame:
	// rc.frame's pointer to it escapes, and a Frame a frame would cost an
	// allocation each.
	var f record.Frame
	rec.scanned += max(0, r.limit-off)
	for off < r.limit {
		var ferr error
		f, ferr = r.frame(off, f.Events) // its events slice too is reused
		if ferr != nil && l.readOnly {
			if again, err := r.rereadFirst(seg, off); err != nil {
				return false, err
			} else if again {
				f, ferr = r.frame(off, f.Events)
			}
		}
		if ferr == nil && f.Position != rec.next {
			return false, &CorruptionError{Path: seg.path, Offset: off, Reason: fmt.Sprintf("frame position %d, want %d", f.Position, rec.next)}
		}
		if ferr == nil {
			if err := seg.fitFrame(&f, off, l.readOnly); err != nil {
				return false, err
			}
		}
		f.Key = seg.key
		if ferr != nil {
			if unwritten, err := r.unwrittenFrom(off); err != nil {
				return false, fmt.Errorf("eventstore: open %s: %w", seg.path, err)
			} else if unwritten {
				// Space allocated ahead: the segment's frames end here. A
				// sealed segment whose cut a crash undid is cut again.
				if !last && !l.readOnly {
					seg.size = off
					l.trimSegment(seg)
				}
				break
			}
		}
		if ferr != nil {
			if !last {
				return false, &CorruptionError{Path: seg.path, Offset: off, Reason: ferr.Error()}
			}
			return false, l.repairTail(r, seg, off, ferr, rec)
		}
		if err := rc.frame(seg, off, &f); err != nil {
			return false, &CorruptionError{Path: seg.path, Offset: off, Reason: err.Error()}
		}
		rec.next += uint64(len(f.Events))
		off += f.FrameSize()
	}
	seg.size = off
	return false, nil
}

// repairTail decides whether the bad frame at off in the last segment is a
// torn write or corruption, and truncates it if torn.
func (l *eventLog) repairTail(r *frameReader, seg *segment, off int64, cause error, rec *recovery) error {
	if torn, later := r.tornTail(off, rec.next); !torn {
		reason := cause.Error()
		if later >= 0 {
			reason = fmt.Sprintf("%v, and a later write is intact at offset %d", cause, later)
		}
		return &CorruptionError{Path: seg.path, Offset: off, Reason: reason}
	}
	if l.readOnly {
		// Perhaps a write in progress: the log ends here for now.
		seg.size = off
		return nil
	}
	if err := seg.file.Truncate(off); err != nil {
		return fmt.Errorf("eventstore: truncate torn tail of %s: %w", seg.path, err)
	}
	if err := seg.file.Sync(); err != nil {
		return fmt.Errorf("eventstore: truncate torn tail of %s: %w", seg.path, err)
	}
	dropped := r.limit - off
	rec.tornBytes += dropped
	seg.size = off
	l.logger.Warn("eventstore: truncated torn write at end of log",
		"segment", seg.path, "offset", off, "bytes", dropped, "cause", cause.Error())
	return nil
}

// removeTornSegment deletes a last segment whose header never reached disk.
func (l *eventLog) removeTornSegment(seg *segment, size int64, rec *recovery) error {
	if err := seg.file.Close(); err != nil {
		return fmt.Errorf("eventstore: remove torn segment %s: %w", seg.path, err)
	}
	seg.file = nil
	if err := l.fs.Remove(seg.path); err != nil {
		return fmt.Errorf("eventstore: remove torn segment %s: %w", seg.path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("eventstore: remove torn segment %s: %w", seg.path, err)
	}
	rec.tornBytes += size
	l.logger.Warn("eventstore: removed segment whose header was torn", "segment", seg.path, "bytes", size)
	return nil
}

// createSegment creates a segment starting at base and makes it the active
// one. Its header and directory entry are durable before it returns, so a
// crash can never leave frames in a segment recovery cannot find.
func (l *eventLog) createSegment(base uint64) (*segment, error) {
	path := filepath.Join(l.dir, segmentName(base))
	f, err := l.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, &StorageError{Op: "create", Path: path, Err: err}
	}
	seg := &segment{base: base, path: path, file: f, version: record.Version, key: l.key}
	fail := func(op string, err error) (*segment, error) {
		f.Close()
		return nil, &StorageError{Op: op, Path: path, Err: err}
	}
	hdr := record.AppendSegmentHeader(nil, base, l.key)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fdatasync", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fail("fsync directory", err)
	}
	seg.size = int64(len(hdr))
	l.allocate(seg) // only once the header is durable: see scanSegment
	l.segments = append(l.segments, seg)
	return seg, nil
}

// upgradeEmpty makes seg, the active segment, of an earlier version and
// holding no frame, a segment of the current version, for the writer's
// first append: the writer appends frames of the current version only
// (see writer.ensureRoom). It cuts the file to its header and syncs that
// first, so that a torn write of the new header lies in a file no longer
// than a header, which Open removes as one being created (it holds no
// frame); then it writes and syncs the new header, and allocates the
// segment ahead as createSegment does. A crash before the header is
// durable leaves the older header, which the next first append rewrites.
// It returns how many fdatasyncs it called.
func (l *eventLog) upgradeEmpty(seg *segment) (syncs int, err error) {
	if err := seg.file.Truncate(record.SegmentHeaderSize); err != nil {
		return syncs, &StorageError{Op: "truncate", Path: seg.path, Err: err}
	}
	syncs++
	if err := seg.file.Sync(); err != nil {
		return syncs, &StorageError{Op: "fdatasync", Path: seg.path, Err: err}
	}
	if _, err := seg.file.WriteAt(record.AppendSegmentHeader(nil, seg.base, l.key), 0); err != nil {
		return syncs, &StorageError{Op: "write", Path: seg.path, Err: err}
	}
	syncs++
	if err := seg.file.Sync(); err != nil {
		return syncs, &StorageError{Op: "fdatasync", Path: seg.path, Err: err}
	}
	seg.version, seg.key = record.Version, l.key
	l.allocate(seg)
	return syncs, nil
}

// newKey draws a store ID key at random: record.KeyBits bits.
func newKey() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails: see crypto/rand.Read
	return binary.LittleEndian.Uint64(b[:]) & (1<<record.KeyBits - 1)
}

// readIndexFile returns seg's index file, decoded, if it has one that can be
// used: whole, for this segment, and covering no more than its size bytes.
// A missing file is the normal case for a segment still being written; any
// other problem is logged and the segment scanned instead, since an index
// file only ever saves reading what the segment itself holds.
//
// A file of index version 3 is used only for a sealed segment it covers
// whole, which is never indexed again: not for one that may be appended to
// (active, set for the last segment and for the one before it when the
// last may be removed as torn). Its fingerprints of IDs the store assigned
// are real ones, where version 4 has assignedPrint: were the index to hold
// them for a segment it writes a file for again, that file would list
// them, against what Verify expects of version 4.
func (l *eventLog) readIndexFile(seg *segment, size int64, active bool) *record.SegmentIndex {
	path := indexPath(seg.path)
	d, ok := l.ahead.take(seg)
	if !ok {
		d.x, d.err = decodeIndexFile(l.fs, path, size)
	}
	x, err := d.x, d.err
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	switch {
	case err != nil:
	case x.Base != seg.base:
		err = fmt.Errorf("index of segment %d", x.Base)
	case x.End > size:
		err = fmt.Errorf("covers %d bytes of a %d-byte segment", x.End, size)
	case len(x.Frames) == 0:
		err = errors.New("lists no frame")
	case x.Version == record.OldestIndexVersion && (active || x.End != size):
		err = fmt.Errorf("index version %d of a segment that may be appended to or that it covers in part, which is indexed again in version %d", x.Version, record.IndexVersion)
	default:
		// The index must end with the very frame the segment holds there.
		lf := x.Frames[len(x.Frames)-1]
		var h record.Header
		var hcrc uint32
		if h, hcrc, err = frameHeader(seg, int64(lf.Offset)); err == nil &&
			(h.Position != x.Base+uint64(lf.Rel) || h.FrameSize() != x.End-int64(lf.Offset) || hcrc != x.LastHeaderCRC) {
			err = fmt.Errorf("its last frame, at offset %d, is not the segment's", lf.Offset)
		}
	}
	if err != nil {
		l.logger.Warn("eventstore: ignoring unusable index file; scanning the segment", "path", path, "err", err.Error())
		return nil
	}
	return x
}

// decodeIndexFile reads and decodes the index file at path, of a segment
// of size bytes; its error wraps fs.ErrNotExist when there is none.
func decodeIndexFile(fsys vfs.FS, path string, size int64) (*record.SegmentIndex, error) {
	b, err := readIndexBytes(fsys, path, size)
	if err != nil {
		return nil, err
	}
	return record.DecodeSegmentIndex(b, size)
}

// indexAhead reads and decodes the index files of the segments Open found,
// in order, on a goroutine of its own, up to indexLookahead segments ahead
// of the scan, so that decoding one index file overlaps with adding the
// one before to the index: the two took about 60 % and 35 % of a clean
// Open. The scan takes each segment's result in turn; it checks the index
// against the segment itself, as for one it reads in place.
//
// Reading ahead, the goroutine may open index files the scan never needs,
// past a segment that fails it: the operations a FaultFS counts during such
// an Open can differ from run to run.
type indexAhead struct {
	segs    []*segment
	results []chan decodedIndex // by segment; each filled once
	slots   chan struct{}       // a token per result being read, or filled and not taken
	quit    chan struct{}       // closed by stop
	done    chan struct{}       // closed when the goroutine returns
	taken   int                 // results taken or passed over; the scan's only
}

// decodedIndex is what decodeIndexFile returned for one segment.
type decodedIndex struct {
	x   *record.SegmentIndex
	err error
}

// indexLookahead bounds what indexAhead holds: the decoded index of a full
// segment takes a few megabytes.
const indexLookahead = 2

// readIndexesAhead starts reading segs' index files ahead of the scan.
func (l *eventLog) readIndexesAhead(segs []*segment) *indexAhead {
	segs = slices.Clone(segs) // the scan may insert into its slice
	a := &indexAhead{
		segs:    segs,
		results: make([]chan decodedIndex, len(segs)),
		slots:   make(chan struct{}, indexLookahead),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range a.results {
		a.results[i] = make(chan decodedIndex, 1)
	}
	// The sizes bound what a damaged file can make the decoder allocate
	// (the scan checks each index against its segment again). They are
	// taken here: the scan may close a segment's file while the goroutine
	// runs.
	sizes, sizeErrs := make([]int64, len(segs)), make([]error, len(segs))
	for i, seg := range segs {
		sizes[i], sizeErrs[i] = seg.file.Size()
	}
	go func() {
		defer close(a.done)
		for i, seg := range segs {
			select {
			case a.slots <- struct{}{}:
			case <-a.quit:
				return
			}
			var x *record.SegmentIndex
			err := sizeErrs[i]
			if err == nil {
				x, err = decodeIndexFile(l.fs, indexPath(seg.path), sizes[i])
			}
			a.results[i] <- decodedIndex{x, err}
		}
	}()
	return a
}

// take returns seg's index file as the goroutine read it; ok is false if
// a is nil, or seg is not one of its segments or was taken or passed over
// already (the scan then reads the file itself). Segments before seg whose
// results were not taken are passed over, so the goroutine never waits for
// them.
func (a *indexAhead) take(seg *segment) (d decodedIndex, ok bool) {
	if a == nil {
		return d, false
	}
	k := slices.Index(a.segs[a.taken:], seg)
	if k < 0 {
		return d, false
	}
	for range k + 1 {
		d = <-a.results[a.taken]
		<-a.slots
		a.taken++
	}
	return d, true
}

// stop ends the goroutine and waits for it.
func (a *indexAhead) stop() {
	close(a.quit)
	<-a.done
}

// writeIndexFile replaces seg's index file with b, durably. A crash while it
// runs leaves a file that fails its checksum, or none, and Open then scans
// the segment instead: never a wrong index.
func (l *eventLog) writeIndexFile(seg *segment, b []byte) error {
	if err := writeSynced(l.fs, indexPath(seg.path), b); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// writeSynced replaces the file at path with b and fsyncs it; the caller
// syncs the directory.
func writeSynced(fsys vfs.FS, path string, b []byte) error {
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// frameHeader reads and decodes the header of the frame at off in seg, and
// returns its checksum too, its last four bytes.
func frameHeader(seg *segment, off int64) (record.Header, uint32, error) {
	lay := seg.layout()
	var hb [record.HeaderSize]byte // the larger of the two sizes
	b := hb[:lay.HeaderSize()]
	if _, err := seg.file.ReadAt(b, off); err != nil {
		return record.Header{}, 0, err
	}
	h, err := lay.DecodeHeader(b)
	return h, binary.LittleEndian.Uint32(b[len(b)-4:]), err
}

// readIndexBytes reads the whole index file at path through fsys, of a
// segment of segSize bytes: one larger than record.MaxIndexSize of that is
// refused unread.
func readIndexBytes(fsys vfs.FS, path string, segSize int64) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > record.MaxIndexSize(segSize) {
		return nil, fmt.Errorf("%w: index file of %d bytes for a %d-byte segment", record.ErrMalformed, size, segSize)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// active returns the segment appends go to.
func (l *eventLog) active() *segment { return l.segments[len(l.segments)-1] }

// Zeros written ahead of the frames (see eventLog.writeZeros): a chunk at a
// time, whenever fewer than zeroLead bytes past a write are zeroed.
const (
	zeroChunk = 256 << 10
	zeroLead  = zeroChunk / 2
)

// zeros is what zero chunks are written from. Never written to, it costs
// no memory: its pages all map the kernel's one zero page.
var zeros [zeroChunk]byte

// write appends whole frames to the active segment, first writing zeros
// ahead of them where writeZeros says so.
func (l *eventLog) write(b []byte) error {
	seg := l.active()
	if err := l.writeZeros(seg, seg.size+int64(len(b))); err != nil {
		return err
	}
	if _, err := seg.file.WriteAt(b, seg.size); err != nil {
		return &StorageError{Op: "write", Path: seg.path, Err: err}
	}
	seg.size += int64(len(b))
	return nil
}

// writeZeros, under zeroAhead, in a segment with space reserved ahead,
// writes zeros over the next chunk of that space when frames ending at end
// come within zeroLead of its end, for the batch's fdatasync to sync with
// the frames. The reserved space reads as zeros already, but ext4 (like
// XFS) keeps it marked unwritten, and the fdatasync of a write reaching
// blocks not yet written must also commit, through the journal, that they
// now are: a chunk of zeros makes that one commit for some thousand
// events, where every batch of more than a few events paid one. On the
// ext4 of the README's benchmarks, it took the fdatasync of a 35 KB batch
// from 350-460 µs to about 230 µs. The price is that each byte of a
// segment is written twice. PostgreSQL fills its new WAL files with zeros
// for the same reason (wal_init_zero, which can be turned off where it
// gains nothing: on copy-on-write file systems).
func (l *eventLog) writeZeros(seg *segment, end int64) error {
	if !l.zeroAhead || seg.zeroed == 0 || seg.zeroed >= l.segmentSize || end+zeroLead <= seg.zeroed {
		return nil
	}
	from := max(seg.zeroed, end)
	to := min(from+zeroChunk, l.segmentSize)
	if from < to {
		if _, err := seg.file.WriteAt(zeros[:to-from], from); err != nil {
			return &StorageError{Op: "write", Path: seg.path, Err: err}
		}
	}
	seg.zeroed = to // the segment's size once the frames reach it
	return nil
}

// sync makes everything written to the active segment durable.
func (l *eventLog) sync() error {
	seg := l.active()
	if err := seg.file.Sync(); err != nil {
		return &StorageError{Op: "fdatasync", Path: seg.path, Err: err}
	}
	return nil
}

// roll seals the active segment, cut to its frames and synced, and starts a
// new one at base. Syncing first keeps the rule recovery relies on: only the
// last segment can be torn.
func (l *eventLog) roll(base uint64) (*segment, error) {
	l.trim()
	if err := l.sync(); err != nil {
		return nil, err
	}
	return l.createSegment(base)
}

// allocate reserves the active segment's space up to the size at which the
// log rolls over, so that appends write into space the file already has,
// and an fdatasync after them need not record a new size: on the ext4 the
// README's benchmarks ran on, that made each one about a third cheaper (how
// much depends on the file system and the device). It is only ever a
// speed-up: where the file system cannot reserve space the file is extended
// with a hole, and a failure (a full disk) is logged, after which appends
// extend the file as before.
func (l *eventLog) allocate(seg *segment) {
	if !seg.marked() || seg.size >= l.segmentSize {
		return // see tornFrame for why only a segment of version 2 or later
	}
	switch err := seg.file.Allocate(l.segmentSize); {
	case err == nil:
		seg.zeroed = seg.size // nothing past the frames is known to be written
	case errors.Is(err, vfs.ErrNotReserved):
		// A hole, which reads as zeros too; zeros written over it would
		// only take its blocks early.
	default:
		l.logger.Warn("eventstore: cannot allocate segment space ahead; appends will extend the file", "path", seg.path, "err", err)
	}
}

// trim cuts the active segment to the frames written to it, giving back
// the space allocated ahead: when it is sealed, and when the store closes.
// It is only ever tidying: if it fails (it is logged), or its new size is
// lost in a crash, Open finds zeros after the frames and ends the segment
// there, as it does after a crash.
func (l *eventLog) trim() { l.trimSegment(l.active()) }

// trimSegment cuts seg to its frames, as trim does.
func (l *eventLog) trimSegment(seg *segment) {
	size, err := seg.file.Size()
	if err == nil && size > seg.size {
		err = seg.file.Truncate(seg.size)
	}
	if err != nil {
		l.logger.Warn("eventstore: cannot give back the space allocated ahead in a segment", "path", seg.path, "err", err)
	}
}

// close closes every segment and releases the lock. It returns the first
// error met.
func (l *eventLog) close() error {
	var first error
	for _, seg := range l.segments {
		if seg.file == nil {
			continue
		}
		if err := seg.file.Close(); err != nil && first == nil {
			first = err
		}
	}
	if err := l.lock.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// frameReader reads frames from a segment file through a read-ahead window,
// so a sequential scan costs one system call per chunk of up to readChunk
// bytes, not two per frame. It is not safe for concurrent use; each reader has its own.
type frameReader struct {
	file   vfs.File
	lay    record.SegmentHeader // the segment's base and version, for its frame headers
	limit  int64                // bytes past limit are never read
	marked bool                 // the segment's frames end in record.EndMark (version 2 or later)
	// written is where what was written to a marked segment ends: no byte
	// from it to the end of the file is non-zero (see writtenEnd). Until
	// known is set, it is limit.
	written int64
	known   bool
	buf     []byte // window of the file starting at bufOff
	bufOff  int64
	chunk   int // next read size: grows from firstReadChunk to readChunk
}

func (r *frameReader) reset(f vfs.File, limit int64, lay record.SegmentHeader) {
	r.file, r.lay, r.limit, r.marked, r.written, r.known = f, lay, limit, false, limit, false
	r.buf, r.bufOff, r.chunk = r.buf[:0], 0, firstReadChunk
}

// readSegment readies r to read the frames of a segment file of size
// bytes from offset from on, its header lay (marked if it is of version 2
// or later). The last
// segment of a version-2 log may end in space allocated ahead and never
// written, which reads as zeros: its frames are read up to tornZeroRun bytes
// past the file's last non-zero byte, the most zeros a written frame can end
// in, and no further. A version-1 segment is never allocated ahead: it keeps
// the rules it was written under, against the end of the file.
func (r *frameReader) readSegment(f vfs.File, lay record.SegmentHeader, size, from int64, last bool) error {
	r.reset(f, size, lay)
	marked := lay.Version >= 2
	r.marked = marked
	if !marked || !last || from >= size {
		return nil
	}
	written, err := writtenEnd(f, size)
	if err != nil {
		return err
	}
	r.limit, r.written, r.known = min(size, written+tornZeroRun), written, true
	return nil
}

// unwrittenFrom reports whether off, where a frame failed to read, is
// where a marked segment's frames end and space allocated ahead begins: no
// byte of the file from off on is non-zero. It reads the file's end to
// find out, once, unless readSegment has. An unmarked segment is never
// allocated ahead.
func (r *frameReader) unwrittenFrom(off int64) (bool, error) {
	if !r.marked {
		return false, nil
	}
	if !r.known {
		size, err := r.file.Size()
		if err != nil {
			return false, err
		}
		if r.written, err = writtenEnd(r.file, size); err != nil {
			return false, err
		}
		r.known = true
	}
	return off >= r.written, nil
}

// writtenEnd returns the offset just past the last non-zero byte among the
// first size bytes of f, or 0 if they are all zero. It reads the file
// backward from size, so it costs what the zeros at its end do: nothing for
// a file that ends in a frame, a read of the unwritten part of a segment
// whose store stopped without closing it.
func writtenEnd(f vfs.File, size int64) (int64, error) {
	buf := make([]byte, min(size, firstReadChunk))
	retries := 0
	for end := size; end > 0; {
		b := buf[:min(int64(len(buf)), end)]
		off := end - int64(len(b))
		if n, err := f.ReadAt(b, off); n < len(b) {
			if err != nil && err != io.EOF {
				return 0, err
			}
			// Cut shorter under a read-only store: a writer rolling over
			// gives back its segment's space. Go on from the new end.
			now, err := f.Size()
			if err != nil {
				return 0, err
			}
			if retries++; retries > 3 {
				return 0, io.ErrUnexpectedEOF
			}
			end = now // shorter, or grown again by a writer opening it
			continue
		}
		if i := lastNonZero(b); i >= 0 {
			return off + int64(i) + 1, nil
		}
		end = off
	}
	return 0, nil
}

// lastNonZero returns the index of the last non-zero byte of b, or -1.
func lastNonZero(b []byte) int {
	i := len(b)
	for ; i >= 8; i -= 8 {
		if binary.LittleEndian.Uint64(b[i-8:]) != 0 {
			break
		}
	}
	for i--; i >= 0 && b[i] == 0; i-- {
	}
	return i
}

// bytes returns the n bytes at off, valid until the next call. It returns
// io.ErrUnexpectedEOF if they run past the limit.
func (r *frameReader) bytes(off int64, n int) ([]byte, error) {
	if n < 0 || off < 0 || off+int64(n) > r.limit {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= r.bufOff && off+int64(n) <= r.bufOff+int64(len(r.buf)) {
		start := off - r.bufOff
		return r.buf[start : start+int64(n)], nil
	}
	want := int64(max(n, r.chunk))
	want = min(want, r.limit-off)
	r.chunk = min(2*r.chunk, readChunk)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	got, err := r.file.ReadAt(r.buf, off)
	r.bufOff = off
	r.buf = r.buf[:got]
	if got < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.buf[:n], nil
}

// frame reads, verifies and decodes the frame at off. The frame's slices
// alias the reader's window; events is reused for the frame's events.
func (r *frameReader) frame(off int64, events []record.Event) (record.Frame, error) {
	f := record.Frame{Events: events}
	if err := r.frameInto(&f, off); err != nil {
		return record.Frame{}, err
	}
	return f, nil
}

// frameInto is frame decoding into *f, its events appended to
// f.Events[:0]: a reader going frame by frame copies no Frame. On an error
// *f holds nothing to use.
func (r *frameReader) frameInto(f *record.Frame, off int64) error {
	hsize := r.lay.HeaderSize()
	hb, err := r.bytes(off, hsize)
	if err != nil {
		return err
	}
	h, err := r.lay.DecodeHeader(hb)
	if err != nil {
		return err
	}
	payload, err := r.bytes(off+int64(hsize), int(h.Length))
	if err != nil {
		return err
	}
	err = record.VerifyPayload(h, payload)
	if err == nil {
		err = f.DecodeVerified(h, payload)
	}
	if err != nil {
		// The payload may have been unmasked in the window before it failed
		// to decode: drop the window so later reads see the file's bytes.
		r.buf = r.buf[:0]
	}
	return err
}

// tornTail reports whether the bad frame at off, holding position next, is
// a torn write: it bears the marks of one, and no later write shows that an
// fsync covered it. later is the offset of such a write, or -1.
func (r *frameReader) tornTail(off int64, next uint64) (torn bool, later int64) {
	if !r.tornFrame(off) {
		return false, -1
	}
	// Look for a later write after the bad frame: past its end when its
	// header is sound (its payload is the caller's bytes, which may hold
	// anything), else anywhere after its start.
	from := off + 1
	if hb, err := r.bytes(off, r.lay.HeaderSize()); err == nil {
		if h, err := r.lay.DecodeHeader(hb); err == nil {
			from = off + h.FrameSize()
		}
	}
	if at, ok := r.findLaterWrite(off, from, next); ok {
		return false, at
	}
	return true, -1
}

// tornFrame reports whether the bad frame at off bears the marks of a write
// that did not reach the disk whole: its header is cut off by the end of
// what was written to the file; its header is sound but the frame runs past
// the end of the file; in a version-2 segment, its header is sound and its
// end mark reads zero; or a 512-byte sector it touches was left unwritten. A
// header that fails its checksum is never taken at its word: only its own
// bytes, and the rest of their sector, are looked at.
//
// The end of what was written is the file's last non-zero byte (r.written):
// zeros after it may be space the store allocated ahead. A header never ends
// in a zero byte but by a 2^-8 chance in its checksum, and then its payload
// follows; a frame's last bytes are masked, so it ends in fewer than
// tornZeroRun zeros (r.limit allows for those).
//
// Zeros allocated after a frame leave one tear that only the end mark
// shows: a write torn in the frame's last sector that lost fewer than
// tornZeroRun of the frame's bytes (the rest of the sector lay past the
// frame). Without the mark that frame could not be told from one whose
// last bytes decayed; with it, the lost mark is the sign, and no bit flip
// makes a mark read zero. So only segments of version 2 or later are
// allocated ahead.
func (r *frameReader) tornFrame(off int64) bool {
	hsize := int64(r.lay.HeaderSize())
	if off+hsize > r.written {
		return true
	}
	hb, err := r.bytes(off, int(hsize))
	if err != nil {
		return true
	}
	end := min((off+hsize+sectorSize-1)/sectorSize*sectorSize, r.written)
	sound := off // a sound header's bytes were written: they are its own
	if h, err := r.lay.DecodeHeader(hb); err == nil {
		end, sound = off+h.FrameSize(), off+hsize
		if end > r.limit {
			return true
		}
		if r.marked {
			// A write torn in the frame's last sector lost the rest of that
			// sector, the end mark with it.
			if b, err := r.bytes(end-1, 1); err == nil && b[0] == 0 {
				return true
			}
		}
	}
	return r.unwrittenSector(off, end, sound)
}

// unwrittenSector reports whether a 512-byte sector touched by [off, end)
// ends, within [off, end), in a run of at least tornZeroRun zero bytes: the
// mark of a sector written only in part, or not at all. A written frame
// holds no such run: the longest in a header is 11 bytes (8 in a compact
// one), before the header
// checksum, and payloads are masked. Where less than tornZeroRun bytes of
// the sector lie in [off, end) (the frame starts just before the sector's
// end, or ends just after its start), those bytes all being zero is the mark
// instead. In a version-2 segment, bytes past end are not looked at: they
// are another frame's, or space allocated ahead, which reads as zeros
// whether or not the frame before it reached the disk (its end mark shows
// a tear in its last sector; see tornFrame).
//
// The bytes before sound are a header that passed its checksum: they were
// written as they read, so a sector holding any of them was written, and
// their being zero is no mark (a frame starting a byte before a sector's
// end may have a header whose first byte, its length's lowest, is zero).
func (r *frameReader) unwrittenSector(off, end, sound int64) bool {
	bound := end
	if !r.marked {
		// A version-1 segment is never allocated ahead, and its frames
		// have no end mark: as it was written, the rest of the sector
		// within the file shows a tear in the frame's last sector.
		bound = r.limit
	}
	for sector := off / sectorSize * sectorSize; sector < end; sector += sectorSize {
		from, to := max(sector, off), min(sector+sectorSize, bound)
		b, err := r.bytes(from, int(to-from))
		if err != nil {
			return false
		}
		zeros := 0
		for zeros < len(b) && b[len(b)-1-zeros] == 0 {
			zeros++
		}
		if zeros >= tornZeroRun {
			return true
		}
		if zeros == len(b) && zeros > 0 && from >= sound {
			// The frame's first bytes alone in a sector, all zero, fewer
			// than a length field: a frame's length may hold such bytes
			// as written. Their sector's loss explains a header failing
			// its checksum only if other values of them would pass it.
			if from == off && len(b) <= maxLostLead && !r.leadMayBeLost(off, len(b)) {
				continue
			}
			return true
		}
	}
	return false
}

// maxLostLead is the most bytes at a frame's start, alone in a sector and
// all zero, that unwrittenSector checks against the header's checksum
// (leadMayBeLost): a length's low three bytes may be zero as written, but
// not all four, as no payload is empty.
const maxLostLead = 3

// leadMayBeLost reports whether the header at off, which fails to decode
// and whose first k bytes (k <= maxLostLead) read zero, would pass its checksum with
// other values of those k bytes: so the sector that held them may have
// been lost, the rest of the header written. Otherwise the header failed
// for some other reason, a flipped bit or a tear elsewhere, which the other
// sectors show if it is a tear.
//
// The checksum is affine in the bytes it covers: flipping a set of bits
// changes it by the XOR of what each bit alone changes it by. So the
// header passes with some nonzero value of its first k bytes exactly when
// the change its checksum needs lies in the span of what their 8k bits
// change it by, which a basis of that span answers in 8k steps. (The
// change is nonzero, so a value that makes it is nonzero; a CRC-32 tells
// every change of up to 32 bits in a row apart from none, so the 8k bits'
// changes are independent, and at most one value makes it.) Where the change lies in the span, the header holds
// an assignment of them that passes, which a lost sector would explain; a
// bit flip that zeroed those bytes from a value with one set bit cannot be
// told from that loss, and damage of several bits elsewhere in the header
// lands in the span by a 2^(8k-32) chance. A header that passes its
// checksum as it reads, and failed to decode for its fields, was written
// so. A read error answers no: the sector is then not taken for lost.
func (r *frameReader) leadMayBeLost(off int64, k int) bool {
	hsize := r.lay.HeaderSize()
	hb, err := r.bytes(off, hsize)
	if err != nil {
		return false
	}
	n := hsize - 4 // what hcrc, the header's last field, covers
	need := binary.LittleEndian.Uint32(hb[n:]) ^ record.Checksum(hb[:n])
	if need == 0 {
		return false // it passes as it reads, and failed for its fields
	}
	var zero, d [record.HeaderSize]byte
	base := record.Checksum(zero[:n])
	var basis [32]uint32 // basis[b]: a vector of the span whose top bit is b
	for i := range 8 * k {
		d[i/8] = 1 << (i % 8)
		v := record.Checksum(d[:n]) ^ base
		d[i/8] = 0
		for b := 31; b >= 0 && v != 0; b-- {
			if v>>b&1 == 0 {
				continue
			}
			if basis[b] == 0 {
				basis[b] = v
				break
			}
			v ^= basis[b]
		}
	}
	for b := 31; b >= 0 && need != 0; b-- {
		if need>>b&1 != 0 && basis[b] != 0 {
			need ^= basis[b]
		}
	}
	return need == 0
}

// findLaterWrite looks, from offset from on, for a valid frame written after
// an fsync that covered position p, the first position of the bad frame at
// offset bad: one whose position-delta is above p. It returns the frame's
// offset. A candidate must also have a position the bytes since bad could
// reach (each event takes at least record.MinEventSize bytes), so stray
// frame-like bytes seldom pass, and cost little when they do.
func (r *frameReader) findLaterWrite(bad, from int64, p uint64) (int64, bool) {
	hsize := r.lay.HeaderSize()
	for off := from; off+int64(hsize) <= r.limit; off++ {
		hb, err := r.bytes(off, hsize)
		if err != nil {
			return 0, false
		}
		h, err := r.lay.DecodeHeader(hb)
		if err != nil || h.SyncStart() <= p || h.Position-p > uint64(off-bad)/record.MinEventSize {
			continue
		}
		if _, err := r.frame(off, nil); err == nil {
			return off, true
		}
	}
	return 0, false
}

// logPart is a segment to copy, up to end: the end of its last frame below
// the head a backup noted.
type logPart struct {
	seg *segment
	end int64
}

// copyLog copies parts, and the index files their segments have, into dir,
// which must be missing or empty, and makes the copies durable. It reads
// through the segments' open files, below ends the writer never rewrites,
// so it needs no lock.
func copyLog(ctx context.Context, fsys vfs.FS, parts []logPart, dir string) (int64, error) {
	if names, err := fsys.ReadDir(dir); err == nil && len(names) > 0 {
		return 0, fmt.Errorf("%w: %s", ErrBackupDirNotEmpty, dir)
	}
	if err := makeDir(fsys, dir); err != nil {
		return 0, fmt.Errorf("eventstore: backup to %s: %w", dir, err)
	}
	buf := make([]byte, readChunk)
	var total int64
	for _, p := range parts {
		dst := filepath.Join(dir, filepath.Base(p.seg.path))
		n, err := copyFile(ctx, fsys, p.seg.file, p.end, dst, buf)
		total += n
		if err != nil {
			return total, err
		}
		// An index file goes along when it is whole and covers no frame
		// past the snapshot; Open checks it against the copy all the same.
		if b, err := readIndexBytes(fsys, indexPath(p.seg.path), p.end); err == nil {
			if x, err := record.DecodeSegmentIndex(b, p.end); err != nil || x.Base != p.seg.base {
				continue // being rewritten, or covering frames past the snapshot
			}
			if err := writeSynced(fsys, indexPath(dst), b); err != nil {
				return total, fmt.Errorf("eventstore: backup to %s: %w", dir, err)
			}
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return total, fmt.Errorf("eventstore: backup to %s: %w", dir, err)
	}
	return total, nil
}

// copyFile copies the first n bytes of src into a new file at dst, and
// fsyncs it.
func copyFile(ctx context.Context, fsys vfs.FS, src vfs.File, n int64, dst string, buf []byte) (int64, error) {
	f, err := fsys.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("eventstore: backup: %w", err)
	}
	defer f.Close()
	var off int64
	for off < n {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		chunk := buf[:min(int64(len(buf)), n-off)]
		if got, err := src.ReadAt(chunk, off); got < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return off, fmt.Errorf("eventstore: backup: read at offset %d: %w", off, err)
		}
		if _, err := f.WriteAt(chunk, off); err != nil {
			return off, fmt.Errorf("eventstore: backup: %w", err)
		}
		off += int64(len(chunk))
	}
	if err := f.Sync(); err != nil {
		return off, fmt.Errorf("eventstore: backup: %w", err)
	}
	return off, f.Close()
}

// verifyLog is Verify over fsys.
func verifyLog(ctx context.Context, fsys vfs.FS, dir string, progress func(done, total int64)) (VerifyReport, error) {
	var rep VerifyReport
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return rep, fmt.Errorf("eventstore: verify %s: %w", dir, err)
	}
	// Hold the lock, so that no Store changes the files under the check;
	// a directory without a LOCK file was never opened by one.
	if slices.Contains(names, lockName) {
		lock, err := fsys.Lock(filepath.Join(dir, lockName))
		if errors.Is(err, vfs.ErrLocked) {
			return rep, fmt.Errorf("eventstore: verify %s: %w", dir, ErrLocked)
		}
		if err != nil {
			return rep, fmt.Errorf("eventstore: verify %s: %w", dir, err)
		}
		defer lock.Close()
	}
	v := &verifier{fsys: fsys, rep: &rep, versions: map[string]uint64{}, starts: map[uint64]string{}, progress: progress}
	var segs []*segment
	for _, name := range names {
		if base, ok := parseSegmentName(name); ok {
			segs = append(segs, &segment{base: base, path: filepath.Join(dir, name)})
		}
	}
	if len(segs) == 0 {
		return rep, fmt.Errorf("eventstore: verify %s: no segment file", dir)
	}
	sizes := make([]int64, len(segs))
	for i, seg := range segs {
		f, err := fsys.OpenFile(seg.path, os.O_RDONLY, 0)
		if err != nil {
			return rep, fmt.Errorf("eventstore: verify: %w", err)
		}
		defer f.Close()
		seg.file = f
		if sizes[i], err = f.Size(); err != nil {
			return rep, fmt.Errorf("eventstore: verify: %w", err)
		}
		v.total += sizes[i]
	}
	for i, seg := range segs {
		if err := v.segment(ctx, seg, sizes[i], i == len(segs)-1); err != nil {
			return rep, err
		}
	}
	rep.Streams = len(v.versions)
	return rep, nil
}

// verifier carries Verify's state from one segment to the next.
type verifier struct {
	fsys     vfs.FS
	rep      *VerifyReport
	next     uint64            // position the next frame should start at
	versions map[string]uint64 // each stream's next version
	starts   map[uint64]string // each stream's name by the position of its first event
	// skipped is set once frames were not all read: a segment's frames
	// past damage, or a segment missing. The streams they created and the
	// versions they held are unknown, so from there a frame's version is
	// not checked against its stream's before, and a number naming none
	// of the streams read is reported once (noted), not at every frame.
	skipped, noted bool
	progress       func(done, total int64)
	total          int64
	reader         frameReader
}

// scanned is what Verify found of a frame, to check an index file against.
type scanned struct {
	off, size    int64
	rel, count   uint32
	stream       string // "" if the frame names it by a number unresolved
	firstVersion uint64
	hcrc         uint32
	// fingerprints holds each event's ID's, for an index file of version
	// 3, and assigned whether the store assigned it, which version 4 lists
	// as assignedPrint.
	fingerprints []uint32
	assigned     []bool
}

// prints returns the fingerprints an index file of the given version
// lists for the frame.
func (sc *scanned) prints(version uint8) []uint32 {
	if version == record.OldestIndexVersion {
		return sc.fingerprints
	}
	p := slices.Clone(sc.fingerprints)
	for i, a := range sc.assigned {
		if a {
			p[i] = assignedPrint
		}
	}
	return p
}

func (v *verifier) problem(path string, off int64, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, Problem{Path: path, Offset: off, Reason: fmt.Sprintf(format, args...)})
}

// segment checks one segment and its index file. Problems go into the
// report, and the check goes on where it can: from the next segment after a
// frame it cannot read past, with positions and versions taken up from
// where the files have them.
func (v *verifier) segment(ctx context.Context, seg *segment, size int64, last bool) error {
	v.rep.Segments++
	r := &v.reader
	var hb [record.SegmentHeaderSize]byte
	herr := error(io.ErrUnexpectedEOF)
	var version uint8
	var key uint64
	if size >= record.SegmentHeaderSize {
		if _, err := seg.file.ReadAt(hb[:], 0); err != nil {
			return fmt.Errorf("eventstore: verify: %w", err)
		}
		var h record.SegmentHeader
		h, herr = record.DecodeSegmentHeader(hb[:])
		version, key = h.Version, h.Key
	}
	if err := r.readSegment(seg.file, record.SegmentHeader{Base: seg.base, Version: version}, size, record.SegmentHeaderSize, last); err != nil {
		return fmt.Errorf("eventstore: verify: %w", err)
	}
	if herr != nil {
		// As in recovery: a last segment no longer than a header was being
		// created, and Open removes it.
		if last && size <= record.SegmentHeaderSize {
			v.rep.TornBytes = size
		} else {
			v.problem(seg.path, 0, "segment header: %v", herr)
			v.skipped = true
		}
		return nil
	}
	if h, _ := record.DecodeSegmentHeader(hb[:]); h.Base != seg.base {
		v.problem(seg.path, 0, "header base %d does not match the file name", h.Base)
	}
	if seg.base != v.next {
		v.problem(seg.path, 0, "segment starts at position %d, want %d", seg.base, v.next)
		v.next = seg.base
		v.skipped = true
	}
	var frames []scanned
	var events []record.Event
	off := int64(record.SegmentHeaderSize)
	reported := int64(0)
	for off < r.limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := r.frame(off, events)
		if err == nil && !frameFits(&f, version) {
			// Corrupt, as Open finds it: a frame that decodes whole was
			// written whole, so the torn-write rules do not apply to it.
			v.problem(seg.path, off, frameMisfit)
			v.skipped = true
			break
		}
		if err != nil {
			if unwritten, uerr := r.unwrittenFrom(off); uerr != nil {
				return fmt.Errorf("eventstore: verify: %w", uerr)
			} else if unwritten {
				break // space allocated ahead
			}
			torn, later := false, int64(-1)
			if last {
				torn, later = r.tornTail(off, v.next)
			}
			switch {
			case torn:
				v.rep.TornBytes = r.limit - off
			case later >= 0:
				v.problem(seg.path, off, "%v, and a later write is intact at offset %d", err, later)
				v.skipped = true
			default:
				v.problem(seg.path, off, "%v", err)
				v.skipped = true
			}
			break
		}
		events = f.Events
		sc := scanned{
			off: off, size: f.FrameSize(), rel: uint32(f.Position - seg.base), count: uint32(len(f.Events)),
			stream: string(f.Stream), firstVersion: f.FirstVersion,
		}
		f.Key = key
		for i := range f.Events {
			sc.fingerprints = append(sc.fingerprints, fingerprint(EventID(f.ID(i))))
			sc.assigned = append(sc.assigned, f.Assigned(i))
		}
		// Only now: reading the header again may move the reader's window,
		// which f's slices alias.
		hdr, err := r.bytes(off, f.Header.Size())
		if err != nil {
			return fmt.Errorf("eventstore: verify: %w", err)
		}
		sc.hcrc = binary.LittleEndian.Uint32(hdr[len(hdr)-4:])
		if f.Position != v.next {
			v.problem(seg.path, off, "frame position %d, want %d", f.Position, v.next)
		}
		resolved := true
		if f.Numbered {
			name, ok := v.starts[f.StreamStart]
			switch {
			case ok:
				sc.stream = name
			case !v.skipped:
				v.problem(seg.path, off, "frame names the stream starting at position %d, and none does", f.StreamStart)
				resolved = false
			default:
				if !v.noted {
					v.problem(seg.path, off, "frame names the stream starting at position %d, which was not read; such frames are not checked from here", f.StreamStart)
					v.noted = true
				}
				resolved = false
			}
		}
		want, known := v.versions[sc.stream]
		switch {
		case !resolved:
		case v.skipped:
			if !known && f.FirstVersion == 0 {
				v.starts[f.Position] = sc.stream
			}
		case f.FirstVersion != want:
			v.problem(seg.path, off, "stream %q continues at version %d, want %d", sc.stream, f.FirstVersion, want)
		case !known:
			v.starts[f.Position] = sc.stream
		}
		v.next = f.Position + uint64(len(f.Events))
		if resolved {
			v.versions[sc.stream] = f.FirstVersion + uint64(len(f.Events))
		}
		v.rep.Frames++
		v.rep.Events += uint64(len(f.Events))
		frames = append(frames, sc)
		off += f.FrameSize()
		if v.progress != nil && off-reported >= readChunk {
			v.progress(v.rep.Bytes+off, v.total)
			reported = off
		}
	}
	v.rep.Bytes += size
	if v.progress != nil {
		v.progress(v.rep.Bytes, v.total)
	}
	v.index(seg, size, frames)
	return nil
}

// index checks seg's index file, if it has one, against the frames read.
func (v *verifier) index(seg *segment, size int64, frames []scanned) {
	path := indexPath(seg.path)
	x, err := decodeIndexFile(v.fsys, path, size)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	v.rep.IndexFiles++
	if err != nil {
		v.problem(path, 0, "index file: %v", err)
		return
	}
	if x.Base != seg.base {
		v.problem(path, 0, "index of segment %d", x.Base)
		return
	}
	currentPrints(x)
	fp := 0
	for i, xf := range x.Frames {
		if i >= len(frames) {
			v.problem(path, int64(xf.Offset), "index lists a frame the segment does not hold whole")
			return
		}
		sc := frames[i]
		if int64(xf.Offset) != sc.off || xf.Rel != sc.rel || xf.Count != sc.count ||
			sc.stream != "" && x.Names[xf.Name] != sc.stream || xf.FirstVersion != sc.firstVersion ||
			!slices.Equal(x.Fingerprints[fp:fp+int(xf.Count)], sc.prints(x.Version)) {
			v.problem(path, int64(xf.Offset), "index entry %d does not match the frame at offset %d", i, sc.off)
			return
		}
		fp += int(xf.Count)
	}
	if n := len(x.Frames); n > 0 && (x.End != frames[n-1].off+frames[n-1].size || x.LastHeaderCRC != frames[n-1].hcrc) {
		v.problem(path, 0, "index ends at offset %d, not with the frame at offset %d", x.End, frames[n-1].off)
	}
}

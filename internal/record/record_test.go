package record_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-eventstore/eventstore/internal/record"
)

// The golden frame's inputs. The values are chosen so that every field is
// recognisable in a hex dump: the position has distinct bytes, the first
// version needs a two-byte varint.
const (
	goldenPosition     = uint64(0x0102030405060708)
	goldenDelta        = uint32(3)
	goldenTimestamp    = int64(1700000000123456789) // 0x17979cfe3d85cd15
	goldenFirstVersion = uint64(300)                // uvarint ac 02
	goldenStream       = "orders-42"
	goldenType         = "OrderPlaced"
	goldenMetadata     = `{"u":7}`
	goldenData         = `{"total":99}`
)

var goldenID = [record.IDSize]byte{
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
}

// goldenFrameHex is the encoding of the golden frame. It was produced by the
// encoder once and checked by hand (and with an independent CRC-32C
// implementation) against the diagram in eventlog.go:
//
//	47000000                      length 71
//	b2fc07ac                      pcrc 0xac07fcb2
//	0807060504030201              position 0x0102030405060708
//	03000000                      delta 3
//	0b29aa17                      hcrc 0x17aa290b
//	00                            flags
//	15cd853dfe9c9717              timestamp
//	ac02                          first version 300
//	09 6f72646572732d3432         stream "orders-42"
//	01                            count 1
//	00112233445566778899aabbccddeeff  id
//	0b 4f72646572506c61636564     type "OrderPlaced"
//	07 7b2275223a377d             metadata {"u":7}
//	0c 7b22746f74616c223a39397d   data {"total":99}
//
// If this test fails, the on-disk format changed: that needs a Version bump,
// not a new constant.
//
// The payload is stored masked (record.Mask); the constant was checked
// against a separate implementation of the mask and of CRC-32C.
const goldenFrameHex = "470000002e574496080706050403020103000000ee5b24d0" +
	"dce3a19546d60937e0009d41bd830a9ebf476d84c8774a" +
	"70715c1209e1d4e85b9cc813922321eb14a2d14ea24936" +
	"753c760ed11258e7124f756f004aa80b98a026e55dba697aa2"

// goldenMarkedFrameHex is the golden frame as a version-2 segment holds
// it (AppendMarkedFrame), checked with an independent CRC-32C: length 72,
// one more than the golden frame's; the flags byte masked from 01 (dd, where
// the golden frame has dc); the same masked events; then the end mark, ff,
// stored unmasked.
const goldenMarkedFrameHex = "4800000038c7804a08070605040302010300000014b2a841" +
	"dde3a19546d60937e0009d41bd830a9ebf476d84c8774a" +
	"70715c1209e1d4e85b9cc813922321eb14a2d14ea24936" +
	"753c760ed11258e7124f756f004aa80b98a026e55dba697aa2ff"

// goldenWeylFrameHex is the golden frame as a version-3 segment holds it
// (AppendFrameOf(3, ...)), checked against a separate implementation of
// the Weyl keystream and of CRC-32C: length 72 with its top bit set
// (48000080); flags 03 and the same fields as the marked frame, masked
// with MaskWeyl; then the end mark, ff, stored unmasked.
const goldenWeylFrameHex = "480000803e5816e6080706050403020103000000dc1c373b" +
	"1e4219d6d1b4e7d5257f1cdacab6d685353c44666d3fea6f7ef8f7847ecfa984dbfc32" +
	"8d3cce52f4f4a72da2dbc7f13afe5b94346750eacd87c6d1b5dcea90e1a45b0a748121" +
	"4aff"

// goldenSegmentHeaderV3Hex is AppendSegmentHeader(nil, 1734), checked with
// an independent CRC-32C: goldenSegmentHeaderHex but for the version, 03,
// and the crc, 0xd5c56da9.
const goldenSegmentHeaderV3Hex = "45534c4703000000c60600000000000000000000a96dc5d5"

// goldenSegmentHeaderV2Hex is the version-2 segment header for base 1734,
// as AppendSegmentHeader wrote it before version 3: the crc is 0x27c96057.
const goldenSegmentHeaderV2Hex = "45534c4702000000c606000000000000000000005760c927"

// goldenSegmentHeaderHex is a version-1 segment header for base 1734, as
// AppendSegmentHeader wrote it before version 2:
//
//	45534c47  magic "ESLG"
//	01        version
//	000000    reserved
//	c606000000000000  base 1734
//	00000000  reserved
//	a4003134  crc 0x343100a4
const goldenSegmentHeaderHex = "45534c4701000000c60600000000000000000000a4003134"

const goldenSegmentBase = uint64(1734)

// goldenKey is the golden store ID key: 56 bits, each byte distinct.
const goldenKey = uint64(0xa1b2c3d4e5f607)

// goldenSegmentHeaderV4Hex is AppendSegmentHeader(nil, 1734, goldenKey):
//
//	45534c47          magic "ESLG"
//	04                version
//	c3b2a1            key, bits 32-55
//	c606000000000000  base 1734
//	07f6e5d4          key, bits 0-31
//	c3e3d9d8          crc 0xd8d9e3c3
const goldenSegmentHeaderV4Hex = "45534c4704c3b2a1c60600000000000007f6e5d4c3e3d9d8"

// goldenSegmentHeaderV5Hex is the same header of version 5: only the
// version and the crc (0x2ad5ee3d) differ.
const goldenSegmentHeaderV5Hex = "45534c4705c3b2a1c60600000000000007f6e5d43deed52a"

// goldenSegmentHeaderV6Hex is the same header of version 6, the current
// one, checked with an independent CRC-32C: goldenSegmentHeaderV5Hex but
// for byte 4, the version (05 -> 06), and bytes 20-23, the crc
// (0x2ad5ee3d -> 0x392d8ece); the magic, the key and the base are as in
// version 5.
const goldenSegmentHeaderV6Hex = "45534c4706c3b2a1c60600000000000007f6e5d4ce8e2d39"

// goldenV4FrameHex is a version-4 frame of two events in the golden
// stream: the golden event, and an event of type "Shipped" with data
// "{}" whose ID the store assigned. Checked against a separate
// implementation of the Weyl keystream and of CRC-32C: length 84 with its
// top bit set (54000080), flags 07; the golden event's tag 17 (type length
// 11, ID stored), the second's 0e (type length 7, no ID); then the end
// mark, ff, stored unmasked.
const goldenV4FrameHex = "540000809f01cfa7080706050403020103000000c8649eac" +
	"1a4219d6d1b4e7d5257f1cdacab6d685353c44666d3cfd7e4de980954dde5695e8ed459c" +
	"0fdfa6f4f4a72da2dbc7f13afe5b94346750eacd87c6d1b5dcea90e1a45b0a7481214a3a" +
	"89db1bbd01f70ad2ed54c0ff"

// goldenAssignedIDHex is AssignedID(goldenKey, goldenPosition+1,
// goldenTimestamp): the golden V4 frame's second event's ID.
//
//	018bcfe5687b      milliseconds 1700000000123
//	7460              version 7, then 12 bits of the scrambled position
//	a07ad174a8b66085  variant 10, the key's low 10 bits (0x207), 52 bits
//	                  of the scrambled position
const goldenAssignedIDHex = "018bcfe5687b7460a07ad174a8b66085"

func goldenFrame() []byte {
	return record.AppendFrame(nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, goldenBody())
}

func goldenMarkedFrame() []byte {
	return record.AppendMarkedFrame(nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, goldenBody())
}

func goldenWeylFrame() []byte {
	return record.AppendFrameOf(3, nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, goldenBody())
}

func goldenBody() []byte {
	body := record.AppendBodyHead(nil, goldenStream, 1)
	return record.AppendEventOf(1, body, goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData))
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// testEvent is the input form of an event, for building frames in tests.
type testEvent struct {
	id       [record.IDSize]byte
	typ      string
	metadata []byte
	data     []byte
}

// testFrame is the input form of a frame, for building frames in tests.
type testFrame struct {
	position     uint64
	delta        uint32
	timestamp    int64
	firstVersion uint64
	stream       string
	events       []testEvent
}

func (tf testFrame) body() []byte {
	body := record.AppendBodyHead(nil, tf.stream, len(tf.events))
	for _, e := range tf.events {
		body = record.AppendEventOf(1, body, e.id, e.typ, e.metadata, e.data)
	}
	return body
}

func (tf testFrame) encode() []byte {
	return record.AppendFrame(nil, tf.position, tf.delta, tf.timestamp, tf.firstVersion, tf.body())
}

// compactBody is body's counterpart in a compact frame (version 6): no
// count for one event, and the last event's data without a length.
func (tf testFrame) compactBody() []byte {
	body := record.AppendBodyHeadOf(6, nil, tf.stream, len(tf.events))
	for i, e := range tf.events {
		if i == len(tf.events)-1 {
			body = record.AppendLastEventOf(6, body, e.id, e.typ, e.metadata, e.data)
		} else {
			body = record.AppendEventOf(6, body, e.id, e.typ, e.metadata, e.data)
		}
	}
	return body
}

// encodeCompact is encode's counterpart in version 6: tf as a compact
// frame of the segment whose first position is base.
func (tf testFrame) encodeCompact(base uint64) []byte {
	return record.AppendCompactFrame(nil, base, tf.position, tf.delta, tf.timestamp, tf.firstVersion, len(tf.events), tf.compactBody())
}

func idOf(b byte) [record.IDSize]byte {
	var id [record.IDSize]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// rawFrame assembles a frame around an arbitrary payload with correct
// checksums, so that tests can reach the payload checks that sit behind the
// checksums.
func rawFrame(position uint64, delta uint32, payload []byte) []byte {
	payload = bytes.Clone(payload)
	record.Mask(payload, position)
	b := make([]byte, record.HeaderSize, record.HeaderSize+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], record.Checksum(payload))
	binary.LittleEndian.PutUint64(b[8:16], position)
	binary.LittleEndian.PutUint32(b[16:20], delta)
	binary.LittleEndian.PutUint32(b[20:24], record.Checksum(b[:20]))
	return append(b, payload...)
}

// rawPayload assembles a payload from its parts: flags, timestamp, first
// version and an already encoded body.
func rawPayload(flags byte, timestamp int64, firstVersion uint64, body []byte) []byte {
	p := []byte{flags}
	p = binary.LittleEndian.AppendUint64(p, uint64(timestamp))
	p = binary.AppendUvarint(p, firstVersion)
	return append(p, body...)
}

// resealHeader recomputes the header checksum of frame in place.
func resealHeader(frame []byte) {
	binary.LittleEndian.PutUint32(frame[20:24], record.Checksum(frame[:20]))
}

// resealFrame recomputes both checksums of a whole frame in place, after a
// test modified its payload.
func resealFrame(frame []byte) {
	binary.LittleEndian.PutUint32(frame[4:8], record.Checksum(frame[record.HeaderSize:]))
	resealHeader(frame)
}

// decodeFrame runs DecodeHeader and DecodePayload on a whole frame.
func decodeFrame(t testing.TB, frame []byte) (record.Frame, error) {
	t.Helper()
	h, err := record.DecodeHeader(frame)
	if err != nil {
		return record.Frame{}, err
	}
	require.Equal(t, len(frame), int(h.FrameSize()), "test frame must be exactly one frame")
	return record.DecodePayload(h, frame[record.HeaderSize:], nil)
}

// decodeFrameIn runs sh.DecodeHeader and DecodePayload on a whole frame
// of the segment sh heads: decodeFrame's, for a segment of any version.
func decodeFrameIn(t testing.TB, sh record.SegmentHeader, frame []byte) (record.Frame, error) {
	t.Helper()
	h, err := sh.DecodeHeader(frame)
	if err != nil {
		return record.Frame{}, err
	}
	require.Equal(t, sh.HeaderSize(), h.Size())
	require.Equal(t, len(frame), int(h.FrameSize()), "test frame must be exactly one frame")
	return record.DecodePayload(h, frame[h.Size():], nil)
}

func TestChecksum_KnownVector(t *testing.T) {
	// The standard CRC-32C check value, so the golden constants below are
	// not only confirmed by the code that produced them.
	assert.Equal(t, uint32(0xe3069283), record.Checksum([]byte("123456789")))
	assert.Equal(t, uint32(0), record.Checksum(nil))
}

func TestAppendFrame_Golden(t *testing.T) {
	got := goldenFrame()
	want := mustHex(t, goldenFrameHex)
	require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got), "frame encoding changed")

	// Header fields at the offsets drawn in eventlog.go.
	require.Len(t, got, 24+71)
	assert.Equal(t, uint32(71), binary.LittleEndian.Uint32(got[0:4]), "length at 0")
	assert.Equal(t, uint32(0x9644572e), binary.LittleEndian.Uint32(got[4:8]), "pcrc at 4")
	assert.Equal(t, record.Checksum(got[24:]), binary.LittleEndian.Uint32(got[4:8]), "pcrc covers the payload")
	assert.Equal(t, goldenPosition, binary.LittleEndian.Uint64(got[8:16]), "position at 8")
	assert.Equal(t, []byte{0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}, got[8:16], "position little-endian")
	assert.Equal(t, goldenDelta, binary.LittleEndian.Uint32(got[16:20]), "delta at 16")
	assert.Equal(t, uint32(0xd0245bee), binary.LittleEndian.Uint32(got[20:24]), "hcrc at 20")
	assert.Equal(t, record.Checksum(got[:20]), binary.LittleEndian.Uint32(got[20:24]), "hcrc covers bytes 0-19")
	assert.Equal(t, 24, record.HeaderSize)

	// The payload, built here byte by byte from the diagram rather than by
	// the encoder.
	var payload []byte
	payload = append(payload, 0x00)                                           // flags
	payload = append(payload, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17) // timestamp LE
	payload = append(payload, 0xac, 0x02)                                     // first version 300
	payload = append(payload, 9)                                              // stream len
	payload = append(payload, "orders-42"...)                                 //
	payload = append(payload, 1)                                              // count
	payload = append(payload, goldenID[:]...)                                 // id
	payload = append(payload, 11)                                             // type len
	payload = append(payload, "OrderPlaced"...)                               //
	payload = append(payload, 7)                                              // metadata len
	payload = append(payload, `{"u":7}`...)                                   //
	payload = append(payload, 12)                                             // data len
	payload = append(payload, `{"total":99}`...)                              //
	record.Mask(payload, goldenPosition)
	assert.Equal(t, payload, got[24:], "payload layout, masked")
}

func TestAppendFrame_AppendsToDst(t *testing.T) {
	prefix := []byte("prefix")
	got := record.AppendFrame(bytes.Clone(prefix), goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion,
		record.AppendEventOf(1, record.AppendBodyHead(nil, goldenStream, 1), goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData)))
	require.Equal(t, prefix, got[:len(prefix)])
	assert.Equal(t, mustHex(t, goldenFrameHex), got[len(prefix):])
}

func TestAppendMarkedFrame_Golden(t *testing.T) {
	got := goldenMarkedFrame()
	require.Equal(t, goldenMarkedFrameHex, hex.EncodeToString(got), "marked frame encoding changed")
	plain := goldenFrame()
	require.Len(t, got, len(plain)+record.EndMarkSize)
	assert.Equal(t, uint32(72), binary.LittleEndian.Uint32(got[0:4]), "the length counts the end mark")
	assert.Equal(t, byte(record.EndMark), got[len(got)-1], "the end mark is stored as is")
	assert.Equal(t, plain[record.HeaderSize]^1, got[record.HeaderSize], "flags 1, masked as version 1's 0 is")
	assert.Equal(t, plain[record.HeaderSize+1:], got[record.HeaderSize+1:len(got)-1], "the events are masked as in version 1")
	assert.Equal(t, record.Checksum(got[24:]), binary.LittleEndian.Uint32(got[4:8]), "pcrc covers the end mark")

	h, err := record.DecodeHeader(got)
	require.NoError(t, err)
	f, err := record.DecodePayload(h, got[record.HeaderSize:], nil)
	require.NoError(t, err)
	assertGoldenEvents(t, f)
}

// assertGoldenEvents checks that a decoded frame holds the golden frame's
// fields and its one event, whose data ends before any end mark.
func assertGoldenEvents(t *testing.T, f record.Frame) {
	t.Helper()
	require.Len(t, f.Events, 1)
	assert.Equal(t, goldenID, f.Events[0].ID)
	assert.Equal(t, []byte(goldenType), f.Events[0].Type)
	assert.Equal(t, []byte(goldenMetadata), f.Events[0].Metadata)
	assert.Equal(t, []byte(goldenData), f.Events[0].Data, "the end mark is no part of the data")
	assert.Equal(t, []byte(goldenStream), f.Stream)
	assert.Equal(t, goldenFirstVersion, f.FirstVersion)
	assert.Equal(t, goldenTimestamp, f.Timestamp)
}

// TestAppendMarkedFrame_NeverEndsInZero: whatever the events hold, a
// marked frame's last byte is the end mark, and the frame decodes to them.
func TestAppendMarkedFrame_NeverEndsInZero(t *testing.T) {
	for n := range 300 {
		for _, fill := range []byte{0, 0xff, 0x5a} {
			data := bytes.Repeat([]byte{fill}, n)
			body := record.AppendBodyHead(nil, "s", 1)
			body = record.AppendEventOf(1, body, [record.IDSize]byte{}, "t", nil, data)
			frame := record.AppendMarkedFrame(nil, uint64(n), 0, 0, 0, body)
			require.Equal(t, byte(record.EndMark), frame[len(frame)-1])
			f, err := decodeFrame(t, frame)
			require.NoError(t, err, "%d bytes of %#x", n, fill)
			require.Equal(t, string(data), string(f.Events[0].Data))
		}
	}
}

func TestDecodePayload_MarkedFrameMustEndInItsMark(t *testing.T) {
	for _, last := range []byte{0, 0xfe, 0x7f, 1} {
		frame := goldenMarkedFrame()
		frame[len(frame)-1] = last
		binary.LittleEndian.PutUint32(frame[4:8], record.Checksum(frame[record.HeaderSize:]))
		binary.LittleEndian.PutUint32(frame[20:24], record.Checksum(frame[:20]))
		_, err := decodeFrame(t, frame)
		require.ErrorIs(t, err, record.ErrMalformed, "last byte %#x", last)
	}
}

func TestDecodePayload_UnknownFlags(t *testing.T) {
	for _, flags := range []byte{2, 3, 0x80, 0xff} {
		frame := goldenMarkedFrame()
		payload := frame[record.HeaderSize:]
		record.Mask(payload, goldenPosition)
		payload[0] = flags
		record.Mask(payload, goldenPosition)
		binary.LittleEndian.PutUint32(frame[4:8], record.Checksum(payload))
		binary.LittleEndian.PutUint32(frame[20:24], record.Checksum(frame[:20]))
		_, err := decodeFrame(t, frame)
		require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
	}
}

func TestAppendSegmentHeader_Golden(t *testing.T) {
	got := record.AppendSegmentHeader(nil, goldenSegmentBase, goldenKey)
	require.Equal(t, goldenSegmentHeaderV6Hex, hex.EncodeToString(got), "segment header encoding changed")

	// Version 6 changed nothing in the segment header but its version
	// byte, and so its crc.
	v5 := mustHex(t, goldenSegmentHeaderV5Hex)
	for i := range got {
		if i != 4 && (i < 20 || i >= 24) {
			assert.Equal(t, v5[i], got[i], "byte %d as in version 5", i)
		}
	}

	require.Len(t, got, record.SegmentHeaderSize)
	assert.Equal(t, 24, record.SegmentHeaderSize)
	assert.Equal(t, []byte("ESLG"), got[0:4], "magic at 0")
	assert.Equal(t, byte(6), got[4], "version at 4")
	assert.Equal(t, byte(record.Version), got[4])
	assert.Equal(t, []byte{0xc3, 0xb2, 0xa1}, got[5:8], "key bits 32-55 at 5")
	assert.Equal(t, goldenSegmentBase, binary.LittleEndian.Uint64(got[8:16]), "base at 8")
	assert.Equal(t, uint32(0xd4e5f607), binary.LittleEndian.Uint32(got[16:20]), "key bits 0-31 at 16")
	assert.Equal(t, uint32(0x392d8ece), binary.LittleEndian.Uint32(got[20:24]), "crc at 20")
	assert.Equal(t, record.Checksum(got[:20]), binary.LittleEndian.Uint32(got[20:24]), "crc covers bytes 0-19")

	withPrefix := record.AppendSegmentHeader([]byte{0xee}, goldenSegmentBase, goldenKey)
	assert.Equal(t, append([]byte{0xee}, got...), withPrefix)
}

func TestDecodeFrame_Golden(t *testing.T) {
	frame := mustHex(t, goldenFrameHex)
	h, err := record.DecodeHeader(frame)
	require.NoError(t, err)
	assert.Equal(t, record.NewHeader(71, 0x9644572e, goldenPosition, goldenDelta, false, false), h)
	assert.Equal(t, goldenPosition-3, h.SyncStart())
	assert.Equal(t, int64(len(frame)), h.FrameSize())

	f, err := record.DecodePayload(h, frame[record.HeaderSize:], nil)
	require.NoError(t, err)
	assert.Equal(t, h, f.Header)
	assert.Equal(t, goldenTimestamp, f.Timestamp)
	assert.Equal(t, goldenFirstVersion, f.FirstVersion)
	assert.Equal(t, []byte(goldenStream), f.Stream)
	require.Len(t, f.Events, 1)
	assert.Equal(t, goldenID, f.Events[0].ID)
	assert.Equal(t, []byte(goldenType), f.Events[0].Type)
	assert.Equal(t, []byte(goldenMetadata), f.Events[0].Metadata)
	assert.Equal(t, []byte(goldenData), f.Events[0].Data)
}

func TestDecodeSegmentHeader_Golden(t *testing.T) {
	sh, err := record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderHex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 1}, sh, "version 1 stays readable")
	sh, err = record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderV2Hex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 2}, sh, "version 2 stays readable")
	sh, err = record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderV3Hex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 3}, sh, "version 3 stays readable")
	sh, err = record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderV4Hex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 4, Key: goldenKey}, sh, "version 4 stays readable")
	sh, err = record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderV5Hex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 5, Key: goldenKey}, sh, "version 5 stays readable")
	assert.Equal(t, record.HeaderSize, sh.HeaderSize(), "version 5's frame headers are 24 bytes")
	sh, err = record.DecodeSegmentHeader(mustHex(t, goldenSegmentHeaderV6Hex))
	require.NoError(t, err)
	assert.Equal(t, record.SegmentHeader{Base: goldenSegmentBase, Version: 6, Key: goldenKey}, sh)
	assert.Equal(t, record.CompactHeaderSize, sh.HeaderSize(), "version 6's frame headers are compact")
}

func TestDecodeSegmentHeader_RoundTrip(t *testing.T) {
	for _, base := range []uint64{0, 1, 1734, 1 << 32, math.MaxUint64} {
		b := record.AppendSegmentHeader(nil, base, goldenKey)
		sh, err := record.DecodeSegmentHeader(b)
		require.NoError(t, err, "base %d", base)
		assert.Equal(t, base, sh.Base)
		assert.Equal(t, goldenKey, sh.Key)

		// Bytes after the header are not the header's business.
		sh, err = record.DecodeSegmentHeader(append(b, 0xff, 0xff))
		require.NoError(t, err, "base %d with trailing bytes", base)
		assert.Equal(t, base, sh.Base)
	}
}

func TestDecodeFrame_RoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 300)      // two-byte length varint
	huge := bytes.Repeat([]byte("x"), 70000)     // three-byte length varint
	longType := strings.Repeat("T", 200)         // two-byte type length
	longStream := strings.Repeat("stream-", 100) // two-byte stream length

	tests := []struct {
		name  string
		frame testFrame
	}{
		{
			name: "single event",
			frame: testFrame{position: 0, delta: 0, timestamp: 1, firstVersion: 0, stream: "s",
				events: []testEvent{{id: idOf(1), typ: "t", metadata: []byte("m"), data: []byte("d")}}},
		},
		{
			name: "multiple events",
			frame: testFrame{position: 100, delta: 7, timestamp: 1700000000000000000, firstVersion: 41, stream: "account-1",
				events: []testEvent{
					{id: idOf(0x10), typ: "Opened", metadata: []byte(`{"by":"a"}`), data: []byte(`{"owner":"x"}`)},
					{id: idOf(0x20), typ: "Deposited", metadata: nil, data: []byte(`{"amount":5}`)},
					{id: idOf(0x30), typ: "Withdrawn", metadata: []byte(`{}`), data: nil},
					{id: idOf(0x40), typ: "Closed"},
				}},
		},
		{
			name: "empty metadata and data",
			frame: testFrame{position: 5, delta: 5, timestamp: 0, firstVersion: 0, stream: "e",
				events: []testEvent{{id: [record.IDSize]byte{}, typ: "Empty", metadata: []byte{}, data: []byte{}}}},
		},
		{
			name: "large varints and lengths",
			frame: testFrame{position: math.MaxUint64 - 2, delta: math.MaxUint32, timestamp: math.MaxInt64,
				firstVersion: math.MaxUint64 - 2, stream: longStream,
				events: []testEvent{
					{id: idOf(0xf0), typ: longType, metadata: long, data: huge},
					{id: idOf(0xe0), typ: "small", metadata: huge, data: long},
				}},
		},
		{
			name: "negative timestamp",
			frame: testFrame{position: 1, delta: 1, timestamp: math.MinInt64, firstVersion: 1 << 35, stream: "neg",
				events: []testEvent{{id: idOf(9), typ: "T", data: []byte{0}}}},
		},
		{
			name: "unicode stream and type",
			frame: testFrame{position: 42, delta: 0, timestamp: -1, firstVersion: 127, stream: "注文-😀-ünïcödé",
				events: []testEvent{{id: idOf(0x7f), typ: "Événement✓", metadata: []byte("ключ"), data: []byte("データ")}}},
		},
		{
			name: "binary data with zeros",
			frame: testFrame{position: 128, delta: 128, timestamp: 128, firstVersion: 128, stream: "bin",
				events: []testEvent{{id: idOf(0), typ: "\x00", metadata: make([]byte, 600), data: []byte{0xff, 0x00, 0x80}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := tt.frame
			frame := tf.encode()
			require.Equal(t, record.FrameSize(tf.firstVersion, tf.body()), len(frame), "FrameSize")

			h, err := record.DecodeHeader(frame)
			require.NoError(t, err)
			assert.Equal(t, uint32(len(frame)-record.HeaderSize), h.Length)
			assert.Equal(t, tf.position, h.Position)
			assert.Equal(t, tf.delta, h.SyncDelta())
			assert.Equal(t, tf.position-uint64(tf.delta), h.SyncStart())
			assert.Equal(t, int64(len(frame)), h.FrameSize())

			payload := frame[record.HeaderSize:]
			f, err := record.DecodePayload(h, payload, nil)
			require.NoError(t, err)
			assert.Equal(t, h, f.Header)
			assertTestFrame(t, tf, f)

			// The same frame, compact (version 6), in a segment whose base
			// is as far below it as a compact header reaches.
			base := tf.position - min(tf.position, math.MaxUint32)
			sh := record.SegmentHeader{Base: base, Version: 6}
			compact := tf.encodeCompact(base)
			require.Equal(t, record.CompactFrameSize(tf.firstVersion, tf.compactBody()), len(compact), "CompactFrameSize")
			h, err = sh.DecodeHeader(compact)
			require.NoError(t, err)
			assert.Equal(t, uint32(len(compact)-record.CompactHeaderSize), h.Length)
			assert.Equal(t, tf.position, h.Position)
			assert.Equal(t, tf.delta, h.SyncDelta())
			assert.Equal(t, int64(len(compact)), h.FrameSize())
			f, err = record.DecodePayload(h, compact[record.CompactHeaderSize:], nil)
			require.NoError(t, err)
			assert.Equal(t, h, f.Header)
			assert.True(t, f.Compact())
			assertTestFrame(t, tf, f)
		})
	}
}

// assertTestFrame asserts that f, decoded, holds tf's fields and events.
func assertTestFrame(t *testing.T, tf testFrame, f record.Frame) {
	t.Helper()
	assert.Equal(t, tf.timestamp, f.Timestamp)
	assert.Equal(t, tf.firstVersion, f.FirstVersion)
	assert.Equal(t, []byte(tf.stream), f.Stream)
	assertTestEvents(t, tf, f)
}

// assertTestEvents asserts that f's events, decoded, are tf's.
func assertTestEvents(t *testing.T, tf testFrame, f record.Frame) {
	t.Helper()
	require.Len(t, f.Events, len(tf.events))
	for i, want := range tf.events {
		got := f.Events[i]
		assert.Equal(t, want.id, got.ID, "event %d id", i)
		assert.Equal(t, []byte(want.typ), got.Type, "event %d type", i)
		assertBytesOrNil(t, want.metadata, got.Metadata, "event %d metadata", i)
		assertBytesOrNil(t, want.data, got.Data, "event %d data", i)
	}
}

// assertBytesOrNil asserts got equals want, and that an empty want is read
// back as nil, as DecodePayload documents.
func assertBytesOrNil(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	if len(want) == 0 {
		assert.Nil(t, got, msgAndArgs...)
		return
	}
	assert.Equal(t, want, got, msgAndArgs...)
}

func TestDecodePayload_AliasesPayload(t *testing.T) {
	frame := goldenFrame()
	h, err := record.DecodeHeader(frame)
	require.NoError(t, err)
	f, err := record.DecodePayload(h, frame[record.HeaderSize:], nil)
	require.NoError(t, err)

	// The documented contract: decoded slices alias the payload, and are
	// capped so that appending to one cannot overwrite its neighbour.
	// The stream starts after header, flags, timestamp, the two-byte first
	// version and its one-byte length: offset 24+1+8+2+1 = 36.
	require.Equal(t, []byte(goldenStream), frame[36:36+len(goldenStream)])
	f.Stream[0] = 'O'
	assert.Equal(t, byte('O'), frame[36])
	assert.Equal(t, len(f.Events[0].Type), cap(f.Events[0].Type))
	assert.Equal(t, len(f.Events[0].Metadata), cap(f.Events[0].Metadata))
	assert.Equal(t, len(f.Stream), cap(f.Stream))
}

func TestDecodePayload_ReusesEvents(t *testing.T) {
	big := testFrame{position: 10, stream: "a", events: []testEvent{
		{id: idOf(1), typ: "A"}, {id: idOf(2), typ: "B"}, {id: idOf(3), typ: "C"},
	}}.encode()
	small := testFrame{position: 20, stream: "b", events: []testEvent{{id: idOf(4), typ: "D"}}}.encode()

	var events []record.Event
	h, err := record.DecodeHeader(big)
	require.NoError(t, err)
	f, err := record.DecodePayload(h, big[record.HeaderSize:], events)
	require.NoError(t, err)
	require.Len(t, f.Events, 3)
	events = f.Events

	h, err = record.DecodeHeader(small)
	require.NoError(t, err)
	f, err = record.DecodePayload(h, small[record.HeaderSize:], events)
	require.NoError(t, err)
	require.Len(t, f.Events, 1, "events must be appended to events[:0]")
	assert.Equal(t, []byte("D"), f.Events[0].Type)
	assert.Same(t, &events[0], &f.Events[0], "the given slice's backing array is reused")
}

// TestFrame_DecodeVerifiedInPlace decodes frames of every version one
// after another into one Frame, as a long read does: each must leave it
// exactly as the function DecodeVerified returns it, with nothing left over
// from the frame before (its end mark, its keystream, its extra events,
// its stream number, its compact header), and the events' array reused.
func TestFrame_DecodeVerifiedInPlace(t *testing.T) {
	v1 := record.SegmentHeader{Version: 1} // any version before 6 reads 24-byte headers
	frames := []struct {
		sh    record.SegmentHeader
		frame []byte
	}{
		{v1, goldenWeylFrame()},
		{compactSegment, goldenCompactNumberedFrame()}, // version 6, numbered, two events
		{v1, testFrame{position: 10, stream: "a", events: []testEvent{
			{id: idOf(1), typ: "A", data: []byte("x")}, {id: idOf(2), typ: "B"}, {id: idOf(3), typ: "C"},
		}}.encode()}, // version 1, three events
		{compactSegment, goldenCompactFrame()}, // version 6, one event
		{v1, goldenNumberedFrame()},
		{v1, goldenMarkedFrame()},
		{compactSegment, goldenCompactFrame()},
		{v1, goldenFrame()},
	}
	var in record.Frame
	for i, fr := range frames {
		frame := fr.frame
		h, err := fr.sh.DecodeHeader(frame)
		require.NoError(t, err)
		payload := bytes.Clone(frame[h.Size():])
		require.NoError(t, record.VerifyPayload(h, payload))
		want, err := record.DecodeVerified(h, payload, nil)
		require.NoError(t, err)
		before := in.Events
		require.NoError(t, in.DecodeVerified(h, payload), "frame %d", i)
		assert.Equal(t, want, in, "frame %d", i)
		if cap(before) >= len(want.Events) {
			assert.Same(t, &before[:1][0], &in.Events[0], "frame %d: the events' array is reused", i)
		}
	}
	// A frame that does not decode leaves an error, and the next one
	// decodes as if it had not been there.
	bad := goldenFrame()
	h, err := record.DecodeHeader(bad)
	require.NoError(t, err)
	payload := bytes.Clone(bad[record.HeaderSize:])
	require.NoError(t, record.VerifyPayload(h, payload))
	payload = append(payload, 1) // a byte past the events
	h.Length++
	err = in.DecodeVerified(h, payload)
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "trailing")
	h, err = record.DecodeHeader(frames[0].frame)
	require.NoError(t, err)
	payload = bytes.Clone(frames[0].frame[record.HeaderSize:])
	require.NoError(t, record.VerifyPayload(h, payload))
	want, err := record.DecodeVerified(h, payload, nil)
	require.NoError(t, err)
	require.NoError(t, in.DecodeVerified(h, payload))
	assert.Equal(t, want, in)
}

func TestSizes_MatchEncoding(t *testing.T) {
	cases := []struct {
		stream   string
		count    int
		typ      string
		metadata []byte
		data     []byte
		version  uint64
	}{
		{"s", 1, "t", nil, nil, 0},
		{strings.Repeat("s", 127), 127, strings.Repeat("t", 128), make([]byte, 16383), make([]byte, 16384), 1 << 14},
		{"注文", 1 << 20, "Ü", []byte("m"), []byte("d"), math.MaxUint64},
	}
	for _, c := range cases {
		head := record.AppendBodyHead(nil, c.stream, c.count)
		assert.Equal(t, len(head), record.BodyHeadSize(c.stream, c.count))
		ev := record.AppendEventOf(1, nil, idOf(0), c.typ, c.metadata, c.data)
		assert.Equal(t, len(ev), record.EventSize(c.typ, c.metadata, c.data))
		body := append(head, ev...)
		frame := record.AppendFrame(nil, 0, 0, 0, c.version, body)
		assert.Equal(t, len(frame), record.FrameSize(c.version, body))
	}
}

func TestDecodeHeader_Short(t *testing.T) {
	frame := goldenFrame()
	for n := 0; n < record.HeaderSize; n++ {
		_, err := record.DecodeHeader(frame[:n])
		require.ErrorIs(t, err, record.ErrShort, "%d bytes", n)
	}
	_, err := record.DecodeHeader(frame[:record.HeaderSize])
	require.NoError(t, err, "a header alone is enough for DecodeHeader")
}

func TestDecodePayload_Short(t *testing.T) {
	frame := goldenFrame()
	h, err := record.DecodeHeader(frame)
	require.NoError(t, err)
	payload := frame[record.HeaderSize:]
	for n := 0; n < len(payload); n++ {
		_, err := record.DecodePayload(h, payload[:n], nil)
		require.ErrorIs(t, err, record.ErrShort, "%d of %d payload bytes", n, len(payload))
	}
	// A payload longer than the header says is not silently accepted either.
	_, err = record.DecodePayload(h, append(bytes.Clone(payload), 0), nil)
	require.ErrorIs(t, err, record.ErrMalformed)
}

func TestDecodeSegmentHeader_Short(t *testing.T) {
	b := record.AppendSegmentHeader(nil, 1, goldenKey)
	for n := 0; n < record.SegmentHeaderSize; n++ {
		_, err := record.DecodeSegmentHeader(b[:n])
		require.ErrorIs(t, err, record.ErrShort, "%d bytes", n)
	}
}

func TestDecodeHeader_FlippedBit(t *testing.T) {
	frame := goldenFrame()
	for bit := 0; bit < record.HeaderSize*8; bit++ {
		b := bytes.Clone(frame)
		b[bit/8] ^= 1 << (bit % 8)
		_, err := record.DecodeHeader(b)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, "bit %d", bit)
	}
}

func TestDecodePayload_FlippedBit(t *testing.T) {
	frame := goldenFrame()
	h, err := record.DecodeHeader(frame)
	require.NoError(t, err)
	payload := frame[record.HeaderSize:]
	for bit := 0; bit < len(payload)*8; bit++ {
		p := bytes.Clone(payload)
		p[bit/8] ^= 1 << (bit % 8)
		_, err := record.DecodePayload(h, p, nil)
		require.ErrorIs(t, err, record.ErrPayloadChecksum, "bit %d", bit)
	}
}

func TestDecodeSegmentHeader_FlippedBit(t *testing.T) {
	b := record.AppendSegmentHeader(nil, goldenSegmentBase, goldenKey)
	for bit := 0; bit < record.SegmentHeaderSize*8; bit++ {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		_, err := record.DecodeSegmentHeader(c)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, "bit %d", bit)
	}
}

func TestDecodeHeader_LengthOutOfRange(t *testing.T) {
	for _, length := range []uint32{0, 1, 12, 16, record.MaxPayload + 1, math.MaxUint32} {
		b := goldenFrame()[:record.HeaderSize]
		binary.LittleEndian.PutUint32(b[0:4], length)
		resealHeader(b)
		_, err := record.DecodeHeader(b)
		require.ErrorIs(t, err, record.ErrMalformed, "length %d", length)
	}
}

func TestDecodeHeader_LengthAtBounds(t *testing.T) {
	// The smallest frame there is: a stream number of one byte, one
	// event with a one-byte type, an ID the store assigned and nothing
	// else, in version 5. Its payload length is the lower bound. A frame
	// naming its stream takes one byte more, and the smallest of version
	// 1, whose events store their IDs, far more.
	var id [record.IDSize]byte
	body := record.AppendEventOf(5, record.AppendBodyHead(nil, "s", 1), id, "t", nil, nil)
	smallest := record.AppendNumberedFrame(nil, 1, 0, 1, 1, 0, "s", body)
	minLen := uint32(len(smallest) - record.HeaderSize)
	require.Equal(t, uint32(17), minLen)
	require.Len(t, record.AppendFrameOf(5, nil, 0, 0, 1, 0, body), len(smallest)+1)
	v1 := record.AppendFrame(nil, 0, 0, 1, 0, record.AppendEventOf(1, record.AppendBodyHead(nil, "s", 1), id, "t", nil, nil))
	require.Equal(t, 33, len(v1)-record.HeaderSize)
	_, err := record.DecodeHeader(smallest)
	require.NoError(t, err)
	for _, length := range []uint32{minLen, record.MaxPayload} {
		b := goldenFrame()[:record.HeaderSize]
		binary.LittleEndian.PutUint32(b[0:4], length)
		resealHeader(b)
		h, err := record.DecodeHeader(b)
		require.NoError(t, err, "length %d", length)
		assert.Equal(t, length, h.Length)
	}
}

func TestDecodeHeader_DeltaPastPosition(t *testing.T) {
	b := rawFrame(5, 6, rawPayload(0, 0, 0, testFrame{stream: "s", events: []testEvent{{typ: "t"}}}.body()))
	_, err := record.DecodeHeader(b)
	require.ErrorIs(t, err, record.ErrMalformed)

	// delta == position is a write that began at position 0: fine.
	b = rawFrame(6, 6, rawPayload(0, 0, 0, testFrame{stream: "s", events: []testEvent{{typ: "t"}}}.body()))
	h, err := record.DecodeHeader(b)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), h.SyncStart())
}

func TestDecodePayload_NonzeroFlags(t *testing.T) {
	for _, flags := range []byte{0x01, 0x80, 0xff} {
		frame := goldenFrame()
		frame[record.HeaderSize] = flags
		resealFrame(frame)
		h, err := record.DecodeHeader(frame)
		require.NoError(t, err, "checksums were recomputed")
		_, err = record.DecodePayload(h, frame[record.HeaderSize:], nil)
		require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
	}
}

// id1 is an event ID that can be sliced.
var id1 = idOf(1)

// eventBytes is one minimal encoded event.
func eventBytes(typ string) []byte {
	return record.AppendEventOf(1, nil, idOf(1), typ, nil, nil)
}

func TestDecodePayload_CountTooLarge(t *testing.T) {
	tests := []struct {
		name  string
		count uint64
	}{
		{"one more than present", 2},
		{"more than the bytes can hold", 1000},
		{"huge", 1 << 62},
		{"max", math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := binary.AppendUvarint([]byte{1, 's'}, tt.count)
			body = append(body, eventBytes("t")...)
			_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
			require.ErrorIs(t, err, record.ErrMalformed)
		})
	}
}

func TestDecodePayload_CountFitsButEventsShort(t *testing.T) {
	// Two events' worth of minimal bytes, but the first event's data length
	// claims them all, so the second event runs past the end.
	body := []byte{1, 's', 2}
	ev := record.AppendEventOf(1, nil, idOf(1), "t", nil, make([]byte, 20))
	body = append(body, ev...)
	_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
	require.ErrorIs(t, err, record.ErrMalformed)
}

func TestDecodePayload_ZeroCount(t *testing.T) {
	body := []byte{1, 's', 0}
	body = append(body, make([]byte, 20)...) // so the frame is not merely short
	_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
	require.ErrorIs(t, err, record.ErrMalformed)
}

func TestDecodePayload_TrailingBytes(t *testing.T) {
	for _, extra := range [][]byte{{0}, {0xff, 0xff}, eventBytes("t")} {
		body := append(testFrame{stream: "s", events: []testEvent{{id: idOf(1), typ: "t"}}}.body(), extra...)
		_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
		require.ErrorIs(t, err, record.ErrMalformed, "extra %x", extra)
	}
}

func TestDecodePayload_EmptyEventType(t *testing.T) {
	// The empty type is in the second event, after a valid first one.
	body := []byte{1, 's', 2}
	body = append(body, eventBytes("t")...)
	body = append(body, record.AppendEventOf(1, nil, idOf(2), "", []byte("meta"), []byte("data"))...)
	_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
	require.ErrorIs(t, err, record.ErrMalformed)
}

func TestDecodePayload_InvalidStream(t *testing.T) {
	for _, stream := range []string{"", "\xff", "ok\xc3"} {
		body := record.AppendBodyHead(nil, stream, 1)
		body = append(body, eventBytes("t")...)
		_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, body)))
		require.ErrorIs(t, err, record.ErrMalformed, "stream %q", stream)
	}
}

func TestDecodePayload_VersionOrPositionOverflow(t *testing.T) {
	body := append(record.AppendBodyHead(nil, "s", 2), eventBytes("a")...)
	body = append(body, eventBytes("b")...)

	_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, math.MaxUint64-1, body)))
	require.ErrorIs(t, err, record.ErrMalformed, "first version overflow")

	_, err = decodeFrame(t, rawFrame(math.MaxUint64-1, 0, rawPayload(0, 0, 0, body)))
	require.ErrorIs(t, err, record.ErrMalformed, "position overflow")

	// One below the overflow is fine.
	f, err := decodeFrame(t, rawFrame(math.MaxUint64-2, 0, rawPayload(0, 0, math.MaxUint64-2, body)))
	require.NoError(t, err)
	assert.Len(t, f.Events, 2)
}

func TestDecodePayload_BadVarint(t *testing.T) {
	// Eleven continuation bytes: longer than any uint64 varint.
	overlong := bytes.Repeat([]byte{0x80}, 11)
	ev := eventBytes("t")
	tests := []struct {
		name    string
		payload []byte
	}{
		{"first version", append(append(rawPayload(0, 0, 0, nil)[:9], overlong...), ev...)},
		{"stream length", rawPayload(0, 0, 0, append(bytes.Clone(overlong), ev...))},
		{"count", rawPayload(0, 0, 0, append(append([]byte{1, 's'}, overlong...), ev...))},
		{"type length", rawPayload(0, 0, 0, append(append(append([]byte{1, 's', 1}, id1[:]...), overlong...), 0, 0, 0))},
		{"varint at end", rawPayload(0, 0, 0, append(append(append([]byte{1, 's', 1}, id1[:]...), 1, 't', 0), 0x80))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame(t, rawFrame(10, 0, tt.payload))
			require.ErrorIs(t, err, record.ErrMalformed)
		})
	}
}

func TestDecodePayload_LengthPastEnd(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"stream", append([]byte{100, 's', 1}, eventBytes("t")...)},
		{"type", append(append([]byte{1, 's', 1}, id1[:]...), 50, 't', 0, 0)},
		{"metadata", append(append([]byte{1, 's', 1}, id1[:]...), 1, 't', 50, 0)},
		{"data", append(append([]byte{1, 's', 1}, id1[:]...), 1, 't', 0, 50)},
		{"data huge", append(append([]byte{1, 's', 1}, id1[:]...), 1, 't', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame(t, rawFrame(10, 0, rawPayload(0, 0, 0, tt.body)))
			require.ErrorIs(t, err, record.ErrMalformed)
		})
	}
}

func TestDecodePayload_PrefixOnly(t *testing.T) {
	// The smallest length DecodeHeader accepts, holding nothing valid.
	_, err := decodeFrame(t, rawFrame(0, 0, make([]byte, 13)))
	require.ErrorIs(t, err, record.ErrMalformed)
}

func TestDecodeSegmentHeader_BadMagic(t *testing.T) {
	for _, magic := range []string{"ESLH", "esl\x67", "\x00\x00\x00\x00", "GLSE"} {
		b := record.AppendSegmentHeader(nil, 7, 0)
		copy(b[0:4], magic)
		binary.LittleEndian.PutUint32(b[20:24], record.Checksum(b[:20]))
		_, err := record.DecodeSegmentHeader(b)
		require.ErrorIs(t, err, record.ErrMalformed, "magic %q", magic)
	}
}

func TestDecodeSegmentHeader_BadVersion(t *testing.T) {
	for _, version := range []byte{0, record.Version + 1, 0xff} {
		b := record.AppendSegmentHeader(nil, 7, 0)
		b[4] = version
		binary.LittleEndian.PutUint32(b[20:24], record.Checksum(b[:20]))
		_, err := record.DecodeSegmentHeader(b)
		require.ErrorIs(t, err, record.ErrMalformed, "version %d", version)
		// A later version is told apart, so that a store can say a later
		// release wrote the segment rather than call it damaged.
		assert.Equal(t, version > record.Version, errors.Is(err, record.ErrNewerVersion), "version %d", version)
	}
}

// fuzzFrameSeeds returns valid frames of several shapes.
func fuzzFrameSeeds() [][]byte {
	return [][]byte{
		goldenFrame(),
		goldenMarkedFrame(),
		goldenWeylFrame(),
		goldenV4Frame(),
		goldenNumberedFrame(),
		testFrame{position: 0, stream: "s", events: []testEvent{{typ: "t"}}}.encode(),
		testFrame{position: 100, delta: 7, timestamp: -5, firstVersion: 41, stream: "account-1", events: []testEvent{
			{id: idOf(0x10), typ: "Opened", metadata: []byte(`{"by":"a"}`), data: []byte(`{"owner":"x"}`)},
			{id: idOf(0x20), typ: "Deposited", data: []byte(`{"amount":5}`)},
			{id: idOf(0x30), typ: "Closed"},
		}}.encode(),
		testFrame{position: math.MaxUint64 - 1, delta: math.MaxUint32, timestamp: math.MaxInt64,
			firstVersion: 1 << 40, stream: "注文-😀", events: []testEvent{
				{id: idOf(0xf0), typ: strings.Repeat("T", 130), metadata: make([]byte, 200), data: []byte{0x80}},
			}}.encode(),
		// Compact frames (version 6), each of a segment in fuzzSegments.
		goldenCompactFrame(),
		goldenCompactNumberedFrame(),
		testFrame{position: 0, stream: "s", events: []testEvent{{typ: "t"}}}.encodeCompact(0),
		testFrame{position: 100, delta: 7, timestamp: -5, firstVersion: 41, stream: "account-1", events: []testEvent{
			{id: idOf(0x10), typ: "Opened", metadata: []byte(`{"by":"a"}`), data: []byte(`{"owner":"x"}`)},
			{typ: "Deposited"},
			{id: idOf(0x30), typ: strings.Repeat("T", 40), metadata: []byte("m"), data: make([]byte, 130)},
			{typ: "Closed", metadata: []byte("m")},
		}}.encodeCompact(0),
		testFrame{position: math.MaxUint64 - 1, delta: math.MaxUint32, timestamp: math.MaxInt64,
			firstVersion: 1 << 40, stream: "注文-😀", events: []testEvent{
				{id: idOf(0xf0), typ: strings.Repeat("T", 130), metadata: make([]byte, 200), data: []byte{0x80}},
			}}.encodeCompact(fuzzTopBase),
		record.AppendCompactNumberedFrame(nil, 0, 1, 0, 0, 1, 0, "s", 1,
			record.AppendLastEventOf(6, record.AppendBodyHeadOf(6, nil, "s", 1), [record.IDSize]byte{}, "t", nil, nil)), // the smallest
	}
}

// fuzzTopBase is the base of a segment whose compact frames' positions
// overflow past a rel of 1<<31.
const fuzzTopBase = math.MaxUint64 - 1<<31

// fuzzSegments are the segments FuzzDecodeFrame reads each input as a
// frame of: one of a version before 6, whose frame headers are 24 bytes
// (the version and base matter to no decoder), and segments of version 6,
// of compact frames, at a base of 0, the golden compact frames' base, and
// one where positions overflow.
var fuzzSegments = []record.SegmentHeader{
	{Version: 5},
	{Base: 0, Version: 6},
	{Base: goldenCompactBase, Version: 6},
	{Base: fuzzTopBase, Version: 6},
}

// resealForFuzz returns a copy of in whose header, of the size sh's
// frames have, claims the rest of in as its payload, with both checksums
// correct. The fuzzer cannot forge a CRC, so without this nearly every
// mutation stops at the header checksum and the payload decoder is never
// explored past the seeds.
func resealForFuzz(sh record.SegmentHeader, in []byte) ([]byte, bool) {
	hs := sh.HeaderSize()
	if len(in) < hs || len(in)-hs > record.MaxPayload {
		return nil, false
	}
	b := bytes.Clone(in)
	// The length's top bit, which names the keystream, stays as it was.
	weyl := binary.LittleEndian.Uint32(b[0:4]) & (1 << 31)
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(b)-hs)|weyl)
	binary.LittleEndian.PutUint32(b[4:8], record.Checksum(b[hs:]))
	binary.LittleEndian.PutUint32(b[hs-4:hs], record.Checksum(b[:hs-4]))
	return b, true
}

func isSentinel(err error) bool {
	return errors.Is(err, record.ErrShort) || errors.Is(err, record.ErrHeaderChecksum) ||
		errors.Is(err, record.ErrPayloadChecksum) || errors.Is(err, record.ErrMalformed)
}

// checkDecodersAgree checks that the decoder of one-event compact frames,
// where it takes a payload, decodes it as the general decoder does.
func checkDecodersAgree(t *testing.T, h record.Header, payload []byte) {
	fast, ok, general, err := record.DecodeBoth(h, payload)
	if !ok {
		return
	}
	require.NoError(t, err, "the one-event decoder took a payload the general decoder refuses")
	require.Equal(t, general, fast, "the one-event decoder and the general decoder differ")
}

// checkDecodeFrame is the property FuzzDecodeFrame checks on one input,
// read as a frame of the segment sh heads: no panic, errors are sentinels,
// decoded slices are bounded by the input, and a decoded frame re-encodes
// to exactly the bytes it came from (with the compact API in a segment of
// version 6).
func checkDecodeFrame(t *testing.T, sh record.SegmentHeader, in []byte) {
	h, err := sh.DecodeHeader(in)
	if err != nil {
		require.True(t, isSentinel(err), "DecodeHeader error is not a sentinel: %v", err)
		return
	}
	require.LessOrEqual(t, h.Length, uint32(record.MaxPayload))
	require.Equal(t, sh.Version >= 6, h.Compact())
	require.Equal(t, sh.HeaderSize(), h.Size())
	require.Equal(t, int64(h.Size())+int64(h.Length), h.FrameSize())
	require.Equal(t, h, sh.HeaderOf(in))
	if h.Compact() {
		require.GreaterOrEqual(t, h.Length, uint32(14), "the smallest compact payload")
		require.GreaterOrEqual(t, h.Position, sh.Base)
		require.LessOrEqual(t, h.Position-sh.Base, uint64(math.MaxUint32))
	}
	if int64(len(in)) < h.FrameSize() {
		return
	}
	frame := in[:h.FrameSize()]
	work := bytes.Clone(frame) // DecodePayload unmasks in place
	f, err := record.DecodePayload(h, work[h.Size():], nil)
	if errors.Is(err, record.ErrMalformed) || err == nil { // verified and unmasked
		checkDecodersAgree(t, h, work[h.Size():])
	}
	if err != nil {
		require.True(t, isSentinel(err), "DecodePayload error is not a sentinel: %v", err)
		return
	}
	require.Equal(t, h, f.Header)
	require.NotEmpty(t, f.Events)
	if f.Compact() {
		require.True(t, f.Marked && f.Weyl() && f.Tagged, "a compact frame is all version 5's frames are")
	}

	total := len(f.Stream)
	if f.Numbered {
		require.Nil(t, f.Stream)
		require.NotZero(t, f.FirstVersion, "a numbered frame holds no stream's version 0")
	}
	for i, e := range f.Events {
		require.NotEmpty(t, e.Type)
		total += len(e.Type) + len(e.Metadata) + len(e.Data)
		if !f.Assigned(i) { // an ID the store assigned is not in the input
			total += len(e.ID)
		}
	}
	require.LessOrEqual(t, total, len(in), "decoded bytes exceed the input")
	require.LessOrEqual(t, len(f.Events), len(in)/record.MinEventSize, "more events than the input can hold")

	if f.Compact() {
		require.Equal(t, hex.EncodeToString(frame), hex.EncodeToString(reencodeCompact(t, sh, f)),
			"re-encoding the decoded compact frame differs from the input")
		return
	}
	version := uint8(1)
	if f.Marked {
		version = 2
	}
	if f.Weyl() {
		version = 3
	}
	if f.Tagged {
		version = 4
	}
	stream := string(f.Stream)
	if f.Numbered {
		stream = "numbered" // any name: its field is replaced
	}
	body := record.AppendBodyHead(nil, stream, len(f.Events))
	for _, e := range f.Events {
		body = record.AppendEventOf(version, body, e.ID, string(e.Type), e.Metadata, e.Data)
	}
	var got []byte
	if f.Numbered {
		got = record.AppendNumberedFrame(nil, f.Position, f.SyncDelta(), f.Timestamp, f.FirstVersion, f.StreamStart, stream, body)
		require.Len(t, got, record.NumberedFrameSize(f.FirstVersion, f.StreamStart, stream, body))
	} else {
		got = record.AppendFrameOf(version, nil, f.Position, f.SyncDelta(), f.Timestamp, f.FirstVersion, body)
	}
	require.Equal(t, hex.EncodeToString(frame), hex.EncodeToString(got), "re-encoding the decoded frame differs from the input")
}

// reencodeCompact encodes f, a compact frame decoded from a segment sh
// heads, again with the compact API, checking it against the size
// functions.
func reencodeCompact(t *testing.T, sh record.SegmentHeader, f record.Frame) []byte {
	stream := string(f.Stream)
	if f.Numbered {
		stream = "numbered" // any name: its field is replaced
	}
	n := len(f.Events)
	body := record.AppendBodyHeadOf(6, nil, stream, n)
	for i, e := range f.Events {
		if i < n-1 {
			body = record.AppendEventOf(6, body, e.ID, string(e.Type), e.Metadata, e.Data)
		} else {
			body = record.AppendLastEventOf(6, body, e.ID, string(e.Type), e.Metadata, e.Data)
		}
	}
	if f.Numbered {
		got := record.AppendCompactNumberedFrame(nil, sh.Base, f.Position, f.SyncDelta(), f.Timestamp, f.FirstVersion, f.StreamStart, stream, n, body)
		require.Len(t, got, record.CompactNumberedFrameSize(f.FirstVersion, f.StreamStart, stream, body))
		return got
	}
	got := record.AppendCompactFrame(nil, sh.Base, f.Position, f.SyncDelta(), f.Timestamp, f.FirstVersion, n, body)
	require.Len(t, got, record.CompactFrameSize(f.FirstVersion, body))
	return got
}

// FuzzDecodeFrame reads each input as a frame of every segment in
// fuzzSegments, as it is and resealed: with 24-byte headers (versions 1 to
// 5) and with compact ones (version 6).
func FuzzDecodeFrame(f *testing.F) {
	seeds := fuzzFrameSeeds()
	for _, s := range seeds {
		f.Add(s)
	}
	for n := range len(seeds[0]) {
		f.Add(seeds[0][:n])
	}
	compact := goldenCompactNumberedFrame()
	for n := range len(compact) {
		f.Add(compact[:n])
	}
	f.Add(append(bytes.Clone(seeds[2]), seeds[3]...))
	f.Add(append(goldenCompactFrame(), compact...))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, sh := range fuzzSegments {
			checkDecodeFrame(t, sh, in)
			if sealed, ok := resealForFuzz(sh, in); ok {
				checkDecodeFrame(t, sh, sealed)
			}
		}
	})
}

// checkDecodeSegmentHeader is the property FuzzDecodeSegmentHeader checks on
// one input: no panic, errors are sentinels, and a decoded header re-encodes
// to exactly the bytes it came from.
func checkDecodeSegmentHeader(t *testing.T, in []byte) {
	sh, err := record.DecodeSegmentHeader(in)
	if err != nil {
		require.True(t, isSentinel(err), "DecodeSegmentHeader error is not a sentinel: %v", err)
		return
	}
	require.GreaterOrEqual(t, len(in), record.SegmentHeaderSize)
	require.GreaterOrEqual(t, sh.Version, uint8(1))
	require.LessOrEqual(t, sh.Version, uint8(record.Version))
	got := record.AppendSegmentHeader(nil, sh.Base, sh.Key)
	if sh.Version != record.Version { // a header of an earlier version, as written before
		if sh.Version < 4 {
			require.Zero(t, sh.Key, "a header before version 4 holds no key")
		}
		got[4] = sh.Version
		binary.LittleEndian.PutUint32(got[20:24], record.Checksum(got[:20]))
	}
	require.Equal(t, hex.EncodeToString(in[:record.SegmentHeaderSize]), hex.EncodeToString(got),
		"re-encoding the decoded segment header differs from the input")
}

func FuzzDecodeSegmentHeader(f *testing.F) {
	for _, base := range []uint64{0, 1734, math.MaxUint64} {
		f.Add(record.AppendSegmentHeader(nil, base, goldenKey))
	}
	f.Add(mustHex(f, goldenSegmentHeaderHex))   // version 1
	f.Add(mustHex(f, goldenSegmentHeaderV2Hex)) // version 2
	f.Add(mustHex(f, goldenSegmentHeaderV3Hex)) // version 3
	f.Add(mustHex(f, goldenSegmentHeaderV4Hex)) // version 4
	f.Add(mustHex(f, goldenSegmentHeaderV5Hex)) // version 5
	golden := record.AppendSegmentHeader(nil, goldenSegmentBase, goldenKey)
	for n := range len(golden) {
		f.Add(golden[:n])
	}
	f.Add(append(bytes.Clone(golden), goldenFrame()...))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecodeSegmentHeader(t, in)
		if len(in) >= record.SegmentHeaderSize {
			// As for frames: the fuzzer cannot forge the CRC itself.
			sealed := bytes.Clone(in)
			binary.LittleEndian.PutUint32(sealed[20:24], record.Checksum(sealed[:20]))
			checkDecodeSegmentHeader(t, sealed)
		}
	})
}

func TestDecodePayload_OverlongVarint(t *testing.T) {
	// The same event with its type length written 01 (valid) and 81 00 (1,
	// padded to two bytes): checksums pass either way, but only the
	// shortest encoding is valid.
	body := func(typeLen ...byte) []byte {
		b := record.AppendBodyHead(nil, "s", 1)
		b = append(b, make([]byte, record.IDSize)...)
		b = append(b, typeLen...)
		return append(b, 't', 0, 0)
	}
	f, err := decodeFrame(t, rawFrame(0, 0, rawPayload(0, 1, 0, body(0x01))))
	require.NoError(t, err)
	assert.Equal(t, []byte("t"), f.Events[0].Type)
	_, err = decodeFrame(t, rawFrame(0, 0, rawPayload(0, 1, 0, body(0x81, 0x00))))
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "varint")
}

func TestMask_RunsOfZerosNeverSurvive(t *testing.T) {
	// An all-zero payload is stored without any long run of zeros, at any
	// position, and masking twice gives the bytes back.
	for _, pos := range []uint64{0, 1, 7, 1 << 40, math.MaxUint64} {
		b := make([]byte, 4096)
		record.Mask(b, pos)
		assert.Less(t, longestZeroRun(b), 4, "position %d", pos)
		record.Mask(b, pos)
		assert.Equal(t, make([]byte, 4096), b, "position %d", pos)
	}
}

func TestMask_IsSplitmix64(t *testing.T) {
	// The keystream is splitmix64 seeded with position*0xbf58476d1ce4e5b9,
	// eight little-endian bytes a step, whatever the length: Mask's unrolled
	// loop must give exactly the bytes this one-word-a-step form gives.
	reference := func(b []byte, position uint64) {
		state := position * 0xbf58476d1ce4e5b9
		for i := range b {
			if i%8 == 0 {
				state += 0x9e3779b97f4a7c15
			}
			z := state
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			z ^= z >> 31
			b[i] ^= byte(z >> (8 * (i % 8)))
		}
	}
	requireMaskMatches(t, record.Mask, reference)
}

// requireMaskMatches requires mask to give the bytes reference gives, for
// every length below 100 at several positions, and applying it twice to
// give the input back.
func requireMaskMatches(t *testing.T, mask, reference func(b []byte, position uint64)) {
	t.Helper()
	for n := range 100 {
		for _, pos := range []uint64{0, 3, 1 << 33, math.MaxUint64} {
			got, want := make([]byte, n), make([]byte, n)
			for i := range got {
				got[i], want[i] = byte(i*31), byte(i*31)
			}
			mask(got, pos)
			reference(want, pos)
			require.Equal(t, want, got, "length %d, position %d", n, pos)
			mask(got, pos)
			for i := range got {
				require.Equal(t, byte(i*31), got[i], "masking twice gives the bytes back")
			}
		}
	}
}

func TestMaskWeyl_IsAWeylSequence(t *testing.T) {
	// The keystream starts at splitmix64's output for the position (seeded
	// as Mask's is) and adds 0x9e3779b97f4a7c15 for each eight bytes, the
	// first word included; MaskWeyl's unrolled loop must give exactly the
	// bytes this one-word-a-step form gives.
	reference := func(b []byte, position uint64) {
		z := position * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		state := z ^ (z >> 31)
		for i := range b {
			if i%8 == 0 {
				state += 0x9e3779b97f4a7c15
			}
			b[i] ^= byte(state >> (8 * (i % 8)))
		}
	}
	requireMaskMatches(t, record.MaskWeyl, reference)
}

func TestSumUnmaskWeyl_IsChecksumThenMaskWeyl(t *testing.T) {
	// The one pass over a payload (in assembly on amd64) must give the
	// checksum of the bytes as they were, and leave MaskWeyl's bytes, at
	// every length through the word loop and the tail of 0 to 7 bytes, at any
	// alignment and position.
	// The bytes either side of the payload must stay as they were.
	rng := rand.New(rand.NewPCG(3, 4))
	const guard = 0xa5
	var lengths []int
	for n := 0; n <= 600; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4<<10-1, 4<<10, 64<<10+5) // either side of the two-pass threshold
	buf := make([]byte, 64<<10+5+16)
	for _, n := range lengths {
		for _, align := range []int{0, 1, 3, 7} {
			for i := range buf {
				buf[i] = guard
			}
			pos := rng.Uint64()
			b := buf[align : align+n]
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			want := bytes.Clone(b)
			sum := record.Checksum(want)
			record.MaskWeyl(want, pos)
			require.Equal(t, sum, record.SumUnmaskWeyl(b, pos), "checksum of %d bytes at alignment %d", n, align)
			require.Equal(t, want, b, "unmasked %d bytes at alignment %d", n, align)
			require.Equal(t, bytes.Repeat([]byte{guard}, align), buf[:align], "bytes before %d at alignment %d", n, align)
			require.Equal(t, bytes.Repeat([]byte{guard}, len(buf)-align-n), buf[align+n:], "bytes after %d at alignment %d", n, align)
		}
	}
}

func TestSumHeader_IsChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		require.Equal(t, record.Checksum(b[:]), record.SumHeader(&b), "header % x", b)
	}
}

func TestVerifyPayload_Empty(t *testing.T) {
	// No header the decoders pass gives a length of 0, but VerifyPayload
	// must not index an empty payload: the checksum of no bytes is 0.
	h := record.NewHeader(0, 1, 7, 0, true, true)
	require.ErrorIs(t, record.VerifyPayload(h, []byte{}), record.ErrPayloadChecksum)
	h = record.NewHeader(0, 0, 7, 0, true, true)
	require.ErrorIs(t, record.VerifyPayload(h, []byte{}), record.ErrMalformed)
}

func TestVerifyPayload_MismatchLeavesTheBytesAsRead(t *testing.T) {
	// A checksum mismatch must not leave the payload half unmasked: a
	// caller reporting the damage, or reading the frame again, sees the
	// bytes the file holds.
	for _, frame := range [][]byte{goldenWeylFrame(), goldenMarkedFrame()} {
		h, err := record.DecodeHeader(frame)
		require.NoError(t, err)
		payload := bytes.Clone(frame[record.HeaderSize:])
		payload[3] ^= 0x10
		read := bytes.Clone(payload)
		require.ErrorIs(t, record.VerifyPayload(h, payload), record.ErrPayloadChecksum)
		require.Equal(t, read, payload)
	}
}

// longestZeroRun is the length of the longest run of zero bytes in b.
func longestZeroRun(b []byte) int {
	run, longest := 0, 0
	for _, c := range b {
		if c == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func TestMaskWeyl_RunsOfZerosNeverSurvive(t *testing.T) {
	// What recovery needs of a masked payload: no run of 16 zero bytes,
	// whatever the events hold. For all-zero data the bound is 8 (see
	// MaskWeyl); data of other repeating shapes, and counters, must not
	// reach 16 either.
	zeros := make([]byte, 4096)
	shapes := map[string]func(i int) byte{
		"ones":    func(int) byte { return 0xff },
		"text":    func(i int) byte { return "the quick brown fox "[i%20] },
		"counter": func(i int) byte { return byte(i / 8) },
		"words":   func(i int) byte { return byte(uint64(i/8) >> (8 * (i % 8))) },
	}
	for pos := range uint64(2000) {
		pos := pos * 0x9e3779b97f4a7c15 // spread over the whole range
		b := make([]byte, 4096)
		record.MaskWeyl(b, pos)
		require.LessOrEqual(t, longestZeroRun(b), 8, "zeros at position %d", pos)
		record.MaskWeyl(b, pos)
		require.Equal(t, zeros, b)
		for name, shape := range shapes {
			for i := range b {
				b[i] = shape(i)
			}
			record.MaskWeyl(b, pos)
			require.Less(t, longestZeroRun(b), 16, "%s at position %d", name, pos)
		}
	}
}

func TestAppendFrameOf_Golden(t *testing.T) {
	got := goldenWeylFrame()
	require.Equal(t, goldenWeylFrameHex, hex.EncodeToString(got), "version-3 frame encoding changed")
	marked := goldenMarkedFrame()
	require.Len(t, got, len(marked), "a version-3 frame is as large as a version-2 one")
	assert.Equal(t, uint32(72|1<<31), binary.LittleEndian.Uint32(got[0:4]), "the length's top bit names the keystream")
	assert.Equal(t, byte(record.EndMark), got[len(got)-1], "the end mark is stored as is")
	assert.Equal(t, record.Checksum(got[24:]), binary.LittleEndian.Uint32(got[4:8]), "pcrc covers the stored bytes")
	assert.Equal(t, marked[8:20], got[8:20], "position and delta as in version 2")

	payload := bytes.Clone(got[record.HeaderSize : len(got)-1])
	record.MaskWeyl(payload, goldenPosition)
	plain := bytes.Clone(marked[record.HeaderSize : len(marked)-1])
	record.Mask(plain, goldenPosition)
	assert.Equal(t, byte(3), payload[0], "flags: end mark and Weyl keystream")
	assert.Equal(t, plain[1:], payload[1:], "the same fields as version 2, under another keystream")

	h, err := record.DecodeHeader(got)
	require.NoError(t, err)
	assert.Equal(t, record.NewHeader(72, 0xe616583e, goldenPosition, goldenDelta, true, false), h)
	assert.Equal(t, h, record.HeaderOf(got))
	f, err := record.DecodePayload(h, bytes.Clone(got[record.HeaderSize:]), nil)
	require.NoError(t, err)
	assert.True(t, f.Marked)
	assert.True(t, f.Weyl())
	assertGoldenEvents(t, f)

	// Versions 1 and 2 are the frames AppendFrame and AppendMarkedFrame
	// write; version 4 is TestAppendFrameOf_GoldenVersion4's; version 6's
	// frames are compact, and need the segment's base, so
	// AppendCompactFrame writes them (TestAppendCompactFrame_Golden);
	// there is no other version to write.
	body := goldenBody()
	assert.Equal(t, goldenFrame(), record.AppendFrameOf(1, nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, body))
	assert.Equal(t, marked, record.AppendFrameOf(2, nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, body))
	for _, version := range []uint8{0, 6, record.Version + 1} {
		assert.Panics(t, func() { record.AppendFrameOf(version, nil, 0, 0, 0, 0, body) }, "version %d", version)
	}
}

func goldenV4Frame() []byte {
	body := record.AppendBodyHead(nil, goldenStream, 2)
	body = record.AppendEventOf(4, body, goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData))
	body = record.AppendEventOf(4, body, [record.IDSize]byte{}, "Shipped", nil, []byte("{}"))
	return record.AppendFrameOf(4, nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, body)
}

func TestAppendFrameOf_GoldenVersion4(t *testing.T) {
	got := goldenV4Frame()
	require.Equal(t, goldenV4FrameHex, hex.EncodeToString(got), "version-4 frame encoding changed")
	assert.Equal(t, uint32(84|1<<31), binary.LittleEndian.Uint32(got[0:4]), "the length's top bit names the keystream")
	assert.Equal(t, byte(record.EndMark), got[len(got)-1], "the end mark is stored as is")
	assert.Equal(t, record.Checksum(got[24:]), binary.LittleEndian.Uint32(got[4:8]), "pcrc covers the stored bytes")

	// The payload, built here byte by byte from the diagram rather than by
	// the encoder.
	var payload []byte
	payload = append(payload, 0x07)                                           // flags: end mark, Weyl, tags
	payload = append(payload, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17) // timestamp LE
	payload = append(payload, 0xac, 0x02)                                     // first version 300
	payload = append(payload, 9)                                              // stream len
	payload = append(payload, "orders-42"...)                                 //
	payload = append(payload, 2)                                              // count
	payload = append(payload, 11<<1|1)                                        // tag: type len 11, ID stored
	payload = append(payload, goldenID[:]...)                                 // id
	payload = append(payload, "OrderPlaced"...)                               //
	payload = append(payload, 7)                                              // metadata len
	payload = append(payload, `{"u":7}`...)                                   //
	payload = append(payload, 12)                                             // data len
	payload = append(payload, `{"total":99}`...)                              //
	payload = append(payload, 7<<1)                                           // tag: type len 7, ID assigned
	payload = append(payload, "Shipped"...)                                   //
	payload = append(payload, 0)                                              // metadata len
	payload = append(payload, 2)                                              // data len
	payload = append(payload, "{}"...)                                        //
	payload = append(payload, 0)                                              // the end mark's place
	record.MaskWeyl(payload, goldenPosition)
	payload[len(payload)-1] = record.EndMark
	assert.Equal(t, payload, got[24:], "payload layout, masked")

	h, err := record.DecodeHeader(got)
	require.NoError(t, err)
	f, err := record.DecodePayload(h, bytes.Clone(got[record.HeaderSize:]), nil)
	require.NoError(t, err)
	assert.True(t, f.Marked)
	assert.True(t, f.Weyl())
	assert.True(t, f.Tagged)
	require.Len(t, f.Events, 2)
	assert.False(t, f.Assigned(0))
	assert.Equal(t, goldenID, f.Events[0].ID)
	f.Key = goldenKey
	assert.Equal(t, goldenID, f.ID(0), "a stored ID is the ID, whatever the key")
	assert.Equal(t, []byte(goldenData), f.Events[0].Data)
	assert.True(t, f.Assigned(1))
	assert.Zero(t, f.Events[1].ID)
	assert.Equal(t, []byte("Shipped"), f.Events[1].Type)
	assert.Nil(t, f.Events[1].Metadata)
	assert.Equal(t, []byte("{}"), f.Events[1].Data)
	id := f.ID(1)
	assert.Equal(t, goldenAssignedIDHex, hex.EncodeToString(id[:]))
}

// AssignedID gives a UUID of version 7 whose time is the frame's, and no
// two positions of one store the same ID, even at one timestamp; a store of
// another key assigns others.
func TestAssignedID(t *testing.T) {
	const ts = int64(1700000000123456789)
	seen := make(map[[record.IDSize]byte]uint64)
	for _, key := range []uint64{0, goldenKey, goldenKey ^ 1, 1<<record.KeyBits - 1} {
		for p := range uint64(20000) {
			id := record.AssignedID(key, p, ts)
			require.Equal(t, byte(0x70), id[6]&0xf0, "version 7")
			require.Equal(t, byte(0x80), id[8]&0xc0, "variant 10")
			require.Equal(t, uint64(ts/1e6), binary.BigEndian.Uint64(id[0:8])>>16, "milliseconds in the first 48 bits")
			if prev, ok := seen[id]; ok {
				t.Fatalf("key %#x position %d: the ID of %d", key, p, prev)
			}
			seen[id] = p
		}
	}
	a, b := record.AssignedID(goldenKey, 5, ts), record.AssignedID(goldenKey, 5, ts+1e6)
	assert.Equal(t, a[6:], b[6:], "the time changes only the time bits")
	assert.NotEqual(t, a, b)
	assert.Equal(t, record.AssignedID(goldenKey, 5, 0), record.AssignedID(goldenKey, 5, -1), "a time before 1970 is 0")
}

// A Frame keeps its key's mix between calls of PutID, for the frames of
// one segment; a reader moving to a segment of another key, or to one of
// key 0, sets Key and must get that key's IDs, not the last one's.
func TestFrame_PutIDFollowsTheKey(t *testing.T) {
	const ts = int64(1700000000123456789)
	var f record.Frame
	f.Tagged = true
	f.Timestamp = ts
	f.Events = make([]record.Event, 2)
	for _, key := range []uint64{0, goldenKey, goldenKey, goldenKey ^ 1, 0, 1<<record.KeyBits - 1, goldenKey} {
		f.Key = key
		for _, p := range []uint64{0, 1, 1 << 40} {
			f.Position = p
			for i := range f.Events {
				var id [record.IDSize]byte
				f.PutID(i, &id)
				require.Equal(t, record.AssignedID(key, p+uint64(i), ts), id, "key %#x position %d event %d", key, p, i)
			}
		}
	}
	g := f // a copy keeps the mix of the key it copies
	assert.Equal(t, record.AssignedID(goldenKey, 1<<40, ts), g.ID(0))
	g.Key = 0
	assert.Equal(t, record.AssignedID(0, 1<<40, ts), g.ID(0))
	assert.Equal(t, record.AssignedID(goldenKey, 1<<40+1, ts), f.ID(1), "the original keeps its own")
}

// AssignedPosition finds the position an assigned ID was derived from,
// whatever the time, and rules out IDs of another version, variant or key.
func TestAssignedPosition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []uint64{0, goldenKey, 1<<record.KeyBits - 1, rng.Uint64() & (1<<record.KeyBits - 1)}
	positions := []uint64{0, 1, 2, 1 << 32, math.MaxUint64}
	for range 10000 {
		positions = append(positions, rng.Uint64(), rng.Uint64N(1<<40))
	}
	for _, key := range keys {
		for _, p := range positions {
			ts := rng.Int64N(1 << 62)
			got, ok := record.AssignedPosition(key, record.AssignedID(key, p, ts))
			require.True(t, ok, "key %#x position %d", key, p)
			require.Equal(t, p, got, "key %#x", key)
		}
	}
	id := record.AssignedID(goldenKey, 77, 1)
	_, ok := record.AssignedPosition(goldenKey^1, id)
	assert.False(t, ok, "another key's low bits")
	got, ok := record.AssignedPosition(goldenKey^1<<10, id)
	assert.True(t, ok, "a key differing above its low 10 bits is not told apart")
	assert.NotEqual(t, uint64(77), got)
	other := id
	other[6] = other[6]&0x0f | 0x40
	_, ok = record.AssignedPosition(goldenKey, other)
	assert.False(t, ok, "version 4")
	other = id
	other[8] = other[8]&0x3f | 0xc0
	_, ok = record.AssignedPosition(goldenKey, other)
	assert.False(t, ok, "variant 11")
}

// A version-4 event with a one-byte tag takes the decoder's fast path,
// one with a longer type its general path; both agree with the encoder,
// and both refuse a stored zero ID, the encoding of an assigned one.
func TestDecodePayload_TaggedEvents(t *testing.T) {
	for _, typ := range []string{"t", strings.Repeat("T", 63), strings.Repeat("T", 64), strings.Repeat("T", 300)} {
		for _, id := range [][record.IDSize]byte{{}, idOf(1)} {
			body := record.AppendBodyHead(nil, "s", 1)
			body = record.AppendEventOf(4, body, id, typ, []byte("m"), []byte("d"))
			f, err := decodeFrame(t, record.AppendFrameOf(4, nil, 9, 0, 1, 0, body))
			require.NoError(t, err, "type of %d bytes", len(typ))
			require.Len(t, f.Events, 1)
			assert.Equal(t, id == [record.IDSize]byte{}, f.Assigned(0))
			assert.Equal(t, id, f.Events[0].ID)
			assert.Equal(t, typ, string(f.Events[0].Type))
			assert.Equal(t, "m", string(f.Events[0].Metadata))
			assert.Equal(t, "d", string(f.Events[0].Data))

			if id == [record.IDSize]byte{} {
				continue
			}
			zero := bytes.Clone(body)
			i := bytes.Index(zero, id[:])
			clear(zero[i : i+record.IDSize])
			_, err = decodeFrame(t, record.AppendFrameOf(4, nil, 9, 0, 1, 0, zero))
			require.ErrorIs(t, err, record.ErrMalformed, "a stored zero ID, type of %d bytes", len(typ))
		}
	}
	// An untagged (version-3) body read as tagged does not decode, nor the
	// other way round.
	body := record.AppendEventOf(3, record.AppendBodyHead(nil, "s", 1), idOf(1), "t", nil, nil)
	_, err := decodeFrame(t, record.AppendFrameOf(4, nil, 9, 0, 1, 0, body))
	require.ErrorIs(t, err, record.ErrMalformed)
	body = record.AppendEventOf(4, record.AppendBodyHead(nil, "s", 1), [record.IDSize]byte{}, "t", nil, nil)
	_, err = decodeFrame(t, record.AppendFrameOf(3, nil, 9, 0, 1, 0, body))
	require.ErrorIs(t, err, record.ErrMalformed)
}

// A tagged event is at least 4 bytes: a frame claiming more events than
// its bytes hold at 4 each is refused by the count's bound, which the
// decoder checks before it decodes any, and one claiming exactly that many
// decodes.
func TestDecodePayload_TaggedCountBound(t *testing.T) {
	const n = 50
	frame := func(count int) []byte {
		body := record.AppendBodyHead(nil, "s", count)
		for range n {
			body = record.AppendEventOf(4, body, [record.IDSize]byte{}, "t", nil, nil)
		}
		require.Len(t, body, 3+n*4) // a tag, a type of one byte and two empty lengths each
		return record.AppendFrameOf(4, nil, 9, 0, 1, 0, body)
	}
	f, err := decodeFrame(t, frame(n))
	require.NoError(t, err)
	require.Len(t, f.Events, n)
	_, err = decodeFrame(t, frame(n+1))
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "does not fit")
}

// TestAppendFrameOf_RoundTripsEveryVersion: frames of every version,
// AppendFrameOf's up to version 5 and AppendCompactFrame's in version 6,
// whose frames need the segment's base, decode to what went in.
func TestAppendFrameOf_RoundTripsEveryVersion(t *testing.T) {
	for version := uint8(1); version <= record.Version; version++ {
		for n := range 300 {
			for _, fill := range []byte{0, 0xff, 0x5a} {
				data := bytes.Repeat([]byte{fill}, n)
				sh := record.SegmentHeader{Version: version}
				position := uint64(n) << 20
				var frame []byte
				if version <= 5 {
					body := record.AppendBodyHead(nil, "s", 2)
					body = record.AppendEventOf(version, body, [record.IDSize]byte{}, "t", nil, data)
					body = record.AppendEventOf(version, body, idOf(byte(n)), "u", data, nil)
					frame = record.AppendFrameOf(version, nil, position, 0, 0, uint64(n), body)
				} else {
					// The same events, the second the frame's last, whose
					// data runs to the end mark.
					sh.Base = uint64(n) << 19
					body := record.AppendBodyHeadOf(version, nil, "s", 2)
					body = record.AppendEventOf(version, body, [record.IDSize]byte{}, "t", nil, data)
					body = record.AppendLastEventOf(version, body, idOf(byte(n)), "u", data, nil)
					frame = record.AppendCompactFrame(nil, sh.Base, position, 0, 0, uint64(n), 2, body)
					require.Len(t, frame, record.CompactFrameSize(uint64(n), body))
				}
				if version >= 2 {
					require.Equal(t, byte(record.EndMark), frame[len(frame)-1])
				}
				f, err := decodeFrameIn(t, sh, frame)
				require.NoError(t, err, "version %d, %d bytes of %#x", version, n, fill)
				assert.Equal(t, position, f.Position)
				assert.Equal(t, version >= 2, f.Marked)
				assert.Equal(t, version >= 3, f.Weyl())
				assert.Equal(t, version >= 4, f.Tagged)
				assert.Equal(t, version >= 6, f.Compact())
				require.Len(t, f.Events, 2)
				assert.Equal(t, version >= 4, f.Assigned(0), "a zero ID is left to the store from version 4")
				assert.False(t, f.Assigned(1))
				assert.Equal(t, idOf(byte(n)), f.Events[1].ID)
				require.Equal(t, string(data), string(f.Events[0].Data))
				require.Equal(t, string(data), string(f.Events[1].Metadata))
			}
		}
	}
}

// TestDecodePayload_KeystreamMustMatchFlags: the header's bit and the
// payload's flags must name the same keystream. A frame whose bit was
// cleared or set (by a bug: the header checksum covers it) is unmasked with
// the other keystream, and its flags, read through the wrong key, give it
// away; so does a frame written with flags that contradict its bit.
func TestDecodePayload_KeystreamMustMatchFlags(t *testing.T) {
	flip := func(frame []byte) []byte {
		frame = bytes.Clone(frame)
		binary.LittleEndian.PutUint32(frame[0:4], binary.LittleEndian.Uint32(frame[0:4])^1<<31)
		resealHeader(frame)
		return frame
	}
	for name, frame := range map[string][]byte{
		"version 3 read as splitmix64": flip(goldenWeylFrame()),
		"version 2 read as Weyl":       flip(goldenMarkedFrame()),
		"version 1 read as Weyl":       flip(goldenFrame()),
	} {
		_, err := decodeFrame(t, frame)
		require.ErrorIs(t, err, record.ErrMalformed, name)
	}
	// Flags that a version-3 frame may not hold, under its own keystream.
	for _, flags := range []byte{0, 1, 2, 5, 6, 0x83, 0xff} {
		frame := goldenWeylFrame()
		payload := frame[record.HeaderSize:]
		record.MaskWeyl(payload, goldenPosition)
		payload[0] = flags
		record.MaskWeyl(payload, goldenPosition)
		payload[len(payload)-1] = record.EndMark
		resealFrame(frame)
		_, err := decodeFrame(t, frame)
		require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
	}
	// And flags 3 under splitmix64, in a frame without the bit.
	frame := goldenMarkedFrame()
	payload := frame[record.HeaderSize:]
	record.Mask(payload, goldenPosition)
	payload[0] = 3
	record.Mask(payload, goldenPosition)
	payload[len(payload)-1] = record.EndMark
	resealFrame(frame)
	_, err := decodeFrame(t, frame)
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "keystream")
}

func TestDecodeHeader_LengthBitsBesideTheKeystream(t *testing.T) {
	// Only the top bit of the length field names the keystream; any other
	// bit above MaxPayload's makes the length out of range.
	for _, bits := range []uint32{1 << 30, 1 << 29, 1<<31 | 1<<30, 1<<31 | 1<<29} {
		frame := goldenWeylFrame()
		binary.LittleEndian.PutUint32(frame[0:4], 72|bits)
		resealHeader(frame)
		_, err := record.DecodeHeader(frame)
		require.ErrorIs(t, err, record.ErrMalformed, "length bits %#x", bits)
	}
}

// Bytes 5-7 and 16-19 are reserved, and zero, before version 4, which
// keeps the store's ID key there.
func TestDecodeSegmentHeader_ReservedBytes(t *testing.T) {
	for _, i := range []int{5, 6, 7, 16, 17, 18, 19} {
		b := record.AppendSegmentHeader(nil, 7, 0)
		b[4] = 3
		b[i] = 1
		binary.LittleEndian.PutUint32(b[20:24], record.Checksum(b[:20]))
		_, err := record.DecodeSegmentHeader(b)
		require.ErrorIs(t, err, record.ErrMalformed, "reserved byte %d", i)
	}
}

// goldenNumberedFrame is goldenV4Frame's events in a version-5 frame that
// names its stream by number, 1000.
func goldenNumberedFrame() []byte {
	body := record.AppendBodyHead(nil, goldenStream, 2)
	body = record.AppendEventOf(5, body, goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData))
	body = record.AppendEventOf(5, body, [record.IDSize]byte{}, "Shipped", nil, []byte("{}"))
	return record.AppendNumberedFrame(nil, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, 1000, goldenStream, body)
}

func TestAppendNumberedFrame_Golden(t *testing.T) {
	got := goldenNumberedFrame()
	named := goldenV4Frame()
	// The stream field, 10 bytes for "orders-42", becomes 2 for 1000.
	require.Len(t, got, len(named)-8)
	body := record.AppendBodyHead(nil, goldenStream, 2)
	body = record.AppendEventOf(5, body, goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData))
	body = record.AppendEventOf(5, body, [record.IDSize]byte{}, "Shipped", nil, []byte("{}"))
	require.Equal(t, len(got), record.NumberedFrameSize(goldenFirstVersion, 1000, goldenStream, body), "NumberedFrameSize")
	assert.Equal(t, uint32(76|1<<31), binary.LittleEndian.Uint32(got[0:4]))

	// The payload, built byte by byte from the diagram: version 4's with
	// the numbered flag and the number in the stream field's place.
	var payload []byte
	payload = append(payload, 0x0f)                                           // flags: end mark, Weyl, tags, numbered
	payload = append(payload, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17) // timestamp LE
	payload = append(payload, 0xac, 0x02)                                     // first version 300
	payload = append(payload, 0xe8, 0x07)                                     // stream number 1000
	payload = append(payload, 2)                                              // count
	payload = append(payload, 11<<1|1)                                        // tag: type len 11, ID stored
	payload = append(payload, goldenID[:]...)                                 // id
	payload = append(payload, "OrderPlaced"...)                               //
	payload = append(payload, 7)                                              // metadata len
	payload = append(payload, `{"u":7}`...)                                   //
	payload = append(payload, byte(len(goldenData)))                          // data len
	payload = append(payload, goldenData...)                                  //
	payload = append(payload, 7<<1)                                           // tag: type len 7, ID assigned
	payload = append(payload, "Shipped"...)                                   //
	payload = append(payload, 0, 2)                                           // metadata len, data len
	payload = append(payload, "{}"...)                                        //
	payload = append(payload, 0)                                              // the end mark's place
	record.MaskWeyl(payload, goldenPosition)
	payload[len(payload)-1] = record.EndMark
	assert.Equal(t, hex.EncodeToString(payload), hex.EncodeToString(got[24:]), "payload layout, masked")
	assert.Equal(t, record.Checksum(got[24:]), binary.LittleEndian.Uint32(got[4:8]))
	assert.Equal(t, named[8:20], got[8:20], "position and delta as in any frame")

	f, err := decodeFrame(t, bytes.Clone(got))
	require.NoError(t, err)
	assert.True(t, f.Numbered)
	assert.Equal(t, uint64(1000), f.StreamStart)
	assert.Nil(t, f.Stream)
	assert.Equal(t, uint64(goldenFirstVersion), f.FirstVersion)
	require.Len(t, f.Events, 2)
	assert.Equal(t, goldenID, f.Events[0].ID)
	assert.True(t, f.Assigned(1))
	assert.Equal(t, []byte("{}"), f.Events[1].Data)

	// The same Frame decoding a named frame next forgets the number.
	named = goldenV4Frame()
	h, err := record.DecodeHeader(named)
	require.NoError(t, err)
	require.NoError(t, f.DecodeVerified(h, unmasked(t, h, named)))
	assert.False(t, f.Numbered)
	assert.Zero(t, f.StreamStart)
	assert.Equal(t, goldenStream, string(f.Stream))

	assert.Panics(t, func() {
		record.AppendNumberedFrame(nil, 1, 0, 0, 0, 3, goldenStream, body)
	}, "a stream's version 0 is in the frame that names it")
}

// unmasked returns a verified, unmasked copy of frame's payload; h is
// frame's header, of either size.
func unmasked(t *testing.T, h record.Header, frame []byte) []byte {
	t.Helper()
	payload := bytes.Clone(frame[h.Size():h.FrameSize()])
	require.NoError(t, record.VerifyPayload(h, payload))
	return payload
}

// TestDecodePayload_NumberedFrameRules: a numbered frame never holds a
// stream's version 0, names a stream started before it, and is tagged.
func TestDecodePayload_NumberedFrameRules(t *testing.T) {
	body := record.AppendBodyHead(nil, "s", 1)
	body = record.AppendEventOf(5, body, [record.IDSize]byte{}, "t", nil, []byte("x"))
	// Forge each wrong frame by rewriting the payload of a valid one and
	// sealing it again, so that only the rule under test fails.
	forge := func(firstVersion uint64, flags byte, start ...byte) []byte {
		frame := record.AppendNumberedFrame(nil, 9, 0, 1, max(firstVersion, 1), 2, "s", body)
		h := record.HeaderOf(frame)
		payload := unmasked(t, h, frame)
		payload[0] = flags
		payload[9] = byte(firstVersion) // a one-byte uvarint either way
		if len(start) > 0 {
			payload[10] = start[0]
		}
		payload[len(payload)-1] = 0
		record.MaskWeyl(payload, 9)
		payload[len(payload)-1] = record.EndMark
		copy(frame[record.HeaderSize:], payload)
		binary.LittleEndian.PutUint32(frame[4:8], record.Checksum(frame[record.HeaderSize:]))
		binary.LittleEndian.PutUint32(frame[20:24], record.Checksum(frame[:20]))
		return frame
	}
	f, err := decodeFrame(t, forge(1, 0x0f))
	require.NoError(t, err, "the forgery itself is sound")
	assert.Equal(t, uint64(2), f.StreamStart)

	_, err = decodeFrame(t, forge(0, 0x0f))
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "version 0")
	for _, start := range []byte{9, 10} { // the frame's own position, or later
		_, err = decodeFrame(t, forge(1, 0x0f, start))
		require.ErrorIs(t, err, record.ErrMalformed)
		assert.ErrorContains(t, err, "not a position before")
	}
	f, err = decodeFrame(t, forge(1, 0x0f, 8))
	require.NoError(t, err)
	assert.Equal(t, uint64(8), f.StreamStart)

	// Numbered without tags, without the end mark, and with neither: flags
	// of no version. (Without the Weyl bit they also disagree with the
	// header, which names that keystream.)
	for _, flags := range []byte{0x0b, 0x0e, 0x0a} {
		_, err = decodeFrame(t, forge(1, flags))
		require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
		assert.ErrorContains(t, err, "unknown flags", "flags %#x", flags)
	}
}

// goldenCompactBase is the base of the segment the golden compact frames
// are in: goldenPosition is 0x05060708 past it, four distinct bytes.
const goldenCompactBase = uint64(0x0102030400000000)

// compactSegment is the header of the segment of version 6 that the
// golden compact frames are in.
var compactSegment = record.SegmentHeader{Base: goldenCompactBase, Version: 6, Key: goldenKey}

// goldenCompactFrameHex is goldenCompactFrame's encoding: the golden
// event, with an ID the store assigned and no metadata, alone in a compact
// frame. Checked against a separate implementation of the Weyl keystream
// and of CRC-32C:
//
//	2e000080          length 46, its top bit set: the Weyl keystream
//	353fae98          pcrc 0x98ae3f35, of the 46 stored payload bytes
//	08070605          rel 0x05060708: goldenPosition less the base
//	03000000          delta 3
//	156c1dd2          hcrc 0xd21d6c15, of bytes 0-15
//
// then the payload, masked with MaskWeyl at goldenPosition:
//
//	37                flags: end mark, Weyl, tags, compact, one event
//	15cd853dfe9c9717  timestamp
//	ac02              first version 300
//	09 6f72646572732d3432   stream "orders-42"
//	                  no count: the flags say one event
//	2c                tag: type length 11<<2, no metadata, ID assigned
//	4f72646572506c61636564  type "OrderPlaced"
//	                  no metadata length: the tag says none
//	7b22746f74616c223a39397d  data {"total":99}: the 12 bytes up to the
//	                  end mark, with no length
//	ff                end mark, stored unmasked
const goldenCompactFrameHex = "2e000080353fae980807060503000000156c1dd2" +
	"2a4219d6d1b4e7d5257f1cdacab6d685353c44666d12a50c38aec18174d94278153cdc24bd4538d7a4f971e9f6ff"

// goldenCompactNumberedFrameHex is goldenCompactNumberedFrame's encoding:
// goldenNumberedFrame's events, in a compact frame. Checked as
// goldenCompactFrameHex was:
//
//	4a000080          length 74, Weyl
//	c6f3af73          pcrc 0x73aff3c6
//	08070605          rel 0x05060708
//	03000000          delta 3
//	dbcb292c          hcrc 0x2c29cbdb
//
// then, masked:
//
//	1f                flags: end mark, Weyl, tags, numbered, compact
//	15cd853dfe9c9717  timestamp
//	ac02              first version 300
//	e807              stream number 1000
//	02                count 2: without flagOne, a count (at least 2) follows
//	2f                tag: type length 11<<2, metadata, ID stored
//	00112233445566778899aabbccddeeff  id
//	4f72646572506c61636564  type "OrderPlaced"
//	07 7b2275223a377d        metadata {"u":7}
//	0c 7b22746f74616c223a39397d  data {"total":99}: not the last event's, so with a length
//	1c                tag: type length 7<<2, no metadata, ID assigned
//	53686970706564    type "Shipped"
//	7b7d              data "{}", the last event's, with no length
//	ff                end mark
const goldenCompactNumberedFrameHex = "4a000080c6f3af730807060503000000dbcb292c" +
	"024219d6d1b4e7d5257f1c3ba2c69de0566d5a160a589df6c561081dc556de5203239b22825d38d8e3a74faba9" +
	"deb263ac429f346751a783d1d7fff4c7a78289965f413ec87d534fa7ff"

func goldenCompactFrame() []byte {
	body := record.AppendBodyHeadOf(6, nil, goldenStream, 1)
	body = record.AppendLastEventOf(6, body, [record.IDSize]byte{}, goldenType, nil, []byte(goldenData))
	return record.AppendCompactFrame(nil, goldenCompactBase, goldenPosition, goldenDelta, goldenTimestamp, goldenFirstVersion, 1, body)
}

func goldenCompactNumberedBody() []byte {
	body := record.AppendBodyHeadOf(6, nil, goldenStream, 2)
	body = record.AppendEventOf(6, body, goldenID, goldenType, []byte(goldenMetadata), []byte(goldenData))
	return record.AppendLastEventOf(6, body, [record.IDSize]byte{}, "Shipped", nil, []byte("{}"))
}

func goldenCompactNumberedFrame() []byte {
	return record.AppendCompactNumberedFrame(nil, goldenCompactBase, goldenPosition, goldenDelta, goldenTimestamp,
		goldenFirstVersion, 1000, goldenStream, 2, goldenCompactNumberedBody())
}

// sealFrame assembles a frame of the segment sh heads around payload, an
// unmasked payload whose last byte is the end mark's place, as the writer
// of version 3 or later does: masked with MaskWeyl at position, the end
// mark stored as is, and a header of sh's size (compact, with position
// less sh.Base, in a segment of version 6) with the Weyl bit and both
// checksums. Tests forge frames with it that pass every checksum and break
// only the rule under test.
func sealFrame(sh record.SegmentHeader, position uint64, delta uint32, payload []byte) []byte {
	payload = bytes.Clone(payload)
	record.MaskWeyl(payload, position)
	payload[len(payload)-1] = record.EndMark
	hs := sh.HeaderSize()
	b := make([]byte, hs, hs+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload))|1<<31)
	binary.LittleEndian.PutUint32(b[4:8], record.Checksum(payload))
	if hs == record.CompactHeaderSize {
		binary.LittleEndian.PutUint32(b[8:12], uint32(position-sh.Base))
		binary.LittleEndian.PutUint32(b[12:16], delta)
	} else {
		binary.LittleEndian.PutUint64(b[8:16], position)
		binary.LittleEndian.PutUint32(b[16:20], delta)
	}
	binary.LittleEndian.PutUint32(b[hs-4:hs], record.Checksum(b[:hs-4]))
	return append(b, payload...)
}

// compactPayload assembles an unmasked payload, for sealFrame, from flags
// and an already encoded body; the timestamp is 1.
func compactPayload(flags byte, firstVersion uint64, body []byte) []byte {
	return append(rawPayload(flags, 1, firstVersion, body), 0)
}

// resealCompactHeader recomputes the checksum of the compact header at
// the start of frame in place.
func resealCompactHeader(frame []byte) {
	binary.LittleEndian.PutUint32(frame[16:20], record.Checksum(frame[:16]))
}

// Flags of compact frames, spelled out: end mark 1, Weyl 2, tags 4,
// numbered 8, compact 16, one event 32.
const (
	compactFlags    = 1 | 2 | 4 | 16
	compactOneFlags = compactFlags | 32
)

// checkGoldenCompact ends payload, a compact frame's payload at
// goldenPosition as built byte by byte, in the end mark, masks it as the
// frame stores it, and checks it against the payload of got, the frame
// as appended; then it decodes got's header, which must be want.
func checkGoldenCompact(t *testing.T, got, payload []byte, want record.Header) record.Header {
	t.Helper()
	payload = append(payload, 0) // the end mark's place
	record.MaskWeyl(payload, goldenPosition)
	payload[len(payload)-1] = record.EndMark
	assert.Equal(t, hex.EncodeToString(payload), hex.EncodeToString(got[record.CompactHeaderSize:]), "payload layout, masked")
	h, err := compactSegment.DecodeHeader(got)
	require.NoError(t, err)
	assert.Equal(t, want, h)
	return h
}

func TestAppendCompactFrame_Golden(t *testing.T) {
	le := binary.LittleEndian.Uint32
	assert.Equal(t, 20, record.CompactHeaderSize)

	t.Run("one event", func(t *testing.T) {
		got := goldenCompactFrame()
		require.Equal(t, goldenCompactFrameHex, hex.EncodeToString(got), "compact frame encoding changed")
		require.Len(t, got, record.CompactHeaderSize+46)
		body := record.AppendLastEventOf(6, record.AppendBodyHeadOf(6, nil, goldenStream, 1), [record.IDSize]byte{}, goldenType, nil, []byte(goldenData))
		assert.Equal(t, len(got), record.CompactFrameSize(goldenFirstVersion, body), "CompactFrameSize")

		// Header fields at the offsets SegmentHeader.DecodeHeader draws.
		assert.Equal(t, uint32(46|1<<31), le(got[0:4]), "length at 0, its top bit naming the Weyl keystream")
		assert.Equal(t, uint32(0x98ae3f35), le(got[4:8]), "pcrc at 4")
		assert.Equal(t, record.Checksum(got[20:]), le(got[4:8]), "pcrc covers the stored payload")
		assert.Equal(t, uint32(0x05060708), le(got[8:12]), "rel at 8")
		assert.Equal(t, goldenPosition-goldenCompactBase, uint64(le(got[8:12])), "rel is the position less the base")
		assert.Equal(t, goldenDelta, le(got[12:16]), "delta at 12")
		assert.Equal(t, uint32(0xd21d6c15), le(got[16:20]), "hcrc at 16")
		assert.Equal(t, record.Checksum(got[:16]), le(got[16:20]), "hcrc covers bytes 0-15")
		assert.Equal(t, byte(record.EndMark), got[len(got)-1], "the end mark is stored as is")

		// The payload, built here byte by byte rather than by the encoder.
		var payload []byte
		payload = append(payload, 0x37)                                           // flags: 1|2|4|16|32
		payload = append(payload, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17) // timestamp LE
		payload = append(payload, 0xac, 0x02)                                     // first version 300
		payload = append(payload, 9)                                              // stream len
		payload = append(payload, "orders-42"...)                                 // no count follows
		payload = append(payload, 11<<2)                                          // tag: type len 11, no metadata, ID assigned
		payload = append(payload, "OrderPlaced"...)                               // no metadata length
		payload = append(payload, goldenData...)                                  // data, with no length
		h := checkGoldenCompact(t, got, payload, record.NewHeader(46, 0x98ae3f35, goldenPosition, goldenDelta, true, true))
		assert.Equal(t, h, compactSegment.HeaderOf(got))
		assert.Equal(t, record.CompactHeaderSize, h.Size())
		assert.Equal(t, int64(record.CompactHeaderSize+46), h.FrameSize())
		assert.Equal(t, goldenPosition-uint64(goldenDelta), h.SyncStart())

		// Unmasked: the flags, the tag where a count would be, and a data
		// length implied by the end mark.
		plain := unmasked(t, h, got)
		assert.Equal(t, byte(compactOneFlags), plain[0], "flags after unmasking")
		assert.Equal(t, append([]byte{9}, goldenStream...), plain[11:21], "stream field")
		assert.Equal(t, byte(11<<2), plain[21], "the tag follows the stream: no count")
		assert.Equal(t, []byte(goldenType), plain[22:33])
		assert.Equal(t, len(goldenData), len(plain)-33-record.EndMarkSize, "the data is what lies between the type and the end mark")

		f, err := record.DecodeVerified(h, plain, nil)
		require.NoError(t, err)
		assert.Equal(t, h, f.Header)
		assert.True(t, f.Compact())
		assert.True(t, f.Marked)
		assert.True(t, f.Weyl())
		assert.True(t, f.Tagged)
		assert.False(t, f.Numbered)
		assert.Equal(t, goldenTimestamp, f.Timestamp)
		assert.Equal(t, goldenFirstVersion, f.FirstVersion)
		assert.Equal(t, goldenStream, string(f.Stream))
		require.Len(t, f.Events, 1)
		assert.Equal(t, goldenType, string(f.Events[0].Type))
		assert.Nil(t, f.Events[0].Metadata)
		assert.Equal(t, goldenData, string(f.Events[0].Data))
		assert.True(t, f.Assigned(0))
		f.Key = compactSegment.Key
		assert.Equal(t, record.AssignedID(goldenKey, goldenPosition, goldenTimestamp), f.ID(0))
	})

	t.Run("numbered", func(t *testing.T) {
		got := goldenCompactNumberedFrame()
		require.Equal(t, goldenCompactNumberedFrameHex, hex.EncodeToString(got), "compact numbered frame encoding changed")
		require.Len(t, got, record.CompactHeaderSize+74)
		assert.Equal(t, len(got), record.CompactNumberedFrameSize(goldenFirstVersion, 1000, goldenStream, goldenCompactNumberedBody()))
		// goldenNumberedFrame's events take 6 bytes less: 4 of header, the
		// second event's metadata length and its data length.
		assert.Len(t, got, len(goldenNumberedFrame())-6)

		assert.Equal(t, uint32(74|1<<31), le(got[0:4]), "length at 0")
		assert.Equal(t, uint32(0x73aff3c6), le(got[4:8]), "pcrc at 4")
		assert.Equal(t, record.Checksum(got[20:]), le(got[4:8]))
		assert.Equal(t, uint32(0x05060708), le(got[8:12]), "rel at 8")
		assert.Equal(t, goldenDelta, le(got[12:16]), "delta at 12")
		assert.Equal(t, uint32(0x2c29cbdb), le(got[16:20]), "hcrc at 16")
		assert.Equal(t, record.Checksum(got[:16]), le(got[16:20]))

		var payload []byte
		payload = append(payload, 0x1f)                                           // flags: 1|2|4|8|16
		payload = append(payload, 0x15, 0xcd, 0x85, 0x3d, 0xfe, 0x9c, 0x97, 0x17) // timestamp LE
		payload = append(payload, 0xac, 0x02)                                     // first version 300
		payload = append(payload, 0xe8, 0x07)                                     // stream number 1000
		payload = append(payload, 2)                                              // count
		payload = append(payload, 11<<2|2|1)                                      // tag: type len 11, metadata, ID stored
		payload = append(payload, goldenID[:]...)                                 // id
		payload = append(payload, "OrderPlaced"...)                               //
		payload = append(payload, 7)                                              // metadata len
		payload = append(payload, `{"u":7}`...)                                   //
		payload = append(payload, 12)                                             // data len: not the last event
		payload = append(payload, `{"total":99}`...)                              //
		payload = append(payload, 7<<2)                                           // tag: type len 7, no metadata, ID assigned
		payload = append(payload, "Shipped"...)                                   //
		payload = append(payload, "{}"...)                                        // the last event's data, no length
		h := checkGoldenCompact(t, got, payload, record.NewHeader(74, 0x73aff3c6, goldenPosition, goldenDelta, true, true))
		plain := unmasked(t, h, got)
		assert.Equal(t, byte(compactFlags|8), plain[0], "flags after unmasking: no flagOne")
		assert.Equal(t, byte(2), plain[13], "count")
		assert.Equal(t, byte(0x2f), plain[14], "first tag")
		assert.Equal(t, byte(0x1c), plain[63], "last tag")
		assert.Equal(t, "{}", string(plain[71:73]), "the last data is what lies between the type and the end mark")

		f, err := record.DecodeVerified(h, plain, nil)
		require.NoError(t, err)
		assert.True(t, f.Compact())
		assert.True(t, f.Numbered)
		assert.Equal(t, uint64(1000), f.StreamStart)
		assert.Nil(t, f.Stream)
		require.Len(t, f.Events, 2)
		assert.False(t, f.Assigned(0))
		assert.Equal(t, goldenID, f.Events[0].ID)
		assert.Equal(t, goldenType, string(f.Events[0].Type))
		assert.Equal(t, goldenMetadata, string(f.Events[0].Metadata))
		assert.Equal(t, goldenData, string(f.Events[0].Data))
		assert.True(t, f.Assigned(1))
		assert.Equal(t, "Shipped", string(f.Events[1].Type))
		assert.Nil(t, f.Events[1].Metadata)
		assert.Equal(t, "{}", string(f.Events[1].Data))
		f.Key = goldenKey
		id := f.ID(1)
		assert.Equal(t, goldenAssignedIDHex, hex.EncodeToString(id[:]), "the ID the store assigned, as in version 4")
	})

	assert.Panics(t, func() {
		record.AppendCompactNumberedFrame(nil, 0, 1, 0, 0, 0, 0, goldenStream, 2, goldenCompactNumberedBody())
	}, "a stream's version 0 is in the frame that names it")
	assert.Panics(t, func() {
		record.AppendCompactNumberedFrame(nil, 0, 5, 0, 0, 1, 5, goldenStream, 2, goldenCompactNumberedBody())
	}, "a stream starts before the frame that numbers it")
	for _, pos := range [][2]uint64{{10, 9}, {0, 1 << 32}, {1 << 40, 1<<40 + 1<<32}} {
		assert.Panics(t, func() {
			record.AppendCompactFrame(nil, pos[0], pos[1], 0, 0, 0, 1, goldenCompactNumberedBody())
		}, "position %d in a segment based at %d", pos[1], pos[0])
	}
}

// TestDecodeCompactFrame_RoundTrip: compact frames decode to what went
// in, in a segment of version 6 at any base, with the position up to
// 2^32-1 past it.
func TestDecodeCompactFrame_RoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 70000) // three-byte length
	tests := []struct {
		name     string
		base     uint64
		numbered bool   // the frame names its stream by number, start
		start    uint64 // the stream's number
		frame    testFrame
	}{
		{
			name: "one event, assigned ID, no metadata",
			frame: testFrame{position: 0, timestamp: 1, stream: "s", events: []testEvent{
				{typ: "t", data: []byte("d")},
			}},
		},
		{
			name: "one event, stored ID, metadata",
			frame: testFrame{position: 1, delta: 1, timestamp: -1, firstVersion: 7, stream: "s", events: []testEvent{
				{id: idOf(1), typ: "t", metadata: []byte("m"), data: []byte("d")},
			}},
		},
		{
			name:  "one event, empty data",
			frame: testFrame{position: 3, stream: "s", events: []testEvent{{typ: "t"}}},
		},
		{
			name:  "one event, metadata, empty data",
			frame: testFrame{position: 3, stream: "s", events: []testEvent{{id: idOf(3), typ: "t", metadata: []byte("m")}}},
		},
		{
			name: "several events, mixed, at a large base",
			base: 1 << 40,
			frame: testFrame{position: 1<<40 + math.MaxUint32, delta: 9, timestamp: 1700000000000000000, firstVersion: 41, stream: "account-1",
				events: []testEvent{
					{id: idOf(0x10), typ: "Opened", metadata: []byte(`{"by":"a"}`), data: []byte(`{"owner":"x"}`)},
					{typ: "Deposited", data: []byte(`{"amount":5}`)},
					{id: idOf(0x30), typ: "Noted", metadata: []byte("m")}, // empty data in a middle event
					{typ: "Closed", metadata: []byte(`{}`), data: []byte("bye")},
				}},
		},
		{
			name: "empty data in a middle and the last event, numbered",
			base: 1 << 40, numbered: true, start: 1<<40 - 5,
			frame: testFrame{position: 1<<40 + 12345, timestamp: 5, firstVersion: 3, stream: "account-2",
				events: []testEvent{
					{typ: "A", data: []byte("x")},
					{id: idOf(2), typ: "B"},
					{typ: "C"},
				}},
		},
		{
			name: "numbered, one event, rel at its largest",
			base: 1 << 40, numbered: true, start: 0,
			frame: testFrame{position: 1<<40 + math.MaxUint32, delta: math.MaxUint32, timestamp: math.MinInt64, firstVersion: math.MaxUint64 - 1, stream: "s",
				events: []testEvent{{id: idOf(0xf0), typ: "t", metadata: []byte("m"), data: []byte("d")}}},
		},
		{
			name: "long types, metadata and data",
			base: 1 << 20,
			frame: testFrame{position: 1<<20 + 1, firstVersion: 1 << 35, stream: strings.Repeat("stream-", 100),
				events: []testEvent{
					{typ: strings.Repeat("T", 31), data: big},                         // a one-byte tag, the largest
					{typ: strings.Repeat("T", 32), metadata: big},                     // a two-byte tag
					{id: idOf(1), typ: strings.Repeat("T", 300), metadata: big[:300]}, //
					{typ: "注文-😀", metadata: big, data: big},                           // the last, 70000 bytes without a length
				}},
		},
		{
			name: "data that looks like end marks and zeros",
			frame: testFrame{position: 128, delta: 128, timestamp: 128, firstVersion: 128, stream: "bin",
				events: []testEvent{
					{typ: "\x00", data: bytes.Repeat([]byte{0xff}, 300)},
					{id: idOf(0), typ: "z", data: make([]byte, 300)},
					{typ: "e", data: []byte{0xff}},
				}},
		},
		{
			name: "the last position of all",
			base: math.MaxUint64 - 1<<32,
			frame: testFrame{position: math.MaxUint64 - 1, timestamp: math.MaxInt64, firstVersion: math.MaxUint64 - 1, stream: "s",
				events: []testEvent{{typ: "t", data: []byte("d")}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := tt.frame
			sh, err := record.DecodeSegmentHeader(record.AppendSegmentHeader(nil, tt.base, goldenKey))
			require.NoError(t, err)
			require.Equal(t, record.SegmentHeader{Base: tt.base, Version: 6, Key: goldenKey}, sh)
			require.Equal(t, record.CompactHeaderSize, sh.HeaderSize())

			body := tf.compactBody()
			numbered := tt.numbered
			var frame []byte
			if numbered {
				frame = record.AppendCompactNumberedFrame(nil, tt.base, tf.position, tf.delta, tf.timestamp, tf.firstVersion, tt.start, tf.stream, len(tf.events), body)
				require.Len(t, frame, record.CompactNumberedFrameSize(tf.firstVersion, tt.start, tf.stream, body), "CompactNumberedFrameSize")
			} else {
				frame = tf.encodeCompact(tt.base)
				require.Len(t, frame, record.CompactFrameSize(tf.firstVersion, body), "CompactFrameSize")
			}
			require.Equal(t, byte(record.EndMark), frame[len(frame)-1])
			assert.Equal(t, tf.position-tt.base, uint64(binary.LittleEndian.Uint32(frame[8:12])), "rel")

			h, err := sh.DecodeHeader(frame)
			require.NoError(t, err)
			assert.True(t, h.Compact())
			assert.True(t, h.Weyl())
			assert.Equal(t, tf.position, h.Position, "base + rel")
			assert.Equal(t, tf.delta, h.SyncDelta())
			assert.Equal(t, record.CompactHeaderSize, h.Size())
			assert.Equal(t, int64(record.CompactHeaderSize)+int64(h.Length), h.FrameSize())
			assert.Equal(t, int64(len(frame)), h.FrameSize())

			f, err := record.DecodePayload(h, frame[h.Size():], nil)
			require.NoError(t, err)
			assert.Equal(t, h, f.Header)
			assert.True(t, f.Compact())
			assert.Equal(t, numbered, f.Numbered)
			assert.Equal(t, tf.timestamp, f.Timestamp)
			assert.Equal(t, tf.firstVersion, f.FirstVersion)
			if numbered {
				assert.Equal(t, tt.start, f.StreamStart)
				assert.Nil(t, f.Stream)
			} else {
				assert.Zero(t, f.StreamStart)
				assert.Equal(t, tf.stream, string(f.Stream))
			}
			f.Key = sh.Key
			assertTestEvents(t, tf, f)
			for i, want := range tf.events {
				assert.Equal(t, want.id == [record.IDSize]byte{}, f.Assigned(i), "event %d", i)
				if want.id == [record.IDSize]byte{} {
					assert.Equal(t, record.AssignedID(goldenKey, tf.position+uint64(i), tf.timestamp), f.ID(i), "event %d", i)
				} else {
					assert.Equal(t, want.id, f.ID(i), "event %d", i)
				}
			}
		})
	}
}

// TestDecodeCompactFrame_HeaderOfTheOtherVersion: a compact header read
// as a 24-byte one, or a 24-byte one as compact, fails its checksum (or is
// short), whichever segment header names the wrong version.
func TestDecodeCompactFrame_HeaderOfTheOtherVersion(t *testing.T) {
	v5 := record.SegmentHeader{Base: goldenCompactBase, Version: 5, Key: goldenKey}
	for name, frame := range map[string][]byte{
		"one event": goldenCompactFrame(),
		"numbered":  goldenCompactNumberedFrame(),
	} {
		_, err := v5.DecodeHeader(frame)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, "%s, read in a segment of version 5", name)
		_, err = record.DecodeHeader(frame)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, name)
		// A compact header alone is short of a 24-byte one.
		_, err = v5.DecodeHeader(frame[:record.CompactHeaderSize])
		require.ErrorIs(t, err, record.ErrShort, name)
		_, err = compactSegment.DecodeHeader(frame[:record.CompactHeaderSize])
		require.NoError(t, err, "%s: a compact header alone is enough for DecodeHeader", name)
	}
	for name, frame := range map[string][]byte{
		"version 1": goldenFrame(),
		"version 3": goldenWeylFrame(),
		"version 4": goldenV4Frame(),
		"version 5": goldenNumberedFrame(),
	} {
		_, err := compactSegment.DecodeHeader(frame)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, "%s, read in a segment of version 6", name)
	}
	// Short of a compact header. (Where a header of one size passes its
	// checksum before a payload of the other, the payload's flags give it
	// away: see TestDecodeCompactFrame_Refusals.)
	for n := range record.CompactHeaderSize {
		_, err := compactSegment.DecodeHeader(goldenCompactFrame()[:n])
		require.ErrorIs(t, err, record.ErrShort, "%d bytes", n)
	}
}

// TestDecodeCompactFrame_Refusals: each frame below passes every checksum
// (sealFrame) and breaks one rule of compact frames, which the decoder
// refuses with ErrMalformed; a control beside each shows the forgery
// itself is sound.
func TestDecodeCompactFrame_Refusals(t *testing.T) {
	v5 := record.SegmentHeader{Version: 5}
	sh := record.SegmentHeader{Base: 1000, Version: 6}
	const position = 1009
	last := func(typ string, metadata, data []byte) []byte { // a last event
		return record.AppendLastEventOf(6, nil, [record.IDSize]byte{}, typ, metadata, data)
	}
	mid := func(typ string, metadata, data []byte) []byte { // an event before the last
		return record.AppendEventOf(6, nil, [record.IDSize]byte{}, typ, metadata, data)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	stream := []byte{1, 's'}
	decode := func(t *testing.T, sh record.SegmentHeader, flags byte, body []byte) (record.Frame, error) {
		t.Helper()
		return decodeFrameIn(t, sh, sealFrame(sh, position, 0, compactPayload(flags, 1, body)))
	}
	ok := func(t *testing.T, flags byte, body []byte, events int) {
		t.Helper()
		f, err := decode(t, sh, flags, body)
		require.NoError(t, err, "the control decodes")
		require.Len(t, f.Events, events)
	}
	malformed := func(t *testing.T, flags byte, body []byte, msg string) {
		t.Helper()
		_, err := decode(t, sh, flags, body)
		require.ErrorIs(t, err, record.ErrMalformed)
		if msg != "" {
			assert.ErrorContains(t, err, msg)
		}
	}

	t.Run("compact flags behind a 24-byte header", func(t *testing.T) {
		body := cat(stream, last("t", nil, []byte("data")))
		for _, flags := range []byte{compactOneFlags, compactOneFlags | 8, compactFlags, compactFlags | 8} {
			frame := sealFrame(v5, position, 0, compactPayload(flags, 1, body))
			h, err := record.DecodeHeader(frame)
			require.NoError(t, err, "the header is sound")
			_, err = record.DecodePayload(h, frame[record.HeaderSize:], nil)
			require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
			assert.ErrorContains(t, err, "header is 24 bytes", "flags %#x", flags)
		}
		ok(t, compactOneFlags, body, 1)
	})

	t.Run("flags without flagCompact behind a compact header", func(t *testing.T) {
		body := record.AppendEventOf(5, record.AppendBodyHead(nil, "s", 1), [record.IDSize]byte{}, "t", nil, []byte("data"))
		for _, flags := range []byte{1 | 2 | 4, 1 | 2 | 4 | 8} {
			_, err := decode(t, sh, flags, body)
			require.ErrorIs(t, err, record.ErrMalformed, "flags %#x", flags)
			assert.ErrorContains(t, err, "header is 20 bytes", "flags %#x", flags)
		}
		// The same payload behind a 24-byte header is a version-5 frame.
		_, err := decodeFrameIn(t, v5, sealFrame(v5, position, 0, compactPayload(1|2|4, 1, body)))
		require.NoError(t, err)
		// flagOne, or flagCompact, without the rest of compactFlags: flags
		// of no version.
		for _, flags := range []byte{1 | 2 | 4 | 32, 1 | 2 | 16, 1 | 4 | 16, 2 | 4 | 16, 16, 16 | 32, compactOneFlags | 64, compactOneFlags | 128} {
			malformed(t, flags, cat(stream, last("t", nil, []byte("data"))), "")
		}
	})

	t.Run("keystream bit cleared in a compact header", func(t *testing.T) {
		frame := goldenCompactFrame()
		binary.LittleEndian.PutUint32(frame[0:4], binary.LittleEndian.Uint32(frame[0:4])&^(1<<31))
		resealCompactHeader(frame)
		_, err := decodeFrameIn(t, compactSegment, frame)
		require.ErrorIs(t, err, record.ErrMalformed)
	})

	t.Run("flagOne with a count", func(t *testing.T) {
		// A count of 1 after the stream, then the event: read as the
		// event's tag, the count says the ID is stored and the type empty.
		malformed(t, compactOneFlags, cat(stream, []byte{1}, last("t", nil, []byte("data"))), "")
		ok(t, compactOneFlags, cat(stream, last("t", nil, []byte("data"))), 1)
		// A count of 2 and two events under flagOne: the 2 reads as a tag
		// with the metadata bit and no type.
		two := cat(stream, []byte{2}, mid("t", nil, []byte("x")), last("u", nil, []byte("y")))
		malformed(t, compactOneFlags, two, "")
		ok(t, compactFlags, two, 2)
	})

	t.Run("count of one without flagOne", func(t *testing.T) {
		body := cat(stream, []byte{1}, last("t", nil, []byte("data")))
		malformed(t, compactFlags, body, "count of one")
		numbered := cat([]byte{5, 1}, last("t", nil, []byte("data"))) // stream number 5, count 1
		malformed(t, compactFlags|8, numbered, "count of one")
		ok(t, compactOneFlags|8, cat([]byte{5}, last("t", nil, []byte("data"))), 1)
	})

	t.Run("count of zero", func(t *testing.T) {
		malformed(t, compactFlags, cat(stream, []byte{0}, last("t", nil, []byte("data"))), "count")
	})

	t.Run("count past the events", func(t *testing.T) {
		// Three events, every one the smallest it can be; a count of more
		// than the bytes hold at MinEventSize each is refused before any
		// event is decoded.
		events := cat(mid("a", nil, nil), mid("b", nil, nil), last("c", nil, nil))
		require.Len(t, events, 3+3+record.MinEventSize)
		ok(t, compactFlags, cat(stream, []byte{3}, events), 3)
		malformed(t, compactFlags, cat(stream, []byte{4}, events), "")
		malformed(t, compactFlags, cat(stream, []byte{byte(len(events)/record.MinEventSize + 1)}, events), "does not fit")
	})

	t.Run("metadata bit with empty metadata", func(t *testing.T) {
		emptyMeta := []byte{1<<2 | 2, 't', 0} // tag: type len 1, metadata; type; metadata len 0
		malformed(t, compactOneFlags, cat(stream, emptyMeta, []byte("data")), "empty metadata")
		malformed(t, compactOneFlags, cat(stream, emptyMeta), "empty metadata")
		malformed(t, compactFlags, cat(stream, []byte{2}, emptyMeta, []byte{1, 'x'}, last("u", nil, nil)), "empty metadata")
		ok(t, compactOneFlags, cat(stream, []byte{1<<2 | 2, 't', 1, 'm'}, []byte("data")), 1)
		ok(t, compactFlags, cat(stream, []byte{2}, []byte{1<<2 | 2, 't', 1, 'm', 1, 'x'}, last("u", nil, nil)), 2)
	})

	t.Run("stored zero ID", func(t *testing.T) {
		event := func(id [record.IDSize]byte) []byte {
			return cat([]byte{1<<2 | 1}, id[:], []byte("t"))
		}
		var zero [record.IDSize]byte
		malformed(t, compactOneFlags, cat(stream, event(zero), []byte("data")), "zero")
		malformed(t, compactFlags, cat(stream, []byte{2}, event(zero), []byte{0}, last("u", nil, nil)), "zero")
		ok(t, compactOneFlags, cat(stream, event(idOf(1)), []byte("data")), 1)
		ok(t, compactFlags, cat(stream, []byte{2}, event(idOf(1)), []byte{0}, last("u", nil, nil)), 2)
	})

	t.Run("lengths past the end", func(t *testing.T) {
		malformed(t, compactOneFlags, cat(stream, []byte{50 << 2, 't'}), "type length")
		malformed(t, compactOneFlags, cat(stream, []byte{1<<2 | 2, 't', 50, 'm'}), "")
		malformed(t, compactFlags, cat(stream, []byte{2, 1 << 2, 't', 50, 'x'}, last("u", nil, nil)), "")
		malformed(t, compactOneFlags, cat(stream, []byte{1<<2 | 1}, id1[:8]), "") // an ID cut short
	})

	t.Run("overlong tag", func(t *testing.T) {
		malformed(t, compactOneFlags, cat(stream, []byte{0x84, 0x00, 't'}), "varint")
		ok(t, compactOneFlags, cat(stream, []byte{0x04, 't'}), 1)
	})

	t.Run("empty type", func(t *testing.T) {
		malformed(t, compactOneFlags, cat(stream, []byte{0, 'd', 'a', 't', 'a'}), "type")
		malformed(t, compactFlags, cat(stream, []byte{2, 0, 0}, last("u", nil, nil)), "type")
	})

	t.Run("numbered rules", func(t *testing.T) {
		body := last("t", nil, []byte("data"))
		ok(t, compactOneFlags|8, cat([]byte{100}, body), 1)
		_, err := decodeFrameIn(t, sh, sealFrame(sh, position, 0, compactPayload(compactOneFlags|8, 0, cat([]byte{100}, body))))
		require.ErrorIs(t, err, record.ErrMalformed)
		assert.ErrorContains(t, err, "version 0")
		malformed(t, compactOneFlags|8, cat(binary.AppendUvarint(nil, position), body), "not a position before")
	})

	t.Run("end mark", func(t *testing.T) {
		frame := sealFrame(sh, position, 0, compactPayload(compactOneFlags, 1, cat(stream, last("t", nil, []byte("data")))))
		frame[len(frame)-1] = 0
		binary.LittleEndian.PutUint32(frame[4:8], record.Checksum(frame[record.CompactHeaderSize:]))
		resealCompactHeader(frame)
		_, err := decodeFrameIn(t, sh, frame)
		require.ErrorIs(t, err, record.ErrMalformed)
		assert.ErrorContains(t, err, "end mark")
	})
}

// TestDecodeCompactFrame_PositionOverflow: a compact header's position is
// the segment's base plus its rel, and a header whose sum overflows is
// refused; so is a frame whose events run past the last position.
func TestDecodeCompactFrame_PositionOverflow(t *testing.T) {
	body := append([]byte{1, 's'}, record.AppendLastEventOf(6, nil, [record.IDSize]byte{}, "t", nil, []byte("data"))...)
	payload := compactPayload(compactOneFlags, 1, body)
	sh := record.SegmentHeader{Base: math.MaxUint64 - 5, Version: 6}
	for _, rel := range []uint64{6, 7, 1 << 20, math.MaxUint32} {
		frame := sealFrame(sh, sh.Base+rel, 0, payload) // the position wraps; rel is written as it is
		require.Equal(t, uint32(rel), binary.LittleEndian.Uint32(frame[8:12]))
		_, err := sh.DecodeHeader(frame)
		require.ErrorIs(t, err, record.ErrMalformed, "rel %d", rel)
		assert.ErrorContains(t, err, "overflows", "rel %d", rel)
	}
	// Rel 5 is the last position, which no event can take: one event
	// there would put the next at 2^64.
	frame := sealFrame(sh, math.MaxUint64, 0, payload)
	h, err := sh.DecodeHeader(frame)
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint64), h.Position)
	_, err = record.DecodePayload(h, frame[h.Size():], nil)
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "overflows")
	// Rel 4 is fine.
	f, err := decodeFrameIn(t, sh, sealFrame(sh, math.MaxUint64-1, 0, payload))
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint64-1), f.Position)
	// So is a base of 0 with rel at its largest.
	sh = record.SegmentHeader{Version: 6}
	f, err = decodeFrameIn(t, sh, sealFrame(sh, math.MaxUint32, 0, payload))
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint32), f.Position)

	// The sync delta may reach back to position 0, not past it.
	sh = record.SegmentHeader{Base: 3, Version: 6}
	_, err = sh.DecodeHeader(sealFrame(sh, 5, 6, payload))
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.ErrorContains(t, err, "sync delta")
	h, err = sh.DecodeHeader(sealFrame(sh, 5, 5, payload))
	require.NoError(t, err)
	assert.Zero(t, h.SyncStart())
}

// TestDecodeCompactFrame_LengthBounds: a compact header's length lies
// between the smallest compact payload, 14 bytes, and MaxPayload; the top
// bit names the keystream, and no other bit above MaxPayload's may be set.
func TestDecodeCompactFrame_LengthBounds(t *testing.T) {
	// The smallest compact frame: a stream number of one byte, one event
	// of a one-byte type with an ID the store assigned and no data.
	body := record.AppendLastEventOf(6, record.AppendBodyHeadOf(6, nil, "s", 1), [record.IDSize]byte{}, "t", nil, nil)
	smallest := record.AppendCompactNumberedFrame(nil, 0, 1, 0, 1, 1, 0, "s", 1, body)
	require.Len(t, smallest, record.CompactHeaderSize+14, "1 flags, 8 timestamp, 1 first version, 1 stream number, 1 tag, 1 type, 1 end mark")
	sh := record.SegmentHeader{Version: 6}
	f, err := decodeFrameIn(t, sh, smallest)
	require.NoError(t, err)
	require.Len(t, f.Events, 1)
	assert.Nil(t, f.Events[0].Data)

	header := func(length uint32) []byte {
		b := goldenCompactFrame()[:record.CompactHeaderSize]
		binary.LittleEndian.PutUint32(b[0:4], length)
		resealCompactHeader(b)
		return b
	}
	for _, length := range []uint32{0, 1, 13, record.MaxPayload + 1, math.MaxUint32 >> 1} {
		for _, weyl := range []uint32{0, 1 << 31} {
			_, err := compactSegment.DecodeHeader(header(length | weyl))
			require.ErrorIs(t, err, record.ErrMalformed, "length %d, bit %#x", length, weyl)
			assert.ErrorContains(t, err, "out of range")
		}
	}
	for _, bits := range []uint32{1 << 30, 1 << 29, 1<<31 | 1<<30, 1<<31 | 1<<29} {
		_, err := compactSegment.DecodeHeader(header(46 | bits))
		require.ErrorIs(t, err, record.ErrMalformed, "length bits %#x", bits)
	}
	for _, length := range []uint32{14, 46, record.MaxPayload} {
		h, err := compactSegment.DecodeHeader(header(length | 1<<31))
		require.NoError(t, err, "length %d", length)
		assert.Equal(t, length, h.Length)
		assert.Equal(t, int64(record.CompactHeaderSize)+int64(length), h.FrameSize())
	}
}

func TestDecodeCompactFrame_FlippedBit(t *testing.T) {
	frame := goldenCompactNumberedFrame()
	for bit := range record.CompactHeaderSize * 8 {
		b := bytes.Clone(frame)
		b[bit/8] ^= 1 << (bit % 8)
		_, err := compactSegment.DecodeHeader(b)
		require.ErrorIs(t, err, record.ErrHeaderChecksum, "bit %d", bit)
	}
	h, err := compactSegment.DecodeHeader(frame)
	require.NoError(t, err)
	payload := frame[record.CompactHeaderSize:]
	for bit := range len(payload) * 8 {
		p := bytes.Clone(payload)
		p[bit/8] ^= 1 << (bit % 8)
		_, err := record.DecodePayload(h, p, nil)
		require.ErrorIs(t, err, record.ErrPayloadChecksum, "bit %d", bit)
	}
	for n := range len(payload) {
		_, err := record.DecodePayload(h, bytes.Clone(payload[:n]), nil)
		require.ErrorIs(t, err, record.ErrShort, "%d of %d payload bytes", n, len(payload))
	}
}

// TestCompactFrame_BytesSaved: the frame the writer's benchmark appends
// again and again, one event in a stream named by number, is 8 bytes
// smaller in version 6 than in version 5: 4 of header, the count, the
// metadata's length and the data's (200 takes two bytes).
func TestCompactFrame_BytesSaved(t *testing.T) {
	const (
		stream       = "bench-stream"
		start        = uint64(1000)
		firstVersion = uint64(50)
		position     = uint64(1 << 30)
	)
	data := bytes.Repeat([]byte{'d'}, 200)
	var assigned [record.IDSize]byte
	v5 := record.AppendEventOf(5, record.AppendBodyHead(nil, stream, 1), assigned, "Bench", nil, data)
	v6 := record.AppendLastEventOf(6, record.AppendBodyHeadOf(6, nil, stream, 1), assigned, "Bench", nil, data)
	size5 := record.NumberedFrameSize(firstVersion, start, stream, v5)
	size6 := record.CompactNumberedFrameSize(firstVersion, start, stream, v6)
	assert.Equal(t, 8, size5-size6)
	assert.Equal(t, 4, record.HeaderSize-record.CompactHeaderSize, "the header")
	assert.Equal(t, 1+1+2, len(v5)-len(v6), "the count, the metadata length, the data length")
	// 24 header, 9 flags and timestamp, 1 first version, 2 stream number,
	// 1 count, 1 tag, 5 type, 1 metadata length, 2 data length, 200 data,
	// 1 end mark; and in version 6 the same less the above.
	assert.Equal(t, 247, size5)
	assert.Equal(t, 239, size6)

	frame5 := record.AppendNumberedFrame(nil, position, 0, 1, firstVersion, start, stream, v5)
	frame6 := record.AppendCompactNumberedFrame(nil, position-5, position, 0, 1, firstVersion, start, stream, 1, v6)
	require.Len(t, frame5, size5)
	require.Len(t, frame6, size6)
	f5, err := decodeFrame(t, frame5)
	require.NoError(t, err)
	f6, err := decodeFrameIn(t, record.SegmentHeader{Base: position - 5, Version: 6}, frame6)
	require.NoError(t, err)
	f5.Header, f6.Header = record.Header{}, record.Header{}
	assert.Equal(t, f5, f6, "the same frame, in fewer bytes")
}

// TestSizes_MatchCompactEncoding: BodyHeadSize and EventSize, which the
// store sums to size an append before encoding it, bound what version 6
// encodes; a compact body head is no larger than BodyHeadSize says.
func TestSizes_MatchCompactEncoding(t *testing.T) {
	for _, stream := range []string{"s", strings.Repeat("s", 200)} {
		for _, count := range []int{1, 2, 127, 128} {
			head := record.AppendBodyHeadOf(6, nil, stream, count)
			if count == 1 {
				assert.Equal(t, record.StreamFieldSize(stream), len(head), "no count")
			} else {
				assert.Equal(t, record.BodyHeadSize(stream, count), len(head))
			}
			assert.LessOrEqual(t, len(head), record.BodyHeadSize(stream, count))
		}
	}
}

// TestFuzzFrameSeeds_Decode: every seed of FuzzDecodeFrame is a whole
// frame of one of fuzzSegments, so that the fuzzer starts from frames
// that reach the re-encoding check, compact ones included.
func TestFuzzFrameSeeds_Decode(t *testing.T) {
	compact := 0
	for i, seed := range fuzzFrameSeeds() {
		decoded := false
		for _, sh := range fuzzSegments {
			h, err := sh.DecodeHeader(seed)
			if err != nil || h.FrameSize() != int64(len(seed)) {
				continue
			}
			if _, err := record.DecodePayload(h, bytes.Clone(seed[h.Size():]), nil); err == nil {
				decoded = true
				if h.Compact() {
					compact++
				}
				checkDecodeFrame(t, sh, seed)
			}
		}
		require.True(t, decoded, "seed %d decodes in no segment", i)
	}
	assert.Equal(t, 6, compact, "compact seeds")
}

// TestEventSize_BoundsEveryVersion: EventSize is the largest an event
// takes in a body of any version, as the store counts it against
// MaxEventSize and MaxAppendSize (which keeps a payload within MaxPayload)
// and sizes the body's buffer with it. A compact frame's tag, len<<2|3,
// can take a byte more than an earlier version's, len<<1|1: for a type of
// 32 to 63 bytes, say.
func TestEventSize_BoundsEveryVersion(t *testing.T) {
	for _, typeLen := range []int{1, 31, 32, 63, 64, 1024, 4095, 4096, 8191, 8192} {
		typ := strings.Repeat("T", typeLen)
		for _, metadata := range [][]byte{nil, []byte("m")} {
			for _, id := range [][record.IDSize]byte{{}, idOf(1)} {
				for _, data := range [][]byte{nil, make([]byte, 200)} {
					size := record.EventSize(typ, metadata, data)
					for version := uint8(1); version <= record.Version; version++ {
						what := fmt.Sprintf("version %d, type of %d bytes, metadata %q, ID %x, %d bytes of data", version, typeLen, metadata, id[0], len(data))
						ev := record.AppendEventOf(version, nil, id, typ, metadata, data)
						assert.LessOrEqual(t, len(ev), size, what)
						ev = record.AppendLastEventOf(version, nil, id, typ, metadata, data)
						assert.LessOrEqual(t, len(ev), size, "last event, "+what)
					}
				}
			}
		}
	}
}

// TestDecodeOne_AgreesWithTheGeneralDecoder: the decoder of one-event
// compact frames takes the frames it is for, and decodes every payload it
// takes, among every one-byte change of such frames' payloads, as the
// general decoder does; what it does not take, the general decoder
// decodes or refuses.
func TestDecodeOne_AgreesWithTheGeneralDecoder(t *testing.T) {
	sh := record.SegmentHeader{Base: goldenCompactBase, Version: 6}
	one := func(firstVersion uint64, stream string, numbered bool, metadata, data []byte) []byte {
		body := record.AppendBodyHeadOf(6, nil, stream, 1)
		body = record.AppendLastEventOf(6, body, [record.IDSize]byte{}, goldenType, metadata, data)
		if numbered {
			return record.AppendCompactNumberedFrame(nil, goldenCompactBase, goldenPosition, goldenDelta, goldenTimestamp, firstVersion, goldenPosition-70_000, stream, 1, body)
		}
		return record.AppendCompactFrame(nil, goldenCompactBase, goldenPosition, goldenDelta, goldenTimestamp, firstVersion, 1, body)
	}
	frames := [][]byte{
		goldenCompactFrame(),
		one(0, goldenStream, false, nil, nil),
		one(200, goldenStream, true, []byte(goldenMetadata), bytes.Repeat([]byte("d"), 200)),
		one(20_000, goldenStream, true, nil, []byte(goldenData)),
	}
	taken, agreed := 0, 0
	for _, frame := range frames {
		h, err := sh.DecodeHeader(frame)
		require.NoError(t, err)
		payload := bytes.Clone(frame[h.Size():])
		require.NoError(t, record.VerifyPayload(h, payload))
		_, ok, _, err := record.DecodeBoth(h, payload)
		require.NoError(t, err)
		require.True(t, ok, "the one-event decoder does not take frame %d", taken)
		taken++
		for i := range payload[:len(payload)-1] { // the end mark is VerifyPayload's
			for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff, payload[i] ^ 0x01, payload[i] ^ 0x04, payload[i] ^ 0x20} {
				mutated := bytes.Clone(payload)
				mutated[i] = v
				fast, ok, general, err := record.DecodeBoth(h, mutated)
				if !ok {
					continue
				}
				require.NoError(t, err, "byte %d set to %#x: taken by the one-event decoder, refused by the general one", i, v)
				require.Equal(t, general, fast, "byte %d set to %#x", i, v)
				agreed++
			}
		}
	}
	require.Equal(t, len(frames), taken)
	require.Greater(t, agreed, 100, "too few changed payloads were taken to compare the decoders")
}

// TestValidUTF8Within: reading by the word where the bytes after the
// string allow it, the check says what utf8.Valid says of every string of
// up to 20 bytes drawn from ASCII, continuation, lead and invalid bytes,
// at every place in a buffer, whatever follows it.
func TestValidUTF8Within(t *testing.T) {
	alphabet := []byte{'a', 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64)
	for range 20_000 {
		for i := range buf {
			buf[i] = alphabet[rng.IntN(len(alphabet))]
		}
		at, n := rng.IntN(20), rng.IntN(21)
		for _, after := range []int{0, 1, 7, 8, 44 - at - n} {
			b := buf[at : at+n : at+n+after]
			require.Equal(t, utf8.Valid(b), record.ValidUTF8Within(b), "% x, %d bytes readable after it", b, after)
		}
	}
}

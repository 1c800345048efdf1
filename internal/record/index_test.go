package record_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-eventstore/eventstore/internal/record"
)

// segmentSize is the size of the segment the tests' index files index:
// larger than any End they hold.
const segmentSize = 1 << 20

// sampleIndex is a segment index of three frames over two streams, the
// middle one holding two events, one of whose IDs the store assigned; the
// store assigned the last frame's ID too.
func sampleIndex() *record.SegmentIndex {
	return &record.SegmentIndex{
		Version:       record.IndexVersion,
		Base:          1734,
		End:           24 + 300 + 410 + 290,
		LastHeaderCRC: 0xa1b2c3d4,
		Names:         []string{"orders-1", "carts-7"},
		Frames: []record.IndexedFrame{
			{Offset: 24, Rel: 0, Count: 1, Name: 0, FirstVersion: 0},
			{Offset: 324, Rel: 1, Count: 2, Name: 1, FirstVersion: 130},
			{Offset: 734, Rel: 3, Count: 1, Name: 0, FirstVersion: 1},
		},
		Fingerprints: []uint32{0xdeadbeef, 0, 2, 0},
	}
}

// sampleIndexHex is sampleIndex's encoding, in version 4 and in version 3.
const (
	sampleIndexHeaderHex = "c6060000000000000004000000000000" + "03000000" + "02000000" + "d4c3b2a1" + "00000000"
	sampleIndexHex       = "4553495804000000" + sampleIndexHeaderHex +
		"086f72646572732d3100" + "0763617274732d378201" + // names: length, name, first version
		"020000" + "04ac0201" + "039a0300" + // frames: count<<1 | no fingerprints, offset delta, name
		"efbeadde" + "00000000" + "02000000" // fingerprints of the first two frames
	sampleIndexV3Hex = "4553495803000000" + sampleIndexHeaderHex +
		"086f72646572732d31" + "0763617274732d37" + // names: length, name
		"01000000" + "02ac02018201" + "019a030001" + // frames: count, offset delta, name, first version
		"efbeadde" + "00000000" + "02000000" + "00000000" // every event's fingerprint
)

// reseal rewrites b's trailing checksum, so a change reaches the checks
// behind it.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], record.Checksum(b[:len(b)-4]))
	return b
}

func TestSegmentIndex_RoundTrip(t *testing.T) {
	for _, version := range []uint8{record.IndexVersion, record.OldestIndexVersion} {
		want := sampleIndex()
		want.Version = version
		b := record.AppendSegmentIndex([]byte("prefix"), want)
		require.Equal(t, "prefix", string(b[:6]), "appends to dst")
		got, err := record.DecodeSegmentIndex(b[6:], segmentSize)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		assert.Equal(t, uint64(4), got.Events())

		empty := &record.SegmentIndex{Version: version, Base: 9, End: record.SegmentHeaderSize, Names: []string{}, Frames: []record.IndexedFrame{}, Fingerprints: []uint32{}}
		got, err = record.DecodeSegmentIndex(record.AppendSegmentIndex(nil, empty), segmentSize)
		require.NoError(t, err)
		assert.Equal(t, empty, got)
	}
	x := sampleIndex()
	x.Version = 0
	assert.Equal(t, record.AppendSegmentIndex(nil, sampleIndex()), record.AppendSegmentIndex(nil, x), "version zero writes the current version")
}

// The encodings of both versions, pinned: version 4 lists first versions
// once a stream and no fingerprints for a frame of assigned IDs; a file of
// version 3, as stores wrote before, still decodes to the same index.
func TestSegmentIndex_Golden(t *testing.T) {
	sum := func(h string) string {
		b, err := hex.DecodeString(h)
		require.NoError(t, err)
		return hex.EncodeToString(binary.LittleEndian.AppendUint32(b, record.Checksum(b)))
	}
	assert.Equal(t, sum(sampleIndexHex), hex.EncodeToString(record.AppendSegmentIndex(nil, sampleIndex())))
	for version, h := range map[uint8]string{record.IndexVersion: sampleIndexHex, record.OldestIndexVersion: sampleIndexV3Hex} {
		b, err := hex.DecodeString(sum(h))
		require.NoError(t, err)
		got, err := record.DecodeSegmentIndex(b, segmentSize)
		require.NoError(t, err, "version %d", version)
		want := sampleIndex()
		want.Version = version
		assert.Equal(t, want, got, "version %d", version)
	}
}

func TestDecodeSegmentIndex_Rejects(t *testing.T) {
	good := record.AppendSegmentIndex(nil, sampleIndex())
	_, err := record.DecodeSegmentIndex(good[:record.IndexHeaderSize], segmentSize)
	require.ErrorIs(t, err, record.ErrShort)

	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		_, err := record.DecodeSegmentIndex(b, segmentSize)
		require.ErrorIs(t, err, record.ErrPayloadChecksum, "byte %d", i)
	}

	edit := func(f func(x *record.SegmentIndex)) []byte {
		x := sampleIndex()
		f(x)
		return record.AppendSegmentIndex(nil, x)
	}
	malformed := map[string][]byte{
		"version":       reseal(append(bytes.Clone(good[:4]), append([]byte{record.IndexVersion + 1}, good[5:]...)...)),
		"older version": reseal(append(bytes.Clone(good[:4]), append([]byte{record.OldestIndexVersion - 1}, good[5:]...)...)),
		"reserved":      reseal(append(bytes.Clone(good[:5]), append([]byte{1}, good[6:]...)...)),
		"reserved tail": reseal(append(bytes.Clone(good[:39]), append([]byte{1}, good[40:]...)...)),
		"empty name":    edit(func(x *record.SegmentIndex) { x.Names[1] = "" }),
		"unknown name": func() []byte {
			b := bytes.Clone(good)
			b[len(b)-4-12-1] = 2 // the last frame's name
			return reseal(b)
		}(),
		"empty frame":       edit(func(x *record.SegmentIndex) { x.Frames[0].Count = 0 }),
		"offset repeated":   edit(func(x *record.SegmentIndex) { x.Frames[2].Offset = x.Frames[1].Offset }),
		"offset past end":   edit(func(x *record.SegmentIndex) { x.End = int64(x.Frames[2].Offset) }),
		"end before frames": edit(func(x *record.SegmentIndex) { x.End = 3 }),
		"too few prints":    reseal(append(bytes.Clone(good[:len(good)-8]), good[len(good)-4:]...)),
		"too many prints":   reseal(append(append(bytes.Clone(good[:len(good)-4]), 5, 0, 0, 0), good[len(good)-4:]...)),
		"unused name":       edit(func(x *record.SegmentIndex) { x.Names = append(x.Names, "unused") }),
		"version overflow":  edit(func(x *record.SegmentIndex) { x.Frames[1].FirstVersion = math.MaxInt64 - 1 }),
		"listed, all zero": func() []byte {
			b := bytes.Clone(good)
			copy(b[len(b)-16:], []byte{0, 0, 0, 0}) // the first frame's only fingerprint
			return reseal(b)
		}(),
		"past the segment": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b[16:24], segmentSize+1) // end
			return reseal(b)
		}(),
		"more events than bytes": edit(func(x *record.SegmentIndex) {
			// Left out as assigned, they take no bytes in the file.
			x.Frames[2].Count = (segmentSize - record.SegmentHeaderSize) / record.MinEventSize
			x.Fingerprints = append(x.Fingerprints, make([]uint32, x.Frames[2].Count-1)...)
		}),
		"more frames than events fit": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b[16:24], record.SegmentHeaderSize+2*record.MinEventSize) // end: room for 2 events
			return reseal(b)
		}(),
		"more names than frames": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[28:32], 4) // names
			return reseal(b)
		}(),
		"huge counts": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[24:28], 1<<30) // frames
			return reseal(b)
		}(),
	}
	for name, b := range malformed {
		_, err := record.DecodeSegmentIndex(b, segmentSize)
		require.ErrorIs(t, err, record.ErrMalformed, name)
	}
}

// checkDecodeSegmentIndex is the property FuzzDecodeSegmentIndex checks on
// one input: no panic, errors are sentinels, and a decoded index re-encodes
// to exactly the bytes it came from.
func checkDecodeSegmentIndex(t *testing.T, in []byte) {
	x, err := record.DecodeSegmentIndex(in, segmentSize)
	if err != nil {
		require.True(t, isSentinel(err), "DecodeSegmentIndex error is not a sentinel: %v", err)
		return
	}
	require.Equal(t, hex.EncodeToString(in), hex.EncodeToString(record.AppendSegmentIndex(nil, x)),
		"re-encoding the decoded index differs from the input")
	var rel uint32
	for _, f := range x.Frames {
		require.Equal(t, rel, f.Rel)
		require.Less(t, int64(f.Offset), x.End)
		require.Less(t, int(f.Name), len(x.Names))
		rel += f.Count
	}
	require.Equal(t, uint64(rel), x.Events())
	require.LessOrEqual(t, x.Events()*record.MinEventSize, uint64(x.End-record.SegmentHeaderSize), "no more events than the segment's bytes can hold")
}

func FuzzDecodeSegmentIndex(f *testing.F) {
	good := record.AppendSegmentIndex(nil, sampleIndex())
	f.Add(good)
	for n := range len(good) {
		f.Add(good[:n])
	}
	f.Add(record.AppendSegmentIndex(nil, &record.SegmentIndex{End: record.SegmentHeaderSize}))
	old := sampleIndex()
	old.Version = record.OldestIndexVersion
	f.Add(record.AppendSegmentIndex(nil, old))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecodeSegmentIndex(t, in)
		if len(in) >= record.IndexHeaderSize+4 {
			// The fuzzer cannot forge the checksum itself.
			checkDecodeSegmentIndex(t, reseal(in))
		}
	})
}

// A file that claims more frames or names than its segment's bytes can
// hold is refused before the decoder allocates for them: what it allocates
// stays within a small multiple of the file and the segment.
func TestDecodeSegmentIndex_AllocationBoundedBySegment(t *testing.T) {
	const frames = 1 << 20
	b := make([]byte, record.IndexHeaderSize, record.IndexHeaderSize+3*frames+4)
	copy(b, "ESIX\x04")
	binary.LittleEndian.PutUint64(b[8:16], 0)
	binary.LittleEndian.PutUint64(b[16:24], 4096) // end: a small segment
	binary.LittleEndian.PutUint32(b[24:28], frames)
	binary.LittleEndian.PutUint32(b[28:32], 1)
	b = append(b, 1, 'a', 0) // one name
	for range frames - 1 {
		b = append(b, 3, 1, 0) // flagged frames of one event, one byte apart
	}
	b = reseal(append(b, make([]byte, 8+4)...)) // room for the counts' check, and the checksum
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := record.DecodeSegmentIndex(b, 4096)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, record.ErrMalformed)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(len(b)), "bytes allocated decoding a %d-byte file", len(b))
}

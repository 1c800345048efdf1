package record_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-eventstore/eventstore/internal/record"
)

// sampleIndex is a segment index of three frames over two streams, the
// middle one holding two events.
func sampleIndex() *record.SegmentIndex {
	return &record.SegmentIndex{
		Base:          1734,
		End:           24 + 300 + 410 + 290,
		LastHeaderCRC: 0xa1b2c3d4,
		Names:         []string{"orders-1", "carts-7"},
		Frames: []record.IndexedFrame{
			{Offset: 24, Rel: 0, Count: 1, Name: 0, FirstVersion: 0},
			{Offset: 324, Rel: 1, Count: 2, Name: 1, FirstVersion: 130},
			{Offset: 734, Rel: 3, Count: 1, Name: 0, FirstVersion: 1},
		},
		Fingerprints: []uint32{0xdeadbeef, 1, 2, 0x01020304},
	}
}

// reseal rewrites b's trailing checksum, so a change reaches the checks
// behind it.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], record.Checksum(b[:len(b)-4]))
	return b
}

func TestSegmentIndex_RoundTrip(t *testing.T) {
	want := sampleIndex()
	b := record.AppendSegmentIndex([]byte("prefix"), want)
	require.Equal(t, "prefix", string(b[:6]), "appends to dst")
	got, err := record.DecodeSegmentIndex(b[6:])
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, uint64(4), got.Events())
	assert.Equal(t, []byte("ESIX\x03"), b[6:11], "index files stay version 3 whatever the segments' version: those written beside version-3 segments stay in use")

	empty := &record.SegmentIndex{Base: 9, End: record.SegmentHeaderSize, Names: []string{}, Frames: []record.IndexedFrame{}, Fingerprints: []uint32{}}
	got, err = record.DecodeSegmentIndex(record.AppendSegmentIndex(nil, empty))
	require.NoError(t, err)
	assert.Equal(t, empty, got)
}

func TestDecodeSegmentIndex_Rejects(t *testing.T) {
	good := record.AppendSegmentIndex(nil, sampleIndex())
	_, err := record.DecodeSegmentIndex(good[:record.IndexHeaderSize])
	require.ErrorIs(t, err, record.ErrShort)

	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		_, err := record.DecodeSegmentIndex(b)
		require.ErrorIs(t, err, record.ErrPayloadChecksum, "byte %d", i)
	}

	edit := func(f func(x *record.SegmentIndex)) []byte {
		x := sampleIndex()
		f(x)
		return record.AppendSegmentIndex(nil, x)
	}
	malformed := map[string][]byte{
		"version":           reseal(append(bytes.Clone(good[:4]), append([]byte{record.IndexVersion + 1}, good[5:]...)...)),
		"older version":     reseal(append(bytes.Clone(good[:4]), append([]byte{record.IndexVersion - 1}, good[5:]...)...)),
		"reserved":          reseal(append(bytes.Clone(good[:5]), append([]byte{1}, good[6:]...)...)),
		"reserved tail":     reseal(append(bytes.Clone(good[:39]), append([]byte{1}, good[40:]...)...)),
		"empty name":        edit(func(x *record.SegmentIndex) { x.Names[1] = "" }),
		"unknown name":      edit(func(x *record.SegmentIndex) { x.Frames[2].Name = 2 }),
		"empty frame":       edit(func(x *record.SegmentIndex) { x.Frames[0].Count = 0 }),
		"offset repeated":   edit(func(x *record.SegmentIndex) { x.Frames[2].Offset = x.Frames[1].Offset }),
		"offset past end":   edit(func(x *record.SegmentIndex) { x.End = int64(x.Frames[2].Offset) }),
		"end before frames": edit(func(x *record.SegmentIndex) { x.End = 3 }),
		"too few prints":    edit(func(x *record.SegmentIndex) { x.Fingerprints = x.Fingerprints[:3] }),
		"too many prints":   edit(func(x *record.SegmentIndex) { x.Fingerprints = append(x.Fingerprints, 5) }),
		"huge counts": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[24:28], 1<<30) // frames
			return reseal(b)
		}(),
	}
	for name, b := range malformed {
		_, err := record.DecodeSegmentIndex(b)
		require.ErrorIs(t, err, record.ErrMalformed, name)
	}
}

// checkDecodeSegmentIndex is the property FuzzDecodeSegmentIndex checks on
// one input: no panic, errors are sentinels, and a decoded index re-encodes
// to exactly the bytes it came from.
func checkDecodeSegmentIndex(t *testing.T, in []byte) {
	x, err := record.DecodeSegmentIndex(in)
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
}

func FuzzDecodeSegmentIndex(f *testing.F) {
	good := record.AppendSegmentIndex(nil, sampleIndex())
	f.Add(good)
	for n := range len(good) {
		f.Add(good[:n])
	}
	f.Add(record.AppendSegmentIndex(nil, &record.SegmentIndex{End: record.SegmentHeaderSize}))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecodeSegmentIndex(t, in)
		if len(in) >= record.IndexHeaderSize+4 {
			// The fuzzer cannot forge the checksum itself.
			checkDecodeSegmentIndex(t, reseal(in))
		}
	})
}

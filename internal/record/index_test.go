package record_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
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

// sampleIndexHex is sampleIndex's encoding, in version 5, 4 and 3.
const (
	sampleIndexHeaderHex = "c6060000000000000004000000000000" + "03000000" + "02000000" + "d4c3b2a1" + "00000000"
	sampleIndexHex       = "4553495805000000" + sampleIndexHeaderHex +
		"086f72646572732d3100" + "0763617274732d378201" + // names: length, name, first version
		"02" + "00" + // frame 0: name 0<<2 | one event<<1; offset delta 0, zigzag(0-0)
		"04" + "02" + "d804" + // frame 1: name 1<<2; count 2; delta 300, zigzag(300-0) = 600
		"03" + "dc01" + // frame 2: name 0<<2 | one event<<1 | unlisted; delta 410, zigzag(410-300) = 220
		"efbeadde" + "00000000" + "02000000" // fingerprints of the first two frames
	sampleIndexV4Hex = "4553495804000000" + sampleIndexHeaderHex +
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

// indexVersions are the index file versions AppendSegmentIndex writes and
// DecodeSegmentIndex reads, newest first.
var indexVersions = []uint8{record.IndexVersion, 4, record.OldestIndexVersion}

func TestSegmentIndex_RoundTrip(t *testing.T) {
	require.Equal(t, uint8(5), uint8(record.IndexVersion))
	for _, version := range indexVersions {
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

// sealHex appends the checksum to the file whose body is hex h.
func sealHex(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	return binary.LittleEndian.AppendUint32(b, record.Checksum(b))
}

// The encodings of every version, pinned: version 5 lists a frame's name,
// flags, count (if not one) and offset step; version 4 lists first
// versions once a stream and no fingerprints for a frame of assigned IDs;
// files of versions 4 and 3, as stores wrote before, still decode to the
// same index, and AppendSegmentIndex still writes them when asked.
func TestSegmentIndex_Golden(t *testing.T) {
	assert.Equal(t, hex.EncodeToString(sealHex(t, sampleIndexHex)), hex.EncodeToString(record.AppendSegmentIndex(nil, sampleIndex())))
	for version, h := range map[uint8]string{record.IndexVersion: sampleIndexHex, 4: sampleIndexV4Hex, record.OldestIndexVersion: sampleIndexV3Hex} {
		b := sealHex(t, h)
		got, err := record.DecodeSegmentIndex(b, segmentSize)
		require.NoError(t, err, "version %d", version)
		want := sampleIndex()
		want.Version = version
		assert.Equal(t, want, got, "version %d", version)
		assert.Equal(t, hex.EncodeToString(b), hex.EncodeToString(record.AppendSegmentIndex(nil, want)), "version %d", version)
	}
}

// steppedIndex is a segment index whose frames grow and then shrink, so
// that version 5's offset steps are zero, positive and negative: four
// frames over two streams, of three events, one, one and two, of which
// only the second's ID is not one the store assigned.
func steppedIndex() *record.SegmentIndex {
	return &record.SegmentIndex{
		Version:       record.IndexVersion,
		Base:          16,
		End:           334,
		LastHeaderCRC: 0x11223344,
		Names:         []string{"a", "b"},
		Frames: []record.IndexedFrame{
			{Offset: 24, Rel: 0, Count: 3, Name: 0, FirstVersion: 0},  // 100 bytes
			{Offset: 124, Rel: 3, Count: 1, Name: 1, FirstVersion: 7}, // 100 bytes
			{Offset: 224, Rel: 4, Count: 1, Name: 0, FirstVersion: 3}, // 60 bytes
			{Offset: 284, Rel: 5, Count: 2, Name: 1, FirstVersion: 8}, // 50 bytes
		},
		Fingerprints: []uint32{0, 0, 0, 0x01020304, 0, 0, 0},
	}
}

// steppedIndexHex is steppedIndex's encoding in version 5, byte by byte.
const steppedIndexHex = "45534958" + // magic "ESIX"
	"05" + "000000" + // version 5, reserved
	"1000000000000000" + // base 16
	"4e01000000000000" + // end 334
	"04000000" + // 4 frames
	"02000000" + // 2 names
	"44332211" + // hcrc of the last frame
	"00000000" + // reserved
	"01" + "61" + "00" + // name 0: length 1, "a", first version 0
	"01" + "62" + "07" + // name 1: length 1, "b", first version 7
	"01" + // frame 0 kind: name 0<<2 | count follows (0<<1) | unlisted (1)
	"03" + // frame 0 count 3
	"00" + // frame 0 offset: delta 24-24 = 0, zigzag(0-0) = 0
	"06" + // frame 1 kind: name 1<<2 | one event (1<<1) | listed (0)
	"c801" + // frame 1 offset: delta 124-24 = 100, zigzag(100-0) = 200, two varint bytes
	"03" + // frame 2 kind: name 0<<2 | one event (1<<1) | unlisted (1)
	"00" + // frame 2 offset: delta 224-124 = 100, zigzag(100-100) = 0
	"05" + // frame 3 kind: name 1<<2 | count follows (0<<1) | unlisted (1)
	"02" + // frame 3 count 2
	"4f" + // frame 3 offset: delta 284-224 = 60, zigzag(60-100 = -40) = 79
	"04030201" // fingerprint of frame 1's event, the only frame listed

// Version 5's encoding, pinned on an index whose offset steps go up and
// down.
func TestSegmentIndex_GoldenV5(t *testing.T) {
	want := sealHex(t, steppedIndexHex)
	assert.Equal(t, hex.EncodeToString(want), hex.EncodeToString(record.AppendSegmentIndex(nil, steppedIndex())))
	got, err := record.DecodeSegmentIndex(want, segmentSize)
	require.NoError(t, err)
	assert.Equal(t, steppedIndex(), got)
}

// variedIndex returns a valid index of frames frames over names streams
// (frames >= names): frames of one event and of many, up to several
// hundred; fingerprints unlisted, listed, and listed with zeros among
// them; frame sizes drifting by a few bytes, with jumps up and down of
// thousands, so that version 5's offset steps are of both signs and every
// width.
func variedIndex(frames, names int, seed uint64) *record.SegmentIndex {
	r := rand.New(rand.NewPCG(seed, 1))
	x := &record.SegmentIndex{Version: record.IndexVersion, Base: r.Uint64N(1 << 40), LastHeaderCRC: r.Uint32()}
	next := make([]uint64, names)
	for i := range names {
		x.Names = append(x.Names, "stream-"+strconv.Itoa(i))
		if r.IntN(3) == 0 {
			next[i] = r.Uint64N(1 << 40)
		}
	}
	off, size := uint32(record.SegmentHeaderSize), 250
	for i := range frames {
		name := i // each name first in order, then at random
		if i >= names {
			name = r.IntN(names)
		}
		count := 1
		switch r.IntN(10) {
		case 0, 1, 2:
			count = 2 + r.IntN(5)
		case 3:
			count = 100 + r.IntN(300)
		}
		switch r.IntN(40) {
		case 0:
			size = 10_000 + r.IntN(100_000)
		case 1:
			size = 1 + r.IntN(300)
		default:
			size += r.IntN(7) - 3
		}
		size = max(size, count*record.MinEventSize)
		prints := make([]uint32, count)
		switch r.IntN(3) {
		case 1: // listed
			for k := range prints {
				prints[k] = r.Uint32() | 1
			}
		case 2: // listed, some zero
			for k := range prints {
				if r.IntN(2) == 0 {
					prints[k] = r.Uint32()
				}
			}
			prints[r.IntN(count)] = 0xfeed
		}
		x.Frames = append(x.Frames, record.IndexedFrame{Offset: off, Rel: uint32(len(x.Fingerprints)), Count: uint32(count), Name: uint32(name), FirstVersion: next[name]})
		x.Fingerprints = append(x.Fingerprints, prints...)
		next[name] += uint64(count)
		off += uint32(size)
	}
	x.End = int64(off)
	return x
}

// Version 5 round-trips an index of every kind of frame, and so do the
// older versions; decoding gives back the very bytes.
func TestSegmentIndex_RoundTripVaried(t *testing.T) {
	x := variedIndex(8000, 5000, 1)
	// The index holds what it is meant to: steps of both signs, one-event
	// frames and many-event ones, listed and unlisted, and names whose
	// kind takes three varint bytes (name<<2 >= 1<<14).
	var grow, shrink, one, many, unlisted, listed int
	prev := int64(-1)
	for i, f := range x.Frames {
		delta := int64(f.Offset) - record.SegmentHeaderSize
		if i > 0 {
			delta = int64(f.Offset - x.Frames[i-1].Offset)
		}
		switch {
		case prev >= 0 && delta > prev+64:
			grow++
		case prev >= 0 && delta < prev-64:
			shrink++
		}
		prev = delta
		if f.Count == 1 {
			one++
		} else {
			many++
		}
		zero := true
		for _, p := range x.Fingerprints[f.Rel : f.Rel+f.Count] {
			zero = zero && p == 0
		}
		if zero {
			unlisted++
		} else {
			listed++
		}
	}
	for what, n := range map[string]int{"growing": grow, "shrinking": shrink, "one-event": one, "many-event": many, "unlisted": unlisted, "listed": listed} {
		require.Greater(t, n, 10, "%s frames", what)
	}
	require.Greater(t, len(x.Names), 1<<12)
	require.Less(t, variedIndex(30, 20, 3).End, int64(segmentSize), "FuzzDecodeSegmentIndex's seed fits its segment")

	for _, version := range indexVersions {
		x.Version = version
		b := record.AppendSegmentIndex(nil, x)
		got, err := record.DecodeSegmentIndex(b, x.End)
		require.NoError(t, err, "version %d", version)
		require.Equal(t, x, got, "version %d", version)
		require.Equal(t, b, record.AppendSegmentIndex(nil, got), "version %d", version)
		t.Logf("version %d: %d bytes", version, len(b))
	}
}

func TestDecodeSegmentIndex_Rejects(t *testing.T) {
	for _, version := range []uint8{record.IndexVersion, 4} {
		testDecodeSegmentIndexRejects(t, version)
	}
}

// testDecodeSegmentIndexRejects checks what DecodeSegmentIndex refuses in
// files of sampleIndex in version 4 or later.
func testDecodeSegmentIndexRejects(t *testing.T, version uint8) {
	sample := func() *record.SegmentIndex {
		x := sampleIndex()
		x.Version = version
		return x
	}
	good := record.AppendSegmentIndex(nil, sample())
	_, err := record.DecodeSegmentIndex(good[:record.IndexHeaderSize], segmentSize)
	require.ErrorIs(t, err, record.ErrShort, "version %d", version)

	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		_, err := record.DecodeSegmentIndex(b, segmentSize)
		require.ErrorIs(t, err, record.ErrPayloadChecksum, "version %d byte %d", version, i)
	}

	edit := func(f func(x *record.SegmentIndex)) []byte {
		x := sample()
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
			if version == 4 {
				b[len(b)-4-12-1] = 2 // the last frame's name
			} else {
				b[len(b)-4-12-3] = 2<<2 | 3 // the last frame's kind: name 2, one event, unlisted
			}
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
		require.ErrorIs(t, err, record.ErrMalformed, "version %d: %s", version, name)
	}
}

// v5File is a version-5 index file of a segment of end bytes, its header
// saying frames frames and names names, its body the hex h, sealed.
func v5File(t *testing.T, end uint64, frames, names uint32, h string) []byte {
	t.Helper()
	b := make([]byte, record.IndexHeaderSize)
	copy(b, "ESIX\x05")
	binary.LittleEndian.PutUint64(b[16:24], end)
	binary.LittleEndian.PutUint32(b[24:28], frames)
	binary.LittleEndian.PutUint32(b[28:32], names)
	body, err := hex.DecodeString(h)
	require.NoError(t, err)
	return reseal(append(append(b, body...), 0, 0, 0, 0))
}

// uvarintHex is v's uvarint encoding, in hex.
func uvarintHex(v uint64) string { return hex.EncodeToString(binary.AppendUvarint(nil, v)) }

// What version 5's frame entries can get wrong, each refused for the
// reason it is wrong, starting from a good file of two frames.
func TestDecodeSegmentIndex_RejectsV5(t *testing.T) {
	const (
		names  = "01" + "61" + "00"   // "a", first version 0
		frame0 = "01" + "02" + "c801" // name 0, count follows, unlisted; count 2; delta 100: offset 124
		frame1 = "02" + "c501"        // name 0, one event, listed; delta 100-99 = 1: offset 125
		prints = "78563412"
	)
	file := func(frame0, frame1 string) []byte {
		return v5File(t, 200, 2, 1, names+frame0+frame1+prints)
	}
	good := file(frame0, frame1)
	got, err := record.DecodeSegmentIndex(good, 200)
	require.NoError(t, err)
	require.Equal(t, &record.SegmentIndex{
		Version: 5, End: 200, Names: []string{"a"},
		Frames: []record.IndexedFrame{
			{Offset: 124, Rel: 0, Count: 2, Name: 0, FirstVersion: 0},
			{Offset: 125, Rel: 2, Count: 1, Name: 0, FirstVersion: 2},
		},
		Fingerprints: []uint32{0, 0, 0x12345678},
	}, got)
	require.Equal(t, good, record.AppendSegmentIndex(nil, got))
	// The last byte a frame may start at: zigzag(-25) = 49, delta 75,
	// offset 199.
	got, err = record.DecodeSegmentIndex(file(frame0, "02"+uvarintHex(49)), 200)
	require.NoError(t, err)
	require.Equal(t, uint32(199), got.Frames[1].Offset)
	tooMany := (200-record.SegmentHeaderSize)/record.MinEventSize + 1 // events for frame 0 alone

	for name, c := range map[string]struct {
		b    []byte
		want string // in the error, naming the check that refused it
	}{
		"count 0 without the one flag":  {file("01"+"00"+"c801", frame1), "count of 0"},
		"count 1 without the one flag":  {file("01"+"01"+"c801", frame1), "count of 1"},
		"count past the segment":        {file("01"+uvarintHex(uint64(tooMany))+"c801", frame1), "holds " + strconv.Itoa(tooMany) + " events"},
		"delta negative":                {file(frame0, "02"+uvarintHex(201)), "changes offset delta 100 by -101"}, // zigzag(-101) = 201
		"delta zero: offset repeated":   {file(frame0, "02"+uvarintHex(199)), "out of order"},                     // zigzag(-100) = 199
		"offset at the end":             {file(frame0, "02"+uvarintHex(47)), "past the end"},                      // zigzag(-24) = 47: delta 76, offset 200
		"first offset past the end":     {file("01"+"02"+uvarintHex(math.MaxUint32<<1), frame1), "past the end"},
		"step past any delta":           {file(frame0, "02"+uvarintHex((math.MaxUint32+1)<<1)), "out of range"},
		"step most positive":            {file(frame0, "02"+uvarintHex(math.MaxUint64-1)), "out of range"}, // zigzag(MaxInt64)
		"step most negative":            {file(frame0, "02"+uvarintHex(math.MaxUint64)), "out of range"},   // zigzag(MinInt64)
		"name out of range":             {file(frame0, "06"+"c501"), "names stream 1 of 1"},
		"name far out of range":         {file(frame0, uvarintHex(1000<<2|2)+"c501"), "names stream 1000 of 1"},
		"kind not shortest":             {file(frame0, "8200"+"c501"), "bad varint"},
		"count not shortest":            {file("01"+"8200"+"c801", frame1), "bad varint"},
		"offset not shortest":           {file(frame0, "02"+"c58100"), "bad varint"},
		"unlisted, but prints follow":   {file(frame0, "03"+"c501"), "bytes of fingerprints"},
		"listed, but no prints follow":  {v5File(t, 200, 2, 1, names+"00"+"02"+"c801"+frame1+prints), "bytes of fingerprints"},
		"kind truncated":                {v5File(t, 200, 2, 1, names+frame0+"80"), "bad varint"},
		"offset missing":                {v5File(t, 200, 2, 1, names+frame0+"02"), "bad varint"},
		"count truncated, frames short": {v5File(t, 200, 2, 1, names+"01"), "cannot fit"},
	} {
		_, err := record.DecodeSegmentIndex(c.b, 200)
		require.ErrorIs(t, err, record.ErrMalformed, name)
		require.ErrorContains(t, err, c.want, name)
	}

	// Every truncation of a good file, resealed, is malformed.
	for _, b := range [][]byte{good, record.AppendSegmentIndex(nil, steppedIndex()), record.AppendSegmentIndex(nil, variedIndex(60, 40, 2))} {
		for n := record.IndexHeaderSize; n < len(b)-4; n++ {
			_, err := record.DecodeSegmentIndex(reseal(append(bytes.Clone(b[:n]), 0, 0, 0, 0)), segmentSize<<8)
			require.ErrorIs(t, err, record.ErrMalformed, "%d of %d bytes", n, len(b)-4)
		}
	}
}

// Version 5's frame entries take as little as two bytes, and the bound
// the decoder puts on how many frames a file's bytes can hold allows for
// that: a file of nothing but two-byte entries decodes, and one that
// claims a frame more than its bytes fit is refused before the decoder
// allocates for them.
func TestDecodeSegmentIndex_TwoByteEntries(t *testing.T) {
	const frames = 1000
	x := &record.SegmentIndex{Version: record.IndexVersion, End: record.SegmentHeaderSize + 8*frames, Names: []string{"a"}, Fingerprints: make([]uint32, frames)}
	for i := range frames {
		x.Frames = append(x.Frames, record.IndexedFrame{Offset: uint32(record.SegmentHeaderSize + 8*i), Rel: uint32(i), Count: 1, FirstVersion: uint64(i)})
	}
	b := record.AppendSegmentIndex(nil, x)
	// Header, the name ("a", first version 0), two bytes a frame (kind 03,
	// steps zigzag 0, 16, then 0), no fingerprints, checksum.
	require.Len(t, b, record.IndexHeaderSize+3+2*frames+4)
	got, err := record.DecodeSegmentIndex(b, x.End)
	require.NoError(t, err)
	require.Equal(t, x, got)

	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[24:28], frames+1)
	_, err = record.DecodeSegmentIndex(reseal(b), x.End)
	require.ErrorIs(t, err, record.ErrMalformed)
	require.ErrorContains(t, err, "cannot fit")
}

// Offsets cannot wrap around: a delta so large that adding it overflows
// is refused, in every version, not taken for one that goes back.
func TestDecodeSegmentIndex_RejectsWrappingOffset(t *testing.T) {
	huge := uvarintHex(math.MaxUint64) // 24 + 2^64-1 wraps to 23
	for version, body := range map[uint8]string{
		5: "016100" + "0300" + "03" + uvarintHex(math.MaxUint64-1),         // kind, zigzag step
		4: "016100" + "030000" + "03" + huge + "00",                        // head, delta, name
		3: "0161" + "01000000" + "01" + huge + "0001" + "0100000002000000", // count, delta, name, first version; prints
	} {
		b, err := hex.DecodeString(body)
		require.NoError(t, err)
		h := make([]byte, record.IndexHeaderSize)
		copy(h, "ESIX")
		h[4] = version
		binary.LittleEndian.PutUint64(h[16:24], 100)
		binary.LittleEndian.PutUint32(h[24:28], 2)
		binary.LittleEndian.PutUint32(h[28:32], 1)
		_, err = record.DecodeSegmentIndex(reseal(append(append(h, b...), 0, 0, 0, 0)), segmentSize)
		require.ErrorIs(t, err, record.ErrMalformed, "version %d", version)
	}
}

// The benchmark's index, in version 4 and 5: one segment of 100,000
// frames of one event each, of about 250 bytes, sizes varying by a byte or
// two, over 1,000 streams in turn, every ID assigned so that no frame's
// fingerprints are listed. Version 5 takes fewer bytes a frame.
func TestSegmentIndex_V5SmallerThanV4(t *testing.T) {
	const frames, streams = 100_000, 1000
	x := &record.SegmentIndex{Base: 1, LastHeaderCRC: 1, Fingerprints: make([]uint32, frames)}
	namesSize := 0 // bytes of the names table, the same in both versions
	for i := range streams {
		n := "stream-" + strconv.Itoa(i)
		x.Names = append(x.Names, n)
		namesSize += len(binary.AppendUvarint(nil, uint64(len(n)))) + len(n) + 1 // first version 0
	}
	off := uint32(record.SegmentHeaderSize)
	for i := range frames {
		x.Frames = append(x.Frames, record.IndexedFrame{Offset: off, Rel: uint32(i), Count: 1, Name: uint32(i % streams), FirstVersion: uint64(i / streams)})
		off += uint32(240 + len(x.Names[i%streams]) + i*7919%3) // 248 to 252 bytes
	}
	x.End = int64(off)
	perFrame := map[uint8]float64{}
	for _, version := range []uint8{4, 5} {
		x.Version = version
		b := record.AppendSegmentIndex(nil, x)
		got, err := record.DecodeSegmentIndex(b, x.End)
		require.NoError(t, err)
		require.Equal(t, x, got)
		entries := len(b) - record.IndexHeaderSize - namesSize - 4
		perFrame[version] = float64(entries) / frames
		t.Logf("version %d: %d bytes, %.3f a frame; frame entries %d bytes, %.3f a frame",
			version, len(b), float64(len(b))/frames, entries, perFrame[version])
	}
	assert.Less(t, perFrame[5], perFrame[4])
	assert.Less(t, perFrame[5], 3.0, "a byte of kind, for names below 32, or two; a byte of offset step")
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
	f.Add(record.AppendSegmentIndex(nil, steppedIndex()))
	for _, version := range indexVersions {
		old := sampleIndex()
		old.Version = version
		f.Add(record.AppendSegmentIndex(nil, old))
		varied := variedIndex(30, 20, 3) // of End below segmentSize
		varied.Version = version
		f.Add(record.AppendSegmentIndex(nil, varied))
	}
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
//
// Version 5's entries are smaller, two bytes at least: the file holds more
// of them in as many bytes, and the segment's size still bounds them.
func TestDecodeSegmentIndex_AllocationBoundedBySegment(t *testing.T) {
	const frames = 1 << 20
	for version, entry := range map[uint8][]byte{
		4: {3, 1, 0}, // flagged frames of one event, one byte apart: head, delta, name
		5: {3, 0},    // the same: kind (name 0, one event, unlisted), delta unchanged
	} {
		b := make([]byte, record.IndexHeaderSize, record.IndexHeaderSize+len(entry)*frames+16)
		copy(b, "ESIX")
		b[4] = version
		binary.LittleEndian.PutUint64(b[8:16], 0)
		binary.LittleEndian.PutUint64(b[16:24], 4096) // end: a small segment
		binary.LittleEndian.PutUint32(b[24:28], frames)
		binary.LittleEndian.PutUint32(b[28:32], 1)
		b = append(b, 1, 'a', 0) // one name
		for range frames - 1 {
			b = append(b, entry...)
		}
		b = reseal(append(b, make([]byte, 8+4)...)) // room for the counts' check, and the checksum
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := record.DecodeSegmentIndex(b, 4096)
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, record.ErrMalformed, "version %d", version)
		require.ErrorContains(t, err, "for 4096 bytes of segment", "version %d: refused for its counts", version)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(len(b)), "version %d: bytes allocated decoding a %d-byte file", version, len(b))
	}
}

package eventstore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go-eventstore/eventstore"
	"github.com/go-eventstore/eventstore/internal/race"
	"github.com/go-eventstore/eventstore/internal/record"
)

// ExampleOpen is the README's quick start.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "eventstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := eventstore.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	_, err = store.Append(ctx, "order-42", eventstore.NoStream,
		eventstore.EventData{Type: "OrderPlaced", Data: []byte(`{"total":99}`)})
	if err != nil {
		panic(err)
	}
	events, _ := store.ReadStream(ctx, "order-42", 0, 0)
	fmt.Println(events[0].Type, events[0].StreamVersion, string(events[0].Data))
	// Output: OrderPlaced 0 {"total":99}
}

// ExampleStore_Append shows optimistic concurrency: an Append that expects a
// version the stream has moved past is refused.
func ExampleStore_Append() {
	dir, _ := os.MkdirTemp("", "eventstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, _ := eventstore.Open(dir, nil)
	defer store.Close()

	res, _ := store.Append(ctx, "cart-7", eventstore.NoStream, eventstore.EventData{Type: "ItemAdded"})
	fmt.Println("appended version", res.StreamVersion)
	res, _ = store.Append(ctx, "cart-7", eventstore.Exact(res.StreamVersion), eventstore.EventData{Type: "ItemAdded"})
	fmt.Println("appended version", res.StreamVersion)

	_, err := store.Append(ctx, "cart-7", eventstore.Exact(0), eventstore.EventData{Type: "CheckedOut"})
	var wrong *eventstore.WrongExpectedVersionError
	if errors.As(err, &wrong) {
		fmt.Println("conflict: stream is at version", wrong.Actual)
	}
	// Output:
	// appended version 0
	// appended version 1
	// conflict: stream is at version 1
}

// newStore opens a store in a fresh directory and closes it when the test
// ends.
func newStore(t testing.TB, opts *eventstore.Options) (*eventstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func reopen(t testing.TB, dir string, opts *eventstore.Options) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func event(typ, data string) eventstore.EventData {
	return eventstore.EventData{Type: typ, Data: []byte(data)}
}

func TestOpen_Options_Invalid(t *testing.T) {
	tests := []struct {
		name  string
		opts  eventstore.Options
		field string
	}{
		{"negative event size", eventstore.Options{MaxEventSize: -1}, "MaxEventSize"},
		{"event size over 64 MiB", eventstore.Options{MaxEventSize: 65 << 20}, "MaxEventSize"},
		{"append smaller than event", eventstore.Options{MaxEventSize: 2 << 20, MaxAppendSize: 1 << 20}, "MaxAppendSize"},
		{"append over 255 MiB", eventstore.Options{MaxAppendSize: 256 << 20}, "MaxAppendSize"},
		{"negative queue", eventstore.Options{QueueSize: -1}, "QueueSize"},
		{"negative batch", eventstore.Options{MaxBatch: -5}, "MaxBatch"},
		{"tiny segment", eventstore.Options{SegmentSize: 100}, "SegmentSize"},
		{"huge segment", eventstore.Options{SegmentSize: 2 << 30}, "SegmentSize"},
		{"unknown sync mode", eventstore.Options{Sync: eventstore.SyncMode(9)}, "Sync"},
		{"negative interval", eventstore.Options{SyncInterval: -time.Second}, "SyncInterval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			opts := tc.opts
			s, err := eventstore.Open(dir, &opts)
			require.ErrorIs(t, err, eventstore.ErrInvalidOptions)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tc.field)
			assert.NoDirExists(t, dir, "options are checked before touching disk")
			assert.Equal(t, tc.opts, opts, "the caller's options are not modified")
		})
	}
}

func TestOpen_DefaultsDoNotModifyCaller(t *testing.T) {
	opts := &eventstore.Options{MaxBatch: 8}
	newStore(t, opts)
	assert.Equal(t, eventstore.Options{MaxBatch: 8}, *opts)
}

// Prototype AC-1 (first append: position 0, version 0) and AC-4a/b/c, within
// the whole expected-version matrix.
func TestStore_Append_ExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing int // events already in the stream
		expected eventstore.ExpectedVersion
		ok       bool
	}{
		{"Any on missing stream", 0, eventstore.Any, true},
		{"Any on stream", 3, eventstore.Any, true},
		{"NoStream on missing stream", 0, eventstore.NoStream, true},
		{"NoStream on stream", 1, eventstore.NoStream, false},
		{"StreamExists on missing stream", 0, eventstore.StreamExists, false},
		{"StreamExists on stream", 2, eventstore.StreamExists, true},
		{"Exact(0) on missing stream", 0, eventstore.Exact(0), false},
		{"Exact(0) on one event", 1, eventstore.Exact(0), true},
		{"Exact(2) on three events", 3, eventstore.Exact(2), true},
		{"Exact(1) on three events", 3, eventstore.Exact(1), false},
		{"Exact(5) on three events", 3, eventstore.Exact(5), false},
		{"Exact(5) after NoStream", 1, eventstore.Exact(5), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, nil)
			ctx := context.Background()
			for i := range tc.existing {
				_, err := s.Append(ctx, "s", eventstore.Any, event("t", strconv.Itoa(i)))
				require.NoError(t, err)
			}
			res, err := s.Append(ctx, "s", tc.expected, event("t", "new"))
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, uint64(tc.existing), res.StreamVersion)
				assert.Equal(t, uint64(tc.existing), res.Position)
				return
			}
			var wrong *eventstore.WrongExpectedVersionError
			require.ErrorAs(t, err, &wrong)
			require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
			assert.Equal(t, "s", wrong.Stream)
			assert.Equal(t, tc.expected, wrong.Expected)
			assert.Equal(t, int64(tc.existing)-1, wrong.Actual)
			evs, err := s.ReadStream(ctx, "s", 0, 0)
			require.NoError(t, err)
			assert.Len(t, evs, tc.existing, "a failed check writes nothing")
		})
	}
}

func TestStore_Append_BadInput(t *testing.T) {
	id := eventstore.NewEventID()
	tests := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
		want     error
		message  string
	}{
		{"empty stream", "", eventstore.Any, []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidStream, "empty"},
		{"stream over 1 KiB", strings.Repeat("s", 1025), eventstore.Any, []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidStream, "1025"},
		{"stream not UTF-8", "bad\xff", eventstore.Any, []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidStream, "UTF-8"},
		{"stream with NUL", "a\x00b", eventstore.Any, []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidStream, "NUL"},
		{"no events", "s", eventstore.Any, nil, eventstore.ErrNoEvents, ""},
		{"missing type", "s", eventstore.Any, []eventstore.EventData{event("t", "ok"), {Data: []byte("x")}}, eventstore.ErrInvalidEvent, "event 1"},
		{"type not UTF-8", "s", eventstore.Any, []eventstore.EventData{event("\xfe", "")}, eventstore.ErrInvalidEvent, "UTF-8"},
		{"event too large", "s", eventstore.Any, []eventstore.EventData{{Type: "t", Data: make([]byte, 5000)}}, eventstore.ErrEventTooLarge, "limit 4096"},
		{"append too large", "s", eventstore.Any, []eventstore.EventData{{Type: "t", Data: make([]byte, 4000)}, {Type: "t", Data: make([]byte, 4000)}, {Type: "t", Data: make([]byte, 4000)}}, eventstore.ErrAppendTooLarge, "limit 10000"},
		{"duplicate IDs", "s", eventstore.Any, []eventstore.EventData{{ID: id, Type: "t"}, {ID: id, Type: "t"}}, eventstore.ErrInvalidEvent, id.String()},
		{"invalid expected version", "s", eventstore.ExpectedVersion(-3), []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidExpectedVersion, "-3"},
		{"expected version out of range", "s", eventstore.Exact(math.MaxUint64), []eventstore.EventData{event("t", "")}, eventstore.ErrInvalidExpectedVersion, ""},
	}
	s, _ := newStore(t, &eventstore.Options{MaxEventSize: 4096, MaxAppendSize: 10000})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(context.Background(), tc.stream, tc.expected, tc.events...)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.message)
			assert.Equal(t, uint64(0), s.Stats().Events, "nothing is written")
		})
	}
	// The store is unharmed.
	_, err := s.Append(context.Background(), "s", eventstore.NoStream, event("t", "fine"))
	require.NoError(t, err)
}

func TestStore_Append_NilAndEmptyDataReadBackNil(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	_, err := s.Append(ctx, "s", eventstore.Any,
		eventstore.EventData{Type: "nil"},
		eventstore.EventData{Type: "empty", Data: []byte{}, Metadata: []byte{}},
		eventstore.EventData{Type: "meta-only", Metadata: []byte("m")})
	require.NoError(t, err)
	evs, err := s.ReadStream(ctx, "s", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	assert.Nil(t, evs[0].Data)
	assert.Nil(t, evs[0].Metadata)
	assert.Nil(t, evs[1].Data)
	assert.Nil(t, evs[1].Metadata)
	assert.Nil(t, evs[2].Data)
	assert.Equal(t, []byte("m"), evs[2].Metadata)
}

func TestStore_Append_ManyEventsAtomicAndContiguous(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	_, err := s.Append(ctx, "other", eventstore.Any, event("t", "first"))
	require.NoError(t, err)
	batch := make([]eventstore.EventData, 10)
	for i := range batch {
		batch[i] = event("t", strconv.Itoa(i))
	}
	res, err := s.Append(ctx, "s", eventstore.NoStream, batch...)
	require.NoError(t, err)
	assert.Equal(t, eventstore.AppendResult{Position: 10, StreamVersion: 9}, res, "result of the last event")
	evs, err := s.ReadStream(ctx, "s", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 10)
	for i, e := range evs {
		assert.Equal(t, uint64(i), e.StreamVersion)
		assert.Equal(t, uint64(i+1), e.Position)
		assert.Equal(t, strconv.Itoa(i), string(e.Data))
		assert.Equal(t, evs[0].Timestamp, e.Timestamp, "one commit time")
	}
}

// Prototype AC-6: events survive a restart.
func TestStore_Reopen_KeepsEveryFieldAndContinues(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := eventstore.Open(dir, nil)
	require.NoError(t, err)
	id := eventstore.NewEventID()
	before := time.Now()
	_, err = s.Append(ctx, "a", eventstore.NoStream, eventstore.EventData{ID: id, Type: "Created", Data: []byte("data"), Metadata: []byte("meta")})
	require.NoError(t, err)
	_, err = s.Append(ctx, "b", eventstore.NoStream, event("Other", "x"), event("Other", "y"))
	require.NoError(t, err)
	want, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = reopen(t, dir, nil)
	got, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	assert.Equal(t, id, got[0].ID)
	assert.Equal(t, "a", got[0].Stream)
	assert.Equal(t, "Created", got[0].Type)
	assert.Equal(t, []byte("meta"), got[0].Metadata)
	assert.WithinDuration(t, before, got[0].Timestamp, time.Minute)
	assert.Equal(t, time.UTC, got[0].Timestamp.Location())

	res, err := s.Append(ctx, "b", eventstore.Exact(1), event("Other", "z"))
	require.NoError(t, err)
	assert.Equal(t, eventstore.AppendResult{Position: 3, StreamVersion: 2}, res)
	st := s.Stats()
	assert.Equal(t, uint64(4), st.Events)
	assert.Equal(t, 2, st.Streams)
}

// An event appended with the zero ID gets an ID the store assigns: a UUID
// of version 7 holding the commit time's milliseconds, distinct from every
// other event's, and read back the same by every read, after a reopen with
// index files or without, and in segments created after the reopen.
// Appending an event again with the ID it was assigned is a retry.
func TestStore_Append_AssignedIDs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := &eventstore.Options{SegmentSize: 4096}
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	start := time.Now().UnixMilli()
	given := eventstore.NewEventID()
	for i := range 60 {
		_, err := s.Append(ctx, fmt.Sprint("s", i%3), eventstore.Any, event("t", strings.Repeat("x", 5*i)))
		require.NoError(t, err)
	}
	_, err = s.Append(ctx, "mixed", eventstore.NoStream, event("t", "a"),
		eventstore.EventData{ID: given, Type: "t", Data: []byte("b")}, event("t", "c"))
	require.NoError(t, err)
	end := time.Now().UnixMilli()
	require.Greater(t, s.Stats().Segments, 2)

	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 63)
	seen := make(map[eventstore.EventID]uint64)
	for _, e := range all {
		if e.Position == 61 {
			assert.Equal(t, given, e.ID, "a given ID is kept")
			continue
		}
		id := e.ID
		assert.Equal(t, byte(0x70), id[6]&0xf0, "version 7 at %d", e.Position)
		assert.Equal(t, byte(0x80), id[8]&0xc0, "variant at %d", e.Position)
		ms := int64(binary.BigEndian.Uint64(id[0:8]) >> 16)
		assert.Equal(t, e.Timestamp.UnixMilli(), ms, "the commit time at %d", e.Position)
		assert.True(t, ms >= start && ms <= end, "at %d", e.Position)
		prev, dup := seen[id]
		require.False(t, dup, "positions %d and %d share ID %v", prev, e.Position, id)
		seen[id] = e.Position
	}
	byPosition := func(t *testing.T, evs []eventstore.RecordedEvent) {
		t.Helper()
		for _, e := range evs {
			require.Equal(t, all[e.Position].ID, e.ID, "position %d", e.Position)
		}
	}
	for _, stream := range []string{"s0", "s1", "s2", "mixed"} {
		evs, err := s.ReadStream(ctx, stream, 0, 0)
		require.NoError(t, err)
		byPosition(t, evs)
	}
	var walked []eventstore.RecordedEvent
	for e, err := range s.All(ctx, 0, eventstore.BorrowData()) {
		require.NoError(t, err)
		walked = append(walked, e)
	}
	require.Len(t, walked, len(all))
	byPosition(t, walked)
	sctx, cancel := context.WithCancel(ctx)
	var subscribed []eventstore.RecordedEvent
	for e, err := range s.Subscribe(sctx, 0) {
		if len(subscribed) == len(all) {
			require.ErrorIs(t, err, context.Canceled)
			break
		}
		require.NoError(t, err)
		if subscribed = append(subscribed, e); len(subscribed) == len(all) {
			cancel()
		}
	}
	cancel()
	byPosition(t, subscribed)
	// A retry by an assigned ID, or by the given one in a frame beside
	// assigned ones, is found before a reopen too.
	for _, e := range []eventstore.RecordedEvent{all[40], all[61]} {
		res, err := s.Append(ctx, e.Stream, eventstore.Any, eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data})
		require.NoError(t, err)
		assert.Equal(t, e.Position, res.Position, "a retry of position %d", e.Position)
	}
	assert.Equal(t, uint64(63), s.Stats().Events)
	require.NoError(t, s.Close())

	for _, indexed := range []bool{true, false} {
		if !indexed {
			removeIndexFiles(t, dir)
		}
		s := reopen(t, dir, opts)
		again, err := s.ReadAll(ctx, 0, 0)
		require.NoError(t, err)
		assert.Equal(t, all, again, "indexed %v", indexed)
		// The ID a retry gives is found through the position it was
		// derived from, as the index holds no fingerprint of it, with index
		// files or without.
		e := all[40]
		res, err := s.Append(ctx, e.Stream, eventstore.Any, eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data})
		require.NoError(t, err)
		assert.Equal(t, e.Position, res.Position, "a retry, indexed %v", indexed)
		assert.Equal(t, uint64(63), s.Stats().Events)
		require.NoError(t, s.Close())
	}

	// Segments created after a reopen hold the same key: the IDs they
	// assign carry the same ten bits of it.
	s = reopen(t, dir, opts)
	defer s.Close()
	segments := s.Stats().Segments
	for i := 0; s.Stats().Segments < segments+2; i++ {
		_, err := s.Append(ctx, "later", eventstore.Any, event("t", strings.Repeat("y", 200)))
		require.NoError(t, err)
	}
	later, err := s.ReadStream(ctx, "later", 0, 0)
	require.NoError(t, err)
	keyBits := func(id eventstore.EventID) uint16 { return binary.BigEndian.Uint16(id[8:10]) >> 4 & 0x3ff }
	for _, e := range later {
		require.Equal(t, keyBits(all[0].ID), keyBits(e.ID), "position %d", e.Position)
		_, dup := seen[e.ID]
		require.False(t, dup, "position %d", e.Position)
	}

	// An ID that differs from an assigned one only in its time bits points
	// at the same position, but is not that event's: it is appended.
	e := all[40]
	forged := e.ID
	forged[5]++
	before := s.Stats().Events
	res, err := s.Append(ctx, e.Stream, eventstore.Any, eventstore.EventData{ID: forged, Type: e.Type, Data: e.Data})
	require.NoError(t, err)
	assert.Equal(t, before, res.Position, "a new event")
}

func TestStore_Append_IdempotentRetry(t *testing.T) {
	ctx := context.Background()
	withIDs := func(n int) []eventstore.EventData {
		evs := make([]eventstore.EventData, n)
		for i := range evs {
			evs[i] = eventstore.EventData{ID: eventstore.NewEventID(), Type: "t", Data: []byte(strconv.Itoa(i))}
		}
		return evs
	}
	fill := func(t *testing.T, s *eventstore.Store, stream string, n int) {
		for i := 0; i < n; i += 100 {
			_, err := s.Append(ctx, stream, eventstore.Any, withIDs(min(100, n-i))...)
			require.NoError(t, err)
		}
	}

	t.Run("NoStream however old", func(t *testing.T) {
		s, _ := newStore(t, nil)
		orig := withIDs(3)
		first, err := s.Append(ctx, "s", eventstore.NoStream, orig...)
		require.NoError(t, err)
		fill(t, s, "s", 2*eventstore.IdempotencyWindow)
		again, err := s.Append(ctx, "s", eventstore.NoStream, orig...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		assert.Equal(t, uint64(3+2*eventstore.IdempotencyWindow), s.Stats().Events, "nothing written")
	})
	t.Run("Exact however old, after reopen", func(t *testing.T) {
		s, dir := newStore(t, nil)
		fill(t, s, "s", 5)
		orig := withIDs(2)
		first, err := s.Append(ctx, "s", eventstore.Exact(4), orig...)
		require.NoError(t, err)
		fill(t, s, "s", 1500)
		require.NoError(t, s.Close())
		s = reopen(t, dir, nil)
		again, err := s.Append(ctx, "s", eventstore.Exact(4), orig...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
	})
	t.Run("Any within the window, after reopen", func(t *testing.T) {
		s, dir := newStore(t, nil)
		fill(t, s, "s", 50)
		orig := withIDs(2)
		first, err := s.Append(ctx, "s", eventstore.Any, orig...)
		require.NoError(t, err)
		fill(t, s, "s", eventstore.IdempotencyWindow-10)
		fill(t, s, "elsewhere", 300)
		require.NoError(t, s.Close())
		s = reopen(t, dir, nil)
		events := s.Stats().Events
		again, err := s.Append(ctx, "s", eventstore.Any, orig...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		again, err = s.Append(ctx, "s", eventstore.StreamExists, orig...)
		require.NoError(t, err)
		assert.Equal(t, first, again)
		assert.Equal(t, events, s.Stats().Events, "nothing written")
	})
	t.Run("partial match is a conflict", func(t *testing.T) {
		s, _ := newStore(t, nil)
		orig := withIDs(3)
		_, err := s.Append(ctx, "s", eventstore.NoStream, orig...)
		require.NoError(t, err)
		changed := append([]eventstore.EventData{}, orig...)
		changed[2].ID = eventstore.NewEventID()
		_, err = s.Append(ctx, "s", eventstore.NoStream, changed...)
		require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
		_, err = s.Append(ctx, "s", eventstore.Any, changed...)
		require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
		longer := append(append([]eventstore.EventData{}, orig...), withIDs(1)...)
		_, err = s.Append(ctx, "s", eventstore.Any, longer...)
		require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
		assert.Equal(t, uint64(3), s.Stats().Events)
	})
	t.Run("concurrent retries of one append", func(t *testing.T) {
		s, _ := newStore(t, nil)
		orig := withIDs(2)
		var wg sync.WaitGroup
		results := make([]eventstore.AppendResult, 20)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Append(ctx, "s", eventstore.Any, orig...)
				assert.NoError(t, err)
				results[i] = res
			}()
		}
		wg.Wait()
		for _, r := range results {
			assert.Equal(t, results[0], r)
		}
		assert.Equal(t, uint64(2), s.Stats().Events, "written once")
	})
}

// Prototype AC-2 and AC-5: sequential appends get positions 0, 1, 2, ... and
// both ReadAll and ReadStream reflect them.
func TestStore_Reads_RangesAndDirections(t *testing.T) {
	s, _ := newStore(t, &eventstore.Options{SegmentSize: 1024})
	ctx := context.Background()
	for i := range 60 {
		_, err := s.Append(ctx, fmt.Sprint("s", i%3), eventstore.Any, event("t", strconv.Itoa(i)))
		require.NoError(t, err)
	}
	require.Greater(t, s.Stats().Segments, 1, "reads must cross segments")
	positions := func(evs []eventstore.RecordedEvent) []uint64 {
		var ps []uint64
		for _, e := range evs {
			ps = append(ps, e.Position)
		}
		return ps
	}
	tests := []struct {
		name string
		read func() ([]eventstore.RecordedEvent, error)
		want []uint64
	}{
		{"all from 55", func() ([]eventstore.RecordedEvent, error) { return s.ReadAll(ctx, 55, 0) }, []uint64{55, 56, 57, 58, 59}},
		{"all limit", func() ([]eventstore.RecordedEvent, error) { return s.ReadAll(ctx, 10, 3) }, []uint64{10, 11, 12}},
		{"all past end", func() ([]eventstore.RecordedEvent, error) { return s.ReadAll(ctx, 60, 0) }, nil},
		{"all backward from end", func() ([]eventstore.RecordedEvent, error) { return s.ReadAllBackward(ctx, math.MaxUint64, 3) }, []uint64{59, 58, 57}},
		{"all backward from 2", func() ([]eventstore.RecordedEvent, error) { return s.ReadAllBackward(ctx, 2, 0) }, []uint64{2, 1, 0}},
		{"stream from 18", func() ([]eventstore.RecordedEvent, error) { return s.ReadStream(ctx, "s1", 18, 0) }, []uint64{55, 58}},
		{"stream limit", func() ([]eventstore.RecordedEvent, error) { return s.ReadStream(ctx, "s2", 0, 2) }, []uint64{2, 5}},
		{"stream backward", func() ([]eventstore.RecordedEvent, error) { return s.ReadStreamBackward(ctx, "s0", math.MaxUint64, 2) }, []uint64{57, 54}},
		{"stream backward from 1", func() ([]eventstore.RecordedEvent, error) { return s.ReadStreamBackward(ctx, "s0", 1, 5) }, []uint64{3, 0}},
		{"missing stream", func() ([]eventstore.RecordedEvent, error) { return s.ReadStream(ctx, "nope", 0, 0) }, nil},
		{"missing stream backward", func() ([]eventstore.RecordedEvent, error) {
			return s.ReadStreamBackward(ctx, "nope", math.MaxUint64, 0)
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.read()
			require.NoError(t, err)
			assert.Equal(t, tc.want, positions(evs))
			for _, e := range evs {
				assert.Equal(t, strconv.Itoa(int(e.Position)), string(e.Data))
			}
		})
	}
	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	assert.Len(t, all, 60)
}

func TestStore_Reads_ReturnOwnedBytes(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	data := []byte("original")
	_, err := s.Append(ctx, "s", eventstore.Any, eventstore.EventData{Type: "t", Data: data, Metadata: []byte("meta")})
	require.NoError(t, err)
	copy(data, "CHANGED!")
	evs, err := s.ReadStream(ctx, "s", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "original", string(evs[0].Data))
	evs[0].Data[0] = 'X'
	evs[0].Data = append(evs[0].Data, "-appended"...)
	assert.Equal(t, "meta", string(evs[0].Metadata), "appending to Data does not touch Metadata")
	again, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, "original", string(again[0].Data))
}

func TestStore_SegmentRollOver_LargeEventAndReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := &eventstore.Options{SegmentSize: 2048}
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	big := bytes.Repeat([]byte("B"), 10000) // larger than a segment: gets one of its own
	for i := range 40 {
		e := event("t", strconv.Itoa(i)+strings.Repeat(".", 200))
		if i == 20 {
			e.Data = big
		}
		_, err := s.Append(ctx, "s", after(i-1), e)
		require.NoError(t, err)
	}
	segments := s.Stats().Segments
	require.Greater(t, segments, 5)
	require.NoError(t, s.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	assert.Len(t, files, segments)

	s = reopen(t, dir, opts)
	evs, err := s.ReadStream(ctx, "s", 0, 0)
	require.NoError(t, err)
	require.Len(t, evs, 40)
	assert.Equal(t, big, evs[20].Data)
	assert.Equal(t, "39"+strings.Repeat(".", 200), string(evs[39].Data))
	_, err = s.Append(ctx, "s", eventstore.Exact(39), event("t", "40"))
	require.NoError(t, err)
}

// after returns the expected version of a stream whose last version is v,
// NoStream for -1.
func after(v int) eventstore.ExpectedVersion {
	if v < 0 {
		return eventstore.NoStream
	}
	return eventstore.Exact(uint64(v))
}

func TestStore_SyncModes_RoundTrip(t *testing.T) {
	for _, mode := range []eventstore.SyncMode{eventstore.SyncAlways, eventstore.SyncInterval, eventstore.SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := &eventstore.Options{Sync: mode, SegmentSize: 4096}
			s, err := eventstore.Open(dir, opts)
			require.NoError(t, err)
			for i := range 100 {
				_, err := s.Append(context.Background(), "s", eventstore.Any, event("t", strconv.Itoa(i)))
				require.NoError(t, err)
			}
			require.NoError(t, s.Close())
			s = reopen(t, dir, opts)
			evs, err := s.ReadStream(context.Background(), "s", 0, 0)
			require.NoError(t, err)
			assert.Len(t, evs, 100)
		})
	}
}

func TestStore_Open_LockedInProcess(t *testing.T) {
	s, dir := newStore(t, nil)
	_, err := eventstore.Open(dir, nil)
	require.ErrorIs(t, err, eventstore.ErrLocked)
	require.NoError(t, s.Close())
	s2, err := eventstore.Open(dir, nil)
	require.NoError(t, err, "Close frees the lock")
	require.NoError(t, s2.Close())
}

func TestStore_Open_LockedAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	child, lines := startChild(t, "hold", dir)
	require.Equal(t, "opened", <-lines)

	_, err := eventstore.Open(dir, nil)
	require.ErrorIs(t, err, eventstore.ErrLocked, "another process holds it")

	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	s, err := eventstore.Open(dir, nil)
	require.NoError(t, err, "SIGKILL frees the lock")
	require.NoError(t, s.Close())
}

// segmentFile returns the path of the only segment file in dir.
func segmentFile(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	return files[0]
}

// framesSize is how much of a segment its frames take, also while the
// store is open and the space after them is allocated ahead: a frame of a
// version-2 segment ends in a non-zero end mark, and the space reads as
// zeros.
func framesSize(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return int64(len(bytes.TrimRight(b, "\x00")))
}

// writeLog writes n single-event appends, the last of dataLen random bytes
// (or zero bytes, with zeros), and returns the directory, the segment's
// bytes and the last frame's offset.
func writeLog(t *testing.T, n, dataLen int, zeros bool) (string, []byte, int64) {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(dir, nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(dataLen)))
	for i := range n {
		data := []byte(fmt.Sprintf("event-%d", i))
		if i == n-1 {
			data = make([]byte, dataLen)
			for k := range data {
				if !zeros {
					data[k] = byte(rng.IntN(255) + 1)
				}
			}
		}
		_, err := s.Append(context.Background(), "s", eventstore.Any, eventstore.EventData{Type: "t", Data: data})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)
	b, err := os.ReadFile(segmentFile(t, dir))
	require.NoError(t, err)
	// Close cut the segment to its frames; the last one ends the file.
	lastStart := int64(record.SegmentHeaderSize)
	for {
		h, err := fileLayout(t, b).DecodeHeader(b[lastStart:])
		require.NoError(t, err)
		if lastStart+h.FrameSize() == int64(len(b)) {
			return dir, b, lastStart
		}
		lastStart += h.FrameSize()
	}
}

// fileLayout returns the header at the start of a segment file's bytes b,
// which decodes the headers of its frames.
func fileLayout(t testing.TB, b []byte) record.SegmentHeader {
	t.Helper()
	h, err := record.DecodeSegmentHeader(b)
	require.NoError(t, err)
	return h
}

// removeIndexFiles deletes the index files Close wrote, so that the next
// Open reads and checks every frame: the recovery path under test.
func removeIndexFiles(t *testing.T, dir string) {
	t.Helper()
	idx, err := filepath.Glob(filepath.Join(dir, "*.idx"))
	require.NoError(t, err)
	for _, p := range idx {
		require.NoError(t, os.Remove(p))
	}
}

func TestStore_Open_TornTailAtEveryOffset(t *testing.T) {
	for _, dataLen := range []int{1, 700} {
		t.Run(fmt.Sprintf("data %d", dataLen), func(t *testing.T) {
			const n = 4
			_, full, last := writeLog(t, n, dataLen, false)
			work := t.TempDir()
			seg := filepath.Join(work, "00000000000000000000.seg")
			for cut := last; cut < int64(len(full)); cut++ {
				require.NoError(t, os.WriteFile(seg, full[:cut], 0o644))
				s, err := eventstore.Open(work, nil)
				require.NoError(t, err, "cut at %d", cut)
				st := s.Stats()
				assert.Equal(t, uint64(n-1), st.Events, "cut at %d", cut)
				assert.Equal(t, cut-last, st.TornBytes, "cut at %d", cut)
				res, err := s.Append(context.Background(), "s", eventstore.Exact(n-2), event("t", "after"))
				require.NoError(t, err, "cut at %d", cut)
				assert.Equal(t, uint64(n-1), res.Position)
				require.NoError(t, s.Close())
			}
		})
	}
}

func TestStore_Open_ZeroedSectorInLastFrameIsTorn(t *testing.T) {
	dir, full, last := writeLog(t, 3, 3000, false)
	seg := segmentFile(t, dir)
	damaged := bytes.Clone(full)
	// The sector after the one holding the frame header never reached disk.
	sector := (last/512 + 2) * 512
	clear(damaged[sector : sector+512])
	require.NoError(t, os.WriteFile(seg, damaged, 0o644))
	s := reopen(t, dir, nil)
	assert.Equal(t, uint64(2), s.Stats().Events)
	assert.Equal(t, int64(len(full))-last, s.Stats().TornBytes)
}

func TestStore_Open_CorruptionIsReportedNotRepaired(t *testing.T) {
	const n = 5
	dir, full, last := writeLog(t, n, 300, false)
	seg := segmentFile(t, dir)
	// Frame offsets: the segment header is 24 bytes, each small frame follows.
	s := reopen(t, dir, nil)
	var offsets []int64
	off := int64(24)
	for i := range n - 1 {
		offsets = append(offsets, off)
		evs, err := s.ReadAll(context.Background(), uint64(i), 1)
		require.NoError(t, err)
		// a compact frame: its header, flags, timestamp, first version,
		// stream (its name in the first frame, its number, 0, in the
		// others), tag and type (no ID: the store assigned it; no
		// metadata), data (no count, no length: one event), end mark
		stream := 1
		if i == 0 {
			stream = 2
		}
		off += int64(record.CompactHeaderSize + 1 + 8 + 1 + stream + 2 + len(evs[0].Data) + 1)
	}
	require.Equal(t, last, off, "frame layout as documented")
	offsets = append(offsets, last)
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir)

	tests := []struct {
		name   string
		frame  int
		offset int64 // within the frame
	}{
		{"middle frame length", 2, 0},
		{"middle frame payload crc", 2, 5},
		{"middle frame position", 2, 9},
		{"middle frame delta", 2, 17},
		{"middle frame payload", 2, 40},
		{"first frame payload", 0, 30},
		{"last frame payload", n - 1, 100},
		{"last frame header crc", n - 1, 21},
		{"last frame length", n - 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			damaged := bytes.Clone(full)
			damaged[offsets[tc.frame]+tc.offset] ^= 0x10
			require.NoError(t, os.WriteFile(seg, damaged, 0o644))
			_, err := eventstore.Open(dir, nil)
			require.ErrorIs(t, err, eventstore.ErrCorrupt)
			var cerr *eventstore.CorruptionError
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, seg, cerr.Path)
			assert.Equal(t, offsets[tc.frame], cerr.Offset)
			after, rerr := os.ReadFile(seg)
			require.NoError(t, rerr)
			assert.Equal(t, damaged, after, "nothing is truncated")
		})
	}
}

func TestStore_Open_CorruptSegmentHeader(t *testing.T) {
	dir, full, _ := writeLog(t, 3, 10, false)
	seg := segmentFile(t, dir)
	damaged := bytes.Clone(full)
	damaged[9] ^= 1 // the base position
	require.NoError(t, os.WriteFile(seg, damaged, 0o644))
	_, err := eventstore.Open(dir, nil)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
}

// The crash test runs a child process (this test binary, re-executed) that
// appends from 8 goroutines and prints each acknowledged append; the parent
// kills it with SIGKILL at a random moment and checks the store.

const childEnv = "EVENTSTORE_TEST_CHILD"

// startChild re-executes the test binary in child mode and returns it with
// a channel of the lines it prints.
func startChild(t *testing.T, mode, dir string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode+":"+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 1<<16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, lines
}

// crashData is the payload of version v of stream: its size varies from 1
// byte to about 3 KiB so that kills land inside frames of every size.
func crashData(stream string, v uint64) []byte {
	seed := fmt.Sprintf("%s/%d;", stream, v)
	return bytes.Repeat([]byte(seed), int(v*7919%3000)/len(seed)+1)
}

// TestChildProcess is the child's body; it runs only when re-executed by a
// test in this file.
func TestChildProcess(t *testing.T) {
	mode, dir, ok := strings.Cut(os.Getenv(childEnv), ":")
	if !ok {
		t.Skip("runs only as a child process")
	}
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: crashSegmentSize})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fmt.Println("opened")
	if mode == "hold" {
		select {} // until killed
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprint("w", g)
			ctx := context.Background()
			evs, err := s.ReadStreamBackward(ctx, stream, math.MaxUint64, 1)
			if err != nil {
				panic(err)
			}
			next := uint64(0)
			expected := eventstore.NoStream
			if len(evs) == 1 {
				next = evs[0].StreamVersion + 1
				expected = eventstore.Exact(evs[0].StreamVersion)
			}
			for ; ; next++ {
				id := eventstore.NewEventID()
				res, err := s.Append(ctx, stream, expected, eventstore.EventData{ID: id, Type: "crash", Data: crashData(stream, next)})
				if err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Printf("ack %s %d %d %s\n", stream, res.StreamVersion, res.Position, id)
				mu.Unlock()
				expected = eventstore.Exact(next)
			}
		}()
	}
	wg.Wait()
}

// crashSegmentSize is small, so that kills often land near a roll-over.
const crashSegmentSize = 16 << 10

// TestStore_Crash_SIGKILLLosesNothingAcknowledged kills the child at a
// random moment, 1,000 times (20,000 under make stress), in directories
// that each live for 25 rounds.
func TestStore_Crash_SIGKILLLosesNothingAcknowledged(t *testing.T) {
	rounds := 1000
	if os.Getenv("EVENTSTORE_STRESS") != "" {
		rounds = 20000
	}
	if testing.Short() {
		rounds = 25
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var totalAcked, atRollOver int
	deadline := time.Now().Add(24 * time.Hour)
	if d, err := time.ParseDuration(os.Getenv("EVENTSTORE_STRESS_TIME")); err == nil {
		deadline = time.Now().Add(d)
	}
	for start := 0; start < rounds; start += 25 {
		if time.Now().After(deadline) {
			t.Logf("time bound reached after %d of %d kills", start, rounds)
			rounds = start
			break
		}
		acked, rolls := crashRounds(t, rng, t.TempDir(), min(25, rounds-start))
		totalAcked += acked
		atRollOver += rolls
	}
	t.Logf("%d kills, %d acknowledged appends checked, %d kills within the first two frames of a segment",
		rounds, totalAcked, atRollOver)
	if rounds >= 500 {
		assert.Positive(t, atRollOver, "some kills should land at a segment roll-over")
	}
}

type crashAck struct {
	stream   string
	version  uint64
	position uint64
	id       string
}

// crashRounds kills a child appending to dir n times and checks the store
// after each kill. It returns the acknowledged appends seen and how many
// kills left the last segment with at most two frames.
func crashRounds(t *testing.T, rng *rand.Rand, dir string, n int) (int, int) {
	var acked []crashAck
	rolls := 0
	for round := range n {
		child, lines := startChild(t, "append", dir)
		require.Equal(t, "opened", <-lines, "round %d", round)
		killAfter := 1 + rng.IntN(60)
		for range killAfter {
			line, ok := <-lines
			require.True(t, ok, "child ended early")
			a, err := parseAck(line)
			require.NoError(t, err, line)
			acked = append(acked, a)
		}
		require.NoError(t, child.Process.Signal(syscall.SIGKILL))
		_ = child.Wait()
		// Acknowledgements printed before the kill landed count too.
		for line := range lines {
			if a, err := parseAck(line); err == nil {
				acked = append(acked, a)
			}
		}

		s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: crashSegmentSize})
		require.NoError(t, err, "round %d", round)
		all, err := s.ReadAll(context.Background(), 0, 0)
		require.NoError(t, err)
		versions := make(map[string]uint64)
		for i, e := range all {
			require.Equal(t, uint64(i), e.Position, "positions are gapless")
			require.Equal(t, versions[e.Stream], e.StreamVersion, "versions are contiguous")
			versions[e.Stream]++
			require.Equal(t, crashData(e.Stream, e.StreamVersion), e.Data, "position %d", i)
		}
		for _, a := range acked {
			require.Less(t, a.position, uint64(len(all)), "acknowledged position %d lost in round %d", a.position, round)
			e := all[a.position]
			require.Equal(t, a.stream, e.Stream)
			require.Equal(t, a.version, e.StreamVersion)
			require.Equal(t, a.id, e.ID.String())
		}
		if last := lastSegmentFrames(t, dir); last <= 2 {
			rolls++
		}
		require.NoError(t, s.Close())
	}
	return len(acked), rolls
}

func parseAck(line string) (crashAck, error) {
	var a crashAck
	_, err := fmt.Sscanf(line, "ack %s %d %d %s", &a.stream, &a.version, &a.position, &a.id)
	return a, err
}

// lastSegmentFrames counts the frames in the newest segment file of dir.
func lastSegmentFrames(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	b, err := os.ReadFile(files[len(files)-1])
	require.NoError(t, err)
	frames := 0
	// Past the frames, the open store's segment reads as zeros.
	lay := fileLayout(t, b)
	for off := 24; off+lay.HeaderSize() <= len(b) && binary.LittleEndian.Uint32(b[off:]) != 0; frames++ {
		off += int(lay.HeaderOf(b[off:]).FrameSize())
	}
	return frames
}

func TestStore_IndexMemory_StaysSmall(t *testing.T) {
	const n = 200_000
	s, _ := newStore(t, &eventstore.Options{Sync: eventstore.SyncNone})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	appendMany(t, s, n, 200, 64)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perEvent := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per event: %.1f bytes", perEvent)
	assert.Less(t, perEvent, 64.0, "the index holds offsets, not payloads")
	runtime.KeepAlive(s)
}

// appendMany makes n single-event appends of size bytes from callers
// goroutines; the k-th append goes to stream k%1000.
func appendMany(t testing.TB, s *eventstore.Store, n, size, callers int) {
	t.Helper()
	appendStreams(t, s, n, size, callers, 1000)
}

// appendStreams is appendMany over the given number of streams.
func appendStreams(t testing.TB, s *eventstore.Store, n, size, callers, streams int) {
	t.Helper()
	data := bytes.Repeat([]byte{'x'}, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1) - 1; k < int64(n); k = next.Add(1) - 1 {
				stream := "stream-" + strconv.Itoa(int(k%int64(streams)))
				if _, err := s.Append(context.Background(), stream, eventstore.Any, eventstore.EventData{Type: "Bench", Data: data}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkAppend measures durable single-event appends (SyncAlways) from
// 1, 16 and 256 concurrent callers, with 128-byte and 4 KiB payloads.
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 16, 256} {
		for _, size := range []int{128, 4096} {
			b.Run(fmt.Sprintf("callers=%d/payload=%d", callers, size), func(b *testing.B) {
				s, _ := newStore(b, nil)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				appendMany(b, s, b.N, size, callers)
				elapsed := time.Since(start)
				b.StopTimer()
				st := s.Stats()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(st.Syncs)/float64(b.N), "fsyncs/append")
			})
		}
	}
}

// BenchmarkAppendBatch measures durable Appends of 1, 16 and 128 events
// each, from one caller.
func BenchmarkAppendBatch(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("events=%d", batch), func(b *testing.B) {
			s, _ := newStore(b, nil)
			events := make([]eventstore.EventData, batch)
			for i := range events {
				events[i] = eventstore.EventData{Type: "Bench", Data: bytes.Repeat([]byte{'x'}, 200)}
			}
			b.ReportAllocs()
			b.SetBytes(int64(200 * batch))
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Append(context.Background(), "s", eventstore.Any, events...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchStore is a store of 100,000 200-byte events over 1,000 streams.
func benchStore(b *testing.B) *eventstore.Store {
	b.Helper()
	s, _ := newStore(b, &eventstore.Options{Sync: eventstore.SyncNone})
	appendMany(b, s, 100_000, 200, 64)
	return s
}

// BenchmarkReadAll measures reading the whole log forward in pages of 1,000.
func BenchmarkReadAll(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for b.Loop() {
		for from := uint64(0); ; {
			evs, err := s.ReadAll(context.Background(), from, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			events += len(evs)
			from = evs[len(evs)-1].Position + 1
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAll measures a replay of the whole log through All, with each
// event's bytes copied and with BorrowData.
func BenchmarkAll(b *testing.B) {
	s := benchStore(b)
	for _, bc := range []struct {
		name string
		opts []eventstore.SubscribeOption
	}{{"copy", nil}, {"borrow", []eventstore.SubscribeOption{eventstore.BorrowData()}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			events := 0
			for b.Loop() {
				for _, err := range s.All(context.Background(), 0, bc.opts...) {
					if err != nil {
						b.Fatal(err)
					}
					events++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
}

// BenchmarkReadStream measures reading one stream whole: 100 events among
// 1,000 streams, and 1,000 among 100. Either way the stream's events lie
// far apart in the log, one pread each.
func BenchmarkReadStream(b *testing.B) {
	for _, bc := range []struct {
		name    string
		streams int
	}{{"100_events", 1000}, {"1000_events", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newStore(b, &eventstore.Options{Sync: eventstore.SyncNone})
			appendStreams(b, s, 100_000, 200, 64, bc.streams)
			want := 100_000 / bc.streams
			b.ReportAllocs()
			b.ResetTimer()
			events := 0
			i := 0
			for b.Loop() {
				evs, err := s.ReadStream(context.Background(), "stream-"+strconv.Itoa(i%bc.streams), 0, 0)
				if err != nil || len(evs) != want {
					b.Fatal(len(evs), err)
				}
				events += len(evs)
				i++
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// damagedStore opens a store of three events in stream "s", one per frame,
// and flips a bit in the second frame's payload under the open store. It
// returns the segment's path and the second frame's offset.
func damagedStore(t *testing.T) (*eventstore.Store, string, int64) {
	t.Helper()
	s, dir := newStore(t, nil)
	for i := range 3 {
		_, err := s.Append(context.Background(), "s", eventstore.Any, event("t", fmt.Sprintf("event-%d-payload", i)))
		require.NoError(t, err)
	}
	seg := segmentFile(t, dir)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	// The second frame follows the segment header (24 bytes) and the first
	// frame (a 20-byte header and the payload length it states).
	second := 24 + fileLayout(t, b).HeaderOf(b[24:]).FrameSize()
	at := second + record.CompactHeaderSize + 20 // inside its payload
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{b[at] ^ 0x01}, at) // damage the committed log under the open store
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return s, seg, second
}

// TestStore_Open_IndexedDamageIsFoundOnRead shows what the index files
// trade: after a clean close Open reads no frame an index file lists, so a
// bit flipped in one since is found by the first read that reaches it, not
// by Open; a reopen without the index files finds it at once.
func TestStore_Open_IndexedDamageIsFoundOnRead(t *testing.T) {
	s, seg, second := damagedStore(t)
	dir := filepath.Dir(seg)
	require.NoError(t, s.Close())
	s = reopen(t, dir, nil)
	assert.Equal(t, uint64(3), s.Stats().Events)
	_, err := s.ReadAll(context.Background(), 0, 0)
	var cerr *eventstore.CorruptionError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, seg, cerr.Path)
	assert.Equal(t, second, cerr.Offset)
	require.NoError(t, s.Close())

	removeIndexFiles(t, dir)
	_, err = eventstore.Open(dir, nil)
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, second, cerr.Offset)
}

func TestStore_Read_BadChecksumIsCorruptionNotData(t *testing.T) {
	s, seg, _ := damagedStore(t)
	ctx := context.Background()
	_, err := s.ReadAll(ctx, 0, 0)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	_, err = s.ReadStream(ctx, "s", 1, 1)
	var cerr *eventstore.CorruptionError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, seg, cerr.Path)
	evs, err := s.ReadStream(ctx, "s", 2, 1)
	require.NoError(t, err, "undamaged frames still read")
	assert.Equal(t, "event-2-payload", string(evs[0].Data))
}

func TestStore_Open_EveryBitFlipOfASmallLogIsCorruption(t *testing.T) {
	for _, zeros := range []bool{false, true} {
		t.Run(fmt.Sprintf("zero data %v", zeros), func(t *testing.T) {
			everyBitFlipIsCorruption(t, zeros)
		})
	}
}

// everyBitFlipIsCorruption flips each bit of a three-record log in turn.
// With zero data the events' bytes look like unwritten sectors unless the
// payload masking does its job.
func everyBitFlipIsCorruption(t *testing.T, zeros bool) {
	dir, full, _ := writeLog(t, 3, 600, zeros)
	seg := segmentFile(t, dir)
	for bit := range len(full) * 8 {
		damaged := bytes.Clone(full)
		damaged[bit/8] ^= 1 << (bit % 8)
		require.NoError(t, os.WriteFile(seg, damaged, 0o644))
		s, err := eventstore.Open(dir, nil)
		if err == nil {
			st := s.Stats()
			s.Close()
			t.Fatalf("bit %d (byte %d): opened with %d events, %d torn bytes", bit, bit/8, st.Events, st.TornBytes)
		}
		require.ErrorIs(t, err, eventstore.ErrCorrupt, "bit %d", bit)
		after, err := os.ReadFile(seg)
		require.NoError(t, err)
		require.Equal(t, damaged, after, "bit %d: nothing is truncated", bit)
	}
}

func TestStore_Open_RelaxedSyncTornEarlierWriteIsNotCorruption(t *testing.T) {
	// Under SyncNone, writes are not separated by fsyncs, so a power loss
	// can keep a later write and lose an earlier one's page. That is a torn
	// tail, not corruption: the store must open.
	dir := t.TempDir()
	opts := &eventstore.Options{Sync: eventstore.SyncNone}
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	starts := make([]int64, 3)
	for i := range starts {
		starts[i] = framesSize(t, segmentFile(t, dir))
		_, err := s.Append(context.Background(), "s", eventstore.Any,
			eventstore.EventData{Type: "t", Data: bytes.Repeat([]byte{byte('a' + i)}, 3000)})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	removeIndexFiles(t, dir) // a power loss leaves no index over unsynced frames
	seg := segmentFile(t, dir)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	sector := (starts[1]/512 + 2) * 512 // inside the second write's data
	clear(b[sector : sector+512])
	require.NoError(t, os.WriteFile(seg, b, 0o644))

	s = reopen(t, dir, opts)
	assert.Equal(t, uint64(1), s.Stats().Events, "the torn write and the one after it are dropped")
	assert.Equal(t, int64(len(b))-starts[1], s.Stats().TornBytes)
}

// BenchmarkBaselineFdatasync is what the disk allows one caller: a 250-byte
// write and an fdatasync per operation on a plain file, with no store in
// between. BenchmarkAppend's figures are meant to be read against it.
func BenchmarkBaselineFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	require.NoError(b, err)
	defer f.Close()
	rec := bytes.Repeat([]byte{'x'}, 250)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if _, err := f.WriteAt(rec, off); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		off += int64(len(rec))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestStore_Append_RealENOSPC fills a 1 MiB tmpfs: the kernel's ENOSPC must
// take the same path as an injected one (a sticky *StorageError), and a
// reopen must keep every acknowledged event.
func TestStore_Append_RealENOSPC(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("EVENTSTORE_REQUIRE_PRIVILEGED") != "" {
		skip = t.Fatalf // CI runs as root and must not skip this silently
	}
	if os.Geteuid() != 0 {
		skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		skip("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })

	opts := &eventstore.Options{SegmentSize: 128 << 10}
	s, err := eventstore.Open(dir, opts)
	require.NoError(t, err)
	ctx := context.Background()
	var acked int
	for ; acked < 10_000; acked++ {
		_, err = s.Append(ctx, "fill", eventstore.Any, eventstore.EventData{Type: "t", Data: crashData("fill", uint64(acked))})
		if err != nil {
			break
		}
	}
	require.Error(t, err, "a 1 MiB file system must fill up")
	require.ErrorIs(t, err, eventstore.ErrStorageFailed)
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, err = s.Append(ctx, "fill", eventstore.Any, event("t", "x"))
	require.ErrorIs(t, err, eventstore.ErrStorageFailed, "sticky")
	require.NoError(t, s.Close())

	s = reopen(t, dir, opts)
	evs, err := s.ReadStream(ctx, "fill", 0, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(evs), acked)
	for i := range acked {
		require.Equal(t, crashData("fill", uint64(i)), evs[i].Data, "event %d", i)
	}
	t.Logf("%d appends acknowledged before ENOSPC; %d torn bytes truncated on reopen", acked, s.Stats().TornBytes)
}

// TestStore_Soak_HeapAndGoroutinesFlat runs 8 writers and 16 readers for 60 s
// (10 min under make stress, 5 s with -short). After warm-up, the heap apart
// from the index (which grows by design, about 20 bytes an event) must stay
// within 10 % of its level, the goroutine count must not move, and no call
// may fail.
func TestStore_Soak_HeapAndGoroutinesFlat(t *testing.T) {
	duration := time.Minute
	switch {
	case os.Getenv("EVENTSTORE_STRESS") != "":
		duration = 10 * time.Minute
		if d, err := time.ParseDuration(os.Getenv("EVENTSTORE_STRESS_TIME")); err == nil {
			duration = min(duration, d)
		}
	case testing.Short():
		duration = 5 * time.Second
	}
	s, _ := newStore(t, &eventstore.Options{SegmentSize: 4 << 20})
	ctx := context.Background()
	var pause sync.RWMutex // workers hold it for reading per call and its checks; a measurement takes it
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appends, reads atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte('a' + g)}, 200)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pause.RLock()
				_, err := s.Append(ctx, fmt.Sprintf("soak-%d-%d", g, i%50), eventstore.Any, eventstore.EventData{Type: "Soaked", Data: data})
				pause.RUnlock()
				if !assert.NoError(t, err) {
					return
				}
				appends.Add(1)
			}
		}()
	}
	// read makes one read and checks it, holding pause throughout: a
	// measurement must not count events a reader is still checking. Its
	// results die when it returns.
	read := func(r int, rng *rand.Rand) bool {
		pause.RLock()
		defer pause.RUnlock()
		var evs []eventstore.RecordedEvent
		var err error
		switch n := s.Stats().Events; r % 3 {
		case 0:
			evs, err = s.ReadAll(ctx, rng.Uint64N(n+1), 500)
		case 1:
			evs, err = s.ReadStream(ctx, fmt.Sprintf("soak-%d-%d", rng.IntN(8), rng.IntN(50)), 0, 200)
		case 2:
			evs, err = s.ReadAllBackward(ctx, math.MaxUint64, 300)
		}
		if !assert.NoError(t, err) {
			return false
		}
		for i := 1; i < len(evs); i++ {
			if r%3 == 1 {
				assert.Equal(t, evs[i-1].StreamVersion+1, evs[i].StreamVersion)
			} else {
				assert.Equal(t, absDiff(evs[i-1].Position, evs[i].Position), uint64(1))
			}
		}
		return true
	}
	for r := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !read(r, rng) {
					return
				}
				reads.Add(1)
			}
		}()
	}
	// measure pauses the workers between calls, collects garbage and returns
	// the heap apart from the index, and the goroutine count.
	measure := func() (uint64, int, eventstore.Stats) {
		pause.Lock()
		defer pause.Unlock()
		runtime.GC()
		runtime.GC() // the second clears what sync.Pool's victim cache kept
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		st := s.Stats()
		return m.HeapAlloc - uint64(st.IndexBytes), runtime.NumGoroutine(), st
	}
	time.Sleep(duration / 6)
	warmHeap, warmGoroutines, warm := measure()
	time.Sleep(duration - duration/6)
	endHeap, endGoroutines, end := measure()
	close(stop)
	wg.Wait()

	t.Logf("%v: %d appends, %d reads; heap apart from the index %.1f MiB after warm-up, %.1f MiB at the end; index %.1f MiB for %d events (%.1f B/event)",
		duration, appends.Load(), reads.Load(), float64(warmHeap)/(1<<20), float64(endHeap)/(1<<20),
		float64(end.IndexBytes)/(1<<20), end.Events, float64(end.IndexBytes)/float64(end.Events))
	assert.Greater(t, end.Events, warm.Events, "writers made progress")
	assert.LessOrEqual(t, float64(endHeap), 1.10*float64(warmHeap), "heap apart from the index grew more than 10 %%")
	assert.Equal(t, warmGoroutines, endGoroutines, "goroutine count moved")
	assert.NoError(t, end.Err)
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// FuzzOpen opens a store over arbitrary directory contents: a first segment
// holding data[:split] and, when base is not zero, a second segment starting
// at position base holding the rest. Open must not panic, must allocate no
// more than a small multiple of the bytes on disk, and must either fail or
// give a store whose every event reads back and which takes appends.
func FuzzOpen(f *testing.F) {
	for _, seed := range fuzzOpenSeeds(f) {
		f.Add(seed.data, seed.split, seed.base)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint32, base uint64) {
		dir := t.TempDir()
		split = min(split, uint32(len(data)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000000.seg"), data[:split], 0o644))
		if base != 0 {
			name := fmt.Sprintf("%020d.seg", base)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), data[split:], 0o644))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 4096})
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		require.LessOrEqual(t, allocated, uint64(8*len(data)+4<<20), "Open allocated %d bytes for %d bytes on disk", allocated, len(data))
		if err != nil {
			return
		}
		defer s.Close()
		all, err := s.ReadAll(context.Background(), 0, 0)
		require.NoError(t, err, "a store that opened reads back whole")
		require.Len(t, all, int(s.Stats().Events))
		_, err = s.Append(context.Background(), "fuzz", eventstore.Any, event("t", "after"))
		require.NoError(t, err)
	})
}

type fuzzOpenSeed struct {
	data  []byte
	split uint32
	base  uint64
}

// fuzzOpenSeeds builds valid one- and two-segment logs, and cut and damaged
// copies of them.
func fuzzOpenSeeds(f *testing.F) []fuzzOpenSeed {
	dir := f.TempDir()
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 600})
	require.NoError(f, err)
	for i := range 12 {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%3), eventstore.Any,
			event("t", strings.Repeat("x", i*20)), event("u", strconv.Itoa(i)))
		require.NoError(f, err)
	}
	require.NoError(f, s.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(f, err)
	require.GreaterOrEqual(f, len(files), 2)
	first, err := os.ReadFile(files[0])
	require.NoError(f, err)
	second, err := os.ReadFile(files[1])
	require.NoError(f, err)
	base, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(files[1]), ".seg"), 10, 64)
	require.NoError(f, err)
	both := append(bytes.Clone(first), second...)
	seeds := []fuzzOpenSeed{
		{first, uint32(len(first)), 0},
		{both, uint32(len(first)), base},
		{both[:len(both)-7], uint32(len(first)), base},
		{first[:30], 30, 0},
		{nil, 0, 0},
	}
	flipped := bytes.Clone(first)
	flipped[40] ^= 0x20
	seeds = append(seeds, fuzzOpenSeed{flipped, uint32(len(flipped)), 0})
	return seeds
}

// TestStore_Append_RacingClose appends from 50 goroutines while Close runs:
// each Append either succeeds or returns ErrClosed, and the reopened log
// holds exactly the ones that succeeded.
func TestStore_Append_RacingClose(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		s, err := eventstore.Open(dir, nil)
		require.NoError(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		succeeded := map[eventstore.EventID]bool{}
		start := make(chan struct{})
		for g := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range 5 {
					id := eventstore.NewEventID()
					_, err := s.Append(context.Background(), fmt.Sprint("s", g), eventstore.Any,
						eventstore.EventData{ID: id, Type: "t", Data: []byte(fmt.Sprint(g, "/", i))})
					if err != nil {
						assert.ErrorIs(t, err, eventstore.ErrClosed, "round %d", round)
						return
					}
					mu.Lock()
					succeeded[id] = true
					mu.Unlock()
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(round) * 100 * time.Microsecond)
		require.NoError(t, s.Close())
		wg.Wait()

		s = reopen(t, dir, nil)
		all, err := s.ReadAll(context.Background(), 0, 0)
		require.NoError(t, err)
		require.Len(t, all, len(succeeded), "round %d: the log holds exactly the acknowledged appends", round)
		for _, e := range all {
			require.True(t, succeeded[e.ID], "round %d: unacknowledged event at %d", round, e.Position)
		}
		require.NoError(t, s.Close())
	}
}

// ExampleStore_Subscribe is the README's projection: a running total kept
// with its checkpoint, so that a restart resumes exactly after the last
// event it applied. Here the "transaction" is one variable; a real read
// model writes both in one database transaction, or one file replaced
// atomically.
func ExampleStore_Subscribe() {
	dir, _ := os.MkdirTemp("", "eventstore-example")
	defer os.RemoveAll(dir)
	store, _ := eventstore.Open(dir, nil)
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, amount := range []string{"5", "7", "30"} {
		_, _ = store.Append(ctx, "account-1", eventstore.Any, eventstore.EventData{Type: "Deposited", Data: []byte(amount)})
	}

	type projection struct {
		Total      int
		Checkpoint uint64 // the position to resume from
	}
	var saved projection // load it from where the read model lives
	for ev, err := range store.Subscribe(ctx, saved.Checkpoint,
		eventstore.EventTypes("Deposited"),
		eventstore.OnCaughtUp(func(uint64) { cancel() })) { // stop at the head, for the example
		if err != nil {
			break // context.Canceled here; ErrClosed, a *StorageError or a *CorruptionError in general
		}
		amount, _ := strconv.Atoi(string(ev.Data))
		saved = projection{Total: saved.Total + amount, Checkpoint: ev.Position + 1} // one transaction
	}
	fmt.Println(saved.Total, saved.Checkpoint)
	// Output: 42 3
}

// subscribed is what a subscription delivered, in order, and how it ended.
type subscribed struct {
	positions []uint64
	ids       []eventstore.EventID
	err       error // the first error yielded
	errs      int   // how many were yielded: never more than one
}

// consume runs seq until it yields an error, its loop body returns false, or
// it ends, and records what it saw.
func consume(seq iter.Seq2[eventstore.RecordedEvent, error], body func(ev eventstore.RecordedEvent) bool) subscribed {
	var got subscribed
	for ev, err := range seq {
		if err != nil {
			if got.errs++; got.errs == 1 {
				got.err = err
			} else {
				got.err = fmt.Errorf("error yielded %d times, the last: %v; the first: %w", got.errs, err, got.err)
			}
			continue // the sequence must end by itself after an error
		}
		if got.errs > 0 {
			got.err = fmt.Errorf("event %d yielded after the error: %w", ev.Position, got.err)
		}
		got.positions = append(got.positions, ev.Position)
		got.ids = append(got.ids, ev.ID)
		if body != nil && !body(ev) {
			break
		}
	}
	return got
}

// requireSameEvents checks that a subscription delivered exactly want, in
// order, each once.
func requireSameEvents(t *testing.T, want []eventstore.RecordedEvent, got subscribed, what string) {
	t.Helper()
	require.LessOrEqual(t, got.errs, 1, "%s: an error ends the sequence", what)
	require.Len(t, got.positions, len(want), what)
	for i := range want {
		if want[i].Position != got.positions[i] || want[i].ID != got.ids[i] {
			require.Failf(t, "wrong event", "%s: event %d is position %d (%v), want %d (%v)",
				what, i, got.positions[i], got.ids[i], want[i].Position, want[i].ID)
		}
	}
}

// stressN returns n, or big under make stress.
func stressN(n, big int) int {
	if os.Getenv("EVENTSTORE_STRESS") != "" {
		return big
	}
	return n
}

// seedFor returns a random seed, or EVENTSTORE_TEST_SEED's, and logs it.
func seedFor(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EVENTSTORE_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	t.Logf("seed %d (EVENTSTORE_TEST_SEED replays it)", seed)
	return seed
}

// TestStore_Subscribe_ConcurrentWritersExactlyOnce starts 100 subscriptions,
// a fifth of them to single streams, at random positions and times while
// four writers append, and checks each against the final log: every event
// from its start, once, in order, whether it was read from the past or
// delivered live.
func TestStore_Subscribe_ConcurrentWritersExactlyOnce(t *testing.T) {
	appends := stressN(2_500, 25_000) // per writer, of 1 to 3 events
	if race.Enabled {
		appends = stressN(1_000, 25_000)
	}
	const subscribers, writers, streams = 100, 4, 50
	s, _ := newStore(t, &eventstore.Options{SegmentSize: 256 << 10})
	rng := rand.New(rand.NewPCG(seedFor(t), 0))
	ctx := context.Background()

	var wg sync.WaitGroup
	for range writers {
		r := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range appends {
				events := make([]eventstore.EventData, 1+r.IntN(3))
				for i := range events {
					events[i] = event("T", strings.Repeat("d", r.IntN(300)))
				}
				if _, err := s.Append(ctx, fmt.Sprintf("s-%d", r.IntN(streams)), eventstore.Any, events...); !assert.NoError(t, err) {
					return
				}
			}
		}()
	}

	// Every subscription stops at the first Stop event it sees: in the log,
	// the first one appended once the writers are done; in a stream, its own.
	untilStop := func(ev eventstore.RecordedEvent) bool { return ev.Type != "Stop" }
	type sub struct {
		stream string // "" for the whole log
		from   uint64
		got    subscribed
	}
	subs := make([]*sub, subscribers)
	var swg sync.WaitGroup
	for i := range subs {
		time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
		sb := &sub{}
		subs[i] = sb
		head := s.Stats().Events
		if i%5 == 4 {
			sb.stream = fmt.Sprintf("s-%d", rng.IntN(streams))
			last, err := s.ReadStreamBackward(ctx, sb.stream, math.MaxUint64, 1)
			require.NoError(t, err)
			head = 0
			if len(last) > 0 {
				head = last[0].StreamVersion + 1
			}
		}
		sb.from = rng.Uint64N(head + 1)
		swg.Add(1)
		go func() {
			defer swg.Done()
			if sb.stream == "" {
				sb.got = consume(s.Subscribe(ctx, sb.from), untilStop)
			} else {
				sb.got = consume(s.SubscribeStream(ctx, sb.stream, sb.from), untilStop)
			}
		}()
	}
	wg.Wait()
	written := s.Stats().Events
	for i := range streams {
		_, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.Any, event("Stop", ""))
		require.NoError(t, err)
	}
	swg.Wait()

	all, err := s.ReadAll(ctx, 0, int(written)+1)
	require.NoError(t, err)
	for i := range all {
		require.Equal(t, uint64(i), all[i].Position)
	}
	for i, sb := range subs {
		require.NoError(t, sb.got.err)
		if sb.stream == "" {
			for k, p := range sb.got.positions {
				require.Equal(t, sb.from+uint64(k), p, "subscription %d from %d: positions run on without a gap", i, sb.from)
			}
			requireSameEvents(t, all[sb.from:], sb.got, fmt.Sprintf("subscription %d from %d", i, sb.from))
			continue
		}
		want, err := s.ReadStream(ctx, sb.stream, sb.from, 0)
		require.NoError(t, err)
		requireSameEvents(t, want, sb.got, fmt.Sprintf("subscription %d to %s from %d", i, sb.stream, sb.from))
	}
	t.Logf("%d events, %d subscriptions", written, subscribers)
}

// TestStore_Subscribe_SlowSubscriberNeitherDroppedNorSlowsWriter writes
// 100,000 events of 500 bytes while one subscription sleeps between events
// and another is parked in its loop body. The writer finishes regardless
// (were it to wait for a subscriber, the test would hang); the heap does not
// grow by the events' 50 MB; and both subscriptions, having fallen behind,
// catch up and deliver every event once, in order.
func TestStore_Subscribe_SlowSubscriberNeitherDroppedNorSlowsWriter(t *testing.T) {
	const total, per = 100_000, 100
	s, _ := newStore(t, &eventstore.Options{SegmentSize: 8 << 20})
	ctx := context.Background()
	writerDone := make(chan struct{})
	var parkedFirst sync.WaitGroup
	parkedFirst.Add(1)

	type result struct {
		got               subscribed
		caughtUp, behind  []uint64
		behindHeads       []uint64
		sawWriterFinished bool
	}
	subscribe := func(slow bool) *result {
		res := &result{}
		first := true
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		seq := s.Subscribe(sctx, 0,
			eventstore.OnCaughtUp(func(p uint64) { res.caughtUp = append(res.caughtUp, p) }),
			eventstore.OnFellBehind(1000, func(p, head uint64) {
				res.behind = append(res.behind, p)
				res.behindHeads = append(res.behindHeads, head)
			}))
		res.got = consume(seq, func(ev eventstore.RecordedEvent) bool {
			select {
			case <-writerDone:
				res.sawWriterFinished = true
			default:
				if slow {
					time.Sleep(100 * time.Microsecond)
				} else if first {
					first = false
					parkedFirst.Done()
					<-writerDone
				}
			}
			if ev.Position == total-1 {
				cancel() // the subscription ends with ctx's error
			}
			return true
		})
		return res
	}
	var slow, parked *result
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); slow = subscribe(true) }()
	go func() { defer wg.Done(); parked = subscribe(false) }()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	data := bytes.Repeat([]byte{'p'}, 500)
	events := make([]eventstore.EventData, per)
	for i := range events {
		events[i] = eventstore.EventData{Type: "Slow", Data: data}
	}
	for i := range total / per {
		_, err := s.Append(ctx, fmt.Sprintf("slow-%d", i%100), eventstore.Any, events...)
		require.NoError(t, err)
		if i == 0 {
			parkedFirst.Wait() // the parked subscription holds event 0 in its loop body
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	close(writerDone)
	wg.Wait()

	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	index := s.Stats().IndexBytes
	t.Logf("heap grew %.1f MiB while both subscriptions lagged (index %.1f MiB, events %.0f MiB)",
		float64(grew)/(1<<20), float64(index)/(1<<20), float64(total*len(data))/(1<<20))
	assert.Less(t, grew, index+16<<20, "a lagging subscription holds no queue of events")

	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	for name, res := range map[string]*result{"sleeping": slow, "parked": parked} {
		require.ErrorIs(t, res.got.err, context.Canceled, name)
		requireSameEvents(t, all, res.got, name)
		assert.True(t, res.sawWriterFinished, "%s: the writer finished while it lagged", name)
		require.NotEmpty(t, res.caughtUp, name)
		assert.Len(t, res.caughtUp, len(res.behind)+1, "%s: caught up at the start and after each time it fell behind", name)
		assert.Equal(t, uint64(0), res.caughtUp[0], "%s caught up with the empty store first", name)
		assert.IsIncreasing(t, res.caughtUp, name)
		for k := range res.behind {
			// It fell behind after it had caught up, more than the lag
			// short of the head, and caught up next with that head.
			assert.GreaterOrEqual(t, res.behind[k], res.caughtUp[k], "%s: fell behind after catching up", name)
			assert.Greater(t, res.behindHeads[k]-res.behind[k], uint64(1000), "%s: lag", name)
			assert.GreaterOrEqual(t, res.caughtUp[k+1], res.behindHeads[k], "%s: caught up with at least that head", name)
		}
	}
	// Whether the sleeping one fell behind depends on the machine; the
	// parked one, held at its first event until the writer finished, did.
	require.NotEmpty(t, parked.behind)
	assert.Equal(t, uint64(total), parked.caughtUp[len(parked.caughtUp)-1])
	for _, head := range slow.caughtUp {
		assert.LessOrEqual(t, head, uint64(total))
	}
}

// filterLog writes 3,000 events: types A, B and C in turn, to streams
// order-N, cart-N and order-line-N.
func filterLog(t *testing.T, s *eventstore.Store) {
	t.Helper()
	streams := []string{"order-", "cart-", "order-line-"}
	types := []string{"A", "B", "C"}
	for i := range 1000 {
		for k := range 3 {
			_, err := s.Append(context.Background(), streams[(i+k)%3]+strconv.Itoa(i%7), eventstore.Any,
				event(types[k], strconv.Itoa(i)))
			require.NoError(t, err)
		}
	}
}

func TestStore_Subscribe_FiltersApplyInTheStore(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	filterLog(t, s)
	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)

	tests := []struct {
		name  string
		opts  []eventstore.SubscribeOption
		match func(ev eventstore.RecordedEvent) bool
	}{
		{"none", nil, func(eventstore.RecordedEvent) bool { return true }},
		{"prefix", []eventstore.SubscribeOption{eventstore.StreamPrefix("order-")},
			func(ev eventstore.RecordedEvent) bool { return strings.HasPrefix(ev.Stream, "order-") }},
		{"longer prefix", []eventstore.SubscribeOption{eventstore.StreamPrefix("order-line-")},
			func(ev eventstore.RecordedEvent) bool { return strings.HasPrefix(ev.Stream, "order-line-") }},
		{"empty prefix", []eventstore.SubscribeOption{eventstore.StreamPrefix("")},
			func(eventstore.RecordedEvent) bool { return true }},
		{"types", []eventstore.SubscribeOption{eventstore.EventTypes("A", "C")},
			func(ev eventstore.RecordedEvent) bool { return ev.Type == "A" || ev.Type == "C" }},
		{"types add up", []eventstore.SubscribeOption{eventstore.EventTypes("A"), eventstore.EventTypes("B")},
			func(ev eventstore.RecordedEvent) bool { return ev.Type == "A" || ev.Type == "B" }},
		{"prefix and type", []eventstore.SubscribeOption{eventstore.StreamPrefix("cart-"), eventstore.EventTypes("B")},
			func(ev eventstore.RecordedEvent) bool { return strings.HasPrefix(ev.Stream, "cart-") && ev.Type == "B" }},
		{"last prefix wins", []eventstore.SubscribeOption{eventstore.StreamPrefix("cart-"), eventstore.StreamPrefix("order-line-")},
			func(ev eventstore.RecordedEvent) bool { return strings.HasPrefix(ev.Stream, "order-line-") }},
		{"matches nothing", []eventstore.SubscribeOption{eventstore.EventTypes("Z")},
			func(eventstore.RecordedEvent) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := uint64(1234)
			var want []eventstore.RecordedEvent
			for _, ev := range all[from:] {
				if tt.match(ev) {
					want = append(want, ev)
				}
			}
			requireSameEvents(t, want, consume(s.All(ctx, from, tt.opts...), nil), "All")

			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			opts := append(slices.Clone(tt.opts), eventstore.OnCaughtUp(func(uint64) { cancel() }))
			got := consume(s.Subscribe(sctx, from, opts...), nil)
			require.ErrorIs(t, got.err, context.Canceled)
			requireSameEvents(t, want, got, "Subscribe")
		})
	}

	t.Run("stream", func(t *testing.T) {
		want, err := s.ReadStream(ctx, "cart-3", 5, 0)
		require.NoError(t, err)
		want = slices.DeleteFunc(want, func(ev eventstore.RecordedEvent) bool { return ev.Type != "B" })
		require.NotEmpty(t, want)
		requireSameEvents(t, want, consume(s.Stream(ctx, "cart-3", 5, eventstore.EventTypes("B")), nil), "Stream")
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := consume(s.SubscribeStream(sctx, "cart-3", 5, eventstore.EventTypes("B"),
			eventstore.OnCaughtUp(func(uint64) { cancel() })), nil)
		require.ErrorIs(t, got.err, context.Canceled)
		requireSameEvents(t, want, got, "SubscribeStream")
	})
}

// TestStore_BorrowData_SameEventsAsCopies reads a log whose events have
// data and metadata of many sizes (none, one byte, past the read window)
// through each sequence with BorrowData, and checks every field of every
// event, inside the loop body, against the copies ReadAll returns. Borrowed
// slices are capped (len equals cap), so appending to one reallocates
// rather than writing into the bytes after it.
func TestStore_BorrowData_SameEventsAsCopies(t *testing.T) {
	s, _ := newStore(t, &eventstore.Options{Sync: eventstore.SyncNone, SegmentSize: 1 << 16})
	ctx := context.Background()
	sizes := []int{0, 1, 200, 5000, 70_000}
	for i := range 300 {
		evs := make([]eventstore.EventData, 1+i%3)
		for j := range evs {
			data := bytes.Repeat([]byte{byte(i)}, sizes[(i+j)%len(sizes)])
			meta := bytes.Repeat([]byte{byte(j)}, sizes[(i+2*j)%2])
			evs[j] = eventstore.EventData{Type: fmt.Sprint("T", i%4), Data: data, Metadata: meta}
		}
		_, err := s.Append(ctx, fmt.Sprint("s-", i%5), eventstore.Any, evs...)
		require.NoError(t, err)
	}
	all, err := s.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	byStream := map[string][]eventstore.RecordedEvent{}
	for _, ev := range all {
		byStream[ev.Stream] = append(byStream[ev.Stream], ev)
	}

	check := func(t *testing.T, want []eventstore.RecordedEvent, seq iter.Seq2[eventstore.RecordedEvent, error], stop func()) {
		t.Helper()
		i := 0
		for ev, err := range seq {
			if err != nil {
				require.ErrorIs(t, err, context.Canceled)
				break
			}
			require.Less(t, i, len(want))
			w := want[i]
			require.Equal(t, w.Position, ev.Position)
			require.Equal(t, w.ID, ev.ID)
			require.Equal(t, w.Stream, ev.Stream)
			require.Equal(t, w.StreamVersion, ev.StreamVersion)
			require.Equal(t, w.Type, ev.Type)
			require.True(t, w.Timestamp.Equal(ev.Timestamp))
			require.Equal(t, w.Data, ev.Data, "position %d", ev.Position)
			require.Equal(t, w.Metadata, ev.Metadata, "position %d", ev.Position)
			require.Equal(t, len(ev.Data), cap(ev.Data), "data capped")
			require.Equal(t, len(ev.Metadata), cap(ev.Metadata), "metadata capped")
			if i++; i == len(want) && stop != nil {
				stop()
			}
		}
		require.Equal(t, len(want), i)
	}
	t.Run("All", func(t *testing.T) { check(t, all[7:], s.All(ctx, 7, eventstore.BorrowData()), nil) })
	t.Run("Stream", func(t *testing.T) {
		check(t, byStream["s-3"][2:], s.Stream(ctx, "s-3", 2, eventstore.BorrowData()), nil)
	})
	t.Run("Subscribe", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		check(t, all, s.Subscribe(sctx, 0, eventstore.BorrowData()), cancel)
	})
	t.Run("SubscribeStream", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		check(t, byStream["s-1"], s.SubscribeStream(sctx, "s-1", 0, eventstore.BorrowData()), cancel)
	})
}

// TestStore_Subscribe_CheckpointsThroughFilteredRuns follows a filter that
// matches one event in 1,000: OnCheckpoint still reports progress every 100
// events, and at the head, and each checkpoint is a position from which a
// new subscription delivers exactly the matching events that remain.
func TestStore_Subscribe_CheckpointsThroughFilteredRuns(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	for i := range 5050 {
		typ := "Noise"
		if i%1000 == 999 {
			typ = "Rare"
		}
		_, err := s.Append(ctx, "s-"+strconv.Itoa(i%10), eventstore.Any, event(typ, strconv.Itoa(i)))
		require.NoError(t, err)
	}
	rare := func(from uint64) []uint64 {
		var ps []uint64
		for p := from; p < 5050; p++ {
			if p%1000 == 999 {
				ps = append(ps, p)
			}
		}
		return ps
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var checkpoints []uint64
	var delivered []uint64
	got := consume(s.Subscribe(sctx, 0, eventstore.EventTypes("Rare"),
		eventstore.OnCheckpoint(100, func(p uint64) {
			// Every matching event before p has been delivered.
			n := len(rare(0)) - len(rare(p))
			if assert.Len(t, delivered, n, "checkpoint %d", p) && n > 0 {
				assert.Equal(t, rare(0)[:n], delivered, "checkpoint %d", p)
			}
			checkpoints = append(checkpoints, p)
		}),
		eventstore.OnCaughtUp(func(uint64) { cancel() })),
		func(ev eventstore.RecordedEvent) bool {
			delivered = append(delivered, ev.Position)
			return true
		})
	require.ErrorIs(t, got.err, context.Canceled)
	assert.Equal(t, rare(0), got.positions)
	want := []uint64{}
	for p := uint64(100); p <= 5000; p += 100 {
		want = append(want, p)
	}
	want = append(want, 5050) // at the head, with 50 events passed since 5000
	assert.Equal(t, want, checkpoints)

	for _, cp := range []uint64{0, 999, 1000, 3100, 5050} {
		got := consume(s.All(ctx, cp, eventstore.EventTypes("Rare")), nil)
		require.NoError(t, got.err)
		assert.Equal(t, rare(cp), got.positions, "resumed at %d", cp)
	}

	// A stream subscription's checkpoints are stream versions.
	var versions []uint64
	got = consume(s.Stream(ctx, "s-9", 0, eventstore.EventTypes("Rare"),
		eventstore.OnCheckpoint(200, func(v uint64) { versions = append(versions, v) })), nil)
	require.NoError(t, got.err)
	assert.Len(t, got.positions, 5)
	assert.Equal(t, []uint64{200, 400, 505}, versions, "every 200 events, and at the end")
}

// TestStore_Subscribe_LiveCheckpointAtTheHead follows a filter that matches
// nothing, live: each batch of filtered-out events reaching the head gets a
// checkpoint at that head, long before the interval has passed.
func TestStore_Subscribe_LiveCheckpointAtTheHead(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	checkpoints := make(chan uint64, 100)
	caughtUp := make(chan uint64, 1)
	ended := make(chan subscribed, 1)
	go func() {
		ended <- consume(s.Subscribe(ctx, 0, eventstore.EventTypes("Rare"),
			eventstore.OnCheckpoint(1_000_000, func(p uint64) { checkpoints <- p }),
			eventstore.OnCaughtUp(func(p uint64) { caughtUp <- p })), nil)
	}()
	require.Equal(t, uint64(0), <-caughtUp)
	var last uint64
	for i := range 5 {
		_, err := s.Append(ctx, "noise", eventstore.Any, event("Noise", "a"), event("Noise", "b"))
		require.NoError(t, err)
		// The subscription reaches each new head: 2, 4, ... (or, if two
		// Appends arrive before it wakes, their common head).
		for last < uint64(2*(i+1)) {
			last = <-checkpoints
			require.Equal(t, uint64(0), last%2, "checkpoints at heads, not inside an Append")
		}
	}
	cancel()
	got := <-ended
	require.ErrorIs(t, got.err, context.Canceled)
	assert.Empty(t, got.positions)
}

func TestStore_Subscribe_StartAndOptionErrors(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	for i := range 5 {
		_, err := s.Append(ctx, "s", eventstore.Any, event("T", strconv.Itoa(i)))
		require.NoError(t, err)
	}
	nop := func(uint64) {}
	tests := []struct {
		name string
		seq  iter.Seq2[eventstore.RecordedEvent, error]
		want error
	}{
		{"Subscribe beyond head", s.Subscribe(ctx, 6), eventstore.ErrBeyondHead},
		{"SubscribeStream beyond its events", s.SubscribeStream(ctx, "s", 6), eventstore.ErrBeyondHead},
		{"SubscribeStream to a new stream beyond 0", s.SubscribeStream(ctx, "new", 1), eventstore.ErrBeyondHead},
		{"SubscribeStream bad name", s.SubscribeStream(ctx, "", 0), eventstore.ErrInvalidStream},
		{"Stream bad name", s.Stream(ctx, "bad\x00name", 0), eventstore.ErrInvalidStream},
		{"EventTypes without types", s.Subscribe(ctx, 0, eventstore.EventTypes()), eventstore.ErrInvalidOptions},
		{"nil option", s.All(ctx, 0, nil), eventstore.ErrInvalidOptions},
		{"OnCheckpoint every 0", s.All(ctx, 0, eventstore.OnCheckpoint(0, nop)), eventstore.ErrInvalidOptions},
		{"OnCheckpoint nil", s.All(ctx, 0, eventstore.OnCheckpoint(1, nil)), eventstore.ErrInvalidOptions},
		{"OnFellBehind lag 0", s.Subscribe(ctx, 0, eventstore.OnFellBehind(0, func(uint64, uint64) {})), eventstore.ErrInvalidOptions},
		{"OnCaughtUp nil", s.Subscribe(ctx, 0, eventstore.OnCaughtUp(nil)), eventstore.ErrInvalidOptions},
		{"FromEnd on All", s.All(ctx, 0, eventstore.FromEnd()), eventstore.ErrInvalidOptions},
		{"OnCaughtUp on Stream", s.Stream(ctx, "s", 0, eventstore.OnCaughtUp(nop)), eventstore.ErrInvalidOptions},
		{"StreamPrefix on SubscribeStream", s.SubscribeStream(ctx, "s", 0, eventstore.StreamPrefix("s")), eventstore.ErrInvalidOptions},
		{"cancelled context", s.All(cancelled(), 0), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := consume(tt.seq, nil)
			assert.Empty(t, got.positions)
			require.ErrorIs(t, got.err, tt.want)
		})
	}

	// At the end, the finite walks are empty; past it, they fail as the
	// subscriptions do (where ReadAll would return nothing).
	for _, seq := range []iter.Seq2[eventstore.RecordedEvent, error]{s.All(ctx, 5), s.Stream(ctx, "s", 5), s.Stream(ctx, "none", 0)} {
		got := consume(seq, nil)
		assert.Empty(t, got.positions)
		assert.NoError(t, got.err)
	}
	for _, seq := range []iter.Seq2[eventstore.RecordedEvent, error]{s.All(ctx, 6), s.Stream(ctx, "s", math.MaxUint64), s.Stream(ctx, "none", 1)} {
		got := consume(seq, nil)
		assert.Empty(t, got.positions)
		assert.ErrorIs(t, got.err, eventstore.ErrBeyondHead)
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestStore_Subscribe_FromEndAndWalksEndAtTheirStart checks FromEnd
// delivers only events committed after the loop starts, and that All and
// Stream end at the head as it was when their loop started, not seeing an
// event appended from inside the loop.
func TestStore_Subscribe_FromEndAndWalksEndAtTheirStart(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	for i := range 3 {
		_, err := s.Append(ctx, "s", eventstore.Any, event("Old", strconv.Itoa(i)))
		require.NoError(t, err)
	}

	seq := s.All(ctx, 0)
	_, err := s.Append(ctx, "s", eventstore.Any, event("Old", "3")) // before the loop starts: seen
	require.NoError(t, err)
	got := consume(seq, func(ev eventstore.RecordedEvent) bool {
		_, err := s.Append(ctx, "s", eventstore.Any, event("New", "during"))
		return assert.NoError(t, err)
	})
	require.NoError(t, got.err)
	assert.Equal(t, []uint64{0, 1, 2, 3}, got.positions)
	got = consume(s.Stream(ctx, "s", 2), func(eventstore.RecordedEvent) bool {
		_, err := s.Append(ctx, "s", eventstore.Any, event("New", "during"))
		return assert.NoError(t, err)
	})
	require.NoError(t, got.err)
	assert.Equal(t, []uint64{2, 3, 4, 5, 6, 7}, got.positions)

	for _, stream := range []string{"", "s"} {
		sctx, cancel := context.WithCancel(ctx)
		head := s.Stats().Events // every event is in stream s
		var appended sync.WaitGroup
		caughtUp := eventstore.OnCaughtUp(func(p uint64) {
			assert.Equal(t, head, p, "caught up at once, at the head")
			appended.Go(func() {
				_, err := s.Append(ctx, "s", eventstore.Any, event("Newer", "after"))
				assert.NoError(t, err)
			})
		})
		seq := s.Subscribe(sctx, 0, eventstore.FromEnd(), caughtUp)
		if stream != "" {
			seq = s.SubscribeStream(sctx, stream, 0, eventstore.FromEnd(), caughtUp)
		}
		got := consume(seq, func(ev eventstore.RecordedEvent) bool {
			assert.Equal(t, "Newer", ev.Type)
			return false
		})
		cancel()
		appended.Wait()
		require.NoError(t, got.err)
		require.Equal(t, []uint64{head}, got.positions)
	}
}

// TestStore_Subscribe_EndsOnBreakCancelAndClose ends subscriptions that are
// waiting live and ones in the middle of catching up, by each of the three
// means, and checks each ends promptly with the right error, once. goleak
// (TestMain) checks nothing is left running.
func TestStore_Subscribe_EndsOnBreakCancelAndClose(t *testing.T) {
	for _, how := range []string{"break", "cancel", "close"} {
		for _, where := range []string{"live", "catching up", "catching up, an event a frame"} {
			for _, stream := range []string{"", "stream-1"} {
				t.Run(how+"/"+where+"/"+stream, func(t *testing.T) {
					s, _ := newStore(t, &eventstore.Options{Sync: eventstore.SyncNone})
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					if where != "live" {
						// Appends of 100 events: a subscription must stop
						// within one, not at its end. Appends of one event,
						// which Subscribe without options delivers by a
						// shorter path (SubscribeStream does not take it):
						// it must stop at the next.
						n, per := 200, 100
						if where != "catching up" {
							n, per = 2000, 1
						}
						events := make([]eventstore.EventData, per)
						for i := range events {
							events[i] = event("T", "x")
						}
						for i := range n {
							_, err := s.Append(ctx, "stream-"+strconv.Itoa(1+i%2), eventstore.Any, events...)
							require.NoError(t, err)
						}
					}
					seq := s.Subscribe(ctx, 0)
					if stream != "" {
						seq = s.SubscribeStream(ctx, stream, 0)
					}
					// The loop body holds the first event until proceed is
					// closed; then it breaks once stop is closed.
					delivered, proceed, stop := make(chan struct{}), make(chan struct{}), make(chan struct{})
					ended := make(chan subscribed, 1)
					first := true
					go func() {
						ended <- consume(seq, func(eventstore.RecordedEvent) bool {
							if first {
								first = false
								close(delivered)
								<-proceed
							}
							select {
							case <-stop:
								return false
							default:
								return true
							}
						})
					}()
					if where == "live" {
						_, err := s.Append(ctx, "stream-1", eventstore.Any, event("T", "x"))
						require.NoError(t, err)
						<-delivered
						close(proceed)
						time.Sleep(10 * time.Millisecond) // back to waiting at the head, most likely
					} else {
						<-delivered // in the middle of catching up
					}
					switch how {
					case "break":
						close(stop)
						if where == "live" {
							_, err := s.Append(ctx, "stream-1", eventstore.Any, event("T", "wake"))
							require.NoError(t, err)
						}
					case "cancel":
						cancel()
					case "close":
						require.NoError(t, s.Close())
					}
					if where != "live" {
						close(proceed)
					}
					var got subscribed
					select {
					case got = <-ended:
					case <-time.After(30 * time.Second):
						require.FailNow(t, "the subscription did not end")
					}
					switch how {
					case "break":
						assert.NoError(t, got.err)
					case "cancel":
						assert.ErrorIs(t, got.err, context.Canceled)
					case "close":
						assert.ErrorIs(t, got.err, eventstore.ErrClosed)
					}
					if where != "live" {
						assert.Len(t, got.positions, 1, "ended after the event its body held, not at its Append's end or the log's")
					}
				})
			}
		}
	}
}

// TestStore_Subscribe_ResumesAfterReopen consumes part of the log with a
// checkpoint, closes the store, reopens it, and resumes: the first event is
// exactly the one after the checkpoint, and the sequence goes on through
// events appended after the reopen.
func TestStore_Subscribe_ResumesAfterReopen(t *testing.T) {
	s, dir := newStore(t, nil)
	ctx := context.Background()
	for i := range 100 {
		_, err := s.Append(ctx, "acct-"+strconv.Itoa(i%3), eventstore.Any, event("T", strconv.Itoa(i)))
		require.NoError(t, err)
	}
	var checkpoint, streamCheckpoint uint64
	for ev, err := range s.Subscribe(ctx, 0) {
		require.NoError(t, err)
		checkpoint = ev.Position + 1
		if checkpoint == 40 {
			break
		}
	}
	for ev, err := range s.SubscribeStream(ctx, "acct-1", 0) {
		require.NoError(t, err)
		streamCheckpoint = ev.StreamVersion + 1
		if streamCheckpoint == 10 {
			break
		}
	}
	require.NoError(t, s.Close())

	s = reopen(t, dir, nil)
	for i := 100; i < 110; i++ {
		_, err := s.Append(ctx, "acct-"+strconv.Itoa(i%3), eventstore.Any, event("T", strconv.Itoa(i)))
		require.NoError(t, err)
	}
	want := 40
	for ev, err := range s.Subscribe(ctx, checkpoint) {
		require.NoError(t, err)
		require.Equal(t, uint64(want), ev.Position)
		require.Equal(t, strconv.Itoa(want), string(ev.Data))
		if want++; want == 110 {
			break
		}
	}
	wantVersion := uint64(10)
	for ev, err := range s.SubscribeStream(ctx, "acct-1", streamCheckpoint) {
		require.NoError(t, err)
		require.Equal(t, wantVersion, ev.StreamVersion)
		require.Equal(t, strconv.Itoa(int(3*wantVersion+1)), string(ev.Data))
		if wantVersion++; wantVersion == 36 { // acct-1 holds 1, 4, ..., 109
			break
		}
	}
}

// TestStore_Subscribe_CorruptionIsYieldedOnce damages a committed frame
// under the open store: a subscription catching up over it delivers the
// events before it, then yields a *CorruptionError once and ends.
func TestStore_Subscribe_CorruptionIsYieldedOnce(t *testing.T) {
	s, seg, second := damagedStore(t)
	ctx := context.Background()

	for name, seq := range map[string]iter.Seq2[eventstore.RecordedEvent, error]{
		"Subscribe":       s.Subscribe(ctx, 0),
		"SubscribeStream": s.SubscribeStream(ctx, "s", 0),
		"All":             s.All(ctx, 0),
		"Stream":          s.Stream(ctx, "s", 0),
	} {
		errs := 0
		var got []uint64
		for ev, err := range seq {
			if err != nil {
				errs++
				var cerr *eventstore.CorruptionError
				require.ErrorAs(t, err, &cerr, name)
				assert.Equal(t, seg, cerr.Path, name)
				assert.Equal(t, second, cerr.Offset, name)
				continue
			}
			got = append(got, ev.Position)
		}
		assert.Equal(t, 1, errs, "%s yields the error once and ends", name)
		assert.Equal(t, []uint64{0}, got, name)
	}
}

// BenchmarkSubscribe_Latency measures how soon live subscriptions see a
// durable append, with 1 and 100 of them. One caller appends one event at a
// time and waits until every subscription has it. Reported per subscription
// and event: ack-to-seen, from Append returning to the loop body receiving
// the event (negative when the subscription was woken before the caller,
// as the writer wakes subscriptions before it answers callers), and
// call-to-seen, from calling Append, which includes the fsync.
func BenchmarkSubscribe_Latency(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			s, _ := newStore(b, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seenAt := make([][]int64, subs)
			var seen atomic.Int64
			everyone := make(chan struct{}, 1)
			var ready, done sync.WaitGroup
			ready.Add(subs)
			for k := range subs {
				seenAt[k] = make([]int64, b.N)
				done.Go(func() {
					for ev, err := range s.Subscribe(ctx, 0, eventstore.FromEnd(), eventstore.OnCaughtUp(func(uint64) { ready.Done() })) {
						if err != nil {
							return
						}
						seenAt[k][ev.Position] = time.Now().UnixNano()
						if seen.Add(1) == int64(subs) {
							everyone <- struct{}{}
						}
					}
				})
			}
			ready.Wait()
			callAt, ackAt := make([]int64, b.N), make([]int64, b.N)
			data := make([]byte, 200)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seen.Store(0)
				callAt[i] = time.Now().UnixNano()
				if _, err := s.Append(ctx, "latency", eventstore.Any, eventstore.EventData{Type: "Tick", Data: data}); err != nil {
					b.Fatal(err)
				}
				ackAt[i] = time.Now().UnixNano()
				<-everyone
			}
			b.StopTimer()
			cancel()
			done.Wait()
			var ackToSeen, callToSeen []time.Duration
			for k := range subs {
				for i := range b.N {
					ackToSeen = append(ackToSeen, time.Duration(seenAt[k][i]-ackAt[i]))
					callToSeen = append(callToSeen, time.Duration(seenAt[k][i]-callAt[i]))
				}
			}
			for name, d := range map[string][]time.Duration{"ack-to-seen": ackToSeen, "call-to-seen": callToSeen} {
				slices.Sort(d)
				b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-µs")
				b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), name+"-p99-µs")
			}
		})
	}
}

func TestStore_ListStreamsAndStreamInfo(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	before := time.Now().UTC()
	for i, stream := range []string{"order-2", "cart-1", "order-1", "order-2", "order-2", "order-10"} {
		_, err := s.Append(ctx, stream, eventstore.Any, event("t", strconv.Itoa(i)))
		require.NoError(t, err)
	}
	after := time.Now().UTC()

	var got []eventstore.StreamInfo
	for info, err := range s.ListStreams(ctx, "order-") {
		require.NoError(t, err)
		got = append(got, info)
	}
	require.Len(t, got, 3)
	assert.Equal(t, []string{"order-1", "order-10", "order-2"}, []string{got[0].Name, got[1].Name, got[2].Name}, "sorted by name")
	o2 := got[2]
	assert.Equal(t, uint64(3), o2.Count)
	assert.Equal(t, uint64(2), o2.Version)
	assert.Equal(t, uint64(0), o2.FirstPosition)
	assert.Equal(t, uint64(4), o2.LastPosition)
	assert.False(t, o2.Created.Before(before.Add(-time.Millisecond)) || o2.Updated.After(after.Add(time.Millisecond)), "times of the run")
	assert.False(t, o2.Updated.Before(o2.Created))

	one, err := s.StreamInfo(ctx, "order-2")
	require.NoError(t, err)
	assert.Equal(t, o2, one)
	all := 0
	for _, err := range s.ListStreams(ctx, "") {
		require.NoError(t, err)
		all++
	}
	assert.Equal(t, 4, all)
	for range s.ListStreams(ctx, "") {
		break // stopping early is fine
	}

	_, err = s.StreamInfo(ctx, "order-3")
	require.ErrorIs(t, err, eventstore.ErrStreamNotFound)
	require.NoError(t, s.Close())
	_, err = s.StreamInfo(ctx, "order-2")
	require.ErrorIs(t, err, eventstore.ErrClosed)
	for _, err := range s.ListStreams(ctx, "") {
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}
}

// TestStore_Backup_UnderConcurrentWriters backs a store up while four
// writers append to it, across segment roll-overs: the copy opens as a
// store holding exactly the events the backup reports, byte for byte, and
// takes appends.
func TestStore_Backup_UnderConcurrentWriters(t *testing.T) {
	s, _ := newStore(t, &eventstore.Options{SegmentSize: 16 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := s.Append(context.Background(), fmt.Sprintf("w%d-%d", w, i%5), eventstore.Any,
					eventstore.EventData{ID: eventstore.NewEventID(), Type: "t", Data: []byte(strings.Repeat(strconv.Itoa(i), 1+i%40))})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	require.Eventually(t, func() bool { return s.Stats().Events > 2000 }, 30*time.Second, time.Millisecond)

	dest := filepath.Join(t.TempDir(), "backup")
	info, err := s.Backup(ctx, dest)
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.Events, uint64(2000))
	assert.Equal(t, dest, info.Dir)
	assert.Greater(t, info.Segments, 3)
	assert.Positive(t, info.Bytes)
	for s.Stats().Events < info.Events+500 {
		time.Sleep(time.Millisecond) // appends go on after the backup
	}
	cancel()
	wg.Wait()

	_, err = s.Backup(context.Background(), dest)
	require.ErrorIs(t, err, eventstore.ErrBackupDirNotEmpty)

	b := reopen(t, dest, nil)
	require.Equal(t, info.Events, b.Stats().Events)
	want, err := s.ReadAll(context.Background(), 0, int(info.Events))
	require.NoError(t, err)
	got, err := b.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	rep, err := eventstore.Verify(context.Background(), dest, nil)
	require.ErrorIs(t, err, eventstore.ErrLocked, "the copy is open")
	assert.Empty(t, rep.Problems)
	_, err = b.Append(context.Background(), "after", eventstore.NoStream, event("t", "x"))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	rep, err = eventstore.Verify(context.Background(), dest, nil)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%v", rep.Problems)
	assert.Equal(t, info.Events+1, rep.Events)
}

// TestVerify checks a sound store, then one with a flipped bit in a frame,
// one with a damaged index file, and one with a torn write at its end: each
// problem is reported with its file and offset, a torn write is not a
// problem, and no file is changed.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 4096})
	require.NoError(t, err)
	for i := range 300 {
		_, err := s.Append(context.Background(), fmt.Sprint("s", i%7), eventstore.Any, event("t", strings.Repeat("v", i%50)))
		require.NoError(t, err)
	}
	_, err = eventstore.Verify(context.Background(), dir, nil)
	require.ErrorIs(t, err, eventstore.ErrLocked)
	require.NoError(t, s.Close())

	var calls int
	var done, total int64
	rep, err := eventstore.Verify(context.Background(), dir, func(d, t int64) { calls, done, total = calls+1, d, t })
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%v", rep.Problems)
	assert.Equal(t, uint64(300), rep.Events)
	assert.Equal(t, uint64(300), rep.Frames)
	assert.Equal(t, 7, rep.Streams)
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	idx, err := filepath.Glob(filepath.Join(dir, "*.idx"))
	require.NoError(t, err)
	assert.Equal(t, len(segs), rep.Segments)
	assert.Equal(t, len(idx), rep.IndexFiles)
	assert.Equal(t, len(segs), len(idx), "every segment indexed after Close")
	assert.Equal(t, total, done)
	assert.Equal(t, rep.Bytes, total)
	assert.GreaterOrEqual(t, calls, len(segs))
	assert.Zero(t, rep.TornBytes)

	damage := func(t *testing.T, path string, edit func(b []byte) []byte) string {
		work := t.TempDir()
		for _, p := range append(slices.Clone(segs), idx...) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			if p == path {
				b = edit(b)
			}
			require.NoError(t, os.WriteFile(filepath.Join(work, filepath.Base(p)), b, 0o644))
		}
		return work
	}
	unchanged := func(t *testing.T, work string) func() {
		before := map[string][]byte{}
		entries, err := os.ReadDir(work)
		require.NoError(t, err)
		for _, e := range entries {
			before[e.Name()], err = os.ReadFile(filepath.Join(work, e.Name()))
			require.NoError(t, err)
		}
		return func() {
			entries, err := os.ReadDir(work)
			require.NoError(t, err)
			require.Len(t, entries, len(before))
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(work, e.Name()))
				require.NoError(t, err)
				require.Equal(t, before[e.Name()], b, e.Name())
			}
		}
	}

	t.Run("bit flip in a frame", func(t *testing.T) {
		const at = 24 + 24 + 10 // in the first frame's payload
		work := damage(t, segs[1], func(b []byte) []byte { b[at] ^= 1; return b })
		check := unchanged(t, work)
		rep, err := eventstore.Verify(context.Background(), work, nil)
		require.NoError(t, err)
		require.False(t, rep.OK())
		assert.Equal(t, filepath.Join(work, filepath.Base(segs[1])), rep.Problems[0].Path)
		assert.Equal(t, int64(24), rep.Problems[0].Offset)
		assert.Contains(t, rep.Problems[0].Reason, "checksum")
		assert.Equal(t, len(segs), rep.Segments, "the check goes on past the damage")
		check()
	})
	t.Run("damaged index file", func(t *testing.T) {
		work := damage(t, idx[2], func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		check := unchanged(t, work)
		rep, err := eventstore.Verify(context.Background(), work, nil)
		require.NoError(t, err)
		require.Len(t, rep.Problems, 1)
		assert.Equal(t, filepath.Join(work, filepath.Base(idx[2])), rep.Problems[0].Path)
		check()
	})
	t.Run("torn write at the end", func(t *testing.T) {
		last := segs[len(segs)-1]
		work := damage(t, last, func(b []byte) []byte { return b[:len(b)-5] })
		// The index of the last segment now covers more than it holds.
		require.NoError(t, os.Remove(filepath.Join(work, strings.TrimSuffix(filepath.Base(last), ".seg")+".idx")))
		check := unchanged(t, work)
		rep, err := eventstore.Verify(context.Background(), work, nil)
		require.NoError(t, err)
		assert.True(t, rep.OK(), "%v", rep.Problems)
		assert.Positive(t, rep.TornBytes)
		assert.Equal(t, uint64(299), rep.Events)
		check()
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := eventstore.Verify(context.Background(), filepath.Join(t.TempDir(), "none"), nil)
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}

// TestStore_Metrics reads every instrument through an OpenTelemetry SDK
// reader after a known run.
func TestStore_Metrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	s, dir := newStore(t, &eventstore.Options{MeterProvider: mp})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan struct{}, 100)
	go func() {
		for _, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				return
			}
			seen <- struct{}{}
		}
	}()
	for i := range 10 {
		_, err := s.Append(context.Background(), "s", eventstore.Any, event("t", strconv.Itoa(i)))
		require.NoError(t, err)
		<-seen
	}
	_, err := s.Append(context.Background(), "s", eventstore.Any, event("t", "a"), event("t", "b"), event("t", "c"))
	require.NoError(t, err)
	for range 3 {
		<-seen
	}
	_, err = s.Append(context.Background(), "s", eventstore.Exact(0), event("t", "late"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, "github.com/go-eventstore/eventstore", sm.Scope.Name)
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	sum := func(name string) int64 {
		data, ok := got[name].(metricdata.Sum[int64])
		require.True(t, ok, "%s is a counter", name)
		require.Len(t, data.DataPoints, 1)
		return data.DataPoints[0].Value
	}
	assert.Equal(t, int64(11), sum("eventstore.appends"))
	assert.Equal(t, int64(13), sum("eventstore.events.written"))
	assert.Equal(t, framesSize(t, segmentFile(t, dir))-24, sum("eventstore.bytes.written"), "every frame byte")
	hist := func(name string) (count uint64) {
		switch data := got[name].(type) {
		case metricdata.Histogram[int64]:
			require.Len(t, data.DataPoints, 1)
			return data.DataPoints[0].Count
		case metricdata.Histogram[float64]:
			require.Len(t, data.DataPoints, 1)
			return data.DataPoints[0].Count
		}
		t.Fatalf("%s is not a histogram: %T", name, got[name])
		return 0
	}
	st := s.Stats()
	assert.Equal(t, st.Batches, hist("eventstore.batch.size"))
	assert.Equal(t, st.Syncs, hist("eventstore.fsync.duration"), "each sync timed")
	assert.Equal(t, uint64(12), hist("eventstore.append.duration"), "the refused append too")
	assert.GreaterOrEqual(t, hist("eventstore.subscription.lag"), uint64(11), "each wake of the subscription")
	depth, ok := got["eventstore.queue.depth"].(metricdata.Gauge[int64])
	require.True(t, ok)
	require.Len(t, depth.DataPoints, 1)
	assert.Equal(t, int64(0), depth.DataPoints[0].Value)
}

func TestParseEventID(t *testing.T) {
	for range 100 {
		id := eventstore.NewEventID()
		got, err := eventstore.ParseEventID(id.String())
		require.NoError(t, err)
		require.Equal(t, id, got)
		got, err = eventstore.ParseEventID(strings.ToUpper(id.String()))
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
	for _, bad := range []string{"", "0190a6b2-7c1e-7d3f-8a4b-1c2d3e4f5a6", "0190a6b2-7c1e-7d3f-8a4b-1c2d3e4f5a6gg",
		"0190a6b2x7c1e-7d3f-8a4b-1c2d3e4f5a6b", "0190a6b2-7c1e-7d3f-8a4b-1c2d3e4f5a6g", "+190a6b2-7c1e-7d3f-8a4b-1c2d3e4f5a6b"} {
		_, err := eventstore.ParseEventID(bad)
		require.ErrorIs(t, err, eventstore.ErrInvalidEvent, bad)
	}
}

// TestStore_ReadOnly_FollowsAWritingStore opens a read-only Store beside a
// writing one on the same directory: it reads what was there, and a
// subscription on it sees every event appended after, across segment
// roll-overs, in order.
func TestStore_ReadOnly_FollowsAWritingStore(t *testing.T) {
	w, dir := newStore(t, &eventstore.Options{SegmentSize: 4096})
	ctx := context.Background()
	appendSome := func(n int) {
		for i := range n {
			_, err := w.Append(ctx, fmt.Sprint("s", i%3), eventstore.Any, event("t", strings.Repeat("x", i%70)))
			require.NoError(t, err)
		}
	}
	appendSome(100)
	r := reopen(t, dir, &eventstore.Options{ReadOnly: true})
	require.Equal(t, uint64(100), r.Stats().Events)
	_, err := r.Append(ctx, "s0", eventstore.Any, event("t", "x"))
	require.ErrorIs(t, err, eventstore.ErrReadOnly)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan eventstore.RecordedEvent, 1000)
	go func() {
		for e, err := range r.Subscribe(sctx, 50) {
			if err != nil {
				close(got)
				return
			}
			got <- e
		}
	}()
	appendSome(300)
	want, err := w.ReadAll(ctx, 50, 0)
	require.NoError(t, err)
	require.Greater(t, w.Stats().Segments, 5)
	for i, e := range want {
		select {
		case g, ok := <-got:
			require.True(t, ok, "subscription ended at %d", i)
			require.Equal(t, e, g)
		case <-time.After(10 * time.Second):
			t.Fatalf("the read-only store stopped at event %d of %d", i, len(want))
		}
	}
	all, err := r.ReadAll(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, all, 400)
	info, err := r.StreamInfo(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, uint64(133), info.Count)
}

// TestStore_ReadOnly_ChangesNothing opens a read-only Store on a log with a
// torn tail: it reads the whole frames, leaves the tail and every file as
// they are, and holds no lock, so a writing Store can open beside it.
func TestStore_ReadOnly_ChangesNothing(t *testing.T) {
	dir, full, last := writeLog(t, 4, 300, false)
	seg := segmentFile(t, dir)
	require.NoError(t, os.WriteFile(seg, full[:len(full)-7], 0o644))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)

	r := reopen(t, dir, &eventstore.Options{ReadOnly: true})
	assert.Equal(t, uint64(3), r.Stats().Events)
	evs, err := r.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	assert.Len(t, evs, 3)
	require.NoError(t, r.Close())
	after, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Equal(t, len(entries), len(after))
	assert.Equal(t, full[:len(full)-7], mustRead(t, seg), "the torn tail is left for the writing store")

	r = reopen(t, dir, &eventstore.Options{ReadOnly: true})
	w := reopen(t, dir, nil)
	assert.Equal(t, uint64(3), w.Stats().Events, "the writing store opens beside it")
	assert.Equal(t, last, framesSize(t, seg), "and repairs the tail")
	assert.Equal(t, uint64(3), r.Stats().Events)
	_, err = eventstore.Open(filepath.Join(t.TempDir(), "none"), &eventstore.Options{ReadOnly: true})
	require.Error(t, err, "no store to read")
	empty := t.TempDir()
	_, err = eventstore.Open(empty, &eventstore.Options{ReadOnly: true})
	require.Error(t, err)
	entries, err = os.ReadDir(empty)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing created")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestStore_ReadOnly_StopsWhenTheFilesShrink cuts the log under a
// read-only store, as a writing store's repair of a torn tail it had read
// would: it stops following, says why in Stats.Err, and its subscriptions
// end with a *CorruptionError; reads go on with what it has.
func TestStore_ReadOnly_StopsWhenTheFilesShrink(t *testing.T) {
	dir, _, last := writeLog(t, 4, 300, false)
	r := reopen(t, dir, &eventstore.Options{ReadOnly: true})
	require.Equal(t, uint64(4), r.Stats().Events)
	require.NoError(t, os.Truncate(segmentFile(t, dir), last))
	var got error
	for _, err := range r.Subscribe(context.Background(), 4) { // waiting at the head
		if err != nil {
			got = err
			break
		}
	}
	require.ErrorIs(t, got, eventstore.ErrCorrupt)
	assert.Contains(t, got.Error(), "shrank")
	require.ErrorIs(t, r.Stats().Err, eventstore.ErrCorrupt)
	assert.Contains(t, r.Stats().Err.Error(), "shrank")
	evs, err := r.ReadAll(context.Background(), 0, 3)
	require.NoError(t, err)
	assert.Len(t, evs, 3)
}

// TestStore_SegmentCutShortUnderTheStore cuts the segment file of an open
// store to two pages: each read must return a *CorruptionError rather than
// crash the process (as a copy out of a mapping, which reads once made,
// would fault), and frames the file still holds must read as before.
func TestStore_SegmentCutShortUnderTheStore(t *testing.T) {
	s, dir := newStore(t, &eventstore.Options{Sync: eventstore.SyncNone})
	data := bytes.Repeat([]byte{'d'}, 1000)
	for i := range 200 {
		_, err := s.Append(context.Background(), fmt.Sprint("s-", i%2), eventstore.Any, eventstore.EventData{Type: "t", Data: data})
		require.NoError(t, err)
	}
	require.NoError(t, os.Truncate(segmentFile(t, dir), 8192))

	_, err := s.ReadAll(context.Background(), 0, 0)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	_, err = s.ReadStream(context.Background(), "s-1", 0, 0)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	_, err = s.ReadAll(context.Background(), 150, 10)
	require.ErrorIs(t, err, eventstore.ErrCorrupt)
	for _, err := range s.All(context.Background(), 0, eventstore.BorrowData()) {
		if err != nil {
			require.ErrorIs(t, err, eventstore.ErrCorrupt)
		}
	}
	evs, err := s.ReadAll(context.Background(), 0, 3)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	assert.Equal(t, data, evs[2].Data)
}

// TestVerify_SegmentsLargerThanTheReadWindow checks a sound store whose
// segment is many times the 1 MiB read window, and one of a few events
// near the largest size: frames that straddle the window must not be
// reported.
func TestVerify_SegmentsLargerThanTheReadWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events int
		size   int
	}{{"many small events", 40000, 20}, {"events of 3 MiB", 5, 3 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := eventstore.Open(dir, &eventstore.Options{Sync: eventstore.SyncNone, MaxEventSize: 4 << 20})
			require.NoError(t, err)
			data := bytes.Repeat([]byte{'v'}, tc.size)
			for i := range tc.events {
				_, err := s.Append(context.Background(), fmt.Sprint("s-", i%97), eventstore.Any,
					eventstore.EventData{ID: eventstore.NewEventID(), Type: "T", Data: data})
				require.NoError(t, err)
			}
			require.NoError(t, s.Close())
			rep, err := eventstore.Verify(context.Background(), dir, nil)
			require.NoError(t, err)
			assert.True(t, rep.OK(), "%v", rep.Problems)
			assert.Equal(t, min(tc.events, 97), rep.Streams)
			assert.Equal(t, uint64(tc.events), rep.Events)
			assert.Equal(t, 1, rep.IndexFiles)
		})
	}
}

// TestStore_ReadOnly_MissingSegmentIsCorruption removes a segment from the
// middle of a closed log: a read-only Open reports it, as a writing one
// does, rather than show the part before it as the whole log.
func TestStore_ReadOnly_MissingSegmentIsCorruption(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 1024})
	require.NoError(t, err)
	for i := range 100 {
		_, err := s.Append(context.Background(), "s", eventstore.Any, event("t", strings.Repeat("x", i)))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.Greater(t, len(segs), 4)
	require.NoError(t, os.Remove(segs[2]))
	for _, opts := range []*eventstore.Options{{ReadOnly: true}, nil} {
		_, err = eventstore.Open(dir, opts)
		require.ErrorIs(t, err, eventstore.ErrCorrupt)
	}
}

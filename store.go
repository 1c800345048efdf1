// Package eventstore is an embeddable, append-only event store: events go to
// named streams with optimistic concurrency, every event gets a gapless global
// position and a per-stream version, and an acknowledged append has been
// fsynced to disk.
//
// # Guarantees
//
// With the default Options.Sync (SyncAlways), Append returns only after its
// events have been written and fdatasync'ed. Each Append is atomic: after a
// crash it is there whole or not at all. Global positions start at 0 and
// have no gaps; a stream's versions start at 0 and are contiguous. Readers see
// only events whose Append has been acknowledged (or, under SyncInterval and
// SyncNone, written), never part of one. Open repairs a torn write at the end
// of the log, reporting it in Stats.TornBytes, and refuses with a
// *CorruptionError any damage a crash cannot explain in what it reads. It
// does not read frames a segment's index file lists: damage to those is
// reported by the read that meets them, and by Verify, which checks every
// byte of a closed store.
//
// # Concurrency
//
// A Store is safe for concurrent use by multiple goroutines. One writer
// goroutine owns the log: Append validates and encodes its events on the
// caller's goroutine, queues them on a bounded channel, and waits. The writer
// takes every waiting request (up to Options.MaxBatch), checks each against
// the streams' versions, writes them all with one write and one fdatasync
// (a batch that fills a segment also syncs it and creates the next one;
// under SyncAlways, once every 256 KiB of frames, one first writes zeros
// ahead of them), publishes them to readers, and answers each caller. Many
// concurrent callers therefore share each fsync. Reads never wait for the
// writer's I/O: they look up locations in an in-memory index under a read
// lock held for no I/O, and read the segment files directly, with pread.
//
// # Subscriptions
//
// Subscribe and SubscribeStream deliver the log, or one stream, from a given
// position and then live, each event once and in order; All and Stream walk
// it up to the head and end. They are iterators run on the loop's goroutine:
// a subscription reads the segment files like any reader and waits at the
// head for the writer to wake it, so a slow one never holds the writer back.
//
// # Operating a store
//
// ListStreams and StreamInfo describe streams; Backup copies a consistent
// snapshot while appends go on; Verify checks a closed store's files.
// Options.ReadOnly opens a store beside another process that writes it, and
// follows its appends. Options.MeterProvider and Options.Logger report what
// the store does. The eventstore command (cmd/eventstore) puts all of it on
// the command line.
//
// The on-disk format and the recovery rules are described at the top of
// eventlog.go.
package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"

	"github.com/go-eventstore/eventstore/internal/record"
	"github.com/go-eventstore/eventstore/internal/telemetry"
	"github.com/go-eventstore/eventstore/internal/vfs"
)

// Limits on names, fixed for every store.
const (
	// MaxStreamNameLen is the longest stream name, in bytes.
	MaxStreamNameLen = 1024
	// MaxEventTypeLen is the longest event type, in bytes.
	MaxEventTypeLen = 1024
	// IdempotencyWindow is how many of a stream's most recent events an
	// Append with Any or StreamExists searches for its first event's ID.
	IdempotencyWindow = 1000
)

// SyncMode says when appended events are made durable.
type SyncMode int

const (
	// SyncAlways fdatasyncs every batch before acknowledging it: an
	// acknowledged Append survives a crash of the process or the machine.
	SyncAlways SyncMode = iota
	// SyncInterval acknowledges a batch once written and fdatasyncs at most
	// Options.SyncInterval later. A process crash loses nothing; a machine
	// crash or power loss may lose up to SyncInterval of acknowledged
	// appends (always a whole number of them, at the end of the log).
	SyncInterval
	// SyncNone never fdatasyncs except when a segment fills up and at Close.
	// A machine crash may lose any acknowledged append not yet flushed by
	// the operating system. For tests and throwaway data.
	SyncNone
)

// String returns the mode's name.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "SyncAlways"
	case SyncInterval:
		return "SyncInterval"
	case SyncNone:
		return "SyncNone"
	}
	return "SyncMode(" + strconv.Itoa(int(m)) + ")"
}

// Options configure a Store. The zero value of each field selects its
// default, and a nil *Options selects every default.
type Options struct {
	// MaxEventSize is the largest encoded event (ID, type, metadata and
	// data with their lengths); 0 means 4 MiB. At most 64 MiB.
	MaxEventSize int
	// MaxAppendSize is the largest total encoded size of one Append's
	// events; 0 means 16 MiB, or MaxEventSize if larger. At most 255 MiB.
	MaxAppendSize int
	// QueueSize is the capacity of the writer's request channel, the
	// backpressure limit: when it is full, Append blocks until there is
	// room, its context ends, or the store closes. 0 means 1024: room for
	// four full batches, so that hundreds of concurrent callers seldom block
	// while the writer is in fsync, while queued requests (each holding only
	// its own encoded events) stay bounded.
	QueueSize int
	// MaxBatch is the most requests the writer commits with one write and
	// one fsync; 0 means 256.
	MaxBatch int
	// SegmentSize is the size at which the log rolls over to a new segment
	// file; 0 means 64 MiB. At least 512 bytes, at most 1 GiB. An Append
	// larger than a segment gets a segment of its own.
	SegmentSize int64
	// Sync says when appends are made durable; the zero value is SyncAlways.
	Sync SyncMode
	// SyncInterval is the longest an acknowledged append stays unsynced
	// under SyncInterval; 0 means 100 ms. Ignored by the other modes.
	SyncInterval time.Duration
	// Logger receives what Open found and repaired (a truncated torn tail,
	// an index file it could not use), storage failures that poison the
	// store, and index files that could not be written; nil discards them.
	Logger *slog.Logger
	// MeterProvider, if not nil, gets the store's metrics (see the README's
	// "Metrics and logs"): appends, events and bytes written, batch sizes,
	// fsync and append latency, queue depth and subscription lag. Nil
	// records nothing.
	MeterProvider metric.MeterProvider
	// ReadOnly opens the store without its lock and without changing any
	// file, beside a Store that may be writing to it in another process:
	// Append returns ErrReadOnly, reads and subscriptions work, and the store
	// follows the files, picking up new events every 50 ms (see the
	// README's "Read-only stores" for what it can see). Open fails if the
	// directory holds no segment.
	ReadOnly bool

	// fs replaces the file system, for fault injection in tests.
	fs vfs.FS
}

// withDefaults returns a copy of o (which may be nil) with defaults filled
// in, or an error naming the first field out of range.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	bad := func(field string, v any) (Options, error) {
		return Options{}, fmt.Errorf("%w: %s %v out of range", ErrInvalidOptions, field, v)
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = 4 << 20
	}
	if c.MaxEventSize < 0 || c.MaxEventSize > 64<<20 {
		return bad("MaxEventSize", c.MaxEventSize)
	}
	if c.MaxAppendSize == 0 {
		c.MaxAppendSize = max(16<<20, c.MaxEventSize)
	}
	if c.MaxAppendSize < c.MaxEventSize || c.MaxAppendSize > 255<<20 {
		return bad("MaxAppendSize", c.MaxAppendSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.QueueSize < 0 || c.QueueSize > 1<<20 {
		return bad("QueueSize", c.QueueSize)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 256
	}
	if c.MaxBatch < 0 || c.MaxBatch > 1<<16 {
		return bad("MaxBatch", c.MaxBatch)
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = 64 << 20
	}
	if c.SegmentSize < 512 || c.SegmentSize > 1<<30 {
		return bad("SegmentSize", c.SegmentSize)
	}
	if c.Sync < SyncAlways || c.Sync > SyncNone {
		return bad("Sync", c.Sync)
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 100 * time.Millisecond
	}
	if c.SyncInterval < 0 {
		return bad("SyncInterval", c.SyncInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.fs == nil {
		c.fs = vfs.OS()
	}
	return c, nil
}

// EventID identifies an event: a UUID, in its 16 bytes.
//
// An ID the store assigns (to an event appended with the zero ID) is a
// time-ordered UUID of version 7, as NewEventID's are: the commit time's
// milliseconds, then 74 bits derived from the event's position and the
// store's ID key, drawn at random when the store's first segment of format
// version 4 was created. It is derived when the event is read, not stored,
// so that it costs no bytes on disk. The store never assigns one ID to two
// events it holds; beyond that it checks IDs only as Append's retry check
// does, so an ID a caller gives may equal another event's. It is
// predictable, not random: one assigned ID and its event's position give
// away the others' 74 non-time bits, so give IDs from NewEventID where
// they must not be guessed. A copy of a store made once it has its key
// keeps it: the copy and the original, appended to apart, assign the same
// ID to events at the same position committed in the same millisecond.
type EventID [16]byte

// NewEventID returns a fresh random, time-ordered UUID (version 7).
func NewEventID() EventID {
	var id EventID
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	rand.Read(id[6:]) // never fails: see crypto/rand.Read
	id[6] = 0x70 | id[6]&0x0f
	id[8] = 0x80 | id[8]&0x3f
	return id
}

// IsZero reports whether id is the zero ID, which asks the store to assign
// one.
func (id EventID) IsZero() bool { return id == EventID{} }

// String returns the canonical UUID form, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (id EventID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return string(b[:])
}

// ParseEventID parses the canonical UUID form String returns, in either
// case. It returns an error wrapping ErrInvalidEvent for anything else.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("%w: event ID %q is not a UUID", ErrInvalidEvent, s)
	}
	digits := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(digits)); err != nil {
		return EventID{}, fmt.Errorf("%w: event ID %q is not a UUID", ErrInvalidEvent, s)
	}
	return id, nil
}

// ExpectedVersion is the condition an Append places on its stream's version.
// Use Any, NoStream, StreamExists or Exact.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -2
	// NoStream appends only to a stream that has no events.
	NoStream ExpectedVersion = -1
	// StreamExists appends only to a stream that has events.
	StreamExists ExpectedVersion = -4
)

// Exact returns the condition that the stream's last event has version v.
func Exact(v uint64) ExpectedVersion {
	if v > math.MaxInt64 {
		return ExpectedVersion(math.MinInt64) // unreachable version: refused as invalid
	}
	return ExpectedVersion(v)
}

func (e ExpectedVersion) valid() bool {
	return e >= 0 || e == Any || e == NoStream || e == StreamExists
}

// String returns "Any", "NoStream", "StreamExists" or the exact version.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "Any"
	case NoStream:
		return "NoStream"
	case StreamExists:
		return "StreamExists"
	}
	if e < 0 {
		return "ExpectedVersion(" + strconv.FormatInt(int64(e), 10) + ")"
	}
	return strconv.FormatInt(int64(e), 10)
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event. The zero ID asks the store to assign one
	// (see EventID); give your own to make a retried Append idempotent.
	ID EventID
	// Type names the kind of event; it must not be empty.
	Type string
	// Data and Metadata are opaque to the store. Empty and nil are stored
	// alike and read back as nil.
	Data, Metadata []byte
}

// RecordedEvent is an event read from the store. It owns its byte slices.
type RecordedEvent struct {
	ID            EventID
	Stream        string
	StreamVersion uint64
	Position      uint64
	Type          string
	Data          []byte
	Metadata      []byte
	// Timestamp is when the writer committed the event, in UTC.
	Timestamp time.Time
}

// AppendResult reports where an Append's last event went.
type AppendResult struct {
	Position      uint64
	StreamVersion uint64
}

// Stats is a snapshot of a Store's counters. On a read-only Store the
// writer's counters (Synced, Appends, Batches, Syncs, TornBytes,
// QueueDepth) stay at zero: it cannot know what the writing process did.
type Stats struct {
	// Events is the number of committed events, and so the position the
	// next event will get.
	Events uint64
	// Synced is how many events are on stable storage, fsynced: all of
	// Events under SyncAlways; under SyncInterval and SyncNone, those written
	// before the last fsync. A power loss keeps at least these.
	Synced uint64
	// Streams is the number of streams with at least one event.
	Streams int
	// Segments is the number of segment files.
	Segments int
	// Appends counts Append calls committed since Open (an idempotent
	// retry that wrote nothing included).
	Appends uint64
	// Batches counts group commits since Open: one write of frames each.
	Batches uint64
	// Syncs counts fdatasync calls on segment files since Open.
	Syncs uint64
	// TornBytes is how many bytes of torn write Open truncated.
	TornBytes int64
	// IndexBytes is the heap the in-memory index holds, its slices counted
	// at their capacity: about 20 bytes an event, whatever their size.
	IndexBytes int64
	// QueueDepth is the number of requests waiting for the writer.
	QueueDepth int
	// Err is the storage error that poisoned the store, or nil; on a
	// read-only Store, why it stopped following the files.
	Err error
}

// Store is an open event store. A Store is safe for concurrent use by
// multiple goroutines.
type Store struct {
	opts      Options
	log       *eventLog
	index     *readIndex
	w         *writer   // started unless read-only
	follow    *follower // read-only only
	tornBytes int64

	closeOnce sync.Once
	closeErr  error // set by the first Close
}

// Open opens the store in dir, creating the directory if it is missing. A nil
// opts selects the defaults. Open takes an exclusive lock on the directory
// (ErrLocked if another Store has it, in this or another process), recovers
// the log (truncating a torn write at its end, failing with a
// *CorruptionError on any other damage), and only then starts the writer, so
// a failed Open leaves nothing running or open.
func Open(dir string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	index := newReadIndex()
	log, rec, err := openLog(dir, o.fs, o.Logger, o.SegmentSize, o.ReadOnly, &indexBuilder{ix: index})
	if err != nil {
		return nil, err
	}
	log.zeroAhead = o.Sync == SyncAlways
	index.segments = slices.Clone(log.segments)
	for _, seg := range index.segments {
		seg.end = seg.size
	}
	index.next = rec.next
	index.countHeap()
	s := &Store{opts: o, log: log, index: index, tornBytes: rec.tornBytes}
	s.w = newWriter(log, index, &s.opts)
	m, err := telemetry.New(o.MeterProvider, func() int64 { return int64(len(s.w.reqs)) })
	if err != nil {
		log.close()
		return nil, fmt.Errorf("eventstore: open %s: metrics: %w", dir, err)
	}
	s.w.metrics, index.metrics = m, m
	o.Logger.Info("eventstore: opened", "dir", dir, "events", rec.next, "streams", len(index.streams),
		"segments", len(index.segments), "bytes_read", rec.scanned, "torn_bytes", rec.tornBytes, "took", time.Since(start))
	if o.ReadOnly {
		s.follow = newFollower(log, index)
		go s.follow.run()
		return s, nil
	}
	// Sealed segments that had to be read, all or in part, get their index
	// file now, so the next Open need not read them.
	for _, seg := range index.segments[:len(index.segments)-1] {
		if seg.indexed != seg.size {
			s.w.indexer.add(seg)
		}
	}
	go s.w.indexer.run()
	go s.w.run()
	return s, nil
}

// Close stops the store: it stops taking requests, answers every request
// already queued (committed, or ErrClosed), stops the writer, syncs and
// closes the files and releases the directory lock. Reads and appends after
// Close return ErrClosed. Close is idempotent: later calls return nil.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		if s.follow != nil {
			s.follow.stop()
		} else {
			s.w.stop()
			s.w.indexer.stop()
		}
		s.index.mu.Lock()
		s.index.closed = true
		s.index.mu.Unlock()
		s.index.notify.stop(nil)
		s.index.helpers.Wait() // walks' verifiers end on the stop, whatever their loops do
		var err error
		// A poisoned log is not synced: its fsync has failed once already.
		// A healthy one gives back the space allocated ahead of its frames.
		if s.w.failed == nil && !s.opts.ReadOnly {
			s.log.trim()
		}
		if s.w.failed == nil && s.w.dirty {
			err = s.log.sync()
		}
		// The active segment's index file, written only over synced
		// frames, lets the next Open skip reading them.
		if s.w.failed == nil && err == nil && !s.opts.ReadOnly {
			s.w.indexer.write(s.log.active(), false)
		}
		if cerr := s.log.close(); err == nil {
			err = cerr
		}
		if merr := s.w.metrics.Close(); err == nil {
			err = merr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("eventstore: close: %w", err)
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// Append appends events to stream, atomically, if the stream's version
// matches expected. It returns where the last event went.
//
// With the default SyncAlways, Append returns only once the events are
// durable. Bad input is refused before anything is queued (ErrInvalidStream,
// ErrInvalidEvent, ErrNoEvents, ErrEventTooLarge, ErrAppendTooLarge,
// ErrInvalidExpectedVersion). A failed version check returns a
// *WrongExpectedVersionError and writes nothing.
//
// Idempotency: when every event has an ID from the caller, and the stream
// already holds events with those IDs, in the same order and contiguous,
// Append writes nothing and returns the result of the last of them: for a
// retry of an earlier Append, its original result. A retry that matches only
// some of them returns a *WrongExpectedVersionError. With NoStream or Exact
// the events are looked for at the expected version, however old; with Any
// or StreamExists, the first one among the stream's last IdempotencyWindow
// events. Matching is by event, not by call: a retry of the first k events
// of an earlier Append succeeds with the result of the k-th.
//
// If ctx ends before the writer takes the request, nothing is written and
// Append returns ctx.Err(). If it ends after, the events may be committed or
// not: Append returns an error matching both ErrOutcomeUnknown and ctx.Err();
// with caller-given IDs, appending the same events again settles it.
//
// After a write or fsync has failed, Append returns a *StorageError
// (ErrStorageFailed) until the store is reopened.
//
// The first Append to a stream the store learnt from an index file, and
// has not read since Open, reads the frame where the stream starts, to
// confirm its name (see the File format section of the README): if that
// frame is damaged or does not name the stream, Append returns a
// *CorruptionError (ErrCorrupt) and writes nothing, and so does every
// Append to the stream after it; other streams are not affected.
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	if s.opts.ReadOnly {
		return AppendResult{}, ErrReadOnly
	}
	r, err := s.newRequest(stream, expected, events)
	if err != nil {
		return AppendResult{}, err
	}
	// A stream learnt from an index file has its name confirmed here, once,
	// so that the writer may name it by number without a read of its own.
	// A name the stream's first frame contradicts refuses the append; a
	// read that fails otherwise leaves the stream unconfirmed, and the
	// writer names it, and reports the store's own state.
	if err := s.index.confirmStream(stream); errors.Is(err, ErrCorrupt) {
		putRequest(r)
		return AppendResult{}, err
	}
	start := time.Now()
	res, err := s.w.submit(ctx, r)
	s.w.metrics.Appended(time.Since(start))
	return res, err
}

// requests holds requests between Appends. Only a request answered while
// its caller waited goes back: the writer is then done with it. One whose
// caller stopped waiting (its context ended, or the store closed) is left to
// the collector, whether or not an answer came later.
var requests = sync.Pool{New: func() any { return &request{reply: make(chan result, 1)} }}

// maxPooledBody is the largest body a pooled request keeps, and its IDs'
// bound in bytes.
const maxPooledBody = 64 << 10

func getRequest() *request { return requests.Get().(*request) }

// putRequest pools r, answered and read, for another Append.
func putRequest(r *request) {
	if cap(r.body) > maxPooledBody || cap(r.ids) > maxPooledBody/len(EventID{}) {
		return
	}
	r.stream, r.body, r.ids = "", r.body[:0], r.ids[:0]
	r.state.Store(stateQueued)
	requests.Put(r)
}

// newRequest validates an Append and encodes its events, on the caller's
// goroutine, so the writer only checks versions and copies bytes.
func (s *Store) newRequest(stream string, expected ExpectedVersion, events []EventData) (*request, error) {
	if err := checkName(stream, MaxStreamNameLen); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidStream, err)
	}
	if !expected.valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidExpectedVersion, int64(expected))
	}
	if len(events) == 0 {
		return nil, ErrNoEvents
	}
	r := getRequest()
	r.stream, r.expected, r.explicitIDs = stream, expected, true
	r.ids = slices.Grow(r.ids[:0], len(events))[:len(events)]
	size := record.BodyHeadSize(stream, len(events))
	for i := range events {
		e := &events[i]
		if err := checkName(e.Type, MaxEventTypeLen); err != nil {
			return nil, fmt.Errorf("%w: event %d: type %s", ErrInvalidEvent, i, err)
		}
		n := record.EventSize(e.Type, e.Metadata, e.Data)
		if n > s.opts.MaxEventSize {
			return nil, fmt.Errorf("%w: event %d is %d bytes, limit %d", ErrEventTooLarge, i, n, s.opts.MaxEventSize)
		}
		size += n
		if size > s.opts.MaxAppendSize {
			return nil, fmt.Errorf("%w: over %d bytes, limit %d", ErrAppendTooLarge, size, s.opts.MaxAppendSize)
		}
		// A zero ID stays zero, in the request, the frame and the index:
		// readers derive the event's ID from its position
		// (record.AssignedID).
		r.ids[i] = e.ID
		if e.ID.IsZero() {
			r.explicitIDs = false
		}
	}
	if err := checkDistinct(r.ids); err != nil {
		return nil, err
	}
	body := slices.Grow(r.body[:0], size)
	body = record.AppendBodyHeadOf(record.Version, body, stream, len(events))
	last := len(events) - 1
	for i := range events[:last] {
		e := &events[i]
		body = record.AppendEventOf(record.Version, body, r.ids[i], e.Type, e.Metadata, e.Data)
	}
	e := &events[last]
	body = record.AppendLastEventOf(record.Version, body, r.ids[last], e.Type, e.Metadata, e.Data)
	r.body = body
	return r, nil
}

// checkName checks a stream name or event type: not empty, at most max
// bytes, valid UTF-8, no NUL.
func checkName(name string, max int) error {
	switch {
	case name == "":
		return fmt.Errorf("is empty")
	case len(name) > max:
		return fmt.Errorf("is %d bytes, limit %d", len(name), max)
	case !utf8.ValidString(name):
		return fmt.Errorf("is not valid UTF-8")
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return fmt.Errorf("holds a NUL byte at %d", i)
		}
	}
	return nil
}

// checkDistinct refuses two events of one Append sharing an ID; zero IDs,
// which the store will assign, are all distinct.
func checkDistinct(ids []EventID) error {
	if len(ids) <= 16 {
		for i := range ids {
			for j := range i {
				if ids[i] == ids[j] && !ids[i].IsZero() {
					return fmt.Errorf("%w: events %d and %d share ID %v", ErrInvalidEvent, j, i, ids[i])
				}
			}
		}
		return nil
	}
	seen := make(map[EventID]int, len(ids))
	for i, id := range ids {
		if id.IsZero() {
			continue
		}
		if j, ok := seen[id]; ok {
			return fmt.Errorf("%w: events %d and %d share ID %v", ErrInvalidEvent, j, i, id)
		}
		seen[id] = i
	}
	return nil
}

// ReadStream returns up to limit events of stream (limit <= 0: all of them)
// from version from upward. A stream with no events reads as empty, with a
// nil error. It does not wait for the writer.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]RecordedEvent, error) {
	return s.index.readStream(ctx, stream, from, limit, false)
}

// ReadStreamBackward returns up to limit events of stream (limit <= 0: all
// of them) from version from downward; from = math.MaxUint64 starts at the
// stream's last event.
func (s *Store) ReadStreamBackward(ctx context.Context, stream string, from uint64, limit int) ([]RecordedEvent, error) {
	return s.index.readStream(ctx, stream, from, limit, true)
}

// ReadAll returns up to limit events of the whole log (limit <= 0: all of
// them) from position from upward, in commit order.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]RecordedEvent, error) {
	return s.index.readAll(ctx, from, limit, false)
}

// ReadAllBackward returns up to limit events of the whole log (limit <= 0:
// all of them) from position from downward; from = math.MaxUint64 starts at
// the last event.
func (s *Store) ReadAllBackward(ctx context.Context, from uint64, limit int) ([]RecordedEvent, error) {
	return s.index.readAll(ctx, from, limit, true)
}

// Subscribe returns every event from position from onward, in position
// order, and then, live, every event committed after, until ctx ends. It is
// for projections and process managers: each event comes exactly once, with
// no gap and no duplicate where reading the past turns into waiting for the
// new, however fast appends go.
//
// Nothing happens until the loop starts; each loop over the sequence is a
// subscription of its own, run on the loop's goroutine. A subscription
// reads the segment files, past and live alike, and is woken by the
// writer's publish when it has read everything: a slow loop body never
// slows the writer, is never dropped, and holds one read buffer (up to
// 1 MiB, or one Append's frame when that is larger), however far behind it
// falls. A read of the log (not of one stream) of 16,384 events or more,
// with more than one CPU, has two helper goroutines check the next chunks
// of frames, every other chunk each, while the loop's goroutine delivers
// the current one; it holds three 1 MiB buffers (each grown to a larger
// frame's size while it holds one), and the helpers end with the read, or
// at Close, which waits for them but not for the loop body.
//
// The sequence ends only when the loop breaks, or after yielding an error
// once: ctx.Err() when ctx ends, ErrClosed when the store closes, a
// *StorageError once the store has failed and everything it committed has
// been delivered, a *CorruptionError met while reading, or ErrBeyondHead
// when from is past the head. Under SyncInterval and SyncNone a
// subscription may see events that a machine crash then loses.
//
// Use the position of the last event handled, plus one, as from to resume.
// Keep that checkpoint with what the events built, in the same transaction,
// and a crash can neither skip an event nor apply one twice. Options filter
// events in the store, report checkpoints through long filtered-out runs,
// start at the head, and report catching up and falling behind.
func (s *Store) Subscribe(ctx context.Context, from uint64, opts ...SubscribeOption) iter.Seq2[RecordedEvent, error] {
	return s.index.sequence(ctx, subscribeAll, "", from, opts)
}

// SubscribeStream is Subscribe for one stream: every event of the stream
// from version from onward, and then, live, every one appended after, until
// ctx ends. The stream need not exist yet. from past the stream's event
// count yields ErrBeyondHead; an invalid stream name, ErrInvalidStream.
// Checkpoints and callbacks report stream versions.
func (s *Store) SubscribeStream(ctx context.Context, stream string, from uint64, opts ...SubscribeOption) iter.Seq2[RecordedEvent, error] {
	return s.index.sequence(ctx, subscribeStream, stream, from, opts)
}

// All returns the events from position from up to the head as it is when
// the loop starts, in position order, and ends: a replay or rebuild that
// holds one event at a time rather than a slice of them all. Events
// committed during the loop are not included. from equal to the head gives
// no event; from past it yields ErrBeyondHead, as for Subscribe. Filters and
// checkpoints apply as for Subscribe; FromEnd, OnCaughtUp and OnFellBehind
// do not, and yield ErrInvalidOptions. An error is yielded once and ends the
// sequence.
func (s *Store) All(ctx context.Context, from uint64, opts ...SubscribeOption) iter.Seq2[RecordedEvent, error] {
	return s.index.sequence(ctx, walkAll, "", from, opts)
}

// Stream is All for one stream: its events from version from up to its
// last event as of when the loop starts. EventTypes and OnCheckpoint apply.
// A stream with no events gives none from version 0; from past the
// stream's event count yields ErrBeyondHead.
func (s *Store) Stream(ctx context.Context, stream string, from uint64, opts ...SubscribeOption) iter.Seq2[RecordedEvent, error] {
	return s.index.sequence(ctx, walkStream, stream, from, opts)
}

// A SubscribeOption configures Subscribe, SubscribeStream, All or Stream.
// EventTypes given more than once add up; any other option given twice
// takes its last value.
type SubscribeOption func(*subscribeConfig)

// subscribeConfig is what the options set; see each option.
type subscribeConfig struct {
	prefix          *string
	types           map[string]struct{}
	fromEnd         bool
	caughtUp        func(uint64)
	behindLag       uint64
	fellBehind      func(position, head uint64)
	checkpointEvery uint64
	checkpoint      func(uint64)
	borrow          bool
	err             error // the first invalid option
}

func (c *subscribeConfig) invalid(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
}

// StreamPrefix keeps only the events of streams whose name starts with
// prefix. It applies to Subscribe and All.
func StreamPrefix(prefix string) SubscribeOption {
	return func(c *subscribeConfig) { c.prefix = &prefix }
}

// EventTypes keeps only events of the given types. At least one type must
// be given.
func EventTypes(types ...string) SubscribeOption {
	return func(c *subscribeConfig) {
		if len(types) == 0 {
			c.invalid("EventTypes without a type")
			return
		}
		if c.types == nil {
			c.types = make(map[string]struct{}, len(types))
		}
		for _, t := range types {
			c.types[t] = struct{}{}
		}
	}
}

// FromEnd starts a subscription at the head as it is when the loop starts,
// ignoring from: only events committed after that are delivered.
func FromEnd() SubscribeOption {
	return func(c *subscribeConfig) { c.fromEnd = true }
}

// OnCaughtUp has fn called, on the loop's goroutine, each time the
// subscription has delivered every event up to the head it was chasing: the
// head when it started, or when it last fell behind. fn gets the position
// (for a stream, the version) to resume from, which is that head. With
// OnFellBehind, reaching that head counts only if no more than its lag of
// events has been committed meanwhile; otherwise the subscription reads on,
// still behind. Without OnFellBehind a subscription never falls behind, and
// fn is called once.
func OnCaughtUp(fn func(position uint64)) SubscribeOption {
	return func(c *subscribeConfig) {
		if fn == nil {
			c.invalid("OnCaughtUp with a nil function")
		}
		c.caughtUp = fn
	}
}

// OnFellBehind has fn called, on the loop's goroutine, when a caught-up
// subscription finds more than lag events committed past the one it
// delivered last. fn gets the position to resume from and the head; the
// subscription reads on from the segment files, and OnCaughtUp is called
// again once it reaches that head. lag counts every event, filtered out or
// not (for a stream subscription, the stream's events), and must be at
// least 1.
func OnFellBehind(lag uint64, fn func(position, head uint64)) SubscribeOption {
	return func(c *subscribeConfig) {
		if lag == 0 || fn == nil {
			c.invalid("OnFellBehind needs a lag of at least 1 and a function")
		}
		c.behindLag, c.fellBehind = lag, fn
	}
}

// OnCheckpoint has fn called, on the loop's goroutine, after every `every`
// events the sequence passes over, delivered or filtered out, and each time
// it reaches the head it was reading to with events passed since the last
// call: at the end of All or Stream, and, for a live subscription, at most
// once per batch the writer publishes. fn gets the position (for a stream,
// the version) to resume from: every matching event before it has been
// yielded and its loop body has returned. It lets a subscriber whose filter
// skips long runs save its progress through them, as its events give it no
// position to save.
func OnCheckpoint(every uint64, fn func(position uint64)) SubscribeOption {
	return func(c *subscribeConfig) {
		if every == 0 || fn == nil {
			c.invalid("OnCheckpoint needs an interval of at least 1 and a function")
		}
		c.checkpointEvery, c.checkpoint = every, fn
	}
}

// BorrowData has each event's Data and Metadata share the loop's read
// buffer rather than own a copy: they are valid only until the loop body
// returns, and must not be kept or changed. Copy what outlives the
// iteration (bytes.Clone). It saves an allocation and a copy per event,
// which is most of the cost of a replay that decodes each event and drops
// it. It applies to Subscribe, SubscribeStream, All and Stream.
func BorrowData() SubscribeOption {
	return func(c *subscribeConfig) { c.borrow = true }
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	s.index.mu.RLock()
	st := Stats{
		Events:     s.index.next,
		Streams:    len(s.index.streams),
		Segments:   len(s.index.segments),
		IndexBytes: s.index.heap,
	}
	s.index.mu.RUnlock()
	if s.opts.ReadOnly {
		if err := s.follow.err.Load(); err != nil {
			st.Err = *err
		}
		return st
	}
	st.Appends = s.w.appends.Load()
	st.Batches = s.w.batches.Load()
	st.Syncs = s.w.syncs.Load()
	st.Synced = min(s.w.durable.Load(), st.Events)
	st.TornBytes = s.tornBytes
	st.QueueDepth = len(s.w.reqs)
	if err := s.w.sticky.Load(); err != nil {
		st.Err = *err
	}
	return st
}

// StreamInfo describes one stream.
type StreamInfo struct {
	Name string
	// Version is the version of the stream's last event: Count-1.
	Version uint64
	// Count is the number of events the stream holds.
	Count uint64
	// FirstPosition and LastPosition are the global positions of its first
	// and last events.
	FirstPosition, LastPosition uint64
	// Created and Updated are the commit times of its first and last
	// events, in UTC.
	Created, Updated time.Time
}

// StreamInfo describes stream as it stands, or returns an error matching
// ErrStreamNotFound if it holds no event. It reads the frames of the
// stream's first and last events.
func (s *Store) StreamInfo(ctx context.Context, stream string) (StreamInfo, error) {
	if err := ctx.Err(); err != nil {
		return StreamInfo{}, err
	}
	return s.index.streamInfo(ctx, stream)
}

// ListStreams yields every stream whose name starts with prefix (every
// stream for ""), sorted by name. The names are taken when the loop starts;
// each stream's figures when it is yielded. An error (ErrClosed, ctx's,
// a *CorruptionError) is yielded once and ends the loop.
func (s *Store) ListStreams(ctx context.Context, prefix string) iter.Seq2[StreamInfo, error] {
	return func(yield func(StreamInfo, error) bool) {
		names, err := s.index.streamNames(prefix)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			yield(StreamInfo{}, err)
			return
		}
		for _, name := range names {
			info, err := s.index.streamInfo(ctx, name)
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(StreamInfo{}, err)
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// BackupInfo describes a backup Backup made.
type BackupInfo struct {
	// Dir is the backup's directory.
	Dir string
	// Events is the number of events the backup holds: every event at a
	// position below it, and no other.
	Events uint64
	// Segments and Bytes count the segment files copied and their bytes.
	Segments int
	Bytes    int64
}

// Backup copies a consistent snapshot of the store into dir, which must be
// missing or empty (ErrBackupDirNotEmpty otherwise), while appends, reads
// and subscriptions go on. The snapshot is every event committed when
// Backup starts: it notes the head under the index's read lock, the only
// moment it holds up the writer, then copies each segment up to the end of
// the last frame below that head, with the index files it finds, and
// fsyncs the copies and the directory. The copy opens as a normal store. On
// error, dir may hold part of a copy.
func (s *Store) Backup(ctx context.Context, dir string) (BackupInfo, error) {
	parts, events, err := s.index.snapshot()
	if err != nil {
		return BackupInfo{}, err
	}
	info := BackupInfo{Dir: dir, Events: events, Segments: len(parts)}
	info.Bytes, err = copyLog(ctx, s.log.fs, parts, dir)
	if err != nil {
		if _, herr := s.index.head(); herr != nil {
			return BackupInfo{}, herr // closed under the copy
		}
		return BackupInfo{}, err
	}
	return info, nil
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	// Segments and IndexFiles count the files checked.
	Segments, IndexFiles int
	// Frames and Events count the frames that checked out and their events.
	Frames, Events uint64
	// Streams counts the streams those events belong to.
	Streams int
	// Bytes counts the bytes of segment files read.
	Bytes int64
	// TornBytes is the length of a torn write at the end of the log: what a
	// crash left of an append that was never acknowledged. It is not a
	// problem: Open truncates it.
	TornBytes int64
	// Problems lists every problem found, in log order.
	Problems []Problem
}

// OK reports whether Verify found no problem.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Problem is one thing wrong in a store's files.
type Problem struct {
	// Path is the segment or index file.
	Path string
	// Offset is where in the file the problem starts.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s at offset %d: %s", p.Path, p.Offset, p.Reason)
}

// Verify checks the store in dir without opening it for writing and without
// changing any file. It reads every segment whole, checks both checksums of
// every frame, the positions and every stream's versions, and every index
// file against the frames it lists, and reports each problem with its file
// and offset. progress, if not nil, is called as segment bytes are read,
// with the bytes read so far and the total.
//
// Verify takes the directory's lock while it runs: it returns an error
// matching ErrLocked if a Store has the directory open. Its error is for
// what kept it from checking (the lock, ctx, a file it could not read);
// what it found wrong is in the report.
func Verify(ctx context.Context, dir string, progress func(done, total int64)) (VerifyReport, error) {
	return verifyLog(ctx, vfs.OS(), dir, progress)
}

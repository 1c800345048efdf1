package eventstore

import (
	"errors"
	"fmt"
)

// Errors returned by Open.
var (
	// ErrLocked is returned by Open when another Store, in this process or
	// another, has the directory open.
	ErrLocked = errors.New("eventstore: directory is locked by another store")

	// ErrInvalidOptions is returned by Open when a field of Options is out
	// of range, and yielded by a subscription or walk given a SubscribeOption
	// that is invalid or does not apply to it; the message names the option.
	ErrInvalidOptions = errors.New("eventstore: invalid options")

	// ErrCorrupt is matched by every *CorruptionError: a checksum mismatch
	// or a malformed record that cannot be a torn write.
	ErrCorrupt = errors.New("eventstore: corrupt data")
)

// Errors returned by Append. All but ErrStorageFailed are request errors:
// they concern one call only, nothing of it was written, and the store goes
// on serving other calls.
var (
	// ErrWrongExpectedVersion is matched by every *WrongExpectedVersionError.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")

	// ErrInvalidStream is returned for an empty stream name, one longer than
	// MaxStreamNameLen bytes, one that is not valid UTF-8, or one holding a
	// NUL byte.
	ErrInvalidStream = errors.New("eventstore: invalid stream name")

	// ErrInvalidEvent is returned for an event without a type, a type longer
	// than MaxEventTypeLen bytes or not valid UTF-8, or two events of one
	// call sharing an ID.
	ErrInvalidEvent = errors.New("eventstore: invalid event")

	// ErrInvalidExpectedVersion is returned for an ExpectedVersion that is
	// neither one of the named values nor made by Exact.
	ErrInvalidExpectedVersion = errors.New("eventstore: invalid expected version")

	// ErrNoEvents is returned by Append called without events.
	ErrNoEvents = errors.New("eventstore: no events to append")

	// ErrEventTooLarge is returned, wrapped with the size and the limit, for
	// an event whose encoded size is over Options.MaxEventSize.
	ErrEventTooLarge = errors.New("eventstore: event too large")

	// ErrAppendTooLarge is returned, wrapped with the size and the limit,
	// for an Append whose events together encode to more than
	// Options.MaxAppendSize.
	ErrAppendTooLarge = errors.New("eventstore: append too large")

	// ErrOutcomeUnknown is returned, together with the context's error,
	// when the context ended after the writer took the request: the events
	// may or may not be committed. If every event had an ID from the
	// caller, appending the same events again settles it: the retry returns
	// the original result if the first attempt committed, and commits the
	// events if it did not. Events given the zero ID got IDs the caller
	// never learns, so a retry of those can only append them again.
	ErrOutcomeUnknown = errors.New("eventstore: append outcome unknown")

	// ErrNewerFormat is returned by Open, and by a read-only store that
	// follows a writing one, for a segment whose header names a format
	// version later than this release reads: a later release wrote it.
	// Nothing is changed. Upgrade every process that opens the store,
	// read-only ones first; a store that holds such a segment cannot go
	// back to an earlier release.
	ErrNewerFormat = errors.New("eventstore: segment written by a newer release")

	// ErrReadOnly is returned by Append on a Store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("eventstore: store is open read-only")

	// ErrStorageFailed is matched by every *StorageError. It is sticky: once
	// a write or fsync has failed, every later Append returns it until the
	// store is closed and opened again.
	ErrStorageFailed = errors.New("eventstore: storage failed")
)

// Errors yielded by subscriptions.
var (
	// ErrBeyondHead is yielded, wrapped with both figures, by Subscribe and
	// All when from is past the store's head, and by SubscribeStream and
	// Stream when from is past the stream's event count. A saved position
	// the store has not reached belongs to another store, or means the
	// store lost events the subscriber saw: possible only under
	// SyncInterval or SyncNone, and then detected only if the subscriber
	// resumes before new appends refill the lost positions. Waiting for the
	// head to get there would skip the events written meanwhile. To detect
	// the loss in every case, save the last event's ID with the position,
	// and check it with ReadAll(ctx, position-1, 1) on resume.
	ErrBeyondHead = errors.New("eventstore: subscription starts beyond the head")
)

// Errors returned by the operations that look inside a store.
var (
	// ErrStreamNotFound is returned by StreamInfo for a stream that holds
	// no event.
	ErrStreamNotFound = errors.New("eventstore: stream not found")

	// ErrBackupDirNotEmpty is returned by Backup when the directory it is
	// given holds anything: a backup never mixes with other files.
	ErrBackupDirNotEmpty = errors.New("eventstore: backup directory is not empty")
)

// Errors returned by every operation.
var (
	// ErrClosed is returned by any operation on a Store after Close has
	// begun, and by an Append the writer had accepted but not committed
	// when Close stopped it.
	ErrClosed = errors.New("eventstore: store is closed")
)

// WrongExpectedVersionError reports an Append whose expected version did not
// match the stream. Nothing of the Append was written.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	// Actual is the stream's version when the Append was checked: the
	// version of its last event, or -1 if it has none.
	Actual int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for stream %q: expected %v, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is reports whether target is ErrWrongExpectedVersion.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// CorruptionError reports bytes in a segment file that fail their checksum
// or do not decode, and that cannot be a torn write at the end of the log.
type CorruptionError struct {
	// Path is the segment file.
	Path string
	// Offset is the byte offset in the file where the bad record starts.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("eventstore: corrupt data in %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// StorageError reports the failed write, fsync or file operation that
// poisoned the store. Err is the cause, for errors.Is(err, syscall.ENOSPC)
// and the like.
type StorageError struct {
	Op   string
	Path string
	Err  error
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("eventstore: storage failed: %s %s: %v", e.Op, e.Path, e.Err)
}

// Is reports whether target is ErrStorageFailed.
func (e *StorageError) Is(target error) bool { return target == ErrStorageFailed }

// Unwrap returns the underlying cause.
func (e *StorageError) Unwrap() error { return e.Err }

package main

import (
	"encoding/binary"
	"fmt"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// bbolt keeps events in bucket "events" under their position (big-endian,
// from NextSequence), each stream's positions in a bucket of its own under
// their version, and each stream's last version in bucket "heads". An
// append reads the head, checks it and writes all three in one
// transaction.
func init() {
	register(spec{
		name:     "bbolt-batch",
		settings: "defaults (`NoSync` off, so each commit fdatasyncs); appends go through `db.Batch`, which commits concurrent calls together (`MaxBatchDelay` 10 ms, `MaxBatchSize` 1,000)",
		durable:  true,
		new:      func() backend { return &bboltBackend{batch: true} },
	})
	register(spec{
		name:     "bbolt-update",
		settings: "defaults (`NoSync` off); one `db.Update` transaction, and so one fdatasync, per append",
		durable:  true,
		new:      func() backend { return &bboltBackend{} },
	})
}

type bboltBackend struct {
	batch bool
	db    *bolt.DB
}

var (
	bucketEvents = []byte("events")
	bucketHeads  = []byte("heads")
)

func (b *bboltBackend) open(dir string) (err error) {
	b.db, err = bolt.Open(filepath.Join(dir, "bolt.db"), 0o644, nil)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketEvents); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketHeads)
		return err
	})
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (b *bboltBackend) append(stream string, expected int64, data []byte) error {
	fn := func(tx *bolt.Tx) error {
		heads := tx.Bucket(bucketHeads)
		actual := int64(-1)
		if v := heads.Get([]byte(stream)); v != nil {
			actual = int64(binary.BigEndian.Uint64(v))
		}
		if actual != expected {
			return errWrongVersion(stream, expected, actual)
		}
		events := tx.Bucket(bucketEvents)
		pos, err := events.NextSequence()
		if err != nil {
			return err
		}
		if err := events.Put(u64(pos), data); err != nil {
			return err
		}
		sb, err := tx.CreateBucketIfNotExists([]byte("s/" + stream))
		if err != nil {
			return err
		}
		if err := sb.Put(u64(uint64(expected+1)), u64(pos)); err != nil {
			return err
		}
		return heads.Put([]byte(stream), u64(uint64(expected+1)))
	}
	if b.batch {
		return b.db.Batch(fn)
	}
	return b.db.Update(fn)
}

func (b *bboltBackend) readAll() (n int, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) != eventSize {
				return fmt.Errorf("event %x: %d bytes", k, len(v))
			}
			n++
		}
		return nil
	})
	return n, err
}

func (b *bboltBackend) readStream(stream string) (n int, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket([]byte("s/" + stream))
		if sb == nil {
			return nil
		}
		events := tx.Bucket(bucketEvents)
		c := sb.Cursor()
		for k, pos := c.First(); k != nil; k, pos = c.Next() {
			if v := events.Get(pos); len(v) != eventSize {
				return fmt.Errorf("stream %s version %x: %d bytes", stream, k, len(v))
			}
			n++
		}
		return nil
	})
	return n, err
}

func (b *bboltBackend) close() error { return b.db.Close() }

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Pebble keeps an event under "e" and its position (big-endian), each
// stream's positions under "s", the stream and its version, and each
// stream's last version under "h" and the stream. Pebble has no
// conditional write, so an append holds its stream's lock (one of 256)
// while it reads the head and commits its batch; positions come from an
// atomic counter, recovered from the last "e" key on open.
func init() {
	register(spec{
		name:     "pebble",
		settings: "`github.com/cockroachdb/pebble/v2` defaults, every batch committed with `pebble.Sync` (the WAL is fsynced before the commit returns; concurrent commits share fsyncs in its commit pipeline)",
		durable:  true,
		new:      func() backend { return &pebbleBackend{} },
	})
}

type pebbleBackend struct {
	db    *pebble.DB
	next  atomic.Uint64
	locks [256]sync.Mutex
	seed  maphash.Seed
}

func eventKey(pos uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, pos) }
func headKey(stream string) []byte {
	return append([]byte{'h'}, stream...)
}
func streamKey(stream string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append(append([]byte{'s'}, stream...), 0), version)
}

func (b *pebbleBackend) open(dir string) error {
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		return err
	}
	b.db, b.seed = db, maphash.MakeSeed()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'e'}, UpperBound: []byte{'f'}})
	if err != nil {
		return err
	}
	if it.Last() {
		b.next.Store(binary.BigEndian.Uint64(it.Key()[1:]) + 1)
	}
	return it.Close()
}

func (b *pebbleBackend) append(stream string, expected int64, data []byte) error {
	l := &b.locks[maphash.String(b.seed, stream)%uint64(len(b.locks))]
	l.Lock()
	defer l.Unlock()
	actual := int64(-1)
	v, closer, err := b.db.Get(headKey(stream))
	switch {
	case err == nil:
		actual = int64(binary.BigEndian.Uint64(v))
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	if actual != expected {
		return errWrongVersion(stream, expected, actual)
	}
	pos := b.next.Add(1) - 1
	batch := b.db.NewBatch()
	defer batch.Close()
	version := uint64(expected + 1)
	if err := batch.Set(eventKey(pos), data, nil); err != nil {
		return err
	}
	if err := batch.Set(streamKey(stream, version), binary.BigEndian.AppendUint64(nil, pos), nil); err != nil {
		return err
	}
	if err := batch.Set(headKey(stream), binary.BigEndian.AppendUint64(nil, version), nil); err != nil {
		return err
	}
	return batch.Commit(pebble.Sync)
}

func (b *pebbleBackend) readAll() (int, error) {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'e'}, UpperBound: []byte{'f'}})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if len(it.Value()) != eventSize {
			it.Close()
			return n, fmt.Errorf("event of %d bytes", len(it.Value()))
		}
		n++
	}
	return n, it.Close()
}

func (b *pebbleBackend) readStream(stream string) (int, error) {
	lo := append(append([]byte{'s'}, stream...), 0)
	hi := append(append([]byte{'s'}, stream...), 1)
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		v, closer, err := b.db.Get(append([]byte{'e'}, it.Value()...))
		if err != nil {
			it.Close()
			return n, err
		}
		if len(v) != eventSize {
			err = fmt.Errorf("event of %d bytes", len(v))
		}
		closer.Close()
		if err != nil {
			it.Close()
			return n, err
		}
		n++
	}
	return n, it.Close()
}

func (b *pebbleBackend) close() error { return b.db.Close() }

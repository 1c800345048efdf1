package main

import (
	"context"

	"github.com/go-eventstore/eventstore"
)

func init() {
	register(spec{
		name:     "eventstore",
		settings: "defaults: `SyncAlways`, one fdatasync per group-committed batch before any caller in it is answered; read-all through `All` with `BorrowData` (each event read in place, as the other engines' iterators hand out theirs)",
		durable:  true,
		new:      func() backend { return &eventstoreBackend{} },
	})
}

type eventstoreBackend struct{ s *eventstore.Store }

func (b *eventstoreBackend) open(dir string) (err error) {
	b.s, err = eventstore.Open(dir, nil)
	return err
}

func (b *eventstoreBackend) append(stream string, expected int64, data []byte) error {
	ev := eventstore.NoStream
	if expected >= 0 {
		ev = eventstore.Exact(uint64(expected))
	}
	_, err := b.s.Append(context.Background(), stream, ev, eventstore.EventData{Type: "Bench", Data: data})
	return err
}

func (b *eventstoreBackend) readAll() (int, error) {
	n := 0
	// BorrowData: each event's bytes are read in place, as the other
	// engines' iterators hand out theirs, rather than copied.
	for _, err := range b.s.All(context.Background(), 0, eventstore.BorrowData()) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (b *eventstoreBackend) readStream(stream string) (int, error) {
	evs, err := b.s.ReadStream(context.Background(), stream, 0, 0)
	return len(evs), err
}

func (b *eventstoreBackend) close() error { return b.s.Close() }

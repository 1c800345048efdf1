package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS JetStream, embedded: a nats-server runs in this process with no
// listener, its JetStream file store in the run's directory, and the client
// talks to it over an in-process connection. All events are in one
// JetStream stream with the subjects ev.>; an event of stream s is a
// message on subject ev.s, so a stream's version is the index of its
// message among those on its subject, and the commit order is the
// JetStream sequence.
func init() {
	register(spec{
		name: "nats-sync-always",
		settings: "server option `SyncAlways` (config `sync_interval: always`): every message block write is fsynced before the publish is acknowledged; " +
			"one file-storage stream, one replica, synchronous publish with `Nats-Expected-Last-Subject-Sequence`",
		durable: true,
		new:     func() backend { return &natsBackend{syncAlways: true} },
	})
	register(spec{
		name: "nats-default",
		settings: "default `sync_interval` (2 minutes): the publish is acknowledged once the message is written to the OS, which fsyncs it in the background, " +
			"so a power loss can lose up to 2 minutes of acknowledged appends; otherwise as nats-sync-always",
		durable: false,
		new:     func() backend { return &natsBackend{} },
	})
}

const (
	natsStream  = "EV"
	natsSubject = "ev."
)

// natsLast is what the adapter knows of a benchmark stream's last message:
// its version and its JetStream sequence.
type natsLast struct {
	version int64
	seq     uint64
}

// natsBackend is the adapter for both NATS backends. It maps an expected
// version to the expected last subject sequence that the server checks:
// -1 maps to 0 (no message on the subject), version v to the sequence of
// the stream's message v, which the adapter keeps for each stream's last
// message, learned from publish acks or, on first use after open, from the
// server.
type natsBackend struct {
	syncAlways bool

	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	st  jetstream.Stream

	mu   sync.Mutex          // guards last
	last map[string]natsLast // by benchmark stream name

	readBytes int // the data the last read returned
}

func (b *natsBackend) open(dir string) error {
	opts := &server.Options{
		ServerName: "bench",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: b.syncAlways,
		NoLog:      true,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return errors.New("nats: server not ready after 30s")
	}
	b.srv = srv
	if b.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("bench")); err != nil {
		b.shutdown()
		return err
	}
	if b.js, err = jetstream.New(b.nc, jetstream.WithDefaultTimeout(time.Minute)); err != nil {
		b.shutdown()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.st, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        natsStream,
		Subjects:    []string{natsSubject + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		AllowDirect: true,
	})
	if err != nil {
		b.shutdown()
		return err
	}
	b.last = map[string]natsLast{}
	return nil
}

func natsSubjectOf(stream string) (string, error) {
	if stream == "" || strings.ContainsAny(stream, ".*> \t\r\n") {
		return "", fmt.Errorf("nats: stream name %q is not one subject token", stream)
	}
	return natsSubject + stream, nil
}

// lookup returns what the server holds as the stream's last message:
// version -1 when it has none.
func (b *natsBackend) lookup(ctx context.Context, subj string) (natsLast, error) {
	for {
		count, err := b.subjectCount(ctx, subj)
		if err != nil {
			return natsLast{}, err
		}
		if count == 0 {
			return natsLast{version: -1}, nil
		}
		m, err := b.st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return natsLast{}, err
		}
		// A message appended between the two requests would pair a count
		// with a later message's sequence: ask again until they agree.
		again, err := b.subjectCount(ctx, subj)
		if err != nil {
			return natsLast{}, err
		}
		if again == count {
			return natsLast{version: int64(count) - 1, seq: m.Sequence}, nil
		}
	}
}

// subjectCount is how many messages the server holds on subj.
func (b *natsBackend) subjectCount(ctx context.Context, subj string) (uint64, error) {
	info, err := b.st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subj], nil
}

// remember records l as stream's last message unless a later one is known.
func (b *natsBackend) remember(stream string, l natsLast) {
	b.mu.Lock()
	if old, ok := b.last[stream]; !ok || l.version > old.version {
		b.last[stream] = l
	}
	b.mu.Unlock()
}

func (b *natsBackend) forget(stream string) {
	b.mu.Lock()
	delete(b.last, stream)
	b.mu.Unlock()
}

func (b *natsBackend) append(stream string, expected int64, data []byte) error {
	subj, err := natsSubjectOf(stream)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var seq uint64 // expected last subject sequence; 0: no message on subj
	if expected >= 0 {
		b.mu.Lock()
		l, ok := b.last[stream]
		b.mu.Unlock()
		// What the adapter knows may be missing (after open) or old (after
		// a failed publish): then the server says what it holds, and
		// refuses the append through the header if that changes meanwhile.
		if !ok || l.version != expected {
			if l, err = b.lookup(ctx, subj); err != nil {
				return err
			}
			b.remember(stream, l)
		}
		if l.version != expected {
			return errWrongVersion(stream, expected, l.version)
		}
		seq = l.seq
	}
	ack, err := b.js.Publish(ctx, subj, data, jetstream.WithExpectLastSequencePerSubject(seq))
	if err != nil {
		// Whatever the error, the server may hold more than the adapter
		// knows: look it up on the next append.
		b.forget(stream)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			actual := int64(-2) // unknown
			if l, lerr := b.lookup(ctx, subj); lerr == nil {
				actual = l.version
			}
			return fmt.Errorf("%w (%v)", errWrongVersion(stream, expected, actual), err)
		}
		return err
	}
	b.remember(stream, natsLast{version: expected + 1, seq: ack.Sequence})
	return nil
}

// read reads, with an ordered consumer, the n messages on the subjects
// filter matches, in sequence order, and returns how many it read.
func (b *natsBackend) read(filter string, n uint64) (int, error) {
	if n == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cons, err := b.st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var got, size int
	var prev uint64
	for uint64(got) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return got, err
		}
		md, err := m.Metadata()
		if err != nil {
			return got, err
		}
		if md.Sequence.Stream <= prev {
			return got, fmt.Errorf("nats: sequence %d after %d", md.Sequence.Stream, prev)
		}
		prev = md.Sequence.Stream
		size += len(m.Data())
		got++
	}
	b.readBytes = size
	return got, nil
}

func (b *natsBackend) readAll() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := b.st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return b.read(natsSubject+">", info.State.Msgs)
}

func (b *natsBackend) readStream(stream string) (int, error) {
	subj, err := natsSubjectOf(stream)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := b.subjectCount(ctx, subj)
	if err != nil {
		return 0, err
	}
	return b.read(subj, n)
}

// shutdown closes the connection and stops the server, waiting for it.
func (b *natsBackend) shutdown() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

func (b *natsBackend) close() error {
	b.shutdown()
	return nil
}

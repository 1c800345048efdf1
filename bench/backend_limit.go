package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// The limits: what appending framed records to one file costs on this disk,
// with nothing else an event store does. Each record is a 12-byte header
// (length, CRC-32C, stream number) and the data. Both keep each stream's
// version and record offsets in memory, and rebuild them by scanning the
// file on open.
func init() {
	register(spec{
		name:     "limit",
		settings: "one goroutine drains every waiting append, writes them with one write and one fdatasync, then answers them: a perfect group commit",
		durable:  true,
		new:      func() backend { return &limitBackend{groupCommit: true} },
	})
	register(spec{
		name:     "limit-fsync-per-record",
		settings: "each caller, under a mutex, writes its record and fdatasyncs it",
		durable:  true,
		new:      func() backend { return &limitBackend{} },
	})
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const limitHeader = 12

type limitRequest struct {
	stream   string
	expected int64
	data     []byte
	reply    chan error
}

type limitBackend struct {
	groupCommit bool
	f           *os.File
	reqs        chan *limitRequest
	done        chan struct{}

	mu       sync.Mutex         // guards the fields below (and, without group commit, the file)
	end      int64              // bytes written
	ids      map[string]uint32  // stream number by name
	names    []string           // stream name by number
	versions map[string][]int64 // offsets of each stream's records, by version
}

func (b *limitBackend) open(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	b.f = f
	b.ids, b.versions = map[string]uint32{}, map[string][]int64{}
	// Stream names are kept in a side file, written when a stream first
	// appears; the benchmark's names are few.
	if names, err := os.ReadFile(filepath.Join(dir, "names")); err == nil {
		for _, n := range splitLines(names) {
			b.ids[n] = uint32(len(b.names))
			b.names = append(b.names, n)
		}
	}
	if err := b.scan(); err != nil {
		return err
	}
	if b.groupCommit {
		b.reqs, b.done = make(chan *limitRequest, 1024), make(chan struct{})
		go b.run()
	}
	return nil
}

// scan rebuilds the stream index from the file.
func (b *limitBackend) scan() error {
	r := bufio.NewReaderSize(io.NewSectionReader(b.f, 0, 1<<62), 1<<20)
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(r, buf[:limitHeader])
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
		length := binary.LittleEndian.Uint32(buf)
		sum := binary.LittleEndian.Uint32(buf[4:])
		stream := binary.LittleEndian.Uint32(buf[8:])
		if _, err := io.ReadFull(r, buf[:length]); err != nil {
			return err
		}
		if crc32.Checksum(buf[:length], castagnoli) != sum {
			return fmt.Errorf("record at %d: checksum mismatch", off)
		}
		name := b.names[stream]
		b.versions[name] = append(b.versions[name], off)
		off += limitHeader + int64(length)
	}
	b.end = off
	return nil
}

func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, string(b[:i]))
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// encode checks r's version and appends its record to buf. The caller
// holds mu.
func (b *limitBackend) encode(buf []byte, r *limitRequest) ([]byte, error) {
	offs := b.versions[r.stream]
	if int64(len(offs))-1 != r.expected {
		return buf, errWrongVersion(r.stream, r.expected, int64(len(offs))-1)
	}
	id, ok := b.ids[r.stream]
	if !ok {
		if err := b.addName(r.stream); err != nil {
			return buf, err
		}
		id = b.ids[r.stream]
	}
	b.versions[r.stream] = append(offs, b.end+int64(len(buf)))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.data)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(r.data, castagnoli))
	buf = binary.LittleEndian.AppendUint32(buf, id)
	return append(buf, r.data...), nil
}

// addName records a new stream name durably before its first record.
func (b *limitBackend) addName(name string) error {
	f, err := os.OpenFile(filepath.Join(filepath.Dir(b.f.Name()), "names"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(name + "\n"); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	b.ids[name] = uint32(len(b.names))
	b.names = append(b.names, name)
	return nil
}

func (b *limitBackend) append(stream string, expected int64, data []byte) error {
	r := &limitRequest{stream: stream, expected: expected, data: data}
	if b.groupCommit {
		r.reply = make(chan error, 1)
		b.reqs <- r
		return <-r.reply
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	buf, err := b.encode(nil, r)
	if err != nil {
		return err
	}
	return b.write(buf)
}

func (b *limitBackend) write(buf []byte) error {
	if _, err := b.f.WriteAt(buf, b.end); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(b.f.Fd())); err != nil {
		return err
	}
	b.end += int64(len(buf))
	return nil
}

// run is the group-commit writer.
func (b *limitBackend) run() {
	defer close(b.done)
	var batch []*limitRequest
	var errs []error
	var buf []byte
	for first := range b.reqs {
		batch, errs, buf = append(batch[:0], first), errs[:0], buf[:0]
	drain:
		for {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		b.mu.Lock()
		for _, r := range batch {
			var err error
			buf, err = b.encode(buf, r)
			errs = append(errs, err)
		}
		werr := b.write(buf)
		b.mu.Unlock()
		for i, r := range batch {
			if errs[i] == nil {
				errs[i] = werr
			}
			r.reply <- errs[i]
		}
	}
}

func (b *limitBackend) readAll() (int, error) {
	b.mu.Lock()
	end := b.end
	b.mu.Unlock()
	r := io.NewSectionReader(b.f, 0, end)
	buf := make([]byte, 1<<20)
	n, have, off := 0, 0, 0
	for {
		m, err := r.Read(buf[have:])
		have += m
		for have-off >= limitHeader {
			length := int(binary.LittleEndian.Uint32(buf[off:]))
			if have-off < limitHeader+length {
				break
			}
			data := buf[off+limitHeader : off+limitHeader+length]
			if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(buf[off+4:]) {
				return n, fmt.Errorf("checksum mismatch")
			}
			n++
			off += limitHeader + length
		}
		copy(buf, buf[off:have])
		have, off = have-off, 0
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (b *limitBackend) readStream(stream string) (int, error) {
	b.mu.Lock()
	offs := b.versions[stream]
	b.mu.Unlock()
	buf := make([]byte, limitHeader+eventSize)
	for _, off := range offs {
		if _, err := b.f.ReadAt(buf, off); err != nil {
			return 0, err
		}
		length := binary.LittleEndian.Uint32(buf)
		if crc32.Checksum(buf[limitHeader:limitHeader+length], castagnoli) != binary.LittleEndian.Uint32(buf[4:]) {
			return 0, fmt.Errorf("checksum mismatch")
		}
	}
	return len(offs), nil
}

func (b *limitBackend) close() error {
	if b.groupCommit {
		close(b.reqs)
		<-b.done
	}
	return b.f.Close()
}

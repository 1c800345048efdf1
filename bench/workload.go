package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The workload: events of eventSize bytes over numStreams streams. Stream k
// belongs to writer k % writers, which appends to its streams in turn, each
// time expecting the version it last wrote, so every version check is made
// and passes.
const (
	numStreams = 1000
	eventSize  = 200
)

// warmPasses is how many times each engine reads everything with its files
// in the page cache; the fastest pass is reported, and the median beside
// it. On a shared machine of two cores a pass can run at half speed for
// what else runs on the host: nine passes find the engine's own speed
// more surely than three did, and the median shows the spread.
const warmPasses = 9

func streamName(k int) string { return fmt.Sprintf("stream-%04d", k) }

// result is one row of the report: one backend, one writer count.
type result struct {
	Backend           string  `json:"backend"`
	Writers           int     `json:"writers"`
	Events            int     `json:"events"`
	AppendsPerSec     float64 `json:"appends_per_sec"`
	P50               int64   `json:"p50_ns"`
	P99               int64   `json:"p99_ns"`
	ReadAllWarm       float64 `json:"read_all_warm_per_sec"`        // the fastest pass
	ReadAllWarmMedian float64 `json:"read_all_warm_median_per_sec"` // the median pass
	ReadAllCold       float64 `json:"read_all_cold_per_sec"`
	ReadStream        int64   `json:"read_stream_ns"` // median over streams
	StreamEvents      int     `json:"stream_events"`
	Reopen            int64   `json:"reopen_ns"`
	CrashReopen       int64   `json:"crash_reopen_ns,omitempty"` // measured with -crash only
	CrashEvents       int     `json:"crash_events,omitempty"`    // what the crashed store held: its own run of the appends
	PeakRSS           int64   `json:"peak_rss_bytes"`
	DiskBytesPerEvent float64 `json:"disk_bytes_per_event"`
	Skipped           string  `json:"skipped,omitempty"`
}

// payloads is incompressible data the events take their bytes from, so no
// engine gains by compressing it.
var payloads = func() []byte {
	b := make([]byte, 1<<16)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

func payload(i int) []byte {
	off := (i * 7919) % (len(payloads) - eventSize)
	return payloads[off : off+eventSize]
}

// run measures one backend with the given number of writers on a fresh
// store in dir. The writers stop early, all at once, when maxTime has
// passed: the result then holds the events appended by then, and the reads
// are of those.
func run(name string, writers, events int, maxTime time.Duration, dir string) (result, error) {
	sp := specs[name]
	res := result{Backend: name, Writers: writers, Events: events}
	b := sp.new()
	if err := b.open(dir); err != nil {
		return res, fmt.Errorf("open: %w", err)
	}
	all, elapsed, err := appendAll(b, writers, events, maxTime)
	if err != nil {
		return res, err
	}
	events = len(all)
	res.Events = events
	res.AppendsPerSec = float64(events) / elapsed.Seconds()
	slices.Sort(all)
	res.P50, res.P99 = int64(all[len(all)/2]), int64(all[len(all)*99/100])

	readAll := func() (float64, error) {
		t := time.Now()
		n, err := b.readAll()
		if err != nil {
			return 0, fmt.Errorf("read all: %w", err)
		}
		if n != events {
			return 0, fmt.Errorf("read all: %d events, want %d", n, events)
		}
		return float64(n) / time.Since(t).Seconds(), nil
	}
	// Warm: the best of warmPasses passes, so that a pass slowed by what
	// the appends left behind (a collection, the scheduler) or by the
	// host does not stand for the engine; and the median.
	rates := make([]float64, 0, warmPasses)
	for range warmPasses {
		rate, err := readAll()
		if err != nil {
			return res, err
		}
		rates = append(rates, rate)
	}
	slices.Sort(rates)
	res.ReadAllWarm, res.ReadAllWarmMedian = rates[len(rates)-1], rates[len(rates)/2]
	var times []time.Duration
	// Streams 0 to 19 are each the first of some writer's, so they are
	// as long as any, also when a run stops early.
	for k := range 20 {
		t := time.Now()
		n, err := b.readStream(streamName(k))
		if err != nil {
			return res, fmt.Errorf("read stream: %w", err)
		}
		times = append(times, time.Since(t))
		res.StreamEvents = n
	}
	slices.Sort(times)
	res.ReadStream = int64(times[len(times)/2])
	if err := b.close(); err != nil {
		return res, fmt.Errorf("close: %w", err)
	}
	size, err := diskBytes(dir)
	if err != nil {
		return res, err
	}
	res.DiskBytesPerEvent = float64(size) / float64(events)

	// Reopen after a clean close, with the files in the page cache.
	b = sp.new()
	t := time.Now()
	if err := b.open(dir); err != nil {
		return res, fmt.Errorf("reopen: %w", err)
	}
	res.Reopen = int64(time.Since(t))
	if err := b.close(); err != nil {
		return res, err
	}

	// Read everything with the files evicted from the page cache.
	if err := evict(dir); err != nil {
		return res, err
	}
	b = sp.new()
	if err := b.open(dir); err != nil {
		return res, fmt.Errorf("reopen: %w", err)
	}
	if res.ReadAllCold, err = readAll(); err != nil {
		return res, err
	}
	return res, b.close()
}

// appendAll runs the workload's appends on b: events appends from writers
// goroutines, which stop early, all at once, when maxTime has passed. It
// returns the latency of each acknowledged append, and how long they took.
func appendAll(b backend, writers, events int, maxTime time.Duration) ([]time.Duration, time.Duration, error) {
	lat := make([][]time.Duration, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	var stop atomic.Bool
	timer := time.AfterFunc(maxTime, func() { stop.Store(true) })
	defer timer.Stop()
	for w := range writers {
		n := events / writers
		if w < events%writers {
			n++
		}
		var mine []int
		for k := w; k < numStreams; k += writers {
			mine = append(mine, k)
		}
		lat[w] = make([]time.Duration, 0, n)
		wg.Go(func() {
			versions := make([]int64, len(mine))
			for i := range versions {
				versions[i] = -1
			}
			for i := range n {
				if stop.Load() {
					return
				}
				j := i % len(mine)
				t := time.Now()
				if err := b.append(streamName(mine[j]), versions[j], payload(i*writers+w)); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
				versions[j]++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, fmt.Errorf("append: %w", err)
	}
	return slices.Concat(lat...), elapsed, nil
}

// crashAppend is the first half of the crash measurement, run in a child
// process of its own: it runs the appends on a fresh store in dir, writes
// how many were acknowledged to w, and, with none in flight, kills its own
// process with SIGKILL, so that the store is never closed.
func crashAppend(name string, writers, events int, maxTime time.Duration, dir string, w io.Writer) error {
	b := specs[name].new()
	if err := b.open(dir); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	all, _, err := appendAll(b, writers, events, maxTime)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(result{Backend: name, Writers: writers, Events: len(all)}); err != nil {
		return err
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		return err
	}
	select {} // the signal ends the process
}

// crashReopen is the second half, in another child process: it times
// opening the store the killed process left in dir, and checks that it
// holds every one of the events appends acknowledged.
func crashReopen(name string, writers, events int, dir string) (result, error) {
	res := result{Backend: name, Writers: writers, Events: events}
	b := specs[name].new()
	t := time.Now()
	if err := b.open(dir); err != nil {
		return res, fmt.Errorf("reopen after the crash: %w", err)
	}
	res.CrashReopen = int64(time.Since(t))
	n, err := b.readAll()
	if err != nil {
		return res, fmt.Errorf("read all after the crash: %w", err)
	}
	if n != events {
		return res, fmt.Errorf("after the crash the store holds %d events; %d appends were acknowledged", n, events)
	}
	return res, b.close()
}

// diskBytes is the space the files under dir take on disk.
func diskBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// evict drops the files under dir from the page cache: each is fsynced and
// then advised away, which needs no privilege.
func evict(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/go-eventstore/eventstore"
	"github.com/go-eventstore/eventstore/internal/record"
)

// bin is the eventstore command, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventstore-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "eventstore")
	build := exec.Command(goTool(), "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the command:", err)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		goleak.VerifyTestMain(exitCode{&code, m})
	}()
	os.Exit(code)
}

// goTool returns the go command: the one on PATH, or the one beside the
// GOROOT the tests run under.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// exitCode lets TestMain remove the binary before it exits.
type exitCode struct {
	code *int
	m    *testing.M
}

func (e exitCode) Run() int { *e.code = e.m.Run(); return *e.code }

// run runs the command and returns its standard output and error and its
// exit status.
func run(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), code
}

// mustRun runs the command and requires it to succeed.
func mustRun(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, stdin, args...)
	require.Zero(t, code, "eventstore %s: %s", strings.Join(args, " "), errOut)
	return out
}

// sample writes a store whose events hold every kind of data an export must
// carry: compact JSON, JSON with spaces, JSON scalars and null, binary,
// empty data, metadata, and multi-event appends over several streams and
// segments.
func sample(t *testing.T) string {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 2048})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	datas := [][]byte{
		[]byte(`{"sku":"book","qty":1}`), []byte(`{"a": [1, 2]}`), []byte(`"text"`), []byte(`null`), []byte(`12.50`),
		{0, 1, 2, 0xff, '\n'}, nil, []byte(`<tag>&amp;</tag>`), []byte(`{"html":"<b>&</b>"}`), []byte("line\nbreak"),
	}
	ctx := context.Background()
	for i := range 120 {
		n := 1 + i%3
		var evs []eventstore.EventData
		for k := range n {
			e := eventstore.EventData{ID: eventstore.NewEventID(), Type: fmt.Sprintf("Type%d", (i+k)%4), Data: datas[(i+k)%len(datas)]}
			if i%5 == 0 {
				e.Metadata = []byte(`{"trace":"abc"}`)
			} else if i%7 == 0 {
				e.Metadata = []byte{9, 9}
			}
			evs = append(evs, e)
		}
		_, err := s.Append(ctx, fmt.Sprintf("order-%d", i%9), eventstore.Any, evs...)
		require.NoError(t, err)
	}
	return dir
}

// withoutTimes drops each line's commit time, the one field an import does
// not carry over.
func withoutTimes(t *testing.T, export string) []string {
	var lines []string
	for _, line := range strings.Split(strings.TrimSuffix(export, "\n"), "\n") {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		require.Contains(t, m, "time")
		i := strings.Index(line, `,"time":`)
		require.Positive(t, i)
		end := i + len(`,"time":`) + len(m["time"])
		lines = append(lines, line[:i]+line[end:])
	}
	return lines
}

func TestExportImport_RoundTrip(t *testing.T) {
	src := sample(t)
	exported, quiet, code := run(t, nil, "export", src)
	require.Zero(t, code, quiet)
	assert.Empty(t, quiet, "no progress bar when stderr is not a terminal")
	lines := strings.Split(strings.TrimSuffix(exported, "\n"), "\n")
	require.Len(t, lines, 240)
	assert.Contains(t, exported, `"data":{"sku":"book","qty":1}`, "compact JSON stays JSON")
	assert.Contains(t, exported, `"data":{"html":"<b>&</b>"}`, "and is not HTML-escaped")
	assert.Contains(t, exported, `"data_base64":"eyJhIjogWzEsIDJdfQ=="`, "JSON with spaces goes as base64, to come back byte for byte")

	dst := filepath.Join(t.TempDir(), "copy")
	_, errOut, code := run(t, []byte(exported), "import", dst)
	require.Zero(t, code, errOut)
	assert.Contains(t, errOut, "read 240 events: 240 appended, 0 already there")
	again := mustRun(t, nil, "export", dst)
	assert.Equal(t, withoutTimes(t, exported), withoutTimes(t, again), "export, import, export: the same but for commit times")

	// Every event's bytes, ID, stream, version and position, through the library.
	a, err := eventstore.Open(src, &eventstore.Options{ReadOnly: true})
	require.NoError(t, err)
	defer a.Close()
	b, err := eventstore.Open(dst, &eventstore.Options{ReadOnly: true})
	require.NoError(t, err)
	defer b.Close()
	want, err := a.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	got, err := b.ReadAll(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, []any{w.ID, w.Stream, w.StreamVersion, w.Position, w.Type, w.Data, w.Metadata},
			[]any{g.ID, g.Stream, g.StreamVersion, g.Position, g.Type, g.Data, g.Metadata}, "event %d", i)
	}
	require.NoError(t, b.Close())

	// A second run, and a run cut short then finished, append nothing twice.
	_, errOut, code = run(t, []byte(exported), "import", dst)
	require.Zero(t, code, errOut)
	assert.Contains(t, errOut, "read 240 events: 0 appended, 240 already there")
	part := filepath.Join(t.TempDir(), "part")
	mustRun(t, []byte(strings.Join(lines[:100], "\n")+"\n"), "import", part)
	_, errOut, code = run(t, []byte(exported), "import", part)
	require.Zero(t, code, errOut)
	assert.Contains(t, errOut, "read 240 events: 140 appended, 100 already there")
	assert.Equal(t, withoutTimes(t, exported), withoutTimes(t, mustRun(t, nil, "export", part)))

	// An export from the middle, and bad input.
	tail := mustRun(t, nil, "export", src, "--from", "200")
	assert.Len(t, strings.Split(strings.TrimSuffix(tail, "\n"), "\n"), 40)
	_, errOut, code = run(t, []byte("{not json\n"), "import", filepath.Join(t.TempDir(), "bad"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "line 1")
	conflict := strings.Replace(lines[0], `"version":0`, `"version":5`, 1)
	_, errOut, code = run(t, []byte(conflict+"\n"), "import", filepath.Join(t.TempDir(), "gap"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "wrong expected version")
}

// info reports the format versions the segments' headers hold: a store
// written in version 1 says 1, and once it has rolled over to a new
// segment, 1 and the current version, 4.
func TestInfoFormatVersionOfAnUpgradedStore(t *testing.T) {
	dir := t.TempDir()
	seg := record.AppendSegmentHeader(nil, 0, 0)
	seg[4] = 1 // version 1, with the header checksum redone
	binary.LittleEndian.PutUint32(seg[20:24], record.Checksum(seg[:20]))
	body := record.AppendBodyHead(nil, "old", 1)
	body = record.AppendEventOf(1, body, [record.IDSize]byte{1}, "t", nil, []byte("written in version 1"))
	seg = record.AppendFrame(seg, 0, 0, time.Now().UnixNano(), 0, body)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000000.seg"), seg, 0o644))

	assert.Regexp(t, `(?m)^format version\s+1$`, mustRun(t, nil, "info", dir))

	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 4096})
	require.NoError(t, err)
	for i := range 40 {
		_, err := s.Append(context.Background(), "new", eventstore.Any, eventstore.EventData{Type: "t", Data: bytes.Repeat([]byte{byte(i)}, 200)})
		require.NoError(t, err)
	}
	require.Greater(t, s.Stats().Segments, 1, "the store rolled over")
	require.NoError(t, s.Close())
	info := mustRun(t, nil, "info", dir)
	assert.Regexp(t, fmt.Sprintf(`(?m)^format version\s+1, %d$`, record.Version), info)
	assert.Regexp(t, `(?m)^events\s+41$`, info)

	// A last segment still being created, with no header yet, has no
	// version to show, and info still reports the rest.
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 41)), nil, 0o644))
	info = mustRun(t, nil, "info", dir)
	assert.Regexp(t, fmt.Sprintf(`(?m)^format version\s+1, %d$`, record.Version), info)
	assert.Regexp(t, fmt.Sprintf(`(?m)^segments\s+%d\s`, len(segs)+1), info)
}

func TestInfoStreamsRead(t *testing.T) {
	src := sample(t)
	info := mustRun(t, nil, "info", src)
	assert.Regexp(t, `(?m)^events\s+240$`, info)
	assert.Regexp(t, `(?m)^streams\s+9$`, info)
	assert.Regexp(t, fmt.Sprintf(`(?m)^format version\s+%d$`, record.Version), info)
	assert.Regexp(t, `(?m)^segments\s+\d+\s+\d`, info)

	s, err := eventstore.Open(src, &eventstore.Options{ReadOnly: true})
	require.NoError(t, err)
	want, err := s.StreamInfo(context.Background(), "order-1")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	streams := mustRun(t, nil, "streams", src, "--prefix", "order-1")
	rows := strings.Split(strings.TrimSpace(streams), "\n")
	require.Len(t, rows, 2, streams)
	assert.Regexp(t, fmt.Sprintf(`^order-1\s+%d\s+%d\s+%s$`, want.Version, want.Count, want.Updated.Format(time.RFC3339)), rows[1])

	out := mustRun(t, nil, "read", src, "order-1", "--json", "--from", "2", "--limit", "3")
	var versions []uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e jsonEvent
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		assert.Equal(t, "order-1", e.Stream)
		versions = append(versions, e.Version)
	}
	assert.Equal(t, []uint64{2, 3, 4}, versions)
	table := mustRun(t, nil, "read", src, "order-1", "--backward", "--limit", "2")
	rows = strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, rows, 3)
	assert.Regexp(t, fmt.Sprintf(`^%d\s+order-1\s+%d\s`, want.LastPosition, want.Version), rows[1], "newest first")

	_, errOut, code := run(t, nil, "info", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no store at")
	_, errOut, code = run(t, nil, "read", src, "order-99")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "stream not found")

	// Not a store: every command that opens one says so and writes nothing.
	notStore := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notStore, "readme.txt"), []byte("x"), 0o644))
	for _, args := range [][]string{{"info", notStore}, {"export", notStore}, {"backup", notStore, filepath.Join(t.TempDir(), "b")}} {
		_, errOut, code := run(t, nil, args...)
		assert.Equal(t, 1, code, args)
		assert.Contains(t, errOut, "no store at", args)
	}
	entries, err := os.ReadDir(notStore)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing written")
}

func TestVerify_FindsABitFlipAndExits1(t *testing.T) {
	src := sample(t)
	out, quiet, code := run(t, nil, "verify", src)
	require.Zero(t, code, quiet)
	assert.Empty(t, quiet, "no progress bar when stderr is not a terminal")
	assert.Contains(t, out, "240 events")
	assert.Contains(t, out, "no problems found")

	segs, err := filepath.Glob(filepath.Join(src, "*.seg"))
	require.NoError(t, err)
	victim := segs[2]
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	b[200] ^= 0x08
	require.NoError(t, os.WriteFile(victim, b, 0o644))
	out, _, code = run(t, nil, "verify", src)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "problem: "+victim+" at offset")
	assert.Regexp(t, `\d+ problems found`, out)
	after, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, b, after, "verify changes nothing")
}

// TestBackup_HoldsExactlyTheReportedPrefix backs up a store with the
// command, and shows the commands that need the lock refusing a store a
// running process holds open, plainly.
func TestBackup_HoldsExactlyTheReportedPrefix(t *testing.T) {
	src := sample(t)
	dest := filepath.Join(t.TempDir(), "backup")
	out := mustRun(t, nil, "backup", src, dest)
	assert.Contains(t, out, "backed up 240 events")
	assert.Equal(t, mustRun(t, nil, "export", src), mustRun(t, nil, "export", dest))
	_, errOut, code := run(t, nil, "backup", src, dest)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "not empty")

	s, err := eventstore.Open(src, nil)
	require.NoError(t, err)
	defer s.Close()
	for _, args := range [][]string{{"backup", src, filepath.Join(t.TempDir(), "b")}, {"import", src}, {"verify", src}} {
		_, errOut, code := run(t, nil, args...)
		assert.Equal(t, 1, code, args)
		assert.Contains(t, errOut, "open in another process", args)
	}
	assert.Contains(t, mustRun(t, nil, "info", src), "240", "reading commands work beside it")
}

// TestTail_FollowSeesNewEvents starts tail -f on a store another process
// (this test) holds open and appends to, and interrupts it.
func TestTail_FollowSeesNewEvents(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, &eventstore.Options{SegmentSize: 1024})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	for i := range 15 {
		_, err := s.Append(ctx, fmt.Sprint("s", i%2), eventstore.Any, eventstore.EventData{Type: fmt.Sprint("T", i%2), Data: []byte(fmt.Sprint("old-", i))})
		require.NoError(t, err)
	}

	tail := exec.Command(bin, "tail", dir, "-f", "--json", "--type", "T1", "-n", "3")
	stdout, err := tail.StdoutPipe()
	require.NoError(t, err)
	errOut := &lockedBuffer{}
	tail.Stderr = errOut
	require.NoError(t, tail.Start())
	lines := make(chan jsonEvent)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e jsonEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				lines <- e
			}
		}
	}()
	next := func() jsonEvent {
		select {
		case e, ok := <-lines:
			require.True(t, ok, "tail ended: %s", errOut)
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("tail printed nothing new")
		}
		return jsonEvent{}
	}
	for _, want := range []string{"old-9", "old-11", "old-13"} {
		assert.Equal(t, want, string(next().DataBase64))
	}
	for i := range 40 { // past a segment roll-over or two
		_, err := s.Append(ctx, "s1", eventstore.Any, eventstore.EventData{Type: fmt.Sprint("T", i%2), Data: []byte(fmt.Sprint("new-", i))})
		require.NoError(t, err)
	}
	for i := 1; i < 40; i += 2 {
		e := next()
		assert.Equal(t, fmt.Sprint("new-", i), string(e.DataBase64))
		assert.Equal(t, "T1", e.Type)
	}
	require.NoError(t, tail.Process.Signal(syscall.SIGINT))
	for range lines {
	}
	require.NoError(t, tail.Wait(), "an interrupt is the normal end of -f: %s", errOut)
}

// lockedBuffer is a buffer a child's output can be copied into while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestExport_DataRoundTripsByteForByte writes data that is JSON in every
// corner of the grammar (and invalid UTF-8 in a string) through an export
// line and back.
func TestExport_DataRoundTripsByteForByte(t *testing.T) {
	cases := []string{
		`{"a":1}`, `"plain"`, `"\u2028"`, "\"\u2028\"", `"<>&"`, "\"\xff\xfe\"", `1.0`, `-0`, `1E5`,
		`{"a":1,"a":2}`, `[1,2]`, `"\/"`, "\"a\tb\"", `true`, `null`, "\"\x7f\"", "\"\xed\xa0\x80\"",
	}
	for _, data := range cases {
		e := eventstore.RecordedEvent{ID: eventstore.NewEventID(), Type: "t", Stream: "s", Data: []byte(data)}
		var buf bytes.Buffer
		w := newJSONWriter(bufio.NewWriter(&buf))
		if err := w.add(e); err != nil {
			t.Errorf("%q: %v", data, err)
			continue
		}
		w.Flush()
		var j jsonEvent
		if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
			t.Errorf("%q: line %q: %v", data, buf.String(), err)
			continue
		}
		got, err := j.eventData()
		if err != nil {
			t.Errorf("%q: %v", data, err)
			continue
		}
		assert.Equal(t, data, string(got.Data), "line %s", buf.String())
	}
}

// TestRead_ControlCharactersKeepTheTable puts a tab in a stream name and a
// newline in a type: the table shows them quoted, one row an event.
func TestRead_ControlCharactersKeepTheTable(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, nil)
	require.NoError(t, err)
	_, err = s.Append(context.Background(), "a\tb", eventstore.NoStream, eventstore.EventData{Type: "x\ny", Data: []byte("d")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rows := strings.Split(strings.TrimSpace(mustRun(t, nil, "read", dir, "a\tb")), "\n")
	require.Len(t, rows, 2)
	assert.Regexp(t, `^0\s+"a\\tb"\s+0\s+"x\\ny"\s`, rows[1])
	rows = strings.Split(strings.TrimSpace(mustRun(t, nil, "streams", dir)), "\n")
	require.Len(t, rows, 2)
	assert.Regexp(t, `^"a\\tb"\s+0\s+1\s`, rows[1])
}

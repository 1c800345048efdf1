package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/go-eventstore/eventstore"
)

// jsonEvent is one line of an export. Data and metadata go in as JSON when
// they are JSON already, in the compact form the encoder would write (so
// that they come back byte for byte), and as base64 otherwise; empty ones
// are left out.
type jsonEvent struct {
	Position       uint64          `json:"position"`
	Stream         string          `json:"stream"`
	Version        uint64          `json:"version"`
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Time           time.Time       `json:"time"`
	Data           json.RawMessage `json:"data,omitempty"`
	DataBase64     []byte          `json:"data_base64,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	MetadataBase64 []byte          `json:"metadata_base64,omitempty"`
}

// asJSON splits b into the JSON form or the base64 one.
func asJSON(b []byte) (json.RawMessage, []byte) {
	if len(b) == 0 {
		return nil, nil
	}
	var compact bytes.Buffer
	// Valid JSON may hold invalid UTF-8 in a string, which other JSON tools
	// would not keep: that goes as base64 too.
	if b[0] != 'n' && utf8.Valid(b) && json.Valid(b) && json.Compact(&compact, b) == nil && bytes.Equal(compact.Bytes(), b) {
		return json.RawMessage(b), nil
	}
	return nil, b
}

func toJSON(e eventstore.RecordedEvent) jsonEvent {
	j := jsonEvent{Position: e.Position, Stream: e.Stream, Version: e.StreamVersion, ID: e.ID.String(), Type: e.Type, Time: e.Timestamp}
	j.Data, j.DataBase64 = asJSON(e.Data)
	j.Metadata, j.MetadataBase64 = asJSON(e.Metadata)
	return j
}

func (j *jsonEvent) eventData() (eventstore.EventData, error) {
	id, err := eventstore.ParseEventID(j.ID)
	if err != nil {
		return eventstore.EventData{}, err
	}
	if j.Data != nil && j.DataBase64 != nil || j.Metadata != nil && j.MetadataBase64 != nil {
		return eventstore.EventData{}, errors.New("both JSON and base64 forms given")
	}
	e := eventstore.EventData{ID: id, Type: j.Type, Data: j.DataBase64, Metadata: j.MetadataBase64}
	if j.Data != nil {
		e.Data = j.Data
	}
	if j.Metadata != nil {
		e.Metadata = j.Metadata
	}
	return e, nil
}

// jsonWriter writes events as JSON lines.
type jsonWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newJSONWriter(w *bufio.Writer) *jsonWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep data's bytes as they are
	return &jsonWriter{w: w, enc: enc}
}

func (j *jsonWriter) add(e eventstore.RecordedEvent) error { return j.enc.Encode(toJSON(e)) }
func (j *jsonWriter) Flush() error                         { return j.w.Flush() }

func exportCmd() *cobra.Command {
	var from uint64
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Every event, as one JSON object per line on standard output",
		Long: "Every event from --from up to the head when the export starts, as one JSON object per line. " +
			"Data and metadata appear as JSON when they are compact JSON, as base64 (data_base64, metadata_base64) otherwise.",
		Args: cobra.ExactArgs(1),
		RunE: withStore(readOnly, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			head := s.Stats().Events
			bar := newProgress(int64(head-min(from, head)), "export", false)
			out := newJSONWriter(bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20))
			n := int64(0)
			for e, err := range s.All(cmd.Context(), from) {
				if err != nil {
					return err
				}
				if err := out.add(e); err != nil {
					return err
				}
				if n++; n%1024 == 0 {
					setProgress(bar, n)
				}
			}
			finishProgress(bar)
			return out.Flush()
		}),
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first position to export")
	return cmd
}

func importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import DIR",
		Short: "Append exported events, read from standard input, to a store",
		Long: "Append the events of an export, read from standard input, to the store in DIR (created if missing), " +
			"keeping their streams, versions, types, IDs and order. Each event must continue its stream at the version " +
			"it had; an event already there with the same ID is skipped, so a second run of the same import, or one " +
			"cut short, appends only what is missing. The events are synced once, at the end.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			// Group commit does nothing for one caller: sync once at the
			// end instead (Close syncs). An import cut short is run again.
			// The largest events any store takes, so that every export
			// imports whatever its store's limits were.
			s, err := open(args[0], &eventstore.Options{Sync: eventstore.SyncNone, MaxEventSize: 64 << 20, MaxAppendSize: 255 << 20})
			if err != nil {
				return err
			}
			defer closeStore(s, &err)
			var total int64 = -1
			if fi, err := os.Stdin.Stat(); err == nil && fi.Mode().IsRegular() {
				total = fi.Size()
			}
			bar := newProgress(total, "import", true)
			before := s.Stats().Events
			read, err := importEvents(cmd, s, cmd.InOrStdin(), bar)
			if err != nil {
				return err
			}
			finishProgress(bar)
			added := s.Stats().Events - before
			fmt.Fprintf(cmd.ErrOrStderr(), "read %d events: %d appended, %d already there\n", read, added, uint64(read)-added)
			return nil
		},
	}
}

// importEvents appends the events read from r, each run of one stream's
// consecutive events (up to a limit) in one Append.
func importEvents(cmd *cobra.Command, s *eventstore.Store, r io.Reader, bar *progressbar.ProgressBar) (int, error) {
	const maxGroup, maxGroupBytes = 256, 4 << 20
	in := bufio.NewReaderSize(r, 1<<20)
	var group []eventstore.EventData
	var stream string
	var first uint64 // the group's first version
	var line, groupLine, groupBytes, read int
	appendAt := func(version uint64, evs []eventstore.EventData) error {
		expected := eventstore.NoStream
		if version > 0 {
			expected = eventstore.Exact(version - 1)
		}
		res, err := s.Append(cmd.Context(), stream, expected, evs...)
		if err != nil {
			return err
		}
		if want := version + uint64(len(evs)) - 1; res.StreamVersion != want {
			return fmt.Errorf("stream %q: events went to version %d, not %d", stream, res.StreamVersion, want)
		}
		return nil
	}
	flushGroup := func() error {
		if len(group) == 0 {
			return nil
		}
		err := appendAt(first, group)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && len(group) > 1 {
			// Part of the group is there already, from an import cut
			// short: each event is then either there, with its ID, or next.
			err = nil
			for i := range group {
				if err = appendAt(first+uint64(i), group[i:i+1]); err != nil {
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("line %d: stream %q at version %d: %w", groupLine, stream, first, err)
		}
		group, groupBytes = group[:0], 0
		return nil
	}
	for {
		b, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			line++
			if bar != nil {
				_ = bar.Add(len(b))
			}
			var j jsonEvent
			if err := json.Unmarshal(b, &j); err != nil {
				return read, fmt.Errorf("line %d: %w", line, err)
			}
			e, err := j.eventData()
			if err != nil {
				return read, fmt.Errorf("line %d: %w", line, err)
			}
			if len(group) > 0 && (j.Stream != stream || j.Version != first+uint64(len(group)) ||
				len(group) == maxGroup || groupBytes+len(e.Data)+len(e.Metadata) > maxGroupBytes) {
				if err := flushGroup(); err != nil {
					return read, err
				}
			}
			if len(group) == 0 {
				stream, first, groupLine = j.Stream, j.Version, line
			}
			group = append(group, e)
			groupBytes += len(e.Data) + len(e.Metadata)
			read++
		}
		if err == io.EOF {
			return read, flushGroup()
		}
		if err != nil {
			return read, err
		}
	}
}

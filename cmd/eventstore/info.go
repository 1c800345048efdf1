package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/go-eventstore/eventstore"
	"github.com/go-eventstore/eventstore/internal/record"
)

func infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info DIR",
		Short: "Counts, sizes, segments, head position and format version",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(readOnly, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			dir := args[0]
			st := s.Stats()
			files, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			var segs, idxs int
			var segBytes, idxBytes int64
			var versions []uint8 // the segments' format versions, as their headers say
			for _, f := range files {
				fi, err := f.Info()
				if err != nil {
					return err
				}
				switch filepath.Ext(f.Name()) {
				case ".seg":
					segs++
					segBytes += fi.Size()
					// A segment without a whole header yet is one being
					// created, which Open accepts as the last: it has no
					// version to show. Open has checked the others.
					if v, ok := segmentVersion(filepath.Join(dir, f.Name())); ok && !slices.Contains(versions, v) {
						versions = append(versions, v)
					}
				case ".idx":
					idxs++
					idxBytes += fi.Size()
				}
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "directory\t%s\n", dir)
			slices.Sort(versions)
			fmt.Fprintf(w, "format version\t%s\n", formatVersions(versions))
			fmt.Fprintf(w, "events\t%d\n", st.Events)
			fmt.Fprintf(w, "head position\t%d\t(the next event's)\n", st.Events)
			fmt.Fprintf(w, "streams\t%d\n", st.Streams)
			fmt.Fprintf(w, "segments\t%d\t%s\n", segs, size(segBytes))
			fmt.Fprintf(w, "index files\t%d\t%s\n", idxs, size(idxBytes))
			if st.Events > 0 {
				fmt.Fprintf(w, "bytes per event\t%.1f\n", float64(segBytes+idxBytes)/float64(st.Events))
				first, err := s.ReadAll(cmd.Context(), 0, 1)
				if err != nil {
					return err
				}
				last, err := s.ReadAllBackward(cmd.Context(), st.Events-1, 1)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "first event\t%s\n", first[0].Timestamp.Format(time.RFC3339))
				fmt.Fprintf(w, "last event\t%s\n", last[0].Timestamp.Format(time.RFC3339))
			}
			fmt.Fprintf(w, "index memory\t%s\n", size(st.IndexBytes))
			return w.Flush()
		}),
	}
}

// segmentVersion reads the format version from the header of the segment
// file at path, and reports false when it has no whole, valid header.
func segmentVersion(path string) (uint8, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b := make([]byte, record.SegmentHeaderSize)
	if _, err := io.ReadFull(f, b); err != nil {
		return 0, false
	}
	h, err := record.DecodeSegmentHeader(b)
	if err != nil {
		return 0, false
	}
	return h.Version, true
}

// formatVersions lists versions for info: a store written by this release
// has one, one upgraded from an older format keeps its older segments too.
// A store without segments is written in the current version.
func formatVersions(versions []uint8) string {
	if len(versions) == 0 {
		return strconv.Itoa(record.Version)
	}
	s := make([]string, len(versions))
	for i, v := range versions {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(s, ", ")
}

func streamsCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "streams DIR",
		Short: "Streams with their version, event count and last update",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(readOnly, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "STREAM\tVERSION\tEVENTS\tLAST UPDATE")
			for info, err := range s.ListStreams(cmd.Context(), prefix) {
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", cell(info.Name), info.Version, info.Count, info.Updated.Format(time.RFC3339))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only streams whose name starts with this")
	return cmd
}

// size formats a byte count.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// printable returns data as text when it is short, valid UTF-8 without
// control characters; otherwise its size.
func printable(data []byte) string {
	const max = 60
	s := string(data)
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\uFFFD' }) {
		if r := []rune(s); len(r) > max {
			return string(r[:max]) + "…"
		}
		return s
	}
	return fmt.Sprintf("<%d bytes>", len(data))
}

// eventTable prints events as a table.
type eventTable struct{ w *tabwriter.Writer }

func newEventTable(cmd *cobra.Command) *eventTable {
	t := &eventTable{w: tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.w, "POSITION\tSTREAM\tVERSION\tTYPE\tTIME\tDATA")
	return t
}

func (t *eventTable) add(e eventstore.RecordedEvent) error {
	_, err := fmt.Fprintf(t.w, "%d\t%s\t%d\t%s\t%s\t%s\n", e.Position, cell(e.Stream), e.StreamVersion, cell(e.Type),
		e.Timestamp.Format(time.RFC3339Nano), printable(e.Data))
	return err
}

// cell returns s for a table cell: quoted, with its escapes, when it holds
// a control character that would break the table's rows or columns.
func cell(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

func (t *eventTable) Flush() error { return t.w.Flush() }

package main

import (
	"bufio"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/spf13/cobra"

	"github.com/go-eventstore/eventstore"
)

// printer writes events as a table or as JSON lines.
type printer interface {
	add(e eventstore.RecordedEvent) error
	Flush() error
}

func newPrinter(cmd *cobra.Command, asJSON bool) printer {
	if asJSON {
		return newJSONWriter(bufio.NewWriter(cmd.OutOrStdout()))
	}
	return newEventTable(cmd)
}

func readCmd() *cobra.Command {
	var from uint64
	var limit int
	var backward, asJSON bool
	cmd := &cobra.Command{
		Use:   "read DIR STREAM",
		Short: "A stream's events, as a table or as JSON lines",
		Args:  cobra.ExactArgs(2),
		RunE: withStore(readOnly, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			if _, err := s.StreamInfo(cmd.Context(), args[1]); err != nil {
				return err // ErrStreamNotFound for a stream without events
			}
			var evs []eventstore.RecordedEvent
			var err error
			if backward {
				if !cmd.Flags().Changed("from") {
					from = math.MaxUint64
				}
				evs, err = s.ReadStreamBackward(cmd.Context(), args[1], from, limit)
			} else {
				evs, err = s.ReadStream(cmd.Context(), args[1], from, limit)
			}
			if err != nil {
				return err
			}
			p := newPrinter(cmd, asJSON)
			for _, e := range evs {
				if err := p.add(e); err != nil {
					return err
				}
			}
			return p.Flush()
		}),
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first version to read (backward: the last; default the stream's end)")
	cmd.Flags().IntVar(&limit, "limit", 0, "most events to read; 0 for all")
	cmd.Flags().BoolVar(&backward, "backward", false, "read from newest to oldest")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line, as export writes")
	return cmd
}

func tailCmd() *cobra.Command {
	var follow, asJSON bool
	var stream, typ string
	var n int
	cmd := &cobra.Command{
		Use:   "tail DIR",
		Short: "The last events, and with -f new ones as they are appended",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(readOnly, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			ctx := cmd.Context()
			last, next, err := lastEvents(ctx, s, stream, typ, n)
			if err != nil {
				return err
			}
			p := newPrinter(cmd, asJSON)
			for _, e := range last {
				if err := p.add(e); err != nil {
					return err
				}
			}
			if err := p.Flush(); err != nil || !follow {
				return err
			}
			var opts []eventstore.SubscribeOption
			if typ != "" {
				opts = append(opts, eventstore.EventTypes(typ))
			}
			seq := s.Subscribe(ctx, next, opts...)
			if stream != "" {
				seq = s.SubscribeStream(ctx, stream, next, opts...)
			}
			for e, err := range seq {
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					return nil // interrupted: the normal way out of -f
				}
				if err != nil {
					return err
				}
				if err := p.add(e); err != nil {
					return err
				}
				if err := p.Flush(); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they are appended, until interrupted")
	cmd.Flags().StringVar(&stream, "stream", "", "only this stream's events")
	cmd.Flags().StringVar(&typ, "type", "", "only events of this type")
	cmd.Flags().IntVarP(&n, "lines", "n", 10, "how many of the last events to print")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line, as export writes")
	return cmd
}

// lastEvents returns the last n events (of stream, when not empty; of type
// typ, when not empty), oldest first, and where following should start: a
// position, or for a stream a version.
func lastEvents(ctx context.Context, s *eventstore.Store, stream, typ string, n int) ([]eventstore.RecordedEvent, uint64, error) {
	const page = 1000
	var head uint64
	read := func(from uint64) ([]eventstore.RecordedEvent, error) {
		return s.ReadAllBackward(ctx, from, page)
	}
	if stream == "" {
		head = s.Stats().Events
	} else {
		info, err := s.StreamInfo(ctx, stream)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		head = info.Count
		read = func(from uint64) ([]eventstore.RecordedEvent, error) {
			return s.ReadStreamBackward(ctx, stream, from, page)
		}
	}
	var out []eventstore.RecordedEvent
	for from := head; from > 0 && len(out) < n; {
		evs, err := read(from - 1)
		if err != nil {
			return nil, 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if (typ == "" || e.Type == typ) && len(out) < n {
				out = append(out, e)
			}
		}
		from -= uint64(len(evs))
	}
	slices.Reverse(out)
	return out, head, nil
}

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/go-eventstore/eventstore"
)

func verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every frame, checksum, version and index file, changing nothing",
		Long: "Read every segment whole and check both checksums of every frame, the positions, every stream's " +
			"versions and every index file against the frames it lists, without opening the store for writing " +
			"and without changing any file. Each problem is printed with its file and offset; the exit status is 1 " +
			"if there is any.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bar = newProgress(-1, "verify", true)
			progress := func(done, total int64) {
				if bar != nil {
					bar.ChangeMax64(total)
					setProgress(bar, done)
				}
			}
			rep, err := eventstore.Verify(cmd.Context(), args[0], progress)
			finishProgress(bar)
			if errors.Is(err, eventstore.ErrLocked) {
				return lockedError(args[0])
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%d segments (%s), %d index files, %d frames, %d events, %d streams\n",
				rep.Segments, size(rep.Bytes), rep.IndexFiles, rep.Frames, rep.Events, rep.Streams)
			if rep.TornBytes > 0 {
				fmt.Fprintf(out, "torn write of %d bytes at the end of the log, from an append never acknowledged: the next open truncates it\n", rep.TornBytes)
			}
			if rep.OK() {
				fmt.Fprintln(out, "no problems found")
				return nil
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(out, "problem:", p)
			}
			fmt.Fprintf(out, "%d problems found\n", len(rep.Problems))
			return problemsFound(len(rep.Problems))
		},
	}
}

func backupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup DIR DEST",
		Short: "Copy a consistent snapshot of the store into DEST, a new or empty directory",
		Long: "Open the store in DIR and copy every event committed so far into DEST, a missing or empty " +
			"directory, where it opens as a store of its own. A store held open by a running service is " +
			"refused: that service should call Store.Backup itself, which copies while appends go on.",
		Args: cobra.ExactArgs(2),
		RunE: withStore(nil, func(cmd *cobra.Command, s *eventstore.Store, args []string) error {
			info, err := s.Backup(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %d events (%d segments, %s) to %s\n", info.Events, info.Segments, size(info.Bytes), info.Dir)
			return nil
		}),
	}
}

// Command eventstore looks inside, checks, moves data in and out of, and
// backs up an eventstore directory.
//
//	go install github.com/go-eventstore/eventstore/cmd/eventstore@latest
//
//	eventstore info DIR
//	eventstore streams DIR [--prefix P]
//	eventstore read DIR STREAM [--from N] [--limit N] [--backward] [--json]
//	eventstore tail DIR [-f] [--stream S] [--type T] [-n N] [--json]
//	eventstore verify DIR
//	eventstore export DIR [--from N] > events.ndjson
//	eventstore import DIR < events.ndjson
//	eventstore backup DIR DEST
//
// info, streams, read, tail and export open the store read-only, without
// its lock, so they work beside a service that has it open (tail -f follows
// its appends). import and backup open it for writing, and verify needs it
// closed: each refuses a store held open by a running service with a
// message saying so. Long operations draw a progress bar on standard error when it
// is a terminal, and stay quiet when it is not. The exit status is 1 on any
// error, and for verify on any problem found.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/go-eventstore/eventstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var failed problemsFound
		if !errors.As(err, &failed) {
			msg := err.Error()
			if !strings.HasPrefix(msg, "eventstore: ") { // the library's errors say it already
				msg = "eventstore: " + msg
			}
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(1)
	}
}

// problemsFound is verify's error when it ran and found problems: they have
// been printed already.
type problemsFound int

func (n problemsFound) Error() string { return fmt.Sprintf("%d problems found", int(n)) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "eventstore",
		Short:         "Look inside, check, export, import and back up an eventstore directory",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(infoCmd(), streamsCmd(), readCmd(), tailCmd(), verifyCmd(), exportCmd(), importCmd(), backupCmd())
	return root
}

// readOnly is how the commands that only read open a store: beside the
// service that may have it open, without its lock, changing nothing.
var readOnly = &eventstore.Options{ReadOnly: true}

// openExisting opens the store in dir, which must exist: the commands that
// only read never create a store by mistyping its path.
func openExisting(dir string, opts *eventstore.Options) (*eventstore.Store, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("no store at %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("no store at %s: not a directory", dir)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 { // opened for writing, it would become a new store
		return nil, fmt.Errorf("no store at %s: no segment file", dir)
	}
	return open(dir, opts)
}

// open opens the store in dir, turning a held lock into advice.
func open(dir string, opts *eventstore.Options) (*eventstore.Store, error) {
	s, err := eventstore.Open(dir, opts)
	if errors.Is(err, eventstore.ErrLocked) {
		return nil, lockedError(dir)
	}
	return s, err
}

func lockedError(dir string) error {
	return fmt.Errorf("%s is open in another process, which holds its lock: "+
		"stop that process first, or have it call Store.Backup and work on the copy", dir)
}

// isTerminal reports whether f is a terminal, where progress bars go.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a progress bar on stderr when it is a terminal, and
// nil otherwise; the helpers below accept nil. total < 0 draws a spinner.
func newProgress(total int64, desc string, bytes bool) *progressbar.ProgressBar {
	if !isTerminal(os.Stderr) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000), // 100 ms
		progressbar.OptionClearOnFinish(),
	)
}

func setProgress(bar *progressbar.ProgressBar, n int64) {
	if bar != nil {
		_ = bar.Set64(n)
	}
}

func finishProgress(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}

// withStore makes a command's RunE that opens the store named by its first
// argument with opts (read-only, or for writing when nil), runs run on it,
// and closes it.
func withStore(opts *eventstore.Options, run func(cmd *cobra.Command, s *eventstore.Store, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		s, err := openExisting(args[0], opts)
		if err != nil {
			return err
		}
		defer closeStore(s, &err)
		return run(cmd, s, args)
	}
}

// closeStore closes s, keeping the first error.
func closeStore(s *eventstore.Store, err *error) {
	if cerr := s.Close(); *err == nil {
		*err = cerr
	}
}

// Command projection keeps a read model up to date from a subscription: a
// running total of deposits and withdrawals, saved together with its
// checkpoint (the position to resume from) in one file replaced atomically.
// It stops part way, as a crash would, reopens the store, resumes from the
// saved checkpoint while more events arrive live, and checks the total
// against a rebuild from the whole log.
//
//	go run ./examples/projection [dir]
//
// Without a directory it uses a fresh temporary one and removes it after.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-eventstore/eventstore"
)

// totals is the read model. Checkpoint is saved with it, never apart: after
// a crash the model and the position it reflects always agree, so resuming
// from Checkpoint neither skips an event nor applies one twice.
type totals struct {
	Total      int64  `json:"total"`
	Applied    int    `json:"applied"`
	Checkpoint uint64 `json:"checkpoint"`
}

// apply folds one event into the model.
func (t *totals) apply(ev eventstore.RecordedEvent) error {
	amount, err := strconv.ParseInt(string(ev.Data), 10, 64)
	if err != nil {
		return fmt.Errorf("event %d: %w", ev.Position, err)
	}
	if ev.Type == "Withdrawn" {
		amount = -amount
	}
	t.Total += amount
	t.Applied++
	t.Checkpoint = ev.Position + 1
	return nil
}

// save writes the model and its checkpoint in one step: a temporary file,
// fsynced, renamed over the old one, and the directory fsynced. A database
// would do the same with one transaction.
func (t *totals) save(path string) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load reads the saved model, or returns a new one.
func load(path string) (totals, error) {
	var t totals
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	return t, json.Unmarshal(b, &t)
}

// deposit appends n events to ten accounts: deposits of 1 to 100, and every
// fifth event a withdrawal of 1 to 10.
func deposit(ctx context.Context, store *eventstore.Store, from, n int) error {
	for i := from; i < from+n; i++ {
		ev := eventstore.EventData{Type: "Deposited", Data: []byte(strconv.Itoa(1 + i%100))}
		if i%5 == 4 {
			ev = eventstore.EventData{Type: "Withdrawn", Data: []byte(strconv.Itoa(1 + i%10))}
		}
		if _, err := store.Append(ctx, "account-"+strconv.Itoa(i%10), eventstore.Any, ev); err != nil {
			return err
		}
	}
	return nil
}

// project applies events from the saved checkpoint on, saving every 100
// events and whenever it catches up, until it has applied stopAt events in
// all (without saving them: the caller stops as a crash would) or ctx ends.
func project(ctx context.Context, store *eventstore.Store, path string, stopAt int) (totals, error) {
	model, err := load(path)
	if err != nil {
		return model, err
	}
	fmt.Printf("projection: resuming at position %d (total %d after %d events)\n", model.Checkpoint, model.Total, model.Applied)
	var saveErr error
	caughtUp := eventstore.OnCaughtUp(func(position uint64) {
		fmt.Printf("projection: caught up at position %d\n", position)
		saveErr = errors.Join(saveErr, model.save(path))
	})
	for ev, err := range store.Subscribe(ctx, model.Checkpoint, eventstore.StreamPrefix("account-"), caughtUp) {
		if err != nil {
			return model, err
		}
		if err := model.apply(ev); err != nil {
			return model, err
		}
		if model.Applied%100 == 0 {
			saveErr = errors.Join(saveErr, model.save(path))
		}
		if saveErr != nil {
			return model, saveErr
		}
		if model.Applied == stopAt {
			break
		}
	}
	return model, nil
}

func main() {
	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	} else {
		tmp, err := os.MkdirTemp("", "eventstore-projection")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := run(context.Background(), dir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir string) error {
	storeDir, modelPath := filepath.Join(dir, "store"), filepath.Join(dir, "totals.json")
	if _, err := os.Stat(modelPath); err == nil {
		return fmt.Errorf("%s already holds a projection: give an empty directory", dir)
	}
	store, err := eventstore.Open(storeDir, nil)
	if err != nil {
		return err
	}
	if err := deposit(ctx, store, 0, 600); err != nil {
		return err
	}
	// The first run applies 250 events and stops, as if the process died
	// after its save at 200: the 50 events since are applied again, to the
	// model as saved, on resume.
	if _, err := project(ctx, store, modelPath, 250); err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Println("store closed; reopening")

	store, err = eventstore.Open(storeDir, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	// 400 more events arrive while the projection catches up, and after.
	produced := make(chan error, 1)
	go func() { produced <- deposit(ctx, store, 600, 400) }()
	model, err := project(ctx, store, modelPath, 1000)
	if err != nil {
		return err
	}
	if err := <-produced; err != nil {
		return err
	}

	// A rebuild from scratch with All must agree.
	var rebuilt totals
	for ev, err := range store.All(ctx, 0, eventstore.StreamPrefix("account-")) {
		if err != nil {
			return err
		}
		if err := rebuilt.apply(ev); err != nil {
			return err
		}
	}
	fmt.Printf("projection: total %d over %d events, checkpoint %d\n", model.Total, model.Applied, model.Checkpoint)
	fmt.Printf("rebuild:    total %d over %d events\n", rebuilt.Total, rebuilt.Applied)
	if model != rebuilt {
		return fmt.Errorf("the projection and the rebuild disagree")
	}
	return nil
}

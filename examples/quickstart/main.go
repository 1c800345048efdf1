// Command quickstart appends a few events to a store, reads them back,
// closes the store, opens it again and shows the events survived.
//
//	go run ./examples/quickstart [dir]
//
// Without a directory it uses a fresh temporary one and removes it after.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/go-eventstore/eventstore"
)

func main() {
	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	} else {
		tmp, err := os.MkdirTemp("", "eventstore-quickstart")
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
	store, err := eventstore.Open(dir, nil)
	if err != nil {
		return err
	}
	fmt.Printf("opened %s (%d events already there)\n", dir, store.Stats().Events)

	stream := "order-" + eventstore.NewEventID().String()[:8]
	res, err := store.Append(ctx, stream, eventstore.NoStream,
		eventstore.EventData{Type: "OrderPlaced", Data: []byte(`{"sku":"book","qty":1}`)},
		eventstore.EventData{Type: "OrderPaid", Data: []byte(`{"amount":12.5}`)},
	)
	if err != nil {
		return err
	}
	fmt.Printf("appended 2 events to %s: last at position %d, version %d (fsynced)\n", stream, res.Position, res.StreamVersion)

	// A writer that lost the race gets a clear conflict, not a lost update.
	_, err = store.Append(ctx, stream, eventstore.NoStream, eventstore.EventData{Type: "OrderPlaced"})
	var conflict *eventstore.WrongExpectedVersionError
	if errors.As(err, &conflict) {
		fmt.Printf("second NoStream append refused: stream is at version %d\n", conflict.Actual)
	}

	if err := store.Close(); err != nil {
		return err
	}
	fmt.Println("closed; reopening")

	store, err = eventstore.Open(dir, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	events, err := store.ReadStream(ctx, stream, 0, 0)
	if err != nil {
		return err
	}
	for _, e := range events {
		fmt.Printf("  %s v%d @%d %-12s %s\n", e.Stream, e.StreamVersion, e.Position, e.Type, e.Data)
	}
	if len(events) != 2 {
		return fmt.Errorf("expected 2 events after reopen, found %d", len(events))
	}
	fmt.Printf("both events survived the reopen; the store holds %d events\n", store.Stats().Events)
	return nil
}

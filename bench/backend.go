package main

import (
	"fmt"
	"sort"
)

// A backend is one engine under test, holding the workload's events.
//
// Every backend stores each event under its stream with a per-stream
// version from 0, refuses an append whose expected version is not the
// stream's last (-1: the stream has no events), and acknowledges an append
// only once it survives a power loss, unless its spec says otherwise.
// Methods other than append are called from one goroutine at a time.
type backend interface {
	// open opens the store in dir, creating it if needed.
	open(dir string) error
	// append appends one event to stream if the stream's last version is
	// expected. It is called from many goroutines at once.
	append(stream string, expected int64, data []byte) error
	// readAll reads every event in commit order and returns how many.
	readAll() (int, error)
	// readStream reads every event of one stream, in version order, and
	// returns how many.
	readStream(stream string) (int, error)
	// close closes the store; a later open must find every acknowledged event.
	close() error
}

// spec describes a backend for the report.
type spec struct {
	name string
	// settings says which settings make an acknowledged append durable,
	// or why it is not.
	settings string
	durable  bool
	new      func() backend
	// skip, when not nil, says why the backend cannot run here (a server
	// that is not reachable), or returns "".
	skip func() string
}

var specs = map[string]spec{}

// register adds a backend; each backend file calls it from init.
func register(s spec) {
	if _, dup := specs[s.name]; dup {
		panic("bench: two backends named " + s.name)
	}
	specs[s.name] = s
}

// backendNames returns the registered names in report order: the limits
// first, then this store, then the rest by name.
func backendNames() []string {
	rank := func(n string) int {
		switch n {
		case "limit":
			return 0
		case "limit-fsync-per-record":
			return 1
		case "eventstore":
			return 2
		}
		return 3
	}
	var names []string
	for n := range specs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if a, b := rank(names[i]), rank(names[j]); a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	return names
}

// errWrongVersion is what a backend returns for a failed version check.
func errWrongVersion(stream string, expected, actual int64) error {
	return fmt.Errorf("stream %s: expected version %d, actual %d", stream, expected, actual)
}

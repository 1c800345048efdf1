package main

import (
	"database/sql"
	"fmt"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" driver, pure Go
)

// SQLite holds events in one table. An append is one INSERT that adds the
// event only if the stream's last version is the expected one; a unique
// index on (stream, version) backs it.
func init() {
	register(spec{
		name:     "sqlite",
		settings: "`modernc.org/sqlite`, `journal_mode=WAL`, `synchronous=FULL` (the WAL is fsynced at every commit); one connection, as SQLite has one writer at a time",
		durable:  true,
		new:      func() backend { return &sqliteBackend{} },
	})
}

type sqliteBackend struct {
	db     *sql.DB
	insert *sql.Stmt
}

func (b *sqliteBackend) open(dir string) error {
	dsn := "file:" + filepath.Join(dir, "events.db") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(60000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	b.db = db
	var mode string
	var sync int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if mode != "wal" || sync != 2 {
		return fmt.Errorf("journal_mode %s, synchronous %d: want wal, 2 (FULL)", mode, sync)
	}
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS events (
		position INTEGER PRIMARY KEY AUTOINCREMENT,
		stream   TEXT NOT NULL,
		version  INTEGER NOT NULL,
		data     BLOB NOT NULL,
		UNIQUE (stream, version))`)
	if err != nil {
		return err
	}
	b.insert, err = db.Prepare(`INSERT INTO events (stream, version, data)
		SELECT ?1, ?2 + 1, ?3
		WHERE coalesce((SELECT max(version) FROM events WHERE stream = ?1), -1) = ?2`)
	return err
}

func (b *sqliteBackend) append(stream string, expected int64, data []byte) error {
	res, err := b.insert.Exec(stream, expected, data)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("stream %s: expected version %d did not match (%v)", stream, expected, err)
	}
	return nil
}

func (b *sqliteBackend) readAll() (int, error) {
	return b.count(`SELECT data FROM events ORDER BY position`)
}

func (b *sqliteBackend) readStream(stream string) (int, error) {
	return b.count(`SELECT data FROM events WHERE stream = ? ORDER BY version`, stream)
}

func (b *sqliteBackend) count(query string, args ...any) (int, error) {
	rows, err := b.db.Query(query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var data []byte
	for rows.Next() {
		if err := rows.Scan(&data); err != nil {
			return n, err
		}
		if len(data) != eventSize {
			return n, fmt.Errorf("event of %d bytes", len(data))
		}
		n++
	}
	return n, rows.Err()
}

func (b *sqliteBackend) close() error {
	b.insert.Close()
	return b.db.Close()
}

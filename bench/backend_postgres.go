package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL, a server reached through EVENTSTORE_BENCH_PG: each run has a
// table of its own, one row an event, with the commit order in a bigserial
// position and the version check made by the INSERT itself.
func init() {
	register(spec{
		name: "postgres",
		settings: "server defaults `fsync = on` and `synchronous_commit = on` (checked with SHOW on open; the run is refused if either is off): " +
			"each append is one autocommitted INSERT, acknowledged once its commit record is flushed to the WAL on disk, " +
			"concurrent commits sharing WAL flushes; pgxpool with at most 64 connections (fewer if the server's max_connections is low), so past 64 writers appends wait for a connection. " +
			"The server is outside the run's process and directory: peak RSS and bytes on disk do not count it, the cold read does not evict its cache, and -crash kills only the client, so its reopen after a crash is a reconnect",
		durable: true,
		new:     func() backend { return &postgresBackend{} },
		skip:    postgresSkip,
	})
}

const (
	postgresEnv = "EVENTSTORE_BENCH_PG"
	// postgresMaxConns caps the pool: the benchmark's writer counts go to
	// 256, and PostgreSQL's default max_connections is 100.
	postgresMaxConns = 64
	// postgresMarker, in the run's directory, names the run's table; a
	// directory without it is a new store.
	postgresMarker = "postgres-table"
	postgresPrefix = "eventstore_bench_"
)

// postgresBackend keeps the events in one table of a PostgreSQL server.
type postgresBackend struct {
	pool  *pgxpool.Pool
	table string // quoted
	// Statements, with the table's name in them.
	insert, last, all, stream string

	readBytes int // the data the last read returned
}

// postgresCheck connects to the server named by EVENTSTORE_BENCH_PG, checks
// that commits are durable there, and returns its max_connections.
func postgresCheck(ctx context.Context) (int, error) {
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		return 0, errors.New(postgresEnv + " is not set")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	show := func(name string) (string, error) {
		var v string
		err := conn.QueryRow(ctx, "SHOW "+name).Scan(&v)
		return v, err
	}
	for _, name := range []string{"fsync", "synchronous_commit"} {
		v, err := show(name)
		if err != nil {
			return 0, err
		}
		if v == "off" {
			return 0, fmt.Errorf("%s is off on the server: commits would not be durable", name)
		}
	}
	v, err := show("max_connections")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// postgresSkip says why the backend cannot run: no connection string, no
// server within 2 s, or a server whose commits are not durable.
func postgresSkip() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := postgresCheck(ctx); err != nil {
		return err.Error()
	}
	return ""
}

func (b *postgresBackend) open(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	maxConns, err := postgresCheck(ctx)
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv(postgresEnv))
	if err != nil {
		return err
	}
	// Keep a few of the server's connections for others.
	cfg.MaxConns = int32(max(1, min(postgresMaxConns, maxConns-10)))
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	if err := b.openTable(ctx, dir); err != nil {
		b.pool.Close()
		return err
	}
	t := b.table
	b.insert = `INSERT INTO ` + t + ` (stream, version, data)
		SELECT $1::text, $2::bigint + 1, $3::bytea
		WHERE coalesce((SELECT max(version) FROM ` + t + ` WHERE stream = $1::text), -1) = $2::bigint`
	b.last = `SELECT coalesce(max(version), -1) FROM ` + t + ` WHERE stream = $1`
	b.all = `SELECT data FROM ` + t + ` ORDER BY position`
	b.stream = `SELECT data FROM ` + t + ` WHERE stream = $1 ORDER BY version`
	return nil
}

// openTable finds the table of the store in dir or, for a new store,
// creates it, first dropping what an earlier store with the same name left.
func (b *postgresBackend) openTable(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	marker := filepath.Join(dir, postgresMarker)
	name, err := os.ReadFile(marker)
	if err == nil {
		b.table = pgx.Identifier{string(name)}.Sanitize()
		var exists bool
		if err := b.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, b.table).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("postgres: table %s of %s is gone", name, dir)
		}
		return nil
	}
	if !os.IsNotExist(err) {
		return err
	}

	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	table := postgresPrefix + hex.EncodeToString(sum[:8])
	b.table = pgx.Identifier{table}.Sanitize()
	b.sweep(ctx, host)
	_, err = b.pool.Exec(ctx, `DROP TABLE IF EXISTS `+b.table)
	if err == nil {
		_, err = b.pool.Exec(ctx, `CREATE TABLE `+b.table+` (
			position bigserial PRIMARY KEY,
			stream   text NOT NULL,
			version  bigint NOT NULL,
			data     bytea NOT NULL,
			UNIQUE (stream, version))`)
	}
	if err == nil {
		// The comment lets a later run drop this table once dir is gone.
		_, err = b.pool.Exec(ctx, `COMMENT ON TABLE `+b.table+` IS `+
			quoteLiteral("eventstore-bench "+host+":"+abs))
	}
	if err != nil {
		return err
	}
	return writeSynced(marker, []byte(table))
}

// sweep drops the tables that earlier runs on this host left behind:
// those whose store directory no longer exists.
func (b *postgresBackend) sweep(ctx context.Context, host string) {
	rows, err := b.pool.Query(ctx, `SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname LIKE $1`,
		postgresPrefix+"%")
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name, comment string
		if rows.Scan(&name, &comment) != nil {
			break
		}
		d, ok := strings.CutPrefix(comment, "eventstore-bench "+host+":")
		if !ok {
			continue
		}
		if _, err := os.Stat(d); os.IsNotExist(err) {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		_, _ = b.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize())
	}
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// writeSynced writes a small file and fsyncs it and its directory.
func writeSynced(name string, data []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
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
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (b *postgresBackend) append(stream string, expected int64, data []byte) error {
	ctx := context.Background()
	tag, err := b.pool.Exec(ctx, b.insert, stream, expected, data)
	var pgErr *pgconn.PgError
	switch {
	case err == nil && tag.RowsAffected() == 1:
		return nil
	case err == nil && tag.RowsAffected() != 0:
		return fmt.Errorf("postgres: %d rows inserted", tag.RowsAffected())
	case err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "23505"): // unique_violation
		return err
	}
	// No row: the stream's last version was not expected; or a unique
	// violation: another append of the same version committed first.
	var actual int64
	if err := b.pool.QueryRow(ctx, b.last, stream).Scan(&actual); err != nil {
		return err
	}
	return errWrongVersion(stream, expected, actual)
}

// query runs q and returns how many rows it read, touching each row's data.
func (b *postgresBackend) query(q string, args ...any) (int, error) {
	rows, err := b.pool.Query(context.Background(), q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n, size := 0, 0
	for rows.Next() {
		size += len(rows.RawValues()[0])
		n++
	}
	b.readBytes = size
	return n, rows.Err()
}

func (b *postgresBackend) readAll() (int, error) { return b.query(b.all) }

func (b *postgresBackend) readStream(stream string) (int, error) {
	return b.query(b.stream, stream)
}

func (b *postgresBackend) close() error {
	b.pool.Close()
	return nil
}

// Package sqlite is funnel's embedded storage driver: one SQLite file
// (mattn/go-sqlite3, cgo), WAL, one writer connection and a read-only pool,
// and an exclusive lock file beside the database so that exactly one process
// writes it. Its SQL is in queries.sql and migrations/ (goose); package store
// runs it, the driver only connects and classifies errors.
package sqlite

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // the embedded default database
	"github.com/pressly/goose/v3"
)

//go:embed queries.sql migrations/*.sql
var files embed.FS

// Driver is the SQLite driver. The zero value is ready to use.
type Driver struct{}

// Name is the driver's name in messages and test names.
func (Driver) Name() string { return "sqlite" }

// SQL holds queries.sql and migrations/.
func (Driver) SQL() fs.FS { return files }

// Dialect is goose's dialect for the migrations.
func (Driver) Dialect() goose.Dialect { return goose.DialectSQLite3 }

// Bind is the placeholder style of queries.sql: SQLite takes '?' as written.
func (Driver) Bind() int { return sqlx.QUESTION }

// ArrayParams is false: SQLite has no array parameters, so a list argument
// is spread over one '?' per value (IN lists).
func (Driver) ArrayParams() bool { return false }

// SingleWriter is true: one process, holding the lock file, writes through one
// connection. Ids can then come from a counter seeded from the tables, and
// statements are prepared once on that connection and kept.
func (Driver) SingleWriter() bool { return true }

// DataError reports an error caused by the data written (a broken
// constraint, a value too big or of the wrong type): it fails again on every
// retry.
func (Driver) DataError(err error) bool { return dataError(err) }

// ErrLocked means another process has the database open for writing.
var ErrLocked = errors.New("database is in use by another funnel process")

// ErrNoSQLite is Open's error in a build without cgo.
var ErrNoSQLite = errors.New("built without cgo (CGO_ENABLED=0), this funnel has no SQLite")

// Available reports whether this build can open SQLite databases (ErrNoSQLite
// if not).
func Available() error {
	if !sqliteBuilt {
		return ErrNoSQLite
	}
	return nil
}

// Open opens (creating if needed) the database file at path for writing: the
// lock file first, then the writer connection (BEGIN IMMEDIATE, the given
// synchronous mode) and the read-only pool of readConns connections. Closing
// the returned closer releases the lock (after the caller closed both pools).
func (Driver) Open(ctx context.Context, path, synchronous string, readConns int) (w, r *sqlx.DB, unlock io.Closer, err error) {
	if err := Available(); err != nil {
		return nil, nil, nil, err
	}
	if synchronous == "" {
		synchronous = "FULL"
	}
	if err := makePrivate(path); err != nil {
		return nil, nil, nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, nil, nil, err
	}
	unlock = &lockCloser{lock}
	fail := func(err error) (*sqlx.DB, *sqlx.DB, io.Closer, error) {
		if r != nil {
			r.Close()
		}
		if w != nil {
			w.Close()
		}
		unlock.Close()
		return nil, nil, nil, err
	}
	base := "file:" + url.PathEscape(path) + "?_busy_timeout=10000&_foreign_keys=on&_journal_mode=WAL"
	w, err = sqlx.Open("sqlite3", base+"&_txlock=immediate&_synchronous="+synchronous+"&_cache_size=-65536")
	if err != nil {
		return fail(err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("open %s: %w", path, err))
	}
	r, err = sqlx.Open("sqlite3", base+"&mode=ro&_query_only=true")
	if err != nil {
		return fail(err)
	}
	r.SetMaxOpenConns(readConns)
	return w, r, unlock, nil
}

// OpenReadOnly opens an existing database for reading only, without the
// writer's lock, so support tools can inspect it while the daemon runs.
func (Driver) OpenReadOnly(ctx context.Context, path string) (*sqlx.DB, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	r, err := sqlx.Open("sqlite3", "file:"+url.PathEscape(path)+"?_busy_timeout=10000&mode=ro&_query_only=true")
	if err != nil {
		return nil, err
	}
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

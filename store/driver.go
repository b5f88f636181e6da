package store

import (
	"context"
	"io"
	"io/fs"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// Driver is one database behind the Store: it connects, and it carries that
// database's SQL (queries.sql and migrations/, embedded). Everything else —
// transactions, batching, row scanning, guarded transitions — is package
// store's, the same for every driver; the engine never sees which one runs.
//
// A driver package does not import store (store picks the driver from the
// DSN), so the interface names only standard and sqlx types.
type Driver interface {
	// Name is the driver's name ("sqlite", "postgres").
	Name() string
	// SQL holds queries.sql (the named queries) and migrations/*.sql (goose).
	SQL() fs.FS
	// Dialect is goose's dialect for the migrations.
	Dialect() goose.Dialect
	// Bind is the placeholder style the database takes (sqlx.QUESTION,
	// sqlx.DOLLAR); queries.sql always numbers them $1, $2, ….
	Bind() int
	// ArrayParams says the database takes a list as one parameter (= ANY($1));
	// otherwise a list argument is spread over one placeholder per value.
	ArrayParams() bool
	// SingleWriter says one process and one connection write the database:
	// ids then come from a counter seeded at open, and statements are
	// prepared once and kept. Otherwise every id is asked of the database.
	SingleWriter() bool
	// DataError reports an error caused by the data written (a broken
	// constraint, a value too big or of the wrong type), not by the database:
	// the same write fails the same way every time.
	DataError(err error) bool
	// Open connects for writing (the writer pool, which also migrates) and
	// reading (the read pool); closing unlock releases whatever the driver
	// holds besides the pools (SQLite's lock file), after both are closed.
	Open(ctx context.Context, dsn, synchronous string, readConns int) (w, r *sqlx.DB, unlock io.Closer, err error)
	// OpenReadOnly connects for reading only, beside a running daemon.
	OpenReadOnly(ctx context.Context, dsn string) (*sqlx.DB, error)
}

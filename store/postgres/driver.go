// Package postgres is funnel's PostgreSQL storage driver, selected by a
// postgres:// (or postgresql://) DSN: github.com/jackc/pgx/v5 through its
// database/sql adapter (stdlib), so the store's sqlx code runs unchanged and
// pgx still prepares and caches each statement per connection. Its SQL is in
// queries.sql and migrations/ (goose); package store runs it, the driver only
// connects and classifies errors. There is no lock file: PostgreSQL
// coordinates the processes that share it.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

//go:embed queries.sql migrations/*.sql
var files embed.FS

// Driver is the PostgreSQL driver. The zero value is ready to use.
type Driver struct{}

// Name is the driver's name in messages and test names.
func (Driver) Name() string { return "postgres" }

// SQL holds queries.sql and migrations/.
func (Driver) SQL() fs.FS { return files }

// Dialect is goose's dialect for the migrations.
func (Driver) Dialect() goose.Dialect { return goose.DialectPostgres }

// Bind is the placeholder style: $1, $2, ….
func (Driver) Bind() int { return sqlx.DOLLAR }

// ArrayParams is true: a list is one array parameter (= ANY($1)), so an IN
// list of any length is one statement text.
func (Driver) ArrayParams() bool { return true }

// SingleWriter is false: other processes may write the same database, so ids
// come from its sequences.
func (Driver) SingleWriter() bool { return false }

// IsDSN reports whether dsn names a PostgreSQL database.
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// DataError reports an error caused by the data written: SQLSTATE class 22
// (data exception: a value out of range, bad UTF-8, a NUL in text) or 23
// (integrity constraint violation).
func (Driver) DataError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
	}
	return false
}

// Open connects the writer pool and the read pool. The writer pool has one
// connection: within a process, write transactions run one at a time, as on
// SQLite (the engine's loops rely on it); between processes, the guarded
// transitions and row locks of the queries keep the data right. synchronous
// "OFF" or "NORMAL" turn synchronous_commit off (a commit survives a crash of
// funnel, not of the database server); anything else keeps the server's
// setting.
func (Driver) Open(ctx context.Context, dsn, synchronous string, readConns int) (w, r *sqlx.DB, unlock io.Closer, err error) {
	wdsn := dsn
	switch strings.ToUpper(synchronous) {
	case "OFF", "NORMAL":
		wdsn = withParam(dsn, "synchronous_commit", "off")
	}
	w, err = open(ctx, wdsn)
	if err != nil {
		return nil, nil, nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	r, err = open(ctx, withParam(dsn, "default_transaction_read_only", "on"))
	if err != nil {
		w.Close()
		return nil, nil, nil, err
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	return w, r, io.NopCloser(nil), nil
}

// OpenReadOnly connects for reading only (every transaction read-only).
func (Driver) OpenReadOnly(ctx context.Context, dsn string) (*sqlx.DB, error) {
	r, err := open(ctx, withParam(dsn, "default_transaction_read_only", "on"))
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(2)
	return r, nil
}

func open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	cfg, err := pgconnConfig(dsn)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", Redact(dsn), err)
	}
	return db, nil
}

// withParam adds a run-time parameter to a URL DSN (pgx sends the query
// parameters it does not know to the server as settings).
func withParam(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redact is dsn without its password, for messages and logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/funnel-dev/funnel/store/postgres"
	"github.com/funnel-dev/funnel/store/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// Options tune the store.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: FULL (default: a committed webhook
	// survives power loss) or NORMAL (survives process crashes only; faster).
	Synchronous string
	// ReadConns is the size of the read pool (default 4).
	ReadConns int
}

// DB is the Store on a database, through its Driver: a writer pool (one
// connection on SQLite) and a read pool.
type DB struct {
	drv    Driver
	q      *queries
	dsn    string
	w      *sqlx.DB // writes (one connection when the driver is SingleWriter)
	r      *sqlx.DB // reads
	unlock io.Closer
	nextID map[string]*atomic.Int64 // SingleWriter drivers: the last id given per table

	// SingleWriter drivers: statements prepared on the writer connection,
	// reused by every transaction (tx.StmtContext finds them already prepared
	// on the one connection). A statement is first prepared inside the
	// transaction that needs it, then here after that transaction ends:
	// preparing on the pool while a transaction holds its only connection
	// would wait forever.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// SQLite is the name DB had when SQLite was its only database.
//
// Deprecated: use DB.
type SQLite = DB

// maxCachedStmts bounds the statement cache. Statement texts come from a small
// fixed set (multi-row statements use a few fixed row counts), so it is not
// reached in practice.
const maxCachedStmts = 512

// cachedStmt returns the writer-connection statement for query, or nil.
func (s *DB) cachedStmt(query string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return s.stmts[query]
}

// cacheStmts prepares queries on the writer pool for the next transactions. It
// runs outside any transaction; a failure only means the next one prepares again.
func (s *DB) cacheStmts(ctx context.Context, queries []string) {
	for _, q := range queries {
		s.stmtMu.Lock()
		_, ok := s.stmts[q]
		full := len(s.stmts) >= maxCachedStmts
		s.stmtMu.Unlock()
		if ok || full || ctx.Err() != nil {
			continue
		}
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.stmtMu.Lock()
		if _, ok := s.stmts[q]; ok {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.stmtMu.Unlock()
	}
}

var _ Store = (*DB)(nil)

// ErrLocked means another process has the database open for writing.
var ErrLocked = sqlite.ErrLocked

// driverFor picks the driver a DSN names: a postgres:// or postgresql:// URL is
// PostgreSQL, anything else a SQLite file.
func driverFor(dsn string) Driver {
	if postgres.IsDSN(dsn) {
		return postgres.Driver{}
	}
	return sqlite.Driver{}
}

// idQueries are the queries giving the next $1 ids of each table with ids.
var idQueries = map[string]string{
	"runs":             "NewRunID",
	"timers":           "NewTimerID",
	"outbox":           "NewOutboxID",
	"flow_versions":    "NewFlowVersionID",
	"project_versions": "NewProjectVersionID",
}

// Open opens the database dsn names — a postgres:// or postgresql:// URL for
// PostgreSQL, else a SQLite file path (created if needed) — and runs the
// migrations.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	return OpenDriver(ctx, driverFor(dsn), dsn, opts)
}

// OpenDriver opens the database dsn with the given driver.
func OpenDriver(ctx context.Context, drv Driver, dsn string, opts Options) (*DB, error) {
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	qs, err := parseQueries(drv.SQL(), drv.Bind(), drv.ArrayParams())
	if err != nil {
		return nil, err
	}
	s := &DB{drv: drv, q: qs, dsn: dsn, nextID: map[string]*atomic.Int64{}, stmts: map[string]*sql.Stmt{}}
	s.w, s.r, s.unlock, err = drv.Open(ctx, dsn, opts.Synchronous, opts.ReadConns)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if drv.SingleWriter() {
		if err := s.clearLeases(ctx); err != nil {
			s.Close()
			return nil, err
		}
		for table, name := range idQueries {
			var next int64
			if err := s.getW(ctx, &next, name, 1); err != nil {
				s.Close()
				return nil, err
			}
			c := &atomic.Int64{}
			c.Store(next - 1)
			s.nextID[table] = c
		}
	}
	return s, nil
}

func (s *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(s.drv.SQL(), "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(s.drv.Dialect(), s.w.DB, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Close closes the database and releases what the driver holds (SQLite's
// lock file).
func (s *DB) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	s.stmtMu.Lock()
	for q, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, q)
	}
	s.stmtMu.Unlock()
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if s.unlock != nil {
		errs = append(errs, s.unlock.Close())
		s.unlock = nil
	}
	return errors.Join(errs...)
}

// Path is the database's DSN (the file of a SQLite database).
func (s *DB) Path() string { return s.dsn }

// Name is the database for messages and logs: the DSN without a password.
func (s *DB) Name() string { return DisplayName(s.dsn) }

// DisplayName is a DSN for messages and logs: without its password.
func DisplayName(dsn string) string {
	if postgres.IsDSN(dsn) {
		return postgres.Redact(dsn)
	}
	return dsn
}

// IsPostgres reports whether dsn names a PostgreSQL database (not a file).
func IsPostgres(dsn string) bool { return postgres.IsDSN(dsn) }

// Driver is the name of the database's driver ("sqlite", "postgres"): for
// messages and metrics, never for decisions outside the store.
func (s *DB) Driver() string { return s.drv.Name() }

// Write runs fn in one write transaction (BEGIN IMMEDIATE on SQLite); fn's
// error rolls it back.
func (s *DB) Write(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	t := &dbTx{s: s, tx: tx, ctx: ctx, stmts: map[string]*sql.Stmt{}}
	defer t.closeStmts()
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if t.err != nil {
		tx.Rollback()
		return t.err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(t.uncached) > 0 {
		s.cacheStmts(ctx, t.uncached)
	}
	return nil
}

// Enqueue stores inbound items, skipping keys already stored, in one commit. It
// returns how many were new.
func (s *DB) Enqueue(ctx context.Context, items []InboxItem) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	var n int
	err := s.Write(ctx, func(tx Tx) error {
		var err error
		t := tx.(*dbTx)
		n, err = t.insertInbox(items)
		if err == nil && n > 0 && !s.drv.SingleWriter() {
			// Delivered at the commit: wakes the leader on another replica.
			_, err = t.exec("NotifyInbox")
		}
		return err
	})
	return n, err
}

// getW reads one row of a named query on the writer pool, outside a
// transaction.
func (s *DB) getW(ctx context.Context, dest any, name string, args ...any) error {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return err
	}
	return s.w.GetContext(ctx, dest, q, a...)
}

// execW runs a named statement on the writer pool, outside a transaction.
func (s *DB) execW(ctx context.Context, name string, args ...any) (sql.Result, error) {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return nil, err
	}
	return s.w.ExecContext(ctx, q, a...)
}

// get reads one row of a named query on the read pool.
func (s *DB) get(ctx context.Context, dest any, name string, args ...any) error {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return err
	}
	return s.r.GetContext(ctx, dest, q, a...)
}

// selectR reads the rows of a named query on the read pool into dest (a
// pointer to a slice of db-tagged structs).
func (s *DB) selectR(ctx context.Context, dest any, name string, args ...any) error {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return err
	}
	return s.r.SelectContext(ctx, dest, q, a...)
}

// scanR reads one row of a named query on the read pool into dest.
func (s *DB) scanR(ctx context.Context, name string, args []any, dest ...any) error {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return err
	}
	return s.r.QueryRowContext(ctx, q, a...).Scan(dest...)
}

// classify marks the errors that come from the data written rather than from
// the database as ErrInvalid: they fail again on every retry.
func (s *DB) classify(err error) error {
	if err != nil && s.drv.DataError(err) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// OpenReadOnly opens a database for reading only, without the writer's lock, so
// support tools can inspect it while the daemon runs.
func OpenReadOnly(ctx context.Context, dsn string) (Reader, io.Closer, error) {
	drv := driverFor(dsn)
	qs, err := parseQueries(drv.SQL(), drv.Bind(), drv.ArrayParams())
	if err != nil {
		return nil, nil, err
	}
	r, err := drv.OpenReadOnly(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	s := &DB{drv: drv, q: qs, dsn: dsn, r: r}
	if err := s.checkSchema(ctx); err != nil {
		r.Close()
		return nil, nil, err
	}
	return s, r, nil
}

// schemaVersion is the newest migration of a driver: the schema this build
// reads and writes.
func schemaVersion(drv Driver) int64 {
	var newest int64
	entries, _ := fs.ReadDir(drv.SQL(), "migrations")
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > newest {
			newest = n
		}
	}
	return newest
}

// checkSchema refuses, in words, a database whose schema is not the one this
// build reads: a read-only open cannot migrate, and a query against an older
// schema would fail with "no such column" (a newer funnel installed while the
// daemon of the previous one runs), or against a database that is not a
// funnel database at all.
func (s *DB) checkSchema(ctx context.Context) error {
	var v sql.NullInt64
	err := s.get(ctx, &v, "SchemaVersion")
	if err != nil || !v.Valid {
		return errors.New("not a funnel database (no schema version): give the database `funnel serve` uses (--db)")
	}
	switch want := schemaVersion(s.drv); {
	case v.Int64 < want:
		return fmt.Errorf("schema version %d, and this funnel reads version %d: start this funnel's `funnel serve` on it once (it migrates), or inspect it with the funnel whose daemon uses it", v.Int64, want)
	case v.Int64 > want:
		return fmt.Errorf("schema version %d, written by a newer funnel than this one (version %d): inspect it with that funnel", v.Int64, want)
	}
	return nil
}

// ErrNoSQLite is Open's error for a SQLite database in a build without cgo.
var ErrNoSQLite = sqlite.ErrNoSQLite

// Available reports whether this build can open SQLite databases (ErrNoSQLite
// if not).
func Available() error { return sqlite.Available() }

// DirWarning describes what is unsafe about the directory that holds a SQLite
// database ("" when nothing is, or the database is not a file).
func DirWarning(dsn string) string {
	if driverFor(dsn).Name() != "sqlite" {
		return ""
	}
	return sqlite.DirWarning(dsn)
}

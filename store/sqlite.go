package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // the embedded default database
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the SQLite store.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: FULL (default: a committed webhook
	// survives power loss) or NORMAL (survives process crashes only; faster).
	Synchronous string
	// ReadConns is the size of the read pool (default 4).
	ReadConns int
}

// SQLite is the embedded Store: WAL, one writer connection and a read pool.
type SQLite struct {
	path   string
	w      *sqlx.DB // exactly one connection: SQLite has one writer at a time
	r      *sqlx.DB // read-only pool
	lock   *flock.Flock
	nextID map[string]*atomic.Int64

	// Statements prepared on the writer connection, reused by every transaction
	// (tx.StmtContext finds them already prepared on the one connection). A
	// statement is first prepared inside the transaction that needs it, then here
	// after that transaction ends: preparing on the pool while a transaction holds
	// its only connection would wait forever.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// maxCachedStmts bounds the statement cache. Statement texts come from a small
// fixed set (multi-row statements use a few fixed row counts), so it is not
// reached in practice.
const maxCachedStmts = 512

// cachedStmt returns the writer-connection statement for query, or nil.
func (s *SQLite) cachedStmt(query string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return s.stmts[query]
}

// cacheStmts prepares queries on the writer pool for the next transactions. It
// runs outside any transaction; a failure only means the next one prepares again.
func (s *SQLite) cacheStmts(ctx context.Context, queries []string) {
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

var _ Store = (*SQLite)(nil)

// ErrLocked means another process has the database open for writing.
var ErrLocked = errors.New("database is in use by another funnel process")

// Open opens (creating if needed) the database at path and runs the migrations.
func Open(ctx context.Context, path string, opts Options) (*SQLite, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Synchronous == "" {
		opts.Synchronous = "FULL"
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	s := &SQLite{path: path, nextID: map[string]*atomic.Int64{}, stmts: map[string]*sql.Stmt{}}
	if err := makePrivate(path); err != nil {
		return nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	s.lock = lock
	base := "file:" + url.PathEscape(path) + "?_busy_timeout=10000&_foreign_keys=on&_journal_mode=WAL"
	s.w, err = sqlx.Open("sqlite3", base+"&_txlock=immediate&_synchronous="+opts.Synchronous+"&_cache_size=-65536")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.r, err = sqlx.Open("sqlite3", base+"&mode=ro&_query_only=true")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(opts.ReadConns)
	for _, table := range []string{"runs", "timers", "outbox", "inbox", "flow_versions", "message_statuses"} {
		var max sql.NullInt64
		if err := s.w.GetContext(ctx, &max, "SELECT MAX(id) FROM "+table); err != nil {
			s.Close()
			return nil, err
		}
		c := &atomic.Int64{}
		c.Store(max.Int64)
		s.nextID[table] = c
	}
	return s, nil
}

// lockFile creates and locks the lock file beside the database. Close removes it,
// so a process that opened the file just before it was removed may hold a lock
// on a file no longer in the folder: the lock counts only if the file locked is
// still the one at name, otherwise it tries again with the new one.
// afterFlock, when set by a test, runs between taking a lock and checking it.
var afterFlock func(name string)

func lockFile(name string) (*flock.Flock, error) {
	for attempt := 0; ; attempt++ {
		f := flock.New(name, flock.SetPermissions(FileMode))
		ok, err := f.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(name, ".lock"), ErrLocked)
		}
		if afterFlock != nil {
			afterFlock(name)
		}
		held, err1 := f.Stat()
		current, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, current) {
			return f, nil
		}
		f.Close()
		if attempt == 10 {
			return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(name, ".lock"), ErrLocked)
		}
	}
}

func (s *SQLite) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w.DB, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Close closes the database and releases the lock.
func (s *SQLite) Close() error {
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
	if s.lock != nil {
		// Removed while still locked: a stale lock file never outlives a clean
		// stop (one left by a crash is harmless, the lock died with its process).
		// Windows refuses to remove an open file: there it stays, harmless too.
		if err := os.Remove(s.lock.Path()); err != nil && !errors.Is(err, os.ErrNotExist) && runtime.GOOS != "windows" {
			errs = append(errs, err)
		}
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// newID allocates an id for a table. Ids come from memory because one process owns
// the database (the lock file); a rolled-back transaction only leaves a gap.
func (s *SQLite) newID(table string) int64 { return s.nextID[table].Add(1) }

// Write runs fn in one write transaction (BEGIN IMMEDIATE); fn's error rolls it
// back.
func (s *SQLite) Write(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	t := &sqliteTx{s: s, tx: tx, ctx: ctx, stmts: map[string]*sql.Stmt{}}
	defer t.closeStmts()
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
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
func (s *SQLite) Enqueue(ctx context.Context, items []InboxItem) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	var n int
	err := s.Write(ctx, func(tx Tx) error {
		var err error
		n, err = tx.(*sqliteTx).insertInbox(items)
		return err
	})
	return n, err
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

// placeholders writes "(?,?,?),(?,?,?)" for rows×cols.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// OpenReadOnly opens a database for reading only, without the writer's lock, so
// support tools can inspect it while the daemon runs.
func OpenReadOnly(ctx context.Context, path string) (Reader, io.Closer, error) {
	if err := Available(); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, nil, err
	}
	r, err := sqlx.Open("sqlite3", "file:"+url.PathEscape(path)+"?_busy_timeout=10000&mode=ro&_query_only=true")
	if err != nil {
		return nil, nil, err
	}
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		return nil, nil, err
	}
	if err := checkSchema(ctx, r); err != nil {
		r.Close()
		return nil, nil, err
	}
	s := &SQLite{path: path, r: r}
	return s, r, nil
}

// schemaVersion is the newest embedded migration: the schema this build
// reads and writes.
func schemaVersion() int64 {
	var newest int64
	entries, _ := fs.ReadDir(migrations, "migrations")
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
// daemon of the previous one runs), or against a file that is not a funnel
// database at all.
func checkSchema(ctx context.Context, r *sqlx.DB) error {
	var v sql.NullInt64
	err := r.GetContext(ctx, &v, "SELECT MAX(version_id) FROM goose_db_version WHERE is_applied")
	if err != nil || !v.Valid {
		return errors.New("not a funnel database (no schema version): give the file `funnel serve` uses (--db)")
	}
	switch want := schemaVersion(); {
	case v.Int64 < want:
		return fmt.Errorf("schema version %d, and this funnel reads version %d: start this funnel's `funnel serve` on it once (it migrates), or inspect it with the funnel whose daemon uses it", v.Int64, want)
	case v.Int64 > want:
		return fmt.Errorf("schema version %d, written by a newer funnel than this one (version %d): inspect it with that funnel", v.Int64, want)
	}
	return nil
}

// ErrNoSQLite is Open's error in a build without cgo.
var ErrNoSQLite = errors.New("built without cgo (CGO_ENABLED=0), this funnel has no SQLite")

// Available reports whether this build can open databases (ErrNoSQLite if not).
func Available() error {
	if !sqliteBuilt {
		return ErrNoSQLite
	}
	return nil
}

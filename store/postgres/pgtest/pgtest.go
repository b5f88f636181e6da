// Package pgtest gives tests a PostgreSQL database of their own: a new
// database funnel_test_<random> on the server at 127.0.0.1:5432 (or
// FUNNEL_TEST_POSTGRES_URL), dropped when the test ends.
//
// Without a server, tests that need one skip with a message saying so,
// unless FUNNEL_TEST_POSTGRES=required (CI sets it): then they fail. Tests
// that can run on either database ask DSN(t, path): the SQLite file path,
// or, when FUNNEL_TEST_DB=postgres, a fresh PostgreSQL database.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// Server is the server tests use: FUNNEL_TEST_POSTGRES_URL, else the local
// one (trust authentication, user postgres).
func Server() string {
	if u := os.Getenv("FUNNEL_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Required reports whether tests must fail rather than skip without a
// server (FUNNEL_TEST_POSTGRES=required).
func Required() bool { return os.Getenv("FUNNEL_TEST_POSTGRES") == "required" }

// Selected reports whether tests that run on either database run on
// PostgreSQL (FUNNEL_TEST_DB=postgres).
func Selected() bool { return os.Getenv("FUNNEL_TEST_DB") == "postgres" }

var (
	checkOnce sync.Once
	checkErr  error
)

// Available reports whether the server answers (nil) or why not.
func Available() error {
	checkOnce.Do(func() {
		db, err := sql.Open("pgx", Server())
		if err != nil {
			checkErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		checkErr = db.PingContext(ctx)
	})
	return checkErr
}

// Unavailable is the message of a test that needs the server and finds none.
func Unavailable(err error) string {
	return fmt.Sprintf("no PostgreSQL answers at %s (%v): PostgreSQL tests skipped; set FUNNEL_TEST_POSTGRES=required to fail instead", redacted(Server()), err)
}

// NewDatabase creates an empty database for the test and returns its DSN;
// it is dropped when the test ends. Without a server the test skips (fails
// when Required).
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if err := Available(); err != nil {
		if Required() {
			tb.Fatal(Unavailable(err))
		}
		tb.Skip(Unavailable(err))
	}
	var b [6]byte
	rand.Read(b[:])
	name := "funnel_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", Server())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		// WITH (FORCE) ends connections a test left open (a killed child).
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(Server())
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

var (
	memoMu sync.Mutex
	memo   = map[string]string{}
)

// DSN is where a test that runs on either database keeps its data: path (a
// SQLite file) unless FUNNEL_TEST_DB=postgres, then a database of its own,
// the same one for every call with the same path during the test (a test
// that reopens its database finds its data).
func DSN(tb testing.TB, path string) string {
	tb.Helper()
	if !Selected() {
		return path
	}
	return For(tb, path)
}

// For is a PostgreSQL database for path (the same one for every call with
// the same path during the test), whatever FUNNEL_TEST_DB says.
func For(tb testing.TB, path string) string {
	tb.Helper()
	memoMu.Lock()
	dsn, ok := memo[path]
	memoMu.Unlock()
	if ok {
		return dsn
	}
	dsn = NewDatabase(tb)
	memoMu.Lock()
	memo[path] = dsn
	memoMu.Unlock()
	tb.Cleanup(func() {
		memoMu.Lock()
		delete(memo, path)
		memoMu.Unlock()
	})
	return dsn
}

func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the configured server"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

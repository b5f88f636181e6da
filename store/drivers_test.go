package store

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

// testPostgres is set while the package's tests run their second time, on
// PostgreSQL.
var testPostgres bool

// TestMain runs every test of the package twice: on SQLite, then on
// PostgreSQL (each test on a database of its own, dropped after). Without a
// PostgreSQL server the second pass is skipped with a message, or fails when
// FUNNEL_TEST_POSTGRES=required. Benchmarks run once (they compare SQLite with
// raw SQLite).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if b := flag.Lookup("test.bench"); b != nil && b.Value.String() != "" {
		os.Exit(code)
	}
	if err := pgtest.Available(); err != nil {
		if pgtest.Required() {
			fmt.Fprintln(os.Stderr, "FAIL:", pgtest.Unavailable(err))
			os.Exit(1)
		}
		fmt.Println(pgtest.Unavailable(err))
		os.Exit(code)
	}
	fmt.Println("=== the same tests on PostgreSQL")
	testPostgres = true
	if c := m.Run(); c != 0 {
		code = c
	}
	os.Exit(code)
}

// testDSN is the database of a test that runs on both drivers: the SQLite
// file path, or on the PostgreSQL pass a database of its own for that path.
func testDSN(tb testing.TB, path string) string {
	tb.Helper()
	if testPostgres {
		return pgtest.For(tb, path)
	}
	return path
}

// sqliteOnly skips a test of something only the SQLite driver has (its lock
// file, file modes, query plans, a SQLite file written by an older schema).
func sqliteOnly(tb testing.TB) {
	tb.Helper()
	if testPostgres {
		tb.Skip("SQLite driver only")
	}
}

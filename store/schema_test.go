package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/store/sqlite"
	"github.com/jmoiron/sqlx"
)

// The read-only open of the inspection commands cannot migrate: a database
// at another schema version (a newer funnel installed while the old daemon
// runs) is refused in words, not with "no such column" on the first query;
// so is a file that is not a funnel database.
func TestOpenReadOnlyChecksTheSchema(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "funnel.db")
	s, err := Open(ctx, path, Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		db, err := sqlx.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, change string
		args         []any
		want         string // "" = opens
	}{
		{"current", "", nil, ""},
		{"older", "UPDATE goose_db_version SET is_applied = 0 WHERE version_id = ?", []any{schemaVersion(sqlite.Driver{})},
			fmt.Sprintf("schema version %d, and this funnel reads version %d", schemaVersion(sqlite.Driver{})-1, schemaVersion(sqlite.Driver{}))},
		{"newer", "INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)", []any{schemaVersion(sqlite.Driver{}) + 1},
			"written by a newer funnel"},
		{"not funnel's", "DROP TABLE goose_db_version", nil, "not a funnel database (no schema version)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.change != "" {
				exec(c.change, c.args...)
			}
			_, closer, err := OpenReadOnly(ctx, path)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				closer.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

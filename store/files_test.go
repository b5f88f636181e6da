package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/store/sqlite"
)

// The database, its WAL and shared-memory files and the lock file hold
// contacts' numbers and consent: only the owner may open them, whatever the
// umask, and files an earlier version left 0644 are tightened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	sqliteOnly(t)
	for _, tc := range []struct {
		name     string
		existing os.FileMode // mode of files left by an earlier version; 0 = none
	}{
		{"new database", 0},
		{"database left world-readable", 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "funnel.db")
			if tc.existing != 0 {
				s, err := Open(context.Background(), path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				for _, p := range append([]string{path}, []string{path + "-wal", path + "-shm", path + "-journal", path + ".lock"}...) {
					if _, err := os.Stat(p); err == nil {
						os.Chmod(p, tc.existing)
					}
				}
			}
			s, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Enqueue(context.Background(), []InboxItem{{Key: "k", Kind: InboxMessage, Contact: "1", Payload: []byte(`{}`), ReceivedAt: t0}}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"funnel.db", "funnel.db-wal", "funnel.db-shm", "funnel.db.lock"} {
				fi, err := os.Stat(filepath.Join(filepath.Dir(path), name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != sqlite.FileMode {
					t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), sqlite.FileMode)
				}
			}
		})
	}
}

// The per-contact queue queries go through the outbox_contact_open index,
// never a scan of the outbox.
func TestContactQueueQueriesUseTheIndex(t *testing.T) {
	sqliteOnly(t)
	s := openTest(t)
	for _, c := range []struct {
		name string
		args []any
	}{
		{"OpenOutboxCounts", []any{[]string{"c"}}},
		{"DeferPendingOutbox", []any{int64(1), int64(2), "c"}},
	} {
		q, args, err := s.q.sql(c.name, c.args)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.w.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "outbox_contact_open") {
			t.Errorf("%s\nplan: %s", q, p)
		}
	}
}

package store

import (
	"strings"
	"testing"
)

// Every retention query finds its rows through an index: a purge costs the
// rows it deletes, not the size of the table.
func TestRetentionQueriesUseIndexes(t *testing.T) {
	sqliteOnly(t)
	s := openTest(t)
	for _, q := range []string{
		"SELECT id FROM inbox WHERE processed_at IS NOT NULL AND processed_at < 1 LIMIT 10",
		"SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < 1 LIMIT 10",
		"DELETE FROM timers WHERE run_id IN (1, 2)",
		"SELECT id FROM outbox WHERE created_at < 1 AND status NOT IN ('pending', 'claimed', 'sending') LIMIT 10",
		"SELECT id FROM message_statuses WHERE at < 1 LIMIT 10",
		"SELECT id FROM message_statuses WHERE outbox_id IS NULL AND at < 1 LIMIT 10",
	} {
		rows, err := s.w.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(detail, "SCAN ") {
				t.Errorf("%s: a full scan: %s", q, detail)
			}
		}
		rows.Close()
	}
}

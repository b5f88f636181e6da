package engine_test

// The inbound benchmark on PostgreSQL, beside a raw-PostgreSQL baseline that
// runs the same statements (the store's multi-row INSERTs, the inbox update
// with its ids as one array, ids from the sequences) in the same run:
//
//	go test -run '^$' -bench InboundPostgres -benchtime 20000x -count 3 ./engine/
//
// It skips without a server at 127.0.0.1:5432. See docs/BENCHMARKS.md.

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

func BenchmarkInboundPostgres(b *testing.B) {
	if err := pgtest.Available(); err != nil {
		b.Skip(pgtest.Unavailable(err))
	}
	ctx := context.Background()
	n := b.N
	items := make([]store.InboxItem, n)
	for i := range items {
		items[i] = benchInboundItem(i, "hello", benchT0.Add(-time.Minute))
	}
	// Both sides write with the store's default durability (synchronous_commit on).
	rawDSN := pgtest.NewDatabase(b)
	st, _ := benchEngine(b, rawDSN, "FULL", engine.NewVirtualClock(benchT0), engine.Options{})
	benchEnqueue(b, st, items)
	st.Close()
	db, err := sql.Open("pgx", rawDSN)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	raw := &rawInbound{b: b, db: db, pg: true, versions: rawVersionsOf(b, db)}
	raw.stmts = newRawStmts(b, db)
	raw.stmts.pg = true

	st, eng := benchEngine(b, pgtest.NewDatabase(b), "FULL", engine.NewVirtualClock(benchT0), engine.Options{BatchSize: benchBatch})
	defer st.Close()
	benchEnqueue(b, st, items)

	engP, rawP := benchInterleave(b, n, func(max int) int {
		done := 0
		for done < max {
			k, err := eng.ProcessInbox(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
			done += k
		}
		return done
	}, raw.step)
	stats, err := st.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if stats.LiveRuns != int64(n) || stats.Timers != int64(n) || stats.OutboxPending != int64(n) || stats.Contacts != int64(n) || stats.InboxPending != 0 {
		b.Fatalf("engine wrote %+v, want %d of each", stats, n)
	}
	var left int64
	if err := db.QueryRow("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").Scan(&left); err != nil || left != 0 {
		b.Fatalf("the baseline left %d events (%v)", left, err)
	}
	benchReport(b, "events/s", n, engP, rawP)
}

// rawVersionsOf maps flow ids to their version ids.
func rawVersionsOf(tb testing.TB, db *sql.DB) map[string]int64 {
	versions := map[string]int64{}
	rows, err := db.Query("SELECT flow_id, id FROM flow_versions")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		var id int64
		if err := rows.Scan(&f, &id); err != nil {
			tb.Fatal(err)
		}
		versions[f] = id
	}
	return versions
}

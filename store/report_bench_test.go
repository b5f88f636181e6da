package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
)

// BenchmarkReport times the funnel report of one flow over a database of
// FUNNEL_REPORT_RUNS runs (default 1,000,000: seeding takes about a minute on
// a 2-core host, so it runs only when asked for), each having executed 5
// steps, from two ads, a tenth converted, half of them through a split; beside
// it, in the same run, a full count of the runs table (the cheapest question
// about every run).
//
//	FUNNEL_BIG=1 go test -run '^$' -bench Report -benchtime 5x ./store/
//
// See docs/BENCHMARKS.md.
func BenchmarkReport(b *testing.B) {
	if os.Getenv("FUNNEL_BIG") == "" {
		b.Skip("set FUNNEL_BIG=1: seeds 1M runs")
	}
	n := 1_000_000
	if v := os.Getenv("FUNNEL_REPORT_RUNS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "report.db")
	if p := os.Getenv("FUNNEL_REPORT_DB"); p != "" {
		path = p // kept for a look at the query plans (must not exist yet)
	}
	st, err := store.Open(ctx, path, store.Options{Synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite3", rawDSN(path, "OFF"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	t0 := benchT0.UnixMilli()
	seed := []string{
		`INSERT INTO contacts (wa_id, created_at, updated_at) VALUES ('1', 0, 0)`,
		`INSERT INTO flow_versions (id, flow_id, hash, source, created_at) VALUES (1, 'promo', 'h', 'flow: promo', 0), (2, 'other', 'h', 'flow: other', 0)`,
		// Runs over 30 days, one every 2.6 s; two ads; 70% completed, the rest spread.
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		 INSERT INTO runs (id, contact, flow_id, version_id, step, status, started_at, updated_at, source_id, headline)
		 SELECT i, '1', 'promo', 1, 's' || (i % 5), CASE WHEN i % 10 < 7 THEN 'completed' WHEN i % 10 = 7 THEN 'expired' ELSE 'waiting_reply' END,
		        ? + i * 2592, ? + i * 2592, CASE i % 3 WHEN 0 THEN '' WHEN 1 THEN '120226305854810726' ELSE '120226305854810999' END,
		        CASE i % 3 WHEN 0 THEN '' WHEN 1 THEN 'Summer sandals -20%' ELSE 'Beach bags' END FROM n`,
		`WITH RECURSIVE k(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM k WHERE s < 4)
		 INSERT INTO run_steps (run_id, step, flow_id, started_at, reached_at, replied_at, delivered_at, read_at)
		 SELECT id, 's' || s, 'promo', started_at, started_at + s, CASE WHEN s = 1 AND id % 2 = 0 THEN started_at + 9 END,
		        CASE WHEN s IN (0, 2) THEN started_at END, CASE WHEN s IN (0, 2) AND id % 3 = 0 THEN started_at END FROM runs, k`,
	}
	for i, q := range seed {
		var err error
		if i == 2 {
			_, err = db.Exec(q, n, t0, t0)
		} else {
			_, err = db.Exec(q)
		}
		if err != nil {
			b.Fatalf("seed %d: %v", i, err)
		}
	}
	if _, err := db.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d runs in %s", n, time.Since(start).Round(time.Second))
	db.Close()

	r, closer, err := store.OpenReadOnly(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer closer.Close()
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var reportTime, reportCPU, countTime, countCPU, weekCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, c := time.Now(), cpuTime()
		fcs, err := r.Report(ctx, store.ReportFilter{FlowID: "promo"})
		if err != nil {
			b.Fatal(err)
		}
		reportTime += time.Since(t)
		reportCPU += cpuTime() - c
		if fcs[0].Entered != int64(n) {
			b.Fatalf("entered %d, want %d", fcs[0].Entered, n)
		}
		t, c = time.Now(), cpuTime()
		var count int64
		if err := raw.QueryRow("SELECT COUNT(*) FROM runs WHERE ended_at IS NULL OR ended_at IS NOT NULL").Scan(&count); err != nil {
			b.Fatal(err)
		}
		countTime += time.Since(t)
		countCPU += cpuTime() - c
		// A week: the period a marketer looks at most.
		c = cpuTime()
		if _, err := r.Report(ctx, store.ReportFilter{FlowID: "promo", Since: benchT0, Until: benchT0.Add(7 * 24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
		weekCPU += cpuTime() - c
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(reportTime), "report_ms")
	b.ReportMetric(per(reportCPU), "report_cpu_ms")
	b.ReportMetric(per(weekCPU), "week_cpu_ms")
	b.ReportMetric(per(countTime), "count_ms")
	b.ReportMetric(per(countCPU), "count_cpu_ms")
	b.ReportMetric(float64(reportCPU)/float64(countCPU), "x_count_cpu")
}

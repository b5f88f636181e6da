package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDepths: the bounded counts stop at their limit, and the query reads every
// table through an index (no full scan of a table that grows with traffic).
func TestDepths(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testDSN(t, filepath.Join(t.TempDir(), "funnel.db")), Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var items []InboxItem
	for i := range 7 {
		items = append(items, InboxItem{Key: fmt.Sprint("wamid.", i), Kind: "message", Contact: "1555", Payload: []byte("{}"), ReceivedAt: now})
	}
	if _, err := s.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, func(tx Tx) error {
		var ts []*Timer
		for i := range 4 {
			ts = append(ts, &Timer{ID: tx.NewID("timers"), DueAt: now.Add(time.Duration(i-2) * time.Hour), RunID: 1, Kind: "wait"})
		}
		return tx.InsertTimers(ts)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Depths(ctx, now, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := Depths{Limit: 5, InboxPending: 5, Timers: 4, TimersDue: 3, OldestTimerDue: now.Add(-2 * time.Hour)}
	if !d.OldestTimerDue.Equal(want.OldestTimerDue) {
		t.Errorf("oldest timer %v, want %v", d.OldestTimerDue, want.OldestTimerDue)
	}
	d.OldestTimerDue = want.OldestTimerDue
	if d != want {
		t.Errorf("depths %+v\nwant   %+v", d, want)
	}

	if testPostgres {
		return // the plan below is SQLite's EXPLAIN QUERY PLAN
	}
	q, args, err := s.q.sql("Depths", []any{int64(10), ms(now)})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	tables := 0
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"inbox", "outbox", "timers", "runs", "contacts", "message_statuses"} {
			if strings.Contains(detail, " "+table+" ") || strings.HasSuffix(detail, " "+table) {
				tables++
				if !strings.Contains(detail, "USING ") {
					t.Errorf("a full scan of %s: %s", table, detail)
				}
			}
		}
	}
	if tables < 7 {
		t.Errorf("the plan reads %d tables, want 7 lookups", tables)
	}
}

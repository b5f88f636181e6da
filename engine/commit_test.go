package engine

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

// Hooks run only after their transaction committed (what they act on is
// durable), and never when it rolled back.
func TestHookStoreRunsHooksAfterCommitOnly(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.DSN(t, filepath.Join(t.TempDir(), "funnel.db")), store.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := hookStore{st}
	item := func(key string) []store.InboxItem {
		return []store.InboxItem{{Key: key, Kind: store.InboxMessage, Contact: "1", Payload: []byte("{}"), ReceivedAt: time.Unix(0, 0)}}
	}
	pending := func() int64 {
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.InboxPending
	}

	var ran []string
	boom := errors.New("boom")
	err = hs.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.EnqueueInbox(item("a")); err != nil {
			return err
		}
		afterCommit(tx, func() { ran = append(ran, "rolled back") })
		return boom
	})
	if !errors.Is(err, boom) || len(ran) != 0 {
		t.Fatalf("rolled back: err %v, hooks run %v", err, ran)
	}
	err = hs.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.EnqueueInbox(item("b")); err != nil {
			return err
		}
		for _, name := range []string{"first", "second"} {
			if !afterCommit(tx, func() { ran = append(ran, name); ran = append(ran, string(rune('0'+pending()))) }) {
				t.Error("afterCommit refused a hookStore transaction")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each hook saw the row from another connection: committed.
	if got := len(ran); got != 4 || ran[0] != "first" || ran[1] != "1" || ran[2] != "second" || ran[3] != "1" {
		t.Fatalf("hooks run %v, want [first 1 second 1]", ran)
	}
	// A transaction of the bare store has no hooks.
	st.Write(ctx, func(tx store.Tx) error {
		if afterCommit(tx, func() {}) {
			t.Error("afterCommit accepted a transaction without hooks")
		}
		return nil
	})
}

// A FireTimers that read the timers before another transaction wrote one must
// not raise the hint above that timer.
func TestTimerHintIgnoresALearnThatRacedAWrite(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	var h timerHint
	if !h.mayBeDue(t0) {
		t.Fatal("unknown hint: timers must be looked at")
	}
	gen := h.start()
	h.learn(gen, time.Time{}, false) // no timer at all
	if h.mayBeDue(t0.Add(1000 * time.Hour)) {
		t.Fatal("no timer pending, yet one may be due")
	}
	gen = h.start()                       // a FireTimers begins,
	h.added(t0.Add(time.Minute))          // a timer due in 1m is written meanwhile,
	h.learn(gen, t0.Add(time.Hour), true) // and it read only a later one
	if !h.mayBeDue(t0.Add(time.Minute)) {
		t.Fatal("the timer written during the read is hidden by the stale learn")
	}
	if h.mayBeDue(t0.Add(30 * time.Second)) {
		t.Fatal("a timer due in 1m is reported due at 30s")
	}
	gen = h.start()
	h.learn(gen, t0.Add(2*time.Minute), true)
	if h.mayBeDue(t0.Add(time.Minute)) || !h.mayBeDue(t0.Add(2*time.Minute)) {
		t.Fatal("a fresh learn is not applied")
	}
}

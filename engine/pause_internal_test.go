package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// TestPauseShared: a pause one replica records stops every replica's sender,
// and a resume on any replica clears it everywhere (the pause is stored).
func TestPauseShared(t *testing.T) {
	old := pauseRecheck
	pauseRecheck = 0
	defer func() { pauseRecheck = old }()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "pause.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := NewVirtualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a := New(st, Options{Clock: clock})
	b := New(st, Options{Clock: clock})
	// eventually polls for the background store of a pause (no wall-clock
	// assertion: it only bounds a hang).
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if r := b.Paused(); r != "" {
		t.Fatalf("paused before anything: %q", r)
	}
	a.pauseFor(whatsapp.Fatal, 190) // until resumed
	if a.Paused() == "" {
		t.Fatal("the replica that saw the error is not paused")
	}
	eventually("the other replica sees the pause", func() bool { return b.Paused() == "error 190" })
	// A new process (a restart, a takeover) starts paused too.
	c := New(st, Options{Clock: clock})
	if r := c.Paused(); r != "error 190" {
		t.Fatalf("a new engine on the store: paused %q, want error 190", r)
	}
	b.ResumeSender()
	eventually("the resume reaches the replica that paused", func() bool { return a.Paused() == "" })
	// A pause with an end lapses everywhere at its end.
	a.pause("error 131048 (spam rate limit)", time.Minute)
	eventually("the timed pause is stored", func() bool { return c.Paused() != "" })
	clock.Advance(time.Minute)
	for _, e := range []*Engine{a, b, c} {
		if r := e.Paused(); r != "" {
			t.Fatalf("a minute's pause after a minute: %q", r)
		}
	}
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// leaseStore opens a fresh store for the lease tests.
func leaseStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "lease.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fencedWrite runs an empty write transaction fenced by el's lease.
func fencedWrite(st store.Store, el *engine.Elector) error {
	ctx := engine.FencedContext(context.Background(), engine.LeaseName, el.Holder())
	return engine.New(st, engine.Options{}).Store().Write(ctx, func(tx store.Tx) error {
		return tx.Fence(engine.LeaseName, el.Holder())
	})
}

func TestLeaseTakeoverAfterExpiry(t *testing.T) {
	ctx := context.Background()
	st := leaseStore(t)
	clock := engine.NewVirtualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	const ttl = 10 * time.Second
	a := engine.NewElector(st, engine.ElectorOptions{Holder: "a", TTL: ttl, Clock: clock})
	b := engine.NewElector(st, engine.ElectorOptions{Holder: "b", TTL: ttl, Clock: clock})
	attempt := func(el *engine.Elector, want bool, when string) {
		t.Helper()
		got, err := el.Attempt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: %s holds the lease: %v, want %v (lease %+v)", when, el.Holder(), got, want, el.Lease())
		}
	}
	attempt(a, true, "first candidate")
	attempt(b, false, "while a holds it")
	if err := fencedWrite(st, a); err != nil {
		t.Fatalf("the leader's fenced write: %v", err)
	}
	if err := fencedWrite(st, b); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("a follower's fenced write: %v, want ErrNotLeader", err)
	}
	// Renewed at half its life, it outlives its first expiry.
	clock.Advance(ttl / 2)
	attempt(a, true, "renewal")
	clock.Advance(ttl/2 + time.Millisecond)
	attempt(b, false, "past the first expiry, renewed since")
	if !a.Leading() || b.Leading() {
		t.Fatalf("leading: a %v, b %v; want a only", a.Leading(), b.Leading())
	}
	// a stops renewing (dies): it stops counting itself leader before the
	// lease lapses, and b takes over once it has.
	clock.Advance(ttl/2 - 2*time.Millisecond)
	if a.Leading() {
		t.Fatal("a still counts itself leader 0.9 ttl after its last renewal")
	}
	attempt(b, false, "1 ms before the lease lapses")
	clock.Advance(time.Millisecond)
	attempt(b, true, "when the lease lapses")
	if got := b.Lease(); got.Holder != "b" || !got.ElectedAt.Equal(clock.Now()) {
		t.Fatalf("lease after the takeover: %+v", got)
	}
	// The old leader comes back: it is refused, and its writes too.
	attempt(a, false, "old leader after the takeover")
	if err := fencedWrite(st, a); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("the old leader's fenced write: %v, want ErrNotLeader", err)
	}
	if err := fencedWrite(st, b); err != nil {
		t.Fatalf("the new leader's fenced write: %v", err)
	}
	// Resigning hands it over at once.
	if err := st.Resign(ctx, engine.LeaseName, "b"); err != nil {
		t.Fatal(err)
	}
	attempt(a, true, "after b resigned")
}

// TestLeaseNoTwoLeaders runs candidates through random interleavings of
// attempts, stalls (a candidate that does not renew for a while) and clock
// steps, and checks after every step that at most one counts itself leader
// and that only the lease's holder can write under it.
func TestLeaseNoTwoLeaders(t *testing.T) {
	ctx := context.Background()
	st := leaseStore(t)
	clock := engine.NewVirtualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	const ttl = 4 * time.Second
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 17))
	var els []*engine.Elector
	for i := range 4 {
		els = append(els, engine.NewElector(st, engine.ElectorOptions{Holder: fmt.Sprintf("r%d", i), TTL: ttl, Clock: clock}))
	}
	changes := 0
	last := ""
	for step := range 3000 {
		switch r := rng.IntN(10); {
		case r < 6:
			el := els[rng.IntN(len(els))]
			if _, err := el.Attempt(ctx); err != nil {
				t.Fatal(err)
			}
		case r < 9:
			clock.Advance(time.Duration(rng.IntN(int(ttl/time.Millisecond)/2)) * time.Millisecond)
		default:
			el := els[rng.IntN(len(els))]
			if el.Leading() && rng.IntN(4) == 0 {
				if err := st.Resign(ctx, engine.LeaseName, el.Holder()); err != nil {
					t.Fatal(err)
				}
				// Resigning is what its Run does after its work stopped.
				el.Attempt(ctx) // may take it again at once; fine
			}
		}
		var leading []string
		for _, el := range els {
			if el.Leading() {
				leading = append(leading, el.Holder())
			}
		}
		if len(leading) > 1 {
			t.Fatalf("seed %d step %d: %v all count themselves leader", seed, step, leading)
		}
		for _, el := range els {
			err := fencedWrite(st, el)
			if len(leading) == 1 && el.Holder() == leading[0] && err != nil {
				t.Fatalf("seed %d step %d: the leader %s cannot write: %v", seed, step, el.Holder(), err)
			}
			if err == nil {
				l, _ := st.LeaseOf(ctx, engine.LeaseName, ttl)
				if l.Holder != el.Holder() {
					t.Fatalf("seed %d step %d: %s wrote under %s's lease", seed, step, el.Holder(), l.Holder)
				}
			}
		}
		if len(leading) == 1 && leading[0] != last {
			changes++
			last = leading[0]
		}
	}
	if changes < 5 {
		t.Fatalf("seed %d: only %d changes of leader: the interleavings did not exercise takeovers", seed, changes)
	}
}

// TestLeaseRun checks the service: the work runs while leading, fenced, and
// stops when ctx ends, after which the lease is given up.
func TestLeaseRun(t *testing.T) {
	st := leaseStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	el := engine.NewElector(st, engine.ElectorOptions{Holder: "solo", TTL: 2 * time.Second})
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		el.Run(ctx, func(lctx context.Context) {
			started <- engine.New(st, engine.Options{}).Store().Write(lctx, func(tx store.Tx) error { return nil })
			<-lctx.Done()
		})
		close(done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("the leader's first fenced write: %v", err)
	}
	cancel()
	<-done
	l, err := st.LeaseOf(context.Background(), engine.LeaseName, 2*time.Second)
	if err != nil || l.Holder != "" {
		t.Fatalf("after Run returned: lease %+v, %v; want given up", l, err)
	}
}

// TestSQLiteLeaseHeldAtRestart: SQLite's lock file means one process, so a
// lease left by a crashed process does not delay the next start.
func TestSQLiteLeaseHeldAtRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "restart.db")
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, held, err := st.Lead(ctx, engine.LeaseName, "gone", time.Hour, time.Time{}); err != nil || !held {
		t.Fatalf("first lead: %v %v", held, err)
	}
	st.Close() // as after a crash: the lease row stays
	st, err = store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, held, err := st.Lead(ctx, engine.LeaseName, "next", time.Hour, time.Time{}); err != nil || !held {
		t.Fatalf("lead after a restart: held %v, err %v; want held at once", held, err)
	}
}

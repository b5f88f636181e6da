package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var faultyT0 = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)

func faultyOpen(t *testing.T) (*DB, *Faulty) {
	t.Helper()
	s, err := Open(context.Background(), testDSN(t, filepath.Join(t.TempDir(), "funnel.db")), Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, NewFaulty(s, 1)
}

// faultyWrite writes one contact, one outbox row and one timer in one
// transaction (three write statements); ok counts the statements that ran.
func faultyWrite(ctx context.Context, st Store, i int, ok *int) error {
	return st.Write(ctx, func(tx Tx) error {
		wa := fmt.Sprintf("1555000%04d", i)
		if err := tx.SaveContacts([]*Contact{{WaID: wa, CreatedAt: faultyT0, UpdatedAt: faultyT0}}); err != nil {
			return err
		}
		*ok++
		if err := tx.InsertOutbox([]*OutboxItem{{Key: fmt.Sprintf("k%d", i), Contact: wa, Kind: KindFreeForm,
			Payload: []byte(`{}`), Status: OutPending, NextAttemptAt: faultyT0, CreatedAt: faultyT0, UpdatedAt: faultyT0}}); err != nil {
			return err
		}
		*ok++
		if err := tx.InsertTimers([]*Timer{{DueAt: faultyT0, RunID: int64(i), Kind: TimerWait}}); err != nil {
			return err
		}
		*ok++
		return nil
	})
}

// faultyCounts is the number of contacts, outbox rows, timers and inbox rows.
func faultyCounts(t *testing.T, s *DB) [4]int64 {
	t.Helper()
	var out [4]int64
	for i, table := range []string{"contacts", "outbox", "timers", "inbox"} {
		if err := s.w.Get(&out[i], "SELECT COUNT(*) FROM "+table); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func faultyItems(keys ...string) []InboxItem {
	var items []InboxItem
	for _, k := range keys {
		items = append(items, InboxItem{Key: k, Kind: InboxMessage, Contact: "15550001", Payload: []byte(`{}`), ReceivedAt: faultyT0})
	}
	return items
}

func TestFaultyPassesThroughWhenHealthy(t *testing.T) {
	s, f := faultyOpen(t)
	ctx := context.Background()
	var ok int
	if err := faultyWrite(ctx, f, 1, &ok); err != nil || ok != 3 {
		t.Fatalf("write: %v (%d statements)", err, ok)
	}
	if n, err := f.Enqueue(ctx, faultyItems("a", "b", "a")); err != nil || n != 2 {
		t.Fatalf("enqueue: n=%d err=%v", n, err)
	}
	if got := faultyCounts(t, s); got != [4]int64{1, 1, 1, 2} {
		t.Fatalf("rows %v", got)
	}
	if c, err := f.Contact(ctx, "15550000001"); err != nil || c == nil {
		t.Fatalf("read through the wrapper: %v %v", c, err)
	}
	if st := f.Faults(); st.Writes != 2 || st.WritesFailed != 0 || st.Reads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Whatever the point of failure, a failed write leaves nothing behind and says
// so with an error that wraps ErrInjected.
func TestFaultyFailedWriteStoresNothing(t *testing.T) {
	for _, at := range []FaultPoint{FailBegin, FailCommit, FailMidway} {
		t.Run(at.String(), func(t *testing.T) {
			s, f := faultyOpen(t)
			ctx := context.Background()
			f.SetError(ErrInjectedFull, at)
			partial := 0
			for i := 0; i < 30; i++ {
				f.FailNext(1)
				var ok int
				err := faultyWrite(ctx, f, i, &ok)
				if !errors.Is(err, ErrInjected) || !errors.Is(err, ErrInjectedFull) {
					t.Fatalf("write %d: got %v, want the injected error", i, err)
				}
				if at == FailBegin && ok != 0 {
					t.Fatalf("FailBegin ran the transaction (%d statements)", ok)
				}
				if at == FailCommit && ok != 3 {
					t.Fatalf("FailCommit ran %d of 3 statements", ok)
				}
				if ok > 0 {
					partial++
				}
				f.FailNext(1)
				if _, err := f.Enqueue(ctx, faultyItems(fmt.Sprint("e", i))); !errors.Is(err, ErrInjected) {
					t.Fatalf("enqueue %d: %v", i, err)
				}
			}
			if got := faultyCounts(t, s); got != [4]int64{} {
				t.Fatalf("failed writes left rows behind: contacts, outbox, timers, inbox = %v", got)
			}
			if at != FailBegin && partial == 0 {
				t.Fatal("no failure struck after a statement had run: the rollback was not exercised")
			}
			// The store works again at once.
			var ok int
			if err := faultyWrite(ctx, f, 99, &ok); err != nil {
				t.Fatal(err)
			}
			if got := faultyCounts(t, s); got != [4]int64{1, 1, 1, 0} {
				t.Fatalf("after recovery: %v", got)
			}
			if st := f.Faults(); st.WritesFailed != 60 || st.Writes != 61 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestFaultyDownUntilUp(t *testing.T) {
	s, f := faultyOpen(t)
	ctx := context.Background()
	f.Down(nil)
	for i := 0; i < 5; i++ {
		var ok int
		if err := faultyWrite(ctx, f, i, &ok); !errors.Is(err, ErrInjectedFull) {
			t.Fatalf("down: %v", err)
		}
		if _, err := f.Enqueue(ctx, faultyItems("x")); !errors.Is(err, ErrInjectedFull) {
			t.Fatalf("down enqueue: %v", err)
		}
	}
	// Reads still work while writes are down (a full disk still reads).
	if _, err := f.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	f.Up()
	var ok int
	if err := faultyWrite(ctx, f, 7, &ok); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Enqueue(ctx, faultyItems("x")); err != nil || n != 1 {
		t.Fatalf("after Up: %d %v", n, err)
	}
	if got := faultyCounts(t, s); got != [4]int64{1, 1, 1, 1} {
		t.Fatalf("rows %v", got)
	}
}

func TestFaultyRandomRateIsAtomicPerWrite(t *testing.T) {
	s, f := faultyOpen(t)
	ctx := context.Background()
	f.SetRate(0.3)
	f.SetError(ErrInjectedLocked, FailMidway)
	var stored int64
	for i := 0; i < 600; i++ {
		var ok int
		err := faultyWrite(ctx, f, i, &ok)
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrInjectedLocked):
			t.Fatalf("write %d: %v", i, err)
		}
	}
	st := f.Faults()
	if st.WritesFailed < 120 || st.WritesFailed > 240 {
		t.Fatalf("%d of 600 writes failed at rate 0.3", st.WritesFailed)
	}
	if got := faultyCounts(t, s); got != [4]int64{stored, stored, stored, 0} {
		t.Fatalf("%d writes succeeded, rows %v: a failed write left something, or a good one lost something", stored, got)
	}
}

func TestFaultyHookAndReads(t *testing.T) {
	s, f := faultyOpen(t)
	ctx := context.Background()
	var ops []FaultOp
	f.SetHook(func(op FaultOp) error {
		ops = append(ops, op)
		if op.Kind == "enqueue" {
			return ErrInjectedLocked
		}
		return nil
	})
	var ok int
	if err := faultyWrite(ctx, f, 1, &ok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Enqueue(ctx, faultyItems("a")); !errors.Is(err, ErrInjectedLocked) {
		t.Fatalf("hooked enqueue: %v", err)
	}
	if _, err := f.OutboxOf(ctx, "15550000001", 10); err != nil {
		t.Fatal(err)
	}
	want := []FaultOp{{"write", 1}, {"enqueue", 2}, {"read", 1}}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Fatalf("hook saw %v, want %v", ops, want)
	}
	f.SetHook(nil)
	f.SetReadsDown(true)
	if _, err := f.Contact(ctx, "15550000001"); !errors.Is(err, ErrInjected) {
		t.Fatalf("reads down: %v", err)
	}
	if _, err := f.Stats(ctx); !errors.Is(err, ErrInjected) {
		t.Fatalf("reads down: %v", err)
	}
	if err := faultyWrite(ctx, f, 2, &ok); err != nil {
		t.Fatalf("writes while reads are down: %v", err)
	}
	f.Up()
	if c, err := f.Contact(ctx, "15550000001"); err != nil || c == nil {
		t.Fatalf("after Up: %v %v", c, err)
	}
	if got := faultyCounts(t, s); got != [4]int64{2, 2, 2, 0} {
		t.Fatalf("rows %v", got)
	}
	if st := f.Faults(); st.ReadsFailed != 2 || st.WritesFailed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

package engine_test

// The runtime against inputs and values that must not stop it (issue: one reply
// could stop every funnel): an unstorable value fails its run only, a batch
// that cannot be written is split so only its culprit fails, a status that
// arrives during the send call stands, and a late reply after downtime takes
// the timeout path however many other timers are overdue.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// askQty asks for a quantity, stores float(reply) and answers with it.
var askQty = onHi("qty", "", `
  - id: ask
    send: "How many?"
  - id: answer
    wait_for_reply: {timeout: 1h, on_timeout: gone}
  - id: keep
    set: {qty: "${float(reply.text)}", answer: "${reply.text}"}
  - id: confirm
    send: "Noted: ${vars.qty}"
  - id: later
    wait: 1h
  - id: twice
    set: {double: "${vars.qty * 2}"}
  - id: bye
    send: "Bye"
  - id: done
    end: true
  - id: gone
    send: "Gone"
`)

func TestInfReplyFailsItsRunOnly(t *testing.T) {
	r := newRig(t, []string{askQty})
	bob, cid := "15550002", "15550003"
	for _, c := range []string{ana, bob, cid} {
		r.send(c, textMsg("hi"))
	}
	// The three replies land in one batch.
	r.enqueue(r.inboundItem(ana, textMsg("inf"), r.now()), r.inboundItem(bob, textMsg("3"), r.now()),
		r.inboundItem(cid, textMsg("NaN"), r.now()))
	r.settle()
	for _, c := range []string{ana, cid} {
		run := r.run(c)
		if run.Status != store.RunFailed || !strings.Contains(run.EndReason, "cannot be stored") || !strings.Contains(run.EndReason, "qty") {
			t.Errorf("%s: run %s %q, want failed: cannot be stored", c, run.Status, run.EndReason)
		}
		if got := callBodies(r, c); got != "How many?" {
			t.Errorf("%s: calls %q", c, got)
		}
	}
	if run := r.run(bob); run.Status != store.RunWaiting || run.Vars["qty"] != 3.0 {
		t.Fatalf("bob: %+v", run)
	}
	if got := callBodies(r, bob); got != "How many?, Noted: 3" {
		t.Errorf("bob: calls %q", got)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL`); n != 0 {
		t.Errorf("%d inbox rows left", n)
	}
	// The same through a timer: 1e308 doubles to +Inf after the wait.
	r2 := newRig(t, []string{askQty})
	r2.send(ana, textMsg("hi"))
	r2.send(ana, textMsg("1e308"))
	r2.send(bob, textMsg("hi"))
	r2.send(bob, textMsg("2"))
	r2.advance(2 * time.Hour)
	if run := r2.run(ana); run.Status != store.RunFailed || !strings.Contains(run.EndReason, "double") {
		t.Errorf("ana after the wait: %s %q", run.Status, run.EndReason)
	}
	if run := r2.run(bob); run.Status != store.RunCompleted || run.Vars["double"] != 4.0 {
		t.Errorf("bob after the wait: %+v", run)
	}
}

// poisonStore makes writes fail as a store does on a value it refuses: runs
// whose vars hold "poison" are refused (store.ErrInvalid), and a message that
// says "boom" makes the write panic.
type poisonStore struct{ *store.DB }

func (s poisonStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.DB.Write(ctx, func(tx store.Tx) error { return fn(poisonTx{tx}) })
}

type poisonTx struct{ store.Tx }

func (t poisonTx) SaveRuns(rs []*store.Run) error {
	for _, r := range rs {
		for _, v := range r.Vars {
			if v == "poison" {
				return fmt.Errorf("%w: run %d", store.ErrInvalid, r.ID)
			}
		}
	}
	return t.Tx.SaveRuns(rs)
}

func (t poisonTx) InsertOutbox(items []*store.OutboxItem) error {
	for _, it := range items {
		if bytes.Contains(it.Payload, []byte("boom")) {
			panic("boom")
		}
	}
	return t.Tx.InsertOutbox(items)
}

func newPoisonRig(t *testing.T, flows ...string) *rig {
	r := openRig(t)
	r.eng = engine.New(poisonStore{r.st}, r.opts)
	r.load(flows...)
	return r
}

var echo = onHi("echo", "", `
  - id: ask
    send: "Say something"
  - id: answer
    wait_for_reply: {timeout: 1h, on_timeout: gone}
  - id: keep
    set: {answer: "${reply.text}"}
  - id: echo
    send: "You said ${reply.text}"
  - id: later
    wait: 1h
  - id: again
    send: "Still ${vars.answer}"
  - id: done
    end: true
  - id: gone
    send: "Gone"
`)

func TestBatchSplitSetsAsideOnlyTheCulprit(t *testing.T) {
	r := newPoisonRig(t, echo)
	contacts := []string{"15550010", "15550011", "15550012", "15550013"}
	for _, c := range contacts {
		r.send(c, textMsg("hi"))
	}
	texts := []string{"fine", "poison", "boom", "also fine"}
	var items []store.InboxItem
	for i, c := range contacts {
		items = append(items, r.inboundItem(c, textMsg(texts[i]), r.now()))
	}
	r.enqueue(items...)
	r.settle()
	for i, c := range contacts {
		run := r.run(c)
		switch texts[i] {
		case "poison", "boom":
			if run.Status != store.RunFailed || !strings.Contains(run.EndReason, "could not be processed") {
				t.Errorf("%s (%s): run %s %q", c, texts[i], run.Status, run.EndReason)
			}
			// None of the event's effects: no echo, vars untouched.
			if got := callBodies(r, c); got != "Say something" {
				t.Errorf("%s (%s): calls %q", c, texts[i], got)
			}
			if len(run.Vars) != 0 {
				t.Errorf("%s: vars %v kept from the failed event", c, run.Vars)
			}
			res := r.queryString(`SELECT result FROM inbox WHERE contact = ? ORDER BY id DESC LIMIT 1`, c)
			if !strings.HasPrefix(res, "error: ") {
				t.Errorf("%s: inbox result %q", c, res)
			}
		default:
			if run.Status != store.RunWaiting {
				t.Errorf("%s: run %s %q", c, run.Status, run.EndReason)
			}
			if got := callBodies(r, c); got != "Say something, You said "+texts[i] {
				t.Errorf("%s: calls %q", c, got)
			}
		}
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL`); n != 0 {
		t.Errorf("%d inbox rows left", n)
	}
}

func TestTimerBatchSplitSetsAsideOnlyTheCulprit(t *testing.T) {
	r := newPoisonRig(t, onHi("later", "", `
  - id: keep
    set: {word: "${entry.text}"}
  - id: later
    wait: 1h
  - id: say
    send: "Back: ${vars.word}"
`))
	r.send("15550020", textMsg("hi"))
	r.send("15550021", textMsg("HI boom")) // keyword matching is case-insensitive, whole message
	r.send("15550022", textMsg("hi"))
	r.advance(2 * time.Hour)
	for _, c := range []string{"15550020", "15550022"} {
		if run := r.run(c); run.Status != store.RunCompleted {
			t.Errorf("%s: %s %q", c, run.Status, run.EndReason)
		}
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM timers`); n != 0 {
		t.Errorf("%d timers left", n)
	}
}

// A `failed 131047` status processed while the send call is in flight stands:
// the message does not end as sent with error 0, and its fallback goes out.
func TestStatusDuringTheSendCallStands(t *testing.T) {
	for _, withFallback := range []bool{true, false} {
		t.Run(fmt.Sprint("fallback=", withFallback), func(t *testing.T) {
			send := `    send: "hello"`
			if withFallback {
				send = `    send: {text: "hello", fallback: {template: reminder, params: ["${contact.name}"]}}`
			}
			r := newRig(t, []string{onHi("one", "", "  - id: m\n"+send+"\n")})
			r.ch.during = func(n int) {
				if n != 1 {
					return
				}
				it := r.lastOut(ana)
				st := statusJSON(fmt.Sprintf("wamid.out.%d", n), "failed", r.now(), engine.CallbackData(it.ID), 131047)
				st["recipient_id"] = ana
				r.enqueueStatus(ana, st, fmt.Sprintf("wamid.out.%d", n), "failed")
				if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
					t.Error(err)
				}
			}
			r.send(ana, textMsg("hi"))
			r.settle()
			it := r.lastOut(ana)
			if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ? AND status = 'failed' AND error_code = 131047`, it.ID); n != 1 {
				t.Errorf("%d failed statuses recorded", n)
			}
			if withFallback {
				if got := callBodies(r, ana); got != "hello, template reminder" {
					t.Fatalf("calls %q", got)
				}
				if it.Status != store.OutSent || it.SentAs != "fallback" || it.Kind != store.KindTemplate {
					t.Fatalf("row %+v", it)
				}
				return
			}
			if got := callBodies(r, ana); got != "hello" {
				t.Fatalf("calls %q", got)
			}
			if it.Status != store.OutFailed || it.ErrorCode != 131047 {
				t.Fatalf("row %s error %d %q", it.Status, it.ErrorCode, it.LastError)
			}
		})
	}
}

// After downtime with more overdue timers than a batch, a reply written after
// its own timeout still takes the timeout path: the batch loads the due timers
// of its own runs, not the earliest of the whole database.
func TestLateReplyAfterDowntimeWithManyOverdueTimers(t *testing.T) {
	r := newRig(t, []string{echo}, withOpts(func(o *engine.Options) { o.BatchSize = 3 }))
	for i := range 6 {
		r.send(fmt.Sprintf("1555009%d", i), textMsg("hi")) // their timeouts come first
	}
	r.send(ana, textMsg("hi"))
	// Down for 2 hours; ana replied at 1h30, after her 1h timeout.
	r.clock.Set(r.now().Add(2 * time.Hour))
	r.ch.inbound(ana, r.now().Add(-30*time.Minute))
	r.enqueue(r.inboundItem(ana, textMsg("too late"), r.now().Add(-30*time.Minute)))
	if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := callBodies(r, ana); got != "Say something, Gone" {
		t.Fatalf("calls %q: the late reply resumed a wait that had timed out", got)
	}
}

// countingStore counts write transactions.
type countingStore struct {
	*store.DB
	writes *int
}

func (s countingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	*s.writes++
	return s.DB.Write(ctx, fn)
}

// Idle loops ask the read pool whether there is work: with nothing to do, a
// round of every loop takes no write transaction (the write lock is for work).
func TestIdleLoopsTakeNoWriteLock(t *testing.T) {
	r := openRig(t)
	var writes int
	r.eng = engine.New(countingStore{r.st, &writes}, r.opts)
	r.load(echo, weekly) // a schedule that is not due yet
	r.send(ana, textMsg("hi"))
	r.settle()
	writes = 0
	for range 5 {
		if n, err := r.eng.Step(r.ctx); err != nil || n != 0 {
			t.Fatalf("idle step: %d, %v", n, err)
		}
	}
	if writes != 0 {
		t.Errorf("%d write transactions in 5 idle rounds", writes)
	}
	// Work still gets done: the reply timeout falls due.
	r.advance(2 * time.Hour)
	if got := callBodies(r, ana); got != "Say something, Gone" {
		t.Errorf("calls %q", got)
	}
}

// A schedule page that cannot be written because of one contact's run is
// taken again one contact at a time: that contact is passed over, the rest of
// the audience gets the broadcast.
func TestSchedulePageSplitPassesOverTheCulprit(t *testing.T) {
	r := openRig(t, withOpts(func(o *engine.Options) { o.BatchSize = 4 }))
	r.eng = engine.New(poisonStore{r.st}, r.opts)
	r.load(strings.Replace(weekly, "steps:\n", "steps:\n  - id: who\n    set: {name: \"${contact.name}\"}\n", 1))
	var cs []*store.Contact
	for i := range 10 {
		name := fmt.Sprint("C", i)
		if i == 5 {
			name = "poison"
		}
		cs = append(cs, &store.Contact{WaID: fmt.Sprintf("4400%04d", i), Name: name, Consent: store.ConsentIn, Tags: []string{"lead"}})
	}
	r.seedContacts(cs...)
	r.advance(monday.Sub(r.now()))
	got := r.runsByContact("weekly")
	for i, c := range cs {
		want := 1
		if i == 5 {
			want = 0
		}
		if got[c.WaID] != want {
			t.Errorf("%s (%s): %d runs, want %d", c.WaID, c.Name, got[c.WaID], want)
		}
	}
	if next := r.queryInt(`SELECT next_at FROM schedules WHERE flow_id = 'weekly'`); next != monday.Add(7*24*time.Hour).UnixMilli() {
		t.Errorf("the broadcast did not finish: next_at %s", time.UnixMilli(next).UTC())
	}
}

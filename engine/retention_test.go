package engine_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/store"
)

// Retention deletes ended runs, settled messages and their statuses, and
// processed inbound events once past their retention, and nothing live.
func TestRetentionDeletesOnlyWhatIsPastIt(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", `
  - id: hello
    send: "hello"
  - id: ask
    wait_for_reply: {}
  - id: bye
    send: "bye"
`)})
	old, live, recent := "15550101", "15550102", "15550103"
	r.send(old, textMsg("hi"))
	r.send(old, textMsg("done")) // completes
	r.status(r.lastOut(old), "delivered", r.now(), 0)
	r.send(live, textMsg("hi")) // waits for a reply for ever
	r.seedContacts(&store.Contact{WaID: "15550104"})
	oldRun, liveRun := r.run(old), r.run(live)
	if oldRun.Status != store.RunCompleted || liveRun.Status != store.RunWaitingReply {
		t.Fatalf("runs %s %s", oldRun.Status, liveRun.Status)
	}
	r.clock.Set(r.now().Add(91 * 24 * time.Hour))
	r.send(recent, textMsg("hi"))
	r.send(recent, textMsg("done"))
	r.status(r.lastOut(recent), "delivered", r.now(), 0)

	deleted, err := r.eng.Retain(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// old: 2 messages, 1 status, its run, its 3 inbox events; live: its hi and
	// its message (settled 91 days ago); the live run stays.
	want := map[string]int{"inbox": 4, "runs": 1, "outbox": 3, "message_statuses": 1}
	for table, n := range want {
		if deleted[table] != n {
			t.Errorf("%s: deleted %d, want %d (%v)", table, deleted[table], n, deleted)
		}
		if got := testutil.ToFloat64(r.eng.Metrics().RetentionDeleted.WithLabelValues(table)); got != float64(n) {
			t.Errorf("%s: metric %v, want %d", table, got, n)
		}
	}
	if rs := r.runs(old); len(rs) != 0 {
		t.Errorf("old run kept: %s", describeRuns(rs))
	}
	if rs := r.runs(live); len(rs) != 1 || !rs[0].Live() {
		t.Errorf("live run: %s", describeRuns(rs))
	}
	if rs := r.runs(recent); len(rs) != 1 {
		t.Errorf("recent run: %s", describeRuns(rs))
	}
	if n := len(r.outbox(recent)); n != 2 {
		t.Errorf("recent messages: %d", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses`); n != 1 {
		t.Errorf("%d statuses left, want the recent one", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM contacts`); n != 4 {
		t.Errorf("contacts are kept (consent): %d", n)
	}
	// The live run still works.
	r.send(live, textMsg("finally"))
	if got := callBodies(r, live); got != "hello, bye" {
		t.Errorf("live contact: %q", got)
	}
	// Nothing more to delete.
	again, err := r.eng.Retain(r.ctx)
	if err != nil || again["inbox"]+again["runs"]+again["outbox"]+again["message_statuses"] != 0 {
		t.Errorf("second pass deleted %v (%v)", again, err)
	}
}

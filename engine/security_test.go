package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A status string is not a label: 500 made-up statuses add one series, not
// 500, to funnel_statuses_total.
func TestStatusMetricLabelsAreBounded(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	r.status(it, "delivered", r.now(), 0)
	for i := 0; i < 500; i++ {
		st := fmt.Sprintf("made_up_%d", i)
		r.statusRaw(ana, statusJSON(fmt.Sprintf("wamid.x%d", i), st, r.now(), "", 0), fmt.Sprintf("wamid.x%d", i), st, r.now())
	}
	m := r.eng.Metrics().StatusesIn
	if n := testutil.CollectAndCount(m); n != 2 {
		t.Fatalf("%d series of funnel_statuses_total, want 2 (delivered, other)", n)
	}
	if got := testutil.ToFloat64(m.WithLabelValues("other")); got != 500 {
		t.Fatalf("other = %v, want 500", got)
	}
}

// Statuses of messages funnel does not know are kept only as long as the
// inbox retention; those of its own messages stay.
func TestOrphanStatusesArePurgedWithTheInbox(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	r.status(it, "delivered", r.now(), 0)
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("wamid.another-tool-%d", i)
		r.statusRaw(ana, statusJSON(id, "delivered", r.now(), "", 0), id, "delivered", r.now())
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 7 {
		t.Fatalf("%d orphan statuses before the purge", n)
	}
	r.clock.Advance(29 * 24 * time.Hour)
	if err := r.eng.PurgeInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 7 {
		t.Fatalf("%d orphan statuses left within the retention, want 7", n)
	}
	r.clock.Advance(2 * 24 * time.Hour)
	if err := r.eng.PurgeInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 0 {
		t.Fatalf("%d orphan statuses left after the retention, want 0", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ?`, it.ID); n != 1 {
		t.Fatalf("the status of funnel's own message was purged (%d left)", n)
	}
}

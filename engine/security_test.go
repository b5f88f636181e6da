package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

const bob = "15550002"

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
	if _, err := r.eng.Retain(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 7 {
		t.Fatalf("%d orphan statuses left within the retention, want 7", n)
	}
	r.clock.Advance(2 * 24 * time.Hour)
	if _, err := r.eng.Retain(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 0 {
		t.Fatalf("%d orphan statuses left after the retention, want 0", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ?`, it.ID); n != 1 {
		t.Fatalf("the status of funnel's own message was purged (%d left)", n)
	}
}

// Values Meta refuses in a template (a new line in a parameter, more than four
// spaces, a file: link as header media) fail before the call, with the reason
// on the message; the others of the run still go out.
func TestInvalidTemplateValuesFailBeforeTheCall(t *testing.T) {
	r := newRig(t, []string{`flow: notices
language: en_US
trigger:
  event: {name: shipped}
steps:
  - id: lines
    send:
      template: reminder
      params: ["${event.note}"]
  - id: spaces
    send:
      template: reminder
      params: ["${event.spaced}"]
  - id: media
    send:
      template: teaser
      header: "${event.video}"
  - id: fine
    send:
      template: reminder
      params: ["${contact.name}"]
`})
	r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Consent: store.ConsentIn})
	r.event(ana, "shipped", map[string]any{"note": "first line\nsecond line", "spaced": "wide     gap", "video": "file:///etc/passwd"})
	want := map[string]string{
		"lines":  "has a new line at character 11",
		"spaces": "more than 4 consecutive spaces",
		"media":  `"file:///etc/passwd" is not an http(s) URL`,
	}
	for _, it := range r.outbox(ana) {
		reason, bad := want[it.Step]
		switch {
		case bad && (it.Status != store.OutFailed || !strings.Contains(it.LastError, reason)):
			t.Errorf("%s: %s %q, want failed with %q", it.Step, it.Status, it.LastError, reason)
		case !bad && it.Status != store.OutSent:
			t.Errorf("%s: %s %q, want sent", it.Step, it.Status, it.LastError)
		}
	}
	if calls := r.ch.sent(ana); len(calls) != 1 {
		t.Fatalf("%d calls reached the channel, want only the valid message", len(calls))
	}
	if n := r.refusals("invalid"); n != 3 {
		t.Errorf("refusals{invalid} = %v, want 3", n)
	}
}

// One contact cannot queue more than MaxQueuedPerContact unsent messages:
// the excess is dropped and counted, and other contacts are not affected.
func TestContactQueueIsCapped(t *testing.T) {
	r := newRig(t, []string{"flow: echo\nlanguage: en_US\ntrigger: {message: {}}\nreenter: true\nsteps:\n  - id: m\n    send: \"got ${reply.text}\"\n"},
		withOpts(func(o *engine.Options) { o.MaxQueuedPerContact = 10 }))
	r.ch.fn = func(*whatsapp.Message) error { return apiErr(131000, 500) } // nothing leaves: the queue only grows
	var items []store.InboxItem
	for i := 0; i < 25; i++ {
		items = append(items, r.inboundItem(ana, textMsg(fmt.Sprint("flood ", i)), r.now()))
	}
	items = append(items, r.inboundItem(bob, textMsg("hello"), r.now()))
	r.enqueue(items...)
	if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM outbox WHERE contact = ?`, ana); n != 10 {
		t.Fatalf("%d messages queued for the flooding contact, want the cap of 10", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM outbox WHERE contact = ?`, bob); n != 1 {
		t.Fatalf("%d messages for another contact, want 1", n)
	}
	if n := r.refusals("queue_full"); n != 15 {
		t.Fatalf("refusals{queue_full} = %v, want 15", n)
	}
	// Later messages are dropped too while the queue stays full.
	r.enqueue(r.inboundItem(ana, textMsg("more"), r.now()))
	if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.refusals("queue_full"); n != 16 {
		t.Fatalf("refusals{queue_full} = %v, want 16", n)
	}
}

// A contact held back by the pair rate has all its queued messages moved to
// its next slot: none is left due, so claim rounds do not read them until then.
func TestPacedContactLeavesTheDueIndex(t *testing.T) {
	r := newRig(t, []string{"flow: echo\nlanguage: en_US\ntrigger: {message: {}}\nreenter: true\nsteps:\n  - id: m\n    send: \"got ${reply.text}\"\n"},
		withOpts(func(o *engine.Options) { o.NoPacing, o.PairBurst, o.PairInterval, o.Rate = false, 1, time.Hour, 1000 }))
	var items []store.InboxItem
	for i := 0; i < 6; i++ {
		items = append(items, r.inboundItem(ana, textMsg(fmt.Sprint("m", i)), r.now()))
	}
	r.enqueue(items...)
	if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := r.eng.SendOutbox(r.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.ch.sent(ana)); n != 1 {
		t.Fatalf("%d sent inside one pair interval, want 1", n)
	}
	now := r.now().UnixMilli()
	if n := r.queryInt(`SELECT COUNT(*) FROM outbox WHERE contact = ? AND status = 'pending'`, ana); n != 5 {
		t.Fatalf("%d pending, want 5", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM outbox WHERE contact = ? AND status = 'pending' AND next_attempt_at <= ?`, ana, now); n != 0 {
		t.Fatalf("%d of the paced contact's messages are still due now: every claim reads them", n)
	}
	// At the next slot the next one goes out, in order.
	r.clock.Advance(time.Hour)
	if _, err := r.eng.SendOutbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	sent := r.ch.sent(ana)
	second := r.queryInt(`SELECT id FROM outbox WHERE contact = ? ORDER BY id LIMIT 1 OFFSET 1`, ana)
	if len(sent) != 2 || sent[1].Msg.BizOpaqueCallbackData != engine.CallbackData(second) {
		t.Fatalf("after one interval: %d sent, want the second message (%s): %s", len(sent), engine.CallbackData(second), sent[len(sent)-1].Msg.BizOpaqueCallbackData)
	}
}

package engine_test

// The outbox sender against a scripted channel: retry classes, the pause on
// fatal errors, at-most-once for unknown outcomes, pacing, per-contact order and
// status webhooks.

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

// threeTexts answers "hi" with three texts at once.
var threeTexts = onHi("three", "", `
  - id: m1
    send: "first"
  - id: m2
    send: "second"
  - id: m3
    send:
      text: "third"
      fallback: {template: reminder, params: ["${contact.name}"]}
`)

func callBodies(r *rig, waID string) string {
	var out []string
	for _, c := range r.ch.sent(waID) {
		switch {
		case c.Msg.Text != nil:
			out = append(out, c.Msg.Text.Body)
		case c.Msg.Template != nil:
			out = append(out, "template "+c.Msg.Template.Name)
		}
	}
	return strings.Join(out, ", ")
}

func (r *rig) sends(typ, outcome string) float64 {
	return testutil.ToFloat64(r.eng.Metrics().Sends.WithLabelValues(typ, outcome))
}

func TestSenderRetryableErrorBacksOff(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.ch.then(apiErr(130429, 400))
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	// Full jitter with Rand = 0.5: 0.5 × 1s.
	if it.Status != store.OutPending || it.Attempts != 1 || it.ErrorCode != 130429 ||
		!it.NextAttemptAt.Equal(rigStart.Add(500*time.Millisecond)) {
		t.Fatalf("after a throughput error: %+v", it)
	}
	r.settle()
	if n := len(r.ch.sent(ana)); n != 1 {
		t.Fatalf("retried before the backoff: %d calls", n)
	}
	r.advance(500 * time.Millisecond)
	it = r.lastOut(ana)
	if it.Status != store.OutSent || it.Attempts != 1 || it.ErrorCode != 0 || it.LastError != "" {
		t.Fatalf("after the retry: %+v", it)
	}
	if calls := r.ch.sent(ana); len(calls) != 2 || !calls[1].At.Equal(rigStart.Add(500*time.Millisecond)) {
		t.Fatalf("calls %+v", calls)
	}
	if r.sends("text", "retry") != 1 || r.sends("text", "sent") != 1 {
		t.Errorf("metrics: retry %v sent %v", r.sends("text", "retry"), r.sends("text", "sent"))
	}
}

func TestSenderPairRateErrorBacksOff4n(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.ch.then(apiErr(131056, 400), apiErr(131056, 400))
	r.send(ana, textMsg("hi"))
	// 4^0 s × (1 + 0.5), then 4^1 s × 1.5.
	if it := r.lastOut(ana); !it.NextAttemptAt.Equal(rigStart.Add(1500 * time.Millisecond)) {
		t.Fatalf("first backoff until %s", it.NextAttemptAt)
	}
	r.advance(1500 * time.Millisecond)
	if it := r.lastOut(ana); it.Attempts != 2 || !it.NextAttemptAt.Equal(r.now().Add(6*time.Second)) {
		t.Fatalf("second backoff: %+v", it)
	}
	r.advance(6 * time.Second)
	if it := r.lastOut(ana); it.Status != store.OutSent || len(r.ch.sent(ana)) != 3 {
		t.Fatalf("%+v after %d calls", it, len(r.ch.sent(ana)))
	}
}

func TestSenderGivesUpAfterMaxAttempts(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")},
		withOpts(func(o *engine.Options) { o.MaxAttempts = 3 }))
	r.ch.then(apiErr(2, 503), apiErr(2, 503), apiErr(2, 503), nil)
	r.send(ana, textMsg("hi"))
	r.advance(time.Hour)
	it := r.lastOut(ana)
	if it.Status != store.OutFailed || it.Attempts != 3 || it.ErrorCode != 2 {
		t.Fatalf("%+v", it)
	}
	if n := len(r.ch.sent(ana)); n != 3 {
		t.Fatalf("%d calls", n)
	}
}

func TestSenderPermanentErrorFails(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(apiErr(131026, 400))
	r.send(ana, textMsg("hi"))
	out := r.outbox(ana)
	if out[0].Status != store.OutFailed || out[0].ErrorCode != 131026 || !strings.Contains(out[0].LastError, "131026") {
		t.Fatalf("first: %+v", out[0])
	}
	// A failed message does not hold the contact's queue.
	if out[1].Status != store.OutSent || out[2].Status != store.OutSent {
		t.Fatalf("rest: %s %s", out[1].Status, out[2].Status)
	}
	r.advance(time.Hour)
	if got := callBodies(r, ana); got != "first, second, third" {
		t.Fatalf("calls: %s", got)
	}
}

// Meta says 131047 although the engine thought the window open (clocks differ,
// a status we have not seen yet): the fallback template goes next.
func TestSender131047FromTheAPISendsTheFallback(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(nil, nil, apiErr(131047, 400))
	r.send(ana, textMsg("hi"))
	third := r.outbox(ana)[2]
	if third.Status != store.OutSent || third.SentAs != "fallback" || third.Kind != store.KindTemplate {
		t.Fatalf("third: %+v", third)
	}
	if got := callBodies(r, ana); got != "first, second, third, template reminder" {
		t.Fatalf("calls: %s", got)
	}
	if n := testutil.ToFloat64(r.eng.Metrics().Seen131047); n != 1 {
		t.Errorf("131047 counted %v times", n)
	}
	// Without a fallback, 131047 fails the message.
	r2 := newRig(t, []string{threeTexts})
	r2.ch.then(apiErr(131047, 400))
	r2.send(ana, textMsg("hi"))
	if first := r2.outbox(ana)[0]; first.Status != store.OutFailed || first.ErrorCode != 131047 {
		t.Fatalf("first: %+v", first)
	}
}

func TestSenderFatalErrorPausesWithoutBurningTheMessage(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.ch.then(apiErr(190, 401))
	r.send(ana, textMsg("hi"))
	r.send("15550002", textMsg("hi"))
	if reason := r.eng.Paused(); !strings.Contains(reason, "190") {
		t.Fatalf("paused %q", reason)
	}
	it := r.outbox(ana)[0]
	if it.Status != store.OutPending || it.Attempts != 0 || it.ErrorCode != 190 {
		t.Fatalf("row: %+v", it)
	}
	if g := testutil.ToFloat64(r.eng.Metrics().SenderPaused.WithLabelValues("error 190")); g != 1 {
		t.Errorf("paused gauge %v", g)
	}
	// Nothing goes out while paused, however long.
	r.advance(2 * time.Hour)
	if n := len(r.ch.sent("")); n != 1 {
		t.Fatalf("%d calls while paused", n)
	}
	r.eng.ResumeSender()
	r.settle()
	if r.eng.Paused() != "" {
		t.Fatal("still paused")
	}
	if it := r.outbox(ana)[0]; it.Status != store.OutSent {
		t.Fatalf("after resume: %+v", it)
	}
	if it := r.outbox("15550002")[0]; it.Status != store.OutSent {
		t.Fatalf("other contact after resume: %+v", it)
	}
}

func TestSenderSpamLimitPausesForAWhile(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.ch.then(apiErr(131048, 400))
	r.send(ana, textMsg("hi"))
	if r.eng.Paused() == "" || r.lastOut(ana).Status != store.OutPending {
		t.Fatalf("paused %q, row %+v", r.eng.Paused(), r.lastOut(ana))
	}
	r.clock.Set(r.now().Add(whatsapp.PauseFor))
	r.settle()
	if r.eng.Paused() != "" || r.lastOut(ana).Status != store.OutSent {
		t.Fatalf("after 10m: paused %q, row %+v", r.eng.Paused(), r.lastOut(ana))
	}
}

// With resend_unknown_after 0 (at-most-once), a message whose outcome is
// unknown is never sent again.
func TestSenderUnknownOutcomeAtMostOnce(t *testing.T) {
	r := newRig(t, []string{threeTexts}, withOpts(func(o *engine.Options) { o.ResendUnknownAfter = -1 }))
	r.ch.then(errConnReset)
	r.send(ana, textMsg("hi"))
	r.advance(24 * time.Hour)
	out := r.outbox(ana)
	if out[0].Status != store.OutUnknown || !strings.Contains(out[0].LastError, "at-most-once") {
		t.Fatalf("first: %+v", out[0])
	}
	if got := callBodies(r, ana); got != "first, second, third" {
		t.Fatalf("calls: %s", got)
	}
	if n := r.sends("text", "unknown"); n != 1 {
		t.Errorf("unknown counted %v", n)
	}
}

// By default, a message whose outcome is unknown and for which no status
// webhook came within 10 minutes is sent once more, and only once.
func TestSenderUnknownOutcomeIsSentOnceMore(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(errConnReset)
	r.send(ana, textMsg("hi"))
	first := r.outbox(ana)[0]
	if first.Status != store.OutUnknown || !strings.Contains(first.LastError, "sent once more if no status") {
		t.Fatalf("first: %+v", first)
	}
	r.advance(9 * time.Minute)
	if got := callBodies(r, ana); got != "first, second, third" {
		t.Fatalf("resent before its time: %s", got)
	}
	r.advance(2 * time.Minute)
	if got := callBodies(r, ana); got != "first, second, third, first" {
		t.Fatalf("calls: %s", got)
	}
	again := r.outbox(ana)[0]
	if again.Status != store.OutSent || again.Resends != 1 || !again.SentAt.Equal(rigStart.Add(10*time.Minute)) {
		t.Fatalf("after the resend: %+v", again)
	}
	if n := r.sends("any", "resent"); n != 1 {
		t.Errorf("resends counted %v", n)
	}
	// The first attempt had reached Meta after all: its status is recorded,
	// the row keeps the second attempt's id, and nothing is sent a third time.
	r.statusRaw(ana, statusJSON("wamid.first-attempt", "delivered", r.now(), engine.CallbackData(again.ID), 0), "wamid.first-attempt", "delivered", r.now())
	r.advance(time.Hour)
	if got := callBodies(r, ana); got != "first, second, third, first" {
		t.Fatalf("calls after the late status: %s", got)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ? AND provider_id = 'wamid.first-attempt'`, again.ID); n != 1 {
		t.Errorf("late status recorded %d times", n)
	}
	if got := r.outbox(ana)[0]; got.ProviderID != again.ProviderID || got.Status != store.OutSent {
		t.Errorf("row after the late status: %s %s", got.Status, got.ProviderID)
	}
}

// A status webhook within the delay settles an unknown message: not resent.
func TestSenderUnknownOutcomeSettledByStatus(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(errConnReset)
	r.send(ana, textMsg("hi"))
	it := r.outbox(ana)[0]
	r.advance(5 * time.Minute)
	r.statusRaw(ana, statusJSON("wamid.accepted", "sent", r.now(), engine.CallbackData(it.ID), 0), "wamid.accepted", "sent", r.now())
	r.advance(time.Hour)
	if got := callBodies(r, ana); got != "first, second, third" {
		t.Fatalf("calls: %s", got)
	}
	if got := r.outbox(ana)[0]; got.Status != store.OutSent || got.ProviderID != "wamid.accepted" || got.Resends != 0 {
		t.Fatalf("row: %+v", got)
	}
}

// A status that reached the inbox before the deadline settles the message even
// when it is processed after it: the resend waits for older events first.
func TestSenderUnknownOutcomeWaitsForQueuedStatuses(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(errConnReset)
	r.send(ana, textMsg("hi"))
	it := r.outbox(ana)[0]
	r.clock.Set(r.now().Add(9 * time.Minute))
	r.enqueueStatus(ana, statusJSON("wamid.accepted", "delivered", r.now(), engine.CallbackData(it.ID), 0), "wamid.accepted", "delivered")
	r.clock.Set(r.now().Add(5 * time.Minute))
	// The sender looks first, with the status still unprocessed.
	if _, err := r.eng.SendOutbox(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := callBodies(r, ana); got != "first, second, third" {
		t.Fatalf("calls: %s", got)
	}
	if got := r.outbox(ana)[0]; got.Status != store.OutDelivered {
		t.Fatalf("row: %s", got.Status)
	}
}

// A message sent once more whose second call ends unknown too is not sent a
// third time.
func TestSenderUnknownOutcomeOnlyOnceMore(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(errConnReset, nil, nil, errConnReset)
	r.send(ana, textMsg("hi"))
	r.advance(2 * time.Hour)
	if got := callBodies(r, ana); got != "first, second, third, first" {
		t.Fatalf("calls: %s", got)
	}
	if got := r.outbox(ana)[0]; got.Status != store.OutUnknown || got.Resends != 1 || !strings.Contains(got.LastError, "at-most-once") {
		t.Fatalf("row: %+v", got)
	}
}

func TestSenderPerContactOrder(t *testing.T) {
	r := newRig(t, []string{threeTexts})
	r.ch.then(apiErr(130429, 429))
	r.send(ana, textMsg("hi"))
	r.send("15550002", textMsg("hi"))
	// Ana's first message waits for its retry; her later ones wait behind it,
	// while the other contact's go.
	if got := callBodies(r, ana); got != "first" {
		t.Fatalf("ana: %s", got)
	}
	if got := callBodies(r, "15550002"); got != "first, second, third" {
		t.Fatalf("other: %s", got)
	}
	r.advance(time.Second)
	if got := callBodies(r, ana); got != "first, first, second, third" {
		t.Fatalf("ana after the retry: %s", got)
	}
}

func TestSenderPairRatePacing(t *testing.T) {
	four := onHi("four", "", `
  - id: m1
    send: "1"
  - id: m2
    send: "2"
  - id: m3
    send: "3"
  - id: m4
    send: "4"
`)
	r := newRig(t, []string{four}, withOpts(func(o *engine.Options) {
		o.NoPacing, o.PairBurst, o.PairInterval, o.Rate = false, 2, 6*time.Second, 1000
	}))
	r.send(ana, textMsg("hi"))
	// A burst of two, then one per 6s; deferred messages stay pending.
	if got := callBodies(r, ana); got != "1, 2" {
		t.Fatalf("burst: %s", got)
	}
	out := r.outbox(ana)
	if out[2].Status != store.OutPending || out[2].Attempts != 0 || !out[2].NextAttemptAt.Equal(rigStart.Add(6*time.Second)) {
		t.Fatalf("third: %+v", out[2])
	}
	r.advance(time.Minute)
	calls := r.ch.sent(ana)
	want := []time.Duration{0, 0, 6 * time.Second, 12 * time.Second}
	if len(calls) != len(want) {
		t.Fatalf("calls: %s", callBodies(r, ana))
	}
	for i, c := range calls {
		if c.Msg.Text.Body != string(rune('1'+i)) || !c.At.Equal(rigStart.Add(want[i])) {
			t.Errorf("call %d: %q at +%s", i, c.Msg.Text.Body, c.At.Sub(rigStart))
		}
	}
	for _, it := range r.outbox(ana) {
		if it.Status != store.OutSent || it.Attempts != 0 {
			t.Errorf("%s: %+v", it.Step, it)
		}
	}
}

// The sandbox's OffsetClock runs ahead of the wall clock once fast-forwarded:
// pacing must wait on the engine's clock, not until a wall-clock instant days
// away.
func TestSenderPacingOnAnOffsetClock(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.DSN(t, filepath.Join(t.TempDir(), "f.db")), store.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &engine.OffsetClock{}
	clock.Set(time.Now().Add(3 * 24 * time.Hour))
	ch := newScriptChannel(clock)
	eng := engine.New(st, engine.Options{Clock: clock, Channel: ch, PhoneNumberID: "pn",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r := &rig{t: t, ctx: ctx, dir: t.TempDir(), clock: engine.NewVirtualClock(rigStart), ch: ch, eng: eng, st: st}
	p, diags := r.project(onHi("one", "", "  - id: m\n    send: \"hello\"\n"))
	if err := eng.Load(ctx, p, diags); err != nil {
		t.Fatal(err)
	}
	var items []store.InboxItem
	for _, id := range []string{"15550001", "15550002", "15550003"} {
		items = append(items, r.inboundItem(id, textMsg("hi"), clock.Now()))
	}
	if _, err := eng.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.RunUntilIdle(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the paced sender sleeps until a wall-clock time: the offset clock is 3 days ahead")
	}
	if n := len(ch.sent("")); n != 3 {
		t.Fatalf("%d calls", n)
	}
}

// ---- status webhooks ----

func TestStatusFailed131047(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	r.status(it, "failed", r.now(), 131047)
	got := r.lastOut(ana)
	if got.Status != store.OutFailed || got.ErrorCode != 131047 || !strings.Contains(got.LastError, "Re-engagement") {
		t.Fatalf("row %+v", got)
	}
	if n := testutil.ToFloat64(r.eng.Metrics().Seen131047); n != 1 {
		t.Errorf("131047 counted %v", n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ? AND status = 'failed' AND error_code = 131047`, it.ID); n != 1 {
		t.Errorf("%d status records", n)
	}
	if res := r.lastResult(); res != engine.ResultStatus {
		t.Errorf("result %q", res)
	}
}

func TestStatusOrdering(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	r.status(it, "read", r.now(), 0)
	if got := r.lastOut(ana).Status; got != store.OutRead {
		t.Fatalf("after read: %s", got)
	}
	// Delivered arrives after read: read stays.
	r.status(it, "delivered", r.now(), 0)
	if got := r.lastOut(ana).Status; got != store.OutRead || r.lastResult() != engine.ResultStatusOld {
		t.Fatalf("after a late delivered: %s (%s)", got, r.lastResult())
	}
	// A failed status after delivery does not undo it.
	r.status(it, "failed", r.now(), 131026)
	if got := r.lastOut(ana); got.Status != store.OutRead || got.ErrorCode != 0 {
		t.Fatalf("after a late failed: %+v", got)
	}
	// Every status is recorded, even those that change nothing.
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id = ?`, it.ID); n != 3 {
		t.Errorf("%d status records", n)
	}
	// Meta redelivers: the same status is stored once.
	before := r.queryInt(`SELECT COUNT(*) FROM inbox`)
	r.status(it, "read", r.now(), 0)
	if n := r.queryInt(`SELECT COUNT(*) FROM inbox`); n != before {
		t.Errorf("a redelivered status was stored again")
	}
}

func TestStatusMatchedByMessageID(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	// No biz_opaque_callback_data: the wamid ties the status to the row.
	r.statusRaw(ana, statusJSON(it.ProviderID, "delivered", r.now(), "", 0), it.ProviderID, "delivered", r.now())
	if got := r.lastOut(ana).Status; got != store.OutDelivered {
		t.Fatalf("status %s", got)
	}
}

func TestStatusForUnknownMessageIsRecorded(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello\"\n")})
	r.statusRaw(ana, statusJSON("wamid.sent-by-another-tool", "delivered", r.now(), "", 0), "wamid.sent-by-another-tool", "delivered", r.now())
	r.statusRaw(ana, statusJSON("wamid.other", "failed", r.now(), "funnel:999999", 131026), "wamid.other", "failed", r.now())
	if res := r.lastResult(); res != engine.ResultStatusOld {
		t.Errorf("result %q", res)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM message_statuses WHERE outbox_id IS NULL`); n != 2 {
		t.Errorf("%d unattached status records", n)
	}
	if n := testutil.ToFloat64(r.eng.Metrics().StatusesIn.WithLabelValues("failed")); n != 1 {
		t.Errorf("statuses counted %v", n)
	}
}

// A process that starts sending (a restart, a replica taking the lease over)
// paces each recipient as the previous sender left them: no fresh burst.
func TestSenderPairRateAcrossRestart(t *testing.T) {
	four := onHi("four", "", `
  - id: m1
    send: "1"
  - id: m2
    send: "2"
  - id: m3
    send: "3"
  - id: m4
    send: "4"
`)
	r := newRig(t, []string{four}, withOpts(func(o *engine.Options) {
		o.NoPacing, o.PairBurst, o.PairInterval, o.Rate = false, 2, 6*time.Second, 1000
	}))
	r.send(ana, textMsg("hi"))
	if got := callBodies(r, ana); got != "1, 2" {
		t.Fatalf("burst: %s", got)
	}
	r.advance(time.Second)
	r.restart(four)
	r.advance(time.Minute)
	calls := r.ch.sent(ana)
	want := []time.Duration{0, 0, 6 * time.Second, 12 * time.Second}
	if len(calls) != len(want) {
		t.Fatalf("calls: %s", callBodies(r, ana))
	}
	for i, c := range calls {
		if !c.At.Equal(rigStart.Add(want[i])) {
			t.Errorf("call %d: %q at +%s, want +%s", i, c.Msg.Text.Body, c.At.Sub(rigStart), want[i])
		}
	}
}

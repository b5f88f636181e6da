package engine_test

// One test per runtime refusal: the sender re-checks the window, the opt-out and
// the consent at the moment of sending, whatever the validator said.

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// lateFlow answers "hi" after 23h: inside the window for a message that arrived
// on time, outside it for one that was written 25h before it arrived (the wait
// counts from the message's own timestamp, so it is over at once, but the
// window closed before the engine could answer).
func lateFlow(send string) string {
	return onHi("late", "", `
  - id: pause
    wait: 23h
  - id: nudge
    send:
`+send)
}

const nudgeWithFallback = `      text: "Still interested, ${contact.name}?"
      fallback: {template: reminder, params: ["${contact.name}"]}
`

const nudgeNoFallback = `      text: "Still interested, ${contact.name}?"
`

func (r *rig) refusals(reason string) float64 {
	return testutil.ToFloat64(r.eng.Metrics().Refusals.WithLabelValues(reason))
}

// assertNoLateFreeForm fails if the channel ever got a free-form message 24h or
// more after the contact last wrote.
func assertNoLateFreeForm(t *testing.T, r *rig) {
	t.Helper()
	for _, c := range r.ch.sent("") {
		if c.Msg.Type != "template" && (c.Gap < 0 || c.Gap >= dsl.Window) {
			t.Errorf("free-form %s to %s handed to the channel %s after the contact's last message", c.Msg.Type, c.Msg.To, c.Gap)
		}
	}
	if n := testutil.ToFloat64(r.eng.Metrics().Seen131047); n != 0 {
		t.Errorf("131047 seen %v times", n)
	}
}

func TestPolicyWindowClosedSendsTheFallback(t *testing.T) {
	r := newRig(t, []string{lateFlow(nudgeWithFallback)})
	r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
	r.advance(23 * time.Hour)
	it := r.lastOut(ana)
	if it.Status != store.OutSent || it.SentAs != "fallback" || it.Step != "nudge" {
		t.Fatalf("row: %+v", it)
	}
	calls := r.ch.sent(ana)
	if len(calls) != 1 || calls[0].Msg.Type != "template" || calls[0].Msg.Template.Name != "reminder" {
		t.Fatalf("calls: %+v", calls)
	}
	if calls[0].Msg.BizOpaqueCallbackData != wantCallback(it) {
		t.Errorf("callback %q", calls[0].Msg.BizOpaqueCallbackData)
	}
	assertNoLateFreeForm(t, r)
}

func TestPolicyWindowClosedWithoutFallbackNeverCallsTheAPI(t *testing.T) {
	r := newRig(t, []string{lateFlow(nudgeNoFallback)})
	r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
	r.advance(23 * time.Hour)
	it := r.lastOut(ana)
	if it.Status != store.OutWindowClosed || it.LastError == "" || it.Attempts != 0 || it.SentAs != "" {
		t.Fatalf("row: %+v", it)
	}
	if n := len(r.ch.sent("")); n != 0 {
		t.Fatalf("the channel was called %d times", n)
	}
	if n := r.refusals(store.OutWindowClosed); n != 1 {
		t.Errorf("refusals %v", n)
	}
	// The run goes on: a refused message does not fail the flow.
	if run := r.run(ana); run.Status != store.RunCompleted {
		t.Errorf("run %+v", run)
	}
	// On time, the same flow sends the message itself.
	r2 := newRig(t, []string{lateFlow(nudgeNoFallback)})
	r2.send(ana, textMsg("hi"))
	r2.advance(23 * time.Hour)
	if it := r2.lastOut(ana); it.Status != store.OutSent || it.SentAs != "message" {
		t.Fatalf("on time: %+v", it)
	}
}

// The window guard: a minute before the 24h mark the window counts as closed.
func TestPolicyWindowGuard(t *testing.T) {
	r := newRigUnchecked(t, []string{onHi("edge", "", `
  - id: pause
    wait: 23h59m30s
  - id: nudge
    send: "last chance"
`)})
	r.send(ana, textMsg("hi"))
	r.advance(24 * time.Hour)
	if it := r.lastOut(ana); it.Status != store.OutWindowClosed {
		t.Fatalf("row %+v", it)
	}
	assertNoLateFreeForm(t, r)
}

func TestPolicyOptedOutContactGetsNoTemplate(t *testing.T) {
	r := newRig(t, []string{`flow: notify
language: en_US
assume_opt_in: true
trigger:
  event: {name: ping}
steps:
  - id: utility
    send:
      template: reminder
      params: ["${contact.name}"]
  - id: marketing
    send:
      template: promo
      params: ["${contact.name}", "10%"]
`})
	r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Consent: store.ConsentOut, ConsentSource: "keyword:STOP"})
	r.event(ana, "ping", nil)
	for _, it := range r.outbox(ana) {
		if it.Status != store.OutOptedOut {
			t.Errorf("%s: %s", it.Step, it.Status)
		}
	}
	if n := len(r.ch.sent("")); n != 0 {
		t.Fatalf("%d calls", n)
	}
	if n := r.refusals(store.OutOptedOut); n != 2 {
		t.Errorf("refusals %v", n)
	}
}

// A closed window with a fallback still never sends the fallback to a contact
// who opted out.
func TestPolicyFallbackToOptedOutContact(t *testing.T) {
	r := newRig(t, []string{lateFlow(nudgeWithFallback)})
	r.seedContacts(&store.Contact{WaID: ana, Consent: store.ConsentOut, Attributes: map[string]any{},
		CreatedAt: r.now(), UpdatedAt: r.now()})
	r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
	r.advance(23 * time.Hour)
	if it := r.lastOut(ana); it.Status != store.OutOptedOut {
		t.Fatalf("row %+v", it)
	}
	if n := len(r.ch.sent("")); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

func marketingFlow(id, head, before string) string {
	return "flow: " + id + "\nlanguage: en_US\n" + head + `trigger:
  event: {name: promo}
steps:
` + before + `  - id: promo
    send:
      template: promo
      params: ["${contact.name}", "20%"]
  - id: utility
    send:
      template: reminder
      params: ["${contact.name}"]
`
}

func TestPolicyMarketingNeedsConsent(t *testing.T) {
	cases := []struct {
		name    string
		flow    string
		consent string
		want    string
	}{
		{"no consent", marketingFlow("m", "", ""), "", store.OutNoConsent},
		{"assume_opt_in", marketingFlow("m", "assume_opt_in: true\n", ""), "", store.OutSent},
		{"opted in before", marketingFlow("m", "", ""), store.ConsentIn, store.OutSent},
		{"opt_in step first", marketingFlow("m", "", "  - id: consent\n    opt_in: true\n"), "", store.OutSent},
		{"opt_out step first", marketingFlow("m", "assume_opt_in: true\n", "  - id: withdraw\n    opt_out: true\n"), store.ConsentIn, store.OutOptedOut},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{tc.flow})
			r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Consent: tc.consent})
			r.event(ana, "promo", nil)
			var promo, utility *store.OutboxItem
			for _, it := range r.outbox(ana) {
				switch it.Step {
				case "promo":
					promo = it
				case "utility":
					utility = it
				}
			}
			if promo.Status != tc.want || promo.Category != "MARKETING" {
				t.Errorf("MARKETING: %s (%s)", promo.Status, promo.LastError)
			}
			// UTILITY needs no marketing consent, only no opt-out.
			wantUtility := store.OutSent
			if tc.want == store.OutOptedOut {
				wantUtility = store.OutOptedOut
			}
			if utility.Status != wantUtility {
				t.Errorf("UTILITY: %s", utility.Status)
			}
			for _, c := range r.ch.sent(ana) {
				if c.Msg.Template.Name == "promo" && tc.want != store.OutSent {
					t.Error("the refused template reached the channel")
				}
			}
		})
	}
}

// A webhook Meta delivered 25h late: the contact's window runs from the message's
// own timestamp, so the free-form answer is refused (or replaced by its
// fallback) and never meets a 131047.
func TestPolicyWebhookDelayed25h(t *testing.T) {
	answer := func(send string) string {
		return onHi("answer", "", "  - id: reply\n    send:\n"+send)
	}
	t.Run("no fallback", func(t *testing.T) {
		r := newRig(t, []string{answer(nudgeNoFallback)})
		r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
		if c := r.contact(ana); !c.LastInboundAt.Equal(rigStart.Add(-25 * time.Hour)) {
			t.Errorf("last inbound %s", c.LastInboundAt)
		}
		if it := r.lastOut(ana); it.Status != store.OutWindowClosed {
			t.Fatalf("row %+v", it)
		}
		if n := len(r.ch.sent("")); n != 0 {
			t.Fatalf("%d calls", n)
		}
		assertNoLateFreeForm(t, r)
	})
	t.Run("fallback", func(t *testing.T) {
		r := newRig(t, []string{answer(nudgeWithFallback)})
		r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
		if it := r.lastOut(ana); it.Status != store.OutSent || it.SentAs != "fallback" {
			t.Fatalf("row %+v", it)
		}
		assertNoLateFreeForm(t, r)
	})
	t.Run("an older message does not move the window back", func(t *testing.T) {
		r := newRig(t, []string{answer(nudgeNoFallback)})
		r.sendWritten(ana, textMsg("hello"), r.now().Add(-time.Hour))
		r.sendWritten(ana, textMsg("hi"), r.now().Add(-25*time.Hour))
		if c := r.contact(ana); !c.LastInboundAt.Equal(rigStart.Add(-time.Hour)) {
			t.Errorf("last inbound %s", c.LastInboundAt)
		}
		if it := r.lastOut(ana); it.Status != store.OutSent {
			t.Errorf("%s: %s", it.Step, it.Status)
		}
		assertNoLateFreeForm(t, r)
	})
}

// A reply whose webhook arrives late: the waits and reply timeouts after it count
// from the reply's own timestamp (the validator's model), and a wait already
// over ends at once. "reply, wait 23h, free-form" keeps its window however late
// the webhook was.
func TestPolicyLateWebhookAnchorsWaits(t *testing.T) {
	flow := onHi("late", "", `
  - id: ask
    send: {text: "Remind you tomorrow?", buttons: ["Yes", "No"]}
  - id: answer
    wait_for_reply: {}
  - id: pause
    wait: 23h
  - id: remind
    send: "Here is your reminder"
  - id: again
    wait_for_reply: {timeout: 20h, on_timeout: bye}
  - id: done
    end: true
  - id: bye
    send: {template: reminder, params: ["bye"]}
`)
	r := newRig(t, []string{flow})
	r.send(ana, textMsg("hi"))
	r.advance(time.Hour)
	written := r.now()
	r.advance(5 * time.Hour)
	r.sendWritten(ana, textMsg("yes"), written) // the webhook arrives 5h late
	if got := r.nextWake(); !got.Equal(written.Add(23 * time.Hour)) {
		t.Fatalf("the wait ends %s after the reply was written, want 23h", got.Sub(written))
	}
	r.advance(18 * time.Hour) // written + 23h
	it := r.lastOut(ana)
	if it.Step != "remind" || it.Status != store.OutSent {
		t.Fatalf("row %+v", it)
	}
	if !it.CreatedAt.Equal(written.Add(23 * time.Hour)) {
		t.Errorf("remind ran %s after the reply", it.CreatedAt.Sub(written))
	}
	// The reply timeout after it counts from the wait's end.
	if got := r.nextWake(); !got.Equal(written.Add(43 * time.Hour)) {
		t.Errorf("the timeout ends %s after the reply, want 43h", got.Sub(written))
	}
	assertNoLateFreeForm(t, r)

	// A wait that is already over when the webhook arrives ends at once.
	r2 := newRig(t, []string{onHi("over", "", `
  - id: ask
    send: {text: "Ready?", buttons: ["Yes"]}
  - id: answer
    wait_for_reply: {}
  - id: pause
    wait: 2h
  - id: go
    send: "Go!"
`)})
	r2.send(ana, textMsg("hi"))
	written = r2.now()
	r2.advance(3 * time.Hour)
	r2.sendWritten(ana, textMsg("yes"), written)
	r2.settle()
	if it := r2.lastOut(ana); it.Step != "go" || !it.CreatedAt.Equal(written.Add(3*time.Hour)) || it.Status != store.OutSent {
		t.Fatalf("row %+v", it)
	}
}

// A reply timeout after a late webhook counts from the message's own timestamp
// like a wait, but gives the contact the whole timeout from when the run starts
// waiting as far as the free-form messages on the no-reply path keep their
// window by the validator's bounds (dsl.Analysis.TimeoutRoom): 30m of margin
// below the 23h59m deadline.
func TestPolicyLateWebhookReplyTimeout(t *testing.T) {
	const freeFormAfter = `
  - id: ask
    send: {text: "Want the code?", buttons: ["Yes"]}
  - id: answer
    wait_for_reply: {timeout: 4h, on_timeout: nudge}
  - id: thanks
    end: true
  - id: nudge
    send: "Last chance for the code"
`
	const templateAfter = `
  - id: ask
    send: {text: "Want the code?", buttons: ["Yes"]}
  - id: answer
    wait_for_reply: {timeout: 4h, on_timeout: later}
  - id: thanks
    end: true
  - id: later
    wait: 1d
  - id: nudge
    send: {template: reminder, params: ["x"]}
`
	// The nudge's bound is 4h: it has 23h59m - 30m - 4h = 19h29m of room.
	room := dsl.SendDeadline - dsl.DefaultMargin - 4*time.Hour
	cases := []struct {
		name  string
		steps string
		late  time.Duration
		want  time.Duration // the timeout's end after the message was written
		// closed: the webhook came after the window had closed, so the nudge,
		// run at once, is refused at send time without reaching the API.
		closed bool
	}{
		{"on time", freeFormAfter, 0, 4 * time.Hour, false},
		{"5h late: the whole timeout from now", freeFormAfter, 5 * time.Hour, 9 * time.Hour, false},
		{"22h late: as far as the nudge keeps its window", freeFormAfter, 22 * time.Hour, 4*time.Hour + room, false},
		{"30h late: no room is left to wait for", freeFormAfter, 30 * time.Hour, 4*time.Hour + room, true},
		{"30h late, no free-form after: the whole timeout", templateAfter, 30 * time.Hour, 34 * time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{onHi("late", "", tc.steps)})
			written := r.now()
			r.advance(tc.late)
			r.sendWritten(ana, textMsg("hi"), written)
			if due := written.Add(tc.want); due.After(r.now()) {
				if got := r.nextWake(); !got.Equal(due) {
					t.Fatalf("the timeout ends %s after the message was written, want %s", got.Sub(written), tc.want)
				}
				r.advance(due.Sub(r.now()))
			}
			it := r.lastOut(ana)
			if it.Step != "nudge" && !(tc.steps == templateAfter && it.Step == "ask") {
				t.Fatalf("row %+v", it)
			}
			if want := map[bool]string{true: store.OutWindowClosed, false: store.OutSent}[tc.closed]; it.Step == "nudge" && it.Status != want {
				t.Errorf("the nudge went out as %s (%s)", it.Status, it.LastError)
			}
			assertNoLateFreeForm(t, r)
		})
	}
}

// A wait already over when a late webhook arrives ends at once, but not inside
// the quiet hours: then at their end, as any wait.
func TestPolicyLateWebhookWaitOverInQuietHours(t *testing.T) {
	r := newRig(t, []string{onHi("quiet", `quiet_hours: {from: "21:00", to: "09:00", timezone: UTC}
`, `
  - id: pause
    wait: 1h
  - id: nudge
    send: {template: reminder, params: ["x"]}
`)})
	// Written at 10:00 UTC, delivered at 23:00: the wait ended at 11:00.
	day := r.now().UTC().Truncate(24 * time.Hour)
	written := day.Add(10 * time.Hour)
	r.advance(day.Add(23 * time.Hour).Sub(r.now()))
	r.sendWritten(ana, textMsg("hi"), written)
	if got, want := r.nextWake(), day.Add(33*time.Hour); !got.Equal(want) {
		t.Fatalf("the wait ends at %s, want the end of the quiet hours %s", got, want)
	}
}

package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// sayFlow is a flow that says its own id, then waits for a reply (so the run
// stays live).
func sayFlow(id, trigger string, extra ...string) string {
	return "flow: " + id + "\nlanguage: en_US\n" + strings.Join(extra, "") + "trigger:\n" + trigger + `
steps:
  - id: say
    send: "this is ` + id + `"
  - id: wait
    wait_for_reply: {timeout: 1h}
  - id: thanks
    send: "` + id + ` got ${reply.text}"
`
}

// started lists the flows whose runs the contact has, in start order.
func (r *rig) started(waID string) []string {
	var ids []string
	for _, x := range r.runs(waID) {
		ids = append(ids, x.FlowID)
	}
	return ids
}

func (r *rig) lastResult() string {
	r.t.Helper()
	return r.queryString(`SELECT result FROM inbox ORDER BY id DESC LIMIT 1`)
}

func TestTriggerWaitingRunGetsTheMessageFirst(t *testing.T) {
	r := newRig(t, []string{
		sayFlow("catch", "  message: {}"),
		sayFlow("menu", "  message: {keywords: [menu]}"),
	})
	r.send(ana, textMsg("hello"))
	r.send(ana, textMsg("menu")) // the reply to catch, not the menu keyword
	if got := r.started(ana); strings.Join(got, ",") != "catch" {
		t.Fatalf("runs: %v", got)
	}
	if res := r.lastResult(); res != engine.ResultResumed {
		t.Errorf("result %q", res)
	}
	if body := decodeJSON(t, r.lastOut(ana).Payload)["text"].(map[string]any)["body"]; body != "catch got menu" {
		t.Errorf("last message %q", body)
	}
	// The run is over: now the keyword starts menu.
	r.send(ana, textMsg("menu"))
	if got := r.started(ana); strings.Join(got, ",") != "catch,menu" {
		t.Fatalf("runs: %v", got)
	}
}

func TestTriggerPrecedence(t *testing.T) {
	flows := []string{
		sayFlow("a-ctwa-any", "  click_to_whatsapp: {}"),
		sayFlow("z-ctwa-ads", `  click_to_whatsapp: {ads: ["ad-1", "ad-2"]}`),
		sayFlow("y-ctwa-ads-text", `  click_to_whatsapp: {ads: ["ad-3"], text: "(?i)sandals"}`),
		sayFlow("x-ctwa-text", `  click_to_whatsapp: {text: "^I saw your ad"}`),
		sayFlow("a-catch-all", "  message: {}"),
		sayFlow("m-keyword", "  message: {keywords: [Menu, help]}"),
		sayFlow("b-pattern", `  message: {pattern: "(?i)menu|order"}`),
	}
	cases := []struct {
		name string
		m    msg
		want string
	}{
		{"ads filter beats no filter", textMsg("Hi").withReferral("ad-2", "Sale"), "z-ctwa-ads"},
		{"an ad no flow lists: the unfiltered flow", textMsg("Hi").withReferral("ad-9", "Other"), "a-ctwa-any"},
		{"ads and text both match", textMsg("sandals please").withReferral("ad-3", "Sandals"), "y-ctwa-ads-text"},
		{"ads match, text does not", textMsg("hello").withReferral("ad-3", "Sandals"), "a-ctwa-any"},
		{"text regex without a referral (wa.me link)", textMsg("I saw your ad on the bus"), "x-ctwa-text"},
		{"keyword, any case, trimmed", textMsg("  MENU "), "m-keyword"},
		{"keyword is the whole message", textMsg("menu please"), "b-pattern"},
		{"pattern", textMsg("where is my order"), "b-pattern"},
		{"catch-all", textMsg("good morning"), "a-catch-all"},
		{"catch-all takes other message types", imageMsg(""), "a-catch-all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, flows)
			r.send(ana, tc.m)
			if got := r.started(ana); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("started %v, want %s", got, tc.want)
			}
			if res := r.lastResult(); res != engine.ResultStarted {
				t.Errorf("result %q", res)
			}
		})
	}
}

func TestTriggerTieBreakByFlowID(t *testing.T) {
	r := newRig(t, []string{
		sayFlow("b-hi", "  message: {keywords: [hi]}"),
		sayFlow("a-hi", "  message: {keywords: [hi]}"),
		sayFlow("c-hi", `  message: {pattern: "^hi$"}`),
	})
	// Ties go to the flow id that sorts first, whatever the file order.
	r.send(ana, textMsg("hi"))
	if got := r.started(ana); strings.Join(got, ",") != "a-hi" {
		t.Fatalf("runs: %v", got)
	}
	r.send("15550002", textMsg("hi"))
	if got := r.started("15550002"); strings.Join(got, ",") != "a-hi" {
		t.Fatalf("other contact: %v", got)
	}
	// Once the run is over, the same flow wins again.
	r.advance(time.Hour)
	r.send(ana, textMsg("hi"))
	if got := r.started(ana); strings.Join(got, ",") != "a-hi,a-hi" {
		t.Fatalf("after expiry: %v", got)
	}
}

// A flow the contact is already in (live, not waiting for a reply) is skipped,
// and the next flow in precedence order starts instead.
func TestTriggerSkipsFlowsTheContactIsIn(t *testing.T) {
	waiting := `flow: a-hi
language: en_US
trigger:
  message: {keywords: [hi]}
steps:
  - id: say
    send: "a"
  - id: pause
    wait: 1d
`
	again := `flow: c-again
language: en_US
reenter: true
trigger:
  message: {keywords: [hi]}
steps:
  - id: say
    send: "c"
  - id: pause
    wait: 1d
`
	r := newRig(t, []string{waiting, sayFlow("b-hi", "  message: {keywords: [hi]}"), again})
	r.send(ana, textMsg("hi")) // a-hi (first by id), now waiting on a timer
	r.send(ana, textMsg("hi")) // a-hi is live: b-hi starts and waits for a reply
	r.send(ana, textMsg("hi")) // b-hi takes it as its reply and completes
	r.send(ana, textMsg("hi")) // a-hi is live, b-hi is not: b-hi starts again
	if got := r.started(ana); strings.Join(got, ",") != "a-hi,b-hi,b-hi" {
		t.Fatalf("runs: %v", got)
	}
	// A flow with `reenter: true` starts again while its run is live.
	r2 := newRig(t, []string{waiting, again})
	for i := 0; i < 3; i++ {
		r2.send(ana, textMsg("hi"))
	}
	if got := r2.started(ana); strings.Join(got, ",") != "a-hi,c-again,c-again" {
		t.Fatalf("runs: %v", got)
	}
	// Nothing to start: no_match.
	r3 := newRig(t, []string{waiting})
	r3.send(ana, textMsg("hi"))
	r3.send(ana, textMsg("hi"))
	if got := r3.started(ana); len(got) != 1 || r3.lastResult() != engine.ResultNoMatch {
		t.Fatalf("runs %v, result %q", got, r3.lastResult())
	}
}

func TestOptOutKeyword(t *testing.T) {
	stops := map[string]msg{"typed stop": textMsg("  stop "), "typed stop promos": textMsg("Stop  Promos"),
		"quick reply": quickReply("Stop promos", "Stop promos"), "unsubscribe": textMsg("unsubscribe")}
	for name, stop := range stops {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, []string{
				sayFlow("waiting", "  message: {keywords: [hi]}"),
				onHi("timer", "", "  - id: pause\n    wait: 2h\n  - id: later\n    send: \"later\"\n"),
				sayFlow("catch", "  message: {}"),
			})
			r.send(ana, textMsg("hi")) // "timer" sorts first: it starts and waits 2h
			// Queue a message that cannot go yet: the API is busy.
			r.ch.then(apiErr(130429, 429))
			r.send(ana, textMsg("hi")) // timer is live: "waiting" starts; its send is retried later
			var pending int
			for _, it := range r.outbox(ana) {
				if it.Status == store.OutPending {
					pending++
				}
			}
			if pending != 1 {
				t.Fatalf("setup: %d pending", pending)
			}
			live := 0
			for _, x := range r.runs(ana) {
				if x.Live() {
					live++
				}
			}
			if live != 2 {
				t.Fatalf("setup: runs %s", describeRuns(r.runs(ana)))
			}
			calls := len(r.ch.sent(ana))

			r.send(ana, stop) // while "waiting" waits for a reply: the opt-out comes first
			c := r.contact(ana)
			if c.Consent != store.ConsentOut || !c.ConsentAt.Equal(r.now()) || !strings.HasPrefix(c.ConsentSource, "keyword:") {
				t.Errorf("consent %q at %s from %q", c.Consent, c.ConsentAt, c.ConsentSource)
			}
			for _, x := range r.runs(ana) {
				if x.Live() || (x.Status != store.RunCancelled && x.Status != store.RunCompleted) {
					t.Errorf("run %+v", x)
				}
				if x.Status == store.RunCancelled && x.EndReason != "opted out" {
					t.Errorf("reason %q", x.EndReason)
				}
			}
			for _, it := range r.outbox(ana) {
				if it.Status == store.OutPending {
					t.Errorf("row %d still pending", it.ID)
				}
			}
			if res := r.lastResult(); res != engine.ResultOptedOut {
				t.Errorf("result %q", res)
			}
			// Nothing started (not even the catch-all), nothing sent, and the
			// cancelled timer fires into nothing.
			r.advance(2 * 24 * time.Hour)
			if n := len(r.ch.sent(ana)); n != calls {
				t.Errorf("%d more calls after the opt-out", n-calls)
			}
			if got := r.started(ana); len(got) != 2 {
				t.Errorf("runs after the opt-out: %v", got)
			}
		})
	}
}

// ---- schedule ----

const weekly = `flow: weekly
language: en_US
trigger:
  schedule:
    cron: "0 10 * * 1"
    timezone: UTC
    audience: contact.opted_in && "lead" in contact.tags
steps:
  - id: deals
    send:
      template: comeback
      params: ["${contact.name}"]
  - id: answer
    wait_for_reply: {timeout: 1h}
  - id: thanks
    send: "Great!"
`

// seedAudience stores n contacts; every third is not a lead, every fifth has not
// opted in. It returns the wa_ids in the audience.
func (r *rig) seedAudience(n int) []string {
	var cs []*store.Contact
	var audience []string
	for i := 0; i < n; i++ {
		c := &store.Contact{WaID: fmt.Sprintf("4400%04d", i), Name: fmt.Sprint("C", i), Consent: store.ConsentIn}
		if i%3 != 2 {
			c.Tags = []string{"lead"}
		}
		if i%5 == 4 {
			c.Consent = ""
		}
		if i%3 != 2 && i%5 != 4 {
			audience = append(audience, c.WaID)
		}
		cs = append(cs, c)
	}
	r.seedContacts(cs...)
	return audience
}

// runsByContact counts runs of a flow per contact.
func (r *rig) runsByContact(flow string) map[string]int {
	r.t.Helper()
	rs, err := r.st.RunsWhere(r.ctx, flow, "", 1<<20)
	if err != nil {
		r.t.Fatal(err)
	}
	m := map[string]int{}
	for _, x := range rs {
		m[x.Contact]++
	}
	return m
}

var monday = time.Date(2026, 7, 6, 10, 0, 0, 0, time.UTC)

func TestScheduleAudienceInBatches(t *testing.T) {
	r := newRig(t, []string{weekly}, withOpts(func(o *engine.Options) { o.BatchSize = 7 }))
	audience := r.seedAudience(40)
	if got := r.nextWake(); !got.Equal(monday) {
		t.Fatalf("first fire at %s, want %s", got, monday)
	}
	r.advance(monday.Sub(r.now()) - time.Second)
	if len(r.runsByContact("weekly")) != 0 {
		t.Fatal("fired early")
	}
	r.advance(time.Second)
	got := r.runsByContact("weekly")
	if len(got) != len(audience) {
		t.Fatalf("%d contacts got the broadcast, want %d", len(got), len(audience))
	}
	for _, id := range audience {
		if got[id] != 1 {
			t.Errorf("%s: %d runs", id, got[id])
		}
		if calls := r.ch.sent(id); len(calls) != 1 || calls[0].Msg.Template.Name != "comeback" || !calls[0].At.Equal(monday) {
			t.Errorf("%s: calls %+v", id, calls)
		}
	}
	// The next fire is a week later; the contacts still waiting for a reply from
	// last week's run (none: the timeout is 1h) would be skipped.
	if next := r.queryInt(`SELECT next_at FROM schedules WHERE flow_id = 'weekly'`); next != monday.Add(7*24*time.Hour).UnixMilli() {
		t.Errorf("next_at %s", time.UnixMilli(next).UTC())
	}
	r.advance(7 * 24 * time.Hour)
	for _, id := range audience {
		if n := r.runsByContact("weekly")[id]; n != 2 {
			t.Errorf("%s: %d runs after two Mondays", id, n)
		}
	}
}

func TestScheduleSkipsContactsStillInTheFlow(t *testing.T) {
	long := strings.Replace(weekly, "wait_for_reply: {timeout: 1h}", "wait_for_reply: {timeout: 10d}", 1)
	r := newRig(t, []string{long})
	audience := r.seedAudience(6)
	r.advance(monday.Sub(r.now()) + 7*24*time.Hour)
	for _, id := range audience {
		if n := r.runsByContact("weekly")[id]; n != 1 {
			t.Errorf("%s: %d runs, want 1 (still waiting from last week)", id, n)
		}
	}
}

func TestScheduleCursorSurvivesRestart(t *testing.T) {
	r := newRig(t, []string{weekly}, withOpts(func(o *engine.Options) { o.BatchSize = 10 }))
	audience := r.seedAudience(45)
	r.clock.Set(monday)
	// One page, then the process dies.
	if _, err := r.eng.RunSchedules(r.ctx); err != nil {
		t.Fatal(err)
	}
	firstPage := len(r.runsByContact("weekly"))
	cursor := r.queryString(`SELECT cursor FROM schedules WHERE flow_id = 'weekly'`)
	firing := r.queryInt(`SELECT firing_at FROM schedules WHERE flow_id = 'weekly'`)
	if firstPage == 0 || firstPage >= len(audience) || cursor != "44000009" || firing != monday.UnixMilli() {
		t.Fatalf("after one page: %d runs, cursor %q, firing_at %d", firstPage, cursor, firing)
	}
	r.restart(weekly)
	r.settle()
	got := r.runsByContact("weekly")
	if len(got) != len(audience) {
		t.Fatalf("%d contacts got the broadcast, want %d", len(got), len(audience))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s: started %d times", id, n)
		}
	}
	if c := r.queryString(`SELECT cursor FROM schedules WHERE flow_id = 'weekly'`); c != "" {
		t.Errorf("cursor %q after the fire", c)
	}
}

func TestScheduleMissedFiresHappenOnce(t *testing.T) {
	r := newRig(t, []string{weekly})
	audience := r.seedAudience(9)
	r.advance(monday.Sub(r.now()) + 2*time.Hour) // the first Monday, runs done
	// The daemon is down for three weeks (three Mondays missed).
	r.clock.Set(monday.Add(3*7*24*time.Hour + 5*time.Hour))
	r.restart(weekly)
	r.settle()
	for _, id := range audience {
		if n := r.runsByContact("weekly")[id]; n != 2 {
			t.Errorf("%s: %d runs, want 2 (the missed Mondays fire once)", id, n)
		}
	}
	if next := r.queryInt(`SELECT next_at FROM schedules WHERE flow_id = 'weekly'`); next != monday.Add(4*7*24*time.Hour).UnixMilli() {
		t.Errorf("next_at %s", time.UnixMilli(next).UTC())
	}
}

// ---- event ----

func TestEventTrigger(t *testing.T) {
	shipped := `flow: shipped-a
language: en_US
trigger:
  event: {name: order_shipped}
steps:
  - id: notify
    send:
      template: reminder
      params: ["${event.order_id} (${event.items[1]}, ${event.total})"]
  - id: keep
    set: {order: "${event.order_id}"}
  - id: answer
    wait_for_reply: 1d
`
	second := strings.NewReplacer("shipped-a", "shipped-b", "${event.order_id} (${event.items[1]}, ${event.total})", "${event.order_id}").Replace(shipped)
	r := newRig(t, []string{shipped, second})
	r.event(ana, "order_shipped", map[string]any{"order_id": "A-1", "items": []any{"towel", "sandals"}, "total": 42.5})
	if res := r.lastResult(); res != engine.ResultStarted {
		t.Fatalf("result %q", res)
	}
	if got := r.started(ana); strings.Join(got, ",") != "shipped-a,shipped-b" {
		t.Fatalf("runs %v", got)
	}
	out := r.outbox(ana)
	jsonEq(t, "params", decodeJSON(t, out[0].Payload)["template"].(map[string]any)["components"],
		`[{"type":"body","parameters":[{"type":"text","text":"A-1 (sandals, 42.5)"}]}]`)
	run := r.runs(ana)[0]
	if run.Vars["order"] != "A-1" || !strings.Contains(string(run.Event), `"order_id":"A-1"`) {
		t.Errorf("run: vars %v event %s", run.Vars, run.Event)
	}
	// The contact is in both flows: the same event starts nothing.
	r.event(ana, "order_shipped", map[string]any{"order_id": "A-2"})
	if res := r.lastResult(); res != engine.ResultNoMatch || len(r.runs(ana)) != 2 {
		t.Fatalf("second event: %q, runs %v", res, r.started(ana))
	}
	// An event no flow listens to.
	r.event(ana, "nobody_listens", nil)
	if res := r.lastResult(); res != engine.ResultNoMatch {
		t.Fatalf("result %q", res)
	}
	// An event never resumes a run waiting for a reply.
	if x := r.runs(ana)[0]; x.Status != store.RunWaitingReply {
		t.Fatalf("run moved: %+v", x)
	}
	if _, err := engine.EventItem("", "", ana, nil, r.now()); err == nil {
		t.Error("an event without a name was accepted")
	}
}

// ---- versions ----

func versioned(v string) string {
	return onHi("pinned", "", `
  - id: one
    send: "`+v+` one"
  - id: pause
    wait: 1h
  - id: two
    send: "`+v+` two"
`)
}

func bodies(t *testing.T, r *rig, waID string) string {
	var out []string
	for _, it := range r.outbox(waID) {
		out = append(out, decodeJSON(t, it.Payload)["text"].(map[string]any)["body"].(string))
	}
	return strings.Join(out, ", ")
}

func TestRunsArePinnedToTheirVersion(t *testing.T) {
	r := newRig(t, []string{versioned("v1")})
	old, young, restarted := "15550001", "15550002", "15550003"
	r.send(old, textMsg("hi"))
	r.load(versioned("v2"))
	r.send(young, textMsg("hi"))
	r.advance(30 * time.Minute)
	r.send(restarted, textMsg("hi")) // v2
	if a, b := r.run(old).VersionID, r.run(young).VersionID; a == b || a == 0 || b == 0 {
		t.Fatalf("versions %d and %d", a, b)
	}
	r.advance(30 * time.Minute)
	if got := bodies(t, r, old); got != "v1 one, v1 two" {
		t.Errorf("old run: %s", got)
	}
	if got := bodies(t, r, young); got != "v2 one, v2 two" {
		t.Errorf("new run: %s", got)
	}

	// Across a restart with v3 loaded, a v2 run still finishes on v2 (compiled
	// from the stored source), and a reload of the same source keeps its version.
	r.restart(versioned("v3"))
	r.advance(time.Hour)
	if got := bodies(t, r, restarted); got != "v2 one, v2 two" {
		t.Errorf("run across a restart: %s", got)
	}

	// A project with errors is refused, and the running version stays.
	p, diags := r.project(strings.Replace(versioned("v4"), "wait: 1h", "wait: 1h\n    next: nowhere", 1))
	if err := r.eng.Load(r.ctx, p, diags); !errors.Is(err, engine.ErrInvalidProject) {
		t.Fatalf("load with errors: %v", err)
	}
	r.send("15550004", textMsg("hi"))
	if got := bodies(t, r, "15550004"); got != "v3 one" {
		t.Errorf("after a refused reload: %s", got)
	}
	if r.eng.Flows().Flow("pinned") == nil || !diags.HasErrors() {
		t.Error("running project changed")
	}
}

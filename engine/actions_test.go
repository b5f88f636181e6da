package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

const ana = "15550001"

// onHi wraps steps in a flow started by the keyword "hi".
func onHi(id string, head string, steps string) string {
	return "flow: " + id + "\nlanguage: en_US\n" + head + "trigger:\n  message: {keywords: [hi]}\nsteps:\n" + steps
}

// wantCallback is the biz_opaque_callback_data of an outbox row.
func wantCallback(it *store.OutboxItem) string { return engine.CallbackData(it.ID) }

// ---- send ----

func TestSendTextExactPayload(t *testing.T) {
	r := newRig(t, []string{onHi("texts", "", `
  - id: hello
    send: "Hello ${contact.name}! Details at https://example.com/x"
  - id: plain
    send: {text: "No link, ${entry.text}."}
`)})
	r.send(ana, textMsg("hi"))
	items := r.outbox(ana)
	if len(items) != 2 {
		t.Fatalf("outbox has %d rows, want 2", len(items))
	}
	it := items[0]
	if it.Kind != store.KindFreeForm || it.Status != store.OutSent || it.SentAs != "message" || it.Step != "hello" ||
		it.FlowID != "texts" || it.PhoneNumberID != "pn-1" || it.ProviderID == "" || it.Category != "" {
		t.Errorf("row: %+v", it)
	}
	jsonEq(t, "text payload", decodeJSON(t, it.Payload), fmt.Sprintf(`{"messaging_product":"whatsapp",
		"recipient_type":"individual","to":%q,"type":"text",
		"text":{"body":"Hello Contact 15550001! Details at https://example.com/x","preview_url":true},
		"biz_opaque_callback_data":%q}`, ana, wantCallback(it)))
	jsonEq(t, "second text", decodeJSON(t, items[1].Payload)["text"], `{"body":"No link, hi.","preview_url":false}`)
	calls := r.ch.sent(ana)
	if len(calls) != 2 || calls[0].Phone != "pn-1" || calls[0].Msg.Text.Body != "Hello Contact 15550001! Details at https://example.com/x" {
		t.Fatalf("channel calls: %+v", calls)
	}
	if run := r.run(ana); run.Status != store.RunCompleted || run.EndReason != "completed" {
		t.Errorf("run: %+v", run)
	}
}

func TestSendButtonsCarryIDs(t *testing.T) {
	r := newRig(t, []string{onHi("buttons", "", `
  - id: ask
    send:
      text: "Want 20% off, ${contact.name}?"
      buttons: ["Yes please", {id: no, title: "Not now"}, {title: Later}]
`)})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	jsonEq(t, "interactive", decodeJSON(t, it.Payload)["interactive"], `{"type":"button",
		"body":{"text":"Want 20% off, Contact 15550001?"},
		"action":{"buttons":[
			{"type":"reply","reply":{"id":"Yes please","title":"Yes please"}},
			{"type":"reply","reply":{"id":"no","title":"Not now"}},
			{"type":"reply","reply":{"id":"Later","title":"Later"}}]}}`)
	if p := decodeJSON(t, it.Payload); p["type"] != "interactive" {
		t.Errorf("type %v", p["type"])
	}
}

func TestSendMedia(t *testing.T) {
	r := newRig(t, []string{onHi("media", "", `
  - id: img
    send:
      image: {link: "https://example.com/a.jpg", caption: "Sandals for ${contact.name}"}
  - id: vid
    send:
      video: "https://example.com/v.mp4"
  - id: vid2
    send:
      video: {link: "https://example.com/w.mp4", caption: "Watch"}
  - id: doc
    send:
      document: {link: "https://example.com/i.pdf", caption: "Your invoice", filename: "invoice-${entry.text}.pdf"}
`)})
	r.send(ana, textMsg("hi"))
	items := r.outbox(ana)
	if len(items) != 4 {
		t.Fatalf("%d rows", len(items))
	}
	want := []struct{ typ, body string }{
		{"image", `{"link":"https://example.com/a.jpg","caption":"Sandals for Contact 15550001"}`},
		{"video", `{"link":"https://example.com/v.mp4"}`},
		{"video", `{"link":"https://example.com/w.mp4","caption":"Watch"}`},
		{"document", `{"link":"https://example.com/i.pdf","caption":"Your invoice","filename":"invoice-hi.pdf"}`},
	}
	for i, w := range want {
		p := decodeJSON(t, items[i].Payload)
		if p["type"] != w.typ || items[i].Kind != store.KindFreeForm || items[i].Status != store.OutSent {
			t.Errorf("row %d: type %v kind %s status %s", i, p["type"], items[i].Kind, items[i].Status)
		}
		jsonEq(t, w.typ, p[w.typ], w.body)
	}
}

func TestSendList(t *testing.T) {
	r := newRig(t, []string{onHi("lists", "", `
  - id: menu
    send:
      list:
        header: "Sunny Shop"
        text: "Pick a topic, ${contact.name}"
        footer: "Reply any time"
        button: Topics
        sections:
          - title: Shop
            rows:
              - {id: hours, title: Opening hours}
              - {id: sale, title: Summer sale, description: "20% off"}
          - title: Help
            rows:
              - Talk to us
  - id: short
    send:
      list:
        text: "One section"
        button: Open
        rows: [A, {id: b, title: B}]
`)})
	r.send(ana, textMsg("hi"))
	items := r.outbox(ana)
	jsonEq(t, "list", decodeJSON(t, items[0].Payload)["interactive"], `{"type":"list",
		"header":{"type":"text","text":"Sunny Shop"},
		"body":{"text":"Pick a topic, Contact 15550001"},
		"footer":{"text":"Reply any time"},
		"action":{"button":"Topics","sections":[
			{"title":"Shop","rows":[{"id":"hours","title":"Opening hours"},{"id":"sale","title":"Summer sale","description":"20% off"}]},
			{"title":"Help","rows":[{"id":"Talk to us","title":"Talk to us"}]}]}}`)
	jsonEq(t, "short list", decodeJSON(t, items[1].Payload)["interactive"], `{"type":"list",
		"body":{"text":"One section"},
		"action":{"button":"Open","sections":[{"rows":[{"id":"A","title":"A"},{"id":"b","title":"B"}]}]}}`)
}

func TestSendTemplatePositionalWithQuickReplies(t *testing.T) {
	r := newRig(t, []string{onHi("tpl", "assume_opt_in: true\n", `
  - id: en
    send:
      template: promo
      params: ["${contact.name}", "20%"]
  - id: pt
    send:
      template: promo
      language: pt_BR
      params: [Ana, 15]
`)})
	r.send(ana, textMsg("hi"))
	items := r.outbox(ana)
	if len(items) != 2 {
		t.Fatalf("%d rows", len(items))
	}
	for _, it := range items {
		if it.Kind != store.KindTemplate || it.Category != "MARKETING" || !it.AssumeOptIn || it.Status != store.OutSent {
			t.Errorf("row %s: %+v", it.Step, it)
		}
	}
	jsonEq(t, "en template", decodeJSON(t, items[0].Payload), fmt.Sprintf(`{"messaging_product":"whatsapp",
		"recipient_type":"individual","to":%q,"type":"template","biz_opaque_callback_data":%q,
		"template":{"name":"promo","language":{"code":"en_US"},"components":[
			{"type":"body","parameters":[{"type":"text","text":"Contact 15550001"},{"type":"text","text":"20%%"}]},
			{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"Get it"}]},
			{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"Stop promos"}]}]}}`,
		ana, wantCallback(items[0])))
	jsonEq(t, "pt template", decodeJSON(t, items[1].Payload)["template"], `{"name":"promo","language":{"code":"pt_BR"},"components":[
			{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"15"}]},
			{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"Quero"}]},
			{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"Parar promoções"}]}]}`)
}

func TestSendTemplateNamedAndMediaHeaders(t *testing.T) {
	r := newRig(t, []string{`flow: notices
language: en_US
trigger:
  event: {name: shipped}
steps:
  - id: named
    send:
      template: shipped
      header: "${event.image_url}"
      params: {order_id: "${event.order_id}", first_name: "${contact.name}"}
  - id: video
    send:
      template: teaser
      header: "https://example.com/new.mp4"
  - id: doc
    send:
      template: invoice
      header: "https://example.com/inv-${event.order_id}.pdf"
      params: ["${event.order_id}"]
  - id: text-header
    send:
      template: greeting
      header: "${contact.name}"
      params: ["Monday"]
  - id: named-text-header
    send:
      template: store_news
      header: "Sunny Shop"
      params: {first_name: "${contact.name}"}
`})
	r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Consent: store.ConsentIn})
	r.event(ana, "shipped", map[string]any{"order_id": "A-1", "image_url": "https://example.com/p.jpg"})
	items := r.outbox(ana)
	if len(items) != 5 {
		t.Fatalf("%d rows: %+v", len(items), items)
	}
	if items[0].Category != "UTILITY" || items[0].Status != store.OutSent {
		t.Errorf("named row: %+v", items[0])
	}
	tpl := func(i int) any { return decodeJSON(t, items[i].Payload)["template"] }
	jsonEq(t, "named + image header", tpl(0), `{"name":"shipped","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"image","image":{"link":"https://example.com/p.jpg"}}]},
		{"type":"body","parameters":[
			{"type":"text","parameter_name":"order_id","text":"A-1"},
			{"type":"text","parameter_name":"first_name","text":"Ana"}]}]}`)
	jsonEq(t, "video header", tpl(1), `{"name":"teaser","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"video","video":{"link":"https://example.com/new.mp4"}}]}]}`)
	// The URL button (index 0) takes no payload; the quick reply is button 1.
	jsonEq(t, "document header", tpl(2), `{"name":"invoice","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"document","document":{"link":"https://example.com/inv-A-1.pdf"}}]},
		{"type":"body","parameters":[{"type":"text","text":"A-1"}]},
		{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"Thanks"}]}]}`)
	jsonEq(t, "text header", tpl(3), `{"name":"greeting","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"text","text":"Ana"}]},
		{"type":"body","parameters":[{"type":"text","text":"Monday"}]}]}`)
	// A named-parameter template names its header parameter too (Meta refuses a
	// template that mixes named and positional parameters).
	jsonEq(t, "named text header", tpl(4), `{"name":"store_news","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"text","parameter_name":"store","text":"Sunny Shop"}]},
		{"type":"body","parameters":[{"type":"text","parameter_name":"first_name","text":"Ana"}]}]}`)
}

func TestSendFallbackIsRenderedWithTheMessage(t *testing.T) {
	r := newRig(t, []string{onHi("fb", "", `
  - id: nudge
    send:
      text: "Still there, ${contact.name}?"
      fallback: {template: reminder, params: ["${contact.name}"]}
`)})
	r.send(ana, textMsg("hi"))
	it := r.lastOut(ana)
	// The window is open: the message itself goes; the fallback is kept beside it.
	if it.Status != store.OutSent || it.SentAs != "message" || it.FallbackCategory != "UTILITY" {
		t.Fatalf("row: %+v", it)
	}
	jsonEq(t, "fallback", decodeJSON(t, it.Fallback), fmt.Sprintf(`{"messaging_product":"whatsapp",
		"recipient_type":"individual","to":%q,"type":"template","biz_opaque_callback_data":%q,
		"template":{"name":"reminder","language":{"code":"en_US"},"components":[
			{"type":"body","parameters":[{"type":"text","text":"Contact 15550001"}]}]}}`, ana, wantCallback(it)))
	if calls := r.ch.sent(ana); len(calls) != 1 || calls[0].Msg.Type != "text" {
		t.Fatalf("calls: %+v", calls)
	}
}

// ---- wait ----

func (r *rig) nextWake() time.Time {
	r.t.Helper()
	at, ok, err := r.eng.NextWake(r.ctx, r.now())
	if err != nil || !ok {
		r.t.Fatalf("no next wake (%v)", err)
	}
	return at
}

// sentAt returns when each message to the contact reached the channel.
func (r *rig) sentTimes(waID string) []time.Time {
	var ts []time.Time
	for _, c := range r.ch.sent(waID) {
		ts = append(ts, c.At)
	}
	return ts
}

func TestWaitPlain(t *testing.T) {
	r := newRig(t, []string{onHi("w", "", `
  - id: pause
    wait: 2h
  - id: after
    send: "two hours later"
`)})
	r.send(ana, textMsg("hi"))
	run := r.run(ana)
	if run.Status != store.RunWaiting || run.Step != "pause" {
		t.Fatalf("run: %+v", run)
	}
	if got := r.nextWake(); !got.Equal(rigStart.Add(2 * time.Hour)) {
		t.Fatalf("wakes at %s", got)
	}
	r.advance(2*time.Hour - time.Second)
	if n := len(r.ch.sent(ana)); n != 0 {
		t.Fatalf("%d messages before the wait ended", n)
	}
	r.advance(time.Second)
	if ts := r.sentTimes(ana); len(ts) != 1 || !ts[0].Equal(rigStart.Add(2*time.Hour)) {
		t.Fatalf("sent at %v", ts)
	}
	if run := r.run(ana); run.Status != store.RunCompleted {
		t.Fatalf("run: %+v", run)
	}
}

// quietFlow waits `wait` then sends, with quiet hours.
func quietFlow(quiet, wait string) string {
	return onHi("quiet", "quiet_hours: "+quiet+"\n", `
  - id: pause
    wait: `+wait+`
  - id: after
    send:
      template: reminder
      params: ["${contact.name}"]
`)
}

func TestWaitQuietHours(t *testing.T) {
	cases := []struct {
		name  string
		quiet string
		tz    string // the contact's zone
		wait  string
		want  time.Duration // from rigStart (10:00 UTC) to the send
	}{
		// 10:00 UTC is 07:00 in São Paulo; +14h is 21:00 there, quiet until 08:00 (11:00 UTC next day).
		{"contact zone, deferred", `{from: "21:00", to: "08:00", timezone: contact}`, "America/Sao_Paulo", "14h", 25 * time.Hour},
		// +13h is 20:00 in São Paulo: not quiet.
		{"contact zone, before quiet", `{from: "21:00", to: "08:00", timezone: contact}`, "America/Sao_Paulo", "13h", 13 * time.Hour},
		// +22h is 05:00 there: quiet until 08:00.
		{"contact zone, early morning", `{from: "21:00", to: "08:00", timezone: contact}`, "America/Sao_Paulo", "22h", 25 * time.Hour},
		// +25h is 08:00 there: the quiet hours just ended.
		{"contact zone, at the end", `{from: "21:00", to: "08:00", timezone: contact}`, "America/Sao_Paulo", "25h", 25 * time.Hour},
		// A contact without a zone uses the engine's (UTC): +11h is 21:00 UTC, quiet until 08:00 UTC.
		{"no contact zone", `{from: "21:00", to: "08:00", timezone: contact}`, "", "11h", 22 * time.Hour},
		// A named zone ignores the contact's: 10:00 UTC is 19:00 in Tokyo; +4h is 23:00 there, quiet until 07:30 (22:30 UTC).
		{"named zone, deferred", `{from: "22:00", to: "07:30", timezone: Asia/Tokyo}`, "America/Sao_Paulo", "4h", 12*time.Hour + 30*time.Minute},
		{"named zone, not quiet", `{from: "22:00", to: "07:30", timezone: Asia/Tokyo}`, "America/Sao_Paulo", "1h", time.Hour},
		// Quiet hours within a day: 12:00–14:00 UTC.
		{"daytime span", `{from: "12:00", to: "14:00", timezone: UTC}`, "", "3h", 4 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{quietFlow(tc.quiet, tc.wait)})
			r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Timezone: tc.tz})
			r.send(ana, textMsg("hi"))
			if got := r.nextWake(); !got.Equal(rigStart.Add(tc.want)) {
				t.Fatalf("wakes at %s (+%s), want +%s", got, got.Sub(rigStart), tc.want)
			}
			r.advance(tc.want - time.Second)
			if n := len(r.ch.sent(ana)); n != 0 {
				t.Fatalf("sent during the quiet hours")
			}
			r.advance(time.Second)
			if ts := r.sentTimes(ana); len(ts) != 1 || !ts[0].Equal(rigStart.Add(tc.want)) {
				t.Fatalf("sent at %v", ts)
			}
		})
	}
}

func TestWaitForAt(t *testing.T) {
	cases := []struct {
		name string
		wait string
		want time.Duration
	}{
		// The contact is in Lisbon (UTC+1 in July): 10:00 UTC is 11:00 there.
		{"later today", `{for: 30m, at: "18:00"}`, 7 * time.Hour},
		{"already passed today: tomorrow", `{for: 1h, at: "09:00"}`, 22 * time.Hour},
		{"for pushes past at", `{for: 8h, at: "18:00"}`, 31 * time.Hour},
		{"at only", `{at: "12:15"}`, time.Hour + 15*time.Minute},
		// `at` alone is the next 11:00 strictly after now: tomorrow's.
		{"at now", `{at: "11:00"}`, 24 * time.Hour},
		{"several days", `{for: 2d, at: "09:00"}`, 70 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{onHi("at", "", `
  - id: pause
    wait: `+tc.wait+`
  - id: after
    send:
      template: reminder
      params: ["${contact.name}"]
`)})
			r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Timezone: "Europe/Lisbon"})
			r.send(ana, textMsg("hi"))
			if tc.want > 0 {
				if got := r.nextWake(); !got.Equal(rigStart.Add(tc.want)) {
					t.Fatalf("wakes at %s (+%s), want +%s", got, got.Sub(rigStart), tc.want)
				}
				r.advance(tc.want)
			}
			if ts := r.sentTimes(ana); len(ts) != 1 || !ts[0].Equal(rigStart.Add(tc.want)) {
				t.Fatalf("sent at %v, want %s", ts, rigStart.Add(tc.want))
			}
		})
	}
}

// TestWaitAtAcrossDST: `wait {at}` wakes at the wall-clock time in the contact's
// zone, also on the nights the clocks change; and quiet hours never defer a run
// by more than their span (the bound the validator's window analysis uses).
func TestWaitAtAcrossDST(t *testing.T) {
	lisbon, _ := time.LoadLocation("Europe/Lisbon")
	cases := []struct {
		name  string
		start time.Time // when the contact writes
		wait  string
		quiet string
		// wantLocal is the local wall time the run must wake at.
		wantLocal time.Time
		maxWait   time.Duration
	}{
		{"at, clocks go back", time.Date(2026, 10, 24, 20, 0, 0, 0, time.UTC), `{at: "09:00"}`, "",
			time.Date(2026, 10, 25, 9, 0, 0, 0, lisbon), 25 * time.Hour},
		{"at, clocks go forward", time.Date(2027, 3, 27, 20, 0, 0, 0, time.UTC), `{at: "09:00"}`, "",
			time.Date(2027, 3, 28, 9, 0, 0, 0, lisbon), 24 * time.Hour},
		{"for and at, clocks go back", time.Date(2026, 10, 24, 20, 0, 0, 0, time.UTC), `{for: 1h, at: "09:00"}`, "",
			time.Date(2026, 10, 25, 9, 0, 0, 0, lisbon), 26 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{onHi("dst", "", `
  - id: pause
    wait: `+tc.wait+`
  - id: after
    send:
      template: reminder
      params: ["${contact.name}"]
`)})
			r.clock.Set(tc.start)
			r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Timezone: "Europe/Lisbon"})
			r.send(ana, textMsg("hi"))
			got := r.nextWake()
			if !got.Equal(tc.wantLocal) {
				t.Errorf("wakes at %s local, want %s", got.In(lisbon).Format("2006-01-02 15:04 MST"), tc.wantLocal.Format("2006-01-02 15:04 MST"))
			}
			if d := got.Sub(tc.start); d <= 0 || d > tc.maxWait {
				t.Errorf("waits %s", d)
			}
		})
	}

	// Quiet hours 21:00–09:00 in Lisbon; the wait ends at 23:00 local on the night
	// the clocks change. The run wakes at 09:00 local exactly, an hour more or less
	// than the wall-clock difference, never more than the span plus Lisbon's shift
	// (the validator's bound).
	for _, tc := range []struct {
		start  time.Time
		defer_ time.Duration
	}{
		{time.Date(2026, 10, 24, 20, 0, 0, 0, time.UTC), 11 * time.Hour}, // ends 23:00 WEST: 10h of wall clock, 11h real
		{time.Date(2026, 10, 24, 21, 0, 0, 0, time.UTC), 10 * time.Hour}, // ends 00:00 WEST: 9h of wall clock, 10h real
		{time.Date(2027, 3, 27, 21, 0, 0, 0, time.UTC), 9 * time.Hour},   // ends 23:00 WET: 10h of wall clock, 9h real
	} {
		r := newRig(t, []string{quietFlow(`{from: "21:00", to: "09:00", timezone: contact}`, "2h")})
		r.clock.Set(tc.start)
		r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Timezone: "Europe/Lisbon"})
		r.send(ana, textMsg("hi"))
		got := r.nextWake()
		if d := got.Sub(tc.start.Add(2 * time.Hour)); d != tc.defer_ || d > 12*time.Hour+dsl.ZoneShift(lisbon) {
			t.Errorf("start %s: quiet hours deferred the run by %s, want %s", tc.start, d, tc.defer_)
		}
		if local := got.In(lisbon); local.Hour() != 9 || local.Minute() != 0 {
			t.Errorf("start %s: wakes at %s local, want 09:00", tc.start, local)
		}
	}
}

// Two `wait {at}` in a row wait for two occurrences: the next HH:MM is strictly
// after the wait starts, so "day 1 at 09:00, then day 2 at 09:00" sends a day apart.
func TestWaitAtAfterWaitAt(t *testing.T) {
	r := newRig(t, []string{onHi("days", "", `
  - id: day1
    wait: {at: "09:00"}
  - id: first
    send: {template: reminder, params: ["1"]}
  - id: day2
    wait: {at: "09:00"}
  - id: second
    send: {template: reminder, params: ["2"]}
`)})
	r.seedContacts(&store.Contact{WaID: ana, Name: "Ana", Timezone: "UTC"})
	r.send(ana, textMsg("hi")) // 10:00 UTC
	r.advance(3 * 24 * time.Hour)
	ts := r.sentTimes(ana)
	want := []time.Time{rigStart.Add(23 * time.Hour), rigStart.Add(47 * time.Hour)}
	if len(ts) != 2 || !ts[0].Equal(want[0]) || !ts[1].Equal(want[1]) {
		t.Fatalf("sent at %v, want %v", ts, want)
	}
}

// ---- wait_for_reply ----

const replyFlow = `
  - id: ask
    send:
      text: "Want it?"
      buttons: ["Yes please", {id: no, title: "Not now"}]
  - id: answer
    wait_for_reply: {timeout: 1h, on_timeout: late}
  - id: echo
    send: "text=${reply.text} button=${reply.button} payload=${reply.payload} type=${reply.type}"
    next: done
  - id: late
    send: "Too late"
  - id: done
    end: true
`

func TestWaitForReplyResumesWithTheReply(t *testing.T) {
	cases := []struct {
		name string
		m    msg
		want string
	}{
		{"typed text", textMsg("yes!"), "text=yes! button= payload= type=text"},
		{"reply button", buttonReply("no", "Not now"), "text=Not now button=Not now payload=no type=button"},
		{"list row", listReply("sale", "Summer sale"), "text=Summer sale button= payload=sale type=list"},
		{"template quick reply", quickReply("Get it", "Get it"), "text=Get it button=Get it payload=Get it type=button"},
		{"image with caption", imageMsg("look"), "text=look button= payload= type=image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []string{onHi("reply", "", replyFlow)})
			r.send(ana, textMsg("hi"))
			if run := r.run(ana); run.Status != store.RunWaitingReply || run.Step != "answer" {
				t.Fatalf("run: %+v", run)
			}
			r.advance(30 * time.Minute)
			r.send(ana, tc.m)
			out := r.outbox(ana)
			if len(out) != 2 {
				t.Fatalf("%d rows", len(out))
			}
			if got := decodeJSON(t, out[1].Payload)["text"].(map[string]any)["body"]; got != tc.want {
				t.Errorf("echo: %q, want %q", got, tc.want)
			}
			run := r.run(ana)
			if run.Status != store.RunCompleted || run.Step != "done" {
				t.Errorf("run: %+v", run)
			}
			if !strings.Contains(string(run.Reply), `"type"`) {
				t.Errorf("reply not persisted: %s", run.Reply)
			}
			// The timeout timer is stale now: it fires into nothing.
			r.advance(2 * time.Hour)
			if n := len(r.outbox(ana)); n != 2 {
				t.Errorf("the stale timeout produced messages: %d rows", n)
			}
		})
	}
}

func TestWaitForReplyTimeout(t *testing.T) {
	t.Run("on_timeout", func(t *testing.T) {
		r := newRig(t, []string{onHi("reply", "", replyFlow)})
		r.send(ana, textMsg("hi"))
		r.advance(time.Hour - time.Second)
		if n := len(r.outbox(ana)); n != 1 {
			t.Fatalf("timed out early")
		}
		r.advance(time.Second)
		out := r.outbox(ana)
		if len(out) != 2 || out[1].Step != "late" {
			t.Fatalf("rows: %+v", out)
		}
		if run := r.run(ana); run.Status != store.RunCompleted || run.Step != "done" {
			t.Fatalf("run: %+v", run)
		}
	})
	t.Run("no on_timeout: expired", func(t *testing.T) {
		r := newRig(t, []string{onHi("exp", "", `
  - id: ask
    send: "Anything?"
  - id: answer
    wait_for_reply: 1h
  - id: thanks
    send: "Thanks"
`)})
		r.send(ana, textMsg("hi"))
		r.advance(time.Hour)
		run := r.run(ana)
		if run.Status != store.RunExpired || run.EndReason != "no reply" || run.EndedAt.IsZero() {
			t.Fatalf("run: %+v", run)
		}
		// A reply after the timeout does not resume the expired run: nothing
		// matches ("hello" is not the keyword), so nothing is sent.
		r.send(ana, textMsg("hello"))
		if got := r.run(ana); got.Status != store.RunExpired {
			t.Fatalf("run resumed: %+v", got)
		}
		if n := len(r.outbox(ana)); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		if res := r.queryString(`SELECT result FROM inbox ORDER BY id DESC LIMIT 1`); res != engine.ResultNoMatch {
			t.Errorf("inbox result %q", res)
		}
		// The contact's window still moved.
		if c := r.contact(ana); !c.LastInboundAt.Equal(r.now()) {
			t.Errorf("last inbound %s", c.LastInboundAt)
		}
	})
	// The daemon was down when the timeout fell due: what the contact wrote after
	// the timeout does not resume the wait, what they wrote before it does.
	for _, tc := range []struct {
		written time.Duration
		want    string
	}{{2 * time.Hour, "late"}, {50 * time.Minute, "echo"}} {
		t.Run(fmt.Sprintf("daemon down, reply written at +%s", tc.written), func(t *testing.T) {
			r := newRig(t, []string{onHi("reply", "", replyFlow)})
			r.send(ana, textMsg("hi"))
			r.clock.Set(rigStart.Add(3 * time.Hour))
			r.restart(onHi("reply", "", replyFlow))
			r.ch.inbound(ana, rigStart.Add(tc.written))
			r.enqueue(r.inboundItem(ana, textMsg("yes"), rigStart.Add(tc.written)))
			r.settle()
			out := r.outbox(ana)
			if len(out) != 2 || out[1].Step != tc.want {
				t.Fatalf("rows: %+v", out)
			}
			if run := r.run(ana); run.Status != store.RunCompleted {
				t.Fatalf("run %+v", run)
			}
		})
	}
	t.Run("wait indefinitely", func(t *testing.T) {
		r := newRig(t, []string{onHi("forever", "", `
  - id: answer
    wait_for_reply: {}
  - id: thanks
    send: "Thanks"
`)})
		r.send(ana, textMsg("hi"))
		if _, ok, _ := r.eng.NextWake(r.ctx, r.now()); ok {
			t.Fatal("an indefinite wait_for_reply set a timer")
		}
		r.advance(30 * 24 * time.Hour)
		if run := r.run(ana); run.Status != store.RunWaitingReply {
			t.Fatalf("run: %+v", run)
		}
		r.send(ana, textMsg("back"))
		if run := r.run(ana); run.Status != store.RunCompleted {
			t.Fatalf("run: %+v", run)
		}
	})
}

// ---- branch ----

const branchFlow = `flow: br
language: en_US
trigger: message
steps:
  - id: b
    branch:
      - if: vars.missing > 3
        goto: err
      - if: entry.text == "one"
        goto: one
      - if: entry.text startsWith "o"
        goto: o-word
  - id: nothing
    send: "fell through"
    next: done
  - id: one
    send: "one"
    next: done
  - id: o-word
    send: "o-word"
    next: done
  - id: err
    send: "error case"
  - id: done
    end: true
`

func TestBranch(t *testing.T) {
	cases := []struct{ text, want string }{
		{"one", "one"},      // the first true case wins, though the next is true too
		{"other", "o-word"}, // later case
		{"x", "fell through"},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			r := newRig(t, []string{branchFlow})
			r.send(ana, textMsg(tc.text))
			out := r.outbox(ana)
			if len(out) != 1 || decodeJSON(t, out[0].Payload)["text"].(map[string]any)["body"] != tc.want {
				t.Fatalf("rows: %+v", out)
			}
			// `vars.missing > 3` fails at run time (nil > int): counted false, and counted.
			if n := testutil.ToFloat64(r.eng.Metrics().StepErrors.WithLabelValues("br")); n != 1 {
				t.Errorf("step errors %v, want 1", n)
			}
		})
	}
	t.Run("default case", func(t *testing.T) {
		r := newRig(t, []string{onHi("def", "", `
  - id: b
    branch:
      - if: entry.text == "nope"
        goto: a
      - goto: c
  - id: a
    send: "a"
  - id: c
    send: "c"
`)})
		r.send(ana, textMsg("hi"))
		out := r.outbox(ana)
		if len(out) != 1 || out[0].Step != "c" {
			t.Fatalf("rows: %+v", out)
		}
	})
}

// ---- set ----

func TestSetVarsAndContact(t *testing.T) {
	r := newRig(t, []string{`flow: setter
language: en_US
trigger: message
steps:
  - id: s
    set:
      count: 3
      ratio: 0.5
      flag: true
      label: plain
      greeting: "Hi ${contact.name}"
      next_count: "${vars.count + 1}"
      n_tags: "${len(contact.tags)}"
      opted: "${contact.opted_in}"
      when: "${now}"
      text_copy: "${entry.text}"
      contact.name: "Ana Maria"
      contact.timezone: America/Sao_Paulo
      contact.tier: gold
      contact.attributes.score: 42
  - id: pause
    wait: 1h
  - id: show
    send: "${contact.name} ${vars.next_count} ${contact.attributes.tier} ${contact.timezone}"
`})
	r.send(ana, textMsg("hello"))
	run := r.run(ana)
	want := map[string]any{"count": 3.0, "ratio": 0.5, "flag": true, "label": "plain", "greeting": "Hi Contact 15550001",
		"next_count": 4.0, "n_tags": 0.0, "opted": false, "when": "2026-07-01T10:00:00Z", "text_copy": "hello"}
	for k, v := range want {
		if run.Vars[k] != v {
			t.Errorf("vars.%s = %#v (%T), want %#v", k, run.Vars[k], run.Vars[k], v)
		}
	}
	if len(run.Vars) != len(want) {
		t.Errorf("vars: %v", run.Vars)
	}
	c := r.contact(ana)
	if c.Name != "Ana Maria" || c.Timezone != "America/Sao_Paulo" || c.Attributes["tier"] != "gold" || c.Attributes["score"] != 42.0 {
		t.Errorf("contact: %+v", c)
	}
	// Values survive the round trip through the store and a later step sees them.
	r.advance(time.Hour)
	if body := decodeJSON(t, r.lastOut(ana).Payload)["text"].(map[string]any)["body"]; body != "Ana Maria 4 gold America/Sao_Paulo" {
		t.Errorf("later step sees %q", body)
	}
}

func TestSetInvalidTimezoneIsIgnored(t *testing.T) {
	r := newRig(t, []string{`flow: tz
language: en_US
trigger: message
steps:
  - id: s
    set:
      contact.timezone: "${trim(entry.text)}"
`})
	r.seedContacts(&store.Contact{WaID: ana, Timezone: "Europe/Lisbon"})
	for _, zone := range []string{"America/Recife", "Mars/Olympus_Mons", " ", "Local"} {
		r.send(ana, textMsg(zone))
	}
	// Only the valid zone was taken: "Local" would be the server's own zone.
	if c := r.contact(ana); c.Timezone != "America/Recife" {
		t.Errorf("timezone %q", c.Timezone)
	}
	if n := testutil.ToFloat64(r.eng.Metrics().StepErrors.WithLabelValues("tz")); n != 3 {
		t.Errorf("step errors %v, want 3", n)
	}
}

// ---- tag / untag / opt_in / opt_out ----

func TestTagsAndConsent(t *testing.T) {
	r := newRig(t, []string{onHi("tags", "", `
  - id: t1
    tag: [vip, summer]
  - id: t2
    tag: [summer, lead]
  - id: u
    untag: [summer, never-had]
  - id: in
    opt_in: true
  - id: pause
    wait: 1h
  - id: out
    opt_out: true
`)})
	r.seedContacts(&store.Contact{WaID: ana, Tags: []string{"old"}})
	r.send(ana, textMsg("hi"))
	c := r.contact(ana)
	if strings.Join(c.Tags, ",") != "old,vip,lead" {
		t.Errorf("tags %v", c.Tags)
	}
	if c.Consent != store.ConsentIn || !c.ConsentAt.Equal(rigStart) || c.ConsentSource != "flow:tags/in" {
		t.Errorf("consent: %q at %s from %q", c.Consent, c.ConsentAt, c.ConsentSource)
	}
	r.advance(time.Hour)
	c = r.contact(ana)
	if c.Consent != store.ConsentOut || !c.ConsentAt.Equal(rigStart.Add(time.Hour)) || c.ConsentSource != "flow:tags/out" {
		t.Errorf("consent: %q at %s from %q", c.Consent, c.ConsentAt, c.ConsentSource)
	}
}

// ---- start_flow / goto / end ----

const flowB = `flow: b
language: en_US
trigger:
  message: {keywords: [bbb]}
steps:
  - id: hello-b
    send: "B knows the ad: ${entry.headline} (${entry.source_id}), vars ${vars.x}"
  - id: pause
    wait_for_reply: {}
`

func TestStartFlow(t *testing.T) {
	flowA := `flow: a
language: en_US
trigger:
  click_to_whatsapp: {}
steps:
  - id: s
    set: {x: 1}
  - id: go
    start_flow: b
  - id: never
    send: "not reached"
`
	r := newRig(t, []string{flowA, flowB})
	r.send(ana, textMsg("hi").withReferral("ad-7", "Sandals"))
	rs := r.runs(ana)
	if len(rs) != 2 {
		t.Fatalf("runs: %s", describeRuns(rs))
	}
	if rs[0].FlowID != "a" || rs[0].Status != store.RunCompleted || rs[0].EndReason != "start_flow b" {
		t.Errorf("run a: %+v", rs[0])
	}
	if rs[1].FlowID != "b" || rs[1].Status != store.RunWaitingReply || !strings.Contains(string(rs[1].Entry), "Sandals") {
		t.Errorf("run b: %+v entry %s", rs[1], rs[1].Entry)
	}
	out := r.outbox(ana)
	if len(out) != 1 || decodeJSON(t, out[0].Payload)["text"].(map[string]any)["body"] != "B knows the ad: Sandals (ad-7), vars " {
		t.Fatalf("rows: %+v", out)
	}

	// Reentry: the contact is still in b; a second start_flow does not start it
	// again (b does not set `reenter`), and a ends all the same.
	r.send(ana, textMsg("hi").withReferral("ad-8", "Towels"))
	// That message was b's reply (b was waiting): b completes.
	r.send(ana, textMsg("hi").withReferral("ad-8", "Towels"))
	rs = r.runs(ana)
	if len(rs) != 4 || rs[2].FlowID != "a" || rs[3].FlowID != "b" || !strings.Contains(string(rs[3].Entry), "Towels") {
		t.Fatalf("runs: %s", describeRuns(rs))
	}
}

func TestStartFlowReentry(t *testing.T) {
	flowA := `flow: a
language: en_US
trigger:
  event: {name: go}
steps:
  - id: go
    start_flow: b2
`
	flowB2 := `flow: b2
language: en_US
trigger:
  message: {keywords: [bbb]}
steps:
  - id: hello
    send:
      template: reminder
      params: ["${contact.name}"]
  - id: pause
    wait_for_reply: {}
`
	for _, reenter := range []bool{false, true} {
		t.Run(fmt.Sprint("reenter=", reenter), func(t *testing.T) {
			b := flowB2
			if reenter {
				b = strings.Replace(flowB2, "language: en_US\n", "language: en_US\nreenter: true\n", 1)
			}
			r := newRig(t, []string{flowA, b})
			r.send(ana, textMsg("bbb")) // b2 starts on its own keyword and waits
			r.event(ana, "go", nil)     // a starts b2 while the contact is in it
			rs := r.runs(ana)
			want := 2
			if reenter {
				want = 3
			}
			if len(rs) != want || rs[0].FlowID != "b2" || rs[1].FlowID != "a" {
				t.Fatalf("runs: %s", describeRuns(rs))
			}
			if rs[1].Status != store.RunCompleted || rs[1].EndReason != "start_flow b2" {
				t.Errorf("run a: %+v", rs[1])
			}
			if rs[0].Status != store.RunWaitingReply {
				t.Errorf("the first b2 run moved: %+v", rs[0])
			}
			if reenter && (rs[2].FlowID != "b2" || rs[2].Status != store.RunWaitingReply) {
				t.Errorf("second b2: %+v", rs[2])
			}
			if n := len(r.outbox(ana)); n != want-1 {
				t.Errorf("%d messages", n)
			}
		})
	}
}

func TestGotoAndEnd(t *testing.T) {
	r := newRig(t, []string{onHi("ends", "", `
  - id: jump
    goto: last
  - id: skipped
    send: "skipped"
  - id: last
    send: "last"
  - id: stop
    end: bought
  - id: after-end
    send: "never"
`)})
	r.send(ana, textMsg("hi"))
	out := r.outbox(ana)
	if len(out) != 1 || out[0].Step != "last" {
		t.Fatalf("rows: %+v", out)
	}
	run := r.run(ana)
	if run.Status != store.RunCompleted || run.EndReason != "bought" || run.Step != "stop" {
		t.Fatalf("run: %+v", run)
	}
}

func TestZeroTimeLoopIsStopped(t *testing.T) {
	r := newRig(t, []string{onHi("spin", "", `
  - id: a
    tag: [x]
  - id: b
    goto: a
`)})
	r.send(ana, textMsg("hi"))
	run := r.run(ana)
	want := fmt.Sprintf("%d steps without waiting (loop at ", dsl.MaxStepsPerAdvance)
	if run.Status != store.RunFailed || !strings.HasPrefix(run.EndReason, want) {
		t.Fatalf("run: %+v", run)
	}
	if run.StepSeq != dsl.MaxStepsPerAdvance {
		t.Errorf("took %d steps", run.StepSeq)
	}
}

// A loop that sends without waiting would flood the contact before the guard
// stops it: the messages it queued are cancelled with the run.
func TestZeroTimeLoopDoesNotFloodTheContact(t *testing.T) {
	r := newRig(t, []string{onHi("flood", "", `
  - id: welcome
    send: "welcome"
  - id: a
    send: "again"
  - id: b
    goto: a
`)})
	r.send(ana, textMsg("hi"))
	if run := r.run(ana); run.Status != store.RunFailed {
		t.Fatalf("run: %+v", run)
	}
	if n := len(r.ch.sent(ana)); n != 0 {
		t.Fatalf("the channel got %d messages from a spinning run", n)
	}
	for _, it := range r.outbox(ana) {
		if it.Status != store.OutCancelled {
			t.Fatalf("row %d (%s) is %s", it.ID, it.Step, it.Status)
		}
	}
}

// Two flows that start each other without waiting: the guard covers the chain,
// and the process survives.
func TestStartFlowPingPongIsStopped(t *testing.T) {
	a := `flow: ping
language: en_US
trigger:
  message: {keywords: [ping]}
steps:
  - id: go
    start_flow: pong
`
	b := `flow: pong
language: en_US
trigger:
  message: {keywords: [pong]}
steps:
  - id: back
    start_flow: ping
`
	r := newRig(t, []string{a, b})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.send(ana, textMsg("ping"))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("start_flow ping-pong did not stop")
	}
	rs := r.runs(ana)
	if len(rs) == 0 || len(rs) > dsl.MaxStepsPerAdvance+1 {
		t.Fatalf("%d runs", len(rs))
	}
	last := rs[len(rs)-1]
	if last.Status != store.RunFailed || !strings.Contains(last.EndReason, "without waiting") {
		t.Fatalf("last run: %+v", last)
	}
	for _, x := range rs {
		if x.Live() {
			t.Fatalf("a run is still live: %+v", x)
		}
	}
}

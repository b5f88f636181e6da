package engine_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

const dataset = "1234567890"

// withCAPI turns on the Conversions API against a whatsapptest fake.
func withCAPI(f *whatsapptest.Fake) rigOption {
	return withOpts(func(o *engine.Options) {
		o.DatasetID, o.WABAID, o.Conversions = dataset, f.WABAID(), engine.GraphChannel{Client: f.Client()}
	})
}

func newFake(t *testing.T, r func() time.Time) *whatsapptest.Fake {
	return whatsapptest.New(t, whatsapptest.Options{Now: r})
}

func (r *rig) conversions(waID string) []*store.Conversion {
	r.t.Helper()
	cs, err := r.st.Conversions(r.ctx, store.ConversionFilter{Contact: waID})
	if err != nil {
		r.t.Fatal(err)
	}
	return cs
}

func (r *rig) capiEvents() []*store.CAPIEvent {
	r.t.Helper()
	evs, err := r.st.CAPIEvents(r.ctx, "", 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

const convertFlow = `flow: shop
trigger:
  click_to_whatsapp: {}
steps:
  - id: hello
    send: "Hi! Reply with anything to get the catalog."
  - id: answer
    wait_for_reply: 1h
  - id: lead
    convert: LeadSubmitted
  - id: loop
    branch:
      - if: 'reply.text == "again"'
        goto: answer
  - id: buy
    convert: {event: Purchase, value: "${float(reply.text)}", currency: EUR}
`

// A conversion is recorded once per run and step, with the contact's click and
// the event's value; a loop back through the step records nothing more; each
// conversion with a click id goes to the Conversions API once, with Meta's
// shape and a stable event id.
func TestConvertRecordsOnceAndSendsToMeta(t *testing.T) {
	var r *rig
	fake := newFake(t, func() time.Time { return r.now() })
	r = newRig(t, []string{convertFlow}, withCAPI(fake))
	r.send(ana, textMsg("hi").withReferral("120226305854810726", "Summer sandals"))
	r.advance(time.Minute)
	r.send(ana, textMsg("again"))
	r.advance(time.Minute)
	r.send(ana, textMsg("19.90"))

	cs := r.conversions(ana)
	if len(cs) != 2 {
		t.Fatalf("%d conversions, want 2 (the loop converts once): %+v", len(cs), cs)
	}
	buy, lead := cs[0], cs[1]
	if lead.Event != "LeadSubmitted" || lead.Value != nil || lead.SourceID != "120226305854810726" ||
		lead.CtwaClid != "clid-120226305854810726" || !lead.ClickedAt.Equal(rigStart) || lead.Step != "lead" || lead.FlowID != "shop" {
		t.Errorf("lead: %+v", lead)
	}
	if buy.Event != "Purchase" || buy.Value == nil || *buy.Value != 19.9 || buy.Currency != "EUR" {
		t.Errorf("buy: %+v", buy)
	}
	evs := fake.Events()
	if len(evs) != 2 {
		t.Fatalf("Meta got %d events, want 2: %+v", len(evs), evs)
	}
	if evs[0].EventName != "LeadSubmitted" || evs[0].ActionSource != "business_messaging" || evs[0].MessagingChannel != "whatsapp" ||
		evs[0].UserData.CtwaClid != "clid-120226305854810726" || evs[0].UserData.WABAID != fake.WABAID() ||
		evs[0].EventTime != rigStart.Add(time.Minute).Unix() || evs[0].DatasetID != dataset || evs[0].CustomData != nil {
		t.Errorf("lead event: %+v", evs[0])
	}
	if evs[1].EventName != "Purchase" || evs[1].CustomData == nil || *evs[1].CustomData.Value != 19.9 || evs[1].CustomData.Currency != "EUR" {
		t.Errorf("purchase event: %+v", evs[1])
	}
	rows := r.capiEvents()
	if len(rows) != 2 {
		t.Fatalf("%d outbox rows", len(rows))
	}
	for _, row := range rows {
		if row.Status != store.CAPISent || row.Attempts != 1 || row.EventID == "" || row.SentAt.IsZero() {
			t.Errorf("row: %+v", row)
		}
	}
	if rows[0].EventID == rows[1].EventID || (evs[0].EventID != rows[1].EventID) {
		t.Errorf("event ids: rows %s %s, Meta %s", rows[1].EventID, rows[0].EventID, evs[0].EventID)
	}
	m := r.eng.Metrics()
	if got := testutil.ToFloat64(m.Conversions.WithLabelValues("shop", "LeadSubmitted")); got != 1 {
		t.Errorf("conversions metric %v", got)
	}
	if got := testutil.ToFloat64(m.CAPIEvents.WithLabelValues("sent")); got != 2 {
		t.Errorf("capi sent metric %v", got)
	}
	if got := testutil.ToFloat64(m.StepsReached.WithLabelValues("shop", "answer")); got != 2 {
		t.Errorf("steps reached (answer) %v, want 2", got)
	}
}

// Without a click id (the contact wrote without an ad) or without a dataset,
// conversions are recorded and nothing is sent.
func TestConvertWithoutClickOrDataset(t *testing.T) {
	flow := onHi("plain", "", `
  - id: lead
    convert: LeadSubmitted
`)
	var r *rig
	fake := newFake(t, func() time.Time { return r.now() })
	r = newRig(t, []string{flow}, withCAPI(fake))
	r.send(ana, textMsg("hi"))
	if cs := r.conversions(ana); len(cs) != 1 || cs[0].CtwaClid != "" || !cs[0].ClickedAt.IsZero() {
		t.Fatalf("conversions: %+v", cs)
	}
	if n := len(r.capiEvents()); n != 0 || len(fake.EventsAttempts()) != 0 {
		t.Fatalf("%d outbox rows, %d calls", n, len(fake.EventsAttempts()))
	}

	r2 := newRig(t, []string{convertFlow})
	r2.send(ana, textMsg("hi").withReferral("ad-1", "Ad"))
	r2.send(ana, textMsg("5"))
	if cs := r2.conversions(ana); len(cs) != 2 || cs[0].CtwaClid != "clid-ad-1" || *cs[0].Value != 5 {
		t.Fatalf("conversions without a dataset: %+v", cs)
	}
	if n := len(r2.capiEvents()); n != 0 {
		t.Fatalf("%d outbox rows without a dataset", n)
	}
}

// The click a conversion is attributed to is the contact's latest, also one
// that came in a message that did not start the run; a conversion more than 7
// days after the click is recorded as expired and not sent.
func TestConvertLatestClickAndAttributionWindow(t *testing.T) {
	flow := `flow: slow
trigger:
  click_to_whatsapp: {}
steps:
  - id: answer
    wait_for_reply: 10d
  - id: lead
    convert: LeadSubmitted
`
	var r *rig
	fake := newFake(t, func() time.Time { return r.now() })
	r = newRig(t, []string{flow}, withCAPI(fake))
	r.send(ana, textMsg("hi").withReferral("ad-1", "First ad"))
	r.advance(time.Hour)
	r.send(ana, textMsg("me again").withReferral("ad-2", "Second ad"))
	cs := r.conversions(ana)
	if len(cs) != 1 || cs[0].SourceID != "ad-2" || cs[0].CtwaClid != "clid-ad-2" {
		t.Fatalf("conversion: %+v", cs)
	}
	if evs := fake.Events(); len(evs) != 1 || evs[0].UserData.CtwaClid != "clid-ad-2" {
		t.Fatalf("events: %+v", evs)
	}

	const bob = "15550002"
	r.send(bob, textMsg("hi").withReferral("ad-3", "Third ad"))
	r.advance(8 * 24 * time.Hour)
	r.send(bob, textMsg("finally"))
	cs = r.conversions(bob)
	if len(cs) != 1 || cs[0].CtwaClid != "clid-ad-3" {
		t.Fatalf("late conversion: %+v", cs)
	}
	evs, err := r.st.CAPIEventsOf(r.ctx, []int64{cs[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[cs[0].ID]; ev == nil || ev.Status != store.CAPIExpired || ev.Attempts != 0 {
		t.Fatalf("late event: %+v", ev)
	}
	if n := len(fake.Events()); n != 1 {
		t.Fatalf("Meta got %d events, want only the first", n)
	}
}

// The Conversions API outbox has the messages' guarantees: retries with
// backoff on 5xx and network errors, the same event id every time (Meta
// counts it once), permanent errors recorded with Meta's message, and a pause
// on token errors that holds the events until resumed.
func TestCAPIOutboxRetriesFailuresAndPause(t *testing.T) {
	var r *rig
	fake := newFake(t, func() time.Time { return r.now() })
	r = newRig(t, []string{convertFlow}, withCAPI(fake))

	// 5xx, then a dropped connection after Meta accepted: both retried; Meta
	// deduplicates the resend.
	fake.InjectEvents(whatsapptest.Fault{Kind: whatsapptest.FaultHTTP500}, whatsapptest.Fault{Kind: whatsapptest.FaultDropAfterAccept})
	r.send(ana, textMsg("hi").withReferral("ad-1", "Ad"))
	r.send(ana, textMsg("x")) // lead converts; buy's value fails (not a number)
	r.advance(time.Hour)
	att := fake.EventsAttempts()
	if len(att) < 3 {
		t.Fatalf("%d attempts, want 3 or more", len(att))
	}
	var ids []string
	for _, a := range att {
		var body struct {
			Data []struct {
				EventID string `json:"event_id"`
			} `json:"data"`
		}
		json.Unmarshal(a.Body, &body)
		ids = append(ids, body.Data[0].EventID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("event ids differ between attempts: %v", ids)
	}
	evs := fake.Events()
	if len(evs) != 1 || evs[0].EventName != "LeadSubmitted" || evs[0].Received != 2 {
		t.Fatalf("Meta's events: %+v", evs)
	}
	rows := r.capiEvents()
	if len(rows) != 2 {
		t.Fatalf("rows: %d", len(rows))
	}
	byStatus := map[string]*store.CAPIEvent{}
	for _, row := range rows {
		byStatus[row.Status] = row
	}
	if s := byStatus[store.CAPISent]; s == nil || s.Attempts != 3 || s.Error != "" {
		t.Errorf("sent row: %+v", s)
	}
	if f := byStatus[store.CAPIFailed]; f == nil || f.Attempts != 0 || f.Error == "" {
		t.Errorf("a purchase without a value: %+v", byStatus)
	}

	// A permanent refusal keeps Meta's message.
	const bob = "15550002"
	fake.InjectEvents(whatsapptest.Fault{Kind: whatsapptest.FaultError, Code: 100})
	r.send(bob, textMsg("hi").withReferral("ad-2", "Ad"))
	r.send(bob, textMsg("5"))
	cs := r.conversions(bob)
	got, _ := r.st.CAPIEventsOf(r.ctx, []int64{cs[0].ID, cs[1].ID})
	failed := 0
	for _, ev := range got {
		if ev.Status == store.CAPIFailed && ev.ErrorCode == 100 && ev.Error != "" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("want one failed with code 100: %+v", got)
	}

	// A token without the permission pauses the Conversions API sender (not
	// the messages); resumed, the events go out.
	const cy = "15550003"
	fake.SetEventsPermission(false)
	r.send(cy, textMsg("hi").withReferral("ad-3", "Ad"))
	r.send(cy, textMsg("7"))
	if p := r.eng.ConversionsPaused(); p == "" {
		t.Fatal("not paused on a permission error")
	}
	if r.eng.Paused() != "" {
		t.Error("the message sender paused too")
	}
	before := len(fake.Events())
	fake.SetEventsPermission(true)
	r.advance(time.Hour)
	if n := len(fake.Events()); n != before {
		t.Fatalf("events sent while paused: %d → %d", before, n)
	}
	r.eng.ResumeConversions()
	r.settle()
	if n := len(fake.Events()); n != before+2 {
		t.Fatalf("after resuming: %d events, want %d", n, before+2)
	}
}

const splitFlow = `flow: ab
trigger:
  click_to_whatsapp: {}
reenter: true
steps:
  - id: pick-intro
    split:
      - {variant: discount, weight: 3, goto: a}
      - {variant: proof, weight: 1, goto: b}
  - id: a
    send: "A: ${run.variants[\"pick-intro\"]}"
    next: lead
  - id: b
    send: "B: ${run.variants[\"pick-intro\"]}"
  - id: lead
    convert: LeadSubmitted
`

// A split assigns a variant by weight, the same one to a contact in every run
// (and after a restart), records it on the run and the conversion, and
// exposes it to expressions.
func TestSplitStickyAndRecorded(t *testing.T) {
	r := newRig(t, []string{splitFlow})
	counts := map[string]int{}
	const n = 400
	for i := range n {
		waID := fmt.Sprintf("1555%06d", i)
		r.send(waID, textMsg("hi").withReferral("ad", "Ad"))
		cs := r.conversions(waID)
		if len(cs) != 1 {
			t.Fatalf("%s: %d conversions", waID, len(cs))
		}
		v := cs[0].Variants["pick-intro"]
		counts[v]++
		want := engine.PickVariant(waID, "ab", "pick-intro", mustSplit(t, r, "ab", "pick-intro"))
		if v != want.Variant {
			t.Fatalf("%s got %q, PickVariant says %q", waID, v, want.Variant)
		}
		if got := r.lastOut(waID); string(decodeJSON(t, got.Payload)["text"].(map[string]any)["body"].(string)) != map[string]string{"discount": "A: discount", "proof": "B: proof"}[v] {
			t.Fatalf("%s: message %s for variant %s", waID, got.Payload, v)
		}
	}
	// 3:1 → 300 expected; 3 standard deviations of a binomial(400, 0.75) is 26.
	if d := math.Abs(float64(counts["discount"]) - 300); d > 26 {
		t.Errorf("discount %d of %d (want 300 ± 26)", counts["discount"], n)
	}
	// Sticky: the same contacts, after a restart, get the same variants.
	r.restart(splitFlow)
	for i := range 20 {
		waID := fmt.Sprintf("1555%06d", i)
		first := r.conversions(waID)[0].Variants["pick-intro"]
		r.send(waID, textMsg("hi").withReferral("ad", "Ad"))
		cs := r.conversions(waID)
		if len(cs) != 2 || cs[0].Variants["pick-intro"] != first {
			t.Fatalf("%s: variants %v then %v", waID, first, cs[0].Variants)
		}
	}
	counts2, err := r.st.OutcomeCounts(r.ctx, "ab", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var entered int64
	for _, s := range counts2.Splits {
		entered += s.Entered
		if s.Converted != s.Entered {
			t.Errorf("split counts: %+v", s)
		}
	}
	if entered != n+20 || counts2.Entered != n+20 || counts2.Converted != n+20 {
		t.Errorf("counts: %+v", counts2)
	}
}

func mustSplit(t *testing.T, r *rig, flow, step string) []*dsl.SplitVariant {
	f := r.proj.Flow(flow)
	s, ok := f.Step(step)
	if !ok {
		t.Fatalf("no step %s", step)
	}
	return s.Split
}

// A population: contacts from two ads go through a split flow and reply with
// probabilities that depend on their variant; the store's counts match what
// the test knows happened exactly, and the split's proportions match its
// weights within statistical tolerance.
func TestPopulationThroughASplit(t *testing.T) {
	const flow = `flow: pop
trigger:
  click_to_whatsapp:
    ads: ["ad-a", "ad-b"]
steps:
  - id: pick
    split:
      - {variant: short, weight: 2, goto: short}
      - {variant: long, weight: 1, goto: long}
  - id: short
    send: "Want it?"
    next: answer
  - id: long
    send: "Here is everything about it. Want it?"
  - id: answer
    wait_for_reply: {timeout: 1h}
  - id: lead
    convert: LeadSubmitted
  - id: buy
    branch:
      - if: 'reply.text == "buy"'
        goto: paid
      - goto: done
  - id: paid
    convert: {event: Purchase, value: "${float(vars.price ?? 25)}", currency: EUR}
  - id: done
    end: true
`
	r := newRig(t, []string{flow})
	rng := rand.New(rand.NewPCG(7, 11))
	reply := map[string]float64{"short": 0.5, "long": 0.3} // chance to reply
	type truth struct{ entered, converted int64 }
	byAd := map[string]*truth{"ad-a": {}, "ad-b": {}}
	byVariant := map[string]*truth{"short": {}, "long": {}}
	var entered, converted, leads, purchases int64
	const n = 300
	for i := range n {
		waID := fmt.Sprintf("1777%06d", i)
		ad := "ad-a"
		if rng.IntN(3) == 0 {
			ad = "ad-b"
		}
		r.send(waID, textMsg("hi").withReferral(ad, "Ad "+ad))
		variant := map[string]string{"short": "short", "long": "long"}[r.outbox(waID)[0].Step]
		entered++
		byAd[ad].entered++
		byVariant[variant].entered++
		if rng.Float64() < reply[variant] {
			text := "yes"
			if rng.IntN(4) == 0 {
				text = "buy"
				purchases++
			}
			r.send(waID, textMsg(text))
			leads++
			converted++
			byAd[ad].converted++
			byVariant[variant].converted++
		}
	}
	r.advance(2 * time.Hour) // the others time out
	got, err := r.st.OutcomeCounts(r.ctx, "pop", rigStart, rigStart.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := &store.OutcomeCounts{Entered: entered, Converted: converted,
		Conversions: []store.EventCount{{Event: "LeadSubmitted", Count: leads}},
		Splits: []store.SplitCount{{Step: "pick", Variant: "long", Entered: byVariant["long"].entered, Converted: byVariant["long"].converted},
			{Step: "pick", Variant: "short", Entered: byVariant["short"].entered, Converted: byVariant["short"].converted}},
		ByAd: []store.AdCount{{SourceID: "ad-a", Entered: byAd["ad-a"].entered, Converted: byAd["ad-a"].converted},
			{SourceID: "ad-b", Entered: byAd["ad-b"].entered, Converted: byAd["ad-b"].converted}}}
	if purchases > 0 {
		want.Conversions = append(want.Conversions, store.EventCount{Event: "Purchase", Currency: "EUR", Count: purchases, Value: 25 * float64(purchases)})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts:\n got  %+v\n want %+v", got, want)
	}
	// 2:1 → 200 of 300 expected; 3 standard deviations of binomial(300, 2/3) is 24.5.
	if d := math.Abs(float64(byVariant["short"].entered) - 200); d > 24.5 {
		t.Errorf("short got %d of %d (want 200 ± 24.5)", byVariant["short"].entered, n)
	}
	m := r.eng.Metrics()
	if g := testutil.ToFloat64(m.SplitAssigned.WithLabelValues("pop", "pick", "short")); int64(g) != byVariant["short"].entered {
		t.Errorf("split metric %v, want %d", g, byVariant["short"].entered)
	}
}

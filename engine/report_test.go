package engine_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/report"
)

const populationFlow = `flow: promo
trigger:
  click_to_whatsapp: {}
steps:
  - id: welcome
    send: {text: "Hi! Want 20% off?", buttons: ["Yes please", "Not now"]}
  - id: answer
    wait_for_reply: {timeout: 4h}
  - id: route
    branch:
      - if: reply.text == "Yes please"
        goto: code
      - goto: bye
  - id: code
    send: {text: "Your code is SUMMER20"}
    next: done
  - id: bye
    send: {text: "Maybe next time"}
  - id: done
    end: completed
`

// A population of contacts from two ads goes through a flow; each replies, and
// says yes, with a probability that depends on its ad; some messages are
// delivered and read. The report counts exactly what the test knows happened.
func TestReportPopulation(t *testing.T) {
	r := newRig(t, []string{populationFlow})
	rng := rand.New(rand.NewSource(13))
	type adTruth struct {
		id, headline     string
		pReply, pYes     float64
		entered, replied int64
		yes              int64
	}
	ads := []*adTruth{
		{id: "120226305854810726", headline: "Summer sandals -20%", pReply: 0.7, pYes: 0.6},
		{id: "120226305854810999", headline: "Beach bags", pReply: 0.3, pYes: 0.5},
	}
	const n = 120
	var delivered, read, replied, yes int64
	var before time.Time
	for i := 0; i < n; i++ {
		if i == n/2 {
			before = r.now() // the second half starts after this: --until
			r.advance(time.Hour)
		}
		ad := ads[rng.Intn(2)]
		ad.entered++
		waID := fmt.Sprintf("1650555%04d", i)
		r.send(waID, textMsg("Hi").withReferral(ad.id, ad.headline))
		out := r.outbox(waID)
		if len(out) != 1 {
			t.Fatalf("contact %s: %d messages, want the welcome", waID, len(out))
		}
		switch rng.Intn(3) {
		case 0:
			r.status(out[0], "read", r.now(), 0) // read without delivered first: counts as both
			read++
			delivered++
		case 1:
			r.status(out[0], "delivered", r.now(), 0)
			delivered++
		}
		if rng.Float64() < ad.pReply {
			ad.replied++
			replied++
			answer := "Not now"
			if rng.Float64() < ad.pYes {
				answer = "Yes please"
				ad.yes++
				yes++
			}
			r.send(waID, buttonReply("b", answer))
			r.send(waID, textMsg("thanks")) // a second message: no second reply counted
		}
	}
	r.advance(5 * time.Hour) // the others' waits time out

	rep, err := report.Build(r.ctx, r.st, "promo", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 1 {
		t.Fatalf("flows: %+v", rep.Flows)
	}
	f := rep.Flows[0]
	if f.Entered != n || f.Completed != replied {
		t.Errorf("entered %d completed %d, want %d and %d", f.Entered, f.Completed, n, replied)
	}
	want := map[string]report.Step{
		"welcome": {Reached: n, Delivered: delivered, Read: read},
		"answer":  {Reached: n, Replied: replied, DroppedOff: n - replied, Stopped: n - replied},
		"route":   {Reached: replied},
		"code":    {Reached: yes},
		"bye":     {Reached: replied - yes},
		"done":    {Reached: replied},
	}
	var order []string
	for _, s := range f.Steps {
		order = append(order, s.Step)
		w := want[s.Step]
		w.Step = s.Step
		if s != w {
			t.Errorf("step %s: got %+v, want %+v", s.Step, s, w)
		}
	}
	if fmt.Sprint(order) != "[welcome answer route code bye done]" {
		t.Errorf("steps in order %v", order)
	}
	// The metric counts executions: every welcome, and a route per reply.
	if got := testutil.ToFloat64(r.eng.Metrics().StepsReached.WithLabelValues("promo", "welcome")); got != n {
		t.Errorf("funnel_steps_reached_total{flow=promo,step=welcome} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(r.eng.Metrics().StepsReached.WithLabelValues("promo", "route")); got != float64(replied) {
		t.Errorf("funnel_steps_reached_total{flow=promo,step=route} = %v, want %d", got, replied)
	}
	if len(f.ByAd) != 2 {
		t.Fatalf("by_ad: %+v", f.ByAd)
	}
	for _, got := range f.ByAd {
		var ad *adTruth
		for _, a := range ads {
			if a.id == got.SourceID {
				ad = a
			}
		}
		if ad == nil || got.Headline != ad.headline || got.Entered != ad.entered {
			t.Errorf("by_ad %+v, truth %+v", got, ad)
		}
	}

	// A period: only the first half of the contacts.
	half, err := report.Build(r.ctx, r.st, "", time.Time{}, before.Add(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := half.Flows[0].Entered; got != n/2 {
		t.Errorf("runs started before the second half: %d, want %d", got, n/2)
	}
	if got := half.Flows[0].Steps[0].Reached; got != n/2 {
		t.Errorf("welcome reached in the first half: %d, want %d", got, n/2)
	}
}

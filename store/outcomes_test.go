package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func seedRun(t *testing.T, tx Tx, id int64, contact, flow string, at time.Time, sourceID string) {
	t.Helper()
	if err := tx.SaveContacts([]*Contact{{WaID: contact, CreatedAt: at, UpdatedAt: at}}); err != nil {
		t.Fatal(err)
	}
	vid, err := tx.FlowVersionID(flow, "h")
	if err != nil {
		t.Fatal(err)
	}
	if vid == 0 {
		v := &FlowVersion{ID: tx.NewID("flow_versions"), FlowID: flow, Hash: "h", Source: []byte("x"), CreatedAt: at}
		if err := tx.InsertFlowVersion(v); err != nil {
			t.Fatal(err)
		}
		vid = v.ID
	}
	entry := []byte("{}")
	if sourceID != "" {
		entry = []byte(`{"source_id":"` + sourceID + `"}`)
	}
	if err := tx.SaveRuns([]*Run{{ID: id, Contact: contact, FlowID: flow, VersionID: vid, Status: RunActive, Entry: entry,
		StartedAt: at, UpdatedAt: at}}); err != nil {
		t.Fatal(err)
	}
}

// A conversion is recorded once per run and step, with an id from the
// database; inserting it again (a loop, a replayed batch) returns nothing new
// and changes nothing.
func TestConversionsOncePerRunAndStep(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	v := 19.5
	first := func() []*Conversion {
		return []*Conversion{
			{RunID: 1, Contact: "31600000001", FlowID: "f", Step: "lead", Event: "LeadSubmitted", At: t0,
				SourceID: "ad1", CtwaClid: "clid1", ClickedAt: t0.Add(-time.Hour), Variants: map[string]string{"pick": "a"}},
			{RunID: 1, Contact: "31600000001", FlowID: "f", Step: "paid", Event: "Purchase", Value: &v, Currency: "EUR", At: t0},
		}
	}
	var fresh []*Conversion
	err := s.Write(ctx, func(tx Tx) error {
		seedRun(t, tx, 1, "31600000001", "f", t0, "ad1")
		var err error
		fresh, err = tx.InsertConversions(first())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 2 || fresh[0].ID == 0 || fresh[1].ID <= fresh[0].ID {
		t.Fatalf("fresh = %+v", fresh)
	}
	again := first()
	again[0].Event = "Purchase" // a replay never overwrites
	err = s.Write(ctx, func(tx Tx) error {
		var err error
		fresh, err = tx.InsertConversions(again)
		return err
	})
	if err != nil || len(fresh) != 0 {
		t.Fatalf("second insert: %v new, err %v", len(fresh), err)
	}
	got, err := s.Conversions(ctx, ConversionFilter{RunID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d conversions", len(got))
	}
	lead, paid := got[1], got[0]
	if lead.Event != "LeadSubmitted" || lead.Value != nil || lead.CtwaClid != "clid1" || !lead.ClickedAt.Equal(t0.Add(-time.Hour)) ||
		!reflect.DeepEqual(lead.Variants, map[string]string{"pick": "a"}) {
		t.Fatalf("lead = %+v", lead)
	}
	if paid.Value == nil || *paid.Value != 19.5 || paid.Currency != "EUR" || !paid.ClickedAt.IsZero() {
		t.Fatalf("paid = %+v", paid)
	}
}

// The Conversions API outbox: one event per conversion, claimed queued →
// sending, moved only by guarded transitions, and put back in the queue after
// a crash.
func TestCAPIOutbox(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var convs []*Conversion
	err := s.Write(ctx, func(tx Tx) error {
		seedRun(t, tx, 1, "31600000001", "f", t0, "")
		seedRun(t, tx, 2, "31600000002", "f", t0, "")
		var err error
		convs, err = tx.InsertConversions([]*Conversion{
			{RunID: 1, Contact: "31600000001", FlowID: "f", Step: "lead", Event: "LeadSubmitted", At: t0},
			{RunID: 2, Contact: "31600000002", FlowID: "f", Step: "lead", Event: "LeadSubmitted", At: t0},
		})
		if err != nil {
			return err
		}
		es := []*CAPIEvent{
			{ConversionID: convs[0].ID, EventID: "e1", DatasetID: "d", Status: CAPIQueued, NextAt: t0, ExpiresAt: t0.Add(time.Hour), Body: []byte("{}"), CreatedAt: t0, UpdatedAt: t0},
			{ConversionID: convs[1].ID, EventID: "e2", DatasetID: "d", Status: CAPIQueued, NextAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour), Body: []byte("{}"), CreatedAt: t0, UpdatedAt: t0},
		}
		if err := tx.InsertCAPIEvents(es); err != nil {
			return err
		}
		if es[0].ID == 0 || es[1].ID == 0 {
			t.Errorf("ids not set: %+v", es)
		}
		// A second event for the same conversion is ignored: never two event ids.
		dup := []*CAPIEvent{{ConversionID: convs[0].ID, EventID: "e1-bis", DatasetID: "d", Status: CAPIQueued, NextAt: t0, ExpiresAt: t0.Add(time.Hour), Body: []byte("{}"), CreatedAt: t0, UpdatedAt: t0}}
		if err := tx.InsertCAPIEvents(dup); err != nil {
			return err
		}
		if dup[0].ID != 0 {
			t.Errorf("a second event for one conversion was stored")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if due, err := s.CAPIDue(ctx, t0.Add(-time.Second)); err != nil || due {
		t.Fatalf("due before next_at: %v %v", due, err)
	}
	if due, err := s.CAPIDue(ctx, t0); err != nil || !due {
		t.Fatalf("not due at next_at: %v %v", due, err)
	}
	var claimed []*CAPIEvent
	err = s.Write(ctx, func(tx Tx) error {
		var err error
		claimed, err = tx.ClaimCAPI(t0, 10)
		return err
	})
	if err != nil || len(claimed) != 1 || claimed[0].EventID != "e1" || claimed[0].Status != CAPISending {
		t.Fatalf("claim: %+v %v", claimed, err)
	}
	err = s.Write(ctx, func(tx Tx) error {
		cs := []*CAPIChange{
			{ID: claimed[0].ID, From: []string{CAPISending}, Status: CAPISent, At: t0, SetSentAt: true, SentAt: t0, SetAttempts: true, Attempts: 1},
			// Stale: the row is no longer sending.
			{ID: claimed[0].ID, From: []string{CAPISending}, Status: CAPIFailed, At: t0, SetError: true, Error: "late"},
		}
		n, err := tx.ChangeCAPI(cs)
		if n != 1 || !cs[0].Applied || cs[1].Applied {
			t.Errorf("applied %d: %v %v", n, cs[0].Applied, cs[1].Applied)
		}
		if err != nil {
			return err
		}
		next, ok, err := tx.NextCAPIAttempt(t0)
		if err != nil {
			return err
		}
		if !ok || !next.Equal(t0.Add(time.Minute)) {
			t.Errorf("next attempt %v %v", next, ok)
		}
		if _, err := tx.ClaimCAPI(t0.Add(time.Minute), 10); err != nil {
			return err
		}
		// A crash while sending: the event goes back to the queue, due now.
		n, err = tx.RecoverCAPI(t0.Add(2 * time.Minute))
		if n != 1 {
			t.Errorf("recovered %d", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.CAPIEvents(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Status != CAPIQueued || !evs[0].NextAt.Equal(t0.Add(2*time.Minute)) ||
		evs[1].Status != CAPISent || evs[1].Attempts != 1 || evs[1].Error != "" {
		t.Fatalf("events: %+v %+v", evs[0], evs[1])
	}
	of, err := s.CAPIEventsOf(ctx, []int64{convs[0].ID})
	if err != nil || of[convs[0].ID] == nil || of[convs[0].ID].EventID != "e1" {
		t.Fatalf("CAPIEventsOf: %v %v", of, err)
	}
}

// The latest click wins, whatever the order the clicks are saved in; a merge
// keeps the later click of the two contacts.
func TestClicks(t *testing.T) {
	s := openTest(t)
	err := s.Write(context.Background(), func(tx Tx) error {
		if err := tx.SaveClicks([]*Click{{Contact: "a", SourceID: "new", CtwaClid: "c2", At: t0}}); err != nil {
			return err
		}
		if err := tx.SaveClicks([]*Click{{Contact: "a", SourceID: "old", CtwaClid: "c1", At: t0.Add(-time.Hour)},
			{Contact: "b", SourceID: "b-ad", At: t0.Add(time.Hour)}}); err != nil {
			return err
		}
		got, err := tx.Clicks([]string{"a", "b", "c"})
		if err != nil {
			return err
		}
		if len(got) != 2 || got["a"].SourceID != "new" || got["a"].CtwaClid != "c2" || !got["a"].At.Equal(t0) {
			t.Errorf("clicks: %+v", got)
		}
		if err := tx.SaveContacts([]*Contact{{WaID: "a", CreatedAt: t0, UpdatedAt: t0}, {WaID: "b", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		if err := tx.MergeContact("b", "a"); err != nil {
			return err
		}
		got, err = tx.Clicks([]string{"a", "b"})
		if len(got) != 1 || got["a"].SourceID != "b-ad" {
			t.Errorf("after merge: %+v", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// OutcomeCounts counts the runs started in the period, exactly.
func TestOutcomeCounts(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx Tx) error {
		seedRun(t, tx, 1, "c1", "f", t0, "ad1")
		seedRun(t, tx, 2, "c2", "f", t0, "ad1")
		seedRun(t, tx, 3, "c3", "f", t0, "ad2")
		seedRun(t, tx, 4, "c4", "f", t0, "")
		seedRun(t, tx, 5, "c5", "f", t0.Add(-48*time.Hour), "ad1") // before the period
		seedRun(t, tx, 6, "c6", "g", t0, "ad1")                    // another flow
		if err := tx.InsertRunVariants([]*RunVariant{
			{RunID: 1, FlowID: "f", Step: "pick", Variant: "a", At: t0},
			{RunID: 2, FlowID: "f", Step: "pick", Variant: "b", At: t0},
			{RunID: 3, FlowID: "f", Step: "pick", Variant: "a", At: t0},
			{RunID: 3, FlowID: "f", Step: "pick", Variant: "b", At: t0}, // ignored: assigned once
			{RunID: 5, FlowID: "f", Step: "pick", Variant: "a", At: t0},
		}); err != nil {
			return err
		}
		v1, v2 := 10.0, 5.5
		_, err := tx.InsertConversions([]*Conversion{
			{RunID: 1, Contact: "c1", FlowID: "f", Step: "lead", Event: "LeadSubmitted", At: t0},
			{RunID: 1, Contact: "c1", FlowID: "f", Step: "paid", Event: "Purchase", Value: &v1, Currency: "EUR", At: t0},
			{RunID: 3, Contact: "c3", FlowID: "f", Step: "paid", Event: "Purchase", Value: &v2, Currency: "EUR", At: t0},
			{RunID: 5, Contact: "c5", FlowID: "f", Step: "lead", Event: "LeadSubmitted", At: t0},
		})
		if err != nil {
			return err
		}
		vs, err := tx.RunVariants([]int64{3, 4})
		if !reflect.DeepEqual(vs, map[int64]map[string]string{3: {"pick": "a"}}) {
			t.Errorf("RunVariants = %v", vs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.OutcomeCounts(ctx, "f", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := &OutcomeCounts{Entered: 4, Converted: 2,
		Conversions: []EventCount{{Event: "LeadSubmitted", Count: 1}, {Event: "Purchase", Currency: "EUR", Count: 2, Value: 15.5}},
		Splits:      []SplitCount{{Step: "pick", Variant: "a", Entered: 2, Converted: 2}, {Step: "pick", Variant: "b", Entered: 1}},
		ByAd:        []AdCount{{SourceID: "ad1", Entered: 2, Converted: 1}, {SourceID: "ad2", Entered: 1, Converted: 1}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

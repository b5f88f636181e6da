package store

import (
	"context"
	"testing"
	"time"
)

// Template attributes are upserted each with its own time: a late webhook
// does not undo a newer one, and the other attributes stay.
func TestTemplateStates(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	err := s.Write(ctx, func(tx Tx) error {
		steps := []struct {
			name string
			do   func() (bool, error)
			want bool
		}{
			{"paused", func() (bool, error) {
				return tx.SetTemplateStatus("promo", "en_US", "77", "PAUSED", "PAUSED", "LOW_QUALITY", t1)
			}, true},
			{"older approval", func() (bool, error) {
				return tx.SetTemplateStatus("promo", "en_US", "", "APPROVED", "APPROVED", "NONE", t0)
			}, false},
			{"category", func() (bool, error) { return tx.SetTemplateCategory("promo", "en_US", "", "MARKETING", t0) }, true},
			{"quality", func() (bool, error) { return tx.SetTemplateQuality("promo", "en_US", "", "RED", t2) }, true},
			{"older quality", func() (bool, error) { return tx.SetTemplateQuality("promo", "en_US", "", "GREEN", t1) }, false},
			{"other language", func() (bool, error) { return tx.SetTemplateQuality("promo", "pt_BR", "78", "GREEN", t1) }, true},
		}
		for _, st := range steps {
			got, err := st.do()
			if err != nil || got != st.want {
				t.Errorf("%s: %v, %v; want %v", st.name, got, err, st.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.TemplateStates(ctx)
	if err != nil || len(ts) != 2 {
		t.Fatalf("%v %v", ts, err)
	}
	p := ts[0]
	if p.Key() != "promo:en_US" || p.TemplateID != "77" || p.Status != "PAUSED" || p.Reason != "LOW_QUALITY" || !p.StatusAt.Equal(t1) ||
		p.Category != "MARKETING" || p.Quality != "RED" || !p.QualityAt.Equal(t2) || !p.Blocked() {
		t.Errorf("%+v", p)
	}
	if b := ts[1]; b.Key() != "promo:pt_BR" || b.Status != "" || b.Blocked() || !b.StatusAt.IsZero() {
		t.Errorf("%+v", b)
	}
}

// Holding moves only the pending template messages of that template; release
// brings back only the held ones, due at once.
func TestHoldAndReleaseOutbox(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	later := t0.Add(time.Hour)
	mk := func(key, kind, status, template string) *OutboxItem {
		return &OutboxItem{Key: key, RunID: 1, FlowID: "f", Step: "a", Contact: key, Kind: kind, Payload: []byte(`{}`),
			Status: status, Template: template, NextAttemptAt: later, CreatedAt: t0, UpdatedAt: t0}
	}
	items := []*OutboxItem{
		mk("a", KindTemplate, OutPending, "promo:en_US"),
		mk("b", KindTemplate, OutPending, "promo:pt_BR"),
		mk("c", KindFreeForm, OutPending, "promo:en_US"),
		mk("d", KindTemplate, OutSent, "promo:en_US"),
	}
	err := s.Write(ctx, func(tx Tx) error {
		if err := tx.InsertOutbox(items); err != nil {
			return err
		}
		if n, err := tx.HoldOutbox("promo:en_US", "paused", t0); err != nil || n != 1 {
			t.Errorf("hold: %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Depths(ctx, t0, 100)
	if err != nil || d.OutboxHeld != 1 || d.OutboxPending != 2 {
		t.Errorf("depths %+v %v", d, err)
	}
	held, _ := s.OutboxWhere(ctx, OutHeld, 10)
	if len(held) != 1 || held[0].Key != "a" || held[0].Template != "promo:en_US" || held[0].LastError != "paused" {
		t.Fatalf("held %+v", held)
	}
	err = s.Write(ctx, func(tx Tx) error {
		if n, err := tx.PurgeMessages(later.Add(time.Hour), 10); err != nil || n != 1 {
			t.Errorf("purge took %d (want only the sent one): %v", n, err)
		}
		if n, err := tx.ReleaseOutbox("promo:pt_BR", t0); err != nil || n != 0 {
			t.Errorf("release of another template: %d %v", n, err)
		}
		if n, err := tx.ReleaseOutbox("promo:en_US", t0); err != nil || n != 1 {
			t.Errorf("release: %d %v", n, err)
		}
		got, err := tx.ClaimOutbox(t0, 10)
		if err != nil || len(got) != 1 || got[0].Key != "a" {
			t.Errorf("released message not due at once: %v %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPhoneQuality(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx Tx) error {
		for _, p := range []*PhoneQuality{
			{DisplayPhoneNumber: "15550783881", Event: "DOWNGRADE", CurrentLimit: "TIER_1K", OldLimit: "TIER_10K", MaxDaily: "2000", At: t0.Add(time.Hour)},
			{DisplayPhoneNumber: "15550783881", Event: "UPGRADE", CurrentLimit: "TIER_10K", At: t0},
		} {
			if _, err := tx.SetPhoneQuality(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.PhoneQualities(ctx)
	if err != nil || len(ps) != 1 || ps[0].Event != "DOWNGRADE" || ps[0].MaxDaily != "2000" || ps[0].OldLimit != "TIER_10K" {
		t.Fatalf("%+v %v", ps, err)
	}
}

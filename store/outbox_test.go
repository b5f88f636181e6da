package store

import (
	"context"
	"errors"
	"math"
	"testing"
)

// A value JSON cannot encode is an error the caller can recognise, not a panic.
func TestUnstorableValuesAreErrInvalid(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx Tx) error {
		if err := tx.SaveContacts([]*Contact{{WaID: "1", Attributes: map[string]any{"qty": math.Inf(1)}, CreatedAt: t0, UpdatedAt: t0}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("contact with +Inf: %v", err)
		}
		if err := tx.SaveContacts([]*Contact{{WaID: "1", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		v := &FlowVersion{FlowID: "f", Hash: "h", Source: []byte("x"), CreatedAt: t0}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		r := &Run{ID: 1, Contact: "1", FlowID: "f", VersionID: v.ID, Status: RunActive, Vars: map[string]any{"n": math.NaN()}, StartedAt: t0, UpdatedAt: t0}
		if err := tx.SaveRuns([]*Run{r}); !errors.Is(err, ErrInvalid) {
			t.Errorf("run with NaN: %v", err)
		}
		// A broken constraint (a run of a contact that does not exist) too.
		r2 := &Run{ID: 2, Contact: "nobody", FlowID: "f", VersionID: v.ID, Status: RunActive, StartedAt: t0, UpdatedAt: t0}
		if err := tx.SaveRuns([]*Run{r2}); !errors.Is(err, ErrInvalid) {
			t.Errorf("run of an unknown contact: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Guarded changes apply only from the statuses they name, and write only their
// columns.
func TestChangeOutboxIsGuarded(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var id int64
	err := s.Write(ctx, func(tx Tx) error {
		it := &OutboxItem{Key: "1/1", RunID: 1, FlowID: "f", Step: "a", Contact: "1", Kind: KindFreeForm, Payload: []byte(`{"text":1}`),
			Fallback: []byte(`{"template":1}`), FallbackCategory: "UTILITY", Status: OutSending, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0}
		if err := tx.InsertOutbox([]*OutboxItem{it}); err != nil {
			return err
		}
		id = it.ID
		// A status got there first: failed 131047, the fallback next.
		fb := &OutboxChange{ID: id, From: []string{OutSending, OutSent}, Status: OutPending, At: t0, Provider: "wamid.1",
			SetError: true, ErrorCode: 131047, LastError: "window", Fallback: true}
		// Then the call's own result, from a copy that still says sending.
		sent := &OutboxChange{ID: id, From: []string{OutSending}, Status: OutSent, At: t0, Provider: "wamid.1", SetSentAt: true, SentAt: t0, SetError: true}
		n, err := tx.ChangeOutbox([]*OutboxChange{fb, sent})
		if err != nil || n != 1 || !fb.Applied || sent.Applied {
			t.Fatalf("applied %d (%v %v): %v", n, fb.Applied, sent.Applied, err)
		}
		// A status of another attempt does not touch a row with its own id.
		other := &OutboxChange{ID: id, From: []string{OutPending}, Status: OutDelivered, At: t0, Provider: "wamid.2"}
		if _, err := tx.ChangeOutbox([]*OutboxChange{{ID: id, From: []string{OutPending}, At: t0, Provider: "wamid.3"}, other}); err != nil {
			return err
		}
		if other.Applied {
			t.Errorf("a status of another attempt applied")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboxWhere(ctx, "", 10)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	it := got[0]
	if it.Status != OutPending || it.Kind != KindTemplate || string(it.Payload) != `{"template":1}` || it.Fallback != nil ||
		it.Category != "UTILITY" || it.SentAs != "fallback" || it.ErrorCode != 131047 || it.ProviderID != "wamid.3" {
		t.Fatalf("row %+v", it)
	}
}

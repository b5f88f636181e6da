package store

import (
	"context"
	"errors"
	"math"
	"testing"
)

// A value JSON cannot encode, or a broken constraint, is an error the caller
// can recognise, not a panic. Each is tried in a transaction of its own: on
// PostgreSQL a failed statement ends its transaction.
func TestUnstorableValuesAreErrInvalid(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var version int64
	if err := s.Write(ctx, func(tx Tx) error {
		if err := tx.SaveContacts([]*Contact{{WaID: "1", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		v := &FlowVersion{FlowID: "f", Hash: "h", Source: []byte("x"), CreatedAt: t0}
		err := tx.InsertFlowVersion(v)
		version = v.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		write func(tx Tx) error
	}{
		{"contact with +Inf", func(tx Tx) error {
			return tx.SaveContacts([]*Contact{{WaID: "2", Attributes: map[string]any{"qty": math.Inf(1)}, CreatedAt: t0, UpdatedAt: t0}})
		}},
		{"run with NaN", func(tx Tx) error {
			return tx.SaveRuns([]*Run{{ID: 1, Contact: "1", FlowID: "f", VersionID: version, Status: RunActive, Vars: map[string]any{"n": math.NaN()}, StartedAt: t0, UpdatedAt: t0}})
		}},
		{"run of an unknown contact (a broken constraint)", func(tx Tx) error {
			return tx.SaveRuns([]*Run{{ID: 2, Contact: "nobody", FlowID: "f", VersionID: version, Status: RunActive, StartedAt: t0, UpdatedAt: t0}})
		}},
	} {
		if err := s.Write(ctx, c.write); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
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

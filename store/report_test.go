package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Steps are recorded once per run and step whatever re-executes them; marks
// keep their first time; a read implies a delivery; retention takes a run's
// steps with it; the report counts a period's runs only.
func TestRunStepsAndReport(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	var ids []int64
	write := func(fn func(Tx) error) {
		t.Helper()
		if err := s.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx Tx) error {
		if err := tx.SaveContacts([]*Contact{{WaID: "1", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		v := &FlowVersion{FlowID: "f", Hash: "h", Source: []byte("flow: f"), CreatedAt: t0}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		var runs []*Run
		for i := 0; i < 3; i++ {
			r := &Run{ID: tx.NewID("runs"), Contact: "1", FlowID: "f", VersionID: v.ID, Step: "b", Status: RunWaitingReply,
				StartedAt: t0.Add(time.Duration(i) * time.Hour), UpdatedAt: t0}
			if i == 0 {
				r.Status, r.EndedAt = RunCompleted, t0
			}
			if i == 2 {
				r.Status, r.EndedAt = RunExpired, t0.Add(3*time.Hour)
			}
			ids = append(ids, r.ID)
			runs = append(runs, r)
		}
		if err := tx.SaveRuns(runs); err != nil {
			return err
		}
		var steps []*RunStep
		for _, r := range runs {
			for _, step := range []string{"a", "b", "a"} { // a loop re-executes a: one row
				steps = append(steps, &RunStep{RunID: r.ID, FlowID: "f", Step: step, StartedAt: r.StartedAt, At: r.StartedAt})
			}
		}
		return tx.InsertRunSteps(steps)
	})
	write(func(tx Tx) error {
		// Replayed: nothing changes.
		return tx.InsertRunSteps([]*RunStep{{RunID: ids[0], FlowID: "f", Step: "a", StartedAt: t0, At: t0.Add(time.Hour)}})
	})
	write(func(tx Tx) error {
		return tx.MarkRunSteps([]*StepMark{
			{RunID: ids[0], Step: "b", Kind: MarkReplied, At: t0.Add(time.Minute)},
			{RunID: ids[0], Step: "b", Kind: MarkReplied, At: t0.Add(time.Hour)}, // a second reply keeps the first time
			{RunID: ids[0], Step: "a", Kind: MarkRead, At: t0.Add(time.Minute)},  // read, no delivered status
			{RunID: ids[1], Step: "a", Kind: MarkDelivered, At: t0.Add(time.Minute)},
			{RunID: ids[1], Step: "zzz", Kind: MarkDelivered, At: t0}, // never recorded: no row
		})
	})
	var reachedAt, repliedAt, deliveredAt int64
	if err := s.r.QueryRowContext(ctx, s.r.Rebind("SELECT reached_at FROM run_steps WHERE run_id = ? AND step = 'a'"), ids[0]).Scan(&reachedAt); err != nil || reachedAt != ms(t0) {
		t.Errorf("reached_at %d (%v), want the first execution's %d", reachedAt, err, ms(t0))
	}
	if err := s.r.QueryRowContext(ctx, s.r.Rebind("SELECT replied_at FROM run_steps WHERE run_id = ? AND step = 'b'"), ids[0]).Scan(&repliedAt); err != nil || repliedAt != ms(t0.Add(time.Minute)) {
		t.Errorf("replied_at %d (%v), want the first reply's", repliedAt, err)
	}
	if err := s.r.QueryRowContext(ctx, s.r.Rebind("SELECT delivered_at FROM run_steps WHERE run_id = ? AND step = 'a'"), ids[0]).Scan(&deliveredAt); err != nil || deliveredAt != ms(t0.Add(time.Minute)) {
		t.Errorf("a read must count as delivered: %d (%v)", deliveredAt, err)
	}
	if err := s.Write(ctx, func(tx Tx) error { return tx.MarkRunSteps([]*StepMark{{RunID: 1, Step: "a", Kind: "clicked"}}) }); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown mark: %v, want ErrInvalid", err)
	}

	counts := func(f ReportFilter) *FlowCounts {
		t.Helper()
		fcs, err := s.Report(ctx, f)
		if err != nil || len(fcs) != 1 {
			t.Fatalf("report: %v %v", fcs, err)
		}
		return fcs[0]
	}
	all := counts(ReportFilter{})
	want := []StepCounts{{Step: "a", Reached: 3, Delivered: 2, Read: 1}, {Step: "b", Reached: 3, Replied: 1, Stopped: 1, Waiting: 1}}
	if all.Entered != 3 || all.Completed != 1 || len(all.Steps) != 2 || all.Steps[0] != want[0] || all.Steps[1] != want[1] {
		t.Errorf("all runs: %+v", all)
	}
	if p := counts(ReportFilter{FlowID: "f", Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}); p.Entered != 1 || p.Steps[0].Reached != 1 || p.Steps[0].Delivered != 1 {
		t.Errorf("runs started in [t0+1h, t0+2h): %+v", p)
	}

	write(func(tx Tx) error {
		n, err := tx.PurgeRuns(t0.Add(time.Hour), 10)
		if n != 1 {
			t.Errorf("purged %d runs, want 1", n)
		}
		return err
	})
	var left int
	s.r.GetContext(ctx, &left, "SELECT COUNT(*) FROM run_steps WHERE run_id = ?", ids[0])
	if left != 0 {
		t.Errorf("the purged run's steps are left: %d", left)
	}
}

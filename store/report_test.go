package store

import (
	"context"
	"errors"
	"fmt"
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

	// Periods that cut hours: the counters' whole hours plus the rows of the
	// partial ones give the same counts as the rows alone.
	for _, c := range []struct {
		since, until time.Duration
		entered      int64
		delivered    int64
	}{
		{30 * time.Minute, 150 * time.Minute, 2, 1},         // runs at +1h, +2h: partial, whole, partial hours
		{time.Hour + time.Millisecond, 3 * time.Hour, 1, 0}, // +2h only
		{time.Hour, time.Hour + time.Millisecond, 1, 1},     // within one hour
		{0, 59 * time.Minute, 1, 1},                         // +0h only
	} {
		got := counts(ReportFilter{Since: t0.Add(c.since), Until: t0.Add(c.until)})
		if got.Entered != c.entered || got.Steps[0].Reached != c.entered || got.Steps[0].Delivered != c.delivered {
			t.Errorf("runs started in [t0+%v, t0+%v): %+v, want %d entered, reached a, %d delivered", c.since, c.until, got, c.entered, c.delivered)
		}
	}
	// A run moving on moves its count: the counters follow status and step.
	write(func(tx Tx) error {
		rs, err := tx.Runs([]int64{ids[1]})
		if err != nil {
			return err
		}
		r := rs[ids[1]]
		r.Status, r.Step, r.EndedAt = RunCompleted, "c", t0.Add(5*time.Hour)
		return tx.SaveRuns([]*Run{r})
	})
	if got := counts(ReportFilter{}); got.Completed != 2 || got.Steps[1].Waiting != 0 || got.Steps[1].Stopped != 1 {
		t.Errorf("after run %d completed: %+v", ids[1], got)
	}

	write(func(tx Tx) error {
		n, err := tx.PurgeRuns(t0.Add(time.Hour), 10)
		if n != 1 {
			t.Errorf("purged %d runs, want 1", n)
		}
		return err
	})
	var left int
	if err := s.r.GetContext(ctx, &left, s.r.Rebind("SELECT COUNT(*) FROM run_steps WHERE run_id = ?"), ids[0]); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("the purged run's steps are left: %d", left)
	}
	// SQLite's counters keep what retention deletes: a report of an old
	// period stays whole. PostgreSQL has no counters (its migration 00011
	// says why): there the report counts the rows retention left.
	kept := int64(3)
	if s.drv.Name() == "postgres" {
		kept = 2
	}
	if got := counts(ReportFilter{}); got.Entered != kept || got.Steps[0].Reached != kept {
		t.Errorf("after retention: %+v", got)
	}
}

func TestSplitHours(t *testing.T) {
	h := hourMS
	for _, c := range []struct {
		since, until int64
		want         string
	}{
		{0, 3 * h, "[{true 0 3}]"},
		{h / 2, 3*h + 5, fmt.Sprintf("[{true 1 3} {false %d %d} {false %d %d}]", h/2, h, 3*h, 3*h+5)},
		{h / 2, h / 2 * 3, fmt.Sprintf("[{false %d %d}]", h/2, h/2*3)},
		{h + 1, 2 * h, fmt.Sprintf("[{false %d %d}]", h+1, 2*h)},
		{-1 << 63, 1<<63 - 1, fmt.Sprintf("[{true %d %d}]", -(int64(1) << 40), int64(1)<<40)},
		{-1 << 63, 2*h + 7, fmt.Sprintf("[{true %d 2} {false %d %d}]", -(int64(1) << 40), 2*h, 2*h+7)},
	} {
		if got := fmt.Sprint(splitHours(c.since, c.until)); got != c.want {
			t.Errorf("splitHours(%d, %d) = %s, want %s", c.since, c.until, got, c.want)
		}
	}
}

// The report's conversion figures over rows of conversions and run_variants:
// runs converted (once however many conversions), by ad, by event with
// values, per day, time to the first conversion, and each split's variants.
func TestReportConversions(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	// 8 runs: even ones from ad A, odd from ad B; runs 0-3 discount, 4-7 social.
	var ids []int64
	err := s.Write(ctx, func(tx Tx) error {
		if err := tx.SaveContacts([]*Contact{{WaID: "1", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		v := &FlowVersion{FlowID: "f", Hash: "h", Source: []byte("flow: f"), CreatedAt: t0}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		var runs []*Run
		for i := 0; i < 8; i++ {
			r := &Run{ID: tx.NewID("runs"), Contact: "1", FlowID: "f", VersionID: v.ID, Step: "x", Status: RunWaiting,
				StartedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0, SourceID: "A", Headline: "Ad A"}
			if i%2 == 1 {
				r.SourceID, r.Headline = "B", "Ad B"
			}
			ids = append(ids, r.ID)
			runs = append(runs, r)
		}
		return tx.SaveRuns(runs)
	})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, s.w.Rebind(q), args...); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		variant := "discount"
		if i >= 4 {
			variant = "social"
		}
		exec("INSERT INTO run_variants (run_id, step, variant, flow_id, at) VALUES (?, 'pick', ?, 'f', ?)", id, variant, ms(t0))
	}
	// Run 0: a lead after 1 h and a purchase of 20 EUR the next day; run 1: a
	// lead after 30 min; run 4: a purchase of 5.5 EUR after 2 h.
	conv := func(run int64, step, event string, value any, currency string, at time.Time) {
		exec("INSERT INTO conversions (run_id, contact, flow_id, step, event, value, currency, at) VALUES (?, '1', 'f', ?, ?, ?, ?, ?)",
			run, step, event, value, currency, ms(at))
	}
	conv(ids[0], "lead", "LeadSubmitted", nil, "", t0.Add(time.Hour))
	conv(ids[0], "paid", "Purchase", 20.0, "EUR", t0.Add(25*time.Hour))
	conv(ids[1], "lead", "LeadSubmitted", nil, "", t0.Add(time.Minute+30*time.Minute))
	conv(ids[4], "paid", "Purchase", 5.5, "EUR", t0.Add(4*time.Minute+2*time.Hour))

	fcs, err := s.Report(ctx, ReportFilter{FlowID: "f"})
	if err != nil {
		t.Fatal(err)
	}
	fc := fcs[0]
	if fc.Entered != 8 || fc.Converted != 3 {
		t.Errorf("entered %d converted %d, want 8 and 3", fc.Entered, fc.Converted)
	}
	if got := fmt.Sprint(fc.Ads); got != "[{A Ad A 4 2} {B Ad B 4 1}]" {
		t.Errorf("by ad %s", got)
	}
	if got := fmt.Sprint(fc.Events); got != "[{LeadSubmitted  2 0} {Purchase EUR 2 25.5}]" {
		t.Errorf("events %s", got)
	}
	if got := fmt.Sprint(fc.ToConvert); got != "[30m0s 1h0m0s 2h0m0s]" {
		t.Errorf("time to convert %s", got)
	}
	if got := fmt.Sprint(fc.Daily); got != "[{2026-07-01 3} {2026-07-02 1}]" {
		t.Errorf("daily %s", got)
	}
	if got := fmt.Sprint(fc.Splits); got != "[{pick discount 4 2} {pick social 4 1}]" {
		t.Errorf("splits %s", got)
	}
	// A period without run 0: its conversions go with it.
	fcs, err = s.Report(ctx, ReportFilter{FlowID: "f", Since: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if fc := fcs[0]; fc.Entered != 7 || fc.Converted != 2 || fmt.Sprint(fc.Splits) != "[{pick discount 3 1} {pick social 4 1}]" {
		t.Errorf("since run 1: %+v", fc)
	}
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// RunStep records that a run executed a step: the first time only (a loop or
// a replayed batch executes it again without a second row). FlowID and
// StartedAt are the run's, so the report counts a period's runs by step
// without a join.
type RunStep struct {
	RunID     int64
	FlowID    string
	Step      string
	StartedAt time.Time // the run's start
	At        time.Time // when the step was first executed
}

// Step marks: what happened after a run executed a step.
const (
	MarkReplied   = "replied"   // the contact answered the step (a wait_for_reply)
	MarkDelivered = "delivered" // the step's message was delivered
	MarkRead      = "read"      // the step's message was read (implies delivered)
)

// StepMark is one StepMark* fact about a run's step; only the first of each
// kind is kept, and a mark for a step the run never recorded changes nothing.
type StepMark struct {
	RunID int64
	Step  string
	Kind  string
	At    time.Time
}

// ReportFilter selects the runs a report counts: those of FlowID ("" = every
// flow) started in [Since, Until) (zero = unbounded).
type ReportFilter struct {
	FlowID string
	Since  time.Time
	Until  time.Time
}

// FlowCounts are exact counts over one flow's runs started in a period. Every
// count is of runs, not of events: a run that replies twice to a step counts
// once at that step.
type FlowCounts struct {
	FlowID string
	// File and Source are the flow's newest stored version (for the order of
	// its steps); empty when none is stored.
	File   string
	Source []byte

	Entered   int64 // runs started
	Completed int64 // of those, runs that finished the flow
	Converted int64 // runs with at least one conversion
	Steps     []StepCounts
	Ads       []AdCounts
	Events    []EventTotals
	Splits    []VariantCounts
	// ToConvert is, for each converted run, the time from its start to its
	// first conversion (ascending).
	ToConvert []time.Duration
	// Daily counts conversions by the UTC day they happened.
	Daily []DayCount
	// MarketingLimited is the flow's messages queued in the period that Meta
	// refused with 131049 (its per-user marketing limit), to how many
	// contacts; WaitingAllowance its messages waiting now for the messaging
	// limit's allowance.
	MarketingLimited         int64
	MarketingLimitedContacts int64
	WaitingAllowance         int64
}

// StepCounts are the runs that executed one step, and what followed.
type StepCounts struct {
	Step      string
	Reached   int64
	Replied   int64
	Delivered int64
	Read      int64
	Stopped   int64 // ended here without completing the flow (expired, cancelled, failed)
	Waiting   int64 // live, here now
}

// AdCounts are the runs that entered from one click-to-WhatsApp ad.
type AdCounts struct {
	SourceID  string
	Headline  string // the newest run's
	Entered   int64
	Converted int64
}

// EventTotals are the conversions of one event in one currency.
type EventTotals struct {
	Event    string
	Currency string
	Count    int64
	Value    float64
}

// VariantCounts are the runs a split step assigned one variant, and how many
// of them converted.
type VariantCounts struct {
	Step      string
	Variant   string
	Entered   int64
	Converted int64
}

// DayCount is a number of conversions on one UTC day (2006-01-02).
type DayCount struct {
	Day   string
	Count int64
}

func (t *dbTx) InsertRunSteps(rs []*RunStep) error {
	_, err := t.bulk("InsertRunSteps", 5, len(rs), func(i int, a []any) ([]any, error) {
		r := rs[i]
		return append(a, r.RunID, r.Step, r.FlowID, ms(r.StartedAt), ms(r.At)), nil
	})
	return err
}

// markQuery is the guarded UPDATE of each mark: it sets the mark's time only
// while unset, so a later status or a second reply leaves the first in place.
var markQuery = map[string]string{
	MarkReplied:   "MarkRunStepReplied",
	MarkDelivered: "MarkRunStepDelivered",
	MarkRead:      "MarkRunStepRead",
}

func (t *dbTx) MarkRunSteps(marks []*StepMark) error {
	for _, m := range marks {
		name, ok := markQuery[m.Kind]
		if !ok {
			return fmt.Errorf("%w: step mark %q", ErrInvalid, m.Kind)
		}
		if _, err := t.exec(name, m.RunID, m.Step, ms(m.At)); err != nil {
			return err
		}
	}
	return nil
}

// period turns a filter's bounds into Unix milliseconds (unbounded ends
// become the extremes).
func (f ReportFilter) period() (int64, int64) {
	since, until := int64(-1<<63), int64(1<<63-1)
	if !f.Since.IsZero() {
		since = ms(f.Since)
	}
	if !f.Until.IsZero() {
		until = ms(f.Until)
	}
	return since, until
}

// hourMS is the counters' bucket: report_runs and report_steps count runs by
// started_at / hourMS.
const hourMS = int64(time.Hour / time.Millisecond)

// span is part of a report's period: whole hours [from, to) of the counters
// (hours), or milliseconds [from, to) of the rows.
type span struct {
	hours    bool
	from, to int64
}

// splitHours cuts [since, until) (milliseconds) into the whole hours the
// counters answer and the partial hours at either edge the rows answer.
func splitHours(since, until int64) []span {
	const far = int64(1) << 40 // hours: far beyond any time (and ×hourMS fits)
	first, last := -far, far   // whole hours [first, last)
	if since > -far*hourMS {
		first = since / hourMS
		if since%hourMS != 0 {
			first++
		}
	}
	if until < far*hourMS {
		last = until / hourMS
	}
	if first >= last {
		return []span{{from: since, to: until}}
	}
	out := []span{{hours: true, from: first, to: last}}
	if first > -far && since < first*hourMS {
		out = append(out, span{from: since, to: first * hourMS})
	}
	if last < far && last*hourMS < until {
		out = append(out, span{from: last * hourMS, to: until})
	}
	return out
}

// Report counts each flow's runs started in the filter's period. Every count
// is one range scan of an index that starts with (flow_id, started_at).
func (s *DB) Report(ctx context.Context, f ReportFilter) ([]*FlowCounts, error) {
	var flows []string
	if f.FlowID != "" {
		flows = []string{f.FlowID}
	} else if err := s.selectR(ctx, &flows, "ReportFlows"); err != nil {
		return nil, err
	}
	out := make([]*FlowCounts, 0, len(flows))
	for _, id := range flows {
		fc, err := s.flowReport(ctx, id, f)
		if err != nil {
			return nil, fmt.Errorf("report of flow %s: %w", id, err)
		}
		out = append(out, fc)
	}
	return out, nil
}

func (s *DB) flowReport(ctx context.Context, flowID string, f ReportFilter) (*FlowCounts, error) {
	since, until := f.period()
	fc := &FlowCounts{FlowID: flowID}
	var v struct {
		File   string `db:"file"`
		Source []byte `db:"source"`
	}
	switch err := s.get(ctx, &v, "ReportNewestVersion", flowID); err {
	case nil:
		fc.File, fc.Source = v.File, v.Source
	case sql.ErrNoRows:
	default:
		return nil, err
	}

	ads := map[string]*AdCounts{}
	steps := map[string]*StepCounts{}
	step := func(name string) *StepCounts {
		if steps[name] == nil {
			steps[name] = &StepCounts{Step: name}
		}
		return steps[name]
	}
	// Runs: entered, completed, by ad, and where the others are now.
	addRuns := func(name string, args ...any) error {
		rows, err := s.queryR(ctx, name, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var src, status, at string
			var n int64
			if err := rows.Scan(&src, &status, &at, &n); err != nil {
				return err
			}
			fc.Entered += n
			switch status {
			case RunCompleted:
				fc.Completed += n
			case RunExpired, RunCancelled, RunFailed:
				step(at).Stopped += n
			default:
				step(at).Waiting += n
			}
			if src != "" {
				if ads[src] == nil {
					ads[src] = &AdCounts{SourceID: src}
				}
				ads[src].Entered += n
			}
		}
		return rows.Err()
	}
	// Steps: reached, replied, delivered, read.
	addSteps := func(name string, args ...any) error {
		rows, err := s.queryR(ctx, name, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var at string
			var c StepCounts
			if err := rows.Scan(&at, &c.Reached, &c.Replied, &c.Delivered, &c.Read); err != nil {
				return err
			}
			sc := step(at)
			sc.Reached += c.Reached
			sc.Replied += c.Replied
			sc.Delivered += c.Delivered
			sc.Read += c.Read
		}
		return rows.Err()
	}
	// Whole hours from the counters, the partial hours at the edges from the
	// rows (through their (flow_id, started_at) indexes).
	for _, part := range splitHours(since, until) {
		runs, steps := "ReportRuns", "ReportSteps"
		if part.hours {
			runs, steps = "ReportRunCounts", "ReportStepCounts"
		}
		if err := addRuns(runs, flowID, part.from, part.to); err != nil {
			return nil, err
		}
		if err := addSteps(steps, flowID, part.from, part.to); err != nil {
			return nil, err
		}
	}
	for _, sc := range steps {
		if sc.Step != "" {
			fc.Steps = append(fc.Steps, *sc)
		}
	}
	sort.Slice(fc.Steps, func(i, j int) bool { return fc.Steps[i].Step < fc.Steps[j].Step })

	for _, a := range ads {
		if err := s.get(ctx, &a.Headline, "ReportAdHeadline", flowID, since, until, a.SourceID); err != nil {
			return nil, err
		}
	}
	var outcomes bool
	if err := s.get(ctx, &outcomes, "ReportHasOutcomes"); err != nil {
		return nil, err
	}
	if outcomes {
		if err := s.conversionCounts(ctx, fc, flowID, since, until, ads); err != nil {
			return nil, err
		}
	}
	for _, a := range ads {
		fc.Ads = append(fc.Ads, *a)
	}
	sort.Slice(fc.Ads, func(i, j int) bool {
		if fc.Ads[i].Entered != fc.Ads[j].Entered {
			return fc.Ads[i].Entered > fc.Ads[j].Entered
		}
		return fc.Ads[i].SourceID < fc.Ads[j].SourceID
	})

	// Marketing limits: messages Meta refused with 131049 (queued in the
	// period), and messages waiting now for the messaging limit's allowance.
	if err := s.scanR(ctx, "ReportMarketingLimited", []any{flowID, since, until}, &fc.MarketingLimited, &fc.MarketingLimitedContacts); err != nil {
		return nil, err
	}
	if err := s.scanR(ctx, "ReportWaitingAllowance", []any{flowID}, &fc.WaitingAllowance); err != nil {
		return nil, err
	}
	return fc, nil
}

// queryR runs a named query on the read pool.
func (s *DB) queryR(ctx context.Context, name string, args ...any) (*sql.Rows, error) {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return nil, err
	}
	return s.r.QueryContext(ctx, q, a...)
}

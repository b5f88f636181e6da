package engine

import (
	"context"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// specOf identifies a schedule: a changed cron or zone recomputes the next time.
func specOf(f *dsl.Flow) string { return f.Trigger.Cron + " @ " + f.Trigger.Location.String() }

// initSchedules gives every schedule flow a next fire time, keeping the stored one
// when the spec is unchanged: a fire missed while the daemon was down happens once
// at the next start (not once per missed slot).
func (e *Engine) initSchedules(tx store.Tx, p *dsl.Project, now time.Time) error {
	existing, err := tx.Schedules()
	if err != nil {
		return err
	}
	for _, f := range p.Flows {
		if f.Trigger.Kind != dsl.TriggerSchedule || f.Trigger.Schedule == nil {
			continue
		}
		s := existing[f.ID]
		if s != nil && s.Spec == specOf(f) {
			continue
		}
		s = &store.Schedule{FlowID: f.ID, Spec: specOf(f), NextAt: f.Trigger.Schedule.Next(now.In(f.Trigger.Location)).UTC()}
		if err := tx.SaveSchedule(s); err != nil {
			return err
		}
	}
	return nil
}

// RunSchedules advances due schedule triggers by one page of contacts each, one
// transaction per page: the audience expression picks contacts, each gets a run
// (unless already in the flow). The cursor is saved with the page, so a crash
// resumes the broadcast where it stopped and nobody gets it twice. A page that
// cannot be written because of one contact's run (a panic, a value the store
// refuses) is taken again one contact per transaction, and that contact is
// passed over.
func (e *Engine) RunSchedules(ctx context.Context) (int, error) {
	fs := e.flows.Load()
	if fs == nil || len(fs.schedule) == 0 || !e.due(ctx).Schedules {
		return 0, nil
	}
	total := 0
	for _, f := range fs.schedule {
		n, err := e.schedulePage(ctx, f, e.opts.BatchSize, nil)
		if err != nil && isEventFault(err) {
			e.log.Warn("a schedule page failed because of one contact; retrying it one contact per transaction", "flow", f.ID, "err", err)
			n, err = e.scheduleOneByOne(ctx, f)
		}
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (e *Engine) scheduleOneByOne(ctx context.Context, f *dsl.Flow) (int, error) {
	total := 0
	for range e.opts.BatchSize {
		n, err := e.schedulePage(ctx, f, 1, nil)
		if err != nil && isEventFault(err) {
			e.log.Error("schedule: a contact could not be started; passed over", "flow", f.ID, "err", err)
			n, err = e.schedulePage(ctx, f, 1, err)
		}
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// schedulePage takes the next page of a due schedule's audience. With skip
// set, the page's contacts are passed over instead (they failed with skip).
func (e *Engine) schedulePage(ctx context.Context, f *dsl.Flow, limit int, skip error) (int, error) {
	var n int
	err := e.st.Write(ctx, func(tx store.Tx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = newPanicError(r, "schedule of flow "+f.ID)
			}
		}()
		n = 0
		b := e.newBatch(tx)
		all, err := tx.Schedules()
		if err != nil {
			return err
		}
		s := all[f.ID]
		if s == nil || s.Spec != specOf(f) {
			return nil
		}
		if s.FiringAt.IsZero() {
			if b.now.Before(s.NextAt) {
				return nil
			}
			s.FiringAt, s.Cursor = s.NextAt, ""
		}
		page, err := tx.ContactsPage(s.Cursor, limit)
		if err != nil {
			return err
		}
		var ids []string
		for _, c := range page {
			ids = append(ids, c.WaID)
		}
		if err := b.load(ids); err != nil {
			return err
		}
		for _, pc := range page {
			c := b.contacts[pc.WaID]
			s.Cursor = c.WaID
			if skip != nil {
				e.m.StepErrors.WithLabelValues(f.ID).Inc()
				continue
			}
			if f.Trigger.Audience != nil {
				env := &dsl.Env{Now: b.now, Vars: map[string]any{}, Event: map[string]any{},
					Contact: contactEnv(c)}
				ok, err := f.Trigger.Audience.Bool(env)
				if err != nil {
					e.m.StepErrors.WithLabelValues(f.ID).Inc()
					e.log.Debug("audience expression failed: contact left out", "flow", f.ID, "contact", c.WaID, "err", err)
				}
				if !ok {
					continue
				}
			}
			if b.startRun(c, f, nil, nil) != nil {
				n++
			}
		}
		if len(page) < limit {
			s.FiringAt, s.Cursor = time.Time{}, ""
			s.NextAt = f.Trigger.Schedule.Next(b.now.In(f.Trigger.Location)).UTC()
		}
		if err := tx.SaveSchedule(s); err != nil {
			return err
		}
		if len(page) > 0 && n == 0 {
			n = 1 // progress was made: keep the loop going until the audience is done
		}
		return b.flush()
	})
	return n, err
}

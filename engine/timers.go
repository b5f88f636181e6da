package engine

import (
	"context"
	"fmt"

	"github.com/funnel-dev/funnel/store"
)

// FireTimers claims one batch of due timers and advances their runs, in one
// transaction. A timer whose run has moved on (a reply arrived, the run ended) is
// stale and simply deleted. Timers that fell due while the daemon was down fire
// now; their sends meet the window check at send time like any other.
//
// As with the inbox, a batch that cannot be written because of one of its
// timers (a panic, a value the store refuses) is rolled back and its timers
// fire again one per transaction; the culprit's run fails with the reason.
func (e *Engine) FireTimers(ctx context.Context) (int, error) {
	if e.flows.Load() == nil || !e.timers.mayBeDue(e.Now()) {
		return 0, nil
	}
	timers, err := e.fireTimers(ctx, e.opts.BatchSize)
	if err == nil || !isEventFault(err) {
		return len(timers), err
	}
	e.log.Warn("a timer batch failed because of one of its timers; retrying them one per transaction", "timers", len(timers), "err", err)
	for range timers {
		one, err := e.fireTimers(ctx, 1)
		if err == nil {
			if len(one) == 0 {
				break
			}
			continue
		}
		if !isEventFault(err) || len(one) == 0 {
			return len(timers), err
		}
		if err := e.failTimer(ctx, one[0], err); err != nil {
			return len(timers), err
		}
	}
	return len(timers), nil
}

// fireTimers is one transaction of FireTimers over up to limit timers; it
// returns the timers it took, also when it failed.
func (e *Engine) fireTimers(ctx context.Context, limit int) ([]*store.Timer, error) {
	var timers []*store.Timer
	gen := e.timers.start()
	err := e.st.Write(ctx, func(tx store.Tx) (err error) {
		b := e.newBatch(tx)
		var err2 error
		timers, err2 = tx.DueTimers(b.now, limit)
		if err2 != nil {
			return err2
		}
		if len(timers) == 0 {
			next, ok, err := tx.NextTimer(b.now)
			if err == nil {
				e.timers.learn(gen, next, ok)
			}
			return err
		}
		var current *store.Timer
		defer func() {
			if r := recover(); r != nil {
				where := "timer batch"
				if current != nil {
					where = fmt.Sprintf("timer of run %d", current.RunID)
				}
				err = newPanicError(r, where)
			}
		}()
		contacts := make([]string, 0, len(timers))
		for _, t := range timers {
			contacts = append(contacts, t.Contact)
		}
		if err := b.load(contacts); err != nil {
			return err
		}
		// Use the live-run objects of the batch, so a contact's several runs and
		// the reentry checks see one consistent state.
		live := b.liveByID()
		for _, t := range timers {
			b.doneTimers = append(b.doneTimers, t.ID)
			r := live[t.RunID]
			if r == nil || !r.Live() || r.WaitSeq != t.Seq {
				continue
			}
			current = t
			b.fire(t, r)
		}
		return b.flush()
	})
	return timers, err
}

// liveByID indexes the batch's live runs by id.
func (b *batch) liveByID() map[int64]*store.Run {
	live := map[int64]*store.Run{}
	for _, rs := range b.liveRuns {
		for _, r := range rs {
			live[r.ID] = r
		}
	}
	return live
}

// failTimer deletes a timer that cannot fire (alone, it still failed with
// cause) and fails its run with the reason, without any of its effects.
func (e *Engine) failTimer(ctx context.Context, t *store.Timer, cause error) error {
	reason := faultText(cause)
	e.log.Error("timer failed: its run fails with the error, the other runs proceed", "run", t.RunID, "err", cause)
	return e.st.Write(ctx, func(tx store.Tx) error {
		b := e.newBatch(tx)
		if err := b.load([]string{t.Contact}); err != nil {
			return err
		}
		b.doneTimers = append(b.doneTimers, t.ID)
		if r := b.liveByID()[t.RunID]; r != nil && r.Live() && r.WaitSeq == t.Seq {
			b.endRun(r, store.RunFailed, "timer could not be processed: "+reason)
		}
		return b.flush()
	})
}

func (b *batch) fire(t *store.Timer, r *store.Run) {
	f, err := b.e.flowForVersion(b.tx, r.VersionID)
	if err != nil {
		b.endRun(r, store.RunFailed, err.Error())
		return
	}
	c := b.contact(r.Contact)
	s, ok := f.Step(r.Step)
	if !ok {
		b.endRun(r, store.RunFailed, "step "+r.Step+" no longer exists")
		return
	}
	b.e.m.TimersFired.Inc()
	b.e.m.TimerLag.Observe(b.now.Sub(t.DueAt).Seconds())
	// The run continues when the timer was due, however late it fires: the
	// waits after it count from there, as the validator's analysis does.
	defer b.anchorAt(t.DueAt)()
	switch t.Kind {
	case store.TimerWait:
		b.advance(r, f, c, f.After(s))
	case store.TimerReplyTimeout:
		if w := s.WaitForReply; w != nil && w.OnTimeout != "" {
			next, _ := f.Step(w.OnTimeout)
			b.advance(r, f, c, next)
			return
		}
		b.endRun(r, store.RunExpired, "no reply")
	}
}

// timersAdded lowers the timer hint for timers tx writes, at once and again
// after tx commits (a FireTimers that began before the commit may have read
// the timers without them).
func (e *Engine) timersAdded(tx store.Tx, ts []*store.Timer) {
	lower := func() {
		for _, t := range ts {
			e.timers.added(t.DueAt)
		}
	}
	lower()
	afterCommit(tx, lower)
}

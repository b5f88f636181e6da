package engine

import (
	"context"

	"github.com/funnel-dev/funnel/store"
)

// FireTimers claims one batch of due timers and advances their runs, in one
// transaction. A timer whose run has moved on (a reply arrived, the run ended) is
// stale and simply deleted. Timers that fell due while the daemon was down fire
// now; their sends meet the window check at send time like any other.
func (e *Engine) FireTimers(ctx context.Context) (int, error) {
	if e.flows.Load() == nil {
		return 0, nil
	}
	var n int
	err := e.st.Write(ctx, func(tx store.Tx) error {
		b := e.newBatch(tx)
		timers, err := tx.DueTimers(b.now, e.opts.BatchSize)
		if err != nil || len(timers) == 0 {
			return err
		}
		n = len(timers)
		contacts := make([]string, 0, len(timers))
		for _, t := range timers {
			contacts = append(contacts, t.Contact)
		}
		if err := b.load(contacts); err != nil {
			return err
		}
		// Use the live-run objects of the batch, so a contact's several runs and
		// the reentry checks see one consistent state.
		live := map[int64]*store.Run{}
		for _, rs := range b.liveRuns {
			for _, r := range rs {
				live[r.ID] = r
			}
		}
		for _, t := range timers {
			b.doneTimers = append(b.doneTimers, t.ID)
			r := live[t.RunID]
			if r == nil || !r.Live() || r.WaitSeq != t.Seq {
				continue
			}
			b.fire(t, r)
		}
		return b.flush()
	})
	return n, err
}

func (b *batch) fire(t *store.Timer, r *store.Run) {
	defer func() {
		if p := recover(); p != nil {
			b.e.log.Error("timer processing panicked", "run", r.ID, "panic", p)
			b.endRun(r, store.RunFailed, "internal error")
		}
	}()
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

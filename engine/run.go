package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// hasLiveRun reports whether the contact is in a live run of the flow.
func (b *batch) hasLiveRun(waID, flowID string) bool {
	for _, r := range b.liveRuns[waID] {
		if r.FlowID == flowID && r.Live() {
			return true
		}
	}
	return false
}

// startRun starts flow f for contact c, unless the contact is already in it and
// the flow does not allow reentry. It returns the run (nil when not started).
func (b *batch) startRun(c *store.Contact, f *dsl.Flow, entry *dsl.EntryEnv, event json.RawMessage) *store.Run {
	if !f.Reenter && b.hasLiveRun(c.WaID, f.ID) {
		return nil
	}
	if len(f.Steps) == 0 {
		return nil
	}
	r := &store.Run{ID: b.tx.NewID("runs"), Contact: c.WaID, FlowID: f.ID, VersionID: b.flows.version[f.ID],
		Status: store.RunActive, Vars: map[string]any{}, Event: event, StartedAt: b.now}
	if entry != nil {
		r.Entry = mustMarshal(entry)
		r.SourceID, r.Headline = entry.SourceID, entry.Headline
	}
	b.liveRuns[c.WaID] = append(b.liveRuns[c.WaID], r)
	b.touchContact(c)
	b.touchRun(r)
	b.e.m.RunsStarted.WithLabelValues(f.ID).Inc()
	b.advance(r, f, c, f.Steps[0])
	return r
}

// endRun finishes a run; its timers become stale.
func (b *batch) endRun(r *store.Run, status, reason string) {
	r.Status, r.EndReason, r.EndedAt = status, reason, b.now
	r.WaitSeq++
	b.touchRun(r)
	b.e.m.RunsEnded.WithLabelValues(r.FlowID, status).Inc()
}

// pause parks a run; the timer (if any) carries the new wait sequence.
func (b *batch) pause(r *store.Run, status, timerKind string, due time.Time) {
	r.Status = status
	r.WaitSeq++
	b.touchRun(r)
	if timerKind != "" {
		b.timers = append(b.timers, &store.Timer{DueAt: due, RunID: r.ID, Kind: timerKind, Seq: r.WaitSeq})
	}
}

// advance executes steps from s until the run pauses or ends. Instant steps (send,
// set, tag, branch, goto, …) run back to back; a run that takes
// dsl.MaxStepsPerAdvance steps without pausing is failed rather than spun forever.
// Runs started by start_flow continue on the same budget, so flows that start
// each other without waiting stop the same way.
func (b *batch) advance(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) {
	if b.chain == 0 {
		b.chainOut = len(b.outbox)
	}
	r.Status = store.RunActive
	b.touchRun(r)
	for n := b.chain; ; n++ {
		if s == nil {
			b.endRun(r, store.RunCompleted, "completed")
			return
		}
		if n >= dsl.MaxStepsPerAdvance {
			b.endRun(r, store.RunFailed, fmt.Sprintf("%d steps without waiting (loop at %s)", n, s.ID))
			// A loop that sends would flood the contact: what this advance queued
			// is cancelled with the run.
			for _, it := range b.outbox[b.chainOut:] {
				if it.Status == store.OutPending {
					it.Status, it.LastError = store.OutCancelled, "the run was stopped: a loop without waiting"
				}
			}
			b.e.log.Warn("run stopped: too many steps without waiting", "run", r.ID, "flow", f.ID, "step", s.ID)
			return
		}
		r.Step = s.ID
		r.StepSeq++
		b.reached = append(b.reached, &store.RunStep{RunID: r.ID, FlowID: r.FlowID, Step: s.ID, StartedAt: r.StartedAt, At: b.now})
		b.e.m.Steps.WithLabelValues(r.FlowID, s.ID).Inc()
		switch s.Kind {
		case dsl.ActSend:
			b.send(r, f, c, s)
			s = f.After(s)
		case dsl.ActWait:
			b.pause(r, store.RunWaiting, store.TimerWait, b.e.wakeAt(f, s.Wait, c, b.at(), b.now))
			return
		case dsl.ActWaitForReply:
			kind, due := "", time.Time{}
			if w := s.WaitForReply; w != nil && w.Timeout > 0 {
				kind, due = store.TimerReplyTimeout, b.timeoutAt(f, s, w.Timeout)
			}
			b.pause(r, store.RunWaitingReply, kind, due)
			return
		case dsl.ActBranch:
			s = b.branch(r, f, c, s)
		case dsl.ActSet:
			if !b.set(r, f, c, s) {
				return
			}
			s = f.After(s)
		case dsl.ActTag:
			for _, t := range s.Tags {
				if !c.HasTag(t) {
					c.Tags = append(c.Tags, t)
				}
			}
			b.touchContact(c)
			s = f.After(s)
		case dsl.ActUntag:
			kept := c.Tags[:0:0]
			for _, t := range c.Tags {
				if !contains(s.Tags, t) {
					kept = append(kept, t)
				}
			}
			c.Tags = kept
			b.touchContact(c)
			s = f.After(s)
		case dsl.ActOptIn, dsl.ActOptOut:
			c.Consent = store.ConsentIn
			if s.Kind == dsl.ActOptOut {
				c.Consent = store.ConsentOut
			}
			c.ConsentAt, c.ConsentSource = b.now, "flow:"+f.ID+"/"+s.ID
			b.touchContact(c)
			s = f.After(s)
		case dsl.ActGoto:
			s, _ = f.Step(s.Target)
		case dsl.ActStartFlow:
			target := b.flows.byID[s.Target]
			if target == nil {
				b.endRun(r, store.RunFailed, "start_flow: flow "+s.Target+" is not loaded")
				return
			}
			b.endRun(r, store.RunCompleted, "start_flow "+s.Target)
			var entry *dsl.EntryEnv
			if env := b.env(r, c); env.Entry != (dsl.EntryEnv{}) {
				e := env.Entry
				entry = &e
			}
			saved := b.chain
			b.chain = n + 1
			b.startRun(c, target, entry, r.Event)
			b.chain = saved
			return
		case dsl.ActEnd:
			b.endRun(r, store.RunCompleted, s.EndReason)
			return
		default:
			s = f.After(s)
		}
	}
}

// branch returns the target of the first case that holds (a case without `if` is
// the default), or the next step when none does. An expression that fails at run
// time counts as false.
func (b *batch) branch(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) *dsl.Step {
	env := b.env(r, c)
	for _, bc := range s.Branch {
		ok := bc.If == nil
		if !ok {
			var err error
			ok, err = bc.If.Bool(env)
			if err != nil {
				b.stepError(f, s, err)
			}
		}
		if ok {
			t, _ := f.Step(bc.Goto)
			return t
		}
	}
	return f.After(s)
}

// set assigns run variables and contact fields. A value the store cannot keep
// (an infinite or NaN number: `float("inf")` from a reply) fails the run with
// the reason; it returns false then, and the run stops there.
func (b *batch) set(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) bool {
	env := b.env(r, c)
	for _, a := range s.Set {
		v, err := a.Value.Eval(env)
		if err != nil {
			b.stepError(f, s, err)
		}
		v = jsonValue(v)
		if err := storable(v); err != nil {
			b.stepError(f, s, err)
			target := a.Name
			if a.Contact {
				target = "contact." + a.Name
			}
			b.endRun(r, store.RunFailed, fmt.Sprintf("step %s: the value of %s cannot be stored: %v", s.ID, target, err))
			return false
		}
		if !a.Contact {
			r.Vars[a.Name] = v
			continue
		}
		switch a.Name {
		case "name":
			c.Name = dsl.FormatValue(v)
		case "timezone":
			tz := dsl.FormatValue(v)
			if _, err := time.LoadLocation(tz); err != nil || tz == "" || strings.EqualFold(tz, "local") {
				b.stepError(f, s, fmt.Errorf("contact.timezone: unknown time zone %q", tz))
				continue
			}
			c.Timezone = tz
		default:
			if c.Attributes == nil {
				c.Attributes = map[string]any{}
			}
			c.Attributes[a.Name] = v
		}
		b.touchContact(c)
	}
	env.Contact = contactEnv(c)
	return true
}

// storable reports why a value cannot be kept in a run's variables or a
// contact's attributes (stored as JSON), or nil.
func storable(v any) error {
	switch x := v.(type) {
	case nil, string, bool:
		return nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("%v is not a finite number", x)
		}
		return nil
	}
	_, err := json.Marshal(v)
	return err
}

// jsonValue keeps values storable as JSON: times become RFC 3339 text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339)
	case time.Duration:
		return dsl.FormatDuration(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

func (b *batch) stepError(f *dsl.Flow, s *dsl.Step, err error) {
	b.e.m.StepErrors.WithLabelValues(f.ID).Inc()
	b.e.log.Debug("expression failed at run time", "flow", f.ID, "step", s.ID, "err", err)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

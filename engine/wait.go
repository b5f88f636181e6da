package engine

import (
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// location is the contact's time zone, or the engine's default.
func (e *Engine) location(c *store.Contact) *time.Location {
	if c != nil && c.Timezone != "" && !strings.EqualFold(c.Timezone, "local") {
		if loc, err := time.LoadLocation(c.Timezone); err == nil {
			return loc
		}
	}
	if loc := bsuidZone(c); loc != nil {
		return loc
	}
	return e.opts.Timezone
}

// wakeAt is when a `wait` that starts at `from` ends: `for` later; then, with
// `at`, the next time the wall clock reads HH:MM in the contact's zone, strictly
// after `from` (so `wait {at: "09:00"}` started at 09:00 waits a day, and two such
// waits in a row end on two days); then, if that falls in the flow's quiet hours,
// the first moment the quiet hours' own zone reads their end. Everything is
// reckoned in local time, so 09:00 stays 09:00 and the quiet hours end at their
// end on the nights the clocks change (the validator counts the zone's largest
// shift in its bound).
//
// `from` is the moment the wait logically starts (see batch.at), `now` the
// moment it is set: a wait whose end has already passed ends at once, unless
// now is inside the quiet hours (then at their end).
func (e *Engine) wakeAt(f *dsl.Flow, w *dsl.Wait, c *store.Contact, from, now time.Time) time.Time {
	if w == nil {
		return from
	}
	due := from.Add(w.For)
	if w.At != nil {
		due = nextClock(due.In(e.location(c)), w.At.Duration(), w.For == 0)
	}
	if due.Before(now) {
		due = now
	}
	if q := f.QuietHours; q != nil {
		loc := q.Location
		if loc == nil {
			loc = e.location(c)
		}
		due = quietEnd(q, due, loc)
	}
	return due
}

func sinceMidnight(t time.Time) time.Duration {
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

// nextClock is the first time at or after t (strictly after t when strict) when
// the wall clock of t's zone reads `at`, tomorrow's when today's has passed. A
// time the clocks skip (02:30 on a spring-forward night) is the first moment
// after the skip; a time they repeat is its first occurrence.
func nextClock(t time.Time, at time.Duration, strict bool) time.Time {
	y, m, d := t.Date()
	for day := 0; day < 3; day++ {
		next := wallClock(y, m, d+day, at, t.Location())
		if next.After(t) || !strict && next.Equal(t) {
			return next.UTC()
		}
	}
	return t.Add(dsl.Day).UTC() // unreachable: a day always has its HH:MM
}

// wallClock is the first instant of a date whose local time of day reaches at:
// the time itself, or, when the clocks skip it, the end of the skip. Of a
// repeated time it is the first occurrence.
func wallClock(y int, m time.Month, d int, at time.Duration, loc *time.Location) time.Time {
	h, min := int(at/time.Hour), int(at%time.Hour/time.Minute)
	t := time.Date(y, m, d, h, min, 0, 0, loc)
	if th, tm, _ := t.Clock(); th != h || tm != min {
		// In a gap: time.Date took one side of it; the first instant the clock
		// reads at or past `at` is the transition itself.
		start, end := t.ZoneBounds()
		if sinceMidnight(t) > at {
			return start
		}
		return end
	}
	// A repeated time: the earlier occurrence, if there is one.
	for _, shift := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if earlier := t.Add(-shift); earlier.Day() == t.Day() && sinceMidnight(earlier) == at {
			t = earlier
		}
	}
	return t
}

// quietEnd defers t, when its local time of day in loc falls in the quiet hours,
// to the first moment the local clock reads their end.
func quietEnd(q *dsl.QuietHours, t time.Time, loc *time.Location) time.Time {
	local := t.In(loc)
	if !inQuiet(q, sinceMidnight(local)) {
		return t
	}
	return nextClock(local, q.To.Duration(), true)
}

// inQuiet reports whether a time of day falls in [from, to), wrapping midnight.
func inQuiet(q *dsl.QuietHours, tod time.Duration) bool {
	from, to := q.From.Duration(), q.To.Duration()
	if from <= to {
		return tod >= from && tod < to
	}
	return tod >= from || tod < to
}

// timeoutAt is when the reply timeout of step s, started now, ends. It counts
// from the moment the run logically is (batch.at), like a wait; when that is
// earlier than now (the message that led here reached the engine late, or the
// timer that did fired late), the contact still gets the whole timeout from now
// to answer, as far as the free-form messages on the no-reply path keep their
// window by the validator's bounds (dsl.Analysis.TimeoutRoom) for the run's own
// project version.
func (b *batch) timeoutAt(r *store.Run, s *dsl.Step, timeout time.Duration) time.Time {
	from := b.at()
	due := from.Add(timeout)
	if late := b.now.Sub(from); late > 0 {
		due = due.Add(min(late, b.e.timeoutRoom(r.ProjectVersionID, s)))
	}
	return due
}

// timeoutRoom is the validator's room for a reply timeout, from the analysis
// of the project version the run started under. 0 when this process did not
// load that version, or the step is not that project's own (a flow compiled
// again from its stored source): that analysis did not see it.
func (e *Engine) timeoutRoom(pv int64, s *dsl.Step) time.Duration {
	if a, ok := e.analyses.Load(pv); ok {
		return a.(*dsl.Analysis).TimeoutRoom(s)
	}
	return 0
}

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

// wakeAt is when a `wait` ends: `for` later; then, with `at`, the next time the
// wall clock reads HH:MM in the contact's zone (so 09:00 stays 09:00 on the night
// the clocks change; the wait is then up to an hour longer than `for` + 24h, which
// the validator's analysis does not need: everything after a `wait {at}` already
// counts as outside the window); then, if that falls in the flow's quiet hours,
// the end of the quiet hours. The quiet-hours deferral is a wall-clock difference
// added as a duration, so it never exceeds the span the analysis assumed, even
// across a daylight-saving change.
func (e *Engine) wakeAt(f *dsl.Flow, w *dsl.Wait, c *store.Contact, now time.Time) time.Time {
	if w == nil {
		return now
	}
	due := now.Add(w.For)
	if w.At != nil {
		due = nextClock(due.In(e.location(c)), w.At.Duration())
	}
	if q := f.QuietHours; q != nil {
		loc := q.Location
		if loc == nil {
			loc = e.location(c)
		}
		local := due.In(loc)
		if inQuiet(q, sinceMidnight(local)) {
			due = due.Add(untilClock(local, q.To.Duration()))
		}
	}
	return due
}

func sinceMidnight(t time.Time) time.Duration {
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

// nextClock is the first time at or after t when the wall clock of t's zone
// reads `at` (tomorrow's when today's has passed). A time the clocks skip
// (01:30 on a spring-forward night) is taken as time.Date normalizes it.
func nextClock(t time.Time, at time.Duration) time.Time {
	y, m, d := t.Date()
	h, min := int(at/time.Hour), int(at%time.Hour/time.Minute)
	next := time.Date(y, m, d, h, min, 0, 0, t.Location())
	if next.Before(t) {
		next = time.Date(y, m, d+1, h, min, 0, 0, t.Location())
	}
	return next.UTC()
}

// untilClock is the wall-clock time from t to the next time of day `at` (0 if t is
// exactly at it, always under 24h).
func untilClock(t time.Time, at time.Duration) time.Duration {
	d := at - sinceMidnight(t)
	if d < 0 {
		d += dsl.Day
	}
	return d
}

// inQuiet reports whether a time of day falls in [from, to), wrapping midnight.
func inQuiet(q *dsl.QuietHours, tod time.Duration) bool {
	from, to := q.From.Duration(), q.To.Duration()
	if from <= to {
		return tod >= from && tod < to
	}
	return tod >= from || tod < to
}

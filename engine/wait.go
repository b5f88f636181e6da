package engine

import (
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// location is the contact's time zone, or the engine's default.
func (e *Engine) location(c *store.Contact) *time.Location {
	if c != nil && c.Timezone != "" {
		if loc, err := time.LoadLocation(c.Timezone); err == nil {
			return loc
		}
	}
	return e.opts.Timezone
}

// wakeAt is when a `wait` ends: `for` later; then, with `at`, the next HH:MM in the
// contact's zone (less than a day later); then, if that falls in the flow's quiet
// hours, the end of the quiet hours. Offsets are wall-clock differences added as
// durations, so a wait never exceeds what the validator's analysis assumed
// (for + up to 24h + the quiet span), even across a daylight-saving change.
func (e *Engine) wakeAt(f *dsl.Flow, w *dsl.Wait, c *store.Contact, now time.Time) time.Time {
	if w == nil {
		return now
	}
	due := now.Add(w.For)
	if w.At != nil {
		due = due.Add(untilClock(due.In(e.location(c)), w.At.Duration()))
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

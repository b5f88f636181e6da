package dsl

import (
	"sync"
	"time"
)

// MaxClockShift is the largest change of UTC offset any time zone of the tz
// database makes from 2025 on (Antarctica/Troll moves between +00 and +02). A
// contact's zone is not known when flows are checked, so for quiet hours and
// `at` in the contact's zone the analysis allows this much: a night the clocks
// fall back is that much longer in real time. TestMaxClockShift keeps it true
// for the tz database Go ships.
const MaxClockShift = 2 * time.Hour

// shiftYears is the span of years whose offset changes ZoneShift considers: the
// present and future a flow can run in (the past does not recur).
var shiftYears = [2]int{2025, 2100}

var zoneShifts sync.Map // zone name -> time.Duration

// ZoneShift is the largest change of UTC offset a zone makes in shiftYears (0
// for a zone without daylight saving time or other changes): the most a night,
// or a day from HH:MM to HH:MM, can differ from 24h of wall-clock time there.
func ZoneShift(loc *time.Location) time.Duration {
	if loc == nil {
		return MaxClockShift
	}
	if v, ok := zoneShifts.Load(loc.String()); ok {
		return v.(time.Duration)
	}
	t := time.Date(shiftYears[0], 1, 1, 0, 0, 0, 0, loc)
	end := time.Date(shiftYears[1], 1, 1, 0, 0, 0, 0, loc)
	_, off := t.Zone()
	largest := 0
	for n := 0; t.Before(end) && n < 10_000; n++ {
		_, next := t.ZoneBounds()
		if next.IsZero() || !next.After(t) {
			break
		}
		_, off2 := next.Zone()
		largest = max(largest, off2-off, off-off2)
		off, t = off2, next
	}
	d := time.Duration(largest) * time.Second
	zoneShifts.Store(loc.String(), d)
	return d
}

// Shift is the largest clock change in the quiet hours' zone: the zone's own
// for a named zone, MaxClockShift for the contact's.
func (q *QuietHours) Shift() time.Duration {
	if q.Location == nil {
		return MaxClockShift
	}
	return ZoneShift(q.Location)
}

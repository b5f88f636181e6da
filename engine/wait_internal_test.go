package engine

import (
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
)

// The end of the quiet hours is local time, also when the clocks skip or repeat
// it: a skipped end is the first moment after the skip, a repeated one its first
// occurrence.
func TestQuietEndAcrossTransitions(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	quiet := func(from, to string) *dsl.QuietHours {
		f, _ := dsl.ParseClock(from)
		e, _ := dsl.ParseClock(to)
		return &dsl.QuietHours{From: f, To: e, Timezone: "America/New_York", Location: ny}
	}
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	cases := []struct {
		name     string
		q        *dsl.QuietHours
		at, want time.Time
	}{
		// 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC); 02:30 does not exist.
		{"end skipped", quiet("22:00", "02:30"), utc(2026, 3, 8, 4, 0), utc(2026, 3, 8, 7, 0)},
		{"spring forward", quiet("21:00", "09:00"), utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 13, 0)},
		// 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:30 happens twice.
		{"end repeated", quiet("23:00", "01:30"), utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 5, 30)},
		{"fall back", quiet("21:00", "09:00"), utc(2026, 11, 1, 3, 0), utc(2026, 11, 1, 14, 0)},
		{"not quiet", quiet("21:00", "09:00"), utc(2026, 11, 1, 15, 0), utc(2026, 11, 1, 15, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := quietEnd(tc.q, tc.at, ny); !got.Equal(tc.want) {
				t.Errorf("quietEnd(%s) = %s (%s local), want %s", tc.at, got.UTC(), got.In(ny), tc.want)
			}
			if d := quietEnd(tc.q, tc.at, ny).Sub(tc.at); d > tc.q.Span()+dsl.ZoneShift(ny) {
				t.Errorf("deferred %s, more than the validator's bound", d)
			}
		})
	}
}

// `at` is strictly after the start when the wait has no `for`.
func TestNextClockStrict(t *testing.T) {
	nine := 9 * time.Hour
	at9 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	if got := nextClock(at9, nine, false); !got.Equal(at9) {
		t.Errorf("at or after: %s", got)
	}
	if got := nextClock(at9, nine, true); !got.Equal(at9.Add(24 * time.Hour)) {
		t.Errorf("strictly after: %s", got)
	}
}

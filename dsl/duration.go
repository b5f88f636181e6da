package dsl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the calendar-free units of the flow language: a day is 24 hours.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// maxDuration bounds a duration: a hundred years, far below time.Duration's 292.
const maxDuration = 100 * 365 * Day

var durationUnits = map[byte]time.Duration{
	'w': Week, 'd': Day, 'h': time.Hour, 'm': time.Minute, 's': time.Second,
}

// ParseDuration reads the flow language's durations: one or more number+unit pairs
// with units w, d, h, m, s in decreasing order, e.g. 30s, 90m, 4h, 3d, 1d12h, 1w.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	const order = "wdhms"
	var total time.Duration
	last := -1
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q (use units w, d, h, m, s: 30s, 90m, 4h, 3d, 1d12h)", s, s[i:])
		}
		if j == len(s) {
			return 0, fmt.Errorf("invalid duration %q: missing unit after %s (use w, d, h, m or s)", s, s[i:j])
		}
		unit, ok := durationUnits[s[j]]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use w, d, h, m or s)", s, s[j:j+1])
		}
		idx := strings.IndexByte(order, s[j])
		if idx <= last {
			return 0, fmt.Errorf("invalid duration %q: units must appear once each, largest first (like 1d12h)", s)
		}
		last = idx
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		if err != nil || n > int64(maxDuration/unit) || total+time.Duration(n)*unit > maxDuration {
			return 0, fmt.Errorf("invalid duration %q: too large", s)
		}
		total += time.Duration(n) * unit
		i = j + 1
	}
	return total, nil
}

// FormatDuration writes a duration the way people read waits: whole days in days
// (3d), anything under two days in hours (30h, 1h30m), longer spans in days and
// hours (2d12h). Zero is "0s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d > 0 && d%Day != 0 && d < 2*Day {
		return FormatHours(d)
	}
	return formatUnits(d)
}

func formatUnits(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		c byte
		d time.Duration
	}{{'d', Day}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteByte(u.c)
			d -= n * u.d
		}
	}
	if d > 0 && b.Len() == 0 {
		return d.String()
	}
	return b.String()
}

// FormatHours writes an elapsed time in hours (and minutes), the unit people use for
// the 24-hour window: 76h, 23h45m, 30m.
func FormatHours(d time.Duration) string {
	if d < time.Hour {
		return formatUnits(d)
	}
	h := d / time.Hour
	rest := d - h*time.Hour
	s := strconv.FormatInt(int64(h), 10) + "h"
	if rest > 0 {
		s += formatUnits(rest)
	}
	return s
}

// ClockTime is a wall-clock time of day, in minutes after midnight.
type ClockTime int

// ParseClock reads "HH:MM" (24-hour).
func ParseClock(s string) (ClockTime, error) {
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, fmt.Errorf("invalid time of day %q: use HH:MM, like 09:00 or 21:30", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("invalid time of day %q: use HH:MM, like 09:00 or 21:30", s)
	}
	return ClockTime(h*60 + m), nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// Duration is the time since midnight.
func (c ClockTime) Duration() time.Duration { return time.Duration(c) * time.Minute }

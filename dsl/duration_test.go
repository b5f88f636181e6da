package dsl

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"90m", 90 * time.Minute},
		{"4h", 4 * time.Hour},
		{"3d", 72 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1w", 7 * Day},
		{"1w2d3h4m5s", Week + 2*Day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"23h45m", 23*time.Hour + 45*time.Minute},
		{"0s", 0},
		{"007m", 7 * time.Minute},
		{"36500d", maxDuration},
		{"5214w2d", maxDuration},
	} {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	for _, c := range []struct{ in, msg string }{
		{"", "empty duration"},
		{"h", `expected a number at "h"`},
		{"90", "missing unit after 90"},
		{"1x", `unknown unit "x"`},
		{"1H", `unknown unit "H"`},
		{"1.5h", `unknown unit "."`},
		{"-1h", "expected a number"},
		{" 1h", "expected a number"},
		{"1h ", `expected a number at " "`},
		{"3 days", `unknown unit " "`},
		{"1h1d", "largest first"},
		{"1h1h", "largest first"},
		{"1h30m15m", "largest first"},
		{"4hours", `expected a number at "ours"`},
		{"36501d", "too large"},
		{"99999999999999999999s", "too large"},
		{"9223372036854775807s", "too large"},
		// Each unit within bounds, the sum far beyond time.Duration's range.
		{"5214w36500d876000h52560000m3153600000s", "too large"},
		{"36500d1s", "too large"},
	} {
		got, err := ParseDuration(c.in)
		if err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", c.in, got)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseDuration(%q): %v; want it to say %q", c.in, err, c.msg)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{90 * time.Second, "1m30s"},
		{30 * time.Minute, "30m"},
		{4 * time.Hour, "4h"},
		{23*time.Hour + 45*time.Minute, "23h45m"},
		{Day, "1d"},
		{25 * time.Hour, "25h"},
		{47*time.Hour + 59*time.Minute, "47h59m"},
		{2 * Day, "2d"},
		{49 * time.Hour, "2d1h"},
		{3 * Day, "3d"},
		{Week, "7d"},
		{76 * time.Hour, "3d4h"},
		{time.Hour + 30*time.Second, "1h30s"},
		{500 * time.Millisecond, "500ms"},
		{-time.Hour, "-1h"},
	} {
		if got := FormatDuration(c.in); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatHours(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Minute, "30m"},
		{time.Hour, "1h"},
		{23*time.Hour + 45*time.Minute, "23h45m"},
		{24 * time.Hour, "24h"},
		{76 * time.Hour, "76h"},
		{26*time.Hour + 30*time.Second, "26h30s"},
	} {
		if got := FormatHours(c.in); got != c.want {
			t.Errorf("FormatHours(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDurationRoundTrip: what FormatDuration writes, ParseDuration reads back.
func TestDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 59 * time.Second, time.Minute, 61 * time.Minute,
		23*time.Hour + 59*time.Minute + 59*time.Second, Day, Day + time.Second, 2*Day + time.Minute, 10 * Week,
		maxDuration} {
		for _, s := range []string{FormatDuration(d), FormatHours(d)} {
			got, err := ParseDuration(s)
			if err != nil || got != d {
				t.Errorf("%v → %q → %v, %v", d, s, got, err)
			}
		}
	}
	for i := 1; i < 200000; i += 997 {
		d := time.Duration(i) * 17 * time.Second
		if got, err := ParseDuration(FormatDuration(d)); err != nil || got != d {
			t.Fatalf("%v → %q → %v, %v", d, FormatDuration(d), got, err)
		}
	}
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]ClockTime{"00:00": 0, "09:00": 540, "21:30": 1290, "23:59": 1439} {
		got, err := ParseClock(in)
		if err != nil || got != want {
			t.Errorf("ParseClock(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("ClockTime(%d).String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"", "9:00", "24:00", "09:60", "ab:cd", "09-00", "09:000", "+9:00", "-0:00", " 9:00", "9:0 "} {
		if got, err := ParseClock(in); err == nil {
			t.Errorf("ParseClock(%q) = %v, want an error", in, got)
		}
	}
}

func TestQuietHours(t *testing.T) {
	clock := func(s string) ClockTime {
		c, err := ParseClock(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	overnight := &QuietHours{From: clock("21:00"), To: clock("09:00")}
	if got := overnight.Span(); got != 12*time.Hour {
		t.Errorf("overnight span %v, want 12h", got)
	}
	for c, want := range map[string]bool{"20:59": false, "21:00": true, "23:59": true, "00:00": true, "08:59": true, "09:00": false, "12:00": false} {
		if got := overnight.Contains(clock(c)); got != want {
			t.Errorf("21:00–09:00 contains %s = %v, want %v", c, got, want)
		}
	}
	siesta := &QuietHours{From: clock("13:00"), To: clock("15:30")}
	if got := siesta.Span(); got != 2*time.Hour+30*time.Minute {
		t.Errorf("siesta span %v, want 2h30m", got)
	}
	for c, want := range map[string]bool{"12:59": false, "13:00": true, "15:29": true, "15:30": false, "03:00": false} {
		if got := siesta.Contains(clock(c)); got != want {
			t.Errorf("13:00–15:30 contains %s = %v, want %v", c, got, want)
		}
	}
}

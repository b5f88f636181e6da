package dsl

import "testing"

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"", "abc", 3},
		{"steps", "steps", 0},
		{"kitten", "sitting", 3},
		{"stpes", "steps", 1}, // transposition
		{"ab", "ba", 1},       // transposition
		{"ca", "abc", 3},      // optimal string alignment, not full Damerau
		{"olá", "ola", 1},     // runes, not bytes
		{"😀x", "x😀", 1},       // transposed multi-byte runes
		{"wait_for_replay", "wait_for_reply", 1},
		{"flow", "FLOW", 4}, // case-sensitive; nearest lowercases
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := editDistance(c.b, c.a); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetric)", c.b, c.a, got, c.want)
		}
	}
	long := string(make([]byte, 100))
	if got := editDistance(long, long); got != 0 {
		t.Errorf("equal long strings: %d", got)
	}
	if got := editDistance(long, long+"x"); got != 64 {
		t.Errorf("long strings: %d, want the cap 64", got)
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"flow", "description", "language", "quiet_hours", "assume_opt_in", "trigger", "steps"}
	for _, c := range []struct {
		s    string
		cand []string
		want string
	}{
		{"stpes", keys, "steps"},
		{"descripton", keys, "description"},
		{"quiet_hour", keys, "quiet_hours"},
		{"Steps", keys, "steps"},       // case-insensitive
		{"quiet", keys, "quiet_hours"}, // an abbreviation: plausible however far
		{"assume", keys, "assume_opt_in"},
		{"lang", keys, "language"},
		{"summer", []string{"summer_reminder_long", "summer_reminder", "weekly"}, "summer_reminder"},
		{"xyz", keys, ""}, // too far
		{"a", keys, ""},   // one letter is not a typo of anything here
		{"f", keys, ""},   // nor is a one-letter prefix
		{"flo", keys, "flow"},
		{"", keys, ""}, // nothing suggests everything
		{"steps", nil, ""},
		{"remnd", []string{"welcome", "remind", "route"}, "remind"},
		{"sumer_reminder", []string{"summer_reminder", "weekly_deals"}, "summer_reminder"},
		{"en_GB", []string{"en_US", "es_ES", "pt_BR"}, "en_US"},
		{"fr_FR", []string{"en_US", "es_ES", "pt_BR"}, ""},
		{"ab", []string{"ax", "ay"}, "ax"}, // ties: the first candidate
	} {
		if got := nearest(c.s, c.cand); got != c.want {
			t.Errorf("nearest(%q, %v) = %q, want %q", c.s, c.cand, got, c.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	cand := []string{"steps", "trigger"}
	if got := didYouMean("stpes", cand); got != "; did you mean `steps`?" {
		t.Errorf("typo: %q", got)
	}
	if got := didYouMean("steps", cand); got != "" {
		t.Errorf("exact match: %q, want no suggestion", got)
	}
	if got := didYouMean("zzzzzz", cand); got != "" {
		t.Errorf("unrelated: %q, want no suggestion", got)
	}
	if got := didYouMean("", cand); got != "" {
		t.Errorf("empty: %q, want no suggestion", got)
	}
}

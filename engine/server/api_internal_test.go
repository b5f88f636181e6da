package server

import "testing"

// An event that starts nothing names the events that would, with a "did you
// mean" for a typo; with no event flow loaded it says so instead of listing
// nothing.
func TestUnknownEventMessage(t *testing.T) {
	for _, c := range []struct {
		name  string
		names []string
		want  string
	}{
		{"x", nil, "no flow starts on event `x`: no loaded flow has an `event` trigger"},
		{"order_shiped", []string{"order_shipped", "signup"}, "no flow starts on event `order_shiped`; did you mean `order_shipped`? (events: order_shipped, signup)"},
		{"zzz", []string{"order_shipped"}, "no flow starts on event `zzz` (events: order_shipped)"},
	} {
		if got := unknownEvent(c.name, c.names); got != c.want {
			t.Errorf("unknownEvent(%q, %v) =\n%s\nwant\n%s", c.name, c.names, got, c.want)
		}
	}
}

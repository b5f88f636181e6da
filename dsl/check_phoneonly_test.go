package dsl

import (
	"strings"
	"testing"
)

// Which conditions guard an AUTHENTICATION template against contacts known
// only by a BSUID.
func TestPhoneOnlyGuards(t *testing.T) {
	cat, err := LoadCatalog("../testdata/validate/templates.json")
	if err != nil {
		t.Fatal(err)
	}
	const code = "  - id: code\n    send: {template: login_code, params: [\"1\"]}\n"
	branch := func(cond string) string {
		return "flow: f\nlanguage: en_US\ntrigger: {message: {keywords: [login]}}\nsteps:\n" +
			"  - id: check\n    branch:\n      - if: " + cond + "\n        goto: code\n      - goto: other\n" +
			"  - id: other\n    send: hi\n    next: done\n" + code + "  - id: done\n    end: true\n"
	}
	for _, tc := range []struct {
		name, src string
		warn      bool
	}{
		{"unguarded", "flow: f\nlanguage: en_US\ntrigger: {message: {keywords: [login]}}\nsteps:\n" + code, true},
		{"has_phone", branch("contact.has_phone"), false},
		{"has_phone == true", branch("contact.has_phone == true"), false},
		{"wa_id not empty", branch(`contact.wa_id != ""`), false},
		{"conjunction", branch(`contact.opted_in && contact.has_phone`), false},
		{"disjunction is no guard", branch(`contact.opted_in || contact.has_phone`), true},
		{"negation is no guard", branch(`not contact.has_phone`), true},
		{"audience", "flow: f\nlanguage: en_US\ntrigger: {schedule: {cron: \"0 9 * * 1\", audience: \"contact.has_phone\"}}\nsteps:\n" + code, false},
		{"fallback", "flow: f\nlanguage: en_US\ntrigger: {message: {keywords: [login]}}\nsteps:\n  - id: code\n    send: {text: \"your code\", fallback: {template: login_code, params: [\"1\"]}}\n", true},
		{"utility is fine", "flow: f\nlanguage: en_US\ntrigger: {message: {keywords: [login]}}\nsteps:\n  - id: r\n    send: {template: welcome_back}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Diagnostic
			for _, d := range checkSrc(t, tc.src, cat, Options{}) {
				if d.Rule == RulePhoneOnly {
					got = append(got, d)
				}
			}
			if (len(got) > 0) != tc.warn {
				t.Fatalf("phone-only findings %v, want warning=%v", got, tc.warn)
			}
			if len(got) > 0 && (got[0].Severity != SevWarning || !strings.Contains(got[0].Message, "131062")) {
				t.Errorf("finding %+v", got[0])
			}
		})
	}
}

package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A tap must be one the conversation offered, written with the right key:
// `interactive:` for reply buttons and list rows, `button:` for a template's
// quick replies. The error names the script line and what was offered.
func TestTapsMustBeOffered(t *testing.T) {
	const head = `contact: {wa_id: "16505551234", name: Ana, timezone: Europe/Lisbon}
start: 2026-07-01T10:00:00Z
events:
  - inbound: {text: "Hi", referral: {source_id: "120226305854810999", headline: "Sandals"}}
`
	const toReminder = `  - inbound: {interactive: "Yes please"}
  - inbound: {interactive: "Yes, send offers"}
  - advance: 4d
`
	for _, c := range []struct {
		name, events string
		line         int
		want         string // "" = plays through
	}{
		{"offered", `  - inbound: {interactive: "Yes please"}
`, 0, ""},
		{"not offered", `  - inbound: {interactive: "Maybe later"}
`, 5, `interactive: "Maybe later": not offered: the last message with buttons (summer-sale/intro-sandals) offered reply buttons "Yes please", "Not now"`},
		{"button for a reply button", `  - inbound: {button: "Yes please"}
`, 5, "`button:` taps a template's quick reply, but this is a reply button of an interactive message (summer-sale/intro-sandals): write interactive: \"Yes please\""},
		{"quick reply", toReminder + `  - inbound: {button: "Get my code"}
`, 0, ""},
		{"interactive for a quick reply", toReminder + `  - inbound: {interactive: "Get my code"}
`, 8, "`interactive:` taps a reply button or list row, but this is a quick reply of template summer_reminder (summer-sale/reengage): write button: \"Get my code\""},
		{"quick reply not offered", toReminder + `  - inbound: {button: "Get my cod"}
`, 8, `button: "Get my cod": not offered: the last message with buttons (summer-sale/reengage) offered the quick replies of template summer_reminder: "Get my code"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseScript("taps.test.yaml", []byte(head+c.events))
			if err != nil {
				t.Fatal(err)
			}
			p, diags, err := ProjectFor(s, []string{"../../flows/summer_sale.yaml"}, "../../flows/templates.json")
			if err != nil || diags.HasErrors() {
				t.Fatalf("flows: %v %v", err, diags)
			}
			_, err = Run(context.Background(), s, p)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *ScriptError
			if !errors.As(err, &se) || se.Line != c.line || !strings.Contains(se.Msg, c.want) {
				t.Fatalf("got %v\nwant line %d: %s", err, c.line, c.want)
			}
		})
	}
	// List rows, by title or id.
	menu := func(events string) error {
		s, err := ParseScript("menu.test.yaml", []byte("events:\n  - inbound: menu\n"+events))
		if err != nil {
			t.Fatal(err)
		}
		p, _, _ := ProjectFor(s, []string{"../../flows/menu.yaml"}, "../../flows/templates.json")
		_, err = Run(context.Background(), s, p)
		return err
	}
	if err := menu("  - inbound: {interactive: {id: hours}}\n"); err != nil {
		t.Fatalf("a row tapped by id: %v", err)
	}
	if err := menu("  - inbound: {interactive: Opening times}\n"); err == nil ||
		err.Error() != `menu.test.yaml:3: interactive: "Opening times": not offered: the last message with buttons (menu/show-menu) offered list rows "Opening hours", "Summer sale", "Join the club", "Talk to a person"` {
		t.Fatalf("a row not offered: %v", err)
	}
	// No message has offered anything yet.
	s, _ := ParseScript("taps.test.yaml", []byte("events:\n  - inbound: {interactive: \"Yes please\"}\n"))
	p, _, _ := ProjectFor(s, []string{"../../flows/summer_sale.yaml"}, "../../flows/templates.json")
	_, err := Run(context.Background(), s, p)
	if err == nil || !strings.Contains(err.Error(), `taps.test.yaml:2: interactive: "Yes please": no message so far offered buttons or list rows to tap (to type it, write text: "Yes please")`) {
		t.Fatalf("tap before any message: %v", err)
	}
}

// An expected template that the catalog lacks is named as such, with the
// nearest name, instead of "expected a message with template …; got …".
func TestExpectUnknownTemplate(t *testing.T) {
	s, err := ParseScript("t.test.yaml", []byte(`contact: {wa_id: "16505551234", name: Ana, timezone: Europe/Lisbon}
start: 2026-07-01T10:00:00Z
events:
  - inbound: {text: "Hi", referral: {source_id: "120226305854810999", headline: "Sandals"}}
  - inbound: {interactive: "Yes please"}
  - inbound: {interactive: "Yes, send offers"}
  - advance: 4d
  - expect:
      sent: [{template: summer_remindr}]
  - expect:
      sent: [{template: summer_reminder}]
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := ProjectFor(s, []string{"../../flows/summer_sale.yaml"}, "../../flows/templates.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), s, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 2 {
		t.Fatalf("failures: %v", res.Failures)
	}
	if f := res.Failures[0]; f.Line != 9 || !strings.HasPrefix(f.Msg, "expected template summer_remindr, which the catalog does not have; did you mean `summer_reminder`? (templates: ") {
		t.Errorf("unknown template: %v", f)
	}
	// A known template that was not sent keeps the usual message.
	if f := res.Failures[1]; f.Line != 11 || !strings.HasPrefix(f.Msg, "expected a message with template summer_reminder") {
		t.Errorf("known template: %v", f)
	}
}

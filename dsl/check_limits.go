package dsl

import (
	"fmt"
	"unicode/utf8"
)

// WhatsApp message limits (docs/WHATSAPP.md and Meta's message reference).
const (
	MaxTextBody        = 4096
	MaxInteractiveBody = 1024
	MaxButtons         = 3
	MaxButtonTitle     = 20
	MaxFooter          = 60
	MaxHeaderText      = 60
	MaxCaption         = 1024
	MaxListButton      = 20
	MaxListSections    = 10
	MaxListRows        = 10
	MaxRowTitle        = 24
	MaxRowDescription  = 72
	MaxSectionTitle    = 24
	MaxRowID           = 200
	MaxTemplateBody    = 1024
	MaxCTAButton       = 20
	MaxFormCTA         = 20
)

// checkLimits reports messages WhatsApp would refuse for their shape: too many
// buttons, titles or bodies too long, duplicate button or row ids. Lengths are
// checked on the literal text; a text with ${…} is checked on its literal parts,
// a lower bound of what it renders to.
func (c *checker) checkLimits() {
	c.eachSend(func(f *Flow, s *Step) {
		m := s.Send
		errorf := func(pos Pos, format string, args ...any) {
			c.report(f, s, pos, SevError, RuleLimits, fmt.Sprintf(format, args...), nil)
		}
		long := func(t *Text, max int, what string) {
			if t == nil {
				return
			}
			n := utf8.RuneCountInString(t.Literal())
			if n > max && !t.IsStatic() {
				errorf(t.Pos, "%s is at least %d characters (not counting its ${…} values); WhatsApp allows at most %d", what, n, max)
			} else if n > max {
				errorf(t.Pos, "%s is %d characters; WhatsApp allows at most %d", what, n, max)
			} else if t.IsStatic() && n == 0 {
				errorf(t.Pos, "%s is empty; WhatsApp refuses empty text", what)
			}
		}
		switch {
		case m.Text != nil && len(m.Buttons) > 0:
			long(m.Text, MaxInteractiveBody, "the body of a message with buttons")
			if len(m.Buttons) > MaxButtons {
				errorf(m.Buttons[MaxButtons].Pos, "%d reply buttons; WhatsApp allows at most %d (use a `list` for more choices)", len(m.Buttons), MaxButtons)
			}
			seen := map[string]bool{}
			for _, b := range m.Buttons {
				long(b.Title, MaxButtonTitle, fmt.Sprintf("button title %q", b.Title.Raw))
				if seen[b.ID] {
					errorf(b.Pos, "two buttons share the id %q; each reply button needs its own", b.ID)
				}
				seen[b.ID] = true
			}
		case m.Text != nil:
			long(m.Text, MaxTextBody, "the text")
		case m.Media != nil:
			long(m.Media.Caption, MaxCaption, "the caption")
		case m.CTA != nil:
			long(m.CTA.Body, MaxInteractiveBody, "the cta_url text")
			long(m.CTA.Button, MaxCTAButton, "the cta_url button label")
			long(m.CTA.Header, MaxHeaderText, "the cta_url header")
			long(m.CTA.Footer, MaxFooter, "the cta_url footer")
		case m.Form != nil:
			long(m.Form.Body, MaxInteractiveBody, "the form text")
			long(m.Form.CTA, MaxFormCTA, "the form's button label (`cta`)")
			long(m.Form.Header, MaxHeaderText, "the form header")
			long(m.Form.Footer, MaxFooter, "the form footer")
		case m.LocationRequest != nil:
			long(m.LocationRequest.Body, MaxInteractiveBody, "the location request text")
		case m.List != nil:
			l := m.List
			long(l.Body, MaxInteractiveBody, "the list body")
			long(l.Button, MaxListButton, "the list button label")
			long(l.Header, MaxHeaderText, "the list header")
			long(l.Footer, MaxFooter, "the list footer")
			if len(l.Sections) > MaxListSections {
				errorf(l.Sections[MaxListSections].Pos, "%d list sections; WhatsApp allows at most %d", len(l.Sections), MaxListSections)
			}
			rows := 0
			seen := map[string]bool{}
			for _, sec := range l.Sections {
				long(sec.Title, MaxSectionTitle, "the section title")
				if sec.Title == nil && len(l.Sections) > 1 {
					errorf(sec.Pos, "a list with several sections needs a `title` on each")
				}
				for _, r := range sec.Rows {
					rows++
					if rows == MaxListRows+1 {
						errorf(r.Pos, "more than %d list rows; WhatsApp allows at most %d across all sections", MaxListRows, MaxListRows)
					}
					long(r.Title, MaxRowTitle, fmt.Sprintf("row title %q", r.Title.Raw))
					long(r.Description, MaxRowDescription, "the row description")
					if utf8.RuneCountInString(r.ID) > MaxRowID {
						errorf(r.Pos, "row id is longer than %d characters", MaxRowID)
					}
					if seen[r.ID] {
						errorf(r.Pos, "two list rows share the id %q; each row needs its own", r.ID)
					}
					seen[r.ID] = true
				}
			}
		}
		for _, t := range []*TemplateRef{m.Template, m.Fallback} {
			if t == nil || t.Resolved == nil {
				continue
			}
			if n := utf8.RuneCountInString(t.Resolved.Body); n > MaxTemplateBody {
				errorf(t.Pos, "template `%s` has a %d-character body; WhatsApp allows at most %d", t.Name, n, MaxTemplateBody)
			}
		}
	})
}

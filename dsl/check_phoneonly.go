package dsl

import "fmt"

// checkPhoneOnly warns when an AUTHENTICATION template (sent, or as a fallback)
// is reachable on a path that does not make sure the contact's phone number is
// known. A WhatsApp user with a username may hide their number: funnel then
// knows them only by a business-scoped user ID (BSUID), and Meta refuses to
// deliver one-tap, zero-tap and copy-code authentication templates to a BSUID
// (error 131062). A path is guarded once a branch condition or the trigger's
// audience requires `contact.has_phone` (or `contact.wa_id != ""`).
func (c *checker) checkPhoneOnly() {
	w := c.walkGuard(func(f *Flow) bool { return RequiresPhone(f.Trigger.Audience) },
		func(from guardState, e Edge) bool { return from.holds || (e.Case != nil && RequiresPhone(e.Case.If)) })
	c.eachSend(func(f *Flow, s *Step) {
		if !w.unguarded(s) {
			return
		}
		for _, t := range []*TemplateRef{s.Send.Template, s.Send.Fallback} {
			if t == nil || t.Resolved == nil || t.Resolved.Category != "AUTHENTICATION" {
				continue
			}
			hops := w.pathTo(s)
			what := "AUTHENTICATION template"
			if t == s.Send.Fallback {
				what = "AUTHENTICATION fallback template"
			}
			c.report(f, s, t.Pos, SevWarning, RulePhoneOnly, fmt.Sprintf(
				"%s `%s` can reach a contact known only by a business-scoped user ID (a WhatsApp username, number hidden): %s checks no `contact.has_phone`; WhatsApp refuses authentication templates without a phone number (131062): branch on `contact.has_phone` first, and ask for the number (a REQUEST_CONTACT_INFO button) otherwise",
				what, t.Name, FormatPath(hops, f)), PathIDs(hops, f))
		}
	})
}

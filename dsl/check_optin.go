package dsl

import "fmt"

// checkOptIn warns when a MARKETING template (sent, or as a fallback) is reachable
// on a path where the contact never opted in: no `opt_in: true` step since the
// entry (or an `opt_out` after it), no audience or branch condition requiring
// `contact.opted_in`, and no `assume_opt_in: true` on the flow. The engine refuses
// such sends at run time; this says so before they are written.
func (c *checker) checkOptIn() {
	w := c.walkGuard(func(f *Flow) bool { return RequiresOptIn(f.Trigger.Audience) },
		func(from guardState, e Edge) bool {
			next := from.holds
			switch from.step.Kind {
			case ActOptIn:
				next = true
			case ActOptOut:
				next = false
			}
			return next || (e.Case != nil && RequiresOptIn(e.Case.If))
		})
	c.eachSend(func(f *Flow, s *Step) {
		if f.AssumeOptIn || !w.unguarded(s) {
			return
		}
		for _, t := range []*TemplateRef{s.Send.Template, s.Send.Fallback} {
			if t == nil || t.Resolved == nil || t.Resolved.Category != "MARKETING" {
				continue
			}
			hops := w.pathTo(s)
			what := "MARKETING template"
			if t == s.Send.Fallback {
				what = "MARKETING fallback template"
			}
			withdrawn := "" // the last opt_out on the path: consent was given, then withdrawn
			for _, h := range hops {
				if h.Step.Kind == ActOptOut {
					withdrawn = hopName(h, f)
				}
			}
			if withdrawn != "" {
				c.report(f, s, t.Pos, SevWarning, RuleOptIn, fmt.Sprintf(
					"%s `%s` can reach a contact who opted out: %s passes `%s` (`opt_out: true`) and no `opt_in: true` step after it; without consent the engine refuses this send",
					what, t.Name, FormatPath(hops, f), withdrawn), PathIDs(hops, f))
				continue
			}
			c.report(f, s, t.Pos, SevWarning, RuleOptIn, fmt.Sprintf(
				"%s `%s` can reach a contact who never opted in: %s passes no `opt_in: true` step; record consent (an `opt_in: true` step after a consent button), or set `assume_opt_in: true` if consent is collected outside WhatsApp; without consent the engine refuses this send",
				what, t.Name, FormatPath(hops, f)), PathIDs(hops, f))
		}
	})
}

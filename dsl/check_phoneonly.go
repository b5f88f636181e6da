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
	type state struct {
		step    *Step
		guarded bool
	}
	type predT struct {
		from state
		note string
		ok   bool
	}
	flowOf := map[*Step]*Flow{}
	for _, f := range c.p.Flows {
		for _, s := range f.Steps {
			flowOf[s] = f
		}
	}
	pred := map[state]predT{}
	var queue []state
	visit := func(s state, from predT) {
		if _, seen := pred[s]; seen {
			return
		}
		pred[s] = from
		queue = append(queue, s)
	}
	for _, f := range c.p.Flows {
		if len(f.Steps) == 0 || f.Trigger.Kind == "" {
			continue
		}
		visit(state{f.Steps[0], RequiresPhone(f.Trigger.Audience)}, predT{})
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		f := flowOf[st.step]
		for _, e := range f.Edges(st.step, c.p.Flow) {
			if e.To == nil {
				continue
			}
			next := st.guarded || (e.Case != nil && RequiresPhone(e.Case.If))
			visit(state{e.To, next}, predT{from: st, note: e.Note, ok: true})
		}
	}
	c.eachSend(func(f *Flow, s *Step) {
		if _, reachable := pred[state{s, false}]; !reachable {
			return
		}
		for _, t := range []*TemplateRef{s.Send.Template, s.Send.Fallback} {
			if t == nil || t.Resolved == nil || t.Resolved.Category != "AUTHENTICATION" {
				continue
			}
			var hops []Hop
			st, note := state{s, false}, ""
			for len(hops) <= len(pred) {
				hops = append(hops, Hop{Flow: flowOf[st.step], Step: st.step, Note: note})
				p := pred[st]
				if !p.ok {
					break
				}
				st, note = p.from, p.note
			}
			reverseHops(hops)
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

package dsl

import "fmt"

// checkOptIn warns when a MARKETING template (sent, or as a fallback) is reachable
// on a path where the contact never opted in: no `opt_in: true` step since the
// entry (or an `opt_out` after it), no audience or branch condition requiring
// `contact.opted_in`, and no `assume_opt_in: true` on the flow. The engine refuses
// such sends at run time; this says so before they are written.
func (c *checker) checkOptIn() {
	type state struct {
		step      *Step
		consented bool
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
		visit(state{f.Steps[0], RequiresOptIn(f.Trigger.Audience)}, predT{})
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		f := flowOf[st.step]
		for _, e := range f.Edges(st.step, c.p.Flow) {
			if e.To == nil {
				continue
			}
			next := st.consented
			switch st.step.Kind {
			case ActOptIn:
				next = true
			case ActOptOut:
				next = false
			}
			if e.Case != nil && RequiresOptIn(e.Case.If) {
				next = true
			}
			visit(state{e.To, next}, predT{from: st, note: e.Note, ok: true})
		}
	}
	c.eachSend(func(f *Flow, s *Step) {
		if f.AssumeOptIn {
			return
		}
		if _, reachable := pred[state{s, false}]; !reachable {
			return
		}
		for _, t := range []*TemplateRef{s.Send.Template, s.Send.Fallback} {
			if t == nil || t.Resolved == nil || t.Resolved.Category != "MARKETING" {
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

package dsl

import (
	"fmt"
	"sort"
)

// checkAdConflicts reports a click-to-WhatsApp ad id listed by two flows when one
// of them can never start from it. The engine gives a message from an ad to the
// flows listing its id, ties to the flow id that sorts first; a later flow still
// gets the ad's messages that an earlier one's `text` filter turns away, so the
// later flow is dead for that ad only when an earlier one has no `text` filter
// or the same one.
func (c *checker) checkAdConflicts() {
	var flows []*Flow
	for _, f := range c.p.Flows {
		if f.Trigger.Kind == TriggerClickToWhatsApp && len(f.Trigger.Ads) > 0 {
			flows = append(flows, f)
		}
	}
	sort.SliceStable(flows, func(i, j int) bool { return flows[i].ID < flows[j].ID })
	type claim struct {
		f   *Flow
		pos Pos
	}
	claims := map[string][]claim{} // ad id → the flows listing it, in precedence order
	for _, f := range flows {
		reported := map[string]bool{}
		for i, ad := range f.Trigger.Ads {
			pos := f.Trigger.Pos
			if i < len(f.Trigger.AdPos) {
				pos = f.Trigger.AdPos[i]
			}
			if reported[ad] {
				continue
			}
			for _, w := range claims[ad] {
				if w.f.ID == f.ID || !shadows(w.f.Trigger, f.Trigger) { // the same flow, or a duplicate id (reported as such)
					continue
				}
				reported[ad] = true
				c.report(f, nil, pos, SevError, RuleTrigger, fmt.Sprintf(
					"ad `%s` is also claimed by flow `%s` (%s), which wins it (ties go to the flow id that sorts first)%s: this flow never starts from that ad; list the ad in one flow only, or %s",
					ad, w.f.ID, w.pos, sameText(w.f.Trigger), fixText(w.f)), nil)
				break
			}
			claims[ad] = append(claims[ad], claim{f, pos})
		}
	}
}

// shadows reports whether every message from an ad that later would take is
// taken by earlier first.
func shadows(earlier, later Trigger) bool {
	if earlier.Text == nil {
		return true
	}
	return later.Text != nil && earlier.Text.String() == later.Text.String()
}

func sameText(t Trigger) string {
	if t.Text == nil {
		return " and takes every message from it"
	}
	return " with the same `text` filter"
}

func fixText(winner *Flow) string {
	if winner.Trigger.Text == nil {
		return "give `" + winner.ID + "` a `text` filter that tells them apart"
	}
	return "make their `text` filters differ"
}

package engine

import (
	"strings"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// matchFlows lists the flows an inbound message may start, best first (see the
// package documentation for the precedence). Flows the contact is already in are
// left out unless they allow reentry.
func (b *batch) matchFlows(c *store.Contact, ref *whatsapp.Referral, text string) []*dsl.Flow {
	var ranks [5][]*dsl.Flow
	trimmed := strings.TrimSpace(text)
	for _, f := range b.flows.ctwa {
		t := f.Trigger
		if t.Text != nil && !t.Text.MatchString(text) {
			continue
		}
		switch {
		case len(t.Ads) > 0:
			if ref != nil && contains(t.Ads, ref.SourceID) {
				ranks[0] = append(ranks[0], f)
			}
		case ref != nil || t.Text != nil:
			ranks[1] = append(ranks[1], f)
		}
	}
	for _, f := range b.flows.message {
		t := f.Trigger
		switch {
		case len(t.Keywords) > 0 && containsFold(t.Keywords, trimmed):
			ranks[2] = append(ranks[2], f)
		case t.Pattern != nil && t.Pattern.MatchString(text):
			ranks[3] = append(ranks[3], f)
		case len(t.Keywords) == 0 && t.Pattern == nil:
			ranks[4] = append(ranks[4], f)
		}
	}
	var out []*dsl.Flow
	for _, r := range ranks {
		for _, f := range r {
			if f.Reenter || !b.hasLiveRun(c.WaID, f.ID) {
				out = append(out, f)
			}
		}
	}
	return out
}

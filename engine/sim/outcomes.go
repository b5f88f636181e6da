package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/funnel-dev/funnel/store"
)

// simDataset is the dataset the simulator sends conversions to: a simulation
// shows what the Conversions API would receive, as if a dataset were set.
const simDataset = "sim"

// conversionsAPI is the simulator's Conversions API: it accepts every event
// (the engine builds them, and the whatsapptest fake checks their shape
// against Meta's rules in the engine's tests).
type conversionsAPI struct{}

func (conversionsAPI) SendEvents(context.Context, string, []json.RawMessage) error { return nil }

// collectOutcomes puts the contact's conversions and their Conversions API
// outcomes produced since the last call on the timeline.
func (r *runner) collectOutcomes(ctx context.Context, key string) error {
	cs, err := r.st.Conversions(ctx, store.ConversionFilter{Contact: key, Limit: 1 << 20})
	if err != nil {
		return err
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	for _, c := range cs {
		if c.ID <= r.lastConv {
			continue
		}
		r.lastConv = c.ID
		text := c.Event
		if c.Value != nil {
			text += " " + strconv.FormatFloat(*c.Value, 'f', -1, 64) + " " + c.Currency
		}
		var vs []string
		for step, v := range c.Variants {
			vs = append(vs, step+"="+v)
		}
		sort.Strings(vs)
		if len(vs) > 0 {
			text += " [" + strings.Join(vs, ", ") + "]"
		}
		if c.SourceID != "" {
			text += " (ad " + c.SourceID + ")"
		}
		line := Line{At: c.At.In(r.loc), Direction: "convert", Flow: c.FlowID, Step: c.Step, Type: "conversion", Text: text,
			Window: r.window(c.At), Status: "recorded"}
		r.res.Timeline = append(r.res.Timeline, line)
		r.sinceConv = append(r.sinceConv, c.Event)
		r.convs = append(r.convs, c)
	}
	var open []int64
	byID := map[int64]*store.Conversion{}
	for _, c := range r.convs {
		if !r.capiDone[c.ID] {
			open = append(open, c.ID)
			byID[c.ID] = c
		}
	}
	if len(open) == 0 {
		return nil
	}
	evs, err := r.st.CAPIEventsOf(ctx, open)
	if err != nil {
		return err
	}
	for _, id := range open {
		c, ev := byID[id], evs[id]
		if ev == nil {
			r.capiDone[id] = true // nothing to send: no click id
			continue
		}
		if ev.Status == store.CAPIQueued || ev.Status == store.CAPISending {
			continue
		}
		r.capiDone[id] = true
		at := ev.UpdatedAt
		if !ev.SentAt.IsZero() {
			at = ev.SentAt
		}
		text := fmt.Sprintf("Conversions API %s (event_id %s)", c.Event, ev.EventID)
		if ev.Error != "" {
			text += ": " + ev.Error
		}
		line := Line{At: at.In(r.loc), Direction: "capi", Flow: c.FlowID, Step: c.Step, Type: "capi", Text: text,
			Window: r.window(at), Status: ev.Status}
		r.res.Timeline = append(r.res.Timeline, line)
		r.sinceCAPI = append(r.sinceCAPI, line)
	}
	return nil
}

// checkOutcomes compares the conversions and Conversions API calls since the
// previous expect with what it expects.
func (r *runner) checkOutcomes(x *Expect, fail func(line int, format string, args ...any)) {
	convs, calls := r.sinceConv, r.sinceCAPI
	r.sinceConv, r.sinceCAPI = nil, nil
	i := 0
	for _, want := range x.Converted {
		found := false
		for i < len(convs) {
			i++
			if convs[i-1] == want {
				found = true
				break
			}
		}
		if !found {
			got := "nothing"
			if len(convs) > 0 {
				got = strings.Join(convs, ", ")
			}
			fail(x.Line, "expected a conversion %s; got %s", want, got)
			return
		}
	}
	i = 0
	for _, m := range x.CAPI {
		status := m.Status
		if status == "" {
			status = store.CAPISent
		}
		found := false
		for i < len(calls) {
			l := calls[i]
			i++
			if (m.Event == "" || strings.HasPrefix(l.Text, "Conversions API "+m.Event+" ")) && l.Status == status {
				found = true
				break
			}
		}
		if !found {
			var got []string
			for _, l := range calls {
				got = append(got, fmt.Sprintf("[%s/%s %s %s]", l.Flow, l.Step, truncate(strings.TrimPrefix(l.Text, "Conversions API "), 60), l.Status))
			}
			g := "nothing"
			if len(got) > 0 {
				g = strings.Join(got, ", ")
			}
			fail(m.Line, "expected a Conversions API event %s with status %s; got %s", m.Event, status, g)
			return
		}
	}
}

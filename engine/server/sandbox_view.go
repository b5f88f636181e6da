package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/sim"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// SandboxMessage is one line of the sandbox transcript: the contact's message,
// the business's message, or a note of the system (an opt-out, an event, a
// message nothing answered).
type SandboxMessage struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"` // in | out | system
	Flow      string    `json:"flow,omitempty"`
	Step      string    `json:"step,omitempty"`
	Type      string    `json:"type"`
	Text      string    `json:"text"`
	Template  string    `json:"template,omitempty"`
	// Status is sent, refused (the policy kept it back), failed, cancelled or
	// unknown for the business's messages.
	Status   string `json:"status,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
	// Window is the window as the simulated Cloud API counted it when it took
	// the message ("open" or "closed"), recorded then; "" when nothing was sent.
	Window string `json:"window,omitempty"`
	// Allowed is what that window allowed: "free-form" or "template only".
	Allowed  string          `json:"allowed,omitempty"`
	Reason   string          `json:"reason,omitempty"` // why refused, or what a note is about
	Late     string          `json:"late,omitempty"`   // "webhook 2h late": written long before it arrived
	Headline string          `json:"headline,omitempty"`
	Choices  []SandboxChoice `json:"choices,omitempty"` // buttons and list rows to tap
	Link     *SandboxLink    `json:"link,omitempty"`    // a call-to-action URL button
	Form     *SandboxForm    `json:"form,omitempty"`    // a form to fill in, or a location to share
}

// SandboxForm is what the page lets the contact fill in to answer a form
// message (Kind "form": the fields the form's Flow JSON returns, none when the
// flow names no Flow JSON) or a location request (Kind "location").
type SandboxForm struct {
	Kind   string          `json:"kind"`
	CTA    string          `json:"cta"`
	Screen string          `json:"screen,omitempty"`
	Fields []dsl.FormField `json:"fields,omitempty"`
}

// SandboxLink is a call-to-action button: its label and the address it opens.
type SandboxLink struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// SandboxChoice is a tappable reply: an interactive button or list row, or a
// template quick reply.
type SandboxChoice = sim.Tap

// sandboxView is the page's state: the clock, and with a contact, its panel and
// transcript.
type sandboxView struct {
	Now           time.Time        `json:"now"`
	OffsetSeconds int64            `json:"offset_seconds"`
	Contact       *sandboxContact  `json:"contact,omitempty"`
	Messages      []SandboxMessage `json:"messages"`
	Schedules     []sandboxNext    `json:"schedules"`
}

type sandboxContact struct {
	WaID     string       `json:"wa_id"`
	Name     string       `json:"name"`
	Timezone string       `json:"timezone"` // "" = the daemon's
	Zone     string       `json:"zone"`     // the zone in effect
	Window   sandboxState `json:"window"`
	Consent  sandboxState `json:"consent"`
	Runs     []sandboxRun `json:"runs"`
	Next     *sandboxNext `json:"next,omitempty"` // the earliest thing due for the contact
}

// sandboxState is a state for code ("open", "in") and for people.
type sandboxState struct {
	State    string     `json:"state"`
	Text     string     `json:"text"`
	ClosesAt *time.Time `json:"closes_at,omitempty"`
}

type sandboxRun struct {
	Flow   string       `json:"flow"`
	Step   string       `json:"step"`
	Status string       `json:"status"`
	Text   string       `json:"text"`
	Next   *sandboxNext `json:"next,omitempty"`
}

// sandboxNext is something due later, with why: "waits until Thu 09:00 — quiet
// hours 21:00–09:00".
type sandboxNext struct {
	At   time.Time `json:"at"`
	Flow string    `json:"flow,omitempty"`
	Text string    `json:"text"`
}

func (sb *Sandbox) view(ctx context.Context, waID string) (*sandboxView, error) {
	now := sb.clock.Now()
	v := &sandboxView{Now: now, OffsetSeconds: int64(sb.clock.Offset().Seconds()), Messages: []SandboxMessage{}, Schedules: []sandboxNext{}}
	p := sb.eng.Flows()
	scheds, err := sb.st.ScheduleList(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range scheds {
		if p == nil || p.Flow(s.FlowID) == nil {
			continue
		}
		v.Schedules = append(v.Schedules, sandboxNext{At: s.NextAt, Flow: s.FlowID,
			Text: fmt.Sprintf("broadcast %s runs %s (%s)", s.FlowID, sb.when(s.NextAt, sb.zone, now), p.Flow(s.FlowID).Trigger.Cron)})
	}
	if waID == "" {
		return v, nil
	}
	c, err := sb.st.Contact(ctx, waID)
	if err != nil {
		return nil, err
	}
	key := waID // the contact's own key: its runs and messages are filed under it
	if c != nil {
		key = c.WaID
	}
	loc := sb.zone
	if c != nil && c.Timezone != "" {
		if l, err := time.LoadLocation(c.Timezone); err == nil {
			loc = l
		}
	}
	v.Contact = &sandboxContact{WaID: key, Zone: loc.String(), Runs: []sandboxRun{}}
	v.Contact.Window = sb.windowState(c, now, loc)
	v.Contact.Consent = consentState(c, loc)
	if c != nil {
		v.Contact.Name, v.Contact.Timezone = c.Name, c.Timezone
	}
	if err := sb.runs(ctx, v.Contact, p, now, loc); err != nil {
		return nil, err
	}

	ins, err := sb.st.InboxOf(ctx, waID, sandboxTranscript)
	if err == nil && key != waID {
		var more []*store.InboxItem
		more, err = sb.st.InboxOf(ctx, key, sandboxTranscript)
		ins = append(ins, more...)
	}
	if err != nil {
		return nil, err
	}
	for _, it := range ins {
		v.Messages = append(v.Messages, inboundLines(it)...)
	}
	outs, err := sb.st.OutboxOf(ctx, key, sandboxTranscript)
	if err != nil {
		return nil, err
	}
	sends, err := sb.st.SandboxSends(ctx, waID, 2*sandboxTranscript)
	if err == nil && key != waID {
		var more map[string]store.SandboxSend
		more, err = sb.st.SandboxSends(ctx, key, 2*sandboxTranscript)
		for k, v := range more {
			sends[k] = v
		}
	}
	if err != nil {
		return nil, err
	}
	for _, it := range outs {
		switch it.Status {
		case store.OutPending, store.OutClaimed, store.OutSending:
			if it.NextAttemptAt.After(now) {
				n := &sandboxNext{At: it.NextAttemptAt, Flow: it.FlowID,
					Text: fmt.Sprintf("message of %s/%s goes out %s — %s", it.FlowID, it.Step, sb.when(it.NextAttemptAt, loc, now), pendingWhy(it))}
				if v.Contact.Next == nil || n.At.Before(v.Contact.Next.At) {
					v.Contact.Next = n
				}
			}
			continue
		}
		v.Messages = append(v.Messages, outMessage(it, p, sends))
	}
	sort.SliceStable(v.Messages, func(i, j int) bool { return v.Messages[i].At.Before(v.Messages[j].At) })
	return v, nil
}

func pendingWhy(it *store.OutboxItem) string {
	if it.Attempts > 0 {
		return fmt.Sprintf("retry %d after %s", it.Attempts, it.LastError)
	}
	return "queued"
}

// when formats a time in the contact's zone, with how far off it is.
func (sb *Sandbox) when(t time.Time, loc *time.Location, now time.Time) string {
	s := t.In(loc).Format("Mon 2 Jan 15:04 MST")
	switch d := t.Sub(now); {
	case d > 0:
		return s + " (in " + span(d) + ")"
	case d < 0:
		return s + " (" + span(-d) + " ago)"
	}
	return s
}

// span reads a duration as people do: 3h12m, 2d4h, 45s.
func span(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= dsl.Day:
		days, h := d/dsl.Day, (d%dsl.Day)/time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// windowState is the engine's view of the window now: what it decides sends by.
func (sb *Sandbox) windowState(c *store.Contact, now time.Time, loc *time.Location) sandboxState {
	if c == nil || c.LastInboundAt.IsZero() {
		return sandboxState{State: "never", Text: "never opened: the contact has not written — templates only"}
	}
	closes := c.LastInboundAt.Add(dsl.Window)
	if engine.WindowOpen(c, now) {
		return sandboxState{State: "open", ClosesAt: &closes,
			Text: "open — free-form allowed, closes in " + span(closes.Sub(now)) + " (" + closes.In(loc).Format("Mon 15:04") + ")"}
	}
	return sandboxState{State: "closed", ClosesAt: &closes,
		Text: "closed since " + closes.In(loc).Format("Mon 2 Jan 15:04") + " — templates only until the contact writes"}
}

func consentState(c *store.Contact, loc *time.Location) sandboxState {
	if c == nil || c.Consent == "" {
		return sandboxState{State: "unknown", Text: "not asked yet — MARKETING templates are not sent (unless the flow assumes opt-in)"}
	}
	at := ""
	if !c.ConsentAt.IsZero() {
		at = ", " + c.ConsentAt.In(loc).Format("Mon 2 Jan 15:04")
	}
	source := c.ConsentSource
	switch {
	case strings.HasPrefix(source, "keyword:"):
		source = "by writing “" + strings.TrimPrefix(source, "keyword:") + "”"
	case strings.HasPrefix(source, "flow:"):
		source = "in " + strings.TrimPrefix(source, "flow:")
	case source != "":
		source = "by " + source
	}
	if c.Consent == store.ConsentOut {
		return sandboxState{State: "out", Text: strings.TrimSpace("opted out " + source + at + " — no templates at all; replies inside the window only")}
	}
	return sandboxState{State: "in", Text: strings.TrimSpace("opted in to marketing " + source + at)}
}

// runs lists the contact's live runs with their step and what they wait for.
func (sb *Sandbox) runs(ctx context.Context, v *sandboxContact, p *dsl.Project, now time.Time, loc *time.Location) error {
	runs, err := sb.st.RunsOf(ctx, v.WaID, 50)
	if err != nil {
		return err
	}
	timers, err := sb.st.TimersOf(ctx, v.WaID)
	if err != nil {
		return err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if !r.Live() {
			continue
		}
		sr := sandboxRun{Flow: r.FlowID, Step: r.Step, Status: r.Status}
		switch r.Status {
		case store.RunWaitingReply:
			sr.Text = "at " + r.Step + ": waits for the contact's reply"
		case store.RunWaiting:
			sr.Text = "at " + r.Step + ": waits"
		default:
			sr.Text = "at " + r.Step + ": " + r.Status
		}
		var f *dsl.Flow
		if p != nil {
			f = p.Flow(r.FlowID)
		}
		for _, t := range timers {
			if t.RunID != r.ID {
				continue
			}
			n := &sandboxNext{At: t.DueAt, Flow: r.FlowID, Text: timerWhy(f, r, t, loc, sb.when(t.DueAt, loc, now))}
			sr.Next = n
			if v.Next == nil || n.At.Before(v.Next.At) {
				v.Next = n
			}
			break
		}
		v.Runs = append(v.Runs, sr)
	}
	return nil
}

// timerWhy says why a run sleeps until its timer: the wait itself, the time of
// day it waits for, or the quiet hours that pushed it.
func timerWhy(f *dsl.Flow, r *store.Run, t *store.Timer, loc *time.Location, when string) string {
	var s *dsl.Step
	if f != nil {
		s, _ = f.Step(r.Step)
	}
	if t.Kind == store.TimerReplyTimeout {
		why := "waits for a reply until " + when
		if s != nil && s.WaitForReply != nil {
			if s.WaitForReply.OnTimeout != "" {
				return why + " — then " + s.WaitForReply.OnTimeout
			}
			return why + " — then the run expires"
		}
		return why
	}
	why := "waits until " + when
	if s == nil || s.Wait == nil {
		return why
	}
	w := s.Wait
	plain := r.UpdatedAt.Add(w.For)
	reason := "wait " + dsl.FormatDuration(w.For)
	if w.At != nil {
		plain = nextClockAt(plain.In(loc), w.At.Duration())
		reason = "wait for " + w.At.String()
		if w.For > 0 {
			reason = "wait " + dsl.FormatDuration(w.For) + ", then until " + w.At.String()
		}
	}
	if q := f.QuietHours; q != nil && t.DueAt.Sub(plain) > time.Minute {
		zone := q.Timezone
		if q.Location == nil {
			zone = "contact's zone, " + loc.String()
		}
		return why + " — quiet hours " + q.From.String() + "–" + q.To.String() + " (" + zone + ") pushed the " + reason
	}
	return why + " — " + reason
}

// nextClockAt is the first time at or after t when t's wall clock reads at.
func nextClockAt(t time.Time, at time.Duration) time.Time {
	y, m, d := t.Date()
	next := time.Date(y, m, d, int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, t.Location())
	if next.Before(t) {
		next = time.Date(y, m, d+1, int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, t.Location())
	}
	return next.UTC()
}

// inboundLines turns an inbox item into the contact's message and, when the
// engine did something worth saying with it, a system note.
func inboundLines(it *store.InboxItem) []SandboxMessage {
	var in engine.Inbound
	if err := json.Unmarshal(it.Payload, &in); err != nil {
		return nil
	}
	at := it.ReceivedAt
	if in.Event != nil {
		payload, _ := json.Marshal(in.Event.Payload)
		text := "event “" + in.Event.Name + "” fired"
		if len(in.Event.Payload) > 0 {
			text += " with " + string(payload)
		}
		lines := []SandboxMessage{{At: at, Direction: "system", Type: "event", Text: text}}
		if it.Result == engine.ResultNoMatch {
			lines = append(lines, SandboxMessage{At: at, Direction: "system", Type: "refused", Text: "no flow started: none starts on this event, or the contact is already in it"})
		}
		return lines
	}
	var m whatsapp.InboundMessage
	if json.Unmarshal(in.Message, &m) != nil {
		return nil
	}
	reply := m.Reply()
	line := SandboxMessage{At: at, Direction: "in", Type: m.Type, Text: reply.Text}
	switch {
	case reply.Form != nil:
		line.Type, line.Text = "form", engine.DescribeForm(reply.Form)
	case reply.Location != nil:
		line.Text = engine.DescribeLocation(reply.Location)
	}
	if m.Referral != nil {
		line.Headline = m.Referral.Headline
		if line.Headline == "" {
			line.Headline = "ad " + m.Referral.SourceID
		}
	}
	if late := at.Sub(in.Time); late >= time.Minute {
		line.Late = "written " + span(late) + " before its webhook arrived"
	}
	lines := []SandboxMessage{line}
	note := func(typ, text string) {
		lines = append(lines, SandboxMessage{At: at, Direction: "system", Type: typ, Text: text})
	}
	switch r := it.Result; {
	case r == engine.ResultOptedOut:
		note("opt_out", "“"+line.Text+"” is an opt-out: the contact opted out, its live runs were cancelled and no template goes to it any more")
	case r == engine.ResultNoMatch:
		note("refused", "no flow matched this message: no run was waiting for a reply and no trigger matches it, so nothing was sent")
	case strings.HasPrefix(r, "error:"):
		note("refused", "the engine could not handle this message: "+strings.TrimPrefix(r, "error: "))
	}
	return lines
}

// outMessage is one of the business's messages as it went (or did not go) out,
// with the window recorded when the simulated API took it.
func outMessage(it *store.OutboxItem, p *dsl.Project, sends map[string]store.SandboxSend) SandboxMessage {
	payload := it.Payload
	if it.SentAs == "fallback" && it.Fallback != nil {
		payload = it.Fallback
	}
	var m whatsapp.Message
	_ = json.Unmarshal(payload, &m)
	var cat *dsl.Catalog
	if p != nil {
		if f := p.Flow(it.FlowID); f != nil {
			cat = p.Catalog(f)
		}
	}
	at := it.UpdatedAt
	if !it.SentAt.IsZero() {
		at = it.SentAt
	}
	sm := SandboxMessage{At: at, Direction: "out", Flow: it.FlowID, Step: it.Step, Type: m.Type, Fallback: it.SentAs == "fallback"}
	switch it.Status {
	case store.OutSent, store.OutDelivered, store.OutRead:
		sm.Status = "sent"
		if s, ok := sends[it.ProviderID]; ok {
			sm.Window, sm.Allowed = "closed", "template only"
			if s.WindowOpen {
				sm.Window, sm.Allowed = "open", "free-form"
			}
		}
		if sm.Fallback {
			sm.Reason = "the window was closed: the step's fallback template went out instead"
		}
	case store.OutWindowClosed:
		sm.Status, sm.Window, sm.Allowed = "refused", "closed", "template only"
		sm.Reason = "not sent: the 24h window was closed and the step has no fallback template"
	case store.OutOptedOut:
		sm.Status, sm.Reason = "refused", "not sent: the contact opted out"
	case store.OutNoConsent:
		sm.Status, sm.Reason = "refused", "not sent: a MARKETING template needs the contact's opt-in"
	case store.OutCancelled:
		sm.Status, sm.Reason = "cancelled", "not sent: "+it.LastError
	case store.OutFailed:
		sm.Status, sm.Reason = "failed", "failed: "+it.LastError
	default:
		sm.Status, sm.Reason = it.Status, it.LastError
	}
	switch {
	case m.Interactive != nil:
		if m.Interactive.Body != nil {
			sm.Text = m.Interactive.Body.Text
		}
		for _, b := range m.Interactive.Action.Buttons {
			sm.Choices = append(sm.Choices, SandboxChoice{Kind: "button_reply", ID: b.Reply.ID, Title: b.Reply.Title})
		}
		for _, s := range m.Interactive.Action.Sections {
			for _, row := range s.Rows {
				sm.Choices = append(sm.Choices, SandboxChoice{Kind: "list_reply", ID: row.ID, Title: row.Title})
			}
		}
		params := m.Interactive.Action.Parameters
		switch {
		case params != nil && m.Interactive.Type == whatsapp.InteractiveCTAURL:
			sm.Link = &SandboxLink{Title: params.DisplayText, URL: params.URL}
		case params != nil && m.Interactive.Type == whatsapp.InteractiveFlow:
			sm.Form = &SandboxForm{Kind: "form", CTA: params.FlowCTA}
			if params.FlowActionPayload != nil {
				sm.Form.Screen = params.FlowActionPayload.Screen
			}
			sm.Form.Fields = formFields(p, it.FlowID, it.Step)
		case m.Interactive.Type == whatsapp.InteractiveLocationRequest:
			sm.Form = &SandboxForm{Kind: "location", CTA: "Send location"}
		}
	case m.Template != nil:
		sm.Template = m.Template.Name
		sm.Text = engine.Preview(&whatsapp.Message{Type: m.Type, Template: &whatsapp.Template{Name: m.Template.Name,
			Language: m.Template.Language, Components: m.Template.Components}}, nil)
		if tpl, ok := cat.Lookup(m.Template.Name, m.Template.Language.Code); ok {
			sm.Text = engine.PreviewBody(m.Template, tpl)
			for _, b := range tpl.Buttons {
				if b.Type == "QUICK_REPLY" {
					sm.Choices = append(sm.Choices, SandboxChoice{Kind: "quick_reply", ID: b.Text, Title: b.Text})
				}
			}
		}
	default:
		sm.Text = engine.Preview(&m, cat)
	}
	return sm
}

// formFields are the fields the form of a step returns, from its Flow JSON
// (none when the flow names none).
func formFields(p *dsl.Project, flow, step string) []dsl.FormField {
	if p == nil {
		return nil
	}
	f := p.Flow(flow)
	if f == nil {
		return nil
	}
	s, ok := f.Step(step)
	if !ok || s.Send == nil || s.Send.Form == nil || s.Send.Form.Schema == nil {
		return nil
	}
	var out []dsl.FormField
	for _, n := range s.Send.Form.Schema.FieldNames() {
		out = append(out, s.Send.Form.Schema.Fields[n])
	}
	return out
}

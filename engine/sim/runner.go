package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// Line is one line of a timeline.
type Line struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"` // in | out
	Flow      string    `json:"flow"`
	Step      string    `json:"step"`
	Type      string    `json:"type"`
	Text      string    `json:"text"`
	Template  string    `json:"template"`
	Window    string    `json:"window"` // open | closed
	Status    string    `json:"status"` // received (in); sent, window_closed, opted_out, no_consent, failed, cancelled (out)
	Fallback  bool      `json:"fallback,omitempty"`
}

// Failure is an expectation that did not hold.
type Failure struct {
	File string
	Line int
	Msg  string
}

func (f Failure) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Msg) }

// Result is what a simulation produced.
type Result struct {
	Timeline []Line
	Failures []Failure
	// Refused131047 counts messages the simulated Cloud API refused for the
	// window: the engine's policy should keep it at 0.
	Refused131047 int
}

// Run plays a script against the project on a fresh temporary database.
func Run(ctx context.Context, s *Script, p *dsl.Project) (*Result, error) {
	dir, err := os.MkdirTemp("", "funnel-sim-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, filepath.Join(dir, "sim.db"), store.Options{Synchronous: "OFF"})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	clock := engine.NewVirtualClock(s.Start)
	ch := NewChannel(clock)
	eng := engine.New(st, engine.Options{Clock: clock, Channel: ch, NoPacing: true, PhoneNumberID: "sim",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := eng.Load(ctx, p, nil); err != nil {
		return nil, err
	}
	r := &runner{s: s, p: p, eng: eng, st: st, clock: clock, ch: ch, res: &Result{}}
	if err := r.seedContact(ctx); err != nil {
		return nil, err
	}
	for _, ev := range s.Events {
		if err := r.play(ctx, ev); err != nil {
			return nil, err
		}
	}
	r.res.Refused131047 = ch.Refused
	if ch.Refused > 0 {
		r.res.Failures = append(r.res.Failures, Failure{s.File, 1, fmt.Sprintf("the simulated Cloud API refused %d free-form message(s) with 131047: the runtime window check let them through", ch.Refused)})
	}
	return r.res, nil
}

type runner struct {
	s      *Script
	p      *dsl.Project
	eng    *engine.Engine
	st     store.Store
	clock  *engine.VirtualClock
	ch     *Channel
	res    *Result
	lastID int64       // last outbox row put on the timeline
	since  []Line      // out lines since the previous expect
	n      int         // inbound message counter
	lastUI []uiElement // buttons and rows of the last interactive message
}

type uiElement struct{ id, title, kind string }

func (r *runner) seedContact(ctx context.Context) error {
	c := r.s.Contact
	return r.st.Write(ctx, func(tx store.Tx) error {
		sc := &store.Contact{WaID: c.WaID, Name: c.Name, Timezone: c.Timezone, Tags: c.Tags, Attributes: c.Attributes,
			CreatedAt: r.s.Start, UpdatedAt: r.s.Start}
		if c.OptedIn {
			sc.Consent, sc.ConsentAt, sc.ConsentSource = store.ConsentIn, r.s.Start, "script"
		}
		return tx.SaveContacts([]*store.Contact{sc})
	})
}

func (r *runner) play(ctx context.Context, ev Event) error {
	switch {
	case ev.Inbound != nil:
		return r.inbound(ctx, ev.Inbound)
	case ev.Advance > 0:
		return r.advance(ctx, ev.Advance)
	case ev.API != nil:
		item, err := engine.EventItem(fmt.Sprintf("sim-%d", ev.Line), ev.API.Name, r.s.Contact.WaID, ev.API.Payload, r.clock.Now())
		if err != nil {
			return err
		}
		if _, err := r.eng.Enqueue(ctx, []store.InboxItem{item}); err != nil {
			return err
		}
		return r.settle(ctx)
	case ev.Expect != nil:
		r.check(ev.Expect)
	}
	return nil
}

func (r *runner) inbound(ctx context.Context, in *Inbound) error {
	r.n++
	now := r.clock.Now()
	msg := Message{WaID: r.s.Contact.WaID, Name: r.s.Contact.Name, ID: fmt.Sprintf("wamid.sim.in.%d", r.n),
		PhoneNumberID: "sim", Written: now.Add(-in.Delay), Received: now, Text: in.Text, Referral: in.Referral}
	line := Line{At: now, Direction: "in", Status: "received", Type: "text", Text: in.Text}
	switch {
	case in.Button != "":
		msg.Tap = &Tap{Kind: "quick_reply", ID: in.Button, Title: in.Button}
		line.Type, line.Text = "button", in.Button
	case in.Interactive != "":
		msg.Tap = &Tap{Kind: "button_reply", ID: in.Interactive, Title: in.Interactive}
		for _, u := range r.lastUI {
			if u.title == in.Interactive || u.id == in.Interactive {
				msg.Tap = &Tap{Kind: u.kind, ID: u.id, Title: u.title}
			}
		}
		line.Type, line.Text = "interactive", msg.Tap.Title
	}
	if in.Referral != nil {
		line.Text += fmt.Sprintf(" (from ad %s “%s”)", in.Referral["source_id"], in.Referral["headline"])
	}
	if in.Delay > 0 {
		line.Text += fmt.Sprintf(" (written %s before it arrived)", dsl.FormatDuration(in.Delay))
	}
	r.ch.Inbound(r.s.Contact.WaID, msg.Written)
	line.Window = r.window(now)
	r.res.Timeline = append(r.res.Timeline, line)
	item := msg.Item()
	if _, err := r.eng.Enqueue(ctx, []store.InboxItem{item}); err != nil {
		return err
	}
	return r.settle(ctx)
}

// advance moves the clock by d, stopping at every due time on the way so each
// wait and timeout fires when it should, not at the end.
func (r *runner) advance(ctx context.Context, d time.Duration) error {
	return r.eng.AdvanceTo(ctx, r.clock, r.clock.Now().Add(d), func() error { return r.collect(ctx) })
}

// settle runs the engine until idle and puts what it produced on the timeline.
func (r *runner) settle(ctx context.Context) error {
	if err := r.eng.RunUntilIdle(ctx); err != nil {
		return err
	}
	return r.collect(ctx)
}

// collect puts the messages produced since the last call on the timeline.
func (r *runner) collect(ctx context.Context) error {
	items, err := r.st.OutboxOf(ctx, r.s.Contact.WaID, 1<<20)
	if err != nil {
		return err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	for _, it := range items {
		if it.ID <= r.lastID || it.Status == store.OutPending || it.Status == store.OutClaimed || it.Status == store.OutSending {
			continue
		}
		r.lastID = it.ID
		line := r.outLine(it)
		r.res.Timeline = append(r.res.Timeline, line)
		r.since = append(r.since, line)
	}
	return nil
}

func (r *runner) outLine(it *store.OutboxItem) Line {
	payload := it.Payload
	if it.SentAs == "fallback" && it.Fallback != nil {
		payload = it.Fallback
	}
	var m whatsapp.Message
	_ = json.Unmarshal(payload, &m)
	at := it.UpdatedAt
	if !it.SentAt.IsZero() {
		at = it.SentAt
	}
	var cat *dsl.Catalog
	if f := r.p.Flow(it.FlowID); f != nil {
		cat = r.p.Catalog(f)
	}
	line := Line{At: at, Direction: "out", Flow: it.FlowID, Step: it.Step, Type: m.Type,
		Text: engine.Preview(&m, cat), Window: r.window(at), Status: it.Status, Fallback: it.SentAs == "fallback"}
	switch it.Status {
	case store.OutDelivered, store.OutRead:
		line.Status = store.OutSent
	}
	if m.Template != nil {
		line.Template = m.Template.Name
	}
	if m.Interactive != nil && (it.Status == store.OutSent || it.Status == store.OutDelivered) {
		r.lastUI = nil
		for _, b := range m.Interactive.Action.Buttons {
			r.lastUI = append(r.lastUI, uiElement{b.Reply.ID, b.Reply.Title, "button_reply"})
		}
		for _, s := range m.Interactive.Action.Sections {
			for _, row := range s.Rows {
				r.lastUI = append(r.lastUI, uiElement{row.ID, row.Title, "list_reply"})
			}
		}
	}
	return line
}

func (r *runner) window(t time.Time) string {
	if r.ch.WindowOpen(r.s.Contact.WaID, t) {
		return "open"
	}
	return "closed"
}

// check compares what was produced since the previous expect with the matchers.
func (r *runner) check(x *Expect) {
	got := r.since
	r.since = nil
	fail := func(line int, format string, args ...any) {
		r.res.Failures = append(r.res.Failures, Failure{r.s.File, line, fmt.Sprintf(format, args...)})
	}
	if x.NothingSent && len(got) > 0 {
		fail(x.Line, "expected nothing sent, got %s", describeLines(got))
	}
	i := 0
	for _, m := range x.Sent {
		found := false
		for i < len(got) {
			l := got[i]
			i++
			if m.matches(l) {
				found = true
				break
			}
		}
		if !found {
			fail(m.Line, "expected a message %s; got %s", m.describe(), describeLines(got))
			return
		}
	}
}

func (m Matcher) matches(l Line) bool {
	status := m.Status
	if status == "" {
		status = store.OutSent
	}
	return (m.TextContains == "" || strings.Contains(l.Text, m.TextContains)) &&
		(m.Template == "" || l.Template == m.Template) &&
		(m.Type == "" || l.Type == m.Type) &&
		l.Status == status
}

func (m Matcher) describe() string {
	var parts []string
	if m.Type != "" {
		parts = append(parts, "of type "+m.Type)
	}
	if m.Template != "" {
		parts = append(parts, "with template "+m.Template)
	}
	if m.TextContains != "" {
		parts = append(parts, fmt.Sprintf("containing %q", m.TextContains))
	}
	st := m.Status
	if st == "" {
		st = "sent"
	}
	parts = append(parts, "with status "+st)
	return strings.Join(parts, ", ")
}

func describeLines(ls []Line) string {
	if len(ls) == 0 {
		return "nothing"
	}
	var parts []string
	for _, l := range ls {
		d := l.Type
		if l.Template != "" {
			d += " " + l.Template
		}
		parts = append(parts, fmt.Sprintf("[%s/%s %s %q %s]", l.Flow, l.Step, d, truncate(l.Text, 50), l.Status))
	}
	return strings.Join(parts, ", ")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

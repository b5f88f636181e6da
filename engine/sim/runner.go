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
	"strconv"
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
	Direction string    `json:"direction"` // in | out | run (a run that failed: Text is why) | convert (a conversion recorded) | capi (its Conversions API outcome)
	Flow      string    `json:"flow"`
	Step      string    `json:"step"`
	Type      string    `json:"type"`
	Text      string    `json:"text"`
	Template  string    `json:"template"`
	Window    string    `json:"window"` // open | closed
	Status    string    `json:"status"` // received (in); sent, window_closed, opted_out, no_consent, failed, cancelled (out); failed (run)
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
	ch.SetTemplates(CatalogStatus(func() *dsl.Project { return p }))
	eng := engine.New(st, engine.Options{Clock: clock, Channel: ch, NoPacing: true, PhoneNumberID: "sim",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		DatasetID: simDataset, WABAID: "sim", Conversions: conversionsAPI{}})
	if err := eng.Load(ctx, p, nil); err != nil {
		return nil, err
	}
	r := &runner{s: s, p: p, eng: eng, st: st, clock: clock, ch: ch, res: &Result{}, loc: time.UTC, capiDone: map[int64]bool{}}
	if s.Contact.Timezone != "" {
		if r.loc, err = time.LoadLocation(s.Contact.Timezone); err != nil {
			return nil, err
		}
	}
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
	lastID int64          // last outbox row put on the timeline
	failed map[int64]bool // failed runs already put on the timeline
	since  []Line         // out lines since the previous expect
	n      int            // inbound message counter
	offer  *offer         // what the contact can tap
	loc    *time.Location // the contact's zone: timeline times are shown in it
	phone  string         // the number the contact shared (share_phone)

	lastConv  int64               // last conversion put on the timeline
	convs     []*store.Conversion // conversions put on the timeline
	capiDone  map[int64]bool      // conversions whose Conversions API outcome is on the timeline
	sinceConv []string            // conversion events since the previous expect
	sinceCAPI []Line              // Conversions API lines since the previous expect
}

// ids are the ids the simulated Cloud API knows the contact by.
func (r *runner) ids() []string {
	var out []string
	for _, id := range []string{r.s.Contact.WaID, r.s.Contact.UserID, r.phone} {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// offer is what the latest message that offered taps offered: reply buttons or
// list rows of an interactive message, or a template's quick replies. Messages
// without any (text, media) leave it: the buttons above them stay on screen.
type offer struct {
	from     string // flow/step
	template string // the template, for quick replies
	elems    []uiElement
}

type uiElement struct{ id, title, kind string }

// find returns the element a tap names (by title, or by id for interactive ones).
func (o *offer) find(name string) (uiElement, bool) {
	if o == nil {
		return uiElement{}, false
	}
	for _, u := range o.elems {
		if u.title == name || (u.kind != "quick_reply" && u.id == name) {
			return u, true
		}
	}
	return uiElement{}, false
}

// describe says what the offer was: `menu/show-menu offered reply buttons "A", "B"`.
func (o *offer) describe() string {
	what := "reply buttons"
	switch o.elems[0].kind {
	case "list_reply":
		what = "list rows"
	case "quick_reply":
		what = "the quick replies of template " + o.template + ":"
	}
	var titles []string
	for _, u := range o.elems {
		titles = append(titles, strconv.Quote(u.title))
	}
	return fmt.Sprintf("the last message with buttons (%s) offered %s %s", o.from, what, strings.Join(titles, ", "))
}

// checkTap refuses a tap that the conversation did not offer, or one written
// with the wrong key: `button:` is a template quick reply, `interactive:` a
// reply button or list row.
func (r *runner) checkTap(line int, in *Inbound) (uiElement, error) {
	key, name, want := "interactive", in.Interactive, "button_reply"
	if in.Button != "" {
		key, name, want = "button", in.Button, "quick_reply"
	}
	fail := func(format string, args ...any) (uiElement, error) {
		return uiElement{}, &ScriptError{r.s.File, line, fmt.Sprintf("%s: %q: ", key, name) + fmt.Sprintf(format, args...)}
	}
	if r.offer == nil {
		return fail("no message so far offered buttons or list rows to tap (to type it, write text: %q)", name)
	}
	u, ok := r.offer.find(name)
	switch {
	case !ok:
		return fail("not offered: %s", r.offer.describe())
	case want == "quick_reply" && u.kind != "quick_reply":
		return fail("`button:` taps a template's quick reply, but this is a %s of an interactive message (%s): write interactive: %q",
			map[string]string{"button_reply": "reply button", "list_reply": "list row"}[u.kind], r.offer.from, u.title)
	case want != "quick_reply" && u.kind == "quick_reply":
		return fail("`interactive:` taps a reply button or list row, but this is a quick reply of template %s (%s): write button: %q",
			r.offer.template, r.offer.from, u.title)
	}
	return u, nil
}

func (r *runner) seedContact(ctx context.Context) error {
	c := r.s.Contact
	return r.st.Write(ctx, func(tx store.Tx) error {
		key := c.WaID
		if key == "" {
			key = c.UserID
		}
		sc := &store.Contact{WaID: key, Phone: c.WaID, UserID: c.UserID, Username: c.Username, Name: c.Name, Timezone: c.Timezone,
			Tags: c.Tags, Attributes: c.Attributes, CreatedAt: r.s.Start, UpdatedAt: r.s.Start}
		if c.OptedIn {
			sc.Consent, sc.ConsentAt, sc.ConsentSource = store.ConsentIn, r.s.Start, "script"
		}
		if err := tx.SaveContacts([]*store.Contact{sc}); err != nil {
			return err
		}
		links := map[string]string{}
		for _, id := range []string{c.WaID, c.UserID} {
			if id != "" {
				links[id] = key
			}
		}
		return tx.LinkContactIDs(links)
	})
}

func (r *runner) play(ctx context.Context, ev Event) error {
	switch {
	case ev.Inbound != nil:
		return r.inbound(ctx, ev.Line, ev.Inbound)
	case ev.Advance > 0:
		return r.advance(ctx, ev.Advance)
	case ev.API != nil:
		item, err := engine.EventItem(fmt.Sprintf("sim-%d", ev.Line), ev.API.Name, r.s.Contact.ID(), ev.API.Payload, r.clock.Now())
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

func (r *runner) inbound(ctx context.Context, line int, in *Inbound) error {
	var tap uiElement
	if in.Button != "" || in.Interactive != "" {
		var err error
		if tap, err = r.checkTap(line, in); err != nil {
			return err
		}
	}
	r.n++
	now := r.clock.Now()
	msg := Message{WaID: r.s.Contact.WaID, UserID: r.s.Contact.UserID, Username: r.s.Contact.Username, Name: r.s.Contact.Name,
		ID: fmt.Sprintf("wamid.sim.in.%d", r.n), PhoneNumberID: "sim", Written: now.Add(-in.Delay), Received: now, Text: in.Text,
		Referral: in.Referral, SharedPhone: in.SharePhone, Form: in.Form, Location: in.Location}
	tl := Line{At: now.In(r.loc), Direction: "in", Status: "received", Type: "text", Text: in.Text}
	switch {
	case in.SharePhone != "":
		tl.Type, tl.Text = "contacts", "shares their number +"+in.SharePhone
		r.phone = in.SharePhone
	case in.Button != "":
		msg.Tap = &Tap{Kind: "quick_reply", ID: tap.id, Title: tap.title}
		tl.Type, tl.Text = "button", tap.title
	case in.Interactive != "":
		msg.Tap = &Tap{Kind: tap.kind, ID: tap.id, Title: tap.title}
		tl.Type, tl.Text = "interactive", tap.title
	case in.Form != nil:
		tl.Type, tl.Text = "form", engine.DescribeForm(in.Form)
	case in.Location != nil:
		tl.Type, tl.Text = "location", engine.DescribeLocation(in.Location)
	}
	if in.Referral != nil {
		tl.Text += fmt.Sprintf(" (from ad %s “%s”)", in.Referral["source_id"], in.Referral["headline"])
	}
	if in.Delay > 0 {
		tl.Text += fmt.Sprintf(" (written %s before it arrived)", dsl.FormatDuration(in.Delay))
	}
	for _, id := range r.ids() {
		r.ch.Inbound(id, msg.Written)
	}
	tl.Window = r.window(now)
	r.res.Timeline = append(r.res.Timeline, tl)
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
	key := r.s.Contact.ID()
	if c, err := r.st.Contact(ctx, key); err == nil && c != nil {
		key = c.WaID // the contact's own key (the first id it was seen by)
	}
	items, err := r.st.OutboxOf(ctx, key, 1<<20)
	if err != nil {
		return err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	if err := r.collectFailedRuns(ctx, key); err != nil {
		return err
	}
	for _, it := range items {
		if it.ID <= r.lastID || it.Status == store.OutPending || it.Status == store.OutClaimed || it.Status == store.OutSending {
			continue
		}
		r.lastID = it.ID
		line := r.outLine(it)
		r.res.Timeline = append(r.res.Timeline, line)
		r.since = append(r.since, line)
	}
	return r.collectOutcomes(ctx, key)
}

// collectFailedRuns puts each run that failed (a step error, such as a value
// that cannot be stored) on the timeline with its reason: without it a script
// whose run stopped would only show that nothing more was sent.
func (r *runner) collectFailedRuns(ctx context.Context, key string) error {
	runs, err := r.st.RunsOf(ctx, key, 1<<20)
	if err != nil {
		return err
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].ID < runs[j].ID })
	for _, run := range runs {
		if run.Status != store.RunFailed || r.failed[run.ID] {
			continue
		}
		if r.failed == nil {
			r.failed = map[int64]bool{}
		}
		r.failed[run.ID] = true
		line := Line{At: run.EndedAt.In(r.loc), Direction: "run", Flow: run.FlowID, Step: run.Step, Type: "run",
			Text: "run failed: " + run.EndReason, Window: r.window(run.EndedAt), Status: "failed"}
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
	line := Line{At: at.In(r.loc), Direction: "out", Flow: it.FlowID, Step: it.Step, Type: m.Type,
		Text: engine.Preview(&m, cat), Window: r.window(at), Status: it.Status, Fallback: it.SentAs == "fallback"}
	switch it.Status {
	case store.OutDelivered, store.OutRead:
		line.Status = store.OutSent
	}
	if m.Template != nil {
		line.Template = m.Template.Name
	}
	if line.Status == store.OutSent {
		r.noteOffer(&m, cat, it.FlowID+"/"+it.Step)
	}
	return line
}

// noteOffer records what a message the contact received lets them tap.
func (r *runner) noteOffer(m *whatsapp.Message, cat *dsl.Catalog, from string) {
	o := &offer{from: from}
	switch {
	case m.Interactive != nil:
		for _, b := range m.Interactive.Action.Buttons {
			o.elems = append(o.elems, uiElement{b.Reply.ID, b.Reply.Title, "button_reply"})
		}
		for _, s := range m.Interactive.Action.Sections {
			for _, row := range s.Rows {
				o.elems = append(o.elems, uiElement{row.ID, row.Title, "list_reply"})
			}
		}
	case m.Template != nil && cat != nil:
		o.template = m.Template.Name
		if tpl, ok := cat.Lookup(m.Template.Name, m.Template.Language.Code); ok {
			for _, b := range tpl.Buttons {
				if b.Type == "QUICK_REPLY" {
					o.elems = append(o.elems, uiElement{b.Text, b.Text, "quick_reply"})
				}
			}
		}
	}
	if len(o.elems) > 0 {
		r.offer = o
	}
}

func (r *runner) window(t time.Time) string {
	if r.ch.WindowOpen(r.s.Contact.ID(), t) {
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
	r.checkOutcomes(x, fail)
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
			if why := r.unknownTemplate(m.Template); why != "" {
				fail(m.Line, "%s", why)
				return
			}
			fail(m.Line, "expected a message %s; got %s", m.describe(), describeLines(got))
			return
		}
	}
}

// unknownTemplate explains an expected template that no catalog of the flows
// has ("" when it exists): such an expectation can never hold.
func (r *runner) unknownTemplate(name string) string {
	if name == "" {
		return ""
	}
	seen := map[string]bool{}
	var names []string
	for _, f := range r.p.Flows {
		cat := r.p.Catalog(f)
		if cat == nil {
			continue
		}
		for _, n := range cat.Names() {
			if n == name {
				return ""
			}
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("expected template %s, but the flows have no template catalog (set `templates:` in the script, or put templates.json beside the flows)", name)
	}
	sort.Strings(names)
	return fmt.Sprintf("expected template %s, which the catalog does not have%s (templates: %s)", name, dsl.DidYouMean(name, names), strings.Join(names, ", "))
}

func (m Matcher) matches(l Line) bool {
	status := m.Status
	if status == "" {
		status = store.OutSent
	}
	return l.Direction == "out" &&
		(m.TextContains == "" || strings.Contains(l.Text, m.TextContains)) &&
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
		if l.Direction == "run" {
			parts = append(parts, fmt.Sprintf("[%s/%s %s]", l.Flow, l.Step, truncate(l.Text, 120)))
			continue
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

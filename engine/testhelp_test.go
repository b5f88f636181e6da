package engine_test

// Shared helpers for the engine's behaviour tests (actions, triggers, policy,
// sender, soundness): a real SQLite file in t.TempDir(), a virtual clock, the
// real dsl loader, and a scripted channel that records every call. Nothing here
// mocks the store.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
	"github.com/jmoiron/sqlx"
)

// rigStart is a Wednesday, 10:00 UTC.
var rigStart = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)

// rigCatalog is the template catalog every rig project uses.
const rigCatalog = `templates:
  - {name: promo, language: en_US, category: MARKETING, status: APPROVED,
     body: "Hi {{1}}, {{2}} off this week!", buttons: [Get it, Stop promos]}
  - {name: promo, language: pt_BR, category: MARKETING, status: APPROVED,
     body: "Oi {{1}}, {{2}} de desconto!", buttons: [Quero, Parar promoções]}
  - {name: shipped, language: en_US, category: UTILITY, status: APPROVED, parameter_format: NAMED,
     header: IMAGE, body: "Hi {{first_name}}, order {{order_id}} is on its way."}
  - {name: reminder, language: en_US, category: UTILITY, status: APPROVED, body: "Hi {{1}}, we are still here."}
  - {name: comeback, language: en_US, category: MARKETING, status: APPROVED, body: "We miss you, {{1}}!"}
  - {name: teaser, language: en_US, category: MARKETING, status: APPROVED, header: VIDEO, body: "Watch our new collection."}
  - {name: invoice, language: en_US, category: UTILITY, status: APPROVED, header: DOCUMENT,
     body: "Invoice {{1}} is ready.",
     buttons: [{type: URL, text: View, url: "https://example.com/i/{{1}}"}, {type: QUICK_REPLY, text: Thanks}]}
  - {name: greeting, language: en_US, category: UTILITY, status: APPROVED,
     header: "Hello {{1}}", body: "Your appointment is on {{1}}."}
  - {name: store_news, language: en_US, category: UTILITY, status: APPROVED, parameter_format: NAMED,
     header: "News from {{store}}", body: "Hi {{first_name}}, see what is new."}
  - {name: draft, language: en_US, category: MARKETING, status: PENDING, body: "Soon."}
`

// rig is one engine over one SQLite file, with a virtual clock and a scripted
// channel.
type rig struct {
	t     testing.TB
	ctx   context.Context
	dir   string
	path  string
	st    *store.DB
	clock *engine.VirtualClock
	ch    *scriptChannel
	eng   *engine.Engine
	opts  engine.Options
	proj  *dsl.Project
	diags dsl.Diagnostics
	n     int // inbound message counter
	// catalog replaces rigCatalog in the next projects when set.
	catalog string
}

type rigOption func(*engine.Options)

func withOpts(fn func(*engine.Options)) rigOption { return fn }

// newRig starts an engine at rigStart over the given flows (YAML sources). The
// project must validate without errors; use newRigUnchecked for flows the
// validator rejects.
func newRig(t testing.TB, flows []string, opts ...rigOption) *rig {
	t.Helper()
	r := openRig(t, opts...)
	r.load(flows...)
	return r
}

// newRigUnchecked loads flows whatever the validator says about them (the
// runtime policy must hold on its own).
func newRigUnchecked(t testing.TB, flows []string, opts ...rigOption) *rig {
	t.Helper()
	r := openRig(t, opts...)
	r.loadUnchecked(flows...)
	return r
}

func openRig(t testing.TB, opts ...rigOption) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, ctx: context.Background(), dir: dir, path: filepath.Join(dir, "funnel.db"),
		clock: engine.NewVirtualClock(rigStart)}
	r.ch = newScriptChannel(r.clock)
	r.opts = engine.Options{Clock: r.clock, Channel: r.ch, NoPacing: true, PhoneNumberID: "pn-default",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Rand: func() float64 { return 0.5 }}
	for _, o := range opts {
		o(&r.opts)
	}
	r.open()
	return r
}

// open opens the store and a new engine on it (also after restart).
func (r *rig) open() {
	r.t.Helper()
	st, err := store.Open(r.ctx, pgtest.DSN(r.t, r.path), store.Options{Synchronous: "OFF"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.st = st
	r.t.Cleanup(func() { st.Close() })
	r.eng = engine.New(st, r.opts)
}

// restart closes the store and opens a new engine over the same file, as a
// process restart would; flows are loaded again.
func (r *rig) restart(flows ...string) {
	r.t.Helper()
	if err := r.st.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
	if err := r.eng.RecoverSending(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	r.load(flows...)
}

// project writes the flows and the catalog to a fresh folder and loads them.
func (r *rig) project(flows ...string) (*dsl.Project, dsl.Diagnostics) {
	r.t.Helper()
	dir, err := os.MkdirTemp(r.dir, "flows-")
	if err != nil {
		r.t.Fatal(err)
	}
	catalog := rigCatalog
	if r.catalog != "" {
		catalog = r.catalog
	}
	if err := os.WriteFile(filepath.Join(dir, "templates.yaml"), []byte(catalog), 0o644); err != nil {
		r.t.Fatal(err)
	}
	for i, f := range flows {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("flow%02d.yaml", i)), []byte(f), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	p, diags, err := dsl.Load([]string{dir}, dsl.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	return p, diags
}

// load makes flows the running set; they must validate without errors.
func (r *rig) load(flows ...string) {
	r.t.Helper()
	p, diags := r.project(flows...)
	if diags.HasErrors() {
		r.t.Fatalf("flows do not validate:\n%s", diagText(diags))
	}
	if err := r.eng.Load(r.ctx, p, diags); err != nil {
		r.t.Fatal(err)
	}
	r.proj, r.diags = p, diags
}

// loadUnchecked loads flows even when the validator reports errors (the parse
// must still succeed).
func (r *rig) loadUnchecked(flows ...string) {
	r.t.Helper()
	p, diags := r.project(flows...)
	for _, d := range diags {
		if d.Severity == dsl.SevError && d.Rule != dsl.RuleWindow && d.Rule != dsl.RuleTemplate {
			r.t.Fatalf("flows do not parse:\n%s", diagText(diags))
		}
	}
	if err := r.eng.Load(r.ctx, p, nil); err != nil {
		r.t.Fatal(err)
	}
	r.proj, r.diags = p, diags
}

func diagText(ds dsl.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

// ---- time ----

func (r *rig) now() time.Time { return r.clock.Now() }

// advance moves the clock by d, firing every timer at its own time.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	if err := r.eng.AdvanceTo(r.ctx, r.clock, r.now().Add(d), nil); err != nil {
		r.t.Fatal(err)
	}
}

// settle runs the engine until idle at the current time.
func (r *rig) settle() {
	r.t.Helper()
	if err := r.eng.RunUntilIdle(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

// ---- inbound ----

// msg is an inbound message as Meta's webhook carries it (messages[] item).
type msg map[string]any

func textMsg(body string) msg { return msg{"type": "text", "text": map[string]any{"body": body}} }

// quickReply is a template quick-reply tap.
func quickReply(text, payload string) msg {
	return msg{"type": "button", "button": map[string]any{"text": text, "payload": payload}}
}

// buttonReply is an interactive reply-button tap.
func buttonReply(id, title string) msg {
	return msg{"type": "interactive", "interactive": map[string]any{"type": "button_reply",
		"button_reply": map[string]any{"id": id, "title": title}}}
}

// listReply is an interactive list-row tap.
func listReply(id, title string) msg {
	return msg{"type": "interactive", "interactive": map[string]any{"type": "list_reply",
		"list_reply": map[string]any{"id": id, "title": title}}}
}

func imageMsg(caption string) msg {
	return msg{"type": "image", "image": map[string]any{"id": "media-1", "mime_type": "image/jpeg", "caption": caption}}
}

// withReferral adds a click-to-WhatsApp referral.
func (m msg) withReferral(sourceID, headline string) msg {
	m["referral"] = map[string]any{"source_id": sourceID, "source_type": "ad", "headline": headline,
		"source_url": "https://fb.me/" + sourceID, "body": "Ad body", "media_type": "image", "ctwa_clid": "clid-" + sourceID}
	return m
}

// inboundItem builds the inbox item for a message written at `written`.
func (r *rig) inboundItem(waID string, m msg, written time.Time) store.InboxItem {
	r.n++
	raw := msg{}
	for k, v := range m {
		raw[k] = v
	}
	id := fmt.Sprintf("wamid.in.%s.%d", waID, r.n)
	raw["from"], raw["id"], raw["timestamp"] = waID, id, fmt.Sprint(written.Unix())
	b, err := json.Marshal(raw)
	if err != nil {
		r.t.Fatal(err)
	}
	in := engine.Inbound{PhoneNumberID: "pn-1", WaID: waID, Name: "Contact " + waID, Time: written.Truncate(time.Second), Message: b}
	payload, _ := json.Marshal(in)
	return store.InboxItem{Key: "message:" + id, Kind: store.InboxMessage, Contact: waID, Payload: payload, ReceivedAt: r.now()}
}

// send delivers a message written now and runs the engine until idle.
func (r *rig) send(waID string, m msg) { r.t.Helper(); r.sendWritten(waID, m, r.now()) }

// sendWritten delivers now a message written at `written` (a delayed webhook).
func (r *rig) sendWritten(waID string, m msg, written time.Time) {
	r.t.Helper()
	r.ch.inbound(waID, written)
	r.enqueue(r.inboundItem(waID, m, written))
	r.settle()
}

func (r *rig) enqueue(items ...store.InboxItem) {
	r.t.Helper()
	if _, err := r.eng.Enqueue(r.ctx, items); err != nil {
		r.t.Fatal(err)
	}
}

// event starts `event` flows for a contact, like POST /v1/events.
func (r *rig) event(waID, name string, payload map[string]any) {
	r.t.Helper()
	r.n++
	it, err := engine.EventItem(fmt.Sprintf("ev-%d", r.n), name, waID, payload, r.now())
	if err != nil {
		r.t.Fatal(err)
	}
	r.enqueue(it)
	r.settle()
}

// status delivers a status webhook for an outbox row (by its callback data, as
// Meta echoes it; providerID may be "" to use the row's).
func (r *rig) status(it *store.OutboxItem, status string, at time.Time, errCode int) {
	r.t.Helper()
	r.statusRaw(it.Contact, statusJSON(it.ProviderID, status, at, engine.CallbackData(it.ID), errCode), it.ProviderID, status, at)
}

func statusJSON(providerID, status string, at time.Time, callback string, errCode int) map[string]any {
	st := map[string]any{"id": providerID, "status": status, "timestamp": fmt.Sprint(at.Unix()), "recipient_id": "x"}
	if callback != "" {
		st["biz_opaque_callback_data"] = callback
	}
	if errCode != 0 {
		st["errors"] = []any{map[string]any{"code": errCode, "title": whatsappTitle(errCode), "message": "refused"}}
	}
	return st
}

func whatsappTitle(code int) string {
	if code == 131047 {
		return "Re-engagement message"
	}
	return fmt.Sprintf("Error %d", code)
}

func (r *rig) statusRaw(waID string, st map[string]any, providerID, status string, at time.Time) {
	r.t.Helper()
	r.enqueueStatus(waID, st, providerID, status)
	r.settle()
}

// enqueueStatus stores a status webhook without running the engine.
func (r *rig) enqueueStatus(waID string, st map[string]any, providerID, status string) {
	r.t.Helper()
	st["recipient_id"] = waID
	raw, _ := json.Marshal(st)
	at := r.now()
	if ts, ok := st["timestamp"].(string); ok {
		var sec int64
		fmt.Sscan(ts, &sec)
		at = time.Unix(sec, 0).UTC()
	}
	in := engine.Inbound{WaID: waID, Time: at, Status: raw}
	payload, _ := json.Marshal(in)
	r.enqueue(store.InboxItem{Key: "status:" + providerID + ":" + status, Kind: store.InboxStatus, Contact: waID,
		Payload: payload, ReceivedAt: r.now()})
}

// ---- store reads ----

func (r *rig) contact(waID string) *store.Contact {
	r.t.Helper()
	c, err := r.st.Contact(r.ctx, waID)
	if err != nil {
		r.t.Fatal(err)
	}
	if c == nil {
		r.t.Fatalf("contact %s not stored", waID)
	}
	return c
}

// seedContacts stores contacts directly (an import, a previous campaign).
func (r *rig) seedContacts(cs ...*store.Contact) {
	r.t.Helper()
	for _, c := range cs {
		if c.CreatedAt.IsZero() {
			c.CreatedAt, c.UpdatedAt = r.now(), r.now()
		}
		if c.Attributes == nil {
			c.Attributes = map[string]any{}
		}
	}
	err := r.st.Write(r.ctx, func(tx store.Tx) error { return tx.SaveContacts(cs) })
	if err != nil {
		r.t.Fatal(err)
	}
}

// runs lists a contact's runs, oldest first.
func (r *rig) runs(waID string) []*store.Run {
	r.t.Helper()
	rs, err := r.st.RunsOf(r.ctx, waID, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// run is the contact's only run (fails otherwise).
func (r *rig) run(waID string) *store.Run {
	r.t.Helper()
	rs := r.runs(waID)
	if len(rs) != 1 {
		r.t.Fatalf("contact %s has %d runs, want 1: %s", waID, len(rs), describeRuns(rs))
	}
	return rs[0]
}

func describeRuns(rs []*store.Run) string {
	var parts []string
	for _, x := range rs {
		parts = append(parts, fmt.Sprintf("[%d %s@%s %s %q]", x.ID, x.FlowID, x.Step, x.Status, x.EndReason))
	}
	return strings.Join(parts, " ")
}

// outbox lists a contact's outbox rows, oldest first.
func (r *rig) outbox(waID string) []*store.OutboxItem {
	r.t.Helper()
	items, err := r.st.OutboxOf(r.ctx, waID, 10000)
	if err != nil {
		r.t.Fatal(err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	return items
}

// lastOut is the contact's newest outbox row.
func (r *rig) lastOut(waID string) *store.OutboxItem {
	r.t.Helper()
	items := r.outbox(waID)
	if len(items) == 0 {
		r.t.Fatalf("nothing in the outbox for %s", waID)
	}
	return items[len(items)-1]
}

// db opens the database file for reads the Reader interface does not offer
// (statuses, inbox results, schedules).
func (r *rig) db() *sql.DB {
	r.t.Helper()
	driver, dsn := "sqlite3", "file:"+url.PathEscape(r.path)+"?mode=ro&_busy_timeout=5000"
	if pgtest.Selected() {
		driver, dsn = "pgx", pgtest.DSN(r.t, r.path)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	return db
}

// rebind writes a test's '?' placeholders as the database takes them.
func (r *rig) rebind(q string) string {
	if pgtest.Selected() {
		return sqlx.Rebind(sqlx.DOLLAR, q)
	}
	return q
}

func (r *rig) queryInt(q string, args ...any) int64 {
	r.t.Helper()
	var n sql.NullInt64
	if err := r.db().QueryRow(r.rebind(q), args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

func (r *rig) queryString(q string, args ...any) string {
	r.t.Helper()
	var s sql.NullString
	if err := r.db().QueryRow(r.rebind(q), args...).Scan(&s); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// ---- payloads ----

func decodeJSON(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("payload %s: %v", raw, err)
	}
	return m
}

// jsonEq compares a JSON document with the expected one (as JSON text),
// ignoring key order.
func jsonEq(t testing.TB, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	gb, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(gb, &g)
	wb, _ := json.Marshal(w)
	gb, _ = json.Marshal(g)
	if string(gb) != string(wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// ---- the channel ----

// call is one Send the engine made.
type call struct {
	At    time.Time
	Phone string
	Msg   *whatsapp.Message
	Raw   []byte
	// Gap is the time since the contact's last message (written time) when the
	// engine handed the message over; -1 when the contact never wrote.
	Gap time.Duration
	Err error
}

// scriptChannel is an in-process Cloud API: it records every call, answers with
// scripted results (in order, then success), and knows when each contact last
// wrote so tests can check what Meta would have said.
type scriptChannel struct {
	mu     sync.Mutex
	clock  engine.Clock
	calls  []call
	script []error
	// fn, when set, decides the result of each call (after script is used up).
	fn func(m *whatsapp.Message) error
	// during, when set, runs inside each call (after its result is decided,
	// before it returns; n numbers the calls that succeed, 0 for a failing one),
	// as what happens while a call is in flight.
	during func(n int)
	last   map[string]time.Time
	n      int
}

func newScriptChannel(c engine.Clock) *scriptChannel {
	return &scriptChannel{clock: c, last: map[string]time.Time{}}
}

// then queues results for the next calls (nil = success).
func (c *scriptChannel) then(errs ...error) {
	c.mu.Lock()
	c.script = append(c.script, errs...)
	c.mu.Unlock()
}

func (c *scriptChannel) inbound(waID string, at time.Time) {
	c.mu.Lock()
	if at.After(c.last[waID]) {
		c.last[waID] = at
	}
	c.mu.Unlock()
}

func (c *scriptChannel) Send(_ context.Context, phone string, m *whatsapp.Message) (string, error) {
	raw, _ := json.Marshal(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	gap := time.Duration(-1)
	if l, ok := c.last[m.Address()]; ok {
		gap = now.Sub(l)
	}
	var err error
	if len(c.script) > 0 {
		err, c.script = c.script[0], c.script[1:]
	} else if c.fn != nil {
		err = c.fn(m)
	}
	c.calls = append(c.calls, call{At: now, Phone: phone, Msg: m, Raw: raw, Gap: gap, Err: err})
	n := 0
	if err == nil {
		c.n++
		n = c.n
	}
	if during := c.during; during != nil {
		c.mu.Unlock()
		during(n)
		c.mu.Lock()
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("wamid.out.%d", n), nil
}

// sent lists the calls (all, or those to one contact).
func (c *scriptChannel) sent(to string) []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []call
	for _, x := range c.calls {
		if to == "" || x.Msg.Address() == to {
			out = append(out, x)
		}
	}
	return out
}

// apiErr is a Graph API error as the client returns it.
func apiErr(code, httpStatus int) error {
	return &whatsapp.APIError{HTTPStatus: httpStatus, Code: code, Message: fmt.Sprintf("error %d", code)}
}

var errConnReset = errors.New("read tcp: connection reset by peer") // outcome unknown

// ---- flows ----

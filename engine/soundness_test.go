package engine_test

// The soundness property of `funnel validate`, checked against the engine.
//
// Random flows (sends free-form and template, waits near 24h and at the engine's
// guard minute, waits of a century that overflow a sum, wait {for, at} and two
// in a row, wait_for_reply with and without timeouts, branches with constant
// conditions and counters, loops through goto, long chains of sends, quiet hours
// in zones with and without daylight saving time, set, start_flow) go through
// the real validator. Each flow then runs in the real engine (SQLite, virtual
// clock, pacing per recipient) for many contacts, starting on an ordinary day or
// just before a change of the clocks, each with a random schedule of replies
// (random gaps and texts, webhooks delayed up to the safety margin, a tenth of
// the contacts with webhooks up to 26h late). A Cloud API channel that knows
// when each contact really wrote records what it is handed and when. The test
// fails when:
//
//   - a free-form message reaches the channel 24h or more after the contact's
//     last message (for any flow, accepted or not: the runtime policy must
//     hold on its own);
//   - a step runs, or its message leaves, later after the contact's last
//     message than the validator's bound for it plus the contact's largest
//     webhook delay (waits count from a message's own timestamp, so only what a
//     late webhook runs at once, and a reply timeout lengthened within its
//     room, run later than the bound): the analysis is unsound;
//   - a free-form step the validator accepted without a warning or a fallback
//     is refused as window_closed, unless a webhook later than the margin was
//     taken in the day before (what it ran at once, or at the end of the quiet
//     hours it arrived in);
//   - a run fails for a reason other than the zero-time loop guard, or an
//     inbound event ends in an error.
//
// Flows the validator rejects run too; the test reports how many of them
// actually tried to send free-form outside the window (and were refused or sent
// their fallback). `go test` runs 80 flows × 25 schedules (20 flows under -race
// or -short); CI runs FUNNEL_SOUNDNESS_CONTACTS=125 (10,000 schedules). Run
// longer with FUNNEL_SOUNDNESS_N=2000 (flows) and FUNNEL_SOUNDNESS_CONTACTS=200
// (or the flags -soundness.n, -soundness.contacts); -soundness.seed picks
// another sample.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

var (
	soundnessN        = flag.Int("soundness.n", 80, "random flows the soundness test generates (FUNNEL_SOUNDNESS_N)")
	soundnessContacts = flag.Int("soundness.contacts", 25, "reply schedules (contacts) per flow (FUNNEL_SOUNDNESS_CONTACTS; CI: 125)")
	soundnessSeed     = flag.Uint64("soundness.seed", 1, "seed of the soundness test")
)

// envInt reads a positive integer setting from the environment (the long run:
// FUNNEL_SOUNDNESS_N=2000 FUNNEL_SOUNDNESS_CONTACTS=200).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// maxDelay is the largest webhook delay of ordinary contacts: the validator's
// margin (below the engine's deadline), so a flow without warnings keeps its window.
const maxDelay = dsl.DefaultMargin

var soundZones = []string{"UTC", "Asia/Tokyo", "Asia/Kolkata", "America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "Australia/Lord_Howe"}

// soundStarts are the moments a case starts at: an ordinary July day, and a few
// days before each change of the clocks of the zones above (the schedules run
// for days, so their nights cross it).
var soundStarts = []time.Time{
	rigStart,
	time.Date(2026, 10, 23, 10, 0, 0, 0, time.UTC), // Europe falls back on the 25th
	time.Date(2026, 10, 30, 10, 0, 0, 0, time.UTC), // the US on November 1st
	time.Date(2027, 3, 12, 10, 0, 0, 0, time.UTC),  // the US springs forward on the 14th
	time.Date(2027, 3, 26, 10, 0, 0, 0, time.UTC),  // Europe on the 28th
	time.Date(2027, 4, 2, 10, 0, 0, 0, time.UTC),   // Lord Howe falls back half an hour on the 4th
}

// ---- flow generator ----

type flowGen struct {
	rng *rand.Rand
	sb  strings.Builder
	n   int
	// second is the id of the flow start_flow steps go to ("" for none).
	second string
}

func (g *flowGen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }
func (g *flowGen) chance(p float64) bool    { return g.rng.Float64() < p }
func (g *flowGen) step(i int) string        { return fmt.Sprintf("s%d", i) }
func (g *flowGen) anyStep() string          { return g.step(g.rng.IntN(g.n)) }

func (g *flowGen) waitDuration() string {
	if g.chance(0.03) {
		return g.pick("36500d", "30000d", "20000d") // sums past what a time.Duration holds
	}
	return g.pick("30m", "2h", "5h", "11h", "12h", "20h", "23h", "23h15m", "23h28m", "23h29m", "23h31m", "23h45m",
		"23h58m", "23h58m59s", "23h59m", "24h", "25h", "2d")
}

func (g *flowGen) line(format string, args ...any) { fmt.Fprintf(&g.sb, format+"\n", args...) }

// genFlow writes a structurally valid flow: every reference resolves. Half the
// flows are chains (reply, waits near 24h, free-form send, …), which the
// validator often accepts with little room to spare; the others are arbitrary
// graphs of every action.
func genFlow(rng *rand.Rand, id, trigger string, n int, second string) string {
	g := &flowGen{rng: rng, n: n, second: second}
	chain := g.chance(0.5)
	if chain {
		g.n = 0 // counted as the steps are written
	}
	g.line("flow: %s", id)
	g.line("language: en_US")
	if g.chance(0.15) {
		g.line("reenter: true")
	}
	if g.chance(0.35) {
		zone := "contact"
		if g.chance(0.5) {
			zone = g.pick(soundZones...)
		}
		if g.chance(0.8) {
			g.line(`quiet_hours: {from: "%02d:%02d", to: "%02d:00", timezone: %s}`, 19+g.rng.IntN(5), g.rng.IntN(2)*30, 5+g.rng.IntN(5), zone)
		} else {
			g.line(`quiet_hours: {from: "12:00", to: "%02d:00", timezone: %s}`, 13+g.rng.IntN(4), zone)
		}
	}
	g.line("trigger:")
	switch trigger {
	case "catch":
		g.line("  message: {}")
	case "keyword":
		g.line("  message: {keywords: [hi]}")
	case "hidden":
		g.line("  message: {keywords: [never-sent]}")
	case "event":
		g.line("  event: {name: go}")
	}
	g.line("steps:")
	if chain {
		g.chain(n)
		return g.sb.String()
	}
	for i := 0; i < n; i++ {
		g.line("  - id: %s", g.step(i))
		g.action(i)
	}
	return g.sb.String()
}

// chain writes blocks of: an optional wait_for_reply (its timeout going to the
// next block or ending the run), zero to two waits, a free-form send; the waits
// add up close to 24h.
func (g *flowGen) chain(blocks int) {
	blocks = 1 + blocks/3
	type block struct{ lines []string }
	var out []block
	for b := 0; b < blocks; b++ {
		var bl block
		if b > 0 || g.chance(0.5) {
			switch x := g.rng.Float64(); {
			case x < 0.3:
				bl.lines = append(bl.lines, "    wait_for_reply: {}")
			case x < 0.6:
				bl.lines = append(bl.lines, "    wait_for_reply: {timeout: "+g.pick("1h", "4h", "11h", "23h")+"}")
			default:
				bl.lines = append(bl.lines, "    wait_for_reply: {timeout: "+g.pick("1h", "4h", "11h")+", on_timeout: NEXTBLOCK}")
			}
		}
		for k := g.rng.IntN(3); k > 0; k-- {
			if g.chance(0.1) {
				bl.lines = append(bl.lines, fmt.Sprintf("    wait: {at: \"%02d:%02d\"}", g.rng.IntN(24), g.rng.IntN(4)*15))
				continue
			}
			bl.lines = append(bl.lines, "    wait: "+g.pick("2h", "6h", "11h", "11h30m", "11h50m", "12h", "20h", "23h", "23h20m",
				"23h28m", "23h28m30s", "23h29m", "23h40m", "23h55m", "23h58m", "23h59m"))
		}
		// A chain of sends without a wait: the engine paces them.
		for k := map[bool]int{true: 3 + g.rng.IntN(10), false: 0}[g.chance(0.15)]; k > 0; k-- {
			bl.lines = append(bl.lines, "    send: \"b\"")
		}
		if g.chance(0.15) {
			bl.lines = append(bl.lines, "    send: {text: \"b\", fallback: {template: reminder, params: [\"x\"]}}")
		} else {
			bl.lines = append(bl.lines, "    send: \"b\"")
		}
		out = append(out, bl)
	}
	// Number the steps, then resolve the block references.
	first := make([]int, len(out)+1)
	n := 0
	for i, bl := range out {
		first[i] = n
		n += len(bl.lines)
	}
	first[len(out)] = n
	g.n = n + 1
	for i, bl := range out {
		for k, l := range bl.lines {
			g.line("  - id: %s", g.step(first[i]+k))
			l = strings.ReplaceAll(l, "NEXTBLOCK", g.step(first[i+1]))
			l = strings.Replace(l, `"b"`, fmt.Sprintf("%q", g.step(first[i]+k)), 1)
			g.line("%s", l)
		}
	}
	g.line("  - id: %s", g.step(n))
	g.line("    end: true")
}

func (g *flowGen) action(i int) {
	id := g.step(i)
	next := func() {
		if g.chance(0.1) {
			g.line("    next: %s", g.anyStep())
		}
	}
	r := g.rng.Float64()
	switch {
	case r < 0.24: // free-form
		switch {
		case g.chance(0.2):
			g.line("    send: {text: %q, fallback: {template: reminder, params: [\"x\"]}}", id)
		case g.chance(0.2):
			g.line("    send: {text: %q, buttons: [\"yes\", \"no\"]}", id)
		case g.chance(0.1):
			g.line("    send: {image: {link: \"https://example.com/%s.jpg\", caption: %q}}", id, id)
		default:
			g.line("    send: %q", id)
		}
		next()
	case r < 0.32:
		g.line("    send: {template: reminder, params: [%q]}", id)
		next()
	case r < 0.47:
		if g.chance(0.2) {
			g.line("    wait: {for: %s, at: \"%02d:%02d\"}", g.pick("30m", "2h", "12h"), g.rng.IntN(24), g.rng.IntN(4)*15)
		} else {
			g.line("    wait: %s", g.waitDuration())
		}
		next()
	case r < 0.68:
		switch x := g.rng.Float64(); {
		case x < 0.2:
			g.line("    wait_for_reply: {}")
		case x < 0.5:
			g.line("    wait_for_reply: {timeout: %s}", g.pick("30m", "1h", "4h", "12h", "23h", "1d", "2d"))
		default:
			g.line("    wait_for_reply: {timeout: %s, on_timeout: %s}", g.pick("30m", "1h", "4h", "12h", "20h", "23h", "1d", "2d"), g.anyStep())
		}
	case r < 0.8:
		g.line("    branch:")
		for k := 0; k <= g.rng.IntN(2); k++ {
			g.line("      - if: %s", g.pick(`reply.text == "yes"`, `reply.text == "no"`, `reply.payload == "yes"`,
				`vars.n > 2`, `entry.text == "hi"`, `vars.missing > 1`, `contact.timezone == "Asia/Tokyo"`,
				`vars.n < 3`, `vars.n <= 2`, `1 < 2`, `'"a" == "b"'`))
			g.line("        goto: %s", g.anyStep())
		}
		if g.chance(0.5) {
			g.line("      - goto: %s", g.anyStep())
		}
	case r < 0.86:
		switch {
		case g.chance(0.35):
			g.line("    set: {n: \"${vars.n + 1}\"}") // a counter
		case g.chance(0.3):
			g.line("    set: {n: 0}")
		default:
			g.line("    set: {n: \"${len(reply.text)}\"%s}", map[bool]string{true: ", contact.timezone: " + g.pick(soundZones...), false: ""}[g.chance(0.3)])
		}
		next()
	case r < 0.92:
		g.line("    goto: %s", g.anyStep())
	case r < 0.95 && g.second != "":
		g.line("    start_flow: %s", g.second)
	case r < 0.97:
		g.line("    end: true")
	default:
		g.line("    tag: [t%d]", g.rng.IntN(3))
		next()
	}
}

// ---- contact schedules ----

type soundEvent struct {
	contact   string
	written   time.Time // the message's own timestamp
	delivered time.Time // when the webhook arrives
	m         msg       // nil for an API event
}

type soundContact struct {
	base   time.Time // the case's start, for printing
	waID   string
	zone   string
	wild   bool          // webhook delays beyond the margin: only the hard property is checked
	delay  time.Duration // the largest delay of its messages
	events []soundEvent
}

func genContact(rng *rand.Rand, waID, trigger string, base time.Time) *soundContact {
	zones := append([]string{""}, soundZones...)
	c := &soundContact{base: base, waID: waID, zone: zones[rng.IntN(len(zones))], wild: rng.Float64() < 0.1}
	at := base.Add(time.Duration(rng.Int64N(int64(6 * time.Hour)))).Truncate(time.Second)
	delay := func() time.Duration {
		if c.wild { // late webhooks: up to 26h
			return time.Duration(rng.Int64N(int64(26 * time.Hour))).Truncate(time.Second)
		}
		if rng.Float64() < 0.6 {
			return 0
		}
		return time.Duration(1 + rng.Int64N(int64(maxDelay))).Truncate(time.Second)
	}
	add := func(m msg) {
		d := delay()
		c.delay = max(c.delay, d)
		c.events = append(c.events, soundEvent{contact: waID, written: at, delivered: at.Add(d), m: m})
	}
	gaps := []time.Duration{30 * time.Second, 5 * time.Minute, 40 * time.Minute, 2 * time.Hour, 6 * time.Hour, 11 * time.Hour,
		20 * time.Hour, 23 * time.Hour, 23*time.Hour + 40*time.Minute, 25 * time.Hour, 30 * time.Hour, 48 * time.Hour}
	switch trigger {
	case "event":
		if rng.Float64() < 0.5 {
			add(textMsg("hello"))
			at = at.Add(gaps[rng.IntN(len(gaps))])
		}
		c.events = append(c.events, soundEvent{contact: waID, written: at, delivered: at})
	default:
		add(textMsg(map[bool]string{true: "hi", false: "hello"}[trigger == "keyword" || rng.Float64() < 0.5]))
	}
	for k := rng.IntN(9); k > 0; k-- {
		g := gaps[rng.IntN(len(gaps))]
		g += time.Duration(rng.Int64N(int64(g/5)+1)) - g/10
		at = at.Add(g).Truncate(time.Second)
		switch x := rng.Float64(); {
		case x < 0.02:
			add(textMsg("STOP"))
		case x < 0.2:
			add(buttonReply("yes", "yes"))
		default:
			add(textMsg([]string{"yes", "no", "hi", "hello", "maybe", ""}[rng.IntN(6)]))
		}
	}
	return c
}

// ---- the channel ----

// soundChannel is the Cloud API as it sees time: it knows when each contact
// wrote (from the messages' own timestamps, before any webhook arrives) and
// measures every free-form message it is handed against that.
type soundChannel struct {
	mu      sync.Mutex
	clock   engine.Clock
	written map[string][]time.Time
	sentAt  map[int64]time.Time // outbox id -> when handed over
	late    []string
	n       int
}

func (c *soundChannel) lastWritten(waID string, t time.Time) (time.Time, bool) {
	ws := c.written[waID]
	i := sort.Search(len(ws), func(i int) bool { return ws[i].After(t) })
	if i == 0 {
		return time.Time{}, false
	}
	return ws[i-1], true
}

func (c *soundChannel) Send(_ context.Context, _ string, m *whatsapp.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if m.Type != whatsapp.TypeTemplate {
		last, ok := c.lastWritten(m.To, now)
		if !ok || now.Sub(last) >= dsl.Window {
			c.late = append(c.late, fmt.Sprintf("%s %s to %s at %s, %s after the contact last wrote", m.Type, m.BizOpaqueCallbackData, m.To, now, now.Sub(last)))
			return "", &whatsapp.APIError{HTTPStatus: 400, Code: 131047, Message: "Re-engagement message"}
		}
	}
	c.n++
	c.sentAt[engine.ParseCallbackData(m.BizOpaqueCallbackData)] = now
	return fmt.Sprintf("wamid.%d", c.n), nil
}

// ---- one flow ----

type soundResult struct {
	flows, accepted, clean, rejected, skipped int
	schedules, rows, freeForm, boundChecked   int
	rejectedLate                              int // rejected flows that tried a late free-form
	lateAttempts                              int // free-form refusals and fallbacks, all flows
	failures                                  []string
}

func (r *soundResult) add(o soundResult) {
	r.flows += o.flows
	r.accepted += o.accepted
	r.clean += o.clean
	r.rejected += o.rejected
	r.skipped += o.skipped
	r.schedules += o.schedules
	r.rows += o.rows
	r.freeForm += o.freeForm
	r.boundChecked += o.boundChecked
	r.rejectedLate += o.rejectedLate
	r.lateAttempts += o.lateAttempts
	r.failures = append(r.failures, o.failures...)
}

var soundCatalog = func() *dsl.Catalog {
	c, err := dsl.ParseCatalog("templates.yaml", []byte(rigCatalog))
	if err != nil {
		panic(err)
	}
	return c
}()

// checkFlows parses and checks generated sources as one project.
func checkFlows(srcs map[string]string) (*dsl.Project, dsl.Diagnostics, error) {
	var flows []*dsl.Flow
	var diags dsl.Diagnostics
	names := make([]string, 0, len(srcs))
	for name := range srcs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, ds := dsl.ParseFlow(name, []byte(srcs[name]))
		diags = append(diags, ds...)
		if f != nil {
			flows = append(flows, f)
		}
	}
	p, pd := dsl.NewProject(flows, func(*dsl.Flow) *dsl.Catalog { return soundCatalog })
	diags = append(diags, pd...)
	diags = append(diags, dsl.Check(p, dsl.Options{})...)
	for _, d := range diags {
		if d.Severity == dsl.SevError && d.Rule != dsl.RuleWindow {
			return p, diags, fmt.Errorf("generated flow does not validate: %s", d)
		}
	}
	return p, diags, nil
}

// spins reports a loop without a wait (the validator's warning).
func spins(srcs map[string]string) bool {
	_, diags, _ := checkFlows(srcs)
	for _, d := range diags {
		if d.Rule == dsl.RuleReference && d.Severity == dsl.SevWarning && strings.Contains(d.Message, "never pauses") {
			return true
		}
	}
	return false
}

// soundCase is one generated project with its contacts.
type soundCase struct {
	seed     uint64
	start    time.Time
	srcs     map[string]string
	contacts []*soundContact
}

func genCase(seed uint64, contacts int) *soundCase {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	c := &soundCase{seed: seed, srcs: map[string]string{}}
	trigger := []string{"catch", "catch", "keyword", "event"}[rng.IntN(4)]
	second := ""
	if rng.Float64() < 0.2 {
		second = "g2"
		c.srcs["g2.yaml"] = genFlow(rng, "g2", "hidden", 2+rng.IntN(5), "")
	}
	c.srcs["g1.yaml"] = genFlow(rng, "g1", trigger, 3+rng.IntN(8), second)
	// Loops that never pause only exercise the engine's loop guard (tested on
	// its own): draw again.
	for try := 0; try < 50 && spins(c.srcs); try++ {
		c.srcs["g1.yaml"] = genFlow(rng, "g1", trigger, 3+rng.IntN(8), second)
		if second != "" {
			c.srcs["g2.yaml"] = genFlow(rng, "g2", "hidden", 2+rng.IntN(5), "")
		}
	}
	base := soundStarts[rng.IntN(len(soundStarts))]
	c.start = base
	for i := 0; i < contacts; i++ {
		c.contacts = append(c.contacts, genContact(rng, fmt.Sprintf("5%09d", i), trigger, base))
	}
	return c
}

func (sc *soundCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, start %s\n", sc.seed, sc.start.Format(time.RFC3339))
	for _, name := range []string{"g1.yaml", "g2.yaml"} {
		if src, ok := sc.srcs[name]; ok {
			fmt.Fprintf(&b, "--- %s\n%s", name, src)
		}
	}
	return b.String()
}

func (c *soundContact) String() string {
	var parts []string
	for _, ev := range c.events {
		what := "event"
		if ev.m != nil {
			what = fmt.Sprint(ev.m["text"], ev.m["interactive"])
		}
		parts = append(parts, fmt.Sprintf("%s written +%s delay %s", what, ev.written.Sub(c.base), ev.delivered.Sub(ev.written)))
	}
	return fmt.Sprintf("contact %s (zone %q): %s", c.waID, c.zone, strings.Join(parts, "; "))
}

// runSoundCase validates one project and runs its contacts through the engine.
func runSoundCase(t testing.TB, dir string, sc *soundCase) soundResult {
	res := soundResult{flows: 1}
	if sc.start.IsZero() {
		sc.start = rigStart
	}
	fail := func(format string, args ...any) {
		res.failures = append(res.failures, fmt.Sprintf(format, args...)+"\n"+sc.String())
	}
	p, diags, err := checkFlows(sc.srcs)
	if err != nil {
		fail("%v", err)
		return res
	}
	// Diagnostics per step: window errors and warnings.
	windowErr, windowWarn := map[string]bool{}, map[string]bool{}
	for _, d := range diags {
		if d.Rule == dsl.RuleReference && d.Severity == dsl.SevWarning && strings.Contains(d.Message, "never pauses") {
			res.skipped++ // a spin loop: the engine stops it after 1000 steps, slowly
			return res
		}
		if d.Rule == dsl.RuleWindow {
			key := d.Flow + "/" + d.Step
			if d.Severity == dsl.SevError {
				windowErr[key] = true
			} else {
				windowWarn[key] = true
			}
		}
	}
	accepted := len(windowErr) == 0
	if accepted {
		res.accepted++
		if len(windowWarn) == 0 {
			res.clean++
		}
	} else {
		res.rejected++
	}

	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, fmt.Sprintf("s%d.db", sc.seed)), store.Options{Synchronous: "OFF"})
	if err != nil {
		fail("%v", err)
		return res
	}
	defer st.Close()
	clock := engine.NewVirtualClock(sc.start)
	ch := &soundChannel{clock: clock, written: map[string][]time.Time{}, sentAt: map[int64]time.Time{}}
	// Paced per recipient like the daemon (the analysis charges it), the rate per
	// number as high as it goes (it paces on the wall clock).
	eng := engine.New(st, engine.Options{Clock: clock, Channel: ch, Rate: 1000, PhoneNumberID: "pn",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Rand: func() float64 { return 0.5 }})
	if err := eng.Load(ctx, p, nil); err != nil {
		fail("%v", err)
		return res
	}
	var seed []*store.Contact
	var events []soundEvent
	byID := map[string]*soundContact{}
	for _, c := range sc.contacts {
		seed = append(seed, &store.Contact{WaID: c.waID, Name: "N" + c.waID, Timezone: c.zone, Attributes: map[string]any{},
			CreatedAt: sc.start, UpdatedAt: sc.start})
		byID[c.waID] = c
		for _, ev := range c.events {
			if ev.m != nil {
				ch.written[c.waID] = append(ch.written[c.waID], ev.written)
			}
			events = append(events, ev)
		}
	}
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.SaveContacts(seed) }); err != nil {
		fail("%v", err)
		return res
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].delivered.Before(events[j].delivered) })
	res.schedules = len(sc.contacts)
	h := &rig{t: t, ctx: ctx, clock: clock}
	last := sc.start
	for i := 0; i < len(events); {
		at := events[i].delivered
		if err := eng.AdvanceTo(ctx, clock, at, nil); err != nil {
			fail("%v", err)
			return res
		}
		var items []store.InboxItem
		for ; i < len(events) && events[i].delivered.Equal(at); i++ {
			ev := events[i]
			if ev.m == nil {
				it, err := engine.EventItem(fmt.Sprintf("ev-%s-%d", ev.contact, i), "go", ev.contact, map[string]any{"k": "v"}, at)
				if err != nil {
					fail("%v", err)
					return res
				}
				items = append(items, it)
				continue
			}
			items = append(items, h.inboundItem(ev.contact, ev.m, ev.written))
		}
		if _, err := eng.Enqueue(ctx, items); err != nil {
			fail("%v", err)
			return res
		}
		last = at
	}
	if err := eng.AdvanceTo(ctx, clock, last.Add(3*24*time.Hour), nil); err != nil {
		fail("%v", err)
		return res
	}

	// The hard property: Meta never saw a late free-form message.
	for _, l := range ch.late {
		fail("free-form message handed to the channel outside the window: %s", l)
	}
	// Every step ran within the validator's bound; accepted free-form steps kept
	// their window.
	rows, err := st.OutboxWhere(ctx, "", 1<<30)
	if err != nil {
		fail("%v", err)
		return res
	}
	res.rows = len(rows)
	lateHere := false
	delivered := func(c *soundContact, at time.Time) bool {
		for _, ev := range c.events {
			if ev.delivered.Equal(at) {
				return true
			}
		}
		return false
	}
	// A step the engine ran while taking a late webhook runs late by that delay:
	// slack is the largest delay of the contact's events delivered at that moment.
	slack := func(c *soundContact, at time.Time) time.Duration {
		var d time.Duration
		for _, ev := range c.events {
			if ev.delivered.Equal(at) {
				d = max(d, ev.delivered.Sub(ev.written))
			}
		}
		return d
	}
	// recentDelay is the largest delay of the contact's webhooks taken in the
	// day (and the largest clock change) before at.
	recentDelay := func(c *soundContact, at time.Time) time.Duration {
		var d time.Duration
		for _, ev := range c.events {
			if !ev.delivered.After(at) && at.Sub(ev.delivered) <= dsl.Day+dsl.MaxClockShift {
				d = max(d, ev.delivered.Sub(ev.written))
			}
		}
		return d
	}
	// Runs of one contact in parallel (reenter) share its pacing, which the
	// analysis charges per run: their send times are not checked.
	parallel := strings.Contains(sc.String(), "reenter: true")
	// The analysis paces what a reply (or an entry) starts from an empty queue:
	// it assumes the messages queued before it have left. A contact who answers
	// before they have (webhook delays can bunch messages together) is outside
	// that model: those sends are not checked.
	backlog := func(it *store.OutboxItem) bool {
		if slack(byID[it.Contact], it.CreatedAt) == 0 && !delivered(byID[it.Contact], it.CreatedAt) {
			return false
		}
		for _, o := range rows {
			if o.Contact == it.Contact && o.CreatedAt.Before(it.CreatedAt) {
				if at, ok := ch.sentAt[o.ID]; ok && at.After(it.CreatedAt) {
					return true
				}
			}
		}
		return false
	}
	for _, it := range rows {
		f := p.Flow(it.FlowID)
		s, _ := f.Step(it.Step)
		c := byID[it.Contact]
		key := it.FlowID + "/" + it.Step
		freeForm := s.Send.FreeForm()
		if freeForm {
			res.freeForm++
			if it.Status == store.OutWindowClosed || it.SentAs == "fallback" {
				res.lateAttempts++
				lateHere = true
			}
		}
		// Waits count from a message's own timestamp, so a step runs later than
		// its bound only when the engine ran it while taking a late webhook (or
		// right after, a wait already over and deferred by the quiet hours), or
		// after a reply timeout that gave the contact more time (by at most the
		// webhook's delay): the contact's largest delay bounds both.
		late := c.delay
		b := p.Analysis.Budget(s)
		if b.Reached && !b.Inf {
			lastW, ok := ch.lastWritten(it.Contact, it.CreatedAt)
			if !ok {
				fail("step %s ran for %s, who never wrote, though its bound is %s", key, it.Contact, b)
				continue
			}
			res.boundChecked++
			if e := it.CreatedAt.Sub(lastW); e > b.D+late+time.Millisecond {
				fail("step %s ran %s after %s's last message; the validator's bound is %s (+%s webhook delay)\n%s",
					key, e, it.Contact, b, late, c)
			}
			if at, sent := ch.sentAt[it.ID]; sent && !parallel && !backlog(it) {
				lastS, _ := ch.lastWritten(it.Contact, at)
				if e := at.Sub(lastS); e > b.Sent()+late+time.Millisecond {
					fail("step %s's message left %s after %s's last message; the validator's bound is %s (+%s webhook delay)\n%s",
						key, e, it.Contact, b, late, c)
				}
			}
		}
		// The window itself: an accepted free-form step keeps it unless a webhook
		// later than the margin was taken within the day before (what that
		// webhook ran at once, or at the end of the quiet hours it arrived in).
		if freeForm && accepted && s.Send.Fallback == nil && !windowWarn[key] && it.Status == store.OutWindowClosed &&
			recentDelay(c, it.CreatedAt) <= maxDelay && !parallel {
			fail("accepted free-form step %s was refused as window_closed for %s\n%s", key, it.Contact, c)
		}
	}
	if !accepted && lateHere {
		res.rejectedLate++
	}
	// No run fails but for the loop guard; no event ends in an error.
	for _, c := range sc.contacts {
		runs, err := st.RunsOf(ctx, c.waID, 1<<20)
		if err != nil {
			fail("%v", err)
			return res
		}
		for _, r := range runs {
			if r.Status == store.RunFailed && !strings.Contains(r.EndReason, "without waiting") {
				fail("run %d of %s failed: %s\n%s", r.ID, r.FlowID, r.EndReason, c)
			}
		}
	}
	if n, err := st.InboxUnprocessed(ctx); err != nil || n != 0 {
		fail("%d inbox items unprocessed (%v)", n, err)
	}
	db := (&rig{t: t, path: filepath.Join(dir, fmt.Sprintf("s%d.db", sc.seed))}).db()
	var bad int
	if err := db.QueryRow(`SELECT COUNT(*) FROM inbox WHERE result LIKE 'error:%'`).Scan(&bad); err != nil {
		fail("%v", err)
		return res
	}
	if bad > 0 {
		fail("%d inbound events ended in an error", bad)
	}
	return res
}

// TestSoundnessRegressions replays, minimized, the counterexamples the random
// search found.
func TestSoundnessRegressions(t *testing.T) {
	saoPaulo := func(waID string, written time.Duration, delay time.Duration) *soundContact {
		w := rigStart.Add(written)
		return &soundContact{base: rigStart, waID: waID, zone: "America/Sao_Paulo", delay: delay,
			events: []soundEvent{{contact: waID, written: w, delivered: w.Add(delay), m: textMsg("hi")}}}
	}
	cases := []struct {
		name string
		sc   *soundCase
	}{{
		// `wait {at}` is on the contact's clock (08:00 in São Paulo is 20:00 in
		// Tokyo), quiet hours in a named zone: the validator counted the quiet
		// hours only when `at` fell inside them as written, and bounded s1 by
		// 24h30m; it ran 35h40m after the contact's message. Fixed in the
		// validator (dsl: WaitBounds counts the whole span for a named zone).
		name: "wait at with quiet hours in another zone (seed 7001486)",
		sc: &soundCase{seed: 7001486, srcs: map[string]string{"g1.yaml": `flow: g1
language: en_US
quiet_hours: {from: "19:30", to: "07:00", timezone: Asia/Tokyo}
trigger:
  message: {keywords: [hi]}
steps:
  - id: s0
    wait: {for: 30m, at: "08:00"}
  - id: s1
    send: {template: reminder, params: ["s1"]}
`}, contacts: []*soundContact{saoPaulo("5000000011", 19*time.Minute+13*time.Second, 24*time.Minute+46*time.Second)}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runSoundCase(t, t.TempDir(), tc.sc)
			for _, f := range res.failures {
				t.Error(f)
			}
			if res.boundChecked == 0 {
				t.Error("nothing was checked")
			}
		})
	}
}

func TestSoundnessAgainstTheValidator(t *testing.T) {
	start := time.Now()
	n, contacts := envInt("FUNNEL_SOUNDNESS_N", *soundnessN), envInt("FUNNEL_SOUNDNESS_CONTACTS", *soundnessContacts)
	if testing.Short() || raceEnabled() {
		n = min(n, 20)
	}
	dir := t.TempDir()
	var (
		mu    sync.Mutex
		total soundResult
		wg    sync.WaitGroup
	)
	work := make(chan int)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				sc := genCase(*soundnessSeed*1_000_003+uint64(i), contacts)
				res := runSoundCase(t, dir, sc)
				mu.Lock()
				total.add(res)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, f := range total.failures {
		if i == 5 {
			t.Errorf("… and %d more", len(total.failures)-5)
			break
		}
		t.Error(f)
	}
	t.Logf("soundness: %d flows (%d accepted, %d of them without window warnings; %d rejected; %d spin loops skipped), "+
		"%d reply schedules, %d messages (%d free-form), %d checked against the validator's bound E; "+
		"%d late free-form attempts refused or replaced by their fallback, in %d of the rejected flows; %s",
		total.flows, total.accepted, total.clean, total.rejected, total.skipped, total.schedules, total.rows, total.freeForm,
		total.boundChecked, total.lateAttempts, total.rejectedLate, time.Since(start).Round(time.Millisecond))
	if n*contacts >= 10_000 && total.schedules < 10_000 {
		t.Errorf("only %d flows × schedules", total.schedules)
	}
	if total.accepted == 0 || total.rejected == 0 || total.boundChecked == 0 {
		t.Errorf("the generator covers too little: %+v", total)
	}
}

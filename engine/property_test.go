package engine_test

// A property test of the three loops: random flows (sends, sets that turn the
// reply into numbers, lists and attributes, waits, reply timeouts, branches,
// tags, consent), random contacts replying hostile texts (inf, NaN, huge
// numbers, invalid UTF-8, 64 KB), random API answers and status webhooks. Whatever
// happens: no panic, no error out of ProcessInbox, FireTimers or SendOutbox, no
// inbox row left unprocessed, no timer left overdue, no message left claimed
// or sending.
//
// TestEngineProperty runs a fixed number of seeds (bounded, part of go test);
// FuzzEngine explores further with `go test -fuzz FuzzEngine ./engine/`.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// hostileReplies are texts a contact can send that a flow may turn into values.
var hostileReplies = []string{
	"inf", "-inf", "+Inf", "NaN", "nan", "1e308", "1e309", "-1e309", "4.9e-324", "-0",
	"99999999999999999999999999", "9223372036854775807", "-9223372036854775808", "0x10", "1_000",
	"", " ", "\x00", "\xff\xfe\xfd", "a\xc3(b", "\xed\xa0\x80", "😀", "STOP", "${reply.text}", "'; DROP TABLE runs; --",
	strings.Repeat("9", 400), strings.Repeat("x", 64<<10), strings.Repeat("\xff", 64<<10), "3", "10", "yes",
}

// propExprs are values a `set` may compute from the reply (each type-checks).
var propExprs = []string{
	`"${float(reply.text)}"`, `"${float(reply.text) * 10}"`, `"${int(reply.text)}"`, `"${len(reply.text)}"`,
	`"${reply.text}"`, `"${upper(reply.text)}"`, `"${[float(reply.text), 1]}"`, `"${{'k': float(reply.text)}}"`,
	`"${float(reply.text) / 0}"`, `"${-float(reply.text)}"`, `"x${reply.text}y"`, `7`, `"${now}"`,
}

// propFlow writes a random flow: a keyword trigger (or a catch-all), then up to
// ten steps drawn from every kind of action, jumps only forward.
func propFlow(rng *rand.Rand, id string, keyword string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow: %s\nlanguage: en_US\n", id)
	if keyword == "" {
		b.WriteString("trigger:\n  message: {}\n")
	} else {
		fmt.Fprintf(&b, "trigger:\n  message: {keywords: [%s]}\n", keyword)
	}
	b.WriteString("steps:\n")
	n := 2 + rng.IntN(9)
	later := func(i int) string {
		if i+1 >= n {
			return ""
		}
		return fmt.Sprintf("s%d", i+1+rng.IntN(n-i-1))
	}
	for i := range n {
		fmt.Fprintf(&b, "  - id: s%d\n", i)
		switch k := rng.IntN(12); {
		case k == 0:
			b.WriteString("    send: \"got ${reply.text} / ${vars.a} / ${float(reply.text)}\"\n")
		case k == 1:
			b.WriteString("    send: {text: \"${contact.name}: ${vars.b}\", buttons: [\"Yes\", \"No\"]}\n")
		case k == 2:
			b.WriteString("    send: {text: \"late ${reply.text}\", fallback: {template: reminder, params: [\"${reply.text}\"]}}\n")
		case k == 3:
			fmt.Fprintf(&b, "    set: {a: %s, b: %s}\n", propExprs[rng.IntN(len(propExprs))], propExprs[rng.IntN(len(propExprs))])
		case k == 4:
			fmt.Fprintf(&b, "    set: {contact.score: %s, contact.name: \"${reply.text}\"}\n", propExprs[rng.IntN(len(propExprs))])
		case k == 5:
			b.WriteString("    set: {contact.timezone: \"${reply.text}\"}\n")
		case k == 6:
			if t := later(i); t != "" && rng.IntN(2) == 0 {
				fmt.Fprintf(&b, "    wait_for_reply: {timeout: %dm, on_timeout: %s}\n", 10+rng.IntN(120), t)
			} else {
				fmt.Fprintf(&b, "    wait_for_reply: %dm\n", 10+rng.IntN(120))
			}
		case k == 7:
			fmt.Fprintf(&b, "    wait: %dm\n", 1+rng.IntN(90))
		case k == 8:
			if t := later(i); t != "" {
				fmt.Fprintf(&b, "    branch:\n      - if: float(reply.text) > 5\n        goto: %s\n", t)
			} else {
				b.WriteString("    tag: [last]\n")
			}
		case k == 9:
			b.WriteString("    tag: [seen]\n")
		case k == 10:
			b.WriteString("    opt_in: true\n")
		default:
			b.WriteString("    send: {template: reminder, params: [\"${vars.a}\"]}\n")
		}
	}
	return b.String()
}

// propAnswers are what the fake API may answer a call with.
var propAnswers = []error{
	nil, nil, nil, nil, apiErr(130429, 400), apiErr(131047, 400), apiErr(131026, 400),
	apiErr(131056, 400), errConnReset, apiErr(1, 500), apiErr(100, 400),
}

// runProperty drives one random scenario; extra is one more reply text.
// It returns how many runs failed on a value that cannot be stored, and how
// many messages were sent.
func runProperty(t *testing.T, seed uint64, extra string) (unstorable, sent int64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	flows := []string{propFlow(rng, "catch", "")}
	for i := range rng.IntN(3) {
		flows = append(flows, propFlow(rng, fmt.Sprintf("kw%d", i), fmt.Sprintf("go%d", i)))
	}
	r := newRigUnchecked(t, flows, withOpts(func(o *engine.Options) { o.BatchSize = 1 + rng.IntN(8) }))
	r.ch.fn = func(*whatsapp.Message) error { return propAnswers[rng.IntN(len(propAnswers))] }
	replies := append(append([]string{}, hostileReplies...), extra)
	contacts := []string{"15551001", "15551002", "15551003", "15551004"}
	for round := range 30 {
		var items []store.InboxItem
		for range 1 + rng.IntN(4) {
			c := contacts[rng.IntN(len(contacts))]
			text := replies[rng.IntN(len(replies))]
			switch rng.IntN(5) {
			case 0:
				text = "hi"
			case 1:
				text = fmt.Sprintf("go%d", rng.IntN(3))
			}
			r.ch.inbound(c, r.now())
			items = append(items, r.inboundItem(c, textMsg(text), r.now()))
		}
		// Statuses for messages sent so far, some for unknown ones.
		for _, c := range r.ch.sent("") {
			if c.Err != nil || rng.IntN(4) != 0 {
				continue
			}
			st := []string{"sent", "delivered", "read", "failed"}[rng.IntN(4)]
			code := 0
			if st == "failed" {
				code = []int{131047, 131026, 131049}[rng.IntN(3)]
			}
			cb := c.Msg.BizOpaqueCallbackData
			if rng.IntN(5) == 0 {
				cb = "funnel:" + strconv.Itoa(rng.IntN(1000))
			}
			id := fmt.Sprintf("wamid.out.%d", 1+rng.IntN(r.ch.n+1))
			raw := statusJSON(id, st, r.now(), cb, code)
			raw["recipient_id"] = c.Msg.To
			items = append(items, statusItem(r, c.Msg.To, raw, id, st, round))
		}
		r.enqueue(items...)
		step := []func() (int, error){
			func() (int, error) { return r.eng.ProcessInbox(r.ctx) },
			func() (int, error) { return r.eng.FireTimers(r.ctx) },
			func() (int, error) { return r.eng.SendOutbox(r.ctx) },
		}
		for range 3 {
			if _, err := step[rng.IntN(3)](); err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
		}
		if rng.IntN(3) == 0 {
			r.clock.Set(r.now().Add(time.Duration(rng.IntN(150)) * time.Minute))
		}
	}
	r.eng.ResumeSender()
	if err := r.eng.RunUntilIdle(r.ctx); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL`); n != 0 {
		t.Fatalf("seed %d: %d inbox rows stuck\nflows:\n%s", seed, n, strings.Join(flows, "---\n"))
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM timers WHERE due_at <= ?`, r.now().UnixMilli()); n != 0 {
		t.Fatalf("seed %d: %d timers overdue", seed, n)
	}
	if n := r.queryInt(`SELECT COUNT(*) FROM outbox WHERE status IN ('claimed', 'sending')`); n != 0 {
		t.Fatalf("seed %d: %d messages claimed or sending", seed, n)
	}
	return r.queryInt(`SELECT COUNT(*) FROM runs WHERE status = 'failed' AND end_reason LIKE '%cannot be stored%'`),
		r.queryInt(`SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL`)
}

// statusItem is the inbox item of a status webhook (keyed per round, so the
// same status may come again).
func statusItem(r *rig, waID string, st map[string]any, providerID, status string, round int) store.InboxItem {
	raw, _ := json.Marshal(st)
	payload, _ := json.Marshal(engine.Inbound{WaID: waID, Time: r.now(), Status: raw})
	return store.InboxItem{Key: fmt.Sprintf("status:%s:%s:%d", providerID, status, round), Kind: store.InboxStatus,
		Contact: waID, Payload: payload, ReceivedAt: r.now()}
}

func TestEngineProperty(t *testing.T) {
	n := 40
	if testing.Short() || raceEnabled() {
		n = 12
	}
	if s := os.Getenv("FUNNEL_PROPERTY_SEEDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var unstorable, sent int64
	for seed := range uint64(n) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			u, s := runProperty(t, seed, "inf")
			unstorable, sent = unstorable+u, sent+s
		})
	}
	// The scenarios must reach what they are about.
	t.Logf("%d seeds: %d runs failed on an unstorable value, %d messages sent", n, unstorable, sent)
	if n >= 10 && (unstorable == 0 || sent == 0) {
		t.Errorf("the scenarios never produced an unstorable value (%d) or never sent (%d)", unstorable, sent)
	}
}

func FuzzEngine(f *testing.F) {
	for i, s := range hostileReplies[:20] {
		f.Add(uint64(i), s)
	}
	f.Fuzz(func(t *testing.T, seed uint64, text string) { runProperty(t, seed, text) })
}

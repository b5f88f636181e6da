package dsl

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// project parses flow sources (file name → YAML) into a checked project. The
// sources must be free of errors.
func project(t *testing.T, files map[string]string) *Project {
	t.Helper()
	var flows []*Flow
	for name, src := range files {
		f, diags := ParseFlow(name, []byte(src))
		for _, d := range diags {
			t.Fatalf("%s: %v", name, d)
		}
		flows = append(flows, f)
	}
	p, diags := NewProject(flows, nil)
	if len(diags) > 0 {
		t.Fatalf("%v", diags)
	}
	p.Analysis = Analyze(p)
	return p
}

func step(t *testing.T, p *Project, flow, id string) *Step {
	t.Helper()
	f := p.Flow(flow)
	if f == nil {
		t.Fatalf("no flow %s", flow)
	}
	s, ok := f.Step(id)
	if !ok {
		t.Fatalf("no step %s/%s", flow, id)
	}
	return s
}

func hours(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }

// budgetWant is a step's expected budget: "-" never reached, "inf" unbounded,
// else a duration.
type budgetWant map[string]string

func checkBudgets(t *testing.T, p *Project, flow string, want budgetWant) {
	t.Helper()
	for id, w := range want {
		b := p.Analysis.Budget(step(t, p, flow, id))
		var got string
		switch {
		case !b.Reached:
			got = "-"
		case b.Inf:
			got = "inf"
		default:
			got = FormatHours(b.D)
		}
		if got != w {
			t.Errorf("%s/%s: budget %s, want %s", flow, id, got, w)
		}
	}
}

func witness(p *Project, s *Step) string {
	return FormatPath(p.Analysis.Witness(s), p.Analysis.nodes[p.Analysis.index[s]].flow)
}

func TestAnalysisLinear(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
trigger: message
steps:
  - {id: s0, send: "hi"}
  - {id: w1, wait: 3h}
  - {id: s1, send: "x"}
  - {id: w2, wait: 2h30m}
  - {id: s2, send: "y"}
  - {id: r, wait_for_reply: {}}
  - {id: s3, send: "z"}
  - {id: w3, wait: 1d}
  - {id: s4, send: "late"}
`})
	checkBudgets(t, p, "a", budgetWant{"s0": "0s", "w1": "0s", "s1": "3h", "w2": "3h", "s2": "5h30m",
		"r": "5h30m", "s3": "0s", "w3": "0s", "s4": "24h"})
	if got, want := witness(p, step(t, p, "a", "s2")), "s0 → w1 (+3h) → s1 → w2 (+2h30m) → s2"; got != want {
		t.Errorf("witness %q, want %q", got, want)
	}
	// After a reply the witness starts where the reply led.
	if got, want := witness(p, step(t, p, "a", "s4")), "s3 → w3 (+1d) → s4"; got != want {
		t.Errorf("witness %q, want %q", got, want)
	}
	b := p.Analysis.Budget(step(t, p, "a", "s4"))
	if !b.AtLeast(Window) || b.AtLeast(Window+time.Second) || b.String() != "24h" {
		t.Errorf("budget %v: AtLeast(24h) must hold, AtLeast(24h1s) must not", b)
	}
}

func TestAnalysisTimeoutJoinAndQuietHours(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
quiet_hours: {from: "22:00", to: "06:00"}
trigger: {click_to_whatsapp: {}}
steps:
  - {id: ask, send: "?"}
  - {id: r, wait_for_reply: {timeout: 5h, on_timeout: slow}}
  - {id: fast, wait: 1h}
  - {id: join, send: "joined", next: bye}
  - {id: slow, wait: 2h}
  - {id: to-join, goto: join}
  - {id: bye, end: true}
`})
	// fast: after the reply (0) + 1h + 8h quiet hours = 9h; slow: 5h timeout + 2h +
	// 8h = 15h; the quiet hours are in the contact's zone, whose clocks may fall
	// back by up to 2h that night: 17h.
	checkBudgets(t, p, "a", budgetWant{"fast": "0s", "slow": "5h", "to-join": "17h", "join": "17h", "bye": "17h"})
	if got, want := witness(p, step(t, p, "a", "join")), "ask → r (no reply in 5h: +5h) → slow (+2h, up to +10h quiet hours) → to-join → join"; got != want {
		t.Errorf("witness %q, want %q", got, want)
	}
}

func TestAnalysisWaitAt(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
quiet_hours: {from: "21:00", to: "08:00"}
trigger: message
steps:
  - {id: a1, wait: {at: "10:00"}}
  - {id: s1, send: "x"}
  - {id: r, wait_for_reply: {}}
  - {id: a2, wait: {for: 2h, at: "23:00"}}
  - {id: s2, send: "y"}
`})
	// at 10:00 is outside the quiet hours: up to 24h, 26h when the contact's
	// clocks fall back (by up to 2h) in between. At 23:00 is inside them: then up
	// to 9h (11h) more until 08:00, after 2h: 39h.
	checkBudgets(t, p, "a", budgetWant{"s1": "26h", "s2": "39h"})
}

func TestAnalysisLoops(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
trigger: message
steps:
  - {id: offer, send: "deal"}
  - {id: pause, wait: 6h}
  - id: more
    branch:
      - {if: vars.n > 3, goto: out}
      - {goto: offer}
  - {id: out, send: "bye"}
  - {id: r, wait_for_reply: {}}
  - {id: spin1, set: {n: 1}}
  - {id: spin2, goto: spin1, next: spin1}
  - {id: never, send: "x"}
`})
	checkBudgets(t, p, "a", budgetWant{"offer": "inf", "pause": "inf", "more": "inf", "out": "inf",
		"r": "inf", "spin1": "0s", "spin2": "0s", "never": "-"})
	loop := p.Analysis.Loop(step(t, p, "a", "out"))
	if got, want := FormatPath(loop, p.Flow("a")), "more → offer → pause (+6h) → more"; got != want {
		t.Errorf("loop %q, want %q", got, want)
	}
	if p.Analysis.BusinessEntry(step(t, p, "a", "out")) != nil {
		t.Error("a message flow has no business entry")
	}
	if p.Analysis.Loop(step(t, p, "a", "spin1")) != nil {
		t.Error("a zero-time loop is not a loop that adds time")
	}
}

// A zero-time loop takes the largest value that enters it, from any member.
func TestAnalysisZeroTimeComponent(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
trigger: message
steps:
  - id: pick
    branch:
      - {if: vars.a == 1, goto: short}
  - {id: long, wait: 10h, next: ring2}
  - {id: short, wait: 1h, next: ring1}
  - id: ring1
    branch:
      - {if: vars.b == 1, goto: ring2}
      - {if: vars.c == 1, goto: exit}
  - {id: ring2, goto: ring1}
  - {id: exit, send: "x"}
`})
	checkBudgets(t, p, "a", budgetWant{"ring1": "10h", "ring2": "10h", "exit": "10h"})
}

func TestAnalysisBusinessEntry(t *testing.T) {
	p := project(t, map[string]string{"a.yaml": `
flow: a
trigger: {event: x}
steps:
  - {id: tag, tag: [t]}
  - {id: s, send: {template: x}}
  - {id: r, wait_for_reply: {timeout: 2h}}
  - {id: after, send: "y"}
`})
	checkBudgets(t, p, "a", budgetWant{"tag": "inf", "s": "inf", "r": "inf", "after": "0s"})
	if f := p.Analysis.BusinessEntry(step(t, p, "a", "s")); f == nil || f.ID != "a" {
		t.Errorf("business entry %v", f)
	}
}

func TestAnalysisStartFlow(t *testing.T) {
	p := project(t, map[string]string{
		"a.yaml": `
flow: a
trigger: message
steps:
  - {id: w, wait: 20h}
  - {id: go, start_flow: c}
`,
		"b.yaml": `
flow: b
trigger: message
steps:
  - {id: w, wait: 2h}
  - {id: go, start_flow: c}
`,
		"c.yaml": `
flow: c
trigger: message
steps:
  - {id: w, wait: 5h}
  - {id: s, send: "x"}
`,
		"d.yaml": `
flow: d
trigger: {schedule: {cron: "@daily"}}
steps:
  - {id: go, start_flow: e}
`,
		"e.yaml": `
flow: e
trigger: message
steps:
  - {id: s, send: "x"}
`})
	checkBudgets(t, p, "c", budgetWant{"w": "20h", "s": "25h"})
	if got, want := witness(p, step(t, p, "c", "s")), "a/w (+20h) → a/go (start_flow c) → w (+5h) → s"; got != want {
		t.Errorf("witness %q, want %q", got, want)
	}
	checkBudgets(t, p, "e", budgetWant{"s": "inf"})
	if f := p.Analysis.BusinessEntry(step(t, p, "e", "s")); f == nil || f.ID != "d" {
		t.Errorf("business entry of e/s: %v, want d", f)
	}
	ids := PathIDs(p.Analysis.Witness(step(t, p, "c", "s")), p.Flow("c"))
	if strings.Join(ids, " ") != "a/w a/go w s" {
		t.Errorf("PathIDs %v", ids)
	}
}

// Loops across flows add time too.
func TestAnalysisCrossFlowLoop(t *testing.T) {
	p := project(t, map[string]string{
		"a.yaml": "flow: a\ntrigger: message\nsteps:\n  - {id: w, wait: 1h}\n  - {id: go, start_flow: b}\n",
		"b.yaml": "flow: b\ntrigger: message\nsteps:\n  - {id: s, send: x}\n  - {id: go, start_flow: a}\n",
	})
	checkBudgets(t, p, "b", budgetWant{"s": "inf"})
	checkBudgets(t, p, "a", budgetWant{"w": "inf"})
}

func TestBudgetString(t *testing.T) {
	for b, want := range map[Budget]string{
		{}:                            "never reached",
		{Reached: true, Inf: true}:    "unbounded",
		{Reached: true}:               "0s",
		{Reached: true, D: hours(76)}: "76h",
	} {
		if got := b.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", b, got, want)
		}
	}
	if (Budget{}).AtLeast(0) {
		t.Error("an unreached step is never at least anything")
	}
	if !(Budget{Reached: true, Inf: true}).AtLeast(1000 * Day) {
		t.Error("unbounded is at least anything")
	}
}

// TestAnalysisRandom compares the analysis with an independent oracle on random
// flows: Bellman-Ford longest paths over the same edges (replies reset the
// clock), where anything still improving after n rounds is unbounded. It also
// checks that every witness path is made of real edges, starts where the clock
// starts, and adds up to the budget.
func TestAnalysisRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		files := randomProject(rng)
		var flows []*Flow
		for _, name := range []string{"f0.yaml", "f1.yaml"} {
			f, diags := ParseFlow(name, []byte(files[name]))
			if len(diags) > 0 {
				t.Fatalf("generated flow does not parse: %v\n%s", diags, files[name])
			}
			flows = append(flows, f)
		}
		p, _ := NewProject(flows, nil)
		a := Analyze(p)
		want := oracle(a)
		for k, nd := range a.nodes {
			got := a.budget[k]
			// The oracle charges quiet hours for every wait; the analysis once
			// per night, so never more (and the same without quiet hours).
			quiet := files["f0.yaml"]+files["f1.yaml"] != strings.ReplaceAll(files["f0.yaml"]+files["f1.yaml"], "quiet_hours", "")
			same := got.Reached == want[k].Reached && got.Inf == want[k].Inf && (got.D == want[k].D || quiet && got.D <= want[k].D)
			if !same {
				t.Fatalf("case %d: %s/%s: analysis %+v, oracle %+v\n%s\n---\n%s", i, nd.flow.ID, nd.step.ID, got, want[k], files["f0.yaml"], files["f1.yaml"])
			}
			if got.Reached && !got.Inf {
				checkWitness(t, a, k, files, quiet)
			}
		}
	}
}

func checkWitness(t *testing.T, a *Analysis, k int, files map[string]string, quiet bool) {
	t.Helper()
	hops := a.Witness(a.nodes[k].step)
	var sum time.Duration
	for h := 0; h+1 < len(hops); h++ {
		from, to := a.index[hops[h].Step], a.index[hops[h+1].Step]
		found := false
		for _, e := range a.edges {
			if e.from == from && e.to == to && !e.Resets() && e.Note == hops[h].Note {
				found = true
				sum += e.Max()
				break
			}
		}
		if !found {
			t.Fatalf("witness of %s: no edge %s → %s\n%s\n---\n%s", a.nodes[k].step.ID, hops[h].Step.ID, hops[h+1].Step.ID, files["f0.yaml"], files["f1.yaml"])
		}
	}
	if sum != a.budget[k].D && !(quiet && sum > a.budget[k].D) {
		t.Fatalf("witness of %s: %s adds %v, budget %v\n%s\n---\n%s", a.nodes[k].step.ID, FormatPath(hops, nil), sum, a.budget[k].D, files["f0.yaml"], files["f1.yaml"])
	}
	first := a.index[hops[0].Step]
	start := false
	for _, f := range a.p.Flows {
		if f.Steps[0] == hops[0].Step && f.Trigger.Kind.UserInitiated() {
			start = true
		}
	}
	for _, e := range a.edges {
		if e.to == first && e.Resets() {
			start = true
		}
	}
	if !start {
		t.Fatalf("witness of %s starts at %s, where the clock does not start", a.nodes[k].step.ID, hops[0].Step.ID)
	}
}

// oracle computes the budgets the slow, obvious way.
func oracle(a *Analysis) []Budget {
	n := len(a.nodes)
	reached := make([]bool, n)
	var stack []int
	val := make([]time.Duration, n)
	has := make([]bool, n)
	inf := make([]bool, n)
	for _, f := range a.p.Flows {
		i := a.index[f.Steps[0]]
		stack = append(stack, i)
		if f.Trigger.Kind.UserInitiated() {
			has[i] = true
		} else {
			inf[i] = true
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if reached[i] {
			continue
		}
		reached[i] = true
		for _, e := range a.edges {
			if e.from == i {
				stack = append(stack, e.to)
			}
		}
	}
	for _, e := range a.edges {
		if e.Resets() && reached[e.from] {
			has[e.to] = true
		}
	}
	relax := func() (changed []int) {
		for _, e := range a.edges {
			if e.Resets() || !has[e.from] {
				continue
			}
			if d := val[e.from] + e.Max(); !has[e.to] || d > val[e.to] {
				has[e.to], val[e.to] = true, d
				changed = append(changed, e.to)
			}
		}
		return changed
	}
	for r := 0; r < n; r++ {
		relax()
	}
	for _, i := range relax() {
		inf[i] = true
	}
	for changed := true; changed; {
		changed = false
		for _, e := range a.edges {
			if !e.Resets() && inf[e.from] && !inf[e.to] {
				inf[e.to], changed = true, true
			}
		}
	}
	out := make([]Budget, n)
	for i := range out {
		switch {
		case !reached[i]:
		case inf[i]:
			out[i] = Budget{Reached: true, Inf: true}
		default:
			out[i] = Budget{Reached: true, D: val[i]}
		}
	}
	return out
}

// randomProject writes two small random flows, f0 (user- or business-initiated)
// and f1, with waits, replies, timeouts, branches, gotos and start_flow between
// them, loops included.
func randomProject(rng *rand.Rand) map[string]string {
	durs := []string{"30m", "1h", "5h", "12h", "1d"}
	out := map[string]string{}
	for fi := 0; fi < 2; fi++ {
		var b strings.Builder
		fmt.Fprintf(&b, "flow: f%d\n", fi)
		if rng.Intn(3) == 0 {
			b.WriteString("quiet_hours: {from: \"22:00\", to: \"07:00\"}\n")
		}
		switch rng.Intn(4) {
		case 0:
			b.WriteString("trigger: {event: e}\n")
		default:
			b.WriteString("trigger: message\n")
		}
		b.WriteString("steps:\n")
		n := 2 + rng.Intn(8)
		id := func() string { return fmt.Sprintf("s%d", rng.Intn(n)) }
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  - id: s%d\n", i)
			switch rng.Intn(9) {
			case 0, 1:
				b.WriteString("    send: x\n")
				if rng.Intn(4) == 0 {
					fmt.Fprintf(&b, "    next: %s\n", id())
				}
			case 2, 3:
				switch rng.Intn(6) {
				case 0:
					fmt.Fprintf(&b, "    wait: {for: %s, at: \"%02d:00\"}\n", durs[rng.Intn(len(durs))], rng.Intn(24))
				case 1:
					fmt.Fprintf(&b, "    wait: {at: \"%02d:00\"}\n", rng.Intn(24))
				default:
					fmt.Fprintf(&b, "    wait: %s\n", durs[rng.Intn(len(durs))])
				}
			case 4:
				switch rng.Intn(3) {
				case 0:
					b.WriteString("    wait_for_reply: {}\n")
				case 1:
					fmt.Fprintf(&b, "    wait_for_reply: {timeout: %s}\n", durs[rng.Intn(len(durs))])
				default:
					fmt.Fprintf(&b, "    wait_for_reply: {timeout: %s, on_timeout: %s}\n", durs[rng.Intn(len(durs))], id())
				}
			case 5, 6:
				b.WriteString("    branch:\n")
				for c := rng.Intn(3); c >= 0; c-- {
					fmt.Fprintf(&b, "      - {if: vars.x == %d, goto: %s}\n", c, id())
				}
				if rng.Intn(2) == 0 {
					fmt.Fprintf(&b, "      - {goto: %s}\n", id())
				}
			case 7:
				if rng.Intn(2) == 0 {
					fmt.Fprintf(&b, "    goto: %s\n", id())
				} else {
					fmt.Fprintf(&b, "    start_flow: f%d\n", rng.Intn(2))
				}
			default:
				b.WriteString("    end: true\n")
			}
		}
		out[fmt.Sprintf("f%d.yaml", fi)] = b.String()
	}
	return out
}

// TimeoutRoom: what the free-form sends of a no-reply path leave before the
// margin below SendDeadline, across waits and start_flow, up to a reply.
func TestAnalysisTimeoutRoom(t *testing.T) {
	p := project(t, map[string]string{
		"a.yaml": `flow: a
trigger: {message: {keywords: [hi]}}
steps:
  - id: ask
    send: "Ready?"
  - id: answer
    wait_for_reply: {timeout: 1h, on_timeout: go}
  - id: again
    wait_for_reply: {timeout: 2h}
  - id: after-reply
    send: "this one is after a reply: no room taken from it"
  - id: go
    start_flow: b
`,
		"b.yaml": `flow: b
trigger: {message: {keywords: [b]}}
steps:
  - id: pause
    wait: 20h
  - id: late
    send: {text: "late", fallback: welcome_back}
`,
	})
	limit := SendDeadline - DefaultMargin
	for _, tc := range []struct {
		flow, step string
		want       time.Duration
	}{
		{"a", "answer", limit - 21*time.Hour}, // b/late runs 1h + 20h after the message
		{"a", "again", horizon},               // its timeout ends the run
		{"b", "pause", limit - 21*time.Hour},  // the same send, by its bound over both entries
	} {
		if got := p.Analysis.TimeoutRoom(step(t, p, tc.flow, tc.step)); got != tc.want {
			t.Errorf("%s/%s: room %s, want %s", tc.flow, tc.step, got, tc.want)
		}
	}
}

package dsl

// Hostile and degenerate inputs: each must come back quickly, without a panic,
// with an error that has a position and the right rule.

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// hostileBudget is the time one hostile file may take, as a ratio against a
// baseline measured just before it: parsing and checking an ordinary 200-step
// flow twenty times. The ratio is wide (each case takes a small fraction of it
// on an idle machine); what it catches is a blow-up, quadratic or worse, while
// a loaded machine or the race detector slows the baseline and the case alike.
func hostileBudget(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	for range 20 {
		f, diags := ParseFlow("baseline.yaml", hostileBaselineFlow)
		if f == nil || len(diags) > 0 {
			t.Fatalf("baseline flow: %v", diags)
		}
		p, _ := NewProject([]*Flow{f}, nil)
		Check(p, Options{})
	}
	return 250 * time.Since(start)
}

var hostileBaselineFlow = func() []byte {
	var b strings.Builder
	b.WriteString("flow: baseline\ntrigger: message\nsteps:\n")
	for i := range 200 {
		b.WriteString("  - id: s" + itoa(i) + "\n    send: \"hello ${contact.name}\"\n")
	}
	return []byte(b.String())
}()

func TestHostileInputs(t *testing.T) {
	bomb := func(levels, width int) string {
		var b strings.Builder
		b.WriteString("l0: &l0 [" + strings.TrimSuffix(strings.Repeat(`"lol", `, width), ", ") + "]\n")
		for i := 1; i < levels; i++ {
			refs := strings.TrimSuffix(strings.Repeat("*l"+itoa(i-1)+", ", width), ", ")
			b.WriteString("l" + itoa(i) + ": &l" + itoa(i) + " [" + refs + "]\n")
		}
		b.WriteString("flow: bomb\ntrigger: message\nsteps:\n  - id: a\n    tag: *l" + itoa(levels-1) + "\n")
		return b.String()
	}
	cases := []struct {
		name string
		data string
		rule string
		line int    // expected line of the first error; 0: any
		msg  string // a substring of some error message
	}{
		{"empty file", "", RuleSchema, 1, "empty file"},
		{"only whitespace", "   \n\n  \n", RuleSchema, 1, "empty file"},
		{"only comments", "# a comment\n# another\n", RuleSchema, 1, "empty file"},
		{"only a document marker", "---\n", RuleSchema, 0, "a flow file is a mapping"},
		{"explicit null", "~\n", RuleSchema, 1, "found nothing (null)"},
		{"list at the root", "- flow: x\n- trigger: message\n", RuleSchema, 1, "found a list"},
		{"scalar at the root", "hello world\n", RuleSchema, 1, `found the string "hello world"`},
		{"number at the root", "42\n", RuleSchema, 1, "found a number (42)"},
		{"binary garbage", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", RuleSyntax, 1, ""},
		{"invalid UTF-8", "flow: caf\xe9\ntrigger: message\n", RuleSyntax, 1, "not valid UTF-8"},
		{"invalid UTF-8 on line 3", "flow: x\ntrigger: message\nsteps: [\xc3\x28]\n", RuleSyntax, 3, "not valid UTF-8"},
		{"NUL bytes", "flow: x\ntrigger: message\x00\x00\n", RuleSyntax, 2, "control characters"},
		{"a NUL byte only", "\x00", RuleSyntax, 1, "control characters"},
		{"BOM then garbage", "\xef\xbb\xbf\x01", RuleSyntax, 1, "control characters"},
		{"two documents", "flow: a\ntrigger: message\nsteps: [{id: a, end: true}]\n---\nflow: b\n", RuleSyntax, 4, "one YAML document"},
		{"many documents", strings.Repeat("---\nflow: a\n", 1000), RuleSyntax, 0, "one YAML document"},
		{"tabs for indentation", "flow: x\ntrigger:\n\tmessage: {}\n", RuleSyntax, 3, "tab character"},
		{"tab before a step", "flow: x\ntrigger: message\nsteps:\n\t- id: a\n", RuleSyntax, 4, ""},
		{"billion laughs", bomb(9, 10), RuleSyntax, 0, "alias bomb"},
		{"wide alias bomb", bomb(3, 1000), RuleSyntax, 0, "alias bomb"},
		{"recursive alias", "flow: x\ntrigger: message\nsteps: &s\n  - id: a\n    tag: *s\n", RuleSchema, 0, ""},
		{"self-merging mapping", "flow: x\ntrigger: &t\n  <<: *t\nsteps: [{id: a, end: true}]\n", RuleSyntax, 0, ""},
		{"unknown alias", "flow: *nope\n", RuleSyntax, 1, "unknown anchor"},
		// yaml.v3 has no depth limit: deep nesting parses, and is then the wrong shape.
		{"deeply nested lists", strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n", RuleSchema, 1, "found a list"},
		{"deeply nested compact block lists", strings.Repeat("- ", 10000) + "x\n", RuleSchema, 1, "found a list"},
		{"deeply indented block lists", nestedBlockLists(2000), RuleSchema, 1, "found a list"},
		{"too deep to fit the size limit", nestedBlockLists(10000), RuleSyntax, 1, "limited to"},
		{"deeply nested maps", strings.Repeat("{a: ", 10000) + "1" + strings.Repeat("}", 10000) + "\n", RuleSchema, 1, "unknown key `a`"},
		{"deeply nested steps value", "flow: x\ntrigger: message\nsteps: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n", RuleSchema, 3, "must be a mapping"},
		{"deeply nested steps mapping", "flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: " + strings.Repeat("{text: ", 5000) + "x" + strings.Repeat("}", 5000) + "\n", RuleSchema, 5, ""},
		{"huge single line", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"" + strings.Repeat("x", 2<<20) + "\"}]\n", RuleLimits, 3, "4096"},
		{"huge key", strings.Repeat("k", 1<<20) + ": 1\n", RuleSyntax, 1, ""}, // YAML limits implicit keys to 1024 characters
		{"long key", strings.Repeat("k", 1000) + ": 1\n", RuleSchema, 1, "unknown key"},
		{"many keys", manyKeys(50000), RuleSchema, 1, "unknown key"},
		{"many steps", manySteps(20000), "", 0, ""},
		{"long expression", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"${" + strings.Repeat("1+", 50000) + "1}\"}]\n", RuleExpression, 3, ""},
		{"deeply nested expression", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"${" + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + "}\"}]\n", "", 0, ""},
		{"deeply nested unbalanced expression", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"${" + strings.Repeat("(", 5000) + "1}\"}]\n", RuleExpression, 3, ""},
		{"deeply nested arrays in an expression", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"${" + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + "}\"}]\n", "", 0, ""},
		{"many interpolations", "flow: x\ntrigger: message\nsteps: [{id: a, send: \"" + strings.Repeat("${contact.nmae}", 10000) + "\"}]\n", RuleExpression, 3, ""},
		{"unterminated quote", "flow: \"x\ntrigger: message\n", RuleSyntax, 0, ""},
		{"CR only line endings", "flow: x\rtrigger: message\rsteps:\r  - id: a\r    send: \"${nope}\"\r", RuleExpression, 5, "unknown name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			budget := hostileBudget(t)
			start := time.Now()
			f, diags := ParseFlow("hostile.yaml", []byte(c.data))
			if f != nil {
				p, pd := NewProject([]*Flow{f}, nil)
				diags = append(diags, pd...)
				diags = append(diags, Check(p, Options{})...)
			}
			if el := time.Since(start); el > budget {
				t.Errorf("took %v (budget %v)", el, budget)
			}
			checkDiags(t, "hostile.yaml", []byte(c.data), diags)
			if c.rule == "" {
				return // only: no panic, in time, positions valid
			}
			var first *Diagnostic
			found := c.msg == ""
			for i, d := range diags {
				if d.Severity == SevError && d.Rule == c.rule && first == nil {
					first = &diags[i]
				}
				if d.Rule == c.rule && strings.Contains(d.Message, c.msg) {
					found = true
				}
			}
			if first == nil {
				t.Fatalf("no %s error; got %v", c.rule, diags)
			}
			if !found {
				t.Errorf("no %s error mentions %q; got %v", c.rule, c.msg, diags)
			}
			if c.line > 0 && first.Pos.Line != c.line {
				t.Errorf("first %s error at line %d, want %d: %v", c.rule, first.Pos.Line, c.line, *first)
			}
		})
	}
}

// TestHostileHugeFile: a 10 MB file is refused at 1:1 by its size, before YAML
// parses it, and quickly.
func TestHostileHugeFile(t *testing.T) {
	data := bytes.Repeat([]byte("# padding padding padding padding padding padding\n"), 10<<20/50)
	data = append([]byte("flow: huge\ntrigger: message\nsteps: [{id: a, end: true}]\n"), data...)
	budget := hostileBudget(t) / 20 // refusing by size must not parse the file
	start := time.Now()
	f, diags := ParseFlow("huge.yaml", data)
	if el := time.Since(start); el > budget {
		t.Errorf("refusing a %d-byte file took %v (budget %v)", len(data), el, budget)
	}
	if f != nil {
		t.Errorf("a file over MaxFileSize must not produce a flow")
	}
	if len(diags) != 1 {
		t.Fatalf("want exactly one diagnostic, got %v", diags)
	}
	d := diags[0]
	if d.Pos != (Pos{File: "huge.yaml", Line: 1, Col: 1}) || d.Rule != RuleSyntax || d.Severity != SevError ||
		!strings.Contains(d.Message, "limited to") {
		t.Errorf("got %v", d)
	}
	// Just at the limit is parsed as usual.
	ok := append([]byte("flow: big\ntrigger: message\nsteps: [{id: a, end: true}]\n"), bytes.Repeat([]byte("#"), MaxFileSize-200)...)
	if f, diags := ParseFlow("big.yaml", ok); f == nil || len(diags) > 0 {
		t.Errorf("a file under the limit: flow %v, diagnostics %v", f != nil, diags)
	}
}

func nestedBlockLists(depth int) string {
	var b strings.Builder
	for i := 0; i < depth; i++ {
		b.WriteString(strings.Repeat(" ", i) + "-\n")
	}
	return b.String()
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("key" + itoa(i) + ": " + itoa(i) + "\n")
	}
	return b.String()
}

func manySteps(n int) string {
	var b strings.Builder
	b.WriteString("flow: many\ntrigger: message\nsteps:\n")
	for i := 0; i < n; i++ {
		b.WriteString("  - id: s" + itoa(i) + "\n    wait: 1h\n")
	}
	b.WriteString("  - id: last\n    goto: s0\n")
	return b.String()
}

// TestHostileLongLoop: a loop of thousands of steps (sends and waits) across
// the analysis, the window check and its messages stays near-linear.
func TestHostileLongLoop(t *testing.T) {
	var b strings.Builder
	b.WriteString("flow: nag\ntrigger: message\nsteps:\n")
	const n = 3000
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			b.WriteString("  - id: s" + itoa(i) + "\n    send: hi\n")
		} else {
			b.WriteString("  - id: s" + itoa(i) + "\n    wait: 1h\n")
		}
	}
	b.WriteString("  - id: last\n    goto: s0\n")
	budget := hostileBudget(t)
	start := time.Now()
	f, diags := ParseFlow("loop.yaml", []byte(b.String()))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	p, _ := NewProject([]*Flow{f}, nil)
	ds := Check(p, Options{})
	if el := time.Since(start); el > budget {
		t.Errorf("took %v (budget %v)", el, budget)
	}
	if len(ds) != n/2 {
		t.Errorf("%d diagnostics, want one window error per send (%d)", len(ds), n/2)
	}
}

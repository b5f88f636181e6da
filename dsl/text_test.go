package dsl

import (
	"strings"
	"testing"
)

func col(i int) Pos { return Pos{File: "t", Line: 1, Col: i + 1} }

// parts describes a Text as literal and ${expr} parts: "lit|${expr}|lit".
func parts(t *Text) string {
	var s []string
	for _, p := range t.parts {
		if p.expr != nil {
			s = append(s, "${"+p.expr.Src+"}")
		} else {
			s = append(s, p.lit)
		}
	}
	return strings.Join(s, "|")
}

func TestParseText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"${contact.name}", "${contact.name}"},
		{"Hi ${contact.name}!", "Hi |${contact.name}|!"},
		{"${contact.name}${contact.wa_id}", "${contact.name}|${contact.wa_id}"},
		{"$${literal}", "${literal}"},
		{"a $${b} ${contact.name}", "a ${b} |${contact.name}"},
		{"cost: $5 {x}", "cost: $5 {x}"},
		{`${"}" + contact.name}`, `${"}" + contact.name}`},
		{`${'}'}`, `${'}'}`},
		{"${`}`}", "${`}`}"},
		{`${"a\"}"}`, `${"a\"}"}`},
		{"${{a: 1}.a}", "${{a: 1}.a}"},
		{"é ${contact.name} 😀", "é |${contact.name}| 😀"},
	} {
		txt, diags := parseText(c.in, col(0), col)
		if len(diags) > 0 {
			t.Errorf("parseText(%q): %v", c.in, diags)
			continue
		}
		if got := parts(txt); got != c.want {
			t.Errorf("parseText(%q) = %q, want %q", c.in, got, c.want)
		}
		if txt.Raw != c.in {
			t.Errorf("Raw %q, want %q", txt.Raw, c.in)
		}
	}
}

func TestParseTextErrors(t *testing.T) {
	for _, c := range []struct {
		in     string
		col    int // of the diagnostic
		msg    string
		static bool // the text still counts as static (an unterminated ${ is kept as literal)
	}{
		{"Hi ${contact.name", 4, "unterminated `${`", true},
		{"${", 1, "unterminated", true},
		{`${"}`, 1, "unterminated", true},
		{"${}", 3, "empty expression", false},
		{"${   }", 5, "empty expression", false}, // somewhere inside the braces
		{"Hi ${contact.nmae}!", 14, "has no field `nmae`; did you mean `name`?", false},
		{"é😀 ${contcat.name}", 6, "unknown name `contcat`; did you mean `contact`?", false},
		{"${1 +}", 5, "", false},
	} {
		txt, diags := parseText(c.in, col(0), col)
		if len(diags) != 1 {
			t.Errorf("parseText(%q): %d diagnostics, want 1: %v", c.in, len(diags), diags)
			continue
		}
		d := diags[0]
		if d.Pos.Col != c.col || d.Rule != RuleExpression || d.Severity != SevError || !strings.Contains(d.Message, c.msg) {
			t.Errorf("parseText(%q): %v, want column %d and %q", c.in, d, c.col, c.msg)
		}
		if txt.IsStatic() != c.static {
			t.Errorf("parseText(%q): IsStatic %v, want %v", c.in, txt.IsStatic(), c.static)
		}
	}
}

func TestClosingBrace(t *testing.T) {
	for _, c := range []struct {
		s     string
		start int
		want  int
	}{
		{"${a}", 2, 3},
		{"${a} ${b}", 2, 3},
		{"${{}}", 2, 4},
		{"${{x: {y: 1}}}", 2, 13},
		{`${"}"}`, 2, 5},
		{`${'}'}`, 2, 5},
		{"${`}`}", 2, 5},
		{`${"\"}"}`, 2, 7},
		{"${`\\`}", 2, 5}, // no escapes in backquotes
		{"${a", 2, -1},
		{"${{}", 2, -1},
		{`${"}`, 2, -1},
		{`${"\`, 2, -1},
	} {
		if got := closingBrace(c.s, c.start); got != c.want {
			t.Errorf("closingBrace(%q, %d) = %d, want %d", c.s, c.start, got, c.want)
		}
	}
}

func TestTextRender(t *testing.T) {
	txt, diags := parseText("Hi ${contact.name}, ${len(contact.tags)} tags, $${x}, ${vars.n ?? 0}", col(0), col)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	env := &Env{Contact: ContactEnv{Name: "Ana", Tags: []string{"a", "b"}}, Vars: map[string]any{}}
	got, err := txt.Render(env)
	if err != nil || got != "Hi Ana, 2 tags, ${x}, 0" {
		t.Errorf("Render = %q, %v", got, err)
	}
	if txt.IsStatic() || len(txt.Exprs()) != 3 || txt.Literal() != "Hi ,  tags, ${x}, " {
		t.Errorf("IsStatic %v, %d exprs, literal %q", txt.IsStatic(), len(txt.Exprs()), txt.Literal())
	}
	var nilText *Text
	if s, err := nilText.Render(env); s != "" || err != nil {
		t.Errorf("nil text renders %q, %v", s, err)
	}
	static := StaticText("x")
	if !static.IsStatic() || static.Literal() != "x" {
		t.Errorf("StaticText")
	}
}

func TestFormatValue(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, ""}, {"s", "s"}, {3.0, "3"}, {2.5, "2.5"}, {true, "true"}, {[]string{"a", "b"}, "a, b"}, {42, "42"},
	} {
		if got := FormatValue(c.v); got != c.want {
			t.Errorf("FormatValue(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}

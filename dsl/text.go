package dsl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Text is a string of the flow language: literal parts and ${expression} parts,
// compiled at load time. `$${` writes a literal `${`.
type Text struct {
	Raw   string
	Pos   Pos
	parts []textPart
	// broken is set when an interpolation did not compile (and was reported):
	// the text is then not static, and its literal parts are not all of it.
	broken bool
}

type textPart struct {
	lit  string
	expr *Expr
}

// StaticText makes a Text with no expressions (for generated content and tests).
func StaticText(s string) *Text { return &Text{Raw: s, parts: []textPart{{lit: s}}} }

// IsStatic reports whether the text has no expressions.
func (t *Text) IsStatic() bool {
	if t.broken {
		return false
	}
	for _, p := range t.parts {
		if p.expr != nil {
			return false
		}
	}
	return true
}

// Literal is the text's literal parts joined: its exact value when IsStatic, a
// lower bound of its length otherwise.
func (t *Text) Literal() string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
	}
	return b.String()
}

// Exprs lists the text's expressions.
func (t *Text) Exprs() []*Expr {
	var es []*Expr
	for _, p := range t.parts {
		if p.expr != nil {
			es = append(es, p.expr)
		}
	}
	return es
}

// Render evaluates the text. An expression that fails at run time (a missing
// variable, say) renders as empty and its error is returned beside the result, so
// the caller can log it and still send.
func (t *Text) Render(env *Env) (string, error) {
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	var firstErr error
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.expr.Eval(env)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: ${%s}: %w", p.expr.Pos, p.expr.Src, err)
			}
			continue
		}
		b.WriteString(FormatValue(v))
	}
	return b.String(), firstErr
}

// FormatValue writes an expression result the way people expect to read it in a
// message: nil is empty, whole floats have no decimals, times are RFC 3339.
func FormatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	case time.Time:
		return v.Format(time.RFC3339)
	case time.Duration:
		return FormatDuration(v)
	case []string:
		return strings.Join(v, ", ")
	}
	return fmt.Sprint(v)
}

// parseText splits a string into literal and ${expression} parts and compiles the
// expressions. posAt maps a rune offset of s to its source position.
func parseText(s string, base Pos, posAt func(int) Pos) (*Text, []Diagnostic) {
	t := &Text{Raw: s, Pos: base}
	if !strings.Contains(s, "${") {
		t.parts = []textPart{{lit: s}}
		return t, nil
	}
	var diags []Diagnostic
	var lit strings.Builder
	i := 0
	for i < len(s) {
		if strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end := closingBrace(s, i+2)
		if end < 0 {
			diags = append(diags, Diagnostic{Pos: posAt(runeIndex(s, i)), Severity: SevError, Rule: RuleExpression,
				Message: "unterminated `${`: add the closing `}` (write `$${` for a literal `${`)"})
			lit.WriteString(s[i:])
			break
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, textPart{lit: lit.String()})
			lit.Reset()
		}
		inner := s[i+2 : end]
		startRune := runeIndex(s, i+2)
		e, d := compileExpr(inner, exprAny, func(off int) Pos { return posAt(startRune + off) })
		if d != nil {
			diags = append(diags, *d)
			t.broken = true
		} else {
			e.Pos = posAt(runeIndex(s, i))
			t.parts = append(t.parts, textPart{expr: e})
		}
		i = end + 1
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, textPart{lit: lit.String()})
	}
	return t, diags
}

// closingBrace finds the `}` that closes an interpolation opened before start,
// skipping nested braces and string literals. -1 when there is none.
func closingBrace(s string, start int) int {
	depth := 0
	for i := start; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return -1
			}
			i = j
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// Value is the right-hand side of a `set` entry: a YAML literal (number, bool,
// string without expressions), a single ${expression} whose typed result is kept,
// or a text with interpolations.
type Value struct {
	Literal any
	Expr    *Expr
	Text    *Text
}

// Eval computes the value.
func (v *Value) Eval(env *Env) (any, error) {
	switch {
	case v.Expr != nil:
		return v.Expr.Eval(env)
	case v.Text != nil:
		return v.Text.Render(env)
	}
	return v.Literal, nil
}

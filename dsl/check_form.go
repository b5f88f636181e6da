package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// checkForms reports expressions that read a `reply.form` field no form of the
// flow returns, or compare one with a literal of another type. It judges a
// flow only when every form it sends names its Flow JSON: otherwise a field
// may come from a form the validator cannot see.
func (c *checker) checkForms() {
	for _, f := range c.p.Flows {
		fields := map[string]FormField{}
		forms, known := 0, true
		for _, s := range f.Steps {
			if s.Send == nil || s.Send.Form == nil {
				continue
			}
			forms++
			if s.Send.Form.Schema == nil {
				known = false
				break
			}
			for n, fl := range s.Send.Form.Schema.Fields {
				if old, ok := fields[n]; ok && old.Type != fl.Type {
					fl.Type = "any"
				}
				fields[n] = fl
			}
		}
		if forms == 0 || !known {
			continue
		}
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, s := range f.Steps {
			for _, e := range s.Exprs() {
				for _, msg := range formFindings(e, fields, names) {
					c.report(f, s, e.Pos, SevError, RuleForm, "expression `"+e.Src+"`: "+msg, nil)
				}
			}
		}
	}
}

// formFindings walks one expression for reads of reply.form.<field>.
func formFindings(e *Expr, fields map[string]FormField, names []string) []string {
	v := &formVisitor{fields: fields, names: names, seen: map[string]bool{}}
	node := e.Node()
	ast.Walk(&node, v)
	return v.out
}

type formVisitor struct {
	fields map[string]FormField
	names  []string
	seen   map[string]bool
	out    []string
}

func (v *formVisitor) add(msg string) {
	if !v.seen[msg] {
		v.seen[msg] = true
		v.out = append(v.out, msg)
	}
}

func (v *formVisitor) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.MemberNode:
		if name, ok := formField(n); ok {
			if _, known := v.fields[name]; !known {
				v.add(fmt.Sprintf("the form does not return `%s`%s (its Flow JSON returns: %s)", name,
					didYouMean(name, v.names), strings.Join(v.names, ", ")))
			}
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "==", "!=", "<", ">", "<=", ">=":
		default:
			return
		}
		for _, side := range [][2]ast.Node{{n.Left, n.Right}, {n.Right, n.Left}} {
			m, ok := side[0].(*ast.MemberNode)
			if !ok {
				continue
			}
			name, ok := formField(m)
			if !ok {
				continue
			}
			fl, ok := v.fields[name]
			if !ok || fl.Type == "any" {
				continue
			}
			if lit := literalType(side[1]); lit != "" && lit != fl.Type {
				v.add(fmt.Sprintf("`reply.form.%s` is a %s (%s in the Flow JSON), compared with a %s", name, fl.Type,
					fieldSource(fl), lit))
			}
		}
	}
}

func fieldSource(f FormField) string {
	if f.Input != "" {
		return withArticle(f.Input)
	}
	return "a constant"
}

// formField recognizes reply.form.<name> (or reply.form["name"]).
func formField(m *ast.MemberNode) (string, bool) {
	inner, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return "", false
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "reply" {
		return "", false
	}
	if p, ok := inner.Property.(*ast.StringNode); !ok || p.Value != "form" {
		return "", false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return p.Value, true
}

func literalType(n ast.Node) string {
	switch n.(type) {
	case *ast.StringNode:
		return "string"
	case *ast.IntegerNode, *ast.FloatNode:
		return "number"
	case *ast.BoolNode:
		return "boolean"
	case *ast.ArrayNode:
		return "list"
	}
	return ""
}

// Exprs lists every expression of the step: conditions, `set` values and the
// ${…} of every text it sends.
func (s *Step) Exprs() []*Expr {
	var es []*Expr
	for _, c := range s.Branch {
		if c.If != nil {
			es = append(es, c.If)
		}
	}
	for _, a := range s.Set {
		if a.Value == nil {
			continue
		}
		if a.Value.Expr != nil {
			es = append(es, a.Value.Expr)
		}
		if a.Value.Text != nil {
			es = append(es, a.Value.Text.Exprs()...)
		}
	}
	if s.Send != nil {
		for _, t := range s.Send.Texts() {
			es = append(es, t.Exprs()...)
		}
	}
	return es
}

// Texts lists every text of the message (bodies, labels, links, parameters,
// the fallback's), nil entries left out.
func (m *Send) Texts() []*Text {
	var ts []*Text
	add := func(xs ...*Text) {
		for _, x := range xs {
			if x != nil {
				ts = append(ts, x)
			}
		}
	}
	add(m.Text)
	for _, b := range m.Buttons {
		add(b.Title)
	}
	if md := m.Media; md != nil {
		add(md.Link, md.Caption, md.Filename)
	}
	if l := m.List; l != nil {
		add(l.Body, l.Button, l.Header, l.Footer)
		for _, sec := range l.Sections {
			add(sec.Title)
			for _, r := range sec.Rows {
				add(r.Title, r.Description)
			}
		}
	}
	if c := m.CTA; c != nil {
		add(c.Body, c.Button, c.URL, c.Header, c.Footer)
	}
	if f := m.Form; f != nil {
		add(f.Body, f.CTA, f.Header, f.Footer)
		for _, d := range f.Data {
			add(d.Value)
		}
	}
	if l := m.LocationRequest; l != nil {
		add(l.Body)
	}
	for _, t := range []*TemplateRef{m.Template, m.Fallback} {
		if t == nil {
			continue
		}
		add(t.Params...)
		for _, np := range t.Named {
			add(np.Value)
		}
		add(t.Header)
	}
	return ts
}

package dsl

import (
	"time"

	"strings"

	"gopkg.in/yaml.v3"
)

// parseAction fills the step's action from its value node.
func (p *parser) parseAction(s *Step, n *yaml.Node) {
	n = p.resolve(n)
	if n == nil {
		return
	}
	switch s.Kind {
	case ActSend:
		s.Send = p.parseSend(n)
	case ActWait:
		s.Wait = p.parseWait(n)
	case ActWaitForReply:
		s.WaitForReply = p.parseWaitForReply(n)
	case ActBranch:
		s.Branch = p.parseBranch(n)
	case ActSet:
		s.Set = p.parseSet(n)
	case ActTag, ActUntag:
		tags, nodes := p.strList(n, "`"+string(s.Kind)+"`")
		for i, t := range tags {
			if strings.TrimSpace(t) == "" {
				p.errorf(p.pos(nodes[i]), RuleSchema, "empty tag")
				continue
			}
			s.Tags = append(s.Tags, t)
		}
		if len(tags) == 0 && n.Kind != yaml.ScalarNode {
			p.errorf(p.pos(n), RuleSchema, "`%s` needs at least one tag", s.Kind)
		}
	case ActOptIn, ActOptOut:
		if b, ok := p.boolean(n, "`"+string(s.Kind)+"`"); ok && !b {
			other := ActOptOut
			if s.Kind == ActOptOut {
				other = ActOptIn
			}
			p.errorf(p.pos(n), RuleSchema, "`%s: false` does nothing: write `%s: true`, or use `%s: true`", s.Kind, s.Kind, other)
		}
	case ActStartFlow, ActGoto:
		if id, ok := p.id(n, "`"+string(s.Kind)+"`"); ok {
			s.Target, s.TargetPos = id, p.pos(n)
		}
	case ActConvert:
		s.Convert = p.parseConvert(n)
	case ActSplit:
		s.Split = p.parseSplit(n)
	case ActEnd:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
			if b, _ := p.boolean(n, "`end`"); !b {
				p.errorf(p.pos(n), RuleSchema, "`end: false` does nothing: write `end: true` or `end: <reason>`")
			}
			s.EndReason = "completed"
		} else if r, ok := p.str(n, "`end`"); ok {
			s.EndReason = r
		}
	}
}

func (p *parser) duration(n *yaml.Node, what string) (d time.Duration, ok bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(s)
	if err != nil {
		p.errorf(p.pos(p.resolve(n)), RuleSchema, "%s: %v", what, err)
		return 0, false
	}
	if v <= 0 {
		p.errorf(p.pos(p.resolve(n)), RuleSchema, "%s must be longer than 0s", what)
		return 0, false
	}
	return v, true
}

func (p *parser) parseWait(n *yaml.Node) *Wait {
	w := &Wait{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		d, ok := p.duration(n, "`wait`")
		if !ok {
			return nil
		}
		w.For = d
		return w
	}
	ps, ok := p.mapping(n, "`wait`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`wait`", "for", "at")
	for _, kv := range ps {
		switch kv.key {
		case "for":
			d, ok := p.duration(kv.value, "`wait.for`")
			if !ok {
				return nil
			}
			w.For = d
		case "at":
			s, ok := p.str(kv.value, "`wait.at`")
			if !ok {
				return nil
			}
			c, err := ParseClock(s)
			if err != nil {
				p.errorf(p.pos(p.resolve(kv.value)), RuleSchema, "`wait.at`: %v", err)
				return nil
			}
			w.At = &c
		}
	}
	if w.For == 0 && w.At == nil {
		p.errorf(w.Pos, RuleSchema, "`wait` needs `for: <duration>` and/or `at: \"HH:MM\"`")
		return nil
	}
	return w
}

func (p *parser) parseWaitForReply(n *yaml.Node) *WaitForReply {
	w := &WaitForReply{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return w
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if b, _ := p.boolean(n, "`wait_for_reply`"); !b {
			p.errorf(p.pos(n), RuleSchema, "`wait_for_reply: false` does nothing: remove the step, or write `wait_for_reply: {}`")
		}
		return w
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!bool" {
		// `wait_for_reply: 4h` is short for {timeout: 4h}.
		if d, ok := p.duration(n, "`wait_for_reply`"); ok {
			w.Timeout = d
		}
		return w
	}
	ps, ok := p.mapping(n, "`wait_for_reply`")
	if !ok {
		return w
	}
	p.checkKeys(ps, "`wait_for_reply`", "timeout", "on_timeout")
	hasTimeout := false
	for _, kv := range ps {
		switch kv.key {
		case "timeout":
			hasTimeout = true
			w.Timeout, _ = p.duration(kv.value, "`timeout`")
		case "on_timeout":
			if id, ok := p.id(kv.value, "`on_timeout`"); ok {
				w.OnTimeout, w.OnTimeoutPos = id, p.pos(p.resolve(kv.value))
			}
		}
	}
	if w.OnTimeout != "" && !hasTimeout {
		p.errorf(w.OnTimeoutPos, RuleSchema, "`on_timeout` needs a `timeout`: without one the step waits for a reply indefinitely")
	}
	return w
}

func (p *parser) parseBranch(n *yaml.Node) []*BranchCase {
	items, ok := p.seq(n, "`branch`")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(p.pos(n), RuleSchema, "`branch` needs at least one case: `- if: <expression>` with `goto: <step>`")
	}
	var cases []*BranchCase
	var defaultAt *BranchCase
	for i, item := range items {
		ps, ok := p.mapping(item, "a branch case")
		if !ok {
			continue
		}
		p.checkKeys(ps, "a branch case", "if", "goto")
		c := &BranchCase{Pos: p.pos(item)}
		hasIf := false
		for _, kv := range ps {
			switch kv.key {
			case "if":
				hasIf, c.hasIf = true, true
				c.If = p.expr(kv.value, "`if`", exprBool)
			case "goto":
				if id, ok := p.id(kv.value, "`goto`"); ok {
					c.Goto, c.GotoPos = id, p.pos(p.resolve(kv.value))
				}
			}
		}
		if c.Goto == "" {
			p.errorf(c.Pos, RuleSchema, "branch case %d has no `goto`", i+1)
		}
		if !hasIf {
			if defaultAt != nil {
				p.errorf(c.Pos, RuleSchema, "branch has two default cases (without `if`); the first is at line %d", defaultAt.Pos.Line)
			} else if i != len(items)-1 {
				p.errorf(c.Pos, RuleSchema, "the default case (without `if`) must be the last case of the branch")
			}
			defaultAt = c
		}
		cases = append(cases, c)
	}
	return cases
}

func (p *parser) parseSet(n *yaml.Node) []*Assignment {
	ps, ok := p.mapping(n, "`set`")
	if !ok {
		return nil
	}
	if len(ps) == 0 {
		p.errorf(p.pos(n), RuleSchema, "`set` needs at least one `name: value`")
	}
	var out []*Assignment
	for _, kv := range ps {
		a := &Assignment{Pos: p.pos(kv.kNode), Name: kv.key}
		switch {
		case strings.HasPrefix(kv.key, "contact."):
			a.Contact = true
			a.Name = strings.TrimPrefix(kv.key, "contact.")
			switch a.Name {
			case "opted_in":
				p.errorf(a.Pos, RuleSchema, "`contact.opted_in` is set by `opt_in: true` / `opt_out: true` steps, which also record when and why")
				continue
			case "tags":
				p.errorf(a.Pos, RuleSchema, "`contact.tags` is changed by `tag` / `untag` steps")
				continue
			case "wa_id", "user_id", "username", "has_phone":
				p.errorf(a.Pos, RuleSchema, "`contact.%s` comes from WhatsApp and cannot be set", a.Name)
				continue
			}
			a.Name = strings.TrimPrefix(a.Name, "attributes.")
		case strings.HasPrefix(kv.key, "vars."):
			a.Name = strings.TrimPrefix(kv.key, "vars.")
		}
		if !varNameRe.MatchString(a.Name) {
			p.errorf(a.Pos, RuleSchema, "invalid name `%s` in `set`: use letters, digits and `_` (and `contact.` for contact fields)", kv.key)
			continue
		}
		a.Value = p.value(kv.value)
		if a.Value != nil {
			out = append(out, a)
		}
	}
	return out
}

// value reads a `set` value: YAML scalars keep their type; a lone ${expr} keeps the
// expression's type; other strings interpolate.
func (p *parser) value(n *yaml.Node) *Value {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(p.pos(n), RuleSchema, "a `set` value must be a single value, found %s", describeNode(n))
		return nil
	}
	if n.Tag != "!!str" {
		var v any
		if err := n.Decode(&v); err != nil {
			p.errorf(p.pos(n), RuleSchema, "invalid value: %v", err)
			return nil
		}
		if i, ok := v.(int); ok {
			v = float64(i) // one number type, like JSON and expr's float arithmetic
		}
		return &Value{Literal: v}
	}
	t := p.text(n, "a `set` value")
	if t == nil {
		return nil
	}
	if len(t.parts) == 1 && t.parts[0].expr != nil {
		return &Value{Expr: t.parts[0].expr}
	}
	if t.IsStatic() {
		return &Value{Literal: t.Literal()}
	}
	return &Value{Text: t}
}

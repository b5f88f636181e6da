package dsl

import (
	"math"

	"gopkg.in/yaml.v3"
)

// MaxSplitWeight bounds a variant's weight (whole numbers: 50/50, 1/1/1, 90/10).
const MaxSplitWeight = 1_000_000

// SplitVariant is one variant of a `split` step: a name, a weight and the step
// the runs assigned to it continue at.
type SplitVariant struct {
	Pos     Pos
	Variant string
	Weight  int
	Goto    string
	GotoPos Pos
}

func (p *parser) parseSplit(n *yaml.Node) []*SplitVariant {
	items, ok := p.seq(n, "`split`")
	if !ok {
		return nil
	}
	if len(items) < 2 {
		p.errorf(p.pos(n), RuleSchema, "`split` needs at least two variants: `- {variant: a, weight: 50, goto: <step>}`")
	}
	var out []*SplitVariant
	first := map[string]Pos{}
	for i, item := range items {
		ps, ok := p.mapping(item, "a split variant")
		if !ok {
			continue
		}
		p.checkKeys(ps, "a split variant", "variant", "weight", "goto")
		v := &SplitVariant{Pos: p.pos(item), Weight: 1}
		valid := true
		for _, kv := range ps {
			switch kv.key {
			case "variant":
				name, ok := p.str(kv.value, "`variant`")
				if !ok {
					valid = false
					continue
				}
				if !stepIDRe.MatchString(name) {
					p.errorf(p.pos(p.resolve(kv.value)), RuleSchema, "variant name %q may only use a-z, 0-9, `_` and `-`", name)
					valid = false
					continue
				}
				v.Variant = name
			case "weight":
				w, ok := p.weight(kv.value)
				v.Weight, valid = w, valid && ok
			case "goto":
				if id, ok := p.id(kv.value, "`goto`"); ok {
					v.Goto, v.GotoPos = id, p.pos(p.resolve(kv.value))
				} else {
					valid = false
				}
			}
		}
		if v.Variant == "" && valid {
			p.errorf(v.Pos, RuleSchema, "split variant %d has no `variant` name", i+1)
			valid = false
		}
		if v.Goto == "" && valid {
			p.errorf(v.Pos, RuleSchema, "split variant %d has no `goto`", i+1)
			valid = false
		}
		if !valid {
			continue
		}
		if prev, dup := first[v.Variant]; dup {
			p.errorf(v.Pos, RuleReference, "duplicate variant `%s` in `split` (first at line %d): variant names are what the report groups by", v.Variant, prev.Line)
			continue
		}
		first[v.Variant] = v.Pos
		out = append(out, v)
	}
	return out
}

// weight reads a split weight: a whole number from 1 to MaxSplitWeight.
func (p *parser) weight(n *yaml.Node) (int, bool) {
	n = p.resolve(n)
	if n == nil {
		return 0, false
	}
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		p.errorf(p.pos(n), RuleSchema, "`weight` must be a whole number from 1 to %d, found %s", MaxSplitWeight, describeNode(n))
		return 0, false
	}
	if f != math.Trunc(f) || f < 1 || f > MaxSplitWeight {
		p.errorf(p.pos(n), RuleSchema, "`weight` must be a whole number from 1 to %d, found %s", MaxSplitWeight, n.Value)
		return 0, false
	}
	return int(f), true
}

// SplitTotal is the sum of a split's weights.
func SplitTotal(vs []*SplitVariant) int {
	t := 0
	for _, v := range vs {
		t += v.Weight
	}
	return t
}

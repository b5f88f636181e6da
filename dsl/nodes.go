package dsl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxAliasNodes bounds how many nodes aliases may expand to in one file: anchors and
// aliases work, but a "billion laughs" alias bomb is refused, not expanded.
const maxAliasNodes = 10000

// parser walks yaml.v3 nodes of one file and collects diagnostics.
type parser struct {
	src        *source
	diags      []Diagnostic
	aliasSpent int
	aliasSize  map[*yaml.Node]int
	// origin maps the copy resolve makes of an alias's target back to the target.
	origin map[*yaml.Node]*yaml.Node
	flow   string // flow id, once known
	step   string // step id being parsed
}

func (p *parser) errorf(pos Pos, rule, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{Pos: pos, Severity: SevError, Rule: rule,
		Message: fmt.Sprintf(format, args...), Flow: p.flow, Step: p.step})
}

func (p *parser) pos(n *yaml.Node) Pos { return p.src.pos(n) }

// resolve follows an alias, charging its expanded size against the file's budget.
// It returns nil (after a diagnostic) when the budget is exhausted.
//
// The node returned for an alias is a shallow copy of its target placed at the
// alias: a finding about the value as a whole ("`send` must be a mapping, found
// a list") points where the value is used, while findings inside it (its keys,
// items, the characters of a string, see original) point where it is written.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	if n.Alias == nil {
		p.errorf(p.pos(n), RuleSyntax, "unknown alias `*%s`", n.Value)
		return nil
	}
	if p.aliasSpent < 0 { // already refused: stay quiet
		return nil
	}
	p.aliasSpent += p.size(n.Alias, 0)
	if p.aliasSpent > maxAliasNodes {
		p.errorf(p.pos(n), RuleSyntax, "alias `*%s` expands to too many nodes (more than %d in this file): aliases that multiply (an alias bomb) are refused", n.Value, maxAliasNodes)
		p.aliasSpent = -1
		return nil
	}
	t := p.original(n.Alias)
	c := *t
	c.Line, c.Column = n.Line, n.Column
	if p.origin == nil {
		p.origin = map[*yaml.Node]*yaml.Node{}
	}
	p.origin[&c] = t
	return &c
}

// untag reports values that YAML read as a tag: flows use no tags, so a plain
// value starting with `!` (`if: !contact.opted_in`) is almost always an
// expression whose `!` YAML took for a tag, leaving the value empty. The node
// gets its text back (tag and value) so the checks after this one see the
// expression as meant; the error asks to quote it.
func (p *parser) untag(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") && n.Style&yaml.TaggedStyle != 0 {
		text := n.Tag
		if n.Value != "" {
			text += " " + n.Value
		}
		p.errorf(p.pos(n), RuleSyntax, "YAML reads a value starting with `!` as a tag, so `%s` is not part of the value: quote the whole value: %s", n.Tag, strconv.Quote(text))
		n.Tag, n.Value, n.Style = "!!str", text, n.Style&^yaml.TaggedStyle
		return
	}
	for _, c := range n.Content {
		p.untag(c, seen)
	}
}

// original undoes resolve's copy: the node as written in the file.
func (p *parser) original(n *yaml.Node) *yaml.Node {
	if o, ok := p.origin[n]; ok {
		return o
	}
	return n
}

// size counts the nodes a subtree expands to, following aliases, saturating early.
func (p *parser) size(n *yaml.Node, depth int) int {
	if n == nil || depth > 100 {
		return 1
	}
	if s, ok := p.aliasSize[n]; ok {
		return s
	}
	s := 1
	if n.Kind == yaml.AliasNode {
		s = p.size(n.Alias, depth+1)
	} else {
		for _, c := range n.Content {
			s += p.size(c, depth+1)
			if s > 10*maxAliasNodes {
				break
			}
		}
	}
	if p.aliasSize == nil {
		p.aliasSize = map[*yaml.Node]int{}
	}
	p.aliasSize[n] = s
	return s
}

// pair is one key/value of a mapping.
type pair struct {
	key   string
	kNode *yaml.Node
	value *yaml.Node
}

// mapping returns the pairs of a mapping node, with merge keys (`<<: *base`)
// expanded and duplicate keys reported. what names the mapping for messages.
func (p *parser) mapping(n *yaml.Node, what string) ([]pair, bool) {
	n = p.resolve(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(p.pos(n), RuleSchema, "%s must be a mapping (key: value), found %s", what, describeNode(n))
		return nil, false
	}
	var out []pair
	seen := map[string]*yaml.Node{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, p.mergeSource(v, what)...)
			continue
		}
		k = p.resolve(k)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errorf(p.pos(k), RuleSchema, "keys of %s must be plain names, found %s", what, describeNode(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(p.pos(k), RuleSyntax, "duplicate key `%s` in %s (first at line %d)", k.Value, what, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k.Value, k, v})
	}
	for _, m := range merged {
		if _, ok := seen[m.key]; !ok {
			seen[m.key] = m.kNode
			out = append(out, m)
		}
	}
	return out, true
}

func (p *parser) mergeSource(v *yaml.Node, what string) []pair {
	v = p.resolve(v)
	if v == nil {
		return nil
	}
	if v.Kind == yaml.SequenceNode {
		var out []pair
		for _, c := range v.Content {
			out = append(out, p.mergeSource(c, what)...)
		}
		return out
	}
	ps, _ := p.mapping(v, "a merged mapping")
	return ps
}

// checkKeys reports keys outside allowed, suggesting the nearest valid one.
func (p *parser) checkKeys(ps []pair, what string, allowed ...string) {
	for _, kv := range ps {
		if !contains(allowed, kv.key) {
			sorted := append([]string(nil), allowed...)
			sort.Strings(sorted)
			p.errorf(p.pos(kv.kNode), RuleSchema, "unknown key `%s` in %s%s (valid keys: %s)",
				kv.key, what, didYouMean(kv.key, allowed), strings.Join(sorted, ", "))
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		}
		return fmt.Sprintf("the string %q", truncate(n.Value, 40))
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// scalar returns a scalar's value; a mapping, list or null is a schema error.
func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	n = p.resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(p.pos(n), RuleSchema, "%s must be a single value, found %s", what, describeNode(n))
		return "", false
	}
	return n.Value, true
}

// str is scalar restricted to strings (numbers are accepted as their text).
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	n = p.resolve(n)
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		p.errorf(p.pos(n), RuleSchema, "%s must be a string, found %s (quote it)", what, describeNode(n))
		return "", false
	}
	return p.scalar(n, what)
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	n = p.resolve(n)
	if n == nil {
		return false, false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(p.pos(n), RuleSchema, "%s must be true or false, found %s", what, describeNode(n))
		return false, false
	}
	var b bool
	_ = n.Decode(&b)
	return b, true
}

// id reads a required, non-empty reference (a step or flow id, a template name).
func (p *parser) id(n *yaml.Node, what string) (string, bool) {
	s, ok := p.str(n, what)
	if ok && strings.TrimSpace(s) == "" {
		p.errorf(p.pos(p.resolve(n)), RuleSchema, "%s is empty", what)
		return "", false
	}
	return s, ok
}

// strList reads a list of strings; a single string is accepted as a list of one.
func (p *parser) strList(n *yaml.Node, what string) ([]string, []*yaml.Node) {
	n = p.resolve(n)
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		s, ok := p.str(n, what)
		if !ok {
			return nil, nil
		}
		return []string{s}, []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(p.pos(n), RuleSchema, "%s must be a list, found %s", what, describeNode(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for _, c := range n.Content {
		c = p.resolve(c)
		if c == nil {
			continue
		}
		if s, ok := p.str(c, "each entry of "+what); ok {
			out = append(out, s)
			nodes = append(nodes, c)
		}
	}
	return out, nodes
}

// seq returns the items of a list node.
func (p *parser) seq(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = p.resolve(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(p.pos(n), RuleSchema, "%s must be a list, found %s", what, describeNode(n))
		return nil, false
	}
	var out []*yaml.Node
	for _, c := range n.Content {
		if c = p.resolve(c); c != nil {
			out = append(out, c)
		}
	}
	return out, true
}

// text compiles a string value with its ${…} interpolations, positions exact.
func (p *parser) text(n *yaml.Node, what string) *Text {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	s, ok := p.str(n, what)
	if !ok {
		return nil
	}
	base := p.pos(n)
	t, diags := parseText(s, base, p.positionsOf(n, base))
	p.addDiags(diags)
	return t
}

// positionsOf returns, for a scalar, the function from a rune offset of its value
// (0 to its length) to the source position, computed when first needed; other
// offsets map to base. A single-line scalar written as is (no escapes, no
// folding: most of them) needs no alignment.
func (p *parser) positionsOf(n *yaml.Node, base Pos) func(int) Pos {
	var (
		done      bool
		start     Pos
		verbatim  bool
		runes     int
		positions []Pos
	)
	return func(i int) Pos {
		if !done {
			done = true
			start, runes, verbatim = p.src.verbatimStart(p.original(n))
			if !verbatim {
				positions = p.src.scalarPositions(p.original(n))
				runes = len(positions) - 1
			}
		}
		if i < 0 || i > runes {
			return base
		}
		if verbatim {
			return Pos{File: start.File, Line: start.Line, Col: start.Col + i}
		}
		return positions[i]
	}
}

// expr compiles a bare expression (if:, audience:).
func (p *parser) expr(n *yaml.Node, what string, kind exprKind) *Expr {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	s, ok := p.scalar(n, what)
	if !ok {
		return nil
	}
	e, d := compileExpr(s, kind, p.positionsOf(n, p.pos(n)))
	if d != nil {
		p.addDiags([]Diagnostic{*d})
		return nil
	}
	return e
}

func (p *parser) addDiags(ds []Diagnostic) {
	for _, d := range ds {
		d.Flow, d.Step = p.flow, p.step
		p.diags = append(p.diags, d)
	}
}

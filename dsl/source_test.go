package dsl

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// valueNode parses a one-key document `v: …` and returns the value node.
func valueNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad test input: %v\n%s", err, src)
	}
	var find func(n *yaml.Node) *yaml.Node
	find = func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "v" {
					return n.Content[i+1]
				}
			}
		}
		for _, c := range n.Content {
			if v := find(c); v != nil {
				return v
			}
		}
		return nil
	}
	v := find(&doc)
	if v == nil {
		t.Fatalf("no key v in\n%s", src)
	}
	return v
}

// markers returns the source positions of every occurrence of marker in src, in
// order, with columns in runes: the oracle scalarPositions is compared with.
func markers(src, marker string) []Pos {
	var out []Pos
	src = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(src)
	for i, line := range strings.Split(src, "\n") {
		r := []rune(line)
		m := []rune(marker)
		for j := 0; j+len(m) <= len(r); j++ {
			if string(r[j:j+len(m)]) == marker {
				out = append(out, Pos{File: "f.yaml", Line: i + 1, Col: j + 1})
			}
		}
	}
	return out
}

// TestScalarPositions checks, for scalars of every style, that each `§` of the
// decoded value maps to the place of the matching `§` in the source (the k-th in
// the value to the k-th in the source: escapes never produce one), and that every
// other visible character maps to a source position holding that character.
func TestScalarPositions(t *testing.T) {
	cases := []struct{ name, src string }{
		{"plain", "v: a § b §\n"},
		{"plain multi-line", "v: first § line\n  second §\n      third, indented more §\n"},
		{"plain multi-byte", "v: Olá ção 😀 § 你好 §\n"},
		{"double-quoted", `v: "§ tab\t quote\" é\u00e9 \x41 \U0001F600 §"` + "\n"},
		{"double-quoted multi-line", "v: \"first §\n  second § line\n\n  after a blank §\"\n"},
		{"double-quoted escaped line break", "v: \"joined\\\n  § here §\"\n"},
		{"single-quoted", "v: 'it''s § ''quoted'' §'\n"},
		{"single-quoted multi-line", "v: 'one §\n   two '' §'\n"},
		{"literal", "v: |\n  line §\n    more indented §\n  last §\n"},
		{"literal keep", "v: |+\n  line §\n\n\n"},
		{"literal strip with comment", "v: |- # comment\n  § line\n  §\n"},
		{"literal leading blank lines", "v: |\n\n\n  after blanks §\n"},
		{"literal indentation indicator", "v: |2\n    two extra §\n  base §\n"},
		{"literal indicator and chomping", "v: |-1\n  one extra §\n §\n"},
		{"literal tab in content", "v: |\n  plain §\n  \tafter a tab §\n"},
		{"folded", "v: >\n  folded §\n  into one §\n\n  new paragraph §\n"},
		{"folded more indented", "v: >\n  normal §\n    more indented §\n  normal again §\n"},
		{"folded multi-byte", "v: >-\n  Olá ção ✓ §\n  中文 §\n"},
		{"nested in a sequence", "- id: x\n  v: |\n    in a list §\n    second §\n"},
		{"deep", "a:\n  b:\n    v: >\n      deep §\n      deeper §\n"},
		{"flow mapping", "x: {v: \"in flow §\", w: 1}\nv: {§: 1}\n"},
		{"crlf", "v: |\r\n  line §\r\n  next §\r\n"},
		{"crlf quoted", "v: \"a §\r\n  b §\"\r\n"},
		{"cr only", "x: 1\rv: |\r  line §\r  next §\r"},
		{"line separator in double quotes", "v: \"a §\u2028b §\"\nw: 1\n"},
		{"next line in a literal", "v: |\n  a §\u0085  b §\n"},
		{"paragraph separator before", "x: 1\u2029v: \"§\"\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := valueNode(t, c.src)
			if c.name == "flow mapping" { // the key v at top level holds a mapping; test the first one
				var doc yaml.Node
				_ = yaml.Unmarshal([]byte(c.src), &doc)
				n = doc.Content[0].Content[1].Content[1]
			}
			s := &source{name: "f.yaml", data: []byte(c.src)}
			ps := s.scalarPositions(n)
			val := []rune(n.Value)
			if len(ps) != len(val)+1 {
				t.Fatalf("%d positions for %d runes", len(ps), len(val))
			}
			want := markers(c.src, "§")
			if c.name == "flow mapping" {
				want = want[:1]
			}
			var got []Pos
			for i, r := range val {
				if r == '§' {
					got = append(got, ps[i])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("value %q: %d markers, source has %d", n.Value, len(got), len(want))
			}
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("marker %d of %q: at %v, want %v", k+1, n.Value, got[k], want[k])
				}
			}
			lines := s.lineRunes()
			prev := Pos{Line: 0}
			for i, r := range val {
				p := ps[i]
				if p.Line < 1 || p.Line > len(lines) || p.Col < 1 || p.Col > len(lines[p.Line-1])+1 {
					t.Errorf("rune %d %q: position %v outside the source", i, r, p)
					continue
				}
				if p.Line < prev.Line || p.Line == prev.Line && p.Col < prev.Col {
					t.Errorf("rune %d %q: position %v before the previous rune's %v", i, r, p, prev)
				}
				prev = p
				if r == '\n' || r == ' ' || r == '\t' || r > 0xffff || r == 'é' || r == 'A' {
					continue // line breaks, folded spaces and escapes have no rune of their own
				}
				if p.Col <= len(lines[p.Line-1]) {
					if got := lines[p.Line-1][p.Col-1]; got != r && !(got == '\\' && n.Style == yaml.DoubleQuotedStyle) {
						t.Errorf("rune %d %q of %q: source has %q at %v", i, r, n.Value, got, p)
					}
				}
			}
		})
	}
}

// TestScalarPositionsPastEnd: positions never point outside the file, even for a
// node whose value does not match the source (a hand-built or aliased node).
func TestScalarPositionsPastEnd(t *testing.T) {
	src := "v: short\n"
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: "a much longer value than the file holds\nwith lines", Line: 1, Column: 4}
	s := &source{name: "f.yaml", data: []byte(src)}
	for i, p := range s.scalarPositions(n) {
		if p.Line < 1 || p.Line > 2 || p.Col < 1 {
			t.Fatalf("rune %d: invalid position %v", i, p)
		}
	}
	for _, style := range []yaml.Style{yaml.LiteralStyle, yaml.FoldedStyle, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle} {
		n := &yaml.Node{Kind: yaml.ScalarNode, Style: style, Value: "x\ny\nz", Line: 5, Column: 1}
		for i, p := range s.scalarPositions(n) {
			if !p.IsValid() || p.Line > 5 {
				t.Fatalf("style %v rune %d: invalid position %v", style, i, p)
			}
		}
	}
}

func TestRuneIndex(t *testing.T) {
	s := "aé😀b"
	for byteOff, want := range map[int]int{0: 0, 1: 1, 3: 2, 7: 3, 8: 4} {
		if got := runeIndex(s, byteOff); got != want {
			t.Errorf("runeIndex(%q, %d) = %d, want %d", s, byteOff, got, want)
		}
	}
}

// TestLineCount: the byte count of lines agrees with lineRunes, for every kind
// of line break and for invalid UTF-8.
func TestLineCount(t *testing.T) {
	for _, s := range []string{"", "a", "a\n", "a\nb", "a\r\nb\r\n", "a\rb\rc", "\r", "\r\n", "\n\r",
		"a\u0085b", "a\u2028b\u2029c", "\xc2", "\xe2\x80", "\xe2\x80\xa8", "x\xffy\n", "é\n😀\r\n"} {
		src := &source{data: []byte(s)}
		all := (&source{data: []byte(s)}).lineRunes()
		if got, want := src.lineCount(), len(all); got != want {
			t.Errorf("%q: lineCount %d, lineRunes %d", s, got, want)
			continue
		}
		for i := len(all) - 1; i >= 0; i-- {
			if got := string(src.lineAt(i)); got != string(all[i]) {
				t.Errorf("%q line %d: lineAt %q, lineRunes %q", s, i, got, string(all[i]))
			}
		}
	}
}

// checkVerbatim: where verbatimStart takes its shortcut, it agrees with the full
// alignment of scalarPositions, rune for rune.
func checkVerbatim(t *testing.T, s *source, n *yaml.Node) {
	t.Helper()
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode {
		start, runes, ok := s.verbatimStart(n)
		if ok {
			full := s.scalarPositions(n)
			if runes != len(full)-1 {
				t.Fatalf("%q: %d runes, scalarPositions has %d", n.Value, runes, len(full)-1)
			}
			for i := 0; i <= runes; i++ {
				if got := (Pos{File: start.File, Line: start.Line, Col: start.Col + i}); got != full[i] {
					t.Fatalf("%q rune %d: verbatim %v, aligned %v", n.Value, i, got, full[i])
				}
			}
		}
	}
	for _, c := range n.Content {
		checkVerbatim(t, s, c)
	}
}

func TestVerbatimStart(t *testing.T) {
	for _, src := range []string{
		"v: plain text\n",
		"v: \"quoted text\"\n",
		"v: 'single quoted'\n",
		"v: \"with \\\"escapes\\\"\"\n",
		"v: 'it''s'\n",
		"v: {a: \"x\", b: y, c: 'z'}\n",
		"- [a, \"b\", 'c', é😀]\n",
		"v: Olá ção 😀 ${contact.name}\n",
		"v: |\n  block\n",
		"v: plain\n  continued\n",
		"a: 1\r\nv: crlf\r\n",
		"a: 1\rv: cr\r",
		"v: \"a\u2028b\"\n",
		"k: 'x' # comment\nv:   spaced   \n",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		checkVerbatim(t, &source{name: "f.yaml", data: []byte(src)}, &doc)
	}
	// The shortcut is taken where it should be.
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte("v: \"Hi ${contact.name}\"\n"), &doc)
	s := &source{name: "f.yaml", data: []byte("v: \"Hi ${contact.name}\"\n")}
	if start, runes, ok := s.verbatimStart(doc.Content[0].Content[1]); !ok || start.Col != 5 || runes != 18 {
		t.Errorf("verbatimStart: %v %d %v", start, runes, ok)
	}
}

package dsl

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source is one file being parsed: its name, bytes, and (lazily) its lines as runes.
type source struct {
	name  string
	data  []byte
	lines [][]rune
}

func (s *source) lineRunes() [][]rune {
	if s.lines == nil {
		for _, l := range strings.Split(string(s.data), "\n") {
			s.lines = append(s.lines, []rune(strings.TrimSuffix(l, "\r")))
		}
	}
	return s.lines
}

func (s *source) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: s.name, Line: 1, Col: 1}
	}
	return Pos{File: s.name, Line: n.Line, Col: n.Column}
}

// scalarPositions returns the source position of every rune of a scalar's value,
// including inside quoted, multi-line and block (| and >) scalars. It aligns the
// decoded value with the raw text greedily: escapes, quotes, indentation and folded
// line breaks are skipped or matched as YAML defines them. When the alignment runs
// past the end of the file the remaining runes take the last known position.
func (s *source) scalarPositions(n *yaml.Node) []Pos {
	val := []rune(n.Value)
	out := make([]Pos, len(val)+1) // +1: the position just after the value
	lines := s.lineRunes()
	line, col := n.Line-1, n.Column-1
	block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	indent := 0
	leading := func(l []rune) int {
		i := 0
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		return i
	}
	nextLine := func() {
		line++
		col = 0
		if line < len(lines) {
			if block {
				col = min(indent, leading(lines[line]))
			} else {
				col = leading(lines[line])
			}
		}
	}
	switch {
	case dq || sq:
		col++
	case block:
		// The content's indentation: that of its first non-blank line, less the
		// leading white space the value keeps there (an indentation indicator,
		// `|2`, lets the first line be more indented than the rest, and a tab
		// after the indentation is content).
		for l := line + 1; l < len(lines); l++ {
			if strings.TrimSpace(string(lines[l])) != "" {
				indent = leading(lines[l])
				for _, vl := range strings.Split(n.Value, "\n") {
					if strings.TrimSpace(vl) != "" {
						indent = max(indent-leading([]rune(vl)), 0)
						break
					}
				}
				break
			}
		}
		col = len(lines[min(line, len(lines)-1)])
		nextLine()
	}
	last := s.pos(n)
	budget := len(s.data) + 16
	for i := 0; i <= len(val); i++ {
		if line >= len(lines) {
			out[i] = last
			continue
		}
		if i == len(val) {
			out[i] = Pos{File: s.name, Line: line + 1, Col: col + 1}
			break
		}
		v := val[i]
		for budget > 0 {
			budget--
			if line >= len(lines) {
				out[i] = last
				break
			}
			cur := lines[line]
			here := Pos{File: s.name, Line: line + 1, Col: col + 1}
			if col >= len(cur) {
				if v == '\n' || v == ' ' {
					out[i] = here
					nextLine()
					break
				}
				nextLine()
				continue
			}
			c := cur[col]
			if dq && c == '\\' && col+1 < len(cur) {
				out[i] = here
				switch cur[col+1] {
				case 'x':
					col += 4
				case 'u':
					col += 6
				case 'U':
					col += 10
				default:
					col += 2
				}
				break
			}
			if sq && c == '\'' && col+1 < len(cur) && cur[col+1] == '\'' {
				out[i] = here
				col += 2
				break
			}
			if c == v {
				out[i] = here
				col++
				break
			}
			col++
		}
		last = out[i]
	}
	return out
}

// runeIndex converts a byte offset in s to a rune offset.
func runeIndex(s string, byteOff int) int {
	return utf8.RuneCountInString(s[:byteOff])
}

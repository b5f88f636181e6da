package dsl

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source is one file being parsed: its name, bytes, and (lazily) its lines as runes.
type source struct {
	name   string
	data   []byte
	lines  [][]rune
	starts []int // byte offset of each line, once computed (lineStarts)
	// one and oneDone cache lines converted one at a time (lineAt).
	one     [][]rune
	oneDone []bool
}

// lineAt is lineRunes()[i], converting only that line: aligning one scalar need
// not convert the whole file.
func (s *source) lineAt(i int) []rune {
	if s.lines != nil {
		return s.lines[i]
	}
	starts := s.lineStarts()
	if s.one == nil {
		s.one = make([][]rune, len(starts))
		s.oneDone = make([]bool, len(starts))
	}
	if !s.oneDone[i] {
		end := len(s.data)
		if i+1 < len(starts) {
			end = starts[i+1] - breakLen(s.data, starts[i+1])
		}
		s.one[i] = []rune(string(s.data[starts[i]:end]))
		s.oneDone[i] = true
	}
	return s.one[i]
}

// breakLen is the length in bytes of the line break that ends just before d[k].
func breakLen(d []byte, k int) int {
	switch {
	case k >= 2 && d[k-2] == '\r' && d[k-1] == '\n':
		return 2
	case d[k-1] == '\n' || d[k-1] == '\r':
		return 1
	case k >= 2 && d[k-2] == 0xc2 && d[k-1] == 0x85:
		return 2
	}
	return 3 // LS, PS
}

// lineCount is len(lineRunes()), counted on the bytes (cheaper: most files never
// need their lines as runes).
func (s *source) lineCount() int { return len(s.lineStarts()) }

// lineStarts is the byte offset where each line starts, with the breaks of
// lineRunes.
func (s *source) lineStarts() []int {
	if s.starts == nil {
		d := s.data
		s.starts = append(make([]int, 0, 64), 0)
		for i := 0; i < len(d); i++ {
			switch {
			case d[i] == '\n':
				s.starts = append(s.starts, i+1)
			case d[i] == '\r' && (i+1 == len(d) || d[i+1] != '\n'):
				s.starts = append(s.starts, i+1)
			case d[i] == 0xc2 && i+1 < len(d) && d[i+1] == 0x85: // NEL
				s.starts = append(s.starts, i+2)
			case d[i] == 0xe2 && i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xa8 || d[i+2] == 0xa9): // LS, PS
				s.starts = append(s.starts, i+3)
			}
		}
	}
	return s.starts
}

// verbatimStart reports whether a scalar sits on one line exactly as its value
// reads (plain, or quoted without escapes), so that rune i of the value is at
// column start.Col+i; it also returns the value's length in runes.
func (s *source) verbatimStart(n *yaml.Node) (start Pos, runes int, ok bool) {
	v := n.Value
	if n.Kind != yaml.ScalarNode || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
		strings.ContainsAny(v, "\n\r\u0085\u2028\u2029") {
		return Pos{}, 0, false
	}
	starts := s.lineStarts()
	if n.Line < 1 || n.Line > len(starts) || n.Column < 1 {
		return Pos{}, 0, false
	}
	col := n.Column
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		col++
	}
	off := starts[n.Line-1]
	for k := 1; k < col; k++ {
		if off >= len(s.data) {
			return Pos{}, 0, false
		}
		r, size := utf8.DecodeRune(s.data[off:])
		if isLineBreak(r) {
			return Pos{}, 0, false
		}
		off += size
	}
	if len(s.data)-off < len(v) || string(s.data[off:off+len(v)]) != v {
		return Pos{}, 0, false
	}
	return Pos{File: s.name, Line: n.Line, Col: col}, utf8.RuneCountInString(v), true
}

// Lines are split where yaml.v3 splits them, so that its line numbers index them:
// at \n, \r\n, a lone \r, and the Unicode breaks NEL, LS and PS.
func (s *source) lineRunes() [][]rune {
	if s.lines == nil {
		rs := []rune(string(s.data))
		start := 0
		for i := 0; i < len(rs); i++ {
			if !isLineBreak(rs[i]) {
				continue
			}
			s.lines = append(s.lines, rs[start:i:i])
			if rs[i] == '\r' && i+1 < len(rs) && rs[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
		s.lines = append(s.lines, rs[start:])
	}
	return s.lines
}

// isLineBreak reports the characters YAML (as yaml.v3 reads it) breaks lines at.
func isLineBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029
}

// pos is a node's position. yaml.v3 places an empty node at the very end of a
// file on the line after the last one; such positions are clamped into the file.
func (s *source) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: s.name, Line: 1, Col: 1}
	}
	p := Pos{File: s.name, Line: n.Line, Col: n.Column}
	if p.Line > s.lineCount() {
		p.Line = s.lineCount()
		p.Col = len(s.lineAt(p.Line-1)) + 1
	}
	return p
}

// scalarPositions returns the source position of every rune of a scalar's value,
// including inside quoted, multi-line and block (| and >) scalars. It aligns the
// decoded value with the raw text greedily: escapes, quotes, indentation and folded
// line breaks are skipped or matched as YAML defines them. When the alignment runs
// past the end of the file the remaining runes take the last known position.
func (s *source) scalarPositions(n *yaml.Node) []Pos {
	val := []rune(n.Value)
	out := make([]Pos, len(val)+1) // +1: the position just after the value
	nLines := s.lineCount()
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
		if line < nLines {
			if block {
				col = min(indent, leading(s.lineAt(line)))
			} else {
				col = leading(s.lineAt(line))
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
		for l := line + 1; l < nLines; l++ {
			if strings.TrimSpace(string(s.lineAt(l))) != "" {
				indent = leading(s.lineAt(l))
				for _, vl := range strings.Split(n.Value, "\n") {
					if strings.TrimSpace(vl) != "" {
						indent = max(indent-leading([]rune(vl)), 0)
						break
					}
				}
				break
			}
		}
		col = len(s.lineAt(min(line, nLines-1)))
		nextLine()
	}
	last := s.pos(n)
	budget := len(s.data) + 16
	for i := 0; i <= len(val); i++ {
		if line >= nLines {
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
			if line >= nLines {
				out[i] = last
				break
			}
			cur := s.lineAt(line)
			here := Pos{File: s.name, Line: line + 1, Col: col + 1}
			if col >= len(cur) {
				if v == ' ' || isLineBreak(v) {
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

package dsl

import (
	"fmt"
	"html"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteSVG draws a flow as the Mermaid diagram of WriteGraph does (the same
// nodes, edges and labels, template-only steps in red), laid out without a
// JavaScript renderer: steps in one column in file order, the edge to the next
// step straight down, every other edge routed in its own lane on the right.
// Steps named in current are highlighted (where a contact's runs are). Every
// text is escaped: the SVG can be inlined in a page.
func (p *Project) WriteSVG(w io.Writer, f *Flow, current map[string]bool) {
	g := &graphWriter{p: p, f: f, ids: map[*Step]string{}}
	for i, s := range f.Steps {
		g.ids[s] = fmt.Sprintf("s%d_%s", i, sanitizeID(s.ID))
	}
	type node struct {
		id, shape string
		lines     []string
		y, h      int
		red, here bool
	}
	const (
		x0, width, lineH, pad, gap, lane = 16, 250, 15, 8, 26, 20
		maxChars                         = 36
	)
	var nodes []*node
	row := map[string]*node{}
	add := func(n *node) {
		nodes = append(nodes, n)
		row[n.id] = n
	}
	add(&node{id: "entry", shape: "pill", lines: []string{"trigger: " + string(f.Trigger.Kind)}})
	for _, s := range f.Steps {
		shape := "box"
		switch s.Kind {
		case ActBranch, ActSplit:
			shape = "branch"
		case ActWait, ActWaitForReply:
			shape = "round"
		}
		add(&node{id: g.ids[s], shape: shape, lines: strings.Split(g.nodeLabel(s), "\n"), red: g.templateOnly(s), here: current[s.ID]})
	}
	ls, needEnd := g.links()
	for _, l := range ls {
		if l.toFlow != nil && row[l.to] == nil {
			add(&node{id: l.to, shape: "flow", lines: []string{"flow " + l.toFlow.ID}})
		}
	}
	if needEnd {
		add(&node{id: "stop", shape: "pill", lines: []string{"end"}})
	}
	y := 12
	index := map[*node]int{}
	for i, n := range nodes {
		for j, l := range n.lines {
			if utf8.RuneCountInString(l) > maxChars {
				n.lines[j] = string([]rune(l)[:maxChars-1]) + "…"
			}
		}
		n.y, n.h = y, len(n.lines)*lineH+2*pad
		y += n.h + gap
		index[n] = i
	}
	type edge struct {
		from, to *node
		label    string
		dashed   bool
		lane     int
	}
	var edges []*edge
	if len(f.Steps) > 0 {
		edges = append(edges, &edge{from: row["entry"], to: row[g.ids[f.Steps[0]]], lane: -1})
	}
	lanes, labelW := 0, 0
	for _, l := range ls {
		e := &edge{from: row[l.from], to: row[l.to], lane: -1}
		if e.from == nil || e.to == nil {
			continue
		}
		if l.e != nil {
			e.label = g.edgeLabel(*l.e)
			e.dashed = l.e.Kind == EdgeTimeout
		}
		if index[e.to] != index[e.from]+1 {
			e.lane = lanes
			lanes++
			labelW = max(labelW, utf8.RuneCountInString(e.label)*6+8)
		}
		edges = append(edges, e)
	}
	right := x0 + width
	total := right + 24 + lanes*lane + min(labelW, 240) + 8
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" viewBox="0 0 %d %d" width="%d" height="%d" font-family="system-ui, sans-serif" font-size="12" role="img" aria-label="flow %s">`,
		total, y, total, y, html.EscapeString(f.ID))
	fmt.Fprint(w, `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	for _, e := range edges {
		dash := ""
		if e.dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		if e.lane < 0 {
			cx := x0 + width/2
			fmt.Fprintf(w, `<path d="M%d,%d L%d,%d" stroke="#555" fill="none" marker-end="url(#arrow)"%s/>`, cx, e.from.y+e.from.h, cx, e.to.y-2, dash)
			if e.label != "" {
				fmt.Fprintf(w, `<text x="%d" y="%d" fill="#333">%s</text>`, cx+8, e.from.y+e.from.h+gap/2+4, html.EscapeString(e.label))
			}
			continue
		}
		lx := right + 24 + e.lane*lane
		ya, yb := e.from.y+e.from.h/2, e.to.y+e.to.h/2-6
		fmt.Fprintf(w, `<path d="M%d,%d L%d,%d L%d,%d L%d,%d" stroke="#555" fill="none" marker-end="url(#arrow)"%s/>`,
			right, ya, lx, ya, lx, yb, right+2, yb, dash)
		if e.label != "" {
			fmt.Fprintf(w, `<text x="%d" y="%d" fill="#333">%s</text>`, lx+4, (ya+yb)/2+4, html.EscapeString(e.label))
		}
	}
	for _, n := range nodes {
		fill, stroke, sw := "#ffffff", "#888888", 1
		if n.red {
			fill, stroke, sw = "#fde2e2", "#c0392b", 2
		}
		if n.here {
			fill, stroke, sw = "#d6eaff", "#1565c0", 4
		}
		rx := 4
		switch n.shape {
		case "pill":
			rx, fill = n.h/2, "#eeeeee"
		case "round":
			rx = 14
		case "flow":
			fill = "#f3e8fd"
		}
		class := "node"
		if n.here {
			class += " current"
		}
		fmt.Fprintf(w, `<g class="%s" data-node="%s">`, class, html.EscapeString(n.id))
		if n.shape == "branch" {
			fmt.Fprintf(w, `<path d="M%d,%d L%d,%d L%d,%d L%d,%d L%d,%d L%d,%d Z" fill="%s" stroke="%s" stroke-width="%d"/>`,
				x0+12, n.y, right-12, n.y, right, n.y+n.h/2, right-12, n.y+n.h, x0+12, n.y+n.h, x0, n.y+n.h/2, fill, stroke, sw)
		} else {
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" rx="%d" fill="%s" stroke="%s" stroke-width="%d"/>`,
				x0, n.y, width, n.h, rx, fill, stroke, sw)
		}
		for i, l := range n.lines {
			weight := ""
			if i == 0 {
				weight = ` font-weight="600"`
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle"%s>%s</text>`, x0+width/2, n.y+pad+(i+1)*lineH-3, weight, html.EscapeString(l))
		}
		if n.here {
			fmt.Fprintf(w, `<text x="%d" y="%d" fill="#1565c0" font-weight="700">▶</text>`, x0-13, n.y+n.h/2+4)
		}
		fmt.Fprint(w, `</g>`)
	}
	fmt.Fprint(w, `</svg>`)
}

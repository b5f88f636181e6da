package dsl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Describe says what a step does, in a few words a marketer can read.
func (s *Step) Describe() string {
	switch s.Kind {
	case ActSend:
		if s.Send == nil {
			return "send"
		}
		d := "send " + s.Send.Describe()
		if s.Send.Fallback != nil {
			d += " (fallback " + s.Send.Fallback.Name + ")"
		}
		return d
	case ActWait:
		if s.Wait == nil {
			return "wait"
		}
		switch {
		case s.Wait.At != nil && s.Wait.For > 0:
			return "wait " + FormatDuration(s.Wait.For) + ", then until " + s.Wait.At.String()
		case s.Wait.At != nil:
			return "wait until " + s.Wait.At.String()
		}
		return "wait " + FormatDuration(s.Wait.For)
	case ActWaitForReply:
		w := s.WaitForReply
		switch {
		case w == nil || w.Timeout == 0:
			return "wait for a reply"
		case w.OnTimeout != "":
			return "wait for a reply (" + FormatDuration(w.Timeout) + ", else " + w.OnTimeout + ")"
		}
		return "wait for a reply (" + FormatDuration(w.Timeout) + ", else end)"
	case ActBranch:
		return fmt.Sprintf("branch (%d case%s)", len(s.Branch), plural(len(s.Branch)))
	case ActSplit:
		total := SplitTotal(s.Split)
		var vs []string
		for _, v := range s.Split {
			vs = append(vs, v.Variant+" "+percent(v.Weight, total))
		}
		return "split: " + strings.Join(vs, ", ")
	case ActConvert:
		if s.Convert == nil {
			return "convert"
		}
		if s.Convert.Value != nil {
			return "convert " + s.Convert.Event + " (" + s.Convert.Currency + ")"
		}
		return "convert " + s.Convert.Event
	case ActSet:
		var names []string
		for _, a := range s.Set {
			if a.Contact {
				names = append(names, "contact."+a.Name)
			} else {
				names = append(names, a.Name)
			}
		}
		return "set " + strings.Join(names, ", ")
	case ActTag, ActUntag:
		return string(s.Kind) + " " + strings.Join(s.Tags, ", ")
	case ActOptIn:
		return "record opt-in"
	case ActOptOut:
		return "record opt-out"
	case ActStartFlow:
		return "start flow " + s.Target
	case ActGoto:
		return "go to " + s.Target
	case ActEnd:
		return "end (" + s.EndReason + ")"
	}
	return string(s.Kind)
}

// StepBudget is one row of `funnel explain`.
type StepBudget struct {
	Step    string `json:"step"`
	Does    string `json:"does"`
	Reached bool   `json:"reached"`
	// Worst is the worst-case time since the contact's last message, as text
	// ("0s", "76h", "23h28m50s + 12s pacing", "unbounded"); WorstSeconds (pacing
	// included) is -1 when unbounded.
	Worst        string `json:"worst_case"`
	WorstSeconds int64  `json:"worst_case_seconds"`
	MaySend      string `json:"may_send"` // anything | anything (window closing) | template only
}

// Budgets computes explain's table for one flow from the last Check.
func (p *Project) Budgets(f *Flow, margin time.Duration) []StepBudget {
	if margin == 0 {
		margin = DefaultMargin
	}
	var rows []StepBudget
	for _, s := range f.Steps {
		b := p.Analysis.Budget(s)
		r := StepBudget{Step: s.ID, Does: s.Describe(), Reached: b.Reached}
		switch {
		case !b.Reached:
			r.Worst, r.WorstSeconds, r.MaySend = "never reached", 0, "-"
		case b.Inf:
			r.Worst, r.WorstSeconds, r.MaySend = "unbounded", -1, "template only"
		default:
			r.Worst, r.WorstSeconds = b.String(), int64(b.Sent()/time.Second)
			switch {
			case b.Sent() >= SendDeadline:
				r.MaySend = "template only"
			case margin > 0 && b.Sent() >= SendDeadline-margin:
				r.MaySend = "anything (window closing)"
			default:
				r.MaySend = "anything"
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// WriteExplain writes the window budget of a flow as a table (format text) or JSON.
func (p *Project) WriteExplain(w io.Writer, f *Flow, format string, margin time.Duration) error {
	rows := p.Budgets(f, margin)
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"flow": f.ID, "file": f.File, "trigger": f.Trigger.Kind, "steps": rows})
	}
	fmt.Fprintf(w, "flow %s (%s)\n", f.ID, f.File)
	if f.Trigger.Kind.UserInitiated() {
		fmt.Fprintf(w, "trigger: %s: the contact writes first, so the window is open at entry\n", f.Trigger.Kind)
	} else if f.Trigger.Kind != "" {
		fmt.Fprintf(w, "trigger: %s: started by the business, so the window may be closed at entry\n", f.Trigger.Kind)
	}
	if q := f.QuietHours; q != nil {
		zone := "the contact's time zone"
		if q.Timezone != "contact" {
			zone = q.Timezone
		}
		fmt.Fprintf(w, "quiet hours: %s–%s in %s (a wait ending then is pushed to %s)\n", q.From, q.To, zone, q.To)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tDOES\tSINCE LAST MESSAGE\tMAY SEND")
	for _, r := range rows {
		worst := r.Worst
		if r.Reached && r.WorstSeconds > 0 {
			worst = "up to " + worst
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Step, r.Does, worst, r.MaySend)
	}
	return tw.Flush()
}

// WriteGraph draws a flow as a Mermaid flowchart or a Graphviz digraph. Edges carry
// waits, replies and timeouts; steps that may only send templates (the window can
// be closed there) are drawn in red.
func (p *Project) WriteGraph(w io.Writer, f *Flow, format string) error {
	g := &graphWriter{p: p, f: f, ids: map[*Step]string{}}
	for i, s := range f.Steps {
		g.ids[s] = fmt.Sprintf("s%d_%s", i, sanitizeID(s.ID))
	}
	switch format {
	case "mermaid":
		g.mermaid(w)
	case "dot":
		g.dot(w)
	default:
		return fmt.Errorf("unknown graph format %q (use mermaid or dot)", format)
	}
	return nil
}

type graphWriter struct {
	p   *Project
	f   *Flow
	ids map[*Step]string
}

func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// edgeLabel is how an edge reads on a diagram.
func (g *graphWriter) edgeLabel(e Edge) string {
	switch e.Kind {
	case EdgeWait:
		return "wait " + e.Note
	case EdgeReply:
		return "reply"
	case EdgeTimeout:
		if w := e.From.WaitForReply; w != nil {
			return "no reply in " + FormatDuration(w.Timeout)
		}
	case EdgeBranch:
		if e.Case.IsDefault() {
			return "otherwise"
		}
		if e.Case.If == nil {
			return "invalid condition"
		}
		return truncate(e.Case.If.Src, 40)
	case EdgeFallthru:
		return "no match"
	case EdgeSplit:
		return e.Note
	}
	return ""
}

func (g *graphWriter) templateOnly(s *Step) bool {
	return g.p.MayRunAfter(s, SendDeadline)
}

func (g *graphWriter) nodeLabel(s *Step) string {
	l := s.ID + "\n" + s.Describe()
	if b := g.p.Analysis.Budget(s); b.Reached && (b.Inf || b.D > 0) {
		l += "\n≤ " + b.String() + " since last message"
	}
	if s.Kind == ActSend && s.Send != nil && s.Send.FreeForm() && s.Send.Fallback == nil && g.templateOnly(s) {
		l += "\n⚠ free-form outside the 24h window"
	}
	return l
}

func mermaidText(s string) string {
	s = strings.NewReplacer(`"`, "#quot;", "\n", "<br/>", "<", "#lt;", ">", "#gt;").Replace(s)
	return `"` + s + `"`
}

// link is one drawn edge between node ids. e is nil for an `end` step's edge to
// the stop node; toFlow is set when the edge enters another flow.
type link struct {
	from, to string
	e        *Edge
	toFlow   *Flow
}

// links lists the diagram's edges (both formats draw the same ones) and whether
// a stop node is needed.
func (g *graphWriter) links() (ls []link, needEnd bool) {
	for _, s := range g.f.Steps {
		for _, e := range g.f.Edges(s, g.p.Flow) {
			l := link{from: g.ids[s], to: "stop", e: &e}
			switch {
			case e.ToFlow != nil:
				l.to, l.toFlow = "flow_"+sanitizeID(e.ToFlow.ID), e.ToFlow
			case e.To != nil:
				l.to = g.ids[e.To]
			default:
				needEnd = true
			}
			ls = append(ls, l)
		}
		if s.Kind == ActEnd {
			needEnd = true
			ls = append(ls, link{from: g.ids[s], to: "stop"})
		}
	}
	return ls, needEnd
}

func (g *graphWriter) mermaid(w io.Writer) {
	fmt.Fprintln(w, "flowchart TD")
	fmt.Fprintf(w, "  entry([%s])\n", mermaidText(string(g.f.Trigger.Kind)))
	for _, s := range g.f.Steps {
		id, label := g.ids[s], mermaidText(g.nodeLabel(s))
		switch s.Kind {
		case ActBranch, ActSplit:
			fmt.Fprintf(w, "  %s{%s}\n", id, label)
		case ActWait, ActWaitForReply:
			fmt.Fprintf(w, "  %s(%s)\n", id, label)
		default:
			fmt.Fprintf(w, "  %s[%s]\n", id, label)
		}
		if g.templateOnly(s) {
			fmt.Fprintf(w, "  class %s templateOnly\n", id)
		}
	}
	if len(g.f.Steps) > 0 {
		fmt.Fprintf(w, "  entry --> %s\n", g.ids[g.f.Steps[0]])
	}
	ls, needEnd := g.links()
	for _, l := range ls {
		if l.toFlow != nil {
			fmt.Fprintf(w, "  %s[[%s]]\n", l.to, mermaidText("flow "+l.toFlow.ID))
		}
		arrow, label := "-->", ""
		if l.e != nil {
			label = g.edgeLabel(*l.e)
			if l.e.Kind == EdgeTimeout {
				arrow = "-.->"
			}
		}
		if label != "" {
			fmt.Fprintf(w, "  %s %s|%s| %s\n", l.from, arrow, mermaidText(label), l.to)
		} else {
			fmt.Fprintf(w, "  %s %s %s\n", l.from, arrow, l.to)
		}
	}
	if needEnd {
		fmt.Fprintln(w, "  stop((end))")
	}
	fmt.Fprintln(w, "  classDef templateOnly fill:#fde2e2,stroke:#c0392b,stroke-width:2px")
}

func dotText(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func (g *graphWriter) dot(w io.Writer) {
	fmt.Fprintf(w, "digraph %s {\n", dotText(g.f.ID))
	fmt.Fprintln(w, "  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=10];")
	fmt.Fprintf(w, "  entry [shape=oval, label=%s];\n", dotText(string(g.f.Trigger.Kind)))
	for _, s := range g.f.Steps {
		shape, style := "box", ""
		switch s.Kind {
		case ActBranch, ActSplit:
			shape = "diamond"
		case ActWait, ActWaitForReply:
			style = "rounded"
		}
		extra := ""
		if g.templateOnly(s) {
			style = strings.TrimPrefix(style+",filled", ",")
			extra = `, color="#c0392b", penwidth=2, fillcolor="#fde2e2"`
		}
		if style != "" {
			extra = ", style=\"" + style + "\"" + extra
		}
		fmt.Fprintf(w, "  %s [shape=%s, label=%s%s];\n", g.ids[s], shape, dotText(g.nodeLabel(s)), extra)
	}
	if len(g.f.Steps) > 0 {
		fmt.Fprintf(w, "  entry -> %s;\n", g.ids[g.f.Steps[0]])
	}
	ls, needEnd := g.links()
	for _, l := range ls {
		if l.toFlow != nil {
			fmt.Fprintf(w, "  %s [shape=box, peripheries=2, label=%s];\n", l.to, dotText("flow "+l.toFlow.ID))
		}
		var attrs []string
		if l.e != nil {
			if label := g.edgeLabel(*l.e); label != "" {
				attrs = append(attrs, "label="+dotText(label))
			}
			if l.e.Kind == EdgeTimeout {
				attrs = append(attrs, "style=dashed")
			}
		}
		fmt.Fprintf(w, "  %s -> %s [%s];\n", l.from, l.to, strings.Join(attrs, ", "))
	}
	if needEnd {
		fmt.Fprintln(w, "  stop [shape=doublecircle, label=\"end\"];")
	}
	fmt.Fprintln(w, "}")
}

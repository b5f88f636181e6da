package dsl

import (
	"strconv"
	"time"
)

// EdgeKind says how a run moves from one step to the next.
type EdgeKind int

const (
	EdgeNext      EdgeKind = iota // the step completed; continue
	EdgeWait                      // a `wait` elapsed
	EdgeReply                     // the contact replied: the window reopens
	EdgeTimeout                   // no reply within the timeout
	EdgeBranch                    // a branch case matched
	EdgeFallthru                  // no branch case matched
	EdgeGoto                      // an explicit goto
	EdgeStartFlow                 // the run ends and another flow starts
	EdgeSplit                     // a split assigned this variant
)

// Edge is one way a run can leave a step. To is nil when the run ends there (a
// timeout without on_timeout, running past the last step). Time passing along the
// edge is Add plus, at most, Defer (quiet hours, the wait for a time of day).
type Edge struct {
	From   *Step
	To     *Step
	ToFlow *Flow // set for EdgeStartFlow; To is then its first step
	Kind   EdgeKind
	Add    time.Duration // time that certainly passes
	Defer  time.Duration // time that may pass on top (quiet hours, `at`)
	Note   string        // how a hop reads in a path: "+3d", "no reply in 4h: +4h"
	Case   *BranchCase   // for EdgeBranch
	// Variant is the split variant of an EdgeSplit (the analyses treat a split
	// like a branch whose cases carry no condition).
	Variant *SplitVariant
}

// Resets reports whether the edge reopens the window: the contact just wrote.
func (e Edge) Resets() bool { return e.Kind == EdgeReply }

// Max is the longest time the edge can take (saturating: see horizon).
func (e Edge) Max() time.Duration { return satAdd(e.Add, e.Defer) }

// Edges lists how a run can leave step s. flows resolves start_flow targets (may be
// nil: start_flow edges are then omitted).
func (f *Flow) Edges(s *Step, flows func(id string) *Flow) []Edge {
	next := func(kind EdgeKind) Edge { return Edge{From: s, To: f.After(s), Kind: kind} }
	switch s.Kind {
	case ActWait:
		if s.Wait == nil {
			return []Edge{next(EdgeWait)}
		}
		e := next(EdgeWait)
		e.Add, e.Defer, e.Note = f.WaitBounds(s.Wait)
		return []Edge{e}
	case ActWaitForReply:
		e := next(EdgeReply)
		e.Note = "reply"
		out := []Edge{e}
		if w := s.WaitForReply; w != nil && w.Timeout > 0 {
			t := Edge{From: s, Kind: EdgeTimeout, Add: w.Timeout,
				Note: "no reply in " + FormatDuration(w.Timeout) + ": +" + FormatDuration(w.Timeout)}
			if w.OnTimeout != "" {
				t.To, _ = f.Step(w.OnTimeout)
			}
			out = append(out, t)
		}
		return out
	case ActBranch:
		// A case whose condition is constant false never matches; one that is
		// constant true (like the default) is the last the run can take.
		var out []Edge
		for _, c := range s.Branch {
			v, constant := c.If.Const()
			if constant && !v {
				continue
			}
			if to, _ := f.Step(c.Goto); to != nil {
				out = append(out, Edge{From: s, To: to, Kind: EdgeBranch, Case: c})
			}
			if c.IsDefault() || constant {
				return out
			}
		}
		return append(out, next(EdgeFallthru))
	case ActSplit:
		var out []Edge
		total := SplitTotal(s.Split)
		for _, v := range s.Split {
			if to, ok := f.Step(v.Goto); ok {
				out = append(out, Edge{From: s, To: to, Kind: EdgeSplit, Variant: v,
					Note: "variant " + v.Variant + " (" + percent(v.Weight, total) + ")"})
			}
		}
		return out
	case ActGoto:
		if to, ok := f.Step(s.Target); ok {
			return []Edge{{From: s, To: to, Kind: EdgeGoto}}
		}
		return nil
	case ActStartFlow:
		if flows == nil {
			return nil
		}
		if g := flows(s.Target); g != nil && len(g.Steps) > 0 {
			return []Edge{{From: s, To: g.Steps[0], ToFlow: g, Kind: EdgeStartFlow, Note: "start_flow " + g.ID}}
		}
		return nil
	case ActEnd:
		return nil
	}
	return []Edge{next(EdgeNext)}
}

// WaitBounds is the time a `wait` takes: add certainly, plus up to deferral, and how
// the hop reads in a path. Quiet hours can push the wake-up to their end; `at`
// waits until the next HH:MM, at most a day. Both are local time, so a night or a
// day can be longer than its wall-clock span by a change of the clocks: the
// deferral includes the largest one (the quiet hours' own zone's, or any zone's
// for the contact's).
func (f *Flow) WaitBounds(w *Wait) (add, deferral time.Duration, note string) {
	add = w.For
	note = "+" + FormatDuration(w.For)
	if w.At != nil {
		deferral = Day + MaxClockShift
		until := "until " + w.At.String() + ": up to +" + FormatDuration(deferral)
		if w.For > 0 {
			note += ", then " + until
		} else {
			note = until
		}
		if q := f.QuietHours; q != nil {
			// `at` is a time in the contact's zone. Quiet hours in the same zone
			// defer it only when it falls inside them, to their end; quiet hours
			// in a named zone can cover any contact's HH:MM, so the whole span.
			var extra time.Duration
			switch {
			case q.Location != nil:
				extra = q.Span() + q.Shift()
			case q.Contains(*w.At):
				extra = q.To.Duration() - w.At.Duration()
				if extra < 0 {
					extra += Day
				}
				extra += q.Shift()
			}
			if extra > 0 {
				deferral += extra
				note += ", up to +" + FormatDuration(extra) + " quiet hours"
			}
		}
		return
	}
	if q := f.QuietHours; q != nil {
		deferral = q.Span() + q.Shift()
		note += ", up to +" + FormatDuration(deferral) + " quiet hours"
	}
	return
}

// percent writes part/total as a percentage, to one decimal when not whole.
func percent(part, total int) string {
	if total <= 0 {
		return "0%"
	}
	x := float64(part) * 100 / float64(total)
	if x == float64(int(x)) {
		return strconv.Itoa(int(x)) + "%"
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + "%"
}

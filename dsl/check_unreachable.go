package dsl

import "fmt"

// checkUnreachable warns about steps no path from the flow's first step reaches
// (start_flow enters a flow only at its first step).
func (c *checker) checkUnreachable() {
	for _, f := range c.p.Flows {
		if len(f.Steps) == 0 {
			continue
		}
		seen := map[*Step]bool{f.Steps[0]: true}
		stack := []*Step{f.Steps[0]}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, e := range f.Edges(s, nil) {
				if e.To != nil && !seen[e.To] {
					seen[e.To] = true
					stack = append(stack, e.To)
				}
			}
		}
		for _, s := range f.Steps {
			if !seen[s] {
				c.report(f, s, s.Pos, SevWarning, RuleUnreachable,
					fmt.Sprintf("step `%s` is never reached: no path from the first step leads to it (the step before it %s)", s.ID, endsHow(f, s, seen)), nil)
			}
		}
	}
}

// endsHow explains why the previous step does not continue into s.
func endsHow(f *Flow, s *Step, seen map[*Step]bool) string {
	if s.Index == 0 {
		return "does not exist"
	}
	prev := f.Steps[s.Index-1]
	if !seen[prev] {
		return "is never reached either"
	}
	switch prev.Kind {
	case ActGoto:
		return "jumps with `goto`"
	case ActEnd:
		return "ends the run"
	case ActStartFlow:
		return "hands over with `start_flow`"
	case ActSplit:
		return "always jumps to one of its variants"
	case ActBranch:
		for _, c := range prev.Branch {
			if c.IsDefault() {
				return "always jumps: its last case has no `if`"
			}
			if v, ok := c.If.Const(); ok && v {
				return "always jumps: the condition `" + c.If.Src + "` is always true"
			}
		}
	}
	if prev.Next != "" {
		return "continues at `" + prev.Next + "` with `next`"
	}
	return "does not continue here"
}

package dsl

import "fmt"

// checkConstant warns about branch conditions that read nothing from the run
// (`if: "true"`, `if: 1 > 2`): their value never changes, so the case always or
// never matches. The analyses already prune the edges such a condition rules out
// (Flow.Edges); this says so where the condition is written.
func (c *checker) checkConstant() {
	for _, f := range c.p.Flows {
		for _, s := range f.Steps {
			if s.Kind != ActBranch {
				continue
			}
			for i, bc := range s.Branch {
				v, ok := bc.If.Const()
				if !ok {
					continue
				}
				msg := fmt.Sprintf("condition `%s` is always false: this case never matches", bc.If.Src)
				if v {
					later := "the branch never falls through to the next step"
					if i+1 < len(s.Branch) {
						later = "the cases after it never run and " + later
					}
					msg = fmt.Sprintf("condition `%s` is always true: %s; use `- goto: %s` if that is meant", bc.If.Src, later, bc.Goto)
				}
				c.report(f, s, bc.If.Pos, SevWarning, RuleExpression, msg, nil)
			}
		}
	}
}

package dsl

import (
	"fmt"
	"strings"
)

// checkReferences reports step ids (next, goto, branch goto, on_timeout) and flow
// ids (start_flow) that do not resolve, and loops a run would spin in without ever
// waiting.
func (c *checker) checkReferences() {
	for _, f := range c.p.Flows {
		ids := f.StepIDs()
		ref := func(s *Step, id string, pos Pos, what string) {
			if id == "" {
				return
			}
			if _, ok := f.Step(id); !ok {
				c.report(f, s, pos, SevError, RuleReference,
					fmt.Sprintf("%s: unknown step `%s`%s (steps: %s)", what, id, didYouMean(id, ids), strings.Join(ids, ", ")), nil)
			}
		}
		for _, s := range f.Steps {
			ref(s, s.Next, s.NextPos, "`next`")
			switch s.Kind {
			case ActGoto:
				ref(s, s.Target, s.TargetPos, "`goto`")
			case ActBranch:
				for _, bc := range s.Branch {
					ref(s, bc.Goto, bc.GotoPos, "`goto`")
				}
			case ActSplit:
				for _, v := range s.Split {
					ref(s, v.Goto, v.GotoPos, "`goto`")
				}
			case ActWaitForReply:
				if s.WaitForReply != nil {
					ref(s, s.WaitForReply.OnTimeout, s.WaitForReply.OnTimeoutPos, "`on_timeout`")
				}
			case ActStartFlow:
				if s.Target != "" && c.p.Flow(s.Target) == nil {
					flows := c.p.FlowIDs()
					c.report(f, s, s.TargetPos, SevError, RuleReference,
						fmt.Sprintf("`start_flow`: unknown flow `%s`%s (flows: %s)", s.Target, didYouMean(s.Target, flows), strings.Join(flows, ", ")), nil)
				}
			}
		}
	}
	c.checkSpinLoops()
}

// checkSpinLoops finds cycles made only of instant steps (no wait, no reply): a run
// entering one would send or loop forever without pausing. The engine stops such a
// run after a bounded number of steps; the validator warns before that happens.
func (c *checker) checkSpinLoops() {
	var nodes []*Step
	flowOf := map[*Step]*Flow{}
	index := map[*Step]int{}
	for _, f := range c.p.Flows {
		for _, s := range f.Steps {
			index[s] = len(nodes)
			nodes = append(nodes, s)
			flowOf[s] = f
		}
	}
	adj := make([][]int, len(nodes))
	self := make([]bool, len(nodes))
	for i, s := range nodes {
		for _, e := range flowOf[s].Edges(s, c.p.Flow) {
			if e.To == nil || e.Kind == EdgeWait || e.Kind == EdgeReply || e.Kind == EdgeTimeout {
				continue
			}
			j := index[e.To]
			adj[i] = append(adj[i], j)
			if i == j {
				self[i] = true
			}
		}
	}
	comp := sccs(adj)
	size := map[int][]int{}
	for i := range nodes {
		size[comp[i]] = append(size[comp[i]], i)
	}
	reported := map[int]bool{}
	for i, s := range nodes {
		members := size[comp[i]]
		if reported[comp[i]] || (len(members) == 1 && !self[i]) {
			continue
		}
		reported[comp[i]] = true
		var names []string
		for _, m := range members {
			names = append(names, hopName(Hop{Flow: flowOf[nodes[m]], Step: nodes[m]}, flowOf[s]))
		}
		what := "steps " + quoteList(names) + " form a loop"
		if len(names) == 1 {
			what = "step " + quoteList(names) + " leads back to itself"
		}
		c.report(flowOf[s], s, s.Pos, SevWarning, RuleReference,
			fmt.Sprintf("%s with no `wait` or `wait_for_reply`: a run entering it never pauses (the engine stops it after %d steps)", what, MaxStepsPerAdvance), nil)
	}
}

// MaxStepsPerAdvance bounds how many steps a run may take without pausing.
const MaxStepsPerAdvance = 1000

package dsl

import (
	"strings"
	"time"
)

// Budget is the worst-case time since the contact's last message when a step runs.
type Budget struct {
	Reached bool          // some path reaches the step
	Inf     bool          // unbounded: a business-initiated entry or a loop that adds time
	D       time.Duration // the bound, when not Inf
}

// AtLeast reports whether the budget can reach d.
func (b Budget) AtLeast(d time.Duration) bool { return b.Reached && (b.Inf || b.D >= d) }

func (b Budget) String() string {
	switch {
	case !b.Reached:
		return "never reached"
	case b.Inf:
		return "unbounded"
	}
	return FormatHours(b.D)
}

// Hop is one step of a witness path, with how the run left it (Note) on the way.
type Hop struct {
	Flow *Flow
	Step *Step
	Note string
}

// Analysis is the window analysis of docs/LANGUAGE.md over a whole project: for every step,
// the greatest time that may have passed since the contact's last inbound message
// when it runs, over all paths and across start_flow edges, with a witness path.
//
// It works on the graph of steps. Reply edges reset the clock to 0; every other
// edge adds its longest time. A strongly connected set of steps joined by
// non-reply edges, one of which adds time, is a loop that can repeat without the
// contact writing: it and everything after it (until a reply) is unbounded, as is
// everything a business-initiated trigger reaches before a reply. The remaining
// graph is acyclic once zero-time loops are collapsed, and the longest path over it
// is exact: joins take the maximum.
type Analysis struct {
	p      *Project
	nodes  []node
	index  map[*Step]int
	budget []Budget
	// pred is the incoming edge of the witness path (-1: a start of the clock).
	pred  []int
	edges []aEdge
	// loop holds, for an unbounded node, the steps of the loop that makes it so.
	loop map[int][]int
	// hopNote is the note of the first non-reply edge from one node to another
	// (built when there are loops, for Loop).
	hopNote map[[2]int]string
	// infFrom is the business-initiated flow that makes a node unbounded.
	infFrom map[int]*Flow
	// overflow marks nodes whose bound passed the horizon: unbounded, though no
	// loop or business entry makes them so.
	overflow map[int]bool
}

// horizon is where the analysis stops counting: a bound this long (far beyond any
// window) is unbounded. Every sum saturates at it, so long waits can never wrap
// around to a small or negative bound.
const horizon = 2 * maxDuration

// satAdd adds durations, saturating at horizon.
func satAdd(a, b time.Duration) time.Duration {
	if a >= horizon || b >= horizon || a > horizon-b {
		return horizon
	}
	return a + b
}

type node struct {
	flow *Flow
	step *Step
}

type aEdge struct {
	from, to int
	Edge
}

// Analyze runs the window analysis.
func Analyze(p *Project) *Analysis {
	total := 0
	for _, f := range p.Flows {
		total += len(f.Steps)
	}
	a := &Analysis{p: p, index: make(map[*Step]int, total), loop: map[int][]int{}, infFrom: map[int]*Flow{}, overflow: map[int]bool{},
		nodes: make([]node, 0, total), edges: make([]aEdge, 0, 2*total)}
	for _, f := range p.Flows {
		for _, s := range f.Steps {
			a.index[s] = len(a.nodes)
			a.nodes = append(a.nodes, node{f, s})
		}
	}
	n := len(a.nodes)
	out := make([][]int, n)
	in := make([][]int, n)
	for i, nd := range a.nodes {
		for _, e := range nd.flow.Edges(nd.step, p.Flow) {
			if e.To == nil {
				continue
			}
			j, ok := a.index[e.To]
			if !ok {
				continue
			}
			out[i] = append(out[i], len(a.edges))
			in[j] = append(in[j], len(a.edges))
			a.edges = append(a.edges, aEdge{i, j, e})
		}
	}

	// Where the clock starts: user-initiated entries and reply targets (0), and
	// business-initiated entries (unbounded).
	reached := make([]bool, n)
	zeroStart := make([]bool, n)
	infStart := map[int]*Flow{}
	var stack []int
	for _, f := range p.Flows {
		if len(f.Steps) == 0 || f.Trigger.Kind == "" {
			continue
		}
		i := a.index[f.Steps[0]]
		if f.Trigger.Kind.UserInitiated() {
			zeroStart[i] = true
		} else {
			infStart[i] = f
		}
		stack = append(stack, i)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if reached[i] {
			continue
		}
		reached[i] = true
		for _, ei := range out[i] {
			stack = append(stack, a.edges[ei].to)
		}
	}
	for _, e := range a.edges {
		if e.Resets() && reached[e.from] {
			zeroStart[e.to] = true
		}
	}

	// Strongly connected components over non-reply edges (Tarjan, iterative).
	adj := make([][]int, n)
	for _, e := range a.edges {
		if !e.Resets() {
			adj[e.from] = append(adj[e.from], e.to)
		}
	}
	comp := sccs(adj)
	pumping := map[int][]int{} // component -> loop steps, when it adds time
	for _, e := range a.edges {
		if !e.Resets() && comp[e.from] == comp[e.to] && e.Max() > 0 && reached[e.from] {
			if _, ok := pumping[comp[e.from]]; !ok {
				pumping[comp[e.from]] = a.cycleThrough(e, comp, out)
			}
		}
	}

	if len(pumping) > 0 {
		a.hopNote = map[[2]int]string{}
		for _, e := range a.edges {
			k := [2]int{e.from, e.to}
			if _, ok := a.hopNote[k]; !ok && !e.Resets() {
				a.hopNote[k] = e.Note
			}
		}
	}

	a.budget = make([]Budget, n)
	a.pred = make([]int, n)
	for i := range a.pred {
		a.pred[i] = -1
	}
	// Unbounded: pumping loops and business entries, propagated over non-reply edges.
	var inf []int
	for i := 0; i < n; i++ {
		if !reached[i] {
			continue
		}
		if l, ok := pumping[comp[i]]; ok {
			a.budget[i] = Budget{Reached: true, Inf: true}
			a.loop[i] = l
			inf = append(inf, i)
		} else if f, ok := infStart[i]; ok {
			a.budget[i] = Budget{Reached: true, Inf: true}
			a.infFrom[i] = f
			inf = append(inf, i)
		}
	}
	for len(inf) > 0 {
		i := inf[0]
		inf = inf[1:]
		for _, ei := range out[i] {
			e := a.edges[ei]
			if e.Resets() || a.budget[e.to].Inf {
				continue
			}
			a.budget[e.to] = Budget{Reached: true, Inf: true}
			a.pred[e.to] = ei
			if l, ok := a.loop[i]; ok {
				a.loop[e.to] = l
			}
			if f, ok := a.infFrom[i]; ok {
				a.infFrom[e.to] = f
			}
			inf = append(inf, e.to)
		}
	}

	// Longest path over the rest, in topological order of the components (Tarjan
	// numbers components in reverse topological order).
	maxComp := -1
	for i := 0; i < n; i++ {
		maxComp = max(maxComp, comp[i])
	}
	// members[c] lists the nodes of component c, all in one backing array.
	members := make([][]int, maxComp+1)
	count := make([]int, maxComp+1)
	for i := 0; i < n; i++ {
		count[comp[i]]++
	}
	flat := make([]int, 0, n)
	for c := range members {
		members[c] = flat[len(flat) : len(flat) : len(flat)+count[c]]
		flat = flat[:len(flat)+count[c]]
	}
	for i := 0; i < n; i++ {
		members[comp[i]] = append(members[comp[i]], i)
	}
	for c := maxComp; c >= 0; c-- {
		ms := members[c]
		// The component's value: best of its starts and its incoming edges.
		best, bestPred, bestAt := Budget{}, -1, -1
		for _, i := range ms {
			if !reached[i] || a.budget[i].Inf {
				continue
			}
			if zeroStart[i] && !best.Reached {
				best, bestPred, bestAt = Budget{Reached: true}, -1, i
			}
		}
		for _, i := range ms {
			for _, ei := range in[i] {
				e := a.edges[ei]
				src := a.budget[e.from]
				if comp[e.from] == c || !src.Reached || e.Resets() || a.budget[e.to].Inf {
					continue
				}
				d := satAdd(src.D, e.Max())
				if src.Inf || d >= horizon {
					// Waits that add up past what the analysis counts: unbounded.
					if !best.Inf {
						best, bestPred, bestAt = Budget{Reached: true, Inf: true}, ei, e.to
					}
					continue
				}
				if !best.Inf && (!best.Reached || d > best.D) {
					best, bestPred, bestAt = Budget{Reached: true, D: d}, ei, e.to
				}
			}
		}
		if !best.Reached {
			continue
		}
		if best.Inf {
			a.overflow[bestAt] = true
		}
		// Spread inside the (zero-time) component from where the best value enters.
		a.budget[bestAt] = best
		a.pred[bestAt] = bestPred
		queue := []int{bestAt}
		for len(queue) > 0 {
			i := queue[0]
			queue = queue[1:]
			for _, ei := range out[i] {
				e := a.edges[ei]
				if e.Resets() || comp[e.to] != c || e.to == bestAt || a.budget[e.to].Reached {
					continue
				}
				a.budget[e.to] = best
				a.pred[e.to] = ei
				if best.Inf {
					a.overflow[e.to] = true
				}
				queue = append(queue, e.to)
			}
		}
		// Members reachable only through a reply into the component start at 0.
		for _, i := range ms {
			if reached[i] && !a.budget[i].Reached {
				a.budget[i] = Budget{Reached: true}
			}
		}
	}
	return a
}

// sccs numbers the strongly connected components of a graph given as adjacency
// lists, in reverse topological order (Tarjan's algorithm, iterative so deep flows
// cannot overflow the stack).
func sccs(adj [][]int) []int {
	n := len(adj)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	comp := make([]int, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	next, nComp := 0, 0
	type frame struct{ v, k int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			fr := &call[len(call)-1]
			v := fr.v
			if fr.k < len(adj[v]) {
				w := adj[v][fr.k]
				fr.k++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] {
					low[v] = min(low[v], index[w])
				}
				continue
			}
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = nComp
					if w == v {
						break
					}
				}
				nComp++
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				low[u] = min(low[u], low[v])
			}
		}
	}
	return comp
}

// cycleThrough returns the steps of a loop through edge e inside its component:
// e.to … e.from, found by breadth-first search.
func (a *Analysis) cycleThrough(e aEdge, comp []int, out [][]int) []int {
	c := comp[e.from]
	prev := map[int]int{e.to: -1}
	queue := []int{e.to}
	for len(queue) > 0 && queue[0] != e.from {
		i := queue[0]
		queue = queue[1:]
		for _, ei := range out[i] {
			x := a.edges[ei]
			if x.Resets() || comp[x.to] != c {
				continue
			}
			if _, seen := prev[x.to]; !seen {
				prev[x.to] = i
				queue = append(queue, x.to)
			}
		}
	}
	var path []int
	for i := e.from; i != -1; i = prev[i] {
		path = append(path, i)
		if len(path) > len(a.nodes) {
			break
		}
	}
	for l, r := 0, len(path)-1; l < r; l, r = l+1, r-1 {
		path[l], path[r] = path[r], path[l]
	}
	return path
}

// Budget returns the worst case for a step.
func (a *Analysis) Budget(s *Step) Budget {
	i, ok := a.index[s]
	if !ok {
		return Budget{}
	}
	return a.budget[i]
}

// Witness returns the path that produces a step's budget: from where the clock last
// started (the flow's first step, or the step a reply led to) to the step itself.
// For an unbounded step it is the loop (or the business-initiated entry) and the way
// from there.
func (a *Analysis) Witness(s *Step) []Hop {
	i, ok := a.index[s]
	if !ok {
		return nil
	}
	var rev []Hop
	seen := map[int]bool{}
	note := ""
	for !seen[i] {
		seen[i] = true
		nd := a.nodes[i]
		rev = append(rev, Hop{Flow: nd.flow, Step: nd.step, Note: note})
		ei := a.pred[i]
		if ei < 0 {
			break
		}
		note = a.edges[ei].Note // how the run left the hop added next
		i = a.edges[ei].from
	}
	reverseHops(rev)
	return rev
}

func reverseHops(h []Hop) {
	for l, r := 0, len(h)-1; l < r; l, r = l+1, r-1 {
		h[l], h[r] = h[r], h[l]
	}
}

// Loop returns the loop that makes a step unbounded, as hops (nil if none).
func (a *Analysis) Loop(s *Step) []Hop {
	i, ok := a.index[s]
	if !ok {
		return nil
	}
	l := a.loop[i]
	if len(l) == 0 {
		return nil
	}
	hops := make([]Hop, 0, len(l)+1)
	for k, j := range l {
		h := Hop{Flow: a.nodes[j].flow, Step: a.nodes[j].step}
		h.Note = a.hopNote[[2]int{j, l[(k+1)%len(l)]}]
		hops = append(hops, h)
	}
	hops = append(hops, Hop{Flow: a.nodes[l[0]].flow, Step: a.nodes[l[0]].step})
	return hops
}

// Overflows reports whether a step is unbounded because the waits on its way add
// up past the horizon the analysis counts to.
func (a *Analysis) Overflows(s *Step) bool {
	i, ok := a.index[s]
	return ok && a.overflow[i]
}

// BusinessEntry returns the business-initiated flow whose entry makes a step
// unbounded (nil if none).
func (a *Analysis) BusinessEntry(s *Step) *Flow {
	if i, ok := a.index[s]; ok {
		return a.infFrom[i]
	}
	return nil
}

// maxShownHops bounds how many hops a message spells out: a path through a long
// loop would otherwise make every finding's message as long as the flow.
const maxShownHops = 16

// FormatPath writes hops the way messages show them:
// `welcome → answer (no reply in 4h: +4h) → day3 (+3d) → reengage`. Steps of a
// flow other than home are written flow/step. Long paths keep their first and
// last hops around "… N more steps …".
func FormatPath(hops []Hop, home *Flow) string {
	var b strings.Builder
	skipFrom, skipTo := len(hops), len(hops)
	if len(hops) > maxShownHops {
		skipFrom, skipTo = maxShownHops/2, len(hops)-maxShownHops/2+1
	}
	for k, h := range hops {
		if k >= skipFrom && k < skipTo {
			if k == skipFrom {
				b.WriteString(" → … " + itoa(skipTo-skipFrom) + " more steps …")
			}
			continue
		}
		if k > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(hopName(h, home))
		if h.Note != "" && k+1 < len(hops) {
			b.WriteString(" (" + h.Note + ")")
		}
	}
	return b.String()
}

// maxPathIDs bounds the JSON path the same way (an "…" entry marks the cut).
const maxPathIDs = 200

// PathIDs is the path as step ids (flow/step for other flows), for JSON.
func PathIDs(hops []Hop, home *Flow) []string {
	if len(hops) > maxPathIDs {
		head := PathIDs(hops[:maxPathIDs/2], home)
		tail := PathIDs(hops[len(hops)-maxPathIDs/2+1:], home)
		return append(append(head, "…"), tail...)
	}
	ids := make([]string, len(hops))
	for k, h := range hops {
		ids[k] = hopName(h, home)
	}
	return ids
}

func hopName(h Hop, home *Flow) string {
	if h.Flow != home {
		return h.Flow.ID + "/" + h.Step.ID
	}
	return h.Step.ID
}

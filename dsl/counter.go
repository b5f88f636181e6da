package dsl

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/expr-lang/expr/ast"
)

// counterLoop is a loop that adds time but runs a bounded number of times: a run
// variable counts its rounds (`set: {n: "${vars.n + 1}"}`) and a branch case
// continues it only while the count is below a limit (`if: vars.n < 3`).
type counterLoop struct {
	times int           // the most times the guarded cases can be taken
	time  time.Duration // the most time a run can spend in the loop
	note  string        // how a witness path reads there
}

// counterBound decides whether a loop (a strongly connected component adding
// time) is bounded by a counter, and how long a run can stay in it. The rules
// are those that make the bound hold at run time:
//
//   - the loop lies in one flow (start_flow starts a run with fresh variables);
//   - a variable n is assigned in the loop only by increments n + k (k > 0, a
//     number), and every cycle of the loop passes one;
//   - every cycle passes a branch case whose own condition requires n < K (or
//     n <= K): a case is taken only when its condition is true, and with n
//     missing or not a number the comparison fails, which counts as false;
//   - on every way into the loop n is unset or a known number (the flow's
//     first step has no variables; `set` with a literal, increments).
//
// A guarded case is then taken at most (K - n0) / k times, n0 the least value
// entering. A run in the loop spends at most the longest way through it without
// a guarded case, plus that for each time one is taken.
func (a *Analysis) counterBound(ms []int, comp []int, out [][]int) *counterLoop {
	f := a.nodes[ms[0]].flow
	in := map[int]bool{}
	for _, i := range ms {
		if a.nodes[i].flow != f {
			return nil
		}
		in[i] = true
	}
	c := comp[ms[0]]
	// Candidate guards, by variable.
	type guard struct {
		edge  int
		limit float64
		incl  bool // <=
	}
	guards := map[string][]guard{}
	for _, i := range ms {
		for _, ei := range out[i] {
			e := a.edges[ei]
			if e.Kind != EdgeBranch || comp[e.to] != c || e.Case == nil || e.Case.If == nil {
				continue
			}
			if v, k, incl, ok := upperBound(e.Case.If.Node()); ok {
				guards[v] = append(guards[v], guard{ei, k, incl})
			}
		}
	}
	vars := make([]string, 0, len(guards))
	for v := range guards {
		vars = append(vars, v)
	}
	sort.Strings(vars)
	for _, v := range vars {
		// n is assigned in the loop only by increments, and every cycle passes one.
		step := math.Inf(1)
		incNodes := map[int]bool{}
		ok := true
		for _, i := range ms {
			st := a.nodes[i].step
			if st.Kind != ActSet {
				continue
			}
			for _, as := range st.Set {
				if as.Contact || as.Name != v {
					continue
				}
				k, isInc := increment(as.Value, v)
				if !isInc {
					ok = false
				}
				step = math.Min(step, k)
				incNodes[i] = true
			}
		}
		if !ok || len(incNodes) == 0 {
			continue
		}
		guardEdges := map[int]bool{}
		for _, g := range guards[v] {
			guardEdges[g.edge] = true
		}
		if !a.acyclicWithout(ms, c, comp, out, guardEdges, nil) || !a.acyclicWithout(ms, c, comp, out, nil, incNodes) {
			continue
		}
		// n on the ways into the loop.
		entry, known := a.entryValues(f, v, in)
		if !known {
			continue
		}
		times := 0
		for _, g := range guards[v] {
			times += rounds(entry, g.limit, step, g.incl)
		}
		if times > maxRounds {
			continue
		}
		// The longest way through the loop without a guarded case: from any
		// member, and from the head of each guarded case.
		longest := a.longestWithout(ms, c, comp, out, guardEdges)
		var first, round time.Duration
		for _, i := range ms {
			first = max(first, longest[i])
		}
		for _, g := range guards[v] {
			e := a.edges[g.edge]
			round = max(round, satAdd(e.Max(), longest[e.to]))
		}
		total := satAdd(first, satMul(round, times))
		names := make([]string, 0, len(guards[v]))
		for _, g := range guards[v] {
			names = append(names, "`"+a.edges[g.edge].Case.If.Src+"`")
		}
		return &counterLoop{times: times, time: total, note: fmt.Sprintf(
			"a loop that `%s` bounds to %d rounds (%s): up to +%s", v, times, joinOr(names), FormatDuration(total))}
	}
	return nil
}

func joinOr(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	s := xs[0]
	for _, x := range xs[1 : len(xs)-1] {
		s += ", " + x
	}
	return s + " or " + xs[len(xs)-1]
}

// maxRounds is the most rounds a counter may bound; past it (or when the
// count cannot be trusted) the loop counts as unbounded.
const maxRounds = MaxStepsPerAdvance * 1000

// rounds is how many times a case guarded by n < limit (n <= limit when incl)
// can be taken when n starts at least at n0 and grows by at least step between
// two of them; maxRounds+1 when that is more than maxRounds or unknown.
func rounds(n0, limit, step float64, incl bool) int {
	if step <= 0 || math.IsInf(step, 0) || math.IsNaN(n0) || math.IsNaN(limit) || math.IsInf(limit, 0) {
		return maxRounds + 1
	}
	if math.IsInf(n0, 1) { // only unset or non-numbers enter: never taken
		return 0
	}
	d := (limit - n0) / step
	var r float64
	if incl {
		if limit < n0 {
			return 0
		}
		r = math.Floor(d) + 1
	} else {
		if limit <= n0 {
			return 0
		}
		r = math.Ceil(d)
	}
	if r > maxRounds {
		return maxRounds + 1
	}
	return int(r)
}

// upperBound recognizes a condition that can only be true while vars.<v> is a
// number below a limit: `vars.n < 3`, `vars.n <= 3`, `3 > vars.n`, `3 >= vars.n`,
// or a conjunction with one of them.
func upperBound(n ast.Node) (v string, limit float64, incl, ok bool) {
	b, isBin := n.(*ast.BinaryNode)
	if !isBin {
		return "", 0, false, false
	}
	switch b.Operator {
	case "&&", "and":
		if v, l, i, ok := upperBound(b.Left); ok {
			return v, l, i, true
		}
		return upperBound(b.Right)
	case "<", "<=":
		if name, ok := varName(b.Left); ok {
			if k, ok := number(b.Right); ok {
				return name, k, b.Operator == "<=", true
			}
		}
	case ">", ">=":
		if name, ok := varName(b.Right); ok {
			if k, ok := number(b.Left); ok {
				return name, k, b.Operator == ">=", true
			}
		}
	}
	return "", 0, false, false
}

// varName reads `vars.n` or `vars["n"]`.
func varName(n ast.Node) (string, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return "", false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "vars" {
		return "", false
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", false
	}
	return p.Value, true
}

func number(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return float64(x.Value), true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.UnaryNode:
		if x.Operator == "-" {
			if v, ok := number(x.Node); ok {
				return -v, true
			}
		}
	}
	return 0, false
}

// increment recognizes `${vars.n + k}` or `${k + vars.n}` with a whole number
// k > 0 for variable v, returning k. Whole numbers only: the engine adds in
// floating point, and 0.1 ten times falls short of 1, which would give a
// fractional counter one round more than (K - n0) / k.
func increment(val *Value, v string) (float64, bool) {
	if val == nil || val.Expr == nil {
		return 0, false
	}
	b, ok := val.Expr.Node().(*ast.BinaryNode)
	if !ok || b.Operator != "+" {
		return 0, false
	}
	for _, pair := range [][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
		if name, ok := varName(pair[0]); ok && name == v {
			if k, ok := number(pair[1]); ok && k > 0 && isWhole(k) {
				return k, true
			}
		}
	}
	return 0, false
}

// literalNumber is the value a `set` gives when it is a number known before the
// run: a YAML number, or an expression made of number literals.
func literalNumber(val *Value) (float64, bool) {
	if val == nil {
		return 0, false
	}
	switch x := val.Literal.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	}
	if val.Expr != nil {
		if k, ok := number(val.Expr.Node()); ok {
			return k, true
		}
	}
	return 0, false
}

// notANumber reports whether a `set` value can never be a number: a text, a
// literal string or boolean. With it the counter compares as false.
func notANumber(val *Value) bool {
	if val == nil {
		return true
	}
	if val.Text != nil {
		return true
	}
	switch val.Literal.(type) {
	case string, bool, nil:
		return val.Expr == nil
	}
	return false
}

// entryValues is the least number variable v can hold when a run enters the
// loop (members in), by a data flow over the flow from its first step: +Inf when
// it is never a number there, known false when it can be anything.
func (a *Analysis) entryValues(f *Flow, v string, in map[int]bool) (float64, bool) {
	const maxValues = 8
	type vals struct {
		top  bool
		nums map[float64]bool // numbers it may hold (unset or non-numbers aside)
	}
	at := map[*Step]*vals{}
	join := func(s *Step, x *vals) bool {
		cur := at[s]
		if cur == nil {
			cur = &vals{nums: map[float64]bool{}}
			at[s] = cur
		}
		if cur.top {
			return false // anything already: nothing more to learn
		}
		if x.top {
			cur.top, cur.nums = true, map[float64]bool{}
			return true
		}
		changed := false
		for k := range x.nums {
			if !cur.nums[k] {
				cur.nums[k], changed = true, true
			}
		}
		if len(cur.nums) > maxValues {
			cur.top, cur.nums = true, map[float64]bool{}
		}
		return changed
	}
	if len(f.Steps) == 0 {
		return 0, false
	}
	join(f.Steps[0], &vals{nums: map[float64]bool{}})
	queue := []*Step{f.Steps[0]}
	for iter := 0; len(queue) > 0 && iter < 100_000; iter++ {
		s := queue[0]
		queue = queue[1:]
		cur := at[s]
		next := &vals{top: cur.top, nums: map[float64]bool{}}
		for k := range cur.nums {
			next.nums[k] = true
		}
		if s.Kind == ActSet {
			for _, as := range s.Set {
				if as.Contact || as.Name != v {
					continue
				}
				switch k, isInc := increment(as.Value, v); {
				case isInc:
					shifted := map[float64]bool{}
					for x := range next.nums {
						shifted[x+k] = true
					}
					next.nums = shifted
				default:
					if num, ok := literalNumber(as.Value); ok {
						next = &vals{nums: map[float64]bool{num: true}}
					} else if notANumber(as.Value) {
						next = &vals{nums: map[float64]bool{}}
					} else {
						next = &vals{top: true, nums: map[float64]bool{}}
					}
				}
			}
		}
		for _, e := range f.Edges(s, nil) {
			if e.To != nil && join(e.To, next) {
				queue = append(queue, e.To)
			}
		}
	}
	least := math.Inf(1)
	for i := range in {
		st := a.nodes[i].step
		// Values on edges into the loop from outside it.
		for _, s := range f.Steps {
			if in[a.index[s]] || at[s] == nil {
				continue
			}
			for _, e := range f.Edges(s, nil) {
				if e.To != st {
					continue
				}
				x := at[s]
				if x.top {
					return 0, false
				}
				// The step's own assignment applies before the edge.
				nums := x.nums
				if s.Kind == ActSet {
					for _, as := range s.Set {
						if as.Contact || as.Name != v {
							continue
						}
						if k, isInc := increment(as.Value, v); isInc {
							shifted := map[float64]bool{}
							for y := range nums {
								shifted[y+k] = true
							}
							nums = shifted
						} else if num, ok := literalNumber(as.Value); ok {
							nums = map[float64]bool{num: true}
						} else if notANumber(as.Value) {
							nums = map[float64]bool{}
						} else {
							return 0, false
						}
					}
				}
				for y := range nums {
					if !isWhole(y) {
						return 0, false // see increment
					}
					least = math.Min(least, y)
				}
			}
		}
		if st == f.Steps[0] {
			// The run starts here with no variables: unset.
			continue
		}
	}
	return least, true
}

// acyclicWithout reports whether the loop has no cycle once the given edges (or
// nodes) are taken out.
func (a *Analysis) acyclicWithout(ms []int, c int, comp []int, out [][]int, edges map[int]bool, nodes map[int]bool) bool {
	state := map[int]int{} // 0 new, 1 on the stack, 2 done
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		for _, ei := range out[i] {
			e := a.edges[ei]
			if e.Resets() || comp[e.to] != c || edges[ei] || nodes[e.to] {
				continue
			}
			switch state[e.to] {
			case 1:
				return false
			case 0:
				if !visit(e.to) {
					return false
				}
			}
		}
		state[i] = 2
		return true
	}
	for _, i := range ms {
		if nodes[i] || state[i] != 0 {
			continue
		}
		if !visit(i) {
			return false
		}
	}
	return true
}

// longestWithout is, per member, the longest time of a way inside the loop
// starting there that takes none of the given edges (the rest is acyclic).
func (a *Analysis) longestWithout(ms []int, c int, comp []int, out [][]int, skip map[int]bool) map[int]time.Duration {
	memo := map[int]time.Duration{}
	done := map[int]bool{}
	var walk func(i int) time.Duration
	walk = func(i int) time.Duration {
		if done[i] {
			return memo[i]
		}
		done[i] = true // acyclic: no revisit before the value is set
		var best time.Duration
		for _, ei := range out[i] {
			e := a.edges[ei]
			if e.Resets() || comp[e.to] != c || skip[ei] {
				continue
			}
			best = max(best, satAdd(e.Max(), walk(e.to)))
		}
		memo[i] = best
		return best
	}
	for _, i := range ms {
		walk(i)
	}
	return memo
}

// isWhole reports whether x is a whole number small enough that float64 sums of
// such numbers are exact.
func isWhole(x float64) bool {
	return x == math.Trunc(x) && math.Abs(x) < 1<<52
}

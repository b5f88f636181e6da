package dsl

import (
	"strings"
	"time"
)

// Budget is the worst-case time since the contact's last message when a step runs.
type Budget struct {
	Reached bool          // some path reaches the step
	Inf     bool          // unbounded: a business-initiated entry or a loop that adds time
	D       time.Duration // the bound when the step runs, when not Inf
	// Pace is, for a send, how much later than D its message may leave: the
	// per-recipient pacing a chain of sends can meet (see pacing).
	Pace time.Duration
}

// Sent is the bound when a send's message is handed to WhatsApp: D plus pacing.
func (b Budget) Sent() time.Duration { return satAdd(b.D, b.Pace) }

// AtLeast reports whether the budget can reach d (for a send, when its message
// leaves).
func (b Budget) AtLeast(d time.Duration) bool { return b.Reached && (b.Inf || b.Sent() >= d) }

func (b Budget) String() string {
	switch {
	case !b.Reached:
		return "never reached"
	case b.Inf:
		return "unbounded"
	case b.Pace > 0 && b.D == 0:
		return formatUnits(b.Pace) + " pacing"
	case b.Pace > 0:
		return FormatHours(b.D) + " + " + formatUnits(b.Pace) + " pacing"
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
// contact writing: unless a counter bounds it (see counterBound), it and
// everything after it (until a reply) is unbounded, as is everything a
// business-initiated trigger reaches before a reply. The remaining graph is
// acyclic once zero-time and counter-bounded loops are collapsed, and is walked
// in topological order.
//
// What flows along a path is not a single number but a small set of path
// summaries (pstate), the Pareto-best ones: time that passed outside quiet hours,
// the waits the quiet hours may defer, and the pacing lag of the contact's
// messages. From these, quiet hours are charged per night rather than per wait
// (a second deferral needs a whole day in between), and a chain of sends is
// charged the pacing the engine applies. Every sum saturates at horizon.
type Analysis struct {
	p      *Project
	nodes  []node
	index  map[*Step]int
	budget []Budget
	// worst is, per node, the path summary behind its budget (nil for an
	// unbounded node from a loop or a business entry: see pred).
	worst []*pstate
	// pred is the incoming edge of an unbounded node's witness path (-1: where
	// it starts).
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
	// bounded holds the counter-bounded loops, by component.
	bounded map[int]*counterLoop
	// room is, per node, how much later than its bound the run may be there
	// without a free-form message from it on (before the contact writes again)
	// leaving past the margin below SendDeadline (horizon: no such message).
	room []time.Duration
}

type node struct {
	flow *Flow
	step *Step
}

type aEdge struct {
	from, to int
	Edge
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

// satMul multiplies a duration by a count, saturating at horizon.
func satMul(d time.Duration, n int) time.Duration {
	if n <= 0 || d <= 0 {
		return 0
	}
	if d >= horizon || int64(n) > int64(horizon/d) {
		return horizon
	}
	return d * time.Duration(n)
}

// pstate summarizes a path from where the clock last started (an entry, a reply)
// to a node.
type pstate struct {
	// c is time counted in full: quiet hours of an earlier frame (another flow's
	// quiet hours, or before the contact's zone changed), loops.
	c time.Duration
	// t is the time since then, besides the quiet hours' deferrals; q counts
	// the waits the quiet hours may defer.
	t time.Duration
	q int
	// lag is how far behind the contact's pacing bucket is: messages queued now
	// leave max(lag, 0) later; minLag is a full bucket.
	lag time.Duration

	// The witness: the edge that led here and the summary at its start.
	edge int // -1 at a start of the clock
	from *pstate
	// note replaces the hop's note (a counter-bounded loop's bound).
	note string
}

// The pacing the analysis charges (the engine's defaults, dsl.PairBurst and
// dsl.PairInterval): a full bucket lets PairBurst messages go at once, then one
// per PairInterval.
const minLag = -(PairBurst - 1) * PairInterval

// frame is the quiet-hours clock a flow's waits run under: path summaries carry
// quiet-hours counts only within one frame.
type frame struct {
	key  string        // "" without quiet hours
	unit time.Duration // the most a night defers: span + clock shift
	day  time.Duration // the least real time from one night's end to the next night
	zone bool          // the quiet hours are in the contact's zone
}

func frameOf(f *Flow) frame {
	q := f.QuietHours
	if q == nil {
		return frame{}
	}
	return frame{key: q.Timezone + " " + q.From.String() + " " + q.To.String(),
		unit: satAdd(q.Span(), q.Shift()), day: Day - q.Span() - q.Shift(), zone: q.Location == nil}
}

// e is the bound of a path summary under a frame: c + t plus a night's deferral
// for each night the waits can be deferred in. Two deferrals fall in different
// nights only with at least a day (fr.day) of other time between them, so there
// are at most 1 + t/day of them, and at most q.
func (fr frame) e(s *pstate) time.Duration {
	d := satAdd(s.c, s.t)
	if fr.key == "" || s.q == 0 {
		return d
	}
	nights := s.q
	if fr.day > 0 {
		nights = min(nights, 1+int(s.t/fr.day))
	}
	return satAdd(d, satMul(fr.unit, nights))
}

// collapse counts a summary in full: the same bound, and the quiet-hours
// counting starts afresh (sound: a fresh count never charges less).
func (fr frame) collapse(s *pstate) *pstate {
	n := *s
	n.c, n.t, n.q = fr.e(s), 0, 0
	return &n
}

// sentAt is when a send's message may leave under a summary: its bound plus the
// pacing lag.
func (fr frame) sentAt(s *pstate) time.Duration {
	return satAdd(fr.e(s), max(s.lag, 0))
}

// dominates reports whether summary a is at least as bad as b in every respect.
func dominates(a, b *pstate) bool {
	return a.c >= b.c && a.t >= b.t && a.q >= b.q && a.lag >= b.lag
}

// maxStates bounds the summaries kept per step; past it they are merged into
// their componentwise maximum (sound, less precise).
const maxStates = 12

// addState adds a summary to a set unless one there is at least as bad.
func addState(set []*pstate, s *pstate, fr frame) []*pstate {
	for _, x := range set {
		if dominates(x, s) {
			return set
		}
	}
	kept := set[:0]
	for _, x := range set {
		if !dominates(s, x) {
			kept = append(kept, x)
		}
	}
	kept = append(kept, s)
	if len(kept) <= maxStates {
		return kept
	}
	m := *kept[0]
	worst := kept[0]
	for _, x := range kept[1:] {
		m.c, m.t, m.q, m.lag = max(m.c, x.c), max(m.t, x.t), max(m.q, x.q), max(m.lag, x.lag)
		if fr.e(x) > fr.e(worst) {
			worst = x
		}
	}
	m.edge, m.from, m.note = worst.edge, worst.from, worst.note
	return []*pstate{&m}
}

// transfer is a summary after leaving node `from` along edge e: the step's own
// effect (a send takes a pacing slot; setting contact.timezone moves the contact's
// nights), the time the edge takes, and the frame of the flow it enters.
func (a *Analysis) transfer(s *pstate, ei int, fr frame) *pstate {
	e := a.edges[ei]
	n := *s
	n.edge, n.from, n.note = ei, s, ""
	st := a.nodes[e.from].step
	switch st.Kind {
	case ActSend:
		n.lag = max(n.lag, minLag) + PairInterval
	case ActSet:
		if fr.zone && setsTimezone(st) {
			n = *fr.collapse(&n)
			n.edge, n.from, n.note = ei, s, ""
		}
	}
	var least time.Duration // the least time the edge takes (pacing drains)
	switch e.Kind {
	case EdgeWait:
		if w := st.Wait; w != nil {
			least = w.For
			n.t = satAdd(n.t, w.For)
			q := a.nodes[e.from].flow.QuietHours
			if w.At != nil {
				n.t = satAdd(n.t, Day+MaxClockShift)
				switch {
				case q != nil && q.Location != nil:
					n.q++ // at is on the contact's clock: any time of the night
				case q != nil && q.Contains(*w.At):
					extra := q.To.Duration() - w.At.Duration()
					if extra < 0 {
						extra += Day
					}
					n.t = satAdd(n.t, extra+q.Shift())
				}
			} else if q != nil {
				n.q++
			}
		}
	case EdgeTimeout:
		least = e.Add
		n.t = satAdd(n.t, e.Add)
	}
	if least > 0 {
		n.lag = max(n.lag-least, minLag)
	}
	if e.Kind == EdgeStartFlow {
		if to := frameOf(e.ToFlow); to.key != fr.key {
			c := fr.collapse(&n)
			c.edge, c.from = ei, s
			return c
		}
	}
	return &n
}

// setsTimezone reports whether a set step assigns contact.timezone.
func setsTimezone(s *Step) bool {
	for _, a := range s.Set {
		if a.Contact && a.Name == "timezone" {
			return true
		}
	}
	return false
}

// Analyze runs the window analysis.
func Analyze(p *Project) *Analysis {
	total := 0
	for _, f := range p.Flows {
		total += len(f.Steps)
	}
	a := &Analysis{p: p, index: make(map[*Step]int, total), loop: map[int][]int{}, infFrom: map[int]*Flow{},
		overflow: map[int]bool{}, bounded: map[int]*counterLoop{},
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

	pumping := map[int][]int{} // component -> loop steps, when it adds time unbounded
	for _, e := range a.edges {
		c := comp[e.from]
		if e.Resets() || c != comp[e.to] || e.Max() <= 0 || !reached[e.from] {
			continue
		}
		if _, ok := pumping[c]; ok {
			continue
		}
		if _, ok := a.bounded[c]; ok {
			continue
		}
		if cl := a.counterBound(members[c], comp, out); cl != nil {
			a.bounded[c] = cl
			continue
		}
		pumping[c] = a.cycleThrough(e, comp, out)
	}

	if len(pumping) > 0 || len(a.bounded) > 0 {
		a.hopNote = map[[2]int]string{}
		for _, e := range a.edges {
			k := [2]int{e.from, e.to}
			if _, ok := a.hopNote[k]; !ok && !e.Resets() {
				a.hopNote[k] = e.Note
			}
		}
	}

	a.budget = make([]Budget, n)
	a.worst = make([]*pstate, n)
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

	// Path summaries over the rest, in topological order of the components
	// (Tarjan numbers components in reverse topological order).
	states := make([][]*pstate, n)
	for c := maxComp; c >= 0; c-- {
		ms := members[c]
		if a.budget[ms[0]].Inf || !reached[ms[0]] {
			continue // a whole component is unbounded or unreached together
		}
		// What enters the component: starts of the clock and edges from outside.
		entering := map[int][]*pstate{}
		overflowIn := -1
		for _, i := range ms {
			fr := frameOf(a.nodes[i].flow)
			if zeroStart[i] {
				// The contact's pacing bucket may owe one interval for the
				// message sent just before the reply.
				entering[i] = addState(entering[i], &pstate{edge: -1, lag: PairInterval}, fr)
			}
			for _, ei := range in[i] {
				e := a.edges[ei]
				if comp[e.from] == c || e.Resets() || !reached[e.from] {
					continue
				}
				if a.overflow[e.from] {
					overflowIn = ei
					continue
				}
				src := frameOf(a.nodes[e.from].flow)
				for _, s := range states[e.from] {
					entering[i] = addState(entering[i], a.transfer(s, ei, src), fr)
				}
			}
		}
		if overflowIn >= 0 {
			for _, i := range ms {
				a.budget[i] = Budget{Reached: true, Inf: true}
				a.overflow[i] = true
			}
			a.pred[a.edges[overflowIn].to] = overflowIn
			a.spreadPred(ms, comp, out, a.edges[overflowIn].to)
			continue
		}
		if len(ms) == 1 && !a.selfLoop(ms[0], out) {
			states[ms[0]] = entering[ms[0]]
		} else {
			a.spreadComponent(c, ms, comp, out, entering, states)
		}
		for _, i := range ms {
			a.settle(i, states[i], comp, out)
		}
	}
	a.computeRoom(in)
	return a
}

// computeRoom fills a.room: a free-form send whose message leaves, by its
// bound, before the margin below SendDeadline gives the time left to that
// threshold, and every step before it on a path without a reply gets the least
// of what is ahead of it. Sends already past it (they go out as their fallback
// template or are reported) and unbounded ones take nothing.
func (a *Analysis) computeRoom(in [][]int) {
	n := len(a.nodes)
	a.room = make([]time.Duration, n)
	var queue []int
	for i := range a.room {
		a.room[i] = horizon
		b, st := a.budget[i], a.nodes[i].step
		if st.Kind != ActSend || st.Send == nil || !st.Send.FreeForm() || !b.Reached || b.Inf {
			continue
		}
		if limit := SendDeadline - DefaultMargin; b.Sent() < limit {
			a.room[i] = limit - b.Sent()
		} else if b.Sent() < SendDeadline {
			a.room[i] = 0
		} else {
			continue
		}
		queue = append(queue, i)
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, ei := range in[i] {
			e := a.edges[ei]
			if e.Resets() || a.room[e.from] <= a.room[i] {
				continue
			}
			a.room[e.from] = a.room[i]
			queue = append(queue, e.from)
		}
	}
}

// TimeoutRoom is how much later than the analysis counts a reply timeout of
// step s (a wait_for_reply) may end: the time the free-form messages on its
// no-reply path (up to the contact's next message) have left before the margin
// below SendDeadline, by their bounds; a very long duration when none limits
// it, 0 for a step the analysis does not know. The engine gives a contact whose
// message reached it late the whole timeout from when the run starts waiting,
// as far as this room allows (docs/LANGUAGE.md, late webhooks).
func (a *Analysis) TimeoutRoom(s *Step) time.Duration {
	i, found := a.index[s]
	if !found || a.room == nil {
		return 0
	}
	// Not a send itself, so its room is the least of the steps after it.
	return a.room[i]
}

// selfLoop reports whether a node has a non-reply edge to itself.
func (a *Analysis) selfLoop(i int, out [][]int) bool {
	for _, ei := range out[i] {
		if e := a.edges[ei]; e.to == i && !e.Resets() {
			return true
		}
	}
	return false
}

// spreadComponent gives every member of a loop (a zero-time one, or one a
// counter bounds) the summaries entering it, adjusted for what repeating the
// loop can add: pacing for its sends, the loop's whole time for a bounded one,
// a new count of nights after the contact's zone changes.
func (a *Analysis) spreadComponent(c int, ms []int, comp []int, out [][]int, entering map[int][]*pstate, states [][]*pstate) {
	sends := 0
	tz := false
	for _, i := range ms {
		st := a.nodes[i].step
		sends += b2i(st.Kind == ActSend)
		tz = tz || st.Kind == ActSet && setsTimezone(st)
	}
	cl := a.bounded[c]
	for _, entry := range ms {
		fr := frameOf(a.nodes[entry].flow)
		for _, s0 := range entering[entry] {
			var variants []*pstate
			switch {
			case cl != nil:
				v := fr.collapse(s0)
				v.c = satAdd(v.c, cl.time)
				v.lag = satAdd(max(v.lag, 0), satMul(PairInterval, (cl.times+1)*sends))
				v.note = cl.note
				variants = append(variants, v)
			default:
				variants = append(variants, s0)
				if sends > 0 {
					v := *s0
					v.lag = satAdd(max(v.lag, 0), satMul(PairInterval, MaxStepsPerAdvance))
					variants = append(variants, &v)
				}
				if tz && fr.zone {
					for _, v := range append([]*pstate(nil), variants...) {
						variants = append(variants, fr.collapse(v))
					}
				}
			}
			for _, v := range variants {
				// The entry keeps the summary; the other members get copies
				// whose witness continues through the loop.
				copies := map[int]*pstate{entry: v}
				states[entry] = addState(states[entry], v, fr)
				queue := []int{entry}
				for len(queue) > 0 {
					i := queue[0]
					queue = queue[1:]
					for _, ei := range out[i] {
						e := a.edges[ei]
						if e.Resets() || comp[e.to] != c {
							continue
						}
						if _, done := copies[e.to]; done {
							continue
						}
						cp := *copies[i]
						cp.edge, cp.from, cp.note = ei, copies[i], ""
						copies[e.to] = &cp
						states[e.to] = addState(states[e.to], &cp, fr)
						queue = append(queue, e.to)
					}
				}
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// spreadPred sets witness edges inside a component from where it was entered.
func (a *Analysis) spreadPred(ms []int, comp []int, out [][]int, at int) {
	c := comp[at]
	seen := map[int]bool{at: true}
	queue := []int{at}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, ei := range out[i] {
			e := a.edges[ei]
			if e.Resets() || comp[e.to] != c || seen[e.to] {
				continue
			}
			seen[e.to] = true
			a.pred[e.to] = ei
			queue = append(queue, e.to)
		}
	}
}

// settle turns a node's summaries into its budget.
func (a *Analysis) settle(i int, set []*pstate, comp []int, out [][]int) {
	if len(set) == 0 {
		return
	}
	fr := frameOf(a.nodes[i].flow)
	send := a.nodes[i].step.Kind == ActSend
	var worst *pstate
	var d, sent time.Duration
	for _, s := range set {
		e, at := fr.e(s), fr.e(s)
		if send {
			at = fr.sentAt(s)
		}
		if worst == nil || at > sent || at == sent && e > d {
			worst, d, sent = s, e, at
		}
	}
	b := Budget{Reached: true, D: d, Pace: sent - d}
	if sent >= horizon {
		b = Budget{Reached: true, Inf: true}
		a.overflow[i] = true
	}
	a.budget[i] = b
	a.worst[i] = worst
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
	note := ""
	// Unbounded steps: back along the edges that made them so.
	seen := map[int]bool{}
	for a.worst[i] == nil && !seen[i] {
		seen[i] = true
		nd := a.nodes[i]
		rev = append(rev, Hop{Flow: nd.flow, Step: nd.step, Note: note})
		ei := a.pred[i]
		if ei < 0 {
			reverseHops(rev)
			return rev
		}
		note = a.edges[ei].Note // how the run left the hop added next
		i = a.edges[ei].from
	}
	if a.worst[i] == nil {
		reverseHops(rev)
		return rev
	}
	// Bounded ones: back along the path summary behind the bound.
	st := a.worst[i]
	for k := 0; st != nil && k <= len(a.edges)+len(a.nodes); k++ {
		nd := a.nodes[i]
		h := Hop{Flow: nd.flow, Step: nd.step, Note: note}
		if st.note != "" {
			h.Note = st.note
			if note != "" {
				h.Note += ", then " + note
			}
		}
		rev = append(rev, h)
		if st.edge < 0 {
			break
		}
		note = a.edges[st.edge].Note
		i = a.edges[st.edge].from
		st = st.from
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

package dsl

// guardWalk is a breadth-first walk over every flow's steps that carries one
// boolean fact along each path ("the contact's phone is known", "the contact
// consented"), for the rules that warn where a send is reachable without it.
// It keeps the first predecessor of each (step, fact) state, so the path to a
// step reached without the fact is a shortest witness.
type guardWalk struct {
	flowOf map[*Step]*Flow
	pred   map[guardState]guardPred
}

type guardState struct {
	step  *Step
	holds bool
}

type guardPred struct {
	from guardState
	note string
	ok   bool
}

// walkGuard walks the project: atEntry says whether the fact holds at a flow's
// first step, along whether it holds after taking edge e from a state.
func (c *checker) walkGuard(atEntry func(*Flow) bool, along func(from guardState, e Edge) bool) *guardWalk {
	w := &guardWalk{flowOf: map[*Step]*Flow{}, pred: map[guardState]guardPred{}}
	for _, f := range c.p.Flows {
		for _, s := range f.Steps {
			w.flowOf[s] = f
		}
	}
	var queue []guardState
	visit := func(s guardState, from guardPred) {
		if _, seen := w.pred[s]; seen {
			return
		}
		w.pred[s] = from
		queue = append(queue, s)
	}
	for _, f := range c.p.Flows {
		if len(f.Steps) == 0 || f.Trigger.Kind == "" {
			continue
		}
		visit(guardState{f.Steps[0], atEntry(f)}, guardPred{})
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		for _, e := range w.flowOf[st.step].Edges(st.step, c.p.Flow) {
			if e.To == nil {
				continue
			}
			visit(guardState{e.To, along(st, e)}, guardPred{from: st, note: e.Note, ok: true})
		}
	}
	return w
}

// unguarded reports whether s can be reached without the fact.
func (w *guardWalk) unguarded(s *Step) bool {
	_, ok := w.pred[guardState{s, false}]
	return ok
}

// pathTo is the witness path from an entry to s reached without the fact.
func (w *guardWalk) pathTo(s *Step) []Hop {
	var hops []Hop
	st, note := guardState{s, false}, ""
	for len(hops) <= len(w.pred) {
		hops = append(hops, Hop{Flow: w.flowOf[st.step], Step: st.step, Note: note})
		p := w.pred[st]
		if !p.ok {
			break
		}
		st, note = p.from, p.note
	}
	reverseHops(hops)
	return hops
}

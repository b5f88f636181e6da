package engine

import (
	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// convert records a conversion of the run, once per run and step: a loop that
// comes back to the step, or a batch replayed after a crash, records nothing
// more (the store ignores a second row for the same run and step too). A value
// that cannot be computed leaves the conversion without one.
func (b *batch) convert(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) {
	cv := s.Convert
	if cv == nil {
		return
	}
	o := b.outcomes()
	key := runStep{r.ID, s.ID}
	if o.converted[key] {
		return
	}
	o.converted[key] = true
	env := b.env(r, c)
	conv := &store.Conversion{RunID: r.ID, Contact: c.WaID, FlowID: f.ID, Step: s.ID, Event: cv.Event, At: b.now,
		Variants: copyVariants(env.Run.Variants)}
	if cv.Value != nil {
		v, err := cv.Value.Eval(env)
		if err != nil {
			b.stepError(f, s, err)
			o.valueErrs[conv] = err.Error()
		} else {
			conv.Value, conv.Currency = &v, cv.Currency
		}
	}
	o.conversions = append(o.conversions, conv)
}

func copyVariants(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

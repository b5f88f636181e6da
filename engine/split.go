package engine

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// split assigns the run a variant and returns the step it continues at. The
// variant is a deterministic function of the contact, the flow and the step
// (PickVariant), so a contact gets the same one in every run and after any
// restart; a run that comes back to the split keeps the variant recorded on it.
func (b *batch) split(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) *dsl.Step {
	if len(s.Split) == 0 {
		return f.After(s)
	}
	env := b.env(r, c)
	var v *dsl.SplitVariant
	if name, ok := env.Run.Variants[s.ID]; ok {
		for _, x := range s.Split {
			if x.Variant == name {
				v = x
			}
		}
	}
	if v == nil {
		v = PickVariant(c.WaID, f.ID, s.ID, s.Split)
		env.Run.Variants[s.ID] = v.Variant
		o := b.outcomes()
		o.variants = append(o.variants, &store.RunVariant{RunID: r.ID, FlowID: f.ID, Step: s.ID, Variant: v.Variant, At: b.now})
		b.e.m.SplitAssigned.WithLabelValues(f.ID, s.ID, v.Variant).Inc()
	}
	next, _ := f.Step(v.Goto)
	return next
}

// PickVariant chooses a variant by weight from a hash of the contact key, the
// flow and the step: uniform over the weights' total, the same for the same
// three whatever the run, the process or the machine. Changing the weights
// (or the variants) reassigns contacts.
func PickVariant(contact, flow, step string, vs []*dsl.SplitVariant) *dsl.SplitVariant {
	h := sha256.Sum256([]byte(contact + "\x00" + flow + "\x00" + step))
	total := uint64(dsl.SplitTotal(vs))
	// 64 bits reduced modulo a total of at most a few million: the bias is
	// below 2^-40.
	x := binary.BigEndian.Uint64(h[:8]) % total
	for _, v := range vs {
		if x < uint64(v.Weight) {
			return v
		}
		x -= uint64(v.Weight)
	}
	return vs[len(vs)-1]
}

package engine

import (
	"encoding/json"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// batch is the unit of work of one transaction: it loads what a batch of events
// needs in a few queries, applies the events in memory (in order, so later events
// of a contact see the effects of earlier ones) and flushes everything with
// multi-row statements. It is the engine's only writer of runs, contacts, timers
// and the outbox.
type batch struct {
	e     *Engine
	tx    store.Tx
	now   time.Time
	flows *flowSet

	contacts map[string]*store.Contact
	liveRuns map[string][]*store.Run // per contact, oldest first
	loaded   map[string]bool         // contacts whose live runs are loaded
	envs     map[int64]*dsl.Env      // decoded run state, per run

	dirtyContacts map[string]*store.Contact
	dirtyRuns     map[int64]*store.Run
	runOrder      []*store.Run
	outbox        []*store.OutboxItem
	timers        []*store.Timer
	doneTimers    []int64
	outboxChanges []*store.OutboxChange // guarded, applied in order
	statuses      []*store.StatusRecord
	accounts      []*whatsapp.AccountUpdate // template and phone number updates, applied by flush
	reached       []*store.RunStep          // steps executed (the report's funnel)
	marks         []*store.StepMark         // replies, deliveries and reads of steps

	outboxByID       map[int64]*store.OutboxItem // rows statuses refer to
	outboxByProvider map[string]*store.OutboxItem
	cancelOutbox     map[string]bool // contacts whose pending messages are cancelled

	ids    map[string]string // WhatsApp id → contact key, as far as resolved
	newIDs map[string]string // links to store
	merges [][2]string       // contacts merged (from, into), in order

	// anchor is when the steps being run logically happen: the own timestamp
	// of the message they answer, or the due time of the timer that resumed
	// them (zero: now). Waits and reply timeouts count from it, so a webhook
	// that arrives late, or a timer that fires late, does not lengthen the time
	// the validator's analysis bounds; a wait already over ends at once.
	anchor time.Time
	// chain is how many steps the advance in progress has taken before the
	// current run (runs that start each other with start_flow share the budget).
	chain int
	// chainOut is where the advance in progress began in outbox.
	chainOut int
	// overdue holds timers already due when an inbox batch starts, by run: a
	// message first fires the reply timeouts due before it was written (see
	// fireOverdue).
	overdue map[int64][]*store.Timer
	// out is what the batch's runs achieved (clicks, variants, conversions).
	out *outcomes
}

func (e *Engine) newBatch(tx store.Tx) *batch {
	return &batch{e: e, tx: tx, now: e.Now(), flows: e.flows.Load(),
		contacts: map[string]*store.Contact{}, liveRuns: map[string][]*store.Run{}, loaded: map[string]bool{},
		envs: map[int64]*dsl.Env{}, dirtyContacts: map[string]*store.Contact{}, dirtyRuns: map[int64]*store.Run{},
		cancelOutbox: map[string]bool{},
		ids:          map[string]string{}, newIDs: map[string]string{}}
}

// load fetches contacts and their live runs (those not loaded yet).
func (b *batch) load(waIDs []string) error {
	var need []string
	seen := map[string]bool{}
	for _, id := range waIDs {
		if id != "" && !b.loaded[id] && !seen[id] {
			need = append(need, id)
			seen[id] = true
		}
	}
	if len(need) == 0 {
		return nil
	}
	cs, err := b.tx.Contacts(need)
	if err != nil {
		return err
	}
	for id, c := range cs {
		b.contacts[id] = c
	}
	runs, err := b.tx.LiveRuns(need)
	if err != nil {
		return err
	}
	for _, r := range runs {
		b.liveRuns[r.Contact] = append(b.liveRuns[r.Contact], r)
	}
	for _, id := range need {
		b.loaded[id] = true
	}
	return nil
}

// contact returns a loaded contact, creating it (unsaved until touched) if new.
func (b *batch) contact(waID string) *store.Contact {
	if c, ok := b.contacts[waID]; ok {
		return c
	}
	c := &store.Contact{WaID: waID, Attributes: map[string]any{}, CreatedAt: b.now, UpdatedAt: b.now}
	b.contacts[waID] = c
	return c
}

func (b *batch) touchContact(c *store.Contact) {
	c.UpdatedAt = b.now
	b.dirtyContacts[c.WaID] = c
}

func (b *batch) touchRun(r *store.Run) {
	r.UpdatedAt = b.now
	if _, ok := b.dirtyRuns[r.ID]; !ok {
		b.dirtyRuns[r.ID] = r
		b.runOrder = append(b.runOrder, r)
	}
}

// env returns the expression environment of a run, decoded once per batch. Vars
// and the contact are shared, so `set` and tags are seen by later steps.
func (b *batch) env(r *store.Run, c *store.Contact) *dsl.Env {
	env, ok := b.envs[r.ID]
	if !ok {
		env = &dsl.Env{Vars: r.Vars}
		if env.Vars == nil {
			env.Vars = map[string]any{}
			r.Vars = env.Vars
		}
		_ = json.Unmarshal(r.Entry, &env.Entry)
		_ = json.Unmarshal(r.Reply, &env.Reply)
		if len(r.Event) > 2 {
			_ = json.Unmarshal(r.Event, &env.Event)
		}
		if env.Event == nil {
			env.Event = map[string]any{}
		}
		env.Run.Variants = b.runVariants(r)
		b.envs[r.ID] = env
	}
	env.Now = b.now
	env.Contact = contactEnv(c)
	return env
}

// flush writes every change of the batch.
func (b *batch) flush() error {
	for _, m := range b.merges {
		if err := b.tx.MergeContact(m[0], m[1]); err != nil {
			return err
		}
	}
	if len(b.newIDs) > 0 {
		if err := b.tx.LinkContactIDs(b.newIDs); err != nil {
			return err
		}
	}
	if len(b.dirtyContacts) > 0 {
		cs := make([]*store.Contact, 0, len(b.dirtyContacts))
		for _, c := range b.dirtyContacts {
			cs = append(cs, c)
		}
		if err := b.tx.SaveContacts(cs); err != nil {
			return err
		}
	}
	if len(b.runOrder) > 0 {
		if err := b.tx.SaveRuns(b.runOrder); err != nil {
			return err
		}
	}
	if len(b.reached) > 0 {
		if err := b.tx.InsertRunSteps(b.reached); err != nil {
			return err
		}
	}
	if len(b.marks) > 0 {
		if err := b.tx.MarkRunSteps(b.marks); err != nil {
			return err
		}
	}
	if len(b.cancelOutbox) > 0 {
		// Before this batch's new messages go in: those are already settled in memory.
		if err := b.tx.CancelPendingOutbox(keys(b.cancelOutbox), b.now); err != nil {
			return err
		}
	}
	if err := b.flushOutcomes(); err != nil {
		return err
	}
	if err := b.capQueues(); err != nil {
		return err
	}
	if len(b.outbox) > 0 {
		if err := b.tx.InsertOutbox(b.outbox); err != nil {
			return err
		}
	}
	if len(b.timers) > 0 {
		b.e.timersAdded(b.tx, b.timers)
		if err := b.tx.InsertTimers(b.timers); err != nil {
			return err
		}
	}
	if len(b.doneTimers) > 0 {
		if err := b.tx.DeleteTimers(b.doneTimers); err != nil {
			return err
		}
	}
	if len(b.statuses) > 0 {
		if _, err := b.tx.InsertStatuses(b.statuses); err != nil {
			return err
		}
	}
	if len(b.outboxChanges) > 0 {
		if _, err := b.tx.ChangeOutbox(b.outboxChanges); err != nil {
			return err
		}
	}
	for _, a := range b.accounts {
		if err := b.applyAccount(a); err != nil {
			return err
		}
	}
	if len(b.accounts) > 0 && len(b.outbox) > 0 {
		// The sender's view of the templates changes with this commit:
		// nothing is claimed against the old one.
		b.e.notifySender()
	} else if len(b.outbox) > 0 {
		wake, err := b.e.handOff(b.tx)
		if err != nil {
			return err
		}
		if wake {
			b.e.notifySender()
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// capQueues drops the batch's new messages for contacts who already have
// MaxQueuedPerContact messages waiting, so one contact cannot fill the outbox
// (and every claim round) with replies the pair rate lets out one per
// interval. Each drop is counted and logged per contact.
func (b *batch) capQueues() error {
	max := b.e.opts.MaxQueuedPerContact
	if max < 0 || len(b.outbox) == 0 {
		return nil
	}
	var contacts []string
	seen := map[string]bool{}
	for _, it := range b.outbox {
		if !seen[it.Contact] {
			seen[it.Contact] = true
			contacts = append(contacts, it.Contact)
		}
	}
	open, err := b.tx.OpenOutboxCounts(contacts)
	if err != nil {
		return err
	}
	kept := b.outbox[:0]
	dropped := map[string]int{}
	for _, it := range b.outbox {
		if open[it.Contact] >= max {
			dropped[it.Contact]++
			continue
		}
		open[it.Contact]++
		kept = append(kept, it)
	}
	b.outbox = kept
	for c, n := range dropped {
		b.e.m.Refusals.WithLabelValues("queue_full").Add(float64(n))
		b.e.log.Warn("contact's queue of unsent messages is full: new messages dropped", "contact", c, "dropped", n, "max_queued_per_contact", max)
	}
	return nil
}

// at is the moment the steps being run count their waits from: the anchor, never
// later than now.
func (b *batch) at() time.Time {
	if b.anchor.IsZero() || b.anchor.After(b.now) {
		return b.now
	}
	return b.anchor
}

// anchorAt sets the anchor for the steps about to run; the returned function
// restores the previous one.
func (b *batch) anchorAt(t time.Time) func() {
	prev := b.anchor
	b.anchor = t
	return func() { b.anchor = prev }
}

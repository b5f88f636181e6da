package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// Results recorded on processed inbox items.
const (
	ResultResumed   = "resumed"    // a waiting run got the reply
	ResultStarted   = "started"    // a flow started
	ResultNoMatch   = "no_match"   // recorded; nothing to run
	ResultOptedOut  = "opted_out"  // an opt-out keyword
	ResultStatus    = "status"     // a delivery status applied
	ResultStatusOld = "status_old" // a status for an unknown message, or older than what is known
	ResultIdentity  = "identity"   // a contact's ids changed (number change, new BSUID)
	ResultAccount   = "account"    // a template or phone number update recorded
)

// ProcessInbox processes one batch of stored inbound events, in arrival order, in
// one transaction. A poison event (one that cannot be decoded, or makes a bug
// panic) is recorded with its error as result and never blocks the queue.
//
// When the batch cannot be written because of what one of its events did (a
// value the store refuses, a panic), the whole transaction is rolled back and
// the events are processed again one per transaction: the others go through,
// and the culprit alone is recorded as failed, with its error, and none of its
// effects.
func (e *Engine) ProcessInbox(ctx context.Context) (int, error) {
	if e.flows.Load() == nil || !e.due(ctx).Inbox {
		return 0, nil
	}
	items, err := e.processInbox(ctx, e.opts.BatchSize)
	if err == nil || !isEventFault(err) {
		return len(items), err
	}
	e.log.Warn("an inbox batch failed because of one of its events; retrying them one per transaction", "events", len(items), "err", err)
	for range items {
		one, err := e.processInbox(ctx, 1)
		if err == nil {
			if len(one) == 0 {
				break
			}
			continue
		}
		if !isEventFault(err) || len(one) == 0 {
			return len(items), err
		}
		if err := e.failInboxEvent(ctx, one[0].ID, err); err != nil {
			return len(items), err
		}
	}
	return len(items), nil
}

// processInbox is one transaction of ProcessInbox over up to limit events; it
// returns the events it took, also when it failed.
func (e *Engine) processInbox(ctx context.Context, limit int) ([]*store.InboxItem, error) {
	var items []*store.InboxItem
	err := e.st.Write(ctx, func(tx store.Tx) (err error) {
		var err2 error
		items, err2 = tx.PendingInbox(limit)
		if err2 != nil || len(items) == 0 {
			return err2
		}
		var current *store.InboxItem
		defer func() {
			if r := recover(); r != nil {
				where := "inbox batch"
				if current != nil {
					where = "event " + current.Key
				}
				err = newPanicError(r, where)
			}
		}()
		b := e.newBatch(tx)
		decoded := make([]*Inbound, len(items))
		var ids []string
		var statusIDs []int64
		var providerIDs []string
		hasMessages := false
		for i, it := range items {
			in := &Inbound{}
			if err := json.Unmarshal(it.Payload, in); err != nil {
				it.Result = "error: undecodable payload: " + err.Error()
				continue
			}
			decoded[i] = in
			ids = append(ids, inboundIDs(in)...)
			hasMessages = hasMessages || in.Message != nil
			if in.Status != nil {
				var st whatsapp.Status
				if json.Unmarshal(in.Status, &st) == nil {
					if id := ParseCallbackData(st.BizOpaqueCallbackData); id != 0 {
						statusIDs = append(statusIDs, id)
					} else if st.ID != "" {
						providerIDs = append(providerIDs, st.ID)
					}
				}
			}
		}
		contacts, err := b.resolveIDs(ids)
		if err != nil {
			return err
		}
		if err := b.load(contacts); err != nil {
			return err
		}
		if err := b.loadOutbox(statusIDs, providerIDs); err != nil {
			return err
		}
		if hasMessages && e.timers.mayBeDue(b.now) {
			if err := b.loadOverdue(); err != nil {
				return err
			}
		}
		var results []func()
		for i, it := range items {
			if decoded[i] == nil {
				continue
			}
			current = it
			it.Result = b.handle(decoded[i])
			kind, result := it.Kind, resultLabel(it.Result)
			results = append(results, func() { e.m.Inbox.WithLabelValues(kind, result).Inc() })
		}
		if err := b.flush(); err != nil {
			return err
		}
		if err := tx.MarkProcessed(items, b.now); err != nil {
			return err
		}
		for _, inc := range results {
			inc()
		}
		return nil
	})
	return items, err
}

// loadOverdue loads the timers already due of the live runs of the batch's
// contacts (every one of them, however many other runs have timers due), for
// fireOverdue.
func (b *batch) loadOverdue() error {
	var ids []int64
	for _, rs := range b.liveRuns {
		for _, r := range rs {
			if r.Status == store.RunWaitingReply {
				ids = append(ids, r.ID)
			}
		}
	}
	b.overdue = map[int64][]*store.Timer{}
	if len(ids) == 0 {
		return nil
	}
	due, err := b.tx.DueTimersOf(ids, b.now)
	if err != nil {
		return err
	}
	for _, t := range due {
		b.overdue[t.RunID] = append(b.overdue[t.RunID], t)
	}
	return nil
}

// failInboxEvent records an event that cannot be processed (alone, it still
// failed with err) as failed, without any of its effects; the run a message
// would have resumed fails with the reason, so `funnel runs` shows it.
func (e *Engine) failInboxEvent(ctx context.Context, id int64, cause error) error {
	reason := faultText(cause)
	e.log.Error("inbound event failed: recorded with its error, the other events proceed", "inbox_id", id, "err", cause)
	return e.st.Write(ctx, func(tx store.Tx) error {
		items, err := tx.PendingInbox(1)
		if err != nil || len(items) == 0 || items[0].ID != id {
			return err
		}
		it := items[0]
		it.Result = "error: " + reason
		b := e.newBatch(tx)
		in := &Inbound{}
		if json.Unmarshal(it.Payload, in) == nil && in.Message != nil && in.WaID != "" {
			if err := b.load([]string{in.WaID}); err != nil {
				return err
			}
			if r := b.waitingRun(in.WaID); r != nil {
				b.endRun(r, store.RunFailed, "the reply "+it.Key+" could not be processed: "+reason)
			}
			if err := b.flush(); err != nil {
				return err
			}
		}
		if err := tx.MarkProcessed(items, b.now); err != nil {
			return err
		}
		e.m.Inbox.WithLabelValues(it.Kind, "error").Inc()
		return nil
	})
}

func resultLabel(r string) string {
	if len(r) > 6 && r[:6] == "error:" {
		return "error"
	}
	return r
}

// handle applies one event. A panic is not recovered here: the event's partial
// effects are in the batch, so the batch is dropped and its events run again
// one by one (see ProcessInbox).
func (b *batch) handle(in *Inbound) string {
	switch {
	case in.Message != nil:
		return b.handleMessage(in)
	case in.Status != nil:
		return b.handleStatus(in)
	case in.Event != nil:
		return b.handleEvent(in)
	case in.NewUserID != "":
		return b.handleIdentity(in)
	case in.Account != nil:
		return b.handleAccount(in)
	}
	return "error: empty event"
}

func (b *batch) handleMessage(in *Inbound) string {
	var m whatsapp.InboundMessage
	if err := json.Unmarshal(in.Message, &m); err != nil {
		return "error: " + err.Error()
	}
	c := b.resolve(in.WaID, in.UserID, in.ParentUserID)
	if m.Type == whatsapp.InSystem {
		return b.systemMessage(c, m.System)
	}
	if phone := sharedPhone(c, &m); phone != "" {
		// The user shared their own number (REQUEST_CONTACT_INFO): a contact
		// known only by BSUID gets it, merged with any contact of that number.
		if other := b.known(phone); other != nil && other != c {
			c = b.merge(c, other)
		}
		b.attach(c, phone, "", "", true)
	}
	if in.Name != "" && c.Name == "" {
		c.Name = in.Name
	}
	if in.Username != "" && in.Username != c.Username {
		c.Username = in.Username
	}
	if in.PhoneNumberID != "" {
		c.PhoneNumberID = in.PhoneNumberID
	}
	// The window runs from the message's own timestamp, never moved back by a
	// late-arriving older message.
	if in.Time.After(c.LastInboundAt) {
		c.LastInboundAt = in.Time
	}
	b.touchContact(c)
	// The steps this message leads to happen, for their waits and reply
	// timeouts, at its own timestamp (see batch.anchor).
	defer b.anchorAt(in.Time)()
	b.recordClick(c, m.Referral, in.Time)
	reply := m.Reply()
	if b.e.optOut[normalizeKeyword(reply.Text)] {
		b.optOut(c, "keyword:"+normalizeKeyword(reply.Text))
		return ResultOptedOut
	}
	b.fireOverdue(c.WaID, in.Time)
	if r := b.waitingRun(c.WaID); r != nil {
		f, err := b.e.flowForVersion(b.tx, r.VersionID)
		if err != nil {
			b.endRun(r, store.RunFailed, err.Error())
			return "error: " + err.Error()
		}
		env := b.env(r, c)
		env.Reply = replyEnv(reply)
		r.Reply = mustMarshal(env.Reply)
		b.marks = append(b.marks, &store.StepMark{RunID: r.ID, Step: r.Step, Kind: store.MarkReplied, At: b.now})
		s, _ := f.Step(r.Step)
		if s == nil {
			b.endRun(r, store.RunFailed, "step "+r.Step+" no longer exists")
			return "error: step vanished"
		}
		b.advance(r, f, c, f.After(s))
		return ResultResumed
	}
	entry := &dsl.EntryEnv{Text: reply.Text}
	if ref := m.Referral; ref != nil {
		entry.SourceID, entry.SourceURL, entry.SourceType = ref.SourceID, ref.SourceURL, ref.SourceType
		entry.Headline, entry.Body, entry.MediaType, entry.CtwaClid = ref.Headline, ref.Body, ref.MediaType, ref.CtwaClid
	}
	for _, f := range b.matchFlows(c, m.Referral, reply.Text) {
		if r := b.startRun(c, f, entry, nil); r != nil {
			// The first message is the entry; a flow that waits for a reply at once
			// still needs a new message.
			return ResultStarted
		}
	}
	return ResultNoMatch
}

// fireOverdue fires the contact's reply timeouts that fell due before the
// message was written, earliest first, before the message is handled (the
// daemon was down, or the timer loop has not caught up yet): a reply written
// after the timeout does not resume the wait that timed out. (Overdue `wait`
// timers are left to FireTimers: the message is not a reply to a question the
// contact has not been sent yet.)
func (b *batch) fireOverdue(waID string, written time.Time) {
	if len(b.overdue) == 0 {
		return
	}
	for {
		var next *store.Timer
		var run *store.Run
		for _, r := range b.liveRuns[waID] {
			if !r.Live() {
				continue
			}
			for _, t := range b.overdue[r.ID] {
				if t.Kind == store.TimerReplyTimeout && t.Seq == r.WaitSeq && !t.DueAt.After(written) &&
					(next == nil || t.DueAt.Before(next.DueAt)) {
					next, run = t, r
				}
			}
		}
		if next == nil {
			return
		}
		ts := b.overdue[run.ID]
		for i, t := range ts {
			if t == next {
				b.overdue[run.ID] = append(ts[:i:i], ts[i+1:]...)
				break
			}
		}
		b.doneTimers = append(b.doneTimers, next.ID)
		b.fire(next, run)
	}
}

// waitingRun is the contact's most recent run waiting for a reply.
func (b *batch) waitingRun(waID string) *store.Run {
	runs := b.liveRuns[waID]
	for i := len(runs) - 1; i >= 0; i-- {
		if r := runs[i]; r.Live() && r.Status == store.RunWaitingReply {
			return r
		}
	}
	return nil
}

// optOut records an opt-out, cancels the contact's live runs and the messages
// they had queued.
func (b *batch) optOut(c *store.Contact, source string) {
	c.Consent, c.ConsentAt, c.ConsentSource = store.ConsentOut, b.now, source
	b.touchContact(c)
	for _, r := range b.liveRuns[c.WaID] {
		if r.Live() {
			b.endRun(r, store.RunCancelled, "opted out")
		}
	}
	for _, it := range b.outbox {
		if it.Contact == c.WaID && it.Status == store.OutPending {
			it.Status, it.LastError = store.OutCancelled, "contact opted out before it was sent"
		}
	}
	b.cancelOutbox[c.WaID] = true
}

func (b *batch) handleEvent(in *Inbound) string {
	flows := b.flows.event[in.Event.Name]
	if len(flows) == 0 {
		return ResultNoMatch
	}
	c := b.resolve(in.WaID, in.UserID, in.ParentUserID)
	b.touchContact(c)
	payload := in.Event.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	raw := mustMarshal(payload)
	started := false
	for _, f := range flows {
		if b.startRun(c, f, nil, raw) != nil {
			started = true
		}
	}
	if started {
		return ResultStarted
	}
	return ResultNoMatch
}

// replyEnv is what expressions see of the contact's reply.
func replyEnv(r whatsapp.Reply) dsl.ReplyEnv {
	env := dsl.ReplyEnv{Text: r.Text, Button: r.Button, Payload: r.Payload, Type: r.Type, Form: r.Form}
	if l := r.Location; l != nil {
		env.Location = dsl.LocationEnv{Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address, URL: l.URL}
	}
	return env
}

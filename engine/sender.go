package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// sender owns pacing and the paused state; SendOutbox is its round.
type sender struct {
	marks  marker
	e      *Engine
	mu     sync.Mutex
	phones map[string]*bucket
	pair   *pairLimiter

	paused      string // reason; "" when sending
	pausedUntil time.Time
	gen         int       // counts this process's changes of the pause
	dirty       bool      // a change not stored yet
	checked     time.Time // wall-clock time the stored pause was last read
	persistMu   sync.Mutex
}

func newSender(e *Engine) *sender {
	return &sender{e: e, phones: map[string]*bucket{},
		pair: newPairLimiter(e.opts.PairBurst, e.opts.PairInterval, 100_000)}
}

func (s *sender) phone(id string) *bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.phones[id]
	if b == nil {
		// A burst of 1/50 s of messages: the pace holds even over short spans.
		b = newBucket(s.e.opts.Rate, int(math.Max(1, s.e.opts.Rate/50)))
		s.phones[id] = b
	}
	return b
}

// Paused returns why the sender is stopped ("" when it is not). The pause is
// stored: a pause or resume by another replica (or before a restart) counts
// here within pauseRecheck.
func (e *Engine) Paused() string {
	e.refreshPause()
	s := e.sender
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused != "" && !s.pausedUntil.IsZero() && !e.Now().Before(s.pausedUntil) {
		e.m.SenderPaused.WithLabelValues(s.paused).Set(0)
		s.paused = ""
	}
	return s.paused
}

// pauseRecheck is how often Paused reads the stored pause.
var pauseRecheck = time.Second

// refreshPause reads the stored pause when it was last read pauseRecheck ago,
// and takes it unless a change of this process is not stored yet (then it
// stores that change again).
func (e *Engine) refreshPause() {
	s := e.sender
	s.mu.Lock()
	if time.Since(s.checked) < pauseRecheck {
		s.mu.Unlock()
		return
	}
	s.checked = time.Now()
	if s.dirty {
		s.mu.Unlock()
		e.storePause()
		return
	}
	gen := s.gen
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	p, err := e.st.SenderPaused(ctx)
	cancel()
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty || s.gen != gen {
		return
	}
	switch active := p.Active(e.Now()); {
	case active && (s.paused != p.Reason || !s.pausedUntil.Equal(p.Until)):
		if s.paused == "" {
			e.log.Error("sender stopped (stored pause): WhatsApp refuses every send until this is fixed", "reason", p.Reason, "until", p.Until)
		}
		s.paused, s.pausedUntil = p.Reason, p.Until
		e.m.SenderPaused.WithLabelValues(p.Reason).Set(1)
	case !active && s.paused != "":
		e.m.SenderPaused.WithLabelValues(s.paused).Set(0)
		e.log.Info("sender resumed (stored pause cleared)", "was", s.paused)
		s.paused, s.pausedUntil = "", time.Time{}
		e.notifySender()
	}
}

// storePause writes this process's pause state to the store, in the
// background (a pause is noticed inside write transactions, and SQLite has one
// writer connection), one write at a time, the latest state each time.
func (e *Engine) storePause() {
	s := e.sender
	go func() {
		s.persistMu.Lock()
		defer s.persistMu.Unlock()
		s.mu.Lock()
		reason, until, gen, dirty := s.paused, s.pausedUntil, s.gen, s.dirty
		s.mu.Unlock()
		if !dirty {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if reason == "" {
			err = e.st.ResumeSender(ctx, "", e.Now())
		} else {
			err = e.st.PauseSender(ctx, reason, until, e.Now())
		}
		if err != nil {
			e.log.Warn("could not store the sender's pause; retrying", "err", err, "reason", reason)
			return
		}
		s.mu.Lock()
		if s.gen == gen {
			s.dirty = false
		}
		s.mu.Unlock()
	}()
}

// ResumeSender clears a pause (after the token was renewed, say), on every
// replica.
func (e *Engine) ResumeSender() {
	s := e.sender
	s.mu.Lock()
	if s.paused != "" {
		e.m.SenderPaused.WithLabelValues(s.paused).Set(0)
		e.log.Info("sender resumed", "was", s.paused)
	}
	s.paused, s.pausedUntil = "", time.Time{}
	s.gen++
	s.dirty = true
	s.mu.Unlock()
	e.storePause()
	e.notifySender()
}

func (e *Engine) pause(reason string, d time.Duration) {
	s := e.sender
	s.mu.Lock()
	if s.paused == "" {
		e.log.Error("sender stopped: WhatsApp refuses every send until this is fixed", "reason", reason, "for", d)
	}
	s.paused = reason
	s.pausedUntil = time.Time{}
	if d > 0 {
		s.pausedUntil = e.Now().Add(d)
	}
	s.gen++
	s.dirty = true
	e.m.SenderPaused.WithLabelValues(reason).Set(1)
	s.mu.Unlock()
	e.storePause()
}

type sendJob struct {
	item  *store.OutboxItem
	msg   *whatsapp.Message
	at    time.Time // paced send time
	id    string
	err   error
	claim *store.OutboxChange
	done  *sync.WaitGroup // sendRounds: the job's batch
}

// SendOutbox runs one send round: claim pending messages (each contact's oldest
// only, so a contact's messages keep their order), apply the runtime policy,
// commit the survivors as `sending`, call the channel paced per phone number, and
// record the results. It returns how many messages it settled or attempted.
func (e *Engine) SendOutbox(ctx context.Context) (int, error) {
	limit := e.opts.SendBatch
	if !e.opts.NoPacing {
		// Claim no more than a quarter second of sends: a crash can only leave
		// that much in `sending` (and so `unknown`).
		limit = min(limit, int(e.opts.Rate/4)+1)
	}
	jobs, handled, err := e.claimSends(ctx, limit)
	if err != nil || len(jobs) == 0 {
		return handled, err
	}
	e.dispatch(ctx, jobs)
	return handled, e.recordResults(ctx, jobs)
}

// sendRounds is the daemon's send loop (Run). Where SendOutbox claims a round,
// sends it and records it before claiming the next, here claiming, sending and
// recording overlap: workers take jobs from a queue continuously, the next
// batch is claimed while the queue still holds work, and each batch's results
// are recorded once its last job is done. The pace does not stop for the
// transactions between rounds (claim and record took 20-100 ms, at times
// several hundred, per round of 250 ms at 1,000/s on a busy host).
//
// A batch is an eighth of a second of sends and the next is claimed only when
// less than one batch is queued; a transaction that hands its new messages
// off (handOff) claims no more than the room left in one batch. So no more
// than a quarter second of sends waits claimed, plus the jobs in the workers'
// hands and the results not recorded yet, as with SendOutbox; a message
// becomes `sending` (what a crash turns `unknown`) only right before its call.
func (e *Engine) sendRounds(ctx context.Context, p *sendPipe) {
	batch := p.batch
	defer func() {
		e.pipe.Store(nil)
		p.close()
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if p.queued.Load() >= int64(batch) {
			select {
			case <-p.taken:
			case <-ctx.Done():
			}
			continue
		}
		jobs, handled, err := e.claimSends(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("engine loop", "err", err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(jobs) > 0 {
			p.submit(jobs)
			continue
		}
		if handled > 0 {
			continue
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-e.wakeTx:
		case <-t.C:
		}
		t.Stop()
	}
}

// sendPipe is sendRounds' queue and workers. Besides the send loop's own
// claims, a transaction that writes new messages may claim them itself and
// submit them once it has committed (handOff): the first reply to a contact
// then goes out without waiting for another transaction.
type sendPipe struct {
	e      *Engine
	ctx    context.Context
	batch  int
	queue  chan *sendJob
	queued atomic.Int64 // claimed, not taken by a worker yet
	taken  chan struct{}

	mu        sync.Mutex // submit against close
	closed    bool
	workers   sync.WaitGroup
	recorders sync.WaitGroup
}

func newSendPipe(ctx context.Context, e *Engine) *sendPipe {
	batch := e.opts.SendBatch
	if !e.opts.NoPacing {
		batch = min(batch, int(e.opts.Rate/8)+1)
	}
	// Room for the send loop's batch and a batch handed off beside it, twice.
	p := &sendPipe{e: e, ctx: ctx, batch: batch, queue: make(chan *sendJob, 4*batch), taken: make(chan struct{}, 1)}
	for range e.opts.SendConcurrency {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			for j := range p.queue {
				if p.queued.Add(-1) < int64(batch) {
					select {
					case p.taken <- struct{}{}:
					default:
					}
				}
				e.send(ctx, j)
				j.done.Done()
			}
		}()
	}
	return p
}

// room is how many more messages may be claimed now.
func (p *sendPipe) room() int { return max(0, p.batch-int(p.queued.Load())) }

// submit queues claimed jobs for the workers; their results are recorded
// together once the last is done. After close it queues nothing: the rows
// stay `claimed`, which the next start turns back to pending.
func (p *sendPipe) submit(jobs []*sendJob) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	done := &sync.WaitGroup{}
	done.Add(len(jobs))
	p.queued.Add(int64(len(jobs)))
	for _, j := range jobs {
		j.done = done
		p.queue <- j
	}
	p.recorders.Add(1)
	go func() {
		defer p.recorders.Done()
		done.Wait()
		if err := p.e.recordResults(p.ctx, jobs); err != nil {
			p.e.log.Error("recording send results", "err", err)
		}
	}()
}

// close stops the workers after the queued jobs (which, ctx being done, are
// not attempted) and waits for the last results to be recorded.
func (p *sendPipe) close() {
	p.mu.Lock()
	p.closed = true
	close(p.queue)
	p.mu.Unlock()
	p.workers.Wait()
	p.recorders.Wait()
}

// handOff claims, inside tx (a transaction that has just written new
// messages), what the send loop would claim next, up to the pipe's free room,
// and submits it once tx commits: the messages are `claimed` in the same
// commit as the events that produced them. It reports whether the send loop
// still needs waking (no pipe, no room, or more may be waiting than was
// claimed). A store error fails tx, as any of its writes would.
func (e *Engine) handOff(tx store.Tx) (wake bool, err error) {
	p := e.pipe.Load()
	if p == nil {
		return true, nil
	}
	room := p.room()
	if room == 0 {
		return true, nil
	}
	jobs, handled, err := e.claimSendsIn(context.Background(), tx, room) // tx has its own context
	if err != nil {
		return true, err
	}
	if len(jobs) > 0 && !afterCommit(tx, func() { p.submit(jobs) }) {
		// Not a hookStore transaction: nothing would send them; undo.
		return true, errors.New("engine: messages claimed in a transaction without commit hooks")
	}
	return handled == 0 || handled >= room, nil
}

// claimSends claims one round: pending messages due now (each contact's oldest
// only), the runtime policy applied, the survivors committed as `sending`.
func (e *Engine) claimSends(ctx context.Context, limit int) ([]*sendJob, int, error) {
	// Idle, the send loop asks the read pool first: no write lock for nothing.
	if d := e.due(ctx); !d.Outbox && !d.Resend {
		return nil, 0, nil
	}
	return e.claimSendsIn(ctx, nil, limit)
}

// claimSendsIn is claimSends in tx, or in a transaction of its own when tx is
// nil.
func (e *Engine) claimSendsIn(ctx context.Context, tx0 store.Tx, limit int) ([]*sendJob, int, error) {
	if e.opts.Channel == nil || e.flows.Load() == nil || e.Paused() != "" {
		return nil, 0, nil
	}
	now := e.Now()
	var jobs []*sendJob
	var handled int
	var refused []string
	var resent, waiting int
	err := e.within(ctx, tx0, func(tx store.Tx) error {
		jobs, refused, resent, waiting = jobs[:0], refused[:0], 0, 0
		// Messages left unknown past their wait go back to pending first (in
		// the send loop's own transactions only, not a hand-off's).
		if e.opts.ResendUnknownAfter > 0 && tx0 == nil {
			var err error
			resent, err = tx.ResendUnknown(now, e.opts.ResendUnknownAfter, limit,
				"no status webhook within "+dsl.FormatDuration(e.opts.ResendUnknownAfter)+" of an unknown outcome: sent once more")
			if err != nil {
				return err
			}
		}
		items, err := tx.ClaimOutbox(now, limit)
		if err != nil || len(items) == 0 {
			return err
		}
		handled = len(items)
		var ids []string
		for _, it := range items {
			ids = append(ids, it.Contact)
		}
		contacts, err := tx.Contacts(ids)
		if err != nil {
			return err
		}
		states, err := e.templateStates(tx)
		if err != nil {
			return err
		}
		allow, err := e.newAllowance(tx, ids, now)
		if err != nil {
			return err
		}
		changes := make([]*store.OutboxChange, 0, len(items))
		paced := map[string]time.Time{}
		pending := []string{store.OutPending}
		for _, it := range items {
			it.UpdatedAt = now
			d := decide(it, contacts[it.Contact], now, states)
			if !d.send {
				it.Status, it.LastError = d.status, d.reason
				changes = append(changes, &store.OutboxChange{ID: it.ID, From: pending, Status: d.status, At: now,
					SetError: true, ErrorCode: it.ErrorCode, LastError: d.reason, Template: d.hold})
				refused = append(refused, d.status)
				continue
			}
			if allow != nil && !WindowOpen(contacts[it.Contact], now) && templateOf(d.payload) != "" {
				if ok, until := allow.take(it.Contact, now); !ok {
					changes = append(changes, &store.OutboxChange{ID: it.ID, From: pending, At: now,
						SetNextAttempt: true, NextAttemptAt: until, SetAllowance: true, Allowance: true,
						SetError: true, ErrorCode: it.ErrorCode, LastError: allow.reason(until)})
					continue
				}
			}
			if !e.opts.NoPacing {
				if ok, when := e.sender.pair.TryTake(it.Contact, now); !ok {
					// pair rate: later, still pending, never sent twice
					changes = append(changes, &store.OutboxChange{ID: it.ID, From: pending, At: now,
						SetNextAttempt: true, NextAttemptAt: when})
					paced[it.Contact] = when
					continue
				}
			}
			var m whatsapp.Message
			if err := json.Unmarshal(d.payload, &m); err != nil {
				changes = append(changes, &store.OutboxChange{ID: it.ID, From: pending, Status: store.OutFailed, At: now,
					SetError: true, LastError: "undecodable payload: " + err.Error()})
				continue
			}
			if c := contacts[it.Contact]; c != nil && m.Recipient != "" && c.Phone != "" {
				m.SetAddress(c.Phone) // the number became known after the message was queued
			}
			if err := m.Validate(); err != nil {
				// What Meta would refuse (a new line in a template parameter,
				// a file: link) fails here with the reason, whatever the channel.
				changes = append(changes, &store.OutboxChange{ID: it.ID, From: pending, Status: store.OutFailed, At: now,
					SetError: true, LastError: err.Error()})
				refused = append(refused, "invalid")
				continue
			}
			sentAs := d.sentAs
			if it.SentAs == "fallback" && it.Fallback == nil {
				sentAs = "fallback" // it replaced a message Meta refused with 131047
			}
			it.Status, it.SentAs = store.OutClaimed, sentAs
			ch := &store.OutboxChange{ID: it.ID, From: pending, Status: store.OutClaimed, At: now, SetSentAs: true, SentAs: sentAs,
				SetAllowance: allow != nil}
			changes = append(changes, ch)
			jobs = append(jobs, &sendJob{item: it, msg: &m, claim: ch})
		}
		if _, err := tx.ChangeOutbox(changes); err != nil {
			return err
		}
		if allow != nil {
			if err := tx.MarkReached(allow.mark, now); err != nil {
				return err
			}
			waiting = allow.waiting
		}
		// A paced contact's queued messages move past its next slot: the
		// next rounds find them beyond `now` in the index and never read them.
		for c, when := range paced {
			if _, err := tx.DeferPendingOutbox(c, when, now); err != nil {
				return err
			}
		}
		// A row another transaction moved on since it was read is not sent.
		kept := jobs[:0]
		for _, j := range jobs {
			if j.claim.Applied {
				kept = append(kept, j)
			}
		}
		jobs = kept
		return nil
	})
	if err != nil {
		return nil, handled, err
	}
	for _, r := range refused {
		if r == store.OutHeld {
			e.m.TemplateHeld.Inc()
			continue
		}
		e.m.Refusals.WithLabelValues(r).Inc()
	}

	if waiting > 0 {
		e.m.AllowanceDeferred.Add(float64(waiting))
		e.log.Info("messaging limit reached: business-initiated messages wait for the allowance", "messages", waiting,
			"messaging_limit", e.opts.MessagingLimit)
	}
	if resent > 0 {
		e.log.Warn("messages whose outcome stayed unknown, with no status webhook, are sent once more", "count", resent)
		e.m.Sends.WithLabelValues("any", "resent").Add(float64(resent))
		handled += resent
	}
	return jobs, handled, nil
}

// errNotAttempted marks a job dropped before its call (shutdown while waiting for
// its paced time): it goes back to pending, never counted as sent or unknown.
var errNotAttempted = errors.New("not attempted")

// dispatch sends jobs concurrently, each at its paced time (see send).
func (e *Engine) dispatch(ctx context.Context, jobs []*sendJob) {
	work := make(chan *sendJob)
	var wg sync.WaitGroup
	for w := 0; w < min(e.opts.SendConcurrency, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				e.send(ctx, j)
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
}

// send makes one job's call at its paced time. Pacing is about real throughput,
// so it runs on the wall clock even when the engine's clock is virtual or
// offset (the sandbox fast-forwards days).
//
// The slot is reserved when a worker takes the job, not when the round is
// claimed: slots reserved ahead for a whole round would all be overdue after a
// stall of the process (a GC pause, a busy host) and go out back to back, over
// Meta's limit (130429). Reserved when taken, at most SendConcurrency slots are
// outstanding, so a stall releases at most that many plus the bucket's burst.
func (e *Engine) send(ctx context.Context, j *sendJob) {
	j.at = time.Now()
	if !e.opts.NoPacing {
		j.at = e.sender.phone(j.item.PhoneNumberID).Reserve(j.at)
		if !pace(ctx, j.at) {
			j.err = errNotAttempted
			return
		}
	}
	// Meta said stop (an expired token, a block, the spam limit) while this
	// round was out: the rest of it goes back to pending instead of hammering
	// the API with calls that fail the same way.
	if e.Paused() != "" {
		j.err = errNotAttempted
		return
	}
	// Durably `sending` before the call: a crash from here on leaves the outcome
	// unknown (at-most-once); before it, the message was never handed over and
	// goes back to pending at the next start.
	if err := e.sender.marks.mark(ctx, e, j.item.ID); err != nil {
		e.log.Warn("could not record a send as started; it stays pending", "err", err)
		j.err = errNotAttempted
		return
	}
	j.item.Status = store.OutSending
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.SendTimeout)
	j.id, j.err = e.opts.Channel.Send(cctx, j.item.PhoneNumberID, j.msg)
	cancel()
	e.pauseFor(whatsapp.Classify(j.err), whatsapp.ErrorCode(j.err))
}

// pauseFor stops the sender after an answer of class Pause (131048: for
// whatsapp.PauseFor) or Fatal (until ResumeSender); other classes do nothing.
func (e *Engine) pauseFor(class whatsapp.Class, code int) {
	switch class {
	case whatsapp.Pause:
		e.pause(fmt.Sprintf("error %d (spam rate limit)", code), whatsapp.PauseFor)
	case whatsapp.Fatal:
		e.pause(fmt.Sprintf("error %d", code), 0)
	}
}

// pace waits until a send's paced time on the wall clock (dispatch reserves
// slots in wall-clock time: pacing is about real throughput, whatever the
// engine's clock). It returns false when ctx ends first: the send was not made.
func pace(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// recordResults settles each attempted message by the class of its outcome.
// The outcomes exist only in memory until this write commits, so a store that
// fails it (locked, full disk) is retried with backoff until it takes them, or
// until ctx ends: then the rows stay `sending` and become `unknown` at the next
// start (at-most-once). Giving up at once left them `sending` for the life of
// the process: the outcomes lost, and every later message to those contacts
// held behind them. Each try works on copies of the rows; the metrics count
// once, after the commit.
func (e *Engine) recordResults(ctx context.Context, jobs []*sendJob) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		counts, err := e.writeResults(ctx, jobs)
		if err == nil {
			for _, inc := range counts {
				inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		e.log.Error("recording send results; retrying", "err", err, "messages", len(jobs))
		sleep(ctx, backoff)
	}
}

// writeResults is one try of recordResults; it returns the metric increments
// to apply once committed.
func (e *Engine) writeResults(ctx context.Context, jobs []*sendJob) ([]func(), error) {
	var counts []func()
	err := e.st.Write(context.WithoutCancel(ctx), func(tx store.Tx) error {
		counts = counts[:0]
		now := e.Now()
		ids := make([]int64, len(jobs))
		for i, j := range jobs {
			ids[i] = j.item.ID
		}
		// Statuses may have arrived while the call was in flight: every
		// change is guarded by the status the call left the row in, so what
		// they recorded (a failure, the switch to the fallback) stands.
		sending := []string{store.OutSending}
		changes := make([]*store.OutboxChange, 0, len(jobs)+1)
		var blocked [][3]string // name, language, status of templates Meta refused
		for _, j := range jobs {
			it := j.item
			ch := &store.OutboxChange{ID: it.ID, From: sending, At: now}
			if errors.Is(j.err, errNotAttempted) {
				ch.From, ch.Status = []string{store.OutClaimed, store.OutSending}, store.OutPending
				changes = append(changes, ch)
				continue
			}
			mtype := j.msg.Type
			class := whatsapp.Classify(j.err)
			code := whatsapp.ErrorCode(j.err)
			if code == 131047 {
				counts = append(counts, e.m.Seen131047.Inc)
			}
			switch class {
			case whatsapp.OK:
				ch.Status, ch.Provider, ch.SetSentAt, ch.SentAt = store.OutSent, j.id, true, now
				ch.SetError = true // clears the error of an earlier attempt
				// When a status got there first, only the id and the time.
				changes = append(changes, ch, &store.OutboxChange{ID: it.ID, At: now, Provider: j.id, OrElse: true,
					From: []string{store.OutDelivered, store.OutRead, store.OutFailed}, SetSentAt: true, SentAt: now})
				counts = append(counts, e.m.Sends.WithLabelValues(mtype, "sent").Inc)
				continue
			case whatsapp.Retryable:
				attempts := it.Attempts + 1
				ch.SetAttempts, ch.Attempts = true, attempts
				ch.SetError, ch.ErrorCode, ch.LastError = true, code, errText(j.err)
				if attempts >= e.opts.MaxAttempts {
					ch.Status = store.OutFailed
					counts = append(counts, e.m.Sends.WithLabelValues(mtype, "failed").Inc)
				} else {
					ch.Status = store.OutPending
					ch.SetNextAttempt, ch.NextAttemptAt = true, now.Add(whatsapp.Backoff(class, attempts-1, code, e.opts.Rand))
					counts = append(counts, e.m.Sends.WithLabelValues(mtype, "retry").Inc)
				}
			case whatsapp.Pause, whatsapp.Fatal:
				ch.Status = store.OutPending
				ch.SetError, ch.ErrorCode, ch.LastError = true, code, errText(j.err)
				e.pauseFor(class, code)
				counts = append(counts, e.m.Sends.WithLabelValues(mtype, "paused").Inc)
			case whatsapp.Held:
				// Meta paused or disabled the template before its webhook
				// got here: recorded as if it had, the message waits.
				ch.SetError, ch.ErrorCode, ch.LastError = true, code, errText(j.err)
				ch.Status = store.OutHeld
				if t := j.msg.Template; t != nil {
					status := "PAUSED"
					if code == whatsapp.CodeTemplateDisabled {
						status = "DISABLED"
					}
					ch.Template = whatsapp.TemplateKey(t.Name, t.Language.Code)
					blocked = append(blocked, [3]string{t.Name, t.Language.Code, status})
					if it.Kind == store.KindTemplate && it.Fallback != nil && it.SentAs != "fallback" {
						ch.Status = store.OutPending // its fallback next
					}
				}
				counts = append(counts, e.m.Sends.WithLabelValues(mtype, "held").Inc, e.m.TemplateHeld.Inc)
			case whatsapp.Unknown:
				ch.Status = store.OutUnknown
				ch.SetError, ch.LastError = true, "outcome unknown ("+errText(j.err)+"): "+e.unknownPolicy(it.Resends)
				counts = append(counts, e.m.Sends.WithLabelValues(mtype, "unknown").Inc)
			default: // Permanent
				ch.Status = store.OutFailed
				ch.SetError, ch.ErrorCode, ch.LastError = true, code, errText(j.err)
				if code == whatsapp.CodeBSUIDUnsupported {
					ch.LastError = ReasonBSUIDUnsupported + ": " + ch.LastError
				}
				if code == 131047 && it.Kind == store.KindFreeForm && it.Fallback != nil {
					// Meta saw the window closed before we did: the fallback next.
					ch.Status, ch.Fallback = store.OutPending, true
				}
				if code == whatsapp.CodeEcosystemHealth {
					counts = append(counts, e.m.MarketingLimited.WithLabelValues(it.FlowID).Inc)
					e.retry131049(it, ch, now)
				}
				counts = append(counts, e.m.Sends.WithLabelValues(mtype, "failed").Inc)
			}
			changes = append(changes, ch)
		}
		if _, err := tx.ChangeOutbox(changes); err != nil {
			return err
		}
		for _, b := range blocked {
			reason := "error 132015 at send"
			if b[2] == "DISABLED" {
				reason = "error 132016 at send"
			}
			if _, err := tx.SetTemplateStatus(b[0], b[1], "", b[2], b[2], reason, now); err != nil {
				return err
			}
		}
		if len(blocked) > 0 {
			afterCommit(tx, func() {
				e.tmpl.invalidate()
				for _, b := range blocked {
					e.log.Warn("Meta refused a template as paused or disabled: its messages are held until it is approved again (or go out as their fallback)",
						"template", whatsapp.TemplateKey(b[0], b[1]), "status", b[2])
				}
			})
		}
		return nil
	})
	return counts, err
}

// ReasonBSUIDUnsupported explains a 131062: the contact is known only by a
// business-scoped user ID and Meta does not deliver this kind of message
// (one-tap, zero-tap and copy-code authentication templates) to one.
const ReasonBSUIDUnsupported = "this message type cannot be sent to a business-scoped user ID and the contact's phone number is unknown (ask for it with a REQUEST_CONTACT_INFO button, or guard the step with contact.has_phone)"

func errText(err error) string {
	if err == nil {
		return ""
	}
	var api *whatsapp.APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("(#%d) %s", api.Code, api.Message)
	}
	return err.Error()
}

// marker records messages as `sending` just before their calls, in shared
// transactions: whoever finds no commit in progress writes everything queued so
// far (its own included), the others wait for that commit. At 1,000 sends a
// second that is a handful of ids per commit, and a crash can only leave
// `unknown` the messages whose calls had really started.
type marker struct {
	mu      sync.Mutex
	busy    bool
	pending []*markReq
}

type markReq struct {
	id   int64
	done chan error
}

func (m *marker) mark(ctx context.Context, e *Engine, id int64) error {
	req := &markReq{id: id, done: make(chan error, 1)}
	m.mu.Lock()
	m.pending = append(m.pending, req)
	if m.busy {
		m.mu.Unlock()
		return <-req.done
	}
	m.busy = true
	for {
		batch := m.pending
		m.pending = nil
		m.mu.Unlock()
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.id
		}
		err := e.st.Write(context.WithoutCancel(ctx), func(tx store.Tx) error { return tx.MarkSending(ids, e.Now()) })
		for _, r := range batch {
			r.done <- err
		}
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.busy = false
			m.mu.Unlock()
			return <-req.done
		}
	}
}

// unknownPolicy says, in a message's last_error and the log, what happens to
// a message whose outcome is unknown, sent `resends` times once more already.
func (e *Engine) unknownPolicy(resends int) string {
	if e.opts.ResendUnknownAfter < 0 || resends > 0 {
		return "not sent again (at-most-once)"
	}
	return "sent once more if no status webhook says Meta accepted it within " + dsl.FormatDuration(e.opts.ResendUnknownAfter)
}

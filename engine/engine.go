package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// Options configure an Engine. Zero values take the documented defaults.
type Options struct {
	Clock   Clock        // default RealClock
	Channel Channel      // where messages go; required for SendOutbox
	Logger  *slog.Logger // default slog.Default()
	Metrics *Metrics     // default: unregistered collectors

	// OptOutKeywords are whole messages (case-insensitive, trimmed) that record an
	// opt-out and cancel the contact's runs. Default: STOP, UNSUBSCRIBE,
	// STOP PROMOS, OPT OUT, OPTOUT.
	OptOutKeywords []string
	// PhoneNumberID sends business-initiated messages to contacts who never wrote;
	// replies go out from the number the contact wrote to.
	PhoneNumberID string
	// Timezone is used for quiet hours and `wait {at}` when a contact has none
	// (default UTC).
	Timezone *time.Location

	BatchSize       int     // inbox events / timers per transaction (default 500)
	SendBatch       int     // messages claimed per send round (default 500)
	SendConcurrency int     // concurrent API calls (default 32)
	Rate            float64 // messages per second per phone number (default 80, max 1000)
	// PairBurst messages to one contact in a burst, then one per PairInterval
	// (defaults dsl.PairBurst, dsl.PairInterval: the validator's window analysis
	// charges sends the pacing of these defaults, so slower settings void that
	// part of its bound).
	PairBurst    int
	PairInterval time.Duration
	MaxAttempts  int // retryable errors before giving up (default 12)
	// MaxQueuedPerContact bounds a contact's messages not sent yet (default
	// 100; negative: no bound). One contact writing thousands of messages
	// would otherwise queue thousands of replies that the pair rate drains
	// at one per interval; past the bound new ones are dropped and counted
	// (funnel_send_refusals_total{reason="queue_full"}).
	MaxQueuedPerContact int
	SendTimeout         time.Duration // per API call (default 20s)
	// InboxRetention is how long processed inbound events are kept: their ids
	// deduplicate Meta's redeliveries, which go on for days, and API events'
	// idempotency keys (default 30 days).
	InboxRetention time.Duration
	// ResendUnknownAfter is how long a message whose outcome is unknown (the
	// process died during its call, the connection dropped after the request
	// was written) waits for a status webhook saying Meta accepted it; without
	// one, it is sent once more (default 10 minutes; negative: never, i.e.
	// at-most-once).
	ResendUnknownAfter time.Duration
	// MessagingLimit is the business portfolio's messaging limit: how many
	// unique users business-initiated messages (templates outside the 24h
	// window) may reach in a rolling 24h. Past it, such messages wait for
	// the allowance (pending, due when a slot frees). 0: unlimited.
	MessagingLimit int
	// MarketingRetryAfter, when positive, sends a message Meta refused with
	// 131049 (per-user marketing limit) once more after that long; 0: the
	// refusal is final.
	MarketingRetryAfter time.Duration
	// RunRetention is how long ended runs are kept (default 90 days).
	RunRetention time.Duration
	// MessageRetention is how long settled messages and status webhooks are
	// kept, from their creation (default 90 days).
	MessageRetention time.Duration
	// RetentionEvery is how often Run deletes what is past its retention
	// (default: hourly, or a quarter of the shortest retention when that is
	// shorter, at least a second).
	RetentionEvery time.Duration
	// NoPacing sends without the per-number and per-recipient pacing (the
	// simulator: its virtual clock does not pass while messages go out).
	NoPacing bool
	Rand     func() float64

	// DatasetID, WABAID and Conversions turn on the Conversions API: each new
	// conversion of a contact with a click-to-WhatsApp click id is sent to
	// the dataset (with the WhatsApp Business Account id Meta requires).
	// Without a dataset, conversions are only recorded.
	DatasetID   string
	WABAID      string
	Conversions ConversionsAPI
}

// DefaultOptOutKeywords are the messages that mean "stop".
var DefaultOptOutKeywords = []string{"STOP", "UNSUBSCRIBE", "STOP PROMOS", "OPT OUT", "OPTOUT"}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.OptOutKeywords == nil {
		o.OptOutKeywords = DefaultOptOutKeywords
	}
	if o.Timezone == nil {
		o.Timezone = time.UTC
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.SendBatch <= 0 {
		o.SendBatch = 500
	}
	if o.SendConcurrency <= 0 {
		o.SendConcurrency = 32
	}
	if o.Rate <= 0 {
		o.Rate = 80
	}
	if o.Rate > 1000 {
		o.Rate = 1000
	}
	if o.PairBurst <= 0 {
		o.PairBurst = dsl.PairBurst
	}
	if o.MaxQueuedPerContact == 0 {
		o.MaxQueuedPerContact = 100
	}
	if o.PairInterval <= 0 {
		o.PairInterval = dsl.PairInterval
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 20 * time.Second
	}
	if o.InboxRetention <= 0 {
		o.InboxRetention = 30 * 24 * time.Hour
	}
	if o.ResendUnknownAfter == 0 {
		o.ResendUnknownAfter = 10 * time.Minute
	}
	if o.RunRetention <= 0 {
		o.RunRetention = 90 * 24 * time.Hour
	}
	if o.MessageRetention <= 0 {
		o.MessageRetention = 90 * 24 * time.Hour
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = max(time.Second, min(time.Hour, o.InboxRetention/4, o.RunRetention/4, o.MessageRetention/4))
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
}

// Engine executes flows. It is safe for concurrent use: ProcessInbox, FireTimers
// and SendOutbox may run in different goroutines (the store serializes writes).
type Engine struct {
	st   store.Store
	opts Options
	log  *slog.Logger
	m    *Metrics

	flows    atomic.Pointer[flowSet]
	versions sync.Map // version id -> *dsl.Flow (every version a run may be pinned to)
	// analyses holds the window analysis of each project version loaded by
	// this process (project version id -> *dsl.Analysis), for the reply
	// timeouts' room; sets holds the project versions read (id -> map of flow
	// id to flow version id).
	analyses sync.Map
	sets     sync.Map

	optOut map[string]bool
	sender *sender
	pipe   atomic.Pointer[sendPipe] // the send loop's queue, while Run runs
	timers timerHint
	tmpl   templates     // what Meta said about the templates, for the sender
	wake   chan struct{} // work arrived for the processor
	wakeTx chan struct{} // work arrived for the sender
	capi   capiState
}

// flowSet is the current project, indexed for trigger matching.
type flowSet struct {
	project  *dsl.Project
	byID     map[string]*dsl.Flow
	version  map[string]int64 // flow id -> version id
	pv       int64            // the project version: this set of flow versions
	ctwa     []*dsl.Flow
	message  []*dsl.Flow
	schedule []*dsl.Flow
	event    map[string][]*dsl.Flow
	catalog  func(*dsl.Flow) *dsl.Catalog
}

// New creates an engine over a store.
func New(st store.Store, opts Options) *Engine {
	opts.defaults()
	e := &Engine{st: hookStore{st}, opts: opts, log: opts.Logger, m: opts.Metrics,
		optOut: map[string]bool{}, wake: make(chan struct{}, 1), wakeTx: make(chan struct{}, 1)}
	e.capi.wake = make(chan struct{}, 1)
	for _, k := range opts.OptOutKeywords {
		e.optOut[normalizeKeyword(k)] = true
	}
	e.sender = newSender(e)
	return e
}

func normalizeKeyword(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), " ")) }

// Now is the engine's clock.
func (e *Engine) Now() time.Time { return e.opts.Clock.Now() }

// Store is the engine's store.
func (e *Engine) Store() store.Store { return e.st.(hookStore).Store }

// Metrics are the engine's collectors.
func (e *Engine) Metrics() *Metrics { return e.m }

// ErrInvalidProject means Load was given a project with errors.
var ErrInvalidProject = errors.New("flows have errors")

// Load makes a checked project the running flow set: each flow's exact source is
// recorded as a version (runs stay pinned to the version they started with), and
// schedule triggers get their next fire time. A project with errors is refused and
// the running set stays.
func (e *Engine) Load(ctx context.Context, p *dsl.Project, diags dsl.Diagnostics) error {
	if diags.HasErrors() {
		return ErrInvalidProject
	}
	fs := &flowSet{project: p, byID: map[string]*dsl.Flow{}, version: map[string]int64{}, event: map[string][]*dsl.Flow{}}
	now := e.Now()
	err := e.st.Write(ctx, func(tx store.Tx) error {
		for _, f := range p.Flows {
			templates, err := resolvedTemplates(f)
			if err != nil {
				return err
			}
			hash := versionHash(f, templates)
			id, err := tx.FlowVersionID(f.ID, hash)
			if err != nil {
				return err
			}
			if id == 0 {
				v := &store.FlowVersion{FlowID: f.ID, Hash: hash, File: f.File, Source: f.Source, Templates: templates, CreatedAt: now}
				if err := tx.InsertFlowVersion(v); err != nil {
					return err
				}
				id = v.ID
			}
			fs.version[f.ID] = id
		}
		pv, err := projectVersion(tx, fs.version, now)
		if err != nil {
			return err
		}
		fs.pv = pv
		return e.initSchedules(tx, p, now)
	})
	if err != nil {
		return err
	}
	for _, f := range p.Flows {
		fs.byID[f.ID] = f
		e.versions.Store(fs.version[f.ID], f)
		switch f.Trigger.Kind {
		case dsl.TriggerClickToWhatsApp:
			fs.ctwa = append(fs.ctwa, f)
		case dsl.TriggerMessage:
			fs.message = append(fs.message, f)
		case dsl.TriggerSchedule:
			fs.schedule = append(fs.schedule, f)
		case dsl.TriggerEvent:
			fs.event[f.Trigger.Event] = append(fs.event[f.Trigger.Event], f)
		}
	}
	for _, l := range [][]*dsl.Flow{fs.ctwa, fs.message, fs.schedule} {
		sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	}
	for _, l := range fs.event {
		sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	}
	fs.catalog = p.Catalog
	e.sets.Store(fs.pv, fs.version)
	if p.Analysis != nil {
		e.analyses.Store(fs.pv, p.Analysis)
	}
	e.flows.Store(fs)
	e.Notify()
	return nil
}

// Flows returns the running project (nil before Load).
func (e *Engine) Flows() *dsl.Project {
	if fs := e.flows.Load(); fs != nil {
		return fs.project
	}
	return nil
}

// flowForVersion returns the compiled flow a run is pinned to, compiling an older
// version from its stored source when needed.
func (e *Engine) flowForVersion(tx store.Tx, id int64) (*dsl.Flow, error) {
	if f, ok := e.versions.Load(id); ok {
		return f.(*dsl.Flow), nil
	}
	v, err := tx.FlowVersion(id)
	if err != nil {
		return nil, fmt.Errorf("flow version %d: %w", id, err)
	}
	f, diags := dsl.ParseFlow(v.File, v.Source)
	if f == nil || dsl.Diagnostics(diags).HasErrors() {
		return nil, fmt.Errorf("flow version %d (%s) no longer compiles", id, v.FlowID)
	}
	// Resolve its templates against the catalog entries stored with it; a
	// version stored before they were has only the running catalog to go by.
	var cat func(*dsl.Flow) *dsl.Catalog
	stored, err := versionCatalog(v)
	if err != nil {
		return nil, err
	}
	if stored != nil {
		cat = func(*dsl.Flow) *dsl.Catalog { return stored }
	} else if fs := e.flows.Load(); fs != nil && fs.catalog != nil {
		if cur := fs.byID[f.ID]; cur != nil {
			c := fs.catalog(cur)
			cat = func(*dsl.Flow) *dsl.Catalog { return c }
		}
	}
	p, _ := dsl.NewProject([]*dsl.Flow{f}, cat)
	dsl.Check(p, dsl.Options{})
	e.versions.Store(id, f)
	return f, nil
}

// due reads which loops have work, from the read pool: an idle loop does not
// take the write lock. When the read fails, every loop looks (and meets the
// store's error itself).
func (e *Engine) due(ctx context.Context) store.Due {
	d, err := e.st.Due(ctx, e.Now(), e.opts.ResendUnknownAfter)
	if err != nil {
		return store.Due{Inbox: true, Timers: true, Outbox: true, Resend: true, Schedules: true}
	}
	return d
}

// Notify wakes the processing loop (new inbox items).
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) notifySender() {
	select {
	case e.wakeTx <- struct{}{}:
	default:
	}
}

// Enqueue stores inbound items (deduplicated) and wakes the processor.
func (e *Engine) Enqueue(ctx context.Context, items []store.InboxItem) (int, error) {
	n, err := e.st.Enqueue(ctx, items)
	if err == nil && n > 0 {
		e.Notify()
	}
	return n, err
}

// Step runs one round of every loop: inbox, timers and schedules, outbox. It
// returns how much work it did (0 = idle).
func (e *Engine) Step(ctx context.Context) (int, error) {
	a, err := e.ProcessInbox(ctx)
	if err != nil {
		return a, err
	}
	b, err := e.FireTimers(ctx)
	if err != nil {
		return a + b, err
	}
	c, err := e.RunSchedules(ctx)
	if err != nil {
		return a + b + c, err
	}
	d, err := e.SendOutbox(ctx)
	if err != nil {
		return a + b + c + d, err
	}
	f, err := e.SendConversions(ctx)
	return a + b + c + d + f, err
}

// RunUntilIdle steps until nothing is left to do at the current time.
func (e *Engine) RunUntilIdle(ctx context.Context) error {
	for {
		n, err := e.Step(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// Run drives the engine until ctx ends: one goroutine processes inbox, timers and
// schedules, another sends. On start, messages left `sending` by a crash become
// `unknown` (at-most-once); a store that fails then (locked, full) is retried
// with backoff like any later failure, and nothing runs before it succeeds. It
// returns when both loops have stopped.
func (e *Engine) Run(ctx context.Context) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := e.RecoverSending(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return err
		}
		e.log.Error("marking interrupted sends unknown; retrying", "err", err)
		sleep(ctx, backoff)
	}
	// The send pipe exists before the first inbox batch, which may hand it
	// messages (handOff).
	p := newSendPipe(ctx, e)
	e.pipe.Store(p)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for backoff := 50 * time.Millisecond; e.RecoverConversions(ctx) != nil && ctx.Err() == nil; backoff = min(backoff*2, 5*time.Second) {
			sleep(ctx, backoff)
		}
		e.loop(ctx, e.capi.wake, e.SendConversions)
	}()
	go func() {
		defer wg.Done()
		var purged time.Time
		e.loop(ctx, e.wake, func(ctx context.Context) (int, error) {
			if time.Since(purged) > e.opts.RetentionEvery {
				purged = time.Now()
				if _, err := e.Retain(ctx); err != nil {
					e.log.Warn("deleting what is past its retention", "err", err)
				}
			}
			a, err := e.ProcessInbox(ctx)
			if err != nil {
				return a, err
			}
			b, err := e.FireTimers(ctx)
			if err != nil {
				return a + b, err
			}
			c, err := e.RunSchedules(ctx)
			return a + b + c, err
		})
	}()
	go func() {
		defer wg.Done()
		e.sendRounds(ctx, p)
	}()
	wg.Wait()
	return nil
}

// loop repeats work until idle, then sleeps until woken or a short poll interval
// passes (timers and retries come due on their own). Errors (a locked or full
// disk) back off and retry: nothing is lost, it is only late.
func (e *Engine) loop(ctx context.Context, wake <-chan struct{}, work func(context.Context) (int, error)) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		n, err := work(ctx)
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
		if n > 0 {
			continue
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Retain deletes what is kept only for history once past its retention:
// processed inbound events and the statuses of messages funnel does not know
// (InboxRetention), ended runs and their timers (RunRetention), settled
// messages and status webhooks (MessageRetention). It works in chunks of a few
// thousand rows, one transaction each, so the writer is never held long, and
// counts what it deleted in funnel_retention_deleted_total. It returns the rows
// deleted per table.
func (e *Engine) Retain(ctx context.Context) (map[string]int, error) {
	now := e.Now()
	out := map[string]int{}
	purges := []struct {
		table  string
		before time.Time
		purge  func(store.Tx, time.Time, int) (int, error)
	}{
		{"inbox", now.Add(-e.opts.InboxRetention), store.Tx.PurgeInbox},
		{"message_statuses", now.Add(-e.opts.InboxRetention), store.Tx.PurgeOrphanStatuses},
		{"runs", now.Add(-e.opts.RunRetention), store.Tx.PurgeRuns},
		{"outbox", now.Add(-e.opts.MessageRetention), store.Tx.PurgeMessages},
		{"message_statuses", now.Add(-e.opts.MessageRetention), store.Tx.PurgeStatuses},
	}
	const chunk = 5000
	for _, p := range purges {
		for {
			var n int
			err := e.st.Write(ctx, func(tx store.Tx) error {
				var err error
				n, err = p.purge(tx, p.before, chunk)
				return err
			})
			if err != nil {
				return out, err
			}
			out[p.table] += n
			e.m.RetentionDeleted.WithLabelValues(p.table).Add(float64(n))
			if n < chunk {
				break
			}
		}
	}
	if total := out["inbox"] + out["runs"] + out["outbox"] + out["message_statuses"]; total > 0 {
		e.log.Info("deleted what is past its retention", "inbox", out["inbox"], "runs", out["runs"],
			"messages", out["outbox"], "statuses", out["message_statuses"])
	}
	return out, nil
}

// RecoverSending marks messages a crash left in `sending` as `unknown`, and
// takes from each recipient's pair-rate bucket the tokens of the messages sent
// to them within a full burst's refill time: a process that starts sending
// (after a restart, or taking over from another replica) paces each recipient
// as the previous sender left them instead of granting a fresh burst.
func (e *Engine) RecoverSending(ctx context.Context) error {
	return e.st.Write(ctx, func(tx store.Tx) error {
		if !e.opts.NoPacing {
			now := e.Now()
			sends, err := tx.RecentSends(now.Add(-time.Duration(e.opts.PairBurst) * e.opts.PairInterval))
			if err != nil {
				return err
			}
			for _, s := range sends {
				e.sender.pair.TryTake(s.Contact, s.At)
			}
		}
		n, err := tx.MarkSendingUnknown(e.Now())
		if n > 0 {
			e.log.Warn("messages interrupted while sending are marked unknown: "+e.unknownPolicy(0), "count", n)
			e.m.Sends.WithLabelValues("any", "unknown").Add(float64(n))
		}
		return err
	})
}

// NextWake is the earliest time after `after` when something is due: a timer, a
// retry, a schedule. The simulator advances its clock from one to the next, so
// every wait ends at its own time.
func (e *Engine) NextWake(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var best time.Time
	found := false
	consider := func(t time.Time, ok bool) {
		if ok && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	err := e.st.Write(ctx, func(tx store.Tx) error {
		t, ok, err := tx.NextTimer(after)
		if err != nil {
			return err
		}
		consider(t, ok)
		t, ok, err = tx.NextOutboxAttempt(after)
		if err != nil {
			return err
		}
		consider(t, ok)
		t, ok, err = tx.NextResend(after, e.opts.ResendUnknownAfter)
		if err != nil {
			return err
		}
		consider(t, ok)
		if e.capiEnabled() {
			t, ok, err = tx.NextCAPIAttempt(after)
			if err != nil {
				return err
			}
			consider(t, ok)
		}
		if fs := e.flows.Load(); fs != nil && len(fs.schedule) > 0 {
			ss, err := tx.Schedules()
			if err != nil {
				return err
			}
			for _, f := range fs.schedule {
				if s := ss[f.ID]; s != nil && s.Spec == specOf(f) && s.NextAt.After(after) {
					consider(s.NextAt, true)
				}
			}
		}
		return nil
	})
	return best, found, err
}

// AdvanceTo moves a settable clock to target, stopping at every due time on the
// way (timers, retries, schedules) and running the engine until idle at each, so
// every wait ends at its own time rather than all at target. after (optional) runs
// after each stop.
func (e *Engine) AdvanceTo(ctx context.Context, c SettableClock, target time.Time, after func() error) error {
	for {
		if err := e.RunUntilIdle(ctx); err != nil {
			return err
		}
		if after != nil {
			if err := after(); err != nil {
				return err
			}
		}
		now := c.Now()
		if !now.Before(target) {
			return nil
		}
		next, ok, err := e.NextWake(ctx, now)
		if err != nil {
			return err
		}
		if !ok || next.After(target) {
			next = target
		}
		c.Set(next)
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Errors a Faulty store injects. Each wraps ErrInjected, so a test can tell an
// injected failure from a real one with errors.Is.
var (
	ErrInjected = errors.New("store: injected fault")
	// ErrInjectedLocked is what a write sees when another process holds the
	// database's write lock past the busy timeout.
	ErrInjectedLocked = fmt.Errorf("%w: database is locked", ErrInjected)
	// ErrInjectedFull is what a write sees when the disk is full.
	ErrInjectedFull = fmt.Errorf("%w: database or disk is full", ErrInjected)
)

// FaultPoint is where in a write transaction an injected fault strikes.
type FaultPoint int

const (
	// FailBegin fails before the transaction starts, as a lock that cannot be
	// obtained does: the transaction's function never runs.
	FailBegin FaultPoint = iota
	// FailCommit runs the function in a real transaction, then fails instead of
	// committing (a full disk at commit): everything it wrote is rolled back.
	FailCommit
	// FailMidway fails one of the transaction's write statements (the first,
	// second or third, drawn at random; at commit when there are fewer): the
	// statements before it ran and are rolled back.
	FailMidway
)

func (p FaultPoint) String() string {
	switch p {
	case FailBegin:
		return "begin"
	case FailCommit:
		return "commit"
	case FailMidway:
		return "midway"
	}
	return fmt.Sprintf("FaultPoint(%d)", int(p))
}

// FaultOp describes one store operation a Faulty store is about to run, for a
// FaultHook.
type FaultOp struct {
	Kind string // "write" (Write), "enqueue" (Enqueue) or "read" (a Reader method)
	Seq  int64  // 1-based count of operations of that kind so far
}

// FaultHook decides whether an operation fails: a non-nil error is injected
// (at the configured FaultPoint for writes).
type FaultHook func(op FaultOp) error

// FaultStats count what a Faulty store did.
type FaultStats struct {
	Writes, WritesFailed int64 // Write and Enqueue calls, and how many were failed on purpose
	Reads, ReadsFailed   int64
}

// Faulty wraps a Store and makes its operations fail, on command or at random,
// as a real database does under stress: locked by another writer, or out of disk.
// It is for tests: the engine and the server must acknowledge nothing that was
// not stored, store nothing by halves, and recover once the store does.
//
// Writes fail (in order of precedence) while Down, for the next FailNext calls,
// when the hook says so, or with the probability set by SetRate. Reads fail only
// while SetReadsDown(true) or by the hook. An injected write failure always rolls
// the whole transaction back: the inner store's atomicity is what is being tested
// around, not replaced. All methods are safe for concurrent use.
type Faulty struct {
	// Store is the wrapped store. Embedded, so methods added to the interface
	// later pass through unfaulted until they are wrapped here.
	Store

	mu        sync.Mutex
	rng       *rand.Rand
	rate      float64
	next      int
	down      error
	readsDown error
	err       error
	point     FaultPoint
	hook      FaultHook
	stats     FaultStats
}

var _ Store = (*Faulty)(nil)

// NewFaulty wraps inner. seed makes the random failures reproducible. Until told
// otherwise it injects nothing; injected write errors default to ErrInjectedLocked
// at FailBegin.
func NewFaulty(inner Store, seed uint64) *Faulty {
	return &Faulty{Store: inner, rng: rand.New(rand.NewPCG(seed, 0x6661756c7479)), err: ErrInjectedLocked}
}

// Inner is the wrapped store.
func (f *Faulty) Inner() Store { return f.Store }

// SetRate makes each write fail with probability p (0 turns it off).
func (f *Faulty) SetRate(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = p
}

// SetError sets the error random and FailNext failures return (nil: ErrInjectedLocked)
// and where in the transaction they strike.
func (f *Faulty) SetError(err error, at FaultPoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = ErrInjectedLocked
	}
	f.err, f.point = err, at
}

// FailNext makes the next n writes fail.
func (f *Faulty) FailNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = n
}

// Down makes every write fail with err (nil: ErrInjectedFull) until Up.
func (f *Faulty) Down(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = ErrInjectedFull
	}
	f.down = err
}

// Up ends Down, SetReadsDown, FailNext and the random failures.
func (f *Faulty) Up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down, f.readsDown, f.next, f.rate = nil, nil, 0, 0
}

// SetReadsDown makes every read fail (with ErrInjectedLocked) while on.
func (f *Faulty) SetReadsDown(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readsDown = nil
	if on {
		f.readsDown = ErrInjectedLocked
	}
}

// SetHook installs a hook consulted for every operation not already failed by
// Down, FailNext or SetReadsDown (nil removes it).
func (f *Faulty) SetHook(h FaultHook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// Faults returns the counts so far.
func (f *Faulty) Faults() FaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// decideWrite says whether this write fails, with what and where; midway is the
// 1-based write statement to fail when the point is FailMidway.
func (f *Faulty) decideWrite(kind string) (at FaultPoint, midway int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Writes++
	at = f.point
	switch {
	case f.down != nil:
		err = f.down
	case f.next > 0:
		f.next--
		err = f.err
	}
	if err == nil && f.hook != nil {
		h := f.hook
		seq := f.stats.Writes
		f.mu.Unlock()
		err = h(FaultOp{Kind: kind, Seq: seq})
		f.mu.Lock()
	}
	if err == nil && f.rate > 0 && f.rng.Float64() < f.rate {
		err = f.err
	}
	if err == nil {
		return 0, 0, nil
	}
	f.stats.WritesFailed++
	return at, 1 + f.rng.IntN(3), err
}

func (f *Faulty) read() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Reads++
	err := f.readsDown
	if err == nil && f.hook != nil {
		h := f.hook
		seq := f.stats.Reads
		f.mu.Unlock()
		err = h(FaultOp{Kind: "read", Seq: seq})
		f.mu.Lock()
	}
	if err != nil {
		f.stats.ReadsFailed++
	}
	return err
}

// Write runs fn in a write transaction of the inner store, unless a fault is due.
func (f *Faulty) Write(ctx context.Context, fn func(Tx) error) error {
	at, midway, err := f.decideWrite("write")
	if err == nil {
		return f.Store.Write(ctx, fn)
	}
	return f.failWrite(ctx, err, at, midway, fn)
}

// Enqueue stores inbound items, unless a fault is due.
func (f *Faulty) Enqueue(ctx context.Context, items []InboxItem) (int, error) {
	at, midway, err := f.decideWrite("enqueue")
	if err == nil {
		return f.Store.Enqueue(ctx, items)
	}
	if len(items) == 0 {
		return 0, nil
	}
	return 0, f.failWrite(ctx, err, at, midway, func(tx Tx) error {
		_, err := tx.EnqueueInbox(items)
		return err
	})
}

// failWrite injects err at the given point: the inner transaction (when one is
// started at all) is always rolled back.
func (f *Faulty) failWrite(ctx context.Context, err error, at FaultPoint, midway int, fn func(Tx) error) error {
	if at == FailBegin {
		return err
	}
	werr := f.Store.Write(ctx, func(tx Tx) error {
		ft := &faultyTx{Tx: tx, err: err, failAt: -1}
		if at == FailMidway {
			ft.failAt = midway
		}
		if ferr := fn(ft); ferr != nil {
			return ferr
		}
		return err
	})
	if werr == nil { // cannot happen: the function always fails
		return err
	}
	return werr
}

// faultyTx fails its failAt-th write statement (never when failAt < 0).
type faultyTx struct {
	Tx
	err    error
	failAt int
	writes int
}

func (t *faultyTx) write() error {
	t.writes++
	if t.writes == t.failAt {
		return t.err
	}
	return nil
}

func (t *faultyTx) EnqueueInbox(items []InboxItem) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	return t.Tx.EnqueueInbox(items)
}

func (t *faultyTx) MarkProcessed(items []*InboxItem, at time.Time) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.MarkProcessed(items, at)
}

func (t *faultyTx) SaveContacts(cs []*Contact) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.SaveContacts(cs)
}

func (t *faultyTx) InsertFlowVersion(v *FlowVersion) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.InsertFlowVersion(v)
}

func (t *faultyTx) SaveRuns(rs []*Run) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.SaveRuns(rs)
}

func (t *faultyTx) InsertTimers(ts []*Timer) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.InsertTimers(ts)
}

func (t *faultyTx) DeleteTimers(ids []int64) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.DeleteTimers(ids)
}

func (t *faultyTx) InsertOutbox(items []*OutboxItem) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.InsertOutbox(items)
}

func (t *faultyTx) ChangeOutbox(cs []*OutboxChange) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	return t.Tx.ChangeOutbox(cs)
}

func (t *faultyTx) MarkSending(ids []int64, at time.Time) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.MarkSending(ids, at)
}

func (t *faultyTx) MarkSendingUnknown(at time.Time) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	return t.Tx.MarkSendingUnknown(at)
}

func (t *faultyTx) ResendUnknown(now time.Time, after time.Duration, limit int, reason string) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	return t.Tx.ResendUnknown(now, after, limit, reason)
}

func (t *faultyTx) CancelPendingOutbox(contacts []string, at time.Time) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.CancelPendingOutbox(contacts, at)
}

func (t *faultyTx) InsertStatuses(rs []*StatusRecord) (int, error) {
	if err := t.write(); err != nil {
		return 0, err
	}
	return t.Tx.InsertStatuses(rs)
}

func (t *faultyTx) SaveSchedule(s *Schedule) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.SaveSchedule(s)
}

// ---- reads ----

// Contact reads a contact, unless reads are down.
func (f *Faulty) Contact(ctx context.Context, waID string) (*Contact, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.Contact(ctx, waID)
}

// ContactsAfter pages through contacts, unless reads are down.
func (f *Faulty) ContactsAfter(ctx context.Context, after string, limit int) ([]*Contact, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.ContactsAfter(ctx, after, limit)
}

// RunsOf reads a contact's runs, unless reads are down.
func (f *Faulty) RunsOf(ctx context.Context, waID string, limit int) ([]*Run, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.RunsOf(ctx, waID, limit)
}

// RunsWhere reads runs by flow and status, unless reads are down.
func (f *Faulty) RunsWhere(ctx context.Context, flowID, status string, limit int) ([]*Run, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.RunsWhere(ctx, flowID, status, limit)
}

// OutboxOf reads a contact's messages, unless reads are down.
func (f *Faulty) OutboxOf(ctx context.Context, waID string, limit int) ([]*OutboxItem, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.OutboxOf(ctx, waID, limit)
}

// OutboxWhere reads messages by status, unless reads are down.
func (f *Faulty) OutboxWhere(ctx context.Context, status string, limit int) ([]*OutboxItem, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.OutboxWhere(ctx, status, limit)
}

// InboxUnprocessed counts unprocessed events, unless reads are down.
func (f *Faulty) InboxUnprocessed(ctx context.Context) (int64, error) {
	if err := f.read(); err != nil {
		return 0, err
	}
	return f.Store.InboxUnprocessed(ctx)
}

// Stats reads queue depths, unless reads are down.
func (f *Faulty) Stats(ctx context.Context) (Stats, error) {
	if err := f.read(); err != nil {
		return Stats{}, err
	}
	return f.Store.Stats(ctx)
}

// Ping answers unless reads are down.
func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.read(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// Due reads which loops have work, unless reads are down.
func (f *Faulty) Due(ctx context.Context, now time.Time, resendAfter time.Duration) (Due, error) {
	if err := f.read(); err != nil {
		return Due{}, err
	}
	return f.Store.Due(ctx, now, resendAfter)
}

// Depths reads bounded queue depths, unless reads are down.
func (f *Faulty) Depths(ctx context.Context, now time.Time, limit int64) (Depths, error) {
	if err := f.read(); err != nil {
		return Depths{}, err
	}
	return f.Store.Depths(ctx, now, limit)
}

// FlowVersion reads a flow version, unless reads are down.
func (f *Faulty) FlowVersion(ctx context.Context, id int64) (*FlowVersion, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.FlowVersion(ctx, id)
}

// Close closes the inner store.
func (f *Faulty) Close() error { return f.Store.Close() }

func (t *faultyTx) LinkContactIDs(links map[string]string) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.LinkContactIDs(links)
}

func (t *faultyTx) MergeContact(from, into string) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.MergeContact(from, into)
}

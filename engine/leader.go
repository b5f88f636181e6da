package engine

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/store"
)

// LeaseName is the lease the engine's loops run under: whichever replica
// holds it processes inbound events, fires timers and schedules, sends and
// deletes what is past its retention; the others only take webhooks and API
// calls into the store.
const LeaseName = "leader"

// ElectorOptions configure an Elector. Zero values take the defaults.
type ElectorOptions struct {
	// Holder names this process in the lease; it must be unique among the
	// replicas and across restarts (NewHolderID).
	Holder string
	// TTL is how long a lease lasts without renewal (default 10s). The leader
	// renews it every TTL/4; a replica that dies holding it is replaced once
	// it lapses, so TTL plus one attempt interval bounds a failover.
	TTL time.Duration
	// Clock dates the lease. Nil: the database's clock, so that replicas on
	// machines whose clocks differ still agree on when a lease lapses.
	Clock  Clock
	Logger *slog.Logger
	// Registry, when set, gets funnel_leader and funnel_lease_age_seconds.
	Registry prometheus.Registerer
}

// Elector keeps this replica a candidate for the lease, modelled on river's
// internal/leadership: a row with an expiring lease in the shared database,
// renewed by its holder, taken over by another candidate once it lapses; no
// consensus of our own. While it leads it runs the work given to Run, with
// every write transaction of that work fenced by the lease (a replica that lost
// it writes nothing more), and stops that work as soon as it may have lost it.
type Elector struct {
	st   store.Store
	o    ElectorOptions
	log  *slog.Logger
	wake chan struct{}

	mu        sync.Mutex
	leading   bool
	deadline  time.Time // on the local clock: leading no longer counts after it
	lease     store.Lease
	renewSeen time.Time // local time a new renewal of the lease was first seen

	leader   prometheus.Gauge
	changes  prometheus.Counter
	failures prometheus.Counter
}

// NewHolderID is a lease holder name unique to this process: host, process id
// and a random part (a restarted process with the same pid is another holder).
func NewHolderID(host string, pid int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 8)
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return host + "-" + strconv.Itoa(pid) + "-" + string(b)
}

// NewElector creates a candidate over a store.
func NewElector(st store.Store, o ElectorOptions) *Elector {
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	el := &Elector{st: st, o: o, log: o.Logger, wake: make(chan struct{}, 1),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "funnel_leader",
			Help: "1 while this replica holds the lease (processes events, fires timers, sends), 0 while it only takes webhooks and API calls."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_leader_changes_total",
			Help: "Times this replica became or stopped being the leader."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_lease_errors_total",
			Help: "Lease attempts or renewals that failed (the database did not answer)."}),
	}
	if o.Registry != nil {
		age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "funnel_lease_age_seconds",
			Help: "Seconds since the lease was last renewed, by whichever replica holds it, as this replica last saw it (above the TTL: the leader is gone and a takeover is due)."},
			el.leaseAge)
		o.Registry.MustRegister(el.leader, el.changes, el.failures, age)
	}
	return el
}

// Holder is this replica's name in the lease.
func (el *Elector) Holder() string { return el.o.Holder }

// TTL is the lease's duration.
func (el *Elector) TTL() time.Duration { return el.o.TTL }

// Leading reports whether this replica holds the lease (and it has not lapsed
// by the local clock).
func (el *Elector) Leading() bool {
	el.mu.Lock()
	defer el.mu.Unlock()
	return el.leading && el.now().Before(el.deadline)
}

// Lease is the lease as this replica last saw it.
func (el *Elector) Lease() store.Lease {
	el.mu.Lock()
	defer el.mu.Unlock()
	return el.lease
}

// now is the local time deadlines are kept in: the injected clock, else the
// process's monotonic clock.
func (el *Elector) now() time.Time {
	if el.o.Clock != nil {
		return el.o.Clock.Now()
	}
	return time.Now()
}

// leaseAge is how long ago, as far as this replica can tell, the lease was
// last renewed: since it saw the renewal, which is at most one attempt
// interval after it happened. Clock-independent: no two machines' times are
// compared.
func (el *Elector) leaseAge() float64 {
	el.mu.Lock()
	defer el.mu.Unlock()
	if el.lease.Holder == "" || el.renewSeen.IsZero() {
		return 0
	}
	return el.now().Sub(el.renewSeen).Seconds()
}

// Wake makes a follower try for the lease now (the leader resigned).
func (el *Elector) Wake() {
	select {
	case el.wake <- struct{}{}:
	default:
	}
}

// Attempt takes or renews the lease once and reports whether this replica
// holds it. When the database does not answer, a leader still counts as
// leading until its local deadline (the lease cannot lapse before).
func (el *Elector) Attempt(ctx context.Context) (bool, error) {
	var dbNow time.Time
	if el.o.Clock != nil {
		dbNow = el.o.Clock.Now()
	}
	start := el.now()
	l, held, err := el.st.Lead(ctx, LeaseName, el.o.Holder, el.o.TTL, dbNow)
	el.mu.Lock()
	defer el.mu.Unlock()
	if err != nil {
		el.failures.Inc()
		if el.leading && !start.Before(el.deadline) {
			el.leading = false
		}
		return el.leading, err
	}
	if l.Holder != el.lease.Holder || !l.RenewedAt.Equal(el.lease.RenewedAt) {
		el.renewSeen = el.now()
	}
	el.lease = l
	el.leading = held
	if held {
		// The lease runs from the statement's time, no earlier than when it
		// was sent: count from then, less a tenth for the clocks' drift.
		el.deadline = start.Add(el.o.TTL - el.o.TTL/10)
	}
	return held, nil
}

// interval is the time between attempts: a quarter of the TTL, so a leader
// renews three times before its lease could lapse, with a little jitter so
// that followers do not all ask at the same instant.
func (el *Elector) interval() time.Duration {
	base := el.o.TTL / 4
	return base - base/10 + time.Duration(rand.Int64N(int64(base/5)+1))
}

// Run keeps this replica a candidate until ctx ends. While it holds the lease
// it runs lead with a context that is cancelled as soon as the lease may be
// lost and that fences every write transaction of the engine made with it
// (FencedContext). lead must return once its context is done; the lease is
// renewed meanwhile, and given up (Resign) when ctx ends, after lead returned,
// so another replica takes over at once instead of after the TTL.
func (el *Elector) Run(ctx context.Context, lead func(context.Context)) {
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	stop := func(why string) {
		if cancel == nil {
			return
		}
		cancel()
		<-done
		cancel, done = nil, nil
		el.leader.Set(0)
		el.changes.Inc()
		el.log.Warn("replica role: follower (takes webhooks and API calls; another replica processes)", "role", "follower", "holder", el.o.Holder, "why", why)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop("stopping")
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := el.st.Resign(rctx, LeaseName, el.o.Holder); err != nil {
				el.log.Warn("could not give up the lease; another replica takes over once it lapses", "err", err, "ttl", el.o.TTL)
			}
			rcancel()
			return
		case <-t.C:
		case <-el.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		held, err := el.Attempt(ctx)
		if err != nil && ctx.Err() == nil {
			el.log.Warn("lease: the database did not answer", "err", err, "leading", held)
		}
		switch {
		case held && cancel == nil:
			var lctx context.Context
			lctx, cancel = context.WithCancel(FencedContext(ctx, LeaseName, el.o.Holder))
			done = make(chan struct{})
			go func() {
				defer close(done)
				lead(lctx)
			}()
			el.leader.Set(1)
			el.changes.Inc()
			l := el.Lease()
			el.log.Info("replica role: leader (processes events, fires timers and schedules, sends)", "role", "leader", "holder", el.o.Holder, "ttl", el.o.TTL, "elected_at", l.ElectedAt)
		case !held && cancel != nil:
			stop("lost the lease")
		}
		wait := el.interval()
		if cancel != nil {
			// A leader whose renewals fail tries again before its deadline.
			el.mu.Lock()
			left := el.deadline.Sub(el.now())
			el.mu.Unlock()
			if err != nil {
				wait = min(wait, max(left/2, 10*time.Millisecond))
			}
			if left <= 0 {
				stop("could not renew the lease in time")
				continue
			}
		}
		t.Reset(wait)
	}
}

type fenceKey struct{}

type fence struct{ name, holder string }

// FencedContext marks ctx so that every write transaction the engine makes
// with it first checks that holder still holds the lease `name`
// (store.Tx.Fence): work started by a leader cannot write once another
// replica took over.
func FencedContext(ctx context.Context, name, holder string) context.Context {
	return context.WithValue(ctx, fenceKey{}, fence{name, holder})
}

func fenceOf(ctx context.Context) (fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(fence)
	return f, ok
}

package engine_test

import (
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// The processing loop does not look for due timers while none can be due,
// and every timer still fires at its own time, also one written after the
// engine learned that the earliest was later.
func TestTimersAreNotReadBeforeTheEarliestIsDue(t *testing.T) {
	r := newRig(t, []string{
		onHi("ask", "", "  - id: q\n    send: \"question\"\n  - id: w\n    wait_for_reply: {timeout: 1h, on_timeout: late}\n  - id: thanks\n    send: \"thanks\"\n    next: done\n  - id: late\n    send: \"timed out\"\n  - id: done\n    end: true\n"),
		"flow: drip\nlanguage: en_US\ntrigger:\n  message: {keywords: [drip]}\nsteps:\n  - id: w\n    wait: 5m\n  - id: later\n    send: \"later\"\n",
	})
	log := &txLog{processed: map[string]int{}, claimed: map[string]int{}}
	r.eng = engine.New(loggedStore{Store: r.st, log: log}, r.opts)
	if err := r.eng.Load(r.ctx, r.proj, r.diags); err != nil {
		t.Fatal(err)
	}
	reads := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.dueReads
	}
	const bob = "5511900000002"

	r.send(ana, textMsg("hi")) // a reply timeout due at +1h
	r.settle()                 // nothing due: the earliest is learned
	before := reads()
	for _, at := range []time.Duration{0, 10 * time.Minute, 30 * time.Minute} {
		r.clock.Set(rigStart.Add(at))
		r.settle()
	}
	if n := reads() - before; n != 0 {
		t.Errorf("due timers were read %d times before +1h, when none could be due", n)
	}

	r.send(bob, textMsg("drip")) // at +30m: a wait due at +35m, before the known earliest
	if got := callBodies(r, bob); got != "" {
		t.Fatalf("bob got %q before his wait", got)
	}
	r.clock.Set(rigStart.Add(35 * time.Minute))
	r.settle()
	if got := callBodies(r, bob); got != "later" {
		t.Errorf("at +35m bob got %q, want the message after his 5m wait", got)
	}
	r.clock.Set(rigStart.Add(time.Hour - time.Second))
	r.settle()
	if got := callBodies(r, ana); got != "question" {
		t.Errorf("before +1h ana got %q", got)
	}
	r.clock.Set(rigStart.Add(time.Hour))
	r.settle()
	if got := callBodies(r, ana); got != "question, timed out" {
		t.Errorf("at +1h ana got %q, want her reply timeout", got)
	}
	if st := r.run(ana).Status; st != store.RunCompleted {
		t.Errorf("ana's run is %s", st)
	}
}

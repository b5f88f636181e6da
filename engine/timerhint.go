package engine

import (
	"sync"
	"time"
)

// timerHint remembers when the earliest pending timer falls due, so that the
// processing loop does not look for due timers, in a write transaction of
// its own after every inbox batch and again inside each batch, while none can
// be due. Every timer the engine writes lowers it (inside its transaction,
// and again once that commits); FireTimers learns it when it finds nothing
// due. Unknown (at start) means look.
type timerHint struct {
	mu    sync.Mutex
	gen   uint64 // counts timers written, to drop a learn that raced with one
	known bool
	none  bool      // known: no timer is pending at all
	next  time.Time // known and not none: the earliest due time
}

// mayBeDue reports whether a timer may be due at now.
func (h *timerHint) mayBeDue(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.known || (!h.none && !now.Before(h.next))
}

// start is the generation to give learn, taken before the transaction that
// reads the timers begins.
func (h *timerHint) start() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// learn records the earliest pending timer (ok false: none) as read by a
// transaction begun at generation gen. If a timer was written since, that
// transaction may not have seen it, and the hint stays as it is.
func (h *timerHint) learn(gen uint64, next time.Time, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen == gen {
		h.known, h.none, h.next = true, !ok, next
	}
}

// added lowers the hint for a timer due at due.
func (h *timerHint) added(due time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	if h.known && (h.none || due.Before(h.next)) {
		h.none, h.next = false, due
	}
}

package engine

import (
	"sync"
	"time"
)

// bucket is a token bucket that hands out send times: Reserve returns when the
// next message may go, so callers can sleep precisely instead of polling.
type bucket struct {
	mu       sync.Mutex
	interval time.Duration // one token per interval
	burst    int
	next     time.Time // when the bucket is full again minus burst tokens
}

func newBucket(perSecond float64, burst int) *bucket {
	if burst < 1 {
		burst = 1
	}
	return &bucket{interval: time.Duration(float64(time.Second) / perSecond), burst: burst}
}

// Reserve takes a token and returns when it may be used.
func (b *bucket) Reserve(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	earliest := now.Add(-time.Duration(b.burst-1) * b.interval)
	if b.next.Before(earliest) {
		b.next = earliest
	}
	at := b.next
	b.next = b.next.Add(b.interval)
	if at.Before(now) {
		return now
	}
	return at
}

// TryTake takes a token if one is available now; otherwise it returns when one
// will be (and takes nothing).
func (b *bucket) TryTake(now time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	earliest := now.Add(-time.Duration(b.burst-1) * b.interval)
	if b.next.Before(earliest) {
		b.next = earliest
	}
	if b.next.After(now) {
		return false, b.next
	}
	b.next = b.next.Add(b.interval)
	return true, now
}

// pairLimiter paces messages per recipient (WhatsApp's pair rate: about one per 6
// seconds, bursts allowed). It keeps at most max recipients, forgetting the least
// recently used, so memory stays flat however many contacts there are.
type pairLimiter struct {
	mu       sync.Mutex
	burst    int
	interval time.Duration
	max      int
	m        map[string]*pairEntry
	head     *pairEntry // most recent
	tail     *pairEntry
}

type pairEntry struct {
	key        string
	b          *bucket
	prev, next *pairEntry
}

func newPairLimiter(burst int, interval time.Duration, max int) *pairLimiter {
	return &pairLimiter{burst: burst, interval: interval, max: max, m: map[string]*pairEntry{}}
}

// TryTake takes a token for a recipient, or says when one will be available.
func (p *pairLimiter) TryTake(key string, now time.Time) (bool, time.Time) {
	p.mu.Lock()
	e := p.m[key]
	if e == nil {
		e = &pairEntry{key: key, b: newBucket(float64(time.Second)/float64(p.interval), p.burst)}
		p.m[key] = e
		if len(p.m) > p.max {
			old := p.tail
			p.unlink(old)
			delete(p.m, old.key)
		}
	} else {
		p.unlink(e)
	}
	p.pushFront(e)
	p.mu.Unlock()
	return e.b.TryTake(now)
}

func (p *pairLimiter) unlink(e *pairEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if p.head == e {
		p.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if p.tail == e {
		p.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (p *pairLimiter) pushFront(e *pairEntry) {
	e.next = p.head
	if p.head != nil {
		p.head.prev = e
	}
	p.head = e
	if p.tail == nil {
		p.tail = e
	}
}

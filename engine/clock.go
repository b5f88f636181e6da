package engine

import (
	"sync"
	"time"
)

// Clock tells the time. The engine never calls time.Now directly.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns the current UTC time.
func (RealClock) Now() time.Time { return time.Now().UTC() }

// VirtualClock is a clock that moves only when told, for tests and simulations.
type VirtualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewVirtualClock starts a virtual clock at t.
func NewVirtualClock(t time.Time) *VirtualClock { return &VirtualClock{t: t.UTC()} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t (never backwards).
func (c *VirtualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t.UTC()
	}
	c.mu.Unlock()
}

// SettableClock is a clock that can be moved forward: the simulator's virtual
// clock, the sandbox's offset clock.
type SettableClock interface {
	Clock
	Set(t time.Time)
}

// OffsetClock is the wall clock shifted by an offset that only grows: the
// sandbox fast-forwards it to show day 3 without waiting three days.
type OffsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the wall clock plus the offset.
func (c *OffsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

// Set moves the clock to t (never backwards).
func (c *OffsetClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := t.Sub(time.Now().UTC().Add(c.offset)); d > 0 {
		c.offset += d
	}
}

// Offset is how far the clock is ahead of the wall clock.
func (c *OffsetClock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// SetOffset puts the clock at an offset: the sandbox restores the offset it
// saved (a restart keeps its time), or sets 0 for a new sandbox. It is the one
// way the clock can move back.
func (c *OffsetClock) SetOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.offset = d
}

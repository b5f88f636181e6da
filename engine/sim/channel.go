package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Channel behaves like the Cloud API for the simulator: it knows when each contact
// last wrote and refuses free-form messages 24h or more after it with 131047,
// exactly as Meta would. The engine's policy should make that unreachable; Refused
// counts it if it ever happens.
type Channel struct {
	mu      sync.Mutex
	clock   engine.Clock
	last    map[string]time.Time
	n       int
	Refused int
}

// NewChannel makes a simulated Cloud API on a clock.
func NewChannel(clock engine.Clock) *Channel {
	return &Channel{clock: clock, last: map[string]time.Time{}}
}

// Inbound records that a contact wrote at t (the message's own timestamp).
func (c *Channel) Inbound(waID string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.last[waID]) {
		c.last[waID] = t
	}
}

// WindowOpen reports whether the contact wrote less than 24h before t.
func (c *Channel) WindowOpen(waID string, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.last[waID]
	return ok && t.Sub(l) < dsl.Window
}

// Send accepts a message (to a number, "to", or a BSUID, "recipient"), or refuses free-form outside the window with 131047.
func (c *Channel) Send(_ context.Context, _ string, m *whatsapp.Message) (string, error) {
	now := c.clock.Now()
	if m.Type != whatsapp.TypeTemplate && !c.WindowOpen(m.Address(), now) {
		c.mu.Lock()
		c.Refused++
		c.mu.Unlock()
		return "", &whatsapp.APIError{HTTPStatus: 400, Code: 131047, Message: "Re-engagement message",
			Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return fmt.Sprintf("wamid.sim.%d", c.n), nil
}

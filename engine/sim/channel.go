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
//
// The simulator keeps the last-message times in memory (one run, one process).
// The sandbox, which restarts, gives it a Ledger instead: times and accepted sends
// then live in its database, and a restart changes nothing.
type Channel struct {
	mu      sync.Mutex
	clock   engine.Clock
	ledger  Ledger
	last    map[string]time.Time
	prefix  string
	n       int
	Refused int

	// templates says a template's status (ok false: not in any catalog);
	// status overrides it, as a lifecycle webhook would.
	templates func(name, language string) (status string, ok bool)
	status    map[string]string // "name:language" -> status
}

// SetTemplates tells the channel the templates' statuses, as Meta knows
// them: it then refuses a template that is not APPROVED the way Meta does
// (PAUSED 132015, DISABLED 132016, PENDING and the others 132001). Templates
// it is not told about are accepted.
func (c *Channel) SetTemplates(status func(name, language string) (string, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.templates = status
}

// SetTemplateStatus changes one template's status ("" forgets the change).
func (c *Channel) SetTemplateStatus(name, language, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		c.status = map[string]string{}
	}
	c.status[whatsapp.TemplateKey(name, language)] = status
}

// CatalogStatus reads template statuses from a project's catalogs.
func CatalogStatus(p func() *dsl.Project) func(name, language string) (string, bool) {
	return func(name, language string) (string, bool) {
		proj := p()
		if proj == nil {
			return "", false
		}
		for _, f := range proj.Flows {
			if t, ok := proj.Catalog(f).Lookup(name, language); ok {
				return t.Status, true
			}
		}
		return "", false
	}
}

// templateRefusal is Meta's answer to a template that is not APPROVED (nil
// when it may be sent).
func (c *Channel) templateRefusal(m *whatsapp.Message) error {
	if m.Type != whatsapp.TypeTemplate || m.Template == nil {
		return nil
	}
	c.mu.Lock()
	status, ok := c.status[whatsapp.TemplateKey(m.Template.Name, m.Template.Language.Code)]
	lookup := c.templates
	c.mu.Unlock()
	if !ok || status == "" {
		if lookup == nil {
			return nil
		}
		if status, ok = lookup(m.Template.Name, m.Template.Language.Code); !ok {
			return nil
		}
	}
	switch status {
	case "APPROVED":
		return nil
	case "PAUSED":
		return &whatsapp.APIError{HTTPStatus: 400, Code: whatsapp.CodeTemplatePaused, Message: "Template is Paused",
			Details: "Template " + m.Template.Name + " is paused due to low quality."}
	case "DISABLED":
		return &whatsapp.APIError{HTTPStatus: 400, Code: whatsapp.CodeTemplateDisabled, Message: "Template is Disabled",
			Details: "Template " + m.Template.Name + " has been disabled."}
	}
	return &whatsapp.APIError{HTTPStatus: 404, Code: whatsapp.CodeTemplateMissing, Message: "Template name does not exist in the translation",
		Details: fmt.Sprintf("template name (%s) is %s in %s, not approved", m.Template.Name, status, m.Template.Language.Code)}
}

// Ledger is the persistent memory of a simulated Cloud API: when each contact
// last wrote (the message's own timestamp, as Meta counts the window), and a
// record of each message it accepted with the window at that moment.
type Ledger interface {
	LastInbound(ctx context.Context, waID string) (time.Time, error)
	Accepted(ctx context.Context, a Accepted) error
}

// Accepted is one message the simulated API took, with the window as it stood.
type Accepted struct {
	ProviderID  string
	To          string
	At          time.Time
	Type        string
	WindowOpen  bool
	LastInbound time.Time // zero: the contact never wrote
}

// NewChannel makes a simulated Cloud API on a clock, with its memory in memory.
func NewChannel(clock engine.Clock) *Channel {
	return &Channel{clock: clock, last: map[string]time.Time{}, prefix: "wamid.sim."}
}

// NewLedgerChannel makes a simulated Cloud API whose memory is a ledger. Its
// message ids carry the start time, so ids stay unique across restarts.
func NewLedgerChannel(clock engine.Clock, l Ledger) *Channel {
	return &Channel{clock: clock, ledger: l, last: map[string]time.Time{},
		prefix: fmt.Sprintf("wamid.sim.%x.", time.Now().UnixNano())}
}

// Inbound records that a contact wrote at t (the message's own timestamp). With a
// ledger it does nothing: the ledger already holds the message.
func (c *Channel) Inbound(waID string, t time.Time) {
	if c.ledger != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.last[waID]) {
		c.last[waID] = t
	}
}

// lastInbound is when the contact last wrote (zero: never).
func (c *Channel) lastInbound(ctx context.Context, waID string) (time.Time, error) {
	if c.ledger != nil {
		return c.ledger.LastInbound(ctx, waID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[waID], nil
}

// WindowOpen reports whether the contact wrote less than 24h before t.
func (c *Channel) WindowOpen(waID string, t time.Time) bool {
	l, err := c.lastInbound(context.Background(), waID)
	return err == nil && open(l, t)
}

func open(last, t time.Time) bool { return !last.IsZero() && t.Sub(last) < dsl.Window }

// Send accepts a message (to a number, "to", or a BSUID, "recipient"), or
// refuses free-form outside the window with 131047, and a template that is not
// APPROVED as Meta does (see SetTemplates).
func (c *Channel) Send(ctx context.Context, _ string, m *whatsapp.Message) (string, error) {
	now := c.clock.Now()
	last, err := c.lastInbound(ctx, m.Address())
	if err != nil {
		return "", err // unknown outcome: like a call that broke, never a wrong answer
	}
	isOpen := open(last, now)
	if err := c.templateRefusal(m); err != nil {
		return "", err
	}
	if m.Type != whatsapp.TypeTemplate && !isOpen {
		c.mu.Lock()
		c.Refused++
		c.mu.Unlock()
		return "", &whatsapp.APIError{HTTPStatus: 400, Code: 131047, Message: "Re-engagement message",
			Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}
	}
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("%s%d", c.prefix, c.n)
	c.mu.Unlock()
	if c.ledger != nil {
		// Accepted is accepted: a record that fails to write only leaves the
		// page without the window label of this message.
		_ = c.ledger.Accepted(ctx, Accepted{ProviderID: id, To: m.Address(), At: now, Type: m.Type, WindowOpen: isOpen, LastInbound: last})
	}
	return id, nil
}

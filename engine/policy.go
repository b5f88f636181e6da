package engine

import (
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// WindowGuard is how long before the 24h mark the sender already treats the window
// as closed (dsl.WindowGuard: the validator errs from the same threshold).
const WindowGuard = dsl.WindowGuard

// decision is what the runtime policy says about one message at send time.
type decision struct {
	send    bool
	payload []byte // what to send: the message or its fallback
	sentAs  string // "message" or "fallback"
	status  string // final status when not sent (held: waits for hold)
	reason  string
	hold    string // the template ("name:language") a held message waits for
}

// WindowOpen reports whether free-form messages may be sent to the contact now:
// less than dsl.SendDeadline (24h less the guard) since the own timestamp of its
// last message.
func WindowOpen(c *store.Contact, now time.Time) bool {
	return c != nil && !c.LastInboundAt.IsZero() && now.Sub(c.LastInboundAt) < dsl.SendDeadline
}

// decide applies the policy of docs/LANGUAGE.md ("At run time") at the moment of sending: a free-form
// message needs an open window, else its fallback template goes out, else it
// fails as window_closed without calling the API; no template goes to an
// opted-out contact; MARKETING needs consent unless the flow assumes it.
//
// states is what Meta last said about the templates: a template it refuses
// now (paused, disabled) is not sent; its message goes out as its fallback
// when it has one that can be sent, else it is held until the template is
// approved again. The consent check uses a template's current category.
func decide(it *store.OutboxItem, c *store.Contact, now time.Time, states map[string]*store.TemplateState) decision {
	if c == nil {
		return decision{status: store.OutFailed, reason: "unknown contact"}
	}
	fallback := func() decision {
		fk := templateOf(it.Fallback)
		if s := states[fk]; s.Blocked() {
			return holdDecision(s)
		}
		if d := templateAllowed(currentCategory(states, fk, it.FallbackCategory), it.AssumeOptIn, c); !d.send {
			return d
		}
		return decision{send: true, payload: it.Fallback, sentAs: "fallback"}
	}
	if it.Kind == store.KindFreeForm {
		if WindowOpen(c, now) {
			return decision{send: true, payload: it.Payload, sentAs: "message"}
		}
		if it.Fallback == nil {
			return decision{status: store.OutWindowClosed, reason: "the 24h window is closed and the step has no fallback template"}
		}
		return fallback()
	}
	key := templateOf(it.Payload)
	if s := states[key]; s.Blocked() {
		if it.Fallback != nil && !states[templateOf(it.Fallback)].Blocked() {
			return fallback()
		}
		return holdDecision(s)
	}
	if d := templateAllowed(currentCategory(states, key, it.Category), it.AssumeOptIn, c); !d.send {
		return d
	}
	return decision{send: true, payload: it.Payload, sentAs: "message"}
}

func templateAllowed(category string, assumeOptIn bool, c *store.Contact) decision {
	if c.Consent == store.ConsentOut {
		return decision{status: store.OutOptedOut, reason: "the contact opted out: no templates"}
	}
	if category == "MARKETING" && c.Consent != store.ConsentIn && !assumeOptIn {
		return decision{status: store.OutNoConsent, reason: "MARKETING template without the contact's opt-in"}
	}
	return decision{send: true}
}

// switchToFallback requeues a free-form message as its fallback template after
// Meta refused it for the window (131047, at once or by a failed status): the
// fallback goes out next, under the same outbox row. Without a fallback, or once
// the fallback itself was sent, it does nothing.
func switchToFallback(it *store.OutboxItem) bool {
	if it.Fallback == nil || it.Kind != store.KindFreeForm {
		return false
	}
	it.Status, it.Kind, it.Payload, it.Fallback = store.OutPending, store.KindTemplate, it.Fallback, nil
	it.Category, it.SentAs, it.ProviderID = it.FallbackCategory, "fallback", ""
	return true
}

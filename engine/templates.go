package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// Template lifecycle at run time (docs/WHATSAPP.md, "Templates change under a
// running funnel"): Meta's webhooks say when a template is paused, disabled,
// approved again, recategorised or rated, and are stored as template states.
// The sender reads them from a cache: a message whose template cannot be sent
// now is held (or goes out as its fallback), and the consent check uses the
// template's current category rather than the one it had when the flow
// version was loaded.

// templateCache is the template states as of one read of the store.
type templateCache struct {
	gen    uint64
	states map[string]*store.TemplateState // by "name:language"
}

// templates holds the cache and a generation that every change of a
// template's state bumps (after its commit): a cache read before the bump is
// never kept.
type templates struct {
	gen   atomic.Uint64
	cache atomic.Pointer[templateCache]

	mu      sync.Mutex
	blocked map[string]bool // keys whose gauge is 1
}

// invalidate drops the cache: the next claim reads the states again.
func (t *templates) invalidate() {
	t.gen.Add(1)
	t.cache.Store(nil)
}

// templateStates returns the cached states, reading them in tx when the cache
// is stale.
func (e *Engine) templateStates(tx store.Tx) (map[string]*store.TemplateState, error) {
	if c := e.tmpl.cache.Load(); c != nil && c.gen == e.tmpl.gen.Load() {
		return c.states, nil
	}
	gen := e.tmpl.gen.Load()
	ts, err := tx.TemplateStates()
	if err != nil {
		return nil, err
	}
	m := make(map[string]*store.TemplateState, len(ts))
	for _, s := range ts {
		m[s.Key()] = s
	}
	e.tmpl.cache.CompareAndSwap(nil, &templateCache{gen: gen, states: m})
	e.syncBlockedGauge(m)
	return m, nil
}

// syncBlockedGauge sets funnel_template_blocked to the states just read.
func (e *Engine) syncBlockedGauge(m map[string]*store.TemplateState) {
	e.tmpl.mu.Lock()
	defer e.tmpl.mu.Unlock()
	if e.tmpl.blocked == nil {
		e.tmpl.blocked = map[string]bool{}
	}
	for k := range e.tmpl.blocked {
		if !m[k].Blocked() {
			e.m.TemplateBlocked.WithLabelValues(k).Set(0)
			delete(e.tmpl.blocked, k)
		}
	}
	for k, s := range m {
		if s.Blocked() && !e.tmpl.blocked[k] {
			e.m.TemplateBlocked.WithLabelValues(k).Set(1)
			e.tmpl.blocked[k] = true
		}
	}
}

// BlockedTemplates lists the templates Meta refuses to send now (paused,
// disabled, …), for /v1/status; nil when none.
func (e *Engine) BlockedTemplates(states []*store.TemplateState) []*store.TemplateState {
	var out []*store.TemplateState
	for _, s := range states {
		if s.Blocked() {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// templateOf names the template of a message payload ("name:language"), ""
// when it is not a template message.
func templateOf(payload []byte) string {
	if len(payload) == 0 || !bytes.Contains(payload, []byte(`"template"`)) {
		return ""
	}
	var m struct {
		Template *struct {
			Name     string `json:"name"`
			Language struct {
				Code string `json:"code"`
			} `json:"language"`
		} `json:"template"`
	}
	if json.Unmarshal(payload, &m) != nil || m.Template == nil {
		return ""
	}
	return whatsapp.TemplateKey(m.Template.Name, m.Template.Language.Code)
}

// category is the template's category now: Meta's last word on it when
// known, else what the flow version resolved.
func currentCategory(states map[string]*store.TemplateState, key, resolved string) string {
	if s := states[key]; s != nil && s.Category != "" {
		return s.Category
	}
	return resolved
}

// heldReason is the last_error of a message held for a template.
func heldReason(s *store.TemplateState) string {
	r := fmt.Sprintf("template %s is %s", s.Key(), s.Status)
	if !s.StatusAt.IsZero() {
		r += " since " + s.StatusAt.UTC().Format(time.RFC3339)
	}
	if s.Reason != "" && s.Reason != "NONE" {
		r += " (" + s.Reason + ")"
	}
	return r + ": held until Meta approves it again"
}

// Status events of message_template_status_update that are not statuses:
// they leave the template's status as it was (FLAGGED: still APPROVED, to be
// disabled on a date; LOCKED/UNLOCKED: editing only) or mean APPROVED again.
var (
	statusKeeping   = map[string]bool{"FLAGGED": true, "LOCKED": true, "UNLOCKED": true}
	statusApproving = map[string]bool{"APPROVED": true, "REINSTATED": true, "UNARCHIVED": true}
)

// handleAccount records an account-level webhook (a template's status,
// category or quality, a phone number's quality rating and messaging limit);
// flush applies it with the batch's other writes (applyAccount).
func (b *batch) handleAccount(in *Inbound) string {
	if in.Account.Template == nil && in.Account.Phone == nil {
		return "error: empty account update"
	}
	b.accounts = append(b.accounts, in.Account)
	return ResultAccount
}

// applyAccount writes one account update. Held messages of a template
// approved again go back to pending; the pending ones of a template paused or
// disabled are held. A webhook older than what is recorded changes nothing.
func (b *batch) applyAccount(a *whatsapp.AccountUpdate) error {
	tx, e := b.tx, b.e
	if p := a.Phone; p != nil {
		ok, err := tx.SetPhoneQuality(&store.PhoneQuality{DisplayPhoneNumber: p.DisplayPhoneNumber, Event: p.Event,
			CurrentLimit: p.CurrentLimit, OldLimit: p.OldLimit, MaxDaily: string(p.MaxDailyConversationsPerBusiness), At: a.Time})
		if err != nil || !ok {
			return err
		}
		afterCommit(tx, func() {
			e.m.PhoneQuality.WithLabelValues(p.Event).Inc()
			lvl := e.log.Info
			switch p.Event {
			case "FLAGGED", "DOWNGRADE":
				lvl = e.log.Warn
			}
			lvl("phone number quality update", "number", p.DisplayPhoneNumber, "event", p.Event,
				"current_limit", p.CurrentLimit, "old_limit", p.OldLimit, "max_daily_per_business", string(p.MaxDailyConversationsPerBusiness))
		})
		return nil
	}
	u := a.Template
	key := u.Key()
	var changed bool
	var err error
	var held, released int
	switch a.Field {
	case whatsapp.FieldTemplateStatus:
		status := u.Event
		switch {
		case statusApproving[u.Event]:
			status = "APPROVED"
		case statusKeeping[u.Event]:
			status = ""
			states, err := e.templateStates(tx)
			if err != nil {
				return err
			}
			if states[key] != nil {
				status = states[key].Status
			}
		}
		changed, err = tx.SetTemplateStatus(u.Name, u.Language, string(u.ID), status, u.Event, u.Reason, a.Time)
		if err == nil && changed && u.Category != "" {
			_, err = tx.SetTemplateCategory(u.Name, u.Language, string(u.ID), u.Category, a.Time)
		}
		if err == nil && changed {
			if store.TemplateStatusBlocks(status) {
				held, err = tx.HoldOutbox(key, heldReason(&store.TemplateState{Name: u.Name, Language: u.Language,
					Status: status, StatusAt: a.Time, Reason: u.Reason}), b.now)
			} else {
				released, err = tx.ReleaseOutbox(key, b.now)
			}
		}
	case whatsapp.FieldTemplateCategory:
		if u.NewCategory == "" || (u.CorrectCategory != "" && u.PreviousCategory == "") {
			// Announced, not made yet: the category changes when Meta
			// says it did (a second webhook).
			afterCommit(tx, func() {
				e.log.Warn("template category change announced", "template", key, "category", u.NewCategory,
					"will_be", u.CorrectCategory, "at", string(u.CategoryUpdateTimestamp))
			})
			return nil
		}
		changed, err = tx.SetTemplateCategory(u.Name, u.Language, string(u.ID), u.NewCategory, a.Time)
	case whatsapp.FieldTemplateQuality:
		changed, err = tx.SetTemplateQuality(u.Name, u.Language, string(u.ID), u.NewQualityScore, a.Time)
	}
	if err != nil || !changed {
		return err
	}
	afterCommit(tx, func() {
		e.tmpl.invalidate()
		switch a.Field {
		case whatsapp.FieldTemplateStatus:
			if store.TemplateStatusBlocks(u.Event) && !statusApproving[u.Event] {
				e.m.TemplateHeld.Add(float64(held))
				e.log.Warn("template can no longer be sent: its messages are held until Meta approves it again (or go out as their fallback)",
					"template", key, "event", u.Event, "reason", u.Reason, "held", held)
			} else if statusKeeping[u.Event] {
				e.log.Warn("template flagged by Meta", "template", key, "event", u.Event, "reason", u.Reason)
			} else {
				e.log.Info("template status", "template", key, "event", u.Event, "released", released)
			}
		case whatsapp.FieldTemplateCategory:
			e.log.Warn("template category changed: the consent check uses the new one from now on",
				"template", key, "from", u.PreviousCategory, "to", u.NewCategory)
		case whatsapp.FieldTemplateQuality:
			lvl := e.log.Info
			if u.NewQualityScore == "RED" || u.NewQualityScore == "YELLOW" {
				lvl = e.log.Warn
			}
			lvl("template quality", "template", key, "from", u.PreviousQualityScore, "to", u.NewQualityScore)
		}
		if released > 0 {
			e.notifySender()
		}
	})
	return nil
}

// holdDecision is the policy's answer for a message whose template (key)
// Meta refuses now.
func holdDecision(s *store.TemplateState) decision {
	return decision{status: store.OutHeld, reason: heldReason(s), hold: s.Key()}
}

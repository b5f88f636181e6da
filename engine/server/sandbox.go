package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/sim"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

//go:embed static/sandbox.html
var sandboxPage []byte

// Sandbox is `funnel serve --dev`: instead of the Graph API, a channel that
// behaves like it (free-form outside the window fails with 131047), a clock that
// can be fast-forwarded, and a page at /sandbox where you chat as a contact.
type Sandbox struct {
	eng   *engine.Engine
	clock *engine.OffsetClock
	ch    *sim.Channel
	mu    sync.Mutex
	in    map[string][]SandboxMessage // what contacts wrote, for the transcript
	n     int
}

// NewSandbox makes the sandbox's clock and channel; create the engine with them,
// then call Attach.
func NewSandbox() (*Sandbox, *engine.OffsetClock, engine.Channel) {
	clock := &engine.OffsetClock{}
	sb := &Sandbox{clock: clock, ch: sim.NewChannel(clock), in: map[string][]SandboxMessage{}}
	return sb, clock, sb.ch
}

// Attach mounts the sandbox on a server.
func (sb *Sandbox) Attach(s *Server) {
	sb.eng = s.eng
	s.mux.HandleFunc("GET /sandbox", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(sandboxPage)
	})
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sandbox", http.StatusFound)
	})
	s.mux.HandleFunc("GET /sandbox/api/config", sb.config)
	s.mux.HandleFunc("GET /sandbox/api/state", sb.state)
	s.mux.HandleFunc("POST /sandbox/api/inbound", sb.inbound)
	s.mux.HandleFunc("POST /sandbox/api/advance", sb.advance)
}

// SandboxMessage is one line of the sandbox transcript.
type SandboxMessage struct {
	At        time.Time       `json:"at"`
	Direction string          `json:"direction"` // in | out
	Flow      string          `json:"flow,omitempty"`
	Step      string          `json:"step,omitempty"`
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Template  string          `json:"template,omitempty"`
	Status    string          `json:"status,omitempty"`
	Fallback  bool            `json:"fallback,omitempty"`
	Window    string          `json:"window"`
	Choices   []SandboxChoice `json:"choices,omitempty"` // buttons and list rows to tap
}

// SandboxChoice is a tappable reply: an interactive button or list row, or a
// template quick reply.
type SandboxChoice = sim.Tap

func (sb *Sandbox) config(w http.ResponseWriter, r *http.Request) {
	var ads []map[string]string
	var keywords []string
	if p := sb.eng.Flows(); p != nil {
		for _, f := range p.Flows {
			switch f.Trigger.Kind {
			case dsl.TriggerClickToWhatsApp:
				for _, a := range f.Trigger.Ads {
					ads = append(ads, map[string]string{"flow": f.ID, "source_id": a})
				}
				if len(f.Trigger.Ads) == 0 {
					ads = append(ads, map[string]string{"flow": f.ID, "source_id": ""})
				}
			case dsl.TriggerMessage:
				keywords = append(keywords, f.Trigger.Keywords...)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": sb.clock.Now(), "offset_seconds": int64(sb.clock.Offset().Seconds()),
		"ads": ads, "keywords": keywords})
}

// sandboxInbound is a message from the contact. wa_id is the contact's number;
// a user with a WhatsApp username who hides it is played with a BSUID instead
// (user_id, or a BSUID in wa_id) and an optional username: their messages then
// carry no number, as Meta's webhooks do.
type sandboxInbound struct {
	WaID        string            `json:"wa_id"`
	UserID      string            `json:"user_id"`
	Username    string            `json:"username"`
	Name        string            `json:"name"`
	Text        string            `json:"text"`
	Choice      *sim.Tap          `json:"choice"`
	Referral    map[string]string `json:"referral"`
	DelaySecond int64             `json:"delay_seconds"`
}

// inbound plays a message from the contact and returns once the engine has
// answered it.
func (sb *Sandbox) inbound(w http.ResponseWriter, r *http.Request) {
	var req sandboxInbound
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req)
	if whatsapp.IsBSUID(req.WaID) && req.UserID == "" {
		req.WaID, req.UserID = "", req.WaID
	}
	if err != nil || (req.WaID != "" && !validWaID(req.WaID)) || (req.UserID != "" && !whatsapp.IsBSUID(req.UserID)) || req.WaID+req.UserID == "" {
		apiError(w, http.StatusBadRequest, "want {wa_id (digits) or user_id (a BSUID like US.1349…), username, name, text | choice, referral}")
		return
	}
	who := req.WaID
	if who == "" {
		who = req.UserID
	}
	now := sb.clock.Now()
	written := now.Add(-time.Duration(req.DelaySecond) * time.Second)
	sb.mu.Lock()
	sb.n++
	id := fmt.Sprintf("wamid.sandbox.%d.%d", time.Now().UnixNano(), sb.n)
	sb.mu.Unlock()
	msg := sim.Message{WaID: req.WaID, UserID: req.UserID, Username: req.Username, Name: req.Name, ID: id, PhoneNumberID: "sandbox", Written: written, Received: now,
		Text: req.Text, Tap: req.Choice, Referral: req.Referral}
	line := SandboxMessage{At: now, Direction: "in", Type: "text", Text: req.Text}
	switch c := req.Choice; {
	case c != nil && c.Kind == "quick_reply":
		line.Type, line.Text = "button", c.Title
	case c != nil:
		line.Type, line.Text = "interactive", c.Title
	case req.Text == "" && req.Referral == nil:
		apiError(w, http.StatusBadRequest, "empty message")
		return
	}
	sb.ch.Inbound(who, written)
	line.Window = sb.window(who, now)
	sb.mu.Lock()
	sb.in[who] = append(sb.in[who], line)
	sb.mu.Unlock()
	item := msg.Item()
	if _, err := sb.eng.Enqueue(r.Context(), []store.InboxItem{item}); err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if err := sb.settle(r.Context(), who); err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sb.state(w, r.WithContext(context.WithValue(r.Context(), waIDKey{}, who)))
}

// key is the contact's own key for one of its ids (the outbox is filed under it).
func (sb *Sandbox) key(ctx context.Context, id string) string {
	if c, err := sb.eng.Store().Contact(ctx, id); err == nil && c != nil {
		return c.WaID
	}
	return id
}

// settle runs the engine until the contact's messages are out. The daemon's own
// loops run at the same time and may hold a message mid-send, so it waits (up to
// a few seconds) until none is pending or sending.
func (sb *Sandbox) settle(ctx context.Context, waID string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := sb.eng.RunUntilIdle(ctx); err != nil {
			return err
		}
		items, err := sb.eng.Store().OutboxOf(ctx, sb.key(ctx, waID), 20)
		if err != nil {
			return err
		}
		open := false
		for _, it := range items {
			if (it.Status == store.OutPending && !it.NextAttemptAt.After(sb.clock.Now())) || it.Status == store.OutClaimed || it.Status == store.OutSending {
				open = true
			}
		}
		if !open || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type waIDKey struct{}

// advance fast-forwards the clock: every wait and timeout on the way fires at its
// own time.
func (sb *Sandbox) advance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Duration string `json:"duration"`
		WaID     string `json:"wa_id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, `want {"duration": "3d"}`)
		return
	}
	d, err := dsl.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > 366*dsl.Day {
		apiError(w, http.StatusBadRequest, "duration like 1h, 4h, 1d, 3d")
		return
	}
	err = sb.eng.AdvanceTo(r.Context(), sb.clock, sb.clock.Now().Add(d), func() error {
		if req.WaID == "" {
			return nil
		}
		return sb.settle(r.Context(), req.WaID)
	})
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sb.state(w, r.WithContext(context.WithValue(r.Context(), waIDKey{}, req.WaID)))
}

func (sb *Sandbox) window(waID string, t time.Time) string {
	if sb.ch.WindowOpen(waID, t) {
		return "open"
	}
	return "closed"
}

// state returns the transcript of one contact with the clock and the window.
func (sb *Sandbox) state(w http.ResponseWriter, r *http.Request) {
	waID, _ := r.Context().Value(waIDKey{}).(string)
	if waID == "" {
		waID = r.URL.Query().Get("wa_id")
	}
	now := sb.clock.Now()
	out := map[string]any{"now": now, "offset_seconds": int64(sb.clock.Offset().Seconds()), "messages": []SandboxMessage{}}
	if waID == "" {
		writeJSON(w, http.StatusOK, out)
		return
	}
	st := sb.eng.Store()
	items, err := st.OutboxOf(r.Context(), sb.key(r.Context(), waID), 500)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sb.mu.Lock()
	msgs := append([]SandboxMessage(nil), sb.in[waID]...)
	sb.mu.Unlock()
	p := sb.eng.Flows()
	for _, it := range items {
		if it.Status == store.OutPending || it.Status == store.OutClaimed || it.Status == store.OutSending {
			continue
		}
		msgs = append(msgs, sb.outMessage(it, p))
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].At.Before(msgs[j].At) })
	out["messages"] = msgs
	if c, _ := st.Contact(r.Context(), waID); c != nil {
		out["window"] = map[string]any{"open": engine.WindowOpen(c, now), "closes_at": timePtr(c.LastInboundAt.Add(dsl.Window))}
		consent := c.Consent
		if consent == "" {
			consent = "unknown"
		}
		out["consent"] = consent
	}
	writeJSON(w, http.StatusOK, out)
}

func (sb *Sandbox) outMessage(it *store.OutboxItem, p *dsl.Project) SandboxMessage {
	payload := it.Payload
	if it.SentAs == "fallback" && it.Fallback != nil {
		payload = it.Fallback
	}
	var m whatsapp.Message
	_ = json.Unmarshal(payload, &m)
	var cat *dsl.Catalog
	if p != nil {
		if f := p.Flow(it.FlowID); f != nil {
			cat = p.Catalog(f)
		}
	}
	at := it.UpdatedAt
	if !it.SentAt.IsZero() {
		at = it.SentAt
	}
	sm := SandboxMessage{At: at, Direction: "out", Flow: it.FlowID, Step: it.Step, Type: m.Type, Status: it.Status,
		Fallback: it.SentAs == "fallback", Window: sb.window(m.Address(), at)}
	if sm.Status == store.OutDelivered || sm.Status == store.OutRead {
		sm.Status = store.OutSent
	}
	switch {
	case m.Interactive != nil:
		if m.Interactive.Body != nil {
			sm.Text = m.Interactive.Body.Text
		}
		for _, b := range m.Interactive.Action.Buttons {
			sm.Choices = append(sm.Choices, SandboxChoice{Kind: "button_reply", ID: b.Reply.ID, Title: b.Reply.Title})
		}
		for _, s := range m.Interactive.Action.Sections {
			for _, row := range s.Rows {
				sm.Choices = append(sm.Choices, SandboxChoice{Kind: "list_reply", ID: row.ID, Title: row.Title})
			}
		}
	case m.Template != nil:
		sm.Template = m.Template.Name
		sm.Text = engine.Preview(&whatsapp.Message{Type: m.Type, Template: &whatsapp.Template{Name: m.Template.Name,
			Language: m.Template.Language, Components: m.Template.Components}}, nil)
		if tpl, ok := cat.Lookup(m.Template.Name, m.Template.Language.Code); ok {
			sm.Text = engine.PreviewBody(m.Template, tpl)
			for _, b := range tpl.Buttons {
				if b.Type == "QUICK_REPLY" {
					sm.Choices = append(sm.Choices, SandboxChoice{Kind: "quick_reply", ID: b.Text, Title: b.Text})
				}
			}
		}
	default:
		sm.Text = engine.Preview(&m, cat)
	}
	return sm
}

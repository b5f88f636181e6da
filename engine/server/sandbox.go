package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/sim"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

//go:embed static
var sandboxStatic embed.FS

// Bounds of what the sandbox accepts: it runs on a developer's machine, but a
// request must never make it hold or write without limit.
const (
	sandboxMaxBody    = 64 << 10
	sandboxMaxText    = 4096 // WhatsApp's own limit for a text body
	sandboxMaxName    = 256
	sandboxMaxField   = 1024 // a referral field, a tap's id or title
	sandboxMaxPayload = 16 << 10
	sandboxMaxDelay   = 7 * 24 * time.Hour // Meta retries a webhook for up to 7 days
	sandboxMaxAdvance = 31 * dsl.Day
	sandboxTranscript = 300 // messages each way shown per contact
	sandboxTokenHdr   = "X-Funnel-Sandbox-Token"
	metaOffset        = "sandbox_offset_ms"
)

// SandboxConfig says where the sandbox's database is (shown on the page).
type SandboxConfig struct {
	DBPath    string
	Temporary bool // a fresh temporary database, removed at stop
}

// Sandbox is `funnel serve --dev`: instead of the Graph API, a channel that
// behaves like it (free-form outside the window fails with 131047), a clock that
// can be fast-forwarded, and a page at /sandbox where you chat as a contact.
//
// Everything it shows comes from its database: the contact's messages (the
// inbox), the business's messages (the outbox), the window each message was
// sent in (recorded by the simulated API when it accepted it), and the clock's
// offset. A restart therefore changes nothing.
//
// Its API answers only the page it served: a same-origin request (or one with no
// Origin), to an allowed Host, carrying the token the page got at this start,
// and with a JSON body.
type Sandbox struct {
	st    *store.DB
	eng   *engine.Engine
	clock *engine.OffsetClock
	ch    *sim.Channel
	cfg   SandboxConfig
	zone  *time.Location
	token string
	page  []byte
	mu    sync.Mutex // one changing request at a time
	n     atomic.Int64
}

// NewSandbox claims the database for the sandbox (refusing one a production
// daemon used), restores the clock where it was, and makes the simulated API.
// Create the engine with Configure's options, then call Attach.
func NewSandbox(ctx context.Context, st *store.DB, cfg SandboxConfig) (*Sandbox, error) {
	if err := st.ClaimMode(ctx, store.ModeDev); err != nil {
		return nil, err
	}
	clock := &engine.OffsetClock{}
	if v, ok, err := st.Meta(ctx, metaOffset); err != nil {
		return nil, err
	} else if ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sandbox clock offset %q: %w", v, err)
		}
		clock.SetOffset(time.Duration(ms) * time.Millisecond)
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	sb := &Sandbox{st: st, clock: clock, cfg: cfg, token: hex.EncodeToString(tok), zone: time.UTC}
	sb.ch = sim.NewLedgerChannel(clock, ledger{st})
	page, err := sandboxStatic.ReadFile("static/sandbox.html")
	if err != nil {
		return nil, err
	}
	sb.page = bytes.Replace(page, []byte("{{TOKEN}}"), []byte(sb.token), 1)
	return sb, nil
}

// Configure sets the engine options the sandbox needs: its clock and channel,
// no pacing (nothing real goes out), and events, runs and messages kept for as
// long as the database lives (they are the transcript; fast-forwarding a month
// must not purge it).
func (sb *Sandbox) Configure(o *engine.Options) {
	o.Clock, o.Channel, o.NoPacing = sb.clock, sb.ch, true
	if o.PhoneNumberID == "" {
		o.PhoneNumberID = "sandbox"
	}
	forever := 100 * 365 * 24 * time.Hour
	o.InboxRetention, o.RunRetention, o.MessageRetention = forever, forever, forever
	if o.Timezone != nil {
		sb.zone = o.Timezone
	}
}

// Token is the per-start token the page carries.
func (sb *Sandbox) Token() string { return sb.token }

// Clock is the sandbox's clock.
func (sb *Sandbox) Clock() *engine.OffsetClock { return sb.clock }

// ledger is the simulated API's memory in the database: the contact's last
// message is read from the inbox, accepted sends go to sandbox_sends.
type ledger struct{ st *store.DB }

func (l ledger) LastInbound(ctx context.Context, waID string) (time.Time, error) {
	items, err := l.st.InboxOf(ctx, waID, sandboxTranscript)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, it := range items {
		var in engine.Inbound
		if it.Kind == store.InboxMessage && json.Unmarshal(it.Payload, &in) == nil && in.Time.After(last) {
			last = in.Time
		}
	}
	return last, nil
}

func (l ledger) Accepted(ctx context.Context, a sim.Accepted) error {
	return l.st.RecordSandboxSend(ctx, store.SandboxSend{ProviderID: a.ProviderID, Contact: a.To, At: a.At, Type: a.Type,
		WindowOpen: a.WindowOpen, LastInboundAt: a.LastInbound})
}

// Attach mounts the sandbox on a server.
func (sb *Sandbox) Attach(s *Server) {
	sb.eng = s.eng
	sb.ch.SetTemplates(sim.CatalogStatus(sb.eng.Flows))
	s.devGuard = func(next http.HandlerFunc) http.HandlerFunc { return sb.guard(false, next) }
	s.mux.HandleFunc("GET /sandbox", sb.guard(false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(sb.page)
	}))
	for _, f := range []struct{ name, ctype string }{{"sandbox.js", "text/javascript; charset=utf-8"}, {"sandbox.css", "text/css; charset=utf-8"}} {
		body, _ := sandboxStatic.ReadFile("static/" + f.name)
		ctype := f.ctype
		s.mux.HandleFunc("GET /sandbox/"+f.name, sb.guard(false, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(body)
		}))
	}
	s.mux.HandleFunc("GET /{$}", sb.guard(false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sandbox", http.StatusFound)
	}))
	s.mux.HandleFunc("GET /sandbox/api/config", sb.guard(true, sb.config))
	s.mux.HandleFunc("GET /sandbox/api/state", sb.guard(true, sb.state))
	s.mux.HandleFunc("GET /sandbox/api/graph", sb.guard(true, sb.graph))
	s.mux.HandleFunc("POST /sandbox/api/inbound", sb.guard(true, sb.inbound))
	s.mux.HandleFunc("POST /sandbox/api/advance", sb.guard(true, sb.advance))
	s.mux.HandleFunc("POST /sandbox/api/event", sb.guard(true, sb.event))
	s.mux.HandleFunc("POST /sandbox/api/contact", sb.guard(true, sb.contact))
	s.mux.HandleFunc("POST /sandbox/api/reset", sb.guard(true, sb.reset))
	s.mux.HandleFunc("/sandbox/api/", sb.guard(true, func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such sandbox call")
	}))
}

// sandboxCSP lets the page load only its own script and style and talk only to
// its own origin; nothing may frame it.
const sandboxCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// guard sets the security headers and refuses what did not come from the page:
// a Host that is neither localhost nor an IP literal (DNS rebinding), an
// Origin other than the server's own (another site's page), and for the API a
// missing token or, on POST, a body that is not JSON (a form or a no-cors fetch
// cannot send application/json across origins without a preflight).
func (sb *Sandbox) guard(api bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", sandboxCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if !sb.allowedHost(r.Host) {
			apiError(w, http.StatusForbidden, "Host "+strconv.Quote(r.Host)+" is not allowed: open the sandbox at localhost or an IP address")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			apiError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		if !api {
			next(w, r)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			apiError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		if got := r.Header.Get(sandboxTokenHdr); subtle.ConstantTimeCompare([]byte(got), []byte(sb.token)) != 1 {
			apiError(w, http.StatusForbidden, "missing or wrong sandbox token: reload the page (it changes at every start)")
			return
		}
		if r.Method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				apiError(w, http.StatusUnsupportedMediaType, "the sandbox API takes application/json")
				return
			}
		}
		next(w, r)
	}
}

func (sb *Sandbox) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	// A name other than localhost is what a DNS-rebinding page would use.
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == host && u.Path == ""
}

// decode reads a bounded JSON body with no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, sandboxMaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// validID is a contact id the sandbox takes: a number or a BSUID.
func validID(s string) bool { return validWaID(s) || whatsapp.IsBSUID(s) }

// key is the contact's own key for one of its ids (its messages and runs are
// filed under it).
func (sb *Sandbox) key(ctx context.Context, id string) string {
	if c, err := sb.st.Contact(ctx, id); err == nil && c != nil {
		return c.WaID
	}
	return id
}

func tooLong(s string, max int) bool { return len(s) > 4*max || utf8.RuneCountInString(s) > max }

func (sb *Sandbox) config(w http.ResponseWriter, r *http.Request) {
	type ad struct {
		Flow        string `json:"flow"`
		SourceID    string `json:"source_id"`
		Description string `json:"description"`
	}
	type flow struct {
		ID          string `json:"id"`
		Trigger     string `json:"trigger"`
		Description string `json:"description"`
		Event       string `json:"event,omitempty"`
	}
	ads, keywords, events, flows := []ad{}, []string{}, []string{}, []flow{}
	if p := sb.eng.Flows(); p != nil {
		for _, f := range p.Flows {
			flows = append(flows, flow{ID: f.ID, Trigger: string(f.Trigger.Kind), Description: f.Description, Event: f.Trigger.Event})
			switch f.Trigger.Kind {
			case dsl.TriggerClickToWhatsApp:
				for _, a := range f.Trigger.Ads {
					ads = append(ads, ad{Flow: f.ID, SourceID: a, Description: f.Description})
				}
				if len(f.Trigger.Ads) == 0 {
					ads = append(ads, ad{Flow: f.ID, Description: f.Description})
				}
			case dsl.TriggerMessage:
				keywords = append(keywords, f.Trigger.Keywords...)
			case dsl.TriggerEvent:
				if !contains(events, f.Trigger.Event) {
					events = append(events, f.Trigger.Event)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": sb.clock.Now(), "offset_seconds": int64(sb.clock.Offset().Seconds()),
		"db": map[string]any{"path": sb.cfg.DBPath, "temporary": sb.cfg.Temporary}, "zone": sb.zone.String(),
		"ads": ads, "keywords": keywords, "events": events, "flows": flows, "opt_out_keywords": engine.DefaultOptOutKeywords})
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
	// Form is a filled-in form (the reply to a form message); Location a
	// shared location (the reply to a location request, or unasked).
	Form     map[string]any     `json:"form"`
	Location *whatsapp.Location `json:"location"`
}

func (req *sandboxInbound) check() string {
	if whatsapp.IsBSUID(req.WaID) && req.UserID == "" {
		req.WaID, req.UserID = "", req.WaID
	}
	switch {
	case (req.WaID != "" && !validWaID(req.WaID)) || (req.UserID != "" && !whatsapp.IsBSUID(req.UserID)) || req.WaID+req.UserID == "":
		return "wa_id: the contact's number, 5 to 20 digits (or user_id: a BSUID like US.1349…)"
	case tooLong(req.Name, sandboxMaxName) || tooLong(req.Username, sandboxMaxName):
		return fmt.Sprintf("name: at most %d characters", sandboxMaxName)
	case tooLong(req.Text, sandboxMaxText):
		return fmt.Sprintf("text: at most %d characters (WhatsApp's limit)", sandboxMaxText)
	case req.DelaySecond < 0 || time.Duration(req.DelaySecond)*time.Second > sandboxMaxDelay:
		return "delay_seconds: from 0 to 604800 (7 days, as long as Meta retries a webhook)"
	case len(req.Referral) > 12:
		return "referral: at most 12 fields"
	case req.Choice != nil && (tooLong(req.Choice.ID, sandboxMaxField) || tooLong(req.Choice.Title, sandboxMaxField) ||
		(req.Choice.Kind != "button_reply" && req.Choice.Kind != "list_reply" && req.Choice.Kind != "quick_reply")):
		return "choice: {kind: button_reply | list_reply | quick_reply, id, title}"
	case len(req.Form) > 50:
		return "form: at most 50 fields"
	case req.Location != nil && (req.Location.Latitude < -90 || req.Location.Latitude > 90 ||
		req.Location.Longitude < -180 || req.Location.Longitude > 180 ||
		tooLong(req.Location.Name, sandboxMaxField) || tooLong(req.Location.Address, sandboxMaxField) || tooLong(req.Location.URL, sandboxMaxField)):
		return "location: {latitude (-90 to 90), longitude (-180 to 180), name, address}"
	case req.Choice == nil && strings.TrimSpace(req.Text) == "" && req.Referral == nil && req.Form == nil && req.Location == nil:
		return "empty message"
	}
	for k, v := range req.Form {
		if b, _ := json.Marshal(v); tooLong(k, 64) || len(b) > sandboxMaxField {
			return fmt.Sprintf("form: names up to 64 characters and values up to %d bytes", sandboxMaxField)
		}
	}
	for k, v := range req.Referral {
		if tooLong(k, 64) || tooLong(v, sandboxMaxField) {
			return fmt.Sprintf("referral: keys up to 64 and values up to %d characters", sandboxMaxField)
		}
	}
	return ""
}

// inbound plays a message from the contact (written delay_seconds ago: its
// webhook arrives late) and returns once the engine has answered it.
func (sb *Sandbox) inbound(w http.ResponseWriter, r *http.Request) {
	var req sandboxInbound
	if err := decode(w, r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "want {wa_id, name, text | choice, referral, delay_seconds}: "+err.Error())
		return
	}
	if msg := req.check(); msg != "" {
		apiError(w, http.StatusBadRequest, msg)
		return
	}
	who := req.WaID
	if who == "" {
		who = req.UserID
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	now := sb.clock.Now()
	written := now.Add(-time.Duration(req.DelaySecond) * time.Second)
	id := fmt.Sprintf("wamid.sandbox.%d.%d", time.Now().UnixNano(), sb.n.Add(1))
	msg := sim.Message{WaID: req.WaID, UserID: req.UserID, Username: req.Username, Name: req.Name, ID: id, PhoneNumberID: "sandbox",
		Written: written, Received: now, Text: req.Text, Tap: req.Choice, Referral: req.Referral, Form: req.Form, Location: req.Location}
	if _, err := sb.eng.Enqueue(r.Context(), []store.InboxItem{msg.Item()}); err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	sb.answer(w, r, who, sb.settle(r.Context(), who))
}

// event starts the `event` flows of a name for the contact, as POST /v1/events
// would.
func (sb *Sandbox) event(w http.ResponseWriter, r *http.Request) {
	var req struct {
		WaID    string          `json:"wa_id"`
		Name    string          `json:"name"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decode(w, r, &req); err != nil {
		apiError(w, http.StatusBadRequest, `want {"wa_id": "...", "name": "...", "payload": {...}}: `+err.Error())
		return
	}
	if !validID(req.WaID) {
		apiError(w, http.StatusBadRequest, "wa_id: the contact's number, 5 to 20 digits, or a BSUID")
		return
	}
	var payload map[string]any
	if len(bytes.TrimSpace(req.Payload)) > 0 && string(bytes.TrimSpace(req.Payload)) != "null" {
		if len(req.Payload) > sandboxMaxPayload {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("payload: at most %d bytes", sandboxMaxPayload))
			return
		}
		if err := json.Unmarshal(req.Payload, &payload); err != nil {
			apiError(w, http.StatusBadRequest, "payload must be a JSON object: "+err.Error())
			return
		}
	}
	if names := eventNames(sb.eng.Flows()); !contains(names, req.Name) {
		apiError(w, http.StatusUnprocessableEntity, "no flow starts on event `"+req.Name+"` (events: "+strings.Join(names, ", ")+")")
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	item, err := engine.EventItem("", req.Name, req.WaID, payload, sb.clock.Now())
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := sb.eng.Enqueue(r.Context(), []store.InboxItem{item}); err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	sb.answer(w, r, req.WaID, sb.settle(r.Context(), req.WaID))
}

// contact sets the contact's time zone (quiet hours and `wait {at}` use it).
func (sb *Sandbox) contact(w http.ResponseWriter, r *http.Request) {
	var req struct {
		WaID     string `json:"wa_id"`
		Timezone string `json:"timezone"`
	}
	if err := decode(w, r, &req); err != nil || !validID(req.WaID) {
		apiError(w, http.StatusBadRequest, `want {"wa_id": "digits", "timezone": "Europe/Madrid"}`)
		return
	}
	if req.Timezone != "" {
		if len(req.Timezone) > 64 || strings.EqualFold(req.Timezone, "local") {
			apiError(w, http.StatusBadRequest, "timezone: an IANA name like Europe/Madrid")
			return
		}
		if _, err := time.LoadLocation(req.Timezone); err != nil {
			apiError(w, http.StatusBadRequest, "timezone: unknown zone "+strconv.Quote(req.Timezone)+" (an IANA name like Europe/Madrid)")
			return
		}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if err := sb.st.SetTimezone(r.Context(), sb.key(r.Context(), req.WaID), req.Timezone, sb.clock.Now()); err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sb.answer(w, r, req.WaID, nil)
}

// reset starts a new sandbox: the database emptied, the clock back to now.
func (sb *Sandbox) reset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		WaID string `json:"wa_id"`
	}
	if err := decode(w, r, &req); err != nil {
		apiError(w, http.StatusBadRequest, `want {} or {"wa_id": "..."}`)
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if err := sb.st.EraseSandbox(r.Context()); err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	sb.clock.SetOffset(0)
	err := sb.saveOffset(r.Context())
	if err == nil && sb.eng.Flows() != nil {
		err = sb.eng.Load(r.Context(), sb.eng.Flows(), nil) // schedules start again from now
	}
	sb.answer(w, r, req.WaID, err)
}

func (sb *Sandbox) saveOffset(ctx context.Context) error {
	return sb.st.SetMeta(ctx, metaOffset, strconv.FormatInt(sb.clock.Offset().Milliseconds(), 10))
}

// answer writes the contact's state, or the error of the call that preceded it.
func (sb *Sandbox) answer(w http.ResponseWriter, r *http.Request, waID string, err error) {
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	v, err := sb.view(r.Context(), waID)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
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
		items, err := sb.st.OutboxOf(ctx, sb.key(ctx, waID), 20)
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

// advance fast-forwards the clock: every wait and timeout on the way fires at its
// own time. The new offset is saved: a restart keeps the sandbox's time.
func (sb *Sandbox) advance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Duration string `json:"duration"`
		WaID     string `json:"wa_id"`
	}
	if err := decode(w, r, &req); err != nil || (req.WaID != "" && !validID(req.WaID)) {
		apiError(w, http.StatusBadRequest, `want {"duration": "3d", "wa_id": "digits"}`)
		return
	}
	d, err := dsl.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > sandboxMaxAdvance {
		apiError(w, http.StatusBadRequest, "duration: like 1h, 4h, 1d, 3d; at most 31d at a time")
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	err = sb.eng.AdvanceTo(r.Context(), sb.clock, sb.clock.Now().Add(d), func() error {
		if req.WaID == "" {
			return nil
		}
		return sb.settle(r.Context(), req.WaID)
	})
	if serr := sb.saveOffset(r.Context()); err == nil {
		err = serr
	}
	sb.answer(w, r, req.WaID, err)
}

func (sb *Sandbox) state(w http.ResponseWriter, r *http.Request) {
	waID := r.URL.Query().Get("wa_id")
	if waID != "" && !validID(waID) {
		apiError(w, http.StatusBadRequest, "wa_id: the contact's number, 5 to 20 digits, or a BSUID")
		return
	}
	sb.answer(w, r, waID, nil)
}

// graph draws a flow (the one asked for, else the contact's latest run's) as
// SVG with the steps where the contact's live runs are highlighted.
func (sb *Sandbox) graph(w http.ResponseWriter, r *http.Request) {
	p := sb.eng.Flows()
	if p == nil || len(p.Flows) == 0 {
		apiError(w, http.StatusNotFound, "no flows loaded")
		return
	}
	waID, id := r.URL.Query().Get("wa_id"), r.URL.Query().Get("flow")
	if waID != "" && !validID(waID) {
		apiError(w, http.StatusBadRequest, "wa_id: the contact's number, 5 to 20 digits, or a BSUID")
		return
	}
	var runs []*store.Run
	if waID != "" {
		var err error
		if runs, err = sb.st.RunsOf(r.Context(), sb.key(r.Context(), waID), 50); err != nil {
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	if id == "" {
		for _, run := range runs { // newest first
			if run.Live() || id == "" {
				id = run.FlowID
			}
			if run.Live() {
				break
			}
		}
	}
	f := p.Flow(id)
	if f == nil {
		if id != "" && r.URL.Query().Get("flow") != "" {
			apiError(w, http.StatusNotFound, "no flow "+strconv.Quote(id))
			return
		}
		f = p.Flows[0]
	}
	current := map[string]bool{}
	for _, run := range runs {
		if run.Live() && run.FlowID == f.ID {
			current[run.Step] = true
		}
	}
	var buf bytes.Buffer
	p.WriteSVG(&buf, f, current)
	steps := make([]string, 0, len(current))
	for s := range current {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	writeJSON(w, http.StatusOK, map[string]any{"flow": f.ID, "current": steps, "svg": buf.String()})
}

package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// MinAPITokenLen is the shortest API token the daemon accepts: 32 characters
// (`openssl rand -hex 32` gives 64) are out of reach of guessing.
const MinAPITokenLen = 32

// CheckAPIToken refuses an API token too short to resist guessing. An empty
// token is fine: it turns the API off.
func CheckAPIToken(tok string) error {
	if n := utf8.RuneCountInString(tok); tok != "" && n < MinAPITokenLen {
		return fmt.Errorf("the API token has %d characters: use at least %d (for example `openssl rand -hex 32`)", n, MinAPITokenLen)
	}
	return nil
}

// tokenDigest is what bearer tokens are compared by: comparing SHA-256 digests
// of equal length takes the same time whatever the token's length, where
// comparing the tokens themselves returns at once on a length mismatch.
func tokenDigest(tok string) [sha256.Size]byte { return sha256.Sum256([]byte(tok)) }

// auth requires `Authorization: Bearer $FUNNEL_API_TOKEN` (compared by digest,
// in constant time). Without a configured token the API is off.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIToken == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="funnel"`)
			apiError(w, http.StatusUnauthorized, "the API is disabled: set FUNNEL_API_TOKEN")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gd := tokenDigest(got)
		if !ok || subtle.ConstantTimeCompare(gd[:], s.apiDigest[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="funnel"`)
			apiError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, r)
	}
}

type eventRequest struct {
	Name    string         `json:"name"`
	WaID    string         `json:"wa_id"`
	UserID  string         `json:"user_id"`
	Payload map[string]any `json:"payload"`
}

// postEvent starts the `event` flows named in the request for one contact. An
// Idempotency-Key header makes retries of the same call start them once.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		apiError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	var req eventRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	err = dec.Decode(&req)
	if err == nil {
		// One object and nothing after it: a second event (or garbage) would
		// otherwise be dropped behind a 202.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		s.m.apiEvents.WithLabelValues("bad_request").Inc()
		apiError(w, http.StatusBadRequest, `invalid JSON: want {"name": "...", "wa_id": "..." or "user_id": "...", "payload": {...}}: `+err.Error())
		return
	}
	if req.Name == "" || (req.WaID == "") == (req.UserID == "") {
		s.m.apiEvents.WithLabelValues("bad_request").Inc()
		apiError(w, http.StatusBadRequest, "`name` and one of `wa_id` (the phone number) or `user_id` (the business-scoped user ID) are required")
		return
	}
	if req.WaID != "" && !validWaID(req.WaID) {
		s.m.apiEvents.WithLabelValues("bad_request").Inc()
		apiError(w, http.StatusBadRequest, "`wa_id` must be the contact's WhatsApp number in international format, digits only")
		return
	}
	if req.UserID != "" && !whatsapp.IsBSUID(req.UserID) {
		s.m.apiEvents.WithLabelValues("bad_request").Inc()
		apiError(w, http.StatusBadRequest, "`user_id` must be a business-scoped user ID like US.13491208655302741918")
		return
	}
	id := req.WaID
	if id == "" {
		id = req.UserID
	}
	if names := eventNames(s.eng.Flows()); !contains(names, req.Name) {
		s.m.apiEvents.WithLabelValues("unknown_event").Inc()
		apiError(w, http.StatusUnprocessableEntity, unknownEvent(req.Name, names))
		return
	}
	item, err := engine.EventItem(r.Header.Get("Idempotency-Key"), req.Name, id, req.Payload, s.eng.Now())
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.in.Store(r.Context(), []store.InboxItem{item}); err != nil {
		s.m.apiEvents.WithLabelValues("store_error").Inc()
		apiError(w, http.StatusServiceUnavailable, "not stored, try again")
		return
	}
	s.m.apiEvents.WithLabelValues("accepted").Inc()
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true, "key": item.Key})
}

func validWaID(s string) bool { return whatsapp.ValidWaID(s) }

// unknownEvent says why an event starts nothing: the names that would, with a
// "did you mean" for a typo, or that no loaded flow has an event trigger.
func unknownEvent(name string, names []string) string {
	if len(names) == 0 {
		return "no flow starts on event `" + name + "`: no loaded flow has an `event` trigger"
	}
	return "no flow starts on event `" + name + "`" + dsl.DidYouMean(name, names) + " (events: " + strings.Join(names, ", ") + ")"
}

func eventNames(p *dsl.Project) []string {
	if p == nil {
		return nil
	}
	var names []string
	for _, f := range p.Flows {
		if f.Trigger.Kind == dsl.TriggerEvent && !contains(names, f.Trigger.Event) {
			names = append(names, f.Trigger.Event)
		}
	}
	sort.Strings(names)
	return names
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// ContactView is the JSON of GET /v1/contacts/{id}: Key is funnel's own id of
// the contact (its first number or BSUID, never changing), WaID the phone number
// ("" while unknown), UserID the BSUID.
type ContactView struct {
	Key           string         `json:"key"`
	WaID          string         `json:"wa_id"`
	UserID        string         `json:"user_id"`
	ParentUserID  string         `json:"parent_user_id,omitempty"`
	Username      string         `json:"username"`
	HasPhone      bool           `json:"has_phone"`
	Name          string         `json:"name"`
	Timezone      string         `json:"timezone"`
	Tags          []string       `json:"tags"`
	Attributes    map[string]any `json:"attributes"`
	PhoneNumberID string         `json:"phone_number_id"`
	LastInboundAt *time.Time     `json:"last_inbound_at"`
	Window        WindowView     `json:"window"`
	Consent       ConsentView    `json:"consent"`
	Runs          []RunView      `json:"runs"`
	Messages      []MessageView  `json:"messages"`
}

// WindowView says whether free-form messages may be sent now, and until when.
type WindowView struct {
	Open     bool       `json:"open"`
	ClosesAt *time.Time `json:"closes_at"`
}

// ConsentView is the marketing consent: "in", "out" or "unknown".
type ConsentView struct {
	State  string     `json:"state"`
	At     *time.Time `json:"at"`
	Source string     `json:"source"`
}

// RunView is one run of the contact.
type RunView struct {
	ID        int64          `json:"id"`
	Flow      string         `json:"flow"`
	VersionID int64          `json:"version_id"`
	Step      string         `json:"step"`
	Status    string         `json:"status"`
	Vars      map[string]any `json:"vars"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   *time.Time     `json:"ended_at"`
	EndReason string         `json:"end_reason"`
}

// MessageView is one outbox message.
type MessageView struct {
	ID         int64      `json:"id"`
	Flow       string     `json:"flow"`
	Step       string     `json:"step"`
	Type       string     `json:"type"`
	Template   string     `json:"template,omitempty"`
	Status     string     `json:"status"`
	SentAs     string     `json:"sent_as,omitempty"`
	Attempts   int        `json:"attempts"`
	ErrorCode  int        `json:"error_code,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	ProviderID string     `json:"provider_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ContactState reads a contact with its window, consent, recent runs and messages.
// id is any of its ids: phone number, BSUID, parent BSUID, username or key. It
// returns nil when the contact is unknown.
func ContactState(ctx context.Context, st store.Reader, id string, now time.Time) (*ContactView, error) {
	c, err := st.Contact(ctx, id)
	if err != nil || c == nil {
		return nil, err
	}
	waID := c.WaID
	phone := c.Phone
	if phone == "" && c.UserID == "" && !whatsapp.IsBSUID(c.WaID) {
		phone = c.WaID
	}
	v := &ContactView{Key: c.WaID, WaID: phone, UserID: c.UserID, ParentUserID: c.ParentUserID, Username: c.Username,
		HasPhone: phone != "", Name: c.Name, Timezone: c.Timezone, Tags: c.Tags, Attributes: c.Attributes,
		PhoneNumberID: c.PhoneNumberID, LastInboundAt: timePtr(c.LastInboundAt), Runs: []RunView{}, Messages: []MessageView{}}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	v.Window.Open = engine.WindowOpen(c, now)
	if !c.LastInboundAt.IsZero() {
		v.Window.ClosesAt = timePtr(c.LastInboundAt.Add(dsl.Window))
	}
	v.Consent = ConsentView{State: "unknown", At: timePtr(c.ConsentAt), Source: c.ConsentSource}
	if c.Consent != "" {
		v.Consent.State = c.Consent
	}
	runs, err := st.RunsOf(ctx, waID, 50)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		v.Runs = append(v.Runs, RunView{ID: r.ID, Flow: r.FlowID, VersionID: r.VersionID, Step: r.Step, Status: r.Status,
			Vars: r.Vars, StartedAt: r.StartedAt, EndedAt: timePtr(r.EndedAt), EndReason: r.EndReason})
	}
	msgs, err := st.OutboxOf(ctx, waID, 50)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		v.Messages = append(v.Messages, MessageViewOf(m))
	}
	return v, nil
}

// MessageViewOf is the JSON view of an outbox message.
func MessageViewOf(m *store.OutboxItem) MessageView {
	payload := m.Payload
	if m.SentAs == "fallback" && m.Fallback != nil {
		payload = m.Fallback
	}
	var msg whatsapp.Message
	_ = json.Unmarshal(payload, &msg)
	mv := MessageView{ID: m.ID, Flow: m.FlowID, Step: m.Step, Type: msg.Type, Status: m.Status, SentAs: m.SentAs,
		Attempts: m.Attempts, ErrorCode: m.ErrorCode, LastError: m.LastError, ProviderID: m.ProviderID,
		CreatedAt: m.CreatedAt, SentAt: timePtr(m.SentAt)}
	if msg.Template != nil {
		mv.Template = msg.Template.Name
	}
	return mv
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) {
	v, err := ContactState(r.Context(), s.st, r.PathValue("id"), s.eng.Now())
	if err != nil {
		apiError(w, http.StatusInternalServerError, "cannot read the contact")
		return
	}
	if v == nil {
		apiError(w, http.StatusNotFound, "unknown contact")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok\n")
}

// readyz answers whether this process can take webhooks and store them: flows
// loaded, the store answering, not stopping. It reads no table: a stopped
// sender or a backlog is an alert (/v1/status, metrics, the log), never
// unreadiness, since a load balancer that pulls the only replica would bounce
// Meta's statuses and STOPs while the sender waits for a human.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ok := true
	if s.eng.Flows() == nil {
		checks["flows"], ok = "not loaded", false
	} else {
		checks["flows"] = "ok"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		checks["store"], ok = "error: "+err.Error(), false
	} else {
		checks["store"] = "ok"
	}
	if s.in.isClosed() {
		checks["webhooks"], ok = "stopping", false
	} else {
		checks["webhooks"] = "ok"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
}

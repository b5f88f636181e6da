// Package whatsapptest is a fake of Meta's Graph API for WhatsApp, served over
// real HTTP by httptest, for the engine, daemon and reliability tests. It
// behaves like the Cloud API where funnel depends on it: bearer token, path,
// payload shape, the 24 h window (131047), marketing opt-out (131050),
// templates (132001/132000/…), throughput (130429) and pair rate (131056),
// plus injected faults (5xx, slow responses, dropped connections, an expired
// token). It records every attempt and every accepted message, and produces
// signed webhooks (statuses, inbound messages) for what it accepted.
//
// Everything time-based uses one injectable clock (Options.Now / SetNow),
// except the real-time delay of FaultSlow. All methods are safe for
// concurrent use.
package whatsapptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Defaults used when Options leaves a field empty.
const (
	DefaultVersion            = "v23.0"
	DefaultToken              = "test-token"
	DefaultAppSecret          = "test-app-secret"
	DefaultWABAID             = "102290129340398"
	DefaultPhoneNumberID      = "106540352242922"
	DefaultDisplayPhoneNumber = "15550783881"
	DefaultSlowDelay          = 2 * time.Second
	DefaultTemplatePageSize   = 25
)

// Template is a template the fake knows. Sends are checked against it when
// the fake has a template set (Options.Templates non-nil, or after
// SetTemplates/AddTemplate).
type Template struct {
	Name     string
	Language string // e.g. en_US
	Category string // MARKETING | UTILITY | AUTHENTICATION
	// Status defaults to APPROVED. PAUSED answers 132015, DISABLED 132016,
	// anything else (PENDING, REJECTED, …) 132001.
	Status string
	// Params is the number of positional body parameters ({{1}}…). Ignored
	// when NamedParams is set: then every name must be given, and only those.
	Params      int
	NamedParams []string
	// Header is "", TEXT, IMAGE, VIDEO or DOCUMENT. A media header requires a
	// header parameter of that type (132012 otherwise).
	Header string
	// Body and Buttons only feed the message_templates listing; a body is
	// generated from the parameters when empty.
	Body    string
	Buttons []string
	// Quality is the listing's quality_score (GREEN, YELLOW, RED, UNKNOWN);
	// "" leaves it out.
	Quality string
}

// Faults are per-request probabilities in [0,1] of each injected fault
// (their sum should not exceed 1), drawn from a math/rand source seeded with
// Seed so a failing run can be replayed.
type Faults struct {
	Seed      uint64
	HTTP500   float64 // 500 with Graph error code 1, message not processed
	RateLimit float64 // 130429, not processed
	PairRate  float64 // 131056, not processed
	Drop      float64 // body read, connection closed without response, not processed
	// DropAfterAccept: processed and recorded as sent, then the connection
	// is closed without response (the "unknown outcome" that duplicates).
	DropAfterAccept float64
	// Slow: processed normally, response delayed by Options.SlowDelay
	// (real time): a client timeout then sees an unknown outcome although
	// the message was accepted.
	Slow float64
}

// Options configure a Fake. The zero value is a working fake with default
// ids and token, the window enforced, no template set, no pacing, no faults.
type Options struct {
	Version            string // API version path element, default v23.0
	Token              string // expected bearer token, default test-token
	AppSecret          string // signs produced webhooks, default test-app-secret
	WABAID             string // default 102290129340398
	DisplayPhoneNumber string // in produced webhooks, default 15550783881
	// PhoneNumberIDs restricts the accepted phone number ids; empty accepts
	// any all-digit id.
	PhoneNumberIDs []string

	// Templates, when non-nil (even empty), is the template set sends are
	// checked against; nil accepts any template name and, not knowing its
	// category, treats it as MARKETING (so OptOut applies to it).
	Templates []Template
	// TemplateJSON is what GET /{waba-id}/message_templates serves; nil
	// generates Meta-shaped objects from Templates.
	TemplateJSON []json.RawMessage
	// TemplatePageSize is the page size when the request has no limit.
	TemplatePageSize int

	// Now is the clock for the window, pacing and records; default time.Now.
	Now func() time.Time
	// Window is the customer service window, default 24h.
	Window time.Duration
	// DisableWindow accepts free-form messages regardless of the window.
	DisableWindow bool
	// AsyncFailures accepts messages that break the window (131047) or an
	// opt-out (131050) and marks them to fail later, as Meta often does:
	// the failure then arrives only as a failed status webhook
	// (Sent.AsyncError, StatusWebhook(id, "failed", 0)).
	AsyncFailures bool

	// Rate is the throughput per phone number in messages per second (0:
	// unlimited), Burst its bucket size (default max(1, Rate)). Over it:
	// 130429.
	Rate  float64
	Burst int
	// PairInterval enables the pair rate limit: one message per interval to
	// the same recipient from the same number, bursts of PairBurst (default
	// 1). Over it: 131056.
	PairInterval time.Duration
	PairBurst    int

	Faults Faults
	// SlowDelay is the real-time delay of FaultSlow, default 2s.
	SlowDelay time.Duration
	// MessageStatus is the message_status of accepted sends, default accepted.
	MessageStatus string
	// AllowUnknownFields accepts JSON fields whatsapp.Message does not have
	// (by default they are rejected with code 100, catching tag typos).
	AllowUnknownFields bool
}

// FaultKind is an injected failure.
type FaultKind int

// Fault kinds; see Faults for their meaning.
const (
	FaultNone FaultKind = iota
	FaultHTTP500
	FaultRateLimit
	FaultPairRate
	FaultDrop
	FaultDropAfterAccept
	FaultSlow
	// FaultError answers the Graph error Fault.Code with Fault.HTTPStatus
	// (default: Meta's usual status for the code).
	FaultError
)

func (k FaultKind) String() string {
	return [...]string{"none", "http500", "rate_limit", "pair_rate", "drop", "drop_after_accept", "slow", "error"}[k]
}

// Fault is one scripted failure for InjectNext.
type Fault struct {
	Kind       FaultKind
	Code       int           // FaultError
	HTTPStatus int           // FaultError, 0 = Meta's usual status
	Delay      time.Duration // FaultSlow, 0 = Options.SlowDelay
}

// ErrorFault scripts a Graph API error answer.
func ErrorFault(code int) Fault { return Fault{Kind: FaultError, Code: code} }

// Attempt is one request to the messages endpoint, whatever became of it.
type Attempt struct {
	Seq           int
	At            time.Time
	PhoneNumberID string
	Body          []byte
	Message       *whatsapp.Message // nil when the body did not decode
	HTTPStatus    int               // 0 when the connection was dropped
	Code          int               // Graph error code, 0 when accepted
	MessageID     string            // wamid when accepted
	Fault         FaultKind
}

// Sent is one accepted message.
type Sent struct {
	ID            string // wamid.…
	PhoneNumberID string
	To            string // normalized (digits only); "" when sent to a BSUID
	Recipient     string // the BSUID it was addressed to ("recipient"), if any
	UserID        string // the user's BSUID, however it was addressed
	Message       whatsapp.Message
	Body          []byte
	At            time.Time
	Category      string // template category, "" for free-form
	// AsyncError is the code the message will fail with (AsyncFailures).
	AsyncError int
}

type bucket struct {
	tokens float64
	last   time.Time
	init   bool
}

func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if !b.init {
		b.tokens, b.last, b.init = float64(burst), now, true
	}
	if now.After(b.last) {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// Fake is a running fake Graph API.
type Fake struct {
	srv    *httptest.Server
	closed chan struct{}
	once   sync.Once

	mu           sync.Mutex
	opts         Options
	now          func() time.Time
	templates    map[string]Template // name\x00language; nil: not configured
	templateList []Template
	inbound      map[string]time.Time // by the user's BSUID, as every per-user state
	optedOut     map[string]bool
	unreachable  map[string]bool
	users        map[string]*User  // by BSUID
	byPhone      map[string]string // phone → BSUID
	phoneIDs     map[string]bool
	rng          *mrand.Rand
	queue        []Fault
	tokenExpired bool
	failAll      int
	buckets      map[string]*bucket
	pairBuckets  map[string]*bucket
	attempts     []Attempt
	sent         []Sent
	byID         map[string]int
	changed      chan struct{}
	events       eventsState // the Conversions API (fake_events.go)
	seq          int
	idSeq        int
}

// New starts a fake. With a non-nil t it is closed at the end of the test.
func New(t testing.TB, opts Options) *Fake {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.AppSecret == "" {
		opts.AppSecret = DefaultAppSecret
	}
	if opts.WABAID == "" {
		opts.WABAID = DefaultWABAID
	}
	if opts.DisplayPhoneNumber == "" {
		opts.DisplayPhoneNumber = DefaultDisplayPhoneNumber
	}
	if opts.TemplatePageSize <= 0 {
		opts.TemplatePageSize = DefaultTemplatePageSize
	}
	if opts.Window <= 0 {
		opts.Window = 24 * time.Hour
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = DefaultSlowDelay
	}
	if opts.MessageStatus == "" {
		opts.MessageStatus = "accepted"
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(opts.Rate))
	}
	if opts.PairBurst <= 0 {
		opts.PairBurst = 1
	}
	f := &Fake{
		closed:      make(chan struct{}),
		opts:        opts,
		now:         opts.Now,
		inbound:     map[string]time.Time{},
		optedOut:    map[string]bool{},
		unreachable: map[string]bool{},
		users:       map[string]*User{},
		byPhone:     map[string]string{},
		rng:         mrand.New(mrand.NewPCG(opts.Faults.Seed, 0x66756e6e656c)),
		buckets:     map[string]*bucket{},
		pairBuckets: map[string]*bucket{},
		byID:        map[string]int{},
		changed:     make(chan struct{}),
	}
	if f.now == nil {
		f.now = time.Now
	}
	if opts.Templates != nil {
		f.setTemplates(opts.Templates)
	}
	if len(opts.PhoneNumberIDs) > 0 {
		f.phoneIDs = map[string]bool{}
		for _, id := range opts.PhoneNumberIDs {
			f.phoneIDs[id] = true
		}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	if t != nil {
		t.Cleanup(f.Close)
	}
	return f
}

// URL is the Graph API base including the version, for whatsapp.Client.BaseURL.
func (f *Fake) URL() string { return f.srv.URL + "/" + f.opts.Version }

// Token is the bearer token the fake expects.
func (f *Fake) Token() string { return f.opts.Token }

// AppSecret signs the webhooks the fake produces.
func (f *Fake) AppSecret() string { return f.opts.AppSecret }

// WABAID is the WhatsApp Business Account id of templates and webhooks.
func (f *Fake) WABAID() string { return f.opts.WABAID }

// Client returns a whatsapp.Client pointed at the fake with its token.
func (f *Fake) Client() *whatsapp.Client {
	return &whatsapp.Client{BaseURL: f.URL(), Token: f.opts.Token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Close stops the server; slow responses in flight are abandoned.
func (f *Fake) Close() {
	f.once.Do(func() {
		close(f.closed)
		f.srv.Close()
	})
}

// SetNow replaces the clock.
func (f *Fake) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	f.now = now
}

// User is a WhatsApp user as the fake knows them. Every user has a BSUID;
// one with a username may hide their phone number (HidePhone): the fake then
// leaves it out of the webhooks, as Meta does, and only a send to the BSUID
// ("recipient") or to the number itself reaches them.
type User struct {
	Phone        string // digits; "" when the business can never learn it
	UserID       string // BSUID; derived from Phone when empty
	ParentUserID string
	Username     string
	HidePhone    bool
}

// BSUIDFor is the BSUID the fake gives the user with this phone number: a
// country code from the calling code, then digits derived from the number.
func BSUIDFor(phone string) string {
	phone = normalize(phone)
	sum := sha256.Sum256([]byte("bsuid/" + phone))
	n := uint64(0)
	for _, b := range sum[:8] {
		n = n<<8 | uint64(b)
	}
	return countryOf(phone) + "." + strconv.FormatUint(n, 10)
}

// countryOf maps a few calling codes to ISO countries (enough for tests).
func countryOf(phone string) string {
	for _, c := range []struct{ prefix, cc string }{
		{"351", "PT"}, {"44", "GB"}, {"49", "DE"}, {"34", "ES"}, {"33", "FR"}, {"55", "BR"},
		{"91", "IN"}, {"81", "JP"}, {"52", "MX"}, {"1", "US"},
	} {
		if strings.HasPrefix(phone, c.prefix) {
			return c.cc
		}
	}
	return "US"
}

// AddUser registers a user (replacing one with the same BSUID) and returns
// their BSUID.
func (f *Fake) AddUser(u User) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	u.Phone = normalize(u.Phone)
	if u.UserID == "" {
		u.UserID = BSUIDFor(u.Phone)
	}
	f.users[u.UserID] = &u
	if u.Phone != "" {
		f.byPhone[u.Phone] = u.UserID
	}
	return u.UserID
}

// ChangeNumber gives the user with BSUID userID a new phone number and, as
// Meta does, a new BSUID, which it returns.
func (f *Fake) ChangeNumber(userID, newPhone string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[userID]
	if u == nil {
		u = &User{UserID: userID}
	}
	nu := *u
	nu.Phone = normalize(newPhone)
	nu.UserID = BSUIDFor(nu.Phone)
	delete(f.users, userID)
	f.users[nu.UserID] = &nu
	f.byPhone[nu.Phone] = nu.UserID
	if t, ok := f.inbound[userID]; ok {
		f.inbound[nu.UserID] = t
	}
	return nu.UserID
}

// UserOf returns the user a phone number or BSUID belongs to (registering a
// phone number seen for the first time).
func (f *Fake) UserOf(id string) User {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.userLocked(id)
}

func (f *Fake) userLocked(id string) *User {
	if whatsapp.IsBSUID(id) {
		if u := f.users[id]; u != nil {
			return u
		}
		u := &User{UserID: id}
		f.users[id] = u
		return u
	}
	phone := normalize(id)
	if uid, ok := f.byPhone[phone]; ok {
		if u := f.users[uid]; u != nil {
			return u
		}
	}
	u := &User{Phone: phone, UserID: BSUIDFor(phone)}
	f.users[u.UserID] = u
	f.byPhone[phone] = u.UserID
	return u
}

// key is the per-user state key of a phone number or BSUID: the BSUID.
func (f *Fake) key(id string) string { return f.userLocked(id).UserID }

// Inbound tells the fake the user waID last wrote at `at`, which opens the
// 24 h window (an earlier time than the known one is ignored, as a late
// webhook would be).
func (f *Fake) Inbound(waID string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inboundLocked(f.key(waID), at)
}

func (f *Fake) inboundLocked(waID string, at time.Time) {
	if prev, ok := f.inbound[waID]; !ok || at.After(prev) {
		f.inbound[waID] = at
	}
}

// OptOut makes MARKETING templates to waID fail with 131050.
func (f *Fake) OptOut(waID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.optedOut[f.key(waID)] = true
}

// OptIn undoes OptOut.
func (f *Fake) OptIn(waID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.optedOut, f.key(waID))
}

// Unreachable makes every send to waID fail with 131026 (not on WhatsApp).
func (f *Fake) Unreachable(waID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreachable[f.key(waID)] = true
}

// SetTemplates replaces the template set (and enables template checks).
func (f *Fake) SetTemplates(ts []Template) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setTemplates(ts)
}

// AddTemplate adds or replaces one template (and enables template checks).
func (f *Fake) AddTemplate(t Template) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(f.templateList), func(o Template) bool { return o.Name == t.Name && o.Language == t.Language })
	f.setTemplates(append(list, t))
}

func (f *Fake) setTemplates(ts []Template) {
	f.templates = map[string]Template{}
	f.templateList = nil
	for _, t := range ts {
		if t.Status == "" {
			t.Status = "APPROVED"
		}
		f.templates[t.Name+"\x00"+t.Language] = t
		f.templateList = append(f.templateList, t)
	}
}

// InjectNext queues faults for the next message requests, one each, before
// the random ones of Options.Faults are drawn.
func (f *Fake) InjectNext(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, faults...)
}

// SetFaults replaces the random fault rates (and reseeds).
func (f *Fake) SetFaults(fs Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.Faults = fs
	f.rng = mrand.New(mrand.NewPCG(fs.Seed, 0x66756e6e656c))
}

// SetRate changes the per-number throughput (0: unlimited).
func (f *Fake) SetRate(perSecond float64, burst int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.Rate, f.opts.Burst = perSecond, max(1, burst)
	f.buckets = map[string]*bucket{}
}

// SetTokenExpired makes every request fail with 401 / code 190 while on.
func (f *Fake) SetTokenExpired(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenExpired = on
}

// FailAll makes every send fail with the Graph error code (e.g. 368 policy
// block, 131048 spam limit, 131057 maintenance) until FailAll(0).
func (f *Fake) FailAll(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAll = code
}

// Sent returns the accepted messages in order.
func (f *Fake) Sent() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// SentTo returns the messages accepted for the user with this phone number
// or BSUID, however they were addressed.
func (f *Fake) SentTo(waID string) []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := f.key(waID)
	var out []Sent
	for _, s := range f.sent {
		if s.UserID == key {
			out = append(out, s)
		}
	}
	return out
}

// Lookup returns the accepted message with that wamid.
func (f *Fake) Lookup(messageID string) (Sent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byID[messageID]
	if !ok {
		return Sent{}, false
	}
	return f.sent[i], true
}

// Attempts returns every request to the messages endpoint in order.
func (f *Fake) Attempts() []Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

// Counts is the number of accepted messages per recipient.
func (f *Fake) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, s := range f.sent {
		out[s.To+s.Recipient]++
	}
	return out
}

// Count is the number of messages accepted for the user with this phone
// number or BSUID.
func (f *Fake) Count(waID string) int { return len(f.SentTo(waID)) }

// Duplicates returns the biz_opaque_callback_data values of which more than
// one message was accepted, with their counts: a duplicate send of one
// outbox row shows up here.
func (f *Fake) Duplicates() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, s := range f.sent {
		if d := s.Message.BizOpaqueCallbackData; d != "" {
			n[d]++
		}
	}
	for k, v := range n {
		if v < 2 {
			delete(n, k)
		}
	}
	return n
}

// AssertNoDuplicates fails t if any biz_opaque_callback_data was accepted twice.
func (f *Fake) AssertNoDuplicates(t testing.TB) {
	t.Helper()
	if d := f.Duplicates(); len(d) > 0 {
		t.Errorf("whatsapptest: duplicate sends by biz_opaque_callback_data: %v", d)
	}
}

// WaitSent waits (real time) until at least n messages were accepted and
// returns them; ok is false on timeout.
func (f *Fake) WaitSent(n int, timeout time.Duration) (sent []Sent, ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if len(f.sent) >= n {
			s := slices.Clone(f.sent)
			f.mu.Unlock()
			return s, true
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return f.Sent(), false
		case <-f.closed:
			return f.Sent(), false
		}
	}
}

// Reset forgets attempts, accepted messages and pacing state; configuration,
// inbound times and opt-outs stay.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts, f.sent, f.byID = nil, nil, map[string]int{}
	f.buckets, f.pairBuckets = map[string]*bucket{}, map[string]*bucket{}
	f.queue = nil
}

// normalize keeps the digits of a phone number, as Meta does for "to".
func normalize(waID string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, waID)
}

func digits(s string) bool { return s != "" && normalize(s) == s }

// ---- HTTP ----

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[2] == "messages" && r.Method == http.MethodPost:
		f.serveMessages(w, r, parts[0], parts[1])
	case len(parts) == 3 && parts[2] == "events" && r.Method == http.MethodPost:
		f.serveEvents(w, r, parts[0], parts[1])
	case len(parts) == 3 && parts[2] == "message_templates" && r.Method == http.MethodGet:
		f.serveTemplates(w, r, parts[0], parts[1])
	default:
		writeError(w, 0, 100, fmt.Sprintf("Unsupported %s request. Unknown path %s", r.Method, r.URL.Path))
	}
}

// authError checks the version and bearer token, as Meta does first.
func (f *Fake) authError(r *http.Request, version string) (code int, msg string) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || auth[len("Bearer "):] != f.opts.Token {
		return 190, "Invalid OAuth access token - Cannot parse access token"
	}
	if f.tokenExpired {
		return 190, "Error validating access token: Session has expired"
	}
	if version != f.opts.Version {
		return 100, fmt.Sprintf("Unknown path components: /%s (the fake serves %s)", version, f.opts.Version)
	}
	return 0, ""
}

func (f *Fake) serveMessages(w http.ResponseWriter, r *http.Request, version, phoneID string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	now := f.now()
	f.seq++
	a := Attempt{Seq: f.seq, At: now, PhoneNumberID: phoneID, Body: body}
	res := f.process(r, version, phoneID, body, now, &a)
	if a.Fault == FaultDrop || a.Fault == FaultDropAfterAccept {
		a.HTTPStatus = 0
	}
	f.attempts = append(f.attempts, a)
	if a.MessageID != "" {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.mu.Unlock()

	switch a.Fault {
	case FaultDrop, FaultDropAfterAccept:
		drop(w)
		return
	case FaultSlow:
		select {
		case <-time.After(res.delay):
		case <-r.Context().Done():
			return
		case <-f.closed:
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(res.status)
	w.Write(res.body)
}

type response struct {
	status int
	body   []byte
	delay  time.Duration
}

func (f *Fake) errorResponse(a *Attempt, code, status int, details string) response {
	if status == 0 {
		status = HTTPStatusFor(code)
	}
	a.HTTPStatus, a.Code = status, code
	return response{status: status, body: errorBody(code, details)}
}

// process decides the answer under f.mu and fills the attempt.
func (f *Fake) process(r *http.Request, version, phoneID string, body []byte, now time.Time, a *Attempt) (res response) {
	if code, msg := f.authError(r, version); code != 0 {
		return f.errorResponse(a, code, 0, msg)
	}
	if !digits(phoneID) || (f.phoneIDs != nil && !f.phoneIDs[phoneID]) {
		return f.errorResponse(a, 100, 0, fmt.Sprintf("Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", phoneID))
	}

	fault := f.drawFault()
	a.Fault = fault.Kind
	if fault.Kind == FaultSlow {
		d := fault.Delay
		if d <= 0 {
			d = f.opts.SlowDelay
		}
		defer func() { res.delay = d }()
	}
	switch fault.Kind {
	case FaultHTTP500:
		return f.errorResponse(a, 1, 500, "An unknown error occurred")
	case FaultRateLimit:
		return f.errorResponse(a, 130429, 0, "Cloud API message throughput has been reached.")
	case FaultPairRate:
		return f.errorResponse(a, 131056, 0, "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.")
	case FaultError:
		return f.errorResponse(a, fault.Code, fault.HTTPStatus, "injected")
	case FaultDrop:
		return response{}
	}
	if f.failAll != 0 {
		return f.errorResponse(a, f.failAll, 0, "")
	}

	var m whatsapp.Message
	dec := json.NewDecoder(bytes.NewReader(body))
	if !f.opts.AllowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&m); err != nil {
		return f.errorResponse(a, 100, 0, "Invalid parameter: "+err.Error())
	}
	if dec.More() {
		return f.errorResponse(a, 100, 0, "Invalid parameter: trailing data after the JSON body")
	}
	a.Message = &m
	if code, details := checkShape(&m); code != 0 {
		return f.errorResponse(a, code, 0, details)
	}
	// "to" wins when both are given, as at Meta.
	var u *User
	if m.To != "" {
		u = f.userLocked(m.To)
	} else {
		u = f.userLocked(m.Recipient)
	}
	to := u.UserID // per-user state is kept by BSUID

	if f.opts.Rate > 0 {
		b := f.buckets[phoneID]
		if b == nil {
			b = &bucket{}
			f.buckets[phoneID] = b
		}
		if !b.take(now, f.opts.Rate, f.opts.Burst) {
			return f.errorResponse(a, 130429, 0, "Cloud API message throughput has been reached.")
		}
	}
	if f.opts.PairInterval > 0 {
		key := phoneID + "/" + to
		b := f.pairBuckets[key]
		if b == nil {
			b = &bucket{}
			f.pairBuckets[key] = b
		}
		if !b.take(now, 1/f.opts.PairInterval.Seconds(), f.opts.PairBurst) {
			return f.errorResponse(a, 131056, 0, "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.")
		}
	}
	if f.unreachable[to] {
		return f.errorResponse(a, 131026, 0, "Message Undeliverable.")
	}

	asyncErr := 0
	category := ""
	if m.Type == whatsapp.TypeTemplate {
		tmpl, known := f.templates[m.Template.Name+"\x00"+m.Template.Language.Code]
		if f.templates != nil {
			if code, details := checkTemplate(tmpl, known, m.Template); code != 0 {
				return f.errorResponse(a, code, 0, details)
			}
			category = tmpl.Category
			if m.To == "" && strings.EqualFold(category, "AUTHENTICATION") {
				return f.errorResponse(a, whatsapp.CodeBSUIDUnsupported, 0, "Business-scoped User ID recipients are not supported for this message.")
			}
		} else {
			category = "MARKETING"
		}
		if strings.EqualFold(category, "MARKETING") && f.optedOut[to] {
			if !f.opts.AsyncFailures {
				return f.errorResponse(a, 131050, 0, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.")
			}
			asyncErr = 131050
		}
	} else if !f.opts.DisableWindow {
		last, ok := f.inbound[to]
		if !ok || now.Sub(last) > f.opts.Window {
			if !f.opts.AsyncFailures {
				return f.errorResponse(a, 131047, 0, "Message failed to send because more than 24 hours have passed since the customer last replied to this number.")
			}
			asyncErr = 131047
		}
	}

	id := f.newWAMID(to)
	f.byID[id] = len(f.sent)
	f.sent = append(f.sent, Sent{ID: id, PhoneNumberID: phoneID, To: normalize(m.To), Recipient: recipientOf(&m), UserID: u.UserID,
		Message: m, Body: body, At: now, Category: category, AsyncError: asyncErr})
	a.MessageID = id
	a.HTTPStatus = http.StatusOK
	contact := map[string]string{"input": m.To, "wa_id": normalize(m.To)}
	if m.To == "" {
		contact = map[string]string{"input": m.Recipient, "user_id": u.UserID}
	}
	ok, _ := json.Marshal(map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{contact},
		"messages":          []map[string]string{{"id": id, "message_status": f.opts.MessageStatus}},
	})
	return response{status: http.StatusOK, body: ok}
}

func recipientOf(m *whatsapp.Message) string {
	if m.To != "" {
		return ""
	}
	return m.Recipient
}

func (f *Fake) drawFault() Fault {
	if len(f.queue) > 0 {
		fl := f.queue[0]
		f.queue = f.queue[1:]
		if fl.Kind == FaultError && fl.Code == 0 {
			fl.Code = 1
		}
		return fl
	}
	fs := f.opts.Faults
	if fs.HTTP500+fs.RateLimit+fs.PairRate+fs.Drop+fs.DropAfterAccept+fs.Slow <= 0 {
		return Fault{}
	}
	x := f.rng.Float64()
	for _, c := range []struct {
		p float64
		k FaultKind
	}{{fs.HTTP500, FaultHTTP500}, {fs.RateLimit, FaultRateLimit}, {fs.PairRate, FaultPairRate}, {fs.Drop, FaultDrop}, {fs.DropAfterAccept, FaultDropAfterAccept}, {fs.Slow, FaultSlow}} {
		if x < c.p {
			return Fault{Kind: c.k}
		}
		x -= c.p
	}
	return Fault{}
}

func (f *Fake) newWAMID(to string) string {
	f.idSeq++
	var nonce [9]byte
	rand.Read(nonce[:])
	raw := fmt.Sprintf("%s\x15\x02\x00\x11\x18%d%x", to, f.idSeq, nonce)
	return "wamid." + base64.StdEncoding.EncodeToString([]byte(raw))
}

// drop closes the connection without any response, after the body was read.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("whatsapptest: response writer cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// checkShape mirrors the Graph API's synchronous payload checks: 100 for
// malformed top-level parameters, 131008 for a missing required parameter,
// 131009 for an invalid value.
func checkShape(m *whatsapp.Message) (int, string) {
	if m.MessagingProduct != "whatsapp" {
		return 100, "The parameter messaging_product is required and must be whatsapp."
	}
	if m.RecipientType != "" && m.RecipientType != "individual" {
		return 100, "Invalid parameter recipient_type."
	}
	if normalize(m.To) == "" && m.To != "" {
		return 100, "Invalid parameter to."
	}
	if m.To == "" {
		if m.Recipient == "" {
			return 100, "The parameter to is required."
		}
		if !whatsapp.IsBSUID(m.Recipient) {
			return 100, "Invalid parameter recipient."
		}
	}
	if len(m.BizOpaqueCallbackData) > 512 {
		return 100, "Param biz_opaque_callback_data must be at most 512 characters long."
	}
	n := 0
	for _, set := range []bool{m.Text != nil, m.Interactive != nil, m.Image != nil, m.Video != nil, m.Document != nil, m.Template != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return 131009, "Only the object for the message type may be set."
	}
	runes := utf8.RuneCountInString
	switch m.Type {
	case "text":
		if m.Text == nil || m.Text.Body == "" {
			return 131008, "The parameter text['body'] is required."
		}
		if runes(m.Text.Body) > 4096 {
			return 100, "Param text['body'] must be at most 4096 characters long."
		}
	case "image", "video", "document":
		md := map[string]*whatsapp.Media{"image": m.Image, "video": m.Video, "document": m.Document}[m.Type]
		if md == nil || (md.ID == "" && md.Link == "") {
			return 131008, fmt.Sprintf("The parameter %s['link'] or %s['id'] is required.", m.Type, m.Type)
		}
	case "interactive":
		in := m.Interactive
		if in == nil {
			return 131008, "The parameter interactive is required."
		}
		if in.Body == nil || in.Body.Text == "" {
			return 131008, "The parameter interactive['body']['text'] is required."
		}
		if runes(in.Body.Text) > 1024 {
			return 131009, "Body text must be at most 1024 characters."
		}
		if in.Footer != nil && runes(in.Footer.Text) > 60 {
			return 131009, "Footer text must be at most 60 characters."
		}
		switch in.Type {
		case "button":
			bs := in.Action.Buttons
			if len(bs) == 0 || len(bs) > 3 {
				return 131009, "Buttons count must be between 1 and 3."
			}
			seen := map[string]bool{}
			for _, b := range bs {
				if b.Type != "reply" || b.Reply.ID == "" || b.Reply.Title == "" || runes(b.Reply.Title) > 20 {
					return 131009, fmt.Sprintf("Invalid reply button %+v: title must be 1 to 20 characters.", b)
				}
				if seen[b.Reply.ID] || seen["\x00"+b.Reply.Title] {
					return 131009, "Button ids and titles must be unique."
				}
				seen[b.Reply.ID], seen["\x00"+b.Reply.Title] = true, true
			}
		case "cta_url":
			if code, details := checkCTAURL(in); code != 0 {
				return code, details
			}
		case "flow":
			if code, details := checkFlow(in); code != 0 {
				return code, details
			}
		case "location_request_message":
			if code, details := checkLocationRequest(in); code != 0 {
				return code, details
			}
		case "list":
			if in.Action.Button == "" || runes(in.Action.Button) > 20 {
				return 131009, "List button text must be 1 to 20 characters."
			}
			rows := 0
			for _, s := range in.Action.Sections {
				rows += len(s.Rows)
				for _, row := range s.Rows {
					if row.ID == "" || row.Title == "" || runes(row.Title) > 24 || runes(row.Description) > 72 {
						return 131009, fmt.Sprintf("Invalid list row %+v.", row)
					}
				}
			}
			if len(in.Action.Sections) == 0 || len(in.Action.Sections) > 10 || rows == 0 || rows > 10 {
				return 131009, "Lists take 1 to 10 sections and 1 to 10 rows in total."
			}
		default:
			return 131009, fmt.Sprintf("Unsupported interactive type %q.", in.Type)
		}
	case "template":
		t := m.Template
		if t == nil || t.Name == "" {
			return 131008, "The parameter template['name'] is required."
		}
		if t.Language.Code == "" {
			return 131008, "The parameter template['language']['code'] is required."
		}
	case "":
		return 131008, "The parameter type is required."
	default:
		return 131009, fmt.Sprintf("Unsupported message type %q.", m.Type)
	}
	return 0, ""
}

func checkTemplate(t Template, known bool, mt *whatsapp.Template) (int, string) {
	if !known {
		return 132001, fmt.Sprintf("template name (%s) does not exist in %s", mt.Name, mt.Language.Code)
	}
	switch strings.ToUpper(t.Status) {
	case "APPROVED":
	case "PAUSED":
		return 132015, "Template is paused due to low quality."
	case "DISABLED":
		return 132016, "Template has been disabled."
	default:
		return 132001, fmt.Sprintf("template name (%s) is %s in %s, not approved", mt.Name, t.Status, mt.Language.Code)
	}
	var body, header []whatsapp.Parameter
	headers := 0
	for _, c := range mt.Components {
		switch strings.ToLower(c.Type) {
		case "body":
			body = append(body, c.Parameters...)
		case "header":
			header = append(header, c.Parameters...)
			headers++
		}
	}
	if len(t.NamedParams) > 0 {
		want := map[string]bool{}
		for _, n := range t.NamedParams {
			want[n] = true
		}
		got := map[string]bool{}
		for _, p := range body {
			if !want[p.ParameterName] || got[p.ParameterName] {
				return 132000, fmt.Sprintf("body parameter_name %q does not match the template's %v", p.ParameterName, t.NamedParams)
			}
			got[p.ParameterName] = true
		}
		if len(got) != len(want) {
			return 132000, fmt.Sprintf("number of localizable_params (%d) does not match the expected number of params (%d)", len(got), len(want))
		}
	} else if len(body) != t.Params {
		return 132000, fmt.Sprintf("number of localizable_params (%d) does not match the expected number of params (%d)", len(body), t.Params)
	}
	for _, p := range body {
		if p.Type == "text" && p.Text == "" {
			return 132012, "Parameter format does not match format in the created template: empty text parameter"
		}
	}
	switch h := strings.ToUpper(t.Header); h {
	case "IMAGE", "VIDEO", "DOCUMENT":
		if len(header) != 1 || !strings.EqualFold(header[0].Type, h) {
			return 132012, fmt.Sprintf("Parameter format does not match format in the created template: header needs one %s parameter", strings.ToLower(h))
		}
	case "TEXT":
		if len(header) > 1 {
			return 132000, "header takes at most one parameter"
		}
	default:
		if headers > 0 && len(header) > 0 {
			return 132000, "the template has no header parameters"
		}
	}
	return 0, ""
}

func (f *Fake) serveTemplates(w http.ResponseWriter, r *http.Request, version, wabaID string) {
	f.mu.Lock()
	code, msg := f.authError(r, version)
	data := f.opts.TemplateJSON
	if data == nil {
		data = make([]json.RawMessage, len(f.templateList))
		for i, t := range f.templateList {
			data[i] = templateJSON(t)
		}
	}
	pageSize := f.opts.TemplatePageSize
	f.mu.Unlock()
	if code != 0 {
		writeError(w, 0, code, msg)
		return
	}
	if wabaID != f.opts.WABAID {
		writeError(w, 0, 100, fmt.Sprintf("Unsupported get request. Object with ID '%s' does not exist", wabaID))
		return
	}
	q := r.URL.Query()
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeError(w, 0, 100, "Invalid parameter limit")
			return
		}
		pageSize = n
	}
	start := 0
	if after := q.Get("after"); after != "" {
		b, err := base64.RawURLEncoding.DecodeString(after)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(data) {
			writeError(w, 0, 100, "Invalid parameter after")
			return
		}
		start = n
	}
	end := min(len(data), start+pageSize)
	cursor := func(n int) string { return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(n))) }
	paging := map[string]any{"cursors": map[string]string{"before": cursor(start), "after": cursor(end)}}
	if end < len(data) {
		next := *r.URL
		nq := next.Query()
		nq.Set("limit", strconv.Itoa(pageSize))
		nq.Set("after", cursor(end))
		paging["next"] = f.srv.URL + next.Path + "?" + nq.Encode()
	}
	page := data[start:end]
	if page == nil {
		page = []json.RawMessage{}
	}
	out, _ := json.Marshal(map[string]any{"data": page, "paging": paging})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// templateJSON renders a Template as Meta's message_templates object.
func templateJSON(t Template) json.RawMessage {
	format := "POSITIONAL"
	body := t.Body
	var example []string
	if len(t.NamedParams) > 0 {
		format = "NAMED"
	}
	if body == "" {
		body = "Hello"
		if len(t.NamedParams) > 0 {
			for _, n := range t.NamedParams {
				body += " {{" + n + "}}"
			}
		} else {
			for i := 1; i <= t.Params; i++ {
				body += " {{" + strconv.Itoa(i) + "}}"
			}
		}
		body += "!"
	}
	for i := 0; i < max(t.Params, len(t.NamedParams)); i++ {
		example = append(example, "example"+strconv.Itoa(i+1))
	}
	var comps []map[string]any
	if h := strings.ToUpper(t.Header); h != "" {
		c := map[string]any{"type": "HEADER", "format": h}
		if h == "TEXT" {
			c["text"] = t.Name
		}
		comps = append(comps, c)
	}
	bc := map[string]any{"type": "BODY", "text": body}
	if len(example) > 0 {
		if len(t.NamedParams) > 0 {
			var named []map[string]string
			for i, n := range t.NamedParams {
				named = append(named, map[string]string{"param_name": n, "example": example[i]})
			}
			bc["example"] = map[string]any{"body_text_named_params": named}
		} else {
			bc["example"] = map[string]any{"body_text": [][]string{example}}
		}
	}
	comps = append(comps, bc)
	if len(t.Buttons) > 0 {
		var bs []map[string]string
		for _, b := range t.Buttons {
			bs = append(bs, map[string]string{"type": "QUICK_REPLY", "text": b})
		}
		comps = append(comps, map[string]any{"type": "BUTTONS", "buttons": bs})
	}
	obj := map[string]any{
		"name": t.Name, "language": t.Language, "status": t.Status, "category": strings.ToUpper(t.Category),
		"parameter_format": format, "components": comps, "id": strconv.FormatUint(templateID(t.Name, t.Language), 10),
	}
	if t.Quality != "" {
		obj["quality_score"] = map[string]any{"score": strings.ToUpper(t.Quality)}
	}
	b, _ := json.Marshal(obj)
	return b
}

// templateID is a stable numeric id for a template, the same in the listing
// and in the lifecycle webhooks.
func templateID(name, language string) uint64 {
	sum := sha256.Sum256([]byte(name + "\x00" + language))
	return uint64(sum[0])<<40 | uint64(sum[1])<<32 | uint64(sum[2])<<24 | uint64(sum[3])<<16 | uint64(sum[4])<<8 | uint64(sum[5])
}

// ---- errors ----

var titles = map[int]string{
	1:      "An unknown error occurred",
	2:      "Service temporarily unavailable",
	4:      "Application request limit reached",
	10:     "Permission denied",
	100:    "Invalid parameter",
	190:    "Invalid OAuth access token",
	200:    "Permission denied",
	368:    "Temporarily blocked for policies violations",
	80007:  "Rate limit issues",
	130429: "Rate limit hit",
	130472: "User's number is part of an experiment",
	131000: "Something went wrong",
	131008: "Required parameter is missing",
	131009: "Parameter value is not valid",
	131016: "Service unavailable",
	131026: "Message Undeliverable",
	131031: "Account has been locked",
	131047: "Re-engagement message",
	131048: "Spam rate limit hit",
	131049: "This message was not delivered to maintain healthy ecosystem engagement.",
	131050: "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
	131051: "Message type unknown",
	131053: "Media upload error",
	131056: "(Business Account, Consumer Account) pair rate limit hit",
	131057: "Account in maintenance mode",
	132000: "Number of parameters does not match the expected number of params",
	132001: "Template name does not exist in the translation",
	132005: "Translated text too long",
	132007: "Template Format Character Policy Violated",
	132012: "Parameter format does not match format in the created template",
	132015: "Template is Paused",
	132016: "Template is Disabled",
}

// Title is the short title Meta gives an error code.
func Title(code int) string {
	if t, ok := titles[code]; ok {
		return t
	}
	return "Error " + strconv.Itoa(code)
}

// HTTPStatusFor is the HTTP status Meta usually answers an error code with.
func HTTPStatusFor(code int) int {
	switch code {
	case 190:
		return http.StatusUnauthorized
	case 10, 200:
		return http.StatusForbidden
	case 132001:
		return http.StatusNotFound
	case 131000:
		return http.StatusInternalServerError
	case 2, 131016:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func errorBody(code int, details string) []byte {
	var trace [8]byte
	rand.Read(trace[:])
	if details == "" {
		details = Title(code)
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message":    fmt.Sprintf("(#%d) %s", code, Title(code)),
		"type":       "OAuthException",
		"code":       code,
		"error_data": map[string]string{"messaging_product": "whatsapp", "details": details},
		"fbtrace_id": base64.RawURLEncoding.EncodeToString(trace[:]),
	}})
	return b
}

func writeError(w http.ResponseWriter, status, code int, details string) {
	if status == 0 {
		status = HTTPStatusFor(code)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errorBody(code, details))
}

// ---- webhooks ----

// StatusWebhook builds a signed status webhook for an accepted message:
// status is sent, delivered, read or failed; errorCode (failed only) defaults
// to the message's AsyncError, else 131026. It returns the body and the
// X-Hub-Signature-256 header value. The status carries the message's
// biz_opaque_callback_data, and conversation and pricing as Meta sends them
// (on sent and delivered).
func (f *Fake) StatusWebhook(messageID, status string, errorCode int) (body []byte, signature string, err error) {
	f.mu.Lock()
	i, ok := f.byID[messageID]
	var s Sent
	if ok {
		s = f.sent[i]
	}
	now := f.now()
	f.mu.Unlock()
	if !ok {
		return nil, "", fmt.Errorf("whatsapptest: no accepted message %q", messageID)
	}
	f.mu.Lock()
	u := *f.userLocked(s.UserID)
	f.mu.Unlock()
	// As Meta: the phone number only when the user lets the business see it
	// (or it was sent to the number), the BSUID always except on a failed
	// message sent to a number, contacts[] except on failed statuses, the
	// username on delivered and read.
	st := whatsapp.Status{
		ID: s.ID, Status: status, Timestamp: unix(now),
		RecipientUserID: u.UserID, RecipientParentUserID: u.ParentUserID,
		BizOpaqueCallbackData: s.Message.BizOpaqueCallbackData,
	}
	if s.To != "" || !u.HidePhone {
		st.RecipientID = u.Phone
	}
	if status == whatsapp.StatusFailed && s.To != "" {
		st.RecipientUserID = ""
	}
	var contacts []whatsapp.Contact
	if status != whatsapp.StatusFailed {
		c := whatsapp.Contact{WaID: st.RecipientID, UserID: u.UserID, ParentUserID: u.ParentUserID}
		if status != whatsapp.StatusSent {
			c.Profile.Username = u.Username
		}
		contacts = []whatsapp.Contact{c}
	}
	switch status {
	case whatsapp.StatusSent, whatsapp.StatusDelivered:
		cat, typ, billable := "service", "free_customer_service", false
		if s.Category != "" {
			cat, typ, billable = strings.ToLower(s.Category), "regular", true
		}
		sum := sha256.Sum256([]byte(s.PhoneNumberID + "/" + s.UserID + "/" + cat))
		st.Conversation = &whatsapp.Conversation{ID: hex.EncodeToString(sum[:16]), Origin: &whatsapp.ConversationOrigin{Type: cat}}
		if status == whatsapp.StatusSent {
			st.Conversation.ExpirationTimestamp = unix(s.At.Add(24 * time.Hour))
		}
		st.Pricing = &whatsapp.Pricing{Billable: billable, PricingModel: "PMP", Type: typ, Category: cat}
	case whatsapp.StatusRead:
	case whatsapp.StatusFailed:
		if errorCode == 0 {
			errorCode = s.AsyncError
		}
		if errorCode == 0 {
			errorCode = 131026
		}
		st.Errors = []whatsapp.WebhookError{{Code: errorCode, Title: Title(errorCode), Message: Title(errorCode),
			ErrorData: whatsapp.ErrorData{Details: Title(errorCode)}}}
	default:
		return nil, "", fmt.Errorf("whatsapptest: unknown status %q", status)
	}
	return f.sign(whatsapp.Value{
		MessagingProduct: "whatsapp",
		Metadata:         whatsapp.Metadata{DisplayPhoneNumber: f.opts.DisplayPhoneNumber, PhoneNumberID: s.PhoneNumberID},
		Contacts:         contacts,
		Statuses:         []whatsapp.Status{st},
	})
}

// InboundWebhook builds a signed webhook carrying msgs from one user (all
// msgs should share From) with the given profile name, to phoneNumberID
// (default DefaultPhoneNumberID or the first configured id). Empty ids and
// timestamps are filled in (fresh wamid, the clock's now), and the fake
// records each message as the user's last inbound time, as Meta would.
//
// From may be the user's phone number or BSUID. The webhook carries the
// user's ids as Meta does: from_user_id and contacts[].user_id always, from
// and contacts[].wa_id only when the user does not hide the number, the
// parent BSUID and username when the user has them.
func (f *Fake) InboundWebhook(phoneNumberID, profileName string, msgs ...whatsapp.InboundMessage) (body []byte, signature string, err error) {
	if len(msgs) == 0 {
		return nil, "", fmt.Errorf("whatsapptest: no messages")
	}
	f.mu.Lock()
	if phoneNumberID == "" {
		phoneNumberID = DefaultPhoneNumberID
		if len(f.opts.PhoneNumberIDs) > 0 {
			phoneNumberID = f.opts.PhoneNumberIDs[0]
		}
	}
	now := f.now()
	out := make([]whatsapp.InboundMessage, len(msgs))
	var contact *whatsapp.Contact
	for i, m := range msgs {
		m.Raw, m.DecodeErr = nil, nil
		if m.From != "" || m.FromUserID != "" {
			id := m.From
			if id == "" {
				id = m.FromUserID
			}
			u := f.userLocked(id)
			m.From, m.FromUserID, m.FromParentUserID = "", u.UserID, u.ParentUserID
			if !u.HidePhone {
				m.From = u.Phone
			}
			if contact == nil {
				contact = &whatsapp.Contact{Profile: whatsapp.Profile{Name: profileName, Username: u.Username},
					WaID: m.From, UserID: u.UserID, ParentUserID: u.ParentUserID}
			}
		}
		if m.ID == "" {
			m.ID = f.newWAMID(m.FromUserID)
		}
		if m.Timestamp == "" {
			m.Timestamp = unix(now)
		}
		if t, err := m.Timestamp.Time(); err == nil && m.FromUserID != "" {
			f.inboundLocked(m.FromUserID, t)
		}
		out[i] = m
	}
	f.mu.Unlock()
	v := whatsapp.Value{
		MessagingProduct: "whatsapp",
		Metadata:         whatsapp.Metadata{DisplayPhoneNumber: f.opts.DisplayPhoneNumber, PhoneNumberID: phoneNumberID},
		Messages:         out,
	}
	if contact != nil && out[0].Type != whatsapp.InSystem { // system messages carry no contacts
		v.Contacts = []whatsapp.Contact{*contact}
	}
	return f.sign(v)
}

// TextWebhook is InboundWebhook for one text message sent now.
func (f *Fake) TextWebhook(from, profileName, text string) (body []byte, signature string, err error) {
	return f.InboundWebhook("", profileName, whatsapp.InboundMessage{From: from, Type: whatsapp.InText, Text: &whatsapp.InboundText{Body: text}})
}

// UserIDUpdateWebhook builds a signed user_id_update webhook: the user's
// BSUID changed from previous to current.
func (f *Fake) UserIDUpdateWebhook(previous, current string) (body []byte, signature string, err error) {
	f.mu.Lock()
	u := *f.userLocked(current)
	now := f.now()
	f.mu.Unlock()
	up := whatsapp.UserIDUpdate{PreviousUserID: previous, UserID: current, ParentUserID: u.ParentUserID, Timestamp: unix(now)}
	if !u.HidePhone {
		up.WaID = u.Phone
	}
	return f.signField("user_id_update", whatsapp.Value{
		MessagingProduct: "whatsapp",
		Metadata:         whatsapp.Metadata{DisplayPhoneNumber: f.opts.DisplayPhoneNumber, PhoneNumberID: DefaultPhoneNumberID},
		UserIDUpdates:    []whatsapp.UserIDUpdate{up},
	})
}

func (f *Fake) sign(v whatsapp.Value) ([]byte, string, error) { return f.signField("messages", v) }

func (f *Fake) signField(field string, v whatsapp.Value) ([]byte, string, error) {
	env := whatsapp.Envelope{Object: whatsapp.ObjectWhatsApp, Entry: []whatsapp.Entry{{ID: f.opts.WABAID, Changes: []whatsapp.Change{{Field: field, Value: v}}}}}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, "", err
	}
	return b, whatsapp.Sign(f.opts.AppSecret, b), nil
}

// PostWebhook delivers a webhook body to url with its signature, as Meta
// does, and returns the response status.
func (f *Fake) PostWebhook(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(f.opts.AppSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func unix(t time.Time) whatsapp.Timestamp { return whatsapp.Timestamp(strconv.FormatInt(t.Unix(), 10)) }

// ---- template lifecycle and account webhooks ----

// SetTemplateStatus changes a known template's status (PAUSED, DISABLED,
// APPROVED, …) as Meta would: sends of it are refused from now on (132015,
// 132016, 132001) or accepted again. It reports whether the template is known.
func (f *Fake) SetTemplateStatus(name, language, status string) bool {
	return f.updateTemplate(name, language, func(t *Template) { t.Status = strings.ToUpper(status) })
}

// SetTemplateCategory changes a known template's category.
func (f *Fake) SetTemplateCategory(name, language, category string) bool {
	return f.updateTemplate(name, language, func(t *Template) { t.Category = strings.ToUpper(category) })
}

func (f *Fake) updateTemplate(name, language string, change func(*Template)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := name + "\x00" + language
	t, ok := f.templates[k]
	if !ok {
		return false
	}
	change(&t)
	f.templates[k] = t
	for i := range f.templateList {
		if f.templateList[i].Name == name && f.templateList[i].Language == language {
			f.templateList[i] = t
		}
	}
	return true
}

// TemplateStatusWebhook sets a template's status (SetTemplateStatus; event
// is the status, or FLAGGED and the like, which leave it) and builds the
// signed message_template_status_update webhook Meta sends for it, in the
// shape of Meta's webhook reference.
func (f *Fake) TemplateStatusWebhook(name, language, event, reason string) (body []byte, signature string, err error) {
	event = strings.ToUpper(event)
	switch event {
	case "FLAGGED", "LOCKED", "UNLOCKED":
	case "REINSTATED", "UNARCHIVED":
		f.SetTemplateStatus(name, language, "APPROVED")
	default:
		f.SetTemplateStatus(name, language, event)
	}
	v := map[string]any{"event": event, "message_template_id": templateID(name, language),
		"message_template_name": name, "message_template_language": language, "reason": reason}
	f.mu.Lock()
	if t, ok := f.templates[name+"\x00"+language]; ok && t.Category != "" {
		v["message_template_category"] = strings.ToUpper(t.Category)
	}
	if event == "DISABLED" {
		v["disable_info"] = map[string]any{"disable_date": strconv.FormatInt(f.now().Unix(), 10)}
	}
	f.mu.Unlock()
	return f.signAccount(whatsapp.FieldTemplateStatus, v)
}

// TemplateCategoryWebhook changes a template's category and builds the signed
// template_category_update webhook of a completed change.
func (f *Fake) TemplateCategoryWebhook(name, language, previous, category string) (body []byte, signature string, err error) {
	f.SetTemplateCategory(name, language, category)
	return f.signAccount(whatsapp.FieldTemplateCategory, map[string]any{"message_template_id": templateID(name, language),
		"message_template_name": name, "message_template_language": language,
		"previous_category": strings.ToUpper(previous), "new_category": strings.ToUpper(category)})
}

// TemplateQualityWebhook builds a signed message_template_quality_update.
func (f *Fake) TemplateQualityWebhook(name, language, previous, score string) (body []byte, signature string, err error) {
	return f.signAccount(whatsapp.FieldTemplateQuality, map[string]any{"previous_quality_score": previous,
		"new_quality_score": score, "message_template_id": templateID(name, language),
		"message_template_name": name, "message_template_language": language})
}

// PhoneQualityWebhook builds a signed phone_number_quality_update for the
// fake's display number: event (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, …),
// the tiers (oldLimit only on a limit change) and the portfolio's daily limit.
func (f *Fake) PhoneQualityWebhook(event, currentLimit, oldLimit, maxDaily string) (body []byte, signature string, err error) {
	v := map[string]any{"display_phone_number": f.opts.DisplayPhoneNumber, "event": event, "current_limit": currentLimit}
	if oldLimit != "" {
		v["old_limit"] = oldLimit
	}
	if maxDaily != "" {
		v["max_daily_conversations_per_business"] = maxDaily
	}
	return f.signAccount(whatsapp.FieldPhoneQuality, v)
}

// signAccount signs an account-level change: the entry carries `time`, the
// value no metadata.
func (f *Fake) signAccount(field string, value any) ([]byte, string, error) {
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	env := map[string]any{"object": whatsapp.ObjectWhatsApp, "entry": []any{map[string]any{
		"id": f.opts.WABAID, "time": now.Unix(), "changes": []any{map[string]any{"field": field, "value": value}}}}}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, "", err
	}
	return b, whatsapp.Sign(f.opts.AppSecret, b), nil
}

package store

import (
	"encoding/json"
	"time"
)

// Contact is a WhatsApp user the business talks to.
//
// WaID is the contact's key: it never changes and is what runs, timers, the
// outbox and the inbox refer to. It is the phone number for contacts first known
// by their number, else the first BSUID seen (the two never collide: a BSUID has
// a dot). The person's WhatsApp ids are Phone, UserID and ParentUserID, each
// empty while unknown; every id ever seen for the contact resolves to it (see
// Tx.ContactIDs).
type Contact struct {
	WaID          string
	Phone         string // the phone number (wa_id) when known
	UserID        string // the business-scoped user ID (BSUID), current
	ParentUserID  string // the parent BSUID, when the business has one
	Username      string // the WhatsApp username: shown, never matched on
	Name          string
	Timezone      string
	Attributes    map[string]any
	Tags          []string
	PhoneNumberID string
	// LastInboundAt is the own timestamp of the contact's latest message (zero when
	// the contact never wrote): the 24-hour window runs from it.
	LastInboundAt time.Time
	Consent       string // "" unknown, ConsentIn, ConsentOut
	ConsentAt     time.Time
	ConsentSource string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Consent states.
const (
	ConsentIn  = "in"
	ConsentOut = "out"
)

// Address is where a message to the contact goes: the phone number when known
// (Meta's recommendation), else the BSUID, else the parent BSUID. Contacts
// stored without ids (older code, seeded tests) are addressed by their key.
func (c *Contact) Address() string {
	switch {
	case c.Phone != "":
		return c.Phone
	case c.UserID != "":
		return c.UserID
	case c.ParentUserID != "":
		return c.ParentUserID
	}
	return c.WaID
}

// HasTag reports whether the contact carries a tag.
func (c *Contact) HasTag(t string) bool {
	for _, x := range c.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// ProjectVersion is a set of flow versions loaded together (flow id -> flow
// version id), identified by its hash.
type ProjectVersion struct {
	ID        int64
	Hash      string
	Flows     map[string]int64
	CreatedAt time.Time
}

// FlowVersion is the exact source a run was started with, and the template
// catalog entries it was resolved against: together they describe what the
// run sends, whatever the project and the catalog are later.
type FlowVersion struct {
	ID        int64
	FlowID    string
	Hash      string
	File      string
	Source    []byte
	Templates []byte // JSON list of dsl templates; nil for versions stored before templates were
	CreatedAt time.Time
}

// Run statuses.
const (
	RunActive       = "active"
	RunWaiting      = "waiting"
	RunWaitingReply = "waiting_reply"
	RunCompleted    = "completed"
	RunExpired      = "expired"
	RunCancelled    = "cancelled"
	RunFailed       = "failed"
)

// RunStatuses lists every run status (for filters and shell completion).
var RunStatuses = []string{RunActive, RunWaiting, RunWaitingReply, RunCompleted, RunExpired, RunCancelled, RunFailed}

// Run is one contact's way through one flow version.
type Run struct {
	ID        int64
	Contact   string
	FlowID    string
	VersionID int64
	Step      string
	Status    string
	Vars      map[string]any
	Entry     json.RawMessage
	Reply     json.RawMessage
	Event     json.RawMessage
	WaitSeq   int64
	StepSeq   int64
	StartedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time // zero while live
	EndReason string
	// ProjectVersionID is the set of flow versions the run started under (0
	// for runs started before sets were recorded): its start_flow starts the
	// target's version from that set.
	ProjectVersionID int64
	// SourceID and Headline are the click-to-WhatsApp ad the run entered from
	// (its entry referral; empty otherwise), set at start and never changed.
	SourceID string
	Headline string
}

// Live reports whether the run has not ended.
func (r *Run) Live() bool { return r.EndedAt.IsZero() }

// Timer kinds.
const (
	TimerWait         = "wait"
	TimerReplyTimeout = "reply_timeout"
)

// Timer wakes a run at DueAt; it is stale unless Seq equals the run's WaitSeq.
type Timer struct {
	ID    int64
	DueAt time.Time
	RunID int64
	Kind  string
	Seq   int64
	// Contact is the run's contact, filled by DueTimers ("" when the run is gone);
	// InsertTimers ignores it.
	Contact string
}

// Inbox kinds.
const (
	InboxMessage = "message"
	InboxStatus  = "status"
	InboxEvent   = "event"
	// InboxIdentity is a user_id_update webhook: a contact's BSUID changed.
	InboxIdentity = "identity"
	// InboxAccount is a template or phone number update (no contact).
	InboxAccount = "account"
)

// InboxItem is one stored inbound event, unique on Key.
type InboxItem struct {
	ID          int64
	Key         string
	Kind        string
	Contact     string
	Payload     []byte
	ReceivedAt  time.Time
	ProcessedAt time.Time
	Result      string
}

// Outbox statuses. Pending and sending are open; the rest are final, except that
// sent moves on to delivered and read (or failed) as statuses arrive.
const (
	OutPending      = "pending"
	OutClaimed      = "claimed" // taken by the sender, not handed to the API yet
	OutSending      = "sending" // its API call may have started
	OutSent         = "sent"
	OutDelivered    = "delivered"
	OutRead         = "read"
	OutFailed       = "failed"
	OutWindowClosed = "window_closed"
	OutOptedOut     = "opted_out"
	OutNoConsent    = "no_consent"
	OutUnknown      = "unknown"
	OutCancelled    = "cancelled"
	// OutHeld: its template is paused or disabled; it waits (not failed) and
	// goes back to pending when the template is APPROVED again.
	OutHeld = "held"
)

// OutboxStatuses lists every outbox status (for filters and shell completion).
var OutboxStatuses = []string{OutPending, OutClaimed, OutSending, OutSent, OutDelivered, OutRead, OutFailed,
	OutWindowClosed, OutOptedOut, OutNoConsent, OutUnknown, OutCancelled, OutHeld}

// Outbox kinds.
const (
	KindFreeForm = "freeform"
	KindTemplate = "template"
)

// OutboxItem is one message a run step produced, sent at most once.
type OutboxItem struct {
	ID               int64
	Key              string
	RunID            int64
	FlowID           string
	Step             string
	Contact          string
	PhoneNumberID    string
	Kind             string
	Category         string
	AssumeOptIn      bool
	Payload          []byte // the Graph API message JSON
	Fallback         []byte // a template message JSON, or nil
	FallbackCategory string
	Status           string
	SentAs           string // "message" or "fallback"
	Attempts         int
	Resends          int // times sent once more after an unknown outcome
	// LimitRetries is how many times it was sent once more after Meta
	// refused it with 131049 (per-user marketing limit).
	LimitRetries int
	// Template is the template the message sends ("name:language"), for a
	// free-form message its fallback's; "" when none.
	Template      string
	NextAttemptAt time.Time
	ErrorCode     int
	LastError     string
	ProviderID    string
	CreatedAt     time.Time
	SentAt        time.Time
	UpdatedAt     time.Time
}

// TemplateState is what Meta last said about one template in one language
// (webhooks, and 132015/132016 at send time). Each attribute carries when it
// changed; zero times and empty values are unknown.
type TemplateState struct {
	Name       string
	Language   string
	TemplateID string
	Status     string // APPROVED, PAUSED, DISABLED, REJECTED, …
	Reason     string
	Event      string // the last status event, FLAGGED and the like included
	StatusAt   time.Time
	Category   string
	CategoryAt time.Time
	Quality    string // GREEN, YELLOW, RED, UNKNOWN
	QualityAt  time.Time
	UpdatedAt  time.Time
}

// Key is "name:language", as OutboxItem.Template names it.
func (s *TemplateState) Key() string { return s.Name + ":" + s.Language }

// Blocked reports whether Meta refuses to send the template now (paused or
// disabled, or any status that is not a sendable one).
func (s *TemplateState) Blocked() bool { return s != nil && TemplateStatusBlocks(s.Status) }

// TemplateStatusBlocks reports whether a template in that status cannot be
// sent: only APPROVED ones can ("" is unknown: the catalog vouched for it).
func TemplateStatusBlocks(status string) bool {
	switch status {
	case "", "APPROVED":
		return false
	}
	return true
}

// PhoneQuality is the last phone_number_quality_update of a business number.
type PhoneQuality struct {
	DisplayPhoneNumber string
	Event              string // FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, …
	CurrentLimit       string // TIER_1K, …
	OldLimit           string
	MaxDaily           string // the portfolio's limit, "-1" unlimited
	At                 time.Time
}

// MarketingLimited counts one contact's messages of one flow that Meta
// refused with 131049 (its per-user marketing limit).
type MarketingLimited struct {
	FlowID  string
	Contact string
	Refused int // messages refused with 131049
	Retried int // of those, sent once more (marketing_retry_after)
	Sent    int // of those retried, accepted the second time
}

// StatusRecord is one delivery status webhook, unique on (ProviderID, Status).
type StatusRecord struct {
	OutboxID   int64 // 0 when the message is unknown
	ProviderID string
	Status     string
	At         time.Time
	ErrorCode  int
	Payload    []byte
}

// Schedule is the state of a schedule trigger: the next fire time, and while a fire
// is in progress, how far through the audience it got.
type Schedule struct {
	FlowID   string
	Spec     string
	NextAt   time.Time
	FiringAt time.Time
	Cursor   string
}

// Stats are exact counts (a scan of each table: tests and offline tools).
type Stats struct {
	InboxPending   int64
	OutboxPending  int64
	OutboxSending  int64
	Timers         int64
	OldestTimerDue time.Time
	LiveRuns       int64
	Contacts       int64
}

// Depths are queue depths counted up to a limit: a count equal to the limit
// means "that many or more". Zero is always exact.
type Depths struct {
	Limit          int64
	InboxPending   int64     // inbound events stored, not processed
	OutboxPending  int64     // messages waiting to be sent
	OutboxSending  int64     // messages claimed or in their API call (exact while fewer than Limit messages are open)
	OutboxHeld     int64     // messages held: their template is paused or disabled
	OutboxWaiting  int64     // messages waiting for the messaging limit's allowance
	Timers         int64     // timers not fired
	TimersDue      int64     // of those, due by now
	LiveRuns       int64     // runs not ended
	OldestTimerDue time.Time // zero when no timer is pending
}

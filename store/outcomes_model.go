package store

import (
	"context"
	"time"
)

// OutcomeTx is the write side of outcomes: clicks, split variants,
// conversions and the Conversions API outbox (part of Tx).
type OutcomeTx interface {
	// SaveClicks records each contact's latest click-to-WhatsApp click; an
	// older click than the one stored is ignored.
	SaveClicks(cs []*Click) error
	// Clicks returns the stored latest click of contacts (absent: none).
	Clicks(contacts []string) (map[string]*Click, error)
	// InsertRunVariants records the variants splits assigned, once per run and
	// step (a variant already recorded is kept).
	InsertRunVariants(vs []*RunVariant) error
	// RunVariants returns the variants recorded for runs: run id → step → variant.
	RunVariants(runIDs []int64) (map[int64]map[string]string, error)
	// InsertConversions records conversions, once per run and step. It returns
	// those that were new, with their ids set; the others were recorded before
	// (a loop re-entered the step, or a batch was replayed) and are left alone.
	InsertConversions(cs []*Conversion) ([]*Conversion, error)
	// InsertCAPIEvents adds events to the Conversions API outbox (one per
	// conversion: a second for the same conversion is ignored). Their ids are set.
	InsertCAPIEvents(es []*CAPIEvent) error
	// ClaimCAPI moves up to limit queued events due at now to sending and
	// returns them, oldest due first.
	ClaimCAPI(now time.Time, limit int) ([]*CAPIEvent, error)
	// ChangeCAPI applies guarded transitions in order; each change's Applied
	// says whether its guard held.
	ChangeCAPI(cs []*CAPIChange) (int, error)
	// RecoverCAPI puts events left sending by a crash back in the queue: Meta
	// deduplicates on the event id, so sending one again cannot count it twice.
	RecoverCAPI(at time.Time) (int, error)
	// NextCAPIAttempt is the earliest next_at of a queued event after `after`.
	NextCAPIAttempt(after time.Time) (time.Time, bool, error)
}

// OutcomeReader is the read side of outcomes (part of Reader).
type OutcomeReader interface {
	// Conversions lists conversions matching f, newest first.
	Conversions(ctx context.Context, f ConversionFilter) ([]*Conversion, error)
	// CAPIEvents lists Conversions API events, newest first ("" = any status).
	CAPIEvents(ctx context.Context, status string, limit int) ([]*CAPIEvent, error)
	// CAPIEventsOf lists the Conversions API events of conversions, by conversion id.
	CAPIEventsOf(ctx context.Context, conversionIDs []int64) (map[int64]*CAPIEvent, error)
	// CAPIDue says whether a queued Conversions API event is due at now.
	CAPIDue(ctx context.Context, now time.Time) (bool, error)
	// OutcomeCounts counts a flow's runs started in [since, until) and what they
	// achieved: conversions by event, runs converted, and each split's variants.
	OutcomeCounts(ctx context.Context, flowID string, since, until time.Time) (*OutcomeCounts, error)
}

// Click is a contact's latest click-to-WhatsApp click: the ad and Meta's click
// id from the referral of the latest inbound message that had one.
type Click struct {
	Contact  string
	SourceID string
	CtwaClid string
	Headline string
	At       time.Time // the message's own timestamp
}

// RunVariant is the variant a split step assigned to a run.
type RunVariant struct {
	RunID   int64
	FlowID  string
	Step    string
	Variant string
	At      time.Time
}

// Conversion is one `convert` step executed by a run (once per run and step).
type Conversion struct {
	ID       int64
	RunID    int64
	Contact  string
	FlowID   string
	Step     string
	Event    string
	Value    *float64 // nil when the step has none
	Currency string
	// The contact's latest click when the conversion happened (empty without one).
	SourceID  string
	CtwaClid  string
	ClickedAt time.Time
	Variants  map[string]string // split step → variant, of the run
	At        time.Time
}

// Conversions API event statuses.
const (
	CAPIQueued  = "queued"
	CAPISending = "sending"
	CAPISent    = "sent"
	CAPIFailed  = "failed"
	CAPIExpired = "expired"
)

// CAPIStatuses lists every Conversions API event status.
var CAPIStatuses = []string{CAPIQueued, CAPISending, CAPISent, CAPIFailed, CAPIExpired}

// CAPIEvent is one conversion in the Conversions API outbox. EventID is fixed
// when the row is created and never changes: Meta deduplicates on it.
type CAPIEvent struct {
	ID           int64
	ConversionID int64
	EventID      string
	DatasetID    string
	Status       string
	Attempts     int
	NextAt       time.Time
	ExpiresAt    time.Time // the end of the click's attribution window: not sent after it
	ErrorCode    int
	Error        string
	Body         []byte // the event object of the request's data list (JSON)
	CreatedAt    time.Time
	SentAt       time.Time
	UpdatedAt    time.Time
}

// CAPIChange is one guarded transition of a Conversions API event: it applies
// only while the row's status is one of From, and writes only what it sets.
type CAPIChange struct {
	ID     int64
	From   []string
	Status string
	At     time.Time

	SetError  bool
	ErrorCode int
	Error     string

	SetAttempts bool
	Attempts    int

	SetNextAt bool
	NextAt    time.Time

	SetSentAt bool
	SentAt    time.Time

	Applied bool
}

// ConversionFilter selects conversions; zero fields do not filter.
type ConversionFilter struct {
	FlowID  string
	Contact string
	RunID   int64
	Since   time.Time
	Until   time.Time // exclusive
	Limit   int       // 0: 1000
}

// OutcomeCounts are exact counts of a flow's runs started in a period.
type OutcomeCounts struct {
	Entered     int64        // runs started
	Converted   int64        // of those, runs with at least one conversion
	Conversions []EventCount // by event, then currency
	Splits      []SplitCount // by step, then variant
	ByAd        []AdCount    // by the entry referral's source_id (runs without one are absent)
}

// EventCount is the conversions of one event (and currency).
type EventCount struct {
	Event    string
	Currency string
	Count    int64
	Value    float64 // sum of the values
}

// SplitCount is one variant of one split step.
type SplitCount struct {
	Step      string
	Variant   string
	Entered   int64 // runs assigned the variant
	Converted int64 // of those, runs with a conversion
}

// AdCount is the runs that entered from one ad.
type AdCount struct {
	SourceID  string
	Entered   int64
	Converted int64
}

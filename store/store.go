package store

import (
	"context"
	"time"
)

// Store is funnel's persistence. SQLite is the implementation; the interface keeps
// the engine honest about what it needs.
type Store interface {
	// Write runs fn in one write transaction.
	Write(ctx context.Context, fn func(Tx) error) error
	// Enqueue stores inbound items (deduplicated by key) in one commit and returns
	// how many were new.
	Enqueue(ctx context.Context, items []InboxItem) (int, error)
	// Lead takes the lease `name` for holder for ttl from now (a zero now: the
	// database's clock), or renews it if holder has it; it reports whether
	// holder holds it afterwards, and the lease as it stands.
	Lead(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, bool, error)
	// Resign gives holder's lease up at once.
	Resign(ctx context.Context, name, holder string) error
	// PauseSender records that sending stops for reason until `until` (zero:
	// until ResumeSender), for every replica.
	PauseSender(ctx context.Context, reason string, until, at time.Time) error
	// ResumeSender clears the pause recorded as reason ("" clears any).
	ResumeSender(ctx context.Context, reason string, at time.Time) error
	Reader
	Close() error
}

// Reader is the read side, served by a pool of read-only connections.
type Reader interface {
	// Contact finds a contact by key, phone number, BSUID, parent BSUID or
	// username (nil, nil if unknown).
	Contact(ctx context.Context, id string) (*Contact, error)
	ContactsAfter(ctx context.Context, after string, limit int) ([]*Contact, error)
	RunsOf(ctx context.Context, waID string, limit int) ([]*Run, error)
	RunsWhere(ctx context.Context, flowID, status string, limit int) ([]*Run, error)
	OutboxOf(ctx context.Context, waID string, limit int) ([]*OutboxItem, error)
	OutboxWhere(ctx context.Context, status string, limit int) ([]*OutboxItem, error)
	InboxUnprocessed(ctx context.Context) (int64, error)
	Stats(ctx context.Context) (Stats, error)
	// Ping checks that the database answers a read (readiness: no table read).
	Ping(ctx context.Context) error
	// Depths counts the queues up to limit each, through indexes only: what
	// metrics scrapes and status pages may afford, whatever the tables' sizes.
	Depths(ctx context.Context, now time.Time, limit int64) (Depths, error)
	// Due says which engine loops have work, without the write lock.
	Due(ctx context.Context, now time.Time, resendAfter time.Duration) (Due, error)
	FlowVersion(ctx context.Context, id int64) (*FlowVersion, error)
	// TemplateStates is what Meta last said about each template.
	TemplateStates(ctx context.Context) ([]*TemplateState, error)
	// PhoneQualities is the last quality update of each business number.
	PhoneQualities(ctx context.Context) ([]*PhoneQuality, error)
	// Report counts each flow's runs started in a period: entered, completed,
	// steps reached, ads, conversions and splits (see FlowCounts).
	Report(ctx context.Context, f ReportFilter) ([]*FlowCounts, error)
	// MarketingLimited counts, per flow and contact, the messages queued
	// since `since` that Meta refused with 131049 (up to limit rows).
	MarketingLimited(ctx context.Context, since time.Time, limit int) ([]MarketingLimited, error)
	// LeaseOf reads the lease `name` (Holder "" when nobody holds it); ttl is
	// its duration, to tell when it was last renewed.
	LeaseOf(ctx context.Context, name string, ttl time.Duration) (Lease, error)
	// SenderPaused reads the sender's pause.
	SenderPaused(ctx context.Context) (SenderPause, error)
	OutcomeReader
}

// Tx is one write transaction. Batch methods take and return many rows so a batch
// of events costs a handful of statements.
type Tx interface {
	// NewID allocates an id in a table (runs, timers, outbox, flow_versions).
	NewID(table string) int64
	// Fence fails with ErrNotLeader unless holder holds the lease `name`,
	// and keeps it from changing hands until the transaction ends: the
	// leader's writes start with it, so a replica that lost the lease writes
	// nothing more.
	Fence(name, holder string) error

	PendingInbox(limit int) ([]*InboxItem, error)
	MarkProcessed(items []*InboxItem, at time.Time) error
	// PurgeInbox deletes up to limit events processed before `before`.
	PurgeInbox(before time.Time, limit int) (int, error)
	// PurgeOrphanStatuses deletes up to limit delivery statuses dated before
	// `before` that belong to no outbox message.
	PurgeOrphanStatuses(before time.Time, limit int) (int, error)
	// PurgeRuns deletes up to limit runs ended before `before`, and their timers.
	PurgeRuns(before time.Time, limit int) (int, error)
	// PurgeMessages deletes up to limit settled messages created before `before`.
	PurgeMessages(before time.Time, limit int) (int, error)
	// PurgeStatuses deletes up to limit status webhooks dated before `before`.
	PurgeStatuses(before time.Time, limit int) (int, error)
	EnqueueInbox(items []InboxItem) (int, error)

	Contacts(waIDs []string) (map[string]*Contact, error)
	ContactsPage(after string, limit int) ([]*Contact, error)
	SaveContacts(cs []*Contact) error
	// ContactIDs resolves WhatsApp ids (phone numbers, BSUIDs, parent BSUIDs,
	// and keys of merged contacts) to contact keys; unknown ids are absent.
	ContactIDs(ids []string) (map[string]string, error)
	// LinkContactIDs points ids at contact keys (id → key).
	LinkContactIDs(links map[string]string) error
	// MergeContact moves everything of contact `from` to contact `into` and
	// deletes `from` (one person seen first under two ids).
	MergeContact(from, into string) error

	FlowVersionID(flowID, hash string) (int64, error) // 0 when unknown
	InsertFlowVersion(v *FlowVersion) error
	FlowVersion(id int64) (*FlowVersion, error)
	ProjectVersionID(hash string) (int64, error) // 0 when unknown
	InsertProjectVersion(v *ProjectVersion) error
	ProjectVersion(id int64) (*ProjectVersion, error)

	LiveRuns(contacts []string) ([]*Run, error)
	Runs(ids []int64) (map[int64]*Run, error)
	SaveRuns(rs []*Run) error
	// InsertRunSteps records steps runs executed (a step already recorded for
	// the run is left as it is). Save the runs first.
	InsertRunSteps(rs []*RunStep) error
	// MarkRunSteps records replies, deliveries and reads of recorded steps
	// (the first of each kind per run and step).
	MarkRunSteps(ms []*StepMark) error

	DueTimers(now time.Time, limit int) ([]*Timer, error)
	// DueTimersOf returns every timer of these runs due at now.
	DueTimersOf(runIDs []int64, now time.Time) ([]*Timer, error)
	NextTimer(after time.Time) (time.Time, bool, error) // earliest due time after `after`
	InsertTimers(ts []*Timer) error
	DeleteTimers(ids []int64) error

	ClaimOutbox(now time.Time, limit int) ([]*OutboxItem, error)
	NextOutboxAttempt(after time.Time) (time.Time, bool, error)
	OutboxByIDs(ids []int64) (map[int64]*OutboxItem, error)
	OutboxByProvider(ids []string) (map[string]*OutboxItem, error)
	InsertOutbox(items []*OutboxItem) error
	// ChangeOutbox applies guarded transitions of messages, in order.
	ChangeOutbox(cs []*OutboxChange) (int, error)
	// MarkSending records that these claimed messages are about to be handed to
	// the API: from now on a crash leaves their outcome unknown.
	MarkSending(ids []int64, at time.Time) error
	// MarkSendingUnknown recovers after a crash: messages left `claimed` were
	// never handed to the API and go back to pending; those left `sending` may
	// or may not have reached Meta, become `unknown` and are not sent again.
	MarkSendingUnknown(at time.Time) (int, error)
	// OpenOutboxCounts counts each contact's messages not settled yet
	// (pending, claimed, sending); contacts with none are absent.
	OpenOutboxCounts(contacts []string) (map[string]int, error)
	// DeferPendingOutbox moves a paced contact's pending messages due before
	// until to until.
	DeferPendingOutbox(contact string, until, at time.Time) (int, error)
	// CancelPendingOutbox cancels the pending messages of contacts (who opted out).
	CancelPendingOutbox(contacts []string, at time.Time) error
	// ResendUnknown moves messages left unknown for `after`, with no status
	// since, back to pending to be sent once more (once).
	ResendUnknown(now time.Time, after time.Duration, limit int, reason string) (int, error)
	// NextResend is when the next message now unknown is due to be sent once more.
	NextResend(after time.Time, resendAfter time.Duration) (time.Time, bool, error)

	InsertStatuses(rs []*StatusRecord) (int, error)
	// RecentSends lists the messages sent at or after since (contact and
	// time, oldest first): a new leader refills its pair-rate buckets from
	// them.
	RecentSends(since time.Time) ([]RecentSend, error)

	// TemplateStates lists what Meta last said about each template.
	TemplateStates() ([]*TemplateState, error)
	// SetTemplateStatus, SetTemplateCategory and SetTemplateQuality record one
	// attribute of a template (inserting its row), unless a change of it
	// dated after `at` is recorded already; they report whether they wrote.
	SetTemplateStatus(name, language, id, status, event, reason string, at time.Time) (bool, error)
	SetTemplateCategory(name, language, id, category string, at time.Time) (bool, error)
	SetTemplateQuality(name, language, id, quality string, at time.Time) (bool, error)
	// HoldOutbox moves the pending template messages of a template
	// ("name:language") to held; ReleaseOutbox moves its held messages back
	// to pending.
	HoldOutbox(template, reason string, at time.Time) (int, error)
	ReleaseOutbox(template string, at time.Time) (int, error)
	// SetPhoneQuality records a phone_number_quality_update (unless a later
	// one of that number is recorded).
	SetPhoneQuality(p *PhoneQuality) (bool, error)

	// Reached counts the unique users business-initiated messages reached
	// since `since`, with the earliest time among them; ReachedOf says which
	// of contacts are among them; MarkReached records contacts reached at
	// `at` (and forgets those 24h older).
	Reached(since time.Time) (int, time.Time, error)
	ReachedOf(contacts []string, since time.Time) (map[string]bool, error)
	MarkReached(contacts []string, at time.Time) error

	Schedules() (map[string]*Schedule, error)
	SaveSchedule(s *Schedule) error

	OutcomeTx
}

package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ObjectWhatsApp is the only webhook object funnel accepts.
const ObjectWhatsApp = "whatsapp_business_account"

// ErrWrongObject is returned by ParseWebhook for webhooks of other Meta products
// (page, instagram, …) that an app subscription may also deliver.
var ErrWrongObject = errors.New("whatsapp: webhook object is not " + ObjectWhatsApp)

// Envelope is a webhook POST body. One POST can carry several entries, changes
// and messages.
type Envelope struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one WhatsApp Business Account's batch; ID is the WABA id.
type Entry struct {
	ID string `json:"id"`
	// Time is when Meta triggered the webhook (Unix seconds), given on
	// account-level changes (template and phone number updates).
	Time    FlexString `json:"time,omitempty"`
	Changes []Change   `json:"changes"`
}

// Change is one subscribed field's update. Only Field "messages" carries
// messages and statuses; other fields (template status updates, account
// updates, …) have different value shapes, kept verbatim in RawValue.
type Change struct {
	Field    string          `json:"field"`
	Value    Value           `json:"value"`
	RawValue json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes Value leniently for fields other than "messages", so an
// unrelated subscription never makes a whole webhook unparseable.
func (c *Change) UnmarshalJSON(data []byte) error {
	var raw struct {
		Field string          `json:"field"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = Change{Field: raw.Field, RawValue: cloneRaw(raw.Value)}
	if len(raw.Value) == 0 || bytes.Equal(raw.Value, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw.Value, &c.Value); err != nil {
		if c.Field == "messages" {
			return fmt.Errorf("change %q: value: %w", c.Field, err)
		}
		c.Value = Value{}
	}
	return nil
}

// MarshalJSON writes the change back; the raw value wins when present so
// nothing Meta sent is lost on a round trip.
func (c Change) MarshalJSON() ([]byte, error) {
	v := any(c.Value)
	if len(c.RawValue) > 0 {
		v = c.RawValue
	}
	return json.Marshal(struct {
		Field string `json:"field"`
		Value any    `json:"value"`
	}{c.Field, v})
}

// Value is the payload of a "messages" change.
type Value struct {
	MessagingProduct string           `json:"messaging_product"`
	Metadata         Metadata         `json:"metadata"`
	Contacts         []Contact        `json:"contacts,omitempty"`
	Messages         []InboundMessage `json:"messages,omitempty"`
	Statuses         []Status         `json:"statuses,omitempty"`
	Errors           []WebhookError   `json:"errors,omitempty"`
	// UserIDUpdates is the value of a "user_id_update" change: a user's BSUID
	// changed (they changed their phone number).
	UserIDUpdates []UserIDUpdate `json:"user_id_update,omitempty"`
}

// UserIDUpdate reports that a user's BSUID changed. Meta documents the
// user_id_update webhook field without a published body; funnel reads this
// shape (the ids under the names the other webhooks use) and keeps the raw
// change, so a different layout loses nothing.
type UserIDUpdate struct {
	WaID           string    `json:"wa_id,omitempty"`
	PreviousUserID string    `json:"previous_user_id,omitempty"`
	UserID         string    `json:"user_id,omitempty"`
	ParentUserID   string    `json:"parent_user_id,omitempty"`
	Timestamp      Timestamp `json:"timestamp,omitempty"`
}

// Metadata identifies the business phone number the webhook is about.
type Metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

// Contact is the user a message or status is about, as WhatsApp shows it: the
// phone number (WaID) only when the user lets the business see it, the BSUID
// (UserID) always, the parent BSUID when the business has one.
type Contact struct {
	Profile      Profile `json:"profile"`
	WaID         string  `json:"wa_id,omitempty"`
	UserID       string  `json:"user_id,omitempty"`
	ParentUserID string  `json:"parent_user_id,omitempty"`
}

// Profile holds the user's WhatsApp display name and username (when the user
// has one).
type Profile struct {
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
}

// WebhookError is an error reported inside a webhook (value, message or status).
type WebhookError struct {
	Code      int       `json:"code"`
	Title     string    `json:"title,omitempty"`
	Message   string    `json:"message,omitempty"`
	ErrorData ErrorData `json:"error_data,omitzero"`
	Href      string    `json:"href,omitempty"`
}

// ErrorData carries Meta's detailed explanation, which is what to log.
type ErrorData struct {
	Details string `json:"details,omitempty"`
}

// Timestamp is a Unix-seconds timestamp as Meta sends it: a JSON string. A bare
// JSON number is accepted too, because rejecting a whole webhook over the
// quoting of one field would make Meta redeliver it for days.
type Timestamp string

// UnmarshalJSON accepts "1739321030" and 1739321030.
func (t *Timestamp) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*t = Timestamp(s)
		return nil
	}
	if bytes.Equal(data, []byte("null")) {
		*t = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	*t = Timestamp(n.String())
	return nil
}

// maxUnix is 9999-12-31T23:59:59Z: anything later is garbage, not a date.
const maxUnix = 253402300799

// Time parses the timestamp. A missing or malformed timestamp is an error, never
// a zero time, because the window is computed from it.
func (t Timestamp) Time() (time.Time, error) {
	if t == "" {
		return time.Time{}, errors.New("whatsapp: missing timestamp")
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || n <= 0 || n > maxUnix {
		return time.Time{}, fmt.Errorf("whatsapp: bad timestamp %q: want Unix seconds", string(t))
	}
	return time.Unix(n, 0).UTC(), nil
}

// Inbound message types (messages[].type).
const (
	InText        = "text"
	InButton      = "button"
	InInteractive = "interactive"
	InImage       = "image"
	InVideo       = "video"
	InDocument    = "document"
	InAudio       = "audio"
	InSticker     = "sticker"
	InLocation    = "location"
	InContacts    = "contacts"
	InReaction    = "reaction"
	InSystem      = "system"
	InUnknown     = "unknown"
)

// InboundMessage is one messages[] item. Raw keeps the item's exact JSON so
// types funnel does not model (order, system, …) are never lost.
//
// A message whose typed fields do not decode is still returned with From, ID,
// Timestamp and Type when those can be read, with DecodeErr set: every inbound
// message opens the 24 h window, whatever else is wrong with it.
type InboundMessage struct {
	// From is the sender's phone number: absent when a user with a username
	// hides it. FromUserID is the sender's BSUID.
	From             string              `json:"from,omitempty"`
	FromUserID       string              `json:"from_user_id,omitempty"`
	FromParentUserID string              `json:"from_parent_user_id,omitempty"`
	ID               string              `json:"id"`
	Timestamp        Timestamp           `json:"timestamp"`
	Type             string              `json:"type"`
	Context          *MessageContext     `json:"context,omitempty"`
	Referral         *Referral           `json:"referral,omitempty"`
	Text             *InboundText        `json:"text,omitempty"`
	Button           *InboundButton      `json:"button,omitempty"`
	Interactive      *InboundInteractive `json:"interactive,omitempty"`
	Image            *InboundMedia       `json:"image,omitempty"`
	Video            *InboundMedia       `json:"video,omitempty"`
	Document         *InboundMedia       `json:"document,omitempty"`
	Audio            *InboundMedia       `json:"audio,omitempty"`
	Sticker          *InboundMedia       `json:"sticker,omitempty"`
	Location         *Location           `json:"location,omitempty"`
	Contacts         []SharedContact     `json:"contacts,omitempty"`
	Reaction         *Reaction           `json:"reaction,omitempty"`
	System           *InboundSystem      `json:"system,omitempty"`
	Errors           []WebhookError      `json:"errors,omitempty"`

	Raw       json.RawMessage `json:"-"`
	DecodeErr error           `json:"-"`
}

// UnmarshalJSON keeps the raw bytes and salvages the common fields of a
// message whose type-specific part does not decode.
func (m *InboundMessage) UnmarshalJSON(data []byte) error {
	type plain InboundMessage
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		var min struct {
			From             string    `json:"from"`
			FromUserID       string    `json:"from_user_id"`
			FromParentUserID string    `json:"from_parent_user_id"`
			ID               string    `json:"id"`
			Timestamp        Timestamp `json:"timestamp"`
			Type             string    `json:"type"`
		}
		if json.Unmarshal(data, &min) != nil {
			return err
		}
		p = plain{From: min.From, FromUserID: min.FromUserID, FromParentUserID: min.FromParentUserID, ID: min.ID,
			Timestamp: min.Timestamp, Type: min.Type, DecodeErr: err}
	}
	*m = InboundMessage(p)
	m.Raw = cloneRaw(data)
	return nil
}

// MessageContext links a message to the one it replies to; for a template
// quick-reply tap ID is the wamid of funnel's message.
type MessageContext struct {
	From                string `json:"from,omitempty"`
	ID                  string `json:"id,omitempty"`
	Forwarded           bool   `json:"forwarded,omitempty"`
	FrequentlyForwarded bool   `json:"frequently_forwarded,omitempty"`
}

// Referral describes the click-to-WhatsApp ad or post the user came from. Every
// field is optional: they vary by ad type and placement.
type Referral struct {
	SourceURL      string          `json:"source_url,omitempty"`
	SourceID       string          `json:"source_id,omitempty"`
	SourceType     string          `json:"source_type,omitempty"`
	Headline       string          `json:"headline,omitempty"`
	Body           string          `json:"body,omitempty"`
	MediaType      string          `json:"media_type,omitempty"`
	ImageURL       string          `json:"image_url,omitempty"`
	VideoURL       string          `json:"video_url,omitempty"`
	ThumbnailURL   string          `json:"thumbnail_url,omitempty"`
	CtwaClid       string          `json:"ctwa_clid,omitempty"`
	WelcomeMessage *WelcomeMessage `json:"welcome_message,omitempty"`
}

// WelcomeMessage is the ad's greeting shown before the user wrote.
type WelcomeMessage struct {
	Text string `json:"text,omitempty"`
}

// InboundText is a typed text message.
type InboundText struct {
	Body string `json:"body"`
}

// InboundButton is a template quick-reply tap.
type InboundButton struct {
	Payload string `json:"payload,omitempty"`
	Text    string `json:"text,omitempty"`
}

// InboundInteractive is a reply to an interactive message.
type InboundInteractive struct {
	Type        string            `json:"type"`
	ButtonReply *InteractiveReply `json:"button_reply,omitempty"`
	ListReply   *InteractiveReply `json:"list_reply,omitempty"`
	// NFMReply is a completed WhatsApp Flow (Type "nfm_reply").
	NFMReply *NFMReply `json:"nfm_reply,omitempty"`
}

// NFMReply is a completed WhatsApp Flow: Name "flow", Body "Sent", and the
// form's fields as a JSON object in a string (ResponseJSON), flow_token
// included.
type NFMReply struct {
	Name         string `json:"name,omitempty"`
	Body         string `json:"body,omitempty"`
	ResponseJSON string `json:"response_json"`
}

// InteractiveReply is the tapped button (id, title) or list row (id, title,
// description).
type InteractiveReply struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// InboundMedia is a received image, video, document, audio or sticker. The
// media itself must be fetched by ID.
type InboundMedia struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
	Animated bool   `json:"animated,omitempty"`
	Voice    bool   `json:"voice,omitempty"`
}

// Location is a shared location.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
}

// SharedContact is a contact card the user sent.
type SharedContact struct {
	Name     SharedContactName `json:"name"`
	Phones   []ContactPhone    `json:"phones,omitempty"`
	Emails   []ContactEmail    `json:"emails,omitempty"`
	Org      *ContactOrg       `json:"org,omitempty"`
	URLs     []ContactURL      `json:"urls,omitempty"`
	Birthday string            `json:"birthday,omitempty"`
}

// SharedContactName is a contact card's name.
type SharedContactName struct {
	FormattedName string `json:"formatted_name,omitempty"`
	FirstName     string `json:"first_name,omitempty"`
	LastName      string `json:"last_name,omitempty"`
	MiddleName    string `json:"middle_name,omitempty"`
	Prefix        string `json:"prefix,omitempty"`
	Suffix        string `json:"suffix,omitempty"`
}

// ContactPhone is a phone number on a contact card.
type ContactPhone struct {
	Phone string `json:"phone,omitempty"`
	WaID  string `json:"wa_id,omitempty"`
	Type  string `json:"type,omitempty"`
}

// ContactEmail is an email address on a contact card.
type ContactEmail struct {
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// ContactOrg is the organization on a contact card.
type ContactOrg struct {
	Company    string `json:"company,omitempty"`
	Department string `json:"department,omitempty"`
	Title      string `json:"title,omitempty"`
}

// ContactURL is a URL on a contact card.
type ContactURL struct {
	URL  string `json:"url,omitempty"`
	Type string `json:"type,omitempty"`
}

// InboundSystem is a system message: the user changed their phone number
// (Type "user_changed_number", WaID the new number) or their BSUID changed
// (Type "user_changed_user_id", UserID the new BSUID). The message's own
// From/FromUserID are the user's ids before the change.
type InboundSystem struct {
	Body         string `json:"body,omitempty"`
	WaID         string `json:"wa_id,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	ParentUserID string `json:"parent_user_id,omitempty"`
	Type         string `json:"type,omitempty"`
}

// System message types.
const (
	SystemUserChangedNumber = "user_changed_number"
	SystemUserChangedUserID = "user_changed_user_id"
)

// Reaction is an emoji reaction to a message (empty Emoji: removed).
type Reaction struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji,omitempty"`
}

// Status values of statuses[].status.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// Status reports what happened to a message funnel sent. A send the API
// accepted can still fail here (131047 included): the engine reconciles.
type Status struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Timestamp Timestamp `json:"timestamp"`
	// RecipientID is the user's phone number, absent when the message went to
	// a BSUID of a user who hides it; RecipientUserID is the BSUID (absent on
	// a failed message that was sent to a phone number).
	RecipientID           string         `json:"recipient_id,omitempty"`
	RecipientUserID       string         `json:"recipient_user_id,omitempty"`
	RecipientParentUserID string         `json:"recipient_parent_user_id,omitempty"`
	BizOpaqueCallbackData string         `json:"biz_opaque_callback_data,omitempty"`
	Conversation          *Conversation  `json:"conversation,omitempty"`
	Pricing               *Pricing       `json:"pricing,omitempty"`
	Errors                []WebhookError `json:"errors,omitempty"`

	Raw       json.RawMessage `json:"-"`
	DecodeErr error           `json:"-"`
}

// UnmarshalJSON keeps the raw bytes and salvages the identifying fields of a
// status whose optional parts do not decode.
func (s *Status) UnmarshalJSON(data []byte) error {
	type plain Status
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		var min struct {
			ID                    string    `json:"id"`
			Status                string    `json:"status"`
			Timestamp             Timestamp `json:"timestamp"`
			RecipientID           string    `json:"recipient_id"`
			RecipientUserID       string    `json:"recipient_user_id"`
			RecipientParentUserID string    `json:"recipient_parent_user_id"`
			BizOpaqueCallbackData string    `json:"biz_opaque_callback_data"`
		}
		if json.Unmarshal(data, &min) != nil {
			return err
		}
		p = plain{ID: min.ID, Status: min.Status, Timestamp: min.Timestamp, RecipientID: min.RecipientID,
			RecipientUserID: min.RecipientUserID, RecipientParentUserID: min.RecipientParentUserID,
			BizOpaqueCallbackData: min.BizOpaqueCallbackData, DecodeErr: err}
	}
	*s = Status(p)
	s.Raw = cloneRaw(data)
	return nil
}

// Conversation is the billing conversation a status belongs to.
type Conversation struct {
	ID                  string              `json:"id,omitempty"`
	ExpirationTimestamp Timestamp           `json:"expiration_timestamp,omitempty"`
	Origin              *ConversationOrigin `json:"origin,omitempty"`
}

// ConversationOrigin says what opened the conversation (marketing, service, …).
type ConversationOrigin struct {
	Type string `json:"type,omitempty"`
}

// Pricing is how Meta bills the message.
type Pricing struct {
	Billable     bool   `json:"billable"`
	PricingModel string `json:"pricing_model,omitempty"`
	Type         string `json:"type,omitempty"`
	Category     string `json:"category,omitempty"`
}

// ParseWebhook decodes a webhook POST body. It never panics, rejects other
// Meta objects with ErrWrongObject, and does not verify the signature (do that
// first, on the same raw bytes, with VerifySignature).
func ParseWebhook(body []byte) (*Envelope, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("whatsapp: webhook: empty body")
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("whatsapp: webhook: %w", err)
	}
	if env.Object != ObjectWhatsApp {
		return nil, fmt.Errorf("%w: got object %q", ErrWrongObject, env.Object)
	}
	return &env, nil
}

// EventKind tells an inbound message from a status update.
type EventKind string

// Event kinds.
const (
	EventMessage EventKind = "message"
	EventStatus  EventKind = "status"
	// EventIdentity is a user_id_update: a user's BSUID changed.
	EventIdentity EventKind = "identity"
)

// Event is one inbound message or status, flattened out of the envelope with
// the context the engine needs to process it on its own.
type Event struct {
	Kind               EventKind
	WABAID             string
	PhoneNumberID      string
	DisplayPhoneNumber string
	// The user (the sender of a message, the recipient of a status) by every
	// id the webhook gives: WaID is the phone number (may be empty), UserID
	// the BSUID, ParentUserID the parent BSUID. At least one is set.
	WaID         string
	UserID       string
	ParentUserID string
	// Username is the user's WhatsApp username when the webhook has it.
	Username string
	// ContactName is the user's WhatsApp profile name when the webhook has it.
	ContactName string
	// Update is the BSUID change of an EventIdentity.
	Update *UserIDUpdate
	// Time is the event's own timestamp: for a message, when the user wrote,
	// which is when the 24 h window (re)opens.
	Time    time.Time
	Message *InboundMessage
	Status  *Status
}

// Key is an idempotency key for the event: Meta redelivers webhooks, and one
// wamid gets several statuses (sent, delivered, read).
func (e Event) Key() string {
	switch e.Kind {
	case EventMessage:
		return "message:" + e.Message.ID
	case EventStatus:
		return "status:" + e.Status.ID + ":" + e.Status.Status
	case EventIdentity:
		return "user_id_update:" + e.Update.PreviousUserID + ">" + e.Update.UserID
	}
	return ""
}

// EventError locates an item Events could not turn into an event.
type EventError struct {
	Entry, Change, Index int
	Kind                 EventKind
	ID                   string
	Err                  error
}

func (e *EventError) Error() string {
	field := map[EventKind]string{EventMessage: "messages", EventStatus: "statuses", EventIdentity: "user_id_update"}[e.Kind]
	if field == "" {
		field = string(e.Kind) + "s"
	}
	return fmt.Sprintf("whatsapp: entry[%d].changes[%d].%s[%d] (id %.80q): %v", e.Entry, e.Change, field, e.Index, e.ID, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// Events flattens the envelope into messages and statuses in the order Meta
// sent them. Items with a missing or malformed timestamp or id are left out
// and reported in the returned error (errors.Join of *EventError); every other
// item is returned, so one bad item does not hold the rest hostage.
func (e *Envelope) Events() ([]Event, error) {
	if e == nil {
		return nil, nil
	}
	var out []Event
	var errs []error
	for ei, en := range e.Entry {
		for ci, ch := range en.Changes {
			if ch.Field != "messages" && ch.Field != "user_id_update" {
				continue
			}
			v := ch.Value
			if id := v.Metadata.PhoneNumberID; id != "" && !ValidObjectID(id) {
				// Replies would go out from this id: a forged one must not
				// reach the Graph API's path.
				err := fmt.Errorf("bad metadata.phone_number_id %.40q: want a Graph id (digits)", id)
				for i := range v.Messages {
					errs = append(errs, &EventError{ei, ci, i, EventMessage, v.Messages[i].ID, err})
				}
				for i := range v.Statuses {
					errs = append(errs, &EventError{ei, ci, i, EventStatus, v.Statuses[i].ID, err})
				}
				for i := range v.UserIDUpdates {
					errs = append(errs, &EventError{ei, ci, i, EventIdentity, v.UserIDUpdates[i].UserID, err})
				}
				continue
			}
			base := Event{WABAID: en.ID, PhoneNumberID: v.Metadata.PhoneNumberID, DisplayPhoneNumber: v.Metadata.DisplayPhoneNumber}
			if ch.Field == "user_id_update" {
				for i := range v.UserIDUpdates {
					u := &v.UserIDUpdates[i]
					t, err := u.Timestamp.Time()
					if err == nil && (u.PreviousUserID == "" || u.UserID == "") {
						err = errors.New("missing previous_user_id or user_id")
					}
					ev := base
					ev.Kind, ev.Time, ev.Update = EventIdentity, t, u
					ev.WaID, ev.UserID, ev.ParentUserID = u.WaID, u.PreviousUserID, u.ParentUserID
					if err == nil {
						err = ev.checkIDs()
					}
					if err == nil && !IsBSUID(u.UserID) {
						err = fmt.Errorf("bad user_id %.40q: want a business-scoped user ID", u.UserID)
					}
					if err != nil {
						errs = append(errs, &EventError{ei, ci, i, EventIdentity, u.UserID, err})
						continue
					}
					out = append(out, ev)
				}
				continue
			}
			for i := range v.Messages {
				m := &v.Messages[i]
				t, err := m.Timestamp.Time()
				if err == nil && m.ID == "" {
					err = errors.New("missing id")
				}
				ev := base
				ev.Kind, ev.Time, ev.Message = EventMessage, t, m
				ev.WaID, ev.UserID, ev.ParentUserID = m.From, m.FromUserID, m.FromParentUserID
				ev.identify(v.Contacts, true)
				if err == nil && ev.WaID == "" && ev.UserID == "" && ev.ParentUserID == "" {
					err = errors.New("missing sender: no from, from_user_id or contact")
				}
				if err == nil && !validMessageID(m.ID) {
					err = errors.New("bad id: want a wamid (printable, at most 256 characters)")
				}
				if err == nil && m.From != "" && !ValidWaID(m.From) {
					err = fmt.Errorf("bad from %.40q: want the sender's number, digits only", m.From)
				}
				if err == nil {
					err = ev.checkIDs()
				}
				if err != nil {
					errs = append(errs, &EventError{ei, ci, i, EventMessage, m.ID, err})
					continue
				}
				out = append(out, ev)
			}
			for i := range v.Statuses {
				s := &v.Statuses[i]
				t, err := s.Timestamp.Time()
				if err == nil && s.ID == "" {
					err = errors.New("missing id")
				}
				if err == nil && !validMessageID(s.ID) {
					err = errors.New("bad id: want a wamid (printable, at most 256 characters)")
				}
				if err == nil && !validStatusName(s.Status) {
					err = fmt.Errorf("bad status %.40q: want a word like delivered", s.Status)
				}
				if err == nil && s.RecipientID != "" && !ValidWaID(s.RecipientID) {
					err = fmt.Errorf("bad recipient_id %.40q: want the recipient's number, digits only", s.RecipientID)
				}
				if err != nil {
					errs = append(errs, &EventError{ei, ci, i, EventStatus, s.ID, err})
					continue
				}
				ev := base
				ev.Kind, ev.Time, ev.Status = EventStatus, t, s
				ev.WaID, ev.UserID, ev.ParentUserID = s.RecipientID, s.RecipientUserID, s.RecipientParentUserID
				ev.identify(v.Contacts, len(v.Statuses) == 1)
				if err := ev.checkIDs(); err != nil {
					errs = append(errs, &EventError{ei, ci, i, EventStatus, s.ID, err})
					continue
				}
				out = append(out, ev)
			}
		}
	}
	return out, errors.Join(errs...)
}

// checkIDs refuses ids that cannot be what they claim (they become contact
// keys and Graph API recipients): a number is digits, a BSUID has its shape.
func (e *Event) checkIDs() error {
	if e.WaID != "" && !ValidWaID(e.WaID) {
		return fmt.Errorf("bad wa_id %.40q: want a number, digits only", e.WaID)
	}
	if e.UserID != "" && !IsBSUID(e.UserID) {
		return fmt.Errorf("bad user_id %.40q: want a business-scoped user ID", e.UserID)
	}
	if e.ParentUserID != "" && !IsParentBSUID(e.ParentUserID) {
		return fmt.Errorf("bad parent_user_id %.40q: want a parent business-scoped user ID", e.ParentUserID)
	}
	return nil
}

// identify completes the event's ids, name and username from its entry in
// contacts[] (matched by phone number or BSUID). A message webhook carries
// exactly its sender's contact, so with one contact and no exact match
// (number formats can differ between from and wa_id, and from may be absent)
// that one is used when single is set.
func (e *Event) identify(cs []Contact, single bool) {
	var c *Contact
	for i := range cs {
		x := &cs[i]
		if (e.WaID != "" && x.WaID == e.WaID) || (e.UserID != "" && x.UserID == e.UserID) {
			c = x
			break
		}
	}
	if c == nil && single && len(cs) == 1 {
		c = &cs[0]
	}
	if c == nil {
		return
	}
	if e.WaID == "" {
		e.WaID = c.WaID
	}
	if e.UserID == "" {
		e.UserID = c.UserID
	}
	if e.ParentUserID == "" {
		e.ParentUserID = c.ParentUserID
	}
	e.ContactName, e.Username = c.Profile.Name, c.Profile.Username
}

// Reply is an inbound message normalized for flows (the DSL's `reply`).
type Reply struct {
	// Type is "text", "button" (template quick reply or interactive reply
	// button), "list" (list row), "form" (a completed WhatsApp Flow), or the
	// message type for anything else (image, location, reaction, unknown, …).
	Type string
	// Text is what the user "said": the typed text, the tapped button's or
	// row's title, or a media caption.
	Text string
	// Button is the tapped button's title (empty unless Type is "button").
	Button string
	// Payload is the machine value: the quick-reply payload or the id of the
	// tapped interactive button or list row.
	Payload string
	// Form is a completed form's fields (Type "form"): its response_json
	// decoded; empty when that is not a JSON object.
	Form map[string]any
	// Location is a shared location (Type "location").
	Location *Location
}

// Reply normalizes the message.
func (m *InboundMessage) Reply() Reply {
	if m == nil {
		return Reply{}
	}
	r := Reply{Type: m.Type}
	switch m.Type {
	case InText:
		if m.Text != nil {
			r.Text = m.Text.Body
		}
	case InButton:
		if m.Button != nil {
			r.Text, r.Button, r.Payload = m.Button.Text, m.Button.Text, m.Button.Payload
		}
	case InInteractive:
		if in := m.Interactive; in != nil {
			switch {
			case in.Type == "button_reply" && in.ButtonReply != nil:
				r.Type = "button"
				r.Text, r.Button, r.Payload = in.ButtonReply.Title, in.ButtonReply.Title, in.ButtonReply.ID
			case in.Type == "list_reply" && in.ListReply != nil:
				r.Type = "list"
				r.Text, r.Payload = in.ListReply.Title, in.ListReply.ID
			case in.Type == "nfm_reply" && in.NFMReply != nil:
				r.Type = "form"
				var form map[string]any
				if json.Unmarshal([]byte(in.NFMReply.ResponseJSON), &form) == nil {
					r.Form = form
				}
			}
		}
	case InImage, InVideo, InDocument, InAudio, InSticker:
		if md := m.media(); md != nil {
			r.Text = md.Caption
		}
	case InReaction:
		if m.Reaction != nil {
			r.Text = m.Reaction.Emoji
		}
	case InLocation:
		if m.Location != nil {
			loc := *m.Location
			r.Location = &loc
		}
	}
	return r
}

func (m *InboundMessage) media() *InboundMedia {
	switch m.Type {
	case InImage:
		return m.Image
	case InVideo:
		return m.Video
	case InDocument:
		return m.Document
	case InAudio:
		return m.Audio
	case InSticker:
		return m.Sticker
	}
	return nil
}

func cloneRaw(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// Inbound is what the inbox stores for one event: enough to process it later, on
// its own, after any restart. Message and Status keep Meta's JSON unchanged.
//
// The user is named by every id the webhook gave: WaID (the phone number, empty
// when the user hides it), UserID (the BSUID; for a user_id_update, the previous
// one), ParentUserID. At least one is set.
type Inbound struct {
	PhoneNumberID string          `json:"phone_number_id,omitempty"`
	WaID          string          `json:"wa_id"`
	UserID        string          `json:"user_id,omitempty"`
	ParentUserID  string          `json:"parent_user_id,omitempty"`
	Username      string          `json:"username,omitempty"`
	Name          string          `json:"name,omitempty"`
	Time          time.Time       `json:"time"`
	Message       json.RawMessage `json:"message,omitempty"`
	Status        json.RawMessage `json:"status,omitempty"`
	Event         *EventStart     `json:"event,omitempty"`
	// NewUserID is the new BSUID of a user_id_update.
	NewUserID string `json:"new_user_id,omitempty"`
	// Account is a template or phone number update (no contact).
	Account *whatsapp.AccountUpdate `json:"account,omitempty"`
}

// key is the id the inbox row is filed under: the phone number, else the BSUID.
func (in *Inbound) key() string {
	switch {
	case in.WaID != "":
		return in.WaID
	case in.UserID != "":
		return in.UserID
	}
	return in.ParentUserID
}

// EventStart asks to start the `event` flows named Name for a contact.
type EventStart struct {
	Name    string         `json:"name"`
	Payload map[string]any `json:"payload,omitempty"`
}

// FromWebhook turns a parsed webhook into inbox items (one per message and status),
// keyed for deduplication: Meta redelivers, and a key seen before is skipped.
// Items that cannot be processed (a bad timestamp) come back as errors beside the
// good ones.
func FromWebhook(env *whatsapp.Envelope, receivedAt time.Time) ([]store.InboxItem, error) {
	events, err := env.Events()
	items := make([]store.InboxItem, 0, len(events))
	for _, ev := range events {
		in := Inbound{PhoneNumberID: ev.PhoneNumberID, WaID: ev.WaID, UserID: ev.UserID, ParentUserID: ev.ParentUserID,
			Username: ev.Username, Name: ev.ContactName, Time: ev.Time}
		// Nothing was written after it arrived: a timestamp ahead of the
		// receipt (a skewed or forged one) would hold the window open past
		// what WhatsApp allows, so it counts as written on arrival.
		if in.Time.After(receivedAt) {
			in.Time = receivedAt
		}
		kind := store.InboxMessage
		switch {
		case ev.Message != nil:
			in.Message = ev.Message.Raw
		case ev.Status != nil:
			in.Status = ev.Status.Raw
			kind = store.InboxStatus
		case ev.Update != nil:
			in.NewUserID = ev.Update.UserID
			kind = store.InboxIdentity
		default:
			continue
		}
		items = append(items, store.InboxItem{Key: ev.Key(), Kind: kind, Contact: in.key(),
			Payload: mustMarshal(in), ReceivedAt: receivedAt})
	}
	accounts, aerr := env.Accounts()
	for i := range accounts {
		a := &accounts[i]
		in := Inbound{Time: a.Time, Account: a}
		items = append(items, store.InboxItem{Key: a.Key(), Kind: store.InboxAccount, Payload: mustMarshal(in), ReceivedAt: receivedAt})
	}
	return items, errors.Join(err, aerr)
}

// EventItem makes the inbox item for an API event. key deduplicates retries of the
// same request (an Idempotency-Key); empty means every call is new. The key is
// scoped to the event name and the contact: two callers (or one caller's two
// events) reusing a key for different contacts or events do not drop each
// other's events, and only a true retry is skipped. waID is the contact's phone
// number or BSUID.
func EventItem(key, name, waID string, payload map[string]any, at time.Time) (store.InboxItem, error) {
	if name == "" || waID == "" {
		return store.InboxItem{}, errors.New("an event needs a name and a wa_id or user_id")
	}
	if key == "" {
		key = fmt.Sprintf("event:%s:%s:%d", name, waID, at.UnixNano())
	} else {
		// JSON quoting keeps the parts apart whatever characters they hold.
		key = "event:" + string(mustMarshal([]string{name, waID, key}))
	}
	in := Inbound{WaID: waID, Time: at, Event: &EventStart{Name: name, Payload: payload}}
	if whatsapp.IsBSUID(waID) {
		in.WaID, in.UserID = "", waID
	}
	return store.InboxItem{Key: key, Kind: store.InboxEvent, Contact: waID, Payload: mustMarshal(in), ReceivedAt: at}, nil
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("engine: encode %T: %v", v, err))
	}
	return b
}

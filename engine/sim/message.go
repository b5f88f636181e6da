package sim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// Tap is a contact tapping something: a reply button or list row of an
// interactive message, or a template's quick reply.
type Tap struct {
	Kind  string `json:"kind"` // button_reply | list_reply | quick_reply
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Message describes what a simulated contact writes: Text, or a Tap, maybe
// arriving from an ad (Referral, with source_type "ad" unless given).
type Message struct {
	WaID, Name    string
	ID            string // the wamid
	PhoneNumberID string
	Written       time.Time // the message's own timestamp
	Received      time.Time // when the webhook arrived
	Text          string
	Tap           *Tap
	Referral      map[string]string
}

// Item builds the inbox item the webhook would have stored for the message, with
// the message in Meta's JSON: the simulator and the sandbox feed the engine
// exactly what production does.
func (m Message) Item() store.InboxItem {
	msg := map[string]any{"from": m.WaID, "id": m.ID, "timestamp": fmt.Sprint(m.Written.Unix())}
	switch t := m.Tap; {
	case t != nil && t.Kind == "quick_reply":
		msg["type"] = "button"
		msg["button"] = map[string]string{"text": t.Title, "payload": t.ID}
	case t != nil:
		kind := "button_reply"
		if t.Kind == "list_reply" {
			kind = "list_reply"
		}
		msg["type"] = "interactive"
		msg["interactive"] = map[string]any{"type": kind, kind: map[string]string{"id": t.ID, "title": t.Title}}
	default:
		msg["type"] = "text"
		msg["text"] = map[string]string{"body": m.Text}
	}
	if m.Referral != nil {
		ref := map[string]string{"source_type": "ad"}
		for k, v := range m.Referral {
			ref[k] = v
		}
		msg["referral"] = ref
	}
	raw, _ := json.Marshal(msg)
	in := engine.Inbound{PhoneNumberID: m.PhoneNumberID, WaID: m.WaID, Name: m.Name, Time: m.Written, Message: raw}
	return store.InboxItem{Key: "message:" + m.ID, Kind: store.InboxMessage, Contact: m.WaID, Payload: mustJSON(in), ReceivedAt: m.Received}
}

package sim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
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
//
// WaID is the sender's number (empty when hidden), UserID their BSUID and
// Username their WhatsApp username; SharedPhone makes the message the reply to
// a REQUEST_CONTACT_INFO button: a contacts message carrying that number.
type Message struct {
	WaID, Name    string
	UserID        string
	Username      string
	SharedPhone   string
	ID            string // the wamid
	PhoneNumberID string
	Written       time.Time // the message's own timestamp
	Received      time.Time // when the webhook arrived
	Text          string
	Tap           *Tap
	Referral      map[string]string
	// Form completes a form (a flow message's nfm_reply); Location shares a
	// location.
	Form     map[string]any
	Location *whatsapp.Location
}

// Item builds the inbox item the webhook would have stored for the message, with
// the message in Meta's JSON: the simulator and the sandbox feed the engine
// exactly what production does.
func (m Message) Item() store.InboxItem {
	msg := map[string]any{"id": m.ID, "timestamp": fmt.Sprint(m.Written.Unix())}
	if m.WaID != "" {
		msg["from"] = m.WaID
	}
	if m.UserID != "" {
		msg["from_user_id"] = m.UserID
	}
	switch t := m.Tap; {
	case m.Form != nil:
		// As Meta delivers a completed Flow: the fields in a JSON string.
		resp, _ := json.Marshal(m.Form)
		msg["type"] = "interactive"
		msg["interactive"] = map[string]any{"type": "nfm_reply",
			"nfm_reply": map[string]string{"name": "flow", "body": "Sent", "response_json": string(resp)}}
	case m.Location != nil:
		msg["type"] = "location"
		msg["location"] = m.Location
	case m.SharedPhone != "":
		msg["type"] = "contacts"
		msg["context"] = map[string]string{"id": "wamid.sim.request_contact_info"}
		msg["contacts"] = []any{map[string]any{"name": map[string]string{"formatted_name": m.Name},
			"phones": []any{map[string]string{"phone": "+" + m.SharedPhone, "wa_id": m.SharedPhone, "type": "CELL"}}}}
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
		// Meta gives every click on a click-to-WhatsApp ad a click id; the
		// conversions a script makes are attributed to it.
		if _, ok := m.Referral["ctwa_clid"]; !ok && ref["source_type"] == "ad" && ref["source_id"] != "" {
			ref["ctwa_clid"] = "sim-clid." + m.ID
		}
		msg["referral"] = ref
	}
	raw, _ := json.Marshal(msg)
	in := engine.Inbound{PhoneNumberID: m.PhoneNumberID, WaID: m.WaID, UserID: m.UserID, Username: m.Username, Name: m.Name,
		Time: m.Written, Message: raw}
	key := m.WaID
	if key == "" {
		key = m.UserID
	}
	return store.InboxItem{Key: "message:" + m.ID, Kind: store.InboxMessage, Contact: key, Payload: mustJSON(in), ReceivedAt: m.Received}
}

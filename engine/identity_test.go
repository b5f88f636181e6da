package engine_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// who names a WhatsApp user the way a webhook does: any of the ids may be empty.
type who struct{ phone, userID, parent, username string }

// sendFrom delivers a message carrying exactly these ids (no `from` when the
// phone is hidden), written now, and runs the engine until idle.
func (r *rig) sendFrom(u who, m msg) {
	r.t.Helper()
	r.n++
	raw := msg{}
	for k, v := range m {
		raw[k] = v
	}
	id := fmt.Sprintf("wamid.in.%s%s.%d", u.phone, u.userID, r.n)
	raw["id"], raw["timestamp"] = id, fmt.Sprint(r.now().Unix())
	if u.phone != "" {
		raw["from"] = u.phone
	}
	if u.userID != "" {
		raw["from_user_id"] = u.userID
	}
	b, _ := json.Marshal(raw)
	in := engine.Inbound{PhoneNumberID: "pn-1", WaID: u.phone, UserID: u.userID, ParentUserID: u.parent, Username: u.username,
		Name: "Sam", Time: r.now().Truncate(time.Second), Message: b}
	payload, _ := json.Marshal(in)
	for _, x := range []string{u.phone, u.userID} {
		if x != "" {
			r.ch.inbound(x, r.now())
		}
	}
	r.enqueue(store.InboxItem{Key: "message:" + id, Kind: store.InboxMessage, Contact: u.userID, Payload: payload, ReceivedAt: r.now()})
	r.settle()
}

// contactCard is the reply to a REQUEST_CONTACT_INFO button: the user's own
// number, in reply to a message funnel sent.
func contactCard(phone string) msg {
	return msg{"type": "contacts", "context": map[string]any{"id": "wamid.out.1"},
		"contacts": []any{map[string]any{"name": map[string]any{"formatted_name": "Sam"},
			"phones": []any{map[string]any{"phone": "+" + phone, "wa_id": phone, "type": "CELL"}}}}}
}

const (
	samID    = "US.13491208655302741918"
	samPhone = "16505550100"
)

var sam = who{userID: samID, username: "@sam"}

func identityFlow() string {
	return `flow: sale
language: en_US
trigger:
  click_to_whatsapp: {}
steps:
  - id: hello
    send:
      text: "Hi ${contact.name} (${contact.username}), phone known: ${contact.has_phone}"
      buttons: ["Yes", "No"]
  - id: answer
    wait_for_reply: {timeout: 4h}
  - id: day3
    wait: 3d
  - id: reengage
    send:
      template: reminder
      params: ["${contact.name}"]
`
}

// A user with a username and a hidden number: the reply goes to the BSUID
// ("recipient"); the contact is keyed by it, and expressions see it.
func TestBSUIDOnlyContact(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.sendFrom(sam, textMsg("hi").withReferral("ad-1", "Sale"))
	c := r.contact(samID)
	if c.WaID != samID || c.Phone != "" || c.UserID != samID || c.Username != "@sam" {
		t.Fatalf("contact %+v", c)
	}
	sent := r.ch.sent(samID)
	if len(sent) != 1 || sent[0].Msg.To != "" || sent[0].Msg.Recipient != samID {
		t.Fatalf("sent %+v", sent)
	}
	if body := sent[0].Msg.Interactive.Body.Text; body != "Hi Sam (@sam), phone known: false" {
		t.Errorf("body %q", body)
	}
	if c, _ := r.st.Contact(r.ctx, "@sam"); c == nil || c.WaID != samID {
		t.Errorf("not found by username: %+v", c)
	}
}

// A BSUID-only contact who later shares their number (REQUEST_CONTACT_INFO)
// stays one contact; sends then go to the number.
func TestSharedPhoneJoinsTheContact(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.sendFrom(sam, textMsg("hi").withReferral("ad-1", "Sale"))
	r.sendFrom(sam, contactCard(samPhone))
	c := r.contact(samPhone)
	if c.WaID != samID || c.Phone != samPhone {
		t.Fatalf("contact %+v", c)
	}
	r.advance(3*24*time.Hour + 5*time.Hour)
	sent := r.ch.sent("")
	last := sent[len(sent)-1]
	if last.Msg.Template == nil || last.Msg.To != samPhone || last.Msg.Recipient != "" {
		t.Fatalf("day 3 not to the number: %s", last.Raw)
	}
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Errorf("%d contacts", n)
	}
}

// A number that already has a contact (opted in, tagged, in a run) and a BSUID
// seen alone first: the message that shows both merges them into the older
// contact, keeping runs, consent and tags.
func TestMergeOnePerson(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.clock.Set(rigStart)
	r.seedContacts(&store.Contact{WaID: samPhone, Name: "Sam", Tags: []string{"vip"}, Consent: store.ConsentIn, ConsentAt: rigStart, CreatedAt: rigStart.Add(-time.Hour)})
	r.sendFrom(who{phone: samPhone}, textMsg("hi").withReferral("ad-1", "Sale"))
	r.sendFrom(sam, textMsg("hi").withReferral("ad-2", "Sale"))
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 2 {
		t.Fatalf("%d contacts before the merge, want 2 (nothing links them yet)", n)
	}
	r.sendFrom(who{phone: samPhone, userID: samID, username: "@sam"}, textMsg("Yes"))
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Fatalf("%d contacts after the merge", n)
	}
	c := r.contact(samID)
	if c.WaID != samPhone || c.UserID != samID || c.Phone != samPhone || !c.HasTag("vip") || c.Consent != store.ConsentIn || c.Username != "@sam" {
		t.Fatalf("merged contact %+v", c)
	}
	if rs := r.runs(samPhone); len(rs) < 2 {
		t.Fatalf("runs of both: %s", describeRuns(rs))
	}
	if n := r.queryInt("SELECT COUNT(*) FROM outbox WHERE contact != ?", samPhone); n != 0 {
		t.Errorf("%d messages left on the old key", n)
	}
	// The old key resolves to the merged contact.
	if c := r.contact(samID); c.WaID != samPhone {
		t.Errorf("old key: %+v", c)
	}
}

// A status names the recipient's BSUID: the phone contact learns it, and a
// later message that carries only the BSUID finds the same contact.
func TestStatusTeachesTheBSUID(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.sendFrom(who{phone: samPhone}, textMsg("hi").withReferral("ad-1", "Sale"))
	it := r.lastOut(samPhone)
	st := statusJSON(it.ProviderID, "delivered", r.now(), engine.CallbackData(it.ID), 0)
	st["recipient_user_id"] = samID
	st["recipient_id"] = samPhone
	raw, _ := json.Marshal(st)
	in := engine.Inbound{WaID: samPhone, UserID: samID, Time: r.now(), Status: raw}
	payload, _ := json.Marshal(in)
	r.enqueue(store.InboxItem{Key: "status:x:delivered", Kind: store.InboxStatus, Contact: samPhone, Payload: payload, ReceivedAt: r.now()})
	r.settle()
	if c := r.contact(samPhone); c.UserID != samID {
		t.Fatalf("BSUID not learned: %+v", c)
	}
	r.sendFrom(sam, textMsg("Yes")) // the number is hidden now
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Fatalf("%d contacts", n)
	}
	if run := r.run(samPhone); run.Step != "day3" {
		t.Errorf("the reply did not resume the run: %s", describeRuns([]*store.Run{run}))
	}
}

// A number change (system message, then a user_id_update) links the new number
// and BSUID to the existing contact.
func TestNumberChangeLinks(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.sendFrom(who{phone: samPhone, userID: samID}, textMsg("hi").withReferral("ad-1", "Sale"))
	const newPhone, newID = "16505550199", "US.99887766554433221100"
	r.sendFrom(who{phone: samPhone, userID: samID}, msg{"type": "system", "system": map[string]any{
		"body": "User Sam changed from " + samPhone + " to " + newPhone, "wa_id": newPhone, "user_id": newID, "type": "user_changed_number"}})
	c := r.contact(newPhone)
	if c.WaID != samPhone || c.Phone != newPhone || c.UserID != newID {
		t.Fatalf("after the number change: %+v", c)
	}
	if run := r.run(samPhone); run.Status != store.RunWaitingReply {
		t.Errorf("a system message is no reply: %s", describeRuns([]*store.Run{run}))
	}
	// user_id_update: the BSUID changes again.
	const newer = "US.55555555555555555555"
	in := engine.Inbound{UserID: newID, NewUserID: newer, Time: r.now()}
	payload, _ := json.Marshal(in)
	r.enqueue(store.InboxItem{Key: "user_id_update:" + newID + ">" + newer, Kind: store.InboxIdentity, Contact: newID, Payload: payload, ReceivedAt: r.now()})
	r.settle()
	r.sendFrom(who{userID: newer}, textMsg("Yes"))
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Fatalf("%d contacts", n)
	}
	if c := r.contact(newer); c.WaID != samPhone || c.UserID != newer {
		t.Fatalf("after user_id_update: %+v", c)
	}
	// The old number still finds the contact (a late webhook).
	if c := r.contact(samPhone); c.WaID != samPhone || c.Phone != newPhone {
		t.Fatalf("by the old number: %+v", c)
	}
	// A late message under the old ids does not undo the change.
	r.sendFrom(who{phone: samPhone, userID: samID}, textMsg("late"))
	if c := r.contact(samID); c.WaID != samPhone || c.Phone != newPhone || c.UserID != newer {
		t.Fatalf("a late message with the old ids changed the contact: %+v", c)
	}
}

// STOP from a contact known only by BSUID records the opt-out and cancels its
// runs, like for anyone.
func TestBSUIDOptOut(t *testing.T) {
	r := newRig(t, []string{identityFlow()})
	r.sendFrom(sam, textMsg("hi").withReferral("ad-1", "Sale"))
	r.sendFrom(sam, textMsg("STOP"))
	c := r.contact(samID)
	if c.Consent != store.ConsentOut {
		t.Fatalf("consent %q", c.Consent)
	}
	if run := r.run(samID); run.Status != store.RunCancelled {
		t.Fatalf("run %+v", run)
	}
}

// A 131062 is a permanent failure with a reason that says what to do.
func TestBSUIDUnsupportedIsPermanent(t *testing.T) {
	r := newRig(t, []string{`flow: code
language: en_US
trigger:
  message: {keywords: [code]}
steps:
  - id: send-code
    send:
      template: reminder
      params: ["x"]
`})
	r.ch.then(apiErr(131062, 400))
	r.sendFrom(sam, textMsg("code"))
	it := r.lastOut(samID)
	if it.Status != store.OutFailed || it.ErrorCode != 131062 || !strings.Contains(it.LastError, "business-scoped user ID") {
		t.Fatalf("outbox %+v", it)
	}
	if n := len(r.ch.sent(samID)); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// An API event may name the contact by BSUID.
func TestEventByUserID(t *testing.T) {
	r := newRig(t, []string{`flow: cart
language: en_US
trigger:
  event: {name: cart_abandoned}
steps:
  - id: remind
    send:
      template: reminder
      params: ["${contact.user_id}"]
`})
	r.sendFrom(sam, textMsg("hello"))
	r.event(samID, "cart_abandoned", nil)
	it := r.lastOut(samID)
	if !strings.Contains(string(it.Payload), `"recipient":"`+samID+`"`) || !strings.Contains(string(it.Payload), `"text":"`+samID+`"`) {
		t.Fatalf("payload %s", it.Payload)
	}
	if n := r.queryInt("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Errorf("%d contacts", n)
	}
}

// Quiet hours of a contact without a time zone or number use its BSUID's
// country (India: one zone).
func TestQuietHoursFromBSUIDCountry(t *testing.T) {
	r := newRig(t, []string{quietFlow(`{from: "21:00", to: "09:00", timezone: contact}`, "2h")})
	r.clock.Set(time.Date(2026, 7, 1, 14, 0, 0, 0, time.UTC)) // 19:30 in Kolkata
	in := who{userID: "IN.1648738043044942"}
	r.sendFrom(in, textMsg("hi"))
	r.advance(2 * time.Hour) // 21:30 in Kolkata: quiet
	if n := len(r.ch.sent(in.userID)); n != 0 {
		t.Fatalf("%d sent during the quiet hours", n)
	}
	r.advance(11*time.Hour + 30*time.Minute) // 09:00 in Kolkata
	if n := len(r.ch.sent(in.userID)); n != 1 {
		t.Fatalf("%d sent at the end of the quiet hours", n)
	}
}

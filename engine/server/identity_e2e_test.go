package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

// A WhatsApp user with a username who hides their number comes from an ad:
// the webhook has no phone number at all. Over real HTTP against the fake
// Graph API: the contextual first reply goes to the BSUID ("recipient"), the
// funnel continues through replies and the day-3 template, STOP opts them out,
// and when they later share their number it joins the same contact. One
// contact throughout, every webhook stored and processed.
func TestUsernameUserFromAdToSharedPhone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const phone = "351912340001"
	uid := r.fake.AddUser(whatsapptest.User{Phone: phone, Username: "@rita", HidePhone: true})

	hooks, hidden := 0, true
	say := func(m whatsapp.InboundMessage) {
		t.Helper()
		body := r.deliver(m)
		if env, err := whatsapp.ParseWebhook(body); err != nil || hidden && env.Entry[0].Changes[0].Value.Messages[0].From != "" {
			t.Fatalf("the fake showed the hidden number: %s", body)
		}
		hooks++
		r.settle()
	}
	tap := func(title string) whatsapp.InboundMessage {
		m := r.message(uid, "", 0)
		m.Type, m.Text = "interactive", nil
		m.Interactive = &whatsapp.InboundInteractive{Type: "button_reply", ButtonReply: &whatsapp.InteractiveReply{ID: title, Title: title}}
		return m
	}

	// From the ad, by BSUID only.
	m := r.message(uid, "Hi! Is this still on?", 0)
	m.Referral = &whatsapp.Referral{SourceID: "120226305854810999", SourceType: "ad", Headline: "Summer sandals -20%", CtwaClid: "ARAk"}
	say(m)
	sent := r.fake.SentTo(uid)
	if len(sent) != 1 || sent[0].To != "" || sent[0].Recipient != uid {
		t.Fatalf("first reply not addressed by recipient: %+v", sent)
	}
	if b := sent[0].Message.Interactive.Body.Text; !strings.Contains(b, "Summer sandals -20%") {
		t.Fatalf("first reply not contextual: %q", b)
	}
	// Its status webhook names the user by BSUID only.
	body, sig, err := r.fake.StatusWebhook(sent[0].ID, "delivered", 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, resp := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
		t.Fatalf("status webhook: %d %s", code, resp)
	}
	hooks++
	r.settle()
	if it := r.outbox(uid); len(it) != 1 || it[0].Status != store.OutDelivered {
		t.Fatalf("status not applied: %+v", it)
	}

	// Replies: yes, and marketing consent.
	say(tap("Yes please"))
	say(tap("Yes, send offers"))
	c, _ := r.st.Contact(ctx, uid)
	if c == nil || c.Consent != store.ConsentIn || c.Phone != "" || c.Username != "@rita" {
		t.Fatalf("after the replies: %+v", c)
	}

	// Day 3: the approved template, to the BSUID, outside the window.
	r.advance(3*24*time.Hour + 13*time.Hour)
	sent = r.fake.SentTo(uid)
	last := sent[len(sent)-1]
	if last.Message.Type != "template" || last.Message.Template.Name != "summer_reminder" || last.Recipient != uid {
		t.Fatalf("day 3: %+v", last)
	}

	// STOP.
	say(r.message(uid, "STOP", 0))
	c, _ = r.st.Contact(ctx, uid)
	runs, _ := r.st.RunsOf(ctx, c.WaID, 10)
	if c.Consent != store.ConsentOut {
		t.Fatalf("consent after STOP: %q", c.Consent)
	}
	for _, run := range runs {
		if run.Live() {
			t.Fatalf("a run survived STOP: %+v", run)
		}
	}
	before := len(r.fake.SentTo(uid))

	// Later they share their number (a REQUEST_CONTACT_INFO button reply).
	card := r.message(uid, "", 0)
	card.Type, card.Text = "contacts", nil
	card.Context = &whatsapp.MessageContext{ID: last.ID}
	card.Contacts = []whatsapp.SharedContact{{Name: whatsapp.SharedContactName{FormattedName: "Rita"},
		Phones: []whatsapp.ContactPhone{{Phone: "+" + phone, WaID: phone, Type: "CELL"}}}}
	say(card)
	byPhone, _ := r.st.Contact(ctx, phone)
	if byPhone == nil || byPhone.WaID != c.WaID || byPhone.Phone != phone || byPhone.UserID != uid || byPhone.Consent != store.ConsentOut {
		t.Fatalf("by phone after sharing: %+v (contact %+v)", byPhone, c)
	}
	// And when they show their number again, the webhook carries both ids: still one contact.
	r.fake.AddUser(whatsapptest.User{Phone: phone, UserID: uid, Username: "@rita"})
	hidden = false
	say(r.message(phone, "hello again", 0))

	// The APIs take any id: the contact by BSUID, number or username; an event by user_id.
	for _, id := range []string{uid, phone, "@rita"} {
		req, _ := http.NewRequest("GET", r.http.URL+"/v1/contacts/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+apiTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v server.ContactView
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || v.Key != c.WaID || v.WaID != phone || v.UserID != uid || !v.HasPhone || v.Username != "@rita" || v.Consent.State != "out" {
			t.Fatalf("GET /v1/contacts/%s: %d %+v %v", id, resp.StatusCode, v, err)
		}
	}
	ev := []byte(`{"name":"order_shipped","user_id":"` + uid + `","payload":{"first_name":"Rita","order_id":"A-7","image_url":"https://example.com/p.jpg","tracking_url":"https://t.example/A-7"}}`)
	if code, resp := r.post("/v1/events", ev, map[string]string{"Authorization": "Bearer " + apiTok}); code != 202 {
		t.Fatalf("event by user_id: %d %s", code, resp)
	}
	hooks++
	for _, bad := range []string{`{"name":"order_shipped","user_id":"16505551234"}`, `{"name":"order_shipped","wa_id":"` + phone + `","user_id":"` + uid + `"}`, `{"name":"order_shipped"}`} {
		if code, _ := r.post("/v1/events", []byte(bad), map[string]string{"Authorization": "Bearer " + apiTok}); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	r.settle()
	// The event found the same contact; it opted out, so nothing goes out.
	out := r.outbox(c.WaID)
	if newest := out[0]; newest.FlowID != "order-shipped" || newest.Status != store.OutOptedOut {
		t.Fatalf("the event's message: %+v", newest)
	}

	st, _ := r.st.Stats(ctx)
	if st.Contacts != 1 {
		t.Fatalf("%d contacts, want one person = one contact", st.Contacts)
	}
	if n := len(r.fake.SentTo(uid)); n != before {
		t.Errorf("%d messages after STOP", n-before)
	}
	// Nothing dropped: every webhook stored once and processed without error.
	db, err := sql.Open("sqlite3", "file:"+r.st.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored, failed int
	db.QueryRow("SELECT COUNT(*), COUNT(*) FILTER (WHERE processed_at IS NULL OR result LIKE 'error%') FROM inbox").Scan(&stored, &failed)
	if stored != hooks || failed != 0 {
		t.Fatalf("inbox: %d stored (want %d), %d unprocessed or failed", stored, hooks, failed)
	}
	if got := testutil.ToFloat64(r.m.Seen131047); got != 0 {
		t.Fatalf("131047 seen %v times", got)
	}
}

package whatsapptest_test

import (
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

// The fake names users as Meta does: a BSUID in every webhook, the number only
// when the user does not hide it; it accepts "recipient" and refuses an
// authentication template to a BSUID with 131062.
func TestUsernameUsers(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{Templates: []whatsapptest.Template{
		{Name: "login_code", Language: "en_US", Category: "AUTHENTICATION", Params: 1},
		{Name: "hello", Language: "en_US", Category: "UTILITY"},
	}})
	// A user with a visible number: both ids everywhere.
	body, _, err := f.TextWebhook(user, "Ana", "hi")
	if err != nil {
		t.Fatal(err)
	}
	ev := oneEvent(t, body)
	if ev.WaID != user || ev.UserID != whatsapptest.BSUIDFor(user) || ev.Message.From != user || ev.Message.FromUserID == "" {
		t.Errorf("visible number: %+v", ev)
	}

	// A user with a username who hides the number.
	uid := f.AddUser(whatsapptest.User{Phone: "351912340001", Username: "@rita", HidePhone: true})
	if !whatsapp.IsBSUID(uid) || uid[:3] != "PT." {
		t.Fatalf("BSUID %q", uid)
	}
	body, _, err = f.TextWebhook(uid, "Rita", "hi")
	if err != nil {
		t.Fatal(err)
	}
	ev = oneEvent(t, body)
	if ev.WaID != "" || ev.Message.From != "" || ev.UserID != uid || ev.Username != "@rita" {
		t.Errorf("hidden number: %+v", ev)
	}
	// The same webhook when the test names the user by number: still hidden.
	body, _, _ = f.TextWebhook("351912340001", "Rita", "hi")
	if ev = oneEvent(t, body); ev.WaID != "" || ev.UserID != uid {
		t.Errorf("by number, hidden: %+v", ev)
	}

	// Sends by recipient.
	res, err := send(t, f, whatsapp.NewText(uid, "hello"))
	if err != nil || res.UserID != uid || res.WaID != "" {
		t.Fatalf("send to BSUID: %+v %v", res, err)
	}
	if s := f.SentTo("351912340001"); len(s) != 1 || s[0].Recipient != uid || s[0].To != "" || s[0].UserID != uid {
		t.Errorf("sent %+v", s)
	}
	_, err = send(t, f, whatsapp.NewTemplate(uid, "login_code", "en_US", whatsapp.BodyParams("123456")))
	wantCode(t, err, whatsapp.CodeBSUIDUnsupported, whatsapp.Permanent)
	if _, err := send(t, f, whatsapp.NewTemplate("351912340001", "login_code", "en_US", whatsapp.BodyParams("123456"))); err != nil {
		t.Errorf("an authentication template to the number: %v", err)
	}

	// Statuses: no recipient_id for a BSUID send of a hidden number; a failed
	// status has no contacts.
	body, _, err = f.StatusWebhook(res.MessageID, "delivered", 0)
	if err != nil {
		t.Fatal(err)
	}
	ev = oneEvent(t, body)
	if ev.Status.RecipientID != "" || ev.Status.RecipientUserID != uid || ev.Username != "@rita" {
		t.Errorf("delivered: %+v %+v", ev, ev.Status)
	}
	body, _, _ = f.StatusWebhook(res.MessageID, "failed", 131026)
	env, _ := whatsapp.ParseWebhook(body)
	if v := env.Entry[0].Changes[0].Value; len(v.Contacts) != 0 || v.Statuses[0].RecipientUserID != uid {
		t.Errorf("failed status: %s", body)
	}

	// A number change gives a new BSUID; the user_id_update webhook says so.
	newID := f.ChangeNumber(uid, "351912340002")
	if newID == uid || !whatsapp.IsBSUID(newID) {
		t.Fatalf("new BSUID %q", newID)
	}
	body, _, err = f.UserIDUpdateWebhook(uid, newID)
	if err != nil {
		t.Fatal(err)
	}
	ev = oneEvent(t, body)
	if ev.Kind != whatsapp.EventIdentity || ev.UserID != uid || ev.Update.UserID != newID || ev.WaID != "" {
		t.Errorf("user_id_update: %+v", ev)
	}
}

func oneEvent(t *testing.T, body []byte) whatsapp.Event {
	t.Helper()
	env, err := whatsapp.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := env.Events()
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	return evs[0]
}

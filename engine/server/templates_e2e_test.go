package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// webhook posts a signed webhook the fake built and expects 200.
func (r *rig) webhook(body []byte, sig string, err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
	if code, resp := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
		r.t.Fatalf("webhook: %d %s", code, resp)
	}
	r.settle()
}

// event posts an API event for a contact and runs the engine.
func (r *rig) event(name, waID, orderID string) {
	r.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"wa_id":%q,"payload":{"first_name":"Ana","order_id":%q,"image_url":"https://example.com/p.jpg","tracking_url":"https://t.example/x"}}`,
		name, waID, orderID)
	if code, resp := r.post("/v1/events", []byte(body), map[string]string{"Authorization": "Bearer " + apiTok}); code != 202 {
		r.t.Fatalf("event: %d %s", code, resp)
	}
	r.settle()
}

func hasAlert(st []string, sub string) bool {
	for _, a := range st {
		if strings.Contains(a, sub) {
			return true
		}
	}
	return false
}

// A template Meta pauses stops going out: queued and new messages are held
// (visible, not failed), an alert is raised, and they go out when Meta
// approves it again.
func TestPausedTemplateHoldsItsMessagesUntilApproved(t *testing.T) {
	r := newRig(t)
	const a, b = "16505557001", "16505557002"
	r.webhook(r.fake.TemplateStatusWebhook("order_shipped", "en_US", "PAUSED", "LOW_QUALITY"))
	r.event("order_shipped", a, "A-1")
	r.event("order_shipped", b, "A-2")
	if n := len(r.fake.Sent()); n != 0 {
		t.Fatalf("%d messages of a paused template reached the API", n)
	}
	for _, c := range []string{a, b} {
		it := r.outbox(c)[0]
		if it.Status != store.OutHeld || it.Template != "order_shipped:en_US" || !strings.Contains(it.LastError, "PAUSED") {
			t.Fatalf("%s: %+v", c, it)
		}
	}
	st := r.status()
	if st.Queues.OutboxHeld != 2 || len(st.Templates) != 1 || !st.Templates[0].Blocked || st.Templates[0].Status != "PAUSED" ||
		st.Templates[0].Since == nil || !hasAlert(st.Alerts, "template order_shipped:en_US is PAUSED since") {
		t.Fatalf("status: %+v", st)
	}
	if g := testutil.ToFloat64(r.m.TemplateBlocked.WithLabelValues("order_shipped:en_US")); g != 1 {
		t.Errorf("funnel_template_blocked = %v", g)
	}
	if n := testutil.ToFloat64(r.m.TemplateHeld); n != 2 {
		t.Errorf("funnel_template_held_total = %v", n)
	}

	r.advance(3 * time.Hour)
	r.webhook(r.fake.TemplateStatusWebhook("order_shipped", "en_US", "APPROVED", "NONE"))
	r.settle()
	if n := len(r.fake.Sent()); n != 2 {
		t.Fatalf("after approval %d sent, want 2", n)
	}
	for _, c := range []string{a, b} {
		if it := r.outbox(c)[0]; it.Status != store.OutSent {
			t.Fatalf("%s: %+v", c, it)
		}
	}
	st = r.status()
	if st.Queues.OutboxHeld != 0 || st.Templates[0].Blocked || hasAlert(st.Alerts, "order_shipped") {
		t.Fatalf("status after approval: %+v", st)
	}
	r.settle() // the gauge follows the next read of the states
	if g := testutil.ToFloat64(r.m.TemplateBlocked.WithLabelValues("order_shipped:en_US")); g != 0 {
		t.Errorf("funnel_template_blocked after approval = %v", g)
	}
}

// Meta paused the template before its webhook arrived: the send answers
// 132015, the message is held (not failed) and the template recorded as
// paused, so the next messages are held without a call.
func TestTemplatePausedAtSendIsHeld(t *testing.T) {
	r := newRig(t)
	r.fake.SetTemplateStatus("order_shipped", "en_US", "PAUSED")
	r.event("order_shipped", "16505557011", "A-1")
	r.event("order_shipped", "16505557012", "A-2")
	if n := len(r.fake.Attempts()); n != 1 {
		t.Fatalf("%d calls, want 1 (the second message is held without one)", n)
	}
	for _, c := range []string{"16505557011", "16505557012"} {
		if it := r.outbox(c)[0]; it.Status != store.OutHeld {
			t.Fatalf("%s: %+v", c, it)
		}
	}
	if it := r.outbox("16505557011")[0]; it.ErrorCode != 132015 {
		t.Errorf("error code %d", it.ErrorCode)
	}
	r.webhook(r.fake.TemplateStatusWebhook("order_shipped", "en_US", "APPROVED", "NONE"))
	r.settle()
	if n := len(r.fake.Sent()); n != 2 {
		t.Fatalf("after approval %d sent, want 2", n)
	}
}

// A free-form message whose fallback is paused, with the window closed, is
// held rather than failed; with the window open it goes out as itself.
func TestPausedFallbackHoldsOnlyWhenNeeded(t *testing.T) {
	r := newRig(t)
	r.webhook(r.fake.TemplateStatusWebhook("summer_reminder", "en_US", "PAUSED", "LOW_QUALITY"))
	r.deliver(r.message("16505557021", "price", 25*time.Hour))
	r.deliver(r.message("16505557022", "price", 0))
	r.settle()
	if it := r.outbox("16505557021")[0]; it.Status != store.OutHeld || it.Template != "summer_reminder:en_US" {
		t.Fatalf("late: %+v", it)
	}
	if it := r.outbox("16505557022")[0]; it.Status != store.OutSent || it.SentAs != "message" {
		t.Fatalf("in the window: %+v", it)
	}
	r.webhook(r.fake.TemplateStatusWebhook("summer_reminder", "en_US", "APPROVED", "NONE"))
	r.settle()
	if it := r.outbox("16505557021")[0]; it.Status != store.OutSent || it.SentAs != "fallback" {
		t.Fatalf("late after approval: %+v", it)
	}
}

// A UTILITY template recategorised as MARKETING needs the contact's opt-in
// from that moment: the consent check uses the new category at once.
func TestCategoryChangeTakesEffectForConsent(t *testing.T) {
	r := newRig(t)
	r.event("parcel_update", "16505557031", "A-1")
	if it := r.outbox("16505557031")[0]; it.Status != store.OutSent {
		t.Fatalf("UTILITY without opt-in: %+v", it)
	}
	r.webhook(r.fake.TemplateCategoryWebhook("order_shipped", "en_US", "UTILITY", "MARKETING"))
	r.event("parcel_update", "16505557032", "A-2")
	it := r.outbox("16505557032")[0]
	if it.Status != store.OutNoConsent {
		t.Fatalf("MARKETING now, no opt-in: %+v", it)
	}
	if n := len(r.fake.SentTo("16505557032")); n != 0 {
		t.Fatalf("sent %d", n)
	}
	st := r.status()
	if len(st.Templates) != 1 || st.Templates[0].Category != "MARKETING" {
		t.Fatalf("status: %+v", st.Templates)
	}
}

// Template quality and phone number quality are recorded and alerted; a
// redelivered webhook is stored once, and an older one changes nothing.
func TestQualityUpdatesInStatus(t *testing.T) {
	r := newRig(t)
	body, sig, err := r.fake.TemplateQualityWebhook("summer_reminder", "en_US", "GREEN", "RED")
	r.webhook(body, sig, err)
	r.webhook(body, sig, err)
	r.advance(time.Minute)
	r.webhook(r.fake.PhoneQualityWebhook("DOWNGRADE", "TIER_1K", "TIER_10K", "2000"))
	st := r.status()
	if len(st.Templates) != 1 || st.Templates[0].Quality != "RED" || st.Templates[0].Blocked ||
		!hasAlert(st.Alerts, "template summer_reminder:en_US has a RED quality rating") {
		t.Fatalf("template quality: %+v %v", st.Templates, st.Alerts)
	}
	if len(st.PhoneNumbers) != 1 || st.PhoneNumbers[0].CurrentLimit != "TIER_1K" || st.PhoneNumbers[0].MaxDailyPerBusiness != "2000" ||
		!hasAlert(st.Alerts, "moved down to messaging limit TIER_1K from TIER_10K") {
		t.Fatalf("phone: %+v %v", st.PhoneNumbers, st.Alerts)
	}
	if n := testutil.ToFloat64(r.m.PhoneQuality.WithLabelValues("DOWNGRADE")); n != 1 {
		t.Errorf("funnel_phone_quality_updates_total = %v", n)
	}
	if n := testutil.ToFloat64(r.m.Inbox.WithLabelValues(store.InboxAccount, "account")); n != 2 {
		t.Errorf("account events processed %v, want 2 (the redelivery is dropped)", n)
	}
	ps, _ := r.st.PhoneQualities(context.Background())
	if len(ps) != 1 || ps[0].Event != "DOWNGRADE" {
		t.Fatalf("%+v", ps)
	}
}

package whatsapp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func accounts(t *testing.T, file string) []AccountUpdate {
	t.Helper()
	env, err := ParseWebhook(readTestdata(t, file))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := env.Events()
	if err != nil || len(evs) != 0 {
		t.Fatalf("account webhook gave message events %v, %v", evs, err)
	}
	us, err := env.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func TestAccountUpdates(t *testing.T) {
	us := accounts(t, "template_status_paused.json")
	if len(us) != 2 {
		t.Fatalf("%d updates", len(us))
	}
	p, d := us[0], us[1]
	if p.Field != FieldTemplateStatus || p.Template.Key() != "summer_reminder:en_US" || p.Template.Event != "PAUSED" ||
		p.Template.Reason != "LOW_QUALITY" || p.Template.ID != "594425479261596" || p.WABAID != "102290129340398" ||
		!p.Time.Equal(time.Unix(1739321030, 0)) {
		t.Errorf("paused: %+v %+v", p, p.Template)
	}
	if d.Template.Event != "DISABLED" || d.Template.DisableInfo == nil || d.Template.DisableInfo.DisableDate != "1739407430" {
		t.Errorf("disabled: %+v", d.Template)
	}
	if p.Key() == d.Key() || !strings.HasPrefix(p.Key(), "account:message_template_status_update:summer_reminder:en_US:PAUSED:") {
		t.Errorf("keys %q %q", p.Key(), d.Key())
	}

	us = accounts(t, "template_category_update.json")
	if len(us) != 2 || us[0].Template.PreviousCategory != "UTILITY" || us[0].Template.NewCategory != "MARKETING" ||
		us[1].Template.CorrectCategory != "MARKETING" || us[1].Template.CategoryUpdateTimestamp != "1739925890" {
		t.Errorf("category: %+v %+v", us[0].Template, us[1].Template)
	}

	us = accounts(t, "template_quality_update.json")
	if len(us) != 1 || us[0].Template.NewQualityScore != "RED" || us[0].Template.PreviousQualityScore != "GREEN" {
		t.Errorf("quality: %+v", us[0].Template)
	}

	us = accounts(t, "phone_number_quality_update.json")
	if len(us) != 1 || us[0].Phone == nil {
		t.Fatalf("phone: %+v", us)
	}
	ph := us[0].Phone
	if ph.Event != "DOWNGRADE" || ph.OldLimit != "TIER_10K" || ph.CurrentLimit != "TIER_1K" || ph.MaxDailyConversationsPerBusiness != "2000" ||
		TierLimit(ph.CurrentLimit) != 1000 {
		t.Errorf("phone: %+v", ph)
	}

	// The batch sample's status update (no entry time) is refused, the
	// messages beside it are not affected.
	env, err := ParseWebhook(readTestdata(t, "batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Events(); err != nil {
		t.Fatal(err)
	}
	if us, err := env.Accounts(); len(us) != 0 || err == nil || !strings.Contains(err.Error(), "missing entry time") {
		t.Errorf("batch: %v %v", us, err)
	}
}

func TestAccountUpdatesRejects(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"name", `{"event":"PAUSED","message_template_name":"Bad Name","message_template_language":"en_US"}`, "bad message_template_name"},
		{"language", `{"event":"PAUSED","message_template_name":"a","message_template_language":"en US; drop"}`, "bad message_template_language"},
		{"event", `{"event":"paused now","message_template_name":"a","message_template_language":"en_US"}`, "bad event"},
		{"no event", `{"message_template_name":"a","message_template_language":"en_US"}`, "bad event"},
		{"id", `{"event":"PAUSED","message_template_id":"12a","message_template_name":"a","message_template_language":"en"}`, "bad message_template_id"},
		{"id type", `{"event":"PAUSED","message_template_id":true,"message_template_name":"a","message_template_language":"en"}`, "want a string or a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"object":"whatsapp_business_account","entry":[{"id":"1","time":1739321030,"changes":[` +
				`{"field":"message_template_status_update","value":` + tt.value + `},` +
				`{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_name":"ok","message_template_language":"en_US"}}]}]}`
			env, err := ParseWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			us, err := env.Accounts()
			var ee *EventError
			if err == nil || !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if len(us) != 1 || us[0].Template.Name != "ok" {
				t.Errorf("the good update beside it: %+v", us)
			}
		})
	}
	env, _ := ParseWebhook([]byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","time":5,"changes":[{"field":"phone_number_quality_update","value":{"display_phone_number":"x","event":"FLAGGED"}}]}]}`))
	if _, err := env.Accounts(); err == nil || !strings.Contains(err.Error(), "bad display_phone_number") {
		t.Errorf("phone: %v", err)
	}
}

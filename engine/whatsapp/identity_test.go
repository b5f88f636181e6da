package whatsapp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestIsBSUID(t *testing.T) {
	for _, tc := range []struct {
		id            string
		bsuid, parent bool
		country       string
	}{
		{"US.13491208655302741918", true, false, "US"},
		{"US.ENT.11815799212886844830", true, true, "US"},
		{"BR.1502576394655843", true, false, "BR"},
		{"PT.abcDEF123", true, false, "PT"},
		{"16505551234", false, false, ""},
		{"+1 650 555 1234", false, false, ""},
		{"us.123", false, false, ""},
		{"USA.123", false, false, ""},
		{"US.", false, false, ""},
		{"US.ENT.", false, false, ""},
		{"US.12-34", false, false, ""},
		{"US." + strings.Repeat("9", 128), true, false, "US"},
		{"US." + strings.Repeat("9", 129), false, false, ""},
		{"", false, false, ""},
	} {
		if got := IsBSUID(tc.id); got != tc.bsuid {
			t.Errorf("IsBSUID(%q) = %v", tc.id, got)
		}
		if got := IsParentBSUID(tc.id); got != tc.parent {
			t.Errorf("IsParentBSUID(%q) = %v", tc.id, got)
		}
		if got := BSUIDCountry(tc.id); got != tc.country {
			t.Errorf("BSUIDCountry(%q) = %q", tc.id, got)
		}
	}
}

func TestWebhookIdentities(t *testing.T) {
	t.Run("username without phone", func(t *testing.T) {
		e := one(t, parseEvents(t, "username_referral.json"), EventMessage)
		want(t, e.WaID, "")
		want(t, e.UserID, "US.13491208655302741918")
		want(t, e.ParentUserID, "US.ENT.11815799212886844830")
		want(t, e.Username, "@sheena")
		want(t, e.ContactName, "Sheena Nelson")
		if e.Message.Referral == nil || e.Message.Referral.SourceID != "120226305854810726" {
			t.Errorf("referral lost: %+v", e.Message.Referral)
		}
	})
	t.Run("statuses to a BSUID", func(t *testing.T) {
		evs := parseEvents(t, "username_statuses.json")
		if len(evs) != 2 {
			t.Fatalf("%d events, want 2", len(evs))
		}
		for _, e := range evs {
			want(t, e.WaID, "")
			want(t, e.UserID, "US.13491208655302741918")
		}
		want(t, evs[0].Username, "@sheena")
		if c := evs[1].Status.Errors; len(c) != 1 || c[0].Code != CodeBSUIDUnsupported {
			t.Errorf("failed status errors %+v", c)
		}
		if ClassifyCode(CodeBSUIDUnsupported, 400) != Permanent {
			t.Error("131062 is not permanent")
		}
	})
	t.Run("number change", func(t *testing.T) {
		evs := parseEvents(t, "user_changed_number.json")
		if len(evs) != 2 {
			t.Fatalf("%d events, want 2", len(evs))
		}
		sys := evs[0]
		want(t, sys.WaID, "16505551234")
		want(t, sys.UserID, "US.13491208655302741918")
		if s := sys.Message.System; s == nil || s.Type != SystemUserChangedNumber || s.WaID != "12195555358" || s.UserID != "US.99887766554433221100" {
			t.Errorf("system %+v", s)
		}
		up := evs[1]
		if up.Kind != EventIdentity || up.Update == nil {
			t.Fatalf("second event %+v", up)
		}
		want(t, up.UserID, "US.13491208655302741918")
		want(t, up.Update.UserID, "US.99887766554433221100")
		want(t, up.WaID, "12195555358")
		want(t, up.Key(), "user_id_update:US.13491208655302741918>US.99887766554433221100")
	})
}

// A message is dropped only when it names no user at all; any one id keeps it.
func TestWebhookSender(t *testing.T) {
	for _, tc := range []struct {
		name     string
		value    string
		wantErr  bool
		wa, user string
	}{
		{"from only", `"messages":[{"from":"16505551234","id":"w1","timestamp":"1739321024","type":"text","text":{"body":"hi"}}]`, false, "16505551234", ""},
		{"from_user_id only", `"messages":[{"from_user_id":"US.1","id":"w1","timestamp":"1739321024","type":"text","text":{"body":"hi"}}]`, false, "", "US.1"},
		{"contact only", `"contacts":[{"profile":{"name":"A"},"user_id":"US.2"}],"messages":[{"id":"w1","timestamp":"1739321024","type":"text","text":{"body":"hi"}}]`, false, "", "US.2"},
		{"contact completes from", `"contacts":[{"profile":{"name":"A"},"wa_id":"16505551234","user_id":"US.3"}],"messages":[{"from":"16505551234","id":"w1","timestamp":"1739321024","type":"text","text":{"body":"hi"}}]`, false, "16505551234", "US.3"},
		{"nobody", `"messages":[{"id":"w1","timestamp":"1739321024","type":"text","text":{"body":"hi"}}]`, true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},` + tc.value + `}}]}]}`
			env, err := ParseWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := env.Events()
			var ee *EventError
			if tc.wantErr {
				if !errors.As(err, &ee) || len(evs) != 0 {
					t.Fatalf("want a dropped message with an error, got %v, %d events", err, len(evs))
				}
				return
			}
			if err != nil || len(evs) != 1 {
				t.Fatalf("err %v, %d events", err, len(evs))
			}
			want(t, evs[0].WaID, tc.wa)
			want(t, evs[0].UserID, tc.user)
		})
	}
}

func TestMessageAddress(t *testing.T) {
	m := NewText("US.13491208655302741918", "hi")
	b, _ := json.Marshal(m)
	if !strings.Contains(string(b), `"recipient":"US.13491208655302741918"`) || strings.Contains(string(b), `"to"`) {
		t.Errorf("BSUID not in recipient: %s", b)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	m.SetAddress("16505551234")
	b, _ = json.Marshal(m)
	if !strings.Contains(string(b), `"to":"16505551234"`) || strings.Contains(string(b), `"recipient"`) {
		t.Errorf("phone not in to: %s", b)
	}
	m.To, m.Recipient = "", ""
	if err := m.Validate(); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("no address: %v", err)
	}
	m.Recipient = "not-a-bsuid"
	if err := m.Validate(); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("bad recipient: %v", err)
	}
}

package whatsapp

import (
	"errors"
	"strings"
	"testing"
)

// Identifiers in a signed webhook are still checked: a contact key, a
// deduplication key and a request path are built from them.
func TestEventsRefuseBadIdentifiers(t *testing.T) {
	const good = `{"from":"16505551234","id":"wamid.ok","timestamp":"1739321024","type":"text","text":{"body":"hi"}}`
	msg := func(from, id string) string {
		return `{"from":"` + from + `","id":"` + id + `","timestamp":"1739321024","type":"text","text":{"body":"x"}}`
	}
	long := strings.Repeat("1", 500_000)
	for _, tc := range []struct {
		name, phoneID, message, status, wantErr string
	}{
		{"long from", "106540352242922", msg(long, "wamid.a"), "", "bad from"},
		{"letters in from", "106540352242922", msg("+1650555123", "wamid.a"), "", "bad from"},
		{"short from", "106540352242922", msg("1234", "wamid.a"), "", "bad from"},
		{"long id", "106540352242922", msg("16505551234", "wamid."+strings.Repeat("A", 300)), "", "bad id"},
		{"id with spaces", "106540352242922", msg("16505551234", "wamid. x"), "", "bad id"},
		{"phone number id ..", "..", msg("16505551234", "wamid.a"), "", "bad metadata.phone_number_id"},
		{"phone number id with a slash", "1/2", msg("16505551234", "wamid.a"), "", "bad metadata.phone_number_id"},
		{"status of 10,000 characters", "106540352242922", "", `{"id":"wamid.s","status":"` + strings.Repeat("x", 10000) + `","timestamp":"1739321024","recipient_id":"16505551234"}`, "bad status"},
		{"status for a bad recipient", "106540352242922", "", `{"id":"wamid.s","status":"sent","timestamp":"1739321024","recipient_id":"` + long + `"}`, "bad recipient_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs, sts []string
			if tc.message != "" {
				msgs = append(msgs, tc.message)
			}
			if tc.status != "" {
				sts = append(sts, tc.status)
			}
			body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[` +
				`{"field":"messages","value":{"metadata":{"phone_number_id":"` + tc.phoneID + `"},"messages":[` + strings.Join(msgs, ",") + `],"statuses":[` + strings.Join(sts, ",") + `]}},` +
				`{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[` + good + `]}}]}]}`
			env, err := ParseWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := env.Events()
			if len(evs) != 1 || evs[0].Message.ID != "wamid.ok" {
				t.Fatalf("want only the good message beside the bad item, got %d events", len(evs))
			}
			var ee *EventError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if len(err.Error()) > 400 {
				t.Errorf("the error repeats the hostile value: %d bytes", len(err.Error()))
			}
		})
	}
}

func TestValidIDs(t *testing.T) {
	for s, want := range map[string]bool{"16505551234": true, "12345": true, "1234": false, "+16505551234": false,
		"1650555123456789012345": false, "": false, "16505 51234": false} {
		if got := ValidWaID(s); got != want {
			t.Errorf("ValidWaID(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"106540352242922": true, "1": true, "..": false, "": false, "sandbox": false,
		strings.Repeat("9", 33): false} {
		if got := ValidObjectID(s); got != want {
			t.Errorf("ValidObjectID(%q) = %v", s, got)
		}
	}
}

// A phone number id goes into the request path: one that is not a Graph id is
// refused before any request leaves.
func TestSendRefusesAPathInThePhoneNumberID(t *testing.T) {
	c := &Client{BaseURL: "http://127.0.0.1:1/v23.0", Token: "t"}
	for _, id := range []string{"..", "../../me", "1?x=", "1/2"} {
		_, err := c.Send(t.Context(), id, NewText("16505551234", "x"))
		if !errors.Is(err, ErrInvalidMessage) || Classify(err) != Permanent {
			t.Errorf("%q: %v (%v)", id, err, Classify(err))
		}
	}
}

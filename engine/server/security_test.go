package server_test

import (
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/engine/server"
)

// An Idempotency-Key is scoped to (event name, contact): reusing one for
// another contact starts that contact's flow, and only a true retry is dropped.
func TestIdempotencyKeyIsScopedToEventAndContact(t *testing.T) {
	r := newRig(t)
	post := func(waID, key string) {
		t.Helper()
		body := []byte(`{"name":"order_shipped","wa_id":"` + waID + `","payload":{"first_name":"Ana","order_id":"A-1","image_url":"https://example.com/p.jpg","tracking_url":"https://t.example/A-1"}}`)
		if code, resp := r.post("/v1/events", body, map[string]string{"Authorization": "Bearer " + apiTok, "Idempotency-Key": key}); code != 202 {
			t.Fatalf("event for %s: %d %s", waID, code, resp)
		}
	}
	post("16505550101", "batch-7")
	post("16505550101", "batch-7") // a retry: dropped
	post("16505550202", "batch-7") // another contact, same key: a new event
	r.settle()
	for waID, want := range map[string]int{"16505550101": 1, "16505550202": 1} {
		if got := len(r.fake.SentTo(waID)); got != want {
			t.Errorf("%s: %d messages sent, want %d", waID, got, want)
		}
	}
}

func TestCheckAPIToken(t *testing.T) {
	for tok, ok := range map[string]bool{
		"":                                  true, // the API is off
		"api-secret-token":                  false,
		strings.Repeat("x", 31):             false,
		strings.Repeat("x", 32):             true,
		strings.Repeat("é", 32):             true,
		"0123456789abcdef0123456789abcdef0": true,
	} {
		if err := server.CheckAPIToken(tok); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", tok, err, ok)
		}
	}
}

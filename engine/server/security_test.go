package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
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

// withServer puts a second server with cfg over the rig's engine (the
// secrets and body limit of the rig's unless set) and returns its URL.
func (r *rig) withServer(cfg server.Config) (string, *prometheus.Registry) {
	r.t.Helper()
	if cfg.AppSecret == "" {
		cfg.AppSecret = r.fake.AppSecret()
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	reg := prometheus.NewRegistry()
	srv := server.New(cfg, r.eng, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	r.t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL, reg
}

func postTo(t *testing.T, url string, body []byte, sig string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/webhook", bytes.NewReader(body))
	req.Header.Set(whatsapp.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// Only the configured phone numbers are served: a signed webhook for another
// number of the app is acknowledged (Meta would retry anything else), counted,
// and nothing of it is stored or answered.
func TestWebhookForAnotherPhoneNumberIsDropped(t *testing.T) {
	r := newRig(t)
	url, reg := r.withServer(server.Config{PhoneNumberIDs: []string{phoneID}})
	other, _, _ := r.fake.InboundWebhook("199999999999999", "Eve", r.message("16505550301", "menu", 0))
	if code, _ := postTo(t, url, other, whatsapp.Sign(r.fake.AppSecret(), other)); code != 200 {
		t.Fatalf("webhook for another number: %d, want 200", code)
	}
	ours, _, _ := r.fake.InboundWebhook(phoneID, "Ana", r.message("16505550302", "menu", 0))
	if code, _ := postTo(t, url, ours, whatsapp.Sign(r.fake.AppSecret(), ours)); code != 200 {
		t.Fatalf("webhook for our number: %d", code)
	}
	r.settle()
	if c, _ := r.st.Contact(context.Background(), "16505550301"); c != nil {
		t.Fatal("a message to another phone number id made a contact")
	}
	if n := len(r.fake.SentTo("16505550301")); n != 0 {
		t.Fatalf("%d replies went out for a number this daemon does not serve", n)
	}
	if n := len(r.fake.SentTo("16505550302")); n != 1 {
		t.Fatalf("our number's message got %d replies, want 1", n)
	}
	if got := metricValue(t, reg, "funnel_webhook_items_dropped_total", "other_phone_number"); got != 1 {
		t.Fatalf("dropped{other_phone_number} = %v, want 1", got)
	}
}

// Webhook bodies are read before their signature can be checked: past
// MaxConcurrentBodies, a POST is answered 503 at once instead of being read,
// and the bound frees as soon as the stalled uploads go away.
func TestWebhookBodyReadsAreBounded(t *testing.T) {
	r := newRig(t)
	url, reg := r.withServer(server.Config{MaxConcurrentBodies: 2})
	host := strings.TrimPrefix(url, "http://")
	var stalled []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers and half of the announced body, then nothing.
		fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n%s", strings.Repeat("x", 30000))
		stalled = append(stalled, c)
	}
	// Both stalled uploads are being read once the server counts them busy
	// for a third; poll until then (no wall-clock assertion).
	body, _, _ := r.fake.InboundWebhook(phoneID, "Ana", r.message("16505550401", "menu", 0))
	sig := whatsapp.Sign(r.fake.AppSecret(), body)
	var code int
	var h http.Header
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if code, h = postTo(t, url, body, sig); code == 503 {
			break
		}
		// The stalled reads may not have started yet: a 200 here stored the
		// message, which a later delivery deduplicates.
		time.Sleep(10 * time.Millisecond)
	}
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("a third body while two are being read: %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if got := metricValue(t, reg, "funnel_webhooks_total", "busy"); got < 1 {
		t.Fatalf("webhooks{busy} = %v", got)
	}
	for _, c := range stalled {
		c.Close()
	}
	ok := false
	for deadline := time.Now().Add(30 * time.Second); !ok && time.Now().Before(deadline); {
		code, _ = postTo(t, url, body, sig)
		ok = code == 200
		if !ok {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatalf("after the stalled uploads closed: %d, want 200", code)
	}
	// A body announced over the limit is refused before it is read.
	big := []byte(strings.Repeat("x", 65<<10))
	if code, _ := postTo(t, url, big, whatsapp.Sign(r.fake.AppSecret(), big)); code != 413 {
		t.Fatalf("oversized body: %d", code)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

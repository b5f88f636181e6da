package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

func (r *rig) get(path string, header map[string]string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.http.URL+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *rig) status() server.Status {
	r.t.Helper()
	code, body := r.get("/v1/status", map[string]string{"Authorization": "Bearer " + apiTok})
	if code != 200 {
		r.t.Fatalf("/v1/status: %d %s", code, body)
	}
	var st server.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		r.t.Fatal(err)
	}
	return st
}

// TestReadyWhileSenderStoppedOrBacklogged: a stopped sender and unprocessed
// events are alerts in /v1/status, and /readyz stays 200 so the load balancer
// keeps sending Meta's webhooks (statuses, STOPs) to the only replica.
func TestReadyWhileSenderStoppedOrBacklogged(t *testing.T) {
	r := newRig(t)
	if code, body := r.get("/readyz", nil); code != 200 {
		t.Fatalf("/readyz at start: %d %s", code, body)
	}
	if st := r.status(); !st.Ready || st.Sender.State != "sending" || len(st.Alerts) != 0 || st.Flows == 0 {
		t.Fatalf("status at start: %+v", st)
	}
	r.fake.SetTokenExpired(true)
	r.deliver(r.message("16505550001", "menu", 0))
	r.settle()
	if r.eng.Paused() == "" {
		t.Fatal("an expired token should stop the sender")
	}
	// Unprocessed events: stored, not processed by the (stepped) engine.
	r.deliver(r.message("16505550002", "menu", 0), r.message("16505550003", "menu", 0))
	if code, body := r.get("/readyz", nil); code != 200 || strings.Contains(body, "sender") {
		t.Fatalf("/readyz with the sender stopped and a backlog: %d %s, want 200", code, body)
	}
	st := r.status()
	if st.Sender.State != "stopped" || !strings.Contains(st.Sender.Reason, "190") {
		t.Errorf("sender %+v, want stopped by 190", st.Sender)
	}
	if st.Queues.InboxPending != 2 || st.Queues.Limit != server.DepthLimit || st.Queues.OutboxPending == 0 {
		t.Errorf("queues %+v, want 2 unprocessed events and the message waiting", st.Queues)
	}
	if len(st.Alerts) != 1 || !strings.HasPrefix(st.Alerts[0], "sender stopped: error 190") {
		t.Errorf("alerts %q", st.Alerts)
	}
	if code, _ := r.get("/v1/status", nil); code != 401 {
		t.Errorf("/v1/status without the API token: %d, want 401", code)
	}
}

// TestWebhookAfterCloseIs503: a request still running when the daemon closed
// the server (its shutdown timed out) is refused with a 503 (Meta retries) and
// /readyz says the process is stopping; nothing panics.
func TestWebhookAfterCloseIs503(t *testing.T) {
	r := newRig(t)
	r.srv.Close()
	body, sig, err := r.fake.InboundWebhook(phoneID, "Ana", r.message("16505550001", "menu", 0))
	if err != nil {
		t.Fatal(err)
	}
	if code, resp := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 503 {
		t.Fatalf("webhook after Close: %d %s, want 503", code, resp)
	}
	if code, body := r.get("/readyz", nil); code != 503 || !strings.Contains(body, "stopping") {
		t.Fatalf("/readyz after Close: %d %s", code, body)
	}
}

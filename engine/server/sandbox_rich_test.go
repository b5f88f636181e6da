package server_test

import (
	"path/filepath"
	"testing"
)

// lastOut is the transcript's last message from the business.
func lastOut(t *testing.T, state map[string]any) map[string]any {
	t.Helper()
	ms := state["messages"].([]any)
	for i := len(ms) - 1; i >= 0; i-- {
		if m := ms[i].(map[string]any); m["direction"] == "out" {
			return m
		}
	}
	t.Fatalf("nothing sent: %v", lines(state))
	return nil
}

// The sandbox shows a call-to-action button as a link with its label and the
// address it opens, rendered for this contact.
func TestSandboxShowsCTAURL(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana", "text": "menu"})
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana",
		"choice": map[string]string{"kind": "list_reply", "id": "sale", "title": "Summer sale"}})
	m := lastOut(t, out)
	link, _ := m["link"].(map[string]any)
	if m["status"] != "sent" || link == nil || link["title"] != "Open the shop" ||
		link["url"] != "https://example.com/sale?utm_source=whatsapp&c="+ana {
		t.Fatalf("the cta_url message: %v", m)
	}
	if m["text"] != "Everything on sale is in the online shop." {
		t.Errorf("text %q", m["text"])
	}
}

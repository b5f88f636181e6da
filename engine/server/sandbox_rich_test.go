package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
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

// The sandbox offers a form message's fields (from its Flow JSON) to fill in,
// and a filled-in form answers it as Meta's nfm_reply would.
func TestSandboxFillsAForm(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana", "text": "menu"})
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana",
		"choice": map[string]string{"kind": "list_reply", "id": "club", "title": "Join the club"}})
	m := lastOut(t, out)
	form, _ := m["form"].(map[string]any)
	if form == nil || form["kind"] != "form" || form["cta"] != "Join the club" || form["screen"] != "SIGN_UP" {
		t.Fatalf("the form message: %v", m)
	}
	var fields []string
	for _, f := range form["fields"].([]any) {
		f := f.(map[string]any)
		fields = append(fields, fmt.Sprintf("%s:%s", f["name"], f["type"]))
	}
	if got := strings.Join(fields, " "); got != "first_name:string marketing:boolean size:string source:string topics:list" {
		t.Errorf("fields %s", got)
	}
	out = r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana",
		"form": map[string]any{"first_name": "Ana", "size": "40", "topics": []string{"new"}, "marketing": false, "source": "summer_club"}})
	if m := lastOut(t, out); m["text"] != "Welcome to the club, Ana! Size 40 noted." {
		t.Fatalf("after the form: %v", lines(out))
	}
	ms := out["messages"].([]any)
	in := ms[len(ms)-2].(map[string]any)
	if in["direction"] != "in" || in["type"] != "form" || !strings.HasPrefix(in["text"].(string), "form: first_name=Ana, marketing=false, size=40") {
		t.Errorf("the form as the transcript shows it: %v", in)
	}
	if code, res, _ := r.call("POST", "/sandbox/api/inbound", map[string]any{"wa_id": ana,
		"location": map[string]any{"latitude": 91, "longitude": 0}}, nil); code != 400 || !strings.Contains(fmt.Sprint(res["error"]), "latitude") {
		t.Errorf("a latitude of 91: %d %v", code, res)
	}
}

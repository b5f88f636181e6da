package server_test

import (
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// tap builds an inbound list-row or button tap.
func (r *rig) tap(from, kind, id, title string) whatsapp.InboundMessage {
	m := r.message(from, "", 0)
	m.Type, m.Text = "interactive", nil
	reply := &whatsapp.InteractiveReply{ID: id, Title: title}
	m.Interactive = &whatsapp.InboundInteractive{Type: kind}
	if kind == "list_reply" {
		m.Interactive.ListReply = reply
	} else {
		m.Interactive.ButtonReply = reply
	}
	return m
}

// The menu's sale branch ends with a call-to-action URL button: over real
// HTTP, the fake Graph API (which checks Meta's cta_url shape) takes it with
// the contact's number in the URL.
func TestCTAURLOverHTTP(t *testing.T) {
	r := newRig(t)
	const ana = "16505550111"
	r.deliver(r.message(ana, "menu", 0))
	r.settle()
	r.deliver(r.tap(ana, "list_reply", "sale", "Summer sale"))
	r.settle()
	sent := r.fake.SentTo(ana)
	if len(sent) != 3 {
		t.Fatalf("want list, image, cta_url; got %d messages", len(sent))
	}
	in := sent[2].Message.Interactive
	if in == nil || in.Type != whatsapp.InteractiveCTAURL || in.Action.Name != "cta_url" || in.Action.Parameters == nil {
		t.Fatalf("third message is not a cta_url: %s", sent[2].Body)
	}
	p := in.Action.Parameters
	if p.DisplayText != "Open the shop" || p.URL != "https://example.com/sale?utm_source=whatsapp&c="+ana {
		t.Errorf("button %q opens %q", p.DisplayText, p.URL)
	}
	if in.Footer == nil || in.Footer.Text != "Code SUMMER20 at checkout" {
		t.Errorf("footer %+v", in.Footer)
	}
	for _, a := range r.fake.Attempts() {
		if a.HTTPStatus != 200 {
			t.Errorf("the fake refused a message: %+v", a)
		}
	}
}

package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
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

// The menu's club row sends a form (a flow message, as the fake checks it):
// the completed form (an nfm_reply) resumes the run with reply.form, whose
// size is stored on the contact and whose OptIn records consent.
func TestFormOverHTTP(t *testing.T) {
	r := newRig(t)
	const ana = "16505550112"
	r.deliver(r.message(ana, "menu", 0))
	r.settle()
	r.deliver(r.tap(ana, "list_reply", "club", "Join the club"))
	r.settle()
	sent := r.fake.SentTo(ana)
	if len(sent) != 2 {
		t.Fatalf("want the list and the form; got %d messages", len(sent))
	}
	in := sent[1].Message.Interactive
	if in == nil || in.Type != whatsapp.InteractiveFlow || in.Action.Parameters == nil {
		t.Fatalf("second message is not a flow message: %s", sent[1].Body)
	}
	p := in.Action.Parameters
	if p.FlowID != "1190462231784503" || p.FlowCTA != "Join the club" || p.FlowMessageVersion != "3" ||
		p.FlowActionPayload == nil || p.FlowActionPayload.Screen != "SIGN_UP" || string(p.FlowActionPayload.Data) != `{"first_name":"Ana"}` {
		t.Fatalf("flow parameters: %s", sent[1].Body)
	}
	if p.FlowToken == "" || p.FlowToken != sent[1].Message.BizOpaqueCallbackData {
		t.Errorf("flow_token %q should name the message (%q)", p.FlowToken, sent[1].Message.BizOpaqueCallbackData)
	}
	done := r.message(ana, "", 0)
	done.Type, done.Text = "interactive", nil
	done.Context = &whatsapp.MessageContext{ID: sent[1].ID}
	done.Interactive = &whatsapp.InboundInteractive{Type: "nfm_reply", NFMReply: &whatsapp.NFMReply{Name: "flow", Body: "Sent",
		ResponseJSON: `{"flow_token":"` + p.FlowToken + `","first_name":"Ana","size":"38","topics":["sale"],"marketing":true,"source":"summer_club"}`}}
	r.deliver(done)
	r.settle()
	sent = r.fake.SentTo(ana)
	if len(sent) != 3 || sent[2].Message.Text == nil || sent[2].Message.Text.Body != "Welcome to the club, Ana! Size 38 noted." {
		t.Fatalf("the form's fields should reach the thanks: %+v", sent[len(sent)-1].Message.Text)
	}
	c, err := r.st.Contact(context.Background(), ana)
	if err != nil || c == nil {
		t.Fatal(err)
	}
	if c.Consent != store.ConsentIn || fmt.Sprint(c.Attributes["shoe_size"]) != "38" {
		t.Errorf("contact after the form: consent %q, attributes %v", c.Consent, c.Attributes)
	}
}

// A location request goes out in Meta's shape; the location the contact
// shares is read as reply.location.
func TestLocationRequestOverHTTP(t *testing.T) {
	r := newRig(t)
	const ana = "16505550113"
	r.deliver(r.message(ana, "deliver", 0))
	r.settle()
	sent := r.fake.SentTo(ana)
	if len(sent) != 1 || sent[0].Message.Interactive == nil || sent[0].Message.Interactive.Type != whatsapp.InteractiveLocationRequest ||
		sent[0].Message.Interactive.Action.Name != "send_location" || sent[0].Message.Interactive.Body.Text != "Where should we deliver, Ana?" {
		t.Fatalf("location request: %+v", sent)
	}
	loc := r.message(ana, "", 0)
	loc.Type, loc.Text = "location", nil
	loc.Location = &whatsapp.Location{Latitude: 38.7223, Longitude: -9.1393, Name: "Home", Address: "Rua Augusta 1, Lisboa"}
	r.deliver(loc)
	r.settle()
	sent = r.fake.SentTo(ana)
	if want := "Delivering to Home, Rua Augusta 1, Lisboa (38.7223, -9.1393)."; len(sent) != 2 || sent[1].Message.Text == nil || sent[1].Message.Text.Body != want {
		t.Fatalf("want %q, got %+v", want, sent[len(sent)-1].Message)
	}
}

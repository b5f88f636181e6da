package whatsapp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

// The three request bodies of docs/WHATSAPP.md, byte-for-byte in content.
func TestMessageJSONMatchesMeta(t *testing.T) {
	interactive := &Message{MessagingProduct: "whatsapp", To: "16505551234", Type: TypeInteractive,
		Interactive: &Interactive{Type: InteractiveButton, Body: &InteractiveText{Text: "…"},
			Action: Action{Buttons: []Button{{Type: "reply", Reply: ButtonReply{ID: "yes", Title: "Yes please"}}}}}}
	tmpl := &Message{MessagingProduct: "whatsapp", To: "16505551234", Type: TypeTemplate,
		Template: &Template{Name: "summer_reminder", Language: Language{Code: "en_US"}, Components: []Component{
			{Type: "header", Parameters: []Parameter{{Type: "image", Image: &Media{Link: "https://…"}}}},
			BodyParams("Ana"),
			QuickReplyPayload(0, "STOP_PROMO"),
		}}}
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"text", NewText("16505551234", "…"), `{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
 "type": "text", "text": {"body": "…", "preview_url": false}}`},
		{"interactive", interactive, `{"messaging_product": "whatsapp", "to": "16505551234", "type": "interactive",
 "interactive": {"type": "button", "body": {"text": "…"},
   "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes please"}}]}}}`},
		{"template", tmpl, `{"messaging_product": "whatsapp", "to": "16505551234", "type": "template",
 "template": {"name": "summer_reminder", "language": {"code": "en_US"}, "components": [
   {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://…"}}]},
   {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
   {"type": "button", "sub_type": "quick_reply", "index": "0",
    "parameters": [{"type": "payload", "payload": "STOP_PROMO"}]}]}}`},
		{"named params", NewTemplate("1", "welcome_named", "en_US", NamedBodyParams(NamedBodyParam{"first_name", "Ana"})),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"template","template":{"name":"welcome_named","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","parameter_name":"first_name","text":"Ana"}]}]}}`},
		{"list", NewList("1", "Pick a size", "Sizes", Section{Title: "Sizes", Rows: []Row{{ID: "m", Title: "Medium", Description: "38-40"}}}),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"list","body":{"text":"Pick a size"},"action":{"button":"Sizes","sections":[{"title":"Sizes","rows":[{"id":"m","title":"Medium","description":"38-40"}]}]}}}`},
		// The request syntax of Meta's CTA URL button messages, with a text header and a footer.
		{"cta_url", func() *Message {
			m := NewCTAURL("1", "Tap the button below to see available dates.", "See Dates", "https://example.com/dates?c=7")
			m.Interactive.Header = &InteractiveHeader{Type: "text", Text: "Available Dates"}
			m.Interactive.Footer = &InteractiveText{Text: "Dates subject to change."}
			return m
		}(),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"cta_url","header":{"type":"text","text":"Available Dates"},"body":{"text":"Tap the button below to see available dates."},"footer":{"text":"Dates subject to change."},"action":{"name":"cta_url","parameters":{"display_text":"See Dates","url":"https://example.com/dates?c=7"}}}}`},
		// The request syntax of Meta's flow messages (navigate, with initial data).
		{"flow", NewFlow("1", "Sign up in a minute", "1234567890", "Sign up", "funnel:7", "WELCOME", json.RawMessage(`{"name":"Ana"}`)),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"flow","body":{"text":"Sign up in a minute"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_token":"funnel:7","flow_id":"1234567890","flow_cta":"Sign up","flow_action":"navigate","flow_action_payload":{"screen":"WELCOME","data":{"name":"Ana"}}}}}}`},
		// The request syntax of Meta's location request messages.
		{"location request", NewLocationRequest("1", "Where should we deliver?"),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"location_request_message","body":{"text":"Where should we deliver?"},"action":{"name":"send_location"}}}`},
		{"document", NewDocument("1", Media{Link: "https://x/y.pdf", Caption: "c", Filename: "y.pdf"}),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"document","document":{"link":"https://x/y.pdf","caption":"c","filename":"y.pdf"}}`},
		{"callback data", func() *Message {
			m := NewImage("1", Media{Link: "https://x/a.jpg"})
			m.BizOpaqueCallbackData = "outbox:7"
			return m
		}(),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"image","image":{"link":"https://x/a.jpg"},"biz_opaque_callback_data":"outbox:7"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b, err := json.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, b, tt.want)
			var back Message
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&back, tt.m) {
				t.Errorf("round trip changed the message:\n got %+v\nwant %+v", back, *tt.m)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	buttons := func(titles ...string) *Message {
		rs := make([]ButtonReply, len(titles))
		for i, s := range titles {
			rs[i] = ButtonReply{ID: "b" + string(rune('a'+i)), Title: s}
		}
		return NewButtons("1", "body", rs...)
	}
	with := func(m *Message, f func(*Message)) *Message { f(m); return m }
	tests := []struct {
		name    string
		m       *Message
		wantErr string // substring; "" means valid
	}{
		{"text ok", NewText("1", "hi"), ""},
		{"nil", nil, "nil"},
		{"product", with(NewText("1", "hi"), func(m *Message) { m.MessagingProduct = "" }), "messaging_product"},
		{"recipient type", with(NewText("1", "hi"), func(m *Message) { m.RecipientType = "group" }), "recipient_type"},
		{"no to", NewText("", "hi"), "to: required"},
		{"no type", with(NewText("1", "hi"), func(m *Message) { m.Type = "" }), "type: required"},
		{"bad type", with(NewText("1", "hi"), func(m *Message) { m.Type = "sticker" }), "unsupported"},
		{"type without body", with(NewText("1", "hi"), func(m *Message) { m.Type = TypeImage }), "image: required"},
		{"two bodies", with(NewText("1", "hi"), func(m *Message) { m.Image = &Media{Link: "x"} }), "exactly one"},
		{"empty text", NewText("1", ""), "text.body: required"},
		{"text 4096 runes", NewText("1", strings.Repeat("é", 4096)), ""},
		{"text 4097 runes", NewText("1", strings.Repeat("é", 4097)), "limit 4096"},
		{"opaque 512", with(NewText("1", "x"), func(m *Message) { m.BizOpaqueCallbackData = strings.Repeat("a", 512) }), ""},
		{"opaque 513", with(NewText("1", "x"), func(m *Message) { m.BizOpaqueCallbackData = strings.Repeat("a", 513) }), "biz_opaque_callback_data"},
		{"context", with(NewText("1", "x"), func(m *Message) { m.Context = &ReplyContext{} }), "context.message_id"},
		{"3 buttons", buttons("Yes", "No", "Maybe"), ""},
		{"4 buttons", buttons("a", "b", "c", "d"), "4 buttons, limit 3"},
		{"0 buttons", buttons(), "at least one button"},
		{"title 20 runes", buttons(strings.Repeat("ñ", 20)), ""},
		{"title 21 runes", buttons(strings.Repeat("ñ", 21)), "limit 20"},
		{"empty title", buttons(""), "title: required"},
		{"duplicate title", buttons("Yes", "Yes"), "duplicate"},
		{"duplicate id", NewButtons("1", "b", ButtonReply{"x", "A"}, ButtonReply{"x", "B"}), "duplicate"},
		{"button type", with(buttons("Yes"), func(m *Message) { m.Interactive.Action.Buttons[0].Type = "url" }), `"reply"`},
		{"interactive body 1024", NewButtons("1", strings.Repeat("x", 1024), ButtonReply{"a", "A"}), ""},
		{"interactive body 1025", NewButtons("1", strings.Repeat("x", 1025), ButtonReply{"a", "A"}), "limit 1024"},
		{"interactive no body", NewButtons("1", "", ButtonReply{"a", "A"}), "body.text: required"},
		{"footer 61", with(buttons("A"), func(m *Message) { m.Interactive.Footer = &InteractiveText{strings.Repeat("f", 61)} }), "limit 60"},
		{"header text", with(buttons("A"), func(m *Message) { m.Interactive.Header = &InteractiveHeader{Type: "text", Text: "Hi"} }), ""},
		{"header image no link", with(buttons("A"), func(m *Message) { m.Interactive.Header = &InteractiveHeader{Type: "image", Image: &Media{}} }), "id or link"},
		{"interactive type", with(buttons("A"), func(m *Message) { m.Interactive.Type = "product" }), "unsupported"},
		{"cta_url ok", NewCTAURL("1", "b", "Open the shop", "https://example.com/s?a=1"), ""},
		{"cta_url label 21", NewCTAURL("1", "b", strings.Repeat("ñ", 21), "https://example.com"), "display_text: 21 characters, limit 20"},
		{"cta_url no label", NewCTAURL("1", "b", "", "https://example.com"), "display_text: required"},
		{"cta_url no url", NewCTAURL("1", "b", "Open", ""), "url: required"},
		{"cta_url not http", NewCTAURL("1", "b", "Open", "javascript:alert(1)"), "not an http(s) URL"},
		{"cta_url space", NewCTAURL("1", "b", "Open", "https://example.com/a b"), "white space"},
		{"cta_url name", with(NewCTAURL("1", "b", "Open", "https://x.io"), func(m *Message) { m.Interactive.Action.Name = "flow" }), `must be "cta_url"`},
		{"cta_url with buttons", with(NewCTAURL("1", "b", "Open", "https://x.io"), func(m *Message) {
			m.Interactive.Action.Buttons = []Button{{Type: "reply", Reply: ButtonReply{"a", "A"}}}
		}), "no reply buttons"},
		{"cta_url image header", with(NewCTAURL("1", "b", "Open", "https://x.io"), func(m *Message) {
			m.Interactive.Header = &InteractiveHeader{Type: "image", Image: &Media{Link: "https://x.io/a.jpg"}}
		}), ""},
		{"flow ok", NewFlow("1", "Sign up in a minute", "1234", "Sign up", "funnel:1", "WELCOME", json.RawMessage(`{"name":"Ana"}`)), ""},
		{"flow no data", NewFlow("1", "b", "1234", "Sign up", "", "WELCOME", nil), ""},
		{"flow empty data", NewFlow("1", "b", "1234", "Sign up", "", "WELCOME", json.RawMessage(`{}`)), "non-empty JSON object"},
		{"flow no screen", NewFlow("1", "b", "1234", "Sign up", "", "", nil), "screen: required"},
		{"flow no id", NewFlow("1", "b", "", "Sign up", "", "W", nil), "flow_id"},
		{"flow cta 21", NewFlow("1", "b", "1234", strings.Repeat("c", 21), "", "W", nil), "flow_cta: 21 characters, limit 20"},
		{"flow bad mode", with(NewFlow("1", "b", "1234", "Go", "", "W", nil), func(m *Message) { m.Interactive.Action.Parameters.Mode = "test" }), "mode"},
		{"flow version", with(NewFlow("1", "b", "1234", "Go", "", "W", nil), func(m *Message) { m.Interactive.Action.Parameters.FlowMessageVersion = "2" }), "flow_message_version"},
		{"flow with url", with(NewFlow("1", "b", "1234", "Go", "", "W", nil), func(m *Message) { m.Interactive.Action.Parameters.URL = "https://x.io" }), "no display_text or url"},
		{"cta_url with flow", with(NewCTAURL("1", "b", "Open", "https://x.io"), func(m *Message) { m.Interactive.Action.Parameters.FlowID = "1" }), "only display_text and url"},
		{"location request ok", NewLocationRequest("1", "Where should we deliver?"), ""},
		{"location request footer", with(NewLocationRequest("1", "Where?"), func(m *Message) { m.Interactive.Footer = &InteractiveText{"f"} }), "only a body"},
		{"location request params", with(NewLocationRequest("1", "Where?"), func(m *Message) { m.Interactive.Action.Parameters = &ActionParameters{} }), "takes none"},
		{"location request no body", NewLocationRequest("1", ""), "body.text: required"},
		{"cta_url body 1025", NewCTAURL("1", strings.Repeat("x", 1025), "Open", "https://x.io"), "limit 1024"},
		{"list ok", NewList("1", "b", "Open", Section{Rows: []Row{{ID: "r", Title: "R"}}}), ""},
		{"list no button", NewList("1", "b", "", Section{Rows: []Row{{ID: "r", Title: "R"}}}), "action.button: required"},
		{"list no sections", NewList("1", "b", "Open"), "at least one section"},
		{"list 2 sections untitled", NewList("1", "b", "Open", Section{Rows: []Row{{ID: "r", Title: "R"}}}, Section{Rows: []Row{{ID: "s", Title: "S"}}}), "several sections"},
		{"list 11 rows", NewList("1", "b", "Open", Section{Rows: func() []Row {
			rs := make([]Row, 11)
			for i := range rs {
				rs[i] = Row{ID: strings.Repeat("r", i+1), Title: "t"}
			}
			return rs
		}()}), "11 rows"},
		{"row title 25", NewList("1", "b", "Open", Section{Rows: []Row{{ID: "r", Title: strings.Repeat("t", 25)}}}), "limit 24"},
		{"row dup id", NewList("1", "b", "Open", Section{Rows: []Row{{ID: "r", Title: "a"}, {ID: "r", Title: "b"}}}), "duplicate"},
		{"image ok", NewImage("1", Media{Link: "https://x"}), ""},
		{"image id", NewImage("1", Media{ID: "123"}), ""},
		{"image none", NewImage("1", Media{}), "id or link"},
		{"image both", NewImage("1", Media{ID: "1", Link: "x"}), "exclusive"},
		{"image filename", NewImage("1", Media{Link: "x", Filename: "a.jpg"}), "filename"},
		{"caption 1025", NewVideo("1", Media{Link: "x", Caption: strings.Repeat("c", 1025)}), "limit 1024"},
		{"image link not a URL", NewImage("1", Media{Link: "x"}), `image.link: "x" is not an http(s) URL`},
		{"image link file:", NewImage("1", Media{Link: "file:///etc/passwd"}), "is not an http(s) URL"},
		{"image link javascript:", NewImage("1", Media{Link: "javascript:alert(1)"}), "is not an http(s) URL"},
		{"document link http", NewDocument("1", Media{Link: "http://example.com/a.pdf"}), ""},
		{"template header media link", NewTemplate("1", "promo", "en_US", Component{Type: "header",
			Parameters: []Parameter{{Type: "image", Image: &Media{Link: "ftp://example.com/a.jpg"}}}}), "parameters[0].image.link"},
		{"template param new line", NewTemplate("1", "promo", "en_US", BodyParams("Ana", "line\nbreak")), "parameters[1].text: has a new line at character 5"},
		{"template param tab", NewTemplate("1", "promo", "en_US", BodyParams("a\tb")), "has a tab"},
		{"template param 5 spaces", NewTemplate("1", "promo", "en_US", BodyParams("a     b")), "more than 4 consecutive spaces"},
		{"template param 4 spaces", NewTemplate("1", "promo", "en_US", BodyParams("a    b")), ""},
		{"template param 1025", NewTemplate("1", "promo", "en_US", BodyParams(strings.Repeat("é", 1025))), "1025 characters, limit 1024"},
		{"template header param 61", NewTemplate("1", "promo", "en_US", Component{Type: "header",
			Parameters: []Parameter{{Type: "text", Text: strings.Repeat("h", 61)}}}), "61 characters, limit 60"},
		{"named param new line", NewTemplate("1", "promo", "en_US", NamedBodyParams(NamedBodyParam{Name: "n", Value: "a\r\nb"})), "has a new line"},
		{"template ok", NewTemplate("1", "summer_reminder", "en_US", BodyParams("Ana")), ""},
		{"template upper", NewTemplate("1", "Summer", "en_US"), "^[a-z0-9_]+$"},
		{"template dash", NewTemplate("1", "summer-sale", "en_US"), "^[a-z0-9_]+$"},
		{"template no name", NewTemplate("1", "", "en_US"), "template.name: required"},
		{"template no lang", NewTemplate("1", "x", ""), "language.code"},
		{"template empty param", NewTemplate("1", "x", "en", BodyParams("")), "parameters[0].text: required"},
		{"template button no index", NewTemplate("1", "x", "en", Component{Type: "button", SubType: "quick_reply"}), "index"},
		{"template bad component", NewTemplate("1", "x", "en", Component{Type: "footer"}), "unsupported"},
		{"template payload empty", NewTemplate("1", "x", "en", QuickReplyPayload(0, "")), "payload: required"},
		{"template currency passes", NewTemplate("1", "x", "en", Component{Type: "body", Parameters: []Parameter{{Type: "currency"}}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got nil", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("error %v does not wrap ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

package whatsapp

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseEvents(t *testing.T, name string) []Event {
	t.Helper()
	env, err := ParseWebhook(readTestdata(t, name))
	if err != nil {
		t.Fatalf("ParseWebhook(%s): %v", name, err)
	}
	evs, err := env.Events()
	if err != nil {
		t.Fatalf("Events(%s): %v", name, err)
	}
	return evs
}

func TestWebhookSamples(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, evs []Event)
	}{
		{"text.json", func(t *testing.T, evs []Event) {
			e := one(t, evs, EventMessage)
			want(t, e.PhoneNumberID, "106540352242922")
			want(t, e.DisplayPhoneNumber, "15550783881")
			want(t, e.WABAID, "102290129340398")
			want(t, e.ContactName, "Sheena Nelson")
			want(t, e.WaID, "16505551234")
			if !e.Time.Equal(time.Unix(1739321024, 0)) {
				t.Errorf("time %v", e.Time)
			}
			wantReply(t, e.Message.Reply(), Reply{Type: "text", Text: "Does it come in another color?"})
			if !strings.Contains(string(e.Message.Raw), `"Does it come in another color?"`) {
				t.Errorf("raw not kept: %s", e.Message.Raw)
			}
			want(t, e.Key(), "message:"+e.Message.ID)
		}},
		{"referral.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			r := m.Referral
			if r == nil {
				t.Fatal("no referral")
			}
			want(t, r.SourceID, "120226305854810726")
			want(t, r.SourceType, "ad")
			want(t, r.SourceURL, "https://fb.me/3cr4Wqqkv")
			want(t, r.Headline, "Summer sale: 20% off")
			want(t, r.Body, "Chat with us to get your code.")
			want(t, r.MediaType, "image")
			want(t, r.ImageURL, "https://scontent.xx.fbcdn.net/v/t45.1600-4/summer.jpg")
			if !strings.HasPrefix(r.CtwaClid, "ARAkLkA8") {
				t.Errorf("ctwa_clid %q", r.CtwaClid)
			}
			if r.WelcomeMessage == nil || r.WelcomeMessage.Text != "Hi there! Tap to get your summer code." {
				t.Errorf("welcome %+v", r.WelcomeMessage)
			}
			wantReply(t, m.Reply(), Reply{Type: "text", Text: "Hi! I'd like the summer offer."})
		}},
		{"referral_video_no_clid.json", func(t *testing.T, evs []Event) {
			e := one(t, evs, EventMessage)
			r := e.Message.Referral
			want(t, r.CtwaClid, "")
			want(t, r.MediaType, "video")
			want(t, r.VideoURL, "https://video.xx.fbcdn.net/v/t42.1790-2/winter.mp4")
			want(t, r.ThumbnailURL, "https://scontent.xx.fbcdn.net/v/t15.5256-10/winter_thumb.jpg")
			want(t, r.SourceType, "post")
			want(t, e.ContactName, "Ana Souza")
		}},
		{"button.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			if m.Context == nil || m.Context.ID != "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" || m.Context.From != "15550783881" {
				t.Errorf("context %+v", m.Context)
			}
			wantReply(t, m.Reply(), Reply{Type: "button", Text: "Stop promos", Button: "Stop promos", Payload: "STOP_PROMO"})
		}},
		{"interactive_button_reply.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			wantReply(t, m.Reply(), Reply{Type: "button", Text: "Yes please", Button: "Yes please", Payload: "yes"})
		}},
		{"interactive_list_reply.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			if m.Interactive.ListReply.Description != "Fits 38-40" {
				t.Errorf("description %q", m.Interactive.ListReply.Description)
			}
			wantReply(t, m.Reply(), Reply{Type: "list", Text: "Medium", Payload: "size_m"})
		}},
		{"image.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			want(t, m.Image.ID, "1003383421387256")
			want(t, m.Image.MimeType, "image/jpeg")
			wantReply(t, m.Reply(), Reply{Type: "image", Text: "This one, in blue?"})
		}},
		{"media.json", func(t *testing.T, evs []Event) {
			if len(evs) != 4 {
				t.Fatalf("%d events", len(evs))
			}
			want(t, evs[0].Message.Video.Caption, "unboxing")
			want(t, evs[1].Message.Document.Filename, "receipt.pdf")
			wantReply(t, evs[1].Message.Reply(), Reply{Type: "document", Text: "my receipt"})
			if !evs[2].Message.Audio.Voice {
				t.Error("voice not decoded")
			}
			want(t, evs[3].Message.Sticker.MimeType, "image/webp")
		}},
		{"location.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			if m.Location.Latitude != 37.483307 || m.Location.Name != "Main office" {
				t.Errorf("location %+v", m.Location)
			}
			wantReply(t, m.Reply(), Reply{Type: "location", Location: &Location{Latitude: 37.483307, Longitude: -122.148981,
				Name: "Main office", Address: "1 Hacker Way, Menlo Park, CA 94025", URL: "https://www.example.com"}})
		}},
		{"nfm_reply.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			wantReply(t, m.Reply(), Reply{Type: "form", Form: map[string]any{"flow_token": "funnel:42", "first_name": "Sheena",
				"size": "M", "marketing": true, "topics": []any{"sale", "new"}}})
		}},
		{"contacts.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			if len(m.Contacts) != 1 || m.Contacts[0].Name.FormattedName != "Barbara J. Johnson" || m.Contacts[0].Phones[0].WaID != "14155550123" {
				t.Errorf("contacts %+v", m.Contacts)
			}
		}},
		{"reaction.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			want(t, m.Reaction.Emoji, "👍")
			wantReply(t, m.Reply(), Reply{Type: "reaction", Text: "👍"})
		}},
		{"unknown_131051.json", func(t *testing.T, evs []Event) {
			m := one(t, evs, EventMessage).Message
			if len(m.Errors) != 1 || m.Errors[0].Code != 131051 || m.Errors[0].ErrorData.Details == "" {
				t.Errorf("errors %+v", m.Errors)
			}
			wantReply(t, m.Reply(), Reply{Type: "unknown"})
		}},
		{"status_sent.json", func(t *testing.T, evs []Event) {
			e := one(t, evs, EventStatus)
			s := e.Status
			want(t, s.Status, StatusSent)
			want(t, s.BizOpaqueCallbackData, "outbox:42")
			want(t, e.WaID, "16505551234")
			if s.Conversation == nil || s.Conversation.Origin.Type != "marketing" || s.Conversation.ExpirationTimestamp != "1739407430" {
				t.Errorf("conversation %+v", s.Conversation)
			}
			if s.Pricing == nil || !s.Pricing.Billable || s.Pricing.PricingModel != "PMP" || s.Pricing.Category != "marketing" || s.Pricing.Type != "regular" {
				t.Errorf("pricing %+v", s.Pricing)
			}
			want(t, e.Key(), "status:"+s.ID+":sent")
			if !e.Time.Equal(time.Unix(1739321030, 0)) {
				t.Errorf("time %v", e.Time)
			}
		}},
		{"status_delivered.json", func(t *testing.T, evs []Event) {
			want(t, one(t, evs, EventStatus).Status.Status, StatusDelivered)
		}},
		{"status_read.json", func(t *testing.T, evs []Event) {
			s := one(t, evs, EventStatus).Status
			want(t, s.Status, StatusRead)
			if s.Pricing != nil || s.Conversation != nil {
				t.Error("absent pricing/conversation decoded as present")
			}
		}},
		{"status_failed_131047.json", func(t *testing.T, evs []Event) {
			s := one(t, evs, EventStatus).Status
			want(t, s.Status, StatusFailed)
			if len(s.Errors) != 1 || s.Errors[0].Code != CodeReEngagement {
				t.Fatalf("errors %+v", s.Errors)
			}
			if ClassifyCode(s.Errors[0].Code, 0) != Permanent {
				t.Error("131047 should be permanent")
			}
		}},
		{"batch.json", func(t *testing.T, evs []Event) {
			var got []string
			for _, e := range evs {
				got = append(got, string(e.Kind)+" "+e.WaID+" "+e.ContactName+" "+e.PhoneNumberID+" "+e.WABAID)
			}
			wantList := []string{
				"message 16505551234 Sheena Nelson 106540352242922 102290129340398",
				"message 819012345678 Kai Ito 106540352242922 102290129340398",
				"message 16505551234 Sheena Nelson 106540352242922 102290129340398",
				"status 16505551234  106540352242922 102290129340398",
				"status 819012345678  106540352242922 102290129340398",
				"message 447700900456 Olivia Brown 207650352242933 203390129340399",
			}
			if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
			}
			wantReply(t, evs[2].Message.Reply(), Reply{Type: "button", Text: "Not now", Button: "Not now", Payload: "no"})
			wantReply(t, evs[5].Message.Reply(), Reply{Type: "button", Text: "Get my code", Button: "Get my code", Payload: "GET_CODE"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) { tt.check(t, parseEvents(t, tt.file)) })
	}
}

// Every file in testdata is covered above, so new samples get a test.
func TestEverySampleTested(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 17 {
		t.Fatalf("only %d samples", len(files))
	}
	for _, f := range files {
		if _, err := ParseWebhook(readTestdata(t, filepath.Base(f))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseWebhookRejects(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"empty", "", "empty body"},
		{"spaces", "  \n", "empty body"},
		{"not json", "hello", "invalid character"},
		{"array", "[]", "cannot unmarshal"},
		{"null", "null", "got object \"\""},
		{"page object", `{"object":"page","entry":[]}`, `got object "page"`},
		{"instagram", `{"object":"instagram"}`, "not whatsapp_business_account"},
		{"trailing", `{"object":"whatsapp_business_account"} {}`, "invalid character"},
		{"messages not array", `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":{}}}]}]}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseWebhook([]byte(tt.body))
			if err == nil || env != nil {
				t.Fatalf("want error, got %+v", env)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
	_, err := ParseWebhook([]byte(`{"object":"page"}`))
	if !errors.Is(err, ErrWrongObject) {
		t.Errorf("want ErrWrongObject, got %v", err)
	}
}

func TestEventsBadTimestamps(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{
	 "metadata":{"phone_number_id":"106540352242922"},
	 "messages":[
	  {"from":"16505551234","id":"wamid.ok","timestamp":"1739321024","type":"text","text":{"body":"ok"}},
	  {"from":"16505551234","id":"wamid.empty","timestamp":"","type":"text","text":{"body":"x"}},
	  {"from":"16505551234","id":"wamid.words","timestamp":"yesterday","type":"text","text":{"body":"x"}},
	  {"from":"16505551234","id":"wamid.neg","timestamp":"-5","type":"text","text":{"body":"x"}},
	  {"from":"16505551234","id":"wamid.missing","type":"text","text":{"body":"x"}},
	  {"from":"16505551234","id":"wamid.number","timestamp":1739321025,"type":"text","text":{"body":"n"}},
	  {"from":"16505551234","id":"wamid.float","timestamp":1.5,"type":"text","text":{"body":"x"}},
	  {"from":"16505551234","id":"wamid.huge","timestamp":"99999999999999","type":"text","text":{"body":"x"}},
	  {"id":"wamid.nofrom","timestamp":"1739321024","type":"text"},
	  {"from":"16505551234","timestamp":"1739321024","type":"text"}
	 ],
	 "statuses":[{"id":"wamid.s","status":"sent","timestamp":"soon","recipient_id":"16505551234"}]}}]}]}`
	env, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := env.Events()
	if err == nil {
		t.Fatal("want an error for the bad timestamps")
	}
	if len(evs) != 2 || evs[0].Message.ID != "wamid.ok" || evs[1].Message.ID != "wamid.number" {
		t.Fatalf("want the two good events, got %+v", evs)
	}
	for _, e := range evs {
		if e.Time.IsZero() {
			t.Error("zero time")
		}
	}
	for _, id := range []string{"wamid.empty", "wamid.words", "wamid.neg", "wamid.missing", "wamid.float", "wamid.huge", "wamid.nofrom", "missing id", "wamid.s"} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error does not mention %s:\n%v", id, err)
		}
	}
	var ee *EventError
	if !errors.As(err, &ee) {
		t.Errorf("error is not an *EventError: %T", err)
	}
}

// A message whose type-specific part is malformed still yields an event: it
// still opens the window.
func TestSalvageMalformedMessage(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"changes":[
	 {"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},
	  "messages":[{"from":"16505551234","id":"wamid.x","timestamp":"1739321024","type":"text","text":"not an object"}],
	  "statuses":[{"id":"wamid.s","status":"failed","timestamp":"1739321024","recipient_id":"16505551234","errors":"boom","pricing":{"billable":"yes"}}]}},
	 {"field":"account_update","value":{"messages":"this field has another shape","event":"VERIFIED_ACCOUNT"}}]}]}`
	env, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := env.Events()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	m := evs[0].Message
	if m.DecodeErr == nil || m.ID != "wamid.x" || m.Type != "text" || len(m.Raw) == 0 {
		t.Errorf("salvaged message %+v", m)
	}
	wantReply(t, m.Reply(), Reply{Type: "text"})
	s := evs[1].Status
	if s.DecodeErr == nil || s.ID != "wamid.s" || s.Status != "failed" {
		t.Errorf("salvaged status %+v", s)
	}
	if got := env.Entry[0].Changes[1]; got.Field != "account_update" || !strings.Contains(string(got.RawValue), "VERIFIED_ACCOUNT") {
		t.Errorf("other field change %+v", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, f := range []string{"batch.json", "referral.json", "status_sent.json"} {
		env, err := ParseWebhook(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		// Raw values win on output, so the re-encoded webhook is the original.
		jsonEqual(t, b, string(readTestdata(t, f)))
	}
}

func TestTimestamp(t *testing.T) {
	for in, ok := range map[Timestamp]bool{"1739321024": true, "1": true, "0": false, "": false, "-1": false, "1e9": false, " 1": false, "253402300799": true, "253402300800": false} {
		_, err := in.Time()
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", in, err, ok)
		}
	}
}

func TestReplyNil(t *testing.T) {
	var m *InboundMessage
	if r := m.Reply(); r.Type != "" || r.Text != "" || r.Form != nil || r.Location != nil {
		t.Error("nil message reply")
	}
	var e *Envelope
	if evs, err := e.Events(); evs != nil || err != nil {
		t.Error("nil envelope events")
	}
	// Interactive without its reply object.
	m = &InboundMessage{Type: "interactive", Interactive: &InboundInteractive{Type: "button_reply"}}
	wantReply(t, m.Reply(), Reply{Type: "interactive"})
}

func one(t *testing.T, evs []Event, kind EventKind) Event {
	t.Helper()
	if len(evs) != 1 || evs[0].Kind != kind {
		t.Fatalf("want one %s event, got %+v", kind, evs)
	}
	return evs[0]
}

func want(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func wantReply(t *testing.T, got, want Reply) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reply %+v, want %+v", got, want)
	}
}

// FuzzParseWebhook: never panics; whatever parses is a WhatsApp object whose
// events all carry a real time and whose replies can be computed.
func FuzzParseWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"object":"page"}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"x","timestamp":1,"type":"text","text":"x"}]}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseWebhook(body)
		if err != nil {
			if env != nil {
				t.Fatal("envelope with error")
			}
			return
		}
		if env.Object != ObjectWhatsApp {
			t.Fatalf("accepted object %q", env.Object)
		}
		evs, _ := env.Events()
		for _, e := range evs {
			if e.Time.IsZero() || e.Key() == "" {
				t.Fatalf("event without time or key: %+v", e)
			}
			if e.Kind == EventMessage {
				_ = e.Message.Reply()
				if (e.WaID == "" && e.UserID == "" && e.ParentUserID == "") || e.Message.ID == "" {
					t.Fatalf("message event without a sender or id: %+v", e.Message)
				}
			}
		}
		us, _ := env.Accounts()
		for _, u := range us {
			if u.Time.IsZero() || u.Key() == "" || (u.Template == nil) == (u.Phone == nil) {
				t.Fatalf("account update without time, key or subject: %+v", u)
			}
		}
		if _, err := json.Marshal(env); err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
	})
}

package whatsapptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

const (
	pn   = whatsapptest.DefaultPhoneNumberID
	user = "16505551234"
)

var t0 = time.Date(2025, 2, 12, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for the fake.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFake(t *testing.T, opts whatsapptest.Options) (*whatsapptest.Fake, *clock) {
	t.Helper()
	c := &clock{now: t0}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	return whatsapptest.New(t, opts), c
}

func send(t *testing.T, f *whatsapptest.Fake, m *whatsapp.Message) (whatsapp.SendResult, error) {
	t.Helper()
	return f.Client().Send(context.Background(), pn, m)
}

func wantCode(t *testing.T, err error, code int, class whatsapp.Class) {
	t.Helper()
	var api *whatsapp.APIError
	if !errors.As(err, &api) {
		t.Fatalf("want API error %d, got %T %v", code, err, err)
	}
	if api.Code != code {
		t.Errorf("code %d (%v), want %d", api.Code, err, code)
	}
	if api.Message == "" || api.Details == "" || api.FBTraceID == "" {
		t.Errorf("error body incomplete: %+v", api)
	}
	if got := whatsapp.Classify(err); got != class {
		t.Errorf("class %v, want %v", got, class)
	}
}

func TestAccepted(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{})
	f.Inbound(user, t0.Add(-time.Hour))
	m := whatsapp.NewText("+1 650-555-1234", "hello")
	m.BizOpaqueCallbackData = "outbox:1"
	res, err := send(t, f, m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.MessageID, "wamid.") || res.MessageStatus != "accepted" || res.WaID != user {
		t.Errorf("result %+v", res)
	}
	sent := f.Sent()
	if len(sent) != 1 || sent[0].ID != res.MessageID || sent[0].To != user || sent[0].Message.Text.Body != "hello" || !sent[0].At.Equal(t0) || sent[0].PhoneNumberID != pn {
		t.Errorf("sent %+v", sent)
	}
	if s, ok := f.Lookup(res.MessageID); !ok || s.Message.BizOpaqueCallbackData != "outbox:1" {
		t.Error("lookup")
	}
	at := f.Attempts()
	if len(at) != 1 || at[0].HTTPStatus != 200 || at[0].MessageID != res.MessageID || at[0].Message == nil || at[0].Code != 0 {
		t.Errorf("attempts %+v", at)
	}
	if f.Count(user) != 1 || f.Counts()[user] != 1 || len(f.SentTo("16505551234")) != 1 {
		t.Error("counts")
	}
	// Unique ids.
	seen := map[string]bool{res.MessageID: true}
	for i := 0; i < 20; i++ {
		r, err := send(t, f, whatsapp.NewText(user, "again"))
		if err != nil || seen[r.MessageID] {
			t.Fatalf("%v %s", err, r.MessageID)
		}
		seen[r.MessageID] = true
	}
}

func TestAuthAndPath(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{PhoneNumberIDs: []string{pn}})
	f.Inbound(user, t0)
	c := f.Client()
	c.Token = "wrong"
	_, err := c.Send(context.Background(), pn, whatsapp.NewText(user, "x"))
	wantCode(t, err, 190, whatsapp.Fatal)
	var api *whatsapp.APIError
	errors.As(err, &api)
	if api.HTTPStatus != 401 {
		t.Errorf("status %d", api.HTTPStatus)
	}

	c = f.Client()
	c.BaseURL = strings.Replace(c.BaseURL, "v23.0", "v19.0", 1)
	_, err = c.Send(context.Background(), pn, whatsapp.NewText(user, "x"))
	wantCode(t, err, 100, whatsapp.Permanent)

	_, err = f.Client().Send(context.Background(), "999", whatsapp.NewText(user, "x"))
	wantCode(t, err, 100, whatsapp.Permanent)

	f.SetTokenExpired(true)
	_, err = send(t, f, whatsapp.NewText(user, "x"))
	wantCode(t, err, 190, whatsapp.Fatal)
	_, err = f.Client().ListTemplates(context.Background(), f.WABAID())
	if whatsapp.Classify(errors.Unwrap(err)) != whatsapp.Fatal || whatsapp.ErrorCode(err) != 190 {
		t.Errorf("templates with expired token: %v", err)
	}
	f.SetTokenExpired(false)
	if _, err = send(t, f, whatsapp.NewText(user, "x")); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Attempts()); n != 5 {
		t.Errorf("%d attempts, want 5 (every request is recorded)", n)
	}
}

// Raw bodies, bypassing the client's own validation, get Meta's answers.
func TestPayloadShape(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{})
	f.Inbound(user, t0)
	tests := []struct {
		name string
		body string
		code int
	}{
		{"ok", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"x"}}`, 0},
		{"not json", `{`, 100},
		{"trailing", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"x"}} {}`, 100},
		{"unknown field", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","txt":{"body":"x"}}`, 100},
		{"product", `{"to":"16505551234","type":"text","text":{"body":"x"}}`, 100},
		{"no to", `{"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}`, 100},
		{"no type", `{"messaging_product":"whatsapp","to":"16505551234","text":{"body":"x"}}`, 131008},
		{"no body", `{"messaging_product":"whatsapp","to":"16505551234","type":"text"}`, 131008},
		{"empty body", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":""}}`, 131008},
		{"long body", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"` + strings.Repeat("a", 4097) + `"}}`, 100},
		{"two bodies", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"x"},"image":{"link":"y"}}`, 131009},
		{"image no link", `{"messaging_product":"whatsapp","to":"16505551234","type":"image","image":{}}`, 131008},
		{"4 buttons", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"button","body":{"text":"b"},"action":{"buttons":[` +
			`{"type":"reply","reply":{"id":"1","title":"a"}},{"type":"reply","reply":{"id":"2","title":"b"}},{"type":"reply","reply":{"id":"3","title":"c"}},{"type":"reply","reply":{"id":"4","title":"d"}}]}}}`, 131009},
		{"title 21", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"button","body":{"text":"b"},"action":{"buttons":[{"type":"reply","reply":{"id":"1","title":"` + strings.Repeat("t", 21) + `"}}]}}}`, 131009},
		{"interactive no body", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"button","action":{"buttons":[{"type":"reply","reply":{"id":"1","title":"a"}}]}}}`, 131008},
		{"list ok", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"list","body":{"text":"b"},"action":{"button":"Open","sections":[{"rows":[{"id":"r","title":"R"}]}]}}}`, 0},
		{"list no rows", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"list","body":{"text":"b"},"action":{"button":"Open","sections":[]}}}`, 131009},
		{"sticker", `{"messaging_product":"whatsapp","to":"16505551234","type":"sticker"}`, 131009},
		// Meta's interactive cta_url shape (docs/WHATSAPP.md, "Rich messages").
		{"cta_url ok", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","header":{"type":"text","text":"Shop"},"body":{"text":"b"},"footer":{"text":"f"},"action":{"name":"cta_url","parameters":{"display_text":"Open","url":"https://example.com/x?y=1"}}}}`, 0},
		{"cta_url no name", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","body":{"text":"b"},"action":{"parameters":{"display_text":"Open","url":"https://example.com"}}}}`, 131009},
		{"cta_url no url", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","body":{"text":"b"},"action":{"name":"cta_url","parameters":{"display_text":"Open"}}}}`, 131008},
		{"cta_url label 21", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","body":{"text":"b"},"action":{"name":"cta_url","parameters":{"display_text":"` + strings.Repeat("d", 21) + `","url":"https://example.com"}}}}`, 131009},
		{"cta_url ftp", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","body":{"text":"b"},"action":{"name":"cta_url","parameters":{"display_text":"Open","url":"ftp://example.com"}}}}`, 131009},
		// Meta's flow message and location request shapes (docs/WHATSAPP.md, "Rich messages").
		{"flow ok", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_token":"t","flow_id":"1234","flow_cta":"Sign up","flow_action":"navigate","flow_action_payload":{"screen":"WELCOME","data":{"name":"Ana"}}}}}}`, 0},
		{"flow draft", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1234","flow_cta":"Sign up","mode":"draft","flow_action_payload":{"screen":"WELCOME"}}}}}`, 0},
		{"flow version 2", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"2","flow_id":"1234","flow_cta":"Sign up","flow_action_payload":{"screen":"WELCOME"}}}}}`, 131009},
		{"flow no screen", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1234","flow_cta":"Sign up"}}}}`, 131008},
		{"flow empty data", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1234","flow_cta":"Sign up","flow_action_payload":{"screen":"W","data":{}}}}}}`, 131009},
		{"flow cta 21", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1234","flow_cta":"` + strings.Repeat("c", 21) + `","flow_action_payload":{"screen":"W"}}}}}`, 131009},
		{"flow id and name", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"flow","body":{"text":"b"},"action":{"name":"flow","parameters":{"flow_message_version":"3","flow_id":"1234","flow_name":"x","flow_cta":"Go","flow_action_payload":{"screen":"W"}}}}}`, 131008},
		{"location request ok", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"location_request_message","body":{"text":"Where?"},"action":{"name":"send_location"}}}`, 0},
		{"location request footer", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"location_request_message","body":{"text":"Where?"},"footer":{"text":"f"},"action":{"name":"send_location"}}}`, 131009},
		{"location request no body", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"location_request_message","action":{"name":"send_location"}}}`, 131008},
		{"location request name", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"location_request_message","body":{"text":"Where?"},"action":{"name":"location"}}}`, 131009},
		{"cta_url with buttons", `{"messaging_product":"whatsapp","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","body":{"text":"b"},"action":{"name":"cta_url","buttons":[{"type":"reply","reply":{"id":"1","title":"a"}}],"parameters":{"display_text":"Open","url":"https://example.com"}}}}`, 131009},
		{"template no name", `{"messaging_product":"whatsapp","to":"16505551234","type":"template","template":{"language":{"code":"en_US"}}}`, 131008},
		{"opaque 513", `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"x"},"biz_opaque_callback_data":"` + strings.Repeat("o", 513) + `"}`, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.URL()+"/"+pn+"/messages", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+f.Token())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out struct {
				Error struct{ Code int } `json:"error"`
			}
			json.NewDecoder(res.Body).Decode(&out)
			if out.Error.Code != tt.code {
				t.Errorf("code %d, want %d (HTTP %d)", out.Error.Code, tt.code, res.StatusCode)
			}
			if (tt.code == 0) != (res.StatusCode == 200) {
				t.Errorf("HTTP %d", res.StatusCode)
			}
		})
	}
	// AllowUnknownFields lets new Meta fields through.
	f2, _ := newFake(t, whatsapptest.Options{AllowUnknownFields: true, DisableWindow: true})
	req, _ := http.NewRequest("POST", f2.URL()+"/"+pn+"/messages", strings.NewReader(`{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"},"new_field":1}`))
	req.Header.Set("Authorization", "Bearer "+f2.Token())
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Errorf("AllowUnknownFields: %v %v", err, res.Status)
	}
}

func TestWindow(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{})
	tmpl := whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana"))

	_, err := send(t, f, whatsapp.NewText(user, "never wrote"))
	wantCode(t, err, 131047, whatsapp.Permanent)
	if _, err := send(t, f, tmpl); err != nil {
		t.Fatalf("template outside window: %v", err)
	}

	f.Inbound(user, t0)
	for _, step := range []struct {
		advance time.Duration
		code    int
	}{{0, 0}, {23 * time.Hour, 0}, {time.Hour, 0}, {time.Second, 131047}} {
		c.Add(step.advance)
		_, err := send(t, f, whatsapp.NewButtons(user, "b", whatsapp.ButtonReply{ID: "y", Title: "Yes"}))
		if step.code == 0 && err != nil {
			t.Fatalf("at %v: %v", c.Now().Sub(t0), err)
		}
		if step.code != 0 {
			wantCode(t, err, step.code, whatsapp.Permanent)
		}
	}
	// An older inbound does not move the window back; a newer one reopens it.
	f.Inbound(user, t0.Add(-time.Hour))
	_, err = send(t, f, whatsapp.NewText(user, "x"))
	wantCode(t, err, 131047, whatsapp.Permanent)
	f.Inbound(user, c.Now().Add(-time.Minute))
	if _, err := send(t, f, whatsapp.NewText(user, "x")); err != nil {
		t.Fatal(err)
	}

	f2, _ := newFake(t, whatsapptest.Options{DisableWindow: true})
	if _, err := send(t, f2, whatsapp.NewText(user, "x")); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncFailures(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{AsyncFailures: true})
	m := whatsapp.NewText(user, "outside")
	m.BizOpaqueCallbackData = "outbox:9"
	res, err := send(t, f, m)
	if err != nil {
		t.Fatalf("async mode must accept: %v", err)
	}
	s, _ := f.Lookup(res.MessageID)
	if s.AsyncError != 131047 {
		t.Fatalf("AsyncError %d", s.AsyncError)
	}
	body, sig, err := f.StatusWebhook(res.MessageID, "failed", 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := parseOne(t, f, body, sig)
	if ev.Status.Status != "failed" || ev.Status.Errors[0].Code != 131047 || ev.Status.BizOpaqueCallbackData != "outbox:9" {
		t.Errorf("status %+v", ev.Status)
	}
}

func parseOne(t *testing.T, f *whatsapptest.Fake, body []byte, sig string) whatsapp.Event {
	t.Helper()
	if !whatsapp.VerifySignature(f.AppSecret(), body, sig) {
		t.Fatal("signature does not verify")
	}
	env, err := whatsapp.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := env.Events()
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v %v", evs, err)
	}
	return evs[0]
}

func TestTemplates(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{Templates: []whatsapptest.Template{
		{Name: "summer_reminder", Language: "en_US", Category: "MARKETING", Params: 1},
		{Name: "summer_reminder", Language: "pt_BR", Category: "MARKETING", Params: 1},
		{Name: "order_update", Language: "en_US", Category: "UTILITY", Params: 2},
		{Name: "named", Language: "en_US", Category: "UTILITY", NamedParams: []string{"first_name", "code"}},
		{Name: "with_image", Language: "en_US", Category: "MARKETING", Header: "IMAGE"},
		{Name: "paused", Language: "en_US", Category: "MARKETING", Status: "PAUSED"},
		{Name: "disabled", Language: "en_US", Category: "MARKETING", Status: "DISABLED"},
		{Name: "pending", Language: "en_US", Category: "MARKETING", Status: "PENDING"},
	}})
	img := whatsapp.Component{Type: "header", Parameters: []whatsapp.Parameter{{Type: "image", Image: &whatsapp.Media{Link: "https://x/y.jpg"}}}}
	tests := []struct {
		name string
		m    *whatsapp.Message
		code int
	}{
		{"ok", whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana")), 0},
		{"other language ok", whatsapp.NewTemplate(user, "summer_reminder", "pt_BR", whatsapp.BodyParams("Ana")), 0},
		{"missing language", whatsapp.NewTemplate(user, "summer_reminder", "es", whatsapp.BodyParams("Ana")), 132001},
		{"unknown name", whatsapp.NewTemplate(user, "winter", "en_US"), 132001},
		{"too few params", whatsapp.NewTemplate(user, "summer_reminder", "en_US"), 132000},
		{"too many params", whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("a", "b")), 132000},
		{"two params ok", whatsapp.NewTemplate(user, "order_update", "en_US", whatsapp.BodyParams("a", "b")), 0},
		{"named ok", whatsapp.NewTemplate(user, "named", "en_US", whatsapp.NamedBodyParams(whatsapp.NamedBodyParam{Name: "code", Value: "X"}, whatsapp.NamedBodyParam{Name: "first_name", Value: "Ana"})), 0},
		{"named wrong", whatsapp.NewTemplate(user, "named", "en_US", whatsapp.NamedBodyParams(whatsapp.NamedBodyParam{Name: "name", Value: "X"}, whatsapp.NamedBodyParam{Name: "first_name", Value: "Ana"})), 132000},
		{"named missing", whatsapp.NewTemplate(user, "named", "en_US", whatsapp.NamedBodyParams(whatsapp.NamedBodyParam{Name: "code", Value: "X"})), 132000},
		{"image header ok", whatsapp.NewTemplate(user, "with_image", "en_US", img), 0},
		{"image header missing", whatsapp.NewTemplate(user, "with_image", "en_US"), 132012},
		{"header on headerless", whatsapp.NewTemplate(user, "order_update", "en_US", img, whatsapp.BodyParams("a", "b")), 132000},
		{"paused", whatsapp.NewTemplate(user, "paused", "en_US"), 132015},
		{"disabled", whatsapp.NewTemplate(user, "disabled", "en_US"), 132016},
		{"pending", whatsapp.NewTemplate(user, "pending", "en_US"), 132001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := send(t, f, tt.m)
			if tt.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			class := whatsapp.Permanent
			if tt.code == 132015 || tt.code == 132016 {
				class = whatsapp.Held
			}
			wantCode(t, err, tt.code, class)
		})
	}

	f.OptOut(user)
	_, err := send(t, f, whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana")))
	wantCode(t, err, 131050, whatsapp.Permanent)
	if _, err := send(t, f, whatsapp.NewTemplate(user, "order_update", "en_US", whatsapp.BodyParams("a", "b"))); err != nil {
		t.Errorf("utility to opted-out user: %v", err)
	}
	f.OptIn(user)
	if _, err := send(t, f, whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana"))); err != nil {
		t.Errorf("after opt-in: %v", err)
	}
	f.AddTemplate(whatsapptest.Template{Name: "paused", Language: "en_US", Category: "MARKETING"})
	if _, err := send(t, f, whatsapp.NewTemplate(user, "paused", "en_US")); err != nil {
		t.Errorf("after AddTemplate: %v", err)
	}
}

func TestUnreachableAndFailAll(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{DisableWindow: true})
	f.Unreachable("15550000000")
	_, err := send(t, f, whatsapp.NewText("15550000000", "x"))
	wantCode(t, err, 131026, whatsapp.Permanent)
	for code, class := range map[int]whatsapp.Class{368: whatsapp.Fatal, 131048: whatsapp.Pause, 131057: whatsapp.Retryable, 131049: whatsapp.Permanent} {
		f.FailAll(code)
		_, err := send(t, f, whatsapp.NewText(user, "x"))
		wantCode(t, err, code, class)
	}
	f.FailAll(0)
	if _, err := send(t, f, whatsapp.NewText(user, "x")); err != nil {
		t.Fatal(err)
	}
}

func TestThroughput(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{DisableWindow: true, Rate: 2, Burst: 2})
	for i := 0; i < 2; i++ {
		if _, err := send(t, f, whatsapp.NewText(fmt.Sprint(100+i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := send(t, f, whatsapp.NewText("102", "x"))
	wantCode(t, err, 130429, whatsapp.Retryable)
	// Another phone number has its own bucket.
	if _, err := f.Client().Send(context.Background(), "2222", whatsapp.NewText("102", "x")); err != nil {
		t.Fatal(err)
	}
	c.Add(500 * time.Millisecond)
	if _, err := send(t, f, whatsapp.NewText("102", "x")); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	_, err = send(t, f, whatsapp.NewText("103", "x"))
	wantCode(t, err, 130429, whatsapp.Retryable)
	f.SetRate(0, 0)
	for i := 0; i < 50; i++ {
		if _, err := send(t, f, whatsapp.NewText("104", "x")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPairRate(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{DisableWindow: true, PairInterval: 6 * time.Second})
	if _, err := send(t, f, whatsapp.NewText(user, "1")); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, f, whatsapp.NewText(user, "2"))
	wantCode(t, err, 131056, whatsapp.Retryable)
	if whatsapp.ErrorCode(err) != whatsapp.CodePairRateLimit {
		t.Error("not a pair-rate error")
	}
	if _, err := send(t, f, whatsapp.NewText("447700900456", "other user")); err != nil {
		t.Fatal(err)
	}
	c.Add(6 * time.Second)
	if _, err := send(t, f, whatsapp.NewText(user, "3")); err != nil {
		t.Fatal(err)
	}
}

func TestInjectedFaults(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{DisableWindow: true, SlowDelay: time.Second})
	c := f.Client()
	c.HTTP.Timeout = 300 * time.Millisecond
	f.InjectNext(
		whatsapptest.Fault{Kind: whatsapptest.FaultHTTP500},
		whatsapptest.Fault{Kind: whatsapptest.FaultRateLimit},
		whatsapptest.Fault{Kind: whatsapptest.FaultPairRate},
		whatsapptest.ErrorFault(190),
		whatsapptest.Fault{Kind: whatsapptest.FaultError, Code: 2, HTTPStatus: 503},
		whatsapptest.Fault{Kind: whatsapptest.FaultDrop},
		whatsapptest.Fault{Kind: whatsapptest.FaultDropAfterAccept},
		whatsapptest.Fault{Kind: whatsapptest.FaultSlow},
		whatsapptest.Fault{Kind: whatsapptest.FaultSlow, Delay: 10 * time.Millisecond},
	)
	type outcome struct {
		class    whatsapp.Class
		code     int
		accepted bool
	}
	want := []outcome{
		{whatsapp.Retryable, 1, false},
		{whatsapp.Retryable, 130429, false},
		{whatsapp.Retryable, 131056, false},
		{whatsapp.Fatal, 190, false},
		{whatsapp.Retryable, 2, false},
		{whatsapp.Unknown, 0, false},
		{whatsapp.Unknown, 0, true},
		{whatsapp.Unknown, 0, true},
		{whatsapp.OK, 0, true},
		{whatsapp.OK, 0, true}, // queue drained
	}
	for i, w := range want {
		before := len(f.Sent())
		m := whatsapp.NewText(user, fmt.Sprint(i))
		_, err := c.Send(context.Background(), pn, m)
		if got := whatsapp.Classify(err); got != w.class || whatsapp.ErrorCode(err) != w.code {
			t.Errorf("request %d: %v (%v), want %v code %d", i, err, got, w.class, w.code)
		}
		if accepted := len(f.Sent()) > before; accepted != w.accepted {
			t.Errorf("request %d: accepted %v, want %v", i, accepted, w.accepted)
		}
	}
	at := f.Attempts()
	if at[5].Fault != whatsapptest.FaultDrop || at[5].HTTPStatus != 0 || at[6].MessageID == "" || at[6].HTTPStatus != 0 {
		t.Errorf("attempt records: %+v / %+v", at[5], at[6])
	}
	if at[0].HTTPStatus != 500 || at[4].HTTPStatus != 503 || at[3].HTTPStatus != 401 {
		t.Errorf("statuses %d %d %d", at[0].HTTPStatus, at[4].HTTPStatus, at[3].HTTPStatus)
	}
}

func TestRandomFaultsAreSeeded(t *testing.T) {
	run := func(seed uint64) []whatsapptest.FaultKind {
		f, _ := newFake(t, whatsapptest.Options{DisableWindow: true, Faults: whatsapptest.Faults{Seed: seed, HTTP500: 0.2, RateLimit: 0.2, PairRate: 0.1, DropAfterAccept: 0.1}})
		var kinds []whatsapptest.FaultKind
		for i := 0; i < 60; i++ {
			send(t, f, whatsapp.NewText(user, "x"))
		}
		for _, a := range f.Attempts() {
			kinds = append(kinds, a.Fault)
		}
		return kinds
	}
	a, b, c := run(7), run(7), run(8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("same seed, different faults")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("different seeds, same faults")
	}
	n := map[whatsapptest.FaultKind]int{}
	for _, k := range a {
		n[k]++
	}
	if n[whatsapptest.FaultNone] == 0 || n[whatsapptest.FaultHTTP500] == 0 || n[whatsapptest.FaultRateLimit] == 0 || n[whatsapptest.FaultDropAfterAccept] == 0 {
		t.Errorf("fault mix %v", n)
	}
}

type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestDuplicates(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{DisableWindow: true})
	for _, d := range []string{"outbox:1", "outbox:2", "outbox:1", "", ""} {
		m := whatsapp.NewText(user, "x")
		m.BizOpaqueCallbackData = d
		if _, err := send(t, f, m); err != nil {
			t.Fatal(err)
		}
	}
	if d := f.Duplicates(); len(d) != 1 || d["outbox:1"] != 2 {
		t.Errorf("duplicates %v", d)
	}
	rec := &recordingTB{TB: t}
	f.AssertNoDuplicates(rec)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "outbox:1") {
		t.Errorf("AssertNoDuplicates reported %v", rec.errs)
	}
	f.Reset()
	if len(f.Sent()) != 0 || len(f.Attempts()) != 0 || len(f.Duplicates()) != 0 {
		t.Error("reset")
	}
}

func TestConcurrentAndWaitSent(t *testing.T) {
	f, _ := newFake(t, whatsapptest.Options{DisableWindow: true})
	const n = 64
	done := make(chan []whatsapptest.Sent)
	go func() {
		s, ok := f.WaitSent(n, 10*time.Second)
		if !ok {
			t.Error("WaitSent timed out")
		}
		done <- s
	}()
	var wg sync.WaitGroup
	c := f.Client()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := whatsapp.NewText(fmt.Sprint(1000+i%8), "x")
			m.BizOpaqueCallbackData = fmt.Sprint("outbox:", i)
			if _, err := c.Send(context.Background(), pn, m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s := <-done; len(s) < n {
		t.Errorf("WaitSent returned %d", len(s))
	}
	f.AssertNoDuplicates(t)
	if got := f.Counts()["1003"]; got != n/8 {
		t.Errorf("count %d", got)
	}
	if _, ok := f.WaitSent(n+1, 50*time.Millisecond); ok {
		t.Error("WaitSent should time out")
	}
}

func TestStatusWebhooks(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{Templates: []whatsapptest.Template{{Name: "summer_reminder", Language: "en_US", Category: "MARKETING", Params: 1}}})
	m := whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana"))
	m.BizOpaqueCallbackData = "outbox:42"
	res, err := send(t, f, m)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(2 * time.Second)
	for _, st := range []string{"sent", "delivered", "read", "failed"} {
		body, sig, err := f.StatusWebhook(res.MessageID, st, 0)
		if err != nil {
			t.Fatal(err)
		}
		ev := parseOne(t, f, body, sig)
		s := ev.Status
		if ev.Kind != whatsapp.EventStatus || s.ID != res.MessageID || s.Status != st || s.RecipientID != user || s.BizOpaqueCallbackData != "outbox:42" ||
			ev.PhoneNumberID != pn || ev.WABAID != f.WABAID() || !ev.Time.Equal(t0.Add(2*time.Second)) {
			t.Errorf("%s: %+v %+v", st, ev, s)
		}
		switch st {
		case "sent":
			if s.Pricing == nil || !s.Pricing.Billable || s.Pricing.Category != "marketing" || s.Conversation.Origin.Type != "marketing" || s.Conversation.ExpirationTimestamp == "" {
				t.Errorf("sent pricing %+v %+v", s.Pricing, s.Conversation)
			}
		case "read":
			if s.Pricing != nil {
				t.Error("read has pricing")
			}
		case "failed":
			if len(s.Errors) != 1 || s.Errors[0].Code != 131026 {
				t.Errorf("failed errors %+v", s.Errors)
			}
		}
	}
	body, sig, _ := f.StatusWebhook(res.MessageID, "failed", 131049)
	if ev := parseOne(t, f, body, sig); ev.Status.Errors[0].Code != 131049 || ev.Status.Errors[0].Title == "" {
		t.Errorf("%+v", ev.Status.Errors)
	}
	if _, _, err := f.StatusWebhook("wamid.nope", "sent", 0); err == nil {
		t.Error("unknown id")
	}
	if _, _, err := f.StatusWebhook(res.MessageID, "queued", 0); err == nil {
		t.Error("unknown status")
	}
	// A free-form message inside the window is free service.
	f.Inbound(user, c.Now())
	r2, err := send(t, f, whatsapp.NewText(user, "hi"))
	if err != nil {
		t.Fatal(err)
	}
	body, sig, _ = f.StatusWebhook(r2.MessageID, "delivered", 0)
	if p := parseOne(t, f, body, sig).Status.Pricing; p.Billable || p.Category != "service" || p.Type != "free_customer_service" {
		t.Errorf("free-form pricing %+v", p)
	}
}

func TestInboundWebhooks(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{})
	body, sig, err := f.TextWebhook(user, "Sheena Nelson", "Hi!")
	if err != nil {
		t.Fatal(err)
	}
	ev := parseOne(t, f, body, sig)
	if ev.Kind != whatsapp.EventMessage || ev.ContactName != "Sheena Nelson" || ev.WaID != user || ev.Message.Reply().Text != "Hi!" || !ev.Time.Equal(t0) || !strings.HasPrefix(ev.Message.ID, "wamid.") {
		t.Errorf("%+v", ev)
	}
	// The webhook opened the window.
	if _, err := send(t, f, whatsapp.NewText(user, "welcome")); err != nil {
		t.Fatal(err)
	}
	c.Add(25 * time.Hour)
	_, err = send(t, f, whatsapp.NewText(user, "late"))
	wantCode(t, err, 131047, whatsapp.Permanent)

	body, sig, err = f.InboundWebhook("", "Sheena Nelson", whatsapp.InboundMessage{
		From: user, Type: "interactive", Timestamp: whatsapp.Timestamp(fmt.Sprint(c.Now().Add(-time.Minute).Unix())),
		Context:     &whatsapp.MessageContext{From: whatsapptest.DefaultDisplayPhoneNumber, ID: "wamid.x"},
		Interactive: &whatsapp.InboundInteractive{Type: "button_reply", ButtonReply: &whatsapp.InteractiveReply{ID: "yes", Title: "Yes please"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := parseOne(t, f, body, sig).Message.Reply(); r.Payload != "yes" || r.Button != "Yes please" {
		t.Errorf("%+v", r)
	}
	if _, err := send(t, f, whatsapp.NewText(user, "reopened")); err != nil {
		t.Fatal(err)
	}

	// PostWebhook signs like Meta.
	var got []byte
	var gotSig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotSig = r.Header.Get(whatsapp.SignatureHeader)
	}))
	defer srv.Close()
	status, err := f.PostWebhook(context.Background(), srv.URL+"/webhook", body)
	if err != nil || status != 200 || !whatsapp.VerifySignature(f.AppSecret(), got, gotSig) || string(got) != string(body) {
		t.Errorf("PostWebhook %d %v", status, err)
	}
}

func TestListTemplatesPaging(t *testing.T) {
	var ts []whatsapptest.Template
	for i := 0; i < 230; i++ {
		ts = append(ts, whatsapptest.Template{Name: fmt.Sprintf("t_%03d", i), Language: "en_US", Category: "UTILITY", Params: i % 3, Buttons: []string{"Stop promos"}})
	}
	ts = append(ts, whatsapptest.Template{Name: "named", Language: "en_US", Category: "MARKETING", NamedParams: []string{"first_name"}, Header: "IMAGE"})
	f, _ := newFake(t, whatsapptest.Options{Templates: ts})
	got, err := f.Client().ListTemplates(context.Background(), f.WABAID())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ts) {
		t.Fatalf("%d templates", len(got))
	}
	var first, last struct {
		Name, Language, Status, Category string
		ParameterFormat                  string `json:"parameter_format"`
		Components                       []map[string]any
	}
	json.Unmarshal(got[2], &first)
	json.Unmarshal(got[len(got)-1], &last)
	if first.Name != "t_002" || first.Status != "APPROVED" || first.Category != "UTILITY" || first.ParameterFormat != "POSITIONAL" || first.Components[0]["text"] != "Hello {{1}} {{2}}!" {
		t.Errorf("first %+v", first)
	}
	if last.Name != "named" || last.ParameterFormat != "NAMED" || last.Components[0]["format"] != "IMAGE" {
		t.Errorf("last %+v", last)
	}
	// Small pages through raw HTTP: paging.next is absolute, keeps the
	// limit, and is absent on the last page.
	next := f.URL() + "/" + f.WABAID() + "/message_templates?limit=100"
	var sizes []int
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.Header.Set("Authorization", "Bearer "+f.Token())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data   []json.RawMessage
			Paging struct {
				Cursors struct{ Before, After string }
				Next    string
			}
		}
		json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if page.Paging.Cursors.After == "" {
			t.Error("no cursors")
		}
		sizes = append(sizes, len(page.Data))
		next = page.Paging.Next
		if next != "" && !strings.Contains(next, "limit=100") {
			t.Errorf("next lost the limit: %s", next)
		}
	}
	if fmt.Sprint(sizes) != "[100 100 31]" {
		t.Errorf("page sizes %v", sizes)
	}
	if len(f.Attempts()) != 0 {
		t.Error("template listing recorded as message attempts")
	}

	raw := []json.RawMessage{json.RawMessage(`{"name":"x","language":"en_US","status":"REJECTED","category":"MARKETING","components":[]}`)}
	f2, _ := newFake(t, whatsapptest.Options{TemplateJSON: raw})
	got, err = f2.Client().ListTemplates(context.Background(), f2.WABAID())
	if err != nil || len(got) != 1 || string(got[0]) != string(raw[0]) {
		t.Errorf("raw templates: %s %v", got, err)
	}
	if _, err := f2.Client().ListTemplates(context.Background(), "42"); whatsapp.ErrorCode(err) != 100 {
		t.Errorf("wrong WABA: %v", err)
	}

	res, err := http.Get(f.URL() + "/" + f.WABAID() + "/message_templates")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("no token: HTTP %d", res.StatusCode)
	}
	// Default page size without a limit.
	req, _ := http.NewRequest("GET", f.URL()+"/"+f.WABAID()+"/message_templates", nil)
	req.Header.Set("Authorization", "Bearer "+f.Token())
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct{ Data []json.RawMessage }
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if len(page.Data) != whatsapptest.DefaultTemplatePageSize {
		t.Errorf("default page %d", len(page.Data))
	}
}

func TestNilTBAndClose(t *testing.T) {
	f := whatsapptest.New(nil, whatsapptest.Options{DisableWindow: true})
	if _, err := f.Client().Send(context.Background(), pn, whatsapp.NewText(user, "x")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(f.URL(), "/v23.0") {
		t.Error(f.URL())
	}
	f.Close()
	f.Close()
	_, err := f.Client().Send(context.Background(), pn, whatsapp.NewText(user, "x"))
	if whatsapp.Classify(err) != whatsapp.Retryable {
		t.Errorf("closed fake: %v", err)
	}
}

// Close does not wait for slow responses to finish.
func TestCloseWithSlowInFlight(t *testing.T) {
	f := whatsapptest.New(nil, whatsapptest.Options{DisableWindow: true, SlowDelay: time.Hour})
	f.InjectNext(whatsapptest.Fault{Kind: whatsapptest.FaultSlow})
	errc := make(chan error, 1)
	go func() {
		_, err := f.Client().Send(context.Background(), pn, whatsapp.NewText(user, "x"))
		errc <- err
	}()
	if _, ok := f.WaitSent(1, 5*time.Second); !ok {
		t.Fatal("not accepted")
	}
	start := time.Now()
	f.Close()
	if time.Since(start) > 5*time.Second {
		t.Error("Close blocked")
	}
	if err := <-errc; whatsapp.Classify(err) != whatsapp.Unknown {
		t.Errorf("in-flight send: %v", err)
	}
}

// The lifecycle webhooks change what the fake accepts, as Meta does, and
// parse as Meta's webhook references describe them.
func TestTemplateLifecycleWebhooks(t *testing.T) {
	f, c := newFake(t, whatsapptest.Options{Templates: []whatsapptest.Template{
		{Name: "summer_reminder", Language: "en_US", Category: "UTILITY", Params: 1},
	}})
	tmpl := whatsapp.NewTemplate(user, "summer_reminder", "en_US", whatsapp.BodyParams("Ana"))
	steps := []struct {
		name  string
		hook  func() ([]byte, string, error)
		field string
		code  int
	}{
		{"paused", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "PAUSED", "LOW_QUALITY")
		}, whatsapp.FieldTemplateStatus, 132015},
		{"flagged keeps it", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "FLAGGED", "")
		}, whatsapp.FieldTemplateStatus, 132015},
		{"approved", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "APPROVED", "NONE")
		}, whatsapp.FieldTemplateStatus, 0},
		{"disabled", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "DISABLED", "")
		}, whatsapp.FieldTemplateStatus, 132016},
		{"reinstated", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "REINSTATED", "")
		}, whatsapp.FieldTemplateStatus, 0},
		{"pending", func() ([]byte, string, error) {
			return f.TemplateStatusWebhook("summer_reminder", "en_US", "PENDING", "")
		}, whatsapp.FieldTemplateStatus, 132001},
		{"category", func() ([]byte, string, error) {
			return f.TemplateCategoryWebhook("summer_reminder", "en_US", "UTILITY", "MARKETING")
		}, whatsapp.FieldTemplateCategory, 132001},
		{"quality", func() ([]byte, string, error) {
			return f.TemplateQualityWebhook("summer_reminder", "en_US", "GREEN", "RED")
		}, whatsapp.FieldTemplateQuality, 132001},
		{"phone", func() ([]byte, string, error) {
			return f.PhoneQualityWebhook("DOWNGRADE", "TIER_1K", "TIER_10K", "2000")
		}, whatsapp.FieldPhoneQuality, 132001},
	}
	for _, st := range steps {
		c.now = c.now.Add(time.Minute)
		body, sig, err := st.hook()
		if err != nil {
			t.Fatal(err)
		}
		if !whatsapp.VerifySignature(f.AppSecret(), body, sig) {
			t.Fatalf("%s: bad signature", st.name)
		}
		env, err := whatsapp.ParseWebhook(body)
		if err != nil {
			t.Fatal(err)
		}
		us, err := env.Accounts()
		if err != nil || len(us) != 1 || us[0].Field != st.field || !us[0].Time.Equal(c.now.Truncate(time.Second)) {
			t.Fatalf("%s: %+v %v", st.name, us, err)
		}
		_, err = send(t, f, tmpl)
		switch {
		case st.code == 0 && err != nil:
			t.Errorf("%s: send refused: %v", st.name, err)
		case st.code != 0 && whatsapp.ErrorCode(err) != st.code:
			t.Errorf("%s: send answered %v, want %d", st.name, err, st.code)
		}
	}
	if f.SetTemplateStatus("unknown", "en_US", "APPROVED") {
		t.Error("an unknown template was changed")
	}
}

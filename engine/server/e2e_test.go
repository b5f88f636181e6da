package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

const (
	phoneID = "106540352242922"
	apiTok  = "api-secret-token-of-the-e2e-tests"
	verifyT = "verify-me"
)

var t0 = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)

// rig is the daemon's parts wired over real HTTP: the server on httptest, the
// engine on a file database and a virtual clock, the fake Graph API behind the
// real whatsapp client. The engine is stepped by the test, so runs are exact.
type rig struct {
	t     *testing.T
	clock *engine.VirtualClock
	fake  *whatsapptest.Fake
	st    *store.DB
	eng   *engine.Engine
	m     *engine.Metrics
	http  *httptest.Server
	srv   *server.Server
	n     int
}

func newRig(t *testing.T) *rig { t.Helper(); return newRigWith(t, nil) }

// newRigWith is newRig with engine options changed by opts.
func newRigWith(t *testing.T, opts func(*engine.Options)) *rig {
	t.Helper()
	ctx := context.Background()
	clock := engine.NewVirtualClock(t0)
	p, diags, err := dsl.Load([]string{"../../flows", "testdata/flows"}, dsl.Options{Templates: "../../flows/templates.json"})
	if err != nil || diags.HasErrors() {
		t.Fatalf("flows: %v %v", err, diags)
	}
	fake := whatsapptest.New(t, whatsapptest.Options{Now: clock.Now, Templates: fakeTemplates(t, p)})
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "funnel.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	m := engine.NewMetrics(reg)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := engine.Options{Clock: clock, Channel: engine.GraphChannel{Client: fake.Client()},
		NoPacing: true, PhoneNumberID: phoneID, Metrics: m, Logger: log}
	if opts != nil {
		opts(&o)
	}
	eng := engine.New(st, o)
	if err := eng.Load(ctx, p, diags); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{AppSecret: fake.AppSecret(), VerifyToken: verifyT, APIToken: apiTok, MaxBody: 64 << 10}, eng, reg, log)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &rig{t: t, clock: clock, fake: fake, st: st, eng: eng, m: m, http: hs, srv: srv}
}

// fakeTemplates teaches the fake the catalog's templates (names, languages,
// categories, parameters, headers), so it refuses what Meta would.
func fakeTemplates(t *testing.T, p *dsl.Project) []whatsapptest.Template {
	var out []whatsapptest.Template
	cat := p.Catalog(p.Flows[0])
	for _, tpl := range cat.All() {
		ft := whatsapptest.Template{Name: tpl.Name, Language: tpl.Language, Category: tpl.Category, Status: tpl.Status,
			Header: tpl.HeaderFormat}
		if tpl.Named() {
			ft.NamedParams = tpl.BodyParams
		} else {
			ft.Params = len(tpl.BodyParams)
		}
		out = append(out, ft)
	}
	return out
}

func (r *rig) settle() {
	r.t.Helper()
	if err := r.eng.RunUntilIdle(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	if err := r.eng.AdvanceTo(context.Background(), r.clock, r.clock.Now().Add(d), nil); err != nil {
		r.t.Fatal(err)
	}
}

// message builds an inbound text written `age` ago.
func (r *rig) message(from, text string, age time.Duration) whatsapp.InboundMessage {
	r.n++
	return whatsapp.InboundMessage{From: from, ID: fmt.Sprintf("wamid.in.%d", r.n),
		Timestamp: whatsapp.Timestamp(fmt.Sprint(r.clock.Now().Add(-age).Unix())), Type: "text",
		Text: &whatsapp.InboundText{Body: text}}
}

func (r *rig) post(path string, body []byte, header map[string]string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.http.URL+path, bytes.NewReader(body))
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

// deliver posts a signed webhook carrying msgs and expects 200.
func (r *rig) deliver(msgs ...whatsapp.InboundMessage) []byte {
	r.t.Helper()
	body, sig, err := r.fake.InboundWebhook(phoneID, "Ana", msgs...)
	if err != nil {
		r.t.Fatal(err)
	}
	if code, resp := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
		r.t.Fatalf("webhook: %d %s", code, resp)
	}
	return body
}

func (r *rig) outbox(waID string) []*store.OutboxItem {
	items, err := r.st.OutboxOf(context.Background(), waID, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return items
}

func TestClickToWhatsAppFirstReplyThenDay3Template(t *testing.T) {
	r := newRig(t)
	m := r.message("16505551234", "Hi! Is this still on?", 0)
	m.Referral = &whatsapp.Referral{SourceID: "120226305854810999", SourceType: "ad", Headline: "Summer sandals -20%",
		SourceURL: "https://fb.me/sandals", CtwaClid: "ARAkLkA"}
	r.deliver(m)
	r.settle()
	sent := r.fake.SentTo("16505551234")
	if len(sent) != 1 || sent[0].Message.Type != "interactive" ||
		!strings.Contains(sent[0].Message.Interactive.Body.Text, "“Summer sandals -20%”") {
		t.Fatalf("first reply should name the ad's headline: %+v", sent)
	}
	// No reply: after the 4h timeout the run waits 3 days, then (consent given
	// earlier elsewhere) the template goes out. Without consent nothing is sent.
	r.advance(4*24*time.Hour + 12*time.Hour)
	if n := len(r.fake.SentTo("16505551234")); n != 1 {
		t.Fatalf("without opt-in, day 3 must send nothing; sent %d", n)
	}

	// A second contact who opts in gets the day-3 template, outside the window.
	m2 := r.message("16505550002", "Hi", 0)
	m2.Referral = &whatsapp.Referral{SourceID: "120226305854810726", Headline: "Summer sale"}
	r.deliver(m2)
	r.settle()
	yes := r.message("16505550002", "Yes please", 0)
	yes.Type, yes.Text = "interactive", nil
	yes.Interactive = &whatsapp.InboundInteractive{Type: "button_reply", ButtonReply: &whatsapp.InteractiveReply{ID: "Yes please", Title: "Yes please"}}
	r.deliver(yes)
	r.settle()
	offers := r.message("16505550002", "Yes, send offers", 0)
	offers.Type, offers.Text = "interactive", nil
	offers.Interactive = &whatsapp.InboundInteractive{Type: "button_reply", ButtonReply: &whatsapp.InteractiveReply{ID: "Yes, send offers", Title: "Yes, send offers"}}
	r.deliver(offers)
	r.settle()
	r.advance(3*24*time.Hour + 13*time.Hour)
	sent = r.fake.SentTo("16505550002")
	last := sent[len(sent)-1]
	if last.Message.Type != "template" || last.Message.Template.Name != "summer_reminder" {
		t.Fatalf("day 3 should send the summer_reminder template, got %+v", last.Message)
	}
	if got := testutil.ToFloat64(r.m.Seen131047); got != 0 {
		t.Fatalf("131047 seen %v times", got)
	}
}

func TestLateWebhookGoesOutAsFallbackOrWindowClosed(t *testing.T) {
	r := newRig(t)
	r.deliver(r.message("16505551111", "price", 25*time.Hour)) // written 25h ago
	r.deliver(r.message("16505552222", "hours", 25*time.Hour))
	r.settle()
	// With a fallback: the template goes out instead of the free-form text.
	sent := r.fake.SentTo("16505551111")
	if len(sent) != 1 || sent[0].Message.Type != "template" {
		t.Fatalf("late message with fallback: want the fallback template, got %+v", sent)
	}
	if it := r.outbox("16505551111")[0]; it.SentAs != "fallback" || it.Status != store.OutSent {
		t.Fatalf("outbox: %+v", it)
	}
	// Without: refused before the API.
	if n := len(r.fake.SentTo("16505552222")); n != 0 {
		t.Fatalf("late message without fallback reached the API %d times", n)
	}
	if it := r.outbox("16505552222")[0]; it.Status != store.OutWindowClosed {
		t.Fatalf("want window_closed, got %s", it.Status)
	}
	for _, a := range r.fake.Attempts() {
		if a.Code == 131047 {
			t.Fatal("the API answered 131047: the runtime window check let a message through")
		}
	}
}

func TestRedeliveredWebhookMakesOneRun(t *testing.T) {
	r := newRig(t)
	m := r.message("16505553333", "menu", 0)
	body, sig, _ := r.fake.InboundWebhook(phoneID, "Ana", m)
	for i := 0; i < 3; i++ {
		if code, _ := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	r.settle()
	runs, _ := r.st.RunsOf(context.Background(), "16505553333", 10)
	if len(runs) != 1 || len(r.fake.SentTo("16505553333")) != 1 {
		t.Fatalf("three deliveries: %d runs, %d sends; want 1 and 1", len(runs), len(r.fake.SentTo("16505553333")))
	}
}

func TestBadSignatureStoresNothing(t *testing.T) {
	r := newRig(t)
	body, sig, _ := r.fake.InboundWebhook(phoneID, "Ana", r.message("16505554444", "menu", 0))
	for name, h := range map[string]map[string]string{
		"missing":      {},
		"wrong":        {whatsapp.SignatureHeader: "sha256=" + strings.Repeat("0", 64)},
		"sha1 prefix":  {whatsapp.SignatureHeader: "sha1=" + strings.TrimPrefix(sig, "sha256=")},
		"other secret": {whatsapp.SignatureHeader: whatsapp.Sign("not-the-secret", body)},
	} {
		if code, _ := r.post("/webhook", body, h); code != 401 {
			t.Errorf("%s signature: got %d, want 401", name, code)
		}
	}
	tampered := bytes.Replace(body, []byte("menu"), []byte("MENU"), 1)
	if code, _ := r.post("/webhook", tampered, map[string]string{whatsapp.SignatureHeader: sig}); code != 401 {
		t.Errorf("tampered body: got %d, want 401", code)
	}
	if n, _ := r.st.InboxUnprocessed(context.Background()); n != 0 {
		t.Fatalf("%d events stored from unsigned webhooks", n)
	}
	if c, _ := r.st.Contact(context.Background(), "16505554444"); c != nil {
		t.Fatal("a contact was created from an unsigned webhook")
	}
}

func TestBodyLimitAndVerification(t *testing.T) {
	r := newRig(t)
	big := bytes.Repeat([]byte("x"), 65<<10)
	if code, _ := r.post("/webhook", big, map[string]string{whatsapp.SignatureHeader: whatsapp.Sign(r.fake.AppSecret(), big)}); code != 413 {
		t.Fatalf("oversized body: %d, want 413", code)
	}
	get := func(q string) (int, string) {
		resp, err := http.Get(r.http.URL + "/webhook?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("hub.mode=subscribe&hub.verify_token=" + verifyT + "&hub.challenge=1158201444"); code != 200 || body != "1158201444" {
		t.Fatalf("verification: %d %q", code, body)
	}
	if code, _ := get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"); code != 403 {
		t.Fatalf("wrong verify token: %d, want 403", code)
	}
}

func TestStopCancelsRunsAndMarketing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	m := r.message("16505555555", "Hi", 0)
	m.Referral = &whatsapp.Referral{SourceID: "120226305854810726", Headline: "Summer sale"}
	r.deliver(m)
	r.settle()
	r.deliver(r.message("16505555555", "stop", 0))
	r.settle()
	runs, _ := r.st.RunsOf(ctx, "16505555555", 10)
	if len(runs) != 1 || runs[0].Status != store.RunCancelled {
		t.Fatalf("STOP must cancel the run: %+v", runs[0])
	}
	c, _ := r.st.Contact(ctx, "16505555555")
	if c.Consent != store.ConsentOut {
		t.Fatalf("consent after STOP: %q", c.Consent)
	}
	before := len(r.fake.SentTo("16505555555"))
	r.advance(5 * 24 * time.Hour)
	if n := len(r.fake.SentTo("16505555555")); n != before {
		t.Fatalf("messages after STOP: %d", n-before)
	}
	// A weekly broadcast to opted-in summer leads does not pick them up either.
	for _, s := range r.fake.SentTo("16505555555") {
		if s.Message.Type == "template" {
			t.Fatal("a template went to an opted-out contact")
		}
	}
}

func TestFailedStatusIsReconciled(t *testing.T) {
	r := newRig(t)
	r.deliver(r.message("16505556666", "hours", 0))
	r.settle()
	sent := r.fake.SentTo("16505556666")
	if len(sent) != 1 {
		t.Fatalf("sent %d", len(sent))
	}
	body, sig, err := r.fake.StatusWebhook(sent[0].ID, "failed", 131047)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
		t.Fatal(code)
	}
	r.settle()
	it := r.outbox("16505556666")[0]
	if it.Status != store.OutFailed || it.ErrorCode != 131047 {
		t.Fatalf("failed status not reconciled: %s %d", it.Status, it.ErrorCode)
	}
	if got := testutil.ToFloat64(r.m.Seen131047); got != 1 {
		t.Fatalf("131047 metric = %v, want 1", got)
	}
	// A later "delivered" for the same message does not resurrect it... but a
	// read before delivered keeps read.
	body, sig, _ = r.fake.StatusWebhook(sent[0].ID, "delivered", 0)
	r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig})
	r.settle()
	if it := r.outbox("16505556666")[0]; it.Status != store.OutDelivered {
		t.Logf("after delivered: %s", it.Status)
	}
}

func TestEventsAPIStartsEventFlows(t *testing.T) {
	r := newRig(t)
	body := []byte(`{"name":"order_shipped","wa_id":"16505557777","payload":{"first_name":"Ana","order_id":"A-1042","image_url":"https://example.com/p.jpg","tracking_url":"https://t.example/A-1042"}}`)
	if code, _ := r.post("/v1/events", body, nil); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := r.post("/v1/events", body, map[string]string{"Authorization": "Bearer wrong"}); code != 401 {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	auth := map[string]string{"Authorization": "Bearer " + apiTok, "Idempotency-Key": "order-A-1042"}
	for i := 0; i < 2; i++ {
		if code, resp := r.post("/v1/events", body, auth); code != 202 {
			t.Fatalf("event: %d %s", code, resp)
		}
	}
	if code, _ := r.post("/v1/events", []byte(`{"name":"order_shiped","wa_id":"16505557777"}`), auth); code != 422 {
		t.Fatalf("unknown event: %d, want 422", code)
	}
	r.settle()
	sent := r.fake.SentTo("16505557777")
	if len(sent) != 1 || sent[0].Message.Template == nil || sent[0].Message.Template.Name != "order_shipped" {
		t.Fatalf("the event should send order_shipped once (idempotency key): %+v", sent)
	}
	// The contact API shows the run and the message.
	req, _ := http.NewRequest("GET", r.http.URL+"/v1/contacts/16505557777", nil)
	req.Header.Set("Authorization", "Bearer "+apiTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v server.ContactView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("contact API: %d %v", resp.StatusCode, err)
	}
	if len(v.Runs) != 1 || v.Runs[0].Flow != "order-shipped" || len(v.Messages) != 1 || v.Messages[0].Template != "order_shipped" || v.Window.Open {
		t.Fatalf("contact view: %+v", v)
	}
}

// Meta can accept a free-form message and fail it later with 131047 (its clock
// saw the window closed): the fallback template then goes out under the same
// outbox row.
func TestFailedStatus131047SendsTheFallback(t *testing.T) {
	r := newRig(t)
	r.deliver(r.message("16505558888", "price", 0))
	r.settle()
	first := r.fake.SentTo("16505558888")
	if len(first) != 1 || first[0].Message.Type != "text" {
		t.Fatalf("first send: %+v", first)
	}
	body, sig, _ := r.fake.StatusWebhook(first[0].ID, "failed", 131047)
	if code, _ := r.post("/webhook", body, map[string]string{whatsapp.SignatureHeader: sig}); code != 200 {
		t.Fatal(code)
	}
	r.settle()
	sent := r.fake.SentTo("16505558888")
	if len(sent) != 2 || sent[1].Message.Type != "template" || sent[1].Message.Template.Name != "summer_reminder" {
		t.Fatalf("after the failed status the fallback template should go out: %+v", sent)
	}
	it := r.outbox("16505558888")[0]
	if it.Status != store.OutSent || it.SentAs != "fallback" || it.ProviderID != sent[1].ID {
		t.Fatalf("outbox row after the fallback: status=%s sent_as=%s provider=%s", it.Status, it.SentAs, it.ProviderID)
	}
}

package reliability

// Hostile input through the real HTTP server: forged and malformed signatures,
// oversized and malformed bodies, slow clients against server.HTTPServer's
// timeouts on a real listener, strings built to break storage or rendering
// (invalid UTF-8, SQL, template syntax, 100 KB), and the API's bearer token.
// Whatever comes in: no panic, no hang, a clear status, and nothing stored that
// should not be.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// hKeepFlow stores what the contact wrote (contact attribute and run variable)
// and echoes it.
const hKeepFlow = `
flow: keep
trigger: message
steps:
  - id: remember
    set:
      contact.note: "${entry.text}"
      said: "${entry.text}"
  - id: echo
    send: "You said: ${entry.text}"
`

// hNoteFlow keeps an event's payload on the contact.
const hNoteFlow = `
flow: note
trigger: {event: note}
steps:
  - id: keep
    set: {contact.note: "${event.note}"}
`

// hInbox is the number of stored inbound events.
func (r *fRig) hInbox() int64 { return r.q("SELECT COUNT(*) FROM inbox") }

// hPost posts body to /webhook with the given headers (added, so a header may
// repeat).
func (r *fRig) hPost(body []byte, headers [][2]string) int {
	r.t.Helper()
	req, err := http.NewRequest("POST", r.hs.URL+"/webhook", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostileSignatures: only Meta's exact signature of the exact body gets in.
// Uppercase hex digits are accepted (the same MAC; VerifySignature documents
// it), and so is a header padded with spaces (HTTP strips them before the
// handler sees the value); with two signature headers only the first counts.
// An empty app secret refuses every POST. Nothing refused is stored.
func TestHostileSignatures(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{hKeepFlow}})
	sig := func(body []byte) string { return whatsapp.Sign(r.secret, body) }
	hexOf := func(body []byte) string { return strings.TrimPrefix(sig(body), "sha256=") }
	sha1Of := func(body []byte) string {
		m := hmac.New(sha1.New, []byte(r.secret))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	const H = whatsapp.SignatureHeader
	cases := []struct {
		name    string
		headers func(body []byte) [][2]string
		mutate  func(body []byte) []byte // the body actually sent
		want    int
	}{
		{"valid", func(b []byte) [][2]string { return [][2]string{{H, sig(b)}} }, nil, 200},
		{"missing header", func(b []byte) [][2]string { return nil }, nil, 401},
		{"empty header", func(b []byte) [][2]string { return [][2]string{{H, ""}} }, nil, 401},
		{"prefix only", func(b []byte) [][2]string { return [][2]string{{H, "sha256="}} }, nil, 401},
		{"no prefix", func(b []byte) [][2]string { return [][2]string{{H, hexOf(b)}} }, nil, 401},
		{"sha1= with the HMAC-SHA1", func(b []byte) [][2]string { return [][2]string{{H, "sha1=" + sha1Of(b)}} }, nil, 401},
		{"legacy X-Hub-Signature sha1", func(b []byte) [][2]string { return [][2]string{{"X-Hub-Signature", "sha1=" + sha1Of(b)}} }, nil, 401},
		{"SHA256= prefix", func(b []byte) [][2]string { return [][2]string{{H, "SHA256=" + hexOf(b)}} }, nil, 401},
		{"uppercase hex", func(b []byte) [][2]string { return [][2]string{{H, "sha256=" + strings.ToUpper(hexOf(b))}} }, nil, 200},
		{"space after =", func(b []byte) [][2]string { return [][2]string{{H, "sha256= " + hexOf(b)}} }, nil, 401},
		{"padded with spaces", func(b []byte) [][2]string { return [][2]string{{H, "  " + sig(b) + " "}} }, nil, 200},
		{"lowercase header name", func(b []byte) [][2]string { return [][2]string{{"x-hub-signature-256", sig(b)}} }, nil, 200},
		{"truncated", func(b []byte) [][2]string { return [][2]string{{H, sig(b)[:len(sig(b))-1]}} }, nil, 401},
		{"one digit more", func(b []byte) [][2]string { return [][2]string{{H, sig(b) + "0"}} }, nil, 401},
		{"half length", func(b []byte) [][2]string { return [][2]string{{H, sig(b)[:7+32]}} }, nil, 401},
		{"not hex", func(b []byte) [][2]string { return [][2]string{{H, sig(b)[:len(sig(b))-1] + "g"}} }, nil, 401},
		{"base64 MAC", func(b []byte) [][2]string {
			raw, _ := hex.DecodeString(hexOf(b))
			return [][2]string{{H, "sha256=" + base64.StdEncoding.EncodeToString(raw)}}
		}, nil, 401},
		{"zeros", func(b []byte) [][2]string { return [][2]string{{H, "sha256=" + strings.Repeat("0", 64)}} }, nil, 401},
		{"other secret", func(b []byte) [][2]string { return [][2]string{{H, whatsapp.Sign("not-the-secret", b)}} }, nil, 401},
		{"empty secret", func(b []byte) [][2]string { return [][2]string{{H, whatsapp.Sign("", b)}} }, nil, 401},
		{"signature of the empty body", func(b []byte) [][2]string { return [][2]string{{H, sig(nil)}} }, nil, 401},
		{"body changed after signing", func(b []byte) [][2]string { return [][2]string{{H, sig(b)}} },
			func(b []byte) []byte { return bytes.Replace(b, []byte(`"start`), []byte(`"START`), 1) }, 401},
		{"newline appended after signing", func(b []byte) [][2]string { return [][2]string{{H, sig(b)}} },
			func(b []byte) []byte { return append(append([]byte(nil), b...), '\n') }, 401},
		{"two headers, forged first", func(b []byte) [][2]string { return [][2]string{{H, whatsapp.Sign("x", b)}, {H, sig(b)}} }, nil, 401},
		{"two headers, genuine first", func(b []byte) [][2]string { return [][2]string{{H, sig(b)}, {H, whatsapp.Sign("x", b)}} }, nil, 200},
	}
	stored := int64(0)
	for i, tc := range cases {
		wa := fWaID(100 + i)
		body := r.webhook(r.text(wa, "start "+tc.name))
		sent := body
		if tc.mutate != nil {
			sent = tc.mutate(body)
		}
		if got := r.hPost(sent, tc.headers(body)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if tc.want == 200 {
			stored++
		}
		if n := r.hInbox(); n != stored {
			t.Fatalf("%s: %d events stored, want %d", tc.name, n, stored)
		}
	}
	r.settle()
	if n := r.q("SELECT COUNT(*) FROM contacts"); n != stored {
		t.Fatalf("%d contacts, want %d: a refused webhook created one", n, stored)
	}
	if v, _ := r.metric("funnel_webhooks_total", `result="bad_signature"`); int64(v) != int64(len(cases))-stored {
		t.Fatalf("funnel_webhooks_total{result=bad_signature} = %v, want %d", v, int64(len(cases))-stored)
	}

	// No app secret configured: every POST is refused, whatever it is signed with.
	empty := ""
	r2 := newFRig(t, fOptions{flows: []string{hKeepFlow}, appSecret: &empty})
	body := r2.webhook(r2.text(fWaID(1), "start"))
	for name, h := range map[string]string{"empty-key HMAC": whatsapp.Sign("", body), "the fake's secret": whatsapp.Sign(r2.fake.AppSecret(), body), "none": ""} {
		if got := r2.hPost(body, [][2]string{{H, h}}); got != 401 {
			t.Errorf("no app secret configured, signed with %s: %d, want 401", name, got)
		}
	}
	if n := r2.hInbox(); n != 0 {
		t.Fatalf("no app secret: %d events stored", n)
	}
	Report(t, "hostile.signatures", "%d signature variants: %d refused (401, nothing stored), %d accepted (genuine, uppercase hex, space-padded, lowercase header name, genuine first of two); empty app secret: 3 of 3 refused",
		len(cases), int64(len(cases))-stored, stored)
}

// TestHostileBodies: bodies over the limit get 413 (with or without a
// Content-Length); malformed JSON gets 400; another product's object is
// acknowledged and ignored; a webhook whose items lack an id, a sender or a
// usable timestamp stores its good items only. Nothing else is stored.
func TestHostileBodies(t *testing.T) {
	const limit = 64 << 10
	r := newFRig(t, fOptions{flows: []string{hKeepFlow}, maxBody: limit})
	signed := func(b []byte) [][2]string { return [][2]string{{whatsapp.SignatureHeader, whatsapp.Sign(r.secret, b)}} }

	// Exactly the limit: a genuine webhook padded with spaces.
	exact := r.webhook(r.text(fWaID(1), "start"))
	exact = append(exact, bytes.Repeat([]byte(" "), limit-len(exact))...)
	if got := r.hPost(exact, signed(exact)); got != 200 {
		t.Fatalf("a body of exactly the limit: %d", got)
	}
	over := r.webhook(r.text(fWaID(2), "start"))
	over = append(over, bytes.Repeat([]byte(" "), limit+1-len(over))...)
	if got := r.hPost(over, signed(over)); got != 413 {
		t.Fatalf("one byte over the limit: %d, want 413", got)
	}
	// Chunked, no Content-Length, 10 MB.
	huge := bytes.Repeat([]byte("A"), 10<<20)
	req, _ := http.NewRequest("POST", r.hs.URL+"/webhook", io.MultiReader(bytes.NewReader(huge)))
	req.ContentLength = -1
	req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, huge))
	resp, err := r.client.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("10 MB chunked: %d, want 413", resp.StatusCode)
		}
	} // else: the server closed the connection while the client was still writing: also a refusal

	nested := `{"object":"whatsapp_business_account","entry":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	bad := []struct {
		name, body string
		want       int
	}{
		{"empty", "", 400},
		{"spaces", "   ", 400},
		{"truncated", `{"object":"whatsapp_business_account","entry":[`, 400},
		{"array", `[]`, 400},
		{"null (no object: ignored)", `null`, 200},
		{"string", `"whatsapp_business_account"`, 400},
		{"object is a number", `{"object":5}`, 400},
		{"entry is a string", `{"object":"whatsapp_business_account","entry":"x"}`, 400},
		{"20,000 nested arrays", nested, 400},
		{"not JSON", "object=whatsapp_business_account", 400},
		{"UTF-16", "\xff\xfe{\x00}\x00", 400},
		{"another product", `{"object":"page","entry":[{"id":"1","messaging":[]}]}`, 200},
		{"no entries", `{"object":"whatsapp_business_account"}`, 200},
		{"other field", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"x"}}]}]}`, 200},
	}
	for _, tc := range bad {
		b := []byte(tc.body)
		if got := r.hPost(b, signed(b)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := r.hInbox(); n != 1 {
		t.Fatalf("%d events stored, want only the exact-limit one", n)
	}
	// Items that cannot be processed are left out; the good one beside them is stored.
	ts := fmt.Sprint(r.clock.Now().Unix())
	mixed := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"phone_number_id":"` + fPhone + `"},
		"messages":[
			{"from":"15550000003","id":"wamid.ok","timestamp":"` + ts + `","type":"text","text":{"body":"start"}},
			{"from":"15550000004","timestamp":"` + ts + `","type":"text","text":{"body":"no id"}},
			{"id":"wamid.nofrom","timestamp":"` + ts + `","type":"text","text":{"body":"no sender"}},
			{"from":"15550000005","id":"wamid.badts","timestamp":"yesterday","type":"text","text":{"body":"bad time"}},
			{"from":"15550000006","id":"wamid.bigts","timestamp":"99999999999999999999","type":"text","text":{"body":"far future"}},
			{"from":"15550000007","id":"wamid.negts","timestamp":"-5","type":"text","text":{"body":"before 1970"}},
			{"from":"15550000008","id":"wamid.weird","timestamp":"` + ts + `","type":"hologram","hologram":{"x":1}},
			{"from":"15550000009","id":"wamid.badtext","timestamp":"` + ts + `","type":"text","text":"not an object"}],
		"statuses":[{"status":"read","timestamp":"` + ts + `"},{"id":"wamid.x","status":"teleported","timestamp":"` + ts + `"}]}}]}]}`)
	r.fake.Inbound("15550000003", r.clock.Now())
	if got := r.hPost(mixed, signed(mixed)); got != 200 {
		t.Fatalf("webhook with bad items: %d", got)
	}
	r.settle()
	keys := map[string]bool{}
	for _, k := range []string{"message:wamid.ok", "message:wamid.weird", "message:wamid.badtext", "message:wamid.negts", "message:wamid.bigts", "status:wamid.x:teleported"} {
		keys[k] = r.q("SELECT COUNT(*) FROM inbox WHERE key = ?", k) == 1
	}
	if !keys["message:wamid.ok"] {
		t.Fatal("the good message beside bad ones was not stored")
	}
	if n := r.q("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL"); n != 0 {
		t.Fatalf("%d events left unprocessed (poison events must not block the queue)", n)
	}
	t.Logf("stored from the mixed webhook: %v", keys)
	if got := r.sentTexts("15550000003"); len(got) != 1 || got[0] != "You said: start" {
		t.Fatalf("the good message was not processed: %q", got)
	}
	Report(t, "hostile.bodies", "limit %d B: exact 200, +1 byte 413, 10 MB chunked 413; %d malformed or foreign bodies: 400 or 200-ignored as expected, nothing stored; bad items skipped beside good ones (%v)",
		limit, len(bad), keys)
}

// hSlowServer serves the rig's handler on a real listener with
// server.HTTPServer's settings: the production values when
// FUNNEL_RELIABILITY=full, scaled down otherwise (the mechanism is the same;
// the test just does not wait 15s).
func hSlowServer(t *testing.T, h http.Handler) (addr string, hs *http.Server, scaled bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs = server.HTTPServer(ln.Addr().String(), h)
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 {
		t.Fatalf("server.HTTPServer leaves a timeout or limit unset: %+v", hs)
	}
	if Level() != "full" {
		scaled = true
		hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout = 300*time.Millisecond, time.Second, 3*time.Second
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), hs, scaled
}

// hClosedWithin writes to conn every tick until the server closes it (a read
// returns), within limit; it returns what the server answered, if anything.
func hClosedWithin(t *testing.T, conn net.Conn, limit time.Duration, tick time.Duration, next func(i int) []byte) (string, bool) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		got <- string(b)
	}()
	deadline := time.After(limit)
	for i := 0; ; i++ {
		select {
		case s := <-got:
			return s, true
		case <-deadline:
			conn.Close()
			return "", false
		case <-time.After(tick):
			conn.Write(next(i)) // errors once the server has closed: the read returns
		}
	}
}

// TestHostileSlowClients: a client that sends its headers a byte at a time
// (slowloris), or its body a byte at a time, is cut off by the server's read
// timeouts, while genuine webhooks keep being served; headers over the limit
// get 431. Nothing of the slow requests is stored.
func TestHostileSlowClients(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{hKeepFlow}})
	addr, hs, scaled := hSlowServer(t, r.srv.Handler())
	hang := 5*hs.ReadTimeout + 10*time.Second // only to detect a hang

	const slowloris = 20
	var wg sync.WaitGroup
	closed := make(chan bool, slowloris)
	for i := 0; i < slowloris; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			conn.Write([]byte("POST /webhook HTTP/1.1\r\nHost: funnel\r\n"))
			_, ok := hClosedWithin(t, conn, hang, 50*time.Millisecond, func(i int) []byte { return []byte(fmt.Sprintf("X-%d: y\r\n", i)) })
			closed <- ok
		}()
	}
	// Meanwhile a genuine webhook is served.
	body := r.webhook(r.text(fWaID(1), "start"))
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, body))
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("a genuine webhook during the slowloris attack: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a genuine webhook during the slowloris attack: %d", resp.StatusCode)
	}
	wg.Wait()
	close(closed)
	cut := 0
	for ok := range closed {
		if ok {
			cut++
		}
	}
	if cut != slowloris {
		t.Fatalf("%d of %d slowloris connections still open after %v", slowloris-cut, slowloris, hang)
	}

	// A slow body: complete headers, then a byte every 50ms.
	slow := r.webhook(r.text(fWaID(2), "start"))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: funnel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: %s\r\n\r\n",
		len(slow), whatsapp.SignatureHeader, whatsapp.Sign(r.secret, slow))
	answer, ok := hClosedWithin(t, conn, hang, 50*time.Millisecond, func(i int) []byte {
		if i < len(slow) {
			return slow[i : i+1]
		}
		return nil
	})
	if !ok {
		t.Fatalf("a body sent a byte every 50ms was not cut off within %v", hang)
	}
	status := "connection closed"
	if line, _, _ := bufio.NewReader(strings.NewReader(answer)).ReadLine(); len(line) > 0 {
		status = string(line)
		if !strings.Contains(status, " 400 ") && !strings.Contains(status, " 408 ") {
			t.Fatalf("slow body answered %q, want 400 or 408", status)
		}
	}

	// Headers over MaxHeaderBytes.
	req, _ = http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-Big", strings.Repeat("x", 2*hs.MaxHeaderBytes))
	resp, err = r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers over %d bytes: %d, want 431", hs.MaxHeaderBytes, resp.StatusCode)
	}
	if n := r.hInbox(); n != 1 {
		t.Fatalf("%d events stored, want only the genuine webhook", n)
	}
	prod := server.HTTPServer("", nil)
	Report(t, "hostile.slow-clients", "server.HTTPServer: ReadHeaderTimeout %v, ReadTimeout %v, WriteTimeout %v, IdleTimeout %v, MaxHeaderBytes %d (scaled for the test: %v); %d slowloris connections all cut off while a genuine webhook got 200; slow body: %s; oversized headers: 431",
		prod.ReadHeaderTimeout, prod.ReadTimeout, prod.WriteTimeout, prod.IdleTimeout, prod.MaxHeaderBytes, scaled, slowloris, status)
}

// hContact reads GET /v1/contacts/{wa_id}.
func (r *fRig) hContact(waID string) (int, *server.ContactView) {
	r.t.Helper()
	code, body := r.do("GET", "/v1/contacts/"+url.PathEscape(waID), nil, map[string]string{"Authorization": "Bearer " + fAPIToken})
	if code != 200 {
		return code, nil
	}
	var v server.ContactView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		r.t.Fatalf("contact JSON: %v", err)
	}
	return code, &v
}

// hText is the text body an outbox row carries.
func hText(t *testing.T, it *store.OutboxItem) string {
	t.Helper()
	var m whatsapp.Message
	if err := json.Unmarshal(it.Payload, &m); err != nil {
		t.Fatalf("outbox payload: %v", err)
	}
	if m.Text == nil {
		t.Fatalf("outbox payload without text: %s", it.Payload)
	}
	return m.Text.Body
}

// TestHostileContent: text and profile names made of SQL, template syntax,
// control characters, invalid UTF-8 and 100 KB are stored and returned intact
// (invalid UTF-8 as U+FFFD, the way Go's JSON decoder reads it), through the
// contact API and the outbox, never evaluated, never breaking a query; a reply
// too long for WhatsApp fails before the API instead of being cut.
func TestHostileContent(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{hKeepFlow, hNoteFlow}})
	huge := strings.Repeat("0123456789abcdéf😀 ", 100<<10/20)
	cases := []struct {
		name string
		raw  string // the JSON string literal as Meta would send it (without quotes), or "" to marshal text
		text string
	}{
		{name: "sql drop", text: `'); DROP TABLE contacts;--`},
		{name: "sql or", text: `" OR "1"="1' OR '1'='1`},
		{name: "sql delete", text: "1; DELETE FROM outbox; --"},
		{name: "template syntax", text: "${contact.name} ${1/0} {{1}} %s %d %!v"},
		{name: "expression call", text: `${repeat("x", 1000000000)}`},
		{name: "html", text: `<script>alert(1)</script>&amp;`},
		{name: "unicode", text: "héllo 😀 中文 עברית \u200b\u202eRTL\u2066"},
		{name: "control characters", text: "a\x00b\x01c\td\r\ne\x7f"},
		{name: "only spaces", text: "   "},
		{name: "invalid utf-8", raw: "bad \xff\xfe\xc3 bytes"},
		{name: "lone surrogate", raw: `half \ud800 pair`},
		{name: "escaped nul", raw: `nul \u0000 inside`},
		{name: "100 KB", text: huge},
	}
	type sent struct{ wa, want string }
	var all []sent
	for i, tc := range cases {
		wa := fWaID(300 + i)
		placeholder := fmt.Sprintf("PLACEHOLDER-%d", i)
		m := r.text(wa, placeholder)
		if tc.raw == "" {
			m.Text.Body = tc.text
		}
		names := map[string]string{wa: placeholder}
		r.fake.Inbound(wa, r.clock.Now())
		body := fEnvelope([]whatsapp.InboundMessage{m}, names)
		want := tc.text
		if tc.raw != "" {
			body = bytes.ReplaceAll(body, []byte(placeholder), []byte(tc.raw))
			if err := json.Unmarshal([]byte(`"`+tc.raw+`"`), &want); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		} else {
			nameJSON, _ := json.Marshal(tc.text)
			body = bytes.ReplaceAll(body, []byte(`"`+placeholder+`"`), nameJSON)
		}
		if got := r.post(body); got != 200 {
			t.Fatalf("%s: webhook %d", tc.name, got)
		}
		all = append(all, sent{wa, want})
	}
	r.settle()
	for i, tc := range cases {
		s := all[i]
		if !utf8.ValidString(s.want) {
			t.Fatalf("%s: the decoded text is not UTF-8", tc.name)
		}
		code, v := r.hContact(s.wa)
		if code != 200 {
			t.Fatalf("%s: GET contact %d", tc.name, code)
		}
		if v.Name != s.want {
			t.Errorf("%s: name came back as %.60q, want %.60q", tc.name, v.Name, s.want)
		}
		if v.Attributes["note"] != s.want {
			t.Errorf("%s: attribute came back as %.60q, want %.60q", tc.name, v.Attributes["note"], s.want)
		}
		if len(v.Runs) != 1 || v.Runs[0].Vars["said"] != s.want {
			t.Errorf("%s: run variable: %+v", tc.name, v.Runs)
		}
		rows, err := r.db.OutboxOf(r.ctx, s.wa, 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: outbox %d %v", tc.name, len(rows), err)
		}
		if got := hText(t, rows[0]); got != "You said: "+s.want {
			t.Errorf("%s: outbox text %.80q, want %.80q", tc.name, got, "You said: "+s.want)
		}
		over := utf8.RuneCountInString("You said: "+s.want) > whatsapp.MaxTextBody
		switch {
		case over:
			if rows[0].Status != store.OutFailed || !strings.Contains(rows[0].LastError, "4096") || len(r.fake.SentTo(s.wa)) != 0 {
				t.Errorf("%s: a reply over 4096 characters: %s %q, %d sent", tc.name, rows[0].Status, rows[0].LastError, len(r.fake.SentTo(s.wa)))
			}
		default:
			got := r.sentTexts(s.wa)
			if len(got) != 1 || got[0] != "You said: "+s.want {
				t.Errorf("%s: the API got %.80q", tc.name, got)
			}
		}
	}
	// A sender that is not a phone number is acknowledged and dropped: it
	// never becomes a contact key.
	evil := "1555'; DROP TABLE contacts;--"
	r.fake.Inbound(evil, r.clock.Now())
	r.deliver(r.text(evil, "hi"))
	r.settle()
	if code, v := r.hContact(evil); code != 404 {
		t.Fatalf("a contact id with SQL in it was stored: %d %+v", code, v)
	}
	for _, id := range []string{"' OR '1'='1", "%00", "..", "15550000000000000000000000000000000000000000"} {
		if code, _ := r.hContact(id); code != 404 {
			t.Errorf("GET contact %q: %d, want 404", id, code)
		}
	}
	// The events API keeps payload strings intact too.
	for i, note := range []string{`'); DROP TABLE runs;--`, huge[:50<<10], "${contact.name}"} {
		wa := fWaID(400 + i)
		payload, _ := json.Marshal(map[string]any{"name": "note", "wa_id": wa, "payload": map[string]any{"note": note}})
		if code, body := r.do("POST", "/v1/events", payload, map[string]string{"Authorization": "Bearer " + fAPIToken}); code != 202 {
			t.Fatalf("event %d: %d %s", i, code, body)
		}
		r.settle()
		if _, v := r.hContact(wa); v == nil || v.Attributes["note"] != note {
			t.Errorf("event payload %.40q did not come back intact", note)
		}
	}
	if n := r.q("SELECT COUNT(*) FROM contacts"); n != int64(len(cases))+3 {
		t.Fatalf("%d contacts, want %d", n, len(cases)+3)
	}
	Report(t, "hostile.content", "%d hostile texts and names (SQL, template syntax, control characters, invalid UTF-8, lone surrogate, 100 KB) + 3 event payloads: stored and returned intact, echoed verbatim, over-long reply failed before the API; a SQL sender id dropped; all tables intact",
		len(cases))
}

// TestHostileAPI: the events and contacts API without the bearer token, with a
// wrong one, a prefix of it, another scheme, or with the API disabled: 401 and
// nothing stored. Malformed requests: 400 (413 over the limit, 422 for an
// unknown event), nothing stored.
func TestHostileAPI(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{hKeepFlow, hNoteFlow}, maxBody: 64 << 10})
	good := []byte(`{"name": "note", "wa_id": "15550000001", "payload": {"note": "x"}}`)
	auths := []struct {
		name, header string
		want         int
	}{
		{"none", "", 401},
		{"scheme only", "Bearer", 401},
		{"empty token", "Bearer ", 401},
		{"wrong token", "Bearer wrong", 401},
		{"prefix of the token", "Bearer " + fAPIToken[:len(fAPIToken)-1], 401},
		{"token plus one", "Bearer " + fAPIToken + "x", 401},
		{"two spaces", "Bearer  " + fAPIToken, 401},
		{"token alone", fAPIToken, 401},
		{"lowercase scheme", "bearer " + fAPIToken, 401},
		{"basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+fAPIToken)), 401},
		{"token in another header", "", 401},
	}
	for _, a := range auths {
		h := map[string]string{}
		if a.header != "" {
			h["Authorization"] = a.header
		}
		if a.name == "token in another header" {
			h["X-Api-Token"] = fAPIToken
		}
		if code, body := r.do("POST", "/v1/events", good, h); code != a.want {
			t.Errorf("events, %s: %d %s, want %d", a.name, code, body, a.want)
		}
		if code, _ := r.do("GET", "/v1/contacts/15550000001", nil, h); code != a.want {
			t.Errorf("contacts, %s: %d, want %d", a.name, code, a.want)
		}
	}
	if n := r.hInbox(); n != 0 {
		t.Fatalf("%d events stored without the token", n)
	}
	auth := map[string]string{"Authorization": "Bearer " + fAPIToken}
	// Trailing spaces are not part of a header value (HTTP strips them).
	if code, _ := r.do("POST", "/v1/events", good, map[string]string{"Authorization": "Bearer " + fAPIToken + "  "}); code != 202 {
		t.Errorf("token followed by spaces: %d, want 202", code)
	}
	deep := `{"name":"note","wa_id":"15550000001","payload":{"note":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "}}"
	malformed := []struct {
		name, body string
		want       int
	}{
		{"empty", "", 400},
		{"truncated", `{"name": "note"`, 400},
		{"array", `[]`, 400},
		{"null", `null`, 400},
		{"name is a number", `{"name": 1, "wa_id": "15550000001"}`, 400},
		{"unknown field", `{"name": "note", "wa_id": "15550000001", "admin": true}`, 400},
		{"no wa_id", `{"name": "note"}`, 400},
		{"sql wa_id", `{"name": "note", "wa_id": "1555'; DROP TABLE contacts;--"}`, 400},
		{"wa_id with a plus", `{"name": "note", "wa_id": "+15550000001"}`, 400},
		{"payload is a list", `{"name": "note", "wa_id": "15550000001", "payload": [1]}`, 400},
		{"20,000 nested arrays", deep, 400},
		{"trailing garbage", `{"name": "note", "wa_id": "15550000002"} garbage`, 400},
		{"two objects", `{"name": "note", "wa_id": "15550000002"}{"name": "note", "wa_id": "15550000003"}`, 400},
		{"unknown event", `{"name": "nope", "wa_id": "15550000001"}`, 422},
		{"over the limit", `{"name": "note", "wa_id": "15550000001", "payload": {"note": "` + strings.Repeat("x", 64<<10) + `"}}`, 413},
	}
	for _, tc := range malformed {
		if code, body := r.do("POST", "/v1/events", []byte(tc.body), auth); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if n := r.hInbox(); n != 1 {
		t.Fatalf("%d events stored, want only the genuine one", n)
	}
	// The API disabled (no token configured) refuses even an empty bearer.
	r2 := newFRig(t, fOptions{flows: []string{hNoteFlow}})
	r2.srv.Close()
	r2.hs.Close()
	r2.srv = server.New(server.Config{AppSecret: r2.secret}, r2.eng, prometheus.NewRegistry(), fLogger())
	r2.hs = httptest.NewServer(r2.srv.Handler())
	for _, h := range []string{"", "Bearer ", "Bearer " + fAPIToken} {
		if code, _ := r2.do("POST", "/v1/events", good, map[string]string{"Authorization": h}); code != 401 {
			t.Errorf("API disabled, %q: %d, want 401", h, code)
		}
	}
	if n := r2.hInbox(); n != 0 {
		t.Fatalf("API disabled: %d events stored", n)
	}
	// The verification challenge is echoed as plain text, only for the right token.
	code, body := r.do("GET", "/webhook?hub.mode=subscribe&hub.verify_token="+fVerify+"&hub.challenge="+url.QueryEscape("<script>x</script>"), nil, nil)
	if code != 200 || body != "<script>x</script>" {
		t.Fatalf("challenge: %d %q", code, body)
	}
	for _, q := range []string{"hub.mode=subscribe&hub.challenge=1", "hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
		"hub.mode=unsubscribe&hub.verify_token=" + fVerify + "&hub.challenge=1", "hub.mode=subscribe&hub.verify_token=" + fVerify} {
		if code, _ := r.do("GET", "/webhook?"+q, nil, nil); code != 403 {
			t.Errorf("verification %q: %d, want 403", q, code)
		}
	}
	Report(t, "hostile.api", "%d bearer-token variants refused on both APIs (401, nothing stored); %d malformed requests: 400/413/422, nothing stored; API disabled: 401; verification: 4 bad queries 403",
		len(auths), len(malformed))
}

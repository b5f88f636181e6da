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

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/store"
)

// sandboxRig is `funnel serve --dev` in the test: the example flows, a sandbox
// on a real SQLite file, the engine's loops running, served over real HTTP.
type sandboxRig struct {
	t     *testing.T
	url   string
	sb    *server.Sandbox
	st    *store.DB
	stops []func()
}

// sandboxFlows are the example flows but the weekly broadcast: whether its
// Monday falls in a test's fast-forward depends on today's date, and its run
// would then take the contact's replies. TestSandboxReset loads it too.
var sandboxFlows = []string{"../../flows/summer_sale.yaml", "../../flows/menu.yaml", "../../flows/order_shipped.yaml"}

func startSandbox(t *testing.T, db string, flows ...string) *sandboxRig {
	t.Helper()
	ctx := context.Background()
	if flows == nil {
		flows = sandboxFlows
	}
	p, diags, err := dsl.Load(flows, dsl.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("flows: %v %v", err, diags)
	}
	st, err := store.Open(ctx, db, store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	r := &sandboxRig{t: t, st: st}
	r.stops = append(r.stops, func() { st.Close() })
	sb, err := server.NewSandbox(ctx, st, server.SandboxConfig{DBPath: db})
	if err != nil {
		r.stop()
		t.Fatal(err)
	}
	r.sb = sb
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := engine.Options{Logger: log, Metrics: engine.NewMetrics(reg)}
	sb.Configure(&opts)
	eng := engine.New(st, opts)
	if err := eng.Load(ctx, p, diags); err != nil {
		r.stop()
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, eng, reg, log)
	sb.Attach(srv)
	hs := httptest.NewServer(srv.Handler())
	r.url = hs.URL
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { eng.Run(runCtx); close(done) }()
	r.stops = append(r.stops, func() { cancel(); <-done }, hs.Close, srv.Close)
	t.Cleanup(r.stop)
	return r
}

// stop shuts the rig down in reverse order; it may be called twice.
func (r *sandboxRig) stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	r.stops = nil
}

// call makes a sandbox API call as the page does; header overrides what the page
// would send (an empty value removes the header).
func (r *sandboxRig) call(method, path string, body any, header map[string]string) (int, map[string]any, http.Header) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	req.Header.Set("X-Funnel-Sandbox-Token", r.sb.Token())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, out, resp.Header
}

// post calls and requires a 200.
func (r *sandboxRig) post(path string, body any) map[string]any {
	r.t.Helper()
	code, out, _ := r.call("POST", path, body, nil)
	if code != http.StatusOK {
		r.t.Fatalf("POST %s: %d %v", path, code, out)
	}
	return out
}

func (r *sandboxRig) state(waID string) map[string]any {
	r.t.Helper()
	code, out, _ := r.call("GET", "/sandbox/api/state?wa_id="+waID, nil, nil)
	if code != http.StatusOK {
		r.t.Fatalf("state: %d %v", code, out)
	}
	return out
}

// lines summarizes a transcript: one line per message with what the page labels.
func lines(state map[string]any) []string {
	var out []string
	for _, m := range state["messages"].([]any) {
		m := m.(map[string]any)
		s := fmt.Sprintf("%s %s", m["direction"], m["type"])
		for _, k := range []string{"template", "status", "window", "allowed"} {
			if v, ok := m[k].(string); ok && v != "" {
				s += " " + k + "=" + v
			}
		}
		text, _ := m["text"].(string)
		if r := []rune(text); len(r) > 24 {
			text = string(r[:24])
		}
		out = append(out, s+" | "+text)
	}
	return out
}

const ana = "15550001234"

// session is a newcomer's first minutes: arrive from the sandals ad, say yes
// twice, let three days pass (the reminder template goes out with the window
// closed), reply to it (the window reopens) and get the code again.
func session(t *testing.T, r *sandboxRig) map[string]any {
	t.Helper()
	c := map[string]any{"wa_id": ana, "name": "Ana"}
	with := func(m map[string]any) map[string]any {
		for k, v := range c {
			m[k] = v
		}
		return m
	}
	r.post("/sandbox/api/inbound", with(map[string]any{"text": "Hi! Is this still on?",
		"referral": map[string]string{"source_id": "120226305854810999", "headline": "Sandals for the beach"}}))
	r.post("/sandbox/api/inbound", with(map[string]any{"choice": map[string]string{"kind": "button_reply", "id": "Yes please", "title": "Yes please"}}))
	r.post("/sandbox/api/inbound", with(map[string]any{"choice": map[string]string{"kind": "button_reply", "id": "Yes, send offers", "title": "Yes, send offers"}}))
	r.post("/sandbox/api/advance", map[string]any{"duration": "3d", "wa_id": ana})
	r.post("/sandbox/api/advance", map[string]any{"duration": "1d", "wa_id": ana})
	return r.post("/sandbox/api/inbound", with(map[string]any{"choice": map[string]string{"kind": "quick_reply", "id": "Get it", "title": "Get it"}}))
}

// TestSandboxRestartChangesNothing: the transcript, its labels, the clock and
// the simulated API's window all come from the database, so a restart shows
// and does exactly what it would have without one. Before, the contact's
// messages vanished, every label was recomputed from memory (a template sent
// with the window closed read "open" once the contact replied), the clock fell
// back to real time and a free-form reply inside the window got 131047.
func TestSandboxRestartChangesNothing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "dev.db")
	r := startSandbox(t, db)
	before := session(t, r)
	// The weekly broadcast may fall in these four days or not (it depends on
	// today's weekday): leave it out of the comparison.
	var got []string
	for _, l := range lines(before) {
		if !strings.Contains(l, "template=weekly_deals") {
			got = append(got, l)
		}
	}
	want := []string{
		"in text | Hi! Is this still on?",
		"out interactive status=sent window=open allowed=free-form | Hi Ana! The sandals from",
		"in interactive | Yes please",
		"out interactive status=sent window=open allowed=free-form | Great! May we also send ",
		"in interactive | Yes, send offers",
		"out text status=sent window=open allowed=free-form | Your code is SUMMER20. I",
		"out template template=summer_reminder status=sent window=closed allowed=template only | Hi Ana! Your summer code",
		"in button | Get it",
		"out text status=sent window=open allowed=free-form | Here it is again: SUMMER",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	offset := before["offset_seconds"].(float64)
	if offset < 4*86400-60 {
		t.Fatalf("offset %v after +4 days", offset)
	}
	r.stop()

	r = startSandbox(t, db)
	after := r.state(ana)
	if g := lines(after); strings.Join(g, "\n") != strings.Join(lines(before), "\n") {
		t.Fatalf("after a restart the transcript changed:\n%s", strings.Join(g, "\n"))
	}
	if o := after["offset_seconds"].(float64); o < offset {
		t.Fatalf("the clock went back at the restart: offset %v, was %v", o, offset)
	}
	w := after["contact"].(map[string]any)["window"].(map[string]any)
	if w["state"] != "open" {
		t.Fatalf("window after restart: %v", w)
	}
	// A free-form message inside the window: Meta accepts it, so must the
	// simulated API after a restart.
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana", "text": "menu"})
	last := lines(out)
	if l := last[len(last)-1]; !strings.HasPrefix(l, "out interactive status=sent window=open allowed=free-form") {
		t.Fatalf("a reply inside the window after a restart: %s", strings.Join(last, "\n"))
	}
}

// TestSandboxRefusalsAndNotes: every refusal says why in the chat, STOP leaves
// a note, an event is fired from the page, a late webhook says it was late.
func TestSandboxRefusalsAndNotes(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "what is this?", "delay_seconds": 7200})
	ms := out["messages"].([]any)
	if len(ms) != 2 || ms[0].(map[string]any)["late"] != "written 2h00m before its webhook arrived" ||
		!strings.Contains(ms[1].(map[string]any)["text"].(string), "no flow matched this message") {
		t.Fatalf("a late message nothing answers: %v", ms)
	}
	out = r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "STOP"})
	ms = out["messages"].([]any)
	if note := ms[len(ms)-1].(map[string]any); note["direction"] != "system" || !strings.Contains(note["text"].(string), "opted out") {
		t.Fatalf("STOP should leave a system note: %v", note)
	}
	if c := out["contact"].(map[string]any)["consent"].(map[string]any); c["state"] != "out" || !strings.Contains(c["text"].(string), "by writing “STOP”") {
		t.Fatalf("consent in plain words: %v", c)
	}
	// An event to an opted-out contact: the template is refused, with the reason.
	out = r.post("/sandbox/api/event", map[string]any{"wa_id": ana, "name": "order_shipped",
		"payload": map[string]any{"first_name": "Ana", "order_id": "A-1", "image_url": "https://example.com/p.jpg", "tracking_url": "https://example.com/t"}})
	got := lines(out)
	if l := got[len(got)-1]; !strings.HasPrefix(l, "out template template=order_shipped status=refused") {
		t.Fatalf("an event's template to an opted-out contact: %s", strings.Join(got, "\n"))
	}
	ms = out["messages"].([]any)
	if m := ms[len(ms)-1].(map[string]any); m["reason"] != "not sent: the contact opted out" {
		t.Fatalf("reason: %v", m["reason"])
	}
	if code, res, _ := r.call("POST", "/sandbox/api/event", map[string]any{"wa_id": ana, "name": "nope"}, nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(res["error"].(string), "order_shipped") {
		t.Fatalf("unknown event: %d %v", code, res)
	}
}

// TestSandboxNextActionSaysWhy: "+3 days" never shows silence without saying
// why: the contact's wait lands in the flow's quiet hours in its own zone, and
// the panel says until when and why.
func TestSandboxNextActionSaysWhy(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	// A fixed-offset zone where it is now 23:xx: the 3-day wait ends in the
	// quiet hours (21:00–09:00) and is pushed to 09:00.
	now := r.sb.Clock().Now()
	h := (now.Hour() - 23 + 48) % 24
	if h > 12 {
		h -= 24
	}
	zone := fmt.Sprintf("Etc/GMT%+d", h)
	if h == 0 {
		zone = "UTC"
	}
	r.post("/sandbox/api/contact", map[string]any{"wa_id": ana, "timezone": zone})
	r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana", "text": "Hi",
		"referral": map[string]string{"source_id": "120226305854810726", "headline": "Summer"}})
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "choice": map[string]string{"kind": "button_reply", "id": "Not now", "title": "Not now"}})
	c := out["contact"].(map[string]any)
	if c["zone"] != zone {
		t.Fatalf("zone %v, want %s", c["zone"], zone)
	}
	next, _ := c["next"].(map[string]any)
	if next == nil || !strings.Contains(next["text"].(string), "09:00") || !strings.Contains(next["text"].(string), "quiet hours 21:00–09:00") ||
		!strings.Contains(next["text"].(string), "wait 3d") {
		t.Fatalf("next action should say until 09:00 and why (quiet hours): %v", next)
	}
	runs := c["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["step"] != "day3" {
		t.Fatalf("runs: %v", runs)
	}
	code, g, _ := r.call("GET", "/sandbox/api/graph?wa_id="+ana, nil, nil)
	if code != 200 || g["flow"] != "summer-sale" || !strings.Contains(g["svg"].(string), `class="node current" data-node="s14_day3"`) {
		t.Fatalf("graph: %d %v\n%s", code, g["current"], g["svg"])
	}
	if code, res, _ := r.call("POST", "/sandbox/api/contact", map[string]any{"wa_id": ana, "timezone": "Mars/Olympus"}, nil); code != 400 {
		t.Fatalf("unknown zone: %d %v", code, res)
	}
}

// TestSandboxReset: a new sandbox has an empty database and the clock at now,
// and its broadcasts are scheduled again.
func TestSandboxReset(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"), "../../flows")
	session(t, r)
	out := r.post("/sandbox/api/reset", map[string]any{"wa_id": ana})
	if len(out["messages"].([]any)) != 0 || out["offset_seconds"].(float64) != 0 {
		t.Fatalf("after a reset: %v", out)
	}
	if c, _ := r.st.Contact(context.Background(), ana); c != nil {
		t.Fatalf("the contact survived the reset: %+v", c)
	}
	if s := out["schedules"].([]any); len(s) != 1 || !strings.Contains(s[0].(map[string]any)["text"].(string), "weekly") {
		t.Fatalf("schedules after a reset: %v", s)
	}
	// And it works as new.
	out = r.post("/sandbox/api/inbound", map[string]any{"wa_id": ana, "name": "Ana", "text": "menu"})
	if got := lines(out); len(got) != 2 {
		t.Fatalf("after a reset: %v", got)
	}
}

// TestSandboxGuards: the sandbox API answers only its own page, over real HTTP.
func TestSandboxGuards(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	msg := map[string]any{"wa_id": ana, "text": "STOP"}
	for _, c := range []struct {
		name   string
		method string
		path   string
		body   any
		header map[string]string
		want   int
	}{
		{"the page", "GET", "/sandbox", nil, nil, 200},
		{"the page by a rebinding name", "GET", "/sandbox", nil, map[string]string{"Host": "evil.example:80"}, 403},
		{"state with the token", "GET", "/sandbox/api/state?wa_id=" + ana, nil, nil, 200},
		{"state without the token", "GET", "/sandbox/api/state?wa_id=" + ana, nil, map[string]string{"X-Funnel-Sandbox-Token": ""}, 403},
		{"a wrong token", "POST", "/sandbox/api/inbound", msg, map[string]string{"X-Funnel-Sandbox-Token": strings.Repeat("0", 48)}, 403},
		{"text/plain (a form, a no-cors fetch)", "POST", "/sandbox/api/inbound", msg, map[string]string{"Content-Type": "text/plain"}, 415},
		{"no content type", "POST", "/sandbox/api/inbound", msg, map[string]string{"Content-Type": ""}, 415},
		{"another origin", "POST", "/sandbox/api/inbound", msg, map[string]string{"Origin": "https://evil.example"}, 403},
		{"origin null", "POST", "/sandbox/api/inbound", msg, map[string]string{"Origin": "null"}, 403},
		{"cross-site fetch metadata", "POST", "/sandbox/api/inbound", msg, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"a rebinding Host", "POST", "/sandbox/api/inbound", msg, map[string]string{"Host": "evil.example"}, 403},
		{"no token for the graph", "GET", "/sandbox/api/graph", nil, map[string]string{"X-Funnel-Sandbox-Token": ""}, 403},
		{"an unknown call", "POST", "/sandbox/api/nope", map[string]any{}, nil, 404},
		{"localhost is fine", "GET", "/sandbox/api/config", nil, map[string]string{"Host": "localhost:8080"}, 200},
		{"[::1] is fine", "GET", "/sandbox/api/config", nil, map[string]string{"Host": "[::1]:8080"}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, h := r.call(c.method, c.path, c.body, c.header)
			if code != c.want {
				t.Fatalf("%d %v, want %d", code, out, c.want)
			}
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" ||
				!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("security headers missing: %v", h)
			}
		})
	}
	if c, _ := r.st.Contact(context.Background(), ana); c != nil {
		t.Fatalf("a refused request changed the database: %+v", c)
	}
	// The same origin, as the page sends it, is accepted.
	code, _, _ := r.call("POST", "/sandbox/api/inbound", msg, map[string]string{"Origin": r.url})
	if code != 200 {
		t.Fatalf("same origin: %d", code)
	}
}

// TestSandboxBounds: inputs are bounded.
func TestSandboxBounds(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	big := strings.Repeat("x", 4097)
	for _, c := range []struct {
		name, path string
		body       any
	}{
		{"delay over 7 days", "/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "hi", "delay_seconds": 604801}},
		{"negative delay", "/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "hi", "delay_seconds": -1}},
		{"text over 4096", "/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": big}},
		{"a long name", "/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "hi", "name": big}},
		{"a wa_id that is not a number", "/sandbox/api/inbound", map[string]any{"wa_id": "../x", "text": "hi"}},
		{"an unknown field", "/sandbox/api/inbound", map[string]any{"wa_id": ana, "text": "hi", "phone_number_id": "x"}},
		{"a body over 64 KiB", "/sandbox/api/inbound", `{"wa_id": "` + ana + `", "text": "` + strings.Repeat("y", 70<<10) + `"}`},
		{"two objects", "/sandbox/api/inbound", `{"wa_id": "` + ana + `", "text": "a"} {"wa_id": "` + ana + `", "text": "b"}`},
		{"a year at once", "/sandbox/api/advance", map[string]any{"duration": "365d"}},
		{"a negative duration", "/sandbox/api/advance", map[string]any{"duration": "-1h"}},
		{"a payload over 16 KiB", "/sandbox/api/event", map[string]any{"wa_id": ana, "name": "order_shipped", "payload": map[string]string{"a": strings.Repeat("z", 17<<10)}}},
		{"a payload that is not an object", "/sandbox/api/event", map[string]any{"wa_id": ana, "name": "order_shipped", "payload": []int{1}}},
		{"a long time zone", "/sandbox/api/contact", map[string]any{"wa_id": ana, "timezone": big[:65]}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, out, _ := r.call("POST", c.path, c.body, nil); code != http.StatusBadRequest {
				t.Fatalf("%d %v, want 400", code, out)
			}
		})
	}
	if c, _ := r.st.Contact(context.Background(), ana); c != nil {
		t.Fatalf("a refused request changed the database: %+v", c)
	}
	if o := r.sb.Clock().Offset(); o != 0 {
		t.Fatalf("a refused advance moved the clock by %v", o)
	}
	_ = time.Second
}

// TestSandboxUsernameUser: a user who hides their number is played with a
// BSUID; the simulated API finds their window by it and the transcript shows.
func TestSandboxUsernameUser(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	const bsuid = "US.13491208655302741918"
	out := r.post("/sandbox/api/inbound", map[string]any{"wa_id": bsuid, "username": "@ana", "name": "Ana", "text": "menu"})
	got := lines(out)
	if len(got) != 2 || !strings.HasPrefix(got[1], "out interactive status=sent window=open allowed=free-form") {
		t.Fatalf("a BSUID-only contact: %s", strings.Join(got, "\n"))
	}
	if again := lines(r.state(bsuid)); strings.Join(again, "\n") != strings.Join(got, "\n") {
		t.Fatalf("state by BSUID: %s", strings.Join(again, "\n"))
	}
}

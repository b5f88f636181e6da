package server_test

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Outside --dev the dashboard takes the API token: as a bearer header, or
// once in its form, which sets a cookie holding a digest of it (never the
// token itself).
func TestDashboardToken(t *testing.T) {
	r := newRig(t)
	m := r.message("16505551234", "Hi!", 0)
	m.Referral = &whatsapp.Referral{SourceID: "120226305854810999", SourceType: "ad", Headline: "Summer <sandals> -20%"}
	r.deliver(m)
	r.settle()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	get := func(header, cookie string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", r.http.URL+"/dashboard?flow=summer-sale", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "funnel_dashboard", Value: cookie})
		}
		return do(req)
	}
	login := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", r.http.URL+"/dashboard", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(req)
	}

	resp, body := get("", "")
	if resp.StatusCode != 401 || !strings.Contains(body, `name="token"`) || strings.Contains(body, "summer-sale") {
		t.Fatalf("without the token: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	if resp, _ := get("Bearer wrong", ""); resp.StatusCode != 401 {
		t.Errorf("a wrong bearer token: %d", resp.StatusCode)
	}
	if resp, _ := get("", "forged"); resp.StatusCode != 401 {
		t.Errorf("a forged cookie: %d", resp.StatusCode)
	}
	resp, body = get("Bearer "+apiTok, "")
	if resp.StatusCode != 200 {
		t.Fatalf("with the token: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`<section class="flow" id="flow-summer-sale">`, "<svg", `aria-label="funnel of summer-sale"`,
		"Summer &lt;sandals&gt; -20%", "120226305854810999", "intro-sandals"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(body, "<sandals>") {
		t.Error("a headline reached the page unescaped")
	}

	if resp, body := login("not the token"); resp.StatusCode != 401 || !strings.Contains(body, "not the API token") {
		t.Errorf("a wrong token in the form: %d %s", resp.StatusCode, body)
	}
	resp, _ = login(apiTok)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "funnel_dashboard" {
			cookie = c
		}
	}
	if resp.StatusCode != 303 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, apiTok) {
		t.Fatalf("the form with the token: %d, cookie %+v", resp.StatusCode, cookie)
	}
	if resp, body := get("", cookie.Value); resp.StatusCode != 200 || !strings.Contains(body, "flow-summer-sale") {
		t.Errorf("with the cookie: %d", resp.StatusCode)
	}
	if resp, body := get("Bearer "+apiTok, ""); resp.StatusCode != 200 || strings.Contains(body, "/sandbox") {
		t.Errorf("outside --dev the page must not link to the sandbox")
	}
	req, _ := http.NewRequest("GET", r.http.URL+"/dashboard?since=someday", nil)
	req.Header.Set("Authorization", "Bearer "+apiTok)
	if resp, body := do(req); resp.StatusCode != 400 || !strings.Contains(body, "is not a time") {
		t.Errorf("a bad period: %d", resp.StatusCode)
	}
}

// Under --dev the dashboard needs no token but keeps the sandbox's guard,
// refreshes itself, and links back to the sandbox, which links to it.
func TestDashboardInSandbox(t *testing.T) {
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	r.post("/sandbox/api/inbound", map[string]any{"wa_id": "15550001234", "name": "Ana", "text": "Hi",
		"referral": map[string]string{"source_id": "120226305854810726", "headline": "Summer sale"}})
	get := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", r.url+"/dashboard", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("")
	if code != 200 {
		t.Fatalf("/dashboard under --dev: %d %s", code, body)
	}
	for _, want := range []string{`http-equiv="refresh"`, `href="/sandbox"`, "flow-summer-sale", "Summer sale", "1 entered"} {
		if !strings.Contains(body, want) && !(want == "1 entered" && strings.Contains(body, "<b>1</b><span>entered</span>")) {
			t.Errorf("dashboard under --dev lacks %q", want)
		}
	}
	if code, _ := get("evil.example"); code != 403 {
		t.Errorf("a foreign Host under --dev: %d, want 403", code)
	}
	_, page, _ := r.call("GET", "/sandbox", nil, nil)
	if !strings.Contains(page["raw"].(string), `href="/dashboard"`) {
		t.Error("the sandbox page does not link to the dashboard")
	}
}

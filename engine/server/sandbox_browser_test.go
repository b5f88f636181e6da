package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium for a test, or skips it. Its profile lives
// in a folder of its own, removed (with retries) only after the browser has
// exited: Chromium goes on writing into its profile while it shuts down, which
// made t.TempDir's cleanup fail now and then.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium on this machine (.ci/run installs Debian's chromium)")
	}
	profile, err := os.MkdirTemp("", "funnel-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := os.RemoveAll(profile)
			if err == nil || i == 50 {
				if err != nil {
					t.Logf("chromium profile %s not removed: %v", profile, err)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(bctx, 240*time.Second)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() }) // runs before the profile's removal
	// A JavaScript dialog would block the page: the sandbox must never open one.
	chromedp.ListenTarget(tctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			t.Errorf("the page opened a %s dialog: %q", d.Type, d.Message)
			go chromedp.Run(tctx, page.HandleJavaScriptDialog(true))
		}
	})
	return tctx
}

func clickChoice(title string) chromedp.Action {
	return chromedp.Click(`//div[contains(@class,"msg") and contains(@class,"out")][last()]//button[normalize-space()="`+title+`"]`, chromedp.BySearch)
}

// TestSandboxInChromium drives /sandbox in headless Chromium the way a newcomer
// does after `funnel serve --dev`: arrive from an ad, see the reply that names
// it, give consent with the buttons, fast-forward to the day-3 template (sent
// with the window closed), reply to it; then the daemon restarts and the page
// shows the same messages with the same labels; at phone width nothing
// overflows; a bad input is said on the page, not in a dialog; the reset
// empties everything.
func TestSandboxInChromium(t *testing.T) {
	ctx := browser(t)
	db := filepath.Join(t.TempDir(), "dev.db")
	r := startSandbox(t, db)

	var reply, template, templateMeta string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(r.url+"/sandbox"),
		chromedp.WaitReady(`#ad-select option[value="120226305854810999"]`, chromedp.ByQuery),
		chromedp.SetValue(`#ad-select`, "120226305854810999", chromedp.ByQuery),
		chromedp.SetValue(`#headline`, "Sandals for the beach", chromedp.ByQuery),
		chromedp.Click(`#arrive`, chromedp.ByQuery),
		chromedp.WaitVisible(`.msg.out .text`, chromedp.ByQuery),
		chromedp.Text(`.msg.out .text`, &reply, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("arrive from the ad: %v", err)
	}
	if !strings.Contains(reply, "“Sandals for the beach”") {
		t.Fatalf("the first reply should name the ad's headline, got %q", reply)
	}
	tpl := `.msg.out[data-template="summer_reminder"]`
	steps := []struct {
		what string
		do   []chromedp.Action
	}{
		{"tap Yes please", []chromedp.Action{clickChoice("Yes please"),
			chromedp.WaitVisible(`//div[contains(@class,"out")]//button[normalize-space()="Yes, send offers"]`, chromedp.BySearch)}},
		{"tap Yes, send offers", []chromedp.Action{clickChoice("Yes, send offers"),
			chromedp.WaitVisible(`//div[contains(@class,"out")]/div[contains(., "SUMMER20")]`, chromedp.BySearch),
			chromedp.WaitVisible(`//span[@id="consent" and normalize-space()="opted in"]`, chromedp.BySearch)}},
		{"+3 days", []chromedp.Action{chromedp.Click(`#ff-3d`, chromedp.ByQuery),
			chromedp.WaitVisible(`//div[@id="clock" and contains(., "3d ahead")]`, chromedp.BySearch)}},
		{"+1 day: the reminder", []chromedp.Action{chromedp.Click(`#ff-1d`, chromedp.ByQuery),
			chromedp.WaitVisible(tpl+` .text`, chromedp.ByQuery),
			chromedp.Text(tpl+` .text`, &template, chromedp.ByQuery)}},
		{"tap the reminder's quick reply", []chromedp.Action{chromedp.WaitVisible(tpl+` .choices button`, chromedp.ByQuery),
			chromedp.Click(tpl+` .choices button`, chromedp.ByQuery),
			chromedp.WaitVisible(`//div[contains(@class,"out")]/div[contains(., "Here it is again")]`, chromedp.BySearch),
			chromedp.Text(tpl+` .meta`, &templateMeta, chromedp.ByQuery)}},
	}
	for _, s := range steps {
		if err := chromedp.Run(ctx, s.do...); err != nil {
			var html string
			chromedp.Run(context.WithoutCancel(ctx), chromedp.OuterHTML(`#chat`, &html, chromedp.ByQuery))
			t.Fatalf("%s: %v\nchat:\n%s", s.what, err, html)
		}
	}
	if !strings.Contains(template, "TEMPLATE") || !strings.Contains(template, "Hi Ana!") {
		t.Fatalf("day-3 template, marked as one: %q", template)
	}
	// Recorded when sent, not recomputed: the contact wrote since, and the
	// template still reads "window closed".
	if !strings.Contains(templateMeta, "window closed when sent (template only)") {
		t.Fatalf("the template's label after the contact replied: %q", templateMeta)
	}
	var before []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('.msg')].map(m => m.className + ' ' + m.dataset.window + ' ' + m.querySelector('.text, :scope').textContent.slice(0, 30))`, &before)); err != nil {
		t.Fatal(err)
	}

	// The daemon restarts (a new port, a new token); the page is reloaded.
	r.stop()
	r = startSandbox(t, db)
	var after []string
	var windowBadge, templateMetaAfter string
	err = chromedp.Run(ctx,
		chromedp.Navigate(r.url+"/sandbox"),
		chromedp.WaitVisible(tpl+` .meta`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class,"out")]/div[contains(., "Here it is again")]`, chromedp.BySearch),
		chromedp.Evaluate(`[...document.querySelectorAll('.msg')].map(m => m.className + ' ' + m.dataset.window + ' ' + m.querySelector('.text, :scope').textContent.slice(0, 30))`, &after),
		chromedp.Text(`#window`, &windowBadge, chromedp.ByQuery),
		chromedp.Text(tpl+` .meta`, &templateMetaAfter, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the restart changed the transcript:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	if windowBadge != "open" || !strings.Contains(templateMetaAfter, "window closed when sent (template only)") {
		t.Fatalf("labels after the restart: window %q, template %q", windowBadge, templateMetaAfter)
	}
	// A free-form reply after the restart goes out (the simulated API's window
	// is in the database).
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#text`, "menu", chromedp.ByQuery),
		chromedp.Click(`#send`, chromedp.ByQuery),
		chromedp.WaitVisible(`//div[contains(@class,"out") and @data-status="sent"]/div[contains(., "What can we help you with?")]`, chromedp.BySearch),
	)
	if err != nil {
		t.Fatalf("a reply after the restart: %v", err)
	}

	// Phone width: nothing wider than the screen, the chat first.
	var scrollW int
	var shot []byte
	var diagram string
	err = chromedp.Run(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollW),
		chromedp.WaitVisible(`#graph svg .node.current`, chromedp.ByQuery),
		chromedp.AttributeValue(`#graph svg .node.current`, "data-node", &diagram, nil, chromedp.ByQuery),
		chromedp.CaptureScreenshot(&shot),
	)
	if err != nil {
		t.Fatalf("phone width: %v", err)
	}
	if scrollW > 390 {
		t.Errorf("at 390 px the page is %d px wide", scrollW)
	}
	if !strings.HasSuffix(diagram, "_choice") {
		t.Errorf("the diagram should highlight the menu run's step, got %q", diagram)
	}
	if dir := os.Getenv("FUNNEL_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, "sandbox-390.png"), shot, 0o644)
		var full []byte
		chromedp.Run(ctx, chromedp.FullScreenshot(&full, 100))
		os.WriteFile(filepath.Join(dir, "sandbox-390-full.png"), full, 0o644)
	}

	// A bad input is said on the page; then the reset.
	var notice string
	var left int
	err = chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.SetValue(`#ff-custom`, "400d", chromedp.ByQuery),
		chromedp.Click(`#ff-go`, chromedp.ByQuery),
		chromedp.WaitVisible(`#notice span`, chromedp.ByQuery),
		chromedp.Text(`#notice span`, &notice, chromedp.ByQuery),
		chromedp.Click(`#reset`, chromedp.ByQuery),
		chromedp.WaitVisible(`//button[@id="reset" and contains(., "Click again")]`, chromedp.BySearch),
		chromedp.Click(`#reset`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`.msg`, chromedp.ByQuery),
		chromedp.WaitVisible(`//span[@id="window" and normalize-space()="never"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelectorAll('.msg').length`, &left),
	)
	if err != nil {
		t.Fatalf("notice and reset: %v", err)
	}
	if !strings.Contains(notice, "at most 31d") {
		t.Errorf("the notice should say what is wrong: %q", notice)
	}
	if o := r.sb.Clock().Offset(); o != 0 || left != 0 {
		t.Errorf("after the reset: offset %v, %d messages", o, left)
	}
}

// TestSandboxCrossOriginPage: a page on another origin, open in the same
// browser, tries every way a page can drive the sandbox without reading its
// token (a no-cors fetch, a text/plain form, a JSON fetch that needs a
// preflight, reading the page for its token): none changes anything.
func TestSandboxCrossOriginPage(t *testing.T) {
	ctx := browser(t)
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	target := r.url + "/sandbox/api/inbound"
	body := fmt.Sprintf(`{"wa_id":%q,"text":"STOP"}`, ana)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="POST" action=%q enctype="text/plain" target="sink"><input name='%s' value=''></form>
<iframe name="sink"></iframe>
<script>
window.results = [];
const note = (what, p) => p.then(r => results.push(what + ': ' + r.status + ' ' + r.type), e => results.push(what + ': blocked'));
note('no-cors', fetch(%q, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: %q}));
note('json', fetch(%q, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Funnel-Sandbox-Token': 'guess'}, body: %q}));
note('page', fetch(%q).then(r => r.text()).then(t => ({status: t.includes('sandbox-token') ? 'READ' : 'unread', type: ''})));
document.getElementById('f').submit();
setTimeout(() => results.push('done'), 1500);
</script></body></html>`, target, body[:len(body)-1]+`,"x":"`, target, body, target, body, r.url+"/sandbox")
	}))
	defer evil.Close()
	var results []string
	err := chromedp.Run(ctx,
		chromedp.Navigate(evil.URL),
		chromedp.Poll(`window.results.includes('done') && window.results.length >= 4`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`window.results`, &results),
	)
	if err != nil {
		t.Fatalf("the cross-origin page: %v", err)
	}
	for _, res := range results {
		if strings.Contains(res, "READ") || strings.Contains(res, ": 200 cors") {
			t.Errorf("a cross-origin page got through: %v", results)
		}
	}
	if c, _ := r.st.Contact(context.Background(), ana); c != nil {
		t.Fatalf("a cross-origin page changed the sandbox (%v): %+v", results, c)
	}
	n, err := r.st.InboxUnprocessed(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("inbox: %d %v", n, err)
	}
	t.Logf("cross-origin attempts: %v", results)
}

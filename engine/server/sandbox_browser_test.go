package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/store"
)

// TestSandboxInChromium drives /sandbox in headless Chromium the way a newcomer
// does after `funnel serve --dev`: arrive from an ad, see the reply that names
// it, give consent with the buttons, fast-forward, see the day-3 template.
func TestSandboxInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no chromium on this machine (.ci/run installs Debian's chromium)")
	}
	ctx := context.Background()
	p, diags, err := dsl.Load([]string{"../../flows"}, dsl.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("flows: %v %v", err, diags)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "dev.db"), store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sb, clock, ch := server.NewSandbox()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(st, engine.Options{Clock: clock, Channel: ch, PhoneNumberID: "sandbox", Logger: log, Metrics: engine.NewMetrics(reg)})
	if err := eng.Load(ctx, p, diags); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{}, eng, reg, log)
	sb.Attach(srv)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { eng.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(browserDir(t)),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 60*time.Second)
	defer cancelT()
	chromedp.ListenTarget(bctx, func(ev any) {}) // dialogs would block: the page only alerts on errors

	var reply, template string
	err = chromedp.Run(bctx,
		chromedp.Navigate(hs.URL+"/sandbox"),
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
	clickChoice := func(title string) chromedp.Action {
		return chromedp.Click(`//div[contains(@class,"msg") and contains(@class,"out")][last()]//button[normalize-space()="`+title+`"]`, chromedp.BySearch)
	}
	err = chromedp.Run(bctx,
		clickChoice("Yes please"),
		chromedp.WaitVisible(`//div[contains(@class,"out")]//button[normalize-space()="Yes, send offers"]`, chromedp.BySearch),
		clickChoice("Yes, send offers"),
		chromedp.WaitVisible(`//div[contains(@class,"out")]/div[contains(., "SUMMER20")]`, chromedp.BySearch),
		chromedp.Click(`#ff-3d`, chromedp.ByQuery),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Click(`#ff-1d`, chromedp.ByQuery),
		chromedp.WaitVisible(`.msg.out[data-template="summer_reminder"] .text`, chromedp.ByQuery),
		chromedp.Text(`.msg.out[data-template="summer_reminder"] .text`, &template, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("consent and fast-forward to day 3: %v", err)
	}
	if !strings.Contains(template, "Hi Ana!") {
		t.Fatalf("day-3 template: %q", template)
	}
}

// browserDir is Chromium's profile folder. Not t.TempDir: Chromium's helper
// processes may still write into it for a moment after the browser was
// stopped, and t.TempDir's cleanup then fails the test ("directory not
// empty"). This one is removed after the test, retried while files appear.
func browserDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "funnel-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("leaving %s: %v", dir, err)
	})
	return dir
}

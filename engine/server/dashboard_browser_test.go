package server_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardInChromium opens /dashboard of a sandbox where contacts came
// from two ads and some answered, at desktop and at phone width: the funnel,
// the by-ad table and the conversions chart are drawn, nothing overflows the
// phone's width, and the screenshots are real images (FUNNEL_SCREENSHOTS=dir
// keeps them).
func TestDashboardInChromium(t *testing.T) {
	ctx := browser(t)
	r := startSandbox(t, filepath.Join(t.TempDir(), "dev.db"))
	ads := []map[string]string{
		{"source_id": "120226305854810726", "headline": "Summer sandals -20%"},
		{"source_id": "120226305854810999", "headline": "Beach bags for the whole family, this week only"},
	}
	for i := 0; i < 12; i++ {
		waID := fmt.Sprintf("1555000%04d", i)
		r.post("/sandbox/api/inbound", map[string]any{"wa_id": waID, "name": "Contact", "text": "Hi", "referral": ads[i%2]})
		if i%3 != 0 {
			r.post("/sandbox/api/inbound", map[string]any{"wa_id": waID, "name": "Contact", "text": "Yes please"})
		}
	}
	shots := map[string][]byte{}
	for _, width := range []int64{1280, 390} {
		var shot []byte
		var reached, adRows int
		var scrollW, innerW int64
		actions := []chromedp.Action{chromedp.EmulateViewport(width, 900)}
		if width < 500 {
			actions = []chromedp.Action{chromedp.EmulateViewport(width, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)}
		}
		actions = append(actions,
			// refresh=0: the page's 5-second reload would race the checks.
			chromedp.Navigate(r.url+"/dashboard?flow=summer-sale&refresh=0"),
			chromedp.WaitVisible(`#flow-summer-sale .funnel svg`, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll('#flow-summer-sale .funnel rect.reached').length`, &reached),
			chromedp.Evaluate(`document.querySelectorAll('#flow-summer-sale table.ads tr').length - 1`, &adRows),
			chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollW),
			chromedp.Evaluate(`window.innerWidth`, &innerW),
			chromedp.FullScreenshot(&shot, 100),
		)
		start := time.Now()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("dashboard at %dpx: %v", width, err)
		}
		t.Logf("dashboard at %dpx: %s", width, time.Since(start).Round(time.Millisecond))
		if reached < 4 || adRows != 2 {
			t.Errorf("at %dpx: %d steps drawn reached, %d ads listed; want ≥ 4 and 2", width, reached, adRows)
		}
		if scrollW > innerW {
			t.Errorf("at %dpx the page is %dpx wide: something overflows", width, scrollW)
		}
		shots[fmt.Sprintf("dashboard-%d", width)] = shot
	}
	for name, shot := range shots {
		// A PNG (quality 100), and a real page is more than a blank frame.
		if len(shot) < 10_000 || !bytes.HasPrefix(shot, []byte("\x89PNG")) {
			t.Errorf("%s: %d bytes, not a screenshot of the page", name, len(shot))
		}
		if dir := os.Getenv("FUNNEL_SCREENSHOTS"); dir != "" {
			os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644)
		}
	}
	var text string
	if err := chromedp.Run(ctx, chromedp.Text(`#flow-summer-sale .summary`, &text, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "12") || !strings.Contains(text, "entered") {
		t.Errorf("summary %q, want 12 entered", text)
	}
}

package reliability

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

// TestMain removes the binary FunnelBinary built. Other test files of this
// package must not define their own TestMain.
func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// TestHarness checks the harness itself on the real binary: it starts, takes a
// signed webhook (and refuses a badly signed one), processes it, sends through
// the fake, serves /metrics and /proc figures, and stops on SIGTERM.
func TestHarness(t *testing.T) {
	fake := whatsapptest.New(t, whatsapptest.Options{})
	d := StartDaemon(t, DaemonOptions{Fake: fake})
	ctx := context.Background()
	w := NewWebhooks(d.WebhookURL(), fake.AppSecret(), 4)

	body, _, err := fake.TextWebhook("15550001111", "Ana", "menu please")
	if err != nil {
		t.Fatal(err)
	}
	bad := &Webhooks{URL: w.URL, Secret: "wrong", Client: w.Client}
	if st, err := bad.Post(ctx, body); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("badly signed webhook: %d %v, want 401", st, err)
	}
	if n, err := w.Deliver(ctx, body); err != nil || n != 1 {
		t.Fatalf("deliver: %d attempts, %v", n, err)
	}
	if _, ok := fake.WaitSent(1, 10*time.Second); !ok {
		t.Fatalf("nothing sent; log:\n%s", d.LogTail(3000))
	}
	m, err := d.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sum("go_goroutines") <= 0 || m.Sum("funnel_webhooks_total", `result="stored"`) != 1 {
		t.Errorf("metrics: goroutines %v, stored webhooks %v", m.Sum("go_goroutines"), m.Sum("funnel_webhooks_total", `result="stored"`))
	}
	if rss, err := d.RSS(); err != nil || rss <= 0 {
		t.Errorf("rss: %d %v", rss, err)
	}
	if err := d.Stop(20 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.LogTail(2000))
	}
	db := OpenDB(t, d.Opts.DB, true)
	defer db.Close()
	if n := QueryInt(t, db, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NOT NULL"); n != 1 {
		t.Errorf("processed inbox rows: %d, want 1", n)
	}
}

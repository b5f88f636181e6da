package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

// procHWM reads VmHWM (peak resident set) of a process from /proc, in bytes.
func procHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// TestStalledUploadsKeepMemoryBounded: webhook bodies are read before their
// signature can be checked, so anyone can open many POSTs, send nearly all of
// a body and stall. The daemon (default memory_limit, max_body 256 KiB) reads
// only a bounded number at once and answers the rest 503 at once: its peak
// RSS stays within a fixed budget over its idle size whatever the number of
// uploads, genuine webhooks are answered during the attack (200, or 503 that
// Meta retries), and stored normally once it ends.
//
// FUNNEL_STALLED sets the number of uploads (1,000 at ci and full levels,
// 150 otherwise), FUNNEL_STALLED_BODY their size and max_body (256 KiB).
func TestStalledUploadsKeepMemoryBounded(t *testing.T) {
	n := 150
	if Level() != "" {
		n = 1000
	}
	n = EnvInt("FUNNEL_STALLED", n)
	maxBody := EnvInt("FUNNEL_STALLED_BODY", 256<<10)
	const budget = 160 << 20 // peak RSS over the idle daemon's
	fake := whatsapptest.New(t, whatsapptest.Options{})
	d := StartDaemon(t, DaemonOptions{Fake: fake, Config: map[string]any{"max_body": maxBody}})
	ctx := context.Background()
	hooks := NewWebhooks(d.WebhookURL(), fake.AppSecret(), 4)
	warm, _, _ := fake.TextWebhook("15550002001", "Ana", "menu")
	if _, err := hooks.Deliver(ctx, warm); err != nil {
		t.Fatal(err)
	}
	idle, err := d.RSS()
	if err != nil {
		t.Fatal(err)
	}

	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		conns            []net.Conn
		busy, dialFailed atomic.Int64
	)
	head := fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n",
		d.Addr, strings.Repeat("0", 64), maxBody)
	chunk := []byte(strings.Repeat("x", 32<<10))
	sem := make(chan struct{}, 64) // dialers at once: the attack, not the test, is what should load the host
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", d.Addr, 5*time.Second)
			if err != nil {
				dialFailed.Add(1)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(head)); err != nil {
				return
			}
			for sent := 0; sent+len(chunk) < maxBody; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					break // answered 503 and closed, or the socket is full
				}
			}
			// All but the last chunk sent: the upload stalls here. Peek at
			// an early answer without waiting for one.
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if b, err := bufio.NewReader(c).ReadString('\n'); err == nil && strings.Contains(b, " 503 ") {
				busy.Add(1)
			}
		}()
	}
	// A genuine webhook during the attack is answered, never left hanging.
	genuine, _, _ := fake.TextWebhook("15550002002", "Bea", "menu")
	during, err := hooks.Post(ctx, genuine)
	if err != nil {
		t.Fatalf("a genuine webhook during the attack: %v", err)
	}
	wg.Wait()
	peak, err := procHWM(d.PID())
	if err != nil {
		t.Fatal(err)
	}
	rssUnder, _ := d.RSS()
	mu.Lock()
	open := len(conns)
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	if during != 200 && during != 503 {
		t.Fatalf("a genuine webhook during the attack got %d, want 200 or 503", during)
	}
	if _, err := hooks.Deliver(ctx, genuine); err != nil {
		t.Fatalf("a genuine webhook after the attack: %v", err)
	}
	if _, ok := fake.WaitSent(2, 20*time.Second); !ok {
		t.Fatalf("the genuine messages were not answered; log:\n%s", d.LogTail(3000))
	}
	m, err := d.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	growth := peak - idle
	Report(t, "security.stalled-uploads", "%d stalled uploads of %d KiB (%d connections opened, %d refused at dial), %d answered 503 at once (busy counter %.0f); peak RSS %d MiB = idle %d MiB + %d MiB (budget %d MiB), RSS under attack %d MiB; genuine webhook during the attack: %d",
		n, maxBody>>10, open, dialFailed.Load(), busy.Load(), m.Sum("funnel_webhooks_total", `result="busy"`), peak>>20, idle>>20, growth>>20, budget>>20, rssUnder>>20, during)
	if growth > budget {
		t.Fatalf("peak RSS grew by %d MiB under %d stalled uploads, over the %d MiB budget", growth>>20, n, budget>>20)
	}
	if m.Sum("funnel_webhooks_total", `result="busy"`) == 0 && n > 256 {
		t.Fatalf("no upload was refused as busy: the body reads are not bounded")
	}
}

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

	"github.com/funnel-dev/funnel/engine/whatsapp"
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

// echoFlow answers every message: a contact who writes N messages queues N
// replies, which the pair rate lets out one per interval.
const echoFlow = `flow: echo
description: Answers every message
language: en_US
reenter: true
trigger:
  message: {}
steps:
  - id: answer
    send: "Got it, ${contact.name}."
`

// replyLatencies has each of the contacts write once and measures, for each,
// the time from the webhook's acknowledgement to its reply at the fake API.
func replyLatencies(t *testing.T, fake *whatsapptest.Fake, hooks *Webhooks, contacts []string) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(contacts))
	var wg sync.WaitGroup
	for i, c := range contacts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _, _ := fake.TextWebhook(c, "Ana", "hello")
			if _, err := hooks.Deliver(context.Background(), body); err != nil {
				t.Errorf("%s: %v", c, err)
				return
			}
			acked := time.Now()
			for deadline := acked.Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if s := fake.SentTo(c); len(s) > 0 {
					out[i] = s[0].At.Sub(acked)
					return
				}
			}
			t.Errorf("%s: no reply within a minute", c)
		}()
	}
	wg.Wait()
	return out
}

// TestFloodFromOneContact: one contact writes thousands of messages to a
// flow that answers each. Its unsent replies stay within
// max_queued_per_contact (the rest dropped and counted), its paced queue is
// out of the claim rounds' way, and other contacts' replies take about as
// long as before the flood. Counts are asserted; the latencies are measured
// and reported (the ratio of medians), not asserted: the host is shared.
//
// FUNNEL_FLOOD sets the flood's size (2,000; 10,000 at ci and full levels).
func TestFloodFromOneContact(t *testing.T) {
	n := 2000
	if Level() != "" {
		n = 10000
	}
	n = EnvInt("FUNNEL_FLOOD", n)
	const others, queueCap = 30, 100
	dir := t.TempDir()
	flows := dir + "/flows"
	if err := os.MkdirAll(flows, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(flows+"/echo.yaml", []byte(echoFlow), 0o644)
	fake := whatsapptest.New(t, whatsapptest.Options{})
	d := StartDaemon(t, DaemonOptions{Fake: fake, Flows: []string{flows}})
	ctx := context.Background()
	hooks := NewWebhooks(d.WebhookURL(), fake.AppSecret(), 8)
	contacts := func(base int) []string {
		var cs []string
		for i := range others {
			cs = append(cs, fmt.Sprintf("1555%07d", base+i))
		}
		return cs
	}
	before := replyLatencies(t, fake, hooks, contacts(1000))

	const flooder = "15559999999"
	for sent := 0; sent < n; sent += 100 {
		var msgs []whatsapp.InboundMessage
		for i := sent; i < min(sent+100, n); i++ {
			msgs = append(msgs, whatsapp.InboundMessage{From: flooder, ID: fmt.Sprintf("wamid.flood.%d", i),
				Timestamp: whatsapp.Timestamp(strconv.FormatInt(time.Now().Unix(), 10)), Type: whatsapp.InText,
				Text: &whatsapp.InboundText{Body: fmt.Sprint("flood ", i)}})
		}
		body, _, err := fake.InboundWebhook("", "Flo", msgs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hooks.Deliver(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	// The flood's events are processed (its replies queued or dropped) before
	// the others write: what is measured is the effect of its backlog.
	if err := WaitFor(120*time.Second, func() (bool, error) {
		m, err := d.Metrics(ctx)
		return err == nil && m.Sum("funnel_inbox_pending") == 0, err
	}); err != nil {
		t.Fatalf("the flood was not processed: %v", err)
	}
	during := replyLatencies(t, fake, hooks, contacts(2000))
	// What the paced backlog costs while nothing else happens.
	cpu0, _ := d.CPU()
	time.Sleep(3 * time.Second)
	cpu1, _ := d.CPU()
	idle := float64(cpu1-cpu0) / float64(3*time.Second) * 100

	m, err := d.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := OpenDB(t, d.Opts.DB, true)
	defer db.Close()
	queued := QueryInt(t, db, "SELECT COUNT(*) FROM outbox WHERE contact = ? AND status IN ('pending', 'claimed', 'sending')", flooder)
	rows := QueryInt(t, db, "SELECT COUNT(*) FROM outbox WHERE contact = ?", flooder)
	dropped := m.Sum("funnel_send_refusals_total", `reason="queue_full"`)
	med := func(ds []time.Duration) time.Duration { return Percentile(ds, 50) }
	p90 := func(ds []time.Duration) time.Duration { return Percentile(ds, 90) }
	Report(t, "security.flood", "%d messages from one contact: %d outbox rows for it (%d unsent, cap %d), %.0f dropped as queue_full, %d replies to it so far; %d other contacts' first replies: median %v → %v (×%.2f), p90 %v → %v during its backlog; CPU with the backlog and nothing else to do: %.1f%% of a core",
		n, rows, queued, queueCap, dropped, len(fake.SentTo(flooder)), others, med(before), med(during),
		float64(med(during))/float64(max(med(before), time.Millisecond)), p90(before), p90(during), idle)
	if queued > queueCap {
		t.Errorf("%d unsent messages for the flooding contact, over the cap of %d", queued, queueCap)
	}
	if int(rows)+int(dropped) != n {
		t.Errorf("%d rows + %.0f dropped != %d messages: replies unaccounted for", rows, dropped, n)
	}
	for _, c := range append(contacts(1000), contacts(2000)...) {
		if k := len(fake.SentTo(c)); k != 1 {
			t.Errorf("%s got %d replies, want 1", c, k)
		}
	}
}

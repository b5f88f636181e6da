package reliability

// Benchmarks of the real daemon over loopback. They report figures (REPORT
// lines, and FUNNEL_REPORT for scripts/reliability.sh) and assert only
// correctness: every webhook acknowledged, nothing sent twice, never above the
// fake's throughput limit. Goals (docs/RELIABILITY.md) are compared by the
// script, not asserted: timings on a shared machine are not test results.
//
//	FUNNEL_RELIABILITY=ci go test -run 'TestBench' -v ./engine/reliability/
//
// Settings: FUNNEL_BENCH_WEBHOOKS (measured webhooks per run), FUNNEL_BENCH_CONNS
// (concurrent connections), FUNNEL_BENCH_SENDS (pre-loaded sends).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

type signedBody struct {
	body []byte
	sig  string
}

// blastResult is one load run: latencies of acknowledged webhooks.
type blastResult struct {
	n, failed int
	elapsed   time.Duration
	lat       []time.Duration
	cpu       time.Duration // the daemon's CPU time over the run
}

func (r blastResult) perSecond() float64 { return float64(r.n) / r.elapsed.Seconds() }

// blast posts bodies over conns keep-alive connections, as fast as the
// daemon acknowledges them.
func blast(ctx context.Context, url string, conns int, bodies []signedBody) blastResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, len(bodies))
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i].body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(whatsapp.SignatureHeader, bodies[i].sig)
				t0 := time.Now()
				res, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				lat[i] = time.Since(t0)
				if err != nil || res.StatusCode != http.StatusOK {
					failed.Add(1)
					lat[i] = -1
				}
			}
		}()
	}
	wg.Wait()
	r := blastResult{elapsed: time.Since(start), failed: int(failed.Load())}
	for _, l := range lat {
		if l >= 0 {
			r.lat = append(r.lat, l)
		}
	}
	r.n = len(r.lat)
	return r
}

// inboundBodies builds n signed webhooks, one message each, from contacts
// cycling over `contacts` wa_ids, with the given text.
func inboundBodies(t testing.TB, fake *whatsapptest.Fake, prefix string, n, contacts int, text func(i int) string) []signedBody {
	out := make([]signedBody, n)
	for i := range out {
		c := i % contacts
		body, sig, err := fake.InboundWebhook("", fmt.Sprintf("B%d", c), whatsapp.InboundMessage{
			From: fmt.Sprintf("1557%07d", c), ID: fmt.Sprintf("wamid.%s%d", prefix, i), Type: whatsapp.InText,
			Text: &whatsapp.InboundText{Body: text(i)}})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = signedBody{body: body, sig: sig}
	}
	return out
}

// TestBenchWebhooks measures webhooks acknowledged per second by the real
// binary (signature check, parse, durable group commit before the 200) while
// the engine processes them, with synchronous=FULL (default) and NORMAL, and
// the latency each client saw.
func TestBenchWebhooks(t *testing.T) {
	RequireLevel(t, "ci")
	n := EnvInt("FUNNEL_BENCH_WEBHOOKS", map[string]int{"ci": 10000, "full": 60000}[Level()])
	conns := EnvInt("FUNNEL_BENCH_CONNS", 32)
	for _, sync := range []string{"FULL", "NORMAL"} {
		t.Run(sync, func(t *testing.T) { benchWebhooks(t, sync, conns, n) })
	}
}

func benchWebhooks(t *testing.T, sync string, conns, n int) {
	fake := whatsapptest.New(t, whatsapptest.Options{})
	// The example flows: "hi" starts the menu (a list, a reply timeout); the
	// same contact's next "hi" is its reply.
	d := StartDaemon(t, DaemonOptions{Fake: fake, Flows: []string{filepath.Join(RepoRoot(), "flows")},
		Config: map[string]any{"synchronous": sync}, LogLevel: "warn"})
	ctx := context.Background()
	warm := inboundBodies(t, fake, "W"+sync, 2000, 10000, func(int) string { return "hi" })
	bodies := inboundBodies(t, fake, "B"+sync, n, 10000, func(int) string { return "hi" })
	if r := blast(ctx, d.WebhookURL(), conns, warm); r.failed > 0 {
		t.Fatalf("warm-up: %d webhooks not acknowledged\n%s", r.failed, d.LogTail(2000))
	}
	cpu0, _ := d.CPU()
	load := LoadAverage()
	stalls := StartStallMeter()
	r := blast(ctx, d.WebhookURL(), conns, bodies)
	stallN, stallT := stalls.Stop()
	cpu1, _ := d.CPU()
	r.cpu = cpu1 - cpu0
	if r.failed > 0 {
		t.Errorf("%d of %d webhooks not acknowledged with 200", r.failed, n)
	}
	m, err := d.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := m.Sum("funnel_inbox_stored_total")
	if int(stored) != n+len(warm) {
		t.Errorf("the daemon stored %v inbox rows for %d webhooks", stored, n+len(warm))
	}
	p50, p99, pmax := Percentile(r.lat, 50), Percentile(r.lat, 99), Percentile(r.lat, 100)
	key := "bench.webhooks." + sync
	Report(t, key, "%.0f/s acknowledged (%d webhooks, %d connections, %.1fs), p50 %.1f ms, p99 %.1f ms, max %.0f ms; daemon CPU %.2f ms per webhook; host: load average %s, %d stalls over 10 ms (%.2fs) seen by the test process",
		r.perSecond(), r.n, conns, r.elapsed.Seconds(), ms(p50), ms(p99), ms(pmax), ms(r.cpu)/float64(r.n), load, stallN, stallT.Seconds())
	Report(t, key+".rate", "%.0f", r.perSecond())
	Report(t, key+".p99ms", "%.1f", ms(p99))
	// The processing behind the acknowledgements: how far it got meanwhile.
	Report(t, key+".backlog", "%v of %v events processed when the load ended",
		m.Sum("funnel_inbox_processed_total"), stored)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestBenchSender measures the sender against the fake at the maximum pace
// (config rate: 1000): the outbox is pre-loaded with sends to many contacts,
// the daemon started, and the rate computed from the fake's accept times. The
// fake enforces 1,000/s with a bucket of 100 (130429 above it).
func TestBenchSender(t *testing.T) {
	RequireLevel(t, "ci")
	n := EnvInt("FUNNEL_BENCH_SENDS", map[string]int{"ci": 10000, "full": 20000}[Level()])
	const rate = 1000
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "funnel.db")
	flows := filepath.Join(TestdataFlows(), "..", "sender")
	fake := whatsapptest.New(t, whatsapptest.Options{Rate: rate, Burst: rate / 10})
	preloadSends(t, fake, dbPath, flows, n)

	d := StartDaemon(t, DaemonOptions{Fake: fake, Dir: dir, DB: dbPath, Flows: []string{flows},
		Config: map[string]any{"rate": rate}, LogLevel: "warn"})
	load := LoadAverage()
	cpu0, _ := d.CPU()
	stalls := StartStallMeter()
	sent, ok := fake.WaitSent(n, time.Duration(n/rate)*3*time.Second+30*time.Second)
	stallN, stallT := stalls.Stop()
	cpu1, _ := d.CPU()
	if !ok {
		t.Fatalf("only %d of %d messages sent\n%s", len(sent), n, d.LogTail(2000))
	}
	fake.AssertNoDuplicates(t)
	limited := 0
	for _, a := range fake.Attempts() {
		if a.Code == 130429 {
			limited++
		}
	}
	if limited > 0 {
		t.Errorf("the fake answered 130429 %d times: the sender went over 1,000/s", limited)
	}
	at := make([]time.Time, len(sent))
	for i, s := range sent {
		at[i] = s.At
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	span := at[len(at)-1].Sub(at[0])
	achieved := float64(len(at)-1) / span.Seconds()
	// The middle 90%: without the start (first claim) and the tail.
	lo, hi := len(at)/20, len(at)-1-len(at)/20
	middle := float64(hi-lo) / at[hi].Sub(at[lo]).Seconds()
	// Time lost between consecutive accepts (beyond the 1 ms pace) in gaps
	// longer than 10 ms: what the host's stalls and any pause of the sender
	// cost.
	var lost time.Duration
	for i := 1; i < len(at); i++ {
		if g := at[i].Sub(at[i-1]); g > 10*time.Millisecond {
			lost += g - time.Second/rate
		}
	}
	// The most accepted in any one second.
	peak, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	Report(t, "bench.sender", "%.1f/s achieved (%.2f%% of %d/s) over %d sends in %.2fs, middle 90%% %.1f/s, busiest second %d, 130429: %d, duplicates %d; %.2fs lost in gaps over 10 ms; daemon CPU %.2f ms per send; host: load average %s, %d stalls over 10 ms (%.2fs) seen by the test process",
		achieved, 100*achieved/rate, rate, len(at), span.Seconds(), middle, peak, limited, len(fake.Duplicates()),
		lost.Seconds(), ms(cpu1-cpu0)/float64(len(at)), load, stallN, stallT.Seconds())
	Report(t, "bench.sender.rate", "%.1f", achieved)
	Report(t, "bench.sender.n.130429", "%d", limited)
	Report(t, "bench.sender.n.duplicates", "%d", len(fake.Duplicates()))
}

// preloadSends fills a database with n pending sends, one to each of n
// contacts who just wrote, through the engine itself (no channel: nothing is
// sent), and tells the fake they wrote.
func preloadSends(t *testing.T, fake *whatsapptest.Fake, dbPath, flows string, n int) {
	ctx := context.Background()
	st, err := store.Open(ctx, dbPath, store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, diags, err := dsl.Load([]string{flows}, dsl.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("flows: %v %v", err, diags)
	}
	eng := engine.New(st, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := eng.Load(ctx, p, diags); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var items []store.InboxItem
	for i := range n {
		waID := fmt.Sprintf("1558%07d", i)
		body, _, err := fake.InboundWebhook("", fmt.Sprintf("S%d", i), whatsapp.InboundMessage{
			From: waID, ID: fmt.Sprintf("wamid.S%d", i), Type: whatsapp.InText,
			Text: &whatsapp.InboundText{Body: fmt.Sprintf("blast %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		env, err := whatsapp.ParseWebhook(body)
		if err != nil {
			t.Fatal(err)
		}
		its, err := engine.FromWebhook(env, now)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, its...)
		if len(items) >= 2000 || i == n-1 {
			if _, err := eng.Enqueue(ctx, items); err != nil {
				t.Fatal(err)
			}
			items = items[:0]
		}
	}
	for {
		k, err := eng.ProcessInbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	st2, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.OutboxPending != int64(n) {
		t.Fatalf("pre-loaded %d pending sends, want %d", st2.OutboxPending, n)
	}
}

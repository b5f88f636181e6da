package reliability

// The soak: the real daemon under a steady webhook rate over loopback for a
// bounded time (FUNNEL_SOAK_DURATION: 45 s in ci, 5 min in full; rate
// FUNNEL_SOAK_RATE webhooks/s), with the short-wait flows of testdata/flows so
// runs start, wait, time out and end all along, and a delivered status for
// every message sent. Every few seconds it samples the daemon's RSS
// (/proc/PID/status), goroutines and Go heap (/metrics), its queues, and the
// size of the database on disk: the daemon runs with a retention of a sixth of
// the run (at least 10 s) for runs, messages and inbox events, so the
// database must stop growing once the retention deletes as much as comes in.
//
// "Flat" is judged on medians, robust to a GC cycle or a busy moment of the
// host: the median of the last third of the samples against the first third
// (after a warm-up), within a generous factor, and no steady climb (the
// last two thirds may not rise at nearly every sample). RSS is allowed the
// SQLite page cache on top (the writer's cache is 64 MiB and fills as the
// database grows: that is the cache working, not a leak) and is judged for a
// climb only in runs of 3 minutes or more, on their last third, once the
// cache is full.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

type soakSample struct {
	at                     time.Duration
	rss, heap              float64 // MiB
	goroutines, fds        float64
	inbox, outbox, timers  float64
	liveRuns, acked, sends float64
	db                     float64 // MiB on disk: the database and its WAL
}

func TestSoak(t *testing.T) {
	RequireLevel(t, "ci")
	dur := EnvDuration("FUNNEL_SOAK_DURATION", map[string]time.Duration{"ci": 45 * time.Second, "full": 5 * time.Minute}[Level()])
	rate := EnvInt("FUNNEL_SOAK_RATE", 200)
	every := min(max(dur/60, time.Second), 5*time.Second)
	seed := Seed(t, "FUNNEL_SOAK_SEED")
	t.Logf("soak: %v at %d webhooks/s, a sample every %v", dur, rate, every)

	fake := whatsapptest.New(t, whatsapptest.Options{
		Templates: []whatsapptest.Template{{Name: "rel_nudge", Language: "en_US", Category: "UTILITY", Params: 1}},
	})
	// Retention as short as the run allows, so the database reaches the size
	// where what is deleted equals what comes in, and must stay there.
	retention := max(dur/6, 10*time.Second).String()
	d := StartDaemon(t, DaemonOptions{Fake: fake, LogLevel: "warn",
		Config: map[string]any{"rate": 1000, "pair_burst": 10, "pair_interval": "1s",
			"retention_runs": retention, "retention_messages": retention, "retention_inbox": retention}})
	t.Logf("retention of runs, messages and inbox events: %s", retention)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := StartStatusPoster(ctx, fake, NewWebhooks(d.WebhookURL(), fake.AppSecret(), 8), 4)
	hooks := NewWebhooks(d.WebhookURL(), fake.AppSecret(), 64)

	// Sessions: a contact enters (an ad, or "menu"), and about one to three
	// seconds later mostly answers. Contacts come back after the pool is used
	// up, so long soaks also meet returning contacts.
	const pool = 20000
	rng := rand.New(rand.NewPCG(seed, 3))
	type post struct {
		body []byte
		at   time.Time
	}
	queue := make(chan post, 4096)
	var acked, failedPosts atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	var posters sync.WaitGroup
	for range 32 {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for p := range queue {
				t0 := time.Now()
				if _, err := hooks.Deliver(ctx, p.body); err != nil {
					failedPosts.Add(1)
					continue
				}
				acked.Add(1)
				latMu.Lock()
				lat = append(lat, time.Since(t0))
				latMu.Unlock()
			}
		}()
	}
	start := time.Now()
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		defer close(queue)
		type reply struct {
			due  time.Time
			from string
			text string
		}
		var replies []reply
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; time.Since(start) < dur; i++ {
			<-tick.C
			now := time.Now()
			var m whatsapp.InboundMessage
			if len(replies) > 0 && !replies[0].due.After(now) && i%2 == 1 {
				r := replies[0]
				replies = replies[1:]
				m = whatsapp.InboundMessage{From: r.from, Type: whatsapp.InText, Text: &whatsapp.InboundText{Body: r.text}}
			} else {
				c := fmt.Sprintf("1559%07d", i%pool)
				m = whatsapp.InboundMessage{From: c, Type: whatsapp.InText}
				if rng.IntN(2) == 0 {
					m.Text = &whatsapp.InboundText{Body: fmt.Sprintf("Hi! s%d", i)}
					m.Referral = &whatsapp.Referral{SourceID: crashAd, SourceType: "ad", Headline: "Summer sale"}
				} else {
					m.Text = &whatsapp.InboundText{Body: fmt.Sprintf("menu s%d", i)}
				}
				if rng.IntN(10) < 8 {
					text := []string{"Yes", "No", "Sale"}[rng.IntN(3)]
					replies = append(replies, reply{due: now.Add(time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))), from: c, text: text})
				}
			}
			body, _, err := fake.InboundWebhook("", "Soak", m)
			if err != nil {
				t.Error(err)
				return
			}
			select {
			case queue <- post{body: body, at: now}:
			case <-ctx.Done():
				return
			}
		}
	}()

	var samples []soakSample
	sample := func() {
		m, err := d.Metrics(ctx)
		if err != nil {
			t.Logf("metrics: %v", err)
			return
		}
		rss, _ := d.RSS()
		var dbBytes int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(d.Opts.DB + suffix); err == nil {
				dbBytes += fi.Size()
			}
		}
		samples = append(samples, soakSample{at: time.Since(start), rss: float64(rss) / (1 << 20),
			heap: m.Sum("go_memstats_heap_inuse_bytes") / (1 << 20), goroutines: m.Sum("go_goroutines"),
			fds: m.Sum("process_open_fds"), inbox: m.Sum("funnel_inbox_pending"), outbox: m.Sum("funnel_outbox_pending"),
			timers: m.Sum("funnel_timers_pending"), liveRuns: m.Sum("funnel_runs_live"),
			acked: float64(acked.Load()), sends: float64(len(fake.Sent())), db: float64(dbBytes) / (1 << 20)})
	}
	sample()
	tick := time.NewTicker(every)
loop:
	for {
		select {
		case <-tick.C:
			sample()
		case <-genDone:
			break loop
		}
	}
	tick.Stop()
	posters.Wait()
	sample()
	loadEnd := time.Since(start)

	// Drain, then check that nothing was lost or sent twice.
	err := WaitFor(2*time.Minute, func() (bool, error) {
		m, err := d.Metrics(ctx)
		return err == nil && Drained(m) && statuses.CaughtUp(), nil
	})
	if err == nil {
		err = WaitFor(time.Minute, func() (bool, error) {
			m, err := d.Metrics(ctx)
			return err == nil && Drained(m), nil
		})
	}
	if err != nil {
		t.Errorf("not drained after the soak: %v", err)
	}
	final, err := d.Metrics(ctx)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	if err := statuses.Stop(); err != nil {
		t.Errorf("status webhooks: %v", err)
	}
	if n := failedPosts.Load(); n > 0 {
		t.Errorf("%d webhooks never acknowledged", n)
	}
	fake.AssertNoDuplicates(t)
	var e131047 int
	for _, a := range fake.Attempts() {
		if a.Code == 131047 {
			e131047++
		}
	}
	if e131047 > 0 {
		t.Errorf("131047 from the fake %d times", e131047)
	}
	d.Stop(30 * time.Second)
	var dbBytes int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(d.Opts.DB + suffix); err == nil {
			dbBytes += fi.Size()
		}
	}
	// Retention deletes inbox rows as it goes: the daemon's counters say what
	// it processed.
	db := OpenDB(t, d.Opts.DB, true)
	defer db.Close()
	if n := QueryInt(t, db, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL OR result LIKE 'error%'"); n > 0 {
		t.Errorf("%d inbox rows unprocessed or in error", n)
	}
	processed := int64(final.Sum("funnel_inbox_processed_total", `kind="message"`) -
		final.Sum("funnel_inbox_processed_total", `kind="message"`, `result="error"`))
	if processed != acked.Load() {
		t.Errorf("%d message events processed for %d acknowledged webhooks", processed, acked.Load())
	}
	deleted := final.Sum("funnel_retention_deleted_total")

	// The samples.
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %8s %8s %6s %5s %7s %7s %7s %7s %8s %8s %7s\n", "t(s)", "RSS MiB", "heap MiB", "gorout", "fds", "inbox", "outbox", "timers", "live", "acked", "sent", "DB MiB")
	for _, s := range samples {
		fmt.Fprintf(&b, "%7.1f %8.1f %8.1f %6.0f %5.0f %7.0f %7.0f %7.0f %7.0f %8.0f %8.0f %7.1f\n", s.at.Seconds(), s.rss, s.heap,
			s.goroutines, s.fds, s.inbox, s.outbox, s.timers, s.liveRuns, s.acked, s.sends, s.db)
	}
	t.Logf("samples:\n%s", b.String())

	// Flatness, after a warm-up of a tenth of the run (at least 5 s) and, for
	// the database, once the retention has started deleting.
	warm := 0
	for warm < len(samples) && samples[warm].at < max(dur/10, 5*time.Second, max(dur/6, 10*time.Second)+5*time.Second) {
		warm++
	}
	steady := samples[warm:]
	if len(steady) < 9 {
		t.Fatalf("only %d samples after the warm-up: run longer", len(steady))
	}
	series := func(f func(soakSample) float64) []float64 {
		out := make([]float64, len(steady))
		for i, s := range steady {
			out[i] = f(s)
		}
		return out
	}
	type check struct {
		name   string
		xs     []float64
		factor float64
		slack  float64 // absolute allowance on top of the factor
		unit   string
		climb  int // samples at the end judged for a steady climb (0: not judged)
	}
	n := len(steady)
	// RSS includes SQLite's page cache, which fills as the database grows (64
	// MiB for the writer, 2 MiB per reader: about two minutes at 200
	// webhooks/s) and then holds: RSS may grow by that much, and is judged
	// for a climb only on the last third of a run long enough to fill it.
	const sqliteCache = 64 + 4*2
	rssClimb := 0
	if dur >= 3*time.Minute {
		rssClimb = n / 3
	}
	checks := []check{
		{"goroutines", series(func(s soakSample) float64 { return s.goroutines }), 1.5, 20, "", n - n/3},
		{"Go heap", series(func(s soakSample) float64 { return s.heap }), 2, 16, " MiB", n - n/3},
		{"RSS", series(func(s soakSample) float64 { return s.rss }), 1.5, sqliteCache + 16, " MiB", rssClimb},
		{"open fds", series(func(s soakSample) float64 { return s.fds }), 1.5, 16, "", n - n/3},
		// Deleted rows leave free pages that new rows reuse; the WAL holds
		// what was written since the last checkpoint.
		{"database", series(func(s soakSample) float64 { return s.db }), 1.25, 4, " MiB", n - n/3},
	}
	var summary []string
	for _, c := range checks {
		first, last := Median(c.xs[:n/3]), Median(c.xs[n-n/3:])
		// A steady climb: nearly every sample of the judged end above the one
		// before.
		rises, steps := 0, 0
		for i := n - c.climb; i < n && c.climb > 0; i++ {
			steps++
			if c.xs[i] > c.xs[i-1] {
				rises++
			}
		}
		slope := TheilSen(c.xs) / every.Minutes()
		climb := fmt.Sprintf("rising at %d of the last %d samples", rises, steps)
		if c.climb == 0 {
			climb = "climb not judged in a short run (SQLite cache filling)"
		}
		summary = append(summary, fmt.Sprintf("%s %.0f→%.0f%s (×%.2f, %+.1f%s/min, %s)",
			c.name, first, last, c.unit, last/max(first, 1e-9), slope, c.unit, climb))
		if last > first*c.factor+c.slack {
			t.Errorf("%s grew: median %.1f%s in the last third against %.1f%s in the first (allowed ×%.1f + %.0f)",
				c.name, last, c.unit, first, c.unit, c.factor, c.slack)
		}
		if steps >= 6 && float64(rises) >= 0.9*float64(steps) {
			t.Errorf("%s climbs steadily: it rose at %d of the last %d samples", c.name, rises, steps)
		}
	}
	p50, p99 := Percentile(lat, 50), Percentile(lat, 99)
	Report(t, "soak.load", "%d webhooks at %d/s for %.0fs (%d acknowledged, %d sends, %d statuses), p50 %.1f ms, p99 %.1f ms",
		acked.Load(), rate, loadEnd.Seconds(), acked.Load(), len(fake.Sent()), statuses.Acked(), ms(p50), ms(p99))
	Report(t, "soak.flat", "%s", strings.Join(summary, "; "))
	Report(t, "soak.db", "%.1f MiB on disk after %d webhooks and %d sends, retention %s, %.0f rows deleted by it",
		float64(dbBytes)/(1<<20), acked.Load(), len(fake.Sent()), retention, deleted)
	Report(t, "soak.n.webhooks", "%d", acked.Load())
	Report(t, "soak.n.lost", "%d", acked.Load()-processed)
	Report(t, "soak.n.duplicates", "%d", len(fake.Duplicates()))
	Report(t, "soak.samples", "%d samples every %v (the test log has the table)", len(samples), every)
}

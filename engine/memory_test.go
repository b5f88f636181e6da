package engine_test

// Memory: the engine keeps conversation state on disk, so its resident memory
// does not grow with the number of contacts or live runs.
//
// TestMemoryNoPerContactState (skipped with -short, ~1s) checks the Go heap does not grow
// with the number of contacts handled. TestMemory1M (FUNNEL_BIG=1) seeds 1M
// contacts each in a live run, then runs the engine's loops over them in a child
// process (a fresh process, so the seeding does not count) while sampling its
// RSS and Go heap:
//
//	FUNNEL_BIG=1 go test -run TestMemory1M -v ./engine/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// memStatus reads VmRSS, VmHWM (peak RSS) and the RSS of anonymous memory
// (heaps: Go's and SQLite's page cache) of this process from /proc, in bytes.
func memStatus() (rss, hwm, anon int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1, -1, -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		case "RssAnon:":
			anon = kb << 10
		}
	}
	return rss, hwm, anon
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// liveHeap is the Go heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// memSample is one measurement of the child of TestMemory1M.
type memSample struct {
	Phase      string  `json:"phase"`
	RSSMB      float64 `json:"rss_mb"`
	PeakMB     float64 `json:"peak_mb"`
	AnonMB     float64 `json:"anon_mb"`     // RSS of anonymous memory; the rest is the binary and mapped files (SQLite's -shm)
	HeapMB     float64 `json:"heap_mb"`     // Go heap in use (after GC)
	GoSysMB    float64 `json:"go_sys_mb"`   // memory the Go runtime holds from the OS
	Timers     int     `json:"timers"`      // fired so far
	Inbound    int     `json:"inbound"`     // processed so far
	Sent       int64   `json:"sent"`        // messages handed to the channel so far
	ElapsedSec float64 `json:"elapsed_sec"` // since the child started
	LiveRuns   int64   `json:"live_runs"`   // still waiting
	PendingTmr int64   `json:"timers_left"` // rows in timers
	DBMB       float64 `json:"db_mb"`       // database + WAL on disk
	CacheNote  string  `json:"note,omitempty"`
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// discardChannel accepts every message.
type discardChannel struct{ n atomic.Int64 }

func (c *discardChannel) Send(_ context.Context, _ string, m *whatsapp.Message) (string, error) {
	return "wamid.out." + strconv.FormatInt(c.n.Add(1), 10), nil
}

// TestMemoryNoPerContactState: handling 5,000 more contacts (a run each, a
// send, a timer) does not grow the engine's Go heap by more than a few hundred
// bytes per contact — what is needed for a contact lives in SQLite, not in
// memory. Not a timing test.
func TestMemoryNoPerContactState(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	clock := engine.NewVirtualClock(benchT0)
	st, eng := benchEngine(t, filepath.Join(t.TempDir(), "mem.db"), "NORMAL", clock,
		engine.Options{Channel: &discardChannel{}, NoPacing: true})
	defer st.Close()
	next := 0
	handle := func(n int) {
		items := make([]store.InboxItem, n)
		for i := range items {
			items[i] = benchInboundItem(next, "hello", clock.Now())
			next++
		}
		benchEnqueue(t, st, items)
		for range 2 {
			if err := eng.RunUntilIdle(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Advance(5 * time.Hour) // the reply timeouts (1h, 4h) come due
		}
	}
	warm, added := 500, 5000
	if raceEnabled() {
		warm, added = 200, 2000 // CI runs -race: the same check, less work
	}
	handle(warm) // warm up: statements, caches, pools
	before := liveHeap()
	handle(added)
	after := liveHeap()
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Contacts != int64(warm+added) || stats.OutboxPending != 0 || stats.LiveRuns != 0 {
		t.Fatalf("stats %+v: want %d contacts, every message sent, every run ended", stats, warm+added)
	}
	growth := int64(after) - int64(before)
	t.Logf("live Go heap: %.2f MB after %d contacts, %.2f MB after %d (%+d bytes per added contact)",
		mb(int64(before)), warm, mb(int64(after)), warm+added, growth/int64(added))
	// The sender's per-recipient pacing keeps up to 100,000 recipients in memory
	// (about 150 bytes each) when pacing is on; here it is off, so nothing may
	// grow with the contacts.
	if growth > int64(added)*64 {
		t.Errorf("the Go heap grew by %.2f MB for %d contacts: state is kept in memory", mb(growth), added)
	}
}

// TestMemory1M seeds 1M contacts each in a live run (half waiting for a reply
// with a reply timeout, half in a wait), then, in a fresh child process, runs the
// engine's loops over them: 10 rounds of firing 20,000 due timers, processing
// 5,000 replies from random contacts and sending everything that produced,
// sampling RSS and the Go heap after each. Goal: under 150 MB and flat.
func TestMemory1M(t *testing.T) {
	if path := os.Getenv("FUNNEL_MEM_CHILD"); path != "" {
		memChild(t, path)
		return
	}
	if os.Getenv("FUNNEL_BIG") == "" {
		t.Skip("set FUNNEL_BIG=1 (seeds 1M contacts, ~1 GB of disk, a minute or two)")
	}
	n := 1_000_000
	if s := os.Getenv("FUNNEL_MEM_CONTACTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mem.db")
	st, _ := benchEngine(t, path, "NORMAL", engine.NewVirtualClock(benchT0), engine.Options{})
	st.Close()
	start := time.Now()
	benchSeed(t, path, n, benchT0.Add(time.Hour), "ad", "drip")
	t.Logf("seeded %d contacts with live runs and timers in %s", n, time.Since(start).Round(time.Millisecond))

	cmd := exec.Command(os.Args[0], "-test.run=^TestMemory1M$", "-test.v")
	cmd.Env = append(os.Environ(), "FUNNEL_MEM_CHILD="+path, "FUNNEL_MEM_CONTACTS="+strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var samples []memSample
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "MEMSAMPLE "); i >= 0 {
			var s memSample
			if err := json.Unmarshal([]byte(line[i+len("MEMSAMPLE "):]), &s); err != nil {
				t.Fatal(err)
			}
			samples = append(samples, s)
		}
	}
	if len(samples) < 5 {
		t.Fatalf("child reported %d samples:\n%s", len(samples), out)
	}
	t.Logf("%-10s %7s %7s %7s %7s %9s %8s %8s %8s %9s %9s %7s %7s", "phase", "rss MB", "peak MB", "anon MB", "heap MB", "go sys MB",
		"timers", "inbound", "sent", "live runs", "timers", "db MB", "secs")
	var peak, firstRound, last float64
	for i, s := range samples {
		t.Logf("%-10s %7.1f %7.1f %7.1f %7.1f %9.1f %8d %8d %8d %9d %9d %7.0f %7.1f", s.Phase, s.RSSMB, s.PeakMB, s.AnonMB, s.HeapMB, s.GoSysMB,
			s.Timers, s.Inbound, s.Sent, s.LiveRuns, s.PendingTmr, s.DBMB, s.ElapsedSec)
		peak = max(peak, s.PeakMB)
		if s.Phase == "round 1" {
			firstRound = s.RSSMB
		}
		if i == len(samples)-1 {
			last = s.RSSMB
		}
	}
	if peak >= 150 {
		t.Errorf("peak RSS %.1f MB, want under 150 MB", peak)
	}
	// Flat: once the first round has warmed SQLite's page cache (bounded at 64
	// MB by the store), later rounds must not keep growing.
	if last-firstRound > 16 {
		t.Errorf("RSS grew from %.1f MB after round 1 to %.1f MB after the last round", firstRound, last)
	}
}

// memChild is the measured process of TestMemory1M.
func memChild(t *testing.T, path string) {
	ctx := context.Background()
	n, _ := strconv.Atoi(os.Getenv("FUNNEL_MEM_CONTACTS"))
	began := time.Now()
	dueBase := benchT0.Add(time.Hour)
	clock := engine.NewVirtualClock(dueBase.Add(-time.Second))
	ch := &discardChannel{}
	var st *store.DB
	var timers, inbound int
	sample := func(phase string) {
		heap := liveHeap()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		rss, hwm, anon := memStatus()
		s := memSample{Phase: phase, RSSMB: mb(rss), PeakMB: mb(hwm), AnonMB: mb(anon), HeapMB: mb(int64(heap)), GoSysMB: mb(int64(m.Sys)),
			Timers: timers, Inbound: inbound, Sent: ch.n.Load(), ElapsedSec: time.Since(began).Seconds()}
		if st != nil {
			if stats, err := st.Stats(ctx); err == nil {
				s.LiveRuns, s.PendingTmr = stats.LiveRuns, stats.Timers
			}
		}
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				s.DBMB += mb(fi.Size())
			}
		}
		b, _ := json.Marshal(s)
		fmt.Printf("MEMSAMPLE %s\n", b)
	}
	sample("start")
	st, eng := benchEngine(t, path, "FULL", clock, engine.Options{Channel: ch, NoPacing: true})
	defer st.Close()
	sample("opened")
	// For 1M contacts: 20,000 timers and 5,000 replies per round.
	rounds := 10
	if s := os.Getenv("FUNNEL_MEM_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	timersPerRound, repliesPerRound := n/50, n/200
	// Replying contacts: distinct even i in [n/2, n) (the ad flow, from the half
	// whose timers never come due here), in a scrambled order without keeping a
	// set in memory: k -> (7919k + 13) mod m is a permutation of [0, m).
	m := n / 4
	k := 0
	drain := func(step func(context.Context) (int, error)) int {
		total := 0
		for {
			k, err := step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				return total
			}
			total += k
		}
	}
	for r := 1; r <= rounds; r++ {
		// Timers: the next 20,000 come due (reply timeouts and waits).
		clock.Set(dueBase.Add(time.Duration(r*timersPerRound-1) * time.Millisecond))
		timers += drain(eng.FireTimers)
		// Replies from contacts still waiting for one.
		items := make([]store.InboxItem, 0, repliesPerRound)
		for ; len(items) < repliesPerRound; k++ {
			i := n/2 + 2*((7919*k+13)%m)
			items = append(items, benchInboundItem(i, "Yes please", clock.Now()))
		}
		benchEnqueue(t, st, items)
		inbound += drain(eng.ProcessInbox)
		drain(eng.SendOutbox)
		sample(fmt.Sprintf("round %d", r))
	}
	if timers != rounds*timersPerRound || inbound != rounds*repliesPerRound {
		t.Fatalf("fired %d timers, processed %d replies", timers, inbound)
	}
}

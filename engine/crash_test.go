package engine_test

// Crash consistency: the engine runs in a child process (this test binary,
// re-executed with FUNNEL_CRASH_CHILD set) over a file database, with the real
// clock and one-second waits, and the parent kills it with SIGKILL at random
// moments, restarts it, and finally lets it drain and checks the database and
// what reached the channel.
//
// Design:
//
//   - The child is both the webhook receiver and the engine, as the daemon is:
//     it produces a deterministic stream of inbound messages (event i's contact,
//     text and ad referral are functions of the seed and i), stores each batch
//     with Engine.Enqueue and only then appends the batch's last index to
//     acks.log — the "200 OK" Meta would get. A restarted child resumes after
//     the last acknowledged batch and first delivers that batch again, as Meta
//     redelivers, so deduplication is exercised too. The parent never writes to
//     the database: the store is single-writer (a lock file), like production.
//   - The channel appends "outbox-id recipient" to sends.log (one write(2) on
//     an O_APPEND file, before returning) for every message handed to it, so
//     every send that happened survives the kill.
//   - Flows (two, one click-to-WhatsApp and one catch-all, with the same
//     shape): send, wait_for_reply 1s → [reply] send, end
//     | [timeout] send, wait 1s, send, end. A run that got a reply has step_seq 4
//     and outbox rows 1 and 3; one that timed out has step_seq 6 and rows 1, 3, 5.
//   - Kill points are uniform in [300ms, 2.5s] of each child's life, ≥ 5 kills
//     (FUNNEL_CRASH_KILLS, default 8), from a logged seed (FUNNEL_SEED or FUNNEL_CRASH_SEED to
//     replay). The last child stops producing, runs until nothing is left
//     (inbox, live runs, timers, outbox) and exits.
//
// Checks: every acknowledged event is stored; stored events are contiguous and
// each processed exactly once (processed_at set, a result, no error); each
// `started` event has exactly one run (its text is the run's entry) and each run
// exactly one starting event; each `resumed` event is the reply of exactly one
// run and each replied run has one; runs of one contact in one flow never
// overlap (no reentry); every run ended completed, with the step_seq and the
// outbox rows (key run/step_seq) its path implies; no timer is left and no run
// is live (overdue timers fired after restarts); each contact's last inbound
// time is its latest message's own time; every message reached the channel at
// most once, `sent` ones exactly once, `unknown` ones (interrupted sends) at
// most once and counted; the channel saw no message the database does not have.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

const (
	crashChatFlow = `flow: crash-chat
language: en_US
trigger:
  message:
steps:
  - id: hello
    send: {text: "Hi ${contact.name}! You wrote ${entry.text}."}
  - id: answer
    wait_for_reply: {timeout: 1s, on_timeout: nudge}
  - id: thanks
    send: {text: "Thanks for ${reply.text}."}
    next: lead
  - id: nudge
    send: {text: "Still there?"}
  - id: pause
    wait: 1s
  - id: bye
    send: {text: "Bye for now."}
  - id: lead
    convert: LeadSubmitted
  - id: done
    end: completed
`
	crashAdFlow = `flow: crash-ad
language: en_US
trigger:
  click_to_whatsapp:
    ads: ["ad-1"]
steps:
  - id: hello
    send: {text: "Hi ${contact.name}! You came from ${entry.headline}."}
  - id: answer
    wait_for_reply: {timeout: 1s, on_timeout: nudge}
  - id: thanks
    send: {text: "Great: ${reply.text}."}
    next: lead
  - id: nudge
    send: {text: "Your discount is waiting."}
  - id: pause
    wait: 1s
  - id: bye
    send: {text: "Last call."}
  - id: lead
    convert: {event: Purchase, value: 10, currency: EUR}
  - id: done
    end: completed
`
	crashContacts = 2000 // contacts the stream spreads over
	crashBatch    = 20   // events per Enqueue (one webhook delivery)
	crashEvery    = 20 * time.Millisecond
)

// crashEvent is event i of the stream for a seed.
func crashEvent(seed uint64, i int, at time.Time) store.InboxItem {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	c := r.IntN(crashContacts)
	wa := fmt.Sprintf("1666%07d", c)
	text := "m" + strconv.Itoa(i)
	m := map[string]any{"from": wa, "id": "wamid.crash." + strconv.Itoa(i), "timestamp": strconv.FormatInt(at.Unix(), 10),
		"type": "text", "text": map[string]string{"body": text}}
	if r.IntN(4) == 0 {
		m["referral"] = map[string]string{"source_type": "ad", "source_id": "ad-1", "headline": "Summer sale", "ctwa_clid": "clid-" + strconv.Itoa(i)}
	}
	raw, _ := json.Marshal(m)
	payload, _ := json.Marshal(engine.Inbound{PhoneNumberID: "crash", WaID: wa, Name: "C" + strconv.Itoa(c), Time: at, Message: raw})
	return store.InboxItem{Key: "message:wamid.crash." + strconv.Itoa(i), Kind: store.InboxMessage, Contact: wa, Payload: payload, ReceivedAt: at}
}

// appendLine writes one line with a single write(2) on an O_APPEND file: it is
// in the page cache when the call returns, so a SIGKILL cannot lose it.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(line + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// countingChannel logs every message it is handed, then accepts it after a
// short random latency (so kills land in the middle of sends too).
type countingChannel struct {
	mu  sync.Mutex
	log *os.File
}

func (c *countingChannel) Send(ctx context.Context, _ string, m *whatsapp.Message) (string, error) {
	id := engine.ParseCallbackData(m.BizOpaqueCallbackData)
	c.mu.Lock()
	_, err := c.log.Write([]byte(fmt.Sprintf("%d %s\n", id, m.To)))
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	return "wamid.crash.out." + strconv.FormatInt(id, 10), nil
}

// countingCAPI logs the event id of every Conversions API event it is handed
// (before answering, one write(2) each), then accepts it after a short random
// latency, like Meta: kills land in the middle of these calls too.
type countingCAPI struct{ path string }

func (c *countingCAPI) SendEvents(_ context.Context, _ string, events []json.RawMessage) error {
	for _, raw := range events {
		var ev struct {
			EventID  string `json:"event_id"`
			UserData struct {
				CtwaClid string `json:"ctwa_clid"`
			} `json:"user_data"`
		}
		json.Unmarshal(raw, &ev)
		if err := appendLine(c.path, ev.EventID+" "+ev.UserData.CtwaClid); err != nil {
			return err
		}
	}
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	return nil
}

// crashLife is what a child reports when it starts.
type crashLife struct {
	Resume        int   `json:"resume"`         // first event index it enqueues
	Overdue       int64 `json:"overdue_timers"` // timers already due when it started
	Sending       int64 `json:"sending"`        // messages a crash left in `sending`
	Inbox         int64 `json:"inbox_pending"`
	LiveRuns      int64 `json:"live_runs"`
	OldestOverdue int64 `json:"oldest_overdue_ms"`
}

func TestCrashConsistency(t *testing.T) {
	if dir := os.Getenv("FUNNEL_CRASH_CHILD"); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("-short: kills and restarts a child process for ~20s")
	}
	seed := uint64(time.Now().UnixNano())
	for _, env := range []string{"FUNNEL_CRASH_SEED", "FUNNEL_SEED"} {
		if v, err := strconv.ParseUint(os.Getenv(env), 10, 64); err == nil {
			seed = v
			break
		}
	}
	kills := 8
	if s := os.Getenv("FUNNEL_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	kills = max(kills, 5)
	t.Logf("seed %d (FUNNEL_SEED=%d to replay), %d kills", seed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	dsn := pgtest.DSN(t, filepath.Join(dir, "crash.db"))
	start := time.Now()

	run := func(life int, final bool, killAfter time.Duration) (out []byte, killed bool) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashConsistency$", "-test.v")
		cmd.Env = append(os.Environ(), "FUNNEL_CRASH_CHILD="+dir, "FUNNEL_CRASH_DB="+dsn, "FUNNEL_CRASH_SEED="+strconv.FormatUint(seed, 10))
		if final {
			cmd.Env = append(cmd.Env, "FUNNEL_CRASH_FINAL=1")
		}
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		limit := killAfter
		if final {
			limit = 45 * time.Second
		}
		select {
		case err := <-done:
			if err != nil || !final {
				t.Fatalf("life %d: child exited by itself (%v):\n%s", life, err, stdout.Bytes())
			}
			return stdout.Bytes(), false
		case <-time.After(limit):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			if final {
				t.Fatalf("final life did not drain in %s:\n%s", limit, stdout.Bytes())
			}
			return stdout.Bytes(), true
		}
	}
	for life := 0; life <= kills; life++ {
		final := life == kills
		killAfter := 300*time.Millisecond + time.Duration(rng.Int64N(int64(2200*time.Millisecond)))
		if store.IsPostgres(dsn) {
			// A child connects over TCP and checks the migrations first: on a
			// loaded host that alone can take longer than a SQLite life.
			killAfter += 2 * time.Second
		}
		out, _ := run(life, final, killAfter)
		var info crashLife
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "CRASHLIFE "); i >= 0 {
				json.Unmarshal([]byte(line[i+len("CRASHLIFE "):]), &info)
			}
		}
		what := fmt.Sprintf("killed after %s", killAfter.Round(time.Millisecond))
		if final {
			what = "drained and exited"
		}
		t.Logf("life %d: %s; at start: resume at event %d, %d inbox pending, %d live runs, %d timers overdue (oldest %dms), %d sends interrupted",
			life, what, info.Resume, info.Inbox, info.LiveRuns, info.Overdue, info.OldestOverdue, info.Sending)
	}
	t.Logf("%d kills and restarts in %s", kills, time.Since(start).Round(time.Millisecond))
	crashVerify(t, dir, dsn, seed)
}

// crashChild is one life of the engine: recover, receive, process, send.
func crashChild(t *testing.T, dir string) {
	seed, _ := strconv.ParseUint(os.Getenv("FUNNEL_CRASH_SEED"), 10, 64)
	final := os.Getenv("FUNNEL_CRASH_FINAL") != ""
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := os.Getenv("FUNNEL_CRASH_DB")
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logf, err := os.OpenFile(filepath.Join(dir, "sends.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	eng := engine.New(st, engine.Options{Channel: &countingChannel{log: logf}, Logger: quietLogger(), PhoneNumberID: "crash",
		Rate: 1000, PairInterval: 50 * time.Millisecond,
		DatasetID: "1", WABAID: "1", Conversions: &countingCAPI{path: filepath.Join(dir, "capi.log")}})
	if err := eng.Load(ctx, benchProject(t, crashChatFlow, crashAdFlow), nil); err != nil {
		t.Fatal(err)
	}

	// Resume after the last acknowledged batch, delivering it again.
	resume := 0
	if data, err := os.ReadFile(filepath.Join(dir, "acks.log")); err == nil {
		lines := strings.Fields(string(data))
		if len(lines) > 0 {
			last, _ := strconv.Atoi(lines[len(lines)-1])
			resume = max(0, last+1-crashBatch)
		}
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := crashLife{Resume: resume, Sending: stats.OutboxSending, Inbox: stats.InboxPending, LiveRuns: stats.LiveRuns}
	now := time.Now()
	if db, err := crashOpenRaw(dsn); err == nil {
		var oldest sql.NullInt64
		db.QueryRow("SELECT COUNT(*), MIN(due_at) FROM timers WHERE due_at <= "+strconv.FormatInt(now.UnixMilli(), 10)).Scan(&info.Overdue, &oldest)
		if oldest.Valid {
			info.OldestOverdue = now.UnixMilli() - oldest.Int64
		}
		db.Close()
	}
	b, _ := json.Marshal(info)
	fmt.Printf("CRASHLIFE %s\n", b)

	runDone := make(chan error, 1)
	go func() { runDone <- eng.Run(ctx) }()

	if !final {
		// The webhook receiver: a batch every 20ms until killed.
		for i := resume; ; i += crashBatch {
			at := time.Now().UTC()
			items := make([]store.InboxItem, crashBatch)
			for j := range items {
				items[j] = crashEvent(seed, i+j, at)
			}
			if _, err := eng.Enqueue(ctx, items); err != nil {
				t.Fatal(err)
			}
			if err := appendLine(filepath.Join(dir, "acks.log"), strconv.Itoa(i+crashBatch-1)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(crashEvery)
		}
	}
	// The last life: nothing new arrives; run until everything is settled.
	for {
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		open, err := st.CAPIEvents(ctx, store.CAPIQueued, 1)
		if err != nil {
			t.Fatal(err)
		}
		sending, err := st.CAPIEvents(ctx, store.CAPISending, 1)
		if err != nil {
			t.Fatal(err)
		}
		if s.InboxPending == 0 && s.LiveRuns == 0 && s.Timers == 0 && s.OutboxPending == 0 && s.OutboxSending == 0 &&
			len(open) == 0 && len(sending) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

// crashVerify checks the database and the channel's log after the last life.
func crashVerify(t *testing.T, dir, dsn string, seed uint64) {
	db, err := crashOpenRaw(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}

	// Acknowledged events are stored; stored events are contiguous.
	acked := -1
	if data, err := os.ReadFile(filepath.Join(dir, "acks.log")); err == nil {
		for _, l := range strings.Fields(string(data)) {
			n, _ := strconv.Atoi(l)
			acked = max(acked, n)
		}
	}
	type inEvent struct {
		id        int64
		i         int
		contact   string
		result    string
		processed bool
		at        time.Time
	}
	var events []inEvent
	rows, err := db.Query("SELECT id, key, contact, payload, processed_at IS NOT NULL, result FROM inbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e inEvent
		var key string
		var payload []byte
		if err := rows.Scan(&e.id, &key, &e.contact, &payload, &e.processed, &e.result); err != nil {
			t.Fatal(err)
		}
		e.i, _ = strconv.Atoi(strings.TrimPrefix(key, "message:wamid.crash."))
		var in engine.Inbound
		json.Unmarshal(payload, &in)
		e.at = in.Time
		events = append(events, e)
	}
	rows.Close()
	byIndex := map[int]*inEvent{}
	results := map[string]int{}
	maxIndex := -1
	for k := range events {
		e := &events[k]
		byIndex[e.i] = e
		maxIndex = max(maxIndex, e.i)
		results[e.result]++
		if !e.processed {
			fail("event %d (inbox %d) never processed", e.i, e.id)
		}
		switch e.result {
		case engine.ResultStarted, engine.ResultResumed, engine.ResultNoMatch:
		default:
			fail("event %d: result %q", e.i, e.result)
		}
	}
	if maxIndex < acked {
		fail("acknowledged events up to %d, stored only up to %d", acked, maxIndex)
	}
	if len(byIndex) != maxIndex+1 {
		fail("stored events are not contiguous: %d distinct indices up to %d", len(byIndex), maxIndex)
	}
	if len(events) < 200 {
		fail("only %d events stored: the stream did not run", len(events))
	}

	// Runs.
	type runRec struct {
		id             int64
		contact, flow  string
		status, reason string
		stepSeq        int64
		entry, reply   string
		started, ended int64
		live           bool
	}
	var runs []*runRec
	rows, err = db.Query("SELECT id, contact, flow_id, status, end_reason, step_seq, entry, reply, started_at, ended_at FROM runs ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		r := &runRec{}
		var entry, reply []byte
		var ended sql.NullInt64
		if err := rows.Scan(&r.id, &r.contact, &r.flow, &r.status, &r.reason, &r.stepSeq, &entry, &reply, &r.started, &ended); err != nil {
			t.Fatal(err)
		}
		var e struct{ Text string }
		json.Unmarshal(entry, &e)
		r.entry = e.Text
		var rp struct{ Text string }
		json.Unmarshal(reply, &rp)
		r.reply = rp.Text
		r.ended, r.live = ended.Int64, !ended.Valid
		runs = append(runs, r)
	}
	rows.Close()
	startedBy := map[int][]*runRec{}
	repliedBy := map[int][]*runRec{}
	for _, r := range runs {
		i, err := strconv.Atoi(strings.TrimPrefix(r.entry, "m"))
		if err != nil || byIndex[i] == nil {
			fail("run %d: entry text %q is no stored event", r.id, r.entry)
			continue
		}
		startedBy[i] = append(startedBy[i], r)
		if ev := byIndex[i]; ev.contact != r.contact || ev.result != engine.ResultStarted {
			fail("run %d started by event %d (contact %s, result %s), run contact %s", r.id, i, ev.contact, ev.result, r.contact)
		}
		if r.live {
			fail("run %d still live (%s)", r.id, r.status)
		}
		if r.status != store.RunCompleted || r.reason != "completed" {
			fail("run %d ended %s (%s)", r.id, r.status, r.reason)
		}
		want := int64(7) // timed out: hello 1, answer 2, nudge 3, pause 4, bye 5, lead 6, done 7
		if r.reply != "" {
			want = 5 // replied: hello 1, answer 2, thanks 3, lead 4, done 5
			j, err := strconv.Atoi(strings.TrimPrefix(r.reply, "m"))
			if err != nil || byIndex[j] == nil || byIndex[j].contact != r.contact || byIndex[j].result != engine.ResultResumed {
				fail("run %d: reply %q is no `resumed` event of its contact", r.id, r.reply)
			} else {
				repliedBy[j] = append(repliedBy[j], r)
			}
		}
		if r.stepSeq != want {
			fail("run %d: step_seq %d, want %d (reply %q)", r.id, r.stepSeq, want, r.reply)
		}
	}
	for _, e := range events {
		switch e.result {
		case engine.ResultStarted:
			if n := len(startedBy[e.i]); n != 1 {
				fail("event %d started %d runs, want 1", e.i, n)
			}
		case engine.ResultResumed:
			if n := len(repliedBy[e.i]); n != 1 {
				fail("event %d resumed %d runs, want 1", e.i, n)
			}
		}
	}
	// No two runs of a contact in a flow at once (no reentry).
	last := map[string]*runRec{}
	for _, r := range runs {
		k := r.contact + "/" + r.flow
		if p := last[k]; p != nil && (p.live || r.started < p.ended) {
			fail("runs %d and %d of %s overlap", p.id, r.id, k)
		}
		last[k] = r
	}

	// Contacts: the window runs from the latest message's own time.
	latest := map[string]time.Time{}
	for _, e := range events {
		if e.at.After(latest[e.contact]) {
			latest[e.contact] = e.at
		}
	}
	rows, err = db.Query("SELECT wa_id, last_inbound_at FROM contacts")
	if err != nil {
		t.Fatal(err)
	}
	contacts := 0
	for rows.Next() {
		var wa string
		var at int64
		rows.Scan(&wa, &at)
		contacts++
		if want := latest[wa].UnixMilli(); at != want {
			fail("contact %s: last_inbound_at %d, want %d", wa, at, want)
		}
	}
	rows.Close()
	if contacts != len(latest) {
		fail("%d contacts stored, %d wrote", contacts, len(latest))
	}

	// Outbox: every row belongs to a step of its run's path; sent or unknown.
	runByID := map[int64]*runRec{}
	for _, r := range runs {
		runByID[r.id] = r
	}
	type outRec struct {
		contact, status string
	}
	outbox := map[int64]outRec{}
	seqs := map[int64][]int64{}
	statuses := map[string]int{}
	rows, err = db.Query("SELECT id, key, run_id, contact, status FROM outbox")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, runID int64
		var key, contact, status string
		rows.Scan(&id, &key, &runID, &contact, &status)
		outbox[id] = outRec{contact, status}
		statuses[status]++
		r := runByID[runID]
		parts := strings.Split(key, "/")
		seq, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
		if r == nil || key != fmt.Sprintf("%d/%d", runID, seq) || r.contact != contact {
			fail("outbox %d (key %s) does not belong to run %d", id, key, runID)
			continue
		}
		seqs[runID] = append(seqs[runID], seq)
		if status != store.OutSent && status != store.OutUnknown {
			fail("outbox %d: status %s", id, status)
		}
	}
	rows.Close()
	for _, r := range runs {
		s := seqs[r.id]
		sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
		want := "[1 3 5]"
		if r.stepSeq == 5 {
			want = "[1 3]"
		}
		if got := fmt.Sprint(s); got != want {
			fail("run %d (step_seq %d): outbox steps %s, want %s", r.id, r.stepSeq, got, want)
		}
	}

	// Timers: none left (each fired, overdue ones after a restart).
	var timers int64
	db.QueryRow("SELECT COUNT(*) FROM timers").Scan(&timers)
	if timers != 0 {
		fail("%d timers left", timers)
	}

	// The channel: at most once per message; sent ones exactly once.
	sent := map[int64]int{}
	f, err := os.Open(filepath.Join(dir, "sends.log"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			fail("sends.log: bad line %q", sc.Text())
			continue
		}
		id, _ := strconv.ParseInt(fields[0], 10, 64)
		sent[id]++
		o, ok := outbox[id]
		if !ok {
			fail("the channel got outbox %d, which the database does not have (a send from a rolled-back step)", id)
		} else if o.contact != fields[1] {
			fail("outbox %d went to %s, its contact is %s", id, fields[1], o.contact)
		}
	}
	f.Close()
	unknownSent, unknownNotSent, dups := 0, 0, 0
	for id, o := range outbox {
		n := sent[id]
		switch {
		case n > 1:
			dups++
			fail("outbox %d (%s) reached the channel %d times", id, o.status, n)
		case o.status == store.OutSent && n != 1:
			fail("outbox %d is sent but reached the channel %d times", id, n)
		case o.status == store.OutUnknown && n == 1:
			unknownSent++
		case o.status == store.OutUnknown:
			unknownNotSent++
		}
	}
	t.Logf("seed %d: %d events (acknowledged up to %d): %v; %d runs, %d contacts; %d messages %v: %d unknown (%d had reached the channel, %d had not), %d duplicates",
		seed, len(events), acked, results, len(runs), contacts, len(outbox), statuses, unknownSent+unknownNotSent, unknownSent, unknownNotSent, dups)
	crashVerifyConversions(t, db, dir, len(runs), fail)
}

// crashVerifyConversions checks the conversions: one per run (every run ends
// through its convert step), none lost; each with a click id has exactly one
// Conversions API event, sent, with its own event id; every event id the API
// saw is one of those, and each of them reached it (more than once only when a
// kill interrupted the call: Meta deduplicates by event id).
func crashVerifyConversions(t *testing.T, db *sql.DB, dir string, runs int, fail func(string, ...any)) {
	var convs, runsConverted int
	db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT run_id) FROM conversions").Scan(&convs, &runsConverted)
	if convs != runs || runsConverted != runs {
		fail("%d conversions of %d runs, want one per run (%d runs)", convs, runsConverted, runs)
	}
	var orphans int
	db.QueryRow("SELECT COUNT(*) FROM conversions c LEFT JOIN runs r ON r.id = c.run_id WHERE r.id IS NULL OR r.contact != c.contact OR c.step != 'lead'").Scan(&orphans)
	if orphans != 0 {
		fail("%d conversions without their run, or of another contact or step", orphans)
	}
	rows, err := db.Query(`SELECT c.id, c.ctwa_clid, COALESCE(e.event_id, ''), COALESCE(e.status, '') FROM conversions c
		LEFT JOIN capi_events e ON e.conversion_id = c.id ORDER BY c.id`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // event id → click id
	withClick := 0
	for rows.Next() {
		var id int64
		var clid, eventID, status string
		rows.Scan(&id, &clid, &eventID, &status)
		switch {
		case clid == "" && eventID != "":
			fail("conversion %d has no click id but a Conversions API event", id)
		case clid == "":
		case eventID == "" || status != store.CAPISent:
			fail("conversion %d (click %s): Conversions API event %q is %q, want sent", id, clid, eventID, status)
		default:
			withClick++
			if _, dup := want[eventID]; dup {
				fail("event id %s is used by two conversions", eventID)
			}
			want[eventID] = clid
		}
	}
	rows.Close()
	var events int
	db.QueryRow("SELECT COUNT(*) FROM capi_events").Scan(&events)
	if events != withClick {
		fail("%d Conversions API events for %d conversions with a click id", events, withClick)
	}
	seen := map[string]int{}
	data, _ := os.ReadFile(filepath.Join(dir, "capi.log"))
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			fail("capi.log: bad line %q", line)
			continue
		}
		seen[f[0]]++
		if clid, ok := want[f[0]]; !ok {
			fail("the Conversions API got event %s, which no conversion has", f[0])
		} else if clid != f[1] {
			fail("event %s went with click %s, its conversion's is %s", f[0], f[1], clid)
		}
	}
	resent := 0
	for id := range want {
		switch n := seen[id]; {
		case n == 0:
			fail("event %s is sent but never reached the Conversions API", id)
		case n > 1:
			resent++
		}
	}
	t.Logf("%d conversions; %d with a click id, each sent with its own event id (%d sent again after a kill, deduplicated by Meta)", convs, withClick, resent)
}

// crashOpenRaw opens the test's database read-only with database/sql, beside
// the store: a SQLite file, or a PostgreSQL database (FUNNEL_TEST_DB=postgres).
func crashOpenRaw(dsn string) (*sql.DB, error) {
	if store.IsPostgres(dsn) {
		return sql.Open("pgx", dsn)
	}
	return sql.Open("sqlite3", "file:"+url.PathEscape(dsn)+"?mode=ro")
}

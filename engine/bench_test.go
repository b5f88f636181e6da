package engine_test

// Throughput benchmarks of the engine's loops, each beside a raw-SQLite baseline
// that writes the same rows with the same durability (same pragmas, same
// transaction size) in the same run. The ratio (x_raw) is what to compare across
// machines; the absolute rates depend on the disk and the noise of the host.
//
//	go test -run '^$' -bench 'Inbound|Timers' -benchtime 20000x -count 5 ./engine/
//
// See docs/BENCHMARKS.md for what each one measures and recorded figures.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"
)

// benchT0 is the virtual time the benchmarks run at.
var benchT0 = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)

// benchBatch is the engine's default batch size (Options.BatchSize); the raw
// baselines commit the same number of events per transaction.
const benchBatch = 500

// The flows of the benchmarks. bench-ad and bench-chat are what a new contact
// meets (a send, then a wait_for_reply with a timeout: a contact, a run, an outbox
// row and a timer per event); bench-drip (wait → send → end) and bench-chain
// (wait → wait) are what timers wake.
const (
	benchAdFlow = `flow: bench-ad
language: en_US
trigger:
  click_to_whatsapp:
    ads: ["ad-1", "ad-2"]
steps:
  - id: hello
    send:
      text: "Hi ${contact.name}! You came from “${entry.headline}”. Want 20% off your first order?"
      buttons: ["Yes please", "Not now"]
  - id: answer
    wait_for_reply: {timeout: 4h, on_timeout: nudge}
  - id: thanks
    send: {text: "Great! Your code is SUMMER20."}
    next: done
  - id: nudge
    send: {text: "Still there, ${contact.name}? Your 20% is waiting."}
  - id: done
    end: completed
`
	benchChatFlow = `flow: bench-chat
language: en_US
trigger:
  message:
steps:
  - id: hello
    send: {text: "Hi ${contact.name}! Thanks for writing. Reply MENU to see what we can do."}
  - id: answer
    wait_for_reply: {timeout: 1h, on_timeout: bye}
  - id: ack
    send: {text: "Got it: ${reply.text}"}
  - id: bye
    end: completed
`
	benchDripFlow = `flow: bench-drip
language: en_US
trigger:
  message: {keywords: [drip]}
steps:
  - id: first
    wait: 1h
  - id: remind
    send: {text: "Hi ${contact.name}, your cart is still waiting for you."}
  - id: done
    end: completed
`
	benchChainFlow = `flow: bench-chain
language: en_US
trigger:
  message: {keywords: [chain]}
steps:
  - id: first
    wait: 1h
  - id: second
    wait: 2h
  - id: done
    end: completed
`
)

// benchProject parses and checks flows; any error fails.
func benchProject(tb testing.TB, sources ...string) *dsl.Project {
	tb.Helper()
	var flows []*dsl.Flow
	for i, src := range sources {
		f, diags := dsl.ParseFlow(fmt.Sprintf("flow%d.yaml", i), []byte(src))
		if f == nil || dsl.Diagnostics(diags).HasErrors() {
			tb.Fatalf("flow %d: %v", i, diags)
		}
		flows = append(flows, f)
	}
	p, diags := dsl.NewProject(flows, nil)
	diags = append(diags, dsl.Check(p, dsl.Options{})...)
	if diags.HasErrors() {
		tb.Fatalf("project: %v", diags)
	}
	return p
}

func benchAllFlows(tb testing.TB) *dsl.Project {
	return benchProject(tb, benchAdFlow, benchChatFlow, benchDripFlow, benchChainFlow)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchEngine opens the store at path and loads the benchmark flows.
func benchEngine(tb testing.TB, path, sync string, clock engine.Clock, opts engine.Options) (*store.DB, *engine.Engine) {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path, store.Options{Synchronous: sync})
	if err != nil {
		tb.Fatal(err)
	}
	opts.Clock, opts.Logger, opts.PhoneNumberID = clock, quietLogger(), "bench"
	eng := engine.New(st, opts)
	if err := eng.Load(ctx, benchAllFlows(tb), nil); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	return st, eng
}

// rawDSN opens a database with exactly the writer settings of store.Open: WAL,
// BEGIN IMMEDIATE, the same synchronous mode and page cache.
func rawDSN(path, sync string) string {
	return "file:" + url.PathEscape(path) + "?_busy_timeout=10000&_foreign_keys=on&_journal_mode=WAL" +
		"&_txlock=immediate&_synchronous=" + sync + "&_cache_size=-65536"
}

func rawOpen(tb testing.TB, path, sync string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", rawDSN(path, sync))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := db.Ping(); err != nil {
		tb.Fatal(err)
	}
	return db
}

// benchWaID is contact i's WhatsApp id.
func benchWaID(i int) string { return fmt.Sprintf("1555%07d", i) }

// benchInboundItem is the stored form of the first message of contact i: one in
// five comes from a click-to-WhatsApp ad.
func benchInboundItem(i int, text string, at time.Time) store.InboxItem {
	wa := benchWaID(i)
	m := map[string]any{"from": wa, "id": "wamid.bench." + strconv.Itoa(i) + "." + text,
		"timestamp": strconv.FormatInt(at.Unix(), 10), "type": "text", "text": map[string]string{"body": text}}
	if i%5 == 0 {
		m["referral"] = map[string]string{"source_type": "ad", "source_id": "ad-" + strconv.Itoa(1+i%2),
			"source_url": "https://fb.me/summer", "headline": "Summer sandals -20%", "body": "Tap to chat with us",
			"media_type": "image", "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM"}
	}
	raw, _ := json.Marshal(m)
	payload, _ := json.Marshal(engine.Inbound{PhoneNumberID: "bench", WaID: wa, Name: "Ana " + strconv.Itoa(i), Time: at, Message: raw})
	return store.InboxItem{Key: "message:" + m["id"].(string), Kind: store.InboxMessage, Contact: wa, Payload: payload, ReceivedAt: at}
}

func benchEnqueue(tb testing.TB, st store.Store, items []store.InboxItem) {
	tb.Helper()
	for start := 0; start < len(items); start += 1000 {
		if _, err := st.Enqueue(context.Background(), items[start:min(start+1000, len(items))]); err != nil {
			tb.Fatal(err)
		}
	}
}

func benchSyncModes() []string {
	if s := os.Getenv("FUNNEL_BENCH_SYNC"); s != "" {
		return []string{s}
	}
	return []string{"FULL", "NORMAL"}
}

// ---- a. inbound events ----

// BenchmarkInbound measures engine.ProcessInbox draining b.N pre-enqueued first
// messages of b.N new contacts (one in five from an ad): each event upserts a
// contact, inserts a run, an outbox row and a reply-timeout timer, and marks the
// inbox row processed. The baseline does the same five row writes per event with
// prepared statements, benchBatch events per transaction, after selecting the
// same pending inbox rows.
func BenchmarkInbound(b *testing.B) {
	for _, sync := range benchSyncModes() {
		b.Run("sync="+sync, func(b *testing.B) { benchInbound(b, sync) })
	}
}

func benchInbound(b *testing.B, sync string) {
	ctx := context.Background()
	n := b.N
	items := make([]store.InboxItem, n)
	for i := range items {
		items[i] = benchInboundItem(i, "hello", benchT0.Add(-time.Minute))
	}
	dir := b.TempDir()
	rawPath := filepath.Join(dir, "raw.db")
	st, _ := benchEngine(b, rawPath, sync, engine.NewVirtualClock(benchT0), engine.Options{})
	benchEnqueue(b, st, items)
	st.Close()
	raw := newRawInbound(b, rawPath, sync)
	defer raw.close()

	st, eng := benchEngine(b, filepath.Join(dir, "engine.db"), sync, engine.NewVirtualClock(benchT0), engine.Options{BatchSize: benchBatch})
	defer st.Close()
	benchEnqueue(b, st, items)

	engP, rawP := benchInterleave(b, n, func(max int) int {
		done := 0
		for done < max {
			k, err := eng.ProcessInbox(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
			done += k
		}
		return done
	}, raw.step)
	stats, err := st.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if stats.LiveRuns != int64(n) || stats.Timers != int64(n) || stats.OutboxPending != int64(n) || stats.Contacts != int64(n) || stats.InboxPending != 0 {
		b.Fatalf("engine wrote %+v, want %d of each", stats, n)
	}
	benchReport(b, "events/s", n, engP, rawP)
}

// benchPhase is the wall-clock and CPU time (user + system, all threads) spent.
type benchPhase struct{ wall, cpu time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRound is how many events (or timers) one side handles before the other
// takes its turn: 10 transactions.
const benchRound = 10 * benchBatch

// benchInterleave runs the engine and the baseline over n items each, taking
// turns every benchRound items (the side that goes first alternates), so both
// see the same background load on a noisy host. Only the engine's turns run
// under the benchmark timer. Each func handles up to max items and returns how
// many it did (0 when there is nothing left).
func benchInterleave(b *testing.B, n int, eng, raw func(max int) int) (engP, rawP benchPhase) {
	b.StopTimer()
	b.ResetTimer()
	run := func(p *benchPhase, f func(int) int, timed bool) int {
		runtime.GC()
		if timed {
			b.StartTimer()
		}
		w, c := time.Now(), cpuTime()
		k := f(benchRound)
		p.wall += time.Since(w)
		p.cpu += cpuTime() - c
		if timed {
			b.StopTimer()
		}
		return k
	}
	var ne, nr int
	for round := 0; ne < n || nr < n; round++ {
		if round%2 == 0 {
			nr += run(&rawP, raw, false)
			ne += run(&engP, eng, true)
		} else {
			ne += run(&engP, eng, true)
			nr += run(&rawP, raw, false)
		}
		if round > 2*n/benchRound+4 {
			b.Fatalf("no progress: engine %d, baseline %d of %d", ne, nr, n)
		}
	}
	if ne != n || nr != n {
		b.Fatalf("engine handled %d, baseline %d, want %d", ne, nr, n)
	}
	return engP, rawP
}

// benchReport reports the engine's rate, the baseline's, and their ratio by wall
// clock (x_raw) and by CPU time (x_raw_cpu: steadier when other processes
// compete for the cores), and the CPU time per item of each (cpu_us/op,
// raw_cpu_us/op; all threads, so the garbage collector counts).
func benchReport(b *testing.B, unit string, n int, eng, raw benchPhase) {
	e, r := float64(n)/eng.wall.Seconds(), float64(n)/raw.wall.Seconds()
	b.ReportMetric(e, unit)
	b.ReportMetric(r, "raw_"+unit)
	b.ReportMetric(e/r, "x_raw")
	b.ReportMetric(raw.cpu.Seconds()/eng.cpu.Seconds(), "x_raw_cpu")
	b.ReportMetric(float64(eng.cpu.Microseconds())/float64(n), "cpu_us/op")
	b.ReportMetric(float64(raw.cpu.Microseconds())/float64(n), "raw_cpu_us/op")
}

// Representative column values, encoded once (not per row: the baseline does no
// JSON work) so the baseline writes rows of the engine's sizes.
var benchRawValues = func() (v struct{ entryAd, entryText, outboxAd, outboxChat, reminder []byte }) {
	e := dsl.EntryEnv{SourceID: "ad-1", SourceURL: "https://fb.me/summer", SourceType: "ad", Headline: "Summer sandals -20%",
		Body: "Tap to chat with us", MediaType: "image", CtwaClid: "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM", Text: "hello"}
	v.entryAd, _ = json.Marshal(e)
	v.entryText, _ = json.Marshal(dsl.EntryEnv{Text: "hello"})
	m := whatsapp.NewButtons(benchWaID(0), "Hi Ana 0! You came from “Summer sandals -20%”. Want 20% off your first order?",
		whatsapp.ButtonReply{ID: "yes-please", Title: "Yes please"}, whatsapp.ButtonReply{ID: "not-now", Title: "Not now"})
	m.BizOpaqueCallbackData = engine.CallbackData(1)
	v.outboxAd, _ = json.Marshal(m)
	t := whatsapp.NewText(benchWaID(0), "Hi Ana 0! Thanks for writing. Reply MENU to see what we can do.")
	t.BizOpaqueCallbackData = engine.CallbackData(1)
	v.outboxChat, _ = json.Marshal(t)
	t = whatsapp.NewText(benchWaID(0), "Hi Ana 0, your cart is still waiting for you.")
	t.BizOpaqueCallbackData = engine.CallbackData(1)
	v.reminder, _ = json.Marshal(t)
	return v
}()

// The raw baselines write the same rows with the statements the store uses:
// multi-row INSERTs of up to 256 rows (then powers of two), IN (…) lists for
// updates and deletes, prepared once and reused by every transaction. What is
// left between the two is funnel's own work (flow logic, JSON, the store's Go
// side), not a weaker baseline.
const (
	rawContactUpsert = `INSERT INTO contacts (wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at, consent_source, created_at, updated_at)`
	rawContactCols   = 12
	rawContactOnConf = `ON CONFLICT (wa_id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone,
		attributes = excluded.attributes, tags = excluded.tags, phone_number_id = excluded.phone_number_id,
		last_inbound_at = excluded.last_inbound_at, consent = excluded.consent, consent_at = excluded.consent_at,
		consent_source = excluded.consent_source, updated_at = excluded.updated_at`
	rawRunInsert = `INSERT INTO runs (id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq, started_at, updated_at, ended_at, end_reason)`
	rawRunCols   = 16
	rawRunOnConf = `ON CONFLICT (id) DO UPDATE SET step = excluded.step, status = excluded.status, vars = excluded.vars,
		entry = excluded.entry, reply = excluded.reply, event = excluded.event, wait_seq = excluded.wait_seq,
		step_seq = excluded.step_seq, updated_at = excluded.updated_at, ended_at = excluded.ended_at,
		end_reason = excluded.end_reason WHERE runs.ended_at IS NULL`
	rawOutboxInsert = `INSERT INTO outbox (id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload, fallback, fallback_category,
		status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at)`
	rawOutboxCols   = 23
	rawOutboxOnConf = `ON CONFLICT (key) DO NOTHING`
	rawTimerInsert  = `INSERT INTO timers (id, due_at, run_id, kind, seq)`
	rawTimerCols    = 5
)

// rawStmts prepares each statement text once on the database and hands it to a
// transaction with tx.Stmt, as the store's statement cache does.
type rawStmts struct {
	tb      testing.TB
	db      *sql.DB
	pg      bool // PostgreSQL: $n placeholders, statements prepared and cached by pgx
	cache   map[string]*sql.Stmt
	pending map[string]*sql.Stmt // prepared in the current transaction, cached by commit
}

func newRawStmts(tb testing.TB, db *sql.DB) *rawStmts {
	return &rawStmts{tb: tb, db: db, cache: map[string]*sql.Stmt{}, pending: map[string]*sql.Stmt{}}
}

// stmt is q for tx: the cached statement, else one prepared in tx (the only
// connection is the transaction's) and cached once tx commits.
func (r *rawStmts) stmt(tx *sql.Tx, q string) *sql.Stmt {
	if st := r.cache[q]; st != nil {
		return tx.Stmt(st)
	}
	if st := r.pending[q]; st != nil {
		return st
	}
	st, err := tx.Prepare(q)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.pending[q] = st
	return st
}

// commit commits tx and caches the statements it prepared.
func (r *rawStmts) commit(tx *sql.Tx) {
	if err := tx.Commit(); err != nil {
		r.tb.Fatal(err)
	}
	for q := range r.pending {
		st, err := r.db.Prepare(q)
		if err != nil {
			r.tb.Fatal(err)
		}
		r.cache[q] = st
	}
	clear(r.pending)
}

func (r *rawStmts) exec(tx *sql.Tx, q string, args ...any) {
	if r.pg {
		if _, err := tx.Exec(sqlx.Rebind(sqlx.DOLLAR, q), args...); err != nil {
			r.tb.Fatalf("%.60s…: %v", q, err)
		}
		return
	}
	if _, err := r.stmt(tx, q).Exec(args...); err != nil {
		r.tb.Fatalf("%.60s…: %v", q, err)
	}
}

func (r *rawStmts) close() {
	for _, st := range r.cache {
		st.Close()
	}
}

// rawChunk is the row count of the next statement for n remaining rows: 256,
// then powers of two (the store's chunking).
func rawChunk(n int) int {
	if n >= 256 {
		return 256
	}
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// bulk inserts rows (cols values each) with multi-row statements.
func (r *rawStmts) bulk(tx *sql.Tx, prefix string, cols int, suffix string, rows [][]any) {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for start := 0; start < len(rows); {
		end := start + rawChunk(len(rows)-start)
		args := make([]any, 0, (end-start)*cols)
		for _, row := range rows[start:end] {
			args = append(args, row...)
		}
		r.exec(tx, prefix+" VALUES "+strings.TrimSuffix(strings.Repeat(one+",", end-start), ",")+" "+suffix, args...)
		start = end
	}
}

// in runs "prefix IN (…)" over ids, in chunks, with args before the ids.
func (r *rawStmts) in(tx *sql.Tx, prefix string, args []any, ids []int64) {
	for start := 0; start < len(ids); {
		end := start + rawChunk(len(ids)-start)
		a := append([]any(nil), args...)
		for _, id := range ids[start:end] {
			a = append(a, id)
		}
		r.exec(tx, prefix+" IN ("+strings.TrimSuffix(strings.Repeat("?,", end-start), ",")+")", a...)
		start = end
	}
}

// rawInbound is the baseline of BenchmarkInbound: select a batch of pending inbox
// rows, then the same row writes the engine makes for them (a contact, a run, an
// outbox row and a timer per event, the events marked processed), with the
// store's multi-row statements, one transaction per batch.
type rawInbound struct {
	b        *testing.B
	db       *sql.DB
	pg       bool // PostgreSQL: ids from the sequences, a list as one array
	stmts    *rawStmts
	versions map[string]int64
	runID    int64
}

func newRawInbound(b *testing.B, path, sync string) *rawInbound {
	r := &rawInbound{b: b, db: rawOpen(b, path, sync), versions: rawVersions(b, path)}
	r.stmts = newRawStmts(b, r.db)
	r.db.QueryRow("SELECT COALESCE(MAX(id), 0) FROM runs").Scan(&r.runID)
	return r
}

func (r *rawInbound) close() {
	r.stmts.close()
	r.db.Close()
}

// rawVersions maps flow ids to their version ids.
func rawVersions(tb testing.TB, path string) map[string]int64 {
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(path)+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	versions := map[string]int64{}
	rows, err := db.Query("SELECT flow_id, id FROM flow_versions")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		var id int64
		if err := rows.Scan(&f, &id); err != nil {
			tb.Fatal(err)
		}
		versions[f] = id
	}
	return versions
}

// step processes up to max events, benchBatch per transaction.
func (r *rawInbound) step(max int) int {
	b := r.b
	now := benchT0.UnixMilli()
	v := benchRawValues
	done := 0
	for done < max {
		tx, err := r.db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		type ev struct {
			id      int64
			contact string
			payload []byte
		}
		var evs []ev
		rows, err := tx.Query(r.rebind("SELECT id, key, kind, contact, payload, received_at, processed_at, result FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT ?"), benchBatch)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var e ev
			var key, kind, result string
			var received int64
			var processed sql.NullInt64
			if err := rows.Scan(&e.id, &key, &kind, &e.contact, &e.payload, &received, &processed, &result); err != nil {
				b.Fatal(err)
			}
			evs = append(evs, e)
		}
		rows.Close()
		if len(evs) == 0 {
			tx.Rollback()
			break
		}
		var contacts, runs, outbox, timers [][]any
		var ids []int64
		runIDs := r.newIDs(tx, len(evs))
		for k, e := range evs {
			runID := runIDs[k]
			i, _ := strconv.Atoi(e.contact[4:])
			flow, entry, payload, due := "bench-chat", v.entryText, v.outboxChat, now+time.Hour.Milliseconds()
			if i%5 == 0 {
				flow, entry, payload, due = "bench-ad", v.entryAd, v.outboxAd, now+4*time.Hour.Milliseconds()
			}
			contacts = append(contacts, []any{e.contact, "Ana " + strconv.Itoa(i), "", []byte("{}"), []byte("[]"), "bench", now - 60_000, "", nil, "", now, now})
			runs = append(runs, []any{runID, e.contact, flow, r.versions[flow], "answer", store.RunWaitingReply, []byte("{}"), entry, []byte("{}"), []byte("{}"), 1, 2, now, now, nil, ""})
			outbox = append(outbox, []any{runID, strconv.FormatInt(runID, 10) + "/1", runID, flow, "hello", e.contact, "bench", store.KindFreeForm, "", false,
				payload, nil, "", store.OutPending, "", 0, now, 0, "", "", now, nil, now})
			timers = append(timers, []any{runID, due, runID, store.TimerReplyTimeout, 1})
			ids = append(ids, e.id)
		}
		r.stmts.bulk(tx, rawContactUpsert, rawContactCols, rawContactOnConf, contacts)
		r.stmts.bulk(tx, rawRunInsert, rawRunCols, rawRunOnConf, runs)
		r.stmts.bulk(tx, rawOutboxInsert, rawOutboxCols, rawOutboxOnConf, outbox)
		r.stmts.bulk(tx, rawTimerInsert, rawTimerCols, "", timers)
		if r.pg {
			r.stmts.exec(tx, "UPDATE inbox SET processed_at = ?, result = ? WHERE id = ANY(?)", now, engine.ResultStarted, ids)
		} else {
			r.stmts.in(tx, "UPDATE inbox SET processed_at = ?, result = ? WHERE id", []any{now, engine.ResultStarted}, ids)
		}
		r.stmts.commit(tx)
		done += len(evs)
	}
	return done
}

// ---- b. due timers with 1M pending ----

// benchSeed fills a database (already migrated, flows loaded) with n contacts, each
// in one live run paused at the first step of a flow, and its timer: run i's timer
// is due at dueBase + i ms. kinds says which flows the runs are in, round robin:
// "drip" (wait → send → end), "chain" (wait → wait), "ad" (waiting for a reply,
// with a reply timeout). It is one SQL statement per table (recursive CTEs), with
// synchronous=OFF: the seed is setup, not measured.
func benchSeed(tb testing.TB, path string, n int, dueBase time.Time, kinds ...string) {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(path)+"?_journal_mode=WAL&_synchronous=OFF&_cache_size=-262144")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	versions := rawVersions(tb, path)
	// CASE expressions pick the run's flow, step, status and timer kind by i % k.
	pick := func(f func(kind string) string) string {
		s := "CASE i % " + strconv.Itoa(len(kinds))
		for j, k := range kinds {
			s += fmt.Sprintf(" WHEN %d THEN %s", j, f(k))
		}
		return s + " END"
	}
	q := func(s string) string { return "'" + s + "'" }
	flowOf := map[string]string{"drip": "bench-drip", "chain": "bench-chain", "ad": "bench-ad"}
	for _, k := range kinds {
		if versions[flowOf[k]] == 0 {
			tb.Fatalf("flow %s not loaded", flowOf[k])
		}
	}
	flow := pick(func(k string) string { return q(flowOf[k]) })
	version := pick(func(k string) string { return strconv.FormatInt(versions[flowOf[k]], 10) })
	step := pick(func(k string) string {
		if k == "ad" {
			return q("answer")
		}
		return q("first")
	})
	status := pick(func(k string) string {
		if k == "ad" {
			return q(store.RunWaitingReply)
		}
		return q(store.RunWaiting)
	})
	entry := pick(func(k string) string {
		if k == "ad" {
			return q(string(benchRawValues.entryAd))
		}
		return q(`{"text":"` + k + `"}`)
	})
	seq := pick(func(k string) string {
		if k == "ad" {
			return "2"
		}
		return "1"
	})
	kind := pick(func(k string) string {
		if k == "ad" {
			return q(store.TimerReplyTimeout)
		}
		return q(store.TimerWait)
	})
	t0 := strconv.FormatInt(benchT0.Add(-time.Minute).UnixMilli(), 10)
	series := "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < " + strconv.Itoa(n) + ") "
	stmts := []string{
		"INSERT INTO contacts (wa_id, name, phone_number_id, last_inbound_at, created_at, updated_at) " + series +
			"SELECT printf('1555%07d', i), 'Ana ' || i, 'bench', " + t0 + ", " + t0 + ", " + t0 + " FROM s",
		"INSERT INTO runs (id, contact, flow_id, version_id, step, status, entry, wait_seq, step_seq, started_at, updated_at) " + series +
			"SELECT i + 1, printf('1555%07d', i), " + flow + ", " + version + ", " + step + ", " + status + ", " + entry + ", 1, " + seq + ", " + t0 + ", " + t0 + " FROM s",
		"INSERT INTO timers (id, due_at, run_id, kind, seq) " + series +
			"SELECT i + 1, " + strconv.FormatInt(dueBase.UnixMilli(), 10) + " + i, i + 1, " + kind + ", 1 FROM s",
	}
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			tb.Fatalf("seed: %v\n%s", err, s)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
}

// benchPending is how many runs BenchmarkTimers seeds (FUNNEL_BENCH_PENDING, default 1M).
func benchPending(tb testing.TB) int {
	if s := os.Getenv("FUNNEL_BENCH_PENDING"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			tb.Fatalf("FUNNEL_BENCH_PENDING=%q", s)
		}
		return n
	}
	return 1_000_000
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	src, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkTimers measures engine.FireTimers draining b.N due timers out of 1M
// pending (half wait → send → end: delete the timer, update the run, insert an
// outbox row; half wait → wait: delete the timer, update the run, insert the next
// timer). The database is seeded once; each round makes the next b.N timers due
// by moving the virtual clock. The baseline, on an identical copy, selects the
// due timers and their runs and contacts and makes the same row writes.
func BenchmarkTimers(b *testing.B) {
	pending := benchPending(b)
	dir := b.TempDir()
	engPath, rawPath := filepath.Join(dir, "engine.db"), filepath.Join(dir, "raw.db")
	st, _ := benchEngine(b, engPath, "NORMAL", engine.NewVirtualClock(benchT0), engine.Options{})
	st.Close()
	seedStart := time.Now()
	dueBase := benchT0.Add(time.Hour)
	benchSeed(b, engPath, pending, dueBase, "drip", "chain")
	copyFile(b, engPath, rawPath)
	b.Logf("seeded %d waiting runs and timers in %s (twice: engine and baseline)", pending, time.Since(seedStart).Round(time.Millisecond))
	fired := 0 // timers consumed by earlier rounds, the same in both databases
	for _, sync := range benchSyncModes() {
		b.Run(fmt.Sprintf("pending=%d/sync=%s", pending, sync), func(b *testing.B) {
			n := b.N
			if fired+n > pending/2 {
				b.Skipf("only %d of %d seeded timers left: raise FUNNEL_BENCH_PENDING", pending-fired, pending)
			}
			until := dueBase.Add(time.Duration(fired+n-1) * time.Millisecond)
			raw := newRawTimers(b, rawPath, sync, until)
			defer raw.close()
			st, eng := benchEngine(b, engPath, sync, engine.NewVirtualClock(until), engine.Options{BatchSize: benchBatch})
			defer st.Close()
			ctx := context.Background()
			engP, rawP := benchInterleave(b, n, func(max int) int {
				done := 0
				for done < max {
					k, err := eng.FireTimers(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if k == 0 {
						break
					}
					done += k
				}
				return done
			}, raw.step)
			fired += n
			benchReport(b, "timers/s", n, engP, rawP)
		})
	}
}

// rawTimers is the baseline of BenchmarkTimers: per transaction, select up to
// benchBatch due timers in order (with their run's contact), read their runs and
// contacts with IN lists, delete the timers and make the same writes as the
// engine: the runs move on (a multi-row upsert), and either outbox rows (drip:
// send, end) or the next timers (chain: wait again), multi-row.
type rawTimers struct {
	b                 *testing.B
	db                *sql.DB
	now               int64
	outboxID, timerID int64
	stmts             *rawStmts
}

func newRawTimers(b *testing.B, path, sync string, until time.Time) *rawTimers {
	r := &rawTimers{b: b, db: rawOpen(b, path, sync), now: until.UnixMilli()}
	r.stmts = newRawStmts(b, r.db)
	r.db.QueryRow("SELECT COALESCE(MAX(id), 0) FROM outbox").Scan(&r.outboxID)
	r.db.QueryRow("SELECT COALESCE(MAX(id), 0) FROM timers").Scan(&r.timerID)
	return r
}

func (r *rawTimers) close() {
	r.stmts.close()
	r.db.Close()
}

// step fires up to max due timers, benchBatch per transaction.
func (r *rawTimers) step(max int) int {
	b, now := r.b, r.now
	done := 0
	for done < max {
		tx, err := r.db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		type timer struct{ id, dueAt, run, seq int64 }
		var ts []timer
		rows, err := tx.Query(`SELECT t.id, t.due_at, t.run_id, t.kind, t.seq, COALESCE(r.contact, '')
			FROM timers t LEFT JOIN runs r ON r.id = t.run_id WHERE t.due_at <= ? ORDER BY t.due_at, t.id LIMIT ?`, now, benchBatch)
		if err != nil {
			b.Fatal(err)
		}
		var ids, runIDs []int64
		for rows.Next() {
			var t timer
			var kind, contact string
			if err := rows.Scan(&t.id, &t.dueAt, &t.run, &kind, &t.seq, &contact); err != nil {
				b.Fatal(err)
			}
			ts = append(ts, t)
			ids, runIDs = append(ids, t.id), append(runIDs, t.run)
		}
		rows.Close()
		if len(ts) == 0 {
			tx.Rollback()
			break
		}
		type run struct {
			contact, flow, status, name      string
			version, waitSeq, stepSeq, start int64
			vars, entry, reply, event, attrs []byte
			tags                             []byte
		}
		runs := map[int64]*run{}
		for start := 0; start < len(runIDs); {
			end := start + rawChunk(len(runIDs)-start)
			args := make([]any, 0, end-start)
			for _, id := range runIDs[start:end] {
				args = append(args, id)
			}
			rows, err := tx.Query(`SELECT r.id, r.contact, r.flow_id, r.version_id, r.status, r.wait_seq, r.step_seq, r.started_at, r.vars, r.entry, r.reply, r.event,
				c.name, c.attributes, c.tags FROM runs r JOIN contacts c ON c.wa_id = r.contact WHERE r.id IN (`+strings.TrimSuffix(strings.Repeat("?,", end-start), ",")+")", args...)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var id int64
				x := &run{}
				if err := rows.Scan(&id, &x.contact, &x.flow, &x.version, &x.status, &x.waitSeq, &x.stepSeq, &x.start, &x.vars, &x.entry, &x.reply, &x.event,
					&x.name, &x.attrs, &x.tags); err != nil {
					b.Fatal(err)
				}
				runs[id] = x
			}
			rows.Close()
			start = end
		}
		r.stmts.in(tx, "DELETE FROM timers WHERE id", nil, ids)
		var upd, outbox, timers [][]any
		for _, t := range ts {
			x := runs[t.run]
			if x == nil || x.waitSeq != t.seq {
				continue
			}
			if x.flow == "bench-drip" {
				r.outboxID++
				upd = append(upd, []any{t.run, x.contact, x.flow, x.version, "done", store.RunCompleted, x.vars, x.entry, x.reply, x.event,
					x.waitSeq + 1, x.stepSeq + 2, x.start, now, now, "completed"})
				outbox = append(outbox, []any{r.outboxID, fmt.Sprintf("%d/%d", t.run, x.stepSeq+1), t.run, x.flow, "remind", x.contact, "bench",
					store.KindFreeForm, "", false, benchRawValues.reminder, nil, "", store.OutPending, "", 0, now, 0, "", "", now, nil, now})
			} else {
				r.timerID++
				upd = append(upd, []any{t.run, x.contact, x.flow, x.version, "second", store.RunWaiting, x.vars, x.entry, x.reply, x.event,
					x.waitSeq + 1, x.stepSeq + 1, x.start, now, nil, ""})
				timers = append(timers, []any{r.timerID, now + 2*time.Hour.Milliseconds(), t.run, store.TimerWait, x.waitSeq + 1})
			}
		}
		r.stmts.bulk(tx, rawRunInsert, rawRunCols, rawRunOnConf, upd)
		r.stmts.bulk(tx, rawOutboxInsert, rawOutboxCols, rawOutboxOnConf, outbox)
		r.stmts.bulk(tx, rawTimerInsert, rawTimerCols, "", timers)
		r.stmts.commit(tx)
		done += len(ts)
	}
	return done
}

func (r *rawInbound) rebind(q string) string {
	if r.pg {
		return sqlx.Rebind(sqlx.DOLLAR, q)
	}
	return q
}

// newIDs are the ids of n new runs (their outbox rows and timers take the
// same): counted in memory on SQLite, as the store does; on PostgreSQL one
// block per table from the sequences, as the store asks for them (the store
// asks in blocks of 8, 16, … 256 within a transaction: a few more queries).
func (r *rawInbound) newIDs(tx *sql.Tx, n int) []int64 {
	ids := make([]int64, n)
	if !r.pg {
		for i := range ids {
			r.runID++
			ids[i] = r.runID
		}
		return ids
	}
	for _, table := range []string{"runs", "outbox", "timers"} {
		rows, err := tx.Query("SELECT nextval(pg_get_serial_sequence('"+table+"', 'id')) FROM generate_series(1, $1)", n)
		if err != nil {
			r.b.Fatal(err)
		}
		i := 0
		for rows.Next() {
			if err := rows.Scan(&ids[i]); err != nil {
				r.b.Fatal(err)
			}
			i++
		}
		rows.Close()
	}
	return ids
}

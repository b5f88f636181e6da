package store_test

// Store-level benchmarks, each beside a raw database/sql + mattn/go-sqlite3
// baseline writing the same rows with the same durability (the writer settings
// of store.Open: WAL, BEGIN IMMEDIATE, the same synchronous mode and page cache)
// and the same rows per transaction, in the same run. The two sides take turns
// (every 10 transactions), so both see the same background load; x_raw is the
// ratio of the rates, x_raw_cpu the ratio of CPU time.
//
//	go test -run '^$' -bench . -benchtime 20000x -count 3 ./store/
//
// See docs/BENCHMARKS.md.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
	_ "github.com/mattn/go-sqlite3"
)

var benchT0 = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)

func benchSyncModes() []string {
	if s := os.Getenv("FUNNEL_BENCH_SYNC"); s != "" {
		return []string{s}
	}
	return []string{"FULL", "NORMAL"}
}

// rawDSN is the writer DSN of store.Open.
func rawDSN(path, sync string) string {
	return "file:" + url.PathEscape(path) + "?_busy_timeout=10000&_foreign_keys=on&_journal_mode=WAL" +
		"&_txlock=immediate&_synchronous=" + sync + "&_cache_size=-65536"
}

// openBoth makes two databases with the store's schema: one opened by the
// store, one (closed by the store after migrating) opened raw with the same
// settings.
func openBoth(b *testing.B, sync string) (*store.DB, *sql.DB) {
	dir := b.TempDir()
	ctx := context.Background()
	raw, err := store.Open(ctx, filepath.Join(dir, "raw.db"), store.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	raw.Close()
	db, err := sql.Open("sqlite3", rawDSN(filepath.Join(dir, "raw.db"), sync))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	st, err := store.Open(ctx, filepath.Join(dir, "store.db"), store.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, db
}

type phase struct{ wall, cpu time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// interleave runs txs transactions of each side, 10 at a time, alternating which
// side goes first; only the store's turns run under the benchmark timer.
func interleave(b *testing.B, txs int, st, raw func(tx int)) (stP, rawP phase) {
	b.StopTimer()
	b.ResetTimer()
	turn := func(p *phase, f func(int), from, to int, timed bool) {
		runtime.GC()
		if timed {
			b.StartTimer()
		}
		w, c := time.Now(), cpuTime()
		for i := from; i < to; i++ {
			f(i)
		}
		p.wall += time.Since(w)
		p.cpu += cpuTime() - c
		if timed {
			b.StopTimer()
		}
	}
	for from, round := 0, 0; from < txs; from, round = from+10, round+1 {
		to := min(from+10, txs)
		if round%2 == 0 {
			turn(&rawP, raw, from, to, false)
			turn(&stP, st, from, to, true)
		} else {
			turn(&stP, st, from, to, true)
			turn(&rawP, raw, from, to, false)
		}
	}
	return stP, rawP
}

func report(b *testing.B, unit string, n int, st, raw phase) {
	s, r := float64(n)/st.wall.Seconds(), float64(n)/raw.wall.Seconds()
	b.ReportMetric(s, unit)
	b.ReportMetric(r, "raw_"+unit)
	b.ReportMetric(s/r, "x_raw")
	b.ReportMetric(raw.cpu.Seconds()/st.cpu.Seconds(), "x_raw_cpu")
}

func inboxPayload(i int) []byte {
	return fmt.Appendf(nil, `{"phone_number_id":"bench","wa_id":"1555%07d","name":"Ana %d","time":"2026-07-01T10:00:00Z","message":{"from":"1555%07d","id":"wamid.bench.%d","timestamp":"1782900000","type":"text","text":{"body":"hello"}}}`, i, i, i, i)
}

// BenchmarkEnqueue measures webhook ingest: store.Enqueue of b.N inbound items,
// per commit (the items of one webhook request, deduplicated by key), against
// the same multi-row INSERT … ON CONFLICT (key) DO NOTHING in transactions of
// the same size. What the daemon does before it answers 200.
func BenchmarkEnqueue(b *testing.B) {
	for _, sync := range benchSyncModes() {
		for _, per := range []int{1, 50} {
			b.Run(fmt.Sprintf("sync=%s/items=%d", sync, per), func(b *testing.B) {
				ctx := context.Background()
				st, db := openBoth(b, sync)
				raw := newRawStmts(b, db)
				defer raw.close()
				txs := (b.N + per - 1) / per
				items := func(tx int) []store.InboxItem {
					out := make([]store.InboxItem, 0, per)
					for i := tx * per; i < min((tx+1)*per, b.N); i++ {
						out = append(out, store.InboxItem{Key: "message:wamid.bench." + strconv.Itoa(i), Kind: store.InboxMessage,
							Contact: fmt.Sprintf("1555%07d", i), Payload: inboxPayload(i), ReceivedAt: benchT0})
					}
					return out
				}
				stP, rawP := interleave(b, txs, func(tx int) {
					if _, err := st.Enqueue(ctx, items(tx)); err != nil {
						b.Fatal(err)
					}
				}, func(tx int) {
					t, err := db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					var rows [][]any
					for _, it := range items(tx) {
						rows = append(rows, []any{it.Key, it.Kind, it.Contact, it.Payload, it.ReceivedAt.UnixMilli()})
					}
					raw.bulk(t, "INSERT INTO inbox (key, kind, contact, payload, received_at)", 5, "ON CONFLICT (key) DO NOTHING", rows)
					raw.commit(t)
				})
				if n, _ := st.InboxUnprocessed(ctx); n != int64(b.N) {
					b.Fatalf("stored %d items, want %d", n, b.N)
				}
				report(b, "items/s", b.N, stP, rawP)
			})
		}
	}
}

// BenchmarkBatchWrite measures the store's batch API alone (no engine logic):
// per transaction of 500 new contacts, SaveContacts, SaveRuns, InsertOutbox and
// InsertTimers, against the same rows written by the same multi-row statements
// through database/sql directly. The engine's ProcessInbox writes these rows for a
// batch of first messages.
func BenchmarkBatchWrite(b *testing.B) {
	const per = 500
	for _, sync := range benchSyncModes() {
		b.Run("sync="+sync, func(b *testing.B) {
			ctx := context.Background()
			st, db := openBoth(b, sync)
			var version int64
			err := st.Write(ctx, func(tx store.Tx) error {
				v := &store.FlowVersion{FlowID: "bench", Hash: "h", Source: []byte("flow: bench"), CreatedAt: benchT0}
				if err := tx.InsertFlowVersion(v); err != nil {
					return err
				}
				version = v.ID
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO flow_versions (id, flow_id, hash, source, created_at) VALUES (?, 'bench', 'h', 'flow: bench', 0)", version); err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"15550000000","type":"text","text":{"body":"Hi Ana! Thanks for writing. Reply MENU to see what we can do."},"biz_opaque_callback_data":"funnel:1"}`)
			entry := []byte(`{"text":"hello"}`)
			now := benchT0
			txs := (b.N + per - 1) / per
			rows := func(tx int) ([]*store.Contact, []*store.Run, []*store.OutboxItem, []*store.Timer) {
				var cs []*store.Contact
				var rs []*store.Run
				var obs []*store.OutboxItem
				var ts []*store.Timer
				for i := tx * per; i < min((tx+1)*per, b.N); i++ {
					wa := fmt.Sprintf("1555%07d", i)
					id := int64(i + 1)
					cs = append(cs, &store.Contact{WaID: wa, Name: "Ana " + strconv.Itoa(i), PhoneNumberID: "bench", LastInboundAt: now, CreatedAt: now, UpdatedAt: now})
					rs = append(rs, &store.Run{ID: id, Contact: wa, FlowID: "bench", VersionID: version, Step: "answer", Status: store.RunWaitingReply,
						Entry: entry, WaitSeq: 1, StepSeq: 2, StartedAt: now, UpdatedAt: now})
					obs = append(obs, &store.OutboxItem{ID: id, Key: strconv.FormatInt(id, 10) + "/1", RunID: id, FlowID: "bench", Step: "hello", Contact: wa,
						PhoneNumberID: "bench", Kind: store.KindFreeForm, Payload: payload, Status: store.OutPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
					ts = append(ts, &store.Timer{ID: id, DueAt: now.Add(time.Hour), RunID: id, Kind: store.TimerReplyTimeout, Seq: 1})
				}
				return cs, rs, obs, ts
			}
			raw := newRawStmts(b, db)
			defer raw.close()
			ms := func(t time.Time) int64 { return t.UnixMilli() }
			stP, rawP := interleave(b, txs, func(tx int) {
				cs, rs, obs, ts := rows(tx)
				err := st.Write(ctx, func(t store.Tx) error {
					if err := t.SaveContacts(cs); err != nil {
						return err
					}
					if err := t.SaveRuns(rs); err != nil {
						return err
					}
					if err := t.InsertOutbox(obs); err != nil {
						return err
					}
					return t.InsertTimers(ts)
				})
				if err != nil {
					b.Fatal(err)
				}
			}, func(tx int) {
				cs, rs, obs, ts := rows(tx)
				t, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				var crows, rrows, orows, trows [][]any
				for i := range cs {
					k := cs[i]
					crows = append(crows, []any{k.WaID, k.Name, "", []byte("{}"), []byte("[]"), k.PhoneNumberID, ms(k.LastInboundAt), "", nil, "",
						ms(k.CreatedAt), ms(k.UpdatedAt), "", "", "", ""})
					u := rs[i]
					rrows = append(rrows, []any{u.ID, u.Contact, u.FlowID, u.VersionID, u.Step, u.Status, []byte("{}"), u.Entry, []byte("{}"), []byte("{}"),
						u.WaitSeq, u.StepSeq, ms(u.StartedAt), ms(u.UpdatedAt), nil, ""})
					x := obs[i]
					orows = append(orows, []any{x.ID, x.Key, x.RunID, x.FlowID, x.Step, x.Contact, x.PhoneNumberID, x.Kind, "", false, x.Payload, nil, "",
						x.Status, "", 0, ms(x.NextAttemptAt), 0, "", "", ms(x.CreatedAt), nil, ms(x.UpdatedAt)})
					y := ts[i]
					trows = append(trows, []any{y.ID, ms(y.DueAt), y.RunID, y.Kind, y.Seq})
				}
				raw.bulk(t, rawContacts, 16, rawContactsOnConflict, crows)
				raw.bulk(t, rawRuns, 16, rawRunsOnConflict, rrows)
				raw.bulk(t, rawOutbox, 23, "ON CONFLICT (key) DO NOTHING", orows)
				raw.bulk(t, "INSERT INTO timers (id, due_at, run_id, kind, seq)", 5, "", trows)
				raw.commit(t)
			})
			stats, err := st.Stats(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if stats.Contacts != int64(b.N) || stats.LiveRuns != int64(b.N) || stats.OutboxPending != int64(b.N) || stats.Timers != int64(b.N) {
				b.Fatalf("store wrote %+v, want %d of each", stats, b.N)
			}
			report(b, "events/s", b.N, stP, rawP)
		})
	}
}

// The raw baselines use the statements the store runs: multi-row INSERTs of up
// to 256 rows (then powers of two), each text prepared once.
const (
	rawContacts = `INSERT INTO contacts (wa_id, name, timezone, attributes, tags, phone_number_id, last_inbound_at, consent, consent_at,
		consent_source, created_at, updated_at, phone, user_id, parent_user_id, username)`
	rawContactsOnConflict = `ON CONFLICT (wa_id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone,
		phone = excluded.phone, user_id = excluded.user_id, parent_user_id = excluded.parent_user_id, username = excluded.username,
		attributes = excluded.attributes, tags = excluded.tags, phone_number_id = excluded.phone_number_id,
		last_inbound_at = excluded.last_inbound_at, consent = excluded.consent, consent_at = excluded.consent_at,
		consent_source = excluded.consent_source, updated_at = excluded.updated_at`
	rawRuns = `INSERT INTO runs (id, contact, flow_id, version_id, step, status, vars, entry, reply, event, wait_seq, step_seq,
		started_at, updated_at, ended_at, end_reason)`
	rawRunsOnConflict = `ON CONFLICT (id) DO UPDATE SET step = excluded.step, status = excluded.status, vars = excluded.vars,
		entry = excluded.entry, reply = excluded.reply, event = excluded.event, wait_seq = excluded.wait_seq,
		step_seq = excluded.step_seq, updated_at = excluded.updated_at, ended_at = excluded.ended_at,
		end_reason = excluded.end_reason WHERE runs.ended_at IS NULL`
	rawOutbox = `INSERT INTO outbox (id, key, run_id, flow_id, step, contact, phone_number_id, kind, category, assume_opt_in, payload,
		fallback, fallback_category, status, sent_as, attempts, next_attempt_at, error_code, last_error, provider_id, created_at, sent_at, updated_at)`
)

// rawStmts prepares each statement text once and hands it to a transaction
// with tx.Stmt, as the store's statement cache does.
type rawStmts struct {
	tb      testing.TB
	db      *sql.DB
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

func (r *rawStmts) close() {
	for _, st := range r.cache {
		st.Close()
	}
}

// bulk inserts rows (cols values each) with multi-row statements.
func (r *rawStmts) bulk(tx *sql.Tx, prefix string, cols int, suffix string, rows [][]any) {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for start := 0; start < len(rows); {
		n := 256
		if left := len(rows) - start; left < 256 {
			for n = 1; n*2 <= left; n *= 2 {
			}
		}
		args := make([]any, 0, n*cols)
		for _, row := range rows[start : start+n] {
			args = append(args, row...)
		}
		q := prefix + " VALUES " + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + " " + suffix
		if _, err := r.stmt(tx, q).Exec(args...); err != nil {
			r.tb.Fatalf("%.60s…: %v", q, err)
		}
		start += n
	}
}

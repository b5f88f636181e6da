package reliability

// The crash test: the real `funnel serve` binary on a file database and the
// fake Graph API, under webhook load (click-to-WhatsApp entries, replies to
// pending questions, keyword starts, contacts whose window closes during the
// run), killed with SIGKILL at random moments and restarted each time. The
// load generator retries every webhook until it gets a 200, as Meta does, and
// a second generator posts a signed `delivered` status for every message the
// fake accepted (status webhooks settle `unknown` outcomes; one without a
// status within resend_unknown_after, 30 s here, is sent once more).
//
// Each contact's messages carry a unique token (t<contact>.<n>) that the
// flows echo: a run's entry text names the message that started it, and the
// message sent after a reply names the reply. That makes "processed exactly
// once" checkable from the outside:
//
//   - every message webhook has one inbox row, processed, without error;
//   - every `started` message has exactly one run and every run one starting
//     message (of its contact, for the right flow); every `resumed` message
//     has exactly one answer in the outbox and every answer one reply;
//   - runs of one contact in one flow never overlap (no reentry), every run
//     took one of its flow's paths, step by step (no step twice or skipped);
//   - at each kill, every live run waits on a reply or a timer that exists;
//     timers that fall due while the daemon is down fire after the restart
//     (the send after the wait is created after the restart) and their sends
//     meet the window check at send time: no 131047 ever reaches the fake;
//   - at the end nothing is left (inbox, timers, live runs, pending sends);
//   - nothing was sent twice (fake.Duplicates), every sent row reached the
//     fake exactly once, no other row reached it; a message that never
//     reached the fake (left `unknown`) counts as lost, like an event never
//     processed. Goal: lost 0, duplicates 0.
//   - a share of the contacts are users with a WhatsApp username who hide
//     their number (every fifth): their webhooks carry only a BSUID, they are
//     one contact keyed by it, and everything sent to them went to the BSUID.
//
// Sizes: FUNNEL_CRASH_CONTACTS, FUNNEL_CRASH_MESSAGES (per contact),
// FUNNEL_CRASH_KILLS; FUNNEL_SEED (or FUNNEL_CRASH_SEED) replays a run with the
// seed it logged.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

const (
	crashAd      = "120226305854810726" // the ad rel-ad listens to
	crashOtherAd = "120226305854810111" // an ad no flow listens to
)

type crashSizes struct {
	contacts, messages, kills int
	spread                    time.Duration // first messages spread over this
	minGap, maxGap            time.Duration // between a contact's messages
	minLife, maxLife          time.Duration // daemon life before a kill
	minDown, maxDown          time.Duration // down time before the restart
}

func crashSizesFor(level string) crashSizes {
	s := crashSizes{contacts: 1000, messages: 10, kills: 6, spread: 8 * time.Second,
		minGap: 300 * time.Millisecond, maxGap: 4 * time.Second,
		minLife: time.Second, maxLife: 5 * time.Second, minDown: 300 * time.Millisecond, maxDown: 3 * time.Second}
	switch level {
	case "full":
		s.messages, s.kills = 12, 10
	case "":
		// The smoke form of plain `go test`: same shape, small.
		s.contacts, s.messages, s.kills, s.spread = 60, 5, 2, 2*time.Second
		s.maxGap, s.maxLife, s.maxDown = 2*time.Second, 3*time.Second, 2*time.Second
	}
	s.contacts = EnvInt("FUNNEL_CRASH_CONTACTS", s.contacts)
	s.messages = EnvInt("FUNNEL_CRASH_MESSAGES", s.messages)
	s.kills = EnvInt("FUNNEL_CRASH_KILLS", s.kills)
	return s
}

// Contact kinds.
const (
	kindAd      = iota // enters through the ad
	kindMenu           // starts with "menu …"
	kindClosing        // enters through the ad with messages ~24h old: the window closes mid-run
	kindOtherAd        // an ad no flow listens to: recorded, nothing runs
)

var kindNames = []string{"ad", "menu", "closing-window", "other-ad"}

type crashMsg struct {
	contact, n int
	token      string
	wamid      string
	text       string
	referral   *whatsapp.Referral
	ts         time.Time // own timestamp; zero = when first posted
}

type crashContact struct {
	i     int
	waID  string
	key   string // the contact's key in funnel: the number, or the BSUID of a username user
	user  bool   // a user with a username who hides their number
	name  string
	kind  int
	start time.Duration
	gaps  []time.Duration
	msgs  []*crashMsg
}

func crashWaID(i int) string { return fmt.Sprintf("1556%07d", i) }

// crashScript builds every contact's messages from the seed.
func crashScript(seed uint64, s crashSizes, now time.Time) []*crashContact {
	rng := rand.New(rand.NewPCG(seed, 1))
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	out := make([]*crashContact, s.contacts)
	for i := range out {
		c := &crashContact{i: i, waID: crashWaID(i), name: fmt.Sprintf("C%d", i), start: dur(0, s.spread), user: i%5 == 2}
		c.key = c.waID
		if c.user {
			c.key = whatsapptest.BSUIDFor(c.waID)
		}
		switch x := rng.Float64(); {
		case x < 0.55:
			c.kind = kindAd
		case x < 0.85:
			c.kind = kindMenu
		case x < 0.95:
			c.kind = kindClosing
		default:
			c.kind = kindOtherAd
		}
		// Closing-window contacts write "24 h ago": their window (24 h minus
		// funnel's 1-minute guard) closes 2-12 s after the load starts.
		var base time.Time
		if c.kind == kindClosing {
			base = now.Add(-24*time.Hour + time.Minute + dur(2*time.Second, 12*time.Second)).Truncate(time.Second)
		}
		for n := 0; n < s.messages; n++ {
			m := &crashMsg{contact: i, n: n, token: fmt.Sprintf("t%d.%d", i, n), wamid: fmt.Sprintf("wamid.REL%d_%d", i, n)}
			if n == 0 {
				switch c.kind {
				case kindAd, kindClosing:
					m.text = "Hi! " + m.token
					m.referral = &whatsapp.Referral{SourceID: crashAd, SourceType: "ad", SourceURL: "https://fb.me/rel",
						Headline: "Summer sale", Body: "20% off", MediaType: "image", CtwaClid: "clid" + m.token}
				case kindMenu:
					m.text = "menu " + m.token
				case kindOtherAd:
					m.text = "Hello " + m.token
					m.referral = &whatsapp.Referral{SourceID: crashOtherAd, SourceType: "ad", Headline: "Other"}
				}
			} else {
				switch x := rng.Float64(); {
				case x < 0.4:
					m.text = "Yes " + m.token
				case x < 0.75:
					m.text = "No " + m.token
				default:
					m.text = "menu " + m.token
				}
				c.gaps = append(c.gaps, dur(s.minGap, s.maxGap))
			}
			if c.kind == kindClosing {
				m.ts = base.Add(time.Duration(n) * time.Second)
			}
			c.msgs = append(c.msgs, m)
		}
		out[i] = c
	}
	return out
}

var tokenRE = regexp.MustCompile(`t\d+\.\d+`)

// crashTimer is a timer that fell due while the daemon was down.
type crashTimer struct {
	id, run, seq int64
	kind, step   string
	restart      time.Time
}

func TestCrash(t *testing.T) {
	level := Level()
	sizes := crashSizesFor(level)
	seed := Seed(t, "FUNNEL_CRASH_SEED")
	t.Logf("crash test: %d contacts × %d messages, %d kills", sizes.contacts, sizes.messages, sizes.kills)
	krng := rand.New(rand.NewPCG(seed, 2))
	kdur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(krng.Int64N(int64(hi-lo)+1)) }

	fake := whatsapptest.New(t, whatsapptest.Options{
		Rate: 1000, Burst: 100, // Meta's ceiling: the daemon paces at 500/s
		Templates: []whatsapptest.Template{{Name: "rel_nudge", Language: "en_US", Category: "UTILITY", Params: 1}},
	})
	d := NewDaemon(t, DaemonOptions{Fake: fake, Config: map[string]any{
		"rate": 500, "pair_burst": 10, "pair_interval": "1s",
		"resend_unknown_after": crashResendAfter.String(),
	}})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	contacts := crashScript(seed, sizes, start)
	for _, c := range contacts {
		if c.user {
			fake.AddUser(whatsapptest.User{Phone: c.waID, Username: "@" + strings.ToLower(c.name), HidePhone: true})
		}
	}
	hooks := NewWebhooks(d.WebhookURL(), fake.AppSecret(), 256)

	// Load: each contact sends its messages in order, the next one only after
	// the previous was acknowledged.
	var acked, attempts, retried atomic.Int64
	loadErr := make(chan error, len(contacts))
	var loadWG sync.WaitGroup
	for _, c := range contacts {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			time.Sleep(c.start)
			for n, m := range c.msgs {
				if n > 0 {
					time.Sleep(c.gaps[n-1])
				}
				im := whatsapp.InboundMessage{From: c.waID, ID: m.wamid, Type: whatsapp.InText,
					Text: &whatsapp.InboundText{Body: m.text}, Referral: m.referral}
				if !m.ts.IsZero() {
					im.Timestamp = whatsapp.Timestamp(fmt.Sprint(m.ts.Unix()))
				}
				body, _, err := fake.InboundWebhook("", c.name, im)
				if err != nil {
					loadErr <- err
					return
				}
				if m.ts.IsZero() {
					var env whatsapp.Envelope
					json.Unmarshal(body, &env)
					ts, _ := env.Entry[0].Changes[0].Value.Messages[0].Timestamp.Time()
					m.ts = ts
				}
				n, err := hooks.Deliver(ctx, body)
				attempts.Add(int64(n))
				if n > 1 {
					retried.Add(1)
				}
				if err != nil {
					loadErr <- fmt.Errorf("%s: %w", m.wamid, err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	loadDone := make(chan struct{})
	go func() { loadWG.Wait(); close(loadDone) }()

	// Statuses: a `delivered` webhook for every message the fake accepted.
	statuses := StartStatusPoster(ctx, fake, NewWebhooks(d.WebhookURL(), fake.AppSecret(), 16), 8)

	// Kills.
	var dueWhileDown []crashTimer
	var downTotal time.Duration
	var stuck []string
	for k := 0; k < sizes.kills; k++ {
		time.Sleep(kdur(sizes.minLife, sizes.maxLife))
		d.Kill()
		killedAt := time.Now()
		down := kdur(sizes.minDown, sizes.maxDown)
		db := OpenDB(t, d.Opts.DB, false)
		stuck = append(stuck, crashStuckRuns(t, db, fmt.Sprintf("after kill %d", k+1))...)
		if rest := time.Until(killedAt.Add(down)); rest > 0 {
			time.Sleep(rest)
		}
		restart := time.Now()
		due := crashDueTimers(t, db, restart)
		db.Close()
		dueWhileDown = append(dueWhileDown, due...)
		downTotal += time.Since(killedAt)
		t.Logf("kill %d at +%.1fs (acked %d/%d webhooks), down %v, %d timers fell due meanwhile",
			k+1, killedAt.Sub(start).Seconds(), acked.Load(), sizes.contacts*sizes.messages,
			restart.Sub(killedAt).Round(time.Millisecond), len(due))
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
	}

	// Finish the load, then drain: everything processed, sent, its status
	// posted and processed.
	select {
	case <-loadDone:
	case <-ctx.Done():
		t.Fatal("load did not finish")
	}
	close(loadErr)
	for err := range loadErr {
		t.Fatalf("load: %v", err)
	}
	loadEnd := time.Now()
	err := WaitFor(3*time.Minute, func() (bool, error) {
		m, err := d.Metrics(ctx)
		if err != nil {
			return false, nil
		}
		return Drained(m) && statuses.CaughtUp(), nil
	})
	// One more round: the last statuses must be processed too, and every
	// message left unknown settled by its status or sent once more.
	if err == nil {
		err = WaitFor(time.Minute+crashResendAfter, func() (bool, error) {
			m, err := d.Metrics(ctx)
			return err == nil && Drained(m) && statuses.CaughtUp() && crashUnknownWaiting(t, d.Opts.DB) == 0, nil
		})
	}
	statusErr := statuses.Stop()
	if err != nil {
		m, _ := d.Metrics(ctx)
		t.Fatalf("not drained: %v (inbox %v, outbox %v, sending %v, timers %v, live runs %v)\n%s", err,
			m.Sum("funnel_inbox_pending"), m.Sum("funnel_outbox_pending"), m.Sum("funnel_outbox_sending"),
			m.Sum("funnel_timers_pending"), m.Sum("funnel_runs_live"), d.LogTail(3000))
	}
	if statusErr != nil {
		t.Fatalf("status webhooks: %v", statusErr)
	}
	drainEnd := time.Now()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}

	// Verify.
	db := OpenDB(t, d.Opts.DB, false)
	defer db.Close()
	v := &crashVerifier{t: t, db: db, fake: fake, contacts: contacts}
	v.load()
	v.inbox()
	v.usernames()
	v.runs()
	v.answers()
	v.paths()
	v.endState()
	v.sends()
	v.timers(dueWhileDown)
	for _, s := range stuck {
		t.Error(s)
	}

	total := sizes.contacts * sizes.messages
	unknownMarked := crashUnknownMarked(d.Log())
	Report(t, "crash.seed", "%d", seed)
	Report(t, "crash.webhooks", "%d messages from %d contacts (%s), %d delivery statuses; %d attempts, %d webhooks retried",
		total, sizes.contacts, v.kindCounts(), statuses.Acked(), attempts.Load(), retried.Load())
	Report(t, "crash.kills", "%d SIGKILLs, %d starts, %.1fs down in all; load %.1fs, drain %.1fs",
		sizes.kills, d.Starts(), downTotal.Seconds(), loadEnd.Sub(start).Seconds(), drainEnd.Sub(loadEnd).Seconds())
	Report(t, "crash.inbox", "%d message rows processed once (%s); %d status rows", v.msgRows, v.resultCounts(), v.statusRows)
	Report(t, "crash.runs", "%d runs (%s), 0 live at the end, %d stuck at kills", len(v.runRows), v.runCounts(), len(stuck))
	Report(t, "crash.sends", "%d outbox rows (%s); fake accepted %d, duplicates %d, never reached it %d",
		len(v.outRows), v.outCounts(), len(fake.Sent()), v.dups, v.lostSends)
	Report(t, "crash.unknown", "%d marked unknown at restarts (%d in all, with dropped calls); %d settled by their status, %d sent once more, %d still unknown",
		unknownMarked, v.unknownAll, v.unknownReached, v.resent, v.lostSends)
	Report(t, "crash.timers", "%d live timers fell due while the daemon was down (%s); all fired after the restart",
		len(dueWhileDown), crashTimerKinds(dueWhileDown))
	Report(t, "crash.window", "131047 from the fake: %d; closing-window contacts: %s", v.seen131047, v.closingCounts())
	Report(t, "crash.pacing", "130429: %d, 131056: %d", v.code(130429), v.code(131056))
	// Machine-readable figures for scripts/reliability.sh.
	Report(t, "crash.n.messages", "%d", total)
	Report(t, "crash.n.kills", "%d", sizes.kills)
	Report(t, "crash.n.lost", "%d", total-v.processedOK+v.lostSends)
	Report(t, "crash.n.duplicates", "%d", v.dups)
	Report(t, "crash.n.unknown", "%d", v.unknownAll)
	Report(t, "crash.n.resent", "%d", v.resent)
	Report(t, "crash.n.timers_due_while_down", "%d", len(dueWhileDown))
}

// crashStuckRuns checks, with the daemon dead, that every live run is parked
// on a reply or a timer that exists (all the test flows' waits have a
// timeout, so every live run needs its timer).
func crashStuckRuns(t *testing.T, db *sql.DB, when string) []string {
	rows, err := db.Query(`SELECT r.id, r.status, r.step, r.wait_seq,
		(SELECT COUNT(*) FROM timers tm WHERE tm.run_id = r.id AND tm.seq = r.wait_seq)
		FROM runs r WHERE r.ended_at IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, seq, timers int64
		var status, step string
		if err := rows.Scan(&id, &status, &step, &seq, &timers); err != nil {
			t.Fatal(err)
		}
		if (status != "waiting" && status != "waiting_reply") || timers != 1 {
			out = append(out, fmt.Sprintf("%s: run %d is stuck: status %s at %s with %d timers for wait %d", when, id, status, step, timers, seq))
		}
	}
	return out
}

// crashDueTimers lists the live timers due by `at`.
func crashDueTimers(t *testing.T, db *sql.DB, at time.Time) []crashTimer {
	rows, err := db.Query(`SELECT tm.id, tm.run_id, tm.seq, tm.kind, r.step FROM timers tm JOIN runs r ON r.id = tm.run_id
		WHERE tm.due_at <= ? AND r.ended_at IS NULL AND r.wait_seq = tm.seq`, at.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []crashTimer
	for rows.Next() {
		ct := crashTimer{restart: at}
		if err := rows.Scan(&ct.id, &ct.run, &ct.seq, &ct.kind, &ct.step); err != nil {
			t.Fatal(err)
		}
		out = append(out, ct)
	}
	return out
}

func crashTimerKinds(ts []crashTimer) string {
	n := map[string]int{}
	for _, t := range ts {
		n[t.kind+" at "+t.step]++
	}
	return countsString(n)
}

// crashResendAfter is the daemon's resend_unknown_after in the crash test:
// longer than a kill, a restart and the status webhooks' retries take, on a
// busy host too (with 10 s, at a load average of 20, the statuses of 137
// messages that had reached the fake came after it: sent twice).
const crashResendAfter = 30 * time.Second

// crashUnknownWaiting counts the messages left unknown that are waiting for a
// status or their second send.
func crashUnknownWaiting(t *testing.T, path string) int64 {
	db := OpenDB(t, path, true)
	defer db.Close()
	return QueryInt(t, db, "SELECT COUNT(*) FROM outbox WHERE status = 'unknown' AND resends = 0")
}

// crashUnknownMarked sums the daemon's "marked unknown" warnings over its starts.
func crashUnknownMarked(log string) int {
	total := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "interrupted while sending") {
			continue
		}
		var rec struct {
			Count int `json:"count"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil {
			total += rec.Count
		}
	}
	return total
}

func countsString(n map[string]int) string {
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}

type crashRun struct {
	id, waitSeq, stepSeq int64
	contact, flow        string
	status, step         string
	entryText            string
	started, ended       int64
}

type crashOut struct {
	id, run               int64
	step, contact, status string
	sentAs, kind, text    string
	created               int64
}

type crashVerifier struct {
	t        *testing.T
	db       *sql.DB
	fake     *whatsapptest.Fake
	contacts []*crashContact

	byToken    map[string]*crashMsg
	results    map[string]string // token -> inbox result
	msgRows    int
	statusRows int
	// processedOK counts message rows processed without error.
	processedOK int
	runRows     []*crashRun
	outRows     []*crashOut
	outByRun    map[int64][]*crashOut
	runByID     map[int64]*crashRun

	dups, lostSends, unknownReached, unknownAll, resent, seen131047 int
}

func (v *crashVerifier) load() {
	t := v.t
	v.byToken = map[string]*crashMsg{}
	for _, c := range v.contacts {
		for _, m := range c.msgs {
			v.byToken[m.token] = m
		}
	}
	r, err := v.db.Query(`SELECT id, contact, flow_id, status, step, wait_seq, step_seq, entry, started_at, COALESCE(ended_at, 0) FROM runs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	v.runByID = map[int64]*crashRun{}
	for r.Next() {
		run := &crashRun{}
		var entry []byte
		if err := r.Scan(&run.id, &run.contact, &run.flow, &run.status, &run.step, &run.waitSeq, &run.stepSeq, &entry, &run.started, &run.ended); err != nil {
			t.Fatal(err)
		}
		var e struct {
			Text string `json:"text"`
		}
		json.Unmarshal(entry, &e)
		run.entryText = e.Text
		v.runRows = append(v.runRows, run)
		v.runByID[run.id] = run
	}
	r.Close()
	r, err = v.db.Query(`SELECT id, run_id, step, contact, status, sent_as, kind, payload, created_at FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	v.outByRun = map[int64][]*crashOut{}
	for r.Next() {
		o := &crashOut{}
		var payload []byte
		if err := r.Scan(&o.id, &o.run, &o.step, &o.contact, &o.status, &o.sentAs, &o.kind, &payload, &o.created); err != nil {
			t.Fatal(err)
		}
		var m whatsapp.Message
		json.Unmarshal(payload, &m)
		switch {
		case m.Text != nil:
			o.text = m.Text.Body
		case m.Interactive != nil && m.Interactive.Body != nil:
			o.text = m.Interactive.Body.Text
		}
		v.outRows = append(v.outRows, o)
		v.outByRun[o.run] = append(v.outByRun[o.run], o)
	}
	r.Close()
}

// usernames: a user who hides their number is one contact, keyed by the
// BSUID, with no number and no contact keyed by the number; everything sent
// to them went to the BSUID ("recipient").
func (v *crashVerifier) usernames() {
	t := v.t
	users, sent := 0, 0
	for _, c := range v.contacts {
		if !c.user {
			continue
		}
		users++
		var n int
		var phone, userID, username string
		if err := v.db.QueryRow("SELECT COUNT(*), COALESCE(MAX(phone), ''), COALESCE(MAX(user_id), ''), COALESCE(MAX(username), '') FROM contacts WHERE wa_id IN (?, ?)", c.key, c.waID).
			Scan(&n, &phone, &userID, &username); err != nil {
			t.Fatal(err)
		}
		if n != 1 || phone != "" || userID != c.key || username == "" {
			t.Errorf("username contact %s: %d rows, phone %q, user_id %q, username %q", c.key, n, phone, userID, username)
		}
		for _, s := range v.fake.SentTo(c.key) {
			sent++
			if s.To != "" || s.Recipient != c.key {
				t.Errorf("message %s to username contact %s addressed to %q/%q", s.ID, c.key, s.To, s.Recipient)
			}
		}
	}
	Report(t, "crash.usernames", "%d contacts known only by a BSUID, %d messages sent to them by recipient", users, sent)
}

// inbox: every message has one processed row without error; statuses too.
func (v *crashVerifier) inbox() {
	t := v.t
	v.results = map[string]string{}
	r, err := v.db.Query(`SELECT key, kind, processed_at IS NOT NULL, result FROM inbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	byWamid := map[string]*crashMsg{}
	for _, m := range v.byToken {
		byWamid[m.wamid] = m
	}
	for r.Next() {
		var key, kind, result string
		var processed bool
		if err := r.Scan(&key, &kind, &processed, &result); err != nil {
			t.Fatal(err)
		}
		if !processed || strings.HasPrefix(result, "error") {
			t.Errorf("inbox %s: processed %v, result %q", key, processed, result)
		} else if kind == "message" {
			v.processedOK++
		}
		switch kind {
		case "message":
			v.msgRows++
			m := byWamid[strings.TrimPrefix(key, "message:")]
			if m == nil {
				t.Errorf("inbox row %s was never sent", key)
				continue
			}
			if _, dup := v.results[m.token]; dup {
				t.Errorf("inbox holds %s twice", key)
			}
			v.results[m.token] = result
		case "status":
			v.statusRows++
		}
	}
	if v.msgRows != len(v.byToken) {
		t.Errorf("inbox has %d message rows for %d acknowledged messages", v.msgRows, len(v.byToken))
	}
	// The window runs from each contact's latest message's own timestamp.
	for _, c := range v.contacts {
		var last sql.NullInt64
		if err := v.db.QueryRow("SELECT last_inbound_at FROM contacts WHERE wa_id = ?", c.key).Scan(&last); err != nil {
			t.Errorf("contact %s: %v", c.key, err)
			continue
		}
		want := c.msgs[0].ts
		for _, m := range c.msgs {
			if m.ts.After(want) {
				want = m.ts
			}
		}
		if last.Int64 != want.UnixMilli() {
			t.Errorf("contact %s: last inbound %d, want %d", c.waID, last.Int64, want.UnixMilli())
		}
	}
}

// runs: each started message started exactly one run, each run has one start.
func (v *crashVerifier) runs() {
	t := v.t
	starts := map[string]int{}
	for _, r := range v.runRows {
		tok := tokenRE.FindString(r.entryText)
		m := v.byToken[tok]
		if m == nil {
			t.Errorf("run %d: entry %q names no message", r.id, r.entryText)
			continue
		}
		starts[tok]++
		if v.results[tok] != "started" {
			t.Errorf("run %d started from %s whose inbox result is %q", r.id, tok, v.results[tok])
		}
		if v.contacts[m.contact].key != r.contact {
			t.Errorf("run %d of %s started from %s of another contact", r.id, r.contact, tok)
		}
		wantFlow := "rel-menu"
		if m.referral != nil {
			wantFlow = "rel-ad"
		}
		if r.flow != wantFlow {
			t.Errorf("run %d from %q is in %s, want %s", r.id, m.text, r.flow, wantFlow)
		}
	}
	for tok, res := range v.results {
		if res == "started" && starts[tok] != 1 {
			t.Errorf("message %s started %d runs, want 1", tok, starts[tok])
		}
	}
	// No overlap of one contact's runs in one flow (no reentry while live).
	type cf struct{ c, f string }
	last := map[cf]*crashRun{}
	for _, r := range v.runRows { // ordered by id = start order
		k := cf{r.contact, r.flow}
		if p := last[k]; p != nil && (p.ended == 0 || r.started < p.ended) {
			t.Errorf("runs %d and %d of %s in %s overlap", p.id, r.id, r.contact, r.flow)
		}
		last[k] = r
	}
}

// answers: each resumed message was answered exactly once, and each answer
// answers one resumed message of the same contact.
func (v *crashVerifier) answers() {
	t := v.t
	answered := map[string]int{}
	for _, o := range v.outRows {
		if o.step != "code" && o.step != "thanks" && o.step != "answer" {
			continue
		}
		tok := tokenRE.FindString(o.text)
		m := v.byToken[tok]
		if m == nil || v.contacts[m.contact].key != o.contact {
			t.Errorf("outbox %d (%s) answers %q: no such message of %s", o.id, o.step, tok, o.contact)
			continue
		}
		answered[tok]++
		if v.results[tok] != "resumed" {
			t.Errorf("outbox %d answers %s whose inbox result is %q", o.id, tok, v.results[tok])
		}
	}
	for tok, res := range v.results {
		if res == "resumed" && answered[tok] != 1 {
			t.Errorf("reply %s was answered %d times, want 1", tok, answered[tok])
		}
	}
}

// paths: every run sent exactly the steps of one path of its flow.
func (v *crashVerifier) paths() {
	allowed := map[string]map[string]string{
		"rel-ad": {
			"intro code followup":   "completed",
			"intro thanks":          "completed",
			"intro nudge last-call": "completed",
		},
		"rel-menu": {
			"show answer bye": "completed",
			"show":            "expired",
		},
	}
	for _, r := range v.runRows {
		var steps []string
		for _, o := range v.outByRun[r.id] {
			steps = append(steps, o.step)
		}
		path := strings.Join(steps, " ")
		status, ok := allowed[r.flow][path]
		if !ok || status != r.status {
			v.t.Errorf("run %d (%s, %s) sent %q: not a path of the flow", r.id, r.flow, r.status, path)
		}
	}
}

func (v *crashVerifier) endState() {
	t := v.t
	for q, what := range map[string]string{
		"SELECT COUNT(*) FROM runs WHERE ended_at IS NULL":                    "live runs",
		"SELECT COUNT(*) FROM timers":                                         "timers",
		"SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')":  "pending or sending messages",
		"SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL":               "unprocessed inbox rows",
		"SELECT COUNT(*) FROM outbox WHERE status IN ('failed', 'cancelled')": "failed or cancelled messages",
	} {
		if n := QueryInt(t, v.db, q); n != 0 {
			t.Errorf("at the end: %d %s", n, what)
		}
	}
}

// sends: the fake against the outbox.
func (v *crashVerifier) sends() {
	t := v.t
	byID := map[int64]*crashOut{}
	for _, o := range v.outRows {
		byID[o.id] = o
	}
	reached := map[int64]int{}
	for _, s := range v.fake.Sent() {
		id := parseCallback(s.Message.BizOpaqueCallbackData)
		o := byID[id]
		if o == nil {
			t.Errorf("the fake accepted %s with callback %q: no such outbox row", s.ID, s.Message.BizOpaqueCallbackData)
			continue
		}
		reached[id]++
		isTemplate := s.Message.Type == whatsapp.TypeTemplate
		if isTemplate != (o.sentAs == "fallback" || o.kind == "template") {
			t.Errorf("outbox %d (sent as %q) reached the fake as %s", id, o.sentAs, s.Message.Type)
		}
	}
	dups := v.fake.Duplicates()
	v.dups = len(dups)
	for cb := range dups {
		t.Errorf("sent twice: %s (%d times)", cb, dups[cb])
	}
	for _, o := range v.outRows {
		n := reached[o.id]
		switch o.status {
		case "sent", "delivered", "read":
			if n != 1 {
				t.Errorf("outbox %d is %s but reached the fake %d times", o.id, o.status, n)
			}
		case "unknown":
			// Never settled by a status, even after it was sent once more:
			// if it never reached the fake, the contact never got it.
			if n == 0 {
				v.lostSends++
				t.Errorf("outbox %d is unknown and never reached the fake: lost", o.id)
			} else {
				t.Errorf("outbox %d is unknown but reached the fake %d times (its status was never processed)", o.id, n)
			}
		default:
			if n != 0 {
				t.Errorf("outbox %d is %s but reached the fake %d times", o.id, o.status, n)
			}
		}
	}
	// Unknown rows that reached the fake were settled by their status (their
	// last_error still tells they were unknown); the others were sent once
	// more (resends).
	v.unknownReached = int(QueryInt(t, v.db, `SELECT COUNT(*) FROM outbox WHERE status != 'unknown' AND resends = 0
		AND (last_error LIKE 'interrupted while sending%' OR last_error LIKE 'outcome unknown%')`))
	v.resent = int(QueryInt(t, v.db, `SELECT COUNT(*) FROM outbox WHERE resends > 0`))
	v.unknownAll = v.unknownReached + v.resent + int(QueryInt(t, v.db, `SELECT COUNT(*) FROM outbox WHERE status = 'unknown' AND resends = 0`))
	for _, a := range v.fake.Attempts() {
		if a.Code == 131047 {
			v.seen131047++
		}
	}
	if v.seen131047 > 0 {
		t.Errorf("the fake answered 131047 %d times: a free-form message went out with the window closed", v.seen131047)
	}
}

func (v *crashVerifier) code(c int) int {
	n := 0
	for _, a := range v.fake.Attempts() {
		if a.Code == c {
			n++
		}
	}
	return n
}

// timers: every live timer that fell due while the daemon was down fired
// after the restart: its run moved on, and a wait's next send was created
// after the restart.
func (v *crashVerifier) timers(due []crashTimer) {
	next := map[string]string{"later": "followup", "wait-more": "last-call", "pause": "bye"}
	for _, tm := range due {
		r := v.runByID[tm.run]
		if r == nil {
			v.t.Errorf("timer %d: run %d is gone", tm.id, tm.run)
			continue
		}
		if r.waitSeq <= tm.seq {
			v.t.Errorf("timer %d (%s at %s) due while down never fired: run %d still at wait %d", tm.id, tm.kind, tm.step, r.id, r.waitSeq)
			continue
		}
		if tm.kind != "wait" {
			continue // a reply that was already stored may have come first
		}
		found := false
		for _, o := range v.outByRun[r.id] {
			if o.step == next[tm.step] {
				found = true
				if o.created < tm.restart.UnixMilli() {
					v.t.Errorf("timer %d of run %d: %s created at %d, before the restart at %d", tm.id, r.id, o.step, o.created, tm.restart.UnixMilli())
				}
			}
		}
		if !found {
			v.t.Errorf("timer %d of run %d (wait at %s) fired without sending %s", tm.id, r.id, tm.step, next[tm.step])
		}
	}
}

func (v *crashVerifier) kindCounts() string {
	n := map[string]int{}
	for _, c := range v.contacts {
		n[kindNames[c.kind]]++
	}
	return countsString(n)
}

func (v *crashVerifier) resultCounts() string {
	n := map[string]int{}
	for _, r := range v.results {
		n[r]++
	}
	return countsString(n)
}

func (v *crashVerifier) runCounts() string {
	n := map[string]int{}
	for _, r := range v.runRows {
		n[r.flow+" "+r.status]++
	}
	return countsString(n)
}

func (v *crashVerifier) outCounts() string {
	n := map[string]int{}
	for _, o := range v.outRows {
		k := o.status
		if o.sentAs == "fallback" {
			k += " (fallback)"
		}
		n[k]++
	}
	return countsString(n)
}

func (v *crashVerifier) closingCounts() string {
	closing := map[string]bool{}
	for _, c := range v.contacts {
		if c.kind == kindClosing {
			closing[c.key] = true
		}
	}
	n := map[string]int{}
	for _, o := range v.outRows {
		if !closing[o.contact] {
			continue
		}
		k := o.status
		switch {
		case o.sentAs == "fallback":
			k = "fallback template"
		case k == "delivered" || k == "sent" || k == "read":
			k = "free-form in the window"
		}
		n[k]++
	}
	return countsString(n)
}

func parseCallback(s string) int64 {
	var id int64
	fmt.Sscanf(strings.TrimPrefix(s, "funnel:"), "%d", &id)
	return id
}

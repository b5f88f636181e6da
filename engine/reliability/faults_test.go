package reliability

// Fault injection in process: the real HTTP server, engine and SQLite store,
// wired like `funnel serve` (engine/server/e2e_test.go shows the same wiring)
// around the fake Graph API of whatsapptest, on a virtual clock the tests move.
//
//   - Graph API faults: 5xx, 130429, 131056, timeouts and dropped connections at
//     random, permanent refusals per recipient, a stopped sender (190, 368, 10,
//     131048);
//   - webhook faults: redeliveries, statuses out of order or for unknown
//     messages, bursts of 100 messages in one POST, a reply racing its timeout;
//   - storage faults: a store that refuses writes (store.Faulty), the database
//     locked by another connection, a full disk (a small tmpfs, when root).
//
// Every test ends by checking the books: nothing lost, nothing sent twice, every
// unknown outcome counted and cross-checked with what the fake accepted. The
// figures go to the log and, through Report, to scripts/reliability.sh. With
// FUNNEL_RELIABILITY=ci or full the Graph API test drives thousands of sends
// (FUNNEL_FAULT_CONTACTS overrides the number of contacts).

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

const (
	fPhone    = whatsapptest.DefaultPhoneNumberID
	fAPIToken = "fault-api-token-0123456789abcdef0123"
	fVerify   = "fault-verify-token"
)

// fOptions configure an in-process rig.
type fOptions struct {
	flows     []string // flow documents
	templates string   // catalog YAML, "" for none
	fake      whatsapptest.Options
	// fakeWallClock leaves the fake on the wall clock (its rate limiter then
	// measures real throughput) while the engine runs on the virtual clock.
	fakeWallClock bool
	pacing        bool    // the engine paces sends (NoPacing otherwise)
	rate          float64 // engine messages per second (pacing)
	sendTimeout   time.Duration
	concurrency   int    // concurrent API calls (engine default when 0)
	faulty        bool   // wrap the store in store.Faulty
	dbDir         string // where the database lives ("" = a temp dir)
	appSecret     *string
	maxBody       int64
}

// fRig is the daemon's parts wired over real HTTP.
type fRig struct {
	t      testing.TB
	ctx    context.Context
	clock  *engine.VirtualClock
	fake   *whatsapptest.Fake
	db     *store.DB
	dbPath string
	faulty *store.Faulty
	eng    *engine.Engine
	m      *engine.Metrics
	reg    *prometheus.Registry
	srv    *server.Server
	hs     *httptest.Server
	secret string
	n      atomic.Int64
	client *http.Client

	roOnce sync.Once
	ro     *sql.DB
}

func fLogger() *slog.Logger {
	if os.Getenv("FUNNEL_FAULT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newFRig(t testing.TB, o fOptions) *fRig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	for i, f := range o.flows {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("flow%d.yaml", i)), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dopts := dsl.Options{}
	if o.templates != "" {
		dopts.Templates = filepath.Join(dir, "templates.yaml")
		if err := os.WriteFile(dopts.Templates, []byte(o.templates), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, diags, err := dsl.Load([]string{dir}, dopts)
	if err != nil || diags.HasErrors() {
		var b bytes.Buffer
		dsl.WriteDiagnostics(&b, "text", diags, dsl.FormatOptions{})
		t.Fatalf("flows: %v\n%s", err, b.String())
	}
	clock := engine.NewVirtualClock(time.Now().UTC().Truncate(time.Second))
	fo := o.fake
	if !o.fakeWallClock {
		fo.Now = clock.Now
	}
	fake := whatsapptest.New(t, fo)
	dbDir := o.dbDir
	if dbDir == "" {
		dbDir = t.TempDir()
	}
	dbPath := filepath.Join(dbDir, "funnel.db")
	db, err := store.Open(ctx, dbPath, store.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	r := &fRig{t: t, ctx: ctx, clock: clock, fake: fake, db: db, dbPath: dbPath}
	t.Cleanup(func() {
		if r.ro != nil {
			r.ro.Close()
		}
		db.Close()
	})
	var st store.Store = db
	if o.faulty {
		r.faulty = store.NewFaulty(db, 7)
		st = r.faulty
	}
	r.reg = prometheus.NewRegistry()
	r.m = engine.NewMetrics(r.reg)
	log := fLogger()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	graph := &whatsapp.Client{BaseURL: fake.URL(), Token: fake.Token(), HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	// At-most-once for unknown outcomes: these checks hold every request
	// against every row (an unknown row never retried) while drain moves the
	// virtual clock by hours. Sending once more after resend_unknown_after is
	// checked by the engine's sender tests and the crash test.
	r.eng = engine.New(st, engine.Options{Clock: clock, Channel: engine.GraphChannel{Client: graph},
		NoPacing: !o.pacing, Rate: o.rate, SendTimeout: o.sendTimeout, SendConcurrency: o.concurrency,
		PhoneNumberID: fPhone, Metrics: r.m, Logger: log, ResendUnknownAfter: -1})
	if err := r.eng.Load(ctx, p, diags); err != nil {
		t.Fatal(err)
	}
	r.secret = fake.AppSecret()
	if o.appSecret != nil {
		r.secret = *o.appSecret
	}
	r.srv = server.New(server.Config{AppSecret: r.secret, VerifyToken: fVerify, APIToken: fAPIToken, MaxBody: o.maxBody},
		r.eng, r.reg, log)
	r.hs = httptest.NewServer(r.srv.Handler())
	r.client = &http.Client{Timeout: 2 * time.Minute}
	t.Cleanup(func() { r.hs.Close(); r.srv.Close() })
	return r
}

// text is an inbound text message written now (virtual time), with a fresh id.
func (r *fRig) text(from, body string) whatsapp.InboundMessage {
	return whatsapp.InboundMessage{From: from, ID: fmt.Sprintf("wamid.fault.%d", r.n.Add(1)),
		Timestamp: whatsapp.Timestamp(strconv.FormatInt(r.clock.Now().Unix(), 10)), Type: whatsapp.InText,
		Text: &whatsapp.InboundText{Body: body}}
}

// fEnvelope builds one webhook body carrying msgs (from any contacts, in this
// order, in one change) and statuses, as Meta batches them.
func fEnvelope(msgs []whatsapp.InboundMessage, names map[string]string, statuses ...whatsapp.Status) []byte {
	v := whatsapp.Value{MessagingProduct: "whatsapp",
		Metadata: whatsapp.Metadata{DisplayPhoneNumber: whatsapptest.DefaultDisplayPhoneNumber, PhoneNumberID: fPhone},
		Messages: msgs, Statuses: statuses}
	seen := map[string]bool{}
	for _, m := range msgs {
		if !seen[m.From] {
			seen[m.From] = true
			v.Contacts = append(v.Contacts, whatsapp.Contact{Profile: whatsapp.Profile{Name: names[m.From]}, WaID: m.From})
		}
	}
	env := whatsapp.Envelope{Object: whatsapp.ObjectWhatsApp, Entry: []whatsapp.Entry{{ID: whatsapptest.DefaultWABAID,
		Changes: []whatsapp.Change{{Field: "messages", Value: v}}}}}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

// webhook builds a signed body for msgs and tells the fake the contacts wrote
// (which opens their window there, as Meta's own records would).
func (r *fRig) webhook(msgs ...whatsapp.InboundMessage) []byte {
	names := map[string]string{}
	for _, m := range msgs {
		names[m.From] = "Contact " + m.From[len(m.From)-4:]
		if ts, err := m.Timestamp.Time(); err == nil {
			r.fake.Inbound(m.From, ts)
		}
	}
	return fEnvelope(msgs, names)
}

// do sends one request and returns the status and body.
func (r *fRig) do(method, path string, body []byte, header map[string]string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.hs.URL+path, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post delivers a webhook body signed with the rig's secret.
func (r *fRig) post(body []byte) int {
	r.t.Helper()
	code, _ := r.do("POST", "/webhook", body, map[string]string{whatsapp.SignatureHeader: whatsapp.Sign(r.secret, body)})
	return code
}

// deliver posts msgs as one webhook and requires a 200.
func (r *fRig) deliver(msgs ...whatsapp.InboundMessage) []byte {
	r.t.Helper()
	body := r.webhook(msgs...)
	if code := r.post(body); code != 200 {
		r.t.Fatalf("webhook: %d", code)
	}
	return body
}

// deliverStatus posts the fake's signed status webhook for an accepted message.
func (r *fRig) deliverStatus(wamid, status string, code int) int {
	r.t.Helper()
	body, _, err := r.fake.StatusWebhook(wamid, status, code)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.post(body)
}

func (r *fRig) settle() {
	r.t.Helper()
	if err := r.eng.RunUntilIdle(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

// drain runs the engine, moving the virtual clock to every due retry and timer,
// until nothing is left to do (at most limit of virtual time).
func (r *fRig) drain(limit time.Duration) {
	r.t.Helper()
	end := r.clock.Now().Add(limit)
	for {
		target := r.clock.Now().Add(10 * time.Minute)
		if target.After(end) {
			target = end
		}
		if err := r.eng.AdvanceTo(r.ctx, r.clock, target, nil); err != nil {
			r.t.Fatal(err)
		}
		if r.open() == 0 && r.q("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL") == 0 {
			return
		}
		if !r.clock.Now().Before(end) {
			r.t.Fatalf("not drained after %v of virtual time: %d messages still open", limit, r.open())
		}
	}
}

// q runs a counting query on a read-only connection to the database.
func (r *fRig) q(query string, args ...any) int64 {
	r.t.Helper()
	r.roOnce.Do(func() {
		var err error
		r.ro, err = sql.Open("sqlite3", "file:"+r.dbPath+"?mode=ro&_busy_timeout=10000")
		if err != nil {
			r.t.Fatal(err)
		}
	})
	var n int64
	if err := r.ro.QueryRow(query, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// open is the number of messages pending or being sent.
func (r *fRig) open() int64 {
	return r.q("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')")
}

var fStatuses = []string{store.OutPending, store.OutSending, store.OutSent, store.OutDelivered, store.OutRead,
	store.OutFailed, store.OutWindowClosed, store.OutOptedOut, store.OutNoConsent, store.OutUnknown, store.OutCancelled}

// outbox is every outbox row, by id.
func (r *fRig) outbox() map[int64]*store.OutboxItem {
	r.t.Helper()
	out := map[int64]*store.OutboxItem{}
	for _, s := range fStatuses {
		items, err := r.db.OutboxWhere(r.ctx, s, 1_000_000)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, it := range items {
			out[it.ID] = it
		}
	}
	return out
}

// byStatus counts rows per status.
func fByStatus(rows map[int64]*store.OutboxItem) map[string]int {
	out := map[string]int{}
	for _, it := range rows {
		out[it.Status]++
	}
	return out
}

// sentTexts is what the fake accepted for waID: text bodies, template names.
func (r *fRig) sentTexts(waID string) []string {
	var out []string
	for _, s := range r.fake.SentTo(waID) {
		out = append(out, fMessageText(&s.Message))
	}
	return out
}

func fMessageText(m *whatsapp.Message) string {
	switch {
	case m.Text != nil:
		return m.Text.Body
	case m.Template != nil:
		return "template:" + m.Template.Name
	case m.Interactive != nil && m.Interactive.Body != nil:
		return m.Interactive.Body.Text
	}
	return m.Type
}

// callbackOf reads biz_opaque_callback_data from a request body (the fake
// decodes bodies only for requests it processed).
func fCallbackOf(body []byte) string {
	var m struct {
		Callback string `json:"biz_opaque_callback_data"`
	}
	_ = json.Unmarshal(body, &m)
	return m.Callback
}

func fWaID(i int) string { return fmt.Sprintf("1555%07d", i) }

// ---- Graph API faults ----

// fFaultsFlow answers every message: two texts in a row (order matters), or a
// MARKETING template, or a template whose parameters the fake refuses.
const fFaultsFlow = `
flow: faults
language: en_US
assume_opt_in: true
trigger: message
steps:
  - id: pick
    branch:
      - if: entry.text == "promo"
        goto: promo
      - if: entry.text == "broken"
        goto: broken
  - id: one
    send: "1/2 for ${contact.name}"
  - id: two
    send: "2/2 for ${contact.name}"
    next: done
  - id: promo
    send: {template: promo_offer, params: ["${contact.name}"]}
    next: done
  - id: broken
    send: {template: order_note, params: ["${contact.name}"]}
  - id: done
    end: true
`

const fFaultsTemplates = `
templates:
  - {name: promo_offer, language: en_US, category: MARKETING, status: APPROVED, body: "Hi {{1}}! 20% off today."}
  - {name: order_note, language: en_US, category: UTILITY, status: APPROVED, body: "Hi {{1}}, about your order."}
`

// fFaultTemplates is what the fake knows: order_note takes two parameters
// there, so every send of it fails with 132000 (the catalog went stale).
var fFaultTemplates = []whatsapptest.Template{
	{Name: "promo_offer", Language: "en_US", Category: "MARKETING", Params: 1},
	{Name: "order_note", Language: "en_US", Category: "UTILITY", Params: 2},
}

// fAttemptResult is what the engine saw of one request the fake received.
func fAttemptResult(a whatsapptest.Attempt) (whatsapp.Class, string) {
	switch a.Fault {
	case whatsapptest.FaultDrop, whatsapptest.FaultDropAfterAccept:
		return whatsapp.Unknown, a.Fault.String()
	case whatsapptest.FaultSlow:
		return whatsapp.Unknown, "timeout"
	}
	if a.Code == 0 {
		return whatsapp.OK, "accepted"
	}
	return whatsapp.ClassifyCode(a.Code, a.HTTPStatus), strconv.Itoa(a.Code)
}

// TestGraphAPIFaults drives sends through the engine while the fake Graph API
// answers 5xx, 130429, 131056, drops connections (before and after accepting)
// and stalls past the send timeout at random, and refuses some recipients for
// good (131026, 131050, 132000). It checks every outbox row against every
// request the fake saw: sent rows were accepted exactly once, unknown rows are
// the drops and timeouts and were never retried, permanent refusals were tried
// once, retryable errors were retried until they went through, the engine's
// pacing never caused a 130429 from a fake limited to the same rate, and no
// message was accepted twice.
func TestGraphAPIFaults(t *testing.T) {
	contacts := 300
	if Level() != "" {
		contacts = 1500
	}
	contacts = EnvInt("FUNNEL_FAULT_CONTACTS", contacts)
	const rate = 400
	seed := uint64(EnvInt("FUNNEL_FAULT_SEED", 20260701))
	// About 21% of requests fail; FUNNEL_FAULT_SCALE multiplies every rate.
	scale := 1.0
	if v, err := strconv.ParseFloat(os.Getenv("FUNNEL_FAULT_SCALE"), 64); err == nil && v > 0 && v <= 4 {
		scale = v
	}
	faults := whatsapptest.Faults{Seed: seed, HTTP500: 0.08 * scale, RateLimit: 0.05 * scale, PairRate: 0.04 * scale,
		Drop: 0.015 * scale, DropAfterAccept: 0.015 * scale, Slow: 0.01 * scale}
	r := newFRig(t, fOptions{
		flows: []string{fFaultsFlow}, templates: fFaultsTemplates, fakeWallClock: true,
		fake: whatsapptest.Options{Templates: fFaultTemplates, Rate: rate, Faults: faults, SlowDelay: 2 * time.Second},
		// The send timeout is generous for a loaded machine, and well under the
		// fake's stall.
		pacing: true, rate: rate, sendTimeout: 500 * time.Millisecond,
	})

	// Recipients: every 20th is not on WhatsApp (131026), one in 20 asks for
	// the promotion but blocked marketing (131050), one in 20 gets the
	// template the fake no longer agrees with (132000), one in 20 gets the
	// promotion, the rest two texts.
	kind := func(i int) string {
		switch i % 20 {
		case 0:
			return "unreachable"
		case 1:
			return "optedout"
		case 2:
			return "broken"
		case 3:
			return "promo"
		}
		return "texts"
	}
	wantRows := 0
	var msgs []whatsapp.InboundMessage
	for i := 0; i < contacts; i++ {
		wa := fWaID(i)
		body := "hello"
		switch kind(i) {
		case "unreachable":
			r.fake.Unreachable(wa)
			wantRows += 2
		case "optedout":
			r.fake.OptOut(wa)
			body = "promo"
			wantRows++
		case "broken":
			body = "broken"
			wantRows++
		case "promo":
			body = "promo"
			wantRows++
		default:
			wantRows += 2
		}
		msgs = append(msgs, r.text(wa, body))
	}
	start := time.Now()
	for i := 0; i < len(msgs); i += 100 {
		r.deliver(msgs[i:min(i+100, len(msgs))]...)
	}
	r.drain(6 * time.Hour)
	elapsed := time.Since(start)

	rows := r.outbox()
	if len(rows) != wantRows {
		t.Fatalf("%d outbox rows, want %d", len(rows), wantRows)
	}
	attempts := r.fake.Attempts()
	byRow := map[string][]whatsapptest.Attempt{}
	faultCount := map[string]int{}
	pacing429 := 0
	for _, a := range attempts {
		byRow[fCallbackOf(a.Body)] = append(byRow[fCallbackOf(a.Body)], a)
		if a.Fault != whatsapptest.FaultNone {
			faultCount[a.Fault.String()]++
		}
		if a.Code == 130429 && a.Fault == whatsapptest.FaultNone {
			pacing429++
		}
	}
	accepted := map[string][]whatsapptest.Sent{}
	for _, s := range r.fake.Sent() {
		cb := s.Message.BizOpaqueCallbackData
		accepted[cb] = append(accepted[cb], s)
	}

	var unknownAccepted, unknownNot, unknownOther, permanent, retries, gaveUp int
	permanentCodes := map[int]int{}
	for id, it := range rows {
		cb := engine.CallbackData(id)
		as := byRow[cb]
		if len(as) == 0 {
			t.Errorf("row %d (%s, %s): never reached the API", id, it.Contact, it.Status)
			continue
		}
		// Every attempt but the last saw a retryable error: nothing was given
		// up on a transient error, nothing retried after a final one.
		for _, a := range as[:len(as)-1] {
			if c, what := fAttemptResult(a); c != whatsapp.Retryable {
				t.Errorf("row %d: attempt %d ended %s (%v) yet the message was tried again", id, a.Seq, what, c)
			}
		}
		retries += len(as) - 1
		last := as[len(as)-1]
		class, what := fAttemptResult(last)
		got := accepted[cb]
		switch it.Status {
		case store.OutSent:
			if class != whatsapp.OK || len(got) != 1 || got[0].ID != it.ProviderID {
				t.Errorf("row %d sent as %q: last attempt %s, fake accepted %d", id, it.ProviderID, what, len(got))
			}
		case store.OutUnknown:
			if class != whatsapp.Unknown {
				unknownOther++ // a request that timed out on a loaded machine
			}
			switch len(got) {
			case 0:
				unknownNot++
			case 1:
				unknownAccepted++
			default:
				t.Errorf("row %d unknown, but the fake accepted it %d times", id, len(got))
			}
		case store.OutFailed:
			if len(got) != 0 {
				t.Errorf("row %d failed, yet the fake accepted it", id)
			}
			switch class {
			case whatsapp.Permanent:
				permanent++
				permanentCodes[it.ErrorCode]++
				if strconv.Itoa(it.ErrorCode) != what {
					t.Errorf("row %d failed with %d, the API said %s", id, it.ErrorCode, what)
				}
			case whatsapp.Retryable:
				gaveUp++ // MaxAttempts retryable errors in a row
			default:
				t.Errorf("row %d failed after %s", id, what)
			}
		default:
			t.Errorf("row %d ended %s (last attempt %s)", id, it.Status, what)
		}
		// What each kind of recipient must end as, unless a drop or a timeout
		// made the outcome unknown first.
		if it.Status != store.OutUnknown && !(it.Status == store.OutFailed && class == whatsapp.Retryable) {
			want := map[string]string{"unreachable": "failed/131026", "optedout": "failed/131050", "broken": "failed/132000",
				"promo": "sent/0", "texts": "sent/0"}
			i, _ := strconv.Atoi(it.Contact[4:])
			if got := it.Status + "/" + strconv.Itoa(it.ErrorCode); got != want[kind(i)] {
				t.Errorf("row %d to a %s recipient: %s, want %s", id, kind(i), got, want[kind(i)])
			}
		}
	}
	for cb, ss := range accepted {
		if len(ss) > 1 {
			t.Errorf("%s accepted %d times", cb, len(ss))
		}
	}
	if d := r.fake.Duplicates(); len(d) > 0 {
		t.Errorf("duplicates at the fake: %v", d)
	}
	// Per contact, the second text never overtook the first.
	for i := 0; i < contacts; i++ {
		if kind(i) != "texts" {
			continue
		}
		sent := r.sentTexts(fWaID(i))
		if len(sent) == 2 && !strings.HasPrefix(sent[0], "1/2") {
			t.Errorf("contact %d: sent out of order: %q", i, sent)
		}
	}
	if pacing429 > 0 {
		t.Errorf("%d throughput errors (130429) not injected: the engine exceeded the rate it was configured with", pacing429)
	}
	if gaveUp > 0 {
		t.Logf("%d messages gave up after %d retryable errors in a row", gaveUp, 12)
	}

	// Meta's status webhooks settle the unknown outcomes: those the fake did
	// accept become delivered (matched by biz_opaque_callback_data), the
	// others stay unknown. Still nothing is sent again.
	reconciled := 0
	for id, it := range rows {
		if got := accepted[engine.CallbackData(id)]; it.Status == store.OutUnknown && len(got) == 1 {
			if code := r.deliverStatus(got[0].ID, "delivered", 0); code != 200 {
				t.Fatalf("status webhook: %d", code)
			}
			reconciled++
		}
	}
	r.drain(time.Hour)
	after := r.outbox()
	for id, it := range rows {
		if it.Status != store.OutUnknown {
			continue
		}
		got := accepted[engine.CallbackData(id)]
		switch a := after[id]; {
		case len(got) == 1 && (a.Status != store.OutDelivered || a.ProviderID != got[0].ID):
			t.Errorf("row %d: unknown, accepted as %s, after its delivered status: %s %q", id, got[0].ID, a.Status, a.ProviderID)
		case len(got) == 0 && a.Status != store.OutUnknown:
			t.Errorf("row %d: unknown and never accepted, now %s", id, a.Status)
		}
	}
	if n := len(r.fake.Attempts()); n != len(attempts) {
		t.Errorf("%d more requests after the statuses", n-len(attempts))
	}

	// The peak number of requests the fake saw within any one second.
	peak := 0
	for i, j := 0, 0; j < len(attempts); j++ {
		for attempts[j].At.Sub(attempts[i].At) >= time.Second {
			i++
		}
		peak = max(peak, j-i+1)
	}
	st := fByStatus(rows)
	t.Logf("contacts %d, messages %d, requests %d (%.0f/s, peak %d in 1s, limit %d/s), retries %d, %v",
		contacts, len(rows), len(attempts), float64(len(attempts))/elapsed.Seconds(), peak, rate, retries, elapsed.Round(time.Millisecond))
	t.Logf("outcomes %v; unknown: %d accepted by the fake, %d not, %d by a real timeout; permanent %v", st,
		unknownAccepted, unknownNot, unknownOther, permanentCodes)
	t.Logf("faults injected %v", faultCount)
	Report(t, "faults.graph.messages", "%d messages to %d contacts, %d requests, %d faults injected (%.0f%%) %v", len(rows), contacts, len(attempts), sumInts(faultCount),
		100*float64(sumInts(faultCount))/float64(len(attempts)), faultCount)
	Report(t, "faults.graph.outcomes", "sent %d, unknown %d (%d of them accepted by the fake, all %d reconciled to delivered by their status webhook), failed permanently %d %v, gave up %d, lost 0, duplicates 0, 130429 from pacing %d",
		st[store.OutSent], st[store.OutUnknown], unknownAccepted, reconciled, permanent, permanentCodes, gaveUp, pacing429)
}

func sumInts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// metric reads one sample of the server's /metrics ("" labels: the unlabelled one).
func (r *fRig) metric(name, labels string) (float64, bool) {
	r.t.Helper()
	code, body := r.do("GET", "/metrics", nil, nil)
	if code != 200 {
		r.t.Fatalf("/metrics: %d", code)
	}
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, want+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// ready is /readyz's status and the sender's state in /v1/status.
func (r *fRig) ready() (int, string) {
	code, _ := r.do("GET", "/readyz", nil, nil)
	_, body := r.do("GET", "/v1/status", nil, map[string]string{"Authorization": "Bearer " + fAPIToken})
	var v struct {
		Sender struct{ State string } `json:"sender"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	return code, v.Sender.State
}

// TestGraphAPIStopErrorsPauseTheSender: an expired token (190), a policy block
// (368) or a missing permission (10) stop the sender at the first answer: only
// the calls already in flight then reach the API (at most SendConcurrency, the
// rest of the round goes back to pending), every message stays pending (not
// failed, not retried into oblivion), funnel_sender_paused is 1 and /v1/status
// says stopped until ResumeSender (/readyz stays 200: webhooks are still taken);
// then everything goes out exactly once. The
// spam limit (131048) pauses for ten minutes and resumes by itself. The same
// holds with the daemon's pipelined send loop (Engine.Run), where two rounds
// may be out at once.
func TestGraphAPIStopErrorsPauseTheSender(t *testing.T) {
	cases := []struct {
		name, reason string
		on, off      func(*whatsapptest.Fake)
		selfResume   bool
	}{
		{"token expired 190", "error 190", func(f *whatsapptest.Fake) { f.SetTokenExpired(true) }, func(f *whatsapptest.Fake) { f.SetTokenExpired(false) }, false},
		{"policy block 368", "error 368", func(f *whatsapptest.Fake) { f.FailAll(368) }, func(f *whatsapptest.Fake) { f.FailAll(0) }, false},
		{"permission 10", "error 10", func(f *whatsapptest.Fake) { f.FailAll(10) }, func(f *whatsapptest.Fake) { f.FailAll(0) }, false},
		{"spam limit 131048", "error 131048 (spam rate limit)", func(f *whatsapptest.Fake) { f.FailAll(131048) }, func(f *whatsapptest.Fake) { f.FailAll(0) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const rate, concurrency = 1000, 4
			r := newFRig(t, fOptions{flows: []string{fFaultsFlow}, templates: fFaultsTemplates,
				fake: whatsapptest.Options{Templates: fFaultTemplates}, pacing: true, rate: rate, concurrency: concurrency})
			const contacts = 60
			var msgs []whatsapp.InboundMessage
			for i := 0; i < contacts; i++ {
				msgs = append(msgs, r.text(fWaID(i), "hello"))
			}
			r.deliver(msgs...)
			if _, err := r.eng.ProcessInbox(r.ctx); err != nil {
				t.Fatal(err)
			}
			tc.on(r.fake)
			for i := 0; i < 5; i++ {
				if _, err := r.eng.SendOutbox(r.ctx); err != nil {
					t.Fatal(err)
				}
			}
			calls := len(r.fake.Attempts())
			if calls == 0 || calls > concurrency {
				t.Fatalf("%d calls reached the API of a round of %d; want only those in flight at the first answer (1..%d)", calls, rate/4+1, concurrency)
			}
			if got := r.eng.Paused(); got != tc.reason {
				t.Fatalf("paused = %q, want %q", got, tc.reason)
			}
			if v, ok := r.metric("funnel_sender_paused", `reason="`+tc.reason+`"`); !ok || v != 1 {
				t.Fatalf("funnel_sender_paused{reason=%q} = %v (%v), want 1", tc.reason, v, ok)
			}
			if code, sender := r.ready(); code != 200 || sender != "stopped" {
				t.Fatalf("while stopped: /readyz %d, sender %q; want 200 and stopped", code, sender)
			}
			st := fByStatus(r.outbox())
			if st[store.OutPending] != 2*contacts || len(st) != 1 {
				t.Fatalf("the stop burned the queue: %v, want all %d pending", st, 2*contacts)
			}
			// More time passes; a stopped sender stays stopped.
			r.clock.Advance(5 * time.Minute)
			r.settle()
			if n := len(r.fake.Attempts()); n != calls {
				t.Fatalf("%d more calls while stopped", n-calls)
			}
			tc.off(r.fake)
			if tc.selfResume {
				r.clock.Advance(10 * time.Minute)
			} else {
				r.eng.ResumeSender()
			}
			r.drain(time.Hour)
			st = fByStatus(r.outbox())
			if st[store.OutSent] != 2*contacts {
				t.Fatalf("after resuming: %v, want all %d sent", st, 2*contacts)
			}
			r.fake.AssertNoDuplicates(t)
			if n := len(r.fake.Sent()); n != 2*contacts {
				t.Fatalf("the fake accepted %d messages, want %d", n, 2*contacts)
			}
			if v, _ := r.metric("funnel_sender_paused", `reason="`+tc.reason+`"`); v != 0 {
				t.Fatalf("funnel_sender_paused after resuming = %v", v)
			}
			if code, sender := r.ready(); code != 200 || sender != "sending" {
				t.Fatalf("after resuming: /readyz %d, sender %q", code, sender)
			}
			Report(t, "faults.stop."+strings.Fields(tc.name)[len(strings.Fields(tc.name))-1],
				"%d of %d pending messages reached the API before the sender stopped (%d calls at most in flight); %d sent once each after resuming", calls, 2*contacts, concurrency, 2*contacts)
		})
	}
}

// ---- webhook faults ----

// fEchoFlow starts on "start", then echoes every reply in order.
const fEchoFlow = `
flow: echo
trigger: {message: {keywords: [start]}}
steps:
  - id: hello
    send: "ready"
  - id: ask
    wait_for_reply: {}
  - id: echo
    send: "got ${reply.text}"
    next: ask
`

// fRaceFlow asks, then either the reply or the timeout decides, never both.
const fRaceFlow = `
flow: race
trigger: {message: {keywords: [go]}}
steps:
  - id: ask
    send: "reply within the hour"
  - id: wait
    wait_for_reply: {timeout: 1h, on_timeout: late}
  - id: replied
    send: "reply path"
    next: done
  - id: late
    send: "timeout path"
  - id: done
    end: true
`

// TestWebhookRedeliveries: Meta redelivers; the same POST three times (in a
// row, and concurrently), and the same status three times, change nothing
// after the first.
func TestWebhookRedeliveries(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}})
	const contacts = 40
	var bodies [][]byte
	for i := 0; i < contacts; i++ {
		bodies = append(bodies, r.webhook(r.text(fWaID(i), "start")))
	}
	posts := 0
	for i, b := range bodies {
		if i%2 == 0 {
			for k := 0; k < 3; k++ {
				if code := r.post(b); code != 200 {
					t.Fatalf("delivery %d of %d: %d", k, i, code)
				}
				posts++
			}
			continue
		}
		var wg sync.WaitGroup
		codes := make(chan int, 3)
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", r.hs.URL+"/webhook", bytes.NewReader(b))
				req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, b))
				resp, err := r.client.Do(req)
				if err != nil {
					codes <- 0
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != 200 {
				t.Fatalf("concurrent delivery of %d: %d", i, c)
			}
			posts++
		}
	}
	r.settle()
	// Statuses, each delivered three times (and one batch redelivered with
	// another status for the same message).
	for i := 0; i < contacts; i++ {
		sent := r.fake.SentTo(fWaID(i))
		if len(sent) != 1 {
			t.Fatalf("contact %d: %d messages after 3 deliveries, want 1", i, len(sent))
		}
		for k := 0; k < 3; k++ {
			for _, s := range []string{"sent", "delivered"} {
				if code := r.deliverStatus(sent[0].ID, s, 0); code != 200 {
					t.Fatalf("status: %d", code)
				}
				posts++
			}
		}
	}
	r.settle()
	if n := r.q("SELECT COUNT(*) FROM inbox"); n != 3*contacts {
		t.Fatalf("%d inbox rows, want %d (one per message and status)", n, 3*contacts)
	}
	if n := r.q("SELECT COUNT(*) FROM runs"); n != contacts {
		t.Fatalf("%d runs, want %d", n, contacts)
	}
	if n := r.q("SELECT COUNT(*) FROM message_statuses"); n != 2*contacts {
		t.Fatalf("%d statuses recorded, want %d", n, 2*contacts)
	}
	if st := fByStatus(r.outbox()); st[store.OutDelivered] != contacts {
		t.Fatalf("outbox %v, want %d delivered", st, contacts)
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.webhook.redelivery", "%d POSTs (each message and status 3x, half concurrently): %d events stored, %d runs, %d sends, 0 duplicates",
		posts, 3*contacts, contacts, len(r.fake.Sent()))
}

// TestWebhookStatusesOutOfOrder: statuses arrive in any order; the outbox keeps
// the furthest state (read > delivered > failed > sent). A delivered after a
// failed is proof of delivery and wins; a late sent or delivered never moves a
// message back; a status that arrives while the send is still in flight is
// merged with its result.
func TestWebhookStatusesOutOfOrder(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}})
	cases := []struct {
		statuses []string
		want     string
	}{
		{[]string{"read", "delivered", "sent"}, store.OutRead},
		{[]string{"delivered", "sent"}, store.OutDelivered},
		{[]string{"failed", "delivered"}, store.OutDelivered},
		{[]string{"delivered", "failed"}, store.OutDelivered},
		{[]string{"failed", "sent"}, store.OutFailed},
		{[]string{"read", "failed", "delivered", "sent"}, store.OutRead},
		{[]string{"sent", "sent", "read", "read"}, store.OutRead},
	}
	var msgs []whatsapp.InboundMessage
	for i := range cases {
		msgs = append(msgs, r.text(fWaID(i), "start"))
	}
	r.deliver(msgs...)
	r.settle()
	for i, tc := range cases {
		sent := r.fake.SentTo(fWaID(i))
		if len(sent) != 1 {
			t.Fatalf("case %d: %d sends", i, len(sent))
		}
		// Each status in its own POST and its own batch: the order is the
		// arrival order.
		for _, s := range tc.statuses {
			if code := r.deliverStatus(sent[0].ID, s, 131026); code != 200 {
				t.Fatal(code)
			}
			r.settle()
		}
		it := r.outbox()[fCallbackID(sent[0].Message.BizOpaqueCallbackData)]
		if it.Status != tc.want {
			t.Errorf("statuses %v: %s, want %s", tc.statuses, it.Status, tc.want)
		}
	}
	// All of a message's statuses in one POST, out of order: the same result.
	r.deliver(r.text(fWaID(50), "start"))
	r.settle()
	sent := r.fake.SentTo(fWaID(50))[0]
	var sts []whatsapp.Status
	for _, s := range []string{"read", "failed", "sent", "delivered"} {
		body, _, _ := r.fake.StatusWebhook(sent.ID, s, 131026)
		var env whatsapp.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, env.Entry[0].Changes[0].Value.Statuses...)
	}
	if code := r.post(fEnvelope(nil, nil, sts...)); code != 200 {
		t.Fatal(code)
	}
	r.settle()
	if it := r.outbox()[fCallbackID(sent.Message.BizOpaqueCallbackData)]; it.Status != store.OutRead {
		t.Errorf("one POST with read, failed, sent, delivered: %s, want read", it.Status)
	}

	// A status that arrives while the send is in flight: the channel delivers
	// and processes a "delivered" before returning the API's answer.
	t.Run("in flight", func(t *testing.T) {
		r3 := newFRig(t, fOptions{flows: []string{fEchoFlow}})
		ch := &fInflightChannel{r: r3, graph: engine.GraphChannel{Client: r3.fake.Client()}}
		r3.swapChannel(ch)
		r3.deliver(r3.text(fWaID(1), "start"))
		r3.settle()
		rows := r3.outbox()
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, it := range rows {
			if it.Status != store.OutDelivered || it.ProviderID == "" {
				t.Fatalf("a delivered status that arrived during the call was lost: %s %q", it.Status, it.ProviderID)
			}
		}
		if n := ch.calls.Load(); n != 1 {
			t.Fatalf("%d calls", n)
		}
	})
}

// swapChannel rebuilds the engine (same store, clock, flows) with another
// channel, and a server over it.
func (r *fRig) swapChannel(ch engine.Channel) {
	r.t.Helper()
	old := r.eng
	r.eng = engine.New(old.Store(), engine.Options{Clock: r.clock, Channel: ch, NoPacing: true, PhoneNumberID: fPhone, Logger: fLogger()})
	if err := r.eng.Load(r.ctx, old.Flows(), nil); err != nil {
		r.t.Fatal(err)
	}
	r.srv.Close()
	r.hs.Close()
	r.reg = prometheus.NewRegistry()
	r.srv = server.New(server.Config{AppSecret: r.secret, VerifyToken: fVerify, APIToken: fAPIToken}, r.eng, r.reg, fLogger())
	r.hs = httptest.NewServer(r.srv.Handler())
}

func fCallbackID(cb string) int64 { return engine.ParseCallbackData(cb) }

// fInflightChannel sends through the fake, then, before returning, has Meta's
// "delivered" webhook for that message arrive and be processed.
type fInflightChannel struct {
	r     *fRig
	graph engine.GraphChannel
	calls atomic.Int64
}

func (c *fInflightChannel) Send(ctx context.Context, phone string, m *whatsapp.Message) (string, error) {
	c.calls.Add(1)
	id, err := c.graph.Send(ctx, phone, m)
	if err != nil {
		return id, err
	}
	body, _, err := c.r.fake.StatusWebhook(id, "delivered", 0)
	if err != nil {
		return "", err
	}
	if code := c.r.post(body); code != 200 {
		return "", fmt.Errorf("status webhook: %d", code)
	}
	if _, err := c.r.eng.ProcessInbox(ctx); err != nil {
		return "", err
	}
	return id, nil
}

// TestWebhookStatusesForUnknownMessages: statuses for messages funnel never
// sent (another app on the number, a wiped database, forged callback data) are
// recorded and change nothing: no outbox row, no contact.
func TestWebhookStatusesForUnknownMessages(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}})
	r.deliver(r.text(fWaID(1), "start"))
	r.settle()
	before := r.outbox()
	ts := whatsapp.Timestamp(strconv.FormatInt(r.clock.Now().Unix(), 10))
	var sts []whatsapp.Status
	for i, cb := range []string{"", "funnel:999999", "funnel:abc", "funnel:-1", "funnel:", "other-app:42", strings.Repeat("x", 512)} {
		for _, s := range []string{"sent", "delivered", "read", "failed"} {
			sts = append(sts, whatsapp.Status{ID: fmt.Sprintf("wamid.unknown.%d", i), Status: s, Timestamp: ts,
				RecipientID: fWaID(900 + i), BizOpaqueCallbackData: cb})
		}
	}
	if code := r.post(fEnvelope(nil, nil, sts...)); code != 200 {
		t.Fatalf("statuses for unknown messages: %d", code)
	}
	r.settle()
	if n := r.q("SELECT COUNT(*) FROM inbox WHERE kind = 'status' AND result = 'status_old'"); n != int64(len(sts)) {
		t.Fatalf("%d of %d unknown statuses recorded as status_old", n, len(sts))
	}
	if n := r.q("SELECT COUNT(*) FROM contacts"); n != 1 {
		t.Fatalf("statuses created %d contacts", n-1)
	}
	after := r.outbox()
	for id, it := range before {
		if after[id].Status != it.Status || after[id].UpdatedAt != it.UpdatedAt {
			t.Fatalf("row %d changed: %s -> %s", id, it.Status, after[id].Status)
		}
	}
	if len(after) != len(before) {
		t.Fatal("a status created an outbox row")
	}
	Report(t, "faults.webhook.unknown-statuses", "%d statuses for unknown messages: recorded, nothing changed", len(sts))
}

// TestWebhookBursts: 100 messages in one POST, across 100 contacts, for one
// contact, and interleaved for 50 contacts: all stored, each contact's
// messages processed in the order Meta listed them.
func TestWebhookBursts(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}})
	// Across contacts.
	var msgs []whatsapp.InboundMessage
	for i := 0; i < 100; i++ {
		msgs = append(msgs, r.text(fWaID(i), "start"))
	}
	r.deliver(msgs...)
	r.settle()
	for i := 0; i < 100; i++ {
		if got := r.sentTexts(fWaID(i)); len(got) != 1 || got[0] != "ready" {
			t.Fatalf("contact %d: %q", i, got)
		}
	}
	// One contact, 100 messages in one POST.
	one := fWaID(500)
	msgs = []whatsapp.InboundMessage{r.text(one, "start")}
	for k := 1; k < 100; k++ {
		msgs = append(msgs, r.text(one, fmt.Sprintf("m%02d", k)))
	}
	r.deliver(msgs...)
	r.settle()
	got := r.sentTexts(one)
	if len(got) != 100 {
		t.Fatalf("one contact, 100 messages: %d replies", len(got))
	}
	for k := 1; k < 100; k++ {
		if want := fmt.Sprintf("got m%02d", k); got[k] != want {
			t.Fatalf("reply %d is %q, want %q: messages processed out of order", k, got[k], want)
		}
	}
	// 50 contacts, 2 messages each, interleaved in one POST.
	msgs = nil
	for k := 0; k < 3; k++ {
		for i := 600; i < 650; i++ {
			msgs = append(msgs, r.text(fWaID(i), []string{"start", "first", "second"}[k]))
		}
	}
	body := r.deliver(msgs...)
	r.settle()
	for i := 600; i < 650; i++ {
		if got := r.sentTexts(fWaID(i)); strings.Join(got, "|") != "ready|got first|got second" {
			t.Fatalf("contact %d: %q", i, got)
		}
	}
	if n := r.q("SELECT COUNT(*) FROM inbox"); n != 100+100+150 {
		t.Fatalf("%d inbox rows, want 350", n)
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.webhook.bursts", "3 POSTs of 100-150 messages (100 contacts; 1 contact; 50 contacts interleaved, %d KB): 350 stored, per-contact order kept, 0 duplicates", len(body)/1024)
}

// pathOf says which way a race contact went: "reply", "timeout", or what
// went wrong.
func (r *fRig) pathOf(waID string) string {
	got := r.sentTexts(waID)
	var paths []string
	for _, s := range got[min(1, len(got)):] {
		paths = append(paths, strings.TrimSuffix(s, " path"))
	}
	if len(paths) == 1 {
		return paths[0]
	}
	return fmt.Sprintf("%d paths %q", len(paths), got)
}

// TestWebhookReplyRacesItsTimeout: a contact answers just as its reply timeout
// fires. In one step (reply stored, timer due) the reply's own timestamp
// decides; a timer that fired first wins over a reply processed after it,
// however early the reply's own timestamp; and with the engine's loops running
// while replies and the clock race each other, every contact takes exactly one
// path.
func TestWebhookReplyRacesItsTimeout(t *testing.T) {
	// Reply and due timer in one step: the reply's own timestamp decides (a
	// reply written before the timeout resumes the wait, one written at or
	// after it does not).
	for _, tc := range []struct {
		name    string
		written time.Duration // after the question
		want    string
	}{{"same step, written before the timeout", time.Hour - time.Second, "reply"}, {"same step, written at the timeout", time.Hour, "timeout"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFRig(t, fOptions{flows: []string{fRaceFlow}})
			r.deliver(r.text(fWaID(1), "go"))
			r.settle()
			r.clock.Advance(tc.written)
			reply := r.text(fWaID(1), "yes")
			r.clock.Set(r.clock.Now().Add(time.Hour - tc.written)) // the timeout is due now
			r.deliver(reply)
			r.settle()
			if p := r.pathOf(fWaID(1)); p != tc.want {
				t.Fatalf("%s: %s, want %s", tc.name, p, tc.want)
			}
			if n := r.q("SELECT COUNT(*) FROM timers"); n != 0 {
				t.Fatalf("%d timers left", n)
			}
		})
	}
	t.Run("timer first", func(t *testing.T) {
		r := newFRig(t, fOptions{flows: []string{fRaceFlow}})
		r.deliver(r.text(fWaID(1), "go"))
		r.settle()
		early := r.text(fWaID(1), "yes") // written before the timeout…
		r.clock.Advance(time.Hour)
		if _, err := r.eng.FireTimers(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.deliver(early) // …delivered after it fired
		r.settle()
		if p := r.pathOf(fWaID(1)); p != "timeout" {
			t.Fatalf("timer fired, then the reply: %s, want timeout", p)
		}
		if n := r.q("SELECT COUNT(*) FROM inbox WHERE result = 'no_match'"); n != 1 {
			t.Fatalf("the late reply should be recorded as no_match")
		}
	})
	t.Run("racing loops", func(t *testing.T) {
		const contacts = 200
		r := newFRig(t, fOptions{flows: []string{fRaceFlow}})
		var msgs []whatsapp.InboundMessage
		for i := 0; i < contacts; i++ {
			msgs = append(msgs, r.text(fWaID(i), "go"))
		}
		r.deliver(msgs...)
		r.settle()
		ctx, cancel := context.WithCancel(r.ctx)
		done := make(chan error, 1)
		go func() { done <- r.eng.Run(ctx) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					t.Error("the engine did not stop")
				}
			})
		}
		defer stop()
		// Replies arrive in random order over HTTP while the clock crosses the
		// timeout in small steps.
		order := rand.Perm(contacts)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := 0; k < 40; k++ {
				r.clock.Advance(1*time.Hour/30 + time.Second)
				time.Sleep(3 * time.Millisecond)
			}
		}()
		errs := make(chan error, contacts)
		go func() {
			defer wg.Done()
			for _, i := range order {
				body := r.webhook(r.text(fWaID(i), "yes"))
				req, _ := http.NewRequest("POST", r.hs.URL+"/webhook", bytes.NewReader(body))
				req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, body))
				resp, err := r.client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("reply webhook: %d", resp.StatusCode)
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Wait (bounded: a hang is a failure) until every contact has taken a path.
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := 0
			for i := 0; i < contacts; i++ {
				if len(r.fake.SentTo(fWaID(i))) >= 2 {
					n++
				}
			}
			if n == contacts && r.q("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL") == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s only %d of %d contacts have taken a path", n, contacts)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		paths := map[string]int{}
		for i := 0; i < contacts; i++ {
			p := r.pathOf(fWaID(i))
			paths[p]++
			if p != "reply" && p != "timeout" {
				t.Errorf("contact %d: %s", i, p)
			}
		}
		if n := r.q("SELECT COUNT(*) FROM runs WHERE ended_at IS NULL"); n != 0 {
			t.Errorf("%d runs still live", n)
		}
		r.fake.AssertNoDuplicates(t)
		t.Logf("paths taken: %v", paths)
		Report(t, "faults.webhook.reply-vs-timeout", "%d contacts replying while the clock crossed their timeout (engine loops running): %d reply path, %d timeout path, 0 both, 0 neither",
			contacts, paths["reply"], paths["timeout"])
	})
}

// ---- storage faults ----

// fPingFlow is started through the events API.
const fPingFlow = `
flow: ping
trigger: {event: ping}
steps:
  - id: note
    set: {contact.pinged: "yes"}
`

// TestStorageRefusesWebhooksUntilStored: while the store refuses writes (before
// the transaction, midway through it, or at commit), every webhook and API
// event is answered 503, so Meta and API clients retry, and nothing of them is
// stored. Once the store recovers, the same deliveries are stored once and
// processed; redelivering them again changes nothing.
func TestStorageRefusesWebhooksUntilStored(t *testing.T) {
	for _, at := range []store.FaultPoint{store.FailBegin, store.FailMidway, store.FailCommit} {
		t.Run(at.String(), func(t *testing.T) {
			r := newFRig(t, fOptions{flows: []string{fEchoFlow, fPingFlow}, faulty: true})
			const posts, per = 20, 5
			var bodies [][]byte
			for p := 0; p < posts; p++ {
				var msgs []whatsapp.InboundMessage
				for k := 0; k < per; k++ {
					msgs = append(msgs, r.text(fWaID(p*per+k), "start"))
				}
				bodies = append(bodies, r.webhook(msgs...))
			}
			event := []byte(`{"name": "ping", "wa_id": "15559990001", "payload": {}}`)
			auth := map[string]string{"Authorization": "Bearer " + fAPIToken, "Idempotency-Key": "ping-1"}

			r.faulty.SetError(store.ErrInjectedFull, at)
			r.faulty.Down(store.ErrInjectedFull)
			for i, b := range bodies {
				if code := r.post(b); code != 503 {
					t.Fatalf("webhook %d while the store fails: %d, want 503", i, code)
				}
			}
			if code, body := r.do("POST", "/v1/events", event, auth); code != 503 {
				t.Fatalf("event while the store fails: %d %s, want 503", code, body)
			}
			if _, err := r.eng.Step(r.ctx); err == nil {
				t.Fatal("the engine did not notice the store failing")
			}
			if n := r.q("SELECT COUNT(*) FROM inbox"); n != 0 {
				t.Fatalf("%d events stored although every webhook was refused", n)
			}
			if v, _ := r.metric("funnel_webhooks_total", `result="store_error"`); v != posts {
				t.Fatalf("funnel_webhooks_total{result=store_error} = %v, want %d", v, posts)
			}
			// A store that cannot even be read makes the daemon unready, and the
			// contact API says so instead of answering wrong.
			r.faulty.SetReadsDown(true)
			if code, body := r.do("GET", "/readyz", nil, nil); code != 503 || !strings.Contains(body, "store") {
				t.Fatalf("/readyz with the store unreadable: %d %s", code, body)
			}
			if code, _ := r.do("GET", "/v1/contacts/"+fWaID(1), nil, map[string]string{"Authorization": "Bearer " + fAPIToken}); code != 500 {
				t.Fatalf("contact API with the store unreadable: %d, want 500", code)
			}
			r.faulty.SetReadsDown(false)

			// Intermittent: one failed commit in the middle of concurrent
			// deliveries fails its whole group; those are retried until stored.
			r.faulty.Up()
			r.faulty.FailNext(1)
			var refused atomic.Int64
			var wg sync.WaitGroup
			for _, b := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for try := 0; try < 20; try++ {
						req, _ := http.NewRequest("POST", r.hs.URL+"/webhook", bytes.NewReader(b))
						req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, b))
						resp, err := r.client.Do(req)
						if err == nil {
							resp.Body.Close()
							if resp.StatusCode == 200 {
								return
							}
						}
						refused.Add(1)
					}
					t.Error("a webhook was never stored")
				}()
			}
			wg.Wait()
			if code, body := r.do("POST", "/v1/events", event, auth); code != 202 {
				t.Fatalf("event after recovery: %d %s", code, body)
			}
			r.settle()
			for _, b := range bodies { // Meta redelivers once more
				if code := r.post(b); code != 200 {
					t.Fatal(code)
				}
			}
			r.settle()
			if n := r.q("SELECT COUNT(*) FROM inbox"); n != posts*per+1 {
				t.Fatalf("%d events stored, want %d", n, posts*per+1)
			}
			for i := 0; i < posts*per; i++ {
				if got := r.sentTexts(fWaID(i)); len(got) != 1 {
					t.Fatalf("contact %d: %q", i, got)
				}
			}
			if c, _ := r.db.Contact(r.ctx, "15559990001"); c == nil || c.Attributes["pinged"] != "yes" {
				t.Fatalf("the event flow did not run once the store recovered: %+v", c)
			}
			r.fake.AssertNoDuplicates(t)
			Report(t, "faults.storage.refused."+at.String(), "%d webhooks + 1 event refused with 503 while writes failed (%d injected), nothing stored; after recovery %d refused by an intermittent failure and retried; %d events stored once, %d replies, 0 duplicates",
				posts, r.faulty.Faults().WritesFailed, refused.Load(), posts*per+1, len(r.fake.Sent()))
		})
	}
}

// fMeta delivers a webhook the way Meta does: again until it gets a 200.
func (r *fRig) fMeta(body []byte, retried *atomic.Int64) error {
	for try := 0; try < 500; try++ {
		req, _ := http.NewRequest("POST", r.hs.URL+"/webhook", bytes.NewReader(body))
		req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(r.secret, body))
		resp, err := r.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		retried.Add(1)
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("webhook never acknowledged")
}

// TestStorageFlakyWhileRunning: a store that fails a quarter of all writes
// (midway through the transaction, or at commit) under the running daemon's
// loops, while Meta delivers messages and then their statuses, retrying until
// acknowledged. Every message is stored once, every reply sent once and in
// order, every status applied: the engine only gets late, it never loses or
// repeats anything, and nothing stays stuck.
func TestStorageFlakyWhileRunning(t *testing.T) {
	for _, at := range []store.FaultPoint{store.FailMidway, store.FailCommit} {
		t.Run(at.String(), func(t *testing.T) {
			const contacts = 120
			r := newFRig(t, fOptions{flows: []string{fFaultsFlow}, templates: fFaultsTemplates,
				fake: whatsapptest.Options{Templates: fFaultTemplates}, faulty: true})
			r.faulty.SetError(store.ErrInjectedLocked, at)
			r.faulty.SetRate(0.25)
			ctx, cancel := context.WithCancel(r.ctx)
			done := make(chan error, 1)
			go func() { done <- r.eng.Run(ctx) }()
			var once sync.Once
			stop := func() {
				once.Do(func() {
					cancel()
					select {
					case <-done:
					case <-time.After(30 * time.Second):
						t.Error("the engine did not stop")
					}
				})
			}
			defer stop()

			var retried atomic.Int64
			deliverAll := func(bodies [][]byte) {
				work := make(chan []byte)
				var wg sync.WaitGroup
				for w := 0; w < 8; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for b := range work {
							if err := r.fMeta(b, &retried); err != nil {
								t.Error(err)
							}
						}
					}()
				}
				for _, b := range bodies {
					work <- b
				}
				close(work)
				wg.Wait()
			}
			var bodies [][]byte
			for i := 0; i < contacts; i++ {
				bodies = append(bodies, r.webhook(r.text(fWaID(i), "hello")))
			}
			deliverAll(bodies)
			sent, ok := r.fake.WaitSent(2*contacts, 60*time.Second)
			if !ok {
				t.Fatalf("after 60s the fake accepted %d of %d messages; outbox %v", len(sent), 2*contacts, fByStatus(r.outbox()))
			}
			bodies = nil
			for _, s := range sent {
				b, _, err := r.fake.StatusWebhook(s.ID, "delivered", 0)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			deliverAll(bodies)
			deadline := time.Now().Add(60 * time.Second)
			for r.q("SELECT COUNT(*) FROM outbox WHERE status != 'delivered'")+r.q("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL") > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after 60s: outbox %v, %d events unprocessed", fByStatus(r.outbox()), r.q("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			stop()
			failed := r.faulty.Faults()
			r.faulty.Up()
			if n := r.q("SELECT COUNT(*) FROM inbox"); n != 3*contacts {
				t.Fatalf("%d events stored, want %d", n, 3*contacts)
			}
			if n := r.q("SELECT COUNT(*) FROM runs WHERE status = 'completed'"); n != contacts {
				t.Fatalf("%d runs completed, want %d", n, contacts)
			}
			for i := 0; i < contacts; i++ {
				if got := r.sentTexts(fWaID(i)); len(got) != 2 || !strings.HasPrefix(got[0], "1/2") || !strings.HasPrefix(got[1], "2/2") {
					t.Fatalf("contact %d got %q", i, got)
				}
			}
			r.fake.AssertNoDuplicates(t)
			Report(t, "faults.storage.flaky."+at.String(), "%d of %d writes failed (%s) under the running engine: %d webhook deliveries refused and retried; %d messages, %d replies and %d statuses all applied once, 0 lost, 0 duplicates",
				failed.WritesFailed, failed.Writes, at, retried.Load(), contacts, 2*contacts, 2*contacts)
		})
	}
}

// fRun runs the engine's loops until the returned stop is called (stop is
// idempotent, and waits, bounded, for the loops to end).
func (r *fRig) fRun(t testing.TB) (stop func() error) {
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Error("the engine did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestStorageFailsAtStartup: the store fails the very first writes of
// Engine.Run (marking interrupted sends unknown): the engine waits for it like
// for any later failure, instead of returning and leaving a daemon that
// acknowledges webhooks but never processes them.
func TestStorageFailsAtStartup(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}, faulty: true})
	var failed atomic.Int64
	r.faulty.SetHook(func(op store.FaultOp) error {
		if op.Kind == "write" && failed.Add(1) <= 3 {
			return store.ErrInjectedLocked
		}
		return nil
	})
	stop := r.fRun(t)
	r.deliver(r.text(fWaID(1), "start"))
	if _, ok := r.fake.WaitSent(1, 20*time.Second); !ok {
		t.Fatalf("the store failed at start and the engine never processed anything (it stopped: %v)", stop())
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestStorageLockedByAnotherConnection: another connection holds SQLite's write
// lock past the busy timeout (10s): the webhook is answered 503 (not stored),
// an idle engine step neither waits for the lock nor fails, and nothing is half done; once the lock is released
// Meta's retry is stored and processed, once. (store.Faulty's injected lock
// covers the same paths in the plain go test run.)
func TestStorageLockedByAnotherConnection(t *testing.T) {
	RequireLevel(t, "ci") // it waits out SQLite's 10s busy timeout (twice)
	t.Parallel()
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}})
	r.deliver(r.text(fWaID(1), "start"))
	r.settle()
	raw, err := sql.Open("sqlite3", "file:"+r.dbPath+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(r.ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	body := r.webhook(r.text(fWaID(1), "while locked"), r.text(fWaID(2), "start"))
	start := time.Now()
	code, _ := r.do("POST", "/webhook", body, map[string]string{whatsapp.SignatureHeader: whatsapp.Sign(r.secret, body)})
	waited := time.Since(start)
	if code != 503 {
		t.Fatalf("webhook while the database is locked: %d, want 503", code)
	}
	// Nothing is due (the refused webhook was not stored): an idle step asks
	// the read pool and neither waits for the held write lock nor fails.
	if n, err := r.eng.Step(r.ctx); err != nil || n != 0 {
		t.Fatalf("idle engine step while locked: %d, %v; want 0 and no error", n, err)
	}
	if _, err := conn.ExecContext(r.ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := r.q("SELECT COUNT(*) FROM inbox"); n != 1 {
		t.Fatalf("%d events stored, want only the one before the lock", n)
	}
	if c := r.post(body); c != 200 {
		t.Fatalf("Meta's retry after the lock: %d", c)
	}
	r.settle()
	if got := r.sentTexts(fWaID(1)); strings.Join(got, "|") != "ready|got while locked" {
		t.Fatalf("contact 1: %q", got)
	}
	if got := r.sentTexts(fWaID(2)); len(got) != 1 {
		t.Fatalf("contact 2: %q", got)
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.storage.locked", "write lock held by another connection: webhook answered 503 after %v (busy timeout), nothing stored; after release the retry was stored and processed once", waited.Round(100*time.Millisecond))
}

// fMountTmpfs mounts a tmpfs of size bytes on a temp dir, or skips the test
// when that is not permitted (not root, no mount in a container).
func fMountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small tmpfs: run as root")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fFill writes a file until the disk is full and returns its path.
func fFill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// TestStorageDiskFull: the database lives on a 6 MB tmpfs that fills up (but
// for 400 KB, which a few webhooks take). Every
// webhook from then on is either stored whole or refused with 503 (never
// acknowledged unstored, never stored by halves). Once space is freed, Meta's
// retries are stored, everything is processed, each contact answered once.
func TestStorageDiskFull(t *testing.T) {
	dir := fMountTmpfs(t, 6<<20)
	r := newFRig(t, fOptions{flows: []string{fEchoFlow}, dbDir: dir})
	r.deliver(r.text(fWaID(0), "start"))
	r.settle()
	// Fill the disk, then free a little: a few webhooks fit, then none.
	filler := fFill(t, dir)
	if fi, err := os.Stat(filler); err != nil || os.Truncate(filler, fi.Size()-400<<10) != nil {
		t.Fatal("cannot free space", err)
	}

	// Deliver webhooks of 20 contacts with long profile names until the store
	// refuses some.
	type post struct {
		body []byte
		keys []string
		code int
	}
	var posts []post
	refused := 0
	next := 1
	for p := 0; p < 400 && refused < 5; p++ {
		var msgs []whatsapp.InboundMessage
		names := map[string]string{}
		var keys []string
		for k := 0; k < 20; k++ {
			m := r.text(fWaID(next), "start")
			next++
			names[m.From] = strings.Repeat("N", 2000)
			keys = append(keys, "message:"+m.ID)
			r.fake.Inbound(m.From, r.clock.Now())
			msgs = append(msgs, m)
		}
		body := fEnvelope(msgs, names)
		code := r.post(body)
		if code != 200 && code != 503 {
			t.Fatalf("webhook on a full disk: %d, want 200 or 503", code)
		}
		if code == 503 {
			refused++
		}
		posts = append(posts, post{body, keys, code})
	}
	if refused == 0 {
		t.Fatalf("%d webhooks stored on a full disk: the disk never filled", len(posts))
	}
	stored := 0
	for _, p := range posts {
		n := int64(0)
		for _, k := range p.keys {
			n += r.q("SELECT COUNT(*) FROM inbox WHERE key = ?", k)
		}
		switch {
		case p.code == 200 && n != int64(len(p.keys)):
			t.Fatalf("an acknowledged webhook has %d of its %d events stored", n, len(p.keys))
		case p.code == 503 && n != 0:
			t.Fatalf("a refused webhook has %d of its %d events stored", n, len(p.keys))
		}
		if p.code == 200 {
			stored++
		}
	}
	_, stepErr := r.eng.Step(r.ctx) // may fail: the disk is full
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, p := range posts { // Meta retries everything not acknowledged (and redelivers some of the rest)
		if code := r.post(p.body); code != 200 {
			t.Fatalf("retry after space was freed: %d", code)
		}
	}
	r.settle()
	if n := r.q("SELECT COUNT(*) FROM inbox"); n != int64(1+20*len(posts)) {
		t.Fatalf("%d events stored, want %d", n, 1+20*len(posts))
	}
	for i := 0; i < next; i++ {
		if got := r.sentTexts(fWaID(i)); len(got) != 1 {
			t.Fatalf("contact %d: %q", i, got)
		}
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.storage.disk-full", "6 MB tmpfs filled: %d webhooks stored whole, %d refused with 503 and nothing of them stored (engine step: %v); after freeing space all %d contacts stored and answered once",
		stored, refused, stepErr != nil, next)
}

// fFailAfterSend sends through the fake, then makes the store fail the next
// write: the one that records the send's result.
type fFailAfterSend struct {
	graph  engine.GraphChannel
	faulty *store.Faulty
	n      atomic.Int64
}

func (c *fFailAfterSend) Send(ctx context.Context, phone string, m *whatsapp.Message) (string, error) {
	id, err := c.graph.Send(ctx, phone, m)
	c.faulty.FailNext(2)
	c.n.Add(1)
	return id, err
}

// TestStorageFailsRecordingSendResults: the store fails the writes that record
// what the API answered, after every send. The results are kept and recorded
// once the store takes them: the rows end `sent` with their message ids (not
// stuck `sending`, which would also hold back the contact's next message until
// a restart turned them `unknown`), and nothing is sent twice.
func TestStorageFailsRecordingSendResults(t *testing.T) {
	r := newFRig(t, fOptions{flows: []string{fFaultsFlow}, templates: fFaultsTemplates,
		fake: whatsapptest.Options{Templates: fFaultTemplates}, faulty: true})
	ch := &fFailAfterSend{graph: engine.GraphChannel{Client: r.fake.Client()}, faulty: r.faulty}
	r.swapChannel(ch)
	r.deliver(r.text(fWaID(1), "hello"), r.text(fWaID(2), "hello"))
	r.settle()
	for _, wa := range []string{fWaID(1), fWaID(2)} {
		sent := r.fake.SentTo(wa)
		if len(sent) != 2 {
			t.Fatalf("%s: %d messages accepted, want 2 (the second was held behind a row stuck `sending`?)", wa, len(sent))
		}
		rows, _ := r.db.OutboxOf(r.ctx, wa, 10)
		for _, it := range rows {
			if it.Status != store.OutSent || (it.ProviderID != sent[0].ID && it.ProviderID != sent[1].ID) {
				t.Fatalf("%s: row %d %s %q: the send's result was lost", wa, it.ID, it.Status, it.ProviderID)
			}
		}
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.storage.record-results", "%d sends whose result write failed twice each: all recorded `sent` with their ids once the store recovered, 0 stuck, 0 duplicates (%d writes failed)",
		ch.n.Load(), r.faulty.Faults().WritesFailed)
}

// TestGraphAPIStopErrorsStopThePipeline: the same stop under the daemon's
// pipelined send loop (Engine.Run, two rounds out at once): the calls after
// the first 190 are bounded by the calls in flight, not by the rounds claimed.
func TestGraphAPIStopErrorsStopThePipeline(t *testing.T) {
	const rate, concurrency, contacts = 400, 4, 300
	r := newFRig(t, fOptions{flows: []string{fFaultsFlow}, templates: fFaultsTemplates,
		fake: whatsapptest.Options{Templates: fFaultTemplates}, pacing: true, rate: rate, concurrency: concurrency})
	var msgs []whatsapp.InboundMessage
	for i := 0; i < contacts; i++ {
		msgs = append(msgs, r.text(fWaID(i), "hello"))
	}
	r.fake.SetTokenExpired(true)
	r.deliver(msgs...)
	stop := r.fRun(t)
	deadline := time.Now().Add(30 * time.Second)
	for r.eng.Paused() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the sender never stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a stopped sender stays stopped
	calls := len(r.fake.Attempts())
	if calls == 0 || calls > 2*concurrency {
		t.Fatalf("%d calls with an expired token; want at most the %d that two rounds can have in flight", calls, 2*concurrency)
	}
	if st := fByStatus(r.outbox()); st[store.OutPending] != 2*contacts {
		t.Fatalf("outbox %v, want all %d pending", st, 2*contacts)
	}
	r.fake.SetTokenExpired(false)
	r.eng.ResumeSender()
	if _, ok := r.fake.WaitSent(2*contacts, 60*time.Second); !ok {
		t.Fatalf("after resuming only %d of %d sent", len(r.fake.Sent()), 2*contacts)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r.fake.AssertNoDuplicates(t)
	Report(t, "faults.stop.pipeline", "Engine.Run with an expired token: %d calls before the sender stopped (≤ %d in flight), %d messages pending, then sent once each after ResumeSender",
		calls, 2*concurrency, 2*contacts)
}
